//! The proxy in front of a Redis Cluster, shown to clients as one server. On the router's
//! cluster state (its slot map, one shard per master, the layout refreshed on redirections,
//! on a dropped link and periodically), this adds what a front end needs:
//!
//! - A keyed command goes to the shard of its slot, and is routed there by that shard's hot
//!   set like on one master. A `MOVED` or `ASK` it meets is followed here (the layout read
//!   again until it names the new owner): the client never sees one.
//! - `MGET`, `MSET`, `DEL`, `UNLINK`, `EXISTS` and `TOUCH` over keys of several slots are
//!   split by slot, the parts sent together, and the replies merged into the one a server
//!   gives, in key order. Any other command over several slots gets `CROSSSLOT`.
//! - A command with no key goes where `hotkey_protocol::keyless::group` says, the rule the
//!   routers share: `PING` answered here, `DBSIZE` summed, `KEYS` joined, `FLUSHALL` and
//!   `FLUSHDB` on every master, `SCAN` over every master with one cursor
//!   ([`ClusterCursor`]). Of the commands the rule refuses, those any node answers for the
//!   client alike ([`ONE_MASTER`]) go to the master of slot 0; the rest are refused by name.
//! - `MULTI`…`EXEC` is held here and sent whole to the master of its one slot
//!   ([`Transaction`]); `WATCH` and the other commands that hold connection state give the
//!   client a connection of its own to the master of their keys' slot.

use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use hotkey_protocol::cluster::{Redirect, SlotRange, key_slot, serves};
use hotkey_protocol::errors::error_code;
use hotkey_protocol::keyless::{self, Aggregate, KeylessGroup};
use hotkey_protocol::scan::ClusterCursor;
use hotkey_router::upstream::{Route, Served, ShardHandle};

use crate::engine::{ClientView, Engine, Failure, ReplyFuture, error_reply, ready};
use crate::metrics::Route as MetricRoute;
use crate::request::Limits;
use crate::upstream::{Connection, Protocol, frame_len};

/// Redirections followed for one command before the proxy gives up on it (each waits until
/// the layout names the node it points to, so a lagging layout does not spend them).
const MAX_REDIRECTS: usize = 5;

/// Commands without a key that the shared rule refuses (no choice of node keeps their meaning
/// for a cluster) but that any node answers alike for this client, so the proxy asks the
/// master of slot 0: the connection's own handshake and name, the server's time, its command
/// table, and `INFO` and `CONFIG GET`, which describe that one node (the README says so).
pub const ONE_MASTER: [&str; 5] = ["hello", "echo", "time", "command", "info"];

/// The `CONFIG` and `CLIENT` subcommands sent to the master of slot 0 (see [`ONE_MASTER`]);
/// the others of `CONFIG` would change or reset one node of many, and are refused.
const ONE_MASTER_SUBCOMMANDS: [(&str, &str); 4] = [
    ("config", "get"),
    ("client", "setinfo"),
    ("client", "list"),
    ("client", "help"),
];

/// The reply to a command without a key that the proxy cannot give for a whole cluster.
pub fn refused(name: &[u8]) -> String {
    format!(
        "ERR hotkey-proxy: '{}' names no key, and on a cluster no one node answers it for all; \
         send it to a node directly",
        String::from_utf8_lossy(name).to_lowercase()
    )
}

/// Sends a client's command to the cluster (see the module's documentation).
pub async fn dispatch(
    engine: &Arc<Engine>,
    client: ClientView<'_>,
    args: &[Bytes],
    raw: Bytes,
) -> ReplyFuture {
    if let Some(split) = Split::of(args) {
        return split.dispatch(engine, client).await;
    }
    let argv: Vec<&[u8]> = args.iter().map(|a| a.as_ref()).collect();
    let picked = engine.router().shard_for(&argv);
    if picked.as_ref().is_ok_and(|h| h.is_keyless(&argv)) {
        return without_key(engine, client, args, raw).await;
    }
    let (protocol, lane) = (client.protocol, client.lane);
    let reply = engine
        .route_to(client, args, &argv, picked, raw.clone())
        .await;
    following(engine, reply, raw, protocol, lane)
}

/// A command for the shard of its slot, its redirections followed.
async fn routed(
    engine: &Arc<Engine>,
    client: ClientView<'_>,
    args: &[Bytes],
    raw: Bytes,
) -> ReplyFuture {
    let (protocol, lane) = (client.protocol, client.lane);
    let reply = engine.route(client, args, raw.clone()).await;
    following(engine, reply, raw, protocol, lane)
}

