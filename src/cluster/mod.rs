//! A live cluster (feature `kube`): watches that keep reconcilers current, Ingress status,
//! leader election.
//!
//! See [`ClusterWatch`] for the model.

mod convert;
mod lease;
mod status;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::sync::Arc;

use futures_util::stream::{BoxStream, SelectAll};
use futures_util::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::discovery::v1 as discovery;
use k8s_openapi::api::networking::v1 as networking;
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use tokio::sync::watch;

use crate::model::{ObjectKind, ObjectRef, SecretRef};
use crate::reconcile::{Event, Object, Objects, Reconciled, Reconciler};

use convert::{secret_ref, Item, Watched};
pub use lease::{LeaderElection, Leadership};
pub use status::{Address, PublishAddresses, StatusWriter};

/// The kinds a [`ClusterWatch`] watches, in the order their initial lists are applied.
const KINDS: [ObjectKind; 5] = [
    ObjectKind::IngressClass,
    ObjectKind::Ingress,
    ObjectKind::Service,
    ObjectKind::EndpointSlice,
    ObjectKind::Secret,
];

/// How many events already waiting are taken into one batch, at most.
const BATCH: usize = 4096;

/// What a [`ClusterWatch`] has done so far, for health checks and logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WatchState {
    /// Every kind's initial list has arrived and been applied: the snapshots are complete.
    /// Stays `true` through later errors and relists (the last complete snapshot keeps
    /// serving).
    pub ready: bool,
    /// The kinds whose initial list has arrived.
    pub listed: Vec<ObjectKind>,
    /// The last error of each kind's watch since its last success, such as a missing
    /// permission (`403`) or an unreachable apiserver; the watch retries with backoff.
    pub errors: Vec<(ObjectKind, String)>,
    /// How many batches of events have been applied since the start.
    pub batches: u64,
}

impl WatchState {
    /// Why the snapshots are not complete yet, for a `/readyz` answer; `None` once ready.
    pub fn not_ready_reason(&self) -> Option<String> {
        if self.ready {
            return None;
        }
        let waiting: Vec<String> = KINDS
            .iter()
            .filter(|k| !self.listed.contains(k))
            .map(|k| format!("{k:?}"))
            .collect();
        let mut reason = format!("waiting for the initial list of {}", waiting.join(", "));
        for (kind, error) in &self.errors {
            reason.push_str(&format!("; {kind:?}: {error}"));
        }
        Some(reason)
    }
}

/// Every Ingress the watch holds, whether a reconciler serves it, and the addresses its
/// status holds: what a [`StatusWriter`] reconciles.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IngressStatuses {
    /// By Ingress: whether it is served, and its `status.loadBalancer.ingress` addresses.
    pub ingresses: BTreeMap<ObjectRef, (bool, Vec<Address>)>,
}

