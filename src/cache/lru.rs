//! A least-recently-used map bounded by the total bytes of its values (the `lru` crate counts
//! entries only, so this tracks bytes and evicts until under budget). It also tracks the bytes
//! of prefetched chunks no reader has asked for yet, which the prefetcher may not exceed.
//!
//! A *read-once* chunk is dropped as soon as its bytes have all been served: a prefetched copy
//! of a source byte range, which the page cache still holds, so keeping it would only take
//! memory (and fresh pages for every chunk, where dropping it recycles its buffer).

use std::sync::Arc;

use lru::LruCache;

use super::ChunkKey;
use crate::io::Buffer;

struct Entry {
    bytes: Arc<Buffer>,
    /// Prefetched and not read yet.
    unused: bool,
    read_once: bool,
    /// Bytes served from it so far.
    served: u64,
}

/// How a chunk is kept: whether it was prefetched and not read yet, whether it goes once read
/// whole, and what has been served from it already.
pub(super) struct Keep {
    pub(super) unused: bool,
    pub(super) read_once: bool,
    pub(super) served: u64,
}

pub(super) struct ByteLru {
    entries: LruCache<ChunkKey, Entry>,
    used: u64,
    unused_prefetch: u64,
}

/// What eviction let go of: chunks (dropped by the caller, outside its lock) and how many of
/// them were prefetched for nothing.
#[derive(Default)]
pub(super) struct Evicted {
    pub(super) chunks: Vec<Arc<Buffer>>,
    pub(super) wasted: u64,
}

impl ByteLru {
    pub(super) fn new() -> Self {
        ByteLru {
            entries: LruCache::unbounded(),
            used: 0,
            unused_prefetch: 0,
        }
    }

    pub(super) fn used(&self) -> u64 {
        self.used
    }

    pub(super) fn unused_prefetch(&self) -> u64 {
        self.unused_prefetch
    }

    /// The chunk, of which `serving` bytes are about to be served, and whether this is the
    /// first read of a prefetched one.
    pub(super) fn get(&mut self, key: &ChunkKey, serving: u64) -> Option<(Arc<Buffer>, bool)> {
        let entry = self.entries.get_mut(key)?;
        let first_use = std::mem::take(&mut entry.unused);
        let size = entry.bytes.len() as u64;
        if first_use {
            self.unused_prefetch -= size;
        }
        entry.served += serving;
        let bytes = entry.bytes.clone();
        if entry.read_once && entry.served >= size {
            self.entries.pop(key);
            self.used -= size;
        }
        Some((bytes, first_use))
    }

    pub(super) fn contains(&self, key: &ChunkKey) -> bool {
        self.entries.contains(key)
    }

    pub(super) fn insert(&mut self, key: ChunkKey, bytes: Arc<Buffer>, keep: Keep) -> Evicted {
        let size = bytes.len() as u64;
        let mut evicted = Evicted::default();
        if keep.read_once && keep.served >= size {
            return evicted; // served whole already, by the readers that waited for it
        }
        let entry = Entry {
            bytes,
            unused: keep.unused,
            read_once: keep.read_once,
            served: keep.served,
        };
        if let Some(old) = self.entries.put(key, entry) {
            self.forget(&old, &mut evicted);
        }
        self.used += size;
        if keep.unused {
            self.unused_prefetch += size;
        }
        evicted
    }

    /// Evicts least-recently-used chunks until at most `limit` bytes are held.
    pub(super) fn shrink_to(&mut self, limit: u64, evicted: &mut Evicted) {
        while self.used > limit {
            let Some((_, old)) = self.entries.pop_lru() else {
                break;
            };
            self.forget(&old, evicted);
        }
    }

    fn forget(&mut self, old: &Entry, evicted: &mut Evicted) {
        let size = old.bytes.len() as u64;
        self.used -= size;
        if old.unused {
            self.unused_prefetch -= size;
            evicted.wasted += 1;
        }
        evicted.chunks.push(old.bytes.clone());
    }
}
