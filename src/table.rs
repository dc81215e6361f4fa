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
//! Hosts live in two hash maps, one for exact names and one for wildcard suffixes. Each virtual
//! host owns a segment trie over its rule paths: a node per path element, holding at most one
//! winning `Exact` rule for the path without and with a trailing slash and one winning `Prefix`
//! rule. Precedence and conflicts are settled once, at build time, so a lookup walks the request
//! path once, remembering the deepest `Prefix` it passed, and finishes at the node where the walk
//! stops. Nodes with few children scan a short inline list; wider ones use a hash map. The hash
//! maps use `foldhash` with a random per-process seed: the keys come from configuration, and a
//! request cannot predict which lookups collide.
//!
//! A radix-tree router such as `matchit`, with routes `P`, `P/` and `P/{*rest}` per prefix, gives
//! the same answers, but `matchit` 0.9 keeps a backtracking stack that allocates on every lookup
//! passing a node with both static and wildcard children — which every nested prefix creates —
//! so the table walks its own trie and allocates nothing (and, measured by the crate's
//! `matchit_layout` bench, is also faster on the same rules).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use foldhash::fast::RandomState;

use crate::backend::Backend;
use crate::canonical::{self, CanonicalOptions, CanonicalPath, PathMode, Rejection, RequestHost};
use crate::model::{self, Ingress, ObjectRef, PathType};
use crate::tls::{TlsConflict, TlsTable};
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
    key: MatchKey,
}

/// What matched, by index into the table that produced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MatchKey {
    Rule(Id),
    Target(Target),
    ControllerDefault(Id),
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
    key: MatchKey,
}

impl MatchedRoute {
    /// Routes a canonical host and path, as [`RouteTable::route`], keeping the table alive.
    pub fn route(table: &Arc<RouteTable>, host: Option<&str>, path: &str) -> Option<MatchedRoute> {
        let key = table.route(host, path)?.key;
        Some(MatchedRoute {
            table: Arc::clone(table),
            key,
        })
    }

    /// For a `route` known to come from `table`.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn of(table: &Arc<RouteTable>, route: RouteMatch<'_>) -> MatchedRoute {
        MatchedRoute {
            table: Arc::clone(table),
            key: route.key,
        }
    }

    /// Keeps `route` together with its table; `None` when `route` came from another table.
    pub fn new(table: &Arc<RouteTable>, route: RouteMatch<'_>) -> Option<MatchedRoute> {
        let ours = table.resolve_checked(route.key)?;
        std::ptr::eq(ours.backend, route.backend).then(|| MatchedRoute {
            table: Arc::clone(table),
            key: route.key,
        })
    }

    /// The match, borrowed from the table.
    pub fn as_match(&self) -> RouteMatch<'_> {
        self.table.resolve(self.key)
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

/// A compiled path rule.
#[derive(Debug, Clone)]
struct Rule {
    backend: Id,
    /// Index into the Ingresses ordered oldest first, so it is also the age rank.
    ingress: Id,
    host: Option<Box<str>>,
    path: Box<str>,
    path_type: PathType,
}

/// A route target without a rule: a backend and the Ingress it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Target {
    backend: Id,
    ingress: Id,
}

#[derive(Debug, Default)]
struct Node {
    /// Winning Exact rule for the path ending at this node, without and with a trailing `/`.
    exact: Option<Id>,
    exact_slash: Option<Id>,
    /// Winning Prefix rule whose path (trailing `/` ignored) ends at this node.
    prefix: Option<Id>,
    children: Children,
}

#[derive(Debug)]
enum Children {
    Few(Vec<(Box<str>, Id)>),
    Many(HashMap<Box<str>, Id, RandomState>),
}

impl Default for Children {
    fn default() -> Self {
        Children::Few(Vec::new())
    }
}

// Beyond this many children a hash lookup beats comparing segments one by one.
const FEW_CHILDREN: usize = 8;

