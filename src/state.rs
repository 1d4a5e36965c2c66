//! The module's state and what happens to it: the filter's path for every command, the tick,
//! client and configuration changes. Plain Rust over the [`Command`] trait, so the whole path
//! is unit-tested with fake commands.

use hotkey_protocol::{Heartbeat, Message};

use crate::client_db::ClientDbs;
use crate::clock::is_due;
use crate::cluster::ClusterView;
use crate::command_table::{Args, CommandKind, CommandTable, Shape, parse_count};
use crate::events::Events;
use crate::ffi::{FilterCommand, MainThread};
use crate::hot_set::{Change, HotSet, Rules};
use crate::replicas::{HealthRules, ReplicaSet, Replication};
use crate::reports::ReportFeed;
use crate::sampler::{Sampler, SamplerConfig};
use crate::tracker::{Access, Tracker, TrackerConfig, key_hash};

/// A command as the filter sees it.
pub trait Command: Args {
    /// The id of the client running it; None where the server cannot say (Redis 7.0).
    fn client_id(&self) -> Option<u64>;
    /// Asks the server for the key positions of a command whose keys the table cannot find;
    /// `f(position, access)` with the access when the server gives one.
    fn movable_keys(&self, f: &mut dyn FnMut(usize, Option<Access>));
}

mod answers;
mod info;

pub use answers::{EventChannel, RouteAnswer, RoutesSnapshot};

impl Command for FilterCommand {
    #[inline]
    fn client_id(&self) -> Option<u64> {
        FilterCommand::client_id(self)
    }

    fn movable_keys(&self, f: &mut dyn FnMut(usize, Option<Access>)) {
        FilterCommand::movable_keys(self, f)
    }
}

/// Every knob, as set by the configs (the channel name aside: see `config::CHANNEL`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    pub enabled: bool,
    pub capacity: usize,
    pub half_life_ms: u64,
    pub max_key_bytes: usize,
    pub sampler: SamplerConfig,
    pub tick_ms: u64,
    pub heartbeat_ms: u64,
    pub rules: Rules,
    pub health: HealthRules,
}

/// Counters shown by `INFO hotkey`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub commands_seen: u64,
    pub commands_sampled: u64,
    pub keys_counted: u64,
    pub keys_too_long: u64,
    pub unknown_commands: u64,
    pub movable_key_lookups: u64,
    /// Reads that routers reported serving off this node (`HOTKEY.REPORT`).
    pub reported_reads: u64,
}

/// Everything the module keeps.
pub struct State {
    settings: Settings,
    tracker: Tracker,
    table: CommandTable,
    sampler: Sampler,
    /// Some where the filter knows the client (Redis ≥ 7.2, Valkey): each client's database.
    client_dbs: Option<ClientDbs>,
    /// Whether the filter follows `SELECT` per client now. Only while a database other than 0
    /// holds keys: following costs every command a look at its name, even a skipped one, and
    /// with all keys in database 0 every access is in database 0 anyway.
    follow_dbs: bool,
    stats: Stats,
    replica: bool,
    /// `databases`: a `SELECT` outside 0..databases fails, so it changes nothing.
    databases: u32,
    commands_per_sec: f64,
    hot_set: HotSet,
    replicas: ReplicaSet,
    events: Events,
    /// Reported reads waiting to be fed to the tracker.
    reports: ReportFeed,
    last_tick_ms: u64,
    seen_at_last_tick: u64,
    /// When `INFO replication` was last read (None: never).
    last_replication_ms: Option<u64>,
    /// Whether the server runs in cluster mode, and the node's place there as last read.
    cluster_mode: bool,
    cluster: Option<ClusterView>,
    last_cluster_ms: Option<u64>,
}

static STATE: MainThread<Option<State>> = MainThread::new(None);

/// How often a cluster node reads `CLUSTER NODES` (see [`State::cluster_due`]).
const CLUSTER_READ_MS: u64 = 1000;

/// How often a node without replicas reads `INFO replication` (see [`State::replication_due`]).
const REPLICATION_IDLE_MS: u64 = 1000;

/// Runs `f` on the state, if the module is loaded.
pub fn with<R>(f: impl FnOnce(&mut State) -> R) -> Option<R> {
    STATE.with(|s| s.as_mut().map(f)).flatten()
}

/// Installs (or, on unload, removes) the state.
pub fn install(state: Option<State>) {
    STATE.with(|s| *s = state);
}

/// The filter's entry: called by the server before every command.
#[inline]
pub fn on_command(cmd: &FilterCommand) {
    STATE.with(|s| {
        if let Some(s) = s {
            s.on_command(cmd);
        }
    });
}

