//! A virtual host's compiled form: a segment trie over its rule paths.

use std::hash::BuildHasher;

use super::*;

pub(super) type Id = u32;

/// A compiled path rule; its host is its virtual host's.
#[derive(Debug, Clone)]
pub(super) struct Rule {
    /// Index into the virtual host's backends; with `extra`, into its extras instead.
    pub(super) backend: Id,
    /// Index into the virtual host's Ingresses, ordered oldest first, so it is also the age
    /// rank among them.
    pub(super) ingress: Id,
    pub(super) path: Box<str>,
    pub(super) path_type: PathType,
    /// Whether the rule carries conditions, weighted backends or a policy (in the extras,
    /// beside the trie), so that a plain rule costs no more than it did.
    pub(super) extra: bool,
}

/// A virtual host's fallback: a backend and the Ingress it came from, by index into the
/// virtual host's lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Target {
    pub(super) backend: Id,
    pub(super) ingress: Id,
}

/// A backend that belongs to no virtual host: the catch-all defaultBackend.
#[derive(Debug, Clone)]
pub(crate) struct CatchAll {
    pub(super) backend: Backend,
    pub(super) ingress: ObjectRef,
    /// Taken from the host-less virtual host's fallback, not from an Ingress without rules.
    pub(super) hostless: bool,
    /// What an extension gave it: weighted backends and a policy.
    pub(super) extra: Option<Arc<(Box<[WeightedBackend]>, Policy)>>,
}

#[derive(Debug, Default)]
pub(super) struct Node {
    /// Winning Exact rule for the path ending at this node, without and with a trailing `/`.
    pub(super) exact: Winner,
    pub(super) exact_slash: Winner,
    /// Winning Prefix rule whose path (trailing `/` ignored) ends at this node.
    pub(super) prefix: Winner,
    pub(super) children: Kids,
}

/// A node's winning rule for one of its slots, if any: a rule index, or `Id::MAX`, which no
/// rule has. Half the size of an `Option`, so that a child entry fits a cache line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Winner(Id);

impl Winner {
    pub(super) fn new(rule: Option<Id>) -> Winner {
        Winner(rule.filter(|&id| id != Id::MAX).unwrap_or(Id::MAX))
    }

    #[inline]
    pub(super) fn get(self) -> Option<Id> {
        (self.0 != Id::MAX).then_some(self.0)
    }
}

impl Default for Winner {
    fn default() -> Self {
        Winner(Id::MAX)
    }
}

/// A compiled node's children: a run of the virtual host's child list (all of a host's short
/// lists sit side by side, so a lookup that goes down the trie mostly stays in the cache lines
/// it has read), searched in order for a few children, by hash for many.
#[derive(Debug)]
pub(super) enum Kids {
    Few {
        start: u32,
        len: u32,
    },
    /// A wide node's children in an open-addressing table of `mask + 1` entries of the list,
    /// indexed by the segment's hash (the virtual host's `hasher`) with linear probing; at most
    /// half of them are children, the others are [`Child::VACANT`]. A look-up reads the entry at
    /// the hash, and seldom the next: one read, where a separate hash map took three.
    Hashed {
        start: u32,
        mask: u32,
    },
}

impl Default for Kids {
    fn default() -> Self {
        Kids::Few { start: 0, len: 0 }
    }
}

impl Kids {
    #[inline]
    pub(super) fn get<'a>(
        &'a self,
        segment: &str,
        list: &'a [Child],
        tails: &[u8],
        hasher: &RandomState,
    ) -> Option<&'a Node> {
        match *self {
            Kids::Few { start, len } => {
                let run = list.get(start as usize..(start + len) as usize)?;
                Child::find(run, tails, segment)
            }
            Kids::Hashed { start, mask } => {
                let run = list.get(start as usize..=(start + mask) as usize)?;
                let bytes = segment.as_bytes();
                let (head, len) = (head(bytes), bytes.len());
                let mask = mask as usize;
                let mut i = hasher.hash_one(bytes) as usize & mask;
                loop {
                    let child = run.get(i)?;
                    if child.len == Child::VACANT {
                        return None;
                    }
                    if child.is(head, len, bytes, tails) {
                        return Some(&child.node);
                    }
                    i = (i + 1) & mask;
                }
            }
        }
    }
}

#[derive(Debug)]
pub(super) enum Children {
    Few(Vec<(Box<str>, Id)>),
    Many(HashMap<Box<str>, Id, RandomState>),
}

