//! Name and format predicates, ported from apimachinery `pkg/util/validation`. Each returns the
//! messages the apiserver would print; an empty list means the value is valid.

use std::fmt::Write as _;

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const WILDCARD_DNS1123_SUBDOMAIN_FMT: &str =
    "\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
pub(super) const HTTP_PATH_FMT: &str = "[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+";

const DNS1123_LABEL_MAX: usize = 63;
const DNS1123_SUBDOMAIN_MAX: usize = 253;
const DNS1035_LABEL_MAX: usize = 63;
const QUALIFIED_NAME_MAX: usize = 63;
const LABEL_VALUE_MAX: usize = 63;
const PORT_NAME_MAX: usize = 15;

/// Checks a DNS-1123 subdomain (RFC 1123): at most 253 characters, dot-separated labels of
/// lower-case letters, digits and `-`, each starting and ending with a letter or digit
/// (`example.com`). Used for object names, rule hosts, TLS secret names and API groups.
///
/// Returns the apiserver's messages for what is wrong; an empty list means valid.
pub(crate) fn is_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX));
    }
    if !matches_dns1123_subdomain(value) {
        errs.push(regex_error(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, \
             '-' or '.', and must start and end with an alphanumeric character",
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// Checks a DNS-1123 label (RFC 1123): at most 63 lower-case letters, digits and `-`, starting
/// and ending with a letter or digit (`my-name`, `123-abc`). Used for namespaces.
///
/// Returns the apiserver's messages for what is wrong; an empty list means valid.
pub(crate) fn is_dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX {
        errs.push(max_len_error(DNS1123_LABEL_MAX));
    }
    if !matches_dns1123_label(value) {
        if matches_dns1123_subdomain(value) {
            // A valid subdomain that is not a valid label can only be wrong for its dots.
            errs.push("must not contain dots".to_owned());
        } else {
            errs.push(regex_error(
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters \
                 or '-', and must start and end with an alphanumeric character",
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

/// Checks a wildcard DNS-1123 subdomain: `*.` followed by a DNS-1123 subdomain, at most 253
/// characters in all (`*.example.com`; not `*`, `*.*.example.com` or `f*.example.com`). Used for
/// rule and TLS hosts that contain a `*`.
///
/// Returns the apiserver's messages for what is wrong; an empty list means valid.
pub(crate) fn is_wildcard_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX));
    }
    if !value
        .strip_prefix("*.")
        .is_some_and(matches_dns1123_subdomain)
    {
        errs.push(regex_error(
            "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS \
             subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and \
             end with an alphanumeric character",
            WILDCARD_DNS1123_SUBDOMAIN_FMT,
            &["*.example.com"],
        ));
    }
    errs
}

/// Checks a DNS-1035 label (RFC 1035): at most 63 lower-case letters, digits and `-`, starting
/// with a letter and ending with a letter or digit (`my-name`, `abc-123`). Used for Service
/// names.
///
/// Returns the apiserver's messages for what is wrong; an empty list means valid.
pub(crate) fn is_dns1035_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1035_LABEL_MAX {
        errs.push(max_len_error(DNS1035_LABEL_MAX));
    }
    let b = value.as_bytes();
    let ok = match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_lowercase()
                && is_lower_alnum(*last)
                && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
        }
        _ => false,
    };
    if !ok {
        errs.push(regex_error(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start \
             with an alphabetic character, and end with an alphanumeric character",
            DNS1035_LABEL_FMT,
            &["my-name", "abc-123"],
        ));
    }
    errs
}

/// Checks a port name (an IANA service name, RFC 6335): 1 to 15 lower-case letters, digits and
/// `-`, with at least one letter, no `--`, and no `-` at either end (`http`, `grpc-web`).
///
/// Returns the apiserver's messages for what is wrong; an empty list means valid.
pub(crate) fn is_valid_port_name(port: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let b = port.as_bytes();
    if b.len() > PORT_NAME_MAX {
        errs.push(max_len_error(PORT_NAME_MAX));
    }
    if b.is_empty() || !b.iter().all(|&c| is_lower_alnum(c) || c == b'-') {
        errs.push(
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_owned(),
        );
    }
    if !b.iter().any(u8::is_ascii_lowercase) {
        errs.push("must contain at least one letter (a-z)".to_owned());
    }
    if port.contains("--") {
        errs.push("must not contain consecutive hyphens".to_owned());
    }
    if b.first() == Some(&b'-') || b.last() == Some(&b'-') {
        errs.push("must not begin or end with a hyphen".to_owned());
    }
    errs
}

// A qualified name (label key, annotation key): optional DNS-subdomain prefix and `/`, then a
// name of at most 63 alphanumerics, `-`, `_` and `.`, starting and ending alphanumeric.
pub(super) fn is_qualified_name(value: &str) -> Vec<String> {
    const MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start \
                       and end with an alphanumeric character";
    const EXAMPLES: &[&str] = &["MyName", "my.name", "123-abc"];
    let mut errs = Vec::new();
    let mut parts = value.split('/');
    let first = parts.next().unwrap_or("");
    let (prefix, name) = match (parts.next(), parts.next()) {
        (None, _) => (None, first),
        (Some(name), None) => (Some(first), name),
        (Some(_), Some(_)) => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. \
                 'example.com/MyName')",
                regex_error(MSG, QUALIFIED_NAME_FMT, EXAMPLES)
            ));
            return errs;
        }
    };
    if let Some(prefix) = prefix {
        if prefix.is_empty() {
            errs.push("prefix part must be non-empty".to_owned());
        } else {
            errs.extend(
                is_dns1123_subdomain(prefix)
                    .into_iter()
                    .map(|m| format!("prefix part {m}")),
            );
        }
    }
    if name.is_empty() {
        errs.push("name part must be non-empty".to_owned());
    } else if name.len() > QUALIFIED_NAME_MAX {
        errs.push(format!("name part {}", max_len_error(QUALIFIED_NAME_MAX)));
    }
    if !matches_qualified_name(name) {
        errs.push(format!(
            "name part {}",
            regex_error(MSG, QUALIFIED_NAME_FMT, EXAMPLES)
        ));
    }
    errs
}

