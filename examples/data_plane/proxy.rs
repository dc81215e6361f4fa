//! The reverse proxy behind `examples/data_plane`: listeners (plain and TLS), the routing layer,
//! certificates, backend resolution and balancing, forwarding, echo backends and reloads.
//!
//! Kept apart from `main.rs` (command line, signals) so that the integration tests can start
//! the same data plane in-process.

use std::collections::{BTreeSet, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use ingress_router::backend::ServiceBackend;
use ingress_router::endpoints::Endpoints;
use ingress_router::layer::{IngressLayer, Refusal};
use ingress_router::model::Ingress;
use ingress_router::reconcile::{Event, Reconciler};
use ingress_router::tls::resolver::{certified_key, CertResolver, Certificates};
use ingress_router::tls::{Secret, SecretRef, TlsInfo, TLS_SECRET_TYPE};
use ingress_router::{
    Backend, Controller, Dispatcher, Manifests, MatchedRoute, ServicePort, SharedTable,
    TableOptions,
};
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use serde_json::{json, Map, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::{ServiceBuilder, ServiceExt};

/// The response body the proxy produces: a backend's, or one it writes itself.
pub type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// How long an endpoint whose connect failed is tried only after the others.
const EJECT_FOR: Duration = Duration::from_secs(10);

/// How long a client has to complete a TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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
        }
    }

    fn ssl_redirect(&self, controller: Option<&str>) -> bool {
        !self.all_without_ssl_redirect
            && !self
                .no_ssl_redirect
                .iter()
                .any(|c| c.as_deref() == controller)
    }
}

/// Why a reload was refused; the tables in service do not change.
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
    /// The tables swapped in, by listener controller (`None`: the every-Ingress table).
    pub rebuilt: Vec<Option<String>>,
    /// Objects whose new version was rejected (the previous one, if any, keeps serving).
    pub rejected: Vec<String>,
    /// Conflicts and warnings of the tables now serving.
    pub diagnostics: Vec<String>,
    /// Whether Service traffic goes to echo servers.
    pub demo_backends: bool,
    /// Secrets whose certificates are not served (the default certificate is, instead).
    pub certificate_problems: Vec<String>,
    /// TLS Secrets generated because the manifests lack them (demo mode).
    pub generated_secrets: Vec<SecretRef>,
    /// The PEM file of the CA that signed them, for `curl --cacert`.
    pub demo_ca: Option<PathBuf>,
}

/// Where Service backends are: the endpoints of the loaded manifests, or echo servers.
#[derive(Debug, Default)]
struct Upstreams {
    endpoints: Endpoints,
    /// Echo servers by backend, when demo backends are on.
    demo: Option<HashMap<ServiceBackend, SocketAddr>>,
    /// Round-robin positions per backend.
    cursors: HashMap<ServiceBackend, AtomicUsize>,
}

/// The per-process state every connection shares.
struct Shared {
    options: Options,
    reconcilers: Mutex<Vec<Reconciler>>,
    upstreams: ArcSwap<Upstreams>,
    echo: tokio::sync::Mutex<HashMap<ServiceBackend, SocketAddr>>,
    echo_tasks: Mutex<JoinSet<()>>,
    ejected: Mutex<HashMap<SocketAddr, Instant>>,
    client: Client<HttpConnector, RetryBody>,
    provider: Arc<CryptoProvider>,
    /// One certificate resolver per TLS listener controller.
    resolvers: Vec<(Option<String>, Arc<CertResolver>)>,
    /// The self-signed default certificate, used when no usable one is configured.
    fallback_certificate: Arc<CertifiedKey>,
    demo_ca: Mutex<Option<DemoCa>>,
}

/// A running data plane.
pub struct DataPlane {
    shared: Arc<Shared>,
    listeners: Vec<(SocketAddr, Option<String>)>,
    tls_listeners: Vec<(SocketAddr, Option<String>)>,
    tasks: JoinSet<()>,
}

