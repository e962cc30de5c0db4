//! `[[rotate]]` tables of `logyard.toml`: [`RotateRuleConfig`] mirrors the keys users write,
//! [`RotateRuleConfig::build`] validates them into a [`RotateRule`].

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::daemon::DaemonOptions;
use crate::disk::DiskGuard;
use crate::error::RotateError;
use crate::rule::{
    parse_duration, parse_size, Compression, CreateSpec, DateExt, Interval, Method, RotateRule,
    Scripts,
};

/// A size written as a number of bytes or as text (`"10MB"`, `"64KiB"`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum SizeValue {
    /// Bytes.
    Bytes(u64),
    /// Text with a unit.
    Text(String),
}

impl SizeValue {
    fn bytes(&self) -> Result<u64, String> {
        match self {
            SizeValue::Bytes(b) => Ok(*b),
            SizeValue::Text(t) => parse_size(t),
        }
    }
}

/// The `create` key: `true`/`false`, or the mode and owner of the new file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum CreateConfig {
    /// `create = true` (rename, then create like the old file) or `false` (rename only).
    Enabled(bool),
    /// `create = { mode = "0640", owner = "app", group = "adm" }`.
    Spec(CreateSpecConfig),
}

/// The mode and owner of the file created after a rename.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSpecConfig {
    /// Octal permission bits, as `"0640"`.
    pub mode: Option<String>,
    /// User name or uid.
    pub owner: Option<String>,
    /// Group name or gid.
    pub group: Option<String>,
}

/// One `[[rotate]]` table, as written. Every key but `paths` is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateRuleConfig {
    /// A name for reports and metrics (default: the first path).
    pub name: Option<String>,
    /// Files or globs, as `["/var/log/myapp/*.log"]`.
    pub paths: Vec<String>,
    /// Rotate when bigger than this (`"10MB"`).
    pub size: Option<SizeValue>,
    /// ... or when the last rotation is older than this (`"1d"`).
    pub every: Option<String>,
    /// Rotate on `every` only when at least this big.
    pub minsize: Option<SizeValue>,
    /// Rotate when bigger than this even before `every` has passed.
    pub maxsize: Option<SizeValue>,
    /// Rotated files to keep (default 5).
    pub keep: Option<usize>,
    /// Delete rotated files older than this (`"30d"`).
    pub max_age: Option<String>,
    /// `gzip` (default), `zstd` or `none`.
    pub compress: Option<String>,
    /// Compression level (gzip 1–9, default 6; zstd 1–19, default 3).
    pub compress_level: Option<i32>,
    /// Keep the newest rotated file uncompressed until the next rotation.
    #[serde(default)]
    pub delaycompress: bool,
    /// Copy then truncate instead of rename + create.
    #[serde(default)]
    pub copytruncate: bool,
    /// Rename then create a new file (default true), with an optional mode and owner.
    pub create: Option<CreateConfig>,
    /// A missing file is not an error (default true).
    pub missingok: Option<bool>,
    /// Empty files are not rotated (default true).
    pub notifempty: Option<bool>,
    /// Dated names instead of numbers.
    #[serde(default)]
    pub dateext: bool,
    /// The date format of dated names (default `-%Y%m%d`).
    pub dateformat: Option<String>,
    /// Directory of rotated files, relative to the log's directory if relative.
    pub olddir: Option<String>,
    /// An extension kept at the end of rotated names (`.log`: `app.log` → `app.1.log`).
    pub extension: Option<String>,
    /// Shell command run before rotating (log path in `$1`).
    pub prerotate: Option<String>,
    /// Shell command run after rotating (log path in `$1`), as `"systemctl reload myapp"`.
    pub postrotate: Option<String>,
    /// Shell command run once before the rule rotates anything.
    pub firstaction: Option<String>,
    /// Shell command run once after the rule rotated something.
    pub lastaction: Option<String>,
    /// Run prerotate/postrotate once per rule rather than once per file.
    #[serde(default)]
    pub sharedscripts: bool,
}

