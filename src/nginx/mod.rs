//! ingress-nginx compatibility: `nginx.ingress.kubernetes.io/*` annotations read into typed
//! route policies, never rendered as configuration text.
//!
//! See [NginxAnnotations] for the model.

mod config;
mod parse;
mod policy;
mod values;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

pub use config::{NginxConfig, RiskLevel};
pub(crate) use policy::{decide, Answer, Forwarding, RequestView};
pub use policy::{BackendProtocol, CookieAffinity, NginxPolicy, Timeouts};
pub use values::Cidr;

use crate::backend::Backend;
use crate::model::{Ingress, ObjectRef, PathType};
use crate::table::{
    CatchAllExtras, HostExtras, PathRef, Policy, Refused, RouteExtension, RouteExtras,
};
use parse::Parsed;
use policy::{Rewrite, WwwRedirect};

/// The annotation prefix ingress-nginx reads by default.
pub(crate) const DEFAULT_PREFIX: &str = "nginx.ingress.kubernetes.io";

/// What became of one annotation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// Read and applied, with ingress-nginx's meaning.
    Honoured,
    /// Not implemented: it has no effect (the Ingress is served without it).
    Unsupported,
    /// Its value cannot be read; what happens instead is said.
    Invalid(String),
    /// Never acted on, for safety (snippets, and protections this crate does not enforce);
    /// what happens to the Ingress is said.
    Refused(String),
}

impl Verdict {
    /// `honoured`, `unsupported`, `invalid` or `refused`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Honoured => "honoured",
            Verdict::Unsupported => "unsupported",
            Verdict::Invalid(_) => "invalid",
            Verdict::Refused(_) => "refused",
        }
    }

    /// Why, for `invalid` and `refused`.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Verdict::Invalid(why) | Verdict::Refused(why) => Some(why),
            _ => None,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason() {
            Some(why) => write!(f, "{}: {why}", self.as_str()),
            None => f.write_str(self.as_str()),
        }
    }
}

/// One annotation of an Ingress and its [`Verdict`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AnnotationVerdict {
    /// The annotation's full name.
    pub annotation: String,
    /// What became of it.
    pub verdict: Verdict,
}

/// What [`NginxAnnotations::review`] says about one Ingress: a migration report.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IngressReview {
    /// The Ingress.
    pub ingress: ObjectRef,
    /// Whether it is served (an Ingress with a refused annotation is not).
    pub served: bool,
    /// Each annotation under the prefix, with its verdict, by name.
    pub annotations: Vec<AnnotationVerdict>,
    /// ingress-nginx behaviours that apply to it, reproduced or not, one sentence each.
    pub quirks: Vec<Quirk>,
}

/// An ingress-nginx behaviour that applies to an Ingress.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Quirk {
    /// A short stable name, e.g. `regex-host`.
    pub name: &'static str,
    /// Whether this crate reproduces it.
    pub reproduced: bool,
    /// What it does to this Ingress.
    pub detail: String,
}

