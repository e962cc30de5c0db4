//! The cache of decoded text columns: the message, raw and fields columns of segment blocks,
//! as the last read decoded them, so that the next search over the same blocks does not
//! decompress them again.
//!
//! Segments never change once written, so an entry never goes stale: a merged or dropped
//! segment's entries are simply not asked for again and leave as newer ones come in. The
//! cache is bounded by the bytes of its arrays (`[store] cache_bytes`), and its eviction
//! (S3-FIFO, from `quick_cache`) keeps the blocks read again and again in front of the ones
//! that one broad scan reads once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow_array::{Array, ArrayRef};

use crate::schema::col;

/// Which decoded column of which block: segment ([`crate::Segment::uid`]), block index,
/// column's place in the segment's schema, and whether it was read in its other form (the
/// message as a dictionary, `fields` without the values of field columns).
type Key = ((u32, u64), u32, u8, bool);

/// Weighs an entry by the bytes its array holds.
#[derive(Clone, Copy)]
struct ArrayBytes;

impl quick_cache::Weighter<Key, ArrayRef> for ArrayBytes {
    fn weight(&self, _key: &Key, array: &ArrayRef) -> u64 {
        array.get_array_memory_size() as u64
    }
}

/// Decoded text columns of segment blocks, shared by every segment of a store.
pub struct ColumnCache {
    entries: quick_cache::sync::Cache<Key, ArrayRef, ArrayBytes>,
    capacity: u64,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl std::fmt::Debug for ColumnCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ColumnCache")
            .field("capacity", &self.capacity)
            .field("bytes", &self.entries.weight())
            .finish()
    }
}

/// What the cache holds and how often it answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Bytes of the arrays held now.
    pub bytes: u64,
    /// Most bytes it holds (`[store] cache_bytes`).
    pub capacity: u64,
    /// Columns answered from the cache since the start.
    pub hits: u64,
    /// Columns asked for and not held, read from their segment.
    pub misses: u64,
}

impl ColumnCache {
    /// Returns a cache holding at most `capacity` bytes of arrays, or `None` for 0 (no cache).
    pub fn new(capacity: u64) -> Option<Arc<ColumnCache>> {
        if capacity == 0 {
            return None;
        }
        // A block's message column is a few hundred KiB: the item estimate only sizes the
        // first allocation.
        let items = (capacity / (256 << 10)).clamp(16, 1 << 20) as usize;
        Some(Arc::new(ColumnCache {
            entries: quick_cache::sync::Cache::with_weighter(items, capacity, ArrayBytes),
            capacity,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }))
    }

    /// Returns whether a column (its place in the segment's schema) is one the cache keeps:
    /// the text columns and the field columns, whose decoding is most of what a search
    /// costs; every column of a segment read from a bucket (`remote`), where fetching it
    /// again costs a request.
    pub fn keeps(column: usize, remote: bool) -> bool {
        remote
            || matches!(column, col::MESSAGE | col::RAW | col::FIELDS)
            || column >= col::NAMES.len()
    }

    /// Returns a column of a block as a read decoded it, if held; `other_form` for the
    /// column read in its other form (the message as a dictionary, `fields` without the
    /// values of field columns).
    pub fn get(
        &self,
        segment: (u32, u64),
        block: usize,
        column: usize,
        other_form: bool,
    ) -> Option<ArrayRef> {
        let found = self.entries.get(&key(segment, block, column, other_form));
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Keeps a decoded column of a block.
    pub fn insert(
        &self,
        segment: (u32, u64),
        block: usize,
        column: usize,
        other_form: bool,
        array: ArrayRef,
    ) {
        self.entries
            .insert(key(segment, block, column, other_form), array);
    }

    /// Returns what the cache holds and how often it answered.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            bytes: self.entries.weight(),
            capacity: self.capacity,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }
}

fn key(segment: (u32, u64), block: usize, column: usize, other_form: bool) -> Key {
    (segment, block as u32, column as u8, other_form)
}
