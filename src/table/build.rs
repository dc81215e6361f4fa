//! Compiling Ingresses into a table, from scratch or as the next version of one.

use std::hash::BuildHasher;

use super::*;

/// The hosts (as written, `None` for host-less rules) an admitted Ingress has rules for.
#[derive(Debug, Clone)]
pub(super) struct IngressHosts {
    pub(super) namespace: Arc<str>,
    pub(super) name: Arc<str>,
    pub(super) hosts: Arc<[Option<Arc<str>>]>,
}

impl IngressHosts {
    pub(super) fn key(&self) -> Key<'_> {
        Key {
            namespace: &self.namespace,
            name: &self.name,
        }
    }
}

impl Sharded<IngressHosts> {
    pub(super) fn get(&self, key: Key<'_>) -> Option<&IngressHosts> {
        self.find(self.hash(key), |entry| entry.key() == key)
    }

    /// Records the hosts of `ingress`, which has rules.
    pub(super) fn put(&mut self, ingress: &Ingress) {
        let key = Key::of(ingress);
        let mut seen: HashSet<Option<&str>, RandomState> = HashSet::default();
        let hosts: Vec<Option<Arc<str>>> = ingress
            .spec
            .rules
            .iter()
            .map(|rule| rule.host())
            .filter(|&host| seen.insert(host))
            .map(|host| host.map(Into::into))
            .collect();
        let entry = IngressHosts {
            namespace: key.namespace.into(),
            name: key.name.into(),
            hosts: hosts.into(),
        };
        self.insert(self.hash(key), entry, |entry| entry.key() == key);
    }

    pub(super) fn delete(&mut self, key: Key<'_>) {
        self.remove(self.hash(key), |entry| entry.key() == key);
    }
}

/// What [`RouteTable::update`] starts from.
pub(super) struct Previous<'p> {
    pub(super) table: &'p RouteTable,
    pub(super) changed: &'p HashSet<&'p ObjectRef, RandomState>,
}

/// The Ingresses a table is built from: valid ones oldest first, and what was left out.
pub(super) struct Admitted<'a> {
    pub(super) ordered: Vec<&'a Ingress>,
    pub(super) refs: Arc<[ObjectRef]>,
    /// Where each object of the input counts: its input index by namespace/name.
    pub(super) last_of: HashMap<Key<'a>, usize, RandomState>,
    /// The rank in `ordered` of each input index; `None` for those left out.
    pub(super) rank_of: Vec<Option<usize>>,
    pub(super) quarantined: Vec<Quarantined>,
    pub(super) warnings: Vec<Warning>,
}

/// Drops duplicates and invalid Ingresses, and orders the rest oldest first. With `previous`,
/// only changed Ingresses are validated again; the others keep their verdict and their order.
pub(super) fn admit<'a>(
    ingresses: &[&'a Ingress],
    previous: Option<&Previous<'_>>,
    extension: Option<&dyn RouteExtension>,
) -> Admitted<'a> {
    // Borrowed namespace/name keys: nothing is allocated per Ingress to tell them apart.
    let keys: Vec<Key<'a>> = ingresses.iter().map(|i| Key::of(i)).collect();
    let mut warnings = Vec::new();
    let mut last_of: HashMap<Key<'a>, usize, RandomState> =
        HashMap::with_capacity_and_hasher(keys.len(), RandomState::default());
    for (index, key) in keys.iter().enumerate() {
        if let Some(earlier) = last_of.insert(*key, index) {
            warnings.push(Warning {
                object: ingresses[earlier].object_ref(),
                field: "metadata.name".into(),
                message: "replaced by a later object with the same namespace and name".into(),
            });
        }
    }
    // With a previous table: the changed Ingresses, and the verdicts of the quarantined ones.
    // An Ingress neither changed nor quarantined was admitted before, and still is.
    let verdicts = previous.map(|p| {
        let changed: HashSet<Key<'_>, RandomState> =
            p.changed.iter().map(|o| Key::of_ref(o)).collect();
        let invalid: HashMap<Key<'_>, &Vec<ValidationError>, RandomState> = p
            .table
            .quarantined
            .iter()
            .map(|q| (Key::of_ref(&q.object), &q.errors))
            .collect();
        (changed, invalid)
    });
    let mut quarantined = Vec::new();
    let mut admitted: Vec<(usize, &Ingress)> = Vec::with_capacity(ingresses.len());
    for (index, ingress) in ingresses.iter().enumerate() {
        let key = keys[index];
        if last_of.get(&key) != Some(&index) {
            continue;
        }
        let errors = match &verdicts {
            Some((changed, invalid)) if !changed.contains(&key) => match invalid.get(&key) {
                Some(errors) => (*errors).clone(),
                None => Vec::new(),
            },
            _ => {
                let mut errors = validate::validate_ingress(ingress);
                if let Some(refused) = extension.and_then(|e| e.refuse(ingress)) {
                    errors.push(ValidationError {
                        object: ingress.object_ref(),
                        field: refused.field,
                        violation: crate::diagnostics::Violation::Forbidden {
                            detail: refused.reason,
                        },
                    });
                }
                errors
            }
        };
        if errors.is_empty() {
            admitted.push((index, ingress));
        } else {
            quarantined.push(Quarantined {
                object: ingress.object_ref(),
                errors,
            });
        }
    }
    // Older first: timestamped before untimestamped; equal timestamps by namespace/name;
    // untimestamped keep input order.
    let older = |(ia, a): &(usize, &Ingress), (ib, b): &(usize, &Ingress)| {
        let age = |i: &usize, x: &Ingress| (x.metadata.creation_timestamp, *i);
        model::by_age(age(ia, a), age(ib, b), || keys[*ia].cmp(&keys[*ib]))
    };
    let mut refs = None;
    match (&verdicts, previous) {
        (Some((changed, _)), Some(p)) => {
            // The unchanged Ingresses keep their previous order; only the changed ones are
            // sorted, then both merged.
            let (mut fresh, _): (Vec<_>, Vec<_>) = admitted
                .iter()
                .copied()
                .partition(|(i, _)| changed.contains(&keys[*i]));
            fresh.sort_by(|a, b| older(a, b));
            let kept = p
                .table
                .ingresses
                .iter()
                .map(Key::of_ref)
                .filter(|key| !changed.contains(key))
                .filter_map(|key| last_of.get(&key).map(|&i| (i, ingresses[i])));
            let mut merged = Vec::with_capacity(admitted.len());
            let mut fresh = fresh.into_iter().peekable();
            for kept in kept {
                while let Some(next) = fresh.next_if(|f| older(f, &kept).is_lt()) {
                    merged.push(next);
                }
                merged.push(kept);
            }
            merged.extend(fresh);
            admitted = merged;
            // An edit that keeps every Ingress in its place shares the list.
            let same = admitted.len() == p.table.ingresses.len()
                && admitted
                    .iter()
                    .zip(p.table.ingresses.iter())
                    .all(|(&(i, _), object)| keys[i] == Key::of_ref(object));
            if same {
                refs = Some(Arc::clone(&p.table.ingresses));
            }
        }
        _ => admitted.sort_by(older),
    }
    let mut rank_of = vec![None; ingresses.len()];
    for (rank, &(index, _)) in admitted.iter().enumerate() {
        rank_of[index] = Some(rank);
    }
    Admitted {
        refs: refs.unwrap_or_else(|| admitted.iter().map(|(_, i)| i.object_ref()).collect()),
        ordered: admitted.into_iter().map(|(_, ingress)| ingress).collect(),
        last_of,
        rank_of,
        quarantined,
        warnings,
    }
}

