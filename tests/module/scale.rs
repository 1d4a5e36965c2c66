//! A million distinct keys: memory stays at its bound and the true heavy hitters stay on top.

use std::io::{Read, Write};
use std::net::TcpStream;

use hotkey_testkit::{Server, info_number, show, top};

const CAPACITY: usize = 1024;
const COLD_KEYS: usize = 1_000_000;
const BATCH: usize = 10_000;
/// Every `HEAVY_EVERY`-th command goes to a heavy key.
const HEAVY_EVERY: usize = 20;
/// Which heavy key takes each heavy slot: heavy:0 gets 5 of 15 slots, heavy:4 gets 1.
const HEAVY_PATTERN: [usize; 15] = [0, 1, 2, 3, 4, 0, 1, 2, 3, 0, 1, 2, 0, 1, 0];

/// Appends `GET <key>` in RESP to `buf`.
fn push_get(buf: &mut Vec<u8>, key: &[u8]) {
    buf.extend_from_slice(format!("*2\r\n$3\r\nGET\r\n${}\r\n", key.len()).as_bytes());
    buf.extend_from_slice(key);
    buf.extend_from_slice(b"\r\n");
}

/// Sends a batch of `count` GETs of missing keys and reads their `count` nil replies.
/// A raw socket keeps the client's cost (a debug build) far below the server's.
fn send_batch(stream: &mut TcpStream, buf: &[u8], count: usize) {
    const NIL: &[u8] = b"$-1\r\n";
    stream.write_all(buf).expect("write a batch");
    let mut replies = vec![0u8; count * NIL.len()];
    stream
        .read_exact(&mut replies)
        .expect("read a batch of replies");
    assert!(
        replies.chunks(NIL.len()).all(|r| r == NIL),
        "a GET did not answer nil: {:?}",
        String::from_utf8_lossy(&replies[..replies.len().min(200)])
    );
}

#[test]
fn a_million_distinct_keys_keep_memory_bounded_and_heavy_hitters_on_top() {
    // A long half-life: the ranking must not depend on how fast this machine runs the loop.
    let server = Server::builder()
        .module_arg("capacity", &CAPACITY.to_string())
        .module_arg("half-life-ms", "600000")
        .start();
    let mut conn = server.conn();
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");

    let mut cold = 0usize;
    let mut heavy_slot = 0usize;
    let mut command = 0usize;
    let mut memory_at_100k = None;
    let mut buf = Vec::with_capacity(BATCH * 40);
    while cold < COLD_KEYS {
        buf.clear();
        let mut in_batch = 0;
        while in_batch < BATCH && cold < COLD_KEYS {
            command += 1;
            if command.is_multiple_of(HEAVY_EVERY) {
                let heavy = HEAVY_PATTERN[heavy_slot % HEAVY_PATTERN.len()];
                heavy_slot += 1;
                push_get(&mut buf, format!("heavy:{heavy}").as_bytes());
            } else {
                push_get(&mut buf, format!("cold:{cold}").as_bytes());
                cold += 1;
            }
            in_batch += 1;
        }
        send_batch(&mut stream, &buf, in_batch);
        if memory_at_100k.is_none() && cold >= 100_000 {
            assert_eq!(info_number(&mut conn, "tracked_keys"), CAPACITY as f64);
            memory_at_100k = Some(info_number(&mut conn, "memory_bytes"));
        }
    }

    assert_eq!(
        info_number(&mut conn, "keys_counted"),
        command as f64,
        "sample-max 1 counts every GET"
    );
    assert_eq!(
        info_number(&mut conn, "tracked_keys"),
        CAPACITY as f64,
        "the summary holds exactly its capacity"
    );
    let before = memory_at_100k.expect("measured after 100k keys");
    let after = info_number(&mut conn, "memory_bytes");
    assert!(before > 0.0, "memory_bytes is reported");
    assert!(
        (after - before).abs() <= before * 0.05,
        "memory_bytes grew with key churn: {before} after 100k keys, {after} after 1M"
    );

    let entries = top(&mut conn, &["COUNT", "10"]);
    let top5: Vec<String> = entries
        .iter()
        .take(5)
        .map(|e| String::from_utf8_lossy(&e.key).into_owned())
        .collect();
    assert_eq!(
        top5,
        ["heavy:0", "heavy:1", "heavy:2", "heavy:3", "heavy:4"],
        "the heavy keys, heaviest first, lead TOP:\n{}",
        show(&entries)
    );
    for e in entries.iter().take(5) {
        assert!(e.reads > 0.0 && e.writes == 0.0, "GETs are reads: {e:?}");
    }
}
