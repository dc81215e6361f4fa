//! Reading manifests: the Ingresses, IngressClasses, Services, EndpointSlices and Secrets in
//! YAML or JSON text.
//!
//! Accepts what `kubectl get -o yaml|json` prints and what people keep in files: single objects,
//! multi-document YAML streams (`---`), concatenated JSON objects, `kind: List` and the typed lists
//! (`IngressList`, `IngressClassList`, `ServiceList`, `EndpointSliceList`, `SecretList`). Objects of other kinds
//! are skipped and counted. A broken
//! document becomes a [`DocumentError`] naming its index; it never hides the good documents around
//! it, so the caller always gets both.
//!
//! ```
//! use ingress_router::Manifests;
//!
//! let manifests = Manifests::parse(r#"
//! apiVersion: apps/v1
//! kind: Deployment
//! metadata: {name: web}
//! ---
//! apiVersion: networking.k8s.io/v1
//! kind: Ingress
//! metadata: {name: site}
//! spec:
//!   defaultBackend: {service: {name: web, port: {number: 80}}}
//! ---
//! kind: Ingress
//! metadata: {name: broken}
//! spec: {rules: 7}
//! "#);
//! assert_eq!(manifests.ingresses.len(), 1);
//! assert_eq!(manifests.skipped, 1);
//! assert_eq!(manifests.errors.len(), 1);
//! assert_eq!(manifests.errors[0].document, 2);
//! ```

use serde_json::Value;

use crate::endpoints::{EndpointSlice, Service};
use crate::model::{Ingress, IngressClass};
use crate::tls::Secret;

const NETWORKING_V1: &str = "networking.k8s.io/v1";
const CORE_V1: &str = "v1";
const DISCOVERY_V1: &str = "discovery.k8s.io/v1";

/// The objects read from one or more manifests, with what could not be read.
#[derive(Debug, Clone, Default)]
pub struct Manifests {
    /// Ingresses, in input order.
    pub ingresses: Vec<Ingress>,
    /// IngressClasses, in input order.
    pub ingress_classes: Vec<IngressClass>,
    /// Services (`v1`), in input order, to resolve backends ([`crate::endpoints`]).
    pub services: Vec<Service>,
    /// EndpointSlices (`discovery.k8s.io/v1`), in input order.
    pub endpoint_slices: Vec<EndpointSlice>,
    /// Secrets (`v1`), in input order: the `kubernetes.io/tls` ones hold certificates
    /// ([`crate::tls`]).
    pub secrets: Vec<Secret>,
    /// How many objects of other kinds (Deployments, ConfigMaps, …) were skipped.
    pub skipped: usize,
    /// Documents or list items that could not be read.
    pub errors: Vec<DocumentError>,
}

/// A document (or an item of a list document) that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct DocumentError {
    /// Index of the document in its stream, counting from 0.
    pub document: usize,
    /// Index of the item when the document is a list, counting from 0.
    pub item: Option<usize>,
    /// The line the document starts on, counting from 1, when the input was YAML.
    pub line: Option<usize>,
    /// What went wrong, with the parser's own message.
    pub message: String,
}

impl DocumentError {
    fn describe(&self) -> String {
        let mut text = format!("document {}", self.document);
        if let Some(line) = self.line {
            text += &format!(" (line {line})");
        }
        if let Some(item) = self.item {
            text += &format!(", item {item}");
        }
        text + ": " + &self.message
    }
}

impl Manifests {
    /// Reads JSON: one object, several concatenated objects, or an array of objects.
    pub fn from_json(text: &str) -> Manifests {
        let mut out = Manifests::default();
        let stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
        for (index, document) in stream.enumerate() {
            match document {
                Ok(Value::Array(items)) => out.add_list(index, None, items, None),
                Ok(value) => out.add_document(index, None, value),
                Err(err) => {
                    // The stream cannot be resynchronised after a syntax error.
                    out.errors.push(DocumentError {
                        document: index,
                        item: None,
                        line: None,
                        message: err.to_string(),
                    });
                    break;
                }
            }
        }
        out
    }

