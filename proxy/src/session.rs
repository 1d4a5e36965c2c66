//! What a client keeps to get its commands answered in order and to read its own writes:
//! - [`InFlight`], counts of replies not in yet (the client waits for them to be in before a
//!   command that must run after everything it sent before);
//! - [`WriteWindow`], the keys it wrote lately, whose hot reads go to the master (which has
//!   the write) rather than a replica (which may not yet). Bounded: a fixed number of
//!   slots, so a client that writes more keys than it has within the window sends more of its
//!   hot reads to the master until the window has passed, which is always safe.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use std::hash::Hasher;

use rustc_hash::FxHasher;
use tokio::sync::Notify;

/// Replies in flight: counted when their command is dispatched, done when they are in.
#[derive(Default)]
pub struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

impl InFlight {
    pub fn add(&self) {
        self.count.fetch_add(1, Ordering::AcqRel);
    }

    pub fn done(&self) {
        if self.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
        }
    }

    pub fn is_empty(&self) -> bool {
        self.count.load(Ordering::Acquire) == 0
    }

    /// Waits until every reply counted so far is done.
    pub async fn drained(&self) {
        loop {
            let notified = self.idle.notified();
            if self.is_empty() {
                return;
            }
            notified.await;
        }
    }
}

/// The keys a client wrote within the window, as deadlines in slots chosen by a hash of the
/// key: writing marks the key's slot, a read asks whether its slot's deadline is ahead. Two
/// keys sharing a slot only send a hot read to the master that a replica could have served,
/// which is always safe, and a client that writes more keys than there are slots within the
/// window drifts towards every hot read on the master, as a full list of keys would. Marking
/// costs one hash and one store, whatever the key or the load: no allocation, no sweep of
/// expired keys. The slots are allocated at the client's first write, so a client that only
/// reads costs nothing here.
#[derive(Debug)]
pub struct WriteWindow {
    window: Duration,
    /// Deadlines in milliseconds since `base` (0: never written).
    slots: Option<Box<[u64]>>,
    size: usize,
    base: Instant,
}

impl WriteWindow {
    /// A window of `window` over `slots` slots (rounded up to a power of two).
    pub fn new(window: Duration, slots: usize) -> WriteWindow {
        WriteWindow {
            window,
            slots: None,
            size: slots.max(1).next_power_of_two(),
            base: Instant::now(),
        }
    }

    /// The client wrote `keys` at `now` (the command was sent; its reply may not be back).
    pub fn wrote(&mut self, keys: &[Bytes], now: Instant) {
        if keys.is_empty() || self.window.is_zero() {
            return;
        }
        let deadline = self.millis(now) + millis(self.window).max(1);
        let size = self.size;
        let slots = self
            .slots
            .get_or_insert_with(|| vec![0; size].into_boxed_slice());
        for key in keys {
            slots[slot(key, size)] = deadline;
        }
    }

    /// Whether the client may have written `key` within the window.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.slots
            .as_ref()
            .is_some_and(|slots| slots[slot(key, self.size)] > self.millis(Instant::now()))
    }

    fn millis(&self, at: Instant) -> u64 {
        millis(at.saturating_duration_since(self.base))
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn slot(key: &[u8], size: usize) -> usize {
    let mut hasher = FxHasher::default();
    hasher.write(key);
    // The high bits: Fx mixes them best.
    (hasher.finish() >> 32) as usize & (size - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> Bytes {
        Bytes::copy_from_slice(k.as_bytes())
    }

    #[test]
    fn a_written_key_counts_for_the_window_only() {
        let mut w = WriteWindow::new(Duration::from_millis(50), 1024);
        assert!(!w.contains(b"a"));
        w.wrote(&[key("a")], Instant::now());
        assert!(w.contains(b"a"));
        assert!(!w.contains(b"b"));
        std::thread::sleep(Duration::from_millis(60));
        assert!(!w.contains(b"a"));
    }

    #[test]
    fn every_key_written_within_the_window_counts_whatever_their_number() {
        let mut w = WriteWindow::new(Duration::from_secs(60), 64);
        let keys: Vec<Bytes> = (0..5_000).map(|i| key(&format!("k:{i}"))).collect();
        w.wrote(&keys, Instant::now());
        assert!(
            keys.iter().all(|k| w.contains(k)),
            "no written key is missed"
        );
        // More keys than slots: every slot is marked, so every hot read goes to the master.
        assert!(w.contains(b"never written"));
    }

    #[test]
    fn few_keys_leave_most_reads_off_the_master() {
        let mut w = WriteWindow::new(Duration::from_secs(60), 1024);
        let written: Vec<Bytes> = (0..16).map(|i| key(&format!("w:{i}"))).collect();
        w.wrote(&written, Instant::now());
        let others = (0..1_000)
            .filter(|i| w.contains(format!("r:{i}").as_bytes()))
            .count();
        assert!(
            others < 50,
            "{others} of 1,000 unwritten keys share a slot with 16 written"
        );
    }

    #[test]
    fn a_zero_window_keeps_nothing() {
        let mut w = WriteWindow::new(Duration::ZERO, 2);
        w.wrote(&[key("a")], Instant::now());
        assert!(!w.contains(b"a"));
    }
}
