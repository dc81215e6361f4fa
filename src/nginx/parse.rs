//! Reading one Ingress's annotations into typed values, with a verdict for each.

use std::sync::Arc;

use http::header::{HeaderName, HeaderValue};
use http::StatusCode;

use super::config::{NginxConfig, RiskLevel};
use super::policy::{
    Access, BackendProtocol, Canary, ClientLimits, CookieAffinity, Cors, NginxPolicy,
    OriginPattern, Piece, Redirect,
};
use super::values;
use super::{AnnotationVerdict, Verdict};

/// The most bytes of an annotation value read; longer values are invalid.
pub(crate) const MAX_VALUE: usize = 16 * 1024;

/// The most capture groups a rewrite target may name.
const MAX_GROUP: usize = 99;

/// Annotations whose protection would be lost if the Ingress were served without them:
/// such an Ingress is not served at all.
fn protective(name: &str) -> bool {
    (name.starts_with("auth-") && !name.ends_with("-snippet"))
        || matches!(
            name,
            "satisfy"
                | "enable-modsecurity"
                | "enable-owasp-core-rules"
                | "modsecurity-transaction-id"
        )
}

/// The annotations this crate reads (without the prefix).
pub(crate) const HONOURED: &[&str] = &[
    "use-regex",
    "rewrite-target",
    "x-forwarded-prefix",
    "app-root",
    "permanent-redirect",
    "permanent-redirect-code",
    "temporal-redirect",
    "temporal-redirect-code",
    "relative-redirects",
    "ssl-redirect",
    "force-ssl-redirect",
    "preserve-trailing-slash",
    "from-to-www-redirect",
    "server-alias",
    "canary",
    "canary-weight",
    "canary-weight-total",
    "canary-by-header",
    "canary-by-header-value",
    "canary-by-header-pattern",
    "canary-by-cookie",
    "allowlist-source-range",
    "whitelist-source-range",
    "denylist-source-range",
    "proxy-body-size",
    "proxy-connect-timeout",
    "proxy-read-timeout",
    "proxy-send-timeout",
    "limit-rps",
    "limit-connections",
    "limit-burst-multiplier",
    "limit-allowlist",
    "limit-whitelist",
    "enable-cors",
    "cors-allow-origin",
    "cors-allow-methods",
    "cors-allow-headers",
    "cors-expose-headers",
    "cors-allow-credentials",
    "cors-max-age",
    "upstream-vhost",
    "service-upstream",
    "default-backend",
    "custom-http-errors",
    "disable-proxy-intercept-errors",
    "backend-protocol",
    "affinity",
    "affinity-mode",
    "session-cookie-name",
    "session-cookie-path",
    "session-cookie-max-age",
    "session-cookie-expires",
    "session-cookie-secure",
    "session-cookie-samesite",
    "session-cookie-domain",
    "session-cookie-change-on-failure",
];

/// What one Ingress's annotations say.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    /// Everything but what depends on the rule path.
    pub(crate) policy: NginxPolicy,
    pub(crate) use_regex: bool,
    /// The target's pieces, whether it has its own query, and the value as written.
    pub(crate) rewrite: Option<(Vec<Piece>, bool, String)>,
    pub(crate) x_forwarded_prefix: Option<HeaderValue>,
    /// `canary: "true"`, with how requests are split.
    pub(crate) canary: Option<Canary>,
    pub(crate) aliases: Vec<String>,
    pub(crate) from_to_www: bool,
    /// Why the Ingress must not be served: `(annotation, reason)`.
    pub(crate) refused: Option<(String, String)>,
    pub(crate) verdicts: Vec<AnnotationVerdict>,
    /// Snippets dropped because the risk level allows them.
    pub(crate) dropped: Vec<String>,
}

impl Parsed {
    /// Whether the Ingress's paths put its hosts into regex mode.
    pub(crate) fn wants_regex(&self) -> bool {
        self.use_regex || self.rewrite.is_some()
    }
}

