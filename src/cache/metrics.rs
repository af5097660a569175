//! Cache counters, named in one place; `stats` and the tests read them.

use std::sync::atomic::{AtomicU64, Ordering};

use super::lru::Evicted;

#[derive(Debug, Default)]
pub struct CacheMetrics {
    /// Reads served from the cache.
    pub hits: AtomicU64,
    /// Reads that fetched from the source.
    pub misses: AtomicU64,
    /// Reads that waited for another fetch of the same chunk.
    pub coalesced: AtomicU64,
    /// Chunks too large for the whole budget, served but not kept.
    pub uncached: AtomicU64,
    pub evictions: AtomicU64,
    /// Reads of chunks that are one source byte range, served straight from the source.
    pub direct: AtomicU64,
    /// Chunks fetched ahead of readers.
    pub prefetch_issued: AtomicU64,
    /// Prefetched chunks a reader then asked for (counted once per chunk).
    pub prefetch_used: AtomicU64,
    /// Prefetched chunks evicted before any reader asked for them.
    pub prefetch_wasted: AtomicU64,
}

impl CacheMetrics {
    pub(super) fn hit(&self, prefetched: bool) {
        self.hits.fetch_add(1, Ordering::Relaxed);
        if prefetched {
            self.prefetch_used.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(super) fn miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }

    pub fn direct(&self) {
        self.direct.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn coalesced(&self, prefetched: bool) {
        self.coalesced.fetch_add(1, Ordering::Relaxed);
        if prefetched {
            self.prefetch_used.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(super) fn evicted(&self, evicted: &Evicted) {
        let evictions = evicted.chunks.len() as u64;
        self.evictions.fetch_add(evictions, Ordering::Relaxed);
        self.prefetch_wasted.fetch_add(evicted.wasted, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
