//! The proxy's upstream side: the router (hot set, routing rule, replica rotation,
//! subscription, resyncs, reports) plus what a proxy adds to it — pools of raw pipelined
//! connections to the master (one per client protocol), cache fills on connections whose
//! `CLIENT TRACKING` the router's control connection hears, connections to the replicas, and
//! the cache of raw replies.
//!
//! Each routed command becomes a [`ReplyFuture`]: the reply bytes exactly as the server
//! would have sent them to this client, or an error reply naming what failed.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hotkey_router::cache::{Cache, Cached, ThreadCopy, Weight};
use hotkey_router::redis::{ConnectionAddr, ConnectionInfo};
use hotkey_router::upstream::{MasterSession, ReplicaAddress, Route, Served, ShardHandle};
use hotkey_router::{Options, Router};
use rustc_hash::FxHashMap;

use crate::lanes::Lanes;
use crate::metrics::{Metrics, Route as MetricRoute};
use crate::session::{InFlight, WriteWindow};
use crate::upstream::{Connection, Endpoint, Protocol, Tls, UpstreamError};

/// The reply to one command, when it is ready.
pub type ReplyFuture = Pin<Box<dyn Future<Output = Bytes> + Send>>;

/// A reply the cache keeps: the bytes as the server sent them.
pub struct RawReply(pub Bytes);

impl Weight for RawReply {
    fn weight(&self) -> usize {
        self.0.len()
    }
}

impl ThreadCopy for RawReply {
    /// The bytes copied: a clone of `Bytes` would share the original's reference count.
    fn thread_copy(&self) -> RawReply {
        RawReply(Bytes::copy_from_slice(&self.0))
    }
}

/// An error reply as RESP (the same bytes under RESP2 and RESP3).
pub fn error_reply(text: &str) -> Bytes {
    let text: String = text
        .chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect();
    Bytes::from(format!("-{text}\r\n"))
}

/// How the proxy reaches its upstream, beyond the router's options.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Shared connections per client protocol.
    pub pool_size: usize,
    /// How long a command on a shared connection may take.
    pub upstream_timeout: Duration,
    pub connect_timeout: Duration,
    /// Whether hot reads may be served from the cache.
    pub cache: bool,
    pub cache_capacity_bytes: u64,
    /// The upstream is a Redis Cluster: commands go by slot (see [`crate::cluster`]).
    pub cluster: bool,
}

/// The connections of one master session, replaced when the router's link is (re)made.
pub(crate) struct Upstreams {
    session: u64,
    master: [Lanes; 2],
    fill: [Lanes; 2],
}

/// Everything upstream, shared by every client task.
pub struct Engine {
    router: Router,
    settings: EngineSettings,
    replica_timeout: Duration,
    /// Each shard's connections, opened under its live session (one shard on a standalone
    /// master, one per master of a cluster).
    upstreams: Mutex<Vec<(ShardHandle, Arc<Upstreams>)>>,
    replicas: Mutex<FxHashMap<(ReplicaAddress, Protocol), Connection>>,
    cache: Cache<RawReply>,
    metrics: Arc<Metrics>,
    /// The user the proxy's own connections log in as (`default` without one): a client that
    /// logs in as this user shares them, and the cache.
    user: String,
    db: i64,
    unauthenticated: Unauthenticated,
}

/// Who a client's own connection logs in as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// As the proxy's connections do.
    Proxy,
    /// Not at all: as a client that has not logged in (the server's `default` user, or
    /// `NOAUTH` until the client logs in on it).
    None,
    /// As this user (None: `default`).
    As {
        user: Option<String>,
        password: String,
    },
}

/// What the master lets a connection that has not logged in do, and so what the proxy lets a
/// client that has not: never more than the server would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unauthenticated {
    /// The proxy logs in as `default`, which needs no password: such clients share its
    /// connections and cache.
    Shared,
    /// The server answers `NOAUTH`: so does the proxy, until the client logs in.
    MustLogIn,
    /// `default` needs no password but the proxy logs in as another user: such clients get a
    /// connection of their own, not logged in, so they keep `default`'s rights.
    OwnConnection,
}

