//! The route table: the module's hot set (of the router's database) and healthy replicas, kept
//! in step with the numbered events. Pure: no I/O, unit-tested alone.
//!
//! Each hot key carries an *epoch*, a number that changes whenever something may have written
//! the key (an invalidation from the server, the router's own write, a resync). A cached reply
//! remembers the epoch it was read under and is only served while the key still has it, so a
//! fill that raced with a write is never served.

use hotkey_protocol::sequence::{Sequence, StreamPosition};
use hotkey_protocol::{Advice, Event, Message, Replica, Routes};
use rustc_hash::FxHashMap;

/// One hot key: the module's advice and the key's current epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HotEntry {
    pub advice: Advice,
    pub epoch: u64,
}

/// What [`RouteTable::apply`] made of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The next message in order: applied.
    InOrder,
    /// Already reflected in the table (a message older than the snapshot): skipped.
    Old,
    /// Messages were lost between `expected` and `got`: re-read the table.
    Gap { expected: u64, got: u64 },
    /// The module restarted (another `run_id`): re-read the table.
    NewRun,
    /// The table is not synced: nothing to apply to.
    NotSynced,
}

/// The table. Unsynced (no hot keys, no replicas, so everything goes to the master) until
/// [`RouteTable::load`] and after [`RouteTable::unsync`].
#[derive(Debug, Default)]
pub struct RouteTable {
    db: u32,
    synced: bool,
    /// The last message reflected.
    position: StreamPosition,
    keys: FxHashMap<Box<[u8]>, HotEntry>,
    replicas: Vec<Replica>,
    next_epoch: u64,
}

impl RouteTable {
    /// An unsynced table for database `db`.
    pub fn new(db: u32) -> RouteTable {
        RouteTable {
            db,
            ..RouteTable::default()
        }
    }

    /// Replaces everything with a `HOTKEY.ROUTES` snapshot. Every key gets a fresh epoch, so no
    /// reply cached before counts any more.
    pub fn load(&mut self, routes: &Routes) {
        self.synced = true;
        self.position = StreamPosition::new(&routes.run_id, routes.seq);
        self.keys.clear();
        let db = self.db;
        for hot in routes.keys.iter().filter(|k| k.db == db) {
            let epoch = self.new_epoch();
            self.keys.insert(
                hot.key.clone().into_boxed_slice(),
                HotEntry {
                    advice: hot.advice,
                    epoch,
                },
            );
        }
        self.replicas.clone_from(&routes.replicas);
    }

    /// Forgets everything (the link to the master is lost): all commands go to the master.
    pub fn unsync(&mut self) {
        self.synced = false;
        self.keys.clear();
        self.replicas.clear();
    }

    /// Applies one message of the channel, in `seq` order.
    pub fn apply(&mut self, message: &Message) -> Applied {
        if !self.synced {
            return Applied::NotSynced;
        }
        // Out of order the table stays where it is: the caller re-reads the snapshot.
        match self.position.check(&message.run_id, message.seq) {
            Sequence::InOrder => self.position.seq = message.seq,
            Sequence::Old => return Applied::Old,
            Sequence::Gap { expected, got } => return Applied::Gap { expected, got },
            Sequence::Restart => return Applied::NewRun,
        }
        match &message.event {
            Event::Hot(e) | Event::Update(e) if e.db == self.db => {
                // A key event without a readable name or advice cannot be routed: drop the key,
                // its reads go to the master.
                let (Ok(key), Some(advice)) = (e.key.bytes(), e.advice) else {
                    if let Ok(key) = e.key.bytes() {
                        self.keys.remove(key.as_slice());
                    }
                    return Applied::InOrder;
                };
                let epoch = match self.keys.get(key.as_slice()) {
                    Some(old) => old.epoch,
                    None => self.new_epoch(),
                };
                self.keys
                    .insert(key.into_boxed_slice(), HotEntry { advice, epoch });
            }
            Event::Cold(e) if e.db == self.db => {
                if let Ok(key) = e.key.bytes() {
                    self.keys.remove(key.as_slice());
                }
            }
            Event::Replicas(r) => self.replicas.clone_from(&r.replicas),
            _ => {}
        }
        Applied::InOrder
    }

    /// The key's entry while it is hot (never while unsynced).
    #[inline]
    pub fn get(&self, key: &[u8]) -> Option<&HotEntry> {
        self.keys.get(key)
    }

    /// Something may have written `key`: its cached replies stop counting. Returns whether the
    /// key is hot.
    pub fn invalidate(&mut self, key: &[u8]) -> bool {
        let epoch = self.next_epoch + 1;
        match self.keys.get_mut(key) {
            Some(entry) => {
                self.next_epoch = epoch;
                entry.epoch = epoch;
                true
            }
            None => false,
        }
    }

    /// Every cached reply stops counting (`FLUSHDB`, a lost tracking link).
    pub fn invalidate_all(&mut self) {
        let keys: Vec<Box<[u8]>> = self.keys.keys().cloned().collect();
        for key in keys {
            self.invalidate(&key);
        }
    }

    fn new_epoch(&mut self) -> u64 {
        self.next_epoch += 1;
        self.next_epoch
    }

    pub fn is_synced(&self) -> bool {
        self.synced
    }

    /// The replicas the module calls healthy.
    pub fn replicas(&self) -> &[Replica] {
        &self.replicas
    }

    /// The hot keys, in no order.
    pub fn hot_keys(&self) -> impl Iterator<Item = (&[u8], &HotEntry)> {
        self.keys.iter().map(|(k, v)| (&**k, v))
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }
}

#[cfg(test)]
pub(crate) mod tests;
