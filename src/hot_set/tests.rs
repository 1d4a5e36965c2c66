//! The hot set's decisions on trackers built to hold given rates.

use std::f64::consts::LN_2;

use super::*;
use crate::tracker::{Access, TrackerConfig, key_hash};

const T: f64 = 1000.0;

fn rules() -> Rules {
    Rules {
        threshold: T,
        share: 0.0,
        cold_fraction: 0.5,
        cooldown_ms: 2000,
        max_hot: 8,
        cache_ttl_ms: 100,
    }
}

/// A tracker whose keys have these (reads, writes) per second now.
fn tracker(rates: &[(&str, f64, f64)]) -> Tracker {
    let mut t = Tracker::new(
        TrackerConfig {
            capacity: 64,
            half_life_ms: 1000,
        },
        0,
    );
    // A count c reads as c × ln 2 per second with a one-second half-life.
    for &(key, reads, writes) in rates {
        let h = key_hash(0, key.as_bytes());
        if reads > 0.0 {
            t.record(0, key.as_bytes(), h, Access::Read, reads / LN_2);
        }
        if writes > 0.0 {
            t.record(0, key.as_bytes(), h, Access::Write, writes / LN_2);
        }
    }
    t
}

fn kinds(changes: &[Change]) -> Vec<(ChangeKind, String)> {
    changes
        .iter()
        .map(|c| (c.kind, String::from_utf8_lossy(&c.key).into_owned()))
        .collect()
}

fn hot(set: &HotSet, key: &str) -> Option<HotEntry> {
    set.get(0, key.as_bytes(), key_hash(0, key.as_bytes()))
        .cloned()
}

#[test]
fn a_step_above_the_threshold_is_one_hot_event() {
    let mut set = HotSet::new(rules());
    assert!(set.tick(0, &tracker(&[("k", 0.0, 0.0)]), false).is_empty());
    let busy = tracker(&[("k", 5.0 * T, 0.0), ("other", 0.2 * T, 0.0)]);
    let changes = set.tick(100, &busy, false);
    assert_eq!(kinds(&changes), [(ChangeKind::Hot, "k".into())]);
    let advice = changes[0].advice.unwrap();
    assert!(advice.read_hot && !advice.write_hot && !advice.pinned);
    assert_eq!(advice.reads_to, ReadsTo::Master, "no replica is healthy");
    assert_eq!(advice.cache_ttl_ms, 100);
    assert!(set.tick(200, &busy, false).is_empty());
    assert!(hot(&set, "other").is_none());
}

#[test]
fn the_share_of_the_node_raises_the_entry_level() {
    let mut set = HotSet::new(Rules {
        share: 0.1,
        ..rules()
    });
    // 2000/s passes the threshold but is 2 % of a node doing 100 000/s.
    let mut rates = vec![("k", 2.0 * T, 0.0)];
    let names: Vec<String> = (0..49).map(|i| format!("bg{i}")).collect();
    rates.extend(names.iter().map(|n| (n.as_str(), 2.0 * T, 0.0)));
    assert!(set.tick(0, &tracker(&rates), false).is_empty());
    assert!(
        (set.entry_level() - 10_000.0).abs() < 1.0,
        "{}",
        set.entry_level()
    );
    // The same key alone is all of the node's traffic.
    let changes = set.tick(100, &tracker(&[("k", 2.0 * T, 0.0)]), false);
    assert_eq!(kinds(&changes), [(ChangeKind::Hot, "k".into())]);
}

#[test]
fn with_both_levels_off_any_traffic_is_hot() {
    let mut set = HotSet::new(Rules {
        threshold: 0.0,
        ..rules()
    });
    let changes = set.tick(0, &tracker(&[("k", 0.5, 0.0)]), false);
    assert_eq!(kinds(&changes), [(ChangeKind::Hot, "k".into())]);
}

