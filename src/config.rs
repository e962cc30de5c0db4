//! The configuration file: `logyard.toml`, read strictly.
//!
//! [`RawConfig`] mirrors the file (every key optional, defaults filled in); an unknown key, a
//! wrong type or a bad value is an error that names the file, the line and what to write.
//! Each section's keys, defaults and checks belong to the crate it configures (e.g.
//! `logyard_store::StoreSettings`, `logyard_api::ServerSettings`); this file composes them,
//! and [`RawConfig::store_config`] and friends hand each crate its settings.
//! `docs/configuration.md` is the reference of every key.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    /// `[server]`.
    pub server: logyard_api::ServerSettings,
    /// `[store]`.
    pub store: logyard_store::StoreSettings,
    /// `[storage]`: where segment files live.
    pub storage: logyard_store::StorageSettings,
    /// `[limits]`.
    pub limits: logyard_api::LimitsSettings,
    /// `[query]`.
    pub query: logyard_sql::QuerySettings,
    /// `[[sources]]`: where logs are collected from.
    pub sources: Vec<logyard_sources::SourceConfig>,
    /// `[[parsers]]`.
    pub parsers: Vec<logyard_parse::GrokDef>,
    /// `[redact]`.
    pub redact: logyard_parse::RedactSettings,
    /// The redaction counts of every parser this configuration builds (not a key of the file).
    #[serde(skip)]
    pub redaction_counts: logyard_parse::RedactionCounts,
    /// `[[rotate]]`: the log files to rotate.
    pub rotate: Vec<logyard_rotate::RotateRuleConfig>,
    /// `[rotation]`: settings of rotation as a whole.
    pub rotation: logyard_rotate::RotateSettingsConfig,
    /// `[report]`.
    pub report: logyard_report::ReportConfig,
    /// `[metrics]`.
    pub metrics: logyard_api::MetricsSettings,
    /// `[alerts]`, `[[alerts.rules]]`, `[[alerts.notifiers]]`.
    pub alerts: logyard_alert::AlertsConfig,
    /// `[auth]`, `[[auth.tokens]]`.
    pub auth: logyard_api::AuthConfig,
}

impl RawConfig {
    /// Reads a configuration file, or returns the defaults for `None`.
    pub fn load(path: Option<&Path>) -> anyhow::Result<RawConfig> {
        let Some(path) = path else {
            return Ok(RawConfig::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
        let config = Self::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        config
            .validate()
            .with_context(|| format!("{}", path.display()))?;
        Ok(config)
    }

    /// Parses configuration text; the error names the line and what is accepted.
    pub fn parse(text: &str) -> Result<RawConfig, String> {
        toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            let detail = e.message().to_string();
            let hint = if detail.contains("unknown field") {
                "\nhint: check the spelling; the keys are listed in docs/configuration.md"
            } else {
                "\nhint: the accepted values are described in docs/configuration.md"
            };
            match line {
                Some(l) => {
                    let source = text.lines().nth(l - 1).unwrap_or("").trim_end();
                    format!("line {l}: {detail}\n{l:>4} | {source}{hint}")
                }
                None => format!("{detail}{hint}"),
            }
        })
    }

    /// Returns the store settings.
    pub fn store_config(&self) -> logyard_store::StoreConfig {
        let mut config = self.store.config(&self.server.data_dir);
        config.storage = self.storage.storage();
        config
    }

    /// Builds the `[[rotate]]` rules and the `[rotation]` settings; an error names the rule
    /// and the key.
    pub fn rotation(
        &self,
    ) -> anyhow::Result<(
        Vec<logyard_rotate::RotateRule>,
        logyard_rotate::DaemonOptions,
    )> {
        let rules = self
            .rotate
            .iter()
            .map(|r| r.build())
            .collect::<Result<Vec<_>, _>>()
            .context("invalid [[rotate]] rule")?;
        let options = self
            .rotation
            .build(&self.server.data_dir)
            .context("invalid [rotation] settings")?;
        Ok((rules, options))
    }

