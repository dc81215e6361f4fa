//! The reverse proxy behind `examples/data_plane`: what runs, and how manifests become the
//! snapshots it serves. The crate does the work — a [`Reconciler`] per set of listeners turns
//! the objects into one snapshot per controller (routes, TLS names, certificates, endpoints);
//! the listeners serve from those snapshots (`serve`), requests go to the endpoints of the
//! snapshot that routed them (`forward`), and `demo` stands in for a cluster's backends.
//!
//! Kept apart from `main.rs` (command line, signals) so that the integration tests can start
//! the same data plane in-process.

#[path = "demo.rs"]
mod demo;
#[path = "forward.rs"]
pub mod forward;
#[path = "limits.rs"]
pub mod limits;
#[path = "metrics.rs"]
pub mod metrics;
#[path = "serve.rs"]
mod serve;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use ingress_router::{
    Backend, CertResolver, Controller, Dispatcher, EndpointObjects, Event, IngressLayer,
    LoadLimits, Manifests, NginxAnnotations, NginxConfig, Object, Objects, Reconciler, SecretRef,
    SharedSnapshot, TableOptions, Verdict,
};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

#[allow(unused_imports)] // The integration tests start echo servers of their own.
pub use demo::serve_echo;
use demo::{DemoCa, Echoes};
use forward::Upstream;
pub use limits::Limits;

/// One listening address, and the controller whose Ingresses it serves (`None`: every Ingress,
/// whatever its class).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    /// Where to listen.
    pub addr: SocketAddr,
    /// The controller name, e.g. `example.com/ingress-router`.
    pub controller: Option<String>,
}

impl std::str::FromStr for Listen {
    type Err = String;

    /// `ADDR` or `ADDR=CONTROLLER`.
    fn from_str(s: &str) -> Result<Listen, String> {
        let (addr, controller) = match s.split_once('=') {
            Some((addr, controller)) if !controller.is_empty() => (addr, Some(controller)),
            Some(_) => return Err(format!("{s:?}: empty controller name")),
            None => (s, None),
        };
        let addr = addr
            .parse()
            .map_err(|e| format!("{addr:?} is not an address like 127.0.0.1:8080: {e}"))?;
        Ok(Listen {
            addr,
            controller: controller.map(str::to_owned),
        })
    }
}

/// Whether Service traffic goes to in-process echo servers, and TLS Secrets missing from the
/// manifests are generated (signed by a demo CA written to a file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoBackends {
    /// Always.
    On,
    /// When the manifests hold no EndpointSlice.
    Auto,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The plain-HTTP listeners.
    pub listen: Vec<Listen>,
    /// The TLS listeners.
    pub listen_tls: Vec<Listen>,
    /// The controllers' default backend.
    pub default_backend: Option<Backend>,
    /// The Secret of the controllers' default certificate; a self-signed one is generated when
    /// unset (or when the Secret cannot be used).
    pub default_certificate: Option<SecretRef>,
    /// Controllers whose plain listeners do not redirect to https (`None`: listeners serving
    /// every Ingress); `all_without_ssl_redirect` switches it off everywhere.
    pub no_ssl_redirect: Vec<Option<String>>,
    /// Switches ssl-redirect off on every listener.
    pub all_without_ssl_redirect: bool,
    /// Echo backends and demo certificates.
    pub demo_backends: DemoBackends,
    /// The manifest files, re-read on [`DataPlane::reload_files`].
    pub files: Vec<PathBuf>,
    /// The ingress-nginx controller ConfigMap, `(namespace, name)`, read from the FILEs
    /// unless `configmap_data` holds it already.
    pub configmap: Option<(String, String)>,
    /// The ConfigMap's data, when it was read from elsewhere (the cluster).
    pub configmap_data: Option<std::collections::BTreeMap<String, String>>,
    /// The annotation prefix read (default `nginx.ingress.kubernetes.io`).
    pub annotations_prefix: Option<String>,
    /// The port clients reach the plain-HTTP listeners on, for redirect locations.
    pub http_port: Option<u16>,
    /// The port clients reach the TLS listeners on, for redirect locations; default the
    /// TLS listener's own.
    pub https_port: Option<u16>,
    /// Limits and timeouts.
    pub limits: Limits,
    /// How much of the FILEs is read (`--max-input-bytes`, `--max-objects`, …).
    pub load_limits: LoadLimits,
    /// Serving threads (`--threads`). With 1, connections are served on the runtime that
    /// starts the data plane; with more, each thread runs a single-threaded runtime of its own,
    /// and the listeners hand it every so-many accepted connection, as nginx's workers share
    /// them.
    pub threads: usize,
}