/// Watches the apiserver and keeps [`Reconciler`]s current: the live-cluster source of
/// snapshots (feature `kube`).
///
/// One watch per kind — Ingress, IngressClass, Service, EndpointSlice and `kubernetes.io/tls`
/// Secret — feeds every reconciler given to [`ClusterWatch::spawn`]:
///
/// - each kind's initial list (and every relist, after a watch expires with `410 Gone`) is
///   buffered whole and applied as one [`Event::ReplaceAll`], so a half-listed kind is never
///   served;
/// - nothing is applied before every kind has been listed: until then the reconcilers'
///   snapshots stay as they were (empty, or whatever the caller loaded), and
///   [`WatchState::ready`] is `false`. ingress-nginx's startup 404s (its issue #8831) came
///   from serving before the caches were full;
/// - after that, events are applied as they arrive; those already waiting are taken in one
///   batch ([`Reconciler::apply_all`]), so a burst publishes one swap per controller;
/// - a failed list or watch is reported in [`WatchState::errors`] and retried with kube's
///   default backoff (exponential, 800 ms to 30 s); the last snapshot keeps serving.
///
/// Scope: the whole cluster, or one namespace ([`ClusterWatch::namespace`]; IngressClasses
/// are cluster-scoped and always watched whole), and an optional label selector for
/// Ingresses ([`ClusterWatch::label_selector`]).
///
/// # Secrets
///
/// Only Secrets of type `kubernetes.io/tls` are listed (a field selector), and of those the
/// reconcilers hold only the ones a served Ingress's `spec.tls` names, or the default
/// certificate's ([`Reconciler::referenced_secrets`]); when an Ingress starts naming a Secret
/// the watch saw earlier, it is fetched then. What a memory dump of the process exposes is
/// therefore the certificate and private key of every TLS Secret that a served Ingress names,
/// both as the Secret's data and as the loaded key, and for the moment of conversion, each
/// listed TLS Secret as it arrives; no other Secret is ever read. The ServiceAccount token the
/// process runs with is in memory too.
///
/// ```no_run
/// # async fn run() -> Result<(), kube::Error> {
/// use ingress_router::{
///     Address, ClusterWatch, Controller, Dispatcher, LeaderElection, PublishAddresses, Reconciler,
///     StatusWriter,
/// };
///
/// let client = kube::Client::try_default().await?;
/// let reconciler = Reconciler::new(Dispatcher::new([Controller::new("example.com/edge")]).unwrap());
/// let snapshot = reconciler.snapshot("example.com/edge").unwrap().clone(); // serve this
/// let watch = ClusterWatch::new(client.clone()).spawn(vec![reconciler]);
/// let leadership = LeaderElection::new(client.clone(), "ingress", "edge", "replica-1").spawn();
/// let addresses = PublishAddresses::Fixed(vec![Address::parse("203.0.113.10").unwrap()]);
/// tokio::spawn(StatusWriter::new(client, addresses).run(watch.statuses(), leadership.subscribe()));
/// watch.state().wait_for(|s| s.ready).await.unwrap();
/// # let _ = snapshot; Ok(()) }
/// ```
#[derive(Clone)]
pub struct ClusterWatch {
    client: Client,
    namespace: Option<String>,
    label_selector: Option<String>,
    page_size: u32,
}

impl fmt::Debug for ClusterWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterWatch")
            .field("namespace", &self.namespace)
            .field("label_selector", &self.label_selector)
            .field("page_size", &self.page_size)
            .finish_non_exhaustive()
    }
}

/// A running [`ClusterWatch`]: its state, and the task that runs it.
#[derive(Debug)]
pub struct WatchHandle {
    state: watch::Receiver<WatchState>,
    statuses: watch::Receiver<Arc<IngressStatuses>>,
    task: tokio::task::JoinHandle<()>,
}

impl WatchHandle {
    /// The watch's state, updated after every batch.
    pub fn state(&self) -> watch::Receiver<WatchState> {
        self.state.clone()
    }

    /// Every Ingress held, whether it is served and its status addresses: the input of a
    /// [`StatusWriter`].
    pub fn statuses(&self) -> watch::Receiver<Arc<IngressStatuses>> {
        self.statuses.clone()
    }

    /// Stops the watch. The reconcilers' snapshots stay as they are.
    pub fn abort(&self) {
        self.task.abort();
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ClusterWatch {
    /// Watches the whole cluster through `client`.
    pub fn new(client: Client) -> ClusterWatch {
        ClusterWatch {
            client,
            namespace: None,
            label_selector: None,
            page_size: 500,
        }
    }

    /// Watches Ingresses, Services, EndpointSlices and Secrets of `namespace` only.
    pub fn namespace(mut self, namespace: impl Into<String>) -> ClusterWatch {
        self.namespace = Some(namespace.into());
        self
    }

    /// Takes only the Ingresses whose labels match `selector` (`kubectl`'s `-l` syntax).
    pub fn label_selector(mut self, selector: impl Into<String>) -> ClusterWatch {
        self.label_selector = Some(selector.into());
        self
    }

    /// Objects per page of the initial lists (default 500, as client-go's informers).
    pub fn page_size(mut self, page_size: u32) -> ClusterWatch {
        self.page_size = page_size.max(1);
        self
    }

    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
    {
        match &self.namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        }
    }

    fn stream<K: Watched>(api: Api<K>, config: watcher::Config) -> BoxStream<'static, Incoming> {
        watcher(api, config)
            .default_backoff()
            .map(|event| Incoming {
                kind: K::KIND,
                event: event.map_err(|e| e.to_string()).map(|e| match e {
                    watcher::Event::Init => Change::Init,
                    watcher::Event::InitDone => Change::InitDone,
                    watcher::Event::InitApply(o) => Change::InitApply(o.to_item()),
                    watcher::Event::Apply(o) => Change::Apply(o.to_item()),
                    watcher::Event::Delete(o) => Change::Delete(o.to_ref()),
                }),
            })
            .boxed()
    }

