//! routing contract §3: which Ingresses a controller owns (IngressClass dispatch), one test per
//! rule.
//!
//! Every Ingress here is `default/<name>` with one rule `<name>.example` Prefix `/` → Service
//! `<name>`, so a controller's table shows whether the controller serves it.

mod common;

use common::{ingress, ingress_class, send, service_backend, IngressBuilder};
use ingress_router::model::{IngressClassParametersReference, ObjectKind};
use ingress_router::{
    Backend, Controller, ControllerDispatch, Decision, Dispatch, DispatchError, Dispatcher,
    Fallback, ImplementationSpecific, Ingress, IngressClass, NotServed, ObjectRef, OwnedClass,
    Reason, RouteTable, TableOptions,
};

const A: &str = "a.example/ingress";
const B: &str = "b.example/ingress";
/// A controller that runs in the cluster but is never registered here.
const C: &str = "c.example/ingress";

fn object(name: &str) -> ObjectRef {
    ObjectRef {
        kind: ObjectKind::Ingress,
        namespace: Some("default".to_owned()),
        name: name.to_owned(),
    }
}

fn site(name: &str) -> IngressBuilder {
    ingress("default", name).path(&format!("{name}.example"), "Prefix", "/", name)
}

fn class(name: &str, controller: &str) -> IngressClass {
    ingress_class(name, controller).build()
}

fn default_class(name: &str, controller: &str) -> IngressClass {
    ingress_class(name, controller).default_class().build()
}

fn dispatcher(controllers: impl IntoIterator<Item = Controller>) -> Dispatcher {
    Dispatcher::new(controllers).expect("a valid registration")
}

/// The Ingress whose site `<name>.example` this table routes to, if any.
fn routed_ingress(table: &RouteTable, name: &str) -> Option<ObjectRef> {
    send(table, Some(&format!("{name}.example")), "/").and_then(|m| m.ingress().cloned())
}

/// Dispatches and checks what holds for every dispatch: every Ingress is served by exactly one
/// registered controller or by none; each controller sees every input Ingress exactly once,
/// served or not, in input order; and the decisions say the same as the served lists.
fn dispatch(
    dispatcher: &Dispatcher,
    classes: &[IngressClass],
    ingresses: &[Ingress],
    case: &str,
) -> Dispatch {
    let d = dispatcher.dispatch(classes, ingresses);
    let input: Vec<ObjectRef> = ingresses.iter().map(Ingress::object_ref).collect();
    let decided: Vec<ObjectRef> = d.decisions.iter().map(|x| x.ingress.clone()).collect();
    assert_eq!(
        decided, input,
        "{case}: one decision per Ingress, in input order"
    );
    let registered: Vec<&str> = dispatcher.controllers().iter().map(|c| c.name()).collect();
    let listed: Vec<&str> = d
        .controllers
        .iter()
        .map(|c| c.controller.as_str())
        .collect();
    assert_eq!(listed, registered, "{case}: one entry per controller");

    for (object, decision) in input.iter().zip(&d.decisions) {
        let serving: Vec<&str> = d
            .controllers
            .iter()
            .filter(|c| c.served.contains(object))
            .map(|c| c.controller.as_str())
            .collect();
        assert!(serving.len() <= 1, "{case}: {object} served by {serving:?}");
        assert_eq!(
            serving.first().copied(),
            decision.controller.as_deref(),
            "{case}: {object}: decision vs served lists"
        );
    }
    for c in &d.controllers {
        let mut seen: Vec<(usize, bool)> = Vec::new();
        for served in &c.served {
            seen.extend(input.iter().position(|o| o == served).map(|i| (i, true)));
        }
        for not in &c.not_served {
            seen.extend(
                input
                    .iter()
                    .position(|o| *o == not.ingress)
                    .map(|i| (i, false)),
            );
        }
        seen.sort_unstable();
        let expected: Vec<(usize, bool)> = d
            .decisions
            .iter()
            .enumerate()
            .map(|(i, x)| (i, x.controller.as_deref() == Some(c.controller.as_str())))
            .collect();
        assert_eq!(
            seen, expected,
            "{case}: {}: served + not_served must be the whole input, split as decided",
            c.controller
        );
        let in_order = |refs: Vec<&ObjectRef>| {
            refs.windows(2).all(|w| {
                input.iter().position(|o| o == w[0]) < input.iter().position(|o| o == w[1])
            })
        };
        assert!(
            in_order(c.served.iter().collect()),
            "{case}: {}: served in input order",
            c.controller
        );
        assert!(
            in_order(c.not_served.iter().map(|n| &n.ingress).collect()),
            "{case}: {}: not_served in input order",
            c.controller
        );
    }
    d
}

fn decision<'d>(d: &'d Dispatch, name: &str) -> &'d Decision {
    d.decisions
        .iter()
        .find(|x| x.ingress == object(name))
        .unwrap_or_else(|| panic!("no decision for {name}"))
}

fn controller<'d>(d: &'d Dispatch, name: &str) -> &'d ControllerDispatch {
    d.controller(name)
        .unwrap_or_else(|| panic!("controller {name} not in the dispatch"))
}

/// What one Ingress should come to.
struct Expected<'a> {
    /// The controller that serves it.
    owner: Option<&'a str>,
    /// The class it is matched through.
    class: Option<&'a str>,
    /// The decision's reason.
    reason: Reason,
    /// What every registered controller that does not serve it is told.
    elsewhere: Reason,
}

