//! Hostile requests through the data plane of `examples/data_plane`, started in-process: raw
//! bytes over TCP for HTTP/1 (no client library tidies the request) and h2c with prior
//! knowledge. Each case checks the routing contract §5 outcome (`docs/routing.md`), who gave it
//! (the routing layer, or hyper's parser before the layer saw anything), and, for a request
//! that reaches a backend, that the backend is exactly the one the compiled table gives for the
//! host and path the backend received, and that this path is canonical.
//!
//! The Ingresses are laid out so that a path-confusion mistake shows: `/public` (Prefix) and
//! `/admin` (Exact) go to different Services, unmatched paths of `app.test` to a third, and
//! hosts that select no virtual host to host-less rules with the same two paths, then to a
//! catch-all.

#[allow(dead_code)]
#[path = "../examples/data_plane/proxy.rs"]
mod proxy;

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http::{Request, Version};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use ingress_router::{
    canonical_host, canonical_path, Backend, CanonicalOptions, Manifests, RouteTable, TableOptions,
};
use proxy::{DataPlane, Listen, Options};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const INGRESSES: &str = r#"
kind: Ingress
metadata: {name: app, creationTimestamp: "2024-01-01T00:00:00Z"}
spec:
  defaultBackend: {service: {name: app-default, port: {number: 80}}}
  rules:
  - host: app.test
    http:
      paths:
      - {path: /public, pathType: Prefix, backend: {service: {name: public, port: {number: 80}}}}
      - {path: /admin, pathType: Exact, backend: {service: {name: admin, port: {number: 80}}}}
---
kind: Ingress
metadata: {name: wild, creationTimestamp: "2024-01-02T00:00:00Z"}
spec:
  rules:
  - host: "*.wild.test"
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: wild, port: {number: 80}}}}
  - host: www.wild.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: www, port: {number: 80}}}}
---
kind: Ingress
metadata: {name: only, creationTimestamp: "2024-01-03T00:00:00Z"}
spec:
  rules:
  - host: only.test
    http:
      paths:
      - {path: /only, pathType: Exact, backend: {service: {name: only, port: {number: 80}}}}
---
kind: Ingress
metadata: {name: hostless, creationTimestamp: "2024-01-04T00:00:00Z"}
spec:
  rules:
  - http:
      paths:
      - {path: /public, pathType: Prefix, backend: {service: {name: hostless-public, port: {number: 80}}}}
      - {path: /admin, pathType: Exact, backend: {service: {name: hostless-admin, port: {number: 80}}}}
---
kind: Ingress
metadata: {name: catch-all, creationTimestamp: "2024-01-05T00:00:00Z"}
spec:
  defaultBackend: {service: {name: catch-all, port: {number: 80}}}
"#;

