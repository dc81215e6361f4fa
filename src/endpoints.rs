//! From a Service backend to socket addresses: `Service` and `EndpointSlice` objects.
//!
//! See [Endpoints] for the model.

use std::collections::HashMap;
use std::fmt;
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

/// A namespace and a name in one shared allocation: the two strings joined, and where the first
/// ends. The reconciler's objects and the endpoints they compile to share it.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    joined: Arc<str>,
    namespace_len: u32,
}

impl Key {
    fn new(namespace: &str, name: &str) -> Key {
        let mut joined = String::with_capacity(namespace.len() + name.len());
        joined.push_str(namespace);
        joined.push_str(name);
        Key {
            joined: joined.into(),
            // Namespaces are at most 63 bytes; the loader's limits keep any string far below
            // 4 GiB.
            namespace_len: u32::try_from(namespace.len()).unwrap_or(u32::MAX),
        }
    }

    fn parts(&self) -> (&str, &str) {
        let at = (self.namespace_len as usize).min(self.joined.len());
        self.joined
            .split_at_checked(at)
            .unwrap_or((&self.joined, ""))
    }

    /// Whether this is `namespace/name`: on the request path, so bytes, no boundary checks.
    #[inline]
    fn is(&self, namespace: &str, name: &str) -> bool {
        let joined = self.joined.as_bytes();
        self.namespace_len as usize == namespace.len()
            && joined.len() == namespace.len() + name.len()
            && joined.starts_with(namespace.as_bytes())
            && joined.ends_with(name.as_bytes())
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (namespace, name) = self.parts();
        write!(f, "{namespace}/{name}")
    }
}

/// A port name, held inline when short (as port names almost always are: a word such as
/// `http`), else boxed: a Service or slice then needs no allocation per port name.
#[derive(Clone, PartialEq, Eq)]
enum PortName {
    Inline { len: u8, bytes: [u8; 22] },
    Boxed(Box<str>),
}

impl PortName {
    fn new(name: &str) -> PortName {
        let mut bytes = [0; 22];
        match bytes.get_mut(..name.len()) {
            Some(inline) => {
                inline.copy_from_slice(name.as_bytes());
                PortName::Inline {
                    len: name.len() as u8,
                    bytes,
                }
            }
            None => PortName::Boxed(name.into()),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // Whole characters of a `&str`: always valid.
            PortName::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            PortName::Boxed(name) => name,
        }
    }
}

impl fmt::Debug for PortName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// What resolving needs of a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ServiceFacts {
    /// The DNS name of an `ExternalName` Service.
    external_name: Option<Box<str>>,
    /// `spec.clusterIP`, when the Service has one.
    cluster_ip: Option<IpAddr>,
    /// The TCP ports: number and name (empty for an unnamed port).
    ports: Box<[(i32, PortName)]>,
}

impl ServiceFacts {
    fn of(service: &Service) -> ServiceFacts {
        let spec = &service.spec;
        let external_name = (spec.service_type.as_deref() == Some("ExternalName"))
            .then(|| spec.external_name.as_deref().unwrap_or_default().into());
        let cluster_ip = spec
            .cluster_ip
            .as_deref()
            .and_then(|ip| ip.parse::<IpAddr>().ok())
            .filter(|ip| !ip.is_unspecified());
        let ports = spec
            .ports
            .iter()
            .filter(|p| is_tcp(p.protocol.as_deref()))
            .map(|p| (p.port, PortName::new(p.name.as_deref().unwrap_or_default())))
            .collect();
        ServiceFacts {
            external_name,
            cluster_ip,
            ports,
        }
    }
}

/// What resolving needs of an EndpointSlice.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SliceFacts {
    /// The slice's namespace and name.
    key: Key,
    /// The TCP ports with a number: name (empty for an unnamed port) and number.
    ports: Box<[(PortName, u16)]>,
    /// The addresses of the ready endpoints, in order; none for an `FQDN` slice.
    ready: Box<[IpAddr]>,
}

