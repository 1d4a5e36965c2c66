//! Cluster-bus traffic due to the module's events, per node, with 3 and 6 masters × 1 replica,
//! idle (heartbeats only, every `hotkey.heartbeat-ms` = 1 s): pub/sub messages on the bus
//! (`CLUSTER INFO` `cluster_stats_messages_publish*_sent` + `_received`) and every byte the
//! node wrote (`/proc/<pid>/io` `wchar`: the bus's pings and pongs included, no clients).
//!
//! ```text
//! cargo bench --bench cluster_bus                                   # the module as built
//! HOTKEY_MODULE=/path/to/older/libhotkey.so cargo bench --bench cluster_bus   # another one
//! ```
//! The table of the book's Redis Cluster page compares this module (sharded pub/sub, masters
//! only) with the module before it (classic `PUBLISH` from every node), built from the commit
//! before the cluster work, by the second form.

use std::collections::HashMap;
use std::thread;
use std::time::{Duration, Instant};

use hotkey_testkit::{Cluster, module_path};

const SETTLE: Duration = Duration::from_secs(3);
const WINDOW: Duration = Duration::from_secs(10);

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("cluster_bus: a benchmark; run it with `cargo bench --bench cluster_bus`");
        return;
    }
    println!("module: {}", module_path().display());
    println!("masters  nodes  pub/sub bus msgs/s/node  bytes written/s/node (all bus traffic)");
    for masters in [3, 6] {
        let cluster = Cluster::builder(masters, 1)
            .module_arg("sample-max", "64")
            .start();
        thread::sleep(SETTLE);
        let before = sample(&cluster);
        let start = Instant::now();
        thread::sleep(WINDOW);
        let after = sample(&cluster);
        let secs = start.elapsed().as_secs_f64();
        let nodes = cluster.nodes().len() as f64;
        let per_node = |f: fn(&Sample) -> u64| {
            after
                .iter()
                .map(f)
                .sum::<u64>()
                .saturating_sub(before.iter().map(f).sum::<u64>()) as f64
                / secs
                / nodes
        };
        println!(
            "{masters:>7}  {:>5}  {:>23.1}  {:>38.0}",
            cluster.nodes().len(),
            per_node(|s| s.pubsub_messages),
            per_node(|s| s.bytes_written),
        );
    }
}

struct Sample {
    pubsub_messages: u64,
    bytes_written: u64,
}

fn sample(cluster: &Cluster) -> Vec<Sample> {
    cluster
        .nodes()
        .iter()
        .map(|node| {
            let info: String = redis::cmd("CLUSTER")
                .arg("INFO")
                .query(&mut node.conn())
                .expect("CLUSTER INFO");
            let fields: HashMap<&str, u64> = info
                .lines()
                .filter_map(|l| l.trim().split_once(':'))
                .filter_map(|(k, v)| Some((k, v.parse().ok()?)))
                .collect();
            let pubsub_messages = fields
                .iter()
                .filter(|(k, _)| {
                    k.starts_with("cluster_stats_messages_publish")
                        && (k.ends_with("_sent") || k.ends_with("_received"))
                })
                .map(|(_, v)| v)
                .sum();
            let io = std::fs::read_to_string(format!("/proc/{}/io", node.pid()))
                .expect("/proc/<pid>/io (Linux, same user)");
            let bytes_written = io
                .lines()
                .find_map(|l| l.strip_prefix("wchar:"))
                .and_then(|v| v.trim().parse().ok())
                .expect("wchar");
            Sample {
                pubsub_messages,
                bytes_written,
            }
        })
        .collect()
}
