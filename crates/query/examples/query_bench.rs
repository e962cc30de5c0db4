//! Times queries over an existing data directory (the server stopped), without HTTP:
//! `cargo run --release -p logyard-query --example query_bench -- DATA_DIR [ROUNDS] QUERY…`.
//!
//! Each query runs once to warm the page cache (and fill the store's cache of decoded
//! columns, whose size `LOGYARD_CACHE_BYTES` sets), then `ROUNDS` times (5 by default); the
//! first and the median wall times, the answer's first rows and its cost are printed.

use std::time::Instant;

use logyard_query::{parse_query, run, Answer, Settings};
use logyard_store::{Store, StoreConfig};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: query_bench DATA_DIR [ROUNDS] QUERY…");
        std::process::exit(2);
    };
    let mut queries: Vec<String> = args.collect();
    let rounds = match queries.first().and_then(|q| q.parse::<usize>().ok()) {
        Some(n) => {
            queries.remove(0);
            n.max(1)
        }
        None => 5,
    };
    let mut config = StoreConfig::new(dir);
    config.retention_days = 0;
    if let Some(bytes) = std::env::var("LOGYARD_CACHE_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config.cache_bytes = bytes;
    }
    let store = match Store::open(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot open the store: {e}");
            std::process::exit(1);
        }
    };
    let settings = Settings::default();
    for text in &queries {
        let query = match parse_query(text, logyard_model::now_ns(), &settings) {
            Ok(q) => q,
            Err(e) => {
                eprintln!("{text}: {e}");
                continue;
            }
        };
        let snapshot = store.snapshot();
        let mut times = Vec::with_capacity(rounds);
        let mut first = 0.0;
        let mut last = None;
        for round in 0..=rounds {
            let started = Instant::now();
            let out = match run(&snapshot, &query, &settings, 100) {
                Ok(out) => out,
                Err(e) => {
                    eprintln!("{text}: {e}");
                    break;
                }
            };
            let ms = started.elapsed().as_secs_f64() * 1e3;
            if round > 0 {
                times.push(ms);
            } else {
                first = ms;
            }
            last = Some(out);
        }
        let Some(out) = last else { continue };
        times.sort_by(f64::total_cmp);
        let median = times.get(times.len() / 2).copied().unwrap_or(0.0);
        let answer = match &out.answer {
            Answer::Records { total, .. } => format!("{total} records"),
            Answer::Table(t) => format!("{} rows, first {:?}", t.rows.len(), t.rows.first()),
        };
        println!(
            "{median:8.1} ms (first {first:.1} ms)  {text}  ->  {answer}; {} rows scanned, {} MiB decoded{}",
            out.cost.rows_scanned,
            out.cost.bytes_scanned >> 20,
            out.partial
                .map(|p| format!(" (partial: {p})"))
                .unwrap_or_default()
        );
    }
    store.close();
}
