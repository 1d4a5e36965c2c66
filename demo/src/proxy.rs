//! `--proxy`: the `hotkey-proxy` binary run in front of the demo's master (or, with
//! `--cluster`, its cluster), as an operator runs it, and the counters of its `/metrics` the
//! demo shows.
//!
//! The binary is the one built next to the demo's (`cargo build --release -p hotkey-proxy`,
//! which `make run` does), or `HOTKEY_PROXY`. It listens on free ports (`--listen 127.0.0.1:0
//! --metrics 127.0.0.1:0`), and the demo reads them from its log line "listening on ADDR,
//! metrics on ADDR". It is killed when the [`ProxyProcess`] is dropped, which the demo does
//! on exit and after a Ctrl-C.

use std::fs::{self, File};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The environment variable that names another `hotkey-proxy` binary.
pub const PROXY_ENV: &str = "HOTKEY_PROXY";

/// How long the proxy may take to connect to the master and listen.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the log is read while waiting for the proxy to listen.
const START_POLL: Duration = Duration::from_millis(20);

/// The log line that tells where the proxy listens.
const LISTENING: &str = "listening on ";

/// How long a `/metrics` scrape may take.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);

/// The metric whose `route="cache"` sample counts the reads the proxy served from its cache.
pub const COMMANDS_METRIC: &str = "hotkey_proxy_commands_total";

/// A running `hotkey-proxy`, killed (and waited for) on drop.
pub struct ProxyProcess {
    child: Child,
    /// Where clients connect.
    pub address: SocketAddr,
    /// Where `/metrics` is served.
    pub metrics: SocketAddr,
    log: PathBuf,
}

impl ProxyProcess {
    /// Starts the proxy in front of `upstream` (the master's URL, or `--cluster` and seed
    /// URLs), its cache on or off, and waits until it listens. Fails with the proxy's log when
    /// it exits or does not listen in time.
    pub fn start(upstream: &[String], cache: bool) -> Result<ProxyProcess, String> {
        let binary = binary()?;
        let log =
            std::env::temp_dir().join(format!("hotkey-demo-proxy-{}.log", std::process::id()));
        let file =
            File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let mut command = Command::new(&binary);
        command.args(["--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0"]);
        if !cache {
            command.arg("--no-cache");
        }
        // A process group of its own: a Ctrl-C in the terminal reaches the demo only, which
        // prints its summary through the proxy and then stops it.
        let child = command
            .process_group(0)
            .args(upstream)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
        let mut proxy = ProxyProcess {
            child,
            address: SocketAddr::from(([127, 0, 0, 1], 0)),
            metrics: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            proxy.check()?;
            if let Some((address, metrics)) = listening(&proxy.log_text()) {
                proxy.address = address;
                proxy.metrics = metrics;
                return Ok(proxy);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "hotkey-proxy did not listen within {START_TIMEOUT:?}; its log:\n{}",
                    proxy.log_text()
                ));
            }
            std::thread::sleep(START_POLL);
        }
    }

    /// The URL clients connect to.
    pub fn url(&self) -> String {
        format!("redis://{}/", self.address)
    }

    /// An error with the proxy's log once it has exited.
    pub fn check(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!(
                "hotkey-proxy exited ({status}); its log:\n{}",
                self.log_text()
            )),
            Err(e) => Err(format!("cannot tell whether hotkey-proxy runs: {e}")),
        }
    }

    /// What the proxy has logged so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        // The demo's clients are gone by now: nothing is left in flight to drain.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_file(&self.log);
    }
}

/// The `hotkey-proxy` binary: `HOTKEY_PROXY`, else the one next to the running executable.
fn binary() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(PROXY_ENV) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "{PROXY_ENV}={} does not exist: build it or unset {PROXY_ENV}",
                path.display()
            ))
        };
    }
    let exe =
        std::env::current_exe().map_err(|e| format!("path of the running executable: {e}"))?;
    let dir = exe
        .parent()
        .ok_or_else(|| format!("{} has no directory", exe.display()))?;
    let path = dir.join("hotkey-proxy");
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "hotkey-proxy is not built: {} does not exist (run `{}`, or set {PROXY_ENV} to the \
             binary)",
            path.display(),
            build_command(dir)
        ))
    }
}

