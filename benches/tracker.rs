//! Picks the tracker algorithm by measurement: our Space-Saving tracker against
//! HeavyKeeper (the `heavykeeper` crate's `TopK`, the paper's algorithm, and its
//! `CuckooTopK` variant) on Zipf streams over a million distinct keys.
//!
//! `cargo bench --bench tracker` prints Markdown tables of accuracy (recall of the true
//! top 10 / top 100, relative count error of the true top 10), bytes held and warm update
//! rate, then lets criterion time updates per second on each stream and the cost of one
//! access to an already tracked key. Run without `--bench` (as `cargo test --all-targets`
//! does) it only smoke-tests on a small stream.
//!
//! Fairness:
//! - Every candidate sees the same key bytes `key:<rank>`, laid end to end in access order
//!   as a server reads them off its input (so no candidate pays cache misses for fetching
//!   the bytes), and hashes them itself: our caller's `key_hash` is part of the cost.
//! - Same memory budget: HeavyKeeper with k = 100 gets the most bytes not above what
//!   Space-Saving holds, with a power-of-two width (its fast path) and the depth that
//!   fills the budget best. Two budgets: Space-Saving with 4096 slots (the module's
//!   default) and with 512 (tight, where the algorithms start to differ).
//! - Same capacity: HeavyKeeper with k = 4096 reports as many keys as Space-Saving holds;
//!   its top-k queue alone exceeds the budget, so it uses the crate README's 4096 × 4
//!   sketch and its bytes are shown as they are.
//! - No decay: the tracker gets a half-life of 2^40 ms and no `advance`.

use std::collections::HashSet;
use std::f64::consts::LN_2;
use std::hint::black_box;
use std::ops::Range;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use heavykeeper::{CuckooTopK, TopK};
use hotkey::tracker::{Access, Order, Tracker, TrackerConfig, key_hash};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Zipf};

const EXPONENTS: [f64; 3] = [0.9, 1.1, 1.3];
const CAPACITY: usize = 4096;
const TIGHT_CAPACITY: usize = 512;
const HALF_LIFE_MS: u64 = 1 << 40;
const SEED: u64 = 0x5eed;
const HK_K: usize = 100;
const HK_DECAY: f64 = 0.9;

/// Sizes of one run: the full comparison, or a smoke test.
struct Scale {
    distinct: usize,
    stream: usize,
    timed_slice: usize,
}

const FULL: Scale = Scale {
    distinct: 1_000_000,
    stream: 2_000_000,
    timed_slice: 200_000,
};

const SMOKE: Scale = Scale {
    distinct: 10_000,
    stream: 20_000,
    timed_slice: 2_000,
};

fn key_of(id: u32) -> Vec<u8> {
    format!("key:{}", u64::from(id) + 1).into_bytes()
}

fn id_of(key: &[u8]) -> Option<u32> {
    let n: u32 = std::str::from_utf8(key.strip_prefix(b"key:")?)
        .ok()?
        .parse()
        .ok()?;
    n.checked_sub(1)
}

/// The key bytes of a stream of accesses, end to end.
struct Stream {
    bytes: Vec<u8>,
    ends: Vec<u32>,
}

impl Stream {
    fn new(ids: &[u32]) -> Stream {
        let mut bytes = Vec::new();
        let mut ends = Vec::with_capacity(ids.len());
        for &id in ids {
            bytes.extend_from_slice(&key_of(id));
            ends.push(bytes.len() as u32);
        }
        Stream { bytes, ends }
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn keys(&self, range: Range<usize>) -> impl Iterator<Item = &[u8]> + '_ {
        let mut start = range.start.checked_sub(1).map_or(0, |i| self.ends[i]) as usize;
        self.ends[range].iter().map(move |&end| {
            let key = &self.bytes[start..end as usize];
            start = end as usize;
            key
        })
    }
}

/// One Zipf stream and its exact counts.
struct Workload {
    exponent: f64,
    stream: Stream,
    exact: Vec<u64>,
}

