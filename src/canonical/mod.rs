//! Request canonicalisation: the host and path a request is routed on.
//!
//! A request is routed on exactly what is forwarded to the backend, so the
//! host and path are first brought into one canonical form and anything
//! ambiguous is rejected with a status the caller can send back.
//!
//! * Host: lower-cased, port and one trailing dot dropped; IP literals only
//!   match rules without a host.
//! * Path: fragment cut, query split off and kept unchanged, unreserved
//!   percent-escapes decoded, `\` turned into `/`, dot segments removed and
//!   runs of `/` merged. Encoded slashes, `%00`, raw control bytes and
//!   non-ASCII are rejected.
//!
//! Everything runs in linear time, and an already canonical request is
//! handled without allocating.
//!
//! ```
//! use ingress_router::canonical::{canonical_host, canonical_path, CanonicalOptions};
//!
//! let options = CanonicalOptions::default();
//! let path = canonical_path("/public/%2e%2e//admin/./x?q=%2e", &options).unwrap();
//! assert_eq!(path.path(), "/admin/x");
//! assert_eq!(path.path_and_query(), "/admin/x?q=%2e"); // the query is never touched
//!
//! let host = canonical_host("Shop.Example.COM.:8443", &options).unwrap();
//! assert_eq!(host.name(), Some("shop.example.com"));
//!
//! let rejected = canonical_path("/admin%2Fsecret", &options).unwrap_err();
//! assert_eq!(rejected.status().as_u16(), 400);
//! ```
//!
//! Two choices go beyond the letter of the routing contract, both stricter:
//! a segment `.` or `..` followed by `%3B` is rejected like one followed by
//! `;` (backends that decode `%3B` before cutting path parameters see the same
//! trick), and an HTTP/1.1 request in absolute form still needs exactly one
//! valid `Host` header (RFC 9112 §3.2), although the target's authority is
//! what gets routed.

use std::borrow::Cow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use http::{Request, StatusCode, Version};

/// Longest host name DNS allows, and the capacity of [`CanonicalHost`].
const MAX_DNS_NAME: usize = 253;
/// Longest DNS label.
const MAX_LABEL: usize = 63;

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

/// A canonical (lower-case, port-less) DNS host name of at most 253 bytes,
/// stored inline without allocating.
// Word-aligned so that checking the name is UTF-8 takes its fast path.
#[derive(Clone)]
#[repr(align(8))]
pub struct CanonicalHost {
    buf: [u8; MAX_DNS_NAME],
    len: u8,
}

impl CanonicalHost {
    /// The empty name, to be filled in.
    const EMPTY: CanonicalHost = CanonicalHost {
        buf: [0; MAX_DNS_NAME],
        len: 0,
    };

    /// Build from an already validated name; `None` when it does not fit.
    fn from_validated(name: &str) -> Option<Self> {
        let bytes = name.as_bytes();
        let len = u8::try_from(bytes.len()).ok()?;
        let mut buf = [0u8; MAX_DNS_NAME];
        buf.get_mut(..bytes.len())?.copy_from_slice(bytes);
        buf.make_ascii_lowercase();
        Some(CanonicalHost { buf, len })
    }

    /// The host name's bytes: validated ASCII, so routing need not check them again.
    #[inline]
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.buf.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// The host name, e.g. `a.foo.com`.
    pub fn as_str(&self) -> &str {
        let bytes = self.buf.get(..usize::from(self.len)).unwrap_or(&[]);
        // Only validated ASCII is ever stored, so this never falls back.
        std::str::from_utf8(bytes).unwrap_or("")
    }
}

impl fmt::Debug for CanonicalHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CanonicalHost")
            .field(&self.as_str())
            .finish()
    }
}

impl PartialEq for CanonicalHost {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for CanonicalHost {}

impl Hash for CanonicalHost {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

/// The host a request is routed on.
// The name is kept inline so that routing a request never allocates.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RequestHost {
    /// A DNS name, matched against rules with a host.
    Name(CanonicalHost),
    /// An IP literal (IPv4 or bracketed IPv6); matches only rules without a host.
    Ip,
    /// No host was given (HTTP/1.0); matches only rules without a host.
    None,
}

impl RequestHost {
    /// The canonical host name, or `None` for IP literals and missing hosts.
    pub fn name(&self) -> Option<&str> {
        match self {
            RequestHost::Name(host) => Some(host.as_str()),
            RequestHost::Ip | RequestHost::None => None,
        }
    }

    /// [`RequestHost::name`] as bytes.
    #[inline]
    pub(crate) fn name_bytes(&self) -> Option<&[u8]> {
        match self {
            RequestHost::Name(host) => Some(host.as_bytes()),
            RequestHost::Ip | RequestHost::None => None,
        }
    }
}

/// A parsed host, keeping IP addresses so that two hosts can be compared.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq, Eq)]
enum ParsedHost {
    Name(CanonicalHost),
    Ip(IpAddr),
}

impl From<ParsedHost> for RequestHost {
    fn from(host: ParsedHost) -> Self {
        match host {
            ParsedHost::Name(name) => RequestHost::Name(name),
            ParsedHost::Ip(_) => RequestHost::Ip,
        }
    }
}

/// Canonicalise one authority (`host[:port]`, as in a `Host` header).
///
/// Lower-cases the name and drops the port (which must be 1–5 digits, at most
/// 65535) and one trailing dot. Empty hosts and labels, userinfo, `%`, `/`,
/// whitespace, non-ASCII and other characters outside `a-z 0-9 - _ .` are
/// rejected with 400. Never returns [`RequestHost::None`].
pub fn canonical_host(authority: &str, opts: &CanonicalOptions) -> Result<RequestHost, Rejection> {
    let mut host = CanonicalHost::EMPTY;
    if fast_host(authority.as_bytes(), opts, &mut host).is_some() {
        return Ok(RequestHost::Name(host));
    }
    parse_host_full(authority, opts).map(RequestHost::from)
}

fn parse_host(authority: &str, opts: &CanonicalOptions) -> Result<ParsedHost, Rejection> {
    let mut host = CanonicalHost::EMPTY;
    if fast_host(authority.as_bytes(), opts, &mut host).is_some() {
        return Ok(ParsedHost::Name(host));
    }
    parse_host_full(authority, opts)
}

/// Each byte as it appears in a canonical host name: lower-cased for letters,
/// unchanged for digits, `-` and `_`, and 0 for everything else (including
/// `.` and `:`, which [`fast_host`] handles apart).
const HOST_BYTE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < table.len() {
        let byte = b as u8;
        table[b] = match byte {
            b'0'..=b'9' | b'a'..=b'z' | b'-' | b'_' => byte,
            b'A'..=b'Z' => byte.to_ascii_lowercase(),
            _ => 0,
        };
        b += 1;
    }
    table
};

/// 1 for each byte that is neither in [`HOST_BYTE`] nor a dot, else 0.
const HOST_OTHER: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < table.len() {
        table[b] = (HOST_BYTE[b] == 0 && b != b'.' as usize) as u8;
        b += 1;
    }
    table
};

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

/// The common case of [`parse_host_full`] in one pass: a DNS name of
/// letters, digits, `-`, `_` and dots, with an optional port and trailing
/// dot, lower-cased straight into `host` while it is validated, eight bytes
/// at a time while no port or unusual byte is in sight.
///
/// Answers `None` whenever the full parser could answer anything but this
/// name (IP literals, all-numeric names and everything it rejects), so that
/// its results and reasons stay the only ones; `host` is then left
/// half-written.
fn fast_host(authority: &[u8], opts: &CanonicalOptions, host: &mut CanonicalHost) -> Option<()> {
    // A longer name is only partly scanned, and then left to the full parser.
    let scan = authority.get(..MAX_DNS_NAME).unwrap_or(authority);
    // Every name byte or-ed together: letters and `_` set 0x40 in some byte.
    let mut seen = 0u64;
    // Length of the label being read.
    let mut label = 0usize;
    let mut done = 0usize;
    for (chunk, out) in scan.chunks_exact(8).zip(host.buf.chunks_exact_mut(8)) {
        if chunk
            .iter()
            .fold(0, |other, &b| other | HOST_OTHER[usize::from(b)])
            != 0
        {
            // A port or an unusual byte: go on one byte at a time.
            break;
        }
        let word = u64::from_le_bytes(chunk.try_into().ok()?);
        let dots = bytes_in(word, b'.', b'.');
        if dots == 0 {
            label += 8;
        } else {
            // The label ending at the first dot, and those between dots.
            let ended = label + (dots.trailing_zeros() / 8) as usize;
            if ended == 0 || ended > MAX_LABEL || dots & (dots >> 8) != 0 {
                return None;
            }
            label = (dots.leading_zeros() / 8) as usize;
        }
        out.copy_from_slice(&(word | (bytes_in(word, b'A', b'Z') >> 2)).to_le_bytes());
        seen |= word;
        done += 8;
    }

    let mut name_end = None;
    let rest = scan.get(done..)?;
    let out = host.buf.get_mut(done..)?;
    for (i, (&b, slot)) in rest.iter().zip(out).enumerate() {
        let canonical = HOST_BYTE[usize::from(b)];
        if canonical != 0 {
            *slot = canonical;
            seen |= u64::from(canonical);
            label += 1;
            continue;
        }
        match b {
            b'.' => {
                if label == 0 || label > MAX_LABEL {
                    return None;
                }
                *slot = b'.';
                label = 0;
            }
            b':' => {
                let at = done + i;
                check_port(authority.get(at + 1..)?).ok()?;
                name_end = Some(at);
                break;
            }
            _ => return None,
        }
    }
    let name_end = match name_end {
        Some(end) => end,
        None if authority.len() > MAX_DNS_NAME => return None,
        None => authority.len(),
    };
    let len = match label {
        // Nothing at all, or nothing after the last dot: one trailing dot
        // is dropped.
        0 => {
            let dot = name_end.checked_sub(1)?;
            *host.buf.get_mut(dot)? = 0;
            dot
        }
        _ if label > MAX_LABEL => return None,
        _ => name_end,
    };
    if len > opts.max_host_len.min(MAX_DNS_NAME) {
        return None;
    }
    // Names of digits, `-` and dots only are rare; all-numeric ones are IPv4
    // literals or rejected.
    if seen & (ONES * 0x40) == 0 && !scan.iter().take(len).any(|&b| b == b'-') {
        return None;
    }
    host.len = u8::try_from(len).ok()?;
    Some(())
}

