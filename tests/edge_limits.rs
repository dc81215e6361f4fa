//! The data plane's limits and timeouts, each tested over real sockets with the attack that
//! motivates it: the `data_plane` binary runs with short limits in front of a backend the test
//! controls.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{data_plane_binary, target, Process};

/// A free local port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The objects: Service `web` (port 80) on `backend`, an Ingress that sends host `app.test`
/// there, and a catch-all Ingress that sends every other request there too.
fn manifest(backend: u16, extra: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"Service","metadata":{{"name":"web","namespace":"default"}},"spec":{{"ports":[{{"name":"http","port":80,"targetPort":{backend}}}]}}}}
{{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{{"name":"web-1","namespace":"default","labels":{{"kubernetes.io/service-name":"web"}}}},"addressType":"IPv4","ports":[{{"name":"http","port":{backend}}}],"endpoints":[{{"addresses":["127.0.0.1"],"conditions":{{"ready":true}}}}]}}
{{"apiVersion":"networking.k8s.io/v1","kind":"Ingress","metadata":{{"name":"app","namespace":"default","creationTimestamp":"2024-01-01T00:00:00Z"}},"spec":{{"rules":[{{"host":"app.test","http":{{"paths":[{{"path":"/","pathType":"Prefix","backend":{{"service":{{"name":"web","port":{{"number":80}}}}}}}}]}}}}]}}}}
{{"apiVersion":"networking.k8s.io/v1","kind":"Ingress","metadata":{{"name":"catch-all","namespace":"default","creationTimestamp":"2024-01-01T00:00:00Z"}},"spec":{{"defaultBackend":{{"service":{{"name":"web","port":{{"number":80}}}}}}}}}}
{extra}"#
    )
}

/// A running data plane, killed when dropped.
struct Plane {
    process: Process,
    http: SocketAddr,
    https: SocketAddr,
    file: PathBuf,
}

