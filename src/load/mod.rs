//! Reading manifests: the Ingresses, IngressClasses, Services, EndpointSlices and Secrets in
//!
//! See [Manifests] for the model.

use std::cell::Cell;
use std::fmt;
use std::io::{self, Read};

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::model::{EndpointSlice, Ingress, IngressClass, Secret, Service};

const NETWORKING_V1: &str = "networking.k8s.io/v1";
const CORE_V1: &str = "v1";
const DISCOVERY_V1: &str = "discovery.k8s.io/v1";

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// How much the loader reads before it gives up on a document, an object or the whole input.
///
/// Every limit is checked before the work it bounds: the sizes and the nesting depth of a
/// document before it is parsed, YAML alias expansion while it is parsed, the rules and paths
/// of an Ingress before it is deserialised. Going over a limit is a [`DocumentError`] (with
/// [`DocumentError::limit`] set) for that document, list item or Ingress only; the others are
/// still read, except for [`max_input_bytes`](Self::max_input_bytes) and
/// [`max_objects`](Self::max_objects), past which nothing more is read.
///
/// The defaults follow what a Kubernetes cluster can hold, so that everything `kubectl get`
/// prints is read and nothing much bigger is:
///
/// | limit | default | why |
/// |---|---|---|
/// | [`max_input_bytes`](Self::max_input_bytes) | 512 MiB | a dump of 100 000 Ingresses with 20 paths each is ~370 MB of YAML |
/// | [`max_objects`](Self::max_objects) | 1 000 000 | ten times that many Ingresses |
/// | [`max_document_bytes`](Self::max_document_bytes) | 32 MiB | a `kind: List` from `kubectl get -o yaml` of ~10 000 Ingresses |
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
    /// read: the first of them gets an error and the rest are dropped. [`Manifests::read`]
    /// never takes more than this (plus one byte) from its reader. Default: 512 MiB.
    pub max_input_bytes: usize,
    /// Most documents and list items read from one input; the ones past it are not read, and
    /// the first of them gets an error. Bounds the bookkeeping (and the errors) for streams of
    /// tiny documents. Default: 1 000 000.
    pub max_objects: usize,
    /// Most bytes in one document (a YAML document of a `---` stream, a top-level JSON value),
    /// list documents included; a larger document is not parsed. Default: 32 MiB.
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

/// Which limit a [`DocumentError`] is about.
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

/// Reading manifests: the Ingresses, IngressClasses, Services, EndpointSlices and Secrets in
/// YAML or JSON text.
///
/// Accepts what `kubectl get -o yaml|json` prints and what people keep in files: single objects,
/// multi-document YAML streams (`---`), concatenated JSON objects, `kind: List` and the typed lists
/// (`IngressList`, `IngressClassList`, `ServiceList`, `EndpointSliceList`, `SecretList`). Objects of other kinds
/// are skipped and counted. A broken
/// document becomes a [`DocumentError`] naming its index; it never hides the good documents around
/// it, so the caller always gets both.
///
/// ```
/// use ingress_router::Manifests;
///
/// let manifests = Manifests::parse(r#"
/// apiVersion: apps/v1
/// kind: Deployment
/// metadata: {name: web}
/// ---
/// apiVersion: networking.k8s.io/v1
/// kind: Ingress
/// metadata: {name: site}
/// spec:
///   defaultBackend: {service: {name: web, port: {number: 80}}}
/// ---
/// kind: Ingress
/// metadata: {name: broken}
/// spec: {rules: 7}
/// "#);
/// assert_eq!(manifests.ingresses.len(), 1);
/// assert_eq!(manifests.skipped, 1);
/// assert_eq!(manifests.errors.len(), 1);
/// assert_eq!(manifests.errors[0].document, 2);
/// ```
///
/// The objects read from one or more manifests, with what could not be read.
#[derive(Debug, Clone, Default)]
pub struct Manifests {
    /// Ingresses, in input order.
    pub ingresses: Vec<Ingress>,
    /// IngressClasses, in input order.
    pub ingress_classes: Vec<IngressClass>,
    /// Services (`v1`), in input order, to resolve backends ([`crate::Endpoints`]).
    pub services: Vec<Service>,
    /// EndpointSlices (`discovery.k8s.io/v1`), in input order.
    pub endpoint_slices: Vec<EndpointSlice>,
    /// Secrets (`v1`), in input order: the `kubernetes.io/tls` ones hold certificates
    /// ([`crate::TlsTable`]).
    pub secrets: Vec<Secret>,
    /// How many objects of other kinds (Deployments, ConfigMaps, …) were skipped.
    pub skipped: usize,
    /// Documents or list items that could not be read.
    pub errors: Vec<DocumentError>,
}

