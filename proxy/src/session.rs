//! What a client keeps to get its commands answered in order and to read its own writes:
//! - [`InFlight`], counts of replies not in yet (the client waits for them to be in before a
//!   command that must run after everything it sent before);
//! - [`WriteWindow`], the keys it wrote lately, whose hot reads go to the master (which has
//!   the write) rather than a replica (which may not yet). Bounded: when more keys were
//!   written within the window than it holds, every hot read of the client goes to the master
//!   until the window has passed, which is always safe.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rustc_hash::FxHashMap;
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

/// The keys a client wrote within the window.
#[derive(Debug)]
pub struct WriteWindow {
    window: Duration,
    capacity: usize,
    keys: FxHashMap<Bytes, Instant>,
    /// Set when the map was full: until then every key counts as written.
    overflowed_until: Option<Instant>,
}

impl WriteWindow {
    pub fn new(window: Duration, capacity: usize) -> WriteWindow {
        WriteWindow {
            window,
            capacity,
            keys: FxHashMap::default(),
            overflowed_until: None,
        }
    }

    /// The client wrote `keys` (the command was sent; its reply may not be back).
    pub fn wrote(&mut self, keys: &[Bytes]) {
        if keys.is_empty() || self.window.is_zero() {
            return;
        }
        let now = Instant::now();
        let until = now + self.window;
        for key in keys {
            if self.keys.len() >= self.capacity && !self.keys.contains_key(key) {
                self.keys.retain(|_, t| *t > now);
                if self.keys.len() >= self.capacity {
                    self.keys.clear();
                    self.overflowed_until = Some(until);
                    return;
                }
            }
            self.keys.insert(key.clone(), until);
        }
    }

    /// Whether the client wrote `key` within the window.
    pub fn contains(&self, key: &[u8]) -> bool {
        if self.keys.is_empty() && self.overflowed_until.is_none() {
            return false;
        }
        let now = Instant::now();
        if self.overflowed_until.is_some_and(|t| t > now) {
            return true;
        }
        self.keys.get(key).is_some_and(|t| *t > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> Bytes {
        Bytes::copy_from_slice(k.as_bytes())
    }

    #[test]
    fn a_written_key_counts_for_the_window_only() {
        let mut w = WriteWindow::new(Duration::from_millis(50), 8);
        assert!(!w.contains(b"a"));
        w.wrote(&[key("a")]);
        assert!(w.contains(b"a"));
        assert!(!w.contains(b"b"));
        std::thread::sleep(Duration::from_millis(60));
        assert!(!w.contains(b"a"));
    }

    #[test]
    fn a_full_window_sends_every_read_to_the_master() {
        let mut w = WriteWindow::new(Duration::from_secs(60), 2);
        w.wrote(&[key("a"), key("b")]);
        assert!(!w.contains(b"z"));
        w.wrote(&[key("c")]);
        assert!(w.contains(b"z"), "overflowed: every key counts as written");
        assert!(w.contains(b"a"));
    }

    #[test]
    fn a_zero_window_keeps_nothing() {
        let mut w = WriteWindow::new(Duration::ZERO, 2);
        w.wrote(&[key("a")]);
        assert!(!w.contains(b"a"));
    }
}
