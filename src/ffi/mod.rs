//! The boundary with the server: every `extern "C"` function the server calls and every raw
//! call into it, in one folder. It depends on nothing above it: the crate hands it a
//! [`Module`] — commands, configs, event handlers, the filter — and it calls them under a
//! guard, so that a panic (ours or a dependency's) becomes an error reply, a skipped event or
//! a log line, never an abort of the server.
//!
//! The workspace denies `unsafe_code` everywhere else; each `unsafe` block here says why the
//! pointers it touches are valid.
//!
//! # Layout
//! - [`module`]: the [`Module`] description and the [`module!`](crate::module) macro that
//!   exports it as `RedisModule_OnLoad` / `RedisModule_OnUnload`.
//! - `entry`: load and unload, the command trampoline; `configs`: the config callbacks;
//!   `events`: INFO, server events and the command filter.
//! - `guard`: the panic guard every callback goes through, and `internal_errors`.
//! - `filter`: the command filter's view of a command ([`FilterCommand`]).
//! - `docs`: command docs and key specs for the server (`COMMAND DOCS`).
//! - `calls`: what the handlers ask of the server (ACL checks, publishing, databases, log).
//! - `cell`, `alloc`: main-thread state and the global allocator.
#![allow(unsafe_code)]

mod alloc;
mod calls;
mod cell;
mod configs;
mod docs;
mod entry;
mod events;
mod filter;
mod guard;
pub mod module;

pub use alloc::ModuleAlloc;
pub use calls::{
    KeyReadCheck, LogLevel, client_id, cluster_node_id, log, other_databases_have_keys,
    per_client_db_available, publish, selected_db,
};
pub use cell::MainThread;
pub use entry::{NOT_LOADED, on_load, on_unload};
pub use filter::FilterCommand;
pub use guard::internal_errors;
pub use module::{
    Arg, ArgKind, CommandDocs, CommandResult, ConfigSpec, ConfigValue, ErrorReply, Flag, InfoSink,
    Integer, Module, ModuleCommand, Text,
};
