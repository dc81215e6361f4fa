//! TLS termination in the data plane of `examples/data_plane`: certificate selection by SNI,
//! rotation by reload, ssl-redirect and the SNI/Host check, with a rustls client over real
//! sockets and certificates generated for each test.

#[allow(dead_code)]
#[path = "../examples/data_plane/proxy.rs"]
mod proxy;

mod common;

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use common::tls::{connect, secret_yaml, served_certificate, TestCa, Trust};
use http::header::{HOST, LOCATION};
use http::{Request, StatusCode, Version};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame};
use hyper_util::rt::{TokioExecutor, TokioIo};
use ingress_router::{LoadLimits, Manifests, SecretRef};
use proxy::{DataPlane, Listen, Loaded, Options};
use serde_json::Value;
use tokio::sync::mpsc;

fn manifests(yaml: &str) -> Manifests {
    let m = Manifests::parse(yaml);
    assert!(m.errors.is_empty(), "{:?}", m.errors);
    m
}

fn listen(addr: &str) -> Listen {
    addr.parse().unwrap()
}

/// Plain and TLS listeners on ephemeral ports, serving every Ingress.
fn options() -> Options {
    Options {
        listen_tls: vec![listen("127.0.0.1:0")],
        ..Options::new(vec![listen("127.0.0.1:0")], Vec::new())
    }
}

async fn start(options: Options, manifests: impl Into<proxy::FileObjects>) -> (DataPlane, Loaded) {
    DataPlane::start(options, Some(manifests))
        .await
        .expect("the data plane starts")
}

/// A request body fed through a channel, to keep a request in flight.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(Frame::data(c))))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    Http1,
    H2,
}

/// An HTTP client on one TLS connection.
enum Client<B> {
    Http1(hyper::client::conn::http1::SendRequest<B>),
    H2(hyper::client::conn::http2::SendRequest<B>),
}

#[derive(Debug)]
struct Answer {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

impl Answer {
    fn echo(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|_| panic!("not an echo answer: {} {}", self.status, self.body))
    }
}

impl<B> Client<B>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    async fn connect(addr: SocketAddr, sni: Option<&str>, trust: Trust<'_>, proto: Proto) -> Self {
        let alpn: &[&[u8]] = match proto {
            Proto::Http1 => &[b"http/1.1"],
            Proto::H2 => &[b"h2"],
        };
        let stream = connect(addr, sni, trust, alpn)
            .await
            .unwrap_or_else(|e| panic!("TLS handshake with SNI {sni:?}: {e}"));
        let negotiated = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        assert_eq!(negotiated.as_deref(), Some(alpn[0]), "ALPN");
        let io = TokioIo::new(stream);
        match proto {
            Proto::Http1 => {
                let (sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
                tokio::spawn(conn);
                Client::Http1(sender)
            }
            Proto::H2 => {
                let (sender, conn) =
                    hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                        .await
                        .unwrap();
                tokio::spawn(conn);
                Client::H2(sender)
            }
        }
    }

    async fn send(&mut self, host: &str, target: &str, body: B) -> Answer {
        let response = match self {
            Client::Http1(sender) => {
                let request = Request::post(target).header(HOST, host).body(body).unwrap();
                sender.ready().await.unwrap();
                sender.send_request(request).await
            }
            Client::H2(sender) => {
                let request = Request::post(format!("https://{host}{target}"))
                    .version(Version::HTTP_2)
                    .body(body)
                    .unwrap();
                sender.ready().await.unwrap();
                sender.send_request(request).await
            }
        };
        answer(response.unwrap_or_else(|e| panic!("{host}{target}: {e}"))).await
    }
}

/// Reads a response to the end.
async fn answer(response: http::Response<hyper::body::Incoming>) -> Answer {
    let status = response.status();
    let location = response
        .headers()
        .get(LOCATION)
        .map(|l| l.to_str().unwrap().to_owned());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        location,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

type FullClient = Client<http_body_util::Full<Bytes>>;

fn empty() -> http_body_util::Full<Bytes> {
    http_body_util::Full::new(Bytes::new())
}

/// One plain-HTTP/1.1 request on a fresh connection.
async fn plain_get(addr: SocketAddr, host: &str, target: &str) -> Answer {
    let io = TokioIo::new(tokio::net::TcpStream::connect(addr).await.unwrap());
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
    tokio::spawn(conn);
    let request = Request::get(target)
        .header(HOST, host)
        .body(empty())
        .unwrap();
    answer(sender.send_request(request).await.unwrap()).await
}

const SITES: &str = r#"
kind: Ingress
metadata: {name: sites, namespace: web, creationTimestamp: "2024-01-01T00:00:00Z"}
spec:
  tls:
  - {hosts: [shop.example.com], secretName: shop-tls}
  - {hosts: ["*.example.com"], secretName: wildcard-tls}
  - {hosts: [missing.example.com], secretName: missing-tls}
  rules:
  - host: shop.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: shop, port: {number: 80}}}}
  - host: "*.example.com"
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: sites, port: {number: 80}}}}
  - host: plain.example.org
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: plain, port: {number: 80}}}}
"#;

