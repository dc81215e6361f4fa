//! Lookup and build cost on realistic clusters of 10 to 100 000 Ingresses, against a linear scan
//! and a bare `matchit` floor.
//!
//! ```text
//! cargo bench --bench scale -- --quick 'lookup_hot/.*/10000'
//! cargo bench --bench scale -- --quick 'build/10000'
//! ```
//!
//! The clusters and requests come from `support/corpus.rs` with a fixed seed; each is built the
//! first time a benchmark of its size runs, and its counts are printed then. Every iteration of
//! a lookup benchmark routes one request, the next of its mix (a measurement routes 256 at
//! least), so the time per iteration is the cost of one lookup:
//!
//! - `lookup_hot/*/N`: 256 requests for a handful of hosts, replayed (warm caches);
//! - `lookup_cold/*/N`: 65 536 requests spread over every host (hits, misses, wildcards,
//!   host-less rules, requests that need canonicalising), in random order.
//!
//! against four routers:
//!
//! - `route`: `RouteTable::route` on the canonical host and path;
//! - `route_request`: `RouteTable::route_request` on an `http::Request<()>` as received,
//!   canonicalisation included;
//! - `floor`: a host map of `matchit` routers, no canonicalisation, no precedence, no fallback;
//! - `floor_request`: the same floor reading the `http::Request` that `route_request` reads (its
//!   `Host` header and path as received), the least any router of requests pays;
//! - `linear`: a scan of every rule, as controllers without an index do (up to 10 000 Ingresses;
//!   checked against the table on 1 000 cold requests and the hot mix before it is measured).
//!
//! `build/N` measures `RouteTable::build` over the N Ingresses (dropping the table excluded).
//!
//! `ab_cold/*/N` measures a router against its floor on the cold mix in one measurement, so
//! that the VM's drift between benchmarks cannot bend the ratio: each sample routes the whole
//! mix through one, then through the other (in turns, each going first in every other sample),
//! and the ratio of the two times is printed with its median and spread over the samples:
//!
//! ```text
//! cargo bench --bench scale -- 'ab_cold/route_request_vs_floor_request/(10000|100000)$'
//! ```
//!
//! - `ab_cold/route_request_vs_floor_request/N`: `route_request` against `floor_request`;
//! - `ab_cold/route_vs_floor/N`: `route` against `floor`.
//!
//! The time criterion reports for them is the first router's.

use std::cell::{Cell, OnceCell, RefCell};
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BatchSize, Bencher, BenchmarkGroup, BenchmarkId, Criterion,
    SamplingMode, Throughput,
};
use ingress_router::{
    canonical_host, canonical_path, Backend, CanonicalOptions, RouteMatch, RouteTable, TableOptions,
};

#[path = "support/corpus.rs"]
#[allow(dead_code)] // The file writers serve `examples/gen.rs`.
mod corpus;
#[path = "support/floor.rs"]
mod floor;
#[path = "support/linear.rs"]
mod linear;

use corpus::{Corpus, Req};
use floor::Floor;
use linear::Linear;

/// Cluster sizes, in Ingresses.
const SIZES: [usize; 5] = [10, 100, 1_000, 10_000, 100_000];

/// The corpus seed: every run measures the same clusters and requests.
const SEED: u64 = corpus::SEED;

/// The largest cluster the linear scan is measured on.
const LINEAR_MAX: usize = 10_000;

/// How many cold requests the linear scan is checked on, besides the hot mix.
const CHECKED: usize = 1_000;

/// The fewest lookups a measurement makes, however few iterations criterion asks for.
const MIN_LOOKUPS: u64 = 256;

/// From this size on, samples are few and flat: one iteration is long.
const LARGE: usize = 10_000;

/// The measurement time under `--quick`, where it only caps each benchmark's run.
///
/// `--quick` gives up on a benchmark, keeping a single iteration, once its wall-clock time
/// exceeds the measurement time; the first benchmark of each size also builds that size's
/// fixture, which takes seconds from 10 000 Ingresses on. A generous cap keeps that from cutting
/// the measurement short; benchmarks still stop as soon as their estimate is stable.
const QUICK_CAP: Duration = Duration::from_secs(60);

/// Whether criterion was asked for `--quick`.
fn quick() -> bool {
    std::env::args().any(|arg| arg == "--quick")
}

/// A benchmark group with this bench's settings.
fn group<'c>(c: &'c mut Criterion, name: &str) -> BenchmarkGroup<'c, WallTime> {
    let mut group = c.benchmark_group(name);
    if quick() {
        group.measurement_time(QUICK_CAP);
    }
    group
}

/// One request mix, in the forms the routers take.
struct Mix {
    /// Canonical host (`None` for an IP address) and canonical path without the query.
    canonical: Vec<(Option<String>, String)>,
    /// The requests as received.
    requests: Vec<http::Request<()>>,
}

