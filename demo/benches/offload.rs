//! The offload, measured: the leaderboard workload of `make run` (100 ZADD/s, 16 readers of the
//! top 10 as fast as they can, 3,000 GET/SET/s on cold keys) against a master with 0, 1 or 2
//! replicas, the players' router with and without its cache. For each configuration the bench
//! waits until the router has `leaderboard:global` in its hot set, lets one more second pass,
//! then measures for 10 s: leaderboard reads per second through the router, and the share of
//! those reads that the master served (its `cmdstat_zrevrange` delta over the reads answered),
//! the replicas served (theirs) and the cache served (the router's cache hits).
//!
//! The issue's goals: at most 5 % of the hot key's reads reach the master with replica routing,
//! at most 1 % with the cache. The `cluster 3×1` configurations run the same workload on a Redis
//! Cluster of 3 masters with a replica each (the testkit's `Cluster`, the module with its
//! defaults), through `Router::connect_cluster`: "to master" is then the master serving the
//! leaderboard's slot, "replicas" its replica. The `cluster 3×1 pipelined` configurations are
//! the same with each player request one pipeline (`redis::pipe()` through the router's
//! `query_pipeline`) of 10 top-10 reads and a cold `GET`/`SET` among them: the issue's goals
//! hold for a pipeline's hot reads too.
//!
//! ```text
//! cargo build --release                        # the module, target/release/libhotkey.so
//! cargo bench -p hotkey-demo --bench offload
//! cargo bench -p hotkey-demo --bench offload -- pipelined   # only the configurations so named
//! ```
//!
//! Nothing is pinned: the servers, the routers and the workload share the machine's cores, so
//! the absolute reads/s depend on the machine (and on what else runs); the shares are what the
//! goals are about. About a minute and a half in all.

use std::time::Duration;

use hotkey_demo::format::{fine_percent, percent, rate, thousands};
use hotkey_demo::{LEADERBOARD, Node, Probe, ReplicationGroup, Settings, Shares, Window, Workload};
use hotkey_router::{Error, Metrics};
use hotkey_testkit::Cluster as RedisCluster;
use hotkey_testkit::{module_path, server_binary};
use tokio::time::{Instant, sleep};

/// How long each configuration is measured.
const MEASURE: Duration = Duration::from_secs(10);
/// The wait between the detection and the measurement, so the window holds only the routed
/// steady state.
const SETTLE: Duration = Duration::from_secs(1);
/// The longest the bench waits for the detection before it gives up on a configuration.
const DETECT_TIMEOUT: Duration = Duration::from_secs(20);

/// The most of the hot key's reads that may reach the master with replica routing…
const GOAL_REPLICAS: f64 = 0.05;
/// …and with the cache.
const GOAL_CACHE: f64 = 0.01;

/// Leaderboard reads per pipeline in the `pipelined` configurations.
const PIPELINE: usize = 10;

/// The width of the configuration column.
const NAME: usize = 31;

struct Config {
    name: &'static str,
    replicas: usize,
    cache: bool,
    /// 3 masters × `replicas`, a cluster, instead of one master.
    cluster: bool,
    /// Leaderboard reads per player pipeline; 0 for single commands.
    pipeline: usize,
}

const CONFIGS: [Config; 8] = [
    Config {
        name: "0 replicas, no cache",
        replicas: 0,
        cache: false,
        cluster: false,
        pipeline: 0,
    },
    Config {
        name: "1 replica, no cache",
        replicas: 1,
        cache: false,
        cluster: false,
        pipeline: 0,
    },
    Config {
        name: "2 replicas, no cache",
        replicas: 2,
        cache: false,
        cluster: false,
        pipeline: 0,
    },
    Config {
        name: "2 replicas + cache",
        replicas: 2,
        cache: true,
        cluster: false,
        pipeline: 0,
    },
    Config {
        name: "cluster 3×1, no cache",
        replicas: 1,
        cache: false,
        cluster: true,
        pipeline: 0,
    },
    Config {
        name: "cluster 3×1 + cache",
        replicas: 1,
        cache: true,
        cluster: true,
        pipeline: 0,
    },
    Config {
        name: "cluster 3×1 pipelined, no cache",
        replicas: 1,
        cache: false,
        cluster: true,
        pipeline: PIPELINE,
    },
    Config {
        name: "cluster 3×1 pipelined + cache",
        replicas: 1,
        cache: true,
        cluster: true,
        pipeline: PIPELINE,
    },
];

/// One configuration's result.
struct Row {
    detected_after: Duration,
    reads_per_sec: f64,
    /// Leaderboard reads the master served in the window.
    master_reads: u64,
    shares: Shares,
    errors: u64,
    messages: Vec<String>,
    router: Metrics,
}

