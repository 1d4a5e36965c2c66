//! The router on a Redis Cluster: one [`Shard`] (with its own link task) per master, the slot
//! map that picks the shard of a command, and the task that keeps both in step with the
//! cluster — on `MOVED`, when a shard's link drops (a failover), and periodically.
//!
//! A shard is the same per-master state a standalone router has. A shard whose master stays
//! master across a refresh is kept (its connections, hot set and cache); one whose master
//! left is dropped with its link, cache and subscription; one that gained or lost slots keeps
//! its link but drops its cache.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures_util::future::join_all;
use hotkey_protocol::ProtocolError;
use hotkey_protocol::cluster::SlotRange;
use hotkey_protocol::command_table::CommandKind;
use hotkey_protocol::keyless::{self, Aggregate, KeylessGroup};
use hotkey_protocol::scan::ClusterCursor;
use redis::{
    AsyncConnectionConfig, Client, Cmd, ConnectionAddr, ConnectionInfo, Pipeline, ServerError,
    Value,
};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::error::{Error, Unavailable};
use crate::link::{self, MasterSource};
use crate::locks::{lock, read, write};
use crate::metrics::Metrics;
use crate::options::Options;
use crate::shard::{Lane, Reply, Shard, arguments};
use crate::topology::{
    AMBIGUOUS, NodeAddr, Redirect, ShardLayout, SlotMap, SlotOf, command_slot, parse_shards,
    parse_slots,
};

/// Redirections (or refusals of an unsettled cluster) followed for one command before its last
/// answer is returned. Each waits until the layout agrees with it, so these are not spent by a
/// layout that lags; a slot moves at most once or twice while a command is in flight.
const MAX_REDIRECTS: usize = 8;
/// How soon the layout is read again while a shard is down or a slot has no master: a
/// failover shows only once a replica won its election.
const DOWN_REFRESH: Duration = Duration::from_millis(200);

/// Whether a node refused a command (error code `code`), without running it, because the
/// cluster is between two states (a failover or a migration in progress): worth retrying once
/// the layout is read again.
fn unsettled(code: Option<&str>) -> bool {
    matches!(code, Some("CLUSTERDOWN" | "TRYAGAIN" | "MASTERDOWN"))
}

/// Whether a node answered a command with a redirection or refused it (error code `code`):
/// either way the command did not run there.
fn not_run(code: Option<&str>) -> bool {
    unsettled(code) || matches!(code, Some("MOVED" | "ASK"))
}

/// The link task of a shard, stopped when the last layout naming the shard is dropped.
struct LinkTask(JoinHandle<()>);

impl Drop for LinkTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One master of the layout.
struct ShardEntry {
    master: NodeAddr,
    slots: Vec<SlotRange>,
    shard: Arc<Shard>,
    link: Arc<LinkTask>,
}

/// The cluster as last read: the shards and which serves each slot.
struct Layout {
    shards: Vec<ShardEntry>,
    map: SlotMap,
}

impl Layout {
    fn shard_for(&self, slot: u16) -> Option<&Arc<Shard>> {
        self.map.get(slot).map(|i| &self.shards[i].shard)
    }

    fn by_address(&self, address: &str) -> Option<&Arc<Shard>> {
        self.shards
            .iter()
            .find(|e| e.master.address() == address)
            .map(|e| &e.shard)
    }

    /// The shard whose master is at `address`, when this layout agrees with the redirection
    /// that named it: for a `MOVED` of `slot`, only if it maps `slot` to that master (an `ASK`
    /// names a master that does not own the slot yet, so `slot` is None).
    fn redirected(&self, slot: Option<u16>, address: &str) -> Option<&Arc<Shard>> {
        match slot {
            Some(slot) => self
                .map
                .get(slot)
                .map(|i| &self.shards[i])
                .filter(|e| e.master.address() == address)
                .map(|e| &e.shard),
            None => self.by_address(address),
        }
    }

    /// True when a shard is disconnected or a slot has no master.
    fn degraded(&self) -> bool {
        self.shards.iter().any(|e| !e.shard.is_connected())
            || (0..hotkey_protocol::cluster::SLOTS).any(|s| self.map.get(s).is_none())
    }
}

/// A shard as the application sees it (see [`crate::Router::shards`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ShardView {
    /// The master, `host:port`.
    pub master: String,
    /// The slots it serves (empty on a standalone server).
    pub slots: Vec<SlotRange>,
    /// True while its link to the master is up.
    pub connected: bool,
    /// Its counters since it joined the router.
    pub metrics: Metrics,
}