impl Plane {
    fn log(&self) -> String {
        self.process.log()
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = target().join("limits-tests");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{name}-{}", std::process::id()))
}

/// Starts the data plane on `objects` with `flags`; `prefix` runs it under another command
/// (`prlimit …`).
fn start_with(name: &str, objects: &str, flags: &[&str], prefix: &[&str]) -> Plane {
    let file = scratch(name).with_extension("jsonl");
    std::fs::write(&file, objects).unwrap();
    let (http, https) = (free_port(), free_port());
    let log = file.with_extension("log");
    let mut command = match prefix.split_first() {
        Some((program, args)) => {
            let mut command = Command::new(program);
            command.args(args).arg(data_plane_binary());
            command
        }
        None => Command::new(data_plane_binary()),
    };
    command
        .env("RUST_LOG", "info")
        .arg("--listen")
        .arg(format!("127.0.0.1:{http}"))
        .arg("--listen-tls")
        .arg(format!("127.0.0.1:{https}"))
        .args(flags)
        .arg(&file)
        .stderr(Stdio::null());
    let plane = Plane {
        process: Process::spawn(&mut command, log),
        http: SocketAddr::from(([127, 0, 0, 1], http)),
        https: SocketAddr::from(([127, 0, 0, 1], https)),
        file,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !plane.log().contains("listening on http://") {
        assert!(
            Instant::now() < deadline,
            "the data plane did not start: {}",
            plane.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    plane
}

fn start(name: &str, objects: &str, flags: &[&str]) -> Plane {
    start_with(name, objects, flags, &[])
}

/// How the test backend answers.
#[derive(Clone, Copy, PartialEq)]
enum Behaviour {
    /// 200 with the request head as the body, after reading the request body.
    Echo,
    /// Reads, never answers.
    Hang,
    /// Answers 200 after this long.
    Slow(Duration),
    /// Sends a response head promising a body, then nothing.
    StallBody,
}

/// A backend on a thread per connection that counts connections accepted and closed by the
/// proxy.
struct Backend {
    port: u16,
    accepted: Arc<AtomicUsize>,
    closed: Arc<AtomicUsize>,
    heads: Arc<Mutex<Vec<String>>>,
}

fn backend(behaviour: Behaviour) -> Backend {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let closed = Arc::new(AtomicUsize::new(0));
    let heads = Arc::new(Mutex::new(Vec::new()));
    let (a, c, h) = (
        Arc::clone(&accepted),
        Arc::clone(&closed),
        Arc::clone(&heads),
    );
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            a.fetch_add(1, Ordering::SeqCst);
            let (c, h) = (Arc::clone(&c), Arc::clone(&h));
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                loop {
                    // One request head (and its Content-Length body) at a time.
                    let head_end = loop {
                        if let Some(i) = find(&buf, b"\r\n\r\n") {
                            break i + 4;
                        }
                        let mut chunk = [0u8; 8192];
                        match stream.read(&mut chunk) {
                            Ok(0) | Err(_) => {
                                c.fetch_add(1, Ordering::SeqCst);
                                return;
                            }
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                    let length = head
                        .lines()
                        .find_map(|l| {
                            let (name, value) = l.split_once(':')?;
                            name.eq_ignore_ascii_case("content-length")
                                .then(|| value.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    let chunked = head
                        .to_ascii_lowercase()
                        .contains("transfer-encoding: chunked");
                    buf.drain(..head_end);
                    h.lock().unwrap().push(head.clone());
                    if behaviour == Behaviour::Hang {
                        let mut sink = [0u8; 8192];
                        while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
                        c.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                    // Read the body: by length, or chunked up to its last chunk.
                    let done = |buf: &[u8]| {
                        if chunked {
                            find(buf, b"0\r\n\r\n").map(|i| i + 5)
                        } else {
                            (buf.len() >= length).then_some(length)
                        }
                    };
                    let body_end = loop {
                        if let Some(end) = done(&buf) {
                            break end;
                        }
                        let mut chunk = [0u8; 8192];
                        match stream.read(&mut chunk) {
                            Ok(0) | Err(_) => {
                                c.fetch_add(1, Ordering::SeqCst);
                                return;
                            }
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    buf.drain(..body_end);
                    let response = match behaviour {
                        Behaviour::Slow(wait) => {
                            std::thread::sleep(wait);
                            "HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n".to_owned()
                        }
                        Behaviour::StallBody => {
                            "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial".to_owned()
                        }
                        _ => format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{head}",
                            head.len()
                        ),
                    };
                    if stream.write_all(response.as_bytes()).is_err() {
                        c.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                    if behaviour == Behaviour::StallBody {
                        std::thread::sleep(Duration::from_secs(30));
                    }
                }
            });
        }
    });
    Backend {
        port,
        accepted,
        closed,
        heads,
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Sends `request` on a new connection and reads the response until the server closes or
/// `within` passes: the bytes, and whether the server closed the connection in time.
fn exchange(addr: SocketAddr, request: &[u8], within: Duration) -> (String, bool) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(request).unwrap();
    read_until_closed(&mut stream, within)
}

fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (String, bool) {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            return (String::from_utf8_lossy(&out).into_owned(), false);
        };
        let _ = stream.set_read_timeout(Some(left.max(Duration::from_millis(1))));
        match stream.read(&mut chunk) {
            Ok(0) => return (String::from_utf8_lossy(&out).into_owned(), true),
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => return (String::from_utf8_lossy(&out).into_owned(), true),
        }
    }
}

fn status(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {response:?}"))
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n";
const KEEP_ALIVE_GET: &[u8] = b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n";

#[test]
fn slow_and_idle_clients_are_cut_off() {
    let web = backend(Behaviour::Echo);
    let plane = start(
        "slow-heads",
        &manifest(web.port, ""),
        &["--header-read-timeout", "1s", "--keepalive-timeout", "2s"],
    );
    // Slowloris: half a request head, then nothing.
    let started = Instant::now();
    let (_, closed) = exchange(
        plane.http,
        b"GET / HTTP/1.1\r\nHost: app.te",
        Duration::from_secs(5),
    );
    assert!(closed, "a partial head held the connection for 5 s");
    assert!(started.elapsed() >= Duration::from_millis(900));

    // A connection that never sends a byte.
    let (_, closed) = exchange(plane.http, b"", Duration::from_secs(5));
    assert!(closed, "a silent connection was kept for 5 s");

    // Keep-alive: a full request, its answer, then silence.
    let mut stream = TcpStream::connect(plane.http).unwrap();
    stream.write_all(KEEP_ALIVE_GET).unwrap();
    let (response, closed) = read_until_closed(&mut stream, Duration::from_secs(5));
    assert_eq!(status(&response), 200, "{response}");
    assert!(closed, "an idle keep-alive connection was kept for 5 s");

    // After a TLS handshake, silence.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let tcp = tokio::net::TcpStream::connect(plane.https).await.unwrap();
        let mut tls = common::tls::connect_stream(tcp, Some("app.test"), &[b"http/1.1"])
            .await
            .expect("TLS handshake");
        let mut buf = [0u8; 1024];
        let read = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::io::AsyncReadExt::read(&mut tls, &mut buf),
        )
        .await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "a silent TLS connection was kept for 5 s: {read:?}"
        );
    });
}

/// The frames of an HTTP/2 connection, read raw: `(type, flags, stream, payload)`.
fn h2_frames(stream: &mut TcpStream, within: Duration) -> Vec<(u8, u8, u32, Vec<u8>)> {
    let deadline = Instant::now() + within;
    let mut frames = Vec::new();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(_) => continue,
        }
        while buf.len() >= 9 {
            let len =
                (usize::from(buf[0]) << 16) | (usize::from(buf[1]) << 8) | usize::from(buf[2]);
            if buf.len() < 9 + len {
                break;
            }
            let stream_id = u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]) & 0x7fff_ffff;
            frames.push((buf[3], buf[4], stream_id, buf[9..9 + len].to_vec()));
            buf.drain(..9 + len);
        }
    }
    frames
}

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

