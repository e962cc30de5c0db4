//! Where the time comes from: the system's clock, or a [`ManualClock`] that tests move by
//! hand. The alert engine, the report scheduler and the rotation daemon read it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// Returns nanoseconds since the Unix epoch.
    fn now_ns(&self) -> i64;

    /// Returns the current time as a [`SystemTime`].
    fn now(&self) -> SystemTime {
        let ns = self.now_ns();
        let magnitude = Duration::from_nanos(ns.unsigned_abs());
        if ns >= 0 {
            UNIX_EPOCH + magnitude
        } else {
            UNIX_EPOCH - magnitude
        }
    }
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ns(&self) -> i64 {
        crate::now_ns()
    }
}

/// A clock that only moves when told to.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// Creates a clock showing `ns` since the Unix epoch.
    pub fn new(ns: i64) -> ManualClock {
        ManualClock(AtomicI64::new(ns))
    }

    /// Creates a clock showing `time`.
    pub fn at(time: SystemTime) -> ManualClock {
        ManualClock::new(ns_of(time))
    }

    /// Sets the time, in ns since the Unix epoch.
    pub fn set(&self, ns: i64) {
        self.0.store(ns, Ordering::SeqCst);
    }

    /// Sets the time to `time`.
    pub fn set_time(&self, time: SystemTime) {
        self.set(ns_of(time));
    }

    /// Moves the time by `ns` (negative goes back).
    pub fn advance(&self, ns: i64) {
        self.0.fetch_add(ns, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ns(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Nanoseconds since the Unix epoch of `time`, saturating at `i64`'s bounds.
fn ns_of(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_nanos()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_nanos()).map_or(i64::MIN, |n| -n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_time_and_nanoseconds_agree_both_sides_of_the_epoch() {
        for ns in [0, 1_705_312_200_123_456_789, -86_400_000_000_123] {
            let clock = ManualClock::new(ns);
            assert_eq!(ns_of(clock.now()), ns);
            let again = ManualClock::at(clock.now());
            assert_eq!(again.now_ns(), ns);
        }
        let clock = ManualClock::new(10);
        clock.advance(-25);
        assert_eq!(clock.now_ns(), -15);
        clock.set_time(UNIX_EPOCH + Duration::from_secs(2));
        assert_eq!(clock.now_ns(), 2_000_000_000);
    }
}
