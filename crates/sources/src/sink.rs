//! The seam between sources and the store: [`Sink`].
//!
//! Sources never see the store. They hand batches of records to a `Sink` that returns only
//! once the records are durable (the binary implements it with the store's append, which
//! returns after the WAL's fsync). A source commits its own position (a file offset) only
//! after the sink returned `Ok` for the lines before it.
//!
//! A sink may also keep a source's position in the same durable write as the batch
//! ([`Sink::write_with_checkpoint`]); a source then restarts from whichever of its own
//! checkpoint file and the sink's copy is newer, which closes the window between the
//! sink's acknowledgement and the checkpoint file's rename.

use logyard_model::Record;

use crate::error::SinkError;

/// An opaque position of a source, to be persisted atomically with a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointToken {
    /// The source's name: the key under which the sink keeps the token (one per source).
    pub key: String,
    /// Grows by one with every batch of the source; the larger of two tokens is the newer.
    pub seq: u64,
    /// The source's position, in its own encoding (JSON for the file source).
    pub data: Vec<u8>,
}

/// Where records go: blocking, returns once the records are durable.
pub trait Sink: Send + Sync {
    /// Makes the records durable; returns only then. An error means nothing was kept (or
    /// that what was kept may be sent again).
    fn write(&self, records: Vec<Record>) -> Result<(), SinkError>;

    /// Makes the records and the source's position durable in one atomic write.
    ///
    /// The default writes the records only and returns `Ok(false)`: the token was not kept.
    /// A sink that keeps it returns `Ok(true)` and must return the newest token of the key
    /// from [`Sink::stored_checkpoint`] after a restart.
    fn write_with_checkpoint(
        &self,
        records: Vec<Record>,
        token: CheckpointToken,
    ) -> Result<bool, SinkError> {
        let _ = token;
        self.write(records).map(|()| false)
    }

    /// Returns the newest token kept by [`Sink::write_with_checkpoint`] for a source.
    fn stored_checkpoint(&self, key: &str) -> Option<CheckpointToken> {
        let _ = key;
        None
    }
}

/// A sink that keeps records in memory, for tests, examples and `logyard ingest` dry runs.
#[derive(Debug, Default)]
pub struct MemorySink {
    records: std::sync::Mutex<Vec<Record>>,
}

impl MemorySink {
    /// Creates an empty sink.
    pub fn new() -> MemorySink {
        MemorySink::default()
    }

    /// Returns a copy of every record written so far, in order.
    pub fn records(&self) -> Vec<Record> {
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Removes and returns every record written so far.
    pub fn take(&self) -> Vec<Record> {
        std::mem::take(&mut *self.records.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Sink for MemorySink {
    fn write(&self, records: Vec<Record>) -> Result<(), SinkError> {
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(records);
        Ok(())
    }
}
