//! The tracker: a bounded heavy-hitter summary of key accesses with exponential time decay.
//!
//! Pure Rust, no server types. It keeps, per key (database number + binary key bytes), a
//! decayed read rate, a decayed write rate and an upper bound on the error of the two, in
//! memory fixed by `capacity` whatever the number of distinct keys.
//!
//! # Layout
//! - `space_saving`: weighted Space-Saving over fixed slots (the error guarantee).
//! - `index`: open-addressing index from key hash to slot (the O(1) lookup), with the
//!   admission counters an untracked key must grow in before it enters the summary.
//! - `heap`: indexed min-heap of slots by count (the O(1) minimum, O(log n) update).
//! - `decay`: forward decay, so the hot path never calls `exp`.
//!
//! # Windows
//! Every tracked key has rates in three windows ([`Window`]): the detector's (the configured
//! half-life, 250 ms by default: fast enough to detect a surge within a tick or two) and two
//! long ones, exponentially weighted over time constants of 10 s and 60 s like load averages,
//! which `HOTKEY.TOP` ranks by so that a person reading it sees a steady ranking. Each window
//! is a forward-decay clock of its own: an access adds its weight times each clock's cached
//! scale (one multiply-add per window), and only the timer touches the clocks. Admission and
//! eviction go by the detector's counts alone, so detection is what it was; each window's
//! error bound comes from admission counters kept in that window's units.
//! - `tests`: the tracker's behaviour as a whole.
//!
//! Space-Saving was chosen over HeavyKeeper by measurement: see `benches/tracker.rs` and
//! the book's Performance page, "Choosing the tracker algorithm".
//!
//! # Guarantees
//! For a tracked key, `reads_per_sec + writes_per_sec` is what was counted since the key
//! entered the summary, so it never overestimates, and the true (decayed) rate is at most
//! that plus `error_per_sec`. A key whose true rate exceeds twice the smallest total in the
//! summary is always tracked (an untracked key must outgrow that bar in the admission sketch
//! before it replaces the lightest key; see `space_saving`). With sampling (`weight` > 1) these hold for the weighted
//! stream the caller records.

mod decay;
mod heap;
mod index;
mod space_saving;
#[cfg(test)]
mod tests;

use decay::Decay;
use space_saving::{LongCounts, Slot, SpaceSaving};

/// Capacity is clamped to this many keys so slot numbers fit the index's 32-bit field
/// and an absurd configuration cannot ask for an impossible allocation.
pub const MAX_CAPACITY: usize = 1 << 24;

/// Weights are clamped to this, so that counts stay far from the f64 range (2^40 times
/// the decay scale, at most 2^32, per access).
pub const MAX_WEIGHT: f64 = (1u64 << 40) as f64;

pub use hotkey_protocol::command_table::Access;

/// Number of windows besides the detector's.
pub(crate) const LONG_WINDOWS: usize = 2;

/// The time constants of the long windows, in milliseconds: a long window's rate is the mean
/// rate weighted by `e^(-age / τ)`.
const LONG_TIME_CONSTANTS_MS: [u64; LONG_WINDOWS] = [10_000, 60_000];

/// The window a rate is read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The detector's: the configured half-life (`hotkey.half-life-ms`).
    Detector,
    /// Exponentially weighted over a time constant of 10 s.
    Seconds10,
    /// Exponentially weighted over a time constant of 60 s.
    Seconds60,
}

impl Window {
    /// Every window, shortest first.
    pub const ALL: [Window; 3] = [Window::Detector, Window::Seconds10, Window::Seconds60];

    /// The window's name in `HOTKEY.TOP … WINDOW n`: 1 for the detector's, whatever its
    /// half-life, since it reacts within about a second at any sensible setting.
    pub fn seconds(self) -> u64 {
        match self {
            Window::Detector => 1,
            Window::Seconds10 => 10,
            Window::Seconds60 => 60,
        }
    }

