//! The compiled routing table: host and path to backend, with Kubernetes precedence.
//!
//! [`RouteTable::build`] takes Ingress objects and produces an immutable table plus
//! [`Diagnostics`]: the Ingresses it quarantined (with the apiserver's reasons), the conflicts it
//! resolved (winner and losers) and the rule paths that can never match. A lookup then costs a
//! hash lookup for the host and one walk over the request path's segments, whatever the number
//! of rules, and allocates nothing.
//!
//! ```
//! use ingress_router::{Manifests, RouteTable, TableOptions};
//!
//! let manifests = Manifests::parse(r#"
//! kind: Ingress
//! metadata: {name: shop, namespace: web}
//! spec:
//!   rules:
//!   - host: "*.example.com"
//!     http:
//!       paths:
//!       - {path: /api, pathType: Prefix, backend: {service: {name: api, port: {number: 8080}}}}
//! "#);
//! let table = RouteTable::build(&manifests.ingresses, TableOptions::default());
//!
//! let m = table.route(Some("shop.example.com"), "/api/v1/items").unwrap();
//! assert_eq!(m.backend().to_string(), "service web/api:8080");
//! assert_eq!(m.rule().unwrap().host, Some("*.example.com"));
//! assert!(table.route(Some("example.com"), "/api").is_none());
//! ```
//!
//! # Matching
//!
//! The rules are those of the Kubernetes API and of ingress-nginx where Kubernetes leaves the
//! choice to the controller:
//!
//! - **Host**: exact host first, else the `*.suffix` wildcard whose suffix is the request host
//!   minus exactly one (non-empty) first label, else the host-less rules. A request whose host
//!   selects a virtual host never falls through to another one's rules.
//! - **Path**, over the merged rules of every Ingress for the selected host: an `Exact` match
//!   always wins; otherwise the longest matching `Prefix` by path elements; a rule path with a
//!   trailing `/` beats the same path without; then the older Ingress (`creationTimestamp`, then
//!   `namespace/name`), then rule order. Ingresses without a timestamp count as newer than all
//!   that have one and keep their input order. `ImplementationSpecific` is `Prefix` unless
//!   [`TableOptions::implementation_specific`] says `Exact`; an empty one means `/`.
//! - **Fallbacks**: a selected host with no matching path goes to the defaultBackend of the
//!   oldest Ingress with rules for that host and a defaultBackend, else to the controller default
//!   backend ([`TableOptions::default_backend`]), else nowhere (404). With no host selected and no
//!   host-less path matching: the defaultBackend of the oldest Ingress without rules, else of the
//!   oldest with host-less rules and a defaultBackend, else the controller default. The
//!   defaultBackend of an Ingress whose rules all name hosts never catches other hosts.
//!
//! Rule paths must be in the canonical form requests are normalised to
//! ([`crate::canonical`]); one that is not (say `ImplementationSpecific` `/a//b`) can never match
//! and is reported as a [`Warning`] instead of being routed.
//!
//! # How does it work?
//!
//! Hosts live in two hash maps, one for exact names and one for wildcard suffixes, each cut
//! into shards of about 64 hosts that the versions of a table share. Each virtual
//! host owns a segment trie over its rule paths: a node per path element, holding at most one
//! winning `Exact` rule for the path without and with a trailing slash and one winning `Prefix`
//! rule. Precedence and conflicts are settled once, at build time, so a lookup walks the request
//! path once, remembering the deepest `Prefix` it passed, and finishes at the node where the walk
//! stops. Nodes with few children scan a short list of entries that hold each child node itself,
//! so a lookup reads one entry per path element; wider ones use a hash map. The hash
//! maps use `foldhash` with a random per-process seed: the keys come from configuration, and a
//! request cannot predict which lookups collide.
//!
//! [`RouteTable::update`] compiles again only the virtual hosts that the changed Ingresses had
//! or have rules for (an index from each Ingress to its hosts says which), copies only the
//! shards those hosts live in, and shares every other virtual host, the list of Ingresses when
//! their order stays, and the TLS table when no changed Ingress has TLS. Diagnostics stay with
//! the virtual hosts and are gathered on first use.
//!
//! A radix-tree router such as `matchit`, with routes `P`, `P/` and `P/{*rest}` per prefix, gives
//! the same answers, but `matchit` 0.9 keeps a backtracking stack that allocates on every lookup
//! passing a node with both static and wildcard children — which every nested prefix creates —
//! so the table walks its own trie and allocates nothing (and, measured by the crate's
//! `matchit_layout` bench, is about as fast on the same rules, host lookup included).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::sync::{Arc, OnceLock};

use foldhash::fast::RandomState;
use hashbrown::hash_table::{Entry, HashTable};

use crate::backend::Backend;
use crate::canonical::{self, CanonicalOptions, CanonicalPath, PathMode, Rejection, RequestHost};
use crate::model::{self, Ingress, ObjectRef, PathType};
use crate::tls::{TlsConflict, TlsReport, TlsTable};
use crate::validate::{self, ValidationError};

/// How `ImplementationSpecific` paths are matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ImplementationSpecific {
    /// As `Prefix`, like ingress-nginx.
    #[default]
    Prefix,
    /// As `Exact`.
    Exact,
}

/// Settings a controller applies when building its table.
#[derive(Debug, Clone, Default)]
pub struct TableOptions {
    /// The controller's own default backend, for requests no Ingress routes (otherwise 404).
    pub default_backend: Option<Backend>,
    /// How `ImplementationSpecific` paths are matched.
    pub implementation_specific: ImplementationSpecific,
    /// How request hosts and paths are canonicalised before matching.
    pub canonical: CanonicalOptions,
}

/// Why a request went to a backend that no rule path named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fallback {
    /// An Ingress's `spec.defaultBackend`.
    IngressDefault,
    /// The controller default backend of [`TableOptions::default_backend`].
    ControllerDefault,
}

impl Fallback {
    /// `ingress-default` or `controller-default`.
    pub fn as_str(self) -> &'static str {
        match self {
            Fallback::IngressDefault => "ingress-default",
            Fallback::ControllerDefault => "controller-default",
        }
    }
}

impl fmt::Display for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The rule a request matched, as its Ingress wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchedRule<'a> {
    /// The rule's host (`*.example.com`, `shop.example.com`), `None` for a host-less rule.
    pub host: Option<&'a str>,
    /// The rule's path; empty for an empty `ImplementationSpecific` path.
    pub path: &'a str,
    /// The rule's path type as written.
    pub path_type: PathType,
}

/// Where a request goes and why. Borrows from the [`RouteTable`]; copying it is free.
#[derive(Debug, Clone, Copy)]
pub struct RouteMatch<'a> {
    backend: &'a Backend,
    ingress: Option<&'a ObjectRef>,
    rule: Option<MatchedRule<'a>>,
    fallback: Option<Fallback>,
    key: MatchKey<'a>,
}

/// What matched, by where it lives in the table that produced it.
#[derive(Clone, Copy)]
enum MatchKey<'a> {
    Rule(&'a Arc<VirtualHost>, Id),
    Fallback(&'a Arc<VirtualHost>),
    CatchAll,
    ControllerDefault,
}

impl fmt::Debug for MatchKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MatchKey::Rule(vhost, id) => write!(f, "Rule({:?}, {id})", vhost.host),
            MatchKey::Fallback(vhost) => write!(f, "Fallback({:?})", vhost.host),
            MatchKey::CatchAll => f.write_str("CatchAll"),
            MatchKey::ControllerDefault => f.write_str("ControllerDefault"),
        }
    }
}

/// A [`MatchKey`] that owns its virtual host.
#[derive(Clone)]
pub(crate) enum OwnedKey {
    Rule(Arc<VirtualHost>, Id),
    Fallback(Arc<VirtualHost>),
    CatchAll,
    ControllerDefault,
}

impl OwnedKey {
    fn of(key: MatchKey<'_>) -> OwnedKey {
        match key {
            MatchKey::Rule(vhost, id) => OwnedKey::Rule(Arc::clone(vhost), id),
            MatchKey::Fallback(vhost) => OwnedKey::Fallback(Arc::clone(vhost)),
            MatchKey::CatchAll => OwnedKey::CatchAll,
            MatchKey::ControllerDefault => OwnedKey::ControllerDefault,
        }
    }
}

impl PartialEq for OwnedKey {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (OwnedKey::Rule(a, x), OwnedKey::Rule(b, y)) => Arc::ptr_eq(a, b) && x == y,
            (OwnedKey::Fallback(a), OwnedKey::Fallback(b)) => Arc::ptr_eq(a, b),
            (OwnedKey::CatchAll, OwnedKey::CatchAll) => true,
            (OwnedKey::ControllerDefault, OwnedKey::ControllerDefault) => true,
            _ => false,
        }
    }
}

impl<'a> RouteMatch<'a> {
    /// The backend to forward to.
    pub fn backend(&self) -> &'a Backend {
        self.backend
    }

    /// The Ingress whose rule or defaultBackend matched; `None` for the controller default.
    pub fn ingress(&self) -> Option<&'a ObjectRef> {
        self.ingress
    }

    /// The rule that matched; `None` when a fallback was taken.
    pub fn rule(&self) -> Option<MatchedRule<'a>> {
        self.rule
    }

    /// The fallback taken; `None` when a rule matched.
    pub fn fallback(&self) -> Option<Fallback> {
        self.fallback
    }
}

/// A [`RouteMatch`] that owns a reference to its table: `'static`, and as cheap to clone as an
/// `Arc`.
///
/// This is what [`IngressLayer`](crate::layer::IngressLayer) puts into request extensions: the
/// table snapshot the request was routed with stays alive as long as the match does, even when
/// a new table has been swapped in since.
///
/// ```
/// use std::sync::Arc;
/// use ingress_router::{Manifests, MatchedRoute, RouteTable, TableOptions};
///
/// let manifests = Manifests::parse(r#"
/// kind: Ingress
/// metadata: {name: web}
/// spec:
///   defaultBackend: {service: {name: web, port: {number: 80}}}
/// "#);
/// let table = Arc::new(RouteTable::build(&manifests.ingresses, TableOptions::default()));
/// let matched = MatchedRoute::route(&table, Some("example.com"), "/").unwrap();
/// assert_eq!(matched.backend().to_string(), "service default/web:80");
/// ```
#[derive(Clone)]
pub struct MatchedRoute {
    table: Arc<RouteTable>,
    key: OwnedKey,
}

impl MatchedRoute {
    /// Routes a canonical host and path, as [`RouteTable::route`], keeping the table alive.
    pub fn route(table: &Arc<RouteTable>, host: Option<&str>, path: &str) -> Option<MatchedRoute> {
        let route = table.route(host, path)?;
        Some(MatchedRoute::of(table, route))
    }

