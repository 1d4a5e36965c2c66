//! The link to the master: the connections, the subscription to the module's channel, the hot
//! set kept in step with its events, cache invalidations, and the reports of reads served
//! elsewhere. One background task runs it; when the link breaks the router forgets the hot set
//! (every command goes to the master, which fails fast while there is none) and reconnects,
//! asking Sentinel for the master's address when it has one.
//!
//! Three connections to the master:
//! - *control* (RESP3): subscribed to the module's channel; `HOTKEY.ROUTES`; receives the
//!   server's invalidation messages for the fill connection, as pushes.
//! - *fill* (the caller's protocol): cache fills only, with `CLIENT TRACKING ON REDIRECT
//!   <control>`, so the server says when a key it served there changes.
//! - *data* (the caller's protocol): every other command sent to the master.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use hotkey_protocol::command_table::{CommandTable, Reply};
use hotkey_protocol::{Message, Routes};
use redis::aio::MultiplexedConnection;
use redis::sentinel::SentinelClient;
use redis::{
    AsyncConnectionConfig, Client, ConnectionInfo, ProtocolVersion, PushInfo, PushKind, Value,
};
use rustc_hash::FxHashMap;
use tokio::sync::{Notify, mpsc};
use tokio::time::{Instant, interval, sleep_until};

use crate::cache::Cache;
use crate::error::Error;
use crate::metrics::{Counters, bump};
use crate::options::Options;
use crate::replicas::ReplicaPool;
use crate::table::{Applied, RouteTable};

/// Where the master is.
pub(crate) enum MasterSource {
    Direct(ConnectionInfo),
    Sentinel(tokio::sync::Mutex<SentinelClient>),
}

impl MasterSource {
    async fn client(&self) -> Result<Client, Error> {
        match self {
            MasterSource::Direct(info) => Ok(Client::open(info.clone())?),
            MasterSource::Sentinel(sentinel) => {
                Ok(sentinel.lock().await.async_get_client().await?)
            }
        }
    }
}

/// Everything the router's handles and its link task share.
pub(crate) struct Shared {
    pub options: Options,
    pub source: MasterSource,
    pub commands: RwLock<Arc<CommandTable>>,
    pub table: RwLock<RouteTable>,
    pub data: RwLock<Option<MasterConnection>>,
    pub fill: RwLock<Option<MasterConnection>>,
    /// The master's connection settings in the live session (for dedicated connections).
    pub master_info: RwLock<Option<ConnectionInfo>>,
    pub replicas: ReplicaPool,
    pub cache: Option<Cache>,
    /// Keys this router wrote lately (read-your-writes), dropped after the window.
    pub recent_writes: moka::sync::Cache<Box<[u8]>, ()>,
    /// Reads per hot key served off the master since the last report.
    pub served: Mutex<FxHashMap<Box<[u8]>, u64>>,
    pub counters: Counters,
    /// The newest session a command found broken (sessions count from 1; 0: none).
    pub broken: AtomicU64,
    /// Wakes the link when `broken` changes.
    pub wake: Notify,
    /// The last session number given.
    pub sessions: AtomicU64,
    /// Why there is no master connection, for the callers' errors.
    pub down_reason: Mutex<String>,
}

impl Shared {
    pub fn new(options: Options, source: MasterSource, db: u32) -> Shared {
        Shared {
            cache: options
                .cache
                .then(|| Cache::new(options.cache_capacity_bytes)),
            recent_writes: moka::sync::Cache::builder()
                .max_capacity(options.read_your_writes_keys)
                .time_to_live(options.read_your_writes)
                .build(),
            replicas: ReplicaPool::new(options.replica_timeout, options.connect_timeout),
            options,
            source,
            commands: RwLock::new(Arc::new(CommandTable::default())),
            table: RwLock::new(RouteTable::new(db)),
            data: RwLock::new(None),
            fill: RwLock::new(None),
            master_info: RwLock::new(None),
            served: Mutex::new(FxHashMap::default()),
            counters: Counters::default(),
            broken: AtomicU64::new(0),
            wake: Notify::new(),
            sessions: AtomicU64::new(0),
            down_reason: Mutex::new("not connected yet".into()),
        }
    }

    /// The data connection, or why there is none.
    pub fn data(&self) -> Result<MasterConnection, Error> {
        self.data
            .read()
            .ok()
            .and_then(|c| c.clone())
            .ok_or_else(|| self.unavailable())
    }

    /// The fill connection, or why there is none.
    pub fn fill(&self) -> Result<MasterConnection, Error> {
        self.fill
            .read()
            .ok()
            .and_then(|c| c.clone())
            .ok_or_else(|| self.unavailable())
    }

