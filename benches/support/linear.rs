//! The baseline: what a controller without an index does for every request.
//!
//! [`Linear::route`] scans every rule of every Ingress, keeps the best candidate by Kubernetes
//! precedence (exact host, then wildcard, then host-less; `Exact`, then the longest `Prefix` by
//! path element, a trailing `/` first; the oldest Ingress, then rule order) and falls back to a
//! defaultBackend as `RouteTable` does. It precomputes nothing, allocates nothing, and takes the
//! same canonical host and path as `RouteTable::route`.

use std::cmp::Ordering;

use ingress_router::model::{HttpIngressPath, Ingress, IngressBackend, PathType};

/// A linear-scan matcher over a set of Ingresses.
#[derive(Debug, Clone, Copy)]
pub struct Linear<'a> {
    /// The Ingresses, in input order.
    ingresses: &'a [Ingress],
}

/// Where [`Linear::route`] sends a request.
#[derive(Debug, Clone, Copy)]
pub struct LinearMatch<'a> {
    /// The Ingress whose rule or defaultBackend matched.
    pub ingress: &'a Ingress,
    /// The backend as the Ingress wrote it.
    pub backend: &'a IngressBackend,
    /// The rule path as written; `None` when the defaultBackend was taken.
    pub path: Option<&'a str>,
}

/// How a rule's host covers the request host; the larger, the more specific.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum HostMatch {
    /// A rule without a host.
    Hostless,
    /// A `*.` wildcard covering the request host's first label.
    Wildcard,
    /// The very host.
    Exact,
}

/// A matching rule path and what ranks it.
#[derive(Debug, Clone, Copy)]
struct Candidate<'a> {
    /// Whether the rule is `Exact`.
    exact: bool,
    /// The rule path's elements.
    elements: usize,
    /// Whether the rule path ends in `/`.
    trailing: bool,
    /// Index of the Ingress.
    ingress: usize,
    /// Index of the rule in the Ingress, then of the path in the rule.
    position: (usize, usize),
    /// The rule path.
    path: &'a HttpIngressPath,
}

impl<'a> Linear<'a> {
    /// A matcher over `ingresses`, which it borrows and never indexes.
    pub fn new(ingresses: &'a [Ingress]) -> Self {
        Linear { ingresses }
    }

    /// Routes a canonical host (`None` for an IP address or no `Host`) and canonical path.
    pub fn route(&self, host: Option<&str>, path: &str) -> Option<LinearMatch<'a>> {
        let mut selected: Option<HostMatch> = None;
        let mut best: Option<Candidate<'a>> = None;
        // The oldest Ingress with a defaultBackend and a rule of the selected virtual host.
        let mut host_default: Option<usize> = None;
        // The oldest Ingress without rules.
        let mut rule_less: Option<usize> = None;
        for (index, ingress) in self.ingresses.iter().enumerate() {
            if ingress.spec.rules.is_empty() {
                if ingress.spec.default_backend.is_some()
                    && rule_less.is_none_or(|r| self.older(index, r))
                {
                    rule_less = Some(index);
                }
                continue;
            }
            for (rule_index, rule) in ingress.spec.rules.iter().enumerate() {
                let Some(class) = host_match(rule.host(), host) else {
                    continue;
                };
                match selected.map(|s| class.cmp(&s)) {
                    Some(Ordering::Less) => continue,
                    Some(Ordering::Equal) => {}
                    None | Some(Ordering::Greater) => {
                        selected = Some(class);
                        best = None;
                        host_default = None;
                    }
                }
                if ingress.spec.default_backend.is_some()
                    && host_default.is_none_or(|d| self.older(index, d))
                {
                    host_default = Some(index);
                }
                let paths = rule.http.iter().flat_map(|http| &http.paths);
                for (path_index, rule_path) in paths.enumerate() {
                    let Some((exact, elements, trailing)) = matches(rule_path, path) else {
                        continue;
                    };
                    let candidate = Candidate {
                        exact,
                        elements,
                        trailing,
                        ingress: index,
                        position: (rule_index, path_index),
                        path: rule_path,
                    };
                    if best.is_none_or(|b| self.beats(&candidate, &b)) {
                        best = Some(candidate);
                    }
                }
            }
        }
        if let Some(best) = best {
            return Some(LinearMatch {
                ingress: &self.ingresses[best.ingress],
                backend: &best.path.backend,
                path: Some(best.path.path.as_deref().unwrap_or_default()),
            });
        }
        let fallback = match selected {
            Some(HostMatch::Exact | HostMatch::Wildcard) => host_default,
            Some(HostMatch::Hostless) | None => rule_less.or(host_default),
        }?;
        let ingress = &self.ingresses[fallback];
        Some(LinearMatch {
            ingress,
            backend: ingress.spec.default_backend.as_ref()?,
            path: None,
        })
    }

    /// Whether `a` ranks above `b`: `Exact`, more elements, trailing `/`, older, rule order.
    fn beats(&self, a: &Candidate<'_>, b: &Candidate<'_>) -> bool {
        let rank = |c: &Candidate<'_>| (c.exact, c.elements, c.trailing);
        match rank(a).cmp(&rank(b)) {
            Ordering::Greater => true,
            Ordering::Less => false,
            Ordering::Equal if a.ingress == b.ingress => a.position < b.position,
            Ordering::Equal => self.older(a.ingress, b.ingress),
        }
    }

    /// Whether Ingress `a` is older than Ingress `b`: earlier `creationTimestamp` (none is newest),
    /// then `namespace/name`, then input order.
    fn older(&self, a: usize, b: usize) -> bool {
        let key = |i: usize| {
            let meta = &self.ingresses[i].metadata;
            match meta.creation_timestamp {
                Some(created) => (
                    false,
                    Some(created),
                    meta.namespace(),
                    meta.name.as_str(),
                    0,
                ),
                None => (true, None, "", "", i),
            }
        };
        key(a) < key(b)
    }
}

/// How the rule host `rule` covers the request host, if it does.
fn host_match(rule: Option<&str>, host: Option<&str>) -> Option<HostMatch> {
    let Some(rule) = rule else {
        return Some(HostMatch::Hostless);
    };
    let host = host?;
    if rule == host {
        return Some(HostMatch::Exact);
    }
    let suffix = rule.strip_prefix("*.")?;
    let (label, rest) = host.split_once('.')?;
    (!label.is_empty() && rest == suffix).then_some(HostMatch::Wildcard)
}

/// Whether `rule` matches the request path, and if so how well: (`Exact`, elements, trailing
/// `/`). `ImplementationSpecific` is `Prefix`, an empty path `/`.
fn matches(rule: &HttpIngressPath, path: &str) -> Option<(bool, usize, bool)> {
    let written = rule.path.as_deref().unwrap_or_default();
    let written = if written.is_empty() { "/" } else { written };
    let trailing = written.len() > 1 && written.ends_with('/');
    let elements = written.trim_end_matches('/').matches('/').count();
    match rule.path_type()? {
        PathType::Exact => (written == path).then_some((true, elements, trailing)),
        PathType::Prefix | PathType::ImplementationSpecific => {
            let base = written.strip_suffix('/').unwrap_or(written);
            let rest = path.strip_prefix(base)?;
            (rest.is_empty() || rest.starts_with('/')).then_some((false, elements, trailing))
        }
    }
}
