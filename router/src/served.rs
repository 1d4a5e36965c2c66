//! Reads served off the master per key, kept until the next `HOTKEY.REPORT`: counted per
//! thread, summed at report time.
//!
//! A read served off the master is almost always of a hot key, and every thread of the
//! application (every worker of the proxy) reads the same few hot keys: one shared map, or one
//! shared counter per key, is a cache line that all of them write on every hit. Here each
//! thread counts into a map of its own ([`thread_local::ThreadLocal`]), so a hit touches only
//! memory its thread owns. The map's mutex is only ever shared with the report (once per
//! report interval), never between two threads that serve reads, so it is taken without a
//! wait or a cache-line transfer on the hit path.
//!
//! A thread's map keeps the keys it counted at the last report (so a key hot for a while is
//! allocated once, not once per report) and drops those it did not count since.

use std::sync::Mutex;

use crossbeam_utils::CachePadded;
use rustc_hash::FxHashMap;
use thread_local::ThreadLocal;

use crate::locks::lock;

/// Per-key counts of reads served off the master since the last [`ServedCounts::take`].
#[derive(Default)]
pub(crate) struct ServedCounts {
    /// Padded: the maps' locks of two threads never share a cache line.
    threads: ThreadLocal<CachePadded<Mutex<Counts>>>,
}

/// One thread's counts.
type Counts = FxHashMap<Box<[u8]>, u64>;

impl ServedCounts {
    /// Counts one read of each of `keys`.
    pub fn add(&self, keys: &[&[u8]]) {
        let mut counts = lock(self.threads.get_or_default());
        for key in keys {
            match counts.get_mut(*key) {
                Some(n) => *n += 1,
                None => {
                    counts.insert((*key).into(), 1);
                }
            }
        }
    }

    /// Every count since the last take, summed over the threads, taken out.
    pub fn take(&self) -> Vec<(Box<[u8]>, u64)> {
        let mut total = Counts::default();
        for counts in self.threads.iter() {
            lock(counts).retain(|key, n| {
                if *n == 0 {
                    return false;
                }
                match total.get_mut(key) {
                    Some(sum) => *sum += *n,
                    None => {
                        total.insert(key.clone(), *n);
                    }
                }
                *n = 0;
                true
            });
        }
        total.into_iter().collect()
    }

    /// Puts back counts a report could not deliver (they go with the next one).
    pub fn restore(&self, taken: Vec<(Box<[u8]>, u64)>) {
        let mut counts = lock(self.threads.get_or_default());
        for (key, n) in taken {
            *counts.entry(key).or_insert(0) += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(mut counts: Vec<(Box<[u8]>, u64)>) -> Vec<(Box<[u8]>, u64)> {
        counts.sort();
        counts
    }

    #[test]
    fn counts_of_several_threads_are_summed_per_key() {
        let served = ServedCounts::default();
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    for _ in 0..10 {
                        served.add(&[b"a", b"b\xff"]);
                    }
                    served.add(&[b"a"]);
                });
            }
        });
        assert_eq!(
            sorted(served.take()),
            vec![
                (b"a".as_slice().into(), 33),
                (b"b\xff".as_slice().into(), 30)
            ]
        );
        assert!(served.take().is_empty(), "a take leaves nothing behind");
    }

    #[test]
    fn restored_counts_go_with_the_next_take() {
        let served = ServedCounts::default();
        served.add(&[b"k"]);
        let taken = served.take();
        served.add(&[b"k"]);
        served.restore(taken);
        assert_eq!(served.take(), vec![(b"k".as_slice().into(), 2)]);
    }

    #[test]
    fn a_key_not_counted_since_the_last_take_leaves_its_thread_map() {
        let served = ServedCounts::default();
        served.add(&[b"old"]);
        let _ = served.take();
        served.add(&[b"new"]);
        let _ = served.take();
        let _ = served.take();
        let kept: usize = served.threads.iter().map(|c| lock(c).len()).sum();
        assert_eq!(kept, 0);
    }

    /// Takes while threads count: every read is in exactly one take.
    #[test]
    fn takes_during_counting_lose_and_repeat_nothing() {
        const THREADS: u64 = 4;
        const READS: u64 = 20_000;
        let served = ServedCounts::default();
        let done = std::sync::atomic::AtomicUsize::new(0);
        let mut reported = 0;
        std::thread::scope(|s| {
            for _ in 0..THREADS {
                s.spawn(|| {
                    for _ in 0..READS {
                        served.add(&[b"hot"]);
                    }
                    done.fetch_add(1, std::sync::atomic::Ordering::Release);
                });
            }
            while done.load(std::sync::atomic::Ordering::Acquire) < THREADS as usize {
                reported += served.take().iter().map(|(_, n)| n).sum::<u64>();
                std::thread::yield_now();
            }
        });
        reported += served.take().iter().map(|(_, n)| n).sum::<u64>();
        assert_eq!(reported, THREADS * READS);
    }
}
