//! The command line: `serve`, `ingest`, `parse`, `query`, `sql`, `tail`, `export`, `errors`,
//! `slow`, `auth`, `db-errors`, `report`, `rotate`, `alerts`, `remote`, `backup`, `restore`,
//! `token`, `check-config`, `version`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Log management in one binary: collect, store, search.
#[derive(Debug, Parser)]
#[command(name = "logyard", version, about)]
pub struct Cli {
    /// Configuration file (default: ./logyard.toml when it exists).
    #[arg(long, global = true, env = "LOGYARD_CONFIG")]
    pub config: Option<PathBuf>,
    /// The token sent to a server (`--server`) as `Authorization: Bearer`.
    #[arg(long, global = true, env = "LOGYARD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

/// The token of `--token` / `LOGYARD_TOKEN`, set once when the command line is read.
static TOKEN: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

/// Keeps the command line's token for [`http`]; called once, before any request.
pub fn set_token(token: Option<String>) {
    let _ = TOKEN.set(token.filter(|t| !t.is_empty()));
}

/// An HTTP client for a server, sending the command line's token with every request.
pub fn http() -> reqwest::blocking::ClientBuilder {
    let builder = reqwest::blocking::Client::builder();
    let Some(Some(token)) = TOKEN.get() else {
        return builder;
    };
    let mut headers = reqwest::header::HeaderMap::new();
    if let Ok(mut value) = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")) {
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    builder.default_headers(headers)
}

/// Sends a request to the server at `server`; the error says when it cannot be reached.
pub fn send(
    request: reqwest::blocking::RequestBuilder,
    server: &str,
) -> anyhow::Result<reqwest::blocking::Response> {
    use anyhow::Context as _;
    request.send().with_context(|| {
        format!("cannot reach the server at {server}; is `logyard serve` running?")
    })
}

/// Reads a server's JSON answer, with its status.
pub fn json_answer(
    resp: reqwest::blocking::Response,
) -> anyhow::Result<(reqwest::StatusCode, serde_json::Value)> {
    use anyhow::Context as _;
    let status = resp.status();
    let body = resp
        .json()
        .with_context(|| format!("the server's answer ({status}) is not JSON"))?;
    Ok((status, body))
}

/// The message of a server's error answer (`{"error": {"message": …}}`), or `""`.
pub fn error_message(body: &serde_json::Value) -> &str {
    body["error"]["message"].as_str().unwrap_or("")
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: the store, the ingest and read API.
    Serve(ServeArgs),
    /// Parse log files (any common format, detected per line) and send the records to a
    /// server or a data directory.
    Ingest(IngestArgs),
    /// Print the records that lines become: check a format or a setting.
    Parse(ParseCmdArgs),
    /// Search the logs of a server or a data directory.
    Query(QueryArgs),
    /// Print the newest entries of a server and, with -f, follow new ones as they arrive.
    Tail(TailArgs),
    /// Write every match of a query to standard output as NDJSON, CSV or JSON.
    Export(ExportArgs),
    /// Summarise the errors of the last hours: by agent, critical entries, top patterns.
    Errors(ErrorsArgs),
    /// Write the report of a range: counts, error patterns, latency, logins, anomalies.
    Report(ReportArgs),
    /// Run one read-only SQL statement over the `logs` table (SELECT, WITH, EXPLAIN).
    Sql(SqlArgs),
    /// Slow requests and latency percentiles by agent and path.
    Slow(SlowArgs),
    /// Failed and successful logins, and the IPs with many failures (brute force).
    Auth(AuthArgs),
    /// Database errors by agent and template, and connection failures.
    DbErrors(DbArgs),
    /// Rotate log files once: the `[[rotate]]` rules of the configuration and/or a logrotate
    /// configuration file.
    Rotate(RotateArgs),
    /// Print the recent alerts of a server as a table.
    Alerts(AlertsArgs),
    /// Read a remote host's containers over SSH, read-only: status, logs, errors, one
    /// container, health; save its logs into the local store.
    Remote(crate::remote_cmd::RemoteArgs),
    /// Write a consistent copy of a running server's data into a directory on its host
    /// (segments, catalog, WAL), without stopping ingest; needs an administrator's token.
    Backup(BackupArgs),
    /// Check a backup and restore it into a new data directory (offline; no server runs on
    /// it), then open it once to prove it recovers.
    Restore(RestoreArgs),
    /// Make tokens for `[[auth.tokens]]`.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Make a running server read its configuration file again and put it in effect
    /// (sources, parsers, alert rules and notifiers, rotation rules, limits, tokens).
    Reload(ReloadArgs),
    /// Check the configuration file and exit.
    CheckConfig,
    /// Print the version.
    Version,
}

/// `logyard token …`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a new random token once, and the `[[auth.tokens]]` lines (with its hash only) to
    /// add to logyard.toml.
    New {
        /// The token's name: HTTP Basic's user, and what logs and errors call it.
        #[arg(long)]
        name: String,
        /// ingest (the ingest endpoints), read (every read and the UI) or admin (everything).
        #[arg(long)]
        role: String,
        /// A read token's filter, ANDed into every read it makes (e.g. `agent:billing-*`).
        #[arg(long)]
        scope: Option<String>,
        /// An ingest token's fixed label, NAME=VALUE (agent, host or source); repeatable.
        #[arg(long = "label", value_name = "NAME=VALUE")]
        labels: Vec<String>,
        /// Print an Argon2id hash instead of a SHA-256 one.
        #[arg(long)]
        argon2: bool,
    },
}

