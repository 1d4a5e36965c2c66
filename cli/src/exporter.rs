//! `hotkey exporter`: what the module knows, as Prometheus metrics, for every node found.
//!
//! `redis_exporter` drops module INFO fields it does not know, so the `hotkey_*` lines never
//! reach Prometheus; this serves them, with the hot set and a bounded top of keys. Each scrape
//! asks every node afresh (discovery included, so a failover or a new node shows at the next
//! scrape): `INFO hotkey`, `HOTKEY.TOP COUNT n`, and on masters `HOTKEY.ROUTES`. A node that
//! does not answer is `hotkey_node_up 0` and one more `hotkey_exporter_node_errors_total`,
//! never a failed scrape. The text is `prometheus-client`'s and the HTTP side
//! `hotkey-metrics-http`'s, as the proxy's `/metrics`.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread;

use hotkey_metrics_http::{Endpoint, Trouble};
use hotkey_protocol::{Routes, TopEntry};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use redis::Value;

use crate::By;
use crate::Discovery;
use crate::discover::{Node, Role, Seeds, Topology};
use crate::node::query;
use crate::top::{BAD_TOP_REPLY, Query};

/// What `GET /` answers.
const INDEX: &str = "hotkey exporter: Prometheus metrics at /metrics\n";

/// `--listen` that cannot be bound (followed by the address and the system's words).
pub const CANNOT_LISTEN: &str = "cannot listen on";

/// The `INFO hotkey` fields that only grow while the module is loaded: served as counters
/// (`hotkey_<field>_total`). Every other numeric field is a gauge (`hotkey_<field>`), so a
/// field a later module adds is served too.
const COUNTERS: [&str; 9] = [
    "evictions",
    "commands_seen",
    "commands_sampled",
    "keys_counted",
    "keys_too_long",
    "unknown_commands",
    "movable_key_lookups",
    "reported_reads",
    "internal_errors",
];

/// The `INFO hotkey` fields that are words, not numbers: labels of `hotkey_node_info`.
const WORDS: [&str; 3] = ["role", "run_id", "db_attribution"];

/// What to ask every node, from the command line.
#[derive(Clone, Debug)]
pub struct Options {
    /// Keys per node in the top (`hotkey_top_key_*`): each becomes a label value.
    pub count: u32,
    /// `HOTKEY.TOP … WINDOW`; None: the module's default.
    pub window: Option<u32>,
}

/// What one node said.
#[derive(Debug, Default)]
struct NodeData {
    /// `INFO hotkey` as (field without the `hotkey_` prefix, value).
    info: Vec<(String, String)>,
    top: Vec<TopEntry>,
    /// The hot set with its advice; None on replicas.
    routes: Option<Routes>,
}

#[derive(Debug)]
struct NodeScrape {
    addr: String,
    result: Result<NodeData, String>,
}

/// Every node's answer at one scrape.
#[derive(Debug)]
struct Scrape {
    nodes: Vec<NodeScrape>,
}

fn ask(mut node: Node, top: &Query) -> NodeScrape {
    let result = (|| {
        let mut conn = node.endpoint.connect()?;
        node.learn_role(&mut conn);
        let endpoint = &node.endpoint;
        let text: String = query(endpoint, &mut conn, redis::cmd("INFO").arg("hotkey"))?;
        let info = parse_info(&text);
        let reply: Value = query(endpoint, &mut conn, &top.command())?;
        let top = TopEntry::list_from_redis(&reply)
            .map_err(|e| format!("{}: {BAD_TOP_REPLY}: {e}", endpoint.addr))?;
        let routes = match node.role {
            Role::Replica => None,
            Role::Master | Role::Unknown => {
                let reply: Value = query(endpoint, &mut conn, &redis::cmd("HOTKEY.ROUTES"))?;
                Some(
                    Routes::from_redis(&reply)
                        .map_err(|e| format!("{}: HOTKEY.ROUTES: {e}", endpoint.addr))?,
                )
            }
        };
        Ok(NodeData { info, top, routes })
    })();
    NodeScrape {
        addr: node.endpoint.addr.clone(),
        result,
    }
}

/// `hotkey_<field>:<value>` lines of `INFO hotkey`, prefix stripped.
fn parse_info(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| line.trim_end().strip_prefix("hotkey_"))
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

