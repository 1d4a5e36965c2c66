//! The proxy's settings: command-line flags, and the same settings as keys of a `--config`
//! TOML file.
//!
//! Every setting is defined once, as a clap flag (its help, default and parser). A file key is
//! the flag's long name (`max-clients = 5000`); the file is turned into flags placed before the
//! command line's, so a flag given on the command line wins, and a value in the file is checked
//! by the same parser as on the command line.

use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{CommandFactory, Parser};
use hotkey_router::Options;
use hotkey_router::redis::IntoConnectionInfo;
use tracing_subscriber::EnvFilter;

/// The proxy's settings, checked.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Config {
    /// Where clients connect.
    pub listen: SocketAddr,
    /// Where `/metrics` is served; `None` with `--no-metrics`.
    pub metrics: Option<SocketAddr>,
    /// The servers behind the proxy.
    pub upstream: Upstream,
    /// Tokio worker threads.
    pub threads: usize,
    /// Client connections accepted at once; one more is refused.
    pub max_clients: usize,
    /// A client idle this long is disconnected; `None`: never (`--timeout 0`).
    pub timeout: Option<Duration>,
    /// Longest bulk string a client may send, in bytes.
    pub max_bulk_len: u64,
    /// Most arguments in one command a client may send.
    pub max_multibulk_len: u64,
    /// Longest inline command a client may send, in bytes.
    pub max_inline_len: u64,
    /// Bytes of replies a client may leave unread before it is disconnected.
    pub client_output_limit: u64,
    /// Shared upstream connections per protocol (RESP2, RESP3).
    pub pool_size: usize,
    /// A request on a shared upstream connection that takes longer fails.
    pub upstream_timeout: Duration,
    /// Time allowed to open an upstream connection.
    pub connect_timeout: Duration,
    /// Whether hot reads may be served from the proxy's cache.
    pub cache: bool,
    /// Upper bound of the cache, in bytes.
    pub cache_capacity: u64,
    /// After a client writes a key, its reads of that key go to the master for this long.
    pub read_your_writes: Duration,
    /// On SIGTERM, how long the requests in flight may take before the proxy exits.
    pub shutdown_timeout: Duration,
    /// The log filter (`RUST_LOG`, when set, wins over it: see [`crate::logging::init`]).
    pub log: String,
}

/// The servers behind the proxy.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Upstream {
    /// One master, by URL (`redis://[user:pass@]host:port[/db]` or `rediss://`).
    Master(String),
    /// The master of `name`, as the Sentinels at `sentinels` tell it; it is asked again after
    /// a failover. The Sentinels' URLs carry the Sentinels' own credentials; the master's and
    /// replicas' are `master_user` and `master_password`, because Sentinels and data nodes
    /// usually have different passwords.
    Sentinel {
        name: String,
        sentinels: Vec<String>,
        master_user: Option<String>,
        master_password: Option<String>,
    },
    /// A Redis Cluster, found from any of these nodes (`--cluster SEED...`); the first seed's
    /// user and password log in to every node.
    Cluster(Vec<String>),
}

/// Why the settings were refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A bad command line, or `--help`/`--version`: print it with [`clap::Error::exit`], which
    /// also picks the exit status (0 for `--help`).
    #[error(transparent)]
    Args(#[from] clap::Error),
    /// The `--config` file could not be read.
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The `--config` file is not TOML.
    #[error("the config file {path} is not valid TOML: {source}")]
    Toml {
        path: PathBuf,
        source: toml::de::Error,
    },
    /// A key of the `--config` file is unknown or has a value of the wrong kind.
    #[error("the config file {path}: key `{key}`: {problem}")]
    FileKey {
        path: PathBuf,
        key: String,
        problem: String,
    },
    /// A value of the `--config` file was refused by its flag's parser.
    #[error("the config file {path}: {source}")]
    FileValue { path: PathBuf, source: clap::Error },
    /// A setting's value is out of range, or settings contradict each other.
    #[error("{option}: {problem}")]
    Invalid {
        option: &'static str,
        problem: String,
    },
}

const UPSTREAM_KEY: &str = "upstream";
const CONFIG_KEY: &str = "config";

