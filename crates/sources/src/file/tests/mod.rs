//! Tests of the file source: a model-based property test (`model.rs`) and one test per
//! rotation and failure case (`cases.rs`), driving the tailer poll by poll.

mod cases;
mod model;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use logyard_model::Record;

use super::{FileConfig, FileSource, StartAt, Tailer};
use crate::{SinkError, SourceContext};
use logyard_model::sink::{CheckpointToken, Receipt, Sink};

/// A sink that records what it receives; it can be made to fail, to be slow, and to keep
/// checkpoint tokens atomically with the records.
#[derive(Default)]
pub(crate) struct TestSink {
    pub records: Mutex<Vec<Record>>,
    pub fail: AtomicBool,
    pub delay_ms: AtomicU64,
    pub keep_tokens: AtomicBool,
    /// When set, the sink takes this many more writes, then fails.
    pub writes_left: Mutex<Option<u32>>,
    pub tokens: Mutex<Vec<CheckpointToken>>,
    /// When above 0, `submit` writes at once but answers only this long after (a sink
    /// whose fsync takes that long), so that the source reads on meanwhile.
    pub ack_delay_ms: AtomicU64,
    /// The size of every batch submitted.
    pub batch_sizes: Mutex<Vec<usize>>,
}

impl TestSink {
    pub fn lines(&self) -> Vec<String> {
        self.records
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.message.clone())
            .collect()
    }

    pub fn lines_of(&self, source: &str) -> Vec<String> {
        self.records
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.source == source)
            .map(|r| r.message.clone())
            .collect()
    }
}

impl Sink for TestSink {
    fn write(&self, records: Vec<Record>) -> Result<(), SinkError> {
        let ms = self.delay_ms.load(Ordering::SeqCst);
        if ms > 0 {
            std::thread::sleep(Duration::from_millis(ms));
        }
        if self.fail.load(Ordering::SeqCst) {
            return Err(SinkError::other("disk full (test)"));
        }
        if let Some(n) = self.writes_left.lock().unwrap().as_mut() {
            if *n == 0 {
                return Err(SinkError::other("disk full (test)"));
            }
            *n -= 1;
        }
        self.records.lock().unwrap().extend(records);
        Ok(())
    }

    fn write_with_checkpoint(
        &self,
        records: Vec<Record>,
        token: CheckpointToken,
    ) -> Result<bool, SinkError> {
        self.write(records)?;
        if self.keep_tokens.load(Ordering::SeqCst) {
            self.tokens.lock().unwrap().push(token);
            return Ok(true);
        }
        Ok(false)
    }

    fn submit(&self, records: Vec<Record>, token: Option<CheckpointToken>) -> Receipt {
        self.batch_sizes.lock().unwrap().push(records.len());
        let result = match token {
            Some(token) => self.write_with_checkpoint(records, token),
            None => self.write(records).map(|()| false),
        };
        let delay = self.ack_delay_ms.load(Ordering::SeqCst);
        if delay == 0 {
            return Receipt::ready(result);
        }
        let due = std::time::Instant::now() + Duration::from_millis(delay);
        let mut result = Some(result);
        // One thread wakes the latest waker once the delay is over.
        let waker: Arc<Mutex<Option<std::task::Waker>>> = Arc::default();
        let mut timer = None;
        Receipt::pending(std::future::poll_fn(move |cx| {
            if std::time::Instant::now() < due {
                *waker.lock().unwrap() = Some(cx.waker().clone());
                let waker = waker.clone();
                timer.get_or_insert_with(|| {
                    std::thread::spawn(move || {
                        std::thread::sleep(
                            due.saturating_duration_since(std::time::Instant::now()),
                        );
                        if let Some(w) = waker.lock().unwrap().take() {
                            w.wake();
                        }
                    })
                });
                return std::task::Poll::Pending;
            }
            std::task::Poll::Ready(result.take().expect("polled once ready"))
        }))
    }

    fn stored_checkpoint(&self, key: &str) -> Option<CheckpointToken> {
        self.tokens
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|t| t.key == key)
            .cloned()
    }
}

/// A temp dir with `logs/` and `state/`, a sink and a config over `logs/*.log`.
pub(crate) struct Harness {
    pub _tmp: tempfile::TempDir,
    pub logs: PathBuf,
    pub state: PathBuf,
    pub sink: Arc<TestSink>,
    pub cfg: FileConfig,
}

impl Harness {
    pub fn new() -> Harness {
        let tmp = tempfile::tempdir().unwrap();
        let logs = tmp.path().join("logs");
        let state = tmp.path().join("state");
        std::fs::create_dir_all(&logs).unwrap();
        let mut cfg = FileConfig::new(&[&format!("{}/*.log", logs.display())]);
        cfg.start_at = StartAt::Beginning;
        cfg.multiline = "none".into();
        cfg.rotate_wait = Duration::ZERO;
        Harness {
            _tmp: tmp,
            logs,
            state,
            sink: Arc::new(TestSink::default()),
            cfg,
        }
    }

    pub fn ctx(&self) -> SourceContext {
        SourceContext::new(self.sink.clone(), &self.state, "test-host")
    }

    pub fn tailer(&self) -> Tailer {
        FileSource::new("files", self.cfg.clone())
            .unwrap()
            .tailer(&self.ctx())
            .unwrap()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.logs.join(name)
    }

    pub fn source(&self, name: &str) -> String {
        format!("file:{}", self.path(name).display())
    }
}

/// Appends text to a file, creating it.
pub(crate) fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// Shifts `p.N` to `p.N+1`, highest first, so that `p.1` is free.
pub(crate) fn shift(path: &Path) {
    let name = |n: u32| PathBuf::from(format!("{}.{n}", path.display()));
    let mut top = 0;
    while name(top + 1).exists() {
        top += 1;
    }
    for n in (1..=top).rev() {
        std::fs::rename(name(n), name(n + 1)).unwrap();
    }
}

pub(crate) fn rotated(path: &Path, n: u32) -> PathBuf {
    PathBuf::from(format!("{}.{n}", path.display()))
}
