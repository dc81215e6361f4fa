//! Serving: listeners, TLS handshakes, HTTP/1.1 and HTTP/2 connections, the access log, and
//! the limits that bound what a client can make the proxy hold.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use ingress_router::{
    strip_client_forwarding, CertResolver, ClientAddr, IngressLayer, MatchedRoute, NginxConfig,
    Refusal, TlsInfo,
};
use rustls::crypto::CryptoProvider;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::{ServiceBuilder, ServiceExt};

use crate::proxy::forward::{forward, request_host, ClientBody, Upstream};
use crate::proxy::Limits;

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

/// What every listener of a data plane shares.
#[derive(Clone)]
pub struct Edge {
    /// Limits and timeouts.
    pub limits: Arc<Limits>,
    /// Client connections served at once, over every listener.
    pub connections: Arc<Semaphore>,
    /// Becomes `true` when the data plane stops: listeners stop accepting, connections finish
    /// the requests they have.
    pub stopping: watch::Receiver<bool>,
    /// Which peers are trusted proxies (`use-forwarded-headers`, `proxy-real-ip-cidr`).
    pub nginx: Arc<NginxConfig>,
    /// The serving threads accepted connections go to, when there are several.
    pub workers: Option<Workers>,
}

/// A connection to serve, handed to a serving thread.
type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Serving threads, each with a single-threaded runtime, that accepted connections are handed
/// to in turn: every thread gets as many connections as the next, whatever their addresses.
/// A thread ends once every listener has stopped and its connections have finished.
#[derive(Clone)]
pub struct Workers {
    jobs: Arc<[mpsc::UnboundedSender<Job>]>,
    next: Arc<AtomicUsize>,
}

impl Workers {
    /// Starts `threads` serving threads; `done` gets a future per thread that finishes with it
    /// (dropping that future stops the thread's connections).
    pub fn start(
        threads: usize,
        mut done: impl FnMut(Pin<Box<dyn Future<Output = ()> + Send>>),
    ) -> std::io::Result<Workers> {
        let mut jobs = Vec::with_capacity(threads);
        for index in 0..threads {
            let (sender, receiver) = mpsc::unbounded_channel::<Job>();
            jobs.push(sender);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (finished, on_finish) = tokio::sync::oneshot::channel::<()>();
            let (abort, aborted) = tokio::sync::oneshot::channel::<()>();
            std::thread::Builder::new()
                .name(format!("serve-{index}"))
                .spawn(move || {
                    crate::proxy::forward::serving_thread(index);
                    runtime.block_on(async move {
                        tokio::select! {
                            () = Workers::run(receiver) => {}
                            _ = aborted => {}
                        }
                    });
                    let _ = finished.send(());
                })?;
            done(Box::pin(async move {
                let _abort = abort;
                let _ = on_finish.await;
            }));
        }
        Ok(Workers {
            jobs: jobs.into(),
            next: Arc::default(),
        })
    }

    /// A serving thread: its connections, until no listener is left to hand it more and they
    /// have finished.
    async fn run(mut jobs: mpsc::UnboundedReceiver<Job>) {
        let mut connections = JoinSet::new();
        while let Some(job) = jobs.recv().await {
            while connections.try_join_next().is_some() {}
            connections.spawn(job);
        }
        while connections.join_next().await.is_some() {}
    }

    /// Hands `job` to the next thread.
    fn hand(&self, job: Job) {
        let next = self.next.fetch_add(1, Ordering::Relaxed) % self.jobs.len();
        // A thread's receiver lives as long as any sender: sending fails only when the thread
        // was stopped past the shutdown deadline, and the connection is then dropped.
        let _ = self.jobs[next].send(job);
    }
}

/// A warning logged at most once a second, with the number of times it was suppressed.
struct Throttled {
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttled {
    fn new() -> Throttled {
        Throttled {
            last: None,
            suppressed: 0,
        }
    }

    fn warn(&mut self, message: impl std::fmt::Display) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < Duration::from_secs(1))
        {
            self.suppressed += 1;
            return;
        }
        if self.suppressed > 0 {
            tracing::warn!("{message} (and {} more since)", self.suppressed);
        } else {
            tracing::warn!("{message}");
        }
        self.last = Some(now);
        self.suppressed = 0;
    }
}

