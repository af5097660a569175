//! A least-recently-used map bounded by the total bytes of its values (the `lru` crate counts
//! entries only, so this tracks bytes and evicts until under budget).

use std::sync::Arc;

use lru::LruCache;

use super::ChunkKey;

pub(super) struct ByteLru {
    entries: LruCache<ChunkKey, Arc<[u8]>>,
    used: u64,
    budget: u64,
}

impl ByteLru {
    pub(super) fn new(budget: u64) -> Self {
        ByteLru {
            entries: LruCache::unbounded(),
            used: 0,
            budget,
        }
    }

    pub(super) fn used(&self) -> u64 {
        self.used
    }

    pub(super) fn get(&mut self, key: &ChunkKey) -> Option<Arc<[u8]>> {
        self.entries.get(key).cloned()
    }

    /// Inserts and evicts least-recently-used entries until the budget holds. A value larger
    /// than the whole budget is not cached. Returns (cached, entries evicted).
    pub(super) fn insert(&mut self, key: ChunkKey, value: Arc<[u8]>) -> (bool, u64) {
        let size = value.len() as u64;
        if size > self.budget {
            return (false, 0);
        }
        if let Some(old) = self.entries.put(key, value) {
            self.used -= old.len() as u64;
        }
        self.used += size;
        let mut evicted = 0;
        while self.used > self.budget {
            let Some((_, old)) = self.entries.pop_lru() else {
                break;
            };
            self.used -= old.len() as u64;
            evicted += 1;
        }
        (true, evicted)
    }
}
