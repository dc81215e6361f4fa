//! The data plane on a real apiserver: time from an apiserver write to the data plane serving
//! it, time from start to ready, and resident memory, at 1 000 and 10 000 Ingresses over
//! 1 000 Services with their EndpointSlices.
//!
//! ```text
//! bash tests/cluster/up.sh target/cluster/bench
//! INGRESS_ROUTER_CLUSTER=target/cluster/bench cargo bench --all-features --bench cluster
//! ```
//!
//! `CLUSTER_BENCH_SIZES` (default `1000,10000`) and `CLUSTER_BENCH_EDITS` (default 200) set the
//! sizes and the number of edits. The data plane is the release build of
//! `examples/data_plane`, run as the `controller` identity, in the namespace the bench fills.
//! An edit moves one Ingress's path; its time runs from just before the server-side apply
//! request to the first request that the data plane routes on the new path, polled every
//! millisecond over loopback (so it includes the apiserver's write, its watch fan-out and
//! the data plane's reconcile and swap).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::api::{Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use serde_json::json;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const CONTROLLER: &str = "example.com/bench";
const SERVICES: usize = 1000;

fn main() {
    let dir = PathBuf::from(
        std::env::var_os("INGRESS_ROUTER_CLUSTER").unwrap_or_else(|| {
            eprintln!(
                "set INGRESS_ROUTER_CLUSTER=DIR to a cluster that tests/cluster/up.sh DIR started"
            );
            std::process::exit(2)
        }),
    );
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list`
    }
    let sizes: Vec<usize> = std::env::var("CLUSTER_BENCH_SIZES")
        .unwrap_or_else(|_| "1000,10000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("CLUSTER_BENCH_SIZES: numbers"))
        .collect();
    let edits: usize = std::env::var("CLUSTER_BENCH_EDITS")
        .map(|s| s.parse().expect("CLUSTER_BENCH_EDITS: a number"))
        .unwrap_or(200);
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "--example",
            "data_plane",
            "--all-features",
        ])
        .current_dir(ROOT)
        .status()
        .unwrap();
    assert!(status.success());
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(ROOT).join("target"));
    let binary = target.join("release/examples/data_plane");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = runtime.block_on(client(&dir.join("admin.kubeconfig")));
    println!(
        "| Ingresses | start to ready | write to served p50 | p99 | max | RSS ready | RSS peak |"
    );
    println!("|---|---|---|---|---|---|---|");
    for n in sizes {
        let ns = format!("bench-{n}");
        let started = Instant::now();
        runtime.block_on(fill(&client, &ns, n));
        eprintln!("{n}: objects written in {:.1?}", started.elapsed());
        let plane = Plane::start(&binary, &dir, &ns);
        let ready = plane.wait_ready();
        let rss_ready = plane.memory("VmRSS");
        // Let the first status and pool settle, then edit.
        std::thread::sleep(Duration::from_secs(1));
        let mut times = Vec::new();
        let mut writes = Vec::new();
        let api: Api<Ingress> = Api::namespaced(client.clone(), &ns);
        for k in 0..edits {
            let i = (k * 7919) % n;
            let path = format!("/edit-{k}");
            let t0 = Instant::now();
            runtime.block_on(apply(&api, &ingress(&ns, i, &path)));
            writes.push(t0.elapsed());
            while let Some(404) | None = plane.status(&host(i), &path) {
                assert!(
                    t0.elapsed() < Duration::from_secs(30),
                    "edit {k} never served"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            times.push(t0.elapsed());
        }
        times.sort();
        let at =
            |q: f64| times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1];
        println!(
            "| {n} | {:.2} s | {:.1} ms | {:.1} ms | {:.1} ms | {} MB | {} MB |",
            ready.as_secs_f64(),
            ms(at(0.50)),
            ms(at(0.99)),
            ms(*times.last().unwrap()),
            rss_ready / 1024,
            plane.memory("VmHWM") / 1024,
        );
        writes.sort();
        eprintln!(
            "{n}: {} edits; the apply request alone: p50 {:.1} ms, p99 {:.1} ms; RSS after them {} MB",
            times.len(),
            ms(writes[writes.len() / 2]),
            ms(writes[(writes.len() * 99).div_ceil(100) - 1]),
            plane.memory("VmRSS") / 1024
        );
    }
}

/// A non-loopback address of this host (the apiserver refuses loopback endpoints).
fn host_ip() -> String {
    let out = Command::new("hostname").arg("-I").output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .find(|a| {
            a.parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| !ip.is_loopback())
        })
        .expect("a non-loopback IPv4 address")
        .to_owned()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn host(i: usize) -> String {
    format!("i{i}.bench.example")
}

fn ingress(ns: &str, i: usize, path: &str) -> serde_json::Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": format!("i{i}"), "namespace": ns},
        "spec": {
            "ingressClassName": "bench",
            "rules": [{"host": host(i), "http": {"paths": [{
                "path": path, "pathType": "Prefix",
                "backend": {"service": {"name": format!("s{}", i % SERVICES), "port": {"number": 80}}}
            }]}}]
        }
    })
}

async fn client(kubeconfig: &Path) -> Client {
    let config = kube::Config::from_custom_kubeconfig(
        Kubeconfig::read_from(kubeconfig).unwrap(),
        &KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    Client::try_from(config).unwrap()
}

async fn apply<K>(api: &Api<K>, object: &serde_json::Value)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let name = object["metadata"]["name"].as_str().unwrap();
    api.patch(
        name,
        &PatchParams::apply("bench").force(),
        &Patch::Apply(object),
    )
    .await
    .unwrap_or_else(|e| panic!("apply {name}: {e}"));
}

/// Writes the IngressClass, 1 000 Services with one EndpointSlice each, and `n` Ingresses.
async fn fill(client: &Client, ns: &str, n: usize) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    apply(
        &namespaces,
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
    )
    .await;
    let classes: Api<IngressClass> = Api::all(client.clone());
    apply(
        &classes,
        &json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
                "metadata": {"name": "bench"}, "spec": {"controller": CONTROLLER}}),
    )
    .await;
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), ns);
    futures_util::stream::iter(0..SERVICES)
        .map(|s| {
            let (services, slices) = (services.clone(), slices.clone());
            async move {
                apply(
                    &services,
                    &json!({"apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": format!("s{s}"), "namespace": ns},
                    "spec": {"ports": [{"name": "http", "port": 80}]}}),
                )
                .await;
                apply(
                    &slices,
                    &json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                    "metadata": {"name": format!("s{s}-1"), "namespace": ns,
                                 "labels": {"kubernetes.io/service-name": format!("s{s}")}},
                    "addressType": "IPv4",
                    "ports": [{"name": "http", "port": 9, "protocol": "TCP"}],
                    // This host's discard port: refused at once, so a probe answers 502
                    // without waiting for a connect timeout.
                    "endpoints": [{"addresses": [host_ip()], "conditions": {"ready": true}}]}),
                )
                .await;
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;
    futures_util::stream::iter(0..n)
        .map(|i| {
            let ingresses = ingresses.clone();
            async move { apply(&ingresses, &ingress(ns, i, "/base")).await }
        })
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;
}

/// The release data plane, watching one namespace as `controller`.
struct Plane {
    child: Child,
    started: Instant,
    http: SocketAddr,
    health: SocketAddr,
}

impl Plane {
    fn start(binary: &Path, dir: &Path, ns: &str) -> Plane {
        let log = dir.join(format!("bench-{ns}.log"));
        let started = Instant::now();
        #[allow(clippy::zombie_processes)] // Waited for in `Drop`.
        let child = Command::new(binary)
            .arg("--kubeconfig")
            .arg(dir.join("controller.kubeconfig"))
            .args(["--namespace", ns, "--health", "127.0.0.1:0"])
            .args(["--listen", &format!("127.0.0.1:0={CONTROLLER}")])
            .env(
                "RUST_LOG",
                std::env::var("CLUSTER_BENCH_LOG")
                    .unwrap_or_else(|_| "warn,data_plane=info".into()),
            )
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let find = |prefix: &str| -> Option<SocketAddr> {
            let text = std::fs::read_to_string(&log).ok()?;
            let rest = &text[text.find(prefix)? + prefix.len()..];
            rest[..rest.find([' ', '/', '\n'])?].parse().ok()
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let (Some(http), Some(health)) =
                (find("listening on http://"), find("health on http://"))
            {
                return Plane {
                    child,
                    started,
                    http,
                    health,
                };
            }
            assert!(
                Instant::now() < deadline,
                "the data plane did not start; see {}",
                log.display()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Time from the process's start to `/readyz` answering 200.
    fn wait_ready(&self) -> Duration {
        loop {
            if get(self.health, "health", "/readyz") == Some(200) {
                return self.started.elapsed();
            }
            assert!(
                self.started.elapsed() < Duration::from_secs(300),
                "never ready"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn status(&self, host: &str, path: &str) -> Option<u16> {
        get(self.http, host, path)
    }

    /// A `/proc/PID/status` figure, in KiB.
    fn memory(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Plane {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn get(addr: SocketAddr, host: &str, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}
