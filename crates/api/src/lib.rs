//! The HTTP API of logyard: ingest, search, statistics, health and metrics.
//!
//! [`router`] builds the whole axum application from an [`AppState`]; [`serve`] runs it on
//! a listener until a shutdown signal, with the connection limits and timeouts of
//! [`server`]. Request bodies are read by [`body`]; ingest bodies are decoded by
//! `logyard_sources::http` and written through the [`AppState::sink`]. Handlers live beside
//! their routes: [`ingest`] for `POST /api/logs`, [`shippers`] for the shippers' protocols,
//! [`read`] for the searches, `/api/query` and statistics, [`analysis`]
//! for histograms, error summaries and context, [`export`] for streamed exports, [`report`]
//! for `/api/report`, [`sql`] for `POST /api/sql`,
//! [`analyses`] for `/api/analyses/*` (slow requests, logins, database errors), [`alerts`] for the alert history and rules, and
//! [`tail`] for the live tail. Before any handler, [`guard`] refuses what a web page of
//! another site would send (a foreign `Host`, cross-origin writes) and [`auth`] checks the
//! token. Every error answer goes
//! through [`ApiError`], the one place where errors become statuses.

pub mod admin;
pub mod alerts;
pub mod analyses;
pub mod analysis;
pub mod audit;
pub mod auth;
pub mod auth_config;
pub mod body;
pub mod error;
pub mod export;
pub mod guard;
pub mod identity;
pub mod ingest;
pub mod metrics;
pub mod quota;
pub mod read;
pub mod report;
pub mod saved;
pub mod server;
pub mod session;
pub mod settings;
pub mod shippers;
#[cfg(feature = "sql")]
pub mod sql;
pub mod tail;
pub mod ui;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use logyard_sources::http::limits::Budget;
use logyard_store::Store;

pub use auth_config::AuthConfig;
pub use error::ApiError;
pub use logyard_sources::http::native::IngestOptions;
pub use metrics::Metrics;
pub use server::{ConnectionInfo, ServerOptions};
pub use settings::{LimitsSettings, MetricsSettings, ServerSettings};

/// Limits on what a request may ask for; every one is a setting of `[limits]`.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Most entries in one ingest request.
    pub max_entries_per_request: usize,
    /// Most bytes that the entries of one ingest request may decode to (by
    /// [`logyard_model::Record::approx_size`]).
    pub max_decoded_bytes: usize,
    /// Longest query text.
    pub max_query_bytes: usize,
    /// Largest compiled regex.
    pub max_regex_bytes: usize,
    /// Most queries one token may save (`/api/saved-queries`).
    pub max_saved_queries: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_body_bytes: 16 << 20,
            max_entries_per_request: 100_000,
            max_decoded_bytes: 64 << 20,
            max_query_bytes: 64 << 10,
            max_regex_bytes: 1 << 20,
            max_saved_queries: 100,
        }
    }
}

impl Limits {
    /// The budget of one ingest request: `max_entries_per_request` entries decoding to at
    /// most `max_decoded_bytes`.
    pub fn budget(&self) -> Budget {
        Budget::with(self.max_entries_per_request, self.max_decoded_bytes)
    }
}

/// The ingest rate over the last minute, from samples of the store's counter.
#[derive(Debug, Default)]
pub struct RateMeter {
    samples: Mutex<VecDeque<(Instant, u64)>>,
}

impl RateMeter {
    /// Adds a sample of the total count; keeps one minute of them.
    pub fn sample(&self, total: u64) {
        let mut s = self.samples.lock().expect("rate lock");
        let now = Instant::now();
        s.push_back((now, total));
        while s.len() > 2 && now.duration_since(s[0].0) > Duration::from_secs(60) {
            s.pop_front();
        }
    }

    /// Returns the records per second over the sampled window.
    pub fn per_second(&self) -> f64 {
        let s = self.samples.lock().expect("rate lock");
        match (s.front(), s.back()) {
            (Some(a), Some(b)) if b.0 > a.0 => {
                (b.1 - a.1) as f64 / b.0.duration_since(a.0).as_secs_f64()
            }
            _ => 0.0,
        }
    }
}

/// A part of `/metrics` rendered by another component (rotation, alerting, …): a function
/// returning Prometheus text with its `# HELP` and `# TYPE` lines.
pub type MetricsSource = Arc<dyn Fn() -> String + Send + Sync>;

/// Re-reads the configuration file and puts it in effect while running (set by the binary;
/// `POST /api/admin/reload` and SIGHUP call it): the answer says what changed, an error says
/// why the file was refused (the running configuration then stays).
pub type Reloader = Arc<dyn Fn() -> Result<serde_json::Value, String> + Send + Sync>;

/// The application as it is served: a reload replaces it whole, and each request is
/// answered by the application current when it arrives.
#[derive(Clone)]
pub struct LiveApp {
    current: Arc<tokio::sync::watch::Sender<Router>>,
}

impl LiveApp {
    /// Serves `state`'s application until [`LiveApp::replace`].
    pub fn new(state: AppState) -> LiveApp {
        LiveApp {
            current: Arc::new(tokio::sync::watch::Sender::new(router(state))),
        }
    }

