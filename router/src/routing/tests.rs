use std::time::Duration;

use hotkey_protocol::ReadsTo;
use hotkey_protocol::command_table::fixture;

use super::*;
use crate::table::tests::{advice, routes};

fn args<'a>(words: &[&'a str]) -> Vec<&'a [u8]> {
    words.iter().map(|w| w.as_bytes()).collect()
}

fn synced(keys: &[&[u8]]) -> RouteTable {
    let mut t = RouteTable::new(0);
    let keys: Vec<(u32, &[u8])> = keys.iter().map(|k| (0, *k)).collect();
    t.load(&routes("r1", 0, &keys));
    t
}

#[test]
fn writes_go_to_the_master_with_their_keys() {
    let c = fixture::table();
    let t = synced(&[b"hot"]);
    assert_eq!(
        plan(&c, &t, &args(&["SET", "hot", "v"])),
        Plan::Write(vec![b"hot".as_slice()])
    );
    assert_eq!(
        plan(&c, &t, &args(&["MSET", "a", "1", "b", "2", "a", "3"])),
        Plan::Write(vec![b"a".as_slice(), b"b".as_slice()])
    );
}

#[test]
fn a_read_of_a_hot_key_may_be_cached_or_go_to_a_replica() {
    let c = fixture::table();
    let t = synced(&[b"hot"]);
    let epoch = t.get(b"hot").expect("hot").epoch;
    assert_eq!(
        plan(&c, &t, &args(&["get", "hot"])),
        Plan::HotRead(HotRead {
            keys: vec![b"hot".as_slice()],
            cache: Some((Duration::from_millis(100), epoch)),
            replicas: true,
        })
    );
}

#[test]
fn reads_of_cold_keys_and_other_commands_go_to_the_master() {
    let c = fixture::table();
    let t = synced(&[b"hot"]);
    assert_eq!(plan(&c, &t, &args(&["GET", "cold"])), Plan::Master);
    assert_eq!(plan(&c, &t, &args(&["MGET", "hot", "cold"])), Plan::Master);
    assert_eq!(plan(&c, &t, &args(&["PING"])), Plan::Master);
    assert_eq!(
        plan(&c, &t, &args(&["EVAL", "return 1", "0"])),
        Plan::Master
    );
    assert_eq!(plan(&c, &t, &args(&["NOSUCH", "hot"])), Plan::Master);
    assert_eq!(plan(&c, &t, &args(&["GET"])), Plan::Master);
}

#[test]
fn commands_that_may_block_get_a_connection_of_their_own() {
    let c = fixture::table();
    let t = synced(&[b"hot"]);
    assert_eq!(
        plan(
            &c,
            &t,
            &args(&["XREAD", "BLOCK", "0", "STREAMS", "hot", "$"])
        ),
        Plan::Blocking(vec![])
    );
    // XREAD without BLOCK does not block: a read like any other.
    assert!(matches!(
        plan(&c, &t, &args(&["xread", "STREAMS", "hot", "0"])),
        Plan::HotRead(_)
    ));
}

#[test]
fn an_unsynced_table_sends_every_read_to_the_master() {
    let c = fixture::table();
    let mut t = synced(&[b"hot"]);
    t.unsync();
    assert_eq!(plan(&c, &t, &args(&["GET", "hot"])), Plan::Master);
}

#[test]
fn multi_key_and_nondeterministic_reads_are_not_cached() {
    let c = fixture::table();
    let t = synced(&[b"a", b"b"]);
    let Plan::HotRead(read) = plan(&c, &t, &args(&["MGET", "a", "b", "a"])) else {
        panic!("both keys are hot");
    };
    assert_eq!(read.keys, vec![b"a".as_slice(), b"b".as_slice()]);
    assert_eq!(read.cache, None);
    assert!(read.replicas);
    let Plan::HotRead(read) = plan(&c, &t, &args(&["SRANDMEMBER", "a"])) else {
        panic!("a is hot");
    };
    assert_eq!(read.cache, None);
}

#[test]
fn the_advice_decides_cache_and_replicas() {
    let c = fixture::table();
    let mut t = synced(&[]);
    let hot = hotkey_protocol::KeyEvent::new(0, b"k", 1.0, 0.0, Some(advice(ReadsTo::Master, 0)));
    let update = hotkey_protocol::Message::new(1, "r1", 0, hotkey_protocol::Event::Hot(hot));
    t.apply(&update);
    let Plan::HotRead(read) = plan(&c, &t, &args(&["GET", "k"])) else {
        panic!("k is hot");
    };
    assert_eq!(read.cache, None);
    assert!(!read.replicas);
}
