//! The io_uring engine (in the spirit of light-speed-io): dedicated threads, each owning one
//! ring. A submission sends a batch of extents through a ring's instruction channel; the ring
//! thread keeps its submission queue as full as the work allows, resubmits short reads for the
//! rest, and hands a batch's buffers to its completion once all its reads completed. Buffers
//! come from the engine's pool and go back to it when their chunk is done with.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};

use io_uring::{IoUring, opcode, types};

use super::direct::{self, Scratch};
use super::page_cache;
use super::{BufferPool, Completion, Extent, IoEngine, IoMetrics, read_error, verify};

/// Submission queue entries per ring: enough to keep a disk's queue busy with many chunks'
/// extents in flight.
const DEPTH: u32 = 64;
/// Scratch buffers per ring for reads past the page cache (`direct`): direct reads in
/// flight per ring, [`direct::PIECE`] each, in huge pages. They are registered with the ring:
/// a direct read into a registered buffer does not pin its pages each time, which halved the
/// CPU time of 1 MiB direct reads (`benches/uring_register.rs`). Buffered reads and files are not registered:
/// neither helped at the engine's read sizes, and registered buffers slowed 1 MiB copies
/// from the page cache.
const SCRATCH_BUFFERS: usize = 8;

pub struct UringEngine {
    rings: Vec<Sender<Batch>>,
    next: AtomicUsize,
    shared: Arc<Shared>,
}

/// What the ring threads and the engine's users both see.
struct Shared {
    metrics: IoMetrics,
    pool: Arc<BufferPool>,
    /// Whether cold extents are read with O_DIRECT.
    odirect: bool,
}

/// One caller's extents and what to do with them once read.
struct Batch {
    extents: Vec<Extent>,
    done: Completion,
}

impl UringEngine {
    /// Starts `threads` ring threads; fails if the kernel refuses io_uring (old kernels,
    /// seccomp in containers, `io_uring_disabled`), so the caller can fall back to pread.
    pub fn new(threads: usize, pool: Arc<BufferPool>) -> io::Result<Self> {
        Self::with_odirect(threads, pool, false)
    }

    /// [`UringEngine::new`]; with `odirect`, long extents the page cache does not hold are
    /// read with O_DIRECT (see `direct`).
    pub fn with_odirect(threads: usize, pool: Arc<BufferPool>, odirect: bool) -> io::Result<Self> {
        let shared = Arc::new(Shared {
            metrics: IoMetrics::default(),
            pool,
            odirect,
        });
        let mut rings = Vec::new();
        for i in 0..threads.max(1) {
            let ring = IoUring::new(DEPTH)?;
            let (tx, rx) = mpsc::channel();
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("io-uring-{i}"))
                .spawn(move || RingThread::new(ring, shared).run(rx))?;
            rings.push(tx);
        }
        Ok(UringEngine {
            rings,
            next: AtomicUsize::new(0),
            shared,
        })
    }
}

impl IoEngine for UringEngine {
    fn name(&self) -> &'static str {
        "io_uring"
    }

    fn submit(&self, extents: Vec<Extent>, done: Completion) {
        if extents.is_empty() {
            return done(Ok(Vec::new()));
        }
        let ring = &self.rings[self.next.fetch_add(1, Ordering::Relaxed) % self.rings.len()];
        self.shared.metrics.enqueue(extents.len());
        if let Err(mpsc::SendError(batch)) = ring.send(Batch { extents, done }) {
            self.shared.metrics.dequeue(batch.extents.len());
            (batch.done)(Err(io::Error::other("the io_uring thread has stopped")));
        }
    }

    fn reads_past_page_cache(&self, extent: &Extent) -> bool {
        // `odirect` first: this runs for every uncached byte-range read.
        self.shared.odirect
            && extent
                .file
                .handle()
                .is_ok_and(|file| read_direct(extent, &file, true).is_some())
    }

    fn metrics(&self) -> &IoMetrics {
        &self.shared.metrics
    }

    fn pool(&self) -> &Arc<BufferPool> {
        &self.shared.pool
    }
}

/// A batch being served: its buffers, the files they are read from (kept open until every
/// read completed), and the first error.
struct Pending {
    extents: Vec<Extent>,
    buffers: Vec<Vec<u8>>,
    _files: Vec<Arc<File>>,
    left: usize,
    error: Option<io::Error>,
    done: Completion,
}