/// What a routed command needs from its client.
pub struct ClientView<'a> {
    pub protocol: Protocol,
    /// Which shared connection of the pool carries this client's commands (always the same
    /// one, so they reach the server in the order sent and `WAIT` counts its writes).
    pub lane: usize,
    pub window: &'a mut WriteWindow,
    /// Every reply of the client not written yet: a blocking command waits for them.
    pub in_flight: &'a InFlight,
    /// The client's reads in flight off its lane (cache fills, replica reads): a command for
    /// its lane waits for them, so it never runs on the master before a read the client sent
    /// earlier (a read must not see a write sent after it).
    pub off_lane: &'a Arc<InFlight>,
}

impl Engine {
    /// Connects the router to `router` and opens the first connections.
    pub fn new(
        router: Router,
        options: &Options,
        settings: EngineSettings,
        metrics: Arc<Metrics>,
        user: String,
        db: i64,
    ) -> Engine {
        Engine {
            router,
            replica_timeout: options.replica_timeout,
            cache: Cache::new(settings.cache_capacity_bytes),
            settings,
            upstreams: Mutex::new(Vec::new()),
            replicas: Mutex::new(FxHashMap::default()),
            metrics,
            user,
            db,
            // The strictest until `probe_access` knows better.
            unauthenticated: Unauthenticated::MustLogIn,
        }
    }

    pub fn router(&self) -> &Router {
        &self.router
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn db(&self) -> i64 {
        self.db
    }

    pub fn connect_timeout(&self) -> Duration {
        self.settings.connect_timeout
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// About how many bytes and replies the cache holds.
    pub fn cache_usage(&self) -> (u64, u64) {
        self.cache.usage()
    }

    /// What a client that has not logged in may do (see [`Unauthenticated`]).
    pub fn unauthenticated(&self) -> Unauthenticated {
        self.unauthenticated
    }

    /// Finds out what the master lets a connection that has not logged in do, to treat
    /// clients that have not the same way.
    pub async fn probe_access(&mut self) -> Result<(), Failure> {
        let endpoint = self.own_endpoint(&Login::None)?;
        let conn = Connection::connect(&endpoint, self.settings.connect_timeout).await?;
        let reply = conn
            .request(
                Bytes::from_static(b"*1\r\n$4\r\nPING\r\n"),
                Some(self.settings.connect_timeout),
            )
            .await?;
        self.unauthenticated = if hotkey_protocol::errors::error_code(&reply) == Some(b"NOAUTH") {
            Unauthenticated::MustLogIn
        } else if self.user == "default" {
            Unauthenticated::Shared
        } else {
            Unauthenticated::OwnConnection
        };
        Ok(())
    }

    /// The endpoint of the current master for a connection of a client's own, logged in as
    /// `login` says.
    pub fn own_endpoint(&self, login: &Login) -> Result<Endpoint, Failure> {
        self.own_endpoint_for(login, &[Bytes::from_static(b"PING")])
    }

    /// Like [`Engine::own_endpoint`], to the master of the slot of `args` (a command; on a
    /// cluster, the first the connection carries: a keyless one goes to slot 0's master).
    pub fn own_endpoint_for(&self, login: &Login, args: &[Bytes]) -> Result<Endpoint, Failure> {
        let argv: Vec<&[u8]> = args.iter().map(|a| a.as_ref()).collect();
        let handle = self.handle(&argv).map_err(|e| match e {
            hotkey_router::Error::CrossSlot => Failure::CrossSlot,
            e => Failure::Unavailable(e.to_string()),
        })?;
        let session = handle
            .master()
            .ok_or_else(|| Failure::unavailable(&handle))?;
        let mut endpoint = endpoint(&session.info, Protocol::Resp2, None)?;
        match login {
            Login::Proxy => {}
            Login::None => {
                endpoint.user = None;
                endpoint.password = None;
            }
            Login::As { user, password } => {
                endpoint.user = user.clone();
                endpoint.password = Some(password.clone());
            }
        }
        // The client chooses its protocol (HELLO) and database (SELECT) itself.
        endpoint.db = 0;
        Ok(endpoint)
    }

    fn handle(&self, args: &[&[u8]]) -> Result<ShardHandle, hotkey_router::Error> {
        self.router.shard_for(args)
    }

    /// Whether the upstream is a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.settings.cluster
    }

    /// The connections of `handle`'s live session, opened (lazily) under it.
    pub(crate) fn upstreams(&self, handle: &ShardHandle) -> Result<Arc<Upstreams>, Failure> {
        let live = handle.session();
        if let Some((_, up)) = self
            .upstreams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(h, _)| h.same_shard(handle))
            && Some(up.session) == live
        {
            return Ok(up.clone());
        }
        let session = handle
            .master()
            .ok_or_else(|| Failure::unavailable(handle))?;
        let up = Arc::new(self.open(&session)?);
        let current = self.router.shard_handles();
        let mut known = self.upstreams.lock().unwrap_or_else(|p| p.into_inner());
        // The connections of shards the router no longer follows go (a cluster's masters
        // change).
        known.retain(|(h, _)| current.iter().any(|c| c.same_shard(h)));
        match known.iter_mut().find(|(h, _)| h.same_shard(handle)) {
            // Another task got there first.
            Some((_, mine)) if mine.session == up.session => Ok(mine.clone()),
            Some((_, mine)) => {
                *mine = up.clone();
                Ok(up)
            }
            None => {
                known.push((handle.clone(), up.clone()));
                Ok(up)
            }
        }
    }

