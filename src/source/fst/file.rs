//! Reading an FST file's directory, whichever container holds it.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::record::Directory;
use super::{rsf, xdf};

/// The first bytes that identify either container (fst.md §0, librmn `wkoffit`).
pub const MAGIC_BYTES: usize = 24;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Container {
    Xdf,
    Rsf,
}

impl Container {
    pub fn detect(head: &[u8]) -> Option<Container> {
        if xdf::is_xdf(head) {
            Some(Container::Xdf)
        } else if rsf::is_rsf(head) {
            Some(Container::Rsf)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Container::Xdf => "XDF",
            Container::Rsf => "RSF",
        }
    }
}

/// Positional reads for the directory walks: `pread` on a file, or a slice (the fuzz
/// targets parse a whole file image held in memory).
pub trait ReadAt {
    /// Fills `buf` from `offset`, or fails (an `UnexpectedEof` past the end).
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
}

impl ReadAt for File {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        FileExt::read_exact_at(self, buf, offset)
    }
}

impl ReadAt for [u8] {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let bytes = usize::try_from(offset)
            .ok()
            .and_then(|start| self.get(start..start.checked_add(buf.len())?))
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(bytes);
        Ok(())
    }
}

/// Reads the directory of the FST file at `path`.
pub fn read_directory(path: &Path) -> Result<(Container, Directory), String> {
    let file = File::open(path).map_err(|e| format!("opening: {e}"))?;
    let len = file.metadata().map_err(|e| format!("stat: {e}"))?.len();
    let mut head = [0u8; MAGIC_BYTES];
    FileExt::read_exact_at(&file, &mut head, 0).map_err(|_| "shorter than an FST header".to_string())?;
    let container = Container::detect(&head).ok_or("not an XDF or RSF standard file")?;
    Ok((container, read_image(&file, len, container)?))
}

/// Reads the directory of a `container` file of `len` bytes held by `src`.
pub fn read_image<R: ReadAt + ?Sized>(src: &R, len: u64, container: Container) -> Result<Directory, String> {
    match container {
        Container::Xdf => xdf::read(src, len),
        Container::Rsf => rsf::read(src, len),
    }
}
