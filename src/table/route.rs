//! What a compiled route carries beyond its host and path.
//!
//! See [RouteExtension] for the model.

use std::fmt;

use http::{HeaderMap, HeaderName, Method};

use crate::backend::Backend;
use crate::model::Ingress;

/// A backend and its share of the requests, relative to the other backends of its route.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WeightedBackend {
    /// Where requests go.
    pub backend: Backend,
    /// Its weight; a backend of weight 0 gets no requests.
    pub weight: u32,
}

impl WeightedBackend {
    /// `backend` with `weight`.
    pub fn new(backend: Backend, weight: u32) -> WeightedBackend {
        WeightedBackend { backend, weight }
    }
}

/// The backends of a route, with their weights: one of weight 1 for a plain Ingress rule and
/// for fallbacks (kept without a weight, so that they cost nothing more), or the weighted list
/// a [`RouteExtension`] gave the rule.
#[derive(Debug, Clone, Copy)]
pub struct Backends<'a> {
    one: Option<&'a Backend>,
    weighted: &'a [WeightedBackend],
}

impl<'a> Backends<'a> {
    pub(super) fn one(backend: &'a Backend) -> Backends<'a> {
        Backends {
            one: Some(backend),
            weighted: &[],
        }
    }

    pub(super) fn weighted(weighted: &'a [WeightedBackend]) -> Backends<'a> {
        Backends {
            one: None,
            weighted,
        }
    }

    /// How many backends there are (at least one).
    pub fn len(&self) -> usize {
        match self.one {
            Some(_) => 1,
            None => self.weighted.len(),
        }
    }

    /// Whether there are none (never, for a route).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Each backend with its weight, in the order the extension gave them.
    pub fn iter(&self) -> impl Iterator<Item = (&'a Backend, u32)> + 'a {
        let one = self.one.map(|b| (b, 1));
        one.into_iter()
            .chain(self.weighted.iter().map(|w| (&w.backend, w.weight)))
    }

    /// One backend for the number `n` (a random or round-robin draw), in proportion to the
    /// weights; the first when every weight is 0.
    pub fn pick(&self, n: u64) -> &'a Backend {
        match self.one {
            Some(backend) => backend,
            None => pick(self.weighted, n).unwrap_or(&self.weighted[0].backend),
        }
    }
}

/// Typed values a route carries for the code that forwards its requests (rewrites, redirects,
/// limits, …): one value per type, as in [`http::Extensions`]. Empty for a plain Ingress.
///
/// ```
/// use ingress_router::Policy;
///
/// #[derive(Debug, Clone, PartialEq)]
/// struct Timeout(u64);
///
/// let mut policy = Policy::default();
/// policy.insert(Timeout(30));
/// assert_eq!(policy.get::<Timeout>(), Some(&Timeout(30)));
/// ```
#[derive(Clone, Default)]
pub struct Policy {
    values: http::Extensions,
}

impl Policy {
    /// Sets the value of type `T`, returning the one it replaces.
    pub fn insert<T: Clone + Send + Sync + 'static>(&mut self, value: T) -> Option<T> {
        self.values.insert(value)
    }

    /// The value of type `T`, if set.
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.values.get()
    }

    /// Whether no value is set.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("values", &self.values.len())
            .finish()
    }
}

/// How a condition compares a value of the request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ValueMatch {
    /// The value is there, whatever it is.
    Present,
    /// The value is exactly this (byte for byte).
    Exact(Box<str>),
}

impl ValueMatch {
    fn matches(&self, value: &[u8]) -> bool {
        match self {
            ValueMatch::Present => true,
            ValueMatch::Exact(expected) => expected.as_bytes() == value,
        }
    }
}

