//! Weighted Space-Saving (Metwally, Agrawal, El Abbadi, "Efficient computation of frequent
//! and top-k elements in data streams", ICDT 2005) over a fixed set of slots.
//!
//! Every tracked key has a slot. Plain Space-Saving gives a new key the slot of the lightest
//! one on arrival; on a workload of mostly distinct keys that is an eviction on nearly every
//! access, each rewriting the index, a key buffer and the heap. Here a new key first counts
//! in the admission counter of its index bucket (a count-min sketch, never below its true
//! count) and takes the lightest key's slot once its estimate is [`ADMIT_ABOVE_MIN`] times
//! that key's count; its error is the estimate less this access, and the evicted key leaves
//! its count in the sketch. This keeps, for every tracked key, `counted ≤ true ≤ counted +
//! error`, where counted is what arrived since the key took its slot, and every key whose
//! true count exceeds twice the smallest count is tracked. Counts are plain f64 weights:
//! time decay is applied by the caller through the weights (forward decay) and
//! [`SpaceSaving::scale`].

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use super::heap::MinHeap;
use super::index::Index;
use super::{Access, LONG_WINDOWS};

/// An untracked key replaces the lightest one only when its estimate is this many times the
/// lightest count. With 1 (plain Space-Saving) a stream of many equally cold keys keeps
/// replacing keys whose counts sit at the sketch's noise level, an eviction per access; with 2
/// a tracked key must first decay to half that level, so evictions happen at most about once
/// per slot per half-life, while a key more than twice the lightest is still always admitted.
pub(crate) const ADMIT_ABOVE_MIN: f64 = 2.0;

/// One tracked key. 64 bytes, one cache line: the hot-path fields sit together.
#[derive(Debug, Clone, Default)]
pub(crate) struct Slot {
    pub(crate) hash: u64,
    pub(crate) key: Vec<u8>,
    /// Weight of reads counted since the key took this slot.
    pub(crate) reads: f64,
    /// Weight of writes counted since the key took this slot.
    pub(crate) writes: f64,
    /// Count inherited from the evicted key: the most by which the total overestimates.
    pub(crate) error: f64,
    pub(crate) db: u32,
}

impl Slot {
    fn add(&mut self, access: Access, weight: f64) {
        match access {
            Access::Read => self.reads += weight,
            Access::Write => self.writes += weight,
        }
    }
}

/// One access on its way into the summary.
#[derive(Clone, Copy)]
struct Arrival<'a> {
    db: u32,
    key: &'a [u8],
    hash: u64,
    access: Access,
    weight: f64,
    long: [f64; LONG_WINDOWS],
}

/// A tracked key's counts in the long windows of `HOTKEY.TOP`, each in its window's units, with
/// the same meaning as the slot's (counted since the key took the slot; error inherited from
/// the admission counters). Kept beside the slots, not in them, so that a slot stays one cache
/// line for the lookup's key comparison.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct LongCounts {
    pub(crate) reads: [f64; LONG_WINDOWS],
    pub(crate) writes: [f64; LONG_WINDOWS],
    pub(crate) error: [f64; LONG_WINDOWS],
}

impl LongCounts {
    #[inline]
    fn add(&mut self, access: Access, long: [f64; LONG_WINDOWS]) {
        let counts = match access {
            Access::Read => &mut self.reads,
            Access::Write => &mut self.writes,
        };
        for (count, w) in counts.iter_mut().zip(long) {
            *count += w;
        }
    }

    /// Each window's upper bound on the key's count: counted plus error.
    fn bounds(&self) -> [f64; LONG_WINDOWS] {
        std::array::from_fn(|w| self.reads[w] + self.writes[w] + self.error[w])
    }
}

/// The summary: slots, the index from key hash to slot, and the min-heap of slots.
#[derive(Debug, Clone)]
pub(crate) struct SpaceSaving {
    slots: Vec<Slot>,
    /// The long windows' counts of each slot, by slot number.
    long: Vec<LongCounts>,
    index: Index,
    heap: MinHeap,
    capacity: usize,
    /// Sum of the capacities of all key buffers, kept so `memory_bytes` is O(1).
    key_bytes: usize,
    /// Keys that lost their slot to a heavier one, since creation.
    evictions: u64,
    /// Per-process random key of the index position (see [`SpaceSaving::spread`]).
    secret: u64,
}

