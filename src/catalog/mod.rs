//! The mount's tree of sources, above the datasets' own Zarr trees: the root, mirrored
//! directories, opened datasets and memory stores (ARCHITECTURE.md §1, "Tree rules").
//!
//! A directory is scanned on first use and again when used a second later (`dir`): each
//! entry is detected by the format registry and opened (metadata only); what fails is left
//! out, logged, and listed under the directory group's `skipped` attribute. Group documents
//! consolidate everything below them; those above a memory store are rendered afresh on
//! every read (they change as users write), those of directories when a listing changed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde_json::{Value, json};
use tracing::{debug, warn};

mod dir;

pub use dir::{DirNode, Listing, RESCAN_AFTER, Skipped};

use crate::source::memory::{MemoryStore, Owner};
use crate::source::{ChunkPlanner, Dataset, Source, SourceSpec};
use crate::tree::render::{self, ConsolidatedEntry, join};
use crate::tree::{Attributes, Group};

/// A node of the catalog.
#[derive(Clone)]
pub enum Entry {
    Dir(Arc<DirNode>),
    Dataset(Arc<DatasetNode>),
    Memory(Arc<MemorySlot>),
}

/// An opened dataset, with a mount-wide id that keys its chunks in the cache.
pub struct DatasetNode {
    pub id: u64,
    pub format: &'static str,
    pub path: PathBuf,
    pub root: Group,
    pub planner: Arc<dyn ChunkPlanner>,
}

/// A memory store at its place in the tree. Removing its (empty) root directory hides it
/// and `mkdir` brings it back, so `shutil.rmtree(store); os.mkdir(store)` works as
/// zarr-python's `LocalStore.clear()` expects.
pub struct MemorySlot {
    pub store: MemoryStore,
    pub present: AtomicBool,
}

/// The whole catalog: its root and every memory store (the filesystem numbers their inodes
/// by position in `memory`).
pub struct Catalog {
    pub root: Entry,
    pub memory: Vec<Arc<MemorySlot>>,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot open {0}")]
    Open(#[from] crate::source::SourceError),
    #[error("two sources would both be named '{0}' under the mount root")]
    DuplicateName(String),
}

static NEXT_DATASET: AtomicU64 = AtomicU64::new(1);

impl Catalog {
    /// Builds the catalog for the SOURCE arguments: one source is the root itself, several
    /// become children of a root group, named after themselves.
    pub fn build(specs: &[SourceSpec], memory_limit: u64, owner: Owner) -> Result<Catalog, CatalogError> {
        let mut memory = Vec::new();
        let mut entries = Vec::new();
        for spec in specs {
            let entry = match spec {
                SourceSpec::Memory { name } => {
                    let mut store_owner = owner;
                    store_owner.mode = 0o755;
                    let slot = Arc::new(MemorySlot {
                        store: MemoryStore::new(name, memory_limit, store_owner),
                        present: AtomicBool::new(true),
                    });
                    seed_group_document(&slot.store, owner);
                    memory.push(slot.clone());
                    Entry::Memory(slot)
                }
                SourceSpec::Dataset { format, path } => Entry::Dataset(open_dataset(*format, path)?),
                SourceSpec::Directory { path } => Entry::Dir(DirNode::scanned(path)),
            };
            entries.push((spec.name(), entry));
        }
        if entries.len() == 1 {
            let (_, root) = entries.remove(0);
            return Ok(Catalog { root, memory });
        }
        let mut listing = Listing::default();
        for (name, entry) in entries {
            if listing.children.insert(name.clone(), entry).is_some() {
                return Err(CatalogError::DuplicateName(name));
            }
        }
        Ok(Catalog {
            root: Entry::Dir(DirNode::fixed(listing)),
            memory,
        })
    }
}

/// A new memory store is an empty group: give it the `zarr.json` that says so (users may
/// overwrite or delete it like any file).
fn seed_group_document(store: &MemoryStore, owner: Owner) {
    use crate::source::memory::ROOT;
    let doc = render::group_document(&Attributes::new(), Vec::new());
    let file_owner = Owner { mode: 0o644, ..owner };
    if let Ok(attr) = store.create(ROOT, "zarr.json", file_owner, true, false) {
        if let Err(e) = store.write(attr.ino, 0, &doc) {
            warn!(store = store.name(), "cannot seed zarr.json: {e}");
        }
        store.release(attr.ino);
    }
}

fn open_dataset(
    format: &'static dyn Source,
    path: &Path,
) -> Result<Arc<DatasetNode>, crate::source::SourceError> {
    Ok(dataset_node(format, path, format.open(path)?))
}

fn dataset_node(format: &'static dyn Source, path: &Path, dataset: Dataset) -> Arc<DatasetNode> {
    let Dataset { root, planner } = dataset;
    let id = NEXT_DATASET.fetch_add(1, Ordering::Relaxed);
    debug!(path = %path.display(), format = format.name(), id, "opened dataset");
    Arc::new(DatasetNode {
        id,
        format: format.name(),
        path: path.into(),
        root,
        planner,
    })
}

impl Entry {
    /// Whether this entry's group document changes while mounted (a mirrored directory, or
    /// a memory store below).
    pub fn is_live(&self) -> bool {
        match self {
            Entry::Dir(dir) => dir.is_scanned() || dir.listing().children.values().any(Entry::is_live),
            Entry::Dataset(_) => false,
            Entry::Memory(_) => true,
        }
    }

