//! The write-ahead log: accepted batches, framed and checksummed, in numbered files.
//!
//! A file `wal/<n>.wal` starts with the 8-byte magic `LYWAL\0\0\x01` and holds frames
//! `u32 payload length | u32 CRC32C of the payload | payload` (little-endian); the payload is
//! a batch as encoded by [`crate::codec`]. A new file is started at each memtable flush, and
//! files are removed once every record in them is in a durable segment. A file is written
//! under a temporary name with its header, made durable, then renamed: a `<n>.wal` always
//! has a whole header, and a failed start leaves nothing in the way of the next one.
//!
//! After a failed write or fsync the file is never written again: its torn tail is cut when
//! possible, and the next batch starts a fresh file (or is refused while none can be made).
//! So an acknowledged frame always lies behind intact frames only.
//!
//! Replay reads the files in order, frame by frame. A damaged frame (cut short, a flipped
//! length or checksum, a damaged payload) is passed over by searching the rest of its file
//! for the next intact frame; only the bytes after the last intact frame of a file are cut.
//! A file whose header is damaged is read the same way, from the first frame's offset.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use logyard_model::Record;

use crate::codec;
use crate::fileops;
use crate::KeyedCheckpoint;

const MAGIC: &[u8; 8] = b"LYWAL\0\0\x01";
const HEADER: usize = 8;
/// A frame's header: payload length and CRC-32C.
const FRAME_HEADER: usize = 8;
/// The largest payload replay accepts; a bigger length field means a damaged frame.
const MAX_FRAME: usize = 1 << 30;
/// The smallest payload: a version byte, the first sequence number and a count.
const MIN_PAYLOAD: usize = 13;

/// What replay found, beside the records.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    /// Files read.
    pub files: usize,
    /// Frames read intact.
    pub frames: usize,
    /// Damaged stretches passed over or cut (each counts once, however many frames it held).
    pub damaged_frames: usize,
    /// Files whose header was damaged (their frames were read all the same).
    pub damaged_headers: usize,
    /// Bytes removed from file tails.
    pub truncated_bytes: u64,
}

/// The file being written.
#[derive(Debug)]
struct Current {
    number: u64,
    file: File,
    path: PathBuf,
    /// Bytes in the file, header included.
    bytes: u64,
}

/// The open write-ahead log.
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    /// `None` after a failed write, until a new file could be started.
    current: Option<Current>,
    /// The number of the newest file started.
    number: u64,
}

/// The name of WAL file number `n`.
pub(crate) fn file_name(n: u64) -> String {
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

/// Removes the temporary files of WAL files whose start did not finish: they were never
/// renamed into place, so no frame was ever written to them.
fn remove_unstarted(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.ends_with(".wal.tmp") {
            tracing::info!(file = %path.display(), "removing a WAL file whose start did not finish");
            fileops::remove_file(&path)?;
        }
    }
    Ok(())
}

/// Reads every WAL file in `dir` in order, repairing damaged tails (damaged bytes cut off a
/// file are kept in `quarantine`), and calls `on_batch` with each intact batch.
pub fn replay(
    dir: &Path,
    quarantine: &Path,
    mut on_batch: impl FnMut(Vec<Record>, Option<KeyedCheckpoint>),
) -> io::Result<ReplayReport> {
    let mut report = ReplayReport::default();
    remove_unstarted(dir)?;
    // Sequence numbers only grow along the log: an "intact" frame found while searching past
    // damage that goes back is bytes of some payload, not a frame.
    let mut next_seq = 0u64;
    for n in list_files(dir)? {
        let path = dir.join(file_name(n));
        let data = fs::read(&path)?;
        report.files += 1;
        if data.len() < HEADER + FRAME_HEADER + MIN_PAYLOAD && data.get(..HEADER) != Some(MAGIC) {
            // Too short to hold a frame, and not even a whole header: nothing to recover.
            tracing::warn!(file = %path.display(), bytes = data.len(), "WAL file too short to hold a frame, removed");
            report.damaged_headers += 1;
            report.truncated_bytes += data.len() as u64;
            fileops::remove_file(&path)?;
            continue;
        }
        if &data[..HEADER] != MAGIC {
            tracing::warn!(file = %path.display(), "WAL file header damaged; its frames are read one by one");
        }
        let good_end = scan(&data, &mut next_seq, &mut report, &mut on_batch);
        if good_end < data.len() {
            let cut = data.len() - good_end;
            let rest = &data[good_end..];
            if is_torn(rest) {
                tracing::warn!(file = %path.display(), offset = good_end, bytes = cut, "torn WAL tail (a write cut by a crash) cut at the last good frame");
            } else {
                // Damage, not a torn write: the bytes are kept aside before the cut.
                fs::create_dir_all(quarantine)?;
                let aside = quarantine.join(format!("wal-{n:016}-at-{good_end}.bin"));
                fileops::write_atomic(&aside, rest)?;
                tracing::warn!(file = %path.display(), offset = good_end, bytes = cut, kept_in = %aside.display(), "damaged WAL tail without an intact frame cut at the last good frame");
            }
            report.truncated_bytes += cut as u64;
            let f = fileops::open_write(&path)?;
            fileops::set_len(&f, &path, good_end as u64)?;
            fileops::sync_all(&f, &path)?;
        }
    }
    Ok(report)
}