impl Mix {
    /// Both forms of `reqs`; panics on a request the table would reject.
    fn new(reqs: &[Req]) -> Self {
        let options = CanonicalOptions::default();
        let canonical = reqs
            .iter()
            .map(|req| {
                let host = canonical_host(&req.host, &options)
                    .unwrap_or_else(|e| panic!("host {:?}: {}", req.host, e.reason()));
                let path = canonical_path(&req.target, &options)
                    .unwrap_or_else(|e| panic!("target {:?}: {}", req.target, e.reason()));
                (host.name().map(str::to_owned), path.path().to_owned())
            })
            .collect();
        let requests = reqs
            .iter()
            .map(|req| {
                http::Request::get(req.target.as_str())
                    .header(http::header::HOST, req.host.as_str())
                    .body(())
                    .unwrap_or_else(|e| panic!("{req:?}: {e}"))
            })
            .collect();
        Mix {
            canonical,
            requests,
        }
    }
}

/// Everything the lookup benchmarks of one size need.
struct Fixture {
    /// The compiled table.
    table: RouteTable,
    /// The lower bound.
    floor: Floor,
    /// The hot mix.
    hot: Mix,
    /// The cold mix.
    cold: Mix,
}

impl Fixture {
    /// Builds the routers for `corpus`, checks they agree where they must, and prints what the
    /// mixes route to.
    fn new(corpus: &Corpus) -> Self {
        let table = RouteTable::build(&corpus.ingresses, TableOptions::default());
        let diagnostics = table.diagnostics();
        assert!(
            diagnostics.quarantined.is_empty(),
            "{:?}",
            diagnostics.quarantined
        );
        let hot = Mix::new(&corpus.hot);
        let cold = Mix::new(&corpus.cold);
        for (name, reqs, mix) in [("hot", &corpus.hot, &hot), ("cold", &corpus.cold, &cold)] {
            check_route_request(&table, mix);
            println!("  {name}: {}", outcomes(&table, mix));
            println!("    {}", corpus::composition(reqs));
        }
        println!(
            "  table: {} rules, {} conflicts, {} warnings",
            table.rule_count(),
            diagnostics.conflicts.len(),
            diagnostics.warnings.len()
        );
        if corpus.ingresses.len() <= LINEAR_MAX {
            let linear = Linear::new(&corpus.ingresses);
            let sample = cold.canonical[..CHECKED].iter().chain(&hot.canonical);
            for (host, path) in sample {
                check_linear(&table, &linear, host.as_deref(), path);
            }
        }
        Fixture {
            floor: Floor::new(&corpus.ingresses),
            table,
            hot,
            cold,
        }
    }
}

/// A route as comparable data: backend, Ingress and rule path.
type Outcome = Option<(Backend, Option<String>, Option<String>)>;

/// Panics unless the linear scan routes `host` and `path` as the table does.
fn check_linear(table: &RouteTable, linear: &Linear<'_>, host: Option<&str>, path: &str) {
    let ours: Outcome = table.route(host, path).map(|m| {
        (
            m.backend().clone(),
            m.ingress().map(ToString::to_string),
            m.rule().map(|r| r.path.to_owned()),
        )
    });
    let theirs: Outcome = linear.route(host, path).map(|m| {
        let namespace = m.ingress.metadata.namespace();
        let backend = Backend::from_ingress_backend(namespace, m.backend)
            .expect("generated backends are valid");
        (
            backend,
            Some(m.ingress.object_ref().to_string()),
            m.path.map(str::to_owned),
        )
    });
    assert_eq!(ours, theirs, "table vs linear scan on {host:?} {path:?}");
}

/// The same match, from the same table.
fn same(a: Option<RouteMatch<'_>>, b: Option<RouteMatch<'_>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => {
            std::ptr::eq(a.backend(), b.backend())
                && a.rule() == b.rule()
                && a.fallback() == b.fallback()
        }
        (a, b) => a.is_none() && b.is_none(),
    }
}

/// Panics unless routing each request as received gives what routing its canonical form does.
fn check_route_request(table: &RouteTable, mix: &Mix) {
    for (request, (host, path)) in mix.requests.iter().zip(&mix.canonical) {
        let routed = table
            .route_request(request)
            .unwrap_or_else(|e| panic!("{request:?}: {}", e.reason()));
        assert!(
            same(routed.route, table.route(host.as_deref(), path)),
            "{request:?} routes differently from {host:?} {path:?}"
        );
    }
}