impl Children {
    #[inline]
    fn get(&self, segment: &str) -> Option<Id> {
        match self {
            Children::Few(list) => list
                .iter()
                .find(|(s, _)| &**s == segment)
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

/// The rules for one host (or for the host-less rules).
#[derive(Debug)]
struct VirtualHost {
    root: Id,
    fallback: Option<Target>,
}

/// An immutable routing table compiled from Ingresses.
///
/// Build it once with [`RouteTable::build`], look up many times with [`RouteTable::route`] or
/// [`RouteTable::route_request`]; share it between threads behind an `Arc`.
#[derive(Debug)]
pub struct RouteTable {
    options: TableOptions,
    diagnostics: Diagnostics,
    ingresses: Vec<ObjectRef>,
    backends: Vec<Backend>,
    rules: Vec<Rule>,
    nodes: Vec<Node>,
    vhosts: Vec<VirtualHost>,
    exact_hosts: HashMap<Box<str>, Id, RandomState>,
    wildcard_hosts: HashMap<Box<str>, Id, RandomState>,
    hostless: Option<Id>,
    catch_all: Option<Target>,
    controller_default: Option<Id>,
    tls: TlsTable,
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
        Builder::new(options).build(ingresses.into_iter().collect())
    }

    /// The options the table was built with.
    pub fn options(&self) -> &TableOptions {
        &self.options
    }

    /// What building the table found.
    pub fn diagnostics(&self) -> &Diagnostics {
        &self.diagnostics
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
        self.rules.len()
    }

    /// Routes a canonical host and path.
    ///
    /// `host` is a canonical host name (lower case, no port, no trailing dot; see
    /// [`canonical::canonical_host`]) or `None` for a request without one (or with an IP
    /// literal); `path` is a canonical path without the query ([`canonical::canonical_path`]).
    /// `None` means no rule and no fallback routes the request (404). Allocates nothing.
    pub fn route(&self, host: Option<&str>, path: &str) -> Option<RouteMatch<'_>> {
        let vhost = host.and_then(|h| self.select_host(h));
        match vhost {
            Some(v) => {
                let vhost = &self.vhosts[v as usize];
                if let Some(rule) = self.match_path(vhost.root, path) {
                    return Some(self.rule_match(rule));
                }
                vhost
                    .fallback
                    .map(|t| self.target_match(t))
                    .or_else(|| self.controller_default())
            }
            None => {
                if let Some(v) = self.hostless {
                    if let Some(rule) = self.match_path(self.vhosts[v as usize].root, path) {
                        return Some(self.rule_match(rule));
                    }
                }
                self.catch_all
                    .map(|t| self.target_match(t))
                    .or_else(|| self.controller_default())
            }
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
        let canonical = canonical::canonicalize_request(request, &self.options.canonical)?;
        let route = self.route(canonical.host.name(), canonical.path.path());
        Ok(RoutedRequest {
            route,
            host: canonical.host,
            path: canonical.path,
        })
    }

    fn select_host(&self, host: &str) -> Option<Id> {
        if let Some(&v) = self.exact_hosts.get(host) {
            return Some(v);
        }
        match host.split_once('.') {
            Some((label, suffix)) if !label.is_empty() => self.wildcard_hosts.get(suffix).copied(),
            _ => None,
        }
    }

    #[inline]
    fn match_path(&self, root: Id, path: &str) -> Option<Id> {
        if !path.starts_with('/') {
            return None;
        }
        let (segments, trailing) = segments(path);
        let mut node = &self.nodes[root as usize];
        let mut best = node.prefix;
        for segment in segments {
            match node.children.get(segment) {
                Some(child) => {
                    node = &self.nodes[child as usize];
                    best = node.prefix.or(best);
                }
                None => return best,
            }
        }
        let exact = if trailing {
            node.exact_slash
        } else {
            node.exact
        };
        exact.or(best)
    }

    fn rule_match(&self, id: Id) -> RouteMatch<'_> {
        let rule = &self.rules[id as usize];
        RouteMatch {
            backend: &self.backends[rule.backend as usize],
            ingress: Some(&self.ingresses[rule.ingress as usize]),
            rule: Some(MatchedRule {
                host: rule.host.as_deref(),
                path: &rule.path,
                path_type: rule.path_type,
            }),
            fallback: None,
            key: MatchKey::Rule(id),
        }
    }

    fn target_match(&self, target: Target) -> RouteMatch<'_> {
        RouteMatch {
            backend: &self.backends[target.backend as usize],
            ingress: Some(&self.ingresses[target.ingress as usize]),
            rule: None,
            fallback: Some(Fallback::IngressDefault),
            key: MatchKey::Target(target),
        }
    }

    fn controller_default(&self) -> Option<RouteMatch<'_>> {
        self.controller_default.map(|b| RouteMatch {
            backend: &self.backends[b as usize],
            ingress: None,
            rule: None,
            fallback: Some(Fallback::ControllerDefault),
            key: MatchKey::ControllerDefault(b),
        })
    }

    /// `resolve`, for a key that may come from another table.
    fn resolve_checked(&self, key: MatchKey) -> Option<RouteMatch<'_>> {
        let fits = match key {
            MatchKey::Rule(id) => (id as usize) < self.rules.len(),
            MatchKey::Target(t) => {
                (t.backend as usize) < self.backends.len()
                    && (t.ingress as usize) < self.ingresses.len()
            }
            MatchKey::ControllerDefault(b) => self.controller_default == Some(b),
        };
        fits.then(|| self.resolve(key))
    }

    fn resolve(&self, key: MatchKey) -> RouteMatch<'_> {
        match key {
            MatchKey::Rule(id) => self.rule_match(id),
            MatchKey::Target(target) => self.target_match(target),
            MatchKey::ControllerDefault(b) => RouteMatch {
                backend: &self.backends[b as usize],
                ingress: None,
                rule: None,
                fallback: Some(Fallback::ControllerDefault),
                key,
            },
        }
    }
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

