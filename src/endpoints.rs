//! From a Service backend to socket addresses: `Service` and `EndpointSlice` objects.
//!
//! See [Endpoints] for the model.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use foldhash::fast::RandomState;

use crate::backend::{ServiceBackend, ServicePort};
use crate::hosts::Sharded;
use crate::model::{EndpointSlice, Service};

/// Why a Service backend has no address to send to (a data plane answers `503`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Unresolved {
    /// No Service of that namespace and name.
    #[error("service {namespace}/{name} not found")]
    NoService {
        /// The namespace.
        namespace: String,
        /// The Service's name.
        name: String,
    },
    /// The Service has no such port.
    #[error("service {namespace}/{name} has no port {port}")]
    NoPort {
        /// The namespace.
        namespace: String,
        /// The Service's name.
        name: String,
        /// The port as the Ingress names it.
        port: String,
    },
    /// An `ExternalName` Service, which has no endpoints.
    #[error("service {namespace}/{name} is an ExternalName service ({external_name}), which is not proxied")]
    ExternalName {
        /// The namespace.
        namespace: String,
        /// The Service's name.
        name: String,
        /// The DNS name it stands for.
        external_name: String,
    },
    /// The Service port has no ready endpoint.
    #[error("service {namespace}/{name} port {port} has no ready endpoint")]
    NoEndpoints {
        /// The namespace.
        namespace: String,
        /// The Service's name.
        name: String,
        /// The port as the Ingress names it.
        port: String,
    },
}

/// One Service as resolved.
#[derive(Debug, Default)]
struct Resolved {
    external_name: Option<String>,
    /// `spec.clusterIP`, when the Service has one.
    cluster_ip: Option<IpAddr>,
    /// The Service's ports: number, name, and the ready addresses behind it.
    ports: Vec<(i32, String, Vec<SocketAddr>)>,
}

impl Resolved {
    /// The Service port an Ingress names, by number or by name.
    fn port(&self, port: &ServicePort) -> Option<&(i32, String, Vec<SocketAddr>)> {
        self.ports.iter().find(|(number, name, _)| match port {
            ServicePort::Number(n) => i32::from(*n) == *number,
            ServicePort::Name(n) => n == name,
        })
    }
}

/// A Service under its namespace and name.
#[derive(Debug, Clone)]
struct Entry {
    namespace: Arc<str>,
    name: Arc<str>,
    resolved: Arc<Resolved>,
}

/// From a Service backend to socket addresses: `Service` and `EndpointSlice` objects.
///
/// A route names a Service port as the Ingress wrote it (a number or a port name). A data plane
/// resolves it the way ingress controllers do:
///
/// 1. the Service `namespace/name` must exist; its `spec.ports` entry whose `port` equals the
///    number, or whose `name` equals the name, is the Service port;
/// 2. the `EndpointSlice`s (`discovery.k8s.io/v1`) labelled `kubernetes.io/service-name: name`
///    in the same namespace list the endpoints; each slice's port with the Service port's name
///    (the empty name for an unnamed port) gives the port number on the endpoints;
/// 3. every address of every endpoint that is ready (`conditions.ready` unset counts as ready,
///    as the API says) is one destination. Slices of `addressType: FQDN` are not used.
///
/// ```
/// use ingress_router::{Backend, Endpoints, Manifests};
///
/// let objects = Manifests::parse(r#"
/// apiVersion: v1
/// kind: Service
/// metadata: {name: web, namespace: shop}
/// spec:
///   ports: [{name: http, port: 80, targetPort: 8080}]
/// ---
/// apiVersion: discovery.k8s.io/v1
/// kind: EndpointSlice
/// metadata: {name: web-x1, namespace: shop, labels: {kubernetes.io/service-name: web}}
/// addressType: IPv4
/// ports: [{name: http, port: 8080}]
/// endpoints:
/// - addresses: [10.0.0.1]
/// - addresses: [10.0.0.2]
///   conditions: {ready: false}
/// "#);
/// let endpoints = Endpoints::new(&objects.services, &objects.endpoint_slices);
///
/// let backend: Backend = "shop/web:http".parse().unwrap();
/// let Backend::Service(service) = &backend else { unreachable!() };
/// let addresses = endpoints.resolve(service).unwrap();
/// assert_eq!(addresses, ["10.0.0.1:8080".parse().unwrap()]);
/// ```
///
/// The ready addresses of every Service port, compiled from Services and EndpointSlices.
///
/// Cut into shards that versions share: [`Endpoints::with_service`] makes the next version
/// after one Service or its slices changed, copying only the shard that Service is in, so a
/// change is as cheap with ten thousand Services as with ten.
#[derive(Debug, Clone)]
pub struct Endpoints {
    services: Sharded<Entry>,
}

