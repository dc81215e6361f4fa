//! Live snapshots kept current from object events.
//!
//! See [Reconciler] for the model.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

#[cfg(feature = "rustls")]
use rustls::crypto::CryptoProvider;
#[cfg(feature = "rustls")]
use rustls::sign::CertifiedKey;

use crate::dispatch::{Decision, Dispatcher};
use crate::endpoints::{EndpointObjects, Endpoints};
use crate::load::Manifests;
use crate::model::{
    EndpointSlice, Ingress, IngressClass, ObjectKind, ObjectRef, Secret, SecretRef, Service,
};
use crate::snapshot::{tls_of, SharedSnapshot, Snapshot};
use crate::table::{RouteTable, TableOptions};
#[cfg(feature = "rustls")]
use crate::tls::resolver::certified_key;
use crate::validate::{self, ValidationError};

/// A Kubernetes object the reconciler keeps.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Object {
    /// An Ingress.
    Ingress(Ingress),
    /// An IngressClass.
    IngressClass(IngressClass),
    /// A Service.
    Service(Service),
    /// An EndpointSlice.
    EndpointSlice(EndpointSlice),
    /// A Secret; only `kubernetes.io/tls` ones are kept.
    Secret(Secret),
}

impl Object {
    /// The object's kind, namespace and name.
    pub fn object_ref(&self) -> ObjectRef {
        match self {
            Object::Ingress(i) => i.object_ref(),
            Object::IngressClass(c) => c.object_ref(),
            Object::Service(s) => s.object_ref(),
            Object::EndpointSlice(s) => s.object_ref(),
            Object::Secret(s) => s.object_ref(),
        }
    }

    fn validate(&self) -> Vec<ValidationError> {
        match self {
            Object::Ingress(i) => validate::validate_ingress(i),
            Object::IngressClass(c) => validate::validate_ingress_class(c),
            // The apiserver accepted them; nothing here routes differently for a bad one.
            Object::Service(_) | Object::EndpointSlice(_) | Object::Secret(_) => Vec::new(),
        }
    }
}

macro_rules! object_from {
    ($($kind:ident),*) => {$(
        impl From<$kind> for Object {
            fn from(object: $kind) -> Self {
                Object::$kind(object)
            }
        }
    )*};
}
object_from!(Ingress, IngressClass, Service, EndpointSlice, Secret);

/// Every object of one kind: what a watch's initial list or relist returns.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Objects {
    /// Every Ingress, in the order the list gives them.
    Ingresses(Vec<Ingress>),
    /// Every IngressClass.
    IngressClasses(Vec<IngressClass>),
    /// Every Service.
    Services(Vec<Service>),
    /// Every EndpointSlice.
    EndpointSlices(Vec<EndpointSlice>),
    /// Every Secret (only `kubernetes.io/tls` ones are kept).
    Secrets(Vec<Secret>),
    /// Every Service and every EndpointSlice, as resolving needs them: a listing read an
    /// object at a time into an [`EndpointObjects`] never holds the objects themselves.
    ServicesAndSlices(EndpointObjects),
}

impl Objects {
    /// The kind listed: [`ObjectKind::Service`] for [`Objects::ServicesAndSlices`], which
    /// lists EndpointSlices too.
    pub fn kind(&self) -> ObjectKind {
        match self {
            Objects::Ingresses(_) => ObjectKind::Ingress,
            Objects::IngressClasses(_) => ObjectKind::IngressClass,
            Objects::Services(_) | Objects::ServicesAndSlices(_) => ObjectKind::Service,
            Objects::EndpointSlices(_) => ObjectKind::EndpointSlice,
            Objects::Secrets(_) => ObjectKind::Secret,
        }
    }
}

/// A change to the cluster's objects, as a watch or a reload reports it.
// Events are moved once into `Reconciler::apply`, never stored in bulk: boxing would only add
// an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// An object was created or updated.
    Apply(Object),
    /// An object was deleted (by kind, namespace and name).
    Delete(ObjectRef),
    /// These are now all the objects of their kind (a watch's initial list or relist, or
    /// re-reading manifest files).
    ///
    /// Start from one of these rather than from an `Apply` per object: an `Apply` of an
    /// Ingress makes the next table incrementally, but still passes over every Ingress (about
    /// 1 ms at 10 000), so an initial list fed object by object costs time quadratic in its
    /// length.
    ReplaceAll(Objects),
}

