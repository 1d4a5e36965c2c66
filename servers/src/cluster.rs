//! `Cluster`: a Redis Cluster of real `redis-server --cluster-enabled yes` processes with the
//! module loaded (N masters × R replicas), created with `redis-cli --cluster create`, and its
//! `ClusterBuilder`. Nodes are found by what the cluster says (`CLUSTER NODES`), so roles stay
//! right after a failover and slot owners after a migration.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use hotkey_protocol::cluster::{NodeLine, SLOTS, key_slot, parse_cluster_nodes};
use redis::Connection;

use crate::Error;
use crate::module::{module_path, set_module_arg};
use crate::process::{Attempt, Process, deadline, fresh_dir, own_args, server_binary, tail};

/// How long `redis-cli --cluster create` may take (it waits for the nodes to meet, a second at
/// a time).
const CREATE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the nodes may take to agree on the layout once created: every node `cluster_state:ok`,
/// every replica synced, every node's view the same.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
/// The cluster bus of a node listens on its port + 10000 (the server's default).
const BUS_PORT_OFFSET: u16 = 10000;
/// Attempts at starting a node when a port picked was taken in the meantime.
const PORT_ATTEMPTS: usize = 10;
/// The default `cluster-node-timeout` (ms): long enough that a busy machine does not fail a
/// node by accident; failover tests set a shorter one with `server_args`.
const NODE_TIMEOUT_MS: &str = "5000";

/// The `redis-cli` that creates clusters: `$HOTKEY_REDIS_CLI`, default `redis-cli` on `PATH`
/// (Debian's 7.0 works with Redis 7.x/8.x and Valkey).
pub fn cli_binary() -> String {
    std::env::var("HOTKEY_REDIS_CLI").unwrap_or_else(|_| "redis-cli".to_string())
}

/// How to start a cluster: its shape, module arguments and server arguments (the same for every
/// node).
pub struct ClusterBuilder {
    masters: usize,
    replicas: usize,
    module_args: Vec<(String, String)>,
    server_args: Vec<String>,
    slowdown: f64,
}

impl ClusterBuilder {
    /// Set (or override) one module argument (`<name> <value>` after the module path).
    pub fn module_arg(mut self, name: &str, value: &str) -> Self {
        set_module_arg(&mut self.module_args, name, value);
        self
    }