impl Default for Endpoints {
    fn default() -> Self {
        Endpoints {
            services: Sharded::new(RandomState::default(), 0),
        }
    }
}

impl Endpoints {
    /// Compiles `services` and `slices`. A later object with the same namespace and name
    /// replaces an earlier one.
    pub fn new<'a>(
        services: impl IntoIterator<Item = &'a Service>,
        slices: impl IntoIterator<Item = &'a EndpointSlice>,
    ) -> Endpoints {
        let mut slices_by_name: BTreeMap<(&str, &str), &EndpointSlice> = BTreeMap::new();
        for slice in slices {
            slices_by_name.insert((slice.metadata.namespace(), &slice.metadata.name), slice);
        }
        // Each Service's slices, by namespace and service name.
        let mut of_service: HashMap<(&str, &str), Vec<&EndpointSlice>> = HashMap::new();
        for slice in slices_by_name.values() {
            if let Some(service) = slice.service_name() {
                of_service
                    .entry((slice.metadata.namespace(), service))
                    .or_default()
                    .push(slice);
            }
        }
        let mut by_name: BTreeMap<(&str, &str), &Service> = BTreeMap::new();
        for service in services {
            by_name.insert(
                (service.metadata.namespace(), &service.metadata.name),
                service,
            );
        }
        let mut endpoints = Endpoints {
            services: Sharded::new(RandomState::default(), by_name.len()),
        };
        for ((namespace, name), service) in by_name {
            let slices = of_service
                .get(&(namespace, name))
                .map_or(&[][..], Vec::as_slice);
            endpoints.put(namespace, name, Some(resolve_service(service, slices)));
        }
        endpoints
    }

    /// The next version after the Service `namespace/name` or its slices changed: `service` is
    /// its current object (`None`: deleted), `slices` every EndpointSlice labelled with its
    /// name in its namespace. Every other Service is shared with `self`.
    pub fn with_service(
        &self,
        namespace: &str,
        name: &str,
        service: Option<&Service>,
        slices: &[&EndpointSlice],
    ) -> Endpoints {
        let mut next = self.clone();
        next.put(namespace, name, service.map(|s| resolve_service(s, slices)));
        next
    }

    fn put(&mut self, namespace: &str, name: &str, resolved: Option<Resolved>) {
        let hash = self.services.hash((namespace, name));
        let eq = |e: &Entry| &*e.namespace == namespace && &*e.name == name;
        match resolved {
            None => {
                self.services.remove(hash, eq);
            }
            Some(resolved) => {
                let hasher = self.services.hasher.clone();
                let entry = Entry {
                    namespace: namespace.into(),
                    name: name.into(),
                    resolved: Arc::new(resolved),
                };
                self.services.insert(hash, entry, eq, |e: &Entry| {
                    hasher.hash_one((&*e.namespace, &*e.name))
                });
            }
        }
    }

    fn get(&self, namespace: &str, name: &str) -> Option<&Resolved> {
        let hash = self.services.hash((namespace, name));
        self.services
            .find(hash, |e| &*e.namespace == namespace && &*e.name == name)
            .map(|e| &*e.resolved)
    }

    /// The ready addresses of `backend`, in the order the slices list them. Allocates only
    /// for an error.
    pub fn resolve(&self, backend: &ServiceBackend) -> Result<&[SocketAddr], Unresolved> {
        let namespace = || backend.namespace.clone();
        let name = || backend.name.clone();
        let Some(service) = self.get(&backend.namespace, &backend.name) else {
            return Err(Unresolved::NoService {
                namespace: namespace(),
                name: name(),
            });
        };
        if let Some(external_name) = &service.external_name {
            return Err(Unresolved::ExternalName {
                namespace: namespace(),
                name: name(),
                external_name: external_name.clone(),
            });
        }
        match service.port(&backend.port) {
            None => Err(Unresolved::NoPort {
                namespace: namespace(),
                name: name(),
                port: backend.port.to_string(),
            }),
            Some((_, _, addresses)) if addresses.is_empty() => Err(Unresolved::NoEndpoints {
                namespace: namespace(),
                name: name(),
                port: backend.port.to_string(),
            }),
            Some((_, _, addresses)) => Ok(addresses),
        }
    }

    /// `backend`'s Service address: its ClusterIP with the Service port, which kube-proxy
    /// balances over the endpoints (ingress-nginx's `service-upstream`). `None` for a Service
    /// that is unknown, headless or without that port.
    pub fn cluster_ip(&self, backend: &ServiceBackend) -> Option<SocketAddr> {
        let service = self.get(&backend.namespace, &backend.name)?;
        let ip = service.cluster_ip?;
        let (number, _, _) = service.port(&backend.port)?;
        Some(SocketAddr::new(ip, u16::try_from(*number).ok()?))
    }

    /// How many Services are known.
    pub fn service_count(&self) -> usize {
        self.services.len()
    }
}

