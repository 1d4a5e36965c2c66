//! The router's own overhead, against one real server with the module loaded and against a
//! 3-master cluster (`cluster/…`: the decision includes the key's slot hash and the shard
//! lookup): where a command goes (`Router::route`, no I/O) and a read served from the local
//! cache (`Router::query_value` on a warm entry). Goals: a routing decision within 200 ns
//! (250 ns on a cluster), a cache hit within 1 µs.
//!
//! ```text
//! cargo build -p hotkey --release   # the module the server loads
//! cargo bench -p hotkey-router --bench route
//! ```
//!
//! The hot keys are pinned (`HOTKEY.PIN`): a pinned key is read-hot whatever its rate, so the
//! module advises a cache TTL for it, here `cache-ttl-ms 60000` so that no entry expires while
//! it is measured.

use std::hint::black_box;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use hotkey_router::redis::{self, Cmd, Value};
use hotkey_router::{Metrics, Options, Router, Target};
use hotkey_testkit::{Cluster, Server};
use tokio::runtime::Runtime;

/// The hot sorted set: 100 players.
const LEADERBOARD: &str = "leaderboard:global";
/// A hot string, for the `GET` cache hit (`GET` of the sorted set is a `WRONGTYPE` error, and
/// errors are never cached).
const HOME_PAGE: &str = "page:home";
/// A key nobody reads: never hot.
const COLD: &str = "user:1001:profile";
/// How long the router may take to see the pinned keys.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// The server, the runtime and a router on it. Fields drop in order: the router's link task
/// stops, then the runtime, then the server process.
struct Setup {
    router: Router,
    runtime: Runtime,
    server: Server,
}

impl Setup {
    fn start() -> Setup {
        let server = Server::builder()
            .module_arg("cache-ttl-ms", "60000")
            .start();
        let mut conn = server.conn();
        let mut zadd = redis::cmd("ZADD");
        zadd.arg(LEADERBOARD);
        for player in 0..100u32 {
            zadd.arg(1_000 + (player * 7_919) % 100_000)
                .arg(format!("player:{player}"));
        }
        let _: i64 = zadd.query(&mut conn).expect("ZADD leaderboard");
        let page = format!("{{\"title\":\"home\",\"body\":\"{}\"}}", "x".repeat(480));
        let _: () = redis::cmd("SET")
            .arg(HOME_PAGE)
            .arg(page)
            .query(&mut conn)
            .expect("SET home page");
        for key in [LEADERBOARD, HOME_PAGE] {
            let _: () = redis::cmd("HOTKEY.PIN")
                .arg(key)
                .query(&mut conn)
                .unwrap_or_else(|e| panic!("HOTKEY.PIN {key}: {e}"));
        }

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let router = runtime
            .block_on(Router::connect(server.url(), Options::default()))
            .expect("connect the router");
        let setup = Setup {
            router,
            runtime,
            server,
        };
        setup.wait_until_cached(&get(LEADERBOARD));
        setup.wait_until_cached(&get(HOME_PAGE));
        setup
    }

