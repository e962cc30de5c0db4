//! The server's own metrics, rendered as Prometheus text by `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use logyard_model::{Level, Record};
use logyard_store::StoreStats;

/// The label of the agents past [`Metrics::set_max_agents`] in `logyard_log_errors_total`.
pub const OTHER_AGENT: &str = "other";

/// Upper bounds of the query latency histogram, in seconds.
const QUERY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Returns the kind of query a route runs, the `kind` label of
/// `logyard_query_duration_seconds`; `None` for routes that run no query.
pub fn query_kind(route: &str) -> Option<&'static str> {
    Some(match route {
        "/api/logs" | "/api/logs/agent" => "logs",
        "/api/logs/search" => "search",
        "/api/query" => "query",
        "/api/agents" | "/api/stats" => "stats",
        "/api/histogram" => "histogram",
        "/api/errors/summary" => "errors_summary",
        "/api/logs/context" => "context",
        "/api/export" => "export",
        "/api/report" => "report",
        _ => return None,
    })
}

/// Counts the entries at ERROR and above of a batch by agent.
pub fn errors_by_agent(records: &[Record]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for r in records.iter().filter(|r| r.level >= Some(Level::Error)) {
        *out.entry(r.agent.clone()).or_insert(0) += 1;
    }
    out
}

/// Upper bounds of the request latency histogram, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

struct Histogram<const N: usize> {
    buckets: [u64; N],
    count: u64,
    sum: f64,
}

impl<const N: usize> Default for Histogram<N> {
    fn default() -> Self {
        Histogram {
            buckets: [0; N],
            count: 0,
            sum: 0.0,
        }
    }
}

impl<const N: usize> Histogram<N> {
    fn observe(&mut self, bounds: &[f64; N], seconds: f64) {
        self.count += 1;
        self.sum += seconds;
        for (i, &le) in bounds.iter().enumerate() {
            if seconds <= le {
                self.buckets[i] += 1;
            }
        }
    }

    fn render(&self, out: &mut String, name: &str, labels: &str, bounds: &[f64; N]) {
        for (i, le) in bounds.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels},le=\"{le}\"}} {}",
                self.buckets[i]
            );
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

