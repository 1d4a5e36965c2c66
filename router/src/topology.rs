//! A cluster's layout as the router uses it, decided without I/O: the shards read from
//! `CLUSTER SHARDS` (or `CLUSTER SLOTS`), the slot → shard map, the slot of a command, and the
//! redirections (`MOVED`, `ASK`) a node answers with.

use hotkey_protocol::cluster::{SLOTS, SlotRange, key_slot};
use hotkey_protocol::command_table::{CommandKind, CommandTable};
use redis::{RedisError, Value};

/// A master's address, and its node id when the reply gave one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeAddr {
    pub host: String,
    pub port: u16,
    pub id: Option<String>,
}

impl NodeAddr {
    /// `host:port`, as `MOVED` and `ASK` name nodes.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// One shard: its master and the slots it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ShardLayout {
    pub master: NodeAddr,
    pub slots: Vec<SlotRange>,
}

/// The entries of a RESP3 map or of a RESP2 flat `[key, value, …]` array.
fn entries(value: &Value) -> Option<Vec<(&Value, &Value)>> {
    match value {
        Value::Map(pairs) => Some(pairs.iter().map(|(k, v)| (k, v)).collect()),
        Value::Array(items) if items.len() % 2 == 0 => Some(
            items
                .chunks_exact(2)
                .map(|pair| (&pair[0], &pair[1]))
                .collect(),
        ),
        _ => None,
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) | Value::VerbatimString { text: s, .. } => Some(s.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

fn number(value: &Value) -> Option<i64> {
    match value {
        Value::Int(n) => Some(*n),
        other => text(other)?.parse().ok(),
    }
}

fn field<'a>(pairs: &[(&'a Value, &'a Value)], name: &str) -> Option<&'a Value> {
    pairs
        .iter()
        .find(|(k, _)| text(k).is_some_and(|k| k == name))
        .map(|(_, v)| *v)
}

fn array(value: &Value) -> Option<&[Value]> {
    match value {
        Value::Array(items) | Value::Set(items) => Some(items),
        _ => None,
    }
}

fn slot(value: &Value) -> Option<u16> {
    u16::try_from(number(value)?).ok().filter(|s| *s < SLOTS)
}

/// Why a `CLUSTER SHARDS` reply is not used: a shard names two masters online (the middle of
/// a failover); `CLUSTER SLOTS` names one owner per slot.
pub(crate) const AMBIGUOUS: &str = "a shard with two masters online";

/// The shards of a `CLUSTER SHARDS` reply (Redis 7.0+) that serve slots, each with its master
/// (a shard whose only master is flagged `failed` keeps it: its slots have no other owner
/// until a replica is promoted).
pub(crate) fn parse_shards(reply: &Value) -> Result<Vec<ShardLayout>, String> {
    let bad = |what: &str| format!("unexpected CLUSTER SHARDS reply ({what}): {reply:?}");
    let mut shards = Vec::new();
    for shard in array(reply).ok_or_else(|| bad("not an array"))? {
        let pairs = entries(shard).ok_or_else(|| bad("a shard is not a map"))?;
        let bounds = field(&pairs, "slots")
            .and_then(array)
            .ok_or_else(|| bad("no slots"))?;
        let slots = bounds
            .chunks_exact(2)
            .map(|pair| {
                Some(SlotRange {
                    start: slot(&pair[0])?,
                    end: slot(&pair[1])?,
                })
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad("a slot out of range"))?;
        if slots.is_empty() {
            continue;
        }
        let nodes = field(&pairs, "nodes")
            .and_then(array)
            .ok_or_else(|| bad("no nodes"))?;
        let mut masters = Vec::new();
        for node in nodes {
            let node = entries(node).ok_or_else(|| bad("a node is not a map"))?;
            if field(&node, "role").and_then(text).as_deref() != Some("master") {
                continue;
            }
            let host = field(&node, "endpoint")
                .and_then(text)
                .filter(|e| !e.is_empty() && e != "?")
                .or_else(|| field(&node, "ip").and_then(text))
                .ok_or_else(|| bad("a master without an address"))?;
            let port = field(&node, "port")
                .and_then(number)
                .and_then(|p| u16::try_from(p).ok())
                .ok_or_else(|| bad("a master without a port"))?;
            let online = field(&node, "health").and_then(text).as_deref() != Some("failed");
            masters.push((
                NodeAddr {
                    host,
                    port,
                    id: field(&node, "id").and_then(text),
                },
                online,
            ));
        }
        // Mid-failover a shard may name its old master too (flagged failed once it is
        // known dead, or not yet demoted in this node's view): the one online master is the
        // owner; two online masters are two views at once, which `CLUSTER SLOTS` settles.
        let master = match masters.as_slice() {
            [(only, _)] => Some(only.clone()),
            _ => {
                let mut online = masters.iter().filter(|(_, up)| *up);
                match (online.next(), online.next()) {
                    (Some((one, _)), None) => Some(one.clone()),
                    (Some(_), Some(_)) => return Err(bad(AMBIGUOUS)),
                    _ => None,
                }
            }
        };
        let master = master.ok_or_else(|| bad("a shard without a master"))?;
        shards.push(ShardLayout { master, slots });
    }
    Ok(shards)
}

/// The shards of a `CLUSTER SLOTS` reply (servers before 7.0): `[start, end, [host, port,
/// id], replicas…]` per range, ranges of one master gathered.
pub(crate) fn parse_slots(reply: &Value) -> Result<Vec<ShardLayout>, String> {
    let bad = |what: &str| format!("unexpected CLUSTER SLOTS reply ({what}): {reply:?}");
    let mut shards: Vec<ShardLayout> = Vec::new();
    for range in array(reply).ok_or_else(|| bad("not an array"))? {
        let items = array(range).ok_or_else(|| bad("a range is not an array"))?;
        let [start, end, master, ..] = items else {
            return Err(bad("a range too short"));
        };
        let range = SlotRange {
            start: slot(start).ok_or_else(|| bad("a slot out of range"))?,
            end: slot(end).ok_or_else(|| bad("a slot out of range"))?,
        };
        let node = array(master).ok_or_else(|| bad("a master is not an array"))?;
        let master = NodeAddr {
            host: node
                .first()
                .and_then(text)
                .ok_or_else(|| bad("a master without a host"))?,
            port: node
                .get(1)
                .and_then(number)
                .and_then(|p| u16::try_from(p).ok())
                .ok_or_else(|| bad("a master without a port"))?,
            id: node.get(2).and_then(text),
        };
        match shards.iter_mut().find(|s| s.master == master) {
            Some(shard) => shard.slots.push(range),
            None => shards.push(ShardLayout {
                master,
                slots: vec![range],
            }),
        }
    }
    for shard in &mut shards {
        shard.slots.sort();
    }
    Ok(shards)
}

/// Which shard serves each slot: an index into the shards it was built from.
#[derive(Clone)]
pub(crate) struct SlotMap {
    owner: Box<[u16]>,
}

/// No shard serves the slot.
const UNSERVED: u16 = u16::MAX;

impl SlotMap {
    pub fn new(shards: &[ShardLayout]) -> SlotMap {
        let mut owner = vec![UNSERVED; usize::from(SLOTS)].into_boxed_slice();
        for (index, shard) in shards.iter().enumerate() {
            let index = u16::try_from(index).unwrap_or(UNSERVED);
            for range in &shard.slots {
                for slot in range.start..=range.end.min(SLOTS - 1) {
                    owner[usize::from(slot)] = index;
                }
            }
        }
        SlotMap { owner }
    }

    /// The index of the shard serving `slot`.
    #[inline]
    pub fn get(&self, slot: u16) -> Option<usize> {
        match self.owner.get(usize::from(slot)) {
            Some(&UNSERVED) | None => None,
            Some(&index) => Some(usize::from(index)),
        }
    }
}

/// Where a command goes in a cluster, by its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotOf {
    /// Every key hashes to this slot.
    Slot(u16),
    /// No key the router can find (keyless commands, and those whose keys only the server
    /// finds): any master, which redirects if it must.
    Anywhere,
    /// Keys of different slots: a cluster refuses the command.
    Cross,
}

/// The slot of `args` (the command name first).
pub(crate) fn command_slot(commands: &CommandTable, args: &[&[u8]]) -> SlotOf {
    let Some(spec) = commands.lookup(args) else {
        return SlotOf::Anywhere;
    };
    if spec.kind != CommandKind::Keys || spec.movable {
        return SlotOf::Anywhere;
    }
    let mut found: Option<u16> = None;
    let mut cross = false;
    spec.for_each_key(args, |pos, _| {
        let slot = key_slot(args[pos]);
        match found {
            None => found = Some(slot),
            Some(s) if s != slot => cross = true,
            Some(_) => {}
        }
    });
    match (cross, found) {
        (true, _) => SlotOf::Cross,
        (false, Some(slot)) => SlotOf::Slot(slot),
        (false, None) => SlotOf::Anywhere,
    }
}

/// A redirection a node answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Redirect {
    /// The slot lives at `address` now: refresh the layout and send it there.
    Moved { slot: u16, address: String },
    /// The slot is migrating and the key is at `address`: send `ASKING` and the command there,
    /// once; the layout is unchanged.
    Ask { slot: u16, address: String },
}

impl Redirect {
    pub fn from_error(e: &RedisError) -> Option<Redirect> {
        let (address, slot) = e.redirect_node()?;
        let address = address.to_string();
        Some(match e.code() {
            Some("ASK") => Redirect::Ask { slot, address },
            _ => Redirect::Moved { slot, address },
        })
    }
}

#[cfg(test)]
mod tests;