#[test]
fn a_key_leaves_only_after_the_cooldown_below_the_exit_level() {
    let mut set = HotSet::new(rules());
    set.tick(0, &tracker(&[("k", 1.2 * T, 0.0)]), false);
    // Only hot and cold matter here; a falling rate also makes updates.
    let cold_at = |set: &mut HotSet, now: u64, rate: f64| {
        let changes = set.tick(now, &tracker(&[("k", rate, 0.0)]), false);
        changes.iter().any(|c| c.kind == ChangeKind::Cold)
    };
    // Above the exit level (500/s): stays, however long.
    assert!(!cold_at(&mut set, 5_000, 0.6 * T));
    assert!(!cold_at(&mut set, 6_000, 0.4 * T));
    assert!(!cold_at(&mut set, 7_900, 0.4 * T));
    // Back above the exit level resets the cooldown.
    assert!(!cold_at(&mut set, 8_000, 0.7 * T));
    assert!(!cold_at(&mut set, 9_000, 0.4 * T));
    assert!(!cold_at(&mut set, 10_900, 0.4 * T));
    let changes = set.tick(11_000, &tracker(&[("k", 0.4 * T, 0.0)]), false);
    assert_eq!(kinds(&changes), [(ChangeKind::Cold, "k".into())]);
    assert_eq!(changes[0].advice, None);
    assert!(set.is_empty());
}

#[test]
fn a_key_hovering_around_the_threshold_does_not_flap() {
    let mut set = HotSet::new(rules());
    let mut all = Vec::new();
    for i in 0..200u64 {
        let rate = if i % 2 == 0 { 0.9 * T } else { 1.1 * T };
        all.extend(set.tick(i * 100, &tracker(&[("k", rate, 0.0)]), false));
    }
    assert_eq!(kinds(&all), [(ChangeKind::Hot, "k".into())]);
}

#[test]
fn write_hot_keys_are_not_cached_and_reads_follow_replicas() {
    let mut set = HotSet::new(rules());
    let t = tracker(&[("board", 10.0 * T, 0.1 * T), ("counter", 0.2 * T, 3.0 * T)]);
    let changes = set.tick(0, &t, true);
    assert_eq!(
        kinds(&changes),
        [
            (ChangeKind::Hot, "board".into()),
            (ChangeKind::Hot, "counter".into())
        ]
    );
    let board = changes[0].advice.unwrap();
    assert!(board.read_hot && !board.write_hot);
    assert_eq!(
        (board.reads_to, board.cache_ttl_ms),
        (ReadsTo::Replicas, 100)
    );
    let counter = changes[1].advice.unwrap();
    assert!(!counter.read_hot && counter.write_hot);
    assert_eq!(
        (counter.reads_to, counter.cache_ttl_ms),
        (ReadsTo::Master, 0)
    );
    // The last replica goes: the read-hot key's advice changes, the other's does not.
    let changes = set.tick(100, &t, false);
    assert_eq!(kinds(&changes), [(ChangeKind::Update, "board".into())]);
    assert_eq!(changes[0].advice.unwrap().reads_to, ReadsTo::Master);
    // Writes pick up on the read-hot key: no more caching, and it stays so while hot.
    let changes = set.tick(
        200,
        &tracker(&[("board", 10.0 * T, 0.6 * T), ("counter", 0.2 * T, 3.0 * T)]),
        false,
    );
    assert_eq!(kinds(&changes), [(ChangeKind::Update, "board".into())]);
    assert_eq!(changes[0].advice.unwrap().cache_ttl_ms, 0);
    assert!(set.tick(300, &t, false).is_empty());
}

#[test]
fn a_rate_that_doubles_or_halves_is_an_update() {
    let mut set = HotSet::new(rules());
    set.tick(0, &tracker(&[("k", 2.0 * T, 0.0)]), false);
    assert!(
        set.tick(100, &tracker(&[("k", 3.9 * T, 0.0)]), false)
            .is_empty()
    );
    let changes = set.tick(200, &tracker(&[("k", 4.0 * T, 0.0)]), false);
    assert_eq!(kinds(&changes), [(ChangeKind::Update, "k".into())]);
    assert!(
        set.tick(300, &tracker(&[("k", 2.1 * T, 0.0)]), false)
            .is_empty()
    );
    assert_eq!(
        set.tick(400, &tracker(&[("k", 2.0 * T, 0.0)]), false).len(),
        1
    );
}

