//! # hotkey-demo
//!
//! The seed story, end to end: a game server writes scores to `leaderboard:global` a hundred
//! times a second, a tournament ends and thousands of players read its top 10, the hotkey module
//! finds the key hot, and the router moves those reads off the master — to its local cache, or
//! to the replicas. The `leaderboard` binary (`make run`) shows it live; the `offload` bench
//! (`cargo bench -p hotkey-demo --bench offload`) measures it.
//!
//! # Layout
//! - `group`: [`ReplicationGroup`], a master and replicas started from `redis.conf.example`.
//! - `workload`: [`Workload`], the writers, readers and background traffic through two routers,
//!   and the [`Tally`] of what they did.
//! - `stats`: [`Probe`] reads `INFO commandstats` and `HOTKEY.TOP`; a [`Sample`] of every
//!   counter, a [`Window`] between two, and the [`Shares`] of master, replicas and cache.
//! - `format`: numbers as printed.

pub mod format;
pub mod group;
pub mod stats;
pub mod workload;

pub use group::{Node, ReplicationGroup};
pub use stats::{Calls, Probe, Sample, Shares, Window};
pub use workload::{CHAMPION_PREFIX, LEADERBOARD, Settings, Tally, Workload, top_ten};
