//! Routes with conditions, weighted backends and policies (from a `RouteExtension`): the order
//! of the candidates at one path, checked by cases and against a naive reference.

#[path = "common/reference_matcher.rs"]
mod reference_matcher;

use std::cmp::Reverse;
use std::collections::HashMap;
use std::sync::Arc;

use http::{HeaderName, Method, Request};
use ingress_router::model::{Ingress, ObjectKind, ObjectRef, PathType};
use ingress_router::{
    Backend, Condition, ImplementationSpecific, Manifests, Policy, RouteExtension, RouteExtras,
    RouteTable, ServiceBackend, ServicePort, TableOptions, ValueMatch,
};
use proptest::prelude::*;
use proptest::sample::select;
use reference_matcher::{
    elements, from_table, path_backend, path_string, prefix_matches, to_model, GenIngress, GenPath,
    GenRule, Outcome, Reference,
};

/// Gives every rule path of an Ingress the conditions listed for its name, and optionally
/// weighted backends and a policy.
#[derive(Debug, Default)]
struct ByName {
    conditions: HashMap<String, Vec<Condition>>,
    backends: HashMap<String, Vec<(Backend, u32)>>,
    policies: HashMap<String, Policy>,
}

impl RouteExtension for ByName {
    fn extras(&self, ingress: &Ingress, _rule: usize, _path: usize) -> Option<RouteExtras> {
        let name = &ingress.metadata.name;
        let mut extras = RouteExtras::new();
        let mut any = false;
        if let Some(conditions) = self.conditions.get(name) {
            for c in conditions {
                extras = extras.condition(c.clone());
            }
            any = true;
        }
        if let Some(backends) = self.backends.get(name) {
            for (b, w) in backends {
                extras = extras.backend(b.clone(), *w);
            }
            any = true;
        }
        if let Some(policy) = self.policies.get(name) {
            extras = extras.policy(policy.clone());
            any = true;
        }
        any.then_some(extras)
    }
}

fn header(name: &'static str, value: Option<&str>) -> Condition {
    Condition::Header {
        name: HeaderName::from_static(name),
        value: value.map_or(ValueMatch::Present, |v| ValueMatch::Exact(v.into())),
    }
}

fn table(yaml: &str, extension: ByName) -> RouteTable {
    let m = Manifests::parse(yaml);
    assert!(m.errors.is_empty(), "{:?}", m.errors);
    let options = TableOptions {
        extension: Some(Arc::new(extension)),
        ..TableOptions::default()
    };
    let table = RouteTable::build(&m.ingresses, options);
    assert!(table.diagnostics().quarantined.is_empty());
    table
}

fn route(table: &RouteTable, target: &str, headers: &[(&str, &str)]) -> Option<String> {
    let mut request = Request::get(target).header("host", "shop.example.com");
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let request = request.body(()).unwrap();
    let routed = table.route_request(&request).unwrap();
    routed.route.map(|r| r.backend().to_string())
}

const CANARY: &str = r#"
kind: Ingress
metadata: {name: main, namespace: shop, creationTimestamp: "2024-01-01T00:00:00Z"}
spec:
  rules:
  - host: shop.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: root, port: {number: 80}}}}
      - {path: /api, pathType: Prefix, backend: {service: {name: api, port: {number: 80}}}}
---
kind: Ingress
metadata: {name: by-header, namespace: shop, creationTimestamp: "2024-01-02T00:00:00Z"}
spec:
  rules:
  - host: shop.example.com
    http: {paths: [{path: /api, pathType: Prefix, backend: {service: {name: api-header, port: {number: 80}}}}]}
---
kind: Ingress
metadata: {name: by-two, namespace: shop, creationTimestamp: "2024-01-03T00:00:00Z"}
spec:
  rules:
  - host: shop.example.com
    http: {paths: [{path: /api, pathType: Prefix, backend: {service: {name: api-two, port: {number: 80}}}}]}
---
kind: Ingress
metadata: {name: exact-only, namespace: shop, creationTimestamp: "2024-01-04T00:00:00Z"}
spec:
  rules:
  - host: shop.example.com
    http: {paths: [{path: /api/v1, pathType: Exact, backend: {service: {name: v1-beta, port: {number: 80}}}}]}
---
kind: Ingress
metadata: {name: same-conditions, namespace: shop, creationTimestamp: "2024-01-05T00:00:00Z"}
spec:
  rules:
  - host: shop.example.com
    http: {paths: [{path: /api, pathType: Prefix, backend: {service: {name: api-late, port: {number: 80}}}}]}
"#;

