//! Whether the Kubernetes apiserver would accept an Ingress or an IngressClass, and why not.
//!
//! [`validate_ingress`] and [`validate_ingress_class`] give the verdicts of the apiserver's create
//! validation for `networking.k8s.io/v1` (kubernetes/kubernetes
//! `pkg/apis/networking/validation`, with the name and format checks of apimachinery
//! `pkg/util/validation`), with the apiserver's field paths and wording. An empty list means the
//! apiserver accepts the object; every error names the object, the field and what is wrong:
//!
//! ```
//! use ingress_router::model::Ingress;
//! use ingress_router::validate::validate_ingress;
//!
//! let ingress: Ingress = serde_json::from_str(r#"{
//!   "metadata": {"name": "site"},
//!   "spec": {"rules": [{"host": "shop.example.com", "http": {"paths": [
//!     {"path": "/a//b", "pathType": "Prefix",
//!      "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}
//! }"#).unwrap();
//! let errors = validate_ingress(&ingress);
//! assert_eq!(
//!     errors[0].to_string(),
//!     r#"default/site: spec.rules[0].http.paths[0].path: Invalid value: "/a//b": must not contain '//'"#
//! );
//! ```
//!
//! # What is checked
//!
//! - `metadata`: the name (required, a DNS-1123 subdomain), an Ingress's namespace when one is
//!   given (a DNS-1123 label), label keys and values, annotation keys and the total annotation
//!   size.
//! - Ingress `spec`: `rules` or `defaultBackend`; rule hosts; `http.paths`, their `pathType`,
//!   `path` and backend; TLS hosts and secret names; `ingressClassName`.
//! - IngressClass `spec`: `controller` and `parameters`.
//!
//! The wording is that of the released Kubernetes versions (e.g. `must be no more than 253
//! characters`, `kind is required`).
//!
//! # What is deliberately not checked
//!
//! - The rule that the `kubernetes.io/ingress.class` annotation must equal
//!   `spec.ingressClassName` when both are set. The apiserver enforces it only when an object is
//!   created, so objects stored before the rule exist in real clusters, and class dispatch decides
//!   between the two anyway (`ingressClassName` wins).
//! - Fields the object model does not keep (`generateName`, `ownerReferences`, `finalizers`,
//!   `managedFields`) and fields the apiserver fills in itself: an Ingress without a namespace gets
//!   the request's namespace, `generation` is set by the apiserver, the namespace of an
//!   IngressClass (cluster-scoped) is dropped, and an unset `parameters.scope` is defaulted to
//!   `Cluster` before validation.
//! - The leniencies the apiserver grants only on update (keeping an invalid TLS secret name or an
//!   invalid rule under a wildcard host that the stored object already had): objects are judged
//!   as if they were being created.
//! - Service names are DNS-1035 labels; the `RelaxedServiceNameValidation` feature gate (off by
//!   default) is taken to be off.

use std::fmt;
use std::fmt::Write as _;

use crate::model::{
    HttpIngressPath, Ingress, IngressBackend, IngressClass, IngressClassParametersReference,
    IngressRule, IngressSpec, IngressTls, ObjectMeta, ObjectRef, TypedLocalObjectReference,
};

/// What is wrong with a field, in the apiserver's terms (its `field.ErrorType`s).
///
/// Displays the way `kubectl` shows the apiserver's field errors, e.g.
/// `Invalid value: "/a//b": must not contain '//'`.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// A required field is missing or empty. Displays `Required value` or
    /// `Required value: <detail>`.
    Required {
        /// Why the value is required; may be empty.
        detail: String,
    },
    /// The value is malformed. Displays `Invalid value: <value>: <detail>`.
    Invalid {
        /// The offending value as the apiserver prints it: a string in double quotes with Go's
        /// escapes (`"Foo.com"`), a number bare (`65536`), `null` for an absent list. Build it
        /// with [`Violation::invalid`] or [`Violation::invalid_number`].
        value: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The value is not one of a fixed set. Displays
    /// `Unsupported value: "<value>": supported values: "A", "B"`.
    NotSupported {
        /// The value given (unquoted).
        value: String,
        /// The values that are accepted.
        supported: &'static [&'static str],
    },
    /// The field may not be set in this situation. Displays `Forbidden: <detail>`.
    Forbidden {
        /// Why it is forbidden.
        detail: String,
    },
    /// The value is longer than allowed. Displays `Too long: may not be more than <max> bytes`.
    TooLong {
        /// The maximum length in bytes.
        max: usize,
    },
}

impl Violation {
    /// An [`Violation::Invalid`] for a string value, quoted the way the apiserver prints it.
    pub fn invalid(value: &str, detail: impl Into<String>) -> Self {
        Violation::Invalid {
            value: go_quote(value),
            detail: detail.into(),
        }
    }

    /// An [`Violation::Invalid`] for a number, printed bare the way the apiserver prints it.
    pub fn invalid_number(value: i64, detail: impl Into<String>) -> Self {
        Violation::Invalid {
            value: value.to_string(),
            detail: detail.into(),
        }
    }

