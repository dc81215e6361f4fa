//! A deterministic workload shaped like a large multi-tenant cluster: Ingresses, and the
//! requests that reach them.
//!
//! Shared through `#[path]` by `benches/scale.rs`, `examples/gen.rs` and `tests/memory.rs`.
//! The same `(ingresses, seed)` always gives the same corpus, on every platform.
//!
//! The Ingresses carry 1–3 host rules each: mostly exact hosts (`svc123.team7.example.com`),
//! ~10% one-label wildcards, ~2% host-less rules, and ~5% hosts shared with an earlier Ingress so
//! that precedence and conflicts have some work to do. A host rule holds 1–20 paths over a shared
//! vocabulary of segments: `Prefix` paths of depth 1–5 (nested ones too), ~20% `Exact`, a few
//! `ImplementationSpecific` and trailing slashes, and a `/` catch-all on most hosts. About 1% of
//! the Ingresses have a `spec.defaultBackend` (and no `/` then), 40% a `spec.tls`; every Ingress
//! has its own `creationTimestamp`, in an order unrelated to the input order.
//!
//! The requests are labelled with their [`Kind`]: hits on exact and prefix rules, paths below
//! prefixes, catch-alls, wildcard hosts, host-less rules, misses, defaultBackend fallbacks, and
//! hits that only match once canonicalised (upper-case host, port, dot segments, `//`, escaped
//! letters).

use std::collections::BTreeMap;

use ingress_router::model::{
    HttpIngressPath, HttpIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTls, ObjectMeta, PathType, ServiceBackendPort,
    Timestamp,
};

/// Path segments every host draws from; earlier ones are picked more often.
const WORDS: [&str; 62] = [
    "api",
    "v1",
    "static",
    "v2",
    "users",
    "assets",
    "orders",
    "items",
    "admin",
    "search",
    "auth",
    "login",
    "account",
    "cart",
    "checkout",
    "products",
    "images",
    "docs",
    "health",
    "graphql",
    "v3",
    "catalog",
    "css",
    "js",
    "fonts",
    "media",
    "uploads",
    "help",
    "blog",
    "news",
    "events",
    "payments",
    "invoices",
    "billing",
    "reports",
    "metrics",
    "status",
    "config",
    "settings",
    "profile",
    "notifications",
    "messages",
    "webhooks",
    "internal",
    "public",
    "export",
    "import",
    "feed",
    "tags",
    "comments",
    "reviews",
    "inventory",
    "shipping",
    "tracking",
    "support",
    "dashboard",
    "analytics",
    "logout",
    "private",
    "index.html",
    "favicon.ico",
    "robots.txt",
];

/// Paths many teams put on host-less rules, so that those rules conflict.
const WELL_KNOWN: [(&str, PathType); 5] = [
    ("/healthz", PathType::Exact),
    ("/metrics", PathType::Exact),
    ("/.well-known/acme-challenge", PathType::Prefix),
    ("/status", PathType::Prefix),
    ("/robots.txt", PathType::Exact),
];

/// The first label of an Ingress's hosts.
const APPS: [&str; 8] = [
    "svc", "app", "api", "web", "shop", "portal", "admin", "edge",
];

/// What follows `-` in the first label of an Ingress's second and third host.
const ALIASES: [&str; 2] = ["api", "www"];

/// Domains below the team label.
const DOMAINS: [&str; 4] = [
    "example.com",
    "example.net",
    "example.org",
    "corp.example.io",
];

/// First labels of requests for wildcard hosts.
const TENANTS: [&str; 8] = [
    "alice", "bob", "eu", "us", "staging", "blue", "green", "canary",
];

/// Service port numbers.
const PORT_NUMBERS: [i64; 6] = [80, 8080, 3000, 8000, 9090, 443];

/// Service port names.
const PORT_NAMES: [&str; 4] = ["http", "web", "grpc", "http-api"];

/// `creationTimestamp` of the oldest Ingress: 2023-01-01T00:00:00Z.
const EPOCH: i64 = 1_672_531_200;

