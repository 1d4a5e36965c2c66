//! `hotkey-proxy --cluster` measured (`cargo bench -p hotkey-proxy --bench cluster`), with
//! redis-benchmark (50 clients) and every proxy on one worker thread, in one run:
//! - cold `GET`/`SET` (random keys, `-P 1` and `-P 16`) through the proxy in front of a 3 × 1
//!   cluster and through the proxy in front of one master with one replica, interleaved,
//!   medians of the rounds, with each proxy's CPU per request (`/proc/PID/stat`), and for
//!   scale the same load sent directly (`redis-benchmark --cluster` to the cluster);
//! - a hot `GET` (one key, detected by the module of its shard) through the cluster proxy with
//!   its cache, and through one with `--no-cache` (the shard's replica): the share of those
//!   reads that reached the key's master (its `INFO commandstats`);
//! - `MGET` of 10 keys over the 3 shards through the cluster proxy (split, sent in parallel,
//!   merged) against the same `MGET` sent directly to one master with the keys in one slot
//!   (hash tags).
//!
//! Under `cargo test` it is a smoke run with few requests.

#[path = "../tests/proxy/common.rs"]
#[allow(dead_code)] // the tests' harness; this bench uses part of it
mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Proxy, replicated};
use hotkey_testkit::{Cluster, Node};

/// Requests per redis-benchmark run, and rounds.
fn scale() -> (usize, usize) {
    if std::env::args().any(|a| a == "--bench") {
        (200_000, 3)
    } else {
        (2_000, 1)
    }
}

/// One redis-benchmark result.
#[derive(Debug, Clone, Copy)]
struct Run {
    rps: f64,
    p50_ms: f64,
}

/// CPU-seconds process `pid` has used (user + system, from `/proc/PID/stat`).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // The fields after the command name (which is in parentheses and may hold spaces).
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name; clock ticks
    // of 1/100 s (USER_HZ on Linux).
    (ticks(11) + ticks(12)) / 100.0
}

/// [`bench`] through `proxy`, and the proxy's CPU-seconds per 100k requests.
fn bench_proxy(proxy: &Proxy, n: usize, pipeline: usize, args: &[&str]) -> (Run, f64) {
    let before = cpu_seconds(proxy.pid());
    let run = bench(proxy.port, n, pipeline, args);
    let cpu = (cpu_seconds(proxy.pid()) - before) * 100_000.0 / n as f64;
    (run, cpu)
}

