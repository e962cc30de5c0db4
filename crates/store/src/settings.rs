//! The `[store]` and `[storage]` sections of `logyard.toml`: their keys, their defaults
//! (those of [`StoreConfig::new`]) and their checks, and the [`StoreConfig`] they make for
//! a data directory. `docs/configuration.md` describes each key.

use std::num::NonZeroUsize;
use std::path::Path;
use std::time::Duration;

use logyard_model::units::Size;
use serde::{Deserialize, Deserializer};

use crate::field_columns::FieldColumnRule;
use crate::{CacheLimits, Follow, FsyncPolicy, S3Config, Storage, StoreConfig, NODE_FOLDER};

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
    /// Most fields of a segment kept as columns of their own; 0 keeps every field in the
    /// `fields` column.
    pub field_columns: usize,
    /// A field gets a column when at least this share of a segment's rows hold it.
    #[serde(deserialize_with = "share")]
    pub field_column_min_share: f64,
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
            field_columns: c.field_columns.max,
            field_column_min_share: c.field_columns.min_share,
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
        c.field_columns = FieldColumnRule {
            max: self.field_columns,
            min_share: self.field_column_min_share,
        };
        c.merge_fanin = self.merge_fanin.get();
        c.cache_bytes = self.cache_bytes.0;
        c
    }
}

/// `[storage]`: where segment files live. `type = "local"` (the default) keeps them in the
/// data directory's `parts/`; `type = "s3"` puts every segment in a bucket
/// (`<prefix>/day=<YYYY-MM-DD>/seg-<id>.parquet` and `.idx`; an ingest node's under
/// `<prefix>/node=<id>/`, [`NodeRole`]) and reads it from there by byte ranges. The WAL, the
/// catalog and quarantine stay in the data directory.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "StorageKeys")]
pub struct StorageSettings {
    /// The bucket, for `type = "s3"`; `None` for the local folder.
    pub s3: Option<S3Config>,
    /// How much of the bucket's files the local disk keeps, for `type = "s3"`.
    pub cache: CacheLimits,
    /// A segment file waiting this long for its upload raises the system alert
    /// `storage-upload-lag` (`alert_after`, for `type = "s3"`).
    pub alert_after: Duration,
    /// How often a query node reads the nodes' manifests again (`refresh_interval`).
    pub refresh: Duration,
    /// The node's id (`node`), instead of the one its data directory makes: a node restarted
    /// on an empty disk with the same id takes its folder and segments back.
    pub node: Option<String>,
    /// How often a query node asks each node for its entries not in the bucket yet
    /// (`recent_interval`).
    pub recent_interval: Duration,
    /// The environment variable holding the token a query node sends to the nodes it asks
    /// (`node_token_env`), when they require tokens.
    pub node_token_env: Option<String>,
    /// Most bytes of rows of one node's segments not in the bucket yet that a query node
    /// holds in memory (`recent_max_bytes`).
    pub recent_max_bytes: u64,
    /// A PEM file of the authorities that sign the nodes' certificates, trusted by a query
    /// node besides the public ones (`node_ca_file`).
    pub node_ca_file: Option<std::path::PathBuf>,
}

/// What a server does with the bucket (`logyard serve --role`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NodeRole {
    /// One node that stores and serves: its segments under `[storage] prefix` itself.
    #[default]
    All,
    /// Stores what it is sent, under its own folder of the prefix (`node=<id>/`), and
    /// serves it too; alerting runs here.
    Ingest,
    /// Stores nothing: serves the segments of every node under the prefix, as their
    /// manifests list them.
    Query,
}

impl NodeRole {
    /// The role named on the command line: `all`, `ingest` or `query`.
    pub fn parse(name: &str) -> Result<NodeRole, String> {
        match name {
            "all" => Ok(NodeRole::All),
            "ingest" => Ok(NodeRole::Ingest),
            "query" => Ok(NodeRole::Query),
            other => Err(format!(
                "unknown role {other:?}: use all (one node), ingest or query"
            )),
        }
    }

    /// The role's name.
    pub fn name(self) -> &'static str {
        match self {
            NodeRole::All => "all",
            NodeRole::Ingest => "ingest",
            NodeRole::Query => "query",
        }
    }
}

/// Files of segments a merge replaced stay in the bucket for this many refresh intervals
/// of the query nodes ([`StoreConfig::replaced_grace`]).
pub const REPLACED_GRACE_REFRESHES: u32 = 12;

/// The default of `[storage] alert_after`.
pub const UPLOAD_ALERT_AFTER: Duration = Duration::from_secs(15 * 60);

/// The keys of `[storage]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct StorageKeys {
    #[serde(rename = "type")]
    kind: StorageKind,
    bucket: String,
    prefix: String,
    endpoint: String,
    region: String,
    local_cache_bytes: Option<Size>,
    local_days: Option<u32>,
    alert_after: Option<logyard_model::units::Duration>,
    request_timeout: Option<logyard_model::units::Duration>,
    refresh_interval: Option<logyard_model::units::Duration>,
    node: Option<String>,
    recent_interval: Option<logyard_model::units::Duration>,
    node_token_env: Option<String>,
    node_ca_file: Option<std::path::PathBuf>,
    recent_max_bytes: Option<Size>,
}

