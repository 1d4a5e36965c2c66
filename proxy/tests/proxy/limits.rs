//! The limits a client may not break (request size, unread replies, connections, idle time):
//! the one that breaks one is told and disconnected, and nobody else notices.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use hotkey_testkit::{check, wait_until};

use crate::common::{Proxy, WAIT, master};
use crate::raw::{Raw, encode};

/// Another client of the same proxy still gets its answers.
fn others_go_on(other: &mut redis::Connection) {
    let () = redis::cmd("SET")
        .arg(b"other")
        .arg(b"fine")
        .query(other)
        .expect("SET");
    let value: Vec<u8> = redis::cmd("GET").arg(b"other").query(other).expect("GET");
    assert_eq!(value, b"fine", "another client goes on");
}

#[test]
fn an_inline_command_of_a_mebibyte_without_a_line_end_is_refused_and_disconnected() {
    let master = master(&[]);
    let proxy = Proxy::start(&master, &[]);
    let mut other = proxy.conn();
    let mut stream = TcpStream::connect(("127.0.0.1", proxy.port)).expect("connect");
    stream.set_read_timeout(Some(WAIT)).expect("read timeout");
    let mut sending = stream.try_clone().expect("clone");
    // The proxy closes the connection part-way through: the rest of the write may fail.
    let writer = std::thread::spawn(move || {
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..16 {
            if sending.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    assert_eq!(
        String::from_utf8_lossy(&reply),
        "-ERR Protocol error: too big inline request\r\n"
    );
    writer.join().expect("writer");
    others_go_on(&mut other);
    assert!(
        proxy
            .metric("hotkey_proxy_protocol_errors_total")
            .unwrap_or(0.0)
            >= 1.0
    );
}

/// `VmRSS` of process `pid`, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB")?.trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status:\n{status}"))
}

#[test]
fn a_client_that_stops_reading_is_disconnected_at_its_output_limit_and_memory_stays_bounded() {
    const MIB: usize = 1024 * 1024;
    const GETS: usize = 256;
    let master = master(&[]);
    let proxy = Proxy::start(&master, &["--client-output-limit", "4mb"]);
    let mut other = proxy.conn();
    let () = redis::cmd("SET")
        .arg(b"big")
        .arg(vec![b'v'; MIB])
        .query(&mut other)
        .expect("SET");
    let before = rss(proxy.pid());
    // 256 MiB of replies asked for, none read.
    let mut stuck = TcpStream::connect(("127.0.0.1", proxy.port)).expect("connect");
    let gets = encode(&[b"GET", b"big"]).repeat(GETS);
    stuck.write_all(&gets).expect("pipeline");
    let mut peak = before;
    wait_until(
        "the client is disconnected at its output limit",
        WAIT,
        || {
            peak = peak.max(rss(proxy.pid()));
            let disconnects =
                proxy.metric("hotkey_proxy_client_disconnects_total{reason=\"output-limit\"}");
            check(disconnects == Some(1.0), || disconnects)
        },
    );
    peak = peak.max(rss(proxy.pid()));
    // The replies in the kernel's buffers, and the proxy's 4 MiB, then the end.
    let mut read = 0;
    let mut chunk = vec![0u8; MIB];
    stuck.set_read_timeout(Some(WAIT)).expect("read timeout");
    loop {
        match stuck.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n,
        }
    }
    assert!(
        read < GETS * MIB / 2,
        "the client got {read} bytes of replies: it was not cut off"
    );
    others_go_on(&mut other);
    // Generous: the replies asked for weigh 256 MiB; the limit allows 4 MiB (plus what the
    // upstream connection had read when the client was cut off).
    let bound = before + 96 * MIB as u64;
    assert!(
        peak < bound,
        "the proxy's RSS reached {peak} bytes (from {before}), over {bound}"
    );
}

/// The first line a new connection gets for a `PING` (or the words it was closed with).
fn first_line(port: u16) -> Vec<u8> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(WAIT)).expect("read timeout");
    let _ = stream.write_all(&encode(&[b"PING"]));
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => line.push(byte[0]),
            _ => break,
        }
    }
    line
}

#[test]
fn a_client_over_max_clients_is_refused_until_one_leaves() {
    let master = master(&[]);
    let proxy = Proxy::start(&master, &["--max-clients", "3"]);
    let mut clients: Vec<Raw> = (0..3)
        .map(|_| {
            let mut raw = Raw::connect(proxy.port);
            assert_eq!(raw.call(&[b"PING"]), b"+PONG\r\n");
            raw
        })
        .collect();
    let mut fourth = Raw::connect(proxy.port);
    assert_eq!(
        String::from_utf8_lossy(&fourth.rest()),
        "-ERR max number of clients reached\r\n",
        "the fourth client is refused and closed"
    );
    for raw in &mut clients {
        assert_eq!(raw.call(&[b"PING"]), b"+PONG\r\n", "the three go on");
    }
    drop(clients.pop());
    wait_until("a new client is accepted once one left", WAIT, || {
        let line = first_line(proxy.port);
        check(line == b"+PONG\r\n", || {
            String::from_utf8_lossy(&line).into_owned()
        })
    });
    assert!(
        proxy
            .metric("hotkey_proxy_clients_rejected_total")
            .unwrap_or(0.0)
            >= 1.0
    );
}

#[test]
fn an_idle_client_is_closed_but_a_blocked_or_subscribed_one_is_not() {
    let master = master(&[]);
    let proxy = Proxy::start(&master, &["--timeout", "1s"]);
    let mut subscribed = Raw::connect(proxy.port);
    subscribed.call(&[b"SUBSCRIBE", b"news"]);
    let mut blocked = Raw::connect(proxy.port);
    blocked.send(&encode(&[b"BLPOP", b"empty", b"3"]));
    let start = Instant::now();
    let mut idle = Raw::connect(proxy.port);
    assert_eq!(idle.call(&[b"PING"]), b"+PONG\r\n");
    assert_eq!(idle.rest(), b"", "the idle client is closed without a word");
    let idle_for = start.elapsed();
    assert!(
        idle_for >= Duration::from_millis(900),
        "closed after {idle_for:?}, before its timeout"
    );
    // The BLPOP times out on the server after 3 s: its client was kept through the proxy's
    // 1 s timeout.
    assert_eq!(blocked.frame(), b"*-1\r\n");
    assert!(start.elapsed() >= Duration::from_secs(3));
    let () = redis::cmd("PUBLISH")
        .arg("news")
        .arg("still here")
        .query(&mut master.conn())
        .expect("PUBLISH");
    assert_eq!(
        subscribed.frame(),
        encode(&[b"message", b"news", b"still here"]),
        "the subscriber is still connected"
    );
    // Counted once the client's task has ended, just after its socket closed.
    wait_until("the idle close is counted", WAIT, || {
        let idle = proxy.metric("hotkey_proxy_client_disconnects_total{reason=\"idle\"}");
        check(idle == Some(1.0), || idle)
    });
}