    /// The group document (`zarr.json`) of this entry, with consolidated metadata.
    pub fn group_document(&self) -> Vec<u8> {
        match self {
            Entry::Dir(dir) if !self.has_memory() => dir
                .document(|| render::group_document(&dir.attributes(), self.consolidated()))
                .to_vec(),
            Entry::Dir(dir) => render::group_document(&dir.attributes(), self.consolidated()),
            Entry::Dataset(ds) => render::group_document(&ds.root.attributes, self.consolidated()),
            Entry::Memory(slot) => {
                serde_json::to_vec_pretty(&memory_documents(&slot.store, "").0).unwrap_or_default()
            }
        }
    }

    /// Whether a memory store is below (its documents change without a rescan).
    fn has_memory(&self) -> bool {
        match self {
            Entry::Dir(dir) => dir.listing().children.values().any(Entry::has_memory),
            Entry::Dataset(_) => false,
            Entry::Memory(_) => true,
        }
    }

    /// Whether two entries are the same node.
    pub fn same(&self, other: &Entry) -> bool {
        match (self, other) {
            (Entry::Dir(a), Entry::Dir(b)) => Arc::ptr_eq(a, b),
            (Entry::Dataset(a), Entry::Dataset(b)) => Arc::ptr_eq(a, b),
            (Entry::Memory(a), Entry::Memory(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// Consolidated entries for everything below this entry.
    pub fn consolidated(&self) -> Vec<ConsolidatedEntry> {
        let mut out = Vec::new();
        self.collect("", &mut out);
        out
    }

    fn collect(&self, prefix: &str, out: &mut Vec<ConsolidatedEntry>) {
        match self {
            Entry::Dir(dir) => {
                for (name, child) in &dir.listing().children {
                    let path = join(prefix, name);
                    match child {
                        Entry::Memory(slot) if !slot.present.load(Ordering::Acquire) => continue,
                        Entry::Memory(slot) => {
                            let (root, below) = memory_documents(&slot.store, &path);
                            out.push((path, root));
                            out.extend(below);
                        }
                        Entry::Dir(sub) => {
                            out.push((path.clone(), render::nested_group_value(&sub.attributes())));
                            child.collect(&path, out);
                        }
                        Entry::Dataset(ds) => {
                            out.push((path.clone(), render::nested_group_value(&ds.root.attributes)));
                            child.collect(&path, out);
                        }
                    }
                }
            }
            Entry::Dataset(ds) => out.extend(render::consolidated_entries(&ds.root, prefix)),
            Entry::Memory(slot) => out.extend(memory_documents(&slot.store, prefix).1),
        }
    }
}

/// A memory store's metadata as consolidated entries under `prefix`: its root group's value
/// (an empty group if it has none) and the entries of every node below. Documents that are
/// not valid JSON are left out; nested groups' own consolidated blocks are emptied, as
/// zarr-python does.
fn memory_documents(store: &MemoryStore, prefix: &str) -> (Value, Vec<ConsolidatedEntry>) {
    let mut root = render::nested_group_value(&Attributes::new());
    let mut below = Vec::new();
    for (path, bytes) in store.metadata_documents() {
        let Ok(mut value) = serde_json::from_slice::<Value>(&bytes) else {
            continue;
        };
        if let Some(object) = value.as_object_mut()
            && object.contains_key("consolidated_metadata")
        {
            object.insert(
                "consolidated_metadata".into(),
                json!({"kind": "inline", "must_understand": false, "metadata": {}}),
            );
        }
        if path.is_empty() {
            root = value;
        } else {
            below.push((join(prefix, &path), value));
        }
    }
    (root, below)
}
