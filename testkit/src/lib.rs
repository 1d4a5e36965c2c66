//! The harness of the workspace's integration tests, examples and benches: guards that own real
//! `redis-server` processes (the module loaded, or a sentinel) and stop them on drop, connection
//! helpers, and parsers for `HOTKEY.TOP`, `INFO hotkey` and the module's events. The servers are
//! started by `hotkey-servers`; the harness adds its defaults (`sample-max 1`, deadlines scaled
//! by `HOTKEY_TEST_SLOWDOWN`) and panics, with the server's words, where that crate returns an
//! error.
//!
//! Each test owns its servers: a unique port and directory per process, and a loud failure
//! when the `.so` is missing.
//!
//! Environment:
//! - `HOTKEY_REDIS_SERVER`: the server binary (default `redis-server` on `PATH`); Valkey and
//!   newer Redis binaries take the same arguments.
//! - `HOTKEY_MODULE`: the module to load (default: the `libhotkey.so` cargo built in the same
//!   `target/<profile>/` as the running test, example or bench; `cargo build -p hotkey`).
//! - `HOTKEY_REDIS_CLI`: the `redis-cli` that creates clusters (default `redis-cli` on `PATH`).
//! - `HOTKEY_TEST_SLOWDOWN`: a float ≥ 1 (default 1) that multiplies every deadline of the
//!   harness and of the waits below, for a machine too loaded or slow for the defaults.
//!
//! Tests never sleep before asserting: they poll for the state with [`wait_until`] (or
//! [`wait_until_async`] with the `tokio` feature), whose deadline is scaled and whose failure
//! names what it waited for and what it last saw.
//!
//! # Layout
//! - `module`: where the module under test is (`module_path`).
//! - `server`: `Server` (one `redis-server` with the module: connections, module reloads,
//!   replication info) and its `Builder`.
//! - `channel_listener`: `ChannelListener`, a classic or sharded (`SSUBSCRIBE`) subscriber.
//! - `cluster`: `Cluster` (N masters × R replicas with `--cluster-enabled yes`) and its
//!   `ClusterBuilder`: slot owners, kills, failovers and slot migrations.
//! - `sentinel`: `Sentinel`, one `redis-server --sentinel` monitoring a `Server`.
//! - `top`: `HOTKEY.TOP` entries, `INFO hotkey`, error texts, `CONFIG GET`.
//! - `subscriber`: a subscriber to the module's channel, event predicates, a GET load generator,
//!   and plain subscribers on several connections (`subscribe_all`, `next_payload`).
//! - `wait`: the scale factor, `wait_until`, `WAIT n` (`wait_for_acks`), replicas listed by
//!   `HOTKEY.ROUTES` (`wait_for_replicas`), `HOTKEY.PIN` (`pin`).

mod channel_listener;
mod cluster;
mod module;
mod sentinel;
mod server;
mod subscriber;
mod top;
mod wait;

pub use channel_listener::ChannelListener;
pub use cluster::{Cluster, ClusterBuilder};
pub use hotkey_servers::{Node, cli_binary, server_binary, tail};
pub use module::module_path;
pub use sentinel::Sentinel;
pub use server::{Builder, Server};
pub use subscriber::{Subscriber, event_key, is_cold, is_hot, load, next_payload, subscribe_all};
pub use top::{
    TopRow, config_get, entry, error_text, expect_error, find, info_hotkey, info_number, parse_top,
    show, top, top_all,
};
#[cfg(feature = "tokio")]
pub use wait::wait_until_async;
pub use wait::{
    POLL, SLOWDOWN_VAR, WAIT, check, deadline, pin, scaled, slowdown, wait_for_acks,
    wait_for_replicas, wait_until,
};
