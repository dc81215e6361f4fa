//! Serving: listeners, TLS handshakes, HTTP/1.1 and HTTP/2 connections, the access log.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Method, Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use ingress_router::{CertResolver, ClientAddr, IngressLayer, MatchedRoute, Refusal, TlsInfo};
use rustls::crypto::CryptoProvider;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::{ServiceBuilder, ServiceExt};

use crate::proxy::forward::{forward, request_host, ClientBody, Upstream};

/// How long a client has to complete a TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A TLS acceptor whose certificates are those of the resolver's current snapshot: ALPN `h2`
/// and `http/1.1`, TLS 1.2 and 1.3.
pub fn acceptor(resolver: Arc<CertResolver>, provider: &Arc<CryptoProvider>) -> TlsAcceptor {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::clone(provider))
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default protocol versions")
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    TlsAcceptor::from(Arc::new(config))
}

/// Accepts connections and serves each with HTTP/1.1 or HTTP/2: over TLS when `acceptor` is
/// set (ALPN), otherwise in cleartext (HTTP/2 by prior knowledge).
pub async fn serve(
    listener: TcpListener,
    routing: IngressLayer,
    acceptor: Option<TlsAcceptor>,
    upstream: Arc<Upstream>,
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
        let upstream = Arc::clone(&upstream);
        let routing = routing.clone();
        let controller = Arc::clone(&controller);
        let acceptor = acceptor.clone();
        // Reap finished connections so that the set does not grow without bound.
        while connections.try_join_next().is_some() {}
        connections.spawn(async move {
            let Some(acceptor) = acceptor else {
                serve_connection(stream, None, peer, routing, upstream, controller).await;
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
            serve_connection(stream, Some(tls), peer, routing, upstream, controller).await;
        });
    }
}

/// Serves one connection; `tls` goes into every request's extensions.
async fn serve_connection<I>(
    io: I,
    tls: Option<TlsInfo>,
    peer: SocketAddr,
    routing: IngressLayer,
    upstream: Arc<Upstream>,
    controller: Arc<str>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let proxy = ServiceBuilder::new()
        .layer(routing)
        .service_fn(move |req| forward(Arc::clone(&upstream), peer, req));
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let mut req = req.map(ClientBody::new);
        let proxy = proxy.clone();
        let controller = Arc::clone(&controller);
        if let Some(tls) = &tls {
            req.extensions_mut().insert(tls.clone());
        }
        req.extensions_mut().insert(ClientAddr(peer));
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
