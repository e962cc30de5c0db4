//! Helpers of the alerting tests: records, batches, configurations, and HTTP receivers on
//! 127.0.0.1 that record what they are sent.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::Router;
use logyard_model::{Level, Record};
use logyard_store::MemBatch;

/// 2026-11-27T10:00:00Z in ns.
pub const T0: i64 = 1_795_773_600_000_000_000;
/// One second in ns.
pub const SEC: i64 = 1_000_000_000;
/// One minute in ns.
pub const MIN: i64 = 60 * SEC;

/// Returns a record.
pub fn rec(ts: i64, level: Level, agent: &str, message: &str) -> Record {
    let mut r = Record::new(ts, message);
    r.level = Some(level);
    r.agent = agent.into();
    r.host = "h1".into();
    r.source = "test".into();
    r
}

/// Returns a batch of records.
pub fn batch(records: Vec<Record>) -> Arc<MemBatch> {
    MemBatch::new(records)
}

/// What a receiver answers, in order; after the script, 200.
#[derive(Clone, Copy, Debug)]
pub enum Answer {
    /// This status.
    Status(u16),
    /// Sleep this long, then 200.
    Sleep(Duration),
}

/// A recording HTTP receiver.
#[derive(Clone, Default)]
pub struct Receiver {
    /// (path, JSON body) of every request, in arrival order.
    pub got: Arc<Mutex<Vec<(String, serde_json::Value)>>>,
    script: Arc<Mutex<VecDeque<Answer>>>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

async fn receive(State(r): State<Receiver>, uri: Uri, body: String) -> StatusCode {
    let json = serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body));
    r.got.lock().unwrap().push((uri.path().to_string(), json));
    let next = r.script.lock().unwrap().pop_front();
    match next {
        Some(Answer::Status(s)) => StatusCode::from_u16(s).unwrap(),
        Some(Answer::Sleep(d)) => {
            tokio::time::sleep(d).await;
            StatusCode::OK
        }
        None => StatusCode::OK,
    }
}

impl Receiver {
    /// Starts a receiver answering a script.
    pub async fn start(script: Vec<Answer>) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut r = Receiver {
            script: Arc::new(Mutex::new(script.into())),
            ..Receiver::default()
        };
        r.url = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new().fallback(receive).with_state(r.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        r
    }

    /// Returns the bodies received so far.
    pub fn bodies(&self) -> Vec<serde_json::Value> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|g| g.1.clone())
            .collect()
    }

    /// Waits until `n` requests arrived (or 10 s passed) and returns the bodies.
    pub async fn wait_for(&self, n: usize) -> Vec<serde_json::Value> {
        for _ in 0..1000 {
            if self.got.lock().unwrap().len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.bodies()
    }
}

/// Parses an `[alerts]` section written as TOML.
pub fn alerts_config(toml_text: &str) -> logyard_alert::AlertsConfig {
    #[derive(serde::Deserialize)]
    struct File {
        alerts: logyard_alert::AlertsConfig,
    }
    toml::from_str::<File>(toml_text).unwrap().alerts
}
