//! Endpoints against a naive reference: random sequences of Service and EndpointSlice events
//! (applied one by one, relisted by kind, or relisted together as `EndpointObjects`) given to
//! a `Reconciler`, whose published endpoints must resolve every backend exactly as the
//! resolution rules, applied directly to the last version of every object, do.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use ingress_router::model::{
    Endpoint, EndpointConditions, EndpointPort, EndpointSlice, Service, ServicePortSpec,
    SERVICE_NAME_LABEL,
};
use ingress_router::{
    EndpointObjects, Endpoints, Event, Object, ObjectKind, ObjectRef, Objects, Reconciler,
    ServiceBackend, ServicePort, TableOptions, Unresolved,
};
use proptest::prelude::*;

const NAMESPACES: [&str; 2] = ["a", "b"];
const SERVICES: [&str; 3] = ["web", "api", "db"];
const SLICES: [&str; 4] = ["x1", "x2", "x3", "x4"];
/// Port names: unnamed, short, and longer than any inline name.
const PORT_NAMES: [&str; 4] = ["", "http", "admin", "a-port-name-longer-than-22-bytes"];
const ADDRESSES: [&str; 5] = ["10.0.0.1", "10.0.0.2", "fd00::1", "not-an-ip", "10.0.0.1"];

/// Mostly the first of `n` choices, so that objects meet: a Service and slices with its name,
/// ports of the same name.
fn mostly_first(n: usize) -> impl Strategy<Value = usize> {
    prop_oneof![3 => Just(0), 2 => 0..n]
}

/// Mostly `false`.
fn rarely() -> impl Strategy<Value = bool> {
    prop::bool::weighted(0.15)
}

// Test inputs, made and dropped one at a time.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
enum Step {
    Apply(Object),
    Delete(ObjectRef),
    RelistServices,
    RelistSlices,
    RelistBoth,
}

fn service() -> impl Strategy<Value = Service> {
    let port = (
        mostly_first(4),
        prop_oneof![4 => Just(80), 2 => Just(81), 1 => Just(70_000)],
        rarely(),
    );
    (
        mostly_first(2),
        mostly_first(3),
        prop::collection::vec(port, 0..3),
        prop_oneof![6 => Just(None), 1 => Just(Some("ExternalName"))],
        prop_oneof![Just(None), Just(Some("10.96.0.1")), Just(Some("None"))],
    )
        .prop_map(|(ns, name, ports, kind, cluster_ip)| {
            let mut s = Service::default();
            s.metadata.namespace = Some(NAMESPACES[ns].to_owned());
            s.metadata.name = SERVICES[name].to_owned();
            s.spec.service_type = kind.map(str::to_owned);
            s.spec.external_name = kind.map(|_| "db.example.com".to_owned());
            s.spec.cluster_ip = cluster_ip.map(str::to_owned);
            for (port_name, number, udp) in ports {
                s.spec.ports.push(ServicePortSpec {
                    name: (port_name > 0).then(|| PORT_NAMES[port_name].to_owned()),
                    port: number,
                    protocol: udp.then(|| "UDP".to_owned()),
                    ..ServicePortSpec::default()
                });
            }
            s
        })
}

fn slice() -> impl Strategy<Value = EndpointSlice> {
    let port = (
        mostly_first(4),
        prop_oneof![4 => Just(Some(8080)), 2 => Just(Some(9090)), 1 => Just(None), 1 => Just(Some(-1))],
        rarely(),
    );
    let endpoint = (
        prop::collection::vec(0..5usize, 0..3),
        prop_oneof![2 => Just(None), 2 => Just(Some(true)), 1 => Just(Some(false))],
    );
    (
        mostly_first(2),
        0..4usize,
        prop_oneof![6 => mostly_first(3).prop_map(Some), 1 => Just(None)],
        prop_oneof![3 => Just("IPv4"), 2 => Just("IPv6"), 1 => Just("FQDN")],
        prop::collection::vec(port, 1..3),
        prop::collection::vec(endpoint, 0..3),
    )
        .prop_map(|(ns, name, service, address_type, ports, endpoints)| {
            let mut s = EndpointSlice::default();
            s.metadata.namespace = Some(NAMESPACES[ns].to_owned());
            s.metadata.name = SLICES[name].to_owned();
            if let Some(service) = service {
                s.metadata
                    .labels
                    .insert(SERVICE_NAME_LABEL.to_owned(), SERVICES[service].to_owned());
            }
            s.address_type = address_type.to_owned();
            for (port_name, number, udp) in ports {
                s.ports.push(EndpointPort {
                    name: (port_name > 0).then(|| PORT_NAMES[port_name].to_owned()),
                    port: number,
                    protocol: udp.then(|| "UDP".to_owned()),
                });
            }
            for (addresses, ready) in endpoints {
                s.endpoints.push(Endpoint {
                    addresses: addresses.iter().map(|&i| ADDRESSES[i].to_owned()).collect(),
                    conditions: EndpointConditions {
                        ready,
                        ..EndpointConditions::default()
                    },
                });
            }
            s
        })
}

