//! The order of a node's messages: each carries its node's `run_id` and a `seq` that grows by
//! one per message of the run. A subscriber that knows where a stream is (from the snapshot,
//! `HOTKEY.ROUTES`, or the last message) tells from the next message whether it is the next one,
//! one it has already seen, whether messages were lost, or whether the module restarted.

use std::collections::HashMap;

/// Where a message stands relative to its stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sequence {
    /// The next message.
    InOrder,
    /// At or before the position: already reflected (a message older than the snapshot).
    Old,
    /// Messages were lost between `expected` and `got`.
    Gap { expected: u64, got: u64 },
    /// Another `run_id`: the module restarted and every earlier state is gone.
    Restart,
}

/// One stream's position: its run and the last `seq` reflected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamPosition {
    pub run_id: String,
    pub seq: u64,
}

impl StreamPosition {
    pub fn new(run_id: &str, seq: u64) -> StreamPosition {
        StreamPosition {
            run_id: run_id.to_owned(),
            seq,
        }
    }

    /// Where a message of `run_id` numbered `seq` stands; the position does not move.
    pub fn check(&self, run_id: &str, seq: u64) -> Sequence {
        if run_id != self.run_id {
            Sequence::Restart
        } else if seq <= self.seq {
            Sequence::Old
        } else if seq != self.seq + 1 {
            Sequence::Gap {
                expected: self.seq + 1,
                got: seq,
            }
        } else {
            Sequence::InOrder
        }
    }

    /// [`StreamPosition::check`], then moves to the message unless it is old: for a reader that
    /// goes on after a gap or a restart rather than re-reading the snapshot.
    pub fn advance(&mut self, run_id: &str, seq: u64) -> Sequence {
        let sequence = self.check(run_id, seq);
        match sequence {
            Sequence::Old => {}
            Sequence::Restart => *self = StreamPosition::new(run_id, seq),
            Sequence::InOrder | Sequence::Gap { .. } => self.seq = seq,
        }
        sequence
    }
}

/// The streams of one subscription, by publishing node (`node_id` in a cluster, None outside
/// one): a channel may carry several nodes' streams, and a new run of one node is its restart.
#[derive(Debug, Clone, Default)]
pub struct Streams {
    by_node: HashMap<Option<String>, StreamPosition>,
}

impl Streams {
    /// Sets where `node`'s stream is (from a snapshot).
    pub fn set(&mut self, node: Option<&str>, position: StreamPosition) {
        self.by_node.insert(node.map(str::to_owned), position);
    }

    /// Advances `node`'s stream to a message; None for the first message of a node not seen
    /// before (it starts the stream).
    pub fn advance(&mut self, node: Option<&str>, run_id: &str, seq: u64) -> Option<Sequence> {
        match self.by_node.get_mut(&node.map(str::to_owned)) {
            Some(position) => Some(position.advance(run_id, seq)),
            None => {
                self.set(node, StreamPosition::new(run_id, seq));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_seq_is_in_order_a_jump_a_gap_and_a_new_run_a_restart() {
        let at = StreamPosition::new("a", 5);
        assert_eq!(at.check("a", 6), Sequence::InOrder);
        assert_eq!(at.check("a", 5), Sequence::Old);
        assert_eq!(at.check("a", 1), Sequence::Old);
        assert_eq!(
            at.check("a", 9),
            Sequence::Gap {
                expected: 6,
                got: 9
            }
        );
        assert_eq!(at.check("b", 6), Sequence::Restart);
        assert_eq!(at.check("b", 1), Sequence::Restart);
    }

    #[test]
    fn advancing_goes_on_after_a_gap_or_a_restart_but_not_back() {
        let mut at = StreamPosition::new("a", 5);
        assert_eq!(at.advance("a", 4), Sequence::Old);
        assert_eq!(at, StreamPosition::new("a", 5));
        assert_eq!(at.advance("a", 6), Sequence::InOrder);
        assert!(matches!(at.advance("a", 9), Sequence::Gap { .. }));
        assert_eq!(at.advance("a", 10), Sequence::InOrder);
        assert_eq!(at.advance("b", 1), Sequence::Restart);
        assert_eq!(at, StreamPosition::new("b", 1));
        assert_eq!(at.advance("b", 2), Sequence::InOrder);
    }

    #[test]
    fn each_node_is_a_stream_of_its_own() {
        let mut streams = Streams::default();
        streams.set(Some("n1"), StreamPosition::new("a", 5));
        assert_eq!(streams.advance(Some("n2"), "b", 40), None, "a new node");
        assert_eq!(streams.advance(Some("n1"), "a", 6), Some(Sequence::InOrder));
        assert_eq!(
            streams.advance(Some("n2"), "b", 41),
            Some(Sequence::InOrder)
        );
        assert_eq!(streams.advance(Some("n2"), "c", 1), Some(Sequence::Restart));
        assert_eq!(streams.advance(None, "x", 3), None);
        assert!(matches!(
            streams.advance(None, "x", 5),
            Some(Sequence::Gap {
                expected: 4,
                got: 5
            })
        ));
    }
}
