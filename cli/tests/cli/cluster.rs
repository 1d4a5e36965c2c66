//! `hotkey top --cluster` and `hotkey route --cluster` on a real Redis Cluster: three masters
//! and three replicas, each with the module.

use std::process::Command;

use hotkey_protocol::cluster::key_slot;
use hotkey_testkit::Server;

use crate::run::{hotkey, json, key_entry, reads, stderr, wait_for};

/// Six cluster-enabled servers made one cluster (`redis-cli --cluster create`, one replica
/// each); the servers' guards stop them.
struct Cluster {
    nodes: Vec<Server>,
}

impl Cluster {
    fn start() -> Cluster {
        let nodes: Vec<Server> = (0..6)
            .map(|_| {
                Server::builder()
                    .module_arg("half-life-ms", "600000")
                    .server_args(&["--cluster-enabled", "yes", "--cluster-node-timeout", "5000"])
                    .start()
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            out.status.success(),
            "redis-cli --cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let cluster = Cluster { nodes };
        for node in &cluster.nodes {
            // Until every node lists three replicas, a replica-to-be is a master of no slots.
            wait_for("cluster_state:ok and three replicas on every node", || {
                let mut conn = node.conn();
                let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut conn).ok()?;
                let nodes: String = redis::cmd("CLUSTER").arg("NODES").query(&mut conn).ok()?;
                let replicas = nodes.lines().filter(|l| l.contains("slave")).count();
                (info.contains("cluster_state:ok") && replicas == 3).then_some(())
            });
        }
        cluster
    }

    /// The master serving `key`: the node that answers a GET of it without `MOVED`.
    fn owner(&self, key: &[u8]) -> &Server {
        wait_for("a master that owns the key", || {
            self.nodes.iter().find(|n| {
                let reply: redis::RedisResult<Option<String>> =
                    redis::cmd("GET").arg(key).query(&mut n.conn());
                reply.is_ok() && n.role() == "master"
            })
        })
    }
}

#[test]
fn top_and_route_find_every_node_and_the_keys_shard() {
    let cluster = Cluster::start();
    let seed = cluster.nodes[0].url();
    let key = b"leaderboard:global";
    let owner = cluster.owner(key);
    reads(&mut owner.conn(), key, 50);

    let top = json(&["top", "--cluster", &seed]);
    let nodes = top["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 6, "{top}");
    assert!(nodes.iter().all(|n| n["up"] == true), "{top}");
    let masters = nodes.iter().filter(|n| n["role"] == "master").count();
    assert_eq!(masters, 3, "{top}");
    let mut shards: Vec<&str> = nodes.iter().filter_map(|n| n["shard"].as_str()).collect();
    shards.sort();
    shards.dedup();
    assert_eq!(shards.len(), 3, "three shards: {top}");

    let entry = key_entry(&top, "leaderboard:global");
    let owner_addr = format!("127.0.0.1:{}", owner.port);
    assert_eq!(entry["node"], owner_addr, "{entry}");
    let owner_shard = nodes
        .iter()
        .find(|n| n["addr"] == owner_addr)
        .map(|n| n["shard"].clone())
        .expect("the owner among the nodes");
    assert_eq!(entry["shard"], owner_shard, "{entry}");

    // Asked from a node of another shard, route still answers from the owner.
    let other = cluster
        .nodes
        .iter()
        .find(|n| n.port != owner.port && n.role() == "master")
        .expect("another master");
    let route = json(&["route", "leaderboard:global", "--cluster", &other.url()]);
    assert_eq!(route["node"], owner_addr, "{route}");
    assert_eq!(route["slot"], key_slot(key));
    assert_eq!(route["role"], "master");

    let out = hotkey(&["top", "--cluster", &seed, "--once"]);
    assert!(out.status.success(), "{}", stderr(&out));
}
