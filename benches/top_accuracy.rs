//! How well `HOTKEY.TOP` ranks a busy node's keys, in each window, side by side with Redis 8.6's
//! own `HOTKEYS` session on the same stream.
//!
//! For each Zipf exponent (0.9 and 1.1): a fresh `redis-server` with the release module at
//! default settings (adaptive sampling included) runs a `HOTKEYS START METRICS 1 NET COUNT 50`
//! session while this process streams pipelined `GET key:NNNNNNN` over 1,000,000 keys at about
//! 130,000 commands/s from the other core (the server is pinned to core 0, this process to core
//! 1). At the end, while the stream still runs, it reads `HOTKEY.TOP COUNT 50 WINDOW w` for
//! w = 1, 10, 60 and `HOTKEYS GET`, and compares them with the stream's exact counts:
//!
//! - recall@k: the share of the k keys reported whose exact count is at least the exact k-th
//!   count (ties at the boundary count as hits);
//! - the median, over the 10 keys reported first, of |reported rate − exact rate| / exact rate,
//!   where the exact rate is the key's count over the stream's duration (the stream is
//!   stationary). `HOTKEYS` reports network bytes; every command here has the same size, so a
//!   key's share of the bytes times the stream's rate is its rate.
//!
//! ```text
//! HOTKEY_REDIS_SERVER=~/.cache/hotkey-servers/bin/redis-8.6.2-server \
//!     cargo bench --bench top_accuracy                 # 200 s per exponent
//! TOP_ACCURACY_SECONDS=30 TOP_ACCURACY_RATE=100000 cargo bench --bench top_accuracy -- --quick
//! ```
//!
//! `--quick` streams 30 s per exponent (too short for the 60 s window to have settled: the
//! full run is the one to quote). On a server without `HOTKEYS` (before Redis 8.6) only the
//! module's rows are printed.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use hotkey_testkit::{Server, info_hotkey, parse_top, server_binary};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Zipf};
use redis::Value;

const KEYS: usize = 1_000_000;
const EXPONENTS: [f64; 2] = [0.9, 1.1];
const WINDOWS: [u64; 3] = [1, 10, 60];
/// Three time constants of the longest window, and some.
const FULL_SECONDS: u64 = 200;
const QUICK_SECONDS: u64 = 30;
const DEFAULT_RATE: u64 = 130_000;
/// Commands per write: enough to keep the server's event loop busy, small enough to pace.
const BATCH: usize = 128;
/// Commands sent but not yet answered before the writer waits for the reader.
const MAX_IN_FLIGHT: u64 = 16_384;
/// `$-1\r\n`: the reply to a GET of a missing key. Every reply is this, so counting replies is
/// counting bytes.
const REPLY_BYTES: usize = 5;

fn main() {
    // `cargo test --all-targets` runs bench binaries too, without `--bench`: several minutes
    // against a real server belong to `cargo bench` only.
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("top_accuracy: a benchmark; run it with `cargo bench --bench top_accuracy`");
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let seconds =
        env_u64("TOP_ACCURACY_SECONDS").unwrap_or(if quick { QUICK_SECONDS } else { FULL_SECONDS });
    let rate = env_u64("TOP_ACCURACY_RATE").unwrap_or(DEFAULT_RATE);
    // Threads started from now on (writer, reader) inherit core 1; the server gets core 0.
    pin(std::process::id(), 1);
    println!(
        "server: {}; {seconds} s per exponent at {rate} GET/s over {KEYS} keys",
        server_binary()
    );
    for exponent in EXPONENTS {
        run(exponent, seconds, rate);
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a whole number, not {value:?}")),
    )
}

