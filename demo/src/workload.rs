//! The seed story's traffic, through the router: game servers write scores to
//! `leaderboard:global` at a modest fixed rate, players read its top 10 (a trickle while the game
//! is calm, as fast as they can once the surge starts), and background traffic touches 100,000
//! cold `user:<n>` keys.
//!
//! The writers have their own [`Router`] (a game server), the readers and the background traffic
//! share another (the web tier): a router reads its own writes from the master for a while, so a
//! reader that also wrote the leaderboard would not show the offload.
//!
//! Through `hotkey-proxy` ([`Workload::start_proxied`]) every task has a plain redis-rs
//! connection of its own to the proxy instead, as applications that know nothing of the module
//! would; the proxy keeps read-your-writes per client connection, so the same holds there.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use hotkey_router::{Error, HotKeyView, Options, Router};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::aio::MultiplexedConnection;
use redis::{Cmd, FromRedisValue, Pipeline};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep, sleep_until};

/// The hot key of the story.
pub const LEADERBOARD: &str = "leaderboard:global";

/// On a cluster, the second hot key: the champion's profile, which every player opens too. The
/// demo picks the first `champion:<n>` that lives on another shard than the leaderboard.
pub const CHAMPION_PREFIX: &str = "champion:";

/// Error messages kept for printing between two [`Tally::take_errors`]; the rest are only
/// counted.
const KEPT_ERRORS: usize = 10;

/// After an error a task waits this long, so a server that is down is not hammered in a loop.
const ERROR_PAUSE: Duration = Duration::from_millis(10);

/// The shape of the traffic. `Settings::default()` is the demo's and the bench's.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `ZADD`s per second to the leaderboard, all writers together. Default: 100.
    pub writes_per_sec: f64,
    /// Writer tasks (game servers), sharing one router. Default: 4.
    pub writers: usize,
    /// Players in the leaderboard (`player:<n>`). Default: 10,000.
    pub players: u64,
    /// Reader tasks (the top 10, as fast as they can once the surge starts). Default: 16.
    pub readers: usize,
    /// Leaderboard reads per second, all readers together, before the surge: well under the
    /// module's `hot-threshold` (1000 ops/s), so the key is not hot yet. Default: 200.
    pub calm_reads_per_sec: f64,
    /// Background `GET`/`SET`s per second on cold keys. Default: 3,000.
    pub cold_per_sec: f64,
    /// Cold keys (`user:<n>`). Default: 100,000.
    pub cold_keys: u64,
    /// Whether the readers' router may serve hot reads from its local cache. Default: true.
    pub cache: bool,
    /// Leaderboard reads per player request. 0: each read is a single command. N > 0: each
    /// request is one pipeline (`redis::pipe()`) of N top-10 reads and, at a random place
    /// among them, one cold `GET`/`SET user:<n>` (80/20, on top of `cold_per_sec`); the calm
    /// rate stays `calm_reads_per_sec` reads. Default: 0.
    pub pipeline: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            writes_per_sec: 100.0,
            writers: 4,
            players: 10_000,
            readers: 16,
            calm_reads_per_sec: 200.0,
            cold_per_sec: 3_000.0,
            cold_keys: 100_000,
            cache: true,
            pipeline: 0,
        }
    }
}

/// Tasks that run the background traffic: enough to keep up with a few thousand commands a
/// second while each waits for its reply.
const COLD_TASKS: usize = 4;

/// What the workload did, counted as it goes.
#[derive(Debug, Default)]
pub struct Tally {
    /// Leaderboard reads answered.
    pub reads: AtomicU64,
    /// Leaderboard writes answered.
    pub writes: AtomicU64,
    /// Cold-key commands answered.
    pub cold: AtomicU64,
    /// Reads of the second hot key answered (on a cluster).
    pub champion: AtomicU64,
    /// Commands that failed, of any kind.
    pub errors: AtomicU64,
    /// The first few error messages since the last `take_errors`.
    messages: Mutex<Vec<String>>,
}

/// The counters of a [`Tally`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TallySnapshot {
    pub reads: u64,
    pub writes: u64,
    pub cold: u64,
    pub errors: u64,
}

