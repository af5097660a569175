//! Handing re-read chunk files to the kernel's page cache.
//!
//! Chunk files are opened for direct I/O (see [`ZarrFs::open`]): a first read lands in the
//! reader's buffer with one copy less, but every read, however often repeated, is a trip
//! through the daemon. A chunk file read whole a second time is likely to be read again
//! (epochs over a training set, an array re-sliced in a notebook), so the pieces served for
//! that second read are also stored into the kernel's page cache for its inode, and once all
//! its bytes are there it is opened through the page cache: later reads never reach the
//! daemon. The pages are the kernel's, clean and reclaimable like any file's; a page that is
//! gone by then is read through the daemon again.
//!
//! Storing copies the bytes into the kernel and may wait on a page lock held by a read that
//! needs the daemon's own threads, so it runs on a thread of its own behind a short queue, and
//! a piece that finds the queue full is simply not stored (it will be read through the daemon).

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, OnceLock};

use tracing::debug;

use super::Data;

/// Where stored pages go: the kernel, through a FUSE notification.
pub trait PageStore: Send + Sync {
    fn store(&self, ino: u64, offset: u64, data: &[u8]) -> io::Result<()>;
}

/// How much of one chunk file was served and how much of it the page cache got.
#[derive(Debug, Default)]
pub struct Residency {
    served: AtomicU64,
    stored: AtomicU64,
}

impl Residency {
    /// Counts `len` bytes served from a file of `size`; true if they should be stored too: the
    /// file was served whole before (this is a re-read) and is not all stored yet.
    fn serve(&self, len: u64, size: u64) -> bool {
        let before = self.served.fetch_add(len, Ordering::Relaxed);
        before >= size && self.stored.load(Ordering::Relaxed) < size
    }

    /// Whether every byte of a file of `size` has been stored (and may still be cached).
    pub fn resident(&self, size: u64) -> bool {
        self.stored.load(Ordering::Relaxed) >= size
    }

    /// Starts over, for a file whose source changed: its pages are dropped with it.
    pub fn reset(&self) {
        self.served.store(0, Ordering::Relaxed);
        self.stored.store(0, Ordering::Relaxed);
    }
}

/// Pieces waiting to be stored; a few MiB at most, held outside the chunk cache's budget.
const QUEUE: usize = 8;

struct Piece {
    ino: u64,
    offset: u64,
    data: Data,
    residency: Arc<Residency>,
}

/// The storing thread, started once the FUSE session (the kernel to store into) exists.
#[derive(Default)]
pub struct Feeder {
    queue: OnceLock<SyncSender<Piece>>,
    /// Bytes stored into the page cache.
    pub stored: AtomicU64,
}

impl Feeder {
    pub fn start(self: &Arc<Self>, store: Box<dyn PageStore>) -> io::Result<()> {
        let (tx, rx) = sync_channel::<Piece>(QUEUE);
        let feeder = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("page-cache".into())
            .spawn(move || {
                for piece in rx {
                    let data = piece.data.as_slice();
                    match store.store(piece.ino, piece.offset, data) {
                        Ok(()) => {
                            let len = data.len() as u64;
                            piece.residency.stored.fetch_add(len, Ordering::Relaxed);
                            if let Some(feeder) = feeder.upgrade() {
                                feeder.stored.fetch_add(len, Ordering::Relaxed);
                            }
                        }
                        Err(e) => debug!(ino = piece.ino, "page cache store failed: {e}"),
                    }
                }
            })?;
        let _ = self.queue.set(tx);
        Ok(())
    }

    /// Called with each piece of a chunk file just served: stores it if it is part of a
    /// re-read (see [`Residency::serve`]) and there is room in the queue.
    pub fn served(&self, ino: u64, offset: u64, data: Data, size: u64, residency: &Arc<Residency>) {
        let len = data.as_slice().len() as u64;
        let Some(queue) = self.queue.get() else {
            return;
        };
        if !residency.serve(len, size) || len == 0 {
            return;
        }
        let piece = Piece {
            ino,
            offset,
            data,
            residency: residency.clone(),
        };
        if let Err(TrySendError::Full(_)) = queue.try_send(piece) {
            debug!(ino, offset, "page cache queue full; piece not stored");
        }
    }
}
