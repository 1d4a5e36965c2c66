//! `hotkey watch`: every node's event stream, one decoded line per event, with the checks a
//! client makes: a jump in `seq` (messages lost), a new `run_id` (the module restarted), and
//! silence longer than three heartbeats (the stream is broken).

use std::collections::HashMap;
use std::sync::mpsc::{self, Sender};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hotkey_protocol::sequence::{Sequence, StreamPosition, Streams};
use hotkey_protocol::{Event, KeyEvent, Message, Routes};
use redis::Value;

use crate::Discovery;
use crate::discover::{Node, Role, Seeds, Topology};
use crate::node::query;
use crate::render::escape;

/// The flag of a jump in `seq`.
pub const GAP: &str = "GAP";
/// The flag of a new `run_id` on a stream.
pub const RESTART: &str = "RESTART";
/// The flag of a stream silent for more than three heartbeats.
pub const MISSED_HEARTBEAT: &str = "MISSED HEARTBEAT";
/// A message on the channel that is not an event (followed by why).
pub const UNDECODABLE: &str = "undecodable message";
/// Discovery found no node to follow.
pub const NO_NODES: &str = "no node to watch";

/// The heartbeat period assumed when `CONFIG GET hotkey.heartbeat-ms` is refused.
const DEFAULT_HEARTBEAT: Duration = Duration::from_millis(1000);
/// How long to wait before connecting again to a node that failed.
const RETRY: Duration = Duration::from_secs(1);

pub fn run(seeds: &Seeds, how: &Discovery) -> Result<bool, String> {
    let topology = Topology::discover(seeds, how);
    for error in &topology.errors {
        eprintln!("{error}");
    }
    // In a cluster each master publishes its shard's events; its replicas publish nothing
    // of their own, so following the masters sees every event once.
    let nodes: Vec<Node> = topology
        .nodes
        .into_iter()
        .filter(|n| !how.cluster || n.role == Role::Master)
        .collect();
    if nodes.is_empty() {
        return Err(NO_NODES.to_string());
    }
    let (lines, printed) = mpsc::channel::<String>();
    for node in nodes {
        let lines = lines.clone();
        thread::spawn(move || follow(&node, &lines));
    }
    drop(lines);
    for line in printed {
        println!("{line}");
    }
    Ok(true)
}

/// Follows one node for as long as the tool runs: connect, learn the channel, subscribe, read;
/// after an error, say so once and connect again.
fn follow(node: &Node, lines: &Sender<String>) {
    let mut last_error: Option<String> = None;
    loop {
        let error = match subscribe_and_read(node, lines) {
            Ok(()) => return,
            Err(e) => e,
        };
        if last_error.as_ref() != Some(&error) {
            let sent = lines.send(format!("{}  {error}", now_clock()));
            if sent.is_err() {
                return;
            }
            last_error = Some(error);
        }
        thread::sleep(RETRY);
    }
}

/// `Ok` when the printing side is gone; `Err` names the node and the problem.
fn subscribe_and_read(node: &Node, lines: &Sender<String>) -> Result<(), String> {
    let endpoint = &node.endpoint;
    let mut conn = endpoint.connect()?;
    let heartbeat = heartbeat(node, &mut conn);
    let reply: Value = query(endpoint, &mut conn, &redis::cmd("HOTKEY.ROUTES"))?;
    let routes = Routes::from_redis(&reply).map_err(|e| format!("{}: {e}", endpoint.addr))?;
    let verb = if routes.sharded {
        "SSUBSCRIBE"
    } else {
        "SUBSCRIBE"
    };
    let subscribe = redis::cmd(verb).arg(&routes.channel).get_packed_command();
    conn.send_packed_command(&subscribe)
        .and_then(|()| conn.recv_response())
        .map_err(|e| endpoint.problem(&e))?;
    conn.set_read_timeout(Some(heartbeat))
        .map_err(|e| endpoint.problem(&e))?;
    let started = format!(
        "{}  {}  following {verb} {} (seq {}, run_id {}, heartbeat {} ms)",
        now_clock(),
        endpoint.addr,
        routes.channel,
        routes.seq,
        routes.run_id,
        heartbeat.as_millis()
    );
    if lines.send(started).is_err() {
        return Ok(());
    }
    let node_id = routes.cluster.map(|c| c.node_id);
    let mut check = StreamCheck::new(heartbeat, Some((node_id, routes.run_id, routes.seq)));
    loop {
        let line = match conn.recv_response() {
            Ok(Value::Array(parts)) => match parts.as_slice() {
                [Value::BulkString(kind), _, Value::BulkString(payload)]
                    if kind == b"message" || kind == b"smessage" =>
                {
                    Some(decoded_line(&endpoint.addr, payload, &mut check))
                }
                _ => None,
            },
            Ok(_) => None,
            Err(e) if e.is_timeout() => check
                .silence(Instant::now())
                .map(|flag| format!("{}  {}  {flag}", now_clock(), endpoint.addr)),
            Err(e) => return Err(format!("{}: connection lost: {}", endpoint.addr, e)),
        };
        if let Some(line) = line
            && lines.send(line).is_err()
        {
            return Ok(());
        }
    }
}