/// Accepts connections and serves each with HTTP/1.1 or HTTP/2: over TLS when `acceptor` is
/// set (ALPN), otherwise in cleartext (HTTP/2 by prior knowledge). Returns once the edge is
/// stopping and every connection has finished.
pub async fn serve(
    listener: TcpListener,
    routing: IngressLayer,
    acceptor: Option<TlsAcceptor>,
    upstream: Arc<Upstream>,
    controller: Option<String>,
    mut edge: Edge,
) {
    let controller: Arc<str> = controller.as_deref().unwrap_or("-").into();
    let mut connections = JoinSet::new();
    // Held by the listeners alone: a serving thread ends once every listener has stopped
    // (dropping its sender) and its connections have finished.
    let workers = edge.workers.take();
    let mut stopping = edge.stopping.clone();
    let mut accept_errors = Throttled::new();
    let mut refusals = Throttled::new();
    let mut backoff = Duration::from_millis(5);
    let local_port = listener.local_addr().map_or(0, |a| a.port());
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stopping.wait_for(|stop| *stop) => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => {
                backoff = Duration::from_millis(5);
                accepted
            }
            Err(e) => {
                // Out of file descriptors, say: wait before trying again, longer each time,
                // rather than spin on an error that accepting again will not clear.
                accept_errors.warn(format_args!("accept failed: {e}; retrying in {backoff:?}"));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&edge.connections).try_acquire_owned() else {
            // Full: closed at once, so that the client can go elsewhere instead of waiting.
            refusals.warn(format_args!(
                "refusing connections: {} open (--max-connections)",
                edge.limits.max_connections
            ));
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            peer,
            local_port,
            routing: routing.clone(),
            upstream: Arc::clone(&upstream),
            controller: Arc::clone(&controller),
            edge: edge.clone(),
        };
        let acceptor = acceptor.clone();
        if let Some(workers) = &workers {
            // To a serving thread, whose runtime takes the socket over.
            let Ok(stream) = stream.into_std() else {
                continue;
            };
            workers.hand(Box::pin(async move {
                let _permit = permit;
                match TcpStream::from_std(stream) {
                    Ok(stream) => connection.run(stream, acceptor).await,
                    Err(e) => tracing::debug!("connection from {peer}: {e}"),
                }
            }));
            continue;
        }
        // Reap finished connections so that the set does not grow without bound.
        while connections.try_join_next().is_some() {}
        connections.spawn(async move {
            let _permit = permit;
            connection.run(stream, acceptor).await;
        });
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// One client connection.
struct Connection {
    peer: SocketAddr,
    local_port: u16,
    routing: IngressLayer,
    upstream: Arc<Upstream>,
    controller: Arc<str>,
    edge: Edge,
}

/// What the idle watch of a connection sees: requests in flight, and a count of requests
/// started or finished that moves while the connection is busy.
#[derive(Default)]
struct Activity {
    in_flight: AtomicUsize,
    events: AtomicU64,
}

/// Marks a request in flight until dropped.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn new(activity: &Arc<Activity>) -> InFlight {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        activity.events.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(activity))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.events.fetch_add(1, Ordering::Relaxed);
    }
}

