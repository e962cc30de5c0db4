//! Setting types shared by the sources' configurations: durations, sizes, parse options.

use std::time::Duration;

use logyard_parse::{Format, ParserConfig, TimeFormat, TimeZone};
use serde::{Deserialize, Deserializer};

use crate::error::SourceError;

/// Deserialises a duration written as `500ms`, `1s`, `5m` (or a number of seconds).
pub(crate) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Secs(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Secs(s) => Ok(Duration::from_secs(s)),
        Raw::Text(t) => logyard_model::parse_duration(&t)
            .map(|ns| Duration::from_nanos(ns.max(0) as u64))
            .map_err(serde::de::Error::custom),
    }
}

/// Deserialises a size written as `64KiB`, `1MB`, `1MiB` (or a number of bytes).
pub(crate) fn size<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Bytes(usize),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Bytes(n) => Ok(n),
        Raw::Text(t) => parse_size(&t).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid size {t:?}: expected a number and a unit, as in 64KiB, 1MB, 1MiB"
            ))
        }),
    }
}

/// Parses `64KiB`, `1MB`, `2GiB`, `512` (bytes).
pub(crate) fn parse_size(text: &str) -> Option<usize> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num: usize = num.parse().ok()?;
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "kib" | "k" => 1 << 10,
        "mb" => 1_000_000,
        "mib" | "m" => 1 << 20,
        "gb" => 1_000_000_000,
        "gib" | "g" => 1 << 30,
        _ => return None,
    };
    num.checked_mul(mult)
}

/// A source's settings about its lines' time: `timezone`, `timestamp_format`,
/// `timestamp_field`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TimeSettings<'a> {
    /// The zone of stamps that carry none.
    pub timezone: Option<&'a str>,
    /// The layout of the stamps, in strftime syntax.
    pub format: Option<&'a str>,
    /// The field that holds the time.
    pub field: Option<&'a str>,
}

/// Applies a source's `format` and time settings over the binary's base parser settings
/// (grok parsers, redaction, `max_line_bytes` from `[limits]`).
pub(crate) fn parser_config(
    name: &str,
    base: &ParserConfig,
    format: Option<&str>,
    time: TimeSettings,
    default_format: Format,
) -> Result<ParserConfig, SourceError> {
    let mut cfg = base.clone();
    let wrap = |source| SourceError::Parse {
        name: name.to_string(),
        source,
    };
    cfg.format = match format {
        Some(f) => f.parse().map_err(wrap)?,
        None => default_format,
    };
    if let Some(tz) = time.timezone {
        cfg.timezone = tz.parse::<TimeZone>().map_err(wrap)?;
    }
    if let Some(f) = time.format {
        cfg.timestamp_format = Some(f.parse::<TimeFormat>().map_err(wrap)?);
    }
    if let Some(field) = time.field.filter(|f| !f.trim().is_empty()) {
        cfg.timestamp_field = Some(field.trim().to_string());
    }
    Ok(cfg)
}

/// The checkpoint file of the source named `source` under `state_dir`
/// (`checkpoints/<name>.json`, characters other than letters, digits, `-`, `_` and `.` as `_`).
pub(crate) fn checkpoint_path(state_dir: &std::path::Path, source: &str) -> std::path::PathBuf {
    let name: String = source
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    state_dir.join("checkpoints").join(format!("{name}.json"))
}