/// A rewrite target: text and `$n` capture groups; `None` for a target nginx would read
/// variables from (`$host` and the like), which this crate does not expand. Also returns
/// whether it has a query of its own.
pub(crate) fn rewrite_target(text: &str) -> Option<(Vec<Piece>, bool)> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut chars = text.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c != '$' {
            literal.push(c);
            continue;
        }
        let braced = chars.next_if(|&(_, c)| c == '{').is_some();
        let mut digits = String::new();
        while let Some((_, d)) = chars.next_if(|(_, d)| d.is_ascii_digit()) {
            digits.push(d);
        }
        if braced && chars.next_if(|&(_, c)| c == '}').is_none() {
            return None;
        }
        let group: usize = digits.parse().ok().filter(|g| *g <= MAX_GROUP)?;
        if !literal.is_empty() {
            pieces.push(Piece::Text(std::mem::take(&mut literal)));
        }
        pieces.push(Piece::Group(group));
    }
    if !literal.is_empty() {
        pieces.push(Piece::Text(literal));
    }
    let own_query = text.contains('?');
    Some((pieces, own_query))
}

/// A CORS origin as ingress-nginx accepts it: `scheme://host[:port]`, the host possibly
/// starting with `*.`; `None` for anything else (entries without a scheme are dropped).
pub(crate) fn origin_pattern(text: &str) -> Option<OriginPattern> {
    let text = text.trim().to_ascii_lowercase();
    let (scheme, rest) = text.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    {
        return None;
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            (host, Some(port.to_owned()))
        }
        Some(_) => return None,
        None => (rest, None),
    };
    let (wildcard, host) = match host.strip_prefix("*.") {
        Some(host) => (true, host),
        None => (false, host),
    };
    let label_ok = |l: &str| {
        !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if host.is_empty() || host.len() > 253 || !host.split('.').all(label_ok) {
        return None;
    }
    Some(OriginPattern {
        scheme: scheme.to_owned(),
        wildcard,
        host: host.to_owned(),
        port,
    })
}

/// A canonical host name for `server-alias`: lower-case DNS labels, no wildcard.
fn host_name(text: &str) -> Option<String> {
    let host = text.trim().trim_end_matches('.').to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    (host.len() <= 253 && host.split('.').all(label_ok)).then_some(host)
}

/// A comma-separated list, trimmed, without empty entries.
fn list(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// A header value made of tokens and the separators ingress-nginx allows in a CORS list.
fn cors_list(text: &str, star: bool) -> Option<HeaderValue> {
    let ok = text.bytes().all(|b| {
        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b',' | b' ') || (star && b == b'*')
    });
    (ok && !text.trim().is_empty())
        .then(|| HeaderValue::from_str(text).ok())
        .flatten()
}

