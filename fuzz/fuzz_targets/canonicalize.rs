//! Request canonicalisation (routing contract §5, `docs/routing.md`) on arbitrary bytes never
//! panics, and what it accepts is canonical: the path is a fixed point free of empty and dot
//! segments and of encoded `/` and `\`, the host is a lower-case DNS name that canonicalises to
//! itself, and the limits only ever reject, never change an answer.
//!
//! Input: the `Host` bytes, a line feed, then the request-target bytes. Without a line feed the
//! whole input is the request-target and no `Host` is checked.
//!
//! Work is bounded deterministically: every call may allocate only a few blocks whose sizes add
//! up to a small multiple of its input (counted by the allocator below). Running time is bounded
//! by libFuzzer's `-timeout`, which `.ci/run` sets.
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use http::{HeaderValue, Request, Version};
use ingress_router::{
    canonical_host, canonical_path, canonicalize_request, request_host, CanonicalOptions, PathMode,
    RejectStatus, Rejection, RequestHost,
};
use libfuzzer_sys::fuzz_target;

/// The system allocator, counting what this thread allocates.
struct Counting;

thread_local! {
    static BLOCKS: Cell<usize> = const { Cell::new(0) };
    static BYTES: Cell<usize> = const { Cell::new(0) };
}

fn count(size: usize) {
    // `try_with`: nothing is counted while the thread-local is torn down.
    let _ = BLOCKS.try_with(|b| b.set(b.get() + 1));
    let _ = BYTES.try_with(|b| b.set(b.get() + size));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and checks that it allocated at most 4 blocks of at most `4 * input + 256` bytes in
/// all: linear in the input, and the same on every run.
fn bounded<T>(what: &str, input: &str, f: impl FnOnce() -> T) -> T {
    let (blocks, bytes) = (BLOCKS.get(), BYTES.get());
    let out = f();
    let blocks = BLOCKS.get() - blocks;
    let bytes = BYTES.get() - bytes;
    assert!(
        blocks <= 4 && bytes <= 4 * input.len() + 256,
        "{what} of {} bytes allocated {blocks} blocks, {bytes} bytes",
        input.len()
    );
    out
}

/// Small limits, so that short inputs reach them.
fn small_limits(mode: PathMode) -> CanonicalOptions {
    CanonicalOptions {
        mode,
        max_path_len: 24,
        max_segments: 4,
        max_host_len: 12,
    }
}

fn with_mode(mode: PathMode) -> CanonicalOptions {
    CanonicalOptions {
        mode,
        ..CanonicalOptions::default()
    }
}

fn slashes(path: &str) -> usize {
    path.bytes().filter(|&b| b == b'/').count()
}

/// Every property of a canonical path that routing contract §5 promises.
fn assert_canonical_path(path: &str, received: &str, opts: &CanonicalOptions) {
    assert!(path.starts_with('/'), "{path:?}");
    for bad in ["//", "/./", "/../"] {
        assert!(!path.contains(bad), "{path:?} contains {bad:?}");
    }
    assert!(
        !path.ends_with("/.") && !path.ends_with("/.."),
        "{path:?} ends in a dot segment"
    );
    assert!(
        path.split('/').all(|seg| seg != "." && seg != ".."),
        "{path:?}"
    );
    let upper = path.to_ascii_uppercase();
    assert!(
        !upper.contains("%2F") && !upper.contains("%5C"),
        "{path:?} has an encoded separator"
    );
    assert!(!path.contains('\\'), "{path:?}");
    assert!(!path.contains('?') && !path.contains('#'), "{path:?}");
    assert!(
        path.bytes().all(|b| (0x21..0x7f).contains(&b)),
        "{path:?} has a byte outside visible ASCII"
    );
    // One percent pass: what is left encoded is upper-case hex of a byte that must stay encoded.
    let bytes = path.as_bytes();
    for (i, _) in path.match_indices('%') {
        let hex = bytes.get(i + 1..i + 3).expect("complete escape");
        assert!(
            hex.iter()
                .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(b)),
            "{path:?}: escape at {i} is not upper-case hex"
        );
        let value = u8::from_str_radix(std::str::from_utf8(hex).unwrap(), 16).unwrap();
        assert!(
            !(value.is_ascii_alphanumeric() || b"-._~".contains(&value)),
            "{path:?}: unreserved byte left encoded"
        );
        assert_ne!(value, 0, "{path:?}: encoded NUL");
    }
    // Canonicalising never adds bytes (an empty path becomes `/`).
    assert!(path.len() <= received.len().max(1), "{path:?}");
    assert!(slashes(path) <= opts.max_segments, "{path:?}");
}

