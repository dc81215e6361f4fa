use std::time::{Duration, Instant};

use super::*;
use crate::canonical::tests::{option_sets, opts};
use crate::canonical::RejectStatus;

fn path_with(target: &str, options: &CanonicalOptions) -> Result<String, Rejection> {
    canonical_path(target, options).map(|p| p.path().to_owned())
}

fn path(target: &str) -> Result<String, Rejection> {
    path_with(target, &opts())
}

fn assert_paths(cases: &[(&str, &str)]) {
    for &(input, expected) in cases {
        assert_eq!(path(input).as_deref(), Ok(expected), "{input:?}");
    }
}

fn assert_path_400(target: &str) {
    let err = path(target).expect_err(target);
    assert_eq!(err.status(), RejectStatus::BadRequest, "{target:?}");
}

#[test]
fn path_fragment_cut() {
    assert_paths(&[("/a#frag", "/a"), ("/a/b#x/../y", "/a/b"), ("#x", "/")]);
    let p = canonical_path("/a?q=1#frag", &opts()).unwrap();
    assert_eq!((p.path(), p.query()), ("/a", Some("q=1")));
    assert_eq!(p.path_and_query(), "/a?q=1");
}

#[test]
fn path_query_split_off_and_kept() {
    let p = canonical_path("/a/../b?x=/../%2F&y= #", &opts()).unwrap();
    assert_eq!(p.path(), "/b");
    assert_eq!(p.query(), Some("x=/../%2F&y= "));
    assert_eq!(p.path_and_query(), "/b?x=/../%2F&y= ");

    let p = canonical_path("/b?", &opts()).unwrap();
    assert_eq!((p.path(), p.query()), ("/b", Some("")));
    assert_eq!(p.path_and_query(), "/b?");

    let p = canonical_path("/b", &opts()).unwrap();
    assert_eq!(p.query(), None);

    let p = canonical_path("?x=1", &opts()).unwrap();
    assert_eq!((p.path(), p.query()), ("/", Some("x=1")));
    assert_eq!(p.path_and_query(), "/?x=1");
}

#[test]
fn path_control_bytes_rejected() {
    for target in ["/a\0b", "/a\r\nb", "/a\tb", "/a\x7fb", "/\x1b"] {
        assert_path_400(target);
    }
}

#[test]
fn path_space_rejected() {
    assert_path_400("/a b");
    assert_path_400("/ ");
}

#[test]
fn path_non_ascii_rejected() {
    assert_path_400("/caf\u{e9}");
    assert_path_400("/\u{2215}etc");
}

#[test]
fn path_bad_percent_triplet_rejected() {
    for target in ["/a%", "/a%2", "/a%zz", "/a%2g", "/a%%41", "/%-1"] {
        assert_path_400(target);
    }
}

#[test]
fn path_percent_00_rejected() {
    assert_path_400("/a%00b");
    assert_path_400("/a%00");
}

#[test]
fn path_encoded_slash_rejected() {
    assert_path_400("/admin%2F");
    assert_path_400("/a%2fb");
    assert_path_400("/a%2F..%2Fb");
}

#[test]
fn path_encoded_backslash_rejected() {
    assert_path_400("/a%5Cb");
    assert_path_400("/a%5cb");
}

#[test]
fn path_unreserved_decoded() {
    assert_paths(&[
        ("/%41%62%7E%2D%2e%5F%30", "/Ab~-._0"),
        ("/a%2Db", "/a-b"),
        ("/%7euser", "/~user"),
    ]);
}

#[test]
fn path_reserved_kept_upper_hex() {
    assert_paths(&[
        ("/a%3ab", "/a%3Ab"),
        ("/a%3Ab", "/a%3Ab"),
        ("/%25", "/%25"),
        ("/%2541", "/%2541"),
        ("/%ff%Fe", "/%FF%FE"),
        ("/%20", "/%20"),
        ("/%3f%23", "/%3F%23"),
    ]);
}

#[test]
fn path_backslash_becomes_slash() {
    assert_paths(&[
        ("/a\\b", "/a/b"),
        ("/a\\..\\b", "/b"),
        ("/\\\\evil.com", "/evil.com"),
    ]);
    assert_path_400("\\a");
}

#[test]
fn path_dot_semicolon_segment_rejected() {
    for target in [
        "/a/..;/admin",
        "/a/..;jsessionid=1/b",
        "/.;x",
        "/a/%2e%2e;x/b",
        "/a/%2E;",
        "/a/..%3B/b",
        "/a/.%3bx",
    ] {
        assert_path_400(target);
    }
    assert_paths(&[
        ("/a;x", "/a;x"),
        ("/;", "/;"),
        ("/...;x", "/...;x"),
        ("/a.;b", "/a.;b"),
    ]);
}

