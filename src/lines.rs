//! Reading log files or standard input into records with the `parse` crate: the shared part
//! of `logyard ingest` and `logyard parse`.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use anyhow::Context;
use clap::Args;
use logyard_model::Record;
use logyard_parse::{agent_from_path, Format, LineContext, Parser, TimeZone};

use crate::config::RawConfig;

/// How lines are parsed: the flags shared by `ingest` and `parse`.
#[derive(Debug, Clone, Args)]
pub struct ParseArgs {
    /// The lines' format: auto (detected per line), json, logfmt, syslog, rfc5424, rfc3164,
    /// nginx, apache, python, django, stamped, klog, docker, cri or plain.
    #[arg(long, default_value = "auto")]
    pub format: String,
    /// Time zone of time stamps that carry none: UTC, an offset such as +02:00, or a name
    /// such as Europe/Paris.
    #[arg(long, default_value = "UTC")]
    pub timezone: String,
    /// Layout of the lines' time stamps when detection cannot know it, in strftime syntax
    /// (chrono's): `%d.%m.%Y %H:%M:%S`, `%m-%d %H:%M:%S%.f` (no year: the latest that is not
    /// in the future), `%s` (epoch seconds). Tried first; lines it does not fit are detected.
    #[arg(long, value_name = "STRFTIME")]
    pub timestamp_format: Option<String>,
    /// Field that holds the lines' time: a key of JSON or logfmt lines (`a.b` when nested),
    /// a grok capture or a `key=value` pair of a text line.
    #[arg(long, value_name = "FIELD")]
    pub timestamp_field: Option<String>,
    /// Agent of lines that do not name one (default: from the file's name).
    #[arg(long)]
    pub agent: Option<String>,
}

/// Builds a parser from the flags and the configuration's limits.
pub fn parser(config: &RawConfig, args: &ParseArgs) -> anyhow::Result<Parser> {
    let format: Format = args.format.parse().map_err(|e| {
        anyhow::anyhow!(
            "--format {:?}: {e}; the formats are {}",
            args.format,
            Format::NAMES.join(", ")
        )
    })?;
    let timezone: TimeZone = args
        .timezone
        .parse()
        .map_err(|e| anyhow::anyhow!("--timezone {:?}: {e}", args.timezone))?;
    let mut cfg = config.parser_config(format, timezone);
    if let Some(f) = &args.timestamp_format {
        cfg.timestamp_format = Some(
            f.parse()
                .map_err(|e| anyhow::anyhow!("--timestamp-format {f:?}: {e}"))?,
        );
    }
    cfg.timestamp_field = args
        .timestamp_field
        .as_deref()
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(str::to_string);
    Ok(Parser::new(cfg)?)
}

/// Returns this machine's host name, or an empty string.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// Where a record's first line was: `FILE:LINE`.
pub type Origin = String;

/// Reads a file (or `-`, standard input) line by line, parses it, and hands batches of at
/// most `batch` records with their origins to `send`.
pub fn read_file(
    path: &Path,
    parser: &mut Parser,
    args: &ParseArgs,
    host: &str,
    batch: usize,
    mut send: impl FnMut(Vec<Record>, Vec<Origin>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let stdin = path == Path::new("-");
    let (reader, agent, source): (Box<dyn Read>, String, String) = if stdin {
        (Box::new(std::io::stdin()), "stdin".into(), "stdin".into())
    } else {
        let f =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        (
            Box::new(f),
            agent_from_path(path),
            format!("file:{}", path.display()),
        )
    };
    let agent = args.agent.clone().unwrap_or(agent);
    let name = if stdin {
        "stdin".to_string()
    } else {
        path.display().to_string()
    };
    let mut reader = BufReader::with_capacity(1 << 20, reader);
    let mut buf = Vec::new();
    let mut records = Vec::with_capacity(batch);
    let mut origins = Vec::with_capacity(batch);
    let mut number = 0u64;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .with_context(|| format!("cannot read {name}"))?;
        let now = logyard_model::now_ns();
        let ctx = LineContext {
            source: &source,
            agent_hint: &agent,
            host,
            received_ns: now,
        };
        if n == 0 {
            parser.flush_all(&ctx, &mut records);
        } else {
            number += 1;
            let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            parser.push(line, &ctx, now, &mut records);
        }
        // A joined multi-line record is named by the line that completed it.
        origins.resize(records.len(), format!("{name}:{number}"));
        if records.len() >= batch || (n == 0 && !records.is_empty()) {
            send(std::mem::take(&mut records), std::mem::take(&mut origins))?;
        }
        if n == 0 {
            return Ok(());
        }
    }
}
