//! One node: its address and credentials (from URLs and redis-cli's flags), connecting to it,
//! and the words a user sees when that fails.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args};
use redis::{
    Connection, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisError, RedisResult,
    TlsCertificates,
};

/// How long to wait for a node to accept a connection: a down node must not freeze the view.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long to wait for a reply.
const REPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// A node that refused the TCP connection.
pub const CONNECTION_REFUSED: &str = "connection refused";
/// A node that did not answer in time.
pub const TIMED_OUT: &str = "timed out";
/// A node without the module (followed by the server's words in parentheses).
pub const MODULE_NOT_LOADED: &str = "the hotkey module is not loaded";
/// AUTH refused: the redis crate keeps only its own words for WRONGPASS.
pub const AUTH_FAILED: &str =
    "authentication failed: wrong user name or password, or the user is disabled (WRONGPASS)";
/// `--cacert` that cannot be read.
pub const BAD_CACERT: &str = "cannot read the CA certificate file";
/// A node argument that is neither a URL nor `host:port`.
pub const BAD_ADDRESS: &str = "not a redis:// URL or host:port";

/// Where to connect, as redis-cli takes it: URLs, or `-h`/`-p`, with `-a`/`--user`.
#[derive(Args, Clone)]
pub struct ConnectArgs {
    /// Nodes (or cluster seeds, or sentinels): redis://[user:password@]host:port[/db] or
    /// host:port. Default: -h and -p.
    #[arg(value_name = "URL")]
    pub urls: Vec<String>,
    /// Server hostname.
    #[arg(short = 'h', long = "host", default_value = "127.0.0.1")]
    pub host: String,
    /// Server port.
    #[arg(short = 'p', long = "port", default_value_t = 6379)]
    pub port: u16,
    /// Password (AUTH), for every node; redis-cli's -a and --pass.
    #[arg(short = 'a', long = "pass", value_name = "PASSWORD")]
    pub pass: Option<String>,
    /// ACL user name, for every node.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Connect with TLS (as a `rediss://` URL does).
    #[arg(long)]
    pub tls: bool,
    /// With TLS: trust the certificates in this PEM file instead of the system's.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// With TLS: do not verify the server's certificate and name (redis-cli's --insecure).
    #[arg(long)]
    pub insecure: bool,
    /// Print help.
    #[arg(long, action = ArgAction::Help)]
    help: Option<bool>,
}

/// A node to connect to: its name for messages (`host:port`) and how to reach it.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub addr: String,
    info: ConnectionInfo,
    /// With TLS and `--cacert`: the CA certificates (PEM) to trust.
    root_cert: Option<Vec<u8>>,
}

impl Endpoint {
    /// From a URL or `host:port`, with the flags' credentials over the URL's.
    pub fn parse(text: &str, args: &ConnectArgs) -> Result<Endpoint, String> {
        let info = if text.contains("://") {
            text.into_connection_info()
                .map_err(|e| format!("{text}: {BAD_ADDRESS} ({e})"))?
        } else {
            let (host, port) = text
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
                .filter(|(h, _)| !h.is_empty())
                .ok_or_else(|| format!("{text}: {BAD_ADDRESS}"))?;
            ConnectionAddr::Tcp(host.to_string(), port)
                .into_connection_info()
                .map_err(|e| format!("{text}: {e}"))?
        };
        let info = with_tls(info, args.tls, args.insecure);
        let root_cert = match (&args.cacert, info.addr()) {
            (Some(path), ConnectionAddr::TcpTls { .. }) => Some(
                std::fs::read(path)
                    .map_err(|e| format!("{}: {BAD_CACERT} ({e})", path.display()))?,
            ),
            _ => None,
        };
        let mut endpoint = Endpoint::from_info(info);
        endpoint.root_cert = root_cert;
        Ok(endpoint.with_credentials(args.user.as_deref(), args.pass.as_deref()))
    }

    /// `-h`/`-p` with the flags' credentials.
    pub fn from_flags(args: &ConnectArgs) -> Result<Endpoint, String> {
        Endpoint::parse(&format!("{}:{}", args.host, args.port), args)
    }

    fn from_info(info: ConnectionInfo) -> Endpoint {
        let addr = match info.addr() {
            ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => {
                format!("{host}:{port}")
            }
            other => other.to_string(),
        };
        Endpoint {
            addr,
            info,
            root_cert: None,
        }
    }

