//! `logyard serve`: open the store (recovery first), then open the port.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;

use crate::cli::ServeArgs;
use crate::config::RawConfig;

/// Runs the server until SIGINT or SIGTERM.
pub fn run(mut config: RawConfig, args: ServeArgs) -> anyhow::Result<()> {
    if let Some(data) = args.data {
        config.server.data_dir = data;
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
    let store_config = config.store_config();
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
                Arc::new(logyard_alert::SystemClock),
                Some(state_path),
            )
            .with_store(store.clone()),
        )
    } else {
        None
    };
    let collectors =
        crate::collect::Collectors::start(&config, store.clone(), &data_dir, args.stdin)?;
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
            Arc::new(crate::collect::DrainObserver::new(collectors.statuses())),
            Arc::new(logyard_rotate::SystemClock),
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
    state.query = config.query_settings();
    state.sql = Arc::new(logyard_sql::SqlPool::new(config.sql_pool()));
    state.auth = Arc::new(auth);
    state.redactor = Arc::new(std::sync::Mutex::new(
        logyard_parse::Redactor::new(
            &config
                .parser_config(Default::default(), Default::default())
                .redact,
        )
        .context("invalid [redact] pattern")?,
    ));
    state.sources = collectors.statuses();
    {
        let statuses = collectors.statuses();
        let max_files = config.metrics.max_file_series;
        state = state.with_metrics_source(Arc::new(move || {
            let snapshots: Vec<_> = statuses.iter().map(|s| s.snapshot()).collect();
            let mut text = logyard_sources::render_prometheus(&snapshots);
            text.push_str(&logyard_sources::render_file_metrics(&snapshots, max_files));
            text
        }));
    }
    state.report = config.report_settings()?;
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
                Arc::new(logyard_report::SystemClock),
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
        let listener = tokio::net::TcpListener::bind(config.server.listen)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {}; is another server running there? choose another with --listen",
                    config.server.listen
                )
            })?;
        let addr = listener.local_addr()?;
        state.guard = Arc::new(config.guard(addr));
        if addr.ip().is_unspecified() && config.server.allowed_hosts.is_empty() {
            tracing::warn!(
                %addr,
                "listening on every address without [server] allowed_hosts: requests naming any \
                 Host are answered; list this server's names there to refuse the others"
            );
        }
        tracing::info!(data_dir = %data_dir.display(), %addr, "logyard is ready");
        let scheme = if tls.is_some() { "https" } else { "http" };
        println!("listening on {scheme}://{addr}");
        std::io::stdout().flush()?;
        // The configuration is read at start; a SIGHUP (a terminal closing, a reload by habit)
        // must not stop the server.
        let hangups = tokio::spawn(async {
            use tokio::signal::unix::{signal, SignalKind};
            let Ok(mut hup) = signal(SignalKind::hangup()) else {
                return;
            };
            while hup.recv().await.is_some() {
                tracing::warn!(
                    "SIGHUP ignored: the configuration is read at start; restart the server to apply a change"
                );
            }
        });
        // Recovered and listening: systemd may now call the service started.
        let notifier = Arc::new(crate::notify::Notifier::from_env());
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
            async move {
                shutdown_signal().await;
                notifier.send("STOPPING=1");
            }
        };
        let mut options = config.server_options();
        options.tls = tls;
        logyard_api::serve(listener, state, options, stop).await?;
        if let Some(w) = watchdog {
            w.abort();
        }
        hangups.abort();
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

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
