//! The public Ingress conformance cases of `tests/fixtures/ingress-cases.json`, one test per suite.
//!
//! Every suite's Ingresses are compiled into one table with the default options and every case's
//! request is routed through `RouteTable::route_request`, so request canonicalisation applies as it
//! would for a real client. The routing suites run a second time through the IngressClass
//! dispatcher, set up as the upstream harness sets up a cluster. See `tests/fixtures/README.md`
//! for the case format.

mod common;

use std::collections::BTreeSet;

use common::fixtures::{
    case_ingresses, case_target, cases, expectation, list, load_ingresses, suite, suites, Expect,
    CONFORMANCE_CLASS, CONFORMANCE_CONTROLLER, DISPATCH_SUITES, ROUTING_SUITES, SKIPPED_SUITES,
};
use http::{Request, Version};
use ingress_router::model::{Ingress, IngressClass};
use ingress_router::{
    Backend, Controller, Dispatch, Dispatcher, Reason, RouteMatch, RouteTable, TableOptions,
};
use serde_json::Value;

/// The request of a case, as the upstream harness would send it.
fn case_request(case: &Value, context: &str) -> Request<()> {
    let method = case["method"].as_str().expect("method");
    let host = case["host"].as_str().expect("host");
    let target = case_target(case);
    let builder = Request::builder().method(method).uri(target.as_str());
    // An empty host means the harness sends no Host of its own: the request carries the
    // controller's address, which reaches only the host-less rules (routing contract §5, IP
    // literals and HTTP/1.0 without Host). HTTP/1.0 without Host expresses exactly that without
    // inventing an address; HTTP/1.1 requires a Host.
    let builder = if host.is_empty() {
        builder.version(Version::HTTP_10)
    } else {
        builder
            .version(Version::HTTP_11)
            .header(http::header::HOST, host)
    };
    builder
        .body(())
        .unwrap_or_else(|e| panic!("{context}: cannot build request for {target:?}: {e}"))
}

fn check(route: Option<RouteMatch<'_>>, expect: &Expect, context: &str) {
    match expect {
        Expect::NotFound => assert!(
            route.is_none(),
            "{context}: expected 404, routed to {:?} via {:?}",
            route.map(|r| r.backend()),
            route.and_then(|r| r.ingress())
        ),
        Expect::Service { name, port } => {
            let route = route.unwrap_or_else(|| panic!("{context}: expected {name}, got 404"));
            match route.backend() {
                Backend::Service(s) => {
                    assert_eq!(
                        (s.name.as_str(), &s.port),
                        (name.as_str(), port),
                        "{context}: Service backend"
                    );
                    // The fixtures put every object in the default namespace.
                    assert_eq!(s.namespace, "default", "{context}: backend namespace");
                }
                other => panic!("{context}: expected Service {name}, got {other:?}"),
            }
        }
        Expect::Resource {
            api_group,
            kind,
            name,
        } => {
            let route = route.unwrap_or_else(|| panic!("{context}: expected {name}, got 404"));
            match route.backend() {
                Backend::Resource(r) => assert_eq!(
                    (&r.api_group, &r.kind, &r.name, r.namespace.as_str()),
                    (api_group, kind, name, "default"),
                    "{context}: resource backend"
                ),
                other => panic!("{context}: expected resource {name}, got {other:?}"),
            }
        }
        Expect::Ingress { name, not } => {
            let route = route.unwrap_or_else(|| panic!("{context}: expected {name}, got 404"));
            let winner = route
                .ingress()
                .unwrap_or_else(|| panic!("{context}: expected Ingress {name}, got no Ingress"));
            assert_eq!(&winner.name, name, "{context}: winning Ingress");
            assert!(
                route.rule().is_some(),
                "{context}: expected a rule of {name} to match, got {:?}",
                route.fallback()
            );
            if let Some(not) = not {
                assert_ne!(&winner.name, not, "{context}: must not win");
            }
        }
    }
}

/// The table a suite's cases are routed through, compiled from its Ingresses.
type Compile<'a> = &'a dyn Fn(&[Ingress], &str) -> RouteTable;

/// A bare table: every Ingress counts, whatever its class.
fn bare_table(ingresses: &[Ingress], _context: &str) -> RouteTable {
    RouteTable::build(ingresses, TableOptions::default())
}

/// The cluster as the upstream harness builds it: its controller owns the IngressClass
/// `conformance`, and every Ingress with no `ingressClassName` gets that one (an Ingress with
/// only the legacy annotation included, since the harness fills any nil class name).
fn conformance_dispatch(ingresses: &[Ingress]) -> Dispatch {
    let mut class = IngressClass::default();
    class.metadata.name = CONFORMANCE_CLASS.to_owned();
    class.spec.controller = CONFORMANCE_CONTROLLER.to_owned();
    let ingresses: Vec<Ingress> = ingresses
        .iter()
        .cloned()
        .map(|mut ing| {
            ing.spec
                .ingress_class_name
                .get_or_insert_with(|| CONFORMANCE_CLASS.to_owned());
            ing
        })
        .collect();
    Dispatcher::new([Controller::new(CONFORMANCE_CONTROLLER)])
        .expect("one controller")
        .dispatch(&[class], &ingresses)
}

