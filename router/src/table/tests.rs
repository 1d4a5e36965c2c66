use hotkey_protocol::{
    Address, Advice, Event, HotKey, KeyEvent, Message, ReadsTo, Replica, ReplicasEvent, Routes,
};

use super::*;

pub(crate) fn advice(reads_to: ReadsTo, cache_ttl_ms: u64) -> Advice {
    Advice::new(reads_to, cache_ttl_ms).read_hot(true)
}

pub(crate) fn routes(run_id: &str, seq: u64, keys: &[(u32, &[u8])]) -> Routes {
    let mut routes = Routes::new(
        seq,
        run_id,
        "__hotkey__",
        hotkey_protocol::Role::Master,
        Address::new("127.0.0.1", 7379),
    );
    routes.replicas = vec![Replica::new("127.0.0.1", 7380, 0)];
    routes.keys = keys
        .iter()
        .map(|&(db, key)| HotKey::new(db, key, 5000.0, 10.0, advice(ReadsTo::Replicas, 100)))
        .collect();
    routes
}

fn message(run_id: &str, seq: u64, event: Event) -> Message {
    Message::new(seq, run_id, 0, event)
}

fn key_event(db: u32, key: &[u8], advice: Option<Advice>) -> KeyEvent {
    KeyEvent::new(db, key, 5000.0, 0.0, advice)
}

fn hot(seq: u64, key: &[u8]) -> Message {
    message(
        "r1",
        seq,
        Event::Hot(key_event(0, key, Some(advice(ReadsTo::Replicas, 100)))),
    )
}

#[test]
fn unsynced_table_routes_nothing() {
    let mut t = RouteTable::new(0);
    assert!(!t.is_synced());
    assert_eq!(t.apply(&hot(1, b"k")), Applied::NotSynced);
    assert!(t.get(b"k").is_none());
}

#[test]
fn a_snapshot_keeps_the_keys_of_its_database() {
    let mut t = RouteTable::new(1);
    t.load(&routes("r1", 5, &[(0, b"a"), (1, b"b"), (1, &[0xff, 0])]));
    assert!(t.is_synced());
    assert!(t.get(b"a").is_none());
    assert!(t.get(b"b").is_some());
    assert!(t.get(&[0xff, 0]).is_some());
    assert_eq!(t.len(), 2);
    assert_eq!(t.replicas().len(), 1);
}

#[test]
fn events_apply_in_order_and_old_ones_are_skipped() {
    let mut t = RouteTable::new(0);
    t.load(&routes("r1", 5, &[]));
    assert_eq!(t.apply(&hot(4, b"old")), Applied::Old);
    assert_eq!(t.apply(&hot(5, b"old")), Applied::Old);
    assert!(t.get(b"old").is_none());
    assert_eq!(t.apply(&hot(6, b"k")), Applied::InOrder);
    assert!(t.get(b"k").is_some());
    let cold = message("r1", 7, Event::Cold(key_event(0, b"k", None)));
    assert_eq!(t.apply(&cold), Applied::InOrder);
    assert!(t.get(b"k").is_none());
}

#[test]
fn a_gap_or_a_new_run_asks_for_a_resync() {
    let mut t = RouteTable::new(0);
    t.load(&routes("r1", 5, &[]));
    assert_eq!(
        t.apply(&hot(8, b"k")),
        Applied::Gap {
            expected: 6,
            got: 8
        }
    );
    assert!(t.get(b"k").is_none(), "nothing applied past a gap");
    let other = message(
        "r2",
        6,
        Event::Hot(key_event(0, b"k", Some(advice(ReadsTo::Master, 0)))),
    );
    assert_eq!(t.apply(&other), Applied::NewRun);
    assert!(t.get(b"k").is_none());
}

#[test]
fn updates_change_the_advice_and_keep_the_epoch() {
    let mut t = RouteTable::new(0);
    t.load(&routes("r1", 0, &[(0, b"k")]));
    let before = *t.get(b"k").expect("hot");
    let update = message(
        "r1",
        1,
        Event::Update(key_event(0, b"k", Some(advice(ReadsTo::Master, 0)))),
    );
    assert_eq!(t.apply(&update), Applied::InOrder);
    let after = *t.get(b"k").expect("still hot");
    assert_eq!(after.advice.reads_to, ReadsTo::Master);
    assert_eq!(after.advice.cache_ttl_ms, 0);
    assert_eq!(after.epoch, before.epoch);
}

#[test]
fn events_of_other_databases_only_advance_seq() {
    let mut t = RouteTable::new(0);
    t.load(&routes("r1", 0, &[]));
    let elsewhere = message(
        "r1",
        1,
        Event::Hot(key_event(3, b"k", Some(advice(ReadsTo::Replicas, 0)))),
    );
    assert_eq!(t.apply(&elsewhere), Applied::InOrder);
    assert!(t.get(b"k").is_none());
    assert_eq!(t.apply(&hot(2, b"k")), Applied::InOrder);
}

#[test]
fn replicas_events_replace_the_list() {
    let mut t = RouteTable::new(0);
    t.load(&routes("r1", 0, &[]));
    let none = message("r1", 1, Event::Replicas(ReplicasEvent::new(vec![])));
    assert_eq!(t.apply(&none), Applied::InOrder);
    assert!(t.replicas().is_empty());
}

#[test]
fn invalidation_changes_the_epoch_of_hot_keys_only() {
    let mut t = RouteTable::new(0);
    t.load(&routes("r1", 0, &[(0, b"a"), (0, b"b")]));
    let a = t.get(b"a").expect("a").epoch;
    let b = t.get(b"b").expect("b").epoch;
    assert_ne!(a, b);
    assert!(t.invalidate(b"a"));
    assert!(!t.invalidate(b"cold"));
    let a2 = t.get(b"a").expect("a").epoch;
    assert!(a2 > a.max(b), "a new epoch is never an old one");
    t.invalidate_all();
    assert_ne!(t.get(b"b").expect("b").epoch, b);
    assert_ne!(t.get(b"a").expect("a").epoch, a2);
}

#[test]
fn a_reload_gives_fresh_epochs_and_unsync_forgets_everything() {
    let mut t = RouteTable::new(0);
    t.load(&routes("r1", 0, &[(0, b"a")]));
    let a = t.get(b"a").expect("a").epoch;
    t.load(&routes("r1", 9, &[(0, b"a")]));
    assert_ne!(t.get(b"a").expect("a").epoch, a);
    t.unsync();
    assert!(!t.is_synced());
    assert!(t.get(b"a").is_none());
    assert!(t.replicas().is_empty());
}