/// A client connected or disconnected.
pub fn client_changed(id: u64, connected: bool) {
    with(|s| {
        if let Some(dbs) = &mut s.client_dbs {
            if connected {
                dbs.connect(id);
            } else {
                dbs.disconnect(id);
            }
        }
    });
}

impl State {
    /// A fresh state: an empty tracker of the configured capacity.
    pub fn new(
        settings: Settings,
        table: CommandTable,
        client_dbs: Option<ClientDbs>,
        now_ms: u64,
    ) -> State {
        let tracker = Tracker::new(
            TrackerConfig {
                capacity: settings.capacity,
                half_life_ms: settings.half_life_ms,
            },
            now_ms,
        );
        State {
            settings,
            tracker,
            table,
            sampler: Sampler::new(settings.sampler, now_ms ^ 0x9E37_79B9_7F4A_7C15),
            client_dbs,
            follow_dbs: false,
            stats: Stats::default(),
            replica: false,
            databases: 16,
            commands_per_sec: 0.0,
            hot_set: HotSet::new(settings.rules),
            replicas: ReplicaSet::default(),
            events: Events::new(),
            reports: ReportFeed::default(),
            last_tick_ms: now_ms,
            seen_at_last_tick: 0,
            last_replication_ms: None,
            cluster_mode: false,
            cluster: None,
            last_cluster_ms: None,
        }
    }

    /// The filter's path. The common case — a command skipped by sampling — is a counter, a
    /// flag and the sampler's decrement; a counted one adds a table lookup and one tracker
    /// update per key. Nothing here allocates, locks, or makes a syscall, except for a counted
    /// command with movable keys (`SORT`, `ZUNION`, `XREAD`, …): only the server can find its
    /// keys, so it is asked, and it allocates the positions it answers with.
    #[inline]
    pub fn on_command<C: Command>(&mut self, cmd: &C) {
        self.stats.commands_seen += 1;
        if !self.settings.enabled {
            return;
        }
        if self.sampler.skip() {
            // A skipped SELECT still moves its client.
            if self.follow_dbs
                && cmd.get(0).is_some_and(may_change_db)
                && let Some(kind) = self.table.lookup(cmd).map(|s| s.kind)
            {
                self.track_db(cmd, kind);
            }
            return;
        }
        self.count(cmd);
    }

    fn count<C: Command>(&mut self, cmd: &C) {
        self.stats.commands_sampled += 1;
        let spec = match self.table.lookup_shape(cmd) {
            // The common case (`GET k`, `SET k v`): the name table says where the key is, so
            // neither the spec nor the argument count is read.
            Some(Shape::OneKey(one)) => {
                // A replica's writes arrive from its master, which counted them already.
                if self.replica && one.command == Access::Write {
                    return;
                }
                let db = self.db_of(cmd);
                self.record(cmd, db, one.position, one.key);
                return;
            }
            Some(Shape::Spec(spec)) => spec,
            None => {
                self.stats.unknown_commands += 1;
                return;
            }
        };
        match spec.kind {
            CommandKind::Keys => {}
            CommandKind::Keyless => return,
            kind @ (CommandKind::Select | CommandKind::Reset | CommandKind::Script) => {
                self.track_db(cmd, kind);
                return;
            }
        }
        if self.replica && spec.access == Access::Write {
            return;
        }
        let db = self.db_of(cmd);
        let State {
            tracker,
            stats,
            settings,
            sampler,
            ..
        } = self;
        if spec.movable {
            stats.movable_key_lookups += 1;
        }
        let mut record = |pos: usize, access: Access| {
            record_key(
                tracker,
                stats,
                settings,
                sampler.weight(),
                cmd,
                db,
                pos,
                access,
            );
        };
        if spec.movable {
            let fallback = spec.access;
            cmd.movable_keys(&mut |pos, access| record(pos, access.unwrap_or(fallback)));
        } else {
            spec.for_each_key(cmd, record);
        }
    }

    /// The database of the command's keys: the client's while databases are followed, else 0.
    #[inline]
    fn db_of<C: Command>(&self, cmd: &C) -> u32 {
        match &self.client_dbs {
            Some(dbs) if self.follow_dbs => cmd.client_id().map_or(0, |id| dbs.db_of(id)),
            _ => 0,
        }
    }

    #[inline]
    fn record<C: Command>(&mut self, cmd: &C, db: u32, pos: usize, access: Access) {
        let weight = self.sampler.weight();
        record_key(
            &mut self.tracker,
            &mut self.stats,
            &self.settings,
            weight,
            cmd,
            db,
            pos,
            access,
        );
    }