/// A child in a short list: the segment's length and first eight bytes tell it from its
/// siblings without following a pointer, and are the whole segment for most path elements.
/// The child node itself is kept in the entry, so that a lookup reads one entry per segment.
#[derive(Debug)]
pub(super) struct Child {
    pub(super) head: u64,
    pub(super) len: u32,
    /// Where the bytes after the first eight start in the virtual host's `tails`.
    pub(super) tail: u32,
    pub(super) node: Node,
}

/// A segment's first eight bytes, zero-padded.
#[inline]
pub(super) fn head(segment: &[u8]) -> u64 {
    match segment.first_chunk::<8>() {
        Some(bytes) => u64::from_le_bytes(*bytes),
        // Shifts, not a copy of a variable length, which would call `memcpy`.
        None => segment
            .iter()
            .rev()
            .fold(0, |head, &b| (head << 8) | u64::from(b)),
    }
}

impl Default for Children {
    fn default() -> Self {
        Children::Few(Vec::new())
    }
}

// Beyond this many children a hash lookup beats comparing segments one by one.
pub(super) const FEW_CHILDREN: usize = 16;

impl Child {
    /// The entry for `segment`, its bytes after the first eight appended to `tails`.
    pub(super) fn new(segment: &str, node: Node, tails: &mut Vec<u8>) -> Child {
        let bytes = segment.as_bytes();
        let tail = u32::try_from(tails.len()).expect("a virtual host's segments fit in 4 GiB");
        tails.extend_from_slice(bytes.get(8..).unwrap_or_default());
        Child {
            head: head(bytes),
            len: u32::try_from(bytes.len()).expect("a segment fits in 4 GiB"),
            tail,
            node,
        }
    }

    /// The length of an unused entry of a hashed run (and of the root's entry), which no
    /// segment has: one that long would not fit in a table's input.
    pub(super) const VACANT: u32 = u32::MAX;

    /// The entry holding the root node, first in a virtual host's trie; no run includes it.
    pub(super) fn root(node: Node) -> Child {
        Child {
            head: 0,
            len: Child::VACANT,
            tail: 0,
            node,
        }
    }

    /// An unused entry of a hashed run: an entry without a segment, as the root's.
    pub(super) fn vacant() -> Child {
        Child::root(Node::default())
    }

    /// Whether this is the entry of the segment `bytes`, whose first eight bytes are `head`
    /// and whose length is `len`.
    #[inline]
    fn is(&self, head: u64, len: usize, bytes: &[u8], tails: &[u8]) -> bool {
        self.head == head
            && self.len as usize == len
            && (len <= 8
                || tails.get(self.tail as usize..self.tail as usize + len - 8) == bytes.get(8..))
    }

    /// The child for `segment` among `list`, whose long segments end in `tails`.
    #[inline]
    pub(super) fn find<'a>(list: &'a [Child], tails: &[u8], segment: &str) -> Option<&'a Node> {
        let bytes = segment.as_bytes();
        let (head, len) = (head(bytes), bytes.len());
        list.iter()
            .find(|c| c.is(head, len, bytes, tails))
            .map(|c| &c.node)
    }
}

/// A node's children while its virtual host is built.
impl Children {
    #[inline]
    pub(super) fn get(&self, segment: &str) -> Option<Id> {
        match self {
            Children::Few(list) => list
                .iter()
                .find(|(s, _)| **s == *segment)
                .map(|&(_, id)| id),
            Children::Many(map) => map.get(segment).copied(),
        }
    }

    pub(super) fn insert(&mut self, segment: &str, id: Id) {
        match self {
            Children::Few(list) if list.len() < FEW_CHILDREN => list.push((segment.into(), id)),
            Children::Few(list) => {
                let mut map: HashMap<Box<str>, Id, RandomState> = list.drain(..).collect();
                map.insert(segment.into(), id);
                *self = Children::Many(map);
            }
            Children::Many(map) => {
                map.insert(segment.into(), id);
            }
        }
    }
}

