//! The router's errors, which say whether the caller may send the command again.

use std::fmt;

use hotkey_protocol::ProtocolError;
use redis::RedisError;

/// The words of [`Error::CrossSlot`]: the error a Redis Cluster gives a command whose keys are
/// in different slots.
pub const CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same slot";

/// What went wrong with a routed command or with connecting.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No connection to the master right now (lost, being re-established, or a failover under
    /// way). The command was not sent.
    #[error("master unavailable: {0}")]
    MasterUnavailable(#[source] Unavailable),
    /// The server answered with an error, or the connection failed during the command.
    #[error(transparent)]
    Redis(#[from] RedisError),
    /// The master (`node`) does not answer `HOTKEY.ROUTES`: the hotkey module is not loaded
    /// there, or the router's user may not run it.
    #[error("{node}: HOTKEY.ROUTES failed (is the hotkey module loaded?): {source}")]
    NoModule {
        node: String,
        #[source]
        source: RedisError,
    },
    /// The module's reply (`reply`: the command, or `event`) from `node` could not be read.
    #[error("{node}: {reply}: hotkey protocol: {source}")]
    Protocol {
        node: String,
        reply: &'static str,
        #[source]
        source: ProtocolError,
    },
    /// The master's `COMMAND` reply names no command the router can read, so it could not
    /// tell keys or reads from writes.
    #[error("{node}: the COMMAND reply has no commands the router can read")]
    NoCommands { node: String },
    /// A cluster's layout (`CLUSTER SHARDS`, `CLUSTER SLOTS`) read from `node` could not be
    /// understood.
    #[error("{node}: cluster layout: {source}")]
    Topology {
        node: String,
        #[source]
        source: ProtocolError,
    },
    /// The reply came, but does not convert to the type asked for.
    #[error("the reply does not convert: {0}")]
    Conversion(String),
    /// The options or the address given cannot work.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// On a cluster: the command's keys are in different slots, so no node can run it (the
    /// command was not sent). Not retryable: the same command fails the same way.
    #[error("{CROSSSLOT}")]
    CrossSlot,
    /// On a cluster: `command` names no key and is about one connection or one node (`INFO`,
    /// `SELECT`, `MULTI`, `WAIT`...), so no choice of node keeps its meaning (the command was
    /// not sent). Not retryable. Use [`crate::Router::master_connection_for`] for one node.
    #[error("{command}: {NOT_ROUTED}")]
    NotRouted { command: String },
    /// A request the router could not make sense of (a `SCAN` cursor that is not one of the
    /// router's, a reply of a node that cannot be merged); not sent, or its reply not used.
    #[error("{0}")]
    BadRequest(String),
}

/// The words of [`Error::NotRouted`] after the command's name.
pub const NOT_ROUTED: &str = "not routed on a cluster: it names no key, and no one node's reply means what it means on \
     one server";

/// Why no master can take a command now ([`Error::MasterUnavailable`]). The source of a
/// variant that holds an [`Error`] is that `Error` itself, not a `Box` of it, so a caller can
/// downcast along the chain.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Unavailable {
    /// The link to the master has not been made yet.
    NotConnected,
    /// The link broke; the router is reconnecting.
    LinkLost(LinkLost),
    /// The link broke, and the last attempt to reconnect failed with `error`.
    Reconnecting { lost: LinkLost, error: Box<Error> },
    /// Connecting failed, and the router stopped trying.
    ConnectFailed(Box<Error>),
    /// On a cluster: no master is followed at all.
    NoMasters,
    /// On a cluster: the layout read names no slot.
    NoSlots,
    /// On a cluster: no followed master serves the command's slot.
    Unserved { slot: u16 },
    /// On a cluster: no followed master serves the slot, and the last master that could not
    /// be followed (`master`) failed with `error`.
    Unfollowed {
        slot: u16,
        master: String,
        error: Box<Error>,
    },
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unavailable::NotConnected => f.write_str("not connected yet"),
            Unavailable::LinkLost(lost) => lost.fmt(f),
            Unavailable::Reconnecting { lost, error } => write!(f, "{lost}; reconnecting: {error}"),
            Unavailable::ConnectFailed(error) => error.fmt(f),
            Unavailable::NoMasters => f.write_str("no master of the cluster is followed"),
            Unavailable::NoSlots => f.write_str("the cluster serves no slot"),
            Unavailable::Unserved { slot } => write!(f, "no master serves slot {slot}"),
            Unavailable::Unfollowed {
                slot,
                master,
                error,
            } => write!(
                f,
                "no master serves slot {slot} (cannot follow master {master}: {error})"
            ),
        }
    }
}

