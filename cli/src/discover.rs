//! The nodes to ask: the URLs given; every node of a cluster, from `CLUSTER SHARDS` (Redis ≥
//! 7.0) or `CLUSTER NODES` of the first seed that answers; or the master and replicas a
//! Sentinel names.

use std::collections::HashMap;

use hotkey_protocol::ProtocolError;
use hotkey_protocol::cluster::{
    NodeLine, ShardEntry, SlotRange, parse_cluster_nodes, parse_cluster_shards,
};
use redis::Value;

use crate::Discovery;
use crate::node::{ConnectArgs, Endpoint, query};

/// No seed of a cluster or sentinel set answered (followed by each seed's error).
pub const NO_SEED_ANSWERED: &str = "no seed answered";
/// The sentinels do not know the master name.
pub const UNKNOWN_MASTER_NAME: &str = "no sentinel knows a master named";

/// The URLs (or `-h`/`-p`) and the flags, before discovery.
pub struct Seeds {
    pub endpoints: Vec<Endpoint>,
    args: ConnectArgs,
}

impl Seeds {
    pub fn from_args(args: &ConnectArgs) -> Result<Seeds, String> {
        let endpoints = if args.urls.is_empty() {
            vec![Endpoint::from_flags(args)?]
        } else {
            args.urls
                .iter()
                .map(|u| Endpoint::parse(u, args))
                .collect::<Result<_, _>>()?
        };
        Ok(Seeds {
            endpoints,
            args: args.clone(),
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    Master,
    Replica,
    /// Not known yet (a URL given by hand, before `ROLE` answered).
    Unknown,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Replica => "replica",
            Role::Unknown => "?",
        }
    }
}

/// A cluster shard: its master's node id and the slots it serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardSlots {
    pub id: String,
    pub slots: Vec<SlotRange>,
}