    /// The window named `seconds` (1, 10 or 60).
    pub fn from_seconds(seconds: u64) -> Option<Window> {
        Window::ALL.into_iter().find(|w| w.seconds() == seconds)
    }

    /// Its place among the long windows, `None` for the detector's.
    fn long(self) -> Option<usize> {
        match self {
            Window::Detector => None,
            Window::Seconds10 => Some(0),
            Window::Seconds60 => Some(1),
        }
    }
}

/// The half-life in milliseconds of a time constant of `tau_ms`: τ ln 2.
fn half_life_of(tau_ms: u64) -> u64 {
    (tau_ms as f64 * std::f64::consts::LN_2).round() as u64
}

/// What `top` orders by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Reads + writes per second.
    Total,
    /// Reads per second.
    Reads,
    /// Writes per second.
    Writes,
}

/// How to build a [`Tracker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackerConfig {
    /// Keys the summary holds; fixes its memory. Clamped to [`MAX_CAPACITY`].
    pub capacity: usize,
    /// Half-life of the exponential decay of the rates, in milliseconds (0 is taken as 1).
    pub half_life_ms: u64,
}

/// The rates of one tracked key, in operations per second.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyStats {
    /// Database number.
    pub db: u32,
    /// Key name, binary-safe.
    pub key: Vec<u8>,
    /// Decayed read rate counted since the key entered the summary.
    pub reads_per_sec: f64,
    /// Decayed write rate counted since the key entered the summary.
    pub writes_per_sec: f64,
    /// Rate the key may have had before it entered the summary: the true total rate lies
    /// between `reads_per_sec + writes_per_sec` and that plus `error_per_sec`.
    pub error_per_sec: f64,
}

/// A key's counted reads, writes and error in `window`'s stored units.
fn counts_in(window: Window, slot: &Slot, long: &LongCounts) -> (f64, f64, f64) {
    match window.long() {
        None => (slot.reads, slot.writes, slot.error),
        Some(w) => (long.reads[w], long.writes[w], long.error[w]),
    }
}

/// The hash the tracker indexes a key by: xxh3 of the key bytes seeded with the database
/// number, so equal names in different databases are different keys. Computed once per
/// access by the caller and passed to [`Tracker::record`].
pub fn key_hash(db: u32, key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(key, u64::from(db))
}

/// A fixed-size summary of the heaviest keys with decayed read and write rates.
///
/// Every method is panic-free for any input; `record` is O(1) for a tracked key, O(log
/// capacity) at worst, and allocates nothing once warmed up.
#[derive(Debug, Clone)]
pub struct Tracker {
    summary: SpaceSaving,
    decay: Decay,
    /// The long windows' clocks, averaged over their age (see [`Decay::averaged`]).
    long: [Decay; LONG_WINDOWS],
    /// Every weight recorded, tracked key or not, in the same decayed units: the node's rate.
    total: f64,
}

impl Tracker {
    /// An empty tracker whose clock starts at `now_ms` (any monotonic milliseconds).
    pub fn new(config: TrackerConfig, now_ms: u64) -> Tracker {
        Tracker {
            summary: SpaceSaving::new(config.capacity.min(MAX_CAPACITY)),
            decay: Decay::new(config.half_life_ms, now_ms),
            long: LONG_TIME_CONSTANTS_MS.map(|tau| Decay::averaged(half_life_of(tau), now_ms)),
            total: 0.0,
        }
    }

    /// Counts one access to `key` in `db` with sampling `weight` (normally ≥ 1). `hash`
    /// must be [`key_hash`]`(db, key)`. A weight that is NaN, zero or negative is ignored;
    /// one above [`MAX_WEIGHT`] counts as `MAX_WEIGHT`.
    #[inline]
    pub fn record(&mut self, db: u32, key: &[u8], hash: u64, access: Access, weight: f64) {
        if weight.is_nan() || weight <= 0.0 {
            return;
        }
        let weight = weight.min(MAX_WEIGHT);
        let long = std::array::from_fn(|w| weight * self.long[w].record_scale());
        let weight = weight * self.decay.record_scale();
        self.total += weight;
        self.summary.add(db, key, hash, access, weight, long);
    }

