//! A cache hit from 1 and from 2 OS threads at once, all on one hot key: what the router's hit
//! path costs a thread (ns/hit) and how its throughput grows with a second thread on the other
//! core (the 2-thread/1-thread ratio of hits/s). Goals: ≤ 300 ns a hit on one thread, ≥ 1.7×
//! with 2 threads on 2 cores. Every thread reads the same key, the hottest case: whatever the
//! threads share on the hit path (a lock, a counter's cache line), they meet on it here.
//!
//! ```text
//! cargo build -p hotkey --release   # the module the server loads
//! cargo bench -p hotkey-router --bench hit_threads
//! ```
//!
//! Each figure is given twice: by the wall clock, and by the CPU time the threads spent, which
//! a loaded machine changes less. The CPU ratio is what two free cores would give only if the
//! threads share nothing: when the machine lets them run side by side, what they share (moka's
//! read buffer and entry, which the cache's per-thread front keeps off the hit path) raises each
//! one's CPU per hit, and when it seldom does, it hides that.
//!
//! Each thread drives `Router::query::<Vec<u8>>(GET page:home)` (a 500-byte value), the
//! router's cache alone (served from the thread's front after its first hit), and moka alone,
//! built with one TTL and no weigher (its lighter settings), on a
//! current-thread runtime of its own; the router's link runs on a 1-worker runtime. The variants
//! alternate over `ROUNDS` rounds, and each figure is the median of its rounds, so a burst of
//! other load on the machine touches both. Run without `--bench` (`cargo test --bench
//! hit_threads`) it makes one short round of each, as a smoke test.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use hotkey_router::cache::{Cache, Cached};
use hotkey_router::redis::{self, Value};
use hotkey_router::{Options, Router, Target};
use hotkey_testkit::Server;

const HOME_PAGE: &str = "page:home";
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Rounds of each variant (1 thread, 2 threads), alternated.
const ROUNDS: usize = 9;

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let hits_per_thread: u64 = if full { 1_000_000 } else { 10_000 };
    let rounds = if full { ROUNDS } else { 1 };

    let server = Server::builder()
        .module_arg("cache-ttl-ms", "600000")
        .start();
    let mut conn = server.conn();
    let page = format!("{{\"title\":\"home\",\"body\":\"{}\"}}", "x".repeat(480));
    let _: () = redis::cmd("SET")
        .arg(HOME_PAGE)
        .arg(&page)
        .query(&mut conn)
        .expect("SET home page");
    let _: () = redis::cmd("HOTKEY.PIN")
        .arg(HOME_PAGE)
        .query(&mut conn)
        .expect("HOTKEY.PIN");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let router = runtime
        .block_on(Router::connect(server.url(), Options::default()))
        .expect("connect the router");
    let mut get = redis::cmd("GET");
    get.arg(HOME_PAGE);
    let deadline = Instant::now() + READY_TIMEOUT;
    while router.route(&get) != Target::Cache {
        assert!(
            Instant::now() < deadline,
            "the router does not cache {HOME_PAGE} after {READY_TIMEOUT:?}\n{}",
            server.log_tail()
        );
        thread::sleep(Duration::from_millis(20));
    }
    let filled: Vec<u8> = runtime.block_on(router.query(&get)).expect("fill");
    assert_eq!(filled, page.as_bytes());

    // The cache alone, as the router uses it (the same entry's command, one epoch).
    let cache: Cache = Cache::new(1 << 20);
    let packed = get.get_packed_command();
    runtime
        .block_on(cache.get_or_fill(packed.clone().into_boxed_slice(), async {
            Ok::<_, ()>(Arc::new(Cached::new(
                Value::BulkString(page.clone().into_bytes()),
                1,
                Duration::from_secs(600),
            )))
        }))
        .expect("fill the bare cache");

    // moka with fewer features than the router's cache (no per-entry expiry, no weigher: one
    // TTL and a count of entries), to see what its settings cost on a hit.
    let plain: moka::future::Cache<Box<[u8]>, Arc<Cached>, rustc_hash::FxBuildHasher> =
        moka::future::Cache::builder()
            .max_capacity(10_000)
            .time_to_live(Duration::from_secs(600))
            .build_with_hasher(rustc_hash::FxBuildHasher);
    runtime.block_on(plain.insert(
        packed.clone().into_boxed_slice(),
        Arc::new(Cached::new(
            Value::BulkString(page.clone().into_bytes()),
            1,
            Duration::from_secs(600),
        )),
    ));
    let plain_get = || async {
        let hit = plain.get(packed.as_slice()).await.expect("plain moka hit");
        std::hint::black_box(hit);
    };
    let query = || async {
        let value: Vec<u8> = router.query(&get).await.expect("cache hit");
        std::hint::black_box(value);
    };
    let bare = || async {
        let hit = cache.get(&packed, 1).await.expect("bare cache hit");
        std::hint::black_box(hit);
    };
    let nothing = || async {
        let mut x = 1u64;
        for i in 0..40 {
            x = std::hint::black_box(x.wrapping_mul(i) ^ 7);
        }
        std::hint::black_box(x);
    };
    let names = [
        "Router::query (cache hit)",
        "cache::Cache::get alone (thread's front)",
        "moka get, one TTL, no weigher",
        "shares nothing (the machine's ceiling)",
    ];
    let mut results = vec![(Vec::new(), Vec::new()); names.len()];
    for _ in 0..rounds {
        for threads in [1, 2] {
            let ops = [
                hammer(&query, threads, hits_per_thread),
                hammer(&bare, threads, hits_per_thread),
                hammer(&plain_get, threads, hits_per_thread),
                hammer(&nothing, threads, hits_per_thread),
            ];
            for (result, ops) in results.iter_mut().zip(ops) {
                if threads == 1 {
                    result.0.push(ops)
                } else {
                    result.1.push(ops)
                }
            }
        }
    }
    let m = router.metrics();
    let hits = 3 * rounds as u64 * hits_per_thread;
    assert!(
        m.cache_hits == hits && m.cache_misses == 1,
        "the hammered reads were not all cache hits: {m:?}"
    );

    println!(
        "hit_threads: {rounds} rounds of {hits_per_thread} hits a thread, medians; load {}",
        load_average()
    );
    println!(
        "  {:<40} {:>19} {:>19} {:>10} {:>10}",
        "", "wall ns/op 1t / 2t", "CPU ns/op 1t / 2t", "wall 2/1", "CPU 2/1"
    );
    for (name, (one, two)) in names.iter().zip(&mut results) {
        let wall = |runs: &mut Vec<Run>| {
            median(&mut runs.iter().map(|r| r.ops_per_sec).collect::<Vec<_>>())
        };
        let cpu = |runs: &mut Vec<Run>| {
            median(&mut runs.iter().map(|r| r.cpu_ns_per_op).collect::<Vec<_>>())
        };
        let (wall_one, wall_two, cpu_one, cpu_two) = (wall(one), wall(two), cpu(one), cpu(two));
        println!(
            "  {name:<40} {:>9.0} / {:>7.0} {:>9.0} / {:>7.0} {:>9.2}× {:>9.2}×",
            1e9 / wall_one,
            1e9 / wall_two,
            cpu_one,
            cpu_two,
            wall_two / wall_one,
            2.0 * cpu_one / cpu_two
        );
    }
    drop(router);
    drop(runtime);
}