fn step() -> impl Strategy<Value = Step> {
    let deleted = |kind: ObjectKind, names: &'static [&'static str]| {
        (0..2usize, 0..names.len()).prop_map(move |(ns, n)| {
            Step::Delete(ObjectRef::namespaced(kind, NAMESPACES[ns], names[n]))
        })
    };
    prop_oneof![
        4 => service().prop_map(|s| Step::Apply(Object::Service(s))),
        6 => slice().prop_map(|s| Step::Apply(Object::EndpointSlice(s))),
        1 => deleted(ObjectKind::Service, &SERVICES),
        2 => deleted(ObjectKind::EndpointSlice, &SLICES),
        1 => Just(Step::RelistServices),
        1 => Just(Step::RelistSlices),
        1 => Just(Step::RelistBoth),
    ]
}

/// The last version of every object, by kind, namespace and name.
#[derive(Default)]
struct Model {
    services: BTreeMap<ObjectRef, Service>,
    slices: BTreeMap<ObjectRef, EndpointSlice>,
}

impl Model {
    /// What the resolution rules give `backend`, straight from the objects.
    fn resolve(&self, backend: &ServiceBackend) -> Result<Vec<SocketAddr>, &'static str> {
        let key = ObjectRef::namespaced(ObjectKind::Service, &backend.namespace, &backend.name);
        let service = self.services.get(&key).ok_or("no service")?;
        if service.spec.service_type.as_deref() == Some("ExternalName") {
            return Err("external name");
        }
        let tcp = |p: &Option<String>| matches!(p.as_deref(), None | Some("TCP"));
        let port = service
            .spec
            .ports
            .iter()
            .filter(|p| tcp(&p.protocol))
            .find(|p| match &backend.port {
                ServicePort::Number(n) => p.port == i32::from(*n),
                ServicePort::Name(n) => p.name.as_deref().unwrap_or("") == n,
            })
            .ok_or("no port")?;
        let port_name = port.name.as_deref().unwrap_or("");
        let mut out = Vec::new();
        // Slices of the Service, in name order (the map's order, within one namespace).
        for slice in self.slices.values().filter(|s| {
            s.metadata.namespace() == backend.namespace
                && s.metadata.labels.get(SERVICE_NAME_LABEL) == Some(&backend.name)
        }) {
            if !matches!(slice.address_type.as_str(), "IPv4" | "IPv6") {
                continue;
            }
            for p in &slice.ports {
                let Some(number) = p.port.and_then(|n| u16::try_from(n).ok()) else {
                    continue;
                };
                if p.name.as_deref().unwrap_or("") != port_name || !tcp(&p.protocol) {
                    continue;
                }
                for e in slice
                    .endpoints
                    .iter()
                    .filter(|e| e.conditions.ready != Some(false))
                {
                    for a in &e.addresses {
                        let Ok(ip) = a.parse::<IpAddr>() else {
                            continue;
                        };
                        let socket = SocketAddr::new(ip, number);
                        if !out.contains(&socket) {
                            out.push(socket);
                        }
                    }
                }
            }
        }
        if out.is_empty() {
            return Err("no endpoints");
        }
        Ok(out)
    }

    fn cluster_ip(&self, backend: &ServiceBackend) -> Option<SocketAddr> {
        let key = ObjectRef::namespaced(ObjectKind::Service, &backend.namespace, &backend.name);
        let service = self.services.get(&key)?;
        let ip: IpAddr = service.spec.cluster_ip.as_deref()?.parse().ok()?;
        let port = service.spec.ports.iter().find(|p| {
            matches!(p.protocol.as_deref(), None | Some("TCP"))
                && match &backend.port {
                    ServicePort::Number(n) => p.port == i32::from(*n),
                    ServicePort::Name(n) => p.name.as_deref().unwrap_or("") == n,
                }
        })?;
        Some(SocketAddr::new(ip, u16::try_from(port.port).ok()?))
    }
}

