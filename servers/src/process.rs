//! The process guard under servers, cluster nodes and sentinels: one child with its own port and
//! directory, started and waited for until it answers PING, stopped and its directory removed on
//! drop.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::Error;

/// How long a process may take to answer PING after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a process may take to exit after SIGTERM before it gets SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts at starting a process when the port picked was taken in the meantime.
const PORT_ATTEMPTS: usize = 5;
/// How long connecting, or one query, on a connection handed out here may take (times the
/// slowdown) before it fails: far beyond any command the tests send (the longest, `WAIT`, asks
/// for 15 s scaled), so only a server that stopped answering reaches it, and the caller's error
/// names the query instead of the test hanging until CI's limit.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(60);

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

/// The server binary: `$HOTKEY_REDIS_SERVER`, default `redis-server` on `PATH`.
pub fn server_binary() -> String {
    std::env::var("HOTKEY_REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_string())
}

/// The last `lines` lines of a file, or a note that it cannot be read.
pub fn tail(path: &Path, lines: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// The moment `timeout`, multiplied by `slowdown`, from now.
pub(crate) fn deadline(timeout: Duration, slowdown: f64) -> Instant {
    Instant::now() + timeout.mul_f64(slowdown)
}

/// A port nobody listens on right now (the OS picks it; never 6379).
fn free_port() -> Result<u16, Error> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| Error::new(format!("bind 127.0.0.1:0: {e}")))
}

/// A new empty directory for one process: `<tmp>/hotkey-<kind>-<pid>-<n>`.
pub fn fresh_dir(kind: &str) -> Result<PathBuf, Error> {
    let n = NEXT_DIR.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("hotkey-{kind}-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).map_err(|e| Error::new(format!("create {}: {e}", dir.display())))?;
    Ok(dir)
}

/// The arguments every server gets, after its config file if any: no persistence, `MODULE` and
/// `DEBUG` allowed (for module reloads and crash tests), loopback only, its port, its own
/// directory and log file.
pub(crate) fn own_args(port: u16, dir: &Path, log: &Path) -> Vec<String> {
    let mut args: Vec<String> = [
        "--save",
        "",
        "--appendonly",
        "no",
        "--enable-module-command",
        "yes",
        "--enable-debug-command",
        "yes",
        "--bind",
        "127.0.0.1",
    ]
    .map(str::to_string)
    .into();
    args.extend([
        "--port".into(),
        port.to_string(),
        "--dir".into(),
        dir.display().to_string(),
        "--logfile".into(),
        log.display().to_string(),
    ]);
    args
}

/// Why one attempt at starting a process failed.
pub enum Attempt {
    /// The port was taken: worth another attempt on another port.
    PortTaken(String),
    /// Anything else: no point in trying again.
    Failed(Error),
}

impl From<Error> for Attempt {
    fn from(e: Error) -> Attempt {
        Attempt::Failed(e)
    }
}

/// `attempt(port)` on a fixed port, or on free ports until one was not taken in the meantime.
pub fn on_port<T>(
    fixed: Option<u16>,
    mut attempt: impl FnMut(u16) -> Result<T, Attempt>,
) -> Result<T, Error> {
    if let Some(port) = fixed {
        return attempt(port).map_err(|failure| match failure {
            Attempt::PortTaken(report) => Error::new(format!("port {port} is taken:\n{report}")),
            Attempt::Failed(e) => e,
        });
    }
    let mut last_failure = String::new();
    for _ in 0..PORT_ATTEMPTS {
        match attempt(free_port()?) {
            Ok(started) => return Ok(started),
            Err(Attempt::PortTaken(report)) => last_failure = report,
            Err(Attempt::Failed(e)) => return Err(e),
        }
    }
    Err(Error::new(format!(
        "could not start {}:\n{last_failure}",
        server_binary()
    )))
}

/// A raw PING on a fresh socket: true when the process answers `+PONG`.
fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(n) => buf[..n].starts_with(b"+PONG"),
        Err(_) => false,
    }
}

/// The `process_id` the server on `port` gives in `INFO server`, if it answers.
fn process_id(port: u16) -> Option<u32> {
    let info: String = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(1)))
        .and_then(|mut conn| redis::cmd("INFO").arg("server").query(&mut conn))
        .ok()?;
    info.lines()
        .find_map(|l| l.trim().strip_prefix("process_id:"))
        .and_then(|pid| pid.parse().ok())
}

/// One running `server_binary()` process. Dropping it stops the process (SIGTERM, then SIGKILL)
/// and removes its directory, so a failure never leaks a process.
pub struct Process {
    child: Child,
    port: u16,
    dir: PathBuf,
    log: PathBuf,
    /// Multiplies the start and stop timeouts.
    slowdown: f64,
}

