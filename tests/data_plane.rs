//! The data plane of `examples/data_plane`, started in-process on `127.0.0.1:0` and spoken to
//! with a real HTTP client over real sockets, HTTP/1.1 and h2c.

#[allow(dead_code)]
#[path = "../examples/data_plane/proxy.rs"]
mod proxy;

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::fixtures::{
    case_ingresses, case_target, cases, expectation, suite, Expect, ROUTING_SUITES,
};
use http::header::HOST;
use http::{Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use ingress_router::model::Ingress;
use ingress_router::ServiceBackend;
use ingress_router::{canonical_path, CanonicalOptions};
use ingress_router::{Backend, LoadLimits, Manifests, RouteTable, ServicePort, TableOptions};
use proxy::{DataPlane, FileObjects, Listen, Options};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    Http1,
    H2c,
}

const PROTOS: [Proto; 2] = [Proto::Http1, Proto::H2c];

/// One open client connection.
enum Client {
    Http1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2c(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

/// A response: status, body, and the body as the echo backend's JSON when it is one.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    body: String,
    echo: Option<Value>,
}

impl Answer {
    fn echo(&self) -> &Value {
        self.echo
            .as_ref()
            .unwrap_or_else(|| panic!("not an echo answer: {} {}", self.status, self.body))
    }

    fn service(&self) -> &str {
        self.echo()["service"].as_str().expect("service")
    }
}

impl Client {
    async fn connect(addr: SocketAddr, proto: Proto) -> Client {
        let io = TokioIo::new(TcpStream::connect(addr).await.expect("connect"));
        Client::handshake(io, proto).await
    }

    /// Over TLS with `sni`, the certificate verified against `ca` for it, the protocol by ALPN.
    async fn connect_tls(
        addr: SocketAddr,
        proto: Proto,
        sni: &str,
        ca: &rustls::pki_types::CertificateDer<'static>,
    ) -> Client {
        let alpn: &[u8] = match proto {
            Proto::Http1 => b"http/1.1",
            Proto::H2c => b"h2",
        };
        let stream = common::tls::connect(addr, Some(sni), common::tls::Trust::Ca(ca), &[alpn])
            .await
            .unwrap_or_else(|e| panic!("TLS with SNI {sni}: {e}"));
        Client::handshake(TokioIo::new(stream), proto).await
    }

    async fn handshake<I>(io: TokioIo<I>, proto: Proto) -> Client
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        match proto {
            Proto::Http1 => {
                let (sender, conn) = hyper::client::conn::http1::handshake(io)
                    .await
                    .expect("HTTP/1.1 handshake");
                tokio::spawn(conn);
                Client::Http1(sender)
            }
            Proto::H2c => {
                let (sender, conn) =
                    hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                        .await
                        .expect("h2c handshake");
                tokio::spawn(conn);
                Client::H2c(sender)
            }
        }
    }

    /// Sends `method target` for `host`: as the Host header over HTTP/1.1, as `:authority`
    /// over h2c.
    async fn send(&mut self, method: &str, host: &str, target: &str, body: &str) -> Answer {
        let body = Full::new(Bytes::from(body.to_owned()));
        let response = match self {
            Client::Http1(sender) => {
                let request = Request::builder()
                    .method(method)
                    .uri(target)
                    .header(HOST, host)
                    .body(body)
                    .expect("request");
                sender.ready().await.expect("connection ready");
                sender.send_request(request).await
            }
            Client::H2c(sender) => {
                let request = Request::builder()
                    .method(method)
                    .version(Version::HTTP_2)
                    .uri(format!("http://{host}{target}"))
                    .body(body)
                    .expect("request");
                sender.ready().await.expect("connection ready");
                sender.send_request(request).await
            }
        };
        let response = response.unwrap_or_else(|e| panic!("{method} {host}{target}: {e}"));
        let status = response.status();
        let is_json = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|v| v == "application/json");
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("response body")
            .to_bytes();
        let body = String::from_utf8_lossy(&bytes).into_owned();
        let echo = is_json.then(|| serde_json::from_str(&body).expect("echo JSON"));
        Answer { status, body, echo }
    }
}