fn assert_dispatched(d: &Dispatch, case: &str, name: &str, expected: &Expected<'_>) {
    let x = decision(d, name);
    assert_eq!(x.controller.as_deref(), expected.owner, "{case}: served by");
    assert_eq!(x.class.as_deref(), expected.class, "{case}: class");
    assert_eq!(x.reason, expected.reason, "{case}: reason");
    for c in &d.controllers {
        let who = &c.controller;
        if Some(who.as_str()) == expected.owner {
            assert!(c.served.contains(&object(name)), "{case}: {who} serves");
            assert_eq!(
                routed_ingress(&c.table, name),
                Some(object(name)),
                "{case}: {who}'s table routes the Ingress"
            );
        } else {
            let not = c.not_served.iter().find(|n| n.ingress == object(name));
            assert_eq!(
                not.map(|n| &n.reason),
                Some(&expected.elsewhere),
                "{case}: why {who} does not serve it"
            );
            assert_ne!(
                routed_ingress(&c.table, name),
                Some(object(name)),
                "{case}: {who}'s table must not route the Ingress"
            );
        }
    }
}

/// Rule 1: `spec.ingressClassName` = N and IngressClass N has `spec.controller` = C.
#[test]
fn class_name_selects_the_class_controller() {
    let dispatcher = dispatcher([Controller::new(A), Controller::new(B)]);
    let classes = [
        class("class-a", A),
        class("class-a-internal", A),
        class("class-b", B),
    ];
    // (case, ingressClassName, serving controller)
    let cases = [
        ("a class of A", "class-a", A),
        ("A's second class", "class-a-internal", A),
        ("the class of B", "class-b", B),
    ];
    for (case, name, owner) in cases {
        let d = dispatch(
            &dispatcher,
            &classes,
            &[site("site").class(name).build()],
            case,
        );
        assert_dispatched(
            &d,
            case,
            "site",
            &Expected {
                owner: Some(owner),
                class: Some(name),
                reason: Reason::ClassOwned { class: name.into() },
                elsewhere: Reason::ClassOfOtherController {
                    class: name.into(),
                    controller: owner.into(),
                },
            },
        );
        assert_eq!(
            decision(&d, "site").ignored_annotation,
            None,
            "{case}: no annotation to ignore"
        );
        let other = if owner == A { B } else { A };
        assert_eq!(
            controller(&d, other).not_served[0].reason.to_string(),
            format!("class `{name}` belongs to controller `{owner}`"),
            "{case}: reason text for {other}"
        );
    }
}

/// Rule 1: the class's controller serves it, and only that controller, registered or not.
#[test]
fn class_of_an_unregistered_controller_is_not_served() {
    // (case, registered controllers)
    let cases = [
        (
            "only other controllers registered",
            vec![Controller::new(A), Controller::new(B)],
        ),
        (
            "a registered controller answers to the class name as an annotation",
            vec![
                Controller::new(A).class_annotation("class-c"),
                Controller::new(B),
            ],
        ),
        (
            "a registered controller serves class-less Ingresses",
            vec![Controller::new(A).watch_without_class(true)],
        ),
    ];
    let classes = [class("class-a", A), class("class-c", C)];
    for (case, controllers) in cases {
        let dispatcher = dispatcher(controllers);
        let d = dispatch(
            &dispatcher,
            &classes,
            &[site("site").class("class-c").build()],
            case,
        );
        let reason = Reason::ClassOfOtherController {
            class: "class-c".into(),
            controller: C.into(),
        };
        assert_dispatched(
            &d,
            case,
            "site",
            &Expected {
                owner: None,
                class: Some("class-c"),
                reason: reason.clone(),
                elsewhere: reason,
            },
        );
        assert_eq!(
            decision(&d, "site").to_string(),
            format!("class `class-c` belongs to controller `{C}`"),
            "{case}: reason text"
        );
    }
}

/// "A class that names no existing IngressClass owns nothing", whatever else is set.
#[test]
fn missing_class_serves_nothing() {
    let dispatcher = dispatcher([
        Controller::new(A)
            .watch_without_class(true)
            .class_annotation("a-legacy"),
        Controller::new(B),
    ]);
    let classes = [default_class("class-a", A), class("class-b", B)];
    // (case, Ingress, the class it names)
    let cases = [
        ("class name only", site("site").class("x"), "x"),
        (
            "the annotation names an existing class",
            site("site").class("x").class_annotation("class-a"),
            "x",
        ),
        (
            "the class name is an extra annotation name of A",
            site("site").class("a-legacy"),
            "a-legacy",
        ),
    ];
    for (case, ing, name) in cases {
        let d = dispatch(&dispatcher, &classes, &[ing.build()], case);
        let reason = Reason::ClassNotFound { class: name.into() };
        assert_dispatched(
            &d,
            case,
            "site",
            &Expected {
                owner: None,
                class: Some(name),
                reason: reason.clone(),
                elsewhere: reason,
            },
        );
        for c in &d.controllers {
            assert_eq!(
                c.not_served[0].reason.to_string(),
                format!("IngressClass `{name}` not found"),
                "{case}: text for {}",
                c.controller
            );
        }
    }
}

