//! `Cluster`: a Redis Cluster of real nodes with the module loaded (a `hotkey_servers::Cluster`
//! with the harness's defaults, its queries panicking with what they saw), and what failover and
//! resharding tests do to it: kills, waits for a failover, slot migrations.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use hotkey_protocol::cluster::SlotRange;
use hotkey_servers::Node;
use redis::{Connection, Value};

use crate::wait::{deadline, slowdown};

/// How long a failover may take: the node timeout, an election and the news spreading.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the live nodes may take to agree on a migrated slot's owner.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Keys moved per `MIGRATE` when a slot moves.
const MIGRATE_BATCH: usize = 100;

/// How to start a cluster: its shape, module arguments and server arguments (the same for every
/// node).
pub struct ClusterBuilder {
    builder: hotkey_servers::ClusterBuilder,
}

impl ClusterBuilder {
    /// Set (or override) one module argument (`<name> <value>` after the module path).
    pub fn module_arg(self, name: &str, value: &str) -> Self {
        ClusterBuilder {
            builder: self.builder.module_arg(name, value),
        }
    }

    /// Extra server arguments for every node, e.g. `["--cluster-node-timeout", "1000"]` (they
    /// come after the harness's own, so they win).
    pub fn server_args(self, args: &[&str]) -> Self {
        ClusterBuilder {
            builder: self.builder.server_args(args),
        }
    }

    /// Starts every node, creates the cluster and waits until every node says
    /// `cluster_state:ok`, every replica is synced and every node sees the same layout; panics
    /// with the nodes' views and logs when it does not.
    pub fn start(self) -> Cluster {
        let cluster = self.builder.start().unwrap_or_else(|e| panic!("{e}"));
        Cluster {
            cluster,
            killed_slots: Mutex::new(HashMap::new()),
        }
    }
}

/// A running cluster. Dropping it stops every node (also when a panic unwinds), so a failing
/// test never leaks one. Everything `hotkey_servers::Cluster` has (`nodes`, `urls`, `view`…) is
/// reached through it.
pub struct Cluster {
    cluster: hotkey_servers::Cluster,
    /// The slots each killed master served when it was killed, by node id: what its successor
    /// must serve.
    killed_slots: Mutex<HashMap<String, Vec<SlotRange>>>,
}

impl Deref for Cluster {
    type Target = hotkey_servers::Cluster;

    fn deref(&self) -> &hotkey_servers::Cluster {
        &self.cluster
    }
}

impl Cluster {
    /// A cluster of `masters` masters (at least 3) with `replicas` replicas each, the module
    /// loaded on every node with `sample-max 1`.
    pub fn start(masters: usize, replicas: usize) -> Cluster {
        Cluster::builder(masters, replicas).start()
    }

    /// A builder whose module arguments start as `sample-max 1`, its timeouts scaled by
    /// `HOTKEY_TEST_SLOWDOWN`.
    pub fn builder(masters: usize, replicas: usize) -> ClusterBuilder {
        ClusterBuilder {
            builder: hotkey_servers::Cluster::builder(masters, replicas)
                .module_arg("sample-max", "1")
                .slowdown(slowdown()),
        }
    }

