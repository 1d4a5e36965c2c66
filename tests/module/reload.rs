//! `MODULE UNLOAD` + `MODULE LOAD` under traffic leaves `used_memory` flat: whatever a run of
//! the module allocates through the server's allocator, unloading gives back.
//! (`scripts/reload-leak.sh` runs 200 cycles and prints the figure the README quotes.)

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use hotkey_testkit::Server;
use redis::Connection;

/// Reloads before the measurement: the first runs settle the allocator's caches and the
/// server's own lazily grown structures.
const WARM_UP: usize = 10;
/// Reloads measured.
const CYCLES: usize = 40;
/// The growth allowed per reload, averaged over `CYCLES`. The module leaked about 18 KiB per
/// reload; with nothing leaking the average stays within a few hundred bytes of noise from
/// the traffic's client buffers (measured on Redis 7.0.15, 8.6.2 and Valkey 8.1.8, 9.1.2).
const MAX_GROWTH_PER_CYCLE: i64 = 1024;
/// Distinct keys of the traffic: few enough that the data set stops growing in the warm-up.
const KEYS: usize = 500;

/// `used_memory` of `INFO memory`: the lowest of a few readings, so that a client buffer
/// that happens to be full at one instant does not count.
fn used_memory(conn: &mut Connection) -> i64 {
    (0..5)
        .map(|_| {
            thread::sleep(Duration::from_millis(20));
            let info: String = redis::cmd("INFO")
                .arg("memory")
                .query(conn)
                .expect("INFO memory");
            info.lines()
                .find_map(|l| l.strip_prefix("used_memory:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("INFO memory has no used_memory:\n{info}"))
        })
        .min()
        .unwrap_or_default()
}

/// GET/SET of `KEYS` keys until `stop`; the number of commands sent, or the first error.
fn traffic(mut conn: Connection, stop: Arc<AtomicBool>) -> Result<u64, String> {
    let mut sent = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let key = format!("key:{}", sent as usize % KEYS);
        if sent.is_multiple_of(2) {
            let () = redis::cmd("SET")
                .arg(&key)
                .arg("value")
                .query(&mut conn)
                .map_err(|e| format!("SET {key}: {e}"))?;
        } else {
            let _: Option<String> = redis::cmd("GET")
                .arg(&key)
                .query(&mut conn)
                .map_err(|e| format!("GET {key}: {e}"))?;
        }
        sent += 1;
    }
    Ok(sent)
}

#[test]
fn reloading_under_traffic_leaves_used_memory_flat() {
    let server = Server::start();
    let mut conn = server.conn();
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (conn, stop) = (server.conn(), Arc::clone(&stop));
        thread::spawn(move || traffic(conn, stop))
    };

    for _ in 0..WARM_UP {
        server.reload_module(&["sample-max", "1"]);
    }
    let before = used_memory(&mut conn);
    for _ in 0..CYCLES {
        server.reload_module(&["sample-max", "1"]);
    }
    let after = used_memory(&mut conn);

    stop.store(true, Ordering::Relaxed);
    let sent = load
        .join()
        .expect("the traffic thread")
        .unwrap_or_else(|e| panic!("traffic during the reloads: {e}\n{}", server.log_tail()));
    assert!(sent > 0, "no traffic ran during the reloads");
    let per_cycle = (after - before) / CYCLES as i64;
    assert!(
        per_cycle < MAX_GROWTH_PER_CYCLE,
        "used_memory grew by {per_cycle} bytes per reload ({before} → {after} over {CYCLES} \
         reloads, {sent} commands of traffic)"
    );
}
