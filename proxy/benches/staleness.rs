//! How stale a hot key's reads through the proxy can be (`cargo bench -p hotkey-proxy --bench
//! staleness`): the key is hot and cached with a TTL of a minute, so only an invalidation
//! ends a stale read.
//! - A write through the proxy, then a read through another client of the proxy: the read
//!   must see it (the cached reply is dropped before the write is acknowledged). Counted:
//!   stale reads (the goal is 0).
//! - A write made directly on the master: the proxy serves the old value until the server's
//!   invalidation reaches it. Measured: from the write's acknowledgement to the first read
//!   through the proxy that sees it (p50, p99, max), reading in a tight loop.

#[path = "../tests/proxy/common.rs"]
#[allow(dead_code)] // the tests' harness; this bench uses part of it
mod common;

use std::time::{Duration, Instant};

use common::{Proxy, master, pin};

/// Writes of each kind under `cargo bench`; `cargo test` runs the bench as a smoke run of a
/// few.
fn rounds() -> usize {
    if std::env::args().any(|a| a == "--bench") {
        1000
    } else {
        20
    }
}

fn get(conn: &mut redis::Connection) -> i64 {
    redis::cmd("GET").arg("stale:k").query(conn).expect("GET")
}

fn set(conn: &mut redis::Connection, v: usize) {
    let () = redis::cmd("SET")
        .arg("stale:k")
        .arg(v)
        .query(conn)
        .expect("SET");
}

fn main() {
    let rounds = rounds();
    let master = master(&[("cache-ttl-ms", "60000")]);
    let proxy = Proxy::start(&master, &[]);
    let mut writer = proxy.conn();
    let mut reader = proxy.conn();
    set(&mut writer, 0);
    pin(&master, b"stale:k");
    let deadline = Instant::now() + Duration::from_secs(30);
    while proxy.metric("hotkey_proxy_cache_hits_total").unwrap_or(0.0) < 1.0 {
        get(&mut reader);
        assert!(
            Instant::now() < deadline,
            "the key never became a cache hit"
        );
    }

    let mut stale = 0;
    for v in 1..=rounds {
        set(&mut writer, v);
        // The first read after the write fills the cache again, the second is a hit.
        for _ in 0..2 {
            if get(&mut reader) != v as i64 {
                stale += 1;
            }
        }
    }
    let hits = proxy.metric("hotkey_proxy_cache_hits_total").unwrap_or(0.0);
    println!(
        "writes through the proxy: {rounds} writes, {stale} stale reads of the {} after them ({hits} cache hits in all)",
        2 * rounds
    );

    let mut direct = master.conn();
    let mut lags = Vec::with_capacity(rounds);
    let mut stale_reads = 0u64;
    for v in rounds + 1..=2 * rounds {
        set(&mut direct, v);
        let acked = Instant::now();
        loop {
            if get(&mut reader) == v as i64 {
                break;
            }
            stale_reads += 1;
            assert!(
                acked.elapsed() < Duration::from_secs(10),
                "the proxy served the old value of stale:k for 10 s"
            );
        }
        lags.push(acked.elapsed());
        // Let the key be cached again before the next write.
        get(&mut reader);
    }
    lags.sort();
    let at = |q: f64| lags[((lags.len() as f64 * q) as usize).min(lags.len() - 1)];
    println!(
        "writes made elsewhere: {rounds} writes; stale for p50 {:?}, p99 {:?}, max {:?} after the \
         write's acknowledgement ({stale_reads} stale reads in all)",
        at(0.5),
        at(0.99),
        lags[lags.len() - 1]
    );
}
