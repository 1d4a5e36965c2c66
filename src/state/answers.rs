//! What the commands ask of the state: one method per use, so that a rule lives here once and
//! the commands only parse and reply.

use hotkey_protocol::{HotKey, Message, ReadsTo, Replica, TopEntry};

use super::State;
use crate::command_table::CommandTable;
use crate::hot_set::PinError;
use crate::tracker::{Order, key_hash};

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
    pub replicas: Vec<Replica>,
    pub keys: Vec<HotKey>,
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

    /// The `count` hottest keys by `order` (of database `db`, or all) that `visible` lets the
    /// caller see, with their rates as of `now_ms` and whether each is hot.
    pub fn top(
        &mut self,
        order: Order,
        db: Option<u32>,
        count: usize,
        now_ms: u64,
        visible: impl Fn(&[u8]) -> bool,
    ) -> Vec<TopEntry> {
        // Rates as of now, not as of the last tick.
        self.tracker.read_at(now_ms);
        self.tracker
            .top(order, db, count, |_, key| visible(key))
            .into_iter()
            .map(|e| TopEntry {
                hot: self
                    .hot_set
                    .get(e.db, &e.key, key_hash(e.db, &e.key))
                    .is_some(),
                key: e.key,
                db: e.db,
                reads_per_sec: e.reads_per_sec,
                writes_per_sec: e.writes_per_sec,
                error: e.error_per_sec,
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
    pub fn routes(&self, visible: impl Fn(&[u8]) -> bool) -> RoutesSnapshot {
        let keys = self
            .hot_set
            .sorted()
            .into_iter()
            .filter(|e| visible(&e.key))
            .map(|e| HotKey {
                db: e.db,
                key: e.key.clone(),
                reads_per_sec: e.reads_per_sec,
                writes_per_sec: e.writes_per_sec,
                advice: self.hot_set.advice(e),
            })
            .collect();
        RoutesSnapshot {
            seq: self.events.seq(),
            run_id: self.events.run_id().to_owned(),
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
    /// `db` (filed where the tracker files that caller's keys).
    pub fn report_reads(&mut self, db: u32, pairs: &[(&[u8], u64)]) {
        let db = self.tracked_db(db);
        for &(key, reads) in pairs {
            self.report(db, key, reads);
        }
    }
}
