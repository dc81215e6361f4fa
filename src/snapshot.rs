//! One controller's view of the cluster: everything a request needs, swapped as one value.
//!
//! See [Snapshot] for the model.

use std::fmt;
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;

use crate::backend::Backend;
use crate::diagnostics::Diagnostics;
use crate::endpoints::Endpoints;
use crate::model::{Ingress, ObjectRef};
use crate::table::{Fallback, MatchedRule, OwnedKey, RouteMatch, RouteTable, TableOptions};
#[cfg(feature = "rustls")]
use crate::tls::resolver::Certificates;
use crate::tls::TlsTable;

/// One controller's view of the cluster: everything a request needs, swapped as one value.
///
/// A [`Snapshot`] holds a controller's compiled routes ([`RouteTable`]), the TLS names of the
/// same Ingresses ([`TlsTable`]), the certificates those names get (feature `rustls`), and
/// the ready endpoints of the Services ([`Endpoints`]). A [`SharedSnapshot`] is the handle
/// servers read: one `Arc<Snapshot>` per request or handshake, an atomic swap per change (with
/// `arc-swap`, so readers never wait), and requests in flight finish on the snapshot they
/// started with. A request therefore never sees routes of one version and endpoints or
/// certificates of another.
///
/// The parts are shared between versions: a snapshot made because an EndpointSlice or a
/// Secret changed holds the same route table as the one before it ([`Snapshot::with_endpoints`]
/// copies three pointers). [`Reconciler`](crate::Reconciler) keeps one snapshot per controller
/// current from object events.
///
/// ```
/// use ingress_router::{Manifests, SharedSnapshot, Snapshot, TableOptions};
///
/// let manifests = Manifests::parse(r#"
/// kind: Ingress
/// metadata: {name: web}
/// spec:
///   tls: [{hosts: [secure.example.com], secretName: web-tls}]
///   rules:
///   - host: secure.example.com
///     http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
/// "#);
/// let shared = SharedSnapshot::new(Snapshot::build(&manifests.ingresses, TableOptions::default()));
///
/// let snapshot = shared.load(); // one per request
/// let route = snapshot.routes().route(Some("secure.example.com"), "/").unwrap();
/// assert_eq!(route.backend().to_string(), "service default/web:80");
/// assert_eq!(snapshot.tls().lookup("secure.example.com").unwrap().certificate.to_string(),
///            "secret default/web-tls");
/// ```
///
/// Everything a request to one controller needs, as of one moment; see the
/// [module docs](crate::Snapshot).
///
/// Cheap to clone: every part is behind an `Arc` and shared with the versions around it.
#[derive(Clone)]
pub struct Snapshot {
    routes: Arc<RouteTable>,
    tls: Arc<TlsTable>,
    endpoints: Arc<Endpoints>,
    #[cfg(feature = "rustls")]
    certificates: Arc<Certificates>,
    diagnostics: Arc<OnceLock<Diagnostics>>,
}

impl Snapshot {
    /// The routes and TLS names of `ingresses`, with no endpoints and no certificates.
    pub fn build<'a, I>(ingresses: I, options: TableOptions) -> Snapshot
    where
        I: IntoIterator<Item = &'a Ingress>,
    {
        let ingresses: Vec<&Ingress> = ingresses.into_iter().collect();
        let (routes, ordered) = RouteTable::build_ordered(&ingresses, options);
        let tls = tls_of(&routes, &ordered);
        Snapshot::new(Arc::new(routes), Arc::new(tls))
    }

    /// A snapshot of `routes` and `tls`, with no endpoints and no certificates.
    pub(crate) fn new(routes: Arc<RouteTable>, tls: Arc<TlsTable>) -> Snapshot {
        Snapshot {
            routes,
            tls,
            endpoints: Arc::default(),
            #[cfg(feature = "rustls")]
            certificates: Arc::default(),
            diagnostics: Arc::default(),
        }
    }

    /// The compiled routes.
    pub fn routes(&self) -> &Arc<RouteTable> {
        &self.routes
    }

    /// Which certificate each server name gets, from the same Ingresses' `spec.tls`.
    pub fn tls(&self) -> &Arc<TlsTable> {
        &self.tls
    }

    /// The ready addresses of every Service.
    pub fn endpoints(&self) -> &Arc<Endpoints> {
        &self.endpoints
    }

