//! Redis Cluster's rules, as the module and its clients apply them: which slot a key lives in,
//! the slot ranges a node serves, the sharded channel a shard's events go to, and the server's
//! own descriptions of the layout: `CLUSTER NODES`, `CLUSTER SHARDS` (with the `redis` feature)
//! and the `MOVED`/`ASK` redirections.

use crc::{CRC_16_XMODEM, Crc};
use serde::{Deserialize, Serialize};

use crate::ProtocolError;
#[cfg(feature = "redis")]
use crate::Role;
#[cfg(feature = "redis")]
use crate::resp::Fields;

/// Slots in a cluster: 0..16384.
pub const SLOTS: u16 = 16384;

const CRC16: Crc<u16> = Crc::<u16>::new(&CRC_16_XMODEM);

/// The slot of `key`: CRC16 of its hash tag (the bytes between the first `{` and the next `}`,
/// when not empty), else of the whole key, modulo 16384 — the server's own rule.
///
/// ```
/// assert_eq!(hotkey_protocol::cluster::key_slot(b"foo"), 12182);
/// assert_eq!(
///     hotkey_protocol::cluster::key_slot(b"{user1000}.following"),
///     hotkey_protocol::cluster::key_slot(b"user1000"),
/// );
/// ```
pub fn key_slot(key: &[u8]) -> u16 {
    CRC16.checksum(hash_tag(key)) % SLOTS
}

fn hash_tag(key: &[u8]) -> &[u8] {
    let Some(open) = key.iter().position(|&b| b == b'{') else {
        return key;
    };
    match key[open + 1..].iter().position(|&b| b == b'}') {
        Some(0) | None => key,
        Some(len) => &key[open + 1..open + 1 + len],
    }
}

/// An inclusive range of slots, as `CLUSTER SHARDS` and `HOTKEY.ROUTES` give them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SlotRange {
    pub start: u16,
    pub end: u16,
}

impl SlotRange {
    /// Whether `slot` is in the range.
    pub fn contains(&self, slot: u16) -> bool {
        (self.start..=self.end).contains(&slot)
    }
}

impl SlotRange {
    /// A range whose bounds are slots and in order; None otherwise.
    pub fn new(start: u16, end: u16) -> Option<SlotRange> {
        (start <= end && end < SLOTS).then_some(SlotRange { start, end })
    }
}

/// Whether any of `ranges` holds `slot`.
pub fn serves(ranges: &[SlotRange], slot: u16) -> bool {
    ranges.iter().any(|r| r.contains(slot))
}

/// The name of the sharded channel a shard serving `ranges` publishes on: `base` followed by a
/// hash tag (`base{tag}`) whose slot the shard serves, so that `SSUBSCRIBE` reaches a node of
/// this shard and the server keeps the messages inside it. The tag is the smallest counter
/// whose slot is served, so the master and its replicas, which serve the same slots, name the
/// same channel, and it changes only when slots move. None when the shard serves no slot (then
/// it has nowhere to publish).
///
/// ```
/// use hotkey_protocol::cluster::{SlotRange, key_slot, shard_channel};
/// let ranges = [SlotRange { start: 5461, end: 10922 }];
/// let channel = shard_channel("__hotkey__", &ranges).unwrap();
/// assert!(ranges[0].contains(key_slot(channel.as_bytes())));
/// ```
pub fn shard_channel(base: &str, ranges: &[SlotRange]) -> Option<String> {
    let name = |i: u32| format!("{base}{{{i}}}");
    let slot = |i: u32| key_slot(name(i).as_bytes());
    if ranges.is_empty() {
        return None;
    }
    // A base with a hash tag of its own fixes every name's slot: there or nowhere.
    if slot(0) == slot(1) && slot(1) == slot(2) {
        return serves(ranges, slot(0)).then(|| name(0));
    }
    // About SLOTS / (slots served) tries: a few for a third of the slots; a bounded search
    // finds any single slot (a tag for every slot exists below 2^17).
    (0u32..1 << 22).find(|&i| serves(ranges, slot(i))).map(name)
}

/// One line of `CLUSTER NODES`: `<id> <ip:port@cport[,hostname]> <flags> <master id|->
/// <ping> <pong> <epoch> <link> <slot|start-end|[migration]>…`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeLine {
    pub id: String,
    /// The address the node announces; empty while the cluster does not know it (`noaddr`).
    pub host: String,
    pub port: u16,
    pub flags: Vec<String>,
    /// A replica's master id; None for a master (`-`).
    pub master_id: Option<String>,
    /// The slots the node serves itself, in the order listed; slots being imported or migrated
    /// count where the cluster says they live now (`[slot->-id]` markers are not ranges).
    pub slots: Vec<SlotRange>,
}