#[test]
fn a_full_set_takes_a_newcomer_only_twice_as_hot_as_its_weakest() {
    let mut set = HotSet::new(Rules {
        max_hot: 2,
        ..rules()
    });
    set.tick(
        0,
        &tracker(&[("a", 3.0 * T, 0.0), ("b", 2.0 * T, 0.0)]),
        false,
    );
    let t = tracker(&[
        ("a", 3.0 * T, 0.0),
        ("b", 2.0 * T, 0.0),
        ("c", 3.9 * T, 0.0),
    ]);
    assert!(set.tick(100, &t, false).is_empty());
    let t = tracker(&[
        ("a", 3.0 * T, 0.0),
        ("b", 2.0 * T, 0.0),
        ("c", 4.0 * T, 0.0),
    ]);
    let changes = set.tick(200, &t, false);
    assert_eq!(
        kinds(&changes),
        [
            (ChangeKind::Cold, "b".into()),
            (ChangeKind::Hot, "c".into())
        ]
    );
    assert_eq!(set.len(), 2);
    // A smaller max-hot drops the weakest at the next tick.
    set.set_rules(Rules {
        max_hot: 1,
        ..rules()
    });
    assert_eq!(
        kinds(&set.tick(300, &t, false)),
        [(ChangeKind::Cold, "a".into())]
    );
}

#[test]
fn pinned_keys_are_hot_until_unpinned_or_expired() {
    let mut set = HotSet::new(Rules {
        max_hot: 2,
        ..rules()
    });
    let idle = tracker(&[]);
    let h = |k: &str| key_hash(0, k.as_bytes());
    let changes = set.pin(0, b"lb", h("lb"), None, &idle).unwrap();
    assert_eq!(kinds(&changes), [(ChangeKind::Hot, "lb".into())]);
    let advice = changes[0].advice.unwrap();
    assert!(advice.pinned && advice.read_hot);
    // Pinning again changes nothing announced.
    assert!(set.pin(0, b"lb", h("lb"), None, &idle).unwrap().is_empty());
    assert!(
        set.tick(60_000, &idle, false).is_empty(),
        "a pin does not cool down"
    );
    set.pin(0, b"ttl", h("ttl"), Some(61_000), &idle).unwrap();
    assert_eq!(set.pin(0, b"x", h("x"), None, &idle), Err(PinError::Full));
    assert!(set.tick(60_900, &idle, false).is_empty());
    assert_eq!(
        kinds(&set.tick(61_000, &idle, false)),
        [(ChangeKind::Cold, "ttl".into())]
    );
    // Unpinned with no traffic of its own: cold at once.
    assert_eq!(set.unpin(0, b"x", h("x")), None);
    let changes = set.unpin(0, b"lb", h("lb")).unwrap();
    assert_eq!(kinds(&changes), [(ChangeKind::Cold, "lb".into())]);
    assert!(set.is_empty());
}

#[test]
fn an_unpinned_key_with_its_own_heat_stays_hot() {
    let mut set = HotSet::new(rules());
    let busy = tracker(&[("k", 2.0 * T, 0.0)]);
    set.tick(0, &busy, false);
    let h = key_hash(0, b"k");
    let pinned = set.pin(0, b"k", h, None, &busy).unwrap();
    assert_eq!(kinds(&pinned), [(ChangeKind::Update, "k".into())]);
    assert!(pinned[0].advice.unwrap().pinned);
    let unpinned = set.unpin(0, b"k", h).unwrap();
    assert_eq!(kinds(&unpinned), [(ChangeKind::Update, "k".into())]);
    assert!(!unpinned[0].advice.unwrap().pinned);
    assert!(hot(&set, "k").is_some());
}

#[test]
fn a_pin_displaces_the_weakest_detected_key() {
    let mut set = HotSet::new(Rules {
        max_hot: 1,
        ..rules()
    });
    let busy = tracker(&[("k", 2.0 * T, 0.0)]);
    set.tick(0, &busy, false);
    let changes = set.pin(0, b"lb", key_hash(0, b"lb"), None, &busy).unwrap();
    assert_eq!(
        kinds(&changes),
        [
            (ChangeKind::Cold, "k".into()),
            (ChangeKind::Hot, "lb".into())
        ]
    );
    // The detected key cannot come back while the pin holds the only place.
    assert!(set.tick(100, &busy, false).is_empty());
}

