//! The detector's cost per tick: `HotSet::tick` over a full summary, at the default capacity
//! and larger ones. It runs on the server's main thread every `hotkey.tick-ms` (100 ms).
//!
//! Then the scale of the hot set: with 1, 100 and 1,000 keys hot at once (`hotkey.max-hot`
//! raised to 1,000), a steady tick (every key stays hot, no event), and the tick at which they
//! all enter, with its `hot` events built and encoded as JSON (what the module publishes).
//!
//! ```text
//! cargo bench --bench tick
//! ```

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use hotkey::events::Events;
use hotkey::hot_set::{HotSet, Rules};
use hotkey::tracker::{Access, Tracker, TrackerConfig, key_hash};

const RULES: Rules = Rules {
    threshold: 1000.0,
    share: 0.01,
    cold_fraction: 0.5,
    cooldown_ms: 1000,
    max_hot: 64,
    cache_ttl_ms: 100,
};

/// A summary with every slot taken, its first `hot` keys far above the rest.
fn full_tracker(capacity: usize, hot: u64) -> Tracker {
    let mut t = Tracker::new(
        TrackerConfig {
            capacity,
            half_life_ms: 250,
        },
        0,
    );
    for i in 0..capacity as u64 {
        let key = format!("key:{i}").into_bytes();
        let weight = if i < hot {
            10_000.0
        } else {
            1.0 + (i % 7) as f64
        };
        t.record(0, &key, key_hash(0, &key), Access::Read, weight);
    }
    t
}

fn tick(c: &mut Criterion) {
    let mut group = c.benchmark_group("detector tick");
    for capacity in [4096usize, 65_536] {
        let tracker = full_tracker(capacity, 8);
        let mut set = HotSet::new(RULES);
        set.tick(0, &tracker, true);
        let mut now = 0;
        group.bench_with_input(BenchmarkId::from_parameter(capacity), &tracker, |b, t| {
            b.iter(|| {
                now += 100;
                set.tick(now, t, true)
            })
        });
    }
    group.finish();
}

fn hot_keys(c: &mut Criterion) {
    let rules = Rules {
        share: 0.0,
        max_hot: 1000,
        ..RULES
    };
    let mut steady = c.benchmark_group("tick with N keys hot (capacity 4096)");
    for hot in [1u64, 100, 1000] {
        let tracker = full_tracker(4096, hot);
        let mut set = HotSet::new(rules);
        assert_eq!(set.tick(0, &tracker, true).len(), hot as usize);
        let mut now = 0;
        steady.bench_with_input(BenchmarkId::from_parameter(hot), &tracker, |b, t| {
            b.iter(|| {
                now += 100;
                set.tick(now, t, true)
            })
        });
    }
    steady.finish();
    let mut entering = c.benchmark_group("tick where N keys enter, events encoded");
    for hot in [1u64, 100, 1000] {
        let tracker = full_tracker(4096, hot);
        entering.bench_with_input(BenchmarkId::from_parameter(hot), &tracker, |b, t| {
            b.iter_batched(
                || (HotSet::new(rules), Events::new()),
                |(mut set, mut events)| {
                    let changes = set.tick(0, t, true);
                    let bytes: usize = events
                        .changes(&changes)
                        .iter()
                        .map(|m| m.to_json().len())
                        .sum();
                    assert_eq!(changes.len(), hot as usize);
                    bytes
                },
                BatchSize::SmallInput,
            )
        });
    }
    entering.finish();
}

criterion_group!(benches, tick, hot_keys);
criterion_main!(benches);
