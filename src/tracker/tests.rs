//! The tracker as a whole: counts, guarantees, decay, databases, binary keys, sizing and
//! hostile inputs.

use super::space_saving::ADMIT_ABOVE_MIN;
use super::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};
use std::collections::{HashMap, HashSet};
use std::f64::consts::LN_2;

/// A half-life so long that nothing decays within a test.
const FOREVER_MS: u64 = 1 << 40;

fn tracker(capacity: usize) -> Tracker {
    Tracker::new(
        TrackerConfig {
            capacity,
            half_life_ms: FOREVER_MS,
        },
        0,
    )
}

fn rec(t: &mut Tracker, db: u32, key: &[u8], access: Access, weight: f64) {
    t.record(db, key, key_hash(db, key), access, weight);
}

/// λ in 1/s for the tracker's half-life.
fn lambda(t: &Tracker) -> f64 {
    LN_2 * 1000.0 / t.half_life_ms() as f64
}

/// The count behind a rate, while the clock has not moved.
fn count(t: &Tracker, rate: f64) -> f64 {
    rate / lambda(t)
}

fn all(t: &Tracker) -> Vec<KeyStats> {
    t.top(Order::Total, None, usize::MAX, |_, _| true)
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-300)
}

fn key(i: u64) -> Vec<u8> {
    format!("key:{i}").into_bytes()
}

#[test]
fn counts_are_exact_while_keys_fit() {
    let mut t = tracker(100);
    let mut truth: HashMap<Vec<u8>, (f64, f64)> = HashMap::new();
    for i in 0..50u64 {
        for j in 0..=i {
            let (access, weight) = if j % 3 == 0 {
                (Access::Write, 2.5)
            } else {
                (Access::Read, 1.0)
            };
            rec(&mut t, 0, &key(i), access, weight);
            let e = truth.entry(key(i)).or_default();
            match access {
                Access::Read => e.0 += weight,
                Access::Write => e.1 += weight,
            }
        }
    }
    assert_eq!(t.len(), 50);
    for s in all(&t) {
        let (reads, writes) = truth[&s.key];
        assert!(close(count(&t, s.reads_per_sec), reads, 1e-12));
        assert!(close(count(&t, s.writes_per_sec), writes, 1e-12));
        assert_eq!(s.error_per_sec, 0.0);
    }
    t.assert_valid();
}

#[test]
fn space_saving_bounds_hold_on_a_random_stream() {
    let mut rng = StdRng::seed_from_u64(42);
    let capacity = 50;
    let mut t = tracker(capacity);
    let mut truth: HashMap<Vec<u8>, f64> = HashMap::new();
    let mut n = 0.0;
    for _ in 0..20_000 {
        // Skewed: low numbers come up far more often.
        let r: f64 = rng.random();
        let k = key((r * r * r * 500.0) as u64);
        let weight = f64::from(rng.random_range(1..=3u32));
        let access = if rng.random_bool(0.3) {
            Access::Write
        } else {
            Access::Read
        };
        rec(&mut t, 0, &k, access, weight);
        *truth.entry(k).or_default() += weight;
        n += weight;
    }
    t.assert_valid();
    let eps = 1e-9 * n;
    let stats = all(&t);
    assert_eq!(stats.len(), capacity);
    let mut min_total = f64::INFINITY;
    let mut tracked = HashSet::new();
    for s in &stats {
        let counted = count(&t, s.reads_per_sec + s.writes_per_sec);
        let error = count(&t, s.error_per_sec);
        let real = truth[&s.key];
        assert!(counted <= real + eps, "{counted} > {real}");
        assert!(
            real <= counted + error + eps,
            "{real} > {counted} + {error}"
        );
        min_total = min_total.min(counted + error);
        tracked.insert(s.key.clone());
    }
    // No key left out is heavier than the admission bar: twice the lightest one kept.
    for (k, &real) in &truth {
        if !tracked.contains(k) {
            assert!(
                real <= ADMIT_ABOVE_MIN * min_total + eps,
                "{real} > {ADMIT_ABOVE_MIN} × {min_total}"
            );
        }
    }
}

