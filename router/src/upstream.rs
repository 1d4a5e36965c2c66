//! The router's upstream side for a front end that sends the bytes itself: the proxy forwards
//! its clients' raw requests and the server's raw replies, so it cannot go through
//! [`Router::query`](crate::Router::query), which parses every reply into a `redis::Value`.
//! [`ShardHandle`] gives it what a shard knows — where a command goes, which keys a write
//! invalidates, whether a cached reply is still good, which replica is next, where the master
//! is — while the router keeps doing the rest: the link, the subscription, resyncs, replica
//! probes and reports.
//!
//! Read-your-writes is the front end's: it knows its clients, and a write by one client must
//! not send every other client's hot reads to the master (the router's own window is per
//! router, since a router is one application).

use std::sync::Arc;
use std::time::Duration;

use redis::ConnectionInfo;

use crate::metrics::{Metrics, bump};
use crate::routing::{Plan, Target};
use crate::shard::Shard;
use crate::topology::{SlotOf, command_slot};

/// One master's state, as a front end sees it. Cheap to clone.
#[derive(Clone)]
pub struct ShardHandle {
    shard: Arc<Shard>,
}

/// Where one command goes, for a front end.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Route<'a> {
    /// The master. `writes`: keys the command writes, to invalidate (with
    /// [`ShardHandle::wrote`]) once the master answered and before the client hears of it.
    /// `blocking`: the command may block (`BLPOP`, `XREAD … BLOCK`): not on a shared
    /// connection.
    Master {
        writes: Vec<&'a [u8]>,
        blocking: bool,
    },
    /// A hot read to serve from the cache: the reply stays good while `key`'s epoch is
    /// `epoch` (see [`ShardHandle::is_current`]), at most `ttl`.
    Cache {
        key: &'a [u8],
        ttl: Duration,
        epoch: u64,
    },
    /// A hot read for a replica ([`ShardHandle::next_replica`]).
    Replica { keys: Vec<&'a [u8]> },
    /// A read of hot keys that must go to the master (the client wrote one lately, no replica
    /// is up, or the advice keeps reads on the master).
    HotOnMaster { keys: Vec<&'a [u8]> },
}

/// The master of a live link.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MasterSession {
    /// How to reach it: address, user, password, database (the router's settings).
    pub info: ConnectionInfo,
    /// Numbers the router's links to it: a new number means a new master or a reconnect.
    pub session: u64,
    /// The client id of the router's control connection, where the server sends the
    /// invalidations: a connection that fills a cache turns on
    /// `CLIENT TRACKING ON REDIRECT <tracking_id>`.
    pub tracking_id: i64,
}

/// A replica in rotation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ReplicaAddress {
    pub host: String,
    pub port: u16,
}

/// What a front end served, for the router's counters and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Served {
    /// A cache hit (reported to the module as a read served off the master).
    CacheHit,
    /// A cache miss, filled from the master.
    CacheMiss,
    /// A replica answered (reported to the module).
    Replica,
    /// A replica failed or timed out; the read went elsewhere.
    ReplicaFailed,
    /// A hot read on the master.
    HotOnMaster,
    /// Any other command on the master.
    Master,
}

impl ShardHandle {
    pub(crate) fn new(shard: Arc<Shard>) -> ShardHandle {
        ShardHandle { shard }
    }