/// A document (or an item of a list document) that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
#[non_exhaustive]
pub struct DocumentError {
    /// Index of the document in its stream, counting from 0.
    pub document: usize,
    /// Index of the item when the document is a list, counting from 0.
    pub item: Option<usize>,
    /// The line the document starts on, counting from 1, when the input was YAML.
    pub line: Option<usize>,
    /// What went wrong, with the parser's own message.
    pub message: String,
    /// The [`LoadLimits`] limit the document went over, if that is what went wrong.
    pub limit: Option<Limit>,
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

/// Why an object was not read.
struct Failure {
    message: String,
    limit: Option<Limit>,
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure {
            message,
            limit: None,
        }
    }
}

impl From<&str> for Failure {
    fn from(message: &str) -> Self {
        Failure::from(message.to_owned())
    }
}

impl Manifests {
    /// Reads JSON: one object, several concatenated objects, or an array of objects, with the
    /// default [`LoadLimits`].
    #[cfg(test)]
    pub(crate) fn from_json(text: &str) -> Manifests {
        Manifests::from_json_with(text, &LoadLimits::default())
    }

    /// Reads JSON (one object, several concatenated objects, or an array of objects) within
    /// `limits`.
    ///
    /// The top-level values are delimited (strings and brackets followed, nothing parsed)
    /// before any is parsed, so a value over a limit or with a syntax error is reported alone and
    /// the values after it are still read, as long as its brackets balance.
    pub(crate) fn from_json_with(text: &str, limits: &LoadLimits) -> Manifests {
        let (text, truncated) = within_input_limit(text, limits);
        let mut loader = Loader::new(limits, text, truncated);
        loader.json(text);
        loader.out
    }

    /// Reads a YAML stream of documents separated by `---` lines, with the default
    /// [`LoadLimits`].
    ///
    /// Documents are split on their separator lines before parsing, as `kubectl` does, so a
    /// syntax error in one document does not prevent reading the others.
    #[cfg(all(test, feature = "yaml"))]
    pub(crate) fn from_yaml(text: &str) -> Manifests {
        Manifests::from_yaml_with(text, &LoadLimits::default())
    }

    /// Reads a YAML stream of documents separated by `---` lines within `limits`. Documents
    /// are split on their separator lines before parsing, as `kubectl` does, so a syntax
    /// error in one document does not prevent reading the others.
    #[cfg(feature = "yaml")]
    pub(crate) fn from_yaml_with(text: &str, limits: &LoadLimits) -> Manifests {
        let (text, truncated) = within_input_limit(text, limits);
        let mut loader = Loader::new(limits, text, truncated);
        loader.yaml(text);
        loader.out
    }

    /// Reads JSON when the text starts with `{` or `[`, YAML otherwise (JSON only without
    /// the `yaml` feature), with the default [`LoadLimits`].
    ///
    /// JSON is one object, several concatenated objects, or an array of objects; their
    /// top-level values are delimited before any is parsed, so a value over a limit or with a
    /// syntax error is reported alone and the values after it are still read. YAML is a stream
    /// of documents split on their `---` lines before parsing, as `kubectl` does, so a syntax
    /// error in one document does not prevent reading the others.
    pub fn parse(text: &str) -> Manifests {
        Manifests::parse_with(text, &LoadLimits::default())
    }

    /// Reads JSON or YAML like [`Manifests::parse`], within `limits`.
    pub fn parse_with(text: &str, limits: &LoadLimits) -> Manifests {
        match text.trim_start().as_bytes().first() {
            Some(b'{' | b'[') => Manifests::from_json_with(text, limits),
            #[cfg(feature = "yaml")]
            _ => Manifests::from_yaml_with(text, limits),
            #[cfg(not(feature = "yaml"))]
            _ => Manifests::from_json_with(text, limits),
        }
    }