/// How many requests the hot mix holds.
pub const HOT_REQUESTS: usize = 256;

/// The seed of the published figures (benches, memory test).
pub const SEED: u64 = 0x1a2b_3c4d_5e6f_7081;

/// How many requests the cold mix holds.
pub const COLD_REQUESTS: usize = 65_536;

/// How many hosts the hot mix is drawn from, at most.
const HOT_HOSTS: usize = 16;

/// A seeded pseudo-random generator (SplitMix64): fast, small, and the same everywhere.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator whose whole output is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`), by multiply-shift; the bias is negligible for small `n`.
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// A number in `0..n`, small ones much more likely than large ones.
    pub fn skewed(&mut self, n: usize) -> usize {
        let bound = self.below(n) + 1;
        self.below(bound)
    }

    /// `true` with probability `per_mille / 1000`.
    pub fn chance(&mut self, per_mille: usize) -> bool {
        self.below(1000) < per_mille
    }

    /// A uniformly chosen element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// An element of a non-empty `(item, weight)` list, with probability proportional to its
    /// weight.
    pub fn weighted<T: Copy>(&mut self, items: &[(T, usize)]) -> T {
        let total = items.iter().map(|&(_, w)| w).sum();
        let mut roll = self.below(total);
        for &(item, weight) in items {
            if roll < weight {
                return item;
            }
            roll -= weight;
        }
        items[items.len() - 1].0
    }

    /// Shuffles `items` in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// What a request is meant to exercise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// An `Exact` rule path, as written.
    Exact,
    /// A `Prefix` (or `ImplementationSpecific`) rule path, as written.
    Prefix,
    /// One to four segments below a `Prefix` rule path.
    Deep,
    /// A path only the host's `/` catch-all matches.
    CatchAll,
    /// A host covered by a `*.` wildcard rule.
    Wildcard,
    /// A path of the host-less rules, on a host no rule names or an IP address.
    Hostless,
    /// A host no rule names and a path no host-less rule matches.
    UnknownHost,
    /// A host without `/` and a path none of its rules match: 404, or a defaultBackend.
    UnknownPath,
    /// A path none of the host's rules match, on a host with a defaultBackend.
    Fallback,
    /// A hit whose host or path only matches once canonicalised.
    Canonicalize,
}

impl Kind {
    /// The kind in kebab case, for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Exact => "exact",
            Kind::Prefix => "prefix",
            Kind::Deep => "deep",
            Kind::CatchAll => "catch-all",
            Kind::Wildcard => "wildcard",
            Kind::Hostless => "host-less",
            Kind::UnknownHost => "unknown-host",
            Kind::UnknownPath => "unknown-path",
            Kind::Fallback => "fallback",
            Kind::Canonicalize => "canonicalize",
        }
    }
}

/// One request as a client sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Req {
    /// The `Host` header: a name, maybe with a port or in upper case, or an IP address.
    pub host: String,
    /// The request target: a path, maybe with a query.
    pub target: String,
    /// What the request is meant to exercise.
    pub kind: Kind,
}

/// A generated cluster and the traffic it receives.
#[derive(Debug, Clone)]
pub struct Corpus {
    /// The Ingresses, all valid, in input order.
    pub ingresses: Vec<Ingress>,
    /// A few hundred requests for a handful of hosts, meant to be replayed over and over.
    pub hot: Vec<Req>,
    /// Many requests spread over every host, in random order.
    pub cold: Vec<Req>,
}

/// The size of a set of Ingresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Ingress objects.
    pub ingresses: usize,
    /// Distinct rule hosts, wildcards included, host-less rules not.
    pub hosts: usize,
    /// Of which `*.` wildcards.
    pub wildcard_hosts: usize,
    /// Path rules, summed over every rule of every Ingress.
    pub paths: usize,
}

impl Corpus {
    /// How many Ingresses, hosts and paths the corpus holds.
    pub fn stats(&self) -> Stats {
        stats(&self.ingresses)
    }
}