impl Event {
    /// The five [`Event::ReplaceAll`]s that make `manifests` all the objects there are: give
    /// them to [`Reconciler::apply_all`] to publish them in one swap per controller.
    pub fn replace_all(manifests: Manifests) -> Vec<Event> {
        vec![
            Event::ReplaceAll(Objects::IngressClasses(manifests.ingress_classes)),
            Event::ReplaceAll(Objects::Ingresses(manifests.ingresses)),
            Event::ReplaceAll(Objects::Services(manifests.services)),
            Event::ReplaceAll(Objects::EndpointSlices(manifests.endpoint_slices)),
            Event::ReplaceAll(Objects::Secrets(manifests.secrets)),
        ]
    }
}

/// A new version of an object that failed validation and was not taken in.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rejected {
    /// The object.
    pub object: ObjectRef,
    /// What the apiserver would say about it.
    pub errors: Vec<ValidationError>,
    /// Whether an earlier valid version of the object still routes.
    pub kept_previous: bool,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} rejected", self.object)?;
        if self.kept_previous {
            f.write_str(" (the previous version keeps serving)")?;
        }
        for (i, error) in self.errors.iter().enumerate() {
            f.write_str(if i == 0 { ": " } else { "; " })?;
            write!(f, "{}: {}", error.field, error.violation)?;
        }
        Ok(())
    }
}

/// A snapshot published for one controller, and which of its parts are new.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Published {
    /// The controller (`None` for the snapshot of a [`Reconciler::every_ingress`] reconciler).
    pub controller: Option<String>,
    /// Whether the route table was compiled again.
    pub routes: bool,
    /// Whether the TLS names were compiled again.
    pub tls: bool,
    /// Whether the endpoints changed.
    pub endpoints: bool,
    /// Whether the certificates changed.
    pub certificates: bool,
}

/// What one batch of events changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reconciled {
    /// The controllers whose route table was compiled again, by name (`None` for the table of
    /// a [`Reconciler::every_ingress`] reconciler), in registration order.
    pub rebuilt: Vec<Option<String>>,
    /// Every snapshot swapped in, with what changed in it, in registration order.
    pub published: Vec<Published>,
    /// New object versions that failed validation, from these events.
    pub rejected: Vec<Rejected>,
}

/// One object as stored: the last valid version, its revision (bumped on every change) and
/// when it first arrived (which orders Ingresses without a `creationTimestamp`).
#[derive(Debug, Clone)]
struct Stored<T> {
    object: T,
    revision: u64,
    arrival: u64,
}

/// One controller's snapshot, as the reconciler keeps it current.
#[derive(Debug)]
struct Live {
    controller: Option<String>,
    options: TableOptions,
    shared: SharedSnapshot,
    /// The revisions of the served Ingresses, in order, the current routes were built from.
    built_from: Option<Vec<u64>>,
}

/// How the certificates of every snapshot are made (feature `rustls`).
#[cfg(feature = "rustls")]
#[derive(Debug, Clone)]
struct CertificateSettings {
    provider: Arc<CryptoProvider>,
    /// The Secret of the default certificate, if one is configured.
    default_secret: Option<SecretRef>,
    /// Served for names nothing else covers when `default_secret` is unset or unusable.
    fallback: Option<Arc<CertifiedKey>>,
}

