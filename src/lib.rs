//! # hotkey
//!
//! A Redis module that counts every key access, keeps a decayed read and write rate per key in
//! a bounded summary, decides which keys are hot, publishes the changes, and tells clients
//! where each operation should go.
//!
//! # Layout
//! - `lib.rs` — this table of contents: registration, load and unload, events.
//! - [`ffi`] — every raw call into the server (the command filter, client events, ACL checks).
//! - [`state`] — the module's state and the filter's path, over a [`state::Command`] trait.
//! - [`command_table`] — which arguments are keys and whether each is read or written, from
//!   the server's `COMMAND` reply (in `hotkey-protocol`: the router applies the same rule).
//! - [`client_db`] — each client's selected database, for the filter.
//! - [`sampler`] — adaptive sampling when the node is busy.
//! - [`tracker`] — the bounded, time-decayed heavy-hitter summary (pure Rust).
//! - [`hot_set`] — the detector: which keys are hot, with hysteresis (pure Rust).
//! - [`replicas`] — the replicas from `INFO replication` and which are healthy.
//! - [`reports`] — reads reported by routers, fed to the tracker over the next second.
//! - [`events`] — the numbered messages on the pub/sub channel (format: `hotkey-protocol`).
//! - [`commands`] — one file per `HOTKEY.*` command.
//! - [`config`] — the `hotkey.*` configs; [`info`] — the `INFO hotkey` section.
//! - [`server`] — what the module asks of the server: `COMMAND`, `CLIENT LIST`, `CONFIG GET`,
//!   `INFO replication`, its own address; publishing.
#![deny(unsafe_code)]

pub mod client_db;
pub mod commands;
pub use hotkey_protocol::command_table;
pub mod config;
pub mod events;
pub mod ffi;
pub mod hot_set;
pub mod info;
pub mod replicas;
pub mod reports;
pub mod sampler;
pub mod server;
pub mod state;
pub mod tracker;

use std::sync::OnceLock;
use std::time::Instant;

use redis_module::configuration::ConfigurationFlags;
use redis_module::server_events::{ModuleChangeSubevent, ServerRole};
use redis_module::{
    Context, ContextFlags, InfoContext, RedisResult, RedisString, Status, redis_module,
};
use redis_module_macros::{
    cron_event_handler, module_changed_event_handler, role_changed_event_handler,
};

use crate::client_db::ClientDbs;
use crate::state::State;

/// `HOTKEY.TOP [COUNT n] [BY total|reads|writes] [DB n]`
fn hotkey_top(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    commands::top::run(ctx, args)
}

/// `HOTKEY.ROUTE key [READ|WRITE] [DB n]`
fn hotkey_route(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    commands::route::run(ctx, args)
}

/// `HOTKEY.ROUTES`
fn hotkey_routes(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    commands::routes::run(ctx, args)
}

/// `HOTKEY.PIN key [TTL seconds] [DB n]`
fn hotkey_pin(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    commands::pin::run(ctx, args)
}

/// `HOTKEY.UNPIN key [DB n]`
fn hotkey_unpin(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    commands::unpin::run(ctx, args)
}

/// `HOTKEY.REPORT key count [key count ...]`
fn hotkey_report(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    commands::report::run(ctx, args)
}

/// ACL categories per command, where the server lets modules set them (Redis ≥ 7.2, Valkey).
/// `hotkey` is added where the server lets modules add categories (Redis ≥ 7.4).
const ACL_CATEGORIES: [(&str, &str); 6] = [
    ("hotkey.top", "read slow"),
    ("hotkey.route", "read fast"),
    ("hotkey.routes", "read slow"),
    ("hotkey.pin", "admin slow dangerous"),
    ("hotkey.unpin", "admin slow dangerous"),
    ("hotkey.report", "write slow"),
];

fn info(ctx: &InfoContext, _for_crash_report: bool) {
    if let Err(e) = info::add_section(ctx) {
        // INFO goes on without the section; the log says why.
        redis_module::logging::log_warning(format!("hotkey: INFO section: {e}"));
    }
}

/// Milliseconds on a monotonic clock; only read off the filter's path.
pub(crate) fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

fn init(ctx: &Context, args: &[RedisString]) -> Status {
    let raw_args: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
    if let Err(e) = config::check_module_args(&raw_args) {
        ctx.log_warning(&format!("hotkey: {e}"));
        return Status::Err;
    }
    let table = server::read_command_table(ctx);
    if table.is_empty() {
        ctx.log_warning("hotkey: could not read the COMMAND table");
        return Status::Err;
    }
    let databases = server::config_get_u32(ctx, "databases").unwrap_or(16);
    let can_follow = ffi::per_client_db_available();
    let follow = can_follow && ffi::other_databases_have_keys(ctx, databases);
    // CLIENT LIST only when following from the start (the tick seeds it when following starts
    // later): on Valkey 8.1, after a MODULE UNLOAD, CLIENT LIST reads the freed command of any
    // client whose last command was the old module's, and can crash the server.
    let client_dbs = can_follow.then(|| {
        if follow {
            server::connected_clients(ctx)
        } else {
            ClientDbs::default()
        }
    });
    let mut state = State::new(config::settings(), table, client_dbs, now_ms());
    state.replica = ctx.get_flags().contains(ContextFlags::SLAVE);
    state.databases = databases;
    state.follow_dbs = follow;
    state::install(Some(state));
    // A server keeps a module's category after unload, and refuses to add it twice: then the
    // category is there already, which is all that matters.
    ffi::add_acl_category(ctx, "hotkey");
    for (command, categories) in ACL_CATEGORIES {
        if let Err(e) = ffi::set_acl_categories(ctx, command, categories) {
            ctx.log_warning(&format!("hotkey: {e}"));
            state::install(None);
            return Status::Err;
        }
    }
    if let Err(e) = ffi::register(ctx) {
        ctx.log_warning(&format!("hotkey: {e}"));
        state::install(None);
        return Status::Err;
    }
    Status::Ok
}

