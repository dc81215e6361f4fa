//! The limits and timeouts that bound what clients and backends can make the data plane hold:
//! one flag each, with defaults after nginx's and Envoy's edge guidance.

use std::time::Duration;

/// Every limit of the data plane. `None` durations are off.
#[derive(Debug, Clone)]
pub struct Limits {
    /// `--header-read-timeout`: a request head must arrive within this, counted from the
    /// moment the connection waits for it (after the TLS handshake, and again for each request
    /// of a keep-alive connection). Default 10 s (Envoy's edge `request_headers_timeout`).
    pub header_read_timeout: Duration,
    /// `--keepalive-timeout`: a connection with no request in flight and none started for this
    /// long is closed (HTTP/1: after its last response; HTTP/2: GOAWAY). Default 75 s
    /// (nginx's `keepalive_timeout`). An idle HTTP/1 connection also meets the header-read
    /// timeout, which starts when it waits for the next request.
    pub keepalive_timeout: Duration,
    /// `--h2-ping-interval`: HTTP/2 connections are PINGed this often. Default 30 s.
    pub h2_ping_interval: Option<Duration>,
    /// `--h2-ping-timeout`: a PING not answered within this closes the connection. Default 20 s.
    pub h2_ping_timeout: Duration,
    /// `--body-read-timeout`: the longest wait for the next piece of a request body. Default
    /// 60 s (nginx's `client_body_timeout`); 408 when it passes before the backend answered.
    pub body_read_timeout: Duration,
    /// `--max-header-bytes`: the largest request head, HTTP/1 (request line and headers) and
    /// HTTP/2 (the decoded header list) alike; 431 beyond. Default 64 KiB.
    pub max_header_bytes: usize,
    /// `--max-connections`: client connections served at once; new ones are closed at once
    /// while it is reached. Default 16384 (ingress-nginx's `max-worker-connections`).
    pub max_connections: usize,
    /// `--h2-max-streams`: concurrent streams per HTTP/2 connection. Default 100.
    pub h2_max_streams: u32,
    /// `--request-timeout`: the longest a request may take from its head to the end of the
    /// response (504 when no response head came in time; a response body is cut). Default
    /// 300 s; `0` disables it.
    pub request_timeout: Option<Duration>,
    /// `--max-backend-connections`: connections open to one endpoint at once; a request that
    /// needs another gets 503. Default 1024 (Envoy's circuit-breaker `max_connections`).
    pub max_backend_connections: usize,
    /// `--max-backend-requests`: requests in flight to one endpoint at once; 503 beyond.
    /// Default 1024 (Envoy's circuit-breaker `max_requests`).
    pub max_backend_requests: usize,
    /// `--upstream-idle-timeout`: an idle pooled backend connection is closed after this.
    /// Default 60 s (ingress-nginx's `upstream-keepalive-timeout`).
    pub upstream_idle_timeout: Duration,
    /// `--upstream-idle-per-host`: idle pooled connections kept per endpoint and serving thread; the others are
    /// closed as they become idle. Default 320 (ingress-nginx's
    /// `upstream-keepalive-connections`).
    pub upstream_idle_per_host: usize,
    /// `--shutdown-timeout`: on SIGTERM, how long requests in flight may finish before the
    /// process exits anyway. Default 25 s, under Kubernetes' 30 s grace period.
    pub shutdown_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(75),
            h2_ping_interval: Some(Duration::from_secs(30)),
            h2_ping_timeout: Duration::from_secs(20),
            body_read_timeout: Duration::from_secs(60),
            max_header_bytes: 64 * 1024,
            max_connections: 16384,
            h2_max_streams: 100,
            request_timeout: Some(Duration::from_secs(300)),
            max_backend_connections: 1024,
            max_backend_requests: 1024,
            upstream_idle_timeout: Duration::from_secs(60),
            upstream_idle_per_host: 320,
            shutdown_timeout: Duration::from_secs(25),
        }
    }
}