/// Returns whether the bytes after the last intact frame are one frame cut short by a crash:
/// fewer than a frame header, or a header whose payload runs past the end of the file.
fn is_torn(rest: &[u8]) -> bool {
    match rest.get(..4) {
        Some(len) if rest.len() >= FRAME_HEADER => {
            let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
            len <= MAX_FRAME && FRAME_HEADER + len > rest.len()
        }
        _ => true,
    }
}

/// Reads the frames of one WAL file's bytes in order, calling `on_batch` with each intact
/// batch whose sequence numbers start at `next_seq` or later (advancing it), and returns the
/// offset after the last intact frame. A damaged header is counted and read past; damaged
/// bytes between frames are passed over by searching for the next intact frame.
pub fn scan(
    data: &[u8],
    next_seq: &mut u64,
    report: &mut ReplayReport,
    on_batch: &mut impl FnMut(Vec<Record>, Option<KeyedCheckpoint>),
) -> usize {
    if data.get(..HEADER) != Some(MAGIC) {
        report.damaged_headers += 1;
    }
    let mut pos = HEADER;
    let mut good_end = HEADER.min(data.len());
    while pos < data.len() {
        let found = match frame_at(data, pos, *next_seq) {
            Some(frame) => Some(frame),
            None => {
                report.damaged_frames += 1;
                let next = search_frame(data, pos + 1, *next_seq);
                if let Some((at, _)) = &next {
                    tracing::warn!(
                        offset = pos,
                        bytes = at - pos,
                        "damaged WAL bytes passed over; the next intact frame is read"
                    );
                }
                next.map(|(_, frame)| frame)
            }
        };
        let Some(Frame {
            records,
            checkpoint,
            end,
        }) = found
        else {
            break;
        };
        if let Some(last) = records.last() {
            *next_seq = (*next_seq).max(last.seq + 1);
        }
        report.frames += 1;
        on_batch(records, checkpoint);
        pos = end;
        good_end = end;
    }
    good_end
}

/// An intact frame: its batch and the offset after it.
struct Frame {
    records: Vec<Record>,
    checkpoint: Option<KeyedCheckpoint>,
    end: usize,
}

/// Returns the intact frame at `pos`, if there is one whose batch starts at `min_seq` or
/// later and decodes.
fn frame_at(data: &[u8], pos: usize, min_seq: u64) -> Option<Frame> {
    let head = data.get(pos..pos + FRAME_HEADER)?;
    let len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes")) as usize;
    if !(MIN_PAYLOAD..=MAX_FRAME).contains(&len) {
        return None;
    }
    let payload = data.get(pos + FRAME_HEADER..pos + FRAME_HEADER + len)?;
    // Cheap checks first: a search tries every offset.
    if !codec::is_version(payload[0]) {
        return None;
    }
    let first_seq = u64::from_le_bytes(payload[1..9].try_into().expect("8 bytes"));
    if first_seq < min_seq {
        return None;
    }
    let crc = u32::from_le_bytes(head[4..].try_into().expect("4 bytes"));
    if crc32c::crc32c(payload) != crc {
        return None;
    }
    let (records, checkpoint) = codec::decode_frame(payload).ok()?;
    Some(Frame {
        records,
        checkpoint,
        end: pos + FRAME_HEADER + len,
    })
}

