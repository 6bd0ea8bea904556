//! The one policy for the crate's std locks, written once: a poisoned lock is used as it is.
//!
//! Every lock in this crate is a std `Mutex` or `RwLock` held for a few map or counter
//! operations and never across an `.await` (so a tokio lock would only add cost). No critical
//! section leaves its data half-changed at a point where it could panic: each either does one
//! operation or checks everything that can fail before it changes anything. A panic while a
//! guard is held is therefore a bug elsewhere (an allocation failure), and the data behind the
//! lock is still consistent; refusing it afterwards would turn one bug into a failure of every
//! later call, and skipping the work (as a failed `lock()` used to) can lose a record that
//! keeps a stale page from being served. So poisoning is cleared, never propagated.

use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Locks `mutex`, whether or not a holder panicked.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Read-locks `lock`, whether or not a writer panicked.
pub(crate) fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

/// Write-locks `lock`, whether or not a writer panicked.
pub(crate) fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poisoned_lock_still_gives_its_data() {
        let mutex = std::sync::Arc::new(Mutex::new(vec![1]));
        let poisoner = std::sync::Arc::clone(&mutex);
        let _ = std::thread::spawn(move || {
            let _guard = poisoner.lock();
            panic!("a holder panics");
        })
        .join();
        assert!(mutex.is_poisoned());
        lock(&mutex).push(2);
        assert_eq!(*lock(&mutex), [1, 2]);
    }
}