impl Tally {
    pub fn snapshot(&self) -> TallySnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TallySnapshot {
            reads: get(&self.reads),
            writes: get(&self.writes),
            cold: get(&self.cold),
            errors: get(&self.errors),
        }
    }

    /// The error messages recorded since the last call (at most `KEPT_ERRORS`; `errors`
    /// counts them all).
    pub fn take_errors(&self) -> Vec<String> {
        std::mem::take(&mut *self.messages())
    }

    fn error(&self, command: &str, e: &str) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut messages = self.messages();
        if messages.len() < KEPT_ERRORS {
            messages.push(format!("{command}: {e}"));
        }
    }

    fn messages(&self) -> MutexGuard<'_, Vec<String>> {
        // A task that panicked while holding the lock left a Vec<String>, still usable.
        self.messages.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The second hot key's value (`--cluster`).
const CHAMPION_VALUE: &str = "{\"name\":\"the champion\",\"wins\":42}";

/// How one task of the workload sends its commands.
#[derive(Clone)]
enum Link {
    /// Through a router, which the task shares with the others of its side.
    Router(Router),
    /// Over a plain redis-rs connection of the task's own (to the proxy).
    Plain(MultiplexedConnection),
}

impl Link {
    /// `cmd`'s reply as a `T`, or the error as printed.
    async fn query<T: FromRedisValue>(&mut self, cmd: &Cmd) -> Result<T, String> {
        match self {
            Link::Router(router) => router
                .query(cmd)
                .await
                .map_err(|e| format!("{e} ({:?})", e.kind())),
            Link::Plain(conn) => cmd.query_async(conn).await.map_err(|e| e.to_string()),
        }
    }

    /// `pipeline`'s replies as a `T`, or the error as printed.
    async fn query_pipeline<T: FromRedisValue>(
        &mut self,
        pipeline: &Pipeline,
    ) -> Result<T, String> {
        match self {
            Link::Router(router) => router
                .query_pipeline(pipeline)
                .await
                .map_err(|e| format!("{e} ({:?})", e.kind())),
            Link::Plain(conn) => pipeline.query_async(conn).await.map_err(|e| e.to_string()),
        }
    }
}

/// Where each task's [`Link`] comes from.
enum Links {
    /// The readers' (and background traffic's) router, and the writers'.
    Routers { readers: Router, writers: Router },
    /// A new connection to the proxy at this URL, per task (boxed: a client is large, and the
    /// enum is kept once per workload).
    Proxy(Box<redis::Client>),
}

impl Links {
    async fn reader(&self) -> Result<Link, Error> {
        match self {
            Links::Routers { readers, .. } => Ok(Link::Router(readers.clone())),
            Links::Proxy(client) => Ok(Link::Plain(
                client.get_multiplexed_async_connection().await?,
            )),
        }
    }

    async fn writer(&self) -> Result<Link, Error> {
        match self {
            Links::Routers { writers, .. } => Ok(Link::Router(writers.clone())),
            Links::Proxy(_) => self.reader().await,
        }
    }
}

/// The running workload. Its tasks stop when it is dropped.
pub struct Workload {
    /// The readers' (and background traffic's) router. Through the proxy the players have
    /// plain connections and this router carries none of their commands: it only follows the
    /// module's hot set, as the proxy's own router does, so that the demo sees when the key
    /// turns hot and where the proxy now sends its reads.
    pub readers: Router,
    /// The writers' router; `None` through the proxy.
    pub writers: Option<Router>,
    pub tally: Arc<Tally>,
    surge: Arc<AtomicBool>,
    // Dropping a JoinSet aborts its tasks.
    _tasks: JoinSet<()>,
}

impl Workload {
    /// Connects the two routers to the master at `master_url` and starts the traffic, calm
    /// (call [`Workload::surge`] to let the readers loose).
    pub async fn start(master_url: &str, settings: &Settings) -> Result<Workload, Error> {
        let readers = Router::connect(master_url, reader_options(settings)).await?;
        let writers = Router::connect(master_url, Options::default()).await?;
        Workload::run(
            readers.clone(),
            Links::Routers { readers, writers },
            settings,
        )
        .await
    }

