//! What a forwarder does to every request on its way to a backend, and how it picks the
//! endpoint: hop-by-hop headers removed, the client's forwarding headers removed or trusted,
//! the proxy's own `X-Forwarded-*` set, endpoints taken in turn with failed ones last.
//!
//! None of it allocates on the common path: no `Connection` header means no list of names to
//! remove, and an endpoint order is an iterator over the resolved addresses.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::RwLock;
use std::time::Instant;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Removes the headers that describe one connection rather than the message (RFC 9110
/// §7.6.1): `Connection`, the headers it names, `Keep-Alive`, `Proxy-Connection`,
/// `Proxy-Authenticate`, `Proxy-Authorization`, `TE`, `Trailer`, `Transfer-Encoding` and
/// `Upgrade`. Apply it to a request before forwarding it and to a response before returning it.
///
/// ```
/// use http::HeaderMap;
/// let mut headers = HeaderMap::new();
/// headers.insert("connection", "close, x-secret".parse().unwrap());
/// headers.insert("x-secret", "1".parse().unwrap());
/// headers.insert("te", "trailers".parse().unwrap());
/// headers.insert("accept", "*/*".parse().unwrap());
/// ingress_router::strip_hop_by_hop(&mut headers);
/// assert_eq!(headers.len(), 1);
/// assert!(headers.contains_key("accept"));
/// ```
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Names listed in `Connection` are removed first; the header itself is rare on HTTP/1.1
    // keep-alive traffic and absent on HTTP/2, so the common path collects nothing.
    while let Some(value) = headers.remove(header::CONNECTION) {
        if let Ok(text) = value.to_str() {
            for name in text.split(',') {
                if let Ok(name) = HeaderName::from_bytes(name.trim().as_bytes()) {
                    headers.remove(name);
                }
            }
        }
    }
    for name in HOP_BY_HOP {
        if headers.contains_key(&name) {
            headers.remove(name);
        }
    }
}

const HOP_BY_HOP: [HeaderName; 8] = [
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// `X-Forwarded-For`.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `X-Forwarded-Proto`.
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// `X-Forwarded-Host`.
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// `X-Forwarded-Port`.
const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
/// `X-Real-IP`.
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// Headers other than `X-Forwarded-*` by which a client could claim to be someone else, or
/// have a backend serve another URL than the routed one.
const SPOOFABLE: [HeaderName; 6] = [
    header::FORWARDED,
    X_REAL_IP,
    HeaderName::from_static("x-original-url"),
    HeaderName::from_static("x-rewrite-url"),
    HeaderName::from_static("true-client-ip"),
    HeaderName::from_static("x-client-ip"),
];

/// Removes what a client may not say about itself or about the URL a backend serves:
/// `Forwarded`, every `X-Forwarded-*` header, `X-Real-IP`, `X-Original-URL`, `X-Rewrite-URL`,
/// `True-Client-IP` and `X-Client-IP`. An edge applies it to every request from a client that
/// is not a trusted proxy, before routing (so that policies never read a claimed address) and
/// before [`ForwardedHeaders::apply`] sets the proxy's own.
///
/// ```
/// use http::HeaderMap;
/// let mut headers = HeaderMap::new();
/// headers.insert("x-forwarded-for", "10.0.0.1".parse().unwrap());
/// headers.insert("x-forwarded-anything", "1".parse().unwrap());
/// headers.insert("x-original-url", "/admin".parse().unwrap());
/// headers.insert("accept", "*/*".parse().unwrap());
/// ingress_router::strip_client_forwarding(&mut headers);
/// assert_eq!(headers.keys().collect::<Vec<_>>(), ["accept"]);
/// ```
pub fn strip_client_forwarding(headers: &mut HeaderMap) {
    for name in SPOOFABLE {
        if headers.contains_key(&name) {
            headers.remove(name);
        }
    }
    // One pass over the names when none is an X-Forwarded-* header (the common case).
    while let Some(name) = headers
        .keys()
        .find(|name| {
            let name = name.as_str().as_bytes();
            name.len() > 12 && name[..12].eq_ignore_ascii_case(b"x-forwarded-")
        })
        .cloned()
    {
        headers.remove(name);
    }
}

/// How `X-Forwarded-For` is written when the client is a trusted proxy. A client that is not
/// trusted never gets its own list forwarded: `X-Forwarded-For` is its address alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ForwardedFor {
    /// The client address as the trusted chain establishes it (for example with
    /// [`NginxConfig::client_ip`](crate::NginxConfig::client_ip)), alone: ingress-nginx's
    /// default (`compute-full-forwarded-for: false`). Backends see one address.
    #[default]
    Overwrite,
    /// The received list with the peer's address appended (ingress-nginx's
    /// `compute-full-forwarded-for: true`, and what Envoy and most proxies do): backends see
    /// the whole chain.
    Append,
}

