//! Redis Cluster's rules, as the module and its clients apply them: which slot a key lives in,
//! the slot ranges a node serves, and the sharded channel a shard's events go to.

use crc::{CRC_16_XMODEM, Crc};
use serde::{Deserialize, Serialize};

/// Slots in a cluster: 0..16384.
pub const SLOTS: u16 = 16384;

const CRC16: Crc<u16> = Crc::<u16>::new(&CRC_16_XMODEM);

/// The slot of `key`: CRC16 of its hash tag (the bytes between the first `{` and the next `}`,
/// when not empty), else of the whole key, modulo 16384 — the server's own rule.
///
/// ```
/// assert_eq!(hotkey_protocol::cluster::key_slot(b"foo"), 12182);
/// assert_eq!(
///     hotkey_protocol::cluster::key_slot(b"{user1000}.following"),
///     hotkey_protocol::cluster::key_slot(b"user1000"),
/// );
/// ```
pub fn key_slot(key: &[u8]) -> u16 {
    CRC16.checksum(hash_tag(key)) % SLOTS
}

fn hash_tag(key: &[u8]) -> &[u8] {
    let Some(open) = key.iter().position(|&b| b == b'{') else {
        return key;
    };
    match key[open + 1..].iter().position(|&b| b == b'}') {
        Some(0) | None => key,
        Some(len) => &key[open + 1..open + 1 + len],
    }
}

/// An inclusive range of slots, as `CLUSTER SHARDS` and `HOTKEY.ROUTES` give them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SlotRange {
    pub start: u16,
    pub end: u16,
}

impl SlotRange {
    /// Whether `slot` is in the range.
    pub fn contains(&self, slot: u16) -> bool {
        (self.start..=self.end).contains(&slot)
    }
}

/// Whether any of `ranges` holds `slot`.
pub fn serves(ranges: &[SlotRange], slot: u16) -> bool {
    ranges.iter().any(|r| r.contains(slot))
}

/// The name of the sharded channel a shard serving `ranges` publishes on: `base` followed by a
/// hash tag (`base{tag}`) whose slot the shard serves, so that `SSUBSCRIBE` reaches a node of
/// this shard and the server keeps the messages inside it. The tag is the smallest counter
/// whose slot is served, so the master and its replicas, which serve the same slots, name the
/// same channel, and it changes only when slots move. None when the shard serves no slot (then
/// it has nowhere to publish).
///
/// ```
/// use hotkey_protocol::cluster::{SlotRange, key_slot, shard_channel};
/// let ranges = [SlotRange { start: 5461, end: 10922 }];
/// let channel = shard_channel("__hotkey__", &ranges).unwrap();
/// assert!(ranges[0].contains(key_slot(channel.as_bytes())));
/// ```
pub fn shard_channel(base: &str, ranges: &[SlotRange]) -> Option<String> {
    let name = |i: u32| format!("{base}{{{i}}}");
    let slot = |i: u32| key_slot(name(i).as_bytes());
    if ranges.is_empty() {
        return None;
    }
    // A base with a hash tag of its own fixes every name's slot: there or nowhere.
    if slot(0) == slot(1) && slot(1) == slot(2) {
        return serves(ranges, slot(0)).then(|| name(0));
    }
    // About SLOTS / (slots served) tries: a few for a third of the slots; a bounded search
    // finds any single slot (a tag for every slot exists below 2^17).
    (0u32..1 << 22).find(|&i| serves(ranges, slot(i))).map(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_the_servers_rule() {
        // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"123456789"), 0x31C3 % SLOTS);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_ne!(
            key_slot(b"foo{}{bar}"),
            key_slot(b"bar"),
            "an empty tag is no tag"
        );
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
        assert_eq!(key_slot(b""), 0);
        assert_eq!(key_slot(&[0xff, 0x00, b'{', 0xc4, b'}']), key_slot(&[0xc4]));
    }

    #[test]
    fn the_channel_lands_in_a_served_slot_and_changes_only_when_it_must() {
        let first = [SlotRange {
            start: 0,
            end: 5460,
        }];
        let c = shard_channel("hk", &first).unwrap();
        assert!(c.starts_with("hk{"));
        assert!(serves(&first, key_slot(c.as_bytes())));
        let more = [
            SlotRange {
                start: 0,
                end: 5460,
            },
            SlotRange {
                start: 9000,
                end: 9001,
            },
        ];
        let slot = key_slot(c.as_bytes());
        if !(9000..=9001).contains(&slot) {
            assert_eq!(
                shard_channel("hk", &more).unwrap(),
                c,
                "the same smallest tag"
            );
        }
        let moved = [SlotRange {
            start: 10923,
            end: 16383,
        }];
        let d = shard_channel("hk", &moved).unwrap();
        assert!(serves(&moved, key_slot(d.as_bytes())));
        for slot in [0, 777, 16383] {
            let one = [SlotRange {
                start: slot,
                end: slot,
            }];
            assert_eq!(
                key_slot(shard_channel("hk", &one).unwrap().as_bytes()),
                slot
            );
        }
        assert_eq!(shard_channel("hk", &[]), None);
        // A base with a tag of its own fixes the slot: the channel is there or nowhere.
        let fixed = key_slot(b"x");
        let at = [SlotRange {
            start: fixed,
            end: fixed,
        }];
        assert_eq!(shard_channel("a{x}b", &at).as_deref(), Some("a{x}b{0}"));
        let elsewhere = [SlotRange {
            start: (fixed + 1) % SLOTS,
            end: (fixed + 1) % SLOTS,
        }];
        assert_eq!(shard_channel("a{x}b", &elsewhere), None);
        // An empty or open brace in the base is no tag: the counter still moves the slot.
        assert!(shard_channel("a{}b", &one_slot(5)).is_some());
        assert!(shard_channel("a{b", &one_slot(5)).is_some());
    }

    fn one_slot(slot: u16) -> [SlotRange; 1] {
        [SlotRange {
            start: slot,
            end: slot,
        }]
    }
}
