//! The proxy process: the router connected to the upstream, the listener, the client limit,
//! the metrics endpoint, and the drain on shutdown (stop accepting, answer what was read,
//! then exit, within `shutdown_timeout`).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use hotkey_router::redis::{
    IntoConnectionInfo, RedisConnectionInfo, sentinel::SentinelNodeConnectionInfo,
};
use hotkey_router::{Options, Router};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::client::{self, ClientSettings};
use crate::config::{Config, Upstream};
use crate::engine::{Engine, EngineSettings};
use crate::metrics::{Metrics, UpstreamSnapshot};
use crate::request::Limits;

/// Why the proxy could not run.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: String,
        source: std::io::Error,
    },
    #[error("cannot follow the upstream: {0}")]
    Upstream(#[from] hotkey_router::Error),
    #[error("cannot find out what the master lets a client that has not logged in do: {0}")]
    Access(crate::engine::Failure),
    #[error("bad upstream URL {url}: {source}")]
    Url {
        url: String,
        source: hotkey_router::redis::RedisError,
    },
}

/// The reply to a client over `--max-clients`, as Redis words it.
pub const MAX_CLIENTS: &[u8] = b"-ERR max number of clients reached\r\n";

/// Runs the proxy until `shutdown` resolves, then drains. `ready` is called with the bound
/// addresses (clients, metrics) once both listen.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()>,
    ready: impl FnOnce(std::net::SocketAddr, Option<std::net::SocketAddr>),
) -> Result<(), ProxyError> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ProxyError::Listen {
            address: config.listen.to_string(),
            source,
        })?;
    let metrics_listener = match config.metrics {
        Some(address) => {
            Some(
                TcpListener::bind(address)
                    .await
                    .map_err(|source| ProxyError::Listen {
                        address: address.to_string(),
                        source,
                    })?,
            )
        }
        None => None,
    };
    let options = config.router_options();
    let (router, user, db) = connect(&config, &options).await?;
    let snapshot_router = router.clone();
    let metrics = Arc::new(Metrics::new(Box::new(move || snapshots(&snapshot_router))));
    let mut engine = Engine::new(
        router,
        &options,
        EngineSettings {
            pool_size: config.pool_size,
            upstream_timeout: config.upstream_timeout,
            connect_timeout: config.connect_timeout,
            cache: config.cache,
            cache_capacity_bytes: config.cache_capacity,
            cluster: matches!(config.upstream, Upstream::Cluster(_)),
        },
        metrics.clone(),
        user,
        db,
    );
    engine.probe_access().await.map_err(ProxyError::Access)?;
    tracing::info!(
        "hotkey-proxy: clients that have not logged in: {:?}",
        engine.unauthenticated()
    );
    let engine = Arc::new(engine);
    let settings = Arc::new(ClientSettings {
        limits: Limits {
            max_bulk_len: size(config.max_bulk_len),
            max_multibulk_len: size(config.max_multibulk_len),
            max_inline_len: size(config.max_inline_len),
        },
        idle_timeout: config.timeout,
        output_limit: size(config.client_output_limit),
        read_your_writes: options.read_your_writes,
        pool_size: config.pool_size,
    });

    let stop = CancellationToken::new();
    let metrics_address = metrics_listener.as_ref().and_then(|l| l.local_addr().ok());
    let metrics_task = metrics_listener.map(|l| {
        let (metrics, stop) = (metrics.clone(), stop.clone());
        tokio::spawn(crate::metrics::serve(l, metrics, stop.cancelled_owned()))
    });
    if let Ok(address) = listener.local_addr() {
        tracing::info!(
            "hotkey-proxy: listening on {address}, metrics on {}",
            metrics_address.map_or("(off)".to_string(), |a| a.to_string())
        );
        ready(address, metrics_address);
    }

    let clients = TaskTracker::new();
    let connected = Arc::new(AtomicUsize::new(0));
    let ids = AtomicU64::new(0);
    tokio::pin!(shutdown);
    loop {
        let (mut socket, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of descriptors and the like: the clients already here go on.
                    tracing::warn!("hotkey-proxy: accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if connected.load(Ordering::Acquire) >= config.max_clients {
            metrics.client_rejected();
            tokio::spawn(async move {
                let _ = socket.write_all(MAX_CLIENTS).await;
                let _ = socket.shutdown().await;
            });
            continue;
        }
        connected.fetch_add(1, Ordering::AcqRel);
        metrics.client_connected();
        let id = ids.fetch_add(1, Ordering::Relaxed);
        let (engine, settings, stop, connected) = (
            engine.clone(),
            settings.clone(),
            stop.clone(),
            connected.clone(),
        );
        clients.spawn(async move {
            let metrics = engine.metrics().clone();
            let reason = client::serve(engine, socket, id, settings, stop).await;
            connected.fetch_sub(1, Ordering::AcqRel);
            metrics.client_disconnected(reason);
        });
    }

    tracing::info!(
        "hotkey-proxy: shutting down: answering the requests in flight of {} clients (at most {:?})",
        connected.load(Ordering::Acquire),
        config.shutdown_timeout
    );
    drop(listener);
    stop.cancel();
    clients.close();
    if tokio::time::timeout(config.shutdown_timeout, clients.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            "hotkey-proxy: {} clients still had requests in flight after {:?}; closing them",
            connected.load(Ordering::Acquire),
            config.shutdown_timeout
        );
    }
    if let Some(task) = metrics_task {
        let _ = task.await;
    }
    Ok(())
}