impl Workload {
    fn new(exponent: f64, scale: &Scale) -> Workload {
        let mut rng = StdRng::seed_from_u64(SEED ^ exponent.to_bits());
        let zipf = Zipf::new(scale.distinct as f64, exponent).expect("valid Zipf parameters");
        let mut exact = vec![0u64; scale.distinct];
        let ids: Vec<u32> = (0..scale.stream)
            .map(|_| {
                let id = (zipf.sample(&mut rng) as usize).clamp(1, scale.distinct) - 1;
                exact[id] += 1;
                id as u32
            })
            .collect();
        Workload {
            exponent,
            stream: Stream::new(&ids),
            exact,
        }
    }

    /// Ids whose exact count is at least that of the k-th heaviest (ties count as hits).
    fn true_top(&self, k: usize) -> HashSet<u32> {
        let mut counts = self.exact.clone();
        counts.sort_unstable_by(|a, b| b.cmp(a));
        let threshold = counts[k.min(counts.len()) - 1];
        (0..self.exact.len() as u32)
            .filter(|&id| self.exact[id as usize] >= threshold)
            .collect()
    }

    /// The k heaviest ids, heaviest first.
    fn heaviest(&self, k: usize) -> Vec<u32> {
        let mut ids: Vec<u32> = (0..self.exact.len() as u32).collect();
        ids.sort_unstable_by(|&a, &b| self.exact[b as usize].cmp(&self.exact[a as usize]));
        ids.truncate(k);
        ids
    }
}

/// What the comparison needs from a heavy-hitter summary.
trait Candidate {
    fn add_all(&mut self, stream: &Stream, range: Range<usize>);
    /// Ids of the k keys it ranks highest, highest first.
    fn top(&self, k: usize) -> Vec<u32>;
    /// Its count estimate for a key (0 if it has none).
    fn estimate(&self, key: &[u8]) -> f64;
    fn bytes(&self) -> usize;
}

struct SpaceSaving(Tracker);

impl SpaceSaving {
    fn new(capacity: usize) -> SpaceSaving {
        SpaceSaving(Tracker::new(
            TrackerConfig {
                capacity,
                half_life_ms: HALF_LIFE_MS,
            },
            0,
        ))
    }
}

impl Candidate for SpaceSaving {
    fn add_all(&mut self, stream: &Stream, range: Range<usize>) {
        for key in stream.keys(range) {
            self.0.record(0, key, key_hash(0, key), Access::Read, 1.0);
        }
    }
    fn top(&self, k: usize) -> Vec<u32> {
        self.0
            .top(Order::Total, None, k, |_, _| true)
            .iter()
            .filter_map(|s| id_of(&s.key))
            .collect()
    }
    /// The counted part (what `HOTKEY.TOP` shows): no time passes, so count = rate / λ.
    fn estimate(&self, key: &[u8]) -> f64 {
        let lambda = LN_2 * 1000.0 / HALF_LIFE_MS as f64;
        self.0
            .get(0, key, key_hash(0, key))
            .map_or(0.0, |s| (s.reads_per_sec + s.writes_per_sec) / lambda)
    }
    fn bytes(&self) -> usize {
        self.0.memory_bytes()
    }
}

/// Both HeavyKeeper variants of the crate have the same API.
macro_rules! heavykeeper_candidate {
    ($t:ty) => {
        impl Candidate for $t {
            fn add_all(&mut self, stream: &Stream, range: Range<usize>) {
                for key in stream.keys(range) {
                    self.add(key, 1);
                }
            }
            fn top(&self, k: usize) -> Vec<u32> {
                let list = self.list();
                list.iter().take(k).filter_map(|n| id_of(&n.item)).collect()
            }
            fn estimate(&self, key: &[u8]) -> f64 {
                self.count(key) as f64
            }
            fn bytes(&self) -> usize {
                self.mem_bytes(|v| v.capacity())
            }
        }
    };
}

heavykeeper_candidate!(TopK<Vec<u8>>);
heavykeeper_candidate!(CuckooTopK<Vec<u8>>);

type Build = Box<dyn Fn() -> Box<dyn Candidate>>;

/// A candidate configuration: a name and how to build a fresh instance.
struct Contender {
    name: String,
    build: Build,
}

