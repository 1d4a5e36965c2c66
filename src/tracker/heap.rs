//! Indexed binary min-heap of slots ordered by their Space-Saving count.
//!
//! The count lives in the heap entry itself, so sifting compares neighbouring array
//! elements instead of chasing slot numbers. `pos` maps a slot back to its heap position,
//! so the count of any slot can be raised in O(log n); a raised count only ever moves
//! down, and a hot key already sits near the leaves, so a hit is usually O(1).

/// One heap element: a slot and its total count (reads + writes + inherited error).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Entry {
    count: f64,
    slot: u32,
}

/// Min-heap over slot numbers `0..len`, with the position of every slot.
#[derive(Debug, Clone)]
pub(crate) struct MinHeap {
    entries: Vec<Entry>,
    /// `pos[slot]` is the index of `slot` in `entries`.
    pos: Vec<u32>,
}

impl MinHeap {
    /// An empty heap for slots `0..capacity`, fully preallocated.
    pub(crate) fn with_capacity(capacity: usize) -> MinHeap {
        MinHeap {
            entries: Vec::with_capacity(capacity),
            pos: vec![0; capacity],
        }
    }

    /// A heap for slots `0..counts.len()` with the given counts, in O(n).
    pub(crate) fn from_counts(capacity: usize, counts: &[f64]) -> MinHeap {
        let mut heap = MinHeap::with_capacity(capacity.max(counts.len()));
        heap.entries
            .extend(counts.iter().enumerate().map(|(slot, &count)| Entry {
                count,
                slot: slot as u32,
            }));
        for (i, entry) in heap.entries.iter().enumerate() {
            heap.pos[entry.slot as usize] = i as u32;
        }
        for i in (0..heap.entries.len() / 2).rev() {
            heap.sift_down(i);
        }
        heap
    }

    /// The number of slots in the heap.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The slot with the smallest count, and that count.
    #[inline]
    pub(crate) fn min(&self) -> Option<(u32, f64)> {
        self.entries.first().map(|e| (e.slot, e.count))
    }

    /// The count of `slot` (0 for a slot not in the heap).
    #[inline]
    pub(crate) fn count(&self, slot: u32) -> f64 {
        self.pos
            .get(slot as usize)
            .and_then(|&i| self.entries.get(i as usize))
            .filter(|e| e.slot == slot)
            .map_or(0.0, |e| e.count)
    }

    /// Adds a slot with `count`. Slots are pushed densely: the caller passes `len()`.
    pub(crate) fn push(&mut self, slot: u32, count: f64) {
        let Some(pos) = self.pos.get_mut(slot as usize) else {
            return;
        };
        *pos = self.entries.len() as u32;
        self.entries.push(Entry { count, slot });
        self.sift_up(self.entries.len() - 1);
    }

    /// Raises the count of `slot` by `delta` (≥ 0) and restores the heap order.
    #[inline]
    pub(crate) fn increase(&mut self, slot: u32, delta: f64) {
        let Some(&i) = self.pos.get(slot as usize) else {
            return;
        };
        let i = i as usize;
        if let Some(entry) = self.entries.get_mut(i) {
            entry.count += delta;
            self.sift_down(i);
        }
    }

    /// Sets the count of the minimum (root) slot to `count` (≥ its old count).
    #[inline]
    pub(crate) fn set_min_count(&mut self, count: f64) {
        if let Some(root) = self.entries.first_mut() {
            root.count = count;
            self.sift_down(0);
        }
    }

    /// Multiplies every count by `factor` (> 0). A positive factor is monotone, so the
    /// order holds without re-sifting.
    pub(crate) fn scale(&mut self, factor: f64) {
        for entry in &mut self.entries {
            entry.count *= factor;
        }
    }

