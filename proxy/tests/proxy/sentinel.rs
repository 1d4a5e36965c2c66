//! A Sentinel failover through the proxy: writes fail only while there is no master to take
//! them, and go to the promoted replica from the moment Sentinel names it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hotkey_testkit::{Sentinel, check, wait_until};

use crate::common::{Proxy, WAIT, replicated};

/// Sentinel elects and promotes in about a second; a loaded machine may take much longer.
const FAILOVER: Duration = Duration::from_secs(60);

const NAME: &str = "hotkey-proxy-test";

/// One write's outcome: when it was answered, its number, and the reply.
type Outcome = (Instant, i64, Result<i64, String>);

/// `RPUSH log n` through the proxy for n = 1, 2, ..., one at a time, until stopped.
struct Writer {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<Outcome>>,
}

impl Writer {
    fn start(proxy: &Proxy) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let url = proxy.url();
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let client = redis::Client::open(url.as_str()).expect("proxy URL");
            let mut conn = None;
            let mut outcomes = Vec::new();
            let mut n = 0;
            while !stopping.load(Ordering::Relaxed) {
                n += 1;
                if conn.is_none() {
                    conn = client.get_connection_with_timeout(WAIT).ok();
                }
                let result = match conn.as_mut() {
                    Some(c) => {
                        let _ = c.set_read_timeout(Some(WAIT));
                        redis::cmd("RPUSH")
                            .arg("log")
                            .arg(n)
                            .query::<i64>(c)
                            .map_err(|e| e.to_string())
                    }
                    None => Err("cannot connect to the proxy".into()),
                };
                if result.is_err() {
                    conn = None;
                }
                outcomes.push((Instant::now(), n, result));
            }
            outcomes
        });
        Writer { stop, thread }
    }

    fn stop(self) -> Vec<Outcome> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("writer")
    }
}

/// How long after Sentinel names the new master the proxy may still have writes acknowledged
/// by the old one (it hears `+switch-master`, reconnects, and the writes in flight on the old
/// connections come back).
const HEAR: Duration = Duration::from_millis(500);

#[test]
fn writes_follow_a_sentinel_failover_at_its_switch() {
    let (master, replicas) = replicated(&[], 1);
    let replica = &replicas[0];
    let sentinel = Sentinel::start(&master, NAME);
    let proxy = Proxy::start_with(
        &["--sentinel", NAME, sentinel.url().as_str()],
        &["--upstream-timeout", "500ms", "--connect-timeout", "500ms"],
    );
    let writer = Writer::start(&proxy);
    wait_until("writes go through before the failover", WAIT, || {
        let len: i64 = redis::cmd("LLEN")
            .arg("log")
            .query(&mut master.conn())
            .expect("LLEN");
        check(len >= 20, || len)
    });
    // Sentinel learns of the replica from the master's INFO (every 10 s at first): until then
    // a failover has no replica to promote and is refused with NOGOODSLAVE.
    wait_until("the sentinel starts the failover", FAILOVER, || {
        let started: redis::RedisResult<()> = redis::cmd("SENTINEL")
            .arg("FAILOVER")
            .arg(NAME)
            .query(&mut sentinel.conn());
        check(started.is_ok(), || started)
    });
    let failover = Instant::now();
    wait_until("the sentinel promotes the replica", FAILOVER, || {
        let addr = sentinel.master_addr(NAME);
        check(addr.1 == replica.port, || addr)
    });
    let switched = Instant::now();
    wait_until("the replica is a master", WAIT, || {
        let role = replica.role();
        check(role == "master", || role)
    });
    wait_until("the old master follows the new one", FAILOVER, || {
        let role = master.role();
        check(role == "slave", || role)
    });
    let promoted = Instant::now();
    // Writes acknowledged from now on must be the new master's.
    let last_before: i64 = redis::cmd("LLEN")
        .arg("log")
        .query(&mut replica.conn())
        .expect("LLEN");
    wait_until(
        "writes through the proxy land on the new master",
        FAILOVER,
        || {
            let len: i64 = redis::cmd("LLEN")
                .arg("log")
                .query(&mut replica.conn())
                .expect("LLEN");
            check(len >= last_before + 20, || (last_before, len))
        },
    );
    let outcomes = writer.stop();

    let on_new_master: Vec<i64> = redis::cmd("LRANGE")
        .arg("log")
        .arg(0)
        .arg(-1)
        .query(&mut replica.conn())
        .expect("LRANGE");
    let kept: std::collections::HashSet<i64> = on_new_master.iter().copied().collect();
    // Until Sentinel names the new master, the old one is the master: writes it acknowledges
    // after the promotion are dropped when it becomes a replica (Redis's replication is
    // asynchronous: the same for any client). From the switch on the proxy writes to the new
    // master: no write acknowledged after it (and the time to hear of it) may be lost.
    let late: Vec<(i64, Duration)> = outcomes
        .iter()
        .filter(|(at, n, r)| r.is_ok() && !kept.contains(n) && *at > switched + HEAR)
        .map(|(at, n, _)| (*n, at.duration_since(switched)))
        .collect();
    assert!(
        late.is_empty(),
        "{} writes the proxy acknowledged after Sentinel switched are not on the new master \
         (first and last, with their time after the switch): {:?} .. {:?}",
        late.len(),
        late.first(),
        late.last()
    );
    // Errors only while the failover goes on: none before it, none once a write succeeded
    // on the new master.
    let recovered = outcomes
        .iter()
        .find(|(at, _, r)| *at > promoted && r.is_ok())
        .map(|(at, _, _)| *at)
        .expect("a write succeeded after the promotion");
    let errors: Vec<&Outcome> = outcomes.iter().filter(|(_, _, r)| r.is_err()).collect();
    for (at, n, result) in &errors {
        assert!(
            *at >= failover && *at < recovered,
            "write {n} failed outside the failover ({:?} after it began, {:?} after the \
             writes recovered): {result:?}",
            at.saturating_duration_since(failover),
            at.saturating_duration_since(recovered),
        );
    }
    let ok_after = outcomes
        .iter()
        .filter(|(at, _, r)| *at > recovered && r.is_ok())
        .count();
    assert!(
        ok_after >= 20,
        "{ok_after} writes succeeded after the first one on the new master"
    );
}
