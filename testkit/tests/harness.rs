//! The harness's own tests against real servers: stopping, killing and restarting a server on
//! its port, starting from the repository's config file, and a sentinel failover.

use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use hotkey_testkit::{Sentinel, Server, info_hotkey};
use redis::Connection;

/// The repository's example config; it loads the module by a relative path.
const EXAMPLE_CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../redis.conf.example");

/// How long a sentinel may take to fail a master over (down after 1 s, then an election and a
/// promotion of a few seconds).
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(30);

/// True while a process with this id exists (`kill -0`).
fn alive(pid: u32) -> bool {
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// True when the module answers on this connection.
fn has_module(conn: &mut Connection) -> bool {
    let modules: Vec<redis::Value> = redis::cmd("MODULE")
        .arg("LIST")
        .query(conn)
        .expect("MODULE LIST");
    format!("{modules:?}").contains("hotkey")
}

#[test]
fn kill_then_restart_on_the_same_port() {
    let mut server = Server::start();
    let port = server.port;
    let pid = server.pid();
    let mut conn = server.conn();
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut conn)
        .expect("SET");
    assert!(alive(pid), "pid {pid} is not running");

    server.kill();
    assert!(!alive(pid), "pid {pid} survived SIGKILL");
    assert!(!server.is_up());
    server.kill(); // a no-op once it has exited

    let mut again = Server::builder().port(port).start();
    assert_eq!(again.port, port);
    assert_ne!(again.pid(), pid);
    assert!(again.is_up());
    let mut conn = again.conn();
    assert!(has_module(&mut conn), "{}", again.log_tail());
    // A new directory and no persistence: nothing survived the crash.
    let value: Option<String> = redis::cmd("GET").arg("k").query(&mut conn).expect("GET");
    assert_eq!(value, None);
    drop(server); // the killed guard removes its directory and leaves the port alone
    assert!(again.is_up());
}

#[test]
fn stop_is_a_clean_shutdown() {
    let mut server = Server::start();
    let pid = server.pid();
    server.stop();
    assert!(!alive(pid), "pid {pid} survived SIGTERM");
    assert!(!server.is_up());
    let log = server.log_tail();
    assert!(
        log.contains("ready to exit, bye bye"),
        "no clean shutdown in the log:\n{log}"
    );
}

#[test]
fn config_file_loads_the_module() {
    let text = std::fs::read_to_string(EXAMPLE_CONFIG).expect("read redis.conf.example");
    let relative = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("loadmodule "))
        .map(|rest| {
            rest.split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .expect("redis.conf.example has a loadmodule line");

    let server = Server::builder()
        .config(EXAMPLE_CONFIG)
        .module_at(&relative)
        .start();
    // The harness's arguments follow the file's, so its port (7379) is overridden.
    assert_ne!(server.port, 7379);
    let mut conn = server.conn();
    assert!(has_module(&mut conn), "{}", server.log_tail());
    let info = info_hotkey(&mut conn);
    assert_eq!(
        info.get("enabled").map(String::as_str),
        Some("1"),
        "{info:?}"
    );
}

#[test]
fn sentinel_fails_over_to_the_replica() {
    let mut master = Server::start();
    let replica = Server::builder().replica_of(&master).start();
    assert_eq!(master.role(), "master");
    assert_eq!(replica.role(), "slave");
    assert_eq!(master.replicas_connected(), 1);

    let sentinel = Sentinel::start(&master, "hk");
    assert_eq!(
        sentinel.master_addr("hk"),
        ("127.0.0.1".to_string(), master.port)
    );
    sentinel.wait_for_replicas(1);
    let mut conn = sentinel.conn();
    let pong: String = redis::cmd("PING").query(&mut conn).expect("PING");
    assert_eq!(pong, "PONG");
    assert!(sentinel.url().ends_with(&format!(":{}/", sentinel.port)));

    master.kill();
    let deadline = Instant::now() + FAILOVER_TIMEOUT;
    loop {
        let (_, port) = sentinel.master_addr("hk");
        if port == replica.port && replica.role() == "master" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no failover to port {} within {FAILOVER_TIMEOUT:?}: the sentinel says {port}, \
             the replica is a {}\n--- sentinel log ---\n{}",
            replica.port,
            replica.role(),
            sentinel.log_tail()
        );
        thread::sleep(Duration::from_millis(100));
    }
}
