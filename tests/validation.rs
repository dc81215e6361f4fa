//! The `k8s-api-validation` suite of `tests/fixtures/ingress-cases.json`: accept/reject rows of
//! the Kubernetes apiserver's Ingress validation.
//!
//! Source: kubernetes/kubernetes `pkg/apis/networking/validation/validation_test.go`
//! (`TestValidateIngressRuleValue`, `TestValidateIngressCreate`) and `validation.go`;
//! kubernetes/apimachinery `pkg/util/validation/validation.go`.
//!
//! Each case puts one value into an otherwise valid Ingress and states whether the apiserver
//! accepts it, and sometimes part of the error message.

use ingress_router::model::{
    HttpIngressPath, HttpIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, ServiceBackendPort,
};
use ingress_router::validate_ingress;
use serde_json::Value;

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/ingress-cases.json"
);
const SUITE: &str = "k8s-api-validation";

// `default/site`: host `example.com`, path `/` (Prefix) to Service `web` port 80.
fn minimal_ingress() -> Ingress {
    let mut ingress = Ingress::default();
    ingress.metadata.name = "site".to_owned();
    ingress.spec.rules = vec![IngressRule {
        host: Some("example.com".to_owned()),
        http: Some(HttpIngressRuleValue {
            paths: vec![HttpIngressPath {
                path: Some("/".to_owned()),
                path_type: Some("Prefix".to_owned()),
                backend: IngressBackend {
                    service: Some(IngressServiceBackend {
                        name: "web".to_owned(),
                        port: ServiceBackendPort {
                            name: None,
                            number: Some(80),
                        },
                    }),
                    resource: None,
                },
            }],
        }),
    }];
    ingress
}

fn suite() -> Value {
    let text = std::fs::read_to_string(FIXTURES).expect("read fixtures");
    let suites: Value = serde_json::from_str(&text).expect("fixtures are JSON");
    suites
        .as_array()
        .expect("a list of suites")
        .iter()
        .find(|s| s["suite"] == SUITE)
        .unwrap_or_else(|| panic!("suite {SUITE} not found"))
        .clone()
}

// The minimal Ingress with the case's value at the case's field; `None` for an unknown field.
fn ingress_for(case: &Value) -> Option<Ingress> {
    let mut ingress = minimal_ingress();
    let rule = &mut ingress.spec.rules[0];
    let field = case["field"].as_str()?;
    if field == "spec.rules[].host" {
        rule.host = Some(case["value"].as_str()?.to_owned());
        return Some(ingress);
    }
    let path = &mut rule.http.as_mut()?.paths[0];
    let port = &mut path.backend.service.as_mut()?.port;
    match field {
        "spec.rules[].http.paths[]" => {
            path.path = Some(case["path"].as_str()?.to_owned());
            path.path_type = match &case["pathType"] {
                Value::Null => None,
                t => Some(t.as_str()?.to_owned()),
            };
        }
        "backend.service.port.name" => {
            *port = ServiceBackendPort {
                name: Some(case["value"].as_str()?.to_owned()),
                number: None,
            };
        }
        "backend.service.port.number" => {
            *port = ServiceBackendPort {
                name: None,
                number: Some(case["value"].as_i64()?),
            };
        }
        _ => return None,
    }
    Some(ingress)
}

#[test]
fn minimal_ingress_is_valid() {
    assert_eq!(validate_ingress(&minimal_ingress()), []);
}

#[test]
fn every_k8s_api_validation_case() {
    let suite = suite();
    let cases = suite["cases"].as_array().expect("cases");
    assert!(!cases.is_empty());
    let mut ran = 0;
    let mut failures = Vec::new();
    for case in cases {
        let ingress = ingress_for(case).unwrap_or_else(|| panic!("cannot place case {case}"));
        let errors = validate_ingress(&ingress);
        ran += 1;
        let want_valid = case["expect"]["valid"].as_bool().expect("expect.valid");
        let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
        if errors.is_empty() != want_valid {
            failures.push(format!("{case}: got {messages:?}"));
            continue;
        }
        if let Some(want) = case["expect"]["error"].as_str() {
            if !errors.iter().any(|e| e.message().contains(want)) {
                failures.push(format!(
                    "{case}: no message contains {want:?}: {messages:?}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(ran, cases.len());
}