impl std::error::Error for Unavailable {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Unavailable::LinkLost(lost) => Some(lost),
            Unavailable::Reconnecting { error, .. }
            | Unavailable::ConnectFailed(error)
            | Unavailable::Unfollowed { error, .. } => Some(&**error),
            _ => None,
        }
    }
}

impl From<LinkLost> for Unavailable {
    fn from(lost: LinkLost) -> Unavailable {
        Unavailable::LinkLost(lost)
    }
}

/// Why the link to a master broke.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum LinkLost {
    /// The subscriber connection closed.
    ControlClosed,
    /// A command's connection to the master failed.
    CommandFoundBroken,
    /// The hot set had to be read again (a gap, a restart, an unreadable event) and could not.
    Resync(Box<Error>),
    /// No message came for `heartbeat_timeout`, and the hot set could not be read again.
    MissedHeartbeats(Box<Error>),
}

impl fmt::Display for LinkLost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkLost::ControlClosed => f.write_str("the control connection closed"),
            LinkLost::CommandFoundBroken => {
                f.write_str("a command found the master connection broken")
            }
            LinkLost::Resync(error) => write!(f, "HOTKEY.ROUTES failed: {error}"),
            LinkLost::MissedHeartbeats(error) => {
                write!(f, "missed heartbeats, and HOTKEY.ROUTES failed: {error}")
            }
        }
    }
}

impl std::error::Error for LinkLost {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LinkLost::Resync(error) | LinkLost::MissedHeartbeats(error) => Some(&**error),
            LinkLost::ControlClosed | LinkLost::CommandFoundBroken => None,
        }
    }
}

