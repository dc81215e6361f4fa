//! The compiled routing table: host and path to backend, with Kubernetes precedence.
//!
//! See [RouteTable] for the model.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, OnceLock};

use foldhash::fast::RandomState;

use crate::backend::Backend;
use crate::canonical::{self, CanonicalOptions, CanonicalPath, PathMode, Rejection, RequestHost};
use crate::diagnostics::{Conflict, Diagnostics, Quarantined, RuleRef, Warning};
use crate::hosts::{HostMap, Sharded};
use crate::model::{self, Ingress, ObjectRef, PathType};
use crate::validate::{self, ValidationError};

mod build;
mod matched;
mod route;
#[cfg(test)]
mod tests;
mod trie;

#[cfg(feature = "nginx")]
pub(crate) use build::path_regex;
use build::*;
use matched::MatchKey;
pub(crate) use matched::OwnedKey;
pub use matched::{MatchedRule, RouteMatch, RoutedRequest};
use route::Extra;
pub(crate) use route::RequestParts;
pub use route::{
    Backends, CatchAllExtras, Condition, HostExtras, PathRef, Policy, Refused, RouteExtension,
    RouteExtras, ValueMatch, WeightedBackend,
};
use trie::*;

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
    /// What rule paths carry beyond host, path and backend (conditions, weighted backends,
    /// policies); `None`: nothing, as for plain Ingresses.
    pub extension: Option<Arc<dyn RouteExtension>>,
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