#[test]
fn in_a_cluster_only_keys_of_served_slots_are_hot_and_moved_ones_leave() {
    use hotkey_protocol::cluster::{SlotRange, key_slot};
    let slot = key_slot(b"here");
    assert_ne!(slot, key_slot(b"there"));
    let mut set = HotSet::new(rules());
    let served = vec![SlotRange {
        start: slot,
        end: slot,
    }];
    assert!(set.set_served(Some(served)).is_empty());
    let busy = tracker(&[("here", 5.0 * T, 0.0), ("there", 5.0 * T, 0.0)]);
    let changes = set.tick(100, &busy, false);
    assert_eq!(
        kinds(&changes),
        [(ChangeKind::Hot, "here".to_owned())],
        "a key of another shard's slot never enters"
    );
    set.pin(0, b"here", key_hash(0, b"here"), None, &busy)
        .unwrap();
    let cold = set.set_served(Some(Vec::new()));
    assert_eq!(
        kinds(&cold),
        [(ChangeKind::Cold, "here".to_owned())],
        "a pinned key whose slot moved away leaves too"
    );
    assert!(set.is_empty());
    assert!(set.set_served(None).is_empty());
    assert!(
        set.serves(b"there"),
        "outside a cluster every key may be hot"
    );
}

/// A tracker and hot set at default settings on a simulated clock: traffic one millisecond at a
/// time, a tick every 100 ms as the module makes them (the decay clock first).
struct Sim {
    tracker: Tracker,
    set: HotSet,
    now_ms: u64,
    /// Each access is counted with probability `1 / weight` and weighs `weight` (sampling).
    weight: f64,
    seed: u64,
    /// Fractions of an access carried from one millisecond to the next, per key.
    carry: Vec<f64>,
    events: Vec<(u64, ChangeKind, String)>,
}

const TICK_MS: u64 = 100;

impl Sim {
    fn new(weight: f64) -> Sim {
        let rules = Rules {
            cooldown_ms: crate::config::COOLDOWN_MS.default as u64,
            ..rules()
        };
        let mut tracker = Tracker::new(
            TrackerConfig {
                capacity: 64,
                half_life_ms: crate::config::HALF_LIFE_MS.default as u64,
            },
            0,
        );
        tracker.advance(0, TICK_MS);
        Sim {
            tracker,
            set: HotSet::new(rules),
            now_ms: 0,
            weight,
            seed: 0x9E37_79B9_7F4A_7C15,
            carry: Vec::new(),
            events: Vec::new(),
        }
    }

    fn sampled(&mut self) -> bool {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        (self.seed >> 11) as f64 / (1u64 << 53) as f64 * self.weight < 1.0
    }

    /// Runs `ms` milliseconds of `loads` (key, reads per second).
    fn run(&mut self, ms: u64, loads: &[(&str, f64)]) {
        self.carry.resize(loads.len(), 0.0);
        for _ in 0..ms {
            for (i, &(key, per_sec)) in loads.iter().enumerate() {
                self.carry[i] += per_sec / 1000.0;
                while self.carry[i] >= 1.0 {
                    self.carry[i] -= 1.0;
                    if self.sampled() {
                        let h = key_hash(0, key.as_bytes());
                        self.tracker
                            .record(0, key.as_bytes(), h, Access::Read, self.weight);
                    }
                }
            }
            self.now_ms += 1;
            if self.now_ms.is_multiple_of(TICK_MS) {
                self.tracker.advance(self.now_ms, TICK_MS);
                for c in self.set.tick(self.now_ms, &self.tracker, false) {
                    let key = String::from_utf8_lossy(&c.key).into_owned();
                    if c.kind != ChangeKind::Update {
                        self.events.push((self.now_ms, c.kind, key));
                    }
                }
            }
        }
    }

    /// When `key` last went `kind`, if it did.
    fn last(&self, kind: ChangeKind, key: &str) -> Option<u64> {
        self.events
            .iter()
            .rev()
            .find(|(_, k, name)| *k == kind && name == key)
            .map(|&(at, _, _)| at)
    }
}

