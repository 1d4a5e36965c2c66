//! What the commands ask of the state: one method per use, so that a rule lives here once and
//! the commands only parse and reply.

use hotkey_protocol::cluster::shard_channel;
use hotkey_protocol::{ClusterNode, HotKey, Message, ReadsTo, Replica, Role, TopEntry};

use super::State;
use crate::command_table::CommandTable;
use crate::hot_set::PinError;
use crate::tracker::{Order, Window, key_hash};

/// Where one operation on a key should go, as far as the state knows (`HOTKEY.ROUTE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteAnswer {
    /// Whether the key is in the hot set.
    pub hot: bool,
    /// The replica a read goes to; None: the master.
    pub replica: Option<Replica>,
    /// How long the reply may be cached (0 for writes and cold keys).
    pub cache_ttl_ms: u64,
}

/// The hot set and what a router needs with it (`HOTKEY.ROUTES`).
#[derive(Debug, Clone, PartialEq)]
pub struct RoutesSnapshot {
    pub seq: u64,
    pub run_id: String,
    pub role: Role,
    pub channel: EventChannel,
    /// In a cluster: this node and the slots its shard serves.
    pub cluster: Option<ClusterNode>,
    pub replicas: Vec<Replica>,
    pub keys: Vec<HotKey>,
}

/// Where this node's events go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventChannel {
    pub name: String,
    /// Sharded pub/sub (in a cluster) rather than classic.
    pub sharded: bool,
    /// Whether this node publishes there: not a cluster replica, whose master publishes on
    /// the same channel for the shard.
    pub publishes: bool,
}

impl State {
    /// `databases` of the server: a `DB` option must be below it.
    pub fn databases(&self) -> u32 {
        self.databases
    }

    pub fn set_databases(&mut self, databases: u32) {
        self.databases = databases;
    }

    /// The longest key name counted or reported (`hotkey.max-key-bytes`).
    pub fn max_key_bytes(&self) -> usize {
        self.settings.max_key_bytes
    }

    /// The server runs in cluster mode: the tick reads `CLUSTER NODES`.
    pub fn set_cluster_mode(&mut self, cluster_mode: bool) {
        self.cluster_mode = cluster_mode;
    }

    /// The channel for events with `base` the configured name: outside a cluster `base`
    /// itself (classic pub/sub); in a cluster `base{tag}` with a tag in one of the shard's
    /// slots, sharded, so that messages stay inside the shard.
    pub fn event_channel(&self, base: &str) -> EventChannel {
        match &self.cluster {
            None => EventChannel {
                name: base.to_owned(),
                sharded: false,
                publishes: true,
            },
            Some(view) => match shard_channel(base, &view.slots) {
                Some(name) => EventChannel {
                    name,
                    sharded: true,
                    publishes: view.role == Role::Master,
                },
                // A shard without slots has no channel of its own: nobody to tell.
                None => EventChannel {
                    name: base.to_owned(),
                    sharded: true,
                    publishes: false,
                },
            },
        }
    }

    /// The node's role: as the cluster says in a cluster, else as replication says.
    pub fn role(&self) -> Role {
        match (&self.cluster, self.replica) {
            (Some(view), _) => view.role,
            (None, true) => Role::Replica,
            (None, false) => Role::Master,
        }
    }

    /// The node is a replica (true) or a master.
    pub fn set_replica(&mut self, replica: bool) {
        self.replica = replica;
    }

    pub fn is_replica(&self) -> bool {
        self.replica
    }

    /// A new command table (another module's commands came or went).
    pub fn set_table(&mut self, table: CommandTable) {
        self.table = table;
    }

    /// Whether the filter can tell clients apart, and whether it follows their databases now.
    pub fn database_following(&self) -> (bool, bool) {
        (self.client_dbs.is_some(), self.follow_dbs)
    }

    /// The master's address as `INFO replication` gives it, on a replica.
    pub fn master_address(&self) -> Option<(String, u16)> {
        self.replicas.master_address()
    }