/// How long one exchange may take before the test fails instead of hanging.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a case must get.
#[derive(Debug, Clone)]
enum Expect {
    /// `200` from `service`'s echo backend, which received `target` (path, and `?query` when
    /// there is one), for a request routed on the canonical `host` (`None`: host-less rules).
    Backend {
        service: &'static str,
        target: String,
        host: Option<String>,
    },
    /// Answered by the routing layer: the status, and the reason its body names.
    Layer { status: u16, reason: &'static str },
    /// Answered by hyper's HTTP/1 parser (an empty body) before the routing layer saw the
    /// request. Only where routing contract §5 also refuses the request, or is stricter than
    /// needed.
    Hyper(u16),
}

fn to(service: &'static str, target: &str, host: &str) -> Expect {
    Expect::Backend {
        service,
        target: target.to_owned(),
        host: Some(host.to_owned()),
    }
}

fn hostless(service: &'static str, target: &str) -> Expect {
    Expect::Backend {
        service,
        target: target.to_owned(),
        host: None,
    }
}

fn bad(reason: &'static str) -> Expect {
    Expect::Layer {
        status: 400,
        reason,
    }
}

fn too_long(reason: &'static str) -> Expect {
    Expect::Layer {
        status: 414,
        reason,
    }
}

fn no_route() -> Expect {
    Expect::Layer {
        status: 404,
        reason: "no route",
    }
}

/// One row of the table: a name, the bytes sent, the outcome.
struct Case {
    name: &'static str,
    request: Vec<u8>,
    expect: Expect,
}

fn case(name: &'static str, request: Vec<u8>, expect: Expect) -> Case {
    Case {
        name,
        request,
        expect,
    }
}

/// `GET target HTTP/1.1` with the given header lines, then `Connection: close`.
fn h11_with(target: &[u8], headers: &[&[u8]]) -> Vec<u8> {
    let mut out = b"GET ".to_vec();
    out.extend_from_slice(target);
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for header in headers {
        out.extend_from_slice(header);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out
}

/// `GET target HTTP/1.1` for `host`.
fn h11(target: &str, host: &str) -> Vec<u8> {
    h11_with(target.as_bytes(), &[format!("Host: {host}").as_bytes()])
}

/// `GET target HTTP/1.0` with the given header lines.
fn h10(target: &str, headers: &[&str]) -> Vec<u8> {
    let mut out = format!("GET {target} HTTP/1.0\r\n").into_bytes();
    for header in headers {
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

// One row per case, as a table.
#[rustfmt::skip]
fn http1_cases() -> Vec<Case> {
    let long = |total: usize| format!("/public/{}", "a".repeat(total - "/public/".len()));
    let segments = |n: usize| format!("/public{}", "/s".repeat(n - 1));
    let climb = format!("/public/{}admin", "../".repeat(2000));
    let dots = format!("/public{}/../admin", "/.".repeat(1000));
    // Three labels of 63 bytes, then one of `last` bytes: 253 bytes in all for 61.
    let long_host = |last: usize| {
        let label = |c: &str, n: usize| c.repeat(n);
        format!("{}.{}.{}.{}", label("a", 63), label("b", 63), label("c", 63), label("d", last))
    };
    vec![
        // The baseline the tricks below must not reach: public is not admin.
        case("plain public", h11("/public/x", "app.test"), to("public", "/public/x", "app.test")),
        case("plain admin", h11("/admin", "app.test"), to("admin", "/admin", "app.test")),
        case("unmatched path", h11("/private", "app.test"), to("app-default", "/private", "app.test")),
        case("no rule, no fallback", h11("/other", "only.test"), no_route()),
        // Dot segments, plain and percent-encoded.
        case("dot-dot", h11("/public/../admin", "app.test"), to("admin", "/admin", "app.test")),
        case("dot-dot %2e%2e", h11("/public/%2e%2e/admin", "app.test"), to("admin", "/admin", "app.test")),
        case("dot-dot %2E%2E", h11("/public/%2E%2E/admin", "app.test"), to("admin", "/admin", "app.test")),
        case("dot-dot %2E%2e", h11("/public/%2E%2e/admin", "app.test"), to("admin", "/admin", "app.test")),
        case("dot-dot .%2e", h11("/public/.%2e/admin", "app.test"), to("admin", "/admin", "app.test")),
        case("dot-dot %2e.", h11("/public/%2e./admin", "app.test"), to("admin", "/admin", "app.test")),
        case("dot-dot above root", h11("/../../admin", "app.test"), to("admin", "/admin", "app.test")),
        case("dot-dot to root", h11("/public/..", "app.test"), to("app-default", "/", "app.test")),
        case("three dots are a name", h11("/public/..%2e", "app.test"), to("public", "/public/...", "app.test")),
        case("trailing dot segment", h11("/public/.", "app.test"), to("public", "/public/", "app.test")),
        case("encoded dot-dot from the root", h11("/.%2E/admin", "app.test"), to("admin", "/admin", "app.test")),
        case("dot", h11("/public/./x", "app.test"), to("public", "/public/x", "app.test")),
        case("dot %2e", h11("/public/%2e/x", "app.test"), to("public", "/public/x", "app.test")),
        case("dot after exact", h11("/admin/.", "app.test"), to("app-default", "/admin/", "app.test")),
        case("dot-dot in query only", h11("/public?next=/../admin", "app.test"), to("public", "/public?next=/../admin", "app.test")),
        case(
            "query kept as received",
            h11("/public/../admin?x=%2F..%2F&y=%2e", "app.test"),
            to("admin", "/admin?x=%2F..%2F&y=%2e", "app.test"),
        ),
        // Encoded slash and backslash.
        case("%2F", h11("/public%2F..%2Fadmin", "app.test"), bad("encoded slash")),
        case("%2f", h11("/public%2f..%2fadmin", "app.test"), bad("encoded slash")),
        case("%2f after dot-dot", h11("/public/%2e%2e%2fadmin", "app.test"), bad("encoded slash")),
        case("%2F at the end", h11("/admin%2F", "app.test"), bad("encoded slash")),
        case("%5C", h11("/public%5C..%5Cadmin", "app.test"), bad("encoded backslash")),
        case("%5c", h11("/public/%5c", "app.test"), bad("encoded backslash")),
        // A raw backslash is a slash (http's URI parser lets it through to the layer).
        case("raw backslash", h11("/public\\..\\admin", "app.test"), to("admin", "/admin", "app.test")),
        // http's URI parser takes a target that does not start with `/` for an authority and
        // refuses the backslash in it; the layer would refuse the target too.
        case("raw backslash prefix", h11("\\admin", "app.test"), Expect::Hyper(400)),
        case("raw backslash segment", h11("/public\\x", "app.test"), to("public", "/public/x", "app.test")),
        // Path parameters on dot segments.
        case("..;", h11("/public/..;/admin", "app.test"), bad("dot segment with path parameters")),
        case(".;", h11("/public/.;x/admin", "app.test"), bad("dot segment with path parameters")),
        case("..;x at the end", h11("/public/..;x", "app.test"), bad("dot segment with path parameters")),
        case("..%3B", h11("/public/..%3B/admin", "app.test"), bad("dot segment with path parameters")),
        case("%2e%2e;", h11("/public/%2e%2e;/admin", "app.test"), bad("dot segment with path parameters")),
        case("; elsewhere", h11("/public;x/../admin", "app.test"), to("admin", "/admin", "app.test")),
        // Repeated slashes: dot segments are removed before runs of `/` are merged.
        case("leading //", h11("//admin", "app.test"), to("admin", "/admin", "app.test")),
        case("inner //", h11("/public//x///y", "app.test"), to("public", "/public/x/y", "app.test")),
        case("// then dot-dot", h11("/public//../admin", "app.test"), to("public", "/public/admin", "app.test")),
        case("dot-dot then //", h11("/public/..//admin", "app.test"), to("admin", "/admin", "app.test")),
        // Percent-encoding.
        case("%00", h11("/public/%00/../admin", "app.test"), bad("encoded NUL")),
        case("bad triplet %zz", h11("/public/%zz", "app.test"), bad("malformed percent-encoding")),
        case("bad triplet %2", h11("/public/%2", "app.test"), bad("malformed percent-encoding")),
        case("lone %", h11("/public/%", "app.test"), bad("malformed percent-encoding")),
        case("bad triplet %%32e", h11("/public/%%32e", "app.test"), bad("malformed percent-encoding")),
        case("double-encoded dot-dot", h11("/public/%252e%252e/admin", "app.test"), to("public", "/public/%252e%252e/admin", "app.test")),
        case("double-encoded slash", h11("/public%252F..%252Fadmin", "app.test"), to("app-default", "/public%252F..%252Fadmin", "app.test")),
        case("unreserved %61", h11("/%61dmin", "app.test"), to("admin", "/admin", "app.test")),
        case("unreserved, all escaped", h11("/%61%64%6D%69%6E", "app.test"), to("admin", "/admin", "app.test")),
        case("unreserved %41 keeps case", h11("/%41dmin", "app.test"), to("app-default", "/Admin", "app.test")),
        case("unreserved %7e", h11("/public/%7euser", "app.test"), to("public", "/public/~user", "app.test")),
        case("reserved kept, hex upper-cased", h11("/public/%3b%3f", "app.test"), to("public", "/public/%3B%3F", "app.test")),
        case("encoded CR LF kept", h11("/public/%0d%0aX-Injected:%20y", "app.test"), to("public", "/public/%0D%0AX-Injected:%20y", "app.test")),
        case("IIS %u escape", h11("/public/%u002e%u002e/admin", "app.test"), bad("malformed percent-encoding")),
        case("overlong UTF-8 dot-dot kept", h11("/public/%c0%ae%c0%ae/admin", "app.test"), to("public", "/public/%C0%AE%C0%AE/admin", "app.test")),
        case("printable ASCII kept", h11("/public/\"{|}^!$&'()*+,;=:@", "app.test"), to("public", "/public/\"{|}^!$&'()*+,;=:@", "app.test")),
        case("path parameter on a name", h11("/admin;x", "app.test"), to("app-default", "/admin;x", "app.test")),
        case("empty query", h11("/admin?", "app.test"), to("admin", "/admin?", "app.test")),
        case("upper-case path is another path", h11("/ADMIN", "app.test"), to("app-default", "/ADMIN", "app.test")),
        // Limits: 8 KiB of path, 256 segments, counted on the canonical path.
        case("path at 8 KiB", h11(&long(8192), "app.test"), to("public", &long(8192), "app.test")),
        case("path over 8 KiB", h11(&long(8193), "app.test"), too_long("path too long")),
        case("path over 8 KiB by its query only", h11(&format!("{}?{}", long(8000), "q".repeat(1000)), "app.test"), to("public", &format!("{}?{}", long(8000), "q".repeat(1000)), "app.test")),
        // A request head over 64 KiB (`--max-header-bytes`) is refused before it is parsed.
        case("path over 64 KiB", h11(&long(70_000), "app.test"), Expect::Hyper(431)),
        case("256 segments", h11(&segments(256), "app.test"), to("public", &segments(256), "app.test")),
        case("257 segments", h11(&segments(257), "app.test"), too_long("too many path segments")),
        case("2000 dot-dots", h11(&climb, "app.test"), to("admin", "/admin", "app.test")),
        case("1000 dots", h11(&dots, "app.test"), to("admin", "/admin", "app.test")),
        // Fragments: http's URI parser cuts them before the layer sees the target.
        case("fragment", h11("/admin#x", "app.test"), to("admin", "/admin", "app.test")),
        case("fragment hides a climb", h11("/public#/../admin", "app.test"), to("public", "/public", "app.test")),
        case("fragment after query", h11("/public?q=1#/../admin", "app.test"), to("public", "/public?q=1", "app.test")),
        case("encoded fragment", h11("/public%23/../admin", "app.test"), to("admin", "/admin", "app.test")),
        // Request-target forms.
        case("absolute-form wins over Host", h11("http://www.wild.test/public/x", "app.test"), to("www", "/public/x", "www.wild.test")),
        case("absolute-form to admin", h11("http://App.Test:8080/public/../admin", "www.wild.test"), to("admin", "/admin", "app.test")),
        case("absolute-form IP wins over a Host name", h11("http://127.0.0.1/admin", "app.test"), hostless("hostless-admin", "/admin")),
        case("absolute-form port 65536", h11("http://app.test:65536/admin", "app.test"), bad("invalid port")),
        case("absolute-form port abc", h11("http://app.test:abc/admin", "app.test"), bad("invalid port")),
        case("absolute-form, empty host", h11("http:///admin", "app.test"), Expect::Hyper(400)),
        case("absolute-form, HTTP/1.0", h10("http://APP.test./public/%2e%2e/admin", &[]), to("admin", "/admin", "app.test")),
        case("absolute-form, no path", h11("http://app.test", "app.test"), to("app-default", "/", "app.test")),
        case("absolute-form with userinfo", h11("http://user@app.test/admin", "app.test"), bad("userinfo in host")),
        case("absolute-form with an invalid Host", h11("http://app.test/admin", "app.test:x"), bad("invalid port")),
        case("absolute-form without Host", h11_with(b"http://app.test/admin", &[]), bad("missing Host header")),
        // http reads a target that does not start with `/` as an authority: without the
        // layer's refusal, these would be routed on it instead of on Host, with the path `/`.
        case("authority-form GET", h11("www.wild.test", "app.test"), bad("authority-form request target is not routable")),
        case("authority-form GET, a name", h11("admin", "app.test"), bad("authority-form request target is not routable")),
        case("CONNECT", b"CONNECT app.test:443 HTTP/1.1\r\nHost: app.test:443\r\n\r\n".to_vec(), bad("authority-form request target is not routable")),
        case("asterisk-form", h11_with(b"*", &[b"Host: app.test"]), bad("asterisk-form")),
        // Hosts.
        case("missing Host", h11_with(b"/admin", &[]), bad("missing Host header")),
        case("HTTP/1.0 without Host", h10("/admin", &[]), hostless("hostless-admin", "/admin")),
        case("HTTP/1.0 without Host, dot-dot", h10("/public/../admin", &[]), hostless("hostless-admin", "/admin")),
        case("HTTP/1.0 without Host, no path", h10("/elsewhere", &[]), hostless("catch-all", "/elsewhere")),
        case("HTTP/1.0 with Host", h10("/admin", &["Host: app.test"]), to("admin", "/admin", "app.test")),
        case("two Host lines", h11_with(b"/admin", &[b"Host: app.test", b"Host: app.test"]), bad("several Host header lines")),
        case("two Host lines, different", h11_with(b"/public", &[b"Host: www.wild.test", b"Host: app.test"]), bad("several Host header lines")),
        case("two hosts in one line", h11("/admin", "app.test,www.wild.test"), bad("invalid character in host")),
        case("two hosts in one line, spaced", h11("/admin", "app.test, www.wild.test"), bad("whitespace")),
        case("empty Host", h11_with(b"/admin", &[b"Host: "]), bad("empty host")),
        case("userinfo in Host", h11("/admin", "user@app.test"), bad("userinfo in host")),
        case("userinfo naming another host", h11("/admin", "www.wild.test@app.test"), bad("userinfo in host")),
        case("slash in Host", h11("/admin", "app.test/x"), bad("slash in host")),
        case("percent in Host", h11("/admin", "app%2Etest"), bad("percent-encoding in host")),
        case("X-Forwarded-Host ignored", h11_with(b"/admin", &[b"Host: www.wild.test", b"X-Forwarded-Host: app.test", b"Forwarded: host=app.test"]), to("www", "/admin", "www.wild.test")),
        // Ports.
        case("port", h11("/admin", "app.test:8080"), to("admin", "/admin", "app.test")),
        case("port 65535", h11("/admin", "app.test:65535"), to("admin", "/admin", "app.test")),
        case("port 65536", h11("/admin", "app.test:65536"), bad("invalid port")),
        case("port abc", h11("/admin", "app.test:abc"), bad("invalid port")),
        case("empty port", h11("/admin", "app.test:"), bad("invalid port")),
        case("port :80:80", h11("/admin", "app.test:80:80"), bad("invalid")),
        case("port of six digits", h11("/admin", "app.test:000080"), bad("invalid port")),
        case("signed port", h11("/admin", "app.test:+80"), bad("invalid port")),
        // Spelling of names.
        case("trailing dot", h11("/admin", "app.test."), to("admin", "/admin", "app.test")),
        case("trailing dot and port", h11("/admin", "app.test.:80"), to("admin", "/admin", "app.test")),
        case("host of 253 bytes", h11("/admin", &long_host(61)), to("hostless-admin", "/admin", &long_host(61))),
        case("host of 254 bytes", h11("/admin", &long_host(62)), bad("host too long")),
        case("host label of 64 bytes", h11("/admin", &format!("{}.test", "a".repeat(64))), bad("host label too long")),
        case("two trailing dots", h11("/admin", "app.test.."), bad("empty label")),
        case("leading dot", h11("/admin", ".app.test"), bad("empty label")),
        case("upper case", h11("/admin", "APP.TEST"), to("admin", "/admin", "app.test")),
        case("mixed case, trailing dot, port 0", h11("/admin", "WwW.wILd.TeSt.:0"), to("www", "/admin", "www.wild.test")),
        case("underscore in a name", h11("/admin", "a_b.wild.test"), to("wild", "/admin", "a_b.wild.test")),
        case("trailing tab after Host", h11_with(b"/admin", &[b"Host: app.test\t"]), to("admin", "/admin", "app.test")),
        case("wildcard", h11("/admin", "a.wild.test"), to("wild", "/admin", "a.wild.test")),
        case("wildcard, upper case, trailing dot", h11("/admin", "A.Wild.Test."), to("wild", "/admin", "a.wild.test")),
        case("exact beats wildcard", h11("/admin", "WWW.WILD.TEST"), to("www", "/admin", "www.wild.test")),
        case("wildcard spans one label only", h11("/admin", "a.b.wild.test"), to("hostless-admin", "/admin", "a.b.wild.test")),
        case("wildcard needs a label", h11("/public/../admin", "wild.test"), to("hostless-admin", "/admin", "wild.test")),
        case("unknown host", h11("/nothing", "unknown.test"), to("catch-all", "/nothing", "unknown.test")),
        // IP literals reach host-less rules only.
        case("IPv4", h11("/admin", "127.0.0.1"), hostless("hostless-admin", "/admin")),
        case("IPv4 with port", h11("/public/x", "127.0.0.1:8080"), hostless("hostless-public", "/public/x")),
        case("IPv6", h11("/admin", "[::1]"), hostless("hostless-admin", "/admin")),
        case("IPv6 with port", h11("/public/../admin", "[::1]:8080"), hostless("hostless-admin", "/admin")),
        case("IPv6 unbracketed", h11("/admin", "::1"), bad("invalid")),
        case("IPv6 unterminated", h11("/admin", "[::1"), bad("unterminated IPv6 literal")),
        case("IPv6 bracketing a name", h11("/admin", "[app.test]"), bad("invalid IPv6 literal")),
        case("IPv4 with a trailing dot", h11("/admin", "127.0.0.1."), hostless("hostless-admin", "/admin")),
        case("IPv4 shorthand", h11("/admin", "127.1"), bad("numeric host")),
        case("IPv4 as one number", h11("/admin", "2130706433"), bad("numeric host")),
        case("IPv4 in octal", h11("/admin", "0177.0.0.1"), bad("numeric host")),
        case("IPv4-mapped IPv6", h11("/admin", "[::ffff:127.0.0.1]"), hostless("hostless-admin", "/admin")),
        case("numeric name", h11("/admin", "1.2.3"), bad("numeric host")),
        // Non-ASCII look-alikes.
        case("Cyrillic a in Host", h11_with(b"/admin", &["Host: \u{430}pp.test".as_bytes()]), bad("Host header is not visible ASCII")),
        case("Cyrillic host, absolute-form", h11_with("http://\u{430}pp.test/admin".as_bytes(), &[b"Host: app.test"]), Expect::Hyper(400)),
        case("punycode is another host", h11("/admin", "xn--pp-8cd.test"), to("hostless-admin", "/admin", "xn--pp-8cd.test")),
        case("fullwidth solidus", h11("/public\u{ff0f}..\u{ff0f}admin", "app.test"), bad("non-ASCII")),
        case("fullwidth solidus, encoded", h11("/public%EF%BC%8F..%EF%BC%8Fadmin", "app.test"), to("app-default", "/public%EF%BC%8F..%EF%BC%8Fadmin", "app.test")),
        case("Cyrillic a in path", h11("/\u{430}dmin", "app.test"), bad("non-ASCII")),
        case("fullwidth full stops", h11("/public/\u{ff0e}\u{ff0e}/admin", "app.test"), bad("non-ASCII")),
        // Bytes hyper's parser refuses before the layer: the routing contract's 400 anyway.
        case("invalid UTF-8 in path", h11_with(b"/public/\xff/../admin", &[b"Host: app.test"]), Expect::Hyper(400)),
        case("space in path", h11("/public /../admin", "app.test"), Expect::Hyper(400)),
        case("tab in path", h11("/public\t/../admin", "app.test"), Expect::Hyper(400)),
        case("raw NUL in path", h11_with(b"/public\0/../admin", &[b"Host: app.test"]), Expect::Hyper(400)),
        case("raw DEL in path", h11_with(b"/public\x7f/../admin", &[b"Host: app.test"]), Expect::Hyper(400)),
        case("space before the colon", h11_with(b"/admin", &[b"Host : app.test"]), Expect::Hyper(400)),
        case("folded Host line", h11_with(b"/admin", &[b"Host: www.wild.test", b" app.test"]), Expect::Hyper(400)),
        case("control byte in Host", h11_with(b"/admin", &[b"Host: app\x01.test"]), Expect::Hyper(400)),
    ]
}

/// A response read off the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: Option<String>,
    body: Vec<u8>,
}

/// Parses one HTTP/1 response from `buf`: `Ok(None)` while more bytes are needed (before
/// `eof`).
fn parse_response(buf: &[u8], eof: bool) -> Result<Option<Answer>, String> {
    let incomplete = |what: &str| {
        if eof {
            Err(format!("connection closed in the {what}"))
        } else {
            Ok(None)
        }
    };
    let Some(head_end) = find(buf, b"\r\n\r\n") else {
        return incomplete("head");
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|e| format!("head: {e}"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut words = status_line.splitn(3, ' ');
    let version = words.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1 status line: {status_line:?}"));
    }
    let status: u16 = words
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status in {status_line:?}"))?;
    let mut content_length = None;
    let mut chunked = false;
    let mut content_type = None;
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("bad header line {line:?}"))?;
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => {
                content_length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|e| format!("{line:?}: {e}"))?,
                )
            }
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "content-type" => content_type = Some(value.to_owned()),
            _ => {}
        }
    }
    let rest = &buf[head_end + 4..];
    let body = if chunked {
        match dechunk(rest)? {
            Some(body) => body,
            None => return incomplete("chunked body"),
        }
    } else if let Some(length) = content_length {
        if rest.len() < length {
            return incomplete("body");
        }
        rest[..length].to_vec()
    } else if eof {
        rest.to_vec()
    } else {
        return Ok(None);
    };
    Ok(Some(Answer {
        status,
        content_type,
        body,
    }))
}