/// `CONFIG GET hotkey.heartbeat-ms`, or one second if refused.
fn heartbeat(node: &Node, conn: &mut redis::Connection) -> Duration {
    let reply: Result<HashMap<String, String>, String> = query(
        &node.endpoint,
        conn,
        redis::cmd("CONFIG").arg("GET").arg("hotkey.heartbeat-ms"),
    );
    reply
        .ok()
        .and_then(|c| c.get("hotkey.heartbeat-ms")?.parse().ok())
        .map_or(DEFAULT_HEARTBEAT, Duration::from_millis)
}

fn decoded_line(addr: &str, payload: &[u8], check: &mut StreamCheck) -> String {
    let message = match Message::from_json(payload) {
        Ok(m) => m,
        Err(e) => {
            return format!(
                "{}  {addr}  {UNDECODABLE}: {e}: {}",
                now_clock(),
                escape(payload)
            );
        }
    };
    let flags = check.message(&message, Instant::now());
    let mut line = format!(
        "{}  {addr}  seq {}  {}",
        clock_ms(message.ts_ms),
        message.seq,
        describe(&message.event)
    );
    if let Some(node_id) = &message.node_id {
        let short: String = node_id.chars().take(8).collect();
        line.push_str(&format!("  node {short}"));
    }
    for flag in flags {
        line.push_str("  ");
        line.push_str(&flag);
    }
    line
}

/// The event's name and its fields.
fn describe(event: &Event) -> String {
    let key = |name: &str, k: &KeyEvent| {
        let key = k.key.bytes().unwrap_or_default();
        let mut text = format!(
            "{name} db {} {}  reads {:.2}/s  writes {:.2}/s",
            k.db,
            escape(&key),
            k.reads_per_sec,
            k.writes_per_sec
        );
        if let Some(a) = k.advice {
            text.push_str(&format!(
                "  reads_to {}  cache {} ms",
                a.reads_to.as_str(),
                a.cache_ttl_ms
            ));
            for (on, word) in [
                (a.read_hot, "read_hot"),
                (a.write_hot, "write_hot"),
                (a.pinned, "pinned"),
            ] {
                if on {
                    text.push_str("  ");
                    text.push_str(word);
                }
            }
        }
        text
    };
    match event {
        Event::Hot(k) => key("hot", k),
        Event::Cold(k) => key("cold", k),
        Event::Update(k) => key("update", k),
        Event::Heartbeat(h) => format!(
            "heartbeat  hot_keys {}  replicas {}",
            h.hot_keys, h.replicas
        ),
        Event::Replicas(r) => {
            let list: Vec<String> = r
                .replicas
                .iter()
                .map(|r| format!("{}:{} (lag {} ms)", r.host, r.port, r.lag_ms))
                .collect();
            format!("replicas  [{}]", list.join(", "))
        }
        _ => "(an event of a later format version)".to_string(),
    }
}

/// The checks on one subscription: `seq` per run, new runs, and silence. A run is a `run_id`
/// of a publishing node (`node_id`, in a cluster): one subscription may carry the streams of
/// several nodes, and a new run of one node is its restart.
pub struct StreamCheck {
    heartbeat: Duration,
    streams: Streams,
    last_message: Instant,
    silence_flagged: bool,
}

impl StreamCheck {
    /// `snapshot`: the node id (in a cluster), run id and seq of the `HOTKEY.ROUTES` read
    /// after subscribing.
    pub fn new(
        heartbeat: Duration,
        snapshot: Option<(Option<String>, String, u64)>,
    ) -> StreamCheck {
        let mut streams = Streams::default();
        if let Some((node, run, seq)) = snapshot {
            streams.set(node.as_deref(), StreamPosition::new(&run, seq));
        }
        StreamCheck {
            heartbeat,
            streams,
            last_message: Instant::now(),
            silence_flagged: false,
        }
    }

