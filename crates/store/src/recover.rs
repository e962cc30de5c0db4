//! Opening the segments at start: the catalog's, and the files it does not list.
//!
//! The store deletes only what it can prove redundant. A segment file that the catalog does
//! not list is read: when every one of its rows (by sequence number) is in other segments
//! (a merge or flush that did not finish, or whose old files could not be removed) it is
//! removed; when none is, it is kept and added to the catalog (its rows would be lost
//! otherwise); a file that overlaps others in part, or cannot be read, goes to
//! `quarantine/`. Without a catalog, or with an unreadable one (moved aside first), every
//! segment file is such a file: the catalog is rebuilt from them, newest first, so that a
//! merged segment is kept and the segments it replaced are recognised as redundant. A missing
//! or damaged index beside an intact data file is rebuilt from it ([`Segment::open`]).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cache::ColumnCache;
use crate::catalog::{Catalog, Loaded};
use crate::dir::{FileKey, FileKind, SegmentDir};
use crate::error::StoreError;
use crate::fileops;
use crate::segment::{self, Segment};

/// A set of sequence numbers, kept as sorted, disjoint, inclusive ranges.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SeqSet {
    ranges: Vec<(u64, u64)>,
}

impl SeqSet {
    /// Adds sequence numbers given in ascending order.
    pub fn add_sorted(&mut self, seqs: &[u64]) {
        let mut added: Vec<(u64, u64)> = Vec::new();
        for &s in seqs {
            match added.last_mut() {
                Some((_, hi)) if s <= *hi + 1 => *hi = (*hi).max(s),
                _ => added.push((s, s)),
            }
        }
        self.ranges.extend(added);
        self.ranges.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(self.ranges.len());
        for &(lo, hi) in &self.ranges {
            match merged.last_mut() {
                Some((_, end)) if lo <= end.saturating_add(1) => *end = (*end).max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        self.ranges = merged;
    }

    /// Returns whether `seq` is in the set.
    pub fn contains(&self, seq: u64) -> bool {
        let i = self.ranges.partition_point(|&(lo, _)| lo <= seq);
        i > 0 && self.ranges[i - 1].1 >= seq
    }
}

/// The segments found at start.
pub(crate) struct Opened {
    /// The catalog, with what was adopted, quarantined or rebuilt.
    pub catalog: Catalog,
    /// The open segments, one per catalog entry.
    pub segments: Vec<Arc<Segment>>,
    /// The rows of segment files adopted at this start: their copies in the WAL are not
    /// replayed.
    pub adopted: SeqSet,
    /// The catalog differs from the file: it must be saved once the WAL's rows are in
    /// segments (saving it before would make the WAL replay rows the adopted files hold).
    pub changed: bool,
    /// Segments moved to quarantine.
    pub quarantined: u64,
}

/// A segment data file the catalog does not list.
struct Found {
    day: String,
    id: u64,
}

/// Loads the catalog, opens its segments, and settles the segment files it does not list.
pub(crate) fn open_segments(
    parts: &dyn SegmentDir,
    quarantine: &Path,
    catalog_path: &Path,
    cache: &Option<Arc<ColumnCache>>,
) -> Result<Opened, StoreError> {
    let (mut catalog, rebuilding) = match Catalog::load(catalog_path)? {
        Loaded::Found(catalog) => (catalog, None),
        Loaded::Missing => (Catalog::empty(), Some("missing".to_string())),
        Loaded::Damaged(why) => {
            let aside = aside_path(catalog_path);
            fileops::rename(catalog_path, &aside)?;
            tracing::error!(catalog = %catalog_path.display(), moved_to = %aside.display(), problem = %why,
                "the catalog is damaged: it is moved aside and rebuilt from the segment files");
            (Catalog::empty(), Some(format!("damaged ({why})")))
        }
    };
    let here = parts.catalog_location();
    if catalog.segment_location != here {
        if !catalog.segments.is_empty() || !catalog.quarantined.is_empty() {
            let named = |l: &Option<String>| {
                l.clone()
                    .unwrap_or_else(|| "the data directory's parts/".into())
            };
            return Err(StoreError::Catalog {
                path: catalog_path.display().to_string(),
                message: format!(
                    "its segments are in {}, but the store was opened with them in {}: set [storage] as it was when they were written",
                    named(&catalog.segment_location),
                    named(&here)
                ),
            });
        }
        catalog.segment_location = here;
    }
    let mut opened = Opened {
        catalog: Catalog::empty(),
        segments: Vec::new(),
        adopted: SeqSet::default(),
        changed: rebuilding.is_some(),
        quarantined: 0,
    };
    for (meta, result) in Segment::open_all(parts, std::mem::take(&mut catalog.segments)) {
        match result {
            Ok(seg) => {
                opened
                    .segments
                    .push(Arc::new(seg.with_cache(cache.clone())));
                catalog.segments.push(meta);
            }
            Err(e) => {
                let e = damage_only(e)?;
                tracing::error!(segment = meta.id, error = %e, "damaged segment moved to quarantine");
                quarantine_files(parts, quarantine, &meta.day, meta.id)?;
                catalog.quarantined.push(meta);
                opened.quarantined += 1;
                opened.changed = true;
            }
        }
    }

    // A quarantined segment whose files were removed from `quarantine/` is forgotten.
    let before = catalog.quarantined.len();
    catalog.quarantined.retain(|m| {
        quarantine
            .join(format!("{}-seg-{:012}.parquet", m.day, m.id))
            .exists()
    });
    opened.changed |= catalog.quarantined.len() != before;
    let mut found = list_uncatalogued(parts, &catalog)?;
    if let Some(max) = found.iter().map(|f| f.id).max() {
        catalog.next_segment_id = catalog.next_segment_id.max(max + 1);
    }
    // Newest first: a merged segment comes before the ones it replaced.
    found.sort_by_key(|f| std::cmp::Reverse(f.id));
    let mut by_day: HashMap<String, SeqSet> = HashMap::new();
    let (mut kept, mut kept_rows, mut removed) = (0u64, 0u64, 0u64);
    for file in &found {
        if !by_day.contains_key(&file.day) {
            let mut set = SeqSet::default();
            for seg in opened.segments.iter().filter(|s| s.meta.day == file.day) {
                let mut seqs = seg.read_seqs()?;
                seqs.sort_unstable();
                set.add_sorted(&seqs);
            }
            by_day.insert(file.day.clone(), set);
        }
        let day_rows = by_day.get_mut(&file.day).expect("inserted above");
        let mut to_quarantine = |why: &str, error: Option<&StoreError>| {
            tracing::error!(day = file.day, segment = file.id, error = ?error.map(ToString::to_string),
                "a segment file the catalog does not list {why}: moved to quarantine");
            opened.quarantined += 1;
            quarantine_files(parts, quarantine, &file.day, file.id)
        };
        let inspected = match segment::inspect(parts, &file.day, file.id) {
            Ok(i) => i,
            Err(e) => {
                to_quarantine("cannot be read", Some(&damage_only(e)?))?;
                continue;
            }
        };
        let covered = inspected
            .seqs
            .iter()
            .filter(|&&s| day_rows.contains(s))
            .count();
        if covered == inspected.seqs.len() {
            tracing::info!(day = file.day, segment = file.id, rows = covered,
                "removing a segment file whose rows are all in other segments (an unfinished flush or merge)");
            for key in [inspected.meta.data_key(), inspected.meta.index_key()] {
                parts.delete(&key)?;
            }
            removed += 1;
            continue;
        }
        if covered > 0 {
            to_quarantine("shares some of its rows with other segments", None)?;
            continue;
        }
        match Segment::open(parts, inspected.meta.clone()) {
            Ok(seg) => {
                tracing::warn!(
                    day = file.day,
                    segment = file.id,
                    rows = inspected.meta.rows,
                    "a segment file the catalog does not list is kept and added to it"
                );
                kept_rows += inspected.meta.rows;
                day_rows.add_sorted(&inspected.seqs);
                opened.adopted.add_sorted(&inspected.seqs);
                opened
                    .segments
                    .push(Arc::new(seg.with_cache(cache.clone())));
                catalog.segments.push(inspected.meta);
                opened.changed = true;
                kept += 1;
            }
            Err(e) => to_quarantine("cannot be opened", Some(&damage_only(e)?))?,
        }
    }
    if let Some(why) = rebuilding {
        if !found.is_empty() {
            tracing::error!(catalog = %catalog_path.display(), state = why, segments = kept, rows = kept_rows,
                redundant_removed = removed, "the catalog was rebuilt from the segment files");
        }
    }
    catalog.segments.sort_by_key(|m| m.id);
    opened.segments.sort_by_key(|s| s.meta.id);
    opened.catalog = catalog;
    Ok(opened)
}

/// Fails on an error of the machine (too many open files, a permission): only damage
/// sends a segment to quarantine, never a reason that may pass.
fn damage_only(e: StoreError) -> Result<StoreError, StoreError> {
    match e {
        StoreError::Io(io) if io.kind() != std::io::ErrorKind::NotFound => Err(StoreError::Io(io)),
        other => Ok(other),
    }
}

/// Where a damaged catalog is moved: beside it, named with the time.
fn aside_path(path: &Path) -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".damaged-{stamp}"));
    path.with_file_name(name)
}