/// hotkey-proxy: a Redis proxy whose hot keys are read from replicas or from a cache that
/// writes invalidate.
///
/// Every option can also be set in the --config file under its long name, e.g.
/// `max-clients = 5000`, `cache = false`, `upstream = ["redis://10.0.0.1:6379"]`;
/// an option given on the command line wins over the file.
#[derive(Debug, Parser)]
#[command(name = "hotkey-proxy", version, args_override_self = true)]
struct Args {
    /// The master's URL (redis://[user:pass@]host:port[/db], rediss://...); with --sentinel,
    /// the Sentinels' URLs (their userinfo is the Sentinels' own credentials); with --cluster,
    /// nodes of the cluster (the first one's user and password log in to every node).
    #[arg(value_name = "URL")]
    upstream: Vec<String>,

    /// Read settings from this TOML file (keys are the long option names).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Address clients connect to.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:6380")]
    listen: SocketAddr,

    /// Address of the Prometheus endpoint (GET /metrics).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9180")]
    metrics: SocketAddr,

    /// Serve no metrics endpoint.
    #[arg(long)]
    no_metrics: bool,

    /// Ask the Sentinels (the URLs) for the master of this service name, and follow its
    /// failovers.
    #[arg(long, value_name = "NAME")]
    sentinel: Option<String>,

    /// With --sentinel: the user the master and replicas are authenticated as.
    #[arg(long, value_name = "USER")]
    sentinel_master_user: Option<String>,

    /// With --sentinel: the master's and replicas' password.
    #[arg(long, value_name = "PASSWORD")]
    sentinel_master_password: Option<String>,

    /// The URLs are seed nodes of a Redis Cluster: the proxy shows the whole cluster as one
    /// server.
    #[arg(long, conflicts_with = "sentinel")]
    cluster: bool,

    /// Tokio worker threads [default: the number of CPUs]; 1 runs the whole proxy on one thread.
    #[arg(long, value_name = "N")]
    threads: Option<usize>,

    /// Client connections accepted at once; more are refused.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    max_clients: usize,

    /// Disconnect a client idle this long (0: never), as Redis's `timeout`.
    #[arg(long, value_name = "DURATION", default_value = "0")]
    timeout: Span,

    /// Longest bulk string a client may send (bytes, or 64kb, 512mb, 1gb, 512MiB...).
    #[arg(long, value_name = "SIZE", default_value = "512mb")]
    max_bulk_len: Size,

    /// Most arguments in one command. Redis allows up to 2^31; the proxy holds a command's
    /// arguments before it knows the command, so 1Mi bounds that list (~32 MiB) per client.
    #[arg(long, value_name = "N", default_value_t = 1 << 20)]
    max_multibulk_len: u64,

    /// Longest inline (non-RESP) command a client may send, as Redis's PROTO_INLINE_MAX_SIZE.
    #[arg(long, value_name = "SIZE", default_value = "64kb")]
    max_inline_len: Size,

    /// Bytes of replies a client may leave unread before it is disconnected.
    #[arg(long, value_name = "SIZE", default_value = "64mb")]
    client_output_limit: Size,

    /// Shared upstream connections per protocol (RESP2, RESP3).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pool_size: usize,

    /// A request on a shared upstream connection that takes longer fails.
    #[arg(long, value_name = "DURATION", default_value = "2s")]
    upstream_timeout: Span,

    /// Time allowed to open an upstream connection.
    #[arg(long, value_name = "DURATION",
          default_value_t = Span(Options::default().connect_timeout))]
    connect_timeout: Span,

    /// Serve hot reads from the proxy's cache when the module advises it (the default).
    #[arg(long, overrides_with = "no_cache")]
    cache: bool,

    /// Never serve reads from the proxy's cache.
    #[arg(long, overrides_with = "cache")]
    no_cache: bool,

    /// Upper bound of the cache, in bytes of keys and values.
    #[arg(long, value_name = "SIZE",
          default_value_t = Size(Options::default().cache_capacity_bytes))]
    cache_capacity: Size,

    /// After a client writes a key, its reads of that key go to the master for this long.
    #[arg(long, value_name = "DURATION",
          default_value_t = Span(Options::default().read_your_writes))]
    read_your_writes: Span,

    /// On SIGTERM, how long the requests in flight may take before the proxy exits.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    shutdown_timeout: Span,

    /// Log level or tracing filter (e.g. `debug`, `info,hotkey_router=debug`); RUST_LOG, when
    /// set, wins.
    #[arg(long, value_name = "LEVEL_OR_FILTER", default_value = "info")]
    log: String,
}