impl Process {
    /// Runs `server_binary() args…` (output to `dir/stdout.log`; its own log at `log`) and waits
    /// until it answers PING on `port`, for up to 10 s times `slowdown`. A failure carries the
    /// process's own words. The guard owns `dir` from here on, in every case.
    pub fn start(
        args: &[String],
        port: u16,
        dir: PathBuf,
        log: PathBuf,
        slowdown: f64,
    ) -> Result<Process, Attempt> {
        let output = dir.join("stdout.log");
        let files = fs::File::create(&output).and_then(|out| Ok((out.try_clone()?, out)));
        let spawned = match files {
            Ok((err, out)) => Command::new(server_binary())
                .args(args)
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .map_err(|e| {
                    format!(
                        "cannot run {} (set HOTKEY_REDIS_SERVER): {e}",
                        server_binary()
                    )
                }),
            Err(e) => Err(format!("create {}: {e}", output.display())),
        };
        let child = match spawned {
            Ok(child) => child,
            Err(e) => {
                let _ = fs::remove_dir_all(&dir);
                return Err(Attempt::Failed(Error::new(e)));
            }
        };
        // From here on the guard owns the process: any early return below stops it.
        let mut process = Process {
            child,
            port,
            dir,
            log,
            slowdown,
        };

        let deadline = deadline(START_TIMEOUT, slowdown);
        loop {
            // Another process may listen on the port (a fixed one, or a free one taken in the
            // meantime): only our own child's answer counts; the child then exits, below.
            if ping(port) && process_id(port) == Some(process.pid()) {
                return Ok(process);
            }
            if let Ok(Some(status)) = process.child.try_wait() {
                let report = format!(
                    "{} {} exited with {status}\n--- stdout/stderr ---\n{}\n--- {} ---\n{}",
                    server_binary(),
                    args.join(" "),
                    tail(&output, 30),
                    process.log.display(),
                    process.log_tail()
                );
                if report.contains("Address already in use") {
                    return Err(Attempt::PortTaken(report));
                }
                return Err(Attempt::Failed(Error::new(report)));
            }
            if Instant::now() > deadline {
                return Err(Attempt::Failed(Error::new(format!(
                    "{} {} did not answer PING within {:?}\n--- {} ---\n{}",
                    server_binary(),
                    args.join(" "),
                    START_TIMEOUT.mul_f64(slowdown),
                    process.log.display(),
                    process.log_tail()
                ))));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the start and stop timeouts, and those of its connections, are multiplied by.
    pub fn slowdown(&self) -> f64 {
        self.slowdown
    }

    /// The last 30 lines of the process's own log.
    pub fn log_tail(&self) -> String {
        tail(&self.log, 30)
    }

    /// True until the process has exited (and been reaped).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// True while the process runs and answers PING.
    pub fn is_up(&mut self) -> bool {
        self.is_running() && ping(self.port)
    }

    /// SIGKILL now, and wait for the exit.
    pub fn kill(&mut self) {
        // Once reaped, the status is cached and the pid may belong to another process: no
        // signal then.
        if self.is_running() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }

    /// SIGTERM, and wait for the exit; SIGKILL if it has not exited within `STOP_TIMEOUT`.
    pub fn stop(&mut self) {
        if !self.is_running() {
            return;
        }
        // std has no SIGTERM; `kill` does. Without it, go straight to SIGKILL below.
        let termed = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let deadline = deadline(STOP_TIMEOUT, self.slowdown);
        while termed && self.is_running() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        self.kill();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "--- {} on port {} ({}), last lines of its log ---\n{}",
                server_binary(),
                self.port,
                self.dir.display(),
                self.log_tail()
            );
        }
        self.stop();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A connection to `url` whose connecting and every query fail after [`QUERY_TIMEOUT`] times
/// `slowdown` (a server that stopped answering makes the query fail, not wait for ever).
pub fn open(url: &str, slowdown: f64) -> redis::RedisResult<redis::Connection> {
    let timeout = QUERY_TIMEOUT.mul_f64(slowdown);
    let conn = redis::Client::open(url)?.get_connection_with_timeout(timeout)?;
    conn.set_read_timeout(Some(timeout))?;
    conn.set_write_timeout(Some(timeout))?;
    Ok(conn)
}

/// [`open`], or a panic that shows the server's log (`log`, read only then): for callers that
/// treat an unreachable server as a bug, such as tests.
pub fn connect(url: &str, slowdown: f64, log: impl FnOnce() -> String) -> redis::Connection {
    open(url, slowdown).unwrap_or_else(|e| panic!("connect to {url}: {e}\n--- log ---\n{}", log()))
}
