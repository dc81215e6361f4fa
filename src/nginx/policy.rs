//! What the annotations of one rule path compile to: the typed policy a route carries, and
//! how the request-level part of it decides a request.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode};

use super::config::NginxConfig;
use super::values::Cidr;
use crate::backend::Backend;

/// The protocol spoken to a route's backends (`backend-protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum BackendProtocol {
    /// HTTP/1.1 in cleartext, the default.
    #[default]
    Http,
    /// HTTP over TLS.
    Https,
    /// The client's scheme: HTTP for plain-HTTP clients, HTTPS for TLS clients.
    AutoHttp,
    /// gRPC: HTTP/2 in cleartext.
    Grpc,
    /// gRPC over TLS.
    Grpcs,
    /// FastCGI.
    Fcgi,
}

impl BackendProtocol {
    /// The annotation's spelling, e.g. `AUTO_HTTP`.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendProtocol::Http => "HTTP",
            BackendProtocol::Https => "HTTPS",
            BackendProtocol::AutoHttp => "AUTO_HTTP",
            BackendProtocol::Grpc => "GRPC",
            BackendProtocol::Grpcs => "GRPCS",
            BackendProtocol::Fcgi => "FCGI",
        }
    }
}

/// Timeouts towards a route's backends (`proxy-connect-timeout`, `proxy-read-timeout`,
/// `proxy-send-timeout`), with the ConfigMap's values where the annotations set none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Timeouts {
    /// To open a connection.
    pub connect: Duration,
    /// Between two reads of the response (the whole wait for its head included).
    pub read: Duration,
    /// Between two writes of the request.
    pub send: Duration,
}

/// Cookie affinity (`affinity: cookie` and `session-cookie-*`): a client's requests stick to
/// the endpoint named by a cookie that the proxy sets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct CookieAffinity {
    /// The cookie's name (`session-cookie-name`, default `INGRESSCOOKIE`).
    pub name: String,
    /// Its `Path` (`session-cookie-path`; default the rule path, `/` for regex paths).
    pub path: Option<String>,
    /// Its `Max-Age` in seconds (`session-cookie-max-age`).
    pub max_age: Option<u64>,
    /// Its `Expires`, in seconds from now (`session-cookie-expires`).
    pub expires: Option<u64>,
    /// Whether it is `Secure` (`session-cookie-secure`).
    pub secure: bool,
    /// Its `SameSite` (`session-cookie-samesite`: `None`, `Lax` or `Strict`).
    pub same_site: Option<String>,
    /// Its `Domain` (`session-cookie-domain`).
    pub domain: Option<String>,
    /// Whether a request whose endpoint is gone gets a new cookie
    /// (`session-cookie-change-on-failure`; otherwise the same value is kept, and requests
    /// are spread until it names a live endpoint again).
    pub change_on_failure: bool,
}

impl CookieAffinity {
    /// The cookie's value for an endpoint: a stable hex digest of its address.
    pub fn value_for(&self, endpoint: std::net::SocketAddr) -> String {
        // FNV-1a: stable across processes and versions, which a cookie must be.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in endpoint.to_string().bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{hash:016x}")
    }

    /// The `Set-Cookie` value naming `endpoint`.
    pub fn set_cookie(&self, endpoint: std::net::SocketAddr) -> String {
        let mut cookie = format!(
            "{}={}; Path={}",
            self.name,
            self.value_for(endpoint),
            self.path.as_deref().unwrap_or("/")
        );
        if let Some(domain) = &self.domain {
            cookie += &format!("; Domain={domain}");
        }
        if let Some(max_age) = self.max_age {
            cookie += &format!("; Max-Age={max_age}");
        }
        if let Some(expires) = self.expires {
            let at = std::time::SystemTime::now() + Duration::from_secs(expires);
            cookie += &format!("; Expires={}", http_date(at));
        }
        if self.secure {
            cookie += "; Secure";
        }
        if let Some(same_site) = &self.same_site {
            cookie += &format!("; SameSite={same_site}");
        }
        cookie + "; HttpOnly"
    }

    /// The cookie's value in `headers`, if the client sent one.
    pub fn cookie_value<'h>(&self, headers: &'h HeaderMap) -> Option<&'h str> {
        cookie(headers, &self.name)
    }
}