/// Something a request must have, beyond its host and path, for a route to take it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Condition {
    /// A header: any of its values matches.
    Header {
        /// The header's name.
        name: HeaderName,
        /// What its value must be.
        value: ValueMatch,
    },
    /// A query parameter, compared as received (not percent-decoded): any of its values
    /// matches.
    Query {
        /// The parameter's name.
        name: Box<str>,
        /// What its value must be.
        value: ValueMatch,
    },
    /// The request method.
    Method(Method),
    /// A cookie of the `Cookie` headers: any with this name matches.
    Cookie {
        /// The cookie's name.
        name: Box<str>,
        /// What its value must be.
        value: ValueMatch,
    },
}

/// The parts of a request that conditions read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestParts<'r> {
    pub(crate) method: &'r Method,
    pub(crate) headers: &'r HeaderMap,
    pub(crate) query: Option<&'r str>,
}

impl<'r> RequestParts<'r> {
    /// The parts of `request`, whose query is `query`.
    #[inline]
    pub(crate) fn of<B>(request: &'r http::Request<B>, query: Option<&'r str>) -> Self {
        RequestParts {
            method: request.method(),
            headers: request.headers(),
            query,
        }
    }
}

impl Condition {
    /// Whether `request` meets the condition; without a request, nothing does.
    pub(crate) fn holds(&self, request: Option<&RequestParts<'_>>) -> bool {
        let Some(request) = request else {
            return false;
        };
        match self {
            Condition::Header { name, value } => request
                .headers
                .get_all(name)
                .iter()
                .any(|v| value.matches(v.as_bytes())),
            Condition::Query { name, value } => request.query.is_some_and(|query| {
                query.split('&').any(|pair| {
                    let (key, found) = pair.split_once('=').unwrap_or((pair, ""));
                    key == &**name && value.matches(found.as_bytes())
                })
            }),
            Condition::Method(method) => request.method == method,
            Condition::Cookie { name, value } => request
                .headers
                .get_all(http::header::COOKIE)
                .iter()
                .flat_map(|line| line.as_bytes().split(|&b| b == b';'))
                .any(|pair| {
                    let pair = pair.trim_ascii();
                    let (key, found) = match pair.iter().position(|&b| b == b'=') {
                        Some(i) => (&pair[..i], &pair[i + 1..]),
                        None => (pair, &b""[..]),
                    };
                    key == name.as_bytes() && value.matches(found)
                }),
        }
    }
}

/// What one rule path's route carries beyond its host, path and backend; see the
/// [module docs](crate::RouteExtension).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RouteExtras {
    /// What a request must have for the route to take it; empty: nothing.
    pub conditions: Vec<Condition>,
    /// The backends, with weights, instead of the rule's own; empty: the rule's backend alone.
    pub backends: Vec<WeightedBackend>,
    /// Values for the forwarding code.
    pub policy: Policy,
}

impl RouteExtras {
    /// Nothing extra.
    pub fn new() -> RouteExtras {
        RouteExtras::default()
    }

    /// Adds a condition.
    pub fn condition(mut self, condition: Condition) -> RouteExtras {
        self.conditions.push(condition);
        self
    }

    /// Adds a backend with its weight.
    pub fn backend(mut self, backend: Backend, weight: u32) -> RouteExtras {
        self.backends.push(WeightedBackend::new(backend, weight));
        self
    }

    /// Sets the policy.
    pub fn policy(mut self, policy: Policy) -> RouteExtras {
        self.policy = policy;
        self
    }
}

