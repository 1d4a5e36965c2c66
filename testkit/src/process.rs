//! The process guard under `Server` and `Sentinel`: one child with its own port and directory,
//! started and waited for until it answers PING, stopped and its directory removed on drop.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// How long a process may take to answer PING after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a process may take to exit after SIGTERM before it gets SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts at starting a process when the port picked was taken in the meantime.
const PORT_ATTEMPTS: usize = 5;

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

/// The server binary under test.
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

/// A port nobody listens on right now (the OS picks it; never 6379).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// A new empty directory for one process: `<tmp>/hotkey-<kind>-<pid>-<n>`.
pub(crate) fn fresh_dir(kind: &str) -> PathBuf {
    let n = NEXT_DIR.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("hotkey-{kind}-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

/// `attempt(port)` on a fixed port, or on free ports until one was not taken in the meantime.
/// `attempt` returns `Err` only when the port was taken.
pub(crate) fn on_port<T>(
    fixed: Option<u16>,
    mut attempt: impl FnMut(u16) -> Result<T, String>,
) -> T {
    if let Some(port) = fixed {
        return attempt(port).unwrap_or_else(|failure| panic!("port {port} is taken:\n{failure}"));
    }
    let mut last_failure = String::new();
    for _ in 0..PORT_ATTEMPTS {
        match attempt(free_port()) {
            Ok(started) => return started,
            Err(failure) => last_failure = failure,
        }
    }
    panic!("could not start {}:\n{last_failure}", server_binary());
}

/// A raw PING on a fresh socket: true when the process answers `+PONG`.
pub(crate) fn ping(port: u16) -> bool {
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

/// One running `server_binary()` process. Dropping it stops the process (SIGTERM, then SIGKILL)
/// and removes its directory, so a failing test never leaks a process.
pub(crate) struct Process {
    child: Child,
    port: u16,
    dir: PathBuf,
    log: PathBuf,
}

impl Process {
    /// Runs `server_binary() args…` (output to `dir/stdout.log`; its own log at `log`) and waits
    /// until it answers PING on `port`. `Err` only when the port was taken (worth another
    /// attempt); any other failure panics with the process's own words. The guard owns `dir`
    /// from here on, in both cases.
    pub(crate) fn start(
        args: &[String],
        port: u16,
        dir: PathBuf,
        log: PathBuf,
    ) -> Result<Process, String> {
        let output = dir.join("stdout.log");
        let out = fs::File::create(&output).expect("create stdout.log");
        let err = out.try_clone().expect("clone stdout.log");
        let spawned = Command::new(server_binary())
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) => {
                let _ = fs::remove_dir_all(&dir);
                panic!(
                    "cannot run {} (set HOTKEY_REDIS_SERVER): {e}",
                    server_binary()
                )
            }
        };
        // From here on the guard owns the process: any panic below kills it.
        let mut process = Process {
            child,
            port,
            dir,
            log,
        };

        let deadline = crate::wait::deadline(START_TIMEOUT);
        loop {
            if ping(port) {
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
                    return Err(report);
                }
                panic!("{report}");
            }
            if Instant::now() > deadline {
                panic!(
                    "{} {} did not answer PING within {START_TIMEOUT:?}\n--- {} ---\n{}",
                    server_binary(),
                    args.join(" "),
                    process.log.display(),
                    process.log_tail()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn log_tail(&self) -> String {
        tail(&self.log, 30)
    }

    /// True until the process has exited (and been reaped).
    pub(crate) fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// True while the process runs and answers PING.
    pub(crate) fn is_up(&mut self) -> bool {
        self.is_running() && ping(self.port)
    }

    /// SIGKILL now, and wait for the exit.
    pub(crate) fn kill(&mut self) {
        // Once reaped, the status is cached and the pid may belong to another process: no
        // signal then.
        if self.is_running() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }

    /// SIGTERM, and wait for the exit; SIGKILL if it has not exited within `STOP_TIMEOUT`.
    pub(crate) fn stop(&mut self) {
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
        let deadline = crate::wait::deadline(STOP_TIMEOUT);
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

/// A connection to `url`, or a panic that shows the server's log (`log`, read only then).
pub(crate) fn connect(url: &str, log: impl FnOnce() -> String) -> redis::Connection {
    redis::Client::open(url)
        .and_then(|c| c.get_connection())
        .unwrap_or_else(|e| panic!("connect to {url}: {e}\n--- log ---\n{}", log()))
}