/// Live snapshots: a [`Reconciler`] keeps one [`SharedSnapshot`] per controller current from
/// object events.
///
/// A data plane serves every request from the snapshot of the moment and must take in changes
/// without stopping. A [`Reconciler`] holds the objects of the cluster as events describe them —
/// [`Event::Apply`], [`Event::Delete`], [`Event::ReplaceAll`] (a watch's initial list or relist
/// of one kind, or a reload of manifest files) — for every kind the crate reads: Ingress,
/// IngressClass, Service, EndpointSlice and Secret (`kubernetes.io/tls` ones; others are not
/// kept). It decides which controller serves which Ingress ([`Dispatcher`]) and, after each
/// batch of events, publishes a new snapshot for every controller the batch affects, in one
/// swap per controller, sharing every part that did not change:
///
/// - an Ingress change recompiles only the hosts it touches, and the TLS names only when an
///   Ingress with TLS entries changed;
/// - a Service or EndpointSlice change recomputes only that Service's endpoints, and shares
///   the route table;
/// - a Secret change reloads only that Secret's certificate (feature `rustls`), and shares the
///   route table.
///
/// The work runs in the caller, never on the request path.
///
/// An Ingress or IngressClass that fails the apiserver's validation does not replace the last
/// valid version of that object: the reconciler keeps routing with the version it had, and
/// reports the rejected one ([`Reconciled::rejected`], [`Reconciler::rejected`]) until a valid
/// version or a delete arrives. A bad edit thus never takes a working route down.
///
/// ```
/// use ingress_router::{Controller, Dispatcher, Event, Manifests, Reconciler};
///
/// let dispatcher = Dispatcher::new([Controller::new("example.com/edge").watch_without_class(true)])
///     .unwrap();
/// let mut reconciler = Reconciler::new(dispatcher);
/// let snapshot = reconciler.snapshot("example.com/edge").unwrap().clone(); // for the server
///
/// let v1 = Manifests::parse(r#"
/// kind: Ingress
/// metadata: {name: web}
/// spec: {defaultBackend: {service: {name: web-v1, port: {number: 80}}}}
/// "#);
/// reconciler.apply_all(Event::replace_all(v1));
/// let routes = snapshot.load();
/// assert_eq!(routes.routes().route(None, "/").unwrap().backend().to_string(), "service default/web-v1:80");
///
/// // An invalid edit: the service name is not a DNS label. The last valid version keeps serving.
/// let broken = Manifests::parse(r#"
/// kind: Ingress
/// metadata: {name: web}
/// spec: {defaultBackend: {service: {name: Web_V2, port: {number: 80}}}}
/// "#);
/// let outcome = reconciler.apply(Event::Apply(broken.ingresses[0].clone().into()));
/// assert_eq!(outcome.rejected.len(), 1);
/// assert!(outcome.rebuilt.is_empty());
/// let routes = snapshot.load();
/// assert_eq!(routes.routes().route(None, "/").unwrap().backend().to_string(), "service default/web-v1:80");
/// ```
///
/// Keeps one [`SharedSnapshot`] per controller up to date from object [`Event`]s.
///
/// See the [module documentation](crate::Reconciler) for the model. The reconciler is not itself shared: it
/// lives with whatever receives the events, and hands out [`SharedSnapshot`] clones to servers.
#[derive(Debug)]
pub struct Reconciler {
    dispatcher: Option<Dispatcher>,
    live: Vec<Live>,
    ingresses: BTreeMap<ObjectRef, Stored<Ingress>>,
    classes: BTreeMap<ObjectRef, Stored<IngressClass>>,
    /// Services and EndpointSlices, as resolving needs them.
    endpoint_objects: EndpointObjects,
    secrets: BTreeMap<ObjectRef, Secret>,
    rejected: BTreeMap<ObjectRef, Rejected>,
    decisions: Vec<Decision>,
    clock: u64,
    /// The endpoints every snapshot shares.
    endpoints: Arc<Endpoints>,
    #[cfg(feature = "rustls")]
    certificates: Option<CertificateSettings>,
    // What changed since the snapshots were last published:
    /// Ingresses added, modified or removed: only the hosts they touch are compiled again.
    changed: Vec<ObjectRef>,
    /// IngressClasses or a relisting of Ingresses: the tables are built from scratch.
    changed_everything: bool,
    /// Services whose endpoints are to be computed again, by namespace and name.
    changed_services: BTreeSet<(String, String)>,
    /// Every Service's endpoints are to be computed again.
    changed_all_endpoints: bool,
    /// Secrets added, modified or removed.
    changed_secrets: HashSet<SecretRef>,
    changed_all_secrets: bool,
}

impl Reconciler {
    /// A reconciler with one snapshot per controller of `dispatcher`, each empty until the
    /// first event.
    pub fn new(dispatcher: Dispatcher) -> Reconciler {
        let live = dispatcher
            .controllers()
            .iter()
            .map(|c| Live::new(Some(c.name().to_owned()), c.options().clone()))
            .collect();
        Reconciler::with(Some(dispatcher), live)
    }

    /// A reconciler with a single snapshot of every valid Ingress, whatever its class, like
    /// [`RouteTable::build`] over all of them. IngressClasses are kept but decide nothing.
    pub fn every_ingress(options: TableOptions) -> Reconciler {
        Reconciler::with(None, vec![Live::new(None, options)])
    }

