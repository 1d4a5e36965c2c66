//! # hotkey-router
//!
//! The client half of hotkey: sends each Redis command where the hotkey module's hot set says.
//! Writes, and reads of keys that are not hot, go to the master; reads of a hot key are served
//! from a local cache (when the module advises a cache TTL) or by a healthy replica, so the hot
//! key's node stops carrying them. The router follows the module's events (in `seq` order,
//! re-reading the hot set on any doubt), invalidates cached replies when the key is written,
//! reads its own writes, and reports the reads it served elsewhere back to the module.
//!
//! ```no_run
//! use hotkey_router::{Options, Router};
//!
//! # async fn demo() -> Result<(), hotkey_router::Error> {
//! let router = Router::connect("redis://127.0.0.1:7379/", Options::default()).await?;
//! let _: () = router.query(redis::cmd("ZADD").arg("leaderboard:global").arg(10).arg("ada")).await?;
//! let top: Vec<String> = router
//!     .query(redis::cmd("ZREVRANGE").arg("leaderboard:global").arg(0).arg(9))
//!     .await?;
//! println!("{top:?} {:?}", router.metrics());
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - [`Router`] (`router.rs`) — the handle: `query`, `route`, `metrics`; one master or a
//!   cluster.
//! - `shard.rs` — one master's state (connections, hot set, replicas, cache, reports) and how
//!   a command is sent there.
//! - `routing.rs` — where a command goes, from the command table and the hot set (pure).
//! - `table.rs` — the hot set and replicas, kept in step with the events (pure).
//! - `link.rs` — a shard's background task: connections, subscription, resyncs, reports.
//! - `topology.rs` — a cluster's layout, slot map, command slots and redirections (pure);
//!   `cluster.rs` — the shards of a cluster, kept in step with its layout.
//! - `locks.rs` — the one policy for poisoned locks; `served.rs` — the reads served off the
//!   master, counted per thread until the next report.
//! - [`cache`] — the local cache (moka), shared with the proxy; `replicas.rs` — the replica
//!   rotation.
//! - [`upstream`] — what a shard knows, for a front end that sends the bytes itself (the
//!   proxy): [`upstream::ShardHandle`] from [`Router::shard_for`].
//! - [`Options`], [`Metrics`], [`Error`].

pub mod cache;
mod cluster;
mod error;
mod link;
mod locks;
mod metrics;
mod options;
mod replicas;
mod router;
mod routing;
mod served;
mod shard;
mod table;
mod topology;
pub mod upstream;

pub use cluster::ShardView;
pub use error::{CROSSSLOT, Error, ErrorKind, LinkLost, NOT_ROUTED, Unavailable};
pub use metrics::Metrics;
pub use options::Options;
pub use router::{HotKeyView, Router};
pub use routing::Target;

pub use hotkey_protocol::{Advice, ReadsTo};
pub use redis;

/// The book's page on this crate (`docs/src/router.md`): its Rust examples compile as doc tests,
/// so the book cannot show an API the router does not have.
#[cfg(doctest)]
#[doc = include_str!("../../docs/src/router.md")]
pub struct RouterBook;