/// One request on a fresh connection.
async fn get(addr: SocketAddr, proto: Proto, host: &str, target: &str) -> Answer {
    Client::connect(addr, proto)
        .await
        .send("GET", host, target, "")
        .await
}

fn options(listen: &[&str]) -> Options {
    Options::new(
        listen
            .iter()
            .map(|l| l.parse::<Listen>().unwrap())
            .collect(),
        Vec::new(),
    )
}

fn manifests(yaml: &str) -> Manifests {
    let m = Manifests::parse(yaml);
    assert!(m.errors.is_empty(), "{:?}", m.errors);
    m
}

fn with_ingresses(ingresses: Vec<Ingress>) -> Manifests {
    Manifests {
        ingresses,
        ..Manifests::default()
    }
}

async fn start(options: Options, manifests: impl Into<FileObjects>) -> (DataPlane, SocketAddr) {
    let (plane, _) = DataPlane::start(options, Some(manifests))
        .await
        .expect("the data plane starts");
    let addr = plane.listeners()[0].0;
    (plane, addr)
}

fn port_json(port: &ServicePort) -> Value {
    match port {
        ServicePort::Number(n) => json!(n),
        ServicePort::Name(name) => json!(name),
    }
}

/// Every routing suite of the conformance fixtures, each case sent over HTTP/1.1 and h2c (or,
/// for `https` cases, over TLS with HTTP/1.1 and h2 by ALPN) to a data plane with echo
/// backends: the backend that answers is the one the case expects, and it receives the
/// canonical path, the query unchanged and the client's host. The certificate of an `https`
/// case must verify for its host: the data plane generates the Secret the case's Ingress names
/// (demo mode), signed by a CA the client trusts.
///
/// ssl-redirect is off: the suites expect a TLS host to be served over both schemes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suites_through_the_data_plane() {
    let mut checked = 0;
    let mut https = 0;
    for (name, pinned) in ROUTING_SUITES {
        let suite = suite(name);
        let cases = cases(&suite);
        assert_eq!(cases.len(), *pinned, "{name}: cases in file");
        for (i, case) in cases.into_iter().enumerate() {
            let context = format!("{name} case #{i} {:?}", case["name"].as_str().unwrap_or(""));
            let secure = case["scheme"] == "https";
            https += usize::from(secure);
            let ingresses = case_ingresses(&suite, case, &context);
            let table = RouteTable::build(&ingresses, TableOptions::default());
            let mut options = options(&["127.0.0.1:0"]);
            options.all_without_ssl_redirect = true;
            if secure {
                options.listen_tls = vec!["127.0.0.1:0".parse().unwrap()];
            }
            let (plane, loaded) = DataPlane::start(options, Some(with_ingresses(ingresses)))
                .await
                .expect("the data plane starts");
            let addr = match secure {
                true => plane.tls_listeners()[0].0,
                false => plane.listeners()[0].0,
            };
            let ca = loaded.demo_ca.as_ref().map(|file| {
                let pem = std::fs::read(file).unwrap();
                rustls::pki_types::pem::PemObject::from_pem_slice(&pem).unwrap()
            });
            // An empty host: the harness sends the controller's address, an IP literal that
            // reaches only the host-less rules.
            let host = match case["host"].as_str().expect("host") {
                "" => addr.to_string(),
                host => host.to_owned(),
            };
            let target = case_target(case);
            let method = case["method"].as_str().expect("method");
            let canonical =
                canonical_path(&target, &CanonicalOptions::default()).expect("a valid target");
            let request = Request::builder()
                .uri(target.as_str())
                .header(HOST, host.as_str())
                .body(())
                .unwrap();
            let routed = table.route_request(&request).expect("routable");
            let expected_backend = routed.route.map(|r| r.backend().clone());

            let expect = expectation(&case["expect"], &context);
            for proto in PROTOS {
                let context = format!("{context} over {proto:?}");
                let mut client = match (secure, &ca) {
                    (false, _) => Client::connect(addr, proto).await,
                    (true, Some(ca)) => Client::connect_tls(addr, proto, &host, ca).await,
                    (true, None) => panic!("{context}: no certificate was generated"),
                };
                let answer = client.send(method, &host, &target, "").await;
                let service = match &expect {
                    Expect::NotFound => {
                        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{context}");
                        continue;
                    }
                    Expect::Resource { .. } => {
                        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{context}");
                        assert!(
                            answer.body.contains("resource"),
                            "{context}: {}",
                            answer.body
                        );
                        continue;
                    }
                    Expect::Service { name, port } => ServiceBackend {
                        namespace: "default".into(),
                        name: name.clone(),
                        port: port.clone(),
                    },
                    Expect::Ingress { name, .. } => {
                        let winner = routed.route.and_then(|r| r.ingress()).expect("routed");
                        assert_eq!(&winner.name, name, "{context}: winning Ingress");
                        match &expected_backend {
                            Some(Backend::Service(s)) => s.clone(),
                            other => panic!("{context}: unexpected backend {other:?}"),
                        }
                    }
                };
                assert_eq!(
                    expected_backend,
                    Some(Backend::Service(service.clone())),
                    "{context}: table"
                );
                assert_eq!(answer.status, StatusCode::OK, "{context}: {}", answer.body);
                let echo = answer.echo();
                assert_eq!(
                    echo["service"],
                    format!("{}/{}", service.namespace, service.name),
                    "{context}"
                );
                assert_eq!(echo["port"], port_json(&service.port), "{context}");
                assert_eq!(echo["path"], canonical.path(), "{context}: path received");
                assert_eq!(
                    echo["query"].as_str(),
                    canonical.query(),
                    "{context}: query received"
                );
                assert_eq!(echo["host"], host.as_str(), "{context}: host received");
                assert_eq!(echo["method"], method, "{context}");
            }
            plane.shutdown().await;
            checked += 1;
        }
    }
    let pinned: usize = ROUTING_SUITES.iter().map(|(_, n)| n).sum();
    assert_eq!(checked, pinned);
    assert_eq!(https, 2, "the https cases of icc/host_rules and icc-legacy");
}

