//! The chunk cache: decoded chunk files in a byte-budgeted LRU (`lru`), with at most one
//! fetch in flight per chunk (`inflight`): readers asking for a chunk that is being fetched
//! are called back with that fetch's result instead of reading the source again. Counters for
//! tests and `stats` are in [`metrics`].
//!
//! One memory bound covers the cached chunks and the fetches in flight, the prefetcher's
//! included: every fetch reserves its chunk's bytes before it starts, evicting as needed, and
//! prefetches that do not fit, or would take the unread prefetched bytes past their own cap,
//! are not started. Only reader-driven fetches can take it past the budget, and only when the
//! fetches in flight alone exceed it (a budget smaller than a few chunks).
//!
//! Errors are shared with the waiters of the failed fetch but never cached: the next read
//! tries again, so a transient failure costs one read, not the chunk for good.

mod inflight;
mod lru;
pub mod metrics;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use parking_lot::Mutex;

use crate::io::Buffer;
use crate::source::ChunkError;
use crate::tree::ArrayId;
use inflight::Flight;
use lru::{ByteLru, Evicted, Keep};
pub use metrics::CacheMetrics;

/// Identifies one chunk of one array of one mounted dataset.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChunkKey {
    pub dataset: u64,
    pub array: ArrayId,
    pub coords: Box<[u64]>,
}

/// What readers get: the chunk file's bytes, or the shared error of the fetch that failed.
pub type ChunkResult = Result<Arc<Buffer>, Arc<ChunkError>>;

/// Called with a chunk once it is there.
pub type Waiter = Box<dyn FnOnce(ChunkResult) + Send>;

pub struct ChunkCache {
    budget: u64,
    prefetch_cap: u64,
    state: Mutex<State>,
    metrics: CacheMetrics,
}

struct State {
    lru: ByteLru,
    inflight: HashMap<ChunkKey, Arc<Flight>>,
    /// Bytes the fetches in flight will add.
    reserved: u64,
    /// The part of `reserved` that prefetches will add.
    reserved_prefetch: u64,
}

impl State {
    /// Reserves `bytes` for a fetch, evicting until the cache and the fetches in flight fit the
    /// budget. Returns false, reserving nothing, if they cannot and `must` is false.
    fn reserve(&mut self, bytes: u64, budget: u64, must: bool, evicted: &mut Evicted) -> bool {
        let room = budget.saturating_sub(self.reserved + bytes);
        if !must && self.reserved + bytes > budget {
            return false;
        }
        self.lru.shrink_to(room, evicted);
        self.reserved += bytes;
        true
    }
}

/// The right, and the duty, to fetch one chunk: [`Ticket::finish`] hands the result to every
/// waiter; a ticket dropped unfinished (a panic, an engine gone) fails them instead.
pub struct Ticket {
    cache: Arc<ChunkCache>,
    key: ChunkKey,
    flight: Arc<Flight>,
    bytes: u64,
    done: bool,
}

impl Ticket {
    /// Drop the chunk from the cache once it has been served whole: it is a copy of bytes the
    /// page cache holds anyway (a prefetched source byte range).
    pub fn read_once(&self) {
        self.flight.read_once.store(true, Ordering::Relaxed);
    }

    pub fn finish(mut self, result: Result<Buffer, ChunkError>) {
        self.done = true;
        self.cache.settle(
            &self.key,
            &self.flight,
            self.bytes,
            result.map(Arc::new).map_err(Arc::new),
        );
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.done {
            let error = ChunkError::Decode("the fetch of this chunk was abandoned".into());
            self.cache
                .settle(&self.key, &self.flight, self.bytes, Err(Arc::new(error)));
        }
    }
}

impl ChunkCache {
    /// A cache holding at most `budget` bytes of chunks, of which prefetched chunks not read
    /// yet may take `prefetch_cap`.
    pub fn new(budget: u64, prefetch_cap: u64) -> Arc<Self> {
        Arc::new(ChunkCache {
            budget,
            prefetch_cap,
            state: Mutex::new(State {
                lru: ByteLru::new(),
                inflight: HashMap::new(),
                reserved: 0,
                reserved_prefetch: 0,
            }),
            metrics: CacheMetrics::default(),
        })
    }

    pub fn metrics(&self) -> &CacheMetrics {
        &self.metrics
    }

    /// The chunk at `key` if the cache holds it (counted as a hit), of which the caller will
    /// serve `serving` bytes.
    pub fn cached(&self, key: &ChunkKey, serving: u64) -> Option<Arc<Buffer>> {
        let (bytes, first_use) = self.state.lock().lru.get(key, serving)?;
        self.metrics.hit(first_use);
        Some(bytes)
    }

    /// Whether a fetch of `key` is under way.
    pub fn in_flight(&self, key: &ChunkKey) -> bool {
        self.state.lock().inflight.contains_key(key)
    }

    /// Whether the chunk at `key` is cached or being fetched (not counted as a hit).
    pub fn holds(&self, key: &ChunkKey) -> bool {
        let state = self.state.lock();
        state.lru.contains(key) || state.inflight.contains_key(key)
    }

