//! `Shard`: everything the router keeps about one master — its connections, the hot set heard
//! from its module, its replicas, the cache of its keys, the reads to report — and the way a
//! command is sent there. A standalone router has one; a cluster router has one per master,
//! each followed by its own link task (`link.rs`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crossbeam_utils::sync::ShardedLock;
use hotkey_protocol::Routes;
use hotkey_protocol::command_table::CommandTable;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Cmd, ConnectionInfo, Pipeline, RedisError, Value};
use rustc_hash::FxBuildHasher;
use tokio::sync::Notify;

use crate::cache::{Cache, Cached};
use crate::error::{Error, Unavailable};
use crate::link::MasterSource;
use crate::locks::{lock, read, read_sharded, write, write_sharded};
use crate::metrics::{Counters, Metrics, bump};
use crate::options::Options;
use crate::replicas::ReplicaPool;
use crate::routing::{self, HotRead, Plan, Target};
use crate::served::ServedCounts;
use crate::table::{Applied, RouteTable};

/// The connections of one live session with the master.
#[derive(Clone)]
pub(crate) struct Connections {
    /// Every command sent to the master but cache fills.
    pub data: MultiplexedConnection,
    /// Cache fills, with `CLIENT TRACKING` redirected to the control connection.
    pub fill: MultiplexedConnection,
    /// The master's connection settings (for dedicated connections).
    pub info: ConnectionInfo,
    /// The session these belong to (sessions count from 1).
    pub session: u64,
    /// The control connection's client id: the target of the fill connection's tracking.
    pub tracking_id: i64,
}

/// What a routing decision reads: the master's command table and the hot set.
struct Routing {
    commands: Arc<CommandTable>,
    table: RouteTable,
}

/// One master's state. Fields are private: every rule about them is a method here.
pub(crate) struct Shard {
    options: Options,
    source: MasterSource,
    /// Set on a cluster: the link tells the topology when it goes down.
    on_down: Option<Arc<Notify>>,
    /// Read by every command (one lock for both tables), written by events, by writes of hot
    /// keys and when the master changes: sharded (see `locks`).
    routing: ShardedLock<Routing>,
    connections: RwLock<Option<Connections>>,
    replicas: ReplicaPool,
    cache: Option<Cache>,
    /// Keys this router wrote lately (read-your-writes), dropped after the window.
    recent_writes: moka::sync::Cache<Box<[u8]>, (), FxBuildHasher>,
    /// Reads per hot key served off the master since the last report.
    served: ServedCounts,
    counters: Counters,
    /// The newest session a command found broken (0: none), and the link's wake-up for it.
    broken: AtomicU64,
    wake: Notify,
    /// The last session number given.
    sessions: AtomicU64,
    /// Why there are no connections, for the callers' errors.
    down_reason: Mutex<Unavailable>,
}