#[test]
fn a_surge_enters_before_its_decayed_rate_reaches_the_entry_level() {
    // A step to 5x the threshold: its decayed rate reaches it after 0.32 half-lives (80 ms),
    // its load over the tick period reads 1.5x it after about 33 ms.
    let mut worst = 0;
    for phase in (1..TICK_MS).step_by(3) {
        let mut sim = Sim::new(1.0);
        sim.run(1000 - phase, &[]);
        let started = sim.now_ms;
        sim.run(300, &[("k", 5.0 * T)]);
        let hot = sim.last(ChangeKind::Hot, "k").expect("hot within 300 ms");
        worst = worst.max(hot - started);
    }
    assert!(
        (100..=140).contains(&worst),
        "detected after {worst} ms at worst"
    );
}

#[test]
fn steady_loads_around_the_threshold_do_not_flip() {
    // Sampled as on a node doing 20,000 commands a second (half of them counted).
    for (level, hot) in [(0.8, 0), (1.2, 1)] {
        let mut sim = Sim::new(2.0);
        sim.run(60_000, &[("k", level * T)]);
        let events: Vec<_> = sim.events.iter().map(|(_, k, _)| *k).collect();
        assert_eq!(events, vec![ChangeKind::Hot; hot], "at {level}x");
    }
    let mut sim = Sim::new(2.0);
    sim.run(60_000, &[("k", T)]);
    assert!(sim.last(ChangeKind::Cold, "k").is_none());
    assert!(sim.events.len() <= 1, "{:?}", sim.events);
}

#[test]
fn a_key_whose_traffic_stops_leaves_one_cooldown_later() {
    let cooldown = crate::config::COOLDOWN_MS.default as u64;
    let mut sim = Sim::new(1.0);
    sim.run(2050, &[("k", 5.0 * T)]);
    assert!(sim.last(ChangeKind::Hot, "k").is_some());
    let stopped = sim.now_ms;
    sim.run(cooldown + 2 * TICK_MS, &[]);
    let cold = sim.last(ChangeKind::Cold, "k").expect("cold") - stopped;
    assert!(
        (cooldown..=cooldown + 2 * TICK_MS).contains(&cold),
        "cold {cold} ms after the traffic stopped"
    );
    // It does not come back on its fading rate.
    sim.run(2000, &[]);
    assert_eq!(sim.events.len(), 2, "{:?}", sim.events);
}

#[test]
fn a_pause_shorter_than_the_cooldown_changes_nothing() {
    let cooldown = crate::config::COOLDOWN_MS.default as u64;
    let mut sim = Sim::new(1.0);
    sim.run(2000, &[("k", 5.0 * T)]);
    sim.run(cooldown - 2 * TICK_MS, &[]);
    sim.run(2000, &[("k", 5.0 * T)]);
    assert_eq!(sim.events.len(), 1, "{:?}", sim.events);
}

#[test]
fn an_unpinned_key_below_the_entry_level_does_not_come_back_as_a_surge() {
    let mut sim = Sim::new(1.0);
    sim.run(2000, &[("k", 0.5 * T)]);
    let h = key_hash(0, b"k");
    sim.set.pin(0, b"k", h, None, &sim.tracker).unwrap();
    assert_eq!(
        kinds(&sim.set.unpin(0, b"k", h).unwrap()),
        [(ChangeKind::Cold, "k".into())]
    );
    sim.run(2000, &[("k", 0.5 * T)]);
    assert!(sim.events.is_empty(), "{:?}", sim.events);
}

#[test]
fn a_burst_of_a_key_near_the_threshold_is_no_surge() {
    // A client at 0.8x the threshold stalls for a tick period, then catches up over the next:
    // that period's load reads 1.6x the threshold.
    let mut sim = Sim::new(1.0);
    sim.run(3000, &[("k", 0.8 * T)]);
    sim.run(TICK_MS, &[]);
    sim.run(TICK_MS, &[("k", 1.6 * T)]);
    sim.run(3000, &[("k", 0.8 * T)]);
    assert!(sim.events.is_empty(), "{:?}", sim.events);
}
