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

/// The default of `batch_lines`: records per batch handed to the sink.
pub(crate) fn default_batch_lines() -> usize {
    1000
}

/// The default of `batch_wait`: how long a batch may wait for more lines.
pub(crate) fn default_batch_wait() -> Duration {
    Duration::from_millis(100)
}

/// The default of `max_batch_bytes`: how large a batch's lines may grow.
pub(crate) fn default_max_batch_bytes() -> usize {
    8 << 20
}

/// A source's keys about the batches it hands to the sink (`batch_lines`,
/// `max_batch_bytes`, `batch_wait`), defined once and flattened into each source that
/// reads a stream of entries and has all three.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BatchSettings {
    /// Records per batch handed to the sink (default 1000).
    #[serde(default = "default_batch_lines")]
    pub batch_lines: usize,
    /// A batch is handed over once its text reaches this many bytes, even with fewer than
    /// `batch_lines` records (default `8MiB`).
    #[serde(default = "default_max_batch_bytes", deserialize_with = "size")]
    pub max_batch_bytes: usize,
    /// A batch is handed over at the latest this long after its first record (default
    /// `100ms`).
    #[serde(default = "default_batch_wait", deserialize_with = "duration")]
    pub batch_wait: Duration,
}

impl Default for BatchSettings {
    fn default() -> BatchSettings {
        BatchSettings {
            batch_lines: default_batch_lines(),
            max_batch_bytes: default_max_batch_bytes(),
            batch_wait: default_batch_wait(),
        }
    }
}

/// A source's keys about its lines' time (`timezone`, `timestamp_format`,
/// `timestamp_field`), defined once and flattened into each source that reads stamps.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct TimeSettings {
    /// The zone of stamps that carry none (`UTC` by default).
    #[serde(default)]
    pub timezone: Option<String>,
    /// The layout of the lines' time stamps in strftime syntax, for stamps detection
    /// cannot know (`%d.%m.%Y %H:%M:%S`); tried first.
    #[serde(default)]
    pub timestamp_format: Option<String>,
    /// The field that holds the lines' time (a JSON or logfmt key, `a.b` when nested).
    #[serde(default)]
    pub timestamp_field: Option<String>,
}

/// A source's keys about how its lines are parsed: `format` and the [`TimeSettings`],
/// defined once and flattened into each source that parses text.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(from = "ParseKeys")]
pub struct ParseSettings {
    /// The lines' format (`auto` by default; `json`, `logfmt`, `syslog`, `nginx`, …).
    pub format: Option<String>,
    /// The keys about the lines' time.
    pub time: TimeSettings,
}

/// The keys of [`ParseSettings`] side by side: a flattened struct must name its keys
/// itself (a flatten within a flatten takes none of them).
#[derive(Deserialize)]
struct ParseKeys {
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    timestamp_format: Option<String>,
    #[serde(default)]
    timestamp_field: Option<String>,
}

impl From<ParseKeys> for ParseSettings {
    fn from(k: ParseKeys) -> ParseSettings {
        ParseSettings {
            format: k.format,
            time: TimeSettings {
                timezone: k.timezone,
                timestamp_format: k.timestamp_format,
                timestamp_field: k.timestamp_field,
            },
        }
    }
}

impl ParseSettings {
    /// Applies these settings over the binary's base parser settings; `format` absent
    /// means `default_format`.
    pub(crate) fn parser_config(
        &self,
        name: &str,
        base: &ParserConfig,
        default_format: Format,
    ) -> Result<ParserConfig, SourceError> {
        parser_config(
            name,
            base,
            self.format.as_deref(),
            &self.time,
            default_format,
        )
    }
}

