//! `Cluster`: a master and its replicas, each a real `redis-server` started from the
//! repository's `redis.conf.example` (which loads the module), on free loopback ports.

use std::fs;

use hotkey_testkit::Server;

/// The config file every node starts from, as a user would start their own server.
pub const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../redis.conf.example");

/// One node of the cluster, for the stats: its role and where it listens.
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

/// A master and `n` replicas, all with the module. The testkit guards stop every server when the
/// cluster is dropped (also when a panic unwinds), so the demo never leaves one behind.
pub struct Cluster {
    pub master: Server,
    pub replicas: Vec<Server>,
}

impl Cluster {
    /// Starts the master, then `replicas` replicas of it, and waits until each replica has
    /// synced. Blocking (a few hundred milliseconds per server); panics with the server's log
    /// when one does not start (see `hotkey_testkit`).
    pub fn start(replicas: usize) -> Cluster {
        let module = module_in_config();
        let node = || Server::builder().config(CONFIG).module_at(&module);
        let master = node().start();
        let replicas = (0..replicas)
            .map(|_| node().replica_of(&master).start())
            .collect();
        Cluster { master, replicas }
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
/// the testkit puts the module under test there, inside each server's own directory.
fn module_in_config() -> String {
    let text = fs::read_to_string(CONFIG).unwrap_or_else(|e| panic!("read {CONFIG}: {e}"));
    text.lines()
        .find_map(|l| l.trim().strip_prefix("loadmodule "))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .unwrap_or_else(|| panic!("{CONFIG} has no loadmodule line"))
}
