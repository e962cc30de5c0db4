//! Merging a day's small segments into larger ones: the merged segment is written and
//! recorded in the catalog before its inputs are removed. The inputs are read in order and
//! merged as they are read (a k-way merge), so that a merge holds one block of each input
//! and one block of its output, not every row.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use logyard_model::Record;

use crate::{segment, Inner, Segment, StoreError};

/// Rows of an input block made into records at a time.
const MERGE_READ_ROWS: usize = 256;

/// Records of several `(timestamp, seq)`-ordered inputs, in that order.
struct KWayMerge<I> {
    inputs: Vec<I>,
    /// The next record of each input not yet given, by its key.
    heads: BinaryHeap<Reverse<(i64, u64, usize)>>,
    held: Vec<Option<Record>>,
    started: bool,
}

impl<I: Iterator<Item = Result<Record, StoreError>>> KWayMerge<I> {
    fn new(inputs: Vec<I>) -> KWayMerge<I> {
        let held = inputs.iter().map(|_| None).collect();
        KWayMerge {
            inputs,
            heads: BinaryHeap::new(),
            held,
            started: false,
        }
    }

    /// Takes the next record of input `i` as its head.
    fn pull(&mut self, i: usize) -> Result<(), StoreError> {
        if let Some(r) = self.inputs[i].next().transpose()? {
            self.heads.push(Reverse((r.timestamp, r.seq, i)));
            self.held[i] = Some(r);
        }
        Ok(())
    }
}

impl<I: Iterator<Item = Result<Record, StoreError>>> Iterator for KWayMerge<I> {
    type Item = Result<Record, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if !self.started {
            self.started = true;
            for i in 0..self.inputs.len() {
                if let Err(e) = self.pull(i) {
                    return Some(Err(e));
                }
            }
        }
        let Reverse((_, _, i)) = self.heads.pop()?;
        let record = self.held[i].take().expect("a head is held");
        match self.pull(i) {
            Ok(()) => Some(Ok(record)),
            Err(e) => Some(Err(e)),
        }
    }
}

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
        // The inputs are each in order: merged as they are read, a block of each at a time.
        let inputs = victims
            .iter()
            .map(|v| v.records_in_order(MERGE_READ_ROWS))
            .collect();
        let merged = KWayMerge::new(inputs);
        let meta = segment::write_sorted(&*self.segments, id, &day, merged, self.layout())?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ts: i64, seq: u64) -> Record {
        let mut r = Record::new(ts, format!("m{seq}"));
        r.seq = seq;
        r
    }

    proptest::proptest! {
        #[test]
        fn the_merge_of_ordered_inputs_is_their_ordered_union(
            inputs in proptest::collection::vec(
                proptest::collection::vec((0i64..50, 0u64..1000), 0..40),
                0..6,
            )
        ) {
            let inputs: Vec<Vec<Record>> = inputs
                .into_iter()
                .map(|mut keys| {
                    keys.sort_unstable();
                    keys.into_iter().map(|(t, s)| rec(t, s)).collect()
                })
                .collect();
            let mut want: Vec<(i64, u64)> = inputs
                .iter()
                .flatten()
                .map(|r| (r.timestamp, r.seq))
                .collect();
            want.sort_unstable();
            let merged = KWayMerge::new(
                inputs.into_iter().map(|v| v.into_iter().map(Ok)).collect(),
            );
            let got: Vec<(i64, u64)> = merged
                .map(|r| r.map(|r| (r.timestamp, r.seq)))
                .collect::<Result<_, _>>()
                .unwrap();
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn an_input_that_fails_fails_the_merge() {
        let good = vec![Ok(rec(1, 1)), Ok(rec(3, 3))].into_iter();
        let bad = vec![Ok(rec(2, 2)), Err(StoreError::Corrupt("cut".into()))].into_iter();
        let out: Vec<_> = KWayMerge::new(vec![good, bad]).collect();
        assert!(out.iter().any(|r| matches!(r, Err(StoreError::Corrupt(_)))));
    }
}