impl Default for StorageSettings {
    fn default() -> StorageSettings {
        StorageSettings {
            s3: None,
            cache: CacheLimits::default(),
            alert_after: UPLOAD_ALERT_AFTER,
            refresh: crate::REFRESH_INTERVAL,
            node: None,
            recent_interval: crate::RECENT_INTERVAL,
            node_token_env: None,
            node_ca_file: None,
            recent_max_bytes: crate::RECENT_MAX_BYTES,
        }
    }
}

/// `local` or `s3`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum StorageKind {
    #[default]
    Local,
    S3,
}

impl TryFrom<StorageKeys> for StorageSettings {
    type Error = String;

    fn try_from(keys: StorageKeys) -> Result<StorageSettings, String> {
        match keys.kind {
            StorageKind::Local => {
                let set: Vec<&str> = [
                    ("bucket", &keys.bucket),
                    ("prefix", &keys.prefix),
                    ("endpoint", &keys.endpoint),
                    ("region", &keys.region),
                ]
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, _)| *k)
                .chain(keys.local_cache_bytes.map(|_| "local_cache_bytes"))
                .chain(keys.local_days.map(|_| "local_days"))
                .chain(keys.alert_after.map(|_| "alert_after"))
                .chain(keys.request_timeout.map(|_| "request_timeout"))
                .chain(keys.refresh_interval.map(|_| "refresh_interval"))
                .chain(keys.node.as_ref().map(|_| "node"))
                .chain(keys.recent_interval.map(|_| "recent_interval"))
                .chain(keys.node_token_env.as_ref().map(|_| "node_token_env"))
                .chain(keys.node_ca_file.as_ref().map(|_| "node_ca_file"))
                .chain(keys.recent_max_bytes.map(|_| "recent_max_bytes"))
                .collect();
                if set.is_empty() {
                    Ok(StorageSettings::default())
                } else {
                    Err(format!(
                        "storage.{} is set but storage.type is \"local\": add type = \"s3\" to keep segments in a bucket, or remove it",
                        set.join(", storage.")
                    ))
                }
            }
            StorageKind::S3 if keys.bucket.trim().is_empty() => Err(
                "storage.type is \"s3\" but storage.bucket is missing: name the bucket that holds the segments".into(),
            ),
            StorageKind::S3 if keys.alert_after.is_some_and(|d| d.0.is_zero()) => Err(
                "storage.alert_after must be above zero (e.g. \"15m\")".into(),
            ),
            StorageKind::S3 if keys.request_timeout.is_some_and(|d| d.0.is_zero()) => Err(
                "storage.request_timeout must be above zero (e.g. \"60s\")".into(),
            ),
            StorageKind::S3 if keys.refresh_interval.is_some_and(|d| d.0.is_zero()) => Err(
                "storage.refresh_interval must be above zero (e.g. \"5s\")".into(),
            ),
            StorageKind::S3 if keys.recent_interval.is_some_and(|d| d.0.is_zero()) => Err(
                "storage.recent_interval must be above zero (e.g. \"1s\")".into(),
            ),
            StorageKind::S3 if keys.node.as_deref().is_some_and(|n| !valid_node(n)) => Err(format!(
                "storage.node {:?} is not a node id: use 1 to 64 letters, digits, '.', '_' or '-'",
                keys.node.unwrap_or_default()
            )),
            StorageKind::S3 => {
                let defaults = CacheLimits::default();
                Ok(StorageSettings {
                    s3: Some(S3Config {
                        bucket: keys.bucket,
                        prefix: keys.prefix,
                        endpoint: keys.endpoint,
                        region: keys.region,
                        request_timeout: keys
                            .request_timeout
                            .map_or(crate::s3::REQUEST_TIMEOUT, |d| d.0),
                    }),
                    cache: CacheLimits {
                        bytes: keys.local_cache_bytes.map_or(defaults.bytes, |s| s.0),
                        days: keys.local_days.unwrap_or(defaults.days),
                    },
                    alert_after: keys.alert_after.map_or(UPLOAD_ALERT_AFTER, |d| d.0),
                    refresh: keys
                        .refresh_interval
                        .map_or(crate::REFRESH_INTERVAL, |d| d.0),
                    node: keys.node,
                    recent_interval: keys
                        .recent_interval
                        .map_or(crate::RECENT_INTERVAL, |d| d.0),
                    node_token_env: keys.node_token_env,
                    node_ca_file: keys.node_ca_file,
                    recent_max_bytes: keys
                        .recent_max_bytes
                        .map_or(crate::RECENT_MAX_BYTES, |s| s.0),
                })
            }
        }
    }
}

