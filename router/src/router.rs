//! The [`Router`]: sends each command where the hot set says, and keeps the books (cache,
//! read-your-writes, reports, metrics).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use redis::aio::MultiplexedConnection;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{Arg, Cmd, FromRedisValue, IntoConnectionInfo, Pipeline, RedisError, Value};
use tokio::task::JoinHandle;

use crate::cache::Cached;
use crate::error::Error;
use crate::link::{self, MasterConnection, MasterSource, Shared};
use crate::metrics::{Metrics, bump};
use crate::options::Options;
use crate::routing::{self, HotRead, Plan, Target};

/// A router to one master (and its replicas). Cheap to clone; clones share connections, cache
/// and metrics. The background link stops when the last clone is dropped.
#[derive(Clone)]
pub struct Router {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    link: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.link.abort();
    }
}

/// A hot key as the router sees it (see [`Router::hot_keys`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct HotKeyView {
    pub key: Vec<u8>,
    pub advice: hotkey_protocol::Advice,
}

impl Router {
    /// Connects to the master at `master` (a `redis://` URL or connection info; its database,
    /// user and protocol apply to every connection the router opens), reads the hot set and
    /// subscribes to its changes. Fails when the master cannot be reached or does not run the
    /// hotkey module.
    pub async fn connect(
        master: impl IntoConnectionInfo,
        options: Options,
    ) -> Result<Router, Error> {
        let info = master.into_connection_info()?;
        Router::start(MasterSource::Direct(info), options).await
    }

    /// Like [`Router::connect`], but asks the Sentinels at `sentinels` for the master of
    /// `service_name`, and asks them again whenever the link to the master is lost, so the
    /// router follows a failover. `node` carries the settings for the data nodes (database,
    /// user, password, protocol).
    pub async fn connect_sentinel<T: IntoConnectionInfo>(
        sentinels: Vec<T>,
        service_name: &str,
        node: SentinelNodeConnectionInfo,
        options: Options,
    ) -> Result<Router, Error> {
        // `build` takes a String, or `impl AsRef<str>` when another crate of the build turns
        // on the redis crate's TLS (the hotkey tool does): a String suits both.
        #[allow(clippy::unnecessary_to_owned)]
        let client = SentinelClient::build(
            sentinels,
            service_name.to_string(),
            Some(node),
            SentinelServerType::Master,
        )?;
        Router::start(
            MasterSource::Sentinel(tokio::sync::Mutex::new(client)),
            options,
        )
        .await
    }

    async fn start(source: MasterSource, options: Options) -> Result<Router, Error> {
        if options.report_interval.is_zero()
            || options.probe_interval.is_zero()
            || options.heartbeat_timeout.is_zero()
        {
            return Err(Error::Config(
                "report_interval, probe_interval and heartbeat_timeout must be above zero".into(),
            ));
        }
        let db = match &source {
            MasterSource::Direct(info) => info.redis_settings().db(),
            MasterSource::Sentinel(client) => client
                .lock()
                .await
                .async_get_client()
                .await?
                .get_connection_info()
                .redis_settings()
                .db(),
        };
        let db = u32::try_from(db).map_err(|_| Error::Config(format!("bad database {db}")))?;
        let shared = Arc::new(Shared::new(options, source, db));
        let session = link::connect(&shared, true).await?;
        let link = tokio::spawn(link::run(shared.clone(), session));
        Ok(Router {
            inner: Arc::new(Inner { shared, link }),
        })
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// Sends `cmd` where the hot set says and converts the reply.
    ///
    /// ```no_run
    /// # async fn demo(router: hotkey_router::Router) -> Result<(), hotkey_router::Error> {
    /// let top: Vec<(String, f64)> = router
    ///     .query(redis::cmd("ZREVRANGE").arg("leaderboard:global").arg(0).arg(9).arg("WITHSCORES"))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, Error> {
        let converted = match self.send(cmd).await? {
            Reply::Owned(value) => T::from_redis_value(value),
            // Converted from the cache's copy: no clone of the whole reply.
            Reply::Cached(cached) => T::from_redis_value_ref(&cached.value),
        };
        converted.map_err(|e| Error::Conversion(e.to_string()))
    }

