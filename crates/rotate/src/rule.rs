//! The built, validated form of a rotation rule, shared by `[[rotate]]` tables and
//! logrotate configuration blocks.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::RotateError;

/// The compression applied to rotated files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Rotated files stay as they are.
    None,
    /// gzip (`.gz`), with a level from 1 to 9.
    Gzip {
        /// The compression level.
        level: u32,
    },
    /// zstd (`.zst`), with a level from 1 to 19.
    Zstd {
        /// The compression level.
        level: i32,
    },
}

impl Compression {
    /// Returns the usual file extension with its dot (`.gz`, `.zst`), empty for `None`.
    pub fn default_ext(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip { .. } => ".gz",
            Compression::Zstd { .. } => ".zst",
        }
    }

    /// Returns the name used in configuration (`gzip`, `zstd`, `none`).
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip { .. } => "gzip",
            Compression::Zstd { .. } => "zstd",
        }
    }
}

/// When a file is old enough to rotate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    /// When at least this long has passed since the last rotation (`every = "1d"`).
    Every(Duration),
    /// When the hour changed since the last rotation (logrotate `hourly`).
    Hourly,
    /// When the calendar day changed (logrotate `daily`).
    Daily,
    /// When a new week began or 7 days passed (logrotate `weekly`).
    Weekly,
    /// When the month changed (logrotate `monthly`).
    Monthly,
    /// When the year changed (logrotate `yearly`).
    Yearly,
}

/// How the live file is turned into a rotated one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// Rename the file, then create a new empty one (logrotate `create`).
    Create(CreateSpec),
    /// Rename the file and create nothing: the application creates it (logrotate `nocreate`).
    Rename,
    /// Copy the file, then truncate it in place (logrotate `copytruncate`).
    CopyTruncate,
    /// Copy the file and leave it as it is (logrotate `copy`).
    Copy,
}

/// The mode and owner of the file created after a rename; `None` keeps the old file's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateSpec {
    /// Permission bits, such as `0o640`.
    pub mode: Option<u32>,
    /// Owner uid.
    pub uid: Option<u32>,
    /// Group gid.
    pub gid: Option<u32>,
}

/// Rotated names carry a date instead of a number (logrotate `dateext`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateExt {
    /// A strftime format using `%Y %m %d %H %M %S %s` (default `-%Y%m%d`).
    pub format: String,
    /// Use yesterday's date (logrotate `dateyesterday`).
    pub yesterday: bool,
}

/// Shell commands run around a rotation, with `sh -c`; the log path is `$1`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scripts {
    /// Before a file is rotated (once per rule with `shared`).
    pub prerotate: Option<String>,
    /// After a file is rotated, before it is compressed (once per rule with `shared`).
    pub postrotate: Option<String>,
    /// Once, before the first file of the rule is rotated.
    pub firstaction: Option<String>,
    /// Once, after the last file of the rule is rotated.
    pub lastaction: Option<String>,
    /// Run prerotate/postrotate once per rule instead of once per file (`sharedscripts`).
    pub shared: bool,
}

/// A validated rotation rule: which files, when, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotateRule {
    /// A name for reports and metrics (the first path, or `file:line` of its block).
    pub name: String,
    /// Paths or glob patterns of the live files.
    pub paths: Vec<String>,
    /// Rotate when the file is at least this many bytes.
    pub size: Option<u64>,
    /// Rotate when the interval has passed since the last rotation.
    pub every: Option<Interval>,
    /// With a time trigger, rotate only files of at least this many bytes.
    pub min_size: Option<u64>,
    /// Rotate files bigger than this even before the interval has passed.
    pub max_size: Option<u64>,
    /// Number of rotated files to keep (0: rotated files are removed).
    pub keep: usize,
    /// Remove rotated files whose modification time is older than this.
    pub max_age: Option<Duration>,
    /// Compression of rotated files.
    pub compression: Compression,
    /// Extension of compressed files, with its dot.
    pub compress_ext: String,
    /// Leave the newest rotated file uncompressed until the next rotation.
    pub delay_compress: bool,
    /// How the live file is rotated.
    pub method: Method,
    /// A missing file is not an error.
    pub missing_ok: bool,
    /// Empty files are rotated too.
    pub if_empty: bool,
    /// Dated names instead of numbers.
    pub date_ext: Option<DateExt>,
    /// An extension kept at the end of rotated names (`app.log` → `app.1.log`).
    pub extension: Option<String>,
    /// The directory of rotated files, relative to the live file's directory if relative.
    pub olddir: Option<PathBuf>,
    /// The first number of numbered names (logrotate `start`, default 1).
    pub start: u64,
    /// Shell commands around the rotation.
    pub scripts: Scripts,
}