impl DataPlane {
    /// Loads `manifests`, binds every listener and starts serving; also returns what loading
    /// found.
    pub async fn start(
        options: Options,
        manifests: Manifests,
    ) -> Result<(DataPlane, Loaded), LoadError> {
        let table_options = TableOptions {
            default_backend: options.default_backend.clone(),
            ..TableOptions::default()
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
            reconcilers.push(Reconciler::new(dispatcher));
        }
        if all_listeners().any(|l| l.controller.is_none()) {
            reconcilers.push(Reconciler::every_ingress(table_options));
        }
        let mut resolvers: Vec<(Option<String>, Arc<CertResolver>)> = Vec::new();
        for listen in &options.listen_tls {
            if !resolvers.iter().any(|(c, _)| *c == listen.controller) {
                let resolver = Arc::new(CertResolver::new(Certificates::default()));
                resolvers.push((listen.controller.clone(), resolver));
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let fallback_certificate = Arc::new(self_signed_default(&provider)?);

        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);

        let shared = Arc::new(Shared {
            options,
            reconcilers: Mutex::new(reconcilers),
            upstreams: ArcSwap::from_pointee(Upstreams::default()),
            echo: tokio::sync::Mutex::new(HashMap::new()),
            echo_tasks: Mutex::new(JoinSet::new()),
            ejected: Mutex::new(HashMap::new()),
            client,
            provider,
            resolvers,
            fallback_certificate,
            demo_ca: Mutex::new(None),
        });
        let mut plane = DataPlane {
            shared,
            listeners: Vec::new(),
            tls_listeners: Vec::new(),
            tasks: JoinSet::new(),
        };
        let loaded = plane.apply(manifests).await?;

        // TLS listeners first, so that plain ones know the https port to redirect to.
        let mut bound = Vec::new();
        for (tls, listen) in plane
            .shared
            .options
            .listen_tls
            .iter()
            .map(|l| (true, l))
            .chain(plane.shared.options.listen.iter().map(|l| (false, l)))
        {
            let listener = TcpListener::bind(listen.addr)
                .await
                .map_err(|e| LoadError(vec![format!("cannot listen on {}: {e}", listen.addr)]))?;
            let addr = listener
                .local_addr()
                .map_err(|e| LoadError(vec![e.to_string()]))?;
            bound.push((tls, listen.controller.clone(), listener, addr));
        }
        for (tls, controller, listener, addr) in bound {
            let table = plane.table(controller.as_deref());
            let mut routing = IngressLayer::new(table)
                .ssl_redirect(plane.shared.options.ssl_redirect(controller.as_deref()));
            let acceptor = if tls {
                plane.tls_listeners.push((addr, controller.clone()));
                Some(plane.acceptor(controller.as_deref()))
            } else {
                plane.listeners.push((addr, controller.clone()));
                let https = plane
                    .tls_listeners
                    .iter()
                    .find(|(_, c)| *c == controller)
                    .map(|(a, _)| a.port());
                if let Some(port) = https {
                    routing = routing.https_port(port);
                }
                None
            };
            let shared = Arc::clone(&plane.shared);
            plane
                .tasks
                .spawn(serve(listener, routing, acceptor, shared, controller));
        }
        Ok((plane, loaded))
    }

    /// The bound plain-HTTP addresses, with their controllers, in `--listen` order.
    pub fn listeners(&self) -> &[(SocketAddr, Option<String>)] {
        &self.listeners
    }

    /// The bound TLS addresses, with their controllers, in `--listen-tls` order.
    pub fn tls_listeners(&self) -> &[(SocketAddr, Option<String>)] {
        &self.tls_listeners
    }

    /// A TLS acceptor whose certificates follow `controller`'s table: ALPN `h2` and
    /// `http/1.1`, TLS 1.2 and 1.3.
    fn acceptor(&self, controller: Option<&str>) -> TlsAcceptor {
        let resolver = self
            .shared
            .resolvers
            .iter()
            .find(|(c, _)| c.as_deref() == controller)
            .map(|(_, r)| Arc::clone(r))
            .expect("a resolver for every TLS listener");
        let mut config =
            rustls::ServerConfig::builder_with_provider(Arc::clone(&self.shared.provider))
                .with_safe_default_protocol_versions()
                .expect("the ring provider supports the default protocol versions")
                .with_no_client_auth()
                .with_cert_resolver(resolver);
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        TlsAcceptor::from(Arc::new(config))
    }

    /// The table a listener for `controller` serves.
    fn table(&self, controller: Option<&str>) -> SharedTable {
        let reconcilers = self.shared.reconcilers.lock().unwrap();
        let table = reconcilers
            .iter()
            .flat_map(|r| r.tables())
            .find(|(name, _)| *name == controller)
            .map(|(_, table)| table.clone());
        table.expect("a table for every listener")
    }

    /// Makes `manifests` the configuration: starts echo servers as needed, swaps the backend
    /// addresses, then the tables. A manifest with unreadable documents changes nothing.
    pub async fn apply(&self, manifests: Manifests) -> Result<Loaded, LoadError> {
        apply(&self.shared, manifests).await
    }

    /// Re-reads the files of [`Options::files`] and applies them.
    pub async fn reload_files(&self) -> Result<Loaded, LoadError> {
        reload_files(&self.shared).await
    }

    /// Watches the files (polling their size and modification time every `interval`) and
    /// reloads when one changes; each outcome goes to `report`.
    pub fn watch_files(
        &mut self,
        interval: Duration,
        report: impl Fn(Result<Loaded, LoadError>) + Send + Sync + 'static,
    ) {
        let shared = Arc::clone(&self.shared);
        self.tasks.spawn(async move {
            let mut seen = stamps(&shared.options.files);
            loop {
                tokio::time::sleep(interval).await;
                let now = stamps(&shared.options.files);
                if now != seen {
                    seen = now;
                    report(reload_files(&shared).await);
                }
            }
        });
    }

    /// Stops every listener, connection and echo server, and removes the demo CA's file.
    pub async fn shutdown(mut self) {
        self.tasks.shutdown().await;
        let mut echo = std::mem::take(&mut *self.shared.echo_tasks.lock().unwrap());
        echo.shutdown().await;
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

/// Reads manifest files into one [`Manifests`]; any unreadable file or document is an error.
pub fn read_files(files: &[PathBuf]) -> Result<Manifests, LoadError> {
    let mut manifests = Manifests::default();
    let mut errors = Vec::new();
    for file in files {
        // Read within the loader's default limits: a runaway file is cut, not read whole.
        let limits = ingress_router::LoadLimits::default();
        match std::fs::File::open(file).and_then(|f| Manifests::read(f, &limits)) {
            Ok(read) => {
                errors.extend(
                    read.errors
                        .iter()
                        .map(|e| format!("{}: {e}", file.display())),
                );
                manifests.extend(read);
            }
            Err(e) => errors.push(format!("{}: {e}", file.display())),
        }
    }
    if errors.is_empty() {
        Ok(manifests)
    } else {
        Err(LoadError(errors))
    }
}

async fn reload_files(shared: &Arc<Shared>) -> Result<Loaded, LoadError> {
    let files = shared.options.files.clone();
    let manifests = tokio::task::spawn_blocking(move || read_files(&files))
        .await
        .map_err(|e| LoadError(vec![e.to_string()]))??;
    apply(shared, manifests).await
}

/// Every Service backend the manifests (and the default backend) name.
fn service_backends(
    ingresses: &[Ingress],
    default: Option<&Backend>,
) -> BTreeSet<ServiceBackendKey> {
    let mut backends = BTreeSet::new();
    let mut add = |b: Option<Backend>| {
        if let Some(Backend::Service(s)) = b {
            backends.insert(ServiceBackendKey(s));
        }
    };
    add(default.cloned());
    for ingress in ingresses {
        let namespace = ingress.metadata.namespace();
        add(ingress
            .spec
            .default_backend
            .as_ref()
            .and_then(|b| Backend::from_ingress_backend(namespace, b)));
        for rule in &ingress.spec.rules {
            for path in rule.http.iter().flat_map(|h| &h.paths) {
                add(Backend::from_ingress_backend(namespace, &path.backend));
            }
        }
    }
    backends
}

/// A [`ServiceBackend`] ordered for a stable start-up order of echo servers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ServiceBackendKey(ServiceBackend);

impl Ord for ServiceBackendKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let key = |s: &ServiceBackend| (s.namespace.clone(), s.name.clone(), s.port.to_string());
        key(&self.0).cmp(&key(&other.0))
    }
}

impl PartialOrd for ServiceBackendKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

async fn apply(shared: &Arc<Shared>, mut manifests: Manifests) -> Result<Loaded, LoadError> {
    if !manifests.errors.is_empty() {
        return Err(LoadError(
            manifests.errors.iter().map(ToString::to_string).collect(),
        ));
    }
    let demo =
        shared.options.demo_backends == DemoBackends::On || manifests.endpoint_slices.is_empty();
    let (generated_secrets, demo_ca) = if demo {
        demo_secrets(shared, &manifests.ingresses, &mut manifests.secrets)?
    } else {
        (Vec::new(), None)
    };
    let backends = service_backends(
        &manifests.ingresses,
        shared.options.default_backend.as_ref(),
    );
    let demo_map = if demo {
        let mut echo = shared.echo.lock().await;
        for ServiceBackendKey(backend) in &backends {
            if echo.contains_key(backend) {
                continue;
            }
            let listener = TcpListener::bind(("127.0.0.1", 0))
                .await
                .map_err(|e| LoadError(vec![format!("cannot start an echo backend: {e}")]))?;
            let addr = listener
                .local_addr()
                .map_err(|e| LoadError(vec![e.to_string()]))?;
            shared
                .echo_tasks
                .lock()
                .unwrap()
                .spawn(serve_echo(listener, backend.clone()));
            echo.insert(backend.clone(), addr);
        }
        // Every echo server started so far stays reachable, so that a request routed by the
        // previous table still finds its backend.
        Some(echo.clone())
    } else {
        None
    };
    let cursors = backends
        .into_iter()
        .map(|ServiceBackendKey(b)| (b, AtomicUsize::new(0)))
        .collect();
    shared.upstreams.store(Arc::new(Upstreams {
        endpoints: Endpoints::new(&manifests.services, &manifests.endpoint_slices),
        demo: demo_map,
        cursors,
    }));

    let mut loaded = Loaded {
        demo_backends: demo,
        generated_secrets,
        demo_ca,
        ..Loaded::default()
    };
    let mut reconcilers = shared.reconcilers.lock().unwrap();
    for reconciler in reconcilers.iter_mut() {
        let outcome = reconciler.apply(Event::ReplaceAll {
            ingresses: manifests.ingresses.clone(),
            classes: manifests.ingress_classes.clone(),
        });
        loaded.rebuilt.extend(outcome.rebuilt);
        for rejected in outcome.rejected {
            let text = rejected.to_string();
            if !loaded.rejected.contains(&text) {
                loaded.rejected.push(text);
            }
        }
    }
    for reconciler in reconcilers.iter() {
        for (controller, table) in reconciler.tables() {
            let table = table.load();
            let d = table.diagnostics();
            let who = controller.unwrap_or("every Ingress");
            loaded
                .diagnostics
                .extend(d.conflicts.iter().map(|c| format!("[{who}] conflict: {c}")));
            loaded.diagnostics.extend(
                d.tls_conflicts
                    .iter()
                    .map(|c| format!("[{who}] conflict: {c}")),
            );
            loaded
                .diagnostics
                .extend(d.warnings.iter().map(|w| format!("[{who}] warning: {w}")));
        }
    }
    // Certificates follow the tables just swapped in, and the Secrets of this load.
    let default = default_certificate(shared, &manifests.secrets, &mut loaded);
    for (controller, resolver) in &shared.resolvers {
        let table = reconcilers
            .iter()
            .flat_map(|r| r.tables())
            .find(|(c, _)| *c == controller.as_deref())
            .map(|(_, t)| t.load())
            .expect("a table for every TLS listener");
        let certificates = Certificates::build(
            table.tls(),
            &manifests.secrets,
            Some(Arc::clone(&default)),
            &shared.provider,
        );
        let who = controller.as_deref().unwrap_or("every Ingress");
        for problem in certificates.problems() {
            let line = format!("[{who}] certificate: {problem}; serving the default certificate");
            loaded.certificate_problems.push(line);
        }
        resolver.store(certificates);
    }
    Ok(loaded)
}

/// The configured default certificate, or the generated one.
fn default_certificate(
    shared: &Shared,
    secrets: &[Secret],
    loaded: &mut Loaded,
) -> Arc<CertifiedKey> {
    let Some(wanted) = &shared.options.default_certificate else {
        return Arc::clone(&shared.fallback_certificate);
    };
    let found = secrets.iter().rev().find(|s| s.secret_ref() == *wanted);
    let outcome = match found {
        None => Err("no such Secret".to_owned()),
        Some(secret) => certified_key(secret, &shared.provider).map_err(|e| e.to_string()),
    };
    match outcome {
        Ok(key) => Arc::new(key),
        Err(e) => {
            loaded.certificate_problems.push(format!(
                "default certificate {wanted}: {e}; serving a self-signed one"
            ));
            Arc::clone(&shared.fallback_certificate)
        }
    }
}

/// A self-signed certificate for names nothing else covers, as ingress controllers have.
fn self_signed_default(provider: &CryptoProvider) -> Result<CertifiedKey, LoadError> {
    let fail = |e: &dyn std::fmt::Display| LoadError(vec![format!("default certificate: {e}")]);
    let key = rcgen::KeyPair::generate().map_err(|e| fail(&e))?;
    let mut params = rcgen::CertificateParams::new(vec!["ingress-router.invalid".to_owned()])
        .map_err(|e| fail(&e))?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        "ingress-router default certificate",
    );
    let cert = params.self_signed(&key).map_err(|e| fail(&e))?;
    ingress_router::tls::resolver::certified_key_from_pem(
        cert.pem().as_bytes(),
        key.serialize_pem().as_bytes(),
        provider,
    )
    .map_err(|e| fail(&e))
}

