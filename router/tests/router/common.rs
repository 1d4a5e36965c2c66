//! What the tests share: servers started the same way, commands, and waits with deadlines.

use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hotkey_router::{Options, Router, Target};
pub use hotkey_testkit::WAIT;
use hotkey_testkit::{Cluster, Server, check, wait_for_acks};
use redis::{Cmd, Connection};

/// A hot threshold no test load reaches: only pinned keys are hot, and a pinned key never
/// becomes write-hot (which would turn its advised cache TTL to 0) however often it is written.
const NO_DETECTION: (&str, &str) = ("hot-threshold", "1000000000");

/// A master with the module (`sample-max 1`, detection off, see [`NO_DETECTION`]) and `args`.
pub fn master(args: &[(&str, &str)]) -> Server {
    with_args(Server::builder(), args).start()
}

/// A master and `n` replicas of it, all with the module started with `args`; returns once
/// every replica is in sync.
pub fn replicated(args: &[(&str, &str)], n: usize) -> (Server, Vec<Server>) {
    let master = master(args);
    let replicas: Vec<Server> = (0..n)
        .map(|_| {
            with_args(Server::builder(), args)
                .replica_of(&master)
                .start()
        })
        .collect();
    // `master_link_status:up` is not yet a replica that receives writes: after a diskless full
    // sync, Redis 7.0 streams to it only from its first `REPLCONF ACK` (sent once a second),
    // and until then it serves reads without the writes made since the sync. A write every
    // replica acknowledged (`WAIT`) proves the stream flows.
    let mut conn = master.conn();
    set_direct(&mut conn, b"replicated", b"1");
    wait_for_acks(&mut conn, n);
    (master, replicas)
}

/// Like [`master`], on `port` (to restart a killed master where its clients expect it).
pub fn with_port(args: &[(&str, &str)], port: u16) -> Server {
    with_args(Server::builder(), args).port(port).start()
}

fn with_args(builder: hotkey_testkit::Builder, args: &[(&str, &str)]) -> hotkey_testkit::Builder {
    let builder = builder
        .module_arg(NO_DETECTION.0, NO_DETECTION.1)
        // A replica syncs at once instead of after the default 5 s wait for others.
        .server_args(&["--repl-diskless-sync-delay", "0"]);
    args.iter()
        .fold(builder, |b, (name, value)| b.module_arg(name, value))
}

/// A cluster of 3 masters with a replica each, every node with the module as [`master`] has
/// it (detection off) and `args`, and the server arguments `server_args`.
pub fn cluster(args: &[(&str, &str)], server_args: &[&str]) -> Cluster {
    let builder = Cluster::builder(3, 1)
        .module_arg(NO_DETECTION.0, NO_DETECTION.1)
        .server_args(&["--repl-diskless-sync-delay", "0"])
        .server_args(server_args);
    args.iter()
        .fold(builder, |b, (name, value)| b.module_arg(name, value))
        .start()
}

/// The module arguments `master` and `replicated` pass, with `args`, for `MODULE LOAD`.
pub fn load_args(args: &[(&str, &str)]) -> Vec<String> {
    let mut all = vec![
        "sample-max".to_string(),
        "1".to_string(),
        NO_DETECTION.0.to_string(),
        NO_DETECTION.1.to_string(),
    ];
    for (name, value) in args {
        all.push(name.to_string());
        all.push(value.to_string());
    }
    all
}

/// A router to `server`, panicking with the error if it cannot connect.
pub async fn connect(server: &Server, options: Options) -> Router {
    Router::connect(server.url(), options)
        .await
        .unwrap_or_else(|e| panic!("connect a router to {}: {e}", server.url()))
}

/// A master whose advised cache TTL is a minute, with `key` = `value` on it, a router on it
/// with `options`, and `key` pinned: once this returns, the router serves `key` from its cache.
pub async fn cached_key(key: &[u8], value: &[u8], options: Options) -> (Server, Router) {
    let master = master(&[("cache-ttl-ms", "60000")]);
    set_direct(&mut master.conn(), key, value);
    let router = connect(&master, options).await;
    pin(&master, key);
    wait_for_route(&router, &get(key), Target::Cache).await;
    (master, router)
}

/// Options that reconnect within 200 ms, for tests that kill the master.
pub fn quick_reconnect() -> Options {
    Options::default().reconnect_max_delay(Duration::from_millis(200))
}

/// One `INCR` of a [`Writer`]: when it was sent, when it came back, and how.
pub struct Outcome {
    pub sent: Instant,
    pub done: Instant,
    pub result: Result<i64, hotkey_router::Error>,
}

/// Every outcome of a [`Writer`], in order.
pub type Outcomes = Vec<Outcome>;

