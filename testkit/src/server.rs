//! `Server`: one real `redis-server` with the module loaded (a `hotkey_servers::Server` with the
//! harness's defaults and connections that panic with the server's log), and its `Builder`.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::path::Path;

use redis::Connection;

use crate::module::module_path;
use crate::wait::slowdown;

/// How to start a server: module arguments, extra server arguments, replication, port, config
/// file.
pub struct Builder {
    builder: hotkey_servers::Builder,
}

impl Builder {
    /// Set (or override) one module argument (`<name> <value>` after the module path).
    pub fn module_arg(self, name: &str, value: &str) -> Self {
        Builder {
            builder: self.builder.module_arg(name, value),
        }
    }

    /// Start the server without `--loadmodule` (for tests that `MODULE LOAD` themselves).
    pub fn without_module(self) -> Self {
        Builder {
            builder: self.builder.without_module(),
        }
    }

    /// Extra server arguments, e.g. `["--databases", "4"]`.
    pub fn server_args(self, args: &[&str]) -> Self {
        Builder {
            builder: self.builder.server_args(args),
        }
    }

    /// Make the server a replica of `master`; `start` then waits until the link is up.
    pub fn replica_of(self, master: &Server) -> Self {
        Builder {
            builder: self.builder.replica_of(master),
        }
    }

    /// Start on `port` instead of a free one, e.g. to restart a killed server where its
    /// clients expect it. `start` panics if the port is taken.
    pub fn port(self, port: u16) -> Self {
        Builder {
            builder: self.builder.port(port),
        }
    }

    /// Start with the config file `path` (see `hotkey_servers::Builder::config`).
    pub fn config(self, path: impl AsRef<Path>) -> Self {
        Builder {
            builder: self.builder.config(path),
        }
    }

    /// Put the module under test at `relative` inside the server's directory, for a config file
    /// that loads it by a relative path (see `hotkey_servers::Builder::module_at`).
    pub fn module_at(self, relative: impl AsRef<Path>) -> Self {
        Builder {
            builder: self.builder.module_at(relative),
        }
    }

    /// Start the server and wait until it answers PING (and, for a replica, until it synced);
    /// panics with the server's words and log when it does not.
    pub fn start(self) -> Server {
        let server = self.builder.start().unwrap_or_else(|e| panic!("{e}"));
        Server { server }
    }
}

/// One running server. Dropping it stops the process (SIGTERM, then SIGKILL) and removes its
/// directory, so a failing test never leaks a server. Everything `hotkey_servers::Server` has
/// (`port`, `dir`, `url`, `kill`, `stop`…) is reached through it.
pub struct Server {
    server: hotkey_servers::Server,
}

impl Deref for Server {
    type Target = hotkey_servers::Server;

    fn deref(&self) -> &hotkey_servers::Server {
        &self.server
    }
}

impl DerefMut for Server {
    fn deref_mut(&mut self) -> &mut hotkey_servers::Server {
        &mut self.server
    }
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

    /// A builder whose module arguments start as `sample-max 1`, its timeouts scaled by
    /// `HOTKEY_TEST_SLOWDOWN`.
    pub fn builder() -> Builder {
        Builder {
            builder: hotkey_servers::Server::builder()
                .module_arg("sample-max", "1")
                .slowdown(slowdown()),
        }
    }

    fn connect(&self, url: &str) -> Connection {
        hotkey_servers::process::connect(url, slowdown(), || self.log_tail())
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
    fn replication(&self) -> HashMap<String, String> {
        self.info_replication().unwrap_or_else(|e| panic!("{e}"))
    }

    /// `master` or `slave` (`INFO replication`'s `role`).
    pub fn role(&self) -> String {
        let info = self.replication();
        info.get("role")
            .cloned()
            .unwrap_or_else(|| panic!("INFO replication has no role: {info:?}"))
    }

    /// How many replicas are connected to this server (`INFO replication`'s
    /// `connected_slaves`).
    pub fn replicas_connected(&self) -> usize {
        let info = self.replication();
        info.get("connected_slaves")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("INFO replication has no connected_slaves: {info:?}"))
    }
}