fn canary() -> RouteTable {
    let mut extension = ByName::default();
    extension
        .conditions
        .insert("by-header".into(), vec![header("x-canary", Some("always"))]);
    extension.conditions.insert(
        "by-two".into(),
        vec![header("x-canary", Some("always")), header("x-beta", None)],
    );
    extension
        .conditions
        .insert("exact-only".into(), vec![Condition::Method(Method::POST)]);
    extension.conditions.insert(
        "same-conditions".into(),
        vec![header("x-canary", Some("always"))],
    );
    table(CANARY, extension)
}

#[test]
fn more_conditions_are_tried_first_then_fewer_then_none() {
    let t = canary();
    let api = |headers: &[(&str, &str)]| route(&t, "/api/x", headers);
    assert_eq!(api(&[]).unwrap(), "service shop/api:80");
    assert_eq!(
        api(&[("x-canary", "always")]).unwrap(),
        "service shop/api-header:80"
    );
    assert_eq!(
        api(&[("x-canary", "always"), ("x-beta", "")]).unwrap(),
        "service shop/api-two:80"
    );
    assert_eq!(
        api(&[("x-canary", "never")]).unwrap(),
        "service shop/api:80"
    );
    assert_eq!(api(&[("x-beta", "1")]).unwrap(), "service shop/api:80");
}

#[test]
fn same_conditions_at_one_path_conflict_and_the_older_wins() {
    let t = canary();
    let conflicts = &t.diagnostics().conflicts;
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert_eq!(conflicts[0].winner.ingress.name, "by-header");
    assert_eq!(conflicts[0].losers[0].ingress.name, "same-conditions");
}

#[test]
fn an_exact_path_whose_conditions_fail_gives_way_to_the_longest_prefix() {
    let t = canary();
    let post = Request::post("/api/v1")
        .header("host", "shop.example.com")
        .body(())
        .unwrap();
    let routed = t.route_request(&post).unwrap();
    assert_eq!(
        routed.route.unwrap().backend().to_string(),
        "service shop/v1-beta:80"
    );
    // GET: the Exact route does not take it; the longest Prefix, /api, does, with its own
    // candidates in order.
    assert_eq!(route(&t, "/api/v1", &[]).unwrap(), "service shop/api:80");
    assert_eq!(
        route(&t, "/api/v1", &[("x-canary", "always")]).unwrap(),
        "service shop/api-header:80"
    );
}

#[test]
fn a_prefix_whose_only_routes_have_conditions_gives_way_to_a_shorter_one() {
    let yaml = r#"
kind: Ingress
metadata: {name: main, namespace: shop}
spec:
  rules:
  - host: shop.example.com
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: root, port: {number: 80}}}}]}
---
kind: Ingress
metadata: {name: beta, namespace: shop}
spec:
  rules:
  - host: shop.example.com
    http: {paths: [{path: /app, pathType: Prefix, backend: {service: {name: beta, port: {number: 80}}}}]}
"#;
    let mut extension = ByName::default();
    extension.conditions.insert(
        "beta".into(),
        vec![Condition::Query {
            name: "beta".into(),
            value: ValueMatch::Exact("1".into()),
        }],
    );
    let t = table(yaml, extension);
    assert_eq!(
        route(&t, "/app/x?beta=1", &[]).unwrap(),
        "service shop/beta:80"
    );
    assert_eq!(
        route(&t, "/app/x?beta=2", &[]).unwrap(),
        "service shop/root:80"
    );
    assert_eq!(route(&t, "/app", &[]).unwrap(), "service shop/root:80");
    // `route` has no request: conditions never hold.
    let m = t.route(Some("shop.example.com"), "/app/x").unwrap();
    assert_eq!(m.backend().to_string(), "service shop/root:80");
}