/// Counters of ingest and requests. Labels have bounded cardinality: sources and levels are
/// few, rejection reasons and routes are fixed sets.
#[derive(Default)]
pub struct Metrics {
    ingested_lines: Mutex<BTreeMap<(String, String), u64>>,
    ingested_bytes: AtomicU64,
    rejected: Mutex<BTreeMap<&'static str, u64>>,
    requests: Mutex<BTreeMap<(&'static str, u16), Histogram<{ LATENCY_BUCKETS.len() }>>>,
    queries: Mutex<BTreeMap<&'static str, Histogram<{ QUERY_BUCKETS.len() }>>>,
    log_errors: Mutex<BTreeMap<String, u64>>,
    /// Agents with their own label in `logyard_log_errors_total`; 0 means the default, 100.
    max_agents: AtomicUsize,
    auth_failures: AtomicU64,
    token_limited: AtomicU64,
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

    /// Counts a request refused for want of a valid token.
    pub fn auth_failed(&self) {
        self.auth_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request refused `429` for a token's own limits.
    pub fn token_limited(&self) {
        self.token_limited.fetch_add(1, Ordering::Relaxed);
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
        map.entry((route, status))
            .or_default()
            .observe(&LATENCY_BUCKETS, seconds);
        drop(map);
        if let Some(kind) = query_kind(route) {
            self.queries
                .lock()
                .expect("metrics lock")
                .entry(kind)
                .or_default()
                .observe(&QUERY_BUCKETS, seconds);
        }
    }

    /// Sets how many agents get their own label in `logyard_log_errors_total`: the first
    /// ones seen; later agents are counted under `other`, so the label stays bounded.
    pub fn set_max_agents(&self, n: usize) {
        self.max_agents.store(n.max(1), Ordering::Relaxed);
    }

    /// Counts error entries (ERROR and above) by agent.
    pub fn add_log_errors(&self, counts: BTreeMap<String, u64>) {
        let max = match self.max_agents.load(Ordering::Relaxed) {
            0 => 100,
            n => n,
        };
        let mut map = self.log_errors.lock().expect("metrics lock");
        for (agent, n) in counts {
            let own =
                map.contains_key(&agent) || map.keys().filter(|k| *k != OTHER_AGENT).count() < max;
            let key = if own { agent } else { OTHER_AGENT.to_string() };
            *map.entry(key).or_insert(0) += n;
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
        let simple: [(&str, &str, &str, f64); 19] = [
            (
                "logyard_ingested_bytes_total",
                "counter",
                "Bytes of accepted request bodies.",
                self.ingested_bytes.load(Ordering::Relaxed) as f64,
            ),
            (
                "logyard_auth_failures_total",
                "counter",
                "Requests refused with 401: no token, or one that matches none.",
                self.auth_failures.load(Ordering::Relaxed) as f64,
            ),
            (
                "logyard_token_limited_total",
                "counter",
                "Requests refused 429 by a token's own rate or query limits.",
                self.token_limited.load(Ordering::Relaxed) as f64,
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
                "logyard_store_cache_bytes",
                "gauge",
                "Bytes of decoded text columns held for the next search.",
                store.cache.bytes as f64,
            ),
            (
                "logyard_store_cache_hits_total",
                "counter",
                "Block columns read from the cache of decoded text columns.",
                store.cache.hits as f64,
            ),
            (
                "logyard_store_cache_misses_total",
                "counter",
                "Block columns the cache did not hold, decoded from their segment.",
                store.cache.misses as f64,
            ),
            (
                "logyard_uptime_seconds",
                "gauge",
                "Seconds since the server started.",
                uptime_s,
            ),
        ];
        let uploads = store.uploads.as_ref().map(|u| {
            [
                (
                    "logyard_storage_upload_pending_files",
                    "gauge",
                    "Segment files on the local disk not yet uploaded to the bucket.",
                    u.pending_files as f64,
                ),
                (
                    "logyard_storage_upload_pending_bytes",
                    "gauge",
                    "Bytes of the segment files on the local disk not yet uploaded to the bucket.",
                    u.pending_bytes as f64,
                ),
                (
                    "logyard_storage_upload_lag_seconds",
                    "gauge",
                    "How long the oldest segment file not yet uploaded has waited (0: none).",
                    u.upload_lag_seconds,
                ),
                (
                    "logyard_storage_uploaded_files_total",
                    "counter",
                    "Segment files uploaded to the bucket.",
                    u.uploaded_files as f64,
                ),
                (
                    "logyard_storage_uploaded_bytes_total",
                    "counter",
                    "Bytes of segment files uploaded to the bucket.",
                    u.uploaded_bytes as f64,
                ),
                (
                    "logyard_storage_upload_errors_total",
                    "counter",
                    "Uploads to the bucket that failed (each is tried again).",
                    u.errors as f64,
                ),
                (
                    "logyard_storage_cache_evicted_files_total",
                    "counter",
                    "Local copies of uploaded segment files removed by the cache's limits.",
                    u.evicted_files as f64,
                ),
                (
                    "logyard_storage_downloads_total",
                    "counter",
                    "Reads from the bucket (whole objects and byte ranges of segments).",
                    u.downloads as f64,
                ),
                (
                    "logyard_storage_downloaded_bytes_total",
                    "counter",
                    "Bytes read from the bucket.",
                    u.downloaded_bytes as f64,
                ),
                (
                    "logyard_storage_download_errors_total",
                    "counter",
                    "Reads from the bucket that failed (after the client's retries).",
                    u.download_errors as f64,
                ),
            ]
        });
        for (name, kind, help, value) in simple.into_iter().chain(uploads.into_iter().flatten()) {
            header(&mut out, name, kind, help);
            let _ = writeln!(out, "{name} {value}");
        }
        if let Some(r) = &store.range_cache {
            for (name, kind, help, value) in [
                (
                    "logyard_storage_range_cache_bytes",
                    "gauge",
                    "Bytes of the ranges of the bucket's segment files kept on the local disk.",
                    r.bytes,
                ),
                (
                    "logyard_storage_range_cache_hits_total",
                    "counter",
                    "Chunks of the bucket's segment files read from the local disk.",
                    r.hits,
                ),
                (
                    "logyard_storage_range_cache_misses_total",
                    "counter",
                    "Chunks of the bucket's segment files fetched from the bucket.",
                    r.misses,
                ),
            ] {
                header(&mut out, name, kind, help);
                let _ = writeln!(out, "{name} {value}");
            }
        }
        if let Some(u) = &store.uploads {
            let name = "logyard_storage_request_errors_total";
            header(
                &mut out,
                name,
                "counter",
                "Failed uploads to and reads from the bucket, by operation and kind.",
            );
            for (op, counts) in [
                ("upload", &u.upload_errors_by_kind),
                ("download", &u.download_errors_by_kind),
            ] {
                for (kind, n) in logyard_store::ERROR_KINDS.iter().zip(counts) {
                    let _ = writeln!(out, "{name}{{op=\"{op}\",kind=\"{kind}\"}} {n}");
                }
            }
        }
        let name = "logyard_rejected_lines_total";
        header(&mut out, name, "counter", "Log lines refused, by reason.");
        let mut rejected = self.rejected.lock().expect("metrics lock").clone();
        // Counted by the store, which refuses them on every way in (sources included).
        rejected.insert("expired", store.refused_expired);
        for (reason, v) in &rejected {
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
            h.render(&mut out, name, &labels, &LATENCY_BUCKETS);
        }
        let name = "logyard_query_duration_seconds";
        header(
            &mut out,
            name,
            "histogram",
            "Latency of the API's searches, queries, statistics, exports and reports, by kind.",
        );
        for (kind, h) in self.queries.lock().expect("metrics lock").iter() {
            h.render(&mut out, name, &format!("kind=\"{kind}\""), &QUERY_BUCKETS);
        }
        let name = "logyard_log_errors_total";
        header(
            &mut out,
            name,
            "counter",
            "Log entries at ERROR and above accepted, by agent (agents past [metrics] max_agents as \"other\").",
        );
        for (agent, v) in self.log_errors.lock().expect("metrics lock").iter() {
            let _ = writeln!(out, "{name}{{agent=\"{}\"}} {v}", escape(agent));
        }
        out
    }

    /// Renders the size and free space of the filesystems holding directories logyard
    /// writes, as `(label, size bytes, available bytes)`: `dir="data"` is the data directory.
    pub fn render_filesystems(dirs: &[(&str, u64, u64)]) -> String {
        let mut out = String::new();
        for (name, help, pick) in [
            (
                "logyard_filesystem_size_bytes",
                "Size of the filesystem holding a directory logyard writes.",
                0,
            ),
            (
                "logyard_filesystem_avail_bytes",
                "Bytes available to logyard on the filesystem holding a directory it writes.",
                1,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            for (dir, size, avail) in dirs {
                let v = if pick == 0 { size } else { avail };
                let _ = writeln!(out, "{name}{{dir=\"{}\"}} {v}", escape(dir));
            }
        }
        out
    }

    /// Renders the ingest rate gauge: lines per second over the last minute.
    pub fn render_rate(lines_per_second: f64) -> String {
        let name = "logyard_ingest_lines_per_second";
        format!(
            "# HELP {name} Log lines accepted per second over the last minute (rate(logyard_ingested_lines_total[5m]) is the usual way).\n# TYPE {name} gauge\n{name} {lines_per_second}\n"
        )
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
