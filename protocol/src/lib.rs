//! # hotkey-protocol
//!
//! The one definition of what the hotkey module says and what its clients read:
//! - the **events** it publishes on its pub/sub channel, as JSON ([`Message`]);
//! - the fields of its **`HOTKEY.ROUTE`** and **`HOTKEY.ROUTES`** replies ([`Route`],
//!   [`Routes`], and the names in [`field`]), parsed from the `redis` crate's `Value` with the
//!   `redis` feature;
//! - which arguments of a command are **keys**, read or written ([`command_table`]), from the
//!   server's `COMMAND` reply: the module counts and the router routes by the same rule;
//! - where a command that names no key goes among several masters ([`keyless`]), and the
//!   one cursor of a `SCAN` over all of them ([`scan`]);
//! - the server's descriptions of a **cluster** ([`cluster`]): `CLUSTER NODES` (text, for the
//!   module too), `CLUSTER SHARDS` and the `MOVED`/`ASK` redirections;
//! - the one accessor of RESP map replies, RESP2 or RESP3 (`resp::Fields`, `redis` feature);
//! - what an **error reply's code** means to a router (`LOADING`: serve elsewhere) ([`errors`]);
//! - the **order** of a node's events: in order, old, a gap or a restart ([`sequence`]).
//!
//! Format version [`VERSION`]: later versions add fields and events, never change the meaning
//! of one. A reader ignores fields it does not know and reads an unknown event as
//! [`Event::Unknown`]. For the same reason every struct here is `#[non_exhaustive]`: a new
//! field must not break code that builds one, so each is built with its `new` (the fields every
//! use sets) and the rest set afterwards, by assignment or a setter.
//!
//! ```
//! use hotkey_protocol::{Event, Message};
//!
//! let text = r#"{"v":1,"seq":7,"run_id":"a1","ts_ms":1764139200123,"event":"hot","db":0,
//!   "key":"leaderboard:global","reads_per_sec":5012.5,"writes_per_sec":98.0,
//!   "read_hot":true,"write_hot":false,"pinned":false,"reads_to":"replicas","cache_ttl_ms":100}"#;
//! let message = Message::from_json(text.as_bytes()).unwrap();
//! assert_eq!(message.seq, 7);
//! let Event::Hot(hot) = &message.event else { panic!() };
//! assert_eq!(hot.key.bytes().unwrap(), b"leaderboard:global");
//! ```

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

pub mod cluster;
pub mod command_table;
pub mod errors;
pub mod frame;
pub mod keyless;
#[cfg(feature = "redis")]
pub mod resp;
pub mod scan;
pub mod sequence;

/// The format version every message carries in `v`.
pub const VERSION: u32 = 1;

/// The channel the module publishes on unless `hotkey.channel` says otherwise.
pub const DEFAULT_CHANNEL: &str = "__hotkey__";

/// One published message: the envelope every event shares, and the event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Message {
    /// Format version ([`VERSION`]).
    pub v: u32,
    /// +1 per message of this run, starting at 1: a jump means messages were missed.
    pub seq: u64,
    /// New each time the module loads: a change means the module restarted and every
    /// earlier state is gone.
    pub run_id: String,
    /// Wall-clock milliseconds since the Unix epoch when the message was made.
    pub ts_ms: u64,
    /// In a cluster: the publishing node's cluster id (`CLUSTER MYID`); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    /// In a cluster: the publishing node's role; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// What happened.
    #[serde(flatten)]
    pub event: Event,
}

impl Message {
    /// A message of this format version from no particular cluster node.
    pub fn new(seq: u64, run_id: impl Into<String>, ts_ms: u64, event: Event) -> Message {
        Message {
            v: VERSION,
            seq,
            run_id: run_id.into(),
            ts_ms,
            node_id: None,
            role: None,
            event,
        }
    }

    /// Names the publishing cluster node (`node_id` and `role`).
    pub fn from_node(mut self, node_id: impl Into<String>, role: Role) -> Message {
        self.node_id = Some(node_id.into());
        self.role = Some(role);
        self
    }