/// Finds the first intact frame at `from` or after.
fn search_frame(data: &[u8], from: usize, min_seq: u64) -> Option<(usize, Frame)> {
    (from..data.len().saturating_sub(FRAME_HEADER + MIN_PAYLOAD - 1))
        .find_map(|at| frame_at(data, at, min_seq).map(|f| (at, f)))
}

impl Wal {
    /// Opens a new WAL file numbered after every existing one in `dir`.
    pub fn create(dir: &Path) -> io::Result<Wal> {
        fs::create_dir_all(dir)?;
        let mut wal = Wal {
            dir: dir.to_path_buf(),
            current: None,
            number: 0,
        };
        wal.start_file()?;
        Ok(wal)
    }

    /// Starts the next file: written under a temporary name with its header, made durable,
    /// then renamed into place.
    fn start_file(&mut self) -> io::Result<()> {
        let number = list_files(&self.dir)?
            .last()
            .copied()
            .unwrap_or(0)
            .max(self.number)
            + 1;
        let path = self.dir.join(file_name(number));
        let tmp = fileops::tmp_path(&path);
        let started = (|| {
            let mut file = fileops::create(&tmp)?;
            fileops::write_all(&mut file, &tmp, MAGIC)?;
            fileops::sync_all(&file, &tmp)?;
            fileops::rename(&tmp, &path)?;
            Ok(file)
        })();
        let file = match started {
            Ok(file) => file,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        // The file is in place from here on, whatever happens: its number is taken.
        self.number = number;
        fileops::sync_dir(&self.dir)?;
        self.current = Some(Current {
            number,
            file,
            path,
            bytes: HEADER as u64,
        });
        Ok(())
    }

    /// Returns every WAL file with how many of its bytes hold frames written so far: the one
    /// being written up to the end of its last frame (`Some(len)`), the others whole
    /// (`None`). A backup copies exactly these.
    pub fn written_parts(&self) -> io::Result<Vec<(u64, Option<u64>)>> {
        let current = self.current.as_ref().map(|c| (c.number, c.bytes));
        Ok(list_files(&self.dir)?
            .into_iter()
            .map(|n| match current {
                Some((c, bytes)) if c == n => (n, Some(bytes)),
                _ => (n, None),
            })
            .collect())
    }

    /// Returns the number of the newest file started.
    #[cfg(test)]
    pub fn number(&self) -> u64 {
        self.number
    }

    /// Starts a frame in `frame`: room for its header, then the payload is appended to it
    /// (written by [`Wal::append_frame`]).
    pub fn begin_frame(frame: &mut Vec<u8>) {
        frame.clear();
        frame.extend_from_slice(&[0; FRAME_HEADER]);
    }

    /// Appends a frame begun by [`Wal::begin_frame`], filling in its header (payload length
    /// and CRC-32C), starting a new file first when the last write failed; call
    /// [`Wal::sync`] to make it durable. Returns the bytes written.
    pub fn append_frame(&mut self, frame: &mut [u8]) -> io::Result<u64> {
        let (header, payload) = frame.split_at_mut(FRAME_HEADER);
        header[..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        header[4..].copy_from_slice(&crc32c::crc32c(payload).to_le_bytes());
        if self.current.is_none() {
            self.start_file()?;
        }
        let current = self.current.as_mut().expect("started above");
        fileops::write_all(&mut current.file, &current.path, frame)?;
        current.bytes += frame.len() as u64;
        Ok(frame.len() as u64)
    }

    /// Returns how far the current file is written (just its header when the next frame
    /// starts a new file): where a group of frames starts, for [`Wal::abandon`].
    pub fn position(&self) -> u64 {
        self.current.as_ref().map_or(HEADER as u64, |c| c.bytes)
    }

    /// Makes every appended frame durable (with no file open, none was appended since the
    /// last one was given up).
    pub fn sync(&mut self) -> io::Result<()> {
        match &self.current {
            Some(c) => fileops::sync_data(&c.file, &c.path),
            None => Ok(()),
        }
    }

    /// Gives up the current file after a failed write or fsync: cuts it back to `good_len`
    /// (the position before the failed group) when that works, and never writes to it again.
    /// The next [`Wal::append_frame`] starts a new file.
    pub fn abandon(&mut self, good_len: u64) {
        let Some(current) = self.current.take() else {
            return;
        };
        if good_len < current.bytes {
            let len = good_len;
            let cut = fileops::set_len(&current.file, &current.path, len)
                .and_then(|()| fileops::sync_all(&current.file, &current.path));
            if let Err(e) = cut {
                tracing::warn!(file = %current.path.display(), error = %e, "cannot cut the failed frames off a WAL file; replay will pass over them");
            }
        }
    }

    /// Starts a new file and returns the number of the one closed, whose frames are all
    /// durable. When the new file cannot be started, the current one stays open.
    pub fn rotate(&mut self) -> io::Result<u64> {
        if let Some(c) = &self.current {
            if let Err(e) = fileops::sync_all(&c.file, &c.path) {
                self.abandon(u64::MAX);
                return Err(e);
            }
        }
        let old = self.number;
        let kept = self.current.take();
        if let Err(e) = self.start_file() {
            self.current = kept;
            return Err(e);
        }
        Ok(old)
    }

    /// Removes every file numbered `upto` or lower, except the one being written.
    pub fn remove_upto(&self, upto: u64) -> io::Result<()> {
        let writing = self.current.as_ref().map(|c| c.number);
        for n in list_files(&self.dir)? {
            if n <= upto && Some(n) != writing {
                fileops::remove_file(&self.dir.join(file_name(n)))?;
            }
        }
        fileops::sync_dir(&self.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;

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
        let quarantine = dir.join("quarantine");
        let report = replay(dir, &quarantine, |b, _| {
            got.extend(b.into_iter().map(|r| r.message))
        })
        .unwrap();
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

    /// Offsets of each frame's start in a file written by `write_batches`.
    fn frame_starts(data: &[u8]) -> Vec<usize> {
        let mut starts = Vec::new();
        let mut pos = HEADER;
        while pos < data.len() {
            starts.push(pos);
            let len = u32::from_le_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
            pos += FRAME_HEADER + len;
        }
        starts
    }

    #[test]
    fn a_damaged_header_keeps_the_frames() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_batches(dir.path(), 3);
        for byte in 0..HEADER {
            let mut data = fs::read(&path).unwrap();
            data[byte] ^= 0x5a;
            fs::write(&path, &data).unwrap();
            let (got, report) = messages(dir.path());
            assert_eq!(got, ["line 0", "line 1", "line 2"], "header byte {byte}");
            assert_eq!(report.damaged_headers, 1);
            data[byte] ^= 0x5a;
            fs::write(&path, &data).unwrap();
        }
    }

    #[test]
    fn a_flipped_length_loses_only_its_frame() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_batches(dir.path(), 4);
        let clean = fs::read(&path).unwrap();
        let starts = frame_starts(&clean);
        for (i, &start) in starts.iter().enumerate() {
            for bit in [0x01u8, 0x40, 0x80] {
                for byte in 0..4 {
                    let mut data = clean.clone();
                    data[start + byte] ^= bit;
                    fs::write(&path, &data).unwrap();
                    let (got, _) = messages(dir.path());
                    let want: Vec<String> = (0..4)
                        .filter(|&j| j != i)
                        .map(|j| format!("line {j}"))
                        .collect();
                    assert_eq!(got, want, "frame {i}, length byte {byte}, bit {bit:#x}");
                    fs::write(&path, &clean).unwrap();
                }
            }
        }
    }

    #[test]
    fn a_file_too_short_for_a_frame_is_removed_and_a_start_left_unfinished_too() {
        let dir = tempfile::tempdir().unwrap();
        write_batches(dir.path(), 2);
        fs::write(dir.path().join(file_name(7)), b"LYW").unwrap();
        fs::write(
            fileops::tmp_path(&dir.path().join(file_name(8))),
            b"LYWAL\0\0\x01",
        )
        .unwrap();
        let (got, report) = messages(dir.path());
        assert_eq!(got, ["line 0", "line 1"]);
        assert_eq!(report.damaged_headers, 1);
        assert_eq!(list_files(dir.path()).unwrap(), [1]);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    fn append(wal: &mut Wal, seq: u64, message: &str) -> io::Result<u64> {
        let mut frame = Vec::new();
        Wal::begin_frame(&mut frame);
        let mut rec = Record::new(seq as i64, message);
        rec.seq = seq;
        codec::encode_batch(seq, &[rec], &mut frame);
        wal.append_frame(&mut frame)
    }

    #[test]
    fn after_a_failed_write_a_new_file_follows_the_good_frames() {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::create(dir.path()).unwrap();
        append(&mut wal, 1, "kept").unwrap();
        wal.sync().unwrap();
        let before = wal.position();
        // A torn group: the first frame lands, the second fails (ENOSPC).
        append(&mut wal, 2, "torn").unwrap();
        let full = |op| {
            fileops::inject(fileops::Fault {
                op,
                under: dir.path().to_path_buf(),
                errno: libc::ENOSPC,
                skip: 0,
                times: 1,
            })
        };
        {
            let _full = full(fileops::Op::Write);
            assert!(append(&mut wal, 3, "refused").is_err());
        }
        wal.abandon(before);
        {
            // While the disk is full no new file can start: writes are refused.
            let _full = full(fileops::Op::Create);
            assert!(append(&mut wal, 3, "refused").is_err());
        }
        {
            let _full = full(fileops::Op::Rename);
            assert!(append(&mut wal, 3, "refused").is_err());
        }
        // Space again: the next frame starts a fresh file, which nothing stands in the way of.
        append(&mut wal, 3, "after").unwrap();
        wal.sync().unwrap();
        drop(wal);
        let (got, report) = messages(dir.path());
        assert_eq!(got, ["kept", "after"]);
        assert_eq!(report.damaged_frames, 0);
        assert!(fs::read_dir(dir.path())
            .unwrap()
            .all(|e| e.unwrap().path().extension().unwrap() == "wal"));
    }

    #[test]
    fn a_failed_rotation_keeps_writing_the_current_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::create(dir.path()).unwrap();
        append(&mut wal, 1, "one").unwrap();
        for op in [fileops::Op::Create, fileops::Op::Write, fileops::Op::Rename] {
            let _fault = fileops::inject(fileops::Fault {
                op,
                under: dir.path().to_path_buf(),
                errno: libc::EIO,
                skip: 0,
                times: 1,
            });
            assert!(wal.rotate().is_err(), "{op:?}");
        }
        append(&mut wal, 2, "two").unwrap();
        let old = wal.rotate().unwrap();
        append(&mut wal, 3, "three").unwrap();
        wal.sync().unwrap();
        assert_eq!(list_files(dir.path()).unwrap(), [old, old + 1]);
        drop(wal);
        let (got, _) = messages(dir.path());
        assert_eq!(got, ["one", "two", "three"]);
    }

    proptest::proptest! {
        /// Whatever bytes are damaged, every frame left untouched is recovered, in order.
        #[test]
        fn every_untouched_frame_is_recovered(
            frames in 2usize..12,
            damage in proptest::collection::vec((0usize..12, 0usize..200, 1u8..=255), 1..4),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = write_batches(dir.path(), frames);
            let mut data = fs::read(&path).unwrap();
            let starts = frame_starts(&data);
            let mut touched = std::collections::BTreeSet::new();
            for (frame, offset, flip) in damage {
                let frame = frame % frames;
                let end = starts.get(frame + 1).copied().unwrap_or(data.len());
                let at = starts[frame] + offset % (end - starts[frame]);
                data[at] ^= flip;
                touched.insert(frame);
            }
            fs::write(&path, &data).unwrap();
            let (got, _) = messages(dir.path());
            let want: Vec<String> = (0..frames)
                .filter(|i| !touched.contains(i))
                .map(|i| format!("line {i}"))
                .collect();
            proptest::prop_assert_eq!(got, want);
        }
    }
}
