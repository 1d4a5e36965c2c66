//! Every key access is counted once, as a read or as a write, whatever way it arrives.

use std::collections::BTreeSet;

use hotkey_testkit::{Server, TopRow, entry, show, top_all};

/// The set of key names TOP lists (as lossy strings, for readable failures).
fn key_names(entries: &[TopRow]) -> BTreeSet<String> {
    entries
        .iter()
        .map(|e| String::from_utf8_lossy(&e.key).into_owned())
        .collect()
}

fn assert_read(entries: &[TopRow], key: &str) {
    let e = entry(entries, key);
    assert!(
        e.reads > 0.0 && e.writes == 0.0 && e.db == 0,
        "{key} should be read only (db 0): {e:?}\n{}",
        show(entries)
    );
}

fn assert_write(entries: &[TopRow], key: &str) {
    let e = entry(entries, key);
    assert!(
        e.writes > 0.0 && e.reads == 0.0 && e.db == 0,
        "{key} should be written only (db 0): {e:?}\n{}",
        show(entries)
    );
}

fn assert_only_keys(entries: &[TopRow], expected: &[&str]) {
    let expected: BTreeSet<String> = expected.iter().map(|k| k.to_string()).collect();
    assert_eq!(
        key_names(entries),
        expected,
        "TOP lists other keys than the ones accessed:\n{}",
        show(entries)
    );
}

/// Runs `args` as one command and ignores its reply (errors included: only the access matters).
fn run(conn: &mut redis::Connection, args: &[&str]) {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query::<redis::Value>(conn)
        .unwrap_or_else(|e| panic!("{}: {e}", args.join(" ")));
}

#[test]
fn plain_commands_are_classified_as_read_or_write() {
    let server = Server::start();
    let mut conn = server.conn();
    // Every key is fresh and sees exactly one kind of access.
    run(&mut conn, &["GET", "get:k"]);
    run(&mut conn, &["SET", "set:k", "value"]);
    run(&mut conn, &["MGET", "mget:1", "mget:2", "mget:3"]);
    run(&mut conn, &["MSET", "mset:1", "a", "mset:2", "b"]);
    run(&mut conn, &["DEL", "del:1", "del:2"]);
    run(&mut conn, &["INCR", "incr:k"]);
    run(&mut conn, &["ZADD", "zadd:k", "1", "member"]);
    run(&mut conn, &["ZRANGE", "zrange:k", "0", "-1"]);
    run(&mut conn, &["HSET", "hset:k", "field", "value"]);
    run(&mut conn, &["HGET", "hget:k", "field"]);
    run(&mut conn, &["EXPIRE", "expire:k", "100"]);

    let entries = top_all(&mut conn);
    for key in ["get:k", "mget:1", "mget:2", "mget:3", "zrange:k", "hget:k"] {
        assert_read(&entries, key);
    }
    for key in [
        "set:k", "mset:1", "mset:2", "del:1", "del:2", "incr:k", "zadd:k", "hset:k", "expire:k",
    ] {
        assert_write(&entries, key);
    }
    // Values, fields, scores and counts are not keys.
    assert_only_keys(
        &entries,
        &[
            "get:k", "set:k", "mget:1", "mget:2", "mget:3", "mset:1", "mset:2", "del:1", "del:2",
            "incr:k", "zadd:k", "zrange:k", "hset:k", "hget:k", "expire:k",
        ],
    );
}

#[test]
fn movable_key_commands_are_classified_per_key() {
    let server = Server::start();
    let mut conn = server.conn();
    // Commands whose key positions depend on their arguments.
    run(&mut conn, &["ZUNIONSTORE", "zu:dest", "2", "zu:a", "zu:b"]);
    run(&mut conn, &["ZUNION", "2", "zun:a", "zun:b"]);
    run(&mut conn, &["XREAD", "COUNT", "1", "STREAMS", "xr:s", "0"]);

    let entries = top_all(&mut conn);
    assert_write(&entries, "zu:dest");
    for key in ["zu:a", "zu:b", "zun:a", "zun:b", "xr:s"] {
        assert_read(&entries, key);
    }
    assert_only_keys(
        &entries,
        &["zu:dest", "zu:a", "zu:b", "zun:a", "zun:b", "xr:s"],
    );
}

/// The rates of two keys accessed the same number of times, moments apart, are about equal;
/// a ratio near 2 would mean one of them was counted twice.
fn assert_counted_once(entries: &[TopRow], key: &str, control: &str) {
    let (e, c) = (entry(entries, key), entry(entries, control));
    let ratio = e.total() / c.total();
    assert!(
        (0.8..=1.25).contains(&ratio),
        "{key} (one access) and {control} (one access) differ by {ratio}x: \
         counted more than once?\n{}",
        show(entries)
    );
}

#[test]
fn eval_inner_calls_are_counted_not_eval_itself() {
    // A long half-life keeps the rates of single accesses comparable.
    let server = Server::steady();
    let mut conn = server.conn();
    let script = "redis.call('GET', KEYS[1]); return redis.call('SET', KEYS[2], ARGV[1])";
    let _: redis::Value = redis::cmd("EVAL")
        .arg(script)
        .arg(2)
        .arg("eval:r")
        .arg("eval:w")
        .arg("value")
        .query(&mut conn)
        .expect("EVAL");
    // The same two accesses outside a script, as a yardstick.
    run(&mut conn, &["GET", "plain:r"]);
    run(&mut conn, &["SET", "plain:w", "value"]);

    let entries = top_all(&mut conn);
    assert_read(&entries, "eval:r");
    assert_write(&entries, "eval:w");
    assert_counted_once(&entries, "eval:r", "plain:r");
    assert_counted_once(&entries, "eval:w", "plain:w");
    // Neither the script text, nor numkeys, nor ARGV is a key.
    assert_only_keys(&entries, &["eval:r", "eval:w", "plain:r", "plain:w"]);
}

#[test]
fn multi_exec_commands_are_counted_not_exec_itself() {
    let server = Server::steady();
    let mut conn = server.conn();
    let _: redis::Value = redis::pipe()
        .atomic()
        .cmd("GET")
        .arg("multi:r")
        .cmd("SET")
        .arg("multi:w")
        .arg("value")
        .cmd("INCR")
        .arg("multi:i")
        .query(&mut conn)
        .expect("MULTI … EXEC");
    run(&mut conn, &["GET", "plain:r"]);
    run(&mut conn, &["SET", "plain:w", "value"]);

    let entries = top_all(&mut conn);
    assert_read(&entries, "multi:r");
    assert_write(&entries, "multi:w");
    assert_write(&entries, "multi:i");
    assert_counted_once(&entries, "multi:r", "plain:r");
    assert_counted_once(&entries, "multi:w", "plain:w");
    assert_only_keys(
        &entries,
        &["multi:r", "multi:w", "multi:i", "plain:r", "plain:w"],
    );
}