const CONFIG_A: &str = r#"
kind: Ingress
metadata: {name: app, creationTimestamp: "2024-01-01T00:00:00Z"}
spec:
  rules:
  - host: app.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: a-root, port: {number: 80}}}}
      - {path: /api, pathType: Prefix, backend: {service: {name: a-api, port: {number: 80}}}}
"#;

const CONFIG_B: &str = r#"
kind: Ingress
metadata: {name: app, creationTimestamp: "2024-01-01T00:00:00Z"}
spec:
  rules:
  - host: app.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: b-root, port: {number: 80}}}}
      - {path: /api, pathType: Prefix, backend: {service: {name: b-api, port: {number: 80}}}}
      - {path: /api/x, pathType: Exact, backend: {service: {name: b-x, port: {number: 80}}}}
---
kind: Ingress
metadata: {name: other, creationTimestamp: "2024-01-02T00:00:00Z"}
spec:
  rules:
  - host: other.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: b-other, port: {number: 80}}}}
"#;

/// 8 clients (half HTTP/1.1, half h2c, each on one keep-alive connection) send requests while
/// the table is swapped 200 times between two configurations: no request fails, and each is
/// answered by a backend that one of the two tables routes it to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_under_load_loses_no_request() {
    let a = manifests(CONFIG_A);
    let b = manifests(CONFIG_B);
    let table_a = RouteTable::build(&a.ingresses, TableOptions::default());
    let table_b = RouteTable::build(&b.ingresses, TableOptions::default());
    let probes = [
        ("app.test", "/"),
        ("app.test", "/api"),
        ("app.test", "/api/x"),
        ("app.test", "/api/x/../y?q=1"),
        ("app.test", "/elsewhere"),
        ("other.test", "/"),
    ];
    // What each probe may get: a backend of A or of B, or 404 where one of them routes nowhere.
    let allowed: Vec<BTreeSet<String>> = probes
        .iter()
        .map(|(host, target)| {
            let path = canonical_path(target, &CanonicalOptions::default()).unwrap();
            [&table_a, &table_b]
                .iter()
                .map(|t| match t.route(Some(host), path.path()) {
                    Some(r) => match r.backend() {
                        Backend::Service(s) => format!("{}/{}", s.namespace, s.name),
                        other => panic!("{other:?}"),
                    },
                    None => "404".to_owned(),
                })
                .collect()
        })
        .collect();

    let (plane, addr) = start(options(&["127.0.0.1:0"]), a.clone()).await;
    // Both configurations once, so every echo backend exists before the clients start.
    plane.apply(b.clone()).await.unwrap();
    plane.apply(a.clone()).await.unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let probes = Arc::new(probes);
    let allowed = Arc::new(allowed);
    let mut clients = Vec::new();
    for c in 0..8 {
        let (stop, served, probes, allowed) = (
            Arc::clone(&stop),
            Arc::clone(&served),
            Arc::clone(&probes),
            Arc::clone(&allowed),
        );
        clients.push(tokio::spawn(async move {
            let proto = if c % 2 == 0 { Proto::Http1 } else { Proto::H2c };
            let mut client = Client::connect(addr, proto).await;
            let mut i = c;
            while !stop.load(Ordering::Relaxed) {
                let (host, target) = probes[i % probes.len()];
                let answer = client.send("GET", host, target, "").await;
                let got = match answer.status {
                    StatusCode::OK => answer.service().to_owned(),
                    StatusCode::NOT_FOUND => "404".to_owned(),
                    status => panic!("{proto:?} {host}{target}: {status} {}", answer.body),
                };
                assert!(
                    allowed[i % probes.len()].contains(&got),
                    "{proto:?} {host}{target}: answered by {got}, allowed {:?}",
                    allowed[i % probes.len()]
                );
                served.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        }));
    }
    for swap in 0..200 {
        let next = if swap % 2 == 0 { &b } else { &a };
        let loaded = plane
            .apply(next.clone())
            .await
            .expect("a valid configuration");
        assert!(!loaded.rebuilt.is_empty(), "swap {swap} changed the table");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.expect("no client saw a failure");
    }
    let served = served.load(Ordering::Relaxed);
    assert!(
        served >= 200,
        "only {served} requests were served during the swaps"
    );
    plane.shutdown().await;
}

