//! IngressClass dispatch (routing contract §3) against a naive reference: the rules of the
//! `dispatch` module docs transcribed as linear scans over the generated cluster.
//!
//! Generated names overlap on purpose: class names collide with configured extra annotation
//! values, classes repeat names, default classes share timestamps, and classes name registered,
//! unregistered and invalid controllers, so every rule and every tie-break is reached.

mod common;

use common::{ingress, ingress_class};
use ingress_router::model::IngressClassParametersReference;
use ingress_router::{
    Controller, DispatchError, Dispatcher, Ingress, IngressClass, ObjectKind, ObjectRef, Reason,
};
use proptest::prelude::*;
use proptest::sample::select;

/// Controllers that may be registered.
const CONTROLLERS: &[&str] = &[
    "a.example/ingress",
    "b.example/ingress",
    "c.example/ingress",
];
/// A valid controller name that is never registered.
const UNREGISTERED: &str = "d.example/ingress";
/// A `spec.controller` that is no domain-prefixed path, so its class is invalid.
const INVALID: &str = "invalid-no-slash";
/// Extra annotation values a controller may answer to; `x` is also a class name.
const EXTRAS: &[&str] = &["x", "y", "legacy"];
const CLASS_NAMES: &[&str] = &["c1", "c2", "c3", "c4", "x"];
/// What an Ingress's `ingressClassName` may say.
const CLASS_REFS: &[&str] = &["c1", "c2", "c3", "c4", "x", "missing"];
/// What an Ingress's legacy annotation may say: class names and extra values.
const ANNOTATIONS: &[&str] = &["c1", "c2", "c3", "c4", "x", "y", "legacy"];

#[derive(Debug, Clone)]
struct GenController {
    name: &'static str,
    watch_without_class: bool,
    extras: Vec<&'static str>,
}

#[derive(Debug, Clone)]
struct GenClass {
    name: &'static str,
    controller: &'static str,
    /// The value of the default-class annotation; only `"true"` marks a default.
    default: Option<&'static str>,
    /// Seconds; a tiny range so that equal timestamps happen.
    created: Option<i64>,
}

#[derive(Debug, Clone)]
struct GenIngress {
    name: String,
    class_name: Option<&'static str>,
    annotation: Option<&'static str>,
}

fn controllers() -> impl Strategy<Value = Vec<GenController>> {
    (
        Just(CONTROLLERS.to_vec()).prop_shuffle(),
        1..=3usize,
        prop::collection::vec(
            (any::<bool>(), prop::collection::vec(select(EXTRAS), 0..=2)),
            3,
        ),
        // Mostly registrations that `Dispatcher::new` accepts, sometimes ones that share values.
        prop::bool::weighted(0.8),
    )
        .prop_map(|(names, n, settings, keep_distinct)| {
            let mut claimed: Vec<&'static str> = Vec::new();
            let mut out = Vec::new();
            for (name, (watch_without_class, mut extras)) in names.into_iter().zip(settings).take(n)
            {
                if keep_distinct {
                    extras.retain(|v| !claimed.contains(v));
                }
                claimed.extend(&extras);
                out.push(GenController {
                    name,
                    watch_without_class,
                    extras,
                });
            }
            out
        })
}

fn classes() -> impl Strategy<Value = Vec<GenClass>> {
    let controller = select(vec![
        CONTROLLERS[0],
        CONTROLLERS[1],
        CONTROLLERS[2],
        UNREGISTERED,
        INVALID,
    ]);
    let class = (
        // `x` often, so that classes collide with the extra value `x`.
        prop_oneof![2 => select(CLASS_NAMES), 1 => Just("x")],
        controller,
        select(vec![None, Some("true"), Some("true"), Some("false")]),
        select(vec![None, Some(1), Some(2)]),
    )
        .prop_map(|(name, controller, default, created)| GenClass {
            name,
            controller,
            default,
            created,
        });
    prop::collection::vec(class, 0..=5)
}

