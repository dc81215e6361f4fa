//! IngressClass dispatch: which controller serves which Ingress.
//!
//! See [Dispatcher] for the model.

use std::collections::{HashMap, HashSet};
use std::fmt;

use crate::model::{
    self, Ingress, IngressClass, IngressClassParametersReference, ObjectRef,
    INGRESS_CLASS_ANNOTATION,
};
use crate::table::{RouteTable, TableOptions};
use crate::validate::{self, ValidationError};

/// One ingress controller: its name, the class names it answers to, and its table options.
#[derive(Debug, Clone)]
pub struct Controller {
    name: String,
    class_annotations: Vec<String>,
    watch_without_class: bool,
    options: TableOptions,
}

impl Controller {
    /// A controller identified by its controller name, e.g. `k8s.io/ingress-nginx` (the value
    /// IngressClasses put in `spec.controller`).
    pub fn new(name: impl Into<String>) -> Controller {
        Controller {
            name: name.into(),
            class_annotations: Vec::new(),
            watch_without_class: false,
            options: TableOptions::default(),
        }
    }

    /// Also serve Ingresses whose legacy `kubernetes.io/ingress.class` annotation is `value`
    /// (in addition to the names of this controller's IngressClasses).
    pub fn class_annotation(mut self, value: impl Into<String>) -> Controller {
        self.class_annotations.push(value.into());
        self
    }

    /// Serve Ingresses that name no class at all (when no default IngressClass claims them).
    pub fn watch_without_class(mut self, yes: bool) -> Controller {
        self.watch_without_class = yes;
        self
    }

    /// The options this controller's [`RouteTable`] is built with.
    pub fn table_options(mut self, options: TableOptions) -> Controller {
        self.options = options;
        self
    }

    /// The controller name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The options this controller's [`RouteTable`] is built with.
    pub fn options(&self) -> &TableOptions {
        &self.options
    }
}

/// A dispatcher that cannot be set up as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DispatchError {
    /// No controller was given.
    #[error("a dispatcher needs at least one controller")]
    NoControllers,
    /// Two controllers share a name.
    #[error("controller `{0}` is registered twice")]
    DuplicateController(String),
    /// Two controllers answer to the same extra class annotation value.
    #[error("class annotation `{value}` is claimed by both `{first}` and `{second}`")]
    SharedClassAnnotation {
        /// The annotation value.
        value: String,
        /// The controller registered first.
        first: String,
        /// The controller registered second.
        second: String,
    },
}

/// IngressClass dispatch: which controller serves which Ingress.
///
/// A cluster often runs several ingress controllers at once, and each must serve exactly its own
/// Ingresses. A [`Dispatcher`] holds one or more [`Controller`]s; given the cluster's
/// IngressClasses and Ingresses it decides, for every Ingress, which controller (if any) serves
/// it and why, and compiles one [`RouteTable`] per controller.
///
/// An Ingress is served by controller `C` when (in this order):
///
/// 1. `spec.ingressClassName` is `N` and the IngressClass `N` exists with `spec.controller: C`.
///    A class that names no existing (valid) IngressClass is served by nobody. When the legacy
///    annotation is also set, `ingressClassName` wins.
/// 2. Otherwise, the annotation `kubernetes.io/ingress.class` equals one of `C`'s class names:
///    the names of the IngressClasses of `C`, plus the extra names `C` was configured with
///    ([`Controller::class_annotation`]). A name that is an IngressClass wins over an extra name.
/// 3. Otherwise (neither set): the controller that owns the default IngressClass (annotation
///    `ingressclass.kubernetes.io/is-default-class: "true"`; with several, the newest wins, ties by
///    name ascending, as the apiserver picks), when it is registered here; else the first
///    registered controller that serves Ingresses without a class
///    ([`Controller::watch_without_class`], ingress-nginx's `--watch-ingress-without-class`), even
///    when the default class belongs to a controller outside this process.
///
/// So every Ingress lands with exactly one registered controller or with none, and every
/// controller gets a [`Reason`] for every Ingress it does not serve. Invalid IngressClasses are
/// quarantined like invalid Ingresses: they own nothing and are never the default.
///
/// ```
/// use ingress_router::{Controller, Dispatcher};
/// use ingress_router::Manifests;
///
/// let cluster = Manifests::parse(r#"
/// kind: IngressClass
/// metadata: {name: nginx}
/// spec: {controller: k8s.io/ingress-nginx}
/// ---
/// kind: IngressClass
/// metadata: {name: haproxy}
/// spec: {controller: haproxy.org/ingress-controller}
/// ---
/// kind: Ingress
/// metadata: {name: shop}
/// spec:
///   ingressClassName: nginx
///   defaultBackend: {service: {name: shop, port: {number: 80}}}
/// ---
/// kind: Ingress
/// metadata: {name: blog}
/// spec:
///   ingressClassName: haproxy
///   defaultBackend: {service: {name: blog, port: {number: 80}}}
/// "#);
/// let dispatcher = Dispatcher::new([
///     Controller::new("k8s.io/ingress-nginx"),
///     Controller::new("haproxy.org/ingress-controller"),
/// ])
/// .unwrap();
/// let dispatch = dispatcher.dispatch(&cluster.ingress_classes, &cluster.ingresses);
///
/// let nginx = dispatch.controller("k8s.io/ingress-nginx").unwrap();
/// assert_eq!(nginx.served[0].name, "shop");
/// assert_eq!(
///     nginx.not_served[0].reason.to_string(),
///     "class `haproxy` belongs to controller `haproxy.org/ingress-controller`"
/// );
/// let routed = nginx.table.route(Some("any.host"), "/").unwrap();
/// assert_eq!(routed.backend().to_string(), "service default/shop:80");
/// ```
///
/// Decides which controller serves which Ingress. See the [module docs](crate::Dispatcher).
#[derive(Debug, Clone)]
pub struct Dispatcher {
    controllers: Vec<Controller>,
}