/// A task that `INCR`s `counter` through a router every 5 ms until stopped.
pub struct Writer {
    stop: Arc<AtomicBool>,
    last_ok: Arc<Mutex<Option<Instant>>>,
    task: tokio::task::JoinHandle<Outcomes>,
}

impl Writer {
    pub fn start(router: &Router) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let last_ok: Arc<Mutex<Option<Instant>>> = Arc::default();
        let (router, stopped, ok) = (router.clone(), stop.clone(), last_ok.clone());
        let task = tokio::spawn(async move {
            let mut outcomes = Outcomes::new();
            while !stopped.load(Ordering::Relaxed) {
                let sent = Instant::now();
                let result = router.query::<i64>(&incr(b"counter")).await;
                let done = Instant::now();
                if result.is_ok() {
                    *ok.lock().expect("not poisoned") = Some(done);
                }
                outcomes.push(Outcome { sent, done, result });
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            outcomes
        });
        Writer {
            stop,
            last_ok,
            task,
        }
    }

    /// When the last write succeeded.
    pub fn last_ok(&self) -> Option<Instant> {
        *self.last_ok.lock().expect("not poisoned")
    }

    pub async fn stop(self) -> Outcomes {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("writer task")
    }
}

/// Options with the cache off: hot reads go to replicas.
pub fn no_cache() -> Options {
    Options::default().cache(false)
}

pub fn get(key: impl redis::ToRedisArgs) -> Cmd {
    let mut cmd = redis::cmd("GET");
    cmd.arg(key);
    cmd
}

pub fn set(key: impl redis::ToRedisArgs, value: impl redis::ToRedisArgs) -> Cmd {
    let mut cmd = redis::cmd("SET");
    cmd.arg(key).arg(value);
    cmd
}

pub fn incr(key: impl redis::ToRedisArgs) -> Cmd {
    let mut cmd = redis::cmd("INCR");
    cmd.arg(key);
    cmd
}

/// `SET key value` on a plain connection (not through a router).
pub fn set_direct(conn: &mut Connection, key: &[u8], value: &[u8]) {
    let () = set(key, value)
        .query(conn)
        .unwrap_or_else(|e| panic!("SET {}: {e}", String::from_utf8_lossy(key)));
}

/// `HOTKEY.PIN key`: the key is read-hot at once, whatever its rate.
pub fn pin(server: &Server, key: &[u8]) {
    hotkey_testkit::pin(&mut server.conn(), key, &[]);
}

/// Calls of `command` (lower case) the server has executed (`INFO commandstats`).
pub fn calls(server: &Server, command: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut server.conn())
        .expect("INFO commandstats");
    let prefix = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|l| l.trim().strip_prefix(&prefix))
        .map(|rest| {
            rest.split(',')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("INFO commandstats line: {rest}"))
        })
        .unwrap_or(0)
}

/// Polls `ready` until it is true; panics with `what` after `within` (scaled by
/// `HOTKEY_TEST_SLOWDOWN`).
pub async fn wait_until(what: impl Display, within: Duration, mut ready: impl FnMut() -> bool) {
    hotkey_testkit::wait_until_async(what, within, || {
        let ok = ready();
        async move { check(ok, || "false") }
    })
    .await
}

/// Like [`wait_until`], with an async check.
pub async fn wait_until_async<F: Future<Output = bool>>(
    what: impl Display,
    within: Duration,
    mut ready: impl FnMut() -> F,
) {
    hotkey_testkit::wait_until_async(what, within, || {
        let ready = ready();
        async move { check(ready.await, || "false") }
    })
    .await
}

/// Waits until the router sends `cmd` to `target`.
pub async fn wait_for_route(router: &Router, cmd: &Cmd, target: Target) {
    hotkey_testkit::wait_until_async(
        format!("route({}) == {target:?}", show(cmd)),
        WAIT,
        || async {
            check(router.route(cmd) == target, || {
                format!(
                    "route {:?} (hot keys {:?}, replicas {:?}, synced {}, {:?})",
                    router.route(cmd),
                    router.hot_keys(),
                    router.replicas(),
                    router.is_synced(),
                    router.metrics()
                )
            })
        },
    )
    .await
}

/// Waits until the router has `n` replicas, all in rotation.
pub async fn wait_for_replicas(router: &Router, n: usize) {
    wait_until(format!("{n} replicas in rotation"), WAIT, || {
        let all = router.replicas();
        all.len() == n && all.iter().all(|(_, up)| *up)
    })
    .await;
}

/// A command as text, for failure messages.
pub fn show(cmd: &Cmd) -> String {
    let words: Vec<String> = cmd
        .args_iter()
        .map(|a| match a {
            redis::Arg::Simple(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            _ => "<cursor>".into(),
        })
        .collect();
    words.join(" ")
}
