//! `logyard serve`: open the store (recovery first), then open the port; a reload (SIGHUP,
//! `logyard reload`) puts a changed configuration file in effect without a restart.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use serde_json::{json, Value};

use crate::cli::ServeArgs;
use crate::collect::Collectors;
use crate::config::RawConfig;

/// Writes the command line's settings over the file's (they win at a reload too).
fn apply_args(config: &mut RawConfig, args: &ServeArgs) {
    if let Some(data) = &args.data {
        config.server.data_dir = data.clone();
    }
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    if !args.follow.is_empty() {
        let globs: Vec<&str> = args.follow.iter().map(String::as_str).collect();
        let mut follow = logyard_sources::FileConfig::new(&globs);
        follow.name = Some("follow".into());
        config
            .sources
            .push(logyard_sources::SourceConfig::File(follow));
    }
    if args.role == logyard_store::NodeRole::Query {
        if !config.sources.is_empty() || args.stdin {
            tracing::warn!("a query node stores nothing: its [[sources]] and --stdin are not started; run them on an ingest node");
        }
        if config.alerts.enabled {
            tracing::info!(
                "alerting runs where entries are ingested: it is off on this query node"
            );
        }
        config.sources.clear();
        config.alerts.enabled = false;
    }
}

/// The parts of the API's state a reload replaces, built from `config` over `base` (whose
/// store, metrics, sessions and stop signal every version shares).
fn app_state(
    config: &RawConfig,
    mut base: logyard_api::AppState,
    auth: logyard_api::auth::Auth,
    collectors: &Collectors,
) -> anyhow::Result<logyard_api::AppState> {
    base.limits = config.limits();
    base.ingest = config.ingest_options("http");
    base.query = config.query_settings();
    base.auth = Arc::new(auth);
    base.redactor = Arc::new(
        logyard_parse::Redactor::new(
            &config
                .parser_config(Default::default(), Default::default())
                .redact,
        )
        .context("invalid [redact] pattern")?,
    );
    base.sources = collectors.statuses();
    base.report = config.report_settings()?;
    Ok(base)
}

