//! The journald source: the systemd journal, read through `journalctl`.
//!
//! `[[sources]] type = "journald"`: see [`JournaldConfig`]. The source runs
//! `journalctl --output=json --all --follow --merge --no-tail` (with `--directory` for
//! journal files of another host, and `--unit` per unit of the filter), as the SSH source
//! runs OpenSSH's client, and turns each entry into a record (see [`entry`]). A batch's last
//! `__CURSOR` is handed to the sink with the batch, in the same durable write (see
//! the `checkpoint` module); on start the source goes on `--after-cursor` it, so that entries are
//! stored exactly once across restarts and crashes. When journalctl exits or cannot be run
//! the source says so in its status and starts it again after a wait that doubles up to
//! `restart_wait`.

mod checkpoint;
pub mod entry;
mod follow;

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::error::SourceError;
use crate::file::StartAt;
use crate::settings::{duration, size, BatchSettings};
use crate::status::StatusHandle;
use crate::{Source, SourceContext};

/// The `[[sources]]` keys of `type = "journald"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournaldConfig {
    /// The source's name (checkpoint key and metric label); the type by default.
    #[serde(default)]
    pub name: Option<String>,
    /// Units whose entries are collected (`journalctl --unit`, globs allowed, `.service`
    /// implied); empty: every entry.
    #[serde(default)]
    pub units: Vec<String>,
    /// A folder of journal files to read instead of this host's journal
    /// (`journalctl --directory`).
    #[serde(default)]
    pub directory: Option<PathBuf>,
    /// The journalctl program (default `journalctl`, found on the PATH).
    #[serde(default = "default_journalctl")]
    pub journalctl: PathBuf,
    /// Where the first start begins, when there is no cursor yet: `end` (default) or
    /// `beginning` (every entry the journal holds).
    #[serde(default)]
    pub start_at: StartAt,
    /// Journal fields kept as record fields besides `_PID`, `_SYSTEMD_UNIT`, `_HOSTNAME`,
    /// `_COMM`, `SYSLOG_IDENTIFIER` and `_TRANSPORT`.
    #[serde(default)]
    pub keep_fields: Vec<String>,
    /// `batch_lines`, `max_batch_bytes`, `batch_wait`.
    #[serde(flatten)]
    pub batch: BatchSettings,
    /// Longer messages are cut and marked `truncated` (default: `[limits] max_line_bytes`).
    #[serde(default, deserialize_with = "opt_size")]
    pub max_line_bytes: Option<usize>,
    /// A longer line of journalctl's output (one entry as JSON) is skipped and counted as
    /// an error (default `4MiB`).
    #[serde(default = "default_max_entry", deserialize_with = "size")]
    pub max_entry_bytes: usize,
    /// The longest wait before journalctl is started again after it exited (default `30s`;
    /// the first wait is 1 s, then it doubles).
    #[serde(default = "thirty_seconds", deserialize_with = "duration")]
    pub restart_wait: Duration,
}

fn default_journalctl() -> PathBuf {
    PathBuf::from("journalctl")
}
fn default_max_entry() -> usize {
    4 << 20
}
fn thirty_seconds() -> Duration {
    Duration::from_secs(30)
}
fn opt_size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    size(d).map(Some)
}

impl Default for JournaldConfig {
    fn default() -> Self {
        JournaldConfig {
            name: None,
            units: Vec::new(),
            directory: None,
            journalctl: default_journalctl(),
            start_at: StartAt::End,
            keep_fields: Vec::new(),
            batch: BatchSettings::default(),
            max_line_bytes: None,
            max_entry_bytes: default_max_entry(),
            restart_wait: thirty_seconds(),
        }
    }
}

