//! `IngressLayer` / `IngressService` as tower middleware: what reaches the inner service, what
//! the layer answers itself, and how it composes with `ServiceBuilder` and axum.

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::Extension;
use axum::Router;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use ingress_router::{
    CanonicalOptions, IngressLayer, IngressService, Manifests, MatchedRoute, PathMode, Refusal,
    RejectStatus, Rejection, SharedSnapshot, Snapshot, TableOptions,
};
use tower::{service_fn, Layer, Service, ServiceBuilder, ServiceExt};

const RULES: &str = r#"
kind: Ingress
metadata: {name: shop, namespace: web, creationTimestamp: "2024-01-01T00:00:00Z"}
spec:
  rules:
  - host: shop.example.com
    http:
      paths:
      - {path: /api, pathType: Prefix, backend: {service: {name: api, port: {number: 8080}}}}
      - {path: /login, pathType: Exact, backend: {service: {name: auth, port: {number: 80}}}}
"#;

/// The routes and TLS names of the Ingresses of `yaml` (ssl-redirect and the SNI/Host check
/// need the TLS names, which a snapshot of a bare `RouteTable` lacks).
fn snapshot_with(yaml: &str, options: TableOptions) -> Snapshot {
    let manifests = Manifests::parse(yaml);
    assert!(manifests.errors.is_empty(), "{:?}", manifests.errors);
    Snapshot::build(&manifests.ingresses, options)
}

fn snapshot(yaml: &str) -> Snapshot {
    snapshot_with(yaml, TableOptions::default())
}

/// An inner service that answers with what it received, and counts its calls.
fn recorder(
    calls: Arc<AtomicUsize>,
) -> impl Service<Request<String>, Response = Response<String>, Error = Infallible, Future = impl Send>
       + Clone {
    service_fn(move |request: Request<String>| {
        calls.fetch_add(1, Ordering::SeqCst);
        let route = request
            .extensions()
            .get::<MatchedRoute>()
            .expect("a MatchedRoute in the extensions")
            .clone();
        // What the inner service saw: the URI, the backend and the rule.
        let seen = format!(
            "uri: {:?}, backend: {:?}, rule: {:?}",
            request.uri().to_string(),
            route.backend().to_string(),
            route.rule().map(|r| format!("{} {}", r.path_type, r.path)),
        );
        async move { Ok::<_, Infallible>(Response::new(seen)) }
    })
}

fn get(host: &str, target: &str) -> Request<String> {
    Request::get(target)
        .header("host", host)
        .body(String::new())
        .unwrap()
}