/// What a compiled route carries beyond its host and path: weighted backends, a policy, and
/// conditions on the rest of the request.
///
/// A plain Ingress rule compiles to a route with one backend of weight 1, no policy and no
/// condition, and costs nothing more than that. A [`RouteExtension`] (set in
/// [`TableOptions::extension`](crate::TableOptions::extension)) can give any rule path more:
/// conditions on headers, the query, the method or cookies; several backends with weights; and
/// a [`Policy`] of typed values for the code that forwards the request.
///
/// # Candidates at one path
///
/// Several routes may sit at the same host, path and path type when some have conditions.
/// They are tried in this order, and the first whose conditions all hold is taken:
///
/// 1. routes with conditions, the one with more conditions first; among equally many, the
///    usual precedence (the older Ingress, then `namespace/name`, then rule order);
/// 2. the route without conditions (the winner of the plain rules, as for any Ingress).
///
/// When none holds, the request is routed as if that path had no rule: an `Exact` path gives
/// way to the longest matching `Prefix`, a `Prefix` to the next shorter one, and so on to the
/// fallbacks. Two routes with the same conditions at the same path conflict like two plain
/// rules: the older wins and the conflict is reported.
///
/// [`RouteTable::route`](crate::RouteTable::route) sees only a host and a path, so for it no
/// condition holds; [`RouteTable::route_request`](crate::RouteTable::route_request) and the
/// tower layer check them against the request.
///
/// Gives the rule paths of Ingresses what a plain Ingress cannot say (from annotations, say):
/// conditions, weighted backends, a policy. Called once per path rule of every admitted
/// Ingress when a table is compiled, never on the request path.
///
/// ```
/// use std::sync::Arc;
/// use ingress_router::{
///     Condition, Ingress, Manifests, RouteExtension, RouteExtras, RouteTable, TableOptions, ValueMatch,
/// };
///
/// /// Rules of Ingresses annotated `example.com/beta: "true"` take only requests with `x-beta`.
/// #[derive(Debug)]
/// struct Beta;
///
/// impl RouteExtension for Beta {
///     fn extras(&self, ingress: &Ingress, _rule: usize, _path: usize) -> Option<RouteExtras> {
///         let beta = ingress.metadata.annotations.get("example.com/beta")?;
///         (beta == "true").then(|| {
///             RouteExtras::new().condition(Condition::Header {
///                 name: http::HeaderName::from_static("x-beta"),
///                 value: ValueMatch::Present,
///             })
///         })
///     }
/// }
///
/// let manifests = Manifests::parse(r#"
/// kind: Ingress
/// metadata: {name: web}
/// spec:
///   rules:
///   - http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
/// ---
/// kind: Ingress
/// metadata: {name: web-beta, annotations: {example.com/beta: "true"}}
/// spec:
///   rules:
///   - http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: beta, port: {number: 80}}}}]}
/// "#);
/// let options = TableOptions { extension: Some(Arc::new(Beta)), ..TableOptions::default() };
/// let table = RouteTable::build(&manifests.ingresses, options);
///
/// let plain = http::Request::get("/x").header("host", "example.com").body(()).unwrap();
/// let beta = http::Request::get("/x").header("host", "example.com").header("x-beta", "1");
/// let beta = beta.body(()).unwrap();
/// let route = |r| table.route_request(r).unwrap().route.unwrap().backend().to_string();
/// assert_eq!(route(&plain), "service default/web:80");
/// assert_eq!(route(&beta), "service default/beta:80");
/// ```
pub trait RouteExtension: fmt::Debug + Send + Sync {
    /// What the path rule `spec.rules[rule].http.paths[path]` of `ingress` carries beyond its
    /// host, path and backend; `None` for nothing.
    fn extras(&self, ingress: &Ingress, rule: usize, path: usize) -> Option<RouteExtras>;

    /// What the extension decides for a whole virtual host, seeing every Ingress with rules
    /// for it (`ingresses`, oldest first): rule paths that route nothing of their own, extras
    /// that depend on several Ingresses, and (feature `regex`) regex path matching. Called once
    /// per virtual host each time it is compiled, before [`RouteExtension::extras`]; the
    /// default decides nothing.
    fn host_extras(&self, host: Option<&str>, ingresses: &[&Ingress]) -> HostExtras {
        let _ = (host, ingresses);
        HostExtras::default()
    }

    /// Which Ingress without rules serves requests that select no host (the catch-all), and
    /// what its route carries: `candidates` are every Ingress without rules that has a
    /// defaultBackend, oldest first. The default is the oldest, with nothing extra.
    fn catch_all_extras(&self, candidates: &[&Ingress]) -> CatchAllExtras {
        let _ = candidates;
        CatchAllExtras::oldest()
    }

