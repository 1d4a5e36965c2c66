//! Commands that hold connection state work through the proxy as on a server.

use std::time::Duration;

use redis::Value;

use hotkey_testkit::check;

use crate::common::{Proxy, master};

#[test]
fn select_gives_the_client_its_database() {
    let master = master(&[]);
    let proxy = Proxy::start(&master, &[]);
    let mut conn = proxy.conn();
    let () = redis::cmd("SELECT")
        .arg(0)
        .query(&mut conn)
        .expect("SELECT 0");
    let () = redis::cmd("SELECT")
        .arg(3)
        .query(&mut conn)
        .expect("SELECT 3");
    let () = redis::cmd("SET")
        .arg("in3")
        .arg("x")
        .query(&mut conn)
        .expect("SET");
    let in3: Option<String> = redis::cmd("GET")
        .arg("in3")
        .query(&mut master.conn_db(3))
        .expect("GET");
    assert_eq!(in3.as_deref(), Some("x"));
    let in0: Option<String> = redis::cmd("GET")
        .arg("in3")
        .query(&mut master.conn())
        .expect("GET");
    assert_eq!(in0, None);
    // Another client is still on database 0.
    let other: Option<String> = redis::cmd("GET")
        .arg("in3")
        .query(&mut proxy.conn())
        .expect("GET");
    assert_eq!(other, None);
    let e = redis::cmd("SELECT")
        .arg("x")
        .query::<()>(&mut proxy.conn())
        .expect_err("bad db");
    assert!(e.to_string().contains("not an integer"), "{e}");
}

#[test]
fn transactions_and_watch_behave_as_on_the_server() {
    let master = master(&[]);
    let proxy = Proxy::start(&master, &[]);
    let mut conn = proxy.conn();
    let (a, b): (i64, i64) = redis::pipe()
        .atomic()
        .cmd("INCR")
        .arg("t")
        .cmd("INCR")
        .arg("t")
        .query(&mut conn)
        .expect("MULTI/EXEC");
    assert_eq!((a, b), (1, 2));
    // WATCH: a write by another client between WATCH and EXEC aborts the transaction.
    let () = redis::cmd("WATCH")
        .arg("w")
        .query(&mut conn)
        .expect("WATCH");
    let () = redis::cmd("SET")
        .arg("w")
        .arg("other")
        .query(&mut proxy.conn())
        .expect("SET");
    let () = redis::cmd("MULTI").query(&mut conn).expect("MULTI");
    let queued: String = redis::cmd("SET")
        .arg("w")
        .arg("mine")
        .query(&mut conn)
        .expect("SET");
    assert_eq!(queued, "QUEUED");
    let exec: Value = redis::cmd("EXEC").query(&mut conn).expect("EXEC");
    assert_eq!(exec, Value::Nil, "the watched key changed: EXEC aborts");
    let e = redis::cmd("EXEC")
        .query::<Value>(&mut proxy.conn())
        .expect_err("EXEC without MULTI");
    assert!(e.to_string().contains("EXEC without MULTI"), "{e}");
}

#[test]
fn pub_sub_messages_reach_subscribers_through_the_proxy() {
    let master = master(&[]);
    let proxy = Proxy::start(&master, &[]);
    let client = redis::Client::open(proxy.url()).expect("url");
    let mut sub_conn = client.get_connection().expect("connect");
    let mut pubsub = sub_conn.as_pubsub();
    pubsub.subscribe("news").expect("SUBSCRIBE");
    pubsub.psubscribe("n*").expect("PSUBSCRIBE");
    pubsub
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let receivers: i64 = redis::cmd("PUBLISH")
        .arg("news")
        .arg("hello")
        .query(&mut proxy.conn())
        .expect("PUBLISH");
    assert_eq!(receivers, 2);
    let mut got = Vec::new();
    for _ in 0..2 {
        let msg = pubsub.get_message().expect("a message");
        got.push((
            msg.get_channel_name().to_string(),
            msg.get_payload::<String>().expect("payload"),
        ));
    }
    got.sort();
    assert_eq!(
        got,
        vec![
            ("news".to_string(), "hello".to_string()),
            ("news".to_string(), "hello".to_string())
        ]
    );
}

