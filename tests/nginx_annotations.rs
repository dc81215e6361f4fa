//! The ingress-nginx annotation cases of `tests/fixtures/ingress-nginx-annotations.json`, each
//! suite run through the data plane binary as a black box, started the way an outside harness
//! starts it:
//!
//! ```text
//! data_plane --listen ADDR --listen-tls ADDR --demo-backends --http-port 80 --https-port 443 \
//!     [--configmap ingress-nginx/ingress-nginx-controller] FILE
//! ```
//!
//! FILE is a JSON stream of the suite's `objects`, its ConfigMap (when it has `configmap`) and its
//! Ingresses. Each case is one HTTP/1.1 request (over TLS for `https`, with the host as SNI)
//! from the case's `client_ip`, and every field of its `expect` is checked against the response
//! and against what the echo backend says it received.

mod common;

use common::{data_plane_binary, target, Process};

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpSocket;

const FIXTURE: &str = include_str!("fixtures/ingress-nginx-annotations.json");

/// Cases whose expectation encodes an ingress-nginx behaviour this crate deliberately leaves
/// out, with the answer it gives instead: (suite, case name, status).
const DEVIATIONS: &[(&str, &str, u16)] = &[(
    "ingress-nginx-annotations/permanent-redirect",
    "derived: an unrelated path on the same host also redirects (root location inherits annotations)",
    404,
)];

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running data plane; killed on drop.
struct Plane {
    process: Process,
    http: SocketAddr,
    https: SocketAddr,
}

impl Plane {
    fn log(&self) -> String {
        self.process.log()
    }
}

/// The JSON stream an outside harness writes for a suite.
fn suite_file(suite: &Value, dir: &Path) -> PathBuf {
    let name = suite["suite"].as_str().unwrap().replace('/', "_");
    let path = dir.join(format!("{name}.json"));
    let mut file = std::fs::File::create(&path).unwrap();
    for object in suite["objects"].as_array().into_iter().flatten() {
        writeln!(file, "{object}").unwrap();
    }
    if let Some(data) = suite.get("configmap") {
        let map = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "ingress-nginx-controller", "namespace": "ingress-nginx"},
            "data": data,
        });
        writeln!(file, "{map}").unwrap();
    }
    for ingress in suite["ingresses"].as_array().into_iter().flatten() {
        writeln!(file, "{ingress}").unwrap();
    }
    path
}

