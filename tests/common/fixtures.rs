//! The public Ingress conformance cases of `tests/fixtures/ingress-cases.json`: loading suites,
//! their Ingresses and what each case expects. See `tests/fixtures/README.md` for the format.

use ingress_router::model::{Ingress, Timestamp};
use ingress_router::ServicePort;
use serde_json::Value;

pub const FIXTURE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/ingress-cases.json"
));

/// Routing suites run here, with the number of cases (plus derived cases) each holds.
pub const ROUTING_SUITES: &[(&str, usize)] = &[
    ("icc/path_rules", 16),
    ("icc/host_rules", 6),
    ("icc/default_backend", 6),
    ("icc/load_balancing", 1),
    ("icc-legacy/networking.k8s.io-v1beta1", 23),
    ("k8s-docs/path-type-examples", 22),
    ("k8s-docs/hostname-wildcards", 5),
    ("k8s-docs/name-based-virtual-hosting", 4),
    ("k8s-docs/simple-fanout", 3),
    ("k8s-docs/resource-backend", 2),
    ("ingress-nginx-e2e/pathtype-exact", 3),
    ("ingress-nginx-e2e/pathtype-mixed", 5),
    ("ingress-nginx-e2e/pathtype-prefix", 4),
    ("ingress-nginx-e2e/default-backend-with-hosts", 2),
];

/// Suites about which Ingresses a controller serves, run through the dispatcher only, with the
/// number of cases (plus derived cases) each holds.
pub const DISPATCH_SUITES: &[(&str, usize)] = &[("icc/ingress_class", 1)];

/// Suites not run here: validation verdicts are tested with the validator.
pub const SKIPPED_SUITES: &[&str] = &["k8s-api-validation"];

/// The IngressClass the upstream harness's controller owns, and which it puts on every Ingress
/// that names none.
pub const CONFORMANCE_CLASS: &str = "conformance";
pub const CONFORMANCE_CONTROLLER: &str = "ingress-router.example/conformance";

pub fn suites() -> Vec<Value> {
    let parsed: Value = serde_json::from_str(FIXTURE).expect("ingress-cases.json is JSON");
    parsed
        .as_array()
        .expect("ingress-cases.json is a list of suites")
        .clone()
}

pub fn suite(name: &str) -> Value {
    suites()
        .into_iter()
        .find(|s| s["suite"] == name)
        .unwrap_or_else(|| panic!("suite {name} not in ingress-cases.json"))
}

pub fn list<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The suite's objects in file order with increasing `creationTimestamp`s, since the fixtures
/// say they were applied in that order and older Ingresses win ties.
pub fn load_ingresses(objects: &[Value], context: &str) -> Vec<Ingress> {
    objects
        .iter()
        .enumerate()
        .map(|(i, object)| {
            let mut ing: Ingress = serde_json::from_value(object.clone())
                .unwrap_or_else(|e| panic!("{context}: Ingress #{i} does not deserialize: {e}"));
            ing.metadata.creation_timestamp =
                Some(Timestamp::from_unix_seconds(1_700_000_000 + i as i64));
            ing
        })
        .collect()
}

/// What a case expects, from its `expect` object.
#[derive(Debug)]
pub enum Expect {
    Service {
        name: String,
        port: ServicePort,
    },
    Resource {
        api_group: Option<String>,
        kind: String,
        name: String,
    },
    Ingress {
        name: String,
        not: Option<String>,
    },
    NotFound,
}

pub fn expectation(expect: &Value, context: &str) -> Expect {
    if let Some(name) = expect.get("service") {
        let port = match &expect["port"] {
            Value::Number(n) => ServicePort::Number(
                n.as_u64()
                    .and_then(|n| u16::try_from(n).ok())
                    .unwrap_or_else(|| panic!("{context}: port {n} out of range")),
            ),
            Value::String(s) => ServicePort::Name(s.clone()),
            other => panic!("{context}: unexpected port {other}"),
        };
        let name = name.as_str().expect("service name").to_owned();
        return Expect::Service { name, port };
    }
    if let Some(resource) = expect.get("resource") {
        let text = |key: &str| resource.get(key).and_then(Value::as_str).map(str::to_owned);
        return Expect::Resource {
            api_group: text("apiGroup"),
            kind: text("kind").expect("resource kind"),
            name: text("name").expect("resource name"),
        };
    }
    if let Some(name) = expect.get("ingress") {
        return Expect::Ingress {
            name: name.as_str().expect("ingress name").to_owned(),
            not: expect
                .get("not_ingress")
                .and_then(Value::as_str)
                .map(str::to_owned),
        };
    }
    if expect.get("status").and_then(Value::as_u64) == Some(404) {
        return Expect::NotFound;
    }
    // A new expectation shape must be handled here, not pass unchecked.
    panic!("{context}: unknown expectation {expect}");
}

/// The request target of a case, as the upstream harness sends it: `'/' + TrimPrefix(path, "/")`,
/// with the one path that holds spaces and `!` percent-encoded (suite notes); a raw space cannot
/// appear in a request target at all.
pub fn case_target(case: &Value) -> String {
    let raw = case["path"].as_str().expect("path");
    let path = format!("/{}", raw.strip_prefix('/').unwrap_or(raw));
    path.replace(' ', "%20").replace('!', "%21")
}

/// The Ingresses a case is routed with: its own, or the suite's (from `ingresses`, or from
/// `ingresses_v1_converted` for the legacy v1beta1 suites).
pub fn case_ingresses(suite: &Value, case: &Value, context: &str) -> Vec<Ingress> {
    if let Some(own) = case.get("ingresses") {
        return load_ingresses(own.as_array().expect("case ingresses"), context);
    }
    let name = suite["suite"].as_str().expect("suite name");
    let key = if name.starts_with("icc-legacy/") {
        "ingresses_v1_converted"
    } else {
        "ingresses"
    };
    load_ingresses(list(suite, key), context)
}

/// Every case of a suite, then its derived cases.
pub fn cases(suite: &Value) -> Vec<&Value> {
    list(suite, "cases")
        .iter()
        .chain(list(suite, "derived_cases"))
        .collect()
}