/// One read: bytes `done..end` of extent `index` of batch `batch` are left to read. An
/// extent is one op, or, read past the page cache, one per [`direct::PIECE`], all in flight
/// at once.
#[derive(Clone, Copy)]
struct Op {
    batch: usize,
    index: usize,
    fd: i32,
    done: usize,
    end: usize,
    /// Set when the extent is read past the page cache.
    direct: Option<Direct>,
}

/// A read with `O_DIRECT` through `fd`; while in flight, into scratch buffer `scratch`
/// from file offset `start`.
#[derive(Clone, Copy)]
struct Direct {
    fd: i32,
    scratch: usize,
    start: u64,
}

struct RingThread {
    ring: IoUring,
    shared: Arc<Shared>,
    batches: Vec<Option<Pending>>,
    ops: Vec<Option<Op>>,
    queued: VecDeque<Op>,
    in_flight: usize,
    /// Aligned buffers of direct reads (at most `SCRATCH_BUFFERS`), and which are free.
    scratch: Vec<Scratch>,
    free_scratch: Vec<usize>,
    /// Which scratch buffers are registered with the ring, under their index. Registration
    /// can fail (pinned memory counts against `RLIMIT_MEMLOCK`); those are read unregistered.
    registered: Vec<bool>,
    /// Whether the ring has a (sparse) table for the scratch buffers.
    buffer_table: bool,
}

impl RingThread {
    fn new(ring: IoUring, shared: Arc<Shared>) -> Self {
        let buffer_table = shared.odirect
            && ring
                .submitter()
                .register_buffers_sparse(SCRATCH_BUFFERS as u32)
                .is_ok();
        RingThread {
            ring,
            shared,
            batches: Vec::new(),
            ops: Vec::new(),
            queued: VecDeque::new(),
            in_flight: 0,
            scratch: Vec::new(),
            free_scratch: Vec::new(),
            registered: Vec::new(),
            buffer_table,
        }
    }

    /// A new scratch buffer's index, registered with the ring where it can be.
    fn add_scratch(&mut self) -> io::Result<usize> {
        let index = self.scratch.len();
        let mut scratch = Scratch::new()?;
        let iovec = scratch.iovec();
        // SAFETY: the buffer's mapping stays in place for as long as the
        // ring lives: scratch buffers are only dropped with the thread, after the ring (or
        // leaked, see `fail_all`).
        let registered = self.buffer_table
            && unsafe {
                self.ring
                    .submitter()
                    .register_buffers_update(index as u32, &[iovec], None)
            }
            .is_ok();
        self.scratch.push(scratch);
        self.registered.push(registered);
        Ok(index)
    }

    fn run(mut self, batches: Receiver<Batch>) {
        loop {
            // Block for work only when nothing is in flight; otherwise take what has come.
            if self.in_flight == 0 && self.queued.is_empty() {
                match batches.recv() {
                    Ok(batch) => self.accept(batch),
                    Err(_) => return, // the engine was dropped
                }
            }
            while let Ok(batch) = batches.try_recv() {
                self.accept(batch);
            }
            self.submit();
            if self.in_flight == 0 {
                continue;
            }
            if let Err(e) = self.ring.submit_and_wait(1)
                && e.kind() != io::ErrorKind::Interrupted
            {
                self.fail_all(e);
                continue;
            }
            self.complete();
        }
    }

    fn accept(&mut self, batch: Batch) {
        let files: io::Result<Vec<Arc<File>>> = batch
            .extents
            .iter()
            .map(|e| e.file.handle().map_err(|err| read_error(e, err)))
            .collect();
        let mut files = match files {
            Ok(files) => files,
            Err(e) => return self.answer(batch.extents, batch.done, Err(e)),
        };
        let slot = free_slot(&mut self.batches);
        let mut buffers = Vec::with_capacity(batch.extents.len());
        let mut left = 0;
        let mut direct_files = Vec::new();
        for (index, (extent, file)) in batch.extents.iter().zip(&files).enumerate() {
            buffers.push(self.shared.pool.take(extent.len as usize));
            if extent.len == 0 {
                continue; // nothing to read: done already
            }
            let direct = read_direct(extent, file, self.shared.odirect).map(|handle| {
                let fd = handle.as_raw_fd();
                direct_files.push(handle);
                Direct {
                    fd,
                    scratch: 0,
                    start: 0,
                }
            });
            let len = extent.len as usize;
            let step = if direct.is_some() {
                direct::PIECE as usize
            } else {
                len
            };
            for done in (0..len).step_by(step) {
                left += 1;
                self.queued.push_back(Op {
                    batch: slot,
                    index,
                    fd: file.as_raw_fd(),
                    done,
                    end: (done + step).min(len),
                    direct,
                });
            }
        }
        files.append(&mut direct_files);
        if left == 0 {
            return self.answer(batch.extents, batch.done, Ok(buffers));
        }
        self.batches[slot] = Some(Pending {
            extents: batch.extents,
            buffers,
            _files: files,
            left,
            error: None,
            done: batch.done,
        });
    }

