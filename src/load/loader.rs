//! The [`Loader`]: one read of one input, from its documents to the [`Manifests`] of
//! their objects, within the [`LoadLimits`].

use serde::de::DeserializeSeed;
use serde_json::Value;

use super::json::JsonDocuments;
use super::limits::{check_ingress_size, json_len, may_be_list, object_too_large};
use super::node::ParseState;
#[cfg(feature = "yaml")]
use super::yaml::{too_deep, YamlDocuments};
use super::{DocumentError, Failure, Limit, LoadLimits, Manifests};

const NETWORKING_V1: &str = "networking.k8s.io/v1";
const CORE_V1: &str = "v1";
const DISCOVERY_V1: &str = "discovery.k8s.io/v1";

/// One read of one input: the limits, the counts they apply to, and what was read.
pub(super) struct Loader<'l> {
    limits: &'l LoadLimits,
    pub(super) out: Manifests,
    /// Documents and list items seen so far, for [`LoadLimits::max_objects`].
    objects: usize,
    /// Where the input was cut by [`LoadLimits::max_input_bytes`]: a document ending past it
    /// was not read whole.
    cut: usize,
    /// Where the input starts, to tell where a document ends.
    base: usize,
    /// Whether the input was cut and that has not been reported yet.
    truncated: bool,
    /// Whether a limit ended the input: nothing more is read.
    stopped: bool,
}

impl<'l> Loader<'l> {
    pub(super) fn new(limits: &'l LoadLimits, text: &str, truncated: bool) -> Self {
        Loader {
            limits,
            out: Manifests::default(),
            objects: 0,
            cut: if truncated {
                text.len().saturating_sub(1).min(limits.max_input_bytes)
            } else {
                text.len()
            },
            base: text.as_ptr() as usize,
            truncated,
            stopped: false,
        }
    }

    /// Reports the cut when no document did: what was cut off was past the last document read.
    fn finish(&mut self, documents: usize) {
        if self.truncated && !self.stopped {
            self.input_too_large(documents, None);
        }
    }

    fn input_too_large(&mut self, index: usize, line: Option<usize>) {
        self.stopped = true;
        let message = format!(
            "the input is larger than {} bytes ({}): this document and the rest of the input \
             were not read",
            self.limits.max_input_bytes,
            Limit::InputBytes
        );
        self.error(index, None, line, message, Some(Limit::InputBytes));
    }

    /// Checks the limits that end the input at `document`; `false` when nothing more is read.
    fn admit(&mut self, index: usize, line: Option<usize>, document: &str) -> bool {
        if self.stopped {
            return false;
        }
        let end = document.as_ptr() as usize - self.base + document.len();
        if end > self.cut {
            self.input_too_large(index, line);
            return false;
        }
        if self.objects >= self.limits.max_objects {
            self.stopped = true;
            let message = format!(
                "more than {} documents and list items ({}): this document and the rest of the \
                 input were not read",
                self.limits.max_objects,
                Limit::Objects
            );
            self.error(index, None, line, message, Some(Limit::Objects));
            return false;
        }
        self.objects += 1;
        true
    }

    /// Checks the limits a document must meet before it is parsed.
    fn precheck(&self, document: &str, depth: impl FnOnce(usize) -> bool) -> Result<(), Failure> {
        let len = document.len();
        let limits = self.limits;
        if len > limits.max_document_bytes {
            return Err(Failure {
                message: format!(
                    "the document is {len} bytes, more than {} ({}); not read",
                    limits.max_document_bytes,
                    Limit::DocumentBytes
                ),
                limit: Some(Limit::DocumentBytes),
            });
        }
        if len > limits.max_object_bytes && !may_be_list(document) {
            return Err(object_too_large(len, limits));
        }
        if depth(limits.max_depth) {
            return Err(Failure {
                message: format!(
                    "nesting deeper than {} levels ({}); not read",
                    limits.max_depth,
                    Limit::Depth
                ),
                limit: Some(Limit::Depth),
            });
        }
        Ok(())
    }

    pub(super) fn json(&mut self, text: &str) {
        let mut documents = 0;
        for (index, (document, depth)) in JsonDocuments::new(text).enumerate() {
            documents = index + 1;
            if !self.admit(index, None, document) {
                return;
            }
            if let Err(failure) = self.precheck(document, |max| depth > max) {
                self.fail(index, None, None, failure);
                continue;
            }
            let state = ParseState::new(self.limits, document);
            let mut parser = serde_json::Deserializer::from_str(document);
            let parsed = state
                .top()
                .deserialize(&mut parser)
                .and_then(|value| parser.end().map(|()| value));
            match parsed {
                Ok(Value::Array(items)) => self.add_list(index, None, items, None),
                Ok(value) => self.add_document(index, None, value, document.len()),
                Err(err) => self.error(index, None, None, err.to_string(), state.exceeded.get()),
            }
        }
        self.finish(documents);
    }