/// [`parse_host`] for any authority, with the reason for each rejection.
fn parse_host_full(authority: &str, opts: &CanonicalOptions) -> Result<ParsedHost, Rejection> {
    if authority.is_empty() {
        return Err(bad("empty host"));
    }
    for &b in authority.as_bytes() {
        match b {
            0x80..=0xff => return Err(bad("non-ASCII character in host")),
            0x00..=0x20 | 0x7f => return Err(bad("whitespace or control character in host")),
            b'%' => return Err(bad("percent-encoding in host")),
            b'/' => return Err(bad("slash in host")),
            b'@' => return Err(bad("userinfo in host")),
            _ => {}
        }
    }
    let max_len = opts.max_host_len.min(MAX_DNS_NAME);

    if let Some(bracketed) = authority.strip_prefix('[') {
        let (literal, after) = bracketed
            .split_once(']')
            .ok_or(bad("unterminated IPv6 literal in host"))?;
        if !after.is_empty() {
            let port = after.strip_prefix(':').ok_or(bad("invalid host"))?;
            check_port(port.as_bytes())?;
        }
        if literal.len() + 2 > max_len {
            return Err(bad("host too long"));
        }
        let ip: Ipv6Addr = literal
            .parse()
            .map_err(|_| bad("invalid IPv6 literal in host"))?;
        return Ok(ParsedHost::Ip(IpAddr::V6(ip)));
    }

    let name = match authority.rsplit_once(':') {
        Some((name, port)) => {
            check_port(port.as_bytes())?;
            name
        }
        None => authority,
    };
    if name.contains(':') {
        return Err(bad("invalid host"));
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return Err(bad("empty host"));
    }
    if name.len() > max_len {
        return Err(bad("host too long"));
    }
    if let Ok(ip) = name.parse::<Ipv4Addr>() {
        return Ok(ParsedHost::Ip(IpAddr::V4(ip)));
    }

    let mut all_numeric = true;
    for label in name.split('.') {
        if label.is_empty() {
            return Err(bad("empty label in host"));
        }
        if label.len() > MAX_LABEL {
            return Err(bad("host label too long"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(bad("invalid character in host"));
        }
        all_numeric &= label.bytes().all(|b| b.is_ascii_digit());
    }
    // Resolvers and browsers read all-numeric names as (odd) IPv4 forms.
    if all_numeric {
        return Err(bad("numeric host is not a valid IPv4 address"));
    }
    CanonicalHost::from_validated(name)
        .map(ParsedHost::Name)
        .ok_or(bad("host too long"))
}

fn check_port(port: &[u8]) -> Result<(), Rejection> {
    const INVALID: Rejection = bad("invalid port in host");
    if port.is_empty() || port.len() > 5 {
        return Err(INVALID);
    }
    let mut value: u32 = 0;
    for &b in port {
        if !b.is_ascii_digit() {
            return Err(INVALID);
        }
        value = value * 10 + u32::from(b - b'0');
    }
    if value > u32::from(u16::MAX) {
        return Err(INVALID);
    }
    Ok(())
}

/// The host a request is routed on, chosen from the request target's
/// authority and the `Host` header.
///
/// * An authority in the URI (absolute-form in HTTP/1.1, `:authority` in
///   HTTP/2 and HTTP/3) wins. In HTTP/2 and HTTP/3 a `Host` header naming a
///   different host is a 400; in HTTP/1.x the `Host` header is not routed on,
///   but HTTP/1.1 still needs exactly one valid `Host` (RFC 9112 §3.2).
/// * Otherwise the `Host` header is used. A missing `Host` means "no host"
///   for HTTP/1.0 and is a 400 for later versions.
/// * Several `Host` lines, an invalid host or userinfo are a 400.
/// * An authority-form target (`host:port`, as CONNECT sends; `http` also
///   reads `GET example.com` so) is a 400.
///
/// `X-Forwarded-Host` and `Forwarded` are never consulted.
pub fn request_host<B>(
    req: &Request<B>,
    opts: &CanonicalOptions,
) -> Result<RequestHost, Rejection> {
    let mut host = RequestHost::None;
    request_host_into(req, opts, &mut host)?;
    Ok(host)
}

/// [`request_host`] for the requests [`request_host_into`] leaves: absolute-form targets,
/// `Host` lines missing or repeated, and hosts that are not plain names.
fn request_host_full<B>(
    req: &Request<B>,
    opts: &CanonicalOptions,
) -> Result<RequestHost, Rejection> {
    let mut host_lines = req.headers().get_all(http::header::HOST).iter();
    let host_header = host_lines.next();
    if host_lines.next().is_some() {
        return Err(bad("several Host header lines"));
    }
    let version = req.version();

    if let Some(authority) = req.uri().authority() {
        // Authority-form (`GET example.com` parses as one): not a path, and not
        // a host to route on in place of `Host`.
        if req.uri().scheme().is_none() {
            return Err(bad("authority-form request target is not routable"));
        }
        let from_uri = parse_host(authority.as_str(), opts)?;
        // RFC 9113 §8.3.1: `:authority` and `Host` must agree. RFC 9112 §3.2.2:
        // in HTTP/1.x the absolute-form target replaces `Host`.
        if version == Version::HTTP_2 || version == Version::HTTP_3 {
            if let Some(value) = host_header {
                let from_header = parse_host(host_header_str(value)?, opts)?;
                if from_header != from_uri {
                    return Err(bad("Host header disagrees with :authority"));
                }
            }
        } else if version == Version::HTTP_11 {
            // RFC 9112 §3.2: an HTTP/1.1 request needs one valid Host, even when the
            // absolute-form target is what gets routed.
            match host_header {
                Some(value) => {
                    parse_host(host_header_str(value)?, opts)?;
                }
                None => return Err(bad("missing Host header")),
            }
        }
        return Ok(from_uri.into());
    }

    match host_header {
        // `request_host_into` tried the fast path on the header bytes already; anything else
        // is checked to be visible ASCII first.
        Some(value) => parse_host_full(host_header_str(value)?, opts).map(RequestHost::from),
        None if version == Version::HTTP_10 || version == Version::HTTP_09 => Ok(RequestHost::None),
        None => Err(bad("missing Host header")),
    }
}

/// [`request_host`] into `out`: for the common request (no authority in the target, one
/// `Host` line holding a host name) the name is canonicalised where it stays, without copying
/// the inline buffer around.
pub(crate) fn request_host_into<B>(
    req: &Request<B>,
    opts: &CanonicalOptions,
    out: &mut RequestHost,
) -> Result<(), Rejection> {
    if let Some(value) = sole_host_line(req) {
        *out = RequestHost::Name(CanonicalHost::EMPTY);
        if let RequestHost::Name(host) = out {
            if fast_host(value.as_bytes(), opts, host).is_some() {
                return Ok(());
            }
        }
    }
    *out = request_host_full(req, opts)?;
    Ok(())
}

/// The request's one `Host` line, when that is what it is routed on: no authority in the
/// target and exactly one `Host` line.
#[inline]
fn sole_host_line<B>(req: &Request<B>) -> Option<&http::HeaderValue> {
    if req.uri().authority().is_some() {
        return None;
    }
    let mut host_lines = req.headers().get_all(http::header::HOST).iter();
    match (host_lines.next(), host_lines.next()) {
        (Some(value), None) => Some(value),
        _ => None,
    }
}

/// The name in a request's one `Host` line (no authority in the target), with a valid port
/// and one trailing dot taken off, when it is not longer than `opts.max_host_len`: e.g.
/// `Example.com` for `Example.com.:8080`. The name itself is not checked; it is canonical when
/// it equals a name [`is_canonical_name`] accepts, and that is all it may be used for.
#[inline]
pub(crate) fn plain_host_name<'r, B>(
    req: &'r Request<B>,
    opts: &CanonicalOptions,
) -> Option<&'r [u8]> {
    let bytes = sole_host_line(req)?.as_bytes();
    // A port has at most five digits, so its `:` is among the last six bytes.
    let tail = bytes.len().saturating_sub(6);
    let name = match bytes.get(tail..)?.iter().rposition(|&b| b == b':') {
        Some(colon) => {
            let (name, port) = bytes.split_at_checked(tail + colon)?;
            check_port(port.get(1..)?).ok()?;
            name
        }
        None => bytes,
    };
    let name = name.strip_suffix(b".").unwrap_or(name);
    (name.len() <= opts.max_host_len.min(MAX_DNS_NAME)).then_some(name)
}

/// Whether `name` is its own canonical host name: what [`plain_host_name`] gives for it may be
/// routed on without being checked again.
pub(crate) fn is_canonical_name(name: &str) -> bool {
    let opts = CanonicalOptions::default();
    matches!(canonical_host(name, &opts), Ok(RequestHost::Name(host)) if host.as_str() == name)
}

