use super::*;
use crate::canonical::tests::{option_sets, opts, request};
use crate::canonical::{canonicalize_request, RejectStatus};

fn host(authority: &str) -> Result<RequestHost, Rejection> {
    canonical_host(authority, &opts())
}

fn name(authority: &str) -> String {
    match host(authority) {
        Ok(RequestHost::Name(name)) => name.as_str().to_owned(),
        other => panic!("{authority:?}: expected a name, got {other:?}"),
    }
}

fn assert_host_400(authority: &str) {
    let err = host(authority).expect_err(authority);
    assert_eq!(err.status(), RejectStatus::BadRequest, "{authority:?}");
}

fn routed_host(req: &Request<()>) -> Result<RequestHost, Rejection> {
    request_host(req, &opts())
}

fn routed_name(req: &Request<()>) -> Option<String> {
    routed_host(req).unwrap().name().map(str::to_owned)
}

#[test]
fn host_is_lower_cased() {
    assert_eq!(name("A.Foo.com:8080"), "a.foo.com");
    assert_eq!(name("EXAMPLE.ORG"), "example.org");
    assert_eq!(name("already.lower"), "already.lower");
    assert_eq!(name("my_host-1.example"), "my_host-1.example");
}

#[test]
fn host_port_is_dropped_and_validated() {
    assert_eq!(name("foo.com:80"), "foo.com");
    assert_eq!(name("foo.com:0"), "foo.com");
    assert_eq!(name("foo.com:65535"), "foo.com");
    for bad_port in [
        "foo.com:",
        "foo.com:65536",
        "foo.com:123456",
        "foo.com:8a",
        "foo.com:-1",
        "foo.com:+80",
        "foo.com:80:80",
        "[::1]:",
        "[::1]:99999",
        "[::1]x",
    ] {
        assert_host_400(bad_port);
    }
}

#[test]
fn host_trailing_dot_dropped_once() {
    assert_eq!(name("foo.com."), "foo.com");
    assert_eq!(name("Foo.com.:443"), "foo.com");
    assert_host_400("foo.com..");
    assert_host_400(".");
}

#[test]
fn host_empty_label_rejected() {
    for h in ["", ":80", "foo..com", ".foo.com", "a..", "..", ".:80"] {
        assert_host_400(h);
    }
}

#[test]
fn host_userinfo_rejected() {
    assert_host_400("user@foo.com");
    assert_host_400("user:pass@foo.com:80");
    assert_host_400("@foo.com");
}

#[test]
fn host_percent_rejected() {
    assert_host_400("foo%2ecom");
    assert_host_400("[fe80::1%25eth0]");
}

#[test]
fn host_slash_rejected() {
    assert_host_400("foo.com/evil");
    assert_host_400("/");
    assert_host_400("foo.com\\evil");
}

#[test]
fn host_whitespace_rejected() {
    for h in [
        "foo .com",
        " foo.com",
        "foo.com ",
        "foo\t.com",
        "foo\n.com",
        "foo\0",
    ] {
        assert_host_400(h);
    }
}

#[test]
fn host_non_ascii_rejected() {
    assert_host_400("bücher.de");
    assert_host_400("ex\u{0430}mple.com");
    // Other punctuation is outside the host alphabet too.
    for h in ["foo,com", "foo;com", "foo*com", "[foo", "foo]", "::1"] {
        assert_host_400(h);
    }
}

#[test]
fn ipv4_literal_is_ip() {
    assert_eq!(host("127.0.0.1"), Ok(RequestHost::Ip));
    assert_eq!(host("10.1.2.3:8080"), Ok(RequestHost::Ip));
    assert_eq!(host("10.1.2.3."), Ok(RequestHost::Ip));
    assert_eq!(host("127.0.0.1").unwrap().name(), None);
    // Numeric forms that are not dotted-quad IPv4 are not names either.
    for h in ["1.2.3", "999.1.1.1", "1.2.3.4.5", "2130706433", "010.0.0.1"] {
        assert_host_400(h);
    }
    assert_eq!(name("1.2.3.com"), "1.2.3.com");
}

#[test]
fn ipv6_literal_is_ip() {
    assert_eq!(host("[::1]"), Ok(RequestHost::Ip));
    assert_eq!(host("[::1]:8080"), Ok(RequestHost::Ip));
    assert_eq!(host("[2001:DB8::1]"), Ok(RequestHost::Ip));
    for h in ["[::1", "[not-ip]", "[]", "[v1.x]", "[::1]]"] {
        assert_host_400(h);
    }
}