/// `reply`, or once it is a redirection, the reply of the node it names (the command `raw`
/// sent again there).
fn following(
    engine: &Arc<Engine>,
    reply: ReplyFuture,
    raw: Bytes,
    protocol: Protocol,
    lane: usize,
) -> ReplyFuture {
    let engine = engine.clone();
    Box::pin(async move {
        let mut reply = reply.await;
        if redirect_of(&reply).is_none() {
            return reply;
        }
        // Rare: the arguments are read again from the request rather than kept for every
        // command.
        let args = arguments(&raw);
        for _ in 0..MAX_REDIRECTS {
            let Some(redirect) = redirect_of(&reply) else {
                return reply;
            };
            // Boxed: the resend's state (a connection being opened) is kilobytes, which this
            // future, made for every command, would otherwise carry and copy when boxed.
            reply = Box::pin(resend(
                &engine,
                &redirect,
                &args,
                raw.clone(),
                protocol,
                lane,
            ))
            .await;
        }
        match redirect_of(&reply) {
            Some(redirect) => error_reply(&format!(
                "ERR hotkey-proxy: the cluster redirected the command {MAX_REDIRECTS} times \
                 (last to {} for slot {})",
                redirect.address(),
                redirect.slot()
            )),
            None => reply,
        }
    })
}

/// The arguments of the request `raw` (which the proxy parsed once already, so it is whole).
fn arguments(raw: &Bytes) -> Vec<Bytes> {
    let unlimited = Limits {
        max_bulk_len: usize::MAX,
        max_multibulk_len: usize::MAX,
        max_inline_len: usize::MAX,
    };
    match crate::request::parse(&mut BytesMut::from(&raw[..]), &unlimited) {
        Ok(Some(request)) => request.args,
        _ => Vec::new(),
    }
}

/// The redirection in an error reply, if it is one.
fn redirect_of(reply: &[u8]) -> Option<Redirect> {
    let code = error_code(reply)?;
    if code != b"MOVED" && code != b"ASK" {
        return None;
    }
    let text = std::str::from_utf8(reply.get(1..)?).ok()?.trim_end();
    let (code, detail) = text.split_once(' ')?;
    Redirect::parse(code, detail).ok().flatten()
}

/// Sends `raw` where `redirect` points, once the layout agrees: on the shard's shared
/// connection after a `MOVED` (a blocking command on one of its own), after `ASKING` on a
/// connection of its own after an `ASK`.
async fn resend(
    engine: &Arc<Engine>,
    redirect: &Redirect,
    args: &[Bytes],
    raw: Bytes,
    protocol: Protocol,
    lane: usize,
) -> Bytes {
    let slot = (!redirect.is_ask()).then(|| redirect.slot());
    let Some(handle) = engine
        .router()
        .redirected(slot, redirect.address(), engine.connect_timeout())
        .await
    else {
        return error_reply(&format!(
            "ERR hotkey-proxy: slot {} is served by {}, which the cluster's layout does not \
             name a master yet",
            redirect.slot(),
            redirect.address()
        ));
    };
    let argv: Vec<&[u8]> = args.iter().map(|a| a.as_ref()).collect();
    // A read goes to the master here: the redirection says the slot is changing hands.
    let (writes, blocking) = match handle.route(&argv, |_| true) {
        Route::Master { writes, blocking } => (writes, blocking),
        _ => (Vec::new(), false),
    };
    let reply = if redirect.is_ask() {
        asking(engine, &handle, protocol, raw).await
    } else if blocking {
        engine.blocking(&handle, protocol, raw).await
    } else {
        match engine.upstreams(&handle) {
            Ok(up) => engine.on_master(&handle, &up, protocol, lane, raw).await,
            Err(e) => error_reply(&e.reply_text()),
        }
    };
    // Even when the reply is an error, the write may have happened.
    if !writes.is_empty() {
        handle.wrote(&writes);
    }
    reply
}

/// `ASKING` then `raw` on a connection of their own to `handle`'s master (the node a slot is
/// migrating to serves its keys only to a connection that asked).
async fn asking(engine: &Engine, handle: &ShardHandle, protocol: Protocol, raw: Bytes) -> Bytes {
    let reply = async {
        let session = handle
            .master()
            .ok_or_else(|| Failure::unavailable(handle))?;
        let endpoint = crate::engine::endpoint(&session.info, protocol, None)?;
        let conn = Connection::connect(&endpoint, engine.connect_timeout()).await?;
        let asked = conn.request(Bytes::from_static(b"*1\r\n$6\r\nASKING\r\n"), None);
        let reply = conn.request(raw, None);
        asked.await?;
        Ok::<_, Failure>(reply.await?)
    };
    reply.await.unwrap_or_else(|e| error_reply(&e.reply_text()))
}

/// A client's `MULTI` on a cluster, held by the proxy until `EXEC`: the server runs a
/// transaction on one connection to one node, so the proxy queues its commands (each in the
/// transaction's one slot, else `CROSSSLOT`, and `EXEC` then fails with `EXECABORT`, as after
/// any refused command), then sends `MULTI`, the commands and `EXEC` to the master of that
/// slot on a connection of their own. The server checks the commands only then: one it would
/// have refused while queueing got `QUEUED` here, and `EXEC` gets the server's `EXECABORT`.
#[derive(Debug, Default)]
pub struct Transaction {
    slot: Option<u16>,
    /// The first keyed command (its arguments): it picks the master.
    keyed: Option<Vec<Bytes>>,
    queued: Vec<(Vec<Bytes>, Bytes)>,
    refused: bool,
}

