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