fn main() {
    // `cargo test --all-targets` runs bench binaries too, without `--bench`: a minute against
    // real servers belongs to `cargo bench` only.
    if !std::env::args().any(|a| a == "--bench") {
        println!("offload: a benchmark; run it with `cargo bench -p hotkey-demo --bench offload`");
        return;
    }
    // Arguments that are not flags choose the configurations whose names contain them.
    let chosen: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    println!(
        "server: {}; module: {}; measuring {:?} per configuration, {:?} after detection",
        server_binary(),
        module_path().display(),
        MEASURE,
        SETTLE
    );
    let results: Vec<(&Config, Result<Row, String>)> = CONFIGS
        .iter()
        .filter(|c| chosen.is_empty() || chosen.iter().any(|w| c.name.contains(w.as_str())))
        .map(|config| {
            let result = run(config);
            match &result {
                Ok(row) => {
                    println!(
                        "  {:<NAME$} detected {:.2} s after the surge; {} errors",
                        config.name,
                        row.detected_after.as_secs_f64(),
                        thousands(row.errors)
                    );
                    for message in &row.messages {
                        println!("      error: {message}");
                    }
                }
                Err(e) => println!("  {:<NAME$} failed: {e}", config.name),
            }
            (config, result)
        })
        .collect();

    println!(
        "\n{:<NAME$} {:>11} {:>17} {:>9} {:>8} {:>7}  goal",
        "configuration", "lb reads/s", "to master", "replicas", "cache", "errors"
    );
    for (config, result) in &results {
        let Ok(row) = result else {
            println!("{:<NAME$} failed", config.name);
            continue;
        };
        let goal = match (config.cache, config.replicas) {
            (true, _) => check(row.shares.master, GOAL_CACHE),
            (false, 0) => "(baseline)".to_string(),
            (false, _) => check(row.shares.master, GOAL_REPLICAS),
        };
        println!(
            "{:<NAME$} {:>11} {:>17} {:>9} {:>8} {:>7}  {goal}",
            config.name,
            rate(row.reads_per_sec),
            format!(
                "{} ({})",
                fine_percent(row.shares.master),
                thousands(row.master_reads)
            ),
            percent(row.shares.replicas),
            percent(row.shares.cache),
            thousands(row.errors)
        );
    }
    println!("\nthe players' router, over each whole run:");
    for (config, result) in &results {
        if let Ok(row) = result {
            println!("  {:<NAME$} {}", config.name, row.router);
        }
    }
}

fn check(master: f64, goal: f64) -> String {
    let verdict = if master <= goal { "met" } else { "MISSED" };
    format!("≤ {} to master: {verdict}", percent(goal))
}

/// Starts the servers of `config`, measures, stops them.
fn run(config: &Config) -> Result<Row, String> {
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| format!("cannot start the tokio runtime: {e}"))?;
    let settings = Settings {
        cache: config.cache,
        pipeline: config.pipeline,
        ..Settings::default()
    };
    if config.cluster {
        let cluster = RedisCluster::start(3, config.replicas);
        // The stats watch the leaderboard's shard: its master first, then its replicas.
        let master = cluster.node_for_key(LEADERBOARD.as_bytes());
        let nodes: Vec<Node> = std::iter::once(("master", master))
            .chain(cluster.replicas(master).into_iter().map(|r| ("replica", r)))
            .map(|(name, n)| Node {
                name: name.into(),
                port: n.port,
            })
            .collect();
        let row = runtime.block_on(async {
            let workload = Workload::start_cluster(&cluster.urls(), &settings, None).await;
            measure(&nodes, workload).await
        });
        drop(runtime);
        row
    } else {
        let group = ReplicationGroup::start(config.replicas)?;
        let row = runtime.block_on(async {
            let workload = Workload::start(&group.master_url(), &settings).await;
            measure(&group.nodes(), workload).await
        });
        // The routers stop before the servers do.
        drop(runtime);
        row
    }
}

async fn measure(nodes: &[Node], workload: Result<Workload, Error>) -> Result<Row, String> {
    let mut probe = Probe::connect(nodes)
        .await
        .map_err(|e| format!("connect for the stats: {e}"))?;
    let workload = workload.map_err(|e| format!("start the workload: {e}"))?;
    let surge = Instant::now();
    workload.surge();
    let detected = workload
        .wait_until_hot(DETECT_TIMEOUT)
        .await
        .ok_or_else(|| {
            format!(
                "leaderboard:global not detected hot within {DETECT_TIMEOUT:?}; errors: {:?}",
                workload.tally.take_errors()
            )
        })?;
    sleep(SETTLE).await;
    let before = probe.sample(&workload).await?;
    sleep(MEASURE).await;
    let after = probe.sample(&workload).await?;
    let window = Window::between(&before, &after);
    Ok(Row {
        detected_after: detected.duration_since(surge),
        reads_per_sec: window.reads_per_sec(),
        master_reads: window.master_reads(),
        shares: window.shares_of_reads(),
        errors: workload.tally.snapshot().errors,
        messages: workload.tally.take_errors(),
        router: workload.readers.metrics(),
    })
}
