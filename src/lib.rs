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
//!   the server's `COMMAND` reply.
//! - [`client_db`] — each client's selected database, for the filter.
//! - [`sampler`] — adaptive sampling when the node is busy.
//! - [`tracker`] — the bounded, time-decayed heavy-hitter summary (pure Rust).
//! - [`hot_set`] — the detector: which keys are hot, with hysteresis (pure Rust).
//! - [`replicas`] — the replicas from `INFO replication` and which are healthy.
//! - [`events`] — the numbered messages on the pub/sub channel (format: `hotkey-protocol`).
//! - [`commands`] — one file per `HOTKEY.*` command.
//! - [`config`] — the `hotkey.*` configs; [`info`] — the `INFO hotkey` section.
#![deny(unsafe_code)]

pub mod client_db;
pub mod command_table;
pub mod commands;
pub mod config;
pub mod events;
pub mod ffi;
pub mod hot_set;
pub mod info;
pub mod replicas;
pub mod sampler;
pub mod state;
pub mod tracker;

use std::sync::OnceLock;
use std::time::Instant;

use redis_module::configuration::ConfigurationFlags;
use redis_module::server_events::{ModuleChangeSubevent, ServerRole};
use redis_module::{
    Context, ContextFlags, InfoContext, RedisResult, RedisString, RedisValue, Status, redis_module,
};
use redis_module_macros::{
    cron_event_handler, module_changed_event_handler, role_changed_event_handler,
};

use hotkey_protocol::Message;

use crate::client_db::ClientDbs;
use crate::command_table::{CommandTable, Reply};
use crate::replicas::Replication;
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
    let table = read_command_table(ctx);
    if table.is_empty() {
        ctx.log_warning("hotkey: could not read the COMMAND table");
        return Status::Err;
    }
    let client_dbs = ffi::per_client_db_available().then(|| connected_clients(ctx));
    let databases = config_get_u32(ctx, "databases").unwrap_or(16);
    let mut state = State::new(config::settings(), table, client_dbs, now_ms());
    state.replica = ctx.get_flags().contains(ContextFlags::SLAVE);
    state.databases = databases;
    state.follow_dbs = state.client_dbs.is_some() && ffi::other_databases_have_keys(ctx, databases);
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

fn read_command_table(ctx: &Context) -> CommandTable {
    match ctx.call("COMMAND", &[] as &[&str]) {
        Ok(reply) => CommandTable::from_command_reply(&to_reply(reply)),
        Err(_) => CommandTable::default(),
    }
}

/// Every connected client with its database now (from `CLIENT LIST`): at load, and when the
/// module starts following databases.
fn connected_clients(ctx: &Context) -> ClientDbs {
    let mut dbs = ClientDbs::default();
    let Ok(list) = ctx.call("CLIENT", &["LIST"]) else {
        return dbs;
    };
    let text = match list {
        RedisValue::BulkString(s) | RedisValue::SimpleString(s) => s,
        RedisValue::StringBuffer(b) => String::from_utf8_lossy(&b).into_owned(),
        _ => return dbs,
    };
    for line in text.lines() {
        let field = |name: &str| {
            line.split(' ')
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .and_then(|v| v.parse::<u64>().ok())
        };
        if let (Some(id), Some(db)) = (field("id"), field("db")) {
            dbs.connect_in(id, db as u32);
        }
    }
    dbs
}

