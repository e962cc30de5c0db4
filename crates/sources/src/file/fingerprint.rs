//! File identity: device and inode, plus a fingerprint of the first line so that a reused
//! inode (a new file that got the number of a deleted one) is told apart.

use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};

use serde::{Deserialize, Serialize};

/// Bytes of the first line that the fingerprint covers, at most.
pub(crate) const FINGERPRINT_BYTES: usize = 256;

/// Device and inode of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct FileId {
    /// The device number.
    pub dev: u64,
    /// The inode number.
    pub ino: u64,
}

impl FileId {
    /// The id of a file from its metadata.
    pub fn of(meta: &std::fs::Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// A hash of the file's first line (up to [`FINGERPRINT_BYTES`]), and how many bytes it
/// covers; `len` 0 for an empty file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(crate) struct Fingerprint {
    /// FNV-1a 64 of the covered bytes.
    pub hash: u64,
    /// Bytes covered.
    pub len: u32,
    /// True when the covered bytes end with the first newline or reach the limit: the
    /// fingerprint will not change while the file only grows.
    pub complete: bool,
}

impl Fingerprint {
    /// Computes the fingerprint of an open file.
    pub fn of(file: &File) -> std::io::Result<Fingerprint> {
        let mut buf = [0u8; FINGERPRINT_BYTES];
        let n = read_full_at(file, &mut buf, 0)?;
        Ok(Fingerprint::of_bytes(&buf[..n]))
    }

    /// Computes the fingerprint of a file's first bytes.
    pub fn of_bytes(head: &[u8]) -> Fingerprint {
        let head = &head[..head.len().min(FINGERPRINT_BYTES)];
        let (covered, complete) = match memchr_nl(head) {
            Some(i) => (&head[..=i], true),
            None => (head, head.len() == FINGERPRINT_BYTES),
        };
        Fingerprint {
            hash: fnv1a(covered),
            len: covered.len() as u32,
            complete,
        }
    }

    /// True when `file` still starts with the bytes this fingerprint covers.
    pub fn matches(&self, file: &File) -> std::io::Result<bool> {
        let mut buf = vec![0u8; self.len as usize];
        let n = read_full_at(file, &mut buf, 0)?;
        Ok(n == buf.len() && fnv1a(&buf) == self.hash)
    }
}

fn memchr_nl(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Reads up to `buf.len()` bytes at `offset`, fewer only at the end of the file.
pub(crate) fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], offset + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
