//! `<data_dir>/state/alerts.json`: cooldowns, counters and history, written atomically
//! (tmp + fsync + rename) so a restart neither re-fires what was cooling down nor loses the
//! history.

use std::io::Write;
use std::path::Path;

use crate::engine::Persisted;
use crate::AlertError;

/// The version of the file this code writes and reads.
const VERSION: u32 = 1;

pub(crate) fn load(path: &Path) -> Result<Option<Persisted>, AlertError> {
    let err = |message: String| AlertError::State {
        path: path.to_path_buf(),
        message,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(e.to_string())),
    };
    let p: Persisted = serde_json::from_str(&text).map_err(|e| err(e.to_string()))?;
    if p.version != VERSION {
        return Err(err(format!(
            "version {} is not the version {VERSION} this logyard reads",
            p.version
        )));
    }
    Ok(Some(p))
}

pub(crate) fn save(path: &Path, p: &Persisted) -> Result<(), AlertError> {
    let err = |e: std::io::Error| AlertError::State {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_vec(p).map_err(|e| AlertError::State {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    f.write_all(&text).map_err(err)?;
    f.sync_all().map_err(err)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(err)?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}
