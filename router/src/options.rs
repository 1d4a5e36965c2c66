//! How the router behaves: every knob with its default and why.

use std::time::Duration;

/// The router's settings. `Options::default()` suits most applications; change fields with the
/// method of the same name (new fields will come, so there is no struct literal to break):
///
/// ```
/// use std::time::Duration;
/// use hotkey_router::Options;
///
/// let options = Options::default().cache(false).read_your_writes(Duration::from_secs(5));
/// assert!(!options.cache);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// Serve hot reads from a local cache when the module advises it (`cache_ttl_ms` > 0).
    /// Default: true.
    pub cache: bool,
    /// Upper bound of the cache, in bytes of keys and values (roughly). Default: 64 MiB.
    pub cache_capacity_bytes: u64,
    /// After this router writes a key, its reads of that key go to the master for this long,
    /// so it reads its own writes even from a lagging replica. Default: 2 s (the module's
    /// default `max-replica-lag-ms`).
    pub read_your_writes: Duration,
    /// How many recently written keys the read-your-writes window remembers. Default: 100,000.
    pub read_your_writes_keys: u64,
    /// How often reads served off the master are reported (`HOTKEY.REPORT`). Default: 1 s.
    pub report_interval: Duration,
    /// With no message on the module's channel for this long (it sends a heartbeat every
    /// `hotkey.heartbeat-ms`, default 1 s), the router re-reads the hot set. Default: 3 s.
    pub heartbeat_timeout: Duration,
    /// A replica that takes longer than this to answer is taken out of rotation (the read then
    /// goes to another replica or the master). Default: 500 ms.
    pub replica_timeout: Duration,
    /// How often a replica taken out of rotation is tried again. Default: 1 s.
    pub probe_interval: Duration,
    /// How long a command on the master may take before it fails with a timeout. Default: none
    /// (blocking commands such as `BLPOP` wait as long as they ask to).
    pub master_timeout: Option<Duration>,
    /// Time allowed to open a connection. Default: 2 s.
    pub connect_timeout: Duration,
    /// Longest wait between two attempts to reconnect to the master. Default: 1 s.
    pub reconnect_max_delay: Duration,
    /// On a cluster: how often the layout (`CLUSTER SHARDS`) is read again when nothing asked
    /// for it (a `MOVED`, a lost link and a failover make it read at once). Default: 10 s.
    pub topology_refresh: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cache: true,
            cache_capacity_bytes: 64 << 20,
            read_your_writes: Duration::from_secs(2),
            read_your_writes_keys: 100_000,
            report_interval: Duration::from_secs(1),
            heartbeat_timeout: Duration::from_secs(3),
            replica_timeout: Duration::from_millis(500),
            probe_interval: Duration::from_secs(1),
            master_timeout: None,
            connect_timeout: Duration::from_secs(2),
            reconnect_max_delay: Duration::from_secs(1),
            topology_refresh: Duration::from_secs(10),
        }
    }
}

impl Options {
    /// Sets whether hot reads may be served from the local cache.
    pub fn cache(mut self, cache: bool) -> Options {
        self.cache = cache;
        self
    }

    /// Sets the local cache's upper bound, in bytes.
    pub fn cache_capacity_bytes(mut self, cache_capacity_bytes: u64) -> Options {
        self.cache_capacity_bytes = cache_capacity_bytes;
        self
    }

    /// Sets how long this router's reads of a key it wrote go to the master.
    pub fn read_your_writes(mut self, read_your_writes: Duration) -> Options {
        self.read_your_writes = read_your_writes;
        self
    }

    /// Sets how many recently written keys the read-your-writes window remembers.
    pub fn read_your_writes_keys(mut self, read_your_writes_keys: u64) -> Options {
        self.read_your_writes_keys = read_your_writes_keys;
        self
    }

    /// Sets how often reads served off the master are reported.
    pub fn report_interval(mut self, report_interval: Duration) -> Options {
        self.report_interval = report_interval;
        self
    }

    /// Sets how long without a message before the hot set is read again.
    pub fn heartbeat_timeout(mut self, heartbeat_timeout: Duration) -> Options {
        self.heartbeat_timeout = heartbeat_timeout;
        self
    }

    /// Sets how long a replica may take to answer before it leaves the rotation.
    pub fn replica_timeout(mut self, replica_timeout: Duration) -> Options {
        self.replica_timeout = replica_timeout;
        self
    }

    /// Sets how often a replica out of the rotation is tried again.
    pub fn probe_interval(mut self, probe_interval: Duration) -> Options {
        self.probe_interval = probe_interval;
        self
    }

    /// Sets how long a command on the master may take (None: no limit).
    pub fn master_timeout(mut self, master_timeout: Option<Duration>) -> Options {
        self.master_timeout = master_timeout;
        self
    }

    /// Sets the time allowed to open a connection.
    pub fn connect_timeout(mut self, connect_timeout: Duration) -> Options {
        self.connect_timeout = connect_timeout;
        self
    }

    /// Sets the longest wait between two attempts to reconnect to the master.
    pub fn reconnect_max_delay(mut self, reconnect_max_delay: Duration) -> Options {
        self.reconnect_max_delay = reconnect_max_delay;
        self
    }

    /// Sets how often a cluster's layout is read again unasked.
    pub fn topology_refresh(mut self, topology_refresh: Duration) -> Options {
        self.topology_refresh = topology_refresh;
        self
    }
}