fn check_path(target: &str) {
    let normalize = CanonicalOptions::default();
    let strict = with_mode(PathMode::Strict);
    let raw = with_mode(PathMode::Raw);
    let received = target.split(['?', '#']).next().unwrap_or("");

    let normalized = bounded("canonical_path", target, || {
        canonical_path(target, &normalize)
    });
    match &normalized {
        Ok(p) => {
            let path = p.path();
            assert_canonical_path(path, received, &normalize);
            assert_eq!(p.is_modified(), path != received);
            match p.query() {
                Some(query) => assert_eq!(p.path_and_query(), format!("{path}?{query}")),
                None => assert_eq!(p.path_and_query(), path),
            }

            // A fixed point, in every mode.
            let again = canonical_path(path, &normalize).expect("canonical path is accepted");
            assert_eq!(again.path(), path, "canonicalising again changed it");
            assert!(!again.is_modified(), "{path:?}");
            for opts in [&strict, &raw] {
                let again = canonical_path(path, opts).expect("canonical path is accepted");
                assert_eq!(again.path(), path);
            }
        }
        Err(rejection) => assert!(
            matches!(
                rejection.status(),
                RejectStatus::BadRequest | RejectStatus::UriTooLong
            ),
            "{rejection:?}"
        ),
    }

    // Strict accepts exactly the paths that normalising leaves alone.
    match (&normalized, canonical_path(target, &strict)) {
        (Ok(n), Ok(s)) => {
            assert_eq!(n, &s);
            assert!(!s.is_modified() || received.is_empty());
        }
        (Ok(n), Err(_)) => assert!(n.is_modified()),
        (Err(_), Ok(s)) => panic!("strict accepted {:?} but normalize did not", s.path()),
        (Err(_), Err(_)) => {}
    }

    // Raw matches what was received, after the same byte checks.
    match canonical_path(target, &raw) {
        Ok(p) => {
            let expected = if received.is_empty() { "/" } else { received };
            assert_eq!(p.path(), expected);
            assert!(p.path().bytes().all(|b| (0x21..0x7f).contains(&b)));
        }
        // Raw counts the segments as received, before runs of `/` are merged.
        Err(_) => assert!(
            normalized.is_err() || slashes(received) > raw.max_segments,
            "raw rejected what normalize accepted"
        ),
    }

    // Limits reject with 414, and otherwise change nothing.
    for mode in [PathMode::Normalize, PathMode::Strict, PathMode::Raw] {
        let small = small_limits(mode);
        let full = canonical_path(target, &with_mode(mode));
        match (canonical_path(target, &small), &full) {
            (Ok(s), Ok(f)) => {
                assert_eq!(&s, f);
                assert!(received.len() <= small.max_path_len);
                assert!(slashes(s.path()) <= small.max_segments);
            }
            (Ok(s), Err(_)) => panic!("{mode:?}: only the small limits accepted {s:?}"),
            (Err(rejection), Ok(f)) => {
                assert_eq!(rejection.status(), RejectStatus::UriTooLong, "{mode:?}");
                assert!(
                    received.len() > small.max_path_len || slashes(f.path()) > small.max_segments,
                    "{mode:?}: {f:?} is within the small limits but got {rejection:?}"
                );
            }
            (Err(_), Err(_)) => {}
        }
    }
}

/// Every property of an accepted host name.
fn assert_canonical_host(name: &str, opts: &CanonicalOptions) {
    assert!(
        !name.is_empty() && name.len() <= opts.max_host_len.min(253),
        "{name:?}"
    );
    assert!(!name.contains(':'), "{name:?}");
    assert!(
        name.split('.')
            .all(|label| !label.is_empty() && label.len() <= 63),
        "{name:?}"
    );
    assert!(
        name.bytes().all(|b| b.is_ascii_lowercase()
            || b.is_ascii_digit()
            || matches!(b, b'-' | b'_' | b'.')),
        "{name:?}"
    );
    assert!(name.parse::<std::net::Ipv4Addr>().is_err(), "{name:?}");
    assert!(
        !name
            .split('.')
            .all(|label| label.bytes().all(|b| b.is_ascii_digit())),
        "{name:?} is all-numeric"
    );
}

fn name_of(result: &Result<RequestHost, Rejection>) -> Option<&str> {
    result.as_ref().ok().and_then(RequestHost::name)
}

