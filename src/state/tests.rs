use std::cell::RefCell;

use super::*;
use crate::command_table::fixture::table;
use crate::tracker::{KeyStats, Order};

/// A command from a client, as the filter would see it.
struct Fake<'a> {
    args: Vec<&'a [u8]>,
    client: Option<u64>,
    /// What the server would answer for a movable command.
    movable: Vec<(usize, Option<Access>)>,
    movable_asked: RefCell<u32>,
}

fn cmd<'a>(client: Option<u64>, args: &[&'a str]) -> Fake<'a> {
    Fake {
        args: args.iter().map(|a| a.as_bytes()).collect(),
        client,
        movable: Vec::new(),
        movable_asked: RefCell::new(0),
    }
}

impl Args for Fake<'_> {
    fn count(&self) -> usize {
        self.args.len()
    }
    fn get(&self, i: usize) -> Option<&[u8]> {
        self.args.get(i).copied()
    }
}

impl Command for Fake<'_> {
    fn client_id(&self) -> Option<u64> {
        self.client
    }
    fn movable_keys(&self, f: &mut dyn FnMut(usize, Option<Access>)) {
        *self.movable_asked.borrow_mut() += 1;
        for &(pos, access) in &self.movable {
            f(pos, access);
        }
    }
}

fn settings() -> Settings {
    Settings {
        enabled: true,
        capacity: 64,
        half_life_ms: 600_000,
        max_key_bytes: 16,
        sampler: SamplerConfig {
            quiet_ops: 10_000,
            max: 1,
        },
        tick_ms: 100,
        heartbeat_ms: 1000,
        rules: crate::hot_set::Rules {
            threshold: 1000.0,
            share: 0.0,
            cold_fraction: 0.5,
            cooldown_ms: 2000,
            max_hot: 64,
            cache_ttl_ms: 100,
        },
        health: crate::replicas::HealthRules {
            max_lag_ms: 2000,
            max_lag_bytes: 0,
        },
    }
}

/// A state; `per_client`: the server tells clients apart and another database holds keys.
fn state(per_client: bool) -> State {
    let mut s = State::new(settings(), table(), per_client.then(ClientDbs::default), 0);
    s.follow_dbs = per_client;
    s
}

fn top(s: &State) -> Vec<KeyStats> {
    s.tracker.top(Order::Total, None, 100, |_, _| true)
}

fn entry<'a>(top: &'a [KeyStats], db: u32, key: &str) -> &'a KeyStats {
    top.iter()
        .find(|e| e.db == db && e.key == key.as_bytes())
        .unwrap_or_else(|| panic!("{key} in db {db} not tracked: {top:?}"))
}

#[test]
fn reads_and_writes_are_told_apart() {
    let mut s = state(false);
    s.on_command(&cmd(None, &["GET", "r"]));
    s.on_command(&cmd(None, &["SET", "w", "1"]));
    let t = top(&s);
    assert!(entry(&t, 0, "r").reads_per_sec > 0.0);
    assert_eq!(entry(&t, 0, "r").writes_per_sec, 0.0);
    assert!(entry(&t, 0, "w").writes_per_sec > 0.0);
    assert_eq!(entry(&t, 0, "w").reads_per_sec, 0.0);
    assert_eq!(s.stats.keys_counted, 2);
}

#[test]
fn scripts_and_unknown_commands_are_not_counted_themselves() {
    let mut s = state(false);
    s.on_command(&cmd(None, &["EVAL", "return 1", "1", "k"]));
    s.on_command(&cmd(None, &["NOSUCH", "k"]));
    s.on_command(&cmd(None, &["PING"]));
    assert!(top(&s).is_empty());
    assert_eq!(s.stats.unknown_commands, 1);
    assert_eq!(s.stats.commands_seen, 3);
}

#[test]
fn each_client_counts_in_its_own_db() {
    let mut s = state(true);
    for id in [1, 2] {
        client_connected(&mut s, id);
    }
    s.on_command(&cmd(Some(2), &["SELECT", "3"]));
    s.on_command(&cmd(Some(1), &["SET", "k", "v"]));
    s.on_command(&cmd(Some(2), &["GET", "k"]));
    let t = top(&s);
    assert!(entry(&t, 0, "k").writes_per_sec > 0.0);
    assert!(entry(&t, 3, "k").reads_per_sec > 0.0);
    // A SELECT the server refuses (out of range, wrong arity) changes nothing.
    s.on_command(&cmd(Some(2), &["SELECT", "99"]));
    s.on_command(&cmd(Some(2), &["SELECT", "1", "x"]));
    s.on_command(&cmd(Some(2), &["GET", "j"]));
    assert!(entry(&top(&s), 3, "j").reads_per_sec > 0.0);
    s.on_command(&cmd(Some(2), &["RESET"]));
    s.on_command(&cmd(Some(2), &["GET", "z"]));
    assert!(entry(&top(&s), 0, "z").reads_per_sec > 0.0);
}