impl Options {
    /// Plain listeners only, every other setting at its default.
    pub fn new(listen: Vec<Listen>, files: Vec<PathBuf>) -> Options {
        Options {
            listen,
            listen_tls: Vec::new(),
            default_backend: None,
            default_certificate: None,
            no_ssl_redirect: Vec::new(),
            all_without_ssl_redirect: false,
            demo_backends: DemoBackends::Auto,
            files,
            configmap: None,
            configmap_data: None,
            annotations_prefix: None,
            http_port: None,
            https_port: None,
            limits: Limits::default(),
            load_limits: LoadLimits::default(),
            threads: 1,
        }
    }

    /// The ingress-nginx configuration: the ConfigMap's, else the defaults; with what was
    /// wrong with it.
    fn nginx_config(&self, manifests: Option<&Manifests>) -> (NginxConfig, Vec<String>) {
        let Some((namespace, name)) = &self.configmap else {
            return (NginxConfig::default(), Vec::new());
        };
        let data = self.configmap_data.clone().or_else(|| {
            manifests?
                .config_maps
                .iter()
                .rev()
                .find(|c| c.metadata.namespace() == namespace && &c.metadata.name == name)
                .map(|c| c.data.clone())
        });
        match data {
            Some(data) => {
                let (config, problems) = NginxConfig::from_data(&data);
                let problems = problems
                    .into_iter()
                    .map(|p| format!("ConfigMap {namespace}/{name}: {p}"))
                    .collect();
                (config, problems)
            }
            None => (
                NginxConfig::default(),
                vec![format!(
                    "ConfigMap {namespace}/{name} not found: the ingress-nginx defaults apply"
                )],
            ),
        }
    }

    /// Whether a TLS listener serves `controller`'s snapshots.
    fn serves_tls(&self, controller: Option<&str>) -> bool {
        self.listen_tls
            .iter()
            .any(|l| l.controller.as_deref() == controller)
    }

    fn ssl_redirect(&self, controller: Option<&str>) -> bool {
        !self.all_without_ssl_redirect
            && !self
                .no_ssl_redirect
                .iter()
                .any(|c| c.as_deref() == controller)
    }
}

/// Why a reload was refused; the snapshots in service do not change.
#[derive(Debug)]
pub struct LoadError(pub Vec<String>);

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("; "))
    }
}

impl std::error::Error for LoadError {}

/// What a successful load changed.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The route tables compiled again, by listener controller (`None`: the every-Ingress one).
    pub rebuilt: Vec<Option<String>>,
    /// Objects whose new version was rejected (the previous one, if any, keeps serving).
    pub rejected: Vec<String>,
    /// Conflicts and warnings of the snapshots now serving.
    pub diagnostics: Vec<String>,
    /// Whether Service traffic goes to echo servers.
    pub demo_backends: bool,
    /// Secrets whose certificates are not served (the default certificate is, instead).
    pub certificate_problems: Vec<String>,
    /// TLS Secrets generated because the manifests lack them (demo mode).
    pub generated_secrets: Vec<SecretRef>,
    /// The PEM file of the CA that signed them, for `curl --cacert`.
    pub demo_ca: Option<PathBuf>,
    /// What was wrong with the controller ConfigMap, and the Ingresses served without a
    /// dropped snippet annotation.
    pub config_problems: Vec<String>,
}

/// The per-process state every listener shares.
struct Shared {
    options: Options,
    /// The annotations every table reads.
    nginx: Arc<NginxAnnotations>,
    /// One reconciler for the listeners with a controller, one for those without.
    reconcilers: Mutex<Vec<Reconciler>>,
    echoes: Echoes,
    demo_ca: Mutex<Option<DemoCa>>,
}

/// A running data plane.
pub struct DataPlane {
    shared: Arc<Shared>,
    /// The listeners, each with its connections.
    servers: JoinSet<()>,
    /// Tells the listeners to stop.
    stop: tokio::sync::watch::Sender<bool>,
    listeners: Vec<(SocketAddr, Option<String>)>,
    tls_listeners: Vec<(SocketAddr, Option<String>)>,
    tasks: JoinSet<()>,
}

