//! # hotkey
//!
//! A Redis module that counts every key access, keeps a decayed read and write rate per key in
//! a bounded summary, decides which keys are hot, publishes the changes, and tells clients
//! where each operation should go.
//!
//! # Layout
//! - `lib.rs` — this table of contents: the commands, configs and handlers the module hands
//!   the server, and what load, unload and the tick do.
//! - [`ffi`] — the boundary: every function the server calls, each under a panic guard, and
//!   every raw call into it. Depends on nothing above it.
//! - [`state`] — the module's state and the filter's path, over a [`state::Command`] trait;
//!   one method per thing a command asks; the `INFO` section.
//! - [`command_table`] — which arguments are keys and whether each is read or written, from
//!   the server's `COMMAND` reply (in `hotkey-protocol`: the router applies the same rule).
//! - [`client_db`] — each client's selected database, for the filter.
//! - [`sampler`] — adaptive sampling when the node is busy.
//! - [`tracker`] — the bounded, time-decayed heavy-hitter summary (pure Rust).
//! - [`hot_set`] — the detector: which keys are hot, with hysteresis (pure Rust).
//! - [`replicas`] — the replicas from `INFO replication` and which are healthy.
//! - [`cluster`] — the node's id, role and slots in a Redis Cluster, from `CLUSTER NODES`.
//! - [`reports`] — reads reported by routers, fed to the tracker over the next second.
//! - [`events`] — the numbered messages on the pub/sub channel (format: `hotkey-protocol`).
//! - [`commands`] — one file per `HOTKEY.*` command: parse, ask the state, reply.
//! - [`config`] — the `hotkey.*` configs, one spec each.
//! - [`server`] — what the module asks of the server with commands: `COMMAND`, `CLIENT LIST`,
//!   `CONFIG GET`, `INFO replication`, its own address; publishing.
//! - [`text`] — the rule that only printable ASCII leaves the module; [`clock`] — time.
// A panic on the server's thread takes Redis down (the ffi guard catches it, but the command or
// event is lost): the module's own code never unwraps. `unsafe` is denied by the workspace
// and allowed in `ffi` alone.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod client_db;
pub mod clock;
pub mod cluster;
pub mod commands;
pub use hotkey_protocol::command_table;
pub mod config;
pub mod events;
pub mod ffi;
pub mod hot_set;
pub mod replicas;
pub mod reports;
pub mod sampler;
pub mod server;
pub mod state;
pub mod text;
pub mod tracker;

use redis_module::{Context, ContextFlags};

use crate::client_db::ClientDbs;
use crate::clock::now_ms;
use crate::cluster::ClusterView;
use crate::ffi::{InfoSink, LogLevel, Module, ModuleCommand};
use crate::state::State;

#[global_allocator]
static ALLOCATOR: ffi::ModuleAlloc = ffi::ModuleAlloc;

/// The module as the server sees it.
pub static MODULE: Module = Module {
    name: c"hotkey",
    version: 1,
    commands: &COMMANDS,
    configs: &config::CONFIGS,
    acl_category: "hotkey",
    check_args: config::check_module_args,
    load,
    unload,
    config_changed: || {
        state::with(|s| s.apply(config::settings()));
    },
    info,
    cron,
    role_changed: |ctx, replica| {
        state::with(|s| s.set_replica(replica));
        // In a cluster a failover also moves the shard's slots and the node's channel.
        tick(ctx, now_ms(), true);
    },
    modules_changed,
    replicas_changed: |ctx| tick(ctx, now_ms(), true),
    client_changed: state::client_changed,
    filter: state::on_command,
};

module!(MODULE);