    /// Starts watching on the current tokio runtime, feeding `reconcilers` (each gets every
    /// event; typically one with a [`Dispatcher`](crate::Dispatcher) of the process's
    /// controllers).
    pub fn spawn(self, reconcilers: Vec<Reconciler>) -> WatchHandle {
        let (state_tx, state) = watch::channel(WatchState::default());
        let (statuses_tx, statuses) = watch::channel(Arc::new(IngressStatuses::default()));
        let base = watcher::Config::default().page_size(self.page_size);
        let mut ingresses = base.clone();
        if let Some(selector) = &self.label_selector {
            ingresses = ingresses.labels(selector);
        }
        let mut streams = SelectAll::new();
        streams.push(Self::stream(
            Api::<networking::IngressClass>::all(self.client.clone()),
            base.clone(),
        ));
        streams.push(Self::stream(self.api::<networking::Ingress>(), ingresses));
        streams.push(Self::stream(self.api::<core::Service>(), base.clone()));
        streams.push(Self::stream(
            self.api::<discovery::EndpointSlice>(),
            base.clone(),
        ));
        streams.push(Self::stream(
            self.api::<core::Secret>(),
            base.fields("type=kubernetes.io/tls"),
        ));
        let runner = Runner {
            reconcilers,
            client: self.client.clone(),
            state_tx,
            statuses_tx,
            state: WatchState::default(),
            kinds: KINDS.iter().map(|k| (*k, KindState::default())).collect(),
            pending: Vec::new(),
            known_secrets: HashSet::new(),
            held_secrets: HashSet::new(),
            addresses: BTreeMap::new(),
        };
        let task = tokio::spawn(runner.run(streams));
        WatchHandle {
            state,
            statuses,
            task,
        }
    }
}

/// One event of one kind's watch, converted.
struct Incoming {
    kind: ObjectKind,
    event: Result<Change, String>,
}

enum Change {
    Init,
    InitApply(Result<Item, String>),
    InitDone,
    Apply(Result<Item, String>),
    Delete(ObjectRef),
}

#[derive(Default)]
struct KindState {
    listed: bool,
    /// The objects of a list in progress, between `Init` and `InitDone`.
    buffer: Option<Vec<Item>>,
}

struct Runner {
    reconcilers: Vec<Reconciler>,
    client: Client,
    state_tx: watch::Sender<WatchState>,
    statuses_tx: watch::Sender<Arc<IngressStatuses>>,
    state: WatchState,
    kinds: BTreeMap<ObjectKind, KindState>,
    /// Events held back until every kind has been listed.
    pending: Vec<Event>,
    /// Every TLS Secret the watch has seen, by name only.
    known_secrets: HashSet<SecretRef>,
    /// The Secrets given to the reconcilers.
    held_secrets: HashSet<SecretRef>,
    /// The status addresses of every Ingress watched.
    addresses: BTreeMap<ObjectRef, Vec<Address>>,
}

impl Runner {
    async fn run(mut self, mut streams: SelectAll<BoxStream<'static, Incoming>>) {
        while let Some(first) = streams.next().await {
            let mut batch = vec![first];
            while batch.len() < BATCH {
                match streams.next().now_or_never() {
                    Some(Some(next)) => batch.push(next),
                    _ => break,
                }
            }
            for incoming in batch {
                self.take(incoming);
            }
            if !self.state.ready {
                if self.kinds.values().all(|k| k.listed) {
                    self.state.ready = true;
                    tracing::info!("initial lists complete: {} Ingresses", self.addresses.len());
                } else {
                    self.publish_state();
                    continue;
                }
            }
            let events = std::mem::take(&mut self.pending);
            if !events.is_empty() {
                self.apply(events).await;
                self.state.batches += 1;
            }
            self.publish_state();
        }
    }

