//! Integration tests of the module against real `redis-server` processes.
//!
//! One test binary (one link step); each test starts and owns its servers through the
//! `hotkey-testkit` crate (the `Server` guard, connections, `HOTKEY.TOP` / `INFO hotkey` parsers).
//! Run with `cargo test --test module`; `HOTKEY_REDIS_SERVER=/path/to/valkey-server` runs the
//! same tests against another server.
//!
//! # Layout
//! - `cluster`: a 3 × 1 Redis Cluster: identity, per-shard events, MOVED, migration, failover.
//! - `classify`: read/write classification of plain commands, EVAL and MULTI/EXEC.
//! - `databases`: SELECT and the `db_attribution` the module announces.
//! - `docs`: COMMAND DOCS, key specs and arity, as the server and redis-cli see them.
//! - `replica`: a real replica counts only reads.
//! - `keys`: binary-safe key names.
//! - `scale`: a million distinct keys, bounded memory, heavy hitters on top.
//! - `top_args`: every argument path of `HOTKEY.TOP`.
//! - `config`: module configs and `loadmodule` arguments.
//! - `acl`: TOP shows only keys the caller may read.
//! - `lifecycle`: MODULE UNLOAD / LOAD, INFO fields.
//! - `smoke`: odd commands must not hurt the server.
//! - `events`: the hot set's events on the channel; PIN, UNPIN, REPORT.
//! - `routes`: ROUTE and ROUTES with a master and two replicas; ACL; bad arguments.
//! - `fuzz`: hostile bytes in every argument of every command, config and `MODULE LOAD`.
//! - `reload`: MODULE UNLOAD / LOAD under traffic leaves `used_memory` flat.

mod acl;
mod classify;
mod cluster;
mod config;
mod databases;
mod docs;
mod events;
mod fuzz;
mod keys;
mod lifecycle;
mod reload;
mod replica;
mod routes;
mod scale;
mod smoke;
mod top_args;
