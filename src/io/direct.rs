//! Reads past the page cache (`O_DIRECT`) for the io_uring engine.
//!
//! A buffered read of bytes the page cache does not hold costs the kernel about a core per
//! GB/s (allocating pages, filling them, copying out: 80–97 % of a core for `fio` reading
//! 1 GB/s here, against 5 % with `O_DIRECT`). On two cores that is CPU the reader needs. The
//! mount serves what it reads from its own cache and the kernel's FUSE page cache, so a
//! second copy of cold bytes in the source's page cache buys little. Extents already cached
//! are still read through the cache, which is faster than any disk.
//!
//! `O_DIRECT` needs aligned offsets, lengths and memory; [`ALIGN`] suits every logical block
//! size up to 4 KiB. Reads land in an aligned scratch buffer and the extent's bytes are copied
//! out: one copy in user space instead of the kernel's copy from its cache.

use std::fs::File;
use std::io;
use std::ops::Range;

use super::huge;

/// Offsets, lengths and buffer addresses of direct reads are multiples of this.
pub(crate) const ALIGN: u64 = 4096;
/// Extents shorter than this are read through the page cache: a small read costs little
/// either way, and a cached one serves its neighbours (headers, small records) next time.
pub(crate) const MIN_EXTENT: u64 = 128 << 10;
/// Most bytes of an extent one direct read covers; with the alignment around them a read is
/// up to [`ALIGN`] longer (so an unaligned 2 MiB extent, a 64³ f64 box, is one read).
pub(crate) const PIECE: u64 = 2 << 20;

/// Opens `path` read-only with `O_DIRECT`; `None` where the file system refuses it (tmpfs
/// before Linux 6.6, some FUSE and network file systems).
pub(crate) fn open(path: &std::path::Path) -> io::Result<Option<File>> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
    {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The aligned read that starts at or before `pos` and covers up to [`PIECE`] bytes of
/// `pos..end`.
pub(crate) fn piece(pos: u64, end: u64) -> Range<u64> {
    let up = |x: u64| x.div_ceil(ALIGN).saturating_mul(ALIGN);
    pos - pos % ALIGN..up(end.min(pos.saturating_add(PIECE)))
}

/// A buffer for the longest [`piece`], in huge pages (see `huge`: a direct read into a huge
/// page goes to the disk as one request).
pub(crate) struct Scratch {
    at: *mut u8,
}

impl Scratch {
    const LEN: usize = (PIECE + 2 * ALIGN) as usize;

    pub(crate) fn new() -> io::Result<Self> {
        let at = huge::map(Self::LEN);
        if at.is_null() {
            return Err(io::Error::last_os_error());
        }
        Ok(Scratch { at })
    }

    pub(crate) fn as_mut_ptr(&mut self) -> *mut u8 {
        self.at
    }

    /// The whole buffer, as registered with io_uring.
    pub(crate) fn iovec(&mut self) -> libc::iovec {
        libc::iovec {
            iov_base: self.at.cast(),
            iov_len: Self::LEN,
        }
    }

    pub(crate) fn get(&self, range: Range<usize>) -> &[u8] {
        // SAFETY: `LEN` bytes are mapped at `at`, zero or written by reads that have
        // completed; indexing checks `range` against them.
        let bytes = unsafe { std::slice::from_raw_parts(self.at, Self::LEN) };
        &bytes[range]
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // SAFETY: mapped in `new` for `LEN`, and gone with `self`.
        unsafe { huge::unmap(self.at, Self::LEN) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_are_aligned_cover_the_start_and_stop_at_a_mebibyte() {
        assert_eq!(piece(0, 10), 0..4096);
        assert_eq!(piece(5000, 5001), 4096..8192);
        assert_eq!(piece(4096, 8192), 4096..8192);
        assert_eq!(piece(100, 3 << 20), 0..PIECE + ALIGN);
        assert_eq!(piece(PIECE, 5 << 20), PIECE..2 * PIECE);
    }
}