impl StorageSettings {
    /// Sets where `config`'s store keeps its segments for a server of `role`: `all` in the
    /// prefix, `ingest` in its `node=<id>/` folder of it (the id of `config.data_dir`), a
    /// `query` node's nowhere (its own `parts/`, empty) while it follows the prefix. Fails
    /// for `ingest` and `query` without a bucket, which is what the nodes share.
    pub fn apply(&self, config: &mut StoreConfig, role: NodeRole) -> Result<(), String> {
        config.storage = self.storage();
        let Some(s3) = &self.s3 else {
            return match role {
                NodeRole::All => Ok(()),
                _ => Err(format!(
                    "--role {} needs [storage] type = \"s3\": the nodes share their segments through a bucket",
                    role.name()
                )),
            };
        };
        config.replaced_grace = self.refresh * REPLACED_GRACE_REFRESHES;
        if let (Some(node), false) = (&self.node, role == NodeRole::Query) {
            crate::storage::set_node_id(&config.data_dir.join("state"), node)
                .map_err(|e| e.to_string())?;
        }
        match role {
            NodeRole::All => {}
            NodeRole::Ingest => {
                let node = crate::node_id(&config.data_dir.join("state")).map_err(|e| {
                    format!(
                        "cannot read or make the node id in {}: {e}",
                        config.data_dir.display()
                    )
                })?;
                let mut own = s3.clone();
                own.prefix = node_prefix(&s3.prefix, &node);
                config.storage = Storage::S3(own, self.cache);
            }
            NodeRole::Query => {
                config.storage = Storage::Local;
                config.follow = Some(Follow {
                    bucket: s3.clone(),
                    refresh: self.refresh,
                    link: None,
                    recent_interval: self.recent_interval,
                    cache_bytes: self.cache.bytes,
                    recent_max_bytes: self.recent_max_bytes,
                });
            }
        }
        Ok(())
    }

    /// The store's [`Storage`].
    pub fn storage(&self) -> Storage {
        match &self.s3 {
            Some(config) => Storage::S3(config.clone(), self.cache),
            None => Storage::Local,
        }
    }
}

/// Reads `batch`, `always` or `never`.
/// Whether `node` may name a node (and its folder of the bucket).
fn valid_node(node: &str) -> bool {
    (1..=64).contains(&node.len())
        && node
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The folder of node `node` in `prefix`: `<prefix>/node=<node>`.
pub fn node_prefix(prefix: &str, node: &str) -> String {
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        format!("{NODE_FOLDER}{node}")
    } else {
        format!("{prefix}/{NODE_FOLDER}{node}")
    }
}

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

/// A share of rows, above 0 and at most 1.
fn share<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let share = f64::deserialize(d)?;
    if share > 0.0 && share <= 1.0 {
        Ok(share)
    } else {
        Err(serde::de::Error::custom(format!(
            "share {share} is out of range: use a number above 0 and at most 1 (0.05 is one row in 20)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_keys_name_a_bucket_or_nothing() {
        let s: StorageSettings = toml::from_str(
            "type = \"s3\"\nbucket = \"logs\"\nprefix = \"prod\"\nendpoint = \"http://127.0.0.1:9000\"\n",
        )
        .unwrap();
        let s3 = s.s3.unwrap();
        assert_eq!((s3.bucket.as_str(), s3.prefix.as_str()), ("logs", "prod"));
        assert_eq!(s3.region, "");
        assert_eq!(s.cache, CacheLimits::default());
        let s: StorageSettings = toml::from_str(
            "type = \"s3\"\nbucket = \"logs\"\nlocal_cache_bytes = \"2GiB\"\nlocal_days = 0\n",
        )
        .unwrap();
        assert_eq!(
            s.cache,
            CacheLimits {
                bytes: 2 << 30,
                days: 0
            }
        );
        assert_eq!(toml::from_str::<StorageSettings>("").unwrap().s3, None);
        for (bad, says) in [
            ("type = \"s3\"", "storage.bucket is missing"),
            (
                "bucket = \"logs\"",
                "storage.bucket is set but storage.type is",
            ),
            (
                "local_days = 3",
                "storage.local_days is set but storage.type is",
            ),
            ("type = \"gcs\"", "unknown variant"),
            (
                "type = \"s3\"\nbucket = \"b\"\nsecret_access_key = \"x\"",
                "unknown field",
            ),
        ] {
            let error = toml::from_str::<StorageSettings>(bad)
                .unwrap_err()
                .to_string();
            assert!(error.contains(says), "{bad}: {error}");
        }
    }

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
        let s: StoreSettings =
            toml::from_str("field_columns = 4\nfield_column_min_share = 0.5\n").unwrap();
        assert_eq!(
            s.config(Path::new("/d")).field_columns,
            FieldColumnRule {
                max: 4,
                min_share: 0.5
            }
        );
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
            "field_column_min_share = 0",
            "field_column_min_share = 1.5",
            "field_columns = -1",
        ] {
            assert!(toml::from_str::<StoreSettings>(bad).is_err(), "{bad}");
        }
    }
}
