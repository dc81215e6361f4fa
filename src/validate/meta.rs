//! `metadata`, as the apiserver checks it for every object: the name, an Ingress's namespace,
//! label keys and values, annotation keys and the total annotation size.

use crate::model::ObjectMeta;

use super::names::{
    go_to_lower, is_dns1123_label, is_dns1123_subdomain, is_label_value, is_qualified_name,
};
use super::{Errors, Violation};

const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

pub(super) fn validate_object_meta(meta: &ObjectMeta, namespaced: bool, errs: &mut Errors) {
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

#[cfg(test)]
mod tests {
    use crate::validate::fixtures::*;
    use crate::validate::validate_ingress;
    use crate::validate::validate_ingress_class;

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
}
