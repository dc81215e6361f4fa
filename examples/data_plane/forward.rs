//! Forwarding: from a routed request to one of its backend's endpoints, and back.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use ingress_router::{Backend, MatchedRoute, TlsInfo};

/// The response body the proxy produces: a backend's, or one it writes itself.
pub type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// How long an endpoint whose connect failed is tried only after the others.
const EJECT_FOR: Duration = Duration::from_secs(10);

/// What forwarding keeps between requests: the pooled client, the draws for weighted
/// backends, the round-robin position over endpoints, and the endpoints whose connect failed
/// recently.
pub struct Upstream {
    client: Client<HttpConnector, RetryBody>,
    /// Draws for [`ingress_router::RouteMatch::pick_backend`]; a counter of its own, so that
    /// the backend chosen and the endpoint tried first are independent.
    draws: AtomicUsize,
    next: AtomicUsize,
    ejected: Mutex<std::collections::HashMap<SocketAddr, Instant>>,
}

impl Upstream {
    /// A pooled HTTP/1.1 client with a 2 s connect timeout.
    pub fn new() -> Upstream {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Upstream {
            client,
            draws: AtomicUsize::new(0),
            next: AtomicUsize::new(0),
            ejected: Mutex::new(std::collections::HashMap::new()),
        }
    }
}

/// Forwards one routed request to its backend.
pub async fn forward(
    upstream: Arc<Upstream>,
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
    let mut response = forward_to(&upstream, peer, &route, req).await;
    response.extensions_mut().insert(route);
    Ok(response)
}

async fn forward_to(
    upstream: &Upstream,
    peer: SocketAddr,
    route: &MatchedRoute,
    req: Request<Incoming>,
) -> Response<ProxyBody> {
    // One backend of the route, in proportion to the weights (the only one for most).
    let matched = route.as_match();
    let backend = matched.pick_backend(upstream.draws.fetch_add(1, Ordering::Relaxed) as u64);
    let service = match backend {
        Backend::Service(service) => service,
        other => {
            return reply(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{other}: resource backends are not proxied"),
            )
        }
    };
    // The endpoints of the snapshot that routed the request: the same version of the cluster.
    let addresses = match route.snapshot().endpoints().resolve(service) {
        Ok(addresses) => addresses,
        Err(e) => return reply(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    let order = try_order(upstream, addresses);

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
        match upstream.client.request(outbound).await {
            Ok(response) => {
                let (mut parts, body) = response.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                return Response::from_parts(parts, body.boxed());
            }
            Err(e) => {
                let unsent = slot.lock().unwrap().is_some();
                if e.is_connect() {
                    upstream
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
        format!("{backend}: no endpoint answered ({last_error})"),
    )
}

/// The endpoints in the order to try them: round-robin, endpoints whose connect failed
/// recently last.
fn try_order(upstream: &Upstream, addresses: &[SocketAddr]) -> Vec<SocketAddr> {
    // Once per request: advancing it twice would leave every other endpoint of an even-sized
    // set unused.
    let start = upstream.next.fetch_add(1, Ordering::Relaxed);
    let n = addresses.len();
    let rotated = (0..n).map(|i| addresses[(start + i) % n]);
    let now = Instant::now();
    let mut ejected = upstream.ejected.lock().unwrap();
    ejected.retain(|_, until| *until > now);
    let (mut healthy, down): (Vec<_>, Vec<_>) = rotated.partition(|a| !ejected.contains_key(a));
    healthy.extend(down);
    healthy
}

/// What the `X-Forwarded-*` headers say.
struct Forwarded<'a> {
    /// The host the client asked for.
    host: Option<&'a str>,
    /// The client.
    peer: SocketAddr,
    /// `http` or `https`.
    proto: &'static str,
}

/// The request to send to `addr`: the routed path and query, the original headers minus
/// hop-by-hop ones, the client's Host, and `X-Forwarded-*` set by the proxy.
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

/// The host the request is routed on, as the client spelled it, port included: the target's
/// authority (absolute-form, HTTP/2 `:authority`), which wins over `Host` (RFC 9112 §3.2.2),
/// or else `Host`. Forwarding this one keeps the backend's host the routed one.
pub fn request_host(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    uri.authority().map(|a| a.to_string()).or_else(|| {
        headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned)
    })
}

/// A response the proxy writes itself.
pub fn reply(status: StatusCode, message: String) -> Response<ProxyBody> {
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
