//! routing contract §4 transcribed as linear scans: the reference matcher that the compiled table
//! is checked against, by the property test in `tests/reference.rs` and by the `route` fuzz
//! target.
//!
//! The rule sets it understands are valid Ingresses with canonical rule paths: quarantine and
//! normalisation warnings are not modelled. Backend names encode where they come from
//! ([`path_backend`], [`default_backend_name`]), so equal backends mean the same rule.

// Each includer uses only part of this module.
#![allow(dead_code)]

use std::cmp::Reverse;

use ingress_router::model::{
    HttpIngressPath, HttpIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, ObjectKind, PathType, ServiceBackendPort, Timestamp,
};
use ingress_router::{
    Backend, Fallback, ImplementationSpecific, ObjectRef, RouteMatch, ServiceBackend, ServicePort,
};

/// A rule path as written in the Ingress.
#[derive(Debug, Clone)]
pub struct GenPath {
    pub path_type: PathType,
    pub path: String,
}

/// A rule of an Ingress.
#[derive(Debug, Clone)]
pub struct GenRule {
    pub host: Option<&'static str>,
    /// `None`: the rule has no `http` section.
    pub paths: Option<Vec<GenPath>>,
}

/// An Ingress: its name, age, rules and whether it has a defaultBackend.
#[derive(Debug, Clone)]
pub struct GenIngress {
    pub namespace: &'static str,
    pub name: &'static str,
    /// Seconds; a small range so that equal timestamps happen.
    pub created: Option<i64>,
    pub rules: Vec<GenRule>,
    pub default_backend: bool,
}

/// `/` for no segments, else the segments joined, with an optional trailing `/`.
pub fn path_string(segments: &[&str], trailing_slash: bool) -> String {
    if segments.is_empty() {
        return "/".to_owned();
    }
    let mut p = format!("/{}", segments.join("/"));
    if trailing_slash {
        p.push('/');
    }
    p
}

/// The backend name of path `path` of rule `rule` of Ingress `ingress`.
pub fn path_backend(ingress: usize, rule: usize, path: usize) -> String {
    format!("p{ingress}-{rule}-{path}")
}

/// The backend name of the defaultBackend of Ingress `ingress`.
pub fn default_backend_name(ingress: usize) -> String {
    format!("d{ingress}")
}

/// A Service backend on port 80.
pub fn service(name: &str) -> IngressBackend {
    IngressBackend {
        service: Some(IngressServiceBackend {
            name: name.to_owned(),
            port: ServiceBackendPort {
                name: None,
                number: Some(80),
            },
        }),
        resource: None,
    }
}

/// The Ingress objects the table is built from.
pub fn to_model(ingresses: &[GenIngress]) -> Vec<Ingress> {
    ingresses
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let mut ing = Ingress::default();
            ing.metadata.name = g.name.to_owned();
            ing.metadata.namespace = Some(g.namespace.to_owned());
            ing.metadata.creation_timestamp = g
                .created
                .map(|s| Timestamp::from_unix_seconds(1_700_000_000 + s));
            ing.spec.default_backend = g.default_backend.then(|| service(&default_backend_name(i)));
            ing.spec.rules = g
                .rules
                .iter()
                .enumerate()
                .map(|(r, rule)| IngressRule {
                    host: rule.host.map(str::to_owned),
                    http: rule.paths.as_ref().map(|paths| HttpIngressRuleValue {
                        paths: paths
                            .iter()
                            .enumerate()
                            .map(|(p, gp)| HttpIngressPath {
                                path: Some(gp.path.clone()),
                                path_type: Some(gp.path_type.as_str().to_owned()),
                                backend: service(&path_backend(i, r, p)),
                            })
                            .collect(),
                    }),
                })
                .collect();
            ing
        })
        .collect()
}

/// Everything a route reports, comparable between table and reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub backend: Backend,
    pub ingress: Option<ObjectRef>,
    /// (rule host, rule path, path type), all as written.
    pub rule: Option<(Option<String>, String, PathType)>,
    pub fallback: Option<Fallback>,
}

/// What the table answered, in the reference's terms.
pub fn from_table(m: RouteMatch<'_>) -> Outcome {
    Outcome {
        backend: m.backend().clone(),
        ingress: m.ingress().cloned(),
        rule: m
            .rule()
            .map(|r| (r.host.map(str::to_owned), r.path.to_owned(), r.path_type)),
        fallback: m.fallback(),
    }
}

/// The controller default backend, when a test sets one.
pub fn controller_backend() -> Backend {
    Backend::Service(ServiceBackend {
        namespace: "ctl".to_owned(),
        name: "controller".to_owned(),
        port: ServicePort::Number(80),
    })
}

/// The reference: routing contract §4 read literally, no indexes, no cleverness.
pub struct Reference<'a> {
    pub ingresses: &'a [GenIngress],
    pub implementation_specific: ImplementationSpecific,
    pub controller_default: bool,
}

