//! routing contract §6 worked examples, and one test per §4 matching and fallback rule the table
//! leaves out.
//!
//! Requests go through `RouteTable::route_request`, so the §5 canonicalisation applies.

mod common;

use common::{get, ingress, path, rule, rule_without_http, send, service_backend, service_of};
use ingress_router::model::{Ingress, ObjectKind, PathType};
use ingress_router::{
    Backend, Fallback, ImplementationSpecific, ObjectRef, RouteMatch, RouteTable, TableOptions,
};

fn table(ingresses: &[Ingress]) -> RouteTable {
    RouteTable::build(ingresses, TableOptions::default())
}

fn with_controller_default(ingresses: &[Ingress], backend: &str) -> RouteTable {
    let options = TableOptions {
        default_backend: Some(service_backend("ctl", backend)),
        ..TableOptions::default()
    };
    RouteTable::build(ingresses, options)
}

fn object(namespace: &str, name: &str) -> ObjectRef {
    ObjectRef {
        kind: ObjectKind::Ingress,
        namespace: Some(namespace.to_owned()),
        name: name.to_owned(),
    }
}

/// What routing a request gave, in the terms the spec uses.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// A rule matched: its host and path as written, and its path type.
    Rule(Option<String>, String, PathType),
    /// A fallback answered, with the Ingress whose defaultBackend it is.
    Fallback(Fallback, Option<ObjectRef>),
    NoMatch,
    Rejected(u16),
}

fn outcome_of(route: Option<RouteMatch<'_>>) -> Outcome {
    match route {
        None => Outcome::NoMatch,
        Some(m) => match (m.rule(), m.fallback()) {
            (Some(r), None) => {
                Outcome::Rule(r.host.map(str::to_owned), r.path.to_owned(), r.path_type)
            }
            (None, Some(f)) => Outcome::Fallback(f, m.ingress().cloned()),
            (rule, fallback) => {
                panic!("a route is a rule or a fallback, got {rule:?} and {fallback:?}")
            }
        },
    }
}

fn outcome(table: &RouteTable, host: Option<&str>, target: &str) -> Outcome {
    let req = get(host, target);
    match table.route_request(&req) {
        Ok(routed) => outcome_of(routed.route),
        Err(rejection) => Outcome::Rejected(rejection.status().as_u16()),
    }
}

fn prefix(p: &str) -> Outcome {
    Outcome::Rule(None, p.to_owned(), PathType::Prefix)
}

fn exact(p: &str) -> Outcome {
    Outcome::Rule(None, p.to_owned(), PathType::Exact)
}

fn on_host(host: &str, p: &str) -> Outcome {
    Outcome::Rule(Some(host.to_owned()), p.to_owned(), PathType::Prefix)
}

/// One Ingress `default/example` with the given rules.
fn rules(rules: Vec<ingress_router::model::IngressRule>) -> Vec<Ingress> {
    let mut b = ingress("default", "example").created(0);
    for r in rules {
        b = b.rule(r);
    }
    vec![b.build()]
}

/// Host-less rules `(type, path)` in one Ingress.
fn paths(list: &[(&str, &str)]) -> Vec<Ingress> {
    let paths = list
        .iter()
        .enumerate()
        .map(|(i, (t, p))| path(t, p, &format!("svc-{i}")))
        .collect();
    rules(vec![rule("", paths)])
}

/// Requests of one table row: (request host, request target, result).
type Requests<'a> = Vec<(Option<&'a str>, &'a str, Outcome)>;

/// The Service that answers and the fallback taken, or `None` for 404.
type Answer<'a> = Option<(&'a str, Fallback)>;

