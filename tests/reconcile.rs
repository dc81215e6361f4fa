//! Live tables (`reconcile`): a [`Reconciler`] fed with object events keeps one
//! [`SharedSnapshot`] per controller routing exactly as a fresh dispatch over the last valid
//! version of every object would, rejects invalid versions without taking working routes down,
//! rebuilds only the tables whose Ingresses changed, and swaps snapshots without disturbing
//! readers.
//!
//! The property test at the end of the named tests replays random event sequences against a naive
//! model: a map of last-valid objects, dispatched from scratch after every event.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

use common::{ingress, ingress_class, path, rule};
use ingress_router::{
    validate_ingress, validate_ingress_class, Backend, Controller, Decision, Dispatcher, Event,
    Ingress, IngressClass, Manifests, Object, ObjectKind, ObjectRef, Objects, Reason, Reconciled,
    Reconciler, Rejected, RouteTable, SharedSnapshot, Snapshot, TableOptions,
};
use proptest::prelude::*;
use proptest::sample::select;

// ---------------------------------------------------------------------------------------------
// Helpers for the named tests

const EDGE: &str = "example.com/edge";
const INTERNAL: &str = "example.com/internal";

/// Every object of a YAML stream; a document that does not read fails the test.
fn manifests(yaml: &str) -> Manifests {
    let m = Manifests::parse(yaml);
    assert!(m.errors.is_empty(), "manifest errors: {:?}", m.errors);
    m
}

/// The one Ingress of a YAML document.
fn one_ingress(yaml: &str) -> Ingress {
    let mut m = manifests(yaml);
    assert_eq!(m.ingresses.len(), 1, "one Ingress expected");
    m.ingresses.remove(0)
}

/// The one IngressClass of a YAML document.
fn one_class(yaml: &str) -> IngressClass {
    let mut m = manifests(yaml);
    assert_eq!(m.ingress_classes.len(), 1, "one IngressClass expected");
    m.ingress_classes.remove(0)
}

/// `default/<name>` serving host `<name>.example` with Prefix `/` → Service `<service>`, in
/// class `class`.
fn site(name: &str, class: &str, service: &str) -> Ingress {
    one_ingress(&format!(
        r#"
kind: Ingress
metadata: {{name: {name}}}
spec:
  ingressClassName: {class}
  rules:
  - host: {name}.example
    http:
      paths:
      - {{path: /, pathType: Prefix, backend: {{service: {{name: {service}, port: {{number: 80}}}}}}}}
"#
    ))
}

/// Like [`site`], but the Service name is not a DNS label: the apiserver rejects it.
fn broken_site(name: &str, class: &str) -> Ingress {
    let ingress = site(name, class, "Not_A_Label");
    assert!(
        !validate_ingress(&ingress).is_empty(),
        "meant to be invalid"
    );
    ingress
}

fn class(name: &str, controller: &str) -> IngressClass {
    one_class(&format!(
        "kind: IngressClass\nmetadata: {{name: {name}}}\nspec: {{controller: {controller}}}\n"
    ))
}

/// A relisting of every Ingress and every IngressClass, as one batch for
/// [`Reconciler::apply_all`]: the classes first, then the Ingresses.
fn replace_all(ingresses: Vec<Ingress>, classes: Vec<IngressClass>) -> [Event; 2] {
    [
        Event::ReplaceAll(Objects::IngressClasses(classes)),
        Event::ReplaceAll(Objects::Ingresses(ingresses)),
    ]
}

/// A reconciler for the controllers `edge` and `internal`, with IngressClasses `edge` and
/// `internal` already applied.
fn edge_and_internal() -> Reconciler {
    let dispatcher =
        Dispatcher::new([Controller::new(EDGE), Controller::new(INTERNAL)]).expect("registration");
    let mut reconciler = Reconciler::new(dispatcher);
    reconciler.apply_all(replace_all(
        vec![],
        vec![class("edge", EDGE), class("internal", INTERNAL)],
    ));
    reconciler
}

fn ingress_ref(name: &str) -> ObjectRef {
    ObjectRef {
        kind: ObjectKind::Ingress,
        namespace: Some("default".to_owned()),
        name: name.to_owned(),
    }
}

fn class_ref(name: &str) -> ObjectRef {
    ObjectRef {
        kind: ObjectKind::IngressClass,
        namespace: None,
        name: name.to_owned(),
    }
}

/// The backend a table sends `http://<host>/<path>` to, as text; `None` for 404.
fn backend_in(table: &RouteTable, host: &str, path: &str) -> Option<String> {
    table
        .route(Some(host), path)
        .map(|m| m.backend().to_string())
}

/// The backend the current table of controller `name` sends `http://<site>.example/` to.
fn site_backend(reconciler: &Reconciler, controller: &str, site: &str) -> Option<String> {
    let snapshot = reconciler.snapshot(controller).expect("registered").load();
    backend_in(snapshot.routes(), &format!("{site}.example"), "/")
}

fn svc(name: &str) -> Option<String> {
    Some(format!("service default/{name}:80"))
}

fn rebuilt(names: &[&str]) -> Vec<Option<String>> {
    names.iter().map(|n| Some((*n).to_owned())).collect()
}

/// The rejections the reconciler holds, as (object, kept_previous).
fn held_rejections(reconciler: &Reconciler) -> Vec<(ObjectRef, bool)> {
    reconciler
        .rejected()
        .map(|r| (r.object.clone(), r.kept_previous))
        .collect()
}

fn reported(outcome: &Reconciled) -> Vec<(ObjectRef, bool)> {
    outcome
        .rejected
        .iter()
        .map(|r| (r.object.clone(), r.kept_previous))
        .collect()
}

