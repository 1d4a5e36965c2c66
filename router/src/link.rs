//! The link to one master: the connections, the subscription to the module's channel, the hot
//! set kept in step with its events, cache invalidations, and the reports of reads served
//! elsewhere. One background task per [`Shard`] runs it; when the link breaks the shard forgets
//! the hot set (every command goes to the master, which fails fast while there is none) and
//! reconnects, asking Sentinel for the master's address when it has one.
//!
//! Three connections to the master:
//! - *control* (RESP3): subscribed to the module's channel (`SSUBSCRIBE` when the module
//!   publishes on a cluster's sharded channel); `HOTKEY.ROUTES`; receives the server's
//!   invalidation messages for the fill connection, as pushes.
//! - *fill* (the caller's protocol): cache fills only, with `CLIENT TRACKING ON REDIRECT
//!   <control>`, so the server says when a key it served there changes.
//! - *data* (the caller's protocol): every other command sent to the master.

mod clock;

use std::sync::Arc;

use hotkey_protocol::command_table::{CommandReply, CommandTable};
use hotkey_protocol::{Message, Routes};
use redis::aio::MultiplexedConnection;
use redis::sentinel::SentinelClient;
use redis::{
    AsyncConnectionConfig, Client, ConnectionInfo, ProtocolVersion, PushInfo, PushKind, Value,
};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

use self::clock::{Due, LinkClock, retry};
use crate::error::{Error, LinkLost, Unavailable};
use crate::metrics::bump;
use crate::shard::{Connections, Shard};
use crate::table::Applied;

/// Where the master is.
pub(crate) enum MasterSource {
    Direct(ConnectionInfo),
    Sentinel(tokio::sync::Mutex<SentinelClient>),
}

impl MasterSource {
    async fn client(&self) -> Result<Client, Error> {
        match self {
            MasterSource::Direct(info) => Ok(Client::open(info.clone())?),
            MasterSource::Sentinel(sentinel) => {
                Ok(sentinel.lock().await.async_get_client().await?)
            }
        }
    }
}

/// A live link: the control connection and what it receives.
pub(crate) struct Session {
    /// Numbers the links, so a failure reported about an old one is not taken for this one's.
    id: u64,
    control: MultiplexedConnection,
    pushes: mpsc::UnboundedReceiver<PushInfo>,
    /// The connection settings of the master (for replicas).
    base: ConnectionInfo,
    /// The channel subscribed to, once the module named it, and whether with `SSUBSCRIBE`.
    channel: Option<(String, bool)>,
    /// On a cluster, the master's node id as its module names it: events of other nodes
    /// (classic pub/sub reaches every node of a cluster) are not this shard's.
    node_id: Option<String>,
}