/// The CA that signs demo certificates, and the file its certificate is written to.
struct DemoCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    path: PathBuf,
    /// Certificates issued so far, by Secret and hosts, so that reloads keep them.
    issued: HashMap<(SecretRef, Vec<String>), Secret>,
}

impl DemoCa {
    fn new() -> Result<DemoCa, String> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
        let mut params =
            rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "ingress-router demo CA");
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
        let path = std::env::temp_dir().join(format!(
            "ingress-router-demo-ca-{}-{}.pem",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, cert.pem())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(DemoCa {
            issuer: rcgen::Issuer::new(params, key),
            path,
            issued: HashMap::new(),
        })
    }

    fn issue(&mut self, secret: &SecretRef, hosts: Vec<String>) -> Result<Secret, String> {
        let key = (secret.clone(), hosts);
        if let Some(issued) = self.issued.get(&key) {
            return Ok(issued.clone());
        }
        let leaf_key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
        let params = rcgen::CertificateParams::new(key.1.clone()).map_err(|e| e.to_string())?;
        let cert = params
            .signed_by(&leaf_key, &self.issuer)
            .map_err(|e| e.to_string())?;
        let mut generated = Secret {
            type_: Some(TLS_SECRET_TYPE.to_owned()),
            ..Secret::default()
        };
        generated.metadata.namespace = Some(secret.namespace.clone());
        generated.metadata.name = secret.name.clone();
        generated
            .string_data
            .insert("tls.crt".to_owned(), cert.pem());
        generated
            .string_data
            .insert("tls.key".to_owned(), leaf_key.serialize_pem());
        self.issued.insert(key, generated.clone());
        Ok(generated)
    }
}

