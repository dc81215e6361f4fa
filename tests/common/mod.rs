//! Builders for Ingresses and requests shared by the routing test suites.

// Each test crate includes this module and uses only part of it.
#![allow(dead_code)]

pub mod fixtures;
pub mod tls;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Where cargo builds: `CARGO_TARGET_DIR`, else `target/` of the checkout.
pub fn target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// The data plane binary, built once with every feature (as the tests are), for the tests
/// that run it as a process.
pub fn data_plane_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "--example", "data_plane", "--all-features"])
            .env("K8S_OPENAPI_ENABLED_VERSION", "1.35")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo runs");
        assert!(status.success(), "cargo build --example data_plane failed");
        let binary = target().join("debug/examples/data_plane");
        assert!(binary.exists(), "{} was not built", binary.display());
        binary
    })
}

/// A data plane process a test started, with the file its log (standard output) goes to;
/// killed when dropped.
pub struct Process {
    /// The process.
    pub child: std::process::Child,
    /// Its log file.
    pub log: PathBuf,
}

impl Process {
    /// Spawns `command` with its standard output into `log`.
    pub fn spawn(command: &mut std::process::Command, log: PathBuf) -> Process {
        let child = command
            .stdout(std::fs::File::create(&log).expect("the log file"))
            .spawn()
            .expect("the data plane starts");
        Process { child, log }
    }