fn check_host(raw: &[u8]) {
    let authority = String::from_utf8_lossy(raw);
    let authority = authority.as_ref();
    let opts = CanonicalOptions::default();
    let small = small_limits(PathMode::Normalize);

    let result = bounded("canonical_host", authority, || {
        canonical_host(authority, &opts)
    });
    match &result {
        Ok(RequestHost::Name(name)) => {
            let name = name.as_str();
            assert_canonical_host(name, &opts);
            // The name, with an upper-case letter, a trailing dot or a port, is the name.
            let upper = name.to_ascii_uppercase();
            for variant in [name, &upper, &format!("{name}."), &format!("{upper}.:8080")] {
                match canonical_host(variant, &opts) {
                    Ok(RequestHost::Name(again)) => assert_eq!(again.as_str(), name, "{variant:?}"),
                    other => panic!("{variant:?} (from {name:?}) gave {other:?}"),
                }
            }
        }
        Ok(RequestHost::Ip) => {}
        Ok(RequestHost::None) => panic!("canonical_host returned None"),
        Err(rejection) => assert_eq!(rejection.status(), RejectStatus::BadRequest),
    }

    // A smaller host limit only rejects.
    match (canonical_host(authority, &small), &result) {
        (Ok(RequestHost::Name(s)), Ok(RequestHost::Name(f))) => {
            assert_eq!(s.as_str(), f.as_str());
            assert_canonical_host(s.as_str(), &small);
        }
        (Ok(s), Ok(f)) => assert_eq!(&s, f),
        (Ok(s), Err(_)) => panic!("only the small limit accepted {s:?}"),
        (Err(rejection), _) => assert_eq!(rejection.status(), RejectStatus::BadRequest),
    }

    // The Host header, read from its raw bytes, agrees with the text.
    let Ok(value) = HeaderValue::from_bytes(raw) else {
        return;
    };
    let Ok(request) = Request::get("/").header(http::header::HOST, value).body(()) else {
        return;
    };
    let from_header = request_host(&request, &opts);
    if std::str::from_utf8(raw).is_ok() {
        assert_eq!(
            from_header.as_ref().ok(),
            result.as_ref().ok(),
            "Host header {authority:?}"
        );
        assert_eq!(name_of(&from_header), name_of(&result));
    } else {
        assert!(
            from_header.is_err(),
            "non-UTF-8 Host accepted: {from_header:?}"
        );
    }
}

/// The whole request: the path is canonicalised as alone, and the host comes from the
/// request-target's authority when it has one.
fn check_request(host: Option<&[u8]>, target: &str) {
    let opts = CanonicalOptions::default();
    for version in [Version::HTTP_10, Version::HTTP_11, Version::HTTP_2] {
        let mut builder = Request::builder().version(version).uri(target);
        if let Some(host) = host {
            let Ok(value) = HeaderValue::from_bytes(host) else {
                return;
            };
            builder = builder.header(http::header::HOST, value);
        }
        let Ok(request) = builder.body(()) else {
            return;
        };
        let Ok(canonical) = canonicalize_request(&request, &opts) else {
            continue;
        };
        let path_and_query = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
        let alone = canonical_path(path_and_query, &opts).expect("path accepted alone");
        assert_eq!(canonical.path, alone);
        let received = path_and_query.split(['?', '#']).next().unwrap_or("");
        assert_canonical_path(canonical.path.path(), received, &opts);
        if let Some(name) = canonical.host.name() {
            assert_canonical_host(name, &opts);
        }
        match request.uri().authority() {
            Some(authority) => {
                let from_uri = canonical_host(authority.as_str(), &opts).expect("URI host");
                assert_eq!(canonical.host, from_uri);
            }
            None => match host {
                Some(host) => {
                    let text = std::str::from_utf8(host).expect("accepted Host is text");
                    let from_header = canonical_host(text, &opts).expect("Host accepted alone");
                    assert_eq!(canonical.host, from_header);
                }
                None => {
                    assert_eq!(version, Version::HTTP_10, "no Host accepted in {version:?}");
                    assert_eq!(canonical.host, RequestHost::None);
                }
            },
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (host, target) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (Some(&data[..at]), &data[at + 1..]),
        None => (None, data),
    };
    let target = String::from_utf8_lossy(target);
    check_path(&target);
    if let Some(host) = host {
        check_host(host);
    }
    check_request(host, &target);
});
