//! `leaderboard` (`make run`): the seed story, live. A master and two replicas with the module,
//! started from `redis.conf.example` on free loopback ports; game servers write scores; players
//! read the top 10, a trickle at first, then — the tournament ends — as fast as they can. Every
//! second it prints where those reads were served, so the move from the master to the cache (or,
//! with `--no-cache`, to the replicas) shows as it happens; at the end, a summary. Ctrl-C ends
//! the run early, with the summary; the servers stop either way. With `--proxy` the players and
//! game servers speak plain Redis to a `hotkey-proxy` the demo runs in front of the master (or,
//! with `--cluster`, of the cluster).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use hotkey_demo::format::{fine_percent, percent, rate, thousands};
use hotkey_demo::plot;
use hotkey_demo::proxy::{labelled, routes, scrape};
use hotkey_demo::stats::per_sec;
use hotkey_demo::{
    CHAMPION_PREFIX, LEADERBOARD, Node, Probe, ProxyProcess, ReplicationGroup, Sample, Settings,
    Window, Workload, top_ten,
};
use hotkey_protocol::TopEntry;
use hotkey_router::{Metrics, ShardView, Target};
use hotkey_servers::{Cluster, module_path};
use tokio::time::{Instant, MissedTickBehavior, interval, interval_at, sleep_until};

const USAGE: &str = "\
usage: leaderboard [options]
  --seconds N         run this long (default 30), or until Ctrl-C
  --calm-seconds N    the calm before the surge (default 5)
  --replicas N        replicas of the master, 0 to 2 (default 2)
  --cluster           a Redis Cluster of 3 masters with a replica each instead (the players'
                      router follows every shard; a line per shard each second; the players
                      also read a second hot key, champion:<n>, on another shard)
  --proxy             players and game servers speak plain Redis (redis-rs, no router) to a
                      hotkey-proxy the demo starts in front of the master (with --cluster, of
                      the cluster); the cache column is
                      the proxy's /metrics hotkey_proxy_commands_total{route=\"cache\"} (needs
                      `cargo build --release -p hotkey-proxy`, or HOTKEY_PROXY=/path/to/it)
  --no-cache          the readers' router (or the proxy) does not cache: hot reads go to the
                      replicas
  --readers N         reader tasks (default 16)
  --writes-per-sec N  leaderboard writes per second (default 100)
  --cold-per-sec N    background GET/SET per second on cold keys (default 3000)
  --csv FILE          also write each second's leaderboard reads/s and the shares served by
                      master, replicas and cache to FILE
  --plot FILE.svg     also draw them, second by second, as an SVG chart at the end";

/// How often the demo looks at the router's hot set, to time the detection.
const POLL: Duration = Duration::from_millis(10);

/// The command line.
#[derive(Debug, Clone)]
struct Args {
    seconds: u64,
    calm_seconds: u64,
    replicas: usize,
    cluster: bool,
    proxy: bool,
    settings: Settings,
    csv: Option<PathBuf>,
    plot: Option<PathBuf>,
}