/// ingress-nginx's annotations as a [`RouteExtension`]: each rule path of an annotated
/// Ingress gets a typed [`NginxPolicy`], and the cross-Ingress behaviours (canaries merged
/// into their mainline, regex hosts, server aliases) are settled per virtual host
/// (feature `nginx`).
///
/// ```
/// use std::sync::Arc;
/// use ingress_router::{Manifests, NginxAnnotations, NginxConfig, RouteTable, TableOptions};
///
/// let manifests = Manifests::parse(r#"
/// kind: Ingress
/// metadata:
///   name: api
///   annotations:
///     nginx.ingress.kubernetes.io/use-regex: "true"
///     nginx.ingress.kubernetes.io/rewrite-target: /v2/$1
/// spec:
///   rules:
///   - host: api.example.com
///     http: {paths: [{path: /v1/(.*), pathType: ImplementationSpecific, backend: {service: {name: api, port: {number: 80}}}}]}
/// "#);
/// let nginx = Arc::new(NginxAnnotations::new(NginxConfig::default()));
/// let options = TableOptions { extension: Some(nginx), ..TableOptions::default() };
/// let table = RouteTable::build(&manifests.ingresses, options);
/// let route = table.route(Some("api.example.com"), "/V1/items").expect("regex, case-insensitive");
/// assert!(route.policy().is_some());
/// ```
///
/// # What is read
///
/// Paths and rewrites (`use-regex`, `rewrite-target` with `$1`…`$99`, `x-forwarded-prefix`),
/// redirects (`app-root`, `permanent-redirect` and `temporal-redirect` with their `-code`,
/// `relative-redirects`, `ssl-redirect`, `force-ssl-redirect`, `preserve-trailing-slash`,
/// `from-to-www-redirect`, `server-alias`), canaries (`canary`, `canary-weight`,
/// `canary-weight-total`, `canary-by-header`, `-value`, `-pattern`, `canary-by-cookie`),
/// access and limits (`allowlist-source-range` alias `whitelist-source-range`,
/// `denylist-source-range`, `proxy-body-size`, `proxy-*-timeout`, `limit-rps`,
/// `limit-connections`, `limit-burst-multiplier`, `limit-allowlist`), CORS (`enable-cors` and
/// every `cors-*`), and backends (`upstream-vhost`, `service-upstream`, `default-backend`,
/// `custom-http-errors`, `disable-proxy-intercept-errors`, `backend-protocol`, `affinity`,
/// `session-cookie-*`). Every other annotation under the prefix is reported as unsupported
/// by [`NginxAnnotations::review`], and has no effect.
///
/// # Safety
///
/// No annotation value ever becomes configuration text: each is parsed into a typed value
/// within limits (values of at most 16 KiB, regexes compiled by the linear-time `regex`
/// crate within size limits, at most 4096 address ranges), and an invalid value is reported
/// and replaced by its default, as ingress-nginx does. Snippet annotations (`*-snippet`) are
/// never executed: below `annotations-risk-level: Critical` (the default is `High`) an
/// Ingress carrying one is not served, and is quarantined with the reason; at `Critical` it
/// is served without the snippet. An Ingress that asks for a protection this crate does not
/// enforce (`auth-*`, `satisfy`, ModSecurity) is not served either, rather than served
/// unprotected.
///
/// # Deliberate deviations from ingress-nginx
///
/// - CORS origins are matched whole (`cors-allow-origin`): ingress-nginx anchors its origin
///   regex at the end only, so that `evilhttps://allowed.example` passes for
///   `https://allowed.example`.
/// - A `Prefix` path written with a trailing `/` keeps its Kubernetes meaning: ingress-nginx
///   answers `/foo` with a 301 to `/foo/` for the path `/foo/`.
/// - The paths of a host that no rule matches do not take the annotations of the host's
///   oldest Ingress (ingress-nginx renders them into its catch-all `/` location, so that, say,
///   a `permanent-redirect` on one Ingress redirects every unmatched path of the host).
/// - In a regex host, a path with alternatives (`/a|/b`) is anchored as a whole; nginx anchors
///   only its first alternative. PCRE-only syntax (look-around, backreferences) is not a
///   valid regex here: the path is left out with a warning.
/// - `from-to-www-redirect` redirects the paths of the host that a rule matches; the other
///   paths of the other name answer as the host's do.
#[derive(Debug, Clone)]
pub struct NginxAnnotations {
    /// The prefix with its `/`.
    prefix: String,
    config: Arc<NginxConfig>,
}

impl NginxAnnotations {
    /// Reads the annotations under `nginx.ingress.kubernetes.io`, with `config`'s defaults.
    pub fn new(config: NginxConfig) -> NginxAnnotations {
        NginxAnnotations {
            prefix: format!("{DEFAULT_PREFIX}/"),
            config: Arc::new(config),
        }
    }

    /// Reads the annotations under `prefix` instead (ingress-nginx's `--annotations-prefix`).
    pub fn with_prefix(mut self, prefix: &str) -> NginxAnnotations {
        self.prefix = format!("{}/", prefix.trim_end_matches('/'));
        self
    }

    /// The controller configuration the annotations fall back to.
    pub fn config(&self) -> &Arc<NginxConfig> {
        &self.config
    }

    fn has_ours(&self, ingress: &Ingress) -> bool {
        ingress
            .metadata
            .annotations
            .keys()
            .any(|k| k.starts_with(&self.prefix))
    }

    fn parse(&self, ingress: &Ingress) -> Parsed {
        parse::parse(
            &ingress.metadata.annotations,
            &self.prefix,
            &self.config,
            ingress.metadata.namespace(),
        )
    }

    /// The backends an Ingress's annotations name besides its rules' (`default-backend`),
    /// for a controller that must know every Service it may send to.
    pub fn referenced_backends(&self, ingress: &Ingress) -> Vec<Backend> {
        if !self.has_ours(ingress) {
            return Vec::new();
        }
        self.parse(ingress)
            .policy
            .default_backend
            .into_iter()
            .collect()
    }

