//! The table's segment trie against the `matchit` layout (`P`, `P/`, `P/{*rest}` per Prefix
//! rule, Exact and Prefix merged per key) on the same rules, one virtual host.
//!
//! `cargo bench --bench matchit_layout` — the comparison behind the table's design note.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ingress_router::model::{
    HttpIngressPath, HttpIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, ObjectMeta, ServiceBackendPort,
};
use ingress_router::{RouteTable, TableOptions};

/// Per service: Prefix `/svcN/api`, Prefix `/svcN/api/v1`, Exact `/svcN/health`.
fn paths(services: usize) -> Vec<(String, &'static str)> {
    (0..services)
        .flat_map(|i| {
            [
                (format!("/svc{i}/api"), "Prefix"),
                (format!("/svc{i}/api/v1"), "Prefix"),
                (format!("/svc{i}/health"), "Exact"),
            ]
        })
        .collect()
}

fn table(paths: &[(String, &'static str)]) -> RouteTable {
    let http = HttpIngressRuleValue {
        paths: paths
            .iter()
            .enumerate()
            .map(|(i, (path, kind))| HttpIngressPath {
                path: Some(path.clone()),
                path_type: Some((*kind).to_owned()),
                backend: IngressBackend {
                    service: Some(IngressServiceBackend {
                        name: format!("b{i}"),
                        port: ServiceBackendPort {
                            name: None,
                            number: Some(80),
                        },
                    }),
                    resource: None,
                },
            })
            .collect(),
    };
    let ingress = Ingress {
        metadata: ObjectMeta {
            name: "site".into(),
            ..ObjectMeta::default()
        },
        spec: IngressSpec {
            rules: vec![IngressRule {
                host: Some("example.com".into()),
                http: Some(http),
            }],
            ..IngressSpec::default()
        },
    };
    RouteTable::build([&ingress], TableOptions::default())
}

/// The matchit layout: each key holds the winning Exact rule for that exact path and the
/// winning Prefix rule covering it; rule ids are indices into `paths`.
#[derive(Clone, Copy, Default)]
struct Slot {
    exact: Option<usize>,
    prefix: Option<usize>,
}

fn matchit_router(paths: &[(String, &'static str)]) -> matchit::Router<Slot> {
    use std::collections::BTreeMap;
    let mut keys: BTreeMap<String, Slot> = BTreeMap::new();
    for (id, (path, kind)) in paths.iter().enumerate() {
        let escaped = path.replace('{', "{{").replace('}', "}}");
        if *kind == "Exact" {
            keys.entry(escaped).or_default().exact = Some(id);
        } else {
            let base = escaped.trim_end_matches('/');
            for key in [
                base.to_owned(),
                format!("{base}/"),
                format!("{base}/{{*rest}}"),
            ] {
                keys.entry(key).or_default().prefix = Some(id);
            }
        }
    }
    // A static key from an Exact rule must still answer the longest Prefix covering it.
    let prefixes: std::collections::HashMap<&str, usize> = paths
        .iter()
        .enumerate()
        .filter(|(_, (_, kind))| *kind == "Prefix")
        .map(|(id, (p, _))| (p.trim_end_matches('/'), id))
        .collect();
    let mut router = matchit::Router::new();
    for (key, mut slot) in keys {
        let mut base = key.as_str();
        while slot.prefix.is_none() && !base.is_empty() {
            slot.prefix = prefixes.get(base).copied();
            base = base.rsplit_once('/').map_or("", |(parent, _)| parent);
        }
        router.insert(key, slot).expect("no conflicting keys");
    }
    router
}

fn lookups(c: &mut Criterion) {
    let mut group = c.benchmark_group("path_layout");
    for services in [10, 1_000, 30_000] {
        let paths = paths(services);
        let table = table(&paths);
        let router = matchit_router(&paths);
        let request = format!("/svc{}/api/v1/items/17", services / 2);
        let expected = format!("/svc{}/api/v1", services / 2);
        let ours = table.route(Some("example.com"), &request).unwrap();
        assert_eq!(ours.rule().unwrap().path, expected);
        let theirs = router.at(&request).unwrap().value;
        assert_eq!(paths[theirs.exact.or(theirs.prefix).unwrap()].0, expected);

        let rules = paths.len();
        group.bench_with_input(BenchmarkId::new("trie", rules), &request, |b, r| {
            b.iter(|| table.route(black_box(Some("example.com")), black_box(r)))
        });
        group.bench_with_input(BenchmarkId::new("matchit", rules), &request, |b, r| {
            b.iter(|| {
                router
                    .at(black_box(r))
                    .ok()
                    .and_then(|m| m.value.exact.or(m.value.prefix))
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = lookups
}
criterion_main!(benches);
