//! `logyard ingest`: parse files or standard input and send the records to a server or
//! straight into a data directory.

use std::io::IsTerminal;
use std::time::Instant;

use anyhow::{bail, Context};
use logyard_model::{Column, Record};
use serde_json::Value;

use crate::cli::IngestArgs;
use crate::config::RawConfig;
use crate::lines::{self, Origin};

/// Where batches go.
enum Sink {
    Server {
        client: reqwest::blocking::Client,
        url: String,
    },
    Store(logyard_store::Store),
}

/// Totals of a run.
#[derive(Default)]
struct Totals {
    accepted: u64,
    rejected: u64,
    /// Of the rejected, those older than what the retention keeps.
    expired: u64,
}

/// How the reason of an entry refused as past the retention begins
/// ([`logyard_store::expired_reason`]), in a server's answer as in the store's.
const EXPIRED_PREFIX: &str = "older than the retention of";

/// Renders a parsed record as an entry of `POST /api/logs`, which the server turns back
/// into the same record.
fn entry_of(r: &Record) -> Value {
    let fields: serde_json::Map<String, Value> = r
        .fields
        .iter()
        .map(|(k, v)| (k.clone(), v.to_json()))
        .collect();
    let mut entry = serde_json::Map::new();
    r.put_columns(&mut entry);
    entry.insert(Column::Fields.name().into(), fields.into());
    if let Some(raw) = &r.raw {
        entry.insert(Column::Raw.name().into(), raw.clone().into());
    }
    Value::Object(entry)
}

impl Sink {
    fn send(
        &mut self,
        records: Vec<Record>,
        origins: &[Origin],
        totals: &mut Totals,
    ) -> anyhow::Result<()> {
        let rejections: Vec<(usize, String)> = match self {
            Sink::Server { client, url } => {
                let mut body = String::new();
                for r in &records {
                    body.push_str(&entry_of(r).to_string());
                    body.push('\n');
                }
                let request = client
                    .post(format!("{url}/api/logs"))
                    .header("content-type", "application/x-ndjson")
                    .body(body);
                let (status, value) = crate::cli::json_answer(crate::cli::send(request, url)?)?;
                if !status.is_success() {
                    bail!(
                        "the server refused the batch ({status}): {}",
                        crate::cli::error_message(&value)
                    );
                }
                totals.accepted += value["accepted"].as_u64().unwrap_or(0);
                value["errors"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| {
                        (
                            e["index"].as_u64().unwrap_or(0) as usize,
                            e["reason"].as_str().unwrap_or("").to_string(),
                        )
                    })
                    .collect()
            }
            Sink::Store(store) => {
                let mut records = records;
                let expired = store.refuse_expired(&mut records);
                totals.accepted += records.len() as u64;
                store.append(records).context("cannot write to the store")?;
                let reason = store.expired_reason();
                expired.into_iter().map(|i| (i, reason.clone())).collect()
            }
        };
        for (i, reason) in &rejections {
            totals.rejected += 1;
            if reason.starts_with(EXPIRED_PREFIX) {
                totals.expired += 1;
            }
            if totals.rejected <= 10 {
                let origin = origins.get(*i).map_or("?", String::as_str);
                eprintln!("rejected {origin}: {reason}");
            }
        }
        Ok(())
    }
}

/// Runs `logyard ingest`.
pub fn run(config: RawConfig, args: IngestArgs) -> anyhow::Result<()> {
    let mut parser = lines::parser(&config, &args.parse)?;
    let mut sink = match (&args.target.server, &args.target.data) {
        (Some(url), _) => Sink::Server {
            client: crate::cli::http().build()?,
            url: url.trim_end_matches('/').to_string(),
        },
        (None, data) => {
            let mut c = config.clone();
            if let Some(d) = data {
                c.server.data_dir = d.clone();
            }
            Sink::Store(
                logyard_store::Store::open(c.store_config()).with_context(|| {
                    format!(
                        "cannot open the data directory {}",
                        c.server.data_dir.display()
                    )
                })?,
            )
        }
    };
    let progress = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {pos} records ({per_sec}) {msg}")
                .expect("valid template"),
        );
        bar
    });
    let started = Instant::now();
    let mut totals = Totals::default();
    let host = lines::host_name();
    for file in &args.files {
        if let Some(bar) = &progress {
            bar.set_message(file.display().to_string());
        }
        lines::read_file(
            file,
            &mut parser,
            &args.parse,
            &host,
            args.batch.max(1),
            |records, origins| {
                let n = records.len() as u64;
                sink.send(records, &origins, &mut totals)?;
                if let Some(bar) = &progress {
                    bar.inc(n);
                }
                Ok(())
            },
        )?;
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "ingested {} records ({} rejected) in {:.1}s, {:.0} records/s",
        totals.accepted,
        totals.rejected,
        secs,
        totals.accepted as f64 / secs.max(1e-9)
    );
    if totals.expired > 0 {
        let whose = match &sink {
            Sink::Server { .. } => "the server's",
            Sink::Store(_) => "this",
        };
        eprintln!(
            "{} of the rejected records were older than the retention: raise [store] \
             retention_days (0 keeps everything) in {whose} configuration to store them",
            totals.expired
        );
    }
    for (kind, n) in parser.redaction_counts() {
        if n > 0 {
            eprintln!("redacted {n} {kind}");
        }
    }
    if let Sink::Store(store) = sink {
        store.close();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use logyard_model::{Level, Value as FieldValue};

    #[test]
    fn an_entry_maps_back_to_the_record() {
        let mut r = Record::new(1_705_312_200_123_000_000, "charge failed");
        r.level = Some(Level::Error);
        r.agent = "billing".into();
        r.source = "file:/tmp/billing.log".into();
        r.raw = Some("ERROR charge failed status=502".into());
        r.fields.insert("status".into(), FieldValue::Int(502));
        let opts = logyard_sources::http::native::IngestOptions {
            max_line_bytes: 1 << 20,
            keep_raw: false,
            default_source: "http".into(),
        };
        let back =
            logyard_sources::http::native::entry_to_record(entry_of(&r), None, &opts, 0).unwrap();
        assert_eq!(back, r);
    }
}