/// Generates the TLS Secrets the Ingresses name but the manifests lack, each covering every
/// host the entries naming it list.
fn demo_secrets(
    shared: &Shared,
    ingresses: &[Ingress],
    secrets: &mut Vec<Secret>,
) -> Result<(Vec<SecretRef>, Option<PathBuf>), LoadError> {
    let present: BTreeSet<SecretRef> = secrets.iter().map(Secret::secret_ref).collect();
    let mut wanted: std::collections::BTreeMap<SecretRef, BTreeSet<String>> = Default::default();
    for ingress in ingresses {
        let namespace = ingress.metadata.namespace();
        for tls in &ingress.spec.tls {
            let Some(name) = tls.secret_name.as_deref().filter(|n| !n.is_empty()) else {
                continue;
            };
            let secret = SecretRef::new(namespace, name);
            if !present.contains(&secret) && !tls.hosts.is_empty() {
                wanted
                    .entry(secret)
                    .or_default()
                    .extend(tls.hosts.iter().cloned());
            }
        }
    }
    let mut ca = shared.demo_ca.lock().unwrap();
    if wanted.is_empty() {
        return Ok((Vec::new(), ca.as_ref().map(|ca| ca.path.clone())));
    }
    if ca.is_none() {
        *ca = Some(DemoCa::new().map_err(|e| LoadError(vec![format!("demo CA: {e}")]))?);
    }
    let ca = ca.as_mut().expect("just created");
    let mut generated = Vec::new();
    for (secret, hosts) in wanted {
        let issued = ca
            .issue(&secret, hosts.into_iter().collect())
            .map_err(|e| LoadError(vec![format!("demo certificate for {secret}: {e}")]))?;
        secrets.push(issued);
        generated.push(secret);
    }
    Ok((generated, Some(ca.path.clone())))
}