impl Args {
    /// The arguments after the program name; `Ok(None)` for `--help`.
    fn parse(args: impl IntoIterator<Item = String>) -> Result<Option<Args>, String> {
        let mut parsed = Args {
            seconds: 30,
            calm_seconds: 5,
            replicas: 2,
            cluster: false,
            proxy: false,
            settings: Settings::default(),
            csv: None,
            plot: None,
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| -> Result<u64, String> {
                let v = args.next().ok_or_else(|| format!("{name} needs a value"))?;
                v.parse()
                    .map_err(|_| format!("{name} must be a whole number, not {v:?}"))
            };
            match arg.as_str() {
                "--seconds" => parsed.seconds = value("--seconds")?,
                "--calm-seconds" => parsed.calm_seconds = value("--calm-seconds")?,
                "--replicas" => {
                    parsed.replicas = match value("--replicas")? {
                        n @ 0..=2 => n as usize,
                        n => return Err(format!("--replicas must be 0, 1 or 2, not {n}")),
                    }
                }
                "--no-cache" => parsed.settings.cache = false,
                "--cluster" => parsed.cluster = true,
                "--proxy" => parsed.proxy = true,
                "--readers" => parsed.settings.readers = value("--readers")? as usize,
                "--writes-per-sec" => {
                    parsed.settings.writes_per_sec = value("--writes-per-sec")? as f64
                }
                "--cold-per-sec" => parsed.settings.cold_per_sec = value("--cold-per-sec")? as f64,
                "--csv" => {
                    let path = args.next().ok_or("--csv needs a file name")?;
                    parsed.csv = Some(PathBuf::from(path));
                }
                "--plot" => {
                    let path = args.next().ok_or("--plot needs a file name")?;
                    parsed.plot = Some(PathBuf::from(path));
                }
                "-h" | "--help" => return Ok(None),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        Ok(Some(parsed))
    }
}

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("leaderboard: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // The servers outlive the runtime: the routers stop first, then the guards stop the servers.
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("leaderboard: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let module = match module_path() {
        Ok(module) => module,
        Err(e) => {
            eprintln!("leaderboard: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = if args.cluster {
        println!(
            "starting a Redis Cluster of 3 masters × 1 replica, module {}",
            module.display()
        );
        // Every command counted, as in the runs the README reports.
        let cluster = match Cluster::builder(3, 1).module_arg("sample-max", "1").start() {
            Ok(cluster) => cluster,
            Err(e) => {
                eprintln!("leaderboard: cannot start the cluster: {e}");
                return ExitCode::FAILURE;
            }
        };
        let (nodes, champion, champion_port) = match shards(&cluster) {
            Ok(shards) => shards,
            Err(e) => {
                eprintln!("leaderboard: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!(
            "{LEADERBOARD} lives on the master at port {}, {champion} on the one at port {champion_port}",
            nodes[0].port
        );
        let mut proxy = if args.proxy {
            let upstream: Vec<String> = std::iter::once("--cluster".to_string())
                .chain(cluster.urls())
                .collect();
            match ProxyProcess::start(&upstream, args.settings.cache) {
                Ok(proxy) => {
                    println!(
                        "started hotkey-proxy in front of the cluster: clients on {}, /metrics on {}",
                        proxy.address, proxy.metrics
                    );
                    Some(proxy)
                }
                Err(e) => {
                    eprintln!("leaderboard: cannot start hotkey-proxy: {e}");
                    return ExitCode::FAILURE;
                }
            }
        } else {
            None
        };
        let result = runtime.block_on(async {
            let workload = match &proxy {
                Some(proxy) => {
                    Workload::start_cluster_proxied(
                        &cluster.urls(),
                        &proxy.url(),
                        &args.settings,
                        &champion,
                    )
                    .await
                }
                None => {
                    Workload::start_cluster(&cluster.urls(), &args.settings, Some(&champion)).await
                }
            };
            let workload = workload.map_err(|e| e.to_string())?;
            let result = run(&nodes, &workload, &args, proxy.as_mut()).await;
            let hot = workload
                .readers
                .hot_keys()
                .iter()
                .any(|h| h.key == champion.as_bytes());
            println!(
                "  second hot key {champion} (shard at port {champion_port}): {} reads, {}",
                thousands(
                    workload
                        .tally
                        .champion
                        .load(std::sync::atomic::Ordering::Relaxed)
                ),
                if hot {
                    "hot at the end: its shard's line shows where they went"
                } else {
                    "not hot at the end"
                }
            );
            result
        });
        // The routers, then the proxy, stop before the servers do.
        drop(runtime);
        if let Some(proxy) = proxy.take() {
            drop(proxy);
            println!("hotkey-proxy stopped");
        }
        result
    } else {
        println!(
            "starting a master and {} replica(s) from redis.conf.example, module {}",
            args.replicas,
            module.display()
        );
        let group = match ReplicationGroup::start(args.replicas) {
            Ok(group) => group,
            Err(e) => {
                eprintln!("leaderboard: cannot start the servers: {e}");
                return ExitCode::FAILURE;
            }
        };
        let mut proxy = if args.proxy {
            match ProxyProcess::start(&[group.master_url()], args.settings.cache) {
                Ok(proxy) => {
                    println!(
                        "started hotkey-proxy in front of the master: clients on {}, /metrics on {}",
                        proxy.address, proxy.metrics
                    );
                    Some(proxy)
                }
                Err(e) => {
                    eprintln!("leaderboard: cannot start hotkey-proxy: {e}");
                    return ExitCode::FAILURE;
                }
            }
        } else {
            None
        };
        let result = runtime.block_on(async {
            let workload = match &proxy {
                Some(proxy) => {
                    Workload::start_proxied(&group.master_url(), &proxy.url(), &args.settings).await
                }
                None => Workload::start(&group.master_url(), &args.settings).await,
            };
            let workload = workload.map_err(|e| e.to_string())?;
            run(&group.nodes(), &workload, &args, proxy.as_mut()).await
        });
        drop(runtime);
        // The proxy stops before the servers do.
        if let Some(proxy) = proxy.take() {
            drop(proxy);
            println!("hotkey-proxy stopped");
        }
        result
    };
    println!("servers stopped");
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("leaderboard: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The leaderboard's shard as the table shows it (its master, then its replicas), and the second
/// hot key: the first `champion:<n>` on another shard, with the port of its master.
fn shards(cluster: &Cluster) -> Result<(Vec<Node>, String, u16), hotkey_servers::Error> {
    let master = cluster.node_for_key(LEADERBOARD.as_bytes())?;
    let nodes: Vec<Node> = std::iter::once(("master".to_string(), master))
        .chain(
            cluster
                .replicas(master)?
                .into_iter()
                .enumerate()
                .map(|(i, r)| (format!("replica {}", i + 1), r)),
        )
        .map(|(name, n)| Node { name, port: n.port })
        .collect();
    let mut n = 0u64;
    loop {
        let champion = format!("{CHAMPION_PREFIX}{n}");
        let owner = cluster.node_for_key(champion.as_bytes())?;
        if owner.id != master.id {
            return Ok((nodes, champion, owner.port));
        }
        n += 1;
    }
}

/// What the run has seen of the hot set.
struct Detection {
    /// When the router first had the key in its hot set, and the counters then.
    first: Option<(Instant, Sample)>,
    /// In the router's hot set at the last poll.
    hot: bool,
    /// Times it left the hot set after the first detection.
    left: u32,
}

/// The story on `nodes`, with the players of `workload`; `proxy`, when they go through it.
async fn run(
    nodes: &[Node],
    workload: &Workload,
    args: &Args,
    mut proxy: Option<&mut ProxyProcess>,
) -> Result<(), String> {
    for node in nodes {
        println!("  {:<10} 127.0.0.1:{}", node.name, node.port);
    }
    let mut probe = Probe::connect(nodes).await.map_err(|e| e.to_string())?;
    if let Some(proxy) = &proxy {
        probe = probe.proxy_metrics(proxy.metrics);
    }
    // Who moves the players' reads.
    let mover = if proxy.is_some() { "proxy" } else { "router" };
    let mut csv = match &args.csv {
        Some(path) => {
            Some(Csv::create(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?)
        }
        None => None,
    };
    let mut seconds = Vec::new();
    let s = &args.settings;
    println!(
        "\ntraffic: {} game servers write scores ({} ZADD/s); {} players read the top 10 \
         (ZREVRANGE {LEADERBOARD} 0 9 WITHSCORES); {} GET/SET/s on {} cold user keys.\n\
         {} {}.",
        s.writers,
        rate(s.writes_per_sec),
        s.readers,
        rate(s.cold_per_sec),
        thousands(s.cold_keys),
        if proxy.is_some() {
            "They speak plain Redis, a connection each, to hotkey-proxy (the cache column is its \
             /metrics hotkey_proxy_commands_total{route=\"cache\"}, the others the nodes' \
             commandstats), which"
        } else {
            "The players' router"
        },
        if s.cache {
            "may cache hot reads (the module advises a TTL)"
        } else {
            "does not cache (--no-cache): hot reads go to replicas"
        }
    );

    let start = Instant::now();
    let first = probe.sample(workload).await?;
    let mut previous = first.clone();
    let proxy_metrics = proxy.as_ref().map(|p| p.metrics);
    let mut previous_shards = shard_counts(workload, proxy_metrics, args.cluster).await?;
    let surge_at = start + Duration::from_secs(args.calm_seconds);
    let end = start + Duration::from_secs(args.seconds);
    // The counters when the surge started (None while calm).
    let mut surged: Option<Sample> = None;
    let mut detection = Detection {
        first: None,
        hot: false,
        left: 0,
    };
    let mut poll = interval(POLL);
    poll.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut second = interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    second.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);

    if args.calm_seconds > 0 {
        banner(
            start,
            start,
            &format!(
                "the game is calm: {} leaderboard reads/s, under the module's hot-threshold",
                rate(s.calm_reads_per_sec)
            ),
        );
    }
    print_header();
    loop {
        tokio::select! {
            signal = &mut ctrl_c => {
                match signal {
                    Ok(()) => println!("\nCtrl-C: stopping"),
                    Err(e) => eprintln!("\ncannot listen for Ctrl-C ({e}): stopping"),
                }
                break;
            }
            _ = sleep_until(end) => break,
            _ = sleep_until(surge_at), if surged.is_none() => {
                surged = Some(
                    probe.sample(workload).await.map_err(|e| blame(proxy.as_deref_mut(), e))?
                );
                workload.surge();
                banner(start, Instant::now(), &format!(
                    "the tournament ends: {} players read the top 10 as fast as they can",
                    s.readers
                ));
            }
            _ = poll.tick() => {
                let hot = workload.leaderboard_hot();
                match (&hot, detection.hot) {
                    (Some(view), false) => {
                        let now = Instant::now();
                        let route = route_name(workload.readers.route(&top_ten()));
                        let after = if surged.is_some() {
                            format!(" {:.2} s after the surge", now.duration_since(surge_at).as_secs_f64())
                        } else {
                            String::new()
                        };
                        let what = if detection.first.is_none() { "is hot" } else { "is hot again" };
                        banner(start, now, &format!(
                            "{LEADERBOARD} {what}{after}: the module advises reads to {}, \
                             cache {} ms; the {mover} now sends its reads to the {route}",
                            view.advice.reads_to.as_str(),
                            view.advice.cache_ttl_ms
                        ));
                        if detection.first.is_none() {
                            let sample = probe
                                .sample(workload)
                                .await
                                .map_err(|e| blame(proxy.as_deref_mut(), e))?;
                            detection.first = Some((now, sample));
                            if workload.readers.route(&top_ten()) != Target::Master {
                                println!(
                                    "    (HOTKEY.TOP now counts the reads the {mover} served \
                                     elsewhere too: it reports them once a second, and the \
                                     module feeds each report in over the next second)"
                                );
                            }
                        }
                    }
                    (None, true) => {
                        detection.left += 1;
                        banner(start, Instant::now(), &format!("{LEADERBOARD} left the hot set"));
                    }
                    _ => {}
                }
                detection.hot = hot.is_some();
            }
            _ = second.tick() => {
                let now = probe
                    .sample(workload)
                    .await
                    .map_err(|e| blame(proxy.as_deref_mut(), e))?;
                let top = probe.top(5).await.map_err(|e| e.to_string())?;
                let window = Window::between(&previous, &now);
                print_second(start, workload, &probe, &window, &top);
                let shards = shard_counts(workload, proxy_metrics, args.cluster).await?;
                if args.cluster {
                    print_shards(&previous_shards, &shards, window.secs);
                }
                previous_shards = shards;
                let second = plotted_second(start.elapsed(), &window, workload.leaderboard_hot().is_some());
                if let Some(csv) = &mut csv {
                    csv.row(&second)
                        .map_err(|e| format!("cannot write the CSV file: {e}"))?;
                }
                if args.plot.is_some() {
                    seconds.push(second);
                }
                previous = now;
            }
        }
    }
    // After a Ctrl-C from a terminal the servers got the SIGINT too and may be gone already.
    let last = match probe.sample(workload).await {
        Ok(last) => last,
        Err(e) => {
            println!("(the servers no longer answer: {e}; the summary ends at the last second)");
            previous
        }
    };
    summary(start, &first, surged.as_ref(), &detection, &last);
    if let Some(path) = &args.plot {
        plot::draw(path, &plot_title(args), &seconds)?;
        println!("drew {}", path.display());
    }
    match (&proxy, &workload.writers) {
        (Some(proxy), _) => print_proxy(proxy).await,
        (None, Some(writers)) => {
            print_router("players' router", &workload.readers.metrics());
            print_router("game servers' router", &writers.metrics());
        }
        (None, None) => print_router("players' router", &workload.readers.metrics()),
    }
    Ok(())
}

/// `e`, or the proxy's exit status and log when it has exited: the cause of a failed sample.
fn blame(proxy: Option<&mut ProxyProcess>, e: String) -> String {
    match proxy.map(|p| p.check()) {
        Some(Err(exited)) => exited,
        _ => e,
    }
}

/// The second ending `elapsed` after the start: reads/s and the shares of the reads served.
fn plotted_second(elapsed: Duration, w: &Window, hot: bool) -> plot::Second {
    let shares = w.shares_of_served();
    plot::Second {
        seconds: elapsed.as_secs_f64(),
        reads_per_sec: w.reads_per_sec(),
        master: shares.master,
        replicas: shares.replicas,
        cache: shares.cache,
        hot,
    }
}

/// `leaderboard:global, 2 replicas + the router's cache`: what the run was.
fn plot_title(args: &Args) -> String {
    let nodes = if args.cluster {
        "3 masters × 1 replica".to_owned()
    } else {
        match args.replicas {
            1 => "1 replica".to_owned(),
            n => format!("{n} replicas"),
        }
    };
    let mover = if args.proxy {
        "hotkey-proxy"
    } else {
        "the router"
    };
    let cache = if args.settings.cache {
        format!(" + {mover}'s cache")
    } else {
        format!(", {mover}, no cache")
    };
    format!("{LEADERBOARD} reads: {nodes}{cache}")
}

/// `--csv`: one row a second.
struct Csv(BufWriter<File>);

impl Csv {
    fn create(path: &std::path::Path) -> std::io::Result<Csv> {
        let mut out = BufWriter::new(File::create(path)?);
        writeln!(out, "seconds,reads_per_sec,master,replicas,cache,hot")?;
        Ok(Csv(out))
    }

    fn row(&mut self, s: &plot::Second) -> std::io::Result<()> {
        writeln!(
            self.0,
            "{:.2},{:.0},{:.4},{:.4},{:.4},{}",
            s.seconds,
            s.reads_per_sec,
            s.master,
            s.replicas,
            s.cache,
            u8::from(s.hot)
        )?;
        self.0.flush()
    }
}

fn banner(start: Instant, at: Instant, text: &str) {
    println!(
        "--- {:.2} s: {text} ---",
        at.duration_since(start).as_secs_f64()
    );
}

fn print_header() {
    println!(
        "{:>5}  {:<24} {:>11} {:>8} {:>9} {:>8} {:>7}",
        "time", LEADERBOARD, "lb reads/s", "master", "replicas", "cache", "errors"
    );
}

fn route_name(target: Target) -> &'static str {
    match target {
        Target::Cache => "cache",
        Target::Replica => "replicas",
        _ => "master",
    }
}

/// One second: the leaderboard's state and where its reads went, each node's load, the
/// module's top 5, and any error messages.
fn print_second(start: Instant, workload: &Workload, probe: &Probe, w: &Window, top: &[TopEntry]) {
    let status = match workload.leaderboard_hot() {
        Some(_) => format!(
            "HOT, reads to {}",
            route_name(workload.readers.route(&top_ten()))
        ),
        None => "not hot".to_string(),
    };
    let shares = w.shares_of_served();
    println!(
        "{:>4}s  {:<24} {:>11} {:>8} {:>9} {:>8} {:>7}",
        start.elapsed().as_secs(),
        status,
        rate(w.reads_per_sec()),
        percent(shares.master),
        percent(shares.replicas),
        percent(shares.cache),
        thousands(w.errors)
    );
    let nodes: Vec<String> = probe
        .nodes()
        .zip(&w.nodes)
        .map(|(node, calls)| {
            format!(
                "{} {} cmd/s, {} lb/s",
                node.name,
                rate(calls.total as f64 / w.secs),
                rate(calls.zrevrange as f64 / w.secs)
            )
        })
        .collect();
    println!("       nodes: {}", nodes.join(" | "));
    let entries: Vec<String> = top
        .iter()
        .map(|e| {
            format!(
                "{} {} r/s {} w/s{}",
                String::from_utf8_lossy(&e.key),
                rate(e.reads_per_sec),
                rate(e.writes_per_sec),
                if e.hot { " hot" } else { "" }
            )
        })
        .collect();
    println!("       HOTKEY.TOP: {}", entries.join(" | "));
    for message in workload.tally.take_errors() {
        println!("       error: {message}");
    }
}

/// Where one shard's commands went since the start: its master, its replicas, the cache.
#[derive(Debug, Clone, Copy, Default)]
struct ShardCounts {
    master: u64,
    replica: u64,
    cache: u64,
}

/// Each shard of the cluster (as the players' router, or the hot-set follower, sees it) with
/// its counts: the router's own, or with `--proxy` the proxy's per-master counters from
/// `/metrics` at `proxy`. Nothing on one master (`cluster` false): no shard lines.
async fn shard_counts(
    workload: &Workload,
    proxy: Option<std::net::SocketAddr>,
    cluster: bool,
) -> Result<Vec<(ShardView, ShardCounts)>, String> {
    if !cluster {
        return Ok(Vec::new());
    }
    let text = match proxy {
        Some(address) => Some(scrape(address).await?),
        None => None,
    };
    Ok(workload
        .readers
        .shards()
        .into_iter()
        .map(|shard| {
            let counts = match &text {
                Some(text) => {
                    let counter = |name: &str| {
                        labelled(text, name, "master", &shard.master).unwrap_or_default()
                    };
                    ShardCounts {
                        master: counter("hotkey_proxy_upstream_master_commands_total"),
                        replica: counter("hotkey_proxy_upstream_replica_reads_total"),
                        cache: counter("hotkey_proxy_upstream_cache_hits_total"),
                    }
                }
                None => ShardCounts {
                    master: shard.metrics.master,
                    replica: shard.metrics.replica,
                    cache: shard.metrics.cache_hits,
                },
            };
            (shard, counts)
        })
        .collect())
}

/// A line per shard: where the commands of its keys went this second.
fn print_shards(
    previous: &[(ShardView, ShardCounts)],
    now: &[(ShardView, ShardCounts)],
    secs: f64,
) {
    for (shard, m) in now {
        let before = previous
            .iter()
            .find(|(p, _)| p.master == shard.master)
            .map(|(_, counts)| *counts)
            .unwrap_or_default();
        let slots: Vec<String> = shard
            .slots
            .iter()
            .map(|r| format!("{}-{}", r.start, r.end))
            .collect();
        println!(
            "       shard {} (slots {}): master {} cmd/s, replicas {} reads/s, cache {} hits/s",
            shard.master,
            slots.join(","),
            rate(per_sec(m.master.saturating_sub(before.master), secs)),
            rate(per_sec(m.replica.saturating_sub(before.replica), secs)),
            rate(per_sec(m.cache.saturating_sub(before.cache), secs))
        );
    }
}

/// Where the reads went while the game was calm (all on the master) and after the detection.
/// The moments between the surge and the detection (a fraction of a second, the reads piling
/// onto the master) are left out: the detection is seen by polling, so a window ending there
/// would also hold some reads already routed.
fn summary(
    start: Instant,
    first: &Sample,
    surge: Option<&Sample>,
    detection: &Detection,
    last: &Sample,
) {
    let at = |i: Instant| i.duration_since(start).as_secs_f64();
    println!("\nsummary, {:.1} s:", at(last.at));
    let line = |label: &str, from: &Sample, to: &Sample| {
        let w = Window::between(from, to);
        let shares = w.shares_of_served();
        println!(
            "  {:<32} {:>11} reads, {:>9} reads/s: master {:>7} ({}), replicas {:>7}, cache {:>7}",
            format!("{label} ({:.1}–{:.1} s)", at(from.at), at(to.at)),
            thousands(w.reads),
            rate(w.reads_per_sec()),
            fine_percent(shares.master),
            thousands(w.master_reads()),
            fine_percent(shares.replicas),
            fine_percent(shares.cache)
        );
    };
    let calm_end = surge.unwrap_or(last);
    if calm_end.at > first.at {
        line("calm", first, calm_end);
    }
    match (&detection.first, surge) {
        (Some((when, sample)), Some(surge)) => {
            println!(
                "  surge at {:.1} s; {LEADERBOARD} detected hot {:.2} s later",
                at(surge.at),
                when.duration_since(surge.at).as_secs_f64()
            );
            line("after detection", sample, last);
        }
        (Some((_, sample)), None) => line("after detection", sample, last),
        (None, Some(surge)) => {
            println!(
                "  surge at {:.1} s; {LEADERBOARD} never detected hot",
                at(surge.at)
            );
            line("surge", surge, last);
        }
        (None, None) => {}
    }
    if detection.left > 0 {
        println!(
            "  note: {LEADERBOARD} left the hot set {} time(s) after it was detected",
            detection.left
        );
    }
    let errors = last.tally.errors.saturating_sub(first.tally.errors);
    println!(
        "  errors: {} ({} leaderboard writes, {} cold-key commands answered)",
        thousands(errors),
        thousands(last.tally.writes),
        thousands(last.tally.cold)
    );
}

fn print_router(name: &str, m: &Metrics) {
    println!("  {name}: {m}");
}

/// The proxy's commands by route, from its `/metrics`.
async fn print_proxy(proxy: &ProxyProcess) {
    match scrape(proxy.metrics).await {
        Ok(text) => {
            let counts: Vec<String> = routes(&text)
                .into_iter()
                .map(|(route, n)| format!("{route} {}", thousands(n)))
                .collect();
            println!("  hotkey-proxy commands by route: {}", counts.join(", "));
        }
        Err(e) => println!("  (hotkey-proxy no longer answers: {e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Args>, String> {
        Args::parse(args.iter().map(|a| a.to_string()))
    }

    #[test]
    fn defaults_and_flags() {
        let args = parse(&[]).unwrap().unwrap();
        assert_eq!((args.seconds, args.calm_seconds, args.replicas), (30, 5, 2));
        assert!(args.settings.cache);
        let args = parse(&["--seconds", "8", "--no-cache", "--replicas", "1"])
            .unwrap()
            .unwrap();
        assert_eq!((args.seconds, args.replicas), (8, 1));
        assert!(!args.settings.cache);
        assert!(!args.cluster);
        assert!(parse(&["--cluster"]).unwrap().unwrap().cluster);
        assert!(parse(&["--proxy"]).unwrap().unwrap().proxy);
        let both = parse(&["--cluster", "--proxy"]).unwrap().unwrap();
        assert!(both.cluster && both.proxy);
        assert!(parse(&["--help"]).unwrap().is_none());
    }

    #[test]
    fn bad_arguments_are_refused() {
        assert_eq!(
            parse(&["--seconds"]).unwrap_err(),
            "--seconds needs a value"
        );
        assert!(parse(&["--seconds", "x"]).is_err());
        assert!(parse(&["--replicas", "3"]).is_err());
        assert!(parse(&["--fast"]).is_err());
    }
}