    /// Waits (bounded) until the router sends `cmd` to its cache.
    fn wait_until_cached(&self, cmd: &Cmd) {
        let deadline = Instant::now() + READY_TIMEOUT;
        while self.router.route(cmd) != Target::Cache {
            assert!(
                Instant::now() < deadline,
                "the router does not cache {cmd:?} after {READY_TIMEOUT:?}; hot keys: {:?}\n\
                 --- server log ---\n{}",
                self.router.hot_keys(),
                self.server.log_tail()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn query(&self, cmd: &Cmd) -> Value {
        self.runtime
            .block_on(self.router.query_value(cmd))
            .unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
    }

    /// Fills the cache entry of `cmd`, then checks that the next read is a cache hit (a hit
    /// more, no command to the master), so the bench measures what its name says.
    fn warm(&self, cmd: &Cmd) -> Value {
        let filled = self.query(cmd);
        let before = self.router.metrics();
        let hit = self.query(cmd);
        let after = self.router.metrics();
        assert_eq!(hit, filled, "{cmd:?}: the cached reply differs");
        assert!(
            after.cache_hits == before.cache_hits + 1 && after.master == before.master,
            "{cmd:?} was not a cache hit: before {before:?}, after {after:?}"
        );
        hit
    }

    /// Checks that a bench served every read from the cache.
    fn assert_no_miss(&self, name: &str, before: &Metrics) {
        let after = self.router.metrics();
        assert!(
            after.master == before.master && after.cache_misses == before.cache_misses,
            "{name}: reads missed the cache while measured: before {before:?}, after {after:?}"
        );
    }
}

fn get(key: &str) -> Cmd {
    let mut cmd = redis::cmd("GET");
    cmd.arg(key);
    cmd
}

fn top10() -> Cmd {
    let mut cmd = redis::cmd("ZREVRANGE");
    cmd.arg(LEADERBOARD).arg(0).arg(9).arg("WITHSCORES");
    cmd
}

fn router(c: &mut Criterion) {
    let setup = Setup::start();
    let router = &setup.router;

    let mut set = redis::cmd("SET");
    set.arg(COLD).arg("ada");
    let routes = [
        ("route/hot_get", get(LEADERBOARD), Target::Cache),
        ("route/cold_get", get(COLD), Target::Master),
        ("route/set", set, Target::Master),
        ("route/zrevrange_hot", top10(), Target::Cache),
    ];
    let mut group = c.benchmark_group("router");
    for (name, cmd, target) in &routes {
        assert_eq!(router.route(cmd), *target, "{name}: {cmd:?}");
        group.bench_function(*name, |b| b.iter(|| router.route(black_box(cmd))));
    }

    let hits = [
        ("cache_hit/get", get(HOME_PAGE)),
        ("cache_hit/zrevrange", top10()),
    ];
    for (name, cmd) in &hits {
        let value = setup.warm(cmd);
        if *name == "cache_hit/zrevrange" {
            // RESP2: member, score, member, score…
            assert!(
                matches!(&value, Value::Array(items) if items.len() == 20),
                "{name}: not the top 10 with scores: {value:?}"
            );
        }
        let before = router.metrics();
        // Converted to what an application asks for (the conversion reads the cached reply in
        // place; the caller owns the result).
        if *name == "cache_hit/zrevrange" {
            group.bench_function(*name, |b| {
                b.to_async(&setup.runtime)
                    .iter(|| router.query::<Vec<(String, f64)>>(black_box(cmd)))
            });
        } else {
            group.bench_function(*name, |b| {
                b.to_async(&setup.runtime)
                    .iter(|| router.query::<Vec<u8>>(black_box(cmd)))
            });
        }
        setup.assert_no_miss(name, &before);
    }
    group.finish();
    // `setup` drops here: the router, the runtime, then the server process.
}

/// A cluster of 3 masters with the module (`cache-ttl-ms 60000`), the hot string pinned on its
/// master, and a router on the cluster that caches it. Fields drop in order: the router, the
/// runtime, then every node.
struct ClusterSetup {
    router: Router,
    runtime: Runtime,
    _cluster: Cluster,
}

impl ClusterSetup {
    fn start() -> ClusterSetup {
        let cluster = Cluster::builder(3, 0)
            .module_arg("cache-ttl-ms", "60000")
            .start();
        let owner = cluster.node_for_key(HOME_PAGE.as_bytes());
        let mut conn = owner.conn();
        let page = format!("{{\"title\":\"home\",\"body\":\"{}\"}}", "x".repeat(480));
        let _: () = redis::cmd("SET")
            .arg(HOME_PAGE)
            .arg(page)
            .query(&mut conn)
            .expect("SET home page");
        let _: () = redis::cmd("HOTKEY.PIN")
            .arg(HOME_PAGE)
            .query(&mut conn)
            .expect("HOTKEY.PIN on its master");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let router = runtime
            .block_on(Router::connect_cluster(cluster.urls(), Options::default()))
            .expect("connect the router to the cluster");
        let deadline = Instant::now() + READY_TIMEOUT;
        while router.route(&get(HOME_PAGE)) != Target::Cache {
            assert!(
                Instant::now() < deadline,
                "the cluster router does not cache {HOME_PAGE} after {READY_TIMEOUT:?}"
            );
            thread::sleep(Duration::from_millis(20));
        }
        ClusterSetup {
            router,
            runtime,
            _cluster: cluster,
        }
    }
}

fn cluster(c: &mut Criterion) {
    let setup = ClusterSetup::start();
    let router = &setup.router;
    let mut group = c.benchmark_group("router");
    let hot = get(HOME_PAGE);
    let cold = get(COLD);
    assert_eq!(router.route(&hot), Target::Cache);
    assert_eq!(router.route(&cold), Target::Master);
    group.bench_function("cluster/route/hot_get", |b| {
        b.iter(|| router.route(black_box(&hot)))
    });
    group.bench_function("cluster/route/cold_get", |b| {
        b.iter(|| router.route(black_box(&cold)))
    });
    let filled: Vec<u8> = setup
        .runtime
        .block_on(router.query(&hot))
        .expect("fill the cache");
    let before = router.metrics();
    group.bench_function("cluster/cache_hit/get", |b| {
        b.to_async(&setup.runtime)
            .iter(|| router.query::<Vec<u8>>(black_box(&hot)))
    });
    let after = router.metrics();
    assert!(
        after.master == before.master && after.cache_hits > before.cache_hits,
        "cluster/cache_hit/get missed the cache: before {before:?}, after {after:?}"
    );
    assert!(!filled.is_empty());
    group.finish();
}

criterion_group!(benches, router, cluster);
criterion_main!(benches);