    /// Extra server arguments for every node, e.g. `["--cluster-node-timeout", "1000"]` (they
    /// come after the harness's own, so they win).
    pub fn server_args(mut self, args: &[&str]) -> Self {
        self.server_args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Multiply every timeout of starting the cluster (a node answering PING, `redis-cli
    /// --cluster create`, the nodes agreeing) and of stopping a node by `factor`, for a loaded
    /// or slow machine.
    pub fn slowdown(mut self, factor: f64) -> Self {
        self.slowdown = factor;
        self
    }

    /// Starts every node, creates the cluster and waits until every node says
    /// `cluster_state:ok`, every replica is synced and every node sees the same layout. On
    /// failure, the nodes started so far are stopped.
    pub fn start(self) -> Result<Cluster, Error> {
        if self.masters < 3 {
            return Err(Error::new("a Redis Cluster needs at least 3 masters"));
        }
        // Found before any directory exists, so that a missing module leaks nothing.
        let module = module_path()?;
        let count = self.masters * (1 + self.replicas);
        let nodes = (0..count)
            .map(|_| self.start_node(&module))
            .collect::<Result<Vec<Node>, Error>>()?;
        let cluster = Cluster {
            nodes,
            slowdown: self.slowdown,
        };
        cluster.create(self.replicas)?;
        cluster.settle(self.masters, self.replicas)?;
        Ok(cluster)
    }

    /// One node on a free port whose bus port is free too.
    fn start_node(&self, module: &Path) -> Result<Node, Error> {
        let mut last_failure = String::new();
        for _ in 0..PORT_ATTEMPTS {
            match self.try_start_node(free_port_pair()?, module) {
                Ok(node) => return Ok(node),
                Err(Attempt::PortTaken(report)) => last_failure = report,
                Err(Attempt::Failed(e)) => return Err(e),
            }
        }
        Err(Error::new(format!(
            "could not start a cluster node:\n{last_failure}"
        )))
    }

    fn try_start_node(&self, port: u16, module: &Path) -> Result<Node, Attempt> {
        let dir = fresh_dir("cluster")?;
        let log = dir.join("redis.log");
        let mut args = own_args(port, &dir, &log);
        args.extend(
            [
                "--cluster-enabled",
                "yes",
                // Relative to `--dir`: each node has its own file.
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                NODE_TIMEOUT_MS,
            ]
            .map(str::to_string),
        );
        args.extend(["--loadmodule".into(), module.display().to_string()]);
        for (name, value) in &self.module_args {
            args.push(name.clone());
            args.push(value.clone());
        }
        args.extend(self.server_args.iter().cloned());

        let process = Process::start(&args, port, dir.clone(), log, self.slowdown)?;
        let mut node = Node {
            process: Mutex::new(process),
            port,
            dir,
            id: String::new(),
        };
        node.id = crate::process::open(&node.url(), self.slowdown)
            .and_then(|mut conn| redis::cmd("CLUSTER").arg("MYID").query(&mut conn))
            .map_err(|e| {
                Error::new(format!(
                    "CLUSTER MYID on port {port}: {e}\n{}",
                    node.log_tail()
                ))
            })?;
        Ok(node)
    }
}

/// A port nobody listens on right now whose bus port (+10000) is free too (never 6379).
fn free_port_pair() -> Result<u16, Error> {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|e| Error::new(format!("bind 127.0.0.1:0: {e}")))?
            .port();
        let Some(bus) = port.checked_add(BUS_PORT_OFFSET) else {
            continue;
        };
        if TcpListener::bind(("127.0.0.1", bus)).is_ok() {
            return Ok(port);
        }
    }
}

/// One node of a cluster. Dropping it (with its `Cluster`) stops the process (SIGTERM, then
/// SIGKILL) and removes its directory.
pub struct Node {
    /// Behind a lock so that `kill` works through the `&Node` a cluster's accessors hand out.
    process: Mutex<Process>,
    pub port: u16,
    pub dir: PathBuf,
    /// The node's `CLUSTER MYID`.
    pub id: String,
}

impl Node {
    fn process(&self) -> MutexGuard<'_, Process> {
        // A panic while holding the lock leaves the process as it was: keep using it.
        self.process.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// `127.0.0.1:<port>`, as cluster clients and `redis-cli --cluster` name nodes.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.process().pid()
    }

    pub fn log_tail(&self) -> String {
        self.process().log_tail()
    }

    /// True while the process runs and answers PING.
    pub fn is_up(&self) -> bool {
        self.process().is_up()
    }

    /// SIGKILL the node now (a crash) and wait for it to exit; its directory stays until the
    /// cluster is dropped.
    pub fn kill(&self) {
        self.process().kill();
    }

    fn connect(&self, url: &str) -> Connection {
        let slowdown = self.process().slowdown();
        crate::process::connect(url, slowdown, || self.log_tail())
    }

    /// A RESP2 connection (no cluster redirections followed: a key of another shard gets
    /// `MOVED`); panics with the node's log when it cannot connect.
    pub fn conn(&self) -> Connection {
        self.connect(&self.url())
    }

    /// A RESP3 connection; panics with the node's log when it cannot connect.
    pub fn conn_resp3(&self) -> Connection {
        self.connect(&format!("{}?protocol=resp3", self.url()))
    }

    /// A connection for a query whose failure the caller reports (the node may be down).
    fn try_conn(&self) -> Result<Connection, String> {
        let slowdown = self.process().slowdown();
        crate::process::open(&self.url(), slowdown).map_err(|e| e.to_string())
    }

    /// `CLUSTER NODES` as this node sees it.
    pub fn view(&self) -> Result<Vec<NodeLine>, String> {
        let mut conn = self.try_conn()?;
        let text: String = redis::cmd("CLUSTER")
            .arg("NODES")
            .query(&mut conn)
            .map_err(|e| e.to_string())?;
        parse_cluster_nodes(&text).map_err(|e| e.to_string())
    }

    /// `cluster_state` of `CLUSTER INFO` (`ok` or `fail`).
    pub fn cluster_state(&self) -> Result<String, String> {
        let mut conn = self.try_conn()?;
        let info: String = redis::cmd("CLUSTER")
            .arg("INFO")
            .query(&mut conn)
            .map_err(|e| e.to_string())?;
        info.lines()
            .find_map(|l| l.trim().strip_prefix("cluster_state:"))
            .map(str::to_string)
            .ok_or_else(|| format!("CLUSTER INFO has no cluster_state: {info}"))
    }

    /// `master_link_status` of `INFO replication` (`up` on a synced replica).
    fn master_link_up(&self) -> bool {
        let slowdown = self.process().slowdown();
        let info: Result<String, _> = crate::process::open(&self.url(), slowdown)
            .and_then(|mut c| redis::cmd("INFO").arg("replication").query(&mut c));
        info.is_ok_and(|info| info.lines().any(|l| l.trim() == "master_link_status:up"))
    }
}