impl SpaceSaving {
    /// An empty summary of `capacity` slots with all fixed arrays allocated up front.
    pub(crate) fn new(capacity: usize) -> SpaceSaving {
        SpaceSaving {
            slots: Vec::with_capacity(capacity),
            long: Vec::with_capacity(capacity),
            index: Index::with_capacity(capacity),
            heap: MinHeap::with_capacity(capacity),
            capacity,
            key_bytes: 0,
            evictions: 0,
            secret: RandomState::new().hash_one(0x5eed_u64),
        }
    }

    /// Keys that lost their slot to a heavier one.
    pub(crate) fn evictions(&self) -> u64 {
        self.evictions
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Where a key hash goes in the index. Clients choose key names and `key_hash` has a
    /// public seed, so without a secret anyone could pile keys onto one probe run and make
    /// every access walk it; keyed by a random secret, positions cannot be aimed at.
    #[inline]
    fn spread(&self, hash: u64) -> u64 {
        (hash ^ self.secret).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// The tracked keys, each with its total count (reads + writes + error).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Slot, f64)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .map(|(i, slot)| (slot, self.heap.count(i as u32)))
    }

    /// The tracked keys with their counts in the long windows.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&Slot, &LongCounts)> + '_ {
        self.slots.iter().zip(&self.long)
    }

    /// The slot of a key, if tracked.
    pub(crate) fn get(&self, db: u32, key: &[u8], hash: u64) -> Option<&Slot> {
        self.find(db, key, hash)
            .and_then(|slot| self.slots.get(slot as usize))
    }

    #[inline]
    fn find(&self, db: u32, key: &[u8], hash: u64) -> Option<u32> {
        let slots = &self.slots;
        self.index
            .find(self.spread(hash), |slot| {
                slots
                    .get(slot as usize)
                    .is_some_and(|s| s.hash == hash && s.db == db && s.key == key)
            })
            .map(|(_, slot)| slot)
    }

    /// Counts `weight` (finite, > 0) for the key, and `long`, the same access in each long
    /// window's units. Admission and eviction go by `weight` (the detector's units) only. No
    /// allocation once every slot has held a key at least as long as this one.
    #[inline]
    pub(crate) fn add(
        &mut self,
        db: u32,
        key: &[u8],
        hash: u64,
        access: Access,
        weight: f64,
        long: [f64; LONG_WINDOWS],
    ) {
        if let Some(slot) = self.find(db, key, hash) {
            if let (Some(s), Some(l)) = (
                self.slots.get_mut(slot as usize),
                self.long.get_mut(slot as usize),
            ) {
                s.add(access, weight);
                l.add(access, long);
                self.heap.increase(slot, weight);
            }
            return;
        }
        // The arrival is only put together for the rare insert or eviction.
        let new = || Arrival {
            db,
            key,
            hash,
            access,
            weight,
            long,
        };
        if self.slots.len() < self.capacity {
            self.insert_new(new());
            return;
        }
        let Some((_, min)) = self.heap.min() else {
            return;
        };
        let (estimate, long_estimate) = self.index.admit(self.spread(hash), weight, long);
        if estimate > ADMIT_ABOVE_MIN * min {
            self.replace_min(new(), estimate, long_estimate);
        }
    }

    #[cold]
    fn insert_new(&mut self, new: Arrival) {
        let Arrival {
            db,
            key,
            hash,
            access,
            weight,
            long,
        } = new;
        let slot = self.slots.len() as u32;
        let mut s = Slot {
            hash,
            key: key.to_vec(),
            db,
            ..Slot::default()
        };
        s.add(access, weight);
        self.key_bytes += s.key.capacity();
        self.slots.push(s);
        let mut l = LongCounts::default();
        l.add(access, long);
        self.long.push(l);
        self.index.insert(self.spread(hash), slot);
        self.heap.push(slot, weight);
    }

