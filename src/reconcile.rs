//! Live tables: a [`SharedTable`] that request handlers read, and a [`Reconciler`] that keeps
//! it up to date from object events.
//!
//! A data plane routes every request with the table of the moment and must take in changes to
//! Ingresses and IngressClasses without stopping. A [`SharedTable`] is a handle to the current
//! [`RouteTable`]: readers take one snapshot (an `Arc`) per request, writers swap a new table in
//! atomically (with `arc-swap`, so readers never wait on a lock), and requests already routed
//! finish on the table they started with.
//!
//! A [`Reconciler`] holds the objects of the cluster as events describe them — [`Event::Apply`],
//! [`Event::Delete`], [`Event::ReplaceAll`] (a relist, or a reload of manifest files) — decides
//! which controller serves which Ingress ([`Dispatcher`]), and rebuilds and swaps in only the
//! tables whose served Ingresses changed. The rebuild runs in the caller, never on the request
//! path.
//!
//! An object that fails the apiserver's validation does not replace the last valid version of
//! that object: the reconciler keeps routing with the version it had, and reports the rejected
//! one ([`Reconciled::rejected`], [`Reconciler::rejected`]) until a valid version or a delete
//! arrives. A bad edit thus never takes a working route down.
//!
//! ```
//! use ingress_router::reconcile::{Event, Reconciler};
//! use ingress_router::{Controller, Dispatcher, Manifests};
//!
//! let dispatcher = Dispatcher::new([Controller::new("example.com/edge").watch_without_class(true)])
//!     .unwrap();
//! let mut reconciler = Reconciler::new(dispatcher);
//! let table = reconciler.table("example.com/edge").unwrap().clone(); // give this to the server
//!
//! let v1 = Manifests::parse(r#"
//! kind: Ingress
//! metadata: {name: web}
//! spec: {defaultBackend: {service: {name: web-v1, port: {number: 80}}}}
//! "#);
//! reconciler.apply(Event::ReplaceAll { ingresses: v1.ingresses, classes: vec![] });
//! let route = table.load();
//! assert_eq!(route.route(None, "/").unwrap().backend().to_string(), "service default/web-v1:80");
//!
//! // An invalid edit: the service name is not a DNS label. The last valid version keeps serving.
//! let broken = Manifests::parse(r#"
//! kind: Ingress
//! metadata: {name: web}
//! spec: {defaultBackend: {service: {name: Web_V2, port: {number: 80}}}}
//! "#);
//! let outcome = reconciler.apply(Event::Apply(broken.ingresses[0].clone().into()));
//! assert_eq!(outcome.rejected.len(), 1);
//! assert!(outcome.rebuilt.is_empty());
//! let route = table.load();
//! assert_eq!(route.route(None, "/").unwrap().backend().to_string(), "service default/web-v1:80");
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::dispatch::{Decision, Dispatcher};
use crate::model::{Ingress, IngressClass, ObjectKind, ObjectRef};
use crate::table::{RouteTable, TableOptions};
use crate::validate::{self, ValidationError};

/// A handle to the current [`RouteTable`], shared between the request path and the code that
/// updates it. Cloning the handle is cheap and every clone sees the same table.
#[derive(Clone)]
pub struct SharedTable {
    current: Arc<ArcSwap<RouteTable>>,
}

impl SharedTable {
    /// A handle that starts with `table`.
    pub fn new(table: RouteTable) -> SharedTable {
        SharedTable {
            current: Arc::new(ArcSwap::from_pointee(table)),
        }
    }

    /// The current table. Take one snapshot per request and route with it alone: a swap that
    /// happens meanwhile does not affect it.
    pub fn load(&self) -> Arc<RouteTable> {
        self.current.load_full()
    }

    /// Makes `table` the current table and returns the one it replaces. Requests that already
    /// hold the old table finish with it.
    pub fn store(&self, table: RouteTable) -> Arc<RouteTable> {
        self.current.swap(Arc::new(table))
    }
}

impl Default for SharedTable {
    /// A handle to an empty table (every request 404s).
    fn default() -> Self {
        SharedTable::new(RouteTable::build(&[], TableOptions::default()))
    }
}

impl From<RouteTable> for SharedTable {
    fn from(table: RouteTable) -> Self {
        SharedTable::new(table)
    }
}

impl fmt::Debug for SharedTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let table = self.current.load();
        f.debug_struct("SharedTable")
            .field("ingresses", &table.ingresses().len())
            .field("rules", &table.rule_count())
            .finish()
    }
}

