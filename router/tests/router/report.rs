//! Reads served off the master (cache hits, replica reads) are reported to the master with
//! `HOTKEY.REPORT`: `INFO hotkey` `reported_reads` counts each of them once.

use hotkey_router::Target;
use hotkey_testkit::info_number;

use crate::common::{
    WAIT, connect, get, no_cache, pin, replicated, set_direct, wait_for_replicas, wait_for_route,
    wait_until,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_served_off_the_master_are_reported_once() {
    let (master, _replicas) = replicated(&[("cache-ttl-ms", "60000")], 1);
    let mut conn = master.conn();
    set_direct(&mut conn, b"k", b"v");
    let cached = connect(&master, Default::default()).await;
    let to_replicas = connect(&master, no_cache()).await;
    pin(&master, b"k");
    wait_for_route(&cached, &get(b"k"), Target::Cache).await;
    wait_for_route(&to_replicas, &get(b"k"), Target::Replica).await;
    wait_for_replicas(&to_replicas, 1).await;
    assert_eq!(info_number(&mut conn, "reported_reads"), 0.0);

    for _ in 0..30 {
        let _: String = cached.query(&get(b"k")).await.expect("GET cached");
    }
    for _ in 0..20 {
        let _: String = to_replicas.query(&get(b"k")).await.expect("GET replica");
    }
    let (c, r) = (cached.metrics(), to_replicas.metrics());
    let off_master = c.cache_hits + r.replica;
    assert_eq!(off_master, 29 + 20, "cached {c:?}, to replicas {r:?}");

    wait_until(format!("reported_reads == {off_master}"), WAIT, || {
        info_number(&mut conn, "reported_reads") == off_master as f64
    })
    .await;
    // Nothing is reported twice: one more cache hit, and the next report adds just that one.
    let _: String = cached.query(&get(b"k")).await.expect("GET cached");
    let want = off_master + 1;
    wait_until(format!("reported_reads == {want}"), WAIT, || {
        info_number(&mut conn, "reported_reads") >= want as f64
    })
    .await;
    assert_eq!(info_number(&mut conn, "reported_reads"), want as f64);
    for m in [cached.metrics(), to_replicas.metrics()] {
        assert!(m.reports > 0, "{m:?}");
        assert_eq!(m.report_errors, 0, "{m:?}");
    }
}

/// Tasks on two worker threads hit two cached keys (one of them not UTF-8) while reports go
/// out every 10 ms: the counts of the threads are taken while they count, and the module still
/// hears of every hit exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hits_counted_on_several_threads_during_reports_are_reported_once() {
    const TASKS: usize = 8;
    const REPORTS_DURING_HITS: u64 = 3;
    let keys: [&[u8]; 2] = [b"a", b"b\xff\x00"];
    let master = crate::common::master(&[("cache-ttl-ms", "60000")]);
    let mut conn = master.conn();
    let router = connect(
        &master,
        hotkey_router::Options::default().report_interval(std::time::Duration::from_millis(10)),
    )
    .await;
    for key in keys {
        set_direct(&mut conn, key, b"v");
        pin(&master, key);
        wait_for_route(&router, &get(key), Target::Cache).await;
    }

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reports_before = router.metrics().reports;
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let (router, stop) = (router.clone(), stop.clone());
            tokio::spawn(async move {
                let mut reads = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let key = keys[(task + reads as usize) % keys.len()];
                    let _: Vec<u8> = router.query(&get(key)).await.expect("GET cached");
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    let want_reports = reports_before + REPORTS_DURING_HITS;
    wait_until(
        format!("{want_reports} reports while the tasks read"),
        WAIT,
        || router.metrics().reports >= want_reports,
    )
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut reads = 0;
    for task in tasks {
        reads += task.await.expect("reading task");
    }

    let m = router.metrics();
    assert_eq!(m.cache_hits + m.cache_misses, reads, "{m:?}");
    assert_eq!(m.report_errors, 0, "{m:?}");
    let hits = m.cache_hits;
    wait_until(format!("reported_reads == {hits}"), WAIT, || {
        info_number(&mut conn, "reported_reads") >= hits as f64
    })
    .await;
    assert_eq!(
        info_number(&mut conn, "reported_reads"),
        hits as f64,
        "{m:?}"
    );
    // Nothing is left behind to be reported twice: one more hit, and the next report adds just it.
    let _: Vec<u8> = router.query(&get(keys[0])).await.expect("GET cached");
    wait_until(format!("reported_reads == {}", hits + 1), WAIT, || {
        info_number(&mut conn, "reported_reads") >= (hits + 1) as f64
    })
    .await;
    assert_eq!(info_number(&mut conn, "reported_reads"), (hits + 1) as f64);
}