#[test]
fn finds_the_heavy_hitters_of_a_zipf_stream() {
    let mut rng = StdRng::seed_from_u64(7);
    let zipf = Zipf::new(100_000.0, 1.1).unwrap();
    let capacity = 256;
    let mut t = tracker(capacity);
    let mut truth: HashMap<Vec<u8>, f64> = HashMap::new();
    let n = 200_000;
    for _ in 0..n {
        let k = key(zipf.sample(&mut rng) as u64);
        rec(&mut t, 0, &k, Access::Read, 1.0);
        *truth.entry(k).or_default() += 1.0;
    }
    let mut exact: Vec<(&Vec<u8>, f64)> = truth.iter().map(|(k, &c)| (k, c)).collect();
    exact.sort_by(|a, b| b.1.total_cmp(&a.1));
    let tenth = exact[9].1;
    let top10 = t.top(Order::Total, None, 10, |_, _| true);
    for s in &top10 {
        assert!(truth[&s.key] >= tenth, "{:?} is not a top-10 key", s.key);
    }
    // Guaranteed: every key heavier than n / capacity is tracked.
    for (k, c) in exact.iter().take_while(|(_, c)| *c > (n / capacity) as f64) {
        let s = t.get(0, k, key_hash(0, k)).expect("heavy key tracked");
        assert!(count(&t, s.reads_per_sec) <= *c + 1e-6);
    }
}

#[test]
fn decay_halves_a_rate_every_half_life() {
    let mut t = Tracker::new(
        TrackerConfig {
            capacity: 8,
            half_life_ms: 1000,
        },
        50_000,
    );
    for _ in 0..100 {
        rec(&mut t, 0, b"k", Access::Read, 1.0);
    }
    let r0 = all(&t)[0].reads_per_sec;
    assert!(close(r0, 100.0 * LN_2, 1e-12));
    t.advance(51_000, 0);
    assert!(close(all(&t)[0].reads_per_sec, r0 / 2.0, 1e-12));
    t.advance(52_000, 0);
    assert!(close(all(&t)[0].reads_per_sec, r0 / 4.0, 1e-12));
}

#[test]
fn a_steady_stream_reads_as_its_rate() {
    let mut t = Tracker::new(
        TrackerConfig {
            capacity: 8,
            half_life_ms: 1000,
        },
        0,
    );
    // 800 reads/s and 200 writes/s for 20 half-lives, in 10 ms ticks.
    for tick in 1..=2000u64 {
        t.advance(tick * 10, 0);
        for i in 0..10 {
            let access = if i % 4 == 0 && i > 0 {
                Access::Write
            } else {
                Access::Read
            };
            rec(&mut t, 0, b"k", access, 1.0);
        }
    }
    let s = &all(&t)[0];
    assert!(close(s.reads_per_sec, 800.0, 0.01), "{}", s.reads_per_sec);
    assert!(close(s.writes_per_sec, 200.0, 0.01), "{}", s.writes_per_sec);
}

#[test]
fn renormalisation_keeps_rates() {
    let half_life = 10.0;
    let mut t = Tracker::new(
        TrackerConfig {
            capacity: 8,
            half_life_ms: 10,
        },
        0,
    );
    let lambda = LN_2 * 1000.0 / half_life;
    rec(&mut t, 0, b"once", Access::Write, 1000.0);
    // 100 half-lives: renormalises three times.
    for tick in 1..=200u64 {
        let now = tick * 5;
        t.advance(now, 0);
        rec(&mut t, 0, b"steady", Access::Read, 1.0);
        let once = t.get(0, b"once", key_hash(0, b"once")).unwrap();
        let expected = 1000.0 * lambda * (-(now as f64) / half_life).exp2();
        assert!(close(once.writes_per_sec, expected, 1e-9), "at {now}");
        let steady = t.get(0, b"steady", key_hash(0, b"steady")).unwrap();
        let expected: f64 = (0..tick).map(|k| (-(k as f64) * 0.5).exp2()).sum();
        assert!(close(steady.reads_per_sec, expected * lambda, 1e-9));
    }
    t.assert_valid();
}