/// An invalid IngressClass is quarantined (routing contract §2): it owns nothing and is never the
/// default.
#[test]
fn invalid_ingress_class_is_quarantined_and_owns_nothing() {
    // A registered controller whose name is no domain-prefixed path, so a class naming it
    // fails validation while its controller would otherwise be found.
    const BARE: &str = "ingress-router";
    let dispatcher = dispatcher([Controller::new(A), Controller::new(BARE)]);
    let scoped_without_namespace = IngressClassParametersReference {
        api_group: Some("k8s.example.com".into()),
        kind: "IngressParameters".into(),
        name: "external-lb".into(),
        scope: Some("Namespace".into()),
        namespace: None,
    };
    let classes = [
        class("no-slash", BARE),
        ingress_class("scoped-params", A)
            .parameters(scoped_without_namespace.clone())
            .build(),
        class("class-a", A),
    ];
    // (case, invalid class, field the apiserver names)
    let cases = [
        ("controller without a '/'", "no-slash", "spec.controller"),
        (
            "scope Namespace without a namespace",
            "scoped-params",
            "spec.parameters.namespace",
        ),
    ];
    for (case, name, field) in cases {
        let ingresses = [
            site("by-name").class(name).build(),
            site("by-annotation").class_annotation(name).build(),
        ];
        let d = dispatch(&dispatcher, &classes, &ingresses, case);
        let quarantined = d
            .quarantined_classes
            .iter()
            .find(|q| q.object.name == name)
            .unwrap_or_else(|| panic!("{case}: {name} not quarantined"));
        assert_eq!(quarantined.object.kind, ObjectKind::IngressClass, "{case}");
        assert!(
            quarantined.errors.iter().any(|e| e.field == field),
            "{case}: expected an error at {field}, got {:?}",
            quarantined.errors
        );
        let reason = Reason::ClassInvalid { class: name.into() };
        assert_dispatched(
            &d,
            case,
            "by-name",
            &Expected {
                owner: None,
                class: Some(name),
                reason: reason.clone(),
                elsewhere: reason,
            },
        );
        assert_eq!(
            decision(&d, "by-annotation").controller,
            None,
            "{case}: the annotation naming an invalid class is no controller's class name"
        );
        for c in &d.controllers {
            assert!(
                c.classes.iter().all(|owned| owned.name != name),
                "{case}: {} must not own {name}",
                c.controller
            );
        }
    }
    let all = dispatch(&dispatcher, &classes, &[], "all classes");
    let quarantined: Vec<&str> = all
        .quarantined_classes
        .iter()
        .map(|q| q.object.name.as_str())
        .collect();
    assert_eq!(
        quarantined,
        ["no-slash", "scoped-params"],
        "only the invalid classes are quarantined"
    );

    // (case, classes, expected default, who serves a class-less Ingress)
    let newest_invalid = ingress_class("broken-default", BARE)
        .default_class()
        .created(2)
        .build();
    let default_cases = [
        (
            "an older valid default wins over a newer invalid one",
            vec![
                ingress_class("valid-default", A)
                    .default_class()
                    .created(1)
                    .build(),
                newest_invalid.clone(),
            ],
            Some("valid-default"),
            Some(A),
        ),
        (
            "an invalid default alone leaves no default",
            vec![newest_invalid],
            None,
            None,
        ),
    ];
    for (case, classes, default, owner) in default_cases {
        let d = dispatch(&dispatcher, &classes, &[site("site").build()], case);
        assert_eq!(d.default_class.as_deref(), default, "{case}: default class");
        let (reason, elsewhere) = match (default, owner) {
            (Some(name), Some(owner)) => (
                Reason::DefaultClassOwned { class: name.into() },
                Reason::DefaultClassOfOtherController {
                    class: name.into(),
                    controller: owner.into(),
                },
            ),
            _ => (Reason::NoClass, Reason::NoClass),
        };
        assert_dispatched(
            &d,
            case,
            "site",
            &Expected {
                owner,
                class: default,
                reason,
                elsewhere,
            },
        );
        assert!(
            controller(&d, BARE).classes.is_empty(),
            "{case}: the invalid default owns nothing"
        );
    }
}

/// Rule 2: the legacy annotation equals the name of one of C's IngressClasses.
#[test]
fn annotation_matches_ingress_class_names() {
    let dispatcher = dispatcher([Controller::new(A), Controller::new(B)]);
    let classes = [
        class("class-a", A),
        class("class-a-internal", A),
        class("class-b", B),
        class("class-c", C),
    ];
    // (case, annotation, serving controller, or the unregistered owner when none serves)
    let cases = [
        ("a class of A", "class-a", Some(A), A),
        ("A's second class", "class-a-internal", Some(A), A),
        ("the class of B", "class-b", Some(B), B),
        ("a class of an unregistered controller", "class-c", None, C),
    ];
    for (case, value, owner, class_controller) in cases {
        let d = dispatch(
            &dispatcher,
            &classes,
            &[site("site").class_annotation(value).build()],
            case,
        );
        let elsewhere = Reason::AnnotationOfOtherController {
            class: value.into(),
            controller: class_controller.into(),
        };
        let reason = match owner {
            Some(_) => Reason::AnnotationOwned {
                class: value.into(),
            },
            None => elsewhere.clone(),
        };
        assert_dispatched(
            &d,
            case,
            "site",
            &Expected {
                owner,
                class: Some(value),
                reason,
                elsewhere,
            },
        );
    }
}