/// Applies a source's `format` and time settings over the binary's base parser settings
/// (grok parsers, redaction, `max_line_bytes` from `[limits]`).
pub(crate) fn parser_config(
    name: &str,
    base: &ParserConfig,
    format: Option<&str>,
    time: &TimeSettings,
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
    if let Some(tz) = &time.timezone {
        cfg.timezone = tz.parse::<TimeZone>().map_err(wrap)?;
    }
    if let Some(f) = &time.timestamp_format {
        cfg.timestamp_format = Some(f.parse::<TimeFormat>().map_err(wrap)?);
    }
    if let Some(field) = time
        .timestamp_field
        .as_deref()
        .filter(|f| !f.trim().is_empty())
    {
        cfg.timestamp_field = Some(field.trim().to_string());
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::BatchSettings;
    use crate::SourceConfig;

    /// The keys each parsing source needs besides the shared ones.
    const SOURCES: [(&str, &str); 4] = [
        ("file", "paths = [\"/tmp/a.log\"]"),
        ("ssh", "host = \"web1\""),
        ("stdin", ""),
        ("syslog", "listen_udp = \"127.0.0.1:5514\""),
    ];

    #[test]
    fn every_parsing_source_reads_the_shared_keys_and_refuses_unknown_ones() {
        for (kind, own) in SOURCES {
            let text = format!(
                "type = \"{kind}\"\n{own}\nformat = \"logfmt\"\ntimezone = \"Europe/Paris\"\n\
                 timestamp_format = \"%d.%m.%Y %H:%M:%S\"\ntimestamp_field = \"at\""
            );
            let config: SourceConfig =
                toml::from_str(&text).unwrap_or_else(|e| panic!("{kind}: {e}"));
            let parse = match &config {
                SourceConfig::File(c) => &c.parse,
                SourceConfig::Ssh(c) => &c.parse,
                SourceConfig::Stdin(c) => &c.parse,
                SourceConfig::Syslog(c) => &c.parse,
                other => panic!("{kind}: read as {}", other.kind()),
            };
            assert_eq!(parse.format.as_deref(), Some("logfmt"), "{kind}");
            assert_eq!(
                parse.time.timezone.as_deref(),
                Some("Europe/Paris"),
                "{kind}"
            );
            assert_eq!(
                parse.time.timestamp_format.as_deref(),
                Some("%d.%m.%Y %H:%M:%S"),
                "{kind}"
            );
            assert_eq!(parse.time.timestamp_field.as_deref(), Some("at"), "{kind}");

            let typo = format!("type = \"{kind}\"\n{own}\ntimezon = \"UTC\"");
            let err = toml::from_str::<SourceConfig>(&typo)
                .unwrap_err()
                .to_string();
            assert!(err.contains("unknown field `timezon`"), "{kind}: {err}");
        }
    }

    #[test]
    fn docker_reads_the_time_keys_and_not_format() {
        let config: SourceConfig =
            toml::from_str("type = \"docker\"\ntimezone = \"UTC\"\ntimestamp_field = \"ts\"")
                .unwrap();
        let SourceConfig::Docker(d) = config else {
            panic!("not docker")
        };
        assert_eq!(d.time.timezone.as_deref(), Some("UTC"));
        assert_eq!(d.time.timestamp_field.as_deref(), Some("ts"));
        let err = toml::from_str::<SourceConfig>("type = \"docker\"\nformat = \"json\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `format`"), "{err}");
    }

    /// The batch settings of a source that has them all.
    fn batch_of(config: &SourceConfig) -> &BatchSettings {
        match config {
            SourceConfig::Docker(c) => &c.batch,
            SourceConfig::Journald(c) => &c.batch,
            other => panic!("{} has no BatchSettings", other.kind()),
        }
    }

    #[test]
    fn docker_and_journald_read_the_batch_keys_and_refuse_unknown_ones() {
        for kind in ["docker", "journald"] {
            let text = format!(
                "type = \"{kind}\"\nbatch_lines = 5\nmax_batch_bytes = \"1MiB\"\nbatch_wait = \"20ms\""
            );
            let config: SourceConfig =
                toml::from_str(&text).unwrap_or_else(|e| panic!("{kind}: {e}"));
            let batch = batch_of(&config);
            assert_eq!(
                (batch.batch_lines, batch.max_batch_bytes, batch.batch_wait),
                (5, 1 << 20, std::time::Duration::from_millis(20)),
                "{kind}"
            );
            let defaults: SourceConfig = toml::from_str(&format!("type = \"{kind}\"")).unwrap();
            assert_eq!(batch_of(&defaults), &BatchSettings::default(), "{kind}");
            let err = toml::from_str::<SourceConfig>(&format!("type = \"{kind}\"\nbatch_line = 5"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("unknown field `batch_line`"), "{kind}: {err}");
        }
    }

    #[test]
    fn a_bad_shared_key_is_named_with_its_source() {
        let config: SourceConfig =
            toml::from_str("type = \"stdin\"\ntimezone = \"Mars/Olympus\"").unwrap();
        let err = config
            .build("console-lines")
            .err()
            .expect("a bad zone is refused")
            .to_string();
        assert!(
            err.contains("console-lines") && err.contains("Mars/Olympus"),
            "{err}"
        );
    }
}
