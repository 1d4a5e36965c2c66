//! Where the leaderboard reads were served: each node's `INFO commandstats` (its
//! `cmdstat_zrevrange` calls are the leaderboard reads it served: nothing else sends
//! `ZREVRANGE`), the cache hits, and the workload's own counters. A [`Sample`] is all of them
//! at one moment; a [`Window`] is the difference of two.
//!
//! The cache hits are the readers' router's, or through `hotkey-proxy` its `/metrics`
//! `hotkey_proxy_commands_total{route="cache"}`: the commands it served from its cache. The
//! leaderboard is the only key the story makes hot, so those are leaderboard reads.

use std::net::SocketAddr;

use hotkey_protocol::TopEntry;
use hotkey_router::Error;
use redis::Value;
use redis::aio::MultiplexedConnection;
use tokio::time::Instant;

use crate::group::Node;
use crate::proxy::{COMMANDS_METRIC, labelled, scrape};
use crate::workload::{TallySnapshot, Workload};

/// The calls one node has served since it started, from `INFO commandstats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Calls {
    /// Every command (replicated writes and `INFO` included).
    pub total: u64,
    /// `ZREVRANGE`: the leaderboard reads.
    pub zrevrange: u64,
}

impl Calls {
    fn since(self, earlier: Calls) -> Calls {
        Calls {
            total: self.total.saturating_sub(earlier.total),
            zrevrange: self.zrevrange.saturating_sub(earlier.zrevrange),
        }
    }
}

/// Reads `INFO commandstats` (`cmdstat_<name>:calls=N,usec=…` lines).
pub fn parse_commandstats(info: &str) -> Calls {
    let mut calls = Calls::default();
    for line in info.lines() {
        let Some((name, fields)) = line.trim().split_once(':') else {
            continue;
        };
        let Some(command) = name.strip_prefix("cmdstat_") else {
            continue;
        };
        let n = fields
            .split(',')
            .find_map(|f| f.strip_prefix("calls="))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        calls.total += n;
        if command.eq_ignore_ascii_case("zrevrange") {
            calls.zrevrange += n;
        }
    }
    calls
}

/// Connections to every node for the stats, apart from the routers'.
pub struct Probe {
    nodes: Vec<(Node, MultiplexedConnection)>,
    /// The proxy's `/metrics`, when the readers go through it.
    proxy_metrics: Option<SocketAddr>,
}

impl Probe {
    /// Connects to each of `nodes` (the master first).
    pub async fn connect(nodes: &[Node]) -> Result<Probe, Error> {
        let mut connected = Vec::with_capacity(nodes.len());
        for node in nodes {
            let conn = redis::Client::open(node.url())?
                .get_multiplexed_async_connection()
                .await?;
            connected.push((node.clone(), conn));
        }
        Ok(Probe {
            nodes: connected,
            proxy_metrics: None,
        })
    }

    /// From now on the cache hits are those of the proxy whose `/metrics` is at `address`.
    pub fn proxy_metrics(mut self, address: SocketAddr) -> Probe {
        self.proxy_metrics = Some(address);
        self
    }

    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().map(|(n, _)| n)
    }

    /// The calls each node has served, in the order of `nodes`.
    pub async fn calls(&mut self) -> Result<Vec<Calls>, Error> {
        let mut all = Vec::with_capacity(self.nodes.len());
        for (_, conn) in &mut self.nodes {
            let info: String = redis::cmd("INFO")
                .arg("commandstats")
                .query_async(conn)
                .await?;
            all.push(parse_commandstats(&info));
        }
        Ok(all)
    }

    /// `HOTKEY.TOP COUNT <count> WINDOW 1` on the master: the detector's window, so that the
    /// per-second table follows the surge as it happens (TOP's default, 60 s, would smooth it).
    pub async fn top(&mut self, count: usize) -> Result<Vec<TopEntry>, Error> {
        let Some((node, master)) = self.nodes.first_mut() else {
            return Ok(Vec::new());
        };
        let reply: Value = redis::cmd("HOTKEY.TOP")
            .arg("COUNT")
            .arg(count)
            .arg("WINDOW")
            .arg(1)
            .query_async(master)
            .await?;
        TopEntry::list_from_redis(&reply).map_err(|source| Error::Protocol {
            node: format!("127.0.0.1:{}", node.port),
            reply: "HOTKEY.TOP",
            source,
        })
    }

    /// Everything at this moment: the workload's counters and the cache hits first, then
    /// each node's calls (a few milliseconds later).
    pub async fn sample(&mut self, workload: &Workload) -> Result<Sample, String> {
        let at = Instant::now();
        let tally = workload.tally.snapshot();
        let cache_hits = match self.proxy_metrics {
            None => workload.readers.metrics().cache_hits,
            Some(address) => {
                let text = scrape(address).await?;
                labelled(&text, COMMANDS_METRIC, "route", "cache").ok_or_else(|| {
                    format!("hotkey-proxy /metrics at {address} has no {COMMANDS_METRIC}{{route=\"cache\"}}")
                })?
            }
        };
        let nodes = self
            .calls()
            .await
            .map_err(|e| format!("INFO commandstats: {e}"))?;
        Ok(Sample {
            at,
            tally,
            cache_hits,
            nodes,
        })
    }
}