/// Everything a cluster router shares between its handles and its topology task.
pub(crate) struct Cluster {
    options: Options,
    seeds: Vec<ConnectionInfo>,
    layout: RwLock<Arc<Layout>>,
    /// Woken by a shard whose link dropped, and by a `MOVED`.
    refresh_wanted: Arc<Notify>,
    /// One refresh at a time; the count tells a waiting caller that one ran meanwhile.
    refreshing: tokio::sync::Mutex<()>,
    refreshes: AtomicU64,
    /// The counters of shards no longer in the layout, so the totals never go back.
    retired: Mutex<Metrics>,
    /// The last master that could not be followed (its address) and why, for the errors of
    /// its slots.
    last_failure: Mutex<Option<(String, Error)>>,
    /// The rotation of the commands any one master may answer (`RANDOMKEY`).
    next_master: AtomicUsize,
}

impl Cluster {
    /// Reads the layout from the first seed that answers and connects to every master. Fails
    /// when no seed answers or a master cannot be followed (no module, no connection).
    pub async fn connect(seeds: Vec<ConnectionInfo>, options: Options) -> Result<Cluster, Error> {
        let Some(first) = seeds.first() else {
            return Err(Error::Config(
                "connect_cluster needs at least one seed".into(),
            ));
        };
        if first.redis_settings().db() != 0 {
            return Err(Error::Config(
                "a Redis Cluster has only database 0: leave the database out of the seed URL"
                    .into(),
            ));
        }
        let cluster = Cluster {
            options,
            seeds,
            layout: RwLock::new(Arc::new(Layout {
                shards: Vec::new(),
                map: SlotMap::new(&[]),
            })),
            refresh_wanted: Arc::new(Notify::new()),
            refreshing: tokio::sync::Mutex::new(()),
            refreshes: AtomicU64::new(0),
            retired: Mutex::new(Metrics::default()),
            last_failure: Mutex::new(None),
            next_master: AtomicUsize::new(0),
        };
        cluster.refresh(true).await?;
        Ok(cluster)
    }

    fn layout(&self) -> Arc<Layout> {
        read(&self.layout).clone()
    }