    /// Reads JSON or YAML like [`Manifests::parse_with`] from `reader`, e.g. a file, taking at
    /// most [`LoadLimits::max_input_bytes`] (and one more byte, to tell that there is more) from
    /// it. Input past the limit is reported as a [`DocumentError`] with [`Limit::InputBytes`].
    ///
    /// # Errors
    ///
    /// What reading fails with, and [`io::ErrorKind::InvalidData`] when the text is not UTF-8.
    pub fn read(reader: impl Read, limits: &LoadLimits) -> io::Result<Manifests> {
        let mut bytes = Vec::new();
        let most = u64::try_from(limits.max_input_bytes.saturating_add(1)).unwrap_or(u64::MAX);
        reader.take(most).read_to_end(&mut bytes)?;
        let truncated = bytes.len() > limits.max_input_bytes;
        let text = match std::str::from_utf8(&bytes) {
            Ok(text) => text,
            // A character cut in two by the limit.
            Err(e) if truncated && e.error_len().is_none() => {
                std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default()
            }
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        };
        let mut loader = Loader::new(limits, text, truncated);
        match text.trim_start().as_bytes().first() {
            Some(b'{' | b'[') => loader.json(text),
            #[cfg(feature = "yaml")]
            _ => loader.yaml(text),
            #[cfg(not(feature = "yaml"))]
            _ => loader.json(text),
        }
        Ok(loader.out)
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
}

/// The part of `text` that [`LoadLimits::max_input_bytes`] lets through, and whether that is
/// less than all of it. One byte more than the limit is kept, so that the document the limit
/// cuts reaches the end of what is kept and is recognised as cut.
fn within_input_limit<'t>(text: &'t str, limits: &LoadLimits) -> (&'t str, bool) {
    if text.len() <= limits.max_input_bytes {
        return (text, false);
    }
    let mut end = limits.max_input_bytes.saturating_add(1);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (&text[..end], true)
}