/// The cargo command that builds the proxy into `dir` (a `target/<profile>` directory).
fn build_command(dir: &Path) -> &'static str {
    match dir.file_name().and_then(|n| n.to_str()) {
        Some("release") => "cargo build --release -p hotkey-proxy",
        _ => "cargo build -p hotkey-proxy",
    }
}

/// The client and metrics addresses of the log's "listening on A, metrics on B" line.
fn listening(log: &str) -> Option<(SocketAddr, SocketAddr)> {
    let line = log.lines().find(|l| l.contains(LISTENING))?;
    let rest = line.split(LISTENING).nth(1)?;
    let (clients, metrics) = rest.split_once(", metrics on ")?;
    Some((clients.trim().parse().ok()?, metrics.trim().parse().ok()?))
}

/// `GET /metrics` from the proxy at `address`: the OpenMetrics text.
pub async fn scrape(address: SocketAddr) -> Result<String, String> {
    let failed = |e: &dyn std::fmt::Display| format!("hotkey-proxy /metrics at {address}: {e}");
    let get = async {
        let stream = TcpStream::connect(address).await.map_err(|e| failed(&e))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| failed(&e))?;
        let connection = tokio::spawn(connection);
        let request = Request::get("/metrics")
            .header(hyper::header::HOST, address.to_string())
            .body(Empty::<Bytes>::new())
            .map_err(|e| failed(&e))?;
        let response = sender.send_request(request).await.map_err(|e| failed(&e))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| failed(&e))?
            .to_bytes();
        connection.abort();
        if status != StatusCode::OK {
            return Err(failed(&format!("status {status}")));
        }
        String::from_utf8(body.to_vec()).map_err(|e| failed(&e))
    };
    tokio::time::timeout(SCRAPE_TIMEOUT, get)
        .await
        .map_err(|_| failed(&format!("no answer within {SCRAPE_TIMEOUT:?}")))?
}

/// The value of the sample `name{label="value"}` (the only label) in `text`, if there.
pub fn labelled(text: &str, name: &str, label: &str, value: &str) -> Option<u64> {
    let sample = format!("{name}{{{label}=\"{value}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&sample))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
        .map(|v| v as u64)
}

/// The proxy's commands by route (master, replica, cache, local, tunnel), as `/metrics` has
/// them; routes missing from `text` are left out.
pub fn routes(text: &str) -> Vec<(&'static str, u64)> {
    ["master", "replica", "cache", "local", "tunnel"]
        .into_iter()
        .filter_map(|route| Some((route, labelled(text, COMMANDS_METRIC, "route", route)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_line_gives_both_addresses() {
        let log = "2026-01-01T00:00:00Z  INFO hotkey_proxy::server: hotkey-proxy: listening on \
                   127.0.0.1:40123, metrics on 127.0.0.1:40124\n";
        assert_eq!(
            listening(log),
            Some((
                "127.0.0.1:40123".parse().unwrap(),
                "127.0.0.1:40124".parse().unwrap()
            ))
        );
        assert_eq!(listening("starting\n"), None);
        assert_eq!(
            listening("hotkey-proxy: listening on 127.0.0.1:1, metrics on (off)"),
            None
        );
    }

    const METRICS: &str = "# TYPE hotkey_proxy_commands counter\n\
        hotkey_proxy_commands_total{route=\"master\"} 120\n\
        hotkey_proxy_commands_total{route=\"cache\"} 9000\n\
        hotkey_proxy_cache_hits_total 9000\n\
        # EOF\n";

    #[test]
    fn a_labelled_sample_is_read_by_name_and_label() {
        assert_eq!(
            labelled(METRICS, COMMANDS_METRIC, "route", "cache"),
            Some(9000)
        );
        assert_eq!(labelled(METRICS, COMMANDS_METRIC, "route", "replica"), None);
        assert_eq!(routes(METRICS), vec![("master", 120), ("cache", 9000)]);
    }

    #[test]
    fn the_build_command_matches_the_profile() {
        assert_eq!(
            build_command(Path::new("/x/target/release")),
            "cargo build --release -p hotkey-proxy"
        );
        assert_eq!(
            build_command(Path::new("/x/target/debug")),
            "cargo build -p hotkey-proxy"
        );
    }
}