/// How many Ingresses, hosts and paths `ingresses` hold.
pub fn stats(ingresses: &[Ingress]) -> Stats {
    let mut hosts = std::collections::BTreeSet::new();
    let mut paths = 0;
    for rule in ingresses.iter().flat_map(|i| &i.spec.rules) {
        if let Some(host) = rule.host() {
            hosts.insert(host);
        }
        paths += rule.http.as_ref().map_or(0, |http| http.paths.len());
    }
    Stats {
        ingresses: ingresses.len(),
        hosts: hosts.len(),
        wildcard_hosts: hosts.iter().filter(|h| h.starts_with("*.")).count(),
        paths,
    }
}

/// Generates `ingresses` Ingresses and their hot and cold request mixes from `seed`.
pub fn generate(ingresses: usize, seed: u64) -> Corpus {
    let mut rng = Rng::new(seed);
    let objects = Cluster::new(ingresses).generate(&mut rng);
    let sites = Sites::index(&objects);
    let hot = sites.requests(&mut rng, HOT_REQUESTS, true);
    let cold = sites.requests(&mut rng, COLD_REQUESTS, false);
    Corpus {
        ingresses: objects,
        hot,
        cold,
    }
}

/// The Ingresses as a multi-document YAML stream, as `kubectl get -o yaml` prints each object.
#[cfg(feature = "yaml")]
pub fn to_yaml(ingresses: &[Ingress]) -> String {
    let mut out = String::new();
    for ingress in ingresses {
        if !out.is_empty() {
            out.push_str("---\n");
        }
        out.push_str("apiVersion: networking.k8s.io/v1\nkind: Ingress\n");
        let body = serde_norway::to_string(ingress).expect("an Ingress serialises to YAML");
        out.push_str(&body);
    }
    out
}

/// The share of each [`Kind`] in `requests`, e.g. `exact 14.0%, prefix 18.1%, …`.
pub fn composition(requests: &[Req]) -> String {
    let mut counts: BTreeMap<Kind, usize> = BTreeMap::new();
    for req in requests {
        *counts.entry(req.kind).or_default() += 1;
    }
    let shares: Vec<String> = counts
        .into_iter()
        .map(|(kind, n)| {
            let share = 100.0 * n as f64 / requests.len() as f64;
            format!("{} {share:.1}%", kind.as_str())
        })
        .collect();
    shares.join(", ")
}

/// The requests as JSON lines, `{"host": ..., "path": ...}`, the input of `examples/route`.
pub fn to_jsonl(requests: &[Req]) -> String {
    let mut out = String::new();
    for req in requests {
        let host = serde_json::to_string(&req.host).expect("a string serialises");
        let path = serde_json::to_string(&req.target).expect("a string serialises");
        out.push_str(&format!("{{\"host\": {host}, \"path\": {path}}}\n"));
    }
    out
}

/// The state of the Ingress generator.
struct Cluster {
    /// How many Ingresses to generate.
    size: usize,
    /// How many teams the hosts are spread over.
    teams: usize,
    /// How many namespaces the Ingresses are spread over.
    namespaces: usize,
    /// Every named host generated so far, to be shared now and then.
    hosts: Vec<String>,
}

/// What a host slot of an Ingress becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// A new exact host.
    Exact,
    /// A new `*.` wildcard host.
    Wildcard,
    /// A host of an earlier Ingress.
    Shared,
    /// A rule without a host.
    Hostless,
}

impl Cluster {
    /// A generator for `size` Ingresses.
    fn new(size: usize) -> Self {
        Cluster {
            size,
            teams: size.div_ceil(25),
            namespaces: size.div_ceil(10),
            hosts: Vec::new(),
        }
    }

    /// Generates every Ingress.
    fn generate(mut self, rng: &mut Rng) -> Vec<Ingress> {
        // Distinct creation times (a minute apart at least), shuffled against the input order.
        let mut created: Vec<i64> = (0..self.size)
            .map(|i| EPOCH + i as i64 * 120 + rng.below(60) as i64)
            .collect();
        rng.shuffle(&mut created);
        created
            .into_iter()
            .enumerate()
            .map(|(index, created)| self.ingress(rng, index, created))
            .collect()
    }

