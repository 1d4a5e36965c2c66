//! The harness: a `Server` guard that owns one real `redis-server` with the module loaded,
//! connection helpers, and parsers for `HOTKEY.TOP` and `INFO hotkey`.
//!
//! Environment:
//! - `HOTKEY_REDIS_SERVER`: the server binary (default `redis-server` on `PATH`); Valkey and
//!   newer Redis binaries take the same arguments.
//! - `HOTKEY_MODULE`: the module to load (default: the `libhotkey.so` cargo built next to this
//!   test binary).

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use hotkey_protocol::{Event, Message};
use redis::{Connection, RedisError, Value};

/// How long a server may take to answer PING after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a replica may take to report `master_link_status:up`.
const SYNC_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a server may take to exit after SIGTERM before it gets SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts at starting a server when the port picked was taken in the meantime.
const PORT_ATTEMPTS: usize = 5;

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

/// The server binary under test.
pub fn server_binary() -> String {
    std::env::var("HOTKEY_REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_string())
}

/// The module under test: `$HOTKEY_MODULE`, or the `libhotkey.so` cargo built alongside this
/// test binary (`target/<profile>/deps/<test>` → `target/<profile>/[deps/]libhotkey.so`).
pub fn module_path() -> PathBuf {
    if let Ok(path) = std::env::var("HOTKEY_MODULE") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "HOTKEY_MODULE={} does not exist: build it or unset HOTKEY_MODULE",
            path.display()
        );
        return path;
    }
    let exe = std::env::current_exe().expect("path of the test binary");
    let deps = exe
        .parent()
        .expect("the test binary lives in target/<profile>/deps");
    let profile = deps.parent().expect("target/<profile>");
    let candidates = [profile.join("libhotkey.so"), deps.join("libhotkey.so")];
    // Both may exist (a `cargo build` uplifts a copy); the newer one is the current build.
    candidates
        .iter()
        .filter_map(|p| Some((fs::metadata(p).ok()?.modified().ok()?, p)))
        .max()
        .map(|(_, p)| p.clone())
        .unwrap_or_else(|| {
            panic!(
                "the module is not built: neither {} nor {} exists (run `cargo build`, \
                 or set HOTKEY_MODULE to the .so)",
                candidates[0].display(),
                candidates[1].display()
            )
        })
}

/// A port nobody listens on right now (the OS picks it; never 6379).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
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

/// How to start a server: module arguments, extra server arguments, replication.
pub struct Builder {
    module_args: Vec<(String, String)>,
    load_module: bool,
    extra_args: Vec<String>,
    replica_of: Option<u16>,
}

