//! Open-addressing hash index from a key's hash to the slot that holds the key.
//!
//! One `u64` per entry packs the upper 32 bits of the key hash (the tag) with the slot
//! number, so a probe rejects almost every non-matching entry without touching the slot
//! (and its key bytes) in another cache line. The home bucket is taken from the tag too,
//! which lets backward-shift deletion find where an entry belongs without reading slots.
//! Linear probing with backward-shift deletion keeps probe sequences short without
//! tombstones, so a table that churns forever (every Space-Saving eviction is a delete
//! plus an insert) never degrades and never needs rehashing.
//!
//! Each bucket also holds the admission counter of the keys whose home it is: a count-min
//! sketch of depth one (in the spirit of the "Cold Filter" of Zhou et al., SIGMOD 2018) that
//! counts the keys the summary does not track. An untracked key's lookup and its count then
//! touch one cache line, not two: on a workload of mostly distinct keys that is the filter's
//! main cost. The counter stays with the bucket when entries shift; it belongs to the home
//! position, not to an entry. The bucket counts in every window's units (the detector's and
//! the long windows of `HOTKEY.TOP`), so that a key entering the summary gets an error bound
//! in each: its counters share the cache line.

use super::LONG_WINDOWS;

/// No slot number reaches `u32::MAX` (capacity is clamped far below it), so an all-ones
/// entry can mean "empty".
const EMPTY: u64 = u64::MAX;

/// Maps key hashes to slot numbers. The table is at least four times the number of entries it
/// will ever hold, so probe sequences stay short (a miss, the common case on a workload of
/// many keys, reads 1.4 buckets on average at a load of 1/4, against 2.5 at 1/2), an empty
/// entry always ends them, and each admission counter is shared by fewer untracked keys.
#[derive(Debug, Clone)]
pub(crate) struct Index {
    table: Vec<Bucket>,
    mask: usize,
}

/// An index entry and the admission counters of its position; two to a cache line.
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C, align(32))]
struct Bucket {
    entry: u64,
    /// Weight counted for untracked keys whose home is here, in the summary's units: never
    /// below the true count of any of them (an evicted key leaves its count here).
    admission: f64,
    /// The same in each long window's units.
    long: [f64; LONG_WINDOWS],
}

const EMPTY_BUCKET: Bucket = Bucket {
    entry: EMPTY,
    admission: 0.0,
    long: [0.0; LONG_WINDOWS],
};

fn tag(hash: u64) -> u32 {
    (hash >> 32) as u32
}

fn pack(hash: u64, slot: u32) -> u64 {
    (u64::from(tag(hash)) << 32) | u64::from(slot)
}

fn slot_of(entry: u64) -> u32 {
    entry as u32
}

impl Index {
    /// A table for up to `entries` keys (the table itself is a power of two ≥ 4 × entries).
    pub(crate) fn with_capacity(entries: usize) -> Index {
        let len = entries.saturating_mul(4).max(4).next_power_of_two();
        Index {
            table: vec![EMPTY_BUCKET; len],
            mask: len - 1,
        }
    }

    fn home(&self, tag: u32) -> usize {
        tag as usize & self.mask
    }

    /// The table position and slot of the first entry with this hash's tag for which
    /// `is_match(slot)` holds.
    #[inline]
    pub(crate) fn find(
        &self,
        hash: u64,
        mut is_match: impl FnMut(u32) -> bool,
    ) -> Option<(usize, u32)> {
        let tag = tag(hash);
        let table = &self.table[..];
        // The mask taken from the slice itself: the optimiser then knows every masked position
        // is in bounds, and the probe has no bounds check per step.
        let mask = table.len().wrapping_sub(1);
        let mut pos = tag as usize & mask;
        // Bounded by the table length so that a broken invariant cannot hang the server.
        for _ in 0..table.len() {
            let entry = table[pos & mask].entry;
            if entry == EMPTY {
                return None;
            }
            if (entry >> 32) as u32 == tag && is_match(slot_of(entry)) {
                return Some((pos & mask, slot_of(entry)));
            }
            pos = (pos + 1) & mask;
        }
        None
    }

    /// Adds `slot` under `hash`. The caller makes sure the key is not already present.
    /// Returns false only if the table is full, which the sizing rules out.
    pub(crate) fn insert(&mut self, hash: u64, slot: u32) -> bool {
        let mut pos = self.home(tag(hash));
        for _ in 0..self.table.len() {
            if self.table[pos].entry == EMPTY {
                self.table[pos].entry = pack(hash, slot);
                return true;
            }
            pos = (pos + 1) & self.mask;
        }
        false
    }