    /// Gives the lightest key's slot to a key whose sketch `estimate` (this access included)
    /// is above its count; `long_estimate` is the sketch's estimate in the long windows. The
    /// evicted key leaves its counts in the sketch.
    #[cold]
    fn replace_min(&mut self, new: Arrival, estimate: f64, long_estimate: [f64; LONG_WINDOWS]) {
        let Arrival {
            db,
            key,
            hash,
            access,
            weight,
            long,
        } = new;
        let Some((slot, min)) = self.heap.min() else {
            return;
        };
        let Some(old_hash) = self.slots.get(slot as usize).map(|s| s.hash) else {
            return;
        };
        let Some(l) = self.long.get_mut(slot as usize) else {
            return;
        };
        let old_long = l.bounds();
        *l = LongCounts {
            error: std::array::from_fn(|w| long_estimate[w] - long[w]),
            ..LongCounts::default()
        };
        l.add(access, long);
        self.index.raise(self.spread(old_hash), min, old_long);
        if let Some((pos, _)) = self
            .index
            .find(self.spread(old_hash), |found| found == slot)
        {
            self.index.remove_at(pos);
        }
        self.index.insert(self.spread(hash), slot);
        let Some(s) = self.slots.get_mut(slot as usize) else {
            return;
        };
        let held = s.key.capacity();
        s.key.clear();
        s.key.extend_from_slice(key);
        self.key_bytes += s.key.capacity().saturating_sub(held);
        s.hash = hash;
        s.db = db;
        s.reads = 0.0;
        s.writes = 0.0;
        s.error = estimate - weight;
        s.add(access, weight);
        self.heap.set_min_count(estimate);
        self.evictions += 1;
    }

    /// Multiplies every count by `factor` (> 0), keeping the order (decay renormalisation).
    pub(crate) fn scale(&mut self, factor: f64) {
        for s in &mut self.slots {
            s.reads *= factor;
            s.writes *= factor;
            s.error *= factor;
        }
        self.heap.scale(factor);
        self.index.scale(factor);
    }

    /// Multiplies every count of long window `window` by `factor` (> 0): that window's
    /// renormalisation. Admission goes by the detector's counts, so no order changes.
    pub(crate) fn scale_long(&mut self, window: usize, factor: f64) {
        if window >= LONG_WINDOWS {
            return;
        }
        for l in &mut self.long {
            l.reads[window] *= factor;
            l.writes[window] *= factor;
            l.error[window] *= factor;
        }
        self.index.scale_long(window, factor);
    }

    /// Rebuilds the summary with `capacity` slots, keeping the keys with the largest totals.
    pub(crate) fn resize(&mut self, capacity: usize) {
        let mut by_count: Vec<(u32, f64)> = self.heap.iter().collect();
        by_count.sort_unstable_by(|a, b| b.1.total_cmp(&a.1));
        by_count.truncate(capacity);

        let mut old = std::mem::take(&mut self.slots);
        let old_long = std::mem::take(&mut self.long);
        let mut slots = Vec::with_capacity(capacity);
        let mut long = Vec::with_capacity(capacity);
        let mut counts = Vec::with_capacity(by_count.len());
        let mut index = Index::with_capacity(capacity);
        for &(slot, count) in &by_count {
            if let Some(s) = old.get_mut(slot as usize) {
                let s = std::mem::take(s);
                index.insert(self.spread(s.hash), slots.len() as u32);
                slots.push(s);
                long.push(old_long.get(slot as usize).copied().unwrap_or_default());
                counts.push(count);
            }
        }
        drop(old);
        self.key_bytes = slots.iter().map(|s| s.key.capacity()).sum();
        self.slots = slots;
        self.long = long;
        self.index = index;
        self.heap = MinHeap::from_counts(capacity, &counts);
        // The new index's admission counters start at zero: error bounds hold again for what
        // is counted from now on.
        self.capacity = capacity;
    }

