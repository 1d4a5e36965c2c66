//! # hotkey
//!
//! A Redis module that counts every key access, keeps a decayed read and write rate per key in
//! a bounded summary, and answers `HOTKEY.TOP`.
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
//! - [`commands`] — one file per `HOTKEY.*` command.
//! - [`config`] — the `hotkey.*` configs; [`info`] — the `INFO hotkey` section.
#![deny(unsafe_code)]

pub mod client_db;
pub mod command_table;
pub mod commands;
pub mod config;
pub mod ffi;
pub mod info;
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

use crate::client_db::ClientDbs;
use crate::command_table::{CommandTable, Reply};
use crate::state::State;

/// `HOTKEY.TOP [COUNT n] [BY total|reads|writes] [DB n]`
fn hotkey_top(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    commands::top::run(ctx, args)
}

fn info(ctx: &InfoContext, _for_crash_report: bool) {
    if let Err(e) = info::add_section(ctx) {
        // INFO goes on without the section; the log says why.
        redis_module::logging::log_warning(format!("hotkey: INFO section: {e}"));
    }
}

/// Milliseconds on a monotonic clock; only read off the filter's path.
fn now_ms() -> u64 {
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
    let Some((can_follow, following, databases)) = state::with(|s| {
        s.tick(now);
        (s.client_dbs.is_some(), s.follow_dbs, s.databases)
    }) else {
        return;
    };
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
    ],
    configurations: [
        i64: [
            ["capacity", &config::CAPACITY, 4096, 16, 1 << 20, ConfigurationFlags::DEFAULT, Some(Box::new(config::on_changed))],
            ["half-life-ms", &config::HALF_LIFE_MS, 1000, 10, 86_400_000, ConfigurationFlags::DEFAULT, Some(Box::new(config::on_changed))],
            ["max-key-bytes", &config::MAX_KEY_BYTES, 1024, 1, 1 << 20, ConfigurationFlags::DEFAULT, Some(Box::new(config::on_changed))],
            ["sample-quiet-ops", &config::SAMPLE_QUIET_OPS, 10_000, 0, 100_000_000, ConfigurationFlags::DEFAULT, Some(Box::new(config::on_changed))],
            ["sample-max", &config::SAMPLE_MAX, 64, 1, 65_536, ConfigurationFlags::DEFAULT, Some(Box::new(config::on_changed))],
        ],
        string: [],
        bool: [
            ["enabled", &config::ENABLED, true, ConfigurationFlags::DEFAULT, Some(Box::new(config::on_changed))],
        ],
        enum: [],
        module_args_as_configuration: true,
    ]
}