/// One Service's ports and the ready addresses behind each, from the slices labelled with its
/// name (in its namespace).
fn resolve_service(service: &Service, slices: &[&EndpointSlice]) -> Resolved {
    // The ready addresses by slice port name.
    let mut ready: HashMap<&str, Vec<SocketAddr>> = HashMap::new();
    for slice in slices {
        if !matches!(slice.address_type.as_str(), "IPv4" | "IPv6") {
            continue;
        }
        for port in &slice.ports {
            let Some(number) = port.port.and_then(|p| u16::try_from(p).ok()) else {
                continue;
            };
            if !matches!(port.protocol.as_deref(), None | Some("TCP")) {
                continue;
            }
            let addresses = ready.entry(port.name.as_deref().unwrap_or("")).or_default();
            for endpoint in &slice.endpoints {
                if endpoint.conditions.ready == Some(false) {
                    continue;
                }
                for address in &endpoint.addresses {
                    if let Ok(ip) = address.parse::<IpAddr>() {
                        let socket = SocketAddr::new(ip, number);
                        if !addresses.contains(&socket) {
                            addresses.push(socket);
                        }
                    }
                }
            }
        }
    }
    let external_name = (service.spec.service_type.as_deref() == Some("ExternalName"))
        .then(|| service.spec.external_name.clone().unwrap_or_default());
    let ports = service
        .spec
        .ports
        .iter()
        .filter(|p| matches!(p.protocol.as_deref(), None | Some("TCP")))
        .map(|p| {
            let port_name = p.name.clone().unwrap_or_default();
            let addresses = ready.get(port_name.as_str()).cloned().unwrap_or_default();
            (p.port, port_name, addresses)
        })
        .collect();
    let cluster_ip = service
        .spec
        .cluster_ip
        .as_deref()
        .and_then(|ip| ip.parse::<IpAddr>().ok())
        .filter(|ip| !ip.is_unspecified());
    Resolved {
        external_name,
        cluster_ip,
        ports,
    }
}

