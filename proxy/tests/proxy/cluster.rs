//! `hotkey-proxy --cluster` in front of a real Redis Cluster (3 masters × 1 replica): the
//! cluster answers as one server (keyed commands by slot, multi-key commands split and merged,
//! keyless ones by the shared rule, `SCAN` over every master), a slot that moves under its hot,
//! cached key is followed without a redirection or a stale read reaching the client, a manual
//! failover (`CLUSTER FAILOVER`) under writes leaks no error, and a killed master is replaced
//! with errors only while its slots have no owner.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hotkey_testkit::{Cluster, Node, check, wait_until};
use redis::{Connection, Value};

use crate::common::{Proxy, WAIT};

/// A cluster with the module on every node, detection off (keys are hot when pinned).
fn cluster(args: &[(&str, &str)], server_args: &[&str]) -> Cluster {
    let builder = Cluster::builder(3, 1)
        .module_arg("hot-threshold", "1000000000")
        .server_args(&["--repl-diskless-sync-delay", "0"])
        .server_args(server_args);
    args.iter()
        .fold(builder, |b, (name, value)| b.module_arg(name, value))
        .start()
}

/// The proxy in front of `cluster`, seeded with one node only (it finds the others).
fn proxy(cluster: &Cluster, args: &[&str]) -> Proxy {
    let seed = cluster.urls()[0].clone();
    let mut all = vec!["--cluster"];
    all.extend_from_slice(args);
    Proxy::start_with(&[seed.as_str()], &all)
}

fn error_text(e: &redis::RedisError) -> String {
    format!("{} {}", e.code().unwrap_or(""), e.detail().unwrap_or(""))
}

/// Keys `<prefix>:<n>` until every master serves at least one.
fn keys_on_every_shard(cluster: &Cluster, prefix: &str, at_least: usize) -> Vec<String> {
    let masters = cluster.masters().len();
    let mut keys = Vec::new();
    let mut owners = BTreeSet::new();
    for n in 0.. {
        let key = format!("{prefix}:{n}");
        owners.insert(cluster.node_for_key(key.as_bytes()).id.clone());
        keys.push(key);
        if owners.len() == masters && keys.len() >= at_least {
            break;
        }
    }
    keys
}

