//! `hotkey` against real servers: `--once`/`--json` on one node, a replication set, Sentinel
//! and a cluster; the errors a user sees; `route`; `watch`; `exporter`; and the live view in
//! tmux.

mod cluster;
mod exporter;
mod live;
mod once;
mod route;
mod run;
mod tls;
mod watch;
