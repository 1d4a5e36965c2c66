//! `hotkey top`, `route` and `watch` with `--cluster` on a real Redis Cluster (testkit's
//! `Cluster`: three masters with a replica each, the module on every node).

use hotkey_protocol::cluster::key_slot;
use hotkey_testkit::Cluster;

use crate::run::{hotkey, json, key_entry, reads, stderr, stdout};
use crate::watch::Watch;

fn cluster() -> Cluster {
    Cluster::builder(3, 1)
        .module_arg("half-life-ms", "600000")
        .start()
}

#[test]
fn top_and_route_find_every_node_and_the_keys_shard() {
    let cluster = cluster();
    let seed = cluster.nodes()[0].url();
    let key = b"leaderboard:global";
    let owner = cluster.node_for_key(key);
    reads(&mut owner.conn(), key, 50);

    let top = json(&["top", "--cluster", &seed]);
    let nodes = top["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 6, "{top}");
    assert!(nodes.iter().all(|n| n["up"] == true), "{top}");
    let masters = nodes.iter().filter(|n| n["role"] == "master").count();
    assert_eq!(masters, 3, "{top}");
    let mut shards: Vec<&str> = nodes.iter().filter_map(|n| n["shard"].as_str()).collect();
    shards.sort();
    shards.dedup();
    assert_eq!(shards.len(), 3, "three shards: {top}");

    let entry = key_entry(&top, "leaderboard:global");
    assert_eq!(entry["node"], owner.addr(), "{entry}");
    let owner_shard = nodes
        .iter()
        .find(|n| n["addr"] == owner.addr())
        .map(|n| n["shard"].clone())
        .expect("the owner among the nodes");
    assert_eq!(entry["shard"], owner_shard, "{entry}");
    let short: String = owner.id.chars().take(8).collect();
    assert!(
        owner_shard.as_str().is_some_and(|s| s.starts_with(&short)),
        "{owner_shard}"
    );

    // Asked from a node of another shard, route still answers from the owner.
    let other = cluster.other_master(owner);
    let route = json(&["route", "leaderboard:global", "--cluster", &other.url()]);
    assert_eq!(route["node"], owner.addr(), "{route}");
    assert_eq!(route["slot"], key_slot(key));
    assert_eq!(route["role"], "master");

    let out = hotkey(&["top", "--cluster", &seed, "--once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("nodes: 6 up, 0 down"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn route_follows_moved_and_ask_from_a_node_that_does_not_own_the_slot() {
    let cluster = cluster();
    let key = b"redirected";
    let slot = key_slot(key);
    let owner = cluster.node_for_key(key);
    let other = cluster.other_master(owner);

    // Given one node and no discovery, the tool asks that node, which answers MOVED.
    let moved = json(&["route", "redirected", &other.url()]);
    assert_eq!(moved["node"], owner.addr(), "{moved}");
    assert_eq!(moved["role"], "master", "{moved}");

    // Mid-migration the cluster still names the owner, which answers ASK for a key it no
    // longer has.
    let () = redis::cmd("SET")
        .arg(key)
        .arg("v")
        .query(&mut owner.conn())
        .expect("SET");
    cluster.begin_migration(slot, owner, other);
    cluster.move_keys(slot, owner, other);
    let asked = json(&["route", "redirected", "--cluster", &owner.url()]);
    assert_eq!(asked["node"], other.addr(), "{asked}");
    assert_eq!(asked["slot"], slot, "{asked}");
    assert_eq!(asked["role"], "master", "{asked}");
}

#[test]
fn a_killed_node_is_named_and_the_others_still_shown() {
    let cluster = cluster();
    let key = b"still-here";
    let owner = cluster.node_for_key(key);
    reads(&mut owner.conn(), key, 5);
    let victim = cluster.other_master(owner);
    cluster.kill(victim);
    let seed = owner.url();
    let out = hotkey(&["top", "--cluster", &seed, "--once"]);
    assert_eq!(out.status.code(), Some(1), "a node is down");
    assert!(stdout(&out).contains("\"still-here\""), "{}", stdout(&out));
    assert!(
        stderr(&out).contains(&format!("{}: connection refused", victim.addr())),
        "{}",
        stderr(&out)
    );
}

#[test]
fn watch_follows_each_shard_on_its_sharded_channel() {
    let cluster = cluster();
    let seed = cluster.nodes()[0].url();
    let mut watch = Watch::start(&["--cluster", &seed]);
    for _ in 0..3 {
        watch.line_with("following SSUBSCRIBE");
    }
    let key = b"pinned:in:a:shard";
    let owner = cluster.node_for_key(key);
    let () = redis::cmd("HOTKEY.PIN")
        .arg(key)
        .query(&mut owner.conn())
        .expect("HOTKEY.PIN");
    let hot = watch.line_with(r#"hot db 0 "pinned:in:a:shard""#);
    let short: String = owner.id.chars().take(8).collect();
    assert!(hot.contains(&owner.addr()), "{hot}");
    assert!(hot.contains(&format!("node {short}")), "{hot}");
    assert!(!hot.contains("RESTART") && !hot.contains("GAP"), "{hot}");
}
