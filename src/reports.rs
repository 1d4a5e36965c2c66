//! Reads reported by routers (`HOTKEY.REPORT`): the reads of a key they served off this node
//! lately. A router reports about once a second, so a count added to the tracker at once would
//! read as a spike at each report and a trough between (with a 250 ms half-life, from about
//! 3× the true rate down to a sixteenth of it). Each report is fed to the tracker evenly over
//! the next [`SPREAD_MS`] instead, a share at every tick, so the key's rate reads as the
//! demand, a second late. Pure Rust.

use rustc_hash::FxHashMap;

/// How long one report is spread over: a router's report interval.
pub const SPREAD_MS: u64 = 1000;

/// Keys with reads waiting at most; a report for another key beyond this is counted at once.
pub const MAX_KEYS: usize = 4096;

/// The reads waiting to be fed to the tracker, per key.
#[derive(Debug, Default)]
pub struct ReportFeed {
    feeds: FxHashMap<(u32, Box<[u8]>), Feed>,
}

#[derive(Debug, Clone, Copy)]
struct Feed {
    remaining: f64,
    per_ms: f64,
}

impl ReportFeed {
    /// Queues `count` reads of `key` in `db`, to be fed over the next [`SPREAD_MS`] together
    /// with what is still waiting for it. False when the feed is full and the key is new: the
    /// caller counts the reads at once.
    pub fn add(&mut self, db: u32, key: &[u8], count: f64) -> bool {
        let id = (db, Box::<[u8]>::from(key));
        if self.feeds.len() >= MAX_KEYS && !self.feeds.contains_key(&id) {
            return false;
        }
        let feed = self.feeds.entry(id).or_insert(Feed {
            remaining: 0.0,
            per_ms: 0.0,
        });
        feed.remaining += count;
        feed.per_ms = feed.remaining / SPREAD_MS as f64;
        true
    }

    /// Feeds `elapsed_ms` worth of every key's reads to `record(db, key, reads)`.
    pub fn drain(&mut self, elapsed_ms: u64, mut record: impl FnMut(u32, &[u8], f64)) {
        let elapsed = elapsed_ms.min(SPREAD_MS) as f64;
        if elapsed <= 0.0 {
            return;
        }
        self.feeds.retain(|(db, key), feed| {
            let share = (feed.per_ms * elapsed).min(feed.remaining);
            record(*db, key, share);
            feed.remaining -= share;
            feed.remaining > 1e-6
        });
    }

    /// Keys with reads waiting.
    pub fn len(&self) -> usize {
        self.feeds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.feeds.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drained(feed: &mut ReportFeed, elapsed_ms: u64) -> Vec<(u32, Vec<u8>, f64)> {
        let mut out = Vec::new();
        feed.drain(elapsed_ms, |db, key, n| out.push((db, key.to_vec(), n)));
        out.sort_by(|a, b| a.1.cmp(&b.1));
        out
    }

    #[test]
    fn a_report_is_fed_evenly_over_the_spread() {
        let mut feed = ReportFeed::default();
        assert!(feed.add(0, b"k", 1000.0));
        let mut total = 0.0;
        for _ in 0..10 {
            let step = drained(&mut feed, 100);
            assert_eq!(step.len(), 1);
            assert!((step[0].2 - 100.0).abs() < 1e-9, "{step:?}");
            total += step[0].2;
        }
        assert!((total - 1000.0).abs() < 1e-9);
        assert!(feed.is_empty(), "nothing left after the spread");
        assert!(drained(&mut feed, 100).is_empty());
    }

    #[test]
    fn steady_reports_feed_a_steady_rate() {
        let mut feed = ReportFeed::default();
        // 500 reads a second, reported once a second, drained every 100 ms.
        let mut per_tick = Vec::new();
        for _ in 0..5 {
            feed.add(0, b"k", 500.0);
            for _ in 0..10 {
                per_tick.push(drained(&mut feed, 100)[0].2);
            }
        }
        assert!(
            per_tick.iter().all(|&n| (n - 50.0).abs() < 1e-6),
            "{per_tick:?}"
        );
    }

    #[test]
    fn a_late_report_adds_to_what_is_waiting() {
        let mut feed = ReportFeed::default();
        feed.add(2, b"k", 1000.0);
        drained(&mut feed, 500);
        feed.add(2, b"k", 1000.0);
        // 1500 waiting, over the next second.
        let step = drained(&mut feed, 100);
        assert_eq!(step, vec![(2, b"k".to_vec(), 150.0)]);
        // A long pause feeds at most one spread.
        let rest = drained(&mut feed, 60_000);
        assert!((rest[0].2 - 1350.0).abs() < 1e-9, "{rest:?}");
        assert!(feed.is_empty());
    }

    #[test]
    fn databases_and_binary_keys_are_apart() {
        let mut feed = ReportFeed::default();
        feed.add(0, b"\xff\x00", 10.0);
        feed.add(1, b"\xff\x00", 20.0);
        assert_eq!(feed.len(), 2);
        let step = drained(&mut feed, SPREAD_MS);
        let mut by_db: Vec<(u32, f64)> = step.iter().map(|(db, _, n)| (*db, *n)).collect();
        by_db.sort_by_key(|(db, _)| *db);
        assert_eq!(by_db, vec![(0, 10.0), (1, 20.0)]);
    }

    #[test]
    fn a_full_feed_refuses_new_keys_only() {
        let mut feed = ReportFeed::default();
        for i in 0..MAX_KEYS {
            assert!(feed.add(0, format!("k{i}").as_bytes(), 1.0));
        }
        assert!(!feed.add(0, b"one more", 1.0));
        assert!(feed.add(0, b"k0", 1.0), "a waiting key still takes reports");
    }
}