fn ingresses() -> impl Strategy<Value = Vec<GenIngress>> {
    prop::collection::vec(
        (
            prop::option::weighted(0.4, select(CLASS_REFS)),
            prop::option::weighted(0.6, select(ANNOTATIONS)),
        ),
        1..=8,
    )
    .prop_map(|items| {
        items
            .into_iter()
            .enumerate()
            .map(|(i, (class_name, annotation))| GenIngress {
                name: format!("ing{i}"),
                class_name,
                annotation,
            })
            .collect()
    })
}

fn build_controller(c: &GenController) -> Controller {
    c.extras.iter().fold(
        Controller::new(c.name).watch_without_class(c.watch_without_class),
        |controller, value| controller.class_annotation(*value),
    )
}

fn build_class(c: &GenClass) -> IngressClass {
    let mut b = ingress_class(c.name, c.controller);
    if let Some(value) = c.default {
        b = b.default_annotation(value);
    }
    if let Some(secs) = c.created {
        b = b.created(secs);
    }
    b.build()
}

fn build_ingress(i: &GenIngress) -> Ingress {
    let mut b = ingress("default", &i.name).default_backend(&i.name);
    if let Some(name) = i.class_name {
        b = b.class(name);
    }
    if let Some(value) = i.annotation {
        b = b.class_annotation(value);
    }
    b.build()
}