impl DataPlane {
    /// Loads `manifests`, binds every listener and starts serving; also returns what loading
    /// found. Without manifests, the snapshots start empty and the reconcilers wait in
    /// [`DataPlane::take_reconcilers`] for a source of events (a cluster watch).
    pub async fn start(
        options: Options,
        manifests: Option<impl Into<FileObjects>>,
    ) -> Result<(DataPlane, Loaded), LoadError> {
        let manifests = manifests.map(Into::into);
        let (config, config_problems) =
            options.nginx_config(manifests.as_ref().map(|m| &m.manifests));
        let mut nginx = NginxAnnotations::new(config);
        if let Some(prefix) = &options.annotations_prefix {
            nginx = nginx.with_prefix(prefix);
        }
        let nginx = Arc::new(nginx);
        let table_options = TableOptions {
            default_backend: options.default_backend.clone(),
            extension: Some(Arc::clone(&nginx) as _),
            ..TableOptions::default()
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let fallback = Arc::new(demo::self_signed_default(&provider)?);
        let certificates = |reconciler: Reconciler| {
            let default = options.default_certificate.clone();
            reconciler.with_certificates(
                Arc::clone(&provider),
                default,
                Some(Arc::clone(&fallback)),
            )
        };
        let all_listeners = || options.listen.iter().chain(&options.listen_tls);
        let names: BTreeSet<&str> = all_listeners()
            .filter_map(|l| l.controller.as_deref())
            .collect();
        let mut reconcilers = Vec::new();
        if !names.is_empty() {
            let controllers = names
                .iter()
                .map(|n| Controller::new(*n).table_options(table_options.clone()));
            let dispatcher =
                Dispatcher::new(controllers).map_err(|e| LoadError(vec![e.to_string()]))?;
            reconcilers.push(certificates(Reconciler::new(dispatcher)));
        }
        if all_listeners().any(|l| l.controller.is_none()) {
            reconcilers.push(certificates(Reconciler::every_ingress(table_options)));
        }
        let shared = Arc::new(Shared {
            options,
            nginx,
            reconcilers: Mutex::new(reconcilers),
            echoes: Echoes::default(),
            demo_ca: Mutex::new(None),
        });
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let mut plane = DataPlane {
            shared,
            servers: JoinSet::new(),
            stop,
            listeners: Vec::new(),
            tls_listeners: Vec::new(),
            tasks: JoinSet::new(),
        };
        let mut loaded = match manifests {
            Some(manifests) => plane.apply(manifests).await?,
            None => Loaded::default(),
        };
        loaded.config_problems.splice(0..0, config_problems);

        // TLS listeners first, so that plain ones know the https port to redirect to.
        let options = &plane.shared.options;
        let mut bound = Vec::new();
        for (tls, listen) in options
            .listen_tls
            .iter()
            .map(|l| (true, l))
            .chain(options.listen.iter().map(|l| (false, l)))
        {
            let listener = TcpListener::bind(listen.addr)
                .await
                .map_err(|e| LoadError(vec![format!("cannot listen on {}: {e}", listen.addr)]))?;
            let addr = listener
                .local_addr()
                .map_err(|e| LoadError(vec![e.to_string()]))?;
            bound.push((tls, listen.controller.clone(), listener, addr));
        }
        let limits = Arc::new(plane.shared.options.limits.clone());
        if let Some(files) = limits::open_file_limit() {
            // A client connection and one to its backend each take a file.
            let needed = 2 * limits.max_connections as u64 + 64;
            if files < needed {
                tracing::warn!(
                    "the process may open {files} files: --max-connections {} needs about \
                     {needed}; raise the limit (ulimit -n) or lower --max-connections",
                    limits.max_connections
                );
            }
        }
        let upstream = Arc::new(Upstream::new(
            Arc::clone(plane.shared.nginx.config()),
            Arc::clone(&limits),
            plane.shared.options.threads.max(1),
        ));
        let threads = plane.shared.options.threads.max(1);
        let workers = match threads {
            1 => None,
            _ => Some(
                serve::Workers::start(threads, |done| {
                    plane.servers.spawn(done);
                })
                .map_err(|e| LoadError(vec![format!("cannot start a serving thread: {e}")]))?,
            ),
        };
        let edge = serve::Edge {
            connections: Arc::new(tokio::sync::Semaphore::new(limits.max_connections)),
            limits,
            stopping,
            nginx: Arc::clone(plane.shared.nginx.config()),
            workers,
        };
        for (tls, controller, listener, addr) in bound {
            let snapshot = plane.snapshot(controller.as_deref());
            let mut routing = IngressLayer::new(snapshot.clone())
                .ssl_redirect(plane.shared.options.ssl_redirect(controller.as_deref()))
                .nginx(Arc::clone(plane.shared.nginx.config()));
            if let Some(port) = plane.shared.options.http_port {
                routing = routing.http_port(port);
            }
            let acceptor = if tls {
                plane.tls_listeners.push((addr, controller.clone()));
                let resolver = Arc::new(CertResolver::new(snapshot));
                Some(serve::acceptor(resolver, &provider))
            } else {
                plane.listeners.push((addr, controller.clone()));
                let https = plane
                    .tls_listeners
                    .iter()
                    .find(|(_, c)| *c == controller)
                    .map(|(a, _)| a.port());
                if let Some(port) = plane.shared.options.https_port.or(https) {
                    routing = routing.https_port(port);
                }
                None
            };
            let upstream = Arc::clone(&upstream);
            plane.servers.spawn(serve::serve(
                listener,
                routing,
                acceptor,
                upstream,
                controller,
                edge.clone(),
            ));
        }
        Ok((plane, loaded))
    }

    /// The reconcilers behind the listeners, for a source of events other than the files;
    /// file reloads then change nothing.
    #[allow(dead_code)] // Used with the `kube` feature only.
    pub fn take_reconcilers(&self) -> Vec<Reconciler> {
        std::mem::take(&mut *self.shared.reconcilers.lock().unwrap())
    }

    /// The bound plain-HTTP addresses, with their controllers, in `--listen` order.
    pub fn listeners(&self) -> &[(SocketAddr, Option<String>)] {
        &self.listeners
    }

    /// The bound TLS addresses, with their controllers, in `--listen-tls` order.
    pub fn tls_listeners(&self) -> &[(SocketAddr, Option<String>)] {
        &self.tls_listeners
    }

    /// The snapshots a listener for `controller` serves.
    fn snapshot(&self, controller: Option<&str>) -> SharedSnapshot {
        let reconcilers = self.shared.reconcilers.lock().unwrap();
        let snapshot = reconcilers
            .iter()
            .flat_map(|r| r.snapshots())
            .find(|(name, _)| *name == controller)
            .map(|(_, snapshot)| snapshot.clone());
        snapshot.expect("a snapshot for every listener")
    }

    /// Makes `manifests` the configuration, in one swap per controller. A manifest with
    /// unreadable documents changes nothing.
    pub async fn apply(&self, manifests: impl Into<FileObjects>) -> Result<Loaded, LoadError> {
        apply(&self.shared, manifests.into()).await
    }

    /// Re-reads the files of [`Options::files`] and applies them.
    pub async fn reload_files(&self) -> Result<Loaded, LoadError> {
        reload_files(&self.shared).await
    }

    /// Watches the files (polling their size and modification time every `interval`) and
    /// reloads once a change has settled: when a poll finds the files as the one before it
    /// found them changed, so that a file written in several steps is read whole as long as
    /// the steps come within one interval of each other. Each outcome goes to `report`.
    /// Writers that cannot promise that should replace files atomically (write a new file,
    /// then rename it over the old one), as Kubernetes' ConfigMap volumes do.
    pub fn watch_files(
        &mut self,
        interval: Duration,
        report: impl Fn(Result<Loaded, LoadError>) + Send + Sync + 'static,
    ) {
        let shared = Arc::clone(&self.shared);
        self.tasks.spawn(async move {
            let mut loaded = stamps(&shared.options.files);
            let mut last = loaded.clone();
            loop {
                tokio::time::sleep(interval).await;
                let now = stamps(&shared.options.files);
                let settled = now == last;
                last = now;
                if settled && last != loaded {
                    loaded = last.clone();
                    report(reload_files(&shared).await);
                }
            }
        });
    }

    /// Stops accepting, lets the requests in flight finish for at most `--shutdown-timeout`,
    /// then stops every connection, the file watch and the echo servers, and removes the demo
    /// CA's file.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        let deadline = self.shared.options.limits.shutdown_timeout;
        let drained = tokio::time::timeout(deadline, async {
            while self.servers.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                "requests still in flight after {deadline:?} (--shutdown-timeout): closing"
            );
        }
        self.servers.shutdown().await;
        self.tasks.shutdown().await;
        self.shared.echoes.shutdown().await;
        if let Some(ca) = self.shared.demo_ca.lock().unwrap().take() {
            let _ = std::fs::remove_file(ca.path);
        }
    }
}