pub(super) fn is_label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LABEL_VALUE_MAX {
        errs.push(max_len_error(LABEL_VALUE_MAX));
    }
    if !value.is_empty() && !matches_qualified_name(value) {
        errs.push(regex_error(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', \
             '_' or '.', and must start and end with an alphanumeric character",
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

// A name that can be used as one segment of a REST path (kinds and names of references).
pub(super) fn is_path_segment_name(name: &str) -> Vec<String> {
    if name == "." || name == ".." {
        return vec![format!("may not be '{name}'")];
    }
    ["/", "%"]
        .iter()
        .filter(|bad| name.contains(**bad))
        .map(|bad| format!("may not contain '{bad}'"))
        .collect()
}

fn is_lower_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn matches_dns1123_label(value: &str) -> bool {
    let b = value.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            is_lower_alnum(*first)
                && is_lower_alnum(*last)
                && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
        }
        _ => false,
    }
}

fn matches_dns1123_subdomain(value: &str) -> bool {
    value.split('.').all(matches_dns1123_label)
}

fn matches_qualified_name(value: &str) -> bool {
    let b = value.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && b.iter()
                    .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

pub(super) fn is_http_path_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"/-._~%!$&'()*+,;=:".contains(&c)
}

fn max_len_error(max: usize) -> String {
    format!("must be no more than {max} characters")
}

// apimachinery's RegexError, including its spacing between examples.
pub(super) fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    let mut out = msg.to_owned();
    if examples.is_empty() {
        let _ = write!(out, " (regex used for validation is '{fmt}')");
        return out;
    }
    out.push_str(" (e.g. ");
    for (i, example) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        let _ = write!(out, "'{example}', ");
    }
    let _ = write!(out, "regex used for validation is '{fmt}')");
    out
}

// Go's `strings.ToLower` maps rune by rune with simple case mapping; the first char of Rust's
// full lowercase mapping is the same (only U+0130 lowercases to more than one char).
pub(super) fn go_to_lower(value: &str) -> String {
    value
        .chars()
        .map(|c| c.to_lowercase().next().unwrap_or(c))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::go_quote;
    use crate::validate::fixtures::class;
    use crate::validate::ip::is_ip_address;
    use crate::validate::validate_ingress_class;

    // The examples that were doctests while these predicates were public.
    #[test]
    fn predicates_accept_and_reject_examples() {
        assert!(is_dns1123_subdomain("shop.example.com").is_empty());
        assert!(is_dns1123_subdomain("Shop.example.com")[0]
            .starts_with("a lowercase RFC 1123 subdomain"));
        assert!(is_dns1123_label("shop").is_empty());
        assert_eq!(is_dns1123_label("a.b"), ["must not contain dots"]);
        assert!(is_wildcard_dns1123_subdomain("*.example.com").is_empty());
        assert_eq!(is_wildcard_dns1123_subdomain("*.*.example.com").len(), 1);
        assert!(is_dns1035_label("web").is_empty());
        assert_eq!(is_dns1035_label("1web").len(), 1);
        assert!(is_valid_port_name("http").is_empty());
        assert_eq!(
            is_valid_port_name("8080"),
            ["must contain at least one letter (a-z)"]
        );
    }

    #[test]
    fn odd_input_never_panics() {
        let odd = [
            "",
            "/",
            "*",
            "*.",
            ".",
            "..",
            "::",
            ":",
            "%",
            "\u{0}",
            "é",
            "İ/x",
            "\u{212a}",
            "1.",
            ".1",
            "1..2",
            "ffff:",
            "::ffff:255.255.255.256",
            "a/",
            "/a",
            "//",
            "a b",
            "\u{10ffff}",
            "99999999999999999999.1.1.1",
            "fffffffffffffffffffff::",
        ];
        for s in odd {
            let _ = (
                is_dns1123_subdomain(s),
                is_dns1123_label(s),
                is_wildcard_dns1123_subdomain(s),
                is_dns1035_label(s),
                is_valid_port_name(s),
                is_qualified_name(s),
                is_qualified_name(&go_to_lower(s)),
                is_label_value(s),
                is_path_segment_name(s),
                is_ip_address(s),
                go_quote(s),
            );
            let mut c = class();
            c.spec.controller = s.to_owned();
            let _ = validate_ingress_class(&c);
        }
        // Annotation keys are compared in lower case, as Go lowercases them (U+212A is `k`).
        assert_eq!(
            is_qualified_name(&go_to_lower("\u{212a}")),
            Vec::<String>::new()
        );
        assert_eq!(go_to_lower("İ"), "i");
    }
}
