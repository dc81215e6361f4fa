//! Request canonicalisation: the host and path a request is routed on.
//!
//! See [CanonicalOptions] for the model.

use std::fmt;

use http::{Request, StatusCode};

mod host;
mod path;

pub use host::{canonical_host, request_host, CanonicalHost, RequestHost};
pub(crate) use host::{
    is_canonical_label, is_canonical_name, plain_host_name, request_host_into, set_canonical_name,
};
pub use path::{canonical_path, CanonicalPath};

/// Longest host name DNS allows, and the capacity of [`CanonicalHost`].
const MAX_DNS_NAME: usize = 253;

/// HTTP status to answer with when a request is rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectStatus {
    /// 400 Bad Request: the host or path is malformed or ambiguous.
    BadRequest,
    /// 414 URI Too Long: the path exceeds the configured length or segment limit.
    UriTooLong,
}

impl RejectStatus {
    /// The numeric status code, e.g. `400`.
    pub fn as_u16(self) -> u16 {
        self.status_code().as_u16()
    }

    /// The status as an [`http::StatusCode`].
    pub fn status_code(self) -> StatusCode {
        match self {
            RejectStatus::BadRequest => StatusCode::BAD_REQUEST,
            RejectStatus::UriTooLong => StatusCode::URI_TOO_LONG,
        }
    }

    fn phrase(self) -> &'static str {
        match self {
            RejectStatus::BadRequest => "Bad Request",
            RejectStatus::UriTooLong => "URI Too Long",
        }
    }
}

/// Why a request cannot be routed: the status to answer with and a short reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejection {
    status: RejectStatus,
    reason: &'static str,
}

impl Rejection {
    /// The status to answer with.
    pub fn status(&self) -> RejectStatus {
        self.status
    }

    /// A short, fixed explanation, safe to show to the client.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.status.phrase(),
            self.reason
        )
    }
}

impl std::error::Error for Rejection {}

const fn bad(reason: &'static str) -> Rejection {
    Rejection {
        status: RejectStatus::BadRequest,
        reason,
    }
}

const fn too_long(reason: &'static str) -> Rejection {
    Rejection {
        status: RejectStatus::UriTooLong,
        reason,
    }
}

/// How request paths are treated before matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PathMode {
    /// Match and forward the canonical form of the path (the default).
    #[default]
    Normalize,
    /// Like `Normalize`, but reject (400) any path that is not already canonical.
    Strict,
    /// Match the path exactly as received, for setups that normalise upstream.
    /// Control bytes, spaces, non-ASCII and the limits are still enforced.
    Raw,
}

/// Request canonicalisation: the host and path a request is routed on.
///
/// A request is routed on exactly what is forwarded to the backend, so the
/// host and path are first brought into one canonical form and anything
/// ambiguous is rejected with a status the caller can send back.
///
/// * Host: lower-cased, port and one trailing dot dropped; IP literals only
///   match rules without a host.
/// * Path: fragment cut, query split off and kept unchanged, unreserved
///   percent-escapes decoded, `\` turned into `/`, dot segments removed and
///   runs of `/` merged. Encoded slashes, `%00`, raw control bytes and
///   non-ASCII are rejected.
///
/// Everything runs in linear time, and an already canonical request is
/// handled without allocating.
///
/// ```
/// use ingress_router::{canonical_host, canonical_path, CanonicalOptions};
///
/// let options = CanonicalOptions::default();
/// let path = canonical_path("/public/%2e%2e//admin/./x?q=%2e", &options).unwrap();
/// assert_eq!(path.path(), "/admin/x");
/// assert_eq!(path.path_and_query(), "/admin/x?q=%2e"); // the query is never touched
///
/// let host = canonical_host("Shop.Example.COM.:8443", &options).unwrap();
/// assert_eq!(host.name(), Some("shop.example.com"));
///
/// let rejected = canonical_path("/admin%2Fsecret", &options).unwrap_err();
/// assert_eq!(rejected.status().as_u16(), 400);
/// ```
///
/// Two choices go beyond the letter of the routing contract, both stricter:
/// a segment `.` or `..` followed by `%3B` is rejected like one followed by
/// `;` (backends that decode `%3B` before cutting path parameters see the same
/// trick), and an HTTP/1.1 request in absolute form still needs exactly one
/// valid `Host` header (RFC 9112 §3.2), although the target's authority is
/// what gets routed.
///
/// Path mode and size limits used when canonicalising requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalOptions {
    /// How paths are treated. Default: [`PathMode::Normalize`].
    pub mode: PathMode,
    /// Longest accepted path in bytes, as received and without the query;
    /// longer paths get 414. Default: 8192.
    pub max_path_len: usize,
    /// Most `/`-separated segments in the canonical path; more get 414. Default: 256.
    pub max_segments: usize,
    /// Longest accepted host in bytes, without port or trailing dot; longer
    /// hosts get 400. Values above 253 (the DNS maximum) act as 253. Default: 253.
    pub max_host_len: usize,
}

