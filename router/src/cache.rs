//! The local cache of hot reads, on moka: bounded in bytes, each reply kept at most the TTL the
//! module advised, one fetch for concurrent misses of the same command (moka's
//! `try_get_with`), and served only while its key's epoch is unchanged (see `table`).
//!
//! In front of moka, each thread keeps a few replies of its own ([`Front`]): the hottest key is
//! read by every thread of the application (every worker of the proxy), and moka's `get`
//! writes memory all of them share (its read buffer, the entry's access time, the value's
//! reference count), so two threads hitting one key would pass those cache lines back and
//! forth on every hit. A thread's front holds its own copy of each reply ([`ThreadCopy`]) and is
//! checked first, with the same rules: the epoch must be the key's current one, the reply
//! unexpired, and [`Cache::clear`] empties every front.
//!
//! Generic over the reply: the router keeps `redis::Value`s, the proxy the raw bytes it
//! forwards (each says what it weighs, through [`Weight`], and how it is copied for a thread,
//! through [`ThreadCopy`]).

use std::cell::RefCell;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;
use moka::Expiry;
use redis::Value;
use rustc_hash::FxBuildHasher;
use thread_local::ThreadLocal;

/// Replies a thread's front holds (a direct-mapped table: a reply takes the slot of its
/// command's hash, replacing the one there).
const FRONT_SLOTS: usize = 64;
/// A reply takes a slot another command holds only on every `FRONT_ADMIT_EVERY`th such try of
/// its thread: with more hot commands than slots, copying every moka hit into the front would
/// cost a copy per hit and keep nothing; this way the commands hit most often settle in the
/// front and the others pay a copy on one hit in eight.
const FRONT_ADMIT_EVERY: u32 = 8;
/// The largest reply a front copies (weight in bytes): a front holds at most
/// `FRONT_SLOTS` × this, 1 MiB a thread; larger replies are served from moka alone.
const FRONT_MAX_WEIGHT: usize = 16 * 1024;

/// A reply in the cache: the value, the key's epoch when it was read, and how long it may live
/// (from when it was read: [`Cached::new`]).
#[derive(Debug)]
pub struct Cached<V = Value> {
    pub value: V,
    pub epoch: u64,
    pub ttl: Duration,
    expires: Instant,
}

impl<V> Cached<V> {
    /// `value`, read now under `epoch`, to be kept at most `ttl`.
    pub fn new(value: V, epoch: u64, ttl: Duration) -> Cached<V> {
        Cached {
            value,
            epoch,
            ttl,
            expires: Instant::now() + ttl,
        }
    }
}

/// A copy of a reply that shares no memory with the original (no reference count either), for
/// a thread's front: two threads serving the same reply then touch no common cache line.
pub trait ThreadCopy {
    fn thread_copy(&self) -> Self;
}

impl ThreadCopy for Value {
    fn thread_copy(&self) -> Value {
        self.clone()
    }
}

/// Roughly the heap bytes a cached reply holds, for the cache's capacity.
pub trait Weight {
    fn weight(&self) -> usize;
}

impl Weight for Value {
    fn weight(&self) -> usize {
        weight(self)
    }
}

/// The cache, keyed by the command as sent (its RESP encoding), so `ZREVRANGE k 0 9` and
/// `ZSCORE k m` are different entries.
#[derive(Clone)]
pub struct Cache<V: Send + Sync = Value> {
    inner: moka::future::Cache<Box<[u8]>, Arc<Cached<V>>, FxBuildHasher>,
    /// Each thread's front (padded: two threads' fronts never share a cache line).
    fronts: Arc<ThreadLocal<CachePadded<RefCell<Front<V>>>>>,
    /// Bumped by [`Cache::clear`]: a front of an older generation is emptied before use.
    generation: Arc<CachePadded<AtomicU64>>,
}

/// One thread's replies: `FRONT_SLOTS` slots, a command in the slot of its hash.
struct Front<V> {
    generation: u64,
    slots: [Option<Slot<V>>; FRONT_SLOTS],
    /// Tries to take a slot held by another command (see `FRONT_ADMIT_EVERY`).
    contested: u32,
}

struct Slot<V> {
    hash: u64,
    command: Vec<u8>,
    cached: Arc<Cached<V>>,
}

impl<V> Default for Front<V> {
    fn default() -> Front<V> {
        Front {
            generation: 0,
            slots: std::array::from_fn(|_| None),
            contested: 0,
        }
    }
}

