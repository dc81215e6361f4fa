//! Where a matched request goes: a Service port or another resource.
//!
//! See [Backend] for the model.

use std::fmt;
use std::str::FromStr;

use crate::model::{IngressBackend, DEFAULT_NAMESPACE};

/// Where a matched request goes: a Service port or another resource.
///
/// A [`Backend`] is resolved in its Ingress's namespace and keeps the Service port as written
/// (number or name): mapping a port name to a number needs the Service object, which is the data
/// plane's job.
///
/// The destination of a route.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Backend {
    /// A port of a Service.
    Service(ServiceBackend),
    /// Some other object, e.g. a storage bucket served by the controller itself.
    Resource(ResourceBackend),
}

/// A Service backend, with its namespace resolved.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServiceBackend {
    /// The Service's namespace (the Ingress's namespace).
    pub namespace: String,
    /// The Service's name.
    pub name: String,
    /// The Service port, as the Ingress names it.
    pub port: ServicePort,
}

/// A Service port, by number or by the port's name in the Service.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ServicePort {
    /// A port number, 1–65535.
    Number(u16),
    /// A named port (`http`), resolved against the Service by the data plane.
    Name(String),
}

/// A resource backend, with its namespace resolved.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceBackend {
    /// The resource's namespace (the Ingress's namespace).
    pub namespace: String,
    /// The API group; `None` for the core group.
    pub api_group: Option<String>,
    /// The resource's kind.
    pub kind: String,
    /// The resource's name.
    pub name: String,
}

impl Backend {
    /// The backend an Ingress's `backend` field describes, in `namespace`.
    ///
    /// `None` when the field does not name exactly one destination with a usable port, which
    /// [`validate_ingress`](crate::validate_ingress) reports as an error; a validated object always converts.
    pub fn from_ingress_backend(namespace: &str, backend: &IngressBackend) -> Option<Backend> {
        match (&backend.service, &backend.resource) {
            (Some(service), None) => {
                let port = match (&service.port.name, service.port.number) {
                    (Some(name), None | Some(0)) if !name.is_empty() => {
                        ServicePort::Name(name.clone())
                    }
                    (None, Some(number)) => ServicePort::Number(u16::try_from(number).ok()?),
                    (Some(name), Some(number)) if name.is_empty() => {
                        ServicePort::Number(u16::try_from(number).ok()?)
                    }
                    _ => return None,
                };
                if service.name.is_empty() || port == ServicePort::Number(0) {
                    return None;
                }
                Some(Backend::Service(ServiceBackend {
                    namespace: namespace.to_owned(),
                    name: service.name.clone(),
                    port,
                }))
            }
            (None, Some(resource)) => Some(Backend::Resource(ResourceBackend {
                namespace: namespace.to_owned(),
                api_group: resource.api_group.clone().filter(|g| !g.is_empty()),
                kind: resource.kind.clone(),
                name: resource.name.clone(),
            })),
            _ => None,
        }
    }

    /// The Service backend, if this is one.
    pub fn as_service(&self) -> Option<&ServiceBackend> {
        match self {
            Backend::Service(s) => Some(s),
            Backend::Resource(_) => None,
        }
    }

    /// The resource backend, if this is one.
    pub fn as_resource(&self) -> Option<&ResourceBackend> {
        match self {
            Backend::Resource(r) => Some(r),
            Backend::Service(_) => None,
        }
    }
}

impl fmt::Display for ServicePort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServicePort::Number(n) => write!(f, "{n}"),
            ServicePort::Name(name) => f.write_str(name),
        }
    }
}

/// `service namespace/name:port` or `resource Kind.group namespace/name`.
impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backend::Service(s) => write!(f, "service {}/{}:{}", s.namespace, s.name, s.port),
            Backend::Resource(r) => {
                write!(f, "resource {}", r.kind)?;
                if let Some(group) = &r.api_group {
                    write!(f, ".{group}")?;
                }
                write!(f, " {}/{}", r.namespace, r.name)
            }
        }
    }
}

/// The error of parsing a [`Backend`] from text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid backend {text:?}: {reason} (expected NAMESPACE/NAME:PORT or NAME:PORT)")]
pub struct ParseBackendError {
    text: String,
    reason: &'static str,
}

