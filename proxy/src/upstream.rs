//! Raw connections to a Redis server: requests go up as the client's RESP bytes and replies
//! come back as whole raw frames, never parsed into values (`redis-protocol` finds where a
//! frame ends, without copying it).
//!
//! - [`Connection`]: shared and pipelined; replies are matched to requests in order, RESP3
//!   pushes are set aside (to [`Endpoint::pushes`]).
//! - [`Tunnel`]: a client's own connection; every frame comes back in order, unmatched.
//!
//! The shared connections built on `Connection` are [`crate::lanes`].
//!
//! Each connects over TCP or TLS ([`Tls`], for `rediss://`) and runs the [`Endpoint`]'s
//! handshake first.

mod frames;
mod handshake;
mod tls;

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use frames::Frames;
pub use tls::{Tls, TlsError};

/// The length of the whole frame at the front of `buf` (a reply in `protocol`, or the other
/// version when that one refuses it); None when it is not whole or not RESP.
pub fn frame_len(buf: &[u8], protocol: Protocol) -> Option<usize> {
    frames::frame_length(buf, protocol)
}

/// How many bytes of queued requests one write takes at most.
const BATCH_BYTES: usize = 64 * 1024;
/// A request at least this large is written on its own rather than copied into a batch.
const DIRECT_WRITE_BYTES: usize = 16 * 1024;

/// Where and how to connect, and what to set up on each new connection before use.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// A host name or an IP address.
    pub host: String,
    /// The TCP port.
    pub port: u16,
    /// TLS (`rediss://`), and how the server's certificate is checked.
    pub tls: Option<Tls>,
    /// `AUTH [user] password` (or `HELLO 3 AUTH`); with a password and no user, the `default`
    /// user.
    pub user: Option<String>,
    /// The password of `user` (or of `default`).
    pub password: Option<String>,
    /// `HELLO 3` when `Resp3`.
    pub protocol: Protocol,
    /// `SELECT` when not 0.
    pub db: i64,
    /// `READONLY` (cluster replicas).
    pub readonly: bool,
    /// `CLIENT TRACKING ON REDIRECT <id>`.
    pub tracking_redirect: Option<i64>,
    /// `CLIENT SETNAME` (e.g. "hotkey-proxy").
    pub client_name: Option<String>,
    /// Where a [`Connection`] sends the RESP3 push frames it receives (with `CLIENT
    /// TRACKING`, invalidations). Without a sink (or once it is closed) they are dropped with a
    /// warning in the log; they are never taken for a reply. Unbounded so that no invalidation is ever lost; its reader keeps it
    /// short.
    pub pushes: Option<mpsc::UnboundedSender<Bytes>>,
}

impl Endpoint {
    /// A plain endpoint: RESP2, no credentials, db 0, nothing else set up.
    pub fn new(host: impl Into<String>, port: u16) -> Endpoint {
        Endpoint {
            host: host.into(),
            port,
            tls: None,
            user: None,
            password: None,
            protocol: Protocol::Resp2,
            db: 0,
            readonly: false,
            tracking_redirect: None,
            client_name: None,
            pushes: None,
        }
    }

    /// `host:port`, as errors name it.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// The protocol a connection speaks after its handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// No `HELLO`; credentials go by `AUTH`.
    Resp2,
    /// `HELLO 3` (with `AUTH` when there is a password).
    Resp3,
}

/// Why an upstream connection, request or handshake failed.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// The TCP connect failed.
    #[error("connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: Arc<io::Error>,
    },
    /// The connect and the handshake together took longer than the connect timeout.
    #[error("connect to {addr}: not connected and set up within {timeout:?}")]
    ConnectTimeout { addr: String, timeout: Duration },
    /// Reading or writing an established connection failed.
    #[error("{addr}: {source}")]
    Io {
        addr: String,
        source: Arc<io::Error>,
    },
    /// A reply did not come in time: the connection is closed, as later replies could no
    /// longer be matched to their requests.
    #[error("{addr}: no reply within {timeout:?}")]
    Timeout { addr: String, timeout: Duration },
    /// The server closed the connection, or it was closed after an earlier failure.
    #[error("{addr}: the connection is closed")]
    Closed { addr: String },
    /// The server refused a command of the handshake; `reply` is its error text.
    #[error("{addr}: {command}: {reply}")]
    Handshake {
        addr: String,
        command: &'static str,
        reply: String,
    },
    /// The TLS handshake failed (e.g. a certificate not signed by a trusted root).
    #[error("{addr}: TLS: {detail}")]
    Tls { addr: String, detail: String },
    /// The server sent bytes that are not RESP.
    #[error("{addr}: the server sent bytes that are not RESP: {detail}")]
    Protocol { addr: String, detail: String },
}