fn held_ingress_names(reconciler: &Reconciler) -> Vec<String> {
    reconciler
        .ingresses()
        .iter()
        .map(|i| i.metadata.name.clone())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Rejected versions

#[test]
fn invalid_edit_keeps_the_previous_version_serving_and_is_reported() {
    let mut reconciler = edge_and_internal();
    reconciler.apply(Event::Apply(site("shop", "edge", "shop-v1").into()));
    assert_eq!(site_backend(&reconciler, EDGE, "shop"), svc("shop-v1"));

    let outcome = reconciler.apply(Event::Apply(broken_site("shop", "edge").into()));

    assert_eq!(reported(&outcome), vec![(ingress_ref("shop"), true)]);
    let rejection: &Rejected = &outcome.rejected[0];
    assert!(
        !rejection.errors.is_empty()
            && rejection
                .errors
                .iter()
                .all(|e| e.field.ends_with(".service.name")),
        "the errors name the Service: {:?}",
        rejection.errors
    );
    assert!(
        outcome.rebuilt.is_empty(),
        "nothing changed: {:?}",
        outcome.rebuilt
    );
    assert_eq!(
        held_rejections(&reconciler),
        vec![(ingress_ref("shop"), true)]
    );
    assert_eq!(reconciler.rejected().next(), Some(rejection));
    assert_eq!(site_backend(&reconciler, EDGE, "shop"), svc("shop-v1"));
    assert_eq!(
        reconciler.ingresses(),
        vec![&site("shop", "edge", "shop-v1")]
    );
}

#[test]
fn a_later_valid_version_clears_the_rejection() {
    let mut reconciler = edge_and_internal();
    reconciler.apply(Event::Apply(site("shop", "edge", "shop-v1").into()));
    reconciler.apply(Event::Apply(broken_site("shop", "edge").into()));

    let outcome = reconciler.apply(Event::Apply(site("shop", "edge", "shop-v3").into()));

    assert!(outcome.rejected.is_empty());
    assert_eq!(outcome.rebuilt, rebuilt(&[EDGE]));
    assert!(held_rejections(&reconciler).is_empty());
    assert_eq!(site_backend(&reconciler, EDGE, "shop"), svc("shop-v3"));
}

#[test]
fn delete_of_a_rejected_object_clears_the_rejection() {
    let mut reconciler = edge_and_internal();
    reconciler.apply(Event::Apply(site("shop", "edge", "shop-v1").into()));
    reconciler.apply(Event::Apply(broken_site("shop", "edge").into()));
    // Never valid at all: rejected without a previous version.
    reconciler.apply(Event::Apply(broken_site("blog", "edge").into()));
    assert_eq!(
        held_rejections(&reconciler),
        vec![(ingress_ref("blog"), false), (ingress_ref("shop"), true)]
    );

    let outcome = reconciler.apply(Event::Delete(ingress_ref("shop")));
    assert!(outcome.rejected.is_empty());
    assert_eq!(outcome.rebuilt, rebuilt(&[EDGE]));
    assert_eq!(site_backend(&reconciler, EDGE, "shop"), None);
    assert_eq!(
        held_rejections(&reconciler),
        vec![(ingress_ref("blog"), false)]
    );

    let outcome = reconciler.apply(Event::Delete(ingress_ref("blog")));
    assert!(
        outcome.rebuilt.is_empty(),
        "blog never served: {:?}",
        outcome.rebuilt
    );
    assert!(held_rejections(&reconciler).is_empty());
}

#[test]
fn an_invalid_new_object_is_reported_without_a_previous_version_and_routes_nothing() {
    let mut reconciler = edge_and_internal();
    // A Prefix path must start with `/`.
    let invalid = one_ingress(
        r#"
kind: Ingress
metadata: {name: shop}
spec:
  ingressClassName: edge
  rules:
  - host: shop.example
    http:
      paths:
      - {path: api, pathType: Prefix, backend: {service: {name: shop, port: {number: 80}}}}
"#,
    );

    let outcome = reconciler.apply(Event::Apply(invalid.into()));

    assert_eq!(reported(&outcome), vec![(ingress_ref("shop"), false)]);
    assert_eq!(
        held_rejections(&reconciler),
        vec![(ingress_ref("shop"), false)]
    );
    assert!(outcome.rebuilt.is_empty());
    assert!(reconciler.ingresses().is_empty());
    assert!(
        reconciler.decisions().is_empty(),
        "a rejected object is not decided"
    );
    for controller in [EDGE, INTERNAL] {
        let snapshot = reconciler.snapshot(controller).unwrap().load();
        let table = snapshot.routes();
        assert!(table.ingresses().is_empty(), "{controller}");
        assert_eq!(backend_in(table, "shop.example", "/api"), None);
        assert_eq!(backend_in(table, "shop.example", "/"), None);
    }
}

#[test]
fn an_invalid_ingress_class_keeps_the_previous_class_owning_its_ingresses() {
    let mut reconciler = edge_and_internal();
    reconciler.apply(Event::Apply(site("shop", "edge", "shop").into()));

    // `spec.controller` must be a domain-prefixed path.
    let outcome = reconciler.apply(Event::Apply(class("edge", "no-slash").into()));

    assert_eq!(reported(&outcome), vec![(class_ref("edge"), true)]);
    assert!(outcome.rebuilt.is_empty());
    assert_eq!(site_backend(&reconciler, EDGE, "shop"), svc("shop"));
}

// ---------------------------------------------------------------------------------------------
// ReplaceAll

#[test]
fn replace_all_removes_objects_absent_from_the_listing() {
    let mut reconciler = edge_and_internal();
    let classes = vec![class("edge", EDGE), class("internal", INTERNAL)];
    reconciler.apply_all(replace_all(
        vec![site("shop", "edge", "shop"), site("blog", "edge", "blog")],
        classes.clone(),
    ));
    assert_eq!(site_backend(&reconciler, EDGE, "blog"), svc("blog"));

    let outcome = reconciler.apply_all(replace_all(
        vec![site("shop", "edge", "shop")],
        vec![class("edge", EDGE)],
    ));

    assert_eq!(outcome.rebuilt, rebuilt(&[EDGE]));
    assert_eq!(site_backend(&reconciler, EDGE, "blog"), None);
    assert_eq!(site_backend(&reconciler, EDGE, "shop"), svc("shop"));
    assert_eq!(held_ingress_names(&reconciler), vec!["shop"]);
    let held_classes: Vec<&str> = reconciler
        .classes()
        .iter()
        .map(|c| c.metadata.name.as_str())
        .collect();
    assert_eq!(held_classes, vec!["edge"]);
}

#[test]
fn replace_all_keeps_the_previous_valid_version_of_an_invalid_listed_object() {
    let mut reconciler = edge_and_internal();
    let classes = vec![class("edge", EDGE), class("internal", INTERNAL)];
    reconciler.apply_all(replace_all(
        vec![site("shop", "edge", "shop-v1")],
        classes.clone(),
    ));

    let outcome = reconciler.apply_all(replace_all(
        vec![
            broken_site("shop", "edge"),
            site("blog", "edge", "blog"),
            broken_site("wiki", "edge"),
        ],
        classes,
    ));

    assert_eq!(
        reported(&outcome),
        vec![(ingress_ref("shop"), true), (ingress_ref("wiki"), false)]
    );
    assert_eq!(
        held_rejections(&reconciler),
        vec![(ingress_ref("shop"), true), (ingress_ref("wiki"), false)]
    );
    assert_eq!(site_backend(&reconciler, EDGE, "shop"), svc("shop-v1"));
    assert_eq!(site_backend(&reconciler, EDGE, "blog"), svc("blog"));
    assert_eq!(site_backend(&reconciler, EDGE, "wiki"), None);
}

/// Two Ingresses without a `creationTimestamp` claim the same host and path: the earlier listed
/// wins. An invalid edit of the winner, relisted in the same place, changes nothing.
#[test]
fn replace_all_with_an_invalid_edit_leaves_every_route_unchanged() {
    let claim = |name: &str, service: &str| {
        one_ingress(&format!(
            r#"
kind: Ingress
metadata: {{name: {name}}}
spec:
  ingressClassName: edge
  rules:
  - host: same.example
    http:
      paths:
      - {{path: /, pathType: Prefix, backend: {{service: {{name: {service}, port: {{number: 80}}}}}}}}
"#
        ))
    };
    let mut reconciler = edge_and_internal();
    let classes = vec![class("edge", EDGE), class("internal", INTERNAL)];
    reconciler.apply_all(replace_all(
        vec![claim("shop", "shop"), claim("blog", "blog")],
        classes.clone(),
    ));
    let before = reconciler.snapshot(EDGE).unwrap().load();
    assert_eq!(
        backend_in(before.routes(), "same.example", "/"),
        svc("shop")
    );

    let outcome = reconciler.apply_all(replace_all(
        vec![claim("shop", "Not_A_Label"), claim("blog", "blog")],
        classes,
    ));

    assert_eq!(reported(&outcome), vec![(ingress_ref("shop"), true)]);
    let after = reconciler.snapshot(EDGE).unwrap().load();
    assert_eq!(backend_in(after.routes(), "same.example", "/"), svc("shop"));
}

#[test]
fn replace_all_clears_rejections_of_objects_it_does_not_list() {
    let mut reconciler = edge_and_internal();
    reconciler.apply(Event::Apply(broken_site("wiki", "edge").into()));
    assert_eq!(held_rejections(&reconciler).len(), 1);

    reconciler.apply_all(replace_all(
        vec![site("shop", "edge", "shop")],
        vec![class("edge", EDGE)],
    ));

    assert!(held_rejections(&reconciler).is_empty());
}

/// A listing may name an object twice (two files apply the same object): the last one counts,
/// as `kubectl apply -f a.yaml -f b.yaml` would leave it.
#[test]
fn replace_all_repeating_an_object_keeps_the_last_copy() {
    let mut reconciler = edge_and_internal();
    let classes = vec![class("edge", EDGE), class("internal", INTERNAL)];
    reconciler.apply_all(replace_all(
        vec![site("shop", "edge", "shop-v1")],
        classes.clone(),
    ));

    let outcome = reconciler.apply_all(replace_all(
        vec![broken_site("shop", "edge"), site("shop", "edge", "shop-v2")],
        classes,
    ));

    assert!(
        outcome.rejected.is_empty(),
        "the last copy is valid: {:?}",
        outcome.rejected
    );
    assert!(held_rejections(&reconciler).is_empty());
    assert_eq!(site_backend(&reconciler, EDGE, "shop"), svc("shop-v2"));
}

// ---------------------------------------------------------------------------------------------
// Which tables are rebuilt

#[test]
fn only_the_controller_whose_served_ingresses_changed_is_rebuilt() {
    let mut reconciler = edge_and_internal();
    reconciler.apply(Event::Apply(site("shop", "edge", "shop-v1").into()));
    reconciler.apply(Event::Apply(
        site("intranet", "internal", "intranet").into(),
    ));
    let internal_before = reconciler.snapshot(INTERNAL).unwrap().load();

    let outcome = reconciler.apply(Event::Apply(site("shop", "edge", "shop-v2").into()));

    assert_eq!(outcome.rebuilt, rebuilt(&[EDGE]));
    assert!(
        Arc::ptr_eq(
            &internal_before,
            &reconciler.snapshot(INTERNAL).unwrap().load()
        ),
        "the internal table was not swapped"
    );
    assert_eq!(site_backend(&reconciler, EDGE, "shop"), svc("shop-v2"));

    // An Ingress of a class no registered controller has changes no table.
    let outcome = reconciler.apply(Event::Apply(site("elsewhere", "missing", "x").into()));
    assert!(outcome.rebuilt.is_empty(), "{:?}", outcome.rebuilt);
    // Nor does an IngressClass nobody's Ingresses use.
    let outcome = reconciler.apply(Event::Apply(class("spare", INTERNAL).into()));
    assert!(outcome.rebuilt.is_empty(), "{:?}", outcome.rebuilt);
}

#[test]
fn reapplying_an_identical_replace_all_rebuilds_nothing() {
    let mut reconciler = edge_and_internal();
    let listing = replace_all(
        vec![
            site("shop", "edge", "shop"),
            site("intranet", "internal", "intranet"),
        ],
        vec![class("edge", EDGE), class("internal", INTERNAL)],
    );
    let first = reconciler.apply_all(listing.clone());
    assert_eq!(first.rebuilt, rebuilt(&[EDGE, INTERNAL]));
    let edge_before = reconciler.snapshot(EDGE).unwrap().load();

    let again = reconciler.apply_all(listing);

    assert!(again.rebuilt.is_empty(), "rebuilt {:?}", again.rebuilt);
    assert!(Arc::ptr_eq(
        &edge_before,
        &reconciler.snapshot(EDGE).unwrap().load()
    ));
}

#[test]
fn rebuild_all_swaps_in_every_table_even_when_nothing_changed() {
    let mut reconciler = edge_and_internal();
    reconciler.apply(Event::Apply(site("shop", "edge", "shop").into()));
    let edge_before = reconciler.snapshot(EDGE).unwrap().load();

    let outcome = reconciler.rebuild_all();

    assert_eq!(outcome.rebuilt, rebuilt(&[EDGE, INTERNAL]));
    let edge_after = reconciler.snapshot(EDGE).unwrap().load();
    assert!(!Arc::ptr_eq(&edge_before, &edge_after));
    assert_eq!(site_backend(&reconciler, EDGE, "shop"), svc("shop"));
}

#[test]
fn moving_an_ingress_to_another_class_rebuilds_both_controllers() {
    let mut reconciler = edge_and_internal();
    reconciler.apply(Event::Apply(site("shop", "edge", "shop").into()));
    assert_eq!(site_backend(&reconciler, EDGE, "shop"), svc("shop"));

    let outcome = reconciler.apply(Event::Apply(site("shop", "internal", "shop").into()));

    assert_eq!(outcome.rebuilt, rebuilt(&[EDGE, INTERNAL]));
    assert_eq!(site_backend(&reconciler, EDGE, "shop"), None);
    assert_eq!(site_backend(&reconciler, INTERNAL, "shop"), svc("shop"));
    let decision = &reconciler.decisions()[0];
    assert_eq!(decision.ingress, ingress_ref("shop"));
    assert_eq!(decision.controller.as_deref(), Some(INTERNAL));
}

#[test]
fn deleting_an_ingress_class_unserves_its_ingresses() {
    let mut reconciler = edge_and_internal();
    reconciler.apply(Event::Apply(site("shop", "edge", "shop").into()));
    reconciler.apply(Event::Apply(
        site("intranet", "internal", "intranet").into(),
    ));

    let outcome = reconciler.apply(Event::Delete(class_ref("edge")));

    assert_eq!(outcome.rebuilt, rebuilt(&[EDGE]));
    assert_eq!(site_backend(&reconciler, EDGE, "shop"), None);
    assert_eq!(
        site_backend(&reconciler, INTERNAL, "intranet"),
        svc("intranet")
    );
    let shop = reconciler
        .decisions()
        .iter()
        .find(|d| d.ingress == ingress_ref("shop"))
        .expect("shop is still decided");
    assert_eq!(shop.controller, None);
    assert_eq!(
        shop.reason,
        Reason::ClassNotFound {
            class: "edge".to_owned()
        }
    );

    // The class comes back: so does the route.
    let outcome = reconciler.apply(Event::Apply(class("edge", EDGE).into()));
    assert_eq!(outcome.rebuilt, rebuilt(&[EDGE]));
    assert_eq!(site_backend(&reconciler, EDGE, "shop"), svc("shop"));
}

// ---------------------------------------------------------------------------------------------
// Tables and snapshots

#[test]
fn a_snapshot_taken_before_an_event_keeps_answering_as_before() {
    let mut reconciler = edge_and_internal();
    reconciler.apply(Event::Apply(site("shop", "edge", "shop-v1").into()));
    let handle = reconciler.snapshot(EDGE).unwrap().clone();
    let before = handle.load();

    reconciler.apply(Event::Apply(site("shop", "edge", "shop-v2").into()));

    assert_eq!(
        backend_in(before.routes(), "shop.example", "/"),
        svc("shop-v1"),
        "the old snapshot is untouched"
    );
    let after = handle.load();
    assert!(!Arc::ptr_eq(&before, &after));
    assert_eq!(
        backend_in(after.routes(), "shop.example", "/"),
        svc("shop-v2")
    );
}

#[test]
fn every_ingress_reconciler_serves_ingresses_of_every_class() {
    let mut reconciler = Reconciler::every_ingress(TableOptions::default());
    let outcome = reconciler.apply_all(replace_all(
        vec![
            site("shop", "edge", "shop"),
            site("intranet", "internal", "intranet"),
            site("orphan", "missing", "orphan"),
        ],
        vec![class("edge", EDGE)],
    ));

    assert_eq!(outcome.rebuilt, vec![None]);
    let snapshots: Vec<Option<&str>> = reconciler.snapshots().map(|(name, _)| name).collect();
    assert_eq!(snapshots, vec![None], "one snapshot, of no controller");
    assert!(reconciler.snapshot(EDGE).is_none());
    assert!(reconciler.decisions().is_empty());
    let (_, shared) = reconciler.snapshots().next().unwrap();
    let snapshot = shared.load();
    for name in ["shop", "intranet", "orphan"] {
        assert_eq!(
            backend_in(snapshot.routes(), &format!("{name}.example"), "/"),
            svc(name),
            "{name}"
        );
    }

    // Deleting the class changes nothing here: classes decide nothing.
    let outcome = reconciler.apply(Event::Delete(class_ref("edge")));
    assert!(outcome.rebuilt.is_empty(), "{:?}", outcome.rebuilt);
}

#[test]
fn shared_table_store_returns_the_previous_table() {
    let v1 = manifests(
        "kind: Ingress\nmetadata: {name: web}\n\
         spec: {defaultBackend: {service: {name: web-v1, port: {number: 80}}}}\n",
    );
    let v2 = manifests(
        "kind: Ingress\nmetadata: {name: web}\n\
         spec: {defaultBackend: {service: {name: web-v2, port: {number: 80}}}}\n",
    );
    let shared = SharedSnapshot::new(RouteTable::build(&v1.ingresses, TableOptions::default()));
    let reader = shared.clone();

    let previous = shared.store(RouteTable::build(&v2.ingresses, TableOptions::default()));

    assert_eq!(
        backend_in(previous.routes(), "any.host", "/"),
        svc("web-v1")
    );
    assert_eq!(
        backend_in(reader.load().routes(), "any.host", "/"),
        svc("web-v2")
    );
    assert_eq!(
        backend_in(SharedSnapshot::default().load().routes(), "any.host", "/"),
        None,
        "a default handle routes nothing"
    );
}

// ---------------------------------------------------------------------------------------------
// Concurrency

/// Readers that load a snapshot per request never see a half-built table: every answer is that
/// of one of the two configurations being swapped in turn.
#[test]
fn readers_only_ever_see_complete_tables_during_swaps() {
    let config_a = manifests(
        r#"
kind: Ingress
metadata: {name: shop, creationTimestamp: "2024-01-01T00:00:00Z"}
spec:
  rules:
  - host: shop.example
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: shop-a, port: {number: 80}}}}
      - {path: /api, pathType: Prefix, backend: {service: {name: api-a, port: {number: 80}}}}