    /// Reads a YAML stream of documents separated by `---` lines.
    ///
    /// Documents are split on their separator lines before parsing, as `kubectl` does, so a
    /// syntax error in one document does not prevent reading the others.
    #[cfg(feature = "yaml")]
    pub fn from_yaml(text: &str) -> Manifests {
        let mut out = Manifests::default();
        for (index, (line, document)) in yaml_documents(text).enumerate() {
            if too_deep(document) {
                out.errors.push(DocumentError {
                    document: index,
                    item: None,
                    line: Some(line),
                    message: format!(
                        "more than {MAX_FLOW_NESTING} unclosed `[` or `{{`: nesting limit exceeded"
                    ),
                });
                continue;
            }
            match serde_norway::from_str::<Option<Value>>(document) {
                Ok(None) => {}
                Ok(Some(value)) => out.add_document(index, Some(line), value),
                Err(err) => out.errors.push(DocumentError {
                    document: index,
                    item: None,
                    line: Some(line),
                    message: err.to_string(),
                }),
            }
        }
        out
    }

    /// Reads JSON when the text starts with `{` or `[`, YAML otherwise (JSON only without
    /// the `yaml` feature).
    pub fn parse(text: &str) -> Manifests {
        match text.trim_start().as_bytes().first() {
            Some(b'{' | b'[') => Manifests::from_json(text),
            #[cfg(feature = "yaml")]
            _ => Manifests::from_yaml(text),
            #[cfg(not(feature = "yaml"))]
            _ => Manifests::from_json(text),
        }
    }

    /// Appends what another read produced, e.g. the next file.
    pub fn extend(&mut self, other: Manifests) {
        self.ingresses.extend(other.ingresses);
        self.ingress_classes.extend(other.ingress_classes);
        self.services.extend(other.services);
        self.endpoint_slices.extend(other.endpoint_slices);
        self.secrets.extend(other.secrets);
        self.skipped += other.skipped;
        self.errors.extend(other.errors);
    }

    fn add_document(&mut self, index: usize, line: Option<usize>, value: Value) {
        let kind = value
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match kind {
            "List" | "IngressList" | "IngressClassList" | "ServiceList" | "EndpointSliceList"
            | "SecretList" => match value.get("items") {
                Some(Value::Array(items)) => {
                    let item_kind = kind.strip_suffix("List").filter(|k| !k.is_empty());
                    self.add_list(index, line, items.clone(), item_kind)
                }
                Some(Value::Null) | None => {}
                Some(_) => self.error(index, None, line, "`items` must be a list".into()),
            },
            _ => {
                if let Err(message) = self.add_object(value, None) {
                    self.error(index, None, line, message);
                }
            }
        }
    }

    fn add_list(
        &mut self,
        index: usize,
        line: Option<usize>,
        items: Vec<Value>,
        kind: Option<&str>,
    ) {
        for (item, value) in items.into_iter().enumerate() {
            if let Err(message) = self.add_object(value, kind) {
                self.error(index, Some(item), line, message);
            }
        }
    }

    /// Adds one object; `default_kind` is the kind implied by a typed list, whose items the
    /// apiserver prints without `kind`.
    fn add_object(&mut self, value: Value, default_kind: Option<&str>) -> Result<(), String> {
        if !value.is_object() {
            return Err("expected an object".into());
        }
        let kind = match value.get("kind") {
            Some(Value::String(kind)) => kind.as_str(),
            None | Some(Value::Null) => default_kind.ok_or("missing `kind`")?,
            Some(_) => return Err("`kind` must be a string".into()),
        };
        let api_version = match kind {
            "Ingress" | "IngressClass" => NETWORKING_V1,
            "Service" | "Secret" => CORE_V1,
            "EndpointSlice" => DISCOVERY_V1,
            _ if kind.ends_with("List") => {
                return Err(format!("a {kind} inside a list is not supported"))
            }
            _ => {
                self.skipped += 1;
                return Ok(());
            }
        };
        match value.get("apiVersion").and_then(Value::as_str) {
            None => {}
            Some(v) if v == api_version => {}
            Some(other) if kind.starts_with("Ingress") => {
                return Err(format!(
                    "{kind} apiVersion {other} is not supported: only {NETWORKING_V1} is read \
                     (v1beta1 was removed in Kubernetes 1.22)"
                ))
            }
            Some(other) => {
                return Err(format!(
                    "{kind} apiVersion {other} is not supported: only {api_version} is read"
                ))
            }
        }
        match kind {
            "Ingress" => {
                let ingress = serde_json::from_value(value).map_err(|e| format!("Ingress: {e}"))?;
                self.ingresses.push(ingress);
            }
            "IngressClass" => {
                let class =
                    serde_json::from_value(value).map_err(|e| format!("IngressClass: {e}"))?;
                self.ingress_classes.push(class);
            }
            "Service" => {
                let service = serde_json::from_value(value).map_err(|e| format!("Service: {e}"))?;
                self.services.push(service);
            }
            "Secret" => {
                let secret = serde_json::from_value(value).map_err(|e| format!("Secret: {e}"))?;
                self.secrets.push(secret);
            }
            _ => {
                let slice =
                    serde_json::from_value(value).map_err(|e| format!("EndpointSlice: {e}"))?;
                self.endpoint_slices.push(slice);
            }
        }
        Ok(())
    }

