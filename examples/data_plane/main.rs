//! An ingress data plane: a reverse proxy that routes with the Ingresses of manifest files.
//!
//! ```text
//! cargo run --release --example data_plane -- [--listen ADDR[=CONTROLLER]]...
//!     [--default-backend NS/NAME:PORT] [--demo-backends] [--poll-interval MS] [FILE]...
//! ```
//!
//! - Each `--listen` serves HTTP/1.1 and HTTP/2 cleartext; with `=CONTROLLER` it serves the
//!   Ingresses of that controller's IngressClasses, without it every Ingress. Default:
//!   `127.0.0.1:8080`.
//! - Service backends resolve through the `Service` and `EndpointSlice` objects of the FILEs;
//!   requests are spread round-robin over ready endpoints, a failed connect is retried on the
//!   next endpoint, a Service without endpoints gets `503`.
//! - `--demo-backends` (implied when the FILEs hold no EndpointSlice) starts an echo server per
//!   Service port, which answers with JSON describing the request it received.
//! - The FILEs are re-read when they change (polled every `--poll-interval` ms, default 500)
//!   and on SIGHUP; a bad edit is reported and the running tables keep serving.
//! - Without FILE, the bundled `examples/manifests/demo.yaml` is served.
//!
//! One log line per request: controller, method, host, target, status, backend, latency.
//! `RUST_LOG=debug` shows more.

mod proxy;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use ingress_router::Backend;
use proxy::{DataPlane, DemoBackends, Listen, LoadError, Loaded, Options};

const USAGE: &str = "usage: data_plane [--listen ADDR[=CONTROLLER]]... \
[--default-backend NS/NAME:PORT] [--demo-backends] [--poll-interval MS] [FILE]...";

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/manifests/demo.yaml");

struct Args {
    options: Options,
    poll: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut listen = Vec::new();
    let mut default_backend = None;
    let mut demo_backends = DemoBackends::Auto;
    let mut files = Vec::new();
    let mut poll = Duration::from_millis(500);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--listen" => listen.push(value("--listen")?.parse::<Listen>()?),
            "--default-backend" => {
                let text = value("--default-backend")?;
                let backend: Backend = text
                    .parse()
                    .map_err(|e| format!("--default-backend {text:?}: {e}"))?;
                default_backend = Some(backend);
            }
            "--demo-backends" => demo_backends = DemoBackends::On,
            "--poll-interval" => {
                let text = value("--poll-interval")?;
                let ms: u64 = text
                    .parse()
                    .map_err(|_| format!("--poll-interval {text:?}: not a number of ms"))?;
                poll = Duration::from_millis(ms.max(10));
            }
            "-h" | "--help" => return Err(USAGE.into()),
            flag if flag.starts_with("--") => {
                return Err(format!("unknown option {flag}\n{USAGE}"))
            }
            file => files.push(PathBuf::from(file)),
        }
    }
    if listen.is_empty() {
        listen.push("127.0.0.1:8080".parse::<Listen>()?);
    }
    if files.is_empty() {
        files.push(PathBuf::from(DEMO));
    }
    Ok(Args {
        options: Options {
            listen,
            default_backend,
            demo_backends,
            files,
        },
        poll,
    })
}

fn report(outcome: Result<Loaded, LoadError>) {
    match outcome {
        Ok(loaded) => {
            for rejected in &loaded.rejected {
                tracing::warn!("{rejected}");
            }
            for line in &loaded.diagnostics {
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

    let args = match parse_args() {
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
    for line in loaded.rejected.iter().chain(&loaded.diagnostics) {
        tracing::warn!("{line}");
    }
    if loaded.demo_backends {
        tracing::info!("demo backends: every Service port is answered by an echo server");
    }
    for (addr, controller) in plane.listeners() {
        match controller {
            Some(name) => tracing::info!("listening on http://{addr} for controller {name}"),
            None => tracing::info!("listening on http://{addr} for every Ingress"),
        }
    }
    plane.watch_files(args.poll, report);

    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangup = match signal(SignalKind::hangup()) {
            Ok(hangup) => hangup,
            Err(e) => {
                eprintln!("cannot watch SIGHUP: {e}");
                return ExitCode::FAILURE;
            }
        };
        loop {
            tokio::select! {
                _ = hangup.recv() => {
                    tracing::info!("SIGHUP: reloading");
                    report(plane.reload_files().await);
                }
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
