//! Lookups to count instructions of, for A/B comparisons that the VM's drift cannot blur:
//! `callgrind` counts the same instructions for the same binary and inputs, whatever else runs.
//!
//! ```text
//! cargo bench --bench instructions --no-run
//! B=$(ls -t target/release/deps/instructions-* | grep -v '\.d$' | head -1)
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null --collect-atstart=no \
//!     --toggle-collect='*lookups*' $B route_request cold 10000 100000
//! ```
//!
//! Arguments: the router (`route`, `route_request`, or `layer`: an `IngressService` around a
//! trivial inner service, with the routes and TLS names of the corpus; `layer-addr`: the same,
//! each request carrying a `ClientAddr` as the data plane's do; `layer-nginx`, with
//! `--features nginx`: that layer applying ingress-nginx policies to the same unannotated
//! routes; `floor`, `floor_request`: the floors of the `scale` bench, against which `route` and
//! `route_request` are held), the mix (`hot` or `cold`, as in the
//! `scale` bench), the number of Ingresses, the number of lookups. Only the lookup loops are
//! counted; divided by the number of lookups, the total is the cost of one. (The hash maps
//! are seeded per process, so counts vary by a fraction of a percent between runs.)

#[allow(dead_code)]
#[path = "support/corpus.rs"]
mod corpus;
#[path = "support/floor.rs"]
mod floor;

use std::convert::Infallible;
use std::future::{ready, Future};
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use tower::{service_fn, Service};

use ingress_router::{canonical_host, canonical_path, CanonicalOptions, RouteTable, TableOptions};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let [router, mix, size, lookups] = &args[..] else {
        eprintln!(
            "usage: instructions route|route_request|layer|floor|floor_request hot|cold INGRESSES LOOKUPS"
        );
        return;
    };
    let size: usize = size.parse().expect("a number of Ingresses");
    let lookups: usize = lookups.parse().expect("a number of lookups");
    let corpus = corpus::generate(size, corpus::SEED);
    let reqs = match mix.as_str() {
        "hot" => &corpus.hot,
        _ => &corpus.cold,
    };
    // Built only for the routers that use it: the largest corpora leave room for one router.
    let table = || RouteTable::build(&corpus.ingresses, TableOptions::default());
    let options = CanonicalOptions::default();
    let routed = if router.starts_with("layer") {
        let requests: Vec<http::Request<()>> = reqs
            .iter()
            .map(|req| {
                let mut request = http::Request::get(req.target.as_str())
                    .header(http::header::HOST, req.host.as_str())
                    .body(())
                    .unwrap();
                if router != "layer" {
                    let peer = std::net::SocketAddr::from(([10, 0, 0, 1], 40000));
                    request
                        .extensions_mut()
                        .insert(ingress_router::ClientAddr(peer));
                }
                request
            })
            .collect();
        // The routes and the TLS names of the same Ingresses, so that plain-HTTP requests for
        // TLS hosts are redirected, as a data plane would.
        #[allow(unused_mut)]
        let mut options = TableOptions::default();
        #[cfg(feature = "nginx")]
        let nginx = Arc::new(ingress_router::NginxAnnotations::new(
            ingress_router::NginxConfig::default(),
        ));
        #[cfg(feature = "nginx")]
        if router == "layer-nginx" {
            options.extension = Some(nginx.clone());
        }
        let snapshot = ingress_router::Snapshot::build(&corpus.ingresses, options);
        let layer = ingress_router::IngressLayer::new(snapshot);
        #[cfg(feature = "nginx")]
        let layer = match router.as_str() {
            "layer-nginx" => layer.nginx(Arc::clone(nginx.config())),
            _ => layer,
        };
        layer_lookups(layer, &requests, lookups)
    } else if router == "route" || router == "floor" {
        let canonical: Vec<(Option<String>, String)> = reqs
            .iter()
            .map(|req| {
                let host = canonical_host(&req.host, &options).unwrap();
                let path = canonical_path(&req.target, &options).unwrap();
                (host.name().map(str::to_owned), path.path().to_owned())
            })
            .collect();
        match router.as_str() {
            "floor" => floor_lookups(&floor::Floor::new(&corpus.ingresses), &canonical, lookups),
            _ => route_lookups(&table(), &canonical, lookups),
        }
    } else if router == "floor_request" {
        let requests: Vec<http::Request<()>> = reqs
            .iter()
            .map(|req| {
                http::Request::get(req.target.as_str())
                    .header(http::header::HOST, req.host.as_str())
                    .body(())
                    .unwrap()
            })
            .collect();
        floor_request_lookups(&floor::Floor::new(&corpus.ingresses), &requests, lookups)
    } else {
        let requests: Vec<http::Request<()>> = reqs
            .iter()
            .map(|req| {
                http::Request::get(req.target.as_str())
                    .header(http::header::HOST, req.host.as_str())
                    .body(())
                    .unwrap()
            })
            .collect();
        route_request_lookups(&table(), &requests, lookups)
    };
    println!("{routed} of {lookups} routed");
}

#[inline(never)]
fn route_lookups(table: &RouteTable, canonical: &[(Option<String>, String)], n: usize) -> usize {
    let mut routed = 0;
    for i in 0..n {
        let (host, path) = &canonical[i % canonical.len()];
        routed += usize::from(black_box(table.route(host.as_deref(), path)).is_some());
    }
    routed
}

#[inline(never)]
fn route_request_lookups(table: &RouteTable, requests: &[http::Request<()>], n: usize) -> usize {
    let mut routed = 0;
    for i in 0..n {
        let request = &requests[i % requests.len()];
        let found = black_box(table.route_request(request)).is_ok_and(|r| r.route.is_some());
        routed += usize::from(found);
    }
    routed
}

#[inline(never)]
fn floor_lookups(floor: &floor::Floor, canonical: &[(Option<String>, String)], n: usize) -> usize {
    let mut routed = 0;
    for i in 0..n {
        let (host, path) = &canonical[i % canonical.len()];
        routed += usize::from(black_box(floor.route(host.as_deref(), path)).is_some());
    }
    routed
}

#[inline(never)]
fn floor_request_lookups(floor: &floor::Floor, requests: &[http::Request<()>], n: usize) -> usize {
    let mut routed = 0;
    for i in 0..n {
        let request = &requests[i % requests.len()];
        routed += usize::from(black_box(floor.route_request(request)).is_some());
    }
    routed
}

struct Noop;

impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

#[inline(never)]
fn layer_lookups(
    layer: ingress_router::IngressLayer,
    requests: &[http::Request<()>],
    n: usize,
) -> usize {
    use tower::Layer;
    let waker = Waker::from(Arc::new(Noop));
    let mut cx = Context::from_waker(&waker);
    let inner = service_fn(|req: http::Request<()>| {
        ready(Ok::<_, Infallible>(http::Response::new(
            req.uri().path().len(),
        )))
    });
    let mut service = layer.layer(inner);
    let mut routed = 0;
    for i in 0..n {
        let request = requests[i % requests.len()].clone();
        let future = service.call(request);
        let response = match pin!(future).poll(&mut cx) {
            Poll::Ready(Ok(response)) => response,
            _ => unreachable!("the inner service answers at once"),
        };
        routed += usize::from(black_box(response).status().is_success());
    }
    routed
}