/// Rule 2: "plus extra names the caller configures"; an IngressClass name wins over an extra
/// name (module docs), since the class says who its controller is.
#[test]
fn annotation_matches_configured_extra_names() {
    let dispatcher = dispatcher([
        Controller::new(A)
            .class_annotation("nginx")
            .class_annotation("a-legacy"),
        Controller::new(B)
            .class_annotation("haproxy")
            .class_annotation("haproxy-internal"),
    ]);
    let classes = [class("haproxy", A), class("nginx", C)];
    fn owned_by<'a>(value: &str, owner: &'a str) -> Expected<'a> {
        Expected {
            owner: Some(owner),
            class: None,
            reason: Reason::AnnotationOwned {
                class: value.into(),
            },
            elsewhere: Reason::AnnotationOfOtherController {
                class: value.into(),
                controller: owner.into(),
            },
        }
    }
    let cases = [
        ("an extra name of A", "a-legacy", owned_by("a-legacy", A)),
        (
            "an extra name of B",
            "haproxy-internal",
            owned_by("haproxy-internal", B),
        ),
        (
            "no controller's name",
            "traefik",
            Expected {
                owner: None,
                class: None,
                reason: Reason::AnnotationUnknown {
                    class: "traefik".into(),
                },
                elsewhere: Reason::AnnotationUnknown {
                    class: "traefik".into(),
                },
            },
        ),
        (
            "B's extra name that is an IngressClass of A",
            "haproxy",
            owned_by("haproxy", A),
        ),
        (
            "A's extra name that is an IngressClass of an unregistered controller",
            "nginx",
            Expected {
                owner: None,
                class: None,
                reason: Reason::AnnotationOfOtherController {
                    class: "nginx".into(),
                    controller: C.into(),
                },
                elsewhere: Reason::AnnotationOfOtherController {
                    class: "nginx".into(),
                    controller: C.into(),
                },
            },
        ),
    ];
    for (case, value, expected) in cases {
        let d = dispatch(
            &dispatcher,
            &classes,
            &[site("site").class_annotation(value).build()],
            case,
        );
        // The class an annotation selects is its value, served or not.
        let expected = Expected {
            class: Some(value),
            ..expected
        };
        assert_dispatched(&d, case, "site", &expected);
    }
}

/// "`ingressClassName` wins over the annotation when both are set."
#[test]
fn class_name_wins_over_annotation() {
    let dispatcher = dispatcher([
        Controller::new(A).class_annotation("a-legacy"),
        Controller::new(B),
    ]);
    let classes = [
        class("class-a", A),
        class("class-b", B),
        class("class-c", C),
    ];
    // (case, ingressClassName, annotation, serving controller, the class's controller)
    let cases = [
        (
            "class of A, annotation a class of B",
            "class-a",
            "class-b",
            Some(A),
            A,
        ),
        (
            "class of B, annotation an extra name of A",
            "class-b",
            "a-legacy",
            Some(B),
            B,
        ),
        (
            "class of an unregistered controller, annotation a class of A",
            "class-c",
            "class-a",
            None,
            C,
        ),
        ("both name the same class", "class-a", "class-a", Some(A), A),
    ];
    for (case, name, value, owner, class_controller) in cases {
        let ing = site("site").class(name).class_annotation(value).build();
        let d = dispatch(&dispatcher, &classes, &[ing], case);
        let elsewhere = Reason::ClassOfOtherController {
            class: name.into(),
            controller: class_controller.into(),
        };
        let reason = match owner {
            Some(_) => Reason::ClassOwned { class: name.into() },
            None => elsewhere.clone(),
        };
        assert_dispatched(
            &d,
            case,
            "site",
            &Expected {
                owner,
                class: Some(name),
                reason: reason.clone(),
                elsewhere,
            },
        );
        let x = decision(&d, "site");
        let text = x.to_string();
        assert!(
            text.starts_with(&reason.to_string()),
            "{case}: decision text {text:?} starts with the reason"
        );
        if value == name {
            assert_eq!(x.ignored_annotation, None, "{case}: nothing ignored");
            assert!(
                !text.contains("ignored"),
                "{case}: decision text {text:?} mentions nothing ignored"
            );
        } else {
            assert_eq!(
                x.ignored_annotation.as_deref(),
                Some(value),
                "{case}: ignored annotation"
            );
            assert!(
                text.contains(&format!("`{value}`")) && text.contains("ignored"),
                "{case}: decision text {text:?} names the ignored annotation"
            );
        }
    }
}

