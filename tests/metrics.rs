//! The data plane's Prometheus metrics, scraped from the binary (`--metrics`) after requests
//! that succeed, match no route, meet a dead backend and a hung one, after connections that
//! open and close, and after a bad and a good edit of the manifest file.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{data_plane_binary, target, Process};

/// A running data plane process, killed when dropped.
struct Plane {
    process: Process,
    http: SocketAddr,
    metrics: SocketAddr,
}

impl Plane {
    fn start(file: &Path) -> Plane {
        let process = Process::spawn(
            Command::new(data_plane_binary())
                .args(["--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0"])
                .args(["--demo-backends", "--poll-interval", "50"])
                .arg(file)
                .env("RUST_LOG", "info")
                .stderr(Stdio::inherit()),
            file.with_extension("log"),
        );
        let mut addrs = None;
        eventually("the data plane to listen", || {
            addrs = Some((
                process.logged_addr("listening on http://")?,
                process.logged_addr("metrics on http://")?,
            ));
            Some(())
        });
        let (http, metrics) = addrs.unwrap();
        Plane {
            process,
            http,
            metrics,
        }
    }

    fn get(&self, host: &str) -> u16 {
        http_get(self.http, host, "/").0
    }

    /// The exposition, after checking its content type.
    fn scrape(&self) -> String {
        let (status, head, body) = http_get(self.metrics, "metrics", "/metrics");
        assert_eq!(status, 200, "{head}{body}");
        assert!(
            head.to_ascii_lowercase().contains(
                "content-type: application/openmetrics-text; version=1.0.0; charset=utf-8"
            ),
            "{head}"
        );
        assert!(body.ends_with("# EOF\n"), "{body}");
        body
    }

    /// Waits until `series` has `expected` as its value.
    fn wait_for(&self, series: &str, expected: f64) {
        let mut last = String::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            last = self.scrape();
            if value(&last, series) == Some(expected) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("{series} never became {expected}:\n{last}\n{}", self.log());
    }

    fn log(&self) -> String {
        self.process.log()
    }
}

