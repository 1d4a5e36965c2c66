//! Where commands go through the proxy, and that the replies are the server's.

use hotkey_testkit::{check, wait_until};
use redis::Value;

use crate::common::{Proxy, WAIT, calls, master, pin, replicated};

#[test]
fn cold_commands_go_to_the_master_with_the_servers_replies() {
    let master = master(&[]);
    let proxy = Proxy::start(&master, &[]);
    for mut conn in [proxy.conn(), proxy.conn_resp3()] {
        let () = redis::cmd("SET")
            .arg(b"k\x00\xff")
            .arg(b"v\r\n")
            .query(&mut conn)
            .expect("SET");
        let v: Vec<u8> = redis::cmd("GET")
            .arg(b"k\x00\xff")
            .query(&mut conn)
            .expect("GET");
        assert_eq!(v, b"v\r\n");
        let n: i64 = redis::cmd("INCR").arg("n").query(&mut conn).expect("INCR");
        assert!(n >= 1);
        let missing: Value = redis::cmd("GET")
            .arg("missing")
            .query(&mut conn)
            .expect("GET");
        assert_eq!(missing, Value::Nil);
        let e = redis::cmd("LPUSH")
            .arg(b"k\x00\xff")
            .arg("x")
            .query::<Value>(&mut conn)
            .expect_err("WRONGTYPE");
        assert_eq!(e.code(), Some("WRONGTYPE"), "{e}");
    }
    let direct: Vec<u8> = redis::cmd("GET")
        .arg(b"k\x00\xff")
        .query(&mut master.conn())
        .expect("GET");
    assert_eq!(direct, b"v\r\n", "the write reached the master");
}

#[test]
fn a_hot_key_is_served_from_the_cache_and_a_write_through_the_proxy_invalidates_it_first() {
    let master = master(&[("cache-ttl-ms", "60000")]);
    let proxy = Proxy::start(&master, &[]);
    let mut writer = proxy.conn();
    let mut reader = proxy.conn();
    let () = redis::cmd("SET")
        .arg("hot")
        .arg("v1")
        .query(&mut writer)
        .expect("SET");
    pin(&master, b"hot");
    proxy.wait_for_cache_hit(&mut reader, b"hot");
    let before = calls(&master, "get");
    for _ in 0..200 {
        let v: String = redis::cmd("GET")
            .arg("hot")
            .query(&mut reader)
            .expect("GET");
        assert_eq!(v, "v1");
    }
    assert!(
        calls(&master, "get") <= before + 1,
        "hot reads reached the master: {} -> {}",
        before,
        calls(&master, "get")
    );
    // A write through the proxy is acknowledged only once the cached reply is dropped: the
    // next read, by anyone, sees it.
    for i in 2..50 {
        let value = format!("v{i}");
        let () = redis::cmd("SET")
            .arg("hot")
            .arg(&value)
            .query(&mut writer)
            .expect("SET");
        let read: String = redis::cmd("GET")
            .arg("hot")
            .query(&mut reader)
            .expect("GET");
        assert_eq!(read, value, "a read after an acknowledged write is stale");
    }
}

#[test]
fn a_write_made_elsewhere_is_invalidated_by_tracking() {
    let master = master(&[("cache-ttl-ms", "60000")]);
    let proxy = Proxy::start(&master, &[]);
    let mut reader = proxy.conn_resp3();
    let () = redis::cmd("SET")
        .arg("hot")
        .arg("old")
        .query(&mut master.conn())
        .expect("SET");
    pin(&master, b"hot");
    proxy.wait_for_cache_hit(&mut reader, b"hot");
    let () = redis::cmd("SET")
        .arg("hot")
        .arg("new")
        .query(&mut master.conn())
        .expect("SET");
    wait_until(
        "the direct write reaches readers of the proxy",
        WAIT,
        || {
            let v: String = redis::cmd("GET")
                .arg("hot")
                .query(&mut reader)
                .expect("GET");
            check(v == "new", || v)
        },
    );
}

#[test]
fn without_the_cache_hot_reads_go_to_the_replicas_and_a_client_reads_its_own_writes() {
    let (master, replicas) = replicated(&[], 2);
    let proxy = Proxy::start(&master, &["--no-cache"]);
    let mut conn = proxy.conn();
    let () = redis::cmd("SET")
        .arg("hot")
        .arg("v")
        .query(&mut conn)
        .expect("SET");
    pin(&master, b"hot");
    wait_until("hot reads reach a replica", WAIT, || {
        let _: String = redis::cmd("GET").arg("hot").query(&mut conn).expect("GET");
        let served: u64 = replicas.iter().map(|r| calls(r, "get")).sum();
        check(served > 0, || served)
    });
    let master_before = calls(&master, "get");
    let replicas_before: u64 = replicas.iter().map(|r| calls(r, "get")).sum();
    for _ in 0..100 {
        let _: String = redis::cmd("GET").arg("hot").query(&mut conn).expect("GET");
    }
    let replicas_after: u64 = replicas.iter().map(|r| calls(r, "get")).sum();
    assert_eq!(replicas_after - replicas_before, 100);
    assert_eq!(calls(&master, "get"), master_before);
    assert!(
        replicas.iter().all(|r| calls(r, "get") > 0),
        "the replicas take turns"
    );
    // The writer's next read goes to the master, which has its write.
    let () = redis::cmd("SET")
        .arg("hot")
        .arg("mine")
        .query(&mut conn)
        .expect("SET");
    let v: String = redis::cmd("GET").arg("hot").query(&mut conn).expect("GET");
    assert_eq!(v, "mine");
    assert_eq!(calls(&master, "get"), master_before + 1);
}