    /// Fills the submission queue from the queued reads.
    fn submit(&mut self) {
        while self.in_flight < DEPTH as usize {
            let Some(mut op) = self.queued.pop_front() else {
                break;
            };
            if op.direct.is_some() && self.free_scratch.is_empty() && self.scratch.len() < SCRATCH_BUFFERS {
                match self.add_scratch() {
                    Ok(index) => self.free_scratch.push(index),
                    // Not even one buffer (out of memory): read through the page cache.
                    Err(_) if self.scratch.is_empty() => op.direct = None,
                    Err(_) => {}
                }
            }
            let Some(pending) = self.batches[op.batch].as_mut() else {
                continue;
            };
            let extent = &pending.extents[op.index];
            let buffer = &mut pending.buffers[op.index];
            let pos = extent.offset + op.done as u64;
            let (fd, target, len, offset) = match op.direct.as_mut() {
                None => {
                    let len = (op.end - op.done).min(u32::MAX as usize) as u32;
                    (op.fd, buffer[op.done..].as_mut_ptr(), len, pos)
                }
                Some(direct) => {
                    let Some(scratch) = self.free_scratch.pop() else {
                        // Every scratch buffer is in flight: wait for one.
                        self.queued.push_front(op);
                        break;
                    };
                    let piece = direct::piece(pos, extent.offset + op.end as u64);
                    direct.scratch = scratch;
                    direct.start = piece.start;
                    let len = (piece.end - piece.start) as u32; // about direct::PIECE
                    (direct.fd, self.scratch[scratch].as_mut_ptr(), len, piece.start)
                }
            };
            let slot = free_slot(&mut self.ops);
            self.ops[slot] = Some(op);
            // SAFETY: the target (the batch's buffer, or a scratch buffer of this thread)
            // stays allocated and does not move until this read's completion has been taken
            // in `complete`; the file is kept open by the batch for as long.
            let entry = match op.direct {
                Some(direct) if self.registered[direct.scratch] => {
                    opcode::ReadFixed::new(types::Fd(fd), target, len, direct.scratch as u16)
                        .offset(offset)
                        .build()
                }
                _ => opcode::Read::new(types::Fd(fd), target, len)
                    .offset(offset)
                    .build(),
            };
            let entry = entry.user_data(slot as u64);
            if unsafe { self.ring.submission().push(&entry) }.is_err() {
                self.ops[slot] = None;
                if let Some(direct) = op.direct {
                    self.free_scratch.push(direct.scratch);
                }
                self.queued.push_front(op);
                break;
            }
            self.in_flight += 1;
        }
    }

