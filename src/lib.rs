//! Kubernetes Ingress objects compiled into a fast, correct HTTP routing table.
//!
//! `ingress-router` is the heart of an ingress controller without the Kubernetes client and
//! without the server: it reads `networking.k8s.io/v1` Ingress and IngressClass objects as
//! `kubectl` prints them, validates them as the apiserver does, and compiles the valid ones into
//! a [`RouteTable`] that maps a request's host and path to a backend with Kubernetes precedence,
//! conflicts and fallbacks. Lookups allocate nothing and cost the same for ten rules or a
//! hundred thousand.
//!
//! ```
//! use ingress_router::{Manifests, RouteTable, TableOptions};
//!
//! let manifests = Manifests::parse(r#"
//! apiVersion: networking.k8s.io/v1
//! kind: Ingress
//! metadata: {name: site, namespace: default}
//! spec:
//!   rules:
//!   - host: "*.example.com"
//!     http:
//!       paths:
//!       - {path: /x, pathType: Prefix, backend: {service: {name: web, port: {number: 8080}}}}
//! "#);
//! let table = RouteTable::build(&manifests.ingresses, TableOptions::default());
//!
//! let request = http::Request::get("/x/../x/y?q=1").header("host", "A.Example.com").body(()).unwrap();
//! let routed = table.route_request(&request).unwrap();
//! let route = routed.route.expect("routed");
//! assert_eq!(route.backend().to_string(), "service default/web:8080");
//! assert_eq!(routed.path.path_and_query(), "/x/y?q=1");
//! ```
//!
//! # Layout
//!
//! Everything is re-exported here, flat; only [`model`], the Kubernetes object types, is a
//! path of its own. Inside, the modules follow the data, and imports run one way:
//! `model` (every Kubernetes kind the crate reads) and `diagnostics` (what building reports) at
//! the bottom; `validate` (the apiserver's verdicts) and `load` (manifests) above them; then
//! `dispatch` (which controller serves which Ingress), `table` (the compiled routes), `tls`
//! (which certificate each server name gets) and `endpoints` (Services to addresses), which do
//! not know each other; then `snapshot` (one controller's routes, TLS names, certificates and
//! endpoints, swapped as one value) and `reconcile` (snapshots kept current from object
//! events); and `layer` (the tower middleware, feature `tower`) on top. `canonical` (request
//! canonicalisation) stands beside the table. The routing contract the crate keeps is written
//! out in `docs/routing.md`.
//!
//! # Several controllers
//!
//! A process that hosts one or more ingress controllers registers each with a
//! [`Dispatcher`], which applies IngressClass semantics (`spec.ingressClassName`, the legacy
//! `kubernetes.io/ingress.class` annotation, the default IngressClass, class-less opt-in) and
//! compiles one table per controller, with a [`Reason`] for every Ingress a controller
//! does not serve:
//!
//! ```
//! use ingress_router::{Controller, Dispatcher, Manifests};
//!
//! let cluster = Manifests::parse(r#"
//! kind: IngressClass
//! metadata: {name: public, annotations: {ingressclass.kubernetes.io/is-default-class: "true"}}
//! spec: {controller: example.com/edge}
//! ---
//! kind: Ingress
//! metadata: {name: legacy, annotations: {kubernetes.io/ingress.class: internal}}
//! spec: {defaultBackend: {service: {name: intranet, port: {number: 80}}}}
//! ---
//! kind: Ingress
//! metadata: {name: site}
//! spec: {defaultBackend: {service: {name: web, port: {number: 80}}}}
//! "#);
//! let dispatcher = Dispatcher::new([
//!     Controller::new("example.com/edge"),
//!     Controller::new("example.com/internal").class_annotation("internal"),
//! ])
//! .unwrap();
//! let dispatch = dispatcher.dispatch(&cluster.ingress_classes, &cluster.ingresses);
//!
//! let edge = dispatch.controller("example.com/edge").unwrap();
//! assert_eq!(edge.served[0].name, "site"); // class-less: the default class is edge's
//! let internal = dispatch.controller("example.com/internal").unwrap();
//! assert_eq!(internal.served[0].name, "legacy"); // by the legacy annotation
//! ```
//!
//! # Routing rules in short
//!
//! - Hosts: exact name, then a `*.suffix` wildcard covering exactly one label, then the
//!   host-less rules; a request never falls through from one virtual host to another.
//! - Paths: `Exact` beats everything; then the longest `Prefix` by path element (`/foo`
//!   matches `/foo`, `/foo/`, `/foo/bar`, never `/foobar`); `ImplementationSpecific` is `Prefix`
//!   unless configured as `Exact`. Ties go to the older Ingress, then `namespace/name`, then
//!   rule order; identical rules are reported as conflicts.
//! - Fallbacks follow ingress-nginx: the defaultBackend of the oldest Ingress for the host,
//!   then the controller's default backend, then 404.
//! - Requests are routed on exactly what is forwarded: the host is lower-cased and stripped of
//!   its port, the path percent-decoded (unreserved characters only), freed of dot segments and
//!   repeated slashes; ambiguous requests (`%2F`, `%00`, conflicting `Host`) are answered 400.
//!
//! See [`RouteTable`] for the full matching rules and [`canonical_path`] for request
//! canonicalisation.
//!
//! # Limits
//!
//! Manifests come from tenants and requests from the internet, so both are read within limits
//! that bound time and memory; going over one is an error for that document or request only.
//!
//! - [`LoadLimits`], for manifests ([`Manifests::parse_with`], [`Manifests::read`]): bytes per
//!   input (512 MiB), per document (32 MiB, room for a `kubectl get -o yaml` List) and per
//!   object (3 MiB, the apiserver's request limit); documents and list items per input
//!   (1 000 000); nesting depth (64); rules (10 000) and paths (50 000) per Ingress. YAML
//!   aliases may not expand a document past twice its size. Each limit is checked before the
//!   work it bounds, and a document over one is a [`DocumentError`] naming the limit
//!   ([`DocumentError::limit`]) while the objects around it are still read.
//! - [`CanonicalOptions`], for requests, set in [`TableOptions::canonical`] and so
//!   obeyed by [`RouteTable::route_request`] and the tower layer: paths of at most 8 KiB and
//!   256 segments (else 414), hosts of at most 253 bytes (else 400). Canonicalisation takes
//!   time linear in the request's size whatever the limits.
//!
//! # Features
//!
//! - `yaml` (default): read YAML manifests with `serde_norway`. JSON is always available.
//! - `tower` (default): `IngressLayer` and `IngressService`, the tower middleware
//!   that routes every request of any `tower::Service<http::Request<_>>` (axum, hyper, …),
//!   with ssl-redirect and the SNI/Host check for TLS.
//! - `rustls`: `Certificates`, the certificates of `kubernetes.io/tls` Secrets by server name,
//!   kept in each [`Snapshot`], and `CertResolver`, a `rustls::server::ResolvesServerCert` that
//!   serves them from a [`SharedSnapshot`]. No crypto provider is chosen for you.
//! - `kube`: a live cluster. `ClusterWatch` watches the apiserver (kube-rs) and keeps
//!   [`Reconciler`]s current, `StatusWriter` writes Ingress status, `LeaderElection` elects
//!   the replica that does. Like every library on k8s-openapi, the crate enables no Kubernetes
//!   version: the binary enables one `k8s-openapi` version feature (`v1_33` to `v1_37`).