#[test]
fn reads_and_writes_are_separate() {
    let mut t = tracker(8);
    for _ in 0..3 {
        rec(&mut t, 0, b"a", Access::Read, 1.0);
    }
    for _ in 0..5 {
        rec(&mut t, 0, b"a", Access::Write, 1.0);
    }
    for _ in 0..7 {
        rec(&mut t, 0, b"b", Access::Read, 1.0);
    }
    let first = |order| t.top(order, None, 1, |_, _| true)[0].key.clone();
    assert_eq!(first(Order::Total), b"a");
    assert_eq!(first(Order::Reads), b"b");
    assert_eq!(first(Order::Writes), b"a");
    let a = t.get(0, b"a", key_hash(0, b"a")).unwrap();
    assert!(close(count(&t, a.reads_per_sec), 3.0, 1e-12));
    assert!(close(count(&t, a.writes_per_sec), 5.0, 1e-12));
    let b = t.get(0, b"b", key_hash(0, b"b")).unwrap();
    assert_eq!(b.writes_per_sec, 0.0);
}

#[test]
fn databases_are_separate() {
    let mut t = tracker(8);
    assert_ne!(key_hash(0, b"user:1"), key_hash(1, b"user:1"));
    for _ in 0..5 {
        rec(&mut t, 0, b"user:1", Access::Read, 1.0);
    }
    rec(&mut t, 1, b"user:1", Access::Write, 2.0);
    assert_eq!(t.len(), 2);
    let db1 = t.top(Order::Total, Some(1), 10, |_, _| true);
    assert_eq!(db1.len(), 1);
    assert_eq!((db1[0].db, db1[0].reads_per_sec), (1, 0.0));
    assert!(close(count(&t, db1[0].writes_per_sec), 2.0, 1e-12));
    let db0 = t.top(Order::Total, Some(0), 10, |_, _| true);
    assert!(close(count(&t, db0[0].reads_per_sec), 5.0, 1e-12));
    assert!(t.top(Order::Total, Some(2), 10, |_, _| true).is_empty());
}

#[test]
fn binary_keys_are_kept_exactly() {
    let keys: [&[u8]; 8] = [
        b"",
        b"\0",
        b"\0\0",
        b"a",
        b"a\0",
        b"a\0b",
        &[0xff, 0xfe, 0x00, 0x80],
        "ключ".as_bytes(),
    ];
    let mut t = tracker(16);
    for (i, k) in keys.iter().enumerate() {
        rec(&mut t, 3, k, Access::Read, (i + 1) as f64);
    }
    assert_eq!(t.len(), keys.len());
    for (i, k) in keys.iter().enumerate() {
        let s = t.get(3, k, key_hash(3, k)).expect("tracked");
        assert_eq!(s.key, *k);
        assert!(close(count(&t, s.reads_per_sec), (i + 1) as f64, 1e-12));
    }
    let top = all(&t);
    assert_eq!(top[0].key, "ключ".as_bytes());
    assert_eq!(top[7].key, b"");
}

