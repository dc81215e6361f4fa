//! ingress-nginx annotations: arbitrary annotation values (from a pool of the annotations the
//! crate reads, snippets and unknown ones), ConfigMap data and requests, through table building,
//! the migration report and the tower layer. Nothing may panic; an Ingress without annotations
//! on a host that no annotated Ingress shares routes as it would without the extension; every
//! annotation under the prefix gets exactly one verdict.
#![no_main]

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use arbitrary::Arbitrary;
use http::{Request, Response};
use ingress_router::model::{
    HttpIngressPath, HttpIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, ServiceBackendPort,
};
use ingress_router::{
    ClientAddr, IngressLayer, NginxAnnotations, NginxConfig, RouteTable, SharedSnapshot, Snapshot,
    TableOptions,
};
use libfuzzer_sys::fuzz_target;
use tower_layer::Layer;
use tower_service::Service;

const ANNOTATIONS: &[&str] = &[
    "use-regex",
    "rewrite-target",
    "x-forwarded-prefix",
    "app-root",
    "permanent-redirect",
    "permanent-redirect-code",
    "temporal-redirect",
    "relative-redirects",
    "ssl-redirect",
    "force-ssl-redirect",
    "preserve-trailing-slash",
    "from-to-www-redirect",
    "server-alias",
    "canary",
    "canary-weight",
    "canary-weight-total",
    "canary-by-header",
    "canary-by-header-value",
    "canary-by-header-pattern",
    "canary-by-cookie",
    "allowlist-source-range",
    "denylist-source-range",
    "proxy-body-size",
    "proxy-read-timeout",
    "limit-rps",
    "limit-connections",
    "enable-cors",
    "cors-allow-origin",
    "cors-allow-methods",
    "cors-allow-headers",
    "cors-max-age",
    "upstream-vhost",
    "default-backend",
    "custom-http-errors",
    "backend-protocol",
    "affinity",
    "session-cookie-name",
    "configuration-snippet",
    "auth-url",
    "unknown-thing",
];
const VALUES: &[&str] = &[
    "true",
    "false",
    "/",
    "/new/$1",
    "$host",
    "${1}",
    "/$99$100",
    "10",
    "100",
    "1000",
    "8m",
    "0",
    "-1",
    "10.0.0.0/8, 127.0.0.1",
    "::/0",
    "10.0.0.0/99",
    "https://a.example, http://*.b.example:8080",
    "*",
    "GRPC",
    "cookie",
    "X-Canary",
    "^v[0-9]+$",
    "(((a*)*)*){1000}",
    "",
    "a.example, www.a.example",
];
const HOSTS: &[&str] = &["a.example", "www.a.example", "b.example", "*.example"];
const PATHS: &[&str] = &[
    "/", "/a", "/a/", "/a/(.*)", "/[0-9]+$", "/a|/b", "(", "/A", "/a/b",
];
const REQUEST_PATHS: &[&str] = &["/", "/a", "/a/b", "/A/1", "/12", "/b", "/a/?q=1", "//a"];
const CONFIG_KEYS: &[&str] = &[
    "use-forwarded-headers",
    "proxy-real-ip-cidr",
    "ssl-redirect",
    "http-redirect-code",
    "proxy-body-size",
    "annotations-risk-level",
];

fn pick<'a>(pool: &[&'a str], i: u8) -> &'a str {
    pool[usize::from(i) % pool.len()]
}

#[derive(Arbitrary, Debug)]
struct FuzzIngress {
    annotations: Vec<(u8, u8, Option<String>)>,
    rules: Vec<(u8, Vec<(u8, u8, u8)>)>,
}

#[derive(Arbitrary, Debug)]
struct FuzzRequest {
    method: u8,
    host: u8,
    path: u8,
    raw_path: Option<String>,
    headers: Vec<(u8, String)>,
    client: [u8; 4],
    tls: bool,
}

#[derive(Arbitrary, Debug)]
struct Input {
    config: Vec<(u8, u8)>,
    ingresses: Vec<FuzzIngress>,
    requests: Vec<FuzzRequest>,
}

fn backend(name: &str) -> IngressBackend {
    IngressBackend {
        service: Some(IngressServiceBackend {
            name: name.to_owned(),
            port: ServiceBackendPort {
                name: None,
                number: Some(80),
            },
        }),
        resource: None,
    }
}

fn build(input: &Input) -> Vec<Ingress> {
    let mut out = Vec::new();
    for (i, gen) in input.ingresses.iter().take(6).enumerate() {
        let mut ingress = Ingress::default();
        ingress.metadata.name = format!("i{i}");
        ingress.metadata.namespace = Some("default".into());
        for (name, value, raw) in gen.annotations.iter().take(8) {
            let value = match raw {
                Some(raw) if raw.len() < 512 => raw.clone(),
                _ => pick(VALUES, *value).to_owned(),
            };
            ingress.metadata.annotations.insert(
                format!("nginx.ingress.kubernetes.io/{}", pick(ANNOTATIONS, *name)),
                value,
            );
        }
        for (host, paths) in gen.rules.iter().take(3) {
            let paths = paths
                .iter()
                .take(4)
                .map(|(path, kind, name)| HttpIngressPath {
                    path: Some(pick(PATHS, *path).to_owned()),
                    path_type: Some(
                        pick(&["Prefix", "Exact", "ImplementationSpecific"], *kind).to_owned(),
                    ),
                    backend: backend(pick(&["web", "api", "canary"], *name)),
                })
                .collect();
            ingress.spec.rules.push(IngressRule {
                host: Some(pick(HOSTS, *host).to_owned()),
                http: Some(HttpIngressRuleValue { paths }),
            });
        }
        out.push(ingress);
    }
    out
}