#[test]
fn a_cluster_behind_the_proxy_answers_as_one_server() {
    // No cache advised: hot reads go to replicas.
    let cluster = cluster(&[("cache-ttl-ms", "0")], &[]);
    let proxy = proxy(&cluster, &[]);
    let keys = keys_on_every_shard(&cluster, "user", 10);
    for conn in [&mut proxy.conn(), &mut proxy.conn_resp3()] {
        let _: () = redis::cmd("FLUSHALL").query(conn).expect("FLUSHALL");
        // MSET over every shard, then each key is on the master of its slot.
        let mut mset = redis::cmd("MSET");
        for key in &keys {
            mset.arg(key).arg(format!("v-{key}"));
        }
        let reply: String = mset.query(conn).expect("MSET over three shards");
        assert_eq!(reply, "OK");
        for key in &keys {
            let direct: Option<String> = redis::cmd("GET")
                .arg(key)
                .query(&mut cluster.node_for_key(key.as_bytes()).conn())
                .expect("GET on the key's master");
            assert_eq!(direct, Some(format!("v-{key}")));
        }
        // MGET in key order, a missing key and a repeated one included.
        let mut asked: Vec<&str> = keys.iter().map(String::as_str).collect();
        asked.insert(3, "missing");
        asked.push(&keys[0]);
        let values: Vec<Option<String>> = redis::cmd("MGET")
            .arg(&asked)
            .query(conn)
            .expect("MGET over three shards");
        let expected: Vec<Option<String>> = asked
            .iter()
            .map(|k| (*k != "missing").then(|| format!("v-{k}")))
            .collect();
        assert_eq!(values, expected);
        let counted = |conn: &mut Connection, name: &str, keys: &[&str]| -> i64 {
            redis::cmd(name)
                .arg(keys)
                .query(conn)
                .unwrap_or_else(|e| panic!("{name}: {e}"))
        };
        assert_eq!(counted(conn, "EXISTS", &asked), keys.len() as i64 + 1);
        assert_eq!(counted(conn, "TOUCH", &asked[..5]), 4);
        assert_eq!(counted(conn, "UNLINK", &asked[..2]), 2);
        assert_eq!(counted(conn, "DEL", &asked), keys.len() as i64 - 2);
        assert_eq!(counted(conn, "EXISTS", &asked), 0);

        // Other commands over several slots are refused as a cluster refuses them.
        let e = redis::cmd("SUNION")
            .arg(&keys[..])
            .query::<Value>(conn)
            .expect_err("SUNION over three shards");
        assert_eq!(
            error_text(&e),
            "CROSSSLOT Keys in request don't hash to the same slot"
        );
        let e = redis::cmd("EVAL")
            .arg("return 1")
            .arg(keys.len())
            .arg(&keys[..])
            .query::<Value>(conn)
            .expect_err("a script over three shards");
        assert_eq!(e.code(), Some("CROSSSLOT"), "{e}");
    }

    let mut conn = proxy.conn();
    let _: () = redis::cmd("MSET")
        .arg(
            keys.iter()
                .flat_map(|k| [k.as_str(), "1"])
                .collect::<Vec<_>>(),
        )
        .query(&mut conn)
        .expect("MSET");
    // Keyless commands by the shared rule, each counted once by route in the metrics: the
    // proxy's answer on `local`, one sent to every master on `master` (and on each master's
    // own count).
    let counts = || {
        let text = proxy.metrics();
        let sample = |prefix: &str| -> f64 {
            text.lines()
                .filter(|l| l.starts_with(prefix))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        (
            sample("hotkey_proxy_commands_total{route=\"local\"}"),
            sample("hotkey_proxy_commands_total{route=\"master\"}"),
            sample("hotkey_proxy_upstream_master_commands_total{"),
        )
    };
    let before = counts();
    let pong: String = redis::cmd("PING").query(&mut conn).expect("PING");
    assert_eq!(pong, "PONG");
    let size: usize = redis::cmd("DBSIZE").query(&mut conn).expect("DBSIZE");
    assert_eq!(size, keys.len());
    let all: BTreeSet<String> = redis::cmd("KEYS")
        .arg("user:*")
        .query(&mut conn)
        .expect("KEYS");
    assert_eq!(all, keys.iter().cloned().collect());
    let after = counts();
    assert_eq!(
        (after.0 - before.0, after.1 - before.1, after.2 - before.2),
        (1.0, 2.0, 6.0),
        "PING, then DBSIZE and KEYS on each of the 3 masters: {before:?} -> {after:?}"
    );
    let mut scanned = Vec::new();
    let mut cursor = 0u64;
    let mut pages = 0;
    loop {
        let (next, page): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(2)
            .query(&mut conn)
            .expect("SCAN");
        scanned.extend(page);
        pages += 1;
        cursor = next;
        if cursor == 0 {
            break;
        }
        assert!(pages < 1000, "SCAN does not end");
    }
    scanned.sort();
    let mut expected = keys.clone();
    expected.sort();
    assert_eq!(
        scanned, expected,
        "SCAN returns every key of every master once"
    );
    let e = redis::cmd("SCAN")
        .arg("nope")
        .query::<Value>(&mut conn)
        .expect_err("a bad cursor");
    assert_eq!(error_text(&e), "ERR invalid cursor");
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query(&mut conn)
        .expect("INFO");
    assert!(info.contains("redis_version"), "{info}");
    let e = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("1")
        .query::<Value>(&mut conn)
        .expect_err("CONFIG SET on a cluster");
    assert!(
        e.to_string().contains("'config' names no key"),
        "{}",
        e.to_string()
    );
    // PUBLISH goes to one master, and the cluster carries it to every node's subscribers:
    // one through the proxy (a connection of its own to a master) and one on each master.
    let mut through = proxy.conn();
    let mut direct: Vec<Connection> = cluster.masters().iter().map(|m| m.conn()).collect();
    let mut subscribers =
        hotkey_testkit::subscribe_all(std::iter::once(&mut through).chain(&mut direct), "news");
    let receivers: i64 = redis::cmd("PUBLISH")
        .arg("news")
        .arg("hello")
        .query(&mut conn)
        .expect("PUBLISH on a cluster");
    assert!(
        (1..=2).contains(&receivers),
        "the subscribers of the master that took it: {receivers}"
    );
    for pubsub in &mut subscribers {
        let message: String = hotkey_testkit::next_payload(pubsub);
        assert_eq!(message, "hello", "every subscriber gets the message");
    }
    drop(subscribers);
    let _: () = redis::cmd("FLUSHDB").query(&mut conn).expect("FLUSHDB");
    let size: usize = redis::cmd("DBSIZE").query(&mut conn).expect("DBSIZE");
    assert_eq!(size, 0);

    // A transaction in one slot runs on its master; one over two slots runs nothing.
    let (a, b) = (keys[0].as_str(), keys[1].as_str());
    let ran: (String, i64) = redis::pipe()
        .atomic()
        .set(format!("{{{a}}}:x"), "1")
        .incr(a, 5)
        .query(&mut conn)
        .expect("a transaction in one slot");
    assert_eq!(ran, ("OK".to_string(), 5));
    let step = |conn: &mut Connection, cmd: &mut redis::Cmd| -> Result<Value, String> {
        cmd.query::<Value>(conn).map_err(|e| error_text(&e))
    };
    assert_eq!(step(&mut conn, &mut redis::cmd("MULTI")), Ok(Value::Okay));
    assert_eq!(
        step(&mut conn, redis::cmd("SET").arg(a).arg("2")),
        Ok(Value::SimpleString("QUEUED".into()))
    );
    assert_eq!(
        step(&mut conn, redis::cmd("SET").arg(b).arg("2")),
        Err("CROSSSLOT Keys in request don't hash to the same slot".into())
    );
    assert_eq!(
        step(&mut conn, &mut redis::cmd("EXEC")),
        Err("EXECABORT Transaction discarded because of previous errors.".into())
    );
    let kept: i64 = redis::cmd("GET").arg(a).query(&mut conn).expect("GET");
    assert_eq!(kept, 5, "nothing of the refused transaction ran");

    // A hot key's reads go to a replica of its own shard (READONLY there).
    let hot = keys[2].as_str();
    let owner = cluster.node_for_key(hot.as_bytes());
    let replica = cluster.replicas(owner)[0];
    // Written directly: a write through the proxy would keep this client's reads of the key on
    // the master for a while (read-your-writes).
    let _: () = redis::cmd("SET")
        .arg(hot)
        .arg("hot")
        .query(&mut owner.conn())
        .expect("SET");
    hotkey_testkit::wait_for_acks(&mut owner.conn(), 1);
    hotkey_testkit::pin(&mut owner.conn(), hot.as_bytes(), &[]);
    wait_until("the hot key's reads reach its replica", WAIT, || {
        let v: String = redis::cmd("GET")
            .arg(hot)
            .query(&mut conn)
            .expect("GET of the hot key");
        assert_eq!(v, "hot");
        let served = get_calls(replica);
        check(served > 0, || served)
    });

    // SCRIPT LOAD reaches every master and every replica in rotation (it is not replicated:
    // a replica that takes over must have it too). Replicas join the rotation as each
    // shard's module reports them, so ask until all have it.
    let nodes: Vec<&Node> = cluster
        .masters()
        .into_iter()
        .flat_map(|m| std::iter::once(m).chain(cluster.replicas(m)))
        .collect();
    let mut sha = String::new();
    wait_until("SCRIPT LOAD reaches every node", WAIT, || {
        sha = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg("return 'proxied'")
            .query(&mut conn)
            .expect("SCRIPT LOAD");
        let missing: Vec<u16> = nodes
            .iter()
            .filter(|node| {
                let known: Vec<i64> = redis::cmd("SCRIPT")
                    .arg("EXISTS")
                    .arg(&sha)
                    .query(&mut node.conn())
                    .expect("SCRIPT EXISTS");
                known != [1]
            })
            .map(|node| node.port)
            .collect();
        check(missing.is_empty(), || missing.clone())
    });
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query(&mut conn)
        .expect("SCRIPT FLUSH");
    for node in &nodes {
        let known: Vec<i64> = redis::cmd("SCRIPT")
            .arg("EXISTS")
            .arg(&sha)
            .query(&mut node.conn())
            .expect("SCRIPT EXISTS");
        assert_eq!(known, [0], "node {} kept the script", node.port);
    }
}

/// `GET`s `node` has executed (`INFO commandstats`).
fn get_calls(node: &Node) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut node.conn())
        .expect("INFO commandstats");
    info.lines()
        .find_map(|l| l.trim().strip_prefix("cmdstat_get:calls="))
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

