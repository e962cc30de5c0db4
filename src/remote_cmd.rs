//! `logyard remote`: read a remote host's containers over SSH, read-only — status, logs,
//! errors, one container, health — and save its logs into the local store.
//!
//! The host's settings come from a `[[sources]] type = "ssh"` entry of the configuration
//! (the first one, or `--source NAME`), or from `--host` and the other flags alone. Every
//! command goes through the allow-list of `logyard_sources::ssh::allow` and is written to
//! the audit log, as the `ssh` source's are.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use logyard_model::{format_rfc3339, now_ns, Level, Record};
use logyard_parse::{LineContext, Parser};
use logyard_sources::ssh::docker::{parse_inspect, parse_ps, parse_stats, split_stamp};
use logyard_sources::ssh::{Remote, RemoteCommand};
use logyard_sources::{Source, SourceConfig, SourceContext, SshConfig, SshSource};

use crate::config::RawConfig;

/// `logyard remote`.
#[derive(Debug, Args)]
pub struct RemoteArgs {
    /// The `[[sources]]` entry of type "ssh" to use, by name (default: the first one).
    #[arg(long, global = true)]
    pub source: Option<String>,
    /// The host to connect to, instead of the configuration's.
    #[arg(long, global = true)]
    pub host: Option<String>,
    /// The SSH port.
    #[arg(long, global = true)]
    pub port: Option<u16>,
    /// The user to log in as.
    #[arg(long, global = true)]
    pub user: Option<String>,
    /// The private key to log in with.
    #[arg(long, global = true, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// The known-hosts file holding the host's key.
    #[arg(long, global = true, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
    /// Bound on connecting (e.g. 10s).
    #[arg(long, global = true)]
    pub connect_timeout: Option<String>,
    /// Bound on each command (e.g. 60s).
    #[arg(long, global = true)]
    pub command_timeout: Option<String>,
    /// Data directory: the store of `save`, and the default audit log's folder (overrides
    /// server.data_dir).
    #[arg(long, global = true)]
    pub data: Option<PathBuf>,
    #[command(subcommand)]
    pub command: RemoteCommandArg,
}