/// Polls a future that the layer and the inner service below complete without waiting.
fn now<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the layer waited"),
    }
}

fuzz_target!(|input: Input| {
    let data: BTreeMap<String, String> = input
        .config
        .iter()
        .take(6)
        .map(|(k, v)| {
            (
                pick(CONFIG_KEYS, *k).to_owned(),
                pick(VALUES, *v).to_owned(),
            )
        })
        .collect();
    let (config, _) = NginxConfig::from_data(&data);
    let nginx = Arc::new(NginxAnnotations::new(config));
    let ingresses = build(&input);

    // Every annotation under the prefix gets exactly one verdict.
    let review = nginx.review(&ingresses);
    for (ingress, review) in ingresses.iter().zip(&review) {
        assert_eq!(review.annotations.len(), ingress.metadata.annotations.len());
    }

    let options = TableOptions {
        extension: Some(nginx.clone()),
        ..TableOptions::default()
    };
    let table = RouteTable::build(&ingresses, options.clone());
    let _ = table.diagnostics();
    // Ingresses without annotations, on hosts no annotated Ingress has rules for, route as
    // without the extension.
    let annotated_hosts: Vec<&str> = ingresses
        .iter()
        .filter(|i| !i.metadata.annotations.is_empty())
        .flat_map(|i| i.spec.rules.iter().filter_map(|r| r.host()))
        .collect();
    let plain_table = RouteTable::build(
        ingresses
            .iter()
            .filter(|i| i.metadata.annotations.is_empty()),
        TableOptions::default(),
    );
    let plain_hosts: Vec<&str> = ingresses
        .iter()
        .filter(|i| i.metadata.annotations.is_empty())
        .flat_map(|i| i.spec.rules.iter().filter_map(|r| r.host()))
        .collect();
    // Aliases answer for names that are no host of their own, which a plain Ingress that is
    // itself invalid does not make.
    let aliasing = ingresses.iter().any(|i| {
        i.metadata
            .annotations
            .keys()
            .any(|k| k.ends_with("/server-alias") || k.ends_with("/from-to-www-redirect"))
    });
    for host in HOSTS.iter().filter(|h| !h.starts_with('*')) {
        if aliasing
            || !plain_hosts.contains(host)
            || annotated_hosts
                .iter()
                .any(|a| a == host || a.starts_with('*'))
        {
            continue;
        }
        for path in REQUEST_PATHS {
            let path = path.split('?').next().unwrap();
            let ours = table.route(Some(host), path).map(|r| r.backend().clone());
            let plain = plain_table
                .route(Some(host), path)
                .map(|r| r.backend().clone());
            assert_eq!(ours, plain, "{host}{path}");
        }
    }

    let snapshot = SharedSnapshot::new(Snapshot::build(&ingresses, options));
    let mut service = IngressLayer::new(snapshot)
        .nginx(Arc::clone(nginx.config()))
        .layer(tower_service_fn());
    let header_names = [
        "origin",
        "cookie",
        "x-canary",
        "content-length",
        "x-forwarded-for",
        "x-forwarded-proto",
    ];
    for gen in input.requests.iter().take(8) {
        let path = match &gen.raw_path {
            Some(raw) if raw.len() < 256 => raw.as_str(),
            _ => pick(REQUEST_PATHS, gen.path),
        };
        let method = pick(&["GET", "OPTIONS", "POST"], gen.method);
        let mut request = Request::builder()
            .method(method)
            .uri("/")
            .header("host", pick(HOSTS, gen.host));
        if let Ok(uri) = path.parse::<http::Uri>() {
            request = request.uri(uri);
        }
        for (name, value) in gen.headers.iter().take(4) {
            if let Ok(value) = http::HeaderValue::from_str(value) {
                request =
                    request.header(header_names[usize::from(*name) % header_names.len()], value);
            }
        }
        let Ok(mut request) = request.body(()) else {
            continue;
        };
        let peer = std::net::SocketAddr::from((gen.client, 1234));
        request.extensions_mut().insert(ClientAddr(peer));
        if gen.tls {
            request
                .extensions_mut()
                .insert(ingress_router::TlsInfo::new(None));
        }
        let response = now(service.call(request)).unwrap();
        let _ = response.status();
    }
});

/// The inner service: answers 200 at once.
fn tower_service_fn() -> Inner {
    Inner
}

#[derive(Clone)]
struct Inner;

impl Service<Request<()>> for Inner {
    type Response = Response<String>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Response<String>, std::convert::Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<()>) -> Self::Future {
        std::future::ready(Ok(Response::new(String::new())))
    }
}
