//! Setting types shared by the sources' configurations: durations, sizes, parse options.

use std::time::Duration;

use logyard_parse::{Format, ParserConfig, TimeFormat, TimeZone};
use serde::{Deserialize, Deserializer};

use crate::error::SourceError;

/// Deserialises a duration written as `500ms`, `1s`, `5m` (or a number of seconds), as
/// [`logyard_model::units::Duration`] reads it.
pub(crate) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    logyard_model::units::Duration::deserialize(d).map(|x| x.0)
}

/// Deserialises a size written as `64KiB`, `1MB`, `10M` (or a number of bytes), as
/// [`logyard_model::units::Size`] reads it.
pub(crate) fn size<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let logyard_model::units::Size(n) = Deserialize::deserialize(d)?;
    usize::try_from(n).map_err(|_| serde::de::Error::custom(format!("size {n} is too large")))
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