/// Accepts connections and serves each with HTTP/1.1 or HTTP/2: over TLS when `acceptor` is
/// set (ALPN), otherwise in cleartext (HTTP/2 by prior knowledge).
async fn serve(
    listener: TcpListener,
    routing: IngressLayer,
    acceptor: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    controller: Option<String>,
) {
    let controller: Arc<str> = controller.as_deref().unwrap_or("-").into();
    let mut connections = JoinSet::new();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        let routing = routing.clone();
        let controller = Arc::clone(&controller);
        let acceptor = acceptor.clone();
        // Reap finished connections so that the set does not grow without bound.
        while connections.try_join_next().is_some() {}
        connections.spawn(async move {
            let Some(acceptor) = acceptor else {
                serve_connection(stream, None, peer, routing, shared, controller).await;
                return;
            };
            let stream =
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        tracing::debug!("TLS handshake with {peer}: {e}");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!("TLS handshake with {peer}: timed out");
                        return;
                    }
                };
            let tls = TlsInfo::new(stream.get_ref().1.server_name());
            serve_connection(stream, Some(tls), peer, routing, shared, controller).await;
        });
    }
}

/// Serves one connection; `tls` goes into every request's extensions.
async fn serve_connection<I>(
    io: I,
    tls: Option<TlsInfo>,
    peer: SocketAddr,
    routing: IngressLayer,
    shared: Arc<Shared>,
    controller: Arc<str>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let proxy = ServiceBuilder::new()
        .layer(routing)
        .service_fn(move |req| forward(Arc::clone(&shared), peer, req));
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        let proxy = proxy.clone();
        let controller = Arc::clone(&controller);
        if let Some(tls) = &tls {
            req.extensions_mut().insert(tls.clone());
        }
        async move {
            let started = Instant::now();
            let method = req.method().clone();
            let host = request_host(req.headers(), req.uri()).unwrap_or_default();
            let target = req.uri().path_and_query().map(|p| p.to_string());
            let response = proxy.oneshot(req).await?;
            log_request(&controller, &method, &host, target, &response, started);
            Ok::<_, Infallible>(response)
        }
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    if let Err(e) = builder.serve_connection(TokioIo::new(io), service).await {
        tracing::debug!("connection from {peer}: {e}");
    }
}

