//! Reading byte extents from source files, behind one narrow interface.
//!
//! Sources describe a chunk as [`Extent`]s; the read path submits them to an [`IoEngine`] and
//! gets one buffer per extent back, from the io_uring engine or, where the kernel refuses
//! io_uring, the `pread` engine. Buffers come from, and return to, a [`BufferPool`].

pub mod buffer;
mod direct;
mod huge;
mod page_cache;
mod pread;
mod uring;

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

pub use buffer::{Buffer, BufferPool};
pub use page_cache::{Mapped, is_cached, map_if_cached};
pub use pread::PreadEngine;
pub use uring::UringEngine;

/// A source file, opened on first read and kept open for the life of the mount.
///
/// It remembers which file it was when its dataset was described (device, inode, size,
/// mtime): sources read their metadata then, so bytes of a file that has since been replaced,
/// truncated or rewritten would be read against the wrong description. Opening checks the
/// stamp, and every read is checked after it completes (`verify`), so such a file gives
/// errors (`EIO` to readers), never wrong bytes.
#[derive(Debug)]
pub struct SourceFile {
    path: PathBuf,
    stamp: Option<Stamp>,
    file: Mutex<Option<Arc<File>>>,
    /// The file opened with `O_DIRECT` (see `direct`): not tried yet, or the handle, or `None`
    /// where the file system refuses direct reads.
    direct: Mutex<Option<Option<Arc<File>>>>,
}

/// What identifies one version of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
}

impl Stamp {
    pub fn of(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
        }
    }
}