impl Config {
    /// Reads the settings from a command line (`args` starts with the program's name) and the
    /// `--config` file it names, if any.
    pub fn from_args<I: IntoIterator<Item = OsString>>(args: I) -> Result<Config, ConfigError> {
        let cli: Vec<OsString> = args.into_iter().collect();
        let program = cli
            .first()
            .cloned()
            .unwrap_or_else(|| OsString::from("hotkey-proxy"));
        let first = Args::try_parse_from(&cli)?;
        let Some(path) = first.config else {
            return first.resolve();
        };
        let file = FileArgs::read(&path)?;
        // The file's values alone first, so that an error in one names the file.
        Args::try_parse_from(std::iter::once(program.clone()).chain(file.flags.iter().cloned()))
            .map_err(|source| ConfigError::FileValue {
                path: path.clone(),
                source,
            })?;
        let mut merged = Args::try_parse_from(
            std::iter::once(program)
                .chain(file.flags)
                .chain(cli.into_iter().skip(1)),
        )?;
        if merged.upstream.is_empty() {
            merged.upstream = file.upstream;
        }
        merged.resolve()
    }

    /// The router's options these settings imply.
    pub fn router_options(&self) -> Options {
        Options::default()
            .cache(self.cache)
            .cache_capacity_bytes(self.cache_capacity)
            .read_your_writes(self.read_your_writes)
            .connect_timeout(self.connect_timeout)
    }
}

impl Args {
    fn resolve(self) -> Result<Config, ConfigError> {
        let upstream = self.upstream()?;
        let threads = match self.threads {
            Some(threads) => threads,
            None => std::thread::available_parallelism().map_or(1, usize::from),
        };
        at_least_one("--threads", threads as u64)?;
        at_least_one("--max-clients", self.max_clients as u64)?;
        at_least_one("--max-bulk-len", self.max_bulk_len.0)?;
        at_least_one("--max-multibulk-len", self.max_multibulk_len)?;
        at_least_one("--max-inline-len", self.max_inline_len.0)?;
        at_least_one("--client-output-limit", self.client_output_limit.0)?;
        at_least_one("--pool-size", self.pool_size as u64)?;
        not_zero("--upstream-timeout", self.upstream_timeout.0)?;
        not_zero("--connect-timeout", self.connect_timeout.0)?;
        let cache = !self.no_cache;
        if cache {
            at_least_one("--cache-capacity", self.cache_capacity.0)?;
        }
        EnvFilter::try_new(&self.log).map_err(|e| ConfigError::Invalid {
            option: "--log",
            problem: format!("bad filter {:?}: {e}", self.log),
        })?;
        Ok(Config {
            listen: self.listen,
            metrics: (!self.no_metrics).then_some(self.metrics),
            upstream,
            threads,
            max_clients: self.max_clients,
            timeout: Some(self.timeout.0).filter(|t| !t.is_zero()),
            max_bulk_len: self.max_bulk_len.0,
            max_multibulk_len: self.max_multibulk_len,
            max_inline_len: self.max_inline_len.0,
            client_output_limit: self.client_output_limit.0,
            pool_size: self.pool_size,
            upstream_timeout: self.upstream_timeout.0,
            connect_timeout: self.connect_timeout.0,
            cache,
            cache_capacity: self.cache_capacity.0,
            read_your_writes: self.read_your_writes.0,
            shutdown_timeout: self.shutdown_timeout.0,
            log: self.log,
        })
    }

