//! ingress-nginx annotations, one behaviour at a time, through the tower layer: what the inner
//! service receives (path, headers, the backend chosen) or what the layer answers itself.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use ingress_router::{
    BackendProtocol, ClientAddr, IngressLayer, Manifests, MatchedRoute, NginxAnnotations,
    NginxConfig, NginxPolicy, RouteTable, SharedSnapshot, Snapshot, TableOptions, TlsInfo, Verdict,
};
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};

/// What the inner service saw.
#[derive(Debug)]
struct Seen {
    status: StatusCode,
    headers: http::HeaderMap,
    /// `backend target`, or the layer's own body.
    body: String,
}

impl Seen {
    fn backend(&self) -> &str {
        self.body.split('\n').next().unwrap()
    }

    fn target(&self) -> &str {
        self.body.split('\n').nth(1).unwrap_or("")
    }

    fn location(&self) -> &str {
        self.headers
            .get("location")
            .map_or("", |v| v.to_str().unwrap())
    }
}

struct Setup {
    snapshot: SharedSnapshot,
    config: Arc<NginxConfig>,
    nginx: Arc<NginxAnnotations>,
}

fn setup_with(yaml: &str, data: &[(&str, &str)]) -> Setup {
    let manifests = Manifests::parse(yaml);
    assert!(manifests.errors.is_empty(), "{:?}", manifests.errors);
    let data: BTreeMap<String, String> = data
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let (config, problems) = NginxConfig::from_data(&data);
    assert!(problems.is_empty(), "{problems:?}");
    let nginx = Arc::new(NginxAnnotations::new(config));
    let options = TableOptions {
        extension: Some(nginx.clone()),
        ..TableOptions::default()
    };
    let snapshot = SharedSnapshot::new(Snapshot::build(&manifests.ingresses, options));
    Setup {
        snapshot,
        config: Arc::clone(nginx.config()),
        nginx,
    }
}

fn setup(yaml: &str) -> Setup {
    setup_with(yaml, &[])
}