    /// The policy of one rule path, from the Ingress's parsed annotations.
    fn path_policy(
        &self,
        parsed: &Parsed,
        ingress: &Ingress,
        rule: usize,
        path: usize,
    ) -> Option<NginxPolicy> {
        let rule_spec = ingress.spec.rules.get(rule)?;
        let path_spec = rule_spec.http.as_ref()?.paths.get(path)?;
        let written = path_spec.path.as_deref().unwrap_or("/");
        let mut policy = parsed.policy.clone();
        if let Some((pieces, own_query, raw)) = &parsed.rewrite {
            if raw != written {
                if let Ok(regex) = crate::table::path_regex(written) {
                    policy.rewrite = Some(Rewrite {
                        regex,
                        target: pieces.clone(),
                        own_query: *own_query,
                        prefix: parsed.x_forwarded_prefix.clone(),
                    });
                }
            }
        }
        if let Some(affinity) = &mut policy.affinity {
            if affinity.path.is_none() && !parsed.wants_regex() {
                affinity.path = Some(written.to_owned());
            }
        }
        if parsed.from_to_www {
            if let Some(host) = rule_spec.host() {
                let other = match host.strip_prefix("www.") {
                    Some(bare) => bare.to_owned(),
                    None => format!("www.{host}"),
                };
                policy.www = Some(WwwRedirect {
                    from: other,
                    to: host.to_owned(),
                });
            }
        }
        let inert = !policy.acts_on_requests()
            && policy.upstream_vhost.is_none()
            && policy.service_upstream.is_none()
            && policy.default_backend.is_none()
            && policy.custom_errors.is_empty()
            && policy.protocol == BackendProtocol::Http
            && policy.connect_timeout.is_none()
            && policy.read_timeout.is_none()
            && policy.send_timeout.is_none()
            && policy.affinity.is_none();
        (!inert).then_some(policy)
    }

    /// The migration report of every Ingress of `ingresses`, in input order: each
    /// annotation's verdict, and the ingress-nginx behaviours that apply to it.
    pub fn review(&self, ingresses: &[Ingress]) -> Vec<IngressReview> {
        let parsed: Vec<Option<Parsed>> = ingresses
            .iter()
            .map(|i| self.has_ours(i).then(|| self.parse(i)))
            .collect();
        // Which hosts are in regex mode, and because of whom.
        let mut regex_hosts: BTreeMap<&str, &str> = BTreeMap::new();
        for (ingress, parsed) in ingresses.iter().zip(&parsed) {
            let Some(p) = parsed else { continue };
            if p.wants_regex() && p.canary.is_none() && p.refused.is_none() {
                for rule in &ingress.spec.rules {
                    regex_hosts
                        .entry(rule.host().unwrap_or(""))
                        .or_insert(&ingress.metadata.name);
                }
            }
        }
        let mainlines: BTreeSet<(&str, &str, &str)> = ingresses
            .iter()
            .zip(&parsed)
            .filter(|(_, p)| p.as_ref().is_none_or(|p| p.canary.is_none()))
            .flat_map(|(i, _)| paths_of(i))
            .collect();
        let mut out = Vec::new();
        for (ingress, parsed) in ingresses.iter().zip(&parsed) {
            let mut quirks = Vec::new();
            let mut hosts: Vec<&str> = ingress
                .spec
                .rules
                .iter()
                .map(|r| r.host().unwrap_or(""))
                .collect();
            hosts.sort_unstable();
            hosts.dedup();
            for host in &hosts {
                if let Some(cause) = regex_hosts.get(host) {
                    quirks.push(Quirk {
                        name: "regex-host",
                        reproduced: true,
                        detail: format!(
                            "every path of host {host:?} is matched as a case-insensitive regex anchored at the start, longest first, because Ingress {cause:?} uses use-regex or rewrite-target: a Prefix path /a also matches /ab, and an Exact path matches as a prefix"
                        ),
                    });
                }
            }
            for rule in &ingress.spec.rules {
                for path in rule.http.iter().flat_map(|h| &h.paths) {
                    let written = path.path.as_deref().unwrap_or("");
                    if path.path_type() == Some(PathType::Prefix)
                        && written.len() > 1
                        && written.ends_with('/')
                        && !regex_hosts.contains_key(rule.host().unwrap_or(""))
                    {
                        quirks.push(Quirk {
                            name: "prefix-trailing-slash",
                            reproduced: false,
                            detail: format!(
                                "Prefix path {written:?}: ingress-nginx redirects {:?} to it with a 301; here it keeps the Kubernetes meaning and serves both",
                                written.trim_end_matches('/')
                            ),
                        });
                    }
                }
            }
            let Some(p) = parsed else {
                out.push(IngressReview {
                    ingress: ingress.object_ref(),
                    served: true,
                    annotations: Vec::new(),
                    quirks,
                });
                continue;
            };
            if p.canary.is_some() {
                let orphans: Vec<String> = paths_of(ingress)
                    .filter(|k| !mainlines.contains(k))
                    .map(|(h, p, _)| format!("{h}{p}"))
                    .collect();
                let detail = match orphans.is_empty() && !ingress.spec.rules.is_empty() {
                    true => "canary: its paths are merged into the mainline Ingress with the same host, path and path type; its other annotations have no effect".to_owned(),
                    false if ingress.spec.rules.is_empty() => "canary of the catch-all: merged into the oldest other Ingress without rules".to_owned(),
                    false => format!("canary paths without a mainline Ingress are not served: {}", orphans.join(", ")),
                };
                quirks.push(Quirk {
                    name: "canary",
                    reproduced: true,
                    detail,
                });
            }
            let location_wide = p.policy.redirect.is_some()
                || p.policy.access.is_some()
                || p.policy.cors.is_some()
                || p.policy.app_root.is_some();
            if location_wide && !ingress.spec.rules.is_empty() {
                quirks.push(Quirk {
                    name: "unmatched-paths",
                    reproduced: false,
                    detail: "if this is the oldest Ingress of its host, ingress-nginx also applies its redirect, CORS and access annotations to the host's paths that no rule matches; here those paths answer as the host's fallback does".into(),
                });
            }
            if p.policy.cors.as_ref().is_some_and(|c| c.origins.is_some()) {
                quirks.push(Quirk {
                    name: "cors-origin-anchoring",
                    reproduced: false,
                    detail: "allowed origins are matched whole; ingress-nginx anchors them at the end only and so also lets prefixed origins through".into(),
                });
            }
            if p.x_forwarded_prefix.is_some() && p.rewrite.is_none() {
                quirks.push(Quirk {
                    name: "x-forwarded-prefix-without-rewrite",
                    reproduced: true,
                    detail: "x-forwarded-prefix has no effect without rewrite-target, as in ingress-nginx".into(),
                });
            }
            let mut annotations = p.verdicts.clone();
            annotations.sort_by(|a, b| a.annotation.cmp(&b.annotation));
            out.push(IngressReview {
                ingress: ingress.object_ref(),
                served: p.refused.is_none(),
                annotations,
                quirks,
            });
        }
        out
    }
}