---
kind: Ingress
metadata: {name: docs, creationTimestamp: "2024-01-02T00:00:00Z"}
spec:
  rules:
  - host: docs.example
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: docs, port: {number: 80}}}}
"#,
    );
    let config_b = manifests(
        r#"
kind: Ingress
metadata: {name: shop, creationTimestamp: "2024-01-01T00:00:00Z"}
spec:
  rules:
  - host: shop.example
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: shop-b, port: {number: 80}}}}
---
kind: Ingress
metadata: {name: blog, creationTimestamp: "2024-01-03T00:00:00Z"}
spec:
  rules:
  - host: blog.example
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: blog, port: {number: 80}}}}
---
kind: Ingress
metadata: {name: docs, creationTimestamp: "2024-01-02T00:00:00Z"}
spec:
  rules:
  - host: docs.example
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: docs, port: {number: 80}}}}
"#,
    );
    let probes: &[(&str, &str)] = &[
        ("shop.example", "/"),
        ("shop.example", "/api/items"),
        ("blog.example", "/"),
        ("docs.example", "/guide"),
        ("other.example", "/"),
    ];
    let answers = |table: &RouteTable| -> Vec<Option<String>> {
        probes
            .iter()
            .map(|(host, path)| backend_in(table, host, path))
            .collect()
    };
    let expected_a = answers(&RouteTable::build(
        &config_a.ingresses,
        TableOptions::default(),
    ));
    let expected_b = answers(&RouteTable::build(
        &config_b.ingresses,
        TableOptions::default(),
    ));
    assert_ne!(expected_a, expected_b, "the configurations differ");
    assert_eq!(expected_a[3], svc("docs"), "both route docs");
    assert_eq!(expected_b[3], svc("docs"), "both route docs");

    let dispatcher = Dispatcher::new([Controller::new(EDGE).watch_without_class(true)]).unwrap();
    let mut reconciler = Reconciler::new(dispatcher);
    let listing = |m: &Manifests| replace_all(m.ingresses.clone(), vec![]);
    reconciler.apply_all(listing(&config_a));
    let shared = reconciler.snapshot(EDGE).unwrap().clone();

    const READERS: usize = 4;
    let done = AtomicBool::new(false);
    let started = Barrier::new(READERS + 1);
    let results: Vec<(usize, Vec<String>)> = std::thread::scope(|s| {
        let readers: Vec<_> = (0..READERS)
            .map(|_| {
                let (shared, done, started) = (shared.clone(), &done, &started);
                let (expected_a, expected_b) = (&expected_a, &expected_b);
                s.spawn(move || {
                    let mut loads = 0;
                    let mut wrong = Vec::new();
                    let mut first = true;
                    while first || !done.load(Ordering::Acquire) {
                        let snapshot = shared.load();
                        for (i, (host, path)) in probes.iter().enumerate() {
                            let got = backend_in(snapshot.routes(), host, path);
                            if got != expected_a[i] && got != expected_b[i] {
                                wrong.push(format!("{host}{path} -> {got:?}"));
                            }
                        }
                        loads += 1;
                        if first {
                            first = false;
                            started.wait();
                        }
                    }
                    (loads, wrong)
                })
            })
            .collect();
        started.wait();
        for i in 0..200 {
            let config = if i % 2 == 0 { &config_b } else { &config_a };
            let outcome = reconciler.apply_all(listing(config));
            assert!(outcome.rejected.is_empty());
        }
        done.store(true, Ordering::Release);
        readers
            .into_iter()
            .map(|r| r.join().expect("reader panicked"))
            .collect()
    });

    for (loads, wrong) in &results {
        assert!(*loads > 0);
        assert!(wrong.is_empty(), "answers of neither A nor B: {wrong:?}");
    }
    // 200 events starting with B end on A.
    assert_eq!(answers(shared.load().routes()), expected_a);
}