impl SourceFile {
    /// The file at `path` as it is now; later reads fail if it changes.
    pub fn new(path: impl Into<PathBuf>) -> Arc<Self> {
        let path = path.into();
        Arc::new(SourceFile {
            stamp: std::fs::metadata(&path).ok().map(|m| Stamp::of(&m)),
            path,
            file: Mutex::new(None),
            direct: Mutex::new(None),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its size when it was described (reads past it fail), if it existed then.
    pub fn described_size(&self) -> Option<u64> {
        self.stamp.map(|s| s.size)
    }

    /// The open file, opening it read-only on first use. A failed open is retried next time.
    pub fn handle(&self) -> io::Result<Arc<File>> {
        let mut slot = self.file.lock();
        if let Some(file) = slot.as_ref() {
            return Ok(file.clone());
        }
        if self.stamp.is_none() {
            // Described without it: what appears there later (a link elsewhere, say) is not
            // what the dataset was described from.
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "missing when it was mounted",
            ));
        }
        let file = Arc::new(File::open(&self.path)?);
        self.unchanged(&file)?;
        *slot = Some(file.clone());
        Ok(file)
    }

    /// The file opened with `O_DIRECT`, opened on first use; `None` where the file system
    /// refuses it or a direct read of it failed as unaligned, and where it cannot be opened
    /// (the buffered read then reports why).
    pub(crate) fn direct_handle(&self) -> Option<Arc<File>> {
        let mut slot = self.direct.lock();
        if let Some(direct) = slot.as_ref() {
            return direct.clone();
        }
        // The buffered handle first: opening it checks this is the file that was described.
        self.handle().ok()?;
        let direct = match direct::open(&self.path) {
            Ok(Some(direct)) => self.unchanged(&direct).is_ok().then(|| Arc::new(direct)),
            Ok(None) => None,
            Err(e) => {
                tracing::debug!(path = %self.path.display(), "no O_DIRECT: {e}");
                return None; // tried again next time, as `handle` does
            }
        };
        *slot = Some(direct.clone());
        direct
    }

    /// Reads of this file stay buffered from now on (a direct read was refused).
    pub(crate) fn no_direct(&self) {
        *self.direct.lock() = Some(None);
    }

    /// An error if `file` is no longer the version this source file was stamped with.
    fn unchanged(&self, file: &File) -> io::Result<()> {
        let Some(was) = self.stamp else {
            return Ok(()); // never opened: see `handle`
        };
        let now = Stamp::of(&file.metadata()?);
        if now == was {
            return Ok(());
        }
        let what = if (now.dev, now.ino) != (was.dev, was.ino) {
            "was replaced".to_string()
        } else if now.size != was.size {
            format!("changed size from {} to {} bytes", was.size, now.size)
        } else {
            "was modified".to_string()
        };
        Err(io::Error::other(format!(
            "{what} since it was mounted; remount to see its new content"
        )))
    }
}

/// Checks, after `extents` were read, that none of their files changed meanwhile (see
/// [`SourceFile`]); one `fstat` per file.
pub(crate) fn verify(extents: &[Extent]) -> io::Result<()> {
    let mut last: Option<&Arc<SourceFile>> = None;
    for extent in extents {
        if last.is_some_and(|f| Arc::ptr_eq(f, &extent.file)) {
            continue;
        }
        last = Some(&extent.file);
        let source = &extent.file;
        source
            .handle()
            .and_then(|file| source.unchanged(&file))
            .map_err(|e| read_error(extent, e))?;
    }
    Ok(())
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
    /// Whether reading `extent` now would bypass the page cache (io_uring's O_DIRECT reads of
    /// cold extents), so that nothing but the caller keeps the bytes once read.
    fn reads_past_page_cache(&self, _extent: &Extent) -> bool {
        false
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
    /// Bytes of `bytes_read` read with `O_DIRECT`, past the page cache (io_uring only).
    pub odirect_bytes: AtomicU64,
    /// Of `odirect_bytes`, read into buffers registered with io_uring.
    pub registered_bytes: AtomicU64,
    /// Bytes of `bytes_read` the page cache held, served mapped (`Mapped`), not copied.
    pub mapped_bytes: AtomicU64,
    /// Extents asked for and not yet answered: the engine's queue depth now.
    pub queued: AtomicU64,
}

impl IoMetrics {
    pub(crate) fn record(&self, extents: u64, bytes: u64) {
        self.extents_read.fetch_add(extents, Ordering::Relaxed);
        self.bytes_read.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn mapped(&self, bytes: u64) {
        self.record(1, bytes);
        self.mapped_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    fn odirect(&self, bytes: u64, registered: bool) {
        self.odirect_bytes.fetch_add(bytes, Ordering::Relaxed);
        if registered {
            self.registered_bytes.fetch_add(bytes, Ordering::Relaxed);
        }
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

/// The engine for `choice`, with `rings` io_uring threads, which read cold extents with
/// O_DIRECT if `odirect`. io_uring that cannot be set up (old kernel, seccomp,
/// `io_uring_disabled`) falls back to pread, with one warning.
pub fn engine(
    choice: EngineChoice,
    rings: usize,
    pool: Arc<BufferPool>,
    odirect: bool,
) -> io::Result<Arc<dyn IoEngine>> {
    if choice == EngineChoice::Uring {
        match UringEngine::with_odirect(rings, pool.clone(), odirect) {
            Ok(engine) => {
                tracing::info!(rings, odirect, "reading with io_uring");
                return Ok(Arc::new(engine));
            }
            Err(e) => tracing::warn!("io_uring unavailable ({e}); reading with pread"),
        }
    }
    Ok(Arc::new(PreadEngine::new(PREAD_THREADS, pool)?))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    fn extent(file: &Arc<SourceFile>) -> Extent {
        Extent {
            file: file.clone(),
            offset: 0,
            len: 4,
        }
    }

    /// Rewrites `path` in place (same inode) with `bytes` and an mtime an hour later, so the
    /// change shows whatever the file system's timestamp granularity.
    fn rewrite(path: &Path, bytes: &[u8]) {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(path)
            .unwrap();
        std::os::unix::fs::FileExt::write_all_at(&file, bytes, 0).unwrap();
        file.set_modified(SystemTime::now() + Duration::from_secs(3600))
            .unwrap();
    }

    #[test]
    fn a_source_changed_after_it_was_described_fails_to_read_on_every_engine() {
        let dir = tempfile::tempdir().unwrap();
        let pool = BufferPool::new(1 << 20);
        let engines: [Arc<dyn IoEngine>; 2] = [
            Arc::new(PreadEngine::new(1, pool.clone()).unwrap()),
            Arc::new(UringEngine::new(1, pool).expect("io_uring is enabled on this machine")),
        ];
        for engine in engines {
            let name = engine.name();
            let path = |n: &str| dir.path().join(format!("{name}-{n}"));
            for n in ["modified", "truncated", "replaced"] {
                std::fs::write(path(n), b"abcdefgh").unwrap();
            }
            let modified = SourceFile::new(path("modified"));
            let truncated = SourceFile::new(path("truncated"));
            let replaced = SourceFile::new(path("replaced"));
            // Opened and read before the change: reads fail after it.
            assert_eq!(engine.read(&[extent(&modified)]).unwrap(), [b"abcd"]);
            rewrite(&path("modified"), b"ABCDEFGH");
            assert_eq!(engine.read(&[extent(&truncated)]).unwrap(), [b"abcd"]);
            std::fs::OpenOptions::new()
                .write(true)
                .open(path("truncated"))
                .unwrap()
                .set_len(6)
                .unwrap();
            // Never opened before the change: the open fails.
            std::fs::write(path("new"), b"abcdefgh").unwrap();
            std::fs::rename(path("new"), path("replaced")).unwrap();
            for (file, says) in [
                (&modified, "was modified"),
                (&truncated, "changed size from 8 to 6 bytes"),
                (&replaced, "was replaced"),
            ] {
                let err = engine.read(&[extent(file)]).unwrap_err().to_string();
                assert!(
                    err.contains(says) && err.contains(&*file.path().to_string_lossy()),
                    "{name}: {err}"
                );
            }
        }
    }
}
