//! Compressed rotated files (`app.log.1.gz`), read once when `read_gz` is on: a file whose
//! first line is one already read to its end is skipped, one that is the compressed copy of
//! a file lost while logyard was stopped is read from the lost offset, any other is read
//! whole. Each is then remembered in the checkpoint (`gz_done`), with the last batch.
//!
//! Each batch of a compressed file is checkpointed with its decompressed offset
//! (`gz_partial`), so a stop in the middle goes on after the last delivered line.

use std::fs::File;
use std::io::Read as _;
use std::path::PathBuf;

use flate2::read::MultiGzDecoder;

use super::checkpoint::GzProgress;
use super::fingerprint::{FileId, Fingerprint};
use super::reader::LineReader;
use super::rotation::same_first_line;
use super::tailer::{Halt, Tailer};

/// Compressed files bigger than this once decompressed are cut there.
const MAX_GZ_BYTES: u64 = 4 << 30;

impl Tailer {
    /// Reads the compressed files found by the globs that were not read yet.
    pub(crate) fn read_gz_files(&mut self, paths: Vec<PathBuf>) -> Result<(), Halt> {
        for path in paths {
            let Ok(file) = File::open(&path) else {
                continue;
            };
            let Ok(meta) = file.metadata() else {
                continue;
            };
            let id = FileId::of(&meta);
            if self.gz_done.iter().any(|(d, _)| *d == id) {
                continue;
            }
            let mut content = Vec::new();
            let read = MultiGzDecoder::new(file)
                .take(MAX_GZ_BYTES)
                .read_to_end(&mut content);
            let fp = Fingerprint::of_bytes(&content);
            if let Err(err) = read {
                let text = format!("cannot decompress {}: {err}", path.display());
                tracing::warn!(source = %self.name, "{text}");
                self.status.input_error(text);
                self.gz_done.push((id, fp));
                self.save_checkpoint();
                continue;
            }
            let known = self.gz_done.iter().any(|(_, f)| same_first_line(*f, fp))
                || self.entries.values().any(|e| {
                    e.done.iter().any(|(_, f)| same_first_line(*f, fp))
                        || e.current
                            .iter()
                            .chain(&e.retired)
                            .any(|s| same_first_line(s.fp, fp))
                });
            let partial = self.gz_partial.filter(|p| p.id == id && p.fp == fp);
            let lost = self.lost.iter().position(|(f, _)| same_first_line(*f, fp));
            let start = match (partial, lost) {
                (Some(p), _) => Some(p.offset),
                (None, Some(i)) => Some(self.lost.remove(i).1),
                (None, None) if known || fp.len == 0 => None,
                (None, None) => Some(0),
            };
            if let Some(start) = start {
                tracing::info!(source = %self.name, path = %path.display(), start, "reading a compressed file");
                self.read_gz_content(&path, &content, start, id, fp)?;
            } else {
                self.gz_done.push((id, fp));
                self.save_checkpoint();
            }
        }
        Ok(())
    }

    fn read_gz_content(
        &mut self,
        path: &std::path::Path,
        content: &[u8],
        start: u64,
        id: FileId,
        fp: Fingerprint,
    ) -> Result<(), Halt> {
        let mut at = (start as usize).min(content.len());
        let mut reader = LineReader::new(
            at as u64,
            self.settings.max_line_bytes,
            self.settings.partial_timeout,
            self.settings.multiline.clone(),
        );
        let limit = self.settings.batch_lines.max(1);
        loop {
            let mut lines = Vec::new();
            let now = logyard_model::now_ns();
            at += reader.feed_some(&content[at..], now, &mut lines, limit);
            let end = at >= content.len();
            if end {
                reader.flush_all(now, &mut lines);
            }
            let records = self.parse_lines(path, &lines);
            let bytes = lines.iter().map(|l| l.len() as u64 + 1).sum();
            let before = self.gz_partial;
            if end {
                self.gz_partial = None;
                self.gz_done.push((id, fp));
            } else {
                self.gz_partial = Some(GzProgress {
                    id,
                    fp,
                    offset: reader.done,
                });
            }
            let cp = self.checkpoint();
            if let Err(h) = self.deliver_plain(records, bytes, cp) {
                self.gz_partial = before;
                self.gz_done.retain(|(d, _)| *d != id);
                return Err(h);
            }
            if end {
                break;
            }
        }
        Ok(())
    }
}
