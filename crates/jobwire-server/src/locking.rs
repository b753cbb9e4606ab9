//! Poison-tolerant locking of the server's short-lived mutexes.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks a mutex, carrying on with the data if a panicking thread poisoned it.
///
/// Every structure behind these mutexes stays consistent between statements (no
/// half-done updates are left across a possible panic point), so the poison flag carries
/// no information worth failing a request for.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