    /// The message as one line of JSON.
    pub fn to_json(&self) -> String {
        // A struct of strings, numbers and booleans always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses a message; an error names what is wrong.
    pub fn from_json(bytes: &[u8]) -> Result<Message, ProtocolError> {
        serde_json::from_slice(bytes).map_err(|e| ProtocolError::new(format!("bad event: {e}")))
    }
}

/// The events, by their `event` field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// A key entered the hot set (detected or pinned); carries its advice.
    Hot(KeyEvent),
    /// A key left the hot set; no advice: send everything for it to the master again.
    Cold(KeyEvent),
    /// A hot key's rates moved a lot or its advice changed; carries the new advice.
    Update(KeyEvent),
    /// Sent every `hotkey.heartbeat-ms`; its absence means the subscriber lost the stream.
    Heartbeat(Heartbeat),
    /// The set of healthy replicas changed.
    Replicas(ReplicasEvent),
    /// An event of a later format version.
    #[serde(other)]
    Unknown,
}

/// A key event: which key, its rates and, while hot, the advice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct KeyEvent {
    /// Database number.
    pub db: u32,
    /// The key name.
    #[serde(flatten)]
    pub key: KeyName,
    /// Decayed reads per second, including reads routers reported serving elsewhere.
    pub reads_per_sec: f64,
    /// Decayed writes per second.
    pub writes_per_sec: f64,
    /// Where to send the key's operations; absent on `cold`.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub advice: Option<Advice>,
}

impl KeyEvent {
    /// The event body of `key` in database `db`; `advice` is None on `cold`.
    pub fn new(
        db: u32,
        key: &[u8],
        reads_per_sec: f64,
        writes_per_sec: f64,
        advice: Option<Advice>,
    ) -> KeyEvent {
        KeyEvent {
            db,
            key: KeyName::new(key),
            reads_per_sec,
            writes_per_sec,
            advice,
        }
    }
}

/// A key name on the wire: `key` when it is valid UTF-8, else `key_b64` (standard base64).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct KeyName {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_b64: Option<String>,
}

impl KeyName {
    /// The wire form of `bytes`.
    pub fn new(bytes: &[u8]) -> KeyName {
        match std::str::from_utf8(bytes) {
            Ok(s) => KeyName {
                key: Some(s.to_owned()),
                key_b64: None,
            },
            Err(_) => KeyName {
                key: None,
                key_b64: Some(BASE64.encode(bytes)),
            },
        }
    }

    /// The key's bytes; an error when neither field is set or `key_b64` is not base64.
    pub fn bytes(&self) -> Result<Vec<u8>, ProtocolError> {
        match (&self.key, &self.key_b64) {
            (Some(k), _) => Ok(k.as_bytes().to_vec()),
            (None, Some(b)) => BASE64
                .decode(b)
                .map_err(|e| ProtocolError::new(format!("bad key_b64: {e}"))),
            (None, None) => Err(ProtocolError::new("event has neither key nor key_b64")),
        }
    }
}

/// Where reads of a hot key should go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReadsTo {
    /// A healthy replica (round-robin).
    Replicas,
    /// The master: the key is not read-hot, or no replica is healthy.
    Master,
}

impl ReadsTo {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ReadsTo::Replicas => "replicas",
            ReadsTo::Master => "master",
        }
    }

    /// The value of a wire name.
    pub fn parse(s: &[u8]) -> Option<ReadsTo> {
        match s {
            b"replicas" => Some(ReadsTo::Replicas),
            b"master" => Some(ReadsTo::Master),
            _ => None,
        }
    }
}

/// The module's advice for a hot key. Writes always go to the master.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Advice {
    /// The key's reads are hot by themselves.
    pub read_hot: bool,
    /// The key's writes are hot by themselves.
    pub write_hot: bool,
    /// An operator pinned it (`HOTKEY.PIN`).
    pub pinned: bool,
    /// Where its reads should go.
    pub reads_to: ReadsTo,
    /// How long a client may serve the key from its own memory; 0 = do not cache (the key is
    /// write-hot, so a cached copy would be stale).
    pub cache_ttl_ms: u64,
}

impl Advice {
    /// Reads to `reads_to`, cached for `cache_ttl_ms`; neither hot nor pinned until the setters
    /// below say so.
    pub const fn new(reads_to: ReadsTo, cache_ttl_ms: u64) -> Advice {
        Advice {
            read_hot: false,
            write_hot: false,
            pinned: false,
            reads_to,
            cache_ttl_ms,
        }
    }

