//! `logyard backup` (asks a running server for a consistent copy of its data) and `logyard
//! restore` (checks a backup and brings it back into a new data directory, offline).

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::cli::{BackupArgs, RestoreArgs};

/// Runs `POST /api/admin/backup` on a server and prints its report as a table.
pub fn backup(args: BackupArgs) -> anyhow::Result<()> {
    // A relative directory is the command's, made absolute: the server resolves nothing.
    let to = std::path::absolute(&args.to)
        .with_context(|| format!("--to {}: cannot make it absolute", args.to.display()))?;
    let url = format!("{}/api/admin/backup", args.server.trim_end_matches('/'));
    let request = crate::cli::http()
        .timeout(None)
        .build()?
        .post(&url)
        .json(&serde_json::json!({ "to": to.display().to_string() }));
    let (status, body) = crate::cli::json_answer(crate::cli::send(request, &args.server)?)?;
    if !status.is_success() {
        let message = crate::cli::error_message(&body);
        let hint = match status.as_u16() {
            401 => " (give an administrator's token with --token or LOGYARD_TOKEN)",
            403 => " (a backup needs a token of the role admin)",
            _ => "",
        };
        anyhow::bail!("the server answered {status}: {message}{hint}");
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{body}")?;
        return Ok(());
    }
    let n = |k: &str| body[k].as_u64().unwrap_or(0).to_string();
    let rows = vec![
        vec!["to".into(), body["to"].as_str().unwrap_or("").to_string()],
        vec!["segments".into(), n("segments")],
        vec!["segment rows".into(), n("segment_rows")],
        vec!["wal files".into(), n("wal_files")],
        vec!["wal rows".into(), n("wal_rows")],
        vec!["files".into(), n("files")],
        vec![
            "bytes".into(),
            format!(
                "{} ({})",
                n("bytes"),
                human(body["bytes"].as_u64().unwrap_or(0))
            ),
        ],
        vec!["linked files".into(), n("linked_files")],
        vec!["copied files".into(), n("copied_files")],
        vec!["quarantined left out".into(), n("quarantined_left_out")],
        vec![
            "elapsed".into(),
            format!("{:.0} ms", body["elapsed_ms"].as_f64().unwrap_or(0.0)),
        ],
    ];
    out.write_all(crate::table::render(&["BACKUP", "VALUE"], &rows).as_bytes())?;
    Ok(())
}

/// Restores a backup into a new data directory, then opens it once to prove it recovers.
pub fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    let manifest = logyard_store::backup::restore(&args.from, &args.data)?;
    let mut config = logyard_store::StoreConfig::new(&args.data);
    // The proof drops nothing: the server applies its own retention when it starts.
    config.retention_days = 0;
    config.max_disk_bytes = 0;
    let store = logyard_store::Store::open(config).with_context(|| {
        format!(
            "the backup was copied to {} but does not open; keep the backup, remove {} and report this",
            args.data.display(),
            args.data.display()
        )
    })?;
    let stats = store.stats();
    store.close();
    drop(store);
    let rows = vec![
        vec!["from".into(), args.from.display().to_string()],
        vec!["data".into(), args.data.display().to_string()],
        vec!["backup created".into(), manifest.created.clone()],
        vec![
            "written by".into(),
            format!("logyard {}", manifest.logyard_version),
        ],
        vec!["files".into(), manifest.files.len().to_string()],
        vec![
            "bytes".into(),
            format!("{} ({})", manifest.bytes(), human(manifest.bytes())),
        ],
        vec!["segments".into(), stats.segments.to_string()],
        vec![
            "wal rows replayed".into(),
            stats.wal_replayed_records.to_string(),
        ],
        vec![
            "rows".into(),
            (stats.segment_rows + stats.memtable_rows).to_string(),
        ],
    ];
    let mut out = std::io::stdout().lock();
    out.write_all(crate::table::render(&["RESTORE", "VALUE"], &rows).as_bytes())?;
    writeln!(
        out,
        "start the server on it: logyard serve --data {}",
        shown(&args.data)
    )?;
    Ok(())
}

fn shown(p: &Path) -> String {
    p.display().to_string()
}

/// Bytes in binary units, one decimal.
fn human(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", units[i])
    }
}
