//! The shared connections to one server: a few *lanes*, each one pipelined connection that
//! many clients' commands share. A client always uses the same lane, and a command is queued
//! on its lane when it is dispatched, so one client's commands reach the server in the order
//! it sent them, also while the lane is being (re)connected: commands that arrive meanwhile
//! wait in order and go up once it is open, or all fail with the connect error.
//!
//! A lane that failed to connect answers at once with that error for `RETRY_AFTER`, so a down
//! server costs its clients one failed connect attempt per lane and interval, not one each.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::upstream::{Connection, Endpoint, UpstreamError};

/// How long a lane whose connect failed fails at once before it tries again.
const RETRY_AFTER: Duration = Duration::from_millis(200);

/// A request waiting for its lane to connect.
struct Waiting {
    raw: Bytes,
    timeout: Option<Duration>,
    reply: oneshot::Sender<Result<Bytes, UpstreamError>>,
}

enum Lane {
    Idle,
    Up(Connection),
    Connecting(Vec<Waiting>),
    Failed { at: Instant, error: UpstreamError },
}

/// The shared connections to one endpoint. Cheap to clone.
#[derive(Clone)]
pub struct Lanes {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: Endpoint,
    connect_timeout: Duration,
    lanes: Vec<Mutex<Lane>>,
}

impl Lanes {
    pub fn new(endpoint: Endpoint, count: usize, connect_timeout: Duration) -> Lanes {
        Lanes {
            inner: Arc::new(Inner {
                endpoint,
                connect_timeout,
                lanes: (0..count.max(1)).map(|_| Mutex::new(Lane::Idle)).collect(),
            }),
        }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.inner.endpoint
    }

    /// Queues `raw` on lane `lane` (modulo the count) now, and returns its reply.
    pub fn request(
        &self,
        lane: usize,
        raw: Bytes,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<Bytes, UpstreamError>> + Send + 'static {
        let index = lane % self.inner.lanes.len();
        let queued = self.queue(index, raw, timeout);
        async move {
            match queued {
                Queued::Sent(reply) => reply.await,
                Queued::Waiting(reply, addr) => reply
                    .await
                    .unwrap_or_else(|_| Err(UpstreamError::Closed { addr })),
                Queued::Failed(error) => Err(error),
            }
        }
    }

    fn queue(&self, index: usize, raw: Bytes, timeout: Option<Duration>) -> Queued {
        let mut lane = self.inner.lanes[index]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match &mut *lane {
            Lane::Up(conn) if !conn.is_broken() => {
                return Queued::Sent(Box::pin(conn.request(raw, timeout)));
            }
            Lane::Connecting(waiting) => {
                let (reply, rx) = oneshot::channel();
                waiting.push(Waiting {
                    raw,
                    timeout,
                    reply,
                });
                return Queued::Waiting(rx, self.inner.endpoint.address());
            }
            Lane::Failed { at, error } if at.elapsed() < RETRY_AFTER => {
                return Queued::Failed(error.clone());
            }
            _ => {}
        }
        let (reply, rx) = oneshot::channel();
        *lane = Lane::Connecting(vec![Waiting {
            raw,
            timeout,
            reply,
        }]);
        let lanes = self.clone();
        tokio::spawn(async move { lanes.connect(index).await });
        Queued::Waiting(rx, self.inner.endpoint.address())
    }

    /// Opens lane `index` and sends what waited for it, in order.
    async fn connect(&self, index: usize) {
        let opened = Connection::connect(&self.inner.endpoint, self.inner.connect_timeout).await;
        let mut lane = self.inner.lanes[index]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let waiting = match std::mem::replace(&mut *lane, Lane::Idle) {
            Lane::Connecting(waiting) => waiting,
            _ => Vec::new(),
        };
        match opened {
            Ok(conn) => {
                for w in waiting {
                    let reply = conn.request(w.raw, w.timeout);
                    tokio::spawn(async move {
                        let _ = w.reply.send(reply.await);
                    });
                }
                *lane = Lane::Up(conn);
            }
            Err(error) => {
                tracing::warn!(
                    "hotkey-proxy: cannot connect to {}:{}: {error}",
                    self.inner.endpoint.host,
                    self.inner.endpoint.port
                );
                for w in waiting {
                    let _ = w.reply.send(Err(error.clone()));
                }
                *lane = Lane::Failed {
                    at: Instant::now(),
                    error,
                };
            }
        }
    }
}

type Sent = std::pin::Pin<Box<dyn Future<Output = Result<Bytes, UpstreamError>> + Send>>;

enum Queued {
    Sent(Sent),
    Waiting(oneshot::Receiver<Result<Bytes, UpstreamError>>, String),
    Failed(UpstreamError),
}