    /// Returns the parser settings of `[[parsers]]`, `[redact]` and the limits, for a format
    /// and a time zone.
    pub fn parser_config(
        &self,
        format: logyard_parse::Format,
        timezone: logyard_parse::TimeZone,
    ) -> logyard_parse::ParserConfig {
        logyard_parse::ParserConfig {
            format,
            timezone,
            grok: self.parsers.clone(),
            redact: self.redact.config(self.redaction_counts.clone()),
            max_line_bytes: self.limits.max_line_bytes(),
            keep_raw: self.store.keep_raw,
            ..logyard_parse::ParserConfig::default()
        }
    }

    /// Checks what serde cannot: the settings that are built, not only read.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.rotation()?;
        logyard_sources::build_all(&self.sources).context("invalid [[sources]] entry")?;
        logyard_parse::Parser::new(self.parser_config(
            logyard_parse::Format::Auto,
            logyard_parse::TimeZone::default(),
        ))
        .context("invalid [[parsers]] or [redact] pattern")?;
        self.report_schedule()
            .context("invalid [report] settings")?;
        self.alerting()?;
        self.auth()?;
        self.server_tls()?;
        Ok(())
    }

    /// Returns the HTTPS setup of `[server] tls_cert`, `tls_key` and `tls_client_ca`, with the
    /// files read: `None` without them; an error names the file or the missing key.
    pub fn server_tls(&self) -> anyhow::Result<Option<logyard_tls::ServerTls>> {
        self.server.tls().map_err(anyhow::Error::msg)
    }

    /// Returns the tokens of `[[auth.tokens]]`, each with its secret's hash read from the
    /// file, the environment or the configuration; an error names the token, never a secret.
    pub fn auth(&self) -> anyhow::Result<logyard_api::auth::Auth> {
        self.auth
            .build(self.report.suspicious_failures)
            .map_err(anyhow::Error::msg)
    }

    /// Returns what a report looks at; an invalid `database_filter` is an error.
    pub fn report_settings(&self) -> anyhow::Result<logyard_report::ReportSettings> {
        self.report.settings().map_err(anyhow::Error::msg)
    }

    /// Returns the daily report's schedule, or `None` without `daily_at`.
    pub fn report_schedule(&self) -> anyhow::Result<Option<logyard_report::ScheduleSettings>> {
        self.report
            .schedule(&self.server.data_dir, self.query_settings())
            .map_err(anyhow::Error::msg)
    }

    /// Builds the alert rules and notifiers; an error names the rule, the key or the query
    /// position.
    pub fn alerting(&self) -> anyhow::Result<logyard_alert::Built> {
        self.alerts
            .build(&self.query_settings())
            .map_err(|e| anyhow::anyhow!("invalid [alerts] configuration: {e}"))
    }

    /// Returns the budgets of one query.
    pub fn query_settings(&self) -> logyard_query::Settings {
        self.query.settings(self.limits.max_regex_bytes())
    }

    /// Returns how the SQL threads are set up.
    pub fn sql_pool(&self) -> logyard_sql::PoolConfig {
        self.query.pool()
    }

    /// Returns the API's request limits.
    pub fn limits(&self) -> logyard_api::Limits {
        self.limits.limits()
    }

    /// Returns the settings of the server's connections.
    pub fn server_options(&self) -> logyard_api::ServerOptions {
        self.server.options()
    }

    /// Returns the `Host` and `Origin` checks of a server bound to `bound` (its real port).
    pub fn guard(&self, bound: SocketAddr) -> logyard_api::guard::Guard {
        self.server.guard(bound)
    }

    /// Returns the entry decoding settings.
    pub fn ingest_options(&self, default_source: &str) -> logyard_api::IngestOptions {
        self.limits
            .ingest_options(self.store.keep_raw, default_source)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use logyard_model::units::Size;

    use super::*;

    #[test]
    fn empty_file_is_defaults() {
        let c = RawConfig::parse("").unwrap();
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:8062");
        assert_eq!(c.store.retention_days, 7);
        assert_eq!(c.limits.max_body_bytes, Size(16 << 20));
    }

    #[test]
    fn reads_sizes_and_durations() {
        let c = RawConfig::parse(
            "[store]\nmax_disk_bytes = \"2GiB\"\nflush_interval = \"250ms\"\nfsync = \"always\"\n[limits]\nmax_line_bytes = 4096\n",
        )
        .unwrap();
        assert_eq!(c.store.max_disk_bytes, Size(2 << 30));
        assert_eq!(c.store.flush_interval, Duration::from_millis(250));
        assert_eq!(c.store.fsync, logyard_store::FsyncPolicy::Always);
        assert_eq!(c.limits.max_line_bytes, Size(4096));
    }

    #[test]
    fn a_size_means_one_thing_in_every_section() {
        let c = RawConfig::parse(
            "[store]\nmax_disk_bytes = \"10M\"\nflush_bytes = \"10m\"\n\
             [limits]\nmax_body_bytes = \"10MiB\"\n\
             [[rotate]]\npaths = [\"/var/log/a.log\"]\nsize = \"10m\"\nmaxsize = \"10MB\"\n",
        )
        .unwrap();
        let mib10 = 10 << 20;
        assert_eq!(c.store.max_disk_bytes, Size(mib10));
        assert_eq!(c.store.flush_bytes, Size(mib10));
        assert_eq!(c.limits.max_body_bytes, Size(mib10));
        let rule = c.rotate[0].build().unwrap();
        assert_eq!(rule.size, Some(mib10));
        assert_eq!(rule.max_size, Some(10_000_000));
    }

    #[test]
    fn reads_the_report_section() {
        let c = RawConfig::parse(
            "[report]\ndaily_at = \"06:30\"\nkeep_days = 7\nformats = [\"json\"]\nslow_ms = 500\n",
        )
        .unwrap();
        let s = c.report_schedule().unwrap().expect("scheduled");
        assert_eq!(s.daily_at_minute, 6 * 60 + 30);
        assert_eq!(s.keep_days, 7);
        assert_eq!(s.dir, c.server.data_dir.join("reports"));
        assert_eq!(s.report.slow_ms, 500.0);
        assert!(RawConfig::parse("")
            .unwrap()
            .report_schedule()
            .unwrap()
            .is_none());
        let bad = RawConfig::parse("[report]\ndaily_at = \"25:00\"\n").unwrap();
        assert!(bad.validate().is_err());
        let bad = RawConfig::parse("[report]\ndatabase_filter = \"(oops\"\n").unwrap();
        assert!(bad.validate().is_err());
        let bad =
            RawConfig::parse("[report]\ndaily_at = \"06:00\"\nformats = [\"pdf\"]\n").unwrap();
        assert!(bad.validate().is_err());
    }

    #[test]
    fn reads_alert_rules_and_notifiers() {
        let c = RawConfig::parse(
            "[alerts]\nhistory = 50\n[[alerts.rules]]\nname = \"e\"\nquery = \"level:ERROR\"\nkind = \"threshold\"\ncount = 3\nnotify = [\"h\"]\n[[alerts.notifiers]]\nname = \"h\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:8060\"\n",
        )
        .unwrap();
        let built = c.alerting().unwrap();
        assert_eq!(built.rules.len(), 1);
        assert_eq!(built.rules[0].count, 3);
        assert_eq!(built.history, 50);
        assert_eq!(RawConfig::default().alerting().unwrap().rules.len(), 8);
        let e =
            RawConfig::parse("[[alerts.rules]]\nname = \"e\"\nkind = \"immediate\"\ncolour = 1\n")
                .unwrap_err();
        assert!(e.starts_with("line 1:") || e.starts_with("line 4:"), "{e}");
        assert!(e.contains("colour"), "{e}");
    }

    #[test]
    fn errors_name_line_and_hint() {
        let e = RawConfig::parse("[server]\nlisten = \"127.0.0.1:1\"\ncolour = \"blue\"\n")
            .unwrap_err();
        assert!(e.starts_with("line 3:"), "{e}");
        assert!(e.contains("colour") && e.contains("hint"), "{e}");
        let e = RawConfig::parse("[store]\n\nretention_days = \"seven\"\n").unwrap_err();
        assert!(e.starts_with("line 3:"), "{e}");
        let e = RawConfig::parse("[store]\nmax_disk_bytes = \"10 parsecs\"\n").unwrap_err();
        assert!(e.contains("unknown unit"), "{e}");
        let e = RawConfig::parse("[server]\nlisten = \"nowhere\"\n").unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
        let e = RawConfig::parse("[store]\nblock_rows = 0\n").unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
        let e = RawConfig::parse("[store]\ncompression_level = 23\n").unwrap_err();
        assert!(e.starts_with("line 2:") && e.contains("1 (fastest)"), "{e}");
    }
}