#[test]
fn script_commands_count_in_the_callers_db() {
    let mut s = state(true);
    client_connected(&mut s, 1);
    s.on_command(&cmd(Some(1), &["SELECT", "5"]));
    s.on_command(&cmd(
        Some(1),
        &["EVAL", "return redis.call('GET', KEYS[1])", "1", "k"],
    ));
    // The script engine's client, which never connected, runs the inner GET.
    s.on_command(&cmd(Some(1000), &["GET", "k"]));
    assert!(entry(&top(&s), 5, "k").reads_per_sec > 0.0);
}

#[test]
fn a_skipped_select_still_moves_the_client() {
    let mut s = state(true);
    s.apply(Settings {
        sampler: SamplerConfig {
            quiet_ops: 0,
            max: 1 << 16,
        },
        ..settings()
    });
    client_connected(&mut s, 1);
    for _ in 0..1000 {
        s.on_command(&cmd(Some(1), &["SELECT", "4"]));
    }
    assert_eq!(s.client_dbs.as_ref().unwrap().db_of(1), 4);
}

#[test]
fn while_only_db_0_holds_keys_selects_are_not_followed() {
    let mut s = state(true);
    s.follow_databases(None);
    assert_eq!(s.db_attribution(), "db0");
    client_connected(&mut s, 1);
    s.on_command(&cmd(Some(1), &["SELECT", "3"]));
    s.on_command(&cmd(Some(1), &["GET", "k"]));
    assert!(entry(&top(&s), 0, "k").reads_per_sec > 0.0);
    // Another database fills: the tick hands over every client's database, read afresh.
    let mut now = ClientDbs::default();
    now.connect_in(1, 3);
    s.follow_databases(Some(now));
    assert_eq!(s.db_attribution(), "per_client");
    s.on_command(&cmd(Some(1), &["GET", "k"]));
    assert!(entry(&top(&s), 3, "k").reads_per_sec > 0.0);
}

#[test]
fn without_client_ids_everything_is_db_0() {
    let mut s = state(false);
    s.follow_databases(Some(ClientDbs::default()));
    assert_eq!(s.db_attribution(), "db0_only");
    s.on_command(&cmd(None, &["SELECT", "3"]));
    s.on_command(&cmd(None, &["GET", "k"]));
    assert!(entry(&top(&s), 0, "k").reads_per_sec > 0.0);
}

#[test]
fn replicas_count_only_read_commands() {
    let mut s = state(false);
    s.replica = true;
    s.on_command(&cmd(None, &["SET", "w", "1"]));
    s.on_command(&cmd(None, &["ZUNIONSTORE", "d", "1", "src"]));
    s.on_command(&cmd(None, &["GET", "r"]));
    let t = top(&s);
    assert_eq!(t.len(), 1, "{t:?}");
    assert_eq!(t[0].key, b"r");
}

#[test]
fn movable_commands_ask_the_server_and_use_its_flags() {
    let mut s = state(false);
    let mut sort = cmd(None, &["SORT", "src", "STORE", "dst"]);
    sort.movable = vec![(1, Some(Access::Read)), (3, None)];
    s.on_command(&sort);
    assert_eq!(*sort.movable_asked.borrow(), 1);
    let t = top(&s);
    assert!(entry(&t, 0, "src").reads_per_sec > 0.0);
    // No flag from the server: the command's own (SORT writes).
    assert!(entry(&t, 0, "dst").writes_per_sec > 0.0);
    assert_eq!(s.stats.movable_key_lookups, 1);
}

#[test]
fn overlong_keys_are_counted_as_such() {
    let mut s = state(false);
    s.on_command(&cmd(None, &["GET", "a-key-longer-than-sixteen-bytes"]));
    assert!(top(&s).is_empty());
    assert_eq!(s.stats.keys_too_long, 1);
}