#[test]
fn host_too_long_rejected() {
    let label = "a".repeat(63);
    let max = format!("{label}.{label}.{label}.{}", "a".repeat(61));
    assert_eq!(max.len(), 253);
    assert_eq!(name(&max), max);
    assert_eq!(name(&format!("{max}.:80")), max);
    assert_host_400(&format!("{max}b"));
    assert_host_400(&format!("{}.com", "a".repeat(64)));
    assert_host_400(&"a.".repeat(100_000));

    let small = CanonicalOptions {
        max_host_len: 7,
        ..opts()
    };
    assert!(canonical_host("foo.com", &small).is_ok());
    assert_eq!(
        canonical_host("foo.comm", &small).unwrap_err().status(),
        RejectStatus::BadRequest
    );
    let huge = CanonicalOptions {
        max_host_len: usize::MAX,
        ..opts()
    };
    assert!(canonical_host(&format!("{max}b"), &huge).is_err());
}

#[test]
fn absolute_form_authority_wins_over_host() {
    let req = request(Version::HTTP_11, "http://A.Foo.com:8080/x", &["other.com"]);
    assert_eq!(routed_name(&req).as_deref(), Some("a.foo.com"));
    // HTTP/1.1 still needs one valid Host (RFC 9112 §3.2), even though it is not routed on.
    let req = request(Version::HTTP_11, "http://a.com/x", &["bad host"]);
    assert_eq!(
        routed_host(&req).unwrap_err().status(),
        RejectStatus::BadRequest
    );
    let req = request(Version::HTTP_11, "http://a.com/x", &[]);
    assert_eq!(
        routed_host(&req).unwrap_err().reason(),
        "missing Host header"
    );
    let req = request(Version::HTTP_10, "http://a.com/x", &[]);
    assert_eq!(routed_name(&req).as_deref(), Some("a.com"));
    let req = request(Version::HTTP_11, "http://user@a.com/x", &["a.com"]);
    assert_eq!(routed_host(&req).unwrap_err().reason(), "userinfo in host");
    let req = request(Version::HTTP_11, "http://10.0.0.1/x", &["a.com"]);
    assert_eq!(routed_host(&req), Ok(RequestHost::Ip));
}

#[test]
fn h2_authority_wins() {
    for version in [Version::HTTP_2, Version::HTTP_3] {
        let req = request(version, "https://Foo.com/x", &[]);
        assert_eq!(routed_name(&req).as_deref(), Some("foo.com"));
        // Same host, different port or case: agrees.
        let req = request(version, "https://foo.com:443/x", &["FOO.com.:8443"]);
        assert_eq!(routed_name(&req).as_deref(), Some("foo.com"));
        let req = request(version, "https://[::1]/x", &["[0::1]:80"]);
        assert_eq!(routed_host(&req), Ok(RequestHost::Ip));
        // No :authority: Host is used instead.
        let req = request(version, "/x", &["bar.com"]);
        assert_eq!(routed_name(&req).as_deref(), Some("bar.com"));
    }
}

#[test]
fn h2_host_disagreeing_with_authority_is_400() {
    for (authority, host_header) in [
        ("https://foo.com/x", "bar.com"),
        ("https://foo.com/x", "foo.com.evil"),
        ("https://127.0.0.1/x", "127.0.0.2"),
        ("https://[::1]/x", "127.0.0.1"),
        ("https://foo.com/x", "bad host"),
    ] {
        for version in [Version::HTTP_2, Version::HTTP_3] {
            let req = request(version, authority, &[host_header]);
            let err = routed_host(&req).expect_err(host_header);
            assert_eq!(err.status(), RejectStatus::BadRequest);
        }
    }
    let req = request(Version::HTTP_2, "/x", &[]);
    assert!(routed_host(&req).is_err());
}

#[test]
fn http11_without_host_is_400() {
    let req = request(Version::HTTP_11, "/x", &[]);
    let err = routed_host(&req).unwrap_err();
    assert_eq!(err.status(), RejectStatus::BadRequest);
    assert_eq!(err.reason(), "missing Host header");
}

#[test]
fn duplicate_host_is_400() {
    for version in [Version::HTTP_10, Version::HTTP_11, Version::HTTP_2] {
        let req = request(version, "/x", &["a.com", "a.com"]);
        assert_eq!(
            routed_host(&req).unwrap_err().reason(),
            "several Host header lines"
        );
        let req = request(version, "http://a.com/x", &["a.com", "b.com"]);
        assert!(routed_host(&req).is_err());
    }
}