// ---------------------------------------------------------------------------------------------
// Property: the reconciler agrees with a fresh dispatch over a naive model

const CONTROLLER_A: &str = "a.example/ingress";
const CONTROLLER_B: &str = "b.example/ingress";
/// A valid controller that is never registered.
const UNREGISTERED: &str = "z.example/ingress";
/// Not a domain-prefixed path: an IngressClass with it is invalid.
const INVALID_CONTROLLER: &str = "no-slash";

/// Ingress names, by namespace; small, so updates and deletes hit existing objects.
const INGRESS_NAMES: &[(&str, &str)] = &[
    ("default", "web"),
    ("default", "api"),
    ("team", "web"),
    ("team", "blog"),
];
const CLASS_NAMES: &[&str] = &["alpha", "beta", "gamma"];
/// What `spec.ingressClassName` may say.
const CLASS_REFS: &[&str] = &["alpha", "beta", "gamma", "missing"];
/// What the legacy class annotation may say; `legacy` is an extra name of controller B.
const ANNOTATIONS: &[&str] = &["alpha", "beta", "legacy"];
const HOSTS: &[&str] = &["a.example.com", "b.example.com", "*.wild.example", ""];
const PATHS: &[(&str, &str)] = &[
    ("Prefix", "/"),
    ("Prefix", "/api"),
    ("Exact", "/api"),
    ("Prefix", "/api/v1"),
    ("ImplementationSpecific", "/static"),
    ("Exact", "/"),
];
const SERVICES: &[&str] = &["svc-1", "svc-2", "svc-3"];

