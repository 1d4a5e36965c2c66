//! How the router's memory and routing cost grow with the number of hot keys: 1, 100 and
//! 1,000 keys hot at once (pinned, `hotkey.max-hot 2000`), each a 100-byte string. Goal:
//! nothing grows faster than linearly (bytes per hot key, ns per decision flat).
//!
//! ```text
//! cargo build -p hotkey --release   # the module the server loads
//! cargo bench -p hotkey-router --bench hot_keys
//! ```
//!
//! Memory is the heap this process holds (a counting allocator: bytes allocated and not yet
//! freed), so it is exact and free of the allocator's own caching:
//! - *router*: after `Router::connect` has read the hot set, minus before it;
//! - *cache*: after one read of each hot key (every reply cached), minus before it;
//! - *a key more*: the bytes each hot key added since the row before.
//!
//! Cost, in ns per call, median of `ROUNDS` passes over every hot key in turn: `route()` of
//! `GET` of a hot key and of a cold key (decision, no I/O), and a cache hit
//! (`query::<Vec<u8>>`). Run without `--bench` (`cargo test --bench hot_keys`) it makes one
//! short pass, as a smoke test.

// A global allocator is an unsafe trait: `Counting` is this bench's only unsafe code, three
// calls passed on to the system allocator unchanged.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use hotkey_router::redis::{self, Cmd};
use hotkey_router::{Options, Router, Target};
use hotkey_testkit::Server;

/// The system allocator, keeping count of the bytes it holds for this process.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed on to `System` unchanged; the count is all that is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's layout, as `GlobalAlloc::alloc` requires.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: as `GlobalAlloc::realloc` requires, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const SIZES: [usize; 3] = [1, 100, 1_000];
const ROUNDS: usize = 9;
const READY_TIMEOUT: Duration = Duration::from_secs(20);
const COLD: &str = "user:1001:profile";

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (sizes, rounds, calls): (&[usize], usize, usize) = if full {
        (&SIZES, ROUNDS, 200_000)
    } else {
        (&SIZES[..2], 1, 1_000)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");

    let mut rows = Vec::new();
    for &n in sizes {
        rows.push(measure(&runtime, n, rounds, calls));
    }
    println!("hot_keys: {rounds} rounds, load {}", load_average());
    println!(
        "  {:>8} {:>13} {:>13} {:>13} {:>13} {:>9} {:>9} {:>7}",
        "hot keys",
        "router bytes",
        "a key more",
        "cache bytes",
        "a key more",
        "route hot",
        "route cold",
        "hit"
    );
    let mut previous: Option<&Row> = None;
    for r in &rows {
        // Bytes per hot key added since the previous row (the first row: per key).
        let more = |bytes: isize, before: isize, keys: usize| (bytes - before) as f64 / keys as f64;
        let (router_more, cache_more) = match previous {
            Some(p) => (
                more(r.router_bytes, p.router_bytes, r.keys - p.keys),
                more(r.cache_bytes, p.cache_bytes, r.keys - p.keys),
            ),
            None => (
                more(r.router_bytes, 0, r.keys),
                more(r.cache_bytes, 0, r.keys),
            ),
        };
        println!(
            "  {:>8} {:>13} {:>13.0} {:>13} {:>13.0} {:>6.0} ns {:>7.0} ns {:>4.0} ns",
            r.keys,
            r.router_bytes,
            router_more,
            r.cache_bytes,
            cache_more,
            r.route_hot_ns,
            r.route_cold_ns,
            r.hit_ns
        );
        previous = Some(r);
    }
}

struct Row {
    keys: usize,
    router_bytes: isize,
    cache_bytes: isize,
    route_hot_ns: f64,
    route_cold_ns: f64,
    hit_ns: f64,
}

fn key(i: usize) -> String {
    format!("item:{i:05}")
}

fn get(key: &str) -> Cmd {
    let mut cmd = redis::cmd("GET");
    cmd.arg(key);
    cmd
}

/// A server with `n` hot keys, a router on it: its memory and its costs.
fn measure(runtime: &tokio::runtime::Runtime, n: usize, rounds: usize, calls: usize) -> Row {
    let server = Server::builder()
        .module_arg("cache-ttl-ms", "600000")
        .module_arg("max-hot", "2000")
        .start();
    let mut conn = server.conn();
    let mut pipe = redis::pipe();
    for i in 0..n {
        pipe.cmd("SET").arg(key(i)).arg("v".repeat(100)).ignore();
        pipe.cmd("HOTKEY.PIN").arg(key(i)).ignore();
    }
    let _: () = pipe.query(&mut conn).expect("SET and HOTKEY.PIN every key");
    let gets: Vec<Cmd> = (0..n).map(|i| get(&key(i))).collect();
    drop(pipe);

    let before = LIVE.load(Ordering::Relaxed);
    let router = runtime
        .block_on(Router::connect(server.url(), Options::default()))
        .expect("connect the router");
    let deadline = Instant::now() + READY_TIMEOUT;
    while router.hot_keys().len() < n {
        assert!(
            Instant::now() < deadline,
            "the router has {} of {n} hot keys after {READY_TIMEOUT:?}",
            router.hot_keys().len()
        );
        thread::sleep(Duration::from_millis(20));
    }
    let router_bytes = LIVE.load(Ordering::Relaxed) - before;
    for cmd in &gets {
        assert_eq!(router.route(cmd), Target::Cache, "{cmd:?}");
    }

    let before = LIVE.load(Ordering::Relaxed);
    for cmd in &gets {
        let _: Vec<u8> = runtime.block_on(router.query(cmd)).expect("fill");
    }
    let cache_bytes = LIVE.load(Ordering::Relaxed) - before;
    let filled = router.metrics();
    assert_eq!(filled.cache_misses, n as u64, "{filled:?}");

    let cold = get(COLD);
    let mut route_hot = Vec::new();
    let mut route_cold = Vec::new();
    let mut hit = Vec::new();
    for _ in 0..rounds {
        route_hot.push(per_call(calls, |i| {
            black_box(router.route(black_box(&gets[i % n])));
        }));
        route_cold.push(per_call(calls, |_| {
            black_box(router.route(black_box(&cold)));
        }));
        hit.push(runtime.block_on(async {
            let start = Instant::now();
            for i in 0..calls {
                let value: Vec<u8> = router.query(&gets[i % n]).await.expect("cache hit");
                black_box(value);
            }
            start.elapsed().as_nanos() as f64 / calls as f64
        }));
    }
    let m = router.metrics();
    assert!(
        m.cache_misses == filled.cache_misses && m.master == filled.master,
        "reads missed the cache while measured: {filled:?} then {m:?}"
    );
    drop(router);
    Row {
        keys: n,
        router_bytes,
        cache_bytes,
        route_hot_ns: median(&mut route_hot),
        route_cold_ns: median(&mut route_cold),
        hit_ns: median(&mut hit),
    }
}

/// ns per call of `f` over `calls` calls (given the call's number).
fn per_call(calls: usize, mut f: impl FnMut(usize)) -> f64 {
    let start = Instant::now();
    for i in 0..calls {
        f(i);
    }
    start.elapsed().as_nanos() as f64 / calls as f64
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