fn kind_of(result: &Result<&[SocketAddr], Unresolved>) -> Result<Vec<SocketAddr>, &'static str> {
    match result {
        Ok(addresses) => Ok(addresses.to_vec()),
        Err(Unresolved::NoService { .. }) => Err("no service"),
        Err(Unresolved::ExternalName { .. }) => Err("external name"),
        Err(Unresolved::NoPort { .. }) => Err("no port"),
        Err(Unresolved::NoEndpoints { .. }) => Err("no endpoints"),
        Err(_) => Err("other"),
    }
}

fn backends() -> Vec<ServiceBackend> {
    let mut all = Vec::new();
    for ns in NAMESPACES {
        for name in SERVICES {
            let ports = [80, 81, 4464].map(ServicePort::Number).into_iter().chain(
                PORT_NAMES
                    .iter()
                    .map(|n| ServicePort::Name((*n).to_owned())),
            );
            for port in ports {
                all.push(ServiceBackend {
                    namespace: ns.to_owned(),
                    name: name.to_owned(),
                    port,
                });
            }
        }
    }
    all
}

fn check(endpoints: &Endpoints, model: &Model, what: &str) -> Result<(), TestCaseError> {
    for backend in backends() {
        prop_assert_eq!(
            kind_of(&endpoints.resolve(&backend)),
            model.resolve(&backend),
            "{}: {:?}",
            what,
            backend
        );
        prop_assert_eq!(
            endpoints.cluster_ip(&backend),
            model.cluster_ip(&backend),
            "{}",
            what
        );
    }
    prop_assert_eq!(endpoints.service_count(), model.services.len(), "{}", what);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 400,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn endpoints_resolve_as_the_rules_on_the_last_objects(steps in prop::collection::vec(step(), 1..32)) {
        let mut reconciler = Reconciler::every_ingress(TableOptions::default());
        let mut model = Model::default();
        for (i, step) in steps.into_iter().enumerate() {
            let event = match step {
                Step::Apply(object) => {
                    match &object {
                        Object::Service(s) => {
                            model.services.insert(s.object_ref(), s.clone());
                        }
                        Object::EndpointSlice(s) => {
                            model.slices.insert(s.object_ref(), s.clone());
                        }
                        _ => unreachable!(),
                    }
                    Event::Apply(object)
                }
                Step::Delete(object) => {
                    model.services.remove(&object);
                    model.slices.remove(&object);
                    Event::Delete(object)
                }
                Step::RelistServices => {
                    Event::ReplaceAll(Objects::Services(model.services.values().cloned().collect()))
                }
                Step::RelistSlices => Event::ReplaceAll(Objects::EndpointSlices(
                    model.slices.values().cloned().collect(),
                )),
                Step::RelistBoth => {
                    // Listed in reverse: the order of a listing does not matter.
                    let mut listed = EndpointObjects::new();
                    model.services.values().rev().for_each(|s| listed.insert_service(s));
                    model.slices.values().rev().for_each(|s| listed.insert_endpoint_slice(s));
                    Event::ReplaceAll(Objects::ServicesAndSlices(listed))
                }
            };
            reconciler.apply(event);
            let (_, snapshot) = reconciler.snapshots().next().unwrap();
            check(snapshot.load().endpoints(), &model, &format!("step {i}, incremental"))?;
            let fresh = Endpoints::new(model.services.values(), model.slices.values());
            check(&fresh, &model, &format!("step {i}, from scratch"))?;
        }
    }
}