    /// Removes the entry at table position `pos` (as returned by [`Index::find`]) and
    /// shifts later entries of the probe run back so that no lookup ever stops early.
    pub(crate) fn remove_at(&mut self, pos: usize) {
        let mut hole = pos & self.mask;
        let mut next = hole;
        for _ in 0..self.table.len() {
            next = (next + 1) & self.mask;
            let entry = self.table[next].entry;
            if entry == EMPTY {
                break;
            }
            // The entry may fill the hole only if the hole lies on its probe path, that is
            // between its home and where it sits now (cyclically).
            let home = self.home((entry >> 32) as u32);
            let from_home = next.wrapping_sub(home) & self.mask;
            let from_hole = next.wrapping_sub(hole) & self.mask;
            if from_home >= from_hole {
                self.table[hole].entry = entry;
                hole = next;
            }
        }
        self.table[hole].entry = EMPTY;
    }

    /// Counts `weight` (and `long`, the same access in each long window's units) for an
    /// untracked key and returns its estimates, never below its true counts (a count-min
    /// sketch never underestimates).
    #[inline]
    pub(crate) fn admit(
        &mut self,
        hash: u64,
        weight: f64,
        long: [f64; LONG_WINDOWS],
    ) -> (f64, [f64; LONG_WINDOWS]) {
        let pos = self.home(tag(hash));
        match self.table.get_mut(pos) {
            Some(b) => {
                b.admission += weight;
                for (counter, w) in b.long.iter_mut().zip(long) {
                    *counter += w;
                }
                (b.admission, b.long)
            }
            None => (weight, long),
        }
    }

    /// Makes the estimates of the key with `hash` at least `count` and `long` (an evicted key
    /// leaves its counts behind, so that its estimates stay upper bounds when it comes back).
    pub(crate) fn raise(&mut self, hash: u64, count: f64, long: [f64; LONG_WINDOWS]) {
        let pos = self.home(tag(hash));
        if let Some(b) = self.table.get_mut(pos) {
            b.admission = b.admission.max(count);
            for (counter, c) in b.long.iter_mut().zip(long) {
                *counter = counter.max(c);
            }
        }
    }

    /// Multiplies every admission counter in the detector's units by `factor` (decay
    /// renormalisation).
    pub(crate) fn scale(&mut self, factor: f64) {
        for b in &mut self.table {
            b.admission *= factor;
        }
    }

    /// Multiplies every admission counter of long window `window` by `factor`.
    pub(crate) fn scale_long(&mut self, window: usize, factor: f64) {
        for b in &mut self.table {
            if let Some(counter) = b.long.get_mut(window) {
                *counter *= factor;
            }
        }
    }

    /// Forgets every entry and count, keeping the table's memory.
    pub(crate) fn clear(&mut self) {
        self.table.fill(EMPTY_BUCKET);
    }