#[test]
fn the_host_line_is_found_whether_or_not_other_headers_repeat() {
    let mut req = request(Version::HTTP_11, "/x", &["A.com:8080"]);
    assert_eq!(plain_host_name(&req, &opts()), Some(&b"A.com"[..]));
    for value in ["text/html", "text/plain"] {
        req.headers_mut()
            .append(http::header::ACCEPT, value.parse().unwrap());
    }
    assert_eq!(routed_name(&req).as_deref(), Some("a.com"));
    assert_eq!(plain_host_name(&req, &opts()), Some(&b"A.com"[..]));
    req.headers_mut()
        .append(http::header::HOST, "a.com".parse().unwrap());
    assert_eq!(plain_host_name(&req, &opts()), None);
    assert_eq!(
        routed_host(&req).unwrap_err().reason(),
        "several Host header lines"
    );
    let mut req = request(Version::HTTP_10, "/x", &[]);
    req.headers_mut()
        .append(http::header::ACCEPT, "text/html".parse().unwrap());
    assert_eq!(plain_host_name(&req, &opts()), None);
    assert!(matches!(routed_host(&req), Ok(RequestHost::None)));
}

#[test]
fn invalid_host_header_is_400() {
    for value in ["", "a b", "a@b.com", "a.com/x", "a.com:99999", "a..com"] {
        let req = request(Version::HTTP_11, "/x", &[value]);
        let err = routed_host(&req).expect_err(value);
        assert_eq!(err.status(), RejectStatus::BadRequest, "{value:?}");
    }
    let mut req = request(Version::HTTP_11, "/x", &[]);
    req.headers_mut().insert(
        http::header::HOST,
        http::HeaderValue::from_bytes(b"caf\xe9.com").unwrap(),
    );
    assert_eq!(
        routed_host(&req).unwrap_err().reason(),
        "Host header is not visible ASCII"
    );
}

#[test]
fn http10_without_host_is_hostless() {
    let req = request(Version::HTTP_10, "/x", &[]);
    assert_eq!(routed_host(&req), Ok(RequestHost::None));
    assert_eq!(routed_host(&req).unwrap().name(), None);
    let req = request(Version::HTTP_09, "/x", &[]);
    assert_eq!(routed_host(&req), Ok(RequestHost::None));
    let req = request(Version::HTTP_10, "/x", &["Foo.com"]);
    assert_eq!(routed_name(&req).as_deref(), Some("foo.com"));
}

#[test]
fn forwarded_headers_ignored() {
    let mut req = request(Version::HTTP_11, "/x", &["real.com"]);
    let headers = req.headers_mut();
    headers.insert("x-forwarded-host", "evil.com".parse().unwrap());
    headers.insert("forwarded", "host=evil.com".parse().unwrap());
    assert_eq!(routed_name(&req).as_deref(), Some("real.com"));

    let mut req = request(Version::HTTP_10, "/x", &[]);
    req.headers_mut()
        .insert("x-forwarded-host", "evil.com".parse().unwrap());
    assert_eq!(routed_host(&req), Ok(RequestHost::None));
}

#[test]
fn authority_form_target_is_400() {
    // `GET b.com` would otherwise route on b.com, not on the Host a.com, and path `/`.
    for version in [Version::HTTP_10, Version::HTTP_11, Version::HTTP_2] {
        for target in ["b.com", "b.com:443", "admin"] {
            let req = request(version, target, &["a.com"]);
            let err = canonicalize_request(&req, &opts()).unwrap_err();
            assert_eq!(
                err.status(),
                RejectStatus::BadRequest,
                "{version:?} {target}"
            );
            assert!(err.reason().contains("authority-form"), "{err}");
        }
    }
    // Absolute-form keeps routing on its authority.
    let req = request(Version::HTTP_11, "http://b.com/x", &["a.com"]);
    assert_eq!(routed_name(&req).as_deref(), Some("b.com"));
}

#[test]
fn canonical_host_equality_ignores_spare_capacity() {
    let a = CanonicalHost::from_validated("Foo.com").unwrap();
    let b = CanonicalHost::from_validated("foo.com").unwrap();
    assert_eq!(a, b);
    assert_eq!(format!("{a:?}"), "CanonicalHost(\"foo.com\")");
    assert!(CanonicalHost::from_validated(&"a".repeat(254)).is_none());
}