impl NodeLine {
    pub fn has(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    pub fn is_master(&self) -> bool {
        self.has("master")
    }

    /// Servers before Redis 7 say `slave`; some forks say `replica`.
    pub fn is_replica(&self) -> bool {
        self.has("slave") || self.has("replica")
    }

    /// Flagged failing, or not (yet) a full member.
    pub fn is_failing(&self) -> bool {
        ["fail", "fail?", "handshake", "noaddr"]
            .iter()
            .any(|f| self.has(f))
    }

    pub fn serves(&self, slot: u16) -> bool {
        serves(&self.slots, slot)
    }

    /// The slots of this node's shard, sorted: its own for a master, its master's (as `lines`
    /// list it) for a replica, none when the master is not listed.
    pub fn shard_slots(&self, lines: &[NodeLine]) -> Vec<SlotRange> {
        let owner = match &self.master_id {
            Some(id) if self.is_replica() => lines.iter().find(|l| &l.id == id),
            _ => Some(self),
        };
        let mut slots = owner.map(|o| o.slots.clone()).unwrap_or_default();
        slots.sort_unstable();
        slots
    }
}

/// Parses a `CLUSTER NODES` reply. An error names the line and what is wrong with it.
pub fn parse_cluster_nodes(text: &str) -> Result<Vec<NodeLine>, ProtocolError> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(parse_node_line)
        .collect()
}

fn parse_node_line(line: &str) -> Result<NodeLine, ProtocolError> {
    let bad = |what: &str| ProtocolError::new(format!("CLUSTER NODES line {line:?}: {what}"));
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [
        id,
        address,
        flags,
        master,
        _ping,
        _pong,
        _epoch,
        _link,
        slots @ ..,
    ] = fields.as_slice()
    else {
        return Err(bad("fewer than 8 fields"));
    };
    let address = address.split(['@', ',']).next().unwrap_or_default();
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| bad("an address without a port"))?;
    let port = port.parse().map_err(|_| bad("a bad port"))?;
    let slots = slots
        .iter()
        .filter(|s| !s.starts_with('['))
        .map(|s| parse_range(s).ok_or_else(|| bad(&format!("a bad slot range {s:?}"))))
        .collect::<Result<_, _>>()?;
    Ok(NodeLine {
        id: (*id).to_owned(),
        host: host.to_owned(),
        port,
        flags: flags.split(',').map(str::to_owned).collect(),
        master_id: (*master != "-").then(|| (*master).to_owned()),
        slots,
    })
}

/// `5461-10922` or `7000`.
fn parse_range(text: &str) -> Option<SlotRange> {
    let (start, end) = text.split_once('-').unwrap_or((text, text));
    SlotRange::new(start.parse().ok()?, end.parse().ok()?)
}

/// One shard of a `CLUSTER SHARDS` reply.
#[cfg(feature = "redis")]
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShardEntry {
    /// In the order listed; empty for a shard that serves none.
    pub slots: Vec<SlotRange>,
    pub nodes: Vec<ShardNode>,
}

/// One node of a [`ShardEntry`].
#[cfg(feature = "redis")]
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShardNode {
    pub id: String,
    /// Its `endpoint` (the address clients are told to use), else its `ip`.
    pub host: String,
    pub port: u16,
    pub role: Role,
    /// False when the cluster flags it `failed`.
    pub online: bool,
}

/// Why a shard has no one owner: it names two masters online (the middle of a failover);
/// `CLUSTER SLOTS` names one owner per slot.
#[cfg(feature = "redis")]
pub const TWO_MASTERS: &str = "a shard with two masters online";