    fn upstream(&self) -> Result<Upstream, ConfigError> {
        for url in &self.upstream {
            let info = url
                .as_str()
                .into_connection_info()
                .map_err(|e| ConfigError::Invalid {
                    option: "URL",
                    problem: format!("bad URL {url:?}: {e}"),
                })?;
            if self.cluster && info.redis_settings().db() != 0 {
                return Err(ConfigError::Invalid {
                    option: "--cluster",
                    problem: format!(
                        "{url:?} names a database: a Redis Cluster has only database 0"
                    ),
                });
            }
        }
        if self.cluster {
            if self.upstream.is_empty() {
                return Err(ConfigError::Invalid {
                    option: "--cluster",
                    problem: "needs the URL of at least one node of the cluster".into(),
                });
            }
            return Ok(Upstream::Cluster(self.upstream.clone()));
        }
        match &self.sentinel {
            Some(name) => {
                if self.upstream.is_empty() {
                    return Err(ConfigError::Invalid {
                        option: "--sentinel",
                        problem: "needs the URL of at least one Sentinel".into(),
                    });
                }
                Ok(Upstream::Sentinel {
                    name: name.clone(),
                    sentinels: self.upstream.clone(),
                    master_user: self.sentinel_master_user.clone(),
                    master_password: self.sentinel_master_password.clone(),
                })
            }
            None => {
                for (option, given) in [
                    ("--sentinel-master-user", &self.sentinel_master_user),
                    ("--sentinel-master-password", &self.sentinel_master_password),
                ] {
                    if given.is_some() {
                        return Err(ConfigError::Invalid {
                            option,
                            problem: "only with --sentinel (put a master's credentials in its URL)"
                                .into(),
                        });
                    }
                }
                match self.upstream.as_slice() {
                    [master] => Ok(Upstream::Master(master.clone())),
                    [] => Err(ConfigError::Invalid {
                        option: "URL",
                        problem: "the master's URL is missing (redis://host:port)".into(),
                    }),
                    more => Err(ConfigError::Invalid {
                        option: "URL",
                        problem: format!(
                            "{} URLs given, but one master without --sentinel",
                            more.len()
                        ),
                    }),
                }
            }
        }
    }
}

fn at_least_one(option: &'static str, value: u64) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(ConfigError::Invalid {
            option,
            problem: "must be at least 1".into(),
        });
    }
    Ok(())
}

fn not_zero(option: &'static str, value: Duration) -> Result<(), ConfigError> {
    if value.is_zero() {
        return Err(ConfigError::Invalid {
            option,
            problem: "must be longer than 0".into(),
        });
    }
    Ok(())
}

/// A `--config` file, as flags in the command line's form.
struct FileArgs {
    flags: Vec<OsString>,
    upstream: Vec<String>,
}

impl FileArgs {
    fn read(path: &std::path::Path) -> Result<FileArgs, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let table: toml::Table = text.parse().map_err(|source| ConfigError::Toml {
            path: path.to_owned(),
            source,
        })?;
        let command = Args::command();
        let mut file = FileArgs {
            flags: Vec::new(),
            upstream: Vec::new(),
        };
        for (key, value) in table {
            let problem = |problem: &str| ConfigError::FileKey {
                path: path.to_owned(),
                key: key.clone(),
                problem: problem.to_owned(),
            };
            if key == UPSTREAM_KEY {
                let urls = value
                    .as_array()
                    .ok_or_else(|| problem("expects a list of URLs"))?;
                for url in urls {
                    let url = url
                        .as_str()
                        .ok_or_else(|| problem("expects a list of URLs (strings)"))?;
                    file.upstream.push(url.to_owned());
                }
                continue;
            }
            if key == CONFIG_KEY {
                return Err(problem("a config file cannot name another"));
            }
            let arg = command
                .get_arguments()
                .find(|arg| arg.get_long() == Some(key.as_str()))
                .ok_or_else(|| problem("unknown key (the keys are the long options of --help)"))?;
            if arg.get_action().takes_values() {
                let value = match &value {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Integer(i) => i.to_string(),
                    toml::Value::Float(f) => f.to_string(),
                    _ => return Err(problem("expects a string or a number")),
                };
                file.flags.push(format!("--{key}={value}").into());
            } else {
                let on = value
                    .as_bool()
                    .ok_or_else(|| problem("expects true or false"))?;
                if on {
                    file.flags.push(format!("--{key}").into());
                } else if let Some(negation) = negation(&command, &key) {
                    file.flags.push(format!("--{negation}").into());
                }
            }
        }
        Ok(file)
    }
}