impl SliceFacts {
    fn of(key: Key, slice: &EndpointSlice) -> SliceFacts {
        if !matches!(slice.address_type.as_str(), "IPv4" | "IPv6") {
            return SliceFacts {
                key,
                ports: Box::default(),
                ready: Box::default(),
            };
        }
        let ports = slice
            .ports
            .iter()
            .filter(|p| is_tcp(p.protocol.as_deref()))
            .filter_map(|p| {
                let number = p.port.and_then(|n| u16::try_from(n).ok())?;
                Some((PortName::new(p.name.as_deref().unwrap_or_default()), number))
            })
            .collect();
        let ready = slice
            .endpoints
            .iter()
            // Unset counts as ready, as the API says.
            .filter(|e| e.conditions.ready != Some(false))
            .flat_map(|e| &e.addresses)
            .filter_map(|a| a.parse::<IpAddr>().ok())
            .collect();
        SliceFacts { key, ports, ready }
    }
}

fn is_tcp(protocol: Option<&str>) -> bool {
    matches!(protocol, None | Some("TCP"))
}

/// A Service name, with the Service if held and the slices labelled with its name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Named {
    service: Option<ServiceFacts>,
    /// In name order: the order endpoints list their addresses in.
    slices: Vec<SliceFacts>,
}

impl Named {
    /// Neither a Service nor a slice: the name need not be kept.
    fn is_empty(&self) -> bool {
        self.service.is_none() && self.slices.is_empty()
    }
}

/// The Services and EndpointSlices that [`Endpoints`] are compiled from, kept as resolving
/// needs them: ports, ready addresses, and the names that tie them together, without the rest
/// of the objects.
///
/// A [`Reconciler`](crate::Reconciler) keeps its Services and EndpointSlices this way. Given as
/// [`Objects::ServicesAndSlices`](crate::Objects::ServicesAndSlices), it replaces them all at
/// once; filled an object at a time as a stream is read
/// ([`Manifests::read_with`](crate::Manifests::read_with)), it holds a fraction of what the
/// objects themselves would: about 450 bytes for a Service with one port and its slice of one
/// address, against 1 800 for the two objects.
///
/// A later object with the same namespace and name replaces an earlier one. EndpointSlices
/// without a `kubernetes.io/service-name` label are not kept: they give no Service addresses.
///
/// ```
/// use ingress_router::{Backend, EndpointObjects, Manifests};
///
/// let read = Manifests::parse(r#"
/// kind: Service
/// apiVersion: v1
/// metadata: {name: web, namespace: shop}
/// spec: {ports: [{port: 80, targetPort: 8080}]}
/// ---
/// kind: EndpointSlice
/// apiVersion: discovery.k8s.io/v1
/// metadata: {name: web-1, namespace: shop, labels: {kubernetes.io/service-name: web}}
/// addressType: IPv4
/// ports: [{port: 8080}]
/// endpoints: [{addresses: [10.0.0.1]}]
/// "#);
/// let mut objects = EndpointObjects::new();
/// read.services.iter().for_each(|s| objects.insert_service(s));
/// read.endpoint_slices.iter().for_each(|s| objects.insert_endpoint_slice(s));
/// assert!(objects.has_endpoint_slices("shop", "web"));
///
/// let Backend::Service(web) = "shop/web:80".parse().unwrap() else { unreachable!() };
/// assert_eq!(objects.endpoints().resolve(&web).unwrap(), ["10.0.0.1:8080".parse().unwrap()]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointObjects {
    /// By namespace and Service name: the Service and its slices. Boxed, the table's free
    /// slots (up to half of them) cost a pointer each rather than a `Named`.
    named: HashMap<Key, Box<Named>, RandomState>,
    /// The Service name of each slice, by the slice's namespace and name.
    service_of: HashMap<Key, Box<str>, RandomState>,
    services: usize,
}

impl EndpointObjects {
    /// No Services and no slices.
    pub fn new() -> EndpointObjects {
        EndpointObjects::default()
    }

    fn named(&mut self, key: Key) -> &mut Named {
        self.named.entry(key).or_insert_with(|| {
            Box::new(Named {
                service: None,
                slices: Vec::new(),
            })
        })
    }

    /// Forgets `key` when it holds neither a Service nor a slice.
    fn tidy(&mut self, key: &Key) {
        if self.named.get(key).is_some_and(|n| n.is_empty()) {
            self.named.remove(key);
        }
    }

    /// Adds `service`, or replaces the Service of the same namespace and name.
    pub fn insert_service(&mut self, service: &Service) {
        let key = Key::new(service.metadata.namespace(), &service.metadata.name);
        let facts = ServiceFacts::of(service);
        if self.named(key).service.replace(facts).is_none() {
            self.services += 1;
        }
    }