/// The `X-Forwarded-*` and `X-Real-IP` headers a proxy sets on a request it forwards.
///
/// ```
/// use http::HeaderMap;
/// use ingress_router::{ForwardedFor, ForwardedHeaders};
///
/// let mut headers = HeaderMap::new();
/// headers.insert("x-forwarded-for", "198.51.100.7".parse().unwrap());
/// let forwarded = ForwardedHeaders {
///     peer: "10.0.0.2".parse().unwrap(),
///     client: "198.51.100.7".parse().unwrap(),
///     trusted: true,
///     for_mode: ForwardedFor::Append,
///     proto: "https",
///     host: Some("shop.example".parse().unwrap()),
///     port: 443,
/// };
/// forwarded.apply(&mut headers);
/// assert_eq!(headers["x-forwarded-for"], "198.51.100.7, 10.0.0.2");
/// assert_eq!(headers["x-real-ip"], "198.51.100.7");
/// assert_eq!(headers["x-forwarded-proto"], "https");
/// assert_eq!(headers["x-forwarded-host"], "shop.example");
/// assert_eq!(headers["x-forwarded-port"], "443");
/// ```
#[derive(Debug, Clone)]
pub struct ForwardedHeaders {
    /// The address the connection came from.
    pub peer: IpAddr,
    /// The client: the peer, or when the peer is a trusted proxy the address it forwarded.
    pub client: IpAddr,
    /// Whether the peer is a trusted proxy. Its `X-Forwarded-Proto`, `-Host` and `-Port` are
    /// then kept when present, and its `X-Forwarded-For` is treated as [`Self::for_mode`] says.
    pub trusted: bool,
    /// What a trusted peer's `X-Forwarded-For` becomes.
    pub for_mode: ForwardedFor,
    /// `http` or `https`: how the client reached the proxy.
    pub proto: &'static str,
    /// The host the client asked for (the routed one, port included as sent).
    pub host: Option<HeaderValue>,
    /// The port the client connected to.
    pub port: u16,
}

impl ForwardedHeaders {
    /// Sets `X-Forwarded-For`, `X-Real-IP`, `X-Forwarded-Proto`, `X-Forwarded-Host` and
    /// `X-Forwarded-Port`. From a peer that is not trusted, every one of them is overwritten;
    /// call [`strip_client_forwarding`] first for the headers the proxy does not set.
    pub fn apply(&self, headers: &mut HeaderMap) {
        let ip = |ip: IpAddr| HeaderValue::from(IpText::new(ip));
        let for_value = match (self.trusted, self.for_mode) {
            (true, ForwardedFor::Append) => {
                let mut list = Vec::with_capacity(64);
                for value in headers.get_all(&X_FORWARDED_FOR) {
                    if !list.is_empty() {
                        list.extend_from_slice(b", ");
                    }
                    list.extend_from_slice(value.as_bytes());
                }
                if !list.is_empty() {
                    list.extend_from_slice(b", ");
                }
                list.extend_from_slice(IpText::new(self.peer).as_bytes());
                HeaderValue::from_bytes(&list).unwrap_or_else(|_| ip(self.peer))
            }
            _ => ip(self.client),
        };
        headers.insert(X_FORWARDED_FOR, for_value);
        headers.insert(X_REAL_IP, ip(self.client));
        let keep =
            |headers: &HeaderMap, name: &HeaderName| self.trusted && headers.contains_key(name);
        if !keep(headers, &X_FORWARDED_PROTO) {
            headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(self.proto));
        }
        if !keep(headers, &X_FORWARDED_HOST) {
            match &self.host {
                Some(host) => {
                    headers.insert(X_FORWARDED_HOST, host.clone());
                }
                None => {
                    headers.remove(X_FORWARDED_HOST);
                }
            }
        }
        if !keep(headers, &X_FORWARDED_PORT) {
            headers.insert(X_FORWARDED_PORT, HeaderValue::from(self.port));
        }
    }
}

/// An IP address written out without allocating.
struct IpText {
    buf: [u8; 45],
    len: usize,
}

