//! `Server`: one real `redis-server` with the module loaded, and the `Builder` that starts it.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use redis::Connection;

use crate::module::module_path;
use crate::process::{Process, fresh_dir, on_port};

/// How long a replica may take to report `master_link_status:up`.
const SYNC_TIMEOUT: Duration = Duration::from_secs(20);

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
}

impl Builder {
    /// Set (or override) one module argument (`<name> <value>` after the module path).
    pub fn module_arg(mut self, name: &str, value: &str) -> Self {
        match self.module_args.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value.to_string(),
            None => self.module_args.push((name.to_string(), value.to_string())),
        }
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
    /// clients expect it. `start` panics if the port is taken.
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
    /// `redis.conf.example`: `loadmodule ./target/release/libhotkey.so`): put the module under
    /// test (a symlink to `module_path()`) at `relative` inside the server's directory, and pass
    /// no `--loadmodule` (module arguments then come from the file). This works because the
    /// server has moved to its `--dir` by the time it loads modules.
    pub fn module_at(mut self, relative: impl AsRef<Path>) -> Self {
        self.module_at = Some(relative.as_ref().to_path_buf());
        self
    }

    /// Start the server and wait until it answers PING (and, for a replica, until it synced).
    pub fn start(self) -> Server {
        // Found before any directory exists, so that a missing module leaks nothing.
        let module = (self.load_module || self.module_at.is_some()).then(module_path);
        let server = on_port(self.port, |port| self.try_start(port, module.as_deref()));
        if self.replica_of.is_some() {
            server.wait_for_master_link();
        }
        server
    }

    /// One attempt on `port`, with `module` (the module under test, if any). `Err` only when
    /// the port was taken.
    fn try_start(&self, port: u16, module: Option<&Path>) -> Result<Server, String> {
        let dir = fresh_dir("test");
        let log = dir.join("redis.log");

        let mut args: Vec<String> = Vec::new();
        if let Some(config) = &self.config {
            args.push(config.display().to_string());
        }
        args.extend([
            "--save".into(),
            "".into(),
            "--appendonly".into(),
            "no".into(),
            "--enable-module-command".into(),
            "yes".into(),
            "--enable-debug-command".into(),
            "yes".into(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port.to_string(),
            "--dir".into(),
            dir.display().to_string(),
            "--logfile".into(),
            log.display().to_string(),
        ]);
        match (module, &self.module_at) {
            (Some(module), Some(relative)) => link_module(module, &dir, relative),
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

        let process = Process::start(&args, port, dir.clone(), log)?;
        Ok(Server { process, port, dir })
    }
}

/// A symlink to `module` at `dir/relative`. On failure, removes `dir` (no guard owns it yet).
fn link_module(module: &Path, dir: &Path, relative: &Path) {
    let link = dir.join(relative);
    let linked = match link.parent() {
        Some(parent) => fs::create_dir_all(parent),
        None => Ok(()),
    }
    .and_then(|()| std::os::unix::fs::symlink(module, &link));
    if let Err(e) = linked {
        let _ = fs::remove_dir_all(dir);
        panic!("link the module at {}: {e}", link.display());
    }
}

/// One running server. Dropping it stops the process (SIGTERM, then SIGKILL) and removes its
/// directory, so a failing test never leaks a server.
pub struct Server {
    process: Process,
    pub port: u16,
    pub dir: PathBuf,
}

impl Server {
    /// A server with the module loaded with `sample-max 1` (every command counted).
    pub fn start() -> Server {
        Server::builder().start()
    }

    /// A server whose rates do not decay within a test (half-life of ten minutes), so that
    /// accesses made at different moments compare exactly.
    pub fn steady() -> Server {
        Server::builder()
            .module_arg("half-life-ms", "600000")
            .start()
    }

    /// A builder whose module arguments start as `sample-max 1`.
    pub fn builder() -> Builder {
        Builder {
            module_args: vec![("sample-max".into(), "1".into())],
            load_module: true,
            module_at: None,
            extra_args: Vec::new(),
            replica_of: None,
            port: None,
            config: None,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    fn connect(&self, url: &str) -> Connection {
        crate::process::connect(url, || self.log_tail())
    }

    /// A RESP2 connection as the default user, db 0.
    pub fn conn(&self) -> Connection {
        self.connect(&self.url())
    }

    /// A RESP3 connection as the default user, db 0.
    pub fn conn_resp3(&self) -> Connection {
        self.connect(&format!("{}?protocol=resp3", self.url()))
    }

    /// A RESP2 connection with database `db` selected.
    pub fn conn_db(&self, db: i64) -> Connection {
        self.connect(&format!("redis://127.0.0.1:{}/{db}", self.port))
    }

    /// A RESP2 connection authenticated as `user`.
    pub fn conn_as(&self, user: &str, password: &str) -> Connection {
        self.connect(&format!(
            "redis://{user}:{password}@127.0.0.1:{}/",
            self.port
        ))
    }

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

    /// `MODULE UNLOAD hotkey`, then `MODULE LOAD` of the module under test with `args`
    /// (`name value` pairs): a new run of the module, with a new run id, on the same server.
    /// Panics with the server's words when either fails.
    pub fn reload_module(&self, args: &[&str]) {
        let mut conn = self.conn();
        let () = redis::cmd("MODULE")
            .arg("UNLOAD")
            .arg("hotkey")
            .query(&mut conn)
            .unwrap_or_else(|e| panic!("MODULE UNLOAD hotkey: {e}\n{}", self.log_tail()));
        let () = redis::cmd("MODULE")
            .arg("LOAD")
            .arg(module_path().display().to_string())
            .arg(args)
            .query(&mut conn)
            .unwrap_or_else(|e| {
                panic!("MODULE LOAD after MODULE UNLOAD: {e}\n{}", self.log_tail())
            });
    }

    /// `INFO replication` as field → value.
    fn info_replication(&self) -> HashMap<String, String> {
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query(&mut self.conn())
            .expect("INFO replication");
        info.lines()
            .filter_map(|l| l.trim().split_once(':'))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// `master` or `slave` (`INFO replication`'s `role`).
    pub fn role(&self) -> String {
        let info = self.info_replication();
        info.get("role")
            .cloned()
            .unwrap_or_else(|| panic!("INFO replication has no role: {info:?}"))
    }

    /// How many replicas are connected to this server (`INFO replication`'s
    /// `connected_slaves`).
    pub fn replicas_connected(&self) -> usize {
        let info = self.info_replication();
        info.get("connected_slaves")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("INFO replication has no connected_slaves: {info:?}"))
    }

    fn wait_for_master_link(&self) {
        let deadline = crate::wait::deadline(SYNC_TIMEOUT);
        loop {
            let info = self.info_replication();
            if info.get("master_link_status").map(String::as_str) == Some("up") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "replica on port {} not in sync after {SYNC_TIMEOUT:?}:\n{info:?}\n--- log ---\n{}",
                self.port,
                self.log_tail()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}