/// Certificates for [`SITES`]: shop, wildcard and a default certificate, all from one CA.
struct SiteCerts {
    ca: TestCa,
    shop: common::tls::Issued,
    wildcard: common::tls::Issued,
    default: common::tls::Issued,
}

impl SiteCerts {
    fn new() -> SiteCerts {
        let ca = TestCa::new("test CA");
        SiteCerts {
            shop: ca.issue(&["shop.example.com"]),
            wildcard: ca.issue(&["*.example.com"]),
            default: ca.issue(&["default.invalid"]),
            ca,
        }
    }

    /// [`SITES`] with its Secrets (not `missing-tls`), and an EndpointSlice so that the data
    /// plane generates no demo certificate.
    fn manifests(&self, shop: &common::tls::Issued) -> Manifests {
        let yaml = format!(
            "{SITES}---\n{}---\n{}---\n{}",
            secret_yaml("web", "shop-tls", shop),
            secret_yaml("web", "wildcard-tls", &self.wildcard),
            secret_yaml("ingress", "default-tls", &self.default),
        );
        manifests(&yaml)
    }
}

fn with_default_certificate(mut options: Options) -> Options {
    options.default_certificate = Some(SecretRef::new("ingress", "default-tls"));
    options
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sni_selects_the_certificate_and_unknown_names_get_the_default() {
    let certs = SiteCerts::new();
    let mut manifests = certs.manifests(&certs.shop);
    // Real mode: an EndpointSlice turns demo backends and demo certificates off.
    manifests.extend(self::manifests(
        "kind: EndpointSlice\napiVersion: discovery.k8s.io/v1\nmetadata: {name: x, namespace: web}\n\
         addressType: IPv4\nendpoints: []\n",
    ));
    let (plane, loaded) = start(with_default_certificate(options()), manifests).await;
    assert!(!loaded.demo_backends);
    assert!(loaded.generated_secrets.is_empty());
    assert_eq!(
        loaded.certificate_problems,
        [
            "[every Ingress] certificate: secret web/missing-tls (for missing.example.com): \
          no such Secret; serving the default certificate"
        ]
    );
    let tls = plane.tls_listeners()[0].0;
    for (sni, expected, what) in [
        (Some("shop.example.com"), &certs.shop, "exact"),
        (Some("blog.example.com"), &certs.wildcard, "wildcard"),
        (
            Some("a.b.example.com"),
            &certs.default,
            "two labels under the wildcard",
        ),
        (Some("unknown.org"), &certs.default, "unknown name"),
        (
            Some("missing.example.com"),
            &certs.default,
            "missing Secret",
        ),
        (None, &certs.default, "no SNI"),
    ] {
        assert_eq!(served_certificate(tls, sni).await, expected.der, "{what}");
    }
    // The served chains verify against the CA, as a browser checks them.
    for sni in ["shop.example.com", "blog.example.com"] {
        connect(tls, Some(sni), Trust::Ca(&certs.ca.der), &[b"h2"])
            .await
            .unwrap_or_else(|e| panic!("{sni}: {e}"));
    }
    plane.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_tls_reach_their_backend_over_http1_and_h2() {
    let certs = SiteCerts::new();
    let (plane, _) = start(
        with_default_certificate(options()),
        certs.manifests(&certs.shop),
    )
    .await;
    let tls = plane.tls_listeners()[0].0;
    for proto in [Proto::Http1, Proto::H2] {
        let mut client: FullClient = Client::connect(
            tls,
            Some("shop.example.com"),
            Trust::Ca(&certs.ca.der),
            proto,
        )
        .await;
        let answer = client
            .send("shop.example.com", "/a/../cart?x=1", empty())
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{proto:?}: {}", answer.body);
        let echo = answer.echo();
        assert_eq!(echo["service"], "web/shop", "{proto:?}");
        assert_eq!(echo["path"], "/cart", "{proto:?}");
        assert_eq!(echo["query"], "x=1", "{proto:?}");
        assert_eq!(echo["host"], "shop.example.com", "{proto:?}");
        assert_eq!(echo["headers"]["x-forwarded-proto"], "https", "{proto:?}");
        // The SNI/Host check: the wildcard certificate is not the shop's.
        let answer = client.send("blog.example.com", "/", empty()).await;
        assert_eq!(answer.status, StatusCode::MISDIRECTED_REQUEST, "{proto:?}");
        let answer = client.send("plain.example.org", "/", empty()).await;
        assert_eq!(answer.status, StatusCode::MISDIRECTED_REQUEST, "{proto:?}");
        // The connection is still good for its own host.
        let answer = client.send("shop.example.com", "/", empty()).await;
        assert_eq!(answer.status, StatusCode::OK, "{proto:?}");

        // One wildcard certificate for two names: an HTTP/2 client may reuse the connection.
        let mut client: FullClient =
            Client::connect(tls, Some("a.example.com"), Trust::Ca(&certs.ca.der), proto).await;
        for host in ["a.example.com", "b.example.com"] {
            let answer = client.send(host, "/", empty()).await;
            assert_eq!(answer.status, StatusCode::OK, "{proto:?} {host}");
            assert_eq!(answer.echo()["service"], "web/sites");
        }
        // No SNI: the default certificate, good only for hosts that get it too.
        let mut client: FullClient = Client::connect(tls, None, Trust::Anything, proto).await;
        let answer = client.send("plain.example.org", "/", empty()).await;
        assert_eq!(answer.status, StatusCode::OK, "{proto:?}");
        assert_eq!(answer.echo()["service"], "web/plain");
        let answer = client.send("shop.example.com", "/", empty()).await;
        assert_eq!(answer.status, StatusCode::MISDIRECTED_REQUEST, "{proto:?}");
    }
    plane.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_rotates_the_certificate_without_dropping_an_in_flight_request() {
    let certs = SiteCerts::new();
    let rotated = certs.ca.issue(&["shop.example.com"]);
    let (plane, _) = start(
        with_default_certificate(options()),
        certs.manifests(&certs.shop),
    )
    .await;
    let tls = plane.tls_listeners()[0].0;
    assert_eq!(
        served_certificate(tls, Some("shop.example.com")).await,
        certs.shop.der
    );

    for proto in [Proto::Http1, Proto::H2] {
        let current = served_certificate(tls, Some("shop.example.com")).await;
        let next = if current == certs.shop.der {
            &rotated
        } else {
            &certs.shop
        };
        let mut client: Client<ChannelBody> = Client::connect(
            tls,
            Some("shop.example.com"),
            Trust::Ca(&certs.ca.der),
            proto,
        )
        .await;
        let (tx, rx) = mpsc::channel(4);
        tx.send(Bytes::from_static(b"first half, ")).await.unwrap();
        let in_flight = tokio::spawn(async move {
            let answer = client
                .send("shop.example.com", "/upload", ChannelBody(rx))
                .await;
            (client, answer)
        });
        // The request is on its way, its body unfinished, when the certificate changes.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let loaded = plane
            .apply(certs.manifests(next))
            .await
            .expect("the reload applies");
        assert!(loaded
            .certificate_problems
            .iter()
            .all(|p| p.contains("missing-tls")));
        assert_eq!(
            served_certificate(tls, Some("shop.example.com")).await,
            next.der
        );
        tx.send(Bytes::from_static(b"second half")).await.unwrap();
        drop(tx);
        let (mut client, answer) = in_flight.await.unwrap();
        assert_eq!(answer.status, StatusCode::OK, "{proto:?}: {}", answer.body);
        assert_eq!(answer.echo()["body_bytes"], 23, "{proto:?}");
        // The open connection keeps working after the rotation.
        let (tx, rx) = mpsc::channel(1);
        drop(tx);
        let answer = client.send("shop.example.com", "/", ChannelBody(rx)).await;
        assert_eq!(answer.status, StatusCode::OK, "{proto:?}");
    }
    plane.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssl_redirect_is_on_by_default_and_switchable_per_controller() {
    let yaml = r#"
kind: IngressClass
metadata: {name: a}
spec: {controller: example.com/a}
---
kind: IngressClass
metadata: {name: b}
spec: {controller: example.com/b}
---
kind: Ingress
metadata: {name: a, namespace: web}
spec:
  ingressClassName: a
  tls: [{hosts: [a.example.com], secretName: a-tls}]
  rules:
  - host: a.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: a, port: {number: 80}}}}
  - host: plain-a.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: a, port: {number: 80}}}}
