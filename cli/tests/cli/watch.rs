//! `hotkey watch` against a real server: decoded events, and a crafted gap, a crafted restart
//! and a silenced heartbeat flagged.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::Instant;

use hotkey_protocol::Routes;
use hotkey_testkit::Server;
use redis::Value;

use crate::run::WAIT;

/// A running `hotkey watch`, its stdout as lines; killed on drop.
pub struct Watch {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Watch {
    pub fn start(args: &[&str]) -> Watch {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hotkey"))
            .arg("watch")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start hotkey watch");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Watch {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first line from now on that contains `text`.
    pub fn line_with(&mut self, text: &str) -> String {
        let deadline = hotkey_testkit::deadline(WAIT);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no line with {text:?} within {WAIT:?}; lines:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn routes(conn: &mut redis::Connection) -> Routes {
    let reply: Value = redis::cmd("HOTKEY.ROUTES").query(conn).expect("ROUTES");
    Routes::from_redis(&reply).expect("a ROUTES reply")
}

fn publish(conn: &mut redis::Connection, channel: &str, message: String) {
    let receivers: i64 = redis::cmd("PUBLISH")
        .arg(channel)
        .arg(message)
        .query(conn)
        .expect("PUBLISH");
    assert!(receivers >= 1, "hotkey watch is not subscribed");
}

#[test]
fn events_are_decoded_and_gaps_restarts_and_silence_flagged() {
    let server = Server::builder().module_arg("heartbeat-ms", "100").start();
    let mut conn = server.conn();
    let mut watch = Watch::start(&[&server.url()]);
    let addr = format!("127.0.0.1:{}", server.port);
    let following = watch.line_with("following SUBSCRIBE __hotkey__");
    assert!(following.contains(&addr), "{following}");
    assert!(following.contains("heartbeat 100 ms"), "{following}");

    let () = redis::cmd("HOTKEY.PIN")
        .arg(b"\xffpinned")
        .query(&mut conn)
        .expect("HOTKEY.PIN");
    let hot = watch.line_with(r#"hot db 0 "\xffpinned""#);
    assert!(hot.contains(&addr) && hot.contains("pinned"), "{hot}");
    watch.line_with("heartbeat  hot_keys 1");

    let now = routes(&mut conn);
    let skipped = now.seq + 1000;
    publish(
        &mut conn,
        &now.channel,
        format!(
            r#"{{"v":1,"seq":{skipped},"run_id":"{}","ts_ms":0,"event":"heartbeat","hot_keys":1,"replicas":0}}"#,
            now.run_id
        ),
    );
    let gap = watch.line_with("GAP");
    assert!(
        gap.contains("GAP (expected seq ") && gap.contains(&format!(", got {skipped})")),
        "{gap}"
    );

    let other_run = "0".repeat(40);
    publish(
        &mut conn,
        &now.channel,
        format!(
            r#"{{"v":1,"seq":1,"run_id":"{other_run}","ts_ms":0,"event":"heartbeat","hot_keys":0,"replicas":0}}"#
        ),
    );
    let restart = watch.line_with("RESTART");
    assert!(
        restart.contains(&format!("RESTART (new run_id {other_run})")),
        "{restart}"
    );

    // The module now beats once a minute; the tool still expects 100 ms.
    let () = redis::cmd("CONFIG")
        .arg(&["SET", "hotkey.heartbeat-ms", "60000"])
        .query(&mut conn)
        .expect("CONFIG SET");
    let missed = watch.line_with("MISSED HEARTBEAT");
    assert!(missed.contains(&addr), "{missed}");
    assert!(missed.contains("3× heartbeat 100 ms"), "{missed}");
}