#[test]
fn path_dot_segments_removed() {
    assert_paths(&[
        ("/public/../admin", "/admin"),
        ("/public/%2e%2e/admin", "/admin"),
        ("/public/%2E%2e/admin", "/admin"),
        ("/a/./b", "/a/b"),
        ("/a/%2e/b", "/a/b"),
        ("/a/b/../c", "/a/c"),
        ("/a/b/../../c", "/c"),
        ("/a/.%2e/c", "/c"),
        ("/.", "/"),
        ("/a/..b/c.", "/a/..b/c."),
        ("/a/.../b", "/a/.../b"),
    ]);
}

#[test]
fn path_dotdot_above_root_dropped() {
    assert_paths(&[
        ("/..", "/"),
        ("/../a", "/a"),
        ("/../../../etc/passwd", "/etc/passwd"),
        ("/a/../../b", "/b"),
    ]);
}

#[test]
fn path_slash_runs_merged() {
    assert_paths(&[
        ("//a///b", "/a/b"),
        ("//", "/"),
        ("/a//", "/a/"),
        ("///", "/"),
        // Dot segments are removed before merging, as the contract orders it.
        ("/a//../b", "/a/b"),
    ]);
}

#[test]
fn path_case_preserved() {
    assert_paths(&[("/Admin/PANEL", "/Admin/PANEL"), ("/%41dmin", "/Admin")]);
}

#[test]
fn path_trailing_slash_kept() {
    assert_paths(&[
        ("/foo/", "/foo/"),
        ("/foo/.", "/foo/"),
        ("/foo/..", "/"),
        ("/a/b/..", "/a/"),
        ("/foo", "/foo"),
        ("", "/"),
        ("/", "/"),
    ]);
}

#[test]
fn path_origin_form_required() {
    assert_path_400("*");
    assert_path_400("a/b");
    assert_path_400("http://x/a");
    let err = path("*").unwrap_err();
    assert!(err.reason().contains("asterisk"), "{err}");
}

#[test]
fn strict_mode_rejects_non_canonical() {
    let strict = CanonicalOptions {
        mode: PathMode::Strict,
        ..opts()
    };
    for target in ["/a/../b", "//a", "/%41", "/a%3a", "/a\\b", "/a/.", "/a/"] {
        let result = canonical_path(target, &strict);
        if target == "/a/" {
            assert_eq!(result.unwrap().path(), "/a/");
        } else {
            let err = result.expect_err(target);
            assert_eq!(err.status(), RejectStatus::BadRequest);
            assert_eq!(err.reason(), "path is not in canonical form");
        }
    }
    let p = canonical_path("/a/b%3A?x=..", &strict).unwrap();
    assert_eq!((p.path(), p.is_modified()), ("/a/b%3A", false));
    assert_eq!(path_with("", &strict).as_deref(), Ok("/"));
    assert!(canonical_path("/a%2F", &strict).is_err());
}

#[test]
fn raw_mode_keeps_path() {
    let raw = CanonicalOptions {
        mode: PathMode::Raw,
        ..opts()
    };
    for target in [
        "/a/../b", "//a", "/%2e%2E", "/a%2Fb", "/a\\b", "/..;x", "/a%zz",
    ] {
        let p = canonical_path(target, &raw).unwrap();
        assert_eq!(p.path(), target);
        assert!(!p.is_modified());
        assert!(matches!(p.into_path(), Cow::Borrowed(_)));
    }
    let p = canonical_path("/a/../b?q#f", &raw).unwrap();
    assert_eq!((p.path(), p.query()), ("/a/../b", Some("q")));
    for target in ["/a b", "/a\0", "/\u{e9}", "*", "a"] {
        assert!(canonical_path(target, &raw).is_err(), "{target:?}");
    }
    let few = CanonicalOptions {
        max_segments: 2,
        ..raw.clone()
    };
    assert!(canonical_path("/a/b", &few).is_ok());
    assert_eq!(
        canonical_path("/a//b", &few).unwrap_err().status(),
        RejectStatus::UriTooLong
    );
}

#[test]
fn path_too_long_is_414() {
    let o = CanonicalOptions {
        max_path_len: 8,
        ..opts()
    };
    assert!(canonical_path("/2345678", &o).is_ok());
    assert!(canonical_path("/2345678?long-query-is-fine#and-fragment", &o).is_ok());
    for target in ["/23456789", "/23456789?q", "/23456789#f", "/a/./../b/"] {
        let err = canonical_path(target, &o).expect_err(target);
        assert_eq!(err.status(), RejectStatus::UriTooLong, "{target:?}");
    }
    let long = format!("/{}", "a".repeat(8192));
    assert_eq!(path(&long).unwrap_err().status(), RejectStatus::UriTooLong);
    assert!(path(&long[..8192]).is_ok());
}