struct Builder {
    table: RouteTable,
    slots: Vec<Slots>,
    backend_ids: HashMap<Backend, Id, RandomState>,
}

impl Builder {
    fn new(options: TableOptions) -> Builder {
        let mut builder = Builder {
            table: RouteTable {
                controller_default: None,
                options,
                diagnostics: Diagnostics::default(),
                ingresses: Vec::new(),
                backends: Vec::new(),
                rules: Vec::new(),
                nodes: Vec::new(),
                vhosts: Vec::new(),
                exact_hosts: HashMap::default(),
                wildcard_hosts: HashMap::default(),
                hostless: None,
                catch_all: None,
                tls: TlsTable::default(),
            },
            slots: Vec::new(),
            backend_ids: HashMap::default(),
        };
        if let Some(backend) = builder.table.options.default_backend.clone() {
            builder.table.controller_default = Some(builder.backend(backend));
        }
        builder
    }

    fn backend(&mut self, backend: Backend) -> Id {
        let next = self.table.backends.len() as Id;
        *self.backend_ids.entry(backend).or_insert_with_key(|b| {
            self.table.backends.push(b.clone());
            next
        })
    }

    fn node(&mut self) -> Id {
        self.table.nodes.push(Node::default());
        self.slots.push(Slots::default());
        (self.table.nodes.len() - 1) as Id
    }

    fn vhost(&mut self, host: Option<&str>) -> Id {
        let existing = match host {
            None => self.table.hostless,
            Some(h) => match h.strip_prefix("*.") {
                Some(suffix) => self.table.wildcard_hosts.get(suffix).copied(),
                None => self.table.exact_hosts.get(h).copied(),
            },
        };
        if let Some(id) = existing {
            return id;
        }
        let root = self.node();
        let id = self.table.vhosts.len() as Id;
        self.table.vhosts.push(VirtualHost {
            root,
            fallback: None,
        });
        match host {
            None => self.table.hostless = Some(id),
            Some(h) => match h.strip_prefix("*.") {
                Some(suffix) => {
                    self.table.wildcard_hosts.insert(suffix.into(), id);
                }
                None => {
                    self.table.exact_hosts.insert(h.into(), id);
                }
            },
        }
        id
    }

    fn build(mut self, ingresses: Vec<&Ingress>) -> RouteTable {
        let ordered = self.admit(ingresses);
        let with_refs: Vec<_> = ordered.iter().copied().zip(&self.table.ingresses).collect();
        let (tls, report) = TlsTable::build(&with_refs);
        self.table.tls = tls;
        self.table.diagnostics.tls_conflicts = report.conflicts;
        self.table.diagnostics.warnings.extend(report.warnings);
        for (rank, ingress) in ordered.iter().enumerate() {
            self.add_ingress(rank as Id, ingress);
        }
        self.settle();
        self.table
    }

