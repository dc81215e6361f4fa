//! The command line of the data plane.

use std::path::PathBuf;
use std::time::Duration;

use ingress_router::{Backend, SecretRef};

use crate::proxy::{DemoBackends, Listen, Options};

/// How to call the data plane.
const USAGE: &str = "usage: data_plane [--listen ADDR[=CONTROLLER]]... \
[--listen-tls ADDR[=CONTROLLER]]... [--default-backend NS/NAME:PORT] \
[--default-certificate NS/NAME] [--no-ssl-redirect[=CONTROLLER]]... [--demo-backends] \
[--poll-interval MS] [FILE]...";

/// The bundled configuration, served without FILE.
const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/manifests/demo.yaml");

pub struct Args {
    /// What to run.
    pub options: Options,
    /// How often the FILEs are checked for changes.
    pub poll: Duration,
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
    if listen.is_empty() && listen_tls.is_empty() {
        listen.push("127.0.0.1:8080".parse::<Listen>()?);
        listen_tls.push("127.0.0.1:8443".parse::<Listen>()?);
    }
    if files.is_empty() {
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
            ..Options::new(listen, files)
        },
        poll,
    })
}
