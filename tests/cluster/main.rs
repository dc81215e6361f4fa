//! The data plane against a real Kubernetes control plane: etcd and kube-apiserver built from
//! their Go modules (`tests/cluster/build.sh`) and started on loopback (`up.sh`).
//!
//! Every test drives the cluster through `kubectl` as `admin`, runs the real
//! `examples/data_plane` binary as the `controller` identity (bound only to the shipped
//! ClusterRole), and checks what it serves over real sockets. With `INGRESS_ROUTER_CLUSTER=DIR`
//! the tests use the cluster `up.sh DIR` started; otherwise they start one of their own
//! (building the binaries when they are not cached), and stop it when the test process ends.
//! A missing binary or tool is a failure, never a skip.

#[path = "../common/mod.rs"]
mod common;

use common::{data_plane_binary, target};

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::tls::{secret_yaml, served_certificate, TestCa};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A control plane started by `up.sh`.
struct Cluster {
    dir: PathBuf,
}

impl Cluster {
    fn kubeconfig(&self, who: &str) -> PathBuf {
        self.dir.join(format!("{who}.kubeconfig"))
    }

    /// Runs kubectl as admin with `stdin`; panics with its output when it fails.
    fn kubectl(&self, args: &[&str], stdin: &str) -> String {
        self.kubectl_as("admin", args, stdin)
            .unwrap_or_else(|e| panic!("kubectl {args:?}: {e}"))
    }

    fn kubectl_as(&self, who: &str, args: &[&str], stdin: &str) -> Result<String, String> {
        let mut child = Command::new(self.dir.join("bin/kubectl"))
            .arg("--kubeconfig")
            .arg(self.kubeconfig(who))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl runs");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    fn apply(&self, yaml: &str) {
        self.kubectl(&["apply", "-f", "-"], yaml);
    }

    fn namespace(&self, name: &str) {
        self.apply(&format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}}}\n"
        ));
    }

    /// The `status.loadBalancer.ingress` of an Ingress, as JSON text.
    fn ingress_status(&self, namespace: &str, name: &str) -> String {
        self.kubectl(
            &[
                "get",
                "ingress",
                "-n",
                namespace,
                name,
                "-o",
                "jsonpath={.status.loadBalancer.ingress}",
            ],
            "",
        )
    }
}

/// Starts a cluster in `dir`, and stops it when this test process exits.
fn start_cluster(dir: &Path) -> Cluster {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let status = Command::new("bash")
        .arg(format!("{ROOT}/tests/cluster/up.sh"))
        .arg(dir)
        .status()
        .expect("bash runs");
    assert!(
        status.success(),
        "tests/cluster/up.sh {} failed",
        dir.display()
    );
    // Stop it when the test process is gone, however it ends.
    let reaper = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; bash {ROOT}/tests/cluster/down.sh {dir}",
        pid = std::process::id(),
        dir = dir.display()
    );
    #[allow(clippy::zombie_processes)] // It outlives this process on purpose.
    Command::new("setsid")
        .args(["bash", "-c", &reaper])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("setsid runs");
    Cluster {
        dir: dir.to_owned(),
    }
}

/// The cluster most tests share.
fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| match std::env::var_os("INGRESS_ROUTER_CLUSTER") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            assert!(
                dir.join("admin.kubeconfig").exists(),
                "INGRESS_ROUTER_CLUSTER={}: no cluster there (run tests/cluster/up.sh DIR)",
                dir.display()
            );
            Cluster { dir }
        }
        None => start_cluster(&target().join(format!("cluster/test-{}", std::process::id()))),
    })
}

/// A non-loopback address of this host: the apiserver refuses loopback endpoints.
fn host_ip() -> IpAddr {
    static IP: OnceLock<IpAddr> = OnceLock::new();
    *IP.get_or_init(|| {
        let out = Command::new("hostname")
            .arg("-I")
            .output()
            .expect("hostname runs");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|a| a.parse::<IpAddr>().ok())
            .find(|a| a.is_ipv4() && !a.is_loopback())
            .expect("this host has a non-loopback IPv4 address for the test endpoints")
    })
}