/// A key as a label value: valid UTF-8 stays as it is, except `\`, written `\\`; control
/// characters and bytes that are not UTF-8 are written `\xHH`. So two keys never share a
/// label value, and a binary key reads as redis-cli would show its bytes.
pub fn key_label(key: &[u8]) -> String {
    let mut out = String::with_capacity(key.len());
    for chunk in key.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                c if c.is_control() => {
                    let mut buf = [0; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        out.push_str(&format!("\\x{b:02x}"));
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// One family: a name, its help, and each sample's labels and value.
struct Series {
    name: String,
    help: &'static str,
    counter: bool,
    samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

impl Series {
    fn new(name: impl Into<String>, help: &'static str, counter: bool) -> Series {
        Series {
            name: name.into(),
            help,
            counter,
            samples: Vec::new(),
        }
    }
}

impl Scrape {
    /// Every family this scrape serves, in a stable order.
    fn series(&self) -> Vec<Series> {
        let mut up = Series::new(
            "hotkey_node_up",
            "1 when the node answered this scrape",
            false,
        );
        let mut info = Series::new(
            "hotkey_node_info",
            "The node's role, run id and database attribution (INFO hotkey), as labels",
            false,
        );
        let mut fields: Vec<Series> = Vec::new();
        let mut hot_reads = Series::new(
            "hotkey_hot_key_reads_per_second",
            "Read rate of each key in the master's hot set (HOTKEY.ROUTES)",
            false,
        );
        let mut hot_writes = Series::new(
            "hotkey_hot_key_writes_per_second",
            "Write rate of each key in the master's hot set (HOTKEY.ROUTES)",
            false,
        );
        let mut top_reads = Series::new(
            "hotkey_top_key_reads_per_second",
            "Read rate of the node's top keys (HOTKEY.TOP COUNT --count)",
            false,
        );
        let mut top_writes = Series::new(
            "hotkey_top_key_writes_per_second",
            "Write rate of the node's top keys (HOTKEY.TOP COUNT --count)",
            false,
        );
        for node in &self.nodes {
            let node_label = ("node", node.addr.clone());
            let data = match &node.result {
                Ok(data) => data,
                Err(_) => {
                    up.samples.push((vec![node_label], 0.0));
                    continue;
                }
            };
            up.samples.push((vec![node_label.clone()], 1.0));
            let mut labels = vec![node_label.clone()];
            for (name, value) in &data.info {
                if let Some(word) = WORDS.iter().find(|w| **w == name) {
                    labels.push((word, value.clone()));
                    continue;
                }
                let Ok(value) = value.parse::<f64>() else {
                    continue;
                };
                let counter = COUNTERS.contains(&name.as_str());
                let family = format!("hotkey_{name}");
                let index = match fields.iter().position(|s| s.name == family) {
                    Some(index) => index,
                    None => {
                        fields.push(Series::new(
                            family,
                            if counter {
                                "INFO hotkey counter of the same name (since the module loaded)"
                            } else {
                                "INFO hotkey field of the same name"
                            },
                            counter,
                        ));
                        fields.len() - 1
                    }
                };
                fields[index]
                    .samples
                    .push((vec![node_label.clone()], value));
            }
            info.samples.push((labels, 1.0));
            if let Some(routes) = &data.routes {
                for hot in &routes.keys {
                    let labels = vec![
                        node_label.clone(),
                        ("db", hot.db.to_string()),
                        ("key", key_label(&hot.key)),
                        ("reads_to", hot.advice.reads_to.as_str().to_owned()),
                        ("pinned", u8::from(hot.advice.pinned).to_string()),
                    ];
                    hot_reads.samples.push((labels.clone(), hot.reads_per_sec));
                    hot_writes.samples.push((labels, hot.writes_per_sec));
                }
            }
            for entry in &data.top {
                let mut labels = vec![
                    node_label.clone(),
                    ("db", entry.db.to_string()),
                    ("key", key_label(&entry.key)),
                ];
                if let Some(window) = entry.window_secs {
                    labels.push(("window", window.to_string()));
                }
                top_reads
                    .samples
                    .push((labels.clone(), entry.reads_per_sec));
                top_writes.samples.push((labels, entry.writes_per_sec));
            }
        }
        let mut all = vec![up, info];
        all.extend(fields);
        all.extend([hot_reads, hot_writes, top_reads, top_writes]);
        all
    }
}

impl fmt::Debug for Series {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Series").field("name", &self.name).finish()
    }
}

/// A scrape's families, handed to the registry for encoding.
#[derive(Debug)]
struct ScrapeCollector(Vec<Series>);

impl Collector for ScrapeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        for series in &self.0 {
            let metric_type = if series.counter {
                MetricType::Counter
            } else {
                MetricType::Gauge
            };
            let mut family =
                encoder.encode_descriptor(&series.name, series.help, None, metric_type)?;
            for (labels, value) in &series.samples {
                let metric = family.encode_family(labels)?;
                if series.counter {
                    ConstCounter::new(*value).encode(metric)?;
                } else {
                    ConstGauge::new(*value).encode(metric)?;
                }
            }
        }
        Ok(())
    }
}

/// The exporter: where to look, and the counts that outlive a scrape.
pub struct Exporter {
    seeds: Seeds,
    discovery: Discovery,
    top: Query,
    node_errors: Family<Vec<(&'static str, String)>, Counter>,
    discovery_errors: Counter,
}

impl Exporter {
    pub fn new(seeds: Seeds, discovery: Discovery, options: &Options) -> Exporter {
        Exporter {
            seeds,
            discovery,
            top: Query {
                count: options.count,
                by: By::Total,
                db: None,
                window: options.window,
            },
            node_errors: Family::default(),
            discovery_errors: Counter::default(),
        }
    }

    /// Asks every node (in parallel) and encodes what they said; errors are counted, and
    /// printed on stderr, each naming its node.
    pub fn scrape(&self) -> Result<String, fmt::Error> {
        let topology = Topology::discover(&self.seeds, &self.discovery);
        for error in &topology.errors {
            eprintln!("hotkey exporter: {error}");
            self.discovery_errors.inc();
        }
        let nodes: Vec<NodeScrape> = thread::scope(|s| {
            let asks: Vec<_> = topology
                .nodes
                .into_iter()
                .map(|node| s.spawn(|| ask(node, &self.top)))
                .collect();
            asks.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        for node in &nodes {
            if let Err(error) = &node.result {
                eprintln!("hotkey exporter: {error}");
                self.node_errors
                    .get_or_create(&vec![("node", node.addr.clone())])
                    .inc();
            }
        }
        let mut registry = Registry::default();
        registry.register_collector(Box::new(ScrapeCollector(Scrape { nodes }.series())));
        registry.register(
            "hotkey_exporter_node_errors",
            "Scrapes in which the node did not answer (down, refused, no module, ACL)",
            self.node_errors.clone(),
        );
        registry.register(
            "hotkey_exporter_discovery_errors",
            "Scrapes in which no cluster seed or sentinel answered",
            self.discovery_errors.clone(),
        );
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry)?;
        Ok(text)
    }
}

/// Serves `GET /metrics` on `listen` until the process is stopped; prints the bound address
/// first (`--listen 127.0.0.1:0` picks a free port).
pub fn run(exporter: Exporter, listen: &str) -> Result<bool, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the exporter's runtime: {e}"))?;
    runtime.block_on(serve(Arc::new(exporter), listen))
}

async fn serve(exporter: Arc<Exporter>, listen: &str) -> Result<bool, String> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("{CANNOT_LISTEN} {listen}: {e}"))?;
    let bound: SocketAddr = listener
        .local_addr()
        .map_err(|e| format!("{CANNOT_LISTEN} {listen}: {e}"))?;
    println!("hotkey exporter: listening on http://{bound}/metrics");
    let endpoint = Endpoint {
        index: INDEX,
        scrape: Box::new(move || {
            let exporter = Arc::clone(&exporter);
            Box::pin(async move {
                // The nodes are asked with blocking connections, off the runtime's thread.
                match tokio::task::spawn_blocking(move || exporter.scrape()).await {
                    Ok(text) => text.map_err(|error| error.to_string()),
                    Err(error) => Err(format!("the scrape did not finish: {error}")),
                }
            })
        }),
        log: log_trouble,
    };
    // It serves until the process is stopped.
    hotkey_metrics_http::serve(listener, endpoint, std::future::pending()).await;
    Ok(true)
}