    /// What it has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The address its log names right after `prefix` (`listening on http://`, say).
    pub fn logged_addr(&self, prefix: &str) -> Option<std::net::SocketAddr> {
        let text = self.log();
        let rest = &text[text.find(prefix)? + prefix.len()..];
        rest[..rest.find([' ', '/', '\n'])?].parse().ok()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

use http::{Request, Version};
use ingress_router::model::{
    HttpIngressPath, HttpIngressRuleValue, Ingress, IngressBackend, IngressClass,
    IngressClassParametersReference, IngressRule, IngressServiceBackend, ServiceBackendPort,
    Timestamp, DEFAULT_CLASS_ANNOTATION, INGRESS_CLASS_ANNOTATION,
};
use ingress_router::{Backend, RouteMatch, RouteTable, ServicePort};

/// A Service backend on port 80, the shape every hand-written rule here uses.
pub fn service(name: &str) -> IngressBackend {
    IngressBackend {
        service: Some(IngressServiceBackend {
            name: name.to_owned(),
            port: ServiceBackendPort {
                name: None,
                number: Some(80),
            },
        }),
        resource: None,
    }
}

/// A path rule `path_type path -> service backend` (path `""` is written as an empty string).
pub fn path(path_type: &str, path: &str, backend: &str) -> HttpIngressPath {
    HttpIngressPath {
        path: Some(path.to_owned()),
        path_type: Some(path_type.to_owned()),
        backend: service(backend),
    }
}

/// A host rule with paths; host `""` is a host-less rule.
pub fn rule(host: &str, paths: Vec<HttpIngressPath>) -> IngressRule {
    IngressRule {
        host: (!host.is_empty()).then(|| host.to_owned()),
        http: Some(HttpIngressRuleValue { paths }),
    }
}

/// A host rule without an `http` section.
pub fn rule_without_http(host: &str) -> IngressRule {
    IngressRule {
        host: Some(host.to_owned()),
        http: None,
    }
}

/// Builds an Ingress field by field.
#[derive(Debug, Clone)]
pub struct IngressBuilder(Ingress);

/// Start an Ingress `namespace/name` with no timestamp, rules or defaultBackend.
pub fn ingress(namespace: &str, name: &str) -> IngressBuilder {
    let mut ing = Ingress::default();
    ing.metadata.name = name.to_owned();
    ing.metadata.namespace = Some(namespace.to_owned());
    IngressBuilder(ing)
}

impl IngressBuilder {
    /// `creationTimestamp` as seconds after an arbitrary epoch; only the order matters.
    pub fn created(mut self, secs: i64) -> Self {
        self.0.metadata.creation_timestamp =
            Some(Timestamp::from_unix_seconds(1_700_000_000 + secs));
        self
    }

    pub fn default_backend(mut self, backend: &str) -> Self {
        self.0.spec.default_backend = Some(service(backend));
        self
    }

    pub fn rule(mut self, rule: IngressRule) -> Self {
        self.0.spec.rules.push(rule);
        self
    }

    /// Shorthand for a rule with one path.
    pub fn path(self, host: &str, path_type: &str, p: &str, backend: &str) -> Self {
        self.rule(rule(host, vec![path(path_type, p, backend)]))
    }

    /// `spec.ingressClassName`.
    pub fn class(mut self, name: &str) -> Self {
        self.0.spec.ingress_class_name = Some(name.to_owned());
        self
    }

    /// The legacy `kubernetes.io/ingress.class` annotation.
    pub fn class_annotation(mut self, value: &str) -> Self {
        self.0
            .metadata
            .annotations
            .insert(INGRESS_CLASS_ANNOTATION.to_owned(), value.to_owned());
        self
    }

    pub fn build(self) -> Ingress {
        self.0
    }
}

/// Builds an IngressClass field by field.
#[derive(Debug, Clone)]
pub struct IngressClassBuilder(IngressClass);

/// Start an IngressClass `name` served by `controller`, not default, with no timestamp.
pub fn ingress_class(name: &str, controller: &str) -> IngressClassBuilder {
    let mut class = IngressClass::default();
    class.metadata.name = name.to_owned();
    class.spec.controller = controller.to_owned();
    IngressClassBuilder(class)
}

impl IngressClassBuilder {
    /// `creationTimestamp`, on the same scale as [`IngressBuilder::created`].
    pub fn created(mut self, secs: i64) -> Self {
        self.0.metadata.creation_timestamp =
            Some(Timestamp::from_unix_seconds(1_700_000_000 + secs));
        self
    }

    /// Marks the class as the cluster default.
    pub fn default_class(self) -> Self {
        self.default_annotation("true")
    }

    /// Sets the default-class annotation to any value (only `"true"` marks a default).
    pub fn default_annotation(mut self, value: &str) -> Self {
        self.0
            .metadata
            .annotations
            .insert(DEFAULT_CLASS_ANNOTATION.to_owned(), value.to_owned());
        self
    }

    pub fn parameters(mut self, parameters: IngressClassParametersReference) -> Self {
        self.0.spec.parameters = Some(parameters);
        self
    }

    pub fn build(self) -> IngressClass {
        self.0
    }
}

/// A GET request for `target`. With a host it is HTTP/1.1 with that `Host` header; without
/// one it is HTTP/1.0 with no `Host`, the one request form that carries no host at all
/// (HTTP/1.1 requires `Host`), so it can reach only host-less rules.
pub fn get(host: Option<&str>, target: &str) -> Request<()> {
    request("GET", host, target)
}

/// Like [`get`] with any method.
pub fn request(method: &str, host: Option<&str>, target: &str) -> Request<()> {
    let builder = Request::builder().method(method).uri(target);
    let builder = match host {
        Some(host) => builder
            .version(Version::HTTP_11)
            .header(http::header::HOST, host),
        None => builder.version(Version::HTTP_10),
    };
    builder
        .body(())
        .unwrap_or_else(|e| panic!("request {method} {host:?} {target:?}: {e}"))
}

/// Route a request through canonicalisation; a rejection fails the test.
pub fn send<'t>(table: &'t RouteTable, host: Option<&str>, target: &str) -> Option<RouteMatch<'t>> {
    let req = get(host, target);
    match table.route_request(&req) {
        Ok(routed) => routed.route,
        Err(rejection) => panic!("{host:?} {target:?} rejected: {rejection}"),
    }
}

/// The Service name a route ends at, `None` for 404.
pub fn service_of(route: Option<RouteMatch<'_>>) -> Option<String> {
    route.map(|m| match m.backend() {
        Backend::Service(s) => s.name.clone(),
        other => panic!("expected a Service backend, got {other:?}"),
    })
}

/// The Service backend `namespace/name:80`, as the table resolves it.
pub fn service_backend(namespace: &str, name: &str) -> Backend {
    Backend::Service(ingress_router::ServiceBackend {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        port: ServicePort::Number(80),
    })
}