/// A backend that answers every request with its name.
struct Echo {
    port: u16,
}

fn echo(name: &str) -> Echo {
    let listener = TcpListener::bind((host_ip(), 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let name = name.to_owned();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let name = name.clone();
            std::thread::spawn(move || answer_echo(stream, &name));
        }
    });
    Echo { port }
}

fn answer_echo(mut stream: TcpStream, name: &str) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        // One request at a time on a keep-alive connection: read a head, answer it.
        while !buffer.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        let end = buffer.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        buffer.drain(..end);
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{name}",
            name.len()
        );
        if stream.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

/// A running `examples/data_plane`, killed when dropped.
struct DataPlane {
    child: Child,
    log: PathBuf,
    http: SocketAddr,
    https: Option<SocketAddr>,
    health: SocketAddr,
}

static PLANES: AtomicUsize = AtomicUsize::new(0);

impl DataPlane {
    /// Starts the data plane as `who` with `args` (after the listeners and health flags).
    fn start(cluster: &Cluster, who: &str, controller: &str, tls: bool, args: &[&str]) -> Self {
        let n = PLANES.fetch_add(1, Ordering::Relaxed);
        let log = cluster
            .dir
            .join(format!("data-plane-{}-{n}.log", std::process::id()));
        let mut command = Command::new(data_plane_binary());
        command
            .arg("--kubeconfig")
            .arg(cluster.kubeconfig(who))
            .args(["--listen", &format!("127.0.0.1:0={controller}")])
            .args(["--health", "127.0.0.1:0"]);
        if tls {
            command.args(["--listen-tls", &format!("127.0.0.1:0={controller}")]);
        }
        let child = command
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the data plane starts");
        let find = |prefix: &str| -> Option<SocketAddr> {
            let text = std::fs::read_to_string(&log).ok()?;
            let at = text.find(prefix)? + prefix.len();
            let rest = &text[at..];
            let end = rest.find([' ', '/', '\n'])?;
            rest[..end].parse().ok()
        };
        let mut plane = None;
        eventually(Duration::from_secs(20), "the data plane to listen", || {
            let http = find("listening on http://")?;
            let health = find("health on http://")?;
            let https = if tls {
                Some(find("listening on https://")?)
            } else {
                None
            };
            plane = Some((http, https, health));
            Some(())
        });
        let (http, https, health) = plane.unwrap();
        DataPlane {
            child,
            log,
            http,
            https,
            health,
        }
    }

    fn get(&self, host: &str, path: &str) -> Option<(u16, String)> {
        http_get(self.http, host, path)
    }

    fn ready(&self) -> Option<(u16, String)> {
        http_get(self.health, "health", "/readyz")
    }

    fn wait_ready(&self) {
        eventually(Duration::from_secs(30), "/readyz to answer 200", || {
            (self.ready()?.0 == 200).then_some(())
        });
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the process with SIGTERM (it frees its Lease).
    fn terminate(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for DataPlane {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.1 GET; `None` when the connection fails.
fn http_get(addr: SocketAddr, host: &str, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let text = String::from_utf8_lossy(&response);
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((status, body))
}

/// Polls `check` until it gives `Some`, or panics after `timeout`.
fn eventually<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn serves(plane: &DataPlane, host: &str, path: &str, expect: (u16, &str)) {
    eventually(
        Duration::from_secs(20),
        &format!("{host}{path} to answer {expect:?}"),
        || {
            let (status, body) = plane.get(host, path)?;
            (status == expect.0 && (expect.1.is_empty() || body == expect.1)).then_some(())
        },
    );
}

// --- manifests ------------------------------------------------------------------------------

fn class(name: &str, controller: &str) -> String {
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {{name: {name}}}\n\
         spec: {{controller: {controller}}}\n"
    )
}

fn service(namespace: &str, name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {namespace}}}\n\
         spec: {{ports: [{{name: http, port: 80}}]}}\n"
    )
}

