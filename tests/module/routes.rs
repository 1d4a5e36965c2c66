//! HOTKEY.ROUTE and HOTKEY.ROUTES against a master with two replicas; ACL and bad arguments of
//! the new commands.
//!
//! Replies are read with the protocol crate's parsers (`Route::from_redis`,
//! `Routes::from_redis`), the ones a router uses, under RESP2 and RESP3. Replicas come and go
//! through the master's `INFO replication`, which the module reads on every tick, so every
//! change is waited for with a generous deadline and never timed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use hotkey::commands::CommandError;
use hotkey_protocol::{
    Address, Advice, DEFAULT_CHANNEL, Event, HotKey, Message, ReadsTo, Role, Route, Routes,
};
use redis::{Connection, Value};

use hotkey_testkit::{
    Server, Subscriber, error_text, event_key, info_hotkey, info_number, pin, show, top_all,
    wait_for_replicas, wait_until,
};

/// Deadline for anything that takes a tick or a replica's acknowledgement (~1 s) to show.
const WAIT: Duration = Duration::from_secs(10);

/// `hotkey.cache-ttl-ms`'s default: the TTL advised for read-hot keys that are not write-hot.
const CACHE_TTL_MS: u64 = 100;

/// The module's reply to a key the caller may not read.
const NO_PERMISSION: &str = CommandError::NoPermission.as_str();

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// `HOTKEY.ROUTE key <args…>`, raw.
fn route_raw(conn: &mut Connection, key: &[u8], args: &[&str]) -> Value {
    redis::cmd("HOTKEY.ROUTE")
        .arg(key)
        .arg(args)
        .query(conn)
        .unwrap_or_else(|e| {
            panic!(
                "HOTKEY.ROUTE {} {}: {e}",
                String::from_utf8_lossy(key),
                args.join(" ")
            )
        })
}

/// `HOTKEY.ROUTE key <args…>`, parsed as a router would.
fn route(conn: &mut Connection, key: &[u8], args: &[&str]) -> Route {
    let reply = route_raw(conn, key, args);
    Route::from_redis(&reply).unwrap_or_else(|e| panic!("HOTKEY.ROUTE reply {reply:?}: {e}"))
}

/// `HOTKEY.ROUTES`, raw.
fn routes_raw(conn: &mut Connection) -> Value {
    redis::cmd("HOTKEY.ROUTES")
        .query(conn)
        .unwrap_or_else(|e| panic!("HOTKEY.ROUTES: {e}"))
}

/// `HOTKEY.ROUTES`, parsed as a router would.
fn routes(conn: &mut Connection) -> Routes {
    let reply = routes_raw(conn);
    Routes::from_redis(&reply).unwrap_or_else(|e| panic!("HOTKEY.ROUTES reply {reply:?}: {e}"))
}

/// The healthy replicas' ports in ROUTES, sorted.
fn replica_ports(routes: &Routes) -> Vec<u16> {
    let mut ports: Vec<u16> = routes.replicas.iter().map(|r| r.port).collect();
    ports.sort_unstable();
    ports
}

/// The entry of `key` (database 0) in ROUTES, if listed.
fn hot_key<'a>(routes: &'a Routes, key: &[u8]) -> Option<&'a HotKey> {
    routes.keys.iter().find(|k| k.db == 0 && k.key == key)
}

/// The entry of `key` in ROUTES; panics with the whole snapshot when it is missing.
fn must_be_hot<'a>(routes: &'a Routes, key: &[u8]) -> &'a HotKey {
    hot_key(routes, key).unwrap_or_else(|| {
        panic!(
            "{:?} is not in HOTKEY.ROUTES: {routes:#?}",
            String::from_utf8_lossy(key)
        )
    })
}

/// `HOTKEY.UNPIN key` → 1 when the key was pinned, else 0.
fn unpin(conn: &mut Connection, key: &[u8]) -> i64 {
    redis::cmd("HOTKEY.UNPIN")
        .arg(key)
        .query(conn)
        .unwrap_or_else(|e| panic!("HOTKEY.UNPIN {}: {e}", String::from_utf8_lossy(key)))
}

/// Runs a command that must fail and returns the error text.
fn error_of(conn: &mut Connection, args: &[&[u8]]) -> String {
    let mut cmd = redis::cmd(&String::from_utf8_lossy(args[0]));
    for a in &args[1..] {
        cmd.arg(*a);
    }
    match cmd.query::<Value>(conn) {
        Ok(v) => panic!("{} should have failed, got {v:?}", shown(args)),
        Err(e) => error_text(&e),
    }
}

/// A command's arguments for messages, shortened.
fn shown(args: &[&[u8]]) -> String {
    let words: Vec<String> = args
        .iter()
        .map(|a| {
            let s = String::from_utf8_lossy(a);
            if s.len() > 20 {
                format!("<{} bytes>", a.len())
            } else {
                format!("{s:?}")
            }
        })
        .collect();
    words.join(" ")
}

/// Asserts that the server still answers on `conn` (after an error, say).
fn assert_alive(conn: &mut Connection, after: &str) {
    let pong: String = redis::cmd("PING")
        .query(conn)
        .unwrap_or_else(|e| panic!("PING after {after}: {e}"));
    assert_eq!(pong, "PONG", "PING after {after}");
}

fn acl_setuser(conn: &mut Connection, rules: &[&str]) {
    let () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg(rules)
        .query(conn)
        .unwrap_or_else(|e| panic!("ACL SETUSER {}: {e}", rules.join(" ")));
}

/// The ports of a `replicas` event, sorted; None for other events.
fn replicas_event_ports(m: &Message) -> Option<Vec<u16>> {
    match &m.event {
        Event::Replicas(r) => {
            let mut ports: Vec<u16> = r.replicas.iter().map(|r| r.port).collect();
            ports.sort_unstable();
            Some(ports)
        }
        _ => None,
    }
}

/// The first message within `timeout` that `want` accepts; panics with every message seen
/// before it otherwise.
fn wait_event(sub: &Subscriber, what: &str, want: impl FnMut(&Message) -> bool) -> Message {
    let mut seen = Vec::new();
    match sub.wait_for(WAIT, want, |m| seen.push(m.clone())) {
        Some((_, m)) => m,
        None => panic!("no {what} event within {WAIT:?}; saw {seen:#?}"),
    }
}