    /// The certificates to serve, by server name (feature `rustls`).
    #[cfg(feature = "rustls")]
    pub fn certificates(&self) -> &Arc<Certificates> {
        &self.certificates
    }

    /// What compiling the routes and the TLS names found: quarantined Ingresses, conflicts,
    /// warnings. Gathered on first use.
    pub fn diagnostics(&self) -> &Diagnostics {
        self.diagnostics.get_or_init(|| {
            let mut diagnostics = self.routes.diagnostics().clone();
            let input = diagnostics.warnings.len().min(count_input(&self.routes));
            // Input warnings first, then TLS, then each host's: the order of the input.
            let tls_warnings = self.tls.warnings().iter().cloned();
            diagnostics.warnings.splice(input..input, tls_warnings);
            diagnostics.tls_conflicts = self.tls.conflicts().to_vec();
            diagnostics
        })
    }

    /// This snapshot with other endpoints; routes, TLS names and certificates are shared.
    pub fn with_endpoints(&self, endpoints: Arc<Endpoints>) -> Snapshot {
        Snapshot {
            endpoints,
            ..self.clone()
        }
    }

    /// This snapshot with other certificates; routes, TLS names and endpoints are shared.
    #[cfg(feature = "rustls")]
    pub fn with_certificates(&self, certificates: Arc<Certificates>) -> Snapshot {
        Snapshot {
            certificates,
            ..self.clone()
        }
    }

    /// This snapshot with other routes and TLS names (of the same Ingresses); endpoints and
    /// certificates are shared.
    pub(crate) fn with_routes(&self, routes: Arc<RouteTable>, tls: Arc<TlsTable>) -> Snapshot {
        Snapshot {
            routes,
            tls,
            diagnostics: Arc::default(),
            ..self.clone()
        }
    }
}

/// How many of a table's warnings are about the input as a whole (they come first).
fn count_input(routes: &RouteTable) -> usize {
    routes.input_warning_count()
}

/// The TLS names of the Ingresses `routes` was built from, given oldest first.
pub(crate) fn tls_of(routes: &RouteTable, ordered: &[&Ingress]) -> TlsTable {
    let with_refs: Vec<(&Ingress, &ObjectRef)> =
        ordered.iter().copied().zip(routes.ingresses()).collect();
    TlsTable::build(&with_refs)
}

impl From<RouteTable> for Snapshot {
    /// A snapshot of `routes` alone: no TLS names, endpoints or certificates. Use
    /// [`Snapshot::build`] for the TLS names of the same Ingresses.
    fn from(routes: RouteTable) -> Snapshot {
        Snapshot::new(Arc::new(routes), Arc::default())
    }
}

impl Default for Snapshot {
    /// An empty snapshot: every request 404s.
    fn default() -> Snapshot {
        Snapshot::from(RouteTable::build(&[], TableOptions::default()))
    }
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("ingresses", &self.routes.ingresses().len())
            .field("rules", &self.routes.rule_count())
            .field("tls_names", &self.tls.len())
            .field("services", &self.endpoints.service_count())
            .finish()
    }
}

/// A handle to a controller's current [`Snapshot`], shared between the request path and the
/// code that updates it. Cloning the handle is cheap and every clone sees the same snapshot.
#[derive(Clone, Default)]
pub struct SharedSnapshot {
    current: Arc<ArcSwap<Snapshot>>,
}

impl SharedSnapshot {
    /// A handle that starts with `snapshot` (or a [`RouteTable`], as a snapshot of routes
    /// alone).
    pub fn new(snapshot: impl Into<Snapshot>) -> SharedSnapshot {
        SharedSnapshot {
            current: Arc::new(ArcSwap::from_pointee(snapshot.into())),
        }
    }

    /// The current snapshot. Take one per request and use it alone: a swap that happens
    /// meanwhile does not affect it.
    pub fn load(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Makes `snapshot` current and returns the one it replaces. Requests that already hold
    /// the old one finish with it.
    pub fn store(&self, snapshot: impl Into<Snapshot>) -> Arc<Snapshot> {
        self.current.swap(Arc::new(snapshot.into()))
    }

    /// Reads the current snapshot without counting a reference: for code that holds it only
    /// briefly (a handshake's certificate lookup).
    #[cfg(feature = "rustls")]
    pub(crate) fn peek<R>(&self, f: impl FnOnce(&Snapshot) -> R) -> R {
        f(&self.current.load())
    }
}

impl From<Snapshot> for SharedSnapshot {
    fn from(snapshot: Snapshot) -> Self {
        SharedSnapshot::new(snapshot)
    }
}

impl From<RouteTable> for SharedSnapshot {
    fn from(routes: RouteTable) -> Self {
        SharedSnapshot::new(routes)
    }
}

impl fmt::Debug for SharedSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SharedSnapshot")
            .field(&*self.current.load())
            .finish()
    }
}