/// An EndpointSlice of Service `service` with one ready endpoint: this host, on `port`.
fn slice(namespace: &str, service: &str, name: &str, port: u16) -> String {
    format!(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
         metadata: {{name: {name}, namespace: {namespace}, labels: {{kubernetes.io/service-name: {service}}}}}\n\
         addressType: IPv4\nports: [{{name: http, port: {port}, protocol: TCP}}]\n\
         endpoints: [{{addresses: [\"{ip}\"], conditions: {{ready: true}}}}]\n",
        ip = host_ip()
    )
}

fn ingress(
    namespace: &str,
    name: &str,
    class: &str,
    host: &str,
    path: &str,
    service: &str,
) -> String {
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: {name}, namespace: {namespace}}}\n\
         spec:\n  ingressClassName: {class}\n  rules:\n  - host: {host}\n    http:\n      paths:\n\
         \x20     - {{path: {path}, pathType: Prefix, backend: {{service: {{name: {service}, port: {{number: 80}}}}}}}}\n"
    )
}

fn tls_ingress(namespace: &str, name: &str, class: &str, host: &str, secret: &str) -> String {
    format!(
        "{}  tls: [{{hosts: [{host}], secretName: {secret}}}]\n",
        ingress(namespace, name, class, host, "/", "web")
    )
}

// --- tests ----------------------------------------------------------------------------------

/// Objects applied through the apiserver are served; edits, deletes, an IngressClass change
/// and endpoints scaled up and down follow.
#[test]
fn serves_what_the_apiserver_holds_and_follows_every_change() {
    let cluster = cluster();
    let ns = "follow";
    let controller = "example.com/follow";
    cluster.namespace(ns);
    let (a, b) = (echo("a"), echo("b"));
    cluster.apply(&class("follow", controller));
    cluster.apply(&service(ns, "web"));
    cluster.apply(&slice(ns, "web", "web-a", a.port));
    cluster.apply(&ingress(
        ns,
        "site",
        "follow",
        "follow.example.com",
        "/",
        "web",
    ));

    let plane = DataPlane::start(
        cluster,
        "controller",
        controller,
        false,
        &["--namespace", ns],
    );
    plane.wait_ready();
    serves(&plane, "follow.example.com", "/", (200, "a"));

    // An edit: the rule moves to /v2.
    cluster.apply(&ingress(
        ns,
        "site",
        "follow",
        "follow.example.com",
        "/v2",
        "web",
    ));
    serves(&plane, "follow.example.com", "/", (404, ""));
    serves(&plane, "follow.example.com", "/v2/x", (200, "a"));

    // Endpoints scaled up: both backends answer; then down again.
    cluster.apply(&slice(ns, "web", "web-b", b.port));
    let mut seen = std::collections::BTreeSet::new();
    eventually(Duration::from_secs(20), "both endpoints to answer", || {
        let (_, body) = plane.get("follow.example.com", "/v2")?;
        seen.insert(body);
        (seen.len() == 2).then_some(())
    });
    cluster.kubectl(&["delete", "endpointslice", "-n", ns, "web-a"], "");
    eventually(Duration::from_secs(20), "only b to answer", || {
        let all_b = (0..6).all(|_| {
            plane
                .get("follow.example.com", "/v2")
                .is_some_and(|r| r.1 == "b")
        });
        all_b.then_some(())
    });
    cluster.kubectl(&["delete", "endpointslice", "-n", ns, "web-b"], "");
    serves(&plane, "follow.example.com", "/v2", (503, ""));
    cluster.apply(&slice(ns, "web", "web-a", a.port));
    serves(&plane, "follow.example.com", "/v2", (200, "a"));

    // The IngressClass goes to another controller (its controller field is immutable: it is
    // deleted and created again): no longer served; and back.
    cluster.kubectl(&["delete", "ingressclass", "follow"], "");
    serves(&plane, "follow.example.com", "/v2", (404, ""));
    cluster.apply(&class("follow", "example.com/someone-else"));
    std::thread::sleep(Duration::from_millis(300));
    serves(&plane, "follow.example.com", "/v2", (404, ""));
    cluster.kubectl(&["delete", "ingressclass", "follow"], "");
    cluster.apply(&class("follow", controller));
    serves(&plane, "follow.example.com", "/v2", (200, "a"));
    // The Ingress changes class: no longer served.
    cluster.apply(&ingress(
        ns,
        "site",
        "elsewhere",
        "follow.example.com",
        "/v2",
        "web",
    ));
    serves(&plane, "follow.example.com", "/v2", (404, ""));
    cluster.apply(&ingress(
        ns,
        "site",
        "follow",
        "follow.example.com",
        "/v2",
        "web",
    ));
    serves(&plane, "follow.example.com", "/v2", (200, "a"));

    // A delete.
    cluster.kubectl(&["delete", "ingress", "-n", ns, "site"], "");
    serves(&plane, "follow.example.com", "/v2", (404, ""));
    assert!(
        plane.log().contains("ready: every kind listed"),
        "{}",
        plane.log()
    );
}

/// A TLS Secret rotated through the apiserver: the new certificate is served.
#[test]
fn a_rotated_secret_serves_the_new_certificate() {
    let cluster = cluster();
    let ns = "rotate";
    let controller = "example.com/rotate";
    cluster.namespace(ns);
    let backend = echo("secure");
    cluster.apply(&class("rotate", controller));
    cluster.apply(&service(ns, "web"));
    cluster.apply(&slice(ns, "web", "web", backend.port));
    let ca = TestCa::new("rotation CA");
    let first = ca.issue(&["secure.example.com"]);
    cluster.apply(&secret_yaml(ns, "secure-tls", &first));
    cluster.apply(&tls_ingress(
        ns,
        "secure",
        "rotate",
        "secure.example.com",
        "secure-tls",
    ));

    let plane = DataPlane::start(
        cluster,
        "controller",
        controller,
        true,
        &["--namespace", ns],
    );
    plane.wait_ready();
    let https = plane.https.unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let served = || runtime.block_on(served_certificate(https, Some("secure.example.com")));
    eventually(Duration::from_secs(20), "the first certificate", || {
        (served() == first.der).then_some(())
    });

    let second = ca.issue(&["secure.example.com"]);
    cluster.apply(&secret_yaml(ns, "secure-tls", &second));
    eventually(Duration::from_secs(20), "the rotated certificate", || {
        (served() == second.der).then_some(())
    });

    // A Secret no served Ingress names is not held; once one names it, it is fetched.
    let other = ca.issue(&["other.example.com"]);
    cluster.apply(&secret_yaml(ns, "other-tls", &other));
    std::thread::sleep(Duration::from_millis(500));
    cluster.apply(&tls_ingress(
        ns,
        "other",
        "rotate",
        "other.example.com",
        "other-tls",
    ));
    let served_other = || runtime.block_on(served_certificate(https, Some("other.example.com")));
    eventually(
        Duration::from_secs(20),
        "the certificate of a Secret fetched late",
        || (served_other() == other.der).then_some(()),
    );
}

/// Status is written for served Ingresses and removed when they are no longer served.
#[test]
fn status_is_written_then_removed() {
    let cluster = cluster();
    let ns = "status";
    let controller = "example.com/status";
    cluster.namespace(ns);
    cluster.apply(&class("status", controller));
    cluster.apply(&ingress(
        ns,
        "site",
        "status",
        "status.example.com",
        "/",
        "web",
    ));
    cluster.apply(&ingress(
        ns,
        "elsewhere",
        "nobody",
        "elsewhere.example.com",
        "/",
        "web",
    ));
    let plane = DataPlane::start(
        cluster,
        "controller",
        controller,
        false,
        &[
            "--namespace",
            ns,
            "--publish-address",
            "192.0.2.80,lb.example.net",
            "--election-id",
            "status-test",
            "--election-lease",
            "4",
        ],
    );
    plane.wait_ready();
    eventually(Duration::from_secs(20), "the status to be written", || {
        let status = cluster.ingress_status(ns, "site");
        (status.contains("192.0.2.80") && status.contains("lb.example.net")).then_some(())
    });
    assert_eq!(
        cluster.ingress_status(ns, "elsewhere"),
        "",
        "not served, no status"
    );

    // Moved to a class nobody here serves: the entry is removed.
    cluster.apply(&ingress(
        ns,
        "site",
        "nobody",
        "status.example.com",
        "/",
        "web",
    ));
    eventually(Duration::from_secs(20), "the status to be removed", || {
        cluster.ingress_status(ns, "site").is_empty().then_some(())
    });
    // And back.
    cluster.apply(&ingress(
        ns,
        "site",
        "status",
        "status.example.com",
        "/",
        "web",
    ));
    eventually(
        Duration::from_secs(20),
        "the status to be written again",
        || {
            cluster
                .ingress_status(ns, "site")
                .contains("192.0.2.80")
                .then_some(())
        },
    );
    // From a LoadBalancer Service's status instead.
    drop(plane);
    cluster.apply(&format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: lb, namespace: {ns}}}\n\
         spec: {{type: LoadBalancer, ports: [{{port: 80}}]}}\n"
    ));
    cluster.kubectl(
        &[
            "patch",
            "service",
            "lb",
            "-n",
            ns,
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"loadBalancer":{"ingress":[{"ip":"198.51.100.7"}]}}}"#,
        ],
        "",
    );
    let plane = DataPlane::start(
        cluster,
        "controller",
        controller,
        false,
        &[
            "--namespace",
            ns,
            "--publish-service",
            &format!("{ns}/lb"),
            "--election-id",
            "status-test",
            "--election-lease",
            "4",
        ],
    );
    plane.wait_ready();
    eventually(
        Duration::from_secs(30),
        "the Service's address in the status",
        || (cluster.ingress_status(ns, "site") == r#"[{"ip":"198.51.100.7"}]"#).then_some(()),
    );
}