#[cfg(feature = "redis")]
impl ShardEntry {
    /// The shard's master. A shard whose only master is `failed` keeps it: its slots have no
    /// other owner until a replica is promoted. Mid-failover a shard may name its old master
    /// too (flagged failed once it is known dead, or not yet demoted in this node's view): the
    /// one online master is the owner; two online masters are two views at once, an error
    /// ([`TWO_MASTERS`]).
    pub fn master(&self) -> Result<Option<&ShardNode>, ProtocolError> {
        let masters: Vec<&ShardNode> = self
            .nodes
            .iter()
            .filter(|n| n.role == Role::Master)
            .collect();
        if let [only] = masters.as_slice() {
            return Ok(Some(only));
        }
        let mut online = masters.into_iter().filter(|n| n.online);
        match (online.next(), online.next()) {
            (Some(_), Some(_)) => Err(ProtocolError::new(format!("CLUSTER SHARDS: {TWO_MASTERS}"))),
            (one, _) => Ok(one),
        }
    }
}

/// Parses a `CLUSTER SHARDS` reply (Redis 7.0+), RESP2 or RESP3. An error names what is wrong.
#[cfg(feature = "redis")]
pub fn parse_cluster_shards(reply: &redis::Value) -> Result<Vec<ShardEntry>, ProtocolError> {
    let bad = |what: &str| ProtocolError::new(format!("CLUSTER SHARDS: {what}"));
    let shards = match reply {
        redis::Value::Array(a) | redis::Value::Set(a) => a,
        _ => return Err(bad("not an array")),
    };
    shards
        .iter()
        .map(|shard| {
            let f = Fields::of(shard, "CLUSTER SHARDS shard")?;
            let bounds = f.list("slots")?;
            if bounds.len() % 2 != 0 {
                return Err(bad("an odd number of slot bounds"));
            }
            let slots = bounds
                .chunks_exact(2)
                .map(|pair| {
                    let bound = |v| crate::resp::int(v).and_then(|i| u16::try_from(i).ok());
                    match (bound(&pair[0]), bound(&pair[1])) {
                        (Some(start), Some(end)) => SlotRange::new(start, end),
                        _ => None,
                    }
                    .ok_or_else(|| bad(&format!("a bad slot range {pair:?}")))
                })
                .collect::<Result<_, _>>()?;
            let nodes = f
                .list("nodes")?
                .iter()
                .map(shard_node)
                .collect::<Result<_, _>>()?;
            Ok(ShardEntry { slots, nodes })
        })
        .collect()
}

#[cfg(feature = "redis")]
fn shard_node(value: &redis::Value) -> Result<ShardNode, ProtocolError> {
    let f = Fields::of(value, "CLUSTER SHARDS node")?;
    let endpoint = match f.optional("endpoint") {
        Some(_) => Some(f.string("endpoint")?),
        None => None,
    };
    // `?` is a node whose endpoint the cluster does not know; `ip` is then the one to use.
    let host = match endpoint.filter(|e| !e.is_empty() && e != "?") {
        Some(endpoint) => endpoint,
        None => f.string("ip")?,
    };
    let role = f.bytes("role")?;
    let role = Role::parse(role).ok_or_else(|| {
        ProtocolError::new(format!(
            "CLUSTER SHARDS node: bad role '{}'",
            String::from_utf8_lossy(role)
        ))
    })?;
    let online = match f.optional("health") {
        Some(_) => f.bytes("health")? != b"failed",
        None => true,
    };
    Ok(ShardNode {
        id: f.string("id")?,
        host,
        port: f.unsigned("port")?,
        role,
        online,
    })
}

/// A redirection a cluster node answers with instead of running a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redirect {
    /// The slot lives at `address` now: refresh the layout and send the command there.
    Moved { slot: u16, address: String },
    /// The slot is migrating and the key is at `address`: send `ASKING` and the command there,
    /// once; the layout is unchanged.
    Ask { slot: u16, address: String },
}

