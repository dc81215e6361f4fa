//! What a lookup returns: the match borrowed from its table, and its owned form.

use super::*;

/// The rule a request matched, as its Ingress wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MatchedRule<'a> {
    /// The rule's host (`*.example.com`, `shop.example.com`), `None` for a host-less rule.
    pub host: Option<&'a str>,
    /// The rule's path; empty for an empty `ImplementationSpecific` path.
    pub path: &'a str,
    /// The rule's path type as written.
    pub path_type: PathType,
}

/// Where a request goes and why: the route record that matched (its source, backends and
/// policy) or the fallback taken. Borrows from the [`RouteTable`]; copying it is free.
#[derive(Debug, Clone, Copy)]
pub struct RouteMatch<'a> {
    /// The first of the route's backends.
    pub(super) backend: &'a Backend,
    pub(super) ingress: Option<&'a ObjectRef>,
    pub(super) rule: Option<MatchedRule<'a>>,
    pub(super) fallback: Option<Fallback>,
    pub(super) key: MatchKey<'a>,
}

/// What matched, by where it lives in the table that produced it.
#[derive(Clone, Copy)]
pub(super) enum MatchKey<'a> {
    Rule(&'a Arc<VirtualHost>, Id),
    Fallback(&'a Arc<VirtualHost>),
    CatchAll(&'a CatchAll),
    ControllerDefault,
}

impl fmt::Debug for MatchKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MatchKey::Rule(vhost, id) => write!(f, "Rule({:?}, {id})", vhost.host),
            MatchKey::Fallback(vhost) => write!(f, "Fallback({:?})", vhost.host),
            MatchKey::CatchAll(_) => f.write_str("CatchAll"),
            MatchKey::ControllerDefault => f.write_str("ControllerDefault"),
        }
    }
}

/// A [`MatchKey`] that owns its virtual host.
#[derive(Clone)]
pub(crate) enum OwnedKey {
    Rule(Arc<VirtualHost>, Id),
    Fallback(Arc<VirtualHost>),
    CatchAll,
    ControllerDefault,
}

impl OwnedKey {
    /// The key of `route`, owning what it borrows.
    pub(crate) fn of(route: &RouteMatch<'_>) -> OwnedKey {
        OwnedKey::of_key(route.key)
    }

    pub(super) fn of_key(key: MatchKey<'_>) -> OwnedKey {
        match key {
            MatchKey::Rule(vhost, id) => OwnedKey::Rule(Arc::clone(vhost), id),
            MatchKey::Fallback(vhost) => OwnedKey::Fallback(Arc::clone(vhost)),
            MatchKey::CatchAll(_) => OwnedKey::CatchAll,
            MatchKey::ControllerDefault => OwnedKey::ControllerDefault,
        }
    }
}

impl PartialEq for OwnedKey {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (OwnedKey::Rule(a, x), OwnedKey::Rule(b, y)) => Arc::ptr_eq(a, b) && x == y,
            (OwnedKey::Fallback(a), OwnedKey::Fallback(b)) => Arc::ptr_eq(a, b),
            (OwnedKey::CatchAll, OwnedKey::CatchAll) => true,
            (OwnedKey::ControllerDefault, OwnedKey::ControllerDefault) => true,
            _ => false,
        }
    }
}

impl<'a> RouteMatch<'a> {
    /// The backend to forward to.
    ///
    /// The first of [`RouteMatch::backends`]: the only one for a plain Ingress rule. A route
    /// with several backends picks one per request with [`RouteMatch::pick_backend`].
    pub fn backend(&self) -> &'a Backend {
        self.backend
    }

    /// Every backend of the route, with its weight: one, of weight 1, for a plain Ingress
    /// rule and for fallbacks.
    pub fn backends(&self) -> Backends<'a> {
        match self.key {
            MatchKey::Rule(vhost, id) => match vhost.weighted(id) {
                Some(weighted) => Backends::weighted(weighted),
                None => Backends::one(self.backend),
            },
            MatchKey::CatchAll(CatchAll {
                extra: Some(extra), ..
            }) => Backends::weighted(&extra.0),
            _ => Backends::one(self.backend),
        }
    }

    /// One backend for a request, in proportion to the weights: `n` is a random or
    /// round-robin number (a backend of weight `w` out of a total `t` gets `w` of every `t`
    /// consecutive numbers). The first backend when every weight is 0.
    pub fn pick_backend(&self, n: u64) -> &'a Backend {
        self.backends().pick(n)
    }

    /// The route's policy; `None` for a plain Ingress rule and for fallbacks.
    pub fn policy(&self) -> Option<&'a Policy> {
        match self.key {
            MatchKey::Rule(vhost, id) => vhost.policy(id),
            MatchKey::CatchAll(c) => c.extra.as_ref().map(|e| &e.1).filter(|p| !p.is_empty()),
            _ => None,
        }
    }

    /// The Ingress whose rule or defaultBackend matched; `None` for the controller default.
    pub fn ingress(&self) -> Option<&'a ObjectRef> {
        self.ingress
    }

    /// The rule that matched; `None` when a fallback was taken.
    pub fn rule(&self) -> Option<MatchedRule<'a>> {
        self.rule
    }

    /// The fallback taken; `None` when a rule matched.
    pub fn fallback(&self) -> Option<Fallback> {
        self.fallback
    }
}

impl RouteTable {
    /// The match a key of this table stands for.
    pub(crate) fn keyed<'a>(&'a self, key: &'a OwnedKey) -> RouteMatch<'a> {
        let matched = match key {
            OwnedKey::Rule(vhost, id) => Some(vhost.rule_match(*id)),
            OwnedKey::Fallback(vhost) => vhost.fallback_match(),
            OwnedKey::CatchAll => self.catch_all_match(),
            OwnedKey::ControllerDefault => self.controller_default_match(),
        };
        matched.expect("a key is made only from a match of its table")
    }
}

/// A request routed by [`RouteTable::route_request`]: its canonical host and path, and the
/// route, if any (`None` means 404).
#[derive(Debug)]
#[non_exhaustive]
pub struct RoutedRequest<'t, 'r> {
    /// Where the request goes; `None` when nothing routes it.
    pub route: Option<RouteMatch<'t>>,
    /// The host the request was routed on.
    pub host: RequestHost,
    /// The path it was routed on (and that the backend should receive), with the query.
    pub path: CanonicalPath<'r>,
}