/// Two replicas: one leader writes status; when it stops, the other takes over.
#[test]
fn one_of_two_replicas_writes_status_and_the_other_takes_over() {
    let cluster = cluster();
    let ns = "leader";
    let controller = "example.com/leader";
    cluster.namespace(ns);
    cluster.apply(&class("leader", controller));
    cluster.apply(&ingress(
        ns,
        "site",
        "leader",
        "leader.example.com",
        "/",
        "web",
    ));
    let replica = |address: &str| {
        DataPlane::start(
            cluster,
            "controller",
            controller,
            false,
            &[
                "--namespace",
                ns,
                "--publish-address",
                address,
                "--election-namespace",
                ns,
                "--election-id",
                "leader-test",
                "--election-lease",
                "3",
            ],
        )
    };
    // Each replica publishes a different address, to tell which one wrote.
    let first = replica("192.0.2.1");
    first.wait_ready();
    eventually(Duration::from_secs(20), "the first replica to lead", || {
        first.log().contains("is now the leader").then_some(())
    });
    let second = replica("192.0.2.2");
    second.wait_ready();
    eventually(
        Duration::from_secs(20),
        "the first replica's status",
        || (cluster.ingress_status(ns, "site") == r#"[{"ip":"192.0.2.1"}]"#).then_some(()),
    );
    std::thread::sleep(Duration::from_secs(4)); // longer than the lease
    assert!(
        !second.log().contains("is now the leader"),
        "{}",
        second.log()
    );
    assert_eq!(
        cluster.ingress_status(ns, "site"),
        r#"[{"ip":"192.0.2.1"}]"#
    );

    // The leader crashes (SIGKILL: the Lease is not freed); the other waits out the lease.
    let crashed_at = Instant::now();
    drop(first);
    eventually(
        Duration::from_secs(30),
        "the second replica's status",
        || (cluster.ingress_status(ns, "site") == r#"[{"ip":"192.0.2.2"}]"#).then_some(()),
    );
    assert!(
        crashed_at.elapsed() >= Duration::from_secs(2),
        "took over before the lease ran out"
    );
    assert!(second.log().contains("is now the leader"));

    // A clean stop frees the Lease: a new replica takes over at its next read.
    let third = replica("192.0.2.3");
    third.wait_ready();
    second.terminate();
    eventually(
        Duration::from_secs(30),
        "the third replica's status",
        || (cluster.ingress_status(ns, "site") == r#"[{"ip":"192.0.2.3"}]"#).then_some(()),
    );
}

/// The apiserver killed and restarted: the last snapshot serves throughout, then the data
/// plane resyncs.
#[test]
fn the_last_snapshot_serves_while_the_apiserver_is_down() {
    let cluster = start_cluster(&target().join(format!("cluster/restart-{}", std::process::id())));
    let ns = "default";
    let controller = "example.com/restart";
    let backend = echo("up");
    cluster.apply(&class("restart", controller));
    cluster.apply(&service(ns, "web"));
    cluster.apply(&slice(ns, "web", "web", backend.port));
    cluster.apply(&ingress(
        ns,
        "site",
        "restart",
        "restart.example.com",
        "/",
        "web",
    ));
    let plane = DataPlane::start(&cluster, "controller", controller, false, &[]);
    plane.wait_ready();
    serves(&plane, "restart.example.com", "/", (200, "up"));

    let pid = std::fs::read_to_string(cluster.dir.join("kube-apiserver.pid")).unwrap();
    assert!(Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .unwrap()
        .success());
    // Serving throughout the outage.
    let failures = Arc::new(Mutex::new(Vec::new()));
    let down_until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < down_until {
        match plane.get("restart.example.com", "/") {
            Some((200, body)) if body == "up" => {}
            other => failures.lock().unwrap().push(other),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        failures.lock().unwrap().is_empty(),
        "{:?}",
        failures.lock().unwrap()
    );
    assert_eq!(
        plane.ready().map(|r| r.0),
        Some(200),
        "still ready on the last snapshot"
    );

    let status = Command::new("bash")
        .arg(format!("{ROOT}/tests/cluster/up.sh"))
        .arg(&cluster.dir)
        .status()
        .unwrap();
    assert!(status.success());
    // Serving continues, and a change made after the restart arrives.
    serves(&plane, "restart.example.com", "/", (200, "up"));
    cluster.apply(&ingress(
        ns,
        "site",
        "restart",
        "restart.example.com",
        "/after",
        "web",
    ));
    eventually(
        Duration::from_secs(60),
        "the resync after the restart",
        || {
            let moved = plane.get("restart.example.com", "/")?.0 == 404;
            let served = plane.get("restart.example.com", "/after")?.0 == 200;
            (moved && served).then_some(())
        },
    );
}

/// The shipped ClusterRole is enough (every test runs as `controller`), and a missing
/// permission is a clear error: the data plane stays up, is not ready, says what it cannot
/// do, and recovers once the permission is granted.
#[test]
fn a_missing_permission_is_reported_not_served_as_an_empty_table() {
    let cluster = cluster();
    let ns = "limited";
    cluster.namespace(ns);
    // A role like the shipped one, without EndpointSlices.
    let role = std::fs::read_to_string(format!("{ROOT}/examples/deploy/clusterrole.yaml"))
        .unwrap()
        .replace("name: ingress-router", "name: ingress-router-limited")
        .replace("- apiGroups: [discovery.k8s.io]\n  resources: [endpointslices]\n  verbs: [list, watch]\n", "");
    assert!(!role.contains("endpointslices"));
    cluster.apply(&role);
    cluster.apply(&format!(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: limited, namespace: {ns}}}\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {{name: limited}}\n\
         roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: ingress-router-limited}}\n\
         subjects: [{{kind: ServiceAccount, name: limited, namespace: {ns}}}]\n"
    ));
    let token = cluster.kubectl(&["create", "token", "-n", ns, "limited"], "");
    let admin = std::fs::read_to_string(cluster.kubeconfig("admin")).unwrap();
    let admin_token = admin
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .unwrap()
        .to_owned();
    std::fs::write(
        cluster.kubeconfig("limited"),
        admin.replace(&admin_token, token.trim()),
    )
    .unwrap();

    let controller = "example.com/limited";
    cluster.apply(&class("limited", controller));
    cluster.apply(&ingress(
        ns,
        "site",
        "limited",
        "limited.example.com",
        "/",
        "web",
    ));
    let plane = DataPlane::start(cluster, "limited", controller, false, &["--namespace", ns]);
    let (status, body) = eventually(Duration::from_secs(20), "a reason on /readyz", || {
        let (status, body) = plane.ready()?;
        body.contains("forbidden").then_some((status, body))
    });
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("EndpointSlice"), "{body}");
    assert!(body.contains("endpointslices"), "{body}");
    // Nothing half-listed is served meanwhile.
    assert_eq!(
        plane.get("limited.example.com", "/").map(|r| r.0),
        Some(404)
    );
    // The log line comes from a task of its own, which may run after /readyz answered.
    eventually(
        Duration::from_secs(10),
        "the watch error in the log",
        || {
            plane
                .log()
                .contains("cannot watch EndpointSlice")
                .then_some(())
        },
    );

    // Granted: the watch's backoff retries, lists, and the plane becomes ready.
    let full = role.replace(
        "- apiGroups: [\"\"]\n  resources: [secrets]",
        "- apiGroups: [discovery.k8s.io]\n  resources: [endpointslices]\n  verbs: [list, watch]\n- apiGroups: [\"\"]\n  resources: [secrets]",
    );
    assert!(full.contains("endpointslices"));
    cluster.apply(&full);
    eventually(Duration::from_secs(60), "ready once permitted", || {
        (plane.ready()?.0 == 200).then_some(())
    });
    serves(&plane, "limited.example.com", "/", (503, "")); // routed; no endpoints
}