/// Parses a Service backend written `namespace/name:port` or `name:port` (namespace `default`),
/// where the port is a number or a port name, as command-line flags take it.
///
/// ```
/// use ingress_router::{Backend, ServicePort};
///
/// let backend: Backend = "ingress/fallback:http".parse().unwrap();
/// let service = backend.as_service().unwrap();
/// assert_eq!((service.namespace.as_str(), service.name.as_str()), ("ingress", "fallback"));
/// assert_eq!(service.port, ServicePort::Name("http".into()));
/// ```
impl FromStr for Backend {
    type Err = ParseBackendError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = |reason| ParseBackendError {
            text: text.to_owned(),
            reason,
        };
        let (target, port) = text.rsplit_once(':').ok_or_else(|| err("missing port"))?;
        let (namespace, name) = match target.split_once('/') {
            Some((ns, name)) => (ns, name),
            None => (DEFAULT_NAMESPACE, target),
        };
        if namespace.is_empty() || name.is_empty() || name.contains('/') {
            return Err(err("missing namespace or name"));
        }
        let port = if port.bytes().all(|b| b.is_ascii_digit()) {
            match port.parse::<u16>() {
                Ok(n) if n > 0 => ServicePort::Number(n),
                _ => return Err(err("port number out of range 1-65535")),
            }
        } else if crate::validate::is_valid_port_name(port).is_empty() {
            ServicePort::Name(port.to_owned())
        } else {
            return Err(err("invalid port name"));
        };
        Ok(Backend::Service(ServiceBackend {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            port,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{IngressServiceBackend, ServiceBackendPort, TypedLocalObjectReference};

    #[test]
    fn service_backend_keeps_port_as_written() {
        let by_name = IngressBackend {
            service: Some(IngressServiceBackend {
                name: "web".into(),
                port: ServiceBackendPort {
                    name: Some("http".into()),
                    number: None,
                },
            }),
            resource: None,
        };
        let backend = Backend::from_ingress_backend("shop", &by_name).unwrap();
        assert_eq!(backend.to_string(), "service shop/web:http");

        let mut by_number = by_name.clone();
        by_number.service.as_mut().unwrap().port = ServiceBackendPort {
            name: None,
            number: Some(8080),
        };
        let backend = Backend::from_ingress_backend("shop", &by_number).unwrap();
        assert_eq!(
            backend.as_service().unwrap().port,
            ServicePort::Number(8080)
        );
    }

    #[test]
    fn malformed_backends_do_not_convert() {
        let both = IngressBackend {
            service: Some(IngressServiceBackend::default()),
            resource: Some(Box::default()),
        };
        assert_eq!(Backend::from_ingress_backend("ns", &both), None);
        assert_eq!(
            Backend::from_ingress_backend("ns", &IngressBackend::default()),
            None
        );
        let out_of_range = IngressBackend {
            service: Some(IngressServiceBackend {
                name: "web".into(),
                port: ServiceBackendPort {
                    name: None,
                    number: Some(70_000),
                },
            }),
            resource: None,
        };
        assert_eq!(Backend::from_ingress_backend("ns", &out_of_range), None);
    }

    #[test]
    fn resource_backend_resolves_namespace() {
        let b = IngressBackend {
            service: None,
            resource: Some(Box::new(TypedLocalObjectReference {
                api_group: Some("k8s.example.com".into()),
                kind: "StorageBucket".into(),
                name: "static-assets".into(),
            })),
        };
        let backend = Backend::from_ingress_backend("web", &b).unwrap();
        assert_eq!(
            backend.to_string(),
            "resource StorageBucket.k8s.example.com web/static-assets"
        );
    }

    #[test]
    fn parses_command_line_form() {
        let b: Backend = "web:8080".parse().unwrap();
        assert_eq!(b.to_string(), "service default/web:8080");
        for bad in [
            "web",
            "ns/web:0",
            "ns/web:70000",
            "/web:80",
            "ns/:80",
            "a/b/c:80",
            "w:HTTP",
        ] {
            assert!(bad.parse::<Backend>().is_err(), "{bad}");
        }
    }
}