    /// For a `route` known to come from `table`.
    pub(crate) fn of(table: &Arc<RouteTable>, route: RouteMatch<'_>) -> MatchedRoute {
        MatchedRoute::with_key(Arc::clone(table), MatchedRoute::key_of(route))
    }

    /// What [`MatchedRoute::with_key`] needs of a route, without borrowing its table.
    pub(crate) fn key_of(route: RouteMatch<'_>) -> OwnedKey {
        OwnedKey::of(route.key)
    }

    /// For a key from [`MatchedRoute::key_of`] of a route of `table`; takes the table's `Arc`
    /// over instead of counting one more.
    pub(crate) fn with_key(table: Arc<RouteTable>, key: OwnedKey) -> MatchedRoute {
        MatchedRoute { table, key }
    }

    /// Keeps `route` together with its table; `None` when `route` came from another table.
    pub fn new(table: &Arc<RouteTable>, route: RouteMatch<'_>) -> Option<MatchedRoute> {
        table.owns(&route).then(|| MatchedRoute::of(table, route))
    }

    /// The match, borrowed from the table.
    pub fn as_match(&self) -> RouteMatch<'_> {
        let matched = match &self.key {
            OwnedKey::Rule(vhost, id) => Some(vhost.rule_match(*id)),
            OwnedKey::Fallback(vhost) => vhost.fallback_match(),
            OwnedKey::CatchAll => self.table.catch_all_match(),
            OwnedKey::ControllerDefault => self.table.controller_default_match(),
        };
        matched.expect("a MatchedRoute is made only from a match of its table")
    }

    /// The backend to forward to.
    pub fn backend(&self) -> &Backend {
        self.as_match().backend()
    }

    /// The Ingress whose rule or defaultBackend matched; `None` for the controller default.
    pub fn ingress(&self) -> Option<&ObjectRef> {
        self.as_match().ingress()
    }

    /// The rule that matched; `None` when a fallback was taken.
    pub fn rule(&self) -> Option<MatchedRule<'_>> {
        self.as_match().rule()
    }

    /// The fallback taken; `None` when a rule matched.
    pub fn fallback(&self) -> Option<Fallback> {
        self.as_match().fallback()
    }

    /// The table the request was routed with.
    pub fn table(&self) -> &Arc<RouteTable> {
        &self.table
    }
}

impl fmt::Debug for MatchedRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MatchedRoute")
            .field("backend", self.backend())
            .field("ingress", &self.ingress())
            .field("rule", &self.rule())
            .field("fallback", &self.fallback())
            .finish()
    }
}

impl PartialEq for MatchedRoute {
    /// Two matches are equal when they are the same match of the same table.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.table, &other.table) && self.key == other.key
    }
}

/// A request routed by [`RouteTable::route_request`]: its canonical host and path, and the
/// route, if any (`None` means 404).
#[derive(Debug)]
pub struct RoutedRequest<'t, 'r> {
    /// Where the request goes; `None` when nothing routes it.
    pub route: Option<RouteMatch<'t>>,
    /// The host the request was routed on.
    pub host: RequestHost,
    /// The path it was routed on (and that the backend should receive), with the query.
    pub path: CanonicalPath<'r>,
}

/// An Ingress the table left out, with every reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    /// The Ingress.
    pub object: ObjectRef,
    /// What the apiserver would say about it.
    pub errors: Vec<ValidationError>,
}

/// One path rule of one Ingress, by field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRef {
    /// The Ingress.
    pub ingress: ObjectRef,
    /// The rule's field path, `spec.rules[i].http.paths[j]`.
    pub field: String,
}

impl fmt::Display for RuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.ingress, self.field)
    }
}

/// Several rules for the same host, path and path type: one wins, the others never match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The host as written, `None` for host-less rules.
    pub host: Option<String>,
    /// The path as written.
    pub path: String,
    /// How the path is matched (after applying [`TableOptions::implementation_specific`]).
    pub path_type: PathType,
    /// The rule that routes.
    pub winner: RuleRef,
    /// The rules that lost, oldest first.
    pub losers: Vec<RuleRef>,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let losers: Vec<String> = self.losers.iter().map(ToString::to_string).collect();
        write!(
            f,
            "{} {:?} on host {:?}: {} wins over {}",
            self.path_type,
            self.path,
            self.host.as_deref().unwrap_or("*"),
            self.winner,
            losers.join(", ")
        )
    }
}

/// Something about an object that routes, but not as its author probably meant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{object}: {field}: {message}")]
pub struct Warning {
    /// The object.
    pub object: ObjectRef,
    /// The field path the warning is about.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// What building a table found: quarantined Ingresses, conflicts, warnings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics {
    /// Invalid Ingresses, which contribute no routes.
    pub quarantined: Vec<Quarantined>,
    /// Identical rules from several places, and which one won.
    pub conflicts: Vec<Conflict>,
    /// Rules that can never match and other surprises.
    pub warnings: Vec<Warning>,
    /// TLS hosts named with different certificates, and which one is served.
    pub tls_conflicts: Vec<TlsConflict>,
}

impl Diagnostics {
    /// Whether nothing was reported.
    pub fn is_empty(&self) -> bool {
        self.quarantined.is_empty()
            && self.conflicts.is_empty()
            && self.warnings.is_empty()
            && self.tls_conflicts.is_empty()
    }
}

type Id = u32;

/// A compiled path rule; its host is its virtual host's.
#[derive(Debug, Clone)]
struct Rule {
    /// Index into the virtual host's backends.
    backend: Id,
    /// Index into the virtual host's Ingresses, ordered oldest first, so it is also the age
    /// rank among them.
    ingress: Id,
    path: Box<str>,
    path_type: PathType,
}

/// A virtual host's fallback: a backend and the Ingress it came from, by index into the
/// virtual host's lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Target {
    backend: Id,
    ingress: Id,
}

/// A backend that belongs to no virtual host: the catch-all defaultBackend.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CatchAll {
    backend: Backend,
    ingress: ObjectRef,
    /// Taken from the host-less virtual host's fallback, not from an Ingress without rules.
    hostless: bool,
}

#[derive(Debug, Default)]
struct Node {
    /// Winning Exact rule for the path ending at this node, without and with a trailing `/`.
    exact: Winner,
    exact_slash: Winner,
    /// Winning Prefix rule whose path (trailing `/` ignored) ends at this node.
    prefix: Winner,
    children: Kids,
}

/// A node's winning rule for one of its slots, if any: a rule index, or `Id::MAX`, which no
/// rule has. Half the size of an `Option`, so that a child entry fits a cache line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Winner(Id);

impl Winner {
    fn new(rule: Option<Id>) -> Winner {
        Winner(rule.filter(|&id| id != Id::MAX).unwrap_or(Id::MAX))
    }

    #[inline]
    fn get(self) -> Option<Id> {
        (self.0 != Id::MAX).then_some(self.0)
    }
}

impl Default for Winner {
    fn default() -> Self {
        Winner(Id::MAX)
    }
}

/// A compiled node's children: a run of the virtual host's child list (all of a host's short
/// lists sit side by side, so a lookup that goes down the trie mostly stays in the cache lines
/// it has read), or a hash map for wide nodes.
#[derive(Debug)]
enum Kids {
    Few {
        start: u32,
        len: u32,
    },
    // Boxed: wide nodes are rare, and every node stays small.
    #[allow(clippy::box_collection)]
    Many(Box<HashMap<Box<str>, Node, RandomState>>),
}

impl Default for Kids {
    fn default() -> Self {
        Kids::Few { start: 0, len: 0 }
    }
}

impl Kids {
    #[inline]
    fn get<'a>(&'a self, segment: &str, list: &'a [Child], tails: &[u8]) -> Option<&'a Node> {
        match self {
            Kids::Few { start, len } => {
                let run = list.get(*start as usize..(*start + *len) as usize)?;
                Child::find(run, tails, segment)
            }
            Kids::Many(map) => map.get(segment),
        }
    }
}

#[derive(Debug)]
enum Children {
    Few(Vec<(Box<str>, Id)>),
    Many(HashMap<Box<str>, Id, RandomState>),
}

/// A child in a short list: the segment's length and first eight bytes tell it from its
/// siblings without following a pointer, and are the whole segment for most path elements.
/// The child node itself is kept in the entry, so that a lookup reads one entry per segment.
#[derive(Debug)]
struct Child {
    head: u64,
    len: u32,
    /// Where the bytes after the first eight start in the virtual host's `tails`.
    tail: u32,
    node: Node,
}

/// A segment's first eight bytes, zero-padded.
#[inline]
fn head(segment: &[u8]) -> u64 {
    match segment.first_chunk::<8>() {
        Some(bytes) => u64::from_le_bytes(*bytes),
        // Shifts, not a copy of a variable length, which would call `memcpy`.
        None => segment
            .iter()
            .rev()
            .fold(0, |head, &b| (head << 8) | u64::from(b)),
    }
}

impl Default for Children {
    fn default() -> Self {
        Children::Few(Vec::new())
    }
}

// Beyond this many children a hash lookup beats comparing segments one by one.
const FEW_CHILDREN: usize = 8;

impl Child {
    /// The entry for `segment`, its bytes after the first eight appended to `tails`.
    fn new(segment: &str, node: Node, tails: &mut Vec<u8>) -> Child {
        let bytes = segment.as_bytes();
        let tail = u32::try_from(tails.len()).expect("a virtual host's segments fit in 4 GiB");
        tails.extend_from_slice(bytes.get(8..).unwrap_or_default());
        Child {
            head: head(bytes),
            len: u32::try_from(bytes.len()).expect("a segment fits in 4 GiB"),
            tail,
            node,
        }
    }

    /// The child for `segment` among `list`, whose long segments end in `tails`.
    #[inline]
    fn find<'a>(list: &'a [Child], tails: &[u8], segment: &str) -> Option<&'a Node> {
        let bytes = segment.as_bytes();
        let (head, len) = (head(bytes), bytes.len());
        list.iter()
            .find(|c| {
                c.head == head
                    && c.len as usize == len
                    && (len <= 8
                        || tails.get(c.tail as usize..c.tail as usize + len - 8) == bytes.get(8..))
            })
            .map(|c| &c.node)
    }
}

/// A node's children while its virtual host is built.
impl Children {
    #[inline]
    fn get(&self, segment: &str) -> Option<Id> {
        match self {
            Children::Few(list) => list
                .iter()
                .find(|(s, _)| **s == *segment)
                .map(|&(_, id)| id),
            Children::Many(map) => map.get(segment).copied(),
        }
    }