    /// Where `args` (the command name first) goes now. `wrote_lately`: whether the client
    /// wrote the key within its read-your-writes window (its hot reads then go to the master,
    /// which has the write; a replica may not have it yet).
    pub fn route<'a>(&self, args: &[&'a [u8]], wrote_lately: impl Fn(&[u8]) -> bool) -> Route<'a> {
        match self.shard.plan(args) {
            Plan::Master => Route::Master {
                writes: Vec::new(),
                blocking: false,
            },
            Plan::Write(writes) => Route::Master {
                writes,
                blocking: false,
            },
            Plan::Blocking(writes) => Route::Master {
                writes,
                blocking: true,
            },
            Plan::HotRead(read) => match self.shard.choose(&read, wrote_lately) {
                Target::Cache => match (read.keys.first(), read.cache) {
                    (Some(key), Some((ttl, epoch))) => Route::Cache { key, ttl, epoch },
                    _ => Route::HotOnMaster { keys: read.keys },
                },
                Target::Replica => Route::Replica { keys: read.keys },
                Target::Master => Route::HotOnMaster { keys: read.keys },
            },
        }
    }

    /// Whether `args` (the command name first) names no key: a command the table knows with
    /// no key in it, or one the table does not know. On a cluster such a command has no slot,
    /// and a front end chooses its masters by `hotkey_protocol::keyless::group`. A command whose
    /// keys only the server finds (movable keys) is not keyless: its node redirects it.
    pub fn is_keyless(&self, args: &[&[u8]]) -> bool {
        let commands = self.shard.commands();
        match commands.lookup(args) {
            None => true,
            Some(spec) if spec.movable => false,
            Some(_) => command_slot(&commands, args) == SlotOf::Anywhere,
        }
    }

    /// The slot of `args` (the command name first) on a cluster: None for a command without a
    /// key the router can find; [`crate::Error::CrossSlot`] when its keys are in different
    /// slots.
    pub fn slot_of(&self, args: &[&[u8]]) -> Result<Option<u16>, crate::Error> {
        match command_slot(&self.shard.commands(), args) {
            SlotOf::Slot(slot) => Ok(Some(slot)),
            SlotOf::Anywhere => Ok(None),
            SlotOf::Cross => Err(crate::Error::CrossSlot),
        }
    }

    /// Whether `self` and `other` are the same shard (the same master followed by the same
    /// link task).
    pub fn same_shard(&self, other: &ShardHandle) -> bool {
        Arc::ptr_eq(&self.shard, &other.shard)
    }

    /// The master answered a command that writes `keys`: their cached replies no longer
    /// count. Call it before the client gets the reply.
    pub fn wrote(&self, keys: &[&[u8]]) {
        self.shard.invalidate_written(keys);
    }

    /// Whether a reply read under `epoch` is still good for `key` (no write or invalidation
    /// since, the key still hot, the link unchanged).
    pub fn is_current(&self, key: &[u8], epoch: u64) -> bool {
        self.shard.epoch_of(key) == Some(epoch)
    }

    /// Counts what was served; reads served off the master are reported to the module, so
    /// their heat does not vanish from its view.
    pub fn served(&self, served: Served, keys: &[&[u8]]) {
        let counters = self.shard.counters().here();
        match served {
            Served::CacheHit => {
                bump(&counters.cache_hits);
                self.shard.served_elsewhere(keys);
            }
            Served::CacheMiss => {
                bump(&counters.cache_misses);
                bump(&counters.master);
                bump(&counters.hot_reads_to_master);
            }
            Served::Replica => {
                bump(&counters.replica);
                self.shard.served_elsewhere(keys);
            }
            Served::ReplicaFailed => bump(&counters.replica_errors),
            Served::HotOnMaster => {
                bump(&counters.master);
                bump(&counters.hot_reads_to_master);
            }
            Served::Master => bump(&counters.master),
        }
    }

    /// The master of the live link, or None while the link is down (commands should fail
    /// at once: [`ShardHandle::down_reason`] says why).
    pub fn master(&self) -> Option<MasterSession> {
        self.shard.master_session()
    }

    /// The number of the live link (see [`MasterSession::session`]), without copying its
    /// settings: a front end compares it to the one its connections were opened under.
    pub fn session(&self) -> Option<u64> {
        self.shard.session_id()
    }

    /// Why there is no live link to the master.
    pub fn down_reason(&self) -> crate::Error {
        self.shard.down_error()
    }

    /// A command found the connections of `session` broken (the master went away): the link
    /// reconnects at once instead of waiting for a missed heartbeat.
    pub fn report_broken(&self, session: u64) {
        self.shard.report_broken(session);
    }

    /// The next replica in rotation, if one is up.
    pub fn next_replica(&self) -> Option<ReplicaAddress> {
        self.shard
            .replica_pool()
            .pick_address()
            .map(|(host, port)| ReplicaAddress { host, port })
    }

    /// Every replica in rotation now (where a command every node must run goes).
    pub fn replicas(&self) -> Vec<ReplicaAddress> {
        self.shard
            .replica_pool()
            .addresses()
            .into_iter()
            .map(|(host, port)| ReplicaAddress { host, port })
            .collect()
    }

    /// `replica` failed a read: out of rotation until the router's probe finds it answering.
    pub fn replica_failed(&self, replica: &ReplicaAddress) {
        self.shard
            .replica_pool()
            .fail_address(&replica.host, replica.port);
    }

    /// The master's `host:port` (or, behind Sentinel while asking, a placeholder).
    pub fn master_address(&self) -> String {
        self.shard.master_address()
    }

    /// The shard's counters since the router connected.
    pub fn metrics(&self) -> Metrics {
        self.shard.metrics()
    }

    /// How many keys are hot, as last heard from the module.
    pub fn hot_key_count(&self) -> usize {
        self.shard.hot_key_count()
    }

    /// Replicas in rotation now.
    pub fn replicas_up(&self) -> usize {
        self.shard.replica_pool().up()
    }

    /// True while the link to the master is up.
    pub fn is_connected(&self) -> bool {
        self.shard.is_connected()
    }
}
