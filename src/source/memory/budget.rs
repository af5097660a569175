//! The byte budget of one memory store: reserve before allocating, refund after freeing.

use std::sync::atomic::{AtomicU64, Ordering};

use super::MemError;

#[derive(Debug)]
pub(super) struct Budget {
    limit: u64,
    used: AtomicU64,
}

impl Budget {
    pub(super) fn new(limit: u64) -> Self {
        Budget {
            limit,
            used: AtomicU64::new(0),
        }
    }

    pub(super) fn limit(&self) -> u64 {
        self.limit
    }

    pub(super) fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }

    /// Reserves `bytes`, or fails with `NoSpace` and reserves nothing.
    pub(super) fn charge(&self, bytes: u64) -> Result<(), MemError> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .map(|_| ())
            .map_err(|_| MemError::NoSpace)
    }

    /// Records memory that is already allocated, limit or not (allocator rounding).
    pub(super) fn force(&self, bytes: u64) {
        self.used.fetch_add(bytes, Ordering::AcqRel);
    }

    pub(super) fn refund(&self, bytes: u64) {
        // Saturating: a bookkeeping slip must never wrap into a huge "used" figure.
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(bytes))
            });
    }
}