    fn with_credentials(mut self, user: Option<&str>, pass: Option<&str>) -> Endpoint {
        let mut settings = self.info.redis_settings().clone();
        if let Some(user) = user {
            settings = settings.set_username(user);
        }
        if let Some(pass) = pass {
            settings = settings.set_password(pass);
        }
        self.info = self.info.set_redis_settings(settings);
        self
    }

    /// The host this endpoint connects to (empty for a Unix socket).
    pub fn host(&self) -> &str {
        match self.info.addr() {
            ConnectionAddr::Tcp(host, _) | ConnectionAddr::TcpTls { host, .. } => host,
            _ => "",
        }
    }

    /// Another node with this one's credentials and database (a discovered node).
    pub fn at(&self, host: &str, port: u16) -> Endpoint {
        let addr = match self.info.addr() {
            ConnectionAddr::TcpTls { insecure, .. } => ConnectionAddr::TcpTls {
                host: host.to_string(),
                port,
                insecure: *insecure,
                tls_params: None,
            },
            _ => ConnectionAddr::Tcp(host.to_string(), port),
        };
        let mut endpoint = Endpoint::from_info(self.info.clone().set_addr(addr));
        endpoint.root_cert = self.root_cert.clone();
        endpoint
    }

    /// Another node with the flags' credentials only (a node a sentinel names: the sentinel's
    /// own credentials, from its URL, are not the data nodes').
    pub fn named_by_sentinel(
        host: &str,
        port: u16,
        args: &ConnectArgs,
    ) -> Result<Endpoint, String> {
        Endpoint::parse(&format!("{host}:{port}"), args)
    }

    /// A connection with timeouts; the error names this node and the problem.
    pub fn connect(&self) -> Result<Connection, String> {
        let client = match &self.root_cert {
            Some(pem) => redis::Client::build_with_tls(
                self.info.clone(),
                TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.clone()),
                },
            ),
            None => redis::Client::open(self.info.clone()),
        };
        let conn = client
            .and_then(|c| c.get_connection_with_timeout(CONNECT_TIMEOUT))
            .map_err(|e| self.problem(&e))?;
        conn.set_read_timeout(Some(REPLY_TIMEOUT))
            .and_then(|()| conn.set_write_timeout(Some(REPLY_TIMEOUT)))
            .map_err(|e| self.problem(&e))?;
        Ok(conn)
    }

    /// `<addr>: <problem>` for an error of this node.
    pub fn problem(&self, e: &RedisError) -> String {
        format!("{}: {}", self.addr, describe(e))
    }
}

/// `info` over TLS when `tls` (a `host:port` or `redis://` with `--tls`), and without
/// verification when `insecure`; a `rediss://` URL is TLS already.
fn with_tls(info: ConnectionInfo, tls: bool, insecure: bool) -> ConnectionInfo {
    let addr = match info.addr().clone() {
        ConnectionAddr::Tcp(host, port) if tls => ConnectionAddr::TcpTls {
            host,
            port,
            insecure,
            tls_params: None,
        },
        ConnectionAddr::TcpTls {
            host,
            port,
            insecure: was,
            tls_params,
        } => ConnectionAddr::TcpTls {
            host,
            port,
            insecure: was || insecure,
            tls_params,
        },
        other => other,
    };
    info.set_addr(addr)
}

/// What went wrong, in the words of the book: refused, timed out, no module, or the server's
/// own error (`NOPERM …`, `WRONGPASS …`).
pub fn describe(e: &RedisError) -> String {
    if e.is_connection_refusal() {
        return CONNECTION_REFUSED.to_string();
    }
    if e.is_timeout() {
        return TIMED_OUT.to_string();
    }
    if e.kind() == redis::ErrorKind::AuthenticationFailed {
        return AUTH_FAILED.to_string();
    }
    let text = server_text(e);
    if text.starts_with("ERR unknown command") && text.to_ascii_lowercase().contains("'hotkey.") {
        return format!("{MODULE_NOT_LOADED} ({text})");
    }
    text
}

/// The server's error as redis-cli prints it (`NOPERM this user has no permissions …`).
pub fn server_text(e: &RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        (Some(code), None) => code.to_string(),
        _ => e.to_string(),
    }
}

/// Runs `cmd` on `conn`, naming `endpoint` on failure.
pub fn query<T: redis::FromRedisValue>(
    endpoint: &Endpoint,
    conn: &mut Connection,
    cmd: &redis::Cmd,
) -> Result<T, String> {
    let reply: RedisResult<T> = cmd.query(conn);
    reply.map_err(|e| endpoint.problem(&e))
}