/// An IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(at: std::time::SystemTime) -> String {
    let secs = at
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let (year, month, day) = crate::model::civil_from_days(days as i64);
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{weekday}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        months[(month - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The value of cookie `name` among the `Cookie` headers.
pub(crate) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|line| line.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name).then_some(value)
        })
}

/// A redirect answered instead of proxying (`permanent-redirect`, `temporal-redirect`).
#[derive(Debug, Clone)]
pub(crate) struct Redirect {
    pub(crate) location: String,
    pub(crate) code: StatusCode,
    /// A location starting with `/` is sent as it is (`relative-redirects`), not made
    /// absolute.
    pub(crate) relative: bool,
}

/// The allow- and deny-lists of client addresses.
#[derive(Debug, Clone, Default)]
pub(crate) struct Access {
    pub(crate) deny: Vec<Cidr>,
    /// `None`: everyone not denied.
    pub(crate) allow: Option<Vec<Cidr>>,
    /// A list could not be read: the route is closed (503), as ingress-nginx denies the
    /// location.
    pub(crate) broken: bool,
}

impl Access {
    /// Whether `client` may use the route: the deny-list first, then the allow-list.
    fn admits(&self, client: Option<IpAddr>) -> bool {
        let Some(client) = client else {
            return self.allow.is_none();
        };
        if self.deny.iter().any(|c| c.contains(client)) {
            return false;
        }
        self.allow
            .as_ref()
            .is_none_or(|allow| allow.iter().any(|c| c.contains(client)))
    }
}

/// One allowed CORS origin: `scheme://host[:port]`, where the host may start with `*.`, which
/// stands for exactly one DNS label. Compared case-insensitively, as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OriginPattern {
    pub(crate) scheme: String,
    pub(crate) wildcard: bool,
    pub(crate) host: String,
    pub(crate) port: Option<String>,
}

impl OriginPattern {
    fn matches(&self, origin: &str) -> bool {
        let origin = origin.to_ascii_lowercase();
        let Some(rest) = origin
            .strip_prefix(self.scheme.as_str())
            .and_then(|r| r.strip_prefix("://"))
        else {
            return false;
        };
        let rest = match &self.port {
            Some(port) => match rest
                .strip_suffix(port.as_str())
                .and_then(|r| r.strip_suffix(':'))
            {
                Some(rest) => rest,
                None => return false,
            },
            None => rest,
        };
        if !self.wildcard {
            return rest == self.host;
        }
        match rest
            .strip_suffix(self.host.as_str())
            .and_then(|r| r.strip_suffix('.'))
        {
            Some(label) => {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }
            None => false,
        }
    }
}

/// CORS (`enable-cors` and `cors-*`).
#[derive(Debug, Clone)]
pub(crate) struct Cors {
    /// `None`: every origin (`*`).
    pub(crate) origins: Option<Vec<OriginPattern>>,
    pub(crate) methods: HeaderValue,
    pub(crate) headers: HeaderValue,
    pub(crate) expose: Option<HeaderValue>,
    pub(crate) credentials: bool,
    pub(crate) max_age: HeaderValue,
}

impl Cors {
    /// The CORS response headers for a request with these headers, if its origin is allowed.
    fn response_headers(&self, request: &HeaderMap) -> Option<HeaderMap> {
        let allow_origin = match &self.origins {
            None => HeaderValue::from_static("*"),
            Some(patterns) => {
                let origin = request.get(http::header::ORIGIN)?;
                let text = origin.to_str().ok()?;
                if !patterns.iter().any(|p| p.matches(text)) {
                    return None;
                }
                origin.clone()
            }
        };
        let mut headers = HeaderMap::new();
        use http::header::*;
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
        if self.credentials {
            headers.insert(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        headers.insert(ACCESS_CONTROL_ALLOW_METHODS, self.methods.clone());
        headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, self.headers.clone());
        if let Some(expose) = &self.expose {
            headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, expose.clone());
        }
        headers.insert(ACCESS_CONTROL_MAX_AGE, self.max_age.clone());
        Some(headers)
    }
}

/// A piece of a rewrite target: text, or a capture group of the path regex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    Text(String),
    Group(usize),
}