fn deinit(_ctx: &Context) -> Status {
    ffi::unregister();
    state::install(None);
    Status::Ok
}

#[cron_event_handler]
fn on_cron(ctx: &Context, _hz: u64) {
    let now = now_ms();
    if state::with(|s| s.tick_due(now)) == Some(true) {
        tick(ctx, now, false);
    }
}

/// The tick: replicas, detector, events; then whether to follow clients' databases.
fn tick(ctx: &Context, now: u64, force_replication: bool) {
    let read_info = force_replication || state::with(|s| s.replication_due(now)) == Some(true);
    let replication = read_info.then(|| server::replication(ctx)).flatten();
    let Some((messages, can_follow, following, databases)) = state::with(|s| {
        let messages = s.tick(now, replication.as_ref());
        (messages, s.client_dbs.is_some(), s.follow_dbs, s.databases)
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

/// A replica came online or went offline: tick now rather than at the next cron.
pub(crate) fn on_replica_change(ctx: &Context) {
    tick(ctx, now_ms(), true);
}

#[role_changed_event_handler]
fn on_role_changed(_ctx: &Context, role: ServerRole) {
    state::with(|s| s.replica = role == ServerRole::Replica);
}

/// Another module's commands enter or leave the table.
#[module_changed_event_handler]
fn on_module_changed(ctx: &Context, _event: ModuleChangeSubevent) {
    let table = server::read_command_table(ctx);
    if !table.is_empty() {
        state::with(|s| s.table = table);
    }
}

redis_module! {
    name: "hotkey",
    version: 1,
    allocator: (ffi::ModuleAlloc, ffi::ModuleAlloc),
    data_types: [],
    init: init,
    deinit: deinit,
    info: info,
    commands: [
        // Not "fast": it sorts the summary (O(capacity log capacity)).
        ["hotkey.top", hotkey_top, "readonly", 0, 0, 0, ""],
        ["hotkey.route", hotkey_route, "readonly fast", 0, 0, 0, ""],
        ["hotkey.routes", hotkey_routes, "readonly", 0, 0, 0, ""],
        ["hotkey.pin", hotkey_pin, "admin", 0, 0, 0, ""],
        ["hotkey.unpin", hotkey_unpin, "admin", 0, 0, 0, ""],
        ["hotkey.report", hotkey_report, "", 0, 0, 0, ""],
    ],
    configurations: [
        i64: [
            ["capacity", &config::CAPACITY, 4096, 16, 1 << 20, ConfigurationFlags::DEFAULT, Some(Box::new(config::on_changed))],
            ["half-life-ms", &config::HALF_LIFE_MS, 250, 10, 86_400_000, ConfigurationFlags::DEFAULT, Some(Box::new(config::on_changed))],
            ["max-key-bytes", &config::MAX_KEY_BYTES, 1024, 1, 1 << 20, ConfigurationFlags::DEFAULT, Some(Box::new(config::on_changed))],
            ["sample-quiet-ops", &config::SAMPLE_QUIET_OPS, 10_000, 0, 100_000_000, ConfigurationFlags::DEFAULT, Some(Box::new(config::on_changed))],
            ["sample-max", &config::SAMPLE_MAX, 64, 1, 65_536, ConfigurationFlags::DEFAULT, Some(Box::new(config::on_changed))],
            ["tick-ms", &config::TICK_MS, 100, 10, 10_000, ConfigurationFlags::DEFAULT, Some(Box::new(config::on_changed))],
            ["hot-threshold", &config::HOT_THRESHOLD, 1000, 0, 1_000_000_000, ConfigurationFlags::DEFAULT, Some(Box::new(config::on_changed))],
            ["cooldown-ms", &config::COOLDOWN_MS, 2000, 0, 3_600_000, ConfigurationFlags::DEFAULT, Some(Box::new(config::on_changed))],
            ["max-hot", &config::MAX_HOT, 64, 1, 100_000, ConfigurationFlags::DEFAULT, Some(Box::new(config::on_changed))],
            ["heartbeat-ms", &config::HEARTBEAT_MS, 1000, 100, 60_000, ConfigurationFlags::DEFAULT, Some(Box::new(config::on_changed))],
            ["cache-ttl-ms", &config::CACHE_TTL_MS, 100, 0, 3_600_000, ConfigurationFlags::DEFAULT, Some(Box::new(config::on_changed))],
            ["max-replica-lag-ms", &config::MAX_REPLICA_LAG_MS, 2000, 0, 3_600_000, ConfigurationFlags::DEFAULT, Some(Box::new(config::on_changed))],
            ["max-replica-lag-bytes", &config::MAX_REPLICA_LAG_BYTES, 16 << 20, 0, 1 << 40, ConfigurationFlags::DEFAULT, Some(Box::new(config::on_changed))],
        ],
        string: [
            ["hot-share", &config::HOT_SHARE, config::HOT_SHARE_DEFAULT, ConfigurationFlags::DEFAULT, Some(Box::new(config::on_changed))],
            ["cold-fraction", &config::COLD_FRACTION, config::COLD_FRACTION_DEFAULT, ConfigurationFlags::DEFAULT, Some(Box::new(config::on_changed))],
            ["channel", &config::CHANNEL, hotkey_protocol::DEFAULT_CHANNEL, ConfigurationFlags::DEFAULT, None],
        ],
        bool: [
            ["enabled", &config::ENABLED, true, ConfigurationFlags::DEFAULT, Some(Box::new(config::on_changed))],
        ],
        enum: [],
        module_args_as_configuration: true,
    ]
}