impl JournaldConfig {
    /// Checks the settings.
    pub fn validate(&self, name: &str) -> Result<(), SourceError> {
        let bad = |r: String| Err(SourceError::config(name, r));
        for u in &self.units {
            if u.is_empty() || u.starts_with('-') || u.contains(['\0', '\n']) {
                return bad(format!(
                    "`units`: {u:?} is not a unit name (such as \"nginx.service\" or \"nginx\")"
                ));
            }
        }
        for f in &self.keep_fields {
            let ok = !f.is_empty()
                && f.len() <= 64
                && f.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
            if !ok {
                return bad(format!(
                    "`keep_fields`: {f:?} is not a journal field name (upper-case letters, \
                     digits and `_`, such as \"_UID\")"
                ));
            }
        }
        if self.journalctl.as_os_str().is_empty() {
            return bad("`journalctl` is empty: give the program's path or name".into());
        }
        if self.batch.batch_lines == 0 {
            return bad("`batch_lines` must be at least 1".into());
        }
        if self.batch.max_batch_bytes == 0 {
            return bad("`max_batch_bytes` must be at least 1".into());
        }
        if self.max_entry_bytes < 1024 {
            return bad("`max_entry_bytes` must be at least 1KiB".into());
        }
        if self.max_line_bytes == Some(0) {
            return bad("`max_line_bytes` must be at least 1".into());
        }
        for (key, d) in [
            ("batch_wait", self.batch.batch_wait),
            ("restart_wait", self.restart_wait),
        ] {
            if d.is_zero() {
                return bad(format!("`{key}` must be longer than 0"));
            }
        }
        Ok(())
    }

    /// Returns the records' `source`: `journald`, or `journald:<directory>`.
    pub fn source_label(&self) -> String {
        match &self.directory {
            Some(d) => format!("journald:{}", d.display()),
            None => "journald".to_string(),
        }
    }
}

/// Collects the systemd journal; see the module documentation.
pub struct JournaldSource {
    name: String,
    cfg: JournaldConfig,
    status: StatusHandle,
}

impl JournaldSource {
    /// Checks the configuration and builds the source.
    pub fn new(name: &str, cfg: JournaldConfig) -> Result<JournaldSource, SourceError> {
        cfg.validate(name)?;
        Ok(JournaldSource {
            name: name.to_string(),
            cfg,
            status: StatusHandle::new(name, "journald"),
        })
    }
}

impl Source for JournaldSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "journald"
    }

    fn status(&self) -> StatusHandle {
        self.status.clone()
    }

    fn run(self: Box<Self>, ctx: SourceContext) -> Result<(), SourceError> {
        follow::run(&self.name, &self.cfg, &self.status, &ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_key_and_refuses_unknown_ones() {
        let c: crate::SourceConfig = toml::from_str(
            "type = \"journald\"\nname = \"j\"\nunits = [\"nginx.service\", \"cron\"]\n\
             directory = \"/var/log/journal/remote\"\njournalctl = \"/usr/bin/journalctl\"\n\
             start_at = \"beginning\"\nkeep_fields = [\"_UID\"]\nbatch_lines = 10\n\
             max_batch_bytes = \"1MiB\"\n\
             batch_wait = \"1s\"\nmax_line_bytes = \"64KiB\"\nmax_entry_bytes = \"1MiB\"\n\
             restart_wait = \"5s\"\n",
        )
        .unwrap();
        let crate::SourceConfig::Journald(j) = &c else {
            panic!("not journald: {c:?}")
        };
        assert_eq!(j.units, ["nginx.service", "cron"]);
        assert_eq!(j.start_at, StartAt::Beginning);
        assert_eq!(j.max_line_bytes, Some(64 << 10));
        assert_eq!(j.max_entry_bytes, 1 << 20);
        assert_eq!(j.batch.max_batch_bytes, 1 << 20);
        assert_eq!(j.restart_wait, Duration::from_secs(5));
        assert_eq!(j.source_label(), "journald:/var/log/journal/remote");
        assert_eq!(c.kind(), "journald");
        assert_eq!(c.explicit_name(), Some("j"));
        assert!(c.build("j").is_ok());
        let d: crate::SourceConfig = toml::from_str("type = \"journald\"\n").unwrap();
        assert_eq!(d, crate::SourceConfig::Journald(JournaldConfig::default()));
        let err = toml::from_str::<crate::SourceConfig>("type = \"journald\"\nunit = [\"x\"]\n")
            .unwrap_err();
        assert!(err.to_string().contains("unit"), "{err}");
    }

    #[test]
    fn refuses_bad_settings() {
        let cases: [fn(&mut JournaldConfig); 6] = [
            |c| c.units = vec!["-x".into()],
            |c| c.units = vec![String::new()],
            |c| c.keep_fields = vec!["lower".into()],
            |c| c.batch.batch_lines = 0,
            |c| c.max_entry_bytes = 10,
            |c| c.restart_wait = Duration::ZERO,
        ];
        for (i, set) in cases.iter().enumerate() {
            let mut c = JournaldConfig::default();
            set(&mut c);
            assert!(JournaldSource::new("j", c).is_err(), "case {i} accepted");
        }
    }
}