/// `rewrite-target` (and `x-forwarded-prefix`, which only comes with it).
#[derive(Debug, Clone)]
pub(crate) struct Rewrite {
    /// The rule path as ingress-nginx's `rewrite` matches it: case-insensitive, from the start.
    pub(crate) regex: regex::Regex,
    pub(crate) target: Vec<Piece>,
    /// The target has a `?`: the request's query is not appended.
    pub(crate) own_query: bool,
    pub(crate) prefix: Option<HeaderValue>,
}

impl Rewrite {
    /// The path and query the backend gets for a canonical `path` and the request's `query`;
    /// `None` when the regex does not match (the path is then sent as it is).
    fn apply(&self, path: &str, query: Option<&str>) -> Option<String> {
        let captures = self.regex.captures(path)?;
        let mut out = String::new();
        for piece in &self.target {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Group(n) => out.push_str(captures.get(*n).map_or("", |m| m.as_str())),
            }
        }
        if !out.starts_with('/') {
            out.insert(0, '/');
        }
        if let (false, Some(query)) = (self.own_query, query) {
            out.push(if out.contains('?') { '&' } else { '?' });
            out.push_str(query);
        }
        Some(out)
    }
}

/// How a canary route's requests are split (`canary-*`): the route's second backend is the
/// canary.
#[derive(Debug, Clone)]
pub(crate) struct Canary {
    pub(crate) header: Option<HeaderName>,
    pub(crate) header_value: Option<String>,
    pub(crate) header_pattern: Option<regex::Regex>,
    pub(crate) cookie: Option<String>,
    pub(crate) weight: u32,
    pub(crate) total: u32,
}

/// A process-wide sequence of pseudo-random draws for weighted canaries.
fn draw() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static SEED: std::sync::OnceLock<foldhash::fast::RandomState> = std::sync::OnceLock::new();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    SEED.get_or_init(foldhash::fast::RandomState::default)
        .hash_one(n)
}

impl Canary {
    /// Whether the request goes to the canary: by header, then cookie, then weight, as
    /// ingress-nginx's balancer decides.
    fn chooses(&self, headers: &HeaderMap) -> bool {
        if let Some(name) = &self.header {
            if let Some(value) = headers.get(name) {
                let value = value.as_bytes();
                if let Some(expected) = &self.header_value {
                    if value == expected.as_bytes() {
                        return true;
                    }
                } else if let Some(pattern) = &self.header_pattern {
                    if std::str::from_utf8(value).is_ok_and(|v| pattern.is_match(v)) {
                        return true;
                    }
                } else if value == b"always" {
                    return true;
                } else if value == b"never" {
                    return false;
                }
            }
        }
        if let Some(name) = &self.cookie {
            match cookie(headers, name) {
                Some("always") => return true,
                Some("never") => return false,
                _ => {}
            }
        }
        if self.weight == 0 {
            return false;
        }
        let total = u64::from(if self.total > 100 { self.total } else { 100 });
        draw() % total < u64::from(self.weight)
    }
}

/// The most client addresses a rate limit remembers at once.
const MAX_TRACKED: usize = 65_536;

/// `limit-rps` and `limit-connections`, per client address, for one route.
#[derive(Debug)]
pub(crate) struct ClientLimits {
    pub(crate) rps: Option<u32>,
    pub(crate) burst: u32,
    pub(crate) connections: Option<u32>,
    pub(crate) exempt: Vec<Cidr>,
    state: Mutex<HashMap<IpAddr, ClientState, foldhash::fast::RandomState>>,
}

#[derive(Debug)]
struct ClientState {
    /// Tokens left (scaled by 1000) and when they were counted.
    tokens: u64,
    at: Instant,
    in_flight: u32,
}

/// Held while a request counts against `limit-connections`.
#[derive(Debug)]
pub(crate) struct InFlight {
    limits: Arc<ClientLimits>,
    client: IpAddr,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.limits.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = state.get_mut(&self.client) {
            s.in_flight = s.in_flight.saturating_sub(1);
        }
    }
}

impl ClientLimits {
    pub(crate) fn new(
        rps: Option<u32>,
        burst: u32,
        connections: Option<u32>,
        exempt: Vec<Cidr>,
    ) -> ClientLimits {
        ClientLimits {
            rps,
            burst,
            connections,
            exempt,
            state: Mutex::new(HashMap::default()),
        }
    }

