//! A Sentinel failover under a write load: the writes fail (retryably) while there is no
//! master, then succeed against the promoted replica, and the router follows its hot set.

use std::time::{Duration, Instant};

use hotkey_router::redis::sentinel::SentinelNodeConnectionInfo;
use hotkey_router::{ErrorKind, Router, Target};
use hotkey_testkit::Sentinel;

use crate::common::{
    Outcome, WAIT, Writer, get, pin, quick_reconnect, replicated, set_direct, wait_for_route,
    wait_until,
};

/// Sentinel marks the master down after 1 s, then elects and promotes: seconds, but a loaded
/// machine may take much longer.
const FAILOVER: Duration = Duration::from_secs(60);

const NAME: &str = "hotkey-test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_follows_a_sentinel_failover() {
    let args = [("cache-ttl-ms", "60000")];
    let (mut master, replicas) = replicated(&args, 1);
    let replica = &replicas[0];
    let sentinel = Sentinel::start(&master, NAME);
    set_direct(&mut master.conn(), b"hot", b"v");
    let router = Router::connect_sentinel(
        vec![sentinel.url()],
        NAME,
        SentinelNodeConnectionInfo::default(),
        quick_reconnect(),
    )
    .await
    .expect("connect through the sentinel");
    pin(&master, b"hot");
    wait_for_route(&router, &get(b"hot"), Target::Cache).await;

    let writer = Writer::start(&router);
    tokio::time::sleep(Duration::from_millis(300)).await;
    master.kill();
    let killed = Instant::now();

    wait_until("the sentinel promotes the replica", FAILOVER, || {
        sentinel.master_addr(NAME).1 == replica.port
    })
    .await;
    wait_until("the replica is a master", WAIT, || {
        replica.role() == "master"
    })
    .await;
    let promoted = Instant::now();
    wait_until("a write succeeds after the failover", FAILOVER, || {
        writer.last_ok().is_some_and(|at| at > promoted)
    })
    .await;
    // Let the writer run on the new master for a moment: until it wrote there for 100 ms.
    let resumed = Instant::now();
    wait_until("writes on the new master for 100 ms", WAIT, || {
        writer
            .last_ok()
            .is_some_and(|at| at > resumed + Duration::from_millis(100))
    })
    .await;
    let outcomes = writer.stop().await;

    let after_kill: Vec<&Outcome> = outcomes.iter().filter(|o| o.done > killed).collect();
    let errors: Vec<&hotkey_router::Error> = after_kill
        .iter()
        .filter_map(|o| o.result.as_ref().err())
        .collect();
    assert!(!errors.is_empty(), "no write failed during the failover");
    for e in &errors {
        assert!(
            matches!(e.kind(), ErrorKind::MasterUnavailable | ErrorKind::Io),
            "{e} ({:?})",
            e.kind()
        );
    }
    assert!(
        errors.iter().any(|e| e.is_retryable()),
        "no retryable error during the failover: {errors:?}"
    );
    // Once the router said the master was unavailable, no write was sent until it came back:
    // an I/O error (a write that may have happened) can only be one in flight at the kill.
    if let Some(first) = errors
        .iter()
        .position(|e| e.kind() == ErrorKind::MasterUnavailable)
    {
        let late_io: Vec<_> = errors[first..]
            .iter()
            .filter(|e| e.kind() == ErrorKind::Io)
            .collect();
        assert!(
            late_io.is_empty(),
            "I/O errors after the master was known down: {late_io:?}"
        );
    }
    // The writes succeed again, on the promoted replica, in order.
    let ok_after: Vec<i64> = after_kill
        .iter()
        .filter(|o| o.done > resumed)
        .filter_map(|o| o.result.as_ref().ok().copied())
        .collect();
    assert!(
        !ok_after.is_empty(),
        "no write succeeded after the failover"
    );
    assert!(
        ok_after.windows(2).all(|w| w[1] == w[0] + 1),
        "writes after the failover: {ok_after:?}"
    );
    let on_promoted: Option<i64> = get(b"counter").query(&mut replica.conn()).expect("GET");
    assert_eq!(on_promoted, ok_after.last().copied());
    assert!(router.is_synced());

    // The router follows the new master's hot set.
    pin(replica, b"hot");
    wait_for_route(&router, &get(b"hot"), Target::Cache).await;
    let v: String = router.query(&get(b"hot")).await.expect("GET");
    assert_eq!(v, "v");
}
