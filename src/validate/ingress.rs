//! An Ingress's `spec`: rules and their hosts, HTTP paths and path types, backends, TLS and
//! `ingressClassName`.

use crate::model::{
    HttpIngressPath, IngressBackend, IngressRule, IngressSpec, IngressTls,
    TypedLocalObjectReference,
};

use super::ip::is_ip_address;
use super::names::{
    is_dns1035_label, is_dns1123_subdomain, is_valid_port_name, is_wildcard_dns1123_subdomain,
};
use super::{validate_object_reference, Errors, Violation};

pub(super) const PATH_TYPES: &[&str] = &["Exact", "ImplementationSpecific", "Prefix"];
const INVALID_PATH_SEQUENCES: [&str; 5] = ["//", "/./", "/../", "%2f", "%2F"];
const INVALID_PATH_SUFFIXES: [&str; 2] = ["/..", "/."];

pub(super) fn validate_ingress_spec(spec: &IngressSpec, errs: &mut Errors) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ServiceBackendPort;
    use crate::validate::fixtures::*;
    use crate::validate::validate_ingress;

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
        backend.resource = Some(Box::new(TypedLocalObjectReference {
            api_group: None,
            kind: "Bucket".to_owned(),
            name: "b".to_owned(),
        }));
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
            resource: Some(Box::new(TypedLocalObjectReference {
                api_group: api_group.map(str::to_owned),
                kind: kind.to_owned(),
                name: name.to_owned(),
            })),
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
}
