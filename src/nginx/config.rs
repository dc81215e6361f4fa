//! The ingress-nginx controller ConfigMap: the keys this crate honours.

use std::collections::BTreeMap;
use std::fmt;

use super::values::{self, Cidr};

/// How risky an annotation is, in ingress-nginx's terms (`annotations-risk-level`): an
/// Ingress whose annotations go above the configured level is not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RiskLevel {
    /// `Low`.
    Low,
    /// `Medium`.
    Medium,
    /// `High`, the default.
    High,
    /// `Critical`: snippets are allowed (and, here, dropped with a warning).
    Critical,
}

impl RiskLevel {
    fn parse(text: &str) -> Option<RiskLevel> {
        match text.trim() {
            "Low" => Some(RiskLevel::Low),
            "Medium" => Some(RiskLevel::Medium),
            "High" => Some(RiskLevel::High),
            "Critical" => Some(RiskLevel::Critical),
            _ => None,
        }
    }
}

impl fmt::Display for RiskLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RiskLevel::Low => "Low",
            RiskLevel::Medium => "Medium",
            RiskLevel::High => "High",
            RiskLevel::Critical => "Critical",
        })
    }
}

/// The ingress-nginx controller ConfigMap, as far as this crate honours it.
///
/// Read from the ConfigMap's `data` with [`NginxConfig::from_data`]; every key not listed
/// here is reported as unsupported by [`NginxConfig::from_data`] and has no effect.
///
/// | key | default | effect |
/// |---|---|---|
/// | `use-forwarded-headers` | `false` | the client address is taken from `X-Forwarded-For` when the peer is in `proxy-real-ip-cidr` (allow- and deny-lists, rate limits) |
/// | `proxy-real-ip-cidr` | `0.0.0.0/0` | the proxies trusted to say who the client is |
/// | `compute-full-forwarded-for` | `false` | `X-Forwarded-For` from a trusted proxy gets the peer appended instead of becoming the client address alone ([`ForwardedFor`](crate::ForwardedFor)) |
/// | `ssl-redirect` | `true` | plain-HTTP requests for hosts with TLS are redirected to https |
/// | `force-ssl-redirect` | `false` | every plain-HTTP request is redirected to https |
/// | `http-redirect-code` | `308` | the status of those redirects (301, 302, 307 or 308) |
/// | `proxy-body-size` | `1m` | the largest request body (413 beyond; `0`: no limit) |
/// | `service-upstream` | `false` | requests go to a Service's ClusterIP instead of its endpoints |
/// | `proxy-connect-timeout` | `5` | seconds to connect to a backend |
/// | `proxy-read-timeout` | `60` | seconds to wait for a backend's response |
/// | `proxy-send-timeout` | `60` | seconds to send a request to a backend |
/// | `allow-snippet-annotations` | `false` | read but never acted on: snippets are never executed |
/// | `annotations-risk-level` | `High` | `Critical` serves Ingresses with snippet annotations, without the snippets |
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NginxConfig {
    /// `use-forwarded-headers`.
    pub use_forwarded_headers: bool,
    /// `proxy-real-ip-cidr`.
    pub proxy_real_ip_cidr: Vec<Cidr>,
    /// `compute-full-forwarded-for`.
    pub compute_full_forwarded_for: bool,
    /// `ssl-redirect`.
    pub ssl_redirect: bool,
    /// `force-ssl-redirect`.
    pub force_ssl_redirect: bool,
    /// `http-redirect-code`.
    pub http_redirect_code: u16,
    /// `proxy-body-size`, in bytes; `None`: no limit.
    pub proxy_body_size: Option<u64>,
    /// `service-upstream`.
    pub service_upstream: bool,
    /// `proxy-connect-timeout`, in seconds.
    pub proxy_connect_timeout: u32,
    /// `proxy-read-timeout`, in seconds.
    pub proxy_read_timeout: u32,
    /// `proxy-send-timeout`, in seconds.
    pub proxy_send_timeout: u32,
    /// `allow-snippet-annotations`.
    pub allow_snippet_annotations: bool,
    /// `annotations-risk-level`.
    pub annotations_risk_level: RiskLevel,
}

impl Default for NginxConfig {
    fn default() -> Self {
        NginxConfig {
            use_forwarded_headers: false,
            proxy_real_ip_cidr: vec![Cidr::ANY_V4],
            compute_full_forwarded_for: false,
            ssl_redirect: true,
            force_ssl_redirect: false,
            http_redirect_code: 308,
            proxy_body_size: Some(1024 * 1024),
            service_upstream: false,
            proxy_connect_timeout: 5,
            proxy_read_timeout: 60,
            proxy_send_timeout: 60,
            allow_snippet_annotations: false,
            annotations_risk_level: RiskLevel::High,
        }
    }
}

/// The most bytes of one ConfigMap value read; longer values are invalid.
const MAX_VALUE: usize = 64 * 1024;

