//! The link's timing decisions, apart from its I/O so they can be tested under a paused tokio
//! clock without a server: when silence on the channel means the hot set may be stale, when
//! the next report and replica probe are due, and how long to wait between reconnects.

use std::future::Future;
use std::time::Duration;

use tokio::time::{Instant, sleep};

/// The first wait before a reconnect; each failed attempt doubles it, up to the options'
/// `reconnect_max_delay`.
const FIRST_RECONNECT_DELAY: Duration = Duration::from_millis(50);

/// What is due when a [`LinkClock`] fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Due {
    /// Nothing heard from the module for the heartbeat timeout: re-read the hot set.
    Silence,
    /// Report the reads served off the master.
    Report,
    /// Try the replicas out of rotation again.
    Probe,
}

/// The deadlines of a live link.
pub(crate) struct LinkClock {
    heartbeat_timeout: Duration,
    report_interval: Duration,
    probe_interval: Duration,
    heard: Instant,
    next_report: Instant,
    next_probe: Instant,
}

impl LinkClock {
    /// A link that starts at `now`, just synced (so as good as heard from), with a report and a
    /// probe due at once: a reconnect may have left both waiting.
    pub(crate) fn new(
        heartbeat_timeout: Duration,
        report_interval: Duration,
        probe_interval: Duration,
        now: Instant,
    ) -> LinkClock {
        LinkClock {
            heartbeat_timeout,
            report_interval,
            probe_interval,
            heard: now,
            next_report: now,
            next_probe: now,
        }
    }

    /// A message from the module arrived at `now`.
    pub(crate) fn heard(&mut self, now: Instant) {
        self.heard = now;
    }

    /// The next deadline and what is due then. On a tie silence goes first: a stale hot set
    /// matters more than a late report.
    pub(crate) fn next(&self) -> (Instant, Due) {
        let mut next = (self.heard + self.heartbeat_timeout, Due::Silence);
        for candidate in [
            (self.next_report, Due::Report),
            (self.next_probe, Due::Probe),
        ] {
            if candidate.0 < next.0 {
                next = candidate;
            }
        }
        next
    }

    /// `due` was handled, finishing at `now`. A resync counts as hearing from the module. A
    /// report or probe is next due one interval after the one just made; when the link was
    /// busy past that, one interval from now, not a burst of the missed ones.
    pub(crate) fn done(&mut self, due: Due, now: Instant) {
        match due {
            Due::Silence => self.heard = now,
            Due::Report => {
                self.next_report = following(self.next_report, self.report_interval, now)
            }
            Due::Probe => self.next_probe = following(self.next_probe, self.probe_interval, now),
        }
    }
}

fn following(at: Instant, every: Duration, now: Instant) -> Instant {
    let next = at + every;
    if next > now { next } else { now + every }
}

/// Waits between reconnect attempts: 50 ms, doubling, at most `max`.
pub(crate) struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub(crate) fn new(max: Duration) -> Backoff {
        Backoff {
            next: FIRST_RECONNECT_DELAY.min(max),
            max,
        }
    }

    /// The wait before the next attempt.
    pub(crate) fn delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        delay
    }
}