    /// Counts a request of `client`: `Err` when it goes over a limit.
    fn admit(self: &Arc<Self>, client: IpAddr) -> Result<Option<InFlight>, ()> {
        if self.exempt.iter().any(|c| c.contains(client)) {
            return Ok(None);
        }
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.len() >= MAX_TRACKED && !state.contains_key(&client) {
            // Forget clients that are idle and whose buckets are full again.
            let full = self.capacity();
            let rps = u64::from(self.rps.unwrap_or(0));
            state.retain(|_, s| {
                let elapsed = now.duration_since(s.at).as_millis() as u64;
                s.in_flight > 0 || s.tokens.saturating_add(elapsed.saturating_mul(rps)) < full
            });
        }
        let capacity = self.capacity();
        let entry = state.entry(client).or_insert(ClientState {
            tokens: capacity,
            at: now,
            in_flight: 0,
        });
        if self.connections.is_some_and(|max| entry.in_flight >= max) {
            return Err(());
        }
        if let Some(rps) = self.rps {
            let elapsed = now.duration_since(entry.at).as_millis() as u64;
            entry.tokens = (entry.tokens + elapsed * u64::from(rps)).min(capacity);
            entry.at = now;
            if entry.tokens < 1000 {
                return Err(());
            }
            entry.tokens -= 1000;
        }
        match self.connections {
            Some(_) => {
                entry.in_flight += 1;
                Ok(Some(InFlight {
                    limits: Arc::clone(self),
                    client,
                }))
            }
            None => Ok(None),
        }
    }

    fn capacity(&self) -> u64 {
        u64::from(self.rps.unwrap_or(0)) * u64::from(self.burst.max(1)) * 1000
    }
}

/// Redirect from the `www.` name of a host to the host, or the other way round
/// (`from-to-www-redirect`).
#[derive(Debug, Clone)]
pub(crate) struct WwwRedirect {
    pub(crate) from: String,
    pub(crate) to: String,
}

/// What the ingress-nginx annotations of one rule path compile to: put in its route's
/// [`Policy`](crate::Policy) by [`NginxAnnotations`](crate::NginxAnnotations).
///
/// The request-level part (redirects, allow- and deny-lists, rate limits, CORS, body size,
/// rewrites, the canary choice) is applied by [`IngressLayer`](crate::IngressLayer) when it is
/// given the same [`NginxConfig`] ([`IngressLayer::nginx`](crate::IngressLayer::nginx)). The
/// backend-level part is read by the forwarder through the accessors below.
#[derive(Debug, Clone, Default)]
pub struct NginxPolicy {
    pub(crate) redirect: Option<Redirect>,
    pub(crate) app_root: Option<String>,
    pub(crate) ssl_redirect: Option<bool>,
    pub(crate) force_ssl_redirect: Option<bool>,
    pub(crate) preserve_trailing_slash: bool,
    pub(crate) www: Option<WwwRedirect>,
    pub(crate) access: Option<Access>,
    /// `Some(None)`: no limit.
    pub(crate) body_limit: Option<Option<u64>>,
    pub(crate) cors: Option<Cors>,
    pub(crate) rewrite: Option<Rewrite>,
    pub(crate) canary: Option<Canary>,
    pub(crate) limits: Option<Arc<ClientLimits>>,
    pub(crate) upstream_vhost: Option<HeaderValue>,
    pub(crate) service_upstream: Option<bool>,
    pub(crate) default_backend: Option<Backend>,
    pub(crate) custom_errors: Vec<u16>,
    pub(crate) protocol: BackendProtocol,
    pub(crate) connect_timeout: Option<u32>,
    pub(crate) read_timeout: Option<u32>,
    pub(crate) send_timeout: Option<u32>,
    pub(crate) affinity: Option<CookieAffinity>,
}

impl NginxPolicy {
    /// The `Host` the backend receives instead of the client's (`upstream-vhost`).
    pub fn upstream_vhost(&self) -> Option<&HeaderValue> {
        self.upstream_vhost.as_ref()
    }

    /// Whether requests go to the Service's ClusterIP rather than its endpoints
    /// (`service-upstream`, or the ConfigMap's `service-upstream`).
    pub fn service_upstream(&self, config: &NginxConfig) -> bool {
        self.service_upstream.unwrap_or(config.service_upstream)
    }

    /// The protocol spoken to the backends (`backend-protocol`).
    pub fn backend_protocol(&self) -> BackendProtocol {
        self.protocol
    }