/// Runs the server until SIGINT or SIGTERM.
pub fn run(
    mut config: RawConfig,
    config_path: Option<PathBuf>,
    args: ServeArgs,
) -> anyhow::Result<()> {
    apply_args(&mut config, &args);
    let auth = config.auth()?;
    let listen = config.server.listen;
    if !auth.enabled() && !listen.ip().is_loopback() && !config.server.allow_unauthenticated {
        anyhow::bail!(
            "{listen} is reachable from other hosts, and no token is configured: anyone could \
             read every log. Add a token (`logyard token new --name NAME --role admin` prints \
             the [[auth.tokens]] lines to add to logyard.toml), listen on 127.0.0.1, or set \
             [server] allow_unauthenticated = true to serve without tokens on purpose"
        );
    }
    // The certificate is read before anything else starts: a bad file stops the start.
    let tls = config.server_tls()?;
    if tls.as_ref().is_some_and(|t| t.client_ca()) && !auth.enabled() {
        tracing::warn!(
            "[server] tls_client_ca is set but no [[auth.tokens]]: without tokens every client \
             may do everything, so client certificates change nothing; add tokens to make them \
             the only way to ingest without one"
        );
    }
    let mut store_config = config.store_config();
    config
        .storage
        .apply(&mut store_config, args.role)
        .map_err(anyhow::Error::msg)?;
    if let Some(follow) = &mut store_config.follow {
        follow.link = Some(Arc::new(node_link(&config.storage)?));
    }
    // The server alone deletes by retention and disk budget.
    store_config.prune = true;
    let data_dir = store_config.data_dir.clone();
    // Recovery (WAL replay) happens here, before the port opens.
    let store = Arc::new(
        logyard_store::Store::open(store_config)
            .with_context(|| format!("cannot open the store in {}", data_dir.display()))?,
    );
    // Alerting first: rotation and the daily report send through its notifiers.
    let alerting = if config.alerts.enabled {
        let state_path = data_dir.join("state").join("alerts.json");
        Some(
            logyard_alert::AlertHandle::new(
                config.alerting()?,
                Arc::new(logyard_model::SystemClock),
                Some(state_path),
            )
            .with_store(store.clone()),
        )
    } else {
        None
    };
    let stdin = args.stdin && args.role != logyard_store::NodeRole::Query;
    let collectors = Collectors::start(&config, store.clone(), &data_dir, stdin)?;
    let (rules, rotation) = config.rotation()?;
    let rotation_task = if rules.is_empty() {
        None
    } else {
        if let Some(dir) = rotation.state_path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let mut rotation = rotation;
        // Let the collectors open the files they follow before any of them is renamed.
        rotation.first_run_after = crate::collect::DRAIN_GRACE;
        let mut daemon = logyard_rotate::Daemon::new(
            rules,
            rotation,
            Arc::new(crate::collect::DrainObserver::new(collectors.clone())),
            Arc::new(logyard_model::SystemClock),
        );
        if let Some(alerts) = &alerting {
            daemon = daemon.with_alerts(crate::system_alerts::rotation(alerts.clone()));
        }
        Some(daemon.spawn().context("cannot start the rotation task")?)
    };
    let mut state = logyard_api::AppState::new(
        store.clone(),
        config.limits(),
        config.ingest_options("http"),
    );
    state.sql = Arc::new(logyard_sql::SqlPool::new(config.sql_pool()));
    let mut state = app_state(&config, state, auth, &collectors)?;
    {
        let collectors = collectors.clone();
        let max_files = config.metrics.max_file_series;
        state = state.with_metrics_source(Arc::new(move || {
            let snapshots: Vec<_> = collectors.statuses().iter().map(|s| s.snapshot()).collect();
            let mut text = logyard_sources::render_prometheus(&snapshots);
            text.push_str(&logyard_sources::render_file_metrics(&snapshots, max_files));
            text
        }));
    }
    state.metrics.set_max_agents(config.metrics.max_agents);
    {
        let data_dir = data_dir.clone();
        state =
            state.with_metrics_source(Arc::new(move || {
                match logyard_rotate::filesystem_usage(&data_dir) {
                    Ok(u) => logyard_api::Metrics::render_filesystems(&[(
                        "data",
                        u.size,
                        u.size.saturating_sub(u.used),
                    )]),
                    Err(_) => String::new(),
                }
            }));
    }
    // The daily report, sent through the alert notifiers when alerting is on.
    let report_task = match config.report_schedule()? {
        Some(schedule) => {
            let scheduler = Arc::new(logyard_report::Scheduler::new(
                store.clone(),
                schedule,
                Arc::new(logyard_model::SystemClock),
                alerting
                    .as_ref()
                    .map(|a| crate::system_alerts::report(a.clone())),
            ));
            let metrics = scheduler.metrics();
            state = state.with_metrics_source(Arc::new(move || metrics.render_prometheus()));
            let thread = scheduler
                .clone()
                .spawn()
                .context("cannot start the report scheduler")?;
            Some((thread, scheduler))
        }
        None => None,
    };
    if let Some(handle) = &alerting {
        let metrics = handle.clone();
        state = state.with_metrics_source(Arc::new(move || metrics.render_metrics()));
        state.alerts = Some(handle.clone());
    }
    if let Some((_, handle)) = &rotation_task {
        let handle = handle.clone();
        state = state.with_metrics_source(Arc::new(move || handle.metrics().render_prometheus()));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        // Subscribed before the port opens: no acknowledged batch escapes the rules.
        let alert_task = alerting.as_ref().map(|a| a.spawn(store.subscribe()));
        let upload_watch = alerting
            .as_ref()
            .filter(|_| config.storage.s3.is_some())
            .map(|a| {
                tokio::spawn(crate::system_alerts::watch_uploads(
                    store.clone(),
                    a.clone(),
                    config.storage.alert_after,
                ))
            });
        let listener = tokio::net::TcpListener::bind(config.server.listen)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {}; is another server running there? choose another with --listen",
                    config.server.listen
                )
            })?;
        let addr = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        store.set_address(config.server.advertise_url.clone().or_else(|| {
            (!addr.ip().is_unspecified()).then(|| format!("{scheme}://{addr}"))
        }));
        state.guard = Arc::new(config.guard(addr));
        if addr.ip().is_unspecified() && config.server.allowed_hosts.is_empty() {
            tracing::warn!(
                %addr,
                "listening on every address without [server] allowed_hosts: requests naming any \
                 Host are answered; list this server's names there to refuse the others"
            );
        }
        tracing::info!(data_dir = %data_dir.display(), %addr, role = args.role.name(), "logyard is ready");
        println!("listening on {scheme}://{addr}");
        std::io::stdout().flush()?;
        let notifier = Arc::new(crate::notify::Notifier::from_env());
        let reloader = Arc::new(Reloader {
            path: config_path,
            args,
            running: Mutex::new(config.clone()),
            collectors: collectors.clone(),
            alerting: alerting.clone(),
            rotation: rotation_task.as_ref().map(|(_, h)| h.clone()),
            app: logyard_api::LiveApp::new(state.clone()),
            state: Mutex::new(state.clone()),
            addr,
        });
        {
            let r = reloader.clone();
            let hook: logyard_api::Reloader = Arc::new(move || r.reload());
            let mut with_hook = reloader.state.lock().expect("state lock").clone();
            with_hook.reload = Some(hook);
            reloader.app.replace(with_hook.clone());
            *reloader.state.lock().expect("state lock") = with_hook;
        }
        // SIGHUP (systemd's ExecReload) reads the configuration file again.
        let hangups = {
            let reloader = reloader.clone();
            let notifier = notifier.clone();
            tokio::spawn(async move {
                use tokio::signal::unix::{signal, SignalKind};
                let Ok(mut hup) = signal(SignalKind::hangup()) else {
                    return;
                };
                while hup.recv().await.is_some() {
                    notifier.send("RELOADING=1");
                    let r = reloader.clone();
                    // The outcome is logged by the reload itself.
                    let _ = tokio::task::spawn_blocking(move || r.reload()).await;
                    notifier.send("READY=1");
                }
            })
        };
        // Recovered and listening: systemd may now call the service started.
        notifier.send("READY=1");
        let watchdog = notifier.watchdog_interval().map(|every| {
            let notifier = notifier.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                loop {
                    tick.tick().await;
                    notifier.send("WATCHDOG=1");
                }
            })
        });
        let stop = {
            let notifier = notifier.clone();
            let collectors = collectors.clone();
            async move {
                shutdown_signal().await;
                notifier.send("STOPPING=1");
                // The collectors stop reading now: what they hand over from here is their
                // last batch, made durable before the store closes.
                collectors.trigger_stop();
            }
        };
        let mut options = config.server_options();
        options.tls = tls;
        logyard_api::serve_live(listener, &reloader.app, state, options, stop).await?;
        if let Some(w) = watchdog {
            w.abort();
        }
        hangups.abort();
        if let Some(w) = upload_watch {
            w.abort();
        }
        if let (Some(a), Some(task)) = (&alerting, alert_task) {
            a.stop(task).await;
        }
        anyhow::Ok(())
    })?;
    tracing::info!("stopping: the collectors");
    collectors.stop();
    if let Some((thread, handle)) = rotation_task {
        handle.stop();
        if thread.join().is_err() {
            tracing::error!("the rotation task panicked");
        }
    }
    if let Some((thread, scheduler)) = report_task {
        scheduler.stop();
        if thread.join().is_err() {
            tracing::error!("the report scheduler panicked");
        }
    }
    tracing::info!("stopping: writing the memtable to segments");
    store.close();
    Ok(())
}