/// Why an Ingress is, or is not, served by a controller.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// `spec.ingressClassName` names an IngressClass of this controller.
    ClassOwned {
        /// The class name.
        class: String,
    },
    /// `spec.ingressClassName` names an IngressClass of another controller.
    ClassOfOtherController {
        /// The class name.
        class: String,
        /// The controller the class belongs to.
        controller: String,
    },
    /// `spec.ingressClassName` names no IngressClass.
    ClassNotFound {
        /// The class name.
        class: String,
    },
    /// `spec.ingressClassName` names an IngressClass that is invalid.
    ClassInvalid {
        /// The class name.
        class: String,
    },
    /// The `kubernetes.io/ingress.class` annotation is one of this controller's class names.
    AnnotationOwned {
        /// The annotation value.
        class: String,
    },
    /// The annotation names a class of another registered controller.
    AnnotationOfOtherController {
        /// The annotation value.
        class: String,
        /// The controller that answers to it.
        controller: String,
    },
    /// The annotation is no registered controller's class name.
    AnnotationUnknown {
        /// The annotation value.
        class: String,
    },
    /// No class set; the default IngressClass belongs to this controller.
    DefaultClassOwned {
        /// The default class.
        class: String,
    },
    /// No class set; the default IngressClass belongs to another controller.
    DefaultClassOfOtherController {
        /// The default class.
        class: String,
        /// The controller it belongs to.
        controller: String,
    },
    /// No class set; this controller serves Ingresses without a class.
    WithoutClass,
    /// No class set; an earlier-registered controller serves Ingresses without a class.
    WithoutClassServedBy {
        /// That controller.
        controller: String,
    },
    /// No class set, no default IngressClass, and no controller serves class-less Ingresses.
    NoClass,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::ClassOwned { class } => {
                write!(f, "IngressClass `{class}` belongs to this controller")
            }
            Reason::ClassOfOtherController { class, controller } => {
                write!(f, "class `{class}` belongs to controller `{controller}`")
            }
            Reason::ClassNotFound { class } => write!(f, "IngressClass `{class}` not found"),
            Reason::ClassInvalid { class } => {
                write!(f, "IngressClass `{class}` is invalid and serves nothing")
            }
            Reason::AnnotationOwned { class } => write!(
                f,
                "annotation {INGRESS_CLASS_ANNOTATION} `{class}` is a class name of this controller"
            ),
            Reason::AnnotationOfOtherController { class, controller } => write!(
                f,
                "annotation {INGRESS_CLASS_ANNOTATION} `{class}` belongs to controller `{controller}`"
            ),
            Reason::AnnotationUnknown { class } => write!(
                f,
                "annotation {INGRESS_CLASS_ANNOTATION} `{class}` is no controller's class name"
            ),
            Reason::DefaultClassOwned { class } => write!(
                f,
                "no class set; the default IngressClass `{class}` belongs to this controller"
            ),
            Reason::DefaultClassOfOtherController { class, controller } => write!(
                f,
                "no class set; the default IngressClass `{class}` belongs to controller `{controller}`"
            ),
            Reason::WithoutClass => {
                f.write_str("no class set; this controller serves Ingresses without a class")
            }
            Reason::WithoutClassServedBy { controller } => write!(
                f,
                "no class set; controller `{controller}` serves Ingresses without a class"
            ),
            Reason::NoClass => f.write_str(
                "no class set, no default IngressClass, and no controller serves Ingresses without a class",
            ),
        }
    }
}

