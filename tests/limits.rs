//! The request limits of routing contract §5 (path length → 414, segments → 414,
//! host length → 400): settable through `TableOptions::canonical` and obeyed by `canonical`,
//! `RouteTable` and the tower layer alike, exactly at the limit; and pathological requests
//! handled in time linear in their size, with the default limits (rejected early) and with
//! limits raised so that the whole algorithm runs.
//!
//! Times are compared between two sizes of the same input, never with a wall-clock deadline.

#![cfg(all(feature = "tower", feature = "yaml"))]

use std::convert::Infallible;
#[path = "common/linear.rs"]
mod linear;

use http::{Request, Response, StatusCode};
use ingress_router::{canonical_host, canonical_path, CanonicalOptions, RejectStatus};
use ingress_router::{IngressService, Manifests, RouteTable, TableOptions};
use tower::{service_fn, Service, ServiceExt};

use linear::{assert_linear, exclusive};

const RULES: &str = r#"
kind: Ingress
metadata: {name: site, namespace: web}
spec:
  rules:
  - http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: any, port: {number: 80}}}}
"#;

fn table(canonical: CanonicalOptions) -> RouteTable {
    let manifests = Manifests::parse(RULES);
    assert!(manifests.errors.is_empty(), "{:?}", manifests.errors);
    RouteTable::build(
        &manifests.ingresses,
        TableOptions {
            canonical,
            ..TableOptions::default()
        },
    )
}

/// A host name of exactly `len` bytes (labels of at most 63).
fn host_of_len(len: usize) -> String {
    let mut host = String::new();
    while host.len() < len {
        if !host.is_empty() {
            host.push('.');
        }
        let label = (len - host.len()).min(63);
        host.push_str(&"a".repeat(label));
    }
    assert_eq!(host.len(), len);
    host
}

/// The status every layer of the crate gives a request: the function, the table, the tower
/// service. They must agree.
fn statuses(options: &CanonicalOptions, host: &str, target: &str) -> u16 {
    let direct = match (
        canonical_host(host, options),
        canonical_path(target, options),
    ) {
        (Err(e), _) | (_, Err(e)) => e.status().as_u16(),
        (Ok(_), Ok(_)) => 200,
    };
    let table = table(options.clone());
    let request = Request::get(target)
        .header("host", host)
        .body(String::new())
        .unwrap();
    let routed = match table.route_request(&request) {
        Ok(routed) => {
            assert!(routed.route.is_some());
            200
        }
        Err(e) => e.status().as_u16(),
    };
    let inner = service_fn(|_: Request<String>| async {
        Ok::<_, Infallible>(Response::new(String::new()))
    });
    let mut service = IngressService::new(inner, table);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let layered = runtime.block_on(async {
        let response = service.ready().await.unwrap().call(request).await.unwrap();
        response.status().as_u16()
    });
    assert_eq!(
        (direct, routed),
        (layered, layered),
        "{host} {}",
        &target[..target.len().min(40)]
    );
    layered
}

fn options(max_path_len: usize, max_segments: usize, max_host_len: usize) -> CanonicalOptions {
    CanonicalOptions {
        max_path_len,
        max_segments,
        max_host_len,
        ..CanonicalOptions::default()
    }
}

#[test]
fn defaults_are_those_of_the_spec() {
    let defaults = CanonicalOptions::default();
    assert_eq!(
        (
            defaults.max_path_len,
            defaults.max_segments,
            defaults.max_host_len
        ),
        (8192, 256, 253)
    );
    assert_eq!(
        TableOptions::default().canonical,
        defaults,
        "a table canonicalises with the defaults unless told otherwise"
    );
}

#[test]
fn path_length_at_under_and_over_the_limit() {
    for max in [8192, 100, 1] {
        let opts = options(max, usize::MAX, 253);
        let path = |len: usize| format!("/{}", "a".repeat(len - 1));
        assert_eq!(statuses(&opts, "x.example", &path(max)), 200, "{max}");
        if max > 1 {
            assert_eq!(statuses(&opts, "x.example", &path(max - 1)), 200, "{max}");
        }
        assert_eq!(statuses(&opts, "x.example", &path(max + 1)), 414, "{max}");
        // The query does not count.
        let with_query = format!("{}?{}", path(max), "q".repeat(2 * max));
        assert_eq!(statuses(&opts, "x.example", &with_query), 200, "{max}");
        // The received length counts, before dot segments are removed.
        if max > 4 {
            let shrinking = format!("/a/..{}", path(max - 4));
            assert_eq!(shrinking.len(), max + 1);
            assert_eq!(statuses(&opts, "x.example", &shrinking), 414, "{max}");
        }
    }
}

#[test]
fn segments_at_under_and_over_the_limit() {
    for max in [256, 10, 1] {
        let opts = options(usize::MAX, max, 253);
        let path = |segments: usize| "/s".repeat(segments);
        assert_eq!(statuses(&opts, "x.example", &path(max)), 200, "{max}");
        if max > 1 {
            assert_eq!(statuses(&opts, "x.example", &path(max - 1)), 200, "{max}");
        }
        assert_eq!(statuses(&opts, "x.example", &path(max + 1)), 414, "{max}");
        // Segments are counted in the canonical path: dot segments and repeated slashes
        // that canonicalisation removes do not count.
        let dotted = format!("{}{}", "/.".repeat(max), path(max));
        assert_eq!(statuses(&opts, "x.example", &dotted), 200, "{max}");
        let slashes = format!("{}{}", "/".repeat(2 * max), &path(max)[1..]);
        assert_eq!(statuses(&opts, "x.example", &slashes), 200, "{max}");
    }
}

