//! The write-ahead log: accepted batches, framed and checksummed, in numbered files.
//!
//! A file `wal/<n>.wal` starts with the 8-byte magic `LYWAL\0\0\x01` and holds frames
//! `u32 payload length | u32 CRC32C of the payload | payload` (little-endian); the payload is
//! a batch as encoded by [`crate::codec`]. A new file is started at each memtable flush, and
//! files are removed once every record in them is in a durable segment.
//!
//! Replay reads the files in order. A frame that is cut short or fails its checksum ends the
//! good part of its file: the file is truncated there and a warning is logged. The one
//! exception is a bad frame whose successor is intact (bytes flipped inside one payload): only
//! that frame is skipped, so that a single damaged batch does not take later ones with it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use logyard_model::Record;

use crate::codec;
use crate::fsutil::sync_dir;
use crate::KeyedCheckpoint;

const MAGIC: &[u8; 8] = b"LYWAL\0\0\x01";
const HEADER: usize = 8;
/// A frame's header: payload length and CRC-32C.
const FRAME_HEADER: usize = 8;
/// The largest payload replay accepts; a bigger length field means a damaged frame.
const MAX_FRAME: usize = 1 << 30;

/// What replay found, beside the records.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    /// Files read.
    pub files: usize,
    /// Frames read intact.
    pub frames: usize,
    /// Frames skipped or cut because they were damaged or incomplete.
    pub damaged_frames: usize,
    /// Bytes removed from file tails.
    pub truncated_bytes: u64,
}

/// The open write-ahead log.
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    file: File,
    number: u64,
    bytes: u64,
}

fn file_name(n: u64) -> String {
    format!("{n:016}.wal")
}

/// Returns the numbers of the WAL files in `dir`, ascending.
pub fn list_files(dir: &Path) -> io::Result<Vec<u64>> {
    let mut numbers = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(n) = name
            .strip_suffix(".wal")
            .and_then(|s| s.parse::<u64>().ok())
        {
            numbers.push(n);
        }
    }
    numbers.sort_unstable();
    Ok(numbers)
}

/// Reads every WAL file in `dir` in order, repairing damaged tails, and calls `on_batch` with
/// each intact batch.
pub fn replay(
    dir: &Path,
    mut on_batch: impl FnMut(Vec<Record>, Option<KeyedCheckpoint>),
) -> io::Result<ReplayReport> {
    let mut report = ReplayReport::default();
    for n in list_files(dir)? {
        let path = dir.join(file_name(n));
        let data = fs::read(&path)?;
        report.files += 1;
        if data.len() < HEADER || &data[..HEADER] != MAGIC {
            tracing::warn!(file = %path.display(), "WAL file without a valid header, ignored and removed");
            report.damaged_frames += 1;
            report.truncated_bytes += data.len() as u64;
            fs::remove_file(&path)?;
            continue;
        }
        let mut pos = HEADER;
        let mut good_end = HEADER;
        while pos < data.len() {
            match frame_at(&data, pos) {
                Frame::Good(payload, next) => match codec::decode_frame(payload) {
                    Ok((records, checkpoint)) => {
                        report.frames += 1;
                        on_batch(records, checkpoint);
                        pos = next;
                        good_end = next;
                    }
                    Err(e) => {
                        tracing::warn!(file = %path.display(), offset = pos, error = %e, "undecodable WAL frame skipped");
                        report.damaged_frames += 1;
                        pos = next;
                        good_end = next;
                    }
                },
                Frame::Bad(next) => {
                    // Skip one damaged frame only if the following one is intact.
                    let resync = next.is_some_and(|next| {
                        next == data.len() || matches!(frame_at(&data, next), Frame::Good(..))
                    });
                    report.damaged_frames += 1;
                    if resync {
                        let next = next.expect("checked above");
                        tracing::warn!(file = %path.display(), offset = pos, "damaged WAL frame skipped");
                        pos = next;
                        good_end = next;
                    } else {
                        break;
                    }
                }
            }
        }
        if good_end < data.len() {
            let cut = data.len() - good_end;
            tracing::warn!(file = %path.display(), offset = good_end, bytes = cut, "torn WAL tail cut at the last good frame");
            report.truncated_bytes += cut as u64;
            let f = OpenOptions::new().write(true).open(&path)?;
            f.set_len(good_end as u64)?;
            f.sync_all()?;
        }
    }
    Ok(report)
}

enum Frame<'a> {
    /// An intact payload and the offset after it.
    Good(&'a [u8], usize),
    /// A damaged frame and, if its length field is plausible, the offset after it.
    Bad(Option<usize>),
}