#[test]
fn http2_connections_are_pinged_limited_and_closed_when_idle() {
    let web = backend(Behaviour::Echo);
    let plane = start(
        "h2-idle",
        &manifest(web.port, ""),
        &[
            "--header-read-timeout",
            "2s",
            "--keepalive-timeout",
            "2s",
            "--h2-ping-interval",
            "300ms",
            "--h2-max-streams",
            "100",
        ],
    );
    let mut stream = TcpStream::connect(plane.http).unwrap();
    stream.write_all(H2_PREFACE).unwrap();
    let started = Instant::now();
    let frames = h2_frames(&mut stream, Duration::from_secs(6));
    let settings = frames
        .iter()
        .find(|f| f.0 == 0x4 && f.1 & 0x1 == 0)
        .expect("the server's SETTINGS");
    let max_streams = settings.3.chunks(6).find_map(|s| {
        (u16::from_be_bytes([s[0], s[1]]) == 0x3)
            .then(|| u32::from_be_bytes([s[2], s[3], s[4], s[5]]))
    });
    assert_eq!(max_streams, Some(100), "SETTINGS_MAX_CONCURRENT_STREAMS");
    assert!(
        frames.iter().any(|f| f.0 == 0x6 && f.1 & 0x1 == 0),
        "no PING from the server: {:?}",
        frames.iter().map(|f| f.0).collect::<Vec<_>>()
    );
    assert!(
        frames.iter().any(|f| f.0 == 0x7),
        "no GOAWAY for an idle connection within {:?}",
        started.elapsed()
    );
}

#[test]
fn oversized_request_heads_get_431_on_http1_and_http2() {
    let web = backend(Behaviour::Echo);
    let plane = start("big-heads", &manifest(web.port, ""), &[]);
    let big = "a".repeat(70 * 1024);
    let request = format!("GET / HTTP/1.1\r\nHost: app.test\r\nX-Big: {big}\r\n\r\n");
    let (response, _) = exchange(plane.http, request.as_bytes(), Duration::from_secs(5));
    assert_eq!(status(&response), 431, "{response:.200}");
    // Just under the cap is served.
    let fits = "a".repeat(60 * 1024);
    let request =
        format!("GET / HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\nX-Big: {fits}\r\n\r\n");
    let (response, _) = exchange(plane.http, request.as_bytes(), Duration::from_secs(5));
    assert_eq!(status(&response), 200, "{response:.200}");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let tcp = tokio::net::TcpStream::connect(plane.http).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(tcp),
        )
        .await
        .unwrap();
        tokio::spawn(connection);
        let request = http::Request::get("http://app.test/")
            .header("x-big", &big)
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let response = sender.send_request(request).await.expect("an answer");
        assert_eq!(response.status(), 431);
    });
}