/// A Kubernetes object the reconciler keeps.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    /// An Ingress.
    Ingress(Ingress),
    /// An IngressClass.
    IngressClass(IngressClass),
}

impl Object {
    /// The object's kind, namespace and name.
    pub fn object_ref(&self) -> ObjectRef {
        match self {
            Object::Ingress(i) => i.object_ref(),
            Object::IngressClass(c) => c.object_ref(),
        }
    }
}

impl Object {
    fn validate(&self) -> Vec<ValidationError> {
        match self {
            Object::Ingress(i) => validate::validate_ingress(i),
            Object::IngressClass(c) => validate::validate_ingress_class(c),
        }
    }
}

impl From<Ingress> for Object {
    fn from(ingress: Ingress) -> Self {
        Object::Ingress(ingress)
    }
}

impl From<IngressClass> for Object {
    fn from(class: IngressClass) -> Self {
        Object::IngressClass(class)
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
    /// These are now all the objects there are (a relist, or re-reading manifest files).
    ///
    /// Start from one of these rather than from an `Apply` per object: an `Apply` makes the
    /// next table incrementally, but still passes over every Ingress (about 1 ms at 10 000),
    /// so an initial list fed object by object costs time quadratic in its length.
    ReplaceAll {
        /// Every Ingress, in the order their files list them.
        ingresses: Vec<Ingress>,
        /// Every IngressClass.
        classes: Vec<IngressClass>,
    },
}

/// A new version of an object that failed validation and was not taken in.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// What one event changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reconciled {
    /// The tables that were rebuilt and swapped in, by controller name (`None` for the table
    /// of a [`Reconciler::every_ingress`] reconciler), in registration order.
    pub rebuilt: Vec<Option<String>>,
    /// New object versions that failed validation, from this event.
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

/// One table the reconciler keeps current.
#[derive(Debug)]
struct Live {
    controller: Option<String>,
    options: TableOptions,
    shared: SharedTable,
    /// The revisions of the served Ingresses, in order, the current table was built from.
    built_from: Option<Vec<u64>>,
}

/// Keeps one [`SharedTable`] per controller up to date from object [`Event`]s.
///
/// See the [module documentation](self) for the model. The reconciler is not itself shared: it
/// lives with whatever receives the events, and hands out [`SharedTable`] clones to servers.
#[derive(Debug)]
pub struct Reconciler {
    dispatcher: Option<Dispatcher>,
    live: Vec<Live>,
    ingresses: BTreeMap<ObjectRef, Stored<Ingress>>,
    classes: BTreeMap<ObjectRef, Stored<IngressClass>>,
    rejected: BTreeMap<ObjectRef, Rejected>,
    decisions: Vec<Decision>,
    clock: u64,
    /// The Ingresses added, modified or removed since the tables were last made current; the
    /// tables are updated recompiling only the hosts they touch.
    changed: Vec<ObjectRef>,
    /// Whether something else changed (IngressClasses, a relisting), so that the tables are
    /// built from scratch.
    changed_everything: bool,
}

impl Reconciler {
    /// A reconciler with one table per controller of `dispatcher`, each empty until the first
    /// event.
    pub fn new(dispatcher: Dispatcher) -> Reconciler {
        let live = dispatcher
            .controllers()
            .iter()
            .map(|c| Live {
                controller: Some(c.name().to_owned()),
                options: c.options().clone(),
                shared: SharedTable::new(RouteTable::build(&[], c.options().clone())),
                built_from: None,
            })
            .collect();
        Reconciler::with(Some(dispatcher), live)
    }

    /// A reconciler with a single table of every valid Ingress, whatever its class, like
    /// [`RouteTable::build`] over all of them. IngressClasses are kept but decide nothing.
    pub fn every_ingress(options: TableOptions) -> Reconciler {
        let live = vec![Live {
            controller: None,
            shared: SharedTable::new(RouteTable::build(&[], options.clone())),
            options,
            built_from: None,
        }];
        Reconciler::with(None, live)
    }

    fn with(dispatcher: Option<Dispatcher>, live: Vec<Live>) -> Reconciler {
        Reconciler {
            dispatcher,
            live,
            ingresses: BTreeMap::new(),
            classes: BTreeMap::new(),
            rejected: BTreeMap::new(),
            decisions: Vec::new(),
            clock: 0,
            changed: Vec::new(),
            changed_everything: false,
        }
    }

    /// The table of controller `name`; `None` when no such controller is registered.
    pub fn table(&self, name: &str) -> Option<&SharedTable> {
        self.live
            .iter()
            .find(|l| l.controller.as_deref() == Some(name))
            .map(|l| &l.shared)
    }