    /// The timeouts towards the backends.
    pub fn timeouts(&self, config: &NginxConfig) -> Timeouts {
        let secs = |v: Option<u32>, d: u32| Duration::from_secs(u64::from(v.unwrap_or(d)));
        Timeouts {
            connect: secs(self.connect_timeout, config.proxy_connect_timeout),
            read: secs(self.read_timeout, config.proxy_read_timeout),
            send: secs(self.send_timeout, config.proxy_send_timeout),
        }
    }

    /// The backend that answers for this route when its own has no endpoint, and that
    /// serves its custom error pages (`default-backend`, a Service of the Ingress's
    /// namespace, on port 80).
    pub fn default_backend(&self) -> Option<&Backend> {
        self.default_backend.as_ref()
    }

    /// The backend response statuses that the default backend answers instead
    /// (`custom-http-errors`, unless `disable-proxy-intercept-errors`).
    pub fn custom_http_errors(&self) -> &[u16] {
        &self.custom_errors
    }

    /// Cookie affinity, if set.
    pub fn affinity(&self) -> Option<&CookieAffinity> {
        self.affinity.as_ref()
    }

    /// Whether the policy has any request-level part.
    pub(crate) fn acts_on_requests(&self) -> bool {
        self.redirect.is_some()
            || self.app_root.is_some()
            || self.ssl_redirect.is_some()
            || self.force_ssl_redirect.is_some()
            || self.preserve_trailing_slash
            || self.www.is_some()
            || self.access.is_some()
            || self.body_limit.is_some()
            || self.cors.is_some()
            || self.rewrite.is_some()
            || self.canary.is_some()
            || self.limits.is_some()
    }
}

/// What the layer knows about a request when it applies a policy.
pub(crate) struct RequestView<'a> {
    pub(crate) method: &'a Method,
    pub(crate) headers: &'a HeaderMap,
    /// Over TLS (or, from a trusted proxy, `X-Forwarded-Proto: https`).
    pub(crate) tls: bool,
    /// The canonical host name.
    pub(crate) host: Option<&'a str>,
    /// The host as the client sent it, port included.
    pub(crate) raw_host: Option<&'a str>,
    /// The canonical path.
    pub(crate) path: &'a str,
    pub(crate) query: Option<&'a str>,
    /// The canonical path and the query, as routed (asked for by redirects only).
    pub(crate) target: &'a dyn Fn() -> std::borrow::Cow<'a, str>,
    /// The TCP peer; the client is found from it when a policy needs it.
    pub(crate) peer: Option<IpAddr>,
    /// Whether the host has TLS configured.
    pub(crate) tls_host: &'a dyn Fn() -> bool,
    /// Whether the path is exempt from https redirects (ACME challenges).
    pub(crate) exempt: &'a dyn Fn() -> bool,
    pub(crate) http_port: Option<u16>,
    pub(crate) https_port: Option<u16>,
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// A direct answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: &'static str,
}

impl Answer {
    fn new(status: StatusCode, body: &'static str) -> Answer {
        Answer {
            status,
            headers: HeaderMap::new(),
            body,
        }
    }

    fn redirect(status: StatusCode, location: &str) -> Answer {
        let mut answer = Answer::new(status, "");
        match HeaderValue::from_str(location) {
            Ok(value) => {
                answer.headers.insert(http::header::LOCATION, value);
            }
            Err(_) => answer = Answer::new(StatusCode::BAD_REQUEST, "bad request\n"),
        }
        answer
    }
}

/// What applying a policy decided for a forwarded request.
#[derive(Debug, Default)]
pub(crate) struct Forwarding {
    /// The path and query the backend receives instead.
    pub(crate) rewrite: Option<String>,
    /// Headers set on the request.
    pub(crate) request_headers: Vec<(HeaderName, HeaderValue)>,
    /// Headers added to the response.
    pub(crate) response_headers: Option<HeaderMap>,
    /// The index of the backend chosen among the route's (the canary's).
    pub(crate) backend: Option<usize>,
    /// The largest request body.
    pub(crate) body_limit: Option<u64>,
    pub(crate) in_flight: Option<InFlight>,
}

/// A request's target minus one trailing `/` (which turns `/` into nothing), as
/// ingress-nginx's redirects write it.
fn strip_one_slash(target: &str) -> &str {
    target.strip_suffix('/').unwrap_or(target)
}