/// What a command does to a client's transaction.
pub enum InTransaction {
    /// The reply now; the transaction goes on.
    Reply(Bytes),
    /// `EXEC`: run it.
    Exec,
    /// `DISCARD`: it is over.
    Discard,
}

/// Redis's reply to `EXEC` after a command of the transaction was refused.
pub const EXECABORT: &str = "EXECABORT Transaction discarded because of previous errors.";

impl Transaction {
    /// The command `args` (`raw`) sent within the transaction.
    pub fn queue(&mut self, engine: &Engine, args: &[Bytes], raw: Bytes) -> InTransaction {
        let is = |word: &str| {
            args.first()
                .is_some_and(|a| a.eq_ignore_ascii_case(word.as_bytes()))
        };
        if is("exec") {
            return InTransaction::Exec;
        }
        if is("discard") {
            return InTransaction::Discard;
        }
        if is("multi") {
            return InTransaction::Reply(error_reply("ERR MULTI calls can not be nested"));
        }
        if is("watch") {
            return InTransaction::Reply(error_reply("ERR WATCH inside MULTI is not allowed"));
        }
        let argv: Vec<&[u8]> = args.iter().map(|a| a.as_ref()).collect();
        let slot = engine
            .router()
            .shard_for(&argv)
            .map_err(|e| match e {
                hotkey_router::Error::CrossSlot => Failure::CrossSlot,
                e => Failure::Unavailable(e.to_string()),
            })
            .and_then(|h| h.slot_of(&argv).map_err(|_| Failure::CrossSlot));
        match slot {
            Ok(Some(slot)) if self.slot.is_some_and(|s| s != slot) => {
                self.refused = true;
                InTransaction::Reply(error_reply(hotkey_router::CROSSSLOT))
            }
            Ok(slot) => {
                if self.slot.is_none() && slot.is_some() {
                    self.slot = slot;
                    self.keyed = Some(args.to_vec());
                }
                self.queued.push((args.to_vec(), raw));
                InTransaction::Reply(Bytes::from_static(b"+QUEUED\r\n"))
            }
            Err(e) => {
                self.refused = true;
                InTransaction::Reply(error_reply(&e.reply_text()))
            }
        }
    }

    /// `EXEC`: the reply of the master of the transaction's slot (after `MOVED`, of its new
    /// owner: nothing ran where the slot was not served), and the keys it wrote (for the
    /// client's read-your-writes window).
    pub async fn exec(self, engine: &Engine, protocol: Protocol) -> (Bytes, Vec<Bytes>) {
        if self.refused {
            return (error_reply(EXECABORT), Vec::new());
        }
        if self.queued.is_empty() {
            return (Bytes::from_static(b"*0\r\n"), Vec::new());
        }
        let keyed = self
            .keyed
            .clone()
            .unwrap_or_else(|| vec![Bytes::from_static(b"PING")]);
        let argv: Vec<&[u8]> = keyed.iter().map(|a| a.as_ref()).collect();
        let mut handle = match engine.router().shard_for(&argv) {
            Ok(handle) => handle,
            Err(e) => return (error_reply(&format!("ERR hotkey-proxy: {e}")), Vec::new()),
        };
        for _ in 0..MAX_REDIRECTS {
            let (replies, exec) = match self.run(engine, &handle, protocol).await {
                Ok(done) => done,
                // The transaction may have run: its writes count as made.
                Err(e) => return (error_reply(&e.reply_text()), self.wrote(&handle)),
            };
            let Some(redirect) = replies.iter().find_map(|r| redirect_of(r)) else {
                return (exec, self.wrote(&handle));
            };
            let slot = (!redirect.is_ask()).then(|| redirect.slot());
            match engine
                .router()
                .redirected(slot, redirect.address(), engine.connect_timeout())
                .await
            {
                Some(next) if !redirect.is_ask() => handle = next,
                // A slot migrating: its keys are on two nodes, and a transaction needs one.
                _ => return (exec, Vec::new()),
            }
        }
        let gave_up = "ERR hotkey-proxy: the cluster kept redirecting the transaction";
        (error_reply(gave_up), Vec::new())
    }

    /// `MULTI`, the commands and `EXEC` on a new connection to `handle`'s master: the
    /// commands' replies (`QUEUED` or an error) and `EXEC`'s.
    async fn run(
        &self,
        engine: &Engine,
        handle: &ShardHandle,
        protocol: Protocol,
    ) -> Result<(Vec<Bytes>, Bytes), Failure> {
        let session = handle
            .master()
            .ok_or_else(|| Failure::unavailable(handle))?;
        let endpoint = crate::engine::endpoint(&session.info, protocol, None)?;
        let conn = Connection::connect(&endpoint, engine.connect_timeout()).await?;
        let multi = conn.request(Bytes::from_static(b"*1\r\n$5\r\nMULTI\r\n"), None);
        let pending: Vec<_> = self
            .queued
            .iter()
            .map(|(_, raw)| conn.request(raw.clone(), None))
            .collect();
        let exec = conn.request(Bytes::from_static(b"*1\r\n$4\r\nEXEC\r\n"), None);
        multi.await?;
        let mut replies = Vec::with_capacity(pending.len());
        for reply in pending {
            replies.push(reply.await?);
        }
        Ok((replies, exec.await?))
    }