/// A [`RouteMatch`] that owns a reference to its snapshot: `'static`, and as cheap to clone as
/// an `Arc`.
///
/// This is what [`IngressLayer`](crate::IngressLayer) puts into request extensions: the
/// snapshot the request was routed with (routes, endpoints, certificates) stays alive as long
/// as the match does, even when a new one has been swapped in since, so the code that
/// forwards the request resolves its backend in the same version that routed it.
///
/// ```
/// use std::sync::Arc;
/// use ingress_router::{Manifests, MatchedRoute, Snapshot, TableOptions};
///
/// let manifests = Manifests::parse(r#"
/// kind: Ingress
/// metadata: {name: web}
/// spec:
///   defaultBackend: {service: {name: web, port: {number: 80}}}
/// "#);
/// let snapshot = Arc::new(Snapshot::build(&manifests.ingresses, TableOptions::default()));
/// let matched = MatchedRoute::route(&snapshot, Some("example.com"), "/").unwrap();
/// assert_eq!(matched.backend().to_string(), "service default/web:80");
/// ```
#[derive(Clone)]
pub struct MatchedRoute {
    snapshot: Arc<Snapshot>,
    key: OwnedKey,
    /// The backend chosen for this request, by index among the route's.
    choice: Option<u32>,
}

impl MatchedRoute {
    /// Routes a canonical host and path, as [`RouteTable::route`], keeping the snapshot alive.
    pub fn route(snapshot: &Arc<Snapshot>, host: Option<&str>, path: &str) -> Option<MatchedRoute> {
        let route = snapshot.routes().route(host, path)?;
        Some(MatchedRoute::with_key(
            Arc::clone(snapshot),
            OwnedKey::of(&route),
        ))
    }

    /// Keeps `route` together with its snapshot; `None` when `route` came from another table.
    pub fn new(snapshot: &Arc<Snapshot>, route: RouteMatch<'_>) -> Option<MatchedRoute> {
        snapshot
            .routes()
            .owns(&route)
            .then(|| MatchedRoute::with_key(Arc::clone(snapshot), OwnedKey::of(&route)))
    }

    /// For a key of a route of `snapshot`'s table; takes the snapshot's `Arc` over instead of
    /// counting one more.
    pub(crate) fn with_key(snapshot: Arc<Snapshot>, key: OwnedKey) -> MatchedRoute {
        MatchedRoute {
            snapshot,
            key,
            choice: None,
        }
    }

    /// The same route, with its backend at `index` (among [`RouteMatch::backends`]) chosen for
    /// this request.
    pub fn with_choice(mut self, index: usize) -> MatchedRoute {
        self.choice = u32::try_from(index).ok();
        self
    }

    /// The backend to forward this request to: the one chosen for it (a canary decision of
    /// the routing layer, [`MatchedRoute::with_choice`]) if any, else one for the draw `n`
    /// in proportion to the weights ([`RouteMatch::pick_backend`]).
    pub fn pick_backend(&self, n: u64) -> &Backend {
        let matched = self.as_match();
        let chosen = self
            .choice
            .and_then(|i| matched.backends().iter().nth(i as usize));
        match chosen {
            Some((backend, _)) => backend,
            None => matched.pick_backend(n),
        }
    }

    /// The match, borrowed from the snapshot's table.
    pub fn as_match(&self) -> RouteMatch<'_> {
        self.snapshot.routes().keyed(&self.key)
    }

    /// The backend to forward to: the one chosen for this request
    /// ([`MatchedRoute::with_choice`]), else the route's first ([`RouteMatch::backend`]).
    pub fn backend(&self) -> &Backend {
        match self.choice {
            Some(_) => self.pick_backend(0),
            None => self.as_match().backend(),
        }
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

    /// The snapshot the request was routed with: its endpoints resolve the backend.
    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.snapshot
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
    /// Two matches are equal when they are the same match of the same snapshot.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.snapshot, &other.snapshot) && self.key == other.key
    }
}
