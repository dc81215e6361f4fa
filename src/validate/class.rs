//! An IngressClass's `spec`: the `controller` and the `parameters` reference.

use crate::model::IngressClassParametersReference;

use super::names::{
    is_dns1123_label, is_dns1123_subdomain, is_http_path_byte, regex_error, HTTP_PATH_FMT,
};
use super::{validate_object_reference, Errors, Violation};

const MAX_CONTROLLER_LEN: usize = 250;
const SCOPES: &[&str] = &["Cluster", "Namespace"];

pub(super) fn validate_controller(controller: &str, errs: &mut Errors) {
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

pub(super) fn validate_parameters(params: &IngressClassParametersReference, errs: &mut Errors) {
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

#[cfg(test)]
mod tests {
    use crate::validate::fixtures::*;
    use crate::validate::validate_ingress_class;

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
}