    fn insert(&mut self, segment: &str, id: Id) {
        match self {
            Children::Few(list) if list.len() < FEW_CHILDREN => list.push((segment.into(), id)),
            Children::Few(list) => {
                let mut map: HashMap<Box<str>, Id, RandomState> = list.drain(..).collect();
                map.insert(segment.into(), id);
                *self = Children::Many(map);
            }
            Children::Many(map) => {
                map.insert(segment.into(), id);
            }
        }
    }
}

/// The rules for one host (or for the host-less rules), compiled on their own so that a table
/// can share them with the next version when they do not change.
#[derive(Debug)]
pub(crate) struct VirtualHost {
    /// The host as written (`*.example.com` for a wildcard), `None` for the host-less rules.
    host: Option<Box<str>>,
    /// The node of the empty path; the others are kept by their parents.
    root: Node,
    /// The children of every node with few of them, each node's side by side.
    children: Vec<Child>,
    /// The bytes after the first eight of the long segments in `children`.
    tails: Vec<u8>,
    rules: Vec<Rule>,
    backends: Vec<Backend>,
    /// The Ingresses with rules for this host, oldest first.
    ingresses: Vec<ObjectRef>,
    /// The index of the oldest Ingress's first rule for this host: with that Ingress's age,
    /// where the host first appears, which orders the diagnostics.
    first_rule: u32,
    fallback: Option<Target>,
    conflicts: Vec<Conflict>,
    warnings: Vec<Warning>,
}

impl VirtualHost {
    #[inline]
    fn match_path(&self, path: &str) -> Option<Id> {
        if !path.starts_with('/') {
            return None;
        }
        let (segments, trailing) = segments(path);
        let mut node = &self.root;
        let mut best = node.prefix.get();
        for segment in segments {
            match node.children.get(segment, &self.children, &self.tails) {
                Some(child) => {
                    node = child;
                    best = node.prefix.get().or(best);
                }
                None => return best,
            }
        }
        let exact = if trailing {
            node.exact_slash
        } else {
            node.exact
        };
        exact.get().or(best)
    }

    fn rule_match<'a>(self: &'a Arc<Self>, id: Id) -> RouteMatch<'a> {
        let rule = &self.rules[id as usize];
        RouteMatch {
            backend: &self.backends[rule.backend as usize],
            ingress: Some(&self.ingresses[rule.ingress as usize]),
            rule: Some(MatchedRule {
                host: self.host.as_deref(),
                path: &rule.path,
                path_type: rule.path_type,
            }),
            fallback: None,
            key: MatchKey::Rule(self, id),
        }
    }

    fn fallback_match<'a>(self: &'a Arc<Self>) -> Option<RouteMatch<'a>> {
        let target = self.fallback?;
        Some(RouteMatch {
            backend: &self.backends[target.backend as usize],
            ingress: Some(&self.ingresses[target.ingress as usize]),
            rule: None,
            fallback: Some(Fallback::IngressDefault),
            key: MatchKey::Fallback(self),
        })
    }
}

/// Which virtual host a rule host belongs to: `None` for host-less rules, the suffix after
/// `*.` for wildcards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum HostKey<'a> {
    Hostless,
    Exact(&'a str),
    Wildcard(&'a str),
}

impl<'a> HostKey<'a> {
    fn of(host: Option<&'a str>) -> HostKey<'a> {
        match host {
            None => HostKey::Hostless,
            Some(h) => match h.strip_prefix("*.") {
                Some(suffix) => HostKey::Wildcard(suffix),
                None => HostKey::Exact(h),
            },
        }
    }
}

/// An immutable routing table compiled from Ingresses.
///
/// Build it once with [`RouteTable::build`], look up many times with [`RouteTable::route`] or
/// [`RouteTable::route_request`]; share it between threads behind an `Arc`. When a few
/// Ingresses change, [`RouteTable::update`] makes the next table, sharing every host the change
/// does not touch.
#[derive(Debug)]
pub struct RouteTable {
    options: TableOptions,
    /// Collected from the parts below and the virtual hosts on first use.
    diagnostics: OnceLock<Diagnostics>,
    quarantined: Vec<Quarantined>,
    /// Warnings about the input as a whole (replaced duplicates); they come first.
    input_warnings: Vec<Warning>,
    /// The admitted Ingresses, oldest first; shared with the next version when the order
    /// stays.
    ingresses: Arc<[ObjectRef]>,
    exact_hosts: Sharded<HostEntry>,
    /// By suffix: `*.example.com` is found under `example.com`.
    wildcard_hosts: Sharded<HostEntry>,
    hostless: Option<Arc<VirtualHost>>,
    /// The hosts each admitted Ingress has rules for: what changing it touches.
    hosts_of: Sharded<IngressHosts>,
    catch_all: Option<CatchAll>,
    controller_default: Option<Backend>,
    rule_count: usize,
    tls: Arc<TlsTable>,
    /// What building the TLS table reported, kept to share it with the next version.
    tls_report: Arc<TlsReport>,
}

/// How many entries a shard of a [`Sharded`] map is meant to hold.
const SHARD_SIZE: usize = 64;

/// A hash table cut into shards that versions of a table share: cloning it copies one pointer
/// per shard, and a change copies only the shard it lands in. Lookups hash once and pay one
/// more pointer than a plain table.
#[derive(Debug, Clone)]
struct Sharded<T> {
    hasher: RandomState,
    /// Shards are picked by hash bits 32 and up, which neither the shards' bucket index (the
    /// low bits) nor their control bytes (the top seven) use.
    mask: usize,
    shards: Vec<Arc<HashTable<T>>>,
    len: usize,
}

impl<T: Clone> Sharded<T> {
    fn new(hasher: RandomState, capacity: usize) -> Self {
        let shards = (capacity / SHARD_SIZE)
            .max(1)
            .next_power_of_two()
            .min(1 << 16);
        Sharded {
            hasher,
            mask: shards - 1,
            shards: (0..shards).map(|_| Arc::default()).collect(),
            len: 0,
        }
    }

    #[inline]
    fn hash<K: Hash>(&self, key: K) -> u64 {
        self.hasher.hash_one(key)
    }

    #[inline]
    fn shard(&self, hash: u64) -> usize {
        (hash >> 32) as usize & self.mask
    }

    #[inline]
    fn find(&self, hash: u64, eq: impl FnMut(&T) -> bool) -> Option<&T> {
        self.shards[self.shard(hash)].find(hash, eq)
    }

    /// Inserts or replaces the value `eq` finds; `rehash` hashes stored values as `hash` was.
    fn insert(
        &mut self,
        hash: u64,
        value: T,
        eq: impl FnMut(&T) -> bool,
        rehash: impl Fn(&T) -> u64,
    ) {
        let index = self.shard(hash);
        match Arc::make_mut(&mut self.shards[index]).entry(hash, eq, &rehash) {
            Entry::Occupied(mut entry) => *entry.get_mut() = value,
            Entry::Vacant(entry) => {
                entry.insert(value);
                self.len += 1;
            }
        }
        // Grown well past its shards (a table built small, then updated many times): spread
        // out again, so that a change keeps copying a small shard.
        if self.len > 4 * SHARD_SIZE * self.shards.len() && self.shards.len() < 1 << 16 {
            let mut wider = Sharded::new(self.hasher.clone(), self.len);
            for value in self.values() {
                let hash = rehash(value);
                let index = wider.shard(hash);
                Arc::make_mut(&mut wider.shards[index]).insert_unique(hash, value.clone(), &rehash);
            }
            wider.len = self.len;
            *self = wider;
        }
    }

    /// Removes the value `eq` finds, copying its shard only when there is one.
    fn remove(&mut self, hash: u64, mut eq: impl FnMut(&T) -> bool) -> Option<T> {
        let index = self.shard(hash);
        self.shards[index].find(hash, &mut eq)?;
        let entry = Arc::make_mut(&mut self.shards[index])
            .find_entry(hash, eq)
            .ok()?;
        self.len -= 1;
        Some(entry.remove().0)
    }

    fn values(&self) -> impl Iterator<Item = &T> {
        self.shards.iter().flat_map(|shard| shard.iter())
    }
}

/// A virtual host under its name (or wildcard suffix).
#[derive(Debug, Clone)]
struct HostEntry {
    name: Arc<str>,
    vhost: Arc<VirtualHost>,
    /// Whether the name is its own canonical host name (see `canonical::is_canonical_name`).
    canonical: bool,
}

// Names are hashed as bytes: a request's canonical host is ASCII that need not be checked
// again to be a `str`.
impl Sharded<HostEntry> {
    #[inline]
    fn get(&self, name: &[u8]) -> Option<&Arc<VirtualHost>> {
        self.entry(name).map(|entry| &entry.vhost)
    }

    /// The entry for `name`.
    #[inline]
    fn entry(&self, name: &[u8]) -> Option<&HostEntry> {
        self.find(self.hash(name), |entry| entry.name.as_bytes() == name)
    }

    fn put(&mut self, name: &str, vhost: Arc<VirtualHost>) {
        let hasher = self.hasher.clone();
        let entry = HostEntry {
            name: name.into(),
            vhost,
            canonical: canonical::is_canonical_name(name),
        };
        self.insert(
            self.hash(name.as_bytes()),
            entry,
            |entry| &*entry.name == name,
            |entry| hasher.hash_one(entry.name.as_bytes()),
        );
    }

    fn delete(&mut self, name: &str) {
        self.remove(self.hash(name.as_bytes()), |entry| &*entry.name == name);
    }
}

/// The hosts (as written, `None` for host-less rules) an admitted Ingress has rules for.
#[derive(Debug, Clone)]
struct IngressHosts {
    namespace: Arc<str>,
    name: Arc<str>,
    hosts: Arc<[Option<Arc<str>>]>,
}

impl IngressHosts {
    fn key(&self) -> Key<'_> {
        Key {
            namespace: &self.namespace,
            name: &self.name,
        }
    }
}

impl Sharded<IngressHosts> {
    fn get(&self, key: Key<'_>) -> Option<&IngressHosts> {
        self.find(self.hash(key), |entry| entry.key() == key)
    }

    /// Records the hosts of `ingress`, which has rules.
    fn put(&mut self, ingress: &Ingress) {
        let key = Key::of(ingress);
        let mut seen: HashSet<Option<&str>, RandomState> = HashSet::default();
        let hosts: Vec<Option<Arc<str>>> = ingress
            .spec
            .rules
            .iter()
            .map(|rule| rule.host())
            .filter(|&host| seen.insert(host))
            .map(|host| host.map(Into::into))
            .collect();
        let entry = IngressHosts {
            namespace: key.namespace.into(),
            name: key.name.into(),
            hosts: hosts.into(),
        };
        let hasher = self.hasher.clone();
        self.insert(
            self.hash(key),
            entry,
            |entry| entry.key() == key,
            |entry| hasher.hash_one(entry.key()),
        );
    }

    fn delete(&mut self, key: Key<'_>) {
        self.remove(self.hash(key), |entry| entry.key() == key);
    }
}

/// The segments of a path after its leading `/`, without the trailing `/`: `/a/b/` is `a`, `b`.
/// `//` is one empty segment (only raw-mode paths have empty segments).
#[derive(Debug, Clone)]
struct Segments<'a> {
    rest: Option<&'a str>,
}