    /// Drops duplicates and invalid Ingresses, and orders the rest oldest first.
    fn admit<'a>(&mut self, ingresses: Vec<&'a Ingress>) -> Vec<&'a Ingress> {
        let mut last_of: HashMap<&ObjectRef, usize, RandomState> = HashMap::default();
        let refs: Vec<ObjectRef> = ingresses.iter().map(|i| i.object_ref()).collect();
        for (index, object) in refs.iter().enumerate() {
            if let Some(earlier) = last_of.insert(object, index) {
                self.table.diagnostics.warnings.push(Warning {
                    object: refs[earlier].clone(),
                    field: "metadata.name".into(),
                    message: "replaced by a later object with the same namespace and name".into(),
                });
            }
        }
        let mut admitted: Vec<(usize, &Ingress)> = Vec::new();
        for (index, ingress) in ingresses.into_iter().enumerate() {
            if last_of.get(&refs[index]) != Some(&index) {
                continue;
            }
            let errors = validate::validate_ingress(ingress);
            if errors.is_empty() {
                admitted.push((index, ingress));
            } else {
                self.table.diagnostics.quarantined.push(Quarantined {
                    object: refs[index].clone(),
                    errors,
                });
            }
        }
        // Older first: timestamped before untimestamped; equal timestamps by namespace/name;
        // untimestamped keep input order.
        admitted.sort_by(|(ia, a), (ib, b)| {
            let age = |i: &usize, x: &Ingress| (x.metadata.creation_timestamp, *i);
            model::by_age(age(ia, a), age(ib, b), || refs[*ia].cmp(&refs[*ib]))
        });
        self.table.ingresses = admitted.iter().map(|(i, _)| refs[*i].clone()).collect();
        admitted.into_iter().map(|(_, ingress)| ingress).collect()
    }

    fn add_ingress(&mut self, rank: Id, ingress: &Ingress) {
        let namespace = ingress.metadata.namespace();
        let default_backend = ingress
            .spec
            .default_backend
            .as_ref()
            .and_then(|b| Backend::from_ingress_backend(namespace, b))
            .map(|b| self.backend(b));
        let target = default_backend.map(|backend| Target {
            backend,
            ingress: rank,
        });
        if ingress.spec.rules.is_empty() {
            if self.table.catch_all.is_none() {
                self.table.catch_all = target;
            }
            return;
        }
        for (rule_index, rule) in ingress.spec.rules.iter().enumerate() {
            let host = rule.host();
            let vhost = self.vhost(host);
            let v = &mut self.table.vhosts[vhost as usize];
            if v.fallback.is_none() {
                v.fallback = target;
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
                    self.table.diagnostics.warnings.push(Warning {
                        object: self.table.ingresses[rank as usize].clone(),
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
                        ingress: rank,
                        host: host.map(Into::into),
                        path: written.into(),
                        path_type,
                    },
                };
                let root = self.table.vhosts[vhost as usize].root;
                self.insert(root, effective, candidate);
            }
        }
    }

    /// Why a rule path can never equal a canonical request path, if it cannot.
    fn never_matches(&self, path: &str) -> Option<String> {
        if self.table.options.canonical.mode == PathMode::Raw {
            return None;
        }
        let options = CanonicalOptions {
            mode: PathMode::Normalize,
            ..self.table.options.canonical.clone()
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

    fn insert(&mut self, root: Id, path: &str, mut candidate: Candidate) {
        let exact = match candidate.rule.path_type {
            PathType::Exact => true,
            PathType::Prefix => false,
            PathType::ImplementationSpecific => {
                self.table.options.implementation_specific == ImplementationSpecific::Exact
            }
        };
        let (segments, trailing) = segments(path);
        let mut node = root;
        for segment in segments {
            node = match self.table.nodes[node as usize].children.get(segment) {
                Some(child) => child,
                None => {
                    let child = self.node();
                    self.table.nodes[node as usize]
                        .children
                        .insert(segment, child);
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
        // With no rule-less Ingress, the host-less virtual host's fallback catches the rest.
        if self.table.catch_all.is_none() {
            self.table.catch_all = self
                .table
                .hostless
                .and_then(|v| self.table.vhosts[v as usize].fallback);
        }
        let slots = std::mem::take(&mut self.slots);
        for (node, slots) in slots.into_iter().enumerate() {
            let Slots {
                exact,
                exact_slash,
                prefix,
            } = slots;
            let exact = self.winner(exact, PathType::Exact);
            let exact_slash = self.winner(exact_slash, PathType::Exact);
            let prefix = self.winner(prefix, PathType::Prefix);
            let node = &mut self.table.nodes[node];
            node.exact = exact;
            node.exact_slash = exact_slash;
            node.prefix = prefix;
        }
    }

    /// Picks a slot's winner. Candidates with the same trailing-slash form are identical rules:
    /// each such group is a conflict won by its oldest. A Prefix group without the trailing
    /// slash loses every request to the group with it: its winner gets a warning.
    fn winner(&mut self, mut candidates: Vec<Candidate>, kind: PathType) -> Option<Id> {
        if candidates.is_empty() {
            return None;
        }
        candidates.sort_by_key(Candidate::order);
        let ingresses = &self.table.ingresses;
        let winner = &candidates[0];
        // Sorted, so the trailing-slash group (if any) comes first and each group is contiguous.
        for group in candidates.chunk_by(|a, b| a.trailing == b.trailing) {
            let Some((first, rest)) = group.split_first() else {
                continue;
            };
            if !rest.is_empty() {
                self.table.diagnostics.conflicts.push(Conflict {
                    host: first.rule.host.as_deref().map(Into::into),
                    path: first.rule.path.to_string(),
                    path_type: kind,
                    winner: first.rule_ref(ingresses),
                    losers: rest.iter().map(|c| c.rule_ref(ingresses)).collect(),
                });
            }
            if first.trailing != winner.trailing {
                self.table.diagnostics.warnings.push(Warning {
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
        let id = self.table.rules.len() as Id;
        let winner = candidates.swap_remove(0);
        self.table.rules.push(winner.rule);
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
    fn tables_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<RouteTable>();
        shareable::<Diagnostics>();
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
    }
}