    fn with(dispatcher: Option<Dispatcher>, live: Vec<Live>) -> Reconciler {
        Reconciler {
            dispatcher,
            live,
            ingresses: BTreeMap::new(),
            classes: BTreeMap::new(),
            endpoint_objects: EndpointObjects::new(),
            secrets: BTreeMap::new(),
            rejected: BTreeMap::new(),
            decisions: Vec::new(),
            clock: 0,
            endpoints: Arc::default(),
            #[cfg(feature = "rustls")]
            certificates: None,
            changed: Vec::new(),
            changed_everything: false,
            changed_services: BTreeSet::new(),
            changed_all_endpoints: false,
            changed_secrets: HashSet::new(),
            changed_all_secrets: false,
        }
    }

    /// Makes certificates part of every snapshot (feature `rustls`): loaded with `provider`
    /// from the `kubernetes.io/tls` Secrets the served Ingresses name; names nothing covers
    /// get the certificate of `default_secret` when it is set and loads, else `fallback`.
    #[cfg(feature = "rustls")]
    pub fn with_certificates(
        mut self,
        provider: Arc<CryptoProvider>,
        default_secret: Option<SecretRef>,
        fallback: Option<Arc<CertifiedKey>>,
    ) -> Reconciler {
        self.certificates = Some(CertificateSettings {
            provider,
            default_secret,
            fallback,
        });
        self.changed_all_secrets = true;
        self
    }

    /// The snapshot of controller `name`; `None` when no such controller is registered.
    pub fn snapshot(&self, name: &str) -> Option<&SharedSnapshot> {
        self.live
            .iter()
            .find(|l| l.controller.as_deref() == Some(name))
            .map(|l| &l.shared)
    }

    /// Every snapshot, with its controller name (`None` for [`Reconciler::every_ingress`]).
    pub fn snapshots(&self) -> impl Iterator<Item = (Option<&str>, &SharedSnapshot)> {
        self.live
            .iter()
            .map(|l| (l.controller.as_deref(), &l.shared))
    }

    /// The valid Ingresses held, in arrival order.
    pub fn ingresses(&self) -> Vec<&Ingress> {
        let mut held: Vec<&Stored<Ingress>> = self.ingresses.values().collect();
        held.sort_by_key(|s| s.arrival);
        held.into_iter().map(|s| &s.object).collect()
    }

    /// The valid IngressClasses held, in arrival order.
    pub fn classes(&self) -> Vec<&IngressClass> {
        let mut held: Vec<&Stored<IngressClass>> = self.classes.values().collect();
        held.sort_by_key(|s| s.arrival);
        held.into_iter().map(|s| &s.object).collect()
    }

    /// The objects whose latest version was rejected, by kind, namespace and name.
    pub fn rejected(&self) -> impl Iterator<Item = &Rejected> {
        self.rejected.values()
    }

    /// Which controller serves each held Ingress, and why, as of the last event; empty for a
    /// [`Reconciler::every_ingress`] reconciler.
    pub fn decisions(&self) -> &[Decision] {
        &self.decisions
    }

    /// The Ingresses some snapshot of this reconciler serves, as of the last event: those a
    /// registered controller serves, or every valid one for a [`Reconciler::every_ingress`]
    /// reconciler.
    pub fn served(&self) -> Vec<&ObjectRef> {
        match &self.dispatcher {
            Some(_) => self
                .decisions
                .iter()
                .filter(|d| d.controller.is_some())
                .map(|d| &d.ingress)
                .collect(),
            None => self.ingresses.keys().collect(),
        }
    }

    /// The Secrets the snapshots can serve a certificate from: those the `spec.tls` entries of
    /// the served Ingresses name, and the default certificate's. A watch needs to hold no
    /// other Secret.
    pub fn referenced_secrets(&self) -> BTreeSet<SecretRef> {
        #[cfg(feature = "rustls")]
        let default = self
            .certificates
            .as_ref()
            .and_then(|c| c.default_secret.clone());
        #[cfg(not(feature = "rustls"))]
        let default = None;
        self.served()
            .into_iter()
            .filter_map(|r| self.ingresses.get(r))
            .filter(|s| !s.object.spec.tls.is_empty())
            .flat_map(|s| {
                let namespace = s.object.metadata.namespace();
                s.object
                    .spec
                    .tls
                    .iter()
                    .filter_map(|t| t.secret_name.as_deref())
                    .map(move |name| SecretRef::new(namespace, name))
            })
            .chain(default)
            .collect()
    }