    fn open(&self, session: &MasterSession) -> Result<Upstreams, Failure> {
        let pool = |protocol, tracking| -> Result<Lanes, Failure> {
            Ok(Lanes::new(
                endpoint(&session.info, protocol, tracking)?,
                self.settings.pool_size,
                self.settings.connect_timeout,
            ))
        };
        Ok(Upstreams {
            session: session.session,
            master: [pool(Protocol::Resp2, None)?, pool(Protocol::Resp3, None)?],
            fill: [
                pool(Protocol::Resp2, Some(session.tracking_id))?,
                pool(Protocol::Resp3, Some(session.tracking_id))?,
            ],
        })
    }

    /// Sends `raw` (whose arguments are `args`) where the hot set says, for `client`. A
    /// command for the client's lane is queued on it before this returns; a read off the lane
    /// runs on its own task (a cache hit is answered at once). On a cluster, by slot (see
    /// [`crate::cluster`]).
    pub async fn dispatch(
        self: &Arc<Self>,
        client: ClientView<'_>,
        args: &[Bytes],
        raw: Bytes,
    ) -> ReplyFuture {
        if self.settings.cluster {
            return crate::cluster::dispatch(self, client, args, raw).await;
        }
        self.route(client, args, raw).await
    }

    /// [`Engine::dispatch`] to the one shard of the command's slot (the one master outside a
    /// cluster).
    pub(crate) async fn route(
        self: &Arc<Self>,
        client: ClientView<'_>,
        args: &[Bytes],
        raw: Bytes,
    ) -> ReplyFuture {
        let argv: Vec<&[u8]> = args.iter().map(|a| a.as_ref()).collect();
        let picked = self.handle(&argv);
        self.route_to(client, args, &argv, picked, raw).await
    }

