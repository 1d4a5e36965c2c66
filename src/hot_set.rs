//! The hot set: which keys are hot now, decided on each tick from the tracker's rates, and
//! the changes to announce. Pure Rust: no server types.
//!
//! A key **enters** when its rate — reads + writes, reads that routers reported serving
//! elsewhere included — reaches the *entry level*, `max(hot-threshold, hot-share × node
//! rate)`. It **leaves** only after its traffic has stayed below the *exit level*
//! (`cold-fraction × entry level`) for `cooldown-ms`: a key hovering around the entry level
//! enters once and stays, instead of flapping. Pinned keys are hot whatever their rate.
//!
//! The rate is a decayed one, so it trails the traffic: after a step from nothing to 5× the
//! entry level it reaches that level only after `0.32 × half-life`, and after the traffic stops
//! it takes `3.3 × half-life` to fall from there to the exit level. So each tick also reads a
//! key's **load**, its mean traffic since the last reading, from the two rates:
//! `rate_now = kept × rate_before + (1 − kept) × load`, with `kept = 2^(−elapsed / half-life)`.
//! A key that had at most half the entry level and whose load reached [`SURGE_LOAD`] × the
//! entry level enters at once (a surge: its rate will follow within a tick or two); a hot key's cool-down starts when its load falls below
//! the exit level, rather than when its decayed rate does.
//!
//! A hot key is *read-hot* when its reads alone reach the exit level, *write-hot* likewise for
//! writes (at least one of the two, by the larger rate). Both flags only rise while the key
//! is hot: a key that was written hard once keeps its cache TTL at 0 until it cools down,
//! since a router cannot tell a pause in writes from their end.

use hotkey_protocol::cluster::{SlotRange, key_slot, serves};
use hotkey_protocol::{Advice, ReadsTo};
use rustc_hash::FxHashMap;

use crate::tracker::Tracker;

/// The detector's settings (the `hotkey.*` configs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rules {
    /// Operations per second a key must reach; 0 = not used.
    pub threshold: f64,
    /// Share of the node's key accesses a key must reach; 0 = not used.
    pub share: f64,
    /// The exit level as a fraction of the entry level, in (0, 1].
    pub cold_fraction: f64,
    /// How long a key must stay below the exit level to leave.
    pub cooldown_ms: u64,
    /// The most keys the hot set holds.
    pub max_hot: usize,
    /// The cache TTL advised for read-hot keys that are not write-hot.
    pub cache_ttl_ms: u64,
}

/// A rate move by this factor (either way) since the last announcement is worth an `update`.
const MOVED_FACTOR: f64 = 2.0;

/// A key whose load since the last reading reached this many times the entry level enters
/// without waiting for its decayed rate. A key at a steady 0.8× the entry level reads a load
/// that high only if a tick period's count is more than twice its mean.
const SURGE_LOAD: f64 = 1.5;

/// A surge is a key rising from at most this share of the entry level. A key already near the
/// entry level enters by its decayed rate, which one period's burst (a client catching up
/// after a stall) cannot push over it.
const SURGE_FROM: f64 = 0.5;

/// The rate, as a share of the entry level, from which a key not hot has its rate kept for the
/// next reading. A key below it had at most that rate, which bounds its load from below.
const SURGE_FLOOR: f64 = 0.1;

/// A load is read over at least this many half-lives (50 ms at the default 250 ms): ticks
/// closer together (a tick forced by a replica event, `tick-ms` below it) keep the reading
/// before, since the few accesses of a shorter period say little.
const MIN_READING_HALF_LIVES: f64 = 0.2;

/// A detected key replaces the weakest detected one in a full hot set only when its rate is
/// this many times that key's, so two keys of similar rates do not take turns.
const REPLACE_FACTOR: f64 = 2.0;