/// The rules for one host (or for the host-less rules), compiled on their own so that a table
/// can share them with the next version when they do not change.
#[derive(Debug)]
pub(crate) struct VirtualHost {
    /// On a host whose paths are matched as regexes, the regexes in the order they are tried;
    /// the trie is then used only to settle precedence and conflicts among equal paths.
    #[cfg(feature = "regex")]
    pub(super) regex: Option<Box<RegexPaths>>,
    /// The host as written (`*.example.com` for a wildcard), `None` for the host-less rules.
    pub(super) host: Option<Box<str>>,
    /// The trie: entry 0 holds the root, the node of the empty path, and every other node is
    /// kept by its parent in a run of entries (its children, side by side). The root's run
    /// comes right after the root, so that a walk's first reads share a cache line.
    pub(super) children: Arc<[Child]>,
    /// The bytes after the first eight of the long segments in `children`.
    pub(super) tails: Vec<u8>,
    /// Hashes the segments of wide nodes ([`Kids::Hashed`]).
    pub(super) hasher: RandomState,
    pub(super) rules: Vec<Rule>,
    /// The backends of plain rules and fallbacks, each once.
    pub(super) backends: Vec<Backend>,
    /// What rules with `extra` carry.
    pub(super) extras: Vec<Extra>,
    /// The Ingresses with rules for this host, oldest first.
    pub(super) ingresses: Vec<ObjectRef>,
    /// Other names this host answers to.
    pub(super) aliases: Box<[Box<str>]>,
    /// The index of the oldest Ingress's first rule for this host: with that Ingress's age,
    /// where the host first appears, which orders the diagnostics.
    pub(super) first_rule: u32,
    pub(super) fallback: Option<Target>,
    pub(super) conflicts: Vec<Conflict>,
    pub(super) warnings: Vec<Warning>,
}

/// A virtual host as the host map keeps it: with its trie at hand, so that a look-up goes from
/// the map's slot straight to the trie, and reads the virtual host itself (its rules, its
/// backends) meanwhile rather than first.
#[derive(Debug, Clone)]
pub(crate) struct HostRoutes {
    /// The virtual host's `children`.
    pub(super) trie: Arc<[Child]>,
    pub(super) vhost: Arc<VirtualHost>,
}

impl HostRoutes {
    pub(super) fn new(vhost: Arc<VirtualHost>) -> HostRoutes {
        HostRoutes {
            trie: vhost.children.clone(),
            vhost,
        }
    }
}

impl VirtualHost {
    /// The rule matching `path` in `trie`, which is `self.children` (perhaps read through
    /// another pointer).
    #[inline]
    pub(super) fn match_path(&self, trie: &[Child], path: &str) -> Option<Id> {
        if !path.starts_with('/') {
            return None;
        }
        let (segments, trailing) = segments(path);
        let mut node = &trie.first()?.node;
        let mut best = node.prefix.get();
        for segment in segments {
            match node.children.get(segment, trie, &self.tails, &self.hasher) {
                Some(child) => {
                    node = child;
                    best = node.prefix.get().or(best);
                }
                None => return best,
            }
        }
        let exact = if trailing {
            node.exact_slash
        } else {
            node.exact
        };
        exact.get().or(best)
    }

    /// The path's route for `request`: the first candidate that takes it at the longest
    /// matching path, else at the next shorter one.
    ///
    /// `trie` is `self.children`, perhaps read through another pointer.
    #[inline]
    pub(super) fn select(
        &self,
        trie: &[Child],
        path: &str,
        request: Option<&RequestParts<'_>>,
    ) -> Option<Id> {
        #[cfg(feature = "regex")]
        if let Some(regex) = &self.regex {
            return self.select_regex(regex, path, request);
        }
        let id = self.match_path(trie, path)?;
        // A plain rule takes every request: the candidates are looked at only when the rule
        // has extras, which plain Ingresses never do.
        match self.rules.get(id as usize) {
            Some(rule) if rule.extra => self.choose(id, request),
            _ => Some(id),
        }
    }

    /// The first regex path that matches and whose candidates take `request`.
    #[cfg(feature = "regex")]
    #[cold]
    #[inline(never)]
    fn select_regex(
        &self,
        regex: &RegexPaths,
        path: &str,
        request: Option<&RequestParts<'_>>,
    ) -> Option<Id> {
        regex
            .paths
            .iter()
            .filter(|(regex, _)| regex.is_match(path))
            .find_map(|&(_, id)| self.choose(id, request))
    }