#[test]
fn resize_keeps_the_heaviest() {
    let mut t = tracker(100);
    for i in 0..100u64 {
        rec(&mut t, 0, &key(i), Access::Read, (i + 1) as f64);
    }
    let before = t.memory_bytes();
    t.resize(10);
    t.assert_valid();
    assert_eq!((t.len(), t.capacity()), (10, 10));
    assert!(t.memory_bytes() < before);
    let kept: Vec<Vec<u8>> = all(&t).into_iter().map(|s| s.key).collect();
    let expected: Vec<Vec<u8>> = (90..100).rev().map(key).collect();
    assert_eq!(kept, expected);
    let k99 = t.get(0, &key(99), key_hash(0, &key(99))).unwrap();
    assert!(close(count(&t, k99.reads_per_sec), 100.0, 1e-12));
    // Full: a newcomer replaces the lightest (key:90, count 91) once its estimate passes twice
    // that: after the fourth access of 50 at the latest (sooner if it shares a sketch counter).
    let mut sent = 0.0;
    while t.get(0, b"new", key_hash(0, b"new")).is_none() {
        assert!(sent < 200.0, "not admitted after {sent}");
        rec(&mut t, 0, b"new", Access::Read, 50.0);
        sent += 50.0;
    }
    let new = t.get(0, b"new", key_hash(0, b"new")).unwrap();
    assert!(close(count(&t, new.reads_per_sec), 50.0, 1e-12));
    assert!(count(&t, new.reads_per_sec + new.error_per_sec) >= sent - 1e-9);
    assert!(t.get(0, &key(90), key_hash(0, &key(90))).is_none());
    // Growing keeps everything and makes room.
    t.resize(50);
    t.assert_valid();
    for i in 200..240 {
        rec(&mut t, 0, &key(i), Access::Read, 1.0);
    }
    assert_eq!(t.len(), 50);
    assert!(
        all(&t)
            .iter()
            .all(|s| s.key == b"new" || s.error_per_sec == 0.0)
    );
}

#[test]
fn memory_is_constant_after_warm_up_with_a_million_keys() {
    let capacity = 1024;
    let mut t = tracker(capacity);
    let fixed = |i: u64| format!("key:{i:07}").into_bytes();
    let mut warm = 0;
    for i in 0..1_000_000u64 {
        let k = fixed(i);
        rec(&mut t, 0, &k, Access::Read, 1.0);
        if i == 2 * capacity as u64 {
            warm = t.memory_bytes();
        }
    }
    assert_eq!(t.len(), capacity);
    assert_eq!(t.memory_bytes(), warm);
    // Slot, long windows' counts, index (4 buckets of entry + admission counters), heap entry
    // and position, and an 11-byte key per slot.
    assert!(warm <= capacity * (64 + 48 + 128 + 16 + 4 + 11), "{warm}");
    t.assert_valid();
}

#[test]
fn time_going_backwards_is_harmless() {
    let mut t = Tracker::new(
        TrackerConfig {
            capacity: 4,
            half_life_ms: 100,
        },
        10_000,
    );
    rec(&mut t, 0, b"k", Access::Read, 1.0);
    t.advance(10_100, 0);
    let r = all(&t)[0].reads_per_sec;
    t.advance(5_000, 0);
    assert_eq!(all(&t)[0].reads_per_sec, r);
    for now in [0, u64::MAX, 3, u64::MAX / 2, 0, 7] {
        t.advance(now, 0);
        rec(&mut t, 0, b"k", Access::Write, 1.0);
        rec(&mut t, 0, &key(now), Access::Read, 1.0);
        for s in all(&t) {
            for rate in [s.reads_per_sec, s.writes_per_sec, s.error_per_sec] {
                assert!(rate.is_finite() && rate >= 0.0, "{rate} at {now}");
            }
        }
    }
    t.assert_valid();
}

#[test]
fn bad_weights_are_ignored_and_huge_ones_clamped() {
    let mut t = tracker(4);
    for w in [f64::NAN, 0.0, -0.0, -1.0, f64::NEG_INFINITY, -f64::NAN] {
        rec(&mut t, 0, b"k", Access::Read, w);
    }
    assert!(t.is_empty());
    for _ in 0..1000 {
        rec(&mut t, 0, b"k", Access::Read, f64::INFINITY);
        rec(&mut t, 0, b"k", Access::Write, f64::MAX);
    }
    let s = &all(&t)[0];
    assert!(close(count(&t, s.reads_per_sec), 1000.0 * MAX_WEIGHT, 1e-9));
    assert!(s.writes_per_sec.is_finite());
    // Tiny positive weights count.
    rec(&mut t, 0, b"tiny", Access::Read, f64::MIN_POSITIVE);
    assert_eq!(t.len(), 2);
    t.assert_valid();
}