impl<'a> Iterator for Segments<'a> {
    type Item = &'a str;

    #[inline]
    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        // Segments are short: a plain scan beats a vectorised search's setup cost.
        match rest.bytes().position(|b| b == b'/') {
            Some(i) => {
                self.rest = Some(&rest[i + 1..]);
                Some(&rest[..i])
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

/// Splits a path into its [`Segments`] and whether it ends in `/`. `/` itself, the root, has
/// no segments and no trailing slash.
#[inline]
fn segments(path: &str) -> (Segments<'_>, bool) {
    let rest = path.strip_prefix('/').unwrap_or(path);
    if rest.is_empty() {
        return (Segments { rest: None }, false);
    }
    match rest.strip_suffix('/') {
        Some(rest) => (Segments { rest: Some(rest) }, true),
        None => (Segments { rest: Some(rest) }, false),
    }
}

impl RouteTable {
    /// Compiles Ingresses into a table.
    ///
    /// Invalid Ingresses are quarantined, never fatal; see [`RouteTable::diagnostics`]. Input
    /// order matters only among Ingresses without a `creationTimestamp`. When several objects
    /// share a namespace and name, the last one counts, as when applying files in order.
    pub fn build<'a, I>(ingresses: I, options: TableOptions) -> RouteTable
    where
        I: IntoIterator<Item = &'a Ingress>,
    {
        let ingresses: Vec<&Ingress> = ingresses.into_iter().collect();
        let admitted = admit(&ingresses, None);
        assemble(options, admitted, None)
    }

    /// The next table after some Ingresses changed: the same as
    /// `RouteTable::build(ingresses, self.options().clone())`, but only the hosts the change
    /// touches are compiled again; every other host is shared with `self`.
    ///
    /// `ingresses` is the whole new input, in the same relative order as the input of `self`
    /// for the Ingresses that did not change; `changed` names every Ingress added, modified or
    /// removed since (naming one that did not change only costs time). An Ingress that changed
    /// but is not named keeps its old rules and verdict.
    pub fn update<'a, I>(&self, ingresses: I, changed: &[ObjectRef]) -> RouteTable
    where
        I: IntoIterator<Item = &'a Ingress>,
    {
        let ingresses: Vec<&Ingress> = ingresses.into_iter().collect();
        let changed: HashSet<&ObjectRef, RandomState> = changed.iter().collect();
        let previous = Previous {
            table: self,
            changed: &changed,
        };
        let admitted = admit(&ingresses, Some(&previous));
        assemble(self.options.clone(), admitted, Some(&previous))
    }

    /// The options the table was built with.
    pub fn options(&self) -> &TableOptions {
        &self.options
    }

    /// What building the table found.
    ///
    /// Collected on first call (the virtual hosts keep their own findings, so that an update
    /// need not gather every host's), in the order of the input: duplicates, TLS, then host by
    /// host in order of first appearance, oldest Ingress first.
    pub fn diagnostics(&self) -> &Diagnostics {
        self.diagnostics.get_or_init(|| self.collect_diagnostics())
    }

    fn collect_diagnostics(&self) -> Diagnostics {
        let rank: HashMap<&ObjectRef, usize, RandomState> = self
            .ingresses
            .iter()
            .enumerate()
            .map(|(rank, object)| (object, rank))
            .collect();
        let mut hosts: Vec<(usize, u32, &VirtualHost)> = self
            .vhosts()
            .map(|vhost| {
                let first = vhost.ingresses.first().and_then(|o| rank.get(o));
                (
                    first.copied().unwrap_or(usize::MAX),
                    vhost.first_rule,
                    &**vhost,
                )
            })
            .collect();
        hosts.sort_unstable_by_key(|&(rank, rule, _)| (rank, rule));
        let mut diagnostics = Diagnostics {
            quarantined: self.quarantined.clone(),
            conflicts: Vec::new(),
            warnings: self.input_warnings.clone(),
            tls_conflicts: self.tls_report.conflicts.clone(),
        };
        diagnostics
            .warnings
            .extend(self.tls_report.warnings.iter().cloned());
        for (_, _, vhost) in hosts {
            diagnostics
                .conflicts
                .extend(vhost.conflicts.iter().cloned());
            diagnostics.warnings.extend(vhost.warnings.iter().cloned());
        }
        diagnostics
    }

    /// The Ingresses that contribute to the table, oldest first.
    pub fn ingresses(&self) -> &[ObjectRef] {
        &self.ingresses
    }

    /// The TLS configuration of the same Ingresses: which certificate each server name gets.
    pub fn tls(&self) -> &TlsTable {
        &self.tls
    }

    /// How many path rules the table routes (winners only).
    pub fn rule_count(&self) -> usize {
        self.rule_count
    }

    /// Routes a canonical host and path.
    ///
    /// `host` is a canonical host name (lower case, no port, no trailing dot; see
    /// [`canonical::canonical_host`]) or `None` for a request without one (or with an IP
    /// literal); `path` is a canonical path without the query ([`canonical::canonical_path`]).
    /// `None` means no rule and no fallback routes the request (404). Allocates nothing.
    pub fn route(&self, host: Option<&str>, path: &str) -> Option<RouteMatch<'_>> {
        self.route_bytes(host.map(str::as_bytes), path)
    }

    #[inline]
    fn route_bytes(&self, host: Option<&[u8]>, path: &str) -> Option<RouteMatch<'_>> {
        match host.and_then(|h| self.select_host(h)) {
            Some(vhost) => self.route_in(vhost, path),
            None => {
                if let Some(vhost) = &self.hostless {
                    if let Some(rule) = vhost.match_path(path) {
                        return Some(vhost.rule_match(rule));
                    }
                }
                self.catch_all_match()
                    .or_else(|| self.controller_default_match())
            }
        }
    }

    /// A canonical path on the virtual host the request's host selected.
    #[inline]
    fn route_in<'t>(&'t self, vhost: &'t Arc<VirtualHost>, path: &str) -> Option<RouteMatch<'t>> {
        match vhost.match_path(path) {
            Some(rule) => Some(vhost.rule_match(rule)),
            None => vhost
                .fallback_match()
                .or_else(|| self.controller_default_match()),
        }
    }

    /// Canonicalises a request ([`canonical::canonicalize_request`] with this table's
    /// [`TableOptions::canonical`]) and routes it.
    ///
    /// `Err` is a request that must be answered 400 or 414. Allocates nothing when the request
    /// is already canonical; otherwise only the rewritten path, which is also what the backend
    /// should receive ([`RoutedRequest::path`]).
    pub fn route_request<'t, 'r, B>(
        &'t self,
        request: &'r http::Request<B>,
    ) -> Result<RoutedRequest<'t, 'r>, Rejection> {
        // As `canonicalize_request`, with each part made where it stays: the inline host is
        // large enough for every copy to show.
        let options = &self.options.canonical;
        let mut routed = RoutedRequest {
            route: None,
            host: RequestHost::None,
            path: CanonicalPath::ROOT,
        };
        let target = request
            .uri()
            .path_and_query()
            .map_or("/", |path_and_query| path_and_query.as_str());
        // The path's bytes are in an allocation of their own: ask for them now, so that they
        // arrive while the host is looked up rather than after.
        std::hint::black_box(target.as_bytes().first().copied());
        // Most requests name one of the table's hosts exactly, port and trailing dot aside; a
        // name equal to a canonical one is canonical, and need not be checked byte by byte.
        let named = canonical::plain_host_name(request, options)
            .and_then(|name| Some((name, self.select_canonical_host(name)?)));
        if let Some((name, vhost)) = named {
            canonical::set_canonical_name(&mut routed.host, name);
            routed.path = canonical::canonical_path(target, options)?;
            routed.route = self.route_in(vhost, routed.path.path());
            return Ok(routed);
        }
        canonical::request_host_into(request, options, &mut routed.host)?;
        routed.path = canonical::canonical_path(target, options)?;
        routed.route = self.route_bytes(routed.host.name_bytes(), routed.path.path());
        Ok(routed)
    }

    /// [`Self::select_host`] for a name that has not been checked: `Some` only when the name
    /// is canonical, which it is when it equals an exact host that is its own canonical name,
    /// or is a canonical label followed by such a wildcard suffix. `None` may still be routed
    /// once canonicalised.
    #[inline]
    fn select_canonical_host(&self, name: &[u8]) -> Option<&Arc<VirtualHost>> {
        if let Some(entry) = self.exact_hosts.entry(name) {
            return entry.canonical.then_some(&entry.vhost);
        }
        let dot = name.iter().position(|&b| b == b'.')?;
        let entry = self.wildcard_hosts.entry(name.get(dot + 1..)?)?;
        (entry.canonical && canonical::is_canonical_label(name.get(..dot)?)).then_some(&entry.vhost)
    }

    #[inline]
    fn select_host(&self, host: &[u8]) -> Option<&Arc<VirtualHost>> {
        if let Some(v) = self.exact_hosts.get(host) {
            return Some(v);
        }
        match host.iter().position(|&b| b == b'.') {
            Some(dot) if dot > 0 => self.wildcard_hosts.get(host.get(dot + 1..)?),
            _ => None,
        }
    }

    /// The virtual host of a rule host.
    fn vhost(&self, key: HostKey<'_>) -> Option<&Arc<VirtualHost>> {
        match key {
            HostKey::Hostless => self.hostless.as_ref(),
            HostKey::Exact(host) => self.exact_hosts.get(host.as_bytes()),
            HostKey::Wildcard(suffix) => self.wildcard_hosts.get(suffix.as_bytes()),
        }
    }

    fn vhosts(&self) -> impl Iterator<Item = &Arc<VirtualHost>> {
        self.hostless.iter().chain(
            self.exact_hosts
                .values()
                .chain(self.wildcard_hosts.values())
                .map(|entry| &entry.vhost),
        )
    }

    /// Replaces (or, with `None`, removes) the virtual host of a rule host.
    fn set_vhost(&mut self, key: HostKey<'_>, vhost: Option<VirtualHost>) {
        let vhost = vhost.map(Arc::new);
        match (key, vhost) {
            (HostKey::Hostless, vhost) => self.hostless = vhost,
            (HostKey::Exact(host), Some(vhost)) => self.exact_hosts.put(host, vhost),
            (HostKey::Exact(host), None) => self.exact_hosts.delete(host),
            (HostKey::Wildcard(suffix), Some(vhost)) => self.wildcard_hosts.put(suffix, vhost),
            (HostKey::Wildcard(suffix), None) => self.wildcard_hosts.delete(suffix),
        }
    }

    fn catch_all_match(&self) -> Option<RouteMatch<'_>> {
        self.catch_all.as_ref().map(|c| RouteMatch {
            backend: &c.backend,
            ingress: Some(&c.ingress),
            rule: None,
            fallback: Some(Fallback::IngressDefault),
            key: MatchKey::CatchAll,
        })
    }