impl UpstreamError {
    /// The error text a client should get, without the leading `-`: the server's own words
    /// for a refused handshake (e.g. `WRONGPASS invalid username-password pair…`), else an
    /// `ERR` naming the upstream and what went wrong. It holds no line end.
    pub fn reply_text(&self) -> String {
        let text = match self {
            UpstreamError::Handshake { reply, .. } => reply.clone(),
            other => format!("ERR upstream {other}"),
        };
        text.replace(['\r', '\n'], " ")
    }

    fn io(addr: &str, source: io::Error) -> UpstreamError {
        UpstreamError::Io {
            addr: addr.to_string(),
            source: Arc::new(source),
        }
    }
}

/// The reading half of a connection, plain or TLS.
type Reader = Box<dyn AsyncRead + Send + Unpin>;
/// The writing half of a connection, plain or TLS.
type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// A connection, set up by the handshake, as its two halves, and the frames read past the
/// handshake's replies.
async fn open(
    endpoint: &Endpoint,
    connect_timeout: Duration,
) -> Result<(Reader, Writer, Frames), UpstreamError> {
    let addr = endpoint.address();
    let connect = async {
        let tcp = TcpStream::connect((endpoint.host.as_str(), endpoint.port))
            .await
            .map_err(|e| UpstreamError::Connect {
                addr: addr.clone(),
                source: Arc::new(e),
            })?;
        // Requests are batched by the writer already; Nagle would only add latency.
        tcp.set_nodelay(true)
            .map_err(|e| UpstreamError::io(&addr, e))?;
        let mut frames = Frames::new(endpoint.protocol);
        let (read, write): (Reader, Writer) = match &endpoint.tls {
            None => {
                let mut tcp = tcp;
                handshake::run(&mut tcp, &mut frames, endpoint).await?;
                let (read, write) = tcp.into_split();
                (Box::new(read), Box::new(write))
            }
            Some(tls) => {
                let mut stream = tls.connect(&endpoint.host, &addr, tcp).await?;
                handshake::run(&mut stream, &mut frames, endpoint).await?;
                let (read, write) = tokio::io::split(stream);
                (Box::new(read), Box::new(write))
            }
        };
        Ok((read, write, frames))
    };
    tokio::time::timeout(connect_timeout, connect)
        .await
        .map_err(|_| UpstreamError::ConnectTimeout {
            addr: addr.clone(),
            timeout: connect_timeout,
        })?
}

/// Read more bytes into `buf`, with room for a large read.
async fn fill(read: &mut Reader, buf: &mut BytesMut) -> io::Result<usize> {
    if buf.capacity() - buf.len() < frames::MIN_READ {
        buf.reserve(frames::READ_SIZE);
    }
    read.read_buf(buf).await
}

/// What the tasks of a [`Connection`] and its handles share.
struct Shared {
    addr: String,
    /// Why the connection broke: set once, before the tasks stop, so every pending request
    /// fails with it.
    cause: OnceLock<UpstreamError>,
    stop: CancellationToken,
}

impl Shared {
    fn break_with(&self, cause: UpstreamError) {
        let _ = self.cause.set(cause);
        self.stop.cancel();
    }

    fn cause(&self) -> UpstreamError {
        self.cause
            .get()
            .cloned()
            .unwrap_or_else(|| UpstreamError::Closed {
                addr: self.addr.clone(),
            })
    }
}

struct Queued {
    raw: Bytes,
    reply: oneshot::Sender<Bytes>,
}

/// A pipelined connection: requests are written in the order `request` is called, replies are
/// matched to them in order. Cheap to clone (a handle to the tasks that own the socket); the
/// socket closes when the last handle is dropped and the replies in flight are in.
#[derive(Clone)]
pub struct Connection {
    requests: mpsc::UnboundedSender<Queued>,
    shared: Arc<Shared>,
}

impl Connection {
    /// Connect and run the handshake, both within `connect_timeout`.
    pub async fn connect(
        endpoint: &Endpoint,
        connect_timeout: Duration,
    ) -> Result<Connection, UpstreamError> {
        let (read, write, frames) = open(endpoint, connect_timeout).await?;
        let shared = Arc::new(Shared {
            addr: endpoint.address(),
            cause: OnceLock::new(),
            stop: CancellationToken::new(),
        });
        let (requests, queued) = mpsc::unbounded_channel();
        let (written, replies_due) = mpsc::unbounded_channel();
        tokio::spawn(write_requests(write, queued, written, shared.clone()));
        tokio::spawn(read_replies(
            read,
            frames,
            replies_due,
            endpoint.pushes.clone(),
            shared.clone(),
        ));
        Ok(Connection { requests, shared })
    }

