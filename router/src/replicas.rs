//! The replicas hot reads may go to: the ones the module calls healthy, minus the ones that
//! failed this router (an error or a timeout takes a replica out of rotation until a probe
//! answers again). Round-robin over the rest.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use hotkey_protocol::Replica;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, ConnectionAddr, ConnectionInfo};

use crate::locks::{lock, read, write};

/// One replica.
#[derive(Debug)]
pub struct ReplicaNode {
    pub host: String,
    pub port: u16,
    conn: Mutex<Option<MultiplexedConnection>>,
}

impl ReplicaNode {
    fn connection(&self) -> Option<MultiplexedConnection> {
        lock(&self.conn).clone()
    }

    fn set(&self, conn: Option<MultiplexedConnection>) {
        *lock(&self.conn) = conn;
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
    /// Replicas of a cluster answer reads only after `READONLY` (else `MOVED` to the master).
    readonly: bool,
    probing: AtomicBool,
}

impl ReplicaPool {
    pub fn new(timeout: Duration, connect_timeout: Duration, readonly: bool) -> ReplicaPool {
        ReplicaPool {
            nodes: RwLock::new(Vec::new()),
            next: AtomicUsize::new(0),
            base: RwLock::new(None),
            timeout,
            connect_timeout,
            readonly,
            probing: AtomicBool::new(false),
        }
    }

    /// The replicas are now `replicas` (the module's healthy list) and are reached with the
    /// settings of `base`. Known replicas keep their connection; others wait for a probe.
    pub fn set(&self, replicas: &[Replica], base: Option<&ConnectionInfo>) {
        if let Some(base) = base {
            *write(&self.base) = Some(base.clone());
        }
        let mut nodes = write(&self.nodes);
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
        let nodes = read(&self.nodes);
        let n = nodes.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n).find_map(|i| {
            let node = &nodes[(start + i) % n];
            node.connection().map(|c| (node.clone(), c))
        })
    }

    /// Every replica in rotation with its connection.
    pub fn connections(&self) -> Vec<(Arc<ReplicaNode>, MultiplexedConnection)> {
        read(&self.nodes)
            .iter()
            .filter_map(|node| node.connection().map(|c| (node.clone(), c)))
            .collect()
    }

    /// The next replica in rotation, if any is up: its host and port (for a front end with
    /// connections of its own).
    pub fn pick_address(&self) -> Option<(String, u16)> {
        self.pick().map(|(node, _)| (node.host.clone(), node.port))
    }

    /// Every replica in rotation: its host and port (for a front end with connections of its
    /// own).
    pub fn addresses(&self) -> Vec<(String, u16)> {
        read(&self.nodes)
            .iter()
            .filter(|node| node.connection().is_some())
            .map(|node| (node.host.clone(), node.port))
            .collect()
    }

    /// The replica at `host:port` failed a read: out of rotation until a probe succeeds.
    pub fn fail_address(&self, host: &str, port: u16) {
        if let Some(node) = read(&self.nodes)
            .iter()
            .find(|n| n.host == host && n.port == port)
        {
            node.set(None);
        }
    }

    /// `node` failed a read: out of rotation until a probe succeeds.
    pub fn fail(&self, node: &ReplicaNode) {
        node.set(None);
    }

    /// Replicas in rotation now.
    pub fn up(&self) -> usize {
        read(&self.nodes)
            .iter()
            .filter(|x| x.connection().is_some())
            .count()
    }

    /// Every replica, with whether it is in rotation.
    pub fn all(&self) -> Vec<(String, bool)> {
        read(&self.nodes)
            .iter()
            .map(|x| (x.address(), x.connection().is_some()))
            .collect()
    }

    /// Connects to every replica out of rotation and puts back the ones that answer PING.
    /// One probe at a time; returns at once when one is already running.
    pub async fn probe(&self) {
        if self.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let down: Vec<Arc<ReplicaNode>> = read(&self.nodes)
            .iter()
            .filter(|x| x.connection().is_none())
            .cloned()
            .collect();
        let base = read(&self.base).clone();
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
        if self.readonly {
            let ok: redis::RedisResult<()> = redis::cmd("READONLY").query_async(&mut conn).await;
            ok.ok()?;
        }
        let pong: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut conn).await;
        pong.ok().map(|_| conn)
    }
}