    /// Takes in one event and publishes what it changed.
    pub fn apply(&mut self, event: Event) -> Reconciled {
        self.apply_all([event])
    }

    /// Takes in a batch of events, then publishes one snapshot for every controller they
    /// affect, in one swap each: a request sees all of the batch or none of it.
    pub fn apply_all(&mut self, events: impl IntoIterator<Item = Event>) -> Reconciled {
        let mut outcome = Reconciled::default();
        for event in events {
            match event {
                Event::Apply(object) => {
                    let object_ref = object.object_ref();
                    self.note_change(&object_ref, Some(&object));
                    if let Some(rejected) = self.put(object) {
                        outcome.rejected.push(rejected);
                    }
                }
                Event::Delete(object) => {
                    self.note_change(&object, None);
                    self.delete(&object);
                }
                Event::ReplaceAll(objects) => {
                    outcome.rejected.extend(self.replace_all(objects));
                }
            }
        }
        self.publish(&mut outcome);
        outcome
    }

    /// Compiles and publishes every snapshot again, whether or not anything changed.
    pub fn rebuild_all(&mut self) -> Reconciled {
        for live in &mut self.live {
            live.built_from = None;
        }
        self.changed_all_endpoints = true;
        self.changed_all_secrets = true;
        let mut outcome = Reconciled::default();
        self.publish(&mut outcome);
        outcome
    }