    fn controller_default_match(&self) -> Option<RouteMatch<'_>> {
        self.controller_default.as_ref().map(|backend| RouteMatch {
            backend,
            ingress: None,
            rule: None,
            fallback: Some(Fallback::ControllerDefault),
            key: MatchKey::ControllerDefault,
        })
    }

    /// Whether `key` comes from this table.
    fn owns(&self, route: &RouteMatch<'_>) -> bool {
        match route.key {
            MatchKey::Rule(vhost, _) | MatchKey::Fallback(vhost) => self
                .vhost(HostKey::of(vhost.host.as_deref()))
                .is_some_and(|ours| Arc::ptr_eq(ours, vhost)),
            MatchKey::CatchAll => self
                .catch_all
                .as_ref()
                .is_some_and(|c| std::ptr::eq(&c.backend, route.backend)),
            MatchKey::ControllerDefault => self
                .controller_default
                .as_ref()
                .is_some_and(|b| std::ptr::eq(b, route.backend)),
        }
    }
}

/// What [`RouteTable::update`] starts from.
struct Previous<'p> {
    table: &'p RouteTable,
    changed: &'p HashSet<&'p ObjectRef, RandomState>,
}

/// The Ingresses a table is built from: valid ones oldest first, and what was left out.
struct Admitted<'a> {
    ordered: Vec<&'a Ingress>,
    refs: Arc<[ObjectRef]>,
    /// Where each object of the input counts: its input index by namespace/name.
    last_of: HashMap<Key<'a>, usize, RandomState>,
    /// The rank in `ordered` of each input index; `None` for those left out.
    rank_of: Vec<Option<usize>>,
    quarantined: Vec<Quarantined>,
    warnings: Vec<Warning>,
}

/// Drops duplicates and invalid Ingresses, and orders the rest oldest first. With `previous`,
/// only changed Ingresses are validated again; the others keep their verdict and their order.
fn admit<'a>(ingresses: &[&'a Ingress], previous: Option<&Previous<'_>>) -> Admitted<'a> {
    // Borrowed namespace/name keys: nothing is allocated per Ingress to tell them apart.
    let keys: Vec<Key<'a>> = ingresses.iter().map(|i| Key::of(i)).collect();
    let mut warnings = Vec::new();
    let mut last_of: HashMap<Key<'a>, usize, RandomState> =
        HashMap::with_capacity_and_hasher(keys.len(), RandomState::default());
    for (index, key) in keys.iter().enumerate() {
        if let Some(earlier) = last_of.insert(*key, index) {
            warnings.push(Warning {
                object: ingresses[earlier].object_ref(),
                field: "metadata.name".into(),
                message: "replaced by a later object with the same namespace and name".into(),
            });
        }
    }
    // With a previous table: the changed Ingresses, and the verdicts of the quarantined ones.
    // An Ingress neither changed nor quarantined was admitted before, and still is.
    let verdicts = previous.map(|p| {
        let changed: HashSet<Key<'_>, RandomState> =
            p.changed.iter().map(|o| Key::of_ref(o)).collect();
        let invalid: HashMap<Key<'_>, &Vec<ValidationError>, RandomState> = p
            .table
            .quarantined
            .iter()
            .map(|q| (Key::of_ref(&q.object), &q.errors))
            .collect();
        (changed, invalid)
    });
    let mut quarantined = Vec::new();
    let mut admitted: Vec<(usize, &Ingress)> = Vec::with_capacity(ingresses.len());
    for (index, ingress) in ingresses.iter().enumerate() {
        let key = keys[index];
        if last_of.get(&key) != Some(&index) {
            continue;
        }
        let errors = match &verdicts {
            Some((changed, invalid)) if !changed.contains(&key) => match invalid.get(&key) {
                Some(errors) => (*errors).clone(),
                None => Vec::new(),
            },
            _ => validate::validate_ingress(ingress),
        };
        if errors.is_empty() {
            admitted.push((index, ingress));
        } else {
            quarantined.push(Quarantined {
                object: ingress.object_ref(),
                errors,
            });
        }
    }
    // Older first: timestamped before untimestamped; equal timestamps by namespace/name;
    // untimestamped keep input order.
    let older = |(ia, a): &(usize, &Ingress), (ib, b): &(usize, &Ingress)| {
        let age = |i: &usize, x: &Ingress| (x.metadata.creation_timestamp, *i);
        model::by_age(age(ia, a), age(ib, b), || keys[*ia].cmp(&keys[*ib]))
    };
    let mut refs = None;
    match (&verdicts, previous) {
        (Some((changed, _)), Some(p)) => {
            // The unchanged Ingresses keep their previous order; only the changed ones are
            // sorted, then both merged.
            let (mut fresh, _): (Vec<_>, Vec<_>) = admitted
                .iter()
                .copied()
                .partition(|(i, _)| changed.contains(&keys[*i]));
            fresh.sort_by(|a, b| older(a, b));
            let kept = p
                .table
                .ingresses
                .iter()
                .map(Key::of_ref)
                .filter(|key| !changed.contains(key))
                .filter_map(|key| last_of.get(&key).map(|&i| (i, ingresses[i])));
            let mut merged = Vec::with_capacity(admitted.len());
            let mut fresh = fresh.into_iter().peekable();
            for kept in kept {
                while let Some(next) = fresh.next_if(|f| older(f, &kept).is_lt()) {
                    merged.push(next);
                }
                merged.push(kept);
            }
            merged.extend(fresh);
            admitted = merged;
            // An edit that keeps every Ingress in its place shares the list.
            let same = admitted.len() == p.table.ingresses.len()
                && admitted
                    .iter()
                    .zip(p.table.ingresses.iter())
                    .all(|(&(i, _), object)| keys[i] == Key::of_ref(object));
            if same {
                refs = Some(Arc::clone(&p.table.ingresses));
            }
        }
        _ => admitted.sort_by(older),
    }
    let mut rank_of = vec![None; ingresses.len()];
    for (rank, &(index, _)) in admitted.iter().enumerate() {
        rank_of[index] = Some(rank);
    }
    Admitted {
        refs: refs.unwrap_or_else(|| admitted.iter().map(|(_, i)| i.object_ref()).collect()),
        ordered: admitted.into_iter().map(|(_, ingress)| ingress).collect(),
        last_of,
        rank_of,
        quarantined,
        warnings,
    }
}

/// An Ingress's namespace and name, borrowed; ordered as its [`ObjectRef`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Key<'a> {
    namespace: &'a str,
    name: &'a str,
}