    /// Moves the decay clock to `now_ms` (called from a timer, about every 100 ms).
    /// `period_ms` is about how long until the next call: accesses recorded until then are
    /// weighted as made half of it from now, their mean time, so that rates read at the next
    /// call are not biased low (0 weights them as made now).
    /// Renormalises every count when the forward-decay scale grows past 2^32, which is
    /// O(capacity) but happens once every 32 half-lives. A clock that goes backwards
    /// is taken as standing still.
    pub fn advance(&mut self, now_ms: u64, period_ms: u64) {
        if let Some(factor) = self.decay.advance(now_ms, period_ms / 2) {
            self.rescale(factor);
        }
        for (w, decay) in self.long.iter_mut().enumerate() {
            if let Some(factor) = decay.advance(now_ms, period_ms / 2) {
                self.summary.scale_long(w, factor);
            }
        }
    }

    /// Reads rates as of `now_ms` (a command between two ticks) until the next
    /// [`Tracker::advance`], which reads them as of its own time again.
    pub fn read_at(&mut self, now_ms: u64) {
        self.decay.read_at(now_ms);
        for decay in &mut self.long {
            decay.read_at(now_ms);
        }
    }

    fn rescale(&mut self, factor: f64) {
        self.summary.scale(factor);
        self.total *= factor;
    }

    /// The decayed rate of every access recorded, tracked keys or not: the node's traffic in
    /// key accesses per second, on the same scale as the keys' rates.
    pub fn total_per_sec(&self) -> f64 {
        self.decay.per_sec(self.total)
    }

    /// Calls `f(db, key, hash, reads_per_sec, writes_per_sec)` for every tracked key whose
    /// counted rate (reads + writes) is at least `min_per_sec`. O(capacity), no allocation.
    pub fn scan(&self, min_per_sec: f64, mut f: impl FnMut(u32, &[u8], u64, f64, f64)) {
        let min = self.decay.count_of(min_per_sec);
        for (slot, _) in self.summary.iter() {
            if slot.reads + slot.writes >= min {
                f(
                    slot.db,
                    &slot.key,
                    slot.hash,
                    self.decay.per_sec(slot.reads),
                    self.decay.per_sec(slot.writes),
                );
            }
        }
    }

    /// The counted read and write rates of one key, if tracked. `hash` must be
    /// [`key_hash`]`(db, key)`. Unlike [`Tracker::get`], copies nothing.
    pub fn rates(&self, db: u32, key: &[u8], hash: u64) -> Option<(f64, f64)> {
        self.summary.get(db, key, hash).map(|slot| {
            (
                self.decay.per_sec(slot.reads),
                self.decay.per_sec(slot.writes),
            )
        })
    }

    /// [`Tracker::top_in`] the detector's window.
    pub fn top(
        &self,
        order: Order,
        db: Option<u32>,
        limit: usize,
        accept: impl FnMut(u32, &[u8]) -> bool,
    ) -> Vec<KeyStats> {
        self.top_in(Window::Detector, order, db, limit, accept)
    }