/// The body of a complete chunked message, `None` while it is incomplete.
fn dechunk(mut rest: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = find(rest, b"\r\n") else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&rest[..line_end]).map_err(|e| e.to_string())?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size =
            usize::from_str_radix(size, 16).map_err(|e| format!("chunk size {line:?}: {e}"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            // Trailers, then an empty line.
            loop {
                let Some(end) = find(rest, b"\r\n") else {
                    return Ok(None);
                };
                if end == 0 {
                    return Ok(Some(body));
                }
                rest = &rest[end + 2..];
            }
        }
        if rest.len() < size + 2 {
            return Ok(None);
        }
        if &rest[size..size + 2] != b"\r\n" {
            return Err("chunk not followed by CRLF".into());
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Sends `request` on a new connection and reads one response.
async fn exchange(addr: SocketAddr, request: &[u8]) -> Result<Answer, String> {
    let io = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        stream
            .write_all(request)
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut buf = Vec::new();
        loop {
            let mut chunk = [0u8; 16 * 1024];
            let n = match stream.read(&mut chunk).await {
                Ok(n) => n,
                // A server that closes with unread request bytes may reset the connection
                // after its answer.
                Err(e) if !buf.is_empty() => {
                    return parse_response(&buf, true)?.ok_or(format!("read: {e}"))
                }
                Err(e) => return Err(format!("read: {e}")),
            };
            buf.extend_from_slice(&chunk[..n]);
            if let Some(answer) = parse_response(&buf, n == 0)? {
                return Ok(answer);
            }
        }
    };
    tokio::time::timeout(EXCHANGE_TIMEOUT, io)
        .await
        .map_err(|_| "no complete response in time".to_owned())?
}

/// Checks `answer` against `expect`, and every answer from a backend against the table.
fn check(name: &str, table: &RouteTable, expect: &Expect, answer: &Answer) {
    let body = String::from_utf8_lossy(&answer.body);
    let echo: Option<Value> = (answer.content_type.as_deref() == Some("application/json"))
        .then(|| serde_json::from_str(&body).unwrap_or_else(|e| panic!("{name}: echo JSON: {e}")));
    if let Some(echo) = &echo {
        check_backend(name, table, echo);
    }
    match expect {
        Expect::Backend {
            service,
            target,
            host,
        } => {
            assert_eq!(answer.status, 200, "{name}: {body}");
            let echo = echo.unwrap_or_else(|| panic!("{name}: not an echo answer: {body}"));
            assert_eq!(echo["service"], format!("default/{service}"), "{name}");
            let received = match echo["query"].as_str() {
                Some(query) => format!("{}?{query}", echo["path"].as_str().unwrap_or_default()),
                None => echo["path"].as_str().unwrap_or_default().to_owned(),
            };
            assert_eq!(&received, target, "{name}: target received");
            assert_eq!(
                routed_host(&echo).as_deref(),
                host.as_deref(),
                "{name}: host routed on"
            );
        }
        Expect::Layer { status, reason } => {
            assert!(echo.is_none(), "{name}: reached a backend: {body}");
            assert_eq!(answer.status, *status, "{name}: {body}");
            assert_eq!(
                answer.content_type.as_deref(),
                Some("text/plain; charset=utf-8"),
                "{name}: the layer's answer"
            );
            assert!(body.contains(reason), "{name}: {body:?} names {reason:?}");
        }
        Expect::Hyper(status) => {
            assert!(echo.is_none(), "{name}: reached a backend: {body}");
            assert_eq!(answer.status, *status, "{name}: {body}");
            assert!(
                answer.body.is_empty() && answer.content_type.is_none(),
                "{name}: the layer answered, not hyper: {body:?}"
            );
        }
    }
}

/// The canonical host the backend's request was routed on, from the Host it received (the
/// data plane forwards the authority it routed on; without one, its own client names the
/// backend's IP address, which routes like no host).
fn routed_host(echo: &Value) -> Option<String> {
    let host = echo["host"].as_str().expect("the backend received a Host");
    canonical_host(host, &CanonicalOptions::default())
        .unwrap_or_else(|e| panic!("the backend received Host {host:?}: {e}"))
        .name()
        .map(str::to_owned)
}

/// An answer from a backend: the path it received is canonical, and the table routes that
/// path on that host to exactly that backend.
fn check_backend(name: &str, table: &RouteTable, echo: &Value) {
    let path = echo["path"].as_str().expect("path");
    let canonical = canonical_path(path, &CanonicalOptions::default())
        .unwrap_or_else(|e| panic!("{name}: the backend received {path:?}, which is refused: {e}"));
    assert_eq!(
        canonical.path(),
        path,
        "{name}: the backend received a non-canonical path"
    );
    assert!(!canonical.is_modified(), "{name}: {path:?}");
    let host = routed_host(echo);
    let route = table.route(host.as_deref(), path).unwrap_or_else(|| {
        panic!(
            "{name}: {host:?} {path:?} routes nowhere, yet reached {}",
            echo["service"]
        )
    });
    let expected = match route.backend() {
        Backend::Service(s) => format!("{}/{}", s.namespace, s.name),
        other => panic!("{name}: {other:?}"),
    };
    assert_eq!(
        echo["service"], expected,
        "{name}: {host:?} {path:?} reached a backend it does not route to"
    );
}

fn manifests() -> Manifests {
    let manifests = Manifests::parse(INGRESSES);
    assert!(manifests.errors.is_empty(), "{:?}", manifests.errors);
    manifests
}

async fn start() -> (DataPlane, SocketAddr, RouteTable) {
    let manifests = manifests();
    let table = RouteTable::build(&manifests.ingresses, TableOptions::default());
    assert!(
        table.diagnostics().quarantined.is_empty(),
        "{:?}",
        table.diagnostics()
    );
    let listen = vec!["127.0.0.1:0".parse::<Listen>().unwrap()];
    let (plane, loaded) = DataPlane::start(Options::new(listen, Vec::new()), Some(manifests))
        .await
        .expect("the data plane starts");
    assert!(loaded.demo_backends && loaded.rejected.is_empty());
    let addr = plane.listeners()[0].0;
    (plane, addr, table)
}

/// Every HTTP/1 case, sent as raw bytes, each on its own connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_http1_requests_get_the_spec_outcome_and_the_right_backend() {
    let (plane, addr, table) = start().await;
    let cases = http1_cases();
    let mut names = std::collections::BTreeSet::new();
    let mut failed = Vec::new();
    for case in &cases {
        assert!(names.insert(case.name), "two cases named {:?}", case.name);
        // Every case runs; the failures are listed together at the end.
        let outcome = match exchange(addr, &case.request).await {
            Ok(answer) => std::panic::catch_unwind(AssertUnwindSafe(|| {
                check(case.name, &table, &case.expect, &answer)
            }))
            .is_ok(),
            Err(e) => {
                eprintln!("{}: {e}", case.name);
                false
            }
        };
        if !outcome {
            failed.push(case.name);
        }
    }
    plane.shutdown().await;
    assert!(
        failed.is_empty(),
        "{} of {} cases failed: {failed:?}",
        failed.len(),
        cases.len()
    );
}