impl Default for CanonicalOptions {
    fn default() -> Self {
        CanonicalOptions {
            mode: PathMode::Normalize,
            max_path_len: 8192,
            max_segments: 256,
            max_host_len: MAX_DNS_NAME,
        }
    }
}

// Eight bytes at a time, for the fast paths of both the host and the path.

/// `0x01` in every byte of a word.
const ONES: u64 = u64::from_ne_bytes([1; 8]);
/// The high bit of every byte of a word.
const HIGH: u64 = ONES * 0x80;

/// For a word of eight bytes below 0x80: 0x80 in each byte that lies in
/// `lo..=hi`, 0 in the others. Needs `1 <= lo <= hi <= 0x7f`; no sum then
/// carries into the next byte.
const fn bytes_in(word: u64, lo: u8, hi: u8) -> u64 {
    let at_least_lo = word.wrapping_add(ONES * (0x80 - lo as u64));
    let above_hi = word.wrapping_add(ONES * (0x7f - hi as u64));
    at_least_lo & !above_hi & HIGH
}

/// The host and path a request is routed on.
#[derive(Debug)]
pub struct CanonicalRequest<'a> {
    /// The host, chosen as by [`request_host`].
    pub host: RequestHost,
    /// The path and query, as by [`canonical_path`].
    pub path: CanonicalPath<'a>,
}

/// Canonicalise both the host and the path of a request.
///
/// A request without a path (e.g. `http://example.com`) has the path `/`.
pub fn canonicalize_request<'a, B>(
    req: &'a Request<B>,
    opts: &CanonicalOptions,
) -> Result<CanonicalRequest<'a>, Rejection> {
    let host = request_host(req, opts)?;
    let target = req
        .uri()
        .path_and_query()
        .map_or("/", |path_and_query| path_and_query.as_str());
    let path = canonical_path(target, opts)?;
    Ok(CanonicalRequest { host, path })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Version;

    pub(super) fn opts() -> CanonicalOptions {
        CanonicalOptions::default()
    }

    pub(super) fn request(version: Version, uri: &str, hosts: &[&str]) -> Request<()> {
        let mut builder = Request::builder().version(version).uri(uri);
        for &h in hosts {
            builder = builder.header(http::header::HOST, h);
        }
        builder.body(()).unwrap()
    }

    /// Option sets that move the limits onto the inputs below.
    pub(super) fn option_sets() -> Vec<CanonicalOptions> {
        let mut sets = Vec::new();
        for mode in [PathMode::Normalize, PathMode::Strict, PathMode::Raw] {
            for (max_path_len, max_segments) in [(8192, 256), (9, 256), (8, 2), (0, 256), (64, 1)] {
                for max_host_len in [253, 9, 0, usize::MAX] {
                    sets.push(CanonicalOptions {
                        mode,
                        max_path_len,
                        max_segments,
                        max_host_len,
                    });
                }
            }
        }
        sets
    }

    #[test]
    fn rejection_status_and_display() {
        assert_eq!(RejectStatus::BadRequest.as_u16(), 400);
        assert_eq!(RejectStatus::UriTooLong.as_u16(), 414);
        assert_eq!(
            RejectStatus::UriTooLong.status_code(),
            StatusCode::URI_TOO_LONG
        );
        assert_eq!(bad("empty host").to_string(), "400 Bad Request: empty host");
        assert_eq!(
            too_long("path too long").to_string(),
            "414 URI Too Long: path too long"
        );
    }

    #[test]
    fn default_options() {
        let o = CanonicalOptions::default();
        assert_eq!(o.mode, PathMode::Normalize);
        assert_eq!(
            (o.max_path_len, o.max_segments, o.max_host_len),
            (8192, 256, 253)
        );
    }

    #[test]
    fn canonicalize_request_combines_host_and_path() {
        let req = request(
            Version::HTTP_11,
            "/Public/%2e%2e/admin?x=1",
            &["A.Foo.com:8080"],
        );
        let c = canonicalize_request(&req, &opts()).unwrap();
        assert_eq!(c.host.name(), Some("a.foo.com"));
        assert_eq!(c.path.path(), "/admin");
        assert_eq!(c.path.query(), Some("x=1"));

        let req = request(Version::HTTP_11, "http://a.com", &["a.com"]);
        let c = canonicalize_request(&req, &opts()).unwrap();
        assert_eq!(c.path.path(), "/");

        let req = request(Version::HTTP_11, "/admin%2F", &["a.com"]);
        assert_eq!(
            canonicalize_request(&req, &opts()).unwrap_err().status(),
            RejectStatus::BadRequest
        );
        let req = request(Version::HTTP_11, "*", &["a.com"]);
        assert!(canonicalize_request(&req, &opts()).is_err());
    }
}