fn eventually(what: &str, mut check: impl FnMut() -> Option<()>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while check().is_none() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One HTTP/1.1 request on a connection of its own: status, head, body.
fn http_get(addr: SocketAddr, host: &str, path: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("an answer");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").expect("a response head");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    (status, format!("{head}\r\n\r\n"), body.to_owned())
}

/// The value of the sample `series` (name and labels, as exposed).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

/// A Service `name` on port 80 whose one endpoint is 127.0.0.1:`port`.
fn service(name: &str, port: u16) -> String {
    format!(
        "---\nkind: Service\napiVersion: v1\nmetadata: {{name: {name}}}\n\
         spec: {{ports: [{{name: http, port: 80}}]}}\n\
         ---\nkind: EndpointSlice\napiVersion: discovery.k8s.io/v1\n\
         metadata: {{name: {name}-0, labels: {{kubernetes.io/service-name: {name}}}}}\n\
         addressType: IPv4\nports: [{{name: http, port: {port}}}]\n\
         endpoints: [{{addresses: [127.0.0.1]}}]\n"
    )
}

/// An Ingress `name` for host `NAME.test` to Service `backend` on port 80.
fn ingress(name: &str, backend: &str, annotations: &str) -> String {
    format!(
        "---\nkind: Ingress\napiVersion: networking.k8s.io/v1\n\
         metadata: {{name: {name}, annotations: {{{annotations}}}}}\n\
         spec:\n  rules:\n  - host: {name}.test\n    http:\n      paths:\n      \
         - {{path: /, pathType: Prefix, backend: {{service: {{name: {backend}, port: {{number: 80}}}}}}}}\n"
    )
}

#[test]
fn metrics_count_requests_failures_connections_and_reloads() {
    // A backend that accepts connections and never answers.
    let hung = TcpListener::bind("127.0.0.1:0").unwrap();
    let hung_port = hung.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in hung.incoming() {
            held.push(stream);
        }
    });
    // `web` is answered by a demo echo server; `dead`'s only endpoint refuses connections.
    let mut yaml = ingress("web", "web", "");
    yaml += &service("dead", 1);
    yaml += &ingress("dead", "dead", "");
    yaml += &service("hung", hung_port);
    let timeouts = "nginx.ingress.kubernetes.io/proxy-connect-timeout: \"1\", \
                    nginx.ingress.kubernetes.io/proxy-send-timeout: \"1\", \
                    nginx.ingress.kubernetes.io/proxy-read-timeout: \"1\"";
    yaml += &ingress("slow", "hung", timeouts);
    let dir = target().join(format!("metrics-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("manifests.yaml");
    std::fs::write(&file, &yaml).unwrap();
    let plane = Plane::start(&file);

    let route = |ingress: &str, service: &str| {
        format!(
            "controller=\"-\",namespace=\"default\",ingress=\"{ingress}\",service=\"{service}\""
        )
    };
    let web = route("web", "web:80");
    let dead = route("dead", "dead:80");
    let slow = route("slow", "hung:80");
    let unrouted = "controller=\"-\",namespace=\"\",ingress=\"\",service=\"\"";

    // An idle client connection counts as open until it closes.
    let idle = TcpStream::connect(plane.http).unwrap();
    let open = "ingress_router_connections_open{controller=\"-\",scheme=\"http\"}";
    plane.wait_for(open, 1.0);

    assert_eq!(plane.get("web.test"), 200);
    assert_eq!(plane.get("web.test"), 200);
    assert_eq!(plane.get("unknown.test"), 404);
    assert_eq!(plane.get("dead.test"), 502);
    let started = Instant::now();
    assert_eq!(plane.get("slow.test"), 504);
    let slow_seconds = started.elapsed().as_secs_f64();

    drop(idle);
    // Every connection, the idle one and those of the requests, has closed.
    plane.wait_for(open, 0.0);
    let text = plane.scrape();
    let expect = |series: String, expected: f64| {
        assert_eq!(value(&text, &series), Some(expected), "{series} in\n{text}");
    };
    expect(
        format!("ingress_router_requests_total{{{web},status=\"2xx\"}}"),
        2.0,
    );
    expect(
        format!("ingress_router_requests_total{{{unrouted},status=\"4xx\"}}"),
        1.0,
    );
    expect(
        format!("ingress_router_requests_total{{{dead},status=\"5xx\"}}"),
        1.0,
    );
    expect(
        format!("ingress_router_requests_total{{{slow},status=\"5xx\"}}"),
        1.0,
    );
    // Only the classes that occurred have a series.
    assert_eq!(
        value(
            &text,
            &format!("ingress_router_requests_total{{{web},status=\"5xx\"}}")
        ),
        None
    );
    expect(
        format!("ingress_router_upstream_errors_total{{{dead}}}"),
        1.0,
    );
    expect(
        format!("ingress_router_upstream_timeouts_total{{{slow}}}"),
        1.0,
    );
    assert_eq!(
        value(
            &text,
            &format!("ingress_router_upstream_errors_total{{{slow}}}")
        ),
        None
    );
    assert_eq!(
        value(
            &text,
            &format!("ingress_router_upstream_timeouts_total{{{web}}}")
        ),
        None
    );
    expect(
        format!("ingress_router_request_duration_seconds_count{{{web}}}"),
        2.0,
    );
    expect(
        format!("ingress_router_request_duration_seconds_count{{{unrouted}}}"),
        1.0,
    );
    expect(
        format!("ingress_router_request_duration_seconds_bucket{{le=\"10.0\",{slow}}}"),
        1.0,
    );
    expect(
        format!("ingress_router_request_duration_seconds_bucket{{le=\"0.5\",{slow}}}"),
        0.0,
    );
    // The hung backend was waited for the three timeouts of the route, 3 s.
    let sum = value(
        &text,
        &format!("ingress_router_request_duration_seconds_sum{{{slow}}}"),
    )
    .unwrap();
    assert!(
        (2.9..=slow_seconds).contains(&sum),
        "{sum} of {slow_seconds}"
    );
    // Six connections: the idle one and five requests.
    expect(
        "ingress_router_connections_total{controller=\"-\",scheme=\"http\"}".into(),
        6.0,
    );
    // The client's host names never become labels.
    assert!(!text.contains("unknown.test"), "{text}");
    expect("ingress_router_last_reload_successful".into(), 1.0);
    assert_eq!(
        value(&text, "ingress_router_reloads_total{outcome=\"ok\"}"),
        None
    );

    // A bad edit is counted as a failed reload, and the running table keeps serving.
    std::fs::write(&file, format!("{yaml}---\nkind: Ingress\nmetadata: [\n")).unwrap();
    plane.wait_for("ingress_router_reloads_total{outcome=\"failed\"}", 1.0);
    plane.wait_for("ingress_router_last_reload_successful", 0.0);
    assert_eq!(plane.get("web.test"), 200);
    // The good version again.
    std::fs::write(&file, &yaml).unwrap();
    plane.wait_for("ingress_router_reloads_total{outcome=\"ok\"}", 1.0);
    plane.wait_for("ingress_router_last_reload_successful", 1.0);
    assert_eq!(plane.get("web.test"), 200);
    let text = plane.scrape();
    assert_eq!(
        value(
            &text,
            &format!("ingress_router_requests_total{{{web},status=\"2xx\"}}")
        ),
        Some(4.0)
    );

    // Any other path of the metrics address is not found.
    assert_eq!(http_get(plane.metrics, "metrics", "/").0, 404);
    drop(plane);
    let _ = std::fs::remove_dir_all(dir);
}
