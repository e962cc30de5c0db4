//! The collectors of `[[sources]]` (and `serve --stdin`), writing into the store.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use logyard_model::Record;
use logyard_rotate::RotationObserver;
use logyard_sources::{
    build_all, spawn, CheckpointToken, Receipt, RunningSource, Sink, SinkError, Source,
    SourceConfig, SourceContext, StdinConfig, StdinSource,
};
use logyard_store::{Store, StoredCheckpoint};

use crate::config::RawConfig;

/// The store as the collectors' sink: a write returns once its records are durable.
pub(crate) struct StoreSink(pub(crate) Arc<Store>);

impl Sink for StoreSink {
    fn write(&self, records: Vec<Record>) -> Result<(), SinkError> {
        self.0
            .append(records)
            .map(|_| ())
            .map_err(|e| SinkError(e.to_string()))
    }

    /// Keeps the token in the same WAL frame as the records.
    fn write_with_checkpoint(
        &self,
        records: Vec<Record>,
        token: CheckpointToken,
    ) -> Result<bool, SinkError> {
        self.submit(records, Some(token)).wait()
    }

    /// Hands the batch (and the source's checkpoint token, kept in the same WAL frame) to
    /// the store's writer at once: the receipt is answered after the WAL's fsync (with
    /// other batches waiting then: group commit).
    fn submit(&self, records: Vec<Record>, token: Option<CheckpointToken>) -> Receipt {
        let kept = token.is_some();
        let submitted = match token {
            Some(t) => self.0.submit_with_checkpoint(
                records,
                &t.key,
                StoredCheckpoint {
                    seq: t.seq,
                    data: t.data,
                },
            ),
            None => self.0.submit(records),
        };
        let mut answer = match submitted {
            Ok(rx) => Some(rx),
            Err(e) => return Receipt::ready(Err(SinkError(e.to_string()))),
        };
        Receipt::pending(move |block| {
            let got = match answer.as_mut() {
                None => None,
                Some(_) if block => answer.take().and_then(|rx| rx.blocking_recv().ok()),
                Some(rx) => match rx.try_recv() {
                    Ok(a) => Some(a),
                    Err(tokio::sync::oneshot::error::TryRecvError::Empty) => return None,
                    Err(tokio::sync::oneshot::error::TryRecvError::Closed) => None,
                },
            };
            Some(match got {
                Some(Ok(_)) => Ok(kept),
                Some(Err(e)) => Err(SinkError(e.to_string())),
                None => Err(SinkError(logyard_store::StoreError::Closed.to_string())),
            })
        })
    }

    fn stored_checkpoint(&self, key: &str) -> Option<CheckpointToken> {
        self.0.checkpoint(key).map(|cp| CheckpointToken {
            key: key.to_string(),
            seq: cp.seq,
            data: cp.data,
        })
    }
}

/// The running collectors.
pub struct Collectors {
    running: Vec<RunningSource>,
    context: SourceContext,
}

impl Collectors {
    /// Builds and starts every `[[sources]]` entry, and a stdin source when asked.
    pub fn start(
        config: &RawConfig,
        store: Arc<Store>,
        data_dir: &Path,
        stdin: bool,
    ) -> anyhow::Result<Collectors> {
        let mut sources: Vec<Box<dyn Source>> =
            build_all(&config.sources).context("invalid [[sources]] entry")?;
        if stdin {
            sources.push(Box::new(StdinSource::new("stdin", StdinConfig::default())));
        }
        let mut context = SourceContext::new(
            Arc::new(StoreSink(store)),
            data_dir.join("state"),
            &crate::lines::host_name(),
        );
        context.parser = config.parser_config(
            logyard_parse::Format::Auto,
            logyard_parse::TimeZone::default(),
        );
        // Listeners bind here, before the HTTP port opens: what is sent once the server
        // says it is ready reaches them, and a port in use stops the start.
        for s in &mut sources {
            let name = s.name().to_string();
            s.prepare()
                .with_context(|| format!("cannot start the source {name:?}"))?;
        }
        let running = sources
            .into_iter()
            .map(|s| {
                tracing::info!(source = s.name(), kind = s.kind(), "starting a collector");
                spawn(s, context.clone())
            })
            .collect();
        Ok(Collectors { running, context })
    }

    /// Returns the status handles, for `/api/sources` and `/metrics`.
    pub fn statuses(&self) -> Vec<logyard_sources::StatusHandle> {
        self.running.iter().map(|r| r.status.clone()).collect()
    }

    /// Returns the collectors' stop flag: set, they finish their batch and stop (a stop
    /// sets it when the signal comes, so they stop while the HTTP server drains).
    pub fn shutdown(&self) -> logyard_sources::Shutdown {
        self.context.shutdown.clone()
    }

    /// Stops every collector and waits for them.
    pub fn stop(self) {
        self.context.shutdown.trigger();
        for r in self.running {
            let name = r.name.clone();
            if let Err(e) = r.join() {
                tracing::error!(source = name, error = %e, "collector stopped with an error");
            }
        }
    }
}

/// Tells rotation when the collectors have read a renamed file to its end, so that it is
/// compressed (and its original removed) only once every line of it is stored.
pub struct DrainObserver {
    statuses: Vec<logyard_sources::StatusHandle>,
    renames: Mutex<HashMap<PathBuf, PathBuf>>,
}

impl DrainObserver {
    /// Watches the collectors of these statuses.
    pub fn new(statuses: Vec<logyard_sources::StatusHandle>) -> DrainObserver {
        DrainObserver {
            statuses,
            renames: Mutex::new(HashMap::new()),
        }
    }

    /// Returns whether some collector follows `original` and has not delivered all of the
    /// file it has open there.
    fn behind(&self, original: &Path) -> Option<bool> {
        let mut followed = false;
        let mut behind = false;
        for status in &self.statuses {
            for f in status.snapshot().files {
                if Path::new(&f.path) == original {
                    followed = true;
                    behind |= f.offset < f.size;
                }
            }
        }
        followed.then_some(behind)
    }
}

/// How long a renamed file is watched at least: a collector notices a rename within its
/// poll interval (1 s by default), and a writer may still append until it reopens its file.
pub const DRAIN_GRACE: Duration = Duration::from_secs(2);

impl RotationObserver for DrainObserver {
    fn renamed(&self, original: &Path, rotated: &Path) {
        self.renames
            .lock()
            .expect("renames lock")
            .insert(rotated.to_path_buf(), original.to_path_buf());
    }

    fn wait_drained(&self, rotated: &Path, timeout: Duration) -> bool {
        let original = self.renames.lock().expect("renames lock").remove(rotated);
        let Some(original) = original else {
            return true;
        };
        let started = Instant::now();
        loop {
            match self.behind(&original) {
                // Nobody collects this file: nothing to wait for.
                None => return true,
                Some(false) if started.elapsed() >= DRAIN_GRACE => return true,
                _ if started.elapsed() >= timeout => return false,
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
}

/// Checks the `[[sources]]` entries without starting them.
pub fn validate(sources: &[SourceConfig]) -> anyhow::Result<()> {
    build_all(sources).context("invalid [[sources]] entry")?;
    Ok(())
}
