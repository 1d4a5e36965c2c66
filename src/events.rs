//! The events the module publishes on its channel (`hotkey.channel`): their numbering, the
//! run id, and the translation of hot-set changes into the wire format of
//! [`hotkey_protocol`]. Publishing itself happens in the shell (`lib.rs`), on the tick or after
//! a command, never on the filter's path.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::{SystemTime, UNIX_EPOCH};

use hotkey_protocol::{Event, Heartbeat, KeyEvent, Message, Replica, ReplicasEvent, Role};

use crate::hot_set::{Change, ChangeKind};

/// The numbering of this run's messages.
#[derive(Debug, Clone)]
pub struct Events {
    run_id: String,
    seq: u64,
    last_heartbeat_ms: Option<u64>,
    /// In a cluster: the node's id and role, which every message carries.
    node: Option<(String, Role)>,
}

impl Default for Events {
    fn default() -> Events {
        Events::new()
    }
}

impl Events {
    /// A new run: a fresh random run id, `seq` 0 (the first message is 1).
    pub fn new() -> Events {
        Events {
            run_id: new_run_id(),
            seq: 0,
            last_heartbeat_ms: None,
            node: None,
        }
    }

    /// In a cluster: the node's id and role, for the messages from now on.
    pub fn set_node(&mut self, node_id: &str, role: Role) {
        if self
            .node
            .as_ref()
            .is_none_or(|(id, r)| id != node_id || *r != role)
        {
            self.node = Some((node_id.to_owned(), role));
        }
    }

    /// The seq of the last message made (0 before the first).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The next message, numbered `seq + 1`. Every message made must be published: a
    /// subscriber takes a missing number for a lost message.
    pub fn message(&mut self, event: Event) -> Message {
        self.seq += 1;
        let message = Message::new(self.seq, self.run_id.clone(), wall_clock_ms(), event);
        match &self.node {
            Some((id, role)) => message.from_node(id.clone(), *role),
            None => message,
        }
    }

    /// The messages for hot-set changes, in order.
    pub fn changes(&mut self, changes: &[Change]) -> Vec<Message> {
        changes.iter().map(|c| self.message(key_event(c))).collect()
    }

    /// The message for a new list of healthy replicas.
    pub fn replicas(&mut self, replicas: Vec<Replica>) -> Message {
        self.message(Event::Replicas(ReplicasEvent::new(replicas)))
    }

    /// The heartbeat, when one is due at `now_ms` (every `every_ms`).
    pub fn heartbeat(
        &mut self,
        now_ms: u64,
        every_ms: u64,
        heartbeat: Heartbeat,
    ) -> Option<Message> {
        if self
            .last_heartbeat_ms
            .is_some_and(|last| !crate::clock::is_due(last, now_ms, every_ms))
        {
            return None;
        }
        self.last_heartbeat_ms = Some(now_ms);
        Some(self.message(Event::Heartbeat(heartbeat)))
    }
}

/// The event of one change.
pub fn key_event(change: &Change) -> Event {
    let body = KeyEvent::new(
        change.db,
        &change.key,
        round(change.reads_per_sec),
        round(change.writes_per_sec),
        change.advice,
    );
    match change.kind {
        ChangeKind::Hot => Event::Hot(body),
        ChangeKind::Cold => Event::Cold(body),
        ChangeKind::Update => Event::Update(body),
    }
}

/// Rates to two decimals: the estimates are not more precise, and the JSON stays short.
fn round(rate: f64) -> f64 {
    (rate * 100.0).round() / 100.0
}

/// 40 hex digits, like the server's own run id: random per load, so a subscriber can tell
/// a restarted (or reloaded) module from a gap.
fn new_run_id() -> String {
    let state = RandomState::new();
    let seed = wall_clock_ms() ^ u64::from(std::process::id()).rotate_left(32);
    let words = [0u64, 1, 2].map(|i| state.hash_one((seed, i)));
    let hex = format!("{:016x}{:016x}{:016x}", words[0], words[1], words[2]);
    hex[..40].to_owned()
}

fn wall_clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use hotkey_protocol::{Advice, ReadsTo, VERSION};

    use super::*;

    fn change(kind: ChangeKind, key: &[u8]) -> Change {
        Change {
            kind,
            db: 1,
            key: key.to_vec(),
            reads_per_sec: 1234.5678,
            writes_per_sec: 0.0,
            advice: (kind != ChangeKind::Cold)
                .then_some(Advice::new(ReadsTo::Master, 100).read_hot(true)),
        }
    }

    #[test]
    fn messages_are_numbered_without_gaps_from_one() {
        let mut events = Events::new();
        let mut all = events.changes(&[
            change(ChangeKind::Hot, b"a"),
            change(ChangeKind::Cold, b"b"),
        ]);
        all.push(events.replicas(Vec::new()));
        all.extend(events.heartbeat(0, 1000, Heartbeat::new(1, 0)));
        let seqs: Vec<u64> = all.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, [1, 2, 3, 4]);
        assert_eq!(events.seq(), 4);
        assert!(
            all.iter()
                .all(|m| m.run_id == events.run_id() && m.v == VERSION)
        );
        assert!(matches!(&all[1].event, Event::Cold(k) if k.advice.is_none()));
    }

    #[test]
    fn in_a_cluster_messages_name_the_node() {
        let mut events = Events::new();
        assert_eq!(events.replicas(Vec::new()).node_id, None);
        events.set_node("e7d1", Role::Replica);
        let m = events.replicas(Vec::new());
        assert_eq!(m.node_id.as_deref(), Some("e7d1"));
        assert_eq!(m.role, Some(Role::Replica));
        let json = m.to_json();
        assert!(
            json.contains(r#""node_id":"e7d1","role":"replica""#),
            "{json}"
        );
    }

    #[test]
    fn run_ids_are_new_each_time() {
        let (a, b) = (Events::new(), Events::new());
        assert_eq!(a.run_id().len(), 40);
        assert!(a.run_id().bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a.run_id(), b.run_id());
    }

    #[test]
    fn heartbeats_come_every_period() {
        let mut events = Events::new();
        let hb = Heartbeat::new(0, 0);
        let at = |e: &mut Events, now| e.heartbeat(now, 1000, hb).is_some();
        assert!(at(&mut events, 0));
        assert!(!at(&mut events, 500));
        // 25 ms of slack for the cron's jitter, no more.
        assert!(!at(&mut events, 900));
        assert!(at(&mut events, 980));
        assert!(!at(&mut events, 1800));
        assert!(at(&mut events, 1999));
    }

    #[test]
    fn rates_are_rounded_and_binary_keys_encoded() {
        let Event::Hot(e) = key_event(&change(ChangeKind::Hot, &[0xff, 0x01])) else {
            panic!("not hot");
        };
        assert_eq!(e.reads_per_sec, 1234.57);
        assert_eq!(e.key.key, None);
        assert_eq!(e.key.bytes().unwrap(), vec![0xff, 0x01]);
    }
}