    /// Generates Ingress number `index`.
    fn ingress(&mut self, rng: &mut Rng, index: usize, created: i64) -> Ingress {
        let namespace = rng.below(self.namespaces);
        let team = namespace % self.teams;
        let app = *rng.pick(&APPS);
        let domain = *rng.pick(&DOMAINS);
        let default_backend = rng.chance(10);
        let mut rules: Vec<IngressRule> = Vec::new();
        let mut tls_hosts = Vec::new();
        for slot_index in 0..1 + rng.below(3) {
            let slot = rng.weighted(&[
                (Slot::Exact, 830),
                (Slot::Wildcard, 100),
                (Slot::Shared, 50),
                (Slot::Hostless, if default_backend { 0 } else { 20 }),
            ]);
            let label = match slot_index {
                0 => format!("{app}{index}"),
                n => format!("{app}{index}-{}", ALIASES[n - 1]),
            };
            // An Ingress with a defaultBackend has no use for a `/` catch-all.
            let root_per_mille = if default_backend { 0 } else { 850 };
            let (host, root_per_mille) = match slot {
                Slot::Exact => (Some(format!("{label}.team{team}.{domain}")), root_per_mille),
                Slot::Wildcard => (
                    Some(format!("*.{label}.team{team}.{domain}")),
                    root_per_mille,
                ),
                Slot::Shared if !self.hosts.is_empty() => {
                    let shared =
                        self.hosts[self.hosts.len() - 1 - rng.skewed(self.hosts.len())].clone();
                    (Some(shared), 200)
                }
                Slot::Shared => (Some(format!("{label}.team{team}.{domain}")), root_per_mille),
                Slot::Hostless => (None, 0),
            };
            // A shared host this Ingress already has becomes a new one.
            let (slot, host) = match host {
                Some(h) if rules.iter().any(|r| r.host.as_ref() == Some(&h)) => {
                    (Slot::Exact, Some(format!("{label}.team{team}.{domain}")))
                }
                host => (slot, host),
            };
            let paths = match &host {
                Some(_) => {
                    let count = 1 + rng.below(20);
                    let root = rng.chance(root_per_mille);
                    host_paths(rng, count, root)
                }
                None => hostless_paths(rng, index),
            };
            let service = |rng: &mut Rng, path: &str| backend(rng, index, path);
            let http = HttpIngressRuleValue {
                paths: paths
                    .into_iter()
                    .map(|(path, path_type)| HttpIngressPath {
                        backend: service(rng, &path),
                        path: Some(path),
                        path_type: Some(path_type.as_str().to_owned()),
                    })
                    .collect(),
            };
            if let Some(host) = &host {
                if slot != Slot::Shared {
                    self.hosts.push(host.clone());
                }
                tls_hosts.push(host.clone());
            }
            rules.push(IngressRule {
                host,
                http: Some(http),
            });
        }
        let tls = if rng.chance(400) && !tls_hosts.is_empty() {
            vec![IngressTls {
                hosts: tls_hosts,
                secret_name: Some(format!("{app}{index}-tls")),
            }]
        } else {
            Vec::new()
        };
        let name = format!("{app}-{index}");
        Ingress {
            metadata: ObjectMeta {
                labels: BTreeMap::from([("app.kubernetes.io/name".to_owned(), name.clone())]),
                name,
                namespace: Some(format!("ns-{namespace}")),
                creation_timestamp: Some(Timestamp::from_unix_seconds(created)),
                ..ObjectMeta::default()
            },
            spec: IngressSpec {
                ingress_class_name: Some("public".to_owned()),
                default_backend: default_backend.then(|| IngressBackend {
                    service: Some(IngressServiceBackend {
                        name: format!("{app}-{index}-default"),
                        port: ServiceBackendPort {
                            name: None,
                            number: Some(80),
                        },
                    }),
                    resource: None,
                }),
                tls,
                rules,
            },
        }
    }
}

