//! AMReX plotfiles (`amrex://DIR`, plotfile.md): a directory with a plotfile `Header`.
//!
//! `header`, `vismf`, `fab` and `particles` parse the text headers; `model` reads a plotfile's
//! metadata from disk; `layout` and `mapping` turn it into a Zarr tree whose chunks are byte
//! ranges of (or gathers from) the FABs; `series` stacks the plotfiles of a run along time.

pub(crate) mod fab;
mod gather;
pub(crate) mod header;
mod layout;
mod mapping;
mod model;
pub(crate) mod particles;
mod series;
mod text;
pub(crate) mod vismf;

#[cfg(test)]
mod tests;

use std::io::Read;
use std::path::Path;

use super::{Dataset, Member, Source, SourceError};

pub struct Plotfile;

impl Source for Plotfile {
    fn name(&self) -> &'static str {
        "amrex"
    }

    fn detect(&self, path: &Path) -> bool {
        let mut first = [0u8; 32];
        let Ok(mut file) = std::fs::File::open(path.join("Header")) else {
            return false;
        };
        let n = file.read(&mut first).unwrap_or(0);
        let line = String::from_utf8_lossy(&first[..n]);
        header::is_version_line(line.lines().next().unwrap_or(""))
    }

    fn open(&self, path: &Path) -> Result<Dataset, SourceError> {
        let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
        // AMReX writes into `<name>.temp` and renames when done, and moves a plotfile it
        // replaces to `<name>.old.<stamp>` (plotfile.md §1).
        if name.ends_with(".temp") {
            return Err(SourceError::invalid(path, "plotfile still being written (.temp)"));
        }
        if name.contains(".old.") {
            return Err(SourceError::invalid(
                path,
                "an older plotfile AMReX moved aside (.old.)",
            ));
        }
        mapping::build(model::read(path)?, path)
    }

    fn collections(&self, members: &[Member]) -> Vec<(String, Dataset)> {
        series::build(members)
    }
}