#[test]
fn host_length_at_under_and_over_the_limit() {
    for max in [253, 20, 1] {
        let opts = options(8192, 256, max);
        assert_eq!(statuses(&opts, &host_of_len(max), "/"), 200, "{max}");
        if max > 1 {
            assert_eq!(statuses(&opts, &host_of_len(max - 1), "/"), 200, "{max}");
        }
        assert_eq!(statuses(&opts, &host_of_len(max + 1), "/"), 400, "{max}");
        // The port and one trailing dot do not count.
        let host = format!("{}.:8080", host_of_len(max));
        assert_eq!(statuses(&opts, &host, "/"), 200, "{max}");
    }
    // Above 253 the DNS maximum still holds.
    let opts = options(8192, 256, 10_000);
    assert_eq!(statuses(&opts, &host_of_len(253), "/"), 200);
    assert_eq!(statuses(&opts, &host_of_len(254), "/"), 400);
}

/// Pathological paths, each at `n` units.
fn pathological(n: usize) -> [(&'static str, String); 6] {
    [
        ("`..` segments", "/..".repeat(n)),
        (
            "`%2e` triplets in one segment",
            format!("/{}", "%2e".repeat(n)),
        ),
        ("`%2e` segments", "/%2e".repeat(n)),
        ("`%2E%2e` segments", "/a/%2E%2e".repeat(n / 2)),
        ("slashes", "/".repeat(n)),
        (
            "segments then `..` for each",
            format!("{}{}", "/seg".repeat(n / 2), "/..".repeat(n / 2)),
        ),
    ]
}

#[test]
fn pathological_paths_are_linear_with_raised_limits() {
    let _exclusive = exclusive();
    let raised = options(1 << 24, 1 << 22, 253);
    let table = table(raised.clone());
    for ((what, small), (_, large)) in pathological(25_000).into_iter().zip(pathological(100_000)) {
        // The whole algorithm runs: the canonical path is found and routed.
        let canonical = canonical_path(&large, &raised).unwrap();
        assert!(canonical.path().len() <= large.len());
        assert!(!canonical.path().contains("//"), "{what}");
        assert!(table.route(None, canonical.path()).is_some());
        assert_linear(what, &small, &large, 2, |input| {
            let path = canonical_path(input, &raised).unwrap();
            assert!(table.route(None, path.path()).is_some());
        });
    }
}

#[test]
fn pathological_paths_are_rejected_early_with_the_defaults() {
    let _exclusive = exclusive();
    let defaults = CanonicalOptions::default();
    for ((what, small), (_, large)) in pathological(25_000).into_iter().zip(pathological(100_000)) {
        let rejection = canonical_path(&large, &defaults).unwrap_err();
        assert_eq!(rejection.status(), RejectStatus::UriTooLong, "{what}");
        assert_linear(what, &small, &large, 20, |input| {
            assert!(canonical_path(input, &defaults).is_err());
        });
    }
}

#[test]
fn sixty_four_kib_paths_through_route_request() {
    let _exclusive = exclusive();
    // `http::Uri` holds at most 64 KiB − 2 bytes, so this is as long as a request path gets.
    let raised = options(1 << 16, 1 << 16, 253);
    let table = table(raised.clone());
    let targets = |len: usize| {
        [
            format!("/{}", "a".repeat(len - 1)),
            "/..".repeat(len / 3),
            "/%2e".repeat(len / 4),
            "/".repeat(len),
        ]
    };
    for (small, large) in targets(16_000).into_iter().zip(targets(64_000)) {
        let request = |target: &str| {
            Request::get(target)
                .header("host", "x.example")
                .body(())
                .unwrap()
        };
        let large_request = request(&large);
        assert!(table.route_request(&large_request).unwrap().route.is_some());
        // With the defaults, 414.
        let defaults = self::table(CanonicalOptions::default());
        let rejection = defaults.route_request(&large_request).unwrap_err();
        assert_eq!(rejection.status(), RejectStatus::UriTooLong);
        assert_eq!(rejection.status().status_code(), StatusCode::URI_TOO_LONG);
        let small_request = request(&small);
        assert_linear("route_request", &small, &large, 5, |target| {
            let request = if target.len() == small.len() {
                &small_request
            } else {
                &large_request
            };
            assert!(table.route_request(request).unwrap().route.is_some());
        });
    }
}

#[test]
fn hosts_of_many_labels_are_rejected_in_linear_time() {
    let _exclusive = exclusive();
    let labels = |n: usize| format!("{}example", "a.".repeat(n));
    for opts in [options(8192, 256, 253), options(8192, 256, usize::MAX)] {
        let rejection = canonical_host(&labels(10_000), &opts).unwrap_err();
        assert_eq!(rejection.status(), RejectStatus::BadRequest);
        assert_linear(
            "10 000 labels",
            &labels(2_500),
            &labels(10_000),
            20,
            |host| {
                assert!(canonical_host(host, &opts).is_err());
            },
        );
    }
    // Within 253 bytes, as many labels as fit are fine.
    let most = labels(123);
    assert!(most.len() <= 253);
    assert_eq!(
        canonical_host(&most, &CanonicalOptions::default())
            .unwrap()
            .name(),
        Some(most.as_str())
    );
}