/// Connects to the master (asking Sentinel where it is, if configured), reads the hot set and
/// starts following it. On the first connect a master without the module is an error; on a
/// reconnect the router routes everything to the master until the module answers again.
pub(crate) async fn connect(shard: &Arc<Shard>, first: bool) -> Result<Session, Error> {
    let client = shard.source().client().await?;
    let base = client.get_connection_info().clone();
    let options = shard.options();

    let control_info = base.clone().set_redis_settings(
        base.redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3),
    );
    let (tx, pushes) = mpsc::unbounded_channel();
    // Invalidations are applied where they arrive, on the connection's own task: a cached
    // reply must stop counting as soon as the server says its key changed, not when the link
    // task next gets a thread (it may wait behind busy readers). The rest goes to the link.
    let weak = Arc::downgrade(shard);
    let sender = move |push: PushInfo| -> Result<(), mpsc::error::SendError<PushInfo>> {
        if matches!(push.kind, PushKind::Invalidate)
            && let Some(shard) = weak.upgrade()
        {
            on_invalidate(&shard, &push.data);
            return Ok(());
        }
        tx.send(push)
    };
    let control_config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(options.connect_timeout))
        .set_response_timeout(Some(options.connect_timeout))
        .set_push_sender(sender);
    let mut control = Client::open(control_info)?
        .get_multiplexed_async_connection_with_config(&control_config)
        .await?;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(options.connect_timeout))
        .set_response_timeout(options.master_timeout);
    let data = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    let mut fill = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;

    let control_id: i64 = redis::cmd("CLIENT")
        .arg("ID")
        .query_async(&mut control)
        .await?;
    // The fill connection has the caller's `master_timeout` (none by default), but this is a
    // step of connecting: bounded like the others, or a master that does not answer would hold
    // a cluster's refresh (and every command waiting for the layout) for ever.
    let _: () = tokio::time::timeout(
        options.connect_timeout,
        redis::cmd("CLIENT")
            .arg("TRACKING")
            .arg("ON")
            .arg("REDIRECT")
            .arg(control_id)
            .query_async(&mut fill),
    )
    .await
    .map_err(|_| {
        redis::RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "CLIENT TRACKING on the fill connection got no answer",
        ))
    })??;
    let commands: Value = redis::cmd("COMMAND").query_async(&mut control).await?;
    let commands = CommandTable::from_command_reply(&CommandReply::from_redis(&commands));
    if commands.is_empty() {
        return Err(Error::NoCommands {
            node: base.addr().to_string(),
        });
    }
    let id = shard.next_session();
    let mut session = Session {
        id,
        control,
        pushes,
        base,
        channel: None,
        node_id: None,
    };
    shard.set_commands(commands);
    // The connections first, so a command routed by the new hot set finds them.
    shard.set_connections(Connections {
        data,
        fill,
        info: session.base.clone(),
        session: id,
        tracking_id: control_id,
    });
    match sync(shard, &mut session).await {
        Ok(()) => {}
        Err(e @ Error::NoModule { .. }) if !first => {
            tracing::warn!("hotkey router: {e}; routing everything to the master");
            shard.forget();
        }
        Err(e) => {
            shard.disconnect(Unavailable::ConnectFailed(Box::new(e.clone())));
            return Err(e);
        }
    }
    bump(&shard.counters().here().connects);
    shard.replica_pool().probe().await;
    Ok(session)
}

/// Reads the hot set: subscribes to the module's channel first, so no event falls between
/// the subscription and the snapshot (events the snapshot already holds are skipped by their
/// `seq`), then installs the snapshot and drops the cache.
async fn sync(shard: &Shard, session: &mut Session) -> Result<(), Error> {
    let mut snapshot = routes(&mut session.control, &session.base).await?;
    let wanted = (snapshot.channel.clone(), snapshot.sharded);
    if session.channel.as_ref() != Some(&wanted) {
        if let Some((old, sharded)) = session.channel.take() {
            unsubscribe(&mut session.control, &old, sharded).await?;
        }
        subscribe(&mut session.control, &wanted.0, wanted.1).await?;
        session.channel = Some(wanted);
        snapshot = routes(&mut session.control, &session.base).await?;
    }
    session.node_id = snapshot.cluster.as_ref().map(|c| c.node_id.clone());
    shard.load(&snapshot, Some(&session.base));
    Ok(())
}

/// `SUBSCRIBE`, or `SSUBSCRIBE` for a sharded channel. The connection speaks RESP3, so the
/// one confirmation of a one-channel `SSUBSCRIBE` comes back as its reply (the client has a
/// method for the classic form only).
async fn subscribe(
    control: &mut MultiplexedConnection,
    channel: &str,
    sharded: bool,
) -> Result<(), Error> {
    if sharded {
        let _: Value = redis::cmd("SSUBSCRIBE")
            .arg(channel)
            .query_async(control)
            .await?;
    } else {
        control.subscribe(channel).await?;
    }
    Ok(())
}

async fn unsubscribe(
    control: &mut MultiplexedConnection,
    channel: &str,
    sharded: bool,
) -> Result<(), Error> {
    if sharded {
        let _: Value = redis::cmd("SUNSUBSCRIBE")
            .arg(channel)
            .query_async(control)
            .await?;
    } else {
        control.unsubscribe(channel).await?;
    }
    Ok(())
}

/// `HOTKEY.ROUTES` of the master at `base`, parsed. An error reply means the module does not
/// answer.
async fn routes(
    control: &mut MultiplexedConnection,
    base: &ConnectionInfo,
) -> Result<Routes, Error> {
    let reply: Value = match redis::cmd("HOTKEY.ROUTES").query_async(control).await {
        Ok(v) => v,
        Err(source) if source.code().is_some() => {
            return Err(Error::NoModule {
                node: base.addr().to_string(),
                source,
            });
        }
        Err(e) => return Err(e.into()),
    };
    Routes::from_redis(&reply).map_err(|source| Error::Protocol {
        node: base.addr().to_string(),
        reply: "HOTKEY.ROUTES",
        source,
    })
}

