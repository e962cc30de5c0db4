//! The collectors of `[[sources]]` (and `serve --stdin`), writing into the store.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use logyard_rotate::RotationObserver;
use logyard_sources::{
    source_names, spawn, RunningSource, Shutdown, Source, SourceConfig, SourceContext, StdinConfig,
    StdinSource,
};
use logyard_store::{Store, StoreSink};

use crate::config::RawConfig;

/// One running collector, with what it was built from (to tell whether a reload changes it).
struct Running {
    source: RunningSource,
    /// Its own stop flag: a reload stops one collector and leaves the others running.
    stop: Shutdown,
    /// Its `[[sources]]` entry; `None` for `serve --stdin`, which a reload leaves alone.
    config: Option<SourceConfig>,
}

/// The running collectors; clones share them.
#[derive(Clone)]
pub struct Collectors {
    inner: Arc<Inner>,
}

struct Inner {
    running: Mutex<Vec<Running>>,
    /// The context new collectors get (its parser settings change with a reload).
    context: Mutex<SourceContext>,
    /// Set when the server stops: every collector stops, and a reload starts none.
    stopping: Shutdown,
}

/// What a reload changed among the collectors, by name.
#[derive(Debug, Default, serde::Serialize)]
pub struct SourceChanges {
    /// Started: new in the file.
    pub added: Vec<String>,
    /// Stopped and started again with their new settings, from their checkpoints.
    pub changed: Vec<String>,
    /// Stopped: gone from the file.
    pub removed: Vec<String>,
}

/// Builds a collector for each entry; binds the listeners (before the server says it is
/// ready: what is sent once it is reaches them, and a port in use is an error).
fn build_prepared(
    configs: &[SourceConfig],
    names: &[String],
) -> anyhow::Result<Vec<Box<dyn Source>>> {
    let mut built = Vec::new();
    for (config, name) in configs.iter().zip(names) {
        let mut source = config.build(name).context("invalid [[sources]] entry")?;
        source
            .prepare()
            .with_context(|| format!("cannot start the source {name:?}"))?;
        built.push(source);
    }
    Ok(built)
}

impl Collectors {
    /// Builds and starts every `[[sources]]` entry, and a stdin source when asked.
    pub fn start(
        config: &RawConfig,
        store: Arc<Store>,
        data_dir: &Path,
        stdin: bool,
    ) -> anyhow::Result<Collectors> {
        let names = source_names(&config.sources).context("invalid [[sources]] entry")?;
        let mut context = SourceContext::new(
            Arc::new(StoreSink(store)),
            data_dir.join("state"),
            &crate::lines::host_name(),
        );
        context.parser = parser_base(config);
        let sources = build_prepared(&config.sources, &names)?;
        let collectors = Collectors {
            inner: Arc::new(Inner {
                running: Mutex::new(Vec::new()),
                context: Mutex::new(context),
                stopping: Shutdown::new(),
            }),
        };
        for (source, c) in sources.into_iter().zip(&config.sources) {
            collectors.launch(source, Some(c.clone()));
        }
        if stdin {
            collectors.launch(
                Box::new(StdinSource::new("stdin", StdinConfig::default())),
                None,
            );
        }
        Ok(collectors)
    }

    fn launch(&self, source: Box<dyn Source>, config: Option<SourceConfig>) {
        tracing::info!(
            source = source.name(),
            kind = source.kind(),
            "starting a collector"
        );
        let mut context = self.inner.context.lock().expect("context lock").clone();
        context.shutdown = Shutdown::new();
        let stop = context.shutdown.clone();
        let source = spawn(source, context);
        self.inner
            .running
            .lock()
            .expect("collectors lock")
            .push(Running {
                source,
                stop,
                config,
            });
    }