/// An Ingress's namespace and name, borrowed; ordered as its [`ObjectRef`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct Key<'a> {
    pub(super) namespace: &'a str,
    pub(super) name: &'a str,
}

impl<'a> Key<'a> {
    pub(super) fn of(ingress: &'a Ingress) -> Key<'a> {
        Key {
            namespace: ingress.metadata.namespace(),
            name: &ingress.metadata.name,
        }
    }

    pub(super) fn of_ref(object: &'a ObjectRef) -> Key<'a> {
        Key {
            namespace: object
                .namespace
                .as_deref()
                .unwrap_or(model::DEFAULT_NAMESPACE),
            name: &object.name,
        }
    }
}

/// Compiles admitted Ingresses into a table: every host, or with `previous` only the hosts of
/// the changed Ingresses (before and after the change), sharing the rest.
pub(super) fn assemble<'a>(
    options: TableOptions,
    admitted: Admitted<'a>,
    previous: Option<&Previous<'_>>,
) -> (RouteTable, Vec<&'a Ingress>) {
    let Admitted {
        ordered,
        refs,
        last_of,
        rank_of,
        quarantined,
        warnings,
    } = admitted;
    let mut table = match previous {
        Some(p) => RouteTable {
            hosts: p.table.hosts.clone(),
            hostless: p.table.hostless.clone(),
            hosts_of: p.table.hosts_of.clone(),
            aliases: p.table.aliases.clone(),
            rule_count: p.table.rule_count,
            ..RouteTable::empty(options, refs, 0, 0)
        },
        None => {
            let hosts: usize = ordered.iter().map(|i| i.spec.rules.len()).sum();
            RouteTable::empty(options, refs, hosts, ordered.len())
        }
    };
    table.quarantined = quarantined;
    table.input_warnings = warnings;

    // The changed Ingresses that are in the new table, by rank.
    let mut fresh: Vec<usize> = Vec::new();
    match previous {
        None => {
            // Every host, with its rules.
            let (order, rules) = rules_by_host(&ordered, 0..ordered.len(), |_| true);
            for ingress in &ordered {
                if !ingress.spec.rules.is_empty() {
                    table.hosts_of.put(ingress);
                }
            }
            for key in order {
                let vhost = compile_host(
                    key,
                    &rules[&key],
                    &ordered,
                    &table.ingresses,
                    &table.options,
                );
                table.rule_count += vhost.rules.len();
                table.set_vhost(key, Some(vhost));
                table.add_aliases(key);
            }
        }
        Some(p) => {
            fresh = p
                .changed
                .iter()
                .filter_map(|o| last_of.get(&Key::of_ref(o)))
                .filter_map(|&index| rank_of[index])
                .collect();
            fresh.sort_unstable();
            fresh.dedup();
            // The hosts the changed Ingresses had rules for, and those they have now.
            let mut touched: Vec<HostKey<'_>> = Vec::new();
            for object in p.changed.iter() {
                if let Some(entry) = p.table.hosts_of.get(Key::of_ref(object)) {
                    touched.extend(entry.hosts.iter().map(|h| HostKey::of(h.as_deref())));
                }
            }
            for &rank in &fresh {
                touched.extend(
                    ordered[rank]
                        .spec
                        .rules
                        .iter()
                        .map(|r| HostKey::of(r.host())),
                );
            }
            let touched: HashSet<HostKey<'_>, RandomState> = touched.into_iter().collect();
            for object in p.changed.iter() {
                table.hosts_of.delete(Key::of_ref(object));
            }
            for &rank in &fresh {
                if !ordered[rank].spec.rules.is_empty() {
                    table.hosts_of.put(ordered[rank]);
                }
            }
            // The unchanged Ingresses that had rules for a touched host still have them; the
            // changed ones that have them now join. Each is read once, in age order.
            let mut contributors: Vec<usize> = touched
                .iter()
                .filter_map(|&key| p.table.vhost(key))
                .flat_map(|vhost| &vhost.ingresses)
                .filter(|object| !p.changed.contains(object))
                .filter_map(|object| last_of.get(&Key::of_ref(object)))
                .filter_map(|&index| rank_of[index])
                .chain(fresh.iter().copied())
                .collect();
            contributors.sort_unstable();
            contributors.dedup();
            let (_, rules) = rules_by_host(&ordered, contributors, |key| touched.contains(key));
            for &key in &touched {
                if let Some(old) = p.table.vhost(key) {
                    table.rule_count -= old.rules.len();
                    table.remove_aliases(old);
                }
                let vhost = rules.get(&key).map(|rules| {
                    compile_host(key, rules, &ordered, &table.ingresses, &table.options)
                });
                table.rule_count += vhost.as_ref().map_or(0, |v| v.rules.len());
                table.set_vhost(key, vhost);
                table.add_aliases(key);
            }
        }
    }

    // With no host selected: the oldest rule-less Ingress's defaultBackend, else the host-less
    // virtual host's fallback. After an update, only a changed rule-less Ingress can change
    // the first.
    let rescan = previous.is_none_or(|p| {
        p.table
            .catch_all
            .as_ref()
            .is_some_and(|c| !c.hostless && p.changed.contains(&c.ingress))
            || fresh.iter().any(|&rank| {
                let spec = &ordered[rank].spec;
                spec.rules.is_empty() && spec.default_backend.is_some()
            })
    });
    let ruleless = if rescan {
        let candidates = ordered
            .iter()
            .zip(table.ingresses.iter())
            .filter(|(ingress, _)| ingress.spec.rules.is_empty())
            .filter_map(|(ingress, object)| {
                let backend = ingress.spec.default_backend.as_ref()?;
                let backend = Backend::from_ingress_backend(ingress.metadata.namespace(), backend)?;
                Some((*ingress, object, backend))
            });
        match &table.options.extension {
            None => candidates
                .map(|(_, object, backend)| CatchAll {
                    backend,
                    ingress: object.clone(),
                    hostless: false,
                    extra: None,
                })
                .next(),
            Some(extension) => {
                let candidates: Vec<_> = candidates.collect();
                let ingresses: Vec<&Ingress> = candidates.iter().map(|c| c.0).collect();
                let decided = match ingresses.is_empty() {
                    true => CatchAllExtras::default(),
                    false => extension.catch_all_extras(&ingresses),
                };
                decided
                    .serving
                    .and_then(|i| candidates.get(i))
                    .map(|(_, object, backend)| CatchAll {
                        backend: backend.clone(),
                        ingress: (*object).clone(),
                        hostless: false,
                        extra: decided.extras.map(|extras| {
                            let RouteExtras {
                                mut backends,
                                policy,
                                ..
                            } = extras;
                            if backends.is_empty() {
                                backends.push(WeightedBackend::new(backend.clone(), 1));
                            }
                            Arc::new((backends.into_boxed_slice(), policy))
                        }),
                    })
            }
        }
    } else {
        previous
            .and_then(|p| p.table.catch_all.clone())
            .filter(|c| !c.hostless)
    };
    table.catch_all = ruleless.or_else(|| {
        let vhost = table.hostless.as_ref()?;
        let target = vhost.fallback?;
        Some(CatchAll {
            backend: vhost.backends[target.backend as usize].clone(),
            ingress: vhost.ingresses[target.ingress as usize].clone(),
            hostless: true,
            extra: None,
        })
    });

    (table, ordered)
}

impl RouteTable {
    /// A table without hosts, sized for about `hosts` hosts and `ingresses` Ingresses.
    pub(super) fn empty(
        options: TableOptions,
        ingresses: Arc<[ObjectRef]>,
        hosts: usize,
        with_rules: usize,
    ) -> RouteTable {
        let hasher = RandomState::default();
        RouteTable {
            controller_default: options.default_backend.clone(),
            options,
            diagnostics: OnceLock::new(),
            quarantined: Vec::new(),
            input_warnings: Vec::new(),
            ingresses,
            hosts: HostMap::with_capacity(hasher.clone(), hosts, hosts / 8),
            hostless: None,
            hosts_of: Sharded::new(hasher, with_rules),
            catch_all: None,
            aliases: Arc::default(),
            rule_count: 0,
        }
    }