impl Reference<'_> {
    fn object(&self, i: usize) -> ObjectRef {
        ObjectRef {
            kind: ObjectKind::Ingress,
            namespace: Some(self.ingresses[i].namespace.to_owned()),
            name: self.ingresses[i].name.to_owned(),
        }
    }

    fn backend(&self, i: usize, name: String) -> Backend {
        Backend::Service(ServiceBackend {
            namespace: self.ingresses[i].namespace.to_owned(),
            name,
            port: ServicePort::Number(80),
        })
    }

    /// "Older": earlier creationTimestamp, then namespace/name; no timestamp is newer than any
    /// timestamp, and those keep their input order.
    fn age(&self, i: usize) -> (bool, i64, &str, &str, usize) {
        let g = &self.ingresses[i];
        match g.created {
            Some(t) => (false, t, g.namespace, g.name, 0),
            None => (true, 0, "", "", i),
        }
    }

    fn oldest(&self, keep: impl Fn(&GenIngress) -> bool) -> Option<usize> {
        (0..self.ingresses.len())
            .filter(|&i| keep(&self.ingresses[i]))
            .min_by_key(|&i| self.age(i))
    }

    fn has_rule_for(&self, host: Option<&str>) -> bool {
        self.ingresses
            .iter()
            .any(|g| g.rules.iter().any(|r| r.host == host))
    }

    /// Host selection: exact name, else the one-label wildcard, else the host-less rules (`None`).
    fn select_host(&self, host: Option<&str>) -> Option<String> {
        let host = host?;
        if self.has_rule_for(Some(host)) {
            return Some(host.to_owned());
        }
        let (first, rest) = host.split_once('.')?;
        let wildcard = format!("*.{rest}");
        (!first.is_empty() && self.has_rule_for(Some(&wildcard))).then_some(wildcard)
    }

    pub fn route(&self, host: Option<&str>, path: &str) -> Option<Outcome> {
        let selected = self.select_host(host);
        let selected = selected.as_deref();

        // Every path of every rule of the selected virtual host that matches, with its sort key.
        let mut candidates = Vec::new();
        for (i, g) in self.ingresses.iter().enumerate() {
            for (r, rule) in g.rules.iter().enumerate() {
                if rule.host != selected {
                    continue;
                }
                for (p, gp) in rule.paths.iter().flatten().enumerate() {
                    let rule_path = if gp.path.is_empty() {
                        "/"
                    } else {
                        gp.path.as_str()
                    };
                    let exact = match gp.path_type {
                        PathType::Exact => true,
                        PathType::Prefix => false,
                        PathType::ImplementationSpecific => {
                            self.implementation_specific == ImplementationSpecific::Exact
                        }
                    };
                    let matches = if exact {
                        rule_path == path
                    } else {
                        prefix_matches(rule_path, path)
                    };
                    if !matches {
                        continue;
                    }
                    let key = (
                        !exact,
                        Reverse(elements(rule_path).len()),
                        !rule_path.ends_with('/'),
                        self.age(i),
                        r,
                        p,
                    );
                    candidates.push((key, i, r, p, gp));
                }
            }
        }
        let best = candidates.into_iter().min_by(|a, b| a.0.cmp(&b.0));
        if let Some((_, i, r, p, gp)) = best {
            return Some(Outcome {
                backend: self.backend(i, path_backend(i, r, p)),
                ingress: Some(self.object(i)),
                rule: Some((selected.map(str::to_owned), gp.path.clone(), gp.path_type)),
                fallback: None,
            });
        }

        let ingress_default = match selected {
            // Oldest Ingress with rules for this host and a defaultBackend. A rule without `http`
            // is a rule for its host with no paths, so "everything on that host goes to that
            // Ingress's defaultBackend" follows from this same step.
            Some(h) => {
                self.oldest(|g| g.default_backend && g.rules.iter().any(|r| r.host == Some(h)))
            }
            // Oldest rule-less Ingress, else oldest with host-less rules and a defaultBackend.
            None => self
                .oldest(|g| g.rules.is_empty() && g.default_backend)
                .or_else(|| {
                    self.oldest(|g| g.default_backend && g.rules.iter().any(|r| r.host.is_none()))
                }),
        };
        if let Some(i) = ingress_default {
            return Some(Outcome {
                backend: self.backend(i, default_backend_name(i)),
                ingress: Some(self.object(i)),
                rule: None,
                fallback: Some(Fallback::IngressDefault),
            });
        }
        self.controller_default.then(|| Outcome {
            backend: controller_backend(),
            ingress: None,
            rule: None,
            fallback: Some(Fallback::ControllerDefault),
        })
    }
}

/// Path elements, a trailing `/` ignored: `/` → [], `/a/b/` → [a, b].
pub fn elements(path: &str) -> Vec<&str> {
    let inner = path.strip_prefix('/').unwrap_or(path);
    let inner = inner.strip_suffix('/').unwrap_or(inner);
    if inner.is_empty() {
        Vec::new()
    } else {
        inner.split('/').collect()
    }
}

/// Element-wise prefix: every element of the rule equals the request's element at that place.
pub fn prefix_matches(rule_path: &str, request_path: &str) -> bool {
    let rule = elements(rule_path);
    let request: Vec<&str> = request_path
        .strip_prefix('/')
        .unwrap_or(request_path)
        .split('/')
        .collect();
    rule.len() <= request.len() && rule.iter().zip(&request).all(|(a, b)| a == b)
}
