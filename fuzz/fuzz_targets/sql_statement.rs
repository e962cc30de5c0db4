//! SQL statements through `logyard_sql::execute`, as `POST /api/sql` runs them, over a small
//! store: any text is answered or refused, never a panic or a stack overflow; a syntax
//! error's position lies inside the text. Each input runs within 200 ms and 16 MiB.
#![no_main]
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use logyard_model::{Level, Record};
use logyard_query::Settings;
use logyard_sql::{SqlError, SqlSettings};
use logyard_store::{Store, StoreConfig};

struct Fixture {
    store: Store,
    runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

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
        // As the server's SQL threads: deep stacks, since planning recurses per level.
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

fuzz_target!(|text: &str| {
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
    let task = f
        .runtime
        .spawn(async move { logyard_sql::execute(snapshot, logyard_query::Filter::All, &sql, &settings).await });
    match f.runtime.block_on(task) {
        Ok(Err(SqlError::Syntax {
            position: Some(p), ..
        })) => assert!(p <= text.len(), "position {p} past the end"),
        Ok(_) => {}
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
});
