//! # hotkey-demo
//!
//! The seed story, end to end: a game server writes scores to `leaderboard:global` a hundred
//! times a second, a tournament ends and thousands of players read its top 10, the hotkey module
//! finds the key hot, and the router moves those reads off the master — to its local cache, or
//! to the replicas. With `--proxy` the players and game servers speak plain Redis to
//! `hotkey-proxy`, which does the same for them. The `leaderboard` binary (`make run`) shows it live; the `offload` bench
//! (`cargo bench -p hotkey-demo --bench offload`) measures it.
//!
//! # Layout
//! - `group`: [`ReplicationGroup`], a master and replicas started from `redis.conf.example`.
//! - `workload`: [`Workload`], the writers, readers and background traffic through two routers,
//!   and the [`Tally`] of what they did.
//! - `stats`: [`Probe`] reads `INFO commandstats` and `HOTKEY.TOP`; a [`Sample`] of every
//!   counter, a [`Window`] between two, and the [`Shares`] of master, replicas and cache.
//! - `proxy`: [`ProxyProcess`], `hotkey-proxy` run in front of the master (`--proxy`), and
//!   the counters of its `/metrics`.
//! - `format`: numbers as printed.
//! - `plot`: the reads-over-time chart of `--plot` (plotters, SVG).

pub mod format;
pub mod group;
pub mod plot;
pub mod proxy;
pub mod stats;
pub mod workload;

pub use group::{Node, ReplicationGroup};
pub use proxy::ProxyProcess;
pub use stats::{Calls, Probe, Sample, Shares, Window};
pub use workload::{CHAMPION_PREFIX, LEADERBOARD, Settings, Tally, Workload, top_ten};
