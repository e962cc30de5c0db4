//! The server's own metrics, rendered as Prometheus text by `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use logyard_store::StoreStats;

/// Upper bounds of the request latency histogram, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Counters of ingest and requests. Labels have bounded cardinality: sources and levels are
/// few, rejection reasons and routes are fixed sets.
#[derive(Default)]
pub struct Metrics {
    ingested_lines: Mutex<BTreeMap<(String, String), u64>>,
    ingested_bytes: AtomicU64,
    rejected: Mutex<BTreeMap<&'static str, u64>>,
    requests: Mutex<BTreeMap<(&'static str, u16), Histogram>>,
}

impl Metrics {
    /// Counts accepted lines by source kind and level.
    pub fn add_ingested(&self, counts: BTreeMap<(String, String), u64>, bytes: u64) {
        let mut map = self.ingested_lines.lock().expect("metrics lock");
        for (k, v) in counts {
            *map.entry(k).or_default() += v;
        }
        self.ingested_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts rejected lines by reason.
    pub fn add_rejected(&self, reason: &'static str, n: u64) {
        if n > 0 {
            *self
                .rejected
                .lock()
                .expect("metrics lock")
                .entry(reason)
                .or_default() += n;
        }
    }

    /// Records one request's latency.
    pub fn observe_request(&self, route: &'static str, status: u16, seconds: f64) {
        let mut map = self.requests.lock().expect("metrics lock");
        let h = map.entry((route, status)).or_default();
        h.count += 1;
        h.sum += seconds;
        for (i, &le) in LATENCY_BUCKETS.iter().enumerate() {
            if seconds <= le {
                h.buckets[i] += 1;
            }
        }
    }

    /// Returns the total accepted lines.
    pub fn ingested_total(&self) -> u64 {
        self.ingested_lines
            .lock()
            .expect("metrics lock")
            .values()
            .sum()
    }

    /// Renders every metric, the store's included, in the Prometheus text format.
    pub fn render(&self, store: &StoreStats, uptime_s: f64) -> String {
        let mut out = String::new();
        let header = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        let name = "logyard_ingested_lines_total";
        header(
            &mut out,
            name,
            "counter",
            "Log lines accepted and made durable, by source kind and level.",
        );
        for ((source, level), v) in self.ingested_lines.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "{name}{{source=\"{}\",level=\"{}\"}} {v}",
                escape(source),
                escape(level)
            );
        }
        let simple: [(&str, &str, &str, f64); 14] = [
            (
                "logyard_ingested_bytes_total",
                "counter",
                "Bytes of accepted request bodies.",
                self.ingested_bytes.load(Ordering::Relaxed) as f64,
            ),
            (
                "logyard_wal_bytes",
                "gauge",
                "Bytes in write-ahead log files.",
                store.wal_bytes as f64,
            ),
            (
                "logyard_store_bytes",
                "gauge",
                "Bytes of segment files.",
                store.segment_bytes as f64,
            ),
            (
                "logyard_store_segments",
                "gauge",
                "Live segments.",
                store.segments as f64,
            ),
            (
                "logyard_store_rows",
                "gauge",
                "Rows in segments.",
                store.segment_rows as f64,
            ),
            (
                "logyard_store_memtable_rows",
                "gauge",
                "Rows acknowledged but not yet in a segment.",
                store.memtable_rows as f64,
            ),
            (
                "logyard_store_memtable_bytes",
                "gauge",
                "Memory held by the memtable.",
                store.memtable_bytes as f64,
            ),
            (
                "logyard_store_flushes_total",
                "counter",
                "Memtable flushes to segments.",
                store.flushes as f64,
            ),
            (
                "logyard_store_merges_total",
                "counter",
                "Merges of small segments.",
                store.merges as f64,
            ),
            (
                "logyard_store_quarantined_segments_total",
                "counter",
                "Segments found damaged and moved to quarantine.",
                store.quarantined as f64,
            ),
            (
                "logyard_wal_damaged_frames_total",
                "counter",
                "Damaged WAL frames cut or skipped at recovery.",
                store.wal_damaged_frames as f64,
            ),
            (
                "logyard_wal_replayed_records_total",
                "counter",
                "Records recovered from the WAL at start.",
                store.wal_replayed_records as f64,
            ),
            (
                "logyard_retention_dropped_days_total",
                "counter",
                "Days of data dropped by retention.",
                store.retention_dropped_days as f64,
            ),
            (
                "logyard_uptime_seconds",
                "gauge",
                "Seconds since the server started.",
                uptime_s,
            ),
        ];
        for (name, kind, help, value) in simple {
            header(&mut out, name, kind, help);
            let _ = writeln!(out, "{name} {value}");
        }
        let name = "logyard_rejected_lines_total";
        header(&mut out, name, "counter", "Log lines refused, by reason.");
        for (reason, v) in self.rejected.lock().expect("metrics lock").iter() {
            let _ = writeln!(out, "{name}{{reason=\"{reason}\"}} {v}");
        }
        let name = "logyard_http_request_duration_seconds";
        header(
            &mut out,
            name,
            "histogram",
            "HTTP request latency, by route and status.",
        );
        for ((route, status), h) in self.requests.lock().expect("metrics lock").iter() {
            let labels = format!("route=\"{route}\",status=\"{status}\"");
            for (i, le) in LATENCY_BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{name}_bucket{{{labels},le=\"{le}\"}} {}",
                    h.buckets[i]
                );
            }
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum);
            let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
        }
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