/// A master route: where writes, cold keys and reads without a healthy replica go.
fn to_master(port: u16, hot: bool, cache_ttl_ms: u64) -> Route {
    Route::new(Role::Master, "127.0.0.1", port, hot, cache_ttl_ms)
}

/// A route to the replica on `port`, for a read of a read-hot (not write-hot) key.
fn to_replica(port: u16) -> Route {
    Route::new(Role::Replica, "127.0.0.1", port, true, CACHE_TTL_MS)
}

/// A master for replicas. Without delay before a diskless sync: by default the master waits
/// 5 s for more replicas before each full sync, which would make each replica take 5 s to start.
fn start_master() -> Server {
    Server::builder()
        .server_args(&["--repl-diskless-sync-delay", "0"])
        .start()
}

/// A replica of `master`, with the module loaded too, once its link is up. Each test keeps its
/// replicas in locals declared after the master's, so they drop first: a master shutting down
/// with replicas attached may wait for them.
fn start_replica(master: &Server) -> Server {
    Server::builder().replica_of(master).start()
}

/// Sends one command over and over from its own thread and connection at about `per_sec`,
/// pipelined in batches (as `hotkey_testkit::load`), until stopped or dropped.
struct Loader {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<u64, String>>>,
}

impl Loader {
    fn start(server: &Server, command: &[&[u8]], per_sec: u64) -> Loader {
        let mut conn = server.conn();
        let command: Vec<Vec<u8>> = command.iter().map(|a| a.to_vec()).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = thread::spawn(move || {
            let start = Instant::now();
            let mut sent = 0u64;
            while !stopped.load(Ordering::Relaxed) {
                let due = (start.elapsed().as_secs_f64() * per_sec as f64) as u64;
                if sent >= due {
                    thread::sleep(Duration::from_millis(1));
                    continue;
                }
                let batch = (due - sent).min(200);
                let mut pipe = redis::pipe();
                for _ in 0..batch {
                    pipe.cmd(&String::from_utf8_lossy(&command[0]));
                    for a in &command[1..] {
                        pipe.arg(a);
                    }
                    pipe.ignore();
                }
                pipe.query::<()>(&mut conn)
                    .map_err(|e| format!("load stopped after {sent} commands: {e}"))?;
                sent += batch;
            }
            Ok(sent)
        });
        Loader {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the load; the number of commands sent, or why the load failed.
    fn stop(mut self) -> Result<u64, String> {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread.take().expect("the loader's thread");
        thread
            .join()
            .unwrap_or_else(|_| Err("the load thread panicked".into()))
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// Reads of a read-hot key rotate over the healthy replicas; writes and cold keys stay on the
/// master; the reply has the same fields under RESP2 and RESP3.
#[test]
fn hot_reads_spread_over_both_replicas() {
    let master = start_master();
    let replica_a = start_replica(&master);
    let replica_b = start_replica(&master);
    let mut conn = master.conn();
    let snapshot = wait_for_replicas(&mut conn, &[replica_a.port, replica_b.port], WAIT);
    assert_eq!(
        snapshot.master,
        Address::new("127.0.0.1", master.port),
        "ROUTES names the master as the caller reached it: {snapshot:#?}"
    );
    for r in &snapshot.replicas {
        // A replica's address is what the master saw it connect from; lag is whole seconds.
        assert_eq!(r.host, "127.0.0.1", "{snapshot:#?}");
        assert!(
            r.lag_ms <= 2000 && r.lag_ms % 1000 == 0,
            "a healthy replica's lag is at most max-replica-lag-ms, in whole seconds: {snapshot:#?}"
        );
    }

    let key = b"spread:pinned";
    pin(&mut conn, key, &[]);
    let advice = must_be_hot(&routes(&mut conn), key).advice;
    assert_eq!(
        advice,
        Advice::new(ReadsTo::Replicas, CACHE_TTL_MS)
            .read_hot(true)
            .pinned(true),
        "a pinned key is read-hot, and with healthy replicas its reads go to them"
    );

    let mut conn3 = master.conn_resp3();
    for (protocol, c) in [("RESP2", &mut conn), ("RESP3", &mut conn3)] {
        // The documented shape: a map under RESP3, its flat field–value list under RESP2.
        let raw = route_raw(c, key, &[]);
        match (protocol, &raw) {
            ("RESP2", Value::Array(a)) => assert_eq!(a.len(), 10, "{protocol}: {raw:?}"),
            ("RESP3", Value::Map(m)) => assert_eq!(m.len(), 5, "{protocol}: {raw:?}"),
            _ => panic!("{protocol}: HOTKEY.ROUTE replied {raw:?}"),
        }

        let ports: Vec<u16> = (0..10)
            .map(|_| {
                let r = route(c, key, &[]);
                assert_eq!(
                    r,
                    to_replica(r.port),
                    "{protocol}: a read of a read-hot key goes to a replica"
                );
                r.port
            })
            .collect();
        for replica in [replica_a.port, replica_b.port] {
            assert_eq!(
                ports.iter().filter(|&&p| p == replica).count(),
                5,
                "{protocol}: 10 reads over 2 replicas give each 5: {ports:?} \
                 (replicas {} and {})",
                replica_a.port,
                replica_b.port
            );
        }
        assert!(
            ports.windows(2).all(|w| w[0] != w[1]),
            "{protocol}: round-robin alternates between the two: {ports:?}"
        );
        let explicit = route(c, key, &["READ"]);
        assert_eq!(
            explicit,
            to_replica(explicit.port),
            "{protocol}: READ is the default"
        );

        assert_eq!(
            route(c, key, &["WRITE"]),
            to_master(master.port, true, 0),
            "{protocol}: writes go to the master, never cached"
        );
        assert_eq!(
            route(c, b"spread:cold", &[]),
            to_master(master.port, false, 0),
            "{protocol}: a cold key's reads stay on the master"
        );
        assert_eq!(
            route(c, b"spread:cold", &["WRITE"]),
            to_master(master.port, false, 0),
            "{protocol}: a cold key's writes go to the master"
        );
    }

    // A detected key (not pinned) is routed the same way while its reads keep it hot.
    let loaded = b"spread:loaded";
    let load = Loader::start(&master, &[b"GET", loaded], 3000);
    let entry = wait_until("the loaded key in ROUTES", WAIT, || {
        let r = routes(&mut conn);
        hot_key(&r, loaded)
            .cloned()
            .ok_or_else(|| format!("{r:#?}"))
    });
    assert!(
        entry.advice.read_hot && !entry.advice.pinned && entry.advice.reads_to == ReadsTo::Replicas,
        "a key ROUTES shows read at {}/s (the load aims at 3000/s) is read-hot and its reads \
         go to the replicas: {entry:?}",
        entry.reads_per_sec
    );
    let first = route(&mut conn, loaded, &[]);
    let second = route(&mut conn, loaded, &[]);
    assert_eq!(
        first,
        to_replica(first.port),
        "the detected key's first read"
    );
    assert_eq!(
        second,
        to_replica(second.port),
        "the detected key's second read"
    );
    assert_ne!(
        first.port, second.port,
        "consecutive reads go to different replicas"
    );
    load.stop().expect("the GET load");

    // A replica routes nothing to replicas of its own and names its master for writes.
    let mut on_replica = replica_a.conn();
    assert_eq!(
        route(&mut on_replica, key, &["WRITE"]),
        to_master(master.port, false, 0),
        "on a replica, writes go to its master (from INFO); the pin lives on the master only"
    );
    assert_eq!(
        route(&mut on_replica, key, &[]),
        to_master(master.port, false, 0),
        "on a replica, reads of a key it does not find hot go to the master"
    );
    let seen_by_replica = routes(&mut on_replica);
    assert_eq!(
        (
            seen_by_replica.master.clone(),
            seen_by_replica.replicas.len()
        ),
        (Address::new("127.0.0.1", master.port), 0),
        "a replica's ROUTES names its master and no replicas: {seen_by_replica:#?}"
    );
}

/// A replica that stops acknowledging (blocked in DEBUG SLEEP) leaves the healthy list, with a
/// `replicas` event; reads go to the other one; it comes back once it acknowledges again.
#[test]
fn a_lagging_replica_is_dropped_and_comes_back() {
    let master = start_master();
    let steady = start_replica(&master);
    let sleepy = start_replica(&master);
    let mut conn = master.conn();
    wait_for_replicas(&mut conn, &[steady.port, sleepy.port], WAIT);
    let key = b"lag:pinned";
    pin(&mut conn, key, &[]);
    let sub = Subscriber::new(&master, DEFAULT_CHANNEL);

    // DEBUG SLEEP blocks its caller for the whole sleep: a thread of its own, with a connection
    // of its own. The replica sends no REPLCONF ACK meanwhile, so its INFO lag grows.
    let mut sleeper_conn = sleepy.conn();
    let sleeper = thread::spawn(move || {
        redis::cmd("DEBUG")
            .arg("SLEEP")
            .arg(6)
            .query::<()>(&mut sleeper_conn)
            .map_err(|e| e.to_string())
    });

    wait_for_replicas(&mut conn, &[steady.port], WAIT);
    for i in 0..6 {
        assert_eq!(
            route(&mut conn, key, &[]),
            to_replica(steady.port),
            "read {i} while replica {} lags goes to the other one, {}",
            sleepy.port,
            steady.port
        );
    }
    let dropped = wait_event(&sub, "replicas without the lagging one", |m| {
        replicas_event_ports(m).is_some()
    });
    assert_eq!(
        replicas_event_ports(&dropped),
        Some(vec![steady.port]),
        "the first replicas event after the sleep began lists the steady replica only: {dropped:?}"
    );

    sleeper
        .join()
        .expect("the DEBUG SLEEP thread")
        .expect("DEBUG SLEEP 6 on the replica");
    wait_for_replicas(&mut conn, &[steady.port, sleepy.port], WAIT);
    let back = wait_event(&sub, "replicas with both", |m| {
        replicas_event_ports(m).is_some()
    });
    let mut both = vec![steady.port, sleepy.port];
    both.sort_unstable();
    assert_eq!(
        replicas_event_ports(&back),
        Some(both.clone()),
        "the next replicas event lists both again: {back:?}"
    );
    let mut ports: Vec<u16> = (0..4).map(|_| route(&mut conn, key, &[]).port).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports, both, "reads use the returned replica again");
}

/// A replica that goes away leaves the list at once; with none left, hot reads go to the
/// master and the key's advice says so.
#[test]
fn a_stopped_replica_is_dropped() {
    let master = start_master();
    let first = start_replica(&master);
    let second = start_replica(&master);
    let mut conn = master.conn();
    wait_for_replicas(&mut conn, &[first.port, second.port], WAIT);
    let key = b"stop:pinned";
    pin(&mut conn, key, &[]);
    assert_eq!(
        must_be_hot(&routes(&mut conn), key).advice.reads_to,
        ReadsTo::Replicas,
        "with replicas, the pinned key's reads go to them"
    );
    let sub = Subscriber::new(&master, DEFAULT_CHANNEL);

    let first_port = first.port;
    drop(second);
    wait_for_replicas(&mut conn, &[first_port], WAIT);
    for i in 0..4 {
        assert_eq!(
            route(&mut conn, key, &[]),
            to_replica(first_port),
            "read {i}: only the remaining replica takes reads"
        );
    }

    drop(first);
    let snapshot = wait_for_replicas(&mut conn, &[], WAIT);
    // The same tick that empties the list takes reads off the replicas.
    let advice = must_be_hot(&snapshot, key).advice;
    assert_eq!(
        (advice.reads_to, advice.read_hot, advice.pinned),
        (ReadsTo::Master, true, true),
        "without replicas the read-hot key's reads go to the master: {snapshot:#?}"
    );
    // Still read-hot, so a client cache still spares the master.
    assert_eq!(
        route(&mut conn, key, &[]),
        to_master(master.port, true, CACHE_TTL_MS),
        "a hot read with no healthy replica goes to the master"
    );
    // Subscribers hear it in that order: the empty replica list, then the key's new advice
    // (waiting for them in this order fails if the update came first: it would be passed over).
    wait_event(&sub, "replicas with none", |m| {
        replicas_event_ports(m).is_some_and(|p| p.is_empty())
    });
    wait_event(&sub, "update to reads_to master", |m| {
        matches!(&m.event, Event::Update(k)
            if k.key.bytes().ok().as_deref() == Some(&key[..])
                && k.advice.is_some_and(|a| a.reads_to == ReadsTo::Master))
    });
}

/// A replica is named as it announces itself (`replica-announce-ip`/`-port`, for NAT and
/// containers): that is the address clients must use, not the one the master sees.
#[test]
fn replicas_are_named_as_they_announce_themselves() {
    let master = start_master();
    let replica = Server::builder()
        .replica_of(&master)
        .server_args(&[
            "--replica-announce-ip",
            "10.11.12.13",
            "--replica-announce-port",
            "7777",
        ])
        .start();
    let mut conn = master.conn();
    let snapshot = wait_for_replicas(&mut conn, &[7777], WAIT);
    assert_eq!(
        snapshot.replicas[0].host, "10.11.12.13",
        "the announced address, not 127.0.0.1 (replica on port {}): {snapshot:#?}",
        replica.port
    );
    pin(&mut conn, b"announced:k", &[]);
    assert_eq!(
        route(&mut conn, b"announced:k", &[]),
        Route::new(Role::Replica, "10.11.12.13", 7777, true, CACHE_TTL_MS)
    );
}

/// ROUTE and ROUTES called from a script name the master like a direct call does (a script
/// may decide where its caller goes next). A reply must never name an address that is no
/// node: an error would do, `host ""` and `port 0` do not.
#[test]
fn a_script_gets_a_real_master_address() {
    let server = Server::start();
    let mut conn = server.conn();
    let direct = route(&mut conn, b"script:k", &[]);
    assert_eq!(direct, to_master(server.port, false, 0), "a direct call");

    let via_script: redis::RedisResult<Value> = redis::cmd("EVAL")
        .arg("return redis.call('HOTKEY.ROUTE', KEYS[1])")
        .arg(1)
        .arg("script:k")
        .query(&mut conn);
    let snapshot_via_script: redis::RedisResult<Value> = redis::cmd("EVAL")
        .arg("return redis.call('HOTKEY.ROUTES')")
        .arg(0)
        .query(&mut conn);
    assert_alive(&mut conn, "ROUTE and ROUTES from EVAL");
    // An error reply is acceptable; an address must be the master's.
    let route_address = via_script.as_ref().ok().map(|reply| {
        let r = Route::from_redis(reply)
            .unwrap_or_else(|e| panic!("ROUTE from EVAL replied {reply:?}: {e}"));
        (r.host, r.port)
    });
    let routes_address = snapshot_via_script.as_ref().ok().map(|reply| {
        let r = Routes::from_redis(reply)
            .unwrap_or_else(|e| panic!("ROUTES from EVAL replied {reply:?}: {e}"));
        (r.master.host, r.master.port)
    });
    let master = ("127.0.0.1".to_string(), server.port);
    assert!(
        route_address.as_ref().is_none_or(|a| *a == master)
            && routes_address.as_ref().is_none_or(|a| *a == master),
        "from EVAL, HOTKEY.ROUTE names the master at {route_address:?} and HOTKEY.ROUTES at \
         {routes_address:?} (None = an error reply); the master is {master:?}"
    );
}

/// `PIN key DB n` pins the key in database n, and `ROUTE key DB n` asks about database n,
/// also while only database 0 holds keys (when the filter counts every access in database 0).
/// A pin outlives that moment, so it must not be filed under database 0.
#[test]
fn a_pin_keeps_its_database() {
    let server = Server::start();
    let mut conn = server.conn();
    let attribution = info_hotkey(&mut conn)
        .get("db_attribution")
        .cloned()
        .unwrap_or_default();
    if attribution == "db0_only" {
        // Redis 7.0: the filter cannot tell clients apart, so the module files everything
        // under database 0 by design (book, What is counted).
        println!("db_attribution:db0_only on this server: a pin's database is not checked");
        return;
    }
    assert_eq!(attribution, "db0", "only database 0 holds keys (none do)");
    let key = b"pinned:in3";
    pin(&mut conn, key, &["DB", "3"]);
    let listed_in = |conn: &mut Connection| -> Vec<u32> {
        routes(conn)
            .keys
            .iter()
            .filter(|k| k.key == key)
            .map(|k| k.db)
            .collect()
    };
    let db_at_pin = listed_in(&mut conn);

    // Database 3 gets a key: the module starts following each client's database.
    let mut db3 = server.conn_db(3);
    let () = redis::cmd("SET")
        .arg("other")
        .arg(1)
        .query(&mut db3)
        .expect("SET in db 3");
    wait_until("db_attribution:per_client", WAIT, || {
        let info = info_hotkey(&mut conn);
        match info.get("db_attribution").map(String::as_str) {
            Some("per_client") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    let db_later = listed_in(&mut conn);
    let hot_in_3 = route(&mut conn, key, &["DB", "3"]).hot;
    let hot_in_0 = route(&mut conn, key, &["DB", "0"]).hot;
    assert_eq!(
        (db_at_pin, db_later, hot_in_3, hot_in_0),
        (vec![3], vec![3], true, false),
        "after PIN {} DB 3: (ROUTES db at the pin, ROUTES db once db 3 holds keys, \
         ROUTE … DB 3 hot, ROUTE … DB 0 hot)",
        String::from_utf8_lossy(key)
    );
}

/// ROUTES is a snapshot at `seq`: every event up to it is reflected, with the same run id.
#[test]
fn routes_snapshot_matches_the_events() {
    let server = Server::start();
    let mut conn = server.conn();
    let sub = Subscriber::new(&server, DEFAULT_CHANNEL);
    let text: &[u8] = b"snap:text";
    let binary: &[u8] = b"snap:\xff\xfe\x00bin";
    pin(&mut conn, text, &[]);
    pin(&mut conn, binary, &[]);

    // PIN publishes before it replies, so both events are on their way already.
    let mut received: Vec<Message> = Vec::new();
    for key in [text, binary] {
        let m = wait_event(&sub, "hot of a pinned key", |m| {
            received.push(m.clone());
            matches!(m.event, Event::Hot(_)) && event_key(m).as_deref() == Some(key)
        });
        let Event::Hot(hot) = &m.event else {
            unreachable!()
        };
        // Binary names travel as base64; text names as text.
        assert_eq!(
            (hot.key.key.is_some(), hot.key.key_b64.is_some()),
            (key == text, key == binary),
            "{hot:?}"
        );
    }
    let last_seen = received.last().map(|m| m.seq).expect("a message");

    let snapshot = routes(&mut conn);
    let snapshot3 = Routes::from_redis(&routes_raw(&mut server.conn_resp3()))
        .expect("HOTKEY.ROUTES under RESP3");
    // Whatever was published after ROUTES (heartbeats), to check the numbering around `seq`.
    received.extend(sub.collect(Duration::from_millis(300)));

    assert!(
        snapshot.seq >= last_seen,
        "ROUTES seq {} is behind the last event received before it, {last_seen}",
        snapshot.seq
    );
    let seqs: Vec<u64> = received.iter().map(|m| m.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "events are numbered without gaps: {seqs:?}"
    );
    assert!(
        seqs.contains(&snapshot.seq),
        "ROUTES seq {} names a published event: {seqs:?}",
        snapshot.seq
    );
    assert_eq!(
        snapshot.run_id.len(),
        40,
        "run_id is 40 hex digits: {snapshot:?}"
    );
    for m in &received {
        assert_eq!(m.run_id, snapshot.run_id, "the events' run_id: {m:?}");
    }
    assert_eq!(snapshot.channel, DEFAULT_CHANNEL);
    assert_eq!(snapshot.master, Address::new("127.0.0.1", server.port));
    assert!(
        snapshot.replicas.is_empty(),
        "no replicas: {:?}",
        snapshot.replicas
    );

    // Replaying the events up to `seq` gives the snapshot's keys and advice exactly.
    let mut replayed: BTreeMap<(u32, Vec<u8>), Advice> = BTreeMap::new();
    for m in received.iter().filter(|m| m.seq <= snapshot.seq) {
        match &m.event {
            Event::Hot(k) | Event::Update(k) => {
                let name = k.key.bytes().expect("key name");
                let advice = k.advice.unwrap_or_else(|| panic!("no advice in {m:?}"));
                replayed.insert((k.db, name), advice);
            }
            Event::Cold(k) => {
                replayed.remove(&(k.db, k.key.bytes().expect("key name")));
            }
            _ => {}
        }
    }
    let listed: BTreeMap<(u32, Vec<u8>), Advice> = snapshot
        .keys
        .iter()
        .map(|k| ((k.db, k.key.clone()), k.advice))
        .collect();
    assert_eq!(
        listed, replayed,
        "ROUTES keys vs the events up to seq {}",
        snapshot.seq
    );
    for key in [text, binary] {
        let k = must_be_hot(&snapshot, key);
        assert!(k.advice.pinned && k.advice.read_hot, "{k:?}");
        assert_eq!(
            k.advice.reads_to,
            ReadsTo::Master,
            "no replicas, so reads stay on the master: {k:?}"
        );
    }
    let info = info_hotkey(&mut conn);
    assert_eq!(
        info.get("run_id"),
        Some(&snapshot.run_id),
        "INFO and ROUTES name the same run: {info:?}"
    );
    let info_seq: u64 = info
        .get("last_seq")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("INFO hotkey last_seq: {info:?}"));
    assert!(
        info_seq >= snapshot.seq,
        "INFO last_seq {info_seq} (read later) is not behind ROUTES seq {}",
        snapshot.seq
    );
    let keys3: Vec<&[u8]> = snapshot3.keys.iter().map(|k| &k.key[..]).collect();
    let keys2: Vec<&[u8]> = snapshot.keys.iter().map(|k| &k.key[..]).collect();
    assert_eq!(keys3, keys2, "RESP3 lists the same keys, byte for byte");
    assert_eq!(snapshot3.run_id, snapshot.run_id);
}

/// The routing commands reveal and take only keys the caller may read; PIN, UNPIN and REPORT
/// can be refused per command (Redis 7.0) or by category where the server has them.
#[test]
fn acl() {
    let server = Server::start();
    let mut admin = server.conn();
    acl_setuser(&mut admin, &["app", "on", ">pw", "~app:*", "+@all"]);
    pin(&mut admin, b"app:hot", &[]);
    pin(&mut admin, b"secret:hot", &[]);

    let mut app = server.conn_as("app", "pw");
    assert_eq!(
        route(&mut app, b"app:hot", &[]),
        to_master(server.port, true, CACHE_TTL_MS),
        "app may route its own keys"
    );
    for key in [&b"secret:hot"[..], b"secret:cold"] {
        for op in ["READ", "WRITE"] {
            // The key is declared, so the server refuses it with its own NOPERM before the
            // module runs; either way the answer is the same, hot or not.
            let err = error_of(&mut app, &[b"HOTKEY.ROUTE", key, op.as_bytes()]);
            assert!(
                err.starts_with("NOPERM"),
                "ROUTE {} {op} as app (hot or not, the answer must not tell): {err}",
                String::from_utf8_lossy(key)
            );
        }
    }
    let names = |r: &Routes| -> Vec<String> {
        r.keys
            .iter()
            .map(|k| String::from_utf8_lossy(&k.key).into_owned())
            .collect()
    };
    let seen_by_app = routes(&mut app);
    assert_eq!(
        names(&seen_by_app),
        ["app:hot"],
        "app sees only its own hot keys"
    );
    let mut all = names(&routes(&mut admin));
    all.sort();
    assert_eq!(all, ["app:hot", "secret:hot"], "the default user sees both");

    let err = error_of(&mut app, &[b"HOTKEY.PIN", b"secret:pinned"]);
    assert!(err.starts_with("NOPERM"), "PIN of a forbidden key: {err}");
    let err = error_of(&mut app, &[b"HOTKEY.UNPIN", b"secret:hot"]);
    assert!(err.starts_with("NOPERM"), "UNPIN of a forbidden key: {err}");
    assert_eq!(
        names(&routes(&mut admin)).len(),
        2,
        "refused PIN/UNPIN changed nothing"
    );

    // REPORT: allowed for app's keys, all or nothing otherwise.
    let counted: i64 = redis::cmd("HOTKEY.REPORT")
        .arg("app:reported")
        .arg(7)
        .query(&mut app)
        .expect("REPORT of app's own key");
    assert_eq!(counted, 1, "one key counted");
    let reported_before = info_number(&mut admin, "reported_reads");
    assert_eq!(reported_before, 7.0, "the allowed report shows in INFO");
    let err = error_of(&mut app, &[b"HOTKEY.REPORT", b"secret:reported", b"7"]);
    assert_eq!(err, NO_PERMISSION, "REPORT of a forbidden key");
    let err = error_of(
        &mut app,
        &[
            b"HOTKEY.REPORT",
            b"app:mixed",
            b"3",
            b"secret:reported",
            b"3",
        ],
    );
    assert_eq!(
        err, NO_PERMISSION,
        "REPORT with one forbidden key among allowed ones"
    );
    // Reports reach the tracker over the next second (book, HOTKEY.REPORT).
    let top = wait_until("app:reported in HOTKEY.TOP", Duration::from_secs(5), || {
        let top = top_all(&mut admin);
        if top.iter().any(|e| e.key == b"app:reported") {
            Ok(top)
        } else {
            Err(show(&top))
        }
    });
    let tracked = |name: &[u8]| top.iter().any(|e| e.key == name);
    assert!(
        tracked(b"app:reported"),
        "the allowed report was counted: {}",
        show(&top)
    );
    assert!(
        !tracked(b"secret:reported") && !tracked(b"app:mixed"),
        "refused reports count nothing, not even their allowed keys: {}",
        show(&top)
    );
    assert_eq!(
        info_number(&mut admin, "reported_reads"),
        reported_before,
        "INFO hotkey reported_reads after refused reports"
    );

    // Redis 7.0 cannot put module commands in categories: the book has users refuse the
    // three commands that change state one by one. That works on every server.
    acl_setuser(
        &mut admin,
        &[
            "ops",
            "on",
            ">pw",
            "~*",
            "+@all",
            "-hotkey.pin",
            "-hotkey.unpin",
            "-hotkey.report",
        ],
    );
    let mut ops = server.conn_as("ops", "pw");
    for args in [
        &[&b"HOTKEY.PIN"[..], b"ops:k"][..],
        &[b"HOTKEY.UNPIN", b"app:hot"],
        &[b"HOTKEY.REPORT", b"ops:k", b"1"],
    ] {
        let err = error_of(&mut ops, args);
        let command = String::from_utf8_lossy(args[0]).to_ascii_lowercase();
        assert!(
            err.starts_with("NOPERM") && err.contains(&command),
            "{} as ops: {err}",
            shown(args)
        );
    }
    assert_eq!(
        route(&mut ops, b"app:hot", &[]),
        to_master(server.port, true, CACHE_TTL_MS),
        "ops may still route"
    );
    let mut all = names(&routes(&mut ops));
    all.sort();
    assert_eq!(
        all,
        ["app:hot", "secret:hot"],
        "ops reads ~* and still lists every hot key; the refused commands changed nothing"
    );

    // Categories, where the server lets modules have them: a capability, not a version.
    let categories: Vec<String> = redis::cmd("ACL")
        .arg("CAT")
        .query(&mut admin)
        .expect("ACL CAT");
    if categories.iter().any(|c| c == "hotkey") {
        acl_setuser(
            &mut admin,
            &["nohot", "on", ">pw", "~*", "+@all", "-@hotkey"],
        );
        let mut nohot = server.conn_as("nohot", "pw");
        for args in [
            &[&b"HOTKEY.ROUTE"[..], b"app:hot"][..],
            &[b"HOTKEY.ROUTES"],
            &[b"HOTKEY.PIN", b"app:k"],
        ] {
            let err = error_of(&mut nohot, args);
            assert!(
                err.starts_with("NOPERM"),
                "{} under -@hotkey: {err}",
                shown(args)
            );
        }
        let value: Option<String> = redis::cmd("GET")
            .arg("app:hot")
            .query(&mut nohot)
            .expect("GET under -@hotkey: only the module's commands are refused");
        assert_eq!(value, None);
    } else {
        println!("ACL CAT lists no 'hotkey' category on this server: -@hotkey not checked");
    }
    let admin_commands: Vec<String> = redis::cmd("ACL")
        .arg("CAT")
        .arg("admin")
        .query(&mut admin)
        .expect("ACL CAT admin");
    if admin_commands.iter().any(|c| c == "hotkey.pin") {
        acl_setuser(
            &mut admin,
            &["noadmin", "on", ">pw", "~*", "+@all", "-@admin"],
        );
        let mut noadmin = server.conn_as("noadmin", "pw");
        for args in [
            &[&b"HOTKEY.PIN"[..], b"app:k"][..],
            &[b"HOTKEY.UNPIN", b"app:hot"],
        ] {
            let err = error_of(&mut noadmin, args);
            assert!(
                err.starts_with("NOPERM"),
                "{} under -@admin: {err}",
                shown(args)
            );
        }
        assert_eq!(
            route(&mut noadmin, b"app:hot", &[]),
            to_master(server.port, true, CACHE_TTL_MS),
            "ROUTE is not an admin command"
        );
    } else {
        println!("ACL CAT admin does not list hotkey.pin on this server: -@admin not checked");
    }
}

/// Every bad argument of the new commands gets its own error text, and the server goes on.
#[test]
fn bad_arguments_get_clear_errors() {
    let server = Server::start();
    let mut conn = server.conn();
    let long_key = vec![b'k'; 1025];
    let longest_key = vec![b'k'; 1024];
    let cases: &[(&[&[u8]], CommandError)] = &[
        // HOTKEY.ROUTE key [READ|WRITE] [DB n]
        (
            &[b"HOTKEY.ROUTE"],
            CommandError::WrongArity {
                command: "hotkey.route",
            },
        ),
        (
            &[b"HOTKEY.ROUTE", b"k", b"READ", b"WRITE"],
            CommandError::BothOps,
        ),
        (
            &[b"HOTKEY.ROUTE", b"k", b"write", b"read"],
            CommandError::BothOps,
        ),
        (
            &[b"HOTKEY.ROUTE", b"k", b"READ", b"read"],
            CommandError::GivenTwice { option: "READ" },
        ),
        (
            &[b"HOTKEY.ROUTE", b"k", b"DB"],
            CommandError::NeedsValue { option: "DB" },
        ),
        (
            &[b"HOTKEY.ROUTE", b"k", b"DB", b"16"],
            CommandError::BadDb { databases: 16 },
        ),
        (
            &[b"HOTKEY.ROUTE", b"k", b"DB", b"-1"],
            CommandError::BadDb { databases: 16 },
        ),
        (
            &[b"HOTKEY.ROUTE", b"k", b"DB", b"one"],
            CommandError::BadDb { databases: 16 },
        ),
        (
            &[b"HOTKEY.ROUTE", b"k", b"DB", b"99999999999999999999"],
            CommandError::BadDb { databases: 16 },
        ),
        (
            &[b"HOTKEY.ROUTE", b"k", b"DB", b"1", b"db", b"2"],
            CommandError::GivenTwice { option: "DB" },
        ),
        (
            &[b"HOTKEY.ROUTE", b"k", b"GET"],
            CommandError::UnknownOption {
                option: b"GET".to_vec(),
                command: "hotkey.route",
            },
        ),
        (
            // The option is quoted as given, not upper-cased.
            &[b"HOTKEY.ROUTE", b"k", b"limit", b"1"],
            CommandError::UnknownOption {
                option: b"limit".to_vec(),
                command: "hotkey.route",
            },
        ),
        // HOTKEY.ROUTES takes nothing: a key name is never read as a subcommand.
        (
            &[b"HOTKEY.ROUTES", b"k"],
            CommandError::WrongArity {
                command: "hotkey.routes",
            },
        ),
        (
            &[b"HOTKEY.ROUTES", b"k", b"READ"],
            CommandError::WrongArity {
                command: "hotkey.routes",
            },
        ),
        // HOTKEY.PIN key [TTL seconds] [DB n]
        (
            &[b"HOTKEY.PIN"],
            CommandError::WrongArity {
                command: "hotkey.pin",
            },
        ),
        (&[b"HOTKEY.PIN", b"k", b"TTL", b"0"], CommandError::BadTtl),
        (&[b"HOTKEY.PIN", b"k", b"TTL", b"-5"], CommandError::BadTtl),
        (
            &[b"HOTKEY.PIN", b"k", b"TTL", b"315360001"],
            CommandError::BadTtl,
        ),
        (&[b"HOTKEY.PIN", b"k", b"TTL", b"1.5"], CommandError::BadTtl),
        (
            &[b"HOTKEY.PIN", b"k", b"TTL"],
            CommandError::NeedsValue { option: "TTL" },
        ),
        (
            &[b"HOTKEY.PIN", b"k", b"TTL", b"5", b"ttl", b"6"],
            CommandError::GivenTwice { option: "TTL" },
        ),
        (
            &[b"HOTKEY.PIN", b"k", b"DB", b"16"],
            CommandError::BadDb { databases: 16 },
        ),
        (
            &[b"HOTKEY.PIN", b"k", b"EX", b"5"],
            CommandError::UnknownOption {
                option: b"EX".to_vec(),
                command: "hotkey.pin",
            },
        ),
        (
            &[b"HOTKEY.PIN", b"k", b"WRITE"],
            CommandError::UnknownOption {
                option: b"WRITE".to_vec(),
                command: "hotkey.pin",
            },
        ),
        // HOTKEY.UNPIN key [DB n]
        (
            &[b"HOTKEY.UNPIN"],
            CommandError::WrongArity {
                command: "hotkey.unpin",
            },
        ),
        (
            &[b"HOTKEY.UNPIN", b"k", b"TTL", b"1"],
            CommandError::UnknownOption {
                option: b"TTL".to_vec(),
                command: "hotkey.unpin",
            },
        ),
        (
            &[b"HOTKEY.UNPIN", b"k", b"DB"],
            CommandError::NeedsValue { option: "DB" },
        ),
        (
            &[b"HOTKEY.UNPIN", b"k", b"DB", b"16"],
            CommandError::BadDb { databases: 16 },
        ),
        (
            &[b"HOTKEY.UNPIN", b"k", b"DB", b"0", b"DB", b"0"],
            CommandError::GivenTwice { option: "DB" },
        ),
        // HOTKEY.REPORT key count [key count ...]
        (
            &[b"HOTKEY.REPORT"],
            CommandError::WrongArity {
                command: "hotkey.report",
            },
        ),
        (
            &[b"HOTKEY.REPORT", b"a"],
            CommandError::WrongArity {
                command: "hotkey.report",
            },
        ),
        (
            &[b"HOTKEY.REPORT", b"a", b"1", b"b"],
            CommandError::WrongArity {
                command: "hotkey.report",
            },
        ),
        (
            &[b"HOTKEY.REPORT", b"a", b"0"],
            CommandError::BadReportCount,
        ),
        (
            &[b"HOTKEY.REPORT", b"a", b"-1"],
            CommandError::BadReportCount,
        ),
        (
            &[b"HOTKEY.REPORT", b"a", b"1000000000001"],
            CommandError::BadReportCount,
        ),
        (&[b"HOTKEY.REPORT", b"a", b""], CommandError::BadReportCount),
        (
            // All or nothing: a good pair first does not make the bad one pass.
            &[b"HOTKEY.REPORT", b"report:good", b"5", b"b", b"x"],
            CommandError::BadReportCount,
        ),
        (
            &[b"HOTKEY.REPORT", &long_key, b"1"],
            CommandError::KeyTooLong {
                max_key_bytes: 1024,
            },
        ),
    ];
    for (args, expected) in cases {
        let err = error_of(&mut conn, args);
        assert_eq!(err, expected.to_string(), "{}", shown(args));
        assert_alive(&mut conn, &shown(args));
    }
    let snapshot = routes(&mut conn);
    assert!(
        snapshot.keys.is_empty(),
        "no refused PIN pinned anything: {snapshot:#?}"
    );
    let top = top_all(&mut conn);
    assert!(
        !top.iter().any(|e| e.key == b"report:good"),
        "a refused REPORT counts none of its pairs: {}",
        show(&top)
    );

    // The bounds themselves are accepted; option names in any case. A pin lives in the
    // database it names.
    pin(&mut conn, b"bound:pin", &["ttl", "315360000", "db", "15"]);
    assert_eq!(unpin(&mut conn, b"bound:pin"), 0, "not pinned in db 0");
    let unpinned: i64 = redis::cmd("HOTKEY.UNPIN")
        .arg("bound:pin")
        .arg(&["DB", "15"])
        .query(&mut conn)
        .expect("HOTKEY.UNPIN DB 15");
    assert_eq!(unpinned, 1, "the pin took, in db 15");
    let cold = route(&mut conn, b"bound:pin", &["write", "db", "15"]);
    assert_eq!(cold, to_master(server.port, false, 0), "lower-case options");

    // A full hot set of pinned keys refuses another pin, naming the setting.
    let () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("hotkey.max-hot")
        .arg(2)
        .query(&mut conn)
        .expect("CONFIG SET hotkey.max-hot 2");
    pin(&mut conn, b"full:a", &[]);
    pin(&mut conn, b"full:b", &[]);
    let err = error_of(&mut conn, &[b"HOTKEY.PIN", b"full:c"]);
    assert_eq!(err, CommandError::PinsFull { max_hot: 2 }.to_string());
    assert_alive(&mut conn, "PIN into a full hot set");
    assert_eq!(unpin(&mut conn, b"full:a") + unpin(&mut conn, b"full:b"), 2);

    // REPORT's bounds, and the key length limit follows its config.
    let counted: i64 = redis::cmd("HOTKEY.REPORT")
        .arg(&longest_key)
        .arg(1)
        .arg("bound:report")
        .arg(1_000_000_000_000u64)
        .query(&mut conn)
        .expect("REPORT at the bounds");
    assert_eq!(counted, 2, "both pairs counted");
    let () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("hotkey.max-key-bytes")
        .arg(8)
        .query(&mut conn)
        .expect("CONFIG SET hotkey.max-key-bytes 8");
    let err = error_of(&mut conn, &[b"HOTKEY.REPORT", b"ninechars", b"1"]);
    assert_eq!(
        err,
        CommandError::KeyTooLong { max_key_bytes: 8 }.to_string()
    );
    assert_alive(&mut conn, "REPORT of a key over max-key-bytes");

    // The DB bound follows the server's `databases`.
    let small = Server::builder().server_args(&["--databases", "4"]).start();
    let mut small_conn = small.conn();
    for args in [
        &[&b"HOTKEY.ROUTE"[..], b"k", b"DB", b"4"][..],
        &[b"HOTKEY.PIN", b"k", b"DB", b"4"],
        &[b"HOTKEY.UNPIN", b"k", b"DB", b"4"],
    ] {
        let err = error_of(&mut small_conn, args);
        assert_eq!(
            err,
            CommandError::BadDb { databases: 4 }.to_string(),
            "{} with databases 4",
            shown(args)
        );
        assert_alive(&mut small_conn, &shown(args));
    }
}

/// Reads a router reports serving elsewhere count toward the key's reads and show in
/// `INFO hotkey` `reported_reads`.
#[test]
fn reported_reads_count_and_show_in_info() {
    let server = Server::start();
    let mut conn = server.conn();
    let before = info_number(&mut conn, "reported_reads");
    let counted: i64 = redis::cmd("HOTKEY.REPORT")
        .arg("seen:a")
        .arg(5)
        .arg("seen:b")
        .arg(3)
        .query(&mut conn)
        .expect("HOTKEY.REPORT");
    assert_eq!(counted, 2, "two keys counted");
    let after = info_number(&mut conn, "reported_reads");
    assert_eq!(
        (before, after),
        (0.0, 8.0),
        "reported_reads before and after reporting 5 + 3 reads"
    );
    // Reports reach the tracker over the next second (book, HOTKEY.REPORT).
    let top = wait_until("seen:a and seen:b in HOTKEY.TOP", WAIT, || {
        let top = top_all(&mut conn);
        let tracked = |key: &[u8]| top.iter().any(|e| e.key == key);
        if tracked(b"seen:a") && tracked(b"seen:b") {
            Ok(top)
        } else {
            Err(show(&top))
        }
    });
    for key in [&b"seen:a"[..], b"seen:b"] {
        let e = top
            .iter()
            .find(|e| e.key == key)
            .unwrap_or_else(|| panic!("{key:?} not tracked: {}", show(&top)));
        assert!(
            e.reads > 0.0 && e.writes == 0.0,
            "reported reads are reads: {e:?}"
        );
    }
}

/// A key written hard (and not read) is hot and write-hot: no client caching, and its reads
/// stay on the master even with healthy replicas, since a replica may not have the last write.
#[test]
fn writes_stay_on_the_master_for_a_write_hot_key() {
    let master = start_master();
    let replica_a = start_replica(&master);
    let replica_b = start_replica(&master);
    let mut conn = master.conn();
    wait_for_replicas(&mut conn, &[replica_a.port, replica_b.port], WAIT);

    let key = b"written:hot";
    let load = Loader::start(&master, &[b"SET", key, b"v"], 5000);
    let entry = wait_until("the written key write-hot in ROUTES", WAIT, || {
        let r = routes(&mut conn);
        match hot_key(&r, key) {
            Some(k) if k.advice.write_hot => Ok(k.clone()),
            _ => Err(format!("{r:#?}")),
        }
    });
    // Checked while the load runs, so the key is surely still hot.
    let snapshot = routes(&mut conn);
    let read_route = route(&mut conn, key, &[]);
    let write_route = route(&mut conn, key, &["WRITE"]);
    let sent = load.stop().expect("the SET load");

    assert_eq!(
        entry.advice,
        Advice::new(ReadsTo::Master, 0).write_hot(true),
        "a key only written (ROUTES: {}/s; {sent} SETs sent) is write-hot, not cached, read \
         from the master: {entry:?}",
        entry.writes_per_sec
    );
    assert!(
        entry.reads_per_sec == 0.0 && entry.writes_per_sec > 0.0,
        "{entry:?}"
    );
    assert_eq!(
        replica_ports(&snapshot).len(),
        2,
        "the replicas were healthy all along: {snapshot:#?}"
    );
    assert_eq!(
        read_route,
        to_master(master.port, true, 0),
        "a read of a write-hot key that is not read-hot stays on the master"
    );
    assert_eq!(write_route, to_master(master.port, true, 0));
}
