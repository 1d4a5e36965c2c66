//! # hotkey-proxy
//!
//! A Redis proxy any client can talk to (Java, Go, Node, PHP, redis-cli): writes and cold
//! reads go to the master; reads of the keys the hotkey module calls hot go to a healthy
//! replica or to the proxy's cache, which the server's client tracking invalidates and which
//! the proxy's own writes invalidate before they are acknowledged. The upstream side (hot set,
//! routing rule, replica rotation, subscription, resync, reports) is `hotkey-router`'s.
//!
//! ```text
//! any client ──RESP──► hotkey-proxy ──► master / replicas / its cache
//!                          └── hotkey-router (one shard per master)
//! ```
//!
//! # Layout
//! - `server` — the process: router, listener, client limit, metrics endpoint, drain.
//! - `client` — one client connection: requests in, replies out in order, its own upstream
//!   connection (a tunnel) once it holds connection state.
//! - `cluster` — in front of a Redis Cluster: redirections followed, multi-key commands split
//!   by slot and merged, keyless commands by the routers' shared rule, `SCAN` over every master.
//! - `commands` — what the proxy answers itself, tunnels or refuses, before routing.
//! - `engine` — the upstream side: the router's shard state plus the shared connections,
//!   cache fills on tracked connections, replica reads, the cache of raw replies.
//! - `session` — what a client keeps to stay in order: replies in flight, its
//!   read-your-writes window.
//! - `request` — client requests (RESP arrays, inline commands) with Redis's limits and errors.
//! - `upstream` — raw pipelined connections and tunnels to a Redis server; `lanes` — the
//!   shared connections, each keeping its clients' commands in order across reconnects.
//! - `config`, `metrics`, `logging` — flags and TOML, `/metrics`, `tracing`.

pub mod client;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod engine;
pub mod lanes;
pub mod logging;
pub mod metrics;
pub mod request;
pub mod server;
pub mod session;
pub mod upstream;