/// `redis-benchmark -p port -c 50 -n n [-P pipeline] <args>` (`args`: `-t get -r 100000`, or a
/// command), its `--csv` line read.
fn bench(port: u16, n: usize, pipeline: usize, args: &[&str]) -> Run {
    let out = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-c", "50"])
        .args(["-n", &n.to_string(), "-P", &pipeline.to_string(), "--csv"])
        .args(args)
        .output()
        .expect("redis-benchmark runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "redis-benchmark {args:?} on port {port}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",...
    let line = text
        .lines()
        .find(|l| l.starts_with('"') && !l.starts_with("\"test\""))
        .unwrap_or_else(|| panic!("no result from redis-benchmark {args:?}: {text}"));
    let fields: Vec<f64> = line
        .split(',')
        .skip(1)
        .filter_map(|f| f.trim_matches('"').parse().ok())
        .collect();
    assert!(fields.len() >= 4, "redis-benchmark's line: {line}");
    Run {
        rps: fields[0],
        p50_ms: fields[3],
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// `GET`s `node` has executed (`INFO commandstats`).
fn gets(node: &Node) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut node.conn())
        .expect("INFO commandstats");
    info.lines()
        .find_map(|l| l.trim().strip_prefix("cmdstat_get:calls="))
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

/// Reads `key` through `proxy` (redis-benchmark bursts) until the proxy's router has it hot.
fn until_hot(proxy: &Proxy, key: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        bench(proxy.port, 20_000, 1, &["GET", key]);
        let hot: f64 = proxy
            .metrics()
            .lines()
            .filter(|l| l.starts_with("hotkey_proxy_hot_keys{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        if hot > 0.0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{key} was not detected hot within 60 s"
        );
    }
}

/// The share (%) of `n` hot `GET`s of `key` through `proxy` that reached `owner`.
fn hot_share(proxy: &Proxy, owner: &Node, key: &str, n: usize) -> (f64, Run) {
    until_hot(proxy, key);
    // The detection's burst settles (reports, cache fills) before the measured run.
    bench(proxy.port, n / 10, 16, &["GET", key]);
    let before = gets(owner);
    let run = bench(proxy.port, n, 16, &["GET", key]);
    let reached = gets(owner) - before;
    (100.0 * reached as f64 / n as f64, run)
}

fn main() {
    let (n, rounds) = scale();
    let cluster = Cluster::builder(3, 1)
        .server_args(&["--repl-diskless-sync-delay", "0"])
        .start();
    let seed = cluster.urls()[0].clone();
    // Replicated as each master of the cluster is, so a write costs its master the same.
    let (single, _replica) = replicated(&[], 1);
    let on_cluster = Proxy::start_with(&["--cluster", &seed], &["--threads", "1"]);
    let on_master = Proxy::start(&single, &["--threads", "1"]);
    println!(
        "redis-benchmark, 50 clients, {n} requests, {rounds} rounds; load average {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );

    // Cold GET/SET: the two proxies interleaved in every round, and direct for scale.
    let cluster_port = cluster.masters()[0].port;
    for (test, pipeline) in [("set", 1), ("get", 1), ("set", 16), ("get", 16)] {
        let mut rows: [Vec<f64>; 6] = Default::default();
        for _ in 0..rounds {
            let args = ["-t", test, "-r", "100000"];
            let (run, cpu) = bench_proxy(&on_cluster, n, pipeline, &args);
            rows[0].push(run.rps);
            rows[1].push(cpu);
            let (run, cpu) = bench_proxy(&on_master, n, pipeline, &args);
            rows[2].push(run.rps);
            rows[3].push(cpu);
            rows[4].push(
                bench(
                    cluster_port,
                    n,
                    pipeline,
                    &["--cluster", "-t", test, "-r", "100000"],
                )
                .rps,
            );
            rows[5].push(bench(single.port, n, pipeline, &args).rps);
        }
        let [c, c_cpu, m, m_cpu, direct_cluster, direct_master] = rows.map(median);
        println!(
            "cold {test} -P {pipeline}: cluster proxy {c:.0} ops/s ({c_cpu:.3} CPU-s per 100k), \
             one-master proxy {m:.0} ops/s ({m_cpu:.3}): {:.2}×; direct: cluster {direct_cluster:.0}, \
             one master {direct_master:.0} ops/s",
            c / m
        );
    }

    // A hot GET on one shard: the cache, then replicas only.
    let key = "bench:hot";
    let owner = cluster.node_for_key(key.as_bytes());
    let () = redis::cmd("SET")
        .arg(key)
        .arg("v")
        .query(&mut owner.conn())
        .expect("SET the hot key");
    let (share, run) = hot_share(&on_cluster, owner, key, n);
    println!(
        "hot GET -P 16 through the cluster proxy with its cache: {share:.2} % on the owning master, {:.0} ops/s",
        run.rps
    );
    drop(on_cluster);
    let replicas_only = Proxy::start_with(&["--cluster", &seed], &["--threads", "1", "--no-cache"]);
    let (share, run) = hot_share(&replicas_only, owner, key, n);
    println!(
        "hot GET -P 16 through the cluster proxy, replicas only: {share:.2} % on the owning master, {:.0} ops/s",
        run.rps
    );

    // MGET of 10 keys over 3 shards, split, against one MGET on one master (hash tags).
    let keys: Vec<String> = (0..10).map(|i| format!("bench:m:{i}")).collect();
    let shards: std::collections::BTreeSet<String> = keys
        .iter()
        .map(|k| cluster.node_for_key(k.as_bytes()).id.clone())
        .collect();
    assert_eq!(shards.len(), 3, "the 10 keys cover the 3 shards");
    let tagged: Vec<String> = (0..10).map(|i| format!("{{bench:m}}:{i}")).collect();
    let direct = cluster.node_for_key(tagged[0].as_bytes());
    for (k, t) in keys.iter().zip(&tagged) {
        for key in [k, t] {
            let () = redis::cmd("SET")
                .arg(key)
                .arg("value")
                .query(&mut cluster.node_for_key(key.as_bytes()).conn())
                .expect("SET");
        }
    }
    let mget = |keys: &[String]| -> Vec<String> {
        std::iter::once("MGET".to_string())
            .chain(keys.iter().cloned())
            .collect()
    };
    let (split_args, direct_args) = (mget(&keys), mget(&tagged));
    let split_args: Vec<&str> = split_args.iter().map(String::as_str).collect();
    let direct_args: Vec<&str> = direct_args.iter().map(String::as_str).collect();
    let (mut split, mut one) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        split.push(bench(replicas_only.port, n / 4, 1, &split_args));
        one.push(bench(direct.port, n / 4, 1, &direct_args));
    }
    let p50 = |runs: &[Run]| median(runs.iter().map(|r| r.p50_ms).collect());
    let rps = |runs: &[Run]| median(runs.iter().map(|r| r.rps).collect());
    println!(
        "MGET of 10 keys, -P 1: split over 3 shards through the cluster proxy p50 {:.3} ms, {:.0} ops/s; \
         direct to one master (one slot) p50 {:.3} ms, {:.0} ops/s",
        p50(&split),
        rps(&split),
        p50(&one),
        rps(&one)
    );
}