impl NginxConfig {
    /// The configuration a ConfigMap's `data` gives, with a problem for every key that is
    /// invalid (the default is kept) or not honoured.
    pub fn from_data(data: &BTreeMap<String, String>) -> (NginxConfig, Vec<String>) {
        let mut config = NginxConfig::default();
        let mut problems = Vec::new();
        for (key, value) in data {
            if value.len() > MAX_VALUE {
                problems.push(format!(
                    "{key}: value longer than {MAX_VALUE} bytes, ignored"
                ));
                continue;
            }
            let bad = |what: &str| format!("{key}: {value:?} is not {what}; the default is kept");
            let outcome = match key.as_str() {
                "use-forwarded-headers" => values::boolean(value)
                    .map(|v| config.use_forwarded_headers = v)
                    .ok_or_else(|| bad("a boolean")),
                "proxy-real-ip-cidr" => values::cidrs(value)
                    .map(|v| config.proxy_real_ip_cidr = v)
                    .map_err(|e| format!("{key}: {e}; the default is kept")),
                "compute-full-forwarded-for" => values::boolean(value)
                    .map(|v| config.compute_full_forwarded_for = v)
                    .ok_or_else(|| bad("a boolean")),
                "ssl-redirect" => values::boolean(value)
                    .map(|v| config.ssl_redirect = v)
                    .ok_or_else(|| bad("a boolean")),
                "force-ssl-redirect" => values::boolean(value)
                    .map(|v| config.force_ssl_redirect = v)
                    .ok_or_else(|| bad("a boolean")),
                "http-redirect-code" => value
                    .trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|c| matches!(c, 301 | 302 | 307 | 308))
                    .map(|v| config.http_redirect_code = v)
                    .ok_or_else(|| bad("one of 301, 302, 307, 308")),
                "proxy-body-size" => values::size(value)
                    .map(|v| config.proxy_body_size = (v > 0).then_some(v))
                    .ok_or_else(|| bad("a size like 8m")),
                "service-upstream" => values::boolean(value)
                    .map(|v| config.service_upstream = v)
                    .ok_or_else(|| bad("a boolean")),
                "proxy-connect-timeout" => values::seconds(value)
                    .map(|v| config.proxy_connect_timeout = v)
                    .ok_or_else(|| bad("a number of seconds")),
                "proxy-read-timeout" => values::seconds(value)
                    .map(|v| config.proxy_read_timeout = v)
                    .ok_or_else(|| bad("a number of seconds")),
                "proxy-send-timeout" => values::seconds(value)
                    .map(|v| config.proxy_send_timeout = v)
                    .ok_or_else(|| bad("a number of seconds")),
                "allow-snippet-annotations" => values::boolean(value)
                    .map(|v| config.allow_snippet_annotations = v)
                    .ok_or_else(|| bad("a boolean")),
                "annotations-risk-level" => RiskLevel::parse(value)
                    .map(|v| config.annotations_risk_level = v)
                    .ok_or_else(|| bad("one of Low, Medium, High, Critical")),
                _ => Err(format!("{key}: not supported, ignored")),
            };
            if let Err(problem) = outcome {
                problems.push(problem);
            }
        }
        (config, problems)
    }

    /// Whether `ip`, a peer, may say who the client is (`use-forwarded-headers` and
    /// `proxy-real-ip-cidr`).
    pub fn trusts(&self, ip: std::net::IpAddr) -> bool {
        self.use_forwarded_headers && self.proxy_real_ip_cidr.iter().any(|c| c.contains(ip))
    }

    /// The client address of a request from `peer` with these `X-Forwarded-For` values: the
    /// peer, unless it is trusted; then, walking the list from its end, the first address
    /// that is not a trusted proxy (the leftmost when all are), as nginx's `real_ip_recursive`.
    pub fn client_ip<'h>(
        &self,
        peer: std::net::IpAddr,
        forwarded_for: impl DoubleEndedIterator<Item = &'h http::HeaderValue>,
    ) -> std::net::IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let mut chain: Vec<std::net::IpAddr> = Vec::new();
        for value in forwarded_for {
            let Ok(text) = value.to_str() else {
                return peer;
            };
            for part in text.split(',').take(64) {
                match part.trim().parse() {
                    Ok(ip) => chain.push(ip),
                    Err(_) => return peer,
                }
            }
        }
        let mut client = peer;
        for ip in chain.into_iter().rev() {
            client = ip;
            if !self.proxy_real_ip_cidr.iter().any(|c| c.contains(ip)) {
                break;
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn keys_are_read_and_bad_values_keep_the_default() {
        let (config, problems) = NginxConfig::from_data(&data(&[
            ("use-forwarded-headers", "true"),
            ("http-redirect-code", "301"),
            ("proxy-body-size", "8m"),
            ("ssl-redirect", "maybe"),
            ("annotations-risk-level", "Critical"),
            ("worker-processes", "4"),
        ]));
        assert!(config.use_forwarded_headers);
        assert_eq!(config.http_redirect_code, 301);
        assert_eq!(config.proxy_body_size, Some(8 * 1024 * 1024));
        assert!(config.ssl_redirect);
        assert_eq!(config.annotations_risk_level, RiskLevel::Critical);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("ssl-redirect"), "{problems:?}");
        assert!(problems[1].contains("worker-processes: not supported"));
    }

    #[test]
    fn the_client_is_the_peer_unless_the_peer_is_trusted() {
        let header = |s: &str| http::HeaderValue::from_str(s).unwrap();
        let peer: std::net::IpAddr = "10.0.0.1".parse().unwrap();
        let xff = [header("1.2.3.4, 10.0.0.9")];
        let default = NginxConfig::default();
        assert_eq!(default.client_ip(peer, xff.iter()), peer);
        let (trusting, _) = NginxConfig::from_data(&data(&[
            ("use-forwarded-headers", "true"),
            ("proxy-real-ip-cidr", "10.0.0.0/8"),
        ]));
        assert_eq!(
            trusting.client_ip(peer, xff.iter()),
            "1.2.3.4".parse::<std::net::IpAddr>().unwrap()
        );
        let outsider: std::net::IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(trusting.client_ip(outsider, xff.iter()), outsider);
        let garbage = [header("not-an-ip")];
        assert_eq!(trusting.client_ip(peer, garbage.iter()), peer);
    }
}
