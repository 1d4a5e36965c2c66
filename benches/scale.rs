//! The module's side of a large hot set: with 0, 1, 100 and 1,000 keys hot at once
//! (`hotkey.max-hot 1000`, the keys pinned with `HOTKEY.PIN`, which the snapshot lists like
//! detected ones), the size of the `HOTKEY.ROUTES` reply and a router's resync: a new
//! connection, `HOTKEY.ROUTES`, and the reply parsed into [`Routes`] (what a router reads before
//! it installs its table), as the median and the slowest of 50 rounds; and the server's own
//! time per `HOTKEY.ROUTES` call (`INFO commandstats`).
//!
//! ```text
//! cargo bench --bench scale
//! ```

use std::time::{Duration, Instant};

use hotkey_protocol::Routes;
use hotkey_testkit::{Server, server_binary};
use redis::Value;

const ROUNDS: usize = 50;
const SIZES: [usize; 4] = [0, 1, 100, 1000];

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("scale: a benchmark; run it with `cargo bench --bench scale`");
        return;
    }
    let server = Server::builder().module_arg("max-hot", "1000").start();
    let mut admin = server.conn();
    println!(
        "server: {server_binary}; {ROUNDS} rounds per size",
        server_binary = server_binary()
    );
    println!("| keys hot | ROUTES reply | resync p50 | resync max | server time per ROUTES |");
    println!("| --- | --- | --- | --- | --- |");
    let mut pinned = 0;
    for size in SIZES {
        if size > pinned {
            let mut pipe = redis::pipe();
            for i in pinned..size {
                pipe.cmd("HOTKEY.PIN").arg(format!("user:{i:06}")).ignore();
            }
            let () = pipe.query(&mut admin).expect("HOTKEY.PIN");
            pinned = size;
        }
        let () = redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query(&mut admin)
            .expect("CONFIG RESETSTAT");
        let mut times = Vec::with_capacity(ROUNDS);
        let mut bytes = 0;
        for _ in 0..ROUNDS {
            let started = Instant::now();
            let mut conn = server.conn();
            let reply: Value = redis::cmd("HOTKEY.ROUTES")
                .query(&mut conn)
                .expect("HOTKEY.ROUTES");
            let routes = Routes::from_redis(&reply).expect("ROUTES reply");
            times.push(started.elapsed());
            assert_eq!(routes.keys.len(), size, "every pinned key in the snapshot");
            bytes = resp2_len(&reply);
        }
        times.sort();
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query(&mut admin)
            .expect("INFO commandstats");
        println!(
            "| {size} | {bytes} B | {} | {} | {} µs |",
            ms(times[ROUNDS / 2]),
            ms(times[ROUNDS - 1]),
            usec_per_call(&info, "hotkey.routes").expect("hotkey.routes in commandstats")
        );
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// `usec_per_call` of `command` in `INFO commandstats`.
fn usec_per_call(info: &str, command: &str) -> Option<f64> {
    let line = info
        .lines()
        .find(|l| l.starts_with(&format!("cmdstat_{command}:")))?;
    let field = line
        .split(',')
        .find_map(|f| f.strip_prefix("usec_per_call="))?;
    field.parse().ok()
}

/// The size of a RESP2 reply on the wire.
fn resp2_len(v: &Value) -> usize {
    let header = |tag: usize| 1 + tag.to_string().len() + 2;
    match v {
        Value::Nil => 5,
        Value::Int(i) => 1 + i.to_string().len() + 2,
        Value::BulkString(b) => header(b.len()) + b.len() + 2,
        Value::Array(items) => header(items.len()) + items.iter().map(resp2_len).sum::<usize>(),
        Value::SimpleString(s) => 1 + s.len() + 2,
        Value::Okay => 5,
        other => panic!("not a RESP2 value: {other:?}"),
    }
}