#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

mod backend;
mod canonical;
#[cfg(feature = "kube")]
mod cluster;
mod diagnostics;
mod dispatch;
mod endpoints;
mod forward;
mod hosts;
#[cfg(feature = "tower")]
mod layer;
mod load;
pub mod model;
#[cfg(feature = "nginx")]
mod nginx;
mod reconcile;
mod snapshot;
mod table;
mod tls;
mod validate;

pub use backend::{Backend, ParseBackendError, ResourceBackend, ServiceBackend, ServicePort};
pub use canonical::{
    canonical_host, canonical_path, canonicalize_request, request_host, CanonicalHost,
    CanonicalOptions, CanonicalPath, CanonicalRequest, PathMode, RejectStatus, Rejection,
    RequestHost,
};
#[cfg(feature = "kube")]
pub use cluster::{
    Address, ClusterWatch, IngressStatuses, LeaderElection, Leadership, PublishAddresses,
    StatusWriter, WatchHandle, WatchState,
};
pub use diagnostics::{
    Conflict, Diagnostics, Quarantined, RuleRef, TlsConflict, TlsSource, Warning,
};
pub use dispatch::{
    Controller, ControllerDispatch, Decision, Dispatch, DispatchError, Dispatcher, NotServed,
    OwnedClass, QuarantinedClass, Reason,
};
pub use endpoints::{EndpointObjects, Endpoints, Unresolved};
pub use forward::{
    strip_client_forwarding, strip_hop_by_hop, EndpointOrder, ForwardedFor, ForwardedHeaders,
    RoundRobin,
};
#[cfg(feature = "tower")]
pub use layer::{
    BodyLimit, ClientAddr, IngressLayer, IngressService, Refusal, ResponseBody, ResponseFuture,
};
pub use load::{DocumentError, Limit, LoadLimits, Manifests};
pub use model::{
    EndpointSlice, Ingress, IngressClass, ObjectKind, ObjectRef, PathType, Secret, SecretRef,
    Service,
};
#[cfg(feature = "nginx")]
pub use nginx::{
    AnnotationVerdict, BackendProtocol, Cidr, CookieAffinity, IngressReview, NginxAnnotations,
    NginxConfig, NginxPolicy, Quirk, RiskLevel, Timeouts, Verdict,
};
pub use reconcile::{Event, Object, Objects, Published, Reconciled, Reconciler, Rejected};
pub use snapshot::{MatchedRoute, SharedSnapshot, Snapshot};
pub use table::{
    Backends, CatchAllExtras, Condition, Fallback, HostExtras, ImplementationSpecific, MatchedRule,
    PathRef, Policy, Refused, RouteExtension, RouteExtras, RouteMatch, RouteTable, RoutedRequest,
    TableOptions, ValueMatch, WeightedBackend,
};
#[cfg(feature = "rustls")]
pub use tls::resolver::{
    certified_key, certified_key_from_pem, CertResolver, CertificateProblem, Certificates,
    SecretError,
};
pub use tls::{Certificate, TlsHost, TlsInfo, TlsTable};
pub use validate::{validate_ingress, validate_ingress_class, ValidationError, Violation};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