/// An Ingress's rule paths as `(host, path, path type)`.
fn paths_of(ingress: &Ingress) -> impl Iterator<Item = (&str, &str, &str)> {
    ingress.spec.rules.iter().flat_map(|rule| {
        let host = rule.host().unwrap_or("");
        rule.http.iter().flat_map(move |h| {
            h.paths.iter().map(move |p| {
                (
                    host,
                    p.path.as_deref().unwrap_or(""),
                    p.path_type.as_deref().unwrap_or(""),
                )
            })
        })
    })
}

impl RouteExtension for NginxAnnotations {
    fn extras(&self, ingress: &Ingress, rule: usize, path: usize) -> Option<RouteExtras> {
        if !self.has_ours(ingress) {
            return None;
        }
        let parsed = self.parse(ingress);
        let policy = self.path_policy(&parsed, ingress, rule, path)?;
        let mut slot = Policy::default();
        slot.insert(policy);
        Some(RouteExtras::new().policy(slot))
    }

    fn host_extras(&self, host: Option<&str>, ingresses: &[&Ingress]) -> HostExtras {
        let mut extras = HostExtras::default();
        let parsed: Vec<Option<Parsed>> = ingresses
            .iter()
            .map(|i| self.has_ours(i).then(|| self.parse(i)))
            .collect();
        if parsed.iter().all(Option::is_none) {
            return extras;
        }
        let rules_here = |ingress: &Ingress| -> Vec<usize> {
            (0..ingress.spec.rules.len())
                .filter(|&r| ingress.spec.rules[r].host() == host)
                .collect()
        };
        // Mainline paths by (path, path type), the oldest first.
        let mut mainline: BTreeMap<(&str, &str), PathRef> = BTreeMap::new();
        for (i, ingress) in ingresses.iter().enumerate() {
            let p = parsed[i].as_ref();
            if p.is_some_and(|p| p.canary.is_some()) {
                continue;
            }
            if let Some(p) = p {
                extras.aliases.extend(p.aliases.iter().cloned());
                if p.from_to_www {
                    if let Some(host) = host {
                        extras.aliases.push(match host.strip_prefix("www.") {
                            Some(bare) => bare.to_owned(),
                            None => format!("www.{host}"),
                        });
                    }
                }
                #[cfg(feature = "regex")]
                if p.wants_regex() {
                    extras.regex_paths = true;
                }
            }
            for r in rules_here(ingress) {
                let paths = ingress.spec.rules[r].http.iter().flat_map(|h| &h.paths);
                for (j, path) in paths.enumerate() {
                    let key = (
                        path.path.as_deref().unwrap_or(""),
                        path.path_type.as_deref().unwrap_or(""),
                    );
                    mainline.entry(key).or_insert(PathRef::new(i, r, j));
                }
            }
        }
        // Canaries: withheld, and merged into their mainline as a second backend.
        for (i, ingress) in ingresses.iter().enumerate() {
            let Some(canary) = parsed[i].as_ref().and_then(|p| p.canary.as_ref()) else {
                continue;
            };
            for r in rules_here(ingress) {
                let paths = ingress.spec.rules[r].http.iter().flat_map(|h| &h.paths);
                for (j, path) in paths.enumerate() {
                    extras.withheld.push(PathRef::new(i, r, j));
                    let key = (
                        path.path.as_deref().unwrap_or(""),
                        path.path_type.as_deref().unwrap_or(""),
                    );
                    let Some(&main) = mainline.get(&key) else {
                        continue;
                    };
                    if extras.extras.iter().any(|(at, _)| *at == main) {
                        continue; // the oldest canary of a path wins
                    }
                    let main_ingress = ingresses[main.ingress];
                    let namespace = main_ingress.metadata.namespace();
                    let main_backend = main_ingress.spec.rules[main.rule]
                        .http
                        .as_ref()
                        .and_then(|h| h.paths.get(main.path))
                        .and_then(|p| Backend::from_ingress_backend(namespace, &p.backend));
                    let canary_backend =
                        Backend::from_ingress_backend(ingress.metadata.namespace(), &path.backend);
                    let (Some(main_backend), Some(canary_backend)) = (main_backend, canary_backend)
                    else {
                        continue;
                    };
                    let mut policy = parsed[main.ingress]
                        .as_ref()
                        .and_then(|p| self.path_policy(p, main_ingress, main.rule, main.path))
                        .unwrap_or_default();
                    policy.canary = Some(canary.clone());
                    let mut slot = Policy::default();
                    slot.insert(policy);
                    let route = RouteExtras::new()
                        .backend(main_backend, 1)
                        .backend(canary_backend, 0)
                        .policy(slot);
                    extras.extras.push((main, route));
                }
            }
        }
        extras.aliases.sort();
        extras.aliases.dedup();
        extras
    }