/// Three endpoints of one Service, each an echo server with its own EndpointSlice.
async fn three_endpoints() -> (Vec<SocketAddr>, Vec<tokio::task::JoinHandle<()>>, String) {
    let mut addrs = Vec::new();
    let mut tasks = Vec::new();
    let backend = ServiceBackend {
        namespace: "default".into(),
        name: "web".into(),
        port: ServicePort::Number(80),
    };
    let mut yaml = String::from(
        r#"
kind: Service
apiVersion: v1
metadata: {name: web}
spec: {ports: [{name: http, port: 80, targetPort: 8080}]}
---
kind: Service
apiVersion: v1
metadata: {name: idle}
spec: {ports: [{port: 80}]}
---
kind: EndpointSlice
apiVersion: discovery.k8s.io/v1
metadata: {name: idle-1, labels: {kubernetes.io/service-name: idle}}
addressType: IPv4
ports: [{port: 80}]
endpoints: [{addresses: [127.0.0.1], conditions: {ready: false}}]
---
kind: Ingress
metadata: {name: web}
spec:
  rules:
  - host: web.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
  - host: idle.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: idle, port: {number: 80}}}}
  - host: missing.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: missing, port: {number: 80}}}}
"#,
    );
    for i in 0..3 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        addrs.push(addr);
        tasks.push(tokio::spawn(proxy::serve_echo(listener, backend.clone())));
        yaml.push_str(&format!(
            "---\nkind: EndpointSlice\napiVersion: discovery.k8s.io/v1\n\
             metadata: {{name: web-{i}, labels: {{kubernetes.io/service-name: web}}}}\n\
             addressType: IPv4\nports: [{{name: http, port: {}}}]\n\
             endpoints: [{{addresses: [127.0.0.1]}}]\n",
            addr.port()
        ));
    }
    (addrs, tasks, yaml)
}