/// A service backend for `path` of Ingress `index`, named after the path's first segment.
fn backend(rng: &mut Rng, index: usize, path: &str) -> IngressBackend {
    let segment = path.trim_start_matches('/').split('/').next().unwrap_or("");
    let base = match segment {
        "" => "web".to_owned(),
        s => s.trim_start_matches('.').replace('.', "-"),
    };
    let port = if rng.chance(750) {
        ServiceBackendPort {
            name: None,
            number: Some(*rng.pick(&PORT_NUMBERS)),
        }
    } else {
        ServiceBackendPort {
            name: Some((*rng.pick(&PORT_NAMES)).to_owned()),
            number: None,
        }
    };
    IngressBackend {
        service: Some(IngressServiceBackend {
            name: format!("{base}-{index}"),
            port,
        }),
        resource: None,
    }
}

/// `count` distinct paths for a host rule, the `/` catch-all first when `root`.
fn host_paths(rng: &mut Rng, count: usize, root: bool) -> Vec<(String, PathType)> {
    let mut chosen: Vec<(Vec<&'static str>, bool, PathType)> = Vec::new();
    if root {
        chosen.push((Vec::new(), false, PathType::Prefix));
    }
    let mut attempts = 0;
    while chosen.len() < count && attempts < 4 * count {
        attempts += 1;
        let nested: Vec<&Vec<&str>> = chosen
            .iter()
            .map(|(segments, _, _)| segments)
            .filter(|s| !s.is_empty() && s.len() < 5)
            .collect();
        let segments = if !nested.is_empty() && rng.chance(500) {
            let mut segments = (*rng.pick(&nested)).clone();
            let more = (1 + rng.below(2)).min(5 - segments.len());
            push_words(rng, &mut segments, more);
            segments
        } else {
            let mut segments = Vec::new();
            let depth = 1 + rng.skewed(3);
            push_words(rng, &mut segments, depth);
            segments
        };
        let path_type = rng.weighted(&[
            (PathType::Prefix, 770),
            (PathType::Exact, 200),
            (PathType::ImplementationSpecific, 30),
        ]);
        let trailing = rng.chance(30);
        let exact = path_type == PathType::Exact;
        let duplicate = chosen
            .iter()
            .any(|(s, _, t)| *s == segments && (*t == PathType::Exact) == exact);
        if !duplicate {
            chosen.push((segments, trailing, path_type));
        }
    }
    chosen
        .into_iter()
        .map(|(segments, trailing, path_type)| {
            let mut path = format!("/{}", segments.join("/"));
            if trailing && !segments.is_empty() {
                path.push('/');
            }
            (path, path_type)
        })
        .collect()
}

/// Appends `count` vocabulary words to `segments`, never the same word twice in a row.
fn push_words(rng: &mut Rng, segments: &mut Vec<&'static str>, count: usize) {
    for _ in 0..count {
        let mut word = WORDS[rng.skewed(WORDS.len())];
        while segments.last() == Some(&word) {
            word = WORDS[rng.below(WORDS.len())];
        }
        segments.push(word);
    }
}

/// One to three paths for a host-less rule of Ingress `index`: a well-known path shared with
/// other teams, or paths under the Ingress's own segment.
fn hostless_paths(rng: &mut Rng, index: usize) -> Vec<(String, PathType)> {
    let mut paths: Vec<(String, PathType)> = Vec::new();
    for _ in 0..1 + rng.below(3) {
        let (path, path_type) = if rng.chance(300) {
            let (path, path_type) = *rng.pick(&WELL_KNOWN);
            (path.to_owned(), path_type)
        } else {
            let word = WORDS[rng.skewed(WORDS.len())];
            let path_type = if rng.chance(200) {
                PathType::Exact
            } else {
                PathType::Prefix
            };
            (format!("/team-{index}/{word}"), path_type)
        };
        if !paths.iter().any(|(p, _)| *p == path) {
            paths.push((path, path_type));
        }
    }
    paths
}

/// The rules of one virtual host, merged over every Ingress, to aim requests at.
#[derive(Debug, Default)]
struct Site {
    /// The rule host as written (`*.x.y` for a wildcard); `None` for the host-less rules.
    host: Option<String>,
    /// `Exact` rule paths.
    exact: Vec<String>,
    /// `Prefix` and `ImplementationSpecific` rule paths, `/` excepted.
    prefix: Vec<String>,
    /// Whether a `/` catch-all covers the host.
    root: bool,
    /// Whether an Ingress with rules for the host has a defaultBackend.
    default: bool,
}

/// Every virtual host of a set of Ingresses, sorted into what requests need.
#[derive(Debug)]
struct Sites {
    /// Every virtual host, host-less one included, in rule host order.
    all: Vec<Site>,
    /// Indices of exact hosts.
    named: Vec<usize>,
    /// Indices of wildcard hosts.
    wildcard: Vec<usize>,
    /// Indices of named or wildcard hosts without a `/` catch-all.
    rootless: Vec<usize>,
    /// Indices of named or wildcard hosts without a `/` catch-all but with a defaultBackend.
    fallback: Vec<usize>,
    /// Index of the host-less rules, if any.
    hostless: Option<usize>,
    /// How many teams the host names spread over.
    teams: usize,
}

impl Sites {
    /// Indexes the rules of `ingresses` by host.
    fn index(ingresses: &[Ingress]) -> Self {
        let mut by_host: BTreeMap<Option<String>, Site> = BTreeMap::new();
        let rules = ingresses
            .iter()
            .flat_map(|i| i.spec.rules.iter().map(move |rule| (i, rule)));
        for (ingress, rule) in rules {
            let host = rule.host().map(str::to_owned);
            let site = by_host.entry(host.clone()).or_insert_with(|| Site {
                host,
                ..Site::default()
            });
            site.default |= ingress.spec.default_backend.is_some();
            for path in rule.http.iter().flat_map(|http| &http.paths) {
                let written = path.path.clone().unwrap_or_default();
                match path.path_type() {
                    Some(PathType::Exact) => site.exact.push(written),
                    _ if written.is_empty() || written == "/" => site.root = true,
                    _ => site.prefix.push(written),
                }
            }
        }
        let all: Vec<Site> = by_host.into_values().collect();
        let which = |keep: &dyn Fn(&Site) -> bool| -> Vec<usize> {
            (0..all.len()).filter(|&i| keep(&all[i])).collect()
        };
        let wildcard_host = |s: &Site| s.host.as_deref().is_some_and(|h| h.starts_with("*."));
        Sites {
            named: which(&|s| s.host.is_some() && !wildcard_host(s)),
            wildcard: which(&|s| wildcard_host(s)),
            rootless: which(&|s| s.host.is_some() && !s.root),
            fallback: which(&|s| s.host.is_some() && !s.root && s.default),
            hostless: all.iter().position(|s| s.host.is_none()),
            teams: ingresses.len().div_ceil(25),
            all,
        }
    }

    /// `count` requests: over a few named hosts (`hot`) or over every host, in random order.
    fn requests(&self, rng: &mut Rng, count: usize, hot: bool) -> Vec<Req> {
        let pool: Vec<usize> = if hot {
            let mut named = self.named.clone();
            rng.shuffle(&mut named);
            named.truncate(HOT_HOSTS);
            named
        } else {
            self.named.clone()
        };
        let kinds: &[(Kind, usize)] = if hot {
            &[
                (Kind::Exact, 20),
                (Kind::Prefix, 25),
                (Kind::Deep, 30),
                (Kind::CatchAll, 10),
                (Kind::Canonicalize, 15),
            ]
        } else {
            &[
                (Kind::Exact, 14),
                (Kind::Prefix, 18),
                (Kind::Deep, 18),
                (Kind::CatchAll, 10),
                (Kind::Wildcard, 10),
                (Kind::Hostless, 5),
                (Kind::UnknownHost, 5),
                (Kind::UnknownPath, 4),
                (Kind::Fallback, 3),
                (Kind::Canonicalize, 13),
            ]
        };
        (0..count)
            .map(|_| {
                let kind = rng.weighted(kinds);
                self.request(rng, kind, &pool)
            })
            .collect()
    }

    /// One request of `kind`; hits go to the named hosts of `pool`.
    fn request(&self, rng: &mut Rng, kind: Kind, pool: &[usize]) -> Req {
        match kind {
            Kind::Exact | Kind::Prefix | Kind::Deep | Kind::CatchAll if !pool.is_empty() => {
                let site = &self.all[*rng.pick(pool)];
                let (path, kind) = hit(rng, site, kind);
                req(self.host_of(rng, site), with_query(rng, path), kind)
            }
            Kind::Wildcard if !self.wildcard.is_empty() => {
                let site = &self.all[*rng.pick(&self.wildcard)];
                let want = *rng.pick(&[Kind::Exact, Kind::Prefix, Kind::Deep, Kind::CatchAll]);
                let (path, _) = hit(rng, site, want);
                req(
                    self.host_of(rng, site),
                    with_query(rng, path),
                    Kind::Wildcard,
                )
            }
            Kind::Hostless => match self.hostless {
                Some(hostless) => {
                    let want = *rng.pick(&[Kind::Exact, Kind::Prefix, Kind::Deep]);
                    let (path, _) = hit(rng, &self.all[hostless], want);
                    let host = if rng.chance(250) {
                        let [a, b, c] = [rng.below(256), rng.below(256), 1 + rng.below(254)];
                        format!("10.{a}.{b}.{c}")
                    } else {
                        self.unknown_host(rng)
                    };
                    req(host, with_query(rng, path), Kind::Hostless)
                }
                None => self.request(rng, Kind::UnknownHost, pool),
            },
            Kind::UnknownPath if !self.rootless.is_empty() => {
                let site = &self.all[*rng.pick(&self.rootless)];
                let path = format!("/p{}/{}", rng.below(100_000), rng.pick(&WORDS));
                req(self.host_of(rng, site), path, Kind::UnknownPath)
            }
            Kind::UnknownPath if !pool.is_empty() => self.request(rng, Kind::CatchAll, pool),
            Kind::Fallback if !self.fallback.is_empty() => {
                let site = &self.all[*rng.pick(&self.fallback)];
                let path = format!("/p{}/{}", rng.below(100_000), rng.pick(&WORDS));
                req(
                    self.host_of(rng, site),
                    with_query(rng, path),
                    Kind::Fallback,
                )
            }
            Kind::Fallback => self.request(rng, Kind::UnknownPath, pool),
            Kind::Canonicalize if !pool.is_empty() => {
                let want = *rng.pick(&[Kind::Exact, Kind::Prefix, Kind::Deep]);
                let plain = self.request(rng, want, pool);
                let (host, target) = uncanonicalize(rng, &plain.host, &plain.target);
                req(host, target, Kind::Canonicalize)
            }
            // Unknown hosts, and whatever the corpus has no host for.
            _ => {
                let host = if self.wildcard.is_empty() || rng.chance(750) {
                    self.unknown_host(rng)
                } else {
                    // Two labels below a wildcard: a wildcard covers exactly one.
                    let site = &self.all[*rng.pick(&self.wildcard)];
                    format!("x.{}", self.host_of(rng, site))
                };
                let depth = 1 + rng.below(3);
                let path = random_path(rng, depth);
                req(host, with_query(rng, path), Kind::UnknownHost)
            }
        }
    }

    /// The host a client sends for `site`: the name itself, or a name its wildcard covers.
    fn host_of(&self, rng: &mut Rng, site: &Site) -> String {
        let host = site.host.as_deref().unwrap_or("localhost");
        match host.strip_prefix("*.") {
            Some(suffix) if rng.chance(500) => {
                format!("{}.{suffix}", rng.pick(&TENANTS))
            }
            Some(suffix) => format!("tenant{}.{suffix}", rng.below(10_000)),
            None => host.to_owned(),
        }
    }

    /// A host name no rule names and no wildcard covers.
    fn unknown_host(&self, rng: &mut Rng) -> String {
        format!(
            "nx{}.team{}.{}",
            rng.below(1_000_000),
            rng.below(self.teams),
            rng.pick(&DOMAINS)
        )
    }
}

/// A request from its parts.
fn req(host: String, target: String, kind: Kind) -> Req {
    Req { host, target, kind }
}

/// A path of `site` hitting a rule of kind `want`, or of the nearest kind the site has:
/// `Exact` falls back to `Prefix`, `Prefix` and `Deep` to `CatchAll`. Returns the kind used.
fn hit(rng: &mut Rng, site: &Site, want: Kind) -> (String, Kind) {
    match want {
        Kind::Exact if !site.exact.is_empty() => (rng.pick(&site.exact).clone(), Kind::Exact),
        Kind::Exact | Kind::Prefix if !site.prefix.is_empty() => {
            (rng.pick(&site.prefix).clone(), Kind::Prefix)
        }
        Kind::Deep if !site.prefix.is_empty() => {
            let base = rng.pick(&site.prefix).trim_end_matches('/').to_owned();
            (deeper(rng, base), Kind::Deep)
        }
        _ => {
            // A first segment outside the vocabulary: only `/` matches, if the site has it.
            let depth = rng.below(3);
            let path = format!("/p{}{}", rng.below(100_000), random_path(rng, depth));
            let kind = if site.root {
                Kind::CatchAll
            } else {
                Kind::UnknownPath
            };
            (path, kind)
        }
    }
}

/// `base` with one to four segments appended: words, ids and file names.
fn deeper(rng: &mut Rng, mut base: String) -> String {
    for _ in 0..1 + rng.below(4) {
        base.push('/');
        match rng.below(4) {
            0 => base.push_str(&rng.below(1_000_000).to_string()),
            1 => base.push_str(&format!(
                "file-{}.{}",
                rng.below(1000),
                rng.pick(&["js", "png"])
            )),
            _ => base.push_str(WORDS[rng.skewed(WORDS.len())]),
        }
    }
    base
}

/// A path of `depth` vocabulary segments (`""` for depth 0).
fn random_path(rng: &mut Rng, depth: usize) -> String {
    (0..depth)
        .map(|_| format!("/{}", WORDS[rng.below(WORDS.len())]))
        .collect()
}

/// `path`, with a query one time in five.
fn with_query(rng: &mut Rng, path: String) -> String {
    match rng.below(10) {
        0 => format!("{path}?page={}", rng.below(50)),
        1 => format!("{path}?q={}&limit={}", rng.pick(&WORDS), 10 * rng.below(10)),
        _ => path,
    }
}

/// The same request as a client may write it: host case, trailing dot or port; dot segments,
/// doubled slashes or escaped letters in the path. Canonicalising gives back the input.
fn uncanonicalize(rng: &mut Rng, host: &str, target: &str) -> (String, String) {
    let (mut path, query) = match target.split_once('?') {
        Some((path, query)) => (path.to_owned(), Some(query)),
        None => (target.to_owned(), None),
    };
    let mut host = host.to_owned();
    let (mut dot, mut port) = (false, false);
    for _ in 0..1 + usize::from(rng.chance(250)) {
        let slashes: Vec<usize> = path.match_indices('/').map(|(i, _)| i).collect();
        match rng.below(7) {
            0 => host = host.to_ascii_uppercase(),
            1 => port = true,
            2 => dot = true,
            // `/a/b` → `/a/./b`.
            3 => path.insert_str(*rng.pick(&slashes), "/."),
            // `/a/b` → `/a//b`.
            4 => path.insert(*rng.pick(&slashes), '/'),
            5 => path = format!("/{}/..{path}", WORDS[rng.below(WORDS.len())]),
            _ => match path.find(|c: char| c.is_ascii_lowercase()) {
                Some(at) => {
                    let escaped = format!("%{:02X}", path.as_bytes()[at]);
                    path.replace_range(at..=at, &escaped);
                }
                None => host = host.to_ascii_uppercase(),
            },
        }
    }
    if dot {
        host.push('.');
    }
    if port {
        host.push_str(":443");
    }
    let target = match query {
        Some(query) => format!("{path}?{query}"),
        None => path,
    };
    (host, target)
}