impl fmt::Display for Endpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut entries: Vec<&Entry> = self.services.values().collect();
        entries.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        for entry in entries {
            for (number, port_name, addresses) in &entry.resolved.ports {
                writeln!(
                    f,
                    "{}/{}:{number} ({port_name}): {} ready",
                    entry.namespace,
                    entry.name,
                    addresses.len()
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(all(test, feature = "yaml"))]
mod tests {
    use super::*;
    use crate::load::Manifests;

    fn endpoints(yaml: &str) -> Endpoints {
        let m = Manifests::parse(yaml);
        assert!(m.errors.is_empty(), "{:?}", m.errors);
        Endpoints::new(&m.services, &m.endpoint_slices)
    }

    fn backend(s: &str) -> ServiceBackend {
        match s.parse().unwrap() {
            crate::Backend::Service(s) => s,
            other => panic!("{other:?}"),
        }
    }

    const TWO_PORTS: &str = r#"
kind: Service
apiVersion: v1
metadata: {name: web, namespace: ns}
spec:
  ports:
  - {name: http, port: 80, targetPort: web}
  - {name: admin, port: 9000, targetPort: 9001}
---
kind: EndpointSlice
apiVersion: discovery.k8s.io/v1
metadata: {name: web-a, namespace: ns, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}, {name: admin, port: 9001}]
endpoints:
- addresses: [10.0.0.1]
  conditions: {ready: true}
- addresses: [10.0.0.2]
---
kind: EndpointSlice
apiVersion: discovery.k8s.io/v1
metadata: {name: web-b, namespace: ns, labels: {kubernetes.io/service-name: web}}
addressType: IPv6
ports: [{name: http, port: 8080}]
endpoints:
- addresses: ["fd00::3"]
- addresses: ["fd00::4"]
  conditions: {ready: false}
"#;

    #[test]
    fn a_port_number_resolves_through_the_service_port_name_to_the_slice_port() {
        let e = endpoints(TWO_PORTS);
        let got = e.resolve(&backend("ns/web:80")).unwrap();
        let want: Vec<SocketAddr> = ["10.0.0.1:8080", "10.0.0.2:8080", "[fd00::3]:8080"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn the_cluster_ip_takes_the_service_port() {
        let e = endpoints(
            r#"
kind: Service
metadata: {name: web, namespace: shop}
spec: {clusterIP: 10.96.0.7, ports: [{name: http, port: 80, targetPort: 8080}]}
---
kind: Service
metadata: {name: headless, namespace: shop}
spec: {clusterIP: None, ports: [{name: http, port: 80}]}
"#,
        );
        let ip = "10.96.0.7:80".parse().ok();
        assert_eq!(e.cluster_ip(&backend("shop/web:80")), ip);
        assert_eq!(e.cluster_ip(&backend("shop/web:http")), ip);
        assert_eq!(e.cluster_ip(&backend("shop/web:81")), None);
        assert_eq!(e.cluster_ip(&backend("shop/headless:80")), None);
        assert_eq!(e.cluster_ip(&backend("shop/missing:80")), None);
    }

    #[test]
    fn a_port_name_resolves_like_its_number() {
        let e = endpoints(TWO_PORTS);
        assert_eq!(
            e.resolve(&backend("ns/web:http")).unwrap(),
            e.resolve(&backend("ns/web:80")).unwrap()
        );
        let admin = e.resolve(&backend("ns/web:admin")).unwrap();
        assert_eq!(
            admin,
            [
                "10.0.0.1:9001".parse().unwrap(),
                "10.0.0.2:9001".parse().unwrap()
            ]
        );
    }

    #[test]
    fn endpoints_that_are_not_ready_are_left_out() {
        let e = endpoints(TWO_PORTS);
        let all = e.resolve(&backend("ns/web:80")).unwrap();
        assert!(!all.contains(&"[fd00::4]:8080".parse().unwrap()));
    }

    #[test]
    fn unknown_service_port_and_namespace_are_reported() {
        let e = endpoints(TWO_PORTS);
        assert!(matches!(
            e.resolve(&backend("ns/api:80")),
            Err(Unresolved::NoService { .. })
        ));
        assert!(matches!(
            e.resolve(&backend("other/web:80")),
            Err(Unresolved::NoService { .. })
        ));
        let err = e.resolve(&backend("ns/web:8080")).unwrap_err();
        assert_eq!(err.to_string(), "service ns/web has no port 8080");
        assert!(matches!(
            e.resolve(&backend("ns/web:grpc")),
            Err(Unresolved::NoPort { .. })
        ));
    }

    #[test]
    fn a_service_without_ready_endpoints_is_reported() {
        let e = endpoints(
            r#"
kind: Service
metadata: {name: idle}
spec: {ports: [{port: 80}]}
---
kind: EndpointSlice
apiVersion: discovery.k8s.io/v1
metadata: {name: idle-1, labels: {kubernetes.io/service-name: idle}}
addressType: IPv4
ports: [{port: 8080}]
endpoints: [{addresses: [10.0.0.9], conditions: {ready: false}}]
"#,
        );
        let err = e.resolve(&backend("default/idle:80")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "service default/idle port 80 has no ready endpoint"
        );
    }

    #[test]
    fn an_unnamed_service_port_matches_the_unnamed_slice_port() {
        let e = endpoints(
            r#"
kind: Service
metadata: {name: one}
spec: {ports: [{port: 80, targetPort: 8080}]}
---
kind: EndpointSlice
metadata: {name: one-1, labels: {kubernetes.io/service-name: one}}
addressType: IPv4
ports: [{name: "", port: 8080}]
endpoints: [{addresses: [10.1.0.1]}]
"#,
        );
        assert_eq!(
            e.resolve(&backend("default/one:80")).unwrap(),
            ["10.1.0.1:8080".parse().unwrap()]
        );
    }

    #[test]
    fn external_name_services_and_fqdn_slices_give_no_address() {
        let e = endpoints(
            r#"
kind: Service
metadata: {name: ext}
spec: {type: ExternalName, externalName: example.org, ports: [{port: 80}]}
---
kind: Service
metadata: {name: dns}
spec: {ports: [{port: 80}]}
---
kind: EndpointSlice
metadata: {name: dns-1, labels: {kubernetes.io/service-name: dns}}
addressType: FQDN
ports: [{port: 80}]
endpoints: [{addresses: [backend.example.org]}]
"#,
        );
        assert!(matches!(
            e.resolve(&backend("default/ext:80")),
            Err(Unresolved::ExternalName { .. })
        ));
        assert!(matches!(
            e.resolve(&backend("default/dns:80")),
            Err(Unresolved::NoEndpoints { .. })
        ));
    }

    #[test]
    fn slices_of_other_services_and_namespaces_do_not_count() {
        let e = endpoints(
            r#"
kind: Service
metadata: {name: web, namespace: a}
spec: {ports: [{port: 80}]}
---
kind: EndpointSlice
metadata: {name: web-1, namespace: b, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{port: 80}]
endpoints: [{addresses: [10.2.0.1]}]
---
kind: EndpointSlice
metadata: {name: api-1, namespace: a, labels: {kubernetes.io/service-name: api}}
addressType: IPv4
ports: [{port: 80}]
endpoints: [{addresses: [10.2.0.2]}]
"#,
        );
        assert!(matches!(
            e.resolve(&backend("a/web:80")),
            Err(Unresolved::NoEndpoints { .. })
        ));
    }
}