    /// Queue `raw` (exactly one whole RESP request) now, before the returned future is first
    /// polled, so two calls from one task are written in call order, and return the future of
    /// its one raw reply frame. `timeout` (counted from the future's first poll): if the reply
    /// is not there in time the connection is broken (replies can no longer be matched): every
    /// pending request fails with the same error and the connection closes.
    pub fn request(
        &self,
        raw: Bytes,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<Bytes, UpstreamError>> + Send + 'static {
        let (reply, replied) = oneshot::channel();
        let queued = if self.is_broken() {
            Err(self.shared.cause())
        } else {
            self.requests
                .send(Queued { raw, reply })
                .map_err(|_| self.shared.cause())
        };
        let shared = self.shared.clone();
        async move {
            queued?;
            let replied = match timeout {
                None => replied.await,
                Some(timeout) => match tokio::time::timeout(timeout, replied).await {
                    Ok(replied) => replied,
                    Err(_) => {
                        shared.break_with(UpstreamError::Timeout {
                            addr: shared.addr.clone(),
                            timeout,
                        });
                        return Err(shared.cause());
                    }
                },
            };
            replied.map_err(|_| shared.cause())
        }
    }

    /// True once the connection can take no more requests (closed, failed or timed out).
    pub fn is_broken(&self) -> bool {
        // The cause is set before the stop: one atomic load, where the token takes a lock.
        self.shared.cause.get().is_some()
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("addr", &self.shared.addr)
            .field("broken", &self.is_broken())
            .finish()
    }
}

/// The writer: takes queued requests in order, hands their reply slots to the reader before
/// their bytes leave (so a reply never arrives unexpected), and writes as many as are queued
/// in one `write_all`.
async fn write_requests(
    mut write: Writer,
    mut queued: mpsc::UnboundedReceiver<Queued>,
    written: mpsc::UnboundedSender<oneshot::Sender<Bytes>>,
    shared: Arc<Shared>,
) {
    let mut batch = BytesMut::with_capacity(BATCH_BYTES);
    // One stop future for the connection's life: polling it again is cheap, making a new one
    // for every batch takes the token's lock.
    let stop = shared.stop.cancelled();
    tokio::pin!(stop);
    loop {
        let first = tokio::select! {
            _ = &mut stop => return,
            first = queued.recv() => first,
        };
        let Some(first) = first else {
            // Every handle is gone. The write half stays open until the reader has the
            // replies still due: a server that sees the connection close drops them.
            drop(written);
            stop.await;
            return;
        };
        let mut next = Some(first);
        while let Some(request) = next.take() {
            if written.send(request.reply).is_err() {
                return;
            }
            if request.raw.len() >= DIRECT_WRITE_BYTES {
                if !write_out(&mut write, &mut batch, &shared, stop.as_mut()).await
                    || !write_all(&mut write, &request.raw, &shared, stop.as_mut()).await
                {
                    return;
                }
            } else {
                batch.extend_from_slice(&request.raw);
            }
            if batch.len() < BATCH_BYTES {
                next = queued.try_recv().ok();
            }
        }
        if !write_out(&mut write, &mut batch, &shared, stop.as_mut()).await {
            return;
        }
    }
}

/// Write and clear the batch; false when the connection broke.
async fn write_out(
    write: &mut Writer,
    batch: &mut BytesMut,
    shared: &Shared,
    stop: Pin<&mut WaitForCancellationFuture<'_>>,
) -> bool {
    if batch.is_empty() {
        return true;
    }
    let ok = write_all(write, batch, shared, stop).await;
    batch.clear();
    ok
}

async fn write_all(
    write: &mut Writer,
    bytes: &[u8],
    shared: &Shared,
    stop: Pin<&mut WaitForCancellationFuture<'_>>,
) -> bool {
    tokio::select! {
        _ = stop => false,
        // The flush matters for TLS, which may hold the last record back.
        written = async { write.write_all(bytes).await?; write.flush().await } => match written {
            Ok(()) => true,
            Err(e) => {
                shared.break_with(UpstreamError::io(&shared.addr, e));
                false
            }
        },
    }
}