    /// The flags of a message received at `now`.
    pub fn message(&mut self, m: &Message, now: Instant) -> Vec<String> {
        self.last_message = now;
        self.silence_flagged = false;
        // A message at or below the snapshot's seq was published before it: no flag.
        let flag = match self.streams.advance(m.node_id.as_deref(), &m.run_id, m.seq) {
            Some(Sequence::Gap { expected, got }) => {
                Some(format!("{GAP} (expected seq {expected}, got {got})"))
            }
            Some(Sequence::Restart) => Some(format!("{RESTART} (new run_id {})", m.run_id)),
            _ => None,
        };
        flag.into_iter().collect()
    }

    /// The flag for silence at `now`, once per silence.
    pub fn silence(&mut self, now: Instant) -> Option<String> {
        let silent = now.duration_since(self.last_message);
        if self.silence_flagged || silent <= self.heartbeat * 3 {
            return None;
        }
        self.silence_flagged = true;
        Some(format!(
            "{MISSED_HEARTBEAT} (no message for {:.1} s > 3× heartbeat {} ms)",
            silent.as_secs_f64(),
            self.heartbeat.as_millis()
        ))
    }
}

/// `HH:MM:SS.mmm` UTC of a timestamp in milliseconds.
fn clock_ms(ts_ms: u64) -> String {
    let ms = ts_ms % 86_400_000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

fn now_clock() -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    clock_ms(u64::try_from(ms).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotkey_protocol::Heartbeat;

    fn heartbeat(run_id: &str, seq: u64) -> Message {
        from_node(None, run_id, seq)
    }

    fn from_node(node_id: Option<&str>, run_id: &str, seq: u64) -> Message {
        let mut message = Message::new(seq, run_id, 0, Event::Heartbeat(Heartbeat::new(0, 0)));
        message.node_id = node_id.map(String::from);
        message
    }

    #[test]
    fn a_jump_in_seq_is_a_gap_and_a_new_run_id_a_restart() {
        let t = Instant::now();
        let mut check = StreamCheck::new(Duration::from_secs(1), Some((None, "a".into(), 5)));
        assert!(
            check.message(&heartbeat("a", 5), t).is_empty(),
            "before the snapshot"
        );
        assert!(check.message(&heartbeat("a", 6), t).is_empty());
        assert_eq!(
            check.message(&heartbeat("a", 9), t),
            vec!["GAP (expected seq 7, got 9)"]
        );
        assert_eq!(
            check.message(&heartbeat("b", 1), t),
            vec!["RESTART (new run_id b)"]
        );
        assert!(check.message(&heartbeat("b", 2), t).is_empty());
    }

    #[test]
    fn each_cluster_node_is_a_stream_of_its_own() {
        let t = Instant::now();
        let mut check = StreamCheck::new(
            Duration::from_secs(1),
            Some((Some("n1".into()), "a".into(), 5)),
        );
        assert!(check.message(&from_node(Some("n2"), "b", 40), t).is_empty());
        assert!(check.message(&from_node(Some("n1"), "a", 6), t).is_empty());
        assert!(check.message(&from_node(Some("n2"), "b", 41), t).is_empty());
        assert_eq!(
            check.message(&from_node(Some("n2"), "c", 1), t),
            vec!["RESTART (new run_id c)"]
        );
    }

    #[test]
    fn silence_past_three_heartbeats_is_flagged_once() {
        let t = Instant::now();
        let mut check = StreamCheck::new(Duration::from_millis(100), None);
        check.message(&heartbeat("a", 1), t);
        assert_eq!(check.silence(t + Duration::from_millis(250)), None);
        let flag = check.silence(t + Duration::from_millis(400));
        assert!(flag.is_some_and(|f| f.starts_with(MISSED_HEARTBEAT)));
        assert_eq!(check.silence(t + Duration::from_millis(900)), None);
        check.message(&heartbeat("a", 2), t + Duration::from_millis(950));
        assert!(check.silence(t + Duration::from_millis(1300)).is_some());
    }

    #[test]
    fn clock_shows_milliseconds() {
        assert_eq!(clock_ms(86_400_000 + 3_723_004), "01:02:03.004");
    }
}
