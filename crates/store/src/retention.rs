//! Retention: whole days past `retention_days` are dropped, then the oldest days while the
//! store is over `max_disk_bytes`; entries already past the retention are refused on the
//! way in.

use std::sync::atomic::Ordering;

use crate::snapshot::quarantined_ranges;
use crate::{Inner, StoreError};

/// Days since the epoch, UTC.
pub(crate) fn day_number(ts: i64) -> i64 {
    ts.div_euclid(86_400 * 1_000_000_000)
}

/// The first instant of the oldest day that `retention_days` keeps at `now`, or `None` when
/// it keeps everything. Retention drops whole days older than the day of `now -
/// retention_days`, so an entry before this instant would be deleted at its next pass.
pub fn oldest_kept(retention_days: u32, now: i64) -> Option<i64> {
    if retention_days == 0 {
        return None;
    }
    let cutoff = now.saturating_sub(i64::from(retention_days) * 86_400 * 1_000_000_000);
    Some(cutoff - cutoff.rem_euclid(86_400 * 1_000_000_000))
}

/// Why an entry older than what `retention_days` keeps is refused.
pub fn expired_reason(retention_days: u32) -> String {
    let unit = if retention_days == 1 { "day" } else { "days" };
    format!("older than the retention of {retention_days} {unit}")
}

pub(crate) fn day_of(ts: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ts)
        .format("%Y-%m-%d")
        .to_string()
}

impl Inner {
    /// Logs entries refused on their way in by a path that does not answer per entry (a
    /// source), at most once a minute, with the total since the last message.
    pub(crate) fn warn_refused(&self, n: usize) {
        const EVERY_NS: i64 = 60 * 1_000_000_000;
        self.refused_unlogged.fetch_add(n as u64, Ordering::Relaxed);
        let now = logyard_model::now_ns();
        let last = self.refused_logged_at.load(Ordering::Relaxed);
        if now - last >= EVERY_NS
            && self
                .refused_logged_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let entries = self.refused_unlogged.swap(0, Ordering::Relaxed);
            tracing::warn!(
                entries,
                "{}; raise [store] retention_days (0 keeps everything) to store them",
                expired_reason(self.config.retention_days)
            );
        }
    }

    /// Refuses a write, with a bucket, while the WAL and the segment files waiting for their
    /// upload hold `max_disk_bytes` of the local disk (the bucket out of reach for long):
    /// nothing acknowledged is dropped to make room, and writes are taken again once the
    /// uploads have freed it.
    pub(crate) fn check_local_budget(&self) -> Result<(), StoreError> {
        let max = self.config.max_disk_bytes;
        let Some(tier) = self.segments.upload_counters() else {
            return Ok(());
        };
        if max == 0 {
            return Ok(());
        }
        let wal = self.counters.wal_bytes.load(Ordering::Relaxed);
        let waiting = tier.pending_bytes.load(Ordering::Relaxed);
        if wal + waiting <= max {
            return Ok(());
        }
        Err(StoreError::WriteFailed(format!(
            "the local disk budget (store.max_disk_bytes = {max} bytes) is full: {waiting} bytes \
             of segment files wait for their upload to {} and the WAL holds {wal}; writes are \
             taken again once the bucket takes them (see GET /api/storage)",
            self.segments.location()
        )))
    }

    /// Drops whole days past the retention, then the oldest days while over the disk budget
    /// (of a local store).
    pub(crate) fn apply_retention(&self) -> Result<(), StoreError> {
        let mut catalog = self.catalog.lock().expect("catalog lock");
        // Checked under the catalog's lock, which a backup takes after pinning: a run that
        // started first is over before the backup reads the catalog.
        if self.pinned() {
            return Ok(());
        }
        let mut days: Vec<String> = catalog
            .segments
            .iter()
            .chain(&catalog.quarantined)
            .map(|m| m.day.clone())
            .collect();
        days.sort();
        days.dedup();
        let mut drop_days = Vec::new();
        if self.config.retention_days > 0 {
            let cutoff = logyard_model::now_ns()
                - i64::from(self.config.retention_days) * 86_400 * 1_000_000_000;
            // A day goes once all of it is older than the cutoff.
            let cutoff_day = day_of(cutoff);
            drop_days.extend(
                days.iter()
                    .filter(|d| d.as_str() < cutoff_day.as_str())
                    .cloned(),
            );
        }
        // With a bucket, `max_disk_bytes` bounds the local disk (`check_local_budget`): no
        // day of the bucket is dropped for it.
        if self.config.max_disk_bytes > 0 && self.segments.upload_counters().is_none() {
            let wal_bytes = self.counters.wal_bytes.load(Ordering::Relaxed);
            let mut total: u64 = catalog.segments.iter().map(|m| m.bytes).sum::<u64>() + wal_bytes;
            for day in &days {
                if total <= self.config.max_disk_bytes {
                    break;
                }
                let day_bytes: u64 = catalog
                    .segments
                    .iter()
                    .filter(|m| &m.day == day)
                    .map(|m| m.bytes)
                    .sum();
                total -= day_bytes;
                if !drop_days.contains(day) {
                    drop_days.push(day.clone());
                }
            }
        }
        if drop_days.is_empty() {
            return Ok(());
        }
        let mut next = catalog.clone();
        next.segments.retain(|m| !drop_days.contains(&m.day));
        next.quarantined.retain(|m| !drop_days.contains(&m.day));
        next.save(&self.catalog_path)?;
        let ranges = quarantined_ranges(&next);
        *catalog = next;
        {
            let mut view = self.view.write().expect("view lock");
            view.segments.retain(|s| !drop_days.contains(&s.meta.day));
            view.quarantined = ranges;
        }
        for day in &drop_days {
            tracing::info!(day, "retention drops a day");
            if let Err(e) = self.segments.delete_day(day) {
                tracing::warn!(day, error = %e, "cannot remove a dropped day's directory");
            }
        }
        self.counters
            .retention_dropped_days
            .fetch_add(drop_days.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}
