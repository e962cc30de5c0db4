//! The seam with the file collector: it is told about renames and asked whether it has read a
//! rotated file to its end before that file is compressed.

use std::path::Path;
use std::time::Duration;

/// Receives rotation events; the file collector implements it so no line is lost when a
/// followed file is renamed and then compressed.
///
/// Both methods have no-op defaults, so `struct Nothing; impl RotationObserver for Nothing {}`
/// is a valid observer.
pub trait RotationObserver: Send + Sync {
    /// Tells that `original` was renamed to `rotated`; a follower should keep reading
    /// `rotated` to its end and reopen `original`.
    fn renamed(&self, original: &Path, rotated: &Path) {
        let _ = (original, rotated);
    }

    /// Waits until `rotated` has been read to its end, at most `timeout`; returns false when
    /// it has not, and the compression of `rotated` is then left to a later run.
    fn wait_drained(&self, rotated: &Path, timeout: Duration) -> bool {
        let _ = (rotated, timeout);
        true
    }
}

/// An observer that does nothing: no file is followed.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopObserver;

impl RotationObserver for NoopObserver {}
