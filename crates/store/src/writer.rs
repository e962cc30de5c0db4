//! The writer thread: it numbers the records of each batch, appends a group of batches to
//! the WAL with one fsync (group commit), adds them to the memtable and only then
//! acknowledges them; ingest waits while the memtable is over its budget.

use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::wal::Wal;
use crate::{codec, keep_newer, AppendAck, FsyncPolicy, Inner, MemBatch, Request, StoreError};

impl Inner {
    pub(crate) fn run_writer(&self, receiver: mpsc::Receiver<Request>, mut next_seq: u64) {
        let mut frame = Vec::new();
        while let Ok(first) = receiver.recv() {
            let mut group = vec![first];
            if self.config.fsync != FsyncPolicy::Always {
                let mut bytes = 0;
                while bytes < 32 << 20 {
                    match receiver.try_recv() {
                        Ok(req) => {
                            bytes += req.records.len() * 128;
                            group.push(req);
                        }
                        Err(_) => break,
                    }
                }
            }
            self.wait_for_room();
            let mut wal = self.wal.lock().expect("wal lock");
            let group_start = wal.position();
            let mut written = 0;
            let mut result = Ok(());
            let mut acks = Vec::with_capacity(group.len());
            for req in &mut group {
                let first_seq = next_seq;
                for r in req.records.iter_mut() {
                    r.seq = next_seq;
                    next_seq += 1;
                }
                acks.push(AppendAck {
                    first_seq,
                    count: req.records.len(),
                });
                if req.records.is_empty() && req.checkpoint.is_none() {
                    continue;
                }
                Wal::begin_frame(&mut frame);
                match &req.checkpoint {
                    Some((key, cp)) => codec::encode_batch_with_checkpoint(
                        first_seq,
                        &req.records,
                        key,
                        cp,
                        &mut frame,
                    ),
                    None => codec::encode_batch(first_seq, &req.records, &mut frame),
                }
                match wal.append_frame(&mut frame) {
                    Ok(n) => written += n,
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
            if result.is_ok() && self.config.fsync != FsyncPolicy::Never {
                result = wal.sync();
            }
            if let Err(e) = result {
                tracing::error!(error = %e, "WAL write failed; the batches are refused");
                // Never write after a torn frame: the group is cut off its file, and the next
                // batch starts a fresh file (refused while none can be started).
                wal.abandon(group_start);
                for req in group {
                    let _ = req.reply.send(Err(StoreError::WriteFailed(format!(
                        "cannot write the WAL: {e}"
                    ))));
                }
                continue;
            }
            self.counters
                .wal_bytes
                .fetch_add(written, Ordering::Relaxed);
            let mut batches = Vec::with_capacity(group.len());
            let mut replies = Vec::with_capacity(group.len());
            {
                let mut view = self.view.write().expect("view lock");
                let mut checkpoints = self.checkpoints.lock().expect("checkpoints lock");
                for req in group {
                    if let Some((key, cp)) = req.checkpoint {
                        keep_newer(&mut checkpoints, key, cp);
                    }
                    if !req.records.is_empty() {
                        let batch = MemBatch::new(req.records);
                        view.active_bytes += batch.bytes();
                        view.active.push(batch.clone());
                        batches.push(batch);
                    }
                    replies.push(req.reply);
                }
                if view.active_bytes >= self.config.flush_bytes {
                    self.signal_flush();
                }
            }
            drop(wal);
            for batch in batches {
                self.counters
                    .appended_records
                    .fetch_add(batch.records().len() as u64, Ordering::Relaxed);
                self.counters
                    .appended_batches
                    .fetch_add(1, Ordering::Relaxed);
                let _ = self.tail.send(batch);
            }
            for (reply, ack) in replies.into_iter().zip(acks) {
                let _ = reply.send(Ok(ack));
            }
        }
    }

    /// Blocks the writer while the memtable is over its budget, so that memory stays bounded
    /// when segments cannot be written as fast as batches arrive.
    pub(crate) fn wait_for_room(&self) {
        let start = Instant::now();
        loop {
            let bytes = self.view.read().expect("view lock").memtable_bytes();
            if bytes < self.config.max_memtable_bytes || self.shutdown.load(Ordering::SeqCst) {
                return;
            }
            self.signal_flush();
            if start.elapsed() > Duration::from_secs(1) {
                tracing::warn!(bytes, "ingest is waiting for the memtable to be flushed");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