/// The commands, with their key positions and ACL categories (`hotkey` is added where the
/// server lets modules add categories, Redis ≥ 7.4).
static COMMANDS: [ModuleCommand; 6] = [
    // HOTKEY.TOP [COUNT n] [BY total|reads|writes] [DB n] [WINDOW 1|10|60]
    // Not "fast": it sorts the summary (O(capacity log capacity)).
    ModuleCommand {
        name: "hotkey.top",
        run: commands::top::run,
        docs: &commands::top::DOCS,
        flags: "readonly",
        keys: (0, 0, 0),
        acl_categories: "read slow",
    },
    // HOTKEY.ROUTE key [READ|WRITE] [DB n]
    ModuleCommand {
        name: "hotkey.route",
        run: commands::route::run,
        docs: &commands::route::DOCS,
        flags: "readonly fast",
        keys: (1, 1, 1),
        acl_categories: "read fast",
    },
    // HOTKEY.ROUTES
    ModuleCommand {
        name: "hotkey.routes",
        run: commands::routes::run,
        docs: &commands::routes::DOCS,
        flags: "readonly",
        keys: (0, 0, 0),
        acl_categories: "read slow",
    },
    // HOTKEY.PIN key [TTL seconds] [DB n]
    ModuleCommand {
        name: "hotkey.pin",
        run: commands::pin::run,
        docs: &commands::pin::DOCS,
        flags: "admin",
        keys: (1, 1, 1),
        acl_categories: "admin slow dangerous",
    },
    // HOTKEY.UNPIN key [DB n]
    ModuleCommand {
        name: "hotkey.unpin",
        run: commands::unpin::run,
        docs: &commands::unpin::DOCS,
        flags: "admin",
        keys: (1, 1, 1),
        acl_categories: "admin slow dangerous",
    },
    // HOTKEY.REPORT key count [key count ...]
    ModuleCommand {
        name: "hotkey.report",
        run: commands::report::run,
        docs: &commands::report::DOCS,
        flags: "",
        keys: (0, 0, 0),
        acl_categories: "write slow",
    },
];

fn load(ctx: &Context) -> Result<(), String> {
    let table = server::read_command_table(ctx);
    if table.is_empty() {
        return Err("could not read the COMMAND table".into());
    }
    let databases = server::config_get_u32(ctx, "databases").unwrap_or(16);
    let can_follow = ffi::per_client_db_available();
    let follow = can_follow && ffi::other_databases_have_keys(ctx, databases);
    // CLIENT LIST only when following from the start (the tick seeds it when following starts
    // later): on Valkey 8.1, after a MODULE UNLOAD, CLIENT LIST reads the freed command of any
    // client whose last command was the old module's, and can crash the server.
    let client_dbs = can_follow.then(ClientDbs::default);
    let mut state = State::new(config::settings(), table, client_dbs, now_ms());
    state.set_replica(ctx.get_flags().contains(ContextFlags::SLAVE));
    state.set_databases(databases);
    state.set_cluster_mode(ctx.get_flags().contains(ContextFlags::CLUSTER));
    if follow {
        state.follow_databases(Some(server::connected_clients(ctx)));
    }
    state::install(Some(state));
    Ok(())
}

/// Drops the state and what the configs hold, so that a reload starts from nothing.
fn unload() {
    state::install(None);
    config::CHANNEL.clear();
}

fn info(out: &mut InfoSink) {
    state::with(|s| s.info(now_ms(), out));
}

fn cron(ctx: &Context) {
    let now = now_ms();
    if state::with(|s| s.tick_due(now)) == Some(true) {
        tick(ctx, now, false);
    }
}

/// The tick: replicas, cluster slots, detector, events; then whether to follow clients'
/// databases. `force` reads `INFO replication` and `CLUSTER NODES` now (after an event).
fn tick(ctx: &Context, now: u64, force: bool) {
    let read_info = force || state::with(|s| s.replication_due(now)) == Some(true);
    let replication = read_info.then(|| server::replication(ctx)).flatten();
    let read_cluster = state::with(|s| s.cluster_due(now, force)) == Some(true);
    // The node's id is known once the cluster is initialised, which is after modules load.
    let cluster = read_cluster
        .then(|| ClusterView::parse(&server::cluster_nodes(ctx)?, &ffi::cluster_node_id()?))
        .flatten();
    let Some((messages, (can_follow, following), databases)) = state::with(|s| {
        let messages = s.tick(now, replication.as_ref(), cluster);
        (messages, s.database_following(), s.databases())
    }) else {
        return;
    };
    server::publish(ctx, &messages);
    if !can_follow {
        return;
    }
    // Follow clients' databases only while another database holds keys (see State::follow_dbs).
    let needed = ffi::other_databases_have_keys(ctx, databases);
    if needed && !following {
        let clients = server::connected_clients(ctx);
        state::with(|s| s.follow_databases(Some(clients)));
    } else if !needed && following {
        state::with(|s| s.follow_databases(None));
    }
}

/// Another module's commands enter or leave the table.
fn modules_changed(ctx: &Context) {
    let table = server::read_command_table(ctx);
    if table.is_empty() {
        ffi::log(
            LogLevel::Warning,
            "hotkey: could not re-read the COMMAND table",
        );
    } else {
        state::with(|s| s.set_table(table));
    }
}
