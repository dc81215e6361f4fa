//! An ingress data plane: a reverse proxy that routes with the Ingresses of manifest files.
//!
//! ```text
//! cargo run --release --features rustls --example data_plane -- [--listen ADDR[=CONTROLLER]]...
//!     [--listen-tls ADDR[=CONTROLLER]]... [--default-backend NS/NAME:PORT]
//!     [--default-certificate NS/NAME] [--no-ssl-redirect[=CONTROLLER]]... [--demo-backends]
//!     [--poll-interval MS] [FILE]...
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
//!
//! One log line per request: controller, method, host, target, status, backend, latency.
//! `RUST_LOG=debug` shows more.

mod args;
mod proxy;

use std::process::ExitCode;

use proxy::{DataPlane, LoadError, Loaded};

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

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();

    let args = match args::parse() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let files = args.options.files.clone();
    let manifests = match proxy::read_files(&files) {
        Ok(manifests) => manifests,
        Err(e) => {
            eprintln!("cannot load the manifests: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Exact TLS hosts, for the curl lines of the demo.
    let mut tls_hosts: Vec<String> = manifests
        .ingresses
        .iter()
        .flat_map(|i| &i.spec.tls)
        .flat_map(|t| &t.hosts)
        .filter(|h| !h.starts_with('*'))
        .cloned()
        .collect();
    tls_hosts.dedup();
    let (mut plane, loaded) = match DataPlane::start(args.options, manifests).await {
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
                return ExitCode::FAILURE;
            }
        };
        loop {
            tokio::select! {
                _ = hangup.recv() => {
                    tracing::info!("SIGHUP: reloading");
                    report(plane.reload_files().await);
                }
                _ = terminate.recv() => break,
                _ = tokio::signal::ctrl_c() => break,
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;

    tracing::info!("shutting down");
    plane.shutdown().await;
    ExitCode::SUCCESS
}