/// Whether `label` is a label of some canonical host name: 1 to 63 bytes of lower-case
/// letters, digits, `-` and `_`.
#[inline]
pub(crate) fn is_canonical_label(label: &[u8]) -> bool {
    (1..=MAX_LABEL).contains(&label.len())
        && label
            .iter()
            .all(|&b| b != 0 && HOST_BYTE[usize::from(b)] == b)
}

/// `out` set to the name `name`, already known to be canonical.
#[inline]
pub(crate) fn set_canonical_name(out: &mut RequestHost, name: &[u8]) {
    *out = RequestHost::Name(CanonicalHost::EMPTY);
    if let RequestHost::Name(host) = out {
        if let (Some(buf), Ok(len)) = (host.buf.get_mut(..name.len()), u8::try_from(name.len())) {
            buf.copy_from_slice(name);
            host.len = len;
        }
    }
}

fn host_header_str(value: &http::HeaderValue) -> Result<&str, Rejection> {
    value
        .to_str()
        .map_err(|_| bad("Host header is not visible ASCII"))
}

/// A canonical request path, plus the query which is kept as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalPath<'a> {
    path: Cow<'a, str>,
    query: Option<&'a str>,
    /// The received path and query, without the fragment.
    received: &'a str,
    modified: bool,
}

impl<'a> CanonicalPath<'a> {
    /// `/`, unmodified: a placeholder to be overwritten.
    pub(crate) const ROOT: CanonicalPath<'static> = CanonicalPath {
        path: Cow::Borrowed("/"),
        query: None,
        received: "/",
        modified: false,
    };

    /// The path to match and forward, e.g. `/a/b`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The query without its `?`, exactly as received; `None` when there was no `?`.
    pub fn query(&self) -> Option<&'a str> {
        self.query
    }

    /// Whether the path differs from the received one. An empty path counts
    /// as modified, since it becomes `/`.
    pub fn is_modified(&self) -> bool {
        self.modified
    }

    /// The path, without copying it.
    pub fn into_path(self) -> Cow<'a, str> {
        self.path
    }

    /// The path followed by `?` and the query when there is one, ready to
    /// forward. Borrows the received target when the path is unchanged.
    pub fn path_and_query(&self) -> Cow<'a, str> {
        if !self.modified {
            return Cow::Borrowed(self.received);
        }
        let query_len = self.query.map_or(0, |q| q.len() + 1);
        let mut out = String::with_capacity(self.path.len() + query_len);
        out.push_str(&self.path);
        if let Some(query) = self.query {
            out.push('?');
            out.push_str(query);
        }
        Cow::Owned(out)
    }
}

/// Canonicalise a request target's path and query (e.g. `/a/b?x=1`).
///
/// The fragment is cut and the query kept unchanged; the path is treated
/// according to `opts.mode`. Does not allocate when the path is already
/// canonical (or in [`PathMode::Raw`]).
///
/// Rejects with 414 a path longer than `opts.max_path_len` or with more than
/// `opts.max_segments` segments, and with 400 anything that cannot be routed
/// safely: control bytes, spaces, non-ASCII, malformed escapes, `%00`, `%2F`,
/// `%5C`, `.;` / `..;` segments, and targets that do not start with `/`.
pub fn canonical_path<'a>(
    target: &'a str,
    opts: &CanonicalOptions,
) -> Result<CanonicalPath<'a>, Rejection> {
    if let Some(path) = fast_canonical_path(target, opts) {
        return Ok(path);
    }
    if let Some(path) = rewrite_path(target, opts) {
        return Ok(path);
    }
    canonical_path_full(target, opts)
}

/// [`PATH_NEXT`] state: at the start of a segment, just after a `/`.
const SEGMENT_START: u8 = 0;
/// [`PATH_NEXT`] state: inside a segment that is neither `.` nor `..` so far.
const IN_SEGMENT: u8 = 1;
/// [`PATH_NEXT`] state: the segment so far is `.`.
const ONE_DOT: u8 = 2;
/// [`PATH_NEXT`] state: the segment so far is `..`.
const TWO_DOTS: u8 = 3;
/// [`PATH_NEXT`] outcome: the path ends here, at a `?` or `#`.
const PATH_END: u8 = 4;
/// [`PATH_NEXT`] outcome: the path may change or be rejected.
const NOT_CANONICAL: u8 = 5;

/// The state after each byte, by state and byte, while reading a path that
/// is canonical so far. Everything that would be rewritten or rejected leads
/// to [`NOT_CANONICAL`]: bytes outside `!`..=`~`, `%`, `\`, an empty segment
/// before a `/`, and segments `.` and `..`, alone or followed by `;`.
const PATH_NEXT: [[u8; 256]; 4] = {
    let mut table = [[NOT_CANONICAL; 256]; 4];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        // From each state in turn: SEGMENT_START, IN_SEGMENT, ONE_DOT, TWO_DOTS.
        let next = match byte {
            b'/' => [NOT_CANONICAL, SEGMENT_START, NOT_CANONICAL, NOT_CANONICAL],
            b'.' => [ONE_DOT, IN_SEGMENT, TWO_DOTS, IN_SEGMENT],
            b';' => [IN_SEGMENT, IN_SEGMENT, NOT_CANONICAL, NOT_CANONICAL],
            b'?' | b'#' => [PATH_END, PATH_END, NOT_CANONICAL, NOT_CANONICAL],
            b'%' | b'\\' => [NOT_CANONICAL; 4],
            b'!'..=b'~' => [IN_SEGMENT; 4],
            _ => [NOT_CANONICAL; 4],
        };
        let mut state = 0;
        while state < 4 {
            table[state][b] = next[state];
            state += 1;
        }
        b += 1;
    }
    table
};

/// The common case of [`canonical_path_full`] in one pass: a path that is
/// already canonical and within the limits, optionally followed by a query
/// and a fragment.
///
/// Answers `None` whenever the full canonicalisation might rewrite or reject
/// the path, so that its results and reasons stay the only ones.
fn fast_canonical_path<'a>(target: &'a str, opts: &CanonicalOptions) -> Option<CanonicalPath<'a>> {
    let bytes = target.as_bytes();
    if bytes.first() != Some(&b'/') {
        return None;
    }
    // Only as far as the length limit; a longer path is left to the full pass.
    let limit = bytes.len().min(opts.max_path_len);
    let scan = bytes.get(1..limit)?;
    let mut state = SEGMENT_START;
    // Eight bytes at a time while they hold no `?`, `#`, `%`, `\` or
    // unusual byte, and no segment starts with `/` or `.`.
    let mut done = 0;
    for chunk in scan.chunks_exact(8) {
        // Inside a segment, `?`, `#` and every byte that may change or be
        // rejected lead to a state above TWO_DOTS, which all have bit 2 set.
        let unusual = chunk
            .iter()
            .fold(0, |seen, &b| seen | PATH_NEXT[1][usize::from(b)]);
        if unusual & 4 != 0 {
            break;
        }
        let word = u64::from_le_bytes(chunk.try_into().ok()?);
        let slashes = bytes_in(word, b'/', b'/');
        let after_slash = (slashes << 8) | (u64::from(state == SEGMENT_START) << 7);
        // A `/` or `.` right after a `/`.
        if after_slash & bytes_in(word, b'.', b'/') != 0 {
            break;
        }
        state = if slashes >> 56 == 0 {
            IN_SEGMENT
        } else {
            SEGMENT_START
        };
        done += 8;
    }
    let mut end = None;
    for (i, &b) in scan.get(done..)?.iter().enumerate() {
        state = PATH_NEXT[usize::from(state & 3)][usize::from(b)];
        if state > TWO_DOTS {
            if state != PATH_END {
                return None;
            }
            end = Some(done + i + 1);
            break;
        }
    }
    let path_end = match end {
        Some(end) => end,
        None if limit < bytes.len() || state > IN_SEGMENT => return None,
        None => bytes.len(),
    };
    // A path has no more segments than bytes.
    if path_end > opts.max_segments && count_slashes(bytes.get(..path_end)?) > opts.max_segments {
        return None;
    }
    let (path, query, received) = split_at_path_end(target, path_end)?;
    Some(CanonicalPath {
        path: Cow::Borrowed(path),
        query,
        received,
        modified: false,
    })
}

/// `target` split at the end of its path (a `?`, a `#` or the end) into the path, the query
/// and the path and query without the fragment, as by [`split_target`].
fn split_at_path_end(target: &str, path_end: usize) -> Option<(&str, Option<&str>, &str)> {
    let (path, after) = target.split_at_checked(path_end)?;
    match after.as_bytes().first() {
        Some(b'?') => {
            let query_end = after
                .as_bytes()
                .iter()
                .position(|&b| b == b'#')
                .unwrap_or(after.len());
            let query = after.get(1..query_end)?;
            Some((path, Some(query), target.get(..path_end + query_end)?))
        }
        _ => Some((path, None, path)),
    }
}