/// Reads the annotations under `prefix` (with its `/`) of one Ingress.
pub(crate) fn parse(
    annotations: &std::collections::BTreeMap<String, String>,
    prefix: &str,
    config: &NginxConfig,
    namespace: &str,
) -> Parsed {
    let mut out = Parsed::default();
    let ours: Vec<(&str, &str, &str)> = annotations
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), k.strip_prefix(prefix)?, v.as_str())))
        .collect();
    let get = |name: &str| ours.iter().find(|(_, n, _)| *n == name).map(|(_, _, v)| *v);
    let mut verdicts: Vec<AnnotationVerdict> = Vec::new();
    let mut invalid: Vec<(String, String)> = Vec::new();
    let mut bad = |name: &str, why: String| invalid.push((name.to_owned(), why));

    // Values too long to read are invalid whatever the annotation.
    let oversized: Vec<&str> = ours
        .iter()
        .filter(|(_, _, v)| v.len() > MAX_VALUE)
        .map(|(_, n, _)| *n)
        .collect();
    for name in &oversized {
        bad(name, format!("longer than {MAX_VALUE} bytes"));
    }
    let get = |name: &str| get(name).filter(|_| !oversized.contains(&name));
    let flag = |name: &str, bad: &mut dyn FnMut(&str, String)| -> Option<bool> {
        let value = get(name)?;
        let parsed = values::boolean(value);
        if parsed.is_none() {
            bad(name, format!("{value:?} is not a boolean"));
        }
        parsed
    };

    // Paths and rewrites.
    out.use_regex = flag("use-regex", &mut bad).unwrap_or(false);
    if let Some(target) = get("rewrite-target") {
        match rewrite_target(target) {
            Some(_) if target.trim().is_empty() => {}
            Some((pieces, own_query)) if target.bytes().all(|b| b > b' ' && b != 0x7f) => {
                out.rewrite = Some((pieces, own_query, target.to_owned()));
            }
            Some(_) => bad(
                "rewrite-target",
                "contains spaces or control characters".into(),
            ),
            None => bad(
                "rewrite-target",
                "only $1 to $99 may be substituted; nginx variables are not expanded".into(),
            ),
        }
    }
    if let Some(prefix) = get("x-forwarded-prefix") {
        match HeaderValue::from_str(prefix) {
            Ok(v) => out.x_forwarded_prefix = Some(v),
            Err(_) => bad("x-forwarded-prefix", "not a valid header value".into()),
        }
    }

    // Redirects.
    if let Some(root) = get("app-root") {
        if root.starts_with('/') && HeaderValue::from_str(root).is_ok() && !root.contains(' ') {
            out.policy.app_root = Some(root.to_owned());
        } else {
            bad("app-root", "must be a path starting with '/'".into());
        }
    }
    let relative = flag("relative-redirects", &mut bad).unwrap_or(false);
    let location_ok = |url: &str| {
        HeaderValue::from_str(url).is_ok()
            && !url.contains(' ')
            && (url.starts_with('/')
                || url.parse::<http::Uri>().is_ok_and(|u| u.scheme().is_some()))
    };
    for (name, code_name, default) in [
        ("temporal-redirect", "temporal-redirect-code", 302),
        ("permanent-redirect", "permanent-redirect-code", 301),
    ] {
        let code = match get(code_name) {
            None => default,
            Some(text) => match text.trim().parse::<u16>() {
                Ok(code) if (300..=308).contains(&code) => code,
                _ => {
                    bad(
                        code_name,
                        format!("{text:?} is not a code from 300 to 308; {default} is used"),
                    );
                    default
                }
            },
        };
        if let Some(url) = get(name).filter(|u| !u.trim().is_empty()) {
            if !location_ok(url) {
                bad(name, "not an absolute URL or a path".into());
            } else if out.policy.redirect.is_none() {
                out.policy.redirect = Some(Redirect {
                    location: url.to_owned(),
                    code: StatusCode::from_u16(code).unwrap_or(StatusCode::MOVED_PERMANENTLY),
                    relative,
                });
            }
        }
    }
    out.policy.ssl_redirect = flag("ssl-redirect", &mut bad);
    out.policy.force_ssl_redirect = flag("force-ssl-redirect", &mut bad);
    out.policy.preserve_trailing_slash = flag("preserve-trailing-slash", &mut bad).unwrap_or(false);
    out.from_to_www = flag("from-to-www-redirect", &mut bad).unwrap_or(false);
    if let Some(aliases) = get("server-alias") {
        for alias in list(aliases).take(64) {
            match host_name(alias) {
                Some(host) => out.aliases.push(host),
                None => bad(
                    "server-alias",
                    format!(
                        "{alias:?} is not a host name (wildcards and regexes are not supported)"
                    ),
                ),
            }
        }
        out.aliases.sort();
        out.aliases.dedup();
    }

    // Canary.
    if flag("canary", &mut bad) == Some(true) {
        let number = |name: &str, bad: &mut dyn FnMut(&str, String)| {
            let text = get(name)?;
            let n = values::count(text);
            if n.is_none() {
                bad(name, format!("{text:?} is not a non-negative integer"));
            }
            n
        };
        let weight = number("canary-weight", &mut bad).unwrap_or(0);
        let total = number("canary-weight-total", &mut bad).unwrap_or(100);
        let header = get("canary-by-header").and_then(|h| {
            let name = HeaderName::from_bytes(h.trim().as_bytes()).ok();
            if name.is_none() {
                bad("canary-by-header", format!("{h:?} is not a header name"));
            }
            name
        });
        let header_pattern = get("canary-by-header-pattern").and_then(|p| {
            let compiled = regex::RegexBuilder::new(p)
                .size_limit(64 * 1024)
                .dfa_size_limit(64 * 1024)
                .nest_limit(32)
                .build();
            match compiled {
                Ok(regex) => Some(regex),
                Err(e) => {
                    let e = e.to_string();
                    bad(
                        "canary-by-header-pattern",
                        e.lines().last().unwrap_or_default().trim().to_owned(),
                    );
                    None
                }
            }
        });
        out.canary = Some(Canary {
            header,
            header_value: get("canary-by-header-value")
                .filter(|v| !v.is_empty())
                .map(str::to_owned),
            header_pattern,
            cookie: get("canary-by-cookie")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned),
            weight,
            total,
        });
    }

    // Access and limits.
    let mut access = Access::default();
    let mut ranges = |name: &str, bad: &mut dyn FnMut(&str, String)| {
        let text = get(name)?;
        match values::cidrs(text) {
            Ok(ranges) => Some(ranges),
            Err(e) => {
                bad(name, format!("{e}; the location is denied (503)"));
                access.broken = true;
                None
            }
        }
    };
    let allow = ranges("allowlist-source-range", &mut bad)
        .or_else(|| ranges("whitelist-source-range", &mut bad));
    let deny = ranges("denylist-source-range", &mut bad);
    let any_ranges = [
        "allowlist-source-range",
        "whitelist-source-range",
        "denylist-source-range",
    ]
    .iter()
    .any(|n| get(n).is_some());
    access.allow = allow.filter(|a| !a.is_empty());
    access.deny = deny.unwrap_or_default();
    if any_ranges {
        out.policy.access = Some(access);
    }
    if let Some(size) = get("proxy-body-size") {
        match values::size(size) {
            Some(0) => out.policy.body_limit = Some(None),
            Some(n) => out.policy.body_limit = Some(Some(n)),
            None => bad(
                "proxy-body-size",
                format!("{size:?} is not a size like 8m; the ConfigMap's proxy-body-size is used"),
            ),
        }
    }
    for (name, slot) in [
        ("proxy-connect-timeout", &mut out.policy.connect_timeout),
        ("proxy-read-timeout", &mut out.policy.read_timeout),
        ("proxy-send-timeout", &mut out.policy.send_timeout),
    ] {
        if let Some(text) = get(name) {
            match values::seconds(text) {
                Some(s) => *slot = Some(s),
                None => bad(name, format!("{text:?} is not a number of seconds")),
            }
        }
    }
    let count = |name: &str, bad: &mut dyn FnMut(&str, String)| {
        let text = get(name)?;
        let n = values::count(text).filter(|n| *n > 0);
        if n.is_none() {
            bad(name, format!("{text:?} is not a positive integer"));
        }
        n
    };
    let rps = count("limit-rps", &mut bad);
    let connections = count("limit-connections", &mut bad);
    let burst = count("limit-burst-multiplier", &mut bad).unwrap_or(5);
    let exempt = get("limit-allowlist")
        .or_else(|| get("limit-whitelist"))
        .map(|t| match values::cidrs(t) {
            Ok(r) => r,
            Err(e) => {
                bad("limit-allowlist", e);
                Vec::new()
            }
        })
        .unwrap_or_default();
    if rps.is_some() || connections.is_some() {
        out.policy.limits = Some(Arc::new(ClientLimits::new(rps, burst, connections, exempt)));
    }

    // CORS.
    if flag("enable-cors", &mut bad) == Some(true) {
        let origins = get("cors-allow-origin").map(|text| {
            let entries: Vec<&str> = list(text).collect();
            if entries.contains(&"*") {
                return None;
            }
            let patterns: Vec<OriginPattern> = entries
                .iter()
                .take(256)
                .filter_map(|e| origin_pattern(e))
                .collect();
            (!patterns.is_empty()).then_some(patterns)
        });
        let methods = get("cors-allow-methods").map(|m| {
            let ok = m
                .bytes()
                .all(|b| b.is_ascii_alphabetic() || matches!(b, b',' | b' '));
            (ok && !m.trim().is_empty())
                .then(|| HeaderValue::from_str(m).ok())
                .flatten()
        });
        if methods == Some(None) {
            bad(
                "cors-allow-methods",
                "not a list of methods; the default is used".into(),
            );
        }
        let headers = get("cors-allow-headers").map(|h| cors_list(h, false));
        if headers == Some(None) {
            bad(
                "cors-allow-headers",
                "not a list of header names; the default is used".into(),
            );
        }
        let expose = get("cors-expose-headers").map(|h| cors_list(h, true));
        if expose == Some(None) {
            bad(
                "cors-expose-headers",
                "not a list of header names; ignored".into(),
            );
        }
        let max_age = get("cors-max-age").map(|m| values::count(m).map(HeaderValue::from));
        if max_age == Some(None) {
            bad(
                "cors-max-age",
                "not a number of seconds; the default is used".into(),
            );
        }
        out.policy.cors = Some(Cors {
            origins: origins.flatten(),
            methods: methods.flatten().unwrap_or(HeaderValue::from_static(
                "GET, PUT, POST, DELETE, PATCH, OPTIONS",
            )),
            headers: headers.flatten().unwrap_or(HeaderValue::from_static(
                "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization",
            )),
            expose: expose.flatten(),
            credentials: flag("cors-allow-credentials", &mut bad).unwrap_or(true),
            max_age: max_age.flatten().unwrap_or(HeaderValue::from_static("1728000")),
        });
    }

    // Backends.
    if let Some(vhost) = get("upstream-vhost") {
        match HeaderValue::from_str(vhost.trim()) {
            Ok(v) if !vhost.trim().is_empty() => out.policy.upstream_vhost = Some(v),
            _ => bad("upstream-vhost", "not a valid Host header value".into()),
        }
    }
    out.policy.service_upstream = flag("service-upstream", &mut bad);
    if let Some(name) = get("default-backend") {
        let name = name.trim();
        let ok = !name.is_empty()
            && name.len() <= 63
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            out.policy.default_backend = Some(crate::Backend::Service(crate::ServiceBackend {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                port: crate::ServicePort::Number(80),
            }));
        } else {
            bad("default-backend", format!("{name:?} is not a Service name"));
        }
    }
    let intercept = !flag("disable-proxy-intercept-errors", &mut bad).unwrap_or(false);
    if let Some(codes) = get("custom-http-errors") {
        let mut parsed = Vec::new();
        for code in list(codes).take(256) {
            match code.parse::<u16>() {
                Ok(c) if (400..=599).contains(&c) => parsed.push(c),
                _ => bad(
                    "custom-http-errors",
                    format!("{code:?} is not a status from 400 to 599"),
                ),
            }
        }
        if intercept && out.policy.default_backend.is_some() {
            parsed.sort_unstable();
            parsed.dedup();
            out.policy.custom_errors = parsed;
        }
    }
    if let Some(protocol) = get("backend-protocol") {
        out.policy.protocol = match protocol.trim().to_ascii_uppercase().as_str() {
            "HTTP" => BackendProtocol::Http,
            "HTTPS" => BackendProtocol::Https,
            "AUTO_HTTP" => BackendProtocol::AutoHttp,
            "GRPC" => BackendProtocol::Grpc,
            "GRPCS" => BackendProtocol::Grpcs,
            "FCGI" => BackendProtocol::Fcgi,
            _ => {
                bad("backend-protocol", format!("{protocol:?} is not one of HTTP, HTTPS, AUTO_HTTP, GRPC, GRPCS, FCGI; HTTP is used"));
                BackendProtocol::Http
            }
        };
    }
    if let Some(affinity) = get("affinity") {
        if affinity.trim() == "cookie" {
            let seconds = |name: &str, bad: &mut dyn FnMut(&str, String)| {
                let text = get(name)?;
                let n = text
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n <= 10 * 365 * 86_400);
                if n.is_none() {
                    bad(name, format!("{text:?} is not a number of seconds"));
                }
                n
            };
            let same_site = get("session-cookie-samesite").and_then(|s| match s.trim() {
                v @ ("None" | "Lax" | "Strict") => Some(v.to_owned()),
                other => {
                    bad(
                        "session-cookie-samesite",
                        format!("{other:?} is not None, Lax or Strict"),
                    );
                    None
                }
            });
            let token = |name: &str, bad: &mut dyn FnMut(&str, String)| {
                let text = get(name)?.trim();
                let ok = !text.is_empty()
                    && text
                        .bytes()
                        .all(|b| b.is_ascii_graphic() && !matches!(b, b';' | b',' | b'='));
                if !ok {
                    bad(name, format!("{text:?} cannot be used in a cookie"));
                }
                ok.then(|| text.to_owned())
            };
            out.policy.affinity = Some(CookieAffinity {
                name: token("session-cookie-name", &mut bad).unwrap_or("INGRESSCOOKIE".into()),
                path: token("session-cookie-path", &mut bad),
                max_age: seconds("session-cookie-max-age", &mut bad),
                expires: seconds("session-cookie-expires", &mut bad),
                secure: flag("session-cookie-secure", &mut bad).unwrap_or(false),
                same_site,
                domain: token("session-cookie-domain", &mut bad),
                change_on_failure: flag("session-cookie-change-on-failure", &mut bad)
                    .unwrap_or(false),
            });
        } else {
            bad(
                "affinity",
                format!("{affinity:?}: only \"cookie\" is supported"),
            );
        }
    }

    // Verdicts, and whether the Ingress may be served.
    for (key, name, _) in &ours {
        let verdict = if let Some((_, why)) = invalid.iter().find(|(n, _)| n == name) {
            Verdict::Invalid(why.clone())
        } else if name.ends_with("-snippet") {
            if config.annotations_risk_level == RiskLevel::Critical {
                out.dropped.push((*key).to_owned());
                Verdict::Refused(
                    "snippets are never executed; dropped (annotations-risk-level is Critical), the Ingress is served without it".into(),
                )
            } else {
                let why = format!(
                    "snippets are never executed, and this one is above the annotations-risk-level ({}): the Ingress is not served",
                    config.annotations_risk_level
                );
                if out.refused.is_none() {
                    out.refused = Some(((*key).to_owned(), why.clone()));
                }
                Verdict::Refused(why)
            }
        } else if protective(name) {
            let why = "not enforced here, and serving the Ingress without it would expose what it protects: the Ingress is not served".to_owned();
            if out.refused.is_none() {
                out.refused = Some(((*key).to_owned(), why.clone()));
            }
            Verdict::Refused(why)
        } else if HONOURED.contains(name) {
            match (*name, out.policy.protocol) {
                (
                    "backend-protocol",
                    BackendProtocol::Https | BackendProtocol::Grpcs | BackendProtocol::Fcgi,
                ) => Verdict::Unsupported,
                _ => Verdict::Honoured,
            }
        } else {
            Verdict::Unsupported
        };
        verdicts.push(AnnotationVerdict {
            annotation: (*key).to_owned(),
            verdict,
        });
    }
    out.verdicts = verdicts;
    out
}