#[test]
fn capacity_zero_and_one() {
    let mut t = tracker(0);
    rec(&mut t, 0, b"k", Access::Read, 1.0);
    t.advance(1, 0);
    assert!(t.is_empty());
    assert_eq!(t.capacity(), 0);
    assert!(all(&t).is_empty());
    t.resize(0);
    t.clear();
    // Nothing but the four buckets of the smallest index.
    assert_eq!(t.memory_bytes(), 128);

    let mut t = tracker(1);
    rec(&mut t, 0, b"a", Access::Read, 3.0);
    let mut sent = 0.0;
    while all(&t)[0].key == b"a" {
        assert!(sent < 12.0, "b not admitted after {sent}");
        rec(&mut t, 0, b"b", Access::Write, 3.0);
        sent += 3.0;
    }
    let s = all(&t);
    assert_eq!((s.len(), s[0].key.as_slice()), (1, &b"b"[..]));
    assert!(close(count(&t, s[0].writes_per_sec), 3.0, 1e-12));
    assert!(count(&t, s[0].writes_per_sec + s[0].error_per_sec) >= sent - 1e-9);
    t.assert_valid();
}

#[test]
fn top_asks_accept_in_order_and_stops_at_the_limit() {
    let mut t = tracker(32);
    for i in 1..=10u64 {
        rec(&mut t, 0, &key(i), Access::Read, i as f64);
        rec(&mut t, 1, &key(i), Access::Read, 100.0);
    }
    let mut asked = Vec::new();
    let top = t.top(Order::Total, Some(0), 3, |db, k| {
        asked.push((db, k.to_vec()));
        k.last().is_some_and(|c| c % 2 == 0)
    });
    let got: Vec<Vec<u8>> = top.into_iter().map(|s| s.key).collect();
    assert_eq!(got, vec![key(10), key(8), key(6)]);
    let expected: Vec<(u32, Vec<u8>)> = [10, 9, 8, 7, 6].into_iter().map(|i| (0, key(i))).collect();
    assert_eq!(asked, expected);
    let mut called = false;
    assert!(
        t.top(Order::Reads, None, 0, |_, _| {
            called = true;
            true
        })
        .is_empty()
    );
    assert!(!called);
    assert!(t.top(Order::Total, None, 5, |_, _| false).is_empty());
}

#[test]
fn changing_the_half_life_keeps_rates_continuous() {
    let mut t = Tracker::new(
        TrackerConfig {
            capacity: 4,
            half_life_ms: 1000,
        },
        0,
    );
    rec(&mut t, 0, b"k", Access::Read, 10.0);
    t.advance(1500, 0);
    let before = all(&t)[0].reads_per_sec;
    t.set_half_life_ms(100);
    assert_eq!(t.half_life_ms(), 100);
    assert!(close(all(&t)[0].reads_per_sec, before, 1e-12));
    t.advance(1600, 0);
    assert!(close(all(&t)[0].reads_per_sec, before / 2.0, 1e-12));
    // A new access adds λ of the new half-life.
    rec(&mut t, 0, b"k", Access::Read, 1.0);
    let expected = before / 2.0 + LN_2 * 10.0;
    assert!(close(all(&t)[0].reads_per_sec, expected, 1e-12));
    t.set_half_life_ms(0);
    assert_eq!(t.half_life_ms(), 1);
    t.assert_valid();
}

#[test]
fn clear_forgets_keys_but_not_the_shape() {
    let mut t = tracker(8);
    rec(&mut t, 0, b"a", Access::Read, 1.0);
    t.clear();
    assert!(t.is_empty());
    assert!(all(&t).is_empty());
    assert_eq!(t.capacity(), 8);
    rec(&mut t, 0, b"a", Access::Read, 1.0);
    assert_eq!(t.len(), 1);
    t.assert_valid();
}

