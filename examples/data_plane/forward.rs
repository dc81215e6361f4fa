//! Forwarding: from a routed request to one of its backend's endpoints, and back.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use ingress_router::{
    strip_hop_by_hop, Backend, BackendProtocol, BodyLimit, ForwardedFor, ForwardedHeaders,
    MatchedRoute, NginxConfig, NginxPolicy, RoundRobin, TlsInfo,
};
use tokio::net::TcpStream;
use tokio::time::Sleep;

use crate::proxy::Limits;

/// The response body the proxy produces: a backend's, or one it writes itself.
pub type ProxyBody = BoxBody<Bytes, BoxError>;

/// How long an endpoint whose connect failed is tried only after the others.
const EJECT_FOR: Duration = Duration::from_secs(10);

/// What forwarding keeps between requests: the HTTP/1.1 connections to each endpoint, the
/// h2c client, the draws for weighted backends, the endpoint order, and the count of
/// connections and requests per endpoint.
pub struct Upstream {
    /// HTTP/2 in cleartext, for `backend-protocol: GRPC`.
    h2c: Client<Connector, RetryBody>,
    /// The ingress-nginx settings the routes' policies fall back to.
    nginx: Arc<NginxConfig>,
    limits: Arc<Limits>,
    /// Draws for [`ingress_router::MatchedRoute::pick_backend`]; a counter of its own, so that
    /// the backend chosen and the endpoint tried first are independent.
    draws: AtomicUsize,
    balancer: RoundRobin,
    /// Every endpoint, with its HTTP/1.1 pool.
    gates: Arc<Gates>,
    connect_timeout: Duration,
}

impl Upstream {
    /// Pooled HTTP/1.1 connections and an h2c client; connects time out after the ConfigMap's
    /// `proxy-connect-timeout`; idle connections are closed after `--upstream-idle-timeout`
    /// and beyond `--upstream-idle-per-host` (per serving thread, of which there are
    /// `threads`). Spawns the task that closes idle connections.
    pub fn new(nginx: Arc<NginxConfig>, limits: Arc<Limits>, threads: usize) -> Upstream {
        let connect_timeout = Duration::from_secs(u64::from(nginx.proxy_connect_timeout.max(1)));
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(connect_timeout));
        http.set_nodelay(true);
        let gates = Arc::new(Gates {
            gates: RwLock::default(),
            lanes: threads,
        });
        let connector = Connector {
            http,
            gates: Arc::clone(&gates),
            cap: limits.max_backend_connections,
        };
        let h2c = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(limits.upstream_idle_timeout)
            .pool_max_idle_per_host(limits.upstream_idle_per_host)
            .http2_only(true)
            .build(connector);
        let weak = Arc::downgrade(&gates);
        let timeout = limits.upstream_idle_timeout;
        tokio::spawn(async move {
            let period = (timeout / 4).max(Duration::from_millis(10));
            loop {
                tokio::time::sleep(period).await;
                let Some(gates) = weak.upgrade() else { return };
                gates.sweep(timeout);
            }
        });
        Upstream {
            h2c,
            nginx,
            limits,
            draws: AtomicUsize::new(0),
            balancer: RoundRobin::new(),
            gates,
            connect_timeout,
        }
    }

    /// Sends `request` to `gate`'s endpoint over HTTP/1.1: on an idle connection when one is
    /// ready, else on a new one (within `--max-backend-connections`). A request that an idle
    /// connection could not take (the backend closed it meanwhile) goes on a new connection.
    async fn send_h1(
        &self,
        gate: &Arc<Gate>,
        mut request: Request<RetryBody>,
    ) -> Result<(Response<Incoming>, http1::SendRequest<RetryBody>), Failure> {
        loop {
            let idle = gate.lane().lock().unwrap().pop();
            let Some(Idle { mut sender, .. }) = idle else {
                break;
            };
            if sender.ready().await.is_err() {
                continue;
            }
            match sender.try_send_request(request).await {
                Ok(response) => return Ok((response, sender)),
                Err(mut e) => match e.take_message() {
                    Some(unsent) => request = unsent,
                    None => return Err(Failure::Send(Box::new(e.into_error()))),
                },
            }
        }
        let mut sender = self.connect(gate).await?;
        match sender.send_request(request).await {
            Ok(response) => Ok((response, sender)),
            Err(e) => Err(Failure::Send(Box::new(e))),
        }
    }

    /// A new HTTP/1.1 connection to `gate`'s endpoint, counted against its connections for as
    /// long as it is open.
    async fn connect(&self, gate: &Arc<Gate>) -> Result<http1::SendRequest<RetryBody>, Failure> {
        let Some(admitted) =
            Admitted::try_new(Arc::clone(gate), true, self.limits.max_backend_connections)
        else {
            return Err(Failure::Busy);
        };
        let tcp =
            match tokio::time::timeout(self.connect_timeout, TcpStream::connect(gate.addr)).await {
                Ok(Ok(tcp)) => tcp,
                Ok(Err(e)) => return Err(Failure::Connect(e.to_string())),
                Err(_) => {
                    return Err(Failure::Connect(format!(
                        "connect timed out after {:?}",
                        self.connect_timeout
                    )))
                }
            };
        let _ = tcp.set_nodelay(true);
        let (sender, connection) = http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| Failure::Connect(e.to_string()))?;
        tokio::spawn(async move {
            let _admitted = admitted;
            if let Err(e) = connection.await {
                tracing::debug!("backend connection: {e}");
            }
        });
        Ok(sender)
    }
}

