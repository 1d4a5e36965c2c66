//! `Sentinel`: one `redis-server --sentinel` monitoring a `Server`, for failover tests.

use std::fs;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use hotkey_servers::process::{Attempt, Process, fresh_dir, on_port};
use redis::{Connection, Value};

use crate::server::Server;
use crate::wait::slowdown;

/// How long a sentinel may take to know its master and discover the master's replicas (it asks
/// the master's `INFO` as soon as it connects).
const DISCOVER_TIMEOUT: Duration = Duration::from_secs(20);

/// One running sentinel (the same binary as the servers, with `--sentinel`) that monitors one
/// master with quorum 1, so that it alone fails the master over: down after 1 s, failover
/// timeout 5 s. Dropping it stops the process (SIGTERM, then SIGKILL) and removes its
/// directory, config file included.
pub struct Sentinel {
    process: Process,
    name: String,
    pub port: u16,
    pub dir: PathBuf,
}

impl Sentinel {
    /// Starts a sentinel monitoring `master` as `name`, and waits until it knows the master's
    /// address and, if the master has replicas connected, until it has discovered them.
    pub fn start(master: &Server, name: &str) -> Sentinel {
        let sentinel = on_port(None, |port| Sentinel::try_start(master, name, port))
            .unwrap_or_else(|e| panic!("{e}"));
        let deadline = crate::wait::deadline(DISCOVER_TIMEOUT);
        while sentinel.try_master_addr(name).is_none() {
            assert!(
                Instant::now() < deadline,
                "sentinel on port {} does not know master {name} after {DISCOVER_TIMEOUT:?}\n\
                 --- log ---\n{}",
                sentinel.port,
                sentinel.log_tail()
            );
            thread::sleep(Duration::from_millis(50));
        }
        let replicas = master.replicas_connected();
        if replicas > 0 {
            sentinel.wait_for_replicas(replicas);
        }
        sentinel
    }

    /// One attempt on `port`.
    fn try_start(master: &Server, name: &str, port: u16) -> Result<Sentinel, Attempt> {
        let dir = fresh_dir("sentinel")?;
        let log = dir.join("sentinel.log");
        // The sentinel rewrites its config file (its id, the replicas and sentinels it found,
        // the current master), so the file is the guard's own, in its directory.
        let config = dir.join("sentinel.conf");
        let text = format!(
            "port {port}\n\
             bind 127.0.0.1\n\
             dir {dir}\n\
             logfile {log}\n\
             sentinel monitor {name} 127.0.0.1 {master} 1\n\
             sentinel down-after-milliseconds {name} 1000\n\
             sentinel failover-timeout {name} 5000\n\
             sentinel parallel-syncs {name} 1\n",
            dir = dir.display(),
            log = log.display(),
            master = master.port,
        );
        fs::write(&config, text).unwrap_or_else(|e| panic!("write {}: {e}", config.display()));
        let args = [config.display().to_string(), "--sentinel".to_string()];
        let process = Process::start(&args, port, dir.clone(), log, slowdown())?;
        Ok(Sentinel {
            process,
            name: name.to_string(),
            port,
            dir,
        })
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A RESP2 connection to the sentinel.
    pub fn conn(&self) -> Connection {
        hotkey_servers::process::connect(&self.url(), slowdown(), || self.log_tail())
    }

    pub fn log_tail(&self) -> String {
        self.process.log_tail()
    }

    /// The address the sentinel gives for master `name` (`SENTINEL get-master-addr-by-name`):
    /// after a failover, the promoted replica's.
    pub fn master_addr(&self, name: &str) -> (String, u16) {
        self.try_master_addr(name).unwrap_or_else(|| {
            panic!(
                "sentinel on port {} does not know master {name}\n--- log ---\n{}",
                self.port,
                self.log_tail()
            )
        })
    }

    fn try_master_addr(&self, name: &str) -> Option<(String, u16)> {
        let addr: Option<(String, u16)> = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(name)
            .query(&mut self.conn())
            .unwrap_or_else(|e| panic!("SENTINEL get-master-addr-by-name {name}: {e}"));
        addr
    }

    /// Waits until the sentinel lists at least `n` replicas of its master
    /// (`SENTINEL replicas <name>`).
    pub fn wait_for_replicas(&self, n: usize) {
        let deadline = crate::wait::deadline(DISCOVER_TIMEOUT);
        let mut conn = self.conn();
        loop {
            let replicas: Vec<Value> = redis::cmd("SENTINEL")
                .arg("replicas")
                .arg(&self.name)
                .query(&mut conn)
                .unwrap_or_else(|e| panic!("SENTINEL replicas {}: {e}", self.name));
            if replicas.len() >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "sentinel on port {} lists {} of {n} replicas of {} after {DISCOVER_TIMEOUT:?}\n\
                 --- log ---\n{}",
                self.port,
                replicas.len(),
                self.name,
                self.log_tail()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}