    fn joined(&self, flight: &Flight) {
        let first = !flight.joined.swap(true, Ordering::Relaxed);
        self.metrics.coalesced(flight.prefetch && first);
    }

    /// Arranges for `waiter` to get the chunk at `key` (and serve `serving` bytes of it): now
    /// if cached, when it arrives if a fetch is in flight, or else through the returned
    /// ticket, whose holder must fetch the chunk (`bytes` long) and finish it.
    pub fn claim(
        self: &Arc<Self>,
        key: &ChunkKey,
        bytes: u64,
        serving: u64,
        waiter: Waiter,
    ) -> Option<Ticket> {
        let mut evicted = Evicted::default();
        let ticket = {
            let mut state = self.state.lock();
            if let Some((chunk, first_use)) = state.lru.get(key, serving) {
                drop(state);
                self.metrics.hit(first_use);
                waiter(Ok(chunk));
                return None;
            }
            if let Some(flight) = state.inflight.get(key) {
                self.joined(flight);
                flight.served.fetch_add(serving, Ordering::Relaxed);
                flight.add(waiter);
                return None;
            }
            self.metrics.miss();
            state.reserve(bytes, self.budget, true, &mut evicted);
            let flight = Flight::new(false, vec![waiter]);
            flight.served.store(serving, Ordering::Relaxed);
            self.ticket(&mut state, key, bytes, flight)
        };
        self.metrics.evicted(&evicted);
        Some(ticket)
    }

    /// A ticket to prefetch the chunk at `key`, unless it is cached or in flight already, or
    /// there is no room for it.
    pub fn claim_prefetch(self: &Arc<Self>, key: &ChunkKey, bytes: u64) -> Option<Ticket> {
        let mut evicted = Evicted::default();
        let ticket = {
            let mut state = self.state.lock();
            let ahead = state.lru.unused_prefetch() + state.reserved_prefetch + bytes;
            if state.lru.contains(key) || state.inflight.contains_key(key) || ahead > self.prefetch_cap {
                return None;
            }
            if !state.reserve(bytes, self.budget, false, &mut evicted) {
                return None;
            }
            state.reserved_prefetch += bytes;
            self.ticket(&mut state, key, bytes, Flight::new(true, Vec::new()))
        };
        self.metrics.evicted(&evicted);
        self.metrics.prefetch_issued.fetch_add(1, Ordering::Relaxed);
        Some(ticket)
    }

    fn ticket(self: &Arc<Self>, state: &mut State, key: &ChunkKey, bytes: u64, flight: Flight) -> Ticket {
        let flight = Arc::new(flight);
        state.inflight.insert(key.clone(), flight.clone());
        Ticket {
            cache: self.clone(),
            key: key.clone(),
            flight,
            bytes,
            done: false,
        }
    }

    /// Ends a fetch: releases its reservation, caches a success, then calls the waiters.
    fn settle(&self, key: &ChunkKey, flight: &Arc<Flight>, bytes: u64, result: ChunkResult) {
        let mut evicted = Evicted::default();
        {
            let mut state = self.state.lock();
            state.inflight.remove(key);
            state.reserved -= bytes;
            if flight.prefetch {
                state.reserved_prefetch -= bytes;
            }
            if let Ok(chunk) = &result {
                let size = chunk.len() as u64;
                if size <= self.budget {
                    let keep = Keep {
                        unused: flight.prefetch && !flight.joined.load(Ordering::Relaxed),
                        read_once: flight.read_once.load(Ordering::Relaxed),
                        served: flight.served.load(Ordering::Relaxed),
                    };
                    evicted = state.lru.insert(key.clone(), chunk.clone(), keep);
                    let room = self.budget.saturating_sub(state.reserved);
                    state.lru.shrink_to(room, &mut evicted);
                } else {
                    self.metrics.uncached.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        self.metrics.evicted(&evicted);
        drop(evicted); // buffers go back to their pool outside the lock
        flight.complete(result);
    }

    /// The chunk at `key`, fetched with `fetch` on this thread if no one has it: the
    /// synchronous form of [`ChunkCache::claim`], for tests.
    #[cfg(test)]
    pub fn get_or_fetch(
        self: &Arc<Self>,
        key: &ChunkKey,
        bytes: u64,
        fetch: impl FnOnce() -> Result<Buffer, ChunkError>,
    ) -> ChunkResult {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let waiter: Waiter = Box::new(move |result| {
            let _ = tx.send(result);
        });
        if let Some(ticket) = self.claim(key, bytes, 0, waiter) {
            ticket.finish(fetch());
        }
        rx.recv().unwrap_or_else(|_| {
            Err(Arc::new(ChunkError::Decode(
                "the fetch of this chunk was dropped".into(),
            )))
        })
    }

    /// The most bytes of chunk data it holds.
    pub fn budget(&self) -> u64 {
        self.budget
    }

    /// Bytes of chunk data held now, and reserved for fetches in flight.
    pub fn used(&self) -> (u64, u64) {
        let state = self.state.lock();
        (state.lru.used(), state.reserved)
    }
}

#[cfg(test)]
mod tests;