impl Shard {
    /// A shard not connected yet. `cluster`: its replicas need `READONLY`, and `on_down` is
    /// woken whenever its link is lost.
    pub fn new(
        options: Options,
        source: MasterSource,
        db: u32,
        on_down: Option<Arc<Notify>>,
    ) -> Shard {
        let cluster = on_down.is_some();
        Shard {
            cache: options
                .cache
                .then(|| Cache::new(options.cache_capacity_bytes)),
            // Looked up on every hot read: the fast hash (as the cache's), not SipHash.
            recent_writes: moka::sync::Cache::builder()
                .max_capacity(options.read_your_writes_keys)
                .time_to_live(options.read_your_writes)
                .build_with_hasher(FxBuildHasher),
            replicas: ReplicaPool::new(options.replica_timeout, options.connect_timeout, cluster),
            options,
            source,
            on_down,
            routing: ShardedLock::new(Routing {
                commands: Arc::new(CommandTable::default()),
                table: RouteTable::new(db),
            }),
            connections: RwLock::new(None),
            served: ServedCounts::default(),
            counters: Counters::default(),
            broken: AtomicU64::new(0),
            wake: Notify::new(),
            sessions: AtomicU64::new(0),
            down_reason: Mutex::new(Unavailable::NotConnected),
        }
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    pub fn source(&self) -> &MasterSource {
        &self.source
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    pub fn metrics(&self) -> Metrics {
        self.counters.snapshot()
    }

    pub fn replica_pool(&self) -> &ReplicaPool {
        &self.replicas
    }

    /// The command table the master gave.
    pub fn commands(&self) -> Arc<CommandTable> {
        read_sharded(&self.routing).commands.clone()
    }

    pub fn set_commands(&self, commands: CommandTable) {
        write_sharded(&self.routing).commands = Arc::new(commands);
    }

    /// The next session number.
    pub fn next_session(&self) -> u64 {
        self.sessions.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Installs the connections of a new session.
    pub fn set_connections(&self, connections: Connections) {
        *write(&self.connections) = Some(connections);
    }

    /// The connections, or why there are none.
    pub fn connections(&self) -> Result<Connections, Error> {
        read(&self.connections)
            .clone()
            .ok_or_else(|| self.unavailable())
    }

    /// The master's address: the one the shard was given, or (behind Sentinel) the one of
    /// the live session.
    pub fn master_address(&self) -> String {
        match (&self.source, read(&self.connections).as_ref()) {
            (MasterSource::Direct(info), _) => info.addr().to_string(),
            (MasterSource::Sentinel(_), Some(c)) => c.info.addr().to_string(),
            (MasterSource::Sentinel(_), None) => "(asking Sentinel)".into(),
        }
    }

    /// True while the shard has a live session with its master.
    pub fn is_connected(&self) -> bool {
        read(&self.connections).is_some()
    }

    /// A new connection of its own to the master of the live session.
    pub async fn dedicated(
        &self,
        timeout: Option<Duration>,
    ) -> Result<MultiplexedConnection, Error> {
        let info = self.connections()?.info;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.options.connect_timeout))
            .set_response_timeout(timeout);
        Ok(Client::open(info)?
            .get_multiplexed_async_connection_with_config(&config)
            .await?)
    }

    /// A command found the connection of `session` broken: that link must reconnect. Reports
    /// about older sessions (commands that failed before the last reconnect) change nothing.
    pub fn report_broken(&self, session: u64) {
        if self.broken.fetch_max(session, Ordering::AcqRel) < session {
            self.wake.notify_one();
        }
    }

    /// Waits until a command reports `session` (or a newer one) broken.
    pub async fn broken(&self, session: u64) {
        while self.broken.load(Ordering::Acquire) < session {
            self.wake.notified().await;
        }
    }

    fn unavailable(&self) -> Error {
        Error::MasterUnavailable(lock(&self.down_reason).clone())
    }

    pub fn set_down_reason(&self, reason: Unavailable) {
        *lock(&self.down_reason) = reason;
    }

    /// Counts reads of `keys` served off the master, for the next report.
    pub fn served_elsewhere(&self, keys: &[&[u8]]) {
        self.served.add(keys);
    }

    /// The counts to report, taken out.
    pub fn take_served(&self) -> Vec<(Box<[u8]>, u64)> {
        self.served.take()
    }

    /// Puts back counts a report could not deliver.
    pub fn restore_served(&self, counts: Vec<(Box<[u8]>, u64)>) {
        self.served.restore(counts);
    }

    /// This router wrote `keys`: drop their cached replies, and read them from the master for
    /// the read-your-writes window.
    pub fn wrote(&self, keys: &[&[u8]]) {
        self.invalidate_written(keys);
        for key in keys {
            self.recent_writes.insert((*key).into(), ());
        }
    }

    /// `keys` were written through this router: their cached replies no longer count.
    pub fn invalidate_written(&self, keys: &[&[u8]]) {
        // Most writes are of keys that are not hot: the read lock finds that out without
        // holding up the readers. A key that turns hot after this check is cached only by
        // fills sent after it did, which the server runs after this write.
        if keys.is_empty() || {
            let table = &read_sharded(&self.routing).table;
            !keys.iter().any(|k| table.get(k).is_some())
        } {
            return;
        }
        let table = &mut write_sharded(&self.routing).table;
        for key in keys {
            if table.invalidate(key) {
                bump(&self.counters.here().invalidations);
            }
        }
    }

    /// The epoch of `key` if it is hot (see `table`).
    pub fn epoch_of(&self, key: &[u8]) -> Option<u64> {
        read_sharded(&self.routing).table.get(key).map(|e| e.epoch)
    }

    /// How many keys are hot.
    pub fn hot_key_count(&self) -> usize {
        read_sharded(&self.routing).table.len()
    }

    /// The master of the live session, if there is one.
    pub fn master_session(&self) -> Option<crate::upstream::MasterSession> {
        read(&self.connections)
            .as_ref()
            .map(|c| crate::upstream::MasterSession {
                info: c.info.clone(),
                session: c.session,
                tracking_id: c.tracking_id,
            })
    }

    /// The number of the live session, if there is one.
    pub fn session_id(&self) -> Option<u64> {
        read(&self.connections).as_ref().map(|c| c.session)
    }

    /// The error a command gets while there is no live session.
    pub fn down_error(&self) -> Error {
        self.unavailable()
    }

    /// The server says `key` changed: its cached replies no longer count.
    pub fn invalidate(&self, key: &[u8]) {
        if write_sharded(&self.routing).table.invalidate(key) {
            bump(&self.counters.here().invalidations);
        }
    }

    /// The server says every key may have changed.
    pub fn invalidate_all(&self) {
        let table = &mut write_sharded(&self.routing).table;
        self.counters
            .here()
            .invalidations
            .fetch_add(table.len() as u64, Ordering::Relaxed);
        table.invalidate_all();
    }

    /// Applies one event of the module to the table; the replicas follow a replicas event.
    pub fn apply(&self, message: &hotkey_protocol::Message) -> Applied {
        let applied = write_sharded(&self.routing).table.apply(message);
        if applied == Applied::InOrder
            && matches!(message.event, hotkey_protocol::Event::Replicas(_))
        {
            let replicas = read_sharded(&self.routing).table.replicas().to_vec();
            self.replicas.set(&replicas, None);
        }
        applied
    }

    /// Forgets the hot set and the connections: every command goes to the master, and fails
    /// at once with `reason` until the link is back. A cluster's topology hears of it.
    pub fn disconnect(&self, reason: Unavailable) {
        self.set_down_reason(reason);
        *write(&self.connections) = None;
        self.forget();
        if let Some(on_down) = &self.on_down {
            on_down.notify_one();
        }
    }

    /// Forgets the hot set but keeps the connections: everything goes to the master.
    pub fn forget(&self) {
        write_sharded(&self.routing).table.unsync();
        self.clear_cache();
        self.replicas.set(&[], None);
    }

    /// Drops every cached reply (a resync, or the shard's slots moved).
    pub fn clear_cache(&self) {
        if let Some(cache) = &self.cache {
            cache.clear();
        }
    }

    /// Installs a snapshot of the hot set: the table, a clear cache, the replicas.
    pub fn load(&self, routes: &Routes, base: Option<&ConnectionInfo>) {
        write_sharded(&self.routing).table.load(routes);
        self.clear_cache();
        self.replicas.set(&routes.replicas, base);
    }

    /// The hot keys of the router's database, as last heard from the module.
    pub fn hot_keys(&self) -> Vec<(Vec<u8>, hotkey_protocol::Advice)> {
        read_sharded(&self.routing)
            .table
            .hot_keys()
            .map(|(key, e)| (key.to_vec(), e.advice))
            .collect()
    }

    pub fn is_synced(&self) -> bool {
        read_sharded(&self.routing).table.is_synced()
    }

    /// The decision for `args` (the command name first).
    pub fn plan<'a>(&self, args: &[&'a [u8]]) -> Plan<'a> {
        let tables = read_sharded(&self.routing);
        routing::plan(&tables.commands, &tables.table, args)
    }

    /// Where `args` would go now, without sending it.
    pub fn route(&self, args: &[&[u8]]) -> Target {
        match self.plan(args) {
            Plan::Master | Plan::Write(_) | Plan::Blocking(_) => Target::Master,
            Plan::HotRead(read) => self.target(&read),
        }
    }

    /// How `args` may be sent with the commands next to it in a pipeline, now.
    pub fn lane(&self, args: &[&[u8]]) -> Lane {
        match self.plan(args) {
            Plan::Master | Plan::Write(_) => Lane::Master,
            Plan::Blocking(_) => Lane::Alone,
            Plan::HotRead(read) => match self.target(&read) {
                Target::Master => Lane::Master,
                Target::Replica | Target::Cache => Lane::OffMaster,
            },
        }
    }

    /// Sends `cmd` (whose arguments are `args`) where the hot set says.
    pub async fn send(&self, cmd: &Cmd, args: &[&[u8]]) -> Result<Reply, Error> {
        match self.plan(args) {
            Plan::Master => self.on_master(cmd).await.map(Reply::Owned),
            Plan::Blocking(keys) => {
                let reply = self.blocking(cmd).await;
                self.wrote(&keys);
                reply.map(Reply::Owned)
            }
            Plan::Write(keys) => {
                let reply = self.on_master(cmd).await;
                // Even when the reply is lost, the write may have happened.
                self.wrote(&keys);
                reply.map(Reply::Owned)
            }
            Plan::HotRead(read) => self.hot_read(cmd, &read).await,
        }
    }

    /// Sends `pipeline` to the master as one unit; the keys it writes are invalidated. Each
    /// of its commands counts as one sent to the master, its hot reads as hot reads the master
    /// served.
    pub async fn send_pipeline(&self, pipeline: &Pipeline) -> Result<Value, Error> {
        let Connections {
            data: mut conn,
            session,
            ..
        } = self.connections()?;
        self.counters
            .here()
            .master
            .fetch_add(pipeline.len() as u64, Ordering::Relaxed);
        let reply = pipeline.query_async::<Value>(&mut conn).await;
        let counters = self.counters.here();
        for cmd in pipeline.cmd_iter() {
            let args = arguments(cmd);
            match self.plan(&args) {
                Plan::Write(keys) | Plan::Blocking(keys) => self.wrote(&keys),
                Plan::HotRead(_) => bump(&counters.hot_reads_to_master),
                Plan::Master => {}
            }
        }
        reply.map_err(|e| self.master_error(e, session))
    }

    /// `ASKING` then `cmd` on the master, as one unit: the answer to an `ASK` redirection
    /// while a slot migrates here.
    pub async fn send_asking(&self, cmd: &Cmd) -> Result<Value, Error> {
        let Connections {
            data: mut conn,
            session,
            ..
        } = self.connections()?;
        bump(&self.counters.here().master);
        let mut pipeline = redis::pipe();
        pipeline.cmd("ASKING").ignore().add_command(cmd.clone());
        let (value,): (Value,) = pipeline
            .query_async(&mut conn)
            .await
            .map_err(|e| self.master_error(e, session))?;
        Ok(value)
    }

    /// Where a read of hot keys goes: the master inside the read-your-writes window, else the
    /// cache when advised and enabled, else a replica when advised and one is up.
    fn target(&self, read: &HotRead<'_>) -> Target {
        self.choose(read, |k| self.recent_writes.contains_key(k))
    }

    /// Like `target`, with the read-your-writes window given by the caller (`wrote_lately`):
    /// a front end keeps one per client.
    pub fn choose(&self, read: &HotRead<'_>, wrote_lately: impl Fn(&[u8]) -> bool) -> Target {
        if read.keys.iter().any(|k| wrote_lately(k)) {
            return Target::Master;
        }
        if self.cache.is_some() && read.cache.is_some() {
            return Target::Cache;
        }
        if read.replicas && self.replicas.up() > 0 {
            return Target::Replica;
        }
        Target::Master
    }

    async fn hot_read(&self, cmd: &Cmd, read: &HotRead<'_>) -> Result<Reply, Error> {
        match self.target(read) {
            Target::Cache => return self.read_cached(cmd, read).await,
            Target::Replica => {
                if let Some(reply) = self.on_replica(cmd, read).await {
                    return reply.map(Reply::Owned);
                }
            }
            Target::Master => {}
        }
        bump(&self.counters.here().hot_reads_to_master);
        self.on_master(cmd).await.map(Reply::Owned)
    }

    async fn read_cached(&self, cmd: &Cmd, read: &HotRead<'_>) -> Result<Reply, Error> {
        let (Some(cache), Some((ttl, epoch))) = (&self.cache, read.cache) else {
            return self.on_master(cmd).await.map(Reply::Owned);
        };
        let packed = cmd.get_packed_command();
        if let Some(hit) = cache.get(&packed, epoch).await {
            bump(&self.counters.here().cache_hits);
            self.served_elsewhere(&read.keys);
            // A hit never waits on I/O: without this, tasks reading hot keys in a loop would
            // keep their worker thread and starve the link task (events, invalidations).
            tokio::task::coop::consume_budget().await;
            return Ok(Reply::Cached(hit));
        }
        // Concurrent misses share one fill; only the caller whose fill ran read the master.
        let filled = AtomicBool::new(false);
        let fill = async {
            filled.store(true, Ordering::Relaxed);
            let Connections {
                fill: mut conn,
                session,
                ..
            } = self.connections()?;
            let value = cmd
                .query_async::<Value>(&mut conn)
                .await
                .map_err(|e| self.master_error(e, session))?;
            Ok::<_, Error>(Arc::new(Cached::new(value, epoch, ttl)))
        };
        let result = cache.get_or_fill(packed.into_boxed_slice(), fill).await;
        if filled.load(Ordering::Relaxed) {
            bump(&self.counters.here().cache_misses);
            bump(&self.counters.here().master);
            bump(&self.counters.here().hot_reads_to_master);
        } else if result.is_ok() {
            bump(&self.counters.here().cache_hits);
            self.served_elsewhere(&read.keys);
        }
        match result {
            Ok(cached) => Ok(Reply::Cached(cached)),
            Err(e) => Err((*e).clone()),
        }
    }

    /// Tries the replicas in rotation; None when none could answer (the read then goes to the
    /// master). A replica that fails or times out leaves the rotation until a probe succeeds;
    /// an error reply (`WRONGTYPE`…) is the answer.
    async fn on_replica(&self, cmd: &Cmd, read: &HotRead<'_>) -> Option<Result<Value, Error>> {
        while let Some((node, mut conn)) = self.replicas.pick() {
            match cmd.query_async::<Value>(&mut conn).await {
                Ok(value) => {
                    bump(&self.counters.here().replica);
                    self.served_elsewhere(&read.keys);
                    return Some(Ok(value));
                }
                Err(e) if e.code().is_some() && !Error::is_unavailable_reply(&e) => {
                    bump(&self.counters.here().replica);
                    return Some(Err(Error::Redis(e)));
                }
                Err(e) => {
                    tracing::warn!(
                        "hotkey router: replica {} failed ({e}); out of rotation",
                        node.address()
                    );
                    bump(&self.counters.here().replica_errors);
                    self.replicas.fail(&node);
                }
            }
        }
        None
    }

    async fn on_master(&self, cmd: &Cmd) -> Result<Value, Error> {
        let Connections {
            data: mut conn,
            session,
            ..
        } = self.connections()?;
        bump(&self.counters.here().master);
        cmd.query_async::<Value>(&mut conn)
            .await
            .map_err(|e| self.master_error(e, session))
    }

    /// A command that may block (`BLPOP`, `WAIT`, `XREAD … BLOCK`) on a connection of its
    /// own: on the shared one, every other command would wait behind it.
    async fn blocking(&self, cmd: &Cmd) -> Result<Value, Error> {
        let mut conn = self.dedicated(None).await?;
        bump(&self.counters.here().master);
        Ok(cmd.query_async::<Value>(&mut conn).await?)
    }

    /// Wraps a master error; a broken connection wakes the link to reconnect.
    fn master_error(&self, e: RedisError, session: u64) -> Error {
        if Error::breaks_connection(&e) {
            self.report_broken(session);
        }
        Error::Redis(e)
    }
}

/// How a command of a pipeline may be sent with its neighbours (see `Cluster::send_slot`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lane {
    /// On the master's shared connection: a cold read, a write, a hot read the master serves.
    Master,
    /// A hot read a replica or the cache serves: it changes nothing, so the reads next to it
    /// may go at the same time.
    OffMaster,
    /// On its own: a command that may block.
    Alone,
}

/// A reply: the caller's own, or shared with the cache (converted without a copy).
pub(crate) enum Reply {
    Owned(Value),
    Cached(Arc<Cached>),
}

/// The arguments of `cmd`, the command name first.
pub(crate) fn arguments(cmd: &Cmd) -> Vec<&[u8]> {
    cmd.args_iter()
        .map(|a| match a {
            redis::Arg::Simple(bytes) => bytes,
            // A cursor (`SCAN`) is never a key.
            _ => b"0".as_slice(),
        })
        .collect()
}
