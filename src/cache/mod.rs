//! The chunk cache: decoded chunk files in a byte-budgeted LRU (`lru`), with at most one
//! fetch in flight per chunk (`inflight`): readers asking for a chunk that is being fetched
//! wait for that fetch and share its result instead of reading the source again. Counters for
//! tests and `stats` are in [`metrics`].
//!
//! Errors are shared with the waiters of the failed fetch but never cached: the next read
//! tries again, so a transient failure costs one read, not the chunk for good.

mod inflight;
mod lru;
pub mod metrics;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::source::ChunkError;
use crate::tree::ArrayId;
use inflight::Flight;
use lru::ByteLru;
pub use metrics::CacheMetrics;

/// Identifies one chunk of one array of one mounted dataset.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChunkKey {
    pub dataset: u64,
    pub array: ArrayId,
    pub coords: Box<[u64]>,
}

/// What readers get: the chunk file's bytes, or the shared error of the fetch that failed.
pub type ChunkResult = Result<Arc<[u8]>, Arc<ChunkError>>;

pub struct ChunkCache {
    budget: u64,
    lru: Mutex<ByteLru>,
    inflight: Mutex<HashMap<ChunkKey, Arc<Flight>>>,
    metrics: CacheMetrics,
}

impl ChunkCache {
    /// A cache holding at most `budget` bytes of chunk data.
    pub fn new(budget: u64) -> Self {
        ChunkCache {
            budget,
            lru: Mutex::new(ByteLru::new(budget)),
            inflight: Mutex::new(HashMap::new()),
            metrics: CacheMetrics::default(),
        }
    }

    pub fn metrics(&self) -> &CacheMetrics {
        &self.metrics
    }

    /// The chunk at `key` if the cache holds it (counted as a hit).
    pub fn cached(&self, key: &ChunkKey) -> Option<Arc<[u8]>> {
        let bytes = self.lru.lock().get(key)?;
        self.metrics.hit();
        Some(bytes)
    }

    /// The chunk at `key`: from the cache, from a fetch already in flight, or by running
    /// `fetch` on this thread (and caching what it returns).
    pub fn get_or_fetch(
        &self,
        key: &ChunkKey,
        fetch: impl FnOnce() -> Result<Vec<u8>, ChunkError>,
    ) -> ChunkResult {
        if let Some(bytes) = self.cached(key) {
            return Ok(bytes);
        }
        let (flight, leader) = {
            let mut inflight = self.inflight.lock();
            // A fetch may have finished between the two locks.
            if let Some(bytes) = self.lru.lock().get(key) {
                self.metrics.hit();
                return Ok(bytes);
            }
            match inflight.get(key) {
                Some(flight) => (flight.clone(), false),
                None => {
                    let flight = Arc::new(Flight::default());
                    inflight.insert(key.clone(), flight.clone());
                    (flight, true)
                }
            }
        };
        if !leader {
            self.metrics.coalesced();
            return flight.wait();
        }
        self.metrics.miss();
        // Resolves the flight even if `fetch` panics, so no waiter hangs on it.
        let guard = LeaderGuard {
            cache: self,
            key,
            flight: &flight,
        };
        let result: ChunkResult = fetch().map(Arc::from).map_err(Arc::new);
        if let Ok(bytes) = &result {
            let (cached, evicted) = self.lru.lock().insert(key.clone(), bytes.clone());
            self.metrics.inserted(cached, evicted);
        }
        guard.finish(result.clone());
        result
    }

    /// The most bytes of chunk data it holds.
    pub fn budget(&self) -> u64 {
        self.budget
    }

    /// Bytes of chunk data held now.
    pub fn used(&self) -> u64 {
        self.lru.lock().used()
    }
}

struct LeaderGuard<'a> {
    cache: &'a ChunkCache,
    key: &'a ChunkKey,
    flight: &'a Flight,
}

impl LeaderGuard<'_> {
    fn finish(self, result: ChunkResult) {
        self.flight.complete(result);
        // Drop runs next and removes the entry.
    }
}

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        self.cache.inflight.lock().remove(self.key);
        self.flight.abandon();
    }
}

#[cfg(test)]
mod tests;