/// The conformance controller's table.
fn into_table(dispatch: Dispatch) -> RouteTable {
    dispatch
        .controllers
        .into_iter()
        .find(|c| c.controller == CONFORMANCE_CONTROLLER)
        .expect("the conformance controller is registered")
        .table
}

/// The conformance controller's table, after checking that it serves every Ingress, as it must
/// for suites whose Ingresses all belong to the harness.
fn dispatched_table(ingresses: &[Ingress], context: &str) -> RouteTable {
    let dispatch = conformance_dispatch(ingresses);
    let served = &dispatch.controllers[0];
    assert!(
        served.not_served.is_empty(),
        "{context}: not served: {:?}",
        served.not_served
    );
    let all: Vec<_> = ingresses.iter().map(Ingress::object_ref).collect();
    assert_eq!(served.served, all, "{context}: served by the controller");
    for decision in &dispatch.decisions {
        assert_eq!(
            (decision.class.as_deref(), &decision.ignored_annotation),
            (Some(CONFORMANCE_CLASS), &None),
            "{context}: {} served through its class name",
            decision.ingress
        );
    }
    into_table(dispatch)
}

/// Run every case of a suite against a bare table; returns how many were checked.
fn run_suite(name: &str) -> usize {
    run_suite_with(name, &bare_table)
}

/// Run every case of a suite against the table `compile` gives; returns how many were checked.
fn run_suite_with(name: &str, compile: Compile<'_>) -> usize {
    let suite = suite(name);
    let pinned = ROUTING_SUITES
        .iter()
        .chain(DISPATCH_SUITES)
        .find(|(n, _)| *n == name)
        .map(|(_, count)| *count)
        .unwrap_or_else(|| panic!("{name} is not a routing or dispatch suite"));
    let cases = cases(&suite);

    let mut checked = 0;
    for (i, case) in cases.iter().enumerate() {
        let context = format!("{name} case #{i} {:?}", case["name"].as_str().unwrap_or(""));
        // Legacy suites hold v1beta1 objects and some cases carry their own Ingresses.
        let ingresses = case_ingresses(&suite, case, &context);
        let table = compile(&ingresses, &context);
        // Every fixture object is one the apiserver accepts.
        assert!(
            table.diagnostics().quarantined.is_empty(),
            "{context}: quarantined {:?}",
            table.diagnostics().quarantined
        );
        let expect = expectation(&case["expect"], &context);
        let req = case_request(case, &context);
        let repeat = case.get("repeat").and_then(Value::as_u64).unwrap_or(1);
        for _ in 0..repeat {
            let routed = table
                .route_request(&req)
                .unwrap_or_else(|e| panic!("{context}: request rejected: {e}"));
            check(routed.route, &expect, &context);
        }
        checked += 1;
    }
    assert_eq!(checked, cases.len(), "{name}: cases checked vs in file");
    assert_eq!(checked, pinned, "{name}: cases in file vs pinned here");
    checked
}

#[test]
fn every_suite_in_the_fixture_is_run_or_deliberately_skipped() {
    let in_file: BTreeSet<String> = suites()
        .iter()
        .map(|s| s["suite"].as_str().expect("suite name").to_owned())
        .collect();
    let known: BTreeSet<String> = ROUTING_SUITES
        .iter()
        .chain(DISPATCH_SUITES)
        .map(|(name, _)| *name)
        .chain(SKIPPED_SUITES.iter().copied())
        .map(str::to_owned)
        .collect();
    assert_eq!(in_file, known);
}

#[test]
fn every_routing_case_in_the_fixture_is_run() {
    let in_file: usize = suites()
        .iter()
        .filter(|s| !SKIPPED_SUITES.contains(&s["suite"].as_str().unwrap_or("")))
        .map(|s| list(s, "cases").len() + list(s, "derived_cases").len())
        .sum();
    let run: usize = ROUTING_SUITES
        .iter()
        .map(|(name, _)| run_suite(name))
        .sum::<usize>()
        + DISPATCH_SUITES
            .iter()
            .map(|(name, _)| run_ingress_class_suite(name))
            .sum::<usize>();
    assert_eq!(run, in_file);
}

/// Every routing suite again, through the dispatcher set up as the upstream harness sets up its
/// cluster: the class changes who serves an Ingress, never where a request goes.
#[test]
fn routing_suites_through_the_class_dispatcher() {
    let run: usize = ROUTING_SUITES
        .iter()
        .map(|(name, _)| run_suite_with(name, &dispatched_table))
        .sum();
    let pinned: usize = ROUTING_SUITES.iter().map(|(_, count)| count).sum();
    assert_eq!(run, pinned);
}

