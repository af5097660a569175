//! WebDataset shards (`wds://…`, webdataset-and-crates.md Part A). The indexer finds
//! every sample of every shard and the byte range of every member, reading headers only,
//! and keeps the result in a cache directory; the mapping shows a shard set as one Zarr
//! group with an array per member suffix, indexed by sample.
//!
//! - `header` reads one 512-byte tar header and PAX records as Python's `tarfile` does;
//! - `tar` walks a shard from header to header ([`tar::Walker`]), seeking over payloads
//!   (`read` holds its positional reads and read-ahead window);
//! - `sample` groups members into samples exactly as webdataset does ([`sample::Grouper`]);
//! - `npy` (with `pydict`) reads `.npy` headers: dtype, shape, order, payload range;
//! - `scan` runs the three over one shard into a [`ShardIndex`];
//! - `shards` turns a spec (brace pattern, `::` list, directory of numbered shards) into
//!   [`ShardSet`]s in webdataset's order;
//! - `index` (with `codec`) keeps one binary index file per shard set in a cache
//!   directory, re-indexing only the shards whose (size, mtime, inode) changed;
//! - `features` turns an index into per-suffix columns and decides each one's kind,
//!   `mapping` makes the group and `planner` its chunks.
//!
//! Use: [`shards::resolve`] (a pattern or `::` list, or a directory) gives [`ShardSet`]s;
//! [`load_or_index`] gives a set's [`ShardSetIndex`]: per shard (in set order)
//! the [`Sample`]s in tar order, each a key and its [`Field`]s. A field's bytes are
//! `[offset, offset + size)` of the shard file; for an `.npy` field `npy` holds the dtype,
//! shape and order, and its array payload is `[offset + data_offset, … + data_len)`.
//! Per shard, `skipped` lists what is not data and why (for the `skipped` attribute) and
//! `end` says whether the shard was read to its end; `stats` says what came from the cache.
//!
//! Not supported: compressed shards (`.tar.gz`, `.tgz`: no random access), sparse
//! members (skipped with a reason), remote URLs (`pipe:`, `http://`, …), and names that
//! are not UTF-8 (their samples are skipped). Deliberate differences from webdataset: a
//! sample with a member whose name is absolute or has a `..` component, or with two
//! members of one suffix, is skipped instead of yielded or raised on.
//!
//! Speed, one 1 GiB webdataset-like shard (a PAX header before every member), warm page
//! cache, the 2-core dev machine, whole index (walk, grouping, `.npy` headers), measured
//! with the library by a test since removed (`index_speed_1gib` in `tests/speed.rs` at
//! 9aec4ae); `benches/wds_read.py` now measures indexing through the mount, against
//! `tar -tvf` and ratarmount, on generated shard sets:
//!
//! | members | count | this indexer | `tar` 0.4 `entries_with_seek` | cache load |
//! |---|---|---|---|---|
//! | 0.1–2 KiB | 438 k | 0.49 s, 2.2 GB/s | 1.37 s, 0.78 GB/s | 0.07 s |
//! | 1–64 KiB | 58 k | 0.11 s, 10 GB/s | 0.20 s, 5.4 GB/s | 4 ms |
//! | 64 KiB–1 MiB | 3.8 k | 9 ms, 116 GB/s | 14 ms, 75 GB/s | < 1 ms |
//!
//! The `tar` crate (over a `File` or a `BufReader`) seeks over payloads too but costs a
//! `lseek` and a `read` per header; it also leaves PAX global headers unapplied and
//! differs from Python's `tarfile` on details webdataset inherits (ustar prefix under any
//! magic, no data after non-file headers), so the walk is our own; the `tar` crate
//! builds test archives and cross-checks offsets (`tests::walk`).

pub mod codec;
mod features;
pub mod header;
pub mod index;
pub(crate) mod mapping;
pub mod npy;
pub(crate) mod planner;
mod pydict;
mod read;
pub mod sample;
pub mod scan;
pub mod shards;
pub mod tar;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::json;

use super::{Dataset, FileGroup, Source, SourceError};
use crate::tree::{Group, Node};

pub use index::{IndexConfig, IndexedShard, LoadStats, ShardSetIndex, load_or_index};
pub use npy::{DType, NpyHeader};
pub use sample::{Field, Sample, SkipReason, Skipped};
pub use scan::{ShardEnd, ShardIndex, index_file, index_reader};
pub use shards::{ShardSet, ShardSpecError};