    /// Heap bytes held by the table.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.table.capacity() * std::mem::size_of::<Bucket>()
    }

    #[cfg(test)]
    pub(crate) fn table_len(&self) -> usize {
        self.table.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use std::collections::HashMap;

    /// A hash whose tag is `tag` and whose low bits are `low`.
    fn h(tag: u32, low: u32) -> u64 {
        (u64::from(tag) << 32) | u64::from(low)
    }

    fn lookup(index: &Index, hash: u64, slot: u32) -> Option<usize> {
        index.find(hash, |s| s == slot).map(|(pos, _)| pos)
    }

    #[test]
    fn sizes_to_a_power_of_two_at_least_four_times_the_entries() {
        assert_eq!(Index::with_capacity(0).table_len(), 4);
        assert_eq!(Index::with_capacity(1).table_len(), 4);
        assert_eq!(Index::with_capacity(3).table_len(), 16);
        assert_eq!(Index::with_capacity(4096).table_len(), 16384);
    }

    #[test]
    fn finds_inserted_and_misses_absent() {
        let mut index = Index::with_capacity(8);
        assert!(index.insert(h(5, 0), 1));
        assert!(index.insert(h(9, 0), 2));
        assert_eq!(index.find(h(5, 0), |_| true), Some((5, 1)));
        assert_eq!(index.find(h(9, 0), |_| true).map(|(_, s)| s), Some(2));
        assert_eq!(index.find(h(6, 0), |_| true), None);
        // Same tag, but the predicate (the key comparison) says no.
        assert_eq!(index.find(h(5, 0), |_| false), None);
    }

    #[test]
    fn colliding_tags_probe_linearly_and_wrap_around() {
        let mut index = Index::with_capacity(2); // 8 buckets
        // All of these start at bucket 7 and wrap to 0, 1, 2.
        for slot in 0..4 {
            assert!(index.insert(h(7, slot), slot));
        }
        for slot in 0..4 {
            assert_eq!(
                lookup(&index, h(7, slot), slot),
                Some((7 + slot as usize) & 7)
            );
        }
        // Deleting the first of the run must shift the rest back, across the wrap.
        let pos = lookup(&index, h(7, 0), 0).unwrap();
        index.remove_at(pos);
        assert_eq!(lookup(&index, h(7, 0), 0), None);
        for slot in 1..4 {
            assert_eq!(
                lookup(&index, h(7, slot), slot),
                Some((6 + slot as usize) & 7)
            );
        }
    }

    #[test]
    fn backward_shift_keeps_entries_at_their_home() {
        let mut index = Index::with_capacity(2); // 8 buckets
        index.insert(h(2, 0), 0); // bucket 2
        index.insert(h(2, 1), 1); // bucket 3
        index.insert(h(3, 0), 2); // home 3, lands in 4
        index.insert(h(5, 0), 3); // home 5, lands in 5
        let pos = lookup(&index, h(2, 0), 0).unwrap();
        index.remove_at(pos);
        assert_eq!(lookup(&index, h(2, 1), 1), Some(2));
        assert_eq!(lookup(&index, h(3, 0), 2), Some(3));
        // Sits at its home: must not move into 4.
        assert_eq!(lookup(&index, h(5, 0), 3), Some(5));
    }

    #[test]
    fn clear_forgets_everything() {
        let mut index = Index::with_capacity(2);
        index.insert(h(1, 0), 0);
        index.clear();
        assert_eq!(index.find(h(1, 0), |_| true), None);
        assert_eq!(index.memory_bytes(), 8 * 32);
    }

    #[test]
    fn admission_counts_per_home_and_never_undercounts() {
        let mut index = Index::with_capacity(8); // 32 buckets: many keys share a counter
        let mut truth: HashMap<u64, f64> = HashMap::new();
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..10_000 {
            let hash = h(rng.random_range(0..500), 0);
            let t = truth.entry(hash).or_default();
            *t += 1.0;
            let (estimate, long) = index.admit(hash, 1.0, [2.0, 3.0]);
            assert!(estimate >= *t);
            assert!(long[0] >= 2.0 * *t && long[1] >= 3.0 * *t);
        }
        index.raise(h(1, 0), 1e9, [2e9, 3e9]);
        assert_eq!(index.admit(h(1, 0), 0.0, [0.0; 2]), (1e9, [2e9, 3e9]));
        index.scale(0.5);
        assert_eq!(index.admit(h(1, 0), 0.0, [0.0; 2]), (5e8, [2e9, 3e9]));
        index.scale_long(1, 0.25);
        index.scale_long(LONG_WINDOWS, 0.0); // no such window: nothing happens
        assert_eq!(index.admit(h(1, 0), 0.0, [0.0; 2]), (5e8, [2e9, 7.5e8]));
        // Entries shifting around do not move counters: they belong to positions.
        index.insert(h(1, 0), 7);
        index.remove_at(lookup(&index, h(1, 0), 7).unwrap());
        assert_eq!(index.admit(h(1, 0), 0.0, [0.0; 2]), (5e8, [2e9, 7.5e8]));
        index.clear();
        assert_eq!(index.admit(h(1, 0), 2.0, [1.0, 1.0]), (2.0, [1.0, 1.0]));
    }

    #[test]
    fn two_buckets_to_a_cache_line() {
        assert_eq!(std::mem::size_of::<Bucket>(), 32);
    }

    #[test]
    fn random_operations_match_a_hash_map() {
        let mut rng = StdRng::seed_from_u64(7);
        let capacity = 64;
        let mut index = Index::with_capacity(capacity);
        let mut model: HashMap<u32, u64> = HashMap::new(); // slot -> hash
        for _ in 0..20_000 {
            let slot = rng.random_range(0..capacity as u32);
            if let Some(hash) = model.remove(&slot) {
                let pos = lookup(&index, hash, slot).expect("present");
                index.remove_at(pos);
            } else {
                // Few distinct tags so that runs collide and wrap often.
                let hash = h(rng.random_range(0..40), rng.random());
                assert!(index.insert(hash, slot));
                model.insert(slot, hash);
            }
            if rng.random_range(0..100) == 0 {
                for (&slot, &hash) in &model {
                    assert!(lookup(&index, hash, slot).is_some());
                }
            }
        }
        for (&slot, &hash) in &model {
            assert!(lookup(&index, hash, slot).is_some());
        }
    }
}