async fn answered_by(client: &mut Client, n: usize) -> BTreeMap<String, usize> {
    let mut by = BTreeMap::new();
    for _ in 0..n {
        let answer = client.send("GET", "web.test", "/", "").await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        *by.entry(answer.echo()["endpoint"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
    }
    by
}

/// Requests spread evenly over three ready endpoints; when one goes down its traffic moves to
/// the other two without a failed request; a Service without ready endpoints, or without a
/// Service object, gets 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_share_the_load_and_take_over_from_a_dead_one() {
    let (addrs, mut tasks, yaml) = three_endpoints().await;
    let (plane, addr) = start(options(&["127.0.0.1:0"]), manifests(&yaml)).await;

    for proto in PROTOS {
        let mut client = Client::connect(addr, proto).await;
        let by = answered_by(&mut client, 30).await;
        let expected: BTreeMap<String, usize> = addrs.iter().map(|a| (a.to_string(), 10)).collect();
        assert_eq!(by, expected, "{proto:?}: round-robin over three endpoints");
    }

    // The second endpoint goes away; its EndpointSlice still says ready.
    let dead = addrs[1].to_string();
    let second = tasks.remove(1);
    second.abort();
    let _ = second.await;
    for proto in PROTOS {
        let mut client = Client::connect(addr, proto).await;
        let by = answered_by(&mut client, 30).await;
        assert!(!by.contains_key(&dead), "{proto:?}: {by:?}");
        assert_eq!(by.values().sum::<usize>(), 30);
        assert_eq!(
            by.len(),
            2,
            "{proto:?}: both live endpoints take traffic: {by:?}"
        );
    }

    for proto in PROTOS {
        let idle = get(addr, proto, "idle.test", "/").await;
        assert_eq!(idle.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(idle.body.contains("no ready endpoint"), "{}", idle.body);
        let missing = get(addr, proto, "missing.test", "/").await;
        assert_eq!(missing.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(missing.body.contains("not found"), "{}", missing.body);
    }
    plane.shutdown().await;
    for task in tasks {
        task.abort();
    }
}

/// What the backend receives: the client's Host, `X-Forwarded-*` set by the proxy (whatever the
/// client sent), no hop-by-hop header, the body; what the routing layer answers itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_requests_and_direct_answers() {
    let (plane, addr) = start(options(&["127.0.0.1:0"]), manifests(CONFIG_A)).await;

    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let request = Request::post("/api/./v1/../items?page=2&q=%2F")
        .header(HOST, "App.Test:8080")
        .header("x-forwarded-for", "203.0.113.9")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "evil.test")
        .header("connection", "x-secret")
        .header("x-secret", "hop")
        .header("keep-alive", "timeout=5")
        .header("proxy-authorization", "Basic Zm9vOmJhcg==")
        .header("te", "trailers")
        .header("x-kept", "end-to-end")
        .body(Full::new(Bytes::from_static(b"hello body")))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let echo: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(echo["service"], "default/a-api");
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path"], "/api/items");
    assert_eq!(echo["query"], "page=2&q=%2F");
    assert_eq!(echo["host"], "App.Test:8080");
    assert_eq!(echo["body_bytes"], 10);
    let headers = &echo["headers"];
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(headers["x-forwarded-host"], "App.Test:8080");
    assert_eq!(headers["x-kept"], "end-to-end");
    for hop in ["x-secret", "keep-alive", "proxy-authorization", "te"] {
        assert!(headers.get(hop).is_none(), "{hop} forwarded: {headers}");
    }

    for proto in PROTOS {
        let bad = get(addr, proto, "app.test", "/api/a%2Fb").await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{proto:?}");
        assert_eq!(bad.body, "bad request: encoded slash in path\n");
        let none = get(addr, proto, "unknown.test", "/").await;
        assert_eq!(none.status, StatusCode::NOT_FOUND, "{proto:?}");
        let long = format!("/{}", "a/".repeat(300));
        let too_long = get(addr, proto, "app.test", &long).await;
        assert_eq!(too_long.status, StatusCode::URI_TOO_LONG, "{proto:?}");
    }
    plane.shutdown().await;
}

/// With one listener per controller, each serves only its controller's Ingresses: the bundled
/// demo configuration, as `--listen A=example.com/ingress-router --listen B=example.com/internal`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_listener_per_controller_on_the_bundled_demo() {
    let demo = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/manifests/demo.yaml"
    ));
    let manifests = proxy::read_files(std::slice::from_ref(&demo), &LoadLimits::default())
        .expect("the demo loads");
    let mut opts = options(&[
        "127.0.0.1:0=example.com/ingress-router",
        "127.0.0.1:0=example.com/internal",
    ]);
    opts.files = vec![demo];
    let (plane, loaded) = DataPlane::start(opts, Some(manifests)).await.unwrap();
    assert!(loaded.demo_backends);
    assert!(loaded.rejected.is_empty() && loaded.diagnostics.is_empty());
    let public = plane.listeners()[0].0;
    let internal = plane.listeners()[1].0;

    for proto in PROTOS {
        let shop = get(public, proto, "shop.example.com", "/api/v1/items").await;
        assert_eq!(shop.service(), "shop/api");
        let storefront = get(public, proto, "shop.example.com", "/cart").await;
        assert_eq!(storefront.service(), "shop/storefront");
        assert_eq!(storefront.echo()["port"], "http");
        let blog = get(public, proto, "alice.blog.example.com", "/post").await;
        assert_eq!(blog.service(), "blog/blog");
        let status = get(public, proto, &public.to_string(), "/healthz").await;
        assert_eq!(status.service(), "ops/status");
        let wiki = get(public, proto, "wiki.intranet.example.com", "/").await;
        assert_eq!(
            wiki.service(),
            "default/welcome",
            "not the other controller's"
        );

        let wiki = get(internal, proto, "wiki.intranet.example.com", "/").await;
        assert_eq!(wiki.service(), "intranet/wiki");
        let shop = get(internal, proto, "shop.example.com", "/api").await;
        assert_eq!(shop.status, StatusCode::NOT_FOUND);
    }
    let reloaded = plane.reload_files().await.expect("the demo reloads");
    assert!(reloaded.rebuilt.is_empty(), "nothing changed");
    plane.shutdown().await;
}

