//! The maps behind every host lookup: a hash table cut into shards that versions share, and on
//! it the host map that finds a name exactly, else by the wildcard that covers its first label.
//!
//! Routes, TLS names and certificates all select by host the same way (exact name first, then
//! `*.suffix` covering exactly one non-empty label); [`HostMap`] is that lookup, written once.

use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

use foldhash::fast::RandomState;

use crate::canonical;

/// The longest DNS name, in bytes (RFC 1035), without a trailing dot.
pub(crate) const MAX_NAME: usize = 253;

/// How many entries a shard of a [`Sharded`] map is meant to hold.
const SHARD_SIZE: usize = 64;

/// The fewest slots a shard has.
const MIN_SLOTS: usize = 8;

/// A value in a shard, with its hash.
#[derive(Debug, Clone)]
struct Slot<T> {
    hash: u64,
    value: T,
}

/// A shard: an open-addressing table with linear probing, its slots in the same allocation as
/// its reference count, so that a lookup goes from the shard list straight to the slot. Its
/// length is a power of two, and at most three quarters of its slots are full, so that a probe
/// always ends at an empty one.
type Shard<T> = Arc<[Option<Slot<T>>]>;

/// A hash table cut into shards that versions of a table share: cloning it copies one pointer
/// per shard, and a change copies only the shard it lands in. A lookup reads the shard list,
/// then the slots at the hash: the first read of the shard is the slot itself.
#[derive(Debug, Clone)]
pub(crate) struct Sharded<T> {
    pub(crate) hasher: RandomState,
    /// Shards are picked by hash bits 32 and up; slots within a shard by the low bits.
    mask: usize,
    shards: Vec<Shard<T>>,
    /// How many values each shard holds.
    counts: Vec<u32>,
    len: usize,
}

impl<T: Clone> Sharded<T> {
    pub(crate) fn new(hasher: RandomState, capacity: usize) -> Self {
        let shards = (capacity / SHARD_SIZE)
            .max(1)
            .next_power_of_two()
            .min(1 << 16);
        // Room for a third more than the expected share: most probes stop at the first or
        // second slot.
        let slots = (4 * capacity / (3 * shards))
            .next_power_of_two()
            .max(MIN_SLOTS);
        // Shared until written to.
        let empty: Shard<T> = (0..slots).map(|_| None).collect();
        Sharded {
            hasher,
            mask: shards - 1,
            shards: vec![empty; shards],
            counts: vec![0; shards],
            len: 0,
        }
    }

    #[inline]
    pub(crate) fn hash<K: Hash>(&self, key: K) -> u64 {
        self.hasher.hash_one(key)
    }

    #[inline]
    fn shard(&self, hash: u64) -> usize {
        (hash >> 32) as usize & self.mask
    }