fn port_suffix(port: Option<u16>, default: u16) -> String {
    match port {
        Some(p) if p != default => format!(":{p}"),
        _ => String::new(),
    }
}

/// Applies `policy` (if any) and the controller-wide settings of `config` to a request that
/// routed: a direct answer, or what to change before forwarding it.
pub(crate) fn decide(
    policy: Option<&NginxPolicy>,
    config: &NginxConfig,
    request: &RequestView<'_>,
) -> Result<Forwarding, Answer> {
    static DEFAULT: std::sync::LazyLock<NginxPolicy> =
        std::sync::LazyLock::new(NginxPolicy::default);
    let policy = policy.unwrap_or(&DEFAULT);
    let redirect_code =
        StatusCode::from_u16(config.http_redirect_code).unwrap_or(StatusCode::PERMANENT_REDIRECT);
    let scheme = if request.tls { "https" } else { "http" };
    let bare_host = request.host.unwrap_or_default();

    if let Some(www) = &policy.www {
        if request.host == Some(www.from.as_str()) {
            let port = match request.tls {
                true => request.https_port.unwrap_or(443),
                false => request.http_port.unwrap_or(80),
            };
            let target = (request.target)();
            let target = strip_one_slash(&target);
            let location = format!("{scheme}://{}:{port}{target}", www.to);
            return Err(Answer::redirect(redirect_code, &location));
        }
    }
    if let Some(root) = &policy.app_root {
        if request.path == "/" {
            let host = request.raw_host.unwrap_or(bare_host);
            let location = format!("{scheme}://{host}{root}");
            return Err(Answer::redirect(StatusCode::FOUND, &location));
        }
    }
    if let Some(redirect) = &policy.redirect {
        let location = match redirect.location.starts_with('/') && !redirect.relative {
            true => format!("{scheme}://{bare_host}{}", redirect.location),
            false => redirect.location.clone(),
        };
        return Err(Answer::redirect(redirect.code, &location));
    }
    let cors = policy
        .cors
        .as_ref()
        .and_then(|c| c.response_headers(request.headers));
    if let Some(cors) = &cors {
        if request.method == Method::OPTIONS {
            let mut answer = Answer::new(StatusCode::NO_CONTENT, "");
            answer.headers = cors.clone();
            answer.headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain charset=UTF-8"),
            );
            return Err(answer);
        }
    }
    let force = || {
        policy
            .force_ssl_redirect
            .unwrap_or(config.force_ssl_redirect)
    };
    let ssl = || policy.ssl_redirect.unwrap_or(config.ssl_redirect) && (request.tls_host)();
    if !request.tls && (force() || ssl()) && !(request.exempt)() {
        {
            let target = (request.target)();
            let target = match policy.preserve_trailing_slash {
                true => &*target,
                false => strip_one_slash(&target),
            };
            let port = port_suffix(request.https_port, 443);
            let location = format!("https://{bare_host}{port}{target}");
            return Err(Answer::redirect(redirect_code, &location));
        }
    }
    let mut forwarding = Forwarding::default();
    let client = || {
        let forwarded_for = request.headers.get_all(X_FORWARDED_FOR);
        request
            .peer
            .map(|peer| config.client_ip(peer, forwarded_for.iter()))
    };
    if let Some(limits) = &policy.limits {
        if let Some(client) = client() {
            match limits.admit(client) {
                Ok(in_flight) => forwarding.in_flight = in_flight,
                Err(()) => {
                    return Err(Answer::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "too many requests from this client\n",
                    ))
                }
            }
        }
    }
    if let Some(access) = &policy.access {
        if access.broken {
            return Err(Answer::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "location denied: its address ranges are invalid\n",
            ));
        }
        if !access.admits(client()) {
            return Err(Answer::new(StatusCode::FORBIDDEN, "forbidden\n"));
        }
    }
    let limit = policy.body_limit.unwrap_or(config.proxy_body_size);
    if let Some(limit) = limit {
        let length = request
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if length.is_some_and(|l| l > limit) {
            return Err(Answer::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request entity too large\n",
            ));
        }
        forwarding.body_limit = Some(limit);
    }
    if let Some(rewrite) = &policy.rewrite {
        forwarding.rewrite = rewrite.apply(request.path, request.query);
        if let Some(prefix) = &rewrite.prefix {
            forwarding.request_headers.push((
                HeaderName::from_static("x-forwarded-prefix"),
                prefix.clone(),
            ));
        }
    }
    if let Some(canary) = &policy.canary {
        forwarding.backend = Some(usize::from(canary.chooses(request.headers)));
    }
    forwarding.response_headers = cors;
    Ok(forwarding)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> OriginPattern {
        super::super::parse::origin_pattern(text).expect(text)
    }

    #[test]
    fn origins_match_whole_and_one_label_per_star() {
        let p = pattern("https://origin.cors.com:8080");
        assert!(p.matches("https://origin.cors.com:8080"));
        assert!(p.matches("HTTPS://ORIGIN.CORS.COM:8080"));
        assert!(!p.matches("evilhttps://origin.cors.com:8080"));
        assert!(!p.matches("https://origin.cors.com"));
        assert!(!p.matches("https://origin.cors.com:80801"));
        let w = pattern("http://*.origin.com:8080");
        assert!(w.matches("http://abc.origin.com:8080"));
        assert!(!w.matches("http://a.b.origin.com:8080"));
        assert!(!w.matches("http://abc.origin.com"));
        assert!(!w.matches("http://.origin.com:8080"));
        assert!(!pattern("https://foo.bar.com").matches("https://fooxbar.com"));
    }

    #[test]
    fn rewrites_substitute_groups_and_keep_the_query() {
        let rewrite = Rewrite {
            regex: crate::table::path_regex("/foo/bar/(.+)").unwrap(),
            target: super::super::parse::rewrite_target("/new/$1").unwrap().0,
            own_query: false,
            prefix: None,
        };
        assert_eq!(
            rewrite.apply("/foo/bar/a/b", Some("x=1")).as_deref(),
            Some("/new/a/b?x=1")
        );
        assert_eq!(rewrite.apply("/other", None), None);
    }

    #[test]
    fn canary_order_is_header_then_cookie_then_weight() {
        let mut headers = HeaderMap::new();
        let canary = Canary {
            header: Some(HeaderName::from_static("x-canary")),
            header_value: None,
            header_pattern: None,
            cookie: Some("c".into()),
            weight: 100,
            total: 100,
        };
        assert!(canary.chooses(&headers), "weight 100");
        headers.insert("x-canary", HeaderValue::from_static("never"));
        headers.insert(http::header::COOKIE, HeaderValue::from_static("c=always"));
        assert!(!canary.chooses(&headers), "the header's never wins");
        headers.insert("x-canary", HeaderValue::from_static("other"));
        assert!(canary.chooses(&headers), "falls through to the cookie");
        headers.insert(http::header::COOKIE, HeaderValue::from_static("c=never"));
        assert!(!canary.chooses(&headers));
    }

    #[test]
    fn rate_limits_refuse_past_the_burst_and_count_requests_in_flight() {
        let limits = Arc::new(ClientLimits::new(Some(2), 1, Some(1), Vec::new()));
        let client: IpAddr = "10.0.0.1".parse().unwrap();
        let first = limits.admit(client).expect("first");
        assert!(limits.admit(client).is_err(), "one in flight at most");
        drop(first);
        let _second = limits.admit(client).expect("second");
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(limits.admit(other).is_ok(), "per client");
        let rps = Arc::new(ClientLimits::new(Some(2), 1, None, Vec::new()));
        assert!(rps.admit(client).is_ok());
        assert!(rps.admit(client).is_ok());
        assert!(rps.admit(client).is_err(), "burst of 2 spent");
    }

    #[test]
    fn access_checks_the_deny_list_first() {
        let access = Access {
            deny: vec!["10.0.0.1".parse().unwrap()],
            allow: Some(vec!["10.0.0.0/8".parse().unwrap()]),
            broken: false,
        };
        assert!(access.admits(Some("10.0.0.2".parse().unwrap())));
        assert!(!access.admits(Some("10.0.0.1".parse().unwrap())));
        assert!(!access.admits(Some("192.0.2.1".parse().unwrap())));
        assert!(!access.admits(None));
    }

    #[test]
    fn cookie_dates_are_imf_fixdates() {
        let at = std::time::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(http_date(at), "Sun, 06 Nov 1994 08:49:37 GMT");
    }
}