    /// Removes the Service `namespace/name`; `false` when there was none.
    pub fn remove_service(&mut self, namespace: &str, name: &str) -> bool {
        let key = Key::new(namespace, name);
        let removed = match self.named.get_mut(&key) {
            Some(named) => named.service.take().is_some(),
            None => false,
        };
        if removed {
            self.services -= 1;
            self.tidy(&key);
        }
        removed
    }

    /// Adds `slice`, or replaces the EndpointSlice of the same namespace and name (which may
    /// have belonged to another Service).
    pub fn insert_endpoint_slice(&mut self, slice: &EndpointSlice) {
        let namespace = slice.metadata.namespace();
        let name = slice.metadata.name.as_str();
        self.remove_endpoint_slice(namespace, name);
        let Some(service) = slice.service_name() else {
            return;
        };
        let key = Key::new(namespace, name);
        self.service_of.insert(key.clone(), service.into());
        let facts = SliceFacts::of(key, slice);
        let held = &mut self.named(Key::new(namespace, service)).slices;
        let at = held.partition_point(|held| held.key.parts().1 < name);
        // Mostly one slice per Service: no room for more until there are more.
        held.reserve_exact(1);
        held.insert(at, facts);
    }

    /// Removes the EndpointSlice `namespace/name`; `false` when there was none (or it had no
    /// Service label).
    pub fn remove_endpoint_slice(&mut self, namespace: &str, name: &str) -> bool {
        let Some(service) = self.service_of.remove(&Key::new(namespace, name)) else {
            return false;
        };
        let key = Key::new(namespace, &service);
        if let Some(named) = self.named.get_mut(&key) {
            named.slices.retain(|held| !held.key.is(namespace, name));
            self.tidy(&key);
        }
        true
    }

    /// How many Services are held.
    pub fn service_count(&self) -> usize {
        self.services
    }

    /// How many EndpointSlices (with a Service label) are held.
    pub fn endpoint_slice_count(&self) -> usize {
        self.service_of.len()
    }

    /// Whether any EndpointSlice is labelled with the Service `namespace/service`.
    pub fn has_endpoint_slices(&self, namespace: &str, service: &str) -> bool {
        self.named
            .get(&Key::new(namespace, service))
            .is_some_and(|n| !n.slices.is_empty())
    }

    /// The Service the slice `namespace/name` belongs to, if held.
    pub(crate) fn service_of_slice(&self, namespace: &str, name: &str) -> Option<&str> {
        self.service_of
            .get(&Key::new(namespace, name))
            .map(|s| &**s)
    }

    /// Whether the Service `namespace/name` is held.
    pub(crate) fn has_service(&self, namespace: &str, name: &str) -> bool {
        self.named
            .get(&Key::new(namespace, name))
            .is_some_and(|n| n.service.is_some())
    }

    /// Takes the Services of `listed` in place of these; `true` when they differ.
    pub(crate) fn replace_services(&mut self, mut listed: EndpointObjects) -> bool {
        let changed = self.replace_part(&mut listed.named, |n: &mut Named| &mut n.service);
        self.services = listed.services;
        changed
    }

    /// Takes the EndpointSlices of `listed` in place of these; `true` when they differ.
    pub(crate) fn replace_slices(&mut self, mut listed: EndpointObjects) -> bool {
        let changed = listed.service_of != self.service_of;
        let slices_changed = self.replace_part(&mut listed.named, |n: &mut Named| &mut n.slices);
        self.service_of = listed.service_of;
        changed || slices_changed
    }

    /// Takes one part of every name's entry (its Service, or its slices) from `listed`,
    /// leaving the other part as it is; `true` when any differs.
    fn replace_part<T: PartialEq + Default>(
        &mut self,
        listed: &mut HashMap<Key, Box<Named>, RandomState>,
        part: fn(&mut Named) -> &mut T,
    ) -> bool {
        let mut changed = false;
        for (key, named) in &mut self.named {
            let new = listed
                .get_mut(key)
                .map(|n| std::mem::take(part(n)))
                .unwrap_or_default();
            changed |= *part(named) != new;
            *part(named) = new;
        }
        // The names that had nothing of this part.
        for (key, mut named) in listed.drain() {
            let new = std::mem::take(part(&mut named));
            if new != T::default() {
                changed = true;
                *part(self.named(key)) = new;
            }
        }
        self.named.retain(|_, n| !n.is_empty());
        changed
    }

