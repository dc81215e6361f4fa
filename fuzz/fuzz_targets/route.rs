//! The compiled table answers every request exactly as the reference matcher of
//! `tests/reference.rs` (routing contract §4 as linear scans), for structured arbitrary rule
//! sets and requests; routing whole requests agrees with canonicalising and then routing; and a
//! table updated incrementally answers as one built from scratch.
//!
//! Hosts, names and path segments come from small pools so that rules overlap and every
//! precedence step and fallback is reached; request targets may also be arbitrary text.
#![no_main]

#[path = "../../tests/common/reference_matcher.rs"]
mod reference_matcher;

use arbitrary::Arbitrary;
use http::{Request, Version};
use ingress_router::model::PathType;
use ingress_router::{
    canonical_path, CanonicalOptions, ImplementationSpecific, ObjectRef, PathMode, RouteTable,
    TableOptions,
};
use libfuzzer_sys::fuzz_target;
use reference_matcher::{
    controller_backend, from_table, path_string, to_model, GenIngress, GenPath, GenRule, Reference,
};

const RULE_HOSTS: &[&str] = &[
    "*.a.com",
    "b.a.com",
    "a.com",
    "x.b.a.com",
    "*.b.a.com",
    "*.com",
];
const REQUEST_HOSTS: &[&str] = &[
    "b.a.com",
    "a.com",
    "x.b.a.com",
    "c.a.com",
    "b.b.a.com",
    "com",
    "a.b.c.a.com",
];
/// Canonical segments, including router syntax (`:a`, `*`, `{a}`) that must be taken literally.
const SEGMENTS: &[&str] = &["a", "b", "ab", "A", "...", ":a", "*", "{a}"];
const NAMESPACES: &[&str] = &["n1", "n2"];
const NAMES: &[&str] = &["a", "b", "c", "d", "e", "f", "g", "h"];

const MAX_INGRESSES: usize = 8;
const MAX_RULES: usize = 4;
const MAX_PATHS: usize = 4;
const MAX_SEGMENTS: usize = 4;
const MAX_REQUESTS: usize = 16;

fn pick<T: Copy>(pool: &[T], i: u8) -> T {
    pool[usize::from(i) % pool.len()]
}

#[derive(Arbitrary, Debug)]
struct FuzzPath {
    path_type: u8,
    segments: Vec<u8>,
    trailing_slash: bool,
    /// An empty ImplementationSpecific path, which means `/`.
    empty: bool,
}

#[derive(Arbitrary, Debug)]
struct FuzzRule {
    host: Option<u8>,
    /// A rule with a host may have no `http` section.
    no_http: bool,
    paths: Vec<FuzzPath>,
}

#[derive(Arbitrary, Debug)]
struct FuzzIngress {
    namespace: u8,
    name: u8,
    created: Option<u8>,
    rules: Vec<FuzzRule>,
    default_backend: bool,
}

#[derive(Arbitrary, Debug)]
enum Target {
    /// A canonical path from the segment pool, with an optional query.
    Segments {
        segments: Vec<u8>,
        trailing_slash: bool,
        query: bool,
    },
    /// Anything: canonicalised (or rejected) before matching.
    Text(String),
}

#[derive(Arbitrary, Debug)]
struct FuzzRequest {
    /// `None`: an HTTP/1.0 request without `Host`.
    host: Option<u8>,
    /// Bit 0: upper case; bit 1: a port; bit 2: a trailing dot. All canonicalised away.
    host_form: u8,
    target: Target,
}

#[derive(Arbitrary, Debug)]
struct Input {
    ingresses: Vec<FuzzIngress>,
    requests: Vec<FuzzRequest>,
    implementation_specific_exact: bool,
    controller_default: bool,
    /// 0: normalise, 1: strict, 2: raw.
    path_mode: u8,
    /// How many of the Ingresses the table starts with before the update adds the rest.
    update_from: u8,
}

fn segments(pool_indexes: &[u8]) -> Vec<&'static str> {
    pool_indexes
        .iter()
        .take(MAX_SEGMENTS)
        .map(|&i| pick(SEGMENTS, i))
        .collect()
}

fn gen_path(p: &FuzzPath) -> GenPath {
    let path_type = pick(
        &[
            PathType::Exact,
            PathType::Prefix,
            PathType::ImplementationSpecific,
        ],
        p.path_type,
    );
    let path = if path_type == PathType::ImplementationSpecific && p.empty {
        String::new()
    } else {
        path_string(&segments(&p.segments), p.trailing_slash)
    };
    GenPath { path_type, path }
}

fn gen_rule(r: &FuzzRule) -> Option<GenRule> {
    let host = r.host.map(|h| pick(RULE_HOSTS, h));
    let paths: Vec<GenPath> = r.paths.iter().take(MAX_PATHS).map(gen_path).collect();
    if host.is_some() && r.no_http {
        return Some(GenRule { host, paths: None });
    }
    // `http` needs paths; a host-less rule without them means nothing.
    (!paths.is_empty()).then_some(GenRule {
        host,
        paths: Some(paths),
    })
}

