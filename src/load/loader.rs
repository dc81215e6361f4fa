//! The [`Loader`]: one read of one input, from its documents to the [`Manifests`] of
//! their objects, within the [`LoadLimits`].

use std::io::{self, BufRead};

use serde::de::DeserializeSeed;
use serde_json::Value;

use super::json::{End, Item, JsonScanner, ListKind, Piece};
use super::limits::{check_ingress_size, json_len, may_be_list, object_too_large};
use super::node::ParseState;
#[cfg(feature = "yaml")]
use super::yaml::{too_deep, YamlDocuments};
use super::{DocumentError, Failure, Limit, LoadLimits, Manifests};
use crate::reconcile::Object;

const NETWORKING_V1: &str = "networking.k8s.io/v1";
const CORE_V1: &str = "v1";
const DISCOVERY_V1: &str = "discovery.k8s.io/v1";

/// One read of one input: the limits, the counts they apply to, and what was read.
pub(super) struct Loader<'l> {
    limits: &'l LoadLimits,
    pub(super) out: Manifests,
    /// Offered every object read: what it gives back is kept in `out`.
    pub(super) take: Option<&'l mut dyn FnMut(Object) -> Option<Object>>,
    /// How many objects `take` kept: those cannot be taken back.
    taken: usize,
    /// Documents and list items seen so far, for [`LoadLimits::max_objects`].
    objects: usize,
    /// Where the input was cut by [`LoadLimits::max_input_bytes`]: a document ending past it
    /// was not read whole.
    #[cfg(feature = "yaml")]
    cut: usize,
    /// Where the input starts, to tell where a document ends.
    #[cfg(feature = "yaml")]
    base: usize,
    /// Whether the input was cut and that has not been reported yet.
    truncated: bool,
    /// Whether a limit ended the input: nothing more is read.
    stopped: bool,
}

/// What had been read when a document began, to take back what its items added when the
/// document as a whole is not read.
struct Mark {
    ingresses: usize,
    ingress_classes: usize,
    services: usize,
    endpoint_slices: usize,
    secrets: usize,
    config_maps: usize,
    skipped: usize,
    errors: usize,
    objects: usize,
    taken: usize,
}

/// The items of a list without a `kind` of their own, kept until the list's `kind` (which
/// `kubectl` prints after them) says theirs.
type Waiting = Vec<(usize, Value)>;