#[test]
fn the_total_counts_every_access_and_decays_with_the_keys() {
    let mut t = Tracker::new(
        TrackerConfig {
            capacity: 2,
            half_life_ms: 1000,
        },
        0,
    );
    for i in 0..10u64 {
        rec(&mut t, 0, &key(i), Access::Read, 1.0);
    }
    // Two keys fit; the total still holds all ten accesses.
    assert_eq!(t.len(), 2);
    assert!(close(t.total_per_sec(), 10.0 * lambda(&t), 1e-9));
    t.advance(1000, 0);
    assert!(close(t.total_per_sec(), 5.0 * lambda(&t), 1e-9));
    t.clear();
    assert_eq!(t.total_per_sec(), 0.0);
}

#[test]
fn scan_and_rates_see_what_top_sees() {
    let mut t = tracker(16);
    rec(&mut t, 0, b"hot", Access::Read, 30.0);
    rec(&mut t, 0, b"hot", Access::Write, 10.0);
    rec(&mut t, 3, b"warm", Access::Write, 5.0);
    rec(&mut t, 0, b"cold", Access::Read, 1.0);
    let mut seen = Vec::new();
    t.scan(4.0 * lambda(&t), |db, key, hash, reads, writes| {
        assert_eq!(hash, key_hash(db, key));
        seen.push((db, key.to_vec(), reads / lambda(&t), writes / lambda(&t)));
    });
    seen.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].1, b"hot");
    assert!(close(seen[0].2, 30.0, 1e-9) && close(seen[0].3, 10.0, 1e-9));
    assert_eq!((seen[1].0, seen[1].1.as_slice()), (3, &b"warm"[..]));
    let (reads, writes) = t.rates(0, b"hot", key_hash(0, b"hot")).unwrap();
    assert!(close(reads, 30.0 * lambda(&t), 1e-9));
    assert!(close(writes, 10.0 * lambda(&t), 1e-9));
    assert_eq!(t.rates(1, b"hot", key_hash(1, b"hot")), None);
}

#[test]
fn a_steady_rate_reads_true_at_each_advance_with_a_lead() {
    // Ticks every 100 ms at a 250 ms half-life, 10 accesses a millisecond between them.
    for (lead_period, low, high) in [(0, 0.85, 0.89), (100, 0.99, 1.01)] {
        let mut t = Tracker::new(
            TrackerConfig {
                capacity: 4,
                half_life_ms: 250,
            },
            0,
        );
        let mut reading = 0.0;
        for tick in 1..=50u64 {
            for _ in 0..1000 {
                rec(&mut t, 0, b"k", Access::Read, 1.0);
            }
            t.advance(tick * 100, lead_period);
            reading = t.rates(0, b"k", key_hash(0, b"k")).unwrap().0;
        }
        let ratio = reading / 10_000.0;
        assert!(
            (low..high).contains(&ratio),
            "period {lead_period}: {ratio}"
        );
    }
}

#[test]
fn a_steady_rate_reads_true_between_advances() {
    // Ticks every 100 ms at a 250 ms half-life, 10 accesses a millisecond; read at every
    // millisecond in between.
    let mut t = Tracker::new(
        TrackerConfig {
            capacity: 4,
            half_life_ms: 250,
        },
        0,
    );
    let (mut low, mut high) = (f64::MAX, 0.0f64);
    for ms in 1..=5000u64 {
        for _ in 0..10 {
            rec(&mut t, 0, b"k", Access::Read, 1.0);
        }
        if ms % 100 == 0 {
            t.advance(ms, 100);
        } else if ms > 2000 {
            t.read_at(ms);
            let ratio = t.rates(0, b"k", key_hash(0, b"k")).unwrap().0 / 10_000.0;
            low = low.min(ratio);
            high = high.max(ratio);
        }
    }
    assert!(low > 0.99 && high < 1.01, "between {low} and {high}");
}

/// Every window's half-life in milliseconds, for a tracker whose detector has `detector_ms`.
fn half_lives(detector_ms: u64) -> [u64; 3] {
    let [ten, sixty] = LONG_TIME_CONSTANTS_MS.map(half_life_of);
    [detector_ms, ten, sixty]
}