---
kind: Ingress
metadata: {name: b, namespace: web}
spec:
  ingressClassName: b
  tls: [{hosts: [b.example.com], secretName: b-tls}]
  rules:
  - host: b.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: b, port: {number: 80}}}}
"#;
    let options = Options {
        listen_tls: vec![
            listen("127.0.0.1:0=example.com/a"),
            listen("127.0.0.1:0=example.com/b"),
        ],
        no_ssl_redirect: vec![Some("example.com/b".to_owned())],
        ..Options::new(
            vec![
                listen("127.0.0.1:0=example.com/a"),
                listen("127.0.0.1:0=example.com/b"),
            ],
            Vec::new(),
        )
    };
    let (plane, loaded) = start(options, manifests(yaml)).await;
    // Demo mode generated both Secrets.
    assert_eq!(loaded.generated_secrets.len(), 2);
    let ca = std::fs::read_to_string(loaded.demo_ca.as_ref().expect("a demo CA")).unwrap();
    let ca = rustls::pki_types::pem::PemObject::from_pem_slice(ca.as_bytes()).unwrap();
    let [(plain_a, _), (plain_b, _)] = plane.listeners() else {
        panic!("two plain listeners")
    };
    let [(tls_a, _), (tls_b, _)] = plane.tls_listeners() else {
        panic!("two TLS listeners")
    };

    // Controller a: a TLS host is redirected to the https listener of the same controller,
    // canonical path and query kept.
    let answer = plain_get(*plain_a, "A.example.com", "/x/./y/../z?q=1&r").await;
    assert_eq!(answer.status, StatusCode::PERMANENT_REDIRECT);
    let location = format!("https://a.example.com:{}/x/z?q=1&r", tls_a.port());
    assert_eq!(answer.location.as_deref(), Some(location.as_str()));
    // A host without TLS is served over plain HTTP.
    let answer = plain_get(*plain_a, "plain-a.example.com", "/").await;
    assert_eq!(answer.status, StatusCode::OK);
    // Following the redirect works, and the certificate verifies against the demo CA.
    let mut client: FullClient =
        Client::connect(*tls_a, Some("a.example.com"), Trust::Ca(&ca), Proto::Http1).await;
    let answer = client.send("a.example.com", "/x/z?q=1&r", empty()).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.echo()["service"], "web/a");

    // Controller b switched it off.
    let answer = plain_get(*plain_b, "b.example.com", "/").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.echo()["service"], "web/b");
    assert_eq!(answer.echo()["headers"]["x-forwarded-proto"], "http");
    let mut client: FullClient =
        Client::connect(*tls_b, Some("b.example.com"), Trust::Ca(&ca), Proto::H2).await;
    assert_eq!(client.send("b.example.com", "/", empty()).await.status, 200);
    // Each controller serves only its own hosts' certificates.
    assert_ne!(
        served_certificate(*tls_b, Some("a.example.com")).await,
        served_certificate(*tls_a, Some("a.example.com")).await
    );
    plane.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bundled_demo_serves_its_tls_host_with_a_generated_certificate() {
    let file = std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/manifests/demo.yaml"
    ));
    let manifests = proxy::read_files(std::slice::from_ref(&file), &LoadLimits::default()).unwrap();
    let options = Options {
        files: vec![file],
        ..options()
    };
    let (plane, loaded) = start(options, manifests).await;
    assert_eq!(
        loaded.generated_secrets,
        [SecretRef::new("bank", "secure-tls")]
    );
    assert!(
        loaded.certificate_problems.is_empty(),
        "{:?}",
        loaded.certificate_problems
    );
    let ca_file = loaded.demo_ca.expect("a demo CA file");
    let ca = std::fs::read_to_string(&ca_file).unwrap();
    let ca = rustls::pki_types::pem::PemObject::from_pem_slice(ca.as_bytes()).unwrap();
    let tls = plane.tls_listeners()[0].0;
    let served = served_certificate(tls, Some("secure.example.com")).await;
    for proto in [Proto::Http1, Proto::H2] {
        let mut client: FullClient =
            Client::connect(tls, Some("secure.example.com"), Trust::Ca(&ca), proto).await;
        let answer = client.send("secure.example.com", "/", empty()).await;
        assert_eq!(answer.status, StatusCode::OK, "{proto:?}");
        assert_eq!(answer.echo()["service"], "bank/vault");
    }
    let plain = plane.listeners()[0].0;
    let answer = plain_get(plain, "secure.example.com", "/").await;
    assert_eq!(answer.status, StatusCode::PERMANENT_REDIRECT);
    // A reload keeps the generated certificate and the CA file.
    let reloaded = plane.reload_files().await.unwrap();
    assert_eq!(reloaded.demo_ca.as_ref(), Some(&ca_file));
    assert_eq!(
        served_certificate(tls, Some("secure.example.com")).await,
        served
    );
    plane.shutdown().await;
    assert!(!ca_file.exists(), "shutdown removes the demo CA file");
}
