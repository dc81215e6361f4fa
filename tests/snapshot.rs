//! One snapshot per controller: every kind of object reconciled into one swap, and the parts a
//! change does not touch shared with the snapshot before it.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use ingress_router::model::{EndpointSlice, Secret, Service};
use ingress_router::{
    CertResolver, Controller, Dispatcher, Event, Manifests, Object, ObjectKind, ObjectRef, Objects,
    Reconciler, ServiceBackend, SharedSnapshot, Snapshot, TableOptions, Unresolved,
};

fn manifests(yaml: &str) -> Manifests {
    let m = Manifests::parse(yaml);
    assert!(m.errors.is_empty(), "{:?}", m.errors);
    m
}

const CLUSTER: &str = r#"
kind: IngressClass
metadata: {name: edge}
spec: {controller: example.com/edge}
---
kind: IngressClass
metadata: {name: internal}
spec: {controller: example.com/internal}
---
kind: Ingress
metadata: {name: shop, namespace: web}
spec:
  ingressClassName: edge
  tls: [{hosts: [shop.example.com], secretName: shop-tls}]
  rules:
  - host: shop.example.com
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: shop, port: {name: http}}}}]}
---
kind: Ingress
metadata: {name: admin, namespace: ops}
spec:
  ingressClassName: internal
  rules:
  - host: admin.example.com
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: admin, port: {number: 80}}}}]}
---
kind: Service
metadata: {name: shop, namespace: web}
spec: {ports: [{name: http, port: 80}]}
---
kind: EndpointSlice
apiVersion: discovery.k8s.io/v1
metadata: {name: shop-1, namespace: web, labels: {kubernetes.io/service-name: shop}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints: [{addresses: [10.0.0.1]}]
---
kind: Service
metadata: {name: admin, namespace: ops}
spec: {ports: [{port: 80}]}
---
kind: EndpointSlice
apiVersion: discovery.k8s.io/v1
metadata: {name: admin-1, namespace: ops, labels: {kubernetes.io/service-name: admin}}
addressType: IPv4
ports: [{port: 9000}]
endpoints: [{addresses: [10.1.0.1]}]
"#;

fn reconciler() -> Reconciler {
    let dispatcher = Dispatcher::new([
        Controller::new("example.com/edge"),
        Controller::new("example.com/internal"),
    ])
    .unwrap();
    let mut reconciler = Reconciler::new(dispatcher);
    let outcome = reconciler.apply_all(Event::replace_all(manifests(CLUSTER)));
    assert!(outcome.rejected.is_empty(), "{:?}", outcome.rejected);
    reconciler
}

fn backend(text: &str) -> ServiceBackend {
    match text.parse().unwrap() {
        ingress_router::Backend::Service(s) => s,
        other => panic!("{other:?}"),
    }
}

fn addresses(snapshot: &Snapshot, backend_text: &str) -> Result<Vec<SocketAddr>, Unresolved> {
    snapshot
        .endpoints()
        .resolve(&backend(backend_text))
        .map(<[SocketAddr]>::to_vec)
}

fn slice(yaml: &str) -> EndpointSlice {
    manifests(yaml).endpoint_slices.remove(0)
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

#[test]
fn a_snapshot_holds_routes_tls_names_and_endpoints_of_one_controller() {
    let reconciler = reconciler();
    let edge = reconciler.snapshot("example.com/edge").unwrap().load();
    let route = edge.routes().route(Some("shop.example.com"), "/").unwrap();
    assert_eq!(route.backend().to_string(), "service web/shop:http");
    assert!(edge
        .routes()
        .route(Some("admin.example.com"), "/")
        .is_none());
    assert!(edge.tls().lookup("shop.example.com").is_some());
    assert_eq!(
        addresses(&edge, "web/shop:http").unwrap(),
        [addr("10.0.0.1:8080")]
    );

    let internal = reconciler.snapshot("example.com/internal").unwrap().load();
    assert!(internal.tls().is_empty());
    let route = internal
        .routes()
        .route(Some("admin.example.com"), "/x")
        .unwrap();
    assert_eq!(route.backend().to_string(), "service ops/admin:80");
    assert_eq!(
        addresses(&internal, "ops/admin:80").unwrap(),
        [addr("10.1.0.1:9000")]
    );
}

#[test]
fn an_endpoint_slice_change_shares_the_route_table_and_tls_names() {
    let mut reconciler = reconciler();
    let handle = reconciler.snapshot("example.com/edge").unwrap().clone();
    let before = handle.load();
    let outcome = reconciler.apply(Event::Apply(Object::EndpointSlice(slice(
        r#"
kind: EndpointSlice
apiVersion: discovery.k8s.io/v1
metadata: {name: shop-1, namespace: web, labels: {kubernetes.io/service-name: shop}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints: [{addresses: [10.0.0.1]}, {addresses: [10.0.0.2]}]
"#,
    ))));
    assert!(outcome.rebuilt.is_empty(), "{outcome:?}");
    assert_eq!(
        outcome.published.len(),
        2,
        "both controllers share the endpoints"
    );
    for published in &outcome.published {
        assert!(published.endpoints && !published.routes && !published.tls);
        assert!(!published.certificates);
    }
    let after = handle.load();
    assert!(
        !Arc::ptr_eq(&before, &after),
        "a new snapshot was swapped in"
    );
    assert!(
        Arc::ptr_eq(before.routes(), after.routes()),
        "the routes are shared"
    );
    assert!(
        Arc::ptr_eq(before.tls(), after.tls()),
        "the TLS names are shared"
    );
    assert_eq!(
        addresses(&after, "web/shop:http").unwrap(),
        [addr("10.0.0.1:8080"), addr("10.0.0.2:8080")]
    );
    // The snapshot a request already holds keeps its endpoints.
    assert_eq!(
        addresses(&before, "web/shop:http").unwrap(),
        [addr("10.0.0.1:8080")]
    );
    // The other Service's endpoints are untouched.
    assert_eq!(
        addresses(&after, "ops/admin:80").unwrap(),
        [addr("10.1.0.1:9000")]
    );
}

#[test]
fn services_and_slices_come_and_go_by_event() {
    let mut reconciler = reconciler();
    let handle = reconciler.snapshot("example.com/edge").unwrap().clone();
    let slice_ref = ObjectRef::namespaced(ObjectKind::EndpointSlice, "web", "shop-1");
    reconciler.apply(Event::Delete(slice_ref));
    assert!(matches!(
        addresses(&handle.load(), "web/shop:http"),
        Err(Unresolved::NoEndpoints { .. })
    ));
    let service_ref = ObjectRef::namespaced(ObjectKind::Service, "web", "shop");
    reconciler.apply(Event::Delete(service_ref));
    assert!(matches!(
        addresses(&handle.load(), "web/shop:http"),
        Err(Unresolved::NoService { .. })
    ));
    // A slice that moves to another Service leaves the first.
    let moved = slice(
        r#"
kind: EndpointSlice
apiVersion: discovery.k8s.io/v1
metadata: {name: admin-1, namespace: ops, labels: {kubernetes.io/service-name: other}}
addressType: IPv4
ports: [{port: 9000}]
endpoints: [{addresses: [10.1.0.1]}]
"#,
    );
    reconciler.apply(Event::Apply(moved.into()));
    assert!(matches!(
        addresses(&handle.load(), "ops/admin:80"),
        Err(Unresolved::NoEndpoints { .. })
    ));
    let service: Service = manifests(
        "kind: Service\nmetadata: {name: shop, namespace: web}\nspec: {ports: [{name: http, port: 80}]}\n",
    )
    .services
    .remove(0);
    reconciler.apply(Event::Apply(service.into()));
    let restored = slice(
        r#"
kind: EndpointSlice
apiVersion: discovery.k8s.io/v1
metadata: {name: shop-2, namespace: web, labels: {kubernetes.io/service-name: shop}}
addressType: IPv4
ports: [{name: http, port: 8081}]
endpoints: [{addresses: [10.0.0.9]}]
"#,
    );
    reconciler.apply(Event::Apply(restored.into()));
    assert_eq!(
        addresses(&handle.load(), "web/shop:http").unwrap(),
        [addr("10.0.0.9:8081")]
    );
}

#[test]
fn incremental_endpoints_equal_a_full_computation() {
    let mut reconciler = reconciler();
    let events = [
        "kind: EndpointSlice\napiVersion: discovery.k8s.io/v1\nmetadata: {name: shop-2, namespace: web, labels: {kubernetes.io/service-name: shop}}\naddressType: IPv6\nports: [{name: http, port: 8080}]\nendpoints: [{addresses: ['fd00::1']}, {addresses: ['fd00::2'], conditions: {ready: false}}]\n",
        "kind: Service\nmetadata: {name: admin, namespace: ops}\nspec: {ports: [{port: 80, name: web}, {port: 81, name: alt}]}\n",
        "kind: EndpointSlice\napiVersion: discovery.k8s.io/v1\nmetadata: {name: admin-1, namespace: ops, labels: {kubernetes.io/service-name: admin}}\naddressType: IPv4\nports: [{name: web, port: 9000}, {name: alt, port: 9001}]\nendpoints: [{addresses: [10.1.0.1, 10.1.0.2]}]\n",
    ];
    for yaml in events {
        let m = manifests(yaml);
        let object: Object = match (m.services.first(), m.endpoint_slices.first()) {
            (Some(s), _) => s.clone().into(),
            (_, Some(s)) => s.clone().into(),
            _ => unreachable!(),
        };
        reconciler.apply(Event::Apply(object));
    }
    let live = reconciler.snapshot("example.com/edge").unwrap().load();
    // The same objects, listed at once.
    let mut all = manifests(CLUSTER);
    for yaml in events {
        let m = manifests(yaml);
        for s in m.services {
            all.services.retain(|x| x.object_ref() != s.object_ref());
            all.services.push(s);
        }
        for s in m.endpoint_slices {
            all.endpoint_slices
                .retain(|x| x.object_ref() != s.object_ref());
            all.endpoint_slices.push(s);
        }
    }
    let full = ingress_router::Endpoints::new(&all.services, &all.endpoint_slices);
    assert_eq!(live.endpoints().to_string(), full.to_string());
    for b in [
        "web/shop:http",
        "ops/admin:80",
        "ops/admin:81",
        "ops/admin:web",
    ] {
        assert_eq!(
            live.endpoints().resolve(&backend(b)).map(<[_]>::to_vec),
            full.resolve(&backend(b)).map(<[_]>::to_vec),
            "{b}"
        );
    }
}

#[test]
fn a_batch_is_published_in_one_swap_per_controller() {
    let dispatcher = Dispatcher::new([Controller::new("example.com/edge")]).unwrap();
    let mut reconciler = Reconciler::new(dispatcher);
    let handle = reconciler.snapshot("example.com/edge").unwrap().clone();
    let first = handle.load();
    let outcome = reconciler.apply_all(Event::replace_all(manifests(CLUSTER)));
    assert_eq!(outcome.published.len(), 1);
    let published = &outcome.published[0];
    assert!(published.routes && published.tls && published.endpoints);
    let now = handle.load();
    assert!(!Arc::ptr_eq(&first, &now));
    // Routes and endpoints arrived together.
    assert!(now.routes().route(Some("shop.example.com"), "/").is_some());
    assert!(addresses(&now, "web/shop:http").is_ok());
    // The same listing again changes nothing and publishes nothing.
    let again = reconciler.apply_all(Event::replace_all(manifests(CLUSTER)));
    assert!(again.published.is_empty(), "{again:?}");
    assert!(again.rebuilt.is_empty());
    assert!(Arc::ptr_eq(&now, &handle.load()));
}

#[test]
fn an_ingress_change_without_tls_shares_the_tls_names_and_endpoints() {
    let mut reconciler = reconciler();
    let handle = reconciler.snapshot("example.com/edge").unwrap().clone();
    let before = handle.load();
    let extra = manifests(
        r#"
kind: Ingress
metadata: {name: blog, namespace: web}
spec:
  ingressClassName: edge
  rules:
  - host: blog.example.com
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: blog, port: {number: 80}}}}]}
"#,
    );
    let outcome = reconciler.apply(Event::Apply(extra.ingresses[0].clone().into()));
    assert_eq!(outcome.rebuilt, [Some("example.com/edge".to_owned())]);
    assert_eq!(outcome.published.len(), 1);
    assert!(outcome.published[0].routes && !outcome.published[0].tls);
    let after = handle.load();
    assert!(!Arc::ptr_eq(before.routes(), after.routes()));
    assert!(Arc::ptr_eq(before.tls(), after.tls()));
    assert!(Arc::ptr_eq(before.endpoints(), after.endpoints()));
    assert!(after
        .routes()
        .route(Some("blog.example.com"), "/")
        .is_some());
    // The internal controller does not serve it: its snapshot stays.
    assert_eq!(
        outcome.published[0].controller.as_deref(),
        Some("example.com/edge")
    );
}