    /// A new connection of its own to the master of the live session.
    pub async fn dedicated(
        &self,
        timeout: Option<Duration>,
    ) -> Result<MultiplexedConnection, Error> {
        let info = self
            .master_info
            .read()
            .ok()
            .and_then(|i| i.clone())
            .ok_or_else(|| self.unavailable())?;
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

    fn unavailable(&self) -> Error {
        let reason = self
            .down_reason
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default();
        Error::MasterUnavailable(reason)
    }

    /// Counts reads of `keys` served off the master, for the next report.
    pub fn served_elsewhere(&self, keys: &[&[u8]]) {
        if let Ok(mut served) = self.served.lock() {
            for key in keys {
                match served.get_mut(*key) {
                    Some(n) => *n += 1,
                    None => {
                        served.insert((*key).into(), 1);
                    }
                }
            }
        }
    }

    /// This router wrote `keys`: drop their cached replies, and read them from the master for
    /// the read-your-writes window.
    pub fn wrote(&self, keys: &[&[u8]]) {
        if keys.is_empty() {
            return;
        }
        if let Ok(mut table) = self.table.write() {
            for key in keys {
                if table.invalidate(key) {
                    bump(&self.counters.invalidations);
                }
            }
        }
        for key in keys {
            self.recent_writes.insert((*key).into(), ());
        }
    }

    /// Forgets the hot set and the connections: every command goes to the master, and fails
    /// at once with `reason` until the link is back.
    fn disconnect(&self, reason: &str) {
        if let Ok(mut r) = self.down_reason.lock() {
            *r = reason.to_string();
        }
        if let Ok(mut data) = self.data.write() {
            *data = None;
        }
        if let Ok(mut fill) = self.fill.write() {
            *fill = None;
        }
        if let Ok(mut info) = self.master_info.write() {
            *info = None;
        }
        self.forget();
    }

    /// Forgets the hot set but keeps the connections: everything goes to the master.
    fn forget(&self) {
        if let Ok(mut table) = self.table.write() {
            table.unsync();
        }
        if let Some(cache) = &self.cache {
            cache.clear();
        }
        self.replicas.set(&[], None);
    }

    /// Installs a snapshot of the hot set: the table, a clear cache, the replicas.
    fn load(&self, routes: &Routes, base: Option<&ConnectionInfo>) {
        if let Ok(mut table) = self.table.write() {
            table.load(routes);
        }
        if let Some(cache) = &self.cache {
            cache.clear();
        }
        self.replicas.set(&routes.replicas, base);
    }
}

/// A connection to the master, with the session it belongs to.
#[derive(Clone)]
pub(crate) struct MasterConnection {
    pub conn: MultiplexedConnection,
    pub session: u64,
}

/// A live link: the control connection and what it receives.
pub(crate) struct Session {
    /// Numbers the links, so a failure reported about an old one is not taken for this one's.
    id: u64,
    control: MultiplexedConnection,
    pushes: mpsc::UnboundedReceiver<PushInfo>,
    /// The connection settings of the master (for replicas).
    base: ConnectionInfo,
    /// The channel subscribed to, once the module named it.
    channel: Option<String>,
}

/// Connects to the master (asking Sentinel where it is, if configured), reads the hot set and
/// starts following it. On the first connect a master without the module is an error; on a
/// reconnect the router routes everything to the master until the module answers again.
pub(crate) async fn connect(shared: &Arc<Shared>, first: bool) -> Result<Session, Error> {
    let client = shared.source.client().await?;
    let base = client.get_connection_info().clone();
    let options = &shared.options;

    let control_info = base.clone().set_redis_settings(
        base.redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3),
    );
    let (tx, pushes) = mpsc::unbounded_channel();
    // Invalidations are applied where they arrive, on the connection's own task: a cached
    // reply must stop counting as soon as the server says its key changed, not when the link
    // task next gets a thread (it may wait behind busy readers). The rest goes to the link.
    let weak = Arc::downgrade(shared);
    let sender = move |push: PushInfo| -> Result<(), mpsc::error::SendError<PushInfo>> {
        if matches!(push.kind, PushKind::Invalidate)
            && let Some(shared) = weak.upgrade()
        {
            on_invalidate(&shared, &push.data);
            return Ok(());
        }
        tx.send(push)
    };
    let control_config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(options.connect_timeout))
        .set_response_timeout(Some(options.connect_timeout))
        .set_push_sender(sender);
    let mut control = Client::open(control_info)?
        .get_multiplexed_async_connection_with_config(&control_config)
        .await?;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(options.connect_timeout))
        .set_response_timeout(options.master_timeout);
    let data = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    let mut fill = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;

    let control_id: i64 = redis::cmd("CLIENT")
        .arg("ID")
        .query_async(&mut control)
        .await?;
    let _: () = redis::cmd("CLIENT")
        .arg("TRACKING")
        .arg("ON")
        .arg("REDIRECT")
        .arg(control_id)
        .query_async(&mut fill)
        .await?;
    let commands: Value = redis::cmd("COMMAND").query_async(&mut control).await?;
    let commands = CommandTable::from_command_reply(&Reply::from_redis(&commands));
    if commands.is_empty() {
        return Err(Error::Config(
            "the master's COMMAND reply has no commands the router can read".into(),
        ));
    }
    let id = shared.sessions.fetch_add(1, Ordering::AcqRel) + 1;
    let mut session = Session {
        id,
        control,
        pushes,
        base,
        channel: None,
    };
    if let Ok(mut c) = shared.commands.write() {
        *c = Arc::new(commands);
    }
    // The connections first, so a command routed by the new hot set finds them.
    if let Ok(mut slot) = shared.data.write() {
        *slot = Some(MasterConnection {
            conn: data,
            session: id,
        });
    }
    if let Ok(mut slot) = shared.fill.write() {
        *slot = Some(MasterConnection {
            conn: fill,
            session: id,
        });
    }
    if let Ok(mut slot) = shared.master_info.write() {
        *slot = Some(session.base.clone());
    }
    match sync(shared, &mut session).await {
        Ok(()) => {}
        Err(Error::NoModule(e)) if !first => {
            tracing::warn!("hotkey router: {e}; routing everything to the master");
            shared.forget();
        }
        Err(e) => {
            shared.disconnect(&e.to_string());
            return Err(e);
        }
    }
    bump(&shared.counters.connects);
    shared.replicas.probe().await;
    Ok(session)
}

