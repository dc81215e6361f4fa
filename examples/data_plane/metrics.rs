//! Prometheus metrics of the data plane (`--metrics ADDR`), in the OpenMetrics text format of
//! the `prometheus-client` crate.
//!
//! Every series is labelled by what the configuration holds — listener controller, Ingress,
//! backend — and never by what a client sends (host, path, method), so that the number of
//! series is bounded by the configuration. Requests that matched no route (`404`, `400`,
//! `414`, `421` and the `308` redirects the routing layer answers itself) are counted with
//! `namespace`, `ingress` and `service` empty. Series of Ingresses that have been removed stay
//! until the process restarts, as their counters do in Prometheus.
//!
//! The metrics are process-wide: [`enable`] creates them, and until it is called every hook
//! here does nothing. On the request path a request costs one lookup of its route's series
//! (a hash of controller, Ingress and backend, under a read lock; no allocation once the
//! route has been seen), one counter increment and one histogram observation.

use std::hash::BuildHasher;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use foldhash::fast::RandomState;
use hashbrown::HashTable;
use http::{Response, StatusCode};
use http_body_util::Full;
use ingress_router::{Backend, MatchedRoute, ObjectRef};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The content type of the exposition: OpenMetrics text, which Prometheus scrapes natively.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The upper bounds of the latency histogram's buckets, in seconds: 0.5 ms to 10 s in steps
/// of 1, 2.5 and 5 per decade (`+Inf` follows).
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The `status` label values, by the status code's hundreds (`other`: 600 to 999, which
/// HTTP does not define).
const STATUS_CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"];

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// Creates the process's metrics (once; later calls return the same) and switches the hooks
/// of this module on.
pub fn enable() -> &'static Metrics {
    METRICS.get_or_init(Metrics::new)
}

/// Why the proxy answered a routed request itself with a gateway error, set in the response's
/// extensions by forwarding and counted by [`record_request`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamFailure {
    /// No endpoint answered: connects refused or failed, exchanges broken (`502`).
    Error,
    /// The endpoint did not answer in time (`504`).
    Timeout,
}

/// Marks `response` as the proxy's answer to an upstream `failure`, for [`record_request`].
pub fn mark<B>(failure: UpstreamFailure, mut response: Response<B>) -> Response<B> {
    if METRICS.get().is_some() {
        response.extensions_mut().insert(failure);
    }
    response
}

/// Counts one answered request of a listener for `controller`: its status class and latency
/// (from `started` to the response head), by its [`MatchedRoute`], and the upstream failure
/// [`mark`]ed on it, if any.
pub fn record_request<B>(controller: &Arc<str>, response: &Response<B>, started: Instant) {
    if let Some(metrics) = METRICS.get() {
        metrics.request(controller, response, started.elapsed().as_secs_f64());
    }
}

/// Counts a client connection of a listener for `controller` (`tls`: an https one) as open
/// until the returned guard is dropped.
#[must_use = "the connection counts as open while the guard lives"]
pub fn connection_opened(controller: &Arc<str>, tls: bool) -> Option<OpenConnection> {
    let metrics = METRICS.get()?;
    let labels = ListenerLabels {
        controller: Arc::clone(controller),
        scheme: if tls { "https" } else { "http" },
    };
    metrics.connections.get_or_create(&labels).inc();
    let open = metrics.connections_open.get_or_create_owned(&labels);
    open.inc();
    Some(OpenConnection(open))
}

/// Counts a reload of the configuration, successful or not.
pub fn reloaded(ok: bool) {
    let Some(metrics) = METRICS.get() else {
        return;
    };
    let outcome = if ok { "ok" } else { "failed" };
    metrics
        .reloads
        .get_or_create(&ReloadLabels { outcome })
        .inc();
    metrics.last_reload_successful.set(i64::from(ok));
    if ok {
        metrics.last_reload_success.set(unix_seconds());
    }
}

/// An open connection: decrements the open-connections gauge when dropped.
pub struct OpenConnection(Gauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Labels of a route's series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    /// The listener's controller; `-` for listeners serving every Ingress.
    controller: Arc<str>,
    /// The Ingress's namespace (the backend's, for the controller's default backend).
    namespace: Arc<str>,
    /// The Ingress's name; empty for the controller's default backend and unrouted requests.
    ingress: Arc<str>,
    /// The backend: `NAME:PORT` of a Service, `KIND/NAME` of a resource.
    service: Arc<str>,
}