fn stamps(files: &[PathBuf]) -> Vec<Option<(u64, SystemTime)>> {
    files
        .iter()
        .map(|f| {
            let meta = std::fs::metadata(f).ok()?;
            Some((meta.len(), meta.modified().ok()?))
        })
        .collect()
}

/// Reads manifest files within `limits` (a runaway file is cut, not read whole): Services and
/// EndpointSlices into an [`EndpointObjects`] as each is read, every other object into one
/// [`Manifests`]; any unreadable file or document is an error.
pub fn read_files(files: &[PathBuf], limits: &LoadLimits) -> Result<FileObjects, LoadError> {
    let mut read = FileObjects::default();
    let mut errors = Vec::new();
    for file in files {
        // Services and EndpointSlices are kept only as resolving needs them, as they are read.
        let take = |object| read.take(object);
        match std::fs::File::open(file).and_then(|f| Manifests::read_with(f, limits, take)) {
            Ok(manifests) => {
                errors.extend(
                    manifests
                        .errors
                        .iter()
                        .map(|e| format!("{}: {e}", file.display())),
                );
                read.manifests.extend(manifests);
            }
            Err(e) => errors.push(format!("{}: {e}", file.display())),
        }
    }
    if errors.is_empty() {
        Ok(read)
    } else {
        Err(LoadError(errors))
    }
}