impl<'l> Loader<'l> {
    pub(super) fn new(limits: &'l LoadLimits) -> Self {
        Loader {
            limits,
            out: Manifests::default(),
            take: None,
            taken: 0,
            objects: 0,
            #[cfg(feature = "yaml")]
            cut: 0,
            #[cfg(feature = "yaml")]
            base: 0,
            truncated: false,
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
    #[cfg(feature = "yaml")]
    fn admit(&mut self, index: usize, line: Option<usize>, document: &str) -> bool {
        if self.stopped {
            return false;
        }
        let end = document.as_ptr() as usize - self.base + document.len();
        if end > self.cut {
            self.input_too_large(index, line);
            return false;
        }
        if !self.admit_next(index, line) {
            return false;
        }
        self.objects += 1;
        true
    }

    /// Checks the limits a document of `len` bytes must meet before it is parsed.
    fn precheck(
        &self,
        len: usize,
        may_be_list: impl FnOnce() -> bool,
        depth: impl FnOnce(usize) -> bool,
    ) -> Result<(), Failure> {
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
        if len > limits.max_object_bytes && !may_be_list() {
            return Err(object_too_large(len, limits));
        }
        if depth(limits.max_depth) {
            return Err(depth_failure(limits));
        }
        Ok(())
    }

    /// Reads a JSON text from `reader`, which starts `offset` bytes into the input and holds
    /// at most [`LoadLimits::max_input_bytes`] and one more byte of it.
    ///
    /// # Errors
    ///
    /// What reading fails with, and [`io::ErrorKind::InvalidData`] when a value read is not
    /// UTF-8.
    pub(super) fn json(&mut self, reader: impl BufRead, offset: u64) -> io::Result<()> {
        let mut scanner = JsonScanner::new(reader, offset, self.limits.max_document_bytes);
        let mut documents = 0;
        let mut mark = self.mark();
        let mut items = 0;
        let mut waiting = Waiting::new();
        while let Some(piece) = scanner.next()? {
            match piece {
                Piece::Start => {
                    if !self.admit_next(documents, None) {
                        return Ok(());
                    }
                    mark = self.mark();
                    self.objects += 1;
                    items = 0;
                    waiting.clear();
                }
                Piece::Item(item) => {
                    self.json_item(documents, items, item, &mut waiting)?;
                    items += 1;
                }
                Piece::End(end) => {
                    let waiting = std::mem::take(&mut waiting);
                    self.json_end(documents, end, &mark, waiting)?;
                    documents += 1;
                    if self.stopped {
                        return Ok(());
                    }
                }
            }
        }
        self.truncated = scanner.offset() > self.limits.max_input_bytes as u64;
        self.finish(documents);
        Ok(())
    }

    /// Checks [`LoadLimits::max_objects`] before document `index`; `false` when nothing more
    /// is read.
    fn admit_next(&mut self, index: usize, line: Option<usize>) -> bool {
        if self.stopped {
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
        true
    }

    /// One item of a list document, read on its own.
    fn json_item(
        &mut self,
        index: usize,
        number: usize,
        item: Item<'_>,
        waiting: &mut Waiting,
    ) -> io::Result<()> {
        if self.stopped {
            return Ok(());
        }
        if self.objects >= self.limits.max_objects {
            self.stop_at_item(index, number, None);
            return Ok(());
        }
        self.objects += 1;
        let limits = self.limits;
        let value = if item.len > limits.max_document_bytes {
            Err(Failure {
                message: format!(
                    "the item is {} bytes as written, more than {} ({}); not read",
                    item.len,
                    limits.max_document_bytes,
                    Limit::DocumentBytes
                ),
                limit: Some(Limit::DocumentBytes),
            })
        } else if item.deepest > limits.max_depth {
            Err(depth_failure(limits))
        } else {
            let text = std::str::from_utf8(item.text)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            parse_json(text, limits).and_then(|value| {
                match json_len(&value, limits.max_object_bytes) {
                    Some(len) => Err(object_too_large(len, limits)),
                    None => Ok(value),
                }
            })
        };
        let checked = value.and_then(|value| match item.list_kind {
            ListKind::Later if matches!(value.get("kind"), None | Some(Value::Null)) => {
                waiting.push((number, value));
                Ok(())
            }
            ListKind::Later => self.add_object(value, None),
            ListKind::Known(kind) => {
                let default = kind.and_then(item_kind);
                self.add_object(value, default)
            }
        });
        if let Err(failure) = checked {
            self.fail(index, Some(number), None, failure);
        }
        Ok(())
    }

    /// The end of a JSON document: the whole of it, or what surrounds the items of a list.
    fn json_end(
        &mut self,
        index: usize,
        end: End<'_>,
        mark: &Mark,
        waiting: Waiting,
    ) -> io::Result<()> {
        let limits = self.limits;
        if end.end > limits.max_input_bytes as u64 {
            self.take_back(mark);
            self.input_too_large(index, None);
            return Ok(());
        }
        if !end.list {
            let len = end.len;
            let checked = self.precheck(
                len,
                || may_be_list(&String::from_utf8_lossy(end.text)),
                |max| end.deepest > max,
            );
            if let Err(failure) = checked {
                self.fail(index, None, None, failure);
                return Ok(());
            }
            let text = std::str::from_utf8(end.text)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            match parse_json(text, limits) {
                Ok(value) => self.add_document(index, None, value, len),
                Err(failure) => self.fail(index, None, None, failure),
            }
            return Ok(());
        }
        // A list whose items were read one by one: what surrounds them must be read whole.
        let outer = if end.text_len > limits.max_document_bytes {
            Err(Failure {
                message: format!(
                    "the document is {} bytes without its items, more than {} ({}); not read",
                    end.text_len,
                    limits.max_document_bytes,
                    Limit::DocumentBytes
                ),
                limit: Some(Limit::DocumentBytes),
            })
        } else if end.deepest > limits.max_depth {
            Err(depth_failure(limits))
        } else {
            let text = std::str::from_utf8(end.text)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            parse_json(text, limits)
        };
        let mut fields = match outer {
            Ok(Value::Object(fields)) => fields,
            // A top-level array: its items are all there is.
            Ok(_) => return Ok(()),
            Err(failure) => {
                self.take_back(mark);
                self.fail(index, None, None, failure);
                return Ok(());
            }
        };
        let kind = fields
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if let Some(default) = list_item_kind(kind) {
            for (number, value) in waiting {
                if let Err(failure) = self.add_object(value, default) {
                    self.fail(index, Some(number), None, failure);
                }
            }
            return Ok(());
        }
        // Not a list after all: an object with an `items` field, read as one object.
        self.take_back(mark);
        if self.taken > mark.taken {
            // What `take` kept of the items cannot be taken back: the reader must know.
            let message = "an `items` array in a document that is not a list: its items were \
                           handed over as objects before that was known"
                .to_owned();
            self.error(index, None, None, message, None);
        }
        let len = end.len;
        let checked = self
            .precheck(len, || false, |max| end.deepest_all > max)
            .and_then(|()| {
                fields.remove("items");
                self.add_object(Value::Object(fields), None)
            });
        if let Err(failure) = checked {
            self.fail(index, None, None, failure);
        }
        Ok(())
    }

    fn mark(&self) -> Mark {
        let out = &self.out;
        Mark {
            ingresses: out.ingresses.len(),
            ingress_classes: out.ingress_classes.len(),
            services: out.services.len(),
            endpoint_slices: out.endpoint_slices.len(),
            secrets: out.secrets.len(),
            config_maps: out.config_maps.len(),
            skipped: out.skipped,
            errors: out.errors.len(),
            objects: self.objects,
            taken: self.taken,
        }
    }

    /// Takes back what the items of the document begun at `mark` added.
    fn take_back(&mut self, mark: &Mark) {
        let out = &mut self.out;
        out.ingresses.truncate(mark.ingresses);
        out.ingress_classes.truncate(mark.ingress_classes);
        out.services.truncate(mark.services);
        out.endpoint_slices.truncate(mark.endpoint_slices);
        out.secrets.truncate(mark.secrets);
        out.config_maps.truncate(mark.config_maps);
        out.skipped = mark.skipped;
        out.errors.truncate(mark.errors);
        self.objects = mark.objects + 1;
        self.stopped = false;
    }

    #[cfg(feature = "yaml")]
    /// Reads a YAML stream: `text`, which [`LoadLimits::max_input_bytes`] cut when
    /// `truncated`.
    pub(super) fn yaml(&mut self, text: &str, truncated: bool) {
        self.cut = if truncated {
            text.len()
                .saturating_sub(1)
                .min(self.limits.max_input_bytes)
        } else {
            text.len()
        };
        self.base = text.as_ptr() as usize;
        self.truncated = truncated;
        let mut documents = 0;
        for (index, (line, document)) in YamlDocuments::new(text).enumerate() {
            documents = index + 1;
            if !self.admit(index, Some(line), document) {
                return;
            }
            let checked = self.precheck(
                document.len(),
                || may_be_list(document),
                |max| too_deep(document, max),
            );
            if let Err(failure) = checked {
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
        match list_item_kind(kind) {
            Some(item_kind) => {
                let item_kind = item_kind.map(str::to_owned);
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
            None => {
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
                self.stop_at_item(index, item, line);
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

    /// Item `item` of document `index` is past [`LoadLimits::max_objects`]: nothing more is
    /// read.
    fn stop_at_item(&mut self, index: usize, item: usize, line: Option<usize>) {
        let message = format!(
            "more than {} documents and list items ({}): this item and the rest of the input \
             were not read",
            self.limits.max_objects,
            Limit::Objects
        );
        self.error(index, Some(item), line, message, Some(Limit::Objects));
        self.stopped = true;
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
        let object: Object = match kind {
            "Ingress" => {
                check_ingress_size(&value, self.limits)?;
                Object::Ingress(serde_json::from_value(value).map_err(|e| format!("Ingress: {e}"))?)
            }
            "IngressClass" => Object::IngressClass(
                serde_json::from_value(value).map_err(|e| format!("IngressClass: {e}"))?,
            ),
            "Service" => {
                Object::Service(serde_json::from_value(value).map_err(|e| format!("Service: {e}"))?)
            }
            "Secret" => {
                Object::Secret(serde_json::from_value(value).map_err(|e| format!("Secret: {e}"))?)
            }
            "ConfigMap" => {
                let map = serde_json::from_value(value).map_err(|e| format!("ConfigMap: {e}"))?;
                self.out.config_maps.push(map);
                return Ok(());
            }
            _ => Object::EndpointSlice(
                serde_json::from_value(value).map_err(|e| format!("EndpointSlice: {e}"))?,
            ),
        };
        let kept = match &mut self.take {
            Some(take) => take(object),
            None => Some(object),
        };
        match kept {
            None => self.taken += 1,
            Some(Object::Ingress(i)) => self.out.ingresses.push(i),
            Some(Object::IngressClass(c)) => self.out.ingress_classes.push(c),
            Some(Object::Service(s)) => self.out.services.push(s),
            Some(Object::EndpointSlice(s)) => self.out.endpoint_slices.push(s),
            Some(Object::Secret(s)) => self.out.secrets.push(s),
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

/// The kind of the items of a list of kind `kind`: `Some(None)` for a `List`, whose items
/// say their own, `Some(Some("Ingress"))` for an `IngressList`; `None` when `kind` is not a
/// list's.
fn list_item_kind(kind: &str) -> Option<Option<&str>> {
    match kind {
        "List" => Some(None),
        "IngressList" | "IngressClassList" | "ServiceList" | "EndpointSliceList" | "SecretList" => {
            Some(kind.strip_suffix("List"))
        }
        _ => None,
    }
}

/// The kind the items of a list of kind `kind` have when they say none.
fn item_kind(kind: &str) -> Option<&str> {
    list_item_kind(kind).flatten()
}

fn depth_failure(limits: &LoadLimits) -> Failure {
    Failure {
        message: format!(
            "nesting deeper than {} levels ({}); not read",
            limits.max_depth,
            Limit::Depth
        ),
        limit: Some(Limit::Depth),
    }
}

/// Parses one JSON value within the limits the parse checks.
fn parse_json(text: &str, limits: &LoadLimits) -> Result<Value, Failure> {
    let state = ParseState::new(limits, text);
    let mut parser = serde_json::Deserializer::from_str(text);
    state
        .top()
        .deserialize(&mut parser)
        .and_then(|value| parser.end().map(|()| value))
        .map_err(|err| Failure {
            message: err.to_string(),
            limit: state.exceeded.get(),
        })
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
