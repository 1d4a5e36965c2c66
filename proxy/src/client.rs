//! One client connection: requests read and parsed as they arrive, each dispatched at once
//! (so a pipelining client's commands travel pipelined upstream), replies written back in
//! the order the requests came, whatever answers first (cache, replica, master).
//!
//! A client starts on the shared connections. From the first command that holds state on its
//! connection (see [`crate::commands`]) it has an upstream connection of its own, a *tunnel*:
//! its bytes go up as sent and every frame the server sends comes back, pushes included, so
//! transactions, pub/sub, `MONITOR` and its own tracking behave as on a direct connection.
//! Commands that change how the client's later commands run (a protocol switch, a login, a
//! blocking command, the switch to a tunnel) wait until every earlier reply is in: they are
//! sequence points, as on a server, which runs one client's commands one after another.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::cluster::{InTransaction, Transaction};
use crate::commands::{self, Action};
use crate::engine::{
    ClientView, Engine, Failure, Login, ReplyFuture, Unauthenticated, error_reply, poll_once, ready,
};
use crate::metrics::Route as MetricRoute;
use crate::request::{self, Limits, Request};
use crate::session::{InFlight, WriteWindow};
use crate::upstream::{Protocol, Tunnel, TunnelSender};

/// Requests of one client in flight at most: a client that pipelines more waits (it is not
/// read) until replies go out, so a client costs bounded memory.
const MAX_IN_FLIGHT: usize = 1024;

/// Slots of a client's read-your-writes window (see [`WriteWindow`]): 2 KiB for a client
/// that writes; a client that writes more distinct keys within the window sends a growing
/// share of its hot reads to the master (16 keys: 6 %).
const WINDOW_SLOTS: usize = 256;

/// The room a client's reads are first given: most clients send small requests, and an idle
/// client's buffer is much of what it costs the proxy. A read that fills its room doubles the
/// room of the next ones, up to [`MAX_READ`], so a pipelining client or a large request is
/// still read in few calls.
const FIRST_READ: usize = 1024;
const MAX_READ: usize = 64 * 1024;

/// How clients are served.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub limits: Limits,
    /// Close a client idle this long (not for one holding its own connection, which may be
    /// subscribed or blocked, as Redis's `timeout`). None: never.
    pub idle_timeout: Option<Duration>,
    /// Bytes of replies a client has not read before it is disconnected.
    pub output_limit: usize,
    pub read_your_writes: Duration,
    pub pool_size: usize,
}

/// Why a client connection ended, for the metrics.
pub type Reason = &'static str;

/// What a client's connection state is.
struct State {
    protocol: Protocol,
    name: Option<Bytes>,
    lane: usize,
    window: WriteWindow,
    tunnel: Option<TunnelSender>,
    /// The client logged in as the proxy's user (see [`Unauthenticated`] for those that
    /// have not).
    logged_in: bool,
    /// On a cluster, the client's `MULTI` until `EXEC` or `DISCARD`.
    transaction: Option<Transaction>,
}

/// Serves one client until it leaves, breaks a limit, or `shutdown` (then the requests
/// already read are answered first). Returns why it ended.
pub async fn serve(
    engine: Arc<Engine>,
    socket: TcpStream,
    id: u64,
    settings: Arc<ClientSettings>,
    shutdown: CancellationToken,
) -> Reason {
    let _ = socket.set_nodelay(true);
    let (mut reader, writer) = socket.into_split();
    let (tx, rx) = mpsc::channel::<ReplyFuture>(MAX_IN_FLIGHT);
    let in_flight = Arc::new(InFlight::default());
    // Cancelled when the writer stops (the client stopped reading, or its socket broke), or
    // when the client's own upstream connection closes.
    let gone = CancellationToken::new();
    let writing = tokio::spawn(write_replies(
        rx,
        writer,
        settings.output_limit,
        in_flight.clone(),
        gone.clone(),
    ));
    let mut client = Client {
        engine,
        settings: settings.clone(),
        tx,
        in_flight,
        off_lane: Arc::default(),
        gone: gone.clone(),
        started: Instant::now(),
        state: State {
            protocol: Protocol::Resp2,
            name: None,
            lane: usize::try_from(id).unwrap_or(0) % settings.pool_size.max(1),
            window: WriteWindow::new(settings.read_your_writes, WINDOW_SLOTS),
            tunnel: None,
            logged_in: false,
            transaction: None,
        },
    };
    let mut buf = BytesMut::with_capacity(FIRST_READ);
    let reason = client.read_requests(&mut reader, &mut buf, &shutdown).await;
    drop(client);
    match writing.await {
        Ok(Err(writer_reason)) => writer_reason,
        _ => reason,
    }
}

