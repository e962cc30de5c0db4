//! The configuration file: `logyard.toml`, read strictly.
//!
//! [`RawConfig`] mirrors the file (every key optional, defaults filled in); an unknown key, a
//! wrong type or a bad value is an error that names the file, the line and what to write.
//! [`RawConfig::store_config`] and friends turn it into the settings each crate takes.
//! `docs/configuration.md` is the reference of every key.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::de::Deserializer;
use serde::Deserialize;

pub use logyard_model::units::Size;

/// A duration above zero, written as [`logyard_model::units::Duration`] reads it (`500ms`,
/// `30s`, `5m`, `1h`, `7d`, or a number of seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        logyard_model::units::positive_duration(d).map(Dur)
    }
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// Address the HTTP API listens on.
    pub listen: SocketAddr,
    /// Where the store lives.
    pub data_dir: PathBuf,
    /// The longest wait for a request head once its first byte arrived.
    pub header_timeout: Dur,
    /// The longest time for a request body to arrive whole.
    pub body_timeout: Dur,
    /// A connection waiting for a request is closed after this long without a byte.
    pub idle_timeout: Dur,
    /// Most connections open at once (at most half the descriptor limit).
    pub max_connections: NonZeroUsize,
    /// At shutdown, the longest wait for answers in progress.
    pub shutdown_timeout: Dur,
    /// Serve a non-loopback address without any token, on purpose.
    pub allow_unauthenticated: bool,
    /// The PEM certificate chain of HTTPS; with `tls_key`, the server speaks HTTPS only.
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// PEM certificates of the CAs whose client certificates identify ingest clients.
    pub tls_client_ca: Option<PathBuf>,
    /// Extra `Host` names the server answers to (`name` or `name:port`), beside its address.
    pub allowed_hosts: Vec<String>,
    /// Origins of other sites whose pages may send state-changing requests.
    pub allowed_origins: Vec<String>,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            listen: "127.0.0.1:8062".parse().expect("valid address"),
            data_dir: PathBuf::from("./logyard-data"),
            header_timeout: Dur(Duration::from_secs(10)),
            body_timeout: Dur(Duration::from_secs(60)),
            idle_timeout: Dur(Duration::from_secs(60)),
            max_connections: NonZeroUsize::new(1024).expect("nonzero"),
            shutdown_timeout: Dur(Duration::from_secs(10)),
            allow_unauthenticated: false,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
        }
    }
}

/// `[limits]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Largest request body.
    pub max_body_bytes: Size,
    /// Largest entry or line.
    pub max_line_bytes: Size,
    /// Most entries in one ingest request.
    pub max_entries_per_request: NonZeroUsize,
    /// Most bytes the entries of one ingest request may decode to.
    pub max_decoded_bytes: Size,
    /// Longest query text.
    pub max_query_bytes: Size,
    /// Largest compiled regex.
    pub max_regex_bytes: Size,
    /// Most queries one token may save on the server.
    pub max_saved_queries: NonZeroUsize,
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            max_body_bytes: Size(16 << 20),
            max_line_bytes: Size(1 << 20),
            max_entries_per_request: NonZeroUsize::new(100_000).expect("nonzero"),
            max_decoded_bytes: Size(64 << 20),
            max_query_bytes: Size(64 << 10),
            max_regex_bytes: Size(1 << 20),
            max_saved_queries: NonZeroUsize::new(100).expect("nonzero"),
        }
    }
}

/// `[query]`: budgets of one query.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuerySection {
    /// Most groups a stats, top, histogram or patterns pipe may hold.
    pub max_groups: NonZeroUsize,
    /// Most bytes of state a query may hold.
    pub max_state_bytes: Size,
    /// How long a query may run before its answer is cut.
    pub timeout: Dur,
    /// The largest `limit N` and `top N`.
    pub max_limit: NonZeroUsize,
    /// Most buckets of a histogram.
    pub max_buckets: NonZeroUsize,
    /// Threads that plan and run SQL statements, apart from those that answer requests.
    pub sql_threads: NonZeroUsize,
    /// SQL statements that may run at once.
    pub sql_concurrency: NonZeroUsize,
    /// How long a SQL statement waits for a free slot before it is refused with a 503.
    pub sql_queue_timeout: Dur,
    /// Deepest nesting of a SQL statement's expressions, and most set operations plus joins.
    pub sql_max_depth: NonZeroUsize,
}

impl Default for QuerySection {
    fn default() -> Self {
        let d = logyard_query::Settings::default();
        QuerySection {
            max_groups: NonZeroUsize::new(d.max_groups).expect("nonzero"),
            max_state_bytes: Size(d.max_state_bytes as u64),
            timeout: Dur(d.timeout),
            max_limit: NonZeroUsize::new(d.max_limit).expect("nonzero"),
            max_buckets: NonZeroUsize::new(d.max_buckets).expect("nonzero"),
            sql_threads: NonZeroUsize::new(2).expect("nonzero"),
            sql_concurrency: NonZeroUsize::new(2).expect("nonzero"),
            sql_queue_timeout: Dur(Duration::from_secs(5)),
            sql_max_depth: NonZeroUsize::new(logyard_sql::DEFAULT_MAX_DEPTH).expect("nonzero"),
        }
    }
}

/// `[[parsers]]`: a grok pattern tried before format detection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParserSection {
    /// The parser's name, in errors.
    pub name: String,
    /// A pattern in Logstash's grok syntax.
    pub grok: String,
}

/// `[[redact.patterns]]`: an extra secret to redact.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactPatternSection {
    /// The kind, shown in the replacement `[REDACTED:<name>]` and the counts.
    pub name: String,
    /// The regex of the secret.
    pub regex: String,
}