    /// Puts a reloaded configuration's `[[sources]]` in effect: an entry whose settings
    /// (and the parser settings they use) did not change keeps running; a changed one is
    /// stopped and started again under its name, so it continues from its checkpoint; a new
    /// one starts; one gone from the file stops. The new entries are all built (and their
    /// ports bound) before anything stops, so an entry that cannot start changes nothing.
    pub fn reconcile(&self, config: &RawConfig) -> anyhow::Result<SourceChanges> {
        let names = source_names(&config.sources).context("invalid [[sources]] entry")?;
        let parser = parser_base(config);
        let parser_changed = self.inner.context.lock().expect("context lock").parser != parser;
        let mut running = self.inner.running.lock().expect("collectors lock");
        let mut changes = SourceChanges::default();
        // Which entries need a new collector, and which collectors stop.
        let mut start: Vec<(SourceConfig, String)> = Vec::new();
        let mut stop: Vec<usize> = Vec::new();
        for (c, name) in config.sources.iter().zip(&names) {
            match running
                .iter()
                .position(|r| r.source.name == *name && r.config.is_some())
            {
                Some(i) if running[i].config.as_ref() == Some(c) && !parser_changed => {}
                Some(i) => {
                    stop.push(i);
                    start.push((c.clone(), name.clone()));
                    changes.changed.push(name.clone());
                }
                None => {
                    start.push((c.clone(), name.clone()));
                    changes.added.push(name.clone());
                }
            }
        }
        for (i, r) in running.iter().enumerate() {
            if r.config.is_some() && !names.contains(&r.source.name) {
                stop.push(i);
                changes.removed.push(r.source.name.clone());
            }
        }
        // Build what starts first: a bad entry refuses the whole reload. Listeners whose
        // address stays with a changed entry are bound once the old one stopped, below.
        let (configs, new_names): (Vec<SourceConfig>, Vec<String>) = start.into_iter().unzip();
        for (c, name) in configs.iter().zip(&new_names) {
            c.build(name)
                .with_context(|| format!("invalid [[sources]] entry {name:?}"))?;
        }
        stop.sort_unstable();
        for i in stop.into_iter().rev() {
            let r = running.remove(i);
            tracing::info!(source = %r.source.name, "stopping a collector (reload)");
            r.stop.trigger();
            let name = r.source.name.clone();
            if let Err(e) = r.source.join() {
                tracing::error!(source = name, error = %e, "collector stopped with an error");
            }
        }
        drop(running);
        self.inner.context.lock().expect("context lock").parser = parser;
        if self.inner.stopping.is_triggered() {
            return Ok(changes);
        }
        let sources = build_prepared(&configs, &new_names)?;
        for (source, c) in sources.into_iter().zip(configs) {
            self.launch(source, Some(c));
        }
        Ok(changes)
    }

    /// Returns the status handles, for `/api/sources` and `/metrics`.
    pub fn statuses(&self) -> Vec<logyard_sources::StatusHandle> {
        self.inner
            .running
            .lock()
            .expect("collectors lock")
            .iter()
            .map(|r| r.source.status.clone())
            .collect()
    }

    /// Tells every collector to stop (their last batch is made durable before the store
    /// closes); a reload from now on starts none. [`Collectors::stop`] waits for them.
    pub fn trigger_stop(&self) {
        self.inner.stopping.trigger();
        for r in self.inner.running.lock().expect("collectors lock").iter() {
            r.stop.trigger();
        }
    }

    /// Stops every collector and waits for them.
    pub fn stop(&self) {
        self.trigger_stop();
        let running = std::mem::take(&mut *self.inner.running.lock().expect("collectors lock"));
        for r in running {
            let name = r.source.name.clone();
            if let Err(e) = r.source.join() {
                tracing::error!(source = name, error = %e, "collector stopped with an error");
            }
        }
    }
}

/// The parser settings every collector starts from (grok parsers, redaction, limits).
fn parser_base(config: &RawConfig) -> logyard_parse::ParserConfig {
    config.parser_config(
        logyard_parse::Format::Auto,
        logyard_parse::TimeZone::default(),
    )
}

/// Tells rotation when the collectors have read a renamed file to its end, so that it is
/// compressed (and its original removed) only once every line of it is stored.
pub struct DrainObserver {
    collectors: Collectors,
    renames: Mutex<HashMap<PathBuf, PathBuf>>,
}

impl DrainObserver {
    /// Watches the collectors (those running at each look: a reload changes them).
    pub fn new(collectors: Collectors) -> DrainObserver {
        DrainObserver {
            collectors,
            renames: Mutex::new(HashMap::new()),
        }
    }

    /// Returns whether some collector follows `original` and has not delivered all of the
    /// file it has open there.
    fn behind(&self, original: &Path) -> Option<bool> {
        let mut followed = false;
        let mut behind = false;
        for status in &self.collectors.statuses() {
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