/// The reader: splits the replies off the read buffer and hands each to the oldest request
/// waiting; pushes go to the sink. It ends the connection on EOF, an error, a stop, or when
/// the writer is gone and no reply is due.
async fn read_replies(
    mut read: Reader,
    mut frames: Frames,
    mut replies_due: mpsc::UnboundedReceiver<oneshot::Sender<Bytes>>,
    pushes: Option<mpsc::UnboundedSender<Bytes>>,
    shared: Arc<Shared>,
) {
    let mut waiting = VecDeque::new();
    let stop = shared.stop.cancelled();
    tokio::pin!(stop);
    let cause = 'read: loop {
        loop {
            let frame = match frames.next() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(detail) => break 'read protocol_error(&shared.addr, detail),
            };
            if frame.push {
                push(&pushes, frame.bytes, &shared.addr);
                continue;
            }
            let Some(reply) = waiting.pop_front().or_else(|| replies_due.try_recv().ok()) else {
                break 'read protocol_error(&shared.addr, "a reply to no request".into());
            };
            // The requester may have given up; the reply is consumed all the same, which
            // keeps the ones after it matched.
            let _ = reply.send(frame.bytes);
        }
        let idle = waiting.is_empty();
        tokio::select! {
            _ = &mut stop => break shared.cause(),
            due = replies_due.recv(), if idle => match due {
                Some(reply) => waiting.push_back(reply),
                None => break UpstreamError::Closed { addr: shared.addr.clone() },
            },
            n = fill(&mut read, &mut frames.buf) => match n {
                Ok(0) => break UpstreamError::Closed { addr: shared.addr.clone() },
                Ok(_) => {}
                Err(e) => break UpstreamError::io(&shared.addr, e),
            },
        }
    };
    shared.break_with(cause);
}

fn protocol_error(addr: &str, detail: String) -> UpstreamError {
    UpstreamError::Protocol {
        addr: addr.to_string(),
        detail,
    }
}

fn push(pushes: &Option<mpsc::UnboundedSender<Bytes>>, frame: Bytes, addr: &str) {
    let unsent = match pushes {
        Some(sink) => sink.send(frame).err().map(|e| e.0),
        None => Some(frame),
    };
    if let Some(frame) = unsent {
        tracing::debug!(
            upstream = addr,
            ?frame,
            "a push frame with no sink to take it"
        );
    }
}

/// A connection of a client's own (pub/sub, MULTI, SELECT, its own tracking, MONITOR): bytes
/// go up as the client sends them and every frame the server sends comes back in order,
/// replies and pushes alike, with no matching. Split it to read and write from two tasks.
pub struct Tunnel {
    pub sender: TunnelSender,
    pub receiver: TunnelReceiver,
}

impl Tunnel {
    /// Connect and run the handshake, both within `connect_timeout`.
    pub async fn open(
        endpoint: &Endpoint,
        connect_timeout: Duration,
    ) -> Result<Tunnel, UpstreamError> {
        let (read, write, frames) = open(endpoint, connect_timeout).await?;
        let addr = endpoint.address();
        Ok(Tunnel {
            sender: TunnelSender {
                write,
                addr: addr.clone(),
            },
            receiver: TunnelReceiver { read, frames, addr },
        })
    }
}

/// The writing half of a [`Tunnel`].
pub struct TunnelSender {
    write: Writer,
    addr: String,
}

impl TunnelSender {
    /// Write `raw` (whole requests) to the server.
    pub async fn send(&mut self, raw: Bytes) -> Result<(), UpstreamError> {
        let sent = async {
            self.write.write_all(&raw).await?;
            self.write.flush().await
        };
        sent.await.map_err(|e| UpstreamError::io(&self.addr, e))
    }
}

/// The reading half of a [`Tunnel`].
pub struct TunnelReceiver {
    read: Reader,
    frames: Frames,
    addr: String,
}

impl TunnelReceiver {
    /// The next frame the server sent, reply or push; `None` once the server closed the
    /// connection between frames. A connection closed inside a frame is `Closed`.
    pub async fn next_frame(&mut self) -> Option<Result<Bytes, UpstreamError>> {
        loop {
            match self.frames.next() {
                Ok(Some(frame)) => return Some(Ok(frame.bytes)),
                Ok(None) => {}
                Err(detail) => return Some(Err(protocol_error(&self.addr, detail))),
            }
            match fill(&mut self.read, &mut self.frames.buf).await {
                Ok(0) if self.frames.buf.is_empty() => return None,
                Ok(0) => {
                    return Some(Err(UpstreamError::Closed {
                        addr: self.addr.clone(),
                    }));
                }
                Ok(_) => {}
                Err(e) => return Some(Err(UpstreamError::io(&self.addr, e))),
            }
        }
    }
}