#[test]
fn request_bodies_are_bounded_in_size_and_time_and_must_be_well_formed() {
    let web = backend(Behaviour::Echo);
    let plane = start(
        "bodies",
        &manifest(web.port, ""),
        &["--body-read-timeout", "1s"],
    );
    // Over the default 1 MiB: 413, declared or streamed.
    let request = b"POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 2000000\r\n\r\n";
    let (response, _) = exchange(plane.http, request, Duration::from_secs(5));
    assert_eq!(status(&response), 413, "{response}");
    let mut stream = TcpStream::connect(plane.http).unwrap();
    stream
        .write_all(b"POST / HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n")
        .unwrap();
    let chunk = format!("10000\r\n{}\r\n", "x".repeat(0x10000));
    for _ in 0..17 {
        if stream.write_all(chunk.as_bytes()).is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n");
    let (response, _) = read_until_closed(&mut stream, Duration::from_secs(5));
    assert_eq!(status(&response), 413, "{response:.200}");

    // A body that stops coming: 408 after the body-read timeout.
    let started = Instant::now();
    let (response, _) = exchange(
        plane.http,
        b"POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 100\r\n\r\nonly ten b",
        Duration::from_secs(6),
    );
    assert_eq!(status(&response), 408, "{response}");
    assert!(started.elapsed() < Duration::from_secs(4));

    // Broken chunked framing: 400, not 502.
    let (response, _) = exchange(
        plane.http,
        b"POST / HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZ\r\n",
        Duration::from_secs(5),
    );
    assert_eq!(status(&response), 400, "{response}");
}

#[test]
fn connections_over_the_cap_are_refused_at_once() {
    let web = backend(Behaviour::Echo);
    let plane = start(
        "connection-cap",
        &manifest(web.port, ""),
        &["--max-connections", "2"],
    );
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(plane.http).unwrap();
        stream.write_all(KEEP_ALIVE_GET).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 4096];
        let n = stream.read(&mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        held.push(stream);
    }
    let started = Instant::now();
    let (response, closed) = exchange(plane.http, GET, Duration::from_secs(3));
    assert!(
        closed && response.is_empty(),
        "a third connection was served: {response:.100}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "refusing took {:?}",
        started.elapsed()
    );
    assert!(
        plane.log().contains("refusing connections"),
        "{}",
        plane.log()
    );
    // A connection closed frees its place.
    drop(held.pop());
    std::thread::sleep(Duration::from_millis(300));
    let (response, _) = exchange(
        plane.http,
        b"GET / HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    );
    assert_eq!(status(&response), 200, "{response}");
}

/// CPU seconds a process has used, from `/proc/PID/stat`.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

#[test]
fn accept_errors_back_off_and_are_logged_sparingly() {
    if Command::new("prlimit").arg("--version").output().is_err() {
        panic!("this test needs prlimit (util-linux)");
    }
    let web = backend(Behaviour::Echo);
    // Few files: the runtime, listeners and log take most, a handful of connections the rest.
    let plane = start_with(
        "accept-errors",
        &manifest(web.port, ""),
        &["--max-connections", "1000"],
        &["prlimit", "--nofile=48:48"],
    );
    let mut held = Vec::new();
    for _ in 0..80 {
        if let Ok(stream) = TcpStream::connect(plane.http) {
            held.push(stream);
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let pid = plane.process.child.id();
    let before = cpu_seconds(pid);
    std::thread::sleep(Duration::from_secs(3));
    let used = cpu_seconds(pid) - before;
    let log = plane.log();
    let warnings = log.matches("accept failed").count();
    assert!(warnings >= 1, "no accept error logged: {log}");
    assert!(warnings <= 6, "{warnings} accept warnings in ~3.5 s: {log}");
    assert!(
        used < 0.5,
        "the accept loop spun: {used} CPU seconds in 3 s"
    );
}

#[test]
fn hung_and_slow_backends_are_bounded() {
    let hung = backend(Behaviour::Hang);
    let plane = start(
        "request-timeout",
        &manifest(hung.port, ""),
        &["--request-timeout", "1s"],
    );
    let started = Instant::now();
    let (response, _) = exchange(plane.http, GET, Duration::from_secs(5));
    assert_eq!(status(&response), 504, "{response}");
    assert!(started.elapsed() < Duration::from_secs(3));
    drop(plane);

    // A response whose body stalls is cut at the deadline.
    let stalled = backend(Behaviour::StallBody);
    let plane = start(
        "body-deadline",
        &manifest(stalled.port, ""),
        &["--request-timeout", "1s"],
    );
    let started = Instant::now();
    let (response, closed) = exchange(plane.http, GET, Duration::from_secs(5));
    assert_eq!(status(&response), 200, "{response}");
    assert!(closed, "a stalled response body was not cut");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn backends_get_at_most_their_connections_and_requests() {
    for (flag, name) in [
        ("--max-backend-connections", "backend-connections"),
        ("--max-backend-requests", "backend-requests"),
    ] {
        let hung = backend(Behaviour::Hang);
        let plane = start(
            name,
            &manifest(hung.port, ""),
            &[flag, "2", "--request-timeout", "3s"],
        );
        let answers: Vec<_> = (0..5)
            .map(|_| {
                let addr = plane.http;
                std::thread::spawn(move || {
                    let started = Instant::now();
                    let (response, _) = exchange(addr, GET, Duration::from_secs(6));
                    (status(&response), started.elapsed())
                })
            })
            .collect();
        let answers: Vec<_> = answers.into_iter().map(|t| t.join().unwrap()).collect();
        let refused: Vec<_> = answers.iter().filter(|(s, _)| *s == 503).collect();
        assert_eq!(refused.len(), 3, "{flag}: {answers:?}");
        assert!(refused
            .iter()
            .all(|(_, took)| *took < Duration::from_secs(2)));
        assert_eq!(
            answers.iter().filter(|(s, _)| *s == 504).count(),
            2,
            "{answers:?}"
        );
        assert_eq!(
            hung.accepted.load(Ordering::SeqCst),
            2,
            "{flag}: backend connections"
        );
    }
}

#[test]
fn idle_backend_connections_are_closed_by_time_and_by_count() {
    let web = backend(Behaviour::Echo);
    let plane = start(
        "pool-idle",
        &manifest(web.port, ""),
        &["--upstream-idle-timeout", "1s"],
    );
    let (response, _) = exchange(plane.http, GET, Duration::from_secs(5));
    assert_eq!(status(&response), 200);
    assert_eq!(web.accepted.load(Ordering::SeqCst), 1);
    let deadline = Instant::now() + Duration::from_secs(4);
    while web.closed.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "an idle pooled connection outlived its timeout"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(plane);

    // The cap is per serving thread, as nginx's `keepalive` is per worker: one thread here.
    let slow = backend(Behaviour::Slow(Duration::from_millis(400)));
    let plane = start(
        "pool-per-host",
        &manifest(slow.port, ""),
        &["--upstream-idle-per-host", "1", "--threads", "1"],
    );
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let addr = plane.http;
            std::thread::spawn(move || exchange(addr, GET, Duration::from_secs(5)).0)
        })
        .collect();
    for client in clients {
        assert_eq!(status(&client.join().unwrap()), 200);
    }
    assert_eq!(slow.accepted.load(Ordering::SeqCst), 3);
    let deadline = Instant::now() + Duration::from_secs(3);
    while slow.closed.load(Ordering::SeqCst) < 2 {
        assert!(
            Instant::now() < deadline,
            "{} of 3 connections closed with an idle cap of 1",
            slow.closed.load(Ordering::SeqCst)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        slow.closed.load(Ordering::SeqCst),
        2,
        "the one idle connection kept"
    );
}

const SPOOFED: &str =
    "Forwarded: for=6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\nX-Forwarded-For: 6.6.6.6\r\n\
X-Forwarded-Port: 6666\r\nX-Forwarded-Prefix: /evil\r\nX-Forwarded-Proto: https\r\n\
X-Forwarded-Host: evil.test\r\nX-Forwarded-Anything: x\r\nX-Original-URL: /admin\r\n\
X-Rewrite-URL: /admin\r\nTrue-Client-IP: 6.6.6.6\r\nX-Client-IP: 6.6.6.6\r\n";

/// The request head the backend received last, lower-cased.
fn last_head(web: &Backend) -> String {
    web.heads
        .lock()
        .unwrap()
        .last()
        .cloned()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

#[test]
fn client_forwarding_headers_are_replaced_unless_the_peer_is_trusted() {
    let web = backend(Behaviour::Echo);
    let plane = start("spoofing", &manifest(web.port, ""), &[]);
    for request in [
        format!("GET / HTTP/1.1\r\nHost: app.test\r\n{SPOOFED}\r\n"),
        // HTTP/1.0 without a Host: the Ingress's default backend.
        format!("GET / HTTP/1.0\r\n{SPOOFED}\r\n"),
    ] {
        let (response, _) = exchange(plane.http, request.as_bytes(), Duration::from_secs(5));
        assert_eq!(status(&response), 200, "{response}");
        let head = last_head(&web);
        for spoof in [
            "6.6.6.6",
            "6666",
            "/evil",
            "evil.test",
            "x-forwarded-anything",
            "/admin",
            "https",
        ] {
            assert!(
                !head.contains(spoof),
                "{spoof} reached the backend:\n{head}"
            );
        }
        // Origin form, with a Host even for an HTTP/1.0 request without one.
        assert!(head.starts_with("get / http/1.1\r\n"), "{head}");
        assert!(head.contains("\r\nhost: "), "{head}");
        assert!(head.contains("x-forwarded-for: 127.0.0.1\r\n"), "{head}");
        assert!(head.contains("x-real-ip: 127.0.0.1\r\n"), "{head}");
        assert!(head.contains("x-forwarded-proto: http\r\n"), "{head}");
        assert!(
            head.contains(&format!("x-forwarded-port: {}\r\n", plane.http.port())),
            "{head}"
        );
    }
    drop(plane);

    // A trusted proxy's headers are kept; X-Forwarded-For is the client it names, or with
    // compute-full-forwarded-for the whole chain.
    for (full, expected) in [("false", "6.6.6.6"), ("true", "6.6.6.6, 127.0.0.1")] {
        let configmap = format!(
            r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"nginx","namespace":"ingress"}},"data":{{"use-forwarded-headers":"true","proxy-real-ip-cidr":"127.0.0.1/32","compute-full-forwarded-for":"{full}"}}}}"#
        );
        let plane = start(
            "trusted",
            &manifest(web.port, &configmap),
            &["--configmap", "ingress/nginx"],
        );
        let request = format!("GET / HTTP/1.1\r\nHost: app.test\r\n{SPOOFED}\r\n");
        let (response, _) = exchange(plane.http, request.as_bytes(), Duration::from_secs(5));
        assert_eq!(status(&response), 200, "{response}");
        let head = last_head(&web);
        assert!(
            head.contains(&format!("x-forwarded-for: {expected}\r\n")),
            "{head}"
        );
        assert!(head.contains("x-real-ip: 6.6.6.6\r\n"), "{head}");
        assert!(head.contains("x-forwarded-proto: https\r\n"), "{head}");
        assert!(head.contains("x-forwarded-host: evil.test\r\n"), "{head}");
        assert!(head.contains("x-original-url: /admin\r\n"), "{head}");
    }
}