/// The subcommands of `logyard remote`.
#[derive(Debug, Subcommand)]
pub enum RemoteCommandArg {
    /// Whether the host answers, and its containers (`docker ps`).
    Status,
    /// The recent lines of every selected container, oldest first.
    Logs {
        /// Hours back from now.
        #[arg(default_value_t = 1)]
        hours: u32,
        /// Newest lines to print at most.
        #[arg(long, default_value_t = 500)]
        limit: usize,
    },
    /// The ERROR and CRITICAL lines of every selected container, or with `--json` a summary
    /// per container: lines by level, the most frequent error patterns, first and last times.
    Errors {
        /// Hours back from now.
        #[arg(default_value_t = 1)]
        hours: u32,
        /// Newest lines to print at most (text form).
        #[arg(long, default_value_t = 500)]
        limit: usize,
        /// Print the summary per container as one JSON document instead of the lines.
        #[arg(long)]
        json: bool,
        /// Error patterns listed per container at most (with `--json`).
        #[arg(long, default_value_t = 10)]
        top: usize,
    },
    /// The recent lines of one container.
    Container {
        /// The container's name or id.
        name: String,
        /// Hours back from now.
        #[arg(default_value_t = 1)]
        hours: u32,
        /// Newest lines to print at most.
        #[arg(long, default_value_t = 500)]
        limit: usize,
    },
    /// Store the host's logs in the local data directory; a second run adds only new lines.
    Save {
        /// Hours back from now, for what was never saved.
        #[arg(default_value_t = 1)]
        hours: u32,
        /// Also write the lines this run stores as one JSON document to FILE (replaced
        /// whole: written beside it, then renamed).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// CPU, memory, state, health and restarts of every running container.
    Health,
    /// Run one allowed read-only command as typed (`docker logs --tail 20 web`) and print
    /// its output; anything else is refused before it is sent.
    Run {
        /// The command's words.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        words: Vec<String>,
    },
}

/// Returns the host's settings and the name of its source.
fn host_config(config: &RawConfig, args: &RemoteArgs) -> anyhow::Result<(String, SshConfig)> {
    let names = logyard_sources::source_names(&config.sources)?;
    let entries: Vec<(String, &SshConfig)> = names
        .into_iter()
        .zip(&config.sources)
        .filter_map(|(n, c)| match c {
            SourceConfig::Ssh(s) => Some((n, &**s)),
            _ => None,
        })
        .collect();
    let (name, mut cfg) =
        match (&args.host, &args.source) {
            (Some(h), _) => (format!("remote-{h}"), SshConfig::new(h)),
            (None, Some(want)) => {
                entries
                    .iter()
                    .find(|(n, _)| n == want)
                    .map(|(n, c)| (n.clone(), (*c).clone()))
                    .with_context(|| {
                        format!(
                    "no [[sources]] entry of type \"ssh\" is named {want:?} (there are: {})",
                    entries.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
                )
                    })?
            }
            (None, None) => entries
                .first()
                .map(|(n, c)| (n.clone(), (*c).clone()))
                .context(
                    "no host: add a [[sources]] entry with type = \"ssh\" to the configuration \
                 (docs/sources.md), or give --host",
                )?,
        };
    if let Some(p) = args.port {
        cfg.port = p;
    }
    if let Some(u) = &args.user {
        cfg.user = Some(u.clone());
    }
    if let Some(i) = &args.identity {
        cfg.identity_file = Some(i.clone());
    }
    if let Some(k) = &args.known_hosts {
        cfg.known_hosts_file = Some(k.clone());
    }
    let dur = |flag: &str, text: &str| -> anyhow::Result<Duration> {
        let ns = logyard_model::parse_duration(text).with_context(|| format!("--{flag}"))?;
        Ok(Duration::from_nanos(ns.max(0) as u64))
    };
    if let Some(t) = &args.connect_timeout {
        cfg.connect_timeout = dur("connect-timeout", t)?;
    }
    if let Some(t) = &args.command_timeout {
        cfg.command_timeout = dur("command-timeout", t)?;
    }
    Ok((name, cfg))
}

/// Runs `logyard remote`.
pub fn run(mut config: RawConfig, args: RemoteArgs) -> anyhow::Result<()> {
    if let Some(d) = &args.data {
        config.server.data_dir = d.clone();
    }
    let (name, cfg) = host_config(&config, &args)?;
    let max_line = config.limits.max_line_bytes.0 as usize;
    let remote = cfg.remote(&name, &config.server.data_dir, max_line)?;
    let h = Host {
        cfg: &cfg,
        remote: &remote,
        config: &config,
    };
    match args.command {
        RemoteCommandArg::Status => h.status(),
        RemoteCommandArg::Logs { hours, limit } => h.print_logs(None, hours, limit, false),
        RemoteCommandArg::Errors {
            hours,
            json: true,
            top,
            ..
        } => h.error_summary(hours, top),
        RemoteCommandArg::Errors { hours, limit, .. } => h.print_logs(None, hours, limit, true),
        RemoteCommandArg::Container { name, hours, limit } => {
            h.print_logs(Some(name), hours, limit, false)
        }
        RemoteCommandArg::Save { hours, out } => save(&config, &name, &cfg, hours, out.as_deref()),
        RemoteCommandArg::Health => h.health(),
        RemoteCommandArg::Run { words } => {
            let cmd = match remote.allow_list().parse(&words, now_ns()) {
                Ok(c) => c,
                Err(refused) => {
                    remote.audit_refused(&words.join(" "), &refused);
                    return Err(refused.into());
                }
            };
            let out = remote.output(&cmd)?;
            std::io::Write::write_all(&mut std::io::stdout(), &out)?;
            Ok(())
        }
    }
}

/// A host and what the commands need to read it.
struct Host<'a> {
    cfg: &'a SshConfig,
    remote: &'a Remote,
    config: &'a RawConfig,
}

