//! The [`Router`]: sends each command where the hot set says, to one master (and its
//! replicas) or to the shard of its slot on a cluster, and keeps the books (cache,
//! read-your-writes, reports, metrics).

use std::sync::Arc;

use redis::aio::MultiplexedConnection;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{Cmd, ConnectionInfo, FromRedisValue, IntoConnectionInfo, Pipeline, Value};
use tokio::task::JoinHandle;

use crate::cluster::{Cluster, ShardView};
use crate::error::Error;
use crate::link::{self, MasterSource};
use crate::metrics::Metrics;
use crate::options::Options;
use crate::routing::Target;
use crate::shard::{Reply, Shard, arguments};
use crate::upstream::ShardHandle;

/// A router to one master (and its replicas), or to every master of a Redis Cluster. Cheap to
/// clone; clones share connections, cache and metrics. The background tasks stop when the
/// last clone is dropped.
#[derive(Clone)]
pub struct Router {
    inner: Arc<Inner>,
}

/// What the router talks to.
enum Backend {
    /// One master: its shard.
    Single(Arc<Shard>),
    /// A cluster: a shard per master, picked by slot.
    Cluster(Arc<Cluster>),
}

struct Inner {
    backend: Backend,
    /// The link task (one master) or the topology task (a cluster).
    task: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.task.abort();
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
        Router::start(MasterSource::Direct(info), options, None).await
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
        let sentinels = sentinels
            .into_iter()
            .map(IntoConnectionInfo::into_connection_info)
            .collect::<Result<Vec<_>, _>>()?;
        // `build` takes a String, or `impl AsRef<str>` when another crate of the build turns
        // on the redis crate's TLS (the hotkey tool does): a String suits both.
        #[allow(clippy::unnecessary_to_owned)]
        let client = SentinelClient::build(
            sentinels.clone(),
            service_name.to_string(),
            Some(node),
            SentinelServerType::Master,
        )?;
        Router::start(
            MasterSource::Sentinel(tokio::sync::Mutex::new(client)),
            options,
            Some((sentinels, service_name.to_string())),
        )
        .await
    }

    /// `watch`: the Sentinels and the service name whose `+switch-master` the link follows.
    async fn start(
        source: MasterSource,
        options: Options,
        watch: Option<(Vec<ConnectionInfo>, String)>,
    ) -> Result<Router, Error> {
        validate(&options)?;
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
        let shard = Arc::new(Shard::new(options, source, db, None));
        let session = link::connect(&shard, true).await?;
        let link = link::run(shard.clone(), session);
        let task = match watch {
            None => tokio::spawn(link),
            Some((sentinels, service)) => {
                let watch = link::follow_sentinels(shard.clone(), sentinels, service);
                tokio::spawn(async move {
                    tokio::join!(link, watch);
                })
            }
        };
        Ok(Router {
            inner: Arc::new(Inner {
                backend: Backend::Single(shard),
                task,
            }),
        })
    }

    /// Connects to a Redis Cluster through `seeds` (`redis://` URLs or connection info of any
    /// of its nodes; the first one's user, password and protocol apply to every connection),
    /// reads its layout (`CLUSTER SHARDS`) and follows every master as [`Router::connect`]
    /// follows one. Each command goes to the master of its keys' slot (a hot read to that
    /// shard's replicas or the cache); a command whose keys are in different slots fails with
    /// [`Error::CrossSlot`]; `MOVED` and `ASK` are followed. Fails when no seed answers or a
    /// master does not run the hotkey module.
    pub async fn connect_cluster<T: IntoConnectionInfo>(
        seeds: Vec<T>,
        options: Options,
    ) -> Result<Router, Error> {
        validate(&options)?;
        let seeds = seeds
            .into_iter()
            .map(IntoConnectionInfo::into_connection_info)
            .collect::<Result<Vec<_>, _>>()?;
        let cluster = Arc::new(Cluster::connect(seeds, options).await?);
        let task = tokio::spawn(cluster.clone().maintain());
        Ok(Router {
            inner: Arc::new(Inner {
                backend: Backend::Cluster(cluster),
                task,
            }),
        })
    }

    /// Every shard followed now: the shard of a standalone master, or one per master of a
    /// cluster.
    fn all_shards(&self) -> Vec<Arc<Shard>> {
        match &self.inner.backend {
            Backend::Single(shard) => vec![shard.clone()],
            Backend::Cluster(cluster) => cluster.shards(),
        }
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
        match &self.inner.backend {
            Backend::Single(shard) => shard.send(cmd, &arguments(cmd)).await,
            Backend::Cluster(cluster) => cluster.send(cmd).await,
        }
    }

    /// Sends a pipeline (or a transaction, `redis::pipe().atomic()`) to the master, as one
    /// unit; the keys its commands write are invalidated like single writes. On a cluster a
    /// pipeline is split by slot, the slots in parallel: in each slot's commands, in order, each
    /// run of consecutive ones for the master goes to it as one pipeline, each run of hot reads
    /// to the replicas or the cache at once, and `MOVED`/`ASK` are followed; the replies
    /// are put back in order, error replies as one server's would be. A transaction's keys must
    /// share one slot (else [`Error::CrossSlot`]); a `MOVED` sends it whole to the slot's new
    /// master (a redirected transaction ran nothing), an `ASK` (a slot half-migrated) is
    /// returned.
    pub async fn query_pipeline<T: FromRedisValue>(&self, pipeline: &Pipeline) -> Result<T, Error> {
        let value = match &self.inner.backend {
            Backend::Single(shard) => shard.send_pipeline(pipeline).await?,
            Backend::Cluster(cluster) => cluster.send_pipeline(pipeline).await?,
        };
        T::from_redis_value(value).map_err(|e| Error::Conversion(e.to_string()))
    }

    /// Where `cmd` would go now, without sending it (no I/O). On a cluster, `Master` is the
    /// master of the command's slot (and a cross-slot command's, which is not sent).
    pub fn route(&self, cmd: &Cmd) -> Target {
        let args = arguments(cmd);
        match &self.inner.backend {
            Backend::Single(shard) => shard.route(&args),
            Backend::Cluster(cluster) => cluster
                .shard_of(&args)
                .map_or(Target::Master, |shard| shard.route(&args)),
        }
    }

    /// The shard `args` (the command name first) goes to, for a front end that sends the
    /// bytes itself (see [`ShardHandle`]): the one master, or on a cluster the master of the
    /// command's slot (keyless commands: slot 0's). Errors: the keys are in different slots,
    /// or no master serves the slot now.
    pub fn shard_for(&self, args: &[&[u8]]) -> Result<ShardHandle, Error> {
        match &self.inner.backend {
            Backend::Single(shard) => Ok(ShardHandle::new(shard.clone())),
            Backend::Cluster(cluster) => cluster.pick_now(args).map(ShardHandle::new),
        }
    }

    /// For a front end that met a redirection (`MOVED` of `slot` to `address`, or with `slot`
    /// None an `ASK` to it): the shard of the master at `address`, once the cluster's layout,
    /// read again (asking that node first), agrees; None after `within`, or on a standalone
    /// master.
    pub async fn redirected(
        &self,
        slot: Option<u16>,
        address: &str,
        within: std::time::Duration,
    ) -> Option<ShardHandle> {
        match &self.inner.backend {
            Backend::Single(_) => None,
            Backend::Cluster(cluster) => cluster
                .shard_at(slot, address, tokio::time::Instant::now() + within)
                .await
                .map(ShardHandle::new),
        }
    }

    /// Every shard followed now with the slots it serves, in the order of their lowest slot
    /// (a standalone master: one shard, no slots), for a front end that walks the shards
    /// (`SCAN` over a cluster).
    pub fn shard_slots(&self) -> Vec<(ShardHandle, Vec<hotkey_protocol::cluster::SlotRange>)> {
        match &self.inner.backend {
            Backend::Single(shard) => vec![(ShardHandle::new(shard.clone()), Vec::new())],
            Backend::Cluster(cluster) => cluster
                .shard_slots()
                .into_iter()
                .map(|(shard, slots)| (ShardHandle::new(shard), slots))
                .collect(),
        }
    }

    /// Every shard followed now, for a front end (its metrics, its masters).
    pub fn shard_handles(&self) -> Vec<ShardHandle> {
        self.all_shards()
            .into_iter()
            .map(ShardHandle::new)
            .collect()
    }

    /// The counters since the router connected (on a cluster, of every shard it followed).
    pub fn metrics(&self) -> Metrics {
        match &self.inner.backend {
            Backend::Single(shard) => shard.metrics(),
            Backend::Cluster(cluster) => cluster.metrics(),
        }
    }

    /// The shards the router follows, each with its master, slots, link state and counters:
    /// one for a standalone master (no slots), one per master of a cluster.
    pub fn shards(&self) -> Vec<ShardView> {
        match &self.inner.backend {
            Backend::Single(shard) => vec![ShardView {
                master: shard.master_address(),
                slots: Vec::new(),
                connected: shard.is_connected(),
                metrics: shard.metrics(),
            }],
            Backend::Cluster(cluster) => cluster.views(),
        }
    }

    /// The hot keys of the router's database, as last heard from the module (of every shard).
    pub fn hot_keys(&self) -> Vec<HotKeyView> {
        self.all_shards()
            .iter()
            .flat_map(|shard| shard.hot_keys())
            .map(|(key, advice)| HotKeyView { key, advice })
            .collect()
    }

    /// True while the router follows the module's hot set (of every shard; false while one
    /// reconnects).
    pub fn is_synced(&self) -> bool {
        let shards = self.all_shards();
        !shards.is_empty() && shards.iter().all(|s| s.is_synced())
    }

    /// The replicas the router knows (`host:port`) and whether each is in rotation.
    pub fn replicas(&self) -> Vec<(String, bool)> {
        self.all_shards()
            .iter()
            .flat_map(|s| s.replica_pool().all())
            .collect()
    }

    /// A new connection of its own to the current master, for what the router does not route:
    /// `WATCH`…`MULTI`…`EXEC` (keep it to one task), `SUBSCRIBE`, long blocking loops. Writes
    /// sent on it skip the read-your-writes window; the cache still learns of them from the
    /// server (tracking). On a cluster, the master serving slot 0 (the node a cluster client
    /// asks first for a keyless command); its keyed commands of other slots get `MOVED`: for
    /// a key, use [`Router::master_connection_for`].
    pub async fn master_connection(&self) -> Result<MultiplexedConnection, Error> {
        let shard = match &self.inner.backend {
            Backend::Single(shard) => shard.clone(),
            Backend::Cluster(cluster) => cluster.shard_for_slot(0)?,
        };
        shard.dedicated(shard.options().master_timeout).await
    }

    /// Like [`Router::master_connection`], to the master serving `key` (on a cluster, the
    /// master of its slot; it answers `MOVED` for keys of other slots).
    pub async fn master_connection_for(&self, key: &[u8]) -> Result<MultiplexedConnection, Error> {
        let shard = match &self.inner.backend {
            Backend::Single(shard) => shard.clone(),
            Backend::Cluster(cluster) => cluster.shard_for_key(key)?,
        };
        shard.dedicated(shard.options().master_timeout).await
    }
}

fn validate(options: &Options) -> Result<(), Error> {
    if options.report_interval.is_zero()
        || options.probe_interval.is_zero()
        || options.heartbeat_timeout.is_zero()
        || options.topology_refresh.is_zero()
    {
        return Err(Error::Config(
            "report_interval, probe_interval, heartbeat_timeout and topology_refresh must be \
             above zero"
                .into(),
        ));
    }
    Ok(())
}