/// One key of the hot set.
#[derive(Debug, Clone)]
pub struct HotEntry {
    pub db: u32,
    pub key: Vec<u8>,
    pub reads_per_sec: f64,
    pub writes_per_sec: f64,
    pub read_hot: bool,
    pub write_hot: bool,
    /// Pinned by `HOTKEY.PIN`; `pin_until_ms` None = until unpinned.
    pub pinned: bool,
    pub pin_until_ms: Option<u64>,
    below_since_ms: Option<u64>,
    /// Reads + writes per second at the last load reading.
    rate_at_reading: f64,
    /// The rate and advice last announced, None before the `hot` event.
    announced: Option<(f64, Advice)>,
}

impl HotEntry {
    fn new(db: u32, key: &[u8], (reads, writes): (f64, f64)) -> HotEntry {
        HotEntry {
            db,
            key: key.to_vec(),
            reads_per_sec: reads,
            writes_per_sec: writes,
            read_hot: false,
            write_hot: false,
            pinned: false,
            pin_until_ms: None,
            below_since_ms: None,
            rate_at_reading: reads + writes,
            announced: None,
        }
    }

    pub fn total_per_sec(&self) -> f64 {
        self.reads_per_sec + self.writes_per_sec
    }

    /// Raises the read/write flags by the rates (see the module doc).
    fn classify(&mut self, exit: f64) {
        self.read_hot |= self.pinned || self.reads_per_sec >= exit;
        self.write_hot |= self.writes_per_sec >= exit;
        if !self.read_hot && !self.write_hot {
            if self.reads_per_sec >= self.writes_per_sec {
                self.read_hot = true;
            } else {
                self.write_hot = true;
            }
        }
    }

    fn is(&self, db: u32, key: &[u8]) -> bool {
        self.db == db && self.key == key
    }
}

/// What to announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Hot,
    Cold,
    Update,
}

/// One announcement: the key, its rates, and its advice unless it went cold.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub kind: ChangeKind,
    pub db: u32,
    pub key: Vec<u8>,
    pub reads_per_sec: f64,
    pub writes_per_sec: f64,
    pub advice: Option<Advice>,
}

/// Why a key cannot be pinned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinError {
    /// Every place in the hot set holds a pinned key.
    Full,
}

/// The hot set. Keys are indexed by their tracker hash ([`crate::tracker::key_hash`]).
#[derive(Debug, Clone)]
pub struct HotSet {
    entries: FxHashMap<u64, HotEntry>,
    rules: Rules,
    /// As of the last tick: the entry level, and whether any replica is healthy.
    entry_level: f64,
    replicas: bool,
    /// In a cluster, the slots this node's shard serves: only their keys may be hot here.
    served: Option<Vec<SlotRange>>,
    /// When the last load reading was taken (see the module doc), None before the first tick.
    reading_ms: Option<u64>,
    /// The rate at that reading of each key not hot at or above [`SURGE_FLOOR`] × the entry
    /// level, and that floor in operations per second; the spare map is the next reading's.
    rising: FxHashMap<u64, f64>,
    rising_floor: f64,
    rising_spare: FxHashMap<u64, f64>,
}

/// The mean load since a reading, from the rate then and now and the share `kept` of the rate
/// then that remains now (in (0, 1)).
fn load(now: f64, before: f64, kept: f64) -> f64 {
    (now - kept * before) / (1.0 - kept)
}

impl HotSet {
    pub fn new(rules: Rules) -> HotSet {
        HotSet {
            entries: FxHashMap::default(),
            rules,
            entry_level: rules.threshold,
            replicas: false,
            served: None,
            reading_ms: None,
            rising: FxHashMap::default(),
            rising_floor: 0.0,
            rising_spare: FxHashMap::default(),
        }
    }

    /// Whether `key` may be hot on this node: always, except in a cluster for keys of slots
    /// the shard does not serve.
    pub fn serves(&self, key: &[u8]) -> bool {
        self.served
            .as_deref()
            .is_none_or(|ranges| serves(ranges, key_slot(key)))
    }

