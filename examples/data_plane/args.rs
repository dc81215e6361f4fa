//! The command line of the data plane.

use std::path::PathBuf;
use std::time::Duration;

use ingress_router::{Backend, LoadLimits, SecretRef};

use crate::proxy::limits::{self, Limits};
use crate::proxy::{DemoBackends, Listen, Options};

/// How to call the data plane.
const USAGE: &str = "usage: data_plane [--listen ADDR[=CONTROLLER]]... \
[--listen-tls ADDR[=CONTROLLER]]... [--default-backend NS/NAME:PORT] \
[--default-certificate NS/NAME] [--no-ssl-redirect[=CONTROLLER]]... [--demo-backends] \
[--poll-interval MS] [--health ADDR] [--metrics ADDR] [--configmap NS/NAME] \
[--annotations-prefix PREFIX] [--http-port PORT] [--https-port PORT] [--threads N] \
[--kubeconfig PATH] \
[--namespace NS] [--selector LABELS] \
[--publish-address ADDR]... [--publish-service NS/NAME] [--election-namespace NS] \
[--election-id NAME] [--election-lease SECONDS] [--max-input-bytes BYTES] [--max-objects N] \
[--max-document-bytes BYTES] [--max-object-bytes BYTES] [--max-depth N] [--max-rules N] \
[--max-paths N] [LIMITS] [FILE]...";

/// The bundled configuration, served without FILE.
const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/manifests/demo.yaml");

pub struct Args {
    /// What to run.
    pub options: Options,
    /// How often the FILEs are checked for changes.
    pub poll: Duration,
    /// Where `/healthz` and `/readyz` are served.
    pub health: Option<std::net::SocketAddr>,
    /// Where `/metrics` is served.
    pub metrics: Option<std::net::SocketAddr>,
    /// Objects come from a cluster rather than FILEs.
    pub cluster: Option<Cluster>,
}

/// Where the objects come from when they come from the apiserver, and what is written back.
#[derive(Debug, Clone, Default)]
#[cfg_attr(not(feature = "kube"), allow(dead_code))]
pub struct Cluster {
    /// `--kubeconfig`; `None`: the in-cluster configuration.
    pub kubeconfig: Option<PathBuf>,
    /// `--namespace`: watch one namespace only.
    pub namespace: Option<String>,
    /// `--selector`: a label selector for Ingresses.
    pub selector: Option<String>,
    /// `--publish-address`: the addresses written into Ingress status.
    pub publish_addresses: Vec<String>,
    /// `--publish-service NS/NAME`: a LoadBalancer Service whose addresses are written.
    pub publish_service: Option<(String, String)>,
    /// `--election-namespace`: where the Lease lives.
    pub election_namespace: Option<String>,
    /// `--election-id`: the Lease's name.
    pub election_id: String,
    /// `--election-lease`: how long the Lease holds without renewal.
    pub election_lease: Duration,
}

fn namespaced(flag: &str, text: &str) -> Result<(String, String), String> {
    text.split_once('/')
        .filter(|(ns, n)| !ns.is_empty() && !n.is_empty() && !n.contains('/'))
        .map(|(ns, n)| (ns.to_owned(), n.to_owned()))
        .ok_or(format!("{flag} {text:?}: expected NAMESPACE/NAME"))
}

/// Sets the [`LoadLimits`] field of `flag` (`--max-objects` sets `max_objects`) from `text`:
/// a count, or for the `-bytes` flags a size in bytes with an optional suffix: `k`, `M`, `G`
/// (powers of 1000) or `Ki`, `Mi`, `Gi` (powers of 1024), each optionally followed by `B`, as in
/// `100Mi`, `512MiB` or `1G`.
fn load_limit(limits: &mut LoadLimits, flag: &str, text: &str) -> Result<(), String> {
    let count = || {
        text.parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or(format!("{flag} {text:?}: not a positive number"))
    };
    let bytes = || {
        byte_size(text).filter(|n| *n > 0).ok_or(format!(
            "{flag} {text:?}: not a positive size in bytes (e.g. 1048576, 512Ki, 100Mi, 1G)"
        ))
    };
    match flag {
        "--max-input-bytes" => limits.max_input_bytes = bytes()?,
        "--max-objects" => limits.max_objects = count()?,
        "--max-document-bytes" => limits.max_document_bytes = bytes()?,
        "--max-object-bytes" => limits.max_object_bytes = bytes()?,
        "--max-depth" => limits.max_depth = count()?,
        "--max-rules" => limits.max_rules = count()?,
        "--max-paths" => limits.max_paths = count()?,
        _ => return Err(format!("unknown option {flag}")),
    }
    Ok(())
}