impl IpText {
    fn new(ip: IpAddr) -> IpText {
        use std::io::Write;
        let mut buf = [0u8; 45];
        let mut cursor = std::io::Cursor::new(&mut buf[..]);
        // 45 bytes hold the longest IPv6 text (IPv4-mapped, full form).
        write!(cursor, "{ip}").expect("an IP address fits in 45 bytes");
        let len = cursor.position() as usize;
        IpText { buf, len }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl From<IpText> for HeaderValue {
    fn from(ip: IpText) -> HeaderValue {
        HeaderValue::from_bytes(ip.as_bytes()).expect("an IP address is a header value")
    }
}

/// Endpoint choice: round-robin over a backend's addresses, with the ones whose connect failed
/// recently ([`RoundRobin::eject`]) tried after the others.
///
/// ```
/// use std::time::{Duration, Instant};
/// use ingress_router::RoundRobin;
///
/// let endpoints: Vec<std::net::SocketAddr> =
///     vec!["10.0.0.1:80".parse().unwrap(), "10.0.0.2:80".parse().unwrap()];
/// let balancer = RoundRobin::new();
/// let first: Vec<_> = balancer.order(&endpoints).collect();
/// let second: Vec<_> = balancer.order(&endpoints).collect();
/// assert_ne!(first[0], second[0]);
///
/// balancer.eject(endpoints[0], Instant::now() + Duration::from_secs(10));
/// for _ in 0..4 {
///     assert_eq!(balancer.order(&endpoints).collect::<Vec<_>>(), [endpoints[1], endpoints[0]]);
/// }
/// ```
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: AtomicUsize,
    /// How many endpoints are ejected: when none (the common case), an order takes no lock.
    ejected_count: AtomicUsize,
    ejected: RwLock<HashMap<SocketAddr, Instant>>,
}

impl RoundRobin {
    /// A balancer with no endpoint ejected.
    pub fn new() -> RoundRobin {
        RoundRobin::default()
    }

    /// The order in which to try `endpoints` for one request: from the next position
    /// round-robin, endpoints ejected until a time still to come last. Call it once per
    /// request: taking two orders for one request advances the position twice.
    pub fn order<'e>(&self, endpoints: &'e [SocketAddr]) -> EndpointOrder<'e> {
        let n = endpoints.len();
        let start = if n == 0 {
            0
        } else {
            self.next.fetch_add(1, Ordering::Relaxed) % n
        };
        let mut down = 0u64;
        if n > 0 && self.ejected_count.load(Ordering::Relaxed) > 0 {
            let now = Instant::now();
            let mut expired = false;
            {
                let ejected = self.ejected.read().unwrap_or_else(|e| e.into_inner());
                for (i, addr) in endpoints.iter().enumerate().take(64) {
                    match ejected.get(addr) {
                        Some(until) if *until > now => down |= 1 << i,
                        Some(_) => expired = true,
                        None => {}
                    }
                }
            }
            if expired {
                let mut ejected = self.ejected.write().unwrap_or_else(|e| e.into_inner());
                ejected.retain(|_, until| *until > now);
                self.ejected_count.store(ejected.len(), Ordering::Relaxed);
            }
        }
        EndpointOrder {
            endpoints,
            start,
            down,
            step: 0,
        }
    }

    /// Tries `endpoint` after the others until `until` (its connect failed, say).
    pub fn eject(&self, endpoint: SocketAddr, until: Instant) {
        let mut ejected = self.ejected.write().unwrap_or_else(|e| e.into_inner());
        ejected.insert(endpoint, until);
        self.ejected_count.store(ejected.len(), Ordering::Relaxed);
    }
}

/// The endpoints of one request in the order to try them, from [`RoundRobin::order`]:
/// every endpoint once, healthy ones first. Only the first 64 endpoints of a backend are told
/// apart as ejected; the others always count as healthy.
#[derive(Debug, Clone)]
pub struct EndpointOrder<'e> {
    endpoints: &'e [SocketAddr],
    start: usize,
    /// Bit `i`: endpoint `i` is ejected.
    down: u64,
    /// Position among the `2 n` steps: the first pass yields healthy endpoints, the second the
    /// ejected ones.
    step: usize,
}

