//! The upstream down or hung: clients get an error naming it within the configured timeouts,
//! never a hang, and the proxy serves again once the master is back.

use std::time::{Duration, Instant};

use hotkey_testkit::{Server, check, scaled, wait_until};

use crate::common::{Proxy, WAIT, master, signal};

const TIMEOUTS: [&str; 4] = ["--upstream-timeout", "500ms", "--connect-timeout", "500ms"];

/// The longest an error may take: a request's timeout plus a connect's, and room for a slow
/// machine.
fn prompt() -> Duration {
    scaled(Duration::from_millis(500 + 500 + 1000))
}

/// A client of the proxy that fails rather than hangs if the proxy never answers.
fn client(proxy: &Proxy) -> redis::Connection {
    let conn = proxy.conn();
    conn.set_read_timeout(Some(WAIT)).expect("read timeout");
    conn
}

/// `GET key` through `conn`, and how long the answer took.
fn timed_get(
    conn: &mut redis::Connection,
    key: &str,
) -> (redis::RedisResult<Option<String>>, Duration) {
    let start = Instant::now();
    let result = redis::cmd("GET").arg(key).query(conn);
    (result, start.elapsed())
}

/// Asserts that `result` is an error reply from the proxy (not a dropped connection) that
/// names the master, and came promptly.
fn assert_prompt_error(
    result: redis::RedisResult<Option<String>>,
    took: Duration,
    master_port: u16,
) -> String {
    let e = match result {
        Err(e) => e,
        Ok(v) => panic!("GET with the master gone answered {v:?}"),
    };
    let text = e.to_string();
    assert!(
        e.kind() != redis::ErrorKind::Io && !e.is_connection_dropped(),
        "the proxy dropped the client instead of answering: {text}"
    );
    assert!(
        text.contains(&format!("127.0.0.1:{master_port}")),
        "the error does not name the master 127.0.0.1:{master_port}: {text}"
    );
    assert!(took <= prompt(), "the error took {took:?}: {text}");
    text
}

#[test]
fn a_killed_master_gives_prompt_errors_then_the_proxy_recovers_on_its_restart() {
    let mut master = master(&[]);
    let port = master.port;
    let proxy = Proxy::start(&master, &TIMEOUTS);
    let mut conn = client(&proxy);
    let () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut conn)
        .expect("SET");
    master.kill();
    // The first command may find the dead connection, the next ones a refused reconnect.
    for _ in 0..3 {
        let (result, took) = timed_get(&mut conn, "k");
        assert_prompt_error(result, took, port);
    }
    let restarted = Server::builder()
        .module_arg("hot-threshold", "1000000000")
        .port(port)
        .start();
    let () = redis::cmd("SET")
        .arg("k")
        .arg("again")
        .query(&mut restarted.conn())
        .expect("SET on the restarted master");
    wait_until("GET works again through the same client", WAIT, || {
        let (result, took) = timed_get(&mut conn, "k");
        assert!(took <= prompt(), "a GET took {took:?}: {result:?}");
        check(
            result.as_ref().is_ok_and(|v| v.as_deref() == Some("again")),
            || result,
        )
    });
    let fresh: Option<String> = redis::cmd("GET")
        .arg("k")
        .query(&mut client(&proxy))
        .expect("a new client's GET");
    assert_eq!(fresh.as_deref(), Some("again"));
}

/// Sends SIGCONT on drop, so that a failing test never leaves a stopped server behind.
struct Continue(u32);

impl Drop for Continue {
    fn drop(&mut self) {
        signal(self.0, "CONT");
    }
}

#[test]
fn a_hung_master_gives_errors_within_the_upstream_timeout_and_recovers_on_sigcont() {
    let master = master(&[]);
    let proxy = Proxy::start(&master, &TIMEOUTS);
    let mut conn = client(&proxy);
    let () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut conn)
        .expect("SET");
    signal(master.pid(), "STOP");
    let stopped = Continue(master.pid());
    // The first request times out on its connection; the next ones find no master (its
    // reconnect times out) or time out themselves.
    for _ in 0..3 {
        let (result, took) = timed_get(&mut conn, "k");
        assert_prompt_error(result, took, master.port);
    }
    let mut other = client(&proxy);
    let (result, took) = timed_get(&mut other, "k");
    assert_prompt_error(result, took, master.port);
    drop(stopped);
    wait_until("GET works again after SIGCONT", WAIT, || {
        let (result, took) = timed_get(&mut conn, "k");
        assert!(took <= prompt(), "a GET took {took:?}: {result:?}");
        check(
            result.as_ref().is_ok_and(|v| v.as_deref() == Some("v")),
            || result,
        )
    });
}