#[test]
fn windows_are_named_by_their_seconds() {
    for w in Window::ALL {
        assert_eq!(Window::from_seconds(w.seconds()), Some(w));
    }
    assert_eq!(Window::ALL.map(Window::seconds), [1, 10, 60]);
    for bad in [0, 2, 9, 11, 30, 59, 61, 600] {
        assert_eq!(Window::from_seconds(bad), None, "{bad}");
    }
    // The long windows are time constants of 10 s and 60 s, like load averages.
    assert_eq!(half_lives(250), [250, 6931, 41589]);
}

#[test]
fn every_window_reads_a_steady_stream_as_its_rate() {
    // 1000 reads/s and 250 writes/s, ticks every 100 ms (the module's), for 200 s: more than
    // three time constants of the longest window.
    let mut t = Tracker::new(module_defaults(), 0);
    for tick in 1..=2000u64 {
        for i in 0..125 {
            let access = if i % 5 == 0 {
                Access::Write
            } else {
                Access::Read
            };
            rec(&mut t, 0, b"k", access, 1.0);
        }
        t.advance(tick * 100, 100);
        // The long windows average over the time there is: right from the first seconds,
        // not only after several time constants.
        if tick == 20 || tick % 500 == 0 {
            for w in Window::ALL {
                let s = &t.top_in(w, Order::Total, None, 1, |_, _| true)[0];
                let at = tick as f64 / 10.0;
                assert!(
                    close(s.reads_per_sec, 1000.0, 0.01),
                    "{w:?} at {at} s: {s:?}"
                );
                assert!(
                    close(s.writes_per_sec, 250.0, 0.01),
                    "{w:?} at {at} s: {s:?}"
                );
                assert_eq!(s.error_per_sec, 0.0);
            }
        }
    }
    // Between ticks too.
    for _ in 0..60 {
        rec(&mut t, 0, b"k", Access::Read, 1.0);
    }
    t.read_at(200_060);
    for w in Window::ALL {
        let s = &t.top_in(w, Order::Reads, None, 1, |_, _| true)[0];
        assert!(close(s.reads_per_sec, 1000.0, 0.01), "{w:?}: {s:?}");
    }
}

#[test]
fn the_detectors_window_is_what_top_gave_before() {
    let mut t = Tracker::new(module_defaults(), 1_000);
    let mut rng = StdRng::seed_from_u64(12);
    let zipf = Zipf::new(200.0, 1.0).unwrap();
    for tick in 1..=30u64 {
        for _ in 0..500 {
            let k = key(zipf.sample(&mut rng) as u64);
            let access = if rng.random_range(0..4) == 0 {
                Access::Write
            } else {
                Access::Read
            };
            rec(&mut t, 0, &k, access, 2.0);
        }
        t.advance(1_000 + tick * 100, 100);
    }
    t.read_at(4_050);
    let before = t.top(Order::Total, None, 20, |_, _| true);
    assert_eq!(before.len(), 20);
    assert_eq!(
        t.top_in(Window::Detector, Order::Total, None, 20, |_, _| true),
        before
    );
    // The same numbers as reading the key on its own, which the detector does.
    for s in &before {
        let got = t.get(s.db, &s.key, key_hash(s.db, &s.key)).unwrap();
        assert_eq!(&got, s);
    }
}

#[test]
fn the_long_windows_remember_what_the_detector_forgot() {
    let mut t = Tracker::new(module_defaults(), 0);
    for _ in 0..10_000 {
        rec(&mut t, 0, b"burst", Access::Read, 1.0);
    }
    // Then 10 reads/s of another key for 20 s.
    for tick in 1..=200u64 {
        t.advance(tick * 100, 100);
        rec(&mut t, 0, b"steady", Access::Read, 1.0);
    }
    let first = |w| {
        t.top_in(w, Order::Total, None, 1, |_, _| true)[0]
            .key
            .clone()
    };
    assert_eq!(first(Window::Detector), b"steady");
    assert_eq!(first(Window::Seconds10), b"burst");
    assert_eq!(first(Window::Seconds60), b"burst");
    // In the 60 s window, the mean over the 20 s there were, weighted by e^(-age / 60 s):
    // 10,000 × e^(-1/3) / (60 s × (1 - e^(-1/3))) = 424/s.
    let burst = &t.top_in(Window::Seconds60, Order::Total, None, 1, |_, _| true)[0];
    assert!(close(burst.reads_per_sec, 424.3, 0.01), "{burst:?}");
}

