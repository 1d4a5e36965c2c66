//! `Server`: one real `redis-server` with the module loaded, and the `Builder` that starts it.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use crate::Error;
use crate::module::{module_path, set_module_arg};
use crate::process::{Attempt, Process, deadline, fresh_dir, on_port, open, own_args};

/// How long a replica may take to report `master_link_status:up`.
const SYNC_TIMEOUT: Duration = Duration::from_secs(20);
/// How many times [`Server::info_replication`] asks again after its connection was dropped.
const DROPPED_RETRIES: u32 = 3;

/// How to start a server: module arguments, extra server arguments, replication, port, config
/// file.
pub struct Builder {
    module_args: Vec<(String, String)>,
    load_module: bool,
    module_at: Option<PathBuf>,
    extra_args: Vec<String>,
    replica_of: Option<u16>,
    port: Option<u16>,
    config: Option<PathBuf>,
    slowdown: f64,
}

impl Builder {
    /// Set (or override) one module argument (`<name> <value>` after the module path).
    pub fn module_arg(mut self, name: &str, value: &str) -> Self {
        set_module_arg(&mut self.module_args, name, value);
        self
    }

    /// Start the server without `--loadmodule` (for tests that `MODULE LOAD` themselves).
    pub fn without_module(mut self) -> Self {
        self.load_module = false;
        self
    }

