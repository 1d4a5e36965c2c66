//! Detection latency at default settings: from the first request of a step load (one key going
//! from idle to 5× `hotkey.hot-threshold`) to its `hot` event reaching a subscriber, over 20
//! trials; and how long after its load stops the key's `cold` event arrives. Then the
//! hysteresis: one key each under a steady load of 0.8×, 1.0× and 1.2× the threshold for 60 s,
//! and how often it flipped (a `hot` at 0.8×; a `cold`, or a second `hot`, at any level).
//!
//! A real `redis-server` with the release module (defaults, sampling included), background
//! traffic of ~20 000 GET/s over 100 000 cold keys, the step load pipelined in 1 ms slots.
//!
//! With `--cluster`, the same on one master of a 3 × 1 Redis Cluster: the step and the
//! background traffic go to keys of that master's slots, the events are read from its shard's
//! sharded channel.
//!
//! ```text
//! cargo bench --bench detect
//! cargo bench --bench detect -- --cluster
//! cargo bench --bench detect -- --steady-secs 10    # shorter steady loads
//! HOTKEY_REDIS_SERVER=/path/to/valkey-server cargo bench --bench detect
//! ```

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use hotkey_protocol::{Message, Routes};
use hotkey_testkit::{
    ChannelListener, Cluster, Server, Subscriber, is_cold, is_hot, load, server_binary,
};

const TRIALS: usize = 20;
const THRESHOLD: u64 = 1000;
const STEP: u64 = 5 * THRESHOLD;
const STEP_FOR: Duration = Duration::from_millis(1500);
const BACKGROUND_PER_SEC: u64 = 20_000;
/// The steady loads of the hysteresis check, as multiples of the threshold.
const STEADY_LEVELS: [f64; 3] = [0.8, 1.0, 1.2];
const STEADY_FOR: Duration = Duration::from_secs(60);