/// Reads the hot set: subscribes to the module's channel first, so no event falls between
/// the subscription and the snapshot (events the snapshot already holds are skipped by their
/// `seq`), then installs the snapshot and drops the cache.
async fn sync(shared: &Shared, session: &mut Session) -> Result<(), Error> {
    let mut snapshot = routes(&mut session.control).await?;
    if session.channel.as_deref() != Some(snapshot.channel.as_str()) {
        if let Some(old) = session.channel.take() {
            session.control.unsubscribe(&old).await?;
        }
        session.control.subscribe(&snapshot.channel).await?;
        session.channel = Some(snapshot.channel.clone());
        snapshot = routes(&mut session.control).await?;
    }
    shared.load(&snapshot, Some(&session.base));
    Ok(())
}

/// `HOTKEY.ROUTES`, parsed. An error reply means the module does not answer.
async fn routes(control: &mut MultiplexedConnection) -> Result<Routes, Error> {
    let reply: Value = match redis::cmd("HOTKEY.ROUTES").query_async(control).await {
        Ok(v) => v,
        Err(e) if e.code().is_some() => return Err(Error::NoModule(e)),
        Err(e) => return Err(e.into()),
    };
    Ok(Routes::from_redis(&reply)?)
}

/// The link task: follows the hot set while the link lasts, then reconnects, forever.
pub(crate) async fn run(shared: Arc<Shared>, mut session: Session) {
    loop {
        let reason = follow(&shared, &mut session).await;
        tracing::warn!("hotkey router: link to the master lost ({reason}); reconnecting");
        shared.disconnect(&reason);
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(50))
            .with_max_delay(shared.options.reconnect_max_delay)
            .without_max_times();
        session = match (|| connect(&shared, false))
            .retry(backoff)
            .notify(|e, _| {
                if let Ok(mut r) = shared.down_reason.lock() {
                    *r = format!("{reason}; reconnecting: {e}");
                }
            })
            .await
        {
            Ok(s) => s,
            // Unreachable with no attempt limit; keep the router failing fast if it happens.
            Err(e) => {
                shared.disconnect(&e.to_string());
                return;
            }
        };
        bump(&shared.counters.resyncs);
    }
}

/// Applies events and invalidations until the link breaks; returns why.
async fn follow(shared: &Arc<Shared>, session: &mut Session) -> String {
    let options = &shared.options;
    let mut heard = Instant::now();
    let mut report = interval(options.report_interval);
    let mut probe = interval(options.probe_interval);
    loop {
        tokio::select! {
            push = session.pushes.recv() => {
                let Some(push) = push else {
                    return "the control connection closed".into();
                };
                match push.kind {
                    PushKind::Disconnection => return "the control connection closed".into(),
                    PushKind::Message => {
                        heard = Instant::now();
                        if let Err(reason) = on_message(shared, session, &push.data).await {
                            return reason;
                        }
                    }
                    _ => {}
                }
            }
            _ = sleep_until(heard + options.heartbeat_timeout) => {
                tracing::warn!(
                    "hotkey router: no message from the module for {:?}; re-reading the hot set",
                    options.heartbeat_timeout
                );
                if let Err(reason) = resync_or_forget(shared, session).await {
                    return format!("missed heartbeats, and {reason}");
                }
                heard = Instant::now();
            }
            _ = report.tick() => send_report(shared).await,
            _ = probe.tick() => probe_later(shared),
            _ = shared.wake.notified() => {
                if shared.broken.load(Ordering::Acquire) >= session.id {
                    return "a command found the master connection broken".into();
                }
            }
        }
    }
}