/// One read of one input: the limits, the counts they apply to, and what was read.
struct Loader<'l> {
    limits: &'l LoadLimits,
    out: Manifests,
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
    fn new(limits: &'l LoadLimits, text: &str, truncated: bool) -> Self {
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

    fn json(&mut self, text: &str) {
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
    fn yaml(&mut self, text: &str) {
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
            "Service" | "Secret" => CORE_V1,
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

fn object_too_large(len: usize, limits: &LoadLimits) -> Failure {
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
fn may_be_list(document: &str) -> bool {
    document.trim_start().starts_with('[') || document.contains("items")
}

/// The length of `value`'s compact JSON encoding when it is more than `limit`, found without
/// encoding more than `limit + 1` bytes of it.
fn json_len(value: &Value, limit: usize) -> Option<usize> {
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
fn check_ingress_size(value: &Value, limits: &LoadLimits) -> Result<(), Failure> {
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

/// What the parse of one document may still spend: the limits a [`Node`] checks as it is built.
///
/// The budget of nodes and string bytes is twice the document's length (and 1 KiB), which no
/// document reaches by itself (a node takes at least one byte of text and a string at least
/// its own length), so only YAML aliases, which repeat a node as often as they are named, can
/// run it out. This is what bounds a "billion laughs", and also a few thousand aliases of one
/// long list, which the parser's own limit on alias jumps lets through and which would
/// otherwise take time and memory quadratic in the document's size.
struct ParseState {
    max_depth: usize,
    budget: Cell<usize>,
    exceeded: Cell<Option<Limit>>,
}

impl ParseState {
    fn new(limits: &LoadLimits, document: &str) -> Self {
        ParseState {
            max_depth: limits.max_depth,
            budget: Cell::new(document.len().saturating_mul(2).saturating_add(KIB)),
            exceeded: Cell::new(None),
        }
    }

    fn top(&self) -> Node<'_> {
        Node {
            depth: 1,
            state: self,
        }
    }
}

/// One value of a document, at its depth, built as a [`Value`] within the [`ParseState`].
#[derive(Clone, Copy)]
struct Node<'s> {
    depth: usize,
    state: &'s ParseState,
}

impl Node<'_> {
    /// Takes `cost` from the budget.
    fn spend<E: serde::de::Error>(&self, cost: usize) -> Result<(), E> {
        let left = self.state.budget.get();
        if cost > left {
            self.state.exceeded.set(Some(Limit::AliasExpansion));
            return Err(E::custom(
                "YAML aliases expand the document past twice its size (alias expansion limit, \
                 against \"billion laughs\"); not read",
            ));
        }
        self.state.budget.set(left - cost);
        Ok(())
    }

    /// A child of this collection, one level deeper, after checking that it may be one.
    fn enter<E: serde::de::Error>(&self) -> Result<Node<'_>, E> {
        if self.depth > self.state.max_depth {
            self.state.exceeded.set(Some(Limit::Depth));
            return Err(E::custom(format_args!(
                "nesting deeper than {} levels ({}); not read",
                self.state.max_depth,
                Limit::Depth
            )));
        }
        self.spend(1)?;
        Ok(Node {
            depth: self.depth + 1,
            state: self.state,
        })
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_bool<E: serde::de::Error>(self, value: bool) -> Result<Value, E> {
        self.spend(1)?;
        Ok(Value::Bool(value))
    }

    fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<Value, E> {
        self.spend(1)?;
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<Value, E> {
        self.spend(1)?;
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<Value, E> {
        self.spend(1)?;
        Ok(Number::from_f64(value).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Value, E> {
        self.spend(value.len().saturating_add(1))?;
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, value: String) -> Result<Value, E> {
        self.spend(value.len().saturating_add(1))?;
        Ok(Value::String(value))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        self.spend(1)?;
        Ok(Value::Null)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let child = self.enter()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(child)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let child = self.enter()?;
        let mut fields = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            child.spend::<A::Error>(key.len())?;
            let value = map.next_value_seed(child)?;
            fields.insert(key, value);
        }
        Ok(Value::Object(fields))
    }
}

/// The top-level values of a JSON text, each with its nesting depth, found by following
/// strings and brackets only: nothing is parsed, so a value with a syntax error inside ends
/// where its brackets balance and the values after it are found all the same.
struct JsonDocuments<'t> {
    text: &'t str,
    at: usize,
}

impl<'t> JsonDocuments<'t> {
    fn new(text: &'t str) -> Self {
        JsonDocuments { text, at: 0 }
    }
}

impl<'t> Iterator for JsonDocuments<'t> {
    type Item = (&'t str, usize);

    fn next(&mut self) -> Option<(&'t str, usize)> {
        let bytes = self.text.as_bytes();
        let mut at = self.at;
        while bytes.get(at).is_some_and(|b| b.is_ascii_whitespace()) {
            at += 1;
        }
        let start = at;
        let mut depth = 0usize;
        let mut deepest = 0usize;
        match *bytes.get(at)? {
            b'{' | b'[' => {
                let mut in_string = false;
                let mut escaped = false;
                while let Some(&b) = bytes.get(at) {
                    at += 1;
                    if in_string {
                        match b {
                            _ if escaped => escaped = false,
                            b'\\' => escaped = true,
                            b'"' => in_string = false,
                            _ => {}
                        }
                        continue;
                    }
                    match b {
                        b'"' => in_string = true,
                        b'{' | b'[' => {
                            depth += 1;
                            deepest = deepest.max(depth);
                        }
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
            }
            b'"' => {
                at += 1;
                let mut escaped = false;
                while let Some(&b) = bytes.get(at) {
                    at += 1;
                    match b {
                        _ if escaped => escaped = false,
                        b'\\' => escaped = true,
                        b'"' => break,
                        _ => {}
                    }
                }
            }
            _ => {
                // A bare scalar, or a stray character: up to the next delimiter, at least one
                // character.
                at += self.text[at..].chars().next().map_or(1, char::len_utf8);
                while bytes
                    .get(at)
                    .is_some_and(|b| !b.is_ascii_whitespace() && !b"{}[]\",".contains(b))
                {
                    at += 1;
                }
            }
        }
        // Only ASCII delimiters end a value, so `at` is on a character boundary.
        self.at = at;
        Some((&self.text[start..at], deepest))
    }
}

/// Whether a YAML document opens more than `max` flow collections (`[`, `{`) without closing
/// them.
///
/// The YAML scanner's cost grows with the flow nesting depth for every token, so a document of
/// a hundred thousand `[` takes minutes before any recursion limit rejects it. This linear
/// pre-check counts every bracket, quoted or not: a real manifest never has dozens of unclosed
/// brackets even inside strings, and counting them all leaves nothing to hide behind. (Block
/// collections nest by indentation and cost the scanner nothing extra; their depth is checked
/// while the document is parsed.)
#[cfg(feature = "yaml")]
fn too_deep(document: &str, max: usize) -> bool {
    let mut depth = 0usize;
    for b in document.bytes() {
        match b {
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// The documents of a YAML stream with the line each starts on (from 1). A line that is `---`
/// (optionally followed by a space and content) starts a document; `...` ends one. Documents
/// holding only comments or blank lines carry no object and are left out. Lazy, so that a
/// stream of a million empty documents costs no memory.
#[cfg(feature = "yaml")]
struct YamlDocuments<'t> {
    text: &'t str,
    /// Where the next line starts.
    offset: usize,
    /// The number of the next line, from 0.
    number: usize,
    /// Where the current document starts, and its line (from 1).
    start: usize,
    start_line: usize,
    done: bool,
}

#[cfg(feature = "yaml")]
impl<'t> YamlDocuments<'t> {
    fn new(text: &'t str) -> Self {
        YamlDocuments {
            text,
            offset: 0,
            number: 0,
            start: 0,
            start_line: 1,
            done: false,
        }
    }
}

#[cfg(feature = "yaml")]
impl<'t> Iterator for YamlDocuments<'t> {
    type Item = (usize, &'t str);

    fn next(&mut self) -> Option<(usize, &'t str)> {
        let text = self.text;
        while !self.done {
            let rest = &text[self.offset..];
            if rest.is_empty() {
                self.done = true;
                let document = &text[self.start.min(text.len())..];
                if has_content(document) {
                    return Some((self.start_line, document));
                }
                break;
            }
            let line = &rest[..rest.find('\n').map_or(rest.len(), |i| i + 1)];
            let bare = line.trim_end_matches(['\n', '\r']);
            let marker = bare == "---" || bare.starts_with("--- ") || bare.starts_with("---\t");
            let end = bare == "...";
            let offset = self.offset;
            self.offset += line.len();
            self.number += 1;
            if marker || end {
                let document = &text[self.start.min(offset)..offset];
                let start_line = self.start_line;
                // Content after `--- ` on the marker line belongs to the new document.
                self.start = if marker { offset + 3 } else { self.offset };
                self.start_line = self.number;
                if has_content(document) {
                    return Some((start_line, document));
                }
            }
        }
        None
    }
}

/// Whether a YAML document has a line that is neither blank nor a comment.
#[cfg(feature = "yaml")]
fn has_content(document: &str) -> bool {
    document
        .lines()
        .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INGRESS_JSON: &str = r#"{"apiVersion":"networking.k8s.io/v1","kind":"Ingress",
        "metadata":{"name":"a"},"spec":{"defaultBackend":{"service":{"name":"web","port":{"number":80}}}}}"#;

    const GOOD_JSON: &str = r#"{"kind":"Ingress","metadata":{"name":"good"},"spec":{"defaultBackend":{"service":{"name":"web","port":{"number":80}}}}}"#;

    #[cfg(feature = "yaml")]
    const GOOD_YAML: &str =
        "kind: Ingress\nmetadata: {name: good}\nspec: {defaultBackend: {service: {name: web, port: {number: 80}}}}\n";

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
        let m = Manifests::from_yaml(&format!("{text}---\n{GOOD_YAML}"));
        assert_eq!(m.ingresses.len(), 1);
        assert_eq!(m.ingresses[0].metadata.name, "good");
        assert_eq!(m.errors.len(), 1, "{:?}", m.errors);
        assert_eq!(m.errors[0].limit, Some(Limit::AliasExpansion));
        assert!(
            m.errors[0].message.contains("billion laughs"),
            "{}",
            m.errors[0]
        );
    }

    /// Few alias jumps, each repeating a long list: within the parser's own limit on jumps,
    /// quadratic in the document's size without the expansion budget.
    #[cfg(feature = "yaml")]
    #[test]
    fn yaml_aliases_of_a_long_list_are_bounded() {
        let n = 20_000;
        let text = format!(
            "kind: Ingress\nmetadata: {{name: a}}\nx: &x [{}]\ny: [{}]\n",
            "x, ".repeat(n),
            "*x, ".repeat(n)
        );
        let m = Manifests::from_yaml(&text);
        assert_eq!(
            m.errors[0].limit,
            Some(Limit::AliasExpansion),
            "{}",
            m.errors[0]
        );
        // A few aliases of a small node are fine.
        let m = Manifests::from_yaml(
            "kind: Ingress\nmetadata: {name: a}\nspec:\n  defaultBackend: &b {service: {name: web, port: {number: 80}}}\n  rules:\n  - http:\n      paths:\n      - {path: /a, pathType: Prefix, backend: *b}\n      - {path: /b, pathType: Prefix, backend: *b}\n",
        );
        assert!(m.errors.is_empty(), "{:?}", m.errors);
        assert_eq!(m.ingresses.len(), 1);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let nested = format!("{}{}", "[".repeat(1_000), "]".repeat(1_000));
        let json = Manifests::from_json(&format!(
            "{{\"kind\":\"Ingress\",\"x\":{nested}}}\n{GOOD_JSON}"
        ));
        assert_eq!(json.errors.len(), 1, "{:?}", json.errors);
        assert_eq!(json.errors[0].limit, Some(Limit::Depth));
        assert_eq!(
            json.errors[0].to_string(),
            "document 0: nesting deeper than 64 levels (LoadLimits::max_depth); not read"
        );
        assert_eq!(json.ingresses.len(), 1, "the next document is still read");
        #[cfg(feature = "yaml")]
        {
            let yaml = Manifests::from_yaml(&format!("kind: Ingress\nx: {nested}\n"));
            assert_eq!(
                yaml.errors[0].limit,
                Some(Limit::Depth),
                "{}",
                yaml.errors[0]
            );
            // Without the pre-check this takes minutes: the scanner is quadratic in depth.
            let deep = format!("kind: Ingress\nx: {}\n", "{a: ".repeat(200_000));
            let yaml = Manifests::from_yaml(&deep);
            assert_eq!(
                yaml.errors[0].limit,
                Some(Limit::Depth),
                "{}",
                yaml.errors[0]
            );
            // Block collections nest without brackets.
            let block = format!("kind: Ingress\nx:\n{}y\n", "- ".repeat(10_000));
            let yaml = Manifests::from_yaml(&block);
            assert_eq!(
                yaml.errors[0].limit,
                Some(Limit::Depth),
                "{}",
                yaml.errors[0]
            );
            assert!(yaml.errors[0].message.contains("nesting deeper than 64"));
        }
    }

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
    fn json_values_are_delimited_before_parsing() {
        let text = format!(
            "{GOOD_JSON} {{\"kind\": \"Ingress\", \"x\": [1 2]}} \"a string with {{ and [\" 7 {GOOD_JSON}"
        );
        let m = Manifests::from_json(&text);
        assert_eq!(m.ingresses.len(), 2, "{:?}", m.errors);
        let errors: Vec<_> = m.errors.iter().map(|e| (e.document, e.limit)).collect();
        assert_eq!(errors, [(1, None), (2, None), (3, None)]);
        // Escaped quotes and brackets in strings do not end or nest a value.
        let m = Manifests::from_json(
            r#"{"kind":"Ingress","metadata":{"name":"a","annotations":{"x":"\"}]\\"}}}"#,
        );
        assert!(m.errors.is_empty(), "{:?}", m.errors);
        assert_eq!(m.ingresses[0].metadata.annotations["x"], "\"}]\\");
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
        // But not larger than a document.
        let list = format!("[{}]", [fits.as_str(); 9].join(","));
        assert_eq!(list.len(), 9010);
        let m = Manifests::from_json_with(&list, &limits);
        assert_eq!(m.errors[0].limit, Some(Limit::DocumentBytes));
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

    #[cfg(feature = "yaml")]
    #[test]
    fn many_empty_yaml_documents_are_skipped_lazily() {
        let text = format!(
            "{}{GOOD_YAML}---\n# only a comment\n...\n",
            "---\n".repeat(100_000)
        );
        let limits = LoadLimits {
            max_objects: 1,
            ..LoadLimits::default()
        };
        let m = Manifests::from_yaml_with(&text, &limits);
        assert_eq!(m.ingresses.len(), 1);
        assert!(m.errors.is_empty(), "{:?}", m.errors);
        assert_eq!(YamlDocuments::new(&text).count(), 1);
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
