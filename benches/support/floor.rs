//! The floor: a hash map of hosts to `matchit` routers, the least work a lookup can do.
//!
//! Each `Prefix` (and `ImplementationSpecific`) rule becomes the routes `/p` and `/p/{*rest}`,
//! each `Exact` rule the route `/p`; the first rule to claim a route keeps it. There is no
//! canonicalisation, no precedence between Ingresses, no fallback: the answer is often right, and
//! the cost is a lower bound for any router that has to be right.

use std::collections::HashMap;

use foldhash::fast::RandomState;
use ingress_router::model::{Ingress, PathType};
use matchit::Router;

/// Hosts to path routers; values number the path rules in input order.
#[derive(Debug, Default)]
pub struct Floor {
    /// Exact hosts by name, wildcards `*.x.y` by `.x.y` (the host minus its first label), the
    /// host-less rules by the empty string.
    hosts: HashMap<String, Router<usize>, RandomState>,
}

impl Floor {
    /// Routers for every rule of `ingresses`.
    pub fn new(ingresses: &[Ingress]) -> Self {
        let mut hosts: HashMap<String, Router<usize>, RandomState> = HashMap::default();
        let mut id = 0;
        for rule in ingresses.iter().flat_map(|i| &i.spec.rules) {
            let key = match rule.host() {
                None => String::new(),
                Some(host) => host.strip_prefix('*').unwrap_or(host).to_owned(),
            };
            let router = hosts.entry(key).or_default();
            for path in rule.http.iter().flat_map(|http| &http.paths) {
                let written = path.path.as_deref().unwrap_or_default();
                let escaped = written.replace('{', "{{").replace('}', "}}");
                // A route another rule already claimed stays with that rule.
                if path.path_type() == Some(PathType::Exact) {
                    router.insert(escaped, id).ok();
                } else {
                    let base = escaped.trim_end_matches('/');
                    let exact = if base.is_empty() { "/" } else { base };
                    router.insert(exact, id).ok();
                    router.insert(format!("{base}/{{*rest}}"), id).ok();
                }
                id += 1;
            }
        }
        Floor { hosts }
    }

    /// The number of the path rule for a lower-case host without port (`None`: no host) and a
    /// path; `None` when nothing matches.
    pub fn route(&self, host: Option<&str>, path: &str) -> Option<usize> {
        let router = match host {
            None => self.hosts.get("")?,
            Some(host) => match self.hosts.get(host) {
                Some(router) => router,
                None => self.hosts.get(&host[host.find('.')?..])?,
            },
        };
        router.at(path).ok().map(|m| *m.value)
    }

    /// [`Floor::route`] on a request's `Host` header and path as received: what reading a
    /// request costs any router, without checking or canonicalising anything.
    pub fn route_request<B>(&self, request: &http::Request<B>) -> Option<usize> {
        let host = request
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok());
        self.route(host, request.uri().path())
    }
}