/// `logyard serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Data directory (overrides server.data_dir).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:8062 (overrides server.listen).
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// Also collect the lines of standard input (`some-program | logyard serve --stdin`).
    #[arg(long)]
    pub stdin: bool,
    /// Follow the files matching this glob (repeatable; quote it: `--follow '/tmp/*.log'`),
    /// as a file source named `follow` with every other key at its default.
    #[arg(long, value_name = "GLOB")]
    pub follow: Vec<String>,
    /// What this node does with the bucket of `[storage]`: all (one node), ingest (stores
    /// under its own `node=<id>/` folder of the prefix) or query (stores nothing, serves every
    /// node's segments).
    #[arg(long, default_value = "all", value_parser = logyard_store::NodeRole::parse)]
    pub role: logyard_store::NodeRole,
}

/// Where a client command works: a running server or a data directory.
#[derive(Debug, Args)]
pub struct Target {
    /// URL of a running server, e.g. http://127.0.0.1:8062.
    #[arg(long, conflicts_with = "data")]
    pub server: Option<String>,
    /// Data directory to work on directly (no server may hold it).
    #[arg(long)]
    pub data: Option<PathBuf>,
}

/// `logyard ingest`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    #[command(flatten)]
    pub target: Target,
    /// Files to read, or `-` for standard input.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub parse: crate::lines::ParseArgs,
    /// Records per batch.
    #[arg(long, default_value_t = 5000)]
    pub batch: usize,
}

/// `logyard parse`.
#[derive(Debug, Args)]
pub struct ParseCmdArgs {
    /// Files to read, or `-` for standard input.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub parse: crate::lines::ParseArgs,
    /// Print one JSON record per line, every field included.
    #[arg(long)]
    pub ndjson: bool,
}

/// `logyard query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// A query in the query language (docs/query.md): a filter (`*` for everything), then
    /// optional pipes such as `| stats count() by (agent)`.
    #[arg(default_value = "*")]
    pub query: String,
    #[command(flatten)]
    pub target: Target,
    /// Only this agent.
    #[arg(long)]
    pub agent: Option<String>,
    /// Only this level.
    #[arg(long)]
    pub level: Option<String>,
    /// Only this level and above.
    #[arg(long)]
    pub min_level: Option<String>,
    /// Only entries newer than this: a duration (1h, 7d) or a time (RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// Only entries older than this time.
    #[arg(long)]
    pub until: Option<String>,
    /// Most entries to print.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Newest entries to skip.
    #[arg(long, default_value_t = 0)]
    pub offset: usize,
    /// Print one JSON document.
    #[arg(long, conflicts_with = "ndjson")]
    pub json: bool,
    /// Print one JSON record per line, every field included.
    #[arg(long)]
    pub ndjson: bool,
}

/// `logyard tail`.
#[derive(Debug, Args)]
pub struct TailArgs {
    /// Which entries, in the query language (filters only).
    #[arg(default_value = "*")]
    pub query: String,
    /// URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8062")]
    pub server: String,
    /// Keep printing new entries as they are acknowledged.
    #[arg(short, long)]
    pub follow: bool,
    /// How many of the newest entries to print first.
    #[arg(short = 'n', long, default_value_t = 10)]
    pub lines: usize,
    /// Print one JSON entry per line.
    #[arg(long)]
    pub ndjson: bool,
}