const PROBE_HOSTS: &[Option<&str>] = &[
    Some("a.example.com"),
    Some("b.example.com"),
    Some("x.wild.example"),
    Some("other.test"),
    None,
];
const PROBE_PATHS: &[&str] = &["/", "/api", "/api/v1/items", "/static/app.js", "/nothing"];

/// How a generated Ingress is made invalid, if it is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Defect {
    /// The defaultBackend names a Service that is not a DNS label.
    BadServiceName,
    /// A Prefix path that does not start with `/`.
    RelativePrefix,
}

#[derive(Debug, Clone)]
struct GenIngress {
    key: usize,
    class_name: Option<&'static str>,
    annotation: Option<&'static str>,
    default_backend: Option<&'static str>,
    /// (host, (pathType, path), service)
    rules: Vec<(&'static str, (&'static str, &'static str), &'static str)>,
    defect: Option<Defect>,
    /// A coarse random age; [`with_distinct_timestamps`] makes every timestamp distinct.
    created: i64,
}

#[derive(Debug, Clone)]
struct GenClass {
    name: &'static str,
    controller: &'static str,
    default: bool,
    /// Ties between default classes are broken by name, so no order depends on arrival.
    created: i64,
}

#[derive(Debug, Clone)]
enum GenEvent {
    ApplyIngress(GenIngress),
    ApplyClass(GenClass),
    DeleteIngress(usize),
    DeleteClass(&'static str),
    ReplaceAll {
        ingresses: Vec<GenIngress>,
        classes: Vec<GenClass>,
    },
}

impl GenIngress {
    fn object_ref(&self) -> ObjectRef {
        ingress_key(self.key)
    }