/// The link task: follows the hot set while the link lasts, then reconnects, forever (on a
/// cluster, until the topology drops the shard).
pub(crate) async fn run(shard: Arc<Shard>, mut session: Session) {
    loop {
        let reason = follow(&shard, &mut session).await;
        tracing::warn!("hotkey router: link to the master lost ({reason}); reconnecting");
        shard.disconnect(reason.clone().into());
        session = retry(
            shard.options().reconnect_max_delay,
            || connect(&shard, false),
            |e: &Error| {
                shard.set_down_reason(Unavailable::Reconnecting {
                    lost: reason.clone(),
                    error: Box::new(e.clone()),
                });
            },
        )
        .await;
        bump(&shard.counters().here().resyncs);
    }
}

/// Follows the Sentinels' `+switch-master` for `service`, forever: when it names a master
/// other than the live session's, that session is reported broken, so the link reconnects at
/// once and asks Sentinel where the master is. Without it the link learns of a failover only
/// when its connections break, which Sentinel brings about when it turns the old master into
/// a replica — seconds later, seconds of writes acknowledged by a master that is no longer the
/// one Sentinel names, and that its replication will drop.
pub(crate) async fn follow_sentinels(
    shard: Arc<Shard>,
    sentinels: Vec<ConnectionInfo>,
    service: String,
) {
    let options = shard.options().clone();
    let mut next = 0;
    loop {
        if let Some(info) = sentinels.get(next % sentinels.len().max(1))
            && let Err(e) = watch_sentinel(&shard, info, &service).await
        {
            tracing::warn!("hotkey router: cannot follow Sentinel {}: {e}", info.addr());
        }
        next += 1;
        tokio::time::sleep(options.reconnect_max_delay).await;
    }
}

