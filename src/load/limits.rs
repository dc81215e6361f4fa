//! [`LoadLimits`] and [`Limit`], and the checks of the input, documents and objects
//! against them that need no parser.

use std::fmt;
use std::io;

use serde_json::Value;

use super::Failure;

pub(super) const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// How much the loader reads before it gives up on a document, an object or the whole input.
///
/// Every limit is checked before the work it bounds: the sizes and the nesting depth of a
/// document before it is parsed, YAML alias expansion while it is parsed, the rules and paths
/// of an Ingress before it is deserialised. Going over a limit is a
/// [`DocumentError`](super::DocumentError) (with
/// [`DocumentError::limit`](super::DocumentError::limit) set) for that document, list item or
/// Ingress only; the others are still read, except for
/// [`max_input_bytes`](Self::max_input_bytes) and [`max_objects`](Self::max_objects), past which
/// nothing more is read.
///
/// The defaults follow what a Kubernetes cluster can hold, so that everything `kubectl get`
/// prints is read and nothing much bigger is:
///
/// | limit | default | why |
/// |---|---|---|
/// | [`max_input_bytes`](Self::max_input_bytes) | 512 MiB | a dump of 100 000 Ingresses with 20 paths each is ~370 MB of YAML |
/// | [`max_objects`](Self::max_objects) | 1 000 000 | ten times that many Ingresses |
/// | [`max_document_bytes`](Self::max_document_bytes) | 32 MiB | a `kind: List` from `kubectl get -o yaml` of ~10 000 Ingresses (JSON lists are read item by item, whatever their size) |
/// | [`max_object_bytes`](Self::max_object_bytes) | 3 MiB | the apiserver's request body limit; etcd stores at most ~1.5 MiB |
/// | [`max_depth`](Self::max_depth) | 64 | `kubectl` output nests fewer than 20 levels, `managedFields` included |
/// | [`max_rules`](Self::max_rules) | 10 000 | far more hosts than one Ingress ever has |
/// | [`max_paths`](Self::max_paths) | 50 000 | about as many as fit in 3 MiB: a path with a backend is ≥ 60 bytes of JSON |
///
/// Hosts need no limit of their own: validation rejects a host longer than 253 bytes (a DNS
/// name) without looking at more of it, and a rule path is bounded by the object's size.
///
/// ```
/// use ingress_router::{LoadLimits, Manifests};
///
/// let mut limits = LoadLimits::default();
/// limits.max_rules = 2;
/// let manifests = Manifests::parse_with(r#"
/// kind: Ingress
/// metadata: {name: many}
/// spec: {rules: [{host: a.example}, {host: b.example}, {host: c.example}]}
/// ---
/// kind: Ingress
/// metadata: {name: few}
/// spec: {rules: [{host: a.example}]}
/// "#, &limits);
/// assert_eq!(manifests.ingresses.len(), 1);
/// assert_eq!(
///     manifests.errors[0].message,
///     "Ingress default/many: spec.rules: Too many: 3: must have at most 2 items \
///      (LoadLimits::max_rules)"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoadLimits {
    /// Most bytes read from one input (one text or reader). Documents that end past it are not
    /// read: the first of them gets an error and the rest are dropped.
    /// [`Manifests::read`](super::Manifests::read) never takes more than this (plus one byte)
    /// from its reader. Default: 512 MiB.
    pub max_input_bytes: usize,
    /// Most documents and list items read from one input; the ones past it are not read, and
    /// the first of them gets an error. Bounds the bookkeeping (and the errors) for streams of
    /// tiny documents. Default: 1 000 000.
    pub max_objects: usize,
    /// Most bytes of text parsed as one value: a YAML document of a `---` stream (list
    /// documents included), a top-level JSON value, or one item of a JSON list; a larger one is
    /// not parsed. A JSON list (a top-level array, or an object with an `items` array such as
    /// `kubectl get -o json` prints) is read item by item, so only its items and what
    /// surrounds them are held to this: the list as a whole is bounded by
    /// [`max_input_bytes`](Self::max_input_bytes) and [`max_objects`](Self::max_objects).
    /// Default: 32 MiB.
    pub max_document_bytes: usize,
    /// Most bytes in one object. A document holding one object is measured as written, before
    /// it is parsed; an item of a list document by the length of its compact JSON encoding,
    /// after the list is parsed. Default: 3 MiB, the apiserver's request body limit.
    pub max_object_bytes: usize,
    /// Deepest nesting of maps and sequences in a document (the top-level object is level 1),
    /// checked before parsing for JSON and YAML flow collections (`[`, `{`) and while parsing
    /// for YAML block collections. At most 128 takes effect: the parsers stop there themselves.
    /// Default: 64.
    pub max_depth: usize,
    /// Most `spec.rules` in one Ingress, checked before the Ingress is deserialised.
    /// Default: 10 000.
    pub max_rules: usize,
    /// Most `http.paths` in one Ingress, counted over all its rules, checked before the
    /// Ingress is deserialised. Default: 50 000.
    pub max_paths: usize,
}