/// The flags of [`Limits`], for the usage line.
pub const FLAGS: &str = "[--header-read-timeout DUR] [--keepalive-timeout DUR] \
[--h2-ping-interval DUR] [--h2-ping-timeout DUR] [--body-read-timeout DUR] \
[--max-header-bytes BYTES] [--max-connections N] [--h2-max-streams N] [--request-timeout DUR] \
[--max-backend-connections N] [--max-backend-requests N] [--upstream-idle-timeout DUR] \
[--upstream-idle-per-host N] [--shutdown-timeout DUR]";

impl Limits {
    /// Whether `flag` is one of the limits' flags.
    pub fn knows(flag: &str) -> bool {
        FLAGS.contains(&format!("[{flag} "))
    }

    /// Sets the limit of `flag` from `text`.
    pub fn set(&mut self, flag: &str, text: &str) -> Result<(), String> {
        let duration = || {
            duration(text).ok_or(format!(
                "{flag} {text:?}: not a duration (a number with ms, s, m or h; plain: seconds)"
            ))
        };
        let count = || {
            text.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or(format!("{flag} {text:?}: not a positive number"))
        };
        let positive = |d: Duration| {
            if d.is_zero() {
                Err(format!("{flag} {text:?}: must be more than 0"))
            } else {
                Ok(d)
            }
        };
        match flag {
            "--header-read-timeout" => self.header_read_timeout = positive(duration()?)?,
            "--keepalive-timeout" => self.keepalive_timeout = positive(duration()?)?,
            "--h2-ping-interval" => {
                self.h2_ping_interval = Some(duration()?).filter(|d| !d.is_zero())
            }
            "--h2-ping-timeout" => self.h2_ping_timeout = positive(duration()?)?,
            "--body-read-timeout" => self.body_read_timeout = positive(duration()?)?,
            "--max-header-bytes" => {
                let bytes = count()?;
                // hyper reads HTTP/1 heads into a buffer of at least 8 KiB.
                if !(8192..=16 << 20).contains(&bytes) {
                    return Err(format!("{flag} {text:?}: between 8192 and 16777216"));
                }
                self.max_header_bytes = bytes;
            }
            "--max-connections" => self.max_connections = count()?,
            "--h2-max-streams" => {
                self.h2_max_streams =
                    u32::try_from(count()?).map_err(|_| format!("{flag} {text:?}: too large"))?
            }
            "--request-timeout" => {
                self.request_timeout = Some(duration()?).filter(|d| !d.is_zero())
            }
            "--max-backend-connections" => self.max_backend_connections = count()?,
            "--max-backend-requests" => self.max_backend_requests = count()?,
            "--upstream-idle-timeout" => self.upstream_idle_timeout = positive(duration()?)?,
            "--upstream-idle-per-host" => {
                self.upstream_idle_per_host = text
                    .parse()
                    .map_err(|_| format!("{flag} {text:?}: not a number"))?
            }
            "--shutdown-timeout" => self.shutdown_timeout = duration()?,
            _ => return Err(format!("unknown option {flag}")),
        }
        Ok(())
    }
}

/// A decimal number and the unit that follows it: `250ms` is `(250, "ms")`.
pub fn number_and_unit(text: &str) -> Option<(u64, &str)> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    Some((number.parse().ok()?, unit))
}

/// `250ms`, `10s`, `5m`, `1h`, or a plain number of seconds.
fn duration(text: &str) -> Option<Duration> {
    let (number, unit) = number_and_unit(text)?;
    let millis = match unit {
        "ms" => number,
        "" | "s" => number.checked_mul(1000)?,
        "m" => number.checked_mul(60_000)?,
        "h" => number.checked_mul(3_600_000)?,
        _ => return None,
    };
    Some(Duration::from_millis(millis))
}

/// How many files the process may open, from `/proc/self/limits` (Linux); `None` elsewhere.
pub fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}
