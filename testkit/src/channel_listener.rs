//! `ChannelListener`: a subscriber to one channel of one node, classic (`SUBSCRIBE`) or sharded
//! (`SSUBSCRIBE`, which the `redis` crate's sync pub/sub lacks), on a plain RESP2 connection
//! read by its own thread. Every message is parsed with the protocol crate, or kept as
//! unreadable text. Stops when dropped.

use std::io::{BufReader, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use hotkey_protocol::Message;
use redis::Value;

/// A subscription to one channel of one node.
pub struct ChannelListener {
    messages: Receiver<Result<Message, String>>,
    stream: TcpStream,
    thread: Option<thread::JoinHandle<()>>,
}

impl ChannelListener {
    /// Subscribes to `channel` at `addr` (`host:port`) with `SSUBSCRIBE` when `sharded`, else
    /// `SUBSCRIBE`; returns once the server confirmed.
    pub fn new(addr: &str, channel: &str, sharded: bool) -> ChannelListener {
        let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        let verb = if sharded { "SSUBSCRIBE" } else { "SUBSCRIBE" };
        let request = format!(
            "*2\r\n${}\r\n{verb}\r\n${}\r\n{channel}\r\n",
            verb.len(),
            channel.len()
        );
        stream.write_all(request.as_bytes()).expect("subscribe");
        let reader = stream.try_clone().expect("clone the stream");
        let (tx, rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = thread::spawn(move || {
            let mut reader = BufReader::new(reader);
            let mut parser = redis::Parser::new();
            // Ends when the stream is shut down (drop) or the server goes away.
            while let Ok(value) = parser.parse_value(&mut reader) {
                let Value::Array(items) = value else { continue };
                let kind = items.first().and_then(text).unwrap_or_default();
                match kind.as_str() {
                    "subscribe" | "ssubscribe" => {
                        let _ = ready_tx.send(());
                    }
                    "message" | "smessage" => {
                        let payload = items.get(2).and_then(bytes).unwrap_or_default();
                        let parsed = Message::from_json(&payload)
                            .map_err(|_| String::from_utf8_lossy(&payload).into_owned());
                        if tx.send(parsed).is_err() {
                            return;
                        }
                    }
                    _ => {}
                }
            }
        });
        ready_rx
            .recv_timeout(crate::wait::scaled(Duration::from_secs(10)))
            .unwrap_or_else(|_| panic!("{verb} {channel} at {addr} was not confirmed"));
        ChannelListener {
            messages: rx,
            stream,
            thread: Some(thread),
        }
    }

    /// The next message within `timeout`; `Err` holds a payload that is not an event.
    pub fn next_within(&self, timeout: Duration) -> Option<Result<Message, String>> {
        self.messages.recv_timeout(timeout).ok()
    }

    /// Every message that arrives within `period`.
    pub fn collect_for(&self, period: Duration) -> Vec<Result<Message, String>> {
        let deadline = Instant::now() + period;
        let mut out = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.messages.recv_timeout(left) {
                Ok(m) => out.push(m),
                Err(_) => break,
            }
        }
        out
    }

    /// The first event within `timeout` that `want` accepts.
    pub fn wait_for(&self, timeout: Duration, want: impl Fn(&Message) -> bool) -> Option<Message> {
        let deadline = crate::wait::deadline(timeout);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.messages.recv_timeout(left) {
                Ok(Ok(m)) if want(&m) => return Some(m),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    }
}

fn bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b.clone()),
        Value::SimpleString(s) => Some(s.as_bytes().to_vec()),
        _ => None,
    }
}

fn text(v: &Value) -> Option<String> {
    bytes(v).map(|b| String::from_utf8_lossy(&b).into_owned())
}

impl Drop for ChannelListener {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
