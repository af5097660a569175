//! Reading byte extents from source files, behind one narrow interface.
//!
//! Sources describe a chunk as [`Extent`]s; the read path submits them to an [`IoEngine`] and
//! gets one buffer per extent back, from the io_uring engine or, where the kernel refuses
//! io_uring, the `pread` engine. Buffers come from, and return to, a [`BufferPool`].

pub mod buffer;
mod pread;
mod uring;

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

pub use buffer::{Buffer, BufferPool};
pub use pread::PreadEngine;
pub use uring::UringEngine;

/// A source file, opened on first read and kept open for the life of the mount.
#[derive(Debug)]
pub struct SourceFile {
    path: PathBuf,
    file: Mutex<Option<Arc<File>>>,
}

impl SourceFile {
    pub fn new(path: impl Into<PathBuf>) -> Arc<Self> {
        Arc::new(SourceFile {
            path: path.into(),
            file: Mutex::new(None),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open file, opening it read-only on first use. A failed open is retried next time.
    pub fn handle(&self) -> io::Result<Arc<File>> {
        let mut slot = self.file.lock();
        if let Some(file) = slot.as_ref() {
            return Ok(file.clone());
        }
        let file = Arc::new(File::open(&self.path)?);
        *slot = Some(file.clone());
        Ok(file)
    }
}

/// A byte range of one source file.
#[derive(Clone, Debug)]
pub struct Extent {
    pub file: Arc<SourceFile>,
    pub offset: u64,
    pub len: u64,
}

/// What a submission ends with: one buffer per extent, in order, or the first error.
pub type Completion = Box<dyn FnOnce(io::Result<Vec<Vec<u8>>>) + Send>;

/// Reads extents. Implementations must return exactly `len` bytes per extent, or an error
/// naming the file and offset (a short read means the file shrank: that is an error, never
/// zero padding).
pub trait IoEngine: Send + Sync {
    /// A short name for logs and stats ("pread", "io_uring").
    fn name(&self) -> &'static str;
    /// Starts reading `extents` and returns at once; `done` runs on an engine thread once
    /// every extent is read, so it must only hand the buffers on, never do heavy work.
    fn submit(&self, extents: Vec<Extent>, done: Completion);
    /// Reads `extents` and waits for them.
    fn read(&self, extents: &[Extent]) -> io::Result<Vec<Vec<u8>>> {
        if extents.is_empty() {
            return Ok(Vec::new());
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.submit(
            extents.to_vec(),
            Box::new(move |result| {
                let _ = tx.send(result);
            }),
        );
        rx.recv()
            .unwrap_or_else(|_| Err(io::Error::other("the I/O engine dropped a read")))
    }
    fn metrics(&self) -> &IoMetrics;
    /// Where the engine takes its buffers from; hand them back through [`Buffer::pooled`].
    fn pool(&self) -> &Arc<BufferPool>;
}

/// Counters every engine keeps; tests assert on them (one read per box-aligned chunk …).
#[derive(Debug, Default)]
pub struct IoMetrics {
    pub extents_read: AtomicU64,
    pub bytes_read: AtomicU64,
    /// Extents asked for and not yet answered: the engine's queue depth now.
    pub queued: AtomicU64,
}

impl IoMetrics {
    pub(crate) fn record(&self, extents: u64, bytes: u64) {
        self.extents_read.fetch_add(extents, Ordering::Relaxed);
        self.bytes_read.fetch_add(bytes, Ordering::Relaxed);
    }

    fn enqueue(&self, extents: usize) {
        self.queued.fetch_add(extents as u64, Ordering::Relaxed);
    }

    fn dequeue(&self, extents: usize) {
        self.queued.fetch_sub(extents as u64, Ordering::Relaxed);
    }
}

/// An I/O error with the file, length and offset it happened at.
pub(crate) fn read_error(extent: &Extent, e: io::Error) -> io::Error {
    io::Error::new(
        e.kind(),
        format!(
            "{}: reading {} bytes at offset {}: {e}",
            extent.file.path().display(),
            extent.len,
            extent.offset
        ),
    )
}

/// Which engine to use (`-o io=`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EngineChoice {
    /// io_uring, or pread where the kernel refuses it.
    #[default]
    Uring,
    Pread,
}

/// Reader threads of the pread engine: each read blocks one, so this is its queue depth.
pub const PREAD_THREADS: usize = 8;

/// The engine for `choice`, with `rings` io_uring threads. io_uring that cannot be set up
/// (old kernel, seccomp, `io_uring_disabled`) falls back to pread, with one warning.
pub fn engine(choice: EngineChoice, rings: usize, pool: Arc<BufferPool>) -> io::Result<Arc<dyn IoEngine>> {
    if choice == EngineChoice::Uring {
        match UringEngine::new(rings, pool.clone()) {
            Ok(engine) => {
                tracing::info!(rings, "reading with io_uring");
                return Ok(Arc::new(engine));
            }
            Err(e) => tracing::warn!("io_uring unavailable ({e}); reading with pread"),
        }
    }
    Ok(Arc::new(PreadEngine::new(PREAD_THREADS, pool)?))
}