/// Reads `key` through the proxy until stopped; every reply (or error) in order.
struct Reader {
    stop: Arc<AtomicBool>,
    task: std::thread::JoinHandle<Vec<Result<Option<String>, String>>>,
}

impl Reader {
    fn start(proxy: &Proxy, key: &str) -> Reader {
        let (stop, mut conn, key) = (
            Arc::new(AtomicBool::new(false)),
            proxy.conn(),
            key.to_string(),
        );
        let stopped = stop.clone();
        let task = std::thread::spawn(move || {
            let mut reads = Vec::new();
            while !stopped.load(Ordering::Relaxed) {
                let read = redis::cmd("GET")
                    .arg(&key)
                    .query::<Option<String>>(&mut conn)
                    .map_err(|e| e.to_string());
                reads.push(read);
            }
            reads
        });
        Reader { stop, task }
    }

    fn stop(self) -> Vec<Result<Option<String>, String>> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.join().expect("reader")
    }
}

#[test]
fn a_slot_moving_under_its_hot_cached_key_is_followed_without_redirections_or_stale_reads() {
    let cluster = cluster(&[("cache-ttl-ms", "60000")], &[]);
    let key = "moving:hot";
    let slot = hotkey_protocol::cluster::key_slot(key.as_bytes());
    let from = cluster.node_for_key(key.as_bytes());
    let to = cluster.other_master(from);
    let proxy = proxy(&cluster, &[]);
    let mut conn = proxy.conn();
    let _: () = redis::cmd("SET")
        .arg(key)
        .arg("v1")
        .query(&mut conn)
        .expect("SET");
    hotkey_testkit::pin(&mut from.conn(), key.as_bytes(), &[]);
    proxy.wait_for_cache_hit(&mut conn, key.as_bytes());
    let reader = Reader::start(&proxy, key);

    // Migrating: a write through the proxy meets ASK (the key moved) or MOVED, and follows it.
    cluster.begin_migration(slot, from, to);
    cluster.move_keys(slot, from, to);
    let _: () = redis::cmd("SET")
        .arg(key)
        .arg("v2")
        .query(&mut conn)
        .expect("SET during the migration");
    cluster.finish_migration(slot, from, to);
    // Once the new owner has a value, the proxy reads it, never an older one.
    let _: () = redis::cmd("SET")
        .arg(key)
        .arg("v3")
        .query(&mut to.conn())
        .expect("SET on the new owner");
    let read: Option<String> = redis::cmd("GET").arg(key).query(&mut conn).expect("GET");
    assert_eq!(read.as_deref(), Some("v3"));
    let reads = reader.stop();
    let errors: Vec<&String> = reads.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(errors.is_empty(), "errors reached the reader: {errors:?}");
    let values: Vec<&str> = reads
        .iter()
        .filter_map(|r| r.as_ref().ok().and_then(|v| v.as_deref()))
        .collect();
    assert!(values.contains(&"v1"), "{values:?}");
    let back = values.windows(2).find(|w| w[1] < w[0]);
    assert_eq!(back, None, "a read went back to an older value: {values:?}");
    // And a write through the proxy lands on the new owner.
    let _: () = redis::cmd("SET")
        .arg(key)
        .arg("v4")
        .query(&mut conn)
        .expect("SET after the move");
    let direct: Option<String> = redis::cmd("GET")
        .arg(key)
        .query(&mut to.conn())
        .expect("GET on the new owner");
    assert_eq!(direct.as_deref(), Some("v4"));
}

