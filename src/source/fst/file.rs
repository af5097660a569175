//! Reading an FST file's directory, whichever container holds it.

use std::fs::File;
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

/// Reads the directory of the FST file at `path`.
pub fn read_directory(path: &Path) -> Result<(Container, Directory), String> {
    let file = File::open(path).map_err(|e| format!("opening: {e}"))?;
    let len = file.metadata().map_err(|e| format!("stat: {e}"))?.len();
    let mut head = [0u8; MAGIC_BYTES];
    std::os::unix::fs::FileExt::read_exact_at(&file, &mut head, 0)
        .map_err(|_| "shorter than an FST header".to_string())?;
    let container = Container::detect(&head).ok_or("not an XDF or RSF standard file")?;
    let dir = match container {
        Container::Xdf => xdf::read(&file, len),
        Container::Rsf => rsf::read(&file, len),
    }?;
    Ok((container, dir))
}
