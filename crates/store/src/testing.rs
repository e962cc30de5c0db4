//! For the tests of the crates that read the store: the segment directory chosen by the
//! environment, so that one suite runs over each ([`storage_for`]). Compiled with the
//! `testing` feature only.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::dir::MemoryDir;
use crate::storage::Storage;
use crate::tier::CacheLimits;

/// The variable that chooses: unset or `local`, `memory` or `tiered`.
pub const VARIABLE: &str = "LOGYARD_TEST_STORAGE";

/// The [`Storage`] of a test store whose data directory is `data_dir`, by
/// `LOGYARD_TEST_STORAGE`:
///
/// - unset or `local`: the data directory's `parts/`;
/// - `memory`: a [`MemoryDir`] of that data directory (the same one each time it is opened),
///   read by byte ranges as a bucket is;
/// - `tiered`: that memory directory as the bucket behind `parts/`, with no local cache, so
///   that files leave the disk once uploaded.
///
/// Panics on any other value, so that a misspelt variable never runs the local suite again.
pub fn storage_for(data_dir: &Path) -> Storage {
    static BUCKETS: Mutex<Option<HashMap<PathBuf, MemoryDir>>> = Mutex::new(None);
    let bucket = || {
        let mut buckets = BUCKETS.lock().expect("buckets lock");
        let dir = buckets
            .get_or_insert_with(HashMap::new)
            .entry(data_dir.to_path_buf())
            .or_default()
            .clone();
        Arc::new(dir)
    };
    match std::env::var(VARIABLE).as_deref() {
        Err(_) | Ok("" | "local") => Storage::Local,
        Ok("memory") => Storage::Dir(bucket()),
        Ok("tiered") => Storage::Tiered(bucket(), CacheLimits { bytes: 0, days: 0 }),
        Ok(other) => panic!("{VARIABLE}={other}: use local, memory or tiered"),
    }
}