    fn publish_state(&mut self) {
        self.state.listed = KINDS
            .iter()
            .filter(|k| self.kinds.get(k).is_some_and(|s| s.listed))
            .copied()
            .collect();
        self.state_tx.send_replace(self.state.clone());
    }

    fn set_error(&mut self, kind: ObjectKind, error: Option<String>) {
        self.state.errors.retain(|(k, _)| *k != kind);
        if let Some(error) = error {
            self.state.errors.push((kind, error));
        }
    }

    /// Turns one watch event into reconciler events, added to `pending`.
    fn take(&mut self, incoming: Incoming) {
        let kind = incoming.kind;
        let change = match incoming.event {
            Ok(change) => {
                self.set_error(kind, None);
                change
            }
            Err(error) => {
                tracing::warn!("watching {kind:?}: {error} (retrying with backoff)");
                self.set_error(kind, Some(error));
                return;
            }
        };
        let unreadable = |error: String| {
            tracing::warn!("a {kind:?} could not be read, skipped: {error}");
        };
        let Some(state) = self.kinds.get_mut(&kind) else {
            return;
        };
        match change {
            Change::Init => state.buffer = Some(Vec::new()),
            Change::InitApply(item) => match item {
                Ok(item) => state.buffer.get_or_insert_with(Vec::new).push(item),
                Err(e) => unreadable(e),
            },
            Change::InitDone => {
                state.listed = true;
                let items = state.buffer.take().unwrap_or_default();
                let event = self.relisted(kind, items);
                self.pending.push(event);
            }
            Change::Apply(item) => match item {
                Ok(item) => {
                    if let Some(event) = self.applied(item) {
                        self.pending.push(event);
                    }
                }
                Err(e) => unreadable(e),
            },
            Change::Delete(object) => {
                if kind == ObjectKind::Ingress {
                    self.addresses.remove(&object);
                }
                if kind == ObjectKind::Secret {
                    let secret = secret_ref(&object);
                    self.known_secrets.remove(&secret);
                    if !self.held_secrets.remove(&secret) {
                        return;
                    }
                }
                self.pending.push(Event::Delete(object));
            }
        }
    }

    fn applied(&mut self, item: Item) -> Option<Event> {
        let object_ref = item.object.object_ref();
        match &item.object {
            Object::Ingress(_) => {
                self.addresses.insert(object_ref, item.addresses);
            }
            Object::Secret(_) => {
                let secret = secret_ref(&object_ref);
                self.known_secrets.insert(secret.clone());
                // Kept only when named; `settle` fetches it if an Ingress names it later.
                if !self.referenced().contains(&secret) && !self.pending_names().contains(&secret) {
                    return self
                        .held_secrets
                        .remove(&secret)
                        .then_some(Event::Delete(object_ref));
                }
                self.held_secrets.insert(secret);
            }
            _ => {}
        }
        Some(Event::Apply(item.object))
    }