/// Pins every thread of process `pid` to `core` (the machine has two).
fn pin(pid: u32, core: u32) {
    let status = Command::new("taskset")
        .args(["-a", "-p", "-c", &core.to_string(), &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run taskset");
    assert!(status.success(), "taskset -p -c {core} {pid}: {status}");
}

/// One reported ranking: keys (as key numbers) with their rates, highest first.
type Ranking = Vec<(usize, f64)>;

fn run(exponent: f64, seconds: u64, rate: u64) {
    // Default settings: the builder starts from `sample-max 1`, the module's default is 64.
    let server = Server::builder().module_arg("sample-max", "64").start();
    pin(server.pid(), 0);
    let mut conn = server.conn();
    let hotkeys = redis::cmd("HOTKEYS")
        .arg(&["START", "METRICS", "1", "NET", "COUNT", "50"][..])
        .query::<()>(&mut conn)
        .is_ok();

    let stream = Stream::start(&server, exponent, rate);
    thread::sleep(Duration::from_secs(seconds));
    // Read while the stream runs, so that no window has started to decay from its end.
    let tops: Vec<Ranking> = WINDOWS.iter().map(|&w| top(&mut conn, w)).collect();
    let hotkeys_reply: Option<Value> = hotkeys.then(|| {
        redis::cmd("HOTKEYS")
            .arg("GET")
            .query(&mut conn)
            .expect("HOTKEYS GET")
    });
    let memory = info_hotkey(&mut conn)
        .get("memory_bytes")
        .cloned()
        .unwrap_or_default();
    let info = info_hotkey(&mut conn);
    // The stream is stationary: a key's exact rate is its count over the whole stream, which
    // ends a few milliseconds after the readings.
    let Sent {
        counts,
        total: sent,
        secs,
    } = stream.stop();
    let exact = Exact::new(counts, secs);
    println!();
    println!(
        "Zipf {exponent}: {sent} GETs in {secs:.1} s ({:.0}/s); module memory_bytes {memory}, \
         tracked_keys {}, evictions {}",
        sent as f64 / secs,
        info.get("tracked_keys").map_or("?", String::as_str),
        info.get("evictions").map_or("?", String::as_str),
    );
    println!("| source | recall@10 | recall@50 | median top-10 rate error |");
    println!("| --- | ---: | ---: | ---: |");
    for (w, ranking) in WINDOWS.iter().zip(&tops) {
        exact.row(&format!("HOTKEY.TOP WINDOW {w}"), ranking);
    }
    match hotkeys_reply {
        Some(reply) => exact.row(
            "HOTKEYS START METRICS 1 NET",
            &hotkeys_ranking(&reply, sent as f64 / secs),
        ),
        None => println!("(no HOTKEYS on this server)"),
    }
}

/// `HOTKEY.TOP COUNT 50 WINDOW w`, checking every entry says it is in window `w`.
fn top(conn: &mut redis::Connection, window: u64) -> Ranking {
    let reply: Value = redis::cmd("HOTKEY.TOP")
        .arg(&["COUNT", "50", "WINDOW", &window.to_string()][..])
        .query(conn)
        .expect("HOTKEY.TOP");
    parse_top(&reply)
        .into_iter()
        .map(|e| {
            assert_eq!(e.window, window as i64, "window field of {e:?}");
            (key_number(&e.key), e.total())
        })
        .collect()
}

/// `key:NNNNNNN` → NNNNNNN.
fn key_number(key: &[u8]) -> usize {
    std::str::from_utf8(key)
        .ok()
        .and_then(|k| k.strip_prefix("key:"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a key of the stream: {key:?}"))
}

/// `HOTKEYS GET`'s `by-net-bytes` ranking as rates: each key's share of the session's bytes
/// times the stream's rate (every command has the same size).
fn hotkeys_ranking(reply: &Value, per_sec: f64) -> Ranking {
    let total = field(reply, "net-bytes-all-commands-all-slots")
        .and_then(number)
        .expect("HOTKEYS GET has net-bytes-all-commands-all-slots");
    let Some(Value::Array(pairs)) = field(reply, "by-net-bytes") else {
        panic!("HOTKEYS GET has no by-net-bytes array: {reply:?}");
    };
    pairs
        .chunks(2)
        .map(|pair| {
            let Value::BulkString(key) = &pair[0] else {
                panic!("by-net-bytes key is not a bulk string: {pair:?}");
            };
            let bytes = pair.get(1).and_then(number).expect("by-net-bytes value");
            (key_number(key), bytes / total * per_sec)
        })
        .collect()
}

/// The value after the field name `name` anywhere in a reply of field–value arrays or maps.
fn field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    let is_name = |x: &Value| {
        matches!(x, Value::BulkString(b) if b == name.as_bytes())
            || matches!(x, Value::SimpleString(s) if s == name)
    };
    match v {
        Value::Array(items) => items
            .iter()
            .position(is_name)
            .and_then(|i| items.get(i + 1))
            .or_else(|| items.iter().find_map(|item| field(item, name))),
        Value::Map(pairs) => pairs
            .iter()
            .find(|(k, _)| is_name(k))
            .map(|(_, v)| v)
            .or_else(|| pairs.iter().find_map(|(_, item)| field(item, name))),
        _ => None,
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Double(d) => Some(*d),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        _ => None,
    }
}

/// The stream's exact counts.
struct Exact {
    counts: Vec<u64>,
    secs: f64,
    /// Counts in descending order.
    sorted: Vec<u64>,
}

impl Exact {
    fn new(counts: Vec<u64>, secs: f64) -> Exact {
        let mut sorted = counts.clone();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        Exact {
            counts,
            secs,
            sorted,
        }
    }

    /// Share of the first `k` reported keys whose exact count is at least the exact k-th.
    fn recall(&self, ranking: &Ranking, k: usize) -> f64 {
        let bar = self.sorted[k - 1];
        let hits = ranking
            .iter()
            .take(k)
            .filter(|(key, _)| self.counts[*key] >= bar)
            .count();
        hits as f64 / k as f64
    }

    /// Median relative error of the first 10 reported rates.
    fn median_error(&self, ranking: &Ranking) -> f64 {
        let mut errors: Vec<f64> = ranking
            .iter()
            .take(10)
            .map(|&(key, rate)| {
                let exact = self.counts[key] as f64 / self.secs;
                (rate - exact).abs() / exact
            })
            .collect();
        errors.sort_by(f64::total_cmp);
        let n = errors.len();
        if n == 0 {
            f64::NAN
        } else if n.is_multiple_of(2) {
            (errors[n / 2 - 1] + errors[n / 2]) / 2.0
        } else {
            errors[n / 2]
        }
    }

    fn row(&self, source: &str, ranking: &Ranking) {
        println!(
            "| {source} | {:.2} | {:.2} | {:.1} % |",
            self.recall(ranking, 10),
            self.recall(ranking, 50),
            100.0 * self.median_error(ranking),
        );
    }
}

/// What the writer sent: the count of each key, the total, and over how long.
struct Sent {
    counts: Vec<u64>,
    total: u64,
    secs: f64,
}

/// The load: a writer thread sending paced, pipelined GETs and counting them per key, and a
/// reader thread draining the replies.
struct Stream {
    stop: Arc<AtomicBool>,
    writer: thread::JoinHandle<Sent>,
    reader: thread::JoinHandle<()>,
}

impl Stream {
    fn start(server: &Server, exponent: f64, rate: u64) -> Stream {
        let socket = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
        socket.set_nodelay(true).expect("nodelay");
        let mut replies_from = socket.try_clone().expect("clone socket");
        // So that the reader sees `stop` even when every reply is in.
        replies_from
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("read timeout");
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicU64::new(0));
        let sent_total = Arc::new(AtomicU64::new(0));
        let reader = {
            let (answered, sent_total, stop) = (answered.clone(), sent_total.clone(), stop.clone());
            thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 16];
                let mut bytes = 0usize;
                loop {
                    let done = stop.load(Ordering::Acquire);
                    let replies = (bytes / REPLY_BYTES) as u64;
                    answered.store(replies, Ordering::Release);
                    if done && replies >= sent_total.load(Ordering::Acquire) {
                        return;
                    }
                    match replies_from.read(&mut buf) {
                        Ok(0) => panic!("server closed the connection"),
                        Ok(n) => bytes += n,
                        // The timeout: look at `stop` again.
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            ) => {}
                        Err(e) => panic!("read replies: {e}"),
                    }
                }
            })
        };
        let started = Instant::now();
        let writer = {
            let stop = stop.clone();
            let mut socket = socket;
            thread::spawn(move || {
                let zipf = Zipf::new(KEYS as f64, exponent).expect("Zipf parameters");
                let mut rng = StdRng::seed_from_u64(exponent.to_bits());
                let mut counts = vec![0u64; KEYS];
                let mut buf = Vec::with_capacity(BATCH * 32);
                let mut sent = 0u64;
                while !stop.load(Ordering::Acquire) {
                    let due = started.elapsed().as_secs_f64() * rate as f64;
                    if (sent as f64) >= due
                        || sent - answered.load(Ordering::Acquire) > MAX_IN_FLIGHT
                    {
                        thread::sleep(Duration::from_micros(200));
                        continue;
                    }
                    buf.clear();
                    for _ in 0..BATCH {
                        // Zipf ranks are 1..=KEYS; key 0 is the most popular.
                        let key = zipf.sample(&mut rng) as usize - 1;
                        counts[key] += 1;
                        write!(buf, "*2\r\n$3\r\nGET\r\n$11\r\nkey:{key:07}\r\n").expect("format");
                    }
                    socket.write_all(&buf).expect("send GETs");
                    sent += BATCH as u64;
                    sent_total.store(sent, Ordering::Release);
                }
                Sent {
                    counts,
                    total: sent,
                    secs: started.elapsed().as_secs_f64(),
                }
            })
        };
        Stream {
            stop,
            writer,
            reader,
        }
    }

    /// Stops sending, waits for every reply, and returns what was sent.
    fn stop(self) -> Sent {
        self.stop.store(true, Ordering::Release);
        let result = self.writer.join().expect("writer");
        self.reader.join().expect("reader");
        result
    }
}
