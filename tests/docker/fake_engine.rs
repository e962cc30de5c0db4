//! A small Docker Engine API server on a unix socket, for the api mode's black-box tests: it
//! answers `GET /containers/json`, `GET /containers/{id}/json` and
//! `GET /containers/{id}/logs` in the daemon's wire formats (the 8-byte stream headers of
//! non-TTY containers, raw bytes for TTY ones, `timestamps`, `since` and `follow`), and
//! records every request it receives.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// One line of a fake container's log.
#[derive(Debug, Clone)]
pub struct Line {
    /// The daemon's time, ns since the epoch.
    pub ns: i64,
    /// 1 = stdout, 2 = stderr, 3 = the daemon's own error frame (sent once, then the
    /// response ends and the line is gone).
    pub stream: u8,
    /// The text, without a newline.
    pub text: String,
}

/// A fake container.
#[derive(Debug, Clone)]
pub struct Container {
    pub id: String,
    pub name: String,
    pub image: String,
    pub labels: BTreeMap<String, String>,
    pub tty: bool,
    pub running: bool,
    pub lines: Vec<Line>,
}

impl Container {
    /// A running container without a TTY.
    pub fn new(id_char: char, name: &str) -> Container {
        Container {
            id: std::iter::repeat_n(id_char, 64).collect(),
            name: name.to_string(),
            image: format!("example/{name}:1.0"),
            labels: BTreeMap::from([("com.example.team".to_string(), "payments".to_string())]),
            tty: false,
            running: true,
            lines: Vec::new(),
        }
    }
}

#[derive(Default)]
struct Inner {
    containers: Vec<Container>,
    requests: Vec<String>,
}

/// The fake daemon: its state is shared with the test.
#[derive(Clone, Default)]
pub struct FakeEngine {
    inner: Arc<Mutex<Inner>>,
}

impl FakeEngine {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a container.
    pub fn add(&self, c: Container) {
        self.lock().containers.push(c);
    }

    /// Appends lines to a container's log.
    pub fn write(&self, name: &str, lines: impl IntoIterator<Item = Line>) {
        let mut g = self.lock();
        let c = g
            .containers
            .iter_mut()
            .find(|c| c.name == name)
            .expect("a container of that name");
        c.lines.extend(lines);
    }

    /// Marks a container stopped (its followed logs end) or running.
    pub fn set_running(&self, name: &str, running: bool) {
        let mut g = self.lock();
        if let Some(c) = g.containers.iter_mut().find(|c| c.name == name) {
            c.running = running;
        }
    }

    /// Renames a container (`docker rename`).
    pub fn rename(&self, name: &str, new_name: &str) {
        let mut g = self.lock();
        if let Some(c) = g.containers.iter_mut().find(|c| c.name == name) {
            c.name = new_name.to_string();
        }
    }

    /// Removes a container.
    pub fn remove(&self, name: &str) {
        self.lock().containers.retain(|c| c.name != name);
    }

    /// Every request received so far, as `METHOD /path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.lock().requests.clone()
    }

    /// Serves on a unix socket at `path`, on a thread of its own, until the process ends.
    pub fn serve(&self, path: &Path) -> PathBuf {
        let engine = self.clone();
        let path = path.to_path_buf();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let socket = path.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::UnixListener::bind(&socket).expect("bind the socket");
                ready_tx.send(()).expect("ready");
                let app = axum::Router::new().fallback(handle).with_state(engine);
                axum::serve(listener, app).await.expect("serve");
            });
        });
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the fake engine listens");
        path
    }
}

/// Strips the API version prefix (`/v1.47`).
fn route(path: &str) -> &str {
    match path.strip_prefix("/v") {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => {
            rest.find('/').map_or(path, |i| &rest[i..])
        }
        _ => path,
    }
}

fn query_map(query: Option<&str>) -> BTreeMap<String, String> {
    query
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn not_found(what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"message": format!("No such container: {what}")})),
    )
        .into_response()
}