/// A query node's link to the nodes it follows, with the token of `[storage]
/// node_token_env` and the authorities of `node_ca_file`; its requests take 5 recent
/// intervals at most (2 s at least).
fn node_link(
    storage: &logyard_store::StorageSettings,
) -> anyhow::Result<crate::node_link::HttpLink> {
    let token = match &storage.node_token_env {
        Some(name) => Some(std::env::var(name).map_err(|_| {
            anyhow::anyhow!(
                "[storage] node_token_env names {name}, which is not set: export the token the \
                 nodes accept (read without a scope, or admin) as {name}"
            )
        })?),
        None => None,
    };
    let timeout = (storage.recent_interval * 5).max(std::time::Duration::from_secs(2));
    crate::node_link::HttpLink::new(token, timeout, storage.node_ca_file.as_deref())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Puts a changed configuration file in effect in a running server; see
/// `docs/configuration.md#reload`.
struct Reloader {
    /// The file read at start (none: nothing to read again).
    path: Option<PathBuf>,
    /// The command line, whose settings win over the file's.
    args: ServeArgs,
    /// The configuration in effect.
    running: Mutex<RawConfig>,
    collectors: Collectors,
    alerting: Option<logyard_alert::AlertHandle>,
    rotation: Option<logyard_rotate::DaemonHandle>,
    /// The application requests go to.
    app: logyard_api::LiveApp,
    /// The API's state in effect.
    state: Mutex<logyard_api::AppState>,
    /// The address the server listens on.
    addr: std::net::SocketAddr,
}

impl Reloader {
    /// Reads the file again and puts it in effect, or refuses it whole; logs the outcome
    /// and returns what changed (or why the file was refused).
    fn reload(&self) -> Result<Value, String> {
        // One reload at a time: the lock on the configuration in effect orders them.
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let result = self.apply(&mut running);
        match &result {
            Ok(changes) => tracing::info!(%changes, "configuration reloaded"),
            Err(e) => tracing::error!("configuration not reloaded: {e}"),
        }
        result
    }

    fn apply(&self, running: &mut RawConfig) -> Result<Value, String> {
        let Some(path) = &self.path else {
            return Err(
                "the server was started without a configuration file (--config or \
                 LOGYARD_CONFIG): there is no file to read again"
                    .into(),
            );
        };
        let refused = |e: anyhow::Error| format!("{e:#}\nthe running configuration stays");
        let mut next = RawConfig::load(Some(path)).map_err(refused)?;
        apply_args(&mut next, &self.args);
        next.redaction_counts = running.redaction_counts.clone();
        // Everything is built before anything changes: a bad part refuses the whole file.
        let current = self.state.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let auth = next.auth().map_err(refused)?.carry_over(&current.auth);
        let alert_config = match &self.alerting {
            Some(_) if next.alerts.enabled => Some(next.alerting().map_err(refused)?),
            _ => None,
        };
        let (rotate_rules, _) = next.rotation().map_err(refused)?;
        logyard_sources::build_all(&next.sources)
            .context("invalid [[sources]] entry")
            .map_err(refused)?;
        let mut restart_needed = restart_needed(running, &next);
        if self.rotation.is_none() && !rotate_rules.is_empty() {
            restart_needed.push("[[rotate]] (no rotation ran at start)".to_string());
        }
        // Put in effect: collectors first (their ports), then alerting, rotation, the API.
        let sources = self.collectors.reconcile(&next).map_err(|e| {
            format!(
                "{e:#}\nthe other sources run with the new configuration; fix the file and \
                 reload again"
            )
        })?;
        let alert_rules = match (&self.alerting, alert_config) {
            (Some(handle), Some(built)) => {
                let n = built.rules.len();
                handle.reconfigure(built);
                Some(n)
            }
            _ => None,
        };
        let rotate_count = rotate_rules.len();
        if let Some(handle) = &self.rotation {
            handle.set_rules(rotate_rules);
        }
        let mut state = app_state(&next, current, auth, &self.collectors).map_err(refused)?;
        state.guard = Arc::new(next.guard(self.addr));
        self.app.replace(state.clone());
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = state;
        *running = next;
        Ok(json!({
            "reloaded": true,
            "sources": sources,
            "alert_rules": alert_rules,
            "rotate_rules": rotate_count,
            "tokens": running.auth.tokens.len(),
            "restart_needed": restart_needed,
        }))
    }
}

/// The sections that changed and that only a restart puts in effect.
fn restart_needed(running: &RawConfig, next: &RawConfig) -> Vec<String> {
    let mut sections = Vec::new();
    let mut differs = |name: &str, a: String, b: String| {
        if a != b {
            sections.push(name.to_string());
        }
    };
    differs(
        "[server]",
        format!("{:?}", running.server),
        format!("{:?}", next.server),
    );
    differs(
        "[store]",
        format!("{:?}", running.store),
        format!("{:?}", next.store),
    );
    differs(
        "[rotation]",
        format!("{:?}", running.rotation),
        format!("{:?}", next.rotation),
    );
    differs(
        "[metrics]",
        format!("{:?}", running.metrics),
        format!("{:?}", next.metrics),
    );
    let schedule = |c: &RawConfig| {
        format!(
            "{:?} {:?} {:?}",
            c.report.daily_at, c.report.dir, c.report.formats
        )
    };
    differs(
        "[report] daily_at/dir/formats",
        schedule(running),
        schedule(next),
    );
    let alert_settings = |c: &RawConfig| {
        let mut a = c.alerts.clone();
        a.rules.clear();
        a.notifiers.clear();
        format!("{a:?}")
    };
    differs("[alerts]", alert_settings(running), alert_settings(next));
    let sql = |c: &RawConfig| format!("{:?}", c.sql_pool());
    differs("[query] sql_*", sql(running), sql(next));
    let sessions = |c: &RawConfig| format!("{:?}", c.auth.session_ttl);
    differs("[auth] session_ttl", sessions(running), sessions(next));
    sections
}

/// `logyard reload`: asks a running server to read its configuration file again; prints
/// what changed, or why the file was refused.
pub fn reload_remote(args: crate::cli::ReloadArgs) -> anyhow::Result<()> {
    let url = format!("{}/api/admin/reload", args.server.trim_end_matches('/'));
    let resp = crate::cli::http()
        .build()?
        .post(&url)
        .send()
        .with_context(|| {
            format!(
                "cannot reach the server at {}; is `logyard serve` running? (or send it SIGHUP: \
                 systemctl reload logyard)",
                args.server
            )
        })?;
    let status = resp.status();
    let body: Value = resp.json().unwrap_or(Value::Null);
    if !status.is_success() {
        let message = body["error"]["message"]
            .as_str()
            .or_else(|| body["message"].as_str())
            .map(str::to_string)
            .unwrap_or_else(|| body.to_string());
        anyhow::bail!("the server refused the reload ({status}): {message}");
    }
    let names = |key: &str| {
        body["sources"][key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    let mut rows = vec![
        vec!["sources added".to_string(), names("added")],
        vec!["sources restarted".to_string(), names("changed")],
        vec!["sources stopped".to_string(), names("removed")],
        vec![
            "alert rules".to_string(),
            body["alert_rules"]
                .as_u64()
                .map_or("(alerting off)".into(), |n| n.to_string()),
        ],
        vec!["rotate rules".to_string(), body["rotate_rules"].to_string()],
        vec!["tokens".to_string(), body["tokens"].to_string()],
    ];
    if let Some(needed) = body["restart_needed"].as_array().filter(|a| !a.is_empty()) {
        let list: Vec<&str> = needed.iter().filter_map(Value::as_str).collect();
        rows.push(vec!["needs a restart".to_string(), list.join(", ")]);
    }
    print!("{}", crate::table::render(&["RELOADED", ""], &rows));
    Ok(())
}