/// A running cluster. Dropping it stops every node (also when a panic unwinds), so a failure
/// never leaks one.
pub struct Cluster {
    nodes: Vec<Node>,
    /// What the builder's `slowdown` was.
    slowdown: f64,
}

impl Cluster {
    /// A builder of `masters` masters (at least 3) with `replicas` replicas each, the module
    /// loaded on every node with its defaults.
    pub fn builder(masters: usize, replicas: usize) -> ClusterBuilder {
        ClusterBuilder {
            masters,
            replicas,
            module_args: Vec::new(),
            server_args: Vec::new(),
            slowdown: 1.0,
        }
    }

    /// What timeouts are multiplied by (`ClusterBuilder::slowdown`).
    pub fn slowdown(&self) -> f64 {
        self.slowdown
    }

    /// Every node, in the order they were started, killed ones included.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// `redis://` URLs of every node, as seeds for a cluster client.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(Node::url).collect()
    }

    /// The node with this `CLUSTER MYID`.
    pub fn node_by_id(&self, id: &str) -> Result<&Node, Error> {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .ok_or_else(|| Error::new(format!("no node has id {id}")))
    }

    /// The masters that serve slots and are not failing, as a live node sees them, in slot
    /// order.
    pub fn masters(&self) -> Result<Vec<&Node>, Error> {
        let mut masters: Vec<NodeLine> = self
            .view()?
            .into_iter()
            .filter(|l| l.is_master() && !l.is_failing() && !l.slots.is_empty())
            .collect();
        masters.sort_by_key(|l| l.slots.iter().map(|r| r.start).min());
        masters.iter().map(|l| self.node_by_id(&l.id)).collect()
    }

    /// The replicas of `master` that are not failing, as a live node sees them.
    pub fn replicas(&self, master: &Node) -> Result<Vec<&Node>, Error> {
        self.view()?
            .iter()
            .filter(|l| l.master_id.as_deref() == Some(master.id.as_str()) && !l.is_failing())
            .map(|l| self.node_by_id(&l.id))
            .collect()
    }

    /// The master serving `slot`, as a live node sees it.
    pub fn node_for_slot(&self, slot: u16) -> Result<&Node, Error> {
        if slot >= SLOTS {
            return Err(Error::new(format!("slot {slot} is out of range")));
        }
        let view = self.view()?;
        let owner = view
            .iter()
            .find(|l| l.is_master() && l.serves(slot))
            .ok_or_else(|| Error::new(format!("no master serves slot {slot}: {view:?}")))?;
        self.node_by_id(&owner.id)
    }

    /// The master serving `key`'s slot.
    pub fn node_for_key(&self, key: &[u8]) -> Result<&Node, Error> {
        self.node_for_slot(key_slot(key))
    }

    /// The nodes whose process runs and answers PING.
    pub fn live(&self) -> Vec<&Node> {
        self.nodes.iter().filter(|n| n.is_up()).collect()
    }

    /// `CLUSTER NODES` of the first live node that answers it.
    pub fn view(&self) -> Result<Vec<NodeLine>, Error> {
        self.live()
            .iter()
            .find_map(|n| n.view().ok())
            .ok_or_else(|| Error::new("no live node answers CLUSTER NODES"))
    }

    /// Every node's view, for failure messages.
    pub fn views_report(&self) -> String {
        self.nodes
            .iter()
            .map(|n| match n.view() {
                Ok(view) => format!("port {}: {view:?}", n.port),
                Err(e) => format!("port {}: {e}", n.port),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// `redis-cli --cluster create` with every node; fails with the cli's output and the
    /// nodes' logs when it fails or hangs.
    fn create(&self, replicas: usize) -> Result<(), Error> {
        let dir = &self.nodes[0].dir;
        let output = dir.join("cluster-create.log");
        let (out, err) = std::fs::File::create(&output)
            .and_then(|out| Ok((out.try_clone()?, out)))
            .map(|(err, out)| (out, err))
            .map_err(|e| Error::new(format!("create {}: {e}", output.display())))?;
        let mut args: Vec<String> = vec!["--cluster".into(), "create".into()];
        args.extend(self.nodes.iter().map(Node::addr));
        args.extend([
            "--cluster-replicas".into(),
            replicas.to_string(),
            "--cluster-yes".into(),
        ]);
        let child = Command::new(cli_binary())
            .args(&args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| {
                Error::new(format!(
                    "cannot run {} (set HOTKEY_REDIS_CLI): {e}",
                    cli_binary()
                ))
            })?;
        let status = wait_with_deadline(child, deadline(CREATE_TIMEOUT, self.slowdown));
        let report = || {
            format!(
                "{} {} ({}) failed:\n{}\n--- node logs ---\n{}",
                cli_binary(),
                args.join(" "),
                server_binary(),
                tail(&output, 40),
                self.logs_report()
            )
        };
        match status {
            Some(status) if status.success() => Ok(()),
            _ => Err(Error::new(report())),
        }
    }

    /// Waits until every node says `cluster_state:ok`, every replica is synced, and every node
    /// sees `masters` masters with slots and `masters × replicas` replicas, none failing.
    fn settle(&self, masters: usize, replicas: usize) -> Result<(), Error> {
        let deadline = deadline(SETTLE_TIMEOUT, self.slowdown);
        while !self.settled(masters, replicas) {
            if Instant::now() >= deadline {
                return Err(Error::new(format!(
                    "the cluster did not settle within {:?}; views:\n{}\n--- node logs ---\n{}",
                    SETTLE_TIMEOUT.mul_f64(self.slowdown),
                    self.views_report(),
                    self.logs_report()
                )));
            }
            thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    fn settled(&self, masters: usize, replicas: usize) -> bool {
        self.nodes.iter().all(|node| {
            let Ok(view) = node.view() else {
                return false;
            };
            let me = view.iter().find(|l| l.has("myself"));
            let synced = me.is_some_and(|me| me.is_master() || node.master_link_up());
            let healthy = view.iter().all(|l| !l.is_failing());
            let master_count = view
                .iter()
                .filter(|l| l.is_master() && !l.slots.is_empty())
                .count();
            let replica_count = view
                .iter()
                .filter(|l| l.has("slave") && l.master_id.is_some())
                .count();
            synced
                && healthy
                && master_count == masters
                && replica_count == masters * replicas
                && node.cluster_state().is_ok_and(|s| s == "ok")
        })
    }

    fn logs_report(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("--- port {} ---\n{}", n.port, n.log_tail()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Waits for `child` to exit; kills it at `deadline`. None when it had to be killed.
fn wait_with_deadline(mut child: Child, deadline: Instant) -> Option<std::process::ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}