impl RotateRuleConfig {
    /// Validates the table into a rule; errors name the key and what to write.
    pub fn build(&self) -> Result<RotateRule, RotateError> {
        let mut rule = RotateRule::new(self.paths.clone());
        if let Some(n) = &self.name {
            rule.name = n.clone();
        }
        let err = |message: String| RotateError::Config {
            rule: rule.name.clone(),
            message,
        };
        let size = |key: &str, v: &Option<SizeValue>| -> Result<Option<u64>, RotateError> {
            v.as_ref()
                .map(|s| s.bytes().map_err(|m| err(format!("{key}: {m}"))))
                .transpose()
        };
        rule.size = size("size", &self.size)?;
        rule.min_size = size("minsize", &self.minsize)?;
        rule.max_size = size("maxsize", &self.maxsize)?;
        if let Some(e) = &self.every {
            let d = parse_duration(e).map_err(|m| err(format!("every: {m}")))?;
            if d.is_zero() {
                return Err(err("every: must be above zero, as in \"1d\"".into()));
            }
            rule.every = Some(Interval::Every(d));
        }
        if let Some(k) = self.keep {
            rule.keep = k;
        }
        if let Some(a) = &self.max_age {
            rule.max_age = Some(parse_duration(a).map_err(|m| err(format!("max_age: {m}")))?);
        }
        rule.compression = match self.compress.as_deref().unwrap_or("gzip") {
            "gzip" => Compression::Gzip {
                level: self.compress_level.unwrap_or(6).clamp(0, 100) as u32,
            },
            "zstd" => Compression::Zstd {
                level: self.compress_level.unwrap_or(3),
            },
            "none" => Compression::None,
            other => {
                return Err(err(format!(
                    "compress = {other:?} is not known; use \"gzip\", \"zstd\" or \"none\""
                )))
            }
        };
        rule.compress_ext = rule.compression.default_ext().into();
        rule.delay_compress = self.delaycompress;
        rule.method = match (&self.create, self.copytruncate) {
            (Some(CreateConfig::Enabled(true)) | Some(CreateConfig::Spec(_)), true) => {
                return Err(err(
                    "create and copytruncate exclude each other; keep one".into()
                ))
            }
            (_, true) => Method::CopyTruncate,
            (Some(CreateConfig::Enabled(false)), false) => Method::Rename,
            (Some(CreateConfig::Spec(s)), false) => Method::Create(create_spec(s).map_err(err)?),
            (None | Some(CreateConfig::Enabled(true)), false) => {
                Method::Create(CreateSpec::default())
            }
        };
        rule.missing_ok = self.missingok.unwrap_or(true);
        rule.if_empty = !self.notifempty.unwrap_or(true);
        if self.dateext || self.dateformat.is_some() {
            rule.date_ext = Some(DateExt {
                format: self.dateformat.clone().unwrap_or_else(|| "-%Y%m%d".into()),
                yesterday: false,
            });
        }
        rule.olddir = self.olddir.as_ref().map(PathBuf::from);
        rule.extension = self.extension.clone();
        rule.scripts = Scripts {
            prerotate: self.prerotate.clone(),
            postrotate: self.postrotate.clone(),
            firstaction: self.firstaction.clone(),
            lastaction: self.lastaction.clone(),
            shared: self.sharedscripts,
        };
        rule.validate()?;
        Ok(rule)
    }
}

/// Settings of rotation as a whole, for a table such as `[rotation]` beside the
/// `[[rotate]]` rules.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateSettingsConfig {
    /// Time between two checks of the triggers in `serve` (default `"5m"`).
    pub interval: Option<String>,
    /// The state file (default `<data_dir>/state/rotate.json`).
    pub state_file: Option<PathBuf>,
    /// How long to wait for the collector to drain a renamed file (default `"10s"`).
    pub drain_timeout: Option<String>,
    /// Disk guard: bytes of archives (all rules) above which the oldest are compressed, then
    /// removed.
    pub max_archive_bytes: Option<SizeValue>,
    /// Disk guard: percentage of a filesystem used above which the oldest archives on it are
    /// compressed, then removed.
    pub max_used_percent: Option<f64>,
    /// A rule that has not succeeded for this long raises an alert (default `"24h"`).
    pub alert_after: Option<String>,
}

