//! A subscriber to the module's channel, predicates on its events, and a GET load generator.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use hotkey_protocol::{Event, Message};
use redis::Connection;

use crate::server::Server;

/// Each of `conns` subscribed to `channel` (the subscription confirmed), reading with the
/// scaled [`crate::WAIT`] deadline: for a test that publishes and reads what every one got.
pub fn subscribe_all<'a>(
    conns: impl IntoIterator<Item = &'a mut Connection>,
    channel: &str,
) -> Vec<redis::PubSub<'a>> {
    conns
        .into_iter()
        .map(|conn| {
            conn.set_read_timeout(Some(crate::scaled(crate::WAIT)))
                .expect("read timeout");
            let mut pubsub = conn.as_pubsub();
            pubsub.subscribe(channel).expect("SUBSCRIBE");
            pubsub
        })
        .collect()
}

/// The payload of the next message `pubsub` gets; panics if none comes within its deadline.
pub fn next_payload<T: redis::FromRedisValue>(pubsub: &mut redis::PubSub<'_>) -> T {
    pubsub
        .get_message()
        .expect("a published message")
        .get_payload()
        .expect("its payload")
}

/// A subscriber to the module's channel on its own thread: every message with the moment it
/// arrived, parsed with the protocol crate (the router's parser). Stops when dropped.
pub struct Subscriber {
    messages: Receiver<(Instant, Message)>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Subscriber {
    /// Subscribes to `channel` on `server`; returns once the subscription is active.
    pub fn new(server: &Server, channel: &str) -> Subscriber {
        let (tx, rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let mut conn = server.conn();
        let channel = channel.to_owned();
        let stopped = stop.clone();
        let thread = thread::spawn(move || {
            let mut pubsub = conn.as_pubsub();
            pubsub.subscribe(&channel).expect("SUBSCRIBE");
            pubsub
                .set_read_timeout(Some(Duration::from_millis(50)))
                .expect("read timeout");
            let _ = ready_tx.send(());
            while !stopped.load(Ordering::Relaxed) {
                match pubsub.get_message() {
                    Ok(msg) => {
                        let at = Instant::now();
                        let payload: Vec<u8> = msg.get_payload().expect("payload");
                        let message = Message::from_json(&payload).unwrap_or_else(|e| {
                            panic!("{e}: {}", String::from_utf8_lossy(&payload))
                        });
                        if tx.send((at, message)).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.is_timeout() => {}
                    // The server went away: the test sees no more messages.
                    Err(_) => return,
                }
            }
        });
        ready_rx
            .recv_timeout(crate::wait::scaled(Duration::from_secs(10)))
            .expect("subscription did not start");
        Subscriber {
            messages: rx,
            stop,
            thread: Some(thread),
        }
    }

    /// The next message within `timeout`, with its arrival time.
    pub fn next_within(&self, timeout: Duration) -> Option<(Instant, Message)> {
        self.messages.recv_timeout(timeout).ok()
    }

    /// The first message within `timeout` that `want` accepts; the ones before it are passed to
    /// `seen` (in order), so a test can check what came in between.
    pub fn wait_for(
        &self,
        timeout: Duration,
        mut want: impl FnMut(&Message) -> bool,
        mut seen: impl FnMut(&Message),
    ) -> Option<(Instant, Message)> {
        let deadline = crate::wait::deadline(timeout);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (at, m) = self.next_within(left)?;
            if want(&m) {
                return Some((at, m));
            }
            seen(&m);
        }
    }

    /// Every message that arrives within `window`.
    pub fn collect(&self, window: Duration) -> Vec<Message> {
        let deadline = Instant::now() + window;
        let mut all = Vec::new();
        while let Some((_, m)) =
            self.next_within(deadline.saturating_duration_since(Instant::now()))
        {
            all.push(m);
        }
        all
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The key of a key event (`hot`, `cold`, `update`) as bytes, or None for other events.
pub fn event_key(m: &Message) -> Option<Vec<u8>> {
    match &m.event {
        Event::Hot(k) | Event::Cold(k) | Event::Update(k) => k.key.bytes().ok(),
        _ => None,
    }
}

/// True for a `hot` event of `key`.
pub fn is_hot(m: &Message, key: &[u8]) -> bool {
    matches!(&m.event, Event::Hot(_)) && event_key(m).as_deref() == Some(key)
}

/// True for a `cold` event of `key`.
pub fn is_cold(m: &Message, key: &[u8]) -> bool {
    matches!(&m.event, Event::Cold(_)) && event_key(m).as_deref() == Some(key)
}

/// Sends `GET key` at about `per_sec` for `duration`, pipelined in batches of 10 per
/// millisecond slot, so the rate holds without a busy thread per request.
pub fn load(conn: &mut Connection, key: &[u8], per_sec: u64, duration: Duration) {
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < duration {
        let due = (start.elapsed().as_secs_f64() * per_sec as f64) as u64;
        if sent < due {
            let batch = (due - sent).min(200);
            let mut pipe = redis::pipe();
            for _ in 0..batch {
                pipe.cmd("GET").arg(key).ignore();
            }
            let _: () = pipe.query(conn).expect("GET load");
            sent += batch;
        } else {
            thread::sleep(Duration::from_millis(1));
        }
    }
}