/// One h2c request: the URI gives `:scheme`, `:authority` and `:path`; `hosts` become `Host`
/// header lines, sent as they are: hyper's HTTP/2 client neither drops nor rewrites them, as
/// the layer's reason for the disagreeing cases shows.
struct H2Case {
    name: &'static str,
    method: &'static str,
    uri: &'static str,
    hosts: &'static [&'static str],
    expect: Expect,
}

#[rustfmt::skip]
fn h2_cases() -> Vec<H2Case> {
    let h2 = |name, uri, hosts, expect| H2Case {
        name,
        method: "GET",
        uri,
        hosts,
        expect,
    };
    vec![
        H2Case {
            name: "CONNECT",
            method: "CONNECT",
            uri: "app.test:443",
            hosts: &[],
            expect: bad("authority-form request target is not routable"),
        },
        h2("Host only", "/public/../admin", &["App.Test"], to("admin", "/admin", "app.test")),
        h2("Host only, two lines", "/admin", &["app.test", "www.wild.test"], bad("several Host header lines")),
        h2("neither authority nor Host", "/admin", &[], bad("missing Host header")),
        h2("authority only", "http://app.test/admin", &[], to("admin", "/admin", "app.test")),
        h2("dot-dot", "http://app.test/public/../admin", &[], to("admin", "/admin", "app.test")),
        h2("dot-dot %2e%2E", "http://app.test/public/%2e%2E/admin", &[], to("admin", "/admin", "app.test")),
        h2("%2F", "http://app.test/public%2F..%2Fadmin", &[], bad("encoded slash")),
        h2("..;", "http://app.test/public/..;/admin", &[], bad("dot segment with path parameters")),
        h2("Host disagrees", "http://app.test/admin", &["www.wild.test"], bad("Host header disagrees with :authority")),
        h2("Host disagrees, authority is public", "http://www.wild.test/admin", &["app.test"], bad("Host header disagrees with :authority")),
        h2("Host an IP, authority a name", "http://app.test/admin", &["127.0.0.1"], bad("Host header disagrees with :authority")),
        h2("Host invalid", "http://app.test/admin", &["app.test:x"], bad("invalid port")),
        h2("Host agrees", "http://app.test/admin", &["app.test"], to("admin", "/admin", "app.test")),
        h2("Host agrees in another spelling", "http://app.test/public/../admin", &["APP.Test.:8080"], to("admin", "/admin", "app.test")),
        h2("two Host lines", "http://app.test/admin", &["app.test", "app.test"], bad("several Host header lines")),
        h2("authority with port and trailing dot", "http://App.Test.:8080/admin", &[], to("admin", "/admin", "app.test")),
        h2("authority with userinfo", "http://user@app.test/admin", &[], bad("userinfo in host")),
        h2("authority an IPv6 literal", "http://[::1]:8080/admin", &[], hostless("hostless-admin", "/admin")),
    ]
}