/// `logyard export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Which entries, in the query language; pipes make a table.
    #[arg(default_value = "*")]
    pub query: String,
    #[command(flatten)]
    pub target: Target,
    /// ndjson, csv or json.
    #[arg(long, default_value = "ndjson")]
    pub format: String,
    /// Only entries newer than this: a duration (1h, 7d) or a time (RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
}

/// `logyard errors`.
#[derive(Debug, Args)]
pub struct ErrorsArgs {
    #[command(flatten)]
    pub target: Target,
    /// The period: this many hours back from now.
    #[arg(long, default_value_t = 24)]
    pub hours: usize,
    /// Print the summary as JSON (the shape of GET /api/errors/summary).
    #[arg(long)]
    pub json: bool,
}

/// `logyard report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub target: Target,
    /// Start of the range: a duration before --until (24h, 7d) or a time (RFC 3339).
    #[arg(long, default_value = "24h")]
    pub since: String,
    /// End of the range (excluded): `now` or a time.
    #[arg(long, default_value = "now")]
    pub until: String,
    /// md, html or json.
    #[arg(long, default_value = "md")]
    pub format: String,
    /// Write to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// `logyard sql`.
#[derive(Debug, Args)]
pub struct SqlArgs {
    /// The statement, e.g. `SELECT level, count(*) FROM logs GROUP BY level` (docs/query.md).
    pub sql: String,
    #[command(flatten)]
    pub target: Target,
    /// table, json or csv.
    #[arg(long, default_value = "table")]
    pub format: String,
}

/// The range and target of an analysis.
#[derive(Debug, Args)]
pub struct AnalysisRange {
    #[command(flatten)]
    pub target: Target,
    /// The period: this many hours back from --until.
    #[arg(long, default_value_t = 24)]
    pub hours: usize,
    /// Start of the range instead of --hours: a duration before --until (7d) or a time.
    #[arg(long)]
    pub since: Option<String>,
    /// End of the range (excluded): `now` (default) or a time.
    #[arg(long)]
    pub until: Option<String>,
}

/// `logyard slow`.
#[derive(Debug, Args)]
pub struct SlowArgs {
    #[command(flatten)]
    pub range: AnalysisRange,
    /// A request is slow above this `response_time_ms` (default: report.slow_ms).
    #[arg(long)]
    pub threshold_ms: Option<f64>,
    /// Most slow requests listed (default: report.slow_limit).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Print the answer of GET /api/analyses/slow as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `logyard auth`.
#[derive(Debug, Args)]
pub struct AuthArgs {
    #[command(flatten)]
    pub range: AnalysisRange,
    /// List the IPs with at least this many failed logins in one window (default: one
    /// more than report.suspicious_failures).
    #[arg(long)]
    pub min_failures: Option<u64>,
    /// Count failures per window of this length (10m, 1h); default: the whole range.
    #[arg(long)]
    pub window: Option<String>,
    /// Print the answer of GET /api/analyses/auth as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `logyard db-errors`.
#[derive(Debug, Args)]
pub struct DbArgs {
    #[command(flatten)]
    pub range: AnalysisRange,
    /// Print the answer of GET /api/analyses/db as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `logyard alerts`.
#[derive(Debug, Args)]
pub struct AlertsArgs {
    /// URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8062")]
    pub server: String,
    /// Most alerts to print.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Print the answer of GET /api/alerts as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `logyard reload`.
#[derive(Debug, Args)]
pub struct ReloadArgs {
    /// URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8062")]
    pub server: String,
}

/// `logyard backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8062")]
    pub server: String,
    /// A new or empty directory on the server's host (a relative one is made absolute
    /// against this command's current directory).
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,
    /// Print the answer of POST /api/admin/backup as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `logyard restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup directory (`logyard backup --to`).
    #[arg(long, value_name = "DIR")]
    pub from: PathBuf,
    /// The new data directory: missing or empty.
    #[arg(long, value_name = "NEWDIR")]
    pub data: PathBuf,
}

/// `logyard rotate`.
#[derive(Debug, Args)]
pub struct RotateArgs {
    /// Also rotate what this logrotate configuration file (logrotate.conf syntax) describes.
    #[arg(long, value_name = "FILE")]
    pub logrotate_conf: Option<PathBuf>,
    /// Print each decision and why, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Rotate every file now, whatever its triggers say.
    #[arg(long)]
    pub force: bool,
    /// Print each decision and action.
    #[arg(long)]
    pub verbose: bool,
    /// State file of last rotations (default: state/rotate.json under the data directory).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Data directory whose state/ holds the default state file (overrides server.data_dir).
    #[arg(long)]
    pub data: Option<PathBuf>,
}
