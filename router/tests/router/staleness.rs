//! How stale a read may be. One task writes a counter (`INCR`, through its own router) and
//! notes when each write completed; readers read it through another router, off the master
//! (replicas or cache), at the same time. A read started at `t` must return at least the value
//! of the last write that completed before `t - BOUND`. And a router that writes a key always
//! reads its own write next, even while the key's reads go to replicas or the cache.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hotkey_router::{Options, Router, Target};

use crate::common::{
    WAIT, connect, get, incr, no_cache, pin, replicated, set, set_direct, wait_for_replicas,
    wait_for_route, wait_until,
};

/// How long the writer and readers run at least; longer until each side made [`ENOUGH`].
const RUN: Duration = Duration::from_secs(3);

/// The writes and the reads a run needs to say anything.
const ENOUGH: usize = 100;

/// Staleness allowed. Replicas on loopback apply the replication stream within milliseconds,
/// and the module takes a replica out of rotation beyond `max-replica-lag-ms` (1 s here, with
/// one-second resolution); a cached reply lives at most its TTL, but is dropped as soon as the
/// server's invalidation arrives (milliseconds on loopback). The cache run advises a TTL of
/// 60 s, longer than the run, so there a bound of "TTL + 1 s" would accept anything: its
/// freshness has to come from invalidations, and 1 s is a generous bound for their delivery
/// and for scheduling on a loaded 2-core machine.
const BOUND: Duration = Duration::from_secs(1);

const KEY: &[u8] = b"counter";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_reads_are_never_staler_than_the_bound() {
    let (master, _replicas) = replicated(&[("max-replica-lag-ms", "1000")], 2);
    let reader = connect(&master, no_cache()).await;
    check_staleness(&master, reader, Target::Replica, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_reads_are_never_staler_than_the_bound() {
    let (master, _replicas) = replicated(&[("cache-ttl-ms", "60000")], 1);
    let reader = connect(&master, Default::default()).await;
    check_staleness(&master, reader, Target::Cache, 1).await;
}

async fn check_staleness(
    master: &hotkey_testkit::Server,
    reader: Router,
    target: Target,
    replicas: usize,
) {
    set_direct(&mut master.conn(), KEY, b"0");
    let writer = connect(master, Options::default()).await;
    pin(master, KEY);
    wait_for_route(&reader, &get(KEY), target).await;
    if target == Target::Replica {
        wait_for_replicas(&reader, replicas).await;
    }

    let stop = Arc::new(AtomicBool::new(false));
    // (value, when its INCR's reply arrived), in write order.
    let writes: Arc<Mutex<Vec<(i64, Instant)>>> = Arc::default();
    let writing = {
        let (stop, writes) = (stop.clone(), writes.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let v: i64 = writer.query(&incr(KEY)).await.expect("INCR");
                writes.lock().unwrap().push((v, Instant::now()));
                // About a thousand writes a second: enough to catch a stale read, while
                // cached replies live long enough between two writes to be hit.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    let read_count = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (stop, reader, count) = (stop.clone(), reader.clone(), read_count.clone());
            tokio::spawn(async move {
                // (when the read was sent, value).
                let mut reads: Vec<(Instant, i64)> = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    let v: i64 = reader.query(&get(KEY)).await.expect("GET");
                    reads.push((sent, v));
                    count.fetch_add(1, Ordering::Relaxed);
                    tokio::task::yield_now().await;
                }
                reads
            })
        })
        .collect();
    tokio::time::sleep(RUN).await;
    // A loaded machine may have done less in that time: go on until both sides did enough.
    wait_until(format!("{ENOUGH} writes and {ENOUGH} reads"), WAIT, || {
        writes.lock().unwrap().len() > ENOUGH && read_count.load(Ordering::Relaxed) > ENOUGH
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    writing.await.expect("writer task");
    let mut reads = Vec::new();
    for r in readers {
        reads.extend(r.await.expect("reader task"));
    }

    let writes = writes.lock().unwrap().clone();
    let last = writes.last().map_or(0, |w| w.0);
    assert!(writes.len() > ENOUGH, "only {} writes", writes.len());
    assert!(reads.len() > ENOUGH, "only {} reads", reads.len());
    let mut worst = Duration::ZERO;
    for (sent, v) in &reads {
        // The writes that completed before `sent - BOUND` are a prefix of `writes`.
        let due = sent.checked_sub(BOUND);
        let known = due.map_or(0, |due| writes.partition_point(|(_, at)| *at < due));
        let must_see = if known == 0 { 0 } else { writes[known - 1].0 };
        assert!(
            *v >= must_see,
            "a read sent {:?} after the start read {v}, but {must_see} was written more than \
             {BOUND:?} before it was sent",
            sent.duration_since(writes[0].1),
        );
        // One INCR may have been applied when the writer stopped, before its reply was noted.
        assert!(*v <= last + 1, "read {v}, but the last write was {last}");
        // How long ago the value read was overwritten (for the log).
        let next = writes.partition_point(|(value, _)| *value <= *v);
        if let Some((_, at)) = writes.get(next)
            && *at < *sent
        {
            worst = worst.max(sent.duration_since(*at));
        }
    }
    let m = reader.metrics();
    eprintln!(
        "{target:?}: {} writes, {} reads, worst staleness {worst:?}; {m:?}",
        writes.len(),
        reads.len()
    );
    // The reads were really served off the master, most of them.
    let off_master = match target {
        Target::Replica => m.replica,
        _ => m.cache_hits,
    };
    assert!(
        off_master * 2 > reads.len() as u64,
        "{off_master} of {} reads served off the master: {m:?}",
        reads.len()
    );
    if target == Target::Cache {
        assert!(m.invalidations > 0, "{m:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_router_always_reads_its_own_writes() {
    let (master, _replicas) = replicated(&[("cache-ttl-ms", "60000")], 2);
    set_direct(&mut master.conn(), KEY, b"0");
    let to_replicas = connect(&master, no_cache()).await;
    let cached = connect(&master, Options::default()).await;
    pin(&master, KEY);
    wait_for_route(&to_replicas, &get(KEY), Target::Replica).await;
    wait_for_replicas(&to_replicas, 2).await;
    wait_for_route(&cached, &get(KEY), Target::Cache).await;

    for (name, router) in [("replicas", &to_replicas), ("cache", &cached)] {
        // Fill the cache (or warm a replica connection) with the value before the writes.
        let _: i64 = router.query(&get(KEY)).await.expect("GET");
        for i in 0..200 {
            let wrote: i64 = router.query(&incr(KEY)).await.expect("INCR");
            let read: i64 = router.query(&get(KEY)).await.expect("GET");
            assert_eq!(
                read, wrote,
                "{name}: round {i} read {read} after writing {wrote}"
            );
        }
        // A write in a pipeline counts as well.
        for i in 0..20 {
            let (wrote,): (i64,) = router
                .query_pipeline(redis::pipe().cmd("INCR").arg(KEY))
                .await
                .expect("pipelined INCR");
            let read: i64 = router.query(&get(KEY)).await.expect("GET");
            assert_eq!(read, wrote, "{name}: pipeline round {i}");
        }
        let () = router.query(&set(KEY, 0)).await.expect("SET");
    }
    // The key's reads are served off the master again once the writes stop.
    wait_for_route(&to_replicas, &get(KEY), Target::Replica).await;
    wait_for_route(&cached, &get(KEY), Target::Cache).await;
}
