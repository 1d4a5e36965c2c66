//! State that only the server's main thread touches.

use std::cell::RefCell;

/// A `RefCell` in a `static`: the borrow flag catches re-entry, and no lock is taken on the
/// filter's path.
pub struct MainThread<T>(RefCell<T>);

// SAFETY: the server calls a module's command filter, commands, server-event, INFO and config
// callbacks on its main thread only, and this module starts no threads, so the cell is never
// touched from two threads.
unsafe impl<T> Sync for MainThread<T> {}

impl<T> MainThread<T> {
    pub const fn new(value: T) -> MainThread<T> {
        MainThread(RefCell::new(value))
    }

    /// Runs `f` on the value; None when it is already borrowed (re-entry, or a callback that
    /// runs while a panic unwinds through another), so the caller skips rather than panics.
    #[inline]
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        self.0.try_borrow_mut().ok().map(|mut v| f(&mut v))
    }
}