    fn relisted(&mut self, kind: ObjectKind, items: Vec<Item>) -> Event {
        if kind == ObjectKind::Ingress {
            self.addresses.clear();
            let mut ingresses = Vec::new();
            for item in items {
                if let Object::Ingress(ingress) = item.object {
                    self.addresses.insert(ingress.object_ref(), item.addresses);
                    ingresses.push(ingress);
                }
            }
            return Event::ReplaceAll(Objects::Ingresses(ingresses));
        }
        fn pick<T>(items: Vec<Item>, kind: impl Fn(Object) -> Option<T>) -> Vec<T> {
            items.into_iter().filter_map(|i| kind(i.object)).collect()
        }
        Event::ReplaceAll(match kind {
            ObjectKind::IngressClass => Objects::IngressClasses(pick(items, |o| match o {
                Object::IngressClass(c) => Some(c),
                _ => None,
            })),
            ObjectKind::Service => Objects::Services(pick(items, |o| match o {
                Object::Service(s) => Some(s),
                _ => None,
            })),
            ObjectKind::EndpointSlice => Objects::EndpointSlices(pick(items, |o| match o {
                Object::EndpointSlice(s) => Some(s),
                _ => None,
            })),
            _ => {
                let mut referenced = self.referenced();
                referenced.extend(self.pending_names());
                let mut kept = Vec::new();
                self.known_secrets.clear();
                self.held_secrets.clear();
                for item in items {
                    if let Object::Secret(secret) = item.object {
                        let name =
                            SecretRef::new(secret.metadata.namespace(), &secret.metadata.name);
                        self.known_secrets.insert(name.clone());
                        if referenced.contains(&name) {
                            self.held_secrets.insert(name);
                            kept.push(secret);
                        }
                    }
                }
                Objects::Secrets(kept)
            }
        })
    }

    /// The Secrets the reconcilers' served Ingresses name now.
    fn referenced(&self) -> BTreeSet<SecretRef> {
        self.reconcilers
            .iter()
            .flat_map(|r| r.referenced_secrets())
            .collect()
    }

    /// The Secrets that Ingresses waiting to be applied name (all of them, before the first
    /// apply, when the reconcilers know no Ingress yet).
    fn pending_names(&self) -> BTreeSet<SecretRef> {
        let mut named = BTreeSet::new();
        for event in &self.pending {
            let ingresses = match event {
                Event::ReplaceAll(Objects::Ingresses(list)) => list.as_slice(),
                Event::Apply(Object::Ingress(i)) => std::slice::from_ref(i),
                _ => continue,
            };
            for ingress in ingresses {
                let namespace = ingress.metadata.namespace();
                named.extend(
                    ingress
                        .spec
                        .tls
                        .iter()
                        .filter_map(|t| t.secret_name.as_deref())
                        .map(|name| SecretRef::new(namespace, name)),
                );
            }
        }
        named
    }

    async fn apply(&mut self, events: Vec<Event>) {
        let started = std::time::Instant::now();
        let count = events.len();
        // Only these kinds change which Ingresses are served and which Secrets they name.
        let served_may_change = events.iter().any(|event| {
            let kind = match event {
                Event::Apply(object) => object.object_ref().kind,
                Event::Delete(object) => object.kind,
                Event::ReplaceAll(objects) => objects.kind(),
            };
            matches!(
                kind,
                ObjectKind::Ingress | ObjectKind::IngressClass | ObjectKind::Secret
            )
        });
        let outcome = self.apply_to_all(events);
        let applied = started.elapsed();
        for rejected in &outcome.rejected {
            tracing::warn!("{rejected}");
        }
        if served_may_change {
            self.settle_secrets().await;
            self.publish_statuses();
        }
        tracing::debug!(
            "{count} events applied in {applied:?}, published in {:?}",
            started.elapsed()
        );
    }

    /// Sends the Ingresses' served flags and addresses to the status writer, when they changed.
    fn publish_statuses(&mut self) {
        let served: HashSet<&ObjectRef> =
            self.reconcilers.iter().flat_map(|r| r.served()).collect();
        let current = Arc::clone(&self.statuses_tx.borrow());
        let unchanged = current.ingresses.len() == self.addresses.len()
            && current.ingresses.iter().zip(&self.addresses).all(
                |((held, (was_served, was)), (ingress, addresses))| {
                    held == ingress && was == addresses && *was_served == served.contains(ingress)
                },
            );
        if unchanged {
            return;
        }
        let statuses = IngressStatuses {
            ingresses: self
                .addresses
                .iter()
                .map(|(r, a)| (r.clone(), (served.contains(r), a.clone())))
                .collect(),
        };
        self.statuses_tx.send_replace(Arc::new(statuses));
    }