impl Default for LoadLimits {
    fn default() -> Self {
        LoadLimits {
            max_input_bytes: 512 * MIB,
            max_objects: 1_000_000,
            max_document_bytes: 32 * MIB,
            max_object_bytes: 3 * MIB,
            max_depth: 64,
            max_rules: 10_000,
            max_paths: 50_000,
        }
    }
}

/// Which limit a [`DocumentError`](super::DocumentError) is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// [`LoadLimits::max_input_bytes`].
    InputBytes,
    /// [`LoadLimits::max_objects`].
    Objects,
    /// [`LoadLimits::max_document_bytes`].
    DocumentBytes,
    /// [`LoadLimits::max_object_bytes`].
    ObjectBytes,
    /// [`LoadLimits::max_depth`].
    Depth,
    /// YAML aliases (`*name`) would expand the document to more than twice its own size
    /// (counting a node and each byte of a string as one), as a "billion laughs" does. No
    /// document without aliases comes near that, so this one is not settable.
    AliasExpansion,
    /// [`LoadLimits::max_rules`].
    Rules,
    /// [`LoadLimits::max_paths`].
    Paths,
}

impl Limit {
    /// The limit's name as the error messages give it, e.g. `LoadLimits::max_rules`.
    pub fn name(self) -> &'static str {
        match self {
            Limit::InputBytes => "LoadLimits::max_input_bytes",
            Limit::Objects => "LoadLimits::max_objects",
            Limit::DocumentBytes => "LoadLimits::max_document_bytes",
            Limit::ObjectBytes => "LoadLimits::max_object_bytes",
            Limit::Depth => "LoadLimits::max_depth",
            Limit::AliasExpansion => "alias expansion limit",
            Limit::Rules => "LoadLimits::max_rules",
            Limit::Paths => "LoadLimits::max_paths",
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The part of `text` that [`LoadLimits::max_input_bytes`] lets through, and whether that is
/// less than all of it. One byte more than the limit is kept, so that the document the limit
/// cuts reaches the end of what is kept and is recognised as cut.
pub(super) fn within_input_limit<'t>(text: &'t str, limits: &LoadLimits) -> (&'t str, bool) {
    if text.len() <= limits.max_input_bytes {
        return (text, false);
    }
    let mut end = limits.max_input_bytes.saturating_add(1);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (&text[..end], true)
}

pub(super) fn object_too_large(len: usize, limits: &LoadLimits) -> Failure {
    Failure {
        message: format!(
            "the object is {len} bytes, more than {} ({}); not read",
            limits.max_object_bytes,
            Limit::ObjectBytes
        ),
        limit: Some(Limit::ObjectBytes),
    }
}

/// Whether a document may be a list, whose items are measured one by one after parsing
/// rather than the whole document before: a JSON array, or a document that says `items`
/// anywhere. A document that only pretends is measured again after parsing, so the
/// pretence buys nothing beyond [`LoadLimits::max_document_bytes`].
pub(super) fn may_be_list(document: &str) -> bool {
    document.trim_start().starts_with('[') || document.contains("items")
}

/// The length of `value`'s compact JSON encoding when it is more than `limit`, found without
/// encoding more than `limit + 1` bytes of it.
pub(super) fn json_len(value: &Value, limit: usize) -> Option<usize> {
    struct Counter {
        len: usize,
        limit: usize,
    }
    impl io::Write for Counter {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.len += bytes.len();
            if self.len > self.limit {
                return Err(io::ErrorKind::FileTooLarge.into());
            }
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter { len: 0, limit };
    match serde_json::to_writer(&mut counter, value) {
        Ok(()) => None,
        Err(_) => Some(counter.len),
    }
}

/// The Ingress's `namespace/name` as error messages give it.
fn object_name(value: &Value) -> String {
    let metadata = value.get("metadata");
    let field = |name: &str| metadata.and_then(|m| m.get(name)).and_then(Value::as_str);
    format!(
        "{}/{}",
        field("namespace")
            .filter(|ns| !ns.is_empty())
            .unwrap_or("default"),
        field("name").unwrap_or_default()
    )
}

/// [`LoadLimits::max_rules`] and [`LoadLimits::max_paths`], on the Ingress before it is
/// deserialised, worded as the apiserver words its own `Too many` errors.
pub(super) fn check_ingress_size(value: &Value, limits: &LoadLimits) -> Result<(), Failure> {
    let Some(rules) = value.pointer("/spec/rules").and_then(Value::as_array) else {
        return Ok(());
    };
    if rules.len() > limits.max_rules {
        return Err(Failure {
            message: format!(
                "Ingress {}: spec.rules: Too many: {}: must have at most {} items ({})",
                object_name(value),
                rules.len(),
                limits.max_rules,
                Limit::Rules
            ),
            limit: Some(Limit::Rules),
        });
    }
    let mut paths = 0usize;
    for (index, rule) in rules.iter().enumerate() {
        let Some(rule_paths) = rule.pointer("/http/paths").and_then(Value::as_array) else {
            continue;
        };
        paths += rule_paths.len();
        if paths > limits.max_paths {
            let total: usize = rules
                .iter()
                .filter_map(|r| r.pointer("/http/paths").and_then(Value::as_array))
                .map(Vec::len)
                .sum();
            return Err(Failure {
                message: format!(
                    "Ingress {}: spec.rules[{index}].http.paths: Too many: {total}: must have at \
                     most {} items, counted over all rules ({})",
                    object_name(value),
                    limits.max_paths,
                    Limit::Paths
                ),
                limit: Some(Limit::Paths),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::{self, Read};

    use super::*;
    use crate::load::fixtures::*;
    use crate::load::Manifests;

    /// The depth limit, at and over, in both formats and with a non-default setting.
    #[test]
    fn depth_limit_is_exact_and_settable() {
        let doc = |levels: usize| {
            // The top-level object is level 1 and `x`'s list level 2.
            format!(
                "{{\"kind\":\"Ingress\",\"metadata\":{{\"name\":\"a\"}},\"x\":{}{}}}",
                "[".repeat(levels - 1),
                "]".repeat(levels - 1)
            )
        };
        for max in [10, 64] {
            let limits = LoadLimits {
                max_depth: max,
                ..LoadLimits::default()
            };
            let at = Manifests::from_json_with(&doc(max), &limits);
            assert_eq!(at.ingresses.len(), 1, "{max}: {:?}", at.errors);
            let over = Manifests::from_json_with(&doc(max + 1), &limits);
            assert_eq!(over.errors[0].limit, Some(Limit::Depth), "{max}");
            #[cfg(feature = "yaml")]
            {
                let at = Manifests::from_yaml_with(&doc(max), &limits);
                assert_eq!(at.ingresses.len(), 1, "{max}: {:?}", at.errors);
                let over = Manifests::from_yaml_with(&doc(max + 1), &limits);
                assert_eq!(over.errors[0].limit, Some(Limit::Depth), "{max}");
                // In block style: `x:` then `- ` per level below it.
                let block = |levels: usize| {
                    let mut text = String::from("kind: Ingress\nmetadata: {name: a}\nx:\n");
                    for level in 0..levels - 1 {
                        text += &" ".repeat(2 * level);
                        text += "-\n";
                    }
                    text
                };
                let at = Manifests::from_yaml_with(&block(max), &limits);
                assert_eq!(at.ingresses.len(), 1, "{max}: {:?}", at.errors);
                let over = Manifests::from_yaml_with(&block(max + 1), &limits);
                assert_eq!(over.errors[0].limit, Some(Limit::Depth), "{max}");
            }
        }
    }

    #[test]
    fn input_limit_reads_the_documents_before_it() {
        let text = format!("{GOOD_JSON}\n{GOOD_JSON}\n{GOOD_JSON}");
        let second_end = 2 * GOOD_JSON.len() + 1;
        for (max, read) in [
            (text.len(), 3),
            (second_end, 2),
            (second_end - 1, 1),
            (GOOD_JSON.len(), 1),
            (0, 0),
        ] {
            let limits = LoadLimits {
                max_input_bytes: max,
                ..LoadLimits::default()
            };
            let m = Manifests::from_json_with(&text, &limits);
            assert_eq!(m.ingresses.len(), read, "{max}");
            let reader = Manifests::read(text.as_bytes(), &limits).unwrap();
            assert_eq!(reader.ingresses.len(), read, "{max}");
            if read < 3 {
                assert_eq!(m.errors.len(), 1, "{max}: {:?}", m.errors);
                assert_eq!(
                    (m.errors[0].document, m.errors[0].limit),
                    (read, Some(Limit::InputBytes))
                );
                assert_eq!(reader.errors, m.errors);
            } else {
                assert!(m.errors.is_empty() && reader.errors.is_empty());
            }
        }
    }

    #[test]
    fn read_takes_no_more_than_the_limit() {
        let limits = LoadLimits {
            max_input_bytes: 64 * KIB,
            ..LoadLimits::default()
        };
        // An endless input, as from a device or a pipe that never closes.
        let head = format!("{GOOD_JSON}\n");
        let endless = head.as_bytes().chain(io::repeat(b'{'));
        let m = Manifests::read(endless, &limits).unwrap();
        assert_eq!(m.ingresses.len(), 1);
        assert_eq!(m.errors[0].limit, Some(Limit::InputBytes));
        // A character cut in two by the limit is not invalid UTF-8.
        let text = format!("{GOOD_JSON}\n\"é\"");
        let limits = LoadLimits {
            max_input_bytes: GOOD_JSON.len() + 2,
            ..LoadLimits::default()
        };
        let m = Manifests::read(text.as_bytes(), &limits).unwrap();
        assert_eq!(
            (m.ingresses.len(), m.errors[0].limit),
            (1, Some(Limit::InputBytes))
        );
        // Invalid UTF-8 within the limit is.
        let err =
            Manifests::read(&b"{\"kind\": \"\xff\"}"[..], &LoadLimits::default()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn object_count_limit_covers_documents_and_list_items() {
        let limits = LoadLimits {
            max_objects: 3,
            ..LoadLimits::default()
        };
        let stream = [GOOD_JSON; 5].join("\n");
        let m = Manifests::from_json_with(&stream, &limits);
        assert_eq!(m.ingresses.len(), 3);
        assert_eq!(m.errors.len(), 1);
        assert_eq!(
            (m.errors[0].document, m.errors[0].limit),
            (3, Some(Limit::Objects))
        );
        // The list document counts as one, its items one each.
        let list = format!("[{}]", [GOOD_JSON; 5].join(","));
        let m = Manifests::from_json_with(&list, &limits);
        assert_eq!(m.ingresses.len(), 2);
        assert_eq!(
            (m.errors[0].document, m.errors[0].item, m.errors[0].limit),
            (0, Some(2), Some(Limit::Objects))
        );
    }

    #[test]
    fn object_and_document_size_limits() {
        let big = |len: usize| {
            format!(
                r#"{{"kind":"Ingress","metadata":{{"name":"big","annotations":{{"a":"{}"}}}}}}"#,
                "x".repeat(len)
            )
        };
        let limits = LoadLimits {
            max_object_bytes: 1000,
            max_document_bytes: 8000,
            ..LoadLimits::default()
        };
        let fits = big(1000 - big(0).len());
        assert_eq!(fits.len(), 1000);
        let m = Manifests::from_json_with(
            &format!("{fits}\n{}\n{GOOD_JSON}", big(1001 - big(0).len())),
            &limits,
        );
        assert_eq!(m.ingresses.len(), 2, "{:?}", m.errors);
        assert_eq!(
            (m.errors[0].document, m.errors[0].limit),
            (1, Some(Limit::ObjectBytes))
        );
        assert_eq!(
            m.errors[0].message,
            "the object is 1001 bytes, more than 1000 (LoadLimits::max_object_bytes); not read"
        );
        // List items are measured one by one: a list may be larger than an object.
        let list = format!(
            "{{\"kind\":\"List\",\"items\":[{fits},{fits},{fits},{}]}}",
            big(2000)
        );
        let m = Manifests::from_json_with(&list, &limits);
        assert_eq!(m.ingresses.len(), 3, "{:?}", m.errors);
        assert_eq!(
            (m.errors[0].item, m.errors[0].limit),
            (Some(3), Some(Limit::ObjectBytes))
        );
        // A JSON list is read item by item: it may be larger than a document too.
        let list = format!("[{}]", [fits.as_str(); 9].join(","));
        assert_eq!(list.len(), 9010);
        let m = Manifests::from_json_with(&list, &limits);
        assert_eq!(
            (m.ingresses.len(), m.errors.len()),
            (9, 0),
            "{:?}",
            m.errors
        );
        // A YAML one is parsed whole: not larger than a document.
        #[cfg(feature = "yaml")]
        {
            let m = Manifests::from_yaml_with(&format!("kind: List\nitems: {list}"), &limits);
            assert_eq!(m.errors[0].limit, Some(Limit::DocumentBytes));
        }
        // An object that says `items` to pass for a list is measured after parsing.
        let posing = big(2000).replace("\"a\"", "\"items\"");
        let m = Manifests::from_json_with(&posing, &limits);
        assert_eq!(
            m.errors[0].limit,
            Some(Limit::ObjectBytes),
            "{:?}",
            m.errors
        );
        #[cfg(feature = "yaml")]
        {
            let yaml = format!(
                "kind: Ingress\nmetadata: {{name: big}}\nx: {}\n---\n{GOOD_YAML}",
                "y".repeat(2000)
            );
            let m = Manifests::from_yaml_with(&yaml, &limits);
            assert_eq!(m.ingresses.len(), 1, "{:?}", m.errors);
            assert_eq!(
                (m.errors[0].line, m.errors[0].limit),
                (Some(1), Some(Limit::ObjectBytes))
            );
        }
    }

    #[test]
    fn rule_and_path_limits_name_the_ingress_and_the_field() {
        let limits = LoadLimits {
            max_rules: 2,
            max_paths: 3,
            ..LoadLimits::default()
        };
        let path = r#"{"path":"/","pathType":"Prefix","backend":{"service":{"name":"s","port":{"number":80}}}}"#;
        let ingress = |name: &str, rules: &[usize]| {
            let rules: Vec<String> = rules
                .iter()
                .map(|&n| format!(r#"{{"http":{{"paths":[{}]}}}}"#, vec![path; n].join(",")))
                .collect();
            format!(
                r#"{{"kind":"Ingress","metadata":{{"name":"{name}","namespace":"ns"}},"spec":{{"rules":[{}]}}}}"#,
                rules.join(",")
            )
        };
        let text = [
            ingress("at", &[1, 2]),
            ingress("rules", &[1, 1, 1]),
            ingress("paths", &[2, 2]),
        ]
        .join("\n");
        let m = Manifests::from_json_with(&text, &limits);
        assert_eq!(m.ingresses.len(), 1);
        assert_eq!(m.ingresses[0].metadata.name, "at");
        let errors: Vec<_> = m
            .errors
            .iter()
            .map(|e| (e.limit, e.message.as_str()))
            .collect();
        assert_eq!(
            errors,
            [
                (
                    Some(Limit::Rules),
                    "Ingress ns/rules: spec.rules: Too many: 3: must have at most 2 items \
                     (LoadLimits::max_rules)"
                ),
                (
                    Some(Limit::Paths),
                    "Ingress ns/paths: spec.rules[1].http.paths: Too many: 4: must have at most \
                     3 items, counted over all rules (LoadLimits::max_paths)"
                ),
            ]
        );
    }
}