    fn complete(&mut self) {
        let completions: Vec<(u64, i32)> = self
            .ring
            .completion()
            .map(|cqe| (cqe.user_data(), cqe.result()))
            .collect();
        for (user_data, result) in completions {
            let Some(mut op) = self.ops.get_mut(user_data as usize).and_then(Option::take) else {
                continue;
            };
            self.in_flight -= 1;
            if let Some(direct) = op.direct {
                // Free again once this iteration has copied out of it.
                self.free_scratch.push(direct.scratch);
            }
            let Some(pending) = self.batches[op.batch].as_mut() else {
                continue;
            };
            let extent = &pending.extents[op.index];
            let result = match op.direct {
                Some(direct) if result >= 0 => {
                    // The piece started at or before the extent's next byte; copy what it
                    // holds of the extent.
                    let skip = (extent.offset + op.done as u64 - direct.start) as usize;
                    let buffer = &mut pending.buffers[op.index];
                    let n = (result as usize).saturating_sub(skip).min(op.end - op.done);
                    buffer[op.done..op.done + n]
                        .copy_from_slice(self.scratch[direct.scratch].get(skip..skip + n));
                    let registered = self.registered.get(direct.scratch) == Some(&true);
                    self.shared.metrics.odirect(n as u64, registered);
                    n as i32 // about direct::PIECE
                }
                Some(_) if result == -libc::EINVAL => {
                    // The file system wants another alignment: read it through the cache.
                    extent.file.no_direct();
                    op.direct = None;
                    self.queued.push_back(op);
                    continue;
                }
                _ => result,
            };
            let error = match result {
                n if n > 0 => {
                    op.done += n as usize;
                    if op.done < op.end {
                        self.queued.push_back(op); // a short read: read the rest
                        continue;
                    }
                    None
                }
                0 => Some(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file ends before the extent",
                )),
                n if n == -libc::EINTR || n == -libc::EAGAIN => {
                    self.queued.push_back(op);
                    continue;
                }
                n => Some(io::Error::from_raw_os_error(-n)),
            };
            if let Some(e) = error {
                let e = read_error(extent, e);
                pending.error.get_or_insert(e);
            }
            pending.left -= 1;
            if pending.left == 0
                && let Some(done) = self.batches[op.batch].take()
            {
                let result = match done.error {
                    Some(e) => {
                        done.buffers.into_iter().for_each(|b| self.shared.pool.give(b));
                        Err(e)
                    }
                    None => Ok(done.buffers),
                };
                self.answer(done.extents, done.done, result);
            }
        }
    }

    /// Hands a finished batch to its completion and counts it.
    fn answer(&self, extents: Vec<Extent>, done: Completion, result: io::Result<Vec<Vec<u8>>>) {
        let result = result.and_then(|buffers| match verify(&extents) {
            Ok(()) => Ok(buffers),
            Err(e) => {
                buffers.into_iter().for_each(|b| self.shared.pool.give(b));
                Err(e)
            }
        });
        let metrics = &self.shared.metrics;
        metrics.dequeue(extents.len());
        if result.is_ok() {
            metrics.record(extents.len() as u64, extents.iter().map(|e| e.len).sum());
        }
        done(result);
    }

    /// The ring itself failed: answer every waiting batch. Reads already submitted may still
    /// complete into their buffers, so those are leaked rather than freed under the kernel.
    fn fail_all(&mut self, error: io::Error) {
        let batches: Vec<Pending> = self.batches.iter_mut().filter_map(Option::take).collect();
        for pending in batches {
            std::mem::forget(pending.buffers);
            let error = io::Error::new(error.kind(), format!("io_uring: {error}"));
            self.answer(pending.extents, pending.done, Err(error));
        }
        self.ops.clear();
        self.queued.clear();
        self.in_flight = 0;
        // Likewise the scratch buffers.
        std::mem::forget(std::mem::take(&mut self.scratch));
        self.free_scratch.clear();
        self.registered.clear();
    }
}

/// The `O_DIRECT` handle to read `extent` with, if it is long and its bytes are mostly not in
/// the page cache (see `direct`).
fn read_direct(extent: &Extent, file: &File, allowed: bool) -> Option<Arc<File>> {
    if !allowed
        || extent.len < direct::MIN_EXTENT
        || !page_cache::mostly_uncached(file, extent.offset..extent.offset + extent.len)
    {
        return None;
    }
    extent.file.direct_handle()
}

