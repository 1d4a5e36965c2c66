//! Starting and stopping real servers: what a caller gets back, and what is left after a drop.

use std::path::Path;

use hotkey_servers::{Cluster, Server};

fn ping(url: &str) -> redis::RedisResult<String> {
    let mut conn = redis::Client::open(url)?.get_connection()?;
    redis::cmd("PING").query(&mut conn)
}

fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn a_server_answers_once_started_and_leaves_nothing_behind_when_dropped() {
    let server = Server::builder().start().expect("start a server");
    assert_eq!(ping(&server.url()).expect("PING"), "PONG");
    let (pid, dir) = (server.pid(), server.dir.clone());
    assert!(dir.is_dir());
    drop(server);
    assert!(!process_exists(pid), "process {pid} still runs");
    assert!(!dir.exists(), "{} is still there", dir.display());
}

#[test]
fn a_taken_port_is_an_error_that_says_so() {
    let first = Server::builder().start().expect("start a server");
    let Err(e) = Server::builder().port(first.port).start() else {
        panic!("a second server started on port {}", first.port);
    };
    let text = e.to_string();
    assert!(
        text.starts_with(&format!("port {} is taken", first.port)),
        "{text}"
    );
    assert_eq!(ping(&first.url()).expect("PING the first"), "PONG");
}

#[test]
fn a_replica_has_synced_when_start_returns() {
    let master = Server::builder().start().expect("start the master");
    let replica = Server::builder()
        .replica_of(&master)
        .start()
        .expect("start the replica");
    let info = replica.info_replication().expect("INFO replication");
    assert_eq!(info.get("role").map(String::as_str), Some("slave"));
    assert_eq!(
        info.get("master_link_status").map(String::as_str),
        Some("up")
    );
}

#[test]
fn a_cluster_of_fewer_than_three_masters_is_an_error() {
    let Err(e) = Cluster::builder(2, 0).start() else {
        panic!("a cluster of 2 masters started");
    };
    assert_eq!(e.to_string(), "a Redis Cluster needs at least 3 masters");
}

#[test]
fn a_cluster_names_the_master_of_every_key_and_stops_every_node_when_dropped() {
    let cluster = Cluster::builder(3, 0).start().expect("start a cluster");
    let masters = cluster.masters().expect("masters");
    assert_eq!(masters.len(), 3);
    let owner = cluster.node_for_key(b"some-key").expect("the key's master");
    assert!(masters.iter().any(|m| m.id == owner.id));
    let pids: Vec<u32> = cluster.nodes().iter().map(|n| n.pid()).collect();
    drop(cluster);
    for pid in pids {
        assert!(!process_exists(pid), "node process {pid} still runs");
    }
}
