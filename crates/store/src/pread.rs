//! A segment file read by position (`pread`), so that any number of threads can read one
//! segment at once.
//!
//! The `parquet` crate's reader for [`File`] clones the handle and seeks it; clones share one
//! file offset, so two threads reading one segment (a search and a merge, two searches) can
//! read each other's bytes. Reads by position have no shared offset.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;
use parquet::errors::{ParquetError, Result};
use parquet::file::reader::{ChunkReader, Length};

/// A shared, read-only file read by position.
#[derive(Debug, Clone)]
pub struct PreadFile {
    file: Arc<File>,
    len: u64,
}

impl PreadFile {
    /// Wraps an open file.
    pub fn new(file: File) -> io::Result<PreadFile> {
        let len = file.metadata()?.len();
        Ok(PreadFile {
            file: Arc::new(file),
            len,
        })
    }

    /// Reads exactly `buf.len()` bytes at `offset`, or fewer at the end of the file.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.file.read_at(buf, offset)
    }
}

impl Length for PreadFile {
    fn len(&self) -> u64 {
        self.len
    }
}

/// A reader from a position of a [`PreadFile`], with its own position.
pub struct PreadReader {
    file: Arc<File>,
    pos: u64,
}

impl Read for PreadReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl ChunkReader for PreadFile {
    type T = io::BufReader<PreadReader>;

    fn get_read(&self, start: u64) -> Result<Self::T> {
        Ok(io::BufReader::new(PreadReader {
            file: self.file.clone(),
            pos: start,
        }))
    }

    fn get_bytes(&self, start: u64, length: usize) -> Result<Bytes> {
        let mut buf = vec![0u8; length];
        self.file.read_exact_at(&mut buf, start).map_err(|e| {
            ParquetError::General(format!(
                "cannot read {length} bytes at offset {start} of a segment: {e}"
            ))
        })?;
        Ok(Bytes::from(buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_do_not_share_a_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        let f = PreadFile::new(File::open(&path).unwrap()).unwrap();
        let mut a = f.get_read(2).unwrap();
        let mut b = f.get_read(7).unwrap();
        let mut x = [0u8; 2];
        b.read_exact(&mut x).unwrap();
        let mut y = [0u8; 2];
        a.read_exact(&mut y).unwrap();
        assert_eq!(&x, b"78");
        assert_eq!(&y, b"23");
        assert_eq!(&f.get_bytes(4, 3).unwrap()[..], b"456");
        assert!(f.get_bytes(8, 5).is_err());
    }
}
