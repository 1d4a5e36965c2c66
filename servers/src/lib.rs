//! Start and stop local `redis-server` processes with the hotkey module on free loopback ports,
//! stopped on drop: one server (a master or a replica), or a Redis Cluster of N masters × R
//! replicas. The demo runs on it, and the test harness (`hotkey-testkit`) builds on it.
//!
//! Every guard owns its process and a fresh directory: dropping it stops the process (SIGTERM,
//! then SIGKILL) and removes the directory, also when a panic unwinds. Starting returns an
//! [`Error`] with the process's own words and its log's last lines when something fails.
//!
//! Environment:
//! - `HOTKEY_REDIS_SERVER`: the server binary (default `redis-server` on `PATH`); Valkey and
//!   newer Redis binaries take the same arguments.
//! - `HOTKEY_MODULE`: the module to load (default: the `libhotkey.so` cargo built in the same
//!   `target/<profile>/` as the running executable; `cargo build -p hotkey`).
//! - `HOTKEY_REDIS_CLI`: the `redis-cli` that creates clusters (default `redis-cli` on `PATH`).
//!
//! # Layout
//! - `process`: the process guard under every server: start, PING, SIGTERM / SIGKILL, the
//!   server binary, free ports, fresh directories, log tails.
//! - `module`: where the module is (`module_path`).
//! - `server`: `Server` (one `redis-server` with the module) and its `Builder`.
//! - `cluster`: `Cluster` (N masters × R replicas with `--cluster-enabled yes`, created with
//!   `redis-cli --cluster create`), its `ClusterBuilder` and `Node`s, and who serves a slot.

use std::fmt;

mod cluster;
mod module;
pub mod process;
mod server;

pub use cluster::{Cluster, ClusterBuilder, Node, cli_binary};
pub use module::module_path;
pub use process::{server_binary, tail};
pub use server::{Builder, Server};

/// Why servers could not be started, or a cluster could not answer: what failed, in the words
/// of the process and its log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl Error {
    pub(crate) fn new(message: impl Into<String>) -> Error {
        Error(message.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}
