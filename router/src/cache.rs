//! The local cache of hot reads, on moka: bounded in bytes, each reply kept at most the TTL the
//! module advised, one fetch for concurrent misses of the same command (moka's
//! `try_get_with`), and served only while its key's epoch is unchanged (see `table`).
//!
//! Generic over the reply: the router keeps `redis::Value`s, the proxy the raw bytes it
//! forwards (each says what it weighs, through [`Weight`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::Expiry;
use redis::Value;
use rustc_hash::FxBuildHasher;

/// A reply in the cache: the value, the key's epoch when it was read, and how long it may live.
#[derive(Debug)]
pub struct Cached<V = Value> {
    pub value: V,
    pub epoch: u64,
    pub ttl: Duration,
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
pub struct Cache<V = Value> {
    inner: moka::future::Cache<Box<[u8]>, Arc<Cached<V>>, FxBuildHasher>,
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

impl<V: Weight + Send + Sync + 'static> Cache<V> {
    /// A cache holding at most about `capacity_bytes`.
    pub fn new(capacity_bytes: u64) -> Cache<V> {
        Cache {
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
        let cached = self.inner.get(command).await?;
        if cached.epoch == epoch {
            return Some(cached);
        }
        self.inner.invalidate(command).await;
        None
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
        self.inner.try_get_with(command, fill).await
    }

    /// Drops every reply (after a resync).
    pub fn clear(&self) {
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