impl Builder {
    /// Set (or override) one module argument (`<name> <value>` after the module path).
    pub fn module_arg(mut self, name: &str, value: &str) -> Self {
        match self.module_args.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value.to_string(),
            None => self.module_args.push((name.to_string(), value.to_string())),
        }
        self
    }

    /// Start the server without `--loadmodule` (for tests that `MODULE LOAD` themselves).
    pub fn without_module(mut self) -> Self {
        self.load_module = false;
        self
    }

    /// Extra server arguments, e.g. `["--databases", "4"]`.
    pub fn server_args(mut self, args: &[&str]) -> Self {
        self.extra_args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Make the server a replica of `master`; `start` then waits until the link is up.
    pub fn replica_of(mut self, master: &Server) -> Self {
        self.replica_of = Some(master.port);
        self
    }

    /// Start the server and wait until it answers PING (and, for a replica, until it synced).
    pub fn start(self) -> Server {
        let mut last_failure = String::new();
        for _ in 0..PORT_ATTEMPTS {
            match self.try_start(free_port()) {
                Ok(server) => {
                    if self.replica_of.is_some() {
                        server.wait_for_master_link();
                    }
                    return server;
                }
                Err(failure) => last_failure = failure,
            }
        }
        panic!("could not start {}:\n{last_failure}", server_binary());
    }

    /// One attempt on `port`. `Err` only when the port was taken (worth another attempt);
    /// any other failure panics with the server's own words.
    fn try_start(&self, port: u16) -> Result<Server, String> {
        let n = NEXT_DIR.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("hotkey-test-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let log = dir.join("redis.log");
        let output = dir.join("stdout.log");

        let mut args: Vec<String> = vec![
            "--save".into(),
            "".into(),
            "--appendonly".into(),
            "no".into(),
            "--enable-module-command".into(),
            "yes".into(),
            "--enable-debug-command".into(),
            "yes".into(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port.to_string(),
            "--dir".into(),
            dir.display().to_string(),
            "--logfile".into(),
            log.display().to_string(),
        ];
        if self.load_module {
            args.push("--loadmodule".into());
            args.push(module_path().display().to_string());
            for (name, value) in &self.module_args {
                args.push(name.clone());
                args.push(value.clone());
            }
        }
        if let Some(master_port) = self.replica_of {
            args.extend([
                "--replicaof".into(),
                "127.0.0.1".into(),
                master_port.to_string(),
            ]);
        }
        args.extend(self.extra_args.iter().cloned());

        let out = fs::File::create(&output).expect("create stdout.log");
        let err = out.try_clone().expect("clone stdout.log");
        let child = Command::new(server_binary())
            .args(&args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} (set HOTKEY_REDIS_SERVER): {e}",
                    server_binary()
                )
            });
        // From here on the guard owns the process: any panic below kills it.
        let mut server = Server { child, port, dir };

        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if ping(port) {
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                let report = format!(
                    "{} {} exited with {status}\n--- stdout/stderr ---\n{}\n--- {} ---\n{}",
                    server_binary(),
                    args.join(" "),
                    tail(&output, 30),
                    log.display(),
                    tail(&log, 30)
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
                    log.display(),
                    tail(&log, 30)
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A raw PING on a fresh socket: true when the server answers `+PONG`.
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

/// One running server. Dropping it stops the process (SIGTERM, then SIGKILL) and removes its
/// directory, so a failing test never leaks a server.
pub struct Server {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
}

impl Server {
    /// A server with the module loaded with `sample-max 1` (every command counted).
    pub fn start() -> Server {
        Server::builder().start()
    }

    /// A server whose rates do not decay within a test (half-life of ten minutes), so that
    /// accesses made at different moments compare exactly.
    pub fn steady() -> Server {
        Server::builder()
            .module_arg("half-life-ms", "600000")
            .start()
    }

    /// A builder whose module arguments start as `sample-max 1`.
    pub fn builder() -> Builder {
        Builder {
            module_args: vec![("sample-max".into(), "1".into())],
            load_module: true,
            extra_args: Vec::new(),
            replica_of: None,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn connect(&self, url: &str) -> Connection {
        redis::Client::open(url)
            .and_then(|c| c.get_connection())
            .unwrap_or_else(|e| panic!("connect to {url}: {e}\n--- log ---\n{}", self.log_tail()))
    }

    /// A RESP2 connection as the default user, db 0.
    pub fn conn(&self) -> Connection {
        self.connect(&self.url())
    }

    /// A RESP3 connection as the default user, db 0.
    pub fn conn_resp3(&self) -> Connection {
        self.connect(&format!("{}?protocol=resp3", self.url()))
    }

    /// A RESP2 connection with database `db` selected.
    pub fn conn_db(&self, db: i64) -> Connection {
        self.connect(&format!("redis://127.0.0.1:{}/{db}", self.port))
    }

    /// A RESP2 connection authenticated as `user`.
    pub fn conn_as(&self, user: &str, password: &str) -> Connection {
        self.connect(&format!(
            "redis://{user}:{password}@127.0.0.1:{}/",
            self.port
        ))
    }

    pub fn log_tail(&self) -> String {
        tail(&self.dir.join("redis.log"), 30)
    }

    /// True while the process runs and answers PING.
    pub fn is_up(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None)) && ping(self.port)
    }

    fn wait_for_master_link(&self) {
        let mut conn = self.conn();
        let deadline = Instant::now() + SYNC_TIMEOUT;
        loop {
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query(&mut conn)
                .expect("INFO replication");
            if info.lines().any(|l| l.trim() == "master_link_status:up") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "replica on port {} not in sync after {SYNC_TIMEOUT:?}:\n{info}\n--- log ---\n{}",
                self.port,
                self.log_tail()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "--- server on port {} ({}), last lines of its log ---\n{}",
                self.port,
                self.dir.display(),
                self.log_tail()
            );
        }
        let pid = self.child.id().to_string();
        // std has no SIGTERM; `kill` does. Without it, go straight to SIGKILL below.
        let termed = Command::new("kill")
            .args(["-TERM", &pid])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let deadline = Instant::now() + STOP_TIMEOUT;
        while termed && matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// One `HOTKEY.TOP` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: Vec<u8>,
    pub db: i64,
    pub reads: f64,
    pub writes: f64,
    pub error: f64,
    pub hot: i64,
}

impl Entry {
    pub fn total(&self) -> f64 {
        self.reads + self.writes
    }
}

/// `HOTKEY.TOP <args…>`, parsed from either reply shape (RESP2 flat arrays or RESP3 maps).
pub fn top(conn: &mut Connection, args: &[&str]) -> Vec<Entry> {
    let reply: Value = redis::cmd("HOTKEY.TOP")
        .arg(args)
        .query(conn)
        .unwrap_or_else(|e| panic!("HOTKEY.TOP {}: {e}", args.join(" ")));
    parse_top(&reply)
}

/// `HOTKEY.TOP COUNT 1000` (every tracked key in these small tests).
pub fn top_all(conn: &mut Connection) -> Vec<Entry> {
    top(conn, &["COUNT", "1000"])
}

/// The entry of `key` in database `db`, if TOP (COUNT 1000) lists it.
pub fn find(entries: &[Entry], key: &[u8], db: i64) -> Option<Entry> {
    entries.iter().find(|e| e.key == key && e.db == db).cloned()
}

/// The entry of `key` (any db), panicking with the whole reply if it is missing.
pub fn entry(entries: &[Entry], key: &str) -> Entry {
    let found: Vec<&Entry> = entries.iter().filter(|e| e.key == key.as_bytes()).collect();
    match found.as_slice() {
        [one] => (*one).clone(),
        [] => panic!("key {key:?} is not in HOTKEY.TOP: {}", show(entries)),
        _ => panic!(
            "key {key:?} is in HOTKEY.TOP more than once: {}",
            show(entries)
        ),
    }
}

/// A readable dump of entries for failure messages.
pub fn show(entries: &[Entry]) -> String {
    let lines: Vec<String> = entries
        .iter()
        .map(|e| {
            format!(
                "  {:?} db={} reads={} writes={} error={} hot={}",
                String::from_utf8_lossy(&e.key),
                e.db,
                e.reads,
                e.writes,
                e.error,
                e.hot
            )
        })
        .collect();
    format!("{} entries\n{}", entries.len(), lines.join("\n"))
}

pub fn parse_top(reply: &Value) -> Vec<Entry> {
    let Value::Array(items) = reply else {
        panic!("HOTKEY.TOP reply is not an array: {reply:?}");
    };
    items.iter().map(parse_entry).collect()
}

fn parse_entry(item: &Value) -> Entry {
    let pairs: Vec<(&Value, &Value)> = match item {
        Value::Map(map) => map.iter().map(|(k, v)| (k, v)).collect(),
        Value::Array(flat) => {
            assert!(
                flat.len().is_multiple_of(2),
                "entry is not field-value pairs: {item:?}"
            );
            flat.chunks(2).map(|p| (&p[0], &p[1])).collect()
        }
        other => panic!("HOTKEY.TOP entry is neither a map nor an array: {other:?}"),
    };
    let mut fields: HashMap<String, &Value> = HashMap::new();
    for (name, value) in pairs {
        let name = text(name).unwrap_or_else(|| panic!("field name is not a string: {item:?}"));
        assert!(
            fields.insert(name.clone(), value).is_none(),
            "field {name} twice: {item:?}"
        );
    }
    let field = |name: &str| -> &Value {
        fields
            .get(name)
            .copied()
            .unwrap_or_else(|| panic!("entry has no field {name}: {item:?}"))
    };
    assert_eq!(
        fields.len(),
        6,
        "entry has other fields than the README's six: {item:?}"
    );
    Entry {
        key: match field("key") {
            Value::BulkString(bytes) => bytes.clone(),
            other => panic!("key is not a bulk string: {other:?}"),
        },
        db: integer(field("db")),
        reads: double(field("reads_per_sec")),
        writes: double(field("writes_per_sec")),
        error: double(field("error")),
        hot: integer(field("hot")),
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        _ => None,
    }
}

fn integer(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        other => panic!("expected an integer, got {other:?}"),
    }
}

/// A double: a RESP3 double, or (RESP2) a bulk string holding one.
fn double(v: &Value) -> f64 {
    match v {
        Value::Double(d) => *d,
        Value::BulkString(_) | Value::SimpleString(_) => {
            let s = text(v).unwrap_or_default();
            s.parse()
                .unwrap_or_else(|_| panic!("expected a double, got the string {s:?}"))
        }
        other => panic!("expected a double, got {other:?}"),
    }
}

/// `INFO hotkey` as field → value. Redis prefixes module INFO fields with the module name
/// (`hotkey_enabled`); the prefix is stripped, so the names are the README's.
pub fn info_hotkey(conn: &mut Connection) -> HashMap<String, String> {
    let info: String = redis::cmd("INFO")
        .arg("hotkey")
        .query(conn)
        .expect("INFO hotkey");
    info.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| {
            let k = k.strip_prefix("hotkey_").unwrap_or(k);
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// One numeric `INFO hotkey` field.
pub fn info_number(conn: &mut Connection, field: &str) -> f64 {
    let info = info_hotkey(conn);
    let value = info
        .get(field)
        .unwrap_or_else(|| panic!("INFO hotkey has no field {field}: {info:?}"));
    value
        .parse()
        .unwrap_or_else(|_| panic!("INFO hotkey {field}:{value} is not a number"))
}

/// The text a user sees for a server error: `ERR COUNT must be a positive integer`.
pub fn error_text(e: &RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        (Some(code), None) => code.to_string(),
        _ => e.to_string(),
    }
}

/// Run `cmd`, which must fail, and return the error text.
pub fn expect_error(conn: &mut Connection, cmd: &redis::Cmd) -> String {
    match cmd.query::<Value>(conn) {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => error_text(&e),
    }
}

/// `CONFIG GET <name>` → the value.
pub fn config_get(conn: &mut Connection, name: &str) -> String {
    let pairs: HashMap<String, String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg(name)
        .query(conn)
        .unwrap_or_else(|e| panic!("CONFIG GET {name}: {e}"));
    pairs
        .get(name)
        .cloned()
        .unwrap_or_else(|| panic!("CONFIG GET {name} returned {pairs:?}"))
}

/// A subscriber to the module's channel on its own thread: every message with the moment it
/// arrived, parsed with the protocol crate (the router's parser). Stops when dropped.
pub struct Subscriber {
    messages: Receiver<(Instant, Message)>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Subscriber {
    /// Subscribes to `channel` on `server`; returns once the subscription is active.
    pub fn new(server: &Server, channel: &str) -> Subscriber {
        let (tx, rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let mut conn = server.conn();
        let channel = channel.to_owned();
        let stopped = stop.clone();
        let thread = thread::spawn(move || {
            let mut pubsub = conn.as_pubsub();
            pubsub.subscribe(&channel).expect("SUBSCRIBE");
            pubsub
                .set_read_timeout(Some(Duration::from_millis(50)))
                .expect("read timeout");
            let _ = ready_tx.send(());
            while !stopped.load(Ordering::Relaxed) {
                match pubsub.get_message() {
                    Ok(msg) => {
                        let at = Instant::now();
                        let payload: Vec<u8> = msg.get_payload().expect("payload");
                        let message = Message::from_json(&payload).unwrap_or_else(|e| {
                            panic!("{e}: {}", String::from_utf8_lossy(&payload))
                        });
                        if tx.send((at, message)).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.is_timeout() => {}
                    // The server went away: the test sees no more messages.
                    Err(_) => return,
                }
            }
        });
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("subscription did not start");
        Subscriber {
            messages: rx,
            stop,
            thread: Some(thread),
        }
    }

    /// The next message within `timeout`, with its arrival time.
    pub fn next_within(&self, timeout: Duration) -> Option<(Instant, Message)> {
        self.messages.recv_timeout(timeout).ok()
    }

    /// The first message within `timeout` that `want` accepts; the ones before it are passed to
    /// `seen` (in order), so a test can check what came in between.
    pub fn wait_for(
        &self,
        timeout: Duration,
        mut want: impl FnMut(&Message) -> bool,
        mut seen: impl FnMut(&Message),
    ) -> Option<(Instant, Message)> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (at, m) = self.next_within(left)?;
            if want(&m) {
                return Some((at, m));
            }
            seen(&m);
        }
    }

    /// Every message that arrives within `window`.
    pub fn collect(&self, window: Duration) -> Vec<Message> {
        let deadline = Instant::now() + window;
        let mut all = Vec::new();
        while let Some((_, m)) =
            self.next_within(deadline.saturating_duration_since(Instant::now()))
        {
            all.push(m);
        }
        all
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The key of a key event (`hot`, `cold`, `update`) as bytes, or None for other events.
pub fn event_key(m: &Message) -> Option<Vec<u8>> {
    match &m.event {
        Event::Hot(k) | Event::Cold(k) | Event::Update(k) => k.key.bytes().ok(),
        _ => None,
    }
}

/// True for a `hot` event of `key`.
pub fn is_hot(m: &Message, key: &[u8]) -> bool {
    matches!(&m.event, Event::Hot(_)) && event_key(m).as_deref() == Some(key)
}

/// True for a `cold` event of `key`.
pub fn is_cold(m: &Message, key: &[u8]) -> bool {
    matches!(&m.event, Event::Cold(_)) && event_key(m).as_deref() == Some(key)
}

/// Sends `GET key` at about `per_sec` for `duration`, pipelined in batches of 10 per
/// millisecond slot, so the rate holds without a busy thread per request.
pub fn load(conn: &mut Connection, key: &[u8], per_sec: u64, duration: Duration) {
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < duration {
        let due = (start.elapsed().as_secs_f64() * per_sec as f64) as u64;
        if sent < due {
            let batch = (due - sent).min(200);
            let mut pipe = redis::pipe();
            for _ in 0..batch {
                pipe.cmd("GET").arg(key).ignore();
            }
            let _: () = pipe.query(conn).expect("GET load");
            sent += batch;
        } else {
            thread::sleep(Duration::from_millis(1));
        }
    }
}