    /// The cached replies of the keys the transaction wrote no longer count; the keys.
    fn wrote(&self, handle: &ShardHandle) -> Vec<Bytes> {
        let mut written = Vec::new();
        for (args, _) in &self.queued {
            let argv: Vec<&[u8]> = args.iter().map(|a| a.as_ref()).collect();
            if let Route::Master { writes, .. } = handle.route(&argv, |_| true)
                && !writes.is_empty()
            {
                handle.wrote(&writes);
                written.extend(writes.iter().map(|k| Bytes::copy_from_slice(k)));
            }
        }
        written
    }
}

/// How the parts' replies of a split command make one reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Merge {
    /// `MGET`: the values, put back in key order.
    Values,
    /// `DEL`, `UNLINK`, `EXISTS`, `TOUCH`: the counts added up.
    Sum,
    /// `MSET`: `OK` when every part said `OK`.
    AllOk,
}

/// A command over keys of several slots, as one command per slot.
#[derive(Debug, PartialEq)]
struct Split {
    merge: Merge,
    parts: Vec<Part>,
    /// Keys (or key–value pairs) of the whole command.
    items: usize,
}

/// The command for one slot: its arguments, and which of the whole command's keys it has.
#[derive(Debug, PartialEq)]
struct Part {
    args: Vec<Bytes>,
    positions: Vec<usize>,
}

impl Split {
    /// The split of `args`, when it is one of the commands split and its keys span slots
    /// (None also when its arguments are wrong: the server's own error answers them).
    fn of(args: &[Bytes]) -> Option<Split> {
        let name = args.first()?;
        let is = |w: &str| name.eq_ignore_ascii_case(w.as_bytes());
        let (merge, step) = if is("mget") {
            (Merge::Values, 1)
        } else if is("mset") {
            (Merge::AllOk, 2)
        } else if is("del") || is("unlink") || is("exists") || is("touch") {
            (Merge::Sum, 1)
        } else {
            return None;
        };
        let items = &args[1..];
        if items.is_empty() || !items.len().is_multiple_of(step) {
            return None;
        }
        let mut parts: Vec<(u16, Part)> = Vec::new();
        for (position, item) in items.chunks(step).enumerate() {
            let slot = key_slot(&item[0]);
            let index = match parts.iter().position(|(s, _)| *s == slot) {
                Some(index) => index,
                None => {
                    parts.push((
                        slot,
                        Part {
                            args: vec![name.clone()],
                            positions: Vec::new(),
                        },
                    ));
                    parts.len() - 1
                }
            };
            let part = &mut parts[index].1;
            part.args.extend_from_slice(item);
            part.positions.push(position);
        }
        (parts.len() > 1).then(|| Split {
            merge,
            parts: parts.into_iter().map(|(_, p)| p).collect(),
            items: items.len() / step,
        })
    }

    /// Sends every part now (each routed like a command of its own, so a hot key's part may
    /// be served from the cache) and merges their replies.
    async fn dispatch(self, engine: &Arc<Engine>, client: ClientView<'_>) -> ReplyFuture {
        let ClientView {
            protocol,
            lane,
            window,
            in_flight,
            off_lane,
        } = client;
        let mut replies = Vec::with_capacity(self.parts.len());
        for part in &self.parts {
            let view = ClientView {
                protocol,
                lane,
                window: &mut *window,
                in_flight,
                off_lane,
            };
            let raw = encode(&part.args);
            replies.push(routed(engine, view, &part.args, raw).await);
        }
        Box::pin(async move {
            let mut got = Vec::with_capacity(replies.len());
            for reply in replies {
                got.push(reply.await);
            }
            self.merge(&got, protocol)
                .unwrap_or_else(|e| error_reply(&format!("ERR hotkey-proxy: {e}")))
        })
    }

    /// The one reply of the parts' `replies` (in part order). A part's error is the reply
    /// (the first in key order), as when a server fails a command.
    fn merge(&self, replies: &[Bytes], protocol: Protocol) -> Result<Bytes, String> {
        let mut first_error: Option<(usize, &Bytes)> = None;
        for (part, reply) in self.parts.iter().zip(replies) {
            if error_code(reply).is_some() {
                let at = part.positions.first().copied().unwrap_or(0);
                if first_error.is_none_or(|(p, _)| at < p) {
                    first_error = Some((at, reply));
                }
            }
        }
        if let Some((_, reply)) = first_error {
            return Ok(reply.clone());
        }
        match self.merge {
            Merge::AllOk => {
                if let Some(other) = replies.iter().find(|r| r.as_ref() != b"+OK\r\n") {
                    return Err(unexpected(other));
                }
                Ok(Bytes::from_static(b"+OK\r\n"))
            }
            Merge::Sum => {
                let mut sum = 0i64;
                for reply in replies {
                    sum = sum.saturating_add(integer(reply).ok_or_else(|| unexpected(reply))?);
                }
                Ok(Bytes::from(format!(":{sum}\r\n")))
            }
            Merge::Values => {
                let mut values: Vec<Bytes> = vec![Bytes::new(); self.items];
                for (part, reply) in self.parts.iter().zip(replies) {
                    let elements = elements(reply, protocol).ok_or_else(|| unexpected(reply))?;
                    if elements.len() != part.positions.len() {
                        return Err(unexpected(reply));
                    }
                    for (&at, element) in part.positions.iter().zip(elements) {
                        values[at] = element;
                    }
                }
                Ok(array(&values))
            }
        }
    }
}