    /// Records what a change to `object` (now `new`, `None`: deleted) invalidates.
    fn note_change(&mut self, object: &ObjectRef, new: Option<&Object>) {
        match object.kind {
            ObjectKind::Ingress => self.changed.push(object.clone()),
            ObjectKind::IngressClass => self.changed_everything = true,
            ObjectKind::Service => {
                let namespace = object.namespace.clone().unwrap_or_default();
                self.changed_services
                    .insert((namespace, object.name.clone()));
            }
            ObjectKind::EndpointSlice => {
                let namespace = object.namespace.clone().unwrap_or_default();
                // The Service it belonged to, and the one it belongs to now.
                let old = self
                    .endpoint_objects
                    .service_of_slice(&namespace, &object.name);
                let new = match new {
                    Some(Object::EndpointSlice(s)) => s.service_name(),
                    _ => None,
                };
                for service in [old, new].into_iter().flatten() {
                    let key = (namespace.clone(), service.to_owned());
                    self.changed_services.insert(key);
                }
            }
            ObjectKind::Secret => {
                let namespace = object.namespace.as_deref().unwrap_or_default();
                self.changed_secrets
                    .insert(SecretRef::new(namespace, &object.name));
            }
        }
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// Stores `object` when valid; otherwise records and returns why not.
    fn put(&mut self, object: Object) -> Option<Rejected> {
        let object_ref = object.object_ref();
        let errors = object.validate();
        if !errors.is_empty() {
            let rejected = Rejected {
                kept_previous: self.holds(&object_ref),
                object: object_ref.clone(),
                errors,
            };
            self.rejected.insert(object_ref, rejected.clone());
            return Some(rejected);
        }
        self.rejected.remove(&object_ref);
        let revision = self.tick();
        match object {
            Object::Ingress(i) => store(&mut self.ingresses, object_ref, i, revision),
            Object::IngressClass(c) => store(&mut self.classes, object_ref, c, revision),
            Object::Service(s) => self.endpoint_objects.insert_service(&s),
            Object::EndpointSlice(s) => self.endpoint_objects.insert_endpoint_slice(&s),
            Object::Secret(s) if s.is_tls() => {
                self.secrets.insert(object_ref, s);
            }
            // A Secret that is no longer of the TLS type is as good as gone.
            Object::Secret(_) => {
                self.secrets.remove(&object_ref);
            }
        }
        None
    }

    fn holds(&self, object: &ObjectRef) -> bool {
        match object.kind {
            ObjectKind::Ingress => self.ingresses.contains_key(object),
            ObjectKind::IngressClass => self.classes.contains_key(object),
            ObjectKind::Service => {
                let namespace = object.namespace.as_deref().unwrap_or_default();
                self.endpoint_objects.has_service(namespace, &object.name)
            }
            ObjectKind::EndpointSlice => {
                let namespace = object.namespace.as_deref().unwrap_or_default();
                let objects = &self.endpoint_objects;
                objects.service_of_slice(namespace, &object.name).is_some()
            }
            ObjectKind::Secret => self.secrets.contains_key(object),
        }
    }

    fn delete(&mut self, object: &ObjectRef) {
        self.rejected.remove(object);
        match object.kind {
            ObjectKind::Ingress => {
                self.ingresses.remove(object);
            }
            ObjectKind::IngressClass => {
                self.classes.remove(object);
            }
            ObjectKind::Service => {
                let namespace = object.namespace.as_deref().unwrap_or_default();
                self.endpoint_objects
                    .remove_service(namespace, &object.name);
            }
            ObjectKind::EndpointSlice => {
                let namespace = object.namespace.as_deref().unwrap_or_default();
                let objects = &mut self.endpoint_objects;
                objects.remove_endpoint_slice(namespace, &object.name);
            }
            ObjectKind::Secret => {
                self.secrets.remove(object);
            }
        }
    }

    /// Makes `objects` all the objects of their kind; returns the rejected ones.
    fn replace_all(&mut self, objects: Objects) -> Vec<Rejected> {
        match objects {
            Objects::Ingresses(ingresses) => {
                self.changed_everything = true;
                let objects = ingresses.into_iter().map(Object::from).collect();
                self.relist(ObjectKind::Ingress, objects)
            }
            Objects::IngressClasses(classes) => {
                self.changed_everything = true;
                let objects = classes.into_iter().map(Object::from).collect();
                self.relist(ObjectKind::IngressClass, objects)
            }
            Objects::Services(services) => {
                let mut listed = EndpointObjects::new();
                // Each object is dropped as soon as it is taken in.
                for service in services {
                    listed.insert_service(&service);
                }
                self.changed_all_endpoints |= self.endpoint_objects.replace_services(listed);
                Vec::new()
            }
            Objects::EndpointSlices(slices) => {
                let mut listed = EndpointObjects::new();
                for slice in slices {
                    listed.insert_endpoint_slice(&slice);
                }
                self.changed_all_endpoints |= self.endpoint_objects.replace_slices(listed);
                Vec::new()
            }
            Objects::ServicesAndSlices(listed) => {
                if listed != self.endpoint_objects {
                    self.endpoint_objects = listed;
                    self.changed_all_endpoints = true;
                }
                Vec::new()
            }
            Objects::Secrets(mut secrets) => {
                secrets.retain(Secret::is_tls);
                let listed = listing(secrets, Secret::object_ref);
                if listed != self.secrets {
                    self.secrets = listed;
                    self.changed_all_secrets = true;
                }
                Vec::new()
            }
        }
    }

    /// Relists Ingresses or IngressClasses: unchanged objects keep their revision, invalid
    /// ones keep the version held before.
    fn relist(&mut self, kind: ObjectKind, objects: Vec<Object>) -> Vec<Rejected> {
        let old_ingresses = match kind {
            ObjectKind::Ingress => std::mem::take(&mut self.ingresses),
            _ => BTreeMap::new(),
        };
        let old_classes = match kind {
            ObjectKind::IngressClass => std::mem::take(&mut self.classes),
            _ => BTreeMap::new(),
        };
        self.rejected.retain(|object, _| object.kind != kind);
        for object in objects {
            let object_ref = object.object_ref();
            // A listing may repeat an object: the last copy counts.
            self.delete(&object_ref);
            let errors = object.validate();
            let valid = errors.is_empty();
            // Arrival follows the listing, so the result is what building from the listing
            // gives.
            let arrival = self.tick();
            let revision = self.tick();
            let held = match object {
                Object::Ingress(i) => relist(
                    &mut self.ingresses,
                    &old_ingresses,
                    &object_ref,
                    i,
                    valid,
                    (arrival, revision),
                ),
                Object::IngressClass(c) => relist(
                    &mut self.classes,
                    &old_classes,
                    &object_ref,
                    c,
                    valid,
                    (arrival, revision),
                ),
                _ => false,
            };
            if !valid {
                let rejected = Rejected {
                    object: object_ref.clone(),
                    errors,
                    kept_previous: held,
                };
                self.rejected.insert(object_ref, rejected);
            }
        }
        self.rejected
            .values()
            .filter(|r| r.object.kind == kind)
            .cloned()
            .collect()
    }

    /// Brings the endpoints up to date; returns whether they changed.
    fn refresh_endpoints(&mut self) -> bool {
        if std::mem::take(&mut self.changed_all_endpoints) {
            self.changed_services.clear();
            self.endpoints = Arc::new(self.endpoint_objects.endpoints());
            return true;
        }
        let changed = std::mem::take(&mut self.changed_services);
        if changed.is_empty() {
            return false;
        }
        let mut endpoints = (*self.endpoints).clone();
        for (namespace, name) in &changed {
            endpoints = endpoints.with_service_of(&self.endpoint_objects, namespace, name);
        }
        self.endpoints = Arc::new(endpoints);
        true
    }

    /// Re-decides every Ingress, then publishes a snapshot for every controller whose routes,
    /// TLS names, endpoints or certificates changed.
    fn publish(&mut self, outcome: &mut Reconciled) {
        let endpoints_changed = self.refresh_endpoints();
        let changed = std::mem::take(&mut self.changed);
        let everything = std::mem::take(&mut self.changed_everything);
        let changed_secrets = std::mem::take(&mut self.changed_secrets);
        let all_secrets = std::mem::take(&mut self.changed_all_secrets);
        // Only an Ingress or IngressClass event can change what a controller routes: the
        // others skip the pass over every Ingress.
        let routes_stale =
            everything || !changed.is_empty() || self.live.iter().any(|l| l.built_from.is_none());
        let mut held: Vec<&Stored<Ingress>> = Vec::new();
        if routes_stale {
            held = self.ingresses.values().collect();
            held.sort_by_key(|s| s.arrival);
        }
        let ingresses: Vec<&Ingress> = held.iter().map(|s| &s.object).collect();
        // By address: the served lists hold references into `held`.
        let revisions: HashMap<*const Ingress, u64> = held
            .iter()
            .map(|s| (std::ptr::from_ref(&s.object), s.revision))
            .collect();

        let served: Vec<Vec<&Ingress>> = match &self.dispatcher {
            _ if !routes_stale => vec![Vec::new(); self.live.len()],
            Some(dispatcher) => {
                let classes: Vec<IngressClass> = self.classes().into_iter().cloned().collect();
                let plan = dispatcher.plan(&classes, &ingresses);
                self.decisions = plan.decisions;
                plan.controllers
                    .into_iter()
                    .map(|p| p.served_ingresses)
                    .collect()
            }
            None => vec![ingresses.clone()],
        };

        for (live, served) in self.live.iter_mut().zip(served) {
            let previous = live.shared.load();
            let mut next: Option<Snapshot> = None;
            let mut published = Published {
                controller: live.controller.clone(),
                routes: false,
                tls: false,
                endpoints: false,
                certificates: false,
            };
            let inputs: Vec<u64> = served
                .iter()
                .map(|i| revisions[&std::ptr::from_ref(*i)])
                .collect();
            if routes_stale && live.built_from.as_ref() != Some(&inputs) {
                // A table built from the previous inputs only needs the hosts of the changed
                // Ingresses compiled again, and the TLS names only when one of them has TLS.
                let (routes, tls) = match &live.built_from {
                    Some(_) if !everything => {
                        let (routes, ordered) = previous.routes().update_ordered(&served, &changed);
                        let tls_touched = changed.iter().any(|object| {
                            previous.tls().involves(object)
                                || self
                                    .ingresses
                                    .get(object)
                                    .is_some_and(|s| !s.object.spec.tls.is_empty())
                        });
                        let tls = if tls_touched {
                            Arc::new(tls_of(&routes, &ordered))
                        } else {
                            Arc::clone(previous.tls())
                        };
                        (routes, tls)
                    }
                    _ => {
                        let (routes, ordered) =
                            RouteTable::build_ordered(&served, live.options.clone());
                        let tls = Arc::new(tls_of(&routes, &ordered));
                        (routes, tls)
                    }
                };
                published.routes = true;
                published.tls = !Arc::ptr_eq(&tls, previous.tls());
                next = Some(previous.with_routes(Arc::new(routes), tls));
                live.built_from = Some(inputs);
                outcome.rebuilt.push(live.controller.clone());
            }
            if endpoints_changed {
                let base = next.take().unwrap_or_else(|| (*previous).clone());
                next = Some(base.with_endpoints(Arc::clone(&self.endpoints)));
                published.endpoints = true;
            }
            #[cfg(feature = "rustls")]
            if let Some(settings) = &self.certificates {
                let base = next.as_ref().unwrap_or(&previous);
                let names_changed = !Arc::ptr_eq(base.tls(), previous.tls());
                let relevant = |secret: &SecretRef| all_secrets || changed_secrets.contains(secret);
                let default_changed = settings.default_secret.as_ref().is_some_and(&relevant);
                let tls = base.tls();
                let secrets_changed = all_secrets
                    || default_changed
                    || changed_secrets
                        .iter()
                        .any(|s| tls.secret_index(s).is_some());
                if names_changed || secrets_changed {
                    let lookup = |secret: &SecretRef| {
                        let key = ObjectRef::namespaced(
                            ObjectKind::Secret,
                            &secret.namespace,
                            &secret.name,
                        );
                        self.secrets.get(&key)
                    };
                    let default = match (default_changed || all_secrets, &settings.default_secret) {
                        (_, None) => settings.fallback.clone(),
                        (false, Some(_)) => previous.certificates().default_certificate().cloned(),
                        (true, Some(secret)) => lookup(secret)
                            .and_then(|s| certified_key(s, &settings.provider).ok())
                            .map(Arc::new)
                            .or_else(|| settings.fallback.clone()),
                    };
                    let changed = (!all_secrets).then_some(&changed_secrets);
                    let certificates = previous.certificates().next(
                        Arc::clone(base.tls()),
                        lookup,
                        changed,
                        default,
                        &settings.provider,
                    );
                    let base = next.take().unwrap_or_else(|| (*previous).clone());
                    next = Some(base.with_certificates(Arc::new(certificates)));
                    published.certificates = true;
                }
            }
            #[cfg(not(feature = "rustls"))]
            let _ = (&changed_secrets, all_secrets);
            if let Some(snapshot) = next {
                live.shared.store(snapshot);
                outcome.published.push(published);
            }
        }
    }

    /// The Secret of the default certificate, when the reconciler makes certificates and one
    /// is configured, and why it is not served if it is not.
    #[cfg(feature = "rustls")]
    pub fn default_certificate_problem(&self) -> Option<String> {
        let settings = self.certificates.as_ref()?;
        let secret = settings.default_secret.as_ref()?;
        let key = ObjectRef::namespaced(ObjectKind::Secret, &secret.namespace, &secret.name);
        let error = match self.secrets.get(&key) {
            None => "no such Secret".to_owned(),
            Some(s) => certified_key(s, &settings.provider).err()?.to_string(),
        };
        Some(format!("default certificate {secret}: {error}"))
    }
}

impl Live {
    fn new(controller: Option<String>, options: TableOptions) -> Live {
        Live {
            controller,
            shared: SharedSnapshot::new(RouteTable::build(&[], options.clone())),
            options,
            built_from: None,
        }
    }
}

/// The objects of a listing by reference; a repeated object's last copy counts.
fn listing<T>(objects: Vec<T>, key: impl Fn(&T) -> ObjectRef) -> BTreeMap<ObjectRef, T> {
    // Inserted one by one (the last copy of a repeated object counts): collecting would first
    // copy every object into a list to sort.
    let mut listed = BTreeMap::new();
    for object in objects {
        listed.insert(key(&object), object);
    }
    listed
}

/// Stores a valid `object`, keeping its first arrival when it replaces an earlier version.
fn store<T>(map: &mut BTreeMap<ObjectRef, Stored<T>>, key: ObjectRef, object: T, revision: u64) {
    let arrival = map.get(&key).map_or(revision, |s| s.arrival);
    map.insert(
        key,
        Stored {
            object,
            revision,
            arrival,
        },
    );
}

/// Takes in one object of a listing at `arrival`: unchanged, it keeps its revision (so its
/// tables are not rebuilt); valid, it gets `revision`; invalid, the version held before the
/// listing stays, at its place in the listing. Returns whether a version is now held.
fn relist<T: Clone + PartialEq>(
    map: &mut BTreeMap<ObjectRef, Stored<T>>,
    before: &BTreeMap<ObjectRef, Stored<T>>,
    key: &ObjectRef,
    object: T,
    valid: bool,
    (arrival, revision): (u64, u64),
) -> bool {
    let previous = before.get(key);
    let stored = match previous {
        Some(p) if p.object == object => Stored {
            arrival,
            ..p.clone()
        },
        _ if valid => Stored {
            object,
            revision,
            arrival,
        },
        Some(p) => Stored {
            arrival,
            ..p.clone()
        },
        None => return false,
    };
    map.insert(key.clone(), stored);
    true
}
