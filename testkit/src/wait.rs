//! Waits with deadlines, all scaled by one factor: a test polls for the state it asserts and
//! never sleeps for a fixed time first, so a loaded machine makes it slower, not wrong.
//!
//! `HOTKEY_TEST_SLOWDOWN` (a float ≥ 1, default 1) multiplies every deadline here and in the
//! rest of the harness; raise it on a machine too slow for the defaults.

use std::fmt::{Debug, Display};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use hotkey_protocol::Routes;
use redis::Connection;

/// The environment variable that scales every deadline.
pub const SLOWDOWN_VAR: &str = "HOTKEY_TEST_SLOWDOWN";

/// How often a wait looks again.
pub const POLL: Duration = Duration::from_millis(20);

/// The default deadline for anything that takes a tick, an event, a probe or a replica's
/// acknowledgement (~100 ms to ~1 s) to show, before scaling.
pub const WAIT: Duration = Duration::from_secs(15);

/// The factor `HOTKEY_TEST_SLOWDOWN` sets; panics on a value that is not a number ≥ 1, so a
/// typo does not silently run the tests unscaled.
pub fn slowdown() -> f64 {
    static FACTOR: OnceLock<f64> = OnceLock::new();
    *FACTOR.get_or_init(|| match std::env::var(SLOWDOWN_VAR) {
        Err(_) => 1.0,
        Ok(text) => match text.trim().parse::<f64>() {
            Ok(f) if f >= 1.0 && f.is_finite() => f,
            _ => panic!("{SLOWDOWN_VAR}={text:?}: expected a number >= 1"),
        },
    })
}

/// `timeout` times [`slowdown`].
pub fn scaled(timeout: Duration) -> Duration {
    timeout.mul_f64(slowdown())
}

/// The moment `timeout` (scaled) from now.
pub fn deadline(timeout: Duration) -> Instant {
    Instant::now() + scaled(timeout)
}

/// Polls `probe` until it returns `Ok`, and returns that value; after `timeout` (scaled) panics
/// with `what` and the last `Err` it returned (what it saw instead).
pub fn wait_until<T, E: Debug>(
    what: impl Display,
    timeout: Duration,
    mut probe: impl FnMut() -> Result<T, E>,
) -> T {
    let limit = scaled(timeout);
    let end = Instant::now() + limit;
    loop {
        match probe() {
            Ok(v) => return v,
            Err(last) if Instant::now() >= end => {
                panic!("waited {limit:?} for: {what}; last seen: {last:?}")
            }
            Err(_) => thread::sleep(POLL),
        }
    }
}

/// Like [`wait_until`], for async tests: sleeps on the tokio timer, so the tasks the test
/// waits for run meanwhile.
#[cfg(feature = "tokio")]
pub async fn wait_until_async<T, E: Debug, F: std::future::Future<Output = Result<T, E>>>(
    what: impl Display,
    timeout: Duration,
    mut probe: impl FnMut() -> F,
) -> T {
    let limit = scaled(timeout);
    let end = Instant::now() + limit;
    loop {
        match probe().await {
            Ok(v) => return v,
            Err(last) if Instant::now() >= end => {
                panic!("waited {limit:?} for: {what}; last seen: {last:?}")
            }
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
}

/// `Ok(())` when `ok`, else `Err(seen)`: a boolean condition for [`wait_until`] that still
/// says what it saw.
pub fn check<E>(ok: bool, seen: impl FnOnce() -> E) -> Result<(), E> {
    if ok { Ok(()) } else { Err(seen()) }
}

/// `WAIT n timeout` on `conn` with the scaled [`WAIT`] deadline; panics unless all `n`
/// replicas acknowledged the writes made on `conn` so far.
pub fn wait_for_acks(conn: &mut Connection, n: usize) {
    let timeout = scaled(WAIT);
    let acked: usize = redis::cmd("WAIT")
        .arg(n)
        .arg(timeout.as_millis() as u64)
        .query(conn)
        .unwrap_or_else(|e| panic!("WAIT {n} {}: {e}", timeout.as_millis()));
    assert_eq!(
        acked, n,
        "replicas that acknowledged the writes within {timeout:?}"
    );
}

/// Waits until the master's `HOTKEY.ROUTES` lists exactly the healthy replicas on `ports`;
/// returns that snapshot.
pub fn wait_for_replicas(conn: &mut Connection, ports: &[u16], timeout: Duration) -> Routes {
    let mut want = ports.to_vec();
    want.sort_unstable();
    wait_until(
        format_args!("HOTKEY.ROUTES listing the replicas {want:?}"),
        timeout,
        || {
            let reply: redis::Value = redis::cmd("HOTKEY.ROUTES")
                .query(conn)
                .unwrap_or_else(|e| panic!("HOTKEY.ROUTES: {e}"));
            let routes = Routes::from_redis(&reply)
                .unwrap_or_else(|e| panic!("HOTKEY.ROUTES reply {reply:?}: {e}"));
            let mut ports: Vec<u16> = routes.replicas.iter().map(|r| r.port).collect();
            ports.sort_unstable();
            if ports == want {
                Ok(routes)
            } else {
                let info: String = redis::cmd("INFO")
                    .arg("replication")
                    .query(conn)
                    .unwrap_or_else(|e| format!("(INFO replication failed: {e})"));
                Err(format!(
                    "replicas {:?}\n--- master's INFO replication ---\n{info}",
                    routes.replicas
                ))
            }
        },
    )
}

/// `HOTKEY.PIN key <args…>` (`TTL seconds`, `DB n`), which must reply OK: the key is read-hot
/// at once, whatever its rate.
pub fn pin(conn: &mut Connection, key: &[u8], args: &[&str]) {
    let reply: String = redis::cmd("HOTKEY.PIN")
        .arg(key)
        .arg(args)
        .query(conn)
        .unwrap_or_else(|e| {
            panic!(
                "HOTKEY.PIN {} {}: {}",
                String::from_utf8_lossy(key),
                args.join(" "),
                crate::top::error_text(&e)
            )
        });
    assert_eq!(
        reply,
        "OK",
        "HOTKEY.PIN {} {}",
        String::from_utf8_lossy(key),
        args.join(" ")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_until_returns_the_first_ok() {
        let mut calls = 0;
        let got = wait_until("three calls", Duration::from_secs(5), || {
            calls += 1;
            check(calls >= 3, || calls).map(|()| calls)
        });
        assert_eq!(got, 3);
    }

    #[test]
    #[should_panic(expected = "for: the impossible; last seen: 7")]
    fn wait_until_names_what_it_waited_for_and_what_it_last_saw() {
        wait_until("the impossible", Duration::from_millis(50), || {
            Err::<(), _>(7)
        });
    }

    #[test]
    fn deadlines_scale_by_at_least_one() {
        assert!(slowdown() >= 1.0);
        assert!(scaled(Duration::from_secs(2)) >= Duration::from_secs(2));
    }
}