/// Connects the router to the configured upstream; the user and database the proxy's own
/// connections use.
async fn connect(config: &Config, options: &Options) -> Result<(Router, String, i64), ProxyError> {
    let bad_url = |url: &str| {
        let url = url.to_string();
        move |source| ProxyError::Url { url, source }
    };
    match &config.upstream {
        Upstream::Master(url) => {
            let info = url.as_str().into_connection_info().map_err(bad_url(url))?;
            let settings = info.redis_settings();
            let user = settings.username().unwrap_or("default").to_string();
            let db = settings.db();
            let router = Router::connect(info, options.clone()).await?;
            Ok((router, user, db))
        }
        Upstream::Sentinel {
            name,
            sentinels,
            master_user,
            master_password,
        } => {
            let mut settings = RedisConnectionInfo::default();
            if let Some(user) = master_user {
                settings = settings.set_username(user);
            }
            if let Some(password) = master_password {
                settings = settings.set_password(password);
            }
            let user = master_user.clone().unwrap_or_else(|| "default".into());
            let db = 0;
            let node = SentinelNodeConnectionInfo::default().set_redis_connection_info(settings);
            let router =
                Router::connect_sentinel(sentinels.clone(), name, node, options.clone()).await?;
            Ok((router, user, db))
        }
        Upstream::Cluster(seeds) => {
            let infos = seeds
                .iter()
                .map(|url| url.as_str().into_connection_info().map_err(bad_url(url)))
                .collect::<Result<Vec<_>, _>>()?;
            let user = infos
                .first()
                .and_then(|i| i.redis_settings().username())
                .unwrap_or("default")
                .to_string();
            let router = Router::connect_cluster(infos, options.clone()).await?;
            Ok((router, user, 0))
        }
    }
}

/// A configured size as a length (sizes beyond the address space mean "no limit").
fn size(bytes: u64) -> usize {
    usize::try_from(bytes).unwrap_or(usize::MAX)
}

/// What the router knows of each master, for a scrape.
fn snapshots(router: &Router) -> Vec<UpstreamSnapshot> {
    router
        .shard_handles()
        .iter()
        .map(|h| {
            let m = h.metrics();
            UpstreamSnapshot {
                master: h.master_address(),
                connected: h.is_connected(),
                hot_keys: h.hot_key_count() as u64,
                invalidations: m.invalidations,
                resyncs: m.resyncs,
                reports: m.reports,
                replicas_up: h.replicas_up() as u64,
                master_commands: m.master,
                replica_reads: m.replica,
                cache_hits: m.cache_hits,
            }
        })
        .collect()
}