/// One message of the channel: applied in order, or a resync when one was missed.
async fn on_message(
    shared: &Arc<Shared>,
    session: &mut Session,
    data: &[Value],
) -> Result<(), String> {
    let Some(Value::BulkString(payload)) = data.get(1) else {
        return Ok(());
    };
    let message = match Message::from_json(payload) {
        Ok(m) => m,
        Err(e) => {
            // An event this router cannot read may have changed the hot set.
            tracing::warn!("hotkey router: unreadable event ({e}); re-reading the hot set");
            return resync_or_forget(shared, session).await;
        }
    };
    let applied = match shared.table.write() {
        Ok(mut table) => table.apply(&message),
        Err(_) => return Err("the route table is poisoned".into()),
    };
    match applied {
        Applied::InOrder => {
            if matches!(message.event, hotkey_protocol::Event::Replicas(_)) {
                let replicas = shared
                    .table
                    .read()
                    .map(|t| t.replicas().to_vec())
                    .unwrap_or_default();
                shared.replicas.set(&replicas, None);
                probe_later(shared);
            }
            Ok(())
        }
        Applied::Old => Ok(()),
        Applied::Gap { expected, got } => {
            tracing::warn!(
                "hotkey router: events {expected}..{got} missed; re-reading the hot set"
            );
            resync_or_forget(shared, session).await
        }
        Applied::NewRun | Applied::NotSynced => resync_or_forget(shared, session).await,
    }
}

/// Re-reads the hot set; without the module, routes everything to the master. Err (with the
/// reason) when the link is broken.
async fn resync_or_forget(shared: &Arc<Shared>, session: &mut Session) -> Result<(), String> {
    match resync(shared, session).await {
        Ok(()) => Ok(()),
        Err(Error::NoModule(e)) => {
            tracing::warn!("hotkey router: {e}; routing everything to the master");
            shared.forget();
            Ok(())
        }
        Err(e) => Err(format!("HOTKEY.ROUTES failed: {e}")),
    }
}

/// Re-reads the hot set on the live link and drops the cache.
async fn resync(shared: &Arc<Shared>, session: &mut Session) -> Result<(), Error> {
    sync(shared, session).await?;
    bump(&shared.counters.resyncs);
    probe_later(shared);
    Ok(())
}

/// Probes the replicas out of rotation on another task: a replica that does not answer must
/// not hold up events and invalidations.
fn probe_later(shared: &Arc<Shared>) {
    let shared = shared.clone();
    tokio::spawn(async move { shared.replicas.probe().await });
}

/// The server says keys read on the fill connection changed (or, with no keys, that all did).
fn on_invalidate(shared: &Shared, data: &[Value]) {
    let Ok(mut table) = shared.table.write() else {
        return;
    };
    match data.first() {
        Some(Value::Array(keys)) => {
            for key in keys {
                if let Value::BulkString(key) = key
                    && table.invalidate(key)
                {
                    bump(&shared.counters.invalidations);
                }
            }
        }
        _ => {
            shared
                .counters
                .invalidations
                .fetch_add(table.len() as u64, Ordering::Relaxed);
            table.invalidate_all();
        }
    }
}

/// Sends `HOTKEY.REPORT` with the reads served off the master since the last one. On an I/O
/// error the counts wait for the next report; an error reply (the module refused them) drops
/// them, with a warning and `report_errors`.
async fn send_report(shared: &Shared) {
    let counts: Vec<(Box<[u8]>, u64)> = match shared.served.lock() {
        Ok(mut served) => served.drain().collect(),
        Err(_) => return,
    };
    if counts.is_empty() {
        return;
    }
    let Ok(MasterConnection {
        conn: mut data,
        session,
    }) = shared.data()
    else {
        restore(shared, counts);
        return;
    };
    let mut cmd = redis::cmd("HOTKEY.REPORT");
    for (key, n) in &counts {
        cmd.arg(&**key).arg(*n);
    }
    match cmd.query_async::<i64>(&mut data).await {
        Ok(_) => bump(&shared.counters.reports),
        Err(e) => {
            bump(&shared.counters.report_errors);
            if Error::breaks_connection(&e) {
                shared.report_broken(session);
                restore(shared, counts);
            } else {
                tracing::warn!("hotkey router: HOTKEY.REPORT refused: {e}");
            }
        }
    }
}

fn restore(shared: &Shared, counts: Vec<(Box<[u8]>, u64)>) {
    if let Ok(mut served) = shared.served.lock() {
        for (key, n) in counts {
            *served.entry(key).or_insert(0) += n;
        }
    }
}