/// What share of a mix goes to a rule, to a defaultBackend, and nowhere.
fn outcomes(table: &RouteTable, mix: &Mix) -> String {
    let (mut rule, mut fallback, mut none) = (0, 0, 0);
    for (host, path) in &mix.canonical {
        match table.route(host.as_deref(), path) {
            Some(m) if m.rule().is_some() => rule += 1,
            Some(_) => fallback += 1,
            None => none += 1,
        }
    }
    let share = |n: usize| 100.0 * n as f64 / mix.canonical.len() as f64;
    format!(
        "{} requests: {:.1}% rule, {:.1}% defaultBackend, {:.1}% 404",
        mix.canonical.len(),
        share(rule),
        share(fallback),
        share(none)
    )
}

/// One cluster size, its corpus and routers built on first use.
struct Scale {
    /// Ingresses in the cluster.
    size: usize,
    /// The generated cluster and requests.
    corpus: OnceCell<Corpus>,
    /// The routers over the corpus.
    fixture: OnceCell<Fixture>,
}

impl Scale {
    /// A cluster of `size` Ingresses, nothing built yet.
    fn new(size: usize) -> Self {
        Scale {
            size,
            corpus: OnceCell::new(),
            fixture: OnceCell::new(),
        }
    }

    /// The corpus, generated (and its counts printed) on first use.
    fn corpus(&self) -> &Corpus {
        self.corpus.get_or_init(|| {
            let corpus = corpus::generate(self.size, SEED);
            let stats = corpus.stats();
            println!(
                "\ncorpus {}: {} Ingresses, {} hosts ({} wildcards), {} paths",
                self.size, stats.ingresses, stats.hosts, stats.wildcard_hosts, stats.paths
            );
            corpus
        })
    }

    /// The routers, built and checked on first use.
    fn fixture(&self) -> &Fixture {
        self.fixture.get_or_init(|| Fixture::new(self.corpus()))
    }
}

/// `lookup_hot` or `lookup_cold` at one size: one request of the mix per iteration.
fn lookups(c: &mut Criterion, name: &str, scale: &Scale, mix: fn(&Fixture) -> &Mix) {
    let size = scale.size;
    let mut group = group(c, name);
    group.throughput(Throughput::Elements(1));
    group.bench_function(BenchmarkId::new("route", size), |b| {
        let fixture = scale.fixture();
        cycle(b, &mix(fixture).canonical, |(host, path)| {
            black_box(fixture.table.route(host.as_deref(), path));
        });
    });
    group.bench_function(BenchmarkId::new("route_request", size), |b| {
        let fixture = scale.fixture();
        cycle(b, &mix(fixture).requests, |request| {
            // Dropped here: a rewritten path is part of the cost.
            drop(black_box(fixture.table.route_request(request)));
        });
    });
    group.bench_function(BenchmarkId::new("floor", size), |b| {
        let fixture = scale.fixture();
        cycle(b, &mix(fixture).canonical, |(host, path)| {
            black_box(fixture.floor.route(host.as_deref(), path));
        });
    });
    group.bench_function(BenchmarkId::new("floor_request", size), |b| {
        let fixture = scale.fixture();
        cycle(b, &mix(fixture).requests, |request| {
            black_box(fixture.floor.route_request(request));
        });
    });
    if size <= LINEAR_MAX {
        if size >= LARGE {
            group.sample_size(10);
            group.sampling_mode(SamplingMode::Flat);
        }
        group.bench_function(BenchmarkId::new("linear", size), |b| {
            let fixture = scale.fixture();
            let linear = Linear::new(&scale.corpus().ingresses);
            cycle(b, &mix(fixture).canonical, |(host, path)| {
                black_box(linear.route(host.as_deref(), path));
            });
        });
    }
    group.finish();
}

/// Measures `lookup` on the requests of `inputs` in turn, one request per iteration.
///
/// Each measurement routes at least [`MIN_LOOKUPS`] requests and reports the time of the
/// iterations asked for at the rate measured, so that a measurement of a single iteration (the
/// first of `--quick`, or of a slow router) is still an average over many requests.
fn cycle<T>(b: &mut Bencher<'_>, inputs: &[T], mut lookup: impl FnMut(&T)) {
    let mut inputs = inputs.iter().cycle();
    b.iter_custom(|iters| {
        let lookups = iters.max(MIN_LOOKUPS);
        let start = Instant::now();
        for _ in 0..lookups {
            lookup(black_box(inputs.next().expect("a mix is never empty")));
        }
        start.elapsed().mul_f64(iters as f64 / lookups as f64)
    });
}

/// How many samples an `ab_cold` benchmark takes: each routes the whole cold mix twice.
const AB_SAMPLES: usize = 20;