    /// Answers the requests that arrive from now on with `state` (a reload). The state's
    /// shared parts (store, metrics, sessions, the stop signal) are those it was cloned from.
    pub fn replace(&self, state: AppState) {
        // The application replaced is dropped once its requests in progress end.
        drop(self.current.send_replace(router(state)));
    }

    /// Returns the application requests go to now.
    pub fn router(&self) -> Router {
        self.current.borrow().clone()
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The store, which the read endpoints query.
    pub store: Arc<Store>,
    /// Where HTTP ingest writes its records (the store, through its sink).
    pub sink: Arc<dyn logyard_sources::Sink>,
    /// Request limits.
    pub limits: Limits,
    /// Entry decoding settings.
    pub ingest: IngestOptions,
    /// The server's counters.
    pub metrics: Arc<Metrics>,
    /// The ingest rate.
    pub rate: Arc<RateMeter>,
    /// When the server started.
    pub started: Instant,
    /// Other components' metrics, appended to `/metrics`.
    pub metrics_sources: Vec<MetricsSource>,
    /// Removes secrets from the entries of `POST /api/logs` before they are stored; shared
    /// by every request without a lock (its counters are shared and brief to update).
    pub redactor: Arc<logyard_parse::Redactor>,
    /// The collectors of `[[sources]]`, for `GET /api/sources`.
    pub sources: Vec<logyard_sources::StatusHandle>,
    /// Budgets and limits of queries (`[query]`).
    pub query: logyard_query::Settings,
    /// What `/api/report` looks at (`[report]`).
    pub report: logyard_report::ReportSettings,
    /// The running alerting, when started (`/api/alerts`).
    pub alerts: Option<logyard_alert::AlertHandle>,
    /// The threads `POST /api/sql` runs statements on (`[query] sql_*`).
    #[cfg(feature = "sql")]
    pub sql: Arc<logyard_sql::SqlPool>,
    /// Becomes `true` when the server begins to stop: endless answers (live tails) end.
    pub stopping: Arc<tokio::sync::watch::Sender<bool>>,
    /// The tokens requests must present (`[auth]`); none means no authentication.
    pub auth: Arc<auth::Auth>,
    /// The `Host` names and origins browsers may use (`[server] allowed_hosts`, …).
    pub guard: Arc<guard::Guard>,
    /// Puts a changed configuration file in effect (`POST /api/admin/reload`); `None` when
    /// the server was started without a way to reload.
    pub reload: Option<Reloader>,
    /// The queries tokens saved (`/api/saved-queries`), kept in the data directory.
    pub saved: Arc<saved::SavedQueries>,
}

impl AppState {
    /// Creates the state for a store with the given settings.
    pub fn new(store: Arc<Store>, limits: Limits, ingest: IngestOptions) -> AppState {
        AppState {
            saved: Arc::new(saved::SavedQueries::open(store.data_dir())),
            sink: Arc::new(logyard_store::StoreSink(store.clone())),
            store,
            limits,
            ingest,
            metrics: Arc::new(Metrics::default()),
            rate: Arc::new(RateMeter::default()),
            started: Instant::now(),
            metrics_sources: Vec::new(),
            sources: Vec::new(),
            redactor: Arc::new(
                logyard_parse::Redactor::new(&logyard_parse::RedactConfig::default())
                    .expect("the built-in redaction rules compile"),
            ),
            query: logyard_query::Settings::default(),
            report: logyard_report::ReportSettings::default(),
            alerts: None,
            #[cfg(feature = "sql")]
            sql: Arc::new(logyard_sql::SqlPool::default()),
            stopping: Arc::new(tokio::sync::watch::Sender::new(false)),
            auth: Arc::new(auth::Auth::default()),
            guard: Arc::new(guard::Guard::default()),
            reload: None,
        }
    }

