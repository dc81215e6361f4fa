//! An ingress data plane: a reverse proxy that routes with the Ingresses of manifest files.
//!
//! ```text
//! cargo run --release --features rustls,nginx --example data_plane -- [--listen ADDR[=CONTROLLER]]...
//!     [--listen-tls ADDR[=CONTROLLER]]... [--default-backend NS/NAME:PORT]
//!     [--default-certificate NS/NAME] [--no-ssl-redirect[=CONTROLLER]]... [--demo-backends]
//!     [--poll-interval MS] [--health ADDR] [--metrics ADDR] [--configmap NS/NAME]
//!     [--annotations-prefix PREFIX] [--http-port PORT] [--https-port PORT] [--threads N]
//!     [FILE]...
//! cargo run --release --features rustls,nginx,kube --example data_plane -- --kubeconfig PATH
//!     [--namespace NS] [--selector LABELS] [--publish-address ADDR]... [--publish-service NS/NAME]
//!     [--election-namespace NS] [--election-id NAME] [--election-lease SECONDS] [options above]
//! ```
//!
//! - Each `--listen` serves HTTP/1.1 and HTTP/2 cleartext; with `=CONTROLLER` it serves the
//!   Ingresses of that controller's IngressClasses, without it every Ingress. Each
//!   `--listen-tls` serves HTTPS (TLS 1.2 and 1.3, ALPN `h2` and `http/1.1`) the same way, with
//!   the certificate each SNI gets from the `spec.tls` of the served Ingresses and the
//!   `kubernetes.io/tls` Secrets of the FILEs. Without either: `--listen 127.0.0.1:8080
//!   --listen-tls 127.0.0.1:8443`.
//! - Names no Secret covers get the default certificate: `--default-certificate`'s Secret, or a
//!   self-signed one generated at start.
//! - Plain-HTTP requests for hosts with TLS are redirected to https (`308`), except with
//!   `--no-ssl-redirect` (every listener) or `--no-ssl-redirect=CONTROLLER`. Requests over TLS
//!   for a host whose certificate is not the one the SNI got are answered `421`.
//! - Service backends resolve through the `Service` and `EndpointSlice` objects of the FILEs;
//!   requests are spread round-robin over ready endpoints, a failed connect is retried on the
//!   next endpoint, a Service without endpoints gets `503`.
//! - `--demo-backends` (implied when the FILEs hold no EndpointSlice) starts an echo server per
//!   Service port, which answers with JSON describing the request it received, and generates
//!   the TLS Secrets the FILEs lack, signed by a demo CA whose certificate is written to a file
//!   for `curl --cacert`.
//! - The FILEs are re-read when they change (polled every `--poll-interval` ms, default 500)
//!   and on SIGHUP, certificates included; a bad edit is reported and the running tables keep
//!   serving. Open connections keep the certificate they started with.
//! - Without FILE, the bundled `examples/manifests/demo.yaml` is served.
//! - With `--kubeconfig PATH` (or inside a pod, without FILE: the in-cluster configuration;
//!   feature `kube`) the objects come from the apiserver instead: every Ingress, IngressClass,
//!   Service, EndpointSlice and TLS Secret of the cluster or of `--namespace NS`, Ingresses
//!   filtered by `--selector`. Nothing is served before every kind has been listed. With
//!   `--publish-address ADDR` (IPs or hostnames, repeated or comma-separated) or
//!   `--publish-service NS/NAME` (a LoadBalancer Service's addresses), the replica holding the
//!   Lease `--election-id` (default `ingress-router`) in `--election-namespace` (default: the
//!   `--namespace`, else `default`) writes them into the status of every Ingress served, and
//!   removes them from Ingresses no longer served. `--election-lease` sets the Lease's
//!   duration (default 15 s).
//! - `--health ADDR` serves `/healthz` and `/readyz` (ready once the objects are loaded).
//! - `--metrics ADDR` serves Prometheus metrics at `/metrics`: requests by listener
//!   controller, Ingress, backend and status class, their latency, upstream errors and
//!   timeouts, open connections and reloads (see `metrics.rs` and the README).
//! - ingress-nginx annotations (`nginx.ingress.kubernetes.io/*`, or `--annotations-prefix`)
//!   are honoured as typed policies (see the crate's `NginxAnnotations`), with the settings of
//!   the controller ConfigMap `--configmap NS/NAME` (read from the FILEs, or from the
//!   cluster; changes take effect on restart). `--http-port` and `--https-port` are the ports
//!   clients use (behind a LoadBalancer or NodePort they differ from the listeners'), for
//!   redirect locations; a scheme's default port is left out.
//!
//! - `--threads N` serving threads (default: `TOKIO_WORKER_THREADS`, else one per core), each
//!   with a single-threaded runtime; the listeners hand them accepted connections in turn.
//!
//! One log line per request: controller, method, host, target, status, backend, latency.
//! `RUST_LOG=debug` shows more.

