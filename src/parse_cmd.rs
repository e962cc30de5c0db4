//! `logyard parse`: show the records that lines become, to check a format or a setting.

use std::io::Write;

use crate::cli::ParseCmdArgs;
use crate::config::RawConfig;
use crate::lines;

/// Runs `logyard parse`.
pub fn run(config: RawConfig, args: ParseCmdArgs) -> anyhow::Result<()> {
    let mut parser = lines::parser(&config, &args.parse)?;
    let host = lines::host_name();
    let mut out = std::io::stdout().lock();
    for file in &args.files {
        lines::read_file(file, &mut parser, &args.parse, &host, 1000, |records, _| {
            if args.ndjson {
                for r in &records {
                    writeln!(out, "{}", r.to_json(true))?;
                }
                return Ok(());
            }
            let rows: Vec<Vec<String>> = records
                .iter()
                .map(|r| {
                    let fields: Vec<String> =
                        r.fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    vec![
                        logyard_model::format_rfc3339(r.timestamp),
                        r.level.map_or("-", |l| l.as_str()).to_string(),
                        r.agent.clone(),
                        r.message.replace('\n', "\\n"),
                        fields.join(" "),
                    ]
                })
                .collect();
            write!(
                out,
                "{}",
                crate::table::render(&["TIME", "LEVEL", "AGENT", "MESSAGE", "FIELDS"], &rows)
            )?;
            Ok(())
        })?;
    }
    Ok(())
}