    /// Adds another component's metrics to `/metrics`.
    pub fn with_metrics_source(mut self, source: MetricsSource) -> AppState {
        self.metrics_sources.push(source);
        self
    }
}

/// Builds the application with every route.
pub fn router(state: AppState) -> Router {
    let app = Router::new();
    // SQL (DataFusion) is a default feature; builds that fuzz the decoders leave it out.
    #[cfg(feature = "sql")]
    let app = app.merge(sql::routes());
    app.route("/health", get(health))
        .route("/metrics", get(metrics_text))
        .route("/api/logs", post(ingest::post_logs).get(read::get_logs))
        .route("/api/logs/search", get(read::search_logs))
        .route("/api/logs/agent/{agent_name}", get(read::get_agent_logs))
        .route("/api/query", get(read::query))
        .route("/api/agents", get(read::get_agents))
        .route("/api/stats", get(read::get_stats))
        .route("/api/sources", get(sources))
        .merge(analysis::routes())
        .merge(analyses::routes())
        .merge(export::routes())
        .merge(tail::routes())
        .merge(shippers::otlp::routes())
        .merge(shippers::bulk::routes())
        .merge(shippers::loki::routes())
        .merge(report::routes())
        .merge(ui::routes())
        .merge(alerts::routes())
        .merge(session::routes())
        .merge(saved::routes())
        .route("/api/admin/reload", post(reload))
        .merge(admin::routes())
        .fallback(not_found)
        .layer(middleware::from_fn(shippers::bulk::info_probe))
        .layer(middleware::from_fn_with_state(state.clone(), auth::check))
        .layer(middleware::from_fn_with_state(state.clone(), guard::guard))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let started = Instant::now();
    let response = next.run(req).await;
    // Routes are a fixed set, so the label's cardinality is bounded.
    let route: &'static str = match route.as_deref() {
        Some("/health") => "/health",
        Some("/metrics") => "/metrics",
        Some("/api/logs") => "/api/logs",
        Some("/api/logs/search") => "/api/logs/search",
        Some("/api/logs/agent/{agent_name}") => "/api/logs/agent",
        Some("/api/query") => "/api/query",
        Some("/api/agents") => "/api/agents",
        Some("/api/stats") => "/api/stats",
        Some("/api/sources") => "/api/sources",
        Some("/api/histogram") => "/api/histogram",
        Some("/api/errors/summary") => "/api/errors/summary",
        Some("/api/logs/{id}/context") => "/api/logs/context",
        Some("/api/export") => "/api/export",
        Some("/api/tail") => "/api/tail",
        Some("/v1/logs") => "/v1/logs",
        Some("/loki/api/v1/push") => "/loki/api/v1/push",
        Some("/_bulk") | Some("/{index}/_bulk") => "/_bulk",
        Some("/api/report") => "/api/report",
        Some("/api/sql") => "/api/sql",
        Some("/api/analyses/slow") => "/api/analyses/slow",
        Some("/api/analyses/auth") => "/api/analyses/auth",
        Some("/api/analyses/db") => "/api/analyses/db",
        Some("/api/alerts") => "/api/alerts",
        Some("/api/alerts/rules") => "/api/alerts/rules",
        Some("/api/saved-queries") | Some("/api/saved-queries/{name}") => "/api/saved-queries",
        Some("/api/admin/backup") => "/api/admin/backup",
        _ => "other",
    };
    state.metrics.observe_request(
        route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

async fn health(State(state): State<AppState>) -> Json<serde_json::Value> {
    let stats = state.store.stats();
    Json(serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": state.started.elapsed().as_secs(),
        "records": stats.segment_rows + stats.memtable_rows,
    }))
}

/// `GET /api/sources`: every collector with its state, files and offsets, last line time,
/// lines per second and errors.
async fn sources(State(state): State<AppState>) -> Json<serde_json::Value> {
    let sources: Vec<logyard_sources::SourceStatus> =
        state.sources.iter().map(|s| s.snapshot()).collect();
    Json(serde_json::json!({ "sources": sources }))
}

async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    let mut body = state
        .metrics
        .render(&state.store.stats(), state.started.elapsed().as_secs_f64());
    body.push_str(&Metrics::render_rate(state.rate.per_second()));
    body.push_str(&render_redactions(&state.redactor.counts()));
    body.push_str(&state.auth.audit.render_prometheus());
    for source in &state.metrics_sources {
        body.push_str(&source());
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}

/// Renders the secrets removed from ingested entries (every source and endpoint), by kind.
fn render_redactions(counts: &std::collections::BTreeMap<String, u64>) -> String {
    let name = "logyard_redactions_total";
    let mut out = format!(
        "# HELP {name} Secrets replaced in ingested entries before they were stored, by kind.\n# TYPE {name} counter\n"
    );
    for (kind, n) in counts {
        out.push_str(&format!("{name}{{kind=\"{kind}\"}} {n}\n"));
    }
    out
}

async fn not_found(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!(
            "no endpoint {} {}; the endpoints are listed in docs/api.md",
            req.method(),
            req.uri().path()
        ),
    )
}

/// `POST /api/admin/reload`: re-reads the configuration file (admin only, audited).
async fn reload(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let Some(reload) = state.reload.clone() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "this server cannot reload its configuration: restart it to apply a change",
        ));
    };
    match tokio::task::spawn_blocking(move || reload()).await {
        Ok(Ok(changes)) => Ok(Json(changes)),
        Ok(Err(message)) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_config",
            message,
        )),
        Err(_) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the reload failed unexpectedly; the running configuration stays",
        )),
    }
}

/// Serves the application on a bound listener with the connection settings until
/// `shutdown` completes (see [`server`]), sampling the ingest rate meanwhile.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    options: ServerOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = LiveApp::new(state.clone());
    serve_live(listener, &app, state, options, shutdown).await
}

/// [`serve`] for an application that a reload may replace: `state` gives the parts every
/// version shares (the store and its rate meter, the stop signal).
pub async fn serve_live(
    listener: tokio::net::TcpListener,
    app: &LiveApp,
    state: AppState,
    options: ServerOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let sampler = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                state.rate.sample(state.store.stats().appended_records);
            }
        })
    };
    let stopping = state.stopping.clone();
    let shutdown = async move {
        shutdown.await;
        stopping.send_replace(true);
    };
    let result = server::run(listener, app.clone(), options, shutdown).await;
    sampler.abort();
    result
}
