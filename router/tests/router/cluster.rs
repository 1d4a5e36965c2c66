//! The router on a Redis Cluster (3 masters × 1 replica, the testkit's `Cluster`): commands
//! by slot, hot keys of two shards each served by its own shard, failovers under load, and a
//! slot moving while its hot key is read.

use std::time::{Duration, Instant};

use hotkey_router::{CROSSSLOT, Error, ErrorKind, Options, Router, Target};
use hotkey_testkit::{Cluster, Node};

use crate::common::{
    WAIT, cluster, get, incr, no_cache, quick_reconnect, set, wait_for_route, wait_until,
};

/// A router on every master of `cluster`, seeded with all its nodes.
async fn connect(cluster: &Cluster, options: Options) -> Router {
    Router::connect_cluster(cluster.urls(), options)
        .await
        .unwrap_or_else(|e| panic!("connect a router to the cluster: {e}"))
}

/// `HOTKEY.PIN key` on the master serving it: the key is read-hot there at once.
fn pin(cluster: &Cluster, key: &[u8]) {
    let () = redis::cmd("HOTKEY.PIN")
        .arg(key)
        .query(&mut cluster.node_for_key(key).conn())
        .unwrap_or_else(|e| panic!("HOTKEY.PIN {}: {e}", String::from_utf8_lossy(key)));
}

/// Calls of `command` (lower case) `node` has executed (`INFO commandstats`).
fn calls(node: &Node, command: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut node.conn())
        .expect("INFO commandstats");
    let prefix = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|l| l.trim().strip_prefix(&prefix))
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

/// Two keys named `<prefix>:<n>` served by different masters.
fn keys_on_two_shards(cluster: &Cluster, prefix: &str) -> (Vec<u8>, Vec<u8>) {
    let first = format!("{prefix}:0").into_bytes();
    let owner = cluster.node_for_key(&first).id.clone();
    let second = (1..)
        .map(|n| format!("{prefix}:{n}").into_bytes())
        .find(|k| cluster.node_for_key(k).id != owner)
        .expect("a key of another shard");
    (first, second)
}