/// Rule 3: neither set → the controller of the default IngressClass.
#[test]
fn class_less_ingress_goes_to_default_class_owner() {
    let dispatcher = dispatcher([Controller::new(A), Controller::new(B)]);
    // (case, classes, default class, its controller, served by)
    let cases = [
        (
            "the default class is B's",
            vec![class("class-a", A), default_class("class-b", B)],
            Some(("class-b", B)),
            Some(B),
        ),
        (
            "the default class is A's",
            vec![default_class("class-a", A), class("class-b", B)],
            Some(("class-a", A)),
            Some(A),
        ),
        (
            "the default class belongs to an unregistered controller",
            vec![class("class-a", A), default_class("class-c", C)],
            Some(("class-c", C)),
            None,
        ),
        (
            "is-default-class \"false\" marks no default",
            vec![
                ingress_class("class-a", A)
                    .default_annotation("false")
                    .build(),
                class("class-b", B),
            ],
            None,
            None,
        ),
    ];
    for (case, classes, default, owner) in cases {
        let d = dispatch(&dispatcher, &classes, &[site("site").build()], case);
        assert_eq!(
            d.default_class.as_deref(),
            default.map(|(name, _)| name),
            "{case}: default class"
        );
        let expected = match default {
            Some((name, class_controller)) => {
                let elsewhere = Reason::DefaultClassOfOtherController {
                    class: name.into(),
                    controller: class_controller.into(),
                };
                Expected {
                    owner,
                    class: Some(name),
                    reason: match owner {
                        Some(_) => Reason::DefaultClassOwned { class: name.into() },
                        None => elsewhere.clone(),
                    },
                    elsewhere,
                }
            }
            None => Expected {
                owner: None,
                class: None,
                reason: Reason::NoClass,
                elsewhere: Reason::NoClass,
            },
        };
        assert_dispatched(&d, case, "site", &expected);
    }
}

/// Rule 3: "with several defaults, the newest wins, ties by name ascending"; routing contract §4:
/// a class without a timestamp counts as newer than any with one, and input order decides among
/// those.
#[test]
fn several_default_classes_newest_wins_ties_by_name() {
    let dispatcher = dispatcher([Controller::new(A), Controller::new(B)]);
    let default_at = |name: &str, controller: &str, created: Option<i64>| {
        let class = ingress_class(name, controller).default_class();
        match created {
            Some(secs) => class.created(secs),
            None => class,
        }
        .build()
    };
    // (case, classes, the default, its controller)
    let cases = [
        (
            "the newer timestamp wins",
            vec![default_at("old", A, Some(1)), default_at("new", B, Some(2))],
            "new",
            B,
        ),
        (
            "input order does not matter",
            vec![default_at("new", B, Some(2)), default_at("old", A, Some(1))],
            "new",
            B,
        ),
        (
            "equal timestamps: name ascending",
            vec![
                default_at("beta", B, Some(5)),
                default_at("alpha", A, Some(5)),
            ],
            "alpha",
            A,
        ),
        (
            "equal timestamps, names in order",
            vec![
                default_at("alpha", B, Some(5)),
                default_at("beta", A, Some(5)),
            ],
            "alpha",
            B,
        ),
        (
            "no timestamp counts as newer than any",
            vec![
                default_at("unstamped", A, None),
                default_at("stamped", B, Some(9)),
            ],
            "unstamped",
            A,
        ),
        (
            "no timestamp counts as newer, given first or last",
            vec![
                default_at("stamped", B, Some(9)),
                default_at("unstamped", A, None),
            ],
            "unstamped",
            A,
        ),
        (
            "without timestamps the later input is newer",
            vec![default_at("first", A, None), default_at("second", B, None)],
            "second",
            B,
        ),
        (
            "a newer class that is not default does not count",
            vec![
                default_at("marked", A, Some(1)),
                ingress_class("unmarked", B).created(9).build(),
            ],
            "marked",
            A,
        ),
    ];
    for (case, classes, winner, owner) in cases {
        let d = dispatch(&dispatcher, &classes, &[site("site").build()], case);
        assert_eq!(d.default_class.as_deref(), Some(winner), "{case}: default");
        assert_dispatched(
            &d,
            case,
            "site",
            &Expected {
                owner: Some(owner),
                class: Some(winner),
                reason: Reason::DefaultClassOwned {
                    class: winner.into(),
                },
                elsewhere: Reason::DefaultClassOfOtherController {
                    class: winner.into(),
                    controller: owner.into(),
                },
            },
        );
        let flagged: Vec<&str> = d
            .controllers
            .iter()
            .flat_map(|c| &c.classes)
            .filter(|owned| owned.is_default)
            .map(|owned| owned.name.as_str())
            .collect();
        assert_eq!(flagged, [winner], "{case}: only the winner is_default");
    }
}

/// Rule 3 without a default class: only a controller that opted in serves class-less Ingresses;
/// several opted in → the first registered (module docs).
#[test]
fn class_less_ingress_served_only_with_watch_without_class() {
    let classes = [class("class-a", A), class("class-b", B)];
    let watching = |name: &str| Controller::new(name).watch_without_class(true);
    // (case, registered controllers, served by)
    let cases = [
        (
            "nobody opted in",
            vec![Controller::new(A), Controller::new(B)],
            None,
        ),
        ("A opted in", vec![watching(A), Controller::new(B)], Some(A)),
        ("B opted in", vec![Controller::new(A), watching(B)], Some(B)),
        (
            "both opted in: the first registered",
            vec![watching(A), watching(B)],
            Some(A),
        ),
        (
            "both opted in, B registered first",
            vec![watching(B), watching(A)],
            Some(B),
        ),
        (
            "opted in, then out",
            vec![watching(A).watch_without_class(false), Controller::new(B)],
            None,
        ),
    ];
    for (case, controllers, owner) in cases {
        let dispatcher = dispatcher(controllers);
        let ingresses = [
            site("site").build(),
            site("unknown-annotation")
                .class_annotation("traefik")
                .build(),
        ];
        let d = dispatch(&dispatcher, &classes, &ingresses, case);
        assert_eq!(d.default_class, None, "{case}: no default class");
        let expected = match owner {
            Some(owner) => Expected {
                owner: Some(owner),
                class: None,
                reason: Reason::WithoutClass,
                elsewhere: Reason::WithoutClassServedBy {
                    controller: owner.into(),
                },
            },
            None => Expected {
                owner: None,
                class: None,
                reason: Reason::NoClass,
                elsewhere: Reason::NoClass,
            },
        };
        assert_dispatched(&d, case, "site", &expected);
        // An annotation makes an Ingress not class-less, even when nobody answers to it.
        let unknown = Reason::AnnotationUnknown {
            class: "traefik".into(),
        };
        assert_dispatched(
            &d,
            &format!("{case}, unknown annotation"),
            "unknown-annotation",
            &Expected {
                owner: None,
                class: Some("traefik"),
                reason: unknown.clone(),
                elsewhere: unknown,
            },
        );
    }
}