#[test]
fn error_bounds_hold_in_every_window() {
    // A small summary (32 keys) under a Zipf stream over 500 keys whose popular keys move,
    // 1 s ticks for 3,000 s: every window renormalises at least twice (every 32 half-lives).
    let detector_ms = 2_000;
    let mut t = Tracker::new(
        TrackerConfig {
            capacity: 32,
            half_life_ms: detector_ms,
        },
        0,
    );
    let half_life = half_lives(detector_ms).map(|h| h as f64 / 1000.0);
    let mut truth: HashMap<Vec<u8>, [f64; 3]> = HashMap::new();
    let mut rng = StdRng::seed_from_u64(5);
    let zipf = Zipf::new(500.0, 1.1).unwrap();
    let mut checked = 0;
    for tick in 1..=3000u64 {
        let shift = tick / 300;
        for _ in 0..200 {
            let k = key((zipf.sample(&mut rng) as u64 + shift * 37) % 500);
            let weight = f64::from(rng.random_range(1..4u8));
            rec(&mut t, 0, &k, Access::Read, weight);
            for v in truth.entry(k).or_default() {
                *v += weight;
            }
        }
        t.advance(tick * 1000, 0);
        for counts in truth.values_mut() {
            for (v, h) in counts.iter_mut().zip(half_life) {
                *v *= (-1.0 / h).exp2();
            }
        }
        if tick % 50 != 0 {
            continue;
        }
        let age = tick as f64;
        for (w, window) in Window::ALL.into_iter().enumerate() {
            // Rates as the tracker reads them: λ × count, averaged over the age for the long
            // windows.
            let norm = if w == 0 {
                1.0
            } else {
                1.0 - (-age / half_life[w]).exp2()
            };
            let lambda = LN_2 / half_life[w] / norm;
            for s in t.top_in(window, Order::Total, None, usize::MAX, |_, _| true) {
                let exact = truth[&s.key][w] * lambda;
                let counted = s.reads_per_sec + s.writes_per_sec;
                assert!(
                    counted <= exact * (1.0 + 1e-9),
                    "{window:?} at {tick}: {s:?}, {exact}"
                );
                assert!(
                    exact <= (counted + s.error_per_sec) * (1.0 + 1e-9),
                    "{window:?} at {tick}: {s:?}, {exact}"
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 60 * 3 * 32);
    assert!(t.evictions() > 1000, "{}", t.evictions());
    t.assert_valid();
}

#[test]
fn clear_restarts_the_long_windows() {
    let mut t = Tracker::new(module_defaults(), 0);
    for tick in 1..=100u64 {
        rec(&mut t, 0, b"old", Access::Read, 100.0);
        t.advance(tick * 100, 100);
    }
    t.clear();
    // 1,000/s for one second after the clear reads as 1,000/s in every window: the average
    // starts again from the clear.
    for tick in 101..=110u64 {
        rec(&mut t, 0, b"new", Access::Read, 100.0);
        t.advance(tick * 100, 100);
    }
    for w in Window::ALL {
        let s = t.top_in(w, Order::Total, None, 10, |_, _| true);
        assert_eq!(s.len(), 1);
        if w != Window::Detector {
            assert!(close(s[0].reads_per_sec, 1000.0, 0.01), "{w:?}: {s:?}");
        }
    }
}

/// The tracker as the module configures it by default (from the config specs).
fn module_defaults() -> TrackerConfig {
    TrackerConfig {
        capacity: crate::config::CAPACITY.default as usize,
        half_life_ms: crate::config::HALF_LIFE_MS.default as u64,
    }
}
