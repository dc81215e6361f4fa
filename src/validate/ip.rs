//! IP addresses, as the apiserver parses them (`netutils.ParseIPSloppy`): IPv4 octets may carry
//! leading zeros (`010.1.2.3`) and IPv6 groups may be longer than four hex digits, so the std
//! parsers would call such hosts DNS names where the apiserver rejects them as IPs.

const PARSE_BIG: u32 = 0xFF_FFFF;

pub(super) fn is_ip_address(s: &str) -> bool {
    match s.bytes().find(|&c| c == b'.' || c == b':') {
        Some(b'.') => parse_ipv4(s.as_bytes()),
        Some(_) => parse_ipv6(s.as_bytes()),
        None => false,
    }
}

fn dtoi(s: &[u8]) -> Option<(u32, usize)> {
    let mut n = 0u32;
    let mut i = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        n = n * 10 + u32::from(s[i] - b'0');
        if n >= PARSE_BIG {
            return None;
        }
        i += 1;
    }
    (i > 0).then_some((n, i))
}

fn xtoi(s: &[u8]) -> Option<(u32, usize)> {
    let mut n = 0u32;
    let mut i = 0;
    while i < s.len() {
        let Some(d) = char::from(s[i]).to_digit(16) else {
            break;
        };
        n = n * 16 + d;
        if n >= PARSE_BIG {
            return None;
        }
        i += 1;
    }
    (i > 0).then_some((n, i))
}

fn parse_ipv4(mut s: &[u8]) -> bool {
    for i in 0..4 {
        if i > 0 {
            match s.split_first() {
                Some((b'.', rest)) => s = rest,
                _ => return false,
            }
        }
        match dtoi(s) {
            Some((n, c)) if n <= 0xFF => s = &s[c..],
            _ => return false,
        }
    }
    s.is_empty()
}

fn parse_ipv6(mut s: &[u8]) -> bool {
    let mut ellipsis: Option<usize> = None;
    if s.starts_with(b"::") {
        ellipsis = Some(0);
        s = &s[2..];
        if s.is_empty() {
            return true;
        }
    }
    let mut i = 0usize;
    while i < 16 {
        let Some((n, c)) = xtoi(s) else {
            return false;
        };
        if n > 0xFFFF {
            return false;
        }
        if s.get(c) == Some(&b'.') {
            // A trailing IPv4 address fills the last four bytes.
            if (ellipsis.is_none() && i != 12) || i + 4 > 16 || !parse_ipv4(s) {
                return false;
            }
            s = &[];
            i += 4;
            break;
        }
        i += 2;
        s = &s[c..];
        if s.is_empty() {
            break;
        }
        if s[0] != b':' || s.len() == 1 {
            return false;
        }
        s = &s[1..];
        if s[0] == b':' {
            if ellipsis.is_some() {
                return false;
            }
            ellipsis = Some(i);
            s = &s[1..];
            if s.is_empty() {
                break;
            }
        }
    }
    if !s.is_empty() {
        return false;
    }
    // `::` must stand for at least one group of zeros, and is needed unless all 16 bytes are given.
    (i < 16) == ellipsis.is_some()
}