/// Rule 3: the default class decides before `watch_without_class` (module docs).
#[test]
fn default_class_wins_over_watch_without_class() {
    let watching = |name: &str| Controller::new(name).watch_without_class(true);
    // (case, registered controllers, classes, the default class, its controller)
    let cases = [
        (
            "A opted in, B owns the default",
            vec![watching(A), Controller::new(B)],
            vec![class("class-a", A), default_class("class-b", B)],
            "class-b",
            B,
        ),
        (
            "both opted in, B owns the default",
            vec![watching(A), watching(B)],
            vec![class("class-a", A), default_class("class-b", B)],
            "class-b",
            B,
        ),
        (
            "B opted in, A owns the default",
            vec![Controller::new(A), watching(B)],
            vec![default_class("class-a", A), class("class-b", B)],
            "class-a",
            A,
        ),
    ];
    for (case, controllers, classes, default, owner) in cases {
        let dispatcher = dispatcher(controllers);
        let d = dispatch(&dispatcher, &classes, &[site("site").build()], case);
        assert_dispatched(
            &d,
            case,
            "site",
            &Expected {
                owner: Some(owner),
                class: Some(default),
                reason: Reason::DefaultClassOwned {
                    class: default.into(),
                },
                elsewhere: Reason::DefaultClassOfOtherController {
                    class: default.into(),
                    controller: owner.into(),
                },
            },
        );
    }
}

/// Rule 3 for a controller that opted in: the default class belongs to a controller outside
/// this process, so the opted-in controller here serves the class-less Ingress.
#[test]
fn watch_without_class_serves_when_the_default_belongs_elsewhere() {
    let classes = [class("class-a", A), default_class("class-c", C)];
    let case = "C (unregistered) owns the default, A opted in";
    let d = dispatch(
        &dispatcher([
            Controller::new(A).watch_without_class(true),
            Controller::new(B),
        ]),
        &classes,
        &[site("site").build()],
        case,
    );
    assert_dispatched(
        &d,
        case,
        "site",
        &Expected {
            owner: Some(A),
            class: None,
            reason: Reason::WithoutClass,
            elsewhere: Reason::WithoutClassServedBy {
                controller: A.into(),
            },
        },
    );

    let case = "C (unregistered) owns the default, nobody here opted in";
    let d = dispatch(
        &dispatcher([Controller::new(A), Controller::new(B)]),
        &classes,
        &[site("site").build()],
        case,
    );
    let not_ours = Reason::DefaultClassOfOtherController {
        class: "class-c".into(),
        controller: C.into(),
    };
    assert_dispatched(
        &d,
        case,
        "site",
        &Expected {
            owner: None,
            class: Some("class-c"),
            reason: not_ours.clone(),
            elsewhere: not_ours,
        },
    );
}

/// The legacy annotation naming an invalid IngressClass: served by nobody, and said so.
#[test]
fn annotation_naming_an_invalid_class_says_so() {
    let classes = [class("broken", "no-slash"), class("class-a", A)];
    let case = "annotation names an invalid class";
    let d = dispatch(
        &dispatcher([Controller::new(A)]),
        &classes,
        &[site("site").class_annotation("broken").build()],
        case,
    );
    let invalid = Reason::ClassInvalid {
        class: "broken".into(),
    };
    assert_dispatched(
        &d,
        case,
        "site",
        &Expected {
            owner: None,
            class: Some("broken"),
            reason: invalid.clone(),
            elsewhere: invalid,
        },
    );
    assert_eq!(d.quarantined_classes.len(), 1, "{case}");
}

/// Every Ingress must land with at most one controller, so registrations that would make two
/// controllers answer to the same name are refused.
#[test]
fn dispatcher_rejects_bad_registrations() {
    // (case, controllers, outcome)
    let cases: Vec<(&str, Vec<Controller>, Result<(), DispatchError>)> = vec![
        ("no controllers", vec![], Err(DispatchError::NoControllers)),
        (
            "the same name twice",
            vec![
                Controller::new(A),
                Controller::new(B),
                Controller::new(A).watch_without_class(true),
            ],
            Err(DispatchError::DuplicateController(A.into())),
        ),
        (
            "an extra annotation value claimed by two controllers",
            vec![
                Controller::new(A).class_annotation("shared"),
                Controller::new(B)
                    .class_annotation("b-legacy")
                    .class_annotation("shared"),
            ],
            Err(DispatchError::SharedClassAnnotation {
                value: "shared".into(),
                first: A.into(),
                second: B.into(),
            }),
        ),
        (
            "distinct names and values",
            vec![
                Controller::new(A).class_annotation("a-legacy"),
                Controller::new(B).class_annotation("b-legacy"),
            ],
            Ok(()),
        ),
        (
            "one controller naming a value twice",
            vec![
                Controller::new(A)
                    .class_annotation("a-legacy")
                    .class_annotation("a-legacy"),
                Controller::new(B),
            ],
            Ok(()),
        ),
        ("a single controller", vec![Controller::new(A)], Ok(())),
    ];
    for (case, controllers, expected) in cases {
        assert_eq!(Dispatcher::new(controllers).map(|_| ()), expected, "{case}");
    }
}

