//! Any text given as manifests is read, validated, dispatched and compiled without panicking,
//! and every Ingress read is either routed or quarantined.
#![no_main]

use ingress_router::dispatch::{Controller, Dispatcher};
use ingress_router::{Manifests, RouteTable, TableOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let manifests = Manifests::parse(&text);
    let table = RouteTable::build(&manifests.ingresses, TableOptions::default());
    let quarantined = table.diagnostics().quarantined.len();
    assert!(table.ingresses().len() + quarantined <= manifests.ingresses.len());
    let _ = table.route(Some("a.example.com"), "/");
    let _ = table.route(None, "/x/y/");

    let dispatcher = Dispatcher::new([
        Controller::new("example.com/a").watch_without_class(true),
        Controller::new("example.com/b").class_annotation("b"),
    ])
    .expect("valid registrations");
    let dispatch = dispatcher.dispatch(&manifests.ingress_classes, &manifests.ingresses);
    assert_eq!(dispatch.decisions.len(), manifests.ingresses.len());
    for controller in &dispatch.controllers {
        assert_eq!(
            controller.served.len() + controller.not_served.len(),
            manifests.ingresses.len()
        );
    }
});
