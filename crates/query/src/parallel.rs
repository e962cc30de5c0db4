//! The parallel block scan: blocks are read and filtered on several threads, and their
//! results folded on the calling thread in block order, so that an answer is the one a
//! serial scan gives (the same groups, the same first and last values, the same cut when a
//! budget is passed).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use logyard_store::BlockRef;

use crate::{Cost, QueryError};

/// Most threads one scan reads its blocks on.
pub(crate) const MAX_WORKERS: usize = 4;

/// How many blocks each worker may read ahead of the fold: the memory a scan holds beyond
/// its state is about this many blocks' matches per worker.
const AHEAD_PER_WORKER: usize = 2;

/// Returns how many threads to scan `blocks` blocks on: one for a few blocks, else as many
/// as the machine has cores, at most [`MAX_WORKERS`].
pub(crate) fn workers_for(blocks: usize) -> usize {
    #[cfg(test)]
    if let Some(n) = tests::WORKERS.get() {
        return n;
    }
    if blocks < 8 {
        return 1;
    }
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_WORKERS)
}

/// The instant a query must stop at, and how to say so.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    pub(crate) at: Instant,
    pub(crate) timeout_ms: u128,
}

impl Deadline {
    /// Fails once the deadline has passed.
    pub(crate) fn check(&self) -> Result<(), String> {
        if Instant::now() > self.at {
            return Err(format!(
                "the query ran past its deadline of {} ms (setting query.timeout): narrow the time range or the filter",
                self.timeout_ms
            ));
        }
        Ok(())
    }
}

/// What a worker made of one block: its result (or, `Err`, why it did not read it: the
/// deadline passed) and what reading it cost.
type Done<T> = (Result<Result<T, QueryError>, String>, Cost);

/// State shared by the workers and the fold.
struct Shared<T> {
    /// Results not folded yet, by block index.
    ready: BTreeMap<usize, Done<T>>,
    /// Blocks below this index are folded.
    folded: usize,
}

/// Runs `work` on every block (on up to [`workers_for`] threads) and `fold` on each result
/// in block order on this thread. Stops at the first error of `work`, at the first `Err` of
/// `fold` (a budget passed: its reason is returned) and at the deadline (its reason too);
/// the cost of the blocks read is added to `cost`.
pub(crate) fn scan_blocks<T: Send>(
    blocks: &[&BlockRef],
    deadline: Deadline,
    cost: &mut Cost,
    work: impl Fn(&BlockRef, &mut Cost) -> Result<T, QueryError> + Sync,
    mut fold: impl FnMut(&BlockRef, T) -> Result<(), String>,
) -> Result<Option<String>, QueryError> {
    let workers = workers_for(blocks.len());
    if workers == 1 {
        for block in blocks {
            if let Err(reason) = deadline.check() {
                return Ok(Some(reason));
            }
            let value = work(block, cost)?;
            if let Err(reason) = fold(block, value) {
                return Ok(Some(reason));
            }
        }
        return Ok(None);
    }
    let window = workers * AHEAD_PER_WORKER;
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let shared = Mutex::new(Shared {
        ready: BTreeMap::new(),
        folded: 0,
    });
    let changed = Condvar::new();
    let lock = || shared.lock().unwrap_or_else(|p| p.into_inner());
    let worker = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= blocks.len() {
            return;
        }
        {
            let mut s = lock();
            while i >= s.folded + window && !stop.load(Ordering::Relaxed) {
                s = changed.wait(s).unwrap_or_else(|p| p.into_inner());
            }
        }
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let mut local = Cost::default();
        // Past the deadline the fold stops at this block: reading it would waste time.
        let result = deadline.check().map(|()| work(blocks[i], &mut local));
        lock().ready.insert(i, (result, local));
        changed.notify_all();
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers).map(|_| scope.spawn(worker)).collect();
        let outcome = (|| {
            for (i, block) in blocks.iter().enumerate() {
                if let Err(reason) = deadline.check() {
                    return Ok(Some(reason));
                }
                let (result, local) = {
                    let mut s = lock();
                    loop {
                        if let Some(done) = s.ready.remove(&i) {
                            s.folded = i + 1;
                            break done;
                        }
                        s = changed.wait(s).unwrap_or_else(|p| p.into_inner());
                    }
                };
                changed.notify_all();
                cost.add_reads(&local);
                let value = match result {
                    Ok(value) => value?,
                    Err(reason) => return Ok(Some(reason)),
                };
                if let Err(reason) = fold(block, value) {
                    return Ok(Some(reason));
                }
            }
            Ok(None)
        })();
        stop.store(true, Ordering::Relaxed);
        {
            let _s = lock();
            changed.notify_all();
        }
        for h in handles {
            if let Err(panic) = h.join() {
                std::panic::resume_unwind(panic);
            }
        }
        outcome
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::cell::Cell;

    thread_local! {
        /// Overrides the number of workers of the scans started on this thread.
        pub(crate) static WORKERS: Cell<Option<usize>> = const { Cell::new(None) };
    }

    /// Runs `f` with scans on `workers` threads (on this thread only).
    pub(crate) fn with_workers<T>(workers: usize, f: impl FnOnce() -> T) -> T {
        WORKERS.set(Some(workers));
        let out = f();
        WORKERS.set(None);
        out
    }
}
