//! Any bytes given as manifests are read (by `parse`, which reads JSON when the text starts with
//! `{` or `[` and YAML otherwise, and by the other reader too: as YAML behind a comment line, as
//! JSON wrapped in `[...]`), validated, dispatched to controllers and compiled into route tables
//! and TLS names without panicking; every Ingress read is either routed or quarantined, an
//! incremental update equals a full build, and smaller load limits only ever leave objects out.
//! `Manifests::read_with` keeps what it is given back as `read` does, and takes its objects in
//! `read`'s order, unless it reports the document it could not take them back from.
//!
//! Time and memory per input are bounded by libFuzzer's `-timeout` and `-rss_limit_mb`, which
//! `.ci/run` sets.
#![no_main]

use ingress_router::{
    validate_ingress, validate_ingress_class, Backend, Controller, Dispatcher, Endpoints,
    ImplementationSpecific, LoadLimits, Manifests, Object, ObjectRef, RouteTable, ServiceBackend,
    ServicePort, Snapshot, TableOptions,
};
use libfuzzer_sys::fuzz_target;

/// A few requests that hosts and paths seen in manifests often match.
const REQUESTS: &[(Option<&str>, &str)] = &[
    (None, "/"),
    (None, "/x/y/"),
    (Some("a.example.com"), "/"),
    (Some("a.example.com"), "/api/v1"),
    (Some("example.com"), "/a"),
    (Some("foo.bar.com"), "/foo"),
];

fn controller_default() -> Backend {
    Backend::Service(ServiceBackend {
        namespace: "ctl".to_owned(),
        name: "default".to_owned(),
        port: ServicePort::Number(80),
    })
}

fn check(manifests: &Manifests) {
    let ingresses = &manifests.ingresses;
    for ingress in ingresses {
        for error in validate_ingress(ingress) {
            let _ = error.message();
        }
    }
    for class in &manifests.ingress_classes {
        for error in validate_ingress_class(class) {
            let _ = error.message();
        }
    }
    for error in &manifests.errors {
        let _ = error.to_string();
    }

    // The routes and the TLS names of the same Ingresses.
    let snapshot = Snapshot::build(ingresses, TableOptions::default());
    let table = snapshot.routes();
    let tls = snapshot.tls();
    let diagnostics = table.diagnostics();
    // Objects sharing a namespace and name count once; every one left is routed or quarantined.
    assert!(table.ingresses().len() + diagnostics.quarantined.len() <= ingresses.len());
    for quarantined in &diagnostics.quarantined {
        assert!(!quarantined.errors.is_empty(), "{quarantined:?}");
        assert!(!table.ingresses().contains(&quarantined.object));
    }
    for conflict in &diagnostics.conflicts {
        let _ = conflict.to_string();
    }
    // The routes' findings and the TLS names', gathered in one list.
    for conflict in &snapshot.diagnostics().tls_conflicts {
        let _ = conflict.to_string();
    }
    let endpoints = Endpoints::new(&manifests.services, &manifests.endpoint_slices);
    for &(host, path) in REQUESTS {
        if let Some(route) = table.route(host, path) {
            if let Backend::Service(service) = route.backend() {
                let _ = endpoints.resolve(service);
            }
        }
        let _ = tls.certificate_for(host);
        let _ = tls.same_certificate(host, host);
    }
    for host in tls.hosts() {
        let _ = tls.lookup(host.name);
    }

    // The other options compile the same Ingresses.
    let exact = RouteTable::build(
        ingresses,
        TableOptions {
            default_backend: Some(controller_default()),
            implementation_specific: ImplementationSpecific::Exact,
            ..TableOptions::default()
        },
    );
    assert_eq!(exact.ingresses(), table.ingresses());
    for &(host, path) in REQUESTS {
        assert!(exact.route(host, path).is_some(), "controller default");
    }

    // Adding everything to an empty table is building it.
    let changed: Vec<ObjectRef> = ingresses.iter().map(|i| i.object_ref()).collect();
    let empty = RouteTable::build(&[], TableOptions::default());
    let updated = empty.update(ingresses, &changed);
    assert_eq!(updated.diagnostics(), table.diagnostics());
    assert_eq!(updated.ingresses(), table.ingresses());
    assert_eq!(updated.rule_count(), table.rule_count());
    for &(host, path) in REQUESTS {
        assert_eq!(
            updated.route(host, path).map(|r| r.backend()),
            table.route(host, path).map(|r| r.backend())
        );
    }

    let dispatcher = Dispatcher::new([
        Controller::new("example.com/a").watch_without_class(true),
        Controller::new("example.com/b").class_annotation("b"),
    ])
    .expect("valid registrations");
    let dispatch = dispatcher.dispatch(&manifests.ingress_classes, ingresses);
    assert_eq!(dispatch.decisions.len(), ingresses.len());
    for controller in &dispatch.controllers {
        assert_eq!(
            controller.served.len() + controller.not_served.len(),
            ingresses.len()
        );
        for &(host, path) in REQUESTS {
            let _ = controller.table.route(host, path);
        }
    }
}