/// `ab_cold` at one size: each router against its floor, on the cold mix, in one measurement.
fn ab(c: &mut Criterion, scale: &Scale) {
    let size = scale.size;
    let mut group = group(c, "ab_cold");
    group.throughput(Throughput::Elements(1));
    group.sample_size(AB_SAMPLES);
    group.sampling_mode(SamplingMode::Flat);
    let samples = RefCell::new(Vec::new());
    group.bench_function(
        BenchmarkId::new("route_request_vs_floor_request", size),
        |b| {
            let fixture = scale.fixture();
            let requests = &fixture.cold.requests;
            alternate(
                b,
                requests.len(),
                |i| drop(black_box(fixture.table.route_request(&requests[i]))),
                |i| {
                    black_box(fixture.floor.route_request(&requests[i]));
                },
                &samples,
            );
        },
    );
    report(
        &format!("route_request / floor_request at {size}"),
        &samples.take(),
    );
    group.bench_function(BenchmarkId::new("route_vs_floor", size), |b| {
        let fixture = scale.fixture();
        let canonical = &fixture.cold.canonical;
        alternate(
            b,
            canonical.len(),
            |i| {
                let (host, path) = &canonical[i];
                black_box(fixture.table.route(host.as_deref(), path));
            },
            |i| {
                let (host, path) = &canonical[i];
                black_box(fixture.floor.route(host.as_deref(), path));
            },
            &samples,
        );
    });
    report(&format!("route / floor at {size}"), &samples.take());
    group.finish();
}

/// One measurement of two routers: the time each took for the same lookups.
struct Sample {
    a: Duration,
    b: Duration,
    lookups: u64,
}

/// Measures `a` and `b` on every index of a mix of `len` requests in turn, each routing whole
/// passes over the mix, and records both times of each measurement in `samples`. Reports the
/// time of `a`.
fn alternate(
    bencher: &mut Bencher<'_>,
    len: usize,
    mut a: impl FnMut(usize),
    mut b: impl FnMut(usize),
    samples: &RefCell<Vec<Sample>>,
) {
    let a_first = Cell::new(true);
    bencher.iter_custom(|iters| {
        let passes = iters.div_ceil(len as u64).max(1);
        let time = |route: &mut dyn FnMut(usize)| {
            let start = Instant::now();
            for _ in 0..passes {
                for i in 0..len {
                    route(black_box(i));
                }
            }
            start.elapsed()
        };
        let (ta, tb) = if a_first.get() {
            let ta = time(&mut a);
            (ta, time(&mut b))
        } else {
            let tb = time(&mut b);
            (time(&mut a), tb)
        };
        a_first.set(!a_first.get());
        let lookups = passes * len as u64;
        samples.borrow_mut().push(Sample {
            a: ta,
            b: tb,
            lookups,
        });
        ta.mul_f64(iters as f64 / lookups as f64)
    });
}

/// Prints the times per lookup and the ratio of two routers measured by [`alternate`]: the
/// median ratio over the samples, with the lowest and highest.
fn report(what: &str, samples: &[Sample]) {
    if samples.is_empty() {
        return;
    }
    let mut ratios: Vec<f64> = samples
        .iter()
        .map(|s| s.a.as_secs_f64() / s.b.as_secs_f64())
        .collect();
    ratios.sort_by(f64::total_cmp);
    let lookups: u64 = samples.iter().map(|s| s.lookups).sum();
    let per_lookup = |time: Duration| 1e9 * time.as_secs_f64() / lookups as f64;
    let a = per_lookup(samples.iter().map(|s| s.a).sum());
    let b = per_lookup(samples.iter().map(|s| s.b).sum());
    println!(
        "{what}: {:.2}x (median of {} samples; {:.2}x to {:.2}x; {a:.0} ns against {b:.0} ns)",
        ratios[ratios.len() / 2],
        ratios.len(),
        ratios[0],
        ratios[ratios.len() - 1],
    );
}

/// `build` at one size: the table compiled from the Ingresses.
fn build(c: &mut Criterion, scale: &Scale) {
    let mut group = group(c, "build");
    group.throughput(Throughput::Elements(scale.size as u64));
    if scale.size >= LARGE {
        group.sample_size(10);
        group.sampling_mode(SamplingMode::Flat);
    }
    group.bench_function(BenchmarkId::from_parameter(scale.size), |b| {
        let ingresses = &scale.corpus().ingresses;
        b.iter_batched(
            || (),
            |()| RouteTable::build(black_box(ingresses), TableOptions::default()),
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

/// Every group at every size, one size at a time so that only one large corpus is alive.
fn scale(c: &mut Criterion) {
    for size in SIZES {
        let scale = Scale::new(size);
        lookups(c, "lookup_hot", &scale, |f| &f.hot);
        lookups(c, "lookup_cold", &scale, |f| &f.cold);
        ab(c, &scale);
        build(c, &scale);
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = scale
}
criterion_main!(benches);