/// Why a request did not reach a backend.
enum Failure {
    /// The endpoint is at `--max-backend-connections`.
    Busy,
    /// Connecting failed: the request was not sent.
    Connect(String),
    /// Sending failed, or the backend gave no response.
    Send(BoxError),
}

/// One endpoint: its connections and requests in flight, and its idle HTTP/1.1 connections.
struct Gate {
    addr: SocketAddr,
    /// `addr` as a URI authority, written once.
    authority: http::uri::Authority,
    connections: AtomicUsize,
    requests: AtomicUsize,
    /// Idle connections, the most recently used last: a list per serving thread, so that a
    /// request takes a connection whose task runs on its own thread.
    idle: Box<[Mutex<Vec<Idle>>]>,
}

thread_local! {
    /// The serving thread this is (see [`serving_thread`]); 0 elsewhere.
    static LANE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Marks the current thread as serving thread `index` of [`Options::threads`](crate::proxy::Options):
/// it keeps its own idle backend connections.
pub fn serving_thread(index: usize) {
    LANE.with(|lane| lane.set(index));
}

/// An idle HTTP/1.1 connection, and since when.
struct Idle {
    sender: http1::SendRequest<RetryBody>,
    since: Instant,
}

impl Gate {
    /// Keeps `sender` for the next request, unless `cap` connections are idle already.
    fn check_in(&self, sender: http1::SendRequest<RetryBody>, cap: usize) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.lane().lock().unwrap();
        if idle.len() < cap {
            idle.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }

    /// The idle connections of the current thread.
    fn lane(&self) -> &Mutex<Vec<Idle>> {
        &self.idle[LANE.with(std::cell::Cell::get) % self.idle.len()]
    }

    fn new(addr: SocketAddr, lanes: usize) -> Gate {
        Gate {
            addr,
            authority: addr
                .to_string()
                .parse()
                .expect("a socket address is an authority"),
            connections: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
            idle: (0..lanes.max(1)).map(|_| Mutex::default()).collect(),
        }
    }
}

/// A [`Gate`] per endpoint.
struct Gates {
    gates: RwLock<HashMap<SocketAddr, Arc<Gate>>>,
    /// Serving threads, each with its own idle connections.
    lanes: usize,
}

impl Gates {
    fn get(&self, addr: SocketAddr) -> Arc<Gate> {
        if let Some(gate) = self.gates.read().unwrap().get(&addr) {
            return Arc::clone(gate);
        }
        let mut gates = self.gates.write().unwrap();
        // Endpoints come and go with Pods: forget the unused ones before the map grows large.
        if gates.len() >= 4096 {
            gates.retain(|_, gate| Arc::strong_count(gate) > 1);
        }
        Arc::clone(
            gates
                .entry(addr)
                .or_insert_with(|| Arc::new(Gate::new(addr, self.lanes))),
        )
    }

    /// Closes the idle connections older than `timeout`.
    fn sweep(&self, timeout: Duration) {
        let now = Instant::now();
        for gate in self.gates.read().unwrap().values() {
            for lane in &gate.idle {
                lane.lock()
                    .unwrap()
                    .retain(|idle| now.duration_since(idle.since) < timeout);
            }
        }
    }
}

/// One unit of a [`Gate`] counter, given back when dropped.
struct Admitted {
    gate: Arc<Gate>,
    connection: bool,
}

impl Admitted {
    /// One more of the gate's connections (or requests), unless `cap` are in use.
    fn try_new(gate: Arc<Gate>, connection: bool, cap: usize) -> Option<Admitted> {
        let counter = if connection {
            &gate.connections
        } else {
            &gate.requests
        };
        if counter.fetch_add(1, Ordering::AcqRel) >= cap {
            counter.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Admitted { gate, connection })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let counter = if self.connection {
            &self.gate.connections
        } else {
            &self.gate.requests
        };
        counter.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The backend connector: TCP, with at most `cap` connections open to one endpoint.
#[derive(Clone)]
struct Connector {
    http: HttpConnector,
    gates: Arc<Gates>,
    cap: usize,
}

/// Connecting would go over `--max-backend-connections`.
#[derive(Debug, thiserror::Error)]
#[error("{0}: too many connections open (--max-backend-connections)")]
struct TooManyConnections(SocketAddr);

impl tower::Service<Uri> for Connector {
    type Response = Counted;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Counted, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        tower::Service::<Uri>::poll_ready(&mut self.http, cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let addr = uri
            .authority()
            .and_then(|a| a.as_str().parse::<SocketAddr>().ok());
        let admitted = match addr {
            Some(addr) => match Admitted::try_new(self.gates.get(addr), true, self.cap) {
                Some(admitted) => Some(admitted),
                None => return Box::pin(std::future::ready(Err(TooManyConnections(addr).into()))),
            },
            None => None,
        };
        let connecting = tower::Service::<Uri>::call(&mut self.http, uri);
        Box::pin(async move {
            let io = connecting.await?;
            Ok(Counted {
                io,
                _admitted: admitted,
            })
        })
    }
}

/// A backend connection, counted against its endpoint's connections while open.
struct Counted {
    io: TokioIo<TcpStream>,
    _admitted: Option<Admitted>,
}

impl Connection for Counted {
    fn connected(&self) -> Connected {
        self.io.connected()
    }
}

impl hyper::rt::Read for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}

/// Forwards one routed request to its backend.
pub async fn forward(
    upstream: Arc<Upstream>,
    peer: SocketAddr,
    trusted: bool,
    local_port: u16,
    req: Request<ClientBody>,
) -> Result<Response<ProxyBody>, Infallible> {
    let Some(route) = req.extensions().get::<MatchedRoute>().cloned() else {
        // The routing layer only calls in with a match.
        return Ok(reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unrouted request".into(),
        ));
    };
    // `--request-timeout` bounds the whole exchange: the wait for the response head below,
    // and the response body, which is cut when the deadline passes.
    let deadline = upstream
        .limits
        .request_timeout
        .map(|limit| tokio::time::Instant::now() + limit);
    let client = Caller {
        peer,
        trusted,
        local_port,
        deadline,
    };
    let mut response = forward_to(&upstream, &client, &route, req).await;
    response.extensions_mut().insert(route);
    Ok(response)
}

/// Where a request came from, and until when it may take.
struct Caller {
    peer: SocketAddr,
    /// Whether the peer is a trusted proxy (`NginxConfig::trusts`), decided per connection.
    trusted: bool,
    /// The port the client connected to.
    local_port: u16,
    deadline: Option<tokio::time::Instant>,
}

impl Caller {
    /// What the proxy says about the client in `X-Forwarded-*` and `X-Real-IP`.
    fn forwarded(
        &self,
        nginx: &NginxConfig,
        headers: &HeaderMap,
        host: Option<HeaderValue>,
        tls: bool,
    ) -> ForwardedHeaders {
        let peer = self.peer.ip();
        let trusted = self.trusted;
        ForwardedHeaders {
            peer,
            client: if trusted {
                nginx.client_ip(peer, headers.get_all(X_FORWARDED_FOR).iter())
            } else {
                peer
            },
            trusted,
            for_mode: if nginx.compute_full_forwarded_for {
                ForwardedFor::Append
            } else {
                ForwardedFor::Overwrite
            },
            proto: if tls { "https" } else { "http" },
            host,
            port: self.local_port,
        }
    }

    /// How long to wait for a response head: `limit`, or less when the request's deadline
    /// comes sooner.
    fn wait(&self, limit: Duration) -> Duration {
        match self.deadline {
            Some(deadline) => {
                limit.min(deadline.saturating_duration_since(tokio::time::Instant::now()))
            }
            None => limit,
        }
    }
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Who a request to the default backend stands in for (ingress-nginx's `X-*` headers).
struct StandIn {
    code: u16,
    /// The path becomes `/` (custom error pages), or stays (no endpoints).
    root: bool,
}

async fn forward_to(
    upstream: &Upstream,
    client: &Caller,
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
                    stand_in_for(upstream, client, route, &parts, body, &fallback, stand_in).await
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
    // The sticky endpoint first, then the others in their turn.
    let order = sticky.into_iter().chain(
        upstream
            .balancer
            .order(addresses)
            .filter(|a| Some(*a) != sticky),
    );

    let forwarded = client.forwarded(&upstream.nginx, &parts.headers, host_value(&parts), tls);
    let limit = parts.extensions.get::<BodyLimit>().map(|l| l.0);
    let slot = Arc::new(Mutex::new(Some(Source::Incoming(body))));
    let idempotent = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    // Connecting, sending the request and waiting for the response head, each within its
    // timeout (the route's, else the ConfigMap's): together they bound the exchange.
    let timeouts = match policy {
        Some(policy) => policy.timeouts(&upstream.nginx),
        None => NginxPolicy::default().timeouts(&upstream.nginx),
    };
    let wait = client.wait(timeouts.connect + timeouts.send + timeouts.read);
    let vhost = policy.and_then(NginxPolicy::upstream_vhost);
    let mut last_error = String::new();
    let mut busy = None;
    for (attempt, addr) in order.enumerate() {
        let addr = &addr;
        let gate = upstream.gates.get(*addr);
        let Some(_admitted) = Admitted::try_new(
            Arc::clone(&gate),
            false,
            upstream.limits.max_backend_requests,
        ) else {
            busy.get_or_insert(*addr);
            continue;
        };
        let outbound = match outbound_request(&parts, &gate, !h2c, &forwarded, vhost, &slot, limit)
        {
            Ok(outbound) => outbound,
            Err(e) => return reply(StatusCode::BAD_REQUEST, e),
        };
        let deadline = client.deadline;
        let exchange = async {
            if h2c {
                return match upstream.h2c.request(outbound).await {
                    Ok(response) => Ok(response.map(|body| {
                        let body = body.map_err(BoxError::from).boxed();
                        match deadline {
                            Some(at) => Deadline::new(body, at).boxed(),
                            None => body,
                        }
                    })),
                    Err(e) if find::<TooManyConnections>(&e).is_some() => Err(Failure::Busy),
                    Err(e) if e.is_connect() => Err(Failure::Connect(e.to_string())),
                    Err(e) => Err(Failure::Send(Box::new(e))),
                };
            }
            let (response, sender) = upstream.send_h1(&gate, outbound).await?;
            let idle_cap = upstream.limits.upstream_idle_per_host;
            Ok(response.map(|body| {
                let body = Pooled::new(body, Arc::clone(&gate), sender, idle_cap);
                match deadline {
                    Some(at) => Deadline::new(body, at).boxed(),
                    None => body.boxed(),
                }
            }))
        };
        let sent = tokio::time::timeout(wait, exchange).await;
        let Ok(sent) = sent else {
            let timeout = super::metrics::UpstreamFailure::Timeout;
            return super::metrics::mark(
                timeout,
                reply(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!("{backend}: {addr} did not answer within {wait:?}"),
                ),
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
                                upstream, client, route, &parts, empty, fallback, stand_in,
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
                return Response::from_parts(parts_out, body);
            }
            Err(Failure::Busy) => {
                busy.get_or_insert(*addr);
            }
            Err(Failure::Connect(e)) => {
                upstream.balancer.eject(*addr, Instant::now() + EJECT_FOR);
                last_error = format!("{addr}: {e}");
                tracing::debug!(attempt, "upstream {last_error}");
            }
            Err(Failure::Send(e)) => {
                if let Some(answer) = client_fault(&*e) {
                    return answer;
                }
                let unsent = slot.lock().unwrap().is_some();
                last_error = format!("{addr}: {e}");
                tracing::debug!(attempt, "upstream {last_error}");
                // Another endpoint gets the request only when this one cannot have seen it.
                if !(unsent && idempotent) {
                    break;
                }
            }
        }
    }
    if last_error.is_empty() {
        if let Some(addr) = busy {
            return reply(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "{backend}: {addr} is at its limit of connections or requests \
                     (--max-backend-connections, --max-backend-requests)"
                ),
            );
        }
    }
    super::metrics::mark(
        super::metrics::UpstreamFailure::Error,
        reply(
            StatusCode::BAD_GATEWAY,
            format!("{backend}: no endpoint answered ({last_error})"),
        ),
    )
}

/// Sends the request to the route's default backend instead, as ingress-nginx does for a
/// Service without endpoints (`X-Code: 503`, path kept) and for `custom-http-errors` (the
/// backend's status in `X-Code`, path `/`).
async fn stand_in_for(
    upstream: &Upstream,
    client: &Caller,
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
    let Some(addr) = upstream.balancer.order(addresses).next() else {
        return reply(StatusCode::SERVICE_UNAVAILABLE, "no default backend".into());
    };
    let mut parts = parts.clone();
    let original = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let host = host_value(&parts);
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
    let tls = parts.extensions.get::<TlsInfo>().is_some();
    let forwarded = client.forwarded(&upstream.nginx, &parts.headers, host, tls);
    let slot = Arc::new(Mutex::new(Some(body)));
    let gate = upstream.gates.get(addr);
    let outbound = match outbound_request(&parts, &gate, true, &forwarded, None, &slot, None) {
        Ok(outbound) => outbound,
        Err(e) => return reply(StatusCode::BAD_REQUEST, e),
    };
    let wait = client.wait(Duration::from_secs(u64::from(
        upstream.nginx.proxy_connect_timeout
            + upstream.nginx.proxy_send_timeout
            + upstream.nginx.proxy_read_timeout,
    )));
    let Ok(sent) = tokio::time::timeout(wait, upstream.send_h1(&gate, outbound)).await else {
        return super::metrics::mark(
            super::metrics::UpstreamFailure::Timeout,
            reply(
                StatusCode::GATEWAY_TIMEOUT,
                format!("{fallback}: {addr} did not answer within {wait:?}"),
            ),
        );
    };
    match sent {
        Ok((response, sender)) => {
            let idle_cap = upstream.limits.upstream_idle_per_host;
            let (mut parts, body) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            let body = Pooled::new(body, Arc::clone(&gate), sender, idle_cap);
            let body = match client.deadline {
                Some(at) => Deadline::new(body, at).boxed(),
                None => body.boxed(),
            };
            Response::from_parts(parts, body)
        }
        Err(Failure::Busy) => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{fallback}: {addr} is at its limit of connections"),
        ),
        Err(Failure::Connect(e)) => super::metrics::mark(
            super::metrics::UpstreamFailure::Error,
            reply(StatusCode::BAD_GATEWAY, format!("{fallback}: {addr}: {e}")),
        ),
        Err(Failure::Send(e)) => match client_fault(&*e) {
            Some(answer) => answer,
            None => super::metrics::mark(
                super::metrics::UpstreamFailure::Error,
                reply(StatusCode::BAD_GATEWAY, format!("{fallback}: {addr}: {e}")),
            ),
        },
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

/// The request to send to `addr`: the routed path and query, the original headers minus
/// hop-by-hop ones, the client's Host (or `upstream-vhost`), and the proxy's `X-Forwarded-*`.
fn outbound_request(
    parts: &http::request::Parts,
    gate: &Gate,
    origin_form: bool,
    forwarded: &ForwardedHeaders,
    vhost: Option<&HeaderValue>,
    slot: &Arc<Mutex<Option<Source>>>,
    limit: Option<u64>,
) -> Result<Request<RetryBody>, String> {
    // HTTP/1.1 in origin form (`GET /path`), HTTP/2 with its `:authority`.
    let mut uri = http::uri::Parts::default();
    if !origin_form {
        uri.scheme = Some(http::uri::Scheme::HTTP);
        uri.authority = Some(gate.authority.clone());
    }
    uri.path_and_query = Some(
        parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/")),
    );
    let uri = Uri::from_parts(uri).map_err(|e| format!("cannot forward: {e}"))?;
    let mut headers = parts.headers.clone();
    strip_hop_by_hop(&mut headers);
    match &forwarded.host {
        Some(host) => headers.insert(header::HOST, host.clone()),
        // HTTP/1.0 without a Host: HTTP/1.1 needs one, the endpoint's.
        None => headers.insert(
            header::HOST,
            HeaderValue::from_str(gate.authority.as_str()).expect("an authority is a header value"),
        ),
    };
    forwarded.apply(&mut headers);
    if let Some(vhost) = vhost {
        headers.insert(header::HOST, vhost.clone());
    }
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

/// The most bytes of a request body read and thrown away after an answer that did not need
/// it (a 413, say), so that a client still writing its body gets to read the answer, as
/// nginx's lingering close does.
const DRAIN_BYTES: u64 = 64 << 20;

/// How long such a body is read at most.
const DRAIN_FOR: Duration = Duration::from_secs(30);

/// A client's request body that, dropped unread, is drained (up to [`DRAIN_BYTES`] and
/// [`DRAIN_FOR`]) in the background: answering before the whole body arrived would otherwise
/// close the connection under a client that is still writing, which then sees a broken pipe
/// instead of the answer. Reading it fails with [`ClientError::Stalled`] when the client sends
/// nothing for `--body-read-timeout`, and with [`ClientError::Malformed`] when what it sends is
/// not a body (bad chunked framing, say).
pub struct ClientBody {
    body: Option<Incoming>,
    timeout: Duration,
    /// Armed when a read must wait; pushed back whenever a frame came since.
    timer: Option<Pin<Box<Sleep>>>,
    progressed: bool,
}

impl ClientBody {
    /// Wraps a client's body; `timeout` is the longest wait for its next frame.
    pub fn new(body: Incoming, timeout: Duration) -> ClientBody {
        ClientBody {
            body: Some(body),
            timeout,
            timer: None,
            progressed: false,
        }
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
        let timeout = self.timeout.min(DRAIN_FOR);
        runtime.spawn(async move {
            let drain = async {
                let mut read = 0u64;
                while let Ok(Some(Ok(frame))) = tokio::time::timeout(timeout, body.frame()).await {
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

/// What went wrong with a client's request body.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing came for the body-read timeout.
    #[error("the client sent no request body data for {0:?} (--body-read-timeout)")]
    Stalled(Duration),
    /// Not a valid body.
    #[error("invalid request body: {0}")]
    Malformed(hyper::Error),
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let Some(body) = this.body.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.progressed = true;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                Poll::Ready(Some(Err(Box::new(ClientError::Malformed(e)))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let deadline = tokio::time::Instant::now() + this.timeout;
                let rearm = std::mem::take(&mut this.progressed);
                poll_timer(&mut this.timer, deadline, rearm, cx)
                    .map(|()| Some(Err(Box::new(ClientError::Stalled(this.timeout)) as BoxError)))
            }
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

/// The answer when a request failed because of the client's body rather than the backend:
/// 413 over the route's limit, 408 when the client stalled, 400 when it was malformed.
fn client_fault(e: &(dyn std::error::Error + 'static)) -> Option<Response<ProxyBody>> {
    if find::<TooLarge>(e).is_some() {
        return Some(reply(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request entity too large".into(),
        ));
    }
    let fault = find::<ClientError>(e)?;
    let status = match fault {
        ClientError::Stalled(_) => StatusCode::REQUEST_TIMEOUT,
        ClientError::Malformed(_) => StatusCode::BAD_REQUEST,
    };
    Some(reply(status, fault.to_string()))
}

/// The first error of type `E` in the chain of `e`.
fn find<'e, E: std::error::Error + 'static>(
    mut e: &'e (dyn std::error::Error + 'static),
) -> Option<&'e E> {
    loop {
        if let Some(found) = e.downcast_ref::<E>() {
            return Some(found);
        }
        e = e.source()?;
    }
}

/// Polls a body's timer, armed for `at` the first time the body has to wait (and set to `at`
/// again when `rearm`), so that a body that never waits never touches the timer wheel.
fn poll_timer(
    timer: &mut Option<Pin<Box<Sleep>>>,
    at: tokio::time::Instant,
    rearm: bool,
    cx: &mut Context<'_>,
) -> Poll<()> {
    match timer {
        Some(timer) => {
            if rearm {
                timer.as_mut().reset(at);
            }
            timer.as_mut().poll(cx)
        }
        None => timer
            .insert(Box::pin(tokio::time::sleep_until(at)))
            .as_mut()
            .poll(cx),
    }
}

/// A response body cut when the request's deadline (`--request-timeout`) passes; the timer is
/// armed only when the body has to wait.
struct Deadline<B> {
    body: B,
    at: tokio::time::Instant,
    timer: Option<Pin<Box<Sleep>>>,
}

impl<B> Deadline<B> {
    fn new(body: B, at: tokio::time::Instant) -> Deadline<B> {
        Deadline {
            body,
            at,
            timer: None,
        }
    }
}

/// A backend's response body over a pooled HTTP/1.1 connection, which goes back to the pool
/// when the body has been read to its end (and is closed when the body is dropped before).
struct Pooled {
    body: Incoming,
    back: Option<(Arc<Gate>, http1::SendRequest<RetryBody>, usize)>,
}

impl Pooled {
    fn new(
        body: Incoming,
        gate: Arc<Gate>,
        sender: http1::SendRequest<RetryBody>,
        idle_cap: usize,
    ) -> Pooled {
        let mut pooled = Pooled {
            body,
            back: Some((gate, sender, idle_cap)),
        };
        if pooled.body.is_end_stream() {
            pooled.check_in();
        }
        pooled
    }

    fn check_in(&mut self) {
        if let Some((gate, sender, cap)) = self.back.take() {
            gate.check_in(sender, cap);
        }
    }
}

impl Body for Pooled {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => this.check_in(),
            Poll::Ready(Some(Ok(_))) if this.body.is_end_stream() => this.check_in(),
            Poll::Ready(Some(Err(_))) => this.back = None,
            _ => {}
        }
        polled.map_err(BoxError::from)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The response did not end before `--request-timeout`.
#[derive(Debug, thiserror::Error)]
#[error("response cut at the request deadline (--request-timeout)")]
struct Overdue;

impl<B: Body<Data = Bytes, Error = BoxError> + Unpin> Body for Deadline<B> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Pending => poll_timer(&mut this.timer, this.at, false, cx)
                .map(|()| Some(Err(Box::new(Overdue) as BoxError))),
            ready => ready,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
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
#[derive(Debug, thiserror::Error)]
#[error("request body larger than the route allows")]
struct TooLarge;

/// A request body that stays in a shared slot until the client first reads it, so that a
/// request whose connect failed can be sent again, body included, to another endpoint. Cut
/// with an error past the route's body limit.
pub struct RetryBody {
    slot: Arc<Mutex<Option<Source>>>,
    taken: Option<Source>,
    limit: Option<u64>,
    read: u64,
}

/// Any error, sent between tasks.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

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
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
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

/// The host the request is routed on, as [`request_host`] finds it, as a header value: the
/// `Host` header itself (no copy) unless the target carries an authority.
fn host_value(parts: &http::request::Parts) -> Option<HeaderValue> {
    match parts.uri.authority() {
        Some(authority) => HeaderValue::from_str(authority.as_str()).ok(),
        None => parts.headers.get(header::HOST).cloned(),
    }
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