#[test]
fn sigterm_finishes_requests_in_flight_then_exits() {
    let slow = backend(Behaviour::Slow(Duration::from_millis(1500)));
    let mut plane = start(
        "shutdown",
        &manifest(slow.port, ""),
        &["--shutdown-timeout", "10s"],
    );
    let addr = plane.http;
    let in_flight = std::thread::spawn(move || exchange(addr, GET, Duration::from_secs(8)).0);
    std::thread::sleep(Duration::from_millis(400));
    let started = Instant::now();
    let pid = plane.process.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    std::thread::sleep(Duration::from_millis(300));
    // No longer accepting.
    let refused = TcpStream::connect(addr).map_or(true, |mut s| {
        let _ = s.write_all(GET);
        read_until_closed(&mut s, Duration::from_secs(2))
            .0
            .is_empty()
    });
    assert!(refused, "a new connection was served after SIGTERM");
    let response = in_flight.join().unwrap();
    assert_eq!(status(&response), 200, "the request in flight: {response}");
    let status = plane.process.child.wait().unwrap();
    assert!(status.success(), "{status}: {}", plane.log());
    assert!(started.elapsed() < Duration::from_secs(5));

    // The deadline: a request that never ends does not hold the process.
    let hung = backend(Behaviour::Hang);
    let mut plane = start(
        "shutdown-deadline",
        &manifest(hung.port, ""),
        &["--shutdown-timeout", "1s"],
    );
    let addr = plane.http;
    std::thread::spawn(move || exchange(addr, GET, Duration::from_secs(10)));
    std::thread::sleep(Duration::from_millis(400));
    let started = Instant::now();
    let pid = plane.process.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let _ = plane.process.child.wait().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "exit took {:?}",
        started.elapsed()
    );
    assert!(
        plane.log().contains("--shutdown-timeout"),
        "{}",
        plane.log()
    );
}