impl RotateRule {
    /// Returns a rule for `paths` with logyard's defaults: no trigger, keep 5, gzip,
    /// rename and create.
    pub fn new(paths: Vec<String>) -> RotateRule {
        RotateRule {
            name: paths.first().cloned().unwrap_or_default(),
            paths,
            size: None,
            every: None,
            min_size: None,
            max_size: None,
            keep: 5,
            max_age: None,
            compression: Compression::Gzip { level: 6 },
            compress_ext: ".gz".into(),
            delay_compress: false,
            method: Method::Create(CreateSpec::default()),
            missing_ok: true,
            if_empty: false,
            date_ext: None,
            extension: None,
            olddir: None,
            start: 1,
            scripts: Scripts::default(),
        }
    }

    /// Checks the rule's invariants; the builders call it.
    pub fn validate(&self) -> Result<(), RotateError> {
        let err = |message: String| {
            Err(RotateError::Config {
                rule: self.name.clone(),
                message,
            })
        };
        if self.paths.is_empty() || self.paths.iter().any(|p| p.trim().is_empty()) {
            return err(
                "paths is empty; list files or globs, as in paths = [\"/var/log/app/*.log\"]"
                    .into(),
            );
        }
        for p in &self.paths {
            if let Err(e) = glob::Pattern::new(p) {
                return err(format!(
                    "bad glob {p:?}: {e}; escape [ ] * ? with [[] [*] [?]"
                ));
            }
        }
        if let Some(d) = &self.date_ext {
            check_date_format(&d.format).or_else(err)?;
        }
        if let Compression::Gzip { level } = self.compression {
            if level > 9 {
                return err(format!("gzip level {level} is out of range; use 1 to 9"));
            }
        }
        if let Compression::Zstd { level } = self.compression {
            if !(1..=22).contains(&level) {
                return err(format!("zstd level {level} is out of range; use 1 to 22"));
            }
        }
        if self.compression != Compression::None && self.compress_ext.is_empty() {
            return err("compression extension is empty; use .gz or .zst".into());
        }
        if let Some(ext) = &self.extension {
            if ext.contains('/') {
                return err(format!(
                    "extension {ext:?} contains '/'; write an extension like .log"
                ));
            }
        }
        Ok(())
    }

    /// Returns the compression extension in use, empty when rotated files are not compressed.
    pub fn active_compress_ext(&self) -> &str {
        if self.compression == Compression::None {
            ""
        } else {
            &self.compress_ext
        }
    }
}

pub use logyard_model::units::parse_size;

/// Parses a duration such as `30s`, `12h`, `30d`, `2w`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let ns = logyard_model::parse_duration(text).map_err(|e| e.to_string())?;
    u64::try_from(ns)
        .map(Duration::from_nanos)
        .map_err(|_| format!("invalid duration {text:?}: negative"))
}

/// Checks that a dateext format uses only the specifiers logyard (and logrotate) know.
pub(crate) fn check_date_format(format: &str) -> Result<(), String> {
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c == '/' {
            return Err(format!("dateformat {format:?} contains '/'"));
        }
        if c == '%' {
            match chars.next() {
                Some('Y' | 'm' | 'd' | 'H' | 'M' | 'S' | 's' | 'V') => {}
                other => {
                    return Err(format!(
                        "dateformat {format:?}: %{} is not supported; use %Y %m %d %H %M %S %V %s",
                        other.map(String::from).unwrap_or_default()
                    ))
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("100k").unwrap(), 102_400);
        assert_eq!(parse_size("10M").unwrap(), 10 << 20);
        assert_eq!(
            parse_size("10m").unwrap(),
            10 << 20,
            "as logyard.toml reads it"
        );
        assert_eq!(parse_size("10MB").unwrap(), 10_000_000);
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("512").unwrap(), 512);
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86400));
        assert!(parse_duration("soon").is_err());
    }
}