/// The counters at one moment.
#[derive(Debug, Clone)]
pub struct Sample {
    pub at: Instant,
    pub tally: TallySnapshot,
    /// Leaderboard reads served from the cache: the readers' router's, or the proxy's.
    pub cache_hits: u64,
    /// Per node, the master first.
    pub nodes: Vec<Calls>,
}

/// What happened between two samples.
#[derive(Debug, Clone)]
pub struct Window {
    pub secs: f64,
    /// Leaderboard reads answered (through the router).
    pub reads: u64,
    /// Commands of the workload that failed.
    pub errors: u64,
    /// Per node, the master first.
    pub nodes: Vec<Calls>,
    /// Leaderboard reads served from the cache.
    pub cache_hits: u64,
}

/// Fractions (0 to 1) of the leaderboard reads.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Shares {
    pub master: f64,
    pub replicas: f64,
    pub cache: f64,
}

impl Window {
    pub fn between(earlier: &Sample, later: &Sample) -> Window {
        Window {
            secs: later.at.duration_since(earlier.at).as_secs_f64(),
            reads: later.tally.reads.saturating_sub(earlier.tally.reads),
            errors: later.tally.errors.saturating_sub(earlier.tally.errors),
            nodes: later
                .nodes
                .iter()
                .zip(&earlier.nodes)
                .map(|(l, e)| l.since(*e))
                .collect(),
            cache_hits: later.cache_hits.saturating_sub(earlier.cache_hits),
        }
    }

    pub fn reads_per_sec(&self) -> f64 {
        per_sec(self.reads, self.secs)
    }

    /// Leaderboard reads the master served (cache fills included).
    pub fn master_reads(&self) -> u64 {
        self.nodes.first().map_or(0, |n| n.zrevrange)
    }

    /// Leaderboard reads the replicas served.
    pub fn replica_reads(&self) -> u64 {
        self.nodes.iter().skip(1).map(|n| n.zrevrange).sum()
    }

    /// Where the reads were served, as fractions of the reads answered in the window (the
    /// bench's measure). The node counters are read a few milliseconds after the workload's,
    /// so the three may add up to a little more or less than 1.
    pub fn shares_of_reads(&self) -> Shares {
        self.shares(self.reads)
    }

    /// Where the reads were served, as fractions of the reads the nodes and the cache served:
    /// the three add up to 1 (the live display).
    pub fn shares_of_served(&self) -> Shares {
        self.shares(self.master_reads() + self.replica_reads() + self.cache_hits)
    }

    fn shares(&self, of: u64) -> Shares {
        let share = |n: u64| if of == 0 { 0.0 } else { n as f64 / of as f64 };
        Shares {
            master: share(self.master_reads()),
            replicas: share(self.replica_reads()),
            cache: share(self.cache_hits),
        }
    }
}

/// `n` over `secs`, 0 for an empty window.
pub fn per_sec(n: u64, secs: f64) -> f64 {
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "# Commandstats\r\n\
        cmdstat_zrevrange:calls=120,usec=900,usec_per_call=7.50,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_client|id:calls=2,usec=1,usec_per_call=0.50,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_get:calls=30,usec=40,usec_per_call=1.33,rejected_calls=0,failed_calls=1\r\n";

    #[test]
    fn commandstats_counts_every_command_and_zrevrange_apart() {
        let calls = parse_commandstats(INFO);
        assert_eq!(
            calls,
            Calls {
                total: 152,
                zrevrange: 120
            }
        );
        assert_eq!(parse_commandstats(""), Calls::default());
    }

    fn sample(reads: u64, cache_hits: u64, nodes: &[u64]) -> Sample {
        Sample {
            at: Instant::now(),
            tally: TallySnapshot {
                reads,
                ..TallySnapshot::default()
            },
            cache_hits,
            nodes: nodes
                .iter()
                .map(|&zrevrange| Calls {
                    total: zrevrange * 2,
                    zrevrange,
                })
                .collect(),
        }
    }

    #[test]
    fn window_splits_the_reads_between_master_replicas_and_cache() {
        let earlier = sample(1_000, 0, &[1_000, 0, 0]);
        let later = sample(11_000, 9_000, &[1_100, 450, 450]);
        let window = Window::between(&earlier, &later);
        assert_eq!(window.reads, 10_000);
        assert_eq!(window.master_reads(), 100);
        assert_eq!(window.replica_reads(), 900);
        assert_eq!(window.cache_hits, 9_000);
        let shares = window.shares_of_reads();
        assert_eq!(
            shares,
            Shares {
                master: 0.01,
                replicas: 0.09,
                cache: 0.9
            }
        );
        assert_eq!(window.shares_of_served(), shares);
    }

    #[test]
    fn an_empty_window_has_no_shares() {
        let s = sample(5, 0, &[5]);
        let window = Window::between(&s, &s);
        assert_eq!(window.shares_of_reads(), Shares::default());
        assert_eq!(window.reads_per_sec(), 0.0);
    }
}
