//! One statement through `logyard_sql::execute` as `POST /api/sql` runs it, over a small
//! store, and what may be said of any answer: answered or refused, never a panic or a stack
//! overflow, within 200 ms and 16 MiB; a syntax error's position lies inside the text. Used
//! by `tests/statements.rs` and by the `sql_statement` fuzz target (fuzz/).
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use logyard_model::{Level, Record};
use logyard_query::{Filter, Settings};
use logyard_sql::{SqlError, SqlSettings};
use logyard_store::{Store, StoreConfig};

struct Fixture {
    store: Store,
    runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

/// A store of 200 entries of three agents, and a runtime whose threads have the stack the
/// server's SQL threads have.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(StoreConfig::new(dir.path())).expect("open store");
        let records = (0..200)
            .map(|i| {
                let mut r = Record::new(
                    1_705_276_800_000_000_000 + i * 1_000_000_000,
                    format!("line {i} of agent {}", i % 3),
                );
                r.agent = ["web", "db", "auth"][(i % 3) as usize].to_string();
                r.host = "h1".into();
                r.level = Some([Level::Info, Level::Error][(i % 2) as usize]);
                r
            })
            .collect();
        store.append(records).expect("append");
        store.flush().expect("flush");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_stack_size(logyard_sql::STACK_BYTES)
            .enable_all()
            .build()
            .expect("runtime");
        Fixture {
            store,
            runtime,
            _dir: dir,
        }
    })
}

/// Runs `text` as the server would, and checks what may be said of any answer.
pub fn run(text: &str) {
    let f = fixture();
    let settings = SqlSettings {
        query: Settings {
            timeout: Duration::from_millis(200),
            max_state_bytes: 16 << 20,
            max_limit: 100,
            ..Settings::default()
        },
        max_depth: 100,
    };
    let snapshot = Arc::new(f.store.snapshot());
    let sql = text.to_string();
    let started = std::time::Instant::now();
    let task = f
        .runtime
        .spawn(async move { logyard_sql::execute(snapshot, Filter::All, &sql, &settings).await });
    let outcome = f.runtime.block_on(task);
    // The deadline holds: far below this bound even on a slow, sanitized build.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{text:?} ran {:?}, past its 200 ms deadline",
        started.elapsed()
    );
    match outcome {
        Ok(Ok(answer)) => assert!(
            answer.rows.len() <= 100,
            "{text:?}: more rows than the limit"
        ),
        Ok(Err(SqlError::Syntax {
            position: Some(p), ..
        })) => assert!(p <= text.len(), "{text:?}: position {p} past the end"),
        Ok(Err(_)) => {}
        Err(e) => panic!("{text:?} panicked: {e}"),
    }
}
