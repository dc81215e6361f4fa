//! Objects and helpers shared by the validation tests.

use crate::model::{
    HttpIngressPath, HttpIngressRuleValue, Ingress, IngressBackend, IngressClass,
    IngressClassParametersReference, IngressRule, IngressServiceBackend, ServiceBackendPort,
};
use crate::validate::ValidationError;

pub(super) const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case \
    alphanumeric characters, '-' or '.', and must start and end with an alphanumeric \
    character (e.g. 'example.com', regex used for validation is \
    '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
pub(super) const WILDCARD_MSG: &str =
    "a wildcard DNS-1123 subdomain must start with '*.', followed by \
    a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or \
    '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for \
    validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
pub(super) const DNS1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric \
    characters or '-', start with an alphabetic character, and end with an alphanumeric \
    character (e.g. 'my-name',  or 'abc-123', regex used for validation is \
    '[a-z]([-a-z0-9]*[a-z0-9])?')";
pub(super) const LABEL_MSG: &str =
    "a lowercase RFC 1123 label must consist of lower case alphanumeric \
    characters or '-', and must start and end with an alphanumeric character (e.g. \
    'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

pub(super) fn service(name: &str, number: i64) -> IngressBackend {
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

pub(super) fn http_path(
    path: &str,
    path_type: Option<&str>,
    backend: IngressBackend,
) -> HttpIngressPath {
    HttpIngressPath {
        path: Some(path.to_owned()),
        path_type: path_type.map(str::to_owned),
        backend,
    }
}

// A valid Ingress `default/site` with one rule `example.com` and one path `/` → web:80.
pub(super) fn ingress() -> Ingress {
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

pub(super) fn with_path(path: HttpIngressPath) -> Ingress {
    let mut ing = ingress();
    ing.spec.rules[0].http.as_mut().unwrap().paths = vec![path];
    ing
}

pub(super) fn with_backend(backend: IngressBackend) -> Ingress {
    with_path(http_path("/", Some("Prefix"), backend))
}

pub(super) fn class() -> IngressClass {
    let mut c = IngressClass::default();
    c.metadata.name = "nginx".to_owned();
    c.spec.controller = "k8s.io/ingress-nginx".to_owned();
    c
}

pub(super) fn params(kind: &str, name: &str) -> IngressClassParametersReference {
    IngressClassParametersReference {
        api_group: Some("k8s.example.com".to_owned()),
        kind: kind.to_owned(),
        name: name.to_owned(),
        scope: None,
        namespace: None,
    }
}

// (field, message) pairs, for compact assertions.
pub(super) fn pairs(errors: &[ValidationError]) -> Vec<(String, String)> {
    errors
        .iter()
        .map(|e| (e.field.clone(), e.message()))
        .collect()
}

pub(super) fn one(errors: &[ValidationError]) -> (String, String) {
    assert_eq!(errors.len(), 1, "{errors:#?}");
    (errors[0].field.clone(), errors[0].message())
}

pub(super) fn p(field: &str, message: &str) -> (String, String) {
    (field.to_owned(), message.to_owned())
}

pub(super) const PATH0: &str = "spec.rules[0].http.paths[0]";