    /// Like [`Workload::start`], with every task on a plain connection of its own to the
    /// `hotkey-proxy` at `proxy_url`, in front of the master at `master_url` (which only the
    /// hot-set follower, [`Workload::readers`], reaches directly).
    pub async fn start_proxied(
        master_url: &str,
        proxy_url: &str,
        settings: &Settings,
    ) -> Result<Workload, Error> {
        let follower = Router::connect(master_url, reader_options(settings)).await?;
        let proxy = redis::Client::open(proxy_url)?;
        Workload::run(follower, Links::Proxy(Box::new(proxy)), settings).await
    }

    /// Like [`Workload::start`], with both routers on the Redis Cluster at `seeds` (the
    /// leaderboard on its slot's shard, the cold keys on every shard).
    /// `champion`, when given, is a second hot key on another shard: the players read it as
    /// well (a `GET`), so two shards offload at once, each to its own replica or the cache.
    pub async fn start_cluster(
        seeds: &[String],
        settings: &Settings,
        champion: Option<&str>,
    ) -> Result<Workload, Error> {
        let readers = Router::connect_cluster(seeds.to_vec(), reader_options(settings)).await?;
        let writers = Router::connect_cluster(seeds.to_vec(), Options::default()).await?;
        let Some(champion) = champion else {
            return Workload::run(
                readers.clone(),
                Links::Routers { readers, writers },
                settings,
            )
            .await;
        };
        let mut set = redis::cmd("SET");
        set.arg(champion).arg(CHAMPION_VALUE);
        writers.query::<()>(&set).await?;
        let mut workload = Workload::run(
            readers.clone(),
            Links::Routers { readers, writers },
            settings,
        )
        .await?;
        let calm_each = settings.calm_reads_per_sec / settings.readers.max(1) as f64;
        for _ in 0..settings.readers {
            workload._tasks.spawn(read_champion(
                Link::Router(workload.readers.clone()),
                workload.tally.clone(),
                workload.surge.clone(),
                Pacer::new(calm_each),
                champion.to_owned(),
            ));
        }
        Ok(workload)
    }

    /// Like [`Workload::start_cluster`] with a second hot key, with every task on a plain
    /// connection of its own to the `hotkey-proxy` at `proxy_url` in front of the cluster
    /// (which only the hot-set follower, [`Workload::readers`], reaches directly).
    pub async fn start_cluster_proxied(
        seeds: &[String],
        proxy_url: &str,
        settings: &Settings,
        champion: &str,
    ) -> Result<Workload, Error> {
        let follower = Router::connect_cluster(seeds.to_vec(), reader_options(settings)).await?;
        let proxy = redis::Client::open(proxy_url)?;
        let mut conn = proxy.get_multiplexed_async_connection().await?;
        redis::cmd("SET")
            .arg(champion)
            .arg(CHAMPION_VALUE)
            .query_async::<()>(&mut conn)
            .await?;
        let mut workload =
            Workload::run(follower, Links::Proxy(Box::new(proxy.clone())), settings).await?;
        let calm_each = settings.calm_reads_per_sec / settings.readers.max(1) as f64;
        for _ in 0..settings.readers {
            workload._tasks.spawn(read_champion(
                Link::Plain(proxy.get_multiplexed_async_connection().await?),
                workload.tally.clone(),
                workload.surge.clone(),
                Pacer::new(calm_each),
                champion.to_owned(),
            ));
        }
        Ok(workload)
    }

