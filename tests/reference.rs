//! The compiled table against a naive reference matcher: routing contract §4 transcribed as
//! linear scans (`common/reference_matcher.rs`, shared with the `route` fuzz target).
//!
//! Generated inputs overlap heavily (few hosts, few path segments, few timestamps) so that every
//! precedence step and every fallback is exercised. Only valid Ingresses with canonical rule paths
//! are generated: quarantine and normalisation warnings are tested in `spec_examples.rs`, and the
//! reference does not model them.

#[path = "common/reference_matcher.rs"]
mod reference_matcher;

use ingress_router::model::{ObjectRef, PathType};
use ingress_router::{canonical_path, CanonicalOptions};
use ingress_router::{ImplementationSpecific, RouteTable, TableOptions};
use proptest::prelude::*;
use proptest::sample::select;
use reference_matcher::{
    controller_backend, from_table, path_string, prefix_matches, to_model, GenIngress, GenPath,
    GenRule, Reference,
};

const RULE_HOSTS: &[&str] = &["*.a.com", "b.a.com", "a.com", "x.b.a.com", "*.b.a.com"];
const REQUEST_HOSTS: &[&str] = &["b.a.com", "a.com", "x.b.a.com", "c.a.com", "b.b.a.com"];
const SEGMENTS: &[&str] = &["a", "b", "ab"];
const NAMES: &[&str] = &["a", "b", "c", "d", "e", "f"];

/// Many segments, for nodes with more children than the table compares one by one: short
/// ones, and long ones alike in length, in their first eight bytes, or both.
const WIDE_SEGMENTS: &[&str] = &[
    "a",
    "b",
    "ab",
    "s0",
    "s1",
    "s2",
    "s3",
    "s4",
    "s5",
    "s6",
    "s7",
    "s8",
    "s9",
    "s10",
    "s11",
    "s12",
    "s13",
    "s14",
    "s15",
    "s16",
    "s17",
    "s18",
    "s19",
    "s20",
    "s21",
    "s22",
    "s23",
    "abcdefgh",
    "abcdefghi",
    "abcdefghj",
    "abcdefgha",
    "abcdefghij",
    "abcdefgi",
    "bbcdefgh",
    "segment-one",
    "segment-two",
    "segment-ten",
];

fn request_path() -> impl Strategy<Value = String> {
    request_path_from(SEGMENTS, 3)
}

fn request_path_from(
    segments: &'static [&'static str],
    depth: usize,
) -> impl Strategy<Value = String> {
    (
        prop::collection::vec(select(segments), 0..=depth),
        any::<bool>(),
    )
        .prop_map(|(segments, slash)| path_string(&segments, slash))
}

fn gen_path() -> impl Strategy<Value = GenPath> {
    gen_path_from(SEGMENTS, 3)
}

fn gen_path_from(
    segments: &'static [&'static str],
    depth: usize,
) -> impl Strategy<Value = GenPath> {
    let path_type = select(
        &[
            PathType::Exact,
            PathType::Prefix,
            PathType::ImplementationSpecific,
        ][..],
    );
    (path_type, request_path_from(segments, depth), 0..4u8).prop_map(|(path_type, path, empty)| {
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
    gen_rule_from(prop::collection::vec(gen_path(), 1..=4))
}

fn gen_rule_from(paths: impl Strategy<Value = Vec<GenPath>>) -> impl Strategy<Value = GenRule> {
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
    gen_ingresses_from(gen_rule())
}

/// Ingresses with many paths of one or two segments from [`WIDE_SEGMENTS`]: a host's paths
/// have tens of first segments, and some of them tens of second ones.
fn gen_wide_ingresses() -> impl Strategy<Value = Vec<GenIngress>> {
    gen_ingresses_from(gen_rule_from(prop::collection::vec(
        gen_path_from(WIDE_SEGMENTS, 2),
        1..=16,
    )))
}

fn gen_ingresses_from(
    rule: impl Strategy<Value = GenRule>,
) -> impl Strategy<Value = Vec<GenIngress>> {
    let one = (
        select(&["n1", "n2"][..]),
        prop::option::of(1..=3i64),
        prop::collection::vec(rule, 0..=3),
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

fn wide_requests() -> impl Strategy<Value = Vec<(Option<&'static str>, String)>> {
    prop::collection::vec(
        (
            prop::option::of(select(REQUEST_HOSTS)),
            request_path_from(WIDE_SEGMENTS, 3),
        ),
        1..=48,
    )
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
        agrees_with_reference(&ingresses, &requests)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// The same on hosts with tens of paths per node, which the table looks up by hash.
    #[test]
    fn wide_nodes_agree_with_reference_matcher(
        ingresses in gen_wide_ingresses(),
        requests in wide_requests(),
    ) {
        agrees_with_reference(&ingresses, &requests)?;
    }
}

/// The table built from `ingresses`, with each `ImplementationSpecific` mode and with and
/// without a controller default, routes `requests` as the reference does.
fn agrees_with_reference(
    ingresses: &[GenIngress],
    requests: &[(Option<&'static str>, String)],
) -> Result<(), TestCaseError> {
    // Generated rule paths are canonical, so no rule is dropped for normalisation.
    for g in ingresses {
        for gp in g.rules.iter().flat_map(|r| r.paths.iter().flatten()) {
            if !gp.path.is_empty() {
                let canonical = canonical_path(&gp.path, &CanonicalOptions::default());
                prop_assert!(
                    canonical.is_ok_and(|c| !c.is_modified()),
                    "{:?} is not canonical",
                    gp.path
                );
            }
        }
    }
    let model = to_model(ingresses);
    for implementation_specific in [
        ImplementationSpecific::Prefix,
        ImplementationSpecific::Exact,
    ] {
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
            prop_assert!(
                diagnostics.quarantined.is_empty(),
                "quarantined: {:?}",
                diagnostics.quarantined
            );
            let reference = Reference {
                ingresses,
                implementation_specific,
                controller_default,
            };
            for (host, path) in requests {
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
    Ok(())
}

/// The reference's own path matching, pinned to the routing contract §4 examples so it cannot
/// drift.
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