/// The value of `key` on the master serving it, read directly.
fn direct_get(cluster: &Cluster, key: &[u8]) -> Option<Vec<u8>> {
    redis::cmd("GET")
        .arg(key)
        .query(&mut cluster.node_for_key(key).conn())
        .expect("GET on the key's master")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commands_go_to_the_master_of_their_slot_and_cross_slot_ones_are_refused() {
    let cluster = cluster(&[], &[]);
    let router = connect(&cluster, Options::default()).await;

    let shards = router.shards();
    assert_eq!(shards.len(), 3, "{shards:?}");
    let served: u32 = shards
        .iter()
        .flat_map(|s| &s.slots)
        .map(|r| u32::from(r.end - r.start) + 1)
        .sum();
    assert_eq!(served, 16384, "{shards:?}");

    // Keys on every shard (binary names too) land on their slot's master.
    let keys: Vec<Vec<u8>> = (0..30u8)
        .map(|n| [b"key:\xff".as_slice(), &[n]].concat())
        .collect();
    for key in &keys {
        let () = router.query(&set(key, key)).await.expect("SET");
    }
    for key in &keys {
        assert_eq!(direct_get(&cluster, key).as_deref(), Some(key.as_slice()));
        let value: Vec<u8> = router.query(&get(key)).await.expect("GET");
        assert_eq!(&value, key);
    }
    for master in cluster.masters() {
        assert!(calls(master, "set") > 0, "no SET reached {}", master.port);
    }

    // Keys of one slot (a hash tag) go together; of different slots, never leave.
    let () = router
        .query(
            redis::cmd("MSET")
                .arg("{user1}.a")
                .arg(1)
                .arg("{user1}.b")
                .arg(2),
        )
        .await
        .expect("MSET in one slot");
    let crossed = router
        .query::<()>(redis::cmd("MSET").arg("a").arg(1).arg("b").arg(2))
        .await
        .expect_err("MSET across slots");
    assert!(matches!(crossed, Error::CrossSlot), "{crossed:?}");
    assert_eq!(crossed.kind(), ErrorKind::CrossSlot);
    assert!(!crossed.is_retryable());
    assert_eq!(crossed.to_string(), CROSSSLOT);

    // A keyless command goes to a master.
    let pong: String = router.query(&redis::cmd("PING")).await.expect("PING");
    assert_eq!(pong, "PONG");
    assert_eq!(
        router.metrics().master,
        router
            .shards()
            .iter()
            .map(|s| s.metrics.master)
            .sum::<u64>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hot_keys_of_two_shards_are_each_served_by_their_own_shard() {
    let cluster = cluster(&[("cache-ttl-ms", "60000")], &[]);
    let (a, b) = keys_on_two_shards(&cluster, "hot");
    for key in [&a, &b] {
        let mut conn = cluster.node_for_key(key).conn();
        let () = redis::cmd("SET")
            .arg(key.as_slice())
            .arg(key.as_slice())
            .query(&mut conn)
            .expect("SET");
        // The replica must have it before reads go there (a loaded machine lags).
        hotkey_testkit::wait_for_acks(&mut conn, 1);
    }
    let to_replicas = connect(&cluster, no_cache()).await;
    let cached = connect(&cluster, Options::default()).await;
    pin(&cluster, &a);
    pin(&cluster, &b);
    for key in [&a, &b] {
        wait_for_route(&to_replicas, &get(key.as_slice()), Target::Replica).await;
        wait_for_route(&cached, &get(key.as_slice()), Target::Cache).await;
    }

    let before: Vec<(u64, u64)> = [&a, &b]
        .iter()
        .map(|k| {
            let master = cluster.node_for_key(k);
            (
                calls(master, "get"),
                calls(cluster.replicas(master)[0], "get"),
            )
        })
        .collect();
    for _ in 0..100 {
        for key in [&a, &b] {
            let via_replica: Vec<u8> = to_replicas.query(&get(key.as_slice())).await.expect("GET");
            assert_eq!(&via_replica, key);
            let via_cache: Vec<u8> = cached.query(&get(key.as_slice())).await.expect("GET");
            assert_eq!(&via_cache, key);
        }
    }
    for (key, (master_before, replica_before)) in [&a, &b].iter().zip(before) {
        let master = cluster.node_for_key(key);
        let replica = cluster.replicas(master)[0];
        assert!(
            calls(replica, "get") >= replica_before + 100,
            "the replica of {} served fewer than 100 reads of its hot key",
            master.port
        );
        // The cache's one fill at most reached the master.
        assert!(
            calls(master, "get") <= master_before + 1,
            "master {} served hot reads",
            master.port
        );
    }
    let m = to_replicas.metrics();
    assert!(m.replica >= 200, "{m}");
    let m = cached.metrics();
    assert!(m.cache_hits >= 198, "{m}");
    let shards_with_hits = cached
        .shards()
        .iter()
        .filter(|s| s.metrics.cache_hits > 0)
        .count();
    assert_eq!(shards_with_hits, 2, "{:?}", cached.shards());
    // Each shard with a hot key sends its own reports, on its own master's connection.
    wait_until("a report from each shard of a hot key", WAIT, || {
        cached
            .shards()
            .iter()
            .filter(|s| s.metrics.reports > 0)
            .count()
            == 2
    })
    .await;
    assert_eq!(cached.metrics().report_errors, 0, "{}", cached.metrics());
}

/// Options for the failover tests: reconnect within 200 ms, and a master that never answers a
/// write fails it (named in the writer's outcomes) instead of hanging the test. The bound is
/// far above the longest wait a failover imposes: a master handing over in `CLUSTER FAILOVER`
/// holds writes for at most 10 s.
fn failover_options() -> Options {
    quick_reconnect().master_timeout(Some(hotkey_testkit::scaled(WAIT * 2)))
}

/// INCRs `key` through `router` every 5 ms until `stop`; every outcome.
async fn write_until(
    router: &Router,
    key: &[u8],
    stop: impl Fn() -> bool,
) -> Vec<Result<i64, Error>> {
    let mut outcomes = Vec::new();
    while !stop() {
        outcomes.push(router.query::<i64>(&incr(key)).await);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    outcomes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failovers_under_load_are_followed_to_the_new_master() {
    // Fail detection after 1 s.
    let cluster = cluster(&[], &["--cluster-node-timeout", "1000"]);
    let key = b"counter".as_slice();
    let router = connect(&cluster, failover_options()).await;
    let _: i64 = router.query(&incr(key)).await.expect("INCR");

    // A manual failover: the old master hands over; writes wait, get MOVED, and follow it.
    let old = cluster.node_for_key(key);
    let replica = cluster.replicas(old)[0];
    let writer = {
        let router = router.clone();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop = done.clone();
        let task = tokio::spawn(async move {
            write_until(&router, b"counter", move || {
                stop.load(std::sync::atomic::Ordering::Relaxed)
            })
            .await
        });
        (task, done)
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    manual_failover(replica, old).await;
    let new = cluster.wait_for_failover(old);
    assert_eq!(new.id, replica.id);
    wait_until("the router follows the new master", WAIT, || {
        router
            .shards()
            .iter()
            .any(|s| s.master == format!("127.0.0.1:{}", new.port))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    writer.1.store(true, std::sync::atomic::Ordering::Relaxed);
    let outcomes = writer.0.await.expect("writer");
    let errors: Vec<&Error> = outcomes.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        errors.is_empty(),
        "a manual failover leaks errors: {errors:?}"
    );
    let acked: Vec<i64> = outcomes
        .iter()
        .filter_map(|r| r.as_ref().ok().copied())
        .collect();
    assert!(acked.windows(2).all(|w| w[0] < w[1]), "{acked:?}");

    // A killed master: commands fail (never a false success) until the replica takes over,
    // then go to it.
    let victim = cluster.node_for_key(key);
    // The old master rejoins as the new one's replica, and must be in sync before it can take
    // over (on a loaded machine that takes a moment).
    wait_until(
        "the old master is a synced replica of the new one",
        WAIT,
        || {
            cluster.replicas(victim).first().is_some_and(|r| {
                redis::cmd("INFO")
                    .arg("replication")
                    .query::<String>(&mut r.conn())
                    .is_ok_and(|info| info.contains("master_link_status:up"))
            })
        },
    )
    .await;
    let heir = cluster.replicas(victim)[0];
    cluster.kill(victim);
    let killed_at = Instant::now();
    let mut errors = Vec::new();
    let recovered = loop {
        match router.query::<i64>(&incr(key)).await {
            Ok(n) => {
                if Instant::now() > killed_at + Duration::from_millis(500) {
                    break n;
                }
            }
            Err(e) => {
                assert!(
                    matches!(e.kind(), ErrorKind::MasterUnavailable | ErrorKind::Io),
                    "{e:?}"
                );
                errors.push(e);
            }
        }
        assert!(
            Instant::now() < killed_at + WAIT,
            "no recovery; errors: {errors:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let promoted = cluster.wait_for_failover(victim);
    assert_eq!(promoted.id, heir.id);
    assert!(
        !errors.is_empty(),
        "no command failed while the master was down"
    );
    let on_heir: i64 = redis::cmd("GET")
        .arg(key)
        .query(&mut heir.conn())
        .expect("GET on the new master");
    assert_eq!(
        on_heir, recovered,
        "the router's write is on the new master"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slot_moving_under_reads_of_its_cached_key_is_followed() {
    let cluster = cluster(&[("cache-ttl-ms", "60000")], &[]);
    let key = b"moving:hot".as_slice();
    let slot = hotkey_protocol::cluster::key_slot(key);
    let from = cluster.node_for_key(key);
    let to = cluster.other_master(from);
    let () = redis::cmd("SET")
        .arg(key)
        .arg("v1")
        .query(&mut from.conn())
        .expect("SET");
    let router = connect(&cluster, Options::default()).await;
    pin(&cluster, key);
    wait_for_route(&router, &get(key), Target::Cache).await;

    // The reader keeps its outcomes where the test can poll them.
    type Reads = std::sync::Arc<std::sync::Mutex<Vec<Result<Option<String>, Error>>>>;
    let reads: Reads = Default::default();
    let last_read = |reads: &Reads| -> Option<String> {
        let reads = reads.lock().expect("not poisoned");
        reads
            .last()
            .and_then(|r| r.as_ref().ok().cloned().flatten())
    };
    let reader = {
        let (router, reads) = (router.clone(), reads.clone());
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop = done.clone();
        let task = tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let read = router.query::<Option<String>>(&get(b"moving:hot")).await;
                reads.lock().expect("not poisoned").push(read);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
        (task, done)
    };
    wait_until("the reader reads v1", WAIT, || {
        last_read(&reads).as_deref() == Some("v1")
    })
    .await;

    // Migrating: the key still on `from`, then on `to` (`ASK` for it); a write through the
    // router in between follows `ASK`.
    cluster.begin_migration(slot, from, to);
    tokio::time::sleep(Duration::from_millis(100)).await;
    cluster.move_keys(slot, from, to);
    let () = router
        .query(&set(key, "v2"))
        .await
        .expect("SET during the migration");
    let on_target: Option<String> = redis::cmd("GET")
        .arg(key)
        .query(&mut {
            let mut c = to.conn();
            let () = redis::cmd("ASKING").query(&mut c).expect("ASKING");
            c
        })
        .expect("GET on the importing master");
    assert_eq!(on_target.as_deref(), Some("v2"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    cluster.finish_migration(slot, from, to);

    // Once the new owner has a value, the router reads it (or newer), never the old one.
    let () = redis::cmd("SET")
        .arg(key)
        .arg("v3")
        .query(&mut to.conn())
        .expect("SET on the new owner");
    let read: Option<String> = router.query(&get(key)).await.expect("GET after the move");
    assert_eq!(read.as_deref(), Some("v3"));
    wait_until("the reader reads v3", WAIT, || {
        last_read(&reads).as_deref() == Some("v3")
    })
    .await;
    reader.1.store(true, std::sync::atomic::Ordering::Relaxed);
    reader.0.await.expect("reader");
    let outcomes = std::mem::take(&mut *reads.lock().expect("not poisoned"));
    let errors: Vec<&Error> = outcomes.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        errors.is_empty(),
        "MOVED/ASK reached the caller: {errors:?}"
    );
    let values: Vec<&str> = outcomes
        .iter()
        .filter_map(|r| r.as_ref().ok().and_then(|v| v.as_deref()))
        .collect();
    assert!(values.contains(&"v1"), "{values:?}");
    assert_eq!(
        values.last(),
        Some(&"v3"),
        "the last read is the new owner's value"
    );
    assert_eq!(
        router
            .shards()
            .iter()
            .find(|s| s.slots.iter().any(|r| r.contains(slot)))
            .map(|s| s.master.clone()),
        Some(format!("127.0.0.1:{}", to.port))
    );
}

/// Whether `replica` replicates `master` over a link that is up (a manual failover needs it).
fn replicates(replica: &Node, master: &Node) -> bool {
    redis::cmd("INFO")
        .arg("replication")
        .query::<String>(&mut replica.conn())
        .is_ok_and(|info| {
            info.contains("master_link_status:up")
                && info.contains(&format!("master_port:{}\r\n", master.port))
        })
}

/// `ROLE`'s first word on `node`: `master` or `slave`.
fn role(node: &Node) -> Vec<u8> {
    let role: Vec<redis::Value> = redis::cmd("ROLE").query(&mut node.conn()).expect("ROLE");
    match role.first() {
        Some(redis::Value::BulkString(word)) => word.clone(),
        other => panic!("ROLE on port {}: {other:?}", node.port),
    }
}

/// `CLUSTER FAILOVER` on `replica`, asked again until it is the master and `old` its replica:
/// a manual failover that got no votes gives up after 5 s.
async fn manual_failover(replica: &Node, old: &Node) {
    let deadline = Instant::now() + WAIT * 2;
    loop {
        let () = redis::cmd("CLUSTER")
            .arg("FAILOVER")
            .query(&mut replica.conn())
            .expect("CLUSTER FAILOVER");
        let asked = Instant::now();
        while asked.elapsed() < Duration::from_secs(6) {
            if role(replica) == b"master" && role(old) == b"slave" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            Instant::now() < deadline,
            "port {} did not take over from port {} within {:?}",
            replica.port,
            old.port,
            WAIT * 2
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn manual_failovers_back_and_forth_leak_no_redirection_to_writers() {
    let cluster = cluster(&[], &["--cluster-node-timeout", "1000"]);
    // One slot (6680, the second shard's): the layout may be read from the first shard's
    // master, which hears of each failover by gossip, after the old master has redirected.
    let keys: Vec<Vec<u8>> = (0..4)
        .map(|i| format!("{{counter}}:{i}").into_bytes())
        .collect();
    let router = connect(&cluster, failover_options()).await;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = keys
        .iter()
        .map(|key| {
            let (router, key, stop) = (router.clone(), key.clone(), done.clone());
            tokio::spawn(async move {
                write_until(&router, &key, move || {
                    stop.load(std::sync::atomic::Ordering::Relaxed)
                })
                .await
            })
        })
        .collect();
    let mut old = cluster.node_for_key(&keys[0]);
    let mut replica = cluster.replicas(old)[0];
    // The masters refuse to vote for a replica of a master they voted to replace less than two
    // node timeouts ago: round 2 replaces round 0's master again, so it waits that long.
    let mut took_over: Vec<Instant> = Vec::new();
    for round in 0..3 {
        if let Some(&earlier) = took_over.len().checked_sub(2).map(|i| &took_over[i]) {
            tokio::time::sleep(
                (earlier + Duration::from_millis(2200)).saturating_duration_since(Instant::now()),
            )
            .await;
        }
        wait_until(
            format!(
                "round {round}: port {} replicates port {}",
                replica.port, old.port
            ),
            WAIT,
            || replicates(replica, old),
        )
        .await;
        manual_failover(replica, old).await;
        took_over.push(Instant::now());
        let new = cluster.wait_for_failover(old);
        assert_eq!(new.id, replica.id, "round {round}");
        wait_until(
            format!("round {round}: the router follows the new master"),
            WAIT,
            || {
                router
                    .shards()
                    .iter()
                    .any(|s| s.master == format!("127.0.0.1:{}", new.port))
            },
        )
        .await;
        (old, replica) = (replica, old);
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    for (key, writer) in keys.iter().zip(writers) {
        let outcomes = writer.await.expect("writer");
        let errors: Vec<&Error> = outcomes.iter().filter_map(|r| r.as_ref().err()).collect();
        assert!(
            errors.is_empty(),
            "manual failovers leak errors to the writer of {}: {errors:?}",
            String::from_utf8_lossy(key)
        );
        let acked: Vec<i64> = outcomes.into_iter().filter_map(Result::ok).collect();
        assert!(
            acked.windows(2).all(|w| w[0] < w[1]),
            "{}: {acked:?}",
            String::from_utf8_lossy(key)
        );
        let stored: i64 = redis::cmd("GET")
            .arg(key)
            .query(&mut cluster.node_for_key(key).conn())
            .expect("GET on the master");
        assert_eq!(
            acked.last().copied(),
            Some(stored),
            "every acknowledged write is on the master"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keyless_commands_go_to_their_group_and_scan_covers_every_shard() {
    let cluster = cluster(&[], &[]);
    let router = connect(&cluster, Options::default()).await;
    let keys: Vec<Vec<u8>> = (0..300u32)
        .map(|n| [b"scan:\xff".as_slice(), n.to_string().as_bytes()].concat())
        .collect();
    for key in &keys {
        let () = router.query(&set(key, "v")).await.expect("SET");
    }
    let hashes: Vec<Vec<u8>> = (0..10).map(|n| format!("hash:{n}").into_bytes()).collect();
    for key in &hashes {
        let () = router
            .query(redis::cmd("HSET").arg(key.as_slice()).arg("f").arg(1))
            .await
            .map(|_: i64| ())
            .expect("HSET");
    }
    for master in cluster.masters() {
        let on_master: i64 = redis::cmd("DBSIZE")
            .query(&mut master.conn())
            .expect("DBSIZE");
        assert!(on_master > 0, "master {} holds no key", master.port);
    }

    // Every master, replies merged.
    let size: i64 = router.query(&redis::cmd("DBSIZE")).await.expect("DBSIZE");
    assert_eq!(size, 310);
    let mut listed: Vec<Vec<u8>> = router
        .query(redis::cmd("KEYS").arg("scan:*"))
        .await
        .expect("KEYS");
    listed.sort();
    let mut expected = keys.clone();
    expected.sort();
    assert_eq!(listed, expected);

    // SCAN: every key once, MATCH, COUNT and TYPE passed through.
    let scan = |pattern: Option<&'static str>, kind: Option<&'static str>| {
        let router = router.clone();
        async move {
            let mut seen: Vec<Vec<u8>> = Vec::new();
            let mut cursor = "0".to_string();
            let mut calls = 0;
            loop {
                let mut cmd = redis::cmd("SCAN");
                cmd.arg(&cursor).arg("COUNT").arg(20);
                if let Some(p) = pattern {
                    cmd.arg("MATCH").arg(p);
                }
                if let Some(t) = kind {
                    cmd.arg("TYPE").arg(t);
                }
                let (next, batch): (String, Vec<Vec<u8>>) = router.query(&cmd).await.expect("SCAN");
                seen.extend(batch);
                calls += 1;
                assert!(calls < 1000, "SCAN does not end");
                if next == "0" {
                    break;
                }
                cursor = next;
            }
            seen.sort();
            seen
        }
    };
    let mut all = expected.clone();
    all.extend(hashes.iter().cloned());
    all.sort();
    assert_eq!(
        scan(None, None).await,
        all,
        "a full SCAN returns each key once"
    );
    assert_eq!(scan(Some("hash:*"), None).await, hashes);
    assert_eq!(scan(None, Some("hash")).await, hashes);
    let bad = router
        .query::<redis::Value>(redis::cmd("SCAN").arg("x1"))
        .await
        .expect_err("a bad cursor");
    assert!(bad.to_string().contains("invalid cursor"), "{bad}");

    // One master in turn.
    for _ in 0..3 {
        let key: Vec<u8> = router
            .query(&redis::cmd("RANDOMKEY"))
            .await
            .expect("RANDOMKEY");
        assert!(all.contains(&key), "{key:?}");
    }

    // PUBLISH on one master in turn: the cluster carries it to every node's subscribers, and
    // the reply counts those of the node that took it (one subscriber on each master here).
    let mut conns: Vec<redis::Connection> = cluster.masters().iter().map(|m| m.conn()).collect();
    let mut subscribers = hotkey_testkit::subscribe_all(&mut conns, "news");
    for n in 0..3 {
        let receivers: i64 = router
            .query(redis::cmd("PUBLISH").arg("news").arg(n))
            .await
            .expect("PUBLISH");
        assert_eq!(receivers, 1, "the subscriber of the master that took it");
    }
    for pubsub in &mut subscribers {
        let mut got: Vec<i64> = (0..3)
            .map(|_| hotkey_testkit::next_payload(pubsub))
            .collect();
        // Published on different nodes, they may arrive in any order.
        got.sort_unstable();
        assert_eq!(got, [0, 1, 2], "every node's subscriber gets every message");
    }

    // Every node, replicas included.
    let sha: String = router
        .query(redis::cmd("SCRIPT").arg("LOAD").arg("return 7"))
        .await
        .expect("SCRIPT LOAD");
    for master in cluster.masters() {
        for node in std::iter::once(master).chain(cluster.replicas(master)) {
            let known: Vec<i64> = redis::cmd("SCRIPT")
                .arg("EXISTS")
                .arg(&sha)
                .query(&mut node.conn())
                .expect("SCRIPT EXISTS");
            assert_eq!(known, [1], "node {} lacks the script", node.port);
        }
    }
    let pong: String = router.query(&redis::cmd("PING")).await.expect("PING");
    assert_eq!(pong, "PONG");

    // Refused, naming the command.
    let refused = router
        .query::<String>(&redis::cmd("INFO"))
        .await
        .expect_err("INFO on a cluster");
    assert_eq!(refused.kind(), ErrorKind::NotRouted, "{refused:?}");
    assert!(refused.to_string().starts_with("INFO: "), "{refused}");
    assert!(!refused.is_retryable());

    // FLUSHALL: every master says OK, and every key is gone.
    let () = router
        .query(&redis::cmd("FLUSHALL"))
        .await
        .expect("FLUSHALL");
    let size: i64 = router.query(&redis::cmd("DBSIZE")).await.expect("DBSIZE");
    assert_eq!(size, 0);

    // master_connection(): the master of slot 0.
    let in_slot_0 = (0u32..)
        .map(|n| format!("k{n}").into_bytes())
        .find(|k| hotkey_protocol::cluster::key_slot(k) == 0)
        .expect("a key of slot 0");
    let mut conn = router
        .master_connection()
        .await
        .expect("master_connection on a cluster");
    let id: String = redis::cmd("CLUSTER")
        .arg("MYID")
        .query_async(&mut conn)
        .await
        .expect("CLUSTER MYID");
    assert_eq!(id, cluster.node_for_key(&in_slot_0).id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pipelines_are_split_by_slot_and_follow_moved_per_command() {
    let cluster = cluster(&[("cache-ttl-ms", "60000")], &[]);
    let router = connect(&cluster, Options::default()).await;
    let (a, b) = keys_on_two_shards(&cluster, "piped");

    // Keys of two shards, one reply ignored, a keyless command: replies in order.
    let mut pipe = redis::pipe();
    pipe.cmd("SET").arg(a.as_slice()).arg("1");
    pipe.cmd("SET").arg(b.as_slice()).arg("2");
    pipe.cmd("INCR").arg("counter:piped").ignore();
    pipe.cmd("GET").arg(a.as_slice());
    pipe.cmd("PING");
    pipe.cmd("GET").arg(b.as_slice());
    pipe.cmd("GET").arg("counter:piped");
    let replies: (String, String, String, String, String, i64) = router
        .query_pipeline(&pipe)
        .await
        .expect("a pipeline over two shards");
    assert_eq!(
        replies,
        (
            "OK".into(),
            "OK".into(),
            "1".into(),
            "PONG".into(),
            "2".into(),
            1
        )
    );
    assert_eq!(direct_get(&cluster, &b).as_deref(), Some(b"2".as_slice()));

    // A hot key's reads in a pipeline come from the cache.
    pin(&cluster, &a);
    wait_for_route(&router, &get(a.as_slice()), Target::Cache).await;
    let hits = router.metrics().cache_hits;
    let mut reads = redis::pipe();
    for _ in 0..10 {
        reads.cmd("GET").arg(a.as_slice());
    }
    let values: Vec<String> = router.query_pipeline(&reads).await.expect("hot reads");
    assert_eq!(values, vec!["1".to_string(); 10]);
    assert!(
        router.metrics().cache_hits >= hits + 9,
        "{}",
        router.metrics()
    );

    // b's slot moves under the router: its pipelined write and read follow MOVED.
    let slot = hotkey_protocol::cluster::key_slot(&b);
    let from = cluster.node_for_key(&b);
    let to = cluster.other_master(from);
    cluster.migrate_slot(slot, from, to);
    let mut moved = redis::pipe();
    moved.cmd("INCR").arg(b.as_slice());
    moved.cmd("GET").arg(b.as_slice());
    let (n, read): (i64, String) = router
        .query_pipeline(&moved)
        .await
        .expect("a pipeline into a moved slot");
    assert_eq!((n, read.as_str()), (3, "3"));

    // A transaction stays in one slot.
    let mut multi = redis::pipe();
    multi.atomic().cmd("SET").arg(a.as_slice()).arg("x");
    multi.cmd("SET").arg(b.as_slice()).arg("y");
    let crossed = router
        .query_pipeline::<()>(&multi)
        .await
        .expect_err("a transaction across slots");
    assert!(matches!(crossed, Error::CrossSlot), "{crossed:?}");

    // b's slot moves again: a transaction on it is redirected whole (nothing ran) and follows
    // the MOVED to the new master.
    let from = cluster.node_for_key(&b);
    let to = cluster.other_master(from);
    cluster.migrate_slot(slot, from, to);
    let mut multi = redis::pipe();
    multi.atomic().cmd("INCR").arg(b.as_slice());
    multi.cmd("GET").arg(b.as_slice());
    let (n, read): (i64, String) = router
        .query_pipeline(&multi)
        .await
        .expect("a transaction into a moved slot");
    assert_eq!((n, read.as_str()), (4, "4"), "ran once, on the new master");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slots_pipelined_commands_keep_their_order_and_their_own_error_replies() {
    let cluster = cluster(&[("cache-ttl-ms", "60000")], &[]);
    let router = connect(&cluster, Options::default()).await;

    // Writes and reads of one slot, interleaved: each read sees the writes before it.
    let mut mixed = redis::pipe();
    mixed.cmd("SET").arg("{order}:a").arg("1");
    mixed.cmd("GET").arg("{order}:a");
    mixed.cmd("INCR").arg("{order}:a");
    mixed.cmd("APPEND").arg("{order}:a").arg("x");
    mixed.cmd("GET").arg("{order}:a");
    mixed.cmd("DEL").arg("{order}:a");
    mixed.cmd("GET").arg("{order}:a");
    let replies: (String, String, i64, i64, String, i64, Option<String>) = router
        .query_pipeline(&mixed)
        .await
        .expect("a pipeline of one slot");
    assert_eq!(
        replies,
        ("OK".into(), "1".into(), 2, 2, "2x".into(), 1, None)
    );

    // A hot key served by the cache, written then read in one pipeline: the read is the write's.
    let hot = b"{order}:hot".as_slice();
    let () = router.query(&set(hot, "old")).await.expect("SET");
    pin(&cluster, hot);
    wait_for_route(&router, &get(hot), Target::Cache).await;
    let cached: String = router.query(&get(hot)).await.expect("GET");
    assert_eq!(cached, "old");
    let mut rewrite = redis::pipe();
    rewrite.cmd("GET").arg(hot);
    rewrite.cmd("SET").arg(hot).arg("new").ignore();
    rewrite.cmd("GET").arg(hot);
    let reads: (String, String) = router.query_pipeline(&rewrite).await.expect("rewrite");
    assert_eq!(reads, ("old".into(), "new".into()));

    // A WRONGTYPE in the middle is that command's reply: the commands around it run.
    let mut wrong = redis::pipe();
    wrong.cmd("SET").arg("{order}:s").arg("text");
    wrong.cmd("LPUSH").arg("{order}:s").arg("x");
    wrong.cmd("SET").arg("{order}:t").arg("after");
    wrong.cmd("GET").arg("{order}:t");
    let failed = router
        .query_pipeline::<redis::Value>(&wrong)
        .await
        .expect_err("an error reply is the pipeline's error, as from one server");
    let Error::Redis(e) = failed else {
        panic!("a server's error: {failed:?}");
    };
    let errors = e.into_server_errors().expect("error replies");
    let codes: Vec<(usize, &str)> = errors.iter().map(|(i, e)| (*i, e.code())).collect();
    assert_eq!(codes, vec![(1, "WRONGTYPE")]);
    assert_eq!(
        direct_get(&cluster, b"{order}:t").as_deref(),
        Some(b"after".as_slice())
    );
    wrong.ignore_errors();
    let each: Vec<redis::Value> = router
        .query_pipeline(&wrong)
        .await
        .expect("with ignore_errors, every reply in its place");
    assert_eq!(each.len(), 4, "{each:?}");
    assert!(
        matches!(&each[1], redis::Value::ServerError(e) if e.code() == "WRONGTYPE"),
        "{each:?}"
    );
    assert_eq!(each[3], redis::Value::BulkString(b"after".to_vec()));

    // A hot key read from the replica: a pipeline's reads of it go there (at once), its write
    // to the master, and the read after the write is the write's.
    let replicated = b"{order}:replicated".as_slice();
    let mut conn = cluster.node_for_key(replicated).conn();
    let () = redis::cmd("SET")
        .arg(replicated)
        .arg("r1")
        .query(&mut conn)
        .expect("SET");
    hotkey_testkit::wait_for_acks(&mut conn, 1);
    let to_replicas = connect(&cluster, no_cache()).await;
    pin(&cluster, replicated);
    wait_for_route(&to_replicas, &get(replicated), Target::Replica).await;
    let replica_reads = to_replicas.metrics().replica;
    let mut reads = redis::pipe();
    for _ in 0..5 {
        reads.cmd("GET").arg(replicated);
    }
    reads.cmd("SET").arg(replicated).arg("r2").ignore();
    reads.cmd("GET").arg(replicated);
    let values: Vec<String> = to_replicas
        .query_pipeline(&reads)
        .await
        .expect("reads of a replicated hot key");
    assert_eq!(values, ["r1", "r1", "r1", "r1", "r1", "r2"]);
    assert!(
        to_replicas.metrics().replica >= replica_reads + 5,
        "{}",
        to_replicas.metrics()
    );

    // The slot migrates with one key moved: the source redirects that key's commands (ASK)
    // and runs the other's; neither reaches the caller as a redirection.
    let (x, y) = (b"{order}:x".as_slice(), b"{order}:y".as_slice());
    let slot = hotkey_protocol::cluster::key_slot(x);
    let from = cluster.node_for_key(x);
    let to = cluster.other_master(from);
    let () = router.query(&set(x, "10")).await.expect("SET x");
    let () = router.query(&set(y, "20")).await.expect("SET y");
    cluster.begin_migration(slot, from, to);
    cluster.move_these_keys(from, to, &[x]);
    let mut split = redis::pipe();
    split.cmd("INCR").arg(x);
    split.cmd("INCR").arg(y);
    split.cmd("GET").arg(x);
    split.cmd("GET").arg(y);
    let replies: (i64, i64, String, String) = router
        .query_pipeline(&split)
        .await
        .expect("a pipeline into a migrating slot");
    assert_eq!(replies, (11, 21, "11".into(), "21".into()));
    cluster.move_keys(slot, from, to);
    cluster.finish_migration(slot, from, to);
    let mut after = redis::pipe();
    after.cmd("INCR").arg(x);
    after.cmd("GET").arg(y);
    let replies: (i64, String) = router
        .query_pipeline(&after)
        .await
        .expect("a pipeline into the moved slot");
    assert_eq!(replies, (12, "21".into()));
}
