//! `SCAN` over a cluster through one cursor: the routers and the proxy hand their caller a
//! cursor that names the shard being scanned as well as that node's own cursor, so a scan goes
//! over every master, one after another, and needs no state between calls.
//!
//! The shard is named by a slot it owns — the lowest, when the scan moves to it — not by its
//! place in a list, so a cursor still means the same shard after the layout is refreshed. The
//! cursor is `node_cursor << 14 | slot`, written in decimal as Redis writes cursors. `0` is
//! both the start (slot 0, the node's cursor 0) and, from a reply, the end, as on one server.
//!
//! The guarantee is `SCAN`'s own, per shard: a key present on its shard for the whole scan is
//! returned. A slot that moves to another shard during the scan may be missed or repeated, as
//! a resize can repeat keys on one server.

use crate::ProtocolError;

/// Bits of the cursor that carry the slot.
const SLOT_BITS: u32 = 14;
const SLOT_MASK: u64 = (1 << SLOT_BITS) - 1;

/// The error Redis gives a cursor that is not an unsigned 64-bit decimal number.
pub const INVALID_CURSOR: &str = "ERR invalid cursor";

/// A position in a scan over a cluster: which shard, and where in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterCursor {
    /// A slot of the shard being scanned: ask the master that owns it now, or, when no master
    /// does, the first shard whose lowest slot comes after it.
    pub slot: u16,
    /// The cursor to send that master.
    pub node_cursor: u64,
}

impl ClusterCursor {
    /// Reads the cursor a caller sent; the error is [`INVALID_CURSOR`], as from Redis.
    pub fn parse(text: &[u8]) -> Result<ClusterCursor, ProtocolError> {
        let value: u64 = std::str::from_utf8(text)
            .ok()
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| ProtocolError::new(INVALID_CURSOR))?;
        Ok(ClusterCursor {
            // The mask keeps 14 bits, so the value fits a u16.
            slot: (value & SLOT_MASK) as u16,
            node_cursor: value >> SLOT_BITS,
        })
    }

    /// The cursor to give the caller after the master of `self.slot` replied `node_next`:
    /// the same shard further on, or, once that shard is done (`node_next` 0), the start of
    /// the shard whose lowest slot is `next_shard` (None: this was the last, and the cursor is
    /// 0). Errors when `node_next` is too large to share 64 bits with a slot (2^50 and up,
    /// which no table reaches).
    pub fn next(self, node_next: u64, next_shard: Option<u16>) -> Result<u64, ProtocolError> {
        if node_next == 0 {
            return Ok(next_shard.map_or(0, |slot| u64::from(slot) & SLOT_MASK));
        }
        if node_next >> (64 - SLOT_BITS) != 0 {
            return Err(ProtocolError::new(format!(
                "ERR the node's SCAN cursor {node_next} is too large to carry with its slot"
            )));
        }
        Ok(node_next << SLOT_BITS | u64::from(self.slot) & SLOT_MASK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_starts_at_slot_zero_from_the_nodes_start() {
        let start = ClusterCursor::parse(b"0").unwrap();
        assert_eq!(
            start,
            ClusterCursor {
                slot: 0,
                node_cursor: 0
            }
        );
    }

    #[test]
    fn a_cursor_round_trips_through_its_decimal_form() {
        let at = ClusterCursor {
            slot: 5461,
            node_cursor: 0,
        };
        let next = at.next(1234, Some(10923)).unwrap();
        let back = ClusterCursor::parse(next.to_string().as_bytes()).unwrap();
        assert_eq!(
            back,
            ClusterCursor {
                slot: 5461,
                node_cursor: 1234
            }
        );
    }

    #[test]
    fn a_finished_shard_moves_to_the_next_and_the_last_ends_the_scan() {
        let at = ClusterCursor {
            slot: 5461,
            node_cursor: 99,
        };
        assert_eq!(at.next(0, Some(10923)).unwrap(), 10923);
        assert_eq!(at.next(0, None).unwrap(), 0);
    }

    #[test]
    fn bad_cursors_get_redis_words() {
        for bad in [
            &b""[..],
            b"-1",
            b"abc",
            b"1 ",
            b"18446744073709551616",
            b"+1",
        ] {
            assert_eq!(
                ClusterCursor::parse(bad).unwrap_err().to_string(),
                INVALID_CURSOR,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_node_cursor_too_large_to_carry_is_an_error_not_a_wrong_cursor() {
        let at = ClusterCursor {
            slot: 1,
            node_cursor: 0,
        };
        assert!(at.next(1 << 50, None).is_err());
        assert!(at.next((1 << 50) - 1, None).is_ok());
    }
}