/// The verdict on one Ingress: who serves it, through which class, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Decision {
    /// The Ingress.
    pub ingress: ObjectRef,
    /// The controller that serves it, `None` when no registered controller does.
    pub controller: Option<String>,
    /// The class it was matched through: `ingressClassName`, the annotation, or the default
    /// class; `None` when it names no class and none applies.
    pub class: Option<String>,
    /// Why, from the serving controller's point of view (or the deciding rule's, when none).
    pub reason: Reason,
    /// The annotation value ignored because `spec.ingressClassName` is also set and differs.
    pub ignored_annotation: Option<String>,
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.reason)?;
        if let Some(value) = &self.ignored_annotation {
            write!(
                f,
                "; annotation {INGRESS_CLASS_ANNOTATION} `{value}` ignored: spec.ingressClassName wins"
            )?;
        }
        Ok(())
    }
}

/// An IngressClass a controller owns, with the parameters it configures the controller with.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OwnedClass {
    /// The class name.
    pub name: String,
    /// `spec.parameters`: where the controller finds its settings for this class.
    pub parameters: Option<IngressClassParametersReference>,
    /// Whether this is the cluster's default class.
    pub is_default: bool,
}

/// An Ingress a controller does not serve, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NotServed {
    /// The Ingress.
    pub ingress: ObjectRef,
    /// Why this controller does not serve it.
    pub reason: Reason,
}

/// An invalid IngressClass, which owns nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QuarantinedClass {
    /// The IngressClass.
    pub object: ObjectRef,
    /// What the apiserver would say about it.
    pub errors: Vec<ValidationError>,
}

/// What one controller gets: its classes, its Ingresses, its table.
#[derive(Debug)]
#[non_exhaustive]
pub struct ControllerDispatch {
    /// The controller name.
    pub controller: String,
    /// The valid IngressClasses whose `spec.controller` is this controller.
    pub classes: Vec<OwnedClass>,
    /// The Ingresses this controller serves, in input order.
    pub served: Vec<ObjectRef>,
    /// Every other Ingress, with the reason, in input order.
    pub not_served: Vec<NotServed>,
    /// The table compiled from the served Ingresses with this controller's options.
    pub table: RouteTable,
}

/// The outcome of [`Dispatcher::dispatch`].
#[derive(Debug)]
#[non_exhaustive]
pub struct Dispatch {
    /// One entry per registered controller, in registration order.
    pub controllers: Vec<ControllerDispatch>,
    /// One decision per Ingress, in input order.
    pub decisions: Vec<Decision>,
    /// The default IngressClass, if any valid class is marked default.
    pub default_class: Option<String>,
    /// Invalid IngressClasses.
    pub quarantined_classes: Vec<QuarantinedClass>,
}

impl Dispatch {
    /// The dispatch of the controller with this name.
    pub fn controller(&self, name: &str) -> Option<&ControllerDispatch> {
        self.controllers.iter().find(|c| c.controller == name)
    }
}

/// The default class among valid ones: newest `creationTimestamp` (none counts as newer than
/// any, later input as newer among those), ties by name ascending.
fn default_class<'a>(classes: &[&'a IngressClass]) -> Option<&'a IngressClass> {
    classes
        .iter()
        .enumerate()
        .filter(|(_, c)| c.is_default())
        .max_by(|(ia, a), (ib, b)| {
            let age = |i: &usize, c: &IngressClass| (c.metadata.creation_timestamp, *i);
            // The maximum is the newest; among equal timestamps the first name wins.
            model::by_age(age(ia, a), age(ib, b), || {
                b.metadata.name.cmp(&a.metadata.name)
            })
        })
        .map(|(_, c)| *c)
}

/// A [`Dispatch`] before any table is compiled.
#[derive(Debug)]
pub(crate) struct Plan<'a> {
    pub(crate) controllers: Vec<Planned<'a>>,
    pub(crate) decisions: Vec<Decision>,
    pub(crate) default_class: Option<String>,
    pub(crate) quarantined_classes: Vec<QuarantinedClass>,
}

