//! Sources: what the mount shows. Formats implement [`Source`] (detect a dataset, open it
//! into a [`Dataset`]: a Zarr tree plus a [`ChunkPlanner`]); the registry [`FORMATS`] lists
//! them, one line each. The memory store lives here too but is not a format: it is a
//! writable namespace the filesystem layer serves directly.
//!
//! Nothing in `source/` knows FUSE; the filesystem layer knows no format.

pub mod fst;
pub mod memory;
mod plan;
pub mod plotfile;
pub mod raw;
pub mod spec;
pub mod wds;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use plan::{ChunkError, ChunkPlan, ChunkPlanner, Decode};
pub use spec::SourceSpec;

use crate::tree::Group;

/// A dataset format: recognises its datasets and opens them.
pub trait Source: Send + Sync {
    /// Name used in logs, `inspect`, and as the URI scheme (`amrex://…`).
    fn name(&self) -> &'static str;
    /// Whether `FORMAT://ARG` names something to open (a format whose argument is a
    /// pattern resolves it).
    fn exists(&self, arg: &Path) -> bool {
        arg.exists()
    }
    /// The name of the dataset `FORMAT://ARG` opens, where its file name is not it.
    fn dataset_name(&self, _arg: &Path) -> Option<String> {
        None
    }
    /// A cheap check (magic bytes, a header line) whether `path` is one of this format's datasets.
    fn detect(&self, path: &Path) -> bool;
    /// Parses the dataset's metadata (not its chunk data) into a tree and a planner.
    fn open(&self, path: &Path) -> Result<Dataset, SourceError>;
    /// Views that combine several of this format's datasets found side by side in one
    /// directory (a plotfile time series), each with its name in that directory.
    fn collections(&self, _members: &[Member]) -> Vec<(String, Dataset)> {
        Vec::new()
    }
    /// Datasets made of several files of one directory (numbered WebDataset shards), from
    /// `files` (the directory's regular files, safe to open); the files a group takes are
    /// not also detected one by one. Groups are named, not opened ([`Source::open_group`]).
    fn file_groups(&self, _files: &[PathBuf]) -> Vec<FileGroup> {
        Vec::new()
    }
    /// Opens a group [`Source::file_groups`] made.
    fn open_group(&self, group: &FileGroup) -> Result<Dataset, SourceError> {
        Err(SourceError::invalid(
            Path::new(&group.name),
            "this format makes no file groups",
        ))
    }
}

/// A dataset made of several files of one directory ([`Source::file_groups`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileGroup {
    pub name: String,
    pub files: Vec<PathBuf>,
}

/// A dataset as [`Source::collections`] sees it: its name in the directory and its opened form.
pub struct Member<'a> {
    pub name: &'a str,
    pub root: &'a Group,
    pub planner: &'a Arc<dyn ChunkPlanner>,
}

/// Every format zarrmount knows, tried in order on plain paths. A new format is a new folder
/// under `source/` and one line here.
pub static FORMATS: &[&dyn Source] = &[&plotfile::Plotfile, &fst::Fst, &wds::WebDataset, &raw::Raw];

/// An opened dataset: its Zarr tree and how to produce its chunks.
pub struct Dataset {
    pub root: Group,
    pub planner: Arc<dyn ChunkPlanner>,
}

/// Why a dataset could not be opened or a chunk planned; always names the file.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

impl SourceError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        SourceError::Io {
            path: path.display().to_string(),
            source,
        }
    }

    pub fn invalid(path: &Path, message: impl Into<String>) -> Self {
        SourceError::Invalid {
            path: path.display().to_string(),
            message: message.into(),
        }
    }
}

/// The format that recognises `path`, if any.
pub fn detect(path: &Path) -> Option<&'static dyn Source> {
    FORMATS.iter().copied().find(|format| format.detect(path))
}

/// The format registered under URI scheme `scheme`.
pub fn by_scheme(scheme: &str) -> Option<&'static dyn Source> {
    FORMATS.iter().copied().find(|format| format.name() == scheme)
}