/// The flag that says the opposite of `key` (`cache` ↔ `no-cache`), if there is one.
fn negation(command: &clap::Command, key: &str) -> Option<String> {
    let opposite = match key.strip_prefix("no-") {
        Some(positive) => positive.to_owned(),
        None => format!("no-{key}"),
    };
    let is_flag = command
        .get_arguments()
        .any(|arg| arg.get_long() == Some(opposite.as_str()) && !arg.get_action().takes_values());
    is_flag.then_some(opposite)
}

/// A duration as humans write it: `500ms`, `2s`, `1m`, `1h 30m`, or `0`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Span(Duration);

impl FromStr for Span {
    type Err = String;

    fn from_str(s: &str) -> Result<Span, String> {
        humantime::parse_duration(s.trim())
            .map(Span)
            .map_err(|e| format!("{e} (write e.g. 500ms, 2s, 1m, or 0)"))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_zero() {
            return f.write_str("0");
        }
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

/// A size in bytes, written as Redis reads sizes in redis.conf (`1k` = 1000, `1kb` = 1024,
/// likewise `m`/`mb` and `g`/`gb`, any case), or with binary units (`512MiB`), or as plain
/// bytes. No crate reads Redis's rule (bytesize and others take `mb` as 10^6), so it is here.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Size(u64);

impl FromStr for Size {
    type Err = String;

    fn from_str(s: &str) -> Result<Size, String> {
        let text = s.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (digits, unit) = text.split_at(split);
        let bad = || format!("bad size {s:?} (write e.g. 1048576, 64kb, 512mb, 1gb, 512MiB)");
        let number: u64 = digits.parse().map_err(|_| bad())?;
        let multiplier: u64 = match unit.trim_start().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" => 1_000,
            "kb" | "kib" => 1 << 10,
            "m" => 1_000_000,
            "mb" | "mib" => 1 << 20,
            "g" => 1_000_000_000,
            "gb" | "gib" => 1 << 30,
            _ => return Err(bad()),
        };
        number
            .checked_mul(multiplier)
            .map(Size)
            .ok_or_else(|| format!("size {s:?} is too large"))
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.0;
        for (unit, shift) in [("gb", 30), ("mb", 20), ("kb", 10)] {
            if bytes != 0 && bytes.is_multiple_of(1 << shift) {
                return write!(f, "{}{unit}", bytes >> shift);
            }
        }
        write!(f, "{bytes}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASTER: &str = "redis://127.0.0.1:6379";

    fn parse(args: &[&str]) -> Result<Config, ConfigError> {
        Config::from_args(
            std::iter::once("hotkey-proxy")
                .chain(args.iter().copied())
                .map(OsString::from),
        )
    }

    fn invalid(args: &[&str]) -> (&'static str, String) {
        match parse(args) {
            Err(ConfigError::Invalid { option, problem }) => (option, problem),
            other => panic!("{args:?} gave {other:?}, not an Invalid"),
        }
    }

    /// A config file that lives as long as the test, named after it.
    struct File(PathBuf);

    impl File {
        fn new(name: &str, text: &str) -> File {
            let path = std::env::temp_dir().join(format!(
                "hotkey-proxy-config-{}-{name}.toml",
                std::process::id()
            ));
            std::fs::write(&path, text).unwrap();
            File(path)
        }

        fn path(&self) -> &str {
            self.0.to_str().unwrap()
        }
    }

    impl Drop for File {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let config = parse(&[MASTER]).unwrap();
        let router = Options::default();
        assert_eq!(config.listen, "127.0.0.1:6380".parse().unwrap());
        assert_eq!(config.metrics, Some("127.0.0.1:9180".parse().unwrap()));
        assert_eq!(config.upstream, Upstream::Master(MASTER.into()));
        assert_eq!(
            config.threads,
            std::thread::available_parallelism().unwrap().get()
        );
        assert_eq!(config.max_clients, 10_000);
        assert_eq!(config.timeout, None);
        assert_eq!(config.max_bulk_len, 512 << 20);
        assert_eq!(config.max_multibulk_len, 1 << 20);
        assert_eq!(config.max_inline_len, 64 << 10);
        assert_eq!(config.client_output_limit, 64 << 20);
        assert_eq!(config.pool_size, 1);
        assert_eq!(config.upstream_timeout, Duration::from_secs(2));
        assert_eq!(config.connect_timeout, router.connect_timeout);
        assert!(config.cache);
        assert_eq!(config.cache_capacity, router.cache_capacity_bytes);
        assert_eq!(config.read_your_writes, router.read_your_writes);
        assert_eq!(config.shutdown_timeout, Duration::from_secs(10));
        assert_eq!(config.log, "info");
    }

    #[test]
    fn flags_set_every_field() {
        let config = parse(&[
            "--listen=0.0.0.0:7000",
            "--no-metrics",
            "--threads=3",
            "--max-clients=5",
            "--timeout=1m",
            "--max-bulk-len=1gb",
            "--max-multibulk-len=100",
            "--max-inline-len=1k",
            "--client-output-limit=512MiB",
            "--pool-size=4",
            "--upstream-timeout=250ms",
            "--connect-timeout=3s",
            "--no-cache",
            "--cache-capacity=1mb",
            "--read-your-writes=5s",
            "--shutdown-timeout=1s",
            "--log=debug,hotkey_router=trace",
            "redis://u:p@10.0.0.1:6379/2",
        ])
        .unwrap();
        assert_eq!(config.listen, "0.0.0.0:7000".parse().unwrap());
        assert_eq!(config.metrics, None);
        assert_eq!(config.threads, 3);
        assert_eq!(config.max_clients, 5);
        assert_eq!(config.timeout, Some(Duration::from_secs(60)));
        assert_eq!(config.max_bulk_len, 1 << 30);
        assert_eq!(config.max_multibulk_len, 100);
        assert_eq!(config.max_inline_len, 1000);
        assert_eq!(config.client_output_limit, 512 << 20);
        assert_eq!(config.pool_size, 4);
        assert_eq!(config.upstream_timeout, Duration::from_millis(250));
        assert_eq!(config.connect_timeout, Duration::from_secs(3));
        assert!(!config.cache);
        assert_eq!(config.cache_capacity, 1 << 20);
        assert_eq!(config.read_your_writes, Duration::from_secs(5));
        assert_eq!(config.shutdown_timeout, Duration::from_secs(1));
        assert_eq!(config.log, "debug,hotkey_router=trace");
        assert_eq!(
            config.upstream,
            Upstream::Master("redis://u:p@10.0.0.1:6379/2".into())
        );
    }

    #[test]
    fn router_options_carry_the_cache_and_timeouts() {
        let config = parse(&[
            "--no-cache",
            "--cache-capacity=2mb",
            "--read-your-writes=7s",
            "--connect-timeout=900ms",
            MASTER,
        ])
        .unwrap();
        let options = config.router_options();
        assert!(!options.cache);
        assert_eq!(options.cache_capacity_bytes, 2 << 20);
        assert_eq!(options.read_your_writes, Duration::from_secs(7));
        assert_eq!(options.connect_timeout, Duration::from_millis(900));
    }

    #[test]
    fn sentinel_takes_the_urls_as_sentinels_and_the_master_credentials_from_flags() {
        let config = parse(&[
            "--sentinel=mymaster",
            "--sentinel-master-user=app",
            "--sentinel-master-password=secret",
            "redis://127.0.0.1:26379",
            "redis://127.0.0.1:26380",
        ])
        .unwrap();
        assert_eq!(
            config.upstream,
            Upstream::Sentinel {
                name: "mymaster".into(),
                sentinels: vec![
                    "redis://127.0.0.1:26379".into(),
                    "redis://127.0.0.1:26380".into()
                ],
                master_user: Some("app".into()),
                master_password: Some("secret".into()),
            }
        );
    }

    #[test]
    fn the_upstream_must_be_one_master_or_sentinels() {
        assert_eq!(invalid(&[]).0, "URL");
        let (option, problem) = invalid(&[MASTER, "redis://127.0.0.1:6390"]);
        assert_eq!(option, "URL");
        assert!(problem.contains("2 URLs"), "{problem}");
        let (option, problem) = invalid(&["http://127.0.0.1:6379"]);
        assert_eq!(option, "URL");
        assert!(problem.contains("http://127.0.0.1:6379"), "{problem}");
        assert_eq!(invalid(&["--sentinel=m"]).0, "--sentinel");
        assert_eq!(
            invalid(&["--sentinel-master-user=app", MASTER]).0,
            "--sentinel-master-user"
        );
    }

    #[test]
    fn a_cluster_is_given_by_its_seeds_in_database_0() {
        let config = parse(&["--cluster", MASTER, "redis://127.0.0.1:6390"]).unwrap();
        assert_eq!(
            config.upstream,
            Upstream::Cluster(vec![MASTER.into(), "redis://127.0.0.1:6390".into()])
        );
        assert_eq!(invalid(&["--cluster"]).0, "--cluster");
        let (option, problem) = invalid(&["--cluster", "redis://127.0.0.1:6379/2"]);
        assert_eq!(option, "--cluster");
        assert!(problem.contains("database 0"), "{problem}");
    }

    #[test]
    fn zero_where_zero_makes_no_sense_is_refused_by_name() {
        for option in [
            "--threads",
            "--max-clients",
            "--max-bulk-len",
            "--max-multibulk-len",
            "--max-inline-len",
            "--client-output-limit",
            "--pool-size",
            "--upstream-timeout",
            "--connect-timeout",
            "--cache-capacity",
        ] {
            let flag = format!("{option}=0");
            assert_eq!(invalid(&[&flag, MASTER]).0, option);
        }
        let config = parse(&["--no-cache", "--cache-capacity=0", MASTER]).unwrap();
        assert!(!config.cache);
        let config = parse(&["--shutdown-timeout=0", MASTER]).unwrap();
        assert_eq!(config.shutdown_timeout, Duration::ZERO);
    }

    #[test]
    fn bad_values_are_refused_naming_the_flag() {
        for (flag, value) in [
            ("--listen", "localhost"),
            ("--max-clients", "-1"),
            ("--timeout", "5"),
            ("--max-bulk-len", "12 parsecs"),
            ("--upstream-timeout", "soon"),
        ] {
            let arg = format!("{flag}={value}");
            match parse(&[&arg, MASTER]) {
                Err(ConfigError::Args(e)) => {
                    let text = e.to_string();
                    assert!(text.contains(flag) && text.contains(value), "{text}");
                }
                other => panic!("{arg} gave {other:?}"),
            }
        }
        assert_eq!(invalid(&["--log=[[[", MASTER]).0, "--log");
        assert!(matches!(
            parse(&["--no-such-flag", MASTER]),
            Err(ConfigError::Args(_))
        ));
    }

    #[test]
    fn sizes_read_as_redis_reads_them() {
        for (text, bytes) in [
            ("0", 0),
            ("1024", 1024),
            ("1b", 1),
            ("1k", 1000),
            ("1kb", 1024),
            ("1KB", 1024),
            ("64mb", 64 << 20),
            ("3m", 3_000_000),
            ("1gb", 1 << 30),
            ("2g", 2_000_000_000),
            ("512MiB", 512 << 20),
            ("8 kib", 8 << 10),
        ] {
            assert_eq!(text.parse::<Size>(), Ok(Size(bytes)), "{text}");
        }
        for text in [
            "",
            "mb",
            "-1",
            "1.5mb",
            "1tb",
            "1 k b",
            "99999999999999999999gb",
        ] {
            assert!(text.parse::<Size>().is_err(), "{text:?} was accepted");
        }
        assert_eq!(Size(64 << 20).to_string(), "64mb");
        assert_eq!(Size(1000).to_string(), "1000");
        assert_eq!(Size(0).to_string(), "0");
    }

    #[test]
    fn durations_read_as_humans_write_them() {
        for (text, duration) in [
            ("0", Duration::ZERO),
            ("500ms", Duration::from_millis(500)),
            ("2s", Duration::from_secs(2)),
            ("1m", Duration::from_secs(60)),
            ("1h 30m", Duration::from_secs(5400)),
        ] {
            assert_eq!(text.parse::<Span>(), Ok(Span(duration)), "{text}");
        }
        for text in ["", "2", "fast", "-1s"] {
            assert!(text.parse::<Span>().is_err(), "{text:?} was accepted");
        }
        assert_eq!(Span(Duration::from_secs(2)).to_string(), "2s");
        assert_eq!(Span(Duration::ZERO).to_string(), "0");
    }

    #[test]
    fn a_config_file_sets_options_by_their_long_names() {
        let file = File::new(
            "file",
            r#"
            listen = "127.0.0.1:7001"
            max-clients = 5000
            max-bulk-len = 1048576
            client-output-limit = "1mb"
            timeout = "30s"
            cache = false
            no-metrics = true
            upstream = ["redis://127.0.0.1:6400"]
            "#,
        );
        let config = parse(&["--config", file.path()]).unwrap();
        assert_eq!(config.listen, "127.0.0.1:7001".parse().unwrap());
        assert_eq!(config.max_clients, 5000);
        assert_eq!(config.max_bulk_len, 1 << 20);
        assert_eq!(config.client_output_limit, 1 << 20);
        assert_eq!(config.timeout, Some(Duration::from_secs(30)));
        assert!(!config.cache);
        assert_eq!(config.metrics, None);
        assert_eq!(
            config.upstream,
            Upstream::Master("redis://127.0.0.1:6400".into())
        );
    }

    #[test]
    fn a_flag_on_the_command_line_wins_over_the_file() {
        let file = File::new(
            "override",
            r#"
            max-clients = 5000
            pool-size = 3
            cache = false
            upstream = ["redis://127.0.0.1:6400"]
            "#,
        );
        let config = parse(&[
            "--max-clients=7",
            "--config",
            file.path(),
            "--cache",
            "redis://127.0.0.1:6500",
        ])
        .unwrap();
        assert_eq!(config.max_clients, 7);
        assert_eq!(config.pool_size, 3);
        assert!(config.cache);
        assert_eq!(
            config.upstream,
            Upstream::Master("redis://127.0.0.1:6500".into())
        );
    }

    #[test]
    fn an_unknown_key_names_the_key_and_the_file() {
        let file = File::new("unknown", "max-clinets = 5\n");
        let error = parse(&["--config", file.path(), MASTER]).unwrap_err();
        assert!(
            matches!(&error, ConfigError::FileKey { key, .. } if key == "max-clinets"),
            "{error:?}"
        );
        let text = error.to_string();
        assert!(
            text.contains("max-clinets") && text.contains(file.path()),
            "{text}"
        );
    }

    #[test]
    fn bad_file_values_name_the_file() {
        for (name, text, wanted) in [
            ("value", "max-clients = \"many\"\n", "--max-clients"),
            ("kind", "no-cache = 1\n", "true or false"),
            ("list", "upstream = \"redis://h:1\"\n", "list of URLs"),
            ("nested", "config = \"other.toml\"\n", "cannot name another"),
            ("toml", "max-clients = \n", "TOML"),
        ] {
            let file = File::new(name, text);
            let error = parse(&["--config", file.path(), MASTER]).unwrap_err();
            let message = error.to_string();
            assert!(
                message.contains(file.path()) && message.contains(wanted),
                "{name}: {message}"
            );
        }
        let missing = parse(&["--config", "/nonexistent/hotkey-proxy.toml", MASTER]).unwrap_err();
        assert!(matches!(missing, ConfigError::Read { .. }), "{missing:?}");
    }

    #[test]
    fn help_lists_every_option_with_its_default() {
        let help = Args::command().render_long_help().to_string();
        for arg in Args::command().get_arguments() {
            if let Some(long) = arg.get_long() {
                assert!(help.contains(&format!("--{long}")), "--{long} missing");
            }
        }
        for default in [
            "[default: 127.0.0.1:6380]",
            "[default: 10000]",
            "[default: 512mb]",
            "[default: 64mb]",
            "[default: 2s]",
            "[default: 10s]",
            "[default: info]",
            "the number of CPUs",
            "RUST_LOG",
        ] {
            assert!(help.contains(default), "{default} missing from\n{help}");
        }
    }
}
