//! `hotkey route`: the advice of `HOTKEY.ROUTE`, as text and JSON.

use hotkey_testkit::Server;

use crate::run::{hotkey, json, stdout, wait_for};

#[test]
fn a_pinned_key_reads_from_a_replica_and_writes_to_the_master() {
    let master = Server::start();
    let replica = Server::builder().replica_of(&master).start();
    let () = redis::cmd("HOTKEY.PIN")
        .arg("board")
        .query(&mut master.conn())
        .expect("HOTKEY.PIN");
    let url = master.url();
    // The replica takes hot reads from the master's first tick that finds it healthy.
    let read = wait_for("reads of the pinned key routed to the replica", || {
        let read = json(&["route", "board", &url]);
        (read["role"] == "replica").then_some(read)
    });
    assert_eq!(read["port"], replica.port);
    assert_eq!(read["hot"], true);
    assert_eq!(read["cache_ttl_ms"], 100);
    assert_eq!(read["node"], format!("127.0.0.1:{}", master.port));
    let write = json(&["route", "board", &url, "--write"]);
    assert_eq!(write["role"], "master", "{write}");
    assert_eq!(write["cache_ttl_ms"], 0);
    let out = hotkey(&["route", "cold-key", &url]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(
        text.contains("role master\n") && text.contains("hot 0\n"),
        "{text}"
    );
}
