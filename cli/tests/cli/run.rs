//! Running the built `hotkey` binary, and waiting.

use std::net::TcpListener;
use std::process::{Command, Output};

use serde_json::Value;

/// How long a condition may take to hold (before `HOTKEY_TEST_SLOWDOWN` scales it).
pub use hotkey_testkit::WAIT;

/// `hotkey <args>`, to completion.
pub fn hotkey(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hotkey"))
        .args(args)
        .output()
        .expect("run the hotkey binary")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `hotkey <args> --json`, which must succeed, parsed.
pub fn json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = hotkey(&all);
    assert!(
        out.status.success(),
        "hotkey {all:?} failed: {}\n{}",
        stderr(&out),
        stdout(&out)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("hotkey {all:?} printed no JSON ({e}): {}", stdout(&out)))
}

/// The entry of `key` in a `top --json` reply.
pub fn key_entry<'a>(top: &'a Value, key: &str) -> &'a Value {
    top["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["key"] == key))
        .unwrap_or_else(|| panic!("{key} is not in {top}"))
}

/// Polls `f` until it returns Some, panicking with `what` after `WAIT` (scaled).
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    hotkey_testkit::wait_until(what, WAIT, || f().ok_or("nothing yet"))
}

/// A loopback port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

/// `count` GETs of `key`, pipelined.
pub fn reads(conn: &mut redis::Connection, key: &[u8], count: usize) {
    let mut pipe = redis::pipe();
    for _ in 0..count {
        pipe.cmd("GET").arg(key).ignore();
    }
    let () = pipe.query(conn).expect("GETs");
}

/// `count` SETs of `key`, pipelined.
pub fn writes(conn: &mut redis::Connection, key: &[u8], count: usize) {
    let mut pipe = redis::pipe();
    for i in 0..count {
        pipe.cmd("SET").arg(key).arg(i).ignore();
    }
    let () = pipe.query(conn).expect("SETs");
}