fn temp_file(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "ingress-router-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

type Report = Result<proxy::Loaded, String>;

async fn next_report(reports: &mut tokio::sync::mpsc::UnboundedReceiver<Report>) -> Report {
    tokio::time::timeout(Duration::from_secs(10), reports.recv())
        .await
        .expect("a reload within 10 s")
        .expect("the watcher runs")
}

/// Editing a manifest file swaps the table; a broken edit, or an edit that makes an Ingress
/// invalid, is reported and the previous configuration keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_edits_reload_and_bad_edits_keep_the_running_table() {
    let file = temp_file("ingresses.yaml");
    std::fs::write(&file, CONFIG_A).unwrap();
    let mut opts = options(&["127.0.0.1:0"]);
    opts.files = vec![file.clone()];
    let manifests = proxy::read_files(&opts.files, &opts.load_limits).unwrap();
    let (mut plane, addr) = start(opts, manifests).await;
    let (tx, mut reports) = tokio::sync::mpsc::unbounded_channel();
    plane.watch_files(Duration::from_millis(20), move |outcome| {
        let _ = tx.send(outcome.map_err(|e| e.to_string()));
    });
    assert_eq!(
        get(addr, Proto::Http1, "app.test", "/").await.service(),
        "default/a-root"
    );

    std::fs::write(&file, CONFIG_B).unwrap();
    let report = next_report(&mut reports).await;
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(
        get(addr, Proto::H2c, "app.test", "/").await.service(),
        "default/b-root"
    );

    std::fs::write(&file, "kind: Ingress\nmetadata: {name: [\n").unwrap();
    let report = next_report(&mut reports).await;
    assert!(report.is_err(), "{report:?}");
    assert_eq!(
        get(addr, Proto::Http1, "app.test", "/").await.service(),
        "default/b-root"
    );

    let invalid = CONFIG_B.replace("name: b-root", "name: B_Root");
    std::fs::write(&file, invalid).unwrap();
    let report = next_report(&mut reports).await.expect("the file reads");
    assert_eq!(report.rejected.len(), 1, "{:?}", report.rejected);
    assert!(
        report.rejected[0].contains("default/app"),
        "{:?}",
        report.rejected
    );
    assert_eq!(
        get(addr, Proto::Http1, "app.test", "/").await.service(),
        "default/b-root"
    );
    plane.shutdown().await;
    let _ = std::fs::remove_dir_all(file.parent().unwrap());
}

/// An echo server for `name`, its address.
async fn echo(name: &str) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let backend = ServiceBackend {
        namespace: "default".into(),
        name: name.into(),
        port: ServicePort::Number(80),
    };
    (addr, tokio::spawn(proxy::serve_echo(listener, backend)))
}