    /// Starts the traffic, each task on its link from `links`; `readers` is the router the
    /// demo asks about the hot set.
    async fn run(readers: Router, links: Links, settings: &Settings) -> Result<Workload, Error> {
        let tally = Arc::new(Tally::default());
        let surge = Arc::new(AtomicBool::new(false));
        let mut tasks = JoinSet::new();

        if settings.writes_per_sec > 0.0 && settings.writers > 0 {
            let each = settings.writes_per_sec / settings.writers as f64;
            for _ in 0..settings.writers {
                tasks.spawn(write_scores(
                    links.writer().await?,
                    tally.clone(),
                    Pacer::new(each),
                    settings.players.max(1),
                ));
            }
        }
        let calm_each = settings.calm_reads_per_sec / settings.readers.max(1) as f64;
        for _ in 0..settings.readers {
            let link = links.reader().await?;
            if settings.pipeline > 0 {
                tasks.spawn(read_top_pipelined(
                    link,
                    tally.clone(),
                    surge.clone(),
                    Pacer::new(calm_each / settings.pipeline as f64),
                    settings.pipeline,
                    settings.cold_keys.max(1),
                ));
            } else {
                tasks.spawn(read_top(
                    link,
                    tally.clone(),
                    surge.clone(),
                    Pacer::new(calm_each),
                ));
            }
        }
        if settings.cold_per_sec > 0.0 {
            let each = settings.cold_per_sec / COLD_TASKS as f64;
            for _ in 0..COLD_TASKS {
                tasks.spawn(cold_traffic(
                    links.reader().await?,
                    tally.clone(),
                    Pacer::new(each),
                    settings.cold_keys.max(1),
                ));
            }
        }
        let writers = match links {
            Links::Routers { writers, .. } => Some(writers),
            Links::Proxy(_) => None,
        };
        Ok(Workload {
            readers,
            writers,
            tally,
            surge,
            _tasks: tasks,
        })
    }

    /// From now on the readers read as fast as they can.
    pub fn surge(&self) {
        self.surge.store(true, Ordering::Relaxed);
    }

    /// The leaderboard's entry in the readers' router's hot set, once the router heard it is
    /// hot.
    pub fn leaderboard_hot(&self) -> Option<HotKeyView> {
        self.readers
            .hot_keys()
            .into_iter()
            .find(|h| h.key == LEADERBOARD.as_bytes())
    }

    /// Waits until the readers' router has the leaderboard in its hot set, at most `timeout`;
    /// when that happened, or None.
    pub async fn wait_until_hot(&self, timeout: Duration) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.leaderboard_hot().is_some() {
                return Some(Instant::now());
            }
            sleep(Duration::from_millis(5)).await;
        }
        None
    }
}

/// The players' router's options: the cache as `settings` say.
fn reader_options(settings: &Settings) -> Options {
    Options::default().cache(settings.cache)
}

/// `ZREVRANGE leaderboard:global 0 9 WITHSCORES`: the top 10 a player looks at.
pub fn top_ten() -> Cmd {
    let mut cmd = redis::cmd("ZREVRANGE");
    cmd.arg(LEADERBOARD).arg(0).arg(9).arg("WITHSCORES");
    cmd
}

/// A game server: `ZADD leaderboard:global <score> player:<n>` at the pacer's rate.
async fn write_scores(mut link: Link, tally: Arc<Tally>, mut pacer: Pacer, players: u64) {
    let mut rng = StdRng::from_os_rng();
    loop {
        pacer.wait().await;
        let score: u32 = rng.random_range(0..1_000_000);
        let player = format!("player:{}", rng.random_range(0..players));
        let mut cmd = redis::cmd("ZADD");
        cmd.arg(LEADERBOARD).arg(score).arg(player);
        match link.query::<i64>(&cmd).await {
            Ok(_) => {
                tally.writes.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                tally.error("ZADD", &e);
                sleep(ERROR_PAUSE).await;
            }
        }
    }
}

/// A player: reads the top 10 at the pacer's rate until the surge, then as fast as it can.
async fn read_top(mut link: Link, tally: Arc<Tally>, surge: Arc<AtomicBool>, mut pacer: Pacer) {
    let cmd = top_ten();
    loop {
        if !surge.load(Ordering::Relaxed) {
            pacer.wait().await;
        }
        match link.query::<Vec<(String, f64)>>(&cmd).await {
            Ok(_) => {
                tally.reads.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                tally.error("ZREVRANGE", &e);
                sleep(ERROR_PAUSE).await;
            }
        }
    }
}