impl Host<'_> {
    /// Lists the containers, or fails with what to do.
    fn containers(&self) -> anyhow::Result<Vec<logyard_sources::ssh::docker::Container>> {
        let out = self.remote.output(&RemoteCommand::DockerPs)?;
        Ok(parse_ps(&out))
    }

    /// The running containers that the configuration selects.
    fn selected(&self) -> anyhow::Result<Vec<String>> {
        let patterns: Option<Vec<glob::Pattern>> = self.cfg.containers.as_ref().map(|l| {
            l.iter()
                .filter_map(|p| glob::Pattern::new(p).ok())
                .collect()
        });
        Ok(self
            .containers()?
            .into_iter()
            .filter(|c| c.is_live())
            .filter(|c| {
                patterns
                    .as_ref()
                    .is_none_or(|p| p.iter().any(|p| p.matches(c.name())))
            })
            .map(|c| c.name().to_string())
            .collect())
    }

    fn status(&self) -> anyhow::Result<()> {
        let list = self.containers()?;
        let running = list.iter().filter(|c| c.is_live()).count();
        println!(
            "{} ({}): reachable, {} containers, {running} running",
            self.cfg.host_name(),
            self.remote.target.display(),
            list.len()
        );
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|c| {
                vec![
                    c.name().to_string(),
                    c.image.clone(),
                    c.state.clone(),
                    c.status.clone(),
                ]
            })
            .collect();
        print!(
            "{}",
            crate::table::render(&["NAME", "IMAGE", "STATE", "STATUS"], &rows)
        );
        Ok(())
    }

    /// Reads the lines of `names` since `since` (ns), parsed; with `errors_only`, only those
    /// at ERROR and above. Returns them with their container's name, oldest first.
    fn read_lines(
        &self,
        names: &[String],
        since: i64,
        errors_only: bool,
    ) -> anyhow::Result<Vec<(Record, String)>> {
        let mut parser = Parser::new(self.config.parser_config(
            logyard_parse::Format::Auto,
            logyard_parse::TimeZone::default(),
        ))?;
        let mut rows: Vec<(Record, String)> = Vec::new();
        for name in names {
            let source = format!("ssh:{}/{name}", self.cfg.host_name());
            let cmd = RemoteCommand::DockerLogs {
                container: name.clone(),
                since: Some(since),
                timestamps: true,
                tail: None,
            };
            self.remote.run(&cmd, &mut |l| {
                let Some((ts, text)) = split_stamp(l.text) else {
                    // Docker's own message, joined to the logs by `2>&1`: a failed
                    // command's error carries it.
                    return true;
                };
                let ctx = LineContext {
                    source: &source,
                    agent_hint: name,
                    host: self.cfg.host_name(),
                    received_ns: ts,
                };
                if let Some(r) = parser.parse(text, &ctx) {
                    if !errors_only || r.level.is_some_and(|l| l >= Level::Error) {
                        rows.push((r, name.clone()));
                    }
                }
                true
            })?;
        }
        rows.sort_by_key(|(r, _)| r.timestamp);
        Ok(rows)
    }

    fn print_logs(
        &self,
        one: Option<String>,
        hours: u32,
        limit: usize,
        errors_only: bool,
    ) -> anyhow::Result<()> {
        let names = match one {
            Some(n) => vec![n],
            None => self.selected()?,
        };
        let since = hours_before(now_ns(), hours);
        let rows = self.read_lines(&names, since, errors_only)?;
        let shown = rows.len().saturating_sub(limit);
        let table: Vec<Vec<String>> = rows[shown..]
            .iter()
            .map(|(r, c)| {
                vec![
                    format_rfc3339(r.timestamp),
                    c.clone(),
                    r.level.map_or("-", Level::as_str).to_string(),
                    r.message.lines().next().unwrap_or("").to_string(),
                ]
            })
            .collect();
        print!(
            "{}",
            crate::table::render(&["TIME", "CONTAINER", "LEVEL", "MESSAGE"], &table)
        );
        if errors_only {
            let mut by: std::collections::BTreeMap<&str, usize> = Default::default();
            for (_, c) in &rows {
                *by.entry(c).or_default() += 1;
            }
            let parts: Vec<String> = by.iter().map(|(c, n)| format!("{c} {n}")).collect();
            println!(
                "{} error{} in the last {hours}h on {}{}{}",
                rows.len(),
                if rows.len() == 1 { "" } else { "s" },
                self.cfg.host_name(),
                if parts.is_empty() { "" } else { ": " },
                parts.join(", ")
            );
        }
        if shown > 0 {
            eprintln!("{shown} older lines not shown (--limit {limit})");
        }
        Ok(())
    }

    /// `logyard remote errors --json`: per selected container, its lines by level and its
    /// most frequent error patterns, as one JSON document on stdout.
    fn error_summary(&self, hours: u32, top: usize) -> anyhow::Result<()> {
        let names = self.selected()?;
        let until = now_ns();
        let since = hours_before(until, hours);
        let rows = self.read_lines(&names, since, false)?;
        let summary = crate::remote_json::summarize(self.cfg.host_name(), &names, &rows, top);
        let mut doc = serde_json::json!({
            "host": self.cfg.host_name(),
            "hours": hours,
            "since": format_rfc3339(since),
            "until": format_rfc3339(until),
        });
        if let (Some(d), serde_json::Value::Object(s)) = (doc.as_object_mut(), summary) {
            d.extend(s);
        }
        println!("{}", serde_json::to_string_pretty(&doc)?);
        Ok(())
    }

    fn health(&self) -> anyhow::Result<()> {
        let names = self.selected()?;
        if names.is_empty() {
            println!("{}: no running container", self.cfg.host_name());
            return Ok(());
        }
        let stats = parse_stats(&self.remote.output(&RemoteCommand::DockerStats {
            containers: names.clone(),
        })?);
        let inspected = parse_inspect(&self.remote.output(&RemoteCommand::DockerInspect {
            containers: names.clone(),
        })?);
        let rows: Vec<Vec<String>> = names
            .iter()
            .map(|n| {
                let s = stats
                    .iter()
                    .find(|s| &s.name == n)
                    .cloned()
                    .unwrap_or_default();
                let i = inspected
                    .iter()
                    .find(|i| &i.name == n)
                    .cloned()
                    .unwrap_or_default();
                let dash = |t: &str| {
                    if t.is_empty() {
                        "-".to_string()
                    } else {
                        t.to_string()
                    }
                };
                vec![
                    n.clone(),
                    dash(&i.status),
                    dash(&i.health),
                    i.restart_count.to_string(),
                    dash(&s.cpu),
                    dash(&s.mem_usage),
                    dash(&s.mem_perc),
                    dash(&s.pids),
                    dash(&i.started_at),
                ]
            })
            .collect();
        print!(
            "{}",
            crate::table::render(
                &[
                    "NAME", "STATE", "HEALTH", "RESTARTS", "CPU", "MEMORY", "MEM%", "PIDS",
                    "STARTED"
                ],
                &rows
            )
        );
        let troubled: Vec<&Vec<String>> = rows
            .iter()
            .filter(|r| r[2] == "unhealthy" || r[1] != "running")
            .collect();
        if !troubled.is_empty() {
            println!(
                "needs attention: {}",
                troubled
                    .iter()
                    .map(|r| r[0].as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Ok(())
    }
}

/// The time `hours` hours before `now` (ns), no earlier than 1970: a huge `HOURS` means
/// "everything".
fn hours_before(now: i64, hours: u32) -> i64 {
    now.saturating_sub(i64::from(hours).saturating_mul(3_600_000_000_000))
        .max(0)
}

/// `logyard remote save`: one poll of the host's source into the local store. It shares the
/// source's checkpoint, so neither a second run nor `logyard serve` stores a line twice.
/// With `out`, the lines stored by this run are also written there as one JSON document.
fn save(
    config: &RawConfig,
    name: &str,
    cfg: &SshConfig,
    hours: u32,
    out: Option<&Path>,
) -> anyhow::Result<()> {
    if let Some(out) = out {
        crate::remote_json::check_out(out)?;
    }
    let store = Arc::new(
        logyard_store::Store::open(config.store_config()).with_context(|| {
            format!(
                "cannot open the data directory {} (is `logyard serve` using it? Then let its ssh source collect)",
                config.server.data_dir.display()
            )
        })?,
    );
    let source = SshSource::new(name, cfg.clone())?;
    let tee = Arc::new(crate::remote_json::TeeSink::new(Arc::new(
        logyard_store::StoreSink(store.clone()),
    )));
    let sink: Arc<dyn logyard_sources::Sink> = match out {
        Some(_) => tee.clone(),
        None => Arc::new(logyard_store::StoreSink(store.clone())),
    };
    let mut ctx = SourceContext::new(
        sink,
        config.server.data_dir.join("state"),
        &crate::lines::host_name(),
    );
    ctx.parser = config.parser_config(
        logyard_parse::Format::Auto,
        logyard_parse::TimeZone::default(),
    );
    let mut poller = source.poller(&ctx)?;
    let started = now_ns();
    let floor = hours_before(started, hours);
    let result = poller.poll(Some(floor));
    store.close();
    let report = result?;
    for e in &report.errors {
        eprintln!("warning: {e}");
    }
    println!(
        "saved {} records from {} containers and {} files of {} ({} lines stored before were skipped)",
        report.records,
        report.containers.len(),
        report.paths,
        cfg.host_name(),
        report.duplicates
    );
    if let Some(out) = out {
        let window = crate::remote_json::Window {
            collected_at: started,
            since: floor,
            until: now_ns(),
        };
        let doc = crate::remote_json::save_document(
            cfg.host_name(),
            &window,
            &report.containers,
            poller.remote().allow_list().paths(),
            tee.take(),
        );
        crate::remote_json::write_atomic(out, &serde_json::to_vec_pretty(&doc)?)?;
        println!("wrote them to {}", out.display());
    }
    if source.status().snapshot().errors_total > 0 || !report.errors.is_empty() {
        bail!("some containers or files could not be read");
    }
    Ok(())
}
