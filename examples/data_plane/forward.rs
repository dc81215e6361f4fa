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
use ingress_router::{
    Backend, BackendProtocol, BodyLimit, MatchedRoute, NginxConfig, NginxPolicy, TlsInfo,
};

/// The response body the proxy produces: a backend's, or one it writes itself.
pub type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// How long an endpoint whose connect failed is tried only after the others.
const EJECT_FOR: Duration = Duration::from_secs(10);

/// What forwarding keeps between requests: the pooled clients, the draws for weighted
/// backends, the round-robin position over endpoints, and the endpoints whose connect failed
/// recently.
pub struct Upstream {
    client: Client<HttpConnector, RetryBody>,
    /// HTTP/2 in cleartext, for `backend-protocol: GRPC`.
    h2c: Client<HttpConnector, RetryBody>,
    /// The ingress-nginx settings the routes' policies fall back to.
    nginx: Arc<NginxConfig>,
    /// Draws for [`ingress_router::MatchedRoute::pick_backend`]; a counter of its own, so that
    /// the backend chosen and the endpoint tried first are independent.
    draws: AtomicUsize,
    next: AtomicUsize,
    ejected: Mutex<std::collections::HashMap<SocketAddr, Instant>>,
}

impl Upstream {
    /// Pooled HTTP/1.1 and h2c clients; connects time out after the routes'
    /// `proxy-connect-timeout`.
    pub fn new(nginx: Arc<NginxConfig>) -> Upstream {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(u64::from(
            nginx.proxy_connect_timeout.max(1),
        ))));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector.clone());
        let h2c = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .http2_only(true)
            .build(connector);
        Upstream {
            client,
            h2c,
            nginx,
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
    req: Request<ClientBody>,
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

/// Who a request to the default backend stands in for (ingress-nginx's `X-*` headers).
struct StandIn {
    code: u16,
    /// The path becomes `/` (custom error pages), or stays (no endpoints).
    root: bool,
}

async fn forward_to(
    upstream: &Upstream,
    peer: SocketAddr,
    route: &MatchedRoute,
    req: Request<ClientBody>,
) -> Response<ProxyBody> {
    // One backend of the route: the canary decision, else in proportion to the weights.
    let backend = route.pick_backend(upstream.draws.fetch_add(1, Ordering::Relaxed) as u64);
    let matched = route.as_match();
    let policy = matched.policy().and_then(|p| p.get::<NginxPolicy>());
    let service = match backend {
        Backend::Service(service) => service,
        other => {
            return reply(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{other}: resource backends are not proxied"),
            )
        }
    };
    let tls = req.extensions().get::<TlsInfo>().is_some();
    let protocol = policy.map_or(BackendProtocol::Http, NginxPolicy::backend_protocol);
    let h2c = match (protocol, tls) {
        (BackendProtocol::Http, _) | (BackendProtocol::AutoHttp, false) => false,
        (BackendProtocol::Grpc, _) => true,
        (other, _) => {
            let name = match other {
                BackendProtocol::AutoHttp => "AUTO_HTTP over TLS (HTTPS)",
                other => other.as_str(),
            };
            return reply(
                StatusCode::BAD_GATEWAY,
                format!("{backend}: backend-protocol {name} is not supported by this data plane"),
            );
        }
    };
    let snapshot = route.snapshot();
    let cluster_ip = policy.map_or(upstream.nginx.service_upstream, |p| {
        p.service_upstream(&upstream.nginx)
    });
    let cluster = cluster_ip
        .then(|| snapshot.endpoints().cluster_ip(service))
        .flatten();
    // The endpoints of the snapshot that routed the request: the same version of the cluster.
    let resolved = match &cluster {
        Some(addr) => Ok(std::slice::from_ref(addr)),
        None => snapshot.endpoints().resolve(service),
    };
    let (parts, body) = req.into_parts();
    let addresses = match resolved {
        Ok(addresses) => addresses,
        Err(e) => {
            // ingress-nginx's `default-backend` annotation answers for a Service without
            // endpoints.
            let fallback = policy.and_then(|p| p.default_backend().cloned());
            return match fallback {
                Some(fallback) => {
                    let stand_in = StandIn {
                        code: 503,
                        root: false,
                    };
                    let body = Source::Incoming(body);
                    stand_in_for(upstream, peer, route, &parts, body, &fallback, stand_in).await
                }
                None => reply(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            };
        }
    };
    let affinity = policy.and_then(NginxPolicy::affinity);
    let sticky = affinity.and_then(|a| {
        let value = a.cookie_value(&parts.headers)?;
        addresses
            .iter()
            .find(|addr| a.value_for(**addr) == value)
            .copied()
    });
    let mut order = try_order(upstream, addresses);
    if let Some(sticky) = sticky {
        if let Some(i) = order.iter().position(|a| *a == sticky) {
            order[..=i].rotate_right(1);
        }
    }

    let original_host = request_host(&parts.headers, &parts.uri);
    let proto = if tls { "https" } else { "http" };
    let limit = parts.extensions.get::<BodyLimit>().map(|l| l.0);
    let slot = Arc::new(Mutex::new(Some(Source::Incoming(body))));
    let idempotent = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    // Connecting, sending the request and waiting for the response head, each within its
    // timeout (the route's, else the ConfigMap's): together they bound the exchange.
    let timeouts = match policy {
        Some(policy) => policy.timeouts(&upstream.nginx),
        None => NginxPolicy::default().timeouts(&upstream.nginx),
    };
    let wait = timeouts.connect + timeouts.send + timeouts.read;
    let mut last_error = String::new();
    for (attempt, addr) in order.iter().enumerate() {
        let forwarded = Forwarded {
            host: original_host.as_deref(),
            vhost: policy.and_then(NginxPolicy::upstream_vhost),
            peer,
            proto,
        };
        let outbound = match outbound_request(&parts, *addr, &forwarded, &slot, limit) {
            Ok(outbound) => outbound,
            Err(e) => return reply(StatusCode::BAD_REQUEST, e),
        };
        let client = if h2c { &upstream.h2c } else { &upstream.client };
        let sent = tokio::time::timeout(wait, client.request(outbound)).await;
        let Ok(sent) = sent else {
            return reply(
                StatusCode::GATEWAY_TIMEOUT,
                format!("{backend}: {addr} did not answer within {wait:?}"),
            );
        };
        match sent {
            Ok(response) => {
                let (mut parts_out, body) = response.into_parts();
                strip_hop_by_hop(&mut parts_out.headers);
                let status = parts_out.status.as_u16();
                if let Some(policy) = policy {
                    if policy.custom_http_errors().contains(&status) {
                        if let Some(fallback) = policy.default_backend() {
                            let stand_in = StandIn {
                                code: status,
                                root: true,
                            };
                            let empty = Source::Empty;
                            return stand_in_for(
                                upstream, peer, route, &parts, empty, fallback, stand_in,
                            )
                            .await;
                        }
                    }
                }
                if let Some(affinity) = affinity {
                    let keep = sticky == Some(*addr)
                        || (sticky.is_none()
                            && affinity.cookie_value(&parts.headers).is_some()
                            && !affinity.change_on_failure);
                    if !keep {
                        if let Ok(value) = HeaderValue::from_str(&affinity.set_cookie(*addr)) {
                            parts_out.headers.append(header::SET_COOKIE, value);
                        }
                    }
                }
                return Response::from_parts(parts_out, body.boxed());
            }
            Err(e) => {
                if is_too_large(&e) {
                    return reply(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "request entity too large".into(),
                    );
                }
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

/// Sends the request to the route's default backend instead, as ingress-nginx does for a
/// Service without endpoints (`X-Code: 503`, path kept) and for `custom-http-errors` (the
/// backend's status in `X-Code`, path `/`).
async fn stand_in_for(
    upstream: &Upstream,
    peer: SocketAddr,
    route: &MatchedRoute,
    parts: &http::request::Parts,
    body: Source,
    fallback: &Backend,
    stand_in: StandIn,
) -> Response<ProxyBody> {
    let Backend::Service(service) = fallback else {
        return reply(StatusCode::SERVICE_UNAVAILABLE, "no default backend".into());
    };
    let addresses = match route.snapshot().endpoints().resolve(service) {
        Ok(addresses) => addresses,
        Err(e) => {
            return reply(
                StatusCode::from_u16(stand_in.code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                e.to_string(),
            )
        }
    };
    let Some(addr) = try_order(upstream, addresses).first().copied() else {
        return reply(StatusCode::SERVICE_UNAVAILABLE, "no default backend".into());
    };
    let mut parts = parts.clone();
    let original = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let host = request_host(&parts.headers, &parts.uri);
    if stand_in.root {
        parts.uri = Uri::from_static("/");
    }
    let (ingress_name, namespace) = route.ingress().map_or((String::new(), String::new()), |i| {
        (i.name.clone(), i.namespace.clone().unwrap_or_default())
    });
    let (service_name, service_port) = match route.backend() {
        Backend::Service(s) => (s.name.clone(), s.port.to_string()),
        other => (other.to_string(), String::new()),
    };
    let request_id = parts
        .headers
        .get("x-request-id")
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_str(&request_id()).expect("hex"));
    let format = parts.headers.get(header::ACCEPT).cloned();
    let headers = &mut parts.headers;
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    set("x-code", &stand_in.code.to_string());
    set("x-original-uri", &original);
    set("x-namespace", &namespace);
    set("x-ingress-name", &ingress_name);
    set("x-service-name", &service_name);
    set("x-service-port", &service_port);
    headers.insert(HeaderName::from_static("x-request-id"), request_id);
    if let Some(format) = format {
        headers.insert(HeaderName::from_static("x-format"), format);
    }
    let forwarded = Forwarded {
        host: host.as_deref(),
        vhost: None,
        peer,
        proto: if parts.extensions.get::<TlsInfo>().is_some() {
            "https"
        } else {
            "http"
        },
    };
    let slot = Arc::new(Mutex::new(Some(body)));
    let outbound = match outbound_request(&parts, addr, &forwarded, &slot, None) {
        Ok(outbound) => outbound,
        Err(e) => return reply(StatusCode::BAD_REQUEST, e),
    };
    match upstream.client.request(outbound).await {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Response::from_parts(parts, body.boxed())
        }
        Err(e) => reply(StatusCode::BAD_GATEWAY, format!("{fallback}: {addr}: {e}")),
    }
}

/// A fresh request id: 16 random bytes in hex, as nginx's `$request_id`.
fn request_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let state = std::collections::hash_map::RandomState::new();
    let mut a = state.build_hasher();
    a.write_u64(1);
    let mut b = state.build_hasher();
    b.write_u64(2);
    format!("{:016x}{:016x}", a.finish(), b.finish())
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
    /// The `Host` the backend gets instead (`upstream-vhost`).
    vhost: Option<&'a HeaderValue>,
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
    slot: &Arc<Mutex<Option<Source>>>,
    limit: Option<u64>,
) -> Result<Request<RetryBody>, String> {
    let Forwarded {
        host,
        vhost,
        peer,
        proto,
    } = *forwarded;
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
    if let Some(vhost) = vhost {
        headers.insert(header::HOST, vhost.clone());
    }
    headers.insert(
        X_FORWARDED_FOR,
        HeaderValue::from_str(&peer.ip().to_string()).expect("an IP address is a header value"),
    );
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    let mut request = Request::new(RetryBody {
        slot: Arc::clone(slot),
        taken: None,
        limit,
        read: 0,
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

/// The most bytes of a request body read and thrown away after an answer that did not need
/// it (a 413, say), so that a client still writing its body gets to read the answer, as
/// nginx's lingering close does.
const DRAIN_BYTES: u64 = 64 << 20;

/// How long such a body is read at most.
const DRAIN_FOR: Duration = Duration::from_secs(30);

/// A client's request body that, dropped unread, is drained (up to [`DRAIN_BYTES`] and
/// [`DRAIN_FOR`]) in the background: answering before the whole body arrived would otherwise
/// close the connection under a client that is still writing, which then sees a broken pipe
/// instead of the answer.
pub struct ClientBody {
    body: Option<Incoming>,
}

impl ClientBody {
    /// Wraps a client's body.
    pub fn new(body: Incoming) -> ClientBody {
        ClientBody { body: Some(body) }
    }
}

impl Drop for ClientBody {
    fn drop(&mut self) {
        let Some(mut body) = self.body.take() else {
            return;
        };
        if body.is_end_stream() || body.size_hint().lower() > DRAIN_BYTES {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let drain = async {
                let mut read = 0u64;
                while let Some(Ok(frame)) = body.frame().await {
                    read += frame.data_ref().map_or(0, |d| d.len() as u64);
                    if read > DRAIN_BYTES {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(DRAIN_FOR, drain).await;
        });
    }
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.body.as_mut() {
            Some(body) => std::pin::Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.body
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

/// Where a request body comes from: the client, or nothing (a request to an error page).
pub enum Source {
    /// The client's body.
    Incoming(ClientBody),
    /// No body.
    Empty,
}

/// A body longer than the route's `proxy-body-size`.
#[derive(Debug)]
struct TooLarge;

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("request body larger than the route allows")
    }
}

impl std::error::Error for TooLarge {}

/// Whether a failed upstream request failed because the client's body was too large.
fn is_too_large(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(e);
    while let Some(error) = source {
        if error.is::<TooLarge>() {
            return true;
        }
        source = error.source();
    }
    false
}

/// A request body that stays in a shared slot until the client first reads it, so that a
/// request whose connect failed can be sent again, body included, to another endpoint. Cut
/// with an error past the route's body limit.
pub struct RetryBody {
    slot: Arc<Mutex<Option<Source>>>,
    taken: Option<Source>,
    limit: Option<u64>,
    read: u64,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Body for RetryBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.taken.is_none() {
            let body = self.slot.lock().unwrap().take();
            match body {
                Some(body) => self.taken = Some(body),
                None => return Poll::Ready(None),
            }
        }
        let this = &mut *self;
        let frame = match this.taken.as_mut() {
            Some(Source::Incoming(body)) => std::pin::Pin::new(body).poll_frame(cx),
            _ => return Poll::Ready(None),
        };
        match frame {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.read += data.len() as u64;
                    if this.limit.is_some_and(|limit| this.read > limit) {
                        return Poll::Ready(Some(Err(Box::new(TooLarge))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        let ended = |source: &Source| match source {
            Source::Incoming(body) => body.is_end_stream(),
            Source::Empty => true,
        };
        match &self.taken {
            Some(source) => ended(source),
            None => self.slot.lock().unwrap().as_ref().is_none_or(ended),
        }
    }

    fn size_hint(&self) -> SizeHint {
        let hint = |source: &Source| match source {
            Source::Incoming(body) => body.size_hint(),
            Source::Empty => SizeHint::with_exact(0),
        };
        match &self.taken {
            Some(source) => hint(source),
            None => self
                .slot
                .lock()
                .unwrap()
                .as_ref()
                .map_or_else(|| SizeHint::with_exact(0), hint),
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