/// The words for a reply of a shape the command never gives.
fn unexpected(reply: &[u8]) -> String {
    let shown: String = String::from_utf8_lossy(&reply[..reply.len().min(40)])
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("a master answered part of the command with an unexpected reply: {shown}")
}

/// A command with no key: where the shared rule says. One sent to several masters (or
/// answered here) counts once in the proxy's per-route metrics, timed until its reply is
/// whole; one routed to a single master is counted by the engine, as a keyed command is.
async fn without_key(
    engine: &Arc<Engine>,
    client: ClientView<'_>,
    args: &[Bytes],
    raw: Bytes,
) -> ReplyFuture {
    let started = Instant::now();
    let is = |i: usize, word: &str| {
        args.get(i)
            .is_some_and(|a| a.eq_ignore_ascii_case(word.as_bytes()))
    };
    let on_masters = |reply: ReplyFuture| counted(engine, MetricRoute::Master, started, reply);
    let here = |reply: Bytes| counted(engine, MetricRoute::Local, started, ready(reply));
    if is(0, "scan") {
        client.off_lane.drained().await;
        return on_masters(scan(engine, client.protocol, client.lane, args));
    }
    match keyless::group(args) {
        KeylessGroup::AllNodes if is(0, "ping") => here(ping(args)),
        KeylessGroup::AllNodes => {
            client.off_lane.drained().await;
            on_masters(every_node(engine, client.protocol, client.lane, raw))
        }
        KeylessGroup::AllMasters(aggregate) => {
            client.off_lane.drained().await;
            let combine = match aggregate {
                Aggregate::Sum => Combine::Sum,
                Aggregate::Concat => Combine::Concat,
                _ => Combine::AllOk,
            };
            on_masters(every_master(
                engine,
                client.protocol,
                client.lane,
                raw,
                combine,
            ))
        }
        KeylessGroup::RandomMaster if is(0, "randomkey") && args.len() == 1 => {
            client.off_lane.drained().await;
            on_masters(random_key(engine, client.protocol, client.lane, raw))
        }
        KeylessGroup::RandomMaster => routed(engine, client, args, raw).await,
        _ if ONE_MASTER.iter().any(|w| is(0, w))
            || ONE_MASTER_SUBCOMMANDS
                .iter()
                .any(|(c, s)| is(0, c) && is(1, s)) =>
        {
            routed(engine, client, args, raw).await
        }
        _ => here(error_reply(&refused(&args[0]))),
    }
}

/// `reply`, counted on `route` once it is ready.
fn counted(
    engine: &Arc<Engine>,
    route: MetricRoute,
    started: Instant,
    reply: ReplyFuture,
) -> ReplyFuture {
    let engine = engine.clone();
    Box::pin(async move {
        let reply = reply.await;
        engine.metrics().command(route, started.elapsed());
        reply
    })
}

/// `PING [message]`, answered here: a cluster is up for the client as long as the proxy is.
fn ping(args: &[Bytes]) -> Bytes {
    match args {
        [_] => Bytes::from_static(b"+PONG\r\n"),
        [_, message] => bulk(message),
        _ => error_reply("ERR wrong number of arguments for 'ping' command"),
    }
}

/// How the replies of every master make one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Combine {
    Sum,
    Concat,
    AllOk,
    /// The same reply from every master (`SCRIPT LOAD`'s digest).
    Same,
}

/// `raw` on every master now; the replies combined. Any master's error is the reply: nothing
/// is reported done that was not done everywhere.
fn every_master(
    engine: &Arc<Engine>,
    protocol: Protocol,
    lane: usize,
    raw: Bytes,
    combine: Combine,
) -> ReplyFuture {
    let pending: Vec<ReplyFuture> = engine
        .router()
        .shard_handles()
        .iter()
        .map(|handle| on_master(engine, handle, protocol, lane, raw.clone()))
        .collect();
    Box::pin(async move {
        let mut replies = Vec::with_capacity(pending.len());
        for reply in pending {
            replies.push(reply.await);
        }
        if let Some(error) = replies.iter().find(|r| error_code(r).is_some()) {
            return error.clone();
        }
        combined(combine, &replies, protocol)
            .unwrap_or_else(|e| error_reply(&format!("ERR hotkey-proxy: {e}")))
    })
}