/// IngressClass `spec.parameters` is how a class configures its controller, so each controller
/// gets its classes with their parameters.
#[test]
fn owned_classes_carry_their_parameters() {
    let namespaced = IngressClassParametersReference {
        api_group: Some("k8s.example.com".into()),
        kind: "IngressParameters".into(),
        name: "external-lb".into(),
        scope: Some("Namespace".into()),
        namespace: Some("infra".into()),
    };
    let cluster_wide = IngressClassParametersReference {
        api_group: None,
        kind: "ConfigMap".into(),
        name: "cluster-wide".into(),
        scope: None,
        namespace: None,
    };
    let b_params = IngressClassParametersReference {
        api_group: Some("b.example".into()),
        kind: "LoadBalancer".into(),
        name: "edge".into(),
        scope: Some("Cluster".into()),
        namespace: None,
    };
    let classes = [
        ingress_class("class-a", A)
            .parameters(namespaced.clone())
            .build(),
        class("class-a-bare", A),
        ingress_class("class-a-cluster", A)
            .parameters(cluster_wide.clone())
            .build(),
        ingress_class("class-b", B)
            .parameters(b_params.clone())
            .default_class()
            .build(),
        ingress_class("class-c", C)
            .parameters(cluster_wide.clone())
            .build(),
    ];
    let dispatcher = dispatcher([Controller::new(A), Controller::new(B)]);
    let d = dispatch(&dispatcher, &classes, &[], "parameters");
    // OwnedClass is #[non_exhaustive]: compared field by field, as (name, parameters, is_default).
    let owned = |name: &str, parameters: Option<&IngressClassParametersReference>, is_default| {
        (name.to_owned(), parameters.cloned(), is_default)
    };
    // (controller, its classes by name)
    let cases = [
        (
            A,
            vec![
                owned("class-a", Some(&namespaced), false),
                owned("class-a-bare", None, false),
                owned("class-a-cluster", Some(&cluster_wide), false),
            ],
        ),
        (B, vec![owned("class-b", Some(&b_params), true)]),
    ];
    for (name, expected) in cases {
        let mut classes = controller(&d, name).classes.clone();
        classes.sort_by(|x, y| x.name.cmp(&y.name));
        let classes: Vec<_> = classes
            .iter()
            .map(|c: &OwnedClass| (c.name.clone(), c.parameters.clone(), c.is_default))
            .collect();
        assert_eq!(classes, expected, "classes of {name}");
    }
}

/// "each gets its own compiled table": built from its Ingresses only, with its own options.
#[test]
fn each_controller_gets_its_own_table() {
    let a_default = service_backend("a-system", "a-default");
    let dispatcher = dispatcher([
        Controller::new(A).table_options(TableOptions {
            default_backend: Some(a_default.clone()),
            ..TableOptions::default()
        }),
        Controller::new(B).table_options(TableOptions {
            implementation_specific: ImplementationSpecific::Exact,
            ..TableOptions::default()
        }),
    ]);
    let classes = [class("class-a", A), class("class-b", B)];
    let ingresses = [
        site("shop").class("class-a").build(),
        ingress("default", "docs")
            .class("class-b")
            .path("docs.example", "ImplementationSpecific", "/guide", "docs")
            .build(),
    ];
    let d = dispatch(&dispatcher, &classes, &ingresses, "tables");
    let (a, b) = (controller(&d, A), controller(&d, B));
    assert_eq!(a.table.ingresses(), [object("shop")], "A's table");
    assert_eq!(b.table.ingresses(), [object("docs")], "B's table");

    type Outcome = Option<(Backend, Option<ObjectRef>, Option<Fallback>)>;
    let rule_of = |name: &str| -> Outcome {
        Some((service_backend("default", name), Some(object(name)), None))
    };
    let controller_default: Outcome = Some((a_default, None, Some(Fallback::ControllerDefault)));
    // (case, controller, host, path, outcome)
    let cases = [
        (
            "A routes its own Ingress",
            a,
            "shop.example",
            "/cart",
            rule_of("shop"),
        ),
        (
            "A does not route B's Ingress; A's default backend answers",
            a,
            "docs.example",
            "/guide",
            controller_default.clone(),
        ),
        (
            "A's default backend answers unknown hosts",
            a,
            "other.example",
            "/",
            controller_default,
        ),
        (
            "B routes its own Ingress",
            b,
            "docs.example",
            "/guide",
            rule_of("docs"),
        ),
        (
            "B matches ImplementationSpecific as Exact",
            b,
            "docs.example",
            "/guide/intro",
            None,
        ),
        (
            "B does not route A's Ingress and has no default backend",
            b,
            "shop.example",
            "/cart",
            None,
        ),
    ];
    for (case, c, host, path, expected) in cases {
        let outcome: Outcome = send(&c.table, Some(host), path)
            .map(|m| (m.backend().clone(), m.ingress().cloned(), m.fallback()));
        assert_eq!(outcome, expected, "{case}");
    }
}

