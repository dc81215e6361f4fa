//! The demo: echo servers standing in for every Service port, as Services and EndpointSlices of
//! their own, and TLS Secrets signed by a demo CA for the hosts whose Secrets are missing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use ingress_router::model::{
    Endpoint, EndpointPort, EndpointSlice, Ingress, Secret, SecretRef, Service, ServicePortSpec,
    SERVICE_NAME_LABEL, TLS_SECRET_TYPE,
};
use ingress_router::{Backend, EndpointObjects, ServiceBackend, ServicePort};
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::proxy::LoadError;

/// The echo servers started so far, one per Service backend; they live as long as the data
/// plane, so that a backend that comes back finds its server again.
#[derive(Default)]
pub struct Echoes {
    servers: tokio::sync::Mutex<HashMap<ServiceBackend, SocketAddr>>,
    tasks: Mutex<JoinSet<()>>,
}

impl Echoes {
    /// Starts an echo server for every Service backend of `ingresses` (and of `extra`) that
    /// has none yet, except the Services that `real` gives EndpointSlices;
    /// returns the Services and EndpointSlices that send every other backend with a server to
    /// it.
    pub async fn objects(
        &self,
        ingresses: &[Ingress],
        extra: &[Backend],
        real: &EndpointObjects,
    ) -> Result<(Vec<Service>, Vec<EndpointSlice>), LoadError> {
        let stands_in = |b: &ServiceBackend| !real.has_endpoint_slices(&b.namespace, &b.name);
        let backends = service_backends(ingresses, extra);
        let mut servers = self.servers.lock().await;
        for backend in backends.iter().filter(|b| stands_in(b)) {
            if servers.contains_key(backend) {
                continue;
            }
            let listener = TcpListener::bind(("127.0.0.1", 0))
                .await
                .map_err(|e| LoadError(vec![format!("cannot start an echo backend: {e}")]))?;
            let addr = listener
                .local_addr()
                .map_err(|e| LoadError(vec![e.to_string()]))?;
            self.tasks
                .lock()
                .unwrap()
                .spawn(serve_echo(listener, backend.clone()));
            servers.insert(backend.clone(), addr);
        }
        // One Service per name, with a port per backend port, and one slice whose only
        // endpoint is this host, each port on its echo server's. Every server started so far
        // stays reachable: the Ingresses that keep serving when an edit is rejected name
        // backends the new manifests may not.
        let mut by_service: BTreeMap<(&str, &str), Vec<(&ServicePort, SocketAddr)>> =
            BTreeMap::new();
        for (backend, addr) in servers.iter().filter(|(b, _)| stands_in(b)) {
            by_service
                .entry((&backend.namespace, &backend.name))
                .or_default()
                .push((&backend.port, *addr));
        }
        for ports in by_service.values_mut() {
            ports.sort_by_key(|(port, _)| port.to_string());
        }
        let mut services = Vec::new();
        let mut slices = Vec::new();
        for ((namespace, name), ports) in by_service {
            let mut service = Service::default();
            service.metadata.namespace = Some(namespace.to_owned());
            service.metadata.name = name.to_owned();
            let mut slice = EndpointSlice::default();
            slice.metadata.namespace = Some(namespace.to_owned());
            slice.metadata.name = format!("{name}-demo");
            slice
                .metadata
                .labels
                .insert(SERVICE_NAME_LABEL.to_owned(), name.to_owned());
            slice.address_type = "IPv4".to_owned();
            slice.endpoints.push(Endpoint {
                addresses: vec!["127.0.0.1".to_owned()],
                ..Endpoint::default()
            });
            for (i, (port, addr)) in ports.into_iter().enumerate() {
                // Port names stand for numbers no Ingress names here.
                let (number, port_name) = match port {
                    ServicePort::Number(n) => (i32::from(*n), format!("port-{n}")),
                    ServicePort::Name(port_name) => (70_000 + i as i32, port_name.clone()),
                };
                service.spec.ports.push(ServicePortSpec {
                    name: Some(port_name.clone()),
                    port: number,
                    ..ServicePortSpec::default()
                });
                slice.ports.push(EndpointPort {
                    name: Some(port_name),
                    port: Some(i32::from(addr.port())),
                    ..EndpointPort::default()
                });
            }
            services.push(service);
            slices.push(slice);
        }
        Ok((services, slices))
    }

    /// Stops every echo server.
    pub async fn shutdown(&self) {
        let mut tasks = std::mem::take(&mut *self.tasks.lock().unwrap());
        tasks.shutdown().await;
    }
}

/// Every Service backend the Ingresses (and `extra`) name, in a stable order.
fn service_backends(ingresses: &[Ingress], extra: &[Backend]) -> Vec<ServiceBackend> {
    let mut backends: BTreeMap<(String, String, String), ServiceBackend> = BTreeMap::new();
    let mut add = |b: Option<Backend>| {
        if let Some(Backend::Service(s)) = b {
            let key = (s.namespace.clone(), s.name.clone(), s.port.to_string());
            backends.insert(key, s);
        }
    };
    for backend in extra {
        add(Some(backend.clone()));
    }
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
    backends.into_values().collect()
}

/// A self-signed certificate for names nothing else covers, as ingress controllers have.
pub fn self_signed_default(provider: &CryptoProvider) -> Result<CertifiedKey, LoadError> {
    let fail = |e: &dyn std::fmt::Display| LoadError(vec![format!("default certificate: {e}")]);
    let key = rcgen::KeyPair::generate().map_err(|e| fail(&e))?;
    let mut params = rcgen::CertificateParams::new(vec!["ingress-router.invalid".to_owned()])
        .map_err(|e| fail(&e))?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        "ingress-router default certificate",
    );
    let cert = params.self_signed(&key).map_err(|e| fail(&e))?;
    ingress_router::certified_key_from_pem(
        cert.pem().as_bytes(),
        key.serialize_pem().as_bytes(),
        provider,
    )
    .map_err(|e| fail(&e))
}

/// The CA that signs demo certificates, and the file its certificate is written to.
pub struct DemoCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    /// The file holding the CA certificate, for `curl --cacert`.
    pub path: PathBuf,
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
pub fn demo_secrets(
    demo_ca: &Mutex<Option<DemoCa>>,
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
    let mut ca = demo_ca.lock().unwrap();
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

/// The echo answer: `{"service","port","method","version","path","query","host","headers",
/// "body_bytes","endpoint"}`, with status 200, or NNN for a path ending in `/status/NNN` (as httpbin).
/// The body is counted as it streams, never kept.
async fn echo(identity: &EchoIdentity, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, mut body) = req.into_parts();
    let mut body_bytes: u64 = 0;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => body_bytes += frame.data_ref().map_or(0, |d| d.len() as u64),
            Err(_) => break,
        }
    }
    let status = parts
        .uri
        .path()
        .rsplit_once("/status/")
        .and_then(|(_, code)| code.parse::<u16>().ok())
        .and_then(|code| http::StatusCode::from_u16(code).ok())
        .unwrap_or(http::StatusCode::OK);
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
        "version": format!("{:?}", parts.version),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "host": parts.headers.get(header::HOST).and_then(|h| h.to_str().ok()),
        "headers": headers,
        "body_bytes": body_bytes,
        "endpoint": identity.endpoint,
    });
    let mut response = Response::new(Full::new(Bytes::from(answer.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
