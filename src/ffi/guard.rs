//! The guard every callback from the server goes through.
//!
//! A panic that unwinds into the server's C frames aborts the process. `catch_unwind` stops it
//! at the boundary: the callback's fallback takes its place (an error reply, a skipped event),
//! the panic is logged and counted (`INFO hotkey` `internal_errors`). `panic = "unwind"` (the
//! default profile setting) is what makes this possible; `abort` would bypass it.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};

use super::calls::{LogLevel, log};

static INTERNAL_ERRORS: AtomicU64 = AtomicU64::new(0);

/// Panics caught at the boundary since the module loaded.
pub fn internal_errors() -> u64 {
    INTERNAL_ERRORS.load(Ordering::Relaxed)
}

/// Runs `f`; on a panic, logs and counts it and returns `fallback`. State touched by `f` is
/// only ever inside `MainThread` cells, whose borrows end while the panic unwinds.
#[inline]
pub fn guard<R>(what: &str, fallback: R, f: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            INTERNAL_ERRORS.fetch_add(1, Ordering::Relaxed);
            log(
                LogLevel::Warning,
                &format!("hotkey: internal error in {what}: {}", message(&*payload)),
            );
            fallback
        }
    }
}

/// Resets the count (a new load).
pub(super) fn reset() {
    INTERNAL_ERRORS.store(0, Ordering::Relaxed);
}

fn message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_the_fallback_and_is_counted() {
        let before = internal_errors();
        assert_eq!(guard("a test", 7, || 1), 1);
        assert_eq!(internal_errors(), before);
        let text = String::from("boom");
        assert_eq!(guard("a test", 7, || panic!("{text}")), 7);
        assert_eq!(guard("a test", "fallback", || panic!("static")), "fallback");
        assert_eq!(internal_errors(), before + 2);
    }

    #[test]
    fn panic_messages_are_read_from_either_payload() {
        assert_eq!(message(&"static"), "static");
        assert_eq!(message(&String::from("owned")), "owned");
        assert_eq!(message(&42), "a panic without a message");
    }
}