/// `raw` (`SCRIPT LOAD`, `SCRIPT FLUSH`) on every master and every replica in rotation: a
/// replica that takes over, or serves a hot read, must know the same scripts. The reply when
/// all agree; else the first error, a replica's naming it.
fn every_node(engine: &Arc<Engine>, protocol: Protocol, lane: usize, raw: Bytes) -> ReplyFuture {
    let masters = every_master(engine, protocol, lane, raw.clone(), Combine::Same);
    let engine = engine.clone();
    Box::pin(async move {
        let reply = masters.await;
        if error_code(&reply).is_some() {
            return reply;
        }
        for handle in engine.router().shard_handles() {
            for replica in handle.replicas() {
                let answer = match engine
                    .replica_read(&handle, &replica, protocol, raw.clone())
                    .await
                {
                    Ok(answer) => answer,
                    Err(e) => error_reply(&format!(
                        "ERR hotkey-proxy: replica {}:{}: {e}",
                        replica.host, replica.port
                    )),
                };
                if answer != reply {
                    return if error_code(&answer).is_some() {
                        answer
                    } else {
                        error_reply(&format!(
                            "ERR hotkey-proxy: replica {}:{} answered otherwise than the masters",
                            replica.host, replica.port
                        ))
                    };
                }
            }
        }
        reply
    })
}

fn combined(combine: Combine, replies: &[Bytes], protocol: Protocol) -> Result<Bytes, String> {
    let Some(first) = replies.first() else {
        return Err("the cluster has no master now".into());
    };
    match combine {
        Combine::Sum => {
            let mut sum = 0i64;
            for reply in replies {
                sum = sum.saturating_add(integer(reply).ok_or_else(|| unexpected(reply))?);
            }
            Ok(Bytes::from(format!(":{sum}\r\n")))
        }
        Combine::Concat => {
            let mut all = Vec::new();
            for reply in replies {
                all.extend(elements(reply, protocol).ok_or_else(|| unexpected(reply))?);
            }
            Ok(array(&all))
        }
        Combine::AllOk | Combine::Same => match replies.iter().find(|r| *r != first) {
            Some(other) => Err(unexpected(other)),
            None if combine == Combine::AllOk && first.as_ref() != b"+OK\r\n" => {
                Err(unexpected(first))
            }
            None => Ok(first.clone()),
        },
    }
}

/// `raw` queued on `handle`'s master now.
fn on_master(
    engine: &Arc<Engine>,
    handle: &ShardHandle,
    protocol: Protocol,
    lane: usize,
    raw: Bytes,
) -> ReplyFuture {
    match engine.upstreams(handle) {
        Ok(up) => {
            let reply = engine.on_master(handle, &up, protocol, lane, raw);
            let handle = handle.clone();
            Box::pin(async move {
                let reply = reply.await;
                // The master's own count (`upstream_master_commands`), as for a keyed command.
                handle.served(Served::Master, &[]);
                reply
            })
        }
        Err(e) => ready(error_reply(&e.reply_text())),
    }
}

/// `RANDOMKEY`: the masters asked in turn from a random one, until one has a key (a master
/// with no key answers nil while the others have some).
fn random_key(engine: &Arc<Engine>, protocol: Protocol, lane: usize, raw: Bytes) -> ReplyFuture {
    let (engine, mut handles) = (engine.clone(), engine.router().shard_handles());
    if !handles.is_empty() {
        let start = usize::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos()),
        )
        .unwrap_or(0)
            % handles.len();
        handles.rotate_left(start);
    }
    Box::pin(async move {
        let mut last = Bytes::from_static(b"$-1\r\n");
        for handle in &handles {
            last = on_master(&engine, handle, protocol, lane, raw.clone()).await;
            if error_code(&last).is_some() || !is_null(&last) {
                return last;
            }
        }
        last
    })
}

/// `SCAN cursor [MATCH p] [COUNT n] [TYPE t]` over every master, one after another, with the
/// cursor of [`ClusterCursor`].
fn scan(engine: &Arc<Engine>, protocol: Protocol, lane: usize, args: &[Bytes]) -> ReplyFuture {
    let Some(given) = args.get(1) else {
        return ready(error_reply(
            "ERR wrong number of arguments for 'scan' command",
        ));
    };
    let cursor = match ClusterCursor::parse(given) {
        Ok(cursor) => cursor,
        Err(e) => return ready(error_reply(&e.to_string())),
    };
    let shards = engine.router().shard_slots();
    let lowest = |slots: &[SlotRange]| slots.iter().map(|r| r.start).min();
    // The shard the cursor names, or the first after it when no master serves its slot.
    let at = match shards.iter().position(|(_, s)| serves(s, cursor.slot)) {
        Some(index) => Some((index, cursor)),
        None => shards
            .iter()
            .enumerate()
            .filter_map(|(i, (_, s))| lowest(s).filter(|&l| l > cursor.slot).map(|l| (l, i)))
            .min()
            .map(|(slot, index)| {
                (
                    index,
                    ClusterCursor::parse(slot.to_string().as_bytes()).unwrap_or(cursor),
                )
            }),
    };
    let Some((index, cursor)) = at else {
        return ready(scan_reply(0, Bytes::from_static(b"*0\r\n")));
    };
    let (handle, slots) = &shards[index];
    let here = lowest(slots).unwrap_or(cursor.slot);
    let next_shard = shards
        .iter()
        .filter_map(|(_, s)| lowest(s).filter(|&l| l > here))
        .min();
    let mut node_args = args.to_vec();
    node_args[1] = Bytes::from(cursor.node_cursor.to_string());
    let reply = on_master(engine, handle, protocol, lane, encode(&node_args));
    Box::pin(async move {
        let reply = reply.await;
        if error_code(&reply).is_some() {
            return reply;
        }
        let merged = node_scan(&reply, protocol)
            .ok_or_else(|| unexpected(&reply))
            .and_then(|(node_next, keys)| {
                let next = cursor
                    .next(node_next, next_shard)
                    .map_err(|e| e.to_string())?;
                Ok(scan_reply(next, keys))
            });
        merged.unwrap_or_else(|e| error_reply(&format!("ERR hotkey-proxy: {e}")))
    })
}

