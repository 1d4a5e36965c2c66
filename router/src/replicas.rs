//! The replicas hot reads may go to: the ones the module calls healthy, minus the ones that
//! failed this router (an error or a timeout takes a replica out of rotation until a probe
//! answers again). Round-robin over the rest.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use hotkey_protocol::Replica;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, ConnectionAddr, ConnectionInfo};

/// One replica.
#[derive(Debug)]
pub struct ReplicaNode {
    pub host: String,
    pub port: u16,
    conn: Mutex<Option<MultiplexedConnection>>,
}

impl ReplicaNode {
    fn connection(&self) -> Option<MultiplexedConnection> {
        self.conn.lock().ok()?.clone()
    }

    fn set(&self, conn: Option<MultiplexedConnection>) {
        if let Ok(mut slot) = self.conn.lock() {
            *slot = conn;
        }
    }

    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// The replicas and how to reach them.
#[derive(Debug)]
pub struct ReplicaPool {
    nodes: RwLock<Vec<Arc<ReplicaNode>>>,
    next: AtomicUsize,
    /// The master's connection settings (user, password, db, protocol); replicas get the same
    /// with their own address.
    base: RwLock<Option<ConnectionInfo>>,
    timeout: Duration,
    connect_timeout: Duration,
    probing: AtomicBool,
}

impl ReplicaPool {
    pub fn new(timeout: Duration, connect_timeout: Duration) -> ReplicaPool {
        ReplicaPool {
            nodes: RwLock::new(Vec::new()),
            next: AtomicUsize::new(0),
            base: RwLock::new(None),
            timeout,
            connect_timeout,
            probing: AtomicBool::new(false),
        }
    }

    /// The replicas are now `replicas` (the module's healthy list) and are reached with the
    /// settings of `base`. Known replicas keep their connection; others wait for a probe.
    pub fn set(&self, replicas: &[Replica], base: Option<&ConnectionInfo>) {
        if let Some(base) = base
            && let Ok(mut slot) = self.base.write()
        {
            *slot = Some(base.clone());
        }
        let Ok(mut nodes) = self.nodes.write() else {
            return;
        };
        let kept: Vec<Arc<ReplicaNode>> = replicas
            .iter()
            .map(|r| {
                nodes
                    .iter()
                    .find(|n| n.host == r.host && n.port == r.port)
                    .cloned()
                    .unwrap_or_else(|| {
                        Arc::new(ReplicaNode {
                            host: r.host.clone(),
                            port: r.port,
                            conn: Mutex::new(None),
                        })
                    })
            })
            .collect();
        *nodes = kept;
    }

    /// The next replica in rotation with its connection, if any is up.
    pub fn pick(&self) -> Option<(Arc<ReplicaNode>, MultiplexedConnection)> {
        let nodes = self.nodes.read().ok()?;
        let n = nodes.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n).find_map(|i| {
            let node = &nodes[(start + i) % n];
            node.connection().map(|c| (node.clone(), c))
        })
    }

    /// `node` failed a read: out of rotation until a probe succeeds.
    pub fn fail(&self, node: &ReplicaNode) {
        node.set(None);
    }

    /// Replicas in rotation now.
    pub fn up(&self) -> usize {
        self.nodes
            .read()
            .map(|n| n.iter().filter(|x| x.connection().is_some()).count())
            .unwrap_or(0)
    }

    /// Every replica, with whether it is in rotation.
    pub fn all(&self) -> Vec<(String, bool)> {
        self.nodes
            .read()
            .map(|n| {
                n.iter()
                    .map(|x| (x.address(), x.connection().is_some()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Connects to every replica out of rotation and puts back the ones that answer PING.
    /// One probe at a time; returns at once when one is already running.
    pub async fn probe(&self) {
        if self.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let down: Vec<Arc<ReplicaNode>> = self
            .nodes
            .read()
            .map(|n| {
                n.iter()
                    .filter(|x| x.connection().is_none())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let base = self.base.read().ok().and_then(|b| b.clone());
        if let Some(base) = base {
            for node in down {
                if let Some(conn) = self.connect(&base, &node).await {
                    node.set(Some(conn));
                }
            }
        }
        self.probing.store(false, Ordering::Release);
    }

    async fn connect(
        &self,
        base: &ConnectionInfo,
        node: &ReplicaNode,
    ) -> Option<MultiplexedConnection> {
        let info = base
            .clone()
            .set_addr(ConnectionAddr::Tcp(node.host.clone(), node.port));
        let client = Client::open(info).ok()?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.timeout));
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .ok()?;
        let pong: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut conn).await;
        pong.ok().map(|_| conn)
    }
}
