//! A replica counts the reads its clients make, not the writes its master streams to it.

use hotkey_testkit::{Server, entry, info_hotkey, show, top_all};

#[test]
fn replica_counts_only_reads() {
    let master = Server::start();
    let replica = Server::builder().replica_of(&master).start();
    let mut on_master = master.conn();
    let mut on_replica = replica.conn();

    for i in 0..5 {
        let _: () = redis::cmd("SET")
            .arg("repl:k")
            .arg(i)
            .query(&mut on_master)
            .expect("SET on master");
    }
    // WAIT returns once the replica acknowledged the writes: they reached its filter.
    let acked: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(10_000)
        .query(&mut on_master)
        .expect("WAIT");
    assert_eq!(acked, 1, "the replica did not acknowledge the writes");
    for _ in 0..5 {
        let value: Option<String> = redis::cmd("GET")
            .arg("repl:k")
            .query(&mut on_replica)
            .expect("GET on replica");
        assert_eq!(
            value.as_deref(),
            Some("4"),
            "the replica has the master's value"
        );
    }

    let info = info_hotkey(&mut on_replica);
    assert_eq!(
        info.get("role").map(String::as_str),
        Some("replica"),
        "{info:?}"
    );
    let entries = top_all(&mut on_replica);
    let e = entry(&entries, "repl:k");
    assert!(
        e.reads > 0.0 && e.writes == 0.0,
        "on the replica repl:k is only read: {e:?}\n{}",
        show(&entries)
    );

    let info = info_hotkey(&mut on_master);
    assert_eq!(
        info.get("role").map(String::as_str),
        Some("master"),
        "{info:?}"
    );
    let entries = top_all(&mut on_master);
    let e = entry(&entries, "repl:k");
    assert!(
        e.writes > 0.0 && e.reads == 0.0,
        "on the master repl:k is only written: {e:?}\n{}",
        show(&entries)
    );
}