/// `INCR key` through the proxy until stopped: each outcome with the time it was sent.
fn write_until(
    proxy: &Proxy,
    key: &str,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<(Instant, Result<i64, String>)>> {
    let (mut conn, key) = (proxy.conn(), key.to_string());
    std::thread::spawn(move || {
        let mut outcomes = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let sent = Instant::now();
            let outcome = redis::cmd("INCR")
                .arg(&key)
                .query::<i64>(&mut conn)
                .map_err(|e| e.to_string());
            outcomes.push((sent, outcome));
        }
        outcomes
    })
}

#[test]
fn a_killed_master_is_replaced_with_errors_only_while_its_slots_have_no_owner() {
    let node_timeout = Duration::from_millis(1000);
    let cluster = cluster(&[], &["--cluster-node-timeout", "1000"]);
    let proxy = proxy(&cluster, &["--upstream-timeout", "1s"]);
    let key = "counter";
    let old: &Node = cluster.node_for_key(key.as_bytes());
    let stop = Arc::new(AtomicBool::new(false));
    let writer = write_until(&proxy, key, stop.clone());
    let mut conn = proxy.conn();
    wait_until("the writer's INCRs go through", WAIT, || {
        let n: Option<i64> = redis::cmd("GET").arg(key).query(&mut conn).expect("GET");
        check(n.unwrap_or(0) > 10, || n)
    });
    // Taken once the old master is reaped: an INCR sent after it cannot have run there.
    cluster.kill(old);
    let killed = Instant::now();
    let new = cluster.wait_for_failover(old);
    let owned = Instant::now();
    // Routing is right again within the node timeout + 2 s of the new owner taking the slot.
    wait_until("an INCR through the proxy succeeds again", WAIT, || {
        let n = redis::cmd("INCR").arg(key).query::<i64>(&mut conn);
        check(n.is_ok(), || n)
    });
    let recovered = owned.elapsed();
    let bound = node_timeout + Duration::from_secs(2);
    assert!(
        recovered <= bound,
        "routing took {recovered:?} after the new master took over"
    );
    stop.store(true, Ordering::Relaxed);
    let outcomes = writer.join().expect("writer");
    // No false success: an INCR sent after the kill ran on the new master (the old one was
    // dead), so those values only grow and the new master has the last of them. (INCRs
    // answered by the old master in its last moment may be lost with it: replication is
    // asynchronous.)
    let acked: Vec<i64> = outcomes
        .iter()
        .filter(|(at, _)| *at > killed)
        .filter_map(|(_, r)| r.as_ref().ok().copied())
        .collect();
    assert!(
        acked.windows(2).all(|w| w[0] < w[1]),
        "INCRs acknowledged after the kill: {acked:?}"
    );
    let last = *acked.last().expect("INCRs acknowledged after the failover");
    let now: i64 = redis::cmd("GET")
        .arg(key)
        .query(&mut new.conn())
        .expect("GET on the new master");
    assert!(now >= last, "acknowledged {last}, the new master has {now}");
    // Errors only while the slot had no owner (and until the proxy saw the new one).
    let late: Vec<&(Instant, Result<i64, String>)> = outcomes
        .iter()
        .filter(|(at, r)| r.is_err() && *at > owned + bound)
        .collect();
    assert!(
        late.is_empty(),
        "errors after the new owner took over: {late:?}"
    );
}

