//! Lookup and build cost from 10 to 100 000 rules.
//!
//! `cargo bench --bench route` — the README's numbers come from here.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ingress_router::model::{
    HttpIngressPath, HttpIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, ObjectMeta, ServiceBackendPort,
};
use ingress_router::{RouteTable, TableOptions};

const SIZES: [usize; 5] = [10, 100, 1_000, 10_000, 100_000];
const PATHS_PER_HOST: usize = 5;

fn backend(name: String) -> IngressBackend {
    IngressBackend {
        service: Some(IngressServiceBackend {
            name,
            port: ServiceBackendPort {
                name: None,
                number: Some(8080),
            },
        }),
        resource: None,
    }
}

/// `rules` path rules: one Ingress per host, five paths each (`/`, nested prefixes, an exact
/// path), every fourth host (from the first) a wildcard.
fn cluster(rules: usize) -> Vec<Ingress> {
    let hosts = rules.div_ceil(PATHS_PER_HOST);
    (0..hosts)
        .map(|h| {
            let host = if h % 4 == 0 {
                format!("*.tenant{h}.example.com")
            } else {
                format!("svc{h}.example.com")
            };
            let paths = (0..PATHS_PER_HOST.min(rules - h * PATHS_PER_HOST))
                .map(|p| HttpIngressPath {
                    path: Some(match p {
                        0 => "/".to_owned(),
                        p if p % 3 == 0 => format!("/api/v{p}/items/{p}"),
                        p => format!("/api/v{p}"),
                    }),
                    path_type: Some(if p % 3 == 0 { "Exact" } else { "Prefix" }.to_owned()),
                    backend: backend(format!("svc-{h}-{p}")),
                })
                .collect();
            Ingress {
                metadata: ObjectMeta {
                    name: format!("ing-{h}"),
                    namespace: Some(format!("ns-{}", h % 50)),
                    ..ObjectMeta::default()
                },
                spec: ingress_router::model::IngressSpec {
                    rules: vec![IngressRule {
                        host: Some(host),
                        http: Some(HttpIngressRuleValue { paths }),
                    }],
                    ..Default::default()
                },
            }
        })
        .collect()
}

fn lookups(c: &mut Criterion) {
    let mut group = c.benchmark_group("route");
    group.throughput(Throughput::Elements(1));
    for rules in SIZES {
        let ingresses = cluster(rules);
        let table = RouteTable::build(&ingresses, TableOptions::default());
        let last = rules.div_ceil(PATHS_PER_HOST) - 1;
        let exact_host = format!("svc{}.example.com", last - usize::from(last % 4 == 0));
        // Each lookup measures what its name says: a rule hit, or a miss.
        let rule = |host: &str, path: &str| table.route(Some(host), path).and_then(|m| m.rule());
        assert_eq!(
            rule(&exact_host, "/api/v2/orders/17").unwrap().path,
            "/api/v2"
        );
        assert_eq!(
            rule("svc1.example.com", "/api/v3/items/3").unwrap().path,
            "/api/v3/items/3"
        );
        assert_eq!(
            rule("alice.tenant0.example.com", "/api/v1").unwrap().path,
            "/api/v1"
        );
        assert!(table.route(Some("nowhere.example.org"), "/").is_none());
        group.bench_with_input(BenchmarkId::new("prefix_hit", rules), &table, |b, t| {
            b.iter(|| t.route(black_box(Some(&exact_host)), black_box("/api/v2/orders/17")))
        });
        group.bench_with_input(BenchmarkId::new("exact_hit", rules), &table, |b, t| {
            b.iter(|| {
                t.route(
                    black_box(Some("svc1.example.com")),
                    black_box("/api/v3/items/3"),
                )
            })
        });
        group.bench_with_input(BenchmarkId::new("wildcard_host", rules), &table, |b, t| {
            b.iter(|| {
                t.route(
                    black_box(Some("alice.tenant0.example.com")),
                    black_box("/api/v1"),
                )
            })
        });
        group.bench_with_input(BenchmarkId::new("unknown_host", rules), &table, |b, t| {
            b.iter(|| t.route(black_box(Some("nowhere.example.org")), black_box("/")))
        });
        let request = http::Request::get("/api/v2/orders/17?page=1")
            .header("host", exact_host.to_uppercase())
            .body(())
            .unwrap();
        group.bench_with_input(BenchmarkId::new("request", rules), &table, |b, t| {
            b.iter(|| {
                t.route_request(black_box(&request))
                    .map(|r| r.route.is_some())
            })
        });
    }
    group.finish();
}

fn build(c: &mut Criterion) {
    let mut group = c.benchmark_group("build");
    group.sample_size(10);
    for rules in SIZES {
        let ingresses = cluster(rules);
        group.throughput(Throughput::Elements(rules as u64));
        group.bench_with_input(BenchmarkId::from_parameter(rules), &ingresses, |b, ing| {
            b.iter(|| RouteTable::build(ing, TableOptions::default()).rule_count())
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = lookups, build
}
criterion_main!(benches);
