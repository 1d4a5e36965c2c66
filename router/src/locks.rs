//! The router's one policy for a poisoned lock: keep going with the data as they are.
//!
//! Every lock here guards plain values (a route table, a connection handle, counts) that are
//! whole between two statements: a panic while one was held cannot leave them half-changed in
//! a way that matters more than the panic itself, and a router that stops routing because some
//! other task panicked would turn one failure into all of them.

use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crossbeam_utils::sync::{ShardedLock, ShardedLockReadGuard, ShardedLockWriteGuard};

pub(crate) fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn lock<T>(lock: &Mutex<T>) -> MutexGuard<'_, T> {
    lock.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Read-locks a lock that every command reads (the route table, the command table): each thread
/// takes its own shard, so readers on different cores do not write one cache line; a writer
/// takes every shard.
pub(crate) fn read_sharded<T>(lock: &ShardedLock<T>) -> ShardedLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn write_sharded<T>(lock: &ShardedLock<T>) -> ShardedLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}