    /// [`Engine::route`] with the shard already picked for `argv` (`args` as slices).
    pub(crate) async fn route_to(
        self: &Arc<Self>,
        client: ClientView<'_>,
        args: &[Bytes],
        argv: &[&[u8]],
        picked: Result<ShardHandle, hotkey_router::Error>,
        raw: Bytes,
    ) -> ReplyFuture {
        let started = Instant::now();
        let handle = match picked {
            Ok(h) => h,
            Err(hotkey_router::Error::CrossSlot) => {
                return ready(error_reply(hotkey_router::CROSSSLOT));
            }
            Err(e) => return ready(error_reply(&format!("ERR hotkey-proxy: {e}"))),
        };
        let up = match self.upstreams(&handle) {
            Ok(up) => up,
            Err(e) => {
                self.metrics.upstream_error(e.kind());
                return ready(error_reply(&e.reply_text()));
            }
        };
        let window = &*client.window;
        let route = handle.route(argv, |k| window.contains(k));
        let (protocol, lane) = (client.protocol, client.lane);
        let engine = self.clone();
        match route {
            Route::Master { writes, blocking } => {
                let writes: Vec<Bytes> = writes.iter().map(|k| owned(args, k)).collect();
                client.window.wrote(&writes, started);
                if blocking {
                    // It runs after everything the client sent before, as on a server.
                    client.in_flight.drained().await;
                    return Box::pin(async move {
                        let reply = engine.blocking(&handle, protocol, raw).await;
                        engine.finish(&handle, &writes, Served::Master, started);
                        reply
                    });
                }
                client.off_lane.drained().await;
                let reply = engine.on_master(&handle, &up, protocol, lane, raw);
                Box::pin(async move {
                    let reply = reply.await;
                    engine.finish(&handle, &writes, Served::Master, started);
                    reply
                })
            }
            Route::Cache { key, ttl, epoch } if self.settings.cache => {
                let key = owned(args, key);
                let mut read: ReplyFuture = Box::pin(async move {
                    engine
                        .cached(&handle, &up, protocol, raw, key, ttl, epoch, started)
                        .await
                });
                match poll_once(&mut read).await {
                    Some(hit) => ready(hit),
                    None => off_lane(read, client.off_lane),
                }
            }
            Route::Replica { keys } => {
                let keys: Vec<Bytes> = keys.iter().map(|k| owned(args, k)).collect();
                off_lane(
                    Box::pin(async move {
                        engine
                            .on_replica(&handle, &up, protocol, lane, raw, &keys, started)
                            .await
                    }),
                    client.off_lane,
                )
            }
            // The cache is off, or the client wrote the key lately, or no replica is up.
            Route::Cache { key, .. } => {
                client.off_lane.drained().await;
                engine.hot_on_master(
                    &handle,
                    &up,
                    protocol,
                    lane,
                    raw,
                    vec![owned(args, key)],
                    started,
                )
            }
            Route::HotOnMaster { keys } => {
                client.off_lane.drained().await;
                let keys = keys.iter().map(|k| owned(args, k)).collect();
                engine.hot_on_master(&handle, &up, protocol, lane, raw, keys, started)
            }
            // A route this proxy does not know yet: the master is always right.
            _ => {
                client.off_lane.drained().await;
                let reply = engine.on_master(&handle, &up, protocol, lane, raw);
                Box::pin(async move {
                    let reply = reply.await;
                    engine
                        .metrics
                        .command(MetricRoute::Master, started.elapsed());
                    reply
                })
            }
        }
    }

    /// A read of hot keys on the client's lane.
    #[allow(clippy::too_many_arguments)]
    fn hot_on_master(
        self: &Arc<Self>,
        handle: &ShardHandle,
        up: &Upstreams,
        protocol: Protocol,
        lane: usize,
        raw: Bytes,
        keys: Vec<Bytes>,
        started: Instant,
    ) -> ReplyFuture {
        let reply = self.on_master(handle, up, protocol, lane, raw);
        let (engine, handle) = (self.clone(), handle.clone());
        Box::pin(async move {
            let reply = reply.await;
            engine.served(&handle, Served::HotOnMaster, &keys);
            engine
                .metrics
                .command(MetricRoute::Master, started.elapsed());
            reply
        })
    }