impl<V> Front<V> {
    /// Empties the front if `generation` is newer than its own.
    fn at(&mut self, generation: u64) -> &mut Front<V> {
        if self.generation != generation {
            self.slots.iter_mut().for_each(|slot| *slot = None);
            self.generation = generation;
        }
        self
    }

    fn slot(&mut self, hash: u64) -> &mut Option<Slot<V>> {
        // FRONT_SLOTS is a power of two: the low bits of the hash pick the slot.
        &mut self.slots[(hash as usize) & (FRONT_SLOTS - 1)]
    }
}

struct AdvisedTtl;

impl<V> Expiry<Box<[u8]>, Arc<Cached<V>>> for AdvisedTtl {
    fn expire_after_create(
        &self,
        _key: &Box<[u8]>,
        value: &Arc<Cached<V>>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

impl<V: Weight + ThreadCopy + Send + Sync + 'static> Cache<V> {
    /// A cache holding at most about `capacity_bytes` in moka, and up to `FRONT_SLOTS`
    /// replies of at most `FRONT_MAX_WEIGHT` bytes in each thread's front (not counted in
    /// [`Cache::usage`]).
    pub fn new(capacity_bytes: u64) -> Cache<V> {
        Cache {
            fronts: Arc::new(ThreadLocal::new()),
            generation: Arc::new(CachePadded::new(AtomicU64::new(0))),
            inner: moka::future::Cache::builder()
                .max_capacity(capacity_bytes)
                .weigher(entry_weight)
                .expire_after(AdvisedTtl)
                // Keys are commands on the few hot keys, not chosen by outsiders at volume: a
                // fast hash over a DoS-resistant one (the lookup is a third of a hit).
                .build_with_hasher(FxBuildHasher),
        }
    }

    /// The cached reply of `command`, if it was read under `epoch` and has not expired. A reply
    /// of an older epoch is removed.
    pub async fn get(&self, command: &[u8], epoch: u64) -> Option<Arc<Cached<V>>> {
        let generation = self.generation.load(Ordering::Acquire);
        let hash = FxBuildHasher.hash_one(command);
        if let Some(cached) = self.front_get(generation, hash, command, epoch) {
            return Some(cached);
        }
        let cached = self.inner.get(command).await?;
        if cached.epoch == epoch {
            self.front_put(generation, hash, command, &cached);
            return Some(cached);
        }
        self.inner.invalidate(command).await;
        None
    }

    /// The reply of `command` in this thread's front, if it is there, of `epoch` and not
    /// expired; a reply of another epoch, or expired, leaves it.
    fn front_get(
        &self,
        generation: u64,
        hash: u64,
        command: &[u8],
        epoch: u64,
    ) -> Option<Arc<Cached<V>>> {
        let mut front = self.fronts.get()?.borrow_mut();
        let slot = front.at(generation).slot(hash);
        let held = slot
            .as_ref()
            .filter(|s| s.hash == hash && s.command == command)?;
        if held.cached.epoch == epoch && Instant::now() < held.cached.expires {
            return Some(held.cached.clone());
        }
        *slot = None;
        None
    }

    /// Copies `cached` into this thread's front, unless the cache was cleared since
    /// `generation` was read (the reply may be older than the clear), it is too large, or its
    /// slot holds another command and this is not a try that may take it.
    fn front_put(&self, generation: u64, hash: u64, command: &[u8], cached: &Cached<V>) {
        if cached.value.weight() > FRONT_MAX_WEIGHT
            || self.generation.load(Ordering::Acquire) != generation
        {
            return;
        }
        let mut front = self.fronts.get_or_default().borrow_mut();
        let front = front.at(generation);
        let held_by_another = front
            .slot(hash)
            .as_ref()
            .is_some_and(|s| s.hash != hash || s.command != command);
        if held_by_another {
            front.contested = front.contested.wrapping_add(1);
            if !front.contested.is_multiple_of(FRONT_ADMIT_EVERY) {
                return;
            }
        }
        let copy = Arc::new(Cached {
            value: cached.value.thread_copy(),
            epoch: cached.epoch,
            ttl: cached.ttl,
            expires: cached.expires,
        });
        let slot = front.slot(hash);
        match slot {
            // The slot's command buffer is reused: no allocation for a command that fits.
            Some(held) => {
                held.hash = hash;
                held.command.clear();
                held.command.extend_from_slice(command);
                held.cached = copy;
            }
            None => {
                *slot = Some(Slot {
                    hash,
                    command: command.to_vec(),
                    cached: copy,
                });
            }
        }
    }

    /// The reply of `command`: cached, or fetched by `fill` (one fill for concurrent callers;
    /// a failed fill is not cached, every waiting caller gets its error).
    pub async fn get_or_fill<F, E>(
        &self,
        command: Box<[u8]>,
        fill: F,
    ) -> Result<Arc<Cached<V>>, Arc<E>>
    where
        F: Future<Output = Result<Arc<Cached<V>>, E>>,
        E: Send + Sync + 'static,
    {
        let generation = self.generation.load(Ordering::Acquire);
        let hash = FxBuildHasher.hash_one(&*command);
        let key = command.clone();
        let result = self.inner.try_get_with(command, fill).await;
        if let Ok(cached) = &result {
            self.front_put(generation, hash, &key, cached);
        }
        result
    }

    /// Drops every reply (after a resync), every thread's front's too.
    pub fn clear(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.inner.invalidate_all();
    }

    /// About how many bytes the cache holds now, and how many replies.
    pub fn usage(&self) -> (u64, u64) {
        (self.inner.weighted_size(), self.inner.entry_count())
    }
}

/// Roughly the bytes an entry holds, for the capacity.
#[allow(clippy::borrowed_box)] // moka's weigher takes the key type by reference
fn entry_weight<V: Weight>(key: &Box<[u8]>, value: &Arc<Cached<V>>) -> u32 {
    let bytes = key.len() + value.value.weight() + std::mem::size_of::<Cached<V>>();
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

/// Roughly the heap bytes of a reply.
fn weight(value: &Value) -> usize {
    let own = std::mem::size_of::<Value>();
    own + match value {
        Value::BulkString(b) => b.len(),
        Value::SimpleString(s) => s.len(),
        Value::VerbatimString { text, .. } => text.len(),
        Value::Array(items) | Value::Set(items) => items.iter().map(weight).sum(),
        Value::Map(pairs) => pairs.iter().map(|(k, v)| weight(k) + weight(v)).sum(),
        Value::Attribute { data, attributes } => {
            weight(data)
                + attributes
                    .iter()
                    .map(|(k, v)| weight(k) + weight(v))
                    .sum::<usize>()
        }
        Value::Push { data, .. } => data.iter().map(weight).sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use std::thread;

    use super::*;

    fn reply(text: &str, epoch: u64, ttl: Duration) -> Arc<Cached> {
        Arc::new(Cached::new(Value::BulkString(text.into()), epoch, ttl))
    }

    fn fill(cache: &Cache, command: &[u8], cached: Arc<Cached>) {
        futures_block(cache.get_or_fill(command.into(), async { Ok::<_, ()>(cached) }))
            .expect("fill");
    }

    fn get(cache: &Cache, command: &[u8], epoch: u64) -> Option<Value> {
        futures_block(cache.get(command, epoch)).map(|c| c.value.clone())
    }

    fn futures_block<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(future)
    }

    const LONG: Duration = Duration::from_secs(600);

    #[test]
    fn a_front_serves_its_own_copy_and_only_under_the_current_epoch() {
        let cache: Cache = Cache::new(1 << 20);
        let stored = reply("v1", 1, LONG);
        fill(&cache, b"GET a", stored.clone());
        let first = futures_block(cache.get(b"GET a", 1)).expect("a hit");
        let again = futures_block(cache.get(b"GET a", 1)).expect("a hit");
        assert!(!Arc::ptr_eq(&first, &stored), "a copy, not moka's entry");
        assert!(
            Arc::ptr_eq(&first, &again),
            "both hits from this thread's front"
        );
        // Another thread gets a front of its own: a copy, not the first thread's entry.
        let elsewhere = thread::scope(|s| {
            s.spawn(|| {
                // Its first hit is moka's, and leaves a copy in its front.
                let a = futures_block(cache.get(b"GET a", 1)).expect("a hit");
                assert!(Arc::ptr_eq(&a, &stored));
                let b = futures_block(cache.get(b"GET a", 1)).expect("a hit");
                let c = futures_block(cache.get(b"GET a", 1)).expect("a hit");
                assert!(Arc::ptr_eq(&b, &c) && !Arc::ptr_eq(&b, &stored));
                b
            })
            .join()
            .expect("thread")
        });
        assert!(!Arc::ptr_eq(&first, &elsewhere));
        assert_eq!(elsewhere.value, Value::BulkString("v1".into()));
        // The key's epoch moved on (a write): no thread serves the old reply, front or not.
        assert_eq!(get(&cache, b"GET a", 2), None);
        thread::scope(|s| {
            s.spawn(|| assert_eq!(get(&cache, b"GET a", 2), None));
        });
        fill(&cache, b"GET a", reply("v2", 2, LONG));
        assert_eq!(
            get(&cache, b"GET a", 2),
            Some(Value::BulkString("v2".into()))
        );
        assert_eq!(
            get(&cache, b"GET a", 1),
            None,
            "an older epoch is not served"
        );
    }

    #[test]
    fn clear_empties_every_threads_front() {
        let cache: Cache = Cache::new(1 << 20);
        fill(&cache, b"GET a", reply("v", 1, LONG));
        let (warm, cleared) = (std::sync::Barrier::new(2), std::sync::Barrier::new(2));
        thread::scope(|s| {
            s.spawn(|| {
                assert!(get(&cache, b"GET a", 1).is_some());
                assert!(get(&cache, b"GET a", 1).is_some(), "from the front");
                warm.wait();
                cleared.wait();
                assert_eq!(get(&cache, b"GET a", 1), None, "the other thread's front");
            });
            assert!(get(&cache, b"GET a", 1).is_some());
            warm.wait();
            cache.clear();
            cleared.wait();
            assert_eq!(get(&cache, b"GET a", 1), None, "this thread's front");
        });
    }

    #[test]
    fn a_front_drops_a_reply_once_its_ttl_is_over() {
        let cache: Cache = Cache::new(1 << 20);
        let made = Instant::now();
        fill(&cache, b"GET a", reply("v", 1, Duration::from_millis(50)));
        assert!(get(&cache, b"GET a", 1).is_some());
        while get(&cache, b"GET a", 1).is_some() {
            assert!(made.elapsed() < Duration::from_secs(10), "never expired");
            thread::yield_now();
        }
        assert!(made.elapsed() >= Duration::from_millis(50), "expired early");
    }

    #[test]
    fn a_command_takes_a_slot_another_holds_only_on_every_eighth_try() {
        let cache: Cache = Cache::new(1 << 20);
        let slot_of = |c: &[u8]| (FxBuildHasher.hash_one(c) as usize) & (FRONT_SLOTS - 1);
        let a = b"GET a".to_vec();
        let b = (0..)
            .map(|i| format!("GET b{i}").into_bytes())
            .find(|c| slot_of(c) == slot_of(&a))
            .expect("a command of the same slot");
        let stored_a = reply("a", 1, LONG);
        fill(&cache, &a, stored_a.clone());
        let held = futures_block(cache.get(&a, 1)).expect("a hit");
        assert!(!Arc::ptr_eq(&held, &stored_a), "a in the front");
        // b's fill is the first try, its hits the next ones: a keeps the slot until the 8th.
        fill(&cache, &b, reply("b", 1, LONG));
        for _ in 2..FRONT_ADMIT_EVERY {
            assert_eq!(get(&cache, &b, 1), Some(Value::BulkString("b".into())));
            let still = futures_block(cache.get(&a, 1)).expect("a hit");
            assert!(Arc::ptr_eq(&still, &held), "a still in the front");
        }
        assert_eq!(get(&cache, &b, 1), Some(Value::BulkString("b".into())));
        let now = futures_block(cache.get(&a, 1)).expect("a hit");
        assert!(Arc::ptr_eq(&now, &stored_a), "b took the slot: a from moka");
    }

    #[test]
    fn commands_sharing_a_slot_replace_each_other_and_large_replies_stay_in_moka() {
        let cache: Cache = Cache::new(64 << 20);
        // More commands than slots: each is still served, from its slot or from moka.
        let commands: Vec<Vec<u8>> = (0..4 * FRONT_SLOTS)
            .map(|i| format!("GET key:{i}").into_bytes())
            .collect();
        for (i, command) in commands.iter().enumerate() {
            fill(&cache, command, reply(&i.to_string(), 1, LONG));
        }
        for _ in 0..2 {
            for (i, command) in commands.iter().enumerate() {
                assert_eq!(
                    get(&cache, command, 1),
                    Some(Value::BulkString(i.to_string().into()))
                );
            }
        }
        let large = reply(&"x".repeat(FRONT_MAX_WEIGHT + 1), 1, LONG);
        fill(&cache, b"GET big", large.clone());
        for _ in 0..2 {
            let hit = futures_block(cache.get(b"GET big", 1)).expect("a hit");
            assert!(
                Arc::ptr_eq(&hit, &large),
                "moka's own entry, not a front's copy"
            );
        }
    }
}
