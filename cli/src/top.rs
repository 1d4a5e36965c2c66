//! `HOTKEY.TOP` (and, on masters, `HOTKEY.ROUTES`) of every node, asked in parallel, merged
//! per key: the master's reads and writes, the reads its replicas served, and the advice.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::thread;
use std::time::SystemTime;

use hotkey_protocol::{Advice, Routes, TopEntry};
use redis::Value;

use crate::By;
use crate::Discovery;
use crate::discover::{Node, Role, Seeds, ShardSlots, Topology};
use crate::node::query;

/// A `HOTKEY.TOP` reply the tool cannot read (followed by what is wrong).
pub const BAD_TOP_REPLY: &str = "unexpected HOTKEY.TOP reply";

/// What to ask every node.
#[derive(Clone, Debug)]
pub struct Query {
    pub count: u32,
    pub by: By,
    pub db: Option<u32>,
    pub window: Option<u32>,
}

impl Query {
    pub fn command(&self) -> redis::Cmd {
        let mut cmd = redis::cmd("HOTKEY.TOP");
        cmd.arg("COUNT")
            .arg(self.count)
            .arg("BY")
            .arg(self.by.as_str());
        if let Some(db) = self.db {
            cmd.arg("DB").arg(db);
        }
        // Without --window the module's default applies, and servers whose TOP has no
        // WINDOW option still answer.
        if let Some(window) = self.window {
            cmd.arg("WINDOW").arg(window);
        }
        cmd
    }
}

/// What one node said.
#[derive(Clone, Debug, Default)]
pub struct NodeData {
    pub entries: Vec<TopEntry>,
    /// The master's hot set with its advice; None on replicas or when ROUTES failed.
    pub routes: Option<Routes>,
}

/// One node and its answer, or the error that names it.
pub struct NodeReport {
    pub node: Node,
    pub result: Result<NodeData, String>,
}

/// One key across the nodes of its shard (or of the replication set).
#[derive(Clone, Debug, PartialEq)]
pub struct KeyRow {
    pub key: Vec<u8>,
    pub db: u32,
    pub shard: Option<ShardSlots>,
    /// The address of the master that listed it (or the first node, if no master did).
    pub node: String,
    pub master_reads: f64,
    pub replica_reads: f64,
    pub writes: f64,
    pub error: f64,
    pub hot: bool,
    /// From the master's `HOTKEY.ROUTES`, while the key is hot.
    pub advice: Option<Advice>,
    pub window: Option<u64>,
}

impl KeyRow {
    pub fn reads(&self) -> f64 {
        self.master_reads + self.replica_reads
    }

    pub fn total(&self) -> f64 {
        self.reads() + self.writes
    }

    fn rate(&self, by: By) -> f64 {
        match by {
            By::Total => self.total(),
            By::Reads => self.reads(),
            By::Writes => self.writes,
        }
    }
}

/// Every node's answer at one moment, merged.
pub struct Snapshot {
    pub nodes: Vec<NodeReport>,
    /// Discovery failures (no seed answered, unknown master name).
    pub discovery_errors: Vec<String>,
    pub keys: Vec<KeyRow>,
    pub taken_at: SystemTime,
}

