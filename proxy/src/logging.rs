//! Logs through `tracing`, to standard error.

use tracing_subscriber::EnvFilter;

/// Why logging could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// `RUST_LOG` is set but is not a filter.
    #[error("RUST_LOG: bad filter: {0}")]
    Environment(tracing_subscriber::filter::FromEnvError),
    /// The `--log` filter is not a filter.
    #[error("--log: bad filter: {0}")]
    Filter(tracing_subscriber::filter::ParseError),
    /// A global subscriber was already installed.
    #[error("logging was already started: {0}")]
    Installed(Box<dyn std::error::Error + Send + Sync>),
}

/// Starts logging with `filter` (a level such as `info`, or an `EnvFilter` directive such as
/// `info,hotkey_router=debug`). `RUST_LOG`, when set, wins over `filter`, so an operator can
/// turn on debugging without editing the proxy's config.
pub fn init(filter: &str) -> Result<(), LogError> {
    let filter = match std::env::var_os(EnvFilter::DEFAULT_ENV) {
        Some(_) => EnvFilter::try_from_default_env().map_err(LogError::Environment)?,
        None => EnvFilter::try_new(filter).map_err(LogError::Filter)?,
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init()
        .map_err(LogError::Installed)
}