/// The rewrites of [`canonical_path_full`] in [`PathMode::Normalize`] in one pass: dot
/// segments, runs of `/`, `\` separators and percent-escapes, on a path whose every byte and
/// escape is accepted and that is within the limits.
///
/// The output is written only from the first byte that changes, so a path that turns out
/// canonical (one with upper-case escapes, say) is borrowed and nothing is allocated. Answers
/// `None` whenever the full pass might reject the path, so that its reasons stay the only
/// ones.
fn rewrite_path<'a>(target: &'a str, opts: &CanonicalOptions) -> Option<CanonicalPath<'a>> {
    if opts.mode != PathMode::Normalize {
        return None;
    }
    let bytes = target.as_bytes();
    if bytes.first() != Some(&b'/') {
        return None;
    }
    // `None` while the path read so far is unchanged: the output is then `bytes[..i]`.
    let mut out: Option<Vec<u8>> = None;
    let changed_from = |i: usize| -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(bytes.len());
        out.extend_from_slice(bytes.get(..i)?);
        Some(out)
    };
    // Where the `/` opening the current segment is in the output, as in [`rebuild`].
    let mut seg_start = 0;
    let mut lead = Lead::Empty;
    let mut segments = 1usize;
    let mut i = 1;
    let path_end = loop {
        if i > opts.max_path_len {
            return None;
        }
        let Some(&b) = bytes.get(i) else {
            break i;
        };
        match b {
            b'?' | b'#' => break i,
            b'/' | b'\\' => {
                // An empty or dot segment ends, or a `\` separates.
                if out.is_none() && (b == b'\\' || lead != Lead::Other) {
                    out = Some(changed_from(i)?);
                }
                match out.as_mut() {
                    Some(out) => {
                        end_segment(out, seg_start, lead);
                        seg_start = out.len();
                        out.push(b'/');
                    }
                    None => seg_start = i,
                }
                segments += 1;
                lead = Lead::Empty;
                i += 1;
            }
            b'%' => {
                let tok = escape_tok(*bytes.get(i + 1)?, *bytes.get(i + 2)?).ok()?;
                if out.is_none() && !matches!(tok, Tok::Kept { lower: false, .. }) {
                    out = Some(changed_from(i)?);
                }
                if let Some(out) = out.as_mut() {
                    push_tok(out, tok);
                }
                lead = lead.step(tok).ok()?;
                i += 3;
            }
            b'!'..=b'~' => {
                if let Some(out) = out.as_mut() {
                    out.push(b);
                }
                lead = lead.step(Tok::Lit(b)).ok()?;
                i += 1;
            }
            _ => return None,
        }
    };
    let (path, query, received) = split_at_path_end(target, path_end)?;
    let unchanged = || CanonicalPath {
        path: Cow::Borrowed(path),
        query,
        received,
        modified: false,
    };
    // A final dot segment is dropped, and its directory keeps a trailing slash.
    if out.is_none() && lead.is_dots() {
        out = Some(changed_from(path_end)?);
    }
    let Some(mut out) = out else {
        return (segments <= opts.max_segments).then(unchanged);
    };
    end_segment(&mut out, seg_start, lead);
    if lead.is_dots() {
        out.push(b'/');
    }
    out.dedup_by(|a, b| *a == b'/' && *b == b'/');
    if count_slashes(&out) > opts.max_segments {
        return None;
    }
    let out = String::from_utf8(out).ok()?;
    if out == path {
        return Some(unchanged());
    }
    Some(CanonicalPath {
        path: Cow::Owned(out),
        query,
        received,
        modified: true,
    })
}

/// [`canonical_path`] one token at a time, for any path.
fn canonical_path_full<'a>(
    target: &'a str,
    opts: &CanonicalOptions,
) -> Result<CanonicalPath<'a>, Rejection> {
    let (path, query, received) = split_target(target, opts.max_path_len)?;
    let unchanged = |path: &'a str| CanonicalPath {
        path: Cow::Borrowed(path),
        query,
        received,
        modified: false,
    };

    if path.is_empty() {
        // RFC 9110 §4.2.3: an empty path is equivalent to `/`; not a strict-mode error.
        check_segments(1, opts)?;
        return Ok(CanonicalPath {
            path: Cow::Borrowed("/"),
            query,
            received,
            modified: true,
        });
    }
    if path == "*" {
        return Err(bad("asterisk-form request target is not routable"));
    }
    if !path.starts_with('/') {
        return Err(bad("path does not start with /"));
    }
    check_path_bytes(path)?;
    let rest = path.as_bytes().get(1..).unwrap_or(&[]);

    if opts.mode == PathMode::Raw {
        check_segments(count_slashes(path.as_bytes()), opts)?;
        return Ok(unchanged(path));
    }

    let (changed, segments) = scan(rest)?;
    if !changed {
        check_segments(segments, opts)?;
        return Ok(unchanged(path));
    }
    if opts.mode == PathMode::Strict {
        return Err(bad("path is not in canonical form"));
    }
    let out = rebuild(rest, path.len())?;
    check_segments(count_slashes(&out), opts)?;
    let out = String::from_utf8(out).map_err(|_| bad("invalid path"))?;
    if out == path {
        return Ok(unchanged(path));
    }
    Ok(CanonicalPath {
        path: Cow::Owned(out),
        query,
        received,
        modified: true,
    })
}

/// Split `target` into (path, query, path-and-query without fragment),
/// rejecting an over-long path before looking further than the limit.
fn split_target(
    target: &str,
    max_path_len: usize,
) -> Result<(&str, Option<&str>, &str), Rejection> {
    let bytes = target.as_bytes();
    let path_end = match bytes
        .iter()
        .take(max_path_len.saturating_add(1))
        .position(|&b| b == b'?' || b == b'#')
    {
        Some(end) => end,
        None if bytes.len() > max_path_len => return Err(too_long("path too long")),
        None => bytes.len(),
    };
    if path_end > max_path_len {
        return Err(too_long("path too long"));
    }
    // `?` and `#` are ASCII, so these are character boundaries.
    let path = target.get(..path_end).unwrap_or("");
    let after = target.get(path_end..).unwrap_or("");
    match after.strip_prefix('?') {
        Some(query_and_fragment) => {
            let query = query_and_fragment
                .split_once('#')
                .map_or(query_and_fragment, |(query, _)| query);
            let received = target.get(..path_end + 1 + query.len()).unwrap_or(path);
            Ok((path, Some(query), received))
        }
        None => Ok((path, None, path)),
    }
}

fn check_path_bytes(path: &str) -> Result<(), Rejection> {
    for &b in path.as_bytes() {
        match b {
            0x80..=0xff => return Err(bad("non-ASCII byte in path")),
            b' ' => return Err(bad("space in path")),
            0x00..=0x1f | 0x7f => return Err(bad("control byte in path")),
            _ => {}
        }
    }
    Ok(())
}

fn check_segments(segments: usize, opts: &CanonicalOptions) -> Result<(), Rejection> {
    if segments > opts.max_segments {
        return Err(too_long("too many path segments"));
    }
    Ok(())
}

fn count_slashes(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'/').count()
}

/// One unit of a path after the percent pass.
#[derive(Debug, Clone, Copy)]
enum Tok {
    /// A segment separator; `true` when it was a `\`.
    Sep(bool),
    /// A byte kept as received.
    Lit(u8),
    /// An escape of an unreserved character, decoded.
    Decoded(u8),
    /// An escape kept encoded; `lower` when its hex digits were not upper-case.
    Kept { value: u8, lower: bool },
}

/// Splits a path (already checked to be visible ASCII) into [`Tok`]s.
struct Tokens<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Tokens<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Tokens { bytes, pos: 0 }
    }

    fn escape(&mut self) -> Result<Tok, Rejection> {
        let hi = self.bytes.get(self.pos).copied();
        let lo = self.bytes.get(self.pos + 1).copied();
        let (Some(hi), Some(lo)) = (hi, lo) else {
            return Err(bad("malformed percent-encoding in path"));
        };
        self.pos += 2;
        escape_tok(hi, lo)
    }
}

/// The token of the escape `%` `hi` `lo`.
fn escape_tok(hi: u8, lo: u8) -> Result<Tok, Rejection> {
    let (Some(hi_val), Some(lo_val)) = (hex_value(hi), hex_value(lo)) else {
        return Err(bad("malformed percent-encoding in path"));
    };
    match (hi_val << 4) | lo_val {
        0 => Err(bad("encoded NUL in path")),
        b'/' => Err(bad("encoded slash in path")),
        b'\\' => Err(bad("encoded backslash in path")),
        value if is_unreserved(value) => Ok(Tok::Decoded(value)),
        value => Ok(Tok::Kept {
            value,
            lower: hi.is_ascii_lowercase() || lo.is_ascii_lowercase(),
        }),
    }
}

/// Appends what a byte or escape becomes in the canonical path; separators are the caller's.
fn push_tok(out: &mut Vec<u8>, tok: Tok) {
    match tok {
        Tok::Lit(b) | Tok::Decoded(b) => out.push(b),
        Tok::Kept { value, .. } => {
            out.extend_from_slice(&[b'%', hex_digit(value >> 4), hex_digit(value)]);
        }
        Tok::Sep(_) => {}
    }
}