/// The objects of the manifest files: the Services and EndpointSlices in `endpoints`, every
/// other object in `manifests`.
#[derive(Debug, Clone, Default)]
pub struct FileObjects {
    /// Every object but the Services and EndpointSlices.
    pub manifests: Manifests,
    /// The Services and EndpointSlices, as resolving needs them.
    pub endpoints: EndpointObjects,
    /// How many EndpointSlices were read (with a Service label or not): with none, the demo
    /// backends stand in.
    pub endpoint_slices: usize,
}

impl FileObjects {
    /// Takes a Service or an EndpointSlice into `self.endpoints`; gives any other object back.
    fn take(&mut self, object: Object) -> Option<Object> {
        match object {
            Object::Service(s) => self.endpoints.insert_service(&s),
            Object::EndpointSlice(s) => {
                self.endpoint_slices += 1;
                self.endpoints.insert_endpoint_slice(&s);
            }
            other => return Some(other),
        }
        None
    }

    /// Moves the Services and EndpointSlices of `manifests` to `self.endpoints`.
    fn take_services_and_slices(&mut self, manifests: &mut Manifests) {
        let services = std::mem::take(&mut manifests.services);
        let slices = std::mem::take(&mut manifests.endpoint_slices);
        let objects = services.into_iter().map(Object::from);
        for object in objects.chain(slices.into_iter().map(Object::from)) {
            self.take(object);
        }
    }
}

impl From<Manifests> for FileObjects {
    fn from(mut manifests: Manifests) -> FileObjects {
        let mut read = FileObjects::default();
        read.take_services_and_slices(&mut manifests);
        read.manifests = manifests;
        read
    }
}

/// `value` itself when `last`, else a copy.
fn taken<T: Clone + Default>(value: &mut T, last: bool) -> T {
    match last {
        true => std::mem::take(value),
        false => value.clone(),
    }
}

async fn reload_files(shared: &Arc<Shared>) -> Result<Loaded, LoadError> {
    let files = shared.options.files.clone();
    let limits = shared.options.load_limits.clone();
    let read = tokio::task::spawn_blocking(move || read_files(&files, &limits)).await;
    let outcome = match read.map_err(|e| LoadError(vec![e.to_string()])) {
        Ok(Ok(manifests)) => apply(shared, manifests).await,
        Ok(Err(e)) | Err(e) => Err(e),
    };
    metrics::reloaded(outcome.is_ok());
    outcome
}