    /// The first candidate from `id` on whose conditions `request` meets.
    #[cold]
    #[inline(never)]
    fn choose(&self, mut id: Id, request: Option<&RequestParts<'_>>) -> Option<Id> {
        loop {
            let rule = &self.rules[id as usize];
            if !rule.extra {
                return Some(id);
            }
            let extra = &self.extras[rule.backend as usize];
            if extra.conditions.iter().all(|c| c.holds(request)) {
                return Some(id);
            }
            id = extra.next.get()?;
        }
    }

    #[inline]
    pub(super) fn rule_match<'a>(self: &'a Arc<Self>, id: Id) -> RouteMatch<'a> {
        let rule = &self.rules[id as usize];
        let backend = match rule.extra {
            false => &self.backends[rule.backend as usize],
            true => &self.extras[rule.backend as usize].backends[0].backend,
        };
        RouteMatch {
            backend,
            ingress: Some(&self.ingresses[rule.ingress as usize]),
            rule: Some(MatchedRule {
                host: self.host.as_deref(),
                path: &rule.path,
                path_type: rule.path_type,
            }),
            fallback: None,
            key: MatchKey::Rule(self, id),
        }
    }

    #[inline]
    pub(super) fn fallback_match<'a>(self: &'a Arc<Self>) -> Option<RouteMatch<'a>> {
        let target = self.fallback?;
        Some(RouteMatch {
            backend: &self.backends[target.backend as usize],
            ingress: Some(&self.ingresses[target.ingress as usize]),
            rule: None,
            fallback: Some(Fallback::IngressDefault),
            key: MatchKey::Fallback(self),
        })
    }

    /// The weighted backends of rule `id`, if it has extras.
    pub(super) fn weighted(&self, id: Id) -> Option<&[WeightedBackend]> {
        let rule = &self.rules[id as usize];
        rule.extra
            .then(|| &*self.extras[rule.backend as usize].backends)
    }

    /// The policy of rule `id`, if it has one.
    pub(super) fn policy(&self, id: Id) -> Option<&Policy> {
        let rule = &self.rules[id as usize];
        rule.extra
            .then(|| &self.extras[rule.backend as usize].policy)
            .filter(|p| !p.is_empty())
    }
}

/// The rule paths of a regex host, in the order they are tried.
#[cfg(feature = "regex")]
#[derive(Debug)]
pub(super) struct RegexPaths {
    pub(super) paths: Box<[(regex::Regex, Id)]>,
}

/// The segments of a path after its leading `/`, without the trailing `/`: `/a/b/` is `a`, `b`.
/// `//` is one empty segment (only raw-mode paths have empty segments).
#[derive(Debug, Clone)]
pub(super) struct Segments<'a> {
    pub(super) rest: Option<&'a str>,
}

impl<'a> Iterator for Segments<'a> {
    type Item = &'a str;

    #[inline]
    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        match slash(rest.as_bytes()) {
            Some(i) => {
                self.rest = rest.get(i + 1..);
                rest.get(..i)
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

/// The index of the first `/` in `bytes`, if any.
///
/// Eight bytes at a time while eight are left, without branching on each byte: segments are
/// short, so a vectorised search would not pay its setup, and a byte-by-byte scan costs four
/// instructions a byte.
#[inline]
pub(super) fn slash(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    const SLASHES: u64 = u64::from_ne_bytes([b'/'; 8]);
    let mut done = 0;
    while let Some(chunk) = bytes.get(done..).and_then(<[u8]>::first_chunk::<8>) {
        // Zero where the byte is a `/`; the lowest byte flagged is the first zero byte (only
        // bytes above a zero byte can be flagged without being zero).
        let word = u64::from_le_bytes(*chunk) ^ SLASHES;
        let zero = word.wrapping_sub(ONES) & !word & HIGH;
        if zero != 0 {
            return Some(done + (zero.trailing_zeros() / 8) as usize);
        }
        done += 8;
    }
    let tail = bytes.get(done..)?;
    tail.iter().position(|&b| b == b'/').map(|i| done + i)
}

/// Splits a path into its [`Segments`] and whether it ends in `/`. `/` itself, the root, has
/// no segments and no trailing slash.
#[inline]
pub(super) fn segments(path: &str) -> (Segments<'_>, bool) {
    let rest = path.strip_prefix('/').unwrap_or(path);
    if rest.is_empty() {
        return (Segments { rest: None }, false);
    }
    match rest.strip_suffix('/') {
        Some(rest) => (Segments { rest: Some(rest) }, true),
        None => (Segments { rest: Some(rest) }, false),
    }
}