/// Labels of the request counter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    #[prometheus(flatten)]
    route: RouteLabels,
    /// `1xx` to `5xx`.
    status: &'static str,
}

/// Labels of the connection series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ListenerLabels {
    controller: Arc<str>,
    /// `http` or `https`.
    scheme: &'static str,
}

/// Labels of the reload counter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReloadLabels {
    /// `ok` or `failed`.
    outcome: &'static str,
}

/// What a route's series are looked up by: the listener's controller, the Ingress and the
/// backend (`None` for both: no route).
#[derive(Clone, Copy)]
struct RouteKey<'a> {
    controller: &'a str,
    ingress: Option<&'a ObjectRef>,
    backend: Option<&'a Backend>,
}

impl RouteKey<'_> {
    fn hash(&self, state: &RandomState) -> u64 {
        state.hash_one((self.controller, self.ingress, self.backend))
    }

    fn labels(&self) -> RouteLabels {
        let namespace = match (self.ingress, self.backend) {
            (Some(ingress), _) => ingress.namespace.as_deref().unwrap_or_default(),
            (None, Some(Backend::Service(s))) => &s.namespace,
            (None, Some(Backend::Resource(r))) => &r.namespace,
            (None, None) => "",
        };
        let service = match self.backend {
            Some(Backend::Service(s)) => format!("{}:{}", s.name, s.port),
            Some(Backend::Resource(r)) => match &r.api_group {
                Some(group) => format!("{}.{group}/{}", r.kind, r.name),
                None => format!("{}/{}", r.kind, r.name),
            },
            None => String::new(),
        };
        RouteLabels {
            controller: self.controller.into(),
            namespace: namespace.into(),
            ingress: self.ingress.map_or("", |i| i.name.as_str()).into(),
            service: service.into(),
        }
    }
}

/// The series of one route, cached so that a request finds them with one lookup (they share
/// their values with the families' series).
struct RouteSeries {
    /// The key's owned parts.
    controller: Arc<str>,
    ingress: Option<ObjectRef>,
    backend: Option<Backend>,
    labels: RouteLabels,
    /// Request counters by status class, created at the first request of the class.
    requests: [OnceLock<Counter>; STATUS_CLASSES.len()],
    duration: Histogram,
    upstream_errors: OnceLock<Counter>,
    upstream_timeouts: OnceLock<Counter>,
}

impl RouteSeries {
    fn is(&self, key: &RouteKey<'_>) -> bool {
        *self.controller == *key.controller
            && self.ingress.as_ref() == key.ingress
            && self.backend.as_ref() == key.backend
    }
}

