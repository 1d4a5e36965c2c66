//! # hotkey — the command-line tool of the hotkey module
//!
//! `hotkey top` (a live, merged `HOTKEY.TOP` of every node), `hotkey watch` (the decoded event
//! stream, gaps and restarts flagged), `hotkey route` (where one operation goes) and `hotkey
//! exporter` (a Prometheus endpoint for every node).
//!
//! # Layout
//! - `node`: one node's address and credentials, connecting, and the error texts users see.
//! - `discover`: the nodes to ask: the URLs given, a cluster's (`CLUSTER SHARDS`/`NODES`), or
//!   the master and replicas a Sentinel names.
//! - `top`: `HOTKEY.TOP` and `HOTKEY.ROUTES` of every node, merged per key (pure merge).
//! - `render`: the merged table as text or JSON; keys escaped like redis-cli.
//! - `live`: the full-screen view (ratatui).
//! - `watch`: the event stream of every node, with its stream checks (pure `StreamCheck`).
//! - `route`: `HOTKEY.ROUTE` on the node that owns the key.
//! - `exporter`: `INFO hotkey`, the hot set and the top keys of every node as Prometheus
//!   metrics, over HTTP.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod discover;
mod exporter;
mod live;
mod node;
mod render;
mod route;
mod top;
mod watch;

use discover::Seeds;
use node::ConnectArgs;

#[derive(Parser)]
#[command(
    name = "hotkey",
    version,
    about = "Live top, event stream and routes of Redis nodes running the hotkey module"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The hottest keys of every node, merged per key; full-screen and refreshing unless
    /// --once or --json.
    Top(TopArgs),
    /// The decoded event stream of every node, with gaps, restarts and missed heartbeats
    /// flagged.
    Watch(WatchArgs),
    /// Where one operation on KEY goes (HOTKEY.ROUTE on the node that owns it).
    Route(RouteArgs),
    /// A Prometheus endpoint (GET /metrics) for every node: INFO hotkey, the hot set and the
    /// top keys, asked afresh at each scrape.
    Exporter(ExporterArgs),
}

/// Which nodes: the URLs themselves, a cluster discovered from them, or the set a Sentinel
/// names.
#[derive(Args, Clone)]
pub struct Discovery {
    /// The URLs are seeds of a Redis Cluster: ask every node of it.
    #[arg(long, conflicts_with = "sentinel")]
    pub cluster: bool,
    /// The URLs are sentinels: ask the master they name NAME and its replicas.
    #[arg(long, value_name = "NAME")]
    pub sentinel: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum By {
    Total,
    Reads,
    Writes,
}

impl By {
    /// The word `HOTKEY.TOP BY` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            By::Total => "total",
            By::Reads => "reads",
            By::Writes => "writes",
        }
    }
}

#[derive(Args)]
#[command(disable_help_flag = true)]
struct TopArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(flatten)]
    discovery: Discovery,
    /// The rate window in seconds (HOTKEY.TOP ... WINDOW W): 1, 10 or 60; default: the
    /// module's.
    #[arg(long, value_name = "W", value_parser = parse_window)]
    window: Option<u32>,
    /// Order by reads + writes, by reads or by writes.
    #[arg(long, value_enum, default_value = "total")]
    by: By,
    /// Only keys of database n.
    #[arg(long, value_name = "n")]
    db: Option<u32>,
    /// At most n keys.
    #[arg(long, value_name = "n", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    count: u32,
    /// Seconds between refreshes of the live view.
    #[arg(long, value_name = "s", default_value_t = 1.0)]
    interval: f64,
    /// Print one table and exit.
    #[arg(long)]
    once: bool,
    /// Print JSON (an object with `nodes` and `keys`) and exit.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
#[command(disable_help_flag = true)]
struct WatchArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(flatten)]
    discovery: Discovery,
}

#[derive(Args)]
#[command(disable_help_flag = true)]
struct RouteArgs {
    /// The key (any bytes the shell passes).
    key: OsString,
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(flatten)]
    discovery: Discovery,
    /// Where a write goes (default: a read).
    #[arg(long)]
    write: bool,
    /// The key's database (default: the connection's).
    #[arg(long, value_name = "n")]
    db: Option<u32>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
#[command(disable_help_flag = true)]
struct ExporterArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(flatten)]
    discovery: Discovery,
    /// Where to serve /metrics, e.g. 0.0.0.0:9591 (port 0: any free port, printed at start).
    #[arg(long, value_name = "ADDR")]
    listen: String,
    /// Keys per node in hotkey_top_key_*: each key is a label value, so keep it small.
    #[arg(long, value_name = "n", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    count: u32,
    /// The rate window of the top keys in seconds: 1, 10 or 60; default: the module's.
    #[arg(long, value_name = "W", value_parser = parse_window)]
    window: Option<u32>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Top(args) => run_top(args),
        Command::Watch(args) => {
            Seeds::from_args(&args.connect).and_then(|seeds| watch::run(&seeds, &args.discovery))
        }
        Command::Route(args) => run_route(args),
        Command::Exporter(args) => Seeds::from_args(&args.connect).and_then(|seeds| {
            let options = exporter::Options {
                count: args.count,
                window: args.window,
            };
            let exporter = exporter::Exporter::new(seeds, args.discovery, &options);
            exporter::run(exporter, &args.listen)
        }),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("hotkey: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `Ok(false)`: the output was printed but a node failed (its error is on stderr).
fn run_top(args: TopArgs) -> Result<bool, String> {
    let seeds = Seeds::from_args(&args.connect)?;
    if !(args.interval.is_finite() && args.interval > 0.0) {
        return Err(BAD_INTERVAL.to_string());
    }
    let query = top::Query {
        count: args.count,
        by: args.by,
        db: args.db,
        window: args.window,
    };
    if args.once || args.json {
        let snapshot = top::Snapshot::take(&seeds, &args.discovery, &query);
        if args.json {
            println!("{}", render::json(&snapshot));
        } else {
            print!("{}", render::text(&snapshot, &query));
        }
        for error in snapshot.errors() {
            eprintln!("{error}");
        }
        return Ok(snapshot.errors().is_empty());
    }
    live::run(
        &seeds,
        &args.discovery,
        query,
        Duration::from_secs_f64(args.interval),
    )
    .map(|()| true)
}

fn run_route(args: RouteArgs) -> Result<bool, String> {
    let seeds = Seeds::from_args(&args.connect)?;
    let answer = route::ask(
        &seeds,
        &args.discovery,
        args.key.as_bytes(),
        args.write,
        args.db,
    )?;
    if args.json {
        println!("{}", answer.json());
    } else {
        print!("{}", answer.text());
    }
    Ok(true)
}

/// The error for a non-positive `--interval`.
pub const BAD_INTERVAL: &str = "--interval must be a positive number of seconds";

/// A `--window` the module knows: 1 (the detector's), 10 or 60 seconds.
fn parse_window(text: &str) -> Result<u32, String> {
    match text.parse::<u32>() {
        Ok(w @ (1 | 10 | 60)) => Ok(w),
        _ => Err(format!(
            "'{text}' is not a window: use 1, 10 or 60 (seconds)"
        )),
    }
}
