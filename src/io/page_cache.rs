//! What the kernel's page cache holds of a source file, and serving what it holds without a
//! copy in the daemon.
//!
//! Read the plain way, a warm byte range is copied twice: from the page cache into a daemon
//! buffer (`pread`), then from that buffer into the reader's (the FUSE reply's `writev`).
//! [`Mapped`], the reply copies straight from the page cache, as a read of the file itself
//! would. A mapping lives only until its reply is sent, so the daemon's resident memory does
//! not grow with what it serves.

use std::fs::File;
use std::ops::Range;
use std::os::fd::AsRawFd;

use super::Extent;

/// Whether most of `range` of `file` is missing from the page cache. `false` where the
/// kernel cannot tell.
pub(crate) fn mostly_uncached(file: &File, range: Range<u64>) -> bool {
    cachestat(file, range).is_some_and(|(cached, pages)| cached * 2 < pages)
}

/// Whether the page cache holds every page of `extent`. `false` where the kernel cannot tell.
pub fn is_cached(extent: &Extent) -> bool {
    let range = extent.offset..extent.offset.saturating_add(extent.len);
    (extent.file.handle().ok())
        .and_then(|file| cachestat(&file, range))
        .is_some_and(|(cached, pages)| cached >= pages)
}

/// Pages of `range` the page cache holds, and pages `range` touches, from `cachestat(2)`
/// (Linux 6.5), which looks without reading or starting read-ahead (a `RWF_NOWAIT` probe
/// would start read-ahead of what it misses).
fn cachestat(file: &File, range: Range<u64>) -> Option<(u64, u64)> {
    #[repr(C)]
    struct CachestatRange {
        off: u64,
        len: u64,
    }
    #[repr(C)]
    #[derive(Default)]
    struct Cachestat {
        nr_cache: u64,
        nr_dirty: u64,
        nr_writeback: u64,
        nr_evicted: u64,
        nr_recently_evicted: u64,
    }
    // The same number on every architecture (the unified syscall table); libc does not name
    // it for glibc targets yet.
    const SYS_CACHESTAT: libc::c_long = 451;
    let page = page_size();
    let query = CachestatRange {
        off: range.start,
        len: range.end.saturating_sub(range.start),
    };
    let mut stat = Cachestat::default();
    // SAFETY: both structs are laid out as the kernel's `cachestat_range` and `cachestat`,
    // and live across the call.
    let rc = unsafe {
        libc::syscall(
            SYS_CACHESTAT,
            file.as_raw_fd(),
            &query as *const CachestatRange,
            &mut stat as *mut Cachestat,
            0u32,
        )
    };
    let pages = range.end.div_ceil(page).saturating_sub(range.start / page);
    (rc == 0).then_some((stat.nr_cache, pages))
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).unwrap_or(4096).max(1)
}

/// Part of a source file mapped read-only; unmapped when dropped.
#[derive(Debug)]
pub struct Mapped {
    at: *mut u8,
    /// Bytes mapped, from the page boundary at or before the extent.
    len: usize,
    /// Where the extent starts in the mapping.
    skip: usize,
}

// SAFETY: the mapping is read-only and owned by this value alone.
unsafe impl Send for Mapped {}

impl Mapped {
    /// The extent's bytes, for the kernel to copy (a reply's `writev`): if the file is
    /// truncated meanwhile, that copy fails with `EFAULT`, where reading them here would
    /// raise `SIGBUS`. Nothing in the daemon reads them.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `len` bytes are mapped at `at` for the life of `self`, and `skip` < `len`.
        unsafe { std::slice::from_raw_parts(self.at.add(self.skip), self.len - self.skip) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: mapped in `map_if_cached` for `len` bytes, and gone with `self`.
        unsafe { libc::munmap(self.at.cast(), self.len) };
    }
}

/// The extent mapped, if it lies within its file, the page cache holds all of it and the file
/// has not changed since it was described; None otherwise (the caller then reads it another
/// way, which also reports any error). It waits for a disk only if pages are evicted between
/// the check and the mapping.
pub fn map_if_cached(extent: &Extent) -> Option<Mapped> {
    let end = extent.offset.checked_add(extent.len)?;
    // Past the end, a mapping shows zeros up to the page boundary, where a read would be short.
    if extent.len == 0 || end > extent.file.described_size()? || !is_cached(extent) {
        return None;
    }
    let file = extent.file.handle().ok()?;
    let start = extent.offset - extent.offset % page_size();
    let skip = usize::try_from(extent.offset - start).ok()?;
    let len = usize::try_from(end - start).ok()?;
    // SAFETY: a new read-only shared mapping of an open file; the kernel checks the range.
    let at = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            libc::off_t::try_from(start).ok()?,
        )
    };
    if at == libc::MAP_FAILED {
        return None;
    }
    let mapped = Mapped {
        at: at.cast(),
        len,
        skip,
    };
    // Page table entries for all of it in one call (Linux 5.14) rather than a fault every few
    // pages during the reply's copy; where it fails, those faults happen instead.
    // SAFETY: advice on our own mapping; nothing is read into user space.
    unsafe { libc::madvise(at, len, libc::MADV_POPULATE_READ) };
    super::verify(std::slice::from_ref(extent)).ok()?;
    Some(mapped)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::io::SourceFile;

    #[test]
    fn cachestat_sees_a_dropped_file_as_uncached() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![7u8; 1 << 20]).unwrap();
        let file = File::open(&path).unwrap();
        assert!(!mostly_uncached(&file, 0..1 << 20), "just written: cached");
        file.sync_all().unwrap();
        drop_cache(&file);
        assert!(mostly_uncached(&file, 0..1 << 20), "after POSIX_FADV_DONTNEED");
    }

    #[test]
    fn maps_cached_extents_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let bytes: Vec<u8> = (0..3 << 20).map(|i: u32| (i % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let file = SourceFile::new(&path);
        let extent = |offset: u64, len: u64| Extent {
            file: Arc::clone(&file),
            offset,
            len,
        };
        for (offset, len) in [(0, 4096), (5000, 1 << 20), ((3 << 20) - 7, 7)] {
            assert!(is_cached(&extent(offset, len)));
            let mapped = map_if_cached(&extent(offset, len)).expect("cached");
            let want = &bytes[offset as usize..(offset + len) as usize];
            assert!(mapped.as_slice() == want, "{offset}+{len}");
        }
        assert!(map_if_cached(&extent(3 << 20, 4096)).is_none(), "past the end");
        let short = dir.path().join("short");
        std::fs::write(&short, [1u8; 100]).unwrap();
        let short = Extent {
            file: SourceFile::new(&short),
            offset: 50,
            len: 100,
        };
        assert!(is_cached(&short), "the one page there is is cached");
        assert!(
            map_if_cached(&short).is_none(),
            "but the extent runs past the end"
        );
        assert!(map_if_cached(&extent(0, 0)).is_none());
        let handle = file.handle().unwrap();
        handle.sync_all().unwrap();
        drop_cache(&handle);
        assert!(!is_cached(&extent(5000, 1 << 20)));
        assert!(map_if_cached(&extent(0, 1 << 20)).is_none(), "not cached");
    }

    /// Drops `file`'s clean pages from the page cache.
    pub(crate) fn drop_cache(file: &File) {
        // SAFETY: plain syscall on an open descriptor.
        let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(rc, 0);
    }
}