/// The metrics: their registry, and the series of the routes seen so far.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
    upstream_errors: Family<RouteLabels, Counter>,
    upstream_timeouts: Family<RouteLabels, Counter>,
    connections_open: Family<ListenerLabels, Gauge>,
    connections: Family<ListenerLabels, Counter>,
    reloads: Family<ReloadLabels, Counter>,
    last_reload_successful: Gauge,
    last_reload_success: Gauge,
    /// The routes' series, by [`RouteKey`].
    routes: RwLock<HashTable<RouteSeries>>,
    hasher: RandomState,
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("ingress_router");
        let requests = Family::default();
        registry.register(
            "requests",
            "Requests answered, by listener controller, Ingress, backend and status class",
            requests.clone(),
        );
        let duration: Family<RouteLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS));
        registry.register(
            "request_duration_seconds",
            "Time from a request's arrival to its response head, by listener controller, \
             Ingress and backend",
            duration.clone(),
        );
        let upstream_errors = Family::default();
        registry.register(
            "upstream_errors",
            "Requests answered 502 because no endpoint of the backend answered",
            upstream_errors.clone(),
        );
        let upstream_timeouts = Family::default();
        registry.register(
            "upstream_timeouts",
            "Requests answered 504 because the backend's endpoint did not answer in time",
            upstream_timeouts.clone(),
        );
        let connections_open = Family::default();
        registry.register(
            "connections_open",
            "Client connections open, by listener controller and scheme",
            connections_open.clone(),
        );
        let connections = Family::default();
        registry.register(
            "connections",
            "Client connections accepted (TLS ones once their handshake succeeded)",
            connections.clone(),
        );
        let reloads = Family::default();
        registry.register(
            "reloads",
            "Reloads of the manifest files (on change and on SIGHUP), by outcome",
            reloads.clone(),
        );
        let last_reload_successful = Gauge::default();
        registry.register(
            "last_reload_successful",
            "Whether the last reload succeeded (1) or the previous configuration kept serving (0)",
            last_reload_successful.clone(),
        );
        let last_reload_success = Gauge::default();
        registry.register(
            "last_reload_success_timestamp_seconds",
            "When the configuration serving was loaded (at start, or by the last successful \
             reload), in seconds since the Unix epoch",
            last_reload_success.clone(),
        );
        last_reload_successful.set(1);
        last_reload_success.set(unix_seconds());
        Metrics {
            registry,
            requests,
            duration,
            upstream_errors,
            upstream_timeouts,
            connections_open,
            connections,
            reloads,
            last_reload_successful,
            last_reload_success,
            routes: RwLock::new(HashTable::new()),
            hasher: RandomState::default(),
        }
    }

    /// The exposition of every metric, OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String does not fail");
        text
    }

    fn request<B>(&self, controller: &Arc<str>, response: &Response<B>, seconds: f64) {
        let route = response.extensions().get::<MatchedRoute>();
        let key = RouteKey {
            controller,
            ingress: route.and_then(MatchedRoute::ingress),
            backend: route.map(MatchedRoute::backend),
        };
        let class = (usize::from(response.status().as_u16() / 100) - 1).min(5);
        let failure = response.extensions().get::<UpstreamFailure>();
        self.with_series(controller, &key, |series| {
            series.requests[class]
                .get_or_init(|| {
                    let labels = RequestLabels {
                        route: series.labels.clone(),
                        status: STATUS_CLASSES[class],
                    };
                    self.requests.get_or_create_owned(&labels)
                })
                .inc();
            series.duration.observe(seconds);
            let (counter, family) = match failure {
                Some(UpstreamFailure::Error) => (&series.upstream_errors, &self.upstream_errors),
                Some(UpstreamFailure::Timeout) => {
                    (&series.upstream_timeouts, &self.upstream_timeouts)
                }
                None => return,
            };
            counter
                .get_or_init(|| family.get_or_create_owned(&series.labels))
                .inc();
        });
    }

    /// Calls `record` with the series of a route: from the cache, under its read lock, else
    /// created (once per route).
    fn with_series(
        &self,
        controller: &Arc<str>,
        key: &RouteKey<'_>,
        record: impl FnOnce(&RouteSeries),
    ) {
        let hash = key.hash(&self.hasher);
        let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
        if let Some(series) = routes.find(hash, |s| s.is(key)) {
            return record(series);
        }
        drop(routes);
        let mut routes = self.routes.write().unwrap_or_else(|e| e.into_inner());
        if let Some(series) = routes.find(hash, |s| s.is(key)) {
            return record(series);
        }
        let labels = key.labels();
        let series = RouteSeries {
            controller: Arc::clone(controller),
            ingress: key.ingress.cloned(),
            backend: key.backend.cloned(),
            duration: self.duration.get_or_create_owned(&labels),
            labels,
            requests: Default::default(),
            upstream_errors: OnceLock::new(),
            upstream_timeouts: OnceLock::new(),
        };
        let hasher = &self.hasher;
        let entry = routes.insert_unique(hash, series, |s| {
            RouteKey {
                controller: &s.controller,
                ingress: s.ingress.as_ref(),
                backend: s.backend.as_ref(),
            }
            .hash(hasher)
        });
        record(entry.get());
    }
}

fn unix_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The answer to a scrape of `path`: the exposition at `/metrics`, else `404`.
pub fn answer(path: &str, metrics: &Metrics) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match path {
        "/metrics" => (StatusCode::OK, CONTENT_TYPE, metrics.encode()),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found\n".to_owned(),
        ),
    };
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response")
}