    /// Applies `events` to every reconciler. The work is CPU-bound (a relist at 10 000
    /// Ingresses takes a good fraction of a second): on a multi-threaded runtime the worker
    /// hands its other tasks, such as connections, to the other workers meanwhile.
    fn apply_to_all(&mut self, events: Vec<Event>) -> Reconciled {
        let Some((last, others)) = self.reconcilers.split_last_mut() else {
            return Reconciled::default();
        };
        let work = move || {
            for reconciler in others {
                reconciler.apply_all(events.clone());
            }
            last.apply_all(events)
        };
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
            _ => work(),
        }
    }

    /// Drops the Secrets no served Ingress names any more, and fetches those newly named.
    async fn settle_secrets(&mut self) {
        let referenced = self.referenced();
        let mut events: Vec<Event> = Vec::new();
        let unneeded: Vec<SecretRef> = self
            .held_secrets
            .iter()
            .filter(|s| !referenced.contains(*s))
            .cloned()
            .collect();
        for secret in unneeded {
            self.held_secrets.remove(&secret);
            events.push(Event::Delete(ObjectRef::namespaced(
                ObjectKind::Secret,
                &secret.namespace,
                &secret.name,
            )));
        }
        for secret in referenced {
            if self.held_secrets.contains(&secret) || !self.known_secrets.contains(&secret) {
                continue;
            }
            let api: Api<core::Secret> = Api::namespaced(self.client.clone(), &secret.namespace);
            match api.get_opt(&secret.name).await {
                Ok(Some(fetched)) if fetched.type_.as_deref() == Some("kubernetes.io/tls") => {
                    match fetched.to_item() {
                        Ok(item) => {
                            self.held_secrets.insert(secret);
                            events.push(Event::Apply(item.object));
                        }
                        Err(e) => tracing::warn!("Secret {secret}: {e}"),
                    }
                }
                Ok(_) => {
                    self.known_secrets.remove(&secret);
                }
                Err(e) => tracing::warn!("cannot fetch Secret {secret}: {e}"),
            }
        }
        if !events.is_empty() {
            self.apply_to_all(events);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::Manifests;
    use crate::table::TableOptions;

    fn item(yaml: &str) -> Item {
        let manifests = Manifests::parse(yaml);
        let object: Object = if let Some(i) = manifests.ingresses.into_iter().next() {
            i.into()
        } else if let Some(s) = manifests.services.into_iter().next() {
            s.into()
        } else {
            panic!("nothing in {yaml}")
        };
        Item {
            object,
            addresses: Vec::new(),
        }
    }

    fn ingress(name: &str, service: &str) -> Item {
        item(&format!(
            "kind: Ingress\nmetadata: {{name: {name}}}\nspec:\n  rules:\n  - host: {name}.example.com\n    \
             http: {{paths: [{{path: /, pathType: Prefix, backend: {{service: {{name: {service}, port: {{number: 80}}}}}}}}]}}\n"
        ))
    }

    fn listed(kind: ObjectKind, items: Vec<Item>) -> Vec<Incoming> {
        let mut events = vec![Incoming {
            kind,
            event: Ok(Change::Init),
        }];
        events.extend(items.into_iter().map(|i| Incoming {
            kind,
            event: Ok(Change::InitApply(Ok(i))),
        }));
        events.push(Incoming {
            kind,
            event: Ok(Change::InitDone),
        });
        events
    }

    /// A client that answers 404 to everything: the runner only calls it to fetch Secrets.
    fn offline_client() -> Client {
        let service = tower::service_fn(|_request: http::Request<kube::client::Body>| async {
            let body = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}"#;
            Ok::<_, std::convert::Infallible>(
                http::Response::builder()
                    .status(404)
                    .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                    .unwrap(),
            )
        });
        Client::new(service, "default")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nothing_half_listed_is_ever_served() {
        tokio::time::timeout(std::time::Duration::from_secs(60), half_listed())
            .await
            .expect("the watch runner answers");
    }

    async fn half_listed() {
        let reconciler = Reconciler::every_ingress(TableOptions::default());
        let snapshot = reconciler.snapshots().next().unwrap().1.clone();
        let routes = |host: &str| {
            snapshot
                .load()
                .routes()
                .route(Some(host), "/")
                .map(|r| r.backend().to_string())
        };
        let (state_tx, mut state) = watch::channel(WatchState::default());
        let (statuses_tx, _statuses) = watch::channel(Arc::new(IngressStatuses::default()));
        let runner = Runner {
            reconcilers: vec![reconciler],
            client: offline_client(),
            state_tx,
            statuses_tx,
            state: WatchState::default(),
            kinds: KINDS.iter().map(|k| (*k, KindState::default())).collect(),
            pending: Vec::new(),
            known_secrets: HashSet::new(),
            held_secrets: HashSet::new(),
            addresses: BTreeMap::new(),
        };
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Incoming>();
        let stream =
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|i| (i, rx)) },
            )
            .boxed();
        let mut streams = SelectAll::new();
        streams.push(stream);
        tokio::spawn(runner.run(streams));
        let send = |events: Vec<Incoming>| {
            for event in events {
                tx.send(event).unwrap();
            }
        };

        // Four kinds listed, one not: nothing is served, and the state says what is missing.
        send(listed(ObjectKind::Ingress, vec![ingress("web", "web")]));
        send(listed(ObjectKind::IngressClass, vec![]));
        send(listed(ObjectKind::Service, vec![]));
        send(listed(ObjectKind::Secret, vec![]));
        state.wait_for(|s| s.listed.len() == 4).await.unwrap();
        assert!(!state.borrow().ready);
        assert_eq!(routes("web.example.com"), None);
        let reason = state.borrow().not_ready_reason().unwrap();
        assert!(reason.contains("EndpointSlice"), "{reason}");
        // An error on the missing kind is reported, and nothing changes.
        send(vec![Incoming {
            kind: ObjectKind::EndpointSlice,
            event: Err("endpointslices is forbidden".into()),
        }]);
        state.wait_for(|s| !s.errors.is_empty()).await.unwrap();
        assert!(state
            .borrow()
            .not_ready_reason()
            .unwrap()
            .contains("forbidden"));
        assert_eq!(routes("web.example.com"), None);

        send(listed(ObjectKind::EndpointSlice, vec![]));
        state.wait_for(|s| s.ready).await.unwrap();
        assert!(state.borrow().errors.is_empty());
        assert_eq!(
            routes("web.example.com").as_deref(),
            Some("service default/web:80")
        );

        // A relist (after 410 Gone) in progress: the old list serves until it is whole.
        let batches = state.borrow().batches;
        send(vec![
            Incoming {
                kind: ObjectKind::Ingress,
                event: Ok(Change::Init),
            },
            Incoming {
                kind: ObjectKind::Ingress,
                event: Ok(Change::InitApply(Ok(ingress("api", "api")))),
            },
            Incoming {
                kind: ObjectKind::Service,
                event: Ok(Change::Apply(Ok(item(
                    "kind: Service\nmetadata: {name: api}\nspec: {ports: [{port: 80}]}\n",
                )))),
            },
        ]);
        state.wait_for(|s| s.batches > batches).await.unwrap();
        assert!(routes("web.example.com").is_some());
        assert_eq!(routes("api.example.com"), None);
        let batches = state.borrow().batches;
        send(vec![Incoming {
            kind: ObjectKind::Ingress,
            event: Ok(Change::InitDone),
        }]);
        state.wait_for(|s| s.batches > batches).await.unwrap();
        assert_eq!(
            routes("web.example.com"),
            None,
            "not in the relist: deleted"
        );
        assert_eq!(
            routes("api.example.com").as_deref(),
            Some("service default/api:80")
        );

        // Later events apply one by one.
        let batches = state.borrow().batches;
        send(vec![Incoming {
            kind: ObjectKind::Ingress,
            event: Ok(Change::Delete(ObjectRef::namespaced(
                ObjectKind::Ingress,
                "default",
                "api",
            ))),
        }]);
        state.wait_for(|s| s.batches > batches).await.unwrap();
        assert_eq!(routes("api.example.com"), None);
    }
}