fn free_slot<T>(slots: &mut Vec<Option<T>>) -> usize {
    match slots.iter().position(Option::is_none) {
        Some(i) => i,
        None => {
            slots.push(None);
            slots.len() - 1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{PreadEngine, SourceFile};

    /// A small deterministic generator, so a failure is reproducible.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % n.max(1)
        }
    }

    #[test]
    fn same_bytes_as_pread_for_random_batches_and_the_same_errors() {
        same_bytes_as_pread(false);
    }

    /// The same with every file dropped from the page cache before each batch, so that long
    /// extents are read with O_DIRECT, as the daemon does by default: unaligned starts and
    /// ends, pieces, the end of a file.
    #[test]
    fn same_bytes_as_pread_past_the_page_cache() {
        let (direct, registered) = same_bytes_as_pread(true);
        assert!(
            direct > 50 << 20,
            "only {direct} bytes read with O_DIRECT: does this file system support it?"
        );
        // Root may pin memory without limit (CAP_IPC_LOCK); a user's RLIMIT_MEMLOCK may
        // refuse the registration, and those reads are then counted as unregistered.
        if nix::unistd::geteuid().is_root() {
            assert_eq!(registered, direct, "direct reads not into registered buffers");
        }
    }

    /// Random batches through both engines, io_uring allowed O_DIRECT; returns the bytes it
    /// read that way, and how many of those into registered buffers.
    fn same_bytes_as_pread(cold: bool) -> (u64, u64) {
        let dir = tempfile::tempdir().unwrap();
        let sizes = [0u64, 1, 4095, 70_000, 3 << 20, (5 << 20) + 123];
        let files: Vec<Arc<SourceFile>> = sizes
            .iter()
            .enumerate()
            .map(|(i, size)| {
                let path = dir.path().join(format!("f{i}"));
                let bytes: Vec<u8> = (0..*size).map(|b| (b * 31 + i as u64) as u8).collect();
                std::fs::write(&path, bytes).unwrap();
                // Written back: pages under writeback may be miscounted by cachestat.
                File::open(&path).unwrap().sync_all().unwrap();
                SourceFile::new(path)
            })
            .collect();
        let uring = UringEngine::with_odirect(2, BufferPool::new(1 << 20), true)
            .expect("io_uring is enabled on this machine");
        let pread = PreadEngine::new(2, BufferPool::new(1 << 20)).unwrap();
        let mut rng = Lcg(7);
        for round in 0..300 {
            // Up to 100 extents: more than the ring's depth, so the queue refills.
            let extents: Vec<Extent> = (0..1 + rng.below(100))
                .map(|_| {
                    let f = rng.below(files.len() as u64) as usize;
                    let size = sizes[f];
                    let offset = rng.below(size + 1);
                    // One round in ten reaches past the end of the file.
                    let room = if round % 10 == 0 {
                        size + 10 - offset
                    } else {
                        size - offset
                    };
                    Extent {
                        file: files[f].clone(),
                        offset,
                        len: rng.below(room + 1),
                    }
                })
                .collect();
            if cold {
                for file in &files {
                    crate::io::page_cache::tests::drop_cache(&file.handle().unwrap());
                }
            }
            match (uring.read(&extents), pread.read(&extents)) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "round {round}"),
                (Err(a), Err(b)) => {
                    assert_eq!(a.kind(), io::ErrorKind::UnexpectedEof, "round {round}: {a}");
                    assert_eq!(b.kind(), io::ErrorKind::UnexpectedEof);
                    assert!(a.to_string().contains("reading"), "{a}");
                }
                (a, b) => panic!(
                    "round {round}: io_uring {:?} but pread {:?}",
                    a.map(|_| ()),
                    b.map(|_| ())
                ),
            }
        }
        let missing = Extent {
            file: SourceFile::new(dir.path().join("missing")),
            offset: 0,
            len: 1,
        };
        let err = uring.read(&[missing]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("missing"), "{err}");
        let direct = uring.metrics().odirect_bytes.load(Ordering::Relaxed);
        let total = uring.metrics().bytes_read.load(Ordering::Relaxed);
        // Every file is in the page cache. cachestat(2) is a snapshot, though, and now and
        // then counts a cached range short while other tests drop and read their own files
        // (which can only cost speed: a direct read is coherent with the cache).
        if !cold {
            assert!(
                direct * 20 < total,
                "{direct} of {total} bytes read with O_DIRECT"
            );
        }
        (direct, uring.metrics().registered_bytes.load(Ordering::Relaxed))
    }

    #[test]
    fn concurrent_readers_share_the_rings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        let bytes: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let file = SourceFile::new(path);
        let engine = Arc::new(UringEngine::new(2, BufferPool::new(0)).unwrap());
        let threads: Vec<_> = (0..16u64)
            .map(|t| {
                let (engine, file, bytes) = (engine.clone(), file.clone(), bytes.clone());
                std::thread::spawn(move || {
                    for i in 0..50u64 {
                        let offset = (t * 7919 + i * 4099) % (1 << 19);
                        let got = engine
                            .read(&[Extent {
                                file: file.clone(),
                                offset,
                                len: 4096,
                            }])
                            .unwrap();
                        assert_eq!(got[0], bytes[offset as usize..offset as usize + 4096]);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(engine.metrics().extents_read.load(Ordering::Relaxed), 800);
    }
}