    /// Sends `cmd` where the hot set says; the reply as a `Value`.
    pub async fn query_value(&self, cmd: &Cmd) -> Result<Value, Error> {
        Ok(match self.send(cmd).await? {
            Reply::Owned(value) => value,
            Reply::Cached(cached) => cached.value.clone(),
        })
    }

    async fn send(&self, cmd: &Cmd) -> Result<Reply, Error> {
        let args = arguments(cmd);
        let plan = self.plan(&args);
        match plan {
            Plan::Master => self.on_master(cmd).await.map(Reply::Owned),
            Plan::Blocking(keys) => {
                let reply = self.blocking(cmd).await;
                self.shared().wrote(&keys);
                reply.map(Reply::Owned)
            }
            Plan::Write(keys) => {
                let reply = self.on_master(cmd).await;
                // Even when the reply is lost, the write may have happened.
                self.shared().wrote(&keys);
                reply.map(Reply::Owned)
            }
            Plan::HotRead(read) => self.hot_read(cmd, &read).await,
        }
    }

    /// Sends a pipeline (or a transaction, `redis::pipe().atomic()`) to the master, as one
    /// unit; the keys its commands write are invalidated like single writes.
    pub async fn query_pipeline<T: FromRedisValue>(&self, pipeline: &Pipeline) -> Result<T, Error> {
        let MasterConnection { mut conn, session } = self.shared().data()?;
        bump(&self.shared().counters.master);
        let reply = pipeline.query_async(&mut conn).await;
        for cmd in pipeline.cmd_iter() {
            let args = arguments(cmd);
            if let Plan::Write(keys) | Plan::Blocking(keys) = self.plan(&args) {
                self.shared().wrote(&keys);
            }
        }
        reply.map_err(|e| self.master_error(e, session))
    }

    /// Where `cmd` would go now, without sending it (no I/O).
    pub fn route(&self, cmd: &Cmd) -> Target {
        let args = arguments(cmd);
        match self.plan(&args) {
            Plan::Master | Plan::Write(_) | Plan::Blocking(_) => Target::Master,
            Plan::HotRead(read) => self.target(&read),
        }
    }

    /// The counters since the router connected.
    pub fn metrics(&self) -> Metrics {
        self.shared().counters.snapshot()
    }

