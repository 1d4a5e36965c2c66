//! What the proxy's tests share: the `hotkey-proxy` binary run as a user runs it (a child
//! process with flags, its log in a file), stopped on drop; servers with the module; waits.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use hotkey_testkit::WAIT;
use hotkey_testkit::{Server, wait_for_acks};

/// A hot threshold no test load reaches: only pinned keys are hot.
const NO_DETECTION: (&str, &str) = ("hot-threshold", "1000000000");

/// A master with the module, detection off (keys are hot when pinned), and `args`.
pub fn master(args: &[(&str, &str)]) -> Server {
    builder(args).start()
}

/// A master and `n` replicas, in sync.
pub fn replicated(args: &[(&str, &str)], n: usize) -> (Server, Vec<Server>) {
    let master = master(args);
    let replicas: Vec<Server> = (0..n)
        .map(|_| builder(args).replica_of(&master).start())
        .collect();
    let mut conn = master.conn();
    let () = redis::cmd("SET")
        .arg("replicated")
        .arg(1)
        .query(&mut conn)
        .expect("SET");
    wait_for_acks(&mut conn, n);
    (master, replicas)
}

fn builder(args: &[(&str, &str)]) -> hotkey_testkit::Builder {
    let builder = Server::builder()
        .module_arg(NO_DETECTION.0, NO_DETECTION.1)
        .server_args(&["--repl-diskless-sync-delay", "0"]);
    args.iter().fold(builder, |b, (n, v)| b.module_arg(n, v))
}

/// A running `hotkey-proxy`; killed (SIGKILL) on drop unless stopped before.
pub struct Proxy {
    child: Child,
    pub port: u16,
    pub metrics_port: Option<u16>,
    log: PathBuf,
    _dir: TempDir,
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Proxy {
    /// The proxy in front of `master`, with `args` (flags), on free ports.
    pub fn start(master: &Server, args: &[&str]) -> Proxy {
        Proxy::start_with(&[master.url().as_str()], args)
    }

    /// The proxy with `upstream` (URLs, or `--sentinel NAME` and Sentinels' URLs) and `args`.
    pub fn start_with(upstream: &[&str], args: &[&str]) -> Proxy {
        let dir = std::env::temp_dir().join(format!(
            "hotkey-proxy-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let log = dir.join("proxy.log");
        let file = std::fs::File::create(&log).expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_hotkey-proxy"));
        command
            .args(["--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0"])
            .args(args)
            .args(upstream)
            .env("RUST_LOG", "hotkey_proxy=debug,hotkey_router=info")
            .stdout(Stdio::null())
            .stderr(file);
        let child = command.spawn().expect("hotkey-proxy starts");
        let mut proxy = Proxy {
            child,
            port: 0,
            metrics_port: None,
            log,
            _dir: TempDir(dir),
        };
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some((port, metrics)) = proxy.bound() {
                proxy.port = port;
                proxy.metrics_port = metrics;
                return proxy;
            }
            if let Ok(Some(status)) = proxy.child.try_wait() {
                panic!("hotkey-proxy exited ({status}):\n{}", proxy.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "hotkey-proxy did not listen within {WAIT:?}:\n{}",
                proxy.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The ports of the log's "listening on A, metrics on B" line.
    fn bound(&self) -> Option<(u16, Option<u16>)> {
        let text = self.log_text();
        let line = text.lines().find(|l| l.contains("listening on "))?;
        let rest = line.split("listening on ").nth(1)?;
        let (clients, metrics) = rest.split_once(", metrics on ")?;
        let port = |a: &str| a.trim().rsplit(':').next()?.parse::<u16>().ok();
        Some((port(clients)?, port(metrics)))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A RESP2 connection through the proxy.
    pub fn conn(&self) -> redis::Connection {
        self.client(&self.url())
            .get_connection()
            .expect("connect to the proxy")
    }

    /// A RESP3 connection through the proxy.
    pub fn conn_resp3(&self) -> redis::Connection {
        self.client(&format!("{}?protocol=resp3", self.url()))
            .get_connection()
            .expect("connect to the proxy")
    }

    fn client(&self, url: &str) -> redis::Client {
        redis::Client::open(url).expect("proxy URL")
    }

    /// `/metrics`, as text.
    pub fn metrics(&self) -> String {
        use std::io::{Read, Write};
        let port = self.metrics_port.expect("metrics on");
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("metrics");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .expect("GET");
        let mut text = String::new();
        let _ = stream.read_to_string(&mut text);
        text
    }

    /// The value of the metric line starting with `name` (with its labels), if any.
    pub fn metric(&self, name: &str) -> Option<f64> {
        self.metrics()
            .lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    }

    /// Reads `key` (a hot key whose advice allows the cache) through `conn` until the proxy
    /// counts a cache hit.
    pub fn wait_for_cache_hit(&self, conn: &mut redis::Connection, key: &[u8]) {
        hotkey_testkit::wait_until("the proxy serves the hot key from its cache", WAIT, || {
            let _: redis::Value = redis::cmd("GET").arg(key).query(conn).expect("GET");
            let hits = self.metric("hotkey_proxy_cache_hits_total");
            hotkey_testkit::check(hits.unwrap_or(0.0) > 0.0, || hits)
        });
    }

    /// SIGTERM, then waits for the exit (at most `WAIT`); the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        signal(self.child.id(), "TERM");
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "hotkey-proxy did not exit on SIGTERM:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Sends signal `name` (`TERM`, `STOP`, `CONT`) to `pid`.
pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{name} {pid}");
}

/// `HOTKEY.PIN key`: the key is hot from now on (with the module's advice).
pub fn pin(master: &Server, key: &[u8]) {
    hotkey_testkit::pin(&mut master.conn(), key, &[]);
}

/// `INFO commandstats` calls of `command` on `server`.
pub fn calls(server: &Server, command: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut server.conn())
        .expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{command}:calls=")))
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .unwrap_or(0)
}
