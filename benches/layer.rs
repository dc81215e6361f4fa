//! What `IngressService` adds to a request: canonicalise, route, insert the match, call inner.
//!
//! `cargo bench --bench layer` — a trivial inner service alone, and wrapped in the layer with a
//! table of 1 000 rules, for a canonical request, one whose path is rewritten, and a 404. With
//! `--features nginx`, also the same layer applying ingress-nginx policies (`IngressLayer::nginx`,
//! the table built with `NginxAnnotations`, no route annotated): what nginx mode costs a request
//! that no annotation touches, A/B in one process.

use std::convert::Infallible;
use std::future::{ready, Future};
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use http::{Request, Response};
use ingress_router::{IngressService, Manifests, RouteTable, SharedSnapshot, TableOptions};
use tower::{service_fn, Service};

struct Noop;

impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

/// Polls a future that is ready at once, as the trivial inner service's is.
fn run<F: Future>(future: F, cx: &mut Context<'_>) -> F::Output {
    match pin!(future).poll(cx) {
        Poll::Ready(output) => output,
        Poll::Pending => unreachable!("the inner service answers at once"),
    }
}

fn table() -> RouteTable {
    table_with(TableOptions::default())
}

fn table_with(options: TableOptions) -> RouteTable {
    let mut yaml = String::new();
    for h in 0..200 {
        yaml.push_str(&format!(
            "---\nkind: Ingress\nmetadata: {{name: ing-{h}}}\nspec:\n  rules:\n  - host: svc{h}.example.com\n    http:\n      paths:\n"
        ));
        for p in ["/", "/api", "/api/v1", "/api/v2", "/static"] {
            yaml.push_str(&format!(
                "      - {{path: {p}, pathType: Prefix, backend: {{service: {{name: s{h}, port: {{number: 80}}}}}}}}\n"
            ));
        }
    }
    let manifests = Manifests::parse(&yaml);
    assert!(manifests.errors.is_empty());
    RouteTable::build(&manifests.ingresses, options)
}

fn request(target: &str) -> Request<()> {
    Request::get(target)
        .header("host", "svc117.example.com")
        .body(())
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let waker = Waker::from(Arc::new(Noop));
    let mut cx = Context::from_waker(&waker);
    let inner = service_fn(|req: Request<()>| {
        ready(Ok::<_, Infallible>(Response::new(req.uri().path().len())))
    });
    let mut bare = inner;
    let mut layered = IngressService::new(inner, SharedSnapshot::new(table()));
    assert_eq!(
        run(layered.call(request("/api/v1/orders")), &mut cx)
            .unwrap()
            .status(),
        200
    );

    #[cfg(feature = "nginx")]
    let mut nginx = {
        use tower::Layer;
        let annotations = Arc::new(ingress_router::NginxAnnotations::new(
            ingress_router::NginxConfig::default(),
        ));
        let options = TableOptions {
            extension: Some(annotations.clone()),
            ..TableOptions::default()
        };
        ingress_router::IngressLayer::new(SharedSnapshot::new(table_with(options)))
            .nginx(Arc::clone(annotations.config()))
            .layer(inner)
    };

    let mut group = c.benchmark_group("layer");
    for (name, target) in [
        ("canonical", "/api/v1/orders?id=7"),
        ("rewritten", "/api/v1/../v2/./orders"),
        ("not found", "/nowhere/x"),
    ] {
        if name == "canonical" {
            group.bench_function("inner service alone", |b| {
                b.iter_batched(
                    || request(target),
                    |req| black_box(run(bare.call(req), &mut cx)),
                    BatchSize::SmallInput,
                )
            });
        }
        group.bench_function(format!("IngressService, {name}"), |b| {
            b.iter_batched(
                || request(target),
                |req| black_box(run(layered.call(req), &mut cx)),
                BatchSize::SmallInput,
            )
        });
        #[cfg(feature = "nginx")]
        group.bench_function(format!("IngressService + nginx, {name}"), |b| {
            b.iter_batched(
                || {
                    let mut req = request(target);
                    let peer = std::net::SocketAddr::from(([10, 0, 0, 1], 40000));
                    req.extensions_mut()
                        .insert(ingress_router::ClientAddr(peer));
                    req
                },
                |req| black_box(run(nginx.call(req), &mut cx)),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