/// One Sentinel's `+switch-master` messages until its connection drops.
async fn watch_sentinel(shard: &Shard, info: &ConnectionInfo, service: &str) -> Result<(), Error> {
    let (tx, mut pushes) = mpsc::unbounded_channel();
    let info = info.clone().set_redis_settings(
        info.redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3),
    );
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(shard.options().connect_timeout))
        .set_response_timeout(Some(shard.options().connect_timeout))
        .set_push_sender(tx);
    let mut conn = Client::open(info)?
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    conn.subscribe("+switch-master").await?;
    while let Some(push) = pushes.recv().await {
        match push.kind {
            PushKind::Disconnection => break,
            PushKind::Message => {
                let Some(Value::BulkString(text)) = push.data.get(1) else {
                    continue;
                };
                // `<name> <old ip> <old port> <new ip> <new port>`
                let text = String::from_utf8_lossy(text);
                let words: Vec<&str> = text.split(' ').collect();
                if let [name, _, _, ip, port] = words[..]
                    && name == service
                    && shard.master_address() != format!("{ip}:{port}")
                    && let Some(session) = shard.session_id()
                {
                    tracing::warn!(
                        "hotkey router: Sentinel switched {service} to {ip}:{port}; reconnecting"
                    );
                    shard.report_broken(session);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Applies events and invalidations until the link breaks; returns why.
async fn follow(shard: &Arc<Shard>, session: &mut Session) -> LinkLost {
    let options = shard.options();
    let mut clock = LinkClock::new(
        options.heartbeat_timeout,
        options.report_interval,
        options.probe_interval,
        Instant::now(),
    );
    loop {
        let (at, due) = clock.next();
        tokio::select! {
            push = session.pushes.recv() => {
                let Some(push) = push else {
                    return LinkLost::ControlClosed;
                };
                match push.kind {
                    PushKind::Disconnection => return LinkLost::ControlClosed,
                    PushKind::Message | PushKind::SMessage => {
                        clock.heard(Instant::now());
                        if let Err(reason) = on_message(shard, session, &push.data).await {
                            return reason;
                        }
                    }
                    _ => {}
                }
            }
            () = sleep_until(at) => {
                match due {
                    Due::Silence => {
                        tracing::warn!(
                            "hotkey router: no message from the module for {:?}; re-reading \
                             the hot set",
                            options.heartbeat_timeout
                        );
                        if let Err(e) = resync_or_forget(shard, session).await {
                            return LinkLost::MissedHeartbeats(Box::new(e));
                        }
                    }
                    Due::Report => send_report(shard).await,
                    Due::Probe => probe_later(shard),
                }
                clock.done(due, Instant::now());
            }
            () = shard.broken(session.id) => {
                return LinkLost::CommandFoundBroken;
            }
        }
    }
}

/// One message of the channel: applied in order, or a resync when one was missed.
async fn on_message(
    shard: &Arc<Shard>,
    session: &mut Session,
    data: &[Value],
) -> Result<(), LinkLost> {
    let Some(Value::BulkString(payload)) = data.get(1) else {
        return Ok(());
    };
    let message = match Message::from_json(payload) {
        Ok(m) => m,
        Err(e) => {
            // An event this router cannot read may have changed the hot set.
            tracing::warn!("hotkey router: unreadable event ({e}); re-reading the hot set");
            return resync_or_lose(shard, session).await;
        }
    };
    if let (Some(from), Some(master)) = (&message.node_id, &session.node_id)
        && from != master
    {
        return Ok(());
    }
    match shard.apply(&message) {
        Applied::InOrder => {
            if matches!(message.event, hotkey_protocol::Event::Replicas(_)) {
                probe_later(shard);
            }
            Ok(())
        }
        Applied::Old => Ok(()),
        Applied::Gap { expected, got } => {
            tracing::warn!(
                "hotkey router: events {expected}..{got} missed; re-reading the hot set"
            );
            resync_or_lose(shard, session).await
        }
        Applied::NewRun | Applied::NotSynced => resync_or_lose(shard, session).await,
    }
}

/// [`resync_or_forget`], with a failure as the reason the link is lost.
async fn resync_or_lose(shard: &Arc<Shard>, session: &mut Session) -> Result<(), LinkLost> {
    resync_or_forget(shard, session)
        .await
        .map_err(|e| LinkLost::Resync(Box::new(e)))
}

/// Re-reads the hot set; without the module, routes everything to the master. Err (why the
/// hot set could not be read) when the link is broken.
async fn resync_or_forget(shard: &Arc<Shard>, session: &mut Session) -> Result<(), Error> {
    match resync(shard, session).await {
        Ok(()) => Ok(()),
        Err(e @ Error::NoModule { .. }) => {
            tracing::warn!("hotkey router: {e}; routing everything to the master");
            shard.forget();
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Re-reads the hot set on the live link and drops the cache.
async fn resync(shard: &Arc<Shard>, session: &mut Session) -> Result<(), Error> {
    sync(shard, session).await?;
    bump(&shard.counters().here().resyncs);
    probe_later(shard);
    Ok(())
}

/// Probes the replicas out of rotation on another task: a replica that does not answer must
/// not hold up events and invalidations.
fn probe_later(shard: &Arc<Shard>) {
    let shard = shard.clone();
    tokio::spawn(async move { shard.replica_pool().probe().await });
}

/// The server says keys read on the fill connection changed (or, with no keys, that all did).
fn on_invalidate(shard: &Shard, data: &[Value]) {
    match data.first() {
        Some(Value::Array(keys)) => {
            for key in keys {
                if let Value::BulkString(key) = key {
                    shard.invalidate(key);
                }
            }
        }
        _ => shard.invalidate_all(),
    }
}

/// Sends `HOTKEY.REPORT` with the reads served off the master since the last one. On an I/O
/// error the counts wait for the next report; an error reply (the module refused them) drops
/// them, with a warning and `report_errors`.
async fn send_report(shard: &Shard) {
    let counts = shard.take_served();
    if counts.is_empty() {
        return;
    }
    let Ok(Connections {
        data: mut conn,
        session,
        ..
    }) = shard.connections()
    else {
        shard.restore_served(counts);
        return;
    };
    let mut cmd = redis::cmd("HOTKEY.REPORT");
    for (key, n) in &counts {
        cmd.arg(&**key).arg(*n);
    }
    match cmd.query_async::<i64>(&mut conn).await {
        Ok(_) => bump(&shard.counters().here().reports),
        Err(e) => {
            bump(&shard.counters().here().report_errors);
            if Error::breaks_connection(&e) {
                shard.report_broken(session);
                shard.restore_served(counts);
            } else {
                tracing::warn!("hotkey router: HOTKEY.REPORT refused: {e}");
            }
        }
    }
}
