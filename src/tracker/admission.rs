//! The admission filter in front of Space-Saving: a count-min sketch (in the spirit of the
//! "Cold Filter" of Zhou et al., SIGMOD 2018) that counts the keys the summary does not track.
//!
//! Plain Space-Saving evicts its lightest key on every access to an untracked key. On a
//! workload of mostly distinct keys that is nearly every access, and each eviction rewrites
//! the index, a key buffer and the heap. Here an untracked key only bumps a sketch counter;
//! it replaces the lightest key once its sketch estimate exceeds that key's count. Because a
//! count-min sketch never underestimates (evicted keys leave their count in it), a key that is
//! not admitted has a true count at most the minimum, which is exactly what Space-Saving
//! promises, and an admitted key's error (its estimate less this access) keeps the promise
//! `counted ≤ true ≤ counted + error`.

/// One row of counters, in the summary's (forward-decayed) units. One row is a count-min
/// sketch of depth 1: still never below the truth, with one memory access per untracked key
/// (a second row would halve the collisions but double the cache misses, and the admission
/// factor of the summary already absorbs the noise).
#[derive(Debug, Clone)]
pub(crate) struct Admission {
    counters: Box<[f64]>,
    mask: usize,
}

/// Counters per tracked key: wide enough that cold keys rarely share a counter with a warm one.
const WIDTH_PER_SLOT: usize = 4;

impl Admission {
    /// A sketch for a summary of `capacity` slots.
    pub(crate) fn new(capacity: usize) -> Admission {
        // No slots, no sketch: nothing is ever admitted.
        let width = match capacity {
            0 => 0,
            _ => capacity
                .saturating_mul(WIDTH_PER_SLOT)
                .next_power_of_two()
                .max(64),
        };
        Admission {
            counters: vec![0.0; width].into_boxed_slice(),
            mask: width.saturating_sub(1),
        }
    }

    /// The counter of a (secretly spread) key hash: its top bits, the best mixed.
    #[inline]
    fn cell(&self, spread: u64) -> usize {
        (spread >> 32) as usize & self.mask
    }

    /// Counts `weight` for the key and returns its estimate (never below its true count).
    #[inline]
    pub(crate) fn add(&mut self, spread: u64, weight: f64) -> f64 {
        let cell = self.cell(spread);
        match self.counters.get_mut(cell) {
            Some(c) => {
                *c += weight;
                *c
            }
            None => weight,
        }
    }

    /// Makes the key's estimate at least `count` (an evicted key leaves its count here).
    pub(crate) fn raise(&mut self, spread: u64, count: f64) {
        let cell = self.cell(spread);
        if let Some(c) = self.counters.get_mut(cell) {
            *c = c.max(count);
        }
    }

    /// Multiplies every counter by `factor` (decay renormalisation).
    pub(crate) fn scale(&mut self, factor: f64) {
        for c in self.counters.iter_mut() {
            *c *= factor;
        }
    }

    /// Sets every counter to zero.
    pub(crate) fn clear(&mut self) {
        self.counters.fill(0.0);
    }

    /// Heap bytes held.
    pub(crate) fn memory_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.counters)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_never_undercount() {
        let mut a = Admission::new(16);
        let mut truth = std::collections::HashMap::new();
        for i in 0..100_000u64 {
            let key = (i * 2_654_435_761) % 5000;
            let spread = key.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let t = truth.entry(key).or_insert(0.0);
            *t += 1.0;
            let estimate = a.add(spread, 1.0);
            assert!(estimate >= *t, "key {key}: {estimate} < {t}");
        }
    }

    #[test]
    fn raise_and_scale_and_clear() {
        let mut a = Admission::new(16);
        a.raise(42, 10.0);
        assert_eq!(a.add(42, 1.0), 11.0);
        a.scale(0.5);
        assert_eq!(a.add(42, 0.0), 5.5);
        a.clear();
        assert_eq!(a.add(42, 1.0), 1.0);
        assert_eq!(a.memory_bytes(), 64 * 8);
        assert_eq!(Admission::new(0).memory_bytes(), 0);
    }
}