/// `icc/ingress_class`: the Ingress names a class that is not the controller's, so the
/// controller ignores it, and its host is answered by the controller's own default (404).
fn run_ingress_class_suite(name: &str) -> usize {
    let suite = suite(name);
    let ingresses = load_ingresses(list(&suite, "ingresses"), name);
    let dispatch = conformance_dispatch(&ingresses);
    let controller = &dispatch.controllers[0];
    assert!(
        controller.served.is_empty(),
        "{name}: served {:?}",
        controller.served
    );
    let ignored: Vec<&str> = list(&suite, "assertions")
        .iter()
        .map(|a| a["ingress"].as_str().expect("assertion names an Ingress"))
        .collect();
    assert_eq!(
        ignored,
        ["test-ingress-class"],
        "{name}: upstream assertions"
    );
    for ingress in &ingresses {
        let not = controller
            .not_served
            .iter()
            .find(|n| n.ingress == ingress.object_ref())
            .unwrap_or_else(|| panic!("{name}: {} neither served nor not", ingress.metadata.name));
        assert_eq!(
            not.reason,
            Reason::ClassNotFound {
                class: "some-invalid-class-name".into()
            },
            "{name}: why {} is not served",
            ingress.metadata.name
        );
    }
    run_suite_with(name, &|ingresses, _| {
        into_table(conformance_dispatch(ingresses))
    })
}

/// kubernetes-sigs/ingress-controller-conformance/features/ingress_class.feature@f91a7996369a
#[test]
fn icc_ingress_class() {
    run_ingress_class_suite("icc/ingress_class");
}

/// kubernetes-sigs/ingress-controller-conformance/features/path_rules.feature@f91a7996369a
#[test]
fn icc_path_rules() {
    run_suite("icc/path_rules");
}

/// kubernetes-sigs/ingress-controller-conformance/features/host_rules.feature@f91a7996369a
#[test]
fn icc_host_rules() {
    run_suite("icc/host_rules");
}

/// kubernetes-sigs/ingress-controller-conformance/features/default_backend.feature@f91a7996369a
#[test]
fn icc_default_backend() {
    run_suite("icc/default_backend");
}

/// kubernetes-sigs/ingress-controller-conformance/features/load_balancing.feature@f91a7996369a
/// (only the routing half: every request reaches the Service; pod spread is the data plane's).
#[test]
fn icc_load_balancing() {
    run_suite("icc/load_balancing");
}

/// kubernetes-sigs/ingress-controller-conformance/internal/pkg/suite/{pathRulesCheck,
/// hostRulesCheck,defaultBackendCheck}.go + deployments/networking.k8s.io/v1beta1/{path-rules,
/// host-rules,default-backend}.yaml @77c5f25d409f, objects converted to v1.
#[test]
fn icc_legacy_networking_v1beta1() {
    run_suite("icc-legacy/networking.k8s.io-v1beta1");
}

/// kubernetes/website content/en/docs/concepts/services-networking/ingress.md (path type
/// examples table; same table in kubernetes/enhancements KEP-1453).
#[test]
fn k8s_docs_path_type_examples() {
    run_suite("k8s-docs/path-type-examples");
}

/// kubernetes/website content/en/examples/service/networking/ingress-wildcard-host.yaml and the
/// "Hostname wildcards" table in ingress.md.
#[test]
fn k8s_docs_hostname_wildcards() {
    run_suite("k8s-docs/hostname-wildcards");
}

/// kubernetes/website content/en/examples/service/networking/name-virtual-host-ingress-no-third-host.yaml
/// and "Name based virtual hosting" in ingress.md.
#[test]
fn k8s_docs_name_based_virtual_hosting() {
    run_suite("k8s-docs/name-based-virtual-hosting");
}

/// kubernetes/website content/en/examples/service/networking/simple-fanout-example.yaml
#[test]
fn k8s_docs_simple_fanout() {
    run_suite("k8s-docs/simple-fanout");
}

/// kubernetes/website content/en/examples/service/networking/ingress-resource-backend.yaml
#[test]
fn k8s_docs_resource_backend() {
    run_suite("k8s-docs/resource-backend");
}

/// kubernetes/ingress-nginx/test/e2e/ingress/pathtype_exact.go@dbb11b92ddb7
#[test]
fn ingress_nginx_e2e_pathtype_exact() {
    run_suite("ingress-nginx-e2e/pathtype-exact");
}

/// kubernetes/ingress-nginx/test/e2e/ingress/pathtype_mixed.go@dbb11b92ddb7
#[test]
fn ingress_nginx_e2e_pathtype_mixed() {
    run_suite("ingress-nginx-e2e/pathtype-mixed");
}

/// kubernetes/ingress-nginx/test/e2e/ingress/pathtype_prefix.go@dbb11b92ddb7
#[test]
fn ingress_nginx_e2e_pathtype_prefix() {
    run_suite("ingress-nginx-e2e/pathtype-prefix");
}

/// kubernetes/ingress-nginx/test/e2e/defaultbackend/with_hosts.go@dbb11b92ddb7
#[test]
fn ingress_nginx_e2e_default_backend_with_hosts() {
    run_suite("ingress-nginx-e2e/default-backend-with-hosts");
}