    /// Registers the aliases of the virtual host of `key`; a name already taken keeps its
    /// owner.
    fn add_aliases(&mut self, key: HostKey<'_>) {
        let Some(vhost) = self.vhost(key).filter(|v| !v.aliases.is_empty()).cloned() else {
            return;
        };
        let aliases = Arc::make_mut(&mut self.aliases);
        for alias in vhost.aliases.iter() {
            aliases
                .entry(alias.clone())
                .or_insert_with(|| Arc::clone(&vhost));
        }
    }

    /// Forgets the aliases that `old` registered.
    fn remove_aliases(&mut self, old: &Arc<VirtualHost>) {
        if old.aliases.is_empty() {
            return;
        }
        let aliases = Arc::make_mut(&mut self.aliases);
        for alias in old.aliases.iter() {
            if aliases.get(alias).is_some_and(|v| Arc::ptr_eq(v, old)) {
                aliases.remove(alias);
            }
        }
    }
}

/// Each host's rules as (rank in `ordered`, rule index), in age and then rule order, over the
/// Ingresses at `ranks` (ascending), for the hosts `keep` accepts; and the hosts in order of
/// first appearance. One pass over those Ingresses' rules, however many hosts they name.
#[allow(clippy::type_complexity)]
pub(super) fn rules_by_host<'i>(
    ordered: &[&'i Ingress],
    ranks: impl IntoIterator<Item = usize>,
    keep: impl Fn(&HostKey<'i>) -> bool,
) -> (
    Vec<HostKey<'i>>,
    HashMap<HostKey<'i>, Vec<(usize, usize)>, RandomState>,
) {
    let mut order = Vec::new();
    let mut rules: HashMap<HostKey<'i>, Vec<(usize, usize)>, RandomState> = HashMap::default();
    for rank in ranks {
        for (index, rule) in ordered[rank].spec.rules.iter().enumerate() {
            let key = HostKey::of(rule.host());
            if keep(&key) {
                rules
                    .entry(key)
                    .or_insert_with(|| {
                        order.push(key);
                        Vec::new()
                    })
                    .push((rank, index));
            }
        }
    }
    (order, rules)
}

/// Compiles one virtual host from its rules: (rank into `ordered`, rule index), in age and
/// then rule order.
pub(super) fn compile_host(
    key: HostKey<'_>,
    rules: &[(usize, usize)],
    ordered: &[&Ingress],
    refs: &[ObjectRef],
    options: &TableOptions,
) -> VirtualHost {
    let host = match key {
        HostKey::Hostless => None,
        HostKey::Exact(host) => Some(host.into()),
        HostKey::Wildcard(suffix) => Some(format!("*.{suffix}").into()),
    };
    let by_ingress: Vec<&[(usize, usize)]> = rules.chunk_by(|a, b| a.0 == b.0).collect();
    let first_rule = rules.first().map_or(0, |&(_, index)| index);
    let plan = match &options.extension {
        Some(extension) => {
            let of_host: Vec<&Ingress> = by_ingress.iter().map(|r| ordered[r[0].0]).collect();
            HostPlan::new(extension.host_extras(host.as_deref(), &of_host))
        }
        None => HostPlan::default(),
    };
    let aliases = plan.aliases.clone();
    let mut builder = HostBuilder {
        vhost: VirtualHost {
            #[cfg(feature = "regex")]
            regex: None,
            host,
            children: Arc::default(),
            tails: Vec::new(),
            hasher: RandomState::default(),
            rules: Vec::new(),
            backends: Vec::new(),
            extras: Vec::new(),
            ingresses: by_ingress.iter().map(|r| refs[r[0].0].clone()).collect(),
            aliases: Box::default(),
            first_rule: u32::try_from(first_rule).unwrap_or(u32::MAX),
            fallback: None,
            conflicts: Vec::new(),
            warnings: Vec::new(),
        },
        slots: vec![Slots::default()],
        children: vec![Children::default()],
        backend_ids: HashMap::default(),
        options,
        plan,
        heads: Vec::new(),
        #[cfg(feature = "regex")]
        regexes: Vec::new(),
    };
    let mut indices = Vec::new();
    for (local, group) in by_ingress.iter().enumerate() {
        indices.clear();
        indices.extend(group.iter().map(|&(_, index)| index));
        builder.add_ingress(local as Id, ordered[group[0].0], &indices);
    }
    builder.settle();
    let mut vhost = builder.vhost;
    vhost.aliases = aliases
        .into_iter()
        .filter(|a| Some(a.as_str()) != vhost.host.as_deref())
        .map(String::into_boxed_str)
        .collect();
    vhost
}

/// One candidate for a node slot while building: sorted to find the winner.
#[derive(Debug, Clone)]
pub(super) struct Candidate {
    /// Prefix rules only: a trailing `/` in the rule path outranks its absence.
    pub(super) trailing: bool,
    pub(super) rule_index: usize,
    pub(super) path_index: usize,
    pub(super) rule: Rule,
    /// What an extension gave the rule path, if anything.
    pub(super) extras: Option<Box<RouteExtras>>,
    /// The path as a regex, on a host whose paths are matched as regexes.
    #[cfg(feature = "regex")]
    pub(super) regex: Option<regex::Regex>,
}

/// What the extension decided for the virtual host being compiled.
#[derive(Debug, Default)]
pub(super) struct HostPlan {
    withheld: HashSet<PathRef, RandomState>,
    extras: HashMap<PathRef, RouteExtras, RandomState>,
    aliases: Vec<String>,
    regex: bool,
}

impl HostPlan {
    fn new(decided: HostExtras) -> HostPlan {
        HostPlan {
            withheld: decided.withheld.into_iter().collect(),
            extras: decided.extras.into_iter().collect(),
            aliases: decided.aliases,
            #[cfg(feature = "regex")]
            regex: decided.regex_paths,
            #[cfg(not(feature = "regex"))]
            regex: false,
        }
    }
}

/// The most bytes a regex path's compiled program may take, and its lazy DFA's cache: a path
/// that needs more is left out with a warning.
#[cfg(feature = "regex")]
const REGEX_SIZE_LIMIT: usize = 256 * 1024;

/// A rule path as the regex a host in regex mode matches it with: case-insensitive, anchored
/// at the start only.
#[cfg(feature = "regex")]
pub(crate) fn path_regex(path: &str) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(&format!("^(?:{path})"))
        .case_insensitive(true)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .nest_limit(64)
        .build()
}

impl Candidate {
    /// The conditions a request must meet for the candidate to take it.
    fn conditions(&self) -> &[Condition] {
        self.extras.as_ref().map_or(&[], |e| &e.conditions)
    }