    /// The tracked keys, highest rate in `window` first by `order`, with their rates and
    /// error in that window; only those of `db` when given and only those `accept(db, key)`
    /// allows, at most `limit`. `accept` is called on the candidates in order and no more
    /// once `limit` are accepted, so a costly check (ACL) runs on as few keys as possible.
    /// Ties are broken by db and key for a stable reply.
    pub fn top_in(
        &self,
        window: Window,
        order: Order,
        db: Option<u32>,
        limit: usize,
        mut accept: impl FnMut(u32, &[u8]) -> bool,
    ) -> Vec<KeyStats> {
        if limit == 0 {
            return Vec::new();
        }
        let mut candidates: Vec<(f64, &Slot, &LongCounts)> = self
            .summary
            .entries()
            .filter(|(slot, _)| db.is_none_or(|db| slot.db == db))
            .map(|(slot, long)| {
                let (reads, writes, _) = counts_in(window, slot, long);
                let value = match order {
                    Order::Total => reads + writes,
                    Order::Reads => reads,
                    Order::Writes => writes,
                };
                (value, slot, long)
            })
            .collect();
        candidates.sort_unstable_by(|a, b| {
            b.0.total_cmp(&a.0)
                .then_with(|| a.1.db.cmp(&b.1.db))
                .then_with(|| a.1.key.cmp(&b.1.key))
        });
        let mut out = Vec::with_capacity(limit.min(candidates.len()));
        for (_, slot, long) in candidates {
            if accept(slot.db, &slot.key) {
                let (reads, writes, error) = counts_in(window, slot, long);
                let decay = window.long().map_or(&self.decay, |w| &self.long[w]);
                out.push(KeyStats {
                    db: slot.db,
                    key: slot.key.clone(),
                    reads_per_sec: decay.per_sec(reads),
                    writes_per_sec: decay.per_sec(writes),
                    error_per_sec: decay.per_sec(error),
                });
                if out.len() >= limit {
                    break;
                }
            }
        }
        out
    }

    /// The rates of one key, if it is tracked. `hash` must be [`key_hash`]`(db, key)`.
    pub fn get(&self, db: u32, key: &[u8], hash: u64) -> Option<KeyStats> {
        self.summary.get(db, key, hash).map(|slot| self.stats(slot))
    }

    fn stats(&self, slot: &Slot) -> KeyStats {
        KeyStats {
            db: slot.db,
            key: slot.key.clone(),
            reads_per_sec: self.decay.per_sec(slot.reads),
            writes_per_sec: self.decay.per_sec(slot.writes),
            error_per_sec: self.decay.per_sec(slot.error),
        }
    }

    /// How many tracked keys have lost their slot to a heavier one: the summary's churn.
    pub fn evictions(&self) -> u64 {
        self.summary.evictions()
    }

    /// The number of keys tracked now.
    pub fn len(&self) -> usize {
        self.summary.len()
    }

    /// True when no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.summary.len() == 0
    }

    /// The most keys the summary holds.
    pub fn capacity(&self) -> usize {
        self.summary.capacity()
    }

    /// The half-life of the decay, in milliseconds.
    pub fn half_life_ms(&self) -> u64 {
        self.decay.half_life_ms()
    }

    /// Heap bytes held: the slot array, the long windows' counts, the index, the heap and the
    /// capacity of every key buffer (allocator overhead aside). Constant once every slot has
    /// held its longest key.
    pub fn memory_bytes(&self) -> usize {
        self.summary.memory_bytes()
    }

    /// Changes the half-life (0 is taken as 1 ms). Every rate is unchanged at this instant
    /// and decays at the new pace from now on. O(capacity).
    pub fn set_half_life_ms(&mut self, half_life_ms: u64) {
        let factor = self.decay.set_half_life_ms(half_life_ms);
        self.rescale(factor);
    }

    /// Changes the capacity (clamped to [`MAX_CAPACITY`]), keeping the heaviest keys and
    /// their counts. Reallocates; O(capacity log capacity).
    pub fn resize(&mut self, capacity: usize) {
        self.summary.resize(capacity.min(MAX_CAPACITY));
    }

    /// Forgets every key, keeping the capacity and the half-life.
    pub fn clear(&mut self) {
        self.summary.clear();
        self.decay.reset();
        for decay in &mut self.long {
            decay.reset();
        }
        self.total = 0.0;
    }

    #[cfg(test)]
    fn assert_valid(&self) {
        self.summary.assert_valid();
    }
}