    /// Follows SELECT, RESET and script starts (`kind`, from the table), so later commands
    /// land in the right database.
    fn track_db<C: Command>(&mut self, cmd: &C, kind: CommandKind) {
        if !self.follow_dbs {
            return;
        }
        let (Some(dbs), Some(id)) = (&mut self.client_dbs, cmd.client_id()) else {
            return;
        };
        match kind {
            CommandKind::Select => {
                let db = cmd.get(1).and_then(parse_count);
                if let Some(db) = db.and_then(|d| u32::try_from(d).ok())
                    && db < self.databases
                    && cmd.count() == 2
                {
                    dbs.select(id, db);
                }
            }
            CommandKind::Reset => dbs.select(id, 0),
            CommandKind::Script => dbs.script_started(id),
            CommandKind::Keys | CommandKind::Keyless => {}
        }
    }

    /// Whether a tick is due at `now_ms` (see [`is_due`]).
    pub fn tick_due(&self, now_ms: u64) -> bool {
        is_due(self.last_tick_ms, now_ms, self.settings.tick_ms)
    }

    /// Whether the tick should read `INFO replication` at `now_ms`: on every tick while the
    /// node has replicas or is one (their lag moves), otherwise once a second, since a replica
    /// that connects also fires a server event that ticks at once. Reading INFO is most of a
    /// tick's cost (about 24,000 instructions of 27,000 on Redis 7.0).
    pub fn replication_due(&self, now_ms: u64) -> bool {
        let involved = self.replicas.is_replica() || !self.replicas.all().is_empty();
        self.last_replication_ms
            .is_none_or(|last| involved || is_due(last, now_ms, REPLICATION_IDLE_MS))
    }

    /// Whether the tick should read `CLUSTER NODES` at `now_ms`: in cluster mode, once a
    /// second (slots move rarely; a key whose slot moved away leaves within a second), at
    /// once when `now` (a role change), and every tick while the node has no place yet or is
    /// a master without slots (a promoted replica claims its slots just after its role change).
    pub fn cluster_due(&self, now_ms: u64, now: bool) -> bool {
        let unsettled = self
            .cluster
            .as_ref()
            .is_none_or(|c| c.role == hotkey_protocol::Role::Master && c.slots.is_empty());
        self.cluster_mode
            && (now
                || unsettled
                || self
                    .last_cluster_ms
                    .is_none_or(|last| is_due(last, now_ms, CLUSTER_READ_MS)))
    }

    /// The periodic tick: retunes sampling from the load, advances the decay clock, takes in
    /// what `INFO replication` and `CLUSTER NODES` say (when the caller read them), and runs
    /// the detector. Returns the messages to publish, in order.
    pub fn tick(
        &mut self,
        now_ms: u64,
        replication: Option<&Replication>,
        cluster: Option<ClusterView>,
    ) -> Vec<Message> {
        let elapsed = now_ms.saturating_sub(self.last_tick_ms);
        // The next tick comes about as long from now as this one came after the last: the
        // cron's period when tick-ms is below it. Bounded, so that one tick delayed by a slow
        // command does not make the next period's accesses count as made far ahead.
        let period = elapsed.clamp(self.settings.tick_ms, 2 * self.settings.tick_ms);
        if elapsed > 0 {
            let seen = self.stats.commands_seen - self.seen_at_last_tick;
            self.commands_per_sec = seen as f64 * 1000.0 / elapsed as f64;
            self.sampler.retune(self.commands_per_sec);
            self.seen_at_last_tick = self.stats.commands_seen;
            self.last_tick_ms = now_ms;
        }
        self.tracker.advance(now_ms, period);
        let tracker = &mut self.tracker;
        self.reports.drain(elapsed, |db, key, reads| {
            tracker.record(db, key, key_hash(db, key), Access::Read, reads);
        });
        let mut messages = Vec::new();
        if let Some(view) = cluster {
            self.last_cluster_ms = Some(now_ms);
            messages.extend(self.follow_cluster(view));
        }
        if let Some(info) = replication {
            self.last_replication_ms = Some(now_ms);
            if self.replicas.update(info, self.settings.health) {
                messages.push(self.events.replicas(self.replicas.healthy()));
            }
        }
        let replicas = self.replicas_take_reads();
        let changes = self.hot_set.tick(now_ms, &self.tracker, replicas);
        messages.extend(self.events.changes(&changes));
        let heartbeat = Heartbeat::new(
            self.hot_set.len() as u64,
            self.replicas.healthy_count() as u64,
        );
        messages.extend(
            self.events
                .heartbeat(now_ms, self.settings.heartbeat_ms, heartbeat),
        );
        messages
    }

    /// Takes in the node's place in the cluster: its role for the events, and the slots its
    /// shard serves; keys of slots that moved away leave the hot set (their `cold` messages).
    fn follow_cluster(&mut self, view: ClusterView) -> Vec<Message> {
        self.events.set_node(&view.node_id, view.role);
        let moved = self.cluster.as_ref().is_none_or(|c| c.slots != view.slots);
        let changes = if moved {
            self.hot_set.set_served(Some(view.slots.clone()))
        } else {
            Vec::new()
        };
        self.cluster = Some(view);
        self.events.changes(&changes)
    }