/// A node's `SCAN` reply: its next cursor and the array of keys (as sent).
fn node_scan(reply: &Bytes, protocol: Protocol) -> Option<(u64, Bytes)> {
    let parts = elements(reply, protocol)?;
    let [cursor, keys] = parts.as_slice() else {
        return None;
    };
    let text = bulk_text(cursor)?;
    Some((std::str::from_utf8(text).ok()?.parse().ok()?, keys.clone()))
}

fn scan_reply(cursor: u64, keys: Bytes) -> Bytes {
    let mut out = BytesMut::with_capacity(keys.len() + 32);
    out.extend_from_slice(b"*2\r\n");
    out.extend_from_slice(&bulk(cursor.to_string().as_bytes()));
    out.extend_from_slice(&keys);
    out.freeze()
}

/// The command `args` as a RESP request.
pub fn encode(args: &[Bytes]) -> Bytes {
    let size: usize = args.iter().map(|a| a.len() + 16).sum();
    let mut out = BytesMut::with_capacity(size + 16);
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out.freeze()
}

fn bulk(data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + 16);
    out.extend_from_slice(format!("${}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out.freeze()
}

/// An array of whole frames.
fn array(elements: &[Bytes]) -> Bytes {
    let size: usize = elements.iter().map(Bytes::len).sum();
    let mut out = BytesMut::with_capacity(size + 16);
    out.extend_from_slice(format!("*{}\r\n", elements.len()).as_bytes());
    for element in elements {
        out.extend_from_slice(element);
    }
    out.freeze()
}

/// The first line of a frame (without its `\r\n`) and the rest.
fn header(frame: &[u8]) -> Option<(&[u8], usize)> {
    let end = frame.windows(2).position(|w| w == b"\r\n")?;
    Some((&frame[..end], end + 2))
}

/// The elements of an array reply (`*n`), each whole, shared with the reply's bytes.
fn elements(reply: &Bytes, protocol: Protocol) -> Option<Vec<Bytes>> {
    let (line, mut at) = header(reply)?;
    let count: usize = std::str::from_utf8(line.strip_prefix(b"*")?)
        .ok()?
        .parse()
        .ok()?;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let len = frame_len(&reply[at..], protocol)?;
        out.push(reply.slice(at..at + len));
        at += len;
    }
    (at == reply.len()).then_some(out)
}

/// The value of an integer reply (`:n`).
fn integer(reply: &[u8]) -> Option<i64> {
    let (line, len) = header(reply)?;
    if len != reply.len() {
        return None;
    }
    std::str::from_utf8(line.strip_prefix(b":")?)
        .ok()?
        .parse()
        .ok()
}

/// The data of a bulk string frame.
fn bulk_text(frame: &[u8]) -> Option<&[u8]> {
    let (line, start) = header(frame)?;
    let len: usize = std::str::from_utf8(line.strip_prefix(b"$")?)
        .ok()?
        .parse()
        .ok()?;
    frame.get(start..start + len)
}

