//! The local cache: an external write invalidates a cached reply long before its TTL, the
//! router reads its own writes, concurrent misses share one fill, and an entry is fetched again
//! after its TTL.

use std::sync::Arc;
use std::time::Duration;

use hotkey_router::{Router, Target};
use tokio::sync::Barrier;

use crate::common::{
    WAIT, calls, connect, get, master, pin, set, set_direct, wait_for_route, wait_until_async,
};

/// An advised TTL far longer than any wait below: a fresh value seen before it runs out was
/// brought by an invalidation, not by expiry.
const LONG_TTL: (&str, &str) = ("cache-ttl-ms", "60000");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_write_invalidates_the_cached_reply() {
    let master = master(&[LONG_TTL]);
    let mut conn = master.conn();
    set_direct(&mut conn, b"k", b"v1");
    let router = connect(&master, Default::default()).await;
    pin(&master, b"k");
    wait_for_route(&router, &get(b"k"), Target::Cache).await;
    for _ in 0..2 {
        let v: String = router.query(&get(b"k")).await.expect("GET");
        assert_eq!(v, "v1");
    }
    let m = router.metrics();
    assert_eq!(
        (m.cache_misses, m.cache_hits, m.invalidations),
        (1, 1, 0),
        "{m:?}"
    );

    // Written on a plain connection: only the server's tracking can tell the router.
    set_direct(&mut conn, b"k", b"v2");
    wait_until_async(
        "the router reads the externally written value (within WAIT, far below the TTL)",
        WAIT,
        || async {
            let v: String = router.query(&get(b"k")).await.expect("GET");
            v == "v2"
        },
    )
    .await;
    let m = router.metrics();
    assert!(m.invalidations >= 1, "{m:?}");
    assert_eq!(m.cache_misses, 2, "one fill per value: {m:?}");
    // The new value is cached again.
    let v: String = router.query(&get(b"k")).await.expect("GET");
    assert_eq!(v, "v2");
    assert_eq!(router.metrics().cache_hits, m.cache_hits + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_reads_its_own_write_from_the_master() {
    let master = master(&[LONG_TTL]);
    set_direct(&mut master.conn(), b"k", b"old");
    let router = connect(&master, Default::default()).await;
    pin(&master, b"k");
    wait_for_route(&router, &get(b"k"), Target::Cache).await;
    let v: String = router.query(&get(b"k")).await.expect("GET");
    assert_eq!(v, "old");

    let () = router.query(&set(b"k", b"new")).await.expect("SET");
    // Inside the read-your-writes window the read goes to the master, not to the cache.
    assert_eq!(router.route(&get(b"k")), Target::Master);
    let before = router.metrics();
    let gets = calls(&master, "get");
    let v: String = router.query(&get(b"k")).await.expect("GET");
    assert_eq!(v, "new");
    let m = router.metrics();
    assert_eq!(m.master, before.master + 1, "{m:?}");
    assert_eq!(
        m.hot_reads_to_master,
        before.hot_reads_to_master + 1,
        "{m:?}"
    );
    assert_eq!(m.cache_hits, before.cache_hits, "{m:?}");
    assert_eq!(calls(&master, "get"), gets + 1);
    assert!(m.invalidations >= 1, "own write invalidates: {m:?}");

    // After the window the reads are cached again, with the new value.
    wait_for_route(&router, &get(b"k"), Target::Cache).await;
    let v: String = router.query(&get(b"k")).await.expect("GET");
    assert_eq!(v, "new");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_share_one_fill() {
    const READERS: usize = 50;
    let master = master(&[LONG_TTL]);
    set_direct(&mut master.conn(), b"k", b"shared");
    let router = connect(&master, Default::default()).await;
    pin(&master, b"k");
    wait_for_route(&router, &get(b"k"), Target::Cache).await;
    let gets = calls(&master, "get");

    let barrier = Arc::new(Barrier::new(READERS));
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let router = router.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                router.query::<String>(&get(b"k")).await
            })
        })
        .collect();
    for reader in readers {
        let v = reader.await.expect("reader task").expect("GET");
        assert_eq!(v, "shared");
    }
    let m = router.metrics();
    // Exactly one: misses wait for the fill in flight (moka's `try_get_with`), and the entry
    // cannot be invalidated meanwhile (nothing writes the key).
    assert_eq!(m.cache_misses, 1, "{m:?}");
    assert_eq!(m.cache_hits, READERS as u64 - 1, "{m:?}");
    assert_eq!(
        calls(&master, "get"),
        gets + 1,
        "one GET reached the master"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_is_fetched_again_after_its_ttl() {
    let master = master(&[("cache-ttl-ms", "300")]);
    set_direct(&mut master.conn(), b"k", b"v");
    let router = connect(&master, Default::default()).await;
    pin(&master, b"k");
    wait_for_route(&router, &get(b"k"), Target::Cache).await;
    let hot = router.hot_keys();
    assert_eq!(hot.len(), 1, "{hot:?}");
    assert_eq!(hot[0].advice.cache_ttl_ms, 300, "{hot:?}");

    let v: String = router.query(&get(b"k")).await.expect("GET");
    assert_eq!(v, "v");
    assert_eq!(router.metrics().cache_misses, 1);
    let gets = calls(&master, "get");
    // Read on until a read is a miss again: with nothing written, only the TTL can end the
    // entry.
    wait_until_async("a cache miss after the TTL", WAIT, || async {
        let v: String = router.query(&get(b"k")).await.expect("GET");
        assert_eq!(v, "v");
        tokio::time::sleep(Duration::from_millis(50)).await;
        router.metrics().cache_misses >= 2
    })
    .await;
    let m = router.metrics();
    // Neither a write nor a resync (which empties the cache) ended the entry.
    assert_eq!((m.invalidations, m.resyncs), (0, 0), "{m:?}");
    assert!(m.cache_hits >= 1, "{m:?}");
    assert_eq!(calls(&master, "get"), gets + 1, "one refetch");
}

/// A caller on RESP3: the router's own connections to the master speak it too (the fill
/// connection's invalidations still reach the router).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resp3_caller_is_cached_and_invalidated() {
    let master = master(&[LONG_TTL]);
    let mut conn = master.conn();
    set_direct(&mut conn, b"k", b"v1");
    let url = format!("{}?protocol=resp3", master.url());
    let router = Router::connect(url.as_str(), Default::default())
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    pin(&master, b"k");
    wait_for_route(&router, &get(b"k"), Target::Cache).await;
    for _ in 0..2 {
        let v: String = router.query(&get(b"k")).await.expect("GET");
        assert_eq!(v, "v1");
    }
    assert_eq!(router.metrics().cache_hits, 1);
    set_direct(&mut conn, b"k", b"v2");
    wait_until_async("the router reads the new value", WAIT, || async {
        router.query::<String>(&get(b"k")).await.expect("GET") == "v2"
    })
    .await;
    let reply = router.query_value(&set(b"k", b"v3")).await.expect("SET");
    assert_eq!(reply, redis::Value::Okay);
}