    #[cfg(feature = "yaml")]
    pub(super) fn yaml(&mut self, text: &str) {
        let mut documents = 0;
        for (index, (line, document)) in YamlDocuments::new(text).enumerate() {
            documents = index + 1;
            if !self.admit(index, Some(line), document) {
                return;
            }
            if let Err(failure) = self.precheck(document, |max| too_deep(document, max)) {
                self.fail(index, None, Some(line), failure);
                continue;
            }
            let state = ParseState::new(self.limits, document);
            let parser = serde_norway::Deserializer::from_str(document);
            match state.top().deserialize(parser) {
                Ok(Value::Null) => {}
                Ok(value) => self.add_document(index, Some(line), value, document.len()),
                Err(err) => {
                    let limit = state.exceeded.get();
                    self.error(index, None, Some(line), err.to_string(), limit)
                }
            }
        }
        self.finish(documents);
    }

    fn add_document(&mut self, index: usize, line: Option<usize>, value: Value, len: usize) {
        let kind = value
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match kind {
            "List" | "IngressList" | "IngressClassList" | "ServiceList" | "EndpointSliceList"
            | "SecretList" => {
                let item_kind = kind
                    .strip_suffix("List")
                    .filter(|k| !k.is_empty())
                    .map(str::to_owned);
                let Value::Object(mut fields) = value else {
                    return;
                };
                match fields.remove("items") {
                    Some(Value::Array(items)) => {
                        self.add_list(index, line, items, item_kind.as_deref())
                    }
                    Some(Value::Null) | None => {}
                    Some(_) => self.error(index, None, line, "`items` must be a list".into(), None),
                }
            }
            _ => {
                // A document that only looked like a list before it was parsed.
                let checked = if len > self.limits.max_object_bytes {
                    Err(object_too_large(len, self.limits))
                } else {
                    self.add_object(value, None)
                };
                if let Err(failure) = checked {
                    self.fail(index, None, line, failure);
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
            if self.objects >= self.limits.max_objects {
                let message = format!(
                    "more than {} documents and list items ({}): this item and the rest of the \
                     input were not read",
                    self.limits.max_objects,
                    Limit::Objects
                );
                self.error(index, Some(item), line, message, Some(Limit::Objects));
                self.stopped = true;
                break;
            }
            self.objects += 1;
            let checked = match json_len(&value, self.limits.max_object_bytes) {
                Some(len) => Err(object_too_large(len, self.limits)),
                None => self.add_object(value, kind),
            };
            if let Err(failure) = checked {
                self.fail(index, Some(item), line, failure);
            }
        }
    }

    /// Adds one object; `default_kind` is the kind implied by a typed list, whose items the
    /// apiserver prints without `kind`.
    fn add_object(&mut self, value: Value, default_kind: Option<&str>) -> Result<(), Failure> {
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
            "Service" | "Secret" | "ConfigMap" => CORE_V1,
            "EndpointSlice" => DISCOVERY_V1,
            _ if kind.ends_with("List") => {
                return Err(format!("a {kind} inside a list is not supported").into())
            }
            _ => {
                self.out.skipped += 1;
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
                )
                .into())
            }
            Some(other) => {
                return Err(format!(
                    "{kind} apiVersion {other} is not supported: only {api_version} is read"
                )
                .into())
            }
        }
        match kind {
            "Ingress" => {
                check_ingress_size(&value, self.limits)?;
                let ingress = serde_json::from_value(value).map_err(|e| format!("Ingress: {e}"))?;
                self.out.ingresses.push(ingress);
            }
            "IngressClass" => {
                let class =
                    serde_json::from_value(value).map_err(|e| format!("IngressClass: {e}"))?;
                self.out.ingress_classes.push(class);
            }
            "Service" => {
                let service = serde_json::from_value(value).map_err(|e| format!("Service: {e}"))?;
                self.out.services.push(service);
            }
            "Secret" => {
                let secret = serde_json::from_value(value).map_err(|e| format!("Secret: {e}"))?;
                self.out.secrets.push(secret);
            }
            "ConfigMap" => {
                let map = serde_json::from_value(value).map_err(|e| format!("ConfigMap: {e}"))?;
                self.out.config_maps.push(map);
            }
            _ => {
                let slice =
                    serde_json::from_value(value).map_err(|e| format!("EndpointSlice: {e}"))?;
                self.out.endpoint_slices.push(slice);
            }
        }
        Ok(())
    }

    fn fail(&mut self, document: usize, item: Option<usize>, line: Option<usize>, f: Failure) {
        self.error(document, item, line, f.message, f.limit);
    }

    fn error(
        &mut self,
        document: usize,
        item: Option<usize>,
        line: Option<usize>,
        message: String,
        limit: Option<Limit>,
    ) {
        self.out.errors.push(DocumentError {
            document,
            item,
            line,
            message,
            limit,
        });
    }
}

#[cfg(test)]
mod tests {
    use crate::load::fixtures::*;
    use crate::load::Manifests;

    #[test]
    fn json_object_stream_and_array() {
        let two = Manifests::from_json(&format!("{INGRESS_JSON}\n{INGRESS_JSON}"));
        assert_eq!(two.ingresses.len(), 2);
        let array = Manifests::from_json(&format!("[{INGRESS_JSON}, {{\"kind\":\"Deployment\"}}]"));
        assert_eq!((array.ingresses.len(), array.skipped), (1, 1));
        assert!(array.errors.is_empty());
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
}