#[test]
fn disabled_counts_nothing_but_commands_seen() {
    let mut s = state(false);
    s.apply(Settings {
        enabled: false,
        ..settings()
    });
    s.on_command(&cmd(None, &["GET", "k"]));
    assert!(top(&s).is_empty());
    assert_eq!(s.stats.commands_seen, 1);
    assert_eq!(s.stats.commands_sampled, 0);
}

#[test]
fn busy_ticks_turn_sampling_on_and_weights_keep_rates_whole() {
    let mut s = state(false);
    s.apply(Settings {
        sampler: SamplerConfig {
            quiet_ops: 100,
            max: 8,
        },
        ..settings()
    });
    for _ in 0..10_000 {
        s.on_command(&cmd(None, &["GET", "k"]));
    }
    s.tick(1000, None, None);
    assert_eq!(s.commands_per_sec, 10_000.0);
    assert_eq!(s.sampler.fraction(), 0.125);
    let before = s.stats.commands_sampled;
    for _ in 0..80_000 {
        s.on_command(&cmd(None, &["GET", "k"]));
    }
    let sampled = s.stats.commands_sampled - before;
    assert!((9_000..11_000).contains(&sampled), "sampled {sampled}");
}

#[test]
fn capacity_changes_resize_the_tracker() {
    let mut s = state(false);
    s.apply(Settings {
        capacity: 32,
        ..settings()
    });
    assert_eq!(s.tracker.capacity(), 32);
}

fn client_connected(s: &mut State, id: u64) {
    s.client_dbs.as_mut().unwrap().connect(id);
}

#[test]
fn a_tick_announces_replicas_then_hot_keys_then_the_heartbeat() {
    use hotkey_protocol::{Event, ReadsTo};

    let mut s = state(false);
    // 10 000 GETs at once read as ~7 000/s with a one-second half-life.
    s.apply(Settings {
        half_life_ms: 1000,
        ..settings()
    });
    for _ in 0..10_000 {
        s.on_command(&cmd(None, &["GET", "board"]));
    }
    let info = Replication::parse(
        "role:master\r\nslave0:ip=10.0.0.1,port=7380,state=online,offset=10,lag=0\r\n\
         master_repl_offset:10\r\n",
    );
    let messages = s.tick(100, Some(&info), None);
    let events: Vec<&Event> = messages.iter().map(|m| &m.event).collect();
    assert!(
        matches!(events[0], Event::Replicas(r) if r.replicas.len() == 1),
        "{events:?}"
    );
    let Event::Hot(hot) = events[1] else {
        panic!("{events:?}");
    };
    assert_eq!(hot.key.bytes().unwrap(), b"board");
    assert_eq!(hot.advice.unwrap().reads_to, ReadsTo::Replicas);
    assert!(matches!(events[2], Event::Heartbeat(h) if h.hot_keys == 1 && h.replicas == 1));
    assert_eq!(
        messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    // Nothing changed: no event until the next heartbeat is due.
    assert!(s.tick(200, Some(&info), None).is_empty());
    assert!(!s.tick_due(250) && s.tick_due(280));
}

#[test]
fn reports_count_as_reads_of_the_callers_database() {
    let mut s = state(true);
    s.tick(1000, None, None);
    s.report(3, b"k", 500);
    assert_eq!(s.stats.reported_reads, 500);
    assert!(top(&s).is_empty(), "reports reach the tracker at the ticks");
    s.tick(1100, None, None);
    let all = top(&s);
    let e = entry(&all, 3, "k");
    assert!(e.reads_per_sec > 0.0 && e.writes_per_sec == 0.0);
    s.follow_databases(None);
    assert_eq!(
        s.tracked_db(3),
        0,
        "while not following, everything is db 0"
    );
}

#[test]
fn replication_is_read_every_tick_only_with_replicas() {
    let mut s = state(false);
    assert!(s.replication_due(0), "the first tick reads it");
    let alone = Replication::parse("role:master\r\nconnected_slaves:0\r\nmaster_repl_offset:0\r\n");
    s.tick(100, Some(&alone), None);
    assert!(!s.replication_due(200) && !s.replication_due(1000));
    assert!(s.replication_due(1100), "once a second without replicas");
    let with_one = Replication::parse(
        "role:master\r\nslave0:ip=10.0.0.1,port=7380,state=online,offset=0,lag=0\r\n",
    );
    s.tick(1100, Some(&with_one), None);
    assert!(s.replication_due(1200), "every tick with a replica");
}