/// Limits that inputs of a few KiB reach.
fn small_limits() -> LoadLimits {
    let mut limits = LoadLimits::default();
    limits.max_input_bytes = 2048;
    limits.max_objects = 4;
    limits.max_document_bytes = 1024;
    limits.max_object_bytes = 512;
    limits.max_depth = 8;
    limits.max_rules = 3;
    limits.max_paths = 4;
    limits
}

/// `read_with` against `read`, under `limits`.
fn check_read_with(data: &[u8], limits: &LoadLimits) {
    let Ok(whole) = Manifests::read(data, limits) else {
        return;
    };
    let back = Manifests::read_with(data, limits, Some).expect("read succeeded");
    assert_eq!(format!("{back:?}"), format!("{whole:?}"));
    let mut taken = Vec::new();
    let rest = Manifests::read_with(data, limits, |object| match object {
        Object::Service(_) | Object::EndpointSlice(_) => {
            taken.push(object);
            None
        }
        other => Some(other),
    })
    .expect("read succeeded");
    assert!(rest.services.is_empty() && rest.endpoint_slices.is_empty());
    if rest.errors == whole.errors {
        let services = taken.iter().filter_map(|o| match o {
            Object::Service(s) => Some(s),
            _ => None,
        });
        assert!(services.eq(whole.services.iter()));
        let slices = taken.iter().filter_map(|o| match o {
            Object::EndpointSlice(s) => Some(s),
            _ => None,
        });
        assert!(slices.eq(whole.endpoint_slices.iter()));
        assert_eq!(rest.ingresses, whole.ingresses);
        assert_eq!(rest.secrets, whole.secrets);
    } else {
        // Only an error for what could not be taken back.
        assert!(rest.errors.len() > whole.errors.len(), "{:?}", rest.errors);
    }
}

fuzz_target!(|data: &[u8]| {
    check_read_with(data, &LoadLimits::default());
    check_read_with(data, &small_limits());
    let text = String::from_utf8_lossy(data);
    let parsed = Manifests::parse(&text);
    check(&parsed);

    let small = Manifests::parse_with(&text, &small_limits());
    check(&small);
    for ingress in &small.ingresses {
        assert!(
            parsed.ingresses.contains(ingress),
            "read only under the smaller limits: {ingress:?}"
        );
    }
    for class in &small.ingress_classes {
        assert!(parsed.ingress_classes.contains(class), "{class:?}");
    }

    // `parse` picks one reader by the first byte; run the other too, on everything: behind a
    // YAML comment line the text is YAML, wrapped in `[...]` it is JSON.
    let trimmed = text.trim_start();
    if trimmed.starts_with(['{', '[']) {
        check(&Manifests::parse(&format!("#\n{text}")));
    } else {
        check(&Manifests::parse(&format!("[{text}]")));
    }
});
