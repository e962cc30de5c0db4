//! `logyard report`: the report of a range, from a server or a data directory.

use std::io::Write;

use anyhow::Context;
use logyard_model::{now_ns, parse_time};
use logyard_report::Format;

use crate::analysis_cmd::{get, open_store};
use crate::cli::ReportArgs;
use crate::config::RawConfig;

/// Runs `logyard report`: builds (or asks the server for) the report and writes it to
/// standard output or `--out`.
pub fn run(config: RawConfig, args: ReportArgs) -> anyhow::Result<()> {
    let format = Format::parse(&args.format)
        .with_context(|| format!("--format {:?}: use md, html or json", args.format))?;
    let text = match &args.target.server {
        Some(url) => get(
            url,
            "/api/report",
            &[
                ("since", args.since.clone()),
                ("until", args.until.clone()),
                ("format", format.extension().to_string()),
            ],
        )?
        .text()?,
        None => {
            let now = now_ns();
            let end = parse_time(&args.until, now).context("--until")?;
            let start = parse_time(&args.since, end).context("--since")?;
            anyhow::ensure!(start < end, "--since must be before --until");
            let settings = config
                .report_settings()
                .context("invalid [report] settings")?;
            let store = open_store(&config, &args.target)?;
            let report = logyard_report::build(
                &store.snapshot(),
                start,
                end,
                &logyard_query::Filter::All,
                &settings,
                &config.query_settings(),
            )?;
            store.close();
            logyard_report::render(&report, format)
        }
    };
    match &args.out {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    Ok(())
}
