//! Time for the module: a monotonic clock, and when periodic work is due.

use std::sync::OnceLock;
use std::time::Instant;

/// Milliseconds on a monotonic clock; only read off the filter's path.
pub fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// Whether something done every `every_ms`, last at `last_ms`, is due at `now_ms`. Ticks ride
/// the server's cron, whose calls come a millisecond early or late: without slack a tick
/// period equal to the cron's would skip every other call. The slack (a quarter period, at
/// most 25 ms) stays below the cron's period, so a heartbeat every 1000 ms on 100 ms ticks
/// goes out every 1000 ms, not every 800.
pub fn is_due(last_ms: u64, now_ms: u64, every_ms: u64) -> bool {
    now_ms.saturating_sub(last_ms) + (every_ms / 4).min(25) >= every_ms
}