/// `[redact]`: what is removed from lines before they are stored.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedactSection {
    /// Apply the built-in rules (passwords, tokens, keys, card numbers, URL passwords).
    pub builtin: bool,
    /// Also redact personal data (e-mail addresses).
    pub pii: bool,
    /// Extra patterns.
    pub patterns: Vec<RedactPatternSection>,
}

impl Default for RedactSection {
    fn default() -> Self {
        RedactSection {
            builtin: true,
            pii: false,
            patterns: Vec::new(),
        }
    }
}

/// `[metrics]`: the labels of `/metrics`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSection {
    /// Agents with their own `agent` label in `logyard_log_errors_total`; the rest are `other`.
    pub max_agents: usize,
    /// Followed files with their own `logyard_source_file_size_bytes` and
    /// `logyard_source_file_offset_bytes` series (the largest ones past this).
    pub max_file_series: usize,
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection {
            max_agents: 100,
            max_file_series: logyard_sources::DEFAULT_MAX_FILE_SERIES,
        }
    }
}

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    /// `[server]`.
    pub server: ServerSection,
    /// `[store]`.
    pub store: logyard_store::StoreSettings,
    /// `[storage]`: where segment files live.
    pub storage: logyard_store::StorageSettings,
    /// `[limits]`.
    pub limits: LimitsSection,
    /// `[query]`.
    pub query: QuerySection,
    /// `[[sources]]`: where logs are collected from.
    pub sources: Vec<logyard_sources::SourceConfig>,
    /// `[[parsers]]`.
    pub parsers: Vec<ParserSection>,
    /// `[redact]`.
    pub redact: RedactSection,
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
    pub metrics: MetricsSection,
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
            grok: self
                .parsers
                .iter()
                .map(|p| logyard_parse::GrokDef {
                    name: p.name.clone(),
                    pattern: p.grok.clone(),
                })
                .collect(),
            redact: logyard_parse::RedactConfig {
                builtin: self.redact.builtin,
                pii: self.redact.pii,
                patterns: self
                    .redact
                    .patterns
                    .iter()
                    .map(|p| logyard_parse::RedactPattern {
                        name: p.name.clone(),
                        regex: p.regex.clone(),
                    })
                    .collect(),
                counts: self.redaction_counts.clone(),
            },
            max_line_bytes: self.limits.max_line_bytes.0 as usize,
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
        let s = &self.server;
        let (cert, key) = match (&s.tls_cert, &s.tls_key) {
            (Some(cert), Some(key)) => (cert, key),
            (None, None) if s.tls_client_ca.is_some() => anyhow::bail!(
                "[server] tls_client_ca needs tls_cert and tls_key: client certificates are \
                 only asked for over HTTPS"
            ),
            (None, None) => return Ok(None),
            (Some(_), None) => {
                anyhow::bail!("[server] tls_cert is set but not tls_key: give both, or neither")
            }
            (None, Some(_)) => {
                anyhow::bail!("[server] tls_key is set but not tls_cert: give both, or neither")
            }
        };
        let files = logyard_tls::TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: s.tls_client_ca.clone(),
        };
        Ok(Some(
            logyard_tls::ServerTls::new(&files, &[b"http/1.1"])
                .map_err(|e| anyhow::anyhow!("[server]: {e}"))?,
        ))
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
        let q = &self.query;
        logyard_query::Settings {
            max_groups: q.max_groups.get(),
            max_state_bytes: q.max_state_bytes.0 as usize,
            timeout: q.timeout.0,
            max_limit: q.max_limit.get(),
            max_buckets: q.max_buckets.get(),
            max_regex_bytes: self.limits.max_regex_bytes.0 as usize,
        }
    }

    /// Returns how the SQL threads are set up.
    pub fn sql_pool(&self) -> logyard_sql::PoolConfig {
        let q = &self.query;
        logyard_sql::PoolConfig {
            threads: q.sql_threads.get(),
            concurrency: q.sql_concurrency.get(),
            queue_timeout: q.sql_queue_timeout.0,
            max_depth: q.sql_max_depth.get(),
        }
    }

    /// Returns the API's request limits.
    pub fn limits(&self) -> logyard_api::Limits {
        let l = &self.limits;
        logyard_api::Limits {
            max_body_bytes: l.max_body_bytes.0 as usize,
            max_entries_per_request: l.max_entries_per_request.get(),
            max_decoded_bytes: l.max_decoded_bytes.0 as usize,
            max_query_bytes: l.max_query_bytes.0 as usize,
            max_regex_bytes: l.max_regex_bytes.0 as usize,
            max_saved_queries: l.max_saved_queries.get(),
        }
    }

    /// Returns the settings of the server's connections.
    pub fn server_options(&self) -> logyard_api::ServerOptions {
        let s = &self.server;
        logyard_api::ServerOptions {
            header_timeout: s.header_timeout.0,
            body_timeout: s.body_timeout.0,
            idle_timeout: s.idle_timeout.0,
            max_connections: s.max_connections.get(),
            shutdown_timeout: s.shutdown_timeout.0,
            tls: None,
        }
    }

    /// Returns the `Host` and `Origin` checks of a server bound to `bound` (its real port).
    pub fn guard(&self, bound: SocketAddr) -> logyard_api::guard::Guard {
        logyard_api::guard::Guard::new(
            bound,
            self.server.allowed_hosts.clone(),
            self.server.allowed_origins.clone(),
        )
    }

    /// Returns the entry decoding settings.
    pub fn ingest_options(&self, default_source: &str) -> logyard_api::IngestOptions {
        logyard_api::IngestOptions {
            max_line_bytes: self.limits.max_line_bytes.0 as usize,
            keep_raw: self.store.keep_raw,
            default_source: default_source.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
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