    /// Queues `raw` on the client's shared connection now (so a client's commands reach the
    /// server in the order it sent them) and returns its reply.
    pub(crate) fn on_master(
        self: &Arc<Self>,
        handle: &ShardHandle,
        up: &Upstreams,
        protocol: Protocol,
        lane: usize,
        raw: Bytes,
    ) -> impl Future<Output = Bytes> + Send + 'static {
        let queued =
            up.master[index(protocol)].request(lane, raw, Some(self.settings.upstream_timeout));
        let (engine, handle, session) = (self.clone(), handle.clone(), up.session);
        async move {
            match queued.await {
                Ok(reply) => reply,
                Err(e) => engine.failed(&handle, session, &e),
            }
        }
    }

    /// The error reply for a failure upstream; a connection that broke wakes the router's
    /// link (the master may be gone: behind Sentinel, it asks where it went).
    fn failed(&self, handle: &ShardHandle, session: u64, e: &UpstreamError) -> Bytes {
        self.metrics.upstream_error(kind(e));
        if breaks_connection(e) {
            handle.report_broken(session);
        }
        error_reply(&e.reply_text())
    }

    /// A command that may block, on a connection of its own for as long as it takes.
    pub(crate) async fn blocking(
        &self,
        handle: &ShardHandle,
        protocol: Protocol,
        raw: Bytes,
    ) -> Bytes {
        let reply = async {
            let session = handle
                .master()
                .ok_or_else(|| Failure::unavailable(handle))?;
            let endpoint = endpoint(&session.info, protocol, None)?;
            let conn = Connection::connect(&endpoint, self.settings.connect_timeout).await?;
            Ok::<_, Failure>(conn.request(raw, None).await?)
        };
        match reply.await {
            Ok(reply) => reply,
            Err(e) => {
                self.metrics.upstream_error(e.kind());
                error_reply(&e.reply_text())
            }
        }
    }

    fn finish(&self, handle: &ShardHandle, writes: &[Bytes], served: Served, started: Instant) {
        // Even when the reply is an error, the write may have happened.
        if !writes.is_empty() {
            let keys: Vec<&[u8]> = writes.iter().map(|k| k.as_ref()).collect();
            handle.wrote(&keys);
        }
        handle.served(served, &[]);
        self.metrics.command(MetricRoute::Master, started.elapsed());
    }

    fn served(&self, handle: &ShardHandle, served: Served, keys: &[Bytes]) {
        let keys: Vec<&[u8]> = keys.iter().map(|k| k.as_ref()).collect();
        handle.served(served, &keys);
    }

    /// A hot read from the cache, filled from the master on a tracked connection when it is
    /// not there (one fill for concurrent misses). Error replies are not cached.
    #[allow(clippy::too_many_arguments)]
    async fn cached(
        &self,
        handle: &ShardHandle,
        up: &Upstreams,
        protocol: Protocol,
        raw: Bytes,
        key: Bytes,
        ttl: Duration,
        epoch: u64,
        started: Instant,
    ) -> Bytes {
        let mut entry = Vec::with_capacity(raw.len() + 1);
        entry.push(index(protocol) as u8);
        entry.extend_from_slice(&raw);
        if let Some(hit) = self.cache.get(&entry, epoch).await {
            return self.hit(handle, &key, &hit.value.0, started);
        }
        let filled = AtomicBool::new(false);
        let fill = async {
            filled.store(true, Ordering::Relaxed);
            let reply = up.fill[index(protocol)]
                .request(0, raw.clone(), Some(self.settings.upstream_timeout))
                .await
                .map_err(|e| self.failed(handle, up.session, &e))?;
            if hotkey_protocol::errors::error_code(&reply).is_some() {
                return Err(reply);
            }
            Ok(Arc::new(Cached::new(RawReply(reply), epoch, ttl)))
        };
        let result = self.cache.get_or_fill(entry.into_boxed_slice(), fill).await;
        if !filled.load(Ordering::Relaxed) {
            return match result {
                Ok(hit) => self.hit(handle, &key, &hit.value.0, started),
                Err(reply) => (*reply).clone(),
            };
        }
        self.metrics.cache_miss();
        self.served(handle, Served::CacheMiss, &[]);
        self.metrics.command(MetricRoute::Master, started.elapsed());
        match result {
            Ok(cached) => cached.value.0.clone(),
            Err(reply) => (*reply).clone(),
        }
    }

    fn hit(&self, handle: &ShardHandle, key: &Bytes, reply: &Bytes, started: Instant) -> Bytes {
        handle.served(Served::CacheHit, &[key.as_ref()]);
        self.metrics.cache_hit();
        self.metrics.command(MetricRoute::Cache, started.elapsed());
        reply.clone()
    }

    /// A hot read on the replicas in rotation; a replica that fails, times out or cannot
    /// serve now (`LOADING`…) leaves the rotation and the next is tried, then the master.
    #[allow(clippy::too_many_arguments)]
    async fn on_replica(
        self: &Arc<Self>,
        handle: &ShardHandle,
        up: &Upstreams,
        protocol: Protocol,
        lane: usize,
        raw: Bytes,
        keys: &[Bytes],
        started: Instant,
    ) -> Bytes {
        let tries = handle.replicas_up();
        for _ in 0..tries {
            let Some(replica) = handle.next_replica() else {
                break;
            };
            match self
                .replica_read(handle, &replica, protocol, raw.clone())
                .await
            {
                Ok(reply)
                    if !hotkey_protocol::errors::error_code(&reply)
                        .is_some_and(hotkey_protocol::errors::is_unavailable) =>
                {
                    self.served(handle, Served::Replica, keys);
                    self.metrics
                        .command(MetricRoute::Replica, started.elapsed());
                    return reply;
                }
                Ok(_) | Err(_) => {
                    tracing::warn!(
                        "hotkey-proxy: replica {}:{} failed a read; out of rotation",
                        replica.host,
                        replica.port
                    );
                    self.forget_replica(&replica);
                    handle.replica_failed(&replica);
                    handle.served(Served::ReplicaFailed, &[]);
                }
            }
        }
        let reply = self.on_master(handle, up, protocol, lane, raw).await;
        self.served(handle, Served::HotOnMaster, keys);
        self.metrics.command(MetricRoute::Master, started.elapsed());
        reply
    }

    pub(crate) async fn replica_read(
        &self,
        handle: &ShardHandle,
        replica: &ReplicaAddress,
        protocol: Protocol,
        raw: Bytes,
    ) -> Result<Bytes, Failure> {
        let known = self
            .replicas
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(replica.clone(), protocol))
            .filter(|c| !c.is_broken())
            .cloned();
        let conn = match known {
            Some(conn) => conn,
            None => {
                let session = handle
                    .master()
                    .ok_or_else(|| Failure::unavailable(handle))?;
                let mut endpoint = endpoint(&session.info, protocol, None)?;
                endpoint.host = replica.host.clone();
                endpoint.port = replica.port;
                // A cluster's replica redirects reads to its master without it.
                endpoint.readonly = self.settings.cluster;
                let conn = Connection::connect(&endpoint, self.settings.connect_timeout).await?;
                self.replicas
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert((replica.clone(), protocol), conn.clone());
                conn
            }
        };
        Ok(conn.request(raw, Some(self.replica_timeout)).await?)
    }

    fn forget_replica(&self, replica: &ReplicaAddress) {
        self.replicas
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(r, _), _| r != replica);
    }
}

