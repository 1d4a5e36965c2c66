//! The detector's cost per tick: `HotSet::tick` over a full summary, at the default capacity
//! and larger ones. It runs on the server's main thread every `hotkey.tick-ms` (100 ms).
//!
//! ```text
//! cargo bench --bench tick
//! ```

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use hotkey::hot_set::{HotSet, Rules};
use hotkey::tracker::{Access, Tracker, TrackerConfig, key_hash};

fn full_tracker(capacity: usize) -> Tracker {
    let mut t = Tracker::new(
        TrackerConfig {
            capacity,
            half_life_ms: 250,
        },
        0,
    );
    // Every slot taken, a few keys far above the rest (the hot ones).
    for i in 0..capacity as u64 {
        let key = format!("key:{i}").into_bytes();
        let weight = if i < 8 {
            10_000.0
        } else {
            1.0 + (i % 7) as f64
        };
        t.record(0, &key, key_hash(0, &key), Access::Read, weight);
    }
    t
}

fn tick(c: &mut Criterion) {
    let rules = Rules {
        threshold: 1000.0,
        share: 0.01,
        cold_fraction: 0.5,
        cooldown_ms: 2000,
        max_hot: 64,
        cache_ttl_ms: 100,
    };
    let mut group = c.benchmark_group("detector tick");
    for capacity in [4096usize, 65_536] {
        let tracker = full_tracker(capacity);
        let mut set = HotSet::new(rules);
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

criterion_group!(benches, tick);
criterion_main!(benches);
