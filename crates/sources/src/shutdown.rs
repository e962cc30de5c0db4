//! The stop flag that every source watches.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// A stop flag shared by the binary and its sources; cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    inner: Arc<(Mutex<bool>, Condvar)>,
}

impl Shutdown {
    /// Creates a flag that is not set.
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Sets the flag and wakes every waiter.
    pub fn trigger(&self) {
        let (lock, cvar) = &*self.inner;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cvar.notify_all();
    }

    /// Returns true once the flag is set.
    pub fn is_triggered(&self) -> bool {
        *self.inner.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits up to `timeout` for the flag; returns true when it is set.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let (lock, cvar) = &*self.inner;
        let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) = cvar
            .wait_timeout_while(guard, timeout, |set| !*set)
            .unwrap_or_else(|e| e.into_inner());
        *guard
    }
}