    /// The slots the shard serves now (None: not a cluster). Keys of slots that moved away
    /// leave at once, pinned ones too: their owner is another shard now, where routers ask.
    /// Returns their `cold` changes.
    pub fn set_served(&mut self, served: Option<Vec<SlotRange>>) -> Vec<Change> {
        self.served = served;
        let gone: Vec<u64> = self
            .entries
            .iter()
            .filter(|(_, e)| !self.serves(&e.key))
            .map(|(&h, _)| h)
            .collect();
        gone.into_iter().filter_map(|h| self.remove(h)).collect()
    }

    pub fn rules(&self) -> Rules {
        self.rules
    }

    /// New settings; they take effect at the next tick.
    pub fn set_rules(&mut self, rules: Rules) {
        self.rules = rules;
    }

    /// The rate a key must reach to enter, given the node's rate. With both the threshold and
    /// the share at 0 any key with traffic qualifies.
    pub fn entry_level_for(&self, node_per_sec: f64) -> f64 {
        self.rules
            .threshold
            .max(self.rules.share * node_per_sec)
            .max(f64::MIN_POSITIVE)
    }

    /// The entry level as of the last tick.
    pub fn entry_level(&self) -> f64 {
        self.entry_level
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn pinned(&self) -> usize {
        self.entries.values().filter(|e| e.pinned).count()
    }

    /// Whether any replica was healthy at the last tick (reads then go to replicas).
    pub fn replicas(&self) -> bool {
        self.replicas
    }

    /// The hot key, if `(db, key)` is hot. `hash` is its tracker hash.
    pub fn get(&self, db: u32, key: &[u8], hash: u64) -> Option<&HotEntry> {
        self.entries.get(&hash).filter(|e| e.is(db, key))
    }

    /// Every hot key, hottest first.
    pub fn sorted(&self) -> Vec<&HotEntry> {
        let mut all: Vec<&HotEntry> = self.entries.values().collect();
        all.sort_by(|a, b| {
            b.total_per_sec()
                .total_cmp(&a.total_per_sec())
                .then_with(|| (a.db, &a.key).cmp(&(b.db, &b.key)))
        });
        all
    }

    /// The advice for a hot key now.
    pub fn advice(&self, e: &HotEntry) -> Advice {
        let reads_to = if e.read_hot && self.replicas {
            ReadsTo::Replicas
        } else {
            ReadsTo::Master
        };
        let cache_ttl_ms = if e.read_hot && !e.write_hot {
            self.rules.cache_ttl_ms
        } else {
            0
        };
        Advice::new(reads_to, cache_ttl_ms)
            .read_hot(e.read_hot)
            .write_hot(e.write_hot)
            .pinned(e.pinned)
    }

    /// One detection round at `now_ms`, on the tracker's current rates; `replicas` says
    /// whether any replica is healthy. Returns what to announce: `cold`s first, then `hot`s
    /// (hottest first), then `update`s.
    pub fn tick(&mut self, now_ms: u64, tracker: &Tracker, replicas: bool) -> Vec<Change> {
        self.replicas = replicas;
        self.entry_level = self.entry_level_for(tracker.total_per_sec());
        let (entry, exit) = (
            self.entry_level,
            self.entry_level * self.rules.cold_fraction,
        );
        // Whether this tick reads loads, and if a reading came before, the share of its rates
        // that remains now.
        let half_lives = self
            .reading_ms
            .map(|at| now_ms.saturating_sub(at) as f64 / tracker.half_life_ms().max(1) as f64);
        let reading = half_lives.is_none_or(|h| h >= MIN_READING_HALF_LIVES);
        let kept = half_lives.filter(|_| reading).map(|h| (-h).exp2());
        // Between readings a load is still good enough to tell a key whose traffic stopped.
        let kept_since = half_lives.filter(|&h| h > 0.0).map(|h| (-h).exp2());
        if reading {
            self.reading_ms = Some(now_ms);
        }
        let mut cold = Vec::new();
        for (&hash, e) in &mut self.entries {
            let rates = tracker.rates(e.db, &e.key, hash).unwrap_or((0.0, 0.0));
            (e.reads_per_sec, e.writes_per_sec) = rates;
            let total = e.total_per_sec();
            let load_below = kept.is_some_and(|k| load(total, e.rate_at_reading, k) < exit);
            if e.pin_until_ms.is_some_and(|until| until <= now_ms) {
                e.pinned = false;
                e.pin_until_ms = None;
                // An expired pin leaves like UNPIN: the key stays only on its own rate.
                if total < entry {
                    cold.push(hash);
                    continue;
                }
            }
            if e.pinned || (total >= exit && !load_below) {
                e.below_since_ms = None;
            } else {
                let since = *e.below_since_ms.get_or_insert(now_ms);
                if now_ms.saturating_sub(since) >= self.rules.cooldown_ms {
                    cold.push(hash);
                }
            }
        }
        let mut changes: Vec<Change> = cold.iter().filter_map(|&h| self.remove(h)).collect();
        let mut candidates = Vec::new();
        let floor = SURGE_FLOOR * entry;
        let mut rising = std::mem::take(&mut self.rising_spare);
        rising.clear();
        tracker.scan(floor, |db, key, hash, reads, writes| {
            // Commands for other shards' keys reach the filter before the server redirects
            // them: they are counted here, but never make a key hot where it does not live.
            // A key that just left does not come back in the same tick.
            if self.entries.contains_key(&hash) || cold.contains(&hash) || !self.serves(key) {
                return;
            }
            let total = reads + writes;
            // A key absent from the last reading had at most its floor then (keys that left
            // the hot set since are in it with their rate).
            let before = self.rising.get(&hash).copied().unwrap_or(self.rising_floor);
            let load_since = kept_since.map(|k| load(total, before, k));
            // A decayed rate at the entry level over a load below the exit level is a key
            // whose traffic stopped: it enters no more than it would stay.
            let by_rate = total >= entry && load_since.is_none_or(|l| l >= exit);
            let surge = before <= SURGE_FROM * entry
                && kept.is_some_and(|k| load(total, before, k) >= SURGE_LOAD * entry);
            if by_rate || surge {
                candidates.push((hash, HotEntry::new(db, key, (reads, writes))));
            } else if reading {
                rising.insert(hash, total);
            }
        });
        if reading {
            self.rising_spare = std::mem::replace(&mut self.rising, rising);
            self.rising_floor = floor;
            for e in self.entries.values_mut() {
                e.rate_at_reading = e.total_per_sec();
            }
        } else {
            self.rising_spare = rising;
        }
        candidates.sort_by(|a, b| b.1.total_per_sec().total_cmp(&a.1.total_per_sec()));
        let mut entered = Vec::new();
        for (hash, candidate) in candidates {
            if self.entries.len() >= self.rules.max_hot {
                match self.weakest_detected() {
                    Some((h, rate)) if candidate.total_per_sec() >= REPLACE_FACTOR * rate => {
                        changes.extend(self.remove(h));
                    }
                    _ => break,
                }
            }
            entered.push(hash);
            self.entries.insert(hash, candidate);
        }
        while self.entries.len() > self.rules.max_hot {
            let Some((h, _)) = self.weakest_detected() else {
                break;
            };
            changes.extend(self.remove(h));
        }
        for hash in entered {
            changes.extend(self.announce(hash, exit));
        }
        // Only the keys with something to announce, in key order, so that a tick's updates
        // come out the same way every time: a steady hot set costs no copy and no sort.
        for e in self.entries.values_mut() {
            e.classify(exit);
        }
        let mut updates: Vec<(u32, Vec<u8>, u64)> = self
            .entries
            .iter()
            .filter(|(_, e)| self.update_due(e, exit))
            .map(|(&h, e)| (e.db, e.key.clone(), h))
            .collect();
        updates.sort_unstable();
        for (_, _, hash) in updates {
            changes.extend(self.announce(hash, exit));
        }
        changes
    }

    /// Pins a key: hot until `until_ms` (None = until unpinned). Replaces the weakest detected
    /// key when the set is full. Returns what to announce.
    pub fn pin(
        &mut self,
        db: u32,
        key: &[u8],
        hash: u64,
        until_ms: Option<u64>,
        tracker: &Tracker,
    ) -> Result<Vec<Change>, PinError> {
        let mut changes = Vec::new();
        if self.get(db, key, hash).is_none() {
            if self.entries.len() >= self.rules.max_hot {
                let (weakest, _) = self.weakest_detected().ok_or(PinError::Full)?;
                changes.extend(self.remove(weakest));
            }
            // Another key with the same 64-bit hash leaves first: the index holds one per hash.
            changes.extend(self.remove(hash));
            let rates = tracker.rates(db, key, hash).unwrap_or((0.0, 0.0));
            self.entries.insert(hash, HotEntry::new(db, key, rates));
        }
        if let Some(e) = self.entries.get_mut(&hash) {
            e.pinned = true;
            e.pin_until_ms = until_ms;
            e.below_since_ms = None;
        }
        let exit = self.entry_level * self.rules.cold_fraction;
        changes.extend(self.announce(hash, exit));
        Ok(changes)
    }

    /// Unpins a key: it stays hot only if its own rate holds it at the entry level. None when
    /// the key was not pinned.
    pub fn unpin(&mut self, db: u32, key: &[u8], hash: u64) -> Option<Vec<Change>> {
        let e = self
            .entries
            .get_mut(&hash)
            .filter(|e| e.is(db, key) && e.pinned)?;
        e.pinned = false;
        e.pin_until_ms = None;
        if e.total_per_sec() < self.entry_level {
            return Some(self.remove(hash).into_iter().collect());
        }
        let exit = self.entry_level * self.rules.cold_fraction;
        Some(self.announce(hash, exit).into_iter().collect())
    }

    /// The `hot` (first time) or `update` (advice changed, or rate moved by
    /// [`MOVED_FACTOR`] and is at least `exit`) a key's state calls for, if any.
    fn announce(&mut self, hash: u64, exit: f64) -> Option<Change> {
        let e = self.entries.get_mut(&hash)?;
        e.classify(exit);
        let e = self.entries.get(&hash)?;
        let kind = match e.announced {
            None => ChangeKind::Hot,
            Some(_) if self.update_due(e, exit) => ChangeKind::Update,
            Some(_) => return None,
        };
        let advice = self.advice(e);
        let change = Change {
            kind,
            db: e.db,
            key: e.key.clone(),
            reads_per_sec: e.reads_per_sec,
            writes_per_sec: e.writes_per_sec,
            advice: Some(advice),
        };
        let total = e.total_per_sec();
        if let Some(e) = self.entries.get_mut(&hash) {
            e.announced = Some((total, advice));
        }
        Some(change)
    }

    /// Whether an announced key's state calls for an `update`: its advice changed, or its rate
    /// moved by [`MOVED_FACTOR`] and is at least `exit`. Its flags must be classified already.
    fn update_due(&self, e: &HotEntry, exit: f64) -> bool {
        let Some((before, old)) = e.announced else {
            return false;
        };
        let total = e.total_per_sec();
        let (lo, hi) = (before.min(total), before.max(total));
        old != self.advice(e) || (hi >= MOVED_FACTOR * lo && hi >= exit)
    }

    /// Removes a key; its `cold`, if it had been announced hot.
    fn remove(&mut self, hash: u64) -> Option<Change> {
        let e = self.entries.remove(&hash)?;
        // So that the next load reading knows the rate it had (see `tick`).
        self.rising.insert(hash, e.rate_at_reading);
        e.announced.map(|_| Change {
            kind: ChangeKind::Cold,
            db: e.db,
            key: e.key,
            reads_per_sec: e.reads_per_sec,
            writes_per_sec: e.writes_per_sec,
            advice: None,
        })
    }

    /// The unpinned key with the lowest rate, and that rate.
    fn weakest_detected(&self) -> Option<(u64, f64)> {
        self.entries
            .iter()
            .filter(|(_, e)| !e.pinned)
            .map(|(&h, e)| (h, e.total_per_sec()))
            .min_by(|a, b| a.1.total_cmp(&b.1))
    }
}

#[cfg(test)]
mod tests;