impl Redirect {
    /// The redirection of an error reply given as its code (`MOVED`, `ASK`) and the rest of
    /// its text (`3999 127.0.0.1:6381`). None for any other error; an error when a `MOVED` or
    /// `ASK` is malformed.
    pub fn parse(code: &str, detail: &str) -> Result<Option<Redirect>, ProtocolError> {
        let ask = match code {
            "MOVED" => false,
            "ASK" => true,
            _ => return Ok(None),
        };
        let bad = || ProtocolError::new(format!("malformed redirection: {code} {detail}"));
        let mut parts = detail.split_ascii_whitespace();
        let slot = parts
            .next()
            .and_then(|s| s.parse().ok())
            .filter(|&s| s < SLOTS)
            .ok_or_else(bad)?;
        let address = parts.next().ok_or_else(bad)?;
        let port_ok = address
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok());
        if !port_ok || parts.next().is_some() {
            return Err(bad());
        }
        let address = address.to_owned();
        Ok(Some(match ask {
            true => Redirect::Ask { slot, address },
            false => Redirect::Moved { slot, address },
        }))
    }

    /// The redirection of an error the `redis` crate returned; None for any other error or a
    /// malformed one.
    #[cfg(feature = "redis")]
    pub fn from_redis(e: &redis::RedisError) -> Option<Redirect> {
        Redirect::parse(e.code()?, e.detail()?).ok().flatten()
    }

    pub fn slot(&self) -> u16 {
        match self {
            Redirect::Moved { slot, .. } | Redirect::Ask { slot, .. } => *slot,
        }
    }

    /// `host:port`, as the server wrote it.
    pub fn address(&self) -> &str {
        match self {
            Redirect::Moved { address, .. } | Redirect::Ask { address, .. } => address,
        }
    }

    /// The host and port; the host is empty when the server does not know its own endpoint
    /// (then it is the host the command was sent to). None when the address has no port.
    pub fn host_port(&self) -> Option<(&str, u16)> {
        let (host, port) = self.address().rsplit_once(':')?;
        Some((host, port.parse().ok()?))
    }

    pub fn is_ask(&self) -> bool {
        matches!(self, Redirect::Ask { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_the_servers_rule() {
        // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"123456789"), 0x31C3 % SLOTS);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_ne!(
            key_slot(b"foo{}{bar}"),
            key_slot(b"bar"),
            "an empty tag is no tag"
        );
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
        assert_eq!(key_slot(b""), 0);
        assert_eq!(key_slot(&[0xff, 0x00, b'{', 0xc4, b'}']), key_slot(&[0xc4]));
    }

    #[test]
    fn the_channel_lands_in_a_served_slot_and_changes_only_when_it_must() {
        let first = [SlotRange {
            start: 0,
            end: 5460,
        }];
        let c = shard_channel("hk", &first).unwrap();
        assert!(c.starts_with("hk{"));
        assert!(serves(&first, key_slot(c.as_bytes())));
        let more = [
            SlotRange {
                start: 0,
                end: 5460,
            },
            SlotRange {
                start: 9000,
                end: 9001,
            },
        ];
        let slot = key_slot(c.as_bytes());
        if !(9000..=9001).contains(&slot) {
            assert_eq!(
                shard_channel("hk", &more).unwrap(),
                c,
                "the same smallest tag"
            );
        }
        let moved = [SlotRange {
            start: 10923,
            end: 16383,
        }];
        let d = shard_channel("hk", &moved).unwrap();
        assert!(serves(&moved, key_slot(d.as_bytes())));
        for slot in [0, 777, 16383] {
            let one = [SlotRange {
                start: slot,
                end: slot,
            }];
            assert_eq!(
                key_slot(shard_channel("hk", &one).unwrap().as_bytes()),
                slot
            );
        }
        assert_eq!(shard_channel("hk", &[]), None);
        // A base with a tag of its own fixes the slot: the channel is there or nowhere.
        let fixed = key_slot(b"x");
        let at = [SlotRange {
            start: fixed,
            end: fixed,
        }];
        assert_eq!(shard_channel("a{x}b", &at).as_deref(), Some("a{x}b{0}"));
        let elsewhere = [SlotRange {
            start: (fixed + 1) % SLOTS,
            end: (fixed + 1) % SLOTS,
        }];
        assert_eq!(shard_channel("a{x}b", &elsewhere), None);
        // An empty or open brace in the base is no tag: the counter still moves the slot.
        assert!(shard_channel("a{}b", &one_slot(5)).is_some());
        assert!(shard_channel("a{b", &one_slot(5)).is_some());
    }

    const NODES: &str = "\
e7d1eecce10f 127.0.0.1:30004@40004 slave 67ed2db8d677 0 1426238317239 4 connected
67ed2db8d677 127.0.0.1:30002@40002,host2 master - 0 1426238316232 2 connected 5461-10922 12000 [12001->-292f8b365bb7]
292f8b365bb7 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460 [12001-<-67ed2db8d677]
aaaaaaaaaaaa :0@0 master,noaddr - 0 0 0 disconnected
";

    #[test]
    fn cluster_nodes_lists_each_node_with_its_own_slots() {
        let lines = parse_cluster_nodes(NODES).expect("parses");
        assert_eq!(lines.len(), 4);
        let replica = &lines[0];
        assert!(replica.is_replica() && !replica.is_master());
        assert_eq!(replica.master_id.as_deref(), Some("67ed2db8d677"));
        assert_eq!((replica.host.as_str(), replica.port), ("127.0.0.1", 30004));
        assert_eq!(
            replica.shard_slots(&lines),
            [SlotRange::new(5461, 10922).unwrap(), one_slot(12000)[0]]
        );
        assert_eq!(
            lines[1].port, 30002,
            "the hostname after the comma is not the port"
        );
        assert!(lines[1].serves(12000) && !lines[1].serves(12001));
        assert!(lines[2].has("myself"));
        assert_eq!(lines[2].slots, [SlotRange::new(0, 5460).unwrap()]);
        assert!(lines[3].is_failing() && lines[3].host.is_empty());
        assert_eq!(parse_cluster_nodes(""), Ok(Vec::new()));
    }

    #[test]
    fn a_malformed_cluster_nodes_line_is_an_error_naming_it() {
        let line = |tail: &str| format!("abc 127.0.0.1:7000@17000 master - 0 0 1 connected {tail}");
        for (text, what) in [
            ("garbage".to_string(), "fewer than 8 fields"),
            (line("0-16384"), "a bad slot range \"0-16384\""),
            (line("10-5"), "a bad slot range \"10-5\""),
            (line("x"), "a bad slot range \"x\""),
            (
                "abc 127.0.0.1@17000 master - 0 0 1 connected".to_string(),
                "an address without a port",
            ),
            (
                "abc 127.0.0.1:99999@1 master - 0 0 1 connected".to_string(),
                "a bad port",
            ),
        ] {
            let e = parse_cluster_nodes(&text).expect_err(&text).to_string();
            assert!(e.contains(what) && e.contains(text.as_str()), "{e}");
        }
        assert_eq!(parse_range("16383"), Some(one_slot(16383)[0]));
    }

    #[test]
    fn redirections_read_from_the_error_text() {
        assert_eq!(
            Redirect::parse("MOVED", "3999 127.0.0.1:6381"),
            Ok(Some(Redirect::Moved {
                slot: 3999,
                address: "127.0.0.1:6381".into()
            }))
        );
        let ask = Redirect::parse("ASK", "12 ::1:7003").unwrap().unwrap();
        assert!(ask.is_ask());
        assert_eq!((ask.slot(), ask.host_port()), (12, Some(("::1", 7003))));
        let unknown_host = Redirect::parse("MOVED", "1 :7000").unwrap().unwrap();
        assert_eq!(unknown_host.host_port(), Some(("", 7000)));
        assert_eq!(Redirect::parse("WRONGTYPE", "not a list"), Ok(None));
        for detail in [
            "",
            "16384 h:1",
            "x h:1",
            "1",
            "1 h",
            "1 h:99999",
            "1 h:1 extra",
        ] {
            let e = Redirect::parse("ASK", detail).expect_err(detail);
            assert!(e.to_string().contains("malformed redirection"), "{e}");
        }
    }

    #[cfg(feature = "redis")]
    mod shards {
        use redis::Value;

        use super::super::*;

        fn s(text: &str) -> Value {
            Value::BulkString(text.as_bytes().to_vec())
        }

        fn node(id: &str, port: i64, role: &str, extra: &[(&str, &str)]) -> Value {
            let mut fields = vec![s("id"), s(id), s("port"), Value::Int(port)];
            fields.extend([s("ip"), s("127.0.0.1"), s("role"), s(role)]);
            for (k, v) in extra {
                fields.extend([s(k), s(v)]);
            }
            Value::Array(fields)
        }

        fn shard(slots: &[i64], nodes: Vec<Value>) -> Value {
            Value::Map(vec![
                (
                    s("slots"),
                    Value::Array(slots.iter().map(|&b| Value::Int(b)).collect()),
                ),
                (s("nodes"), Value::Array(nodes)),
            ])
        }

        #[test]
        fn shards_read_from_maps_and_flat_arrays_with_endpoints_first() {
            let flat = Value::Array(vec![
                s("slots"),
                Value::Array(vec![s("0"), s("100"), Value::Int(200), Value::Int(200)]),
                s("nodes"),
                Value::Array(vec![
                    node("r1", 7004, "replica", &[("endpoint", "?")]),
                    node("m1", 7001, "master", &[("endpoint", "node1.example")]),
                ]),
            ]);
            let reply = Value::Array(vec![
                flat,
                shard(&[], vec![node("m2", 7002, "master", &[])]),
            ]);
            let shards = parse_cluster_shards(&reply).expect("parses");
            assert_eq!(
                shards[0].slots,
                [
                    SlotRange::new(0, 100).unwrap(),
                    SlotRange::new(200, 200).unwrap()
                ]
            );
            assert_eq!(shards[0].nodes[0].host, "127.0.0.1", "`?` is no endpoint");
            assert_eq!(shards[0].nodes[0].role, Role::Replica);
            let master = shards[0].master().unwrap().unwrap();
            assert_eq!(
                (master.id.as_str(), master.host.as_str()),
                ("m1", "node1.example")
            );
            assert!(shards[1].slots.is_empty());
        }

        #[test]
        fn one_online_master_owns_a_shard_and_two_are_an_error() {
            let failed = node("old", 7001, "master", &[("health", "failed")]);
            let new = node("new", 7004, "master", &[("health", "online")]);
            let reply = Value::Array(vec![shard(&[0, 10], vec![failed.clone(), new.clone()])]);
            let shards = parse_cluster_shards(&reply).unwrap();
            assert_eq!(shards[0].master().unwrap().unwrap().id, "new");
            let lone = parse_cluster_shards(&Value::Array(vec![shard(&[0, 10], vec![failed])]));
            assert_eq!(lone.unwrap()[0].master().unwrap().unwrap().id, "old");
            let two = node("two", 7005, "master", &[]);
            let reply = Value::Array(vec![shard(&[0, 10], vec![new, two])]);
            let e = parse_cluster_shards(&reply).unwrap()[0]
                .master()
                .unwrap_err();
            assert!(e.to_string().contains(TWO_MASTERS), "{e}");
        }

        #[test]
        fn a_malformed_shards_reply_is_an_error_naming_what_is_wrong() {
            let ok = || node("m", 1, "master", &[]);
            for (reply, what) in [
                (s("nope"), "not an array"),
                (Value::Array(vec![Value::Int(1)]), "not a map"),
                (
                    Value::Array(vec![shard(&[0, 16384], vec![ok()])]),
                    "bad slot range",
                ),
                (
                    Value::Array(vec![shard(&[10, 5], vec![ok()])]),
                    "bad slot range",
                ),
                (Value::Array(vec![shard(&[0], vec![ok()])]), "odd number"),
                (
                    Value::Array(vec![Value::Map(vec![(s("nodes"), Value::Array(vec![]))])]),
                    "missing field 'slots'",
                ),
                (
                    Value::Array(vec![shard(&[0, 1], vec![node("m", 1, "boss", &[])])]),
                    "bad role 'boss'",
                ),
                (
                    Value::Array(vec![shard(&[0, 1], vec![node("m", 70000, "master", &[])])]),
                    "bad value of field 'port'",
                ),
                (
                    Value::Array(vec![shard(
                        &[0, 1],
                        vec![Value::Array(vec![
                            s("id"),
                            s("m"),
                            s("port"),
                            Value::Int(1),
                        ])],
                    )]),
                    "missing field 'ip'",
                ),
            ] {
                let e = parse_cluster_shards(&reply).expect_err(what).to_string();
                assert!(e.contains(what), "{what}: {e}");
            }
        }

        #[test]
        fn a_redis_error_redirects_when_it_is_moved_or_ask() {
            let error = |wire: &[u8]| {
                redis::parse_redis_value(wire)
                    .expect("a RESP error")
                    .extract_error()
                    .expect_err("an error reply")
            };
            assert_eq!(
                Redirect::from_redis(&error(b"-ASK 12 127.0.0.1:7003\r\n")),
                Some(Redirect::Ask {
                    slot: 12,
                    address: "127.0.0.1:7003".into()
                })
            );
            assert_eq!(
                Redirect::from_redis(&error(b"-MOVED 3999 127.0.0.1:7002\r\n")),
                Some(Redirect::Moved {
                    slot: 3999,
                    address: "127.0.0.1:7002".into()
                })
            );
            assert_eq!(
                Redirect::from_redis(&error(b"-WRONGTYPE not a list\r\n")),
                None
            );
        }
    }

    fn one_slot(slot: u16) -> [SlotRange; 1] {
        [SlotRange {
            start: slot,
            end: slot,
        }]
    }
}