fn config_get_u32(ctx: &Context, name: &str) -> Option<u32> {
    match ctx.call("CONFIG", &["GET", name]).ok()? {
        RedisValue::Array(v) => match v.get(1)? {
            RedisValue::BulkString(s) | RedisValue::SimpleString(s) => s.parse().ok(),
            RedisValue::StringBuffer(b) => std::str::from_utf8(b).ok()?.parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

fn to_reply(v: RedisValue) -> Reply {
    match v {
        RedisValue::Integer(i) => Reply::Int(i),
        RedisValue::SimpleString(s) | RedisValue::BulkString(s) => Reply::Str(s.into_bytes()),
        RedisValue::SimpleStringStatic(s) => Reply::Str(s.as_bytes().to_vec()),
        RedisValue::StringBuffer(b) => Reply::Str(b),
        RedisValue::BulkRedisString(s) => Reply::Str(s.as_slice().to_vec()),
        RedisValue::Array(a) => Reply::Array(a.into_iter().map(to_reply).collect()),
        _ => Reply::Nil,
    }
}

#[cron_event_handler]
fn on_cron(ctx: &Context, _hz: u64) {
    let now = now_ms();
    if state::with(|s| s.tick_due(now)) == Some(true) {
        tick(ctx, now);
    }
}

/// The tick: replicas, detector, events; then whether to follow clients' databases.
fn tick(ctx: &Context, now: u64) {
    let replication = replication(ctx);
    let Some((messages, can_follow, following, databases)) = state::with(|s| {
        let messages = s.tick(now, replication.as_ref());
        (messages, s.client_dbs.is_some(), s.follow_dbs, s.databases)
    }) else {
        return;
    };
    publish(ctx, &messages);
    if !can_follow {
        return;
    }
    // Follow clients' databases only while another database holds keys (see State::follow_dbs).
    let needed = ffi::other_databases_have_keys(ctx, databases);
    if needed && !following {
        let clients = connected_clients(ctx);
        state::with(|s| s.follow_databases(Some(clients)));
    } else if !needed && following {
        state::with(|s| s.follow_databases(None));
    }
}

/// A replica came online or went offline: tick now rather than at the next cron.
pub(crate) fn on_replica_change(ctx: &Context) {
    tick(ctx, now_ms());
}

/// What `INFO replication` says now.
fn replication(ctx: &Context) -> Option<Replication> {
    match ctx.call("INFO", &["replication"]).ok()? {
        RedisValue::BulkString(s) | RedisValue::SimpleString(s) => Some(Replication::parse(&s)),
        RedisValue::StringBuffer(b) => Some(Replication::parse(&String::from_utf8_lossy(&b))),
        RedisValue::VerbatimString((_, b)) => {
            Some(Replication::parse(&String::from_utf8_lossy(&b)))
        }
        _ => None,
    }
}

/// Publishes messages on the configured channel, in order.
pub(crate) fn publish(ctx: &Context, messages: &[Message]) {
    if messages.is_empty() {
        return;
    }
    let channel = config::CHANNEL.get();
    for m in messages {
        ffi::publish(ctx, &channel, &m.to_json());
    }
}

/// Where the master is, for `HOTKEY.ROUTE` and `HOTKEY.ROUTES`: on a replica, its master as
/// INFO shows it; on the master, the address the caller reached it at (`laddr` of its
/// connection), since a server does not know the name clients use for it.
pub(crate) fn master_address(ctx: &Context) -> (String, u16) {
    if let Some(Some(addr)) = state::with(|s| s.replicas.master_address()) {
        return addr;
    }
    let id = ffi::client_id(ctx).to_string();
    let text = match ctx.call("CLIENT", &["LIST", "ID", id.as_str()]) {
        Ok(RedisValue::BulkString(s) | RedisValue::SimpleString(s)) => s,
        Ok(RedisValue::StringBuffer(b)) => String::from_utf8_lossy(&b).into_owned(),
        Ok(RedisValue::VerbatimString((_, b))) => String::from_utf8_lossy(&b).into_owned(),
        _ => String::new(),
    };
    parse_laddr(&text).unwrap_or_default()
}

/// `host:port` of the `laddr=` field of a CLIENT LIST line; IPv6 comes in brackets.
fn parse_laddr(line: &str) -> Option<(String, u16)> {
    let laddr = line.split(' ').find_map(|f| f.strip_prefix("laddr="))?;
    let (host, port) = laddr.trim().rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_owned(), port.parse().ok()?))
}

#[role_changed_event_handler]
fn on_role_changed(_ctx: &Context, role: ServerRole) {
    state::with(|s| s.replica = role == ServerRole::Replica);
}

/// Another module's commands enter or leave the table.
#[module_changed_event_handler]
fn on_module_changed(ctx: &Context, _event: ModuleChangeSubevent) {
    let table = read_command_table(ctx);
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