    fn required(detail: &str) -> Self {
        Violation::Required {
            detail: detail.to_owned(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (head, detail) = match self {
            Violation::Required { detail } => ("Required value".to_owned(), detail.as_str()),
            Violation::Invalid { value, detail } => {
                (format!("Invalid value: {value}"), detail.as_str())
            }
            Violation::NotSupported { value, supported } => {
                write!(f, "Unsupported value: {}", go_quote(value))?;
                for (i, s) in supported.iter().enumerate() {
                    let sep = if i == 0 { ": supported values: " } else { ", " };
                    write!(f, "{sep}{}", go_quote(s))?;
                }
                return Ok(());
            }
            Violation::Forbidden { detail } => ("Forbidden".to_owned(), detail.as_str()),
            Violation::TooLong { max } => {
                let unit = if *max == 1 { "byte" } else { "bytes" };
                return write!(f, "Too long: may not be more than {max} {unit}");
            }
        };
        f.write_str(&head)?;
        if !detail.is_empty() {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

/// One validation error: which object, which field, what is wrong.
///
/// Displays as `<object>: <field>: <violation>`, e.g.
/// `default/site: spec.rules[0].http.paths[2].path: Invalid value: "/a//b": must not contain '//'`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{object}: {field}: {violation}")]
pub struct ValidationError {
    /// The object the error is about.
    pub object: ObjectRef,
    /// The field, as the apiserver names it (`spec.rules[0].host`).
    pub field: String,
    /// What is wrong with the field.
    pub violation: Violation,
}

impl ValidationError {
    /// What is wrong, without the object and field, e.g.
    /// `Invalid value: "/a//b": must not contain '//'`.
    pub fn message(&self) -> String {
        self.violation.to_string()
    }
}

/// Validates an Ingress as the apiserver does when it is created; an empty list means it is
/// accepted. See the [module docs](self) for what is and is not checked.
pub fn validate_ingress(ingress: &Ingress) -> Vec<ValidationError> {
    let mut errs = Errors::new(ingress.object_ref());
    validate_object_meta(&ingress.metadata, true, &mut errs);
    validate_ingress_spec(&ingress.spec, &mut errs);
    errs.list
}

/// Validates an IngressClass as the apiserver does when it is created; an empty list means it is
/// accepted. See the [module docs](self) for what is and is not checked.
pub fn validate_ingress_class(class: &IngressClass) -> Vec<ValidationError> {
    let mut errs = Errors::new(class.object_ref());
    validate_object_meta(&class.metadata, false, &mut errs);
    validate_controller(&class.spec.controller, &mut errs);
    if let Some(params) = &class.spec.parameters {
        validate_parameters(params, &mut errs);
    }
    errs.list
}

struct Errors {
    object: ObjectRef,
    list: Vec<ValidationError>,
}

impl Errors {
    fn new(object: ObjectRef) -> Self {
        Errors {
            object,
            list: Vec::new(),
        }
    }

    fn push(&mut self, field: &str, violation: Violation) {
        self.list.push(ValidationError {
            object: self.object.clone(),
            field: field.to_owned(),
            violation,
        });
    }

    fn invalid_each(&mut self, field: &str, value: &str, messages: Vec<String>) {
        for msg in messages {
            self.push(field, Violation::invalid(value, msg));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Objects

const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;
const MAX_CONTROLLER_LEN: usize = 250;
const PATH_TYPES: &[&str] = &["Exact", "ImplementationSpecific", "Prefix"];
const SCOPES: &[&str] = &["Cluster", "Namespace"];
const INVALID_PATH_SEQUENCES: [&str; 5] = ["//", "/./", "/../", "%2f", "%2F"];
const INVALID_PATH_SUFFIXES: [&str; 2] = ["/..", "/."];

fn validate_object_meta(meta: &ObjectMeta, namespaced: bool, errs: &mut Errors) {
    if meta.name.is_empty() {
        errs.push(
            "metadata.name",
            Violation::required("name or generateName is required"),
        );
    } else {
        errs.invalid_each(
            "metadata.name",
            &meta.name,
            is_dns1123_subdomain(&meta.name),
        );
    }
    // An absent namespace is filled in from the request; a cluster-scoped object's is dropped.
    if namespaced {
        if let Some(ns) = meta.namespace.as_deref().filter(|ns| !ns.is_empty()) {
            errs.invalid_each("metadata.namespace", ns, is_dns1123_label(ns));
        }
    }
    for (key, value) in &meta.labels {
        errs.invalid_each("metadata.labels", key, is_qualified_name(key));
        errs.invalid_each("metadata.labels", value, is_label_value(value));
    }
    let mut size = 0usize;
    for (key, value) in &meta.annotations {
        // Annotation keys are qualified names compared without regard to case.
        errs.invalid_each(
            "metadata.annotations",
            key,
            is_qualified_name(&go_to_lower(key)),
        );
        size = size.saturating_add(key.len()).saturating_add(value.len());
    }
    if size > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(
            "metadata.annotations",
            Violation::TooLong {
                max: TOTAL_ANNOTATION_SIZE_LIMIT,
            },
        );
    }
}

fn validate_ingress_spec(spec: &IngressSpec, errs: &mut Errors) {
    if spec.rules.is_empty() && spec.default_backend.is_none() {
        errs.push(
            "spec",
            Violation::Invalid {
                value: "null".to_owned(),
                detail: "either `defaultBackend` or `rules` must be specified".to_owned(),
            },
        );
    }
    if let Some(backend) = &spec.default_backend {
        validate_backend(backend, "spec.defaultBackend", errs);
    }
    for (i, rule) in spec.rules.iter().enumerate() {
        validate_rule(rule, i, errs);
    }
    for (i, tls) in spec.tls.iter().enumerate() {
        validate_tls(tls, i, errs);
    }
    if let Some(class) = &spec.ingress_class_name {
        errs.invalid_each("spec.ingressClassName", class, is_dns1123_subdomain(class));
    }
}

fn validate_rule(rule: &IngressRule, i: usize, errs: &mut Errors) {
    let host = rule.host.as_deref().unwrap_or("");
    if !host.is_empty() {
        let field = format!("spec.rules[{i}].host");
        if is_ip_address(host) {
            errs.push(
                &field,
                Violation::invalid(host, "must be a DNS name, not an IP address"),
            );
        }
        errs.invalid_each(&field, host, host_messages(host));
    }
    if let Some(http) = &rule.http {
        if http.paths.is_empty() {
            errs.push(
                &format!("spec.rules[{i}].http.paths"),
                Violation::required(""),
            );
        }
        for (j, path) in http.paths.iter().enumerate() {
            validate_http_path(path, &format!("spec.rules[{i}].http.paths[{j}]"), errs);
        }
    }
}

fn host_messages(host: &str) -> Vec<String> {
    if host.contains('*') {
        is_wildcard_dns1123_subdomain(host)
    } else {
        is_dns1123_subdomain(host)
    }
}

fn validate_http_path(path: &HttpIngressPath, field: &str, errs: &mut Errors) {
    let Some(path_type) = path.path_type.as_deref() else {
        // The apiserver stops here: without a pathType the backend is not looked at.
        errs.push(
            &format!("{field}.pathType"),
            Violation::required("pathType must be specified"),
        );
        return;
    };
    let value = path.path.as_deref().unwrap_or("");
    let path_field = format!("{field}.path");
    match path_type {
        "Exact" | "Prefix" => {
            if !value.starts_with('/') {
                errs.push(
                    &path_field,
                    Violation::invalid(value, "must be an absolute path"),
                );
            }
            if !value.is_empty() {
                for seq in INVALID_PATH_SEQUENCES {
                    if value.contains(seq) {
                        errs.push(
                            &path_field,
                            Violation::invalid(value, format!("must not contain '{seq}'")),
                        );
                    }
                }
                for suffix in INVALID_PATH_SUFFIXES {
                    if value.ends_with(suffix) {
                        errs.push(
                            &path_field,
                            Violation::invalid(value, format!("cannot end with '{suffix}'")),
                        );
                    }
                }
            }
        }
        "ImplementationSpecific" => {
            if !value.is_empty() && !value.starts_with('/') {
                errs.push(
                    &path_field,
                    Violation::invalid(value, "must be an absolute path"),
                );
            }
        }
        other => errs.push(
            &format!("{field}.pathType"),
            Violation::NotSupported {
                value: other.to_owned(),
                supported: PATH_TYPES,
            },
        ),
    }
    validate_backend(&path.backend, &format!("{field}.backend"), errs);
}

fn validate_backend(backend: &IngressBackend, field: &str, errs: &mut Errors) {
    match (&backend.resource, &backend.service) {
        (Some(_), Some(_)) => errs.push(
            field,
            Violation::invalid("", "cannot set both resource and service backends"),
        ),
        (Some(resource), None) => validate_resource(resource, &format!("{field}.resource"), errs),
        (None, Some(service)) => {
            let name_field = format!("{field}.service.name");
            if service.name.is_empty() {
                errs.push(&name_field, Violation::required(""));
            } else {
                errs.invalid_each(&name_field, &service.name, is_dns1035_label(&service.name));
            }
            let name = service.port.name.as_deref().unwrap_or("");
            let number = service.port.number.unwrap_or(0);
            match (!name.is_empty(), number != 0) {
                (true, true) => errs.push(
                    field,
                    Violation::invalid("", "cannot set both port name & port number"),
                ),
                (true, false) => errs.invalid_each(
                    &format!("{field}.service.port.name"),
                    name,
                    is_valid_port_name(name),
                ),
                (false, true) => {
                    if !(1..=65535).contains(&number) {
                        errs.push(
                            &format!("{field}.service.port.number"),
                            Violation::invalid_number(
                                number,
                                "must be between 1 and 65535, inclusive",
                            ),
                        );
                    }
                }
                (false, false) => {
                    errs.push(
                        field,
                        Violation::required("port name or number is required"),
                    );
                }
            }
        }
        (None, None) => errs.push(
            field,
            Violation::invalid("", "resource or service backend is required"),
        ),
    }
}

fn validate_resource(resource: &TypedLocalObjectReference, field: &str, errs: &mut Errors) {
    validate_object_reference(
        resource.api_group.as_deref(),
        &resource.kind,
        &resource.name,
        field,
        errs,
    );
}

fn validate_object_reference(
    api_group: Option<&str>,
    kind: &str,
    name: &str,
    field: &str,
    errs: &mut Errors,
) {
    if let Some(group) = api_group {
        errs.invalid_each(
            &format!("{field}.apiGroup"),
            group,
            is_dns1123_subdomain(group),
        );
    }
    for (sub, value) in [("kind", kind), ("name", name)] {
        let sub_field = format!("{field}.{sub}");
        if value.is_empty() {
            errs.push(
                &sub_field,
                Violation::required(&format!("{sub} is required")),
            );
        } else {
            errs.invalid_each(&sub_field, value, is_path_segment_name(value));
        }
    }
}

fn validate_tls(tls: &IngressTls, i: usize, errs: &mut Errors) {
    for (j, host) in tls.hosts.iter().enumerate() {
        errs.invalid_each(
            &format!("spec.tls[{i}].hosts[{j}]"),
            host,
            host_messages(host),
        );
    }
    if let Some(secret) = tls.secret_name.as_deref().filter(|s| !s.is_empty()) {
        errs.invalid_each(
            &format!("spec.tls[{i}].secretName"),
            secret,
            is_dns1123_subdomain(secret),
        );
    }
}

fn validate_controller(controller: &str, errs: &mut Errors) {
    const FIELD: &str = "spec.controller";
    if controller.len() > MAX_CONTROLLER_LEN {
        errs.push(
            FIELD,
            Violation::TooLong {
                max: MAX_CONTROLLER_LEN,
            },
        );
    }
    // IsDomainPrefixedPath: a DNS subdomain, `/`, then a non-empty HTTP path.
    if controller.is_empty() {
        errs.push(FIELD, Violation::required(""));
        return;
    }
    let (host, path) = match controller.split_once('/') {
        Some((host, path)) if !host.is_empty() && !path.is_empty() => (host, path),
        _ => {
            errs.push(
                FIELD,
                Violation::invalid(
                    controller,
                    "must be a domain-prefixed path (such as \"acme.io/foo\")",
                ),
            );
            return;
        }
    };
    errs.invalid_each(FIELD, host, is_dns1123_subdomain(host));
    if !path.bytes().all(is_http_path_byte) {
        errs.push(
            FIELD,
            Violation::invalid(path, regex_error("Invalid path", HTTP_PATH_FMT, &[])),
        );
    }
}

fn validate_parameters(params: &IngressClassParametersReference, errs: &mut Errors) {
    const FIELD: &str = "spec.parameters";
    validate_object_reference(
        params.api_group.as_deref(),
        &params.kind,
        &params.name,
        FIELD,
        errs,
    );
    // The apiserver defaults an unset scope to `Cluster` before validating.
    match params.scope.as_deref().unwrap_or("Cluster") {
        "Namespace" => match params.namespace.as_deref() {
            None => errs.push(
                "spec.parameters.namespace",
                Violation::required("`parameters.scope` is set to 'Namespace'"),
            ),
            Some(ns) => errs.invalid_each("spec.parameters.namespace", ns, is_dns1123_label(ns)),
        },
        "Cluster" => {
            if params.namespace.is_some() {
                errs.push(
                    "spec.parameters.namespace",
                    Violation::Forbidden {
                        detail: "`parameters.scope` is set to 'Cluster'".to_owned(),
                    },
                );
            }
        }
        other => errs.push(
            "spec.parameters.scope",
            Violation::NotSupported {
                value: other.to_owned(),
                supported: SCOPES,
            },
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Name and format predicates (apimachinery `pkg/util/validation`). Each returns the messages the
// apiserver would print; an empty list means the value is valid.

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const WILDCARD_DNS1123_SUBDOMAIN_FMT: &str =
    "\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const HTTP_PATH_FMT: &str = "[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+";

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
///
/// ```
/// use ingress_router::validate::is_dns1123_subdomain;
/// assert!(is_dns1123_subdomain("shop.example.com").is_empty());
/// assert!(is_dns1123_subdomain("Shop.example.com")[0].starts_with("a lowercase RFC 1123 subdomain"));
/// ```
pub fn is_dns1123_subdomain(value: &str) -> Vec<String> {
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
///
/// ```
/// use ingress_router::validate::is_dns1123_label;
/// assert!(is_dns1123_label("shop").is_empty());
/// assert_eq!(is_dns1123_label("a.b"), ["must not contain dots"]);
/// ```
pub fn is_dns1123_label(value: &str) -> Vec<String> {
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
///
/// ```
/// use ingress_router::validate::is_wildcard_dns1123_subdomain;
/// assert!(is_wildcard_dns1123_subdomain("*.example.com").is_empty());
/// assert_eq!(is_wildcard_dns1123_subdomain("*.*.example.com").len(), 1);
/// ```
pub fn is_wildcard_dns1123_subdomain(value: &str) -> Vec<String> {
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
///
/// ```
/// use ingress_router::validate::is_dns1035_label;
/// assert!(is_dns1035_label("web").is_empty());
/// assert_eq!(is_dns1035_label("1web").len(), 1);
/// ```
pub fn is_dns1035_label(value: &str) -> Vec<String> {
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
///
/// ```
/// use ingress_router::validate::is_valid_port_name;
/// assert!(is_valid_port_name("http").is_empty());
/// assert_eq!(is_valid_port_name("8080"), ["must contain at least one letter (a-z)"]);
/// ```
pub fn is_valid_port_name(port: &str) -> Vec<String> {
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
fn is_qualified_name(value: &str) -> Vec<String> {
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

fn is_label_value(value: &str) -> Vec<String> {
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
fn is_path_segment_name(name: &str) -> Vec<String> {
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

fn is_http_path_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"/-._~%!$&'()*+,;=:".contains(&c)
}

fn max_len_error(max: usize) -> String {
    format!("must be no more than {max} characters")
}

// apimachinery's RegexError, including its spacing between examples.
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
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
fn go_to_lower(value: &str) -> String {
    value
        .chars()
        .map(|c| c.to_lowercase().next().unwrap_or(c))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// IP addresses, as the apiserver parses them (`netutils.ParseIPSloppy`): IPv4 octets may carry
// leading zeros (`010.1.2.3`) and IPv6 groups may be longer than four hex digits, so the std
// parsers would call such hosts DNS names where the apiserver rejects them as IPs.

const PARSE_BIG: u32 = 0xFF_FFFF;

fn is_ip_address(s: &str) -> bool {
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

// ---------------------------------------------------------------------------------------------
// Quoting values as Go's `%q` does (strconv.Quote).

fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if go_is_print(c) => out.push(c),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if u32::from(c) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if u32::from(c) < 0x1_0000 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => {
                let _ = write!(out, "\\U{:08x}", u32::from(c));
            }
        }
    }
    out.push('"');
    out
}

// Go's `strconv.IsPrint`, closely: letters, marks, numbers, punctuation, symbols and the ASCII
// space. Controls, separators, format characters and private-use code points are escaped.
fn go_is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(
        u32::from(c),
        0xAD | 0x600..=0x605
            | 0x61C
            | 0x6DD
            | 0x70F
            | 0x890..=0x891
            | 0x8E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x206F
            | 0xE000..=0xF8FF
            | 0xFDD0..=0xFDEF
            | 0xFEFF
            | 0xFFF0..=0xFFFB
            | 0xFFFE..=0xFFFF
            | 0x110BD
            | 0x110CD
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0000..=0xE007F
            | 0xF0000..=0x10FFFF
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{HttpIngressRuleValue, IngressServiceBackend, ServiceBackendPort};

    const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case \
        alphanumeric characters, '-' or '.', and must start and end with an alphanumeric \
        character (e.g. 'example.com', regex used for validation is \
        '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    const WILDCARD_MSG: &str = "a wildcard DNS-1123 subdomain must start with '*.', followed by \
        a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or \
        '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for \
        validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    const DNS1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric \
        characters or '-', start with an alphabetic character, and end with an alphanumeric \
        character (e.g. 'my-name',  or 'abc-123', regex used for validation is \
        '[a-z]([-a-z0-9]*[a-z0-9])?')";
    const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric \
        characters or '-', and must start and end with an alphanumeric character (e.g. \
        'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

    fn service(name: &str, number: i64) -> IngressBackend {
        IngressBackend {
            service: Some(IngressServiceBackend {
                name: name.to_owned(),
                port: ServiceBackendPort {
                    name: None,
                    number: Some(number),
                },
            }),
            resource: None,
        }
    }

    fn http_path(path: &str, path_type: Option<&str>, backend: IngressBackend) -> HttpIngressPath {
        HttpIngressPath {
            path: Some(path.to_owned()),
            path_type: path_type.map(str::to_owned),
            backend,
        }
    }

    // A valid Ingress `default/site` with one rule `example.com` and one path `/` → web:80.
    fn ingress() -> Ingress {
        let mut ing = Ingress::default();
        ing.metadata.name = "site".to_owned();
        ing.spec.rules = vec![IngressRule {
            host: Some("example.com".to_owned()),
            http: Some(HttpIngressRuleValue {
                paths: vec![http_path("/", Some("Prefix"), service("web", 80))],
            }),
        }];
        ing
    }

    fn with_path(path: HttpIngressPath) -> Ingress {
        let mut ing = ingress();
        ing.spec.rules[0].http.as_mut().unwrap().paths = vec![path];
        ing
    }

    fn with_backend(backend: IngressBackend) -> Ingress {
        with_path(http_path("/", Some("Prefix"), backend))
    }

    fn class() -> IngressClass {
        let mut c = IngressClass::default();
        c.metadata.name = "nginx".to_owned();
        c.spec.controller = "k8s.io/ingress-nginx".to_owned();
        c
    }

    fn params(kind: &str, name: &str) -> IngressClassParametersReference {
        IngressClassParametersReference {
            api_group: Some("k8s.example.com".to_owned()),
            kind: kind.to_owned(),
            name: name.to_owned(),
            scope: None,
            namespace: None,
        }
    }

    // (field, message) pairs, for compact assertions.
    fn pairs(errors: &[ValidationError]) -> Vec<(String, String)> {
        errors
            .iter()
            .map(|e| (e.field.clone(), e.message()))
            .collect()
    }

    fn one(errors: &[ValidationError]) -> (String, String) {
        assert_eq!(errors.len(), 1, "{errors:#?}");
        (errors[0].field.clone(), errors[0].message())
    }

    fn p(field: &str, message: &str) -> (String, String) {
        (field.to_owned(), message.to_owned())
    }

    const PATH0: &str = "spec.rules[0].http.paths[0]";

    #[test]
    fn minimal_objects_are_valid() {
        assert_eq!(validate_ingress(&ingress()), []);
        assert_eq!(validate_ingress_class(&class()), []);
    }

    #[test]
    fn error_display_names_object_field_and_violation() {
        let errs = validate_ingress(&with_path(http_path(
            "/a//b",
            Some("Prefix"),
            service("web", 80),
        )));
        assert_eq!(
            errs[0].to_string(),
            r#"default/site: spec.rules[0].http.paths[0].path: Invalid value: "/a//b": must not contain '//'"#
        );
        let mut ing = with_path(http_path("/a//b", Some("Prefix"), service("web", 80)));
        ing.metadata.namespace = Some("shop".to_owned());
        assert!(validate_ingress(&ing)[0]
            .to_string()
            .starts_with("shop/site: "));
        let mut c = class();
        c.spec.controller.clear();
        assert_eq!(
            validate_ingress_class(&c)[0].to_string(),
            "nginx: spec.controller: Required value"
        );
    }

    #[test]
    fn violation_display_matches_apiserver() {
        let cases = [
            (Violation::required(""), "Required value"),
            (
                Violation::required("x is required"),
                "Required value: x is required",
            ),
            (
                Violation::invalid("a\"b\n", "bad"),
                r#"Invalid value: "a\"b\n": bad"#,
            ),
            (
                Violation::invalid_number(65536, "bad"),
                "Invalid value: 65536: bad",
            ),
            (
                Violation::NotSupported {
                    value: "Regex".to_owned(),
                    supported: PATH_TYPES,
                },
                r#"Unsupported value: "Regex": supported values: "Exact", "ImplementationSpecific", "Prefix""#,
            ),
            (
                Violation::Forbidden {
                    detail: "no".to_owned(),
                },
                "Forbidden: no",
            ),
            (
                Violation::TooLong { max: 250 },
                "Too long: may not be more than 250 bytes",
            ),
            (
                Violation::TooLong { max: 1 },
                "Too long: may not be more than 1 byte",
            ),
        ];
        for (violation, text) in cases {
            assert_eq!(violation.to_string(), text);
        }
    }

    #[test]
    fn values_are_quoted_like_go() {
        assert_eq!(go_quote("plain"), r#""plain""#);
        assert_eq!(go_quote("\u{7}\u{1}\u{7f}"), r#""\a\x01\x7f""#);
        assert_eq!(go_quote("é✓"), "\"é✓\"");
        assert_eq!(go_quote("\u{85}\u{a0}\u{feff}"), r#""\u0085\u00a0\ufeff""#);
        assert_eq!(go_quote("\u{10ffff}"), r#""\U0010ffff""#);
        assert_eq!(go_quote("back\\slash"), r#""back\\slash""#);
    }

    #[test]
    fn metadata_name_is_required() {
        let mut ing = ingress();
        ing.metadata.name.clear();
        assert_eq!(
            one(&validate_ingress(&ing)),
            p(
                "metadata.name",
                "Required value: name or generateName is required"
            )
        );
        let mut c = class();
        c.metadata.name.clear();
        assert_eq!(
            one(&validate_ingress_class(&c)),
            p(
                "metadata.name",
                "Required value: name or generateName is required"
            )
        );
    }

    #[test]
    fn metadata_name_is_a_dns1123_subdomain() {
        let mut ing = ingress();
        ing.metadata.name = "my.site-1".to_owned();
        assert_eq!(validate_ingress(&ing), []);
        ing.metadata.name = "Site".to_owned();
        assert_eq!(
            one(&validate_ingress(&ing)),
            p(
                "metadata.name",
                &format!("Invalid value: \"Site\": {SUBDOMAIN_MSG}")
            )
        );
        let mut c = class();
        c.metadata.name = "x".repeat(254);
        let errs = validate_ingress_class(&c);
        assert_eq!(errs.len(), 1);
        assert!(errs[0]
            .message()
            .ends_with(": must be no more than 253 characters"));
    }

    #[test]
    fn metadata_namespace_is_a_dns1123_label() {
        let mut ing = ingress();
        ing.metadata.namespace = Some("shop-1".to_owned());
        assert_eq!(validate_ingress(&ing), []);
        ing.metadata.namespace = Some(String::new());
        assert_eq!(validate_ingress(&ing), []);
        ing.metadata.namespace = Some("shop.eu".to_owned());
        assert_eq!(
            one(&validate_ingress(&ing)),
            p(
                "metadata.namespace",
                "Invalid value: \"shop.eu\": must not contain dots"
            )
        );
        ing.metadata.namespace = Some("Shop".to_owned());
        assert_eq!(
            one(&validate_ingress(&ing)),
            p(
                "metadata.namespace",
                &format!("Invalid value: \"Shop\": {LABEL_MSG}")
            )
        );
        // An IngressClass is cluster-scoped: the apiserver drops a namespace it is given.
        let mut c = class();
        c.metadata.namespace = Some("Not Valid".to_owned());
        assert_eq!(validate_ingress_class(&c), []);
    }

    #[test]
    fn metadata_annotation_keys_are_qualified_names() {
        let mut ing = ingress();
        for key in [
            "kubernetes.io/ingress.class",
            "nginx.ingress.kubernetes.io/Rewrite-Target",
            "Example.COM/x",
            "simple",
        ] {
            ing.metadata
                .annotations
                .insert(key.to_owned(), "any value at all".to_owned());
        }
        assert_eq!(validate_ingress(&ing), []);
        let mut ing = ingress();
        ing.metadata
            .annotations
            .insert("a/b/c".to_owned(), String::new());
        ing.metadata
            .annotations
            .insert("/x".to_owned(), String::new());
        ing.metadata
            .annotations
            .insert("-x".to_owned(), String::new());
        let name_msg = "must consist of alphanumeric characters, '-', '_' or '.', and must start \
            and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', \
            regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
        assert_eq!(
            pairs(&validate_ingress(&ing)),
            [
                p(
                    "metadata.annotations",
                    &format!("Invalid value: \"-x\": name part {name_msg}")
                ),
                p(
                    "metadata.annotations",
                    "Invalid value: \"/x\": prefix part must be non-empty"
                ),
                p(
                    "metadata.annotations",
                    &format!(
                        "Invalid value: \"a/b/c\": a qualified name {name_msg} with an optional \
                         DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
                    )
                ),
            ]
        );
    }

    #[test]
    fn metadata_annotations_total_size_is_limited() {
        let mut ing = ingress();
        ing.metadata
            .annotations
            .insert("a".to_owned(), "x".repeat(256 * 1024 - 1));
        assert_eq!(validate_ingress(&ing), []);
        ing.metadata
            .annotations
            .insert("b".to_owned(), String::new());
        assert_eq!(
            one(&validate_ingress(&ing)),
            p(
                "metadata.annotations",
                "Too long: may not be more than 262144 bytes"
            )
        );
    }

    #[test]
    fn metadata_label_keys_are_qualified_names() {
        let mut ing = ingress();
        ing.metadata
            .labels
            .insert("app.kubernetes.io/name".to_owned(), "shop".to_owned());
        ing.metadata
            .labels
            .insert("Tier".to_owned(), "web".to_owned());
        assert_eq!(validate_ingress(&ing), []);
        // Unlike annotation keys, label key prefixes are case-sensitive.
        ing.metadata
            .labels
            .insert("Example.com/x".to_owned(), "v".to_owned());
        let errs = validate_ingress(&ing);
        let (field, msg) = one(&errs);
        assert_eq!(field, "metadata.labels");
        assert_eq!(
            msg,
            format!("Invalid value: \"Example.com/x\": prefix part {SUBDOMAIN_MSG}")
        );
        let mut ing = ingress();
        ing.metadata.labels.insert("x".repeat(64), String::new());
        assert_eq!(
            one(&validate_ingress(&ing)).1,
            format!(
                "Invalid value: \"{}\": name part must be no more than 63 characters",
                "x".repeat(64)
            )
        );
    }

    #[test]
    fn metadata_label_values_are_short_names_or_empty() {
        let mut ing = ingress();
        ing.metadata.labels.insert("a".to_owned(), String::new());
        ing.metadata
            .labels
            .insert("b".to_owned(), "My_value.1".to_owned());
        assert_eq!(validate_ingress(&ing), []);
        ing.metadata
            .labels
            .insert("c".to_owned(), "-bad".to_owned());
        assert_eq!(
            one(&validate_ingress(&ing)),
            p(
                "metadata.labels",
                "Invalid value: \"-bad\": a valid label must be an empty string or consist of \
                 alphanumeric characters, '-', '_' or '.', and must start and end with an \
                 alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used \
                 for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
            )
        );
        let mut ing = ingress();
        ing.metadata.labels.insert("c".to_owned(), "v".repeat(64));
        assert_eq!(
            one(&validate_ingress(&ing)).1.rsplit(": ").next(),
            Some("must be no more than 63 characters")
        );
    }

    #[test]
    fn spec_needs_rules_or_default_backend() {
        let mut ing = ingress();
        ing.spec.rules.clear();
        assert_eq!(
            one(&validate_ingress(&ing)),
            p(
                "spec",
                "Invalid value: null: either `defaultBackend` or `rules` must be specified"
            )
        );
        ing.spec.default_backend = Some(service("web", 80));
        assert_eq!(validate_ingress(&ing), []);
    }

    #[test]
    fn spec_default_backend_is_checked_as_a_backend() {
        let mut ing = ingress();
        ing.spec.default_backend = Some(service("Web", 0));
        assert_eq!(
            pairs(&validate_ingress(&ing)),
            [
                p(
                    "spec.defaultBackend.service.name",
                    &format!("Invalid value: \"Web\": {DNS1035_MSG}")
                ),
                p(
                    "spec.defaultBackend",
                    "Required value: port name or number is required"
                ),
            ]
        );
    }

    #[test]
    fn spec_ingress_class_name_is_a_dns1123_subdomain() {
        let mut ing = ingress();
        ing.spec.ingress_class_name = Some("nginx.internal".to_owned());
        assert_eq!(validate_ingress(&ing), []);
        ing.spec.ingress_class_name = Some(String::new());
        assert_eq!(
            one(&validate_ingress(&ing)),
            p(
                "spec.ingressClassName",
                &format!("Invalid value: \"\": {SUBDOMAIN_MSG}")
            )
        );
    }

    #[test]
    fn class_annotation_need_not_match_ingress_class_name() {
        let mut ing = ingress();
        ing.spec.ingress_class_name = Some("nginx".to_owned());
        ing.metadata.annotations.insert(
            "kubernetes.io/ingress.class".to_owned(),
            "traefik".to_owned(),
        );
        assert_eq!(validate_ingress(&ing), []);
    }

    #[test]
    fn rule_host_is_not_an_ip_address() {
        for host in ["1.2.3.4", "010.001.2.3", "0000000001.2.3.4"] {
            let mut ing = ingress();
            ing.spec.rules[0].host = Some(host.to_owned());
            assert_eq!(
                one(&validate_ingress(&ing)),
                p(
                    "spec.rules[0].host",
                    &format!("Invalid value: \"{host}\": must be a DNS name, not an IP address")
                ),
                "{host}"
            );
        }
        let mut ing = ingress();
        ing.spec.rules[0].host = Some("::1".to_owned());
        assert_eq!(
            pairs(&validate_ingress(&ing)),
            [
                p(
                    "spec.rules[0].host",
                    "Invalid value: \"::1\": must be a DNS name, not an IP address"
                ),
                p(
                    "spec.rules[0].host",
                    &format!("Invalid value: \"::1\": {SUBDOMAIN_MSG}")
                ),
            ]
        );
        for not_ip in ["1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.4a"] {
            assert!(!is_ip_address(not_ip), "{not_ip}");
        }
        for ip in [
            "::",
            "::ffff:1.2.3.4",
            "2001:db8::1",
            "1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:1.2.3.4",
            "00001::",
            "::01.2.3.4",
        ] {
            assert!(is_ip_address(ip), "{ip}");
        }
        for not_ip in [
            ":",
            ":::",
            "1:2:3:4:5:6:7:8:9",
            "1:2:3:4:5:6:7::8",
            "1::2::3",
            "1:",
            "::1.2.3",
            "1:2:3:4:5:1.2.3.4",
            "::g",
            "fe80::1%eth0",
            "::10000",
        ] {
            assert!(!is_ip_address(not_ip), "{not_ip}");
        }
    }

    #[test]
    fn rule_host_with_star_is_a_wildcard_subdomain() {
        let mut ing = ingress();
        ing.spec.rules[0].host = Some("*.example.com".to_owned());
        assert_eq!(validate_ingress(&ing), []);
        for host in [
            "*",
            "*.*.example.com",
            "f*.example.com",
            "*example.com",
            "*.Example.com",
        ] {
            ing.spec.rules[0].host = Some(host.to_owned());
            assert_eq!(
                one(&validate_ingress(&ing)),
                p(
                    "spec.rules[0].host",
                    &format!("Invalid value: \"{host}\": {WILDCARD_MSG}")
                ),
            );
        }
        let long = format!(
            "*.{}",
            [
                "a".repeat(63),
                "b".repeat(63),
                "c".repeat(63),
                "d".repeat(60)
            ]
            .join(".")
        );
        assert_eq!(long.len(), 254);
        assert_eq!(
            is_wildcard_dns1123_subdomain(&long),
            ["must be no more than 253 characters"]
        );
    }

    #[test]
    fn rule_host_is_a_dns1123_subdomain() {
        let mut ing = ingress();
        ing.spec.rules[0].host = Some(String::new());
        assert_eq!(validate_ingress(&ing), []);
        ing.spec.rules[0].host = None;
        assert_eq!(validate_ingress(&ing), []);
        for host in [
            "Foo.bar.com",
            "foo.bar.com:8080",
            "foo.bar.com.",
            "foo..com",
            "-a.com",
            "ä.com",
        ] {
            ing.spec.rules[0].host = Some(host.to_owned());
            let (field, msg) = one(&validate_ingress(&ing));
            assert_eq!(field, "spec.rules[0].host");
            assert!(msg.ends_with(SUBDOMAIN_MSG), "{msg}");
        }
        let long = [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(63),
        ]
        .join(".");
        ing.spec.rules[0].host = Some(long);
        assert_eq!(
            one(&validate_ingress(&ing)).1.rsplit(": ").next(),
            Some("must be no more than 253 characters")
        );
    }

    #[test]
    fn rule_http_needs_paths() {
        let mut ing = ingress();
        ing.spec.rules[0].http.as_mut().unwrap().paths.clear();
        assert_eq!(
            one(&validate_ingress(&ing)),
            p("spec.rules[0].http.paths", "Required value")
        );
        // A rule without `http` is fine (the host goes to the default backend).
        ing.spec.rules[0].http = None;
        assert_eq!(validate_ingress(&ing), []);
    }

    #[test]
    fn path_type_is_required_and_the_backend_then_not_checked() {
        let ing = with_path(http_path("no-slash", None, IngressBackend::default()));
        assert_eq!(
            one(&validate_ingress(&ing)),
            p(
                &format!("{PATH0}.pathType"),
                "Required value: pathType must be specified"
            )
        );
    }

    #[test]
    fn exact_and_prefix_paths_are_absolute() {
        for t in ["Exact", "Prefix"] {
            assert_eq!(
                validate_ingress(&with_path(http_path(
                    "/foo/bar",
                    Some(t),
                    service("web", 80)
                ))),
                []
            );
            for path in ["foo", ""] {
                let ing = with_path(http_path(path, Some(t), service("web", 80)));
                assert_eq!(
                    one(&validate_ingress(&ing)),
                    p(
                        &format!("{PATH0}.path"),
                        &format!("Invalid value: \"{path}\": must be an absolute path")
                    )
                );
            }
        }
        // An absent path counts as empty.
        let mut ing = with_path(http_path("", Some("Exact"), service("web", 80)));
        ing.spec.rules[0].http.as_mut().unwrap().paths[0].path = None;
        assert_eq!(
            one(&validate_ingress(&ing)).1,
            "Invalid value: \"\": must be an absolute path"
        );
    }

    #[test]
    fn exact_and_prefix_paths_have_no_invalid_sequences() {
        for seq in ["//", "/./", "/../", "%2f", "%2F"] {
            let path = format!("/a{seq}b");
            let ing = with_path(http_path(&path, Some("Exact"), service("web", 80)));
            assert_eq!(
                one(&validate_ingress(&ing)),
                p(
                    &format!("{PATH0}.path"),
                    &format!("Invalid value: \"{path}\": must not contain '{seq}'")
                )
            );
        }
        let ing = with_path(http_path("a//%2F", Some("Prefix"), service("web", 80)));
        assert_eq!(
            pairs(&validate_ingress(&ing))
                .into_iter()
                .map(|(_, m)| m)
                .collect::<Vec<_>>(),
            [
                "Invalid value: \"a//%2F\": must be an absolute path",
                "Invalid value: \"a//%2F\": must not contain '//'",
                "Invalid value: \"a//%2F\": must not contain '%2F'",
            ]
        );
    }

    #[test]
    fn exact_and_prefix_paths_have_no_dot_segment_suffix() {
        for (path, suffix) in [("/a/..", "/.."), ("/a/.", "/."), ("/.", "/.")] {
            let ing = with_path(http_path(path, Some("Prefix"), service("web", 80)));
            assert_eq!(
                one(&validate_ingress(&ing)),
                p(
                    &format!("{PATH0}.path"),
                    &format!("Invalid value: \"{path}\": cannot end with '{suffix}'")
                )
            );
        }
        assert_eq!(
            validate_ingress(&with_path(http_path(
                "/a/.b",
                Some("Exact"),
                service("web", 80)
            ))),
            []
        );
    }

    #[test]
    fn implementation_specific_paths_are_empty_or_absolute() {
        for path in ["", "/", "/a//b/../%2f", "/([a-z0-9]*)["] {
            let ing = with_path(http_path(
                path,
                Some("ImplementationSpecific"),
                service("web", 80),
            ));
            assert_eq!(validate_ingress(&ing), [], "{path}");
        }
        let ing = with_path(http_path(
            "foo",
            Some("ImplementationSpecific"),
            service("web", 80),
        ));
        assert_eq!(
            one(&validate_ingress(&ing)),
            p(
                &format!("{PATH0}.path"),
                "Invalid value: \"foo\": must be an absolute path"
            )
        );
    }

    #[test]
    fn unsupported_path_type_is_rejected_and_backend_still_checked() {
        let ing = with_path(http_path("x", Some("Regex"), IngressBackend::default()));
        assert_eq!(
            pairs(&validate_ingress(&ing)),
            [
                p(
                    &format!("{PATH0}.pathType"),
                    "Unsupported value: \"Regex\": supported values: \"Exact\", \"ImplementationSpecific\", \"Prefix\""
                ),
                p(&format!("{PATH0}.backend"), "Invalid value: \"\": resource or service backend is required"),
            ]
        );
    }

    #[test]
    fn backend_is_service_or_resource_not_both() {
        let mut backend = service("web", 80);
        backend.resource = Some(TypedLocalObjectReference {
            api_group: None,
            kind: "Bucket".to_owned(),
            name: "b".to_owned(),
        });
        assert_eq!(
            one(&validate_ingress(&with_backend(backend))),
            p(
                &format!("{PATH0}.backend"),
                "Invalid value: \"\": cannot set both resource and service backends"
            )
        );
    }

    #[test]
    fn backend_needs_service_or_resource() {
        assert_eq!(
            one(&validate_ingress(&with_backend(IngressBackend::default()))),
            p(
                &format!("{PATH0}.backend"),
                "Invalid value: \"\": resource or service backend is required"
            )
        );
    }

    #[test]
    fn service_name_is_required() {
        assert_eq!(
            one(&validate_ingress(&with_backend(service("", 80)))),
            p(&format!("{PATH0}.backend.service.name"), "Required value")
        );
    }

    #[test]
    fn service_name_is_a_dns1035_label() {
        assert_eq!(validate_ingress(&with_backend(service("web-1", 80))), []);
        for name in ["1web", "web.x", "Web", "web-"] {
            assert_eq!(
                one(&validate_ingress(&with_backend(service(name, 80)))),
                p(
                    &format!("{PATH0}.backend.service.name"),
                    &format!("Invalid value: \"{name}\": {DNS1035_MSG}")
                )
            );
        }
        let long = "a".repeat(64);
        assert_eq!(
            is_dns1035_label(&long),
            ["must be no more than 63 characters"]
        );
    }

    #[test]
    fn service_port_name_and_number_are_exclusive() {
        let mut backend = service("web", 80);
        backend.service.as_mut().unwrap().port.name = Some("http".to_owned());
        assert_eq!(
            one(&validate_ingress(&with_backend(backend))),
            p(
                &format!("{PATH0}.backend"),
                "Invalid value: \"\": cannot set both port name & port number"
            )
        );
    }

    #[test]
    fn service_port_name_is_an_iana_service_name() {
        let field = format!("{PATH0}.backend.service.port.name");
        let check = |name: &str| {
            let mut backend = service("web", 0);
            backend.service.as_mut().unwrap().port = ServiceBackendPort {
                name: Some(name.to_owned()),
                number: None,
            };
            pairs(&validate_ingress(&with_backend(backend)))
        };
        assert_eq!(check("http"), []);
        assert_eq!(check("grpc-web-8080"), []);
        let cases: [(&str, &[&str]); 6] = [
            ("aaaaaaaaaaaaaaaa", &["must be no more than 15 characters"]),
            (
                "HTTP",
                &[
                    "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
                    "must contain at least one letter (a-z)",
                ],
            ),
            ("1234", &["must contain at least one letter (a-z)"]),
            ("a--b", &["must not contain consecutive hyphens"]),
            ("-http", &["must not begin or end with a hyphen"]),
            ("http-", &["must not begin or end with a hyphen"]),
        ];
        for (name, msgs) in cases {
            let want: Vec<_> = msgs
                .iter()
                .map(|m| p(&field, &format!("Invalid value: \"{name}\": {m}")))
                .collect();
            assert_eq!(check(name), want, "{name}");
        }
    }

    #[test]
    fn service_port_number_is_in_range() {
        let field = format!("{PATH0}.backend.service.port.number");
        for n in [1, 443, 65535] {
            assert_eq!(validate_ingress(&with_backend(service("web", n))), []);
        }
        for n in [65536, -1, i64::MAX] {
            assert_eq!(
                one(&validate_ingress(&with_backend(service("web", n)))),
                p(
                    &field,
                    &format!("Invalid value: {n}: must be between 1 and 65535, inclusive")
                )
            );
        }
    }

    #[test]
    fn service_port_needs_name_or_number() {
        for port in [
            ServiceBackendPort::default(),
            ServiceBackendPort {
                name: Some(String::new()),
                number: Some(0),
            },
        ] {
            let mut backend = service("web", 0);
            backend.service.as_mut().unwrap().port = port;
            assert_eq!(
                one(&validate_ingress(&with_backend(backend))),
                p(
                    &format!("{PATH0}.backend"),
                    "Required value: port name or number is required"
                )
            );
        }
    }

    fn resource(api_group: Option<&str>, kind: &str, name: &str) -> IngressBackend {
        IngressBackend {
            service: None,
            resource: Some(TypedLocalObjectReference {
                api_group: api_group.map(str::to_owned),
                kind: kind.to_owned(),
                name: name.to_owned(),
            }),
        }
    }

    #[test]
    fn resource_api_group_is_a_dns1123_subdomain() {
        assert_eq!(
            validate_ingress(&with_backend(resource(None, "Bucket", "b"))),
            []
        );
        assert_eq!(
            validate_ingress(&with_backend(resource(
                Some("k8s.example.com"),
                "Bucket",
                "b"
            ))),
            []
        );
        assert_eq!(
            one(&validate_ingress(&with_backend(resource(
                Some("Example.com"),
                "Bucket",
                "b"
            )))),
            p(
                &format!("{PATH0}.backend.resource.apiGroup"),
                &format!("Invalid value: \"Example.com\": {SUBDOMAIN_MSG}")
            )
        );
    }

    #[test]
    fn resource_kind_is_a_required_path_segment() {
        let field = format!("{PATH0}.backend.resource.kind");
        assert_eq!(
            one(&validate_ingress(&with_backend(resource(None, "", "b")))),
            p(&field, "Required value: kind is required")
        );
        let cases: [(&str, &[&str]); 4] = [
            (".", &["may not be '.'"]),
            ("..", &["may not be '..'"]),
            ("a/b", &["may not contain '/'"]),
            ("%/", &["may not contain '/'", "may not contain '%'"]),
        ];
        for (kind, msgs) in cases {
            let want: Vec<_> = msgs
                .iter()
                .map(|m| p(&field, &format!("Invalid value: \"{kind}\": {m}")))
                .collect();
            assert_eq!(
                pairs(&validate_ingress(&with_backend(resource(None, kind, "b")))),
                want
            );
        }
        // Anything else goes, e.g. dots inside and upper case.
        assert_eq!(
            validate_ingress(&with_backend(resource(None, "...", "b"))),
            []
        );
    }

    #[test]
    fn resource_name_is_a_required_path_segment() {
        let field = format!("{PATH0}.backend.resource.name");
        assert_eq!(
            one(&validate_ingress(&with_backend(resource(
                None, "Bucket", ""
            )))),
            p(&field, "Required value: name is required")
        );
        assert_eq!(
            one(&validate_ingress(&with_backend(resource(
                None, "Bucket", "a%20b"
            )))),
            p(&field, "Invalid value: \"a%20b\": may not contain '%'")
        );
    }

    #[test]
    fn tls_hosts_are_subdomains_or_wildcards() {
        let mut ing = ingress();
        ing.spec.tls = vec![IngressTls {
            hosts: vec!["example.com".to_owned(), "*.example.com".to_owned()],
            secret_name: None,
        }];
        assert_eq!(validate_ingress(&ing), []);
        ing.spec.tls.push(IngressTls {
            hosts: vec![
                "ok.com".to_owned(),
                "*.*.com".to_owned(),
                "Bad.com".to_owned(),
            ],
            secret_name: None,
        });
        assert_eq!(
            pairs(&validate_ingress(&ing)),
            [
                p(
                    "spec.tls[1].hosts[1]",
                    &format!("Invalid value: \"*.*.com\": {WILDCARD_MSG}")
                ),
                p(
                    "spec.tls[1].hosts[2]",
                    &format!("Invalid value: \"Bad.com\": {SUBDOMAIN_MSG}")
                ),
            ]
        );
        // TLS hosts are not checked for IP addresses.
        ing.spec.tls = vec![IngressTls {
            hosts: vec!["1.2.3.4".to_owned()],
            secret_name: None,
        }];
        assert_eq!(validate_ingress(&ing), []);
    }

    #[test]
    fn tls_secret_name_is_a_dns1123_subdomain_when_set() {
        let mut ing = ingress();
        ing.spec.tls = vec![IngressTls {
            hosts: vec![],
            secret_name: Some(String::new()),
        }];
        assert_eq!(validate_ingress(&ing), []);
        ing.spec.tls[0].secret_name = Some("site-tls".to_owned());
        assert_eq!(validate_ingress(&ing), []);
        ing.spec.tls[0].secret_name = Some("Site_TLS".to_owned());
        assert_eq!(
            one(&validate_ingress(&ing)),
            p(
                "spec.tls[0].secretName",
                &format!("Invalid value: \"Site_TLS\": {SUBDOMAIN_MSG}")
            )
        );
    }

    #[test]
    fn ingress_class_controller_is_required_and_limited() {
        let mut c = class();
        c.spec.controller.clear();
        assert_eq!(
            one(&validate_ingress_class(&c)),
            p("spec.controller", "Required value")
        );
        c.spec.controller = format!("example.com/{}", "a".repeat(238));
        assert_eq!(c.spec.controller.len(), 250);
        assert_eq!(validate_ingress_class(&c), []);
        c.spec.controller.push('a');
        assert_eq!(
            one(&validate_ingress_class(&c)),
            p(
                "spec.controller",
                "Too long: may not be more than 250 bytes"
            )
        );
    }

    #[test]
    fn ingress_class_controller_is_a_domain_prefixed_path() {
        let mut c = class();
        for ok in ["acme.io/foo", "acme.io/a/b~c%20!$&'()*+,;=:-._"] {
            c.spec.controller = ok.to_owned();
            assert_eq!(validate_ingress_class(&c), [], "{ok}");
        }
        for shape in ["acme.io", "/foo", "acme.io/"] {
            c.spec.controller = shape.to_owned();
            assert_eq!(
                one(&validate_ingress_class(&c)),
                p(
                    "spec.controller",
                    &format!("Invalid value: \"{shape}\": must be a domain-prefixed path (such as \"acme.io/foo\")")
                )
            );
        }
        c.spec.controller = "Acme.io/foo bar".to_owned();
        assert_eq!(
            pairs(&validate_ingress_class(&c)),
            [
                p(
                    "spec.controller",
                    &format!("Invalid value: \"Acme.io\": {SUBDOMAIN_MSG}")
                ),
                p(
                    "spec.controller",
                    "Invalid value: \"foo bar\": Invalid path (regex used for validation is \
                     '[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+')"
                ),
            ]
        );
    }

    #[test]
    fn ingress_class_parameters_kind_and_name_are_required_path_segments() {
        let mut c = class();
        c.spec.parameters = Some(params("Config", "settings"));
        assert_eq!(validate_ingress_class(&c), []);
        c.spec.parameters = Some(params("", ""));
        assert_eq!(
            pairs(&validate_ingress_class(&c)),
            [
                p("spec.parameters.kind", "Required value: kind is required"),
                p("spec.parameters.name", "Required value: name is required"),
            ]
        );
        c.spec.parameters = Some(params("..", "a/b"));
        assert_eq!(
            pairs(&validate_ingress_class(&c)),
            [
                p(
                    "spec.parameters.kind",
                    "Invalid value: \"..\": may not be '..'"
                ),
                p(
                    "spec.parameters.name",
                    "Invalid value: \"a/b\": may not contain '/'"
                ),
            ]
        );
    }

    #[test]
    fn ingress_class_parameters_api_group_is_a_dns1123_subdomain() {
        let mut c = class();
        let mut ps = params("Config", "settings");
        ps.api_group = None;
        c.spec.parameters = Some(ps.clone());
        assert_eq!(validate_ingress_class(&c), []);
        ps.api_group = Some(String::new());
        c.spec.parameters = Some(ps);
        assert_eq!(
            one(&validate_ingress_class(&c)),
            p(
                "spec.parameters.apiGroup",
                &format!("Invalid value: \"\": {SUBDOMAIN_MSG}")
            )
        );
    }

    #[test]
    fn ingress_class_parameters_scope_defaults_to_cluster() {
        let mut c = class();
        let mut ps = params("Config", "settings");
        ps.namespace = Some("ns".to_owned());
        c.spec.parameters = Some(ps.clone());
        assert_eq!(
            one(&validate_ingress_class(&c)),
            p(
                "spec.parameters.namespace",
                "Forbidden: `parameters.scope` is set to 'Cluster'"
            )
        );
        ps.scope = Some("Cluster".to_owned());
        c.spec.parameters = Some(ps);
        assert_eq!(
            one(&validate_ingress_class(&c)),
            p(
                "spec.parameters.namespace",
                "Forbidden: `parameters.scope` is set to 'Cluster'"
            )
        );
    }

    #[test]
    fn ingress_class_parameters_scope_is_cluster_or_namespace() {
        let mut c = class();
        for scope in ["namespace", ""] {
            let mut ps = params("Config", "settings");
            ps.scope = Some(scope.to_owned());
            c.spec.parameters = Some(ps);
            assert_eq!(
                one(&validate_ingress_class(&c)),
                p(
                    "spec.parameters.scope",
                    &format!("Unsupported value: \"{scope}\": supported values: \"Cluster\", \"Namespace\"")
                )
            );
        }
    }

    #[test]
    fn ingress_class_namespace_scope_needs_a_dns1123_label_namespace() {
        let mut c = class();
        let mut ps = params("Config", "settings");
        ps.scope = Some("Namespace".to_owned());
        c.spec.parameters = Some(ps.clone());
        assert_eq!(
            one(&validate_ingress_class(&c)),
            p(
                "spec.parameters.namespace",
                "Required value: `parameters.scope` is set to 'Namespace'"
            )
        );
        ps.namespace = Some("ingress-system".to_owned());
        c.spec.parameters = Some(ps.clone());
        assert_eq!(validate_ingress_class(&c), []);
        ps.namespace = Some(String::new());
        c.spec.parameters = Some(ps);
        assert_eq!(
            one(&validate_ingress_class(&c)),
            p(
                "spec.parameters.namespace",
                &format!("Invalid value: \"\": {LABEL_MSG}")
            )
        );
    }

    #[test]
    fn errors_come_in_apiserver_order() {
        let mut ing = ingress();
        ing.metadata.name = "Bad".to_owned();
        ing.spec.default_backend = Some(IngressBackend::default());
        ing.spec.rules[0].host = Some("H".to_owned());
        ing.spec.tls = vec![IngressTls {
            hosts: vec!["*".to_owned()],
            secret_name: None,
        }];
        ing.spec.ingress_class_name = Some("X".to_owned());
        let fields: Vec<_> = validate_ingress(&ing)
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            [
                "metadata.name",
                "spec.defaultBackend",
                "spec.rules[0].host",
                "spec.tls[0].hosts[0]",
                "spec.ingressClassName"
            ]
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