#[test]
fn weighted_backends_and_policies_ride_on_the_route() {
    #[derive(Debug, Clone, PartialEq)]
    struct Rewrite(&'static str);
    let yaml = r#"
kind: Ingress
metadata: {name: split, namespace: shop}
spec:
  rules:
  - host: shop.example.com
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: stable, port: {number: 80}}}}]}
"#;
    let stable: Backend = "shop/stable:80".parse().unwrap();
    let canary: Backend = "shop/canary:80".parse().unwrap();
    let mut extension = ByName::default();
    extension.backends.insert(
        "split".into(),
        vec![(stable.clone(), 90), (canary.clone(), 10)],
    );
    let mut policy = Policy::default();
    policy.insert(Rewrite("/v2"));
    extension.policies.insert("split".into(), policy);
    let t = table(yaml, extension);
    let m = t.route(Some("shop.example.com"), "/x").unwrap();
    assert_eq!(m.backends().len(), 2);
    assert_eq!(m.backend(), &stable);
    let picks: Vec<&Backend> = (0..100).map(|n| m.pick_backend(n)).collect();
    assert_eq!(picks.iter().filter(|b| ***b == canary).count(), 10);
    assert_eq!(m.policy().unwrap().get::<Rewrite>(), Some(&Rewrite("/v2")));
    // A plain Ingress's route: one backend of weight 1, no policy.
    let plain = RouteTable::build(&Manifests::parse(yaml).ingresses, TableOptions::default());
    let m = plain.route(Some("shop.example.com"), "/x").unwrap();
    assert_eq!(m.backends().len(), 1);
    assert_eq!(m.backends().iter().map(|(_, w)| w).collect::<Vec<_>>(), [1]);
    assert!(m.policy().is_none());
}

// A naive reference: every matching rule path of the selected virtual host, grouped into the
// slots a request can match (an Exact path with or without its trailing `/`, a Prefix path's
// elements), most specific first; in each, the candidates with conditions, most conditions
// first, then the usual precedence, skipping one whose conditions an earlier one already had;
// then the plain winner. The first candidate whose conditions hold is the route; when none
// does, the fallbacks, as if no rule path matched.

const HOSTS: &[&str] = &["a.com", "*.a.com"];
const REQUEST_HOSTS: &[&str] = &["a.com", "b.a.com"];
const SEGMENTS: &[&str] = &["a", "b"];

/// The conditions an Ingress's rule paths get: a subset of {x-a: 1, x-b present}.
fn conditions_of(set: u8) -> Vec<Condition> {
    let mut c = Vec::new();
    if set & 1 != 0 {
        c.push(header("x-a", Some("1")));
    }
    if set & 2 != 0 {
        c.push(header("x-b", None));
    }
    c
}

fn holds(set: u8, headers: u8) -> bool {
    set & headers == set
}

fn host_of(ingresses: &[GenIngress], host: Option<&str>) -> Option<String> {
    let has = |h: &str| {
        ingresses
            .iter()
            .any(|g| g.rules.iter().any(|r| r.host == Some(h)))
    };
    let host = host?;
    if has(host) {
        return Some(host.to_owned());
    }
    let (first, rest) = host.split_once('.')?;
    let wildcard = format!("*.{rest}");
    (!first.is_empty() && has(&wildcard)).then_some(wildcard)
}

fn age(g: &GenIngress, i: usize) -> (bool, i64, &str, &str, usize) {
    match g.created {
        Some(t) => (false, t, g.namespace, g.name, 0),
        None => (true, 0, "", "", i),
    }
}

fn reference(
    ingresses: &[GenIngress],
    sets: &[u8],
    host: Option<&str>,
    path: &str,
    headers: u8,
) -> Option<Outcome> {
    let selected = host_of(ingresses, host);
    let selected = selected.as_deref();
    // (slot, conditions, precedence, ingress, rule, path)
    type Slot = (bool, Reverse<usize>, bool);
    let mut candidates: Vec<(Slot, u8, _, usize, usize, usize, &GenPath)> = Vec::new();
    for (i, g) in ingresses.iter().enumerate() {
        for (r, rule) in g.rules.iter().enumerate() {
            if rule.host != selected {
                continue;
            }
            for (p, gp) in rule.paths.iter().flatten().enumerate() {
                let rule_path = if gp.path.is_empty() {
                    "/"
                } else {
                    gp.path.as_str()
                };
                let exact = gp.path_type == PathType::Exact;
                let matches = if exact {
                    rule_path == path
                } else {
                    prefix_matches(rule_path, path)
                };
                if !matches {
                    continue;
                }
                let trailing = rule_path.ends_with('/') && rule_path != "/";
                // Exact paths with and without the trailing `/` are different slots; Prefix ones
                // share a slot, the trailing `/` ranking first.
                let slot = (
                    !exact,
                    Reverse(elements(rule_path).len()),
                    exact && trailing,
                );
                let precedence = (!trailing || exact, age(g, i), r, p);
                candidates.push((slot, sets[i], precedence, i, r, p, gp));
            }
        }
    }
    candidates.sort_by(|a, b| {
        (a.0, Reverse(a.1.count_ones()), a.2).cmp(&(b.0, Reverse(b.1.count_ones()), b.2))
    });
    for slot in candidates.chunk_by(|a, b| a.0 == b.0) {
        let mut seen: Vec<u8> = Vec::new();
        let mut taken = None;
        for c in slot.iter().filter(|c| c.1 != 0) {
            if seen.contains(&c.1) {
                continue;
            }
            seen.push(c.1);
            if holds(c.1, headers) {
                taken = Some(c);
                break;
            }
        }
        let taken = taken.or_else(|| slot.iter().filter(|c| c.1 == 0).min_by_key(|c| c.2));
        if let Some(&(_, _, _, i, r, p, gp)) = taken {
            let g = &ingresses[i];
            return Some(Outcome {
                backend: Backend::Service(ServiceBackend {
                    namespace: g.namespace.to_owned(),
                    name: path_backend(i, r, p),
                    port: ServicePort::Number(80),
                }),
                ingress: Some(ObjectRef::namespaced(
                    ObjectKind::Ingress,
                    g.namespace,
                    g.name,
                )),
                rule: Some((selected.map(str::to_owned), gp.path.clone(), gp.path_type)),
                fallback: None,
            });
        }
    }
    // No rule path takes it: the fallbacks, which depend on the rules' hosts alone.
    let without_paths: Vec<GenIngress> = ingresses
        .iter()
        .map(|g| GenIngress {
            rules: g
                .rules
                .iter()
                .map(|r| GenRule {
                    host: r.host,
                    paths: None,
                })
                .collect(),
            ..g.clone()
        })
        .collect();
    Reference {
        ingresses: &without_paths,
        implementation_specific: ImplementationSpecific::Prefix,
        controller_default: false,
    }
    .route(host, path)
}