/// A player whose every request is a pipeline: `reads` top-10 reads with one cold
/// `GET`/`SET user:<n>` at a random place among them (its reply ignored), paced like
/// [`read_top`] (the pacer counts pipelines) until the surge, then as fast as it can.
async fn read_top_pipelined(
    mut link: Link,
    tally: Arc<Tally>,
    surge: Arc<AtomicBool>,
    mut pacer: Pacer,
    reads: usize,
    keys: u64,
) {
    let mut rng = StdRng::from_os_rng();
    loop {
        if !surge.load(Ordering::Relaxed) {
            pacer.wait().await;
        }
        let cold_at = rng.random_range(0..=reads);
        let key = format!("user:{}", rng.random_range(0..keys));
        let mut pipeline = redis::pipe();
        for i in 0..=reads {
            if i != cold_at {
                pipeline.add_command(top_ten());
            } else if rng.random_bool(0.2) {
                pipeline.cmd("SET").arg(&key).arg("profile").ignore();
            } else {
                pipeline.cmd("GET").arg(&key).ignore();
            }
        }
        let answered = link
            .query_pipeline::<Vec<Vec<(String, f64)>>>(&pipeline)
            .await
            .and_then(|tops| match tops.len() {
                n if n == reads => Ok(()),
                n => Err(format!("{n} replies for {reads} reads")),
            });
        match answered {
            Ok(()) => {
                tally.reads.fetch_add(reads as u64, Ordering::Relaxed);
                tally.cold.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                tally.error("pipeline", &e);
                sleep(ERROR_PAUSE).await;
            }
        }
    }
}

/// A player on a cluster: reads the champion's profile like the top 10, calm then as fast as
/// it can.
async fn read_champion(
    mut link: Link,
    tally: Arc<Tally>,
    surge: Arc<AtomicBool>,
    mut pacer: Pacer,
    key: String,
) {
    let mut cmd = redis::cmd("GET");
    cmd.arg(&key);
    loop {
        if !surge.load(Ordering::Relaxed) {
            pacer.wait().await;
        }
        match link.query::<Option<String>>(&cmd).await {
            Ok(_) => {
                tally.champion.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                tally.error("GET", &e);
                sleep(ERROR_PAUSE).await;
            }
        }
    }
}

/// Background traffic: `GET user:<n>` (80 %) and `SET user:<n>` (20 %) at the pacer's rate.
async fn cold_traffic(mut link: Link, tally: Arc<Tally>, mut pacer: Pacer, keys: u64) {
    let mut rng = StdRng::from_os_rng();
    loop {
        pacer.wait().await;
        let key = format!("user:{}", rng.random_range(0..keys));
        let (name, result) = if rng.random_bool(0.2) {
            let mut cmd = redis::cmd("SET");
            cmd.arg(&key).arg("profile");
            ("SET", link.query::<()>(&cmd).await)
        } else {
            let mut cmd = redis::cmd("GET");
            cmd.arg(&key);
            ("GET", link.query::<Option<String>>(&cmd).await.map(drop))
        };
        match result {
            Ok(()) => {
                tally.cold.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                tally.error(name, &e);
                sleep(ERROR_PAUSE).await;
            }
        }
    }
}

/// Paces a task at `per_sec` on average: each call waits for its slot, counted from the start
/// (so a late wake-up is made up by the next calls instead of lowering the rate).
#[derive(Debug)]
struct Pacer {
    start: Instant,
    per_sec: f64,
    done: u64,
}

impl Pacer {
    fn new(per_sec: f64) -> Pacer {
        Pacer {
            start: Instant::now(),
            per_sec,
            done: 0,
        }
    }

    async fn wait(&mut self) {
        if self.per_sec <= 0.0 {
            // A rate of zero: never proceed (until the surge lifts the pacing, for readers).
            sleep(Duration::from_millis(10)).await;
            return;
        }
        let due = self.start + Duration::from_secs_f64(self.done as f64 / self.per_sec);
        let now = Instant::now();
        if due > now {
            sleep_until(due).await;
        } else if now - due > Duration::from_secs(1) {
            // Far behind (the machine stalled): start over rather than burst to catch up.
            self.start = now;
            self.done = 0;
        }
        self.done += 1;
    }
}