/// Likewise for hosts; names from the fast path also leave the spare
/// capacity zeroed.
fn assert_fast_and_full_hosts_agree(authority: &str) {
    for o in option_sets() {
        let full = parse_host_full(authority, &o);
        let mut host = CanonicalHost::EMPTY;
        if fast_host(authority.as_bytes(), &o, &mut host).is_some() {
            let len = usize::from(host.len);
            assert!(host.buf[len..].iter().all(|&b| b == 0), "{authority:?}");
            assert_eq!(Ok(ParsedHost::Name(host)), full, "{authority:?} {o:?}");
        }
        assert_eq!(parse_host(authority, &o), full, "{authority:?} {o:?}");
        assert_eq!(
            canonical_host(authority, &o),
            full.map(RequestHost::from),
            "{authority:?} {o:?}"
        );
    }
}

#[test]
fn fast_host_agrees_with_full_parser() {
    let label = "a".repeat(63);
    let max = format!("{label}.{label}.{label}.{}", "a".repeat(61));
    let long_hosts = [
        format!("{label}.com"),
        format!("{label}b.com"),
        format!("x.{label}"),
        format!("x.{label}b"),
        format!("x.{label}."),
        format!("x.{label}b."),
        format!("x.{label}:80"),
        max.clone(),
        format!("{max}."),
        format!("{max}.:80"),
        format!("{max}:80"),
        format!("{max}b"),
        format!("{}.com", "a".repeat(64)),
        "a.".repeat(126),
        "a.".repeat(127),
        format!("{}a", "a.".repeat(126)),
        "1.".repeat(100),
    ];
    let hosts = [
        "SVC0.example.com:8080",
        "SVC0.example.com",
        "svc0.example.com",
        "A.Foo.com:8080",
        "foo.com.",
        "Foo.com.:443",
        "foo.com..",
        ".",
        "..",
        "",
        ":",
        ":80",
        ".:80",
        "a:",
        "a:0",
        "a:65535",
        "a:65536",
        "a:123456",
        "a:00080",
        "a:8a",
        "a:+80",
        "a:80:80",
        "a::80",
        "foo..com",
        ".foo.com",
        "a..",
        "my_host-1.example",
        "-.com",
        "_",
        "-",
        "1-2.3",
        "1.2.3.4",
        "1.2.3.4:80",
        "1.2.3.4.",
        "1.2.3",
        "1.2.3.",
        "010.0.0.1",
        "2130706433",
        "999.1.1.1",
        "1.2.3.com",
        "1_2.3",
        "[::1]",
        "[::1]:80",
        "[::1]x",
        "[v1.x]",
        "user@foo.com",
        "foo%2ecom",
        "foo.com/evil",
        "foo.com\\evil",
        "foo .com",
        "foo\t.com",
        "foo\u{0}",
        "foo.com\u{0}",
        "b\u{fc}cher.de",
        "foo,com",
        "foo*com",
        "abcdefg.",
        "abcdefgh",
        "abcdefgh.",
        "abcdefg.h",
        "abcdefgh.ijklmnop",
        "abcdefgh.ijklmnop.",
        "abcdefgh.ijklmnop:1",
        "abcdefgh..ijklmnop",
        "abcdefg..hijklmnop",
        "abcdefg.:8",
        "ABCDEFGH.IJKLMNOP.QRST",
        "abcdefgh:",
        "abcdefgh:1",
        "abcdefgh:12345",
        "abcdefgh:123456",
        "12345678",
        "12345678.9",
        "1234567-.9",
        "abcdefg\u{7f}",
        "abcdefg\u{e9}",
        ".abcdefgh",
        "abc.efg.ijk.mno.qrs",
        "[abcdefgh]",
    ];
    for authority in hosts
        .iter()
        .copied()
        .chain(long_hosts.iter().map(String::as_str))
    {
        assert_fast_and_full_hosts_agree(authority);
    }
    for authority in [
        "SVC0.example.com:8080",
        "a.b",
        "foo.com.",
        "x.y.z.:1",
        "1.2.3.com",
        "1-2.3",
        &max,
    ] {
        let mut host = CanonicalHost::EMPTY;
        assert!(
            fast_host(authority.as_bytes(), &opts(), &mut host).is_some(),
            "{authority:?}"
        );
    }
}

proptest::proptest! {
    #[test]
    fn fast_and_full_hosts_agree_on_random_authorities(
        authority in proptest::prop_oneof![
            "[.:a-cA-C0-9_\\-\\[\\]@% \u{0}\u{e9}]{0,30}",
            // Mostly names: labels of any length, a trailing dot, a port.
            "([a-cA-C0-9_-]{0,9}\\.){0,5}[a-cA-C0-9_-]{0,9}\\.?(:[0-9]{0,6})?",
            "([0-9]{1,3}\\.){0,4}[0-9]{0,3}\\.?(:[0-9]{1,5})?",
        ],
    ) {
        assert_fast_and_full_hosts_agree(&authority);
    }
}