    /// Sets [`Advice::read_hot`].
    pub const fn read_hot(mut self, read_hot: bool) -> Advice {
        self.read_hot = read_hot;
        self
    }

    /// Sets [`Advice::write_hot`].
    pub const fn write_hot(mut self, write_hot: bool) -> Advice {
        self.write_hot = write_hot;
        self
    }

    /// Sets [`Advice::pinned`].
    pub const fn pinned(mut self, pinned: bool) -> Advice {
        self.pinned = pinned;
        self
    }
}

/// The heartbeat's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Heartbeat {
    /// Keys in the hot set now.
    pub hot_keys: u64,
    /// Healthy replicas now.
    pub replicas: u64,
}

impl Heartbeat {
    pub const fn new(hot_keys: u64, replicas: u64) -> Heartbeat {
        Heartbeat { hot_keys, replicas }
    }
}

/// The `replicas` event's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ReplicasEvent {
    /// Every healthy replica now.
    pub replicas: Vec<Replica>,
}

impl ReplicasEvent {
    pub fn new(replicas: Vec<Replica>) -> ReplicasEvent {
        ReplicasEvent { replicas }
    }
}

/// A replica that hot reads may go to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Replica {
    /// Its address as it announces it (`replica-announce-ip`, else the address it connected from).
    pub host: String,
    /// Its port (`replica-announce-port`, else its `port`).
    pub port: u16,
    /// Seconds since its last acknowledgement, in milliseconds (INFO's `lag`, 1 s resolution).
    pub lag_ms: u64,
}

impl Replica {
    pub fn new(host: impl Into<String>, port: u16, lag_ms: u64) -> Replica {
        Replica {
            host: host.into(),
            port,
            lag_ms,
        }
    }
}

/// A node's role, and which node an operation should go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Role {
    Master,
    Replica,
}

impl Role {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Replica => "replica",
        }
    }

    /// The value of a wire name.
    pub fn parse(s: &[u8]) -> Option<Role> {
        match s {
            b"master" => Some(Role::Master),
            b"replica" => Some(Role::Replica),
            _ => None,
        }
    }
}

/// The `HOTKEY.ROUTE` reply: where one read or write of a key should go.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Route {
    pub role: Role,
    pub host: String,
    pub port: u16,
    /// Whether the key is in the hot set.
    pub hot: bool,
    /// As in [`Advice::cache_ttl_ms`]; 0 for cold keys and writes.
    pub cache_ttl_ms: u64,
}

impl Route {
    pub fn new(
        role: Role,
        host: impl Into<String>,
        port: u16,
        hot: bool,
        cache_ttl_ms: u64,
    ) -> Route {
        Route {
            role,
            host: host.into(),
            port,
            hot,
            cache_ttl_ms,
        }
    }
}

/// A hot key with its rates and advice, as `HOTKEY.ROUTES` lists it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct HotKey {
    pub db: u32,
    pub key: Vec<u8>,
    pub reads_per_sec: f64,
    pub writes_per_sec: f64,
    pub advice: Advice,
}

impl HotKey {
    pub fn new(
        db: u32,
        key: impl Into<Vec<u8>>,
        reads_per_sec: f64,
        writes_per_sec: f64,
        advice: Advice,
    ) -> HotKey {
        HotKey {
            db,
            key: key.into(),
            reads_per_sec,
            writes_per_sec,
            advice,
        }
    }
}

/// The `HOTKEY.ROUTES` reply: the whole hot set, to start from or resync to. Every event up
/// to `seq` is reflected in it; apply the ones after.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Routes {
    pub seq: u64,
    pub run_id: String,
    /// The channel the events go to.
    pub channel: String,
    /// Whether `channel` is a sharded channel (`SSUBSCRIBE`, in a cluster) rather than a
    /// classic one (`SUBSCRIBE`).
    pub sharded: bool,
    /// The answering node's role.
    pub role: Role,
    /// In a cluster: the answering node and the slots its shard serves.
    pub cluster: Option<ClusterNode>,
    /// The master's address as the caller reached it.
    pub master: Address,
    /// The healthy replicas.
    pub replicas: Vec<Replica>,
    /// The hot keys the caller may read.
    pub keys: Vec<HotKey>,
}