fn main() {
    // `cargo test --all-targets` runs bench binaries too, without `--bench`: a 90-second run
    // against a real server belongs to `cargo bench` only.
    if !std::env::args().any(|a| a == "--bench") {
        println!("detect: a benchmark; run it with `cargo bench --bench detect`");
        return;
    }
    // The builders start from `sample-max 1` (count everything); the bench wants the default.
    let on_cluster = std::env::args().any(|a| a == "--cluster");
    let args: Vec<String> = std::env::args().collect();
    let steady_for = args
        .iter()
        .position(|a| a == "--steady-secs")
        .and_then(|i| args.get(i + 1))
        .map_or(STEADY_FOR, |s| {
            Duration::from_secs(s.parse().expect("--steady-secs takes whole seconds"))
        });
    // The guards live to the end of main, which stops every server.
    let cluster = on_cluster.then(|| {
        Cluster::builder(3, 1)
            .module_arg("sample-max", "64")
            .start()
    });
    let server = (!on_cluster).then(|| Server::builder().module_arg("sample-max", "64").start());
    let (node, events, tag): (Box<dyn Fn() -> redis::Connection + '_>, Events, String) =
        match (&cluster, &server) {
            (Some(cluster), _) => {
                let master = cluster.masters()[0];
                let reply: redis::Value = redis::cmd("HOTKEY.ROUTES")
                    .query(&mut master.conn())
                    .expect("ROUTES");
                let routes = Routes::from_redis(&reply).expect("ROUTES reply");
                let events =
                    Events::Sharded(ChannelListener::new(&master.addr(), &routes.channel, true));
                // Every key of the bench carries a hash tag of this master's slots.
                let tag = (0..)
                    .map(|i| format!("t{i}"))
                    .find(|t| cluster.node_for_key(t.as_bytes()).id == master.id)
                    .expect("a tag on the master");
                (Box::new(|| master.conn()), events, format!("{{{tag}}}"))
            }
            (None, Some(server)) => {
                let events =
                    Events::Plain(Subscriber::new(server, hotkey_protocol::DEFAULT_CHANNEL));
                (Box::new(|| server.conn()), events, String::new())
            }
            (None, None) => unreachable!("one of the two is started"),
        };
    let stop = Arc::new(AtomicBool::new(false));
    let background = {
        let mut conn = node();
        let stop = stop.clone();
        let tag = tag.clone();
        thread::spawn(move || background_load(&mut conn, &tag, &stop))
    };
    // Let sampling tune itself to the background load.
    thread::sleep(Duration::from_secs(2));

    let mut detect = Vec::new();
    let mut cool = Vec::new();
    for trial in 0..TRIALS {
        // Each trial follows a cold event, which goes out at a tick: start the step at a
        // random phase of the tick period instead, as a real load would.
        thread::sleep(Duration::from_millis((trial as u64 * 37) % 100));
        let key = format!("{tag}step:{trial}").into_bytes();
        let mut conn = node();
        let step_key = key.clone();
        let started = Instant::now();
        let step = thread::spawn(move || load(&mut conn, &step_key, STEP, STEP_FOR));
        let hot = events.wait_for(Duration::from_secs(10), |m| is_hot(m, &key));
        let hot_at = hot.unwrap_or_else(|| panic!("no hot event for trial {trial}"));
        detect.push(hot_at.duration_since(started));
        step.join().expect("step load");
        let stopped = Instant::now();
        let cold = events.wait_for(Duration::from_secs(30), |m| is_cold(m, &key));
        let cold_at = cold.unwrap_or_else(|| panic!("no cold event for trial {trial}"));
        cool.push(cold_at.duration_since(stopped));
    }
    let steady: Vec<(f64, Flips)> = STEADY_LEVELS
        .iter()
        .map(|&level| {
            let key = format!("{tag}steady:{level}").into_bytes();
            let mut conn = node();
            let load_key = key.clone();
            let per_sec = (level * THRESHOLD as f64) as u64;
            let steady = thread::spawn(move || load(&mut conn, &load_key, per_sec, steady_for));
            let flips = events.flips(&key, steady_for, level < 1.0);
            steady.join().expect("steady load");
            (level, flips)
        })
        .collect();
    stop.store(true, Ordering::Relaxed);
    let served = background.join().expect("background load");

    println!(
        "server: {}{}; {TRIALS} trials; step to {STEP} GET/s; background {served} GET over the run",
        server_binary(),
        if on_cluster {
            " (a master of a 3 x 1 cluster)"
        } else {
            ""
        }
    );
    report("detection (first request → hot event)", &mut detect);
    report("cool-down (load stopped → cold event)", &mut cool);
    for (level, f) in steady {
        println!(
            "steady {level:.1}x threshold for {} s: {} hot, {} cold → {} flips",
            steady_for.as_secs(),
            f.hot,
            f.cold,
            f.spurious
        );
    }
}

/// The events of one key under a steady load.
struct Flips {
    hot: u32,
    cold: u32,
    /// Changes the load does not explain: every one below the threshold; at or above it, all
    /// but the first `hot`.
    spurious: u32,
}

/// The events of the node under test: its classic channel, or its shard's sharded one.
enum Events {
    Plain(Subscriber),
    Sharded(ChannelListener),
}

impl Events {
    /// When the first message `want` accepts arrived, within `timeout`.
    fn wait_for(&self, timeout: Duration, want: impl Fn(&Message) -> bool) -> Option<Instant> {
        match self {
            Events::Plain(s) => s.wait_for(timeout, want, |_| {}).map(|(at, _)| at),
            Events::Sharded(l) => l.wait_for(timeout, want).map(|_| Instant::now()),
        }
    }

    /// Counts `key`'s `hot` and `cold` events for `watch` (the heartbeats, once a second, end
    /// the wait on time). `below`: the load is below the threshold, so even one `hot` is wrong.
    fn flips(&self, key: &[u8], watch: Duration, below: bool) -> Flips {
        let end = Instant::now() + watch;
        let (hot, cold) = (Cell::new(0), Cell::new(0));
        let count = |m: &Message| {
            if is_hot(m, key) {
                hot.set(hot.get() + 1);
            } else if is_cold(m, key) {
                cold.set(cold.get() + 1);
            }
            Instant::now() >= end
        };
        self.wait_for(watch + Duration::from_secs(10), count);
        let (hot, cold) = (hot.get(), cold.get());
        let expected = u32::from(!below && hot > 0);
        Flips {
            hot,
            cold,
            spurious: hot + cold - expected,
        }
    }
}

/// GETs of random cold keys (prefixed with `tag`) at about BACKGROUND_PER_SEC until `stop`;
/// returns how many.
fn background_load(conn: &mut redis::Connection, tag: &str, stop: &AtomicBool) -> u64 {
    let start = Instant::now();
    let mut sent = 0u64;
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    while !stop.load(Ordering::Relaxed) {
        let due = (start.elapsed().as_secs_f64() * BACKGROUND_PER_SEC as f64) as u64;
        if sent >= due {
            thread::sleep(Duration::from_millis(1));
            continue;
        }
        let batch = (due - sent).min(500);
        let mut pipe = redis::pipe();
        for _ in 0..batch {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            pipe.cmd("GET")
                .arg(format!("{tag}bg:{}", seed % 100_000))
                .ignore();
        }
        let () = pipe.query(conn).expect("background GETs");
        sent += batch;
    }
    sent
}

fn report(what: &str, samples: &mut [Duration]) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "{what}: p50 {:.0} ms, p99 {:.0} ms, min {:.0} ms, max {:.0} ms",
        ms(at(0.5)),
        ms(at(0.99)),
        ms(samples[0]),
        ms(samples[samples.len() - 1])
    );
}