impl Snapshot {
    pub fn take(seeds: &Seeds, how: &Discovery, query: &Query) -> Snapshot {
        let topology = Topology::discover(seeds, how);
        let nodes: Vec<NodeReport> = thread::scope(|s| {
            let asks: Vec<_> = topology
                .nodes
                .into_iter()
                .map(|node| s.spawn(|| ask(node, query)))
                .collect();
            asks.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        let answered: Vec<(Role, Option<&ShardSlots>, &str, &NodeData)> = nodes
            .iter()
            .filter_map(|r| {
                let data = r.result.as_ref().ok()?;
                Some((
                    r.node.role,
                    r.node.shard.as_ref(),
                    r.node.endpoint.addr.as_str(),
                    data,
                ))
            })
            .collect();
        let keys = merge(&answered, query);
        Snapshot {
            nodes,
            discovery_errors: topology.errors,
            keys,
            taken_at: SystemTime::now(),
        }
    }

    /// Every error, each naming its node.
    pub fn errors(&self) -> Vec<String> {
        let nodes = self.nodes.iter().filter_map(|r| r.result.as_ref().err());
        self.discovery_errors.iter().chain(nodes).cloned().collect()
    }

    pub fn up(&self) -> usize {
        self.nodes.iter().filter(|r| r.result.is_ok()).count()
    }

    pub fn down(&self) -> usize {
        self.nodes.len() - self.up()
    }

    /// The window the replies name (the first entry that has one).
    pub fn window(&self) -> Option<u64> {
        self.keys.iter().find_map(|k| k.window)
    }
}

/// One node: its role (when not known from discovery), its TOP, and on a master its ROUTES.
fn ask(mut node: Node, top: &Query) -> NodeReport {
    let result = (|| {
        let mut conn = node.endpoint.connect()?;
        node.learn_role(&mut conn);
        let endpoint = &node.endpoint;
        let reply: Value = query(endpoint, &mut conn, &top.command())?;
        let entries = TopEntry::list_from_redis(&reply)
            .map_err(|e| format!("{}: {BAD_TOP_REPLY}: {e}", endpoint.addr))?;
        let routes = match node.role {
            Role::Replica => None,
            // The advice is extra: a node whose ROUTES fails still shows its TOP.
            Role::Master | Role::Unknown => {
                let reply: Result<Value, String> =
                    query(endpoint, &mut conn, &redis::cmd("HOTKEY.ROUTES"));
                reply.ok().and_then(|r| Routes::from_redis(&r).ok())
            }
        };
        Ok(NodeData { entries, routes })
    })();
    NodeReport { node, result }
}

/// Merges the nodes' entries per (shard, db, key), sorts by `query.by` and keeps `count`.
/// Reads on replicas count as replica reads; writes only on masters (a replica's are the
/// master's, replicated); a node of unknown role counts as a master.
pub fn merge(
    answered: &[(Role, Option<&ShardSlots>, &str, &NodeData)],
    query: &Query,
) -> Vec<KeyRow> {
    let mut rows: HashMap<(Option<&str>, u32, &[u8]), KeyRow> = HashMap::new();
    for &(role, shard, addr, data) in answered {
        let on_master = role != Role::Replica;
        for entry in &data.entries {
            let row = rows
                .entry((shard.map(|s| s.id.as_str()), entry.db, entry.key.as_slice()))
                .or_insert_with(|| KeyRow {
                    key: entry.key.clone(),
                    db: entry.db,
                    shard: shard.cloned(),
                    node: addr.to_string(),
                    master_reads: 0.0,
                    replica_reads: 0.0,
                    writes: 0.0,
                    error: 0.0,
                    hot: false,
                    advice: None,
                    window: entry.window_secs,
                });
            if on_master {
                row.master_reads += entry.reads_per_sec;
                row.writes += entry.writes_per_sec;
                row.node = addr.to_string();
            } else {
                row.replica_reads += entry.reads_per_sec;
            }
            row.error += entry.error;
            row.hot |= entry.hot;
            row.window = row.window.or(entry.window_secs);
        }
        if !on_master {
            continue;
        }
        let Some(routes) = &data.routes else {
            continue;
        };
        for hot in &routes.keys {
            if let Some(row) =
                rows.get_mut(&(shard.map(|s| s.id.as_str()), hot.db, hot.key.as_slice()))
            {
                row.advice = Some(hot.advice);
            }
        }
    }
    let mut rows: Vec<KeyRow> = rows.into_values().collect();
    rows.sort_by(|a, b| {
        b.rate(query.by)
            .partial_cmp(&a.rate(query.by))
            .unwrap_or(Ordering::Equal)
            .then_with(|| (a.db, &a.key).cmp(&(b.db, &b.key)))
    });
    rows.truncate(query.count as usize);
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, reads: f64, writes: f64) -> TopEntry {
        TopEntry::new(0, key.as_bytes(), reads, writes)
    }

    fn query(by: By, count: u32) -> Query {
        Query {
            count,
            by,
            db: None,
            window: None,
        }
    }

    #[test]
    fn a_key_on_master_and_replicas_is_one_row_with_reads_apart() {
        let master = NodeData {
            entries: vec![entry("lb", 100.0, 10.0), entry("w", 1.0, 500.0)],
            routes: None,
        };
        let replica = NodeData {
            entries: vec![entry("lb", 300.0, 10.0)],
            routes: None,
        };
        let answered = [
            (Role::Replica, None, "r:1", &replica),
            (Role::Master, None, "m:1", &master),
        ];
        let rows = merge(&answered, &query(By::Reads, 10));
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].key, b"lb");
        assert_eq!(rows[0].node, "m:1");
        assert_eq!(rows[0].master_reads, 100.0);
        assert_eq!(rows[0].replica_reads, 300.0);
        assert_eq!(rows[0].writes, 10.0, "a replica's writes are the master's");
        let rows = merge(&answered, &query(By::Writes, 1));
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].key, b"w");
    }

    #[test]
    fn keys_of_different_shards_stay_apart() {
        let a = ShardSlots {
            id: "a".into(),
            slots: Vec::new(),
        };
        let b = ShardSlots {
            id: "b".into(),
            slots: Vec::new(),
        };
        let data = NodeData {
            entries: vec![entry("k", 1.0, 0.0)],
            routes: None,
        };
        let answered = [
            (Role::Master, Some(&a), "a:1", &data),
            (Role::Master, Some(&b), "b:1", &data),
        ];
        assert_eq!(merge(&answered, &query(By::Total, 10)).len(), 2);
    }
}
