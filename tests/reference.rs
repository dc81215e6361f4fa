//! The compiled table against a naive reference matcher: SPEC §4 transcribed as linear scans.
//!
//! Generated inputs overlap heavily (few hosts, few path segments, few timestamps) so that every
//! precedence step and every fallback is exercised. Only valid Ingresses with canonical rule paths
//! are generated: quarantine and normalisation warnings are tested in `spec_examples.rs`, and the
//! reference does not model them.

use std::cmp::Reverse;

use ingress_router::canonical::{canonical_path, CanonicalOptions};
use ingress_router::model::{
    HttpIngressPath, HttpIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, ObjectKind, PathType, ServiceBackendPort, Timestamp,
};
use ingress_router::{
    Backend, Fallback, ImplementationSpecific, ObjectRef, RouteMatch, RouteTable, ServiceBackend,
    ServicePort, TableOptions,
};
use proptest::prelude::*;
use proptest::sample::select;

const RULE_HOSTS: &[&str] = &["*.a.com", "b.a.com", "a.com", "x.b.a.com", "*.b.a.com"];
const REQUEST_HOSTS: &[&str] = &["b.a.com", "a.com", "x.b.a.com", "c.a.com", "b.b.a.com"];
const SEGMENTS: &[&str] = &["a", "b", "ab"];
const NAMES: &[&str] = &["a", "b", "c", "d", "e", "f"];

#[derive(Debug, Clone)]
struct GenPath {
    path_type: PathType,
    path: String,
}

#[derive(Debug, Clone)]
struct GenRule {
    host: Option<&'static str>,
    /// `None`: the rule has no `http` section.
    paths: Option<Vec<GenPath>>,
}

#[derive(Debug, Clone)]
struct GenIngress {
    namespace: &'static str,
    name: &'static str,
    /// Seconds; a small range so that equal timestamps happen.
    created: Option<i64>,
    rules: Vec<GenRule>,
    default_backend: bool,
}

fn path_string(segments: &[&str], trailing_slash: bool) -> String {
    if segments.is_empty() {
        return "/".to_owned();
    }
    let mut p = format!("/{}", segments.join("/"));
    if trailing_slash {
        p.push('/');
    }
    p
}

fn request_path() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(select(SEGMENTS), 0..=3),
        any::<bool>(),
    )
        .prop_map(|(segments, slash)| path_string(&segments, slash))
}

fn gen_path() -> impl Strategy<Value = GenPath> {
    let path_type = select(
        &[
            PathType::Exact,
            PathType::Prefix,
            PathType::ImplementationSpecific,
        ][..],
    );
    (path_type, request_path(), 0..4u8).prop_map(|(path_type, path, empty)| {
        // An empty path is valid only for ImplementationSpecific.
        let path = if path_type == PathType::ImplementationSpecific && empty == 0 {
            String::new()
        } else {
            path
        };
        GenPath { path_type, path }
    })
}

fn gen_rule() -> impl Strategy<Value = GenRule> {
    let paths = prop::collection::vec(gen_path(), 1..=4);
    (prop::option::of(select(RULE_HOSTS)), paths, 0..5u8).prop_map(|(host, paths, no_http)| {
        // Only rules with a host go without `http`; a host-less rule without paths means nothing.
        let paths = if host.is_some() && no_http == 0 {
            None
        } else {
            Some(paths)
        };
        GenRule { host, paths }
    })
}

fn gen_ingresses() -> impl Strategy<Value = Vec<GenIngress>> {
    let one = (
        select(&["n1", "n2"][..]),
        prop::option::of(1..=3i64),
        prop::collection::vec(gen_rule(), 0..=3),
        any::<bool>(),
    );
    (
        prop::collection::vec(one, 1..=6),
        Just(NAMES.to_vec()).prop_shuffle(),
    )
        .prop_map(|(specs, names)| {
            specs
                .into_iter()
                .zip(names)
                .map(
                    |((namespace, created, rules, default_backend), name)| GenIngress {
                        namespace,
                        name,
                        created,
                        // An Ingress needs rules or a defaultBackend.
                        default_backend: default_backend || rules.is_empty(),
                        rules,
                    },
                )
                .collect()
        })
}