/// `ROLE`'s first word on `node`: `master` or `slave`.
fn role(node: &Node) -> Vec<u8> {
    let role: Vec<Value> = redis::cmd("ROLE").query(&mut node.conn()).expect("ROLE");
    match role.first() {
        Some(Value::BulkString(word)) => word.clone(),
        other => panic!("ROLE on port {}: {other:?}", node.port),
    }
}

#[test]
fn a_manual_failover_under_writes_leaks_no_error_and_loses_no_acknowledged_write() {
    let cluster = cluster(&[], &["--cluster-node-timeout", "1000"]);
    let proxy = proxy(&cluster, &[]);
    let key = "counter";
    let old = cluster.node_for_key(key.as_bytes());
    let replica = cluster.replicas(old)[0];
    let stop = Arc::new(AtomicBool::new(false));
    let writer = write_until(&proxy, key, stop.clone());
    let mut conn = proxy.conn();
    wait_until("the writer's INCRs go through", WAIT, || {
        let n: Option<i64> = redis::cmd("GET").arg(key).query(&mut conn).expect("GET");
        check(n.unwrap_or(0) > 10, || n)
    });
    // A manual failover that got no votes gives up after a while: asked again until done.
    wait_until(
        "the replica takes over (CLUSTER FAILOVER)",
        WAIT * 2,
        || {
            if role(replica) != b"master" {
                let _: Result<(), _> = redis::cmd("CLUSTER")
                    .arg("FAILOVER")
                    .query(&mut replica.conn());
            }
            let deadline = Instant::now() + Duration::from_secs(6);
            while Instant::now() < deadline && role(replica) != b"master" {
                std::thread::sleep(Duration::from_millis(50));
            }
            check(role(replica) == b"master" && role(old) == b"slave", || {
                (role(replica), role(old))
            })
        },
    );
    // The writer goes on on the new master.
    let switched: i64 = redis::cmd("GET")
        .arg(key)
        .query(&mut replica.conn())
        .expect("GET on the new master");
    wait_until("INCRs reach the new master", WAIT, || {
        let n: i64 = redis::cmd("GET")
            .arg(key)
            .query(&mut replica.conn())
            .expect("GET on the new master");
        check(n > switched + 10, || n)
    });
    stop.store(true, Ordering::Relaxed);
    let outcomes = writer.join().expect("writer");
    let errors: Vec<&String> = outcomes
        .iter()
        .filter_map(|(_, r)| r.as_ref().err())
        .collect();
    assert!(errors.is_empty(), "the failover leaked errors: {errors:?}");
    let acked: Vec<i64> = outcomes
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok().copied())
        .collect();
    assert!(
        acked.windows(2).all(|w| w[0] < w[1]),
        "acknowledged INCRs went back: {acked:?}"
    );
    let now: i64 = redis::cmd("GET")
        .arg(key)
        .query(&mut replica.conn())
        .expect("GET on the new master");
    let last = *acked.last().expect("INCRs acknowledged");
    assert!(now >= last, "acknowledged {last}, the new master has {now}");
}
