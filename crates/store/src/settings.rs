//! The `[store]` section of `logyard.toml`: its keys, their defaults (those of
//! [`StoreConfig::new`]) and their checks, and the [`StoreConfig`] they make for a data
//! directory. `docs/configuration.md` describes each key.

use std::num::NonZeroUsize;
use std::path::Path;
use std::time::Duration;

use logyard_model::units::Size;
use serde::{Deserialize, Deserializer};

use crate::{FsyncPolicy, StoreConfig};

/// `[store]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// Days to keep; 0 keeps data forever.
    pub retention_days: u32,
    /// Drop the oldest days above this size; 0 means no limit.
    pub max_disk_bytes: Size,
    /// When the WAL is fsynced: `batch`, `always` or `never`.
    pub fsync: FsyncPolicy,
    /// Keep the original text of entries as `raw` (read by the parsers, which make it).
    pub keep_raw: bool,
    /// Flush the memtable at least this often.
    #[serde(deserialize_with = "logyard_model::units::positive_duration")]
    pub flush_interval: Duration,
    /// ... or once it holds this much.
    pub flush_bytes: Size,
    /// Ingest waits while the memtable holds more than this.
    pub max_memtable_bytes: Size,
    /// Rows per block of a segment.
    pub block_rows: NonZeroUsize,
    /// The zstd level of segment files, 1 (fastest) to 22 (smallest files).
    #[serde(deserialize_with = "compression_level")]
    pub compression_level: i32,
    /// Merge a day's small segments once there are this many.
    pub merge_fanin: NonZeroUsize,
    /// Most bytes of decoded text columns kept for the next search; 0 keeps none.
    pub cache_bytes: Size,
}

impl Default for StoreSettings {
    fn default() -> StoreSettings {
        let c = StoreConfig::new("");
        StoreSettings {
            retention_days: c.retention_days,
            max_disk_bytes: Size(c.max_disk_bytes),
            fsync: c.fsync,
            keep_raw: false,
            flush_interval: c.flush_interval,
            flush_bytes: Size(c.flush_bytes as u64),
            max_memtable_bytes: Size(c.max_memtable_bytes as u64),
            block_rows: NonZeroUsize::new(c.block_rows).expect("a default above zero"),
            compression_level: c.compression_level,
            merge_fanin: NonZeroUsize::new(c.merge_fanin).expect("a default above zero"),
            cache_bytes: Size(c.cache_bytes),
        }
    }
}

impl StoreSettings {
    /// Returns the store's settings for `data_dir`.
    pub fn config(&self, data_dir: &Path) -> StoreConfig {
        let mut c = StoreConfig::new(data_dir);
        c.retention_days = self.retention_days;
        c.max_disk_bytes = self.max_disk_bytes.0;
        c.fsync = self.fsync;
        c.flush_interval = self.flush_interval;
        c.flush_bytes = usize::try_from(self.flush_bytes.0).unwrap_or(usize::MAX);
        c.max_memtable_bytes = usize::try_from(self.max_memtable_bytes.0).unwrap_or(usize::MAX);
        c.block_rows = self.block_rows.get();
        c.compression_level = self.compression_level;
        c.merge_fanin = self.merge_fanin.get();
        c.cache_bytes = self.cache_bytes.0;
        c
    }
}

/// Reads `batch`, `always` or `never`.
impl<'de> Deserialize<'de> for FsyncPolicy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<FsyncPolicy, D::Error> {
        let text = String::deserialize(d)?;
        match text.as_str() {
            "batch" => Ok(FsyncPolicy::Batch),
            "always" => Ok(FsyncPolicy::Always),
            "never" => Ok(FsyncPolicy::Never),
            other => Err(serde::de::Error::unknown_variant(
                other,
                &["batch", "always", "never"],
            )),
        }
    }
}

/// A zstd level from 1 to 22.
fn compression_level<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    let level = i64::deserialize(d)?;
    if (1..=22).contains(&level) {
        Ok(level as i32)
    } else {
        Err(serde::de::Error::custom(format!(
            "compression level {level} is out of range: use 1 (fastest) to 22 (smallest files)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_become_the_store_config_and_bad_values_are_refused() {
        let s: StoreSettings = toml::from_str(
            "retention_days = 3\nfsync = \"always\"\nflush_interval = \"250ms\"\nflush_bytes = \"1MiB\"\ncompression_level = 6\n",
        )
        .unwrap();
        let c = s.config(Path::new("/d"));
        assert_eq!(c.retention_days, 3);
        assert_eq!(c.fsync, FsyncPolicy::Always);
        assert_eq!(c.flush_interval, Duration::from_millis(250));
        assert_eq!(c.flush_bytes, 1 << 20);
        assert_eq!(c.compression_level, 6);
        assert_eq!(c.block_rows, StoreConfig::new("/d").block_rows);
        let defaults = StoreSettings::default().config(Path::new("/d"));
        assert_eq!(
            format!("{defaults:?}"),
            format!("{:?}", StoreConfig::new("/d"))
        );
        for bad in [
            "compression_level = 23",
            "flush_interval = \"0s\"",
            "fsync = \"sometimes\"",
            "block_rows = 0",
            "retention_dayz = 1",
        ] {
            assert!(toml::from_str::<StoreSettings>(bad).is_err(), "{bad}");
        }
    }
}
