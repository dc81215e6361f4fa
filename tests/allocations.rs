//! A lookup allocates nothing: counted with a global allocator that tallies every allocation
//! made on the testing thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use ingress_router::{Manifests, RouteTable, TableOptions};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = ALLOCATIONS.with(Cell::get);
    let value = f();
    (value, ALLOCATIONS.with(Cell::get) - before)
}

const MANIFEST: &str = r#"
kind: Ingress
metadata: {name: site, namespace: web, creationTimestamp: "2024-01-01T00:00:00Z"}
spec:
  defaultBackend: {service: {name: fallback, port: {number: 80}}}
  rules:
  - host: "*.example.com"
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: root, port: {number: 80}}}}
      - {path: /a, pathType: Prefix, backend: {service: {name: a, port: {number: 80}}}}
      - {path: /a/b, pathType: Prefix, backend: {service: {name: ab, port: {number: 80}}}}
      - {path: /a/b/c, pathType: Exact, backend: {service: {name: abc, port: {number: 80}}}}
  - host: shop.example.com
    http:
      paths:
      - {path: /api/, pathType: Prefix, backend: {service: {name: api, port: {name: http}}}}
  - http:
      paths:
      - {path: /health, pathType: Exact, backend: {service: {name: health, port: {number: 80}}}}
"#;

fn table() -> RouteTable {
    let manifests = Manifests::parse(MANIFEST);
    assert!(manifests.errors.is_empty(), "{:?}", manifests.errors);
    let table = RouteTable::build(&manifests.ingresses, TableOptions::default());
    assert!(table.diagnostics().is_empty(), "{:?}", table.diagnostics());
    table
}

#[test]
fn route_allocates_nothing() {
    let table = table();
    let cases = [
        (Some("x.example.com"), "/a/b/c", Some("abc")),
        (Some("x.example.com"), "/a/b/c/d", Some("ab")),
        (Some("x.example.com"), "/a/bc", Some("a")),
        (Some("x.example.com"), "/zzz", Some("root")),
        (Some("shop.example.com"), "/api", Some("api")),
        (Some("shop.example.com"), "/other", Some("fallback")),
        (Some("unknown.org"), "/health", Some("health")),
        (None, "/nothing", Some("fallback")),
        (Some("x.example.com"), "/", Some("root")),
    ];
    for (host, path, expected) in cases {
        let (route, count) = allocations(|| table.route(host, path));
        let service = route.map(|r| r.backend().as_service().unwrap().name.as_str());
        assert_eq!(service, expected, "{host:?} {path}");
        assert_eq!(count, 0, "route({host:?}, {path:?}) allocated");
    }
}

#[test]
fn routing_a_canonical_request_allocates_nothing() {
    let table = table();
    let requests = [
        http::Request::get("/a/b/c?x=1").header("host", "X.Example.COM:8443"),
        http::Request::get("http://shop.example.com/api/v1").header("host", "shop.example.com"),
        http::Request::get("/health").header("host", "10.0.0.1"),
    ];
    for builder in requests {
        let request = builder.body(()).unwrap();
        let (routed, count) = allocations(|| {
            let routed = table.route_request(&request).unwrap();
            routed.route.is_some()
        });
        assert!(routed, "{request:?}");
        assert_eq!(count, 0, "{request:?} allocated");
    }
}

#[test]
fn a_non_canonical_request_allocates_only_its_rewritten_path() {
    let table = table();
    let request = http::Request::get("/x/../a/%62/c")
        .header("host", "x.example.com")
        .body(())
        .unwrap();
    let (path, count) = allocations(|| {
        let routed = table.route_request(&request).unwrap();
        assert_eq!(routed.route.unwrap().rule().unwrap().path, "/a/b/c");
        routed.path.path().len()
    });
    assert_eq!(path, "/a/b/c".len());
    assert_eq!(count, 1);
}

/// Gives the rules of the Ingress `canary` a header, a query and a cookie condition.
#[derive(Debug)]
struct Canary;

impl ingress_router::RouteExtension for Canary {
    fn extras(
        &self,
        ingress: &ingress_router::Ingress,
        _rule: usize,
        _path: usize,
    ) -> Option<ingress_router::RouteExtras> {
        use ingress_router::{Condition, RouteExtras, ValueMatch};
        (ingress.metadata.name == "canary").then(|| {
            RouteExtras::new()
                .condition(Condition::Header {
                    name: http::HeaderName::from_static("x-canary"),
                    value: ValueMatch::Exact("always".into()),
                })
                .condition(Condition::Query {
                    name: "v".into(),
                    value: ValueMatch::Present,
                })
                .condition(Condition::Cookie {
                    name: "c".into(),
                    value: ValueMatch::Present,
                })
        })
    }
}

#[test]
fn routes_with_conditions_allocate_nothing_either() {
    let canary = r#"
---
kind: Ingress
metadata: {name: canary, namespace: web, creationTimestamp: "2024-01-02T00:00:00Z"}
spec:
  rules:
  - host: "*.example.com"
    http:
      paths:
      - {path: /a, pathType: Prefix, backend: {service: {name: a-canary, port: {number: 80}}}}
"#;
    let manifests = Manifests::parse(&format!("{MANIFEST}{canary}"));
    let options = TableOptions {
        extension: Some(std::sync::Arc::new(Canary)),
        ..TableOptions::default()
    };
    let table = RouteTable::build(&manifests.ingresses, options);
    let cases = [
        ("/a/x?v=1", "c=1", "always", "a-canary"),
        ("/a/x?w=1", "c=1", "always", "a"),
        ("/a/x?v=1", "d=1", "always", "a"),
        ("/a/x?v=1", "c=1", "never", "a"),
    ];
    for (target, cookie, header, expected) in cases {
        let request = http::Request::get(target)
            .header("host", "x.example.com")
            .header("cookie", cookie)
            .header("x-canary", header)
            .body(())
            .unwrap();
        let (service, count) = allocations(|| {
            let routed = table.route_request(&request).unwrap();
            let route = routed.route.unwrap();
            route.backend().as_service().unwrap().name.as_str()
        });
        assert_eq!(service, expected, "{target} {cookie} {header}");
        assert_eq!(count, 0, "{target} allocated");
    }
}