/// Why a shard or a shard set could not be indexed; always names the file.
#[derive(Debug, thiserror::Error)]
pub enum WdsError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Spec(#[from] ShardSpecError),
}

impl WdsError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        WdsError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Where opened shard sets keep their index: set once per mount (`-o index_dir=`).
static INDEX_CONFIG: Mutex<Option<IndexConfig>> = Mutex::new(None);

/// Sets where the shard sets opened from now on keep their persistent index.
pub fn configure_index(config: IndexConfig) {
    *INDEX_CONFIG.lock().unwrap_or_else(|e| e.into_inner()) = Some(config);
}

fn index_config() -> IndexConfig {
    INDEX_CONFIG
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_default()
}

pub struct WebDataset;

impl Source for WebDataset {
    fn name(&self) -> &'static str {
        "wds"
    }

    /// A lone `.tar` file is a one-shard set; in a directory, [`Source::file_groups`]
    /// groups numbered shards first.
    fn detect(&self, path: &Path) -> bool {
        path.is_file() && path.extension().is_some_and(|e| e == "tar")
    }

    /// A directory, or a spec whose every shard exists.
    fn exists(&self, arg: &Path) -> bool {
        let spec = arg.to_string_lossy();
        arg.is_dir()
            || shards::from_spec(&spec).is_ok_and(|set| set.shards.iter().all(|shard| shard.is_file()))
    }

    fn dataset_name(&self, arg: &Path) -> Option<String> {
        match shards::resolve(&arg.to_string_lossy()) {
            Ok(sets) if sets.len() == 1 && !arg.is_dir() => sets.into_iter().next().map(|s| s.name),
            _ => None,
        }
    }

    fn open(&self, path: &Path) -> Result<Dataset, SourceError> {
        let sets = shards::resolve(&path.to_string_lossy())
            .map_err(|e| SourceError::invalid(path, e.to_string()))?;
        let mut planner = planner::Planner::new();
        let root = if let [set] = sets.as_slice() {
            open_set(set, &mut planner)?
        } else {
            let mut root = Group::default();
            let mut skipped = Vec::new();
            for set in &sets {
                match open_set(set, &mut planner) {
                    Ok(group) => {
                        root.members.insert(set.name.clone(), Node::Group(group));
                    }
                    Err(e) => {
                        tracing::warn!("skipped: {e}");
                        skipped.push(json!({"path": set.name, "reason": e.to_string()}));
                    }
                }
            }
            root.attributes.insert("format".into(), json!("webdataset"));
            if !skipped.is_empty() {
                root.attributes.insert("skipped".into(), json!(skipped));
            }
            root
        };
        Ok(Dataset {
            root,
            planner: Arc::new(planner),
        })
    }

    fn file_groups(&self, files: &[PathBuf]) -> Vec<FileGroup> {
        shards::group_numbered(files)
            .into_iter()
            .map(|set| FileGroup {
                name: set.name,
                files: set.shards,
            })
            .collect()
    }

    fn open_group(&self, group: &FileGroup) -> Result<Dataset, SourceError> {
        let set = ShardSet {
            name: group.name.clone(),
            shards: group.files.clone(),
        };
        let mut planner = planner::Planner::new();
        let root = open_set(&set, &mut planner)?;
        Ok(Dataset {
            root,
            planner: Arc::new(planner),
        })
    }
}

/// Indexes (or loads the index of) one set and maps it; a set none of whose shards holds
/// a tar cannot be opened.
fn open_set(set: &ShardSet, planner: &mut planner::Planner) -> Result<Group, SourceError> {
    let index = load_or_index(set, &index_config());
    let empty = index
        .shards
        .iter()
        .all(|s| s.index.samples.is_empty() && !s.index.end.is_complete());
    if empty {
        let why: Vec<String> = index
            .shards
            .iter()
            .map(|s| format!("{}: {}", s.path.display(), s.index.end.reason))
            .collect();
        return Err(SourceError::invalid(
            Path::new(&set.name),
            format!("no readable shard ({})", why.join("; ")),
        ));
    }
    Ok(mapping::build(index, planner))
}
