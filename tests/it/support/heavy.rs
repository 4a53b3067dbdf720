//! Keeping the heaviest tests apart. The tests of this binary run side by
//! side in threads; the few that load the whole machine (thousands of
//! sockets, child processes under load, hundreds of thousands of events)
//! take this lock first. Most take it [`shared`]: they may run beside each
//! other, as they always did. The heaviest, whose measurements (latency
//! under attack, throughput) other load would distort, take it
//! [`exclusive`]ly. Light tests take nothing.

use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

static HEAVY: RwLock<()> = RwLock::new(());

/// For a heavy test that may run beside other heavy ones; held until dropped.
pub fn shared() -> RwLockReadGuard<'static, ()> {
    // A heavy test that failed must not fail the ones after it.
    HEAVY.read().unwrap_or_else(PoisonError::into_inner)
}

/// For a heavy test that must not run beside any other; held until dropped.
pub fn exclusive() -> RwLockWriteGuard<'static, ()> {
    HEAVY.write().unwrap_or_else(PoisonError::into_inner)
}
