//! `hotkey top --once` and `--json` against one node, a master with a replica, and Sentinel;
//! the errors of a down node, a node without the module and an ACL refusal.

use hotkey_testkit::{Sentinel, Server};

use crate::run::{closed_port, hotkey, json, key_entry, reads, stderr, stdout, writes};

/// A master and a replica whose rates do not decay within the test.
fn master_and_replica() -> (Server, Server) {
    let master = Server::steady();
    let replica = Server::builder()
        .module_arg("half-life-ms", "600000")
        .replica_of(&master)
        .start();
    // The advice names the replicas only once the module counts this one healthy (just
    // synced, it may not yet).
    hotkey_testkit::wait_for_replicas(&mut master.conn(), &[replica.port], hotkey_testkit::WAIT);
    (master, replica)
}

#[test]
fn once_prints_the_keys_of_one_node_in_a_table() {
    let server = Server::steady();
    let mut conn = server.conn();
    reads(&mut conn, b"user:1", 50);
    writes(&mut conn, b"user:2", 20);
    let out = hotkey(&["top", "-p", &server.port.to_string(), "--once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("hotkey top — nodes: 1 up, 0 down"),
        "{text}"
    );
    assert!(text.contains("READS/S"), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    let first = lines
        .iter()
        .position(|l| l.starts_with("KEY"))
        .expect("a header")
        + 1;
    assert!(
        lines[first].starts_with("\"user:1\""),
        "hottest first: {text}"
    );
    assert!(lines[first + 1].starts_with("\"user:2\""), "{text}");
}

#[test]
fn json_merges_a_key_read_on_the_master_and_its_replica() {
    let (master, replica) = master_and_replica();
    reads(&mut master.conn(), b"lb", 40);
    writes(&mut master.conn(), b"lb", 10);
    reads(&mut replica.conn(), b"lb", 100);
    let top = json(&["top", &master.url(), &replica.url()]);
    let nodes = top["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 2, "{top}");
    assert_eq!(nodes[0]["role"], "master");
    assert_eq!(nodes[1]["role"], "replica");
    assert!(nodes.iter().all(|n| n["up"] == true), "{top}");
    let lb = key_entry(&top, "lb");
    let master_reads = lb["master_reads_per_sec"].as_f64().expect("a number");
    let replica_reads = lb["replica_reads_per_sec"].as_f64().expect("a number");
    assert!(master_reads > 0.0 && replica_reads > master_reads, "{lb}");
    assert_eq!(lb["node"], format!("127.0.0.1:{}", master.port));
    assert!(
        lb["writes_per_sec"].as_f64().is_some_and(|w| w > 0.0),
        "{lb}"
    );
    assert_eq!(lb["hot"], false);
    assert!(lb["reads_to"].is_null(), "a cold key has no advice: {lb}");
}

#[test]
fn binary_keys_are_escaped_in_text_and_base64_in_json() {
    let server = Server::steady();
    reads(&mut server.conn(), b"\xffbin\"", 5);
    let url = server.url();
    let top = json(&["top", &url]);
    let entry = top["keys"]
        .as_array()
        .and_then(|k| k.first())
        .expect("one key");
    assert_eq!(entry["key_b64"], "/2JpbiI=", "{entry}");
    assert!(entry.get("key").is_none(), "{entry}");
    let out = hotkey(&["top", &url, "--once"]);
    assert!(stdout(&out).contains(r#""\xffbin\"""#), "{}", stdout(&out));
}

#[test]
fn sentinel_names_the_master_and_replicas_and_the_advice_comes_from_the_master() {
    let (master, replica) = master_and_replica();
    let sentinel = Sentinel::start(&master, "hk");
    let mut conn = master.conn();
    let () = redis::cmd("HOTKEY.PIN")
        .arg("board")
        .query(&mut conn)
        .expect("HOTKEY.PIN");
    reads(&mut conn, b"board", 10);
    reads(&mut replica.conn(), b"board", 30);
    let top = json(&["top", "--sentinel", "hk", &sentinel.url()]);
    let nodes = top["nodes"].as_array().expect("nodes");
    let addr = |s: &Server| format!("127.0.0.1:{}", s.port);
    assert_eq!(nodes.len(), 2, "{top}");
    assert_eq!(nodes[0]["addr"], addr(&master));
    assert_eq!(nodes[0]["role"], "master");
    assert_eq!(nodes[1]["addr"], addr(&replica));
    assert_eq!(nodes[1]["role"], "replica");
    let board = key_entry(&top, "board");
    assert_eq!(board["hot"], true, "{board}");
    assert_eq!(board["pinned"], true, "{board}");
    assert_eq!(board["reads_to"], "replicas", "{board}");
    assert_eq!(board["cache_ttl_ms"], 100, "{board}");
    assert!(
        board["replica_reads_per_sec"]
            .as_f64()
            .is_some_and(|r| r > 0.0)
    );

    let route = json(&[
        "route",
        "board",
        "--sentinel",
        "hk",
        &sentinel.url(),
        "--write",
    ]);
    assert_eq!(route["node"], addr(&master), "asked of the master: {route}");
    assert_eq!(route["role"], "master");
}

#[test]
fn an_unknown_sentinel_master_name_is_an_error() {
    let server = Server::start();
    let sentinel = Sentinel::start(&server, "hk");
    let out = hotkey(&["top", "--sentinel", "other", &sentinel.url(), "--once"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no sentinel knows a master named 'other'"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_down_node_is_named_and_the_others_still_shown() {
    let server = Server::steady();
    reads(&mut server.conn(), b"still-here", 5);
    let down = format!("127.0.0.1:{}", closed_port());
    let out = hotkey(&["top", &server.url(), &down, "--once"]);
    assert_eq!(out.status.code(), Some(1), "a node failed");
    assert!(stdout(&out).contains("\"still-here\""), "{}", stdout(&out));
    assert!(stdout(&out).contains("nodes: 1 up, 1 down"));
    assert!(
        stderr(&out).contains(&format!("{down}: connection refused")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_node_without_the_module_is_named() {
    let server = Server::builder().without_module().start();
    let out = hotkey(&["top", &server.url(), "--once"]);
    assert_eq!(out.status.code(), Some(1));
    let expected = format!(
        "127.0.0.1:{}: the hotkey module is not loaded (ERR unknown command 'HOTKEY.TOP'",
        server.port
    );
    assert!(stderr(&out).contains(&expected), "{}", stderr(&out));
}

#[test]
fn an_acl_refusal_is_named() {
    let server = Server::start();
    let () = redis::cmd("ACL")
        .arg(&[
            "SETUSER",
            "viewer",
            "on",
            ">pw",
            "~*",
            "+@all",
            "-hotkey.top",
        ])
        .query(&mut server.conn())
        .expect("ACL SETUSER");
    let port = server.port.to_string();
    let out = hotkey(&["top", "-p", &port, "--user", "viewer", "-a", "pw", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("127.0.0.1:{port}: NOPERM")),
        "{}",
        stderr(&out)
    );
    let top: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON even so");
    assert_eq!(top["nodes"][0]["up"], false);
    let out = hotkey(&[
        "top", "-p", &port, "--user", "viewer", "-a", "wrong", "--once",
    ]);
    assert!(
        stderr(&out).contains(&format!(
            "127.0.0.1:{port}: authentication failed: wrong user name or password"
        )),
        "{}",
        stderr(&out)
    );
}

#[test]
fn window_is_passed_to_top_and_shown_from_the_reply() {
    let server = Server::steady();
    reads(&mut server.conn(), b"k", 20);
    let url = server.url();
    let top = json(&["top", &url, "--window", "10"]);
    assert_eq!(top["window"], 10, "{top}");
    assert_eq!(key_entry(&top, "k")["window"], 10, "{top}");
    let out = hotkey(&["top", &url, "--window", "1", "--once"]);
    assert!(stdout(&out).contains("— window 1 s —"), "{}", stdout(&out));
    let module_default = json(&["top", &url]);
    assert!(module_default["window"].is_u64(), "{module_default}");
    // A window the module does not have is a usage error, before any node is asked.
    let out = hotkey(&["top", &url, "--window", "7", "--once"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("'7' is not a window: use 1, 10 or 60"),
        "{}",
        stderr(&out)
    );
}
