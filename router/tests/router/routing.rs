//! Where commands go with a master and two replicas: hot reads to the replicas round-robin or
//! to the cache, cold reads and writes to the master, and `route()` agreeing with where they
//! went (seen from the servers' own `INFO commandstats`).

use std::time::Duration;

use hotkey_router::{Router, Target};
use redis::Value;

use crate::common::{
    WAIT, calls, connect, get, master, no_cache, pin, replicated, set, set_direct,
    wait_for_replicas, wait_for_route, wait_until, wait_until_async,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_reads_go_to_the_replicas_round_robin_and_the_rest_to_the_master() {
    let (master, replicas) = replicated(&[], 2);
    let mut conn = master.conn();
    set_direct(&mut conn, b"hot", b"h1");
    set_direct(&mut conn, b"cold", b"c1");
    let router = connect(&master, no_cache()).await;
    pin(&master, b"hot");
    wait_for_route(&router, &get(b"hot"), Target::Replica).await;
    wait_for_replicas(&router, 2).await;
    assert_eq!(router.route(&get(b"cold")), Target::Master);
    assert_eq!(router.route(&set(b"hot", b"x")), Target::Master);
    // A read goes off the master only when every key it reads is hot.
    assert_eq!(
        router.route(redis::cmd("MGET").arg("hot").arg("cold")),
        Target::Master
    );

    // Hot reads: every one served by a replica, taking turns.
    let before = router.metrics();
    let replica_gets: Vec<u64> = replicas.iter().map(|r| calls(r, "get")).collect();
    let master_gets = calls(&master, "get");
    for _ in 0..20 {
        let v: String = router.query(&get(b"hot")).await.expect("GET hot");
        assert_eq!(v, "h1");
    }
    let after = router.metrics();
    assert_eq!(after.replica - before.replica, 20, "{after:?}");
    assert_eq!(after.master, before.master, "{after:?}");
    let served: Vec<u64> = replicas
        .iter()
        .zip(&replica_gets)
        .map(|(r, b)| calls(r, "get") - b)
        .collect();
    assert_eq!(
        served.iter().sum::<u64>(),
        20,
        "GETs per replica: {served:?}"
    );
    assert!(
        served[0].abs_diff(served[1]) <= 2,
        "not round-robin: GETs per replica {served:?}"
    );
    assert_eq!(
        calls(&master, "get"),
        master_gets,
        "a hot read reached the master"
    );

    // A cold read: the master.
    let v: String = router.query(&get(b"cold")).await.expect("GET cold");
    assert_eq!(v, "c1");
    let m = router.metrics();
    assert_eq!((m.master, m.replica), (after.master + 1, after.replica));
    assert_eq!(calls(&master, "get"), master_gets + 1);

    // A write of the hot key: the master; then the key's reads follow the router's own write
    // to the master for the read-your-writes window.
    let sets = calls(&master, "set");
    let () = router.query(&set(b"hot", b"h2")).await.expect("SET hot");
    assert_eq!(calls(&master, "set"), sets + 1);
    assert_eq!(router.metrics().master, m.master + 1);
    assert_eq!(router.route(&get(b"hot")), Target::Master);
    let v: String = router.query(&get(b"hot")).await.expect("GET hot");
    assert_eq!(v, "h2");
    assert_eq!(calls(&master, "get"), master_gets + 2);
    for r in &replicas {
        assert_eq!(r.role(), "slave");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_cache_on_hot_reads_are_cache_hits() {
    let (master, replicas) = replicated(&[("cache-ttl-ms", "60000")], 2);
    set_direct(&mut master.conn(), b"hot", b"v");
    let router = connect(&master, Default::default()).await;
    pin(&master, b"hot");
    wait_for_route(&router, &get(b"hot"), Target::Cache).await;

    let replica_gets: Vec<u64> = replicas.iter().map(|r| calls(r, "get")).collect();
    let master_gets = calls(&master, "get");
    let before = router.metrics();
    for _ in 0..20 {
        let v: String = router.query(&get(b"hot")).await.expect("GET hot");
        assert_eq!(v, "v");
    }
    let m = router.metrics();
    assert_eq!(m.cache_misses - before.cache_misses, 1, "{m:?}");
    assert_eq!(m.cache_hits - before.cache_hits, 19, "{m:?}");
    assert_eq!(m.replica, before.replica, "{m:?}");
    assert_eq!(
        calls(&master, "get"),
        master_gets + 1,
        "one fill on the master"
    );
    for (r, b) in replicas.iter().zip(&replica_gets) {
        assert_eq!(calls(r, "get"), *b, "a cached read reached a replica");
    }
    // Cold keys still go to the master.
    assert_eq!(router.route(&get(b"other")), Target::Master);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_key_names_work_end_to_end() {
    // Not UTF-8: the module's events carry it as `key_b64`.
    let key: &[u8] = b"\xffbin\x00ary\xfe";
    let value: &[u8] = b"\x00\xff\x80";
    let (master, replicas) = replicated(&[("cache-ttl-ms", "60000")], 1);
    set_direct(&mut master.conn(), key, value);
    let to_replicas = connect(&master, no_cache()).await;
    let cached = connect(&master, Default::default()).await;
    pin(&master, key);
    wait_for_route(&to_replicas, &get(key), Target::Replica).await;
    wait_for_replicas(&to_replicas, 1).await;
    wait_for_route(&cached, &get(key), Target::Cache).await;
    assert!(
        cached.hot_keys().iter().any(|h| h.key == key),
        "hot keys: {:?}",
        cached.hot_keys()
    );

    let gets = calls(&replicas[0], "get");
    let v: Vec<u8> = to_replicas.query(&get(key)).await.expect("GET via replica");
    assert_eq!(v, value);
    assert_eq!(to_replicas.metrics().replica, 1);
    assert_eq!(calls(&replicas[0], "get"), gets + 1);

    for _ in 0..3 {
        let v: Vec<u8> = cached.query(&get(key)).await.expect("GET via cache");
        assert_eq!(v, value);
    }
    let m = cached.metrics();
    assert_eq!((m.cache_misses, m.cache_hits), (1, 2), "{m:?}");

    // A write of the binary key through one router invalidates the other's cached reply.
    let () = to_replicas.query(&set(key, b"new")).await.expect("SET");
    wait_until_async(
        "the cached router reads the new value of the binary key",
        WAIT,
        || async {
            let v: Vec<u8> = cached.query(&get(key)).await.expect("GET");
            v == b"new"
        },
    )
    .await;
    assert!(cached.metrics().invalidations >= 1);
}

/// A blocking command (`BLPOP`, which the router sends to the master like any write) must not
/// hold up the router's other master traffic while it waits: Redis runs a connection's
/// commands in order, so a command queued behind a blocked `BLPOP` on the same connection waits
/// as long as the `BLPOP` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_command_does_not_hold_up_the_others() {
    let master = master(&[]);
    let router = connect(&master, Default::default()).await;
    let blpop = {
        let router = router.clone();
        tokio::spawn(async move {
            router
                .query::<Option<(String, String)>>(redis::cmd("BLPOP").arg("queue").arg(0))
                .await
        })
    };
    wait_until("the BLPOP is blocked on the master", WAIT, || {
        blocked_clients(&master) == 1
    })
    .await;

    // Far longer than a SET takes, far shorter than the BLPOP's wait (for ever).
    let set_done =
        tokio::time::timeout(Duration::from_secs(5), router.query::<()>(&set(b"k", b"v"))).await;
    // Serve the BLPOP, so the test ends either way.
    let () = redis::cmd("LPUSH")
        .arg("queue")
        .arg("job")
        .query(&mut master.conn())
        .expect("LPUSH");
    let popped = blpop.await.expect("BLPOP task").expect("BLPOP");
    assert_eq!(popped, Some(("queue".to_string(), "job".to_string())));
    let set_done = set_done.unwrap_or_else(|_| {
        panic!("a SET through the router waited behind a blocked BLPOP (still waiting after 5 s)")
    });
    set_done.expect("SET");
}

/// `master_connection()` is for what the router does not route, `WATCH`…`EXEC` among them;
/// commands routed meanwhile by other tasks must not end up inside that transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_connection_does_not_take_in_routed_commands() {
    let master = master(&[]);
    let router = connect(&master, Default::default()).await;
    let mut tx = router.master_connection().await.expect("master connection");
    let () = redis::cmd("MULTI")
        .query_async(&mut tx)
        .await
        .expect("MULTI");
    // Another task writes through the router while the transaction is open...
    let reply = router
        .query_value(&set(b"k", b"v"))
        .await
        .expect("SET through the router");
    // ...and the transaction is given up.
    let () = redis::cmd("DISCARD")
        .query_async(&mut tx)
        .await
        .expect("DISCARD");
    let stored: Option<String> = get(b"k").query(&mut master.conn()).expect("GET");
    assert_eq!(
        (reply, stored),
        (Value::Okay, Some("v".to_string())),
        "the router's SET was queued in another caller's MULTI and discarded with it"
    );
}

/// `blocked_clients` of `INFO clients`.
pub fn blocked_clients(server: &hotkey_testkit::Server) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("clients")
        .query(&mut server.conn())
        .expect("INFO clients");
    info.lines()
        .find_map(|l| l.trim().strip_prefix("blocked_clients:"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("INFO clients has no blocked_clients: {info}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_router_on_another_database_follows_that_database_only() {
    let master = master(&[("cache-ttl-ms", "60000")]);
    let mut db0 = master.conn();
    let mut db1 = master.conn_db(1);
    set_direct(&mut db0, b"k", b"zero");
    set_direct(&mut db1, b"k", b"one");
    let url = format!("redis://127.0.0.1:{}/1", master.port);
    let router = Router::connect(url.as_str(), Default::default())
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"));

    // `k` pinned in database 0, then `marker` in database 1: once the router has the second
    // event it has had the first, which is not its database's.
    pin(&master, b"k");
    pin_in(&master, b"marker", 1);
    wait_for_route(&router, &get(b"marker"), Target::Cache).await;
    assert_eq!(router.route(&get(b"k")), Target::Master);

    pin_in(&master, b"k", 1);
    wait_for_route(&router, &get(b"k"), Target::Cache).await;
    for _ in 0..2 {
        let v: String = router.query(&get(b"k")).await.expect("GET");
        assert_eq!(v, "one");
    }
    let m = router.metrics();
    assert_eq!((m.cache_misses, m.cache_hits), (1, 1), "{m:?}");
    set_direct(&mut db1, b"k", b"one again");
    wait_until_async("the write in database 1 is seen", WAIT, || async {
        router.query::<String>(&get(b"k")).await.expect("GET") == "one again"
    })
    .await;
    // The router's writes land in its database.
    let () = router.query(&set(b"w", b"1")).await.expect("SET");
    let in_db1: Option<String> = get(b"w").query(&mut db1).expect("GET");
    let in_db0: Option<String> = get(b"w").query(&mut db0).expect("GET");
    assert_eq!((in_db1.as_deref(), in_db0), (Some("1"), None));
}

/// `HOTKEY.PIN key DB db`.
fn pin_in(server: &hotkey_testkit::Server, key: &[u8], db: u32) {
    let () = redis::cmd("HOTKEY.PIN")
        .arg(key)
        .arg("DB")
        .arg(db)
        .query(&mut server.conn())
        .unwrap_or_else(|e| panic!("HOTKEY.PIN {} DB {db}: {e}", String::from_utf8_lossy(key)));
}