/// `1048576`, `512Ki`, `100MiB`, `1G`: bytes, with an optional decimal or binary suffix.
fn byte_size(text: &str) -> Option<usize> {
    let (number, unit) = limits::number_and_unit(text)?;
    let number = usize::try_from(number).ok()?;
    let unit = unit.strip_suffix('B').unwrap_or(unit);
    let scale: usize = match unit {
        "" => 1,
        "k" | "K" => 1000,
        "M" => 1000 * 1000,
        "G" => 1000 * 1000 * 1000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        _ => return None,
    };
    number.checked_mul(scale)
}

/// Serving threads without `--threads`: `TOKIO_WORKER_THREADS` when set (tokio's own
/// variable), else one per core.
fn default_threads() -> usize {
    std::env::var("TOKIO_WORKER_THREADS")
        .ok()
        .and_then(|n| n.trim().parse::<usize>().ok())
        .filter(|n| (1..=1024).contains(n))
        .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
        .unwrap_or(1)
}

/// Reads the command line.
pub fn parse() -> Result<Args, String> {
    let mut listen = Vec::new();
    let mut listen_tls = Vec::new();
    let mut default_backend = None;
    let mut default_certificate = None;
    let mut no_ssl_redirect = Vec::new();
    let mut all_without_ssl_redirect = false;
    let mut demo_backends = DemoBackends::Auto;
    let mut files = Vec::new();
    let mut poll = Duration::from_millis(500);
    let mut health = None;
    let mut metrics = None;
    let mut cluster = Cluster {
        election_id: "ingress-router".to_owned(),
        election_lease: Duration::from_secs(15),
        ..Cluster::default()
    };
    let mut cluster_flags = Vec::new();
    let mut configmap = None;
    let mut annotations_prefix = None;
    let mut http_port = None;
    let mut https_port = None;
    let mut limits = Limits::default();
    let mut load_limits = LoadLimits::default();
    let mut threads = default_threads();
    let port = |flag: &str, text: String| {
        text.parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or(format!("{flag} {text:?}: not a port number"))
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--listen" => listen.push(value("--listen")?.parse::<Listen>()?),
            "--listen-tls" => listen_tls.push(value("--listen-tls")?.parse::<Listen>()?),
            "--default-certificate" => {
                let text = value("--default-certificate")?;
                let (namespace, name) = text
                    .split_once('/')
                    .filter(|(ns, n)| !ns.is_empty() && !n.is_empty())
                    .ok_or(format!(
                        "--default-certificate {text:?}: expected NAMESPACE/NAME"
                    ))?;
                default_certificate = Some(SecretRef::new(namespace, name));
            }
            "--no-ssl-redirect" => all_without_ssl_redirect = true,
            flag if flag.starts_with("--no-ssl-redirect=") => {
                let controller = &flag["--no-ssl-redirect=".len()..];
                if controller.is_empty() {
                    return Err(format!("{flag}: empty controller name"));
                }
                no_ssl_redirect.push(Some(controller.to_owned()));
            }
            "--default-backend" => {
                let text = value("--default-backend")?;
                let backend: Backend = text
                    .parse()
                    .map_err(|e| format!("--default-backend {text:?}: {e}"))?;
                default_backend = Some(backend);
            }
            "--demo-backends" => demo_backends = DemoBackends::On,
            "--configmap" => {
                configmap = Some(namespaced("--configmap", &value("--configmap")?)?);
            }
            "--annotations-prefix" => {
                let prefix = value("--annotations-prefix")?;
                if prefix.is_empty() || prefix.contains(char::is_whitespace) {
                    return Err(format!("--annotations-prefix {prefix:?}: not a prefix"));
                }
                annotations_prefix = Some(prefix);
            }
            "--http-port" => http_port = Some(port("--http-port", value("--http-port")?)?),
            "--https-port" => https_port = Some(port("--https-port", value("--https-port")?)?),
            "--threads" => {
                let text = value("--threads")?;
                threads = text
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=1024).contains(n))
                    .ok_or(format!("--threads {text:?}: not a number from 1 to 1024"))?;
            }
            "--poll-interval" => {
                let text = value("--poll-interval")?;
                let ms: u64 = text
                    .parse()
                    .map_err(|_| format!("--poll-interval {text:?}: not a number of ms"))?;
                poll = Duration::from_millis(ms.max(10));
            }
            "--health" => {
                let text = value("--health")?;
                health = Some(
                    text.parse()
                        .map_err(|e| format!("--health {text:?}: not an address: {e}"))?,
                );
            }
            "--metrics" => {
                let text = value("--metrics")?;
                metrics = Some(
                    text.parse()
                        .map_err(|e| format!("--metrics {text:?}: not an address: {e}"))?,
                );
            }
            "--kubeconfig" => {
                cluster.kubeconfig = Some(PathBuf::from(value("--kubeconfig")?));
                cluster_flags.push(arg);
            }
            "--namespace" => {
                cluster.namespace = Some(value("--namespace")?);
                cluster_flags.push(arg);
            }
            "--selector" => {
                cluster.selector = Some(value("--selector")?);
                cluster_flags.push(arg);
            }
            "--publish-address" => {
                let text = value("--publish-address")?;
                cluster.publish_addresses.extend(
                    text.split(',')
                        .map(str::trim)
                        .filter(|a| !a.is_empty())
                        .map(str::to_owned),
                );
                cluster_flags.push(arg);
            }
            "--publish-service" => {
                let text = value("--publish-service")?;
                cluster.publish_service = Some(namespaced("--publish-service", &text)?);
                cluster_flags.push(arg);
            }
            "--election-namespace" => {
                cluster.election_namespace = Some(value("--election-namespace")?);
                cluster_flags.push(arg);
            }
            "--election-id" => {
                cluster.election_id = value("--election-id")?;
                cluster_flags.push(arg);
            }
            "--election-lease" => {
                let text = value("--election-lease")?;
                let seconds: u64 = text.parse().ok().filter(|s| *s >= 2).ok_or(format!(
                    "--election-lease {text:?}: a number of seconds, at least 2"
                ))?;
                cluster.election_lease = Duration::from_secs(seconds);
                cluster_flags.push(arg);
            }
            "--max-input-bytes"
            | "--max-objects"
            | "--max-document-bytes"
            | "--max-object-bytes"
            | "--max-depth"
            | "--max-rules"
            | "--max-paths" => {
                let text = value(&arg)?;
                load_limit(&mut load_limits, &arg, &text)?;
            }
            flag if Limits::knows(flag) => {
                let text = value(flag)?;
                limits.set(flag, &text)?;
            }
            "-h" | "--help" => return Err(format!("{USAGE}\nlimits: {}", limits::FLAGS)),
            flag if flag.starts_with("--") => {
                return Err(format!("unknown option {flag}\n{USAGE}"))
            }
            file => files.push(PathBuf::from(file)),
        }
    }
    if listen.is_empty() && listen_tls.is_empty() {
        listen.push("127.0.0.1:8080".parse::<Listen>()?);
        listen_tls.push("127.0.0.1:8443".parse::<Listen>()?);
    }
    // The apiserver is the source with --kubeconfig, or inside a pod when no FILE is given.
    let in_pod = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
    let from_cluster = cluster.kubeconfig.is_some() || (files.is_empty() && in_pod);
    if from_cluster && !files.is_empty() {
        return Err(
            "FILEs and --kubeconfig exclude each other: objects come from one source".into(),
        );
    }
    if !from_cluster && !cluster_flags.is_empty() {
        return Err(format!(
            "{} only apply to a cluster: add --kubeconfig PATH, or run inside a pod",
            cluster_flags.join(", ")
        ));
    }
    if cluster.publish_service.is_some() && !cluster.publish_addresses.is_empty() {
        return Err("--publish-address and --publish-service exclude each other".into());
    }
    if files.is_empty() && !from_cluster {
        files.push(PathBuf::from(DEMO));
    }
    Ok(Args {
        options: Options {
            listen_tls,
            default_backend,
            default_certificate,
            no_ssl_redirect,
            all_without_ssl_redirect,
            demo_backends,
            configmap,
            annotations_prefix,
            http_port,
            https_port,
            limits,
            load_limits,
            threads,
            ..Options::new(listen, files)
        },
        poll,
        health,
        metrics,
        cluster: from_cluster.then_some(cluster),
    })
}