impl Iterator for Tokens<'_> {
    type Item = Result<Tok, Rejection>;

    fn next(&mut self) -> Option<Self::Item> {
        let b = *self.bytes.get(self.pos)?;
        self.pos += 1;
        Some(match b {
            b'/' => Ok(Tok::Sep(false)),
            b'\\' => Ok(Tok::Sep(true)),
            b'%' => self.escape(),
            _ => Ok(Tok::Lit(b)),
        })
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn hex_digit(n: u8) -> u8 {
    let n = n & 0x0f;
    if n < 10 {
        b'0' + n
    } else {
        b'A' + n - 10
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// What a segment looks like so far, after decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lead {
    Empty,
    Dot,
    DotDot,
    Other,
}

impl Lead {
    fn step(self, tok: Tok) -> Result<Lead, Rejection> {
        let dot = matches!(tok, Tok::Lit(b'.') | Tok::Decoded(b'.'));
        // `%3B` counts too: some backends decode it before stripping parameters.
        let semicolon = matches!(tok, Tok::Lit(b';') | Tok::Kept { value: b';', .. });
        match self {
            Lead::Empty if dot => Ok(Lead::Dot),
            Lead::Dot if dot => Ok(Lead::DotDot),
            // `..;x` is `..` to servlet containers but an ordinary name here.
            Lead::Dot | Lead::DotDot if semicolon => {
                Err(bad("dot segment with path parameters in path"))
            }
            _ => Ok(Lead::Other),
        }
    }

    fn is_dots(self) -> bool {
        matches!(self, Lead::Dot | Lead::DotDot)
    }
}

/// Validate the path after its leading `/` and report whether its canonical
/// form differs, plus its segment count when it does not.
fn scan(rest: &[u8]) -> Result<(bool, usize), Rejection> {
    let mut changed = false;
    let mut segments = 1usize;
    let mut lead = Lead::Empty;
    for tok in Tokens::new(rest) {
        let tok = tok?;
        match tok {
            Tok::Sep(backslash) => {
                // An empty segment before a separator is a `//` to merge.
                changed |= backslash || lead != Lead::Other;
                segments += 1;
                lead = Lead::Empty;
                continue;
            }
            Tok::Decoded(_) => changed = true,
            Tok::Kept { lower, .. } => changed |= lower,
            Tok::Lit(_) => {}
        }
        lead = lead.step(tok)?;
    }
    // A final empty segment is a trailing slash, which is kept.
    changed |= lead.is_dots();
    Ok((changed, segments))
}

/// Build the canonical path from the path after its leading `/`.
///
/// Dot segments are removed as in RFC 3986 §5.2.4 with an output buffer
/// where `..` truncates back to the previous `/`: every byte is pushed and
/// popped at most once, so this is linear. Runs of `/` are merged afterwards.
fn rebuild(rest: &[u8], capacity: usize) -> Result<Vec<u8>, Rejection> {
    let mut out = Vec::with_capacity(capacity);
    let mut seg_start = 0;
    let mut lead = Lead::Empty;
    out.push(b'/');
    for tok in Tokens::new(rest) {
        let tok = tok?;
        match tok {
            Tok::Sep(_) => {
                end_segment(&mut out, seg_start, lead);
                seg_start = out.len();
                out.push(b'/');
                lead = Lead::Empty;
                continue;
            }
            Tok::Lit(_) | Tok::Decoded(_) | Tok::Kept { .. } => push_tok(&mut out, tok),
        }
        lead = lead.step(tok)?;
    }
    end_segment(&mut out, seg_start, lead);
    // `/a/.` and `/a/b/..` end in a directory: keep the trailing slash.
    if lead.is_dots() {
        out.push(b'/');
    }
    out.dedup_by(|a, b| *a == b'/' && *b == b'/');
    Ok(out)
}

fn end_segment(out: &mut Vec<u8>, seg_start: usize, lead: Lead) {
    match lead {
        Lead::Dot => out.truncate(seg_start),
        Lead::DotDot => {
            out.truncate(seg_start);
            // Drop the previous segment; above the root there is nothing to drop.
            let prev = out.iter().rposition(|&b| b == b'/').unwrap_or(0);
            out.truncate(prev);
        }
        Lead::Empty | Lead::Other => {}
    }
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
    use std::time::{Duration, Instant};

    fn opts() -> CanonicalOptions {
        CanonicalOptions::default()
    }

    fn host(authority: &str) -> Result<RequestHost, Rejection> {
        canonical_host(authority, &opts())
    }

    fn name(authority: &str) -> String {
        match host(authority) {
            Ok(RequestHost::Name(name)) => name.as_str().to_owned(),
            other => panic!("{authority:?}: expected a name, got {other:?}"),
        }
    }

    fn assert_host_400(authority: &str) {
        let err = host(authority).expect_err(authority);
        assert_eq!(err.status(), RejectStatus::BadRequest, "{authority:?}");
    }

    fn path_with(target: &str, options: &CanonicalOptions) -> Result<String, Rejection> {
        canonical_path(target, options).map(|p| p.path().to_owned())
    }

    fn path(target: &str) -> Result<String, Rejection> {
        path_with(target, &opts())
    }

    fn assert_paths(cases: &[(&str, &str)]) {
        for &(input, expected) in cases {
            assert_eq!(path(input).as_deref(), Ok(expected), "{input:?}");
        }
    }

    fn assert_path_400(target: &str) {
        let err = path(target).expect_err(target);
        assert_eq!(err.status(), RejectStatus::BadRequest, "{target:?}");
    }

    fn request(version: Version, uri: &str, hosts: &[&str]) -> Request<()> {
        let mut builder = Request::builder().version(version).uri(uri);
        for &h in hosts {
            builder = builder.header(http::header::HOST, h);
        }
        builder.body(()).unwrap()
    }

    fn routed_host(req: &Request<()>) -> Result<RequestHost, Rejection> {
        request_host(req, &opts())
    }

    fn routed_name(req: &Request<()>) -> Option<String> {
        routed_host(req).unwrap().name().map(str::to_owned)
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
    fn host_is_lower_cased() {
        assert_eq!(name("A.Foo.com:8080"), "a.foo.com");
        assert_eq!(name("EXAMPLE.ORG"), "example.org");
        assert_eq!(name("already.lower"), "already.lower");
        assert_eq!(name("my_host-1.example"), "my_host-1.example");
    }

    #[test]
    fn host_port_is_dropped_and_validated() {
        assert_eq!(name("foo.com:80"), "foo.com");
        assert_eq!(name("foo.com:0"), "foo.com");
        assert_eq!(name("foo.com:65535"), "foo.com");
        for bad_port in [
            "foo.com:",
            "foo.com:65536",
            "foo.com:123456",
            "foo.com:8a",
            "foo.com:-1",
            "foo.com:+80",
            "foo.com:80:80",
            "[::1]:",
            "[::1]:99999",
            "[::1]x",
        ] {
            assert_host_400(bad_port);
        }
    }

    #[test]
    fn host_trailing_dot_dropped_once() {
        assert_eq!(name("foo.com."), "foo.com");
        assert_eq!(name("Foo.com.:443"), "foo.com");
        assert_host_400("foo.com..");
        assert_host_400(".");
    }

    #[test]
    fn host_empty_label_rejected() {
        for h in ["", ":80", "foo..com", ".foo.com", "a..", "..", ".:80"] {
            assert_host_400(h);
        }
    }

    #[test]
    fn host_userinfo_rejected() {
        assert_host_400("user@foo.com");
        assert_host_400("user:pass@foo.com:80");
        assert_host_400("@foo.com");
    }

    #[test]
    fn host_percent_rejected() {
        assert_host_400("foo%2ecom");
        assert_host_400("[fe80::1%25eth0]");
    }

    #[test]
    fn host_slash_rejected() {
        assert_host_400("foo.com/evil");
        assert_host_400("/");
        assert_host_400("foo.com\\evil");
    }

    #[test]
    fn host_whitespace_rejected() {
        for h in [
            "foo .com",
            " foo.com",
            "foo.com ",
            "foo\t.com",
            "foo\n.com",
            "foo\0",
        ] {
            assert_host_400(h);
        }
    }

    #[test]
    fn host_non_ascii_rejected() {
        assert_host_400("bücher.de");
        assert_host_400("ex\u{0430}mple.com");
        // Other punctuation is outside the host alphabet too.
        for h in ["foo,com", "foo;com", "foo*com", "[foo", "foo]", "::1"] {
            assert_host_400(h);
        }
    }

    #[test]
    fn ipv4_literal_is_ip() {
        assert_eq!(host("127.0.0.1"), Ok(RequestHost::Ip));
        assert_eq!(host("10.1.2.3:8080"), Ok(RequestHost::Ip));
        assert_eq!(host("10.1.2.3."), Ok(RequestHost::Ip));
        assert_eq!(host("127.0.0.1").unwrap().name(), None);
        // Numeric forms that are not dotted-quad IPv4 are not names either.
        for h in ["1.2.3", "999.1.1.1", "1.2.3.4.5", "2130706433", "010.0.0.1"] {
            assert_host_400(h);
        }
        assert_eq!(name("1.2.3.com"), "1.2.3.com");
    }

    #[test]
    fn ipv6_literal_is_ip() {
        assert_eq!(host("[::1]"), Ok(RequestHost::Ip));
        assert_eq!(host("[::1]:8080"), Ok(RequestHost::Ip));
        assert_eq!(host("[2001:DB8::1]"), Ok(RequestHost::Ip));
        for h in ["[::1", "[not-ip]", "[]", "[v1.x]", "[::1]]"] {
            assert_host_400(h);
        }
    }

    #[test]
    fn host_too_long_rejected() {
        let label = "a".repeat(63);
        let max = format!("{label}.{label}.{label}.{}", "a".repeat(61));
        assert_eq!(max.len(), 253);
        assert_eq!(name(&max), max);
        assert_eq!(name(&format!("{max}.:80")), max);
        assert_host_400(&format!("{max}b"));
        assert_host_400(&format!("{}.com", "a".repeat(64)));
        assert_host_400(&"a.".repeat(100_000));

        let small = CanonicalOptions {
            max_host_len: 7,
            ..opts()
        };
        assert!(canonical_host("foo.com", &small).is_ok());
        assert_eq!(
            canonical_host("foo.comm", &small).unwrap_err().status(),
            RejectStatus::BadRequest
        );
        let huge = CanonicalOptions {
            max_host_len: usize::MAX,
            ..opts()
        };
        assert!(canonical_host(&format!("{max}b"), &huge).is_err());
    }

    #[test]
    fn path_fragment_cut() {
        assert_paths(&[("/a#frag", "/a"), ("/a/b#x/../y", "/a/b"), ("#x", "/")]);
        let p = canonical_path("/a?q=1#frag", &opts()).unwrap();
        assert_eq!((p.path(), p.query()), ("/a", Some("q=1")));
        assert_eq!(p.path_and_query(), "/a?q=1");
    }

    #[test]
    fn path_query_split_off_and_kept() {
        let p = canonical_path("/a/../b?x=/../%2F&y= #", &opts()).unwrap();
        assert_eq!(p.path(), "/b");
        assert_eq!(p.query(), Some("x=/../%2F&y= "));
        assert_eq!(p.path_and_query(), "/b?x=/../%2F&y= ");

        let p = canonical_path("/b?", &opts()).unwrap();
        assert_eq!((p.path(), p.query()), ("/b", Some("")));
        assert_eq!(p.path_and_query(), "/b?");

        let p = canonical_path("/b", &opts()).unwrap();
        assert_eq!(p.query(), None);

        let p = canonical_path("?x=1", &opts()).unwrap();
        assert_eq!((p.path(), p.query()), ("/", Some("x=1")));
        assert_eq!(p.path_and_query(), "/?x=1");
    }

    #[test]
    fn path_control_bytes_rejected() {
        for target in ["/a\0b", "/a\r\nb", "/a\tb", "/a\x7fb", "/\x1b"] {
            assert_path_400(target);
        }
    }

    #[test]
    fn path_space_rejected() {
        assert_path_400("/a b");
        assert_path_400("/ ");
    }

    #[test]
    fn path_non_ascii_rejected() {
        assert_path_400("/caf\u{e9}");
        assert_path_400("/\u{2215}etc");
    }

    #[test]
    fn path_bad_percent_triplet_rejected() {
        for target in ["/a%", "/a%2", "/a%zz", "/a%2g", "/a%%41", "/%-1"] {
            assert_path_400(target);
        }
    }

    #[test]
    fn path_percent_00_rejected() {
        assert_path_400("/a%00b");
        assert_path_400("/a%00");
    }

    #[test]
    fn path_encoded_slash_rejected() {
        assert_path_400("/admin%2F");
        assert_path_400("/a%2fb");
        assert_path_400("/a%2F..%2Fb");
    }

    #[test]
    fn path_encoded_backslash_rejected() {
        assert_path_400("/a%5Cb");
        assert_path_400("/a%5cb");
    }

    #[test]
    fn path_unreserved_decoded() {
        assert_paths(&[
            ("/%41%62%7E%2D%2e%5F%30", "/Ab~-._0"),
            ("/a%2Db", "/a-b"),
            ("/%7euser", "/~user"),
        ]);
    }

    #[test]
    fn path_reserved_kept_upper_hex() {
        assert_paths(&[
            ("/a%3ab", "/a%3Ab"),
            ("/a%3Ab", "/a%3Ab"),
            ("/%25", "/%25"),
            ("/%2541", "/%2541"),
            ("/%ff%Fe", "/%FF%FE"),
            ("/%20", "/%20"),
            ("/%3f%23", "/%3F%23"),
        ]);
    }

    #[test]
    fn path_backslash_becomes_slash() {
        assert_paths(&[
            ("/a\\b", "/a/b"),
            ("/a\\..\\b", "/b"),
            ("/\\\\evil.com", "/evil.com"),
        ]);
        assert_path_400("\\a");
    }

    #[test]
    fn path_dot_semicolon_segment_rejected() {
        for target in [
            "/a/..;/admin",
            "/a/..;jsessionid=1/b",
            "/.;x",
            "/a/%2e%2e;x/b",
            "/a/%2E;",
            "/a/..%3B/b",
            "/a/.%3bx",
        ] {
            assert_path_400(target);
        }
        assert_paths(&[
            ("/a;x", "/a;x"),
            ("/;", "/;"),
            ("/...;x", "/...;x"),
            ("/a.;b", "/a.;b"),
        ]);
    }

    #[test]
    fn path_dot_segments_removed() {
        assert_paths(&[
            ("/public/../admin", "/admin"),
            ("/public/%2e%2e/admin", "/admin"),
            ("/public/%2E%2e/admin", "/admin"),
            ("/a/./b", "/a/b"),
            ("/a/%2e/b", "/a/b"),
            ("/a/b/../c", "/a/c"),
            ("/a/b/../../c", "/c"),
            ("/a/.%2e/c", "/c"),
            ("/.", "/"),
            ("/a/..b/c.", "/a/..b/c."),
            ("/a/.../b", "/a/.../b"),
        ]);
    }

    #[test]
    fn path_dotdot_above_root_dropped() {
        assert_paths(&[
            ("/..", "/"),
            ("/../a", "/a"),
            ("/../../../etc/passwd", "/etc/passwd"),
            ("/a/../../b", "/b"),
        ]);
    }

    #[test]
    fn path_slash_runs_merged() {
        assert_paths(&[
            ("//a///b", "/a/b"),
            ("//", "/"),
            ("/a//", "/a/"),
            ("///", "/"),
            // Dot segments are removed before merging, as the contract orders it.
            ("/a//../b", "/a/b"),
        ]);
    }

    #[test]
    fn path_case_preserved() {
        assert_paths(&[("/Admin/PANEL", "/Admin/PANEL"), ("/%41dmin", "/Admin")]);
    }

    #[test]
    fn path_trailing_slash_kept() {
        assert_paths(&[
            ("/foo/", "/foo/"),
            ("/foo/.", "/foo/"),
            ("/foo/..", "/"),
            ("/a/b/..", "/a/"),
            ("/foo", "/foo"),
            ("", "/"),
            ("/", "/"),
        ]);
    }

    #[test]
    fn path_origin_form_required() {
        assert_path_400("*");
        assert_path_400("a/b");
        assert_path_400("http://x/a");
        let err = path("*").unwrap_err();
        assert!(err.reason().contains("asterisk"), "{err}");
    }

    #[test]
    fn strict_mode_rejects_non_canonical() {
        let strict = CanonicalOptions {
            mode: PathMode::Strict,
            ..opts()
        };
        for target in ["/a/../b", "//a", "/%41", "/a%3a", "/a\\b", "/a/.", "/a/"] {
            let result = canonical_path(target, &strict);
            if target == "/a/" {
                assert_eq!(result.unwrap().path(), "/a/");
            } else {
                let err = result.expect_err(target);
                assert_eq!(err.status(), RejectStatus::BadRequest);
                assert_eq!(err.reason(), "path is not in canonical form");
            }
        }
        let p = canonical_path("/a/b%3A?x=..", &strict).unwrap();
        assert_eq!((p.path(), p.is_modified()), ("/a/b%3A", false));
        assert_eq!(path_with("", &strict).as_deref(), Ok("/"));
        assert!(canonical_path("/a%2F", &strict).is_err());
    }

    #[test]
    fn raw_mode_keeps_path() {
        let raw = CanonicalOptions {
            mode: PathMode::Raw,
            ..opts()
        };
        for target in [
            "/a/../b", "//a", "/%2e%2E", "/a%2Fb", "/a\\b", "/..;x", "/a%zz",
        ] {
            let p = canonical_path(target, &raw).unwrap();
            assert_eq!(p.path(), target);
            assert!(!p.is_modified());
            assert!(matches!(p.into_path(), Cow::Borrowed(_)));
        }
        let p = canonical_path("/a/../b?q#f", &raw).unwrap();
        assert_eq!((p.path(), p.query()), ("/a/../b", Some("q")));
        for target in ["/a b", "/a\0", "/\u{e9}", "*", "a"] {
            assert!(canonical_path(target, &raw).is_err(), "{target:?}");
        }
        let few = CanonicalOptions {
            max_segments: 2,
            ..raw.clone()
        };
        assert!(canonical_path("/a/b", &few).is_ok());
        assert_eq!(
            canonical_path("/a//b", &few).unwrap_err().status(),
            RejectStatus::UriTooLong
        );
    }

    #[test]
    fn path_too_long_is_414() {
        let o = CanonicalOptions {
            max_path_len: 8,
            ..opts()
        };
        assert!(canonical_path("/2345678", &o).is_ok());
        assert!(canonical_path("/2345678?long-query-is-fine#and-fragment", &o).is_ok());
        for target in ["/23456789", "/23456789?q", "/23456789#f", "/a/./../b/"] {
            let err = canonical_path(target, &o).expect_err(target);
            assert_eq!(err.status(), RejectStatus::UriTooLong, "{target:?}");
        }
        let long = format!("/{}", "a".repeat(8192));
        assert_eq!(path(&long).unwrap_err().status(), RejectStatus::UriTooLong);
        assert!(path(&long[..8192]).is_ok());
    }

    #[test]
    fn too_many_segments_is_414() {
        let at_limit = "/a".repeat(256);
        assert!(path(&at_limit).is_ok());
        let over = "/a".repeat(257);
        assert_eq!(path(&over).unwrap_err().status(), RejectStatus::UriTooLong);
        // Counted on the canonical path: collapsed segments do not count.
        let collapsing = format!("{}{}", "/a/..".repeat(300), "/b");
        assert_eq!(path(&collapsing).as_deref(), Ok("/b"));
        let merging = format!("{}b", "/".repeat(1000));
        assert_eq!(path(&merging).as_deref(), Ok("/b"));
        assert_eq!(
            path(&format!("{at_limit}/")).unwrap_err().status(),
            RejectStatus::UriTooLong
        );
    }

    #[test]
    fn canonical_path_borrows_when_unchanged() {
        for target in [
            "/",
            "/a/b",
            "/a/b/",
            "/a%3Ab;c=d/e.f",
            "/~x/-y/_z/...",
            "/a?b=../",
        ] {
            let p = canonical_path(target, &opts()).unwrap();
            assert!(!p.is_modified(), "{target:?}");
            assert!(matches!(p.path_and_query(), Cow::Borrowed(s) if s == target));
            assert!(matches!(p.into_path(), Cow::Borrowed(_)), "{target:?}");
        }
        let p = canonical_path("/a/./b?q", &opts()).unwrap();
        assert!(p.is_modified());
        assert!(matches!(p.clone().into_path(), Cow::Owned(_)));
        assert_eq!(p.path_and_query(), "/a/b?q");
        assert!(canonical_path("", &opts()).unwrap().is_modified());
    }

    #[test]
    fn canonicalisation_is_linear() {
        let big = CanonicalOptions {
            max_path_len: 4 << 20,
            max_segments: 1 << 20,
            ..opts()
        };
        let n = 1 << 20;
        let inputs = [
            "/..".repeat(n / 3),
            format!("/{}", "%2e%2e/".repeat(n / 7)),
            format!("{}{}", "/a".repeat(n / 4), "/..".repeat(n / 6)),
            format!("/{}{}", "b".repeat(n / 2), "/..".repeat(n / 6)),
            "/".repeat(n),
            format!("/{}", "./".repeat(n / 2)),
        ];
        let start = Instant::now();
        for input in &inputs {
            let p = canonical_path(input, &big).unwrap();
            assert!(p.path().len() <= input.len());
            let strict = CanonicalOptions {
                mode: PathMode::Strict,
                ..big.clone()
            };
            assert!(canonical_path(input, &strict).is_err());
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(canonical_path(&inputs[0], &big).unwrap().path(), "/");
        assert_eq!(canonical_path(&inputs[1], &big).unwrap().path(), "/");

        // The default limit rejects a huge path without scanning it all.
        let huge = "/".repeat(16 << 20);
        let start = Instant::now();
        assert_eq!(path(&huge).unwrap_err().status(), RejectStatus::UriTooLong);
        assert!(start.elapsed() < Duration::from_millis(500));
    }

    #[test]
    fn absolute_form_authority_wins_over_host() {
        let req = request(Version::HTTP_11, "http://A.Foo.com:8080/x", &["other.com"]);
        assert_eq!(routed_name(&req).as_deref(), Some("a.foo.com"));
        // HTTP/1.1 still needs one valid Host (RFC 9112 §3.2), even though it is not routed on.
        let req = request(Version::HTTP_11, "http://a.com/x", &["bad host"]);
        assert_eq!(
            routed_host(&req).unwrap_err().status(),
            RejectStatus::BadRequest
        );
        let req = request(Version::HTTP_11, "http://a.com/x", &[]);
        assert_eq!(
            routed_host(&req).unwrap_err().reason(),
            "missing Host header"
        );
        let req = request(Version::HTTP_10, "http://a.com/x", &[]);
        assert_eq!(routed_name(&req).as_deref(), Some("a.com"));
        let req = request(Version::HTTP_11, "http://user@a.com/x", &["a.com"]);
        assert_eq!(routed_host(&req).unwrap_err().reason(), "userinfo in host");
        let req = request(Version::HTTP_11, "http://10.0.0.1/x", &["a.com"]);
        assert_eq!(routed_host(&req), Ok(RequestHost::Ip));
    }

    #[test]
    fn h2_authority_wins() {
        for version in [Version::HTTP_2, Version::HTTP_3] {
            let req = request(version, "https://Foo.com/x", &[]);
            assert_eq!(routed_name(&req).as_deref(), Some("foo.com"));
            // Same host, different port or case: agrees.
            let req = request(version, "https://foo.com:443/x", &["FOO.com.:8443"]);
            assert_eq!(routed_name(&req).as_deref(), Some("foo.com"));
            let req = request(version, "https://[::1]/x", &["[0::1]:80"]);
            assert_eq!(routed_host(&req), Ok(RequestHost::Ip));
            // No :authority: Host is used instead.
            let req = request(version, "/x", &["bar.com"]);
            assert_eq!(routed_name(&req).as_deref(), Some("bar.com"));
        }
    }

    #[test]
    fn h2_host_disagreeing_with_authority_is_400() {
        for (authority, host_header) in [
            ("https://foo.com/x", "bar.com"),
            ("https://foo.com/x", "foo.com.evil"),
            ("https://127.0.0.1/x", "127.0.0.2"),
            ("https://[::1]/x", "127.0.0.1"),
            ("https://foo.com/x", "bad host"),
        ] {
            for version in [Version::HTTP_2, Version::HTTP_3] {
                let req = request(version, authority, &[host_header]);
                let err = routed_host(&req).expect_err(host_header);
                assert_eq!(err.status(), RejectStatus::BadRequest);
            }
        }
        let req = request(Version::HTTP_2, "/x", &[]);
        assert!(routed_host(&req).is_err());
    }

    #[test]
    fn http11_without_host_is_400() {
        let req = request(Version::HTTP_11, "/x", &[]);
        let err = routed_host(&req).unwrap_err();
        assert_eq!(err.status(), RejectStatus::BadRequest);
        assert_eq!(err.reason(), "missing Host header");
    }

    #[test]
    fn duplicate_host_is_400() {
        for version in [Version::HTTP_10, Version::HTTP_11, Version::HTTP_2] {
            let req = request(version, "/x", &["a.com", "a.com"]);
            assert_eq!(
                routed_host(&req).unwrap_err().reason(),
                "several Host header lines"
            );
            let req = request(version, "http://a.com/x", &["a.com", "b.com"]);
            assert!(routed_host(&req).is_err());
        }
    }

    #[test]
    fn invalid_host_header_is_400() {
        for value in ["", "a b", "a@b.com", "a.com/x", "a.com:99999", "a..com"] {
            let req = request(Version::HTTP_11, "/x", &[value]);
            let err = routed_host(&req).expect_err(value);
            assert_eq!(err.status(), RejectStatus::BadRequest, "{value:?}");
        }
        let mut req = request(Version::HTTP_11, "/x", &[]);
        req.headers_mut().insert(
            http::header::HOST,
            http::HeaderValue::from_bytes(b"caf\xe9.com").unwrap(),
        );
        assert_eq!(
            routed_host(&req).unwrap_err().reason(),
            "Host header is not visible ASCII"
        );
    }

    #[test]
    fn http10_without_host_is_hostless() {
        let req = request(Version::HTTP_10, "/x", &[]);
        assert_eq!(routed_host(&req), Ok(RequestHost::None));
        assert_eq!(routed_host(&req).unwrap().name(), None);
        let req = request(Version::HTTP_09, "/x", &[]);
        assert_eq!(routed_host(&req), Ok(RequestHost::None));
        let req = request(Version::HTTP_10, "/x", &["Foo.com"]);
        assert_eq!(routed_name(&req).as_deref(), Some("foo.com"));
    }

    #[test]
    fn forwarded_headers_ignored() {
        let mut req = request(Version::HTTP_11, "/x", &["real.com"]);
        let headers = req.headers_mut();
        headers.insert("x-forwarded-host", "evil.com".parse().unwrap());
        headers.insert("forwarded", "host=evil.com".parse().unwrap());
        assert_eq!(routed_name(&req).as_deref(), Some("real.com"));

        let mut req = request(Version::HTTP_10, "/x", &[]);
        req.headers_mut()
            .insert("x-forwarded-host", "evil.com".parse().unwrap());
        assert_eq!(routed_host(&req), Ok(RequestHost::None));
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

    #[test]
    fn authority_form_target_is_400() {
        // `GET b.com` would otherwise route on b.com, not on the Host a.com, and path `/`.
        for version in [Version::HTTP_10, Version::HTTP_11, Version::HTTP_2] {
            for target in ["b.com", "b.com:443", "admin"] {
                let req = request(version, target, &["a.com"]);
                let err = canonicalize_request(&req, &opts()).unwrap_err();
                assert_eq!(
                    err.status(),
                    RejectStatus::BadRequest,
                    "{version:?} {target}"
                );
                assert!(err.reason().contains("authority-form"), "{err}");
            }
        }
        // Absolute-form keeps routing on its authority.
        let req = request(Version::HTTP_11, "http://b.com/x", &["a.com"]);
        assert_eq!(routed_name(&req).as_deref(), Some("b.com"));
    }

    #[test]
    fn canonical_host_equality_ignores_spare_capacity() {
        let a = CanonicalHost::from_validated("Foo.com").unwrap();
        let b = CanonicalHost::from_validated("foo.com").unwrap();
        assert_eq!(a, b);
        assert_eq!(format!("{a:?}"), "CanonicalHost(\"foo.com\")");
        assert!(CanonicalHost::from_validated(&"a".repeat(254)).is_none());
    }

    /// Option sets that move the limits onto the inputs below.
    fn option_sets() -> Vec<CanonicalOptions> {
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

    /// The fast path answers only what the full pass answers, and
    /// `canonical_path` answers what the full pass answers.
    fn assert_fast_and_full_paths_agree(target: &str) {
        for o in option_sets() {
            let full = canonical_path_full(target, &o);
            if let Some(fast) = fast_canonical_path(target, &o) {
                assert_eq!(Ok(fast), full, "{target:?} {o:?}");
            }
            if let Some(rewritten) = rewrite_path(target, &o) {
                assert_eq!(Ok(rewritten), full, "{target:?} {o:?}");
            }
            assert_eq!(canonical_path(target, &o), full, "{target:?} {o:?}");
        }
    }

    /// Likewise for hosts; names from the fast path also leave the spare
    /// capacity zeroed.
    fn assert_fast_and_full_hosts_agree(authority: &str) {
        for o in option_sets() {
            let full = parse_host_full(authority, &o);
            let mut host = CanonicalHost::EMPTY;
            if fast_host(authority.as_bytes(), &o, &mut host).is_some() {
                let len = usize::from(host.len);
                assert!(host.buf[len..].iter().all(|&b| b == 0), "{authority:?}");
                assert_eq!(Ok(ParsedHost::Name(host)), full, "{authority:?} {o:?}");
            }
            assert_eq!(parse_host(authority, &o), full, "{authority:?} {o:?}");
            assert_eq!(
                canonical_host(authority, &o),
                full.map(RequestHost::from),
                "{authority:?} {o:?}"
            );
        }
    }

    const TRICKY_PATHS: &[&str] = &[
        "/.well-known/x",
        "/a/..b",
        "/a/b.",
        "/a/.b/",
        "/a%41",
        "/a//b",
        "/a\\b",
        "/..;x",
        "/a/b/",
        "/",
        "/a?b",
        "/a#b",
        "/%2e",
        "",
        "?",
        "#",
        "*",
        "a",
        "//",
        "/.",
        "/..",
        "/...",
        "/./",
        "/../",
        "/.;",
        "/..;",
        "/...;",
        "/.a;",
        "/a/.",
        "/a/..",
        "/a/..?x",
        "/a/.#x",
        "/a/./?x",
        "/;",
        "/;/",
        "/a;.",
        "/a/;..",
        "/a b",
        "/a\tb",
        "/a\u{7f}",
        "/caf\u{e9}",
        "/a?b#c",
        "/a?b?c#d#e",
        "/a#b?c",
        "/a??",
        "/a?#",
        "/a?%zz/../",
        "/api/v2/orders/17?page=1",
        "/api/v2/orders/17",
        "/abcdefg/",
        "/abcdefgh",
        "/abcdefg//",
        "/abcdefg/.",
        "/abcdefg/.hij",
        "/abcdefg/..",
        "/abcdefg/../x",
        "/abcdefgh/.ijklmnop",
        "/abcdefgh/ijklmno/",
        "/abcdefgh/ijklmno/.",
        "/abcdefgh/ijklmno//",
        "/abcdefgh/ijklmnop?q",
        "/abcdefgh/ijklmnop#f",
        "/abcdef%/ijklmnop",
        "/abcdef\\/ijklmnop",
        "/abcdefg?hijklmnop",
        "/abcdefg#hijklmnop",
        "/abcdefg\u{0}hijklmn",
        "/a/b/c/d/e/f/g/h/i/j",
        "/12345678",
        "/123456789",
        "/1234567?",
        "/12345678?",
        "/a/b",
        "/a/b/c",
        "/~x/-y/_z/...",
        "/a%3Ab;c=d/e.f",
    ];

    #[test]
    fn fast_path_agrees_with_full_path() {
        for &target in TRICKY_PATHS {
            assert_fast_and_full_paths_agree(target);
        }
        // Common canonical targets do take the fast path.
        for target in [
            "/api/v2/orders/17?page=1",
            "/",
            "/a/b/",
            "/a/b.",
            "/.well-known/acme-challenge/token",
            "/a/..b",
            "/a/.b/",
            "/...",
            "/a;b/c?x#y",
            "/abcdefgh/ijklmnop/qrstuvw/xyz",
        ] {
            assert!(fast_canonical_path(target, &opts()).is_some(), "{target:?}");
        }
        // Everything that changes or is rejected leaves the fast path.
        for target in [
            "/a%41", "/a//b", "/a\\b", "/..;x", "/%2e", "/a/.", "/a/..", "/.", "//", "",
        ] {
            assert!(fast_canonical_path(target, &opts()).is_none(), "{target:?}");
        }
        // The common rewrites, and canonical escapes, take the one-pass rewrite ...
        for (target, expected, modified) in [
            ("/a%41?x=1", "/aA", true),
            ("/a//b", "/a/b", true),
            ("/a\\b/", "/a/b/", true),
            ("/x/../a/./b", "/a/b", true),
            ("/a/b/..", "/a/", true),
            ("//a//..//b", "/a/b", true),
            ("/%2e%2E/a", "/a", true),
            ("/a%3b/%7e", "/a%3B/~", true),
            ("/a%20b/%3B", "/a%20b/%3B", false),
        ] {
            let path = rewrite_path(target, &opts()).expect(target);
            assert_eq!(
                (path.path(), path.is_modified()),
                (expected, modified),
                "{target:?}"
            );
            assert_fast_and_full_paths_agree(target);
        }
        // ... and whatever is rejected is left to the full pass, for its reasons.
        for target in [
            "/..;x", "/a%2Fb", "/a%00", "/a%zz", "/a%4", "/a b", "/\u{e9}", "", "*",
        ] {
            assert!(rewrite_path(target, &opts()).is_none(), "{target:?}");
        }
    }

    #[test]
    fn fast_host_agrees_with_full_parser() {
        let label = "a".repeat(63);
        let max = format!("{label}.{label}.{label}.{}", "a".repeat(61));
        let long_hosts = [
            format!("{label}.com"),
            format!("{label}b.com"),
            format!("x.{label}"),
            format!("x.{label}b"),
            format!("x.{label}."),
            format!("x.{label}b."),
            format!("x.{label}:80"),
            max.clone(),
            format!("{max}."),
            format!("{max}.:80"),
            format!("{max}:80"),
            format!("{max}b"),
            format!("{}.com", "a".repeat(64)),
            "a.".repeat(126),
            "a.".repeat(127),
            format!("{}a", "a.".repeat(126)),
            "1.".repeat(100),
        ];
        let hosts = [
            "SVC0.example.com:8080",
            "SVC0.example.com",
            "svc0.example.com",
            "A.Foo.com:8080",
            "foo.com.",
            "Foo.com.:443",
            "foo.com..",
            ".",
            "..",
            "",
            ":",
            ":80",
            ".:80",
            "a:",
            "a:0",
            "a:65535",
            "a:65536",
            "a:123456",
            "a:00080",
            "a:8a",
            "a:+80",
            "a:80:80",
            "a::80",
            "foo..com",
            ".foo.com",
            "a..",
            "my_host-1.example",
            "-.com",
            "_",
            "-",
            "1-2.3",
            "1.2.3.4",
            "1.2.3.4:80",
            "1.2.3.4.",
            "1.2.3",
            "1.2.3.",
            "010.0.0.1",
            "2130706433",
            "999.1.1.1",
            "1.2.3.com",
            "1_2.3",
            "[::1]",
            "[::1]:80",
            "[::1]x",
            "[v1.x]",
            "user@foo.com",
            "foo%2ecom",
            "foo.com/evil",
            "foo.com\\evil",
            "foo .com",
            "foo\t.com",
            "foo\u{0}",
            "foo.com\u{0}",
            "b\u{fc}cher.de",
            "foo,com",
            "foo*com",
            "abcdefg.",
            "abcdefgh",
            "abcdefgh.",
            "abcdefg.h",
            "abcdefgh.ijklmnop",
            "abcdefgh.ijklmnop.",
            "abcdefgh.ijklmnop:1",
            "abcdefgh..ijklmnop",
            "abcdefg..hijklmnop",
            "abcdefg.:8",
            "ABCDEFGH.IJKLMNOP.QRST",
            "abcdefgh:",
            "abcdefgh:1",
            "abcdefgh:12345",
            "abcdefgh:123456",
            "12345678",
            "12345678.9",
            "1234567-.9",
            "abcdefg\u{7f}",
            "abcdefg\u{e9}",
            ".abcdefgh",
            "abc.efg.ijk.mno.qrs",
            "[abcdefgh]",
        ];
        for authority in hosts
            .iter()
            .copied()
            .chain(long_hosts.iter().map(String::as_str))
        {
            assert_fast_and_full_hosts_agree(authority);
        }
        for authority in [
            "SVC0.example.com:8080",
            "a.b",
            "foo.com.",
            "x.y.z.:1",
            "1.2.3.com",
            "1-2.3",
            &max,
        ] {
            let mut host = CanonicalHost::EMPTY;
            assert!(
                fast_host(authority.as_bytes(), &opts(), &mut host).is_some(),
                "{authority:?}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn fast_and_full_paths_agree_on_random_targets(
            target in proptest::prop_oneof![
                "[/./;?#%2eEfF5cC\\a-c0-9 \u{7f}\u{e9}]{0,40}",
                // Mostly canonical: segments, dot segments, a query and a fragment.
                "(/(\\.{0,3}[a-c;]{0,9}|\\.{1,2};?|%2[eEfF]|\\\\)){0,7}/?(\\?[a-c/.%?]{0,5})?(#[a-c?]{0,3})?",
                "(/[a-c;.]{1,9}){0,7}/?(\\?[a-c/.%?]{0,5})?(#[a-c?]{0,3})?",
                // Rewrites: escapes of every kind, dot segments, runs of `/`, `\`.
                "((/|\\\\)(\\.{1,2}|[a-c;]{0,3}|%[0-7][0-9a-fA-F]){0,3}){0,8}(\\?[a-c%]{0,3})?",
            ],
        ) {
            assert_fast_and_full_paths_agree(&target);
        }

        #[test]
        fn fast_and_full_hosts_agree_on_random_authorities(
            authority in proptest::prop_oneof![
                "[.:a-cA-C0-9_\\-\\[\\]@% \u{0}\u{e9}]{0,30}",
                // Mostly names: labels of any length, a trailing dot, a port.
                "([a-cA-C0-9_-]{0,9}\\.){0,5}[a-cA-C0-9_-]{0,9}\\.?(:[0-9]{0,6})?",
                "([0-9]{1,3}\\.){0,4}[0-9]{0,3}\\.?(:[0-9]{1,5})?",
            ],
        ) {
            assert_fast_and_full_hosts_agree(&authority);
        }
    }
}