/// Whether `host` is routed: 200 through the plane, 404 otherwise.
fn routed(plane: &Plane, host: &str) -> u16 {
    let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    status(&exchange(plane.http, request.as_bytes(), Duration::from_secs(5)).0)
}

#[test]
fn reloads_wait_for_files_to_settle() {
    let web = backend(Behaviour::Echo);
    let ingress = |name: &str, host: &str| {
        format!(
            r#"{{"apiVersion":"networking.k8s.io/v1","kind":"Ingress","metadata":{{"name":"{name}","namespace":"default"}},"spec":{{"rules":[{{"host":"{host}","http":{{"paths":[{{"path":"/","pathType":"Prefix","backend":{{"service":{{"name":"web","port":{{"number":80}}}}}}}}]}}}}]}}}}"#
        )
    };
    let both = |round: usize| {
        format!(
            "{}\n{}\n",
            ingress("first", &format!("first{round}.test")),
            ingress("second", &format!("second{round}.test"))
        )
    };
    // Without the catch-all, so that a host not yet loaded is a 404.
    let base: String = manifest(web.port, "")
        .lines()
        .filter(|l| !l.contains("catch-all"))
        .map(|l| format!("{l}\n"))
        .collect();
    let plane = start(
        "reload",
        &format!("{base}\n{}", both(0)),
        &["--poll-interval", "300"],
    );
    let file: &Path = &plane.file;
    for round in 1..=4 {
        // Written in two steps, 100 ms apart: the first Ingress, then the second.
        let whole = format!("{base}\n{}", both(round));
        let split = whole.rfind("{\"apiVersion\":\"networking.k8s.io/v1\",\"kind\":\"Ingress\",\"metadata\":{\"name\":\"second\"").unwrap();
        std::fs::write(file, &whole[..split]).unwrap();
        let written = Instant::now();
        let watcher = {
            let plane_addr = plane.http;
            std::thread::spawn(move || {
                // While the file is half-written and until the reload: never the first
                // Ingress's new host without the second's.
                let mut seen_half = false;
                let deadline = Instant::now() + Duration::from_secs(3);
                while Instant::now() < deadline {
                    let probe = Plane::probe(plane_addr, &format!("first{round}.test"));
                    let second = Plane::probe(plane_addr, &format!("second{round}.test"));
                    if probe == 200 && second != 200 {
                        seen_half = true;
                    }
                    if probe == 200 && second == 200 {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                seen_half
            })
        };
        std::thread::sleep(Duration::from_millis(100).saturating_sub(written.elapsed()));
        std::fs::OpenOptions::new()
            .append(true)
            .open(file)
            .unwrap()
            .write_all(&whole.as_bytes()[split..])
            .unwrap();
        assert!(
            !watcher.join().unwrap(),
            "round {round}: a half-written file was served"
        );
        assert_eq!(
            routed(&plane, &format!("second{round}.test")),
            200,
            "{}",
            plane.log()
        );
    }
}

impl Plane {
    fn probe(addr: SocketAddr, host: &str) -> u16 {
        let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        status(&exchange(addr, request.as_bytes(), Duration::from_secs(5)).0)
    }
}