fn object(name: &str) -> ObjectRef {
    ObjectRef {
        kind: ObjectKind::Ingress,
        namespace: Some("default".to_owned()),
        name: name.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// The reference

/// The error `Dispatcher::new` must give: the first extra value (in registration order) that an
/// earlier controller already claimed.
fn registration_error(controllers: &[GenController]) -> Option<DispatchError> {
    for (i, c) in controllers.iter().enumerate() {
        for value in &c.extras {
            if let Some(first) = controllers[..i].iter().find(|e| e.extras.contains(value)) {
                return Some(DispatchError::SharedClassAnnotation {
                    value: (*value).to_owned(),
                    first: first.name.to_owned(),
                    second: c.name.to_owned(),
                });
            }
        }
    }
    None
}

struct Expected {
    controller: Option<String>,
    class: Option<String>,
    reason: Reason,
    ignored_annotation: Option<String>,
}

struct Reference<'a> {
    controllers: &'a [GenController],
    /// The classes that count (the last of each name), valid ones, in input order.
    valid: Vec<&'a GenClass>,
    /// The names of the classes that count and are invalid, in input order.
    invalid: Vec<&'static str>,
    default: Option<&'a GenClass>,
}

impl<'a> Reference<'a> {
    fn new(controllers: &'a [GenController], classes: &'a [GenClass]) -> Self {
        let mut valid = Vec::new();
        let mut invalid = Vec::new();
        for (i, c) in classes.iter().enumerate() {
            if classes[i + 1..].iter().any(|later| later.name == c.name) {
                continue;
            }
            // The only invalid classes generated are those whose controller has no `/`.
            if c.controller.contains('/') {
                valid.push(c);
            } else {
                invalid.push(c.name);
            }
        }
        // Scanning in input order, a later candidate is the newer one when timestamps are absent.
        let mut default: Option<&GenClass> = None;
        for &c in valid.iter().filter(|c| c.default == Some("true")) {
            let newer = match default {
                None => true,
                Some(best) => match (c.created, best.created) {
                    (None, Some(_)) | (None, None) => true,
                    (Some(_), None) => false,
                    (Some(t), Some(u)) => t > u || (t == u && c.name < best.name),
                },
            };
            if newer {
                default = Some(c);
            }
        }
        Reference {
            controllers,
            valid,
            invalid,
            default,
        }
    }

    fn registered(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c.name == controller)
    }

    fn valid_class(&self, name: &str) -> Option<&'a GenClass> {
        self.valid.iter().copied().find(|c| c.name == name)
    }

    fn decide(&self, ing: &GenIngress) -> Expected {
        let expected = |controller: Option<&str>, class: Option<&str>, reason| Expected {
            controller: controller.map(str::to_owned),
            class: class.map(str::to_owned),
            reason,
            ignored_annotation: None,
        };

        if let Some(name) = ing.class_name {
            let class = name.to_owned();
            let mut e = match self.valid_class(name) {
                Some(c) if self.registered(c.controller) => {
                    expected(Some(c.controller), Some(name), Reason::ClassOwned { class })
                }
                Some(c) => expected(
                    None,
                    Some(name),
                    Reason::ClassOfOtherController {
                        class,
                        controller: c.controller.to_owned(),
                    },
                ),
                None if self.invalid.contains(&name) => {
                    expected(None, Some(name), Reason::ClassInvalid { class })
                }
                None => expected(None, Some(name), Reason::ClassNotFound { class }),
            };
            e.ignored_annotation = ing.annotation.filter(|v| *v != name).map(str::to_owned);
            return e;
        }

        if let Some(value) = ing.annotation {
            let class = value.to_owned();
            // A valid IngressClass of that name decides, even over an extra name; an invalid
            // class counts as absent here, as it does for rule 1 ("existing (valid)").
            if let Some(c) = self.valid_class(value) {
                return if self.registered(c.controller) {
                    expected(
                        Some(c.controller),
                        Some(value),
                        Reason::AnnotationOwned { class },
                    )
                } else {
                    expected(
                        None,
                        Some(value),
                        Reason::AnnotationOfOtherController {
                            class,
                            controller: c.controller.to_owned(),
                        },
                    )
                };
            }
            if let Some(c) = self.controllers.iter().find(|c| c.extras.contains(&value)) {
                return expected(Some(c.name), Some(value), Reason::AnnotationOwned { class });
            }
            if self.invalid.contains(&value) {
                return expected(None, Some(value), Reason::ClassInvalid { class });
            }
            return expected(None, Some(value), Reason::AnnotationUnknown { class });
        }

        if let Some(d) = self.default.filter(|d| self.registered(d.controller)) {
            return expected(
                Some(d.controller),
                Some(d.name),
                Reason::DefaultClassOwned {
                    class: d.name.to_owned(),
                },
            );
        }
        if let Some(c) = self.controllers.iter().find(|c| c.watch_without_class) {
            return expected(Some(c.name), None, Reason::WithoutClass);
        }
        match self.default {
            Some(d) => expected(
                None,
                Some(d.name),
                Reason::DefaultClassOfOtherController {
                    class: d.name.to_owned(),
                    controller: d.controller.to_owned(),
                },
            ),
            None => expected(None, None, Reason::NoClass),
        }
    }
}

/// The reason a controller that does not serve the Ingress is given.
fn restated(e: &Expected) -> Reason {
    let Some(owner) = e.controller.clone() else {
        return e.reason.clone();
    };
    match &e.reason {
        Reason::ClassOwned { class } => Reason::ClassOfOtherController {
            class: class.clone(),
            controller: owner,
        },
        Reason::AnnotationOwned { class } => Reason::AnnotationOfOtherController {
            class: class.clone(),
            controller: owner,
        },
        Reason::DefaultClassOwned { class } => Reason::DefaultClassOfOtherController {
            class: class.clone(),
            controller: owner,
        },
        Reason::WithoutClass => Reason::WithoutClassServedBy { controller: owner },
        other => panic!("a served Ingress cannot have reason {other:?}"),
    }
}

