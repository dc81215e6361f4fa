//! `/healthz` and `/readyz` on an address of their own, for probes and load balancers; the
//! small HTTP server that also serves `/metrics`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Whether the data plane is ready: `Err` says why not.
pub type Readiness = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Serves `/healthz` (200 while the process runs) and `/readyz` (200 once `ready` says so,
/// else 503 with the reason) on `addr`; returns the bound address.
pub async fn serve(addr: SocketAddr, ready: Readiness) -> std::io::Result<SocketAddr> {
    listen(addr, Arc::new(move |path: &str| answer(path, &ready))).await
}

/// How a small endpoint answers a request for a path.
pub type Answer = Arc<dyn Fn(&str) -> Response<Full<Bytes>> + Send + Sync>;

/// Serves HTTP/1.1 on `addr` with `answer` for every request, whatever its method; returns
/// the bound address. Clients get 5 s to send their request head.
pub async fn listen(addr: SocketAddr, answer: Answer) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let answer = Arc::clone(&answer);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let answer = Arc::clone(&answer);
                    async move { Ok::<_, Infallible>(answer(request.uri().path())) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(std::time::Duration::from_secs(5))
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(bound)
}

fn answer(path: &str, ready: &Readiness) -> Response<Full<Bytes>> {
    let (status, body) = match path {
        "/healthz" => (StatusCode::OK, "ok\n".to_owned()),
        "/readyz" => match ready() {
            Ok(()) => (StatusCode::OK, "ready\n".to_owned()),
            Err(reason) => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {reason}\n"),
            ),
        },
        _ => (StatusCode::NOT_FOUND, "not found\n".to_owned()),
    };
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response")
}
