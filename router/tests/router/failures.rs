//! The router when things break: a replica killed under load, its subscriber killed, a gap in
//! `seq`, missed heartbeats, the module reloaded (a new `run_id`), the master killed and
//! restarted, a server without the module.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hotkey_router::{ErrorKind, Options, Router, Target};
use hotkey_testkit::{Server, info_number};
use redis::Value;

use crate::common::{
    WAIT, Writer, cached_key, calls, connect, get, incr, load_args, master, no_cache, pin,
    quick_reconnect, replicated, set, set_direct, wait_for_replicas, wait_for_route, wait_until,
    wait_until_async,
};

/// Readers of `key` through `router` until `stop`: (successful reads, errors).
fn spawn_readers(
    router: &Router,
    key: &'static [u8],
    expected: &'static str,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<(u64, Vec<String>)>> {
    (0..2)
        .map(|_| {
            let (router, stop) = (router.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut ok, mut errors) = (0, Vec::new());
                while !stop.load(Ordering::Relaxed) {
                    match router.query::<String>(&get(key)).await {
                        Ok(v) if v == expected => ok += 1,
                        Ok(v) => errors.push(format!("read {v:?}, expected {expected:?}")),
                        Err(e) => errors.push(format!("{e} ({:?})", e.kind())),
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                (ok, errors)
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replica_leaves_the_rotation_and_reads_go_on() {
    let (master, mut replicas) = replicated(&[], 2);
    set_direct(&mut master.conn(), b"k", b"v");
    let router = connect(&master, no_cache()).await;
    pin(&master, b"k");
    wait_for_route(&router, &get(b"k"), Target::Replica).await;
    wait_for_replicas(&router, 2).await;
    let killed = format!("127.0.0.1:{}", replicas[0].port);

    let stop = Arc::new(AtomicBool::new(false));
    let readers = spawn_readers(&router, b"k", "v", &stop);
    wait_until("the readers read from the replicas", WAIT, || {
        router.metrics().replica > 0
    })
    .await;
    let before = router.metrics();
    replicas[0].kill();
    let survivor_gets = calls(&replicas[1], "get");
    // The readers go on until the survivor has served some and the killed replica is out.
    wait_until(
        "replica reads after the kill, on the survivor, with the killed one out",
        WAIT,
        || {
            let m = router.metrics();
            let out = m.replica_errors >= 1
                || !router.replicas().iter().any(|(a, up)| *a == killed && *up);
            m.replica > before.replica && calls(&replicas[1], "get") > survivor_gets && out
        },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    let mut ok = 0;
    for r in readers {
        let (n, errors) = r.await.expect("reader task");
        assert!(errors.is_empty(), "reads failed: {errors:?}");
        ok += n;
    }
    let m = router.metrics();
    assert!(ok > 0);
    assert!(
        m.replica > before.replica,
        "no replica reads after the kill: {m:?}"
    );
    assert!(
        calls(&replicas[1], "get") > survivor_gets,
        "the surviving replica served nothing after the kill"
    );
    let rotation = router.replicas();
    assert!(
        m.replica_errors >= 1 || !rotation.iter().any(|(a, up)| *a == killed && *up),
        "the killed replica {killed} is still in rotation: {rotation:?}, {m:?}"
    );

    // Now every hot read goes to the survivor.
    let gets = calls(&replicas[1], "get");
    let m = router.metrics();
    for _ in 0..10 {
        let v: String = router.query(&get(b"k")).await.expect("GET");
        assert_eq!(v, "v");
    }
    let after = router.metrics();
    assert_eq!(after.replica, m.replica + 10, "{after:?}");
    assert_eq!(calls(&replicas[1], "get"), gets + 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_subscriber_reconnects_and_resyncs() {
    let (master, router) = cached_key(b"k", b"v", Options::default()).await;
    let mut conn = master.conn();
    let before = router.metrics();

    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query(&mut conn)
        .expect("CLIENT KILL TYPE pubsub");
    assert!(killed >= 1, "no pubsub client to kill");

    wait_until("the router reconnects", WAIT, || {
        let m = router.metrics();
        m.connects > before.connects || m.resyncs > before.resyncs
    })
    .await;
    wait_until("the router is synced again", WAIT, || router.is_synced()).await;
    wait_for_route(&router, &get(b"k"), Target::Cache).await;
    let v: String = router.query(&get(b"k")).await.expect("GET");
    assert_eq!(v, "v");
    // The new link follows events: a new pin reaches the router.
    set_direct(&mut conn, b"k2", b"v2");
    pin(&master, b"k2");
    wait_for_route(&router, &get(b"k2"), Target::Cache).await;
    // And invalidations: an external write is seen.
    let _: String = router.query(&get(b"k2")).await.expect("GET");
    set_direct(&mut conn, b"k2", b"v3");
    wait_until_async(
        "the external write is seen after the reconnect",
        WAIT,
        || async { router.query::<String>(&get(b"k2")).await.expect("GET") == "v3" },
    )
    .await;
}

/// `HOTKEY.ROUTES` as the router reads it.
fn routes(conn: &mut redis::Connection) -> hotkey_protocol::Routes {
    let reply: Value = redis::cmd("HOTKEY.ROUTES")
        .query(conn)
        .expect("HOTKEY.ROUTES");
    hotkey_protocol::Routes::from_redis(&reply).expect("a ROUTES reply")
}

/// A message on the module's channel that skips seq numbers (as if the router had missed
/// some) makes the router re-read the hot set, on the same link, and drop its cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_in_seq_makes_a_resync() {
    let (master, router) = cached_key(b"k", b"v", Options::default()).await;
    let mut conn = master.conn();
    let _: String = router.query(&get(b"k")).await.expect("GET");
    let before = router.metrics();

    let now = routes(&mut conn);
    let skipped = format!(
        r#"{{"v":1,"seq":{},"run_id":"{}","ts_ms":0,"event":"heartbeat","hot_keys":1,"replicas":0}}"#,
        now.seq + 5,
        now.run_id
    );
    let receivers: i64 = redis::cmd("PUBLISH")
        .arg(&now.channel)
        .arg(skipped)
        .query(&mut conn)
        .expect("PUBLISH");
    assert!(receivers >= 1, "the router is not subscribed");
    wait_until("a resync after the gap", WAIT, || {
        router.metrics().resyncs > before.resyncs
    })
    .await;
    let after = router.metrics();
    assert_eq!(after.connects, before.connects, "a resync, not a reconnect");
    assert!(router.is_synced());
    // The cache was dropped: the next read is a fill.
    let v: String = router.query(&get(b"k")).await.expect("GET");
    assert_eq!(v, "v");
    assert_eq!(router.metrics().cache_misses, before.cache_misses + 1);
}

/// No message on the channel for `heartbeat_timeout` (here the module's heartbeats are a
/// minute apart): the router re-reads the hot set rather than trust it, and stays synced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_heartbeats_make_a_resync() {
    let master = master(&[("heartbeat-ms", "60000")]);
    let router = connect(
        &master,
        Options::default().heartbeat_timeout(Duration::from_millis(300)),
    )
    .await;
    wait_until("two resyncs on silence", WAIT, || {
        router.metrics().resyncs >= 2
    })
    .await;
    let m = router.metrics();
    assert_eq!(m.connects, 1, "resyncs on the same link: {m}");
    assert!(router.is_synced());
    // Still following: a pin made now reaches the router.
    set_direct(&mut master.conn(), b"k", b"v");
    pin(&master, b"k");
    wait_for_route(&router, &get(b"k"), Target::Cache).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reloaded_module_is_resynced() {
    let args = [("cache-ttl-ms", "60000")];
    let master = master(&args);
    let mut conn = master.conn();
    set_direct(&mut conn, b"k", b"v");
    let router = connect(&master, Default::default()).await;
    pin(&master, b"k");
    wait_for_route(&router, &get(b"k"), Target::Cache).await;
    let _: String = router.query(&get(b"k")).await.expect("GET");
    let before = router.metrics();

    let load_args = load_args(&args);
    let load_args: Vec<&str> = load_args.iter().map(String::as_str).collect();
    master.reload_module(&load_args);

    // The new run has no pin: once the router saw the new run_id, the key is cold.
    wait_until("a resync after the new run_id", WAIT, || {
        router.metrics().resyncs > before.resyncs
    })
    .await;
    wait_for_route(&router, &get(b"k"), Target::Master).await;
    assert!(router.is_synced());
    let v: String = router.query(&get(b"k")).await.expect("GET");
    assert_eq!(v, "v");
    // And follows the new run's events.
    pin(&master, b"k");
    wait_for_route(&router, &get(b"k"), Target::Cache).await;
    let v: String = router.query(&get(b"k")).await.expect("GET");
    assert_eq!(v, "v");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_master_fails_every_query_until_it_is_back() {
    let (mut master, router) = cached_key(b"hot", b"v", quick_reconnect()).await;
    let port = master.port;
    let _: String = router.query(&get(b"hot")).await.expect("GET");

    let writer = Writer::start(&router);
    tokio::time::sleep(Duration::from_millis(300)).await;
    master.kill();
    let killed = Instant::now();

    wait_until("the router notices the master is gone", WAIT, || {
        !router.is_synced()
    })
    .await;
    // Down: reads (hot or not), writes and pipelines all fail, with a kind that says so.
    let down_until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < down_until {
        for cmd in [get(b"hot"), get(b"cold"), set(b"k", b"v")] {
            match router.query_value(&cmd).await {
                Ok(v) => panic!("{cmd:?} succeeded with the master down: {v:?}"),
                Err(e) => assert!(
                    matches!(e.kind(), ErrorKind::MasterUnavailable | ErrorKind::Io),
                    "{e} ({:?})",
                    e.kind()
                ),
            }
        }
        let piped = router
            .query_pipeline::<Value>(redis::pipe().cmd("INCR").arg("counter"))
            .await;
        assert!(piped.is_err(), "pipeline succeeded with the master down");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Back on the same port (empty: no persistence). The router reconnects by itself.
    let restarted_at = Instant::now();
    let master = crate::common::with_port(&[("cache-ttl-ms", "60000")], port);
    wait_until_async("a write succeeds after the restart", WAIT, || async {
        router.query::<i64>(&incr(b"after")).await.is_ok()
    })
    .await;
    wait_until("the router is synced again", WAIT, || router.is_synced()).await;
    let outcomes = writer.stop().await;

    let mut failed = 0;
    // A write sent after the kill returned (the process is reaped by then) and answered
    // before the restart had no server to succeed on; one sent just before may have been
    // answered by the old server in its last moment.
    for o in &outcomes {
        if o.sent > killed && o.done < restarted_at {
            match &o.result {
                Ok(v) => panic!("INCR returned {v} while the master was down"),
                Err(e) => {
                    failed += 1;
                    assert!(
                        matches!(e.kind(), ErrorKind::MasterUnavailable | ErrorKind::Io),
                        "{e} ({:?})",
                        e.kind()
                    );
                }
            }
        }
    }
    assert!(failed > 0, "the writer saw no failure");
    // The writes acknowledged after the restart are the new server's: it counts from 1, and
    // holds exactly the last value acknowledged.
    let after: Vec<i64> = outcomes
        .iter()
        .filter(|o| o.done > restarted_at)
        .filter_map(|o| o.result.as_ref().ok().copied())
        .collect();
    let expected: Vec<i64> = (1..=after.len() as i64).collect();
    assert_eq!(after, expected, "INCRs acknowledged after the restart");
    let counter: Option<i64> = get(b"counter").query(&mut master.conn()).expect("GET");
    assert_eq!(counter, after.last().copied());

    // Routing resumes on the new server.
    set_direct(&mut master.conn(), b"hot", b"v2");
    pin(&master, b"hot");
    wait_for_route(&router, &get(b"hot"), Target::Cache).await;
    let v: String = router.query(&get(b"hot")).await.expect("GET");
    assert_eq!(v, "v2");
    let m = router.metrics();
    assert!(m.connects >= 2, "{m:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_the_module_is_refused_clearly() {
    let server = Server::builder().without_module().start();
    let err = match Router::connect(server.url(), Options::default()).await {
        Ok(_) => panic!("connected to a server without the module"),
        Err(e) => e,
    };
    let text = err.to_string();
    assert!(
        text.contains("HOTKEY.ROUTES") || text.to_lowercase().contains("unknown command"),
        "the error does not name the problem: {text} ({err:?})"
    );
    assert!(!err.is_retryable(), "{err:?}");
}

/// One master restart, one reconnect. Commands that were in flight on the dead connection
/// each report it broken; those reports must not outlive the reconnect they asked for and tear
/// down the new, healthy link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_restart_costs_one_reconnect() {
    let mut master = master(&[]);
    let port = master.port;
    let router = connect(&master, quick_reconnect()).await;
    // Several commands in flight on the master connection when it dies: the first puts the
    // server to sleep, the others queue behind it on the same connection.
    let waiting: Vec<_> = (0..8)
        .map(|_| {
            let router = router.clone();
            tokio::spawn(async move {
                router
                    .query::<()>(redis::cmd("DEBUG").arg("SLEEP").arg(30))
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    master.kill();
    for w in waiting {
        let slept = w.await.expect("DEBUG SLEEP task");
        assert!(
            slept.is_err(),
            "DEBUG SLEEP returned {slept:?} from a killed master"
        );
    }
    wait_until("the router notices the master is gone", WAIT, || {
        !router.is_synced()
    })
    .await;
    let master = crate::common::with_port(&[], port);
    wait_until_async("a write succeeds after the restart", WAIT, || async {
        router.query::<i64>(&incr(b"after")).await.is_ok()
    })
    .await;
    // A spurious second reconnect follows at once when it happens: before the new link
    // delivers an event (a pin) and, a report interval later, a report of a cache hit.
    set_direct(&mut master.conn(), b"later", b"1");
    pin(&master, b"later");
    wait_for_route(&router, &get(b"later"), Target::Cache).await;
    for _ in 0..2 {
        let _: String = router.query(&get(b"later")).await.expect("GET later");
    }
    wait_until(
        "the new master hears a report of the cache hit",
        WAIT,
        || info_number(&mut master.conn(), "reported_reads") >= 1.0,
    )
    .await;
    let m = router.metrics();
    assert!(router.is_synced());
    assert_eq!(
        (m.connects, m.resyncs),
        (2, 1),
        "the first connect and one reconnect after the restart: {m:?}"
    );
    drop(master);
}

/// A reply that does not convert to the type asked for is no connection failure: the command
/// ran and the server answered. `ErrorKind::Io` says "the command may or may not have run".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_of_another_type_is_not_an_io_error() {
    let master = master(&[]);
    set_direct(&mut master.conn(), b"k", b"not a number");
    let router = connect(&master, Default::default()).await;
    let err = match router.query::<i64>(&get(b"k")).await {
        Ok(v) => panic!("GET of a text as an integer gave {v}"),
        Err(e) => e,
    };
    assert_ne!(err.kind(), ErrorKind::Io, "{err} ({err:?})");
}