/// One controller's part of a [`Plan`].
#[derive(Debug)]
pub(crate) struct Planned<'a> {
    pub(crate) controller: &'a Controller,
    pub(crate) classes: Vec<OwnedClass>,
    pub(crate) served: Vec<ObjectRef>,
    pub(crate) served_ingresses: Vec<&'a Ingress>,
    pub(crate) not_served: Vec<NotServed>,
}

impl Dispatcher {
    /// A dispatcher for these controllers, in registration order (which decides only among
    /// controllers that all serve Ingresses without a class).
    pub fn new(
        controllers: impl IntoIterator<Item = Controller>,
    ) -> Result<Dispatcher, DispatchError> {
        let controllers: Vec<Controller> = controllers.into_iter().collect();
        if controllers.is_empty() {
            return Err(DispatchError::NoControllers);
        }
        let mut names = HashSet::new();
        let mut annotations: HashMap<&str, &str> = HashMap::new();
        for controller in &controllers {
            if !names.insert(controller.name.as_str()) {
                return Err(DispatchError::DuplicateController(controller.name.clone()));
            }
            for value in &controller.class_annotations {
                if let Some(first) = annotations.insert(value, &controller.name) {
                    if first != controller.name {
                        return Err(DispatchError::SharedClassAnnotation {
                            value: value.clone(),
                            first: first.to_owned(),
                            second: controller.name.clone(),
                        });
                    }
                }
            }
        }
        Ok(Dispatcher { controllers })
    }

    /// The registered controllers.
    pub fn controllers(&self) -> &[Controller] {
        &self.controllers
    }

    /// Decides every Ingress and compiles one table per controller.
    pub fn dispatch(&self, classes: &[IngressClass], ingresses: &[Ingress]) -> Dispatch {
        let ingresses: Vec<&Ingress> = ingresses.iter().collect();
        let plan = self.plan(classes, &ingresses);
        Dispatch {
            controllers: plan
                .controllers
                .into_iter()
                .map(|p| ControllerDispatch {
                    table: RouteTable::build(p.served_ingresses, p.controller.options.clone()),
                    controller: p.controller.name.clone(),
                    classes: p.classes,
                    served: p.served,
                    not_served: p.not_served,
                })
                .collect(),
            decisions: plan.decisions,
            default_class: plan.default_class,
            quarantined_classes: plan.quarantined_classes,
        }
    }

    /// Decides every Ingress without compiling any table.
    pub(crate) fn plan<'a>(
        &'a self,
        classes: &[IngressClass],
        ingresses: &[&'a Ingress],
    ) -> Plan<'a> {
        let mut quarantined_classes = Vec::new();
        let mut valid: Vec<&IngressClass> = Vec::new();
        let mut invalid: HashSet<&str> = HashSet::new();
        // As with Ingresses, the last object with a name counts.
        let mut last: HashMap<&str, usize> = HashMap::new();
        for (i, class) in classes.iter().enumerate() {
            last.insert(class.metadata.name.as_str(), i);
        }
        for (i, class) in classes.iter().enumerate() {
            if last.get(class.metadata.name.as_str()) != Some(&i) {
                continue;
            }
            let errors = validate::validate_ingress_class(class);
            if errors.is_empty() {
                valid.push(class);
            } else {
                invalid.insert(class.metadata.name.as_str());
                quarantined_classes.push(QuarantinedClass {
                    object: class.object_ref(),
                    errors,
                });
            }
        }
        let by_name: HashMap<&str, &IngressClass> = valid
            .iter()
            .map(|c| (c.metadata.name.as_str(), *c))
            .collect();
        let default = default_class(&valid);
        let registered =
            |controller: &str| self.controllers.iter().position(|c| c.name == controller);

        let decisions: Vec<Decision> = ingresses
            .iter()
            .map(|ingress| self.decide(ingress, &by_name, &invalid, default, &registered))
            .collect();

        let controllers = self
            .controllers
            .iter()
            .map(|controller| {
                let mut served = Vec::new();
                let mut served_ingresses = Vec::new();
                let mut not_served = Vec::new();
                for (&ingress, decision) in ingresses.iter().zip(&decisions) {
                    if decision.controller.as_deref() == Some(controller.name.as_str()) {
                        served.push(decision.ingress.clone());
                        served_ingresses.push(ingress);
                    } else {
                        not_served.push(NotServed {
                            ingress: decision.ingress.clone(),
                            reason: Self::reason_for(decision),
                        });
                    }
                }
                let owned = valid
                    .iter()
                    .filter(|c| c.spec.controller == controller.name)
                    .map(|c| OwnedClass {
                        name: c.metadata.name.clone(),
                        parameters: c.spec.parameters.clone(),
                        is_default: default.is_some_and(|d| std::ptr::eq(d, *c)),
                    })
                    .collect();
                Planned {
                    controller,
                    classes: owned,
                    served,
                    served_ingresses,
                    not_served,
                }
            })
            .collect();

