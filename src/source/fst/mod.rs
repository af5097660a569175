//! RPN standard files (`fst://FILE`, fst.md): ECCC's XDF and RSF containers.
//!
//! `xdf` and `rsf` read the two directories into `record::Record`s (`keys` parses the
//! record description both share); `packing` decodes payloads; `ip`, `date`, `grid` and
//! `geometry` decode levels, date stamps and grids; `variables` groups records as fstd2nc
//! does, `mapping` and `table` make the Zarr tree and `planner` its chunks.

pub(crate) mod date;
pub(crate) mod file;
pub(crate) mod geometry;
mod grid;
pub(crate) mod ip;
mod keys;
pub(crate) mod mapping;
pub mod packing;
mod planner;
mod record;
mod rsf;
mod table;
pub(crate) mod variables;
mod xdf;

#[cfg(test)]
mod tests;

use std::io::Read;
use std::path::Path;

use super::{Dataset, Source, SourceError};
pub(crate) use file::Container;
use file::MAGIC_BYTES;
pub use keys::Keys;
pub(crate) use planner::packing_of;

/// Every live record's metadata, in directory order: what librmn's `fstinl` + `fstprm` list.
pub fn list(path: &Path) -> Result<Vec<Keys>, String> {
    let (_, dir) = file::read_directory(path)?;
    Ok(dir
        .records
        .into_iter()
        .filter(|r| !r.deleted)
        .map(|r| r.keys)
        .collect())
}

pub struct Fst;

impl Source for Fst {
    fn name(&self) -> &'static str {
        "fst"
    }

    fn detect(&self, path: &Path) -> bool {
        let mut head = [0u8; MAGIC_BYTES];
        path.is_file()
            && std::fs::File::open(path).is_ok_and(|mut f| f.read_exact(&mut head).is_ok())
            && Container::detect(&head).is_some()
    }

    fn open(&self, path: &Path) -> Result<Dataset, SourceError> {
        let (container, dir) = file::read_directory(path).map_err(|e| SourceError::invalid(path, e))?;
        mapping::build(path, container, dir)
    }
}