fn requests() -> impl Strategy<Value = Vec<(Option<&'static str>, String)>> {
    prop::collection::vec(
        (prop::option::of(select(REQUEST_HOSTS)), request_path()),
        1..=12,
    )
}

// Backend names encode where they come from, so equal backends mean the same rule.
fn path_backend(ingress: usize, rule: usize, path: usize) -> String {
    format!("p{ingress}-{rule}-{path}")
}

fn default_backend_name(ingress: usize) -> String {
    format!("d{ingress}")
}

fn service(name: &str) -> IngressBackend {
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

fn to_model(ingresses: &[GenIngress]) -> Vec<Ingress> {
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
struct Outcome {
    backend: Backend,
    ingress: Option<ObjectRef>,
    /// (rule host, rule path, path type), all as written.
    rule: Option<(Option<String>, String, PathType)>,
    fallback: Option<Fallback>,
}

fn from_table(m: RouteMatch<'_>) -> Outcome {
    Outcome {
        backend: m.backend().clone(),
        ingress: m.ingress().cloned(),
        rule: m
            .rule()
            .map(|r| (r.host.map(str::to_owned), r.path.to_owned(), r.path_type)),
        fallback: m.fallback(),
    }
}

fn controller_backend() -> Backend {
    Backend::Service(ServiceBackend {
        namespace: "ctl".to_owned(),
        name: "controller".to_owned(),
        port: ServicePort::Number(80),
    })
}

/// The reference: SPEC §4 read literally, no indexes, no cleverness.
struct Reference<'a> {
    ingresses: &'a [GenIngress],
    implementation_specific: ImplementationSpecific,
    controller_default: bool,
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

    fn route(&self, host: Option<&str>, path: &str) -> Option<Outcome> {
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
fn elements(path: &str) -> Vec<&str> {
    let inner = path.strip_prefix('/').unwrap_or(path);
    let inner = inner.strip_suffix('/').unwrap_or(inner);
    if inner.is_empty() {
        Vec::new()
    } else {
        inner.split('/').collect()
    }
}

/// Element-wise prefix: every element of the rule equals the request's element at that place.
fn prefix_matches(rule_path: &str, request_path: &str) -> bool {
    let rule = elements(rule_path);
    let request: Vec<&str> = request_path
        .strip_prefix('/')
        .unwrap_or(request_path)
        .split('/')
        .collect();
    rule.len() <= request.len() && rule.iter().zip(&request).all(|(a, b)| a == b)
}

proptest! {
    // Failures print the shrunk input; nothing is written next to the sources.
    #![proptest_config(ProptestConfig {
        cases: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn compiled_table_agrees_with_reference_matcher(
        ingresses in gen_ingresses(),
        requests in requests(),
    ) {
        // Generated rule paths are canonical, so no rule is dropped for normalisation.
        for g in &ingresses {
            for gp in g.rules.iter().flat_map(|r| r.paths.iter().flatten()) {
                if !gp.path.is_empty() {
                    let canonical = canonical_path(&gp.path, &CanonicalOptions::default());
                    prop_assert!(canonical.is_ok_and(|c| !c.is_modified()), "{:?} is not canonical", gp.path);
                }
            }
        }
        let model = to_model(&ingresses);
        for implementation_specific in [ImplementationSpecific::Prefix, ImplementationSpecific::Exact] {
            for controller_default in [false, true] {
                let options = TableOptions {
                    default_backend: controller_default.then(controller_backend),
                    implementation_specific,
                    ..TableOptions::default()
                };
                let table = RouteTable::build(&model, options);
                let diagnostics = table.diagnostics();
                // The generator only makes valid rules; a quarantine would make the comparison
                // meaningless. (Warnings are allowed: the table may report shadowed rules.)
                prop_assert!(diagnostics.quarantined.is_empty(), "quarantined: {:?}", diagnostics.quarantined);
                let reference = Reference { ingresses: &ingresses, implementation_specific, controller_default };
                for (host, path) in &requests {
                    let got = table.route(*host, path).map(from_table);
                    let want = reference.route(*host, path);
                    prop_assert_eq!(
                        got,
                        want,
                        "request {:?} {:?}, ImplementationSpecific as {:?}, controller default {}",
                        host,
                        path,
                        implementation_specific,
                        controller_default
                    );
                }
            }
        }
    }
}

/// The reference's own path matching, pinned to the SPEC §4 examples so it cannot drift.
#[test]
fn reference_prefix_matching_follows_the_spec() {
    let cases = [
        ("/", "/", true),
        ("/", "/a/b", true),
        ("/a", "/a", true),
        ("/a", "/a/", true),
        ("/a", "/a/b", true),
        ("/a", "/ab", false),
        ("/a/", "/a", true),
        ("/a/b", "/a", false),
        ("/a/b", "/a/bc", false),
    ];
    for (rule, request, want) in cases {
        assert_eq!(
            prefix_matches(rule, request),
            want,
            "Prefix {rule} vs {request}"
        );
    }
}

/// What happens to each Ingress of the first set in the second.
#[derive(Debug, Clone, Copy)]
enum Edit {
    Keep,
    Drop,
    /// Takes the rules and fallback of the other set's Ingress at the same position.
    Replace,
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// `RouteTable::update` gives the table a full build gives: same routes, diagnostics,
    /// Ingresses and rule count, whatever was kept, dropped, replaced or added.
    #[test]
    fn an_updated_table_equals_a_full_build(
        before in gen_ingresses(),
        other in gen_ingresses(),
        edits in prop::collection::vec(
            prop_oneof![Just(Edit::Keep), Just(Edit::Drop), Just(Edit::Replace)],
            6,
        ),
        requests in requests(),
        controller_default in any::<bool>(),
    ) {
        let mut after: Vec<GenIngress> = Vec::new();
        for (i, g) in before.iter().enumerate() {
            match (edits[i], other.get(i)) {
                (Edit::Keep, _) | (Edit::Replace, None) => after.push(g.clone()),
                (Edit::Drop, _) => {}
                (Edit::Replace, Some(o)) => after.push(GenIngress {
                    namespace: g.namespace,
                    name: g.name,
                    ..o.clone()
                }),
            }
        }
        for o in &other {
            if !after.iter().any(|a| (a.namespace, a.name) == (o.namespace, o.name)) {
                after.push(o.clone());
            }
        }
        let (old, new) = (to_model(&before), to_model(&after));
        // Changed: every Ingress whose object differs, appeared or disappeared.
        let mut changed: Vec<ObjectRef> = Vec::new();
        for ingress in old.iter().chain(&new) {
            let object = ingress.object_ref();
            let was = old.iter().find(|i| i.object_ref() == object);
            let is = new.iter().find(|i| i.object_ref() == object);
            if was != is && !changed.contains(&object) {
                changed.push(object);
            }
        }
        let options = TableOptions {
            default_backend: controller_default.then(controller_backend),
            ..TableOptions::default()
        };
        let previous = RouteTable::build(&old, options.clone());
        let updated = previous.update(&new, &changed);
        let full = RouteTable::build(&new, options);
        prop_assert_eq!(updated.diagnostics(), full.diagnostics());
        prop_assert_eq!(updated.ingresses(), full.ingresses());
        prop_assert_eq!(updated.rule_count(), full.rule_count());
        for host in REQUEST_HOSTS.iter().map(|h| Some(*h)).chain([None]) {
            for (_, path) in &requests {
                let got = updated.route(host, path).map(from_table);
                let want = full.route(host, path).map(from_table);
                prop_assert_eq!(got, want, "request {:?} {:?}", host, path);
            }
        }
    }
}