    pub(super) fn order(&self) -> (bool, Id, usize, usize) {
        (
            !self.trailing,
            self.rule.ingress,
            self.rule_index,
            self.path_index,
        )
    }

    pub(super) fn rule_ref(&self, ingresses: &[ObjectRef]) -> RuleRef {
        RuleRef {
            ingress: ingresses[self.rule.ingress as usize].clone(),
            field: format!(
                "spec.rules[{}].http.paths[{}]",
                self.rule_index, self.path_index
            ),
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct Slots {
    pub(super) exact: Vec<Candidate>,
    pub(super) exact_slash: Vec<Candidate>,
    pub(super) prefix: Vec<Candidate>,
}

/// Compiles one [`VirtualHost`].
pub(super) struct HostBuilder<'o> {
    pub(super) vhost: VirtualHost,
    pub(super) slots: Vec<Slots>,
    /// Each node's children, laid out in the virtual host when it is settled.
    pub(super) children: Vec<Children>,
    pub(super) backend_ids: HashMap<Backend, Id, RandomState>,
    pub(super) options: &'o TableOptions,
    pub(super) plan: HostPlan,
    /// Every slot's head rule, in node order: the rules a regex host tries.
    pub(super) heads: Vec<Id>,
    /// Each rule's regex, by rule id, on a regex host.
    #[cfg(feature = "regex")]
    pub(super) regexes: Vec<Option<regex::Regex>>,
}

impl HostBuilder<'_> {
    pub(super) fn backend(&mut self, backend: Backend) -> Id {
        let next = self.vhost.backends.len() as Id;
        *self.backend_ids.entry(backend).or_insert_with_key(|b| {
            self.vhost.backends.push(b.clone());
            next
        })
    }

    /// Adds a winning candidate to the rule list, its extras beside it; returns its id.
    fn push_rule(&mut self, candidate: Candidate) -> Id {
        #[cfg(feature = "regex")]
        if self.plan.regex {
            self.regexes.push(candidate.regex);
        }
        let mut rule = candidate.rule;
        if let Some(extras) = candidate.extras {
            let RouteExtras {
                conditions,
                mut backends,
                policy,
            } = *extras;
            if backends.is_empty() {
                let own = self.vhost.backends[rule.backend as usize].clone();
                backends.push(WeightedBackend::new(own, 1));
            }
            rule.backend = self.vhost.extras.len() as Id;
            rule.extra = true;
            self.vhost.extras.push(Extra {
                backends: backends.into(),
                policy,
                conditions: conditions.into(),
                next: Winner::default(),
            });
        }
        let id = self.vhost.rules.len() as Id;
        self.vhost.rules.push(rule);
        id
    }

    /// Orders a slot's candidates into the chain a lookup tries (see the `route` module docs):
    /// those with conditions, most conditions first, then the winner of the others. Returns
    /// the head, and the extra whose `next` is still to be set (the last with conditions, when
    /// no candidate without conditions follows it).
    fn slot(&mut self, candidates: Vec<Candidate>, kind: PathType) -> (Option<Id>, Option<Id>) {
        let (mut conditioned, plain): (Vec<Candidate>, Vec<Candidate>) = candidates
            .into_iter()
            .partition(|c| !c.conditions().is_empty());
        let winner = self.winner(plain, kind);
        if conditioned.is_empty() {
            return (winner, None);
        }
        conditioned.sort_by(|a, b| {
            (b.conditions().len().cmp(&a.conditions().len())).then(a.order().cmp(&b.order()))
        });
        // Candidates with the same conditions take the same requests: the first of each wins.
        let mut kept: Vec<Candidate> = Vec::new();
        let mut losers: Vec<Vec<Candidate>> = Vec::new();
        for candidate in conditioned {
            match kept
                .iter()
                .position(|k| k.conditions() == candidate.conditions())
            {
                Some(i) => losers[i].push(candidate),
                None => {
                    kept.push(candidate);
                    losers.push(Vec::new());
                }
            }
        }
        for (first, rest) in kept.iter().zip(&losers) {
            if !rest.is_empty() {
                let ingresses = &self.vhost.ingresses;
                self.vhost.conflicts.push(Conflict {
                    host: self.vhost.host.as_deref().map(Into::into),
                    path: first.rule.path.to_string(),
                    path_type: kind,
                    winner: first.rule_ref(ingresses),
                    losers: rest.iter().map(|c| c.rule_ref(ingresses)).collect(),
                });
            }
        }
        let mut head = None;
        let mut previous: Option<Id> = None;
        for candidate in kept {
            let id = self.push_rule(candidate);
            match previous {
                Some(p) => self.link(p, Some(id)),
                None => head = Some(id),
            }
            previous = Some(id);
        }
        let last = previous.expect("at least one candidate with conditions");
        match winner {
            Some(w) => {
                self.link(last, Some(w));
                (head, None)
            }
            None => (head, Some(last)),
        }
    }

    /// Sets what rule `id` (one with conditions) gives way to.
    fn link(&mut self, id: Id, next: Option<Id>) {
        let rule = &self.vhost.rules[id as usize];
        debug_assert!(rule.extra);
        self.vhost.extras[rule.backend as usize].next = Winner::new(next);
    }

    pub(super) fn node(&mut self) -> Id {
        self.slots.push(Slots::default());
        self.children.push(Children::default());
        (self.slots.len() - 1) as Id
    }

    /// Adds the rules of `ingress` (local rank `local`) at `rule_indices`, which are this
    /// host's.
    pub(super) fn add_ingress(&mut self, local: Id, ingress: &Ingress, rule_indices: &[usize]) {
        let namespace = ingress.metadata.namespace();
        let default_backend = ingress
            .spec
            .default_backend
            .as_ref()
            .and_then(|b| Backend::from_ingress_backend(namespace, b));
        for &rule_index in rule_indices {
            let Some(rule) = ingress.spec.rules.get(rule_index) else {
                continue;
            };
            if self.vhost.fallback.is_none() {
                if let Some(backend) = default_backend.clone() {
                    self.vhost.fallback = Some(Target {
                        backend: self.backend(backend),
                        ingress: local,
                    });
                }
            }
            let Some(http) = &rule.http else { continue };
            for (path_index, path) in http.paths.iter().enumerate() {
                let Some(path_type) = path.path_type() else {
                    continue;
                };
                let Some(backend) = Backend::from_ingress_backend(namespace, &path.backend) else {
                    continue;
                };
                let at = PathRef::new(local as usize, rule_index, path_index);
                if self.plan.withheld.contains(&at) {
                    continue;
                }
                let written = path.path.as_deref().unwrap_or_default();
                let effective = if written.is_empty() { "/" } else { written };
                #[cfg(feature = "regex")]
                let regex = match self.plan.regex {
                    false => None,
                    true => match path_regex(effective) {
                        Ok(regex) => Some(regex),
                        Err(e) => {
                            let e = e.to_string();
                            let e = e.lines().last().unwrap_or_default().trim();
                            self.vhost.warnings.push(Warning {
                                object: self.vhost.ingresses[local as usize].clone(),
                                field: format!(
                                    "spec.rules[{rule_index}].http.paths[{path_index}].path"
                                ),
                                message: format!(
                                    "path {effective:?} is not a usable regex, and this host matches paths as regexes: {e}"
                                ),
                            });
                            continue;
                        }
                    },
                };
                let never = match self.plan.regex {
                    true => None,
                    false => self.never_matches(effective),
                };
                if let Some(reason) = never {
                    self.vhost.warnings.push(Warning {
                        object: self.vhost.ingresses[local as usize].clone(),
                        field: format!("spec.rules[{rule_index}].http.paths[{path_index}].path"),
                        message: format!("path {effective:?} can never match: {reason}"),
                    });
                    continue;
                }
                let extras = match self.plan.extras.remove(&at) {
                    Some(extras) => Some(extras),
                    None => self
                        .options
                        .extension
                        .as_ref()
                        .and_then(|e| e.extras(ingress, rule_index, path_index)),
                }
                .map(Box::new);
                let backend = self.backend(backend);
                let candidate = Candidate {
                    trailing: false,
                    rule_index,
                    path_index,
                    rule: Rule {
                        backend,
                        ingress: local,
                        path: written.into(),
                        path_type,
                        extra: false,
                    },
                    extras,
                    #[cfg(feature = "regex")]
                    regex,
                };
                self.insert(effective, candidate);
            }
        }
    }

    /// Why a rule path can never equal a canonical request path, if it cannot.
    pub(super) fn never_matches(&self, path: &str) -> Option<String> {
        if self.options.canonical.mode == PathMode::Raw {
            return None;
        }
        let options = CanonicalOptions {
            mode: PathMode::Normalize,
            ..self.options.canonical.clone()
        };
        match canonical::canonical_path(path, &options) {
            Err(rejection) => Some(format!(
                "requests with it are rejected ({})",
                rejection.reason()
            )),
            Ok(canonical) if canonical.query().is_some() => {
                Some("`?` starts the query, which is never matched".into())
            }
            Ok(canonical) if canonical.path() != path => Some(format!(
                "requests are normalised to {:?} before matching",
                canonical.path()
            )),
            Ok(_) => None,
        }
    }

    pub(super) fn insert(&mut self, path: &str, mut candidate: Candidate) {
        let exact = match candidate.rule.path_type {
            PathType::Exact => true,
            PathType::Prefix => false,
            PathType::ImplementationSpecific => {
                self.options.implementation_specific == ImplementationSpecific::Exact
            }
        };
        let (segments, trailing) = segments(path);
        let mut node: Id = 0;
        for segment in segments {
            node = match self.children[node as usize].get(segment) {
                Some(child) => child,
                None => {
                    let child = self.node();
                    self.children[node as usize].insert(segment, child);
                    child
                }
            };
        }
        let slots = &mut self.slots[node as usize];
        if !exact {
            candidate.trailing = trailing;
            slots.prefix.push(candidate);
        } else if trailing {
            slots.exact_slash.push(candidate);
        } else {
            slots.exact.push(candidate);
        }
    }

    /// Picks each slot's winner, records conflicts, and moves winners into the rule list.
    pub(super) fn settle(&mut self) {
        let slots = std::mem::take(&mut self.slots);
        let children = std::mem::take(&mut self.children);
        // Winners in node order, which orders the conflicts and warnings. Chains whose last
        // candidate has conditions give way to the route of a shorter path: which one is known
        // once every node has its winners.
        let mut open: Vec<(Id, bool, Id)> = Vec::new();
        let mut nodes: Vec<Option<Node>> = Vec::with_capacity(slots.len());
        for (id, slots) in slots.into_iter().enumerate() {
            let id = id as Id;
            let (exact, tail) = self.slot(slots.exact, PathType::Exact);
            open.extend(tail.map(|t| (id, true, t)));
            let (exact_slash, tail) = self.slot(slots.exact_slash, PathType::Exact);
            open.extend(tail.map(|t| (id, true, t)));
            let (prefix, tail) = self.slot(slots.prefix, PathType::Prefix);
            open.extend(tail.map(|t| (id, false, t)));
            if self.plan.regex {
                self.heads
                    .extend([exact, exact_slash, prefix].into_iter().flatten());
            }
            nodes.push(Some(Node {
                exact: Winner::new(exact),
                exact_slash: Winner::new(exact_slash),
                prefix: Winner::new(prefix),
                children: Kids::default(),
            }));
        }
        if !open.is_empty() {
            self.close_chains(&open, &nodes, &children);
        }
        // A child is numbered after its parent: going backwards, every node's children are
        // complete when it takes them in. Runs are laid out in that order, the root's last.
        let mut list: Vec<Child> = Vec::new();
        let tails = &mut self.vhost.tails;
        let hasher = &self.vhost.hasher;
        for (id, children) in children.into_iter().enumerate().rev() {
            let mut take = |child: Id| {
                nodes
                    .get_mut(child as usize)
                    .and_then(Option::take)
                    .expect("a child is numbered after its parent, and has one parent")
            };
            let start = list.len();
            let kids = match children {
                Children::Few(few) => {
                    list.extend(
                        few.iter()
                            .map(|(segment, child)| Child::new(segment, take(*child), tails)),
                    );
                    Kids::Few {
                        start: u32::try_from(start).expect("fewer children than nodes"),
                        len: u32::try_from(few.len()).expect("a few children"),
                    }
                }
                Children::Many(map) => {
                    let slots = (2 * map.len()).next_power_of_two();
                    list.extend((0..slots).map(|_| Child::vacant()));
                    let mask = slots - 1;
                    for (segment, child) in map {
                        let mut i = hasher.hash_one(segment.as_bytes()) as usize & mask;
                        while list[start + i].len != Child::VACANT {
                            i = (i + 1) & mask;
                        }
                        list[start + i] = Child::new(&segment, take(child), tails);
                    }
                    Kids::Hashed {
                        start: u32::try_from(start).expect("fewer children than nodes"),
                        mask: u32::try_from(mask).expect("fewer children than nodes"),
                    }
                }
            };
            if let Some(Some(node)) = nodes.get_mut(id) {
                node.children = kids;
            }
        }
        let root = nodes
            .first_mut()
            .and_then(Option::take)
            .expect("the root is never a child");
        self.vhost.children = root_first(root, list).into();
        #[cfg(feature = "regex")]
        if self.plan.regex {
            self.settle_regexes();
        }
        // The table lives long and grows no more: no spare capacity.
        let vhost = &mut self.vhost;
        vhost.tails.shrink_to_fit();
        vhost.rules.shrink_to_fit();
        vhost.backends.shrink_to_fit();
        vhost.extras.shrink_to_fit();
    }

    /// Orders the slot heads of a regex host as ingress-nginx orders its regex locations:
    /// longest path first, then in reverse lexical order.
    #[cfg(feature = "regex")]
    fn settle_regexes(&mut self) {
        let rules = &self.vhost.rules;
        let mut heads = std::mem::take(&mut self.heads);
        heads.sort_by(|&a, &b| {
            let (a_path, b_path) = (&rules[a as usize].path, &rules[b as usize].path);
            let effective = |p: &str| if p.is_empty() { 1 } else { p.len() };
            (effective(b_path).cmp(&effective(a_path)))
                .then_with(|| b_path.cmp(a_path))
                .then(a.cmp(&b))
        });
        let paths = heads
            .into_iter()
            .filter_map(|id| Some((self.regexes[id as usize].take()?, id)))
            .collect::<Vec<_>>();
        self.vhost.regex = Some(Box::new(RegexPaths {
            paths: paths.into_boxed_slice(),
        }));
    }

    /// Links the open chain ends `(node, exact, rule)` to what a lookup takes without them: for
    /// an Exact slot, the longest Prefix at or above its node; for a Prefix slot, the longest
    /// above it.
    fn close_chains(
        &mut self,
        open: &[(Id, bool, Id)],
        nodes: &[Option<Node>],
        children: &[Children],
    ) {
        // The longest Prefix head above each node, and at or above it.
        let mut above = vec![Winner::default(); nodes.len()];
        let mut at = vec![Winner::default(); nodes.len()];
        let mut stack: Vec<(Id, Winner)> = vec![(0, Winner::default())];
        while let Some((id, inherited)) = stack.pop() {
            let node = nodes[id as usize]
                .as_ref()
                .expect("every node is still in place");
            let here = if node.prefix.get().is_some() {
                node.prefix
            } else {
                inherited
            };
            above[id as usize] = inherited;
            at[id as usize] = here;
            match &children[id as usize] {
                Children::Few(list) => stack.extend(list.iter().map(|&(_, child)| (child, here))),
                Children::Many(map) => stack.extend(map.values().map(|&child| (child, here))),
            }
        }
        for &(node, exact, rule) in open {
            let next = if exact {
                at[node as usize]
            } else {
                above[node as usize]
            };
            self.link(rule, next.get());
        }
    }

    /// Picks a slot's winner. Candidates with the same trailing-slash form are identical rules:
    /// each such group is a conflict won by its oldest. A Prefix group without the trailing
    /// slash loses every request to the group with it: its winner gets a warning.
    pub(super) fn winner(&mut self, mut candidates: Vec<Candidate>, kind: PathType) -> Option<Id> {
        if candidates.is_empty() {
            return None;
        }
        candidates.sort_by_key(Candidate::order);
        let vhost = &mut self.vhost;
        let ingresses = &vhost.ingresses;
        let winner = &candidates[0];
        // Sorted, so the trailing-slash group (if any) comes first and each group is contiguous.
        for group in candidates.chunk_by(|a, b| a.trailing == b.trailing) {
            let Some((first, rest)) = group.split_first() else {
                continue;
            };
            if !rest.is_empty() {
                vhost.conflicts.push(Conflict {
                    host: vhost.host.as_deref().map(Into::into),
                    path: first.rule.path.to_string(),
                    path_type: kind,
                    winner: first.rule_ref(ingresses),
                    losers: rest.iter().map(|c| c.rule_ref(ingresses)).collect(),
                });
            }
            if first.trailing != winner.trailing {
                vhost.warnings.push(Warning {
                    object: ingresses[first.rule.ingress as usize].clone(),
                    field: format!(
                        "spec.rules[{}].http.paths[{}].path",
                        first.rule_index, first.path_index
                    ),
                    message: format!(
                        "Prefix {:?} is never selected: {:?} of {} matches the same requests and takes precedence",
                        &*first.rule.path, &*winner.rule.path, winner.rule_ref(ingresses)
                    ),
                });
            }
        }
        let winner = candidates.swap_remove(0);
        Some(self.push_rule(winner))
    }
}

/// The trie's entries with the root first and its run right after it: `list` holds every
/// node's run, the root's last (from `root`'s `start` on); the runs before it move behind it,
/// and every run's start moves with it.
fn root_first(mut root: Node, mut list: Vec<Child>) -> Vec<Child> {
    let root_run = match root.children {
        Kids::Few { start, .. } | Kids::Hashed { start, .. } => start as usize,
    }
    .min(list.len());
    let after_root = list.len() - root_run;
    // Entry 0 is the root; the root's run was the last part of `list`.
    let moved = |start: u32| -> u32 {
        let start = start as usize;
        let at = if start >= root_run {
            1 + start - root_run
        } else {
            1 + after_root + start
        };
        u32::try_from(at).expect("fewer children than nodes")
    };
    let remap = |node: &mut Node| match &mut node.children {
        Kids::Few { start, .. } | Kids::Hashed { start, .. } => *start = moved(*start),
    };
    remap(&mut root);
    list.rotate_left(root_run);
    for entry in &mut list {
        remap(&mut entry.node);
    }
    list.insert(0, Child::root(root));
    list
}