    fn build(&self) -> Ingress {
        let (namespace, name) = INGRESS_NAMES[self.key];
        let mut b = ingress(namespace, name).created(self.created);
        if let Some(class) = self.class_name {
            b = b.class(class);
        }
        if let Some(value) = self.annotation {
            b = b.class_annotation(value);
        }
        if let Some(service) = self.default_backend {
            b = b.default_backend(service);
        }
        for &(host, (path_type, p), service) in &self.rules {
            b = b.rule(rule(host, vec![path(path_type, p, service)]));
        }
        match self.defect {
            None => {}
            Some(Defect::BadServiceName) => b = b.default_backend("Bad_Service"),
            Some(Defect::RelativePrefix) => {
                b = b.rule(rule("a.example.com", vec![path("Prefix", "api", "svc-1")]));
            }
        }
        b.build()
    }
}

impl GenClass {
    fn valid(&self) -> bool {
        self.controller != INVALID_CONTROLLER
    }

    fn build(&self) -> IngressClass {
        let mut b = ingress_class(self.name, self.controller).created(self.created);
        if self.default {
            b = b.default_class();
        }
        b.build()
    }
}

fn gen_ingress() -> impl Strategy<Value = GenIngress> {
    (
        0..INGRESS_NAMES.len(),
        prop::option::weighted(0.6, select(CLASS_REFS)),
        prop::option::weighted(0.3, select(ANNOTATIONS)),
        prop::option::weighted(0.4, select(SERVICES)),
        prop::collection::vec((select(HOSTS), select(PATHS), select(SERVICES)), 0..=3),
        prop::option::weighted(
            0.2,
            prop_oneof![Just(Defect::BadServiceName), Just(Defect::RelativePrefix)],
        ),
        0..4i64,
    )
        .prop_map(
            |(key, class_name, annotation, default_backend, rules, defect, created)| {
                GenIngress {
                    key,
                    class_name,
                    annotation,
                    // An Ingress needs rules or a defaultBackend: keep valid ones valid.
                    default_backend: default_backend
                        .or_else(|| rules.is_empty().then_some(SERVICES[0])),
                    rules,
                    defect,
                    created,
                }
            },
        )
}

fn gen_class() -> impl Strategy<Value = GenClass> {
    (
        select(CLASS_NAMES),
        prop_oneof![
            3 => Just(CONTROLLER_A),
            3 => Just(CONTROLLER_B),
            1 => Just(UNREGISTERED),
            1 => Just(INVALID_CONTROLLER),
        ],
        prop::bool::weighted(0.3),
        0..3i64,
    )
        .prop_map(|(name, controller, default, created)| GenClass {
            name,
            controller,
            default,
            created,
        })
}

/// Keeps one object per name (the last), so that a listing never repeats an object.
fn distinct_by<T, K: PartialEq>(items: Vec<T>, key: impl Fn(&T) -> K) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    for item in items {
        out.retain(|kept| key(kept) != key(&item));
        out.push(item);
    }
    out
}

