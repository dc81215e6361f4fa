//! Whether the Kubernetes apiserver would accept an Ingress or an IngressClass, and why not.
//!
//! See [validate_ingress] for the model.

pub use crate::diagnostics::{ValidationError, Violation};
use crate::model::{Ingress, IngressClass, ObjectRef};

mod class;
#[cfg(test)]
mod fixtures;
mod ingress;
mod ip;
mod meta;
mod names;

pub(crate) use names::is_valid_port_name;

use class::{validate_controller, validate_parameters};
use ingress::validate_ingress_spec;
use meta::validate_object_meta;
use names::{is_dns1123_subdomain, is_path_segment_name};

/// Whether the Kubernetes apiserver would accept an Ingress or an IngressClass, and why not.
///
/// [`validate_ingress`] and [`validate_ingress_class`] give the verdicts of the apiserver's create
/// validation for `networking.k8s.io/v1` (kubernetes/kubernetes
/// `pkg/apis/networking/validation`, with the name and format checks of apimachinery
/// `pkg/util/validation`), with the apiserver's field paths and wording. An empty list means the
/// apiserver accepts the object; every error names the object, the field and what is wrong:
///
/// ```
/// use ingress_router::model::Ingress;
/// use ingress_router::validate_ingress;
///
/// let ingress: Ingress = serde_json::from_str(r#"{
///   "metadata": {"name": "site"},
///   "spec": {"rules": [{"host": "shop.example.com", "http": {"paths": [
///     {"path": "/a//b", "pathType": "Prefix",
///      "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}
/// }"#).unwrap();
/// let errors = validate_ingress(&ingress);
/// assert_eq!(
///     errors[0].to_string(),
///     r#"default/site: spec.rules[0].http.paths[0].path: Invalid value: "/a//b": must not contain '//'"#
/// );
/// ```
///
/// # What is checked
///
/// - `metadata`: the name (required, a DNS-1123 subdomain), an Ingress's namespace when one is
///   given (a DNS-1123 label), label keys and values, annotation keys and the total annotation
///   size.
/// - Ingress `spec`: `rules` or `defaultBackend`; rule hosts; `http.paths`, their `pathType`,
///   `path` and backend; TLS hosts and secret names; `ingressClassName`.
/// - IngressClass `spec`: `controller` and `parameters`.
///
/// The wording is that of the released Kubernetes versions (e.g. `must be no more than 253
/// characters`, `kind is required`).
///
/// # What is deliberately not checked
///
/// - The rule that the `kubernetes.io/ingress.class` annotation must equal
///   `spec.ingressClassName` when both are set. The apiserver enforces it only when an object is
///   created, so objects stored before the rule exist in real clusters, and class dispatch decides
///   between the two anyway (`ingressClassName` wins).
/// - Fields the object model does not keep (`generateName`, `ownerReferences`, `finalizers`,
///   `managedFields`) and fields the apiserver fills in itself: an Ingress without a namespace gets
///   the request's namespace, `generation` is set by the apiserver, the namespace of an
///   IngressClass (cluster-scoped) is dropped, and an unset `parameters.scope` is defaulted to
///   `Cluster` before validation.
/// - The leniencies the apiserver grants only on update (keeping an invalid TLS secret name or an
///   invalid rule under a wildcard host that the stored object already had): objects are judged
///   as if they were being created.
/// - Service names are DNS-1035 labels; the `RelaxedServiceNameValidation` feature gate (off by
///   default) is taken to be off.
///
/// Validates an Ingress as the apiserver does when it is created; an empty list means it is
/// accepted. See the [module docs](crate::validate_ingress) for what is and is not checked.
pub fn validate_ingress(ingress: &Ingress) -> Vec<ValidationError> {
    let mut errs = Errors::new(ingress.object_ref());
    validate_object_meta(&ingress.metadata, true, &mut errs);
    validate_ingress_spec(&ingress.spec, &mut errs);
    errs.list
}

/// Validates an IngressClass as the apiserver does when it is created; an empty list means it is
/// accepted. See the [module docs](crate::validate_ingress) for what is and is not checked.
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

// A reference to another object by API group, kind and name: an Ingress's resource backends and
// an IngressClass's parameters.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{IngressBackend, IngressTls};
    use crate::validate::fixtures::*;
    use crate::validate::ingress::PATH_TYPES;

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
}