impl Routes {
    /// A reply on a classic channel, outside a cluster, with no replica and no hot key; the
    /// other fields are set by assignment.
    pub fn new(
        seq: u64,
        run_id: impl Into<String>,
        channel: impl Into<String>,
        role: Role,
        master: Address,
    ) -> Routes {
        Routes {
            seq,
            run_id: run_id.into(),
            channel: channel.into(),
            sharded: false,
            role,
            cluster: None,
            master,
            replicas: Vec::new(),
            keys: Vec::new(),
        }
    }
}

/// The answering node of a cluster, as `HOTKEY.ROUTES` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterNode {
    /// Its cluster id (`CLUSTER MYID`).
    pub node_id: String,
    /// The slots its shard serves (a replica's are its master's), in order.
    pub slots: Vec<cluster::SlotRange>,
}

impl ClusterNode {
    pub fn new(node_id: impl Into<String>, slots: Vec<cluster::SlotRange>) -> ClusterNode {
        ClusterNode {
            node_id: node_id.into(),
            slots,
        }
    }
}

/// One entry of the `HOTKEY.TOP` reply: a tracked key and its decayed rates.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TopEntry {
    pub key: Vec<u8>,
    pub db: u32,
    pub reads_per_sec: f64,
    pub writes_per_sec: f64,
    /// How much the rates may overstate the key's true rate (the summary's error bound).
    pub error: f64,
    /// Whether the key is in the hot set.
    pub hot: bool,
    /// The window the rates are taken over, in seconds (`WINDOW`): 1 (the detector's), 10, 60;
    /// None from modules older than the `window` field.
    pub window_secs: Option<u64>,
}

impl TopEntry {
    /// An entry with no error bound, not hot, of no named window; the other fields are set by
    /// assignment.
    pub fn new(
        db: u32,
        key: impl Into<Vec<u8>>,
        reads_per_sec: f64,
        writes_per_sec: f64,
    ) -> TopEntry {
        TopEntry {
            key: key.into(),
            db,
            reads_per_sec,
            writes_per_sec,
            error: 0.0,
            hot: false,
            window_secs: None,
        }
    }
}

/// A host and port.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Address {
    pub host: String,
    pub port: u16,
}

impl Address {
    pub fn new(host: impl Into<String>, port: u16) -> Address {
        Address {
            host: host.into(),
            port,
        }
    }
}

/// The field names of the RESP replies, shared by the writer (the module) and the readers.
pub mod field {
    pub const ROLE: &str = "role";
    pub const HOST: &str = "host";
    pub const PORT: &str = "port";
    pub const HOT: &str = "hot";
    pub const CACHE_TTL_MS: &str = "cache_ttl_ms";
    pub const SEQ: &str = "seq";
    pub const RUN_ID: &str = "run_id";
    pub const CHANNEL: &str = "channel";
    pub const MASTER: &str = "master";
    pub const REPLICAS: &str = "replicas";
    pub const KEYS: &str = "keys";
    pub const LAG_MS: &str = "lag_ms";
    pub const DB: &str = "db";
    pub const KEY: &str = "key";
    pub const READS_PER_SEC: &str = "reads_per_sec";
    pub const WRITES_PER_SEC: &str = "writes_per_sec";
    pub const READ_HOT: &str = "read_hot";
    pub const WRITE_HOT: &str = "write_hot";
    pub const PINNED: &str = "pinned";
    pub const READS_TO: &str = "reads_to";
    pub const SHARDED: &str = "sharded";
    pub const NODE_ID: &str = "node_id";
    pub const SLOTS: &str = "slots";
    pub const ERROR: &str = "error";
    pub const WINDOW: &str = "window";
}

/// A message or reply that does not follow the format; says what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(String);

impl ProtocolError {
    /// An error that says what is wrong with a reply, for parsers of wire shapes that live
    /// beside their only user (the router's `CLUSTER SLOTS`).
    pub fn new(text: impl Into<String>) -> ProtocolError {
        ProtocolError(text.into())
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProtocolError {}

#[cfg(test)]
mod tests;
