//! The harness's `Cluster` against real servers: a 3 × 1 cluster that routes keys by slot,
//! moves a slot with its keys, fails a killed master over, and stops every node on drop.

use std::process::{Command, Stdio};

use hotkey_protocol::cluster::key_slot;
use hotkey_testkit::{Cluster, Node, WAIT, check, wait_until};
use redis::Connection;

/// True while a process with this id exists (`kill -0`).
fn alive(pid: u32) -> bool {
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn cluster_state(conn: &mut Connection) -> String {
    let info: String = redis::cmd("CLUSTER")
        .arg("INFO")
        .query(conn)
        .expect("CLUSTER INFO");
    info.lines()
        .find_map(|l| l.trim().strip_prefix("cluster_state:"))
        .unwrap_or_else(|| panic!("no cluster_state in {info}"))
        .to_string()
}

fn get(node: &Node, key: &[u8]) -> redis::RedisResult<Option<Vec<u8>>> {
    redis::cmd("GET").arg(key).query(&mut node.conn())
}

#[test]
fn three_masters_with_a_replica_each_route_keys_by_slot_and_stop_on_drop() {
    let cluster = Cluster::start(3, 1);
    assert_eq!(cluster.nodes().len(), 6);
    for node in cluster.nodes() {
        assert_eq!(cluster_state(&mut node.conn()), "ok", "port {}", node.port);
    }
    let masters = cluster.masters();
    assert_eq!(masters.len(), 3);
    for master in &masters {
        let replicas = cluster.replicas(master);
        assert_eq!(replicas.len(), 1, "replicas of {}", master.port);
        assert!(!masters.iter().any(|m| m.id == replicas[0].id));
    }

    // A binary key goes to the master of its slot; another master redirects to it.
    let key: &[u8] = b"leader\xffboard";
    let owner = cluster.node_for_key(key);
    assert_eq!(owner.id, cluster.node_for_slot(key_slot(key)).id);
    let () = redis::cmd("SET")
        .arg(key)
        .arg("v")
        .query(&mut cluster.conn(owner))
        .expect("SET on the owner");
    let other = masters
        .iter()
        .find(|m| m.id != owner.id)
        .expect("another master");
    let moved = get(other, key).expect_err("a key of another shard is MOVED");
    assert_eq!(moved.code(), Some("MOVED"), "{moved}");
    assert!(
        moved.to_string().contains(&owner.port.to_string()),
        "MOVED does not name port {}: {moved}",
        owner.port
    );
    assert_eq!(get(owner, key).expect("GET"), Some(b"v".to_vec()));

    let pids: Vec<u32> = cluster.nodes().iter().map(Node::pid).collect();
    let dirs: Vec<_> = cluster.nodes().iter().map(|n| n.dir.clone()).collect();
    drop(cluster);
    for (pid, dir) in pids.iter().zip(&dirs) {
        assert!(!alive(*pid), "pid {pid} survived the drop");
        assert!(!dir.exists(), "{} survived the drop", dir.display());
    }
}

#[test]
fn a_slot_moves_with_its_keys_and_a_killed_master_fails_over() {
    let cluster = Cluster::builder(3, 1)
        .server_args(&["--cluster-node-timeout", "1000"])
        .start();
    let key: &[u8] = b"{moving}key";
    let slot = key_slot(key);
    let from = cluster.node_for_slot(slot);
    let to = cluster.other_master(from);
    let () = redis::cmd("SET")
        .arg(key)
        .arg("v")
        .query(&mut from.conn())
        .expect("SET");

    cluster.migrate_slot(slot, from, to);
    assert_eq!(cluster.node_for_slot(slot).id, to.id);
    assert_eq!(
        get(to, key).expect("GET on the new owner"),
        Some(b"v".to_vec())
    );
    let moved = get(from, key).expect_err("the old owner redirects");
    assert_eq!(moved.code(), Some("MOVED"), "{moved}");

    let replica = cluster.replicas(to)[0];
    // Replication is asynchronous: the key must be on the replica before its master dies.
    wait_until("the migrated key on the new owner's replica", WAIT, || {
        let mut conn = replica.conn();
        let () = redis::cmd("READONLY").query(&mut conn)?;
        let value: Option<Vec<u8>> = redis::cmd("GET").arg(key).query(&mut conn)?;
        check(value.is_some(), || {
            redis::RedisError::from((redis::ErrorKind::Io, "not yet"))
        })
    });
    cluster.kill(to);
    assert!(!to.is_up());
    let new = cluster.wait_for_failover(to);
    assert_eq!(new.id, replica.id, "the killed master's replica took over");
    assert_eq!(cluster.node_for_slot(slot).id, new.id);
    assert_eq!(
        get(new, key).expect("GET after the failover"),
        Some(b"v".to_vec())
    );
    assert_eq!(cluster_state(&mut new.conn()), "ok");
}