#[test]
fn tls_findings_are_in_the_snapshot_diagnostics_in_input_order() {
    let m = manifests(
        r#"
kind: Ingress
metadata: {name: a, namespace: x}
spec:
  tls: [{hosts: [a.example.com]}]
  rules:
  - host: a.example.com
    http: {paths: [{path: /a//b, pathType: ImplementationSpecific, backend: {service: {name: s, port: {number: 80}}}}]}
---
kind: Ingress
metadata: {name: a, namespace: x}
spec:
  tls: [{hosts: [a.example.com]}]
  rules:
  - host: a.example.com
    http: {paths: [{path: /a//b, pathType: ImplementationSpecific, backend: {service: {name: s, port: {number: 80}}}}]}
"#,
    );
    let snapshot = Snapshot::build(&m.ingresses, TableOptions::default());
    let warnings: Vec<String> = snapshot
        .diagnostics()
        .warnings
        .iter()
        .map(|w| w.field.clone())
        .collect();
    // The replaced duplicate, then TLS, then the host's rules.
    assert_eq!(
        warnings,
        [
            "metadata.name",
            "spec.tls[0].secretName",
            "spec.rules[0].http.paths[0].path"
        ]
    );
    // The route table alone knows nothing of TLS.
    let routes_only: Vec<&str> = snapshot
        .routes()
        .diagnostics()
        .warnings
        .iter()
        .map(|w| w.field.as_str())
        .collect();
    assert_eq!(
        routes_only,
        ["metadata.name", "spec.rules[0].http.paths[0].path"]
    );
}

#[test]
fn only_tls_secrets_are_kept() {
    let mut reconciler = reconciler();
    let opaque: Secret =
        manifests("kind: Secret\nmetadata: {name: shop-tls, namespace: web}\ndata: {a: YQ==}\n")
            .secrets
            .remove(0);
    let outcome = reconciler.apply(Event::Apply(opaque.into()));
    // Without certificates configured, a Secret changes nothing a request sees.
    assert!(outcome.published.is_empty(), "{outcome:?}");
    assert!(outcome.rejected.is_empty());
}

#[test]
fn every_ingress_reconcilers_keep_one_snapshot() {
    let mut reconciler = Reconciler::every_ingress(TableOptions::default());
    let outcome = reconciler.apply_all([
        Event::ReplaceAll(Objects::Ingresses(manifests(CLUSTER).ingresses)),
        Event::ReplaceAll(Objects::Services(manifests(CLUSTER).services)),
    ]);
    assert_eq!(outcome.rebuilt, [None]);
    let (name, handle) = reconciler.snapshots().next().unwrap();
    assert_eq!(name, None);
    let snapshot = handle.load();
    assert!(snapshot
        .routes()
        .route(Some("admin.example.com"), "/")
        .is_some());
    assert!(snapshot
        .routes()
        .route(Some("shop.example.com"), "/")
        .is_some());
    // Services without slices: known, but without endpoints.
    assert!(matches!(
        addresses(&snapshot, "web/shop:http"),
        Err(Unresolved::NoEndpoints { .. })
    ));
}

#[test]
fn shared_snapshots_swap_atomically_for_every_clone() {
    let shared = SharedSnapshot::default();
    let clone = shared.clone();
    assert!(clone.load().routes().route(None, "/").is_none());
    let m = manifests(CLUSTER);
    let old = shared.store(Snapshot::build(&m.ingresses, TableOptions::default()));
    assert!(old.routes().route(Some("shop.example.com"), "/").is_none());
    assert!(clone
        .load()
        .routes()
        .route(Some("shop.example.com"), "/")
        .is_some());
}

mod certificates {
    use super::*;
    use common::tls::{provider, TestCa};

    fn tls_secret(name: &str, issued: &common::tls::Issued) -> Secret {
        let mut secret = Secret {
            type_: Some(ingress_router::model::TLS_SECRET_TYPE.to_owned()),
            ..Secret::default()
        };
        secret.metadata.namespace = Some("web".to_owned());
        secret.metadata.name = name.to_owned();
        secret
            .string_data
            .insert("tls.crt".to_owned(), issued.chain_pem.clone());
        secret
            .string_data
            .insert("tls.key".to_owned(), issued.key_pem.clone());
        secret
    }

    fn leaf(snapshot: &Snapshot, sni: &str) -> Option<Vec<u8>> {
        let key = snapshot.certificates().resolve(Some(sni))?;
        Some(key.end_entity_cert().ok()?.to_vec())
    }

    #[test]
    fn a_secret_rotation_shares_routes_tls_names_and_endpoints() {
        let ca = TestCa::new("snapshot test CA");
        let v1 = ca.issue(&["shop.example.com"]);
        let v2 = ca.issue(&["shop.example.com"]);
        let dispatcher = Dispatcher::new([Controller::new("example.com/edge")]).unwrap();
        let mut reconciler = Reconciler::new(dispatcher).with_certificates(provider(), None, None);
        let mut objects = manifests(CLUSTER);
        objects.secrets.push(tls_secret("shop-tls", &v1));
        reconciler.apply_all(Event::replace_all(objects));
        let handle = reconciler.snapshot("example.com/edge").unwrap().clone();
        let before = handle.load();
        assert_eq!(leaf(&before, "shop.example.com"), Some(v1.der.to_vec()));
        assert!(before.certificates().problems().is_empty());

        let outcome = reconciler.apply(Event::Apply(tls_secret("shop-tls", &v2).into()));
        assert!(outcome.rebuilt.is_empty());
        assert_eq!(outcome.published.len(), 1);
        let published = &outcome.published[0];
        assert!(published.certificates && !published.routes && !published.endpoints);
        let after = handle.load();
        assert!(Arc::ptr_eq(before.routes(), after.routes()));
        assert!(Arc::ptr_eq(before.tls(), after.tls()));
        assert!(Arc::ptr_eq(before.endpoints(), after.endpoints()));
        assert_eq!(leaf(&after, "shop.example.com"), Some(v2.der.to_vec()));
        // A handshake that already took the old snapshot keeps the old certificate.
        assert_eq!(leaf(&before, "shop.example.com"), Some(v1.der.to_vec()));

        // A Secret no served Ingress names publishes nothing.
        let other = reconciler.apply(Event::Apply(tls_secret("unrelated", &v1).into()));
        assert!(other.published.is_empty(), "{other:?}");

        // Deleting the Secret: the name gets the default (none here), and the problem says why.
        let gone = ObjectRef::namespaced(ObjectKind::Secret, "web", "shop-tls");
        reconciler.apply(Event::Delete(gone));
        let deleted = handle.load();
        assert_eq!(leaf(&deleted, "shop.example.com"), None);
        let problems: Vec<String> = deleted
            .certificates()
            .problems()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            problems,
            ["secret web/shop-tls (for shop.example.com): no such Secret"]
        );
    }

    #[test]
    fn the_resolver_serves_the_current_snapshot_and_the_default_secret() {
        let ca = TestCa::new("snapshot test CA");
        let shop = ca.issue(&["shop.example.com"]);
        let fallback_cert = ca.issue(&["fallback.invalid"]);
        let default_cert = ca.issue(&["default.invalid"]);
        let fallback = Arc::new(
            ingress_router::certified_key_from_pem(
                fallback_cert.chain_pem.as_bytes(),
                fallback_cert.key_pem.as_bytes(),
                &provider(),
            )
            .unwrap(),
        );
        let dispatcher = Dispatcher::new([Controller::new("example.com/edge")]).unwrap();
        let default_ref = ingress_router::SecretRef::new("web", "default-tls");
        let mut reconciler = Reconciler::new(dispatcher).with_certificates(
            provider(),
            Some(default_ref),
            Some(fallback),
        );
        let mut objects = manifests(CLUSTER);
        objects.secrets.push(tls_secret("shop-tls", &shop));
        reconciler.apply_all(Event::replace_all(objects));
        let handle = reconciler.snapshot("example.com/edge").unwrap().clone();
        let resolver = CertResolver::new(handle.clone());
        assert!(Arc::ptr_eq(&resolver.snapshot().load(), &handle.load()));
        // No default Secret yet: the fallback, and the reconciler says why.
        let unknown = handle.load();
        assert_eq!(
            leaf(&unknown, "unknown.example.org"),
            Some(fallback_cert.der.to_vec())
        );
        assert_eq!(
            reconciler.default_certificate_problem().as_deref(),
            Some("default certificate web/default-tls: no such Secret")
        );
        // The default Secret arrives: unknown names get it.
        reconciler.apply(Event::Apply(
            tls_secret("default-tls", &default_cert).into(),
        ));
        let now = handle.load();
        assert_eq!(
            leaf(&now, "unknown.example.org"),
            Some(default_cert.der.to_vec())
        );
        assert_eq!(leaf(&now, "shop.example.com"), Some(shop.der.to_vec()));
        assert_eq!(reconciler.default_certificate_problem(), None);
    }
}