impl<'a> Key<'a> {
    fn of(ingress: &'a Ingress) -> Key<'a> {
        Key {
            namespace: ingress.metadata.namespace(),
            name: &ingress.metadata.name,
        }
    }

    fn of_ref(object: &'a ObjectRef) -> Key<'a> {
        Key {
            namespace: object
                .namespace
                .as_deref()
                .unwrap_or(model::DEFAULT_NAMESPACE),
            name: &object.name,
        }
    }
}

/// Compiles admitted Ingresses into a table: every host, or with `previous` only the hosts of
/// the changed Ingresses (before and after the change), sharing the rest.
fn assemble(
    options: TableOptions,
    admitted: Admitted<'_>,
    previous: Option<&Previous<'_>>,
) -> RouteTable {
    let Admitted {
        ordered,
        refs,
        last_of,
        rank_of,
        quarantined,
        warnings,
    } = admitted;
    let mut table = match previous {
        Some(p) => RouteTable {
            exact_hosts: p.table.exact_hosts.clone(),
            wildcard_hosts: p.table.wildcard_hosts.clone(),
            hostless: p.table.hostless.clone(),
            hosts_of: p.table.hosts_of.clone(),
            rule_count: p.table.rule_count,
            ..RouteTable::empty(options, refs, 0, 0)
        },
        None => {
            let hosts: usize = ordered.iter().map(|i| i.spec.rules.len()).sum();
            RouteTable::empty(options, refs, hosts, ordered.len())
        }
    };
    table.quarantined = quarantined;
    table.input_warnings = warnings;

    // The changed Ingresses that are in the new table, by rank.
    let mut fresh: Vec<usize> = Vec::new();
    match previous {
        None => {
            // Every host, with its rules.
            let (order, rules) = rules_by_host(&ordered, 0..ordered.len(), |_| true);
            for ingress in &ordered {
                if !ingress.spec.rules.is_empty() {
                    table.hosts_of.put(ingress);
                }
            }
            for key in order {
                let vhost = compile_host(
                    key,
                    &rules[&key],
                    &ordered,
                    &table.ingresses,
                    &table.options,
                );
                table.rule_count += vhost.rules.len();
                table.set_vhost(key, Some(vhost));
            }
        }
        Some(p) => {
            fresh = p
                .changed
                .iter()
                .filter_map(|o| last_of.get(&Key::of_ref(o)))
                .filter_map(|&index| rank_of[index])
                .collect();
            fresh.sort_unstable();
            fresh.dedup();
            // The hosts the changed Ingresses had rules for, and those they have now.
            let mut touched: Vec<HostKey<'_>> = Vec::new();
            for object in p.changed.iter() {
                if let Some(entry) = p.table.hosts_of.get(Key::of_ref(object)) {
                    touched.extend(entry.hosts.iter().map(|h| HostKey::of(h.as_deref())));
                }
            }
            for &rank in &fresh {
                touched.extend(
                    ordered[rank]
                        .spec
                        .rules
                        .iter()
                        .map(|r| HostKey::of(r.host())),
                );
            }
            let touched: HashSet<HostKey<'_>, RandomState> = touched.into_iter().collect();
            for object in p.changed.iter() {
                table.hosts_of.delete(Key::of_ref(object));
            }
            for &rank in &fresh {
                if !ordered[rank].spec.rules.is_empty() {
                    table.hosts_of.put(ordered[rank]);
                }
            }
            // The unchanged Ingresses that had rules for a touched host still have them; the
            // changed ones that have them now join. Each is read once, in age order.
            let mut contributors: Vec<usize> = touched
                .iter()
                .filter_map(|&key| p.table.vhost(key))
                .flat_map(|vhost| &vhost.ingresses)
                .filter(|object| !p.changed.contains(object))
                .filter_map(|object| last_of.get(&Key::of_ref(object)))
                .filter_map(|&index| rank_of[index])
                .chain(fresh.iter().copied())
                .collect();
            contributors.sort_unstable();
            contributors.dedup();
            let (_, rules) = rules_by_host(&ordered, contributors, |key| touched.contains(key));
            for &key in &touched {
                if let Some(old) = p.table.vhost(key) {
                    table.rule_count -= old.rules.len();
                }
                let vhost = rules.get(&key).map(|rules| {
                    compile_host(key, rules, &ordered, &table.ingresses, &table.options)
                });
                table.rule_count += vhost.as_ref().map_or(0, |v| v.rules.len());
                table.set_vhost(key, vhost);
            }
        }
    }

    // With no host selected: the oldest rule-less Ingress's defaultBackend, else the host-less
    // virtual host's fallback. After an update, only a changed rule-less Ingress can change
    // the first.
    let rescan = previous.is_none_or(|p| {
        p.table
            .catch_all
            .as_ref()
            .is_some_and(|c| !c.hostless && p.changed.contains(&c.ingress))
            || fresh.iter().any(|&rank| {
                let spec = &ordered[rank].spec;
                spec.rules.is_empty() && spec.default_backend.is_some()
            })
    });
    let ruleless = if rescan {
        ordered
            .iter()
            .zip(table.ingresses.iter())
            .filter(|(ingress, _)| ingress.spec.rules.is_empty())
            .find_map(|(ingress, object)| {
                let backend = ingress.spec.default_backend.as_ref()?;
                let backend = Backend::from_ingress_backend(ingress.metadata.namespace(), backend)?;
                Some(CatchAll {
                    backend,
                    ingress: object.clone(),
                    hostless: false,
                })
            })
    } else {
        previous
            .and_then(|p| p.table.catch_all.clone())
            .filter(|c| !c.hostless)
    };
    table.catch_all = ruleless.or_else(|| {
        let vhost = table.hostless.as_ref()?;
        let target = vhost.fallback?;
        Some(CatchAll {
            backend: vhost.backends[target.backend as usize].clone(),
            ingress: vhost.ingresses[target.ingress as usize].clone(),
            hostless: true,
        })
    });

    // The TLS table depends only on the Ingresses with TLS entries: shared when no changed
    // Ingress had or has any.
    match previous {
        Some(p)
            if p.changed.iter().all(|object| !p.table.tls.involves(object))
                && fresh.iter().all(|&rank| ordered[rank].spec.tls.is_empty()) =>
        {
            table.tls = Arc::clone(&p.table.tls);
            table.tls_report = Arc::clone(&p.table.tls_report);
        }
        _ => {
            let with_refs: Vec<_> = ordered
                .iter()
                .copied()
                .zip(table.ingresses.iter())
                .collect();
            let (tls, report) = TlsTable::build(&with_refs);
            table.tls = Arc::new(tls);
            table.tls_report = Arc::new(report);
        }
    }
    table
}

impl RouteTable {
    /// A table without hosts, sized for about `hosts` hosts and `ingresses` Ingresses.
    fn empty(
        options: TableOptions,
        ingresses: Arc<[ObjectRef]>,
        hosts: usize,
        with_rules: usize,
    ) -> RouteTable {
        let hasher = RandomState::default();
        RouteTable {
            controller_default: options.default_backend.clone(),
            options,
            diagnostics: OnceLock::new(),
            quarantined: Vec::new(),
            input_warnings: Vec::new(),
            ingresses,
            exact_hosts: Sharded::new(hasher.clone(), hosts),
            wildcard_hosts: Sharded::new(hasher.clone(), hosts / 8),
            hostless: None,
            hosts_of: Sharded::new(hasher, with_rules),
            catch_all: None,
            rule_count: 0,
            tls: Arc::default(),
            tls_report: Arc::default(),
        }
    }
}

/// Each host's rules as (rank in `ordered`, rule index), in age and then rule order, over the
/// Ingresses at `ranks` (ascending), for the hosts `keep` accepts; and the hosts in order of
/// first appearance. One pass over those Ingresses' rules, however many hosts they name.
#[allow(clippy::type_complexity)]
fn rules_by_host<'i>(
    ordered: &[&'i Ingress],
    ranks: impl IntoIterator<Item = usize>,
    keep: impl Fn(&HostKey<'i>) -> bool,
) -> (
    Vec<HostKey<'i>>,
    HashMap<HostKey<'i>, Vec<(usize, usize)>, RandomState>,
) {
    let mut order = Vec::new();
    let mut rules: HashMap<HostKey<'i>, Vec<(usize, usize)>, RandomState> = HashMap::default();
    for rank in ranks {
        for (index, rule) in ordered[rank].spec.rules.iter().enumerate() {
            let key = HostKey::of(rule.host());
            if keep(&key) {
                rules
                    .entry(key)
                    .or_insert_with(|| {
                        order.push(key);
                        Vec::new()
                    })
                    .push((rank, index));
            }
        }
    }
    (order, rules)
}

/// Compiles one virtual host from its rules: (rank into `ordered`, rule index), in age and
/// then rule order.
fn compile_host(
    key: HostKey<'_>,
    rules: &[(usize, usize)],
    ordered: &[&Ingress],
    refs: &[ObjectRef],
    options: &TableOptions,
) -> VirtualHost {
    let host = match key {
        HostKey::Hostless => None,
        HostKey::Exact(host) => Some(host.into()),
        HostKey::Wildcard(suffix) => Some(format!("*.{suffix}").into()),
    };
    let by_ingress: Vec<&[(usize, usize)]> = rules.chunk_by(|a, b| a.0 == b.0).collect();
    let first_rule = rules.first().map_or(0, |&(_, index)| index);
    let mut builder = HostBuilder {
        vhost: VirtualHost {
            host,
            root: Node::default(),
            children: Vec::new(),
            tails: Vec::new(),
            rules: Vec::new(),
            backends: Vec::new(),
            ingresses: by_ingress.iter().map(|r| refs[r[0].0].clone()).collect(),
            first_rule: u32::try_from(first_rule).unwrap_or(u32::MAX),
            fallback: None,
            conflicts: Vec::new(),
            warnings: Vec::new(),
        },
        slots: vec![Slots::default()],
        children: vec![Children::default()],
        backend_ids: HashMap::default(),
        options,
    };
    let mut indices = Vec::new();
    for (local, group) in by_ingress.iter().enumerate() {
        indices.clear();
        indices.extend(group.iter().map(|&(_, index)| index));
        builder.add_ingress(local as Id, ordered[group[0].0], &indices);
    }
    builder.settle();
    builder.vhost
}

/// One candidate for a node slot while building: sorted to find the winner.
#[derive(Debug, Clone)]
struct Candidate {
    /// Prefix rules only: a trailing `/` in the rule path outranks its absence.
    trailing: bool,
    rule_index: usize,
    path_index: usize,
    rule: Rule,
}

impl Candidate {
    fn order(&self) -> (bool, Id, usize, usize) {
        (
            !self.trailing,
            self.rule.ingress,
            self.rule_index,
            self.path_index,
        )
    }

    fn rule_ref(&self, ingresses: &[ObjectRef]) -> RuleRef {
        RuleRef {
            ingress: ingresses[self.rule.ingress as usize].clone(),
            field: format!(
                "spec.rules[{}].http.paths[{}]",
                self.rule_index, self.path_index
            ),
        }
    }
}

#[derive(Debug, Default)]
struct Slots {
    exact: Vec<Candidate>,
    exact_slash: Vec<Candidate>,
    prefix: Vec<Candidate>,
}

/// Compiles one [`VirtualHost`].
struct HostBuilder<'o> {
    vhost: VirtualHost,
    slots: Vec<Slots>,
    /// Each node's children, laid out in the virtual host when it is settled.
    children: Vec<Children>,
    backend_ids: HashMap<Backend, Id, RandomState>,
    options: &'o TableOptions,
}

impl HostBuilder<'_> {
    fn backend(&mut self, backend: Backend) -> Id {
        let next = self.vhost.backends.len() as Id;
        *self.backend_ids.entry(backend).or_insert_with_key(|b| {
            self.vhost.backends.push(b.clone());
            next
        })
    }

    fn node(&mut self) -> Id {
        self.slots.push(Slots::default());
        self.children.push(Children::default());
        (self.slots.len() - 1) as Id
    }

    /// Adds the rules of `ingress` (local rank `local`) at `rule_indices`, which are this
    /// host's.
    fn add_ingress(&mut self, local: Id, ingress: &Ingress, rule_indices: &[usize]) {
        let namespace = ingress.metadata.namespace();
        let default_backend = ingress
            .spec
            .default_backend
            .as_ref()
            .and_then(|b| Backend::from_ingress_backend(namespace, b));
        for &rule_index in rule_indices {
            let Some(rule) = ingress.spec.rules.get(rule_index) else {
                continue;
            };
            if self.vhost.fallback.is_none() {
                if let Some(backend) = default_backend.clone() {
                    self.vhost.fallback = Some(Target {
                        backend: self.backend(backend),
                        ingress: local,
                    });
                }
            }
            let Some(http) = &rule.http else { continue };
            for (path_index, path) in http.paths.iter().enumerate() {
                let Some(path_type) = path.path_type() else {
                    continue;
                };
                let Some(backend) = Backend::from_ingress_backend(namespace, &path.backend) else {
                    continue;
                };
                let written = path.path.as_deref().unwrap_or_default();
                let effective = if written.is_empty() { "/" } else { written };
                if let Some(reason) = self.never_matches(effective) {
                    self.vhost.warnings.push(Warning {
                        object: self.vhost.ingresses[local as usize].clone(),
                        field: format!("spec.rules[{rule_index}].http.paths[{path_index}].path"),
                        message: format!("path {effective:?} can never match: {reason}"),
                    });
                    continue;
                }
                let backend = self.backend(backend);
                let candidate = Candidate {
                    trailing: false,
                    rule_index,
                    path_index,
                    rule: Rule {
                        backend,
                        ingress: local,
                        path: written.into(),
                        path_type,
                    },
                };
                self.insert(effective, candidate);
            }
        }
    }

    /// Why a rule path can never equal a canonical request path, if it cannot.
    fn never_matches(&self, path: &str) -> Option<String> {
        if self.options.canonical.mode == PathMode::Raw {
            return None;
        }
        let options = CanonicalOptions {
            mode: PathMode::Normalize,
            ..self.options.canonical.clone()
        };
        match canonical::canonical_path(path, &options) {
            Err(rejection) => Some(format!(
                "requests with it are rejected ({})",
                rejection.reason()
            )),
            Ok(canonical) if canonical.query().is_some() => {
                Some("`?` starts the query, which is never matched".into())
            }
            Ok(canonical) if canonical.path() != path => Some(format!(
                "requests are normalised to {:?} before matching",
                canonical.path()
            )),
            Ok(_) => None,
        }
    }

    fn insert(&mut self, path: &str, mut candidate: Candidate) {
        let exact = match candidate.rule.path_type {
            PathType::Exact => true,
            PathType::Prefix => false,
            PathType::ImplementationSpecific => {
                self.options.implementation_specific == ImplementationSpecific::Exact
            }
        };
        let (segments, trailing) = segments(path);
        let mut node: Id = 0;
        for segment in segments {
            node = match self.children[node as usize].get(segment) {
                Some(child) => child,
                None => {
                    let child = self.node();
                    self.children[node as usize].insert(segment, child);
                    child
                }
            };
        }
        let slots = &mut self.slots[node as usize];
        if !exact {
            candidate.trailing = trailing;
            slots.prefix.push(candidate);
        } else if trailing {
            slots.exact_slash.push(candidate);
        } else {
            slots.exact.push(candidate);
        }
    }

    /// Picks each slot's winner, records conflicts, and moves winners into the rule list.
    fn settle(&mut self) {
        let slots = std::mem::take(&mut self.slots);
        let children = std::mem::take(&mut self.children);
        // Winners in node order, which orders the conflicts and warnings.
        let mut nodes: Vec<Option<Node>> = slots
            .into_iter()
            .map(|slots| {
                Some(Node {
                    exact: Winner::new(self.winner(slots.exact, PathType::Exact)),
                    exact_slash: Winner::new(self.winner(slots.exact_slash, PathType::Exact)),
                    prefix: Winner::new(self.winner(slots.prefix, PathType::Prefix)),
                    children: Kids::default(),
                })
            })
            .collect();
        // A child is numbered after its parent: going backwards, every node's children are
        // complete when it takes them in.
        for (id, children) in children.into_iter().enumerate().rev() {
            let mut take = |child: Id| {
                nodes
                    .get_mut(child as usize)
                    .and_then(Option::take)
                    .expect("a child is numbered after its parent, and has one parent")
            };
            let kids = match children {
                Children::Few(list) => {
                    let list_len = self.vhost.children.len();
                    let start = u32::try_from(list_len).expect("fewer children than nodes");
                    let len = u32::try_from(list.len()).expect("a few children");
                    let vhost = &mut self.vhost;
                    vhost.children.extend(list.iter().map(|(segment, child)| {
                        Child::new(segment, take(*child), &mut vhost.tails)
                    }));
                    Kids::Few { start, len }
                }
                Children::Many(map) => Kids::Many(Box::new(
                    map.into_iter()
                        .map(|(segment, child)| (segment, take(child)))
                        .collect(),
                )),
            };
            if let Some(Some(node)) = nodes.get_mut(id) {
                node.children = kids;
            }
        }
        self.vhost.root = nodes
            .first_mut()
            .and_then(Option::take)
            .expect("the root is never a child");
        // The table lives long and grows no more: no spare capacity.
        let vhost = &mut self.vhost;
        vhost.children.shrink_to_fit();
        vhost.tails.shrink_to_fit();
        vhost.rules.shrink_to_fit();
        vhost.backends.shrink_to_fit();
    }

    /// Picks a slot's winner. Candidates with the same trailing-slash form are identical rules:
    /// each such group is a conflict won by its oldest. A Prefix group without the trailing
    /// slash loses every request to the group with it: its winner gets a warning.
    fn winner(&mut self, mut candidates: Vec<Candidate>, kind: PathType) -> Option<Id> {
        if candidates.is_empty() {
            return None;
        }
        candidates.sort_by_key(Candidate::order);
        let vhost = &mut self.vhost;
        let ingresses = &vhost.ingresses;
        let winner = &candidates[0];
        // Sorted, so the trailing-slash group (if any) comes first and each group is contiguous.
        for group in candidates.chunk_by(|a, b| a.trailing == b.trailing) {
            let Some((first, rest)) = group.split_first() else {
                continue;
            };
            if !rest.is_empty() {
                vhost.conflicts.push(Conflict {
                    host: vhost.host.as_deref().map(Into::into),
                    path: first.rule.path.to_string(),
                    path_type: kind,
                    winner: first.rule_ref(ingresses),
                    losers: rest.iter().map(|c| c.rule_ref(ingresses)).collect(),
                });
            }
            if first.trailing != winner.trailing {
                vhost.warnings.push(Warning {
                    object: ingresses[first.rule.ingress as usize].clone(),
                    field: format!(
                        "spec.rules[{}].http.paths[{}].path",
                        first.rule_index, first.path_index
                    ),
                    message: format!(
                        "Prefix {:?} is never selected: {:?} of {} matches the same requests and takes precedence",
                        &*first.rule.path, &*winner.rule.path, winner.rule_ref(ingresses)
                    ),
                });
            }
        }
        let id = vhost.rules.len() as Id;
        let winner = candidates.swap_remove(0);
        vhost.rules.push(winner.rule);
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_split_as_the_trie_expects() {
        fn collect(p: &str) -> (Vec<&str>, bool) {
            let (s, t) = segments(p);
            (s.collect(), t)
        }
        assert_eq!(collect("/"), (vec![], false));
        assert_eq!(collect("/a"), (vec!["a"], false));
        assert_eq!(collect("/a/"), (vec!["a"], true));
        assert_eq!(collect("/a/b"), (vec!["a", "b"], false));
        assert_eq!(collect("//"), (vec![""], true));
        assert_eq!(collect("/a//"), (vec!["a", ""], true));
    }

    #[test]
    fn identical_rules_conflict_even_when_a_trailing_slash_rule_shadows_them() {
        let manifests = crate::Manifests::from_json(
            r#"[
            {"kind":"Ingress","metadata":{"name":"old","namespace":"a","creationTimestamp":"2024-01-01T00:00:00Z"},
             "spec":{"rules":[{"host":"x.com","http":{"paths":[
               {"path":"/foo","pathType":"Prefix","backend":{"service":{"name":"s1","port":{"number":80}}}}]}}]}},
            {"kind":"Ingress","metadata":{"name":"new","namespace":"b","creationTimestamp":"2024-02-01T00:00:00Z"},
             "spec":{"rules":[{"host":"x.com","http":{"paths":[
               {"path":"/foo","pathType":"Prefix","backend":{"service":{"name":"s3","port":{"number":80}}}},
               {"path":"/foo/","pathType":"Prefix","backend":{"service":{"name":"s4","port":{"number":80}}}}]}}]}}
            ]"#,
        );
        let table = RouteTable::build(&manifests.ingresses, TableOptions::default());
        let route = table.route(Some("x.com"), "/foo").unwrap();
        assert_eq!(route.rule().unwrap().path, "/foo/");

        let diagnostics = table.diagnostics();
        assert_eq!(diagnostics.conflicts.len(), 1, "{diagnostics:?}");
        let conflict = &diagnostics.conflicts[0];
        assert_eq!(
            (
                conflict.path.as_str(),
                conflict.winner.ingress.name.as_str()
            ),
            ("/foo", "old")
        );
        assert_eq!(conflict.losers.len(), 1);
        assert_eq!(conflict.losers[0].ingress.name, "new");
        // Only the group's winner is "never selected"; its loser is already in the conflict.
        assert_eq!(diagnostics.warnings.len(), 1, "{diagnostics:?}");
        assert_eq!(diagnostics.warnings[0].object.name, "old");
        assert!(diagnostics.warnings[0].message.contains("never selected"));
    }

    #[test]
    fn route_request_canonicalises_as_canonicalize_request() {
        use http::{Request, Version};
        let table = RouteTable::build(&[], TableOptions::default());
        let options = CanonicalOptions::default();
        let cases: &[(Version, &str, &[&str])] = &[
            (Version::HTTP_11, "/a", &["example.com"]),
            (Version::HTTP_11, "/a/../b", &["Example.COM:8080"]),
            (Version::HTTP_11, "/", &["example.com."]),
            (Version::HTTP_11, "/", &["10.0.0.1:80"]),
            (Version::HTTP_11, "/", &["[::1]"]),
            (Version::HTTP_11, "/", &["a.com", "b.com"]),
            (Version::HTTP_11, "/", &[]),
            (Version::HTTP_10, "/", &[]),
            (Version::HTTP_11, "/", &["bad host"]),
            (Version::HTTP_11, "/", &["example.com:99999"]),
            (Version::HTTP_11, "http://a.com/x", &["b.com"]),
            (Version::HTTP_2, "http://a.com/x", &["b.com"]),
            (Version::HTTP_2, "http://a.com/x", &["A.com:80"]),
            (Version::HTTP_11, "/%2e%2E/x", &["example.com"]),
            (Version::HTTP_11, "/a%2Fb", &["example.com"]),
        ];
        for &(version, uri, hosts) in cases {
            let mut builder = Request::builder().version(version).uri(uri);
            for &host in hosts {
                builder = builder.header(http::header::HOST, host);
            }
            let request = builder.body(()).unwrap();
            let expected = canonical::canonicalize_request(&request, &options)
                .map(|c| (c.host, c.path.path().to_owned()));
            let routed = table
                .route_request(&request)
                .map(|r| (r.host, r.path.path().to_owned()));
            assert_eq!(routed, expected, "{version:?} {uri} {hosts:?}");
        }
    }

    /// Hosts of every shape a table may hold: plain, nested, numeric-looking, and one that is
    /// not its own canonical name (all-numeric labels are left to the full host parser).
    const TRUSTED_HOSTS: [&str; 9] = [
        "x.com",
        "a-b.x.com",
        "123",
        "0-0.0",
        "1-2.3",
        "*.x.com",
        "*.0-0.0",
        "*.3",
        "*.b.c",
    ];

    fn trusted_hosts_table(canonical: CanonicalOptions) -> RouteTable {
        let ingresses: Vec<String> = TRUSTED_HOSTS
            .iter()
            .enumerate()
            .map(|(i, host)| {
                format!(
                    r#"{{"kind":"Ingress","metadata":{{"name":"i{i}","namespace":"n","creationTimestamp":"2024-01-01T00:00:00Z"}},
                    "spec":{{"rules":[{{"host":"{host}","http":{{"paths":[
                      {{"path":"/a","pathType":"Prefix","backend":{{"service":{{"name":"s{i}","port":{{"number":80}}}}}}}}]}}}}]}}}}"#
                )
            })
            .collect();
        let manifests = crate::Manifests::from_json(&format!("[{}]", ingresses.join(",")));
        assert!(manifests.errors.is_empty(), "{:?}", manifests.errors);
        let options = TableOptions {
            canonical,
            ..TableOptions::default()
        };
        RouteTable::build(&manifests.ingresses, options)
    }

    /// `route_request` answers what canonicalising the request and routing the result does,
    /// whether or not it took the unchecked path for a host of the table.
    fn assert_route_request_is_canonical_routing(table: &RouteTable, hosts: &[&str], target: &str) {
        use http::Request;
        let mut builder = Request::builder().uri(target);
        for &host in hosts {
            builder = builder.header(http::header::HOST, host);
        }
        let Ok(request) = builder.body(()) else {
            return;
        };
        let routed = table.route_request(&request).map(|r| {
            let route = r
                .route
                .map(|m| (m.backend().clone(), m.rule().map(|r| r.path)));
            (r.host, r.path.path().to_owned(), route)
        });
        let expected =
            canonical::canonicalize_request(&request, &table.options.canonical).map(|c| {
                let route = table
                    .route(c.host.name(), c.path.path())
                    .map(|m| (m.backend().clone(), m.rule().map(|r| r.path)));
                (c.host, c.path.path().to_owned(), route)
            });
        assert_eq!(routed, expected, "{hosts:?} {target:?}");
    }

    #[test]
    fn hosts_of_the_table_are_routed_unchecked_only_when_canonical() {
        assert!(canonical::is_canonical_name("x.com"));
        assert!(canonical::is_canonical_name("a-b.x.com"));
        assert!(!canonical::is_canonical_name("123"));
        assert!(!canonical::is_canonical_name("X.com"));
        let table = trusted_hosts_table(CanonicalOptions::default());
        assert_eq!(table.rule_count(), TRUSTED_HOSTS.len());
        for host in [
            "x.com",
            "X.COM",
            "x.com.",
            "x.com:8080",
            "x.com.:1",
            "x.com:",
            "x.com:65536",
            "x.com:+1",
            "x.com..",
            ".x.com",
            "x.com:80:80",
            "a-b.x.com:443",
            "123",
            "123:80",
            "0-0.0",
            "1-2.3.",
            "[::1]:80",
            "x.com:99999",
            "y.x.com",
            "Y.x.com",
            "y.X.com",
            "y_-9.x.com:80",
            "y..x.com",
            "a.b.x.com",
            "7.3",
            "1.2.3",
            "a.3",
            "a.b.c",
            "-.b.c",
            "1-2.0-0.0",
            "1.0-0.0",
        ] {
            assert_route_request_is_canonical_routing(&table, &[host], "/a/b");
            assert_route_request_is_canonical_routing(&table, &[host], "/a/../a%2Fb");
        }
        assert_route_request_is_canonical_routing(&table, &["x.com", "x.com"], "/a");
        assert_route_request_is_canonical_routing(&table, &["y.com"], "http://x.com/a");
        let short = trusted_hosts_table(CanonicalOptions {
            max_host_len: 4,
            ..CanonicalOptions::default()
        });
        for host in ["x.com", "x.com.", "123", "x.co"] {
            assert_route_request_is_canonical_routing(&short, &[host], "/a");
        }
    }

    proptest::proptest! {
        #[test]
        fn route_request_is_canonical_routing_on_random_hosts(
            host in proptest::prop_oneof![
                "(x|X|a-b\\.x|123|0-0|1-2)(\\.(com|COM|0|3))?\\.{0,2}(:[0-9+]{0,6})?",
                "([a-zA-Z0-9_\\-]{0,3}\\.)?([a-z0-9_\\-]{0,3}\\.){0,2}(x\\.com|0-0\\.0|3|b\\.c|B\\.c)\\.?(:[0-9]{1,2})?",
                "[a-bxX0-9.:\\-\\[\\]_ ]{0,12}",
            ],
            target in "/(a|A|\\.\\.|%41|%2F)?(/[a.]{0,2}){0,2}",
            max_host_len in proptest::prop_oneof![proptest::strategy::Just(253usize), 0usize..8],
        ) {
            let table = trusted_hosts_table(CanonicalOptions {
                max_host_len,
                ..CanonicalOptions::default()
            });
            assert_route_request_is_canonical_routing(&table, &[&host], &target);
        }
    }

    #[test]
    fn tables_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<RouteTable>();
        shareable::<Diagnostics>();
    }

    #[test]
    fn sharded_maps_spread_out_as_they_grow_and_share_untouched_shards() {
        type Entry = (String, u32);
        let mut map: Sharded<Entry> = Sharded::new(RandomState::default(), 0);
        assert_eq!(map.shards.len(), 1);
        let hasher = map.hasher.clone();
        let rehash = |e: &Entry| hasher.hash_one(e.0.as_str());
        for i in 0..5_000u32 {
            let key = format!("k{i}");
            let hash = map.hash(key.as_str());
            map.insert(hash, (key.clone(), i), |e| e.0 == key, rehash);
        }
        assert_eq!(map.len, 5_000);
        assert!(
            map.shards.len() >= 5_000 / (4 * SHARD_SIZE),
            "{}",
            map.shards.len()
        );
        let before = map.clone();
        for i in (0..5_000u32).step_by(2) {
            let key = format!("k{i}");
            let removed = map.remove(map.hash(key.as_str()), |e| e.0 == key);
            assert_eq!(removed, Some((key, i)));
        }
        assert_eq!(map.len, 2_500);
        assert_eq!(map.remove(map.hash("k0"), |e| e.0 == "k0"), None);
        for i in 0..5_000u32 {
            let key = format!("k{i}");
            let found = map.find(map.hash(key.as_str()), |e| e.0 == key);
            assert_eq!(found.map(|e| e.1), (i % 2 == 1).then_some(i), "{key}");
            let old = before.find(before.hash(key.as_str()), |e| e.0 == key);
            assert_eq!(old.map(|e| e.1), Some(i), "the clone keeps {key}");
        }
        // One change copies one shard; the others stay shared.
        let mut next = map.clone();
        next.remove(next.hash("k1"), |e| e.0 == "k1");
        let shared = next
            .shards
            .iter()
            .zip(&map.shards)
            .filter(|(a, b)| Arc::ptr_eq(a, b))
            .count();
        assert_eq!(shared, map.shards.len() - 1);
    }

    #[test]
    fn a_table_grown_one_ingress_at_a_time_equals_a_full_build() {
        let ingresses: Vec<Ingress> = (0..600)
            .map(|i| {
                let json = format!(
                    r#"{{"kind":"Ingress","metadata":{{"name":"i{i}","namespace":"n{}"}},
                    "spec":{{"rules":[{{"host":"h{i}.example.com","http":{{"paths":[
                      {{"path":"/","pathType":"Prefix","backend":{{"service":{{"name":"s","port":{{"number":80}}}}}}}}]}}}},
                      {{"host":"*.w{}.example.com","http":{{"paths":[
                      {{"path":"/a","pathType":"Exact","backend":{{"service":{{"name":"w","port":{{"number":80}}}}}}}}]}}}}]}}}}"#,
                    i % 7,
                    i % 50
                );
                serde_json::from_str(&json).unwrap()
            })
            .collect();
        let mut table = RouteTable::build(&[], TableOptions::default());
        for (i, ingress) in ingresses.iter().enumerate() {
            table = table.update(&ingresses[..=i], &[ingress.object_ref()]);
        }
        let full = RouteTable::build(&ingresses, TableOptions::default());
        assert!(table.exact_hosts.shards.len() > 1);
        assert_eq!(table.diagnostics(), full.diagnostics());
        assert_eq!(table.ingresses(), full.ingresses());
        assert_eq!(table.rule_count(), full.rule_count());
        for i in 0..600 {
            let host = format!("h{i}.example.com");
            let wild = format!("x.w{}.example.com", i % 50);
            for (host, path) in [(host.as_str(), "/x"), (wild.as_str(), "/a")] {
                let (a, b) = (table.route(Some(host), path), full.route(Some(host), path));
                assert_eq!(
                    a.map(|m| m.backend().clone()),
                    b.map(|m| m.backend().clone())
                );
                assert_eq!(
                    a.and_then(|m| m.ingress().cloned()),
                    b.and_then(|m| m.ingress().cloned())
                );
            }
        }
    }

    /// Segments alike in their length or their first eight bytes.
    const LOOKALIKE_SEGMENTS: [&str; 7] = [
        "",
        "a",
        "abcdefgh",
        "abcdefghi",
        "abcdefghj",
        "abcdefgh\u{e9}",
        "b\0",
    ];
    /// Segments none of [`LOOKALIKE_SEGMENTS`] is, though each is like some of them.
    const ABSENT_SEGMENTS: [&str; 5] = ["b", "abcdefg", "abcdefghij", "abcdefgha", "\0"];

    #[test]
    fn compiled_child_lists_tell_segments_apart_by_length_head_and_tail() {
        let segments = LOOKALIKE_SEGMENTS;
        let mut tails = Vec::new();
        let list: Vec<Child> = segments
            .iter()
            .enumerate()
            .map(|(i, segment)| {
                let node = Node {
                    exact: Winner::new(Some(i as Id)),
                    ..Node::default()
                };
                Child::new(segment, node, &mut tails)
            })
            .collect();
        for (i, segment) in segments.iter().enumerate() {
            let found = Child::find(&list, &tails, segment).and_then(|node| node.exact.get());
            assert_eq!(found, Some(i as Id), "{segment:?}");
        }
        for absent in ABSENT_SEGMENTS {
            assert!(Child::find(&list, &tails, absent).is_none(), "{absent:?}");
        }
    }

    #[test]
    fn children_switch_to_a_map_and_stay_findable() {
        let mut children = Children::default();
        for i in 0..20u32 {
            children.insert(&format!("s{i}"), i);
        }
        assert!(matches!(children, Children::Many(_)));
        for i in 0..20u32 {
            assert_eq!(children.get(&format!("s{i}")), Some(i));
        }
        assert_eq!(children.get("s20"), None);

        // In the short list: segments alike in their first eight bytes or their length.
        let mut children = Children::default();
        let segments = LOOKALIKE_SEGMENTS;
        for (i, segment) in segments.iter().enumerate() {
            children.insert(segment, i as Id);
        }
        assert!(matches!(children, Children::Few(_)));
        for (i, segment) in segments.iter().enumerate() {
            assert_eq!(children.get(segment), Some(i as Id), "{segment:?}");
        }
        for absent in ABSENT_SEGMENTS {
            assert_eq!(children.get(absent), None, "{absent:?}");
        }
        // Moving to a map keeps every segment whole.
        for i in 0..8u32 {
            children.insert(&format!("long-segment-{i}"), 100 + i);
        }
        assert!(matches!(children, Children::Many(_)));
        for (i, segment) in segments.iter().enumerate() {
            assert_eq!(children.get(segment), Some(i as Id), "{segment:?}");
        }
        assert_eq!(children.get("long-segment-7"), Some(107));
    }
}