/// A Service `name` (with `cluster_ip`, if any, on `port`) and one EndpointSlice whose
/// endpoints are 127.0.0.1 on `endpoint_ports` (each a slice of its own).
fn service_yaml(name: &str, cluster_ip: Option<&str>, port: u16, endpoint_ports: &[u16]) -> String {
    let ip = cluster_ip.map_or(String::new(), |ip| format!("clusterIP: {ip}, "));
    let mut yaml = format!(
        "---\nkind: Service\napiVersion: v1\nmetadata: {{name: {name}}}\n\
         spec: {{{ip}ports: [{{name: http, port: {port}}}]}}\n"
    );
    for (i, p) in endpoint_ports.iter().enumerate() {
        yaml += &format!(
            "---\nkind: EndpointSlice\napiVersion: discovery.k8s.io/v1\n\
             metadata: {{name: {name}-{i}, labels: {{kubernetes.io/service-name: {name}}}}}\n\
             addressType: IPv4\nports: [{{name: http, port: {p}}}]\n\
             endpoints: [{{addresses: [127.0.0.1]}}]\n"
        );
    }
    yaml
}

/// An Ingress for `host` to Service `service` on `port`, with ingress-nginx annotations.
fn annotated(host: &str, service: &str, port: u16, annotations: &[(&str, &str)]) -> String {
    let mut yaml = format!("---\nkind: Ingress\nmetadata:\n  name: {host}\n  annotations:\n");
    for (k, v) in annotations {
        yaml += &format!("    nginx.ingress.kubernetes.io/{k}: {v:?}\n");
    }
    if annotations.is_empty() {
        yaml += "    {}\n";
        yaml = yaml.replace("  annotations:\n    {}\n", "  annotations: {}\n");
    }
    yaml + &format!(
        "spec:\n  rules:\n  - host: {host}\n    http:\n      paths:\n      - {{path: /, pathType: Prefix, backend: {{service: {{name: {service}, port: {{number: {port}}}}}}}}}\n"
    )
}

/// The backend-level ingress-nginx policies, as the data plane applies them: ClusterIP mode,
/// gRPC over h2c, an unsupported protocol, cookie affinity, the read timeout and a streamed
/// body over the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingress_nginx_backend_policies() {
    let (cluster, cluster_task) = echo("web").await;
    let (a, a_task) = echo("sticky").await;
    let (b, b_task) = echo("sticky").await;
    let (c, c_task) = echo("sticky").await;
    // A backend that accepts connections and never answers.
    let hung = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hung_port = hung.local_addr().unwrap().port();
    let hung_task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = hung.accept().await {
            held.push(stream);
        }
    });
    // `web`'s only endpoint is dead; its ClusterIP (on the Service port) is the echo server.
    let mut yaml = service_yaml("web", Some("127.0.0.1"), cluster.port(), &[1]);
    yaml += &service_yaml("sticky", None, 80, &[a.port(), b.port(), c.port()]);
    yaml += &service_yaml("hung", None, 80, &[hung_port]);
    yaml += &annotated(
        "cluster.test",
        "web",
        cluster.port(),
        &[("service-upstream", "true")],
    );
    yaml += &annotated("endpoints.test", "web", cluster.port(), &[]);
    yaml += &annotated("grpc.test", "sticky", 80, &[("backend-protocol", "GRPC")]);
    yaml += &annotated("tls.test", "sticky", 80, &[("backend-protocol", "HTTPS")]);
    yaml += &annotated(
        "sticky.test",
        "sticky",
        80,
        &[("affinity", "cookie"), ("session-cookie-name", "route")],
    );
    yaml += &annotated(
        "hung.test",
        "hung",
        80,
        &[
            ("proxy-connect-timeout", "1"),
            ("proxy-send-timeout", "1"),
            ("proxy-read-timeout", "1"),
        ],
    );
    yaml += &annotated("small.test", "sticky", 80, &[("proxy-body-size", "1k")]);
    let (plane, addr) = start(options(&["127.0.0.1:0"]), manifests(&yaml)).await;

    let answer = get(addr, Proto::Http1, "cluster.test", "/").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.echo()["endpoint"], cluster.to_string());
    let answer = get(addr, Proto::Http1, "endpoints.test", "/").await;
    assert_eq!(
        answer.status,
        StatusCode::BAD_GATEWAY,
        "the dead endpoint: {}",
        answer.body
    );

    let answer = get(addr, Proto::Http1, "grpc.test", "/").await;
    assert_eq!(answer.echo()["version"], "HTTP/2.0");
    let answer = get(addr, Proto::Http1, "tls.test", "/").await;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
    assert!(
        answer.body.contains("HTTPS is not supported"),
        "{}",
        answer.body
    );

    // Affinity: the first answer sets the cookie; with it, every request goes to one endpoint.
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let request = Request::get("/").header(HOST, "sticky.test");
    let response = sender
        .send_request(request.body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap();
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.starts_with("route=") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let first: Value = serde_json::from_slice(&body).unwrap();
    let pair = cookie.split(';').next().unwrap().to_owned();
    for _ in 0..6 {
        sender.ready().await.unwrap();
        let request = Request::get("/")
            .header(HOST, "sticky.test")
            .header("cookie", pair.as_str());
        let response = sender
            .send_request(request.body(Full::new(Bytes::new())).unwrap())
            .await
            .unwrap();
        assert!(response.headers().get("set-cookie").is_none());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let echo: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(echo["endpoint"], first["endpoint"]);
    }

    let started = std::time::Instant::now();
    let answer = get(addr, Proto::Http1, "hung.test", "/").await;
    assert_eq!(
        answer.status,
        StatusCode::GATEWAY_TIMEOUT,
        "{}",
        answer.body
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // A body without a length, cut at the route's limit.
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let chunks = futures_chunks(4, 512);
    let request = Request::post("/")
        .header(HOST, "small.test")
        .body(chunks)
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);

    plane.shutdown().await;
    for task in [cluster_task, a_task, b_task, c_task, hung_task] {
        task.abort();
    }
}