    /// Why `ingress` must not be served at all, if it must not: it is then quarantined like
    /// an invalid Ingress, with this reason (a [`ValidationError`](crate::ValidationError) on
    /// `field`), and its neighbours are served as usual. The default refuses nothing.
    fn refuse(&self, ingress: &Ingress) -> Option<Refused> {
        let _ = ingress;
        None
    }
}

/// Why a [`RouteExtension`] refuses an Ingress.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Refused {
    /// The field at fault, e.g. `metadata.annotations[example.com/snippet]`.
    pub field: String,
    /// Why it cannot be served.
    pub reason: String,
}

impl Refused {
    /// A refusal of `field` for `reason`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Refused {
        Refused {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// What a [`RouteExtension`] decides for the catch-all; see
/// [`RouteExtension::catch_all_extras`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CatchAllExtras {
    /// The index of the candidate whose defaultBackend serves; `None`: none of them (the
    /// host-less rules' fallback, else the controller default, answers instead).
    pub serving: Option<usize>,
    /// What its route carries.
    pub extras: Option<RouteExtras>,
}

impl CatchAllExtras {
    /// The oldest candidate, with nothing extra: the Kubernetes answer.
    pub fn oldest() -> CatchAllExtras {
        CatchAllExtras {
            serving: Some(0),
            extras: None,
        }
    }

    /// The candidate at `index`, carrying `extras`.
    pub fn serving(index: usize, extras: Option<RouteExtras>) -> CatchAllExtras {
        CatchAllExtras {
            serving: Some(index),
            extras,
        }
    }
}

/// One rule path of the Ingresses given to [`RouteExtension::host_extras`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub struct PathRef {
    /// Index into the `ingresses` given.
    pub ingress: usize,
    /// Index into that Ingress's `spec.rules`.
    pub rule: usize,
    /// Index into that rule's `http.paths`.
    pub path: usize,
}

impl PathRef {
    /// `spec.rules[rule].http.paths[path]` of `ingresses[ingress]`.
    pub fn new(ingress: usize, rule: usize, path: usize) -> PathRef {
        PathRef {
            ingress,
            rule,
            path,
        }
    }
}

/// What a [`RouteExtension`] decides for one virtual host; see
/// [`RouteExtension::host_extras`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct HostExtras {
    /// Rule paths that route nothing of their own (say, canary rules merged into another).
    pub withheld: Vec<PathRef>,
    /// Extras for rule paths, in place of what [`RouteExtension::extras`] would give them.
    pub extras: Vec<(PathRef, RouteExtras)>,
    /// Other host names that this virtual host also serves, every path of it (ingress-nginx's
    /// `server-alias`): exact, canonical names (lower case, no port). A name that is a host
    /// of its own, or another host's alias already, keeps its first owner.
    pub aliases: Vec<String>,
    /// Match every rule path of the host as a regular expression, as ingress-nginx does once
    /// any Ingress of a host asks for regex paths (feature `regex`).
    ///
    /// Each rule path `P`, whatever its path type, becomes the case-insensitive regex `^(?:P)`,
    /// anchored at the start only; they are tried longest path first (then in reverse
    /// lexical order, as ingress-nginx sorts its locations), and the first that matches the
    /// canonical request path takes it. A path that is not a valid regex, or that compiles
    /// past the size limits, is left out with a warning. Matching takes time linear in the
    /// path's length for each regex (the `regex` crate never backtracks).
    #[cfg(feature = "regex")]
    pub regex_paths: bool,
}

/// The compiled form of a rule's [`RouteExtras`], beside the trie.
#[derive(Debug, Clone)]
pub(super) struct Extra {
    pub(super) backends: Box<[WeightedBackend]>,
    pub(super) policy: Policy,
    pub(super) conditions: Box<[Condition]>,
    /// The candidate to try when the conditions do not hold.
    pub(super) next: super::trie::Winner,
}