    /// The node with this `CLUSTER MYID`.
    pub fn node_by_id(&self, id: &str) -> &Node {
        self.cluster
            .node_by_id(id)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The masters that serve slots and are not failing, as a live node sees them, in slot
    /// order.
    pub fn masters(&self) -> Vec<&Node> {
        self.cluster.masters().unwrap_or_else(|e| panic!("{e}"))
    }

    /// The replicas of `master` that are not failing, as a live node sees them.
    pub fn replicas(&self, master: &Node) -> Vec<&Node> {
        self.cluster
            .replicas(master)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The master serving `slot`, as a live node sees it.
    pub fn node_for_slot(&self, slot: u16) -> &Node {
        self.cluster
            .node_for_slot(slot)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The master serving `key`'s slot.
    pub fn node_for_key(&self, key: &[u8]) -> &Node {
        self.cluster
            .node_for_key(key)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// A master serving slots other than `node` (a shard that does not own `node`'s slots).
    pub fn other_master(&self, node: &Node) -> &Node {
        self.masters()
            .into_iter()
            .find(|m| m.id != node.id)
            .unwrap_or_else(|| panic!("no master besides port {}", node.port))
    }

    /// A RESP2 connection to `node`.
    pub fn conn(&self, node: &Node) -> Connection {
        node.conn()
    }

    /// SIGKILL `node` now (a crash) and wait for it to exit; its directory stays until the
    /// cluster is dropped. Remembers the slots it served, for `wait_for_failover`.
    pub fn kill(&self, node: &Node) {
        if let Ok(view) = node.view()
            && let Some(me) = view.iter().find(|l| l.has("myself"))
        {
            self.killed().insert(node.id.clone(), me.slots.clone());
        }
        node.kill();
    }

    fn killed(&self) -> MutexGuard<'_, HashMap<String, Vec<SlotRange>>> {
        // A panic while holding the lock leaves the map as it was: keep using it.
        self.killed_slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until `old` (a master that was killed, or that a replica took over with `CLUSTER
    /// FAILOVER`) has a successor that every live node sees as the master of `old`'s slots,
    /// with `cluster_state:ok` everywhere; returns the successor.
    pub fn wait_for_failover(&self, old: &Node) -> &Node {
        let deadline = deadline(FAILOVER_TIMEOUT);
        loop {
            if let Some(new) = self.successor(old) {
                return new;
            }
            assert!(
                Instant::now() < deadline,
                "no failover of {} (port {}) within {FAILOVER_TIMEOUT:?}; views:\n{}",
                old.id,
                old.port,
                self.views_report()
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// `old`'s successor once every live node agrees on it.
    fn successor(&self, old: &Node) -> Option<&Node> {
        let slots = match self.killed().get(&old.id) {
            Some(slots) => slots.clone(),
            None => {
                // Alive: a manual failover made it a replica of its successor.
                let view = old.view().ok()?;
                let me = view.iter().find(|l| l.has("myself"))?;
                let new = me.master_id.as_ref().filter(|_| me.has("slave"))?;
                view.iter().find(|l| &l.id == new)?.slots.clone()
            }
        };
        let slot = slots.first()?.start;
        let live = self.live();
        let mut owner: Option<String> = None;
        for node in &live {
            if node.cluster_state().ok()? != "ok" {
                return None;
            }
            let view = node.view().ok()?;
            let line = view
                .iter()
                .find(|l| l.is_master() && l.serves(slot) && !l.is_failing())?;
            if line.id == old.id || owner.as_ref().is_some_and(|o| o != &line.id) {
                return None;
            }
            owner = Some(line.id.clone());
        }
        let new = self.node_by_id(&owner?);
        let own = new.view().ok()?;
        own.iter()
            .any(|l| l.has("myself") && l.is_master())
            .then_some(new)
    }

    /// Moves `slot` from master `from` to master `to` with its keys, as `redis-cli --cluster
    /// reshard` does: `begin_migration`, `move_keys`, `finish_migration`.
    pub fn migrate_slot(&self, slot: u16, from: &Node, to: &Node) {
        self.begin_migration(slot, from, to);
        self.move_keys(slot, from, to);
        self.finish_migration(slot, from, to);
    }

    /// `CLUSTER SETSLOT slot IMPORTING` on `to`, then `MIGRATING` on `from`: from here on a key
    /// of `slot` missing on `from` gets `ASK` to `to`.
    pub fn begin_migration(&self, slot: u16, from: &Node, to: &Node) {
        setslot(to, slot, "IMPORTING", &from.id);
        setslot(from, slot, "MIGRATING", &to.id);
    }

    /// `MIGRATE`s every key of `slot` from `from` to `to`, a batch at a time.
    pub fn move_keys(&self, slot: u16, from: &Node, to: &Node) {
        let mut conn = from.conn();
        loop {
            let keys: Vec<Vec<u8>> = redis::cmd("CLUSTER")
                .arg("GETKEYSINSLOT")
                .arg(slot)
                .arg(MIGRATE_BATCH)
                .query(&mut conn)
                .unwrap_or_else(|e| panic!("CLUSTER GETKEYSINSLOT {slot}: {e}"));
            if keys.is_empty() {
                return;
            }
            migrate(&mut conn, to, &keys);
        }
    }

    /// `MIGRATE`s `keys` from `from` to `to` (one key of a migrating slot, say, to see the
    /// source redirect its commands with `ASK`).
    pub fn move_these_keys<K: redis::ToRedisArgs>(&self, from: &Node, to: &Node, keys: &[K]) {
        migrate(&mut from.conn(), to, keys);
    }

    /// `CLUSTER SETSLOT slot NODE to` on `to`, `from` and every other master, then waits until
    /// every live node sees `to` as the owner of `slot`.
    pub fn finish_migration(&self, slot: u16, from: &Node, to: &Node) {
        setslot(to, slot, "NODE", &to.id);
        setslot(from, slot, "NODE", &to.id);
        for master in self.masters() {
            if master.id != to.id && master.id != from.id {
                setslot(master, slot, "NODE", &to.id);
            }
        }
        let deadline = deadline(SETTLE_TIMEOUT);
        while !self.live().iter().all(|node| {
            node.view().is_ok_and(|view| {
                view.iter()
                    .any(|l| l.id == to.id && l.is_master() && l.serves(slot))
            })
        }) {
            assert!(
                Instant::now() < deadline,
                "slot {slot} not served by {} everywhere after {SETTLE_TIMEOUT:?}; views:\n{}",
                to.port,
                self.views_report()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `CLUSTER SETSLOT slot <subcommand> node_id` on `node`; panics with the server's words.
fn setslot(node: &Node, slot: u16, subcommand: &str, node_id: &str) {
    let () = redis::cmd("CLUSTER")
        .arg("SETSLOT")
        .arg(slot)
        .arg(subcommand)
        .arg(node_id)
        .query(&mut node.conn())
        .unwrap_or_else(|e| {
            panic!(
                "CLUSTER SETSLOT {slot} {subcommand} {node_id} on port {}: {e}",
                node.port
            )
        });
}

/// `MIGRATE 127.0.0.1 <to> "" 0 5000 KEYS keys…` on `conn` (the source's).
fn migrate<K: redis::ToRedisArgs>(conn: &mut Connection, to: &Node, keys: &[K]) {
    let _: Value = redis::cmd("MIGRATE")
        .arg("127.0.0.1")
        .arg(to.port)
        .arg("")
        .arg(0)
        .arg(5000)
        .arg("KEYS")
        .arg(keys)
        .query(conn)
        .unwrap_or_else(|e| panic!("MIGRATE to port {}: {e}", to.port));
}
