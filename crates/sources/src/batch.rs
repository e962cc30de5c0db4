//! Delivery with retries for sources that cannot read their input again (syslog, stdin):
//! a failed batch is retried until the sink takes it or the source stops.

use std::time::Duration;

use logyard_model::Record;

use crate::shutdown::Shutdown;
use crate::status::{SourceState, StatusHandle};
use logyard_model::sink::Sink;

/// Hands a batch to the sink, retrying with backoff while it fails; returns false when the
/// source was stopped before the sink took it (the batch is then dropped).
pub(crate) fn deliver_retrying(
    sink: &dyn Sink,
    records: Vec<Record>,
    bytes: u64,
    status: &StatusHandle,
    shutdown: &Shutdown,
) -> bool {
    if records.is_empty() {
        return true;
    }
    let n = records.len() as u64;
    let mut backoff = Duration::from_millis(100);
    loop {
        match sink.write(records.clone()) {
            Ok(()) => {
                status.add_lines(n, bytes);
                status.set_state(SourceState::Running);
                return true;
            }
            Err(e) => {
                tracing::warn!(source = %status.snapshot().name, error = %e, "sink failed; retrying");
                status.error(e.to_string());
                if shutdown.wait_timeout(backoff) {
                    tracing::error!(lines = n, "stopping with a batch the sink did not take");
                    return false;
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}