/// Runs `read` on a task of its own, counted in `off_lane` until it is done.
fn off_lane(read: ReplyFuture, off_lane: &Arc<InFlight>) -> ReplyFuture {
    off_lane.add();
    let count = off_lane.clone();
    let task = tokio::spawn(async move {
        let reply = read.await;
        count.done();
        reply
    });
    Box::pin(async move {
        task.await
            .unwrap_or_else(|_| error_reply("ERR hotkey-proxy: the read was cancelled"))
    })
}

/// The output of `future` if it is ready at its first poll.
pub async fn poll_once(future: &mut ReplyFuture) -> Option<Bytes> {
    std::future::poll_fn(|cx| match future.as_mut().poll(cx) {
        std::task::Poll::Ready(reply) => std::task::Poll::Ready(Some(reply)),
        std::task::Poll::Pending => std::task::Poll::Ready(None),
    })
    .await
}

/// A reply that is ready now.
pub fn ready(reply: Bytes) -> ReplyFuture {
    Box::pin(std::future::ready(reply))
}

/// The argument `key` points into, shared rather than copied.
fn owned(args: &[Bytes], key: &[u8]) -> Bytes {
    args.iter()
        .find(|a| a.as_ptr() == key.as_ptr() && a.len() == key.len())
        .cloned()
        .unwrap_or_else(|| Bytes::copy_from_slice(key))
}