    fn refuse(&self, ingress: &Ingress) -> Option<Refused> {
        if !self.has_ours(ingress) {
            return None;
        }
        let parsed = self.parse(ingress);
        if let Some((annotation, why)) = parsed.refused {
            return Some(Refused::new(
                format!("metadata.annotations[{annotation}]"),
                why,
            ));
        }
        None
    }

    fn catch_all_extras(&self, candidates: &[&Ingress]) -> CatchAllExtras {
        let parsed: Vec<Option<Parsed>> = candidates
            .iter()
            .map(|i| self.has_ours(i).then(|| self.parse(i)))
            .collect();
        let canary = |i: usize| parsed[i].as_ref().and_then(|p| p.canary.as_ref());
        // Canaries never serve on their own: the oldest other Ingress does, with the oldest
        // canary as its alternative.
        let Some(main) = (0..candidates.len()).find(|&i| canary(i).is_none()) else {
            return CatchAllExtras::default();
        };
        let mut policy = parsed[main]
            .as_ref()
            .map(|p| p.policy.clone())
            .unwrap_or_default();
        let mut extras = RouteExtras::new();
        let alternative = (0..candidates.len()).find_map(|i| {
            let split = canary(i)?;
            let ingress = candidates[i];
            let backend = ingress.spec.default_backend.as_ref()?;
            Some((
                split,
                Backend::from_ingress_backend(ingress.metadata.namespace(), backend)?,
            ))
        });
        if let Some((split, canary_backend)) = alternative {
            let own = candidates[main]
                .spec
                .default_backend
                .as_ref()
                .and_then(|b| {
                    Backend::from_ingress_backend(candidates[main].metadata.namespace(), b)
                });
            if let Some(own) = own {
                policy.canary = Some(split.clone());
                extras = extras.backend(own, 1).backend(canary_backend, 0);
            }
        }
        let mut slot = Policy::default();
        slot.insert(policy);
        CatchAllExtras::serving(main, Some(extras.policy(slot)))
    }
}