impl RotateSettingsConfig {
    /// Validates the settings into daemon options; `data_dir` anchors the default state file.
    pub fn build(&self, data_dir: &Path) -> Result<DaemonOptions, RotateError> {
        let err = |message: String| RotateError::Config {
            rule: "settings".into(),
            message,
        };
        let state = self
            .state_file
            .clone()
            .unwrap_or_else(|| data_dir.join("state").join("rotate.json"));
        let mut o = DaemonOptions::new(state);
        if let Some(i) = &self.interval {
            o.interval = parse_duration(i).map_err(|m| err(format!("interval: {m}")))?;
            if o.interval.is_zero() {
                return Err(err("interval: must be above zero, as in \"5m\"".into()));
            }
        }
        if let Some(t) = &self.drain_timeout {
            o.drain_timeout = parse_duration(t).map_err(|m| err(format!("drain_timeout: {m}")))?;
        }
        if let Some(t) = &self.alert_after {
            o.alert_after = parse_duration(t).map_err(|m| err(format!("alert_after: {m}")))?;
            if o.alert_after.is_zero() {
                return Err(err("alert_after: must be above zero, as in \"24h\"".into()));
            }
        }
        let bytes = self
            .max_archive_bytes
            .as_ref()
            .map(|b| {
                b.bytes()
                    .map_err(|m| err(format!("max_archive_bytes: {m}")))
            })
            .transpose()?;
        if let Some(p) = self.max_used_percent {
            if !(0.0..=100.0).contains(&p) {
                return Err(err(format!(
                    "max_used_percent = {p} is not a percentage; write a number from 0 to 100"
                )));
            }
        }
        if bytes.is_some() || self.max_used_percent.is_some() {
            o.guard = Some(DiskGuard {
                max_archive_bytes: bytes,
                max_used_percent: self.max_used_percent,
            });
        }
        Ok(o)
    }
}

fn create_spec(s: &CreateSpecConfig) -> Result<CreateSpec, String> {
    Ok(CreateSpec {
        mode: s.mode.as_deref().map(parse_mode).transpose()?,
        uid: s.owner.as_deref().map(crate::users::uid).transpose()?,
        gid: s.group.as_deref().map(crate::users::gid).transpose()?,
    })
}

/// Parses an octal mode such as `0640` or `640`.
pub(crate) fn parse_mode(text: &str) -> Result<u32, String> {
    u32::from_str_radix(text, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("mode {text:?} is not an octal mode; write it as \"0640\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RotateRuleConfig, String> {
        #[derive(Deserialize)]
        struct File {
            rotate: Vec<RotateRuleConfig>,
        }
        toml::from_str::<File>(text)
            .map(|f| f.rotate.into_iter().next().unwrap())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_documented_example_builds() {
        let c = parse(
            r#"
[[rotate]]
paths = ["/var/log/myapp/*.log"]
size = "10MB"
every = "1d"
keep = 5
max_age = "30d"
compress = "zstd"
delaycompress = false
copytruncate = false
postrotate = "systemctl reload myapp"
create = { mode = "0640", owner = "root" }
"#,
        )
        .unwrap();
        let r = c.build().unwrap();
        assert_eq!(r.size, Some(10_000_000));
        assert_eq!(r.keep, 5);
        assert_eq!(r.compress_ext, ".zst");
        assert_eq!(
            r.method,
            Method::Create(CreateSpec {
                mode: Some(0o640),
                uid: Some(0),
                gid: None
            })
        );
    }

    #[test]
    fn settings_build_daemon_options() {
        let s: RotateSettingsConfig =
            toml::from_str("interval = \"1m\"\nmax_archive_bytes = \"1GiB\"\n").unwrap();
        let o = s.build(Path::new("/data")).unwrap();
        assert_eq!(o.interval, std::time::Duration::from_secs(60));
        assert_eq!(o.state_path, Path::new("/data/state/rotate.json"));
        assert_eq!(o.guard.unwrap().max_archive_bytes, Some(1 << 30));
        assert_eq!(o.alert_after, std::time::Duration::from_secs(86_400));
        let s: RotateSettingsConfig = toml::from_str("alert_after = \"0s\"\n").unwrap();
        assert!(s.build(Path::new("/d")).is_err());
        let s: RotateSettingsConfig = toml::from_str("max_used_percent = 120.0\n").unwrap();
        assert!(s.build(Path::new("/d")).is_err());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let e = parse("[[rotate]]\npaths = [\"/x\"]\nkeeep = 3\n").unwrap_err();
        assert!(e.contains("keeep"), "{e}");
        let c = parse("[[rotate]]\npaths = [\"/x\"]\ncompress = \"lz4\"\n").unwrap();
        assert!(c.build().unwrap_err().to_string().contains("lz4"));
        let c = parse("[[rotate]]\npaths = [\"/x\"]\nsize = \"ten\"\n").unwrap();
        assert!(c.build().unwrap_err().to_string().contains("size"));
        let c = parse("[[rotate]]\npaths = []\n").unwrap();
        assert!(c.build().is_err());
    }
}