struct Client {
    engine: Arc<Engine>,
    settings: Arc<ClientSettings>,
    tx: mpsc::Sender<ReplyFuture>,
    in_flight: Arc<InFlight>,
    off_lane: Arc<InFlight>,
    gone: CancellationToken,
    state: State,
    /// When the request being handled was read.
    started: Instant,
}

/// What the reader does after a request.
enum Next {
    Read,
    Close(Reason),
}

impl Client {
    async fn read_requests(
        &mut self,
        reader: &mut tokio::net::tcp::OwnedReadHalf,
        buf: &mut BytesMut,
        shutdown: &CancellationToken,
    ) -> Reason {
        let mut room = FIRST_READ;
        // Made once: a cancellation future registers its waiter when first polled and is
        // cheap to poll again, where a new one every read would take the token's lock.
        let stop = shutdown.cancelled();
        let gone = self.gone.clone().cancelled_owned();
        tokio::pin!(stop, gone);
        loop {
            loop {
                match request::parse(buf, &self.settings.limits) {
                    Ok(Some(request)) => {
                        if let Next::Close(reason) = self.handle(request).await {
                            return reason;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        self.engine.metrics().protocol_error();
                        self.reply(ready(error_reply(&e.to_string()))).await;
                        return "protocol-error";
                    }
                }
            }
            let idle_timeout = self
                .settings
                .idle_timeout
                .filter(|_| self.state.tunnel.is_none());
            let in_flight = &self.in_flight;
            // The clock starts once every reply is out: a client waiting for a slow or blocked
            // reply is not idle, and one whose last reply goes out later is still timed.
            let idle = async move {
                match idle_timeout {
                    Some(t) => {
                        in_flight.drained().await;
                        tokio::time::sleep(t).await;
                    }
                    None => std::future::pending().await,
                }
            };
            // Half the room left is enough: a new buffer for every small request would cost an
            // allocation each while earlier requests still hold the old one.
            if buf.capacity() - buf.len() < room / 2 {
                buf.reserve(room);
            }
            let spare = buf.capacity() - buf.len();
            tokio::select! {
                read = reader.read_buf(buf) => match read {
                    Ok(0) => return "eof",
                    Ok(n) if n >= spare => room = (room * 2).min(MAX_READ),
                    Ok(_) => {}
                    Err(_) => return "io-error",
                },
                () = idle => return "idle",
                () = &mut stop => return "shutdown",
                () = &mut gone => return "closed",
            }
        }
    }

    /// Queues a reply the proxy gave itself, counted as such.
    async fn answer(&mut self, reply: Bytes) {
        self.engine
            .metrics()
            .command(MetricRoute::Local, self.started.elapsed());
        self.reply(ready(reply)).await;
    }

    /// Queues a reply (waits while the client has too many in flight).
    async fn reply(&mut self, reply: ReplyFuture) {
        self.in_flight.add();
        if self.tx.send(reply).await.is_err() {
            self.in_flight.done();
        }
    }

    async fn handle(&mut self, request: Request) -> Next {
        self.started = Instant::now();
        if let Some(tunnel) = &mut self.state.tunnel {
            self.engine.metrics().tunneled();
            return match tunnel.send(request.raw).await {
                Ok(()) => Next::Read,
                Err(_) => Next::Close("upstream-closed"),
            };
        }
        if self.state.transaction.is_some() && !is(&request.args, "quit") {
            return self.in_transaction(request).await;
        }
        let action = commands::classify(&request.args);
        if !self.state.logged_in {
            match self.engine.unauthenticated() {
                Unauthenticated::Shared => {}
                Unauthenticated::MustLogIn => {
                    if let Some(refusal) = before_login(&action, &request) {
                        self.answer(error_reply(refusal)).await;
                        return Next::Read;
                    }
                }
                Unauthenticated::OwnConnection => {
                    if !matches!(action, Action::Auth { .. } | Action::Quit) {
                        return self.tunnel(Login::None, request.raw, &request.args).await;
                    }
                }
            }
        }
        match action {
            Action::Route => {
                let reply = self.dispatch(self.state.protocol, &request).await;
                self.reply(reply).await;
            }
            Action::Quit => {
                self.answer(Bytes::from_static(b"+OK\r\n")).await;
                return Next::Close("quit");
            }
            Action::Reset => {
                self.in_flight.drained().await;
                self.state.protocol = Protocol::Resp2;
                self.state.name = None;
                self.answer(Bytes::from_static(b"+RESET\r\n")).await;
            }
            Action::Hello { protocol } => self.hello(protocol.as_deref(), &request).await,
            Action::Auth { user, password } => {
                return self.auth(user, password).await;
            }
            Action::Select { db } => {
                let parsed = std::str::from_utf8(&db)
                    .ok()
                    .and_then(|d| d.parse::<i64>().ok());
                match parsed {
                    Some(db) if db == self.engine.db() => {
                        self.answer(Bytes::from_static(b"+OK\r\n")).await;
                    }
                    Some(_) => return self.tunnel(self.login(), request.raw, &request.args).await,
                    None => {
                        self.answer(error_reply("ERR value is not an integer or out of range"))
                            .await;
                    }
                }
            }
            Action::SetName { name } => {
                let reply = if commands::valid_client_name(&name) {
                    self.state.name = (!name.is_empty()).then_some(name);
                    Bytes::from_static(b"+OK\r\n")
                } else {
                    error_reply(commands::BAD_CLIENT_NAME)
                };
                self.answer(reply).await;
            }
            Action::GetName => {
                let reply = match (&self.state.name, self.state.protocol) {
                    (Some(name), _) => bulk(name),
                    (None, Protocol::Resp2) => Bytes::from_static(b"$-1\r\n"),
                    (None, Protocol::Resp3) => Bytes::from_static(b"_\r\n"),
                };
                self.answer(reply).await;
            }
            Action::Tunnel
                if self.engine.is_cluster()
                    && request.args.len() == 1
                    && is(&request.args, "multi") =>
            {
                self.state.transaction = Some(Transaction::default());
                self.answer(Bytes::from_static(b"+OK\r\n")).await;
            }
            Action::Tunnel => return self.tunnel(self.login(), request.raw, &request.args).await,
            Action::Refuse(text) => self.answer(error_reply(text)).await,
        }
        Next::Read
    }

    /// A command within a cluster transaction (see [`Transaction`]).
    async fn in_transaction(&mut self, request: Request) -> Next {
        let Some(transaction) = self.state.transaction.as_mut() else {
            return Next::Read;
        };
        match transaction.queue(&self.engine, &request.args, request.raw) {
            InTransaction::Reply(reply) => self.answer(reply).await,
            InTransaction::Discard => {
                self.state.transaction = None;
                self.answer(Bytes::from_static(b"+OK\r\n")).await;
            }
            InTransaction::Exec => {
                let Some(transaction) = self.state.transaction.take() else {
                    return Next::Read;
                };
                self.in_flight.drained().await;
                self.off_lane.drained().await;
                let (reply, written) = transaction.exec(&self.engine, self.state.protocol).await;
                self.state.window.wrote(&written, Instant::now());
                self.reply(ready(reply)).await;
            }
        }
        Next::Read
    }

    /// Who the client's own connection logs in as: the proxy's user once the client logged
    /// in as it, or when the server lets anyone be `default` (the proxy's user then); else
    /// nobody, and the client logs in on its connection itself (`HELLO 3 AUTH …`).
    fn login(&self) -> Login {
        if self.state.logged_in || self.engine.unauthenticated() == Unauthenticated::Shared {
            Login::Proxy
        } else {
            Login::None
        }
    }

    async fn dispatch(&mut self, protocol: Protocol, request: &Request) -> ReplyFuture {
        let view = ClientView {
            protocol,
            lane: self.state.lane,
            window: &mut self.state.window,
            in_flight: &self.in_flight,
            off_lane: &self.off_lane,
        };
        self.engine
            .dispatch(view, &request.args, request.raw.clone())
            .await
    }

    /// `HELLO [2|3]`: the server's answer on a shared connection of that protocol (which
    /// already speaks it, so nothing changes there); the client speaks it from then on.
    async fn hello(&mut self, protocol: Option<&[u8]>, request: &Request) {
        self.in_flight.drained().await;
        let wanted = match protocol {
            None => self.state.protocol,
            Some(b"2") => Protocol::Resp2,
            Some(b"3") => Protocol::Resp3,
            // The server's own error (`NOPROTO`), on the client's current protocol.
            Some(_) => self.state.protocol,
        };
        let reply = self.dispatch(wanted, request).await.await;
        if hotkey_protocol::errors::error_code(&reply).is_none() {
            self.state.protocol = wanted;
        }
        self.reply(ready(reply)).await;
    }

    /// `AUTH [user] password`, checked by the server on a new connection. The proxy's own
    /// user goes on sharing the proxy's connections and cache; any other user gets a
    /// connection of its own, logged in as that user, so the server applies its rights to
    /// every command and no cached reply reaches it.
    async fn auth(&mut self, user: Option<Bytes>, password: Bytes) -> Next {
        self.in_flight.drained().await;
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let name = user.as_deref().map(text);
        let login = Login::As {
            user: name.clone(),
            password: text(&password),
        };
        if name.as_deref().unwrap_or("default") != self.engine.user() {
            return self.tunnel(login, Bytes::new(), &[]).await;
        }
        let checked = match self.engine.own_endpoint(&login) {
            Ok(endpoint) => {
                crate::upstream::Connection::connect(&endpoint, self.engine.connect_timeout())
                    .await
                    .map(drop)
                    .map_err(Failure::from)
            }
            Err(e) => Err(e),
        };
        let reply = match checked {
            Ok(()) => {
                self.state.logged_in = true;
                Bytes::from_static(b"+OK\r\n")
            }
            Err(e) => error_reply(&e.reply_text()),
        };
        self.reply(ready(reply)).await;
        Next::Read
    }

    /// From now on the client has a connection of its own, opened after every earlier reply
    /// is in, speaking the client's protocol, with its name, logged in as `login`. `first`
    /// goes up first (empty: a login, answered `+OK` here once the connection is open); on a
    /// cluster the connection is to the master of the slot of `args`, its arguments.
    async fn tunnel(&mut self, login: Login, first: Bytes, args: &[Bytes]) -> Next {
        self.in_flight.drained().await;
        let opened = match self.engine.own_endpoint_for(&login, args) {
            Ok(mut endpoint) => {
                endpoint.protocol = self.state.protocol;
                endpoint.client_name = self
                    .state
                    .name
                    .as_deref()
                    .map(|n| String::from_utf8_lossy(n).into_owned());
                Tunnel::open(&endpoint, self.engine.connect_timeout())
                    .await
                    .map_err(Failure::from)
            }
            Err(e) => Err(e),
        };
        let Tunnel {
            mut sender,
            mut receiver,
        } = match opened {
            Ok(tunnel) => tunnel,
            Err(e) => {
                self.engine.metrics().upstream_error(e.kind());
                self.reply(ready(error_reply(&e.reply_text()))).await;
                return Next::Read;
            }
        };
        if first.is_empty() {
            self.reply(ready(Bytes::from_static(b"+OK\r\n"))).await;
        } else if sender.send(first).await.is_err() {
            return Next::Close("upstream-closed");
        }
        self.state.tunnel = Some(sender);
        let (tx, in_flight, gone) = (self.tx.clone(), self.in_flight.clone(), self.gone.clone());
        tokio::spawn(async move {
            while let Some(Ok(frame)) = receiver.next_frame().await {
                in_flight.add();
                if tx.send(ready(frame)).await.is_err() {
                    in_flight.done();
                    break;
                }
            }
            // The server closed the connection (QUIT, a kill, a crash): so does the proxy,
            // once what came before is written.
            drop(tx);
            gone.cancel();
        });
        Next::Read
    }
}

/// Redis's refusal of a command before the client logged in, or None for the ones it lets
/// through (`AUTH`, `QUIT`, `HELLO … AUTH`, which the server checks on the client's own
/// connection).
fn before_login(action: &Action, request: &Request) -> Option<&'static str> {
    match action {
        Action::Auth { .. } | Action::Quit => None,
        Action::Tunnel
            if request
                .args
                .first()
                .is_some_and(|c| c.eq_ignore_ascii_case(b"hello")) =>
        {
            None
        }
        Action::Hello { .. } => Some(HELLO_NOAUTH),
        _ => Some(NOAUTH),
    }
}