    /// The hot keys of the router's database, as last heard from the module.
    pub fn hot_keys(&self) -> Vec<HotKeyView> {
        self.shared()
            .table
            .read()
            .map(|t| {
                t.hot_keys()
                    .map(|(key, e)| HotKeyView {
                        key: key.to_vec(),
                        advice: e.advice,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// True while the router follows the module's hot set (false while reconnecting).
    pub fn is_synced(&self) -> bool {
        self.shared().table.read().is_ok_and(|t| t.is_synced())
    }

    /// The replicas the router knows (`host:port`) and whether each is in rotation.
    pub fn replicas(&self) -> Vec<(String, bool)> {
        self.shared().replicas.all()
    }

    /// A new connection of its own to the current master, for what the router does not route:
    /// `WATCH`…`MULTI`…`EXEC` (keep it to one task), `SUBSCRIBE`, long blocking loops. Writes
    /// sent on it skip the read-your-writes window; the cache still learns of them from the
    /// server (tracking).
    pub async fn master_connection(&self) -> Result<MultiplexedConnection, Error> {
        self.shared()
            .dedicated(self.shared().options.master_timeout)
            .await
    }

    fn plan<'a>(&self, args: &[&'a [u8]]) -> Plan<'a> {
        let shared = self.shared();
        let (Ok(commands), Ok(table)) = (shared.commands.read(), shared.table.read()) else {
            return Plan::Master;
        };
        routing::plan(&commands, &table, args)
    }

    /// Where a read of hot keys goes: the master inside the read-your-writes window, else the
    /// cache when advised and enabled, else a replica when advised and one is up.
    fn target(&self, read: &HotRead<'_>) -> Target {
        let shared = self.shared();
        if read
            .keys
            .iter()
            .any(|k| shared.recent_writes.contains_key(*k))
        {
            return Target::Master;
        }
        if shared.cache.is_some() && read.cache.is_some() {
            return Target::Cache;
        }
        if read.replicas && shared.replicas.up() > 0 {
            return Target::Replica;
        }
        Target::Master
    }

    async fn hot_read(&self, cmd: &Cmd, read: &HotRead<'_>) -> Result<Reply, Error> {
        let shared = self.shared();
        match self.target(read) {
            Target::Cache => return self.read_cached(cmd, read).await,
            Target::Replica => {
                if let Some(reply) = self.on_replica(cmd, read).await {
                    return reply.map(Reply::Owned);
                }
            }
            Target::Master => {}
        }
        bump(&shared.counters.hot_reads_to_master);
        self.on_master(cmd).await.map(Reply::Owned)
    }

    async fn read_cached(&self, cmd: &Cmd, read: &HotRead<'_>) -> Result<Reply, Error> {
        let shared = self.shared();
        let (Some(cache), Some((ttl, epoch))) = (&shared.cache, read.cache) else {
            return self.on_master(cmd).await.map(Reply::Owned);
        };
        let packed = cmd.get_packed_command();
        if let Some(hit) = cache.get(&packed, epoch).await {
            bump(&shared.counters.cache_hits);
            shared.served_elsewhere(&read.keys);
            // A hit never waits on I/O: without this, tasks reading hot keys in a loop would
            // keep their worker thread and starve the link task (events, invalidations).
            tokio::task::coop::consume_budget().await;
            return Ok(Reply::Cached(hit));
        }
        // Concurrent misses share one fill; only the caller whose fill ran read the master.
        let filled = AtomicBool::new(false);
        let fill = async {
            filled.store(true, Ordering::Relaxed);
            let MasterConnection { mut conn, session } = shared.fill()?;
            let value = cmd
                .query_async::<Value>(&mut conn)
                .await
                .map_err(|e| self.master_error(e, session))?;
            Ok::<_, Error>(Arc::new(Cached { value, epoch, ttl }))
        };
        let result = cache.get_or_fill(packed.into_boxed_slice(), fill).await;
        if filled.load(Ordering::Relaxed) {
            bump(&shared.counters.cache_misses);
            bump(&shared.counters.master);
            bump(&shared.counters.hot_reads_to_master);
        } else if result.is_ok() {
            bump(&shared.counters.cache_hits);
            shared.served_elsewhere(&read.keys);
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
        let shared = self.shared();
        while let Some((node, mut conn)) = shared.replicas.pick() {
            match cmd.query_async::<Value>(&mut conn).await {
                Ok(value) => {
                    bump(&shared.counters.replica);
                    shared.served_elsewhere(&read.keys);
                    return Some(Ok(value));
                }
                Err(e) if e.code().is_some() && !Error::is_unavailable_reply(&e) => {
                    bump(&shared.counters.replica);
                    return Some(Err(Error::Redis(e)));
                }
                Err(e) => {
                    tracing::warn!(
                        "hotkey router: replica {} failed ({e}); out of rotation",
                        node.address()
                    );
                    bump(&shared.counters.replica_errors);
                    shared.replicas.fail(&node);
                }
            }
        }
        None
    }

    async fn on_master(&self, cmd: &Cmd) -> Result<Value, Error> {
        let shared = self.shared();
        let MasterConnection { mut conn, session } = shared.data()?;
        bump(&shared.counters.master);
        cmd.query_async::<Value>(&mut conn)
            .await
            .map_err(|e| self.master_error(e, session))
    }

    /// A command that may block (`BLPOP`, `WAIT`, `XREAD … BLOCK`) on a connection of its
    /// own: on the shared one, every other command would wait behind it.
    async fn blocking(&self, cmd: &Cmd) -> Result<Value, Error> {
        let shared = self.shared();
        let mut conn = shared.dedicated(None).await?;
        bump(&shared.counters.master);
        Ok(cmd.query_async::<Value>(&mut conn).await?)
    }

    /// Wraps a master error; a broken connection wakes the link to reconnect.
    fn master_error(&self, e: RedisError, session: u64) -> Error {
        if Error::breaks_connection(&e) {
            self.shared().report_broken(session);
        }
        Error::Redis(e)
    }
}

/// A reply: the caller's own, or shared with the cache (converted without a copy).
enum Reply {
    Owned(Value),
    Cached(Arc<Cached>),
}

/// The arguments of `cmd`, the command name first.
fn arguments(cmd: &Cmd) -> Vec<&[u8]> {
    cmd.args_iter()
        .map(|a| match a {
            Arg::Simple(bytes) => bytes,
            // A cursor (`SCAN`) is never a key.
            _ => b"0".as_slice(),
        })
        .collect()
}