fn frame_at(data: &[u8], pos: usize) -> Frame<'_> {
    if data.len() - pos < FRAME_HEADER {
        return Frame::Bad(None);
    }
    let len = u32::from_le_bytes(data[pos..pos + 4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(data[pos + 4..pos + 8].try_into().expect("4 bytes"));
    let end = pos + FRAME_HEADER + len;
    if len > MAX_FRAME || end > data.len() {
        return Frame::Bad(None);
    }
    let payload = &data[pos + FRAME_HEADER..end];
    if crc32c::crc32c(payload) == crc {
        Frame::Good(payload, end)
    } else {
        Frame::Bad(Some(end))
    }
}

impl Wal {
    /// Opens a new WAL file numbered after every existing one in `dir`.
    pub fn create(dir: &Path) -> io::Result<Wal> {
        fs::create_dir_all(dir)?;
        let number = list_files(dir)?.last().map_or(1, |n| n + 1);
        Self::create_numbered(dir, number)
    }

    fn create_numbered(dir: &Path, number: u64) -> io::Result<Wal> {
        let path = dir.join(file_name(number));
        let mut file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)?;
        file.write_all(MAGIC)?;
        file.sync_all()?;
        sync_dir(dir)?;
        Ok(Wal {
            dir: dir.to_path_buf(),
            file,
            number,
            bytes: HEADER as u64,
        })
    }

    /// Returns the number of the file being written.
    #[cfg(test)]
    pub fn number(&self) -> u64 {
        self.number
    }

    /// Returns the bytes written to the current file.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Starts a frame in `frame`: room for its header, then the payload is appended to it
    /// (written by [`Wal::append_frame`]).
    pub fn begin_frame(frame: &mut Vec<u8>) {
        frame.clear();
        frame.extend_from_slice(&[0; FRAME_HEADER]);
    }

    /// Appends a frame begun by [`Wal::begin_frame`], filling in its header (payload length
    /// and CRC-32C); call [`Wal::sync`] to make it durable.
    pub fn append_frame(&mut self, frame: &mut [u8]) -> io::Result<()> {
        let (header, payload) = frame.split_at_mut(FRAME_HEADER);
        header[..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        header[4..].copy_from_slice(&crc32c::crc32c(payload).to_le_bytes());
        self.file.write_all(frame)?;
        self.bytes += frame.len() as u64;
        Ok(())
    }

    /// Makes every appended frame durable.
    pub fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// Starts a new file and returns the number of the one just closed.
    pub fn rotate(&mut self) -> io::Result<u64> {
        self.file.sync_all()?;
        let old = self.number;
        *self = Self::create_numbered(&self.dir, old + 1)?;
        Ok(old)
    }

    /// Removes every file numbered `upto` or lower.
    pub fn remove_upto(&self, upto: u64) -> io::Result<()> {
        for n in list_files(&self.dir)? {
            if n <= upto && n != self.number {
                fs::remove_file(self.dir.join(file_name(n)))?;
            }
        }
        sync_dir(&self.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_batches(dir: &Path, n: usize) -> PathBuf {
        let mut wal = Wal::create(dir).unwrap();
        let mut frame = Vec::new();
        for i in 0..n {
            let rec = Record::new(i as i64, format!("line {i}"));
            Wal::begin_frame(&mut frame);
            codec::encode_batch(i as u64 + 1, &[rec], &mut frame);
            wal.append_frame(&mut frame).unwrap();
        }
        wal.sync().unwrap();
        dir.join(file_name(wal.number()))
    }

    fn messages(dir: &Path) -> (Vec<String>, ReplayReport) {
        let mut got = Vec::new();
        let report = replay(dir, |b, _| got.extend(b.into_iter().map(|r| r.message))).unwrap();
        (got, report)
    }

    #[test]
    fn replays_in_order() {
        let dir = tempfile::tempdir().unwrap();
        write_batches(dir.path(), 3);
        let (got, report) = messages(dir.path());
        assert_eq!(got, ["line 0", "line 1", "line 2"]);
        assert_eq!(report.damaged_frames, 0);
    }

    #[test]
    fn torn_tail_is_cut_at_last_good_frame() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_batches(dir.path(), 3);
        let len = fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 5)
            .unwrap();
        let (got, report) = messages(dir.path());
        assert_eq!(got, ["line 0", "line 1"]);
        assert_eq!(report.damaged_frames, 1);
        assert!(report.truncated_bytes > 0);
        // The repaired file replays cleanly.
        let (again, report) = messages(dir.path());
        assert_eq!(again, ["line 0", "line 1"]);
        assert_eq!(report.damaged_frames, 0);
    }

    #[test]
    fn flipped_payload_byte_skips_only_that_frame() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_batches(dir.path(), 3);
        let mut data = fs::read(&path).unwrap();
        // Inside the first frame's payload: header 8, frame header 8, then payload.
        data[HEADER + 8 + 20] ^= 0xff;
        fs::write(&path, &data).unwrap();
        let (got, report) = messages(dir.path());
        assert_eq!(got, ["line 1", "line 2"]);
        assert_eq!(report.damaged_frames, 1);
    }

    #[test]
    fn rotate_and_remove() {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::create(dir.path()).unwrap();
        let old = wal.rotate().unwrap();
        assert_eq!(list_files(dir.path()).unwrap(), [old, old + 1]);
        wal.remove_upto(old).unwrap();
        assert_eq!(list_files(dir.path()).unwrap(), [old + 1]);
    }
}
