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
//!
//! [`Sink::submit`] hands a batch over without waiting and returns a [`Receipt`]: a source
//! can then read and parse its next batch while the sink makes the previous one durable
//! (the file source does), and still commits its position only once the receipt says so.
//! A receipt is waited for by a thread ([`Receipt::wait`]) or awaited by a task (it is a
//! future): HTTP ingest awaits it, the collectors' threads wait.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use crate::Record;

/// Why a sink did not make a batch durable: nothing of it was kept (or what was kept may
/// be sent again).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sink refused the batch: {message}")]
pub struct SinkError {
    /// What the sender should do about it.
    pub kind: SinkErrorKind,
    /// What happened.
    pub message: String,
}

/// The kinds of [`SinkError`], by what the sender should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkErrorKind {
    /// The sink is shutting down: send again to a running one.
    Stopped,
    /// The sink could not write (a failing disk): nothing was kept, send again later.
    WriteFailed,
    /// The sink keeps nothing (a node that serves queries only): send elsewhere.
    ReadOnly,
    /// Anything else.
    Other,
}

impl SinkError {
    /// An error of a kind.
    pub fn new(kind: SinkErrorKind, message: impl Into<String>) -> SinkError {
        SinkError {
            kind,
            message: message.into(),
        }
    }

    /// An error of kind [`SinkErrorKind::Other`].
    pub fn other(message: impl Into<String>) -> SinkError {
        SinkError::new(SinkErrorKind::Other, message)
    }
}

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

/// The answer of a sink: `Ok(kept)` once the records are durable, `kept` telling whether
/// the checkpoint token was kept with them.
pub type SinkAnswer = Result<bool, SinkError>;

/// The answer to a batch handed over by [`Sink::submit`], to be waited for by a thread
/// ([`Receipt::wait`]) or awaited by a task.
pub struct Receipt(ReceiptState);

enum ReceiptState {
    /// The answer is known (or was already taken).
    Ready(Option<SinkAnswer>),
    /// The answer comes when the future completes.
    Pending(Pin<Box<dyn Future<Output = SinkAnswer> + Send>>),
}

impl std::fmt::Debug for Receipt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            ReceiptState::Ready(r) => f.debug_tuple("Receipt").field(r).finish(),
            ReceiptState::Pending(_) => f.write_str("Receipt(pending)"),
        }
    }
}

impl Receipt {
    /// A receipt whose answer is known: the sink wrote the batch before returning.
    pub fn ready(result: SinkAnswer) -> Receipt {
        Receipt(ReceiptState::Ready(Some(result)))
    }

    /// A receipt answered when `answer` completes. The future must not need a particular
    /// async runtime to make progress (a `tokio::sync::oneshot` receiver does not): a
    /// thread waits for it by parking until it is woken.
    pub fn pending(answer: impl Future<Output = SinkAnswer> + Send + 'static) -> Receipt {
        Receipt(ReceiptState::Pending(Box::pin(answer)))
    }

    /// Returns true once the answer is known ([`Receipt::wait`] will not block).
    pub fn is_ready(&mut self) -> bool {
        if let ReceiptState::Pending(answer) = &mut self.0 {
            let mut cx = Context::from_waker(Waker::noop());
            if let Poll::Ready(r) = answer.as_mut().poll(&mut cx) {
                self.0 = ReceiptState::Ready(Some(r));
            }
        }
        matches!(self.0, ReceiptState::Ready(_))
    }

    /// Waits for the answer on this thread: `Ok(kept)` once the records are durable. Not
    /// for a task of an async runtime, which awaits the receipt instead.
    pub fn wait(self) -> SinkAnswer {
        match self.0 {
            ReceiptState::Ready(r) => r.unwrap_or_else(|| Err(taken())),
            ReceiptState::Pending(mut answer) => {
                let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
                let mut cx = Context::from_waker(&waker);
                loop {
                    if let Poll::Ready(r) = answer.as_mut().poll(&mut cx) {
                        return r;
                    }
                    std::thread::park();
                }
            }
        }
    }
}

impl Future for Receipt {
    type Output = SinkAnswer;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<SinkAnswer> {
        match &mut self.0 {
            ReceiptState::Ready(r) => Poll::Ready(r.take().unwrap_or_else(|| Err(taken()))),
            ReceiptState::Pending(answer) => answer.as_mut().poll(cx),
        }
    }
}

fn taken() -> SinkError {
    SinkError::other("the answer was already taken")
}

/// Wakes a thread parked in [`Receipt::wait`].
struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
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

    /// Hands the records (and the source's position, if any) over and returns at once,
    /// or as soon as the sink has room; the receipt tells when they are durable. Batches
    /// of one source are made durable in the order they were submitted.
    ///
    /// The default writes them before returning, with [`Sink::write_with_checkpoint`] or
    /// [`Sink::write`].
    fn submit(&self, records: Vec<Record>, token: Option<CheckpointToken>) -> Receipt {
        Receipt::ready(match token {
            Some(token) => self.write_with_checkpoint(records, token),
            None => self.write(records).map(|()| false),
        })
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