/// Picks one of `backends` for the number `n` (a random or round-robin draw), in proportion to
/// their weights; the first when every weight is 0.
pub(super) fn pick(backends: &[WeightedBackend], n: u64) -> Option<&Backend> {
    let total: u64 = backends.iter().map(|b| u64::from(b.weight)).sum();
    if total == 0 {
        return backends.first().map(|b| &b.backend);
    }
    let mut left = n % total;
    for b in backends {
        let weight = u64::from(b.weight);
        if left < weight {
            return Some(&b.backend);
        }
        left -= weight;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(
        method: &str,
        headers: &[(&str, &str)],
        query: Option<&'static str>,
    ) -> (Method, HeaderMap, Option<&'static str>) {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        (method.parse().unwrap(), map, query)
    }

    fn holds(c: &Condition, r: &(Method, HeaderMap, Option<&'static str>)) -> bool {
        c.holds(Some(&RequestParts {
            method: &r.0,
            headers: &r.1,
            query: r.2,
        }))
    }

    #[test]
    fn header_conditions_match_any_value() {
        let c = Condition::Header {
            name: HeaderName::from_static("x-canary"),
            value: ValueMatch::Exact("always".into()),
        };
        assert!(holds(
            &c,
            &request(
                "GET",
                &[("x-canary", "never"), ("x-canary", "always")],
                None
            )
        ));
        assert!(!holds(&c, &request("GET", &[("x-canary", "Always")], None)));
        assert!(!holds(&c, &request("GET", &[], None)));
        assert!(!c.holds(None));
    }

    #[test]
    fn query_conditions_compare_raw_pairs() {
        let c = Condition::Query {
            name: "v".into(),
            value: ValueMatch::Exact("2".into()),
        };
        assert!(holds(&c, &request("GET", &[], Some("a=1&v=2"))));
        assert!(!holds(&c, &request("GET", &[], Some("v=%32"))));
        assert!(!holds(&c, &request("GET", &[], Some("vv=2"))));
        let present = Condition::Query {
            name: "debug".into(),
            value: ValueMatch::Present,
        };
        assert!(holds(&present, &request("GET", &[], Some("debug"))));
        assert!(!holds(&present, &request("GET", &[], None)));
    }

    #[test]
    fn method_and_cookie_conditions() {
        let post = Condition::Method(Method::POST);
        assert!(holds(&post, &request("POST", &[], None)));
        assert!(!holds(&post, &request("GET", &[], None)));
        let cookie = Condition::Cookie {
            name: "canary".into(),
            value: ValueMatch::Exact("always".into()),
        };
        assert!(holds(
            &cookie,
            &request("GET", &[("cookie", "a=b; canary=always")], None)
        ));
        assert!(holds(
            &cookie,
            &request(
                "GET",
                &[("cookie", "a=b"), ("cookie", "canary=always")],
                None
            )
        ));
        assert!(!holds(
            &cookie,
            &request("GET", &[("cookie", "xcanary=always")], None)
        ));
        assert!(!holds(
            &cookie,
            &request("GET", &[("x-cookie", "canary=always")], None)
        ));
    }

    #[test]
    fn picks_follow_the_weights() {
        let a: Backend = "ns/a:80".parse().unwrap();
        let b: Backend = "ns/b:80".parse().unwrap();
        let backends = [
            WeightedBackend::new(a.clone(), 3),
            WeightedBackend::new(b.clone(), 1),
        ];
        let picks: Vec<_> = (0..8)
            .map(|n| pick(&backends, n).unwrap().clone())
            .collect();
        assert_eq!(picks.iter().filter(|p| **p == a).count(), 6);
        assert_eq!(picks.iter().filter(|p| **p == b).count(), 2);
        let zero = [
            WeightedBackend::new(a.clone(), 0),
            WeightedBackend::new(b.clone(), 0),
        ];
        assert_eq!(pick(&zero, 5), Some(&a));
        let canary_off = [
            WeightedBackend::new(a.clone(), 100),
            WeightedBackend::new(b, 0),
        ];
        assert!((0..1000).all(|n| pick(&canary_off, n) == Some(&a)));
        assert_eq!(pick(&[], 1), None);
    }
}
