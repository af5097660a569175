//! A fixed pool of named threads running queued jobs in order: the pread engine's readers and
//! the decode workers that keep format work off the FUSE and io_uring threads.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc::{self, Sender};

use parking_lot::Mutex;
use tracing::error;

pub type Job = Box<dyn FnOnce() + Send>;

#[derive(Clone)]
pub struct Workers {
    jobs: Sender<Job>,
}

impl Workers {
    /// Starts `threads` threads named `name-<i>`. They end when the pool is dropped.
    pub fn new(name: &str, threads: usize) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    loop {
                        let job = queue.lock().recv();
                        let Ok(job) = job else { return };
                        // A panicking job drops what it owned (so its waiters hear of it) and
                        // leaves the thread serving.
                        if catch_unwind(AssertUnwindSafe(job)).is_err() {
                            error!("a worker job panicked");
                        }
                    }
                })?;
        }
        Ok(Workers { jobs })
    }

    pub fn spawn(&self, job: impl FnOnce() + Send + 'static) {
        // The threads outlive the sender: the only way to fail is a process going down.
        let _ = self.jobs.send(Box::new(job));
    }
}