fn gen_event() -> impl Strategy<Value = GenEvent> {
    prop_oneof![
        5 => gen_ingress().prop_map(GenEvent::ApplyIngress),
        2 => gen_class().prop_map(GenEvent::ApplyClass),
        2 => (0..INGRESS_NAMES.len()).prop_map(GenEvent::DeleteIngress),
        1 => select(CLASS_NAMES).prop_map(GenEvent::DeleteClass),
        2 => (
            prop::collection::vec(gen_ingress(), 0..=5),
            prop::collection::vec(gen_class(), 0..=3),
        )
            .prop_map(|(ingresses, classes)| GenEvent::ReplaceAll {
                ingresses: distinct_by(ingresses, |i| i.key),
                classes: distinct_by(classes, |c| c.name),
            }),
    ]
}

/// Gives every generated Ingress a distinct `creationTimestamp` (its coarse random age, then
/// its position), so routing never depends on the order the Ingresses arrived in.
fn with_distinct_timestamps(mut events: Vec<GenEvent>) -> Vec<GenEvent> {
    let mut serial = 0;
    let mut stamp = |i: &mut GenIngress| {
        serial += 1;
        i.created = i.created * 10_000 + serial;
    };
    for event in &mut events {
        match event {
            GenEvent::ApplyIngress(i) => stamp(i),
            GenEvent::ReplaceAll { ingresses, .. } => ingresses.iter_mut().for_each(&mut stamp),
            _ => {}
        }
    }
    events
}

fn events() -> impl Strategy<Value = Vec<GenEvent>> {
    prop::collection::vec(gen_event(), 1..=24).prop_map(with_distinct_timestamps)
}

/// The naive model: the last valid version of every object, in arrival order, and the objects
/// whose latest version was rejected (with whether a valid version is still held).
#[derive(Default)]
struct Model {
    ingresses: Vec<(ObjectRef, Ingress)>,
    classes: Vec<(ObjectRef, IngressClass)>,
    rejected: BTreeMap<ObjectRef, bool>,
}

/// Inserts or replaces in place (an update keeps its first arrival).
fn upsert<T>(list: &mut Vec<(ObjectRef, T)>, key: ObjectRef, value: T) {
    match list.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => list.push((key, value)),
    }
}

fn find<'a, T>(list: &'a [(ObjectRef, T)], key: &ObjectRef) -> Option<&'a T> {
    list.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

impl Model {
    fn ingresses(&self) -> Vec<Ingress> {
        self.ingresses.iter().map(|(_, i)| i.clone()).collect()
    }

    fn classes(&self) -> Vec<IngressClass> {
        self.classes.iter().map(|(_, c)| c.clone()).collect()
    }

    /// Applies an event; returns the rejections it should report, as (object, kept_previous),
    /// sorted.
    fn apply(&mut self, event: &GenEvent) -> Vec<(ObjectRef, bool)> {
        match event {
            GenEvent::ApplyIngress(g) => {
                let key = g.object_ref();
                if g.defect.is_none() {
                    self.rejected.remove(&key);
                    upsert(&mut self.ingresses, key, g.build());
                    vec![]
                } else {
                    let kept = find(&self.ingresses, &key).is_some();
                    self.rejected.insert(key.clone(), kept);
                    vec![(key, kept)]
                }
            }
            GenEvent::ApplyClass(g) => {
                let key = g.build().object_ref();
                if g.valid() {
                    self.rejected.remove(&key);
                    upsert(&mut self.classes, key, g.build());
                    vec![]
                } else {
                    let kept = find(&self.classes, &key).is_some();
                    self.rejected.insert(key.clone(), kept);
                    vec![(key, kept)]
                }
            }
            GenEvent::DeleteIngress(k) => {
                let key = ingress_key(*k);
                self.ingresses.retain(|(r, _)| *r != key);
                self.rejected.remove(&key);
                vec![]
            }
            GenEvent::DeleteClass(name) => {
                let key = class_ref(name);
                self.classes.retain(|(r, _)| *r != key);
                self.rejected.remove(&key);
                vec![]
            }
            GenEvent::ReplaceAll { ingresses, classes } => {
                let mut new = Model::default();
                for g in classes {
                    let class = g.build();
                    let key = class.object_ref();
                    if g.valid() {
                        new.classes.push((key, class));
                    } else {
                        let previous = find(&self.classes, &key).cloned();
                        new.rejected.insert(key.clone(), previous.is_some());
                        if let Some(previous) = previous {
                            new.classes.push((key, previous));
                        }
                    }
                }
                for g in ingresses {
                    let key = g.object_ref();
                    if g.defect.is_none() {
                        new.ingresses.push((key, g.build()));
                    } else {
                        let previous = find(&self.ingresses, &key).cloned();
                        new.rejected.insert(key.clone(), previous.is_some());
                        if let Some(previous) = previous {
                            new.ingresses.push((key, previous));
                        }
                    }
                }
                *self = new;
                self.rejected.iter().map(|(k, v)| (k.clone(), *v)).collect()
            }
        }
    }
}

fn ingress_key(k: usize) -> ObjectRef {
    let (namespace, name) = INGRESS_NAMES[k];
    ObjectRef {
        kind: ObjectKind::Ingress,
        namespace: Some(namespace.to_owned()),
        name: name.to_owned(),
    }
}

/// The batch of events that `event` is: one event, or for a relisting one per kind.
fn to_events(event: &GenEvent) -> Vec<Event> {
    match event {
        GenEvent::ApplyIngress(g) => vec![Event::Apply(Object::Ingress(g.build()))],
        GenEvent::ApplyClass(g) => vec![Event::Apply(Object::IngressClass(g.build()))],
        GenEvent::DeleteIngress(k) => vec![Event::Delete(ingress_key(*k))],
        GenEvent::DeleteClass(name) => vec![Event::Delete(class_ref(name))],
        GenEvent::ReplaceAll { ingresses, classes } => replace_all(
            ingresses.iter().map(GenIngress::build).collect(),
            classes.iter().map(GenClass::build).collect(),
        )
        .into(),
    }
}

