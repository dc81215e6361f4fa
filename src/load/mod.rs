//! Reading manifests: every kind the crate reads, from JSON or YAML, within limits.
//!
//! See [Manifests] for the model.

use std::io::{self, BufRead, BufReader, Read};

use crate::model::{ConfigMap, EndpointSlice, Ingress, IngressClass, Secret, Service};
use crate::reconcile::Object;

#[cfg(test)]
mod fixtures;
mod json;
mod limits;
mod loader;
mod node;
#[cfg(feature = "yaml")]
mod yaml;

use limits::within_input_limit;
pub use limits::{Limit, LoadLimits};
use loader::Loader;

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
    /// ConfigMaps (`v1`), in input order: controller settings.
    pub config_maps: Vec<ConfigMap>,
    /// How many objects of other kinds (Deployments, Pods, …) were skipped.
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
        let (text, _) = within_input_limit(text, limits);
        let mut loader = Loader::new(limits);
        loader
            .json(text.as_bytes(), 0)
            .expect("a str reads without error and is UTF-8");
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
        let mut loader = Loader::new(limits);
        loader.yaml(text, truncated);
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
    /// JSON is read from `reader` a top-level value at a time, and the items of a list (a
    /// top-level array, or an object's `items` array such as `kubectl get -o json` prints) one
    /// at a time, so that reading holds one value or item besides the objects read: a list of
    /// any size within the input limit is read, each item within
    /// [`LoadLimits::max_document_bytes`]. YAML is read whole, then document by document.
    ///
    /// # Errors
    ///
    /// What reading fails with, and [`io::ErrorKind::InvalidData`] when the text is not UTF-8.
    pub fn read(reader: impl Read, limits: &LoadLimits) -> io::Result<Manifests> {
        Manifests::read_with(reader, limits, Some)
    }

    /// Reads like [`Manifests::read`], offering each object to `take` as soon as it is read:
    /// what `take` keeps (returning `None`) is not held in the result, what it gives back is.
    /// ConfigMaps are always kept in the result.
    ///
    /// This is how a large input is read without holding every object: a reader that needs
    /// only part of each object keeps that part. For example, Services and EndpointSlices
    /// taken into an [`EndpointObjects`](crate::EndpointObjects) cost a fraction of the
    /// objects themselves.
    ///
    /// An object handed to `take` stays taken when the document it came from turns out not
    /// to be readable as a whole (a list cut by [`LoadLimits::max_input_bytes`], or whose
    /// outer object is malformed), or not to be a list at all (an object of another kind with
    /// an `items` field, whose `kind` came after its items): the result's
    /// [`Manifests::errors`] then has an error for the document, and a caller that refuses
    /// input with errors should drop what it took.
    ///
    /// ```
    /// use ingress_router::{EndpointObjects, LoadLimits, Manifests, Object};
    ///
    /// let text = r#"{"kind": "Service", "apiVersion": "v1", "metadata": {"name": "web"}}
    /// {"kind": "Ingress", "apiVersion": "networking.k8s.io/v1", "metadata": {"name": "web"}}"#;
    /// let mut services = EndpointObjects::new();
    /// let read = Manifests::read_with(text.as_bytes(), &LoadLimits::default(), |object| {
    ///     match object {
    ///         Object::Service(s) => services.insert_service(&s),
    ///         other => return Some(other),
    ///     }
    ///     None
    /// })
    /// .unwrap();
    /// assert_eq!((read.ingresses.len(), read.services.len()), (1, 0));
    /// assert_eq!(services.service_count(), 1);
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Manifests::read`].
    pub fn read_with(
        reader: impl Read,
        limits: &LoadLimits,
        mut take: impl FnMut(Object) -> Option<Object>,
    ) -> io::Result<Manifests> {
        let most = u64::try_from(limits.max_input_bytes.saturating_add(1)).unwrap_or(u64::MAX);
        let mut reader = BufReader::with_capacity(64 * 1024, reader.take(most));
        // The whitespace before the first value: YAML counts its lines.
        let mut head = Vec::new();
        let first = loop {
            let buf = match reader.fill_buf() {
                Ok(buf) => buf,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let blank = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
            let first = buf.get(blank).copied();
            let at_end = buf.is_empty();
            head.extend_from_slice(&buf[..blank]);
            reader.consume(blank);
            if first.is_some() || at_end {
                break first;
            }
        };
        let mut loader = Loader::new(limits);
        loader.take = Some(&mut take);
        if !cfg!(feature = "yaml") || matches!(first, Some(b'{' | b'[')) {
            // JSON is read value by value, and a list item by item, from the reader.
            loader.json(reader, head.len() as u64)?;
            return Ok(loader.out);
        }
        #[cfg(feature = "yaml")]
        {
            let mut bytes = head;
            reader.read_to_end(&mut bytes)?;
            let truncated = bytes.len() > limits.max_input_bytes;
            let text = match std::str::from_utf8(&bytes) {
                Ok(text) => text,
                // A character cut in two by the limit.
                Err(e) if truncated && e.error_len().is_none() => {
                    std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default()
                }
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            };
            loader.yaml(text, truncated);
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
        self.config_maps.extend(other.config_maps);
        self.skipped += other.skipped;
        self.errors.extend(other.errors);
    }
}

#[cfg(all(test, feature = "yaml"))]
mod tests {
    use super::fixtures::*;
    use super::*;

    /// A JSON stream and a YAML stream of every kind, a `kind: List` among them, with an
    /// unreadable document and an unknown kind.
    fn inputs() -> [String; 2] {
        let service = r#"{"kind":"Service","apiVersion":"v1","metadata":{"name":"web"},"spec":{"ports":[{"port":80}]}}"#;
        let slice = r#"{"kind":"EndpointSlice","apiVersion":"discovery.k8s.io/v1","metadata":{"name":"web-1","labels":{"kubernetes.io/service-name":"web"}},"addressType":"IPv4","endpoints":[{"addresses":["10.0.0.1"]}]}"#;
        let secret = r#"{"kind":"Secret","apiVersion":"v1","metadata":{"name":"tls"},"type":"kubernetes.io/tls"}"#;
        let config =
            r#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"c"},"data":{"a":"b"}}"#;
        let class = r#"{"kind":"IngressClass","apiVersion":"networking.k8s.io/v1","metadata":{"name":"edge"},"spec":{"controller":"x/y"}}"#;
        let json = format!(
            "{INGRESS_JSON}\n{service}\n{{\"kind\":\"List\",\"items\":[{slice},{secret},{GOOD_JSON}]}}\n\
             {config}\n{class}\n{{\"kind\":\"Pod\"}}\n{{\"kind\":\"Service\",\"spec\":7}}\n"
        );
        let yaml = [
            INGRESS_JSON,
            service,
            slice,
            secret,
            config,
            class,
            GOOD_JSON,
        ]
        .join("\n---\n");
        [json, yaml]
    }

    #[test]
    fn read_with_hands_over_what_it_takes_and_keeps_the_rest() {
        let limits = LoadLimits::default();
        for text in inputs() {
            let whole = Manifests::read(text.as_bytes(), &limits).unwrap();
            assert!(!whole.services.is_empty() && !whole.endpoint_slices.is_empty());
            // Given everything back: the same as `read`.
            let back = Manifests::read_with(text.as_bytes(), &limits, Some).unwrap();
            assert_eq!(format!("{back:?}"), format!("{whole:?}"));
            // Services and slices taken, in input order; the rest kept.
            let mut taken = Vec::new();
            let rest = Manifests::read_with(text.as_bytes(), &limits, |object| match object {
                Object::Service(_) | Object::EndpointSlice(_) => {
                    taken.push(object);
                    None
                }
                other => Some(other),
            })
            .unwrap();
            let mut expected: Vec<Object> =
                whole.services.iter().cloned().map(Object::from).collect();
            expected.extend(whole.endpoint_slices.iter().cloned().map(Object::from));
            taken.sort_by_key(|o| matches!(o, Object::EndpointSlice(_)));
            assert_eq!(taken, expected);
            assert!(rest.services.is_empty() && rest.endpoint_slices.is_empty());
            assert_eq!(rest.ingresses, whole.ingresses);
            assert_eq!(rest.ingress_classes, whole.ingress_classes);
            assert_eq!(rest.secrets, whole.secrets);
            assert_eq!(rest.config_maps, whole.config_maps);
            assert_eq!((rest.skipped, &rest.errors), (whole.skipped, &whole.errors));
        }
    }

    #[test]
    fn items_handed_over_from_a_document_that_is_no_list_are_an_error() {
        // `kind` after `items`, as kubectl prints it: the items are read before the kind says
        // whether the document is a list.
        let service = r#"{"kind":"Service","apiVersion":"v1","metadata":{"name":"web"}}"#;
        let text = format!(r#"{{"items":[{service}],"kind":"Secret","metadata":{{"name":"s"}}}}"#);
        let limits = LoadLimits::default();
        // `read` takes the item back and reads the document as one Secret.
        let whole = Manifests::read(text.as_bytes(), &limits).unwrap();
        assert_eq!((whole.services.len(), whole.secrets.len()), (0, 1));
        assert!(whole.errors.is_empty());
        // Handed over, it cannot be taken back: the document is an error.
        let mut taken = 0;
        let read = Manifests::read_with(text.as_bytes(), &limits, |object| match object {
            Object::Service(_) => {
                taken += 1;
                None
            }
            other => Some(other),
        })
        .unwrap();
        assert_eq!(taken, 1);
        assert_eq!(read.errors.len(), 1, "{:?}", read.errors);
        assert!(
            read.errors[0].to_string().contains("not a list"),
            "{}",
            read.errors[0]
        );
        // Given back, nothing was kept: no error, as with `read`.
        let back = Manifests::read_with(text.as_bytes(), &limits, Some).unwrap();
        assert!(back.errors.is_empty());
    }

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