/// Valid Ingresses with distinct names, as the reference expects.
fn gen_ingresses(input: &[FuzzIngress]) -> Vec<GenIngress> {
    let mut out: Vec<GenIngress> = Vec::new();
    for g in input.iter().take(MAX_INGRESSES) {
        let namespace = pick(NAMESPACES, g.namespace);
        let name = pick(NAMES, g.name);
        if out
            .iter()
            .any(|o| (o.namespace, o.name) == (namespace, name))
        {
            continue;
        }
        let rules: Vec<GenRule> = g
            .rules
            .iter()
            .take(MAX_RULES)
            .filter_map(gen_rule)
            .collect();
        out.push(GenIngress {
            namespace,
            name,
            created: g.created.map(|c| i64::from(c % 4)),
            // An Ingress needs rules or a defaultBackend.
            default_backend: g.default_backend || rules.is_empty(),
            rules,
        });
    }
    out
}

/// The request-target and the `Host` header value (`None`: no header, HTTP/1.0), with the
/// canonical host the reference routes on.
fn gen_request(r: &FuzzRequest) -> (String, Option<String>, Option<&'static str>) {
    let target = match &r.target {
        Target::Segments {
            segments: s,
            trailing_slash,
            query,
        } => {
            let mut target = path_string(&segments(s), *trailing_slash);
            if *query {
                target.push_str("?q=/a/b");
            }
            target
        }
        Target::Text(text) => text.clone(),
    };
    let Some(h) = r.host else {
        return (target, None, None);
    };
    let canonical = pick(REQUEST_HOSTS, h);
    let mut header = canonical.to_owned();
    if r.host_form & 1 != 0 {
        header.make_ascii_uppercase();
    }
    if r.host_form & 4 != 0 {
        header.push('.');
    }
    if r.host_form & 2 != 0 {
        header.push_str(":8080");
    }
    (target, Some(header), Some(canonical))
}

fuzz_target!(|input: Input| {
    let ingresses = gen_ingresses(&input.ingresses);
    let model = to_model(&ingresses);
    let implementation_specific = if input.implementation_specific_exact {
        ImplementationSpecific::Exact
    } else {
        ImplementationSpecific::Prefix
    };
    let mode = pick(
        &[PathMode::Normalize, PathMode::Strict, PathMode::Raw],
        input.path_mode,
    );
    let options = TableOptions {
        default_backend: input.controller_default.then(controller_backend),
        implementation_specific,
        canonical: CanonicalOptions {
            mode,
            ..CanonicalOptions::default()
        },
        ..TableOptions::default()
    };
    let table = RouteTable::build(&model, options.clone());
    // Only valid rules are generated: a quarantine would make the comparison meaningless.
    assert!(
        table.diagnostics().quarantined.is_empty(),
        "quarantined: {:?}",
        table.diagnostics().quarantined
    );
    let reference = Reference {
        ingresses: &ingresses,
        implementation_specific,
        controller_default: input.controller_default,
    };

    // The same table, reached by an update that adds the Ingresses after the first few.
    let split = usize::from(input.update_from).min(model.len());
    let added: Vec<ObjectRef> = model[split..].iter().map(|i| i.object_ref()).collect();
    let updated = RouteTable::build(&model[..split], options).update(&model, &added);
    assert_eq!(updated.diagnostics(), table.diagnostics());
    assert_eq!(updated.ingresses(), table.ingresses());
    assert_eq!(updated.rule_count(), table.rule_count());

    for r in input.requests.iter().take(MAX_REQUESTS) {
        let (target, header, host) = gen_request(r);
        let mut builder = Request::builder().uri(target.as_str());
        builder = match &header {
            Some(value) => builder.version(Version::HTTP_11).header("host", value),
            None => builder.version(Version::HTTP_10),
        };
        let request = builder.body(()).ok();
        // What the table is asked to canonicalise: the target as the request holds it.
        let received = match &request {
            Some(request) => {
                if request.uri().authority().is_some() {
                    // An absolute-form target names its own host; not what is tested here.
                    continue;
                }
                request.uri().path_and_query().map_or("/", |pq| pq.as_str())
            }
            None => target.as_str(),
        };
        let canonical = canonical_path(received, &table.options().canonical);

        if let Ok(path) = &canonical {
            let path = path.path();
            let want = reference.route(host, path);
            let got = table.route(host, path).map(from_table);
            assert_eq!(got, want, "{host:?} {path:?}");
            let got = updated.route(host, path).map(from_table);
            assert_eq!(got, want, "updated table: {host:?} {path:?}");
        }

        if let Some(request) = &request {
            match (table.route_request(request), &canonical) {
                (Ok(routed), Ok(path)) => {
                    assert_eq!(routed.host.name(), host, "{header:?}");
                    assert_eq!(&routed.path, path);
                    let want = reference.route(host, path.path());
                    assert_eq!(routed.route.map(from_table), want, "{request:?}");
                }
                (Ok(routed), Err(rejection)) => {
                    panic!("{request:?} routed to {routed:?}, its path alone is {rejection:?}")
                }
                (Err(rejection), Ok(_)) => panic!("{request:?} rejected: {rejection:?}"),
                (Err(_), Err(_)) => {}
            }
        }
    }
});