mod args;
#[cfg(feature = "kube")]
mod cluster;
mod health;
mod proxy;

use std::process::ExitCode;

use proxy::{DataPlane, FileObjects, LoadError, Loaded};

/// mimalloc: a proxied request allocates and frees a few dozen small blocks, on whichever
/// worker thread runs it; a thread-caching allocator does that for less than glibc's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn report(outcome: Result<Loaded, LoadError>) {
    match outcome {
        Ok(loaded) => {
            for rejected in &loaded.rejected {
                tracing::warn!("{rejected}");
            }
            for line in loaded
                .diagnostics
                .iter()
                .chain(&loaded.certificate_problems)
                .chain(&loaded.config_problems)
            {
                tracing::warn!("{line}");
            }
            if loaded.rebuilt.is_empty() {
                tracing::info!("reloaded: no table changed");
            } else {
                let names: Vec<&str> = loaded
                    .rebuilt
                    .iter()
                    .map(|c| c.as_deref().unwrap_or("every Ingress"))
                    .collect();
                tracing::info!("reloaded: new tables for {}", names.join(", "));
            }
        }
        Err(e) => tracing::error!("reload refused, the running tables keep serving: {e}"),
    }
}

/// The runtime. With one serving thread (`--threads 1`), a single-threaded runtime on the main
/// thread serves connections and runs everything else; with more, each serving thread has a
/// runtime of its own (see `Options::threads`), and this one, with one worker, loads, reloads
/// and watches.
fn main() -> ExitCode {
    let args = match args::parse() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match args.options.threads {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        _ => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build(),
    };
    match runtime {
        Ok(runtime) => runtime.block_on(run(args)),
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: args::Args) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();

    if let Some(addr) = args.metrics {
        let metrics = proxy::metrics::enable();
        let answer = std::sync::Arc::new(|path: &str| proxy::metrics::answer(path, metrics));
        match health::listen(addr, answer).await {
            Ok(bound) => tracing::info!("metrics on http://{bound}/metrics"),
            Err(e) => {
                eprintln!("cannot serve metrics on {addr}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if let Some(cluster) = args.cluster {
        return run_cluster(args.options, cluster, args.health).await;
    }
    let files = args.options.files.clone();
    let manifests = match proxy::read_files(&files, &args.options.load_limits) {
        Ok(manifests) => manifests,
        Err(e) => {
            eprintln!("cannot load the manifests: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Exact TLS hosts, for the curl lines of the demo.
    let mut tls_hosts: Vec<String> = manifests
        .manifests
        .ingresses
        .iter()
        .flat_map(|i| &i.spec.tls)
        .flat_map(|t| &t.hosts)
        .filter(|h| !h.starts_with('*'))
        .cloned()
        .collect();
    tls_hosts.dedup();
    let (mut plane, loaded) = match DataPlane::start(args.options, Some(manifests)).await {
        Ok(started) => started,
        Err(e) => {
            eprintln!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    for file in &files {
        tracing::info!("serving {}", file.display());
    }
    for line in loaded
        .rejected
        .iter()
        .chain(&loaded.diagnostics)
        .chain(&loaded.certificate_problems)
        .chain(&loaded.config_problems)
    {
        tracing::warn!("{line}");
    }
    if loaded.demo_backends {
        tracing::info!("demo backends: every Service port is answered by an echo server");
    }
    for secret in &loaded.generated_secrets {
        tracing::info!("demo certificate generated for secret {secret}");
    }
    for (scheme, listeners) in [
        ("http", plane.listeners()),
        ("https", plane.tls_listeners()),
    ] {
        for (addr, controller) in listeners {
            match controller {
                Some(name) => {
                    tracing::info!("listening on {scheme}://{addr} for controller {name}")
                }
                None => tracing::info!("listening on {scheme}://{addr} for every Ingress"),
            }
        }
    }
    if let (Some(ca), Some((addr, _))) = (&loaded.demo_ca, plane.tls_listeners().first()) {
        for host in &tls_hosts {
            let port = addr.port();
            tracing::info!(
                "try: curl --resolve {host}:{port}:{} --cacert {} https://{host}:{port}/",
                addr.ip(),
                ca.display()
            );
        }
    }
    plane.watch_files(args.poll, report);
    if let Some(addr) = args.health {
        match health::serve(addr, std::sync::Arc::new(|| Ok(()))).await {
            Ok(bound) => tracing::info!("health on http://{bound}/healthz and /readyz"),
            Err(e) => {
                eprintln!("cannot serve health on {addr}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }

    if !wait_for_signals(Some(&plane)).await {
        return ExitCode::FAILURE;
    }
    tracing::info!("shutting down");
    plane.shutdown().await;
    ExitCode::SUCCESS
}

/// Serves the objects of a cluster.
#[cfg(feature = "kube")]
async fn run_cluster(
    options: proxy::Options,
    cluster: args::Cluster,
    health: Option<std::net::SocketAddr>,
) -> ExitCode {
    let mut options = options;
    if let Some((namespace, name)) = &options.configmap {
        match cluster::configmap(&cluster, namespace, name).await {
            Ok(data) => options.configmap_data = data,
            Err(e) => {
                eprintln!("cannot read the controller ConfigMap: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let (plane, loaded) = match DataPlane::start(options, None::<FileObjects>).await {
        Ok(started) => started,
        Err(e) => {
            eprintln!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    for line in &loaded.config_problems {
        tracing::warn!("{line}");
    }
    for (scheme, listeners) in [
        ("http", plane.listeners()),
        ("https", plane.tls_listeners()),
    ] {
        for (addr, controller) in listeners {
            let who = controller.as_deref().unwrap_or("every Ingress");
            tracing::info!("listening on {scheme}://{addr} for {who}");
        }
    }
    let running = match cluster::start(&plane, cluster).await {
        Ok(running) => running,
        Err(e) => {
            eprintln!("cannot watch the cluster: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(addr) = health {
        match health::serve(addr, running.readiness()).await {
            Ok(bound) => tracing::info!("health on http://{bound}/healthz and /readyz"),
            Err(e) => {
                eprintln!("cannot serve health on {addr}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let ok = wait_for_signals(None).await;
    tracing::info!("shutting down");
    running.stop().await;
    plane.shutdown().await;
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(not(feature = "kube"))]
async fn run_cluster(
    _: proxy::Options,
    _: args::Cluster,
    _: Option<std::net::SocketAddr>,
) -> ExitCode {
    eprintln!(
        "this data plane was built without the `kube` feature: build it with --features kube"
    );
    ExitCode::from(2)
}

/// Waits for SIGTERM or Ctrl-C; SIGHUP reloads the files of `plane`. `false` when signals
/// cannot be watched.
async fn wait_for_signals(plane: Option<&DataPlane>) -> bool {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (mut hangup, mut terminate) = match (
            signal(SignalKind::hangup()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(hangup), Ok(terminate)) => (hangup, terminate),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("cannot watch signals: {e}");
                return false;
            }
        };
        loop {
            tokio::select! {
                _ = hangup.recv() => {
                    if let Some(plane) = plane {
                        tracing::info!("SIGHUP: reloading");
                        report(plane.reload_files().await);
                    }
                }
                _ = terminate.recv() => break,
                _ = tokio::signal::ctrl_c() => break,
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (plane, tokio::signal::ctrl_c().await);
    true
}