fn start(suite: &Value, dir: &Path) -> Plane {
    let file = suite_file(suite, dir);
    let (http, https) = (free_port(), free_port());
    let log = file.with_extension("log");
    let mut command = Command::new(data_plane_binary());
    command
        .arg("--listen")
        .arg(format!("127.0.0.1:{http}"))
        .arg("--listen-tls")
        .arg(format!("127.0.0.1:{https}"))
        .args([
            "--demo-backends",
            "--http-port",
            "80",
            "--https-port",
            "443",
        ]);
    if suite.get("configmap").is_some() {
        command.args(["--configmap", "ingress-nginx/ingress-nginx-controller"]);
    }
    command.arg(&file).stderr(Stdio::inherit());
    let plane = Plane {
        process: Process::spawn(&mut command, log),
        http: SocketAddr::from(([127, 0, 0, 1], http)),
        https: SocketAddr::from(([127, 0, 0, 1], https)),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(plane.http).is_err()
        || std::net::TcpStream::connect(plane.https).is_err()
    {
        assert!(
            Instant::now() < deadline,
            "the data plane did not start: {}",
            plane.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    plane
}

/// A response, and the echo backend's account of the request when it answered.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: http::HeaderMap,
    body: String,
    echo: Option<Value>,
}

async fn send(plane: &Plane, case: &Value) -> Answer {
    let secure = case["scheme"] == "https";
    let addr = if secure { plane.https } else { plane.http };
    let client_ip: IpAddr = case["client_ip"]
        .as_str()
        .unwrap_or("127.0.0.1")
        .parse()
        .unwrap();
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(client_ip, 0)).unwrap();
    let tcp = socket.connect(addr).await.expect("connect");
    let host = case["host"].as_str().unwrap();
    let bare = host.split(':').next().unwrap();
    let method = case["method"].as_str().unwrap();
    let path = case["path"].as_str().unwrap();
    let body = vec![b'x'; case["body_bytes"].as_u64().unwrap_or(0) as usize];
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", host);
    for (name, value) in case["headers"].as_object().into_iter().flatten() {
        request = request.header(name.as_str(), value.as_str().unwrap());
    }
    let request = request.body(Full::new(Bytes::from(body))).unwrap();
    let response = if secure {
        let tls = common::tls::connect_stream(tcp, Some(bare), &[b"http/1.1"])
            .await
            .expect("TLS handshake");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(conn);
        sender.send_request(request).await
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .unwrap();
        tokio::spawn(conn);
        sender.send_request(request).await
    };
    let response = response.expect("a response");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8_lossy(&bytes).into_owned();
    let echo = headers
        .get("content-type")
        .is_some_and(|v| v == "application/json")
        .then(|| serde_json::from_str(&body).ok())
        .flatten();
    Answer {
        status,
        headers,
        body,
        echo,
    }
}

/// The service that answered, as `namespace/name`.
fn answered_by(answer: &Answer) -> Option<&str> {
    answer.echo.as_ref()?["service"].as_str()
}

/// Checks `answer` against `expect`; `Err` says what differs.
fn check(answer: &Answer, expect: &Value) -> Result<(), String> {
    let fail = |what: String| {
        Err(format!(
            "{what}\n    response: {} {:?} {}",
            answer.status, answer.headers, answer.body
        ))
    };
    if let Some(status) = expect["status"].as_u64() {
        if u64::from(answer.status.as_u16()) != status {
            return fail(format!("status {} instead of {status}", answer.status));
        }
    }
    if let Some(service) = expect["service"].as_str() {
        let namespace = expect["namespace"].as_str().unwrap_or("default");
        let wanted = format!("{namespace}/{service}");
        if answered_by(answer) != Some(wanted.as_str()) {
            return fail(format!(
                "answered by {:?}, not {wanted}",
                answered_by(answer)
            ));
        }
        if let Some(port) = expect["port"].as_u64() {
            let echo = answer.echo.as_ref().unwrap();
            if echo["port"].as_u64() != Some(port) {
                return fail(format!("port {} instead of {port}", echo["port"]));
            }
        }
    }
    let Some(echo) = answer.echo.as_ref() else {
        let needs = ["path", "host", "request_headers"];
        if needs.iter().any(|k| expect.get(*k).is_some()) {
            return fail("the backend did not answer".into());
        }
        return check_response_headers(answer, expect).map_err(|e| fail(e).unwrap_err());
    };
    let echo = || echo;
    if let Some(path) = expect["path"].as_str() {
        let echo = echo();
        let mut received = echo["path"].as_str().unwrap_or_default().to_owned();
        if let Some(query) = echo["query"].as_str() {
            received = format!("{received}?{query}");
        }
        if received != path {
            return fail(format!("the backend received {received:?}, not {path:?}"));
        }
    }
    if let Some(host) = expect["host"].as_str() {
        if echo()["host"].as_str() != Some(host) {
            return fail(format!("the backend received host {}", echo()["host"]));
        }
    }
    for (name, value) in expect["request_headers"].as_object().into_iter().flatten() {
        let received = &echo()["headers"][name.as_str()];
        match value.as_str() {
            None if received.is_null() => {}
            None => return fail(format!("the backend received {name}: {received}")),
            Some(value) if received.as_str() == Some(value) => {}
            Some(value) => {
                return fail(format!(
                    "the backend received {name}: {received}, not {value:?}"
                ))
            }
        }
    }
    check_response_headers(answer, expect).map_err(|e| fail(e).unwrap_err())
}

fn check_response_headers(answer: &Answer, expect: &Value) -> Result<(), String> {
    for (name, value) in expect["response_headers"].as_object().into_iter().flatten() {
        let sent = answer
            .headers
            .get(name.as_str())
            .map(|v| v.to_str().unwrap());
        if sent != value.as_str() {
            return Err(format!("response header {name}: {sent:?}, not {value}"));
        }
    }
    Ok(())
}

/// Sends a weighted case `requests` times; each backend's share is within `tolerance` of its
/// weight.
async fn check_weights(plane: &Plane, case: &Value, expect: &Value) -> Result<(), String> {
    let requests = expect["requests"].as_u64().unwrap();
    let tolerance = expect["tolerance"].as_f64().unwrap();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for _ in 0..requests {
        let answer = send(plane, case).await;
        let Some(service) = answered_by(&answer) else {
            return Err(format!("{} {}", answer.status, answer.body));
        };
        let service = service.rsplit('/').next().unwrap();
        *counts.entry(service.to_owned()).or_default() += 1;
    }
    for (service, weight) in expect["weights"].as_object().unwrap() {
        let share = counts.get(service).copied().unwrap_or(0) as f64 / requests as f64;
        let weight = weight.as_f64().unwrap();
        if (share - weight).abs() > tolerance {
            return Err(format!(
                "{service} got {share:.3} of the requests, not {weight} ± {tolerance}: {counts:?}"
            ));
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_annotation_case_through_the_data_plane() {
    let suites: Vec<Value> = serde_json::from_str(FIXTURE).unwrap();
    assert_eq!(suites.len(), 62, "suites in the fixture");
    let dir = target().join(format!("nginx-annotations-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut checked = 0;
    let mut deviations = 0;
    let mut failures = Vec::new();
    for suite in &suites {
        let name = suite["suite"].as_str().unwrap();
        let plane = start(suite, &dir);
        let cases = suite["cases"]
            .as_array()
            .into_iter()
            .chain(suite["derived_cases"].as_array())
            .flatten();
        for case in cases {
            let case_name = case["name"].as_str().unwrap();
            let context = format!("{name}: {case_name:?}");
            let mut expect = case["expect"].clone();
            if let Some(&(_, _, status)) = DEVIATIONS
                .iter()
                .find(|(s, c, _)| *s == name && *c == case_name)
            {
                expect = json!({ "status": status });
                deviations += 1;
            }
            let outcome = if expect.get("weights").is_some() {
                check_weights(&plane, case, &expect).await
            } else {
                check(&send(&plane, case).await, &expect)
            };
            if let Err(e) = outcome {
                failures.push(format!(
                    "{context}: {e}\n    log: {}",
                    plane.log().trim_end()
                ));
            }
            checked += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(checked, 146, "cases in the fixture");
    assert_eq!(deviations, DEVIATIONS.len());
}