async fn handle(State(engine): State<FakeEngine>, req: Request) -> Response {
    let uri = req.uri().clone();
    engine.lock().requests.push(format!(
        "{} {}",
        req.method(),
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("")
    ));
    if req.method() != axum::http::Method::GET {
        return (StatusCode::METHOD_NOT_ALLOWED, "read-only fake").into_response();
    }
    let path = route(uri.path()).to_string();
    let query = query_map(uri.query());
    if path == "/_ping" {
        return "OK".into_response();
    }
    if path == "/containers/json" {
        let all = query.get("all").is_some_and(|v| v == "true" || v == "1");
        let list: Vec<_> = engine
            .lock()
            .containers
            .iter()
            .filter(|c| all || c.running)
            .map(|c| {
                json!({
                    "Id": c.id,
                    "Names": [format!("/{}", c.name)],
                    "Image": c.image,
                    "Labels": c.labels,
                    "State": if c.running { "running" } else { "exited" },
                    "Status": if c.running { "Up 5 minutes" } else { "Exited (0) 1 minute ago" },
                })
            })
            .collect();
        return axum::Json(list).into_response();
    }
    let Some(rest) = path.strip_prefix("/containers/") else {
        return (StatusCode::NOT_FOUND, "unknown path").into_response();
    };
    let Some((key, what)) = rest.split_once('/') else {
        return (StatusCode::NOT_FOUND, "unknown path").into_response();
    };
    let found = engine
        .lock()
        .containers
        .iter()
        .find(|c| c.id == key || c.name == key || c.id.starts_with(key))
        .cloned();
    let Some(c) = found else {
        return not_found(key);
    };
    match what {
        "json" => axum::Json(json!({
            "Id": c.id,
            "Name": format!("/{}", c.name),
            "Config": {"Image": c.image, "Labels": c.labels, "Tty": c.tty, "Hostname": "abc"},
            "State": {"Status": if c.running { "running" } else { "exited" }, "Running": c.running,
                      "Paused": false, "Restarting": false},
            "LogPath": format!("/var/lib/docker/containers/{0}/{0}-json.log", c.id),
        }))
        .into_response(),
        "logs" => logs(engine, c.id, query),
        _ => (StatusCode::NOT_FOUND, "unknown path").into_response(),
    }
}

/// Encodes one line as the daemon sends it.
fn encode(line: &Line, tty: bool, timestamps: bool) -> Bytes {
    let mut payload = String::new();
    if timestamps {
        let secs = line.ns.div_euclid(1_000_000_000);
        let nanos = line.ns.rem_euclid(1_000_000_000) as u32;
        let t = chrono::DateTime::from_timestamp(secs, nanos).expect("time");
        payload.push_str(&t.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string());
        payload.push(' ');
    }
    payload.push_str(&line.text);
    payload.push('\n');
    if tty {
        return Bytes::from(payload);
    }
    let mut frame = vec![line.stream, 0, 0, 0];
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(payload.as_bytes());
    Bytes::from(frame)
}

fn logs(engine: FakeEngine, id: String, query: BTreeMap<String, String>) -> Response {
    let flag = |k: &str| query.get(k).is_some_and(|v| v == "true" || v == "1");
    let since_ns = query
        .get("since")
        .and_then(|s| s.parse::<f64>().ok())
        .map_or(0, |s| (s * 1e9) as i64);
    let (follow, timestamps) = (flag("follow"), flag("timestamps"));
    let (stdout, stderr) = (flag("stdout"), flag("stderr"));
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let mut sent = 0usize;
        loop {
            let (batch, tty, running) = {
                let g = engine.lock();
                let Some(c) = g.containers.iter().find(|c| c.id == id) else {
                    return;
                };
                let batch: Vec<Line> = c.lines[sent..].to_vec();
                sent = c.lines.len();
                (batch, c.tty, c.running)
            };
            for line in batch {
                if line.stream == 3 {
                    let _ = tx.send(encode(&line, false, timestamps)).await;
                    let mut g = engine.lock();
                    if let Some(c) = g.containers.iter_mut().find(|c| c.id == id) {
                        c.lines.retain(|l| l.stream != 3);
                    }
                    return;
                }
                let wanted = (line.stream == 1 && stdout) || (line.stream == 2 && stderr);
                if line.ns < since_ns || !wanted {
                    continue;
                }
                if tx.send(encode(&line, tty, timestamps)).await.is_err() {
                    return;
                }
            }
            if !follow || !running {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/vnd.docker.multiplexed-stream")
        .body(Body::from_stream(body))
        .expect("response")
}
