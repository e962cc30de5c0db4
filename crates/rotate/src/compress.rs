//! Compression of rotated files with gzip (flate2) or zstd, verified before the original
//! is removed.
//!
//! The archive is written to `<name>.tmp`, synced, decompressed again and compared with the
//! source (length and CRC-32); only then is it renamed into place. The caller removes the
//! uncompressed file after that, so a failure at any step leaves the uncompressed file whole.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::RotateError;
use crate::rule::Compression;

/// A cap on the bytes a run may write; past it, writes fail as with a full disk (`ENOSPC`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Budget {
    pub remaining: Option<u64>,
}

impl Budget {
    fn take(&mut self, n: usize) -> io::Result<()> {
        if let Some(r) = &mut self.remaining {
            if (n as u64) > *r {
                *r = 0;
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            *r -= n as u64;
        }
        Ok(())
    }
}

/// A writer that charges every write to a [`Budget`].
pub(crate) struct BudgetWriter<'a, W> {
    pub inner: W,
    pub budget: &'a mut Budget,
}

impl<W: Write> Write for BudgetWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.budget.take(buf.len())?;
        self.inner.write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Sizes of one compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Compressed {
    pub input: u64,
    pub output: u64,
}

/// Length and CRC-32 of a byte stream.
fn digest(mut r: impl Read) -> io::Result<(u64, u32)> {
    let mut crc = flate2::Crc::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        crc.update(&buf[..n]);
    }
    Ok((crc.amount() as u64, crc.sum()))
}

/// A reader that keeps the CRC-32 and length of what passes through it.
struct CrcReader<R> {
    inner: R,
    crc: flate2::Crc,
    len: u64,
}

impl<R: Read> Read for CrcReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.crc.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
}

/// Returns `path` with `.tmp` appended.
pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

/// Compresses `src` into `dst` (verified, synced, same mode and mtime as `src`). Does not
/// remove `src`.
pub(crate) fn compress_file(
    src: &Path,
    dst: &Path,
    compression: Compression,
    budget: &mut Budget,
) -> Result<Compressed, RotateError> {
    let tmp = tmp_path(dst);
    let keep_hint = format!(
        "{} is kept uncompressed and whole; free space or fix the cause, the next run compresses it",
        src.display()
    );
    let result = write_and_verify(src, &tmp, compression, budget);
    let sizes = match result {
        Ok(s) => s,
        Err((action, path, e)) => {
            let _ = fs::remove_file(&tmp);
            return Err(RotateError::io(action, path, e, keep_hint));
        }
    };
    if let Ok(meta) = fs::metadata(src) {
        let _ = fs::set_permissions(&tmp, meta.permissions());
        if let Ok(mtime) = meta.modified() {
            if let Ok(f) = File::options().write(true).open(&tmp) {
                let _ = f.set_modified(mtime);
            }
        }
    }
    if let Err(e) = fs::rename(&tmp, dst) {
        let _ = fs::remove_file(&tmp);
        return Err(RotateError::io("rename archive into", dst, e, keep_hint));
    }
    sync_dir(dst);
    Ok(sizes)
}

type StepError = (&'static str, PathBuf, io::Error);

fn write_and_verify(
    src: &Path,
    tmp: &Path,
    compression: Compression,
    budget: &mut Budget,
) -> Result<Compressed, StepError> {
    let input = File::open(src).map_err(|e| ("open for compression", src.to_path_buf(), e))?;
    let out = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(tmp)
        .map_err(|e| ("create", tmp.to_path_buf(), e))?;
    let mut reader = CrcReader {
        inner: BufReader::new(input),
        crc: flate2::Crc::new(),
        len: 0,
    };
    let w = BufWriter::new(BudgetWriter {
        inner: &out,
        budget,
    });
    let write_err = |e| ("write", tmp.to_path_buf(), e);
    match compression {
        Compression::None => {
            return Err((
                "compress",
                src.to_path_buf(),
                io::Error::other("no compression configured"),
            ))
        }
        Compression::Gzip { level } => {
            let mut enc = flate2::write::GzEncoder::new(w, flate2::Compression::new(level));
            io::copy(&mut reader, &mut enc).map_err(write_err)?;
            let mut w = enc.finish().map_err(write_err)?;
            w.flush().map_err(write_err)?;
        }
        Compression::Zstd { level } => {
            let mut enc = zstd::stream::write::Encoder::new(w, level).map_err(write_err)?;
            io::copy(&mut reader, &mut enc).map_err(write_err)?;
            let mut w = enc.finish().map_err(write_err)?;
            w.flush().map_err(write_err)?;
        }
    }
    out.sync_all().map_err(|e| ("sync", tmp.to_path_buf(), e))?;
    let output = out.metadata().map(|m| m.len()).unwrap_or(0);
    let (want_len, want_crc) = (reader.len, reader.crc.sum());
    let (got_len, got_crc) =
        digest(open_decoder(tmp).map_err(|e| ("verify", tmp.to_path_buf(), e))?)
            .map_err(|e| ("verify", tmp.to_path_buf(), e))?;
    if (got_len, got_crc) != (want_len, want_crc) {
        return Err((
            "verify",
            tmp.to_path_buf(),
            io::Error::other(format!(
                "archive decompresses to {got_len} bytes (crc {got_crc:08x}), expected {want_len} (crc {want_crc:08x})"
            )),
        ));
    }
    Ok(Compressed {
        input: want_len,
        output,
    })
}

/// Opens a file for reading, decompressing gzip or zstd when its magic bytes say so.
pub fn open_decoder(path: &Path) -> io::Result<Box<dyn Read>> {
    let mut f = File::open(path)?;
    let mut magic = [0u8; 4];
    let mut n = 0;
    while n < 4 {
        let k = f.read(&mut magic[n..])?;
        if k == 0 {
            break;
        }
        n += k;
    }
    let f = File::open(path)?;
    if n >= 2 && magic[..2] == [0x1f, 0x8b] {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(
            f,
        ))))
    } else if n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
        Ok(Box::new(zstd::stream::read::Decoder::new(f)?))
    } else {
        Ok(Box::new(BufReader::new(f)))
    }
}

/// Reads a log file or an archive (gzip or zstd, told by magic bytes) into memory.
pub fn read_archive(path: &Path) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    open_decoder(path)?.read_to_end(&mut out)?;
    Ok(out)
}

/// Syncs the directory of `path` so a rename or create in it is durable (best effort).
pub(crate) fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_budget() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("a.log");
        let data: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
        fs::write(&src, &data).unwrap();
        for (c, ext) in [
            (Compression::Gzip { level: 6 }, ".gz"),
            (Compression::Zstd { level: 3 }, ".zst"),
        ] {
            let dst = dir.path().join(format!("a.log{ext}"));
            let sizes = compress_file(&src, &dst, c, &mut Budget::default()).unwrap();
            assert_eq!(sizes.input, data.len() as u64);
            assert_eq!(read_archive(&dst).unwrap(), data);
        }
        let dst = dir.path().join("b.gz");
        let mut budget = Budget {
            remaining: Some(100),
        };
        let err = compress_file(&src, &dst, Compression::Gzip { level: 1 }, &mut budget)
            .unwrap_err()
            .to_string();
        assert!(err.contains("kept uncompressed"), "{err}");
        assert!(fs::symlink_metadata(&dst).is_err());
        assert!(fs::symlink_metadata(tmp_path(&dst)).is_err());
    }
}