/// What one run of a variant measured.
#[derive(Clone, Copy)]
struct Run {
    /// Operations/s of all the threads, from the moment they start together to the moment the
    /// last one is done.
    ops_per_sec: f64,
    /// CPU time the threads spent, per operation (`/proc/thread-self/schedstat`): what an
    /// operation costs whatever else runs on the machine. `2 × 1-thread / 2-thread` of it is
    /// the throughput ratio two threads reach on two free cores.
    cpu_ns_per_op: f64,
}

/// `threads` threads each do `work` `hits` times.
fn hammer<W, F>(work: &W, threads: usize, hits: u64) -> Run
where
    W: Fn() -> F + Sync,
    F: Future<Output = ()>,
{
    let start = Barrier::new(threads + 1);
    let (elapsed, cpu_ns) = thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .build()
                        .expect("runtime of a hammering thread");
                    start.wait();
                    let cpu_before = thread_cpu_ns();
                    runtime.block_on(async {
                        for _ in 0..hits {
                            work().await;
                        }
                    });
                    (Instant::now(), thread_cpu_ns() - cpu_before)
                })
            })
            .collect();
        start.wait();
        let began = Instant::now();
        let ends: Vec<(Instant, u64)> = workers
            .into_iter()
            .map(|w| w.join().expect("hammering thread"))
            .collect();
        let last = ends.iter().map(|e| e.0).max().unwrap_or(began);
        (last - began, ends.iter().map(|e| e.1).sum::<u64>())
    });
    let ops = (threads as u64 * hits) as f64;
    Run {
        ops_per_sec: ops / elapsed.as_secs_f64(),
        cpu_ns_per_op: cpu_ns as f64 / ops,
    }
}

/// The calling thread's time on a CPU so far, in ns (the first field of its schedstat).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .expect("/proc/thread-self/schedstat")
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