#[test]
fn spec_section_6_worked_examples() {
    const H: Option<&str> = Some("example.com");
    let h_fallback =
        Outcome::Fallback(Fallback::IngressDefault, Some(object("default", "example")));

    // (rules as in the table, Ingresses, [(request host, request target, result)])
    let table_rows: Vec<(&str, Vec<Ingress>, Requests)> = vec![
        (
            "Prefix /",
            paths(&[("Prefix", "/")]),
            vec![
                (H, "/", prefix("/")),
                (H, "/anything", prefix("/")),
                (H, "/a/b/", prefix("/")),
                (H, "/x?q=1", prefix("/")),
                (None, "/", prefix("/")),
            ],
        ),
        (
            "Prefix /api",
            paths(&[("Prefix", "/api")]),
            vec![
                (H, "/api", prefix("/api")),
                (H, "/api/", prefix("/api")),
                (H, "/api/v1", prefix("/api")),
                (H, "/apis", Outcome::NoMatch),
                (H, "/API", Outcome::NoMatch),
            ],
        ),
        (
            "Prefix /api/",
            paths(&[("Prefix", "/api/")]),
            vec![(H, "/api", prefix("/api/"))],
        ),
        (
            "Exact /api",
            paths(&[("Exact", "/api")]),
            vec![
                (H, "/api/", Outcome::NoMatch),
                (H, "/api?x=1", exact("/api")),
            ],
        ),
        (
            "Prefix /a, Prefix /a/b",
            paths(&[("Prefix", "/a"), ("Prefix", "/a/b")]),
            vec![(H, "/a/b/c", prefix("/a/b")), (H, "/a/bc", prefix("/a"))],
        ),
        (
            "Prefix /foo, Exact /foo",
            paths(&[("Prefix", "/foo"), ("Exact", "/foo")]),
            vec![(H, "/foo", exact("/foo")), (H, "/foo/x", prefix("/foo"))],
        ),
        (
            "Exact /foo, Prefix /foo/",
            paths(&[("Exact", "/foo"), ("Prefix", "/foo/")]),
            vec![(H, "/foo", exact("/foo"))],
        ),
        (
            "Prefix /foo, Prefix /foo/",
            paths(&[("Prefix", "/foo"), ("Prefix", "/foo/")]),
            vec![(H, "/foo", prefix("/foo/"))],
        ),
        (
            "host *.foo.com",
            rules(vec![rule("*.foo.com", vec![path("Prefix", "/", "wild")])]),
            vec![
                (Some("A.Foo.com:8080"), "/", on_host("*.foo.com", "/")),
                (Some("a.b.foo.com"), "/", Outcome::NoMatch),
                (Some("foo.com"), "/", Outcome::NoMatch),
            ],
        ),
        (
            "*.foo.com and bar.foo.com",
            rules(vec![
                rule("*.foo.com", vec![path("Prefix", "/", "wild")]),
                rule("bar.foo.com", vec![path("Prefix", "/", "bar")]),
            ]),
            vec![(Some("bar.foo.com"), "/", on_host("bar.foo.com", "/"))],
        ),
        (
            "host h with /x; host-less /y",
            vec![ingress("default", "example")
                .created(0)
                .default_backend("h-default")
                .rule(rule("h", vec![path("Prefix", "/x", "x")]))
                .rule(rule("", vec![path("Prefix", "/y", "y")]))
                .build()],
            vec![
                (Some("h"), "/y", h_fallback.clone()),
                (Some("h"), "/x", on_host("h", "/x")),
                (Some("other"), "/y", prefix("/y")),
            ],
        ),
        (
            "Prefix /public, Exact /admin",
            paths(&[("Prefix", "/public"), ("Exact", "/admin")]),
            vec![
                (H, "/public/../admin", exact("/admin")),
                (H, "/public/%2e%2e/admin", exact("/admin")),
                (H, "/admin%2F", Outcome::Rejected(400)),
            ],
        ),
    ];

    let mut failures = Vec::new();
    for (rules, ingresses, requests) in &table_rows {
        let table = table(ingresses);
        for (host, target, want) in requests {
            let got = outcome(&table, *host, target);
            if &got != want {
                failures.push(format!(
                    "rules [{rules}], request {host:?} {target:?}: want {want:?}, got {got:?}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn exact_host_beats_wildcard() {
    // The wildcard rule is in the older Ingress, so age cannot be what decides.
    let ingresses = [
        ingress("default", "wild")
            .created(0)
            .path("*.foo.com", "Prefix", "/", "wild")
            .build(),
        ingress("default", "bar")
            .created(1)
            .path("bar.foo.com", "Prefix", "/", "bar")
            .build(),
    ];
    let t = table(&ingresses);
    assert_eq!(
        service_of(send(&t, Some("bar.foo.com"), "/")).as_deref(),
        Some("bar")
    );
    assert_eq!(
        service_of(send(&t, Some("baz.foo.com"), "/")).as_deref(),
        Some("wild")
    );
}

#[test]
fn wildcard_matches_exactly_one_label() {
    let ingresses = [ingress("default", "wild")
        .created(0)
        .path("*.foo.com", "Prefix", "/", "wild")
        .build()];
    let t = table(&ingresses);
    let cases = [
        ("bar.foo.com", true),
        ("x-1.foo.com", true),
        ("BAR.FOO.COM.", true),
        ("foo.com", false),
        ("a.b.foo.com", false),
        ("barfoo.com", false),
        ("bar.foo.com.evil", false),
    ];
    for (host, matches) in cases {
        let got = service_of(send(&t, Some(host), "/"));
        assert_eq!(got.is_some(), matches, "request host {host}: got {got:?}");
    }
}

#[test]
fn selected_host_never_falls_through_to_another_host_or_host_less_rules() {
    let ingresses = [
        ingress("default", "exact")
            .created(2)
            .path("bar.foo.com", "Prefix", "/only", "exact-only")
            .build(),
        ingress("default", "wild")
            .created(0)
            .path("*.foo.com", "Prefix", "/", "wild-root")
            .build(),
        ingress("default", "catch-all")
            .created(1)
            .path("", "Prefix", "/", "hostless-root")
            .build(),
    ];
    let t = table(&ingresses);
    // (host, path, expected Service or 404)
    let cases = [
        ("bar.foo.com", "/only/x", Some("exact-only")),
        // bar.foo.com is selected; neither the wildcard's nor the host-less `/` may answer.
        ("bar.foo.com", "/other", None),
        ("baz.foo.com", "/other", Some("wild-root")),
        ("elsewhere.org", "/other", Some("hostless-root")),
    ];
    for (host, target, want) in cases {
        assert_eq!(
            service_of(send(&t, Some(host), target)).as_deref(),
            want,
            "{host}{target}"
        );
    }
    // The same holds for a selected wildcard host with no matching path.
    let ingresses = [
        ingress("default", "wild")
            .created(0)
            .path("*.foo.com", "Exact", "/x", "wild-x")
            .build(),
        ingress("default", "catch-all")
            .created(1)
            .path("", "Prefix", "/", "hostless-root")
            .build(),
    ];
    let t = table(&ingresses);
    assert_eq!(service_of(send(&t, Some("a.foo.com"), "/y")), None);
}

#[test]
fn implementation_specific_is_prefix_by_default_and_exact_by_option() {
    let ingresses = paths(&[("ImplementationSpecific", "/docs")]);
    let as_exact = RouteTable::build(
        &ingresses,
        TableOptions {
            implementation_specific: ImplementationSpecific::Exact,
            ..TableOptions::default()
        },
    );
    let as_prefix = table(&ingresses);
    let matched = Some("svc-0");
    // (request, with the default, with Exact)
    let cases = [
        ("/docs", matched, matched),
        ("/docs/", matched, None),
        ("/docs/a", matched, None),
        ("/docsx", None, None),
    ];
    for (target, by_default, by_exact) in cases {
        let h = Some("example.com");
        assert_eq!(
            service_of(send(&as_prefix, h, target)).as_deref(),
            by_default,
            "default, {target}"
        );
        assert_eq!(
            service_of(send(&as_exact, h, target)).as_deref(),
            by_exact,
            "Exact, {target}"
        );
    }
    // The match reports the type as written, not as interpreted.
    let m = send(&as_exact, Some("example.com"), "/docs").and_then(|m| m.rule());
    assert_eq!(
        m.map(|r| r.path_type),
        Some(PathType::ImplementationSpecific)
    );
}

#[test]
fn empty_implementation_specific_path_means_root() {
    let mut absent = path("ImplementationSpecific", "", "absent");
    absent.path = None;
    for (written, p) in [
        ("empty", path("ImplementationSpecific", "", "empty")),
        ("absent", absent),
    ] {
        let backend = p.backend.service.as_ref().map(|s| s.name.clone());
        let ingresses = rules(vec![rule("example.com", vec![p])]);
        let t = table(&ingresses);
        assert!(
            t.diagnostics().quarantined.is_empty(),
            "{written}: quarantined"
        );
        for target in ["/", "/a", "/a/b/"] {
            let m = send(&t, Some("example.com"), target);
            assert_eq!(service_of(m), backend, "{written} path, request {target}");
            assert_eq!(
                m.and_then(|m| m.rule()).map(|r| r.path),
                Some(""),
                "{written}, {target}"
            );
        }
    }
}

#[test]
fn precedence_order() {
    let h = "example.com";
    // Each case pits one precedence step against every step below it: the rule that should win
    // is always the one the lower steps would reject.
    let cases: Vec<(&str, Vec<Ingress>, &str, &str)> = vec![
        (
            "Exact beats Prefix, even a newer Exact against an older Prefix",
            vec![
                ingress("default", "old")
                    .created(0)
                    .path(h, "Prefix", "/foo", "prefix")
                    .build(),
                ingress("default", "new")
                    .created(9)
                    .path(h, "Exact", "/foo", "exact")
                    .build(),
            ],
            "/foo",
            "exact",
        ),
        (
            "longest Prefix beats an older, shorter one",
            vec![
                ingress("default", "old")
                    .created(0)
                    .path(h, "Prefix", "/a", "short")
                    .build(),
                ingress("default", "new")
                    .created(9)
                    .path(h, "Prefix", "/a/b", "long")
                    .build(),
            ],
            "/a/b/c",
            "long",
        ),
        (
            "length counts elements, not bytes",
            vec![
                ingress("default", "old")
                    .created(0)
                    .path(h, "Prefix", "/aaaaaaaa", "bytes")
                    .build(),
                ingress("default", "new")
                    .created(9)
                    .path(h, "Prefix", "/aaaaaaaa/b", "elements")
                    .build(),
            ],
            "/aaaaaaaa/b",
            "elements",
        ),
        (
            "/foo/ beats an older /foo",
            vec![
                ingress("default", "old")
                    .created(0)
                    .path(h, "Prefix", "/foo", "no-slash")
                    .build(),
                ingress("default", "new")
                    .created(9)
                    .path(h, "Prefix", "/foo/", "slash")
                    .build(),
            ],
            "/foo/x",
            "slash",
        ),
        (
            "older Ingress beats namespace/name order",
            vec![
                ingress("a", "a")
                    .created(9)
                    .path(h, "Prefix", "/foo", "aa-newer")
                    .build(),
                ingress("z", "z")
                    .created(0)
                    .path(h, "Prefix", "/foo", "zz-older")
                    .build(),
            ],
            "/foo",
            "zz-older",
        ),
        (
            "same age: namespace before name",
            vec![
                ingress("b", "a")
                    .created(0)
                    .path(h, "Prefix", "/foo", "b-a")
                    .build(),
                ingress("a", "z")
                    .created(0)
                    .path(h, "Prefix", "/foo", "a-z")
                    .build(),
            ],
            "/foo",
            "a-z",
        ),
        (
            "same age, same namespace: name",
            vec![
                ingress("a", "y")
                    .created(0)
                    .path(h, "Prefix", "/foo", "a-y")
                    .build(),
                ingress("a", "x")
                    .created(0)
                    .path(h, "Prefix", "/foo", "a-x")
                    .build(),
            ],
            "/foo",
            "a-x",
        ),
        (
            "one Ingress: rule order",
            vec![ingress("default", "one")
                .created(0)
                .rule(rule(
                    h,
                    vec![
                        path("Prefix", "/foo", "first"),
                        path("Prefix", "/foo", "second"),
                    ],
                ))
                .build()],
            "/foo",
            "first",
        ),
        (
            "one Ingress: earlier rule before later rule of the same host",
            vec![ingress("default", "one")
                .created(0)
                .path(h, "Prefix", "/foo", "rule-0")
                .path(h, "Prefix", "/foo", "rule-1")
                .build()],
            "/foo",
            "rule-0",
        ),
    ];
    for (what, ingresses, target, want) in cases {
        // Input order must not matter when timestamps or names decide.
        for order in [false, true] {
            let mut ingresses = ingresses.clone();
            if order {
                ingresses.reverse();
            }
            let t = table(&ingresses);
            assert_eq!(
                service_of(send(&t, Some(h), target)).as_deref(),
                Some(want),
                "{what} (input reversed: {order})"
            );
        }
    }
}

#[test]
fn identical_rules_in_two_ingresses_conflict_and_the_older_wins() {
    let ingresses = [
        ingress("default", "newer")
            .created(5)
            .path("example.com", "Prefix", "/app", "newer-app")
            .build(),
        ingress("default", "older")
            .created(1)
            .path("example.com", "Prefix", "/other", "older-other")
            .path("example.com", "Prefix", "/app", "older-app")
            .build(),
    ];
    let t = table(&ingresses);
    assert_eq!(
        service_of(send(&t, Some("example.com"), "/app")).as_deref(),
        Some("older-app")
    );

    let conflicts = &t.diagnostics().conflicts;
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    let c = &conflicts[0];
    assert_eq!(c.host.as_deref(), Some("example.com"));
    assert_eq!((c.path.as_str(), c.path_type), ("/app", PathType::Prefix));
    assert_eq!(c.winner.ingress, object("default", "older"));
    assert_eq!(c.winner.field, "spec.rules[1].http.paths[0]");
    let losers: Vec<_> = c
        .losers
        .iter()
        .map(|l| (&l.ingress, l.field.as_str()))
        .collect();
    assert_eq!(
        losers,
        [(&object("default", "newer"), "spec.rules[0].http.paths[0]")]
    );
}

#[test]
fn same_path_with_another_type_is_not_a_conflict() {
    let ingresses = [
        ingress("default", "a")
            .created(0)
            .path("example.com", "Prefix", "/app", "p")
            .build(),
        ingress("default", "b")
            .created(1)
            .path("example.com", "Exact", "/app", "e")
            .build(),
    ];
    let t = table(&ingresses);
    assert!(
        t.diagnostics().conflicts.is_empty(),
        "{:?}",
        t.diagnostics().conflicts
    );
}

#[test]
fn ingresses_without_timestamp_are_newer_and_keep_input_order() {
    let unstamped = |name: &str| {
        ingress("default", name)
            .path("example.com", "Prefix", "/", name)
            .build()
    };
    let stamped = ingress("default", "stamped")
        .created(100)
        .path("example.com", "Prefix", "/", "stamped")
        .build();
    let cases = [
        // Any timestamp beats none, wherever it sits in the input.
        (
            vec![unstamped("a"), unstamped("b"), stamped.clone()],
            "stamped",
        ),
        // Among unstamped Ingresses the first in the input wins, not the first by name.
        (vec![unstamped("zz"), unstamped("aa")], "zz"),
        (vec![unstamped("aa"), unstamped("zz")], "aa"),
    ];
    for (ingresses, want) in cases {
        let names: Vec<_> = ingresses.iter().map(|i| i.metadata.name.clone()).collect();
        let t = table(&ingresses);
        assert_eq!(
            service_of(send(&t, Some("example.com"), "/")).as_deref(),
            Some(want),
            "input {names:?}"
        );
        let winner = &t.diagnostics().conflicts[0].winner.ingress.name;
        assert_eq!(winner, want, "conflict winner for input {names:?}");
    }
}

#[test]
fn host_selected_without_path_match_uses_oldest_ingress_default_of_that_host() {
    let ingresses = [
        // Rule-less catch-all and another host's default: neither may answer for foo.com.
        ingress("default", "catch-all")
            .created(0)
            .default_backend("catch-all")
            .build(),
        ingress("default", "other-host")
            .created(0)
            .default_backend("other-default")
            .path("other.com", "Prefix", "/", "other")
            .build(),
        ingress("default", "foo-newer")
            .created(5)
            .default_backend("foo-newer-default")
            .path("foo.com", "Prefix", "/a", "foo-a")
            .build(),
        ingress("default", "foo-no-default")
            .created(1)
            .path("foo.com", "Prefix", "/b", "foo-b")
            .build(),
        ingress("default", "foo-older")
            .created(2)
            .default_backend("foo-older-default")
            .path("foo.com", "Exact", "/c", "foo-c")
            .build(),
    ];
    let t = with_controller_default(&ingresses, "controller");
    let m = send(&t, Some("foo.com"), "/zzz").expect("a fallback answers");
    assert_eq!(m.fallback(), Some(Fallback::IngressDefault));
    assert_eq!(m.ingress(), Some(&object("default", "foo-older")));
    assert_eq!(
        m.backend(),
        &service_backend("default", "foo-older-default")
    );
    assert!(m.rule().is_none());

    // Without Ingress defaults for the host: the controller default, else 404.
    let without: Vec<Ingress> = ingresses
        .iter()
        .filter(|i| !i.metadata.name.starts_with("foo-") || i.metadata.name == "foo-no-default")
        .cloned()
        .collect();
    let t = with_controller_default(&without, "controller");
    let m = send(&t, Some("foo.com"), "/zzz").expect("the controller default answers");
    assert_eq!(m.fallback(), Some(Fallback::ControllerDefault));
    assert_eq!(m.ingress(), None);
    assert_eq!(m.backend(), &service_backend("ctl", "controller"));
    assert!(send(&table(&without), Some("foo.com"), "/zzz").is_none());
}

#[test]
fn rule_with_host_and_no_http_sends_the_host_to_the_ingress_default() {
    let ingresses = [
        ingress("default", "whole-host")
            .created(1)
            .default_backend("whole-host-default")
            .rule(rule_without_http("foo.com"))
            .build(),
        ingress("default", "catch-all")
            .created(0)
            .path("", "Prefix", "/", "hostless")
            .build(),
    ];
    let t = with_controller_default(&ingresses, "controller");
    for target in ["/", "/a/b", "/x/"] {
        let m = send(&t, Some("foo.com"), target).expect("routed");
        assert_eq!(
            (m.backend(), m.fallback(), m.ingress()),
            (
                &service_backend("default", "whole-host-default"),
                Some(Fallback::IngressDefault),
                Some(&object("default", "whole-host"))
            ),
            "foo.com{target}"
        );
    }
    // Other hosts are not captured.
    assert_eq!(
        service_of(send(&t, Some("bar.com"), "/a")).as_deref(),
        Some("hostless")
    );
}

#[test]
fn no_host_selected_fallback_order() {
    let rule_less = |name: &str, created: i64| {
        ingress("default", name)
            .created(created)
            .default_backend(&format!("{name}-default"))
            .build()
    };
    let host_less_rules = |name: &str, created: i64| {
        ingress("default", name)
            .created(created)
            .default_backend(&format!("{name}-default"))
            .path("", "Exact", "/only", &format!("{name}-only"))
            .build()
    };
    let host_only = ingress("default", "host-only")
        .created(0)
        .default_backend("host-only-default")
        .path("foo.com", "Prefix", "/", "foo")
        .build();

    // Each step removes what answered in the step before.
    // (what answers, Ingresses, controller default set, expected Service and fallback kind)
    let steps: Vec<(&str, Vec<Ingress>, bool, Answer)> = vec![
        (
            "oldest rule-less Ingress",
            vec![
                host_only.clone(),
                host_less_rules("hl-old", 0),
                rule_less("rl-new", 3),
                rule_less("rl-old", 2),
            ],
            true,
            Some(("rl-old-default", Fallback::IngressDefault)),
        ),
        (
            "else oldest Ingress with host-less rules and a defaultBackend",
            vec![
                host_only.clone(),
                host_less_rules("hl-new", 3),
                host_less_rules("hl-old", 2),
            ],
            true,
            Some(("hl-old-default", Fallback::IngressDefault)),
        ),
        (
            "else the controller default",
            vec![host_only.clone()],
            true,
            Some(("controller", Fallback::ControllerDefault)),
        ),
        ("else 404", vec![host_only.clone()], false, None),
    ];
    for (what, ingresses, controller_default, want) in steps {
        let t = if controller_default {
            with_controller_default(&ingresses, "controller")
        } else {
            table(&ingresses)
        };
        // An unknown host, no host at all (HTTP/1.0) and an IP literal all select no virtual host.
        for host in [Some("unknown.org"), None, Some("192.0.2.7:8080")] {
            let m = send(&t, host, "/elsewhere");
            let got = m.map(|m| {
                let name = match m.backend() {
                    Backend::Service(s) => s.name.clone(),
                    other => panic!("{other:?}"),
                };
                (name, m.fallback().expect("a fallback"))
            });
            let want = want.map(|(name, f)| (name.to_owned(), f));
            assert_eq!(got, want, "{what}, host {host:?}");
        }
    }
}

#[test]
fn default_backend_of_ingress_with_only_host_rules_never_catches_other_hosts() {
    let ingresses = [ingress("tenant", "shop")
        .created(0)
        .default_backend("shop-default")
        .path("shop.example.com", "Prefix", "/cart", "cart")
        .build()];
    let t = table(&ingresses);
    assert_eq!(
        service_of(send(&t, Some("shop.example.com"), "/other")).as_deref(),
        Some("shop-default")
    );
    for host in [Some("other.example.com"), None] {
        assert_eq!(service_of(send(&t, host, "/other")), None, "host {host:?}");
    }
}

#[test]
fn invalid_ingress_is_quarantined_and_the_others_still_route() {
    let ingresses = [
        ingress("default", "bad-host")
            .created(0)
            .path("*", "Prefix", "/", "bad")
            .path("good.com", "Prefix", "/", "bad-but-valid-rule")
            .build(),
        ingress("default", "bad-path")
            .created(0)
            .path("path.com", "Prefix", "relative", "bad-path")
            .build(),
        ingress("default", "fine")
            .created(1)
            .path("fine.com", "Prefix", "/", "fine")
            .build(),
    ];
    let t = table(&ingresses);
    // The order of the report is not part of the contract.
    let mut quarantined: Vec<&ObjectRef> = t
        .diagnostics()
        .quarantined
        .iter()
        .map(|q| &q.object)
        .collect();
    quarantined.sort();
    assert_eq!(
        quarantined,
        [
            &object("default", "bad-host"),
            &object("default", "bad-path")
        ]
    );
    for q in &t.diagnostics().quarantined {
        assert!(
            !q.errors.is_empty(),
            "{} quarantined without a reason",
            q.object
        );
    }
    assert_eq!(
        service_of(send(&t, Some("fine.com"), "/")).as_deref(),
        Some("fine")
    );
    // A quarantined Ingress contributes nothing, not even its valid rules.
    assert_eq!(service_of(send(&t, Some("good.com"), "/")), None);
    assert_eq!(service_of(send(&t, Some("path.com"), "/relative")), None);
}

#[test]
fn rule_path_the_normaliser_would_change_warns_and_never_matches() {
    let h = "example.com";
    // (path type, rule path, requests that must not reach it)
    let cases = [
        (
            "ImplementationSpecific",
            "/a//b",
            &["/a//b", "/a/b", "/a/b/c"][..],
        ),
        ("Prefix", "/a%41", &["/a%41", "/aA", "/aA/x"][..]),
        ("Exact", "/a%7e", &["/a%7e", "/a~"][..]),
        ("ImplementationSpecific", "/a/./b", &["/a/./b", "/a/b"][..]),
    ];
    for (path_type, rule_path, requests) in cases {
        let ingresses = [ingress("default", "odd")
            .created(0)
            .rule(rule(
                h,
                vec![
                    path(path_type, rule_path, "odd"),
                    path("Prefix", "/ok", "ok"),
                ],
            ))
            .build()];
        let t = table(&ingresses);
        let diagnostics = t.diagnostics();
        assert!(
            diagnostics.quarantined.is_empty(),
            "{rule_path}: {:?}",
            diagnostics.quarantined
        );
        // Other warnings may exist; exactly one must be about this path.
        let about_path: Vec<_> = diagnostics
            .warnings
            .iter()
            .filter(|w| w.field.starts_with("spec.rules[0].http.paths[0]"))
            .collect();
        assert_eq!(
            about_path.len(),
            1,
            "{rule_path}: {:?}",
            diagnostics.warnings
        );
        let w = about_path[0];
        assert_eq!(w.object, object("default", "odd"), "{rule_path}");
        assert!(
            w.message.contains(rule_path),
            "{rule_path}: warning {:?} does not name the path",
            w.message
        );
        for target in requests {
            assert_eq!(
                service_of(send(&t, Some(h), target)),
                None,
                "{path_type} {rule_path}, request {target}"
            );
        }
        // The sibling rule is unaffected.
        assert_eq!(
            service_of(send(&t, Some(h), "/ok")).as_deref(),
            Some("ok"),
            "{rule_path}"
        );
    }
}