        Plan {
            controllers,
            decisions,
            default_class: default.map(|c| c.metadata.name.clone()),
            quarantined_classes,
        }
    }

    fn decide(
        &self,
        ingress: &Ingress,
        classes: &HashMap<&str, &IngressClass>,
        invalid: &HashSet<&str>,
        default: Option<&IngressClass>,
        registered: &dyn Fn(&str) -> Option<usize>,
    ) -> Decision {
        let annotation = ingress
            .metadata
            .annotations
            .get(INGRESS_CLASS_ANNOTATION)
            .filter(|v| !v.is_empty());
        let class_name = ingress
            .spec
            .ingress_class_name
            .as_deref()
            .filter(|n| !n.is_empty());
        let decision = |controller: Option<&str>, class: Option<&str>, reason| Decision {
            ingress: ingress.object_ref(),
            controller: controller.map(str::to_owned),
            class: class.map(str::to_owned),
            reason,
            ignored_annotation: None,
        };

        if let Some(name) = class_name {
            let mut d = match classes.get(name) {
                Some(class) => {
                    let controller = &class.spec.controller;
                    if registered(controller).is_some() {
                        decision(
                            Some(controller),
                            Some(name),
                            Reason::ClassOwned { class: name.into() },
                        )
                    } else {
                        decision(
                            None,
                            Some(name),
                            Reason::ClassOfOtherController {
                                class: name.into(),
                                controller: controller.clone(),
                            },
                        )
                    }
                }
                None if invalid.contains(name) => decision(
                    None,
                    Some(name),
                    Reason::ClassInvalid { class: name.into() },
                ),
                None => decision(
                    None,
                    Some(name),
                    Reason::ClassNotFound { class: name.into() },
                ),
            };
            d.ignored_annotation = annotation.filter(|v| v.as_str() != name).cloned();
            return d;
        }

        if let Some(value) = annotation {
            // An IngressClass name wins over a configured extra name.
            if let Some(class) = classes.get(value.as_str()) {
                let controller = &class.spec.controller;
                return if registered(controller).is_some() {
                    decision(
                        Some(controller),
                        Some(value),
                        Reason::AnnotationOwned {
                            class: value.clone(),
                        },
                    )
                } else {
                    decision(
                        None,
                        Some(value),
                        Reason::AnnotationOfOtherController {
                            class: value.clone(),
                            controller: controller.clone(),
                        },
                    )
                };
            }
            return match self
                .controllers
                .iter()
                .find(|c| c.class_annotations.contains(value))
            {
                Some(c) => decision(
                    Some(&c.name),
                    Some(value),
                    Reason::AnnotationOwned {
                        class: value.clone(),
                    },
                ),
                None if invalid.contains(value.as_str()) => decision(
                    None,
                    Some(value),
                    Reason::ClassInvalid {
                        class: value.clone(),
                    },
                ),
                None => decision(
                    None,
                    Some(value),
                    Reason::AnnotationUnknown {
                        class: value.clone(),
                    },
                ),
            };
        }

        // A default class owned here wins; a registered controller that serves class-less
        // Ingresses comes next (it opted in, even when the default belongs elsewhere).
        if let Some(class) = default.filter(|c| registered(&c.spec.controller).is_some()) {
            let name = class.metadata.name.as_str();
            return decision(
                Some(&class.spec.controller),
                Some(name),
                Reason::DefaultClassOwned { class: name.into() },
            );
        }
        if let Some(c) = self.controllers.iter().find(|c| c.watch_without_class) {
            return decision(Some(&c.name), None, Reason::WithoutClass);
        }
        match default {
            Some(class) => {
                let name = class.metadata.name.as_str();
                decision(
                    None,
                    Some(name),
                    Reason::DefaultClassOfOtherController {
                        class: name.into(),
                        controller: class.spec.controller.clone(),
                    },
                )
            }
            None => decision(None, None, Reason::NoClass),
        }
    }

    /// The decision restated from a controller that does not serve the Ingress.
    fn reason_for(decision: &Decision) -> Reason {
        let Some(owner) = decision.controller.clone() else {
            return decision.reason.clone();
        };
        match &decision.reason {
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
            other => other.clone(),
        }
    }
}