    /// Extra server arguments, e.g. `["--databases", "4"]`.
    pub fn server_args(mut self, args: &[&str]) -> Self {
        self.extra_args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Make the server a replica of `master`; `start` then waits until the link is up.
    pub fn replica_of(mut self, master: &Server) -> Self {
        self.replica_of = Some(master.port);
        self
    }

    /// Start on `port` instead of a free one, e.g. to restart a killed server where its
    /// clients expect it. `start` fails if the port is taken.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Start with the config file `path` (the first argument, as `redis-server` wants it). The
    /// harness's own arguments follow it, so they win: port, bind, dir, logfile, save.
    pub fn config(mut self, path: impl AsRef<Path>) -> Self {
        self.config = Some(path.as_ref().to_path_buf());
        self
    }

    /// For a config file that loads the module itself by a relative path (the repository's
    /// `redis.conf.example`: `loadmodule ./target/release/libhotkey.so`): put the module (a
    /// symlink to `module_path()`) at `relative` inside the server's directory, and pass
    /// no `--loadmodule` (module arguments then come from the file). This works because the
    /// server has moved to its `--dir` by the time it loads modules.
    pub fn module_at(mut self, relative: impl AsRef<Path>) -> Self {
        self.module_at = Some(relative.as_ref().to_path_buf());
        self
    }

    /// Multiply every timeout of starting and stopping (10 s to answer PING, 20 s for a
    /// replica to sync, 5 s to exit) by `factor`, for a loaded or slow machine.
    pub fn slowdown(mut self, factor: f64) -> Self {
        self.slowdown = factor;
        self
    }

    /// Start the server and wait until it answers PING (and, for a replica, until it synced).
    pub fn start(self) -> Result<Server, Error> {
        // Found before any directory exists, so that a missing module leaks nothing.
        let module = if self.load_module || self.module_at.is_some() {
            Some(module_path()?)
        } else {
            None
        };
        let server = on_port(self.port, |port| self.try_start(port, module.as_deref()))?;
        if self.replica_of.is_some() {
            server.wait_for_master_link(self.slowdown)?;
        }
        Ok(server)
    }

    /// One attempt on `port`, with `module` (if any).
    fn try_start(&self, port: u16, module: Option<&Path>) -> Result<Server, Attempt> {
        let dir = fresh_dir("server")?;
        let log = dir.join("redis.log");

        let mut args: Vec<String> = Vec::new();
        if let Some(config) = &self.config {
            args.push(config.display().to_string());
        }
        args.extend(own_args(port, &dir, &log));
        match (module, &self.module_at) {
            (Some(module), Some(relative)) => link_module(module, &dir, relative)?,
            (Some(module), None) => {
                args.push("--loadmodule".into());
                args.push(module.display().to_string());
                for (name, value) in &self.module_args {
                    args.push(name.clone());
                    args.push(value.clone());
                }
            }
            (None, _) => {}
        }
        if let Some(master_port) = self.replica_of {
            args.extend([
                "--replicaof".into(),
                "127.0.0.1".into(),
                master_port.to_string(),
            ]);
        }
        args.extend(self.extra_args.iter().cloned());

        let process = Process::start(&args, port, dir.clone(), log, self.slowdown)?;
        Ok(Server { process, port, dir })
    }
}

/// A symlink to `module` at `dir/relative`. On failure, removes `dir` (no guard owns it yet).
fn link_module(module: &Path, dir: &Path, relative: &Path) -> Result<(), Error> {
    let link = dir.join(relative);
    let linked = match link.parent() {
        Some(parent) => fs::create_dir_all(parent),
        None => Ok(()),
    }
    .and_then(|()| std::os::unix::fs::symlink(module, &link));
    linked.map_err(|e| {
        let _ = fs::remove_dir_all(dir);
        Error::new(format!("link the module at {}: {e}", link.display()))
    })
}

/// One running server. Dropping it stops the process (SIGTERM, then SIGKILL) and removes its
/// directory, so a failure never leaks a server.
pub struct Server {
    process: Process,
    pub port: u16,
    pub dir: PathBuf,
}

impl Server {
    /// A builder with no module arguments (the module's defaults).
    pub fn builder() -> Builder {
        Builder {
            module_args: Vec::new(),
            load_module: true,
            module_at: None,
            extra_args: Vec::new(),
            replica_of: None,
            port: None,
            config: None,
            slowdown: 1.0,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The last 30 lines of the server's log.
    pub fn log_tail(&self) -> String {
        self.process.log_tail()
    }

    /// True while the process runs and answers PING.
    pub fn is_up(&mut self) -> bool {
        self.process.is_up()
    }

    /// SIGKILL the server now (a crash: no shutdown, no goodbye to clients) and wait for it to
    /// exit. Dropping the guard then only removes the directory. A no-op once it has exited.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// SIGTERM the server (a clean shutdown) and wait for it to exit; SIGKILL if it is still
    /// running after 5 s. The directory, and its log, stay until the guard is dropped.
    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// `INFO replication` as field → value. A server that changes role (`REPLICAOF`, a
    /// sentinel's or a cluster's failover) drops its clients: a connection dropped under the
    /// question is asked again on a new one, up to [`DROPPED_RETRIES`] times.
    pub fn info_replication(&self) -> Result<HashMap<String, String>, Error> {
        let mut dropped = 0;
        let info: String = loop {
            match open(&self.url(), self.process.slowdown())
                .and_then(|mut conn| redis::cmd("INFO").arg("replication").query(&mut conn))
            {
                Ok(info) => break info,
                Err(e) if e.is_connection_dropped() && dropped < DROPPED_RETRIES => dropped += 1,
                Err(e) => {
                    return Err(Error::new(format!(
                        "INFO replication on port {}: {e}",
                        self.port
                    )));
                }
            }
        };
        Ok(info
            .lines()
            .filter_map(|l| l.trim().split_once(':'))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    fn wait_for_master_link(&self, slowdown: f64) -> Result<(), Error> {
        let deadline = deadline(SYNC_TIMEOUT, slowdown);
        loop {
            let info = self.info_replication()?;
            if info.get("master_link_status").map(String::as_str) == Some("up") {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::new(format!(
                    "replica on port {} not in sync after {:?}:\n{info:?}\n--- log ---\n{}",
                    self.port,
                    SYNC_TIMEOUT.mul_f64(slowdown),
                    self.log_tail()
                )));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}