#[test]
fn too_many_segments_is_414() {
    let at_limit = "/a".repeat(256);
    assert!(path(&at_limit).is_ok());
    let over = "/a".repeat(257);
    assert_eq!(path(&over).unwrap_err().status(), RejectStatus::UriTooLong);
    // Counted on the canonical path: collapsed segments do not count.
    let collapsing = format!("{}{}", "/a/..".repeat(300), "/b");
    assert_eq!(path(&collapsing).as_deref(), Ok("/b"));
    let merging = format!("{}b", "/".repeat(1000));
    assert_eq!(path(&merging).as_deref(), Ok("/b"));
    assert_eq!(
        path(&format!("{at_limit}/")).unwrap_err().status(),
        RejectStatus::UriTooLong
    );
}

#[test]
fn canonical_path_borrows_when_unchanged() {
    for target in [
        "/",
        "/a/b",
        "/a/b/",
        "/a%3Ab;c=d/e.f",
        "/~x/-y/_z/...",
        "/a?b=../",
    ] {
        let p = canonical_path(target, &opts()).unwrap();
        assert!(!p.is_modified(), "{target:?}");
        assert!(matches!(p.path_and_query(), Cow::Borrowed(s) if s == target));
        assert!(matches!(p.into_path(), Cow::Borrowed(_)), "{target:?}");
    }
    let p = canonical_path("/a/./b?q", &opts()).unwrap();
    assert!(p.is_modified());
    assert!(matches!(p.clone().into_path(), Cow::Owned(_)));
    assert_eq!(p.path_and_query(), "/a/b?q");
    assert!(canonical_path("", &opts()).unwrap().is_modified());
}

#[test]
fn canonicalisation_is_linear() {
    let big = CanonicalOptions {
        max_path_len: 4 << 20,
        max_segments: 1 << 20,
        ..opts()
    };
    let n = 1 << 20;
    let inputs = [
        "/..".repeat(n / 3),
        format!("/{}", "%2e%2e/".repeat(n / 7)),
        format!("{}{}", "/a".repeat(n / 4), "/..".repeat(n / 6)),
        format!("/{}{}", "b".repeat(n / 2), "/..".repeat(n / 6)),
        "/".repeat(n),
        format!("/{}", "./".repeat(n / 2)),
    ];
    let start = Instant::now();
    for input in &inputs {
        let p = canonical_path(input, &big).unwrap();
        assert!(p.path().len() <= input.len());
        let strict = CanonicalOptions {
            mode: PathMode::Strict,
            ..big.clone()
        };
        assert!(canonical_path(input, &strict).is_err());
    }
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(canonical_path(&inputs[0], &big).unwrap().path(), "/");
    assert_eq!(canonical_path(&inputs[1], &big).unwrap().path(), "/");

    // The default limit rejects a huge path without scanning it all.
    let huge = "/".repeat(16 << 20);
    let start = Instant::now();
    assert_eq!(path(&huge).unwrap_err().status(), RejectStatus::UriTooLong);
    assert!(start.elapsed() < Duration::from_millis(500));
}

/// The fast path answers only what the full pass answers, and
/// `canonical_path` answers what the full pass answers.
fn assert_fast_and_full_paths_agree(target: &str) {
    for o in option_sets() {
        let full = canonical_path_full(target, &o);
        if let Some(fast) = fast_canonical_path(target, &o) {
            assert_eq!(Ok(fast), full, "{target:?} {o:?}");
        }
        if let Some(rewritten) = rewrite_path(target, &o) {
            assert_eq!(Ok(rewritten), full, "{target:?} {o:?}");
        }
        assert_eq!(canonical_path(target, &o), full, "{target:?} {o:?}");
    }
}