/// The compiled routing table: host and path to backend, with Kubernetes precedence.
///
/// [`RouteTable::build`] takes Ingress objects and produces an immutable table plus
/// [`Diagnostics`]: the Ingresses it quarantined (with the apiserver's reasons), the conflicts it
/// resolved (winner and losers) and the rule paths that can never match. A lookup then costs a
/// hash lookup for the host and one walk over the request path's segments, whatever the number
/// of rules, and allocates nothing.
///
/// ```
/// use ingress_router::{Manifests, RouteTable, TableOptions};
///
/// let manifests = Manifests::parse(r#"
/// kind: Ingress
/// metadata: {name: shop, namespace: web}
/// spec:
///   rules:
///   - host: "*.example.com"
///     http:
///       paths:
///       - {path: /api, pathType: Prefix, backend: {service: {name: api, port: {number: 8080}}}}
/// "#);
/// let table = RouteTable::build(&manifests.ingresses, TableOptions::default());
///
/// let m = table.route(Some("shop.example.com"), "/api/v1/items").unwrap();
/// assert_eq!(m.backend().to_string(), "service web/api:8080");
/// assert_eq!(m.rule().unwrap().host, Some("*.example.com"));
/// assert!(table.route(Some("example.com"), "/api").is_none());
/// ```
///
/// # Matching
///
/// The rules are those of the Kubernetes API and of ingress-nginx where Kubernetes leaves the
/// choice to the controller:
///
/// - **Host**: exact host first, else the `*.suffix` wildcard whose suffix is the request host
///   minus exactly one (non-empty) first label, else the host-less rules. A request whose host
///   selects a virtual host never falls through to another one's rules.
/// - **Path**, over the merged rules of every Ingress for the selected host: an `Exact` match
///   always wins; otherwise the longest matching `Prefix` by path elements; a rule path with a
///   trailing `/` beats the same path without; then the older Ingress (`creationTimestamp`, then
///   `namespace/name`), then rule order. Ingresses without a timestamp count as newer than all
///   that have one and keep their input order. `ImplementationSpecific` is `Prefix` unless
///   [`TableOptions::implementation_specific`] says `Exact`; an empty one means `/`.
/// - **Fallbacks**: a selected host with no matching path goes to the defaultBackend of the
///   oldest Ingress with rules for that host and a defaultBackend, else to the controller default
///   backend ([`TableOptions::default_backend`]), else nowhere (404). With no host selected and no
///   host-less path matching: the defaultBackend of the oldest Ingress without rules, else of the
///   oldest with host-less rules and a defaultBackend, else the controller default. The
///   defaultBackend of an Ingress whose rules all name hosts never catches other hosts.
///
/// Rule paths must be in the canonical form requests are normalised to
/// ([`canonical_path`](crate::canonical_path)); one that is not (say `ImplementationSpecific` `/a//b`) can never match
/// and is reported as a [`Warning`] instead of being routed.
///
/// # How does it work?
///
/// Hosts live in two hash maps, one for exact names and one for wildcard suffixes, each cut
/// into shards of about 64 hosts that the versions of a table share. Each virtual
/// host owns a segment trie over its rule paths: a node per path element, holding at most one
/// winning `Exact` rule for the path without and with a trailing slash and one winning `Prefix`
/// rule. Precedence and conflicts are settled once, at build time, so a lookup walks the request
/// path once, remembering the deepest `Prefix` it passed, and finishes at the node where the walk
/// stops. Nodes with few children scan a short list of entries that hold each child node itself,
/// so a lookup reads one entry per path element; wider ones use a hash map. The hash
/// maps use `foldhash` with a random per-process seed: the keys come from configuration, and a
/// request cannot predict which lookups collide.
///
/// [`RouteTable::update`] compiles again only the virtual hosts that the changed Ingresses had
/// or have rules for (an index from each Ingress to its hosts says which), copies only the
/// shards those hosts live in, and shares every other virtual host, the list of Ingresses when
/// their order stays, and the TLS table when no changed Ingress has TLS. Diagnostics stay with
/// the virtual hosts and are gathered on first use.
///
/// A radix-tree router such as `matchit`, with routes `P`, `P/` and `P/{*rest}` per prefix, gives
/// the same answers, but `matchit` 0.9 keeps a backtracking stack that allocates on every lookup
/// passing a node with both static and wildcard children — which every nested prefix creates —
/// so the table walks its own trie and allocates nothing (and, measured by the crate's
/// `matchit_layout` bench, is about as fast on the same rules, host lookup included).
///
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
    hosts: HostMap<HostRoutes>,
    hostless: Option<Arc<VirtualHost>>,
    /// The hosts each admitted Ingress has rules for: what changing it touches.
    hosts_of: Sharded<IngressHosts>,
    catch_all: Option<CatchAll>,
    controller_default: Option<Backend>,
    /// Host names that serve another host's virtual host ([`HostExtras::aliases`]).
    aliases: Arc<HashMap<Box<str>, Arc<VirtualHost>, RandomState>>,
    rule_count: usize,
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
        RouteTable::build_ordered(&ingresses, options).0
    }

    /// [`RouteTable::build`], also returning the admitted Ingresses oldest first (the order
    /// of [`RouteTable::ingresses`]).
    pub(crate) fn build_ordered<'a>(
        ingresses: &[&'a Ingress],
        options: TableOptions,
    ) -> (RouteTable, Vec<&'a Ingress>) {
        let admitted = admit(ingresses, None, options.extension.as_deref());
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
        self.update_ordered(&ingresses, changed).0
    }

    /// [`RouteTable::update`], also returning the admitted Ingresses oldest first.
    pub(crate) fn update_ordered<'a>(
        &self,
        ingresses: &[&'a Ingress],
        changed: &[ObjectRef],
    ) -> (RouteTable, Vec<&'a Ingress>) {
        let changed: HashSet<&ObjectRef, RandomState> = changed.iter().collect();
        let previous = Previous {
            table: self,
            changed: &changed,
        };
        let admitted = admit(
            ingresses,
            Some(&previous),
            self.options.extension.as_deref(),
        );
        assemble(self.options.clone(), admitted, Some(&previous))
    }

    /// The options the table was built with.
    pub fn options(&self) -> &TableOptions {
        &self.options
    }

    /// What building the table found.
    ///
    /// Collected on first call (the virtual hosts keep their own findings, so that an update
    /// need not gather every host's), in the order of the input: duplicates, then host by host
    /// in order of first appearance, oldest Ingress first. TLS findings are the
    /// [`TlsTable`](crate::TlsTable)'s; a [`Snapshot`](crate::Snapshot) gathers both.
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
            tls_conflicts: Vec::new(),
        };
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
    ///
    /// Routes with [conditions](crate::Condition) never take a request routed this way, which
    /// has nothing but a host and a path; [`RouteTable::route_request`] checks them.
    pub fn route(&self, host: Option<&str>, path: &str) -> Option<RouteMatch<'_>> {
        self.route_bytes(host.map(str::as_bytes), path, None)
    }

    #[inline]
    fn route_bytes(
        &self,
        host: Option<&[u8]>,
        path: &str,
        request: Option<&RequestParts<'_>>,
    ) -> Option<RouteMatch<'_>> {
        let vhost = host.and_then(|h| {
            let found = self.hosts.get(h).map(|r| (&r.vhost, &*r.trie));
            found.or_else(|| match self.aliases.is_empty() {
                true => None,
                false => std::str::from_utf8(h)
                    .ok()
                    .and_then(|h| self.aliases.get(h))
                    .map(|vhost| (vhost, &*vhost.children)),
            })
        });
        match vhost {
            Some((vhost, trie)) => self.route_in(vhost, trie, path, request),
            None => {
                if let Some(vhost) = &self.hostless {
                    if let Some(rule) = vhost.select(&vhost.children, path, request) {
                        return Some(vhost.rule_match(rule));
                    }
                }
                self.catch_all_match()
                    .or_else(|| self.controller_default_match())
            }
        }
    }

    /// A canonical path on the virtual host the request's host selected, whose trie is
    /// `trie`.
    #[inline]
    fn route_in<'t>(
        &'t self,
        vhost: &'t Arc<VirtualHost>,
        trie: &[Child],
        path: &str,
        request: Option<&RequestParts<'_>>,
    ) -> Option<RouteMatch<'t>> {
        match vhost.select(trie, path, request) {
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
    #[inline]
    pub fn route_request<'t, 'r, B>(
        &'t self,
        request: &'r http::Request<B>,
    ) -> Result<RoutedRequest<'t, 'r>, Rejection> {
        // Filled where it is returned from: the inline host makes each move of the result a
        // copy of some 300 bytes, and this leaves the caller's the only one.
        let mut result = Ok(RoutedRequest {
            route: None,
            host: RequestHost::None,
            path: CanonicalPath::ROOT,
        });
        if let Ok(routed) = &mut result {
            if let Err(rejection) = self.route_request_into(request, routed) {
                result = Err(rejection);
            }
        }
        result
    }

    /// [`RouteTable::route_request`] into `routed`.
    #[inline(always)]
    fn route_request_into<'t, 'r, B>(
        &'t self,
        request: &'r http::Request<B>,
        routed: &mut RoutedRequest<'t, 'r>,
    ) -> Result<(), Rejection> {
        // As `canonicalize_request`, with each part made where it stays: the inline host is
        // large enough for every copy to show.
        let options = &self.options.canonical;
        let target = request
            .uri()
            .path_and_query()
            .map_or("/", |path_and_query| path_and_query.as_str());
        // The path's bytes are in an allocation of their own: ask for them now, so that they
        // arrive while the host is looked up rather than after.
        std::hint::black_box(target.as_bytes().first().copied());
        // Most requests name one of the table's hosts exactly, port and trailing dot aside; a
        // name equal to a canonical one is canonical, and need not be checked byte by byte.
        // Conditions read the rest of the request; only routes that have some look.
        let named = canonical::plain_host_name(request, options)
            .and_then(|name| Some((name, self.hosts.get_unchecked_name(name)?)));
        if let Some((name, routes)) = named {
            canonical::set_canonical_name(&mut routed.host, name);
            routed.path = canonical::canonical_path(target, options)?;
            let parts = RequestParts::of(request, routed.path.query());
            let path = routed.path.path();
            routed.route = self.route_in(&routes.vhost, &routes.trie, path, Some(&parts));
            return Ok(());
        }
        canonical::request_host_into(request, options, &mut routed.host)?;
        routed.path = canonical::canonical_path(target, options)?;
        let parts = RequestParts::of(request, routed.path.query());
        routed.route = self.route_bytes(routed.host.name_bytes(), routed.path.path(), Some(&parts));
        Ok(())
    }

    /// The virtual host of a rule host.
    fn vhost(&self, key: HostKey<'_>) -> Option<&Arc<VirtualHost>> {
        match key {
            HostKey::Hostless => self.hostless.as_ref(),
            HostKey::Exact(host) => self.hosts.exact(host.as_bytes()).map(|r| &r.vhost),
            HostKey::Wildcard(suffix) => self.hosts.wildcard(suffix.as_bytes()).map(|r| &r.vhost),
        }
    }

    fn vhosts(&self) -> impl Iterator<Item = &Arc<VirtualHost>> {
        let hosts = self.hosts.values().map(|routes| &routes.vhost);
        self.hostless.iter().chain(hosts)
    }

    /// Replaces (or, with `None`, removes) the virtual host of a rule host.
    fn set_vhost(&mut self, key: HostKey<'_>, vhost: Option<VirtualHost>) {
        let vhost = vhost.map(Arc::new);
        match (key, vhost) {
            (HostKey::Hostless, vhost) => self.hostless = vhost,
            (HostKey::Exact(host), Some(vhost)) => self.hosts.insert(host, HostRoutes::new(vhost)),
            (HostKey::Exact(host), None) => self.hosts.remove(host),
            (HostKey::Wildcard(suffix), Some(vhost)) => {
                self.hosts.insert_wildcard(suffix, HostRoutes::new(vhost))
            }
            (HostKey::Wildcard(suffix), None) => self.hosts.remove_wildcard(suffix),
        }
    }

    fn catch_all_match(&self) -> Option<RouteMatch<'_>> {
        self.catch_all.as_ref().map(|c| RouteMatch {
            backend: &c.backend,
            ingress: Some(&c.ingress),
            rule: None,
            fallback: Some(Fallback::IngressDefault),
            key: MatchKey::CatchAll(c),
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

    /// How many of the diagnostics' warnings are about the input as a whole.
    pub(crate) fn input_warning_count(&self) -> usize {
        self.input_warnings.len()
    }

    /// Whether `route` comes from this table.
    pub(crate) fn owns(&self, route: &RouteMatch<'_>) -> bool {
        match route.key {
            MatchKey::Rule(vhost, _) | MatchKey::Fallback(vhost) => self
                .vhost(HostKey::of(vhost.host.as_deref()))
                .is_some_and(|ours| Arc::ptr_eq(ours, vhost)),
            MatchKey::CatchAll(_) => self
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