/// The kind of an [`Error`], for callers that branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Not sent: no master connection.
    MasterUnavailable,
    /// The server replied with an error (`WRONGTYPE`, `NOPERM`, ...).
    Server,
    /// The connection failed or timed out; the command may or may not have run.
    Io,
    /// The module's reply or event, the server's `COMMAND` reply or a cluster's layout was
    /// not understood, or the module does not answer.
    Protocol,
    /// The reply does not convert to the type asked for.
    Conversion,
    /// Bad options or address.
    Config,
    /// On a cluster, keys of different slots in one command.
    CrossSlot,
    /// On a cluster, a keyless command no node can answer for the whole cluster.
    NotRouted,
    /// A request (or a node's reply to it) the router could not make sense of.
    BadRequest,
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::MasterUnavailable(_) => ErrorKind::MasterUnavailable,
            Error::Redis(e) if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() => {
                ErrorKind::Io
            }
            Error::Redis(e) if e.code().is_some() => ErrorKind::Server,
            Error::Redis(_) => ErrorKind::Io,
            Error::Protocol { .. }
            | Error::NoModule { .. }
            | Error::NoCommands { .. }
            | Error::Topology { .. } => ErrorKind::Protocol,
            Error::Conversion(_) => ErrorKind::Conversion,
            Error::Config(_) => ErrorKind::Config,
            Error::CrossSlot => ErrorKind::CrossSlot,
            Error::NotRouted { .. } => ErrorKind::NotRouted,
            Error::BadRequest(_) => ErrorKind::BadRequest,
        }
    }

    /// True when sending the same command again cannot apply it twice: it was never sent, the
    /// connection was refused, or the server is loading / failing over. An I/O error in the
    /// middle of a write is *not* retryable: the write may have happened.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::MasterUnavailable(_) => true,
            Error::Redis(e) => {
                e.is_connection_refusal()
                    || matches!(
                        e.kind(),
                        redis::ErrorKind::Server(
                            redis::ServerErrorKind::BusyLoading
                                | redis::ServerErrorKind::MasterDown
                                | redis::ServerErrorKind::TryAgain
                                | redis::ServerErrorKind::ReadOnly
                        )
                    )
            }
            Error::Protocol { .. }
            | Error::NoModule { .. }
            | Error::NoCommands { .. }
            | Error::Topology { .. }
            | Error::Conversion(_)
            | Error::Config(_)
            | Error::CrossSlot
            | Error::NotRouted { .. }
            | Error::BadRequest(_) => false,
        }
    }

    /// An error reply that says the node cannot serve now (`LOADING`, `MASTERDOWN`), rather
    /// than an answer to the command.
    pub(crate) fn is_unavailable_reply(e: &RedisError) -> bool {
        e.code()
            .is_some_and(|code| hotkey_protocol::errors::is_unavailable(code.as_bytes()))
    }

    /// True when the connection this error came from cannot be used any more.
    pub(crate) fn breaks_connection(e: &RedisError) -> bool {
        e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_unrecoverable_error()
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    fn refused() -> RedisError {
        std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into()
    }

    fn bad_event() -> ProtocolError {
        hotkey_protocol::Message::from_json(b"{").expect_err("not JSON")
    }

    fn unknown_command() -> RedisError {
        (
            redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError),
            "ERR unknown command 'HOTKEY.ROUTES'",
        )
            .into()
    }

    #[test]
    fn module_protocol_and_layout_failures_are_protocol_errors_and_not_retryable() {
        let failures = [
            Error::NoModule {
                node: "127.0.0.1:6379".into(),
                source: unknown_command(),
            },
            Error::Protocol {
                node: "127.0.0.1:6379".into(),
                reply: "HOTKEY.ROUTES",
                source: bad_event(),
            },
            Error::NoCommands {
                node: "127.0.0.1:6379".into(),
            },
            Error::Topology {
                node: "127.0.0.1:7000".into(),
                source: ProtocolError::new("a range too short"),
            },
        ];
        for e in failures {
            assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
            assert!(!e.is_retryable(), "{e}");
            assert!(
                e.to_string().starts_with("127.0.0.1:"),
                "names the node: {e}"
            );
        }
    }

    #[test]
    fn every_reason_for_no_master_is_retryable() {
        let lost = || LinkLost::Resync(Box::new(refused().into()));
        let reasons = [
            Unavailable::NotConnected,
            Unavailable::LinkLost(LinkLost::ControlClosed),
            Unavailable::LinkLost(LinkLost::CommandFoundBroken),
            Unavailable::LinkLost(lost()),
            Unavailable::LinkLost(LinkLost::MissedHeartbeats(Box::new(refused().into()))),
            Unavailable::Reconnecting {
                lost: LinkLost::ControlClosed,
                error: Box::new(refused().into()),
            },
            Unavailable::ConnectFailed(Box::new(refused().into())),
            Unavailable::NoMasters,
            Unavailable::NoSlots,
            Unavailable::Unserved { slot: 7 },
            Unavailable::Unfollowed {
                slot: 7,
                master: "127.0.0.1:7001".into(),
                error: Box::new(refused().into()),
            },
        ];
        for reason in reasons {
            let e = Error::MasterUnavailable(reason);
            assert_eq!(e.kind(), ErrorKind::MasterUnavailable, "{e}");
            assert!(e.is_retryable(), "{e}");
        }
    }

    #[test]
    fn a_failure_keeps_its_source() {
        let e = Error::NoModule {
            node: "127.0.0.1:6379".into(),
            source: unknown_command(),
        };
        let source = e.source().and_then(|s| s.downcast_ref::<RedisError>());
        assert!(source.is_some_and(|s| s.code() == Some("ERR")), "{e:?}");

        let e = Error::Protocol {
            node: "127.0.0.1:6379".into(),
            reply: "HOTKEY.ROUTES",
            source: bad_event(),
        };
        assert!(e.source().is_some_and(|s| s.is::<ProtocolError>()), "{e:?}");

        // A lost link that could not be re-made: the router's error, then the link's reason,
        // then the reconnect's failure, down to the connection refusal.
        let e = Error::MasterUnavailable(Unavailable::Reconnecting {
            lost: LinkLost::CommandFoundBroken,
            error: Box::new(refused().into()),
        });
        assert_eq!(
            e.to_string(),
            format!(
                "master unavailable: a command found the master connection broken; \
                 reconnecting: {}",
                refused()
            )
        );
        let mut chain = Vec::new();
        let mut next = e.source();
        while let Some(s) = next {
            chain.push(s);
            next = s.source();
        }
        assert!(
            chain.iter().any(|s| matches!(
                s.downcast_ref::<Error>(),
                Some(Error::Redis(e)) if e.is_connection_refusal()
            )),
            "{chain:?}"
        );
    }
}
