//! One fetch in flight: the leader completes it, every other reader of the chunk waits on it.

use parking_lot::{Condvar, Mutex};

use super::ChunkResult;
use crate::source::ChunkError;

#[derive(Default)]
pub(super) struct Flight {
    result: Mutex<Option<ChunkResult>>,
    done: Condvar,
}

impl Flight {
    pub(super) fn complete(&self, result: ChunkResult) {
        *self.result.lock() = Some(result);
        self.done.notify_all();
    }

    /// Completes the flight with an error if the leader went away without a result.
    pub(super) fn abandon(&self) {
        let mut slot = self.result.lock();
        if slot.is_none() {
            let error = ChunkError::Decode("the fetch of this chunk was abandoned".into());
            *slot = Some(Err(std::sync::Arc::new(error)));
            self.done.notify_all();
        }
    }

    pub(super) fn wait(&self) -> ChunkResult {
        let mut slot = self.result.lock();
        loop {
            if let Some(result) = slot.as_ref() {
                return result.clone();
            }
            self.done.wait(&mut slot);
        }
    }
}