proptest! {
    // Failures print the shrunk input; nothing is written next to the sources.
    #![proptest_config(ProptestConfig {
        cases: 1000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn dispatcher_agrees_with_reference(
        gen_controllers in controllers(),
        gen_classes in classes(),
        gen_ingresses in ingresses(),
    ) {
        let registration = Dispatcher::new(gen_controllers.iter().map(build_controller));
        let dispatcher = match (registration, registration_error(&gen_controllers)) {
            (Ok(d), None) => d,
            (Err(got), Some(want)) => {
                prop_assert_eq!(got, want);
                return Ok(());
            }
            (Ok(_), Some(want)) => {
                return Err(TestCaseError::fail(format!("registration accepted, expected {want:?}")));
            }
            (Err(got), None) => {
                return Err(TestCaseError::fail(format!("registration refused: {got:?}")));
            }
        };
        let classes: Vec<IngressClass> = gen_classes.iter().map(build_class).collect();
        let ingresses: Vec<Ingress> = gen_ingresses.iter().map(build_ingress).collect();
        let d = dispatcher.dispatch(&classes, &ingresses);
        let reference = Reference::new(&gen_controllers, &gen_classes);

        prop_assert_eq!(
            d.default_class.as_deref(),
            reference.default.map(|c| c.name),
            "default class"
        );
        let quarantined: Vec<&str> =
            d.quarantined_classes.iter().map(|q| q.object.name.as_str()).collect();
        prop_assert_eq!(quarantined, reference.invalid.clone(), "quarantined classes");

        let expected: Vec<Expected> = gen_ingresses.iter().map(|i| reference.decide(i)).collect();
        prop_assert_eq!(d.decisions.len(), gen_ingresses.len(), "one decision per Ingress");
        for ((ing, got), want) in gen_ingresses.iter().zip(&d.decisions).zip(&expected) {
            let name = &ing.name;
            prop_assert_eq!(&got.ingress, &object(name), "decisions in input order");
            prop_assert_eq!(&got.controller, &want.controller, "{}: controller", name);
            prop_assert_eq!(&got.class, &want.class, "{}: class", name);
            prop_assert_eq!(&got.reason, &want.reason, "{}: reason", name);
            prop_assert_eq!(
                &got.ignored_annotation,
                &want.ignored_annotation,
                "{}: ignored annotation",
                name
            );
        }

        let listed: Vec<&str> = d.controllers.iter().map(|c| c.controller.as_str()).collect();
        let registered: Vec<&str> = gen_controllers.iter().map(|c| c.name).collect();
        prop_assert_eq!(listed, registered, "one entry per controller, in registration order");
        for c in &d.controllers {
            let who = c.controller.as_str();
            let mut served = Vec::new();
            let mut not_served = Vec::new();
            for (ing, want) in gen_ingresses.iter().zip(&expected) {
                if want.controller.as_deref() == Some(who) {
                    served.push(object(&ing.name));
                } else {
                    not_served.push((object(&ing.name), restated(want)));
                }
            }
            prop_assert_eq!(&c.served, &served, "{}: served", who);
            let got_not_served: Vec<(ObjectRef, Reason)> = c
                .not_served
                .iter()
                .map(|n| (n.ingress.clone(), n.reason.clone()))
                .collect();
            prop_assert_eq!(got_not_served, not_served, "{}: not served", who);
            // OwnedClass is #[non_exhaustive]: compared field by field, as
            // (name, parameters, is_default).
            let owned: Vec<(String, Option<IngressClassParametersReference>, bool)> = reference
                .valid
                .iter()
                .filter(|k| k.controller == who)
                .map(|k| {
                    (
                        k.name.to_owned(),
                        None,
                        reference.default.is_some_and(|d| d.name == k.name),
                    )
                })
                .collect();
            let classes: Vec<(String, Option<IngressClassParametersReference>, bool)> = c
                .classes
                .iter()
                .map(|k| (k.name.clone(), k.parameters.clone(), k.is_default))
                .collect();
            prop_assert_eq!(&classes, &owned, "{}: classes", who);
        }

        for ing in &gen_ingresses {
            let serving = d
                .controllers
                .iter()
                .filter(|c| c.served.contains(&object(&ing.name)))
                .count();
            prop_assert!(serving <= 1, "{} served by {} controllers", ing.name, serving);
        }
    }
}
