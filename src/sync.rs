//! The crate's one poison-tolerant lock helper.
//!
//! A mutex is poisoned when a thread panicked while holding it. Nothing in
//! this crate leaves shared state half-updated across a panic (user handlers
//! never run under one of our locks), so a poisoned lock is still consistent
//! and is used as is instead of cascading the panic to every other thread.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

#[allow(dead_code)]
/// Locks `mutex`, recovering the guard if a panicking thread poisoned it.
pub(crate) fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Waits on `condvar` (poison-tolerant, like [`lock`]).
#[allow(dead_code)]
pub(crate) fn wait<'a, T>(condvar: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    condvar.wait(guard).unwrap_or_else(PoisonError::into_inner)
}

/// Waits on `condvar` for at most `timeout` (poison-tolerant, like [`lock`]);
/// the flag is true when the wait timed out.
#[allow(dead_code)]
pub(crate) fn wait_timeout<'a, T>(
    condvar: &Condvar,
    guard: MutexGuard<'a, T>,
    timeout: Duration,
) -> (MutexGuard<'a, T>, bool) {
    let (guard, result) = condvar
        .wait_timeout(guard, timeout)
        .unwrap_or_else(PoisonError::into_inner);
    (guard, result.timed_out())
}
