//! `IngressLayer` as tower middleware in an axum app: the Ingress rules pick the backend, and
//! the handlers read the match from the request and serve some backends in-process.
//!
//! ```text
//! cargo run --example axum --features tower [-- ADDR]     # default 127.0.0.1:3000
//! curl -s -H 'Host: hello.example.com' http://127.0.0.1:3000/greet/Ada
//! curl -s -H 'Host: api.example.com' 'http://127.0.0.1:3000/v1/../v1/time?tz=utc'
//! curl -s -H 'Host: api.example.com' http://127.0.0.1:3000/v2/anything    # 502: not in-process
//! curl -s -H 'Host: unknown.example.org' http://127.0.0.1:3000/           # 404 from the layer
//! ```

use std::net::SocketAddr;

use axum::extract::{Extension, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use ingress_router::{
    Backend, IngressLayer, Manifests, MatchedRoute, Refusal, SharedSnapshot, Snapshot, TableOptions,
};
use serde_json::json;

const INGRESSES: &str = r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: site, namespace: apps}
spec:
  rules:
  - host: hello.example.com
    http:
      paths:
      - {path: /greet, pathType: Prefix, backend: {service: {name: greeter, port: {number: 80}}}}
  - host: api.example.com
    http:
      paths:
      - {path: /v1, pathType: Prefix, backend: {service: {name: api-v1, port: {name: http}}}}
      - {path: /v2, pathType: Prefix, backend: {service: {name: api-v2, port: {name: http}}}}
"#;

/// Every request the Ingress rules route lands here, with its match in the extensions.
async fn in_process(Extension(route): Extension<MatchedRoute>, request: Request) -> Response {
    let Backend::Service(service) = route.backend() else {
        return (StatusCode::BAD_GATEWAY, "not a Service backend\n").into_response();
    };
    // The layer has already rewritten the path to the canonical one it matched.
    let path = request.uri().path();
    match (service.namespace.as_str(), service.name.as_str()) {
        ("apps", "greeter") => {
            let name = path.strip_prefix("/greet/").unwrap_or("world");
            format!("hello, {name}\n").into_response()
        }
        ("apps", "api-v1") if path == "/v1/time" => Json(json!({
            "unix": std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            "query": request.uri().query(),
            "rule": route.rule().map(|r| r.path),
        }))
        .into_response(),
        _ => (
            StatusCode::BAD_GATEWAY,
            format!("{} is not served by this process\n", route.backend()),
        )
            .into_response(),
    }
}

/// Outside the Ingress rules: the layer wraps it too, so it is reachable only where a rule
/// routes, like every other route of the router.
async fn healthz() -> &'static str {
    "ok\n"
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .as_deref()
        .unwrap_or("127.0.0.1:3000")
        .parse()?;

    let manifests = Manifests::parse(INGRESSES);
    // The routes and TLS names of the Ingresses.
    let snapshot = SharedSnapshot::new(Snapshot::build(
        &manifests.ingresses,
        TableOptions::default(),
    ));
    // Keep a clone of `snapshot` to swap in new ones later: `snapshot.store(new_snapshot)`.
    let app = Router::new()
        .route("/greet/healthz", get(healthz))
        .fallback(in_process)
        .layer(IngressLayer::new(snapshot.clone()).reply(
            Refusal::NoRoute,
            StatusCode::NOT_FOUND,
            "no Ingress rule for this host and path\n",
        ));

    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