/// The shipped ClusterRole grants exactly what the code calls: every rule is used by a data
/// plane that serves, fetches a Secret, writes status and leads (read from the apiserver's
/// audit log of the `controller` identity), and nothing it calls is outside the role.
#[test]
fn the_cluster_role_grants_exactly_what_the_code_calls() {
    use std::collections::BTreeSet;

    let cluster = cluster();
    let ns = "rbac";
    let controller = "example.com/rbac";
    cluster.namespace(ns);
    cluster.apply(&class("rbac", controller));
    cluster.apply(&ingress(ns, "site", "rbac", "rbac.example.com", "/", "web"));
    let ca = TestCa::new("rbac CA");
    let certificate = ca.issue(&["late.example.com"]);
    cluster.apply(&secret_yaml(ns, "late-tls", &certificate));
    // The controller ConfigMap, read with `get` at start.
    cluster.apply(&format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: nginx, namespace: {ns}}}\n\
         data: {{force-ssl-redirect: \"true\"}}\n"
    ));
    let plane = DataPlane::start(
        cluster,
        "controller",
        controller,
        true,
        &[
            "--configmap",
            &format!("{ns}/nginx"),
            "--namespace",
            ns,
            "--publish-address",
            "192.0.2.44",
            "--election-id",
            &format!("rbac-{}", std::process::id()),
            "--election-lease",
            "3",
        ],
    );
    plane.wait_ready();
    // The ConfigMap's force-ssl-redirect applies.
    eventually(Duration::from_secs(20), "the ConfigMap's redirect", || {
        let (status, _) = http_get(plane.http, "rbac.example.com", "/")?;
        (status == 308).then_some(())
    });
    // A Secret listed before any Ingress named it: fetched with `get` once one does.
    cluster.apply(&tls_ingress(
        ns,
        "late",
        "rbac",
        "late.example.com",
        "late-tls",
    ));
    let https = plane.https.unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    eventually(
        Duration::from_secs(20),
        "the late Secret's certificate",
        || {
            let served = runtime.block_on(served_certificate(https, Some("late.example.com")));
            (served == certificate.der).then_some(())
        },
    );
    eventually(Duration::from_secs(20), "status", || {
        cluster
            .ingress_status(ns, "site")
            .contains("192.0.2.44")
            .then_some(())
    });
    std::thread::sleep(Duration::from_secs(2)); // a Lease renewal (update)

    // What the role grants: (API group, resource, verb).
    let role: serde_norway::Value = serde_norway::from_str(
        &std::fs::read_to_string(format!("{ROOT}/examples/deploy/clusterrole.yaml")).unwrap(),
    )
    .unwrap();
    let strings = |v: &serde_norway::Value| -> Vec<String> {
        v.as_sequence()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect()
    };
    let mut granted = BTreeSet::new();
    for rule in role["rules"].as_sequence().unwrap() {
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                for verb in strings(&rule["verbs"]) {
                    granted.insert((group.clone(), resource.clone(), verb));
                }
            }
        }
    }
    // What the controller identity called, from the audit log.
    let audit = std::fs::read_to_string(cluster.dir.join("audit.log")).expect("an audit log");
    let mut called = BTreeSet::new();
    let mut forbidden = Vec::new();
    for line in audit.lines() {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if event["user"]["username"] != "controller" {
            continue;
        }
        let object = &event["objectRef"];
        let Some(resource) = object["resource"].as_str() else {
            continue; // discovery and non-resource URLs
        };
        let resource = match object["subresource"].as_str() {
            Some(sub) => format!("{resource}/{sub}"),
            None => resource.to_owned(),
        };
        let group = object["apiGroup"].as_str().unwrap_or("").to_owned();
        let verb = event["verb"].as_str().unwrap().to_owned();
        if event["responseStatus"]["code"] == 403 {
            forbidden.push((group.clone(), resource.clone(), verb.clone()));
        }
        called.insert((group, resource, verb));
    }
    assert!(forbidden.is_empty(), "refused: {forbidden:?}");
    let outside: Vec<_> = called.difference(&granted).collect();
    assert!(outside.is_empty(), "called but not granted: {outside:?}");
    let unused: Vec<_> = granted.difference(&called).collect();
    assert!(unused.is_empty(), "granted but never called: {unused:?}");
}

