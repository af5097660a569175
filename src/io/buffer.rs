//! Read buffers that go back to a pool when their last reader is done, so a steady stream of
//! same-sized chunks (the usual case: every chunk of an array has one size) reuses the same
//! few allocations instead of asking the allocator, and the kernel, for fresh pages each time.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

/// Free buffers by length, holding at most `cap` bytes; the rest are freed.
#[derive(Debug, Default)]
pub struct BufferPool {
    free: Mutex<HashMap<usize, Vec<Vec<u8>>>>,
    held: AtomicU64,
    cap: u64,
    /// Buffers handed out again instead of allocated.
    pub reused: AtomicU64,
}

impl BufferPool {
    pub fn new(cap: u64) -> Arc<Self> {
        Arc::new(BufferPool {
            cap,
            ..BufferPool::default()
        })
    }

    /// A buffer of exactly `len` bytes. A recycled one holds old bytes: callers overwrite it.
    pub fn take(&self, len: usize) -> Vec<u8> {
        let recycled = self.free.lock().get_mut(&len).and_then(Vec::pop);
        match recycled {
            Some(buf) => {
                self.held.fetch_sub(len as u64, Ordering::Relaxed);
                self.reused.fetch_add(1, Ordering::Relaxed);
                buf
            }
            None => vec![0; len],
        }
    }

    /// Keeps `buf` for a later `take` of its length, if the pool has room.
    pub fn give(&self, buf: Vec<u8>) {
        let len = buf.len() as u64;
        if len == 0 || buf.capacity() != buf.len() {
            return;
        }
        let mut free = self.free.lock();
        if self.held.load(Ordering::Relaxed) + len > self.cap {
            return;
        }
        self.held.fetch_add(len, Ordering::Relaxed);
        free.entry(buf.len()).or_default().push(buf);
    }

    /// Bytes held for reuse now.
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }
}

/// Bytes read or decoded, returned to their pool (if any) when dropped.
#[derive(Debug, Default)]
pub struct Buffer {
    bytes: Vec<u8>,
    pool: Option<Arc<BufferPool>>,
}

impl Buffer {
    pub fn pooled(bytes: Vec<u8>, pool: &Arc<BufferPool>) -> Self {
        Buffer {
            bytes,
            pool: Some(pool.clone()),
        }
    }
}

impl From<Vec<u8>> for Buffer {
    fn from(bytes: Vec<u8>) -> Self {
        Buffer { bytes, pool: None }
    }
}

impl Deref for Buffer {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            pool.give(std::mem::take(&mut self.bytes));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_buffers_of_the_same_length_up_to_its_cap() {
        let pool = BufferPool::new(10);
        let first = Buffer::pooled(pool.take(4), &pool);
        let ptr = first.as_ptr();
        drop(first);
        assert_eq!(pool.held(), 4);
        let again = pool.take(4);
        assert_eq!(again.as_ptr(), ptr, "the freed buffer is handed out again");
        assert_eq!(pool.reused.load(Ordering::Relaxed), 1);
        assert_eq!(pool.take(5).len(), 5, "other lengths are allocated");
        pool.give(vec![0; 8]);
        pool.give(vec![0; 8]); // over the cap: freed
        assert_eq!(pool.held(), 8);
    }
}