/// How to reach the server of `info` with `protocol`, tracked to `tracking` if given.
pub(crate) fn endpoint(
    info: &ConnectionInfo,
    protocol: Protocol,
    tracking: Option<i64>,
) -> Result<Endpoint, Failure> {
    let (host, port, tls) = match info.addr() {
        ConnectionAddr::Tcp(host, port) => (host.clone(), *port, None),
        ConnectionAddr::TcpTls { host, port, .. } => (host.clone(), *port, Some(system_roots()?)),
        other => {
            return Err(Failure::Unsupported(format!(
                "hotkey-proxy reaches servers over plain TCP only, not {other}"
            )));
        }
    };
    let settings = info.redis_settings();
    Ok(Endpoint {
        host,
        port,
        tls,
        user: settings.username().map(str::to_string),
        password: settings.password().map(str::to_string),
        protocol,
        db: settings.db(),
        readonly: false,
        tracking_redirect: tracking,
        client_name: None,
        pushes: None,
    })
}

/// TLS trusting the system's root certificates, loaded once.
fn system_roots() -> Result<Tls, Failure> {
    static ROOTS: OnceLock<Result<Tls, String>> = OnceLock::new();
    ROOTS
        .get_or_init(|| Tls::native_roots().map_err(|e| e.to_string()))
        .clone()
        .map_err(Failure::Unsupported)
}

/// Why a command could not be served upstream.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Failure {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The router has no live link to the master: which one, and the router's words.
    #[error("{0}")]
    Unavailable(String),
    /// The proxy cannot reach this server the way its settings say.
    #[error("{0}")]
    Unsupported(String),
    /// On a cluster: the command's keys are in different slots.
    #[error("{}", hotkey_router::CROSSSLOT)]
    CrossSlot,
}

impl Failure {
    /// `handle`'s master is down: the reply names it, so that a client behind the proxy
    /// knows which server failed (the router's own words do not).
    pub(crate) fn unavailable(handle: &ShardHandle) -> Failure {
        let reason = match handle.down_reason() {
            hotkey_router::Error::MasterUnavailable(why) => why.to_string(),
            other => other.to_string(),
        };
        Failure::Unavailable(format!(
            "master {} unavailable: {reason}",
            handle.master_address()
        ))
    }

    /// The error text a client gets (no leading `-`, no line end).
    pub fn reply_text(&self) -> String {
        match self {
            Failure::Upstream(e) => e.reply_text(),
            Failure::CrossSlot => hotkey_router::CROSSSLOT.to_string(),
            other => format!("ERR hotkey-proxy: {other}"),
        }
    }

    /// The failure's kind, for the metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::Upstream(e) => kind(e),
            Failure::Unavailable(_) => "unavailable",
            Failure::Unsupported(_) => "unsupported",
            Failure::CrossSlot => "crossslot",
        }
    }
}

/// The kind of an upstream failure, for the metrics.
pub fn kind(e: &UpstreamError) -> &'static str {
    match e {
        UpstreamError::Connect { .. } | UpstreamError::ConnectTimeout { .. } => "connect",
        UpstreamError::Timeout { .. } => "timeout",
        UpstreamError::Io { .. } | UpstreamError::Closed { .. } => "io",
        UpstreamError::Handshake { .. } => "handshake",
        UpstreamError::Protocol { .. } => "protocol",
        UpstreamError::Tls { .. } => "tls",
    }
}

/// Whether the connection that failed so is gone (the master may be: the router's link is
/// woken to find out).
pub(crate) fn breaks_connection(e: &UpstreamError) -> bool {
    matches!(
        e,
        UpstreamError::Io { .. }
            | UpstreamError::Closed { .. }
            | UpstreamError::Timeout { .. }
            | UpstreamError::Protocol { .. }
    )
}

/// Which of a pair of pools (RESP2, RESP3) serves `protocol`.
fn index(protocol: Protocol) -> usize {
    match protocol {
        Protocol::Resp2 => 0,
        Protocol::Resp3 => 1,
    }
}
