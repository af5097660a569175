//! One fetch in flight: whoever claimed the chunk completes it, and every reader that asked
//! for the chunk meanwhile is called back with the same result.

use std::sync::atomic::{AtomicBool, AtomicU64};

use parking_lot::Mutex;

use super::{ChunkResult, Waiter};

pub(super) struct Flight {
    state: Mutex<State>,
    /// Started by the prefetcher rather than by a reader.
    pub(super) prefetch: bool,
    /// A reader asked for the chunk while it was being fetched.
    pub(super) joined: AtomicBool,
    /// Bytes of the chunk the waiters will have been served.
    pub(super) served: AtomicU64,
    /// Drop the chunk from the cache once it has been served whole (see `ByteLru`).
    pub(super) read_once: AtomicBool,
}

enum State {
    Waiting(Vec<Waiter>),
    Done(ChunkResult),
}

impl Flight {
    pub(super) fn new(prefetch: bool, waiters: Vec<Waiter>) -> Self {
        Flight {
            state: Mutex::new(State::Waiting(waiters)),
            prefetch,
            joined: AtomicBool::new(false),
            served: AtomicU64::new(0),
            read_once: AtomicBool::new(false),
        }
    }

    /// Calls `waiter` with the result: when it comes, or now if it has come.
    pub(super) fn add(&self, waiter: Waiter) {
        let mut state = self.state.lock();
        match &mut *state {
            State::Waiting(waiters) => waiters.push(waiter),
            State::Done(result) => {
                let result = result.clone();
                drop(state);
                waiter(result);
            }
        }
    }

    /// Sets the result (the first one counts) and calls every waiter, outside the lock.
    pub(super) fn complete(&self, result: ChunkResult) {
        let waiters = {
            let mut state = self.state.lock();
            match std::mem::replace(&mut *state, State::Done(result.clone())) {
                State::Waiting(waiters) => waiters,
                done @ State::Done(_) => {
                    *state = done;
                    return;
                }
            }
        };
        for waiter in waiters {
            waiter(result.clone());
        }
    }
}