async fn body_of<B>(response: Response<B>) -> String
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn a_routed_request_reaches_the_inner_service_with_its_match_and_canonical_path() {
    let calls = Arc::new(AtomicUsize::new(0));
    let service = ServiceBuilder::new()
        .layer(IngressLayer::new(snapshot(RULES)))
        .service(recorder(calls.clone()));

    let response = service
        .clone()
        .oneshot(get(
            "SHOP.example.com:443",
            "/api/v1/%2e%2e/items/./x?q=a%2Fb&r=..%2f",
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let seen = body_of(response).await;
    assert!(
        seen.contains(r#"uri: "/api/items/x?q=a%2Fb&r=..%2f""#),
        "{seen}"
    );
    assert!(
        seen.contains(r#"backend: "service web/api:8080""#),
        "{seen}"
    );
    assert!(seen.contains(r#"rule: Some("Prefix /api")"#), "{seen}");

    // A canonical request is forwarded untouched.
    let response = service
        .oneshot(get("shop.example.com", "/login?next=/home"))
        .await
        .unwrap();
    let seen = body_of(response).await;
    assert!(seen.contains(r#"uri: "/login?next=/home""#), "{seen}");
    assert!(seen.contains(r#"rule: Some("Exact /login")"#), "{seen}");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_absolute_form_target_keeps_its_scheme_and_authority_when_rewritten() {
    let service = IngressService::new(recorder(Arc::default()), snapshot(RULES));
    // HTTP/1.1 still requires a Host, which the target's authority overrides.
    let request = Request::get("http://shop.example.com/api//v2/")
        .header("host", "ignored.example.com")
        .body(String::new())
        .unwrap();
    let seen = body_of(service.oneshot(request).await.unwrap()).await;
    assert!(
        seen.contains(r#"uri: "http://shop.example.com/api/v2/""#),
        "{seen}"
    );
}

#[tokio::test]
async fn requests_that_cannot_be_routed_are_answered_without_calling_the_inner_service() {
    let calls = Arc::new(AtomicUsize::new(0));
    let options = TableOptions {
        canonical: CanonicalOptions {
            max_path_len: 64,
            ..CanonicalOptions::default()
        },
        ..TableOptions::default()
    };
    let layer = IngressLayer::new(snapshot_with(RULES, options));
    let service = layer.layer_service(recorder(calls.clone()));

    let cases = [
        (
            get("shop.example.com", "/checkout"),
            StatusCode::NOT_FOUND,
            Refusal::NoRoute,
            "no route for this host and path\n",
        ),
        (
            get("other.example.com", "/api"),
            StatusCode::NOT_FOUND,
            Refusal::NoRoute,
            "no route for this host and path\n",
        ),
        (
            get("shop.example.com", "/api/a%2Fb"),
            StatusCode::BAD_REQUEST,
            Refusal::BadRequest,
            "bad request: encoded slash in path\n",
        ),
        (
            get("shop.example.com", &format!("/api/{}", "x".repeat(100))),
            StatusCode::URI_TOO_LONG,
            Refusal::UriTooLong,
            "URI too long: path too long\n",
        ),
    ];
    for (request, status, refusal, body) in cases {
        let target = request.uri().to_string();
        let response = service.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), status, "{target}");
        assert_eq!(
            response.headers()["content-type"],
            "text/plain; charset=utf-8"
        );
        assert_eq!(response.extensions().get::<Refusal>(), Some(&refusal));
        let rejection = response.extensions().get::<Rejection>().copied();
        match refusal {
            Refusal::NoRoute => assert_eq!(rejection, None),
            _ => assert_eq!(
                rejection.map(|r| r.status().status_code()),
                Some(status),
                "{target}"
            ),
        }
        assert_eq!(body_of(response).await, body, "{target}");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

/// A small extension trait so the test reads as "the layer applied to a service".
trait LayerService {
    fn layer_service<S>(&self, inner: S) -> IngressService<S>;
}

impl LayerService for IngressLayer {
    fn layer_service<S>(&self, inner: S) -> IngressService<S> {
        tower::Layer::layer(self, inner)
    }
}

#[tokio::test]
async fn the_status_and_body_of_each_direct_answer_can_be_set() {
    let layer = IngressLayer::new(snapshot(RULES))
        .reply(
            Refusal::NoRoute,
            StatusCode::MISDIRECTED_REQUEST,
            "wrong door",
        )
        .reply(Refusal::BadRequest, StatusCode::FORBIDDEN, "");
    let service = layer.layer_service(recorder(Arc::default()));

    let response = service
        .clone()
        .oneshot(get("nowhere.example.com", "/"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::MISDIRECTED_REQUEST);
    assert_eq!(body_of(response).await, "wrong door");

    let response = service
        .oneshot(get("shop.example.com", "/a/..;/api"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        response.extensions().get::<Rejection>().map(|r| r.status()),
        Some(RejectStatus::BadRequest)
    );
    assert_eq!(body_of(response).await, "");
}

#[tokio::test]
async fn strict_mode_refuses_instead_of_rewriting() {
    let options = TableOptions {
        canonical: CanonicalOptions {
            mode: PathMode::Strict,
            ..CanonicalOptions::default()
        },
        ..TableOptions::default()
    };
    let service = IngressService::new(recorder(Arc::default()), snapshot_with(RULES, options));
    let response = service
        .clone()
        .oneshot(get("shop.example.com", "/api/./x"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = service
        .oneshot(get("shop.example.com", "/api/x"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_swapped_table_routes_the_next_request_and_old_matches_keep_their_table() {
    let shared = SharedSnapshot::new(snapshot(RULES));
    let service = IngressService::new(
        service_fn(|request: Request<String>| async move {
            let route = request.extensions().get::<MatchedRoute>().unwrap().clone();
            Ok::<_, Infallible>(Response::new(route))
        }),
        shared.clone(),
    );

    let before = service
        .clone()
        .oneshot(get("shop.example.com", "/api"))
        .await
        .unwrap();
    let before_route: MatchedRoute = body_into_inner(before);

    shared.store(snapshot(&RULES.replace("name: api,", "name: api-v2,")));
    let after = service
        .oneshot(get("shop.example.com", "/api"))
        .await
        .unwrap();
    let after_route: MatchedRoute = body_into_inner(after);

    assert_eq!(after_route.backend().to_string(), "service web/api-v2:8080");
    // The earlier match still reads from the table it was routed with.
    assert_eq!(before_route.backend().to_string(), "service web/api:8080");
    assert!(!Arc::ptr_eq(
        before_route.snapshot().routes(),
        after_route.snapshot().routes()
    ));
}

/// The inner response body of a routed request; direct answers are not expected here.
fn body_into_inner<B: Clone>(response: Response<ingress_router::ResponseBody<B>>) -> B
where
    ingress_router::ResponseBody<B>: std::fmt::Debug,
{
    response
        .into_body()
        .into_inner()
        .expect("a routed response")
}

#[tokio::test]
async fn errors_are_the_inner_services_own() {
    let service = IngressService::new(
        service_fn(|_: Request<String>| async { Err::<Response<String>, _>("backend down") }),
        snapshot(RULES),
    );
    let err = service
        .clone()
        .oneshot(get("shop.example.com", "/api"))
        .await
        .unwrap_err();
    assert_eq!(err, "backend down");
    // A request the layer answers itself never reaches the failing service.
    let response = service.oneshot(get("x.example.com", "/")).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

/// An inner service that is ready only after it has been polled `polls_needed` times.
#[derive(Clone)]
struct SlowToStart {
    polls: Arc<AtomicUsize>,
    polls_needed: usize,
}

impl Service<Request<String>> for SlowToStart {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Ready<Result<Response<String>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        if self.polls.fetch_add(1, Ordering::SeqCst) + 1 >= self.polls_needed {
            Poll::Ready(Ok(()))
        } else {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    fn call(&mut self, _: Request<String>) -> Self::Future {
        ready(Ok(Response::new("ready".into())))
    }
}

#[tokio::test]
async fn readiness_is_the_inner_services() {
    let polls = Arc::new(AtomicUsize::new(0));
    let mut service = IngressService::new(
        SlowToStart {
            polls: polls.clone(),
            polls_needed: 3,
        },
        snapshot(RULES),
    );
    let waker = futures_noop_waker();
    let mut cx = Context::from_waker(&waker);
    assert!(service.poll_ready(&mut cx).is_pending());
    assert!(service.poll_ready(&mut cx).is_pending());
    assert!(service.poll_ready(&mut cx).is_ready());
    assert_eq!(polls.load(Ordering::SeqCst), 3);
    assert_eq!(service.get_ref().polls_needed, 3);
    service.get_mut().polls_needed = 1;
    assert_eq!(service.into_inner().polls_needed, 1);
}

fn futures_noop_waker() -> std::task::Waker {
    struct Noop;
    impl std::task::Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    std::task::Waker::from(Arc::new(Noop))
}

/// As `axum::Router::layer`: axum requires an `Infallible` error and a body it can convert,
/// and handlers extract the match with `Extension<MatchedRoute>`.
#[tokio::test]
async fn works_as_an_axum_router_layer() {
    async fn handler(Extension(route): Extension<MatchedRoute>, uri: http::Uri) -> String {
        format!("{} {uri}", route.backend())
    }
    let app = Router::new()
        .fallback(handler)
        .layer(IngressLayer::new(snapshot(RULES)));

    let request = Request::get("/api/../api/list?all")
        .header("host", "shop.example.com")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        body_of(response).await,
        "service web/api:8080 /api/list?all"
    );

    let request = Request::get("/")
        .header("host", "unknown.example.com")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

const TLS_RULES: &str = r#"
kind: Ingress
metadata: {name: shop, namespace: web, creationTimestamp: "2024-01-01T00:00:00Z"}
spec:
  tls:
  - {hosts: [shop.example.com], secretName: shop-tls}
  - {hosts: ["*.example.com"], secretName: wildcard-tls}
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

fn over_tls(sni: Option<&str>, host: &str, target: &str) -> Request<String> {
    let mut request = get(host, target);
    request
        .extensions_mut()
        .insert(ingress_router::TlsInfo::new(sni));
    request
}

#[tokio::test]
async fn plain_http_to_a_tls_host_is_redirected_to_https() {
    let calls = Arc::new(AtomicUsize::new(0));
    let service = IngressLayer::new(snapshot(TLS_RULES)).layer(recorder(calls.clone()));

    let response = service
        .clone()
        .oneshot(get("Shop.Example.com:80", "/a/./b/../c?x=1&y=%20"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        response.headers()["location"],
        "https://shop.example.com/a/c?x=1&y=%20"
    );
    assert_eq!(response.extensions().get(), Some(&Refusal::RedirectToHttps));
    // A wildcard TLS host counts; a host without TLS is routed over plain HTTP.
    let response = service
        .clone()
        .oneshot(get("blog.example.com", "/"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(response.headers()["location"], "https://blog.example.com/");
    let response = service
        .clone()
        .oneshot(get("plain.example.org", "/"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // ACME HTTP-01 challenges stay on plain HTTP; `/.well-known/acme-challengeX` does not.
    let response = service
        .clone()
        .oneshot(get("shop.example.com", "/.well-known/acme-challenge/token"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = service
        .clone()
        .oneshot(get("shop.example.com", "/.well-known/acme-challengeX"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    // Over TLS, no redirect.
    let response = service
        .clone()
        .oneshot(over_tls(Some("shop.example.com"), "shop.example.com", "/"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn ssl_redirect_can_be_switched_off_and_given_a_port() {
    let calls = Arc::new(AtomicUsize::new(0));
    let off = IngressLayer::new(snapshot(TLS_RULES))
        .ssl_redirect(false)
        .layer(recorder(calls.clone()));
    let response = off.oneshot(get("shop.example.com", "/")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    let port = IngressLayer::new(snapshot(TLS_RULES))
        .https_port(8443)
        .no_redirect_prefixes(["/plain/"])
        .reply(
            Refusal::RedirectToHttps,
            StatusCode::MOVED_PERMANENTLY,
            "moved\n",
        )
        .layer(recorder(calls.clone()));
    let response = port
        .clone()
        .oneshot(get("shop.example.com", "/x?q"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        response.headers()["location"],
        "https://shop.example.com:8443/x?q"
    );
    assert_eq!(body_of(response).await, "moved\n");
    let response = port
        .clone()
        .oneshot(get("shop.example.com", "/plain"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // The default exemption was replaced.
    let response = port
        .oneshot(get("shop.example.com", "/.well-known/acme-challenge/t"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);
    // A request that does not route is a 404, not a redirect.
    let service = IngressLayer::new(snapshot(TLS_RULES)).layer(recorder(calls.clone()));
    let response = service.oneshot(get("other.org", "/")).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_host_with_another_certificate_than_the_sni_gets_421() {
    let calls = Arc::new(AtomicUsize::new(0));
    let service = IngressLayer::new(snapshot(TLS_RULES)).layer(recorder(calls.clone()));
    let status = |sni: Option<&'static str>, host: &'static str| {
        let service = service.clone();
        async move {
            let response = service.oneshot(over_tls(sni, host, "/")).await.unwrap();
            if response.status() == StatusCode::MISDIRECTED_REQUEST {
                assert_eq!(response.extensions().get(), Some(&Refusal::Misdirected));
            }
            response.status()
        }
    };
    // Same certificate: the exact name, or one wildcard certificate for two names (HTTP/2
    // connection reuse).
    assert_eq!(
        status(Some("shop.example.com"), "shop.example.com").await,
        200
    );
    assert_eq!(status(Some("a.example.com"), "b.example.com").await, 200);
    assert_eq!(status(Some("unknown.org"), "plain.example.org").await, 200);
    assert_eq!(status(None, "plain.example.org").await, 200);
    // Another certificate.
    assert_eq!(status(Some("a.example.com"), "shop.example.com").await, 421);
    assert_eq!(status(Some("shop.example.com"), "a.example.com").await, 421);
    assert_eq!(
        status(Some("shop.example.com"), "plain.example.org").await,
        421
    );
    assert_eq!(status(None, "shop.example.com").await, 421);
    // Before routing: a host that routes nowhere still gets 421 when the certificate differs.
    assert_eq!(status(Some("shop.example.com"), "nowhere.org").await, 421);
    assert_eq!(status(Some("nowhere.org"), "nowhere.org").await, 404);
    assert_eq!(calls.load(Ordering::SeqCst), 4);

    let unchecked = IngressLayer::new(snapshot(TLS_RULES))
        .sni_host_check(false)
        .layer(recorder(calls.clone()));
    let response = unchecked
        .oneshot(over_tls(Some("a.example.com"), "shop.example.com", "/"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
