//! The router's errors, which say whether the caller may send the command again.

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
    MasterUnavailable(String),
    /// The server answered with an error, or the connection failed during the command.
    #[error(transparent)]
    Redis(#[from] RedisError),
    /// The master does not answer `HOTKEY.ROUTES`: the hotkey module is not loaded there, or
    /// the router's user may not run it.
    #[error("HOTKEY.ROUTES failed on the master (is the hotkey module loaded?): {0}")]
    NoModule(RedisError),
    /// The module's reply or event could not be read.
    #[error("hotkey protocol: {0}")]
    Protocol(#[from] ProtocolError),
    /// A cluster's layout (`CLUSTER SHARDS`, `CLUSTER SLOTS`) could not be read.
    #[error("cluster layout: {0}")]
    Topology(String),
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
    /// The module's reply or event was not understood.
    Protocol,
    /// The reply does not convert to the type asked for.
    Conversion,
    /// Bad options or address.
    Config,
    /// On a cluster, keys of different slots in one command.
    CrossSlot,
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
            Error::Protocol(_) | Error::NoModule(_) | Error::Topology(_) => ErrorKind::Protocol,
            Error::Conversion(_) => ErrorKind::Conversion,
            Error::Config(_) => ErrorKind::Config,
            Error::CrossSlot => ErrorKind::CrossSlot,
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
            Error::Protocol(_)
            | Error::NoModule(_)
            | Error::Topology(_)
            | Error::Conversion(_)
            | Error::Config(_)
            | Error::CrossSlot => false,
        }
    }

    /// An error reply that says the node cannot serve now (`LOADING`, `MASTERDOWN`), rather
    /// than an answer to the command.
    pub(crate) fn is_unavailable_reply(e: &RedisError) -> bool {
        matches!(
            e.kind(),
            redis::ErrorKind::Server(
                redis::ServerErrorKind::BusyLoading
                    | redis::ServerErrorKind::MasterDown
                    | redis::ServerErrorKind::TryAgain
            )
        )
    }

    /// True when the connection this error came from cannot be used any more.
    pub(crate) fn breaks_connection(e: &RedisError) -> bool {
        e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_unrecoverable_error()
    }
}