/// All of §3 at once: two registered controllers, one cluster, every rule.
#[test]
fn two_controllers_share_one_cluster() {
    let dispatcher = dispatcher([
        Controller::new(A),
        Controller::new(B).class_annotation("b-legacy"),
    ]);
    let classes = [
        class("class-a", A),
        default_class("class-b", B),
        class("class-c", C),
        class("broken", "broken-controller"),
    ];
    let annotation = |value: &str, whose: &str| {
        format!("annotation kubernetes.io/ingress.class `{value}` {whose}")
    };
    // (Ingress, served by, the decision as text, what the other controllers are told)
    let a_class = format!("class `class-a` belongs to controller `{A}`");
    let cases: Vec<(Ingress, Option<&str>, String, String)> = vec![
        (
            site("by-class-a").class("class-a").build(),
            Some(A),
            "IngressClass `class-a` belongs to this controller".into(),
            a_class.clone(),
        ),
        (
            site("by-class-b").class("class-b").build(),
            Some(B),
            "IngressClass `class-b` belongs to this controller".into(),
            format!("class `class-b` belongs to controller `{B}`"),
        ),
        (
            site("by-class-c").class("class-c").build(),
            None,
            format!("class `class-c` belongs to controller `{C}`"),
            format!("class `class-c` belongs to controller `{C}`"),
        ),
        (
            site("missing-class").class("nowhere").build(),
            None,
            "IngressClass `nowhere` not found".into(),
            "IngressClass `nowhere` not found".into(),
        ),
        (
            site("invalid-class").class("broken").build(),
            None,
            "IngressClass `broken` is invalid and serves nothing".into(),
            "IngressClass `broken` is invalid and serves nothing".into(),
        ),
        (
            site("annotation-a").class_annotation("class-a").build(),
            Some(A),
            annotation("class-a", "is a class name of this controller"),
            annotation("class-a", &format!("belongs to controller `{A}`")),
        ),
        (
            site("annotation-b-legacy")
                .class_annotation("b-legacy")
                .build(),
            Some(B),
            annotation("b-legacy", "is a class name of this controller"),
            annotation("b-legacy", &format!("belongs to controller `{B}`")),
        ),
        (
            site("annotation-unknown")
                .class_annotation("traefik")
                .build(),
            None,
            annotation("traefik", "is no controller's class name"),
            annotation("traefik", "is no controller's class name"),
        ),
        (
            site("class-less").build(),
            Some(B),
            "no class set; the default IngressClass `class-b` belongs to this controller".into(),
            format!("no class set; the default IngressClass `class-b` belongs to controller `{B}`"),
        ),
        (
            site("both-set")
                .class("class-a")
                .class_annotation("class-b")
                .build(),
            Some(A),
            "IngressClass `class-a` belongs to this controller; annotation \
             kubernetes.io/ingress.class `class-b` ignored: spec.ingressClassName wins"
                .into(),
            a_class,
        ),
    ];
    let ingresses: Vec<Ingress> = cases.iter().map(|(ing, ..)| ing.clone()).collect();
    // Also checks: served by one controller or none, served + not_served = input, decisions
    // agree with the served lists.
    let d = dispatch(&dispatcher, &classes, &ingresses, "cluster");
    assert_eq!(d.default_class.as_deref(), Some("class-b"), "default class");
    let quarantined: Vec<&str> = d
        .quarantined_classes
        .iter()
        .map(|q| q.object.name.as_str())
        .collect();
    assert_eq!(quarantined, ["broken"], "quarantined classes");

    for (ing, owner, decided, elsewhere) in &cases {
        let name = ing.metadata.name.as_str();
        let x = decision(&d, name);
        assert_eq!(x.controller.as_deref(), *owner, "{name}: served by");
        assert_eq!(&x.to_string(), decided, "{name}: decision");
        for c in &d.controllers {
            let who = c.controller.as_str();
            let serves = c.served.contains(&object(name));
            assert_eq!(serves, Some(who) == *owner, "{name}: served by {who}?");
            let routed = routed_ingress(&c.table, name);
            assert_eq!(
                routed == Some(object(name)),
                serves,
                "{name}: in {who}'s table?"
            );
            if !serves {
                let not: Vec<&NotServed> = c
                    .not_served
                    .iter()
                    .filter(|n| n.ingress == object(name))
                    .collect();
                assert_eq!(not.len(), 1, "{name}: listed once as not served by {who}");
                assert_eq!(
                    &not[0].reason.to_string(),
                    elsewhere,
                    "{name}: told to {who}"
                );
            }
        }
    }
    let served: Vec<(&str, Vec<&str>)> = d
        .controllers
        .iter()
        .map(|c| {
            let names = c.served.iter().map(|o| o.name.as_str()).collect();
            (c.controller.as_str(), names)
        })
        .collect();
    assert_eq!(
        served,
        [
            (A, vec!["by-class-a", "annotation-a", "both-set"]),
            (B, vec!["by-class-b", "annotation-b-legacy", "class-less"]),
        ],
        "served lists"
    );
}