fn log_request<B>(
    controller: &str,
    method: &Method,
    host: &str,
    target: Option<String>,
    response: &Response<B>,
    started: Instant,
) {
    let backend = match (
        response.extensions().get::<MatchedRoute>(),
        response.extensions().get::<Refusal>(),
    ) {
        (Some(route), _) => route.backend().to_string(),
        (None, Some(refusal)) => format!("({refusal})"),
        (None, None) => "-".to_owned(),
    };
    tracing::info!(
        target: "access",
        "{controller} {method} {host} {} {} {backend} {}us",
        target.as_deref().unwrap_or("-"),
        response.status().as_u16(),
        started.elapsed().as_micros()
    );
}

/// The host the request is routed on, as the client spelled it, port included: the target's
/// authority (absolute-form, HTTP/2 `:authority`), which wins over `Host` (RFC 9112 §3.2.2),
/// or else `Host`. Forwarding this one keeps the backend's host the routed one.
fn request_host(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    uri.authority().map(|a| a.to_string()).or_else(|| {
        headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned)
    })
}

/// A response the proxy writes itself.
fn reply(status: StatusCode, message: String) -> Response<ProxyBody> {
    let mut response = Response::new(
        Full::new(Bytes::from(message + "\n"))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Forwards one routed request to its backend.
async fn forward(
    shared: Arc<Shared>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let Some(route) = req.extensions().get::<MatchedRoute>().cloned() else {
        // The routing layer only calls in with a match.
        return Ok(reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unrouted request".into(),
        ));
    };
    let mut response = forward_to(&shared, peer, &route, req).await;
    response.extensions_mut().insert(route);
    Ok(response)
}

async fn forward_to(
    shared: &Shared,
    peer: SocketAddr,
    route: &MatchedRoute,
    req: Request<Incoming>,
) -> Response<ProxyBody> {
    let service = match route.backend() {
        Backend::Service(service) => service,
        other => {
            return reply(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{other}: resource backends are not proxied"),
            )
        }
    };
    let upstreams = shared.upstreams.load();
    let addresses: Vec<SocketAddr> = match &upstreams.demo {
        Some(echo) => echo.get(service).copied().into_iter().collect(),
        None => match upstreams.endpoints.resolve(service) {
            Ok(addresses) => addresses.to_vec(),
            Err(e) => return reply(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        },
    };
    if addresses.is_empty() {
        return reply(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("no endpoint for {}", route.backend()),
        );
    }
    let order = try_order(shared, &upstreams, service, &addresses);

    let (parts, body) = req.into_parts();
    let original_host = request_host(&parts.headers, &parts.uri);
    let proto = if parts.extensions.get::<TlsInfo>().is_some() {
        "https"
    } else {
        "http"
    };
    let slot = Arc::new(Mutex::new(Some(body)));
    let idempotent = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    let mut last_error = String::new();
    for (attempt, addr) in order.iter().enumerate() {
        let forwarded = Forwarded {
            host: original_host.as_deref(),
            peer,
            proto,
        };
        let outbound = match outbound_request(&parts, *addr, &forwarded, &slot) {
            Ok(outbound) => outbound,
            Err(e) => return reply(StatusCode::BAD_REQUEST, e),
        };
        match shared.client.request(outbound).await {
            Ok(response) => {
                let (mut parts, body) = response.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                return Response::from_parts(parts, body.boxed());
            }
            Err(e) => {
                let unsent = slot.lock().unwrap().is_some();
                if e.is_connect() {
                    shared
                        .ejected
                        .lock()
                        .unwrap()
                        .insert(*addr, Instant::now() + EJECT_FOR);
                }
                last_error = format!("{addr}: {e}");
                tracing::debug!(attempt, "upstream {last_error}");
                // Another endpoint gets the request only when this one cannot have seen it.
                let retry = unsent && (e.is_connect() || idempotent);
                if !retry {
                    break;
                }
            }
        }
    }
    reply(
        StatusCode::BAD_GATEWAY,
        format!("{}: no endpoint answered ({last_error})", route.backend()),
    )
}

/// The endpoints in the order to try them: round-robin from this backend's cursor, endpoints
/// whose connect failed recently last.
fn try_order(
    shared: &Shared,
    upstreams: &Upstreams,
    service: &ServiceBackend,
    addresses: &[SocketAddr],
) -> Vec<SocketAddr> {
    let start = upstreams
        .cursors
        .get(service)
        .map_or(0, |c| c.fetch_add(1, Ordering::Relaxed));
    let n = addresses.len();
    let rotated = (0..n).map(|i| addresses[(start + i) % n]);
    let now = Instant::now();
    let mut ejected = shared.ejected.lock().unwrap();
    ejected.retain(|_, until| *until > now);
    let (mut healthy, down): (Vec<_>, Vec<_>) = rotated.partition(|a| !ejected.contains_key(a));
    healthy.extend(down);
    healthy
}

/// The request to send to `addr`: the routed path and query, the original headers minus
/// hop-by-hop ones, the client's Host, and `X-Forwarded-*` set by the proxy.
/// What the `X-Forwarded-*` headers say.
struct Forwarded<'a> {
    /// The host the client asked for.
    host: Option<&'a str>,
    /// The client.
    peer: SocketAddr,
    /// `http` or `https`.
    proto: &'static str,
}

fn outbound_request(
    parts: &http::request::Parts,
    addr: SocketAddr,
    forwarded: &Forwarded<'_>,
    slot: &Arc<Mutex<Option<Incoming>>>,
) -> Result<Request<RetryBody>, String> {
    let Forwarded { host, peer, proto } = *forwarded;
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let uri: Uri = format!("http://{addr}{path_and_query}")
        .parse()
        .map_err(|e| format!("cannot forward {path_and_query:?}: {e}"))?;
    let mut headers = parts.headers.clone();
    strip_hop_by_hop(&mut headers);
    if let Some(host) = host {
        if let Ok(value) = HeaderValue::from_str(host) {
            headers.insert(header::HOST, value.clone());
            headers.insert(X_FORWARDED_HOST, value);
        }
    }
    headers.insert(
        X_FORWARDED_FOR,
        HeaderValue::from_str(&peer.ip().to_string()).expect("an IP address is a header value"),
    );
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    let mut request = Request::new(RetryBody {
        slot: Arc::clone(slot),
        taken: None,
    });
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    Ok(request)
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Removes the headers that describe one connection rather than the message (RFC 9110 §7.6.1),
/// including those the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        HeaderName::from_static("keep-alive"),
        HeaderName::from_static("proxy-connection"),
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
}

/// A request body that stays in a shared slot until the client first reads it, so that a
/// request whose connect failed can be sent again, body included, to another endpoint.
pub struct RetryBody {
    slot: Arc<Mutex<Option<Incoming>>>,
    taken: Option<Incoming>,
}

impl Body for RetryBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        if self.taken.is_none() {
            let body = self.slot.lock().unwrap().take();
            match body {
                Some(body) => self.taken = Some(body),
                None => return Poll::Ready(None),
            }
        }
        match self.taken.as_mut() {
            Some(body) => std::pin::Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.taken {
            Some(body) => body.is_end_stream(),
            None => self
                .slot
                .lock()
                .unwrap()
                .as_ref()
                .is_none_or(Body::is_end_stream),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.taken {
            Some(body) => body.size_hint(),
            None => self
                .slot
                .lock()
                .unwrap()
                .as_ref()
                .map_or_else(|| SizeHint::with_exact(0), Body::size_hint),
        }
    }
}

/// An echo backend for one Service port: answers every request `200` with JSON describing it.
pub async fn serve_echo(listener: TcpListener, backend: ServiceBackend) {
    let endpoint = listener
        .local_addr()
        .map_or_else(|_| "-".to_owned(), |a| a.to_string());
    let identity = Arc::new(EchoIdentity {
        service: format!("{}/{}", backend.namespace, backend.name),
        port: match &backend.port {
            ServicePort::Number(n) => json!(n),
            ServicePort::Name(name) => json!(name),
        },
        endpoint,
    });
    let mut connections = JoinSet::new();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let identity = Arc::clone(&identity);
        while connections.try_join_next().is_some() {}
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let identity = Arc::clone(&identity);
                async move { Ok::<_, Infallible>(echo(&identity, req).await) }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Who an echo server stands for.
struct EchoIdentity {
    /// `namespace/name`.
    service: String,
    /// The port as the Ingress names it: a number or a name.
    port: Value,
    /// The echo server's own address.
    endpoint: String,
}

/// The echo answer: `{"service","port","method","path","query","host","headers","body_bytes",
/// "endpoint"}`.
async fn echo(identity: &EchoIdentity, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body_bytes = body
        .collect()
        .await
        .map(|b| b.to_bytes().len())
        .unwrap_or(0);
    let mut headers = Map::new();
    for name in parts.headers.keys() {
        let values: Vec<&str> = parts
            .headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap_or("<non-ascii>"))
            .collect();
        headers.insert(name.as_str().to_owned(), json!(values.join(", ")));
    }
    let answer = json!({
        "service": identity.service,
        "port": identity.port,
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "host": parts.headers.get(header::HOST).and_then(|h| h.to_str().ok()),
        "headers": headers,
        "body_bytes": body_bytes,
        "endpoint": identity.endpoint,
    });
    let mut response = Response::new(Full::new(Bytes::from(answer.to_string())));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
