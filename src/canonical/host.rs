//! Host canonicalisation: the host a request is routed on, taken from the target's authority
//! or the `Host` header, checked and lower-cased into an inline buffer.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use http::{Request, Version};

use super::{bad, bytes_in, CanonicalOptions, Rejection, MAX_DNS_NAME, ONES};

/// Longest DNS label.
const MAX_LABEL: usize = 63;

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
    let headers = req.headers();
    // No header has a second line (the usual request): the `Host` line, if any, is the only
    // one, and a plain look-up finds it for less than walking its lines.
    if headers.len() == headers.keys_len() {
        return headers.get(http::header::HOST);
    }
    let mut host_lines = headers.get_all(http::header::HOST).iter();
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

#[cfg(test)]
mod tests;