const TRICKY_PATHS: &[&str] = &[
    "/.well-known/x",
    "/a/..b",
    "/a/b.",
    "/a/.b/",
    "/a%41",
    "/a//b",
    "/a\\b",
    "/..;x",
    "/a/b/",
    "/",
    "/a?b",
    "/a#b",
    "/%2e",
    "",
    "?",
    "#",
    "*",
    "a",
    "//",
    "/.",
    "/..",
    "/...",
    "/./",
    "/../",
    "/.;",
    "/..;",
    "/...;",
    "/.a;",
    "/a/.",
    "/a/..",
    "/a/..?x",
    "/a/.#x",
    "/a/./?x",
    "/;",
    "/;/",
    "/a;.",
    "/a/;..",
    "/a b",
    "/a\tb",
    "/a\u{7f}",
    "/caf\u{e9}",
    "/a?b#c",
    "/a?b?c#d#e",
    "/a#b?c",
    "/a??",
    "/a?#",
    "/a?%zz/../",
    "/api/v2/orders/17?page=1",
    "/api/v2/orders/17",
    "/abcdefg/",
    "/abcdefgh",
    "/abcdefg//",
    "/abcdefg/.",
    "/abcdefg/.hij",
    "/abcdefg/..",
    "/abcdefg/../x",
    "/abcdefgh/.ijklmnop",
    "/abcdefgh/ijklmno/",
    "/abcdefgh/ijklmno/.",
    "/abcdefgh/ijklmno//",
    "/abcdefgh/ijklmnop?q",
    "/abcdefgh/ijklmnop#f",
    "/abcdef%/ijklmnop",
    "/abcdef\\/ijklmnop",
    "/abcdefg?hijklmnop",
    "/abcdefg#hijklmnop",
    "/abcdefg\u{0}hijklmn",
    "/a/b/c/d/e/f/g/h/i/j",
    "/12345678",
    "/123456789",
    "/1234567?",
    "/12345678?",
    "/a/b",
    "/a/b/c",
    "/~x/-y/_z/...",
    "/a%3Ab;c=d/e.f",
];

#[test]
fn fast_path_agrees_with_full_path() {
    for &target in TRICKY_PATHS {
        assert_fast_and_full_paths_agree(target);
    }
    // Common canonical targets do take the fast path.
    for target in [
        "/api/v2/orders/17?page=1",
        "/",
        "/a/b/",
        "/a/b.",
        "/.well-known/acme-challenge/token",
        "/a/..b",
        "/a/.b/",
        "/...",
        "/a;b/c?x#y",
        "/abcdefgh/ijklmnop/qrstuvw/xyz",
    ] {
        assert!(fast_canonical_path(target, &opts()).is_some(), "{target:?}");
    }
    // Everything that changes or is rejected leaves the fast path.
    for target in [
        "/a%41", "/a//b", "/a\\b", "/..;x", "/%2e", "/a/.", "/a/..", "/.", "//", "",
    ] {
        assert!(fast_canonical_path(target, &opts()).is_none(), "{target:?}");
    }
    // The common rewrites, and canonical escapes, take the one-pass rewrite ...
    for (target, expected, modified) in [
        ("/a%41?x=1", "/aA", true),
        ("/a//b", "/a/b", true),
        ("/a\\b/", "/a/b/", true),
        ("/x/../a/./b", "/a/b", true),
        ("/a/b/..", "/a/", true),
        ("//a//..//b", "/a/b", true),
        ("/%2e%2E/a", "/a", true),
        ("/a%3b/%7e", "/a%3B/~", true),
        ("/a%20b/%3B", "/a%20b/%3B", false),
    ] {
        let path = rewrite_path(target, &opts()).expect(target);
        assert_eq!(
            (path.path(), path.is_modified()),
            (expected, modified),
            "{target:?}"
        );
        assert_fast_and_full_paths_agree(target);
    }
    // ... and whatever is rejected is left to the full pass, for its reasons.
    for target in [
        "/..;x", "/a%2Fb", "/a%00", "/a%zz", "/a%4", "/a b", "/\u{e9}", "", "*",
    ] {
        assert!(rewrite_path(target, &opts()).is_none(), "{target:?}");
    }
}

proptest::proptest! {
    #[test]
    fn fast_and_full_paths_agree_on_random_targets(
        target in proptest::prop_oneof![
            "[/./;?#%2eEfF5cC\\a-c0-9 \u{7f}\u{e9}]{0,40}",
            // Mostly canonical: segments, dot segments, a query and a fragment.
            "(/(\\.{0,3}[a-c;]{0,9}|\\.{1,2};?|%2[eEfF]|\\\\)){0,7}/?(\\?[a-c/.%?]{0,5})?(#[a-c?]{0,3})?",
            "(/[a-c;.]{1,9}){0,7}/?(\\?[a-c/.%?]{0,5})?(#[a-c?]{0,3})?",
            // Rewrites: escapes of every kind, dot segments, runs of `/`, `\`.
            "((/|\\\\)(\\.{1,2}|[a-c;]{0,3}|%[0-7][0-9a-fA-F]){0,3}){0,8}(\\?[a-c%]{0,3})?",
        ],
    ) {
        assert_fast_and_full_paths_agree(&target);
    }
}
