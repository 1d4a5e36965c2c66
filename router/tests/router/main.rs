//! Integration tests of the router against real `redis-server` processes with the module.
//!
//! One test binary; each test starts and owns its servers through `hotkey-testkit` (build the
//! module first: `cargo build -p hotkey`). Keys are made hot with `HOTKEY.PIN` (read-hot at
//! once, whatever their rate; the book's advice for them: reads to `replicas` when the master
//! has a healthy replica, `cache_ttl_ms` = `hotkey.cache-ttl-ms`), and detection by rate is
//! switched off (`common::master`) so no test load changes that advice. Everything the router
//! learns from events is waited for with a generous deadline; no test asserts a duration.
//!
//! # Layout
//! - `common`: servers, commands, waits.
//! - `routing`: where reads and writes go; replicas round-robin; the cache; binary key names.
//! - `cache`: invalidation by an external write, own writes, single flight, TTL.
//! - `report`: reads served off the master reach `HOTKEY.REPORT`.
//! - `staleness`: a writer and readers at once: how old a value a reader may see; read your
//!   own writes.
//! - `failures`: a replica killed, the subscriber killed, the module reloaded, the master
//!   killed and restarted, a server without the module.
//! - `sentinel`: a failover under a write load.
//! - `cluster`: a Redis Cluster (3 masters × 1 replica): routing by slot, hot keys on two
//!   shards, failovers, a slot moving under reads.

mod cache;
mod cluster;
mod common;
mod failures;
mod report;
mod routing;
mod sentinel;
mod staleness;
