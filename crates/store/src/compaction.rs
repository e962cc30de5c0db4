//! Merging a day's small segments into larger ones: the merged segment is written and
//! recorded in the catalog before its inputs are removed.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::{segment, Inner, Segment, StoreError};

impl Inner {
    /// Merges the small segments of the first day that has `merge_fanin` of them.
    pub(crate) fn merge_once(&self) -> Result<bool, StoreError> {
        if self.pinned() {
            return Ok(false);
        }
        let victims: Vec<Arc<Segment>> = {
            let view = self.view.read().expect("view lock");
            let mut by_day: BTreeMap<&str, Vec<&Arc<Segment>>> = BTreeMap::new();
            for s in &view.segments {
                if s.meta.rows < self.config.merge_small_rows {
                    by_day.entry(s.meta.day.as_str()).or_default().push(s);
                }
            }
            let found = by_day
                .into_values()
                .find(|v| v.len() >= self.config.merge_fanin.max(2));
            let Some(mut candidates) = found else {
                return Ok(false);
            };
            candidates.sort_by_key(|s| s.meta.id);
            let mut rows = 0;
            candidates
                .into_iter()
                .take_while(|s| {
                    rows += s.meta.rows;
                    rows <= self.config.merge_max_rows
                })
                .cloned()
                .collect()
        };
        if victims.len() < 2 {
            return Ok(false);
        }
        let mut records = Vec::new();
        for seg in &victims {
            records.extend(seg.read_all()?);
        }
        records.sort_unstable_by_key(|r| (r.timestamp, r.seq));
        let mut catalog = self.catalog.lock().expect("catalog lock");
        // Retention or quarantine may have removed a victim meanwhile.
        if !victims
            .iter()
            .all(|v| catalog.segments.iter().any(|m| m.id == v.meta.id))
        {
            return Ok(false);
        }
        let id = catalog.next_segment_id;
        catalog.next_segment_id += 1;
        let day = victims[0].meta.day.clone();
        let meta = segment::write(&*self.segments, id, &day, &records, self.layout())?;
        let mut next = catalog.clone();
        next.segments
            .retain(|m| !victims.iter().any(|v| v.meta.id == m.id));
        next.segments.push(meta.clone());
        let opened = Segment::open(&*self.segments, meta.clone())
            .and_then(|seg| next.save(&self.catalog_path).map(|()| seg));
        let merged = match opened {
            Ok(seg) => Arc::new(seg.with_cache(self.cache.clone())),
            Err(e) => {
                // Not in the catalog, and every row still in the segments it was to replace.
                self.remove_unlisted(std::iter::once(&meta));
                return Err(e);
            }
        };
        *catalog = next;
        {
            let mut view = self.view.write().expect("view lock");
            view.segments
                .retain(|s| !victims.iter().any(|v| v.meta.id == s.meta.id));
            view.segments.push(merged);
        }
        drop(catalog);
        let merged_count = victims.len();
        self.remove_replaced(victims);
        self.counters.merges.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(segments = merged_count, day, "merged small segments");
        Ok(true)
    }
}
