//! Cache counters, named in one place; `stats` and the tests read them.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct CacheMetrics {
    /// Reads served from the cache.
    pub hits: AtomicU64,
    /// Reads that fetched from the source.
    pub misses: AtomicU64,
    /// Reads that waited for another reader's fetch of the same chunk.
    pub coalesced: AtomicU64,
    /// Chunks too large for the whole budget, served but not kept.
    pub uncached: AtomicU64,
    pub evictions: AtomicU64,
    /// Reads of chunks that are one source byte range, served straight from the source.
    pub direct: AtomicU64,
}

impl CacheMetrics {
    pub(super) fn hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }

    pub fn direct(&self) {
        self.direct.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn coalesced(&self) {
        self.coalesced.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn inserted(&self, cached: bool, evicted: u64) {
        if !cached {
            self.uncached.fetch_add(1, Ordering::Relaxed);
        }
        self.evictions.fetch_add(evicted, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