fn log_trouble(trouble: Trouble<'_>) {
    match trouble {
        // A scraper that goes away mid-request is its own business.
        Trouble::Connection(_) => {}
        Trouble::Accept(error) => eprintln!("hotkey exporter: accept failed: {error}"),
        Trouble::Scrape(error) => eprintln!("hotkey exporter: the scrape failed: {error}"),
        other => eprintln!("hotkey exporter: {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_label_keeps_text_and_escapes_backslashes_controls_and_bytes() {
        assert_eq!(key_label(b"leaderboard:global"), "leaderboard:global");
        assert_eq!(key_label("ключ λ".as_bytes()), "ключ λ");
        assert_eq!(key_label(b"a\\b"), "a\\\\b");
        assert_eq!(key_label(b"\xff\x00bin\n"), "\\xff\\x00bin\\x0a");
        assert_ne!(key_label(b"\\xff"), key_label(b"\xff"), "never ambiguous");
    }

    #[test]
    fn info_fields_lose_their_prefix_and_other_lines_are_ignored() {
        let text = "# hotkey\r\nhotkey_enabled:1\r\nhotkey_role:master\r\nother:3\r\n";
        assert_eq!(
            parse_info(text),
            [
                ("enabled".to_owned(), "1".to_owned()),
                ("role".to_owned(), "master".to_owned())
            ]
        );
    }

    #[test]
    fn a_down_node_is_a_zero_and_counters_keep_their_type() {
        let scrape = Scrape {
            nodes: vec![
                NodeScrape {
                    addr: "a:1".into(),
                    result: Ok(NodeData {
                        info: parse_info("hotkey_commands_seen:7\nhotkey_hot_keys:2\n"),
                        top: Vec::new(),
                        routes: None,
                    }),
                },
                NodeScrape {
                    addr: "b:1".into(),
                    result: Err("b:1: connection refused".into()),
                },
            ],
        };
        let mut registry = Registry::default();
        registry.register_collector(Box::new(ScrapeCollector(scrape.series())));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        assert!(text.contains("hotkey_node_up{node=\"b:1\"} 0"), "{text}");
        assert!(text.contains("hotkey_node_up{node=\"a:1\"} 1"), "{text}");
        assert!(
            text.contains("# TYPE hotkey_commands_seen counter"),
            "{text}"
        );
        assert!(
            text.contains("hotkey_commands_seen_total{node=\"a:1\"} 7"),
            "{text}"
        );
        assert!(text.contains("hotkey_hot_keys{node=\"a:1\"} 2"), "{text}");
    }
}