fn contender(name: String, build: impl Fn() -> Box<dyn Candidate> + 'static) -> Contender {
    Contender {
        name,
        build: Box::new(build),
    }
}

/// The measurements of one contender on one workload.
struct Row {
    name: String,
    exponent: f64,
    bytes: usize,
    recall10: f64,
    recall100: f64,
    error10: f64,
    updates_per_sec: f64,
}

/// Runs the whole stream through a fresh instance, measures it, and returns it warm.
fn run(contender: &Contender, w: &Workload, scale: &Scale) -> (Row, Box<dyn Candidate>) {
    let mut c = (contender.build)();
    c.add_all(&w.stream, 0..w.stream.len());
    let recall = |k: usize| {
        let truth = w.true_top(k);
        let hits = c.top(k).iter().filter(|id| truth.contains(id)).count();
        hits as f64 / k as f64
    };
    let heaviest = w.heaviest(10);
    let error10 = heaviest
        .iter()
        .map(|&id| {
            let exact = w.exact[id as usize] as f64;
            (c.estimate(&key_of(id)) - exact).abs() / exact
        })
        .sum::<f64>()
        / heaviest.len() as f64;
    let (recall10, recall100, bytes) = (recall(10), recall(100), c.bytes());
    // Warm rate: median of five passes over the start of the stream it has already seen.
    let mut rates: Vec<f64> = (0..5)
        .map(|_| {
            let start = Instant::now();
            c.add_all(&w.stream, 0..scale.timed_slice);
            scale.timed_slice as f64 / start.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    let row = Row {
        name: contender.name.clone(),
        exponent: w.exponent,
        bytes,
        recall10,
        recall100,
        error10,
        updates_per_sec: rates[2],
    };
    (row, c)
}

/// The power-of-two width and depth whose total bytes come closest to `budget` without
/// exceeding it (the wider on a tie), given the bytes of an empty sketch and of the queue.
fn fit(
    budget: usize,
    queue_bytes: usize,
    depths: std::ops::RangeInclusive<usize>,
    empty_bytes: impl Fn(usize, usize) -> usize,
) -> (usize, usize) {
    let mut best = (256, *depths.start());
    let mut best_bytes = 0;
    for shift in 8..=16 {
        for depth in depths.clone() {
            let bytes = empty_bytes(1 << shift, depth) + queue_bytes;
            if bytes <= budget && bytes >= best_bytes {
                best = (1 << shift, depth);
                best_bytes = bytes;
            }
        }
    }
    best
}

fn hk(k: usize, width: usize, depth: usize) -> TopK<Vec<u8>> {
    TopK::with_seed(k, width, depth, HK_DECAY, SEED)
}

fn cuckoo(k: usize, width: usize, depth: usize) -> CuckooTopK<Vec<u8>> {
    CuckooTopK::with_seed(k, width, depth, HK_DECAY, SEED)
}

/// Bytes of the HeavyKeeper top-k queues once full of keys, measured on one stream.
struct QueueBytes {
    hk: usize,
    cuckoo: usize,
}

impl QueueBytes {
    fn measure(w: &Workload) -> QueueBytes {
        let queue = |empty: usize, mut c: Box<dyn Candidate>| {
            c.add_all(&w.stream, 0..w.stream.len());
            c.bytes().saturating_sub(empty)
        };
        QueueBytes {
            hk: queue(hk(HK_K, 1024, 2).bytes(), Box::new(hk(HK_K, 1024, 2))),
            cuckoo: queue(
                cuckoo(HK_K, 1024, 2).bytes(),
                Box::new(cuckoo(HK_K, 1024, 2)),
            ),
        }
    }
}

/// Space-Saving with `capacity` slots against HeavyKeeper at the same bytes.
fn contenders(capacity: usize, budget: usize, queues: &QueueBytes) -> Vec<Contender> {
    let (hk_w, hk_d) = fit(budget, queues.hk, 2..=6, |w, d| hk(HK_K, w, d).bytes());
    let (ck_w, ck_d) = fit(budget, queues.cuckoo, 2..=8, |w, d| {
        cuckoo(HK_K, w, d).bytes()
    });
    let mut all = vec![
        contender(
            format!("Space-Saving (ours), capacity {capacity}"),
            move || Box::new(SpaceSaving::new(capacity)),
        ),
        contender(
            format!("HeavyKeeper TopK, k={HK_K}, {hk_w}×{hk_d}"),
            move || Box::new(hk(HK_K, hk_w, hk_d)),
        ),
        contender(
            format!("HeavyKeeper CuckooTopK, k={HK_K}, {ck_w}×(1+{ck_d})"),
            move || Box::new(cuckoo(HK_K, ck_w, ck_d)),
        ),
    ];
    if capacity == CAPACITY {
        all.push(contender(
            format!("HeavyKeeper TopK, k={CAPACITY}, 4096×4 (same capacity)"),
            || Box::new(hk(CAPACITY, 4096, 4)),
        ));
    }
    all
}

fn print_table(title: &str, rows: &[Row]) {
    println!();
    println!("{title}");
    println!();
    println!(
        "| candidate | Zipf s | bytes held | top-10 recall | top-100 recall | \
         top-10 rel. error | M updates/s |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for r in rows {
        println!(
            "| {} | {:.1} | {} | {:.2} | {:.2} | {:.3}% | {:.1} |",
            r.name,
            r.exponent,
            r.bytes,
            r.recall10,
            r.recall100,
            100.0 * r.error10,
            r.updates_per_sec / 1e6
        );
    }
    println!();
}

fn compare(c: &mut Criterion) {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let scale = if benchmarking { &FULL } else { &SMOKE };
    let workloads: Vec<Workload> = EXPONENTS.iter().map(|&s| Workload::new(s, scale)).collect();
    let queues = QueueBytes::measure(&workloads[1]);

    let mut warm: Vec<(String, f64, Box<dyn Candidate>)> = Vec::new();
    for capacity in [CAPACITY, TIGHT_CAPACITY] {
        // The budget: the most Space-Saving holds on any of the streams.
        let budget = workloads
            .iter()
            .map(|w| {
                let mut ss = SpaceSaving::new(capacity);
                ss.add_all(&w.stream, 0..w.stream.len());
                ss.bytes()
            })
            .max()
            .unwrap_or(0);
        let contenders = contenders(capacity, budget, &queues);
        let mut rows = Vec::new();
        for w in &workloads {
            for contender in &contenders {
                let (row, candidate) = run(contender, w, scale);
                if capacity == CAPACITY {
                    warm.push((contender.name.clone(), w.exponent, candidate));
                }
                rows.push(row);
            }
        }
        let title = format!(
            "Budget {budget} bytes (Space-Saving with {capacity} slots); Zipf streams of {} \
             accesses over {} distinct keys; warm updates/s = median of 5 passes over {}",
            scale.stream, scale.distinct, scale.timed_slice
        );
        print_table(&title, &rows);
    }

    let mut group = c.benchmark_group("updates");
    group.throughput(Throughput::Elements(scale.timed_slice as u64));
    for (name, exponent, candidate) in &mut warm {
        let Some(w) = workloads.iter().find(|w| w.exponent == *exponent) else {
            continue;
        };
        let id = BenchmarkId::new(name.as_str(), format!("zipf {exponent}"));
        group.bench_function(id, |b| {
            b.iter(|| candidate.add_all(black_box(&w.stream), 0..scale.timed_slice))
        });
    }
    group.finish();

    // The hot path proper: one access to a key that is already tracked.
    let hottest = Stream::new(&[0; 1000]);
    let mut group = c.benchmark_group("tracked key");
    group.throughput(Throughput::Elements(hottest.len() as u64));
    for (name, exponent, candidate) in &mut warm {
        if *exponent == 1.1 {
            group.bench_function(name.as_str(), |b| {
                b.iter(|| candidate.add_all(black_box(&hottest), 0..hottest.len()))
            });
        }
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .without_plots()
}

criterion_group! {
    name = benches;
    config = config();
    targets = compare
}
criterion_main!(benches);