/// The generator's idea of validity is the apiserver's.
fn check_validity(event: &GenEvent) -> Result<(), TestCaseError> {
    let mut ingresses: Vec<&GenIngress> = Vec::new();
    let mut classes: Vec<&GenClass> = Vec::new();
    match event {
        GenEvent::ApplyIngress(g) => ingresses.push(g),
        GenEvent::ApplyClass(g) => classes.push(g),
        GenEvent::ReplaceAll {
            ingresses: i,
            classes: c,
        } => {
            ingresses.extend(i);
            classes.extend(c);
        }
        _ => {}
    }
    for g in ingresses {
        let errors = validate_ingress(&g.build());
        prop_assert_eq!(
            errors.is_empty(),
            g.defect.is_none(),
            "{:?}: {:?}",
            g,
            errors
        );
    }
    for g in classes {
        let errors = validate_ingress_class(&g.build());
        prop_assert_eq!(errors.is_empty(), g.valid(), "{:?}: {:?}", g, errors);
    }
    Ok(())
}

/// What a table answers for a probe: the backend and the Ingress it came from; `None` is 404.
type Answer = Option<(Backend, Option<ObjectRef>)>;

fn answer(table: &RouteTable, host: Option<&str>, path: &str) -> Answer {
    table
        .route(host, path)
        .map(|m| (m.backend().clone(), m.ingress().cloned()))
}

fn sorted_decisions(decisions: &[Decision]) -> Vec<Decision> {
    let mut sorted = decisions.to_vec();
    sorted.sort_by(|a, b| a.ingress.cmp(&b.ingress));
    sorted
}

fn property_dispatcher() -> Dispatcher {
    Dispatcher::new([
        Controller::new(CONTROLLER_A).watch_without_class(true),
        Controller::new(CONTROLLER_B).class_annotation("legacy"),
    ])
    .expect("registration")
}

proptest! {
    // Failures print the shrunk input; nothing is written next to the sources.
    #![proptest_config(ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn reconciler_routes_as_a_fresh_dispatch_of_the_last_valid_objects(events in events()) {
        let dispatcher = property_dispatcher();
        let mut reconciler = Reconciler::new(dispatcher.clone());
        let mut model = Model::default();
        let controllers = [CONTROLLER_A, CONTROLLER_B];
        // What each controller served after the previous event, per the model.
        let mut served_before: Vec<Vec<(ObjectRef, Ingress)>> = vec![Vec::new(); 2];

        for (step, event) in events.iter().enumerate() {
            check_validity(event)?;
            let snapshots: Vec<Arc<Snapshot>> = controllers
                .iter()
                .map(|c| reconciler.snapshot(c).unwrap().load())
                .collect();

            let outcome = reconciler.apply_all(to_events(event));
            let expected_rejections = model.apply(event);

            let mut got_rejections = reported(&outcome);
            got_rejections.sort();
            prop_assert_eq!(&got_rejections, &expected_rejections, "step {}: reported", step);
            let held: Vec<(ObjectRef, bool)> = held_rejections(&reconciler);
            let expected_held: Vec<(ObjectRef, bool)> =
                model.rejected.iter().map(|(k, v)| (k.clone(), *v)).collect();
            prop_assert_eq!(held, expected_held, "step {}: held rejections", step);

            let mut held_ingresses: Vec<Ingress> =
                reconciler.ingresses().into_iter().cloned().collect();
            held_ingresses.sort_by_key(Ingress::object_ref);
            let mut model_ingresses = model.ingresses();
            model_ingresses.sort_by_key(Ingress::object_ref);
            prop_assert_eq!(held_ingresses, model_ingresses, "step {}: Ingresses held", step);
            let mut held_classes: Vec<IngressClass> =
                reconciler.classes().into_iter().cloned().collect();
            held_classes.sort_by_key(IngressClass::object_ref);
            let mut model_classes = model.classes();
            model_classes.sort_by_key(IngressClass::object_ref);
            prop_assert_eq!(held_classes, model_classes, "step {}: classes held", step);

            let fresh = dispatcher.dispatch(&model.classes(), &model.ingresses());
            prop_assert_eq!(
                sorted_decisions(reconciler.decisions()),
                sorted_decisions(&fresh.decisions),
                "step {}: decisions",
                step
            );

            for (c, controller) in controllers.iter().enumerate() {
                let expected = &fresh.controller(controller).unwrap().table;
                let live = reconciler.snapshot(controller).unwrap().load();
                for &host in PROBE_HOSTS {
                    for &p in PROBE_PATHS {
                        prop_assert_eq!(
                            answer(live.routes(), host, p),
                            answer(expected, host, p),
                            "step {}: {} routes {:?} {}",
                            step,
                            controller,
                            host,
                            p
                        );
                    }
                }

                // `rebuilt` names exactly the tables swapped, and every table whose served
                // Ingresses changed is among them.
                let name = Some((*controller).to_owned());
                let swapped = !Arc::ptr_eq(&snapshots[c], &live);
                prop_assert_eq!(
                    swapped,
                    outcome.rebuilt.contains(&name),
                    "step {}: {} swapped vs rebuilt {:?}",
                    step,
                    controller,
                    outcome.rebuilt
                );
                let mut served: Vec<(ObjectRef, Ingress)> = fresh
                    .controller(controller)
                    .unwrap()
                    .served
                    .iter()
                    .map(|r| (r.clone(), find(&model.ingresses, r).unwrap().clone()))
                    .collect();
                served.sort_by(|a, b| a.0.cmp(&b.0));
                if served != served_before[c] {
                    prop_assert!(
                        swapped,
                        "step {}: {}'s Ingresses changed but its table was not rebuilt",
                        step,
                        controller
                    );
                }
                served_before[c] = served;
            }
        }
    }
}
