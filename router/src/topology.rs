//! A cluster's layout as the router uses it, decided without I/O: the shards read from
//! `CLUSTER SHARDS` (or `CLUSTER SLOTS`), the slot → shard map, the slot of a command, and the
//! redirections (`MOVED`, `ASK`) a node answers with.

use hotkey_protocol::ProtocolError;
pub(crate) use hotkey_protocol::cluster::Redirect;
use hotkey_protocol::cluster::{SLOTS, SlotRange, TWO_MASTERS, key_slot, parse_cluster_shards};
use hotkey_protocol::command_table::{CommandKind, CommandTable};
use hotkey_protocol::resp::{int, text};
use redis::Value;

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

fn array(value: &Value) -> Option<&[Value]> {
    match value {
        Value::Array(items) | Value::Set(items) => Some(items),
        _ => None,
    }
}

fn slot(value: &Value) -> Option<u16> {
    u16::try_from(int(value)?).ok().filter(|s| *s < SLOTS)
}

/// Why a `CLUSTER SHARDS` reply is not used: a shard names two masters online (the middle of
/// a failover); `CLUSTER SLOTS` names one owner per slot.
pub(crate) const AMBIGUOUS: &str = TWO_MASTERS;

/// The shards of a `CLUSTER SHARDS` reply (Redis 7.0+) that serve slots, each with its master
/// ([`hotkey_protocol::cluster::ShardEntry::master`] says which).
pub(crate) fn parse_shards(reply: &Value) -> Result<Vec<ShardLayout>, ProtocolError> {
    let bad = |what: &dyn std::fmt::Display| {
        ProtocolError::new(format!(
            "unexpected CLUSTER SHARDS reply ({what}): {reply:?}"
        ))
    };
    let mut shards = Vec::new();
    for entry in parse_cluster_shards(reply).map_err(|e| bad(&e))? {
        if entry.slots.is_empty() {
            continue;
        }
        let master = entry
            .master()
            .map_err(|e| bad(&e))?
            .ok_or_else(|| bad(&"a shard without a master"))?;
        shards.push(ShardLayout {
            master: NodeAddr {
                host: master.host.clone(),
                port: master.port,
                id: Some(master.id.clone()),
            },
            slots: entry.slots,
        });
    }
    Ok(shards)
}

/// The shards of a `CLUSTER SLOTS` reply (servers before 7.0): `[start, end, [host, port,
/// id], replicas…]` per range, ranges of one master gathered.
pub(crate) fn parse_slots(reply: &Value) -> Result<Vec<ShardLayout>, ProtocolError> {
    let bad = |what: &str| {
        ProtocolError::new(format!(
            "unexpected CLUSTER SLOTS reply ({what}): {reply:?}"
        ))
    };
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
                .and_then(int)
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

#[cfg(test)]
mod tests;
