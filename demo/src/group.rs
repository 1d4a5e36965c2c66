//! `ReplicationGroup`: a master and its replicas (no Redis Cluster), each a real `redis-server`
//! started from the repository's `redis.conf.example` (which loads the module), on free loopback
//! ports.

use std::fs;

use hotkey_servers::Server;

/// The config file every node starts from, as a user would start their own server.
pub const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../redis.conf.example");

/// One node of the group (or of a cluster's shard), for the stats: its role and where it
/// listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// `master`, `replica 1`, `replica 2`…
    pub name: String,
    pub port: u16,
}

impl Node {
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

/// A master and `n` replicas of it, all with the module. The `hotkey_servers` guards stop every
/// server when the group is dropped (also when a panic unwinds), so the demo never leaves one
/// behind.
pub struct ReplicationGroup {
    pub master: Server,
    pub replicas: Vec<Server>,
}

impl ReplicationGroup {
    /// Starts the master, then `replicas` replicas of it, and waits until each replica has
    /// synced. Blocking (a few hundred milliseconds per server); fails with the server's log
    /// when one does not start, after stopping those already started.
    pub fn start(replicas: usize) -> Result<ReplicationGroup, String> {
        let module = module_in_config()?;
        let node = || Server::builder().config(CONFIG).module_at(&module);
        let master = node().start().map_err(|e| e.to_string())?;
        let replicas = (0..replicas)
            .map(|_| node().replica_of(&master).start())
            .collect::<Result<Vec<Server>, _>>()
            .map_err(|e| e.to_string())?;
        Ok(ReplicationGroup { master, replicas })
    }

    pub fn master_url(&self) -> String {
        self.master.url()
    }

    /// The master first, then the replicas in the order they were started.
    pub fn nodes(&self) -> Vec<Node> {
        let master = Node {
            name: "master".into(),
            port: self.master.port,
        };
        let replicas = self.replicas.iter().enumerate().map(|(i, r)| Node {
            name: format!("replica {}", i + 1),
            port: r.port,
        });
        std::iter::once(master).chain(replicas).collect()
    }
}

/// The path `redis.conf.example` loads the module from (`./target/release/libhotkey.so`):
/// `hotkey_servers` puts the module there, inside each server's own directory.
fn module_in_config() -> Result<String, String> {
    let text = fs::read_to_string(CONFIG).map_err(|e| format!("read {CONFIG}: {e}"))?;
    text.lines()
        .find_map(|l| l.trim().strip_prefix("loadmodule "))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .ok_or_else(|| format!("{CONFIG} has no loadmodule line"))
}
