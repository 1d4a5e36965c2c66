//! `/metrics`: the proxy's counters in the OpenMetrics text format, which Prometheus reads.
//!
//! The text is `prometheus-client`'s; the HTTP side is `hotkey-metrics-http`'s, shared with
//! `hotkey exporter`.
//!
//! Counting is on every command's path, so it touches only atomics: per-route counters and
//! histograms are fixed arrays, not label maps behind a lock. Events that are rare by nature
//! (upstream errors, disconnects) use `prometheus-client`'s label families.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hotkey_metrics_http::{Endpoint, STOP_GRACE, Trouble};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder,
    NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

/// What `GET /` answers: where the metrics are.
const INDEX: &str = "hotkey-proxy: Prometheus metrics at /metrics\n";

/// Upper bounds of the latency histogram's buckets, in seconds: 50 µs (a cache hit) to 1 s.
const BUCKETS: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0,
];

/// Where a command was served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Route {
    /// By the master, over the shared pool.
    Master,
    /// By a replica (a hot read).
    Replica,
    /// From the proxy's cache (a hot read).
    Cache,
    /// By the proxy itself (`PING`, `HELLO`, an error it gives).
    Local,
    /// Over a client's own upstream connection (transactions, blocking, pub/sub).
    Tunnel,
}

impl Route {
    const ALL: [Route; 5] = [
        Route::Master,
        Route::Replica,
        Route::Cache,
        Route::Local,
        Route::Tunnel,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Route::Master => "master",
            Route::Replica => "replica",
            Route::Cache => "cache",
            Route::Local => "local",
            Route::Tunnel => "tunnel",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl EncodeLabelValue for Route {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), fmt::Error> {
        fmt::Write::write_str(encoder, self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabel {
    route: Route,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// What the upstream engine knows about one master, read at each scrape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamSnapshot {
    /// The master's address, as a label.
    pub master: String,
    /// Whether the proxy's link to the master is up.
    pub connected: bool,
    /// Keys the module calls hot now.
    pub hot_keys: u64,
    /// Cache entries dropped by tracking or by the proxy's own writes, since start.
    pub invalidations: u64,
    /// Times the hot set was read again in full, since start.
    pub resyncs: u64,
    /// `HOTKEY.REPORT` calls sent, since start.
    pub reports: u64,
    /// Replicas in the read rotation now.
    pub replicas_up: u64,
    /// Commands the proxy sent to the master (hot reads and cache fills included), since start.
    pub master_commands: u64,
    /// Hot reads a replica of the master served, since start.
    pub replica_reads: u64,
    /// Hot reads of the master's keys served from the cache, since start.
    pub cache_hits: u64,
}

/// The proxy's metrics: one, shared by every client task (wrap it in an `Arc`).
pub struct Metrics {
    registry: Registry,
    routes: Arc<Routes>,
    cache_hits: Counter,
    cache_misses: Counter,
    upstream_errors: Family<KindLabel, Counter>,
    clients_connected: Gauge,
    clients: Counter,
    clients_rejected: Counter,
    client_disconnects: Family<ReasonLabel, Counter>,
    protocol_errors: Counter,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Metrics whose per-master part is read from `upstream` at each scrape.
    pub fn new(upstream: Box<dyn Fn() -> Vec<UpstreamSnapshot> + Send + Sync>) -> Metrics {
        let mut registry = Registry::with_prefix("hotkey_proxy");
        let routes = Arc::new(Routes::default());
        registry.register_collector(Box::new(Arc::clone(&routes)));
        let mut metrics = Metrics {
            registry: Registry::default(),
            routes,
            cache_hits: Counter::default(),
            cache_misses: Counter::default(),
            upstream_errors: Family::default(),
            clients_connected: Gauge::default(),
            clients: Counter::default(),
            clients_rejected: Counter::default(),
            client_disconnects: Family::default(),
            protocol_errors: Counter::default(),
        };
        registry.register(
            "cache_hits",
            "Hot reads served from the proxy's cache",
            metrics.cache_hits.clone(),
        );
        registry.register(
            "cache_misses",
            "Hot reads the cache could not serve (sent upstream, then cached)",
            metrics.cache_misses.clone(),
        );
        registry.register(
            "upstream_errors",
            "Failed upstream requests and connections, by kind",
            metrics.upstream_errors.clone(),
        );
        registry.register(
            "clients_connected",
            "Client connections open now",
            metrics.clients_connected.clone(),
        );
        registry.register(
            "clients",
            "Client connections accepted since start",
            metrics.clients.clone(),
        );
        registry.register(
            "clients_rejected",
            "Client connections refused because --max-clients were open",
            metrics.clients_rejected.clone(),
        );
        registry.register(
            "client_disconnects",
            "Client connections closed, by reason",
            metrics.client_disconnects.clone(),
        );
        registry.register(
            "protocol_errors",
            "Client requests that were not valid RESP or broke a size limit",
            metrics.protocol_errors.clone(),
        );
        registry.register_collector(Box::new(Upstreams(upstream)));
        metrics.registry = registry;
        metrics
    }

    /// One command served, by route, and how long from its last byte read to its reply queued.
    pub fn command(&self, route: Route, elapsed: Duration) {
        let route = &self.routes.0[route.index()];
        route.commands.fetch_add(1, Ordering::Relaxed);
        route.latency.observe(elapsed);
    }

    /// One command sent over a client's own connection: counted, not timed (its reply is not
    /// matched to it; a subscriber's messages are not replies).
    pub fn tunneled(&self) {
        self.routes.0[Route::Tunnel.index()]
            .commands
            .fetch_add(1, Ordering::Relaxed);
    }

    /// A hot read served from the cache.
    pub fn cache_hit(&self) {
        self.cache_hits.inc();
    }

    /// A hot read the cache could not serve.
    pub fn cache_miss(&self) {
        self.cache_misses.inc();
    }

    /// An upstream request or connection failed; `kind` is `"connect"`, `"timeout"`, `"io"`...
    pub fn upstream_error(&self, kind: &'static str) {
        self.upstream_errors
            .get_or_create(&KindLabel { kind })
            .inc();
    }

    /// A client connection was accepted.
    pub fn client_connected(&self) {
        self.clients.inc();
        self.clients_connected.inc();
    }

    /// A client connection closed; `reason` is `"quit"`, `"eof"`, `"timeout"`...
    pub fn client_disconnected(&self, reason: &'static str) {
        self.clients_connected.dec();
        self.client_disconnects
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// A client connection was refused because `--max-clients` were open.
    pub fn client_rejected(&self) {
        self.clients_rejected.inc();
    }

    /// A client sent bad RESP or broke a size limit.
    pub fn protocol_error(&self) {
        self.protocol_errors.inc();
    }

    /// The text exposition, in the OpenMetrics format ([`hotkey_metrics_http::CONTENT_TYPE_OPENMETRICS`]). It fails
    /// only if an encoder refuses a value, which the HTTP side answers with a 500 rather than a
    /// truncated page.
    pub fn encode(&self) -> Result<String, fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// Per-route counts, indexed by [`Route::index`].
#[derive(Debug, Default)]
struct Routes([RouteCounts; Route::ALL.len()]);

#[derive(Debug, Default)]
struct RouteCounts {
    commands: AtomicU64,
    latency: Latency,
}

/// A histogram of atomics (`prometheus-client`'s takes a lock per observation).
#[derive(Debug, Default)]
struct Latency {
    /// Observations per bucket, not cumulative; the last one is +Inf.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Latency {
    fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Count, sum in seconds, and (upper bound, observations) per bucket; the encoder makes
    /// them cumulative.
    fn read(&self) -> (u64, f64, Vec<(f64, u64)>) {
        let buckets: Vec<(f64, u64)> = BUCKETS
            .iter()
            .chain([&f64::INFINITY])
            .zip(&self.buckets)
            .map(|(bound, bucket)| (*bound, bucket.load(Ordering::Relaxed)))
            .collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = Duration::from_nanos(self.sum_nanos.load(Ordering::Relaxed)).as_secs_f64();
        (count, sum, buckets)
    }
}

impl Collector for Routes {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        {
            let mut family = encoder.encode_descriptor(
                "commands",
                "Commands served, by route",
                None,
                MetricType::Counter,
            )?;
            for route in Route::ALL {
                let counts = &self.0[route.index()];
                ConstCounter::new(counts.commands.load(Ordering::Relaxed))
                    .encode(family.encode_family(&RouteLabel { route })?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "command_duration_seconds",
            "Time from a command's last byte read to its reply queued, by route",
            None,
            MetricType::Histogram,
        )?;
        for route in Route::ALL {
            let (count, sum, buckets) = self.0[route.index()].latency.read();
            family
                .encode_family(&RouteLabel { route })?
                .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
        }
        Ok(())
    }
}

/// The per-master part, read from the upstream engine at each scrape.
struct Upstreams(Box<dyn Fn() -> Vec<UpstreamSnapshot> + Send + Sync>);

impl fmt::Debug for Upstreams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Upstreams")
    }
}

type Field = fn(&UpstreamSnapshot) -> u64;

/// Per-master metrics: name, help, whether a counter (else a gauge), and the field.
const UPSTREAM_METRICS: [(&str, &str, bool, Field); 9] = [
    (
        "upstream_connected",
        "1 while the link to the master is up",
        false,
        |s| u64::from(s.connected),
    ),
    (
        "hot_keys",
        "Keys the hotkey module calls hot now",
        false,
        |s| s.hot_keys,
    ),
    (
        "cache_invalidations",
        "Cache entries dropped by tracking or by the proxy's own writes",
        true,
        |s| s.invalidations,
    ),
    (
        "resyncs",
        "Times the hot set was read again in full",
        true,
        |s| s.resyncs,
    ),
    (
        "reports",
        "HOTKEY.REPORT calls sent to the master",
        true,
        |s| s.reports,
    ),
    (
        "replicas_up",
        "Replicas in the read rotation now",
        false,
        |s| s.replicas_up,
    ),
    (
        "upstream_master_commands",
        "Commands sent to the master (on a cluster: of its slots)",
        true,
        |s| s.master_commands,
    ),
    (
        "upstream_replica_reads",
        "Hot reads of the master's keys served by its replicas",
        true,
        |s| s.replica_reads,
    ),
    (
        "upstream_cache_hits",
        "Hot reads of the master's keys served from the cache",
        true,
        |s| s.cache_hits,
    ),
];

impl Collector for Upstreams {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let snapshots = (self.0)();
        for (name, help, counter, field) in UPSTREAM_METRICS {
            let metric_type = if counter {
                MetricType::Counter
            } else {
                MetricType::Gauge
            };
            let mut family = encoder.encode_descriptor(name, help, None, metric_type)?;
            for snapshot in &snapshots {
                let labels = [("master", snapshot.master.as_str())];
                let metric = family.encode_family(&labels)?;
                let value = field(snapshot);
                if counter {
                    ConstCounter::new(value).encode(metric)?;
                } else {
                    ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX)).encode(metric)?;
                }
            }
        }
        Ok(())
    }
}

/// Serves `GET /metrics` (and a pointer at `GET /`, 404 elsewhere) on `listener` until
/// `shutdown` completes; then waits up to a few seconds for scrapes in progress.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) {
    let endpoint = Endpoint {
        index: INDEX,
        scrape: Box::new(move || {
            let text = metrics.encode().map_err(|error| error.to_string());
            Box::pin(std::future::ready(text))
        }),
        log: log_trouble,
    };
    hotkey_metrics_http::serve(listener, endpoint, shutdown).await;
}

fn log_trouble(trouble: Trouble<'_>) {
    match trouble {
        Trouble::Accept(error) => tracing::warn!(%error, "metrics: accept failed"),
        Trouble::Scrape(error) => tracing::error!(%error, "metrics: encoding failed"),
        Trouble::Connection(error) => {
            tracing::debug!(%error, "metrics: connection ended with an error");
        }
        Trouble::StillOpen => {
            tracing::warn!("metrics: scrapes still open after {STOP_GRACE:?}, closed");
        }
        _ => tracing::warn!(?trouble, "metrics"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotkey_metrics_http::CONTENT_TYPE_OPENMETRICS;
    use std::collections::HashMap;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const ODD_MASTER: &str = "10.0.0.1:6379 \"primary\"\\east\n";

    fn metrics() -> Metrics {
        Metrics::new(Box::new(|| {
            vec![UpstreamSnapshot {
                master: ODD_MASTER.into(),
                connected: true,
                hot_keys: 3,
                invalidations: 7,
                resyncs: 2,
                reports: 11,
                replicas_up: 1,
                master_commands: 40,
                replica_reads: 5,
                cache_hits: 9,
            }]
        }))
    }

    /// The exposition as `# TYPE` lines (name → type) and samples (line without the value →
    /// value), checking each line's shape on the way.
    fn parse(text: &str) -> (HashMap<String, String>, HashMap<String, f64>) {
        let mut types = HashMap::new();
        let mut samples = HashMap::new();
        let mut lines = text.lines().peekable();
        while let Some(line) = lines.next() {
            if line == "# EOF" {
                assert!(lines.peek().is_none(), "text after # EOF");
                return (types, samples);
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                types.insert(name.to_owned(), kind.to_owned());
            } else if let Some(rest) = line.strip_prefix("# HELP ") {
                let (_, help) = rest.split_once(' ').unwrap();
                assert!(!help.is_empty(), "{line}");
            } else {
                let (series, value) = line.rsplit_once(' ').unwrap();
                let name = series.split('{').next().unwrap();
                assert!(
                    types.keys().any(|family| name.starts_with(family.as_str())),
                    "{name} has no # TYPE"
                );
                samples.insert(series.to_owned(), value.parse().unwrap());
            }
        }
        panic!("no # EOF in\n{text}");
    }

    #[test]
    fn the_exposition_has_every_metric_with_its_type() {
        let metrics = metrics();
        metrics.command(Route::Cache, Duration::from_micros(30));
        metrics.command(Route::Cache, Duration::from_micros(70));
        metrics.command(Route::Master, Duration::from_secs(2));
        metrics.cache_hit();
        metrics.cache_miss();
        metrics.cache_miss();
        metrics.upstream_error("timeout");
        metrics.client_connected();
        metrics.client_connected();
        metrics.client_disconnected("eof");
        metrics.client_rejected();
        metrics.protocol_error();
        let text = metrics.encode().unwrap();
        let (types, samples) = parse(&text);
        for (name, kind) in [
            ("hotkey_proxy_commands", "counter"),
            ("hotkey_proxy_command_duration_seconds", "histogram"),
            ("hotkey_proxy_cache_hits", "counter"),
            ("hotkey_proxy_cache_misses", "counter"),
            ("hotkey_proxy_upstream_errors", "counter"),
            ("hotkey_proxy_clients_connected", "gauge"),
            ("hotkey_proxy_clients", "counter"),
            ("hotkey_proxy_clients_rejected", "counter"),
            ("hotkey_proxy_client_disconnects", "counter"),
            ("hotkey_proxy_protocol_errors", "counter"),
            ("hotkey_proxy_upstream_connected", "gauge"),
            ("hotkey_proxy_hot_keys", "gauge"),
            ("hotkey_proxy_cache_invalidations", "counter"),
            ("hotkey_proxy_resyncs", "counter"),
            ("hotkey_proxy_reports", "counter"),
            ("hotkey_proxy_replicas_up", "gauge"),
            ("hotkey_proxy_upstream_master_commands", "counter"),
            ("hotkey_proxy_upstream_replica_reads", "counter"),
            ("hotkey_proxy_upstream_cache_hits", "counter"),
        ] {
            assert_eq!(types.get(name).map(String::as_str), Some(kind), "{name}");
        }
        let sample = |series: &str| {
            *samples
                .get(series)
                .unwrap_or_else(|| panic!("{series} missing from\n{text}"))
        };
        assert_eq!(sample("hotkey_proxy_commands_total{route=\"cache\"}"), 2.0);
        assert_eq!(sample("hotkey_proxy_commands_total{route=\"master\"}"), 1.0);
        assert_eq!(sample("hotkey_proxy_commands_total{route=\"tunnel\"}"), 0.0);
        let bucket = |route: &str, le: &str| {
            sample(&format!(
                "hotkey_proxy_command_duration_seconds_bucket{{le=\"{le}\",route=\"{route}\"}}"
            ))
        };
        assert_eq!(bucket("cache", "0.00005"), 1.0);
        assert_eq!(bucket("cache", "0.0001"), 2.0);
        assert_eq!(bucket("master", "1.0"), 0.0);
        assert_eq!(bucket("master", "+Inf"), 1.0);
        assert_eq!(
            sample("hotkey_proxy_command_duration_seconds_count{route=\"master\"}"),
            1.0
        );
        assert_eq!(sample("hotkey_proxy_cache_misses_total"), 2.0);
        assert_eq!(
            sample("hotkey_proxy_upstream_errors_total{kind=\"timeout\"}"),
            1.0
        );
        assert_eq!(sample("hotkey_proxy_clients_connected"), 1.0);
        assert_eq!(sample("hotkey_proxy_clients_total"), 2.0);
        assert_eq!(
            sample("hotkey_proxy_client_disconnects_total{reason=\"eof\"}"),
            1.0
        );
        assert_eq!(sample("hotkey_proxy_clients_rejected_total"), 1.0);
        assert_eq!(sample("hotkey_proxy_protocol_errors_total"), 1.0);
        let master = r#"master="10.0.0.1:6379 \"primary\"\\east\n""#;
        assert_eq!(sample(&format!("hotkey_proxy_hot_keys{{{master}}}")), 3.0);
        assert_eq!(
            sample(&format!(
                "hotkey_proxy_cache_invalidations_total{{{master}}}"
            )),
            7.0
        );
        assert_eq!(
            sample(&format!("hotkey_proxy_upstream_connected{{{master}}}")),
            1.0
        );
        assert_eq!(
            sample(&format!("hotkey_proxy_resyncs_total{{{master}}}")),
            2.0
        );
        assert_eq!(
            sample(&format!("hotkey_proxy_reports_total{{{master}}}")),
            11.0
        );
        assert_eq!(
            sample(&format!("hotkey_proxy_replicas_up{{{master}}}")),
            1.0
        );
    }

    async fn get(address: std::net::SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }

    #[tokio::test]
    async fn http_serves_the_proxys_metrics_until_the_stop() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let metrics = Arc::new(metrics());
        metrics.cache_hit();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, Arc::clone(&metrics), async {
            let _ = stopped.await;
        }));

        let response = get(address, "/metrics").await;
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(
            response.contains(&format!("content-type: {CONTENT_TYPE_OPENMETRICS}\r\n")),
            "{response}"
        );
        assert!(
            response.contains("hotkey_proxy_cache_hits_total 1\n"),
            "{response}"
        );
        assert!(response.ends_with("# EOF\n"), "{response}");

        let index = get(address, "/").await;
        assert!(index.ends_with(INDEX), "{index}");

        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("serve did not stop")
            .unwrap();
        assert!(tokio::net::TcpStream::connect(address).await.is_err());
    }
}
