//! Positional reads for the tar walk: [`ReadAt`] (`pread` on a file, a slice or a
//! counting wrapper in tests) and [`Window`], a read-ahead buffer sized for tar headers:
//! a header that lies inside the last block read costs nothing, one that does not costs
//! one read of [`WINDOW_SMALL`] or [`WINDOW_LARGE`] bytes (see there).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// A window read for a header far from the last window: the header block, a PAX header
/// before it (1 KiB in webdataset's shards) and an `.npy` header after it fit in 4 KiB.
pub const WINDOW_SMALL: usize = 4 << 10;
/// A window read for a header close to the last window (small members): reading on
/// through the payloads is cheaper than one `pread` per header. Measured on 1 GiB shards
/// (`index_speed_1gib`, a test since removed: `tests/speed.rs` at 9aec4ae; warm cache),
/// walk GB/s for 4/16/64/256 KiB: members of 0.1–2 KiB 2.5/3.3/3.6/3.8, of 1–64 KiB
/// 13.8/12.6/10.9/9.9, of 64 KiB–1 MiB 147/134/88/36. 16 KiB is within 10 % of the best
/// on each.
pub const WINDOW_LARGE: usize = 16 << 10;
/// Positional reads: `pread` on a file, a slice in tests, a counting wrapper in tests.
pub trait ReadAt {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
}

impl ReadAt for File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        FileExt::read_at(self, buf, offset)
    }
}

impl ReadAt for [u8] {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(self.len());
        let n = buf.len().min(self.len() - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        Ok(n)
    }
}

/// A read-ahead buffer over a [`ReadAt`], counting what it reads.
pub struct Window<'r, R: ReadAt + ?Sized> {
    src: &'r R,
    file_len: u64,
    buf: Vec<u8>,
    start: u64,
    filled: usize,
    /// Bytes and reads issued to `src` so far.
    pub bytes_read: u64,
    pub reads: u64,
    /// Read sizes for far and near headers ([`WINDOW_SMALL`], [`WINDOW_LARGE`]).
    pub small: usize,
    pub large: usize,
}

impl<'r, R: ReadAt + ?Sized> Window<'r, R> {
    pub fn new(src: &'r R, file_len: u64) -> Self {
        Window {
            src,
            file_len,
            buf: Vec::new(),
            start: 0,
            filled: 0,
            bytes_read: 0,
            reads: 0,
            small: WINDOW_SMALL,
            large: WINDOW_LARGE,
        }
    }

    /// The bytes `[pos, pos + n)`, fewer if the file ends first.
    pub fn get(&mut self, pos: u64, n: usize) -> io::Result<&[u8]> {
        let want = usize::try_from(self.file_len.saturating_sub(pos))
            .unwrap_or(usize::MAX)
            .min(n);
        let end = self.start + self.filled as u64;
        if pos < self.start || pos + want as u64 > end {
            let near = self.filled > 0 && pos >= end && pos - end < self.large as u64;
            let size = want.max(if near { self.large } else { self.small });
            let size = usize::try_from(self.file_len.saturating_sub(pos))
                .unwrap_or(usize::MAX)
                .min(size);
            if self.buf.len() < size {
                self.buf.resize(size, 0);
            }
            let got = read_full(self.src, &mut self.buf[..size], pos)?;
            self.bytes_read += got as u64;
            self.reads += 1;
            self.start = pos;
            self.filled = got;
        }
        let from = usize::try_from(pos - self.start)
            .unwrap_or(usize::MAX)
            .min(self.filled);
        let to = (from + want).min(self.filled);
        Ok(&self.buf[from..to])
    }
}

/// Reads until `buf` is full or the file ends.
fn read_full<R: ReadAt + ?Sized>(src: &R, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match src.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}