    /// Every table, with its controller name (`None` for [`Reconciler::every_ingress`]).
    pub fn tables(&self) -> impl Iterator<Item = (Option<&str>, &SharedTable)> {
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

    /// Takes in one event: updates the objects held, then rebuilds and swaps in every table whose
    /// served Ingresses changed.
    pub fn apply(&mut self, event: Event) -> Reconciled {
        let mut outcome = Reconciled::default();
        match event {
            Event::Apply(object) => {
                self.note_change(&object.object_ref());
                if let Some(rejected) = self.put(object) {
                    outcome.rejected.push(rejected);
                }
            }
            Event::Delete(object) => {
                self.note_change(&object);
                self.delete(&object);
            }
            Event::ReplaceAll { ingresses, classes } => {
                self.changed_everything = true;
                outcome.rejected = self.replace_all(ingresses, classes);
            }
        }
        outcome.rebuilt = self.refresh();
        outcome
    }

    /// Rebuilds and swaps in every table now, whether or not its Ingresses changed.
    pub fn rebuild_all(&mut self) -> Reconciled {
        for live in &mut self.live {
            live.built_from = None;
        }
        Reconciled {
            rebuilt: self.refresh(),
            rejected: Vec::new(),
        }
    }

    fn note_change(&mut self, object: &ObjectRef) {
        match object.kind {
            ObjectKind::Ingress => self.changed.push(object.clone()),
            ObjectKind::IngressClass => self.changed_everything = true,
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
        }
        None
    }

    fn holds(&self, object: &ObjectRef) -> bool {
        match object.kind {
            ObjectKind::Ingress => self.ingresses.contains_key(&object.clone()),
            ObjectKind::IngressClass => self.classes.contains_key(object),
        }
    }

    fn delete(&mut self, object: &ObjectRef) {
        self.rejected.remove(object);
        match object.kind {
            ObjectKind::Ingress => {
                self.ingresses.remove(&object.clone());
            }
            ObjectKind::IngressClass => {
                self.classes.remove(object);
            }
        }
    }

    fn replace_all(
        &mut self,
        ingresses: Vec<Ingress>,
        classes: Vec<IngressClass>,
    ) -> Vec<Rejected> {
        let old_ingresses = std::mem::take(&mut self.ingresses);
        let old_classes = std::mem::take(&mut self.classes);
        self.rejected.clear();
        let objects = classes
            .into_iter()
            .map(Object::from)
            .chain(ingresses.into_iter().map(Object::from));
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
        self.rejected.values().cloned().collect()
    }

    /// Re-decides every Ingress and rebuilds the tables whose inputs changed.
    fn refresh(&mut self) -> Vec<Option<String>> {
        let mut held: Vec<&Stored<Ingress>> = self.ingresses.values().collect();
        held.sort_by_key(|s| s.arrival);
        let ingresses: Vec<&Ingress> = held.iter().map(|s| &s.object).collect();
        // By address: the served lists hold references into `held`.
        let revisions: HashMap<*const Ingress, u64> = held
            .iter()
            .map(|s| (std::ptr::from_ref(&s.object), s.revision))
            .collect();
        let classes: Vec<IngressClass> = self.classes().into_iter().cloned().collect();

        let served: Vec<Vec<&Ingress>> = match &self.dispatcher {
            Some(dispatcher) => {
                let plan = dispatcher.plan(&classes, &ingresses);
                self.decisions = plan.decisions;
                plan.controllers
                    .into_iter()
                    .map(|p| p.served_ingresses)
                    .collect()
            }
            None => vec![ingresses.clone()],
        };

        let changed = std::mem::take(&mut self.changed);
        let everything = std::mem::take(&mut self.changed_everything);
        let mut rebuilt = Vec::new();
        for (live, served) in self.live.iter_mut().zip(served) {
            let inputs: Vec<u64> = served
                .iter()
                .map(|i| revisions[&std::ptr::from_ref(*i)])
                .collect();
            if live.built_from.as_ref() == Some(&inputs) {
                continue;
            }
            // A table built from the previous inputs only needs the hosts of the changed
            // Ingresses compiled again.
            let table = match &live.built_from {
                Some(_) if !everything => live.shared.load().update(served, &changed),
                _ => RouteTable::build(served, live.options.clone()),
            };
            live.shared.store(table);
            live.built_from = Some(inputs);
            rebuilt.push(live.controller.clone());
        }
        rebuilt
    }
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