#[test]
fn blocking_commands_wait_on_a_connection_of_their_own() {
    let master = master(&[]);
    // On one thread, where a blocked client holding it would hold up everyone.
    let proxy = Proxy::start(&master, &["--threads", "1"]);
    let url = proxy.url();
    let waiter = std::thread::spawn(move || {
        let mut conn = redis::Client::open(url)
            .expect("url")
            .get_connection()
            .expect("connect");
        redis::cmd("BLPOP")
            .arg("queue")
            .arg(10)
            .query::<(String, String)>(&mut conn)
    });
    // Other clients are not held up by the blocked one.
    let mut other = proxy.conn();
    hotkey_testkit::wait_until(
        "the BLPOP blocks on the server",
        crate::common::WAIT,
        || {
            let info: String = redis::cmd("INFO")
                .arg("clients")
                .query(&mut master.conn())
                .expect("INFO");
            check(info.contains("blocked_clients:1"), || info)
        },
    );
    let pong: String = redis::cmd("PING").query(&mut other).expect("PING");
    assert_eq!(pong, "PONG");
    let _: i64 = redis::cmd("RPUSH")
        .arg("queue")
        .arg("job")
        .query(&mut other)
        .expect("RPUSH");
    let popped = waiter.join().expect("thread").expect("BLPOP");
    assert_eq!(popped, ("queue".to_string(), "job".to_string()));
    // A timeout's reply is the server's (a null array under RESP2).
    let timed_out: Value = redis::cmd("BLPOP")
        .arg("empty")
        .arg("0.05")
        .query(&mut other)
        .expect("BLPOP");
    assert_eq!(timed_out, Value::Nil);
}

#[test]
fn hello_switches_the_clients_protocol_and_client_names_are_the_clients_own() {
    let master = master(&[]);
    let proxy = Proxy::start(&master, &[]);
    let mut conn = proxy.conn_resp3();
    let hash: Value = {
        let () = redis::cmd("HSET")
            .arg("h")
            .arg("f")
            .arg("v")
            .query(&mut conn)
            .map(|_: i64| ())
            .expect("HSET");
        redis::cmd("HGETALL")
            .arg("h")
            .query(&mut conn)
            .expect("HGETALL")
    };
    assert!(matches!(hash, Value::Map(_)), "RESP3 gives a map: {hash:?}");
    let mut resp2 = proxy.conn();
    let flat: Value = redis::cmd("HGETALL")
        .arg("h")
        .query(&mut resp2)
        .expect("HGETALL");
    assert!(
        matches!(flat, Value::Array(_)),
        "RESP2 gives an array: {flat:?}"
    );

    let () = redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg("worker-1")
        .query(&mut resp2)
        .expect("SETNAME");
    let name: Option<String> = redis::cmd("CLIENT")
        .arg("GETNAME")
        .query(&mut resp2)
        .expect("GETNAME");
    assert_eq!(name.as_deref(), Some("worker-1"));
    let other: Option<String> = redis::cmd("CLIENT")
        .arg("GETNAME")
        .query(&mut proxy.conn())
        .expect("GETNAME");
    assert_eq!(other, None, "names do not leak between clients");
    let e = redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg("a b")
        .query::<()>(&mut resp2)
        .expect_err("bad name");
    assert!(e.to_string().contains("cannot contain spaces"), "{e}");
}

#[test]
fn a_clients_own_tracking_gets_its_invalidations() {
    let master = master(&[]);
    let proxy = Proxy::start(&master, &[]);
    let (tx, rx) = std::sync::mpsc::channel();
    let client = redis::Client::open(format!("{}?protocol=resp3", proxy.url())).expect("url");
    let mut conn = client.get_connection().expect("connect");
    conn.set_push_sender(tx);
    let () = redis::cmd("CLIENT")
        .arg("TRACKING")
        .arg("ON")
        .query(&mut conn)
        .expect("TRACKING");
    let () = redis::cmd("SET")
        .arg("tracked")
        .arg("1")
        .query(&mut proxy.conn())
        .expect("SET");
    let _: String = redis::cmd("GET")
        .arg("tracked")
        .query(&mut conn)
        .expect("GET");
    let () = redis::cmd("SET")
        .arg("tracked")
        .arg("2")
        .query(&mut proxy.conn())
        .expect("SET");
    // The push arrives with the next reply at the latest.
    let _: String = redis::cmd("PING").query(&mut conn).expect("PING");
    let push = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("an invalidation push");
    assert_eq!(push.kind, redis::PushKind::Invalidate, "{push:?}");
}