/// `--selector` narrows the Ingresses watched to those whose labels match.
#[test]
fn a_label_selector_narrows_the_ingresses() {
    let cluster = cluster();
    let ns = "selector";
    let controller = "example.com/selector";
    cluster.namespace(ns);
    let backend = echo("selected");
    cluster.apply(&class("selector", controller));
    cluster.apply(&service(ns, "web"));
    cluster.apply(&slice(ns, "web", "web", backend.port));
    cluster.apply(&ingress(
        ns,
        "public",
        "selector",
        "public.example.com",
        "/",
        "web",
    ));
    cluster.apply(&ingress(
        ns,
        "private",
        "selector",
        "private.example.com",
        "/",
        "web",
    ));
    cluster.kubectl(&["label", "ingress", "-n", ns, "public", "tier=public"], "");
    let plane = DataPlane::start(
        cluster,
        "controller",
        controller,
        false,
        &["--namespace", ns, "--selector", "tier=public"],
    );
    plane.wait_ready();
    serves(&plane, "public.example.com", "/", (200, "selected"));
    serves(&plane, "private.example.com", "/", (404, ""));
    // Labelled later: it enters the watch; unlabelled: it leaves.
    cluster.kubectl(
        &["label", "ingress", "-n", ns, "private", "tier=public"],
        "",
    );
    serves(&plane, "private.example.com", "/", (200, "selected"));
    cluster.kubectl(&["label", "ingress", "-n", ns, "public", "tier-"], "");
    serves(&plane, "public.example.com", "/", (404, ""));
}

/// Everything in `examples/deploy/` is accepted by the apiserver as it stands (server-side
/// dry run: validation and admission, nothing stored).
#[test]
fn the_deploy_manifests_are_valid_objects() {
    let cluster = cluster();
    let mut files: Vec<PathBuf> = std::fs::read_dir(format!("{ROOT}/examples/deploy"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 7, "{files:?}");
    // The namespace first, for real: the namespaced objects are checked inside it.
    cluster
        .apply(&std::fs::read_to_string(format!("{ROOT}/examples/deploy/namespace.yaml")).unwrap());
    for file in files {
        let yaml = std::fs::read_to_string(&file).unwrap();
        let out = cluster
            .kubectl_as("admin", &["apply", "--dry-run=server", "-f", "-"], &yaml)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(
            out.contains("(server dry run)"),
            "{}: {out}",
            file.display()
        );
    }
}