/// A null reply, in RESP2 (`$-1`, `*-1`) or RESP3 (`_`).
fn is_null(reply: &[u8]) -> bool {
    matches!(reply, b"$-1\r\n" | b"*-1\r\n" | b"_\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<Bytes> {
        words
            .iter()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    /// Keys in three different slots (`a` 15495, `b` 3300, `c` 7365) and one sharing `a`'s.
    const KEYS: [&str; 4] = ["a", "b", "c", "{a}x"];

    #[test]
    fn only_the_six_commands_over_several_slots_are_split() {
        assert_eq!(Split::of(&args(&["MGET", "a", "{a}x"])), None);
        assert_eq!(Split::of(&args(&["SUNION", "a", "b"])), None);
        assert_eq!(Split::of(&args(&["MSET", "a", "1", "b"])), None);
        assert_eq!(Split::of(&args(&["DEL"])), None);
        let split = Split::of(&args(&["mget", KEYS[0], KEYS[1], KEYS[2], KEYS[3]])).unwrap();
        assert_eq!(split.items, 4);
        assert_eq!(split.parts.len(), 3);
        assert_eq!(split.parts[0].args, args(&["mget", "a", "{a}x"]));
        assert_eq!(split.parts[0].positions, vec![0, 3]);
        let split = Split::of(&args(&["MSET", "a", "1", "b", "2"])).unwrap();
        assert_eq!(split.parts[1].args, args(&["MSET", "b", "2"]));
        assert_eq!(split.merge, Merge::AllOk);
    }

    #[test]
    fn values_come_back_in_key_order_and_counts_add_up() {
        let split = Split::of(&args(&["MGET", "a", "b", "{a}x"])).unwrap();
        let replies = [
            Bytes::from_static(b"*2\r\n$1\r\n1\r\n$-1\r\n"),
            Bytes::from_static(b"*1\r\n$2\r\n22\r\n"),
        ];
        assert_eq!(
            split.merge(&replies, Protocol::Resp2).unwrap(),
            Bytes::from_static(b"*3\r\n$1\r\n1\r\n$2\r\n22\r\n$-1\r\n")
        );
        let resp3 = [
            Bytes::from_static(b"*2\r\n_\r\n$1\r\n3\r\n"),
            Bytes::from_static(b"*1\r\n_\r\n"),
        ];
        assert_eq!(
            split.merge(&resp3, Protocol::Resp3).unwrap(),
            Bytes::from_static(b"*3\r\n_\r\n_\r\n$1\r\n3\r\n")
        );
        let split = Split::of(&args(&["EXISTS", "a", "b", "a"])).unwrap();
        let counts = [Bytes::from_static(b":2\r\n"), Bytes::from_static(b":0\r\n")];
        assert_eq!(
            split.merge(&counts, Protocol::Resp2).unwrap(),
            Bytes::from_static(b":2\r\n")
        );
    }

    #[test]
    fn a_part_that_failed_fails_the_command() {
        let split = Split::of(&args(&["MSET", "a", "1", "b", "2"])).unwrap();
        let replies = [
            Bytes::from_static(b"+OK\r\n"),
            Bytes::from_static(b"-ERR master unavailable\r\n"),
        ];
        assert_eq!(
            split.merge(&replies, Protocol::Resp2).unwrap(),
            Bytes::from_static(b"-ERR master unavailable\r\n")
        );
        let split = Split::of(&args(&["DEL", "a", "b"])).unwrap();
        let odd = [
            Bytes::from_static(b":1\r\n"),
            Bytes::from_static(b"+OK\r\n"),
        ];
        assert!(split.merge(&odd, Protocol::Resp2).is_err());
    }

    #[test]
    fn redirections_are_read_from_error_replies() {
        assert_eq!(
            redirect_of(b"-MOVED 3999 127.0.0.1:6381\r\n"),
            Some(Redirect::Moved {
                slot: 3999,
                address: "127.0.0.1:6381".into()
            })
        );
        assert!(redirect_of(b"-ASK 1 127.0.0.1:7000\r\n").is_some_and(|r| r.is_ask()));
        assert_eq!(redirect_of(b"-ERR no\r\n"), None);
        assert_eq!(redirect_of(b"+MOVED 1 a:1\r\n"), None);
    }

    #[test]
    fn node_scan_replies_are_read_and_rewritten() {
        let reply = Bytes::from_static(b"*2\r\n$2\r\n17\r\n*1\r\n$1\r\nk\r\n");
        let (next, keys) = node_scan(&reply, Protocol::Resp2).unwrap();
        assert_eq!(next, 17);
        assert_eq!(keys, Bytes::from_static(b"*1\r\n$1\r\nk\r\n"));
        assert_eq!(
            scan_reply(5, keys),
            Bytes::from_static(b"*2\r\n$1\r\n5\r\n*1\r\n$1\r\nk\r\n")
        );
    }

    #[test]
    fn keyless_replies_combine_as_the_rule_says() {
        let ints = [Bytes::from_static(b":2\r\n"), Bytes::from_static(b":3\r\n")];
        assert_eq!(
            combined(Combine::Sum, &ints, Protocol::Resp2).unwrap(),
            Bytes::from_static(b":5\r\n")
        );
        let ok = [
            Bytes::from_static(b"+OK\r\n"),
            Bytes::from_static(b"+OK\r\n"),
        ];
        assert_eq!(
            combined(Combine::AllOk, &ok, Protocol::Resp2).unwrap(),
            Bytes::from_static(b"+OK\r\n")
        );
        let keys = [
            Bytes::from_static(b"*1\r\n$1\r\na\r\n"),
            Bytes::from_static(b"*0\r\n"),
        ];
        assert_eq!(
            combined(Combine::Concat, &keys, Protocol::Resp2).unwrap(),
            Bytes::from_static(b"*1\r\n$1\r\na\r\n")
        );
        assert_eq!(
            ping(&args(&["PING", "hi"])),
            Bytes::from_static(b"$2\r\nhi\r\n")
        );
    }
}