/// The server's reply to a command before the client logged in.
const NOAUTH: &str = "NOAUTH Authentication required.";

/// The server's reply to `HELLO` without `AUTH` before the client logged in.
const HELLO_NOAUTH: &str = "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time";

/// Whether the command `args` is `name` (lower case).
fn is(args: &[Bytes], name: &str) -> bool {
    args.first()
        .is_some_and(|c| c.eq_ignore_ascii_case(name.as_bytes()))
}

/// A bulk string reply.
fn bulk(data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + 16);
    out.extend_from_slice(format!("${}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out.freeze()
}

/// Writes replies in request order, as each is ready, gathering those ready together into
/// one write. Err when the client does not read its replies (`output_limit`) or its socket
/// breaks.
async fn write_replies(
    mut rx: mpsc::Receiver<ReplyFuture>,
    mut socket: OwnedWriteHalf,
    output_limit: usize,
    in_flight: Arc<InFlight>,
    gone: CancellationToken,
) -> Result<(), Reason> {
    let result = write_loop(&mut rx, &mut socket, output_limit, &in_flight).await;
    gone.cancel();
    // Replies that will not be written still count as taken.
    rx.close();
    while rx.try_recv().is_ok() {
        in_flight.done();
    }
    if result.is_ok() {
        let _ = socket.shutdown().await;
    }
    result
}

async fn write_loop(
    rx: &mut mpsc::Receiver<ReplyFuture>,
    socket: &mut OwnedWriteHalf,
    output_limit: usize,
    in_flight: &InFlight,
) -> Result<(), Reason> {
    let mut out = BytesMut::new();
    let mut current: Option<ReplyFuture> = None;
    let mut open = true;
    loop {
        // Everything ready now goes into `out` before the next write.
        loop {
            if current.is_none() && open {
                match rx.try_recv() {
                    Ok(next) => current = Some(next),
                    Err(mpsc::error::TryRecvError::Empty) => {}
                    Err(mpsc::error::TryRecvError::Disconnected) => open = false,
                }
            }
            let Some(pending) = current.as_mut() else {
                break;
            };
            match poll_once(pending).await {
                Some(reply) => {
                    current = None;
                    in_flight.done();
                    out.extend_from_slice(&reply);
                    if out.len() > output_limit {
                        return Err("output-limit");
                    }
                }
                None => break,
            }
        }
        if current.is_none() && out.is_empty() {
            if !open {
                return Ok(());
            }
            match rx.recv().await {
                Some(next) => current = Some(next),
                None => open = false,
            }
            continue;
        }
        tokio::select! {
            reply = wait(&mut current), if current.is_some() => {
                current = None;
                in_flight.done();
                out.extend_from_slice(&reply);
                if out.len() > output_limit {
                    return Err("output-limit");
                }
            }
            written = socket.write(&out), if !out.is_empty() => match written {
                Ok(n) if n > 0 => out.advance(n),
                _ => return Err("io-error"),
            },
        }
    }
}

/// The reply of the pending future (never resolves without one).
async fn wait(current: &mut Option<ReplyFuture>) -> Bytes {
    match current {
        Some(pending) => pending.await,
        None => std::future::pending().await,
    }
}