/// Hands `manifests` to every reconciler, after filling in the demo's backends and
/// certificates, and reports what the new snapshots hold.
async fn apply(shared: &Arc<Shared>, mut read: FileObjects) -> Result<Loaded, LoadError> {
    let mut manifests = std::mem::take(&mut read.manifests);
    if !manifests.errors.is_empty() {
        return Err(LoadError(
            manifests.errors.iter().map(ToString::to_string).collect(),
        ));
    }
    // Services and slices given as whole objects join the others.
    read.take_services_and_slices(&mut manifests);
    let FileObjects {
        mut endpoints,
        endpoint_slices,
        ..
    } = read;
    let demo = shared.options.demo_backends == DemoBackends::On || endpoint_slices == 0;
    let mut loaded = Loaded {
        demo_backends: demo,
        ..Loaded::default()
    };
    if demo {
        let (generated, ca) = demo::demo_secrets(
            &shared.demo_ca,
            &manifests.ingresses,
            &mut manifests.secrets,
        )?;
        loaded.generated_secrets = generated;
        loaded.demo_ca = ca;
        // Echo servers stand in for the Services that the manifests give no endpoints.
        let mut extra: Vec<Backend> = shared.options.default_backend.iter().cloned().collect();
        for ingress in &manifests.ingresses {
            extra.extend(shared.nginx.referenced_backends(ingress));
        }
        let (services, slices) = shared
            .echoes
            .objects(&manifests.ingresses, &extra, &endpoints)
            .await?;
        // Each replaces the Service of its name that the manifests give.
        for service in &services {
            endpoints.insert_service(service);
        }
        for slice in &slices {
            endpoints.insert_endpoint_slice(slice);
        }
    }
    for review in shared.nginx.review(&manifests.ingresses) {
        for annotation in &review.annotations {
            let line = match (&annotation.verdict, review.served) {
                (Verdict::Honoured, _) | (Verdict::Refused(_), false) => continue,
                (verdict, _) => format!("{}: {}: {verdict}", review.ingress, annotation.annotation),
            };
            loaded.config_problems.push(line);
        }
    }
    let mut reconcilers = shared.reconcilers.lock().unwrap();
    let mut left = reconcilers.len();
    let mut classes = std::mem::take(&mut manifests.ingress_classes);
    let mut ingresses = std::mem::take(&mut manifests.ingresses);
    let mut secrets = std::mem::take(&mut manifests.secrets);
    for reconciler in reconcilers.iter_mut() {
        // The last reconciler takes the objects: a copy each would double what is held.
        left -= 1;
        let last = left == 0;
        let events = [
            Event::ReplaceAll(Objects::IngressClasses(taken(&mut classes, last))),
            Event::ReplaceAll(Objects::Ingresses(taken(&mut ingresses, last))),
            Event::ReplaceAll(Objects::ServicesAndSlices(taken(&mut endpoints, last))),
            Event::ReplaceAll(Objects::Secrets(taken(&mut secrets, last))),
        ];
        let outcome = reconciler.apply_all(events);
        loaded.rebuilt.extend(outcome.rebuilt);
        for rejected in outcome.rejected {
            let text = rejected.to_string();
            if !loaded.rejected.contains(&text) {
                loaded.rejected.push(text);
            }
        }
    }
    for reconciler in reconcilers.iter() {
        if let Some(problem) = reconciler.default_certificate_problem() {
            let line = format!("{problem}; serving a self-signed one");
            if !loaded.certificate_problems.contains(&line) {
                loaded.certificate_problems.push(line);
            }
        }
        for (controller, snapshot) in reconciler.snapshots() {
            let snapshot = snapshot.load();
            let d = snapshot.diagnostics();
            let who = controller.unwrap_or("every Ingress");
            let conflicts = d.conflicts.iter().map(ToString::to_string);
            let tls_conflicts = d.tls_conflicts.iter().map(ToString::to_string);
            loaded.diagnostics.extend(
                conflicts
                    .chain(tls_conflicts)
                    .map(|c| format!("[{who}] conflict: {c}")),
            );
            loaded
                .diagnostics
                .extend(d.warnings.iter().map(|w| format!("[{who}] warning: {w}")));
            for quarantined in &d.quarantined {
                for error in &quarantined.errors {
                    loaded.diagnostics.push(format!(
                        "[{who}] not served: {}: {}: {}",
                        quarantined.object, error.field, error.violation
                    ));
                }
            }
            if shared.options.serves_tls(controller) {
                for problem in snapshot.certificates().problems() {
                    let line =
                        format!("[{who}] certificate: {problem}; serving the default certificate");
                    loaded.certificate_problems.push(line);
                }
            }
        }
    }
    Ok(loaded)
}
