//! Path canonicalisation: the path a request is routed on and forwarded with, in one pass for
//! the common cases and one token at a time for the rest.

use std::borrow::Cow;

use super::{bad, bytes_in, too_long, CanonicalOptions, PathMode, Rejection};

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

#[cfg(test)]
mod tests;