    fn error(
        &mut self,
        document: usize,
        item: Option<usize>,
        line: Option<usize>,
        message: String,
    ) {
        self.errors.push(DocumentError {
            document,
            item,
            line,
            message,
        });
    }
}

/// How deeply YAML flow collections may nest: the deserializer's own recursion limit.
#[cfg(feature = "yaml")]
const MAX_FLOW_NESTING: usize = 128;

/// Whether a YAML document opens more than [`MAX_FLOW_NESTING`] brackets without closing them.
///
/// The YAML scanner's cost grows with the nesting depth for every token, so a document of a
/// hundred thousand `[` takes minutes before the deserializer's recursion limit rejects it. This
/// linear pre-check counts every bracket, quoted or not: a real manifest never has a hundred
/// unclosed brackets even inside strings, and counting them all leaves nothing to hide behind.
#[cfg(feature = "yaml")]
fn too_deep(document: &str) -> bool {
    let mut depth = 0usize;
    for b in document.bytes() {
        match b {
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_FLOW_NESTING {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Splits a YAML stream into documents with the line each starts on (from 1). A line that is
/// `---` (optionally followed by a space and content) starts a document; `...` ends one.
#[cfg(feature = "yaml")]
fn yaml_documents(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut documents = Vec::new();
    let mut start = 0;
    let mut start_line = 1;
    let mut offset = 0;
    let mut seen_content = false;
    for (number, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end_matches(['\n', '\r']);
        let marker = bare == "---" || bare.starts_with("--- ") || bare.starts_with("---\t");
        let end = bare == "...";
        if marker || end {
            if seen_content || start < offset {
                documents.push((start_line, &text[start..offset]));
            }
            // Content after `--- ` on the marker line belongs to the new document.
            start = if marker {
                offset + 3
            } else {
                offset + line.len()
            };
            start_line = number + 1;
            seen_content = marker && !bare[3..].trim().is_empty();
        } else if !bare.trim().is_empty() && !bare.trim_start().starts_with('#') {
            seen_content = true;
        }
        offset += line.len();
    }
    if seen_content {
        documents.push((start_line, &text[start..]));
    }
    // Documents holding only comments or blank lines carry no object: drop them.
    documents.retain(|(_, doc)| {
        doc.lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
    });
    documents.into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;

    const INGRESS_JSON: &str = r#"{"apiVersion":"networking.k8s.io/v1","kind":"Ingress",
        "metadata":{"name":"a"},"spec":{"defaultBackend":{"service":{"name":"web","port":{"number":80}}}}}"#;

    #[test]
    fn json_object_stream_and_array() {
        let two = Manifests::from_json(&format!("{INGRESS_JSON}\n{INGRESS_JSON}"));
        assert_eq!(two.ingresses.len(), 2);
        let array = Manifests::from_json(&format!("[{INGRESS_JSON}, {{\"kind\":\"Deployment\"}}]"));
        assert_eq!((array.ingresses.len(), array.skipped), (1, 1));
        assert!(array.errors.is_empty());
    }

    #[test]
    fn json_syntax_error_keeps_earlier_objects() {
        let m = Manifests::from_json(&format!("{INGRESS_JSON} {{\"kind\": "));
        assert_eq!(m.ingresses.len(), 1);
        assert_eq!(m.errors.len(), 1);
        assert_eq!(m.errors[0].document, 1);
    }

    #[test]
    fn typed_lists_give_items_their_kind() {
        let m = Manifests::from_json(
            r#"{"apiVersion":"networking.k8s.io/v1","kind":"IngressClassList",
                "items":[{"metadata":{"name":"nginx"},"spec":{"controller":"k8s.io/ingress-nginx"}}]}"#,
        );
        assert_eq!(m.ingress_classes.len(), 1);
        assert_eq!(m.ingress_classes[0].spec.controller, "k8s.io/ingress-nginx");
    }

    #[test]
    fn list_items_fail_one_by_one() {
        let m = Manifests::from_json(&format!(
            r#"{{"kind":"List","items":[{INGRESS_JSON}, {{"kind":"Ingress","spec":{{"rules":7}}}}, 3]}}"#
        ));
        assert_eq!(m.ingresses.len(), 1);
        let items: Vec<_> = m.errors.iter().map(|e| (e.document, e.item)).collect();
        assert_eq!(items, [(0, Some(1)), (0, Some(2))]);
    }

    #[test]
    fn old_api_versions_are_errors_not_silent() {
        let m = Manifests::from_json(
            r#"{"apiVersion":"networking.k8s.io/v1beta1","kind":"Ingress","metadata":{"name":"a"}}"#,
        );
        assert!(m.ingresses.is_empty());
        assert!(m.errors[0].message.contains("v1beta1"), "{}", m.errors[0]);
    }

    #[test]
    fn objects_without_kind_are_errors() {
        let m = Manifests::from_json(r#"{"metadata":{"name":"a"}}"#);
        assert_eq!(m.errors[0].to_string(), "document 0: missing `kind`");
    }

    #[cfg(feature = "yaml")]
    #[test]
    fn yaml_stream_with_broken_document_in_the_middle() {
        let text = "# leading comment\n---\nkind: Ingress\nmetadata:\n  name: a\nspec: {}\n---\nkind: Ingress\nmetadata: {name: [\n---\n--- \n...\nkind: IngressClass\nmetadata:\n  name: c\n";
        let m = Manifests::from_yaml(text);
        assert_eq!(m.ingresses.len(), 1);
        assert_eq!(m.ingress_classes.len(), 1);
        assert_eq!(m.errors.len(), 1, "{:?}", m.errors);
        assert_eq!((m.errors[0].document, m.errors[0].line), (1, Some(7)));
        assert!(m.errors[0].to_string().starts_with("document 1 (line 7): "));
    }

    #[cfg(feature = "yaml")]
    #[test]
    fn yaml_list_and_inline_document_start() {
        let text = "--- {kind: List, items: [{kind: Ingress, metadata: {name: a}}, {kind: Pod}]}\n";
        let m = Manifests::from_yaml(text);
        assert_eq!((m.ingresses.len(), m.skipped), (1, 1));
        assert!(m.errors.is_empty(), "{:?}", m.errors);
    }

    #[cfg(feature = "yaml")]
    #[test]
    fn yaml_alias_bomb_is_an_error_not_a_hang() {
        let mut text =
            String::from("kind: Ingress\nmetadata: {name: a}\na0: &a0 [x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            text +=
                &format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n");
        }
        let m = Manifests::from_yaml(&text);
        assert!(m.ingresses.is_empty());
        assert!(
            m.errors[0].message.contains("repetition limit"),
            "{}",
            m.errors[0]
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let nested = format!("{}{}", "[".repeat(1_000), "]".repeat(1_000));
        let json = Manifests::from_json(&format!("{{\"kind\":\"Ingress\",\"x\":{nested}}}"));
        assert!(
            json.errors[0].message.contains("recursion limit"),
            "{}",
            json.errors[0]
        );
        #[cfg(feature = "yaml")]
        {
            let yaml = Manifests::from_yaml(&format!("kind: Ingress\nx: {nested}\n"));
            assert!(
                yaml.errors[0].message.contains("nesting limit"),
                "{}",
                yaml.errors[0]
            );
            // Without the pre-check this takes minutes: the scanner is quadratic in depth.
            let deep = format!("kind: Ingress\nx: {}\n", "{a: ".repeat(200_000));
            let started = std::time::Instant::now();
            let yaml = Manifests::from_yaml(&deep);
            assert!(
                yaml.errors[0].message.contains("nesting limit"),
                "{}",
                yaml.errors[0]
            );
            assert!(started.elapsed() < std::time::Duration::from_secs(5));
            // Up to the limit it is read, and the deserializer decides.
            let ok = format!(
                "kind: Ingress\nmetadata: {{name: a}}\nx: {}{}\n",
                "[".repeat(100),
                "]".repeat(100)
            );
            assert_eq!(Manifests::from_yaml(&ok).ingresses.len(), 1);
        }
    }

    #[cfg(feature = "yaml")]
    #[test]
    fn parse_sniffs_json_and_yaml() {
        assert_eq!(Manifests::parse(INGRESS_JSON).ingresses.len(), 1);
        assert_eq!(
            Manifests::parse("kind: Ingress\nmetadata: {name: a}\n")
                .ingresses
                .len(),
            1
        );
    }
}