    /// The index of the slot holding the value `eq` finds, if any.
    #[inline]
    fn position(
        shard: &[Option<Slot<T>>],
        hash: u64,
        mut eq: impl FnMut(&T) -> bool,
    ) -> Option<usize> {
        let mask = shard.len() - 1;
        let mut i = hash as usize & mask;
        loop {
            let slot = shard.get(i)?.as_ref()?;
            if slot.hash == hash && eq(&slot.value) {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
    }

    #[inline]
    pub(crate) fn find(&self, hash: u64, eq: impl FnMut(&T) -> bool) -> Option<&T> {
        let shard = &self.shards[self.shard(hash)];
        let i = Self::position(shard, hash, eq)?;
        shard.get(i)?.as_ref().map(|slot| &slot.value)
    }

    /// Inserts or replaces the value `eq` finds.
    pub(crate) fn insert(&mut self, hash: u64, value: T, mut eq: impl FnMut(&T) -> bool) {
        let index = self.shard(hash);
        if let Some(i) = Self::position(&self.shards[index], hash, &mut eq) {
            Arc::make_mut(&mut self.shards[index])[i] = Some(Slot { hash, value });
            return;
        }
        self.push(index, Slot { hash, value });
        self.len += 1;
        // Grown well past its shards (a table built small, then updated many times): spread
        // out again, so that a change keeps copying a small shard.
        if self.len > 4 * SHARD_SIZE * self.shards.len() && self.shards.len() < 1 << 16 {
            let mut wider = Sharded::new(self.hasher.clone(), self.len);
            for slot in self.shards.iter().flat_map(|shard| shard.iter().flatten()) {
                wider.push(wider.shard(slot.hash), slot.clone());
            }
            wider.len = self.len;
            *self = wider;
        }
    }

    /// Adds a value that is not there yet to shard `index`, which doubles first if it would be
    /// more than three quarters full.
    fn push(&mut self, index: usize, slot: Slot<T>) {
        if 4 * (self.counts[index] as usize + 1) > 3 * self.shards[index].len() {
            let wider = 2 * self.shards[index].len();
            self.shards[index] = Self::resized(&self.shards[index], wider);
        }
        Self::put_new(Arc::make_mut(&mut self.shards[index]), slot);
        self.counts[index] += 1;
    }

    /// Puts a value that is not there yet in the first empty slot from its hash on.
    fn put_new(slots: &mut [Option<Slot<T>>], slot: Slot<T>) {
        let mask = slots.len() - 1;
        let mut i = slot.hash as usize & mask;
        while slots[i].is_some() {
            i = (i + 1) & mask;
        }
        slots[i] = Some(slot);
    }

    /// The values of `shard` in a new shard of `len` slots.
    fn resized(shard: &[Option<Slot<T>>], len: usize) -> Shard<T> {
        let mut slots: Vec<Option<Slot<T>>> = (0..len).map(|_| None).collect();
        for slot in shard.iter().flatten() {
            Self::put_new(&mut slots, slot.clone());
        }
        slots.into()
    }

    /// Removes the value `eq` finds, copying its shard only when there is one.
    pub(crate) fn remove(&mut self, hash: u64, eq: impl FnMut(&T) -> bool) -> Option<T> {
        let index = self.shard(hash);
        let mut hole = Self::position(&self.shards[index], hash, eq)?;
        let slots = Arc::make_mut(&mut self.shards[index]);
        let mask = slots.len() - 1;
        let removed = slots[hole].take();
        // Backward shift: each value after the hole, up to the next empty slot, moves into the
        // hole when its probe started at or before the hole, so that no probe stops short.
        let mut next = hole;
        loop {
            next = (next + 1) & mask;
            let Some(slot) = &slots[next] else { break };
            let home = slot.hash as usize & mask;
            // Whether `home` lies cyclically in (hole, next]: then the value stays.
            let stays = if hole <= next {
                hole < home && home <= next
            } else {
                hole < home || home <= next
            };
            if !stays {
                slots[hole] = slots[next].take();
                hole = next;
            }
        }
        self.counts[index] -= 1;
        self.len -= 1;
        removed.map(|slot| slot.value)
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &T> {
        self.shards
            .iter()
            .flat_map(|shard| shard.iter().flatten())
            .map(|slot| &slot.value)
    }
}

/// A value under its host name (or wildcard suffix).
#[derive(Debug, Clone)]
pub(crate) struct HostEntry<V> {
    name: Arc<str>,
    pub(crate) value: V,
    /// Whether the name is its own canonical host name (see `canonical::is_canonical_name`).
    pub(crate) canonical: bool,
}

// Names are hashed as bytes: a request's canonical host is ASCII that need not be checked
// again to be a `str`.
impl<V: Clone> Sharded<HostEntry<V>> {
    /// The entry for `name`.
    #[inline]
    fn entry(&self, name: &[u8]) -> Option<&HostEntry<V>> {
        self.find(self.hash(name), |entry| entry.name.as_bytes() == name)
    }

    fn put(&mut self, name: &str, value: V) {
        let entry = HostEntry {
            name: name.into(),
            value,
            canonical: canonical::is_canonical_name(name),
        };
        self.insert(self.hash(name.as_bytes()), entry, |entry| {
            &*entry.name == name
        });
    }

    fn delete(&mut self, name: &str) {
        self.remove(self.hash(name.as_bytes()), |entry| &*entry.name == name);
    }
}

/// Values by host name: exact names, and wildcards `*.suffix` kept under their suffix.
///
/// Cloning copies one pointer per shard; a change copies only the shard it lands in.
#[derive(Debug, Clone)]
pub(crate) struct HostMap<V> {
    exact: Sharded<HostEntry<V>>,
    wildcard: Sharded<HostEntry<V>>,
}

impl<V: Clone> Default for HostMap<V> {
    fn default() -> Self {
        HostMap::with_capacity(RandomState::default(), 0, 0)
    }
}

impl<V: Clone> HostMap<V> {
    /// A map sized for about `exact` names and `wildcard` suffixes.
    pub(crate) fn with_capacity(hasher: RandomState, exact: usize, wildcard: usize) -> Self {
        HostMap {
            exact: Sharded::new(hasher.clone(), exact),
            wildcard: Sharded::new(hasher, wildcard),
        }
    }

    /// How many shards the exact names are spread over.
    #[cfg(test)]
    pub(crate) fn exact_shards(&self) -> usize {
        self.exact.shards.len()
    }

    /// How many names and wildcards the map holds.
    pub(crate) fn len(&self) -> usize {
        self.exact.len + self.wildcard.len
    }

    /// The value for exactly the name `name`.
    #[inline]
    pub(crate) fn exact(&self, name: &[u8]) -> Option<&V> {
        self.exact.entry(name).map(|e| &e.value)
    }

    /// The value for the wildcard `*.suffix`.
    #[inline]
    pub(crate) fn wildcard(&self, suffix: &[u8]) -> Option<&V> {
        self.wildcard.entry(suffix).map(|e| &e.value)
    }

    /// The value for a canonical host name: its exact entry, else the wildcard covering its
    /// first label, which must not be empty.
    #[inline]
    pub(crate) fn get(&self, host: &[u8]) -> Option<&V> {
        if let Some(v) = self.exact(host) {
            return Some(v);
        }
        match host.iter().position(|&b| b == b'.') {
            Some(dot) if dot > 0 => self.wildcard(host.get(dot + 1..)?),
            _ => None,
        }
    }

    /// [`Self::get`] for a name that has not been checked: `Some` only when the name is
    /// canonical, which it is when it equals an exact name that is its own canonical name, or
    /// is a canonical label followed by such a wildcard suffix. `None` may still be found once
    /// the name is canonicalised.
    #[inline]
    pub(crate) fn get_unchecked_name(&self, name: &[u8]) -> Option<&V> {
        if let Some(entry) = self.exact.entry(name) {
            return entry.canonical.then_some(&entry.value);
        }
        let dot = name.iter().position(|&b| b == b'.')?;
        let entry = self.wildcard.entry(name.get(dot + 1..)?)?;
        (entry.canonical && canonical::is_canonical_label(name.get(..dot)?)).then_some(&entry.value)
    }

    /// The value for a name as a client sends it (an SNI, a `Host`): ASCII case and one
    /// trailing dot are ignored; names longer than a DNS name can be find nothing.
    pub(crate) fn get_any_case(&self, name: &str) -> Option<&V> {
        if self.len() == 0 {
            return None;
        }
        let mut buffer = [0u8; MAX_NAME];
        let name = name.strip_suffix('.').unwrap_or(name);
        if name.is_empty() || name.len() > MAX_NAME {
            return None;
        }
        let lower = &mut buffer[..name.len()];
        lower.copy_from_slice(name.as_bytes());
        lower.make_ascii_lowercase();
        self.get(lower)
    }

    /// Sets the value of a host as a rule writes it: `*.suffix` for a wildcard.
    pub(crate) fn insert(&mut self, host: &str, value: V) {
        match host.strip_prefix("*.") {
            Some(suffix) => self.wildcard.put(suffix, value),
            None => self.exact.put(host, value),
        }
    }

    /// Removes a host as a rule writes it.
    pub(crate) fn remove(&mut self, host: &str) {
        match host.strip_prefix("*.") {
            Some(suffix) => self.wildcard.delete(suffix),
            None => self.exact.delete(host),
        }
    }

    /// Sets the value of the wildcard `*.suffix`.
    pub(crate) fn insert_wildcard(&mut self, suffix: &str, value: V) {
        self.wildcard.put(suffix, value);
    }

    /// Removes the wildcard `*.suffix`.
    pub(crate) fn remove_wildcard(&mut self, suffix: &str) {
        self.wildcard.delete(suffix);
    }

    /// The value of a host as a rule writes it.
    pub(crate) fn get_written(&self, host: &str) -> Option<&V> {
        match host.strip_prefix("*.") {
            Some(suffix) => self.wildcard(suffix.as_bytes()),
            None => self.exact(host.as_bytes()),
        }
    }

    /// Every value, exact names first, in no particular order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.exact
            .values()
            .chain(self.wildcard.values())
            .map(|entry| &entry.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(hosts: &[&str]) -> HostMap<usize> {
        let mut map = HostMap::default();
        for (i, host) in hosts.iter().enumerate() {
            map.insert(host, i);
        }
        map
    }

    proptest::proptest! {
        // Failures print the shrunk input; nothing is written next to the sources.
        #![proptest_config(proptest::prelude::ProptestConfig {
            failure_persistence: None,
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// Inserts, replacements and removals against a `HashMap`, with hashes drawn from a
        /// few values so that probes run long, wrap around the end of a shard, and removals
        /// shift values back over many slots. Every version stays as it was when cloned.
        #[test]
        fn sharded_maps_are_maps_whatever_the_hashes_collide(
            ops in proptest::collection::vec((0u8..3, 0u16..200, 0u64..40), 1..400),
            capacity in 0usize..300,
        ) {
            let mut map: Sharded<(u16, u32)> = Sharded::new(RandomState::default(), capacity);
            let mut model: std::collections::HashMap<u16, u32> = Default::default();
            let mut versions = Vec::new();
            // A key's hash: few distinct values, in both the slot bits and the shard bits.
            let hash = |key: u16, spread: u64| {
                let h = u64::from(key) % (spread + 1);
                h.wrapping_mul(0x9e37_79b9) ^ ((h % 3) << 32) ^ u64::MAX << 60
            };
            let spread = ops[0].2;
            for (step, &(op, key, _)) in ops.iter().enumerate() {
                let h = hash(key, spread);
                match op {
                    0 | 1 => {
                        map.insert(h, (key, step as u32), |e| e.0 == key);
                        model.insert(key, step as u32);
                    }
                    _ => {
                        let removed = map.remove(h, |e| e.0 == key);
                        proptest::prop_assert_eq!(removed.map(|e| e.1), model.remove(&key));
                    }
                }
                proptest::prop_assert_eq!(map.len(), model.len());
                if step % 50 == 0 {
                    versions.push((map.clone(), model.clone()));
                }
            }
            versions.push((map, model));
            for (map, model) in &versions {
                for key in 0..200u16 {
                    let found = map.find(hash(key, spread), |e| e.0 == key).map(|e| e.1);
                    proptest::prop_assert_eq!(found, model.get(&key).copied(), "key {}", key);
                }
                proptest::prop_assert_eq!(map.values().count(), model.len());
                let counted: usize = map.counts.iter().map(|&c| c as usize).sum();
                proptest::prop_assert_eq!(counted, model.len());
            }
        }
    }

    #[test]
    fn sharded_maps_spread_out_as_they_grow_and_share_untouched_shards() {
        type Entry = (String, u32);
        let mut map: Sharded<Entry> = Sharded::new(RandomState::default(), 0);
        assert_eq!(map.shards.len(), 1);
        for i in 0..5_000u32 {
            let key = format!("k{i}");
            let hash = map.hash(key.as_str());
            map.insert(hash, (key.clone(), i), |e| e.0 == key);
        }
        assert_eq!(map.len, 5_000);
        assert!(
            map.shards.len() >= 5_000 / (4 * SHARD_SIZE),
            "{}",
            map.shards.len()
        );
        let before = map.clone();
        for i in (0..5_000u32).step_by(2) {
            let key = format!("k{i}");
            let removed = map.remove(map.hash(key.as_str()), |e| e.0 == key);
            assert_eq!(removed, Some((key, i)));
        }
        assert_eq!(map.len, 2_500);
        assert_eq!(map.remove(map.hash("k0"), |e| e.0 == "k0"), None);
        for i in 0..5_000u32 {
            let key = format!("k{i}");
            let found = map.find(map.hash(key.as_str()), |e| e.0 == key);
            assert_eq!(found.map(|e| e.1), (i % 2 == 1).then_some(i), "{key}");
            let old = before.find(before.hash(key.as_str()), |e| e.0 == key);
            assert_eq!(old.map(|e| e.1), Some(i), "the clone keeps {key}");
        }
        // One change copies one shard; the others stay shared.
        let mut next = map.clone();
        next.remove(next.hash("k1"), |e| e.0 == "k1");
        let shared = next
            .shards
            .iter()
            .zip(&map.shards)
            .filter(|(a, b)| Arc::ptr_eq(a, b))
            .count();
        assert_eq!(shared, map.shards.len() - 1);
    }

    #[test]
    fn exact_names_beat_wildcards_which_cover_one_non_empty_label() {
        let m = map(&["a.example.com", "*.example.com", "*.b.example.com"]);
        assert_eq!(m.get(b"a.example.com"), Some(&0));
        assert_eq!(m.get(b"x.example.com"), Some(&1));
        assert_eq!(m.get(b"x.b.example.com"), Some(&2));
        assert_eq!(m.get(b"example.com"), None);
        assert_eq!(m.get(b".example.com"), None);
        assert_eq!(m.get(b"y.x.example.com"), None);
    }

    #[test]
    fn any_case_lookups_ignore_case_and_one_trailing_dot() {
        let m = map(&["a.example.com", "*.example.com"]);
        assert_eq!(m.get_any_case("A.Example.COM."), Some(&0));
        assert_eq!(m.get_any_case("Z.example.com"), Some(&1));
        assert_eq!(m.get_any_case("a.example.com.."), None);
        assert_eq!(m.get_any_case(&"a".repeat(254)), None);
        assert_eq!(m.get_any_case(""), None);
    }

    #[test]
    fn unchecked_names_are_found_only_when_canonical() {
        let m = map(&["a.example.com", "*.example.com", "123"]);
        assert_eq!(m.get_unchecked_name(b"a.example.com"), Some(&0));
        assert_eq!(m.get_unchecked_name(b"b.example.com"), Some(&1));
        assert_eq!(m.get_unchecked_name(b"B.example.com"), None);
        assert_eq!(m.get_unchecked_name(b"123"), None);
    }

    #[test]
    fn removal_and_replacement_copy_only_what_changes() {
        let mut m = map(&["a.example.com", "*.example.com"]);
        let before = m.clone();
        m.insert("a.example.com", 7);
        m.remove("*.example.com");
        assert_eq!(m.get(b"a.example.com"), Some(&7));
        assert_eq!(m.get(b"b.example.com"), None);
        assert_eq!(before.get(b"a.example.com"), Some(&0));
        assert_eq!(before.get(b"b.example.com"), Some(&1));
        assert_eq!(m.len(), 1);
    }
}
