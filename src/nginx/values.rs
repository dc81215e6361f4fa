//! Annotation and ConfigMap values as ingress-nginx reads them: booleans, sizes, seconds,
//! address ranges.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// The most entries an address-range list may have.
pub(crate) const MAX_CIDRS: usize = 4096;

/// An IPv4 or IPv6 address range, `a.b.c.d/n` or `x::y/n`; a bare address is the range of
/// that address alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    bits: u8,
}

impl Cidr {
    /// Every IPv4 address, `0.0.0.0/0`.
    pub const ANY_V4: Cidr = Cidr {
        network: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        bits: 0,
    };

    /// Whether `ip` is in the range (an IPv4-mapped IPv6 address counts as its IPv4 one).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.bits)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.bits))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Cidr, String> {
        let (address, bits) = match text.split_once('/') {
            Some((address, bits)) => (address, Some(bits)),
            None => (text, None),
        };
        let network: IpAddr = address
            .parse()
            .map_err(|_| format!("{text:?} is not an address or address range"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            None => max,
            Some(bits) => bits
                .parse::<u8>()
                .ok()
                .filter(|b| *b <= max && !bits.starts_with('+'))
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0 to {max}"))?,
        };
        Ok(Cidr { network, bits })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.bits)
    }
}

/// A comma-separated list of ranges, at most [`MAX_CIDRS`] of them.
pub(crate) fn cidrs(text: &str) -> Result<Vec<Cidr>, String> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if out.len() == MAX_CIDRS {
            return Err(format!("more than {MAX_CIDRS} address ranges"));
        }
        out.push(part.parse()?);
    }
    Ok(out)
}

/// A boolean as Go's `strconv.ParseBool` reads it.
pub(crate) fn boolean(text: &str) -> Option<bool> {
    match text.trim() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// A size in nginx's units: digits and an optional `b`, `k`, `m` or `g` (any case).
pub(crate) fn size(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, unit) = match text.as_bytes().last()? {
        b'0'..=b'9' => (text, 1),
        b'b' | b'B' => (&text[..text.len() - 1], 1),
        b'k' | b'K' => (&text[..text.len() - 1], 1 << 10),
        b'm' | b'M' => (&text[..text.len() - 1], 1 << 20),
        b'g' | b'G' => (&text[..text.len() - 1], 1 << 30),
        _ => return None,
    };
    if digits.is_empty() || digits.len() > 19 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(unit)
}

/// Whole seconds, from 0 to a day.
pub(crate) fn seconds(text: &str) -> Option<u32> {
    let text = text.trim();
    let text = text.strip_suffix('s').unwrap_or(text);
    if text.is_empty() || text.len() > 6 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|s| *s <= 86_400)
}

/// A non-negative integer of at most nine digits.
pub(crate) fn count(text: &str) -> Option<u32> {
    let text = text.trim();
    if text.is_empty() || text.len() > 9 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_nginx_units() {
        assert_eq!(size("8m"), Some(8 << 20));
        assert_eq!(size("8M"), Some(8 << 20));
        assert_eq!(size("100k"), Some(100 << 10));
        assert_eq!(size("1g"), Some(1 << 30));
        assert_eq!(size("512"), Some(512));
        assert_eq!(size("0"), Some(0));
        for bad in [
            "",
            "m",
            "8mb",
            "-1",
            "1.5m",
            "99999999999999999999g",
            " 8 m",
        ] {
            assert_eq!(size(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn ranges_contain_their_addresses() {
        let r: Cidr = "127.18.0.0/16".parse().unwrap();
        assert!(r.contains("127.18.1.3".parse().unwrap()));
        assert!(!r.contains("127.19.0.1".parse().unwrap()));
        assert!(r.contains("::ffff:127.18.0.1".parse().unwrap()));
        let one: Cidr = "127.56.0.1".parse().unwrap();
        assert!(one.contains("127.56.0.1".parse().unwrap()));
        assert!(!one.contains("127.56.0.2".parse().unwrap()));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8::1".parse().unwrap()));
        assert!(!v6.contains("127.0.0.1".parse().unwrap()));
        assert!(Cidr::ANY_V4.contains("8.8.8.8".parse().unwrap()));
        for bad in ["10.0.0.0/33", "10.0.0/8", "x", "10.0.0.0/+8", "::/129"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        assert_eq!(cidrs(" 10.0.0.0/8 , 1.2.3.4 ").unwrap().len(), 2);
        let many = vec!["10.0.0.1"; MAX_CIDRS + 1].join(",");
        assert!(cidrs(&many).is_err());
    }

    #[test]
    fn booleans_and_numbers() {
        assert_eq!(boolean("True"), Some(true));
        assert_eq!(boolean("0"), Some(false));
        assert_eq!(boolean("yes"), None);
        assert_eq!(seconds("30"), Some(30));
        assert_eq!(seconds("30s"), Some(30));
        assert_eq!(seconds("999999"), None);
        assert_eq!(count("5"), Some(5));
        assert_eq!(count("-5"), None);
    }
}