    /// The topology task: reads the layout again when a shard asks (its link dropped), after a
    /// `MOVED`, and every `topology_refresh` (every 200 ms while degraded).
    pub async fn maintain(self: Arc<Self>) {
        loop {
            let wait = if self.layout().degraded() {
                DOWN_REFRESH
            } else {
                self.options.topology_refresh
            };
            tokio::select! {
                () = self.refresh_wanted.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
            if let Err(e) = self.refresh(false).await {
                tracing::warn!("hotkey router: cannot read the cluster's layout: {e}");
            }
        }
    }

    /// Reads the layout again now, unless a refresh ran while this one waited for its turn
    /// (many commands meeting the same `MOVED` read it once).
    async fn refresh_now(&self) {
        let seen = self.refreshes.load(Ordering::Acquire);
        let _turn = self.refreshing.lock().await;
        if self.refreshes.load(Ordering::Acquire) != seen {
            return;
        }
        if let Err(e) = self.install(false, None).await {
            tracing::warn!("hotkey router: cannot read the cluster's layout: {e}");
        }
    }

    /// Reads the layout again, asking the node at `address` first, unless the layout already
    /// agrees with the redirection (many commands meeting the same one read it once).
    async fn refresh_toward(&self, slot: Option<u16>, address: &str) {
        let _turn = self.refreshing.lock().await;
        if self.layout().redirected(slot, address).is_some() {
            return;
        }
        if let Err(e) = self.install(false, Some(address)).await {
            tracing::warn!("hotkey router: cannot read the cluster's layout: {e}");
        }
    }

    /// Reads the layout and installs it, one refresh at a time.
    async fn refresh(&self, first: bool) -> Result<(), Error> {
        let _turn = self.refreshing.lock().await;
        self.install(first, None).await
    }

    /// Reads the layout and installs it: masters kept keep their shard (and drop their cache
    /// when their slots changed), new masters get a shard and a link, the others are dropped.
    /// `first`: a master that cannot be followed is an error (else it is skipped, its slots
    /// unserved, and tried again at the next refresh). `toward`: a node to ask first. The
    /// caller holds `refreshing`.
    async fn install(&self, first: bool, toward: Option<&str>) -> Result<(), Error> {
        let mut layouts = self.read_layout(toward).await?;
        // In slot order, whatever order the node answered in: shards list the same way.
        layouts.sort_by_key(|l| l.slots.first().map(|r| r.start));
        let old = self.layout();
        let mut shards = Vec::with_capacity(layouts.len());
        let mut served = Vec::with_capacity(layouts.len());
        for ShardLayout { master, slots } in layouts {
            let kept = old
                .shards
                .iter()
                .find(|e| e.master.address() == master.address() && e.master.id == master.id);
            let (shard, link) = match kept {
                Some(e) => {
                    if e.slots != slots {
                        e.shard.clear_cache();
                    }
                    (e.shard.clone(), e.link.clone())
                }
                None => match self.start_shard(&master).await {
                    Ok(started) => started,
                    Err(e) if first => return Err(e),
                    Err(e) => {
                        let address = master.address();
                        tracing::warn!("hotkey router: cannot follow master {address}: {e}");
                        *lock(&self.last_failure) = Some((address, e));
                        continue;
                    }
                },
            };
            served.push(ShardLayout {
                master: master.clone(),
                slots: slots.clone(),
            });
            shards.push(ShardEntry {
                master,
                slots,
                shard,
                link,
            });
        }
        {
            let mut retired = lock(&self.retired);
            for gone in old
                .shards
                .iter()
                .filter(|e| !shards.iter().any(|n| Arc::ptr_eq(&n.shard, &e.shard)))
            {
                *retired = retired.plus(&gone.shard.metrics());
            }
        }
        let map = SlotMap::new(&served);
        *write(&self.layout) = Arc::new(Layout { shards, map });
        self.refreshes.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// A shard following `master`, connected and synced, with its link task running.
    async fn start_shard(&self, master: &NodeAddr) -> Result<(Arc<Shard>, Arc<LinkTask>), Error> {
        let info = self.info_for(master);
        let shard = Arc::new(Shard::new(
            self.options.clone(),
            MasterSource::Direct(info),
            0,
            Some(self.refresh_wanted.clone()),
        ));
        let session = link::connect(&shard, true).await?;
        let task = tokio::spawn(link::run(shard.clone(), session));
        Ok((shard, Arc::new(LinkTask(task))))
    }

    /// The first seed's settings (user, password, protocol) at `node`'s address.
    fn info_for(&self, node: &NodeAddr) -> ConnectionInfo {
        self.seeds[0]
            .clone()
            .set_addr(ConnectionAddr::Tcp(node.host.clone(), node.port))
    }

    /// `CLUSTER SHARDS` (`CLUSTER SLOTS` on servers without it) from the first node that
    /// answers: `toward` (`host:port`), the masters known now, then the seeds.
    async fn read_layout(&self, toward: Option<&str>) -> Result<Vec<ShardLayout>, Error> {
        let toward = toward.and_then(|address| {
            let (host, port) = address.rsplit_once(':')?;
            Some(self.info_for(&NodeAddr {
                host: host.to_string(),
                port: port.parse().ok()?,
                id: None,
            }))
        });
        let known: Vec<ConnectionInfo> = toward
            .into_iter()
            .chain(
                self.layout()
                    .shards
                    .iter()
                    .filter(|e| e.shard.is_connected())
                    .map(|e| self.info_for(&e.master)),
            )
            .collect();
        let mut last = Error::Config("no seed".into());
        for info in known.iter().chain(&self.seeds) {
            match self.layout_from(info).await {
                Ok(layouts) if !layouts.is_empty() => return Ok(layouts),
                Ok(_) => last = Error::MasterUnavailable(Unavailable::NoSlots),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    async fn layout_from(&self, info: &ConnectionInfo) -> Result<Vec<ShardLayout>, Error> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.options.connect_timeout))
            .set_response_timeout(Some(self.options.connect_timeout));
        let mut conn = Client::open(info.clone())?
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let shards: Result<Value, _> = redis::cmd("CLUSTER")
            .arg("SHARDS")
            .query_async(&mut conn)
            .await;
        match shards {
            Ok(reply) => match parse_shards(&reply) {
                Err(e) if e.to_string().contains(AMBIGUOUS) => {}
                parsed => return parsed.map_err(|source| topology_error(info, source)),
            },
            // A server without CLUSTER SHARDS (before 7.0) answers an error.
            Err(e) if e.code().is_some() => {}
            Err(e) => return Err(e.into()),
        }
        let reply: Value = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query_async(&mut conn)
            .await?;
        parse_slots(&reply).map_err(|source| topology_error(info, source))
    }

    /// The shard `args` goes to, or the error a cluster gives.
    fn pick(&self, layout: &Layout, args: &[&[u8]]) -> Result<(u16, Arc<Shard>), Error> {
        let Some(any) = layout.shards.first() else {
            return Err(Error::MasterUnavailable(Unavailable::NoMasters));
        };
        let slot = match command_slot(&any.shard.commands(), args) {
            SlotOf::Cross => return Err(Error::CrossSlot),
            SlotOf::Slot(slot) => slot,
            // Keyless commands go to the master of slot 0.
            SlotOf::Anywhere => 0,
        };
        let shard = layout.shard_for(slot).ok_or_else(|| self.unserved(slot))?;
        Ok((slot, shard.clone()))
    }

    /// The error for a slot no followed master serves, with the last master that could not be
    /// followed and why.
    fn unserved(&self, slot: u16) -> Error {
        Error::MasterUnavailable(match &*lock(&self.last_failure) {
            None => Unavailable::Unserved { slot },
            Some((master, e)) => Unavailable::Unfollowed {
                slot,
                master: master.clone(),
                error: Box::new(e.clone()),
            },
        })
    }

    /// Like `pick`, but while the slot has no master (a failover or a move is being read),
    /// reads the layout again for up to `connect_timeout` before giving up.
    async fn pick_waiting(&self, args: &[&[u8]]) -> Result<Arc<Shard>, Error> {
        let deadline = Instant::now() + self.options.connect_timeout;
        loop {
            match self.pick(&self.layout(), args) {
                Err(Error::MasterUnavailable(_)) if Instant::now() < deadline => {
                    self.refresh_now().await;
                    tokio::time::sleep(DOWN_REFRESH / 4).await;
                }
                picked => return picked.map(|(_, shard)| shard),
            }
        }
    }

    /// Sends `cmd` to the shard of its slot, following `MOVED` (to the node it names, once the
    /// layout read again names that node a master) and `ASK` (with `ASKING`, layout unchanged),
    /// and retrying a command the cluster refused while it settles (`CLUSTERDOWN`, `TRYAGAIN`,
    /// `MASTERDOWN`: nothing ran). Each redirection may take up to `connect_timeout` to be
    /// resolved (the layout to name the node it points to), counted from the redirection, not
    /// from the send: a write may wait long on a master that is handing its slots over, and be
    /// redirected again by the next master if it too hands over meanwhile. After
    /// `MAX_REDIRECTS` the last answer is returned.
    pub async fn send(&self, cmd: &Cmd) -> Result<Reply, Error> {
        let args = arguments(cmd);
        if let Some(group) = self.keyless_group(&args) {
            return self.send_keyless(group, cmd, &args).await.map(Reply::Owned);
        }
        let mut shard = self.pick_waiting(&args).await?;
        for _ in 0..MAX_REDIRECTS {
            let e = match shard.send(cmd, &args).await {
                Err(Error::Redis(e)) => e,
                other => return other,
            };
            let redirect = Redirect::from_redis(&e);
            if redirect.is_none() && !unsettled(e.code()) {
                return Err(Error::Redis(e));
            }
            let deadline = Instant::now() + self.options.connect_timeout;
            match redirect {
                Some(Redirect::Moved { slot, address }) => {
                    shard = match self.shard_at(Some(slot), &address, deadline).await {
                        Some(s) => s,
                        None => self.pick_waiting(&args).await?,
                    };
                }
                Some(Redirect::Ask { address, .. }) => {
                    let Some(target) = self.shard_at(None, &address, deadline).await else {
                        return Err(Error::Redis(e));
                    };
                    return target.send_asking(cmd).await.map(Reply::Owned);
                }
                None => {
                    tokio::time::sleep(DOWN_REFRESH / 4).await;
                    self.refresh_now().await;
                    shard = self.pick_waiting(&args).await?;
                }
            }
        }
        shard.send(cmd, &args).await
    }

    /// The group of a command that names no key (`hotkey_protocol::keyless`); None for the
    /// others, scripts included (one with keys goes to their slot, one without to any master).
    fn keyless_group(&self, args: &[&[u8]]) -> Option<KeylessGroup> {
        let layout = self.layout();
        let commands = layout.shards.first()?.shard.commands();
        let spec = commands.lookup(args)?;
        match spec.kind {
            CommandKind::Keyless | CommandKind::Select | CommandKind::Reset => {
                Some(keyless::group(args))
            }
            CommandKind::Keys | CommandKind::Script => None,
        }
    }

    /// Sends a command that names no key where its group says: every master (replies
    /// merged), every node (replicas in rotation too; their replies must agree), one master in
    /// turn, or nowhere (`SCAN` goes shard by shard, see `scan`).
    async fn send_keyless(
        &self,
        group: KeylessGroup,
        cmd: &Cmd,
        args: &[&[u8]],
    ) -> Result<Value, Error> {
        if args[0].eq_ignore_ascii_case(b"scan") {
            return self.scan(args).await;
        }
        let shards = self.shards();
        if shards.is_empty() {
            return Err(Error::MasterUnavailable(Unavailable::NoMasters));
        }
        match group {
            KeylessGroup::AllMasters(aggregate) => {
                let replies = on_every_master(&shards, cmd).await?;
                merge(aggregate, replies)
            }
            KeylessGroup::AllNodes => {
                let mut replies = on_every_master(&shards, cmd).await?;
                let replicas: Vec<_> = shards
                    .iter()
                    .flat_map(|s| s.replica_pool().connections())
                    .map(|(node, mut conn)| {
                        let cmd = cmd.clone();
                        tokio::spawn(async move {
                            cmd.query_async::<Value>(&mut conn)
                                .await
                                .map_err(|e| (node.address(), e))
                        })
                    })
                    .collect();
                for task in replicas {
                    match task.await {
                        Ok(Ok(value)) => replies.push(value),
                        Ok(Err((node, e))) => {
                            return Err(Error::BadRequest(format!("replica {node}: {e}")));
                        }
                        Err(e) => return Err(Error::BadRequest(e.to_string())),
                    }
                }
                agree(replies)
            }
            KeylessGroup::RandomMaster => {
                let turn = self.next_master.fetch_add(1, Ordering::Relaxed) % shards.len();
                owned(shards[turn].send(cmd, args).await?)
            }
            _ => Err(Error::NotRouted {
                command: String::from_utf8_lossy(args[0]).to_uppercase(),
            }),
        }
    }

    /// `SCAN cursor [MATCH p] [COUNT n] [TYPE t]` over every master in slot order, through a
    /// [`ClusterCursor`]: the shard owning the cursor's slot (or the first one after it) is
    /// asked with the node's own cursor; the reply's cursor names that shard further on, or
    /// the next shard's lowest slot once it is done, or 0 after the last.
    async fn scan(&self, args: &[&[u8]]) -> Result<Value, Error> {
        let text = args.get(1).copied().unwrap_or_default();
        let cursor = ClusterCursor::parse(text).map_err(|e| Error::BadRequest(e.to_string()))?;
        let layout = self.layout();
        let lowest = |e: &ShardEntry| e.slots.first().map_or(u16::MAX, |r| r.start);
        let index = match layout.map.get(cursor.slot) {
            Some(i) => i,
            None => layout
                .shards
                .iter()
                .position(|e| lowest(e) > cursor.slot)
                .ok_or_else(|| self.unserved(cursor.slot))?,
        };
        let entry = &layout.shards[index];
        let mut at = cursor;
        // A slot no master serves now: the next shard, from its start.
        if layout.map.get(cursor.slot) != Some(index) {
            at.slot = lowest(entry);
            at.node_cursor = 0;
        }
        let node_cursor = at.node_cursor.to_string();
        let mut sent = redis::cmd("SCAN");
        sent.arg(node_cursor.as_bytes());
        for arg in &args[2..] {
            sent.arg(*arg);
        }
        let reply = owned(entry.shard.send(&sent, &arguments(&sent)).await?)?;
        let bad = || Error::BadRequest(format!("unexpected SCAN reply: {reply:?}"));
        let (node_next, keys) = match &reply {
            Value::Array(items) => match items.as_slice() {
                [Value::BulkString(next), keys @ Value::Array(_)] => (
                    std::str::from_utf8(next)
                        .ok()
                        .and_then(|t| t.parse::<u64>().ok())
                        .ok_or_else(bad)?,
                    keys.clone(),
                ),
                _ => return Err(bad()),
            },
            _ => return Err(bad()),
        };
        let next_shard = layout.shards.get(index + 1).map(lowest);
        let next = at
            .next(node_next, next_shard)
            .map_err(|e| Error::BadRequest(e.to_string()))?;
        Ok(Value::Array(vec![
            Value::BulkString(next.to_string().into_bytes()),
            keys,
        ]))
    }

    /// The shard of the master at `address`, which a redirection of `slot` named (see
    /// [`Layout::redirected`]): the layout is read again, asking that node first, until it
    /// agrees, or None at `deadline`. The node a `MOVED` names knows it owns the slot; the
    /// other nodes learn it by gossip, and a layout read from one of them meanwhile still names
    /// the old owner, which would send the command back to the node that redirected it.
    pub(crate) async fn shard_at(
        &self,
        slot: Option<u16>,
        address: &str,
        deadline: Instant,
    ) -> Option<Arc<Shard>> {
        loop {
            self.refresh_toward(slot, address).await;
            if let Some(shard) = self.layout().redirected(slot, address) {
                return Some(shard.clone());
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(DOWN_REFRESH / 4).await;
        }
    }

    /// Sends `pipeline`. A transaction (`atomic()`) goes to the shard of its commands' one
    /// slot (keyless commands aside; else `CrossSlot`); a `MOVED` sends it whole to the new
    /// master (a redirected transaction ran nothing), an `ASK` is returned after reading the
    /// layout again. A plain pipeline is split by slot, the slots in parallel, each
    /// slot's commands in order (see `send_slot`), keyless ones by their group. The replies
    /// come back in the pipeline's order, shaped as one server's would be: an error reply is
    /// the pipeline's error (or, with `ignore_errors()`, that command's reply), an error
    /// without a reply (no connection) the pipeline's error.
    pub async fn send_pipeline(self: &Arc<Self>, pipeline: &Pipeline) -> Result<Value, Error> {
        if pipeline.is_transaction() {
            return self.send_transaction(pipeline).await;
        }
        let layout = self.layout();
        let Some(any) = layout.shards.first() else {
            return Err(Error::MasterUnavailable(Unavailable::NoMasters));
        };
        let commands = any.shard.commands();
        // One group per slot, and one per keyless command (it goes where its group says).
        let mut groups: Vec<SlotGroup> = Vec::new();
        for (index, cmd) in pipeline.cmd_iter().enumerate() {
            match command_slot(&commands, &arguments(cmd)) {
                SlotOf::Cross => return Err(Error::CrossSlot),
                SlotOf::Slot(slot) => match groups.iter_mut().find(|g| g.0 == Some(slot)) {
                    Some(group) => group.1.push((index, cmd.clone())),
                    None => groups.push((Some(slot), vec![(index, cmd.clone())])),
                },
                SlotOf::Anywhere => groups.push((None, vec![(index, cmd.clone())])),
            }
        }
        let tasks: Vec<_> = groups
            .into_iter()
            .map(|(slot, cmds)| {
                let cluster = self.clone();
                tokio::spawn(async move { cluster.send_slot(slot, cmds).await })
            })
            .collect();
        let mut replies: Vec<Option<Result<Value, Error>>> = vec![None; pipeline.len()];
        for task in tasks {
            let done = task.await.map_err(|e| Error::BadRequest(e.to_string()))?;
            for (index, reply) in done {
                replies[index] = Some(reply);
            }
        }
        let mut values = Vec::with_capacity(replies.len());
        for (index, reply) in replies.into_iter().enumerate() {
            values.push(reply.ok_or_else(|| Error::BadRequest(format!("no reply {index}")))??);
        }
        pipeline
            .query_async(&mut Replay(values))
            .await
            .map_err(Error::Redis)
    }

    /// The commands of one slot (None: a keyless command), in order, by runs of consecutive
    /// commands of one [`Lane`] of the slot's shard. A run for the master's shared connection
    /// (cold reads, writes, hot reads it must serve) goes to it as one pipeline; a run of hot
    /// reads a replica or the cache serves goes at once, each read as a single command (they
    /// change nothing, so their order among themselves does not show); commands that may
    /// block and keyless ones go alone. Each run is sent once the one before it is answered,
    /// so a hot read after a write of its key reads it (it is routed again when sent). A
    /// command of a master run that was redirected or refused (`MOVED`, `ASK`, `TRYAGAIN`…:
    /// it did not run) is sent again as a single command, which follows it, in the run's order.
    async fn send_slot(&self, slot: Option<u16>, cmds: Vec<(usize, Cmd)>) -> Vec<IndexedReply> {
        let mut replies = Vec::with_capacity(cmds.len());
        let mut run: Vec<(usize, Cmd)> = Vec::new();
        let mut current: Option<(Lane, Arc<Shard>)> = None;
        for (index, cmd) in cmds {
            let lane = slot
                .and_then(|slot| self.layout().shard_for(slot).cloned())
                .map(|shard| (shard.lane(&arguments(&cmd)), shard));
            let joins = matches!((&current, &lane), (Some((a, s)), Some((b, t)))
                if a == b && Arc::ptr_eq(s, t));
            if !joins && let Some((lane, shard)) = current.take() {
                self.send_run(lane, &shard, std::mem::take(&mut run), &mut replies)
                    .await;
            }
            match lane {
                Some((Lane::Master | Lane::OffMaster, _)) => {
                    current = lane;
                    run.push((index, cmd));
                }
                Some((Lane::Alone, _)) | None => {
                    replies.push((index, as_reply(self.send(&cmd).await)));
                }
            }
        }
        if let Some((lane, shard)) = current {
            self.send_run(lane, &shard, run, &mut replies).await;
        }
        replies
    }

    /// Sends a run of `lane` (see `send_slot`); its replies are pushed onto `replies` in order.
    async fn send_run(
        &self,
        lane: Lane,
        shard: &Shard,
        run: Vec<(usize, Cmd)>,
        replies: &mut Vec<IndexedReply>,
    ) {
        if lane == Lane::Master {
            return self.send_master_run(shard, run, replies).await;
        }
        let sent = join_all(run.iter().map(|(_, cmd)| self.send(cmd))).await;
        for ((index, _), reply) in run.iter().zip(sent) {
            replies.push((*index, as_reply(reply)));
        }
    }

    /// Sends `run` to `shard`'s master as one pipeline (see `send_slot`); its replies are
    /// pushed onto `replies` in order.
    async fn send_master_run(
        &self,
        shard: &Shard,
        run: Vec<(usize, Cmd)>,
        replies: &mut Vec<IndexedReply>,
    ) {
        let mut pipeline = redis::pipe();
        // Every command's reply, error replies included: a redirected one is sent again.
        pipeline.ignore_errors();
        let mut indices = Vec::with_capacity(run.len());
        for (index, cmd) in run {
            indices.push(index);
            pipeline.add_command(cmd);
        }
        match shard.send_pipeline(&pipeline).await {
            Ok(Value::Array(values)) if values.len() == indices.len() => {
                for ((index, value), cmd) in
                    indices.into_iter().zip(values).zip(pipeline.cmd_iter())
                {
                    let reply = match &value {
                        Value::ServerError(e) if not_run(Some(e.code())) => {
                            as_reply(self.send(cmd).await)
                        }
                        _ => Ok(value),
                    };
                    replies.push((index, reply));
                }
            }
            Ok(other) => {
                let e = Error::BadRequest(format!("unexpected pipeline reply: {other:?}"));
                replies.extend(indices.into_iter().map(|index| (index, Err(e.clone()))));
            }
            Err(e) => replies.extend(indices.into_iter().map(|index| (index, Err(e.clone())))),
        }
    }

    async fn send_transaction(&self, pipeline: &Pipeline) -> Result<Value, Error> {
        let layout = self.layout();
        let mut chosen: Option<(u16, Arc<Shard>)> = None;
        for cmd in pipeline.cmd_iter() {
            let args = arguments(cmd);
            let (slot, shard) = self.pick(&layout, &args)?;
            if command_slot(&shard.commands(), &args) == SlotOf::Anywhere {
                continue;
            }
            match &chosen {
                Some((s, _)) if *s != slot => return Err(Error::CrossSlot),
                _ => chosen = Some((slot, shard)),
            }
        }
        let mut shard = match chosen {
            Some((_, shard)) => shard,
            None => self.pick(&layout, &[b"PING"])?.1,
        };
        // A transaction a node redirects ran nothing (its queued commands, or its EXEC, were
        // refused), so a `MOVED` sends it whole to the slot's new master, as `send` does a
        // command. An `ASK` is returned: its `ASKING` would cover `MULTI` only.
        for _ in 0..MAX_REDIRECTS {
            let reply = shard.send_pipeline(pipeline).await;
            let Err(Error::Redis(e)) = &reply else {
                return reply;
            };
            match transaction_redirect(e) {
                Some(Redirect::Moved { slot, address }) => {
                    let deadline = Instant::now() + self.options.connect_timeout;
                    match self.shard_at(Some(slot), &address, deadline).await {
                        Some(next) => shard = next,
                        None => return reply,
                    }
                }
                Some(Redirect::Ask { .. }) => {
                    self.refresh_now().await;
                    return reply;
                }
                None => return reply,
            }
        }
        shard.send_pipeline(pipeline).await
    }

    /// The shard `args` would go to, or None for a cross-slot command or an unserved slot.
    /// The shard `args` goes to in the layout known now, or why there is none.
    pub fn pick_now(&self, args: &[&[u8]]) -> Result<Arc<Shard>, Error> {
        self.pick(&read(&self.layout), args).map(|(_, s)| s)
    }

    pub fn shard_of(&self, args: &[&[u8]]) -> Option<Arc<Shard>> {
        self.pick(&read(&self.layout), args).ok().map(|(_, s)| s)
    }

    /// The shard serving `key`.
    pub fn shard_for_key(&self, key: &[u8]) -> Result<Arc<Shard>, Error> {
        self.shard_for_slot(hotkey_protocol::cluster::key_slot(key))
    }

    /// The shard serving `slot`.
    pub fn shard_for_slot(&self, slot: u16) -> Result<Arc<Shard>, Error> {
        self.layout()
            .shard_for(slot)
            .cloned()
            .ok_or_else(|| self.unserved(slot))
    }

    /// Every shard followed now.
    pub fn shards(&self) -> Vec<Arc<Shard>> {
        self.layout()
            .shards
            .iter()
            .map(|e| e.shard.clone())
            .collect()
    }

    /// Every shard with its slots, in layout order (by lowest slot).
    pub fn shard_slots(&self) -> Vec<(Arc<Shard>, Vec<SlotRange>)> {
        self.layout()
            .shards
            .iter()
            .map(|e| (e.shard.clone(), e.slots.clone()))
            .collect()
    }

    /// Every shard with its master and slots.
    pub fn views(&self) -> Vec<ShardView> {
        self.layout()
            .shards
            .iter()
            .map(|e| ShardView {
                master: e.master.address(),
                slots: e.slots.clone(),
                connected: e.shard.is_connected(),
                metrics: e.shard.metrics(),
            })
            .collect()
    }

    /// The counters of every shard, past ones included.
    pub fn metrics(&self) -> Metrics {
        self.layout()
            .shards
            .iter()
            .fold(*lock(&self.retired), |sum, e| sum.plus(&e.shard.metrics()))
    }
}

/// The commands of a pipeline for one slot (None: a single keyless command), each with its
/// place in the pipeline.
type SlotGroup = (Option<u16>, Vec<(usize, Cmd)>);

/// A command's reply with its place in the pipeline.
type IndexedReply = (usize, Result<Value, Error>);

/// A connection that answers a pipeline with its replies already in hand, without I/O: the
/// pipeline's own rules then shape them as from one server (the replies of commands it
/// `ignore()`s left out, an error reply its error unless it `ignore_errors()`), rules the
/// `redis` crate keeps private.
struct Replay(Vec<Value>);

impl redis::aio::ConnectionLike for Replay {
    fn req_packed_command<'a>(&'a mut self, _: &'a Cmd) -> redis::RedisFuture<'a, Value> {
        Box::pin(async { Ok(Value::Nil) })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        _: &'a Pipeline,
        _: usize,
        _: usize,
    ) -> redis::RedisFuture<'a, Vec<Value>> {
        let replies = std::mem::take(&mut self.0);
        Box::pin(async move { Ok(replies) })
    }

    fn get_db(&self) -> i64 {
        0
    }
}

/// A command's outcome as its reply in a pipeline: an error reply (`WRONGTYPE`) is the
/// command's reply; an error without one (no connection) stays an error.
fn as_reply(sent: Result<Reply, Error>) -> Result<Value, Error> {
    match sent {
        Ok(reply) => owned(reply),
        Err(Error::Redis(e)) => ServerError::try_from(e)
            .map(Value::ServerError)
            .map_err(Error::Redis),
        Err(e) => Err(e),
    }
}

/// The redirection of a transaction a node refused: the reply's own (`EXEC` refused whole), or
/// its first queued command's, which `EXECABORT` carries.
fn transaction_redirect(e: &redis::RedisError) -> Option<Redirect> {
    Redirect::from_redis(e).or_else(|| {
        let errors = e.clone().into_server_errors()?;
        let (_, first) = errors.first()?;
        Redirect::parse(first.code(), first.details()?)
            .ok()
            .flatten()
    })
}

/// The reply as a `Value` (a keyless command is never cached, but the type allows it).
fn owned(reply: Reply) -> Result<Value, Error> {
    Ok(match reply {
        Reply::Owned(value) => value,
        Reply::Cached(cached) => cached.value.clone(),
    })
}

/// `cmd` on every shard's master at once; the replies in the shards' order, or the first
/// error.
async fn on_every_master(shards: &[Arc<Shard>], cmd: &Cmd) -> Result<Vec<Value>, Error> {
    let tasks: Vec<_> = shards
        .iter()
        .map(|shard| {
            let (shard, cmd) = (shard.clone(), cmd.clone());
            tokio::spawn(async move { owned(shard.send(&cmd, &arguments(&cmd)).await?) })
        })
        .collect();
    let mut replies = Vec::with_capacity(tasks.len());
    for task in tasks {
        replies.push(task.await.map_err(|e| Error::BadRequest(e.to_string()))??);
    }
    Ok(replies)
}

/// The replies of every master merged into one, as the command's group says.
fn merge(aggregate: Aggregate, replies: Vec<Value>) -> Result<Value, Error> {
    let unmerged = |reply: &Value| {
        Error::BadRequest(format!(
            "a master's reply cannot be merged ({aggregate:?}): {reply:?}"
        ))
    };
    match aggregate {
        Aggregate::Sum => {
            let mut sum = 0i64;
            for reply in &replies {
                let Value::Int(n) = reply else {
                    return Err(unmerged(reply));
                };
                sum = sum.saturating_add(*n);
            }
            Ok(Value::Int(sum))
        }
        Aggregate::Concat => {
            let mut all = Vec::new();
            for reply in replies {
                match reply {
                    Value::Array(items) | Value::Set(items) => all.extend(items),
                    other => return Err(unmerged(&other)),
                }
            }
            Ok(Value::Array(all))
        }
        Aggregate::AllOk => {
            for reply in &replies {
                if !is_ok(reply) {
                    return Err(unmerged(reply));
                }
            }
            Ok(Value::Okay)
        }
        _ => Err(Error::BadRequest(format!("no merge for {aggregate:?}"))),
    }
}

fn is_ok(reply: &Value) -> bool {
    match reply {
        Value::Okay => true,
        Value::SimpleString(s) => s == "OK",
        _ => false,
    }
}

/// The one reply every node gave (`PONG`, a script's SHA), or an error naming the first that
/// differs.
fn agree(replies: Vec<Value>) -> Result<Value, Error> {
    let mut replies = replies.into_iter();
    let Some(first) = replies.next() else {
        return Err(Error::MasterUnavailable(Unavailable::NoMasters));
    };
    match replies.find(|r| *r != first) {
        None => Ok(first),
        Some(other) => Err(Error::BadRequest(format!(
            "the nodes disagree: {first:?} and {other:?}"
        ))),
    }
}

/// A layout from `info` that could not be read, and why.
fn topology_error(info: &ConnectionInfo, source: ProtocolError) -> Error {
    Error::Topology {
        node: info.addr().to_string(),
        source,
    }
}