/// Lists the segment data files that the catalog does not list; removes what provably
/// holds nothing: index files without a data file, then (through [`SegmentDir::tidy`])
/// temporary files of writes that did not finish and empty day folders.
fn list_uncatalogued(parts: &dyn SegmentDir, catalog: &Catalog) -> Result<Vec<Found>, StoreError> {
    let known: BTreeMap<u64, &str> = catalog
        .segments
        .iter()
        .map(|m| (m.id, m.day.as_str()))
        .collect();
    let listed = parts.list()?;
    let has_data = |key: &FileKey| {
        listed
            .binary_search(&FileKey {
                kind: FileKind::Data,
                ..key.clone()
            })
            .is_ok()
    };
    let mut found = Vec::new();
    for key in &listed {
        let catalogued = known.get(&key.id) == Some(&key.day.as_str());
        match key.kind {
            FileKind::Data if !catalogued => found.push(Found {
                day: key.day.clone(),
                id: key.id,
            }),
            FileKind::Index if !catalogued && !has_data(key) => {
                tracing::info!(file = %key, location = parts.location(), "removing an index file without its data file");
                parts.delete(key)?;
            }
            _ => {}
        }
    }
    parts.tidy()?;
    Ok(found)
}

/// Moves a segment's two files (those present) to `quarantine/` on the local disk, named
/// after their day.
pub(crate) fn quarantine_files(
    parts: &dyn SegmentDir,
    quarantine: &Path,
    day: &str,
    id: u64,
) -> Result<(), StoreError> {
    std::fs::create_dir_all(quarantine)?;
    for key in [FileKey::data(day, id), FileKey::index(day, id)] {
        let to = quarantine.join(format!("{day}-{}", key.file_name()));
        match parts.move_out(&key, &to) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::SeqSet;

    #[test]
    fn a_seq_set_holds_what_was_added() {
        let mut set = SeqSet::default();
        set.add_sorted(&[1, 2, 3, 7, 9, 10]);
        set.add_sorted(&[4, 8, 20]);
        for s in [1, 2, 3, 4, 7, 8, 9, 10, 20] {
            assert!(set.contains(s), "{s}");
        }
        for s in [0, 5, 6, 11, 19, 21] {
            assert!(!set.contains(s), "{s}");
        }
        assert_eq!(set.ranges, [(1, 4), (7, 10), (20, 20)]);
    }
}