/// Calls `attempt` until it succeeds, waiting as [`Backoff`] says after each failure (which is
/// passed to `failed` first).
pub(crate) async fn retry<T, E, F: Future<Output = Result<T, E>>>(
    max_delay: Duration,
    mut attempt: impl FnMut() -> F,
    mut failed: impl FnMut(&E),
) -> T {
    let mut backoff = Backoff::new(max_delay);
    loop {
        match attempt().await {
            Ok(v) => return v,
            Err(e) => {
                failed(&e);
                sleep(backoff.delay()).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::sleep_until;

    const SECOND: Duration = Duration::from_secs(1);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Runs a clock (heartbeat timeout 3 s, reports and probes every second) from the start of
    /// the paused clock until `end`, with a message heard at each of `messages` (offsets from
    /// the start); returns every deadline that fired, as (offset, what).
    async fn run(messages: &[Duration], end: Duration) -> Vec<(Duration, Due)> {
        let start = Instant::now();
        let mut clock = LinkClock::new(3 * SECOND, SECOND, SECOND, start);
        let mut messages = messages.iter().map(|m| start + *m).peekable();
        let mut fired = Vec::new();
        loop {
            let (at, due) = clock.next();
            match messages.peek() {
                Some(&m) if m < at => {
                    sleep_until(m).await;
                    clock.heard(Instant::now());
                    messages.next();
                    continue;
                }
                _ => {}
            }
            if at > start + end {
                return fired;
            }
            sleep_until(at).await;
            fired.push((Instant::now() - start, due));
            clock.done(due, Instant::now());
        }
    }

    fn times(fired: &[(Duration, Due)], what: Due) -> Vec<Duration> {
        fired
            .iter()
            .filter(|(_, d)| *d == what)
            .map(|(at, _)| *at)
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn heartbeats_keep_the_link_quiet_and_silence_resyncs_a_timeout_after_the_last() {
        // A heartbeat a second for 5 s, then nothing until 12 s.
        let beats: Vec<Duration> = (1..=5).map(|s| s * SECOND).collect();
        let fired = run(&beats, 12 * SECOND).await;
        // 3 s after the last message, then every 3 s while the silence lasts.
        assert_eq!(
            times(&fired, Due::Silence),
            [8 * SECOND, 11 * SECOND],
            "{fired:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_message_just_before_the_timeout_pushes_the_resync_back() {
        let fired = run(&[ms(2999)], 6 * SECOND).await;
        assert_eq!(times(&fired, Due::Silence), [ms(5999)], "{fired:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn reports_and_probes_are_due_at_once_then_every_interval() {
        let beats: Vec<Duration> = (1..=40).map(|n| n * ms(100)).collect();
        let fired = run(&beats, ms(3500)).await;
        let every_second = [Duration::ZERO, SECOND, 2 * SECOND, 3 * SECOND];
        assert_eq!(times(&fired, Due::Report), every_second, "{fired:?}");
        assert_eq!(times(&fired, Due::Probe), every_second, "{fired:?}");
        assert!(times(&fired, Due::Silence).is_empty(), "{fired:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_report_that_ran_late_is_next_due_an_interval_later_not_at_once() {
        let start = Instant::now();
        let mut clock = LinkClock::new(10 * SECOND, SECOND, 10 * SECOND, start);
        clock.done(Due::Probe, start);
        assert_eq!(clock.next(), (start, Due::Report));
        // The report took 2.5 s (a slow master): the ones missed meanwhile are not made up.
        sleep(ms(2500)).await;
        clock.done(Due::Report, Instant::now());
        assert_eq!(clock.next(), (start + ms(3500), Due::Report));
        // On time, the next one keeps the interval's grid.
        sleep_until(start + ms(3600)).await;
        clock.done(Due::Report, Instant::now());
        assert_eq!(clock.next(), (start + ms(4500), Due::Report));
    }

    #[tokio::test(start_paused = true)]
    async fn a_resync_restarts_the_heartbeat_wait() {
        let start = Instant::now();
        let mut clock = LinkClock::new(3 * SECOND, 10 * SECOND, 10 * SECOND, start);
        clock.done(Due::Report, start);
        clock.done(Due::Probe, start);
        assert_eq!(clock.next(), (start + 3 * SECOND, Due::Silence));
        // The resync (HOTKEY.ROUTES) itself took half a second.
        sleep_until(start + ms(3500)).await;
        clock.done(Due::Silence, Instant::now());
        assert_eq!(clock.next(), (start + ms(6500), Due::Silence));
    }

    #[test]
    fn the_backoff_doubles_from_50_ms_up_to_the_maximum() {
        let mut backoff = Backoff::new(SECOND);
        let delays: Vec<u64> = (0..8).map(|_| backoff.delay().as_millis() as u64).collect();
        assert_eq!(delays, [50, 100, 200, 400, 800, 1000, 1000, 1000]);
        let mut short = Backoff::new(ms(20));
        assert_eq!([short.delay(), short.delay()], [ms(20), ms(20)]);
    }

    #[tokio::test(start_paused = true)]
    async fn reconnect_attempts_follow_the_backoff_until_one_succeeds() {
        let start = Instant::now();
        let mut attempts = Vec::new();
        let mut failures = 0;
        let got = retry(
            ms(200),
            || {
                attempts.push(Instant::now() - start);
                let n = attempts.len();
                async move { if n < 6 { Err(n) } else { Ok(n) } }
            },
            |_| failures += 1,
        )
        .await;
        assert_eq!(got, 6);
        assert_eq!(failures, 5);
        // Waits of 50, 100, 200, 200, 200 ms between the attempts.
        assert_eq!(
            attempts,
            [0, 50, 150, 350, 550, 750].map(ms),
            "when each attempt started"
        );
    }
}