/// A streamed body of `n` chunks of `size` bytes, sent without a length.
fn futures_chunks(n: usize, size: usize) -> Chunks {
    Chunks { left: n, size }
}

/// `left` frames of `size` bytes, with no length known in advance.
struct Chunks {
    left: usize,
    size: usize,
}

impl hyper::body::Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        if self.left == 0 {
            return std::task::Poll::Ready(None);
        }
        self.left -= 1;
        let frame = hyper::body::Frame::data(Bytes::from(vec![b'x'; self.size]));
        std::task::Poll::Ready(Some(Ok(frame)))
    }
}

/// The names of this process's threads that serve connections (`Options::threads` above 1).
fn serving_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .filter(|name| name.starts_with("serve-"))
                .count()
        })
        .unwrap_or(0)
}

/// With three serving threads, which the listener hands connections to in turn: many
/// connections at once, over both protocols, are all answered by the right backend with
/// pooled backend connections; shutdown stops the threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serving_threads_share_a_port_and_stop_on_shutdown() {
    let (addrs, tasks, yaml) = three_endpoints().await;
    let mut opts = options(&["127.0.0.1:0"]);
    opts.threads = 3;
    let (plane, addr) = start(opts, manifests(&yaml)).await;
    if cfg!(target_os = "linux") {
        // A thread names itself once it runs.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while serving_threads() < 3 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(serving_threads(), 3);
    }
    let mut clients = tokio::task::JoinSet::new();
    for i in 0..48 {
        let proto = PROTOS[i % PROTOS.len()];
        clients.spawn(async move {
            let mut client = Client::connect(addr, proto).await;
            answered_by(&mut client, 6).await
        });
    }
    let mut by = BTreeMap::new();
    while let Some(answers) = clients.join_next().await {
        for (endpoint, n) in answers.expect("every client is answered") {
            *by.entry(endpoint).or_insert(0) += n;
        }
    }
    assert_eq!(by.values().sum::<usize>(), 48 * 6);
    let mut endpoints: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
    endpoints.sort();
    assert_eq!(
        by.keys().cloned().collect::<Vec<_>>(),
        endpoints,
        "every endpoint takes traffic"
    );
    plane.shutdown().await;
    if cfg!(target_os = "linux") {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while serving_threads() > 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(serving_threads(), 0, "the serving threads stop");
    }
    for task in tasks {
        task.abort();
    }
}