impl Connection {
    /// Serves `stream`, after a TLS handshake when `acceptor` is set.
    async fn run(self, stream: TcpStream, acceptor: Option<TlsAcceptor>) {
        let Some(acceptor) = acceptor else {
            self.serve(stream, None).await;
            return;
        };
        let peer = self.peer;
        let handshake = acceptor.accept(stream);
        let limit = self.edge.limits.header_read_timeout;
        let stream = match tokio::time::timeout(limit, handshake).await {
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
        self.serve(stream, Some(tls)).await;
    }

    /// Serves the connection until the client closes it, it stays idle too long, or the data
    /// plane stops (then after the requests in flight); `tls` goes into every request's
    /// extensions.
    async fn serve<I>(self, io: I, tls: Option<TlsInfo>)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Connection {
            peer,
            local_port,
            routing,
            upstream,
            controller,
            edge,
        } = self;
        let _open = crate::proxy::metrics::connection_opened(&controller, tls.is_some());
        let limits = Arc::clone(&edge.limits);
        // Forwarding headers from a trusted proxy are kept; anyone else's are removed before
        // routing, so that no policy and no backend reads a claimed address.
        let trusted = edge.nginx.trusts(peer.ip());
        let activity = Arc::new(Activity::default());
        let proxy = {
            let upstream = Arc::clone(&upstream);
            ServiceBuilder::new().layer(routing).service_fn(move |req| {
                forward(Arc::clone(&upstream), peer, trusted, local_port, req)
            })
        };
        let body_timeout = limits.body_read_timeout;
        let service = {
            let activity = Arc::clone(&activity);
            hyper::service::service_fn(move |req: Request<Incoming>| {
                let in_flight = InFlight::new(&activity);
                let mut req = req.map(|body| ClientBody::new(body, body_timeout));
                if !trusted {
                    strip_client_forwarding(req.headers_mut());
                }
                if let Some(tls) = &tls {
                    req.extensions_mut().insert(tls.clone());
                }
                req.extensions_mut().insert(ClientAddr(peer));
                let proxy = proxy.clone();
                let controller = Arc::clone(&controller);
                async move {
                    let _in_flight = in_flight;
                    let started = Instant::now();
                    let access = AccessLog::start(&req);
                    let response = proxy.oneshot(req).await?;
                    if let Some(access) = access {
                        access.finish(&controller, &response, started);
                    }
                    crate::proxy::metrics::record_request(&controller, &response, started);
                    Ok::<_, Infallible>(response)
                }
            })
        };
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_buf_size(limits.max_header_bytes);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(limits.h2_max_streams)
            .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
            .keep_alive_interval(limits.h2_ping_interval)
            .keep_alive_timeout(limits.h2_ping_timeout);
        let connection = builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(connection);
        let mut stopping = edge.stopping.clone();
        let mut closing = false;
        let mut seen = activity.events.load(Ordering::Relaxed);
        // Idle means no request in flight and none started or finished for a whole limit: the
        // header-read timeout until a first request came, the keep-alive timeout after. Checked
        // four times per limit, so a connection closes within a quarter limit of it.
        let mut idle_since = Instant::now();
        loop {
            let limit = if seen == 0 {
                limits.header_read_timeout
            } else {
                limits.keepalive_timeout
            };
            tokio::select! {
                outcome = connection.as_mut() => {
                    if let Err(e) = outcome {
                        tracing::debug!("connection from {peer}: {e}");
                    }
                    return;
                }
                _ = stopping.wait_for(|stop| *stop), if !closing => {
                    closing = true;
                    connection.as_mut().graceful_shutdown();
                }
                _ = tokio::time::sleep(limit / 4), if !closing => {
                    let now = activity.events.load(Ordering::Relaxed);
                    if now != seen || activity.in_flight.load(Ordering::Relaxed) > 0 {
                        seen = now;
                        idle_since = Instant::now();
                    } else if idle_since.elapsed() >= limit {
                        tracing::debug!("connection from {peer}: idle for {limit:?}, closing");
                        closing = true;
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
        }
    }
}

/// The access log line of one request, when the `access` target logs at INFO: controller,
/// method, host, target, status, backend, latency. Nothing is copied from the request when
/// the line is off.
struct AccessLog {
    method: http::Method,
    host: String,
    target: Option<String>,
}

impl AccessLog {
    fn start<B>(req: &Request<B>) -> Option<AccessLog> {
        if !tracing::enabled!(target: "access", tracing::Level::INFO) {
            return None;
        }
        Some(AccessLog {
            method: req.method().clone(),
            host: request_host(req.headers(), req.uri()).unwrap_or_default(),
            target: req.uri().path_and_query().map(|p| p.to_string()),
        })
    }

    fn finish<B>(self, controller: &str, response: &Response<B>, started: Instant) {
        struct Backend<'r>(Option<&'r MatchedRoute>, Option<&'r Refusal>);
        impl std::fmt::Display for Backend<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match self {
                    Backend(Some(route), _) => route.backend().fmt(f),
                    Backend(None, Some(refusal)) => write!(f, "({refusal})"),
                    Backend(None, None) => f.write_str("-"),
                }
            }
        }
        let backend = Backend(
            response.extensions().get::<MatchedRoute>(),
            response.extensions().get::<Refusal>(),
        );
        tracing::info!(
            target: "access",
            "{controller} {} {} {} {} {backend} {}us",
            self.method,
            self.host,
            self.target.as_deref().unwrap_or("-"),
            response.status().as_u16(),
            started.elapsed().as_micros()
        );
    }
}