    /// Empties the heap, keeping its memory.
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }

    /// `(slot, count)` of every slot, in heap order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, f64)> + '_ {
        self.entries.iter().map(|e| (e.slot, e.count))
    }

    /// Heap bytes held.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.pos.capacity() * std::mem::size_of::<u32>()
    }

    #[inline]
    fn sift_down(&mut self, mut i: usize) {
        let len = self.entries.len();
        let Some(&moving) = self.entries.get(i) else {
            return;
        };
        loop {
            let left = 2 * i + 1;
            if left >= len {
                break;
            }
            let right = left + 1;
            let right_count = self.entries.get(right).map_or(f64::INFINITY, |e| e.count);
            // Which child is smaller is a coin toss, so it is picked without a branch.
            let child = left + usize::from(right_count < self.entries[left].count);
            let smaller = self.entries[child];
            if smaller.count < moving.count {
                self.entries[i] = smaller;
                self.pos[smaller.slot as usize] = i as u32;
                i = child;
            } else {
                break;
            }
        }
        self.entries[i] = moving;
        self.pos[moving.slot as usize] = i as u32;
    }

    fn sift_up(&mut self, mut i: usize) {
        let Some(&moving) = self.entries.get(i) else {
            return;
        };
        while i > 0 {
            let parent = (i - 1) / 2;
            let above = self.entries[parent];
            if moving.count < above.count {
                self.entries[i] = above;
                self.pos[above.slot as usize] = i as u32;
                i = parent;
            } else {
                break;
            }
        }
        self.entries[i] = moving;
        self.pos[moving.slot as usize] = i as u32;
    }

    /// Checks the heap order and the position map (tests only).
    #[cfg(test)]
    pub(crate) fn assert_valid(&self) {
        for (i, e) in self.entries.iter().enumerate() {
            assert_eq!(
                self.pos[e.slot as usize] as usize, i,
                "pos of slot {}",
                e.slot
            );
            if i > 0 {
                let parent = self.entries[(i - 1) / 2];
                assert!(parent.count <= e.count, "heap order at {i}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    #[test]
    fn min_follows_pushes_and_increases() {
        let mut heap = MinHeap::with_capacity(4);
        assert_eq!(heap.min(), None);
        heap.push(0, 5.0);
        heap.push(1, 3.0);
        heap.push(2, 4.0);
        assert_eq!(heap.min(), Some((1, 3.0)));
        heap.increase(1, 10.0);
        assert_eq!(heap.min(), Some((2, 4.0)));
        assert_eq!(heap.count(1), 13.0);
        heap.set_min_count(6.0);
        assert_eq!(heap.min(), Some((0, 5.0)));
        assert_eq!(heap.count(2), 6.0);
        heap.assert_valid();
    }

    #[test]
    fn out_of_range_slots_are_ignored() {
        let mut heap = MinHeap::with_capacity(1);
        heap.push(5, 1.0);
        heap.increase(5, 1.0);
        assert_eq!(heap.len(), 0);
        assert_eq!(heap.count(5), 0.0);
        heap.set_min_count(1.0);
        assert_eq!(heap.min(), None);
    }

    #[test]
    fn from_counts_heapifies() {
        let counts = [9.0, 1.0, 8.0, 2.0, 7.0, 3.0, 6.0, 4.0, 5.0];
        let heap = MinHeap::from_counts(12, &counts);
        heap.assert_valid();
        assert_eq!(heap.min(), Some((1, 1.0)));
        for (slot, &c) in counts.iter().enumerate() {
            assert_eq!(heap.count(slot as u32), c);
        }
    }

    #[test]
    fn scale_keeps_order() {
        let mut heap = MinHeap::from_counts(3, &[3.0, 1.0, 2.0]);
        heap.scale(0.5);
        heap.assert_valid();
        assert_eq!(heap.min(), Some((1, 0.5)));
    }

    #[test]
    fn random_increases_keep_the_heap_valid() {
        let mut rng = StdRng::seed_from_u64(1);
        let n = 200;
        let mut heap = MinHeap::with_capacity(n);
        let mut model: Vec<f64> = (0..n)
            .map(|_| f64::from(rng.random_range(0..50u32)))
            .collect();
        for (slot, &c) in model.iter().enumerate() {
            heap.push(slot as u32, c);
        }
        heap.assert_valid();
        for step in 0..20_000 {
            if step % 3 == 0 {
                let (slot, min) = heap.min().unwrap();
                let expected = model.iter().copied().fold(f64::INFINITY, f64::min);
                assert_eq!(min, expected);
                let c = min + f64::from(rng.random_range(1..5u32));
                heap.set_min_count(c);
                model[slot as usize] = c;
            } else {
                let slot = rng.random_range(0..n as u32);
                let d = f64::from(rng.random_range(0..5u32));
                heap.increase(slot, d);
                model[slot as usize] += d;
            }
        }
        heap.assert_valid();
        for (slot, &c) in model.iter().enumerate() {
            assert_eq!(heap.count(slot as u32), c);
        }
    }
}