impl ShardSlots {
    /// `a1b2c3d4 0-5460`: the id's first 8 digits (as redis-cli shortens it) and the slots.
    pub fn label(&self) -> String {
        let short: String = self.id.chars().take(8).collect();
        let slots: Vec<String> = self
            .slots
            .iter()
            .map(|r| match r.start == r.end {
                true => r.start.to_string(),
                false => format!("{}-{}", r.start, r.end),
            })
            .collect();
        match slots.is_empty() {
            true => format!("{short} (no slots)"),
            false => format!("{short} {}", slots.join(",")),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Node {
    pub endpoint: Endpoint,
    pub role: Role,
    pub shard: Option<ShardSlots>,
}

impl Node {
    /// Asks `ROLE` when discovery did not say; an ACL may refuse it, and the role stays
    /// unknown ("?").
    pub fn learn_role(&mut self, conn: &mut redis::Connection) {
        if self.role != Role::Unknown {
            return;
        }
        let role: Result<Vec<Value>, String> = query(&self.endpoint, conn, &redis::cmd("ROLE"));
        self.role = match role.ok().as_ref().and_then(|r| r.first()) {
            Some(Value::BulkString(b)) if b == b"master" => Role::Master,
            Some(Value::BulkString(b)) if b == b"slave" => Role::Replica,
            _ => Role::Unknown,
        };
    }
}

/// The nodes found, and what went wrong finding them.
pub struct Topology {
    pub nodes: Vec<Node>,
    pub errors: Vec<String>,
}

impl Topology {
    pub fn discover(seeds: &Seeds, how: &Discovery) -> Topology {
        if how.cluster {
            cluster(seeds)
        } else if let Some(name) = &how.sentinel {
            sentinel(seeds, name)
        } else {
            Topology {
                nodes: seeds
                    .endpoints
                    .iter()
                    .map(|e| Node {
                        endpoint: e.clone(),
                        role: Role::Unknown,
                        shard: None,
                    })
                    .collect(),
                errors: Vec::new(),
            }
        }
    }
}

/// Every node of the cluster, as the first seed that answers lists them.
fn cluster(seeds: &Seeds) -> Topology {
    let mut errors = Vec::new();
    for seed in &seeds.endpoints {
        match cluster_nodes(seed) {
            Ok(nodes) => return Topology { nodes, errors },
            Err(e) => errors.push(e),
        }
    }
    Topology {
        nodes: Vec::new(),
        errors: vec![format!("{NO_SEED_ANSWERED}: {}", errors.join("; "))],
    }
}

fn cluster_nodes(seed: &Endpoint) -> Result<Vec<Node>, String> {
    let mut conn = seed.connect()?;
    let shards: Result<Value, String> = query(seed, &mut conn, redis::cmd("CLUSTER").arg("SHARDS"));
    let bad = |e: ProtocolError| format!("{}: {e}", seed.addr);
    let listed = match shards {
        Ok(reply) => from_shards(&parse_cluster_shards(&reply).map_err(bad)?),
        // Before Redis 7.0 there is only CLUSTER NODES.
        Err(_) => {
            let text: String = query(seed, &mut conn, redis::cmd("CLUSTER").arg("NODES"))?;
            from_nodes(&parse_cluster_nodes(&text).map_err(bad)?)
        }
    };
    Ok(listed
        .into_iter()
        .map(|n| Node {
            endpoint: seed.at(&n.host, n.port),
            role: n.role,
            shard: Some(n.shard),
        })
        .collect())
}

/// One node as the cluster lists it.
#[derive(Debug, PartialEq)]
struct Listed {
    host: String,
    port: u16,
    role: Role,
    shard: ShardSlots,
}

/// Every node of every shard, the shard named by its master (or its first node when it has
/// no one master).
fn from_shards(shards: &[ShardEntry]) -> Vec<Listed> {
    let mut listed = Vec::new();
    for entry in shards {
        let master = entry.master().ok().flatten().or(entry.nodes.first());
        let shard = ShardSlots {
            id: master.map(|m| m.id.clone()).unwrap_or_default(),
            slots: entry.slots.clone(),
        };
        for n in &entry.nodes {
            listed.push(Listed {
                host: n.host.clone(),
                port: n.port,
                role: match n.role {
                    hotkey_protocol::Role::Master => Role::Master,
                    hotkey_protocol::Role::Replica => Role::Replica,
                    _ => Role::Unknown,
                },
                shard: shard.clone(),
            });
        }
    }
    listed
}

/// Every node, a replica with its master's slots.
fn from_nodes(lines: &[NodeLine]) -> Vec<Listed> {
    lines
        .iter()
        .map(|l| Listed {
            host: l.host.clone(),
            port: l.port,
            role: if l.is_master() {
                Role::Master
            } else {
                Role::Replica
            },
            shard: ShardSlots {
                id: match (&l.master_id, l.is_master()) {
                    (Some(master), false) => master.clone(),
                    _ => l.id.clone(),
                },
                slots: l.shard_slots(lines),
            },
        })
        .collect()
}

/// The master a sentinel names and the replicas it lists, from the first sentinel that knows
/// the name.
fn sentinel(seeds: &Seeds, name: &str) -> Topology {
    let mut errors = Vec::new();
    for sentinel in &seeds.endpoints {
        match sentinel_nodes(sentinel, name, &seeds.args) {
            Ok(Some(nodes)) => return Topology { nodes, errors },
            Ok(None) => errors.push(format!("{}: {UNKNOWN_MASTER_NAME} '{name}'", sentinel.addr)),
            Err(e) => errors.push(e),
        }
    }
    Topology {
        nodes: Vec::new(),
        errors: vec![format!("{NO_SEED_ANSWERED}: {}", errors.join("; "))],
    }
}

fn sentinel_nodes(
    sentinel: &Endpoint,
    name: &str,
    args: &ConnectArgs,
) -> Result<Option<Vec<Node>>, String> {
    let mut conn = sentinel.connect()?;
    let master: Option<(String, u16)> = query(
        sentinel,
        &mut conn,
        redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(name),
    )?;
    let Some((host, port)) = master else {
        return Ok(None);
    };
    let replicas: Vec<HashMap<String, String>> = query(
        sentinel,
        &mut conn,
        redis::cmd("SENTINEL").arg("replicas").arg(name),
    )?;
    let mut nodes = vec![Node {
        endpoint: Endpoint::named_by_sentinel(&host, port, args)?,
        role: Role::Master,
        shard: None,
    }];
    for replica in replicas {
        let port = replica.get("port").and_then(|p| p.parse().ok());
        if let (Some(host), Some(port)) = (replica.get("ip"), port) {
            nodes.push(Node {
                endpoint: Endpoint::named_by_sentinel(host, port, args)?,
                role: Role::Replica,
                shard: None,
            });
        }
    }
    Ok(Some(nodes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_nodes_lists_each_node_with_its_masters_slots() {
        let text = "\
aaaaaaaaaaaa 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460 [5461->-bbbb]
bbbbbbbbbbbb 127.0.0.1:7002@17002,host2 master - 0 0 2 connected 5461-10922 16000
cccccccccccc 127.0.0.1:7003@17003 slave aaaaaaaaaaaa 0 0 1 connected
";
        let listed = from_nodes(&parse_cluster_nodes(text).expect("parses"));
        assert_eq!(listed.len(), 3);
        assert_eq!(listed[0].shard.label(), "aaaaaaaa 0-5460");
        assert_eq!(listed[1].port, 7002);
        assert_eq!(listed[1].shard.label(), "bbbbbbbb 5461-10922,16000");
        assert_eq!(listed[2].role, Role::Replica);
        assert_eq!(listed[2].shard, listed[0].shard);
    }

    #[test]
    fn cluster_shards_names_a_shard_by_its_master() {
        let node = |id: &str, port: i64, role: &str| {
            Value::Array(vec![
                Value::BulkString(b"id".to_vec()),
                Value::BulkString(id.as_bytes().to_vec()),
                Value::BulkString(b"port".to_vec()),
                Value::Int(port),
                Value::BulkString(b"ip".to_vec()),
                Value::BulkString(b"127.0.0.1".to_vec()),
                Value::BulkString(b"role".to_vec()),
                Value::BulkString(role.as_bytes().to_vec()),
            ])
        };
        let reply = Value::Array(vec![Value::Array(vec![
            Value::BulkString(b"slots".to_vec()),
            Value::Array(vec![
                Value::Int(0),
                Value::Int(100),
                Value::Int(200),
                Value::Int(200),
            ]),
            Value::BulkString(b"nodes".to_vec()),
            Value::Array(vec![
                node("r1", 7004, "replica"),
                node("m1", 7001, "master"),
            ]),
        ])]);
        let listed = from_shards(&parse_cluster_shards(&reply).expect("parses"));
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].role, Role::Replica);
        assert_eq!(listed[0].shard.label(), "m1 0-100,200");
        assert_eq!(listed[1].port, 7001);
    }
}