    /// Whether hot reads may go to replicas: this node is a master with a healthy replica.
    pub fn replicas_take_reads(&self) -> bool {
        !self.replicas.is_replica() && self.replicas.healthy_count() > 0
    }

    /// The messages for changes made outside the tick (`HOTKEY.PIN`, `HOTKEY.UNPIN`).
    pub fn announce(&mut self, changes: &[Change]) -> Vec<Message> {
        self.events.changes(changes)
    }

    /// Counts reads that a router served off this node (`HOTKEY.REPORT`).
    /// Reads of `key` a router served elsewhere: fed to the tracker over the next second
    /// (see [`ReportFeed`]), or at once when the feed is full.
    pub fn report(&mut self, db: u32, key: &[u8], reads: u64) {
        if !self.reports.add(db, key, reads as f64) {
            self.tracker
                .record(db, key, key_hash(db, key), Access::Read, reads as f64);
        }
        self.stats.reported_reads = self.stats.reported_reads.saturating_add(reads);
    }

    /// The database the tracker files a caller's key under: the caller's own while the module
    /// follows databases per client, else 0, where the filter counts every access.
    pub fn tracked_db(&self, db: u32) -> u32 {
        if self.follow_dbs { db } else { 0 }
    }

    /// The hot-set entry of `key` in `db`: pinned there, or detected where the tracker files
    /// it (see [`State::tracked_db`]).
    pub fn hot_entry(&self, db: u32, key: &[u8]) -> Option<&crate::hot_set::HotEntry> {
        let found = |db| self.hot_set.get(db, key, key_hash(db, key));
        found(db).or_else(|| {
            let tracked = self.tracked_db(db);
            (tracked != db).then(|| found(tracked)).flatten()
        })
    }

    /// Starts following each client's database, from `clients` (every connected client and
    /// its database now), or stops. Called from the tick when a database other than 0 starts or
    /// stops holding keys; a no-op where the filter cannot tell clients apart.
    pub fn follow_databases(&mut self, clients: Option<ClientDbs>) {
        if self.client_dbs.is_none() {
            return;
        }
        self.follow_dbs = clients.is_some();
        if let Some(clients) = clients {
            self.client_dbs = Some(clients);
        }
    }

    /// How accesses are given their database, as `INFO` shows it.
    pub fn db_attribution(&self) -> &'static str {
        match (&self.client_dbs, self.follow_dbs) {
            (None, _) => "db0_only",
            (Some(_), false) => "db0",
            (Some(_), true) => "per_client",
        }
    }

    /// Applies changed settings; the tracker keeps its keys (a new capacity keeps the heaviest).
    pub fn apply(&mut self, settings: Settings) {
        let old = self.settings;
        self.settings = settings;
        if settings.capacity != old.capacity {
            self.tracker.resize(settings.capacity);
        }
        if settings.half_life_ms != old.half_life_ms {
            self.tracker.set_half_life_ms(settings.half_life_ms);
        }
        if settings.sampler != old.sampler {
            self.sampler.set_config(settings.sampler);
        }
        if settings.rules != old.rules {
            self.hot_set.set_rules(settings.rules);
        }
    }

    /// Heap bytes held by the module.
    pub fn memory_bytes(&self) -> usize {
        self.tracker.memory_bytes()
            + self.table.memory_bytes()
            + self.client_dbs.as_ref().map_or(0, ClientDbs::memory_bytes)
    }
}

/// Counts the key at argument `pos` of `cmd`, unless it is missing or too long.
#[inline]
#[allow(clippy::too_many_arguments)]
fn record_key<C: Command>(
    tracker: &mut Tracker,
    stats: &mut Stats,
    settings: &Settings,
    weight: f64,
    cmd: &C,
    db: u32,
    pos: usize,
    access: Access,
) {
    let Some(key) = cmd.get(pos) else {
        return;
    };
    if key.len() > settings.max_key_bytes {
        stats.keys_too_long += 1;
        return;
    }
    tracker.record(db, key, key_hash(db, key), access, weight);
    stats.keys_counted += 1;
}

/// True for the names of commands that change which database later commands run in:
/// SELECT, RESET and the script commands. Cheap: a length test first.
#[inline]
fn may_change_db(name: &[u8]) -> bool {
    const NAMES: [&[u8]; 8] = [
        b"select",
        b"reset",
        b"eval",
        b"evalsha",
        b"eval_ro",
        b"evalsha_ro",
        b"fcall",
        b"fcall_ro",
    ];
    matches!(name.len(), 4..=10) && NAMES.iter().any(|n| name.eq_ignore_ascii_case(n))
}

#[cfg(test)]
mod tests;