fn gen_path() -> impl Strategy<Value = GenPath> {
    let path_type = select(&[PathType::Exact, PathType::Prefix][..]);
    let path = (
        prop::collection::vec(select(SEGMENTS), 0..=2),
        any::<bool>(),
    )
        .prop_map(|(segments, slash)| path_string(&segments, slash));
    (path_type, path).prop_map(|(path_type, path)| GenPath { path_type, path })
}

fn gen_ingresses() -> impl Strategy<Value = (Vec<GenIngress>, Vec<u8>)> {
    let rule = (
        prop::option::of(select(HOSTS)),
        prop::collection::vec(gen_path(), 1..=3),
    )
        .prop_map(|(host, paths)| GenRule {
            host,
            paths: Some(paths),
        });
    let one = (
        prop::option::of(1..=2i64),
        prop::collection::vec(rule, 1..=2),
        any::<bool>(),
        0..4u8,
    );
    prop::collection::vec(one, 1..=6).prop_map(|specs| {
        const NAMES: &[&str] = &["a", "b", "c", "d", "e", "f"];
        let mut sets = Vec::new();
        let ingresses = specs
            .into_iter()
            .zip(NAMES)
            .map(|((created, rules, default_backend, set), name)| {
                sets.push(set);
                GenIngress {
                    namespace: "n",
                    name,
                    created,
                    rules,
                    default_backend,
                }
            })
            .collect();
        (ingresses, sets)
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn candidates_with_conditions_agree_with_the_reference(
        (ingresses, sets) in gen_ingresses(),
        requests in prop::collection::vec(
            (prop::option::of(select(REQUEST_HOSTS)), prop::collection::vec(select(SEGMENTS), 0..=3), any::<bool>(), 0..4u8),
            1..=12,
        ),
    ) {
        let model = to_model(&ingresses);
        let mut extension = ByName::default();
        for (g, set) in ingresses.iter().zip(&sets) {
            if *set != 0 {
                extension.conditions.insert(g.name.to_owned(), conditions_of(*set));
            }
        }
        let options = TableOptions { extension: Some(Arc::new(extension)), ..TableOptions::default() };
        let table = RouteTable::build(&model, options);
        prop_assert!(table.diagnostics().quarantined.is_empty());
        for (host, segments, slash, headers) in &requests {
            let path = path_string(segments, *slash);
            // An IP literal is a request without a host name.
            let mut request = Request::get(path.as_str()).header("host", host.unwrap_or("10.0.0.1"));
            if headers & 1 != 0 {
                request = request.header("x-a", "1");
            }
            if headers & 2 != 0 {
                request = request.header("x-b", "");
            }
            let request = request.body(()).unwrap();
            let got = table.route_request(&request).unwrap().route.map(from_table);
            let want = reference(&ingresses, &sets, *host, &path, *headers);
            prop_assert_eq!(got, want, "{:?} {} headers {}", host, path, headers);
            // Without a request, no condition holds.
            let plain = table.route(*host, &path).map(from_table);
            prop_assert_eq!(plain, reference(&ingresses, &sets, *host, &path, 0));
        }
    }
}
