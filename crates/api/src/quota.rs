//! Limits of one token: ingest lines and bytes per second, and queries at once.
//!
//! The global limits of `[limits]` bound every request; these bound what one token may use of
//! the server, so that one noisy agent or dashboard cannot starve the others. Ingest is a
//! leaky bucket that may go into debt: a request is admitted while the token's bucket holds
//! at most one second of its rate, and what it brings is counted once it is decoded, so that
//! a batch larger than the rate still passes and the average holds. While the bucket is over,
//! ingest requests are answered `429 rate_limited` with `Retry-After`, which the shippers'
//! clients honour, before their body is read. Queries past `max_concurrent_queries` are
//! answered `429 too_many_queries` at once.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// What a token may use, as configured on its `[[auth.tokens]]` table.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct QuotaConfig {
    /// Entries per second it may send (`max_lines_per_second`).
    pub lines_per_second: Option<f64>,
    /// Request bytes per second it may send (`max_bytes_per_second`).
    pub bytes_per_second: Option<f64>,
    /// Queries it may run at once (`max_concurrent_queries`).
    pub concurrent_queries: Option<usize>,
}

/// The state of one token's limits, shared by all its requests.
#[derive(Debug, Default)]
pub struct Quota {
    lines: Option<Bucket>,
    bytes: Option<Bucket>,
    queries: Option<(usize, Arc<Semaphore>)>,
}

/// A leaky bucket that may go into debt: `level` units drain at `rate` per second.
#[derive(Debug)]
struct Bucket {
    rate: f64,
    state: Mutex<(f64, Instant)>,
}

impl Bucket {
    fn new(rate: f64) -> Bucket {
        Bucket {
            rate,
            state: Mutex::new((0.0, Instant::now())),
        }
    }

    /// The level now, drained since it was last looked at.
    fn drain(&self, state: &mut (f64, Instant)) {
        let now = Instant::now();
        let elapsed = now.duration_since(state.1).as_secs_f64();
        state.0 = (state.0 - elapsed * self.rate).max(0.0);
        state.1 = now;
    }

    /// How long until the bucket holds at most one second of its rate again.
    fn wait(&self) -> Option<Duration> {
        let mut state = self.state.lock().expect("quota lock");
        self.drain(&mut state);
        let over = state.0 - self.rate;
        (over > 0.0).then(|| Duration::from_secs_f64(over / self.rate))
    }

    fn charge(&self, units: f64) {
        let mut state = self.state.lock().expect("quota lock");
        self.drain(&mut state);
        state.0 += units;
    }
}

/// Why a request of a token was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// The token sent more than its rate: retry after this long.
    Rate {
        /// How long until it may send again.
        retry_after: Duration,
        /// Which limit, as configured.
        setting: &'static str,
    },
    /// The token runs as many queries as it may.
    Queries(usize),
}

impl Quota {
    /// The limits of a configuration; `None` everywhere is no limit.
    pub fn new(config: QuotaConfig) -> Quota {
        Quota {
            lines: config.lines_per_second.map(Bucket::new),
            bytes: config.bytes_per_second.map(Bucket::new),
            queries: config
                .concurrent_queries
                .map(|n| (n, Arc::new(Semaphore::new(n)))),
        }
    }

    /// Whether an ingest request may start now.
    pub fn admit_ingest(&self) -> Result<(), Refusal> {
        let waits = [
            (self.lines.as_ref(), "max_lines_per_second"),
            (self.bytes.as_ref(), "max_bytes_per_second"),
        ];
        let longest = waits
            .into_iter()
            .filter_map(|(bucket, setting)| Some((bucket?.wait()?, setting)))
            .max_by_key(|(wait, _)| *wait);
        match longest {
            Some((retry_after, setting)) => Err(Refusal::Rate {
                retry_after,
                setting,
            }),
            None => Ok(()),
        }
    }

    /// Counts what an admitted ingest request brought.
    pub fn charge_ingest(&self, lines: u64, bytes: u64) {
        if let Some(b) = &self.lines {
            b.charge(lines as f64);
        }
        if let Some(b) = &self.bytes {
            b.charge(bytes as f64);
        }
    }

    /// A slot for one query, held until it is dropped; `Ok(None)` without a limit.
    pub fn start_query(&self) -> Result<Option<OwnedSemaphorePermit>, Refusal> {
        match &self.queries {
            None => Ok(None),
            Some((n, slots)) => slots
                .clone()
                .try_acquire_owned()
                .map(Some)
                .map_err(|_| Refusal::Queries(*n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_larger_than_the_rate_passes_and_the_next_waits_for_the_debt() {
        let quota = Quota::new(QuotaConfig {
            lines_per_second: Some(100.0),
            ..QuotaConfig::default()
        });
        assert_eq!(quota.admit_ingest(), Ok(()));
        quota.charge_ingest(350, 0);
        let Err(Refusal::Rate {
            retry_after,
            setting,
        }) = quota.admit_ingest()
        else {
            panic!("in debt");
        };
        assert_eq!(setting, "max_lines_per_second");
        // 250 lines over the one-second allowance, at 100 a second.
        assert!(
            retry_after > Duration::from_millis(2_400)
                && retry_after <= Duration::from_millis(2_500),
            "{retry_after:?}"
        );
    }

    #[test]
    fn queries_past_the_limit_are_refused_until_one_ends() {
        let quota = Quota::new(QuotaConfig {
            concurrent_queries: Some(2),
            ..QuotaConfig::default()
        });
        let a = quota.start_query().unwrap();
        let _b = quota.start_query().unwrap();
        assert_eq!(quota.start_query().unwrap_err(), Refusal::Queries(2));
        drop(a);
        assert!(quota.start_query().is_ok());
        assert!(Quota::default().start_query().unwrap().is_none());
    }
}
