//! `MODULE UNLOAD` + `MODULE LOAD` under traffic leaves `used_memory` flat: whatever a run of
//! the module allocates through the server's allocator, unloading gives back.
//! (`scripts/reload-leak.sh` runs 200 cycles and prints the figure the book quotes.)

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use hotkey_testkit::Server;

/// Reloads before the measurement: the first runs settle the allocator's caches and the
/// server's own lazily grown structures.
const WARM_UP: usize = 10;
/// Reloads measured.
const CYCLES: usize = 100;
/// The growth allowed per reload, averaged over `CYCLES`. The module leaked about 18 KiB per
/// reload (a detached context the `redis_module!` macro took at every load). A module that
/// leaks nothing reads 0 ± 150 bytes per reload here (Redis 7.0.15, 8.6.2, Valkey 8.1.8,
/// 9.1.2): the server's own structures now and then take or give back one step of ~15 KB.
const MAX_GROWTH_PER_CYCLE: i64 = 1024;
/// Readings of `used_memory` at most, waiting for two in a row to agree.
const SETTLE: usize = 6;
/// Distinct keys of the traffic: few enough that the data set stops growing in the warm-up.
const KEYS: usize = 500;

fn key(n: usize) -> String {
    format!("key:{}", n % KEYS)
}

/// `used_memory` of `INFO memory` in the same state each time: no traffic, every key written
/// and read once since the module was loaded (so the tracker holds the same keys), the slow
/// log empty, the lowest of a few readings. Each step runs on a connection of its own, closed
/// after it, so that no client's grown buffers are in one reading and not the other.
fn reading(server: &Server) -> i64 {
    let mut touch = redis::pipe();
    for n in 0..KEYS {
        touch.cmd("SET").arg(key(n)).arg("value").ignore();
        touch.cmd("GET").arg(key(n)).ignore();
    }
    let () = touch
        .query(&mut server.conn())
        .expect("SET and GET of every key");
    // A reload can take longer than `slowlog-log-slower-than`: the entries it leaves, up to
    // `slowlog-max-len`, are the server's memory, not a leak.
    let () = redis::cmd("SLOWLOG")
        .arg("RESET")
        .query(&mut server.conn())
        .expect("SLOWLOG RESET");
    let mut conn = server.conn();
    (0..5)
        .map(|_| {
            thread::sleep(Duration::from_millis(20));
            let info: String = redis::cmd("INFO")
                .arg("memory")
                .query(&mut conn)
                .expect("INFO memory");
            info.lines()
                .find_map(|l| l.strip_prefix("used_memory:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("INFO memory has no used_memory:\n{info}"))
        })
        .min()
        .unwrap_or_default()
}

/// `reading` repeated until two in a row agree (at most `SETTLE` times): the first passes
/// over the keys after a load still grow the server's and the module's structures to their
/// working size (measured: up to three passes, about 25 KB in all).
fn used_memory(server: &Server) -> i64 {
    let mut last = reading(server);
    for _ in 1..SETTLE {
        let now = reading(server);
        if now == last {
            break;
        }
        last = now;
    }
    last
}

/// GET/SET traffic on its own connection, from `start` until `stop`.
struct Traffic {
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<Result<u64, String>>,
}

impl Traffic {
    fn start(server: &Server) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let (mut conn, flag) = (server.conn(), Arc::clone(&stop));
        let thread = thread::spawn(move || {
            let mut sent = 0u64;
            while !flag.load(Ordering::Relaxed) {
                let key = key(sent as usize);
                let sent_ok = if sent.is_multiple_of(2) {
                    redis::cmd("SET")
                        .arg(&key)
                        .arg("value")
                        .query::<()>(&mut conn)
                } else {
                    redis::cmd("GET")
                        .arg(&key)
                        .query::<Option<String>>(&mut conn)
                        .map(drop)
                };
                sent_ok.map_err(|e| format!("GET/SET {key}: {e}"))?;
                sent += 1;
            }
            Ok(sent)
        });
        Traffic { stop, thread }
    }

    /// Stops the traffic; the number of commands it sent (at least one, or the test fails).
    fn stop(self, server: &Server) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let sent = self
            .thread
            .join()
            .expect("the traffic thread")
            .unwrap_or_else(|e| panic!("traffic during the reloads: {e}\n{}", server.log_tail()));
        assert!(sent > 0, "no traffic ran during the reloads");
        sent
    }
}

#[test]
fn reloading_under_traffic_leaves_used_memory_flat() {
    let server = Server::start();

    let traffic = Traffic::start(&server);
    for _ in 0..WARM_UP {
        server.reload_module(&["sample-max", "1"]);
    }
    traffic.stop(&server);
    let before = used_memory(&server);

    let traffic = Traffic::start(&server);
    for _ in 0..CYCLES {
        server.reload_module(&["sample-max", "1"]);
    }
    let sent = traffic.stop(&server);
    let after = used_memory(&server);

    let per_cycle = (after - before) / CYCLES as i64;
    assert!(
        per_cycle < MAX_GROWTH_PER_CYCLE,
        "used_memory grew by {per_cycle} bytes per reload ({before} → {after} over {CYCLES} \
         reloads, {sent} commands of traffic)"
    );
}