/// Sends a request; `client` is the TCP peer, `tls` whether it came over TLS.
async fn send(setup: &Setup, request: Request<String>, client: &str, tls: bool) -> Seen {
    let service = ServiceBuilder::new()
        .layer(IngressLayer::new(setup.snapshot.clone()).nginx(Arc::clone(&setup.config)))
        .service(service_fn(|request: Request<String>| async move {
            let route = request.extensions().get::<MatchedRoute>().unwrap();
            let mut headers = String::new();
            for (name, value) in request.headers() {
                headers += &format!(" {name}={}", value.to_str().unwrap());
            }
            let body = format!(
                "{}\n{}\n{headers}",
                route.pick_backend(0),
                request.uri().path_and_query().unwrap()
            );
            Ok::<_, Infallible>(Response::new(body))
        }));
    let mut request = request;
    let peer: SocketAddr = format!("{client}:40000").parse().unwrap();
    request.extensions_mut().insert(ClientAddr(peer));
    if tls {
        let host = request.headers()["host"].to_str().unwrap().to_owned();
        request.extensions_mut().insert(TlsInfo::new(Some(&host)));
    }
    let response = service.oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Seen {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

async fn get(setup: &Setup, host: &str, target: &str) -> Seen {
    let request = Request::get(target)
        .header("host", host)
        .body(String::new());
    send(setup, request.unwrap(), "10.0.0.1", false).await
}

const PREFIX: &str = "nginx.ingress.kubernetes.io";

/// One Ingress `name` for `host` with `annotations` (`key: value` lines without the prefix)
/// and `paths` (`path type backend`).
fn ingress(
    name: &str,
    age: u32,
    host: &str,
    annotations: &[(&str, &str)],
    paths: &[&str],
) -> String {
    let mut yaml = format!(
        "---\nkind: Ingress\nmetadata:\n  name: {name}\n  creationTimestamp: \"2026-01-01T00:00:{age:02}Z\"\n  annotations:\n"
    );
    for (k, v) in annotations {
        yaml += &format!("    {PREFIX}/{k}: {}\n", serde_json::to_string(v).unwrap());
    }
    if annotations.is_empty() {
        yaml += "    {}\n";
        yaml = yaml.replace("  annotations:\n    {}\n", "  annotations: {}\n");
    }
    yaml += &format!("spec:\n  rules:\n  - host: {host}\n    http:\n      paths:\n");
    for p in paths {
        let mut parts = p.split(' ');
        let (path, kind, backend) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        yaml += &format!(
            "      - {{path: {}, pathType: {kind}, backend: {{service: {{name: {backend}, port: {{number: 80}}}}}}}}\n",
            serde_json::to_string(path).unwrap()
        );
    }
    yaml
}

#[tokio::test]
async fn use_regex_matches_case_insensitively_from_the_start_longest_first() {
    let s = setup(
        &(ingress(
            "plain",
            1,
            "h",
            &[],
            &["/aaa Prefix plain", "/x Exact exact"],
        ) + &ingress(
            "re",
            2,
            "h",
            &[("use-regex", "true")],
            &["/id/[0-9]+ Prefix ids", "/id/[0-9]+/post Prefix posts"],
        ) + &ingress("other", 3, "o", &[], &["/aaa Prefix other"])),
    );
    assert_eq!(
        get(&s, "h", "/ID/12").await.backend(),
        "service default/ids:80"
    );
    assert_eq!(
        get(&s, "h", "/id/12/post/9").await.backend(),
        "service default/posts:80"
    );
    assert_eq!(get(&s, "h", "/id/x").await.status, StatusCode::NOT_FOUND);
    // Host-wide: the plain Ingress's Prefix and Exact paths are regexes too.
    assert_eq!(
        get(&s, "h", "/aaacccc").await.backend(),
        "service default/plain:80"
    );
    assert_eq!(
        get(&s, "h", "/xyz").await.backend(),
        "service default/exact:80"
    );
    // Other hosts keep Kubernetes matching.
    assert_eq!(get(&s, "o", "/aaacccc").await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        get(&s, "o", "/aaa/c").await.backend(),
        "service default/other:80"
    );
}

#[tokio::test]
async fn rewrite_target_substitutes_groups_keeps_the_query_and_sets_the_prefix_header() {
    let s = setup(&ingress(
        "r",
        1,
        "h",
        &[
            ("use-regex", "true"),
            ("rewrite-target", "/new/$2/$1"),
            ("x-forwarded-prefix", "/api"),
        ],
        &["/api/([a-z]+)/(.*) ImplementationSpecific api"],
    ));
    let seen = get(&s, "h", "/api/users/42/x?page=2").await;
    assert_eq!(seen.target(), "/new/42/x/users?page=2");
    assert!(
        seen.body.contains("x-forwarded-prefix=/api"),
        "{}",
        seen.body
    );
    // Without rewrite-target, x-forwarded-prefix does nothing (as in ingress-nginx).
    let s = setup(&ingress(
        "p",
        1,
        "h",
        &[("x-forwarded-prefix", "/api")],
        &["/ Prefix web"],
    ));
    let seen = get(&s, "h", "/a").await;
    assert!(!seen.body.contains("x-forwarded-prefix"), "{}", seen.body);
}

#[tokio::test]
async fn redirects_answer_before_the_backend() {
    let s = setup(
        &(ingress("root", 1, "a", &[("app-root", "/app")], &["/ Prefix web"])
            + &ingress(
                "perm",
                2,
                "p",
                &[
                    ("permanent-redirect", "https://e.example/x"),
                    ("permanent-redirect-code", "308"),
                ],
                &["/ Prefix web"],
            )
            + &ingress(
                "temp",
                3,
                "t",
                &[
                    ("temporal-redirect", "/moved"),
                    ("relative-redirects", "true"),
                ],
                &["/ Prefix web"],
            )
            + &ingress(
                "bad",
                4,
                "b",
                &[
                    ("permanent-redirect", "https://e.example"),
                    ("permanent-redirect-code", "399"),
                ],
                &["/ Prefix web"],
            )),
    );
    let seen = get(&s, "a:8080", "/").await;
    assert_eq!(
        (seen.status, seen.location()),
        (StatusCode::FOUND, "http://a:8080/app")
    );
    assert_eq!(get(&s, "a", "/other").await.status, StatusCode::OK);
    let seen = get(&s, "p", "/any?x=1").await;
    assert_eq!(
        (seen.status.as_u16(), seen.location()),
        (308, "https://e.example/x")
    );
    let seen = get(&s, "t", "/").await;
    assert_eq!(
        (seen.status, seen.location()),
        (StatusCode::FOUND, "/moved")
    );
    // An out-of-range code falls back to 301, and the lint says so.
    assert_eq!(
        get(&s, "b", "/").await.status,
        StatusCode::MOVED_PERMANENTLY
    );
    let manifests = Manifests::parse(&ingress(
        "bad",
        4,
        "b",
        &[("permanent-redirect-code", "399")],
        &["/ Prefix web"],
    ));
    let review = &s.nginx.review(&manifests.ingresses)[0];
    assert_eq!(review.annotations[0].verdict.as_str(), "invalid");
}

#[tokio::test]
async fn ssl_redirects_follow_the_annotations_and_the_configmap() {
    let tls = "  tls: [{hosts: [secure], secretName: s}]\n";
    let yaml = ingress("secure", 1, "secure", &[], &["/ Prefix web"])
        .replace("  rules:", &format!("{tls}  rules:"))
        + &ingress(
            "forced",
            2,
            "forced",
            &[
                ("force-ssl-redirect", "true"),
                ("preserve-trailing-slash", "true"),
            ],
            &["/ Prefix web"],
        )
        + &ingress(
            "off",
            3,
            "off",
            &[("ssl-redirect", "false")],
            &["/ Prefix web"],
        )
        .replace(
            "  rules:",
            &format!("{}  rules:", tls.replace("secure", "off")),
        );
    let s = setup(&yaml);
    let seen = get(&s, "secure:80", "/a/?q=1").await;
    assert_eq!(
        (seen.status.as_u16(), seen.location()),
        (308, "https://secure/a/?q=1")
    );
    let seen = get(&s, "secure", "/a/").await;
    assert_eq!(
        seen.location(),
        "https://secure/a",
        "one trailing slash removed"
    );
    assert_eq!(
        get(&s, "secure", "/.well-known/acme-challenge/t")
            .await
            .status,
        StatusCode::OK
    );
    let seen = get(&s, "forced", "/a/").await;
    assert_eq!(
        seen.location(),
        "https://forced/a/",
        "preserve-trailing-slash"
    );
    assert_eq!(get(&s, "off", "/").await.status, StatusCode::OK);
    let request = Request::get("/a")
        .header("host", "secure")
        .body(String::new())
        .unwrap();
    assert_eq!(
        send(&s, request, "10.0.0.1", true).await.status,
        StatusCode::OK
    );
    // The ConfigMap's code and switch.
    let s = setup_with(&yaml, &[("http-redirect-code", "301")]);
    assert_eq!(
        get(&s, "secure", "/").await.status,
        StatusCode::MOVED_PERMANENTLY
    );
    let s = setup_with(&yaml, &[("ssl-redirect", "false")]);
    assert_eq!(get(&s, "secure", "/").await.status, StatusCode::OK);
    assert_eq!(get(&s, "forced", "/").await.status.as_u16(), 308);
}

#[tokio::test]
async fn aliases_serve_the_host_and_www_redirects() {
    let s = setup(
        &(ingress(
            "a",
            1,
            "site.example",
            &[("server-alias", "alias.example, Other.Example")],
            &["/ Prefix web"],
        ) + &ingress("a2", 2, "site.example", &[], &["/api Prefix api"])
            + &ingress(
                "w",
                3,
                "w.example",
                &[("from-to-www-redirect", "true")],
                &["/ Prefix web"],
            )),
    );
    assert_eq!(
        get(&s, "alias.example", "/x").await.backend(),
        "service default/web:80"
    );
    assert_eq!(
        get(&s, "other.example", "/api/v1").await.backend(),
        "service default/api:80"
    );
    let seen = get(&s, "www.w.example", "/p/").await;
    assert_eq!(
        (seen.status.as_u16(), seen.location()),
        (308, "http://w.example:80/p")
    );
    assert_eq!(get(&s, "w.example", "/p").await.status, StatusCode::OK);
}

#[tokio::test]
async fn canaries_split_by_header_cookie_and_weight() {
    let canary = |annotations: &[(&str, &str)]| {
        let mut all = vec![("canary", "true")];
        all.extend_from_slice(annotations);
        ingress("main", 1, "h", &[], &["/ Prefix main"])
            + &ingress("canary", 2, "h", &all, &["/ Prefix canary"])
    };
    let with = |header: Option<(&str, &str)>| {
        let mut request = Request::get("/").header("host", "h");
        if let Some((k, v)) = header {
            request = request.header(k, v);
        }
        request.body(String::new()).unwrap()
    };
    let s = setup(&canary(&[
        ("canary-by-header", "X-Canary"),
        ("canary-by-cookie", "c"),
    ]));
    let backend = |seen: Seen| seen.backend().to_owned();
    assert_eq!(
        backend(send(&s, with(None), "10.0.0.1", false).await),
        "service default/main:80"
    );
    assert_eq!(
        backend(send(&s, with(Some(("x-canary", "always"))), "10.0.0.1", false).await),
        "service default/canary:80"
    );
    assert_eq!(
        backend(
            send(
                &s,
                with(Some(("cookie", "a=b; c=always"))),
                "10.0.0.1",
                false
            )
            .await
        ),
        "service default/canary:80"
    );
    let s = setup(&canary(&[
        ("canary-by-header", "X-Canary"),
        ("canary-by-header-pattern", "^v[0-9]+$"),
    ]));
    assert_eq!(
        backend(send(&s, with(Some(("x-canary", "v2"))), "10.0.0.1", false).await),
        "service default/canary:80"
    );
    assert_eq!(
        backend(send(&s, with(Some(("x-canary", "always"))), "10.0.0.1", false).await),
        "service default/main:80"
    );
    // Weights: 30 of 100, within a wide margin over 2000 requests.
    let s = setup(&canary(&[("canary-weight", "30")]));
    let mut canaries = 0;
    for _ in 0..2000 {
        if send(&s, with(None), "10.0.0.1", false).await.backend() == "service default/canary:80" {
            canaries += 1;
        }
    }
    assert!((450..750).contains(&canaries), "{canaries} of 2000");
    // A canary alone routes nothing.
    let s = setup(&ingress(
        "c",
        1,
        "h",
        &[("canary", "true"), ("canary-weight", "100")],
        &["/ Prefix canary"],
    ));
    assert_eq!(get(&s, "h", "/").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn source_ranges_use_the_peer_unless_forwarded_headers_are_trusted() {
    let yaml = ingress(
        "allow",
        1,
        "a",
        &[("whitelist-source-range", "10.1.0.0/16")],
        &["/ Prefix web"],
    ) + &ingress(
        "deny",
        2,
        "d",
        &[("denylist-source-range", "10.1.2.3")],
        &["/ Prefix web"],
    ) + &ingress(
        "broken",
        3,
        "b",
        &[("allowlist-source-range", "10.0.0.0/99")],
        &["/ Prefix web"],
    );
    let s = setup(&yaml);
    let request = |host: &str, xff: Option<&str>| {
        let mut r = Request::get("/").header("host", host);
        if let Some(xff) = xff {
            r = r.header("x-forwarded-for", xff);
        }
        r.body(String::new()).unwrap()
    };
    assert_eq!(
        send(&s, request("a", None), "10.1.9.9", false).await.status,
        StatusCode::OK
    );
    assert_eq!(
        send(&s, request("a", None), "10.2.0.1", false).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(&s, request("a", Some("10.1.0.1")), "10.2.0.1", false)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(&s, request("d", None), "10.1.2.3", false).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(&s, request("d", None), "10.1.2.4", false).await.status,
        StatusCode::OK
    );
    assert_eq!(
        send(&s, request("b", None), "10.0.0.1", false).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let s = setup_with(
        &yaml,
        &[
            ("use-forwarded-headers", "true"),
            ("proxy-real-ip-cidr", "10.2.0.0/16"),
        ],
    );
    assert_eq!(
        send(&s, request("a", Some("10.1.0.1")), "10.2.0.1", false)
            .await
            .status,
        StatusCode::OK
    );
    // An untrusted peer's header counts for nothing.
    assert_eq!(
        send(&s, request("a", Some("10.1.0.1")), "10.3.0.1", false)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn body_size_limits_by_content_length() {
    let s = setup(
        &(ingress(
            "big",
            1,
            "big",
            &[("proxy-body-size", "2k")],
            &["/ Prefix web"],
        ) + &ingress(
            "any",
            2,
            "any",
            &[("proxy-body-size", "0")],
            &["/ Prefix web"],
        ) + &ingress("default", 3, "default", &[], &["/ Prefix web"])),
    );
    let post = |host: &str, length: usize| {
        Request::post("/")
            .header("host", host)
            .header("content-length", length)
            .body("x".repeat(length))
            .unwrap()
    };
    assert_eq!(
        send(&s, post("big", 2048), "10.0.0.1", false).await.status,
        StatusCode::OK
    );
    assert_eq!(
        send(&s, post("big", 2049), "10.0.0.1", false).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(
        send(&s, post("default", 1 << 20), "10.0.0.1", false)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        send(&s, post("default", (1 << 20) + 1), "10.0.0.1", false)
            .await
            .status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(
        send(&s, post("any", (1 << 20) + 1), "10.0.0.1", false)
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn rate_and_connection_limits_per_client() {
    let s = setup(&ingress(
        "l",
        1,
        "l",
        &[("limit-rps", "1"), ("limit-burst-multiplier", "2")],
        &["/ Prefix web"],
    ));
    let statuses: Vec<u16> = futures_statuses(&s, "10.0.0.1", 3).await;
    assert_eq!(statuses, [200, 200, 503]);
    assert_eq!(
        futures_statuses(&s, "10.0.0.2", 1).await,
        [200],
        "per client"
    );
    // limit-connections counts requests in flight: a response body held open holds one.
    let s = setup(&ingress(
        "c",
        1,
        "c",
        &[("limit-connections", "1")],
        &["/ Prefix web"],
    ));
    let service = ServiceBuilder::new()
        .layer(IngressLayer::new(s.snapshot.clone()).nginx(Arc::clone(&s.config)))
        .service(service_fn(|_: Request<String>| async {
            Ok::<_, Infallible>(Response::new(String::from("held")))
        }));
    let request = || {
        let mut r = Request::get("/")
            .header("host", "c")
            .body(String::new())
            .unwrap();
        r.extensions_mut()
            .insert(ClientAddr("10.0.0.1:1".parse().unwrap()));
        r
    };
    let mut service = service;
    let held = service
        .ready()
        .await
        .unwrap()
        .call(request())
        .await
        .unwrap();
    let second = service
        .ready()
        .await
        .unwrap()
        .call(request())
        .await
        .unwrap();
    assert_eq!(second.status(), StatusCode::SERVICE_UNAVAILABLE);
    drop(held);
    let third = service
        .ready()
        .await
        .unwrap()
        .call(request())
        .await
        .unwrap();
    assert_eq!(third.status(), StatusCode::OK);
}

async fn futures_statuses(s: &Setup, client: &str, n: usize) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..n {
        let request = Request::get("/")
            .header("host", "l")
            .body(String::new())
            .unwrap();
        out.push(send(s, request, client, false).await.status.as_u16());
    }
    out
}

#[tokio::test]
async fn cors_headers_and_preflights() {
    let s = setup(
        &(ingress(
            "any",
            1,
            "any",
            &[("enable-cors", "true")],
            &["/ Prefix web"],
        ) + &ingress(
            "list",
            2,
            "list",
            &[
                ("enable-cors", "true"),
                (
                    "cors-allow-origin",
                    "https://a.example, https://*.b.example:8443, no-scheme.example",
                ),
                ("cors-allow-methods", "GET, POST"),
                ("cors-allow-headers", "X-Token"),
                ("cors-expose-headers", "X-Total"),
                ("cors-allow-credentials", "false"),
                ("cors-max-age", "60"),
            ],
            &["/ Prefix web"],
        )),
    );
    let seen = get(&s, "any", "/").await;
    assert_eq!(seen.headers["access-control-allow-origin"], "*");
    assert_eq!(seen.headers["access-control-max-age"], "1728000");
    let from = |host: &str, origin: &str, method: &str| {
        Request::builder()
            .method(method)
            .uri("/")
            .header("host", host)
            .header("origin", origin)
            .body(String::new())
            .unwrap()
    };
    let seen = send(
        &s,
        from("list", "https://x.b.example:8443", "GET"),
        "10.0.0.1",
        false,
    )
    .await;
    assert_eq!(
        seen.headers["access-control-allow-origin"],
        "https://x.b.example:8443"
    );
    assert_eq!(seen.headers["access-control-allow-methods"], "GET, POST");
    assert_eq!(seen.headers["access-control-allow-headers"], "X-Token");
    assert_eq!(seen.headers["access-control-expose-headers"], "X-Total");
    assert_eq!(seen.headers["access-control-max-age"], "60");
    assert!(!seen
        .headers
        .contains_key("access-control-allow-credentials"));
    for refused in [
        "evilhttps://a.example",
        "https://a.example.evil",
        "https://x.y.b.example:8443",
        "https://no-scheme.example",
    ] {
        let seen = send(&s, from("list", refused, "GET"), "10.0.0.1", false).await;
        assert!(
            !seen.headers.contains_key("access-control-allow-origin"),
            "{refused}"
        );
    }
    let preflight = send(
        &s,
        from("list", "https://a.example", "OPTIONS"),
        "10.0.0.1",
        false,
    )
    .await;
    assert_eq!(preflight.status, StatusCode::NO_CONTENT);
    let proxied = send(
        &s,
        from("list", "https://c.example", "OPTIONS"),
        "10.0.0.1",
        false,
    )
    .await;
    assert_eq!(
        proxied.status,
        StatusCode::OK,
        "a refused origin's OPTIONS goes to the backend"
    );
}

#[test]
fn backend_level_policies_are_exposed_to_the_forwarder() {
    let yaml = ingress(
        "b",
        1,
        "h",
        &[
            ("upstream-vhost", "internal.example"),
            ("service-upstream", "true"),
            ("default-backend", "errors"),
            ("custom-http-errors", "404, 503, 700"),
            ("backend-protocol", "grpc"),
            ("proxy-connect-timeout", "3"),
            ("proxy-read-timeout", "7"),
            ("affinity", "cookie"),
            ("session-cookie-name", "route"),
            ("session-cookie-max-age", "60"),
            ("session-cookie-secure", "true"),
            ("session-cookie-samesite", "Lax"),
        ],
        &["/app Prefix web"],
    );
    let s = setup(&yaml);
    let snapshot = s.snapshot.load();
    let route = snapshot.routes().route(Some("h"), "/app").unwrap();
    let policy = route.policy().unwrap().get::<NginxPolicy>().unwrap();
    assert_eq!(policy.upstream_vhost().unwrap(), "internal.example");
    assert!(policy.service_upstream(&s.config));
    assert_eq!(
        policy.default_backend().unwrap().to_string(),
        "service default/errors:80"
    );
    assert_eq!(policy.custom_http_errors(), [404, 503]);
    assert_eq!(policy.backend_protocol(), BackendProtocol::Grpc);
    let timeouts = policy.timeouts(&s.config);
    assert_eq!(timeouts.connect.as_secs(), 3);
    assert_eq!(timeouts.read.as_secs(), 7);
    assert_eq!(timeouts.send.as_secs(), 60, "the ConfigMap's default");
    let affinity = policy.affinity().unwrap();
    let cookie = affinity.set_cookie("10.0.0.1:8080".parse().unwrap());
    assert!(cookie.starts_with("route="), "{cookie}");
    assert!(
        cookie.contains("; Path=/app; Max-Age=60; Secure; SameSite=Lax; HttpOnly"),
        "{cookie}"
    );
    // disable-proxy-intercept-errors turns custom errors off.
    let s = setup(&yaml.replace("    nginx.ingress.kubernetes.io/upstream-vhost", "    nginx.ingress.kubernetes.io/disable-proxy-intercept-errors: \"true\"\n    nginx.ingress.kubernetes.io/upstream-vhost"));
    let snapshot = s.snapshot.load();
    let route = snapshot.routes().route(Some("h"), "/app").unwrap();
    let policy = route.policy().unwrap().get::<NginxPolicy>().unwrap();
    assert!(policy.custom_http_errors().is_empty());
}

#[test]
fn snippets_are_refused_unless_the_risk_level_is_critical() {
    let yaml = ingress(
        "snip",
        1,
        "s",
        &[("configuration-snippet", "more_set_headers \"A: b\";")],
        &["/ Prefix web"],
    ) + &ingress(
        "auth",
        2,
        "a",
        &[("auth-url", "http://auth/check")],
        &["/ Prefix web"],
    ) + &ingress("plain", 3, "p", &[], &["/ Prefix web"]);
    let s = setup(&yaml);
    let snapshot = s.snapshot.load();
    let routes = snapshot.routes();
    assert!(routes.route(Some("s"), "/").is_none());
    assert!(
        routes.route(Some("a"), "/").is_none(),
        "unenforced auth is not served open"
    );
    assert!(routes.route(Some("p"), "/").is_some());
    let quarantined = &routes.diagnostics().quarantined;
    assert_eq!(quarantined.len(), 2);
    let reason = quarantined[0].errors[0].to_string();
    assert!(
        reason.contains("configuration-snippet") && reason.contains("never executed"),
        "{reason}"
    );
    let s = setup_with(&yaml, &[("annotations-risk-level", "Critical")]);
    assert!(s.snapshot.load().routes().route(Some("s"), "/").is_some());
    let manifests = Manifests::parse(&yaml);
    let review = s.nginx.review(&manifests.ingresses);
    assert!(review[0].served);
    assert!(
        matches!(&review[0].annotations[0].verdict, Verdict::Refused(why) if why.contains("dropped"))
    );
    assert!(!review[1].served);
}

#[test]
fn the_prefix_is_configurable() {
    let yaml = ingress("r", 1, "h", &[("use-regex", "true")], &["/a.c Prefix web"])
        .replace(PREFIX, "nginx.example.com");
    let manifests = Manifests::parse(&yaml);
    let custom =
        Arc::new(NginxAnnotations::new(NginxConfig::default()).with_prefix("nginx.example.com/"));
    let options = TableOptions {
        extension: Some(custom.clone()),
        ..TableOptions::default()
    };
    let table = RouteTable::build(&manifests.ingresses, options);
    assert!(table.route(Some("h"), "/abc").is_some());
    let standard = Arc::new(NginxAnnotations::new(NginxConfig::default()));
    let options = TableOptions {
        extension: Some(standard),
        ..TableOptions::default()
    };
    let table = RouteTable::build(&manifests.ingresses, options);
    assert!(
        table.route(Some("h"), "/abc").is_none(),
        "other prefixes are not read"
    );
    let review = custom.review(&manifests.ingresses);
    assert_eq!(
        review[0].annotations[0].annotation,
        "nginx.example.com/use-regex"
    );
}

#[test]
fn hostile_values_cost_little_and_spare_the_neighbours() {
    let huge_regex = format!("/({})", vec!["a{1000}"; 64].join("|"));
    let groups = format!("/{}", "$9".repeat(2000));
    let many_ranges = vec!["10.0.0.1"; 10_000].join(",");
    let yaml = ingress(
        "huge",
        1,
        "h",
        &[("use-regex", "true")],
        &[&format!("{huge_regex} Prefix web"), "/ok Prefix web"],
    ) + &ingress(
        "groups",
        2,
        "g",
        &[("use-regex", "true"), ("rewrite-target", &groups)],
        &["/(a)(b) Prefix web"],
    ) + &ingress(
        "ranges",
        3,
        "r",
        &[("allowlist-source-range", &many_ranges)],
        &["/ Prefix web"],
    ) + &ingress(
        "pattern",
        4,
        "p",
        &[
            ("canary", "true"),
            ("canary-by-header", "x"),
            ("canary-by-header-pattern", "(((((a*)*)*)*)*){99999}"),
        ],
        &["/ Prefix web"],
    ) + &ingress("plain", 5, "n", &[], &["/ Prefix web"]);
    let started = std::time::Instant::now();
    let s = setup(&yaml);
    assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
    let snapshot = s.snapshot.load();
    let routes = snapshot.routes();
    assert!(routes.route(Some("n"), "/").is_some());
    assert!(
        routes.route(Some("h"), "/ok").is_some(),
        "the other path of the host still routes"
    );
    let warning = routes
        .diagnostics()
        .warnings
        .iter()
        .find(|w| w.message.contains("regex"));
    assert!(warning.is_some(), "{:?}", routes.diagnostics().warnings);
    let manifests = Manifests::parse(&yaml);
    let review = s.nginx.review(&manifests.ingresses);
    let verdict = |i: usize, name: &str| {
        review[i]
            .annotations
            .iter()
            .find(|a| a.annotation.ends_with(name))
            .unwrap()
            .verdict
            .clone()
    };
    assert_eq!(verdict(2, "allowlist-source-range").as_str(), "invalid");
    assert_eq!(verdict(3, "canary-by-header-pattern").as_str(), "invalid");
    assert_eq!(verdict(1, "rewrite-target").as_str(), "honoured");
}
