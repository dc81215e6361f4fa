//! Hostile requests never panic and never route wrongly: whatever rule a request matches, the
//! canonical path the backend receives really matches that rule, and routing the canonical
//! form again gives the same answer.
#![no_main]

use std::sync::OnceLock;

use ingress_router::canonical::{canonical_path, CanonicalOptions};
use ingress_router::{Manifests, PathType, RouteTable, TableOptions};
use libfuzzer_sys::fuzz_target;

const MANIFEST: &str = r#"
kind: Ingress
metadata: {name: a, namespace: x, creationTimestamp: "2024-01-01T00:00:00Z"}
spec:
  defaultBackend: {service: {name: fallback, port: {number: 80}}}
  rules:
  - host: "*.example.com"
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: root, port: {number: 80}}}}
      - {path: /admin, pathType: Exact, backend: {service: {name: admin, port: {number: 80}}}}
      - {path: /api/, pathType: Prefix, backend: {service: {name: api, port: {number: 80}}}}
      - {path: /api/v1, pathType: ImplementationSpecific, backend: {service: {name: v1, port: {number: 80}}}}
      - {path: "/a{b}/:c/*", pathType: Prefix, backend: {service: {name: odd, port: {number: 80}}}}
  - host: admin.example.com
    http:
      paths:
      - {path: /public, pathType: Prefix, backend: {service: {name: public, port: {number: 80}}}}
  - http:
      paths:
      - {path: /health, pathType: Exact, backend: {service: {name: health, port: {number: 80}}}}
---
kind: Ingress
metadata: {name: b, namespace: y}
spec:
  rules:
  - host: admin.example.com
    http:
      paths:
      - {path: /public/, pathType: Prefix, backend: {service: {name: public2, port: {number: 80}}}}
      - {path: /private, pathType: Exact, backend: {service: {name: private, port: {number: 80}}}}
"#;

fn table() -> &'static RouteTable {
    static TABLE: OnceLock<RouteTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let manifests = Manifests::parse(MANIFEST);
        assert!(manifests.errors.is_empty());
        RouteTable::build(&manifests.ingresses, TableOptions::default())
    })
}

/// Whether `path` matches a rule path under Kubernetes semantics (§4), written independently
/// of the table.
fn matches(rule: &str, path_type: PathType, path: &str) -> bool {
    let rule = if rule.is_empty() { "/" } else { rule };
    match path_type {
        PathType::Exact => rule == path,
        PathType::Prefix | PathType::ImplementationSpecific => {
            let base = rule.trim_end_matches('/');
            path == base || path.starts_with(&format!("{base}/"))
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (host, target) = text.split_once('\n').unwrap_or(("", &text));
    let mut builder = http::Request::get(target);
    if !host.is_empty() {
        builder = builder.header("host", host);
    }
    let Ok(request) = builder.body(()) else {
        return;
    };
    let table = table();
    let Ok(routed) = table.route_request(&request) else {
        return;
    };
    let path = routed.path.path();
    let again = canonical_path(path, &CanonicalOptions::default()).expect("canonical path");
    assert_eq!(again.path(), path, "canonical form is stable");
    let direct = table.route(routed.host.name(), path);
    assert_eq!(
        direct.map(|r| r.backend()),
        routed.route.map(|r| r.backend()),
        "routing the canonical form again"
    );
    if let Some(rule) = routed.route.and_then(|r| r.rule()) {
        assert!(
            matches(rule.path, rule.path_type, path),
            "{path:?} routed to {rule:?}"
        );
        if let (Some(rule_host), Some(host)) = (rule.host, routed.host.name()) {
            match rule_host.strip_prefix("*.") {
                Some(suffix) => {
                    let (label, rest) = host.split_once('.').expect("wildcard needs a label");
                    assert!(!label.is_empty() && rest == suffix, "{host} vs {rule_host}");
                }
                None => assert_eq!(host, rule_host),
            }
        } else {
            assert!(rule.host.is_none() || routed.host.name().is_some());
        }
    }
});