    /// Forgets every key. The fixed arrays are kept; key buffers are freed.
    pub(crate) fn clear(&mut self) {
        self.slots.clear();
        self.long.clear();
        self.index.clear();
        self.heap.clear();
        self.key_bytes = 0;
    }

    /// Heap bytes held: fixed arrays plus the capacity of every key buffer.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>()
            + self.long.capacity() * std::mem::size_of::<LongCounts>()
            + self.index.memory_bytes()
            + self.heap.memory_bytes()
            + self.key_bytes
    }

    /// Checks every internal invariant (tests only).
    #[cfg(test)]
    pub(crate) fn assert_valid(&self) {
        self.heap.assert_valid();
        assert_eq!(self.heap.len(), self.slots.len());
        assert_eq!(self.long.len(), self.slots.len());
        for l in &self.long {
            for w in 0..LONG_WINDOWS {
                assert!(l.reads[w] >= 0.0 && l.writes[w] >= 0.0 && l.error[w] >= 0.0);
            }
        }
        assert!(self.slots.len() <= self.capacity);
        for (i, s) in self.slots.iter().enumerate() {
            assert_eq!(self.find(s.db, &s.key, s.hash), Some(i as u32));
            let total = s.reads + s.writes + s.error;
            let count = self.heap.count(i as u32);
            assert!(
                (total - count).abs() <= 1e-9 * count.max(1.0),
                "{total} {count}"
            );
        }
        let key_bytes: usize = self.slots.iter().map(|s| s.key.capacity()).sum();
        assert_eq!(key_bytes, self.key_bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracker::key_hash;

    fn add(ss: &mut SpaceSaving, key: &str, access: Access, weight: f64) {
        ss.add(
            0,
            key.as_bytes(),
            key_hash(0, key.as_bytes()),
            access,
            weight,
            [2.0 * weight, 3.0 * weight],
        );
    }

    fn slot<'a>(ss: &'a SpaceSaving, key: &str) -> Option<&'a Slot> {
        ss.get(0, key.as_bytes(), key_hash(0, key.as_bytes()))
    }

    fn long<'a>(ss: &'a SpaceSaving, key: &str) -> &'a LongCounts {
        ss.entries()
            .find(|(s, _)| s.key == key.as_bytes())
            .map(|(_, l)| l)
            .unwrap()
    }

    #[test]
    fn slot_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Slot>(), 64);
    }

    /// A summary whose positions do not depend on the process's random secret, so the sketch
    /// cells of the few keys of a test are fixed (and distinct for the names used here).
    fn fixed(capacity: usize) -> SpaceSaving {
        let mut ss = SpaceSaving::new(capacity);
        ss.secret = 0;
        ss
    }

    #[test]
    fn an_untracked_key_replaces_the_minimum_once_its_estimate_is_twice_it() {
        let mut ss = fixed(2);
        add(&mut ss, "a", Access::Read, 6.0);
        add(&mut ss, "b", Access::Write, 2.0);
        // c's estimates (1, then 3) are not above twice the minimum (b, 2): only the sketch
        // counts it.
        add(&mut ss, "c", Access::Read, 1.0);
        add(&mut ss, "c", Access::Read, 2.0);
        assert!(slot(&ss, "c").is_none());
        add(&mut ss, "c", Access::Read, 2.0);
        ss.assert_valid();
        assert!(slot(&ss, "b").is_none());
        assert_eq!(ss.evictions(), 1);
        // Counted: this access; error: the rest of its estimate (the earlier accesses).
        let c = slot(&ss, "c").unwrap();
        assert_eq!((c.reads, c.writes, c.error), (2.0, 0.0, 3.0));
        // The long windows (weights 2× and 3× the detector's here) get the same split, each in
        // its own units, though admission went by the detector's counts alone.
        let l = long(&ss, "c");
        assert_eq!(
            (l.reads, l.writes, l.error),
            ([4.0, 6.0], [0.0; 2], [6.0, 9.0])
        );
        // b left its count (2) in the sketch: 10 more make at least 12, above twice c's 5. (Its
        // counter may be shared with c's in so small an index: then the error is larger.)
        add(&mut ss, "b", Access::Write, 10.0);
        let b = slot(&ss, "b").unwrap();
        assert_eq!((b.reads, b.writes), (0.0, 10.0));
        assert!(b.error >= 2.0, "{}", b.error);
        let l = long(&ss, "b");
        assert_eq!(l.writes, [20.0, 30.0]);
        assert!(l.error[0] >= 4.0 && l.error[1] >= 6.0, "{:?}", l.error);
        assert!(slot(&ss, "c").is_none());
        assert_eq!(slot(&ss, "a").unwrap().reads, 6.0);
        ss.assert_valid();
    }

    #[test]
    fn keys_with_one_hash_are_still_told_apart() {
        // As if a client had found full hash collisions: one probe run holds them all.
        let mut ss = SpaceSaving::new(8);
        for round in 1..=3 {
            for i in 0..12u8 {
                let w = f64::from(i) + 1.0;
                ss.add(0, &[i], 42, Access::Read, w, [w; LONG_WINDOWS]);
                ss.assert_valid();
            }
            assert_eq!(ss.len(), 8, "round {round}");
        }
        // The heaviest key (3 × 12) is tracked, within the Space-Saving bounds.
        let heaviest = ss.get(0, &[11], 42).unwrap();
        assert!(heaviest.reads <= 36.0 && 36.0 <= heaviest.reads + heaviest.error);
        // Nothing tracked is counted above what it had.
        for (slot, _) in ss.iter() {
            assert!(slot.reads <= 3.0 * (f64::from(slot.key[0]) + 1.0));
        }
    }

    #[test]
    fn zero_capacity_tracks_nothing() {
        let mut ss = SpaceSaving::new(0);
        add(&mut ss, "a", Access::Read, 1.0);
        assert_eq!(ss.len(), 0);
        ss.assert_valid();
    }

    #[test]
    fn key_buffers_are_reused() {
        let mut ss = SpaceSaving::new(1);
        add(&mut ss, "a-rather-long-key", Access::Read, 1.0);
        let held = ss.memory_bytes();
        add(&mut ss, "b", Access::Read, 1.0);
        add(&mut ss, "c-rather-long-key", Access::Read, 1.0);
        assert_eq!(ss.memory_bytes(), held);
        ss.assert_valid();
    }

    #[test]
    fn scale_multiplies_every_count() {
        let mut ss = fixed(1);
        add(&mut ss, "a", Access::Read, 4.0);
        add(&mut ss, "b", Access::Write, 5.0);
        add(&mut ss, "b", Access::Write, 4.0);
        ss.scale(0.25);
        let b = slot(&ss, "b").unwrap();
        assert_eq!((b.reads, b.writes, b.error), (0.0, 1.0, 1.25));
        // Each long window scales on its own.
        ss.scale_long(1, 0.5);
        let l = long(&ss, "b");
        assert_eq!((l.writes, l.error), ([8.0, 6.0], [10.0, 7.5]));
        // The sketch scaled too: a (4 → 1) needs more than 3.5 to pass twice b's 2.25.
        add(&mut ss, "a", Access::Read, 3.0);
        assert!(slot(&ss, "a").is_none());
        add(&mut ss, "a", Access::Read, 1.0);
        assert!(slot(&ss, "a").is_some());
        ss.assert_valid();
    }

    #[test]
    fn resize_to_zero_and_back() {
        let mut ss = SpaceSaving::new(3);
        for k in ["a", "b", "c"] {
            add(&mut ss, k, Access::Read, 1.0);
        }
        ss.resize(0);
        assert_eq!(ss.len(), 0);
        add(&mut ss, "a", Access::Read, 1.0);
        assert_eq!(ss.len(), 0);
        ss.resize(2);
        add(&mut ss, "a", Access::Read, 1.0);
        add(&mut ss, "b", Access::Read, 1.0);
        assert_eq!(ss.len(), 2);
        ss.assert_valid();
    }
}