/// h2c by prior knowledge: `:authority` wins, a `Host` that disagrees with it is a 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_authority_and_host() {
    let (plane, addr, table) = start().await;
    for case in h2_cases() {
        let name = case.name;
        let io = TokioIo::new(TcpStream::connect(addr).await.expect("connect"));
        let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .expect("h2c handshake");
        let connection = tokio::spawn(conn);
        // h2 sends a relative URI (no `:authority`) only for a request not marked HTTP/2,
        // as from an HTTP/1 client it forwards.
        let version = match case.uri.starts_with('/') {
            true => Version::HTTP_11,
            false => Version::HTTP_2,
        };
        let mut request = Request::builder()
            .method(case.method)
            .version(version)
            .uri(case.uri)
            .body(Empty::<Bytes>::new())
            .expect("request");
        for host in case.hosts {
            request
                .headers_mut()
                .append(HOST, host.parse().expect("a header value"));
        }
        let answer = tokio::time::timeout(EXCHANGE_TIMEOUT, async {
            let response = sender
                .send_request(request)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e:?}"));
            let status = response.status().as_u16();
            let content_type = response
                .headers()
                .get(CONTENT_TYPE)
                .map(|v| v.to_str().expect("content type").to_owned());
            let body = response.into_body().collect().await.expect("body");
            Answer {
                status,
                content_type,
                body: body.to_bytes().to_vec(),
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{name}: no response in time"));
        check(name, &table, &case.expect, &answer);
        connection.abort();
    }
    plane.shutdown().await;
}
