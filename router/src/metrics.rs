//! Counters an application can read: where commands went, how the cache did, how often the
//! router had to re-read the hot set.

use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;
use thread_local::ThreadLocal;

/// A snapshot of the router's counters, all since it connected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Commands sent to the master (cache fills included).
    pub master: u64,
    /// Reads served by replicas.
    pub replica: u64,
    /// Reads served from the local cache.
    pub cache_hits: u64,
    /// Cacheable reads that had to be fetched (from the master).
    pub cache_misses: u64,
    /// Reads of hot keys that went to the master anyway: cache fills, the read-your-writes
    /// window, no healthy replica, a replica that failed.
    pub hot_reads_to_master: u64,
    /// Hot keys whose cached replies were dropped because the key was written.
    pub invalidations: u64,
    /// Times the hot set was re-read after the first: a gap in `seq`, a new `run_id`, a missed
    /// heartbeat, or a reconnect.
    pub resyncs: u64,
    /// Times the connection to the master was (re)established.
    pub connects: u64,
    /// Replica reads that failed or timed out (the replica left rotation; the read was
    /// served elsewhere).
    pub replica_errors: u64,
    /// `HOTKEY.REPORT` commands sent.
    pub reports: u64,
    /// `HOTKEY.REPORT` commands that failed (their counts are sent with the next one).
    pub report_errors: u64,
}

impl Metrics {
    /// The sum of two sets of counters (a cluster's shards, or its shards and those it
    /// dropped).
    pub fn plus(&self, other: &Metrics) -> Metrics {
        Metrics {
            master: self.master + other.master,
            replica: self.replica + other.replica,
            cache_hits: self.cache_hits + other.cache_hits,
            cache_misses: self.cache_misses + other.cache_misses,
            hot_reads_to_master: self.hot_reads_to_master + other.hot_reads_to_master,
            invalidations: self.invalidations + other.invalidations,
            resyncs: self.resyncs + other.resyncs,
            connects: self.connects + other.connects,
            replica_errors: self.replica_errors + other.replica_errors,
            reports: self.reports + other.reports,
            report_errors: self.report_errors + other.report_errors,
        }
    }
}

/// `master=… replica=… cache_hits=…`: every counter as `name=value`, for logs.
impl std::fmt::Display for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "master={} replica={} cache_hits={} cache_misses={} hot_reads_to_master={} \
             invalidations={} resyncs={} connects={} replica_errors={} reports={} \
             report_errors={}",
            self.master,
            self.replica,
            self.cache_hits,
            self.cache_misses,
            self.hot_reads_to_master,
            self.invalidations,
            self.resyncs,
            self.connects,
            self.replica_errors,
            self.reports,
            self.report_errors
        )
    }
}

/// The live counters behind [`Metrics`], one set per thread that counts (summed by
/// [`Counters::snapshot`]): a counter bumped on every cache hit, shared by the threads that
/// serve hits, would be a cache line they all write.
#[derive(Default)]
pub(crate) struct Counters {
    threads: ThreadLocal<CachePadded<CounterSet>>,
}

/// One thread's counters.
#[derive(Debug, Default)]
pub(crate) struct CounterSet {
    pub master: AtomicU64,
    pub replica: AtomicU64,
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
    pub hot_reads_to_master: AtomicU64,
    pub invalidations: AtomicU64,
    pub resyncs: AtomicU64,
    pub connects: AtomicU64,
    pub replica_errors: AtomicU64,
    pub reports: AtomicU64,
    pub report_errors: AtomicU64,
}

/// Adds one to a counter.
#[inline]
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    /// The calling thread's counters.
    #[inline]
    pub fn here(&self) -> &CounterSet {
        self.threads.get_or_default()
    }

    /// The sum over the threads.
    pub fn snapshot(&self) -> Metrics {
        self.threads
            .iter()
            .map(|set| set.snapshot())
            .fold(Metrics::default(), |sum, m| sum.plus(&m))
    }
}

impl CounterSet {
    fn snapshot(&self) -> Metrics {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Metrics {
            master: get(&self.master),
            replica: get(&self.replica),
            cache_hits: get(&self.cache_hits),
            cache_misses: get(&self.cache_misses),
            hot_reads_to_master: get(&self.hot_reads_to_master),
            invalidations: get(&self.invalidations),
            resyncs: get(&self.resyncs),
            connects: get(&self.connects),
            replica_errors: get(&self.replica_errors),
            reports: get(&self.reports),
            report_errors: get(&self.report_errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_print_as_name_value_pairs() {
        let m = Metrics {
            master: 3,
            cache_hits: 7,
            ..Metrics::default()
        };
        let text = m.to_string();
        assert!(
            text.starts_with("master=3 replica=0 cache_hits=7 "),
            "{text}"
        );
        assert!(text.ends_with(" report_errors=0"), "{text}");
    }

    #[test]
    fn counts_of_every_thread_are_in_the_snapshot() {
        let counters = Counters::default();
        bump(&counters.here().cache_hits);
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    for _ in 0..5 {
                        bump(&counters.here().cache_hits);
                    }
                    bump(&counters.here().master);
                });
            }
        });
        let m = counters.snapshot();
        assert_eq!((m.cache_hits, m.master), (16, 3), "{m:?}");
    }
}