    /// The ready addresses of every Service port.
    pub fn endpoints(&self) -> Endpoints {
        let mut endpoints = Endpoints {
            services: Sharded::new(RandomState::default(), self.services),
        };
        for (key, named) in &self.named {
            if let Some(resolved) = Resolved::new(key, named) {
                endpoints.put(key, Some(resolved));
            }
        }
        endpoints
    }

    /// The Service `namespace/name` as resolved; `None` when it is not held.
    fn resolve(&self, key: &Key) -> Option<Resolved> {
        Resolved::new(key, self.named.get(key)?)
    }
}

/// A Service port as resolved: its number, its name, and the ready addresses behind it.
type ResolvedPort = (i32, PortName, Box<[SocketAddr]>);

/// One Service as resolved.
#[derive(Debug)]
struct Resolved {
    /// Its namespace and name.
    key: Key,
    external_name: Option<Box<str>>,
    /// `spec.clusterIP`, when the Service has one.
    cluster_ip: Option<IpAddr>,
    /// The Service's ports: number, name, and the ready addresses behind it.
    ports: Box<[ResolvedPort]>,
}

impl Resolved {
    /// One Service's ports and the ready addresses behind each, from its slices: each slice's
    /// port with the Service port's name gives the port number on the endpoints. `None`
    /// without the Service.
    fn new(key: &Key, named: &Named) -> Option<Resolved> {
        let service = named.service.as_ref()?;
        let ports = service
            .ports
            .iter()
            .map(|(number, name)| {
                let mut addresses: Vec<SocketAddr> = Vec::new();
                for slice in &named.slices {
                    for (_, port) in slice.ports.iter().filter(|(n, _)| n == name) {
                        for ip in &slice.ready {
                            let socket = SocketAddr::new(*ip, *port);
                            if !addresses.contains(&socket) {
                                addresses.push(socket);
                            }
                        }
                    }
                }
                (*number, name.clone(), addresses.into_boxed_slice())
            })
            .collect();
        Some(Resolved {
            key: key.clone(),
            external_name: service.external_name.clone(),
            cluster_ip: service.cluster_ip,
            ports,
        })
    }

    /// The Service port an Ingress names, by number or by name.
    fn port(&self, port: &ServicePort) -> Option<&ResolvedPort> {
        self.ports.iter().find(|(number, name, _)| match port {
            ServicePort::Number(n) => i32::from(*n) == *number,
            ServicePort::Name(n) => n == name.as_str(),
        })
    }
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
    services: Sharded<Arc<Resolved>>,
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
        let mut objects = EndpointObjects::new();
        services.into_iter().for_each(|s| objects.insert_service(s));
        slices
            .into_iter()
            .for_each(|s| objects.insert_endpoint_slice(s));
        objects.endpoints()
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
        let key = Key::new(namespace, name);
        let named = Named {
            service: service.map(ServiceFacts::of),
            slices: slices
                .iter()
                .map(|s| SliceFacts::of(Key::new(namespace, &s.metadata.name), s))
                .collect(),
        };
        next.put(&key, Resolved::new(&key, &named));
        next
    }

    /// The next version after the Service `namespace/name` or its slices changed in `objects`.
    pub(crate) fn with_service_of(
        &self,
        objects: &EndpointObjects,
        namespace: &str,
        name: &str,
    ) -> Endpoints {
        let mut next = self.clone();
        let key = Key::new(namespace, name);
        next.put(&key, objects.resolve(&key));
        next
    }

    fn put(&mut self, key: &Key, resolved: Option<Resolved>) {
        let (namespace, name) = key.parts();
        let hash = self.services.hash((namespace, name));
        let eq = |e: &Arc<Resolved>| e.key.is(namespace, name);
        match resolved {
            None => {
                self.services.remove(hash, eq);
            }
            Some(resolved) => self.services.insert(hash, Arc::new(resolved), eq),
        }
    }

    fn get(&self, namespace: &str, name: &str) -> Option<&Resolved> {
        let hash = self.services.hash((namespace, name));
        self.services
            .find(hash, |e| e.key.is(namespace, name))
            .map(|e| &**e)
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
                external_name: external_name.to_string(),
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

impl fmt::Display for Endpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut entries: Vec<&Resolved> = self.services.values().map(|e| &**e).collect();
        entries.sort_by(|a, b| a.key.parts().cmp(&b.key.parts()));
        for entry in entries {
            let (namespace, name) = entry.key.parts();
            for (number, port_name, addresses) in &entry.ports {
                writeln!(
                    f,
                    "{namespace}/{name}:{number} ({}): {} ready",
                    port_name.as_str(),
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