    /// The `count` hottest keys in `window` by `order` (of database `db`, or all) that
    /// `visible` lets the caller see, with their rates as of `now_ms` and whether each is hot.
    pub fn top(
        &mut self,
        window: Window,
        order: Order,
        db: Option<u32>,
        count: usize,
        now_ms: u64,
        visible: impl Fn(&[u8]) -> bool,
    ) -> Vec<TopEntry> {
        // Rates as of now, not as of the last tick.
        self.tracker.read_at(now_ms);
        self.tracker
            .top_in(window, order, db, count, |_, key| visible(key))
            .into_iter()
            .map(|e| {
                let hot = self
                    .hot_set
                    .get(e.db, &e.key, key_hash(e.db, &e.key))
                    .is_some();
                let mut entry = TopEntry::new(e.db, e.key, e.reads_per_sec, e.writes_per_sec);
                entry.error = e.error_per_sec;
                entry.hot = hot;
                entry.window_secs = Some(window.seconds());
                entry
            })
            .collect()
    }

    /// Where a read (or, with `write`, a write) of `key` in database `db` should go. Reads of
    /// a read-hot key go to the next healthy replica in turn when replicas take reads.
    pub fn route(&mut self, db: u32, key: &[u8], write: bool) -> RouteAnswer {
        let Some(entry) = self.hot_entry(db, key) else {
            return RouteAnswer {
                hot: false,
                replica: None,
                cache_ttl_ms: 0,
            };
        };
        let advice = self.hot_set.advice(entry);
        if write {
            return RouteAnswer {
                hot: true,
                replica: None,
                cache_ttl_ms: 0,
            };
        }
        let replica = if advice.reads_to == ReadsTo::Replicas {
            self.replicas.next_healthy()
        } else {
            None
        };
        RouteAnswer {
            hot: true,
            replica,
            cache_ttl_ms: advice.cache_ttl_ms,
        }
    }

    /// The hot set (the keys `visible` lets the caller see), the healthy replicas, and the
    /// `seq` and `run_id` of the last event.
    pub fn routes(&self, base_channel: &str, visible: impl Fn(&[u8]) -> bool) -> RoutesSnapshot {
        let keys = self
            .hot_set
            .sorted()
            .into_iter()
            .filter(|e| visible(&e.key))
            .map(|e| {
                HotKey::new(
                    e.db,
                    e.key.clone(),
                    e.reads_per_sec,
                    e.writes_per_sec,
                    self.hot_set.advice(e),
                )
            })
            .collect();
        RoutesSnapshot {
            seq: self.events.seq(),
            run_id: self.events.run_id().to_owned(),
            role: self.role(),
            channel: self.event_channel(base_channel),
            cluster: self
                .cluster
                .as_ref()
                .map(|view| ClusterNode::new(view.node_id.clone(), view.slots.clone())),
            replicas: self.replicas.healthy(),
            keys,
        }
    }

    /// Pins `key` in database `db` until `until_ms` (or UNPIN); the messages to publish.
    pub fn pin(
        &mut self,
        db: u32,
        key: &[u8],
        until_ms: Option<u64>,
    ) -> Result<Vec<Message>, PinError> {
        let changes = self
            .hot_set
            .pin(db, key, key_hash(db, key), until_ms, &self.tracker)?;
        Ok(self.events.changes(&changes))
    }

    /// `hotkey.max-hot`, for the error of a full hot set.
    pub fn max_hot(&self) -> usize {
        self.hot_set.rules().max_hot
    }

    /// Ends a pin; None when `key` was not pinned, else the messages to publish.
    pub fn unpin(&mut self, db: u32, key: &[u8]) -> Option<Vec<Message>> {
        let changes = self.hot_set.unpin(db, key, key_hash(db, key))?;
        Some(self.events.changes(&changes))
    }

    /// Reads of keys that a router served off this node, reported by a caller in database
    /// `db` (filed where the tracker files that caller's keys). In a cluster only keys of the
    /// shard's slots count: another shard's heat is its own. Returns how many keys counted.
    pub fn report_reads(&mut self, db: u32, pairs: &[(&[u8], u64)]) -> usize {
        let db = self.tracked_db(db);
        let mut counted = 0;
        for &(key, reads) in pairs {
            if self.hot_set.serves(key) {
                self.report(db, key, reads);
                counted += 1;
            }
        }
        counted
    }
}