impl Iterator for EndpointOrder<'_> {
    type Item = SocketAddr;

    fn next(&mut self) -> Option<SocketAddr> {
        let n = self.endpoints.len();
        while self.step < 2 * n {
            let pass = self.step / n;
            let i = (self.start + self.step % n) % n;
            self.step += 1;
            let ejected = i < 64 && self.down & (1 << i) != 0;
            if ejected == (pass == 1) {
                return Some(self.endpoints[i]);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn addrs(n: usize) -> Vec<SocketAddr> {
        (0..n)
            .map(|i| SocketAddr::from(([10, 0, (i / 256) as u8, (i % 256) as u8], 80)))
            .collect()
    }

    /// The naive order: rotate, then partition healthy before ejected.
    fn reference(endpoints: &[SocketAddr], start: usize, down: &[SocketAddr]) -> Vec<SocketAddr> {
        let n = endpoints.len();
        let rotated: Vec<_> = (0..n).map(|i| endpoints[(start + i) % n]).collect();
        let (mut up, ejected): (Vec<_>, Vec<_>) =
            rotated.into_iter().partition(|a| !down.contains(a));
        up.extend(ejected);
        up
    }

    #[test]
    fn order_matches_the_naive_rotation_and_partition() {
        for n in [0, 1, 2, 3, 7, 64] {
            let endpoints = addrs(n);
            for ejected_mask in [0u64, 1, 0b101, u64::MAX] {
                let balancer = RoundRobin::new();
                let later = Instant::now() + Duration::from_secs(60);
                let down: Vec<_> = (0..n)
                    .filter(|i| ejected_mask & (1 << i) != 0)
                    .map(|i| endpoints[i])
                    .collect();
                for addr in &down {
                    balancer.eject(*addr, later);
                }
                for round in 0..2 * n.max(1) {
                    let got: Vec<_> = balancer.order(&endpoints).collect();
                    let start = if n == 0 { 0 } else { round % n };
                    assert_eq!(
                        got,
                        reference(&endpoints, start, &down),
                        "n {n} round {round}"
                    );
                }
            }
        }
    }

    #[test]
    fn an_ejection_ends() {
        let endpoints = addrs(2);
        let balancer = RoundRobin::new();
        balancer.eject(endpoints[0], Instant::now());
        std::thread::sleep(Duration::from_millis(2));
        let _ = balancer.order(&endpoints);
        assert_eq!(balancer.ejected_count.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn untrusted_clients_get_their_claims_overwritten() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "admin.internal"),
            ("x-forwarded-port", "8443"),
            ("x-forwarded-prefix", "/admin"),
            ("x-forwarded-server", "x"),
            ("forwarded", "for=1.1.1.1"),
            ("x-real-ip", "1.1.1.1"),
            ("x-original-url", "/admin"),
            ("x-rewrite-url", "/admin"),
            ("true-client-ip", "1.1.1.1"),
            ("x-client-ip", "1.1.1.1"),
            ("cookie", "a=b"),
        ] {
            headers.append(name, value.parse().unwrap());
        }
        strip_client_forwarding(&mut headers);
        assert_eq!(headers.keys().collect::<Vec<_>>(), ["cookie"]);
        let peer: IpAddr = "203.0.113.9".parse().unwrap();
        ForwardedHeaders {
            peer,
            client: peer,
            trusted: false,
            for_mode: ForwardedFor::Append,
            proto: "http",
            host: None,
            port: 80,
        }
        .apply(&mut headers);
        assert_eq!(headers["x-forwarded-for"], "203.0.113.9");
        assert_eq!(headers["x-real-ip"], "203.0.113.9");
        assert_eq!(headers["x-forwarded-proto"], "http");
        assert_eq!(headers["x-forwarded-port"], "80");
        assert!(!headers.contains_key("x-forwarded-host"));
    }

    #[test]
    fn trusted_proxies_keep_their_headers_and_the_mode_decides_the_list() {
        let mut headers = HeaderMap::new();
        headers.append("x-forwarded-for", "1.1.1.1, 2.2.2.2".parse().unwrap());
        headers.append("x-forwarded-for", "3.3.3.3".parse().unwrap());
        headers.append("x-forwarded-proto", "https".parse().unwrap());
        let peer: IpAddr = "10.0.0.1".parse().unwrap();
        let mut forwarded = ForwardedHeaders {
            peer,
            client: "3.3.3.3".parse().unwrap(),
            trusted: true,
            for_mode: ForwardedFor::Append,
            proto: "http",
            host: Some(HeaderValue::from_static("a.example")),
            port: 80,
        };
        let mut appended = headers.clone();
        forwarded.apply(&mut appended);
        assert_eq!(
            appended["x-forwarded-for"],
            "1.1.1.1, 2.2.2.2, 3.3.3.3, 10.0.0.1"
        );
        assert_eq!(appended["x-forwarded-proto"], "https");
        assert_eq!(appended["x-real-ip"], "3.3.3.3");
        forwarded.for_mode = ForwardedFor::Overwrite;
        forwarded.apply(&mut headers);
        assert_eq!(headers["x-forwarded-for"], "3.3.3.3");
        assert_eq!(headers.get_all("x-forwarded-for").iter().count(), 1);
    }

    #[test]
    fn ipv6_text_fits() {
        let ip: IpAddr = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"
            .parse()
            .unwrap();
        assert_eq!(IpText::new(ip).as_bytes(), ip.to_string().as_bytes());
    }
}
