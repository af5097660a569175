//! The mount's tree of sources, above the datasets' own Zarr trees: the root, mirrored
//! directories, opened datasets and memory stores (ARCHITECTURE.md §1, "Tree rules").
//!
//! A directory is scanned on first use: each entry is detected by the format registry and
//! opened (metadata only); what fails is left out, logged, and listed under the directory
//! group's `skipped` attribute. Group documents consolidate everything below them; those
//! above a memory store are rendered afresh on every read (they change as users write).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use serde_json::{Value, json};
use tracing::{debug, warn};

use crate::source::memory::{MemoryStore, Owner};
use crate::source::{ChunkPlanner, Dataset, Member, Source, SourceSpec, detect};
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

/// A group that mirrors a directory, or the root that holds several sources.
pub struct DirNode {
    path: Option<PathBuf>,
    listing: OnceLock<Listing>,
}

#[derive(Default)]
pub struct Listing {
    pub children: BTreeMap<String, Entry>,
    pub skipped: Vec<Skipped>,
}

/// A dataset left out of the tree, and why.
pub struct Skipped {
    pub path: String,
    pub reason: String,
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
        let root = DirNode {
            path: None,
            listing: OnceLock::from(listing),
        };
        Ok(Catalog {
            root: Entry::Dir(Arc::new(root)),
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

impl DirNode {
    fn scanned(path: &Path) -> Arc<Self> {
        Arc::new(DirNode {
            path: Some(path.into()),
            listing: OnceLock::new(),
        })
    }

    /// The children, scanning the directory on first use.
    pub fn listing(&self) -> &Listing {
        self.listing.get_or_init(|| match &self.path {
            Some(path) => scan(path),
            None => Listing::default(),
        })
    }

    pub fn attributes(&self) -> Attributes {
        let mut attributes = Attributes::new();
        if let Some(path) = &self.path {
            attributes.insert("source".into(), json!(path.display().to_string()));
        }
        let skipped = &self.listing().skipped;
        if !skipped.is_empty() {
            let list: Vec<_> = skipped
                .iter()
                .map(|s| json!({"path": s.path, "reason": s.reason}))
                .collect();
            attributes.insert("skipped".into(), Value::Array(list));
        }
        attributes
    }
}

/// Mirrors one directory level. Hidden entries are ignored; symlinks are followed only
/// when they stay inside the directory; files no format recognises are not datasets.
fn scan(dir: &Path) -> Listing {
    let mut listing = Listing::default();
    let read = match std::fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) => {
            skip_entry(&mut listing, dir, format!("cannot list directory: {e}"));
            return listing;
        }
    };
    let base = dir.canonicalize().unwrap_or_else(|_| dir.into());
    let mut names: Vec<_> = read.filter_map(Result::ok).map(|e| e.path()).collect();
    names.sort();
    let taken = add_file_groups(&names, &base, &mut listing);
    for path in names.into_iter().filter(|p| !taken.contains(p)) {
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
            skip_entry(&mut listing, &path, "name is not valid UTF-8".into());
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        if name == "zarr.json" {
            debug!(path = %path.display(), "a source's own zarr.json is not shown");
            continue;
        }
        if path.is_symlink() && !path.canonicalize().is_ok_and(|target| target.starts_with(&base)) {
            skip_entry(
                &mut listing,
                &path,
                "symbolic link leads outside the source directory".into(),
            );
            continue;
        }
        let entry = match detect(&path) {
            Some(format) => match open_dataset(format, &path) {
                Ok(node) => Entry::Dataset(node),
                Err(e) => {
                    skip_entry(
                        &mut listing,
                        &path,
                        format!("not a readable {} dataset: {e}", format.name()),
                    );
                    continue;
                }
            },
            None if path.is_dir() => Entry::Dir(DirNode::scanned(&path)),
            None => {
                debug!(path = %path.display(), "not a dataset");
                continue;
            }
        };
        listing.children.insert(name, entry);
    }
    add_collections(dir, &mut listing);
    listing
}

/// Adds the datasets formats make of several files of the directory (numbered WebDataset
/// shards), and returns the files they took. A name taken by another dataset's group is
/// skipped with a reason.
fn add_file_groups(names: &[PathBuf], base: &Path, listing: &mut Listing) -> HashSet<PathBuf> {
    let files: Vec<PathBuf> = names
        .iter()
        .filter(|p| {
            let visible = p
                .file_name()
                .is_some_and(|n| !n.to_string_lossy().starts_with('.'));
            let inside = !p.is_symlink() || p.canonicalize().is_ok_and(|t| t.starts_with(base));
            visible && inside && p.is_file()
        })
        .cloned()
        .collect();
    let mut taken = HashSet::new();
    for format in crate::source::FORMATS {
        for group in format.datasets_in(&files) {
            taken.extend(group.files.iter().cloned());
            let shown = group.files.first().cloned().unwrap_or_default();
            let node = match group.dataset {
                Ok(dataset) if !listing.children.contains_key(&group.name) => {
                    dataset_node(*format, &shown, dataset)
                }
                Ok(_) => {
                    skip_entry(listing, &shown, format!("the name '{}' is taken", group.name));
                    continue;
                }
                Err(e) => {
                    skip_entry(
                        listing,
                        &shown,
                        format!("not a readable {} dataset: {e}", format.name()),
                    );
                    continue;
                }
            };
            listing.children.insert(group.name, Entry::Dataset(node));
        }
    }
    taken
}

fn skip_entry(listing: &mut Listing, path: &Path, reason: String) {
    warn!(path = %path.display(), "skipped: {reason}");
    listing.skipped.push(Skipped {
        path: path.display().to_string(),
        reason,
    });
}

/// Adds the views formats build over datasets side by side (a plotfile run's time series).
/// A view whose name is taken by a real entry is left out.
fn add_collections(dir: &Path, listing: &mut Listing) {
    for format in crate::source::FORMATS {
        let datasets: Vec<(&String, &Arc<DatasetNode>)> = listing
            .children
            .iter()
            .filter_map(|(name, entry)| match entry {
                Entry::Dataset(ds) if ds.format == format.name() => Some((name, ds)),
                _ => None,
            })
            .collect();
        if datasets.len() < 2 {
            continue;
        }
        let members: Vec<Member> = datasets
            .iter()
            .map(|(name, ds)| Member {
                name,
                root: &ds.root,
                planner: &ds.planner,
            })
            .collect();
        let views = format.collections(&members);
        for (name, dataset) in views {
            if listing.children.contains_key(&name) {
                warn!(dir = %dir.display(), "a {} view is not shown: '{name}' is taken", format.name());
                continue;
            }
            let node = dataset_node(*format, dir, dataset);
            listing.children.insert(name, Entry::Dataset(node));
        }
    }
}

impl Entry {
    /// Whether this entry's group document changes while mounted (a memory store is below).
    pub fn is_live(&self) -> bool {
        match self {
            Entry::Dir(dir) => dir.listing().children.values().any(Entry::is_live),
            Entry::Dataset(_) => false,
            Entry::Memory(_) => true,
        }
    }

    /// The group document (`zarr.json`) of this entry, with consolidated metadata.
    pub fn group_document(&self) -> Vec<u8> {
        match self {
            Entry::Dir(dir) => render::group_document(&dir.attributes(), self.consolidated()),
            Entry::Dataset(ds) => render::group_document(&ds.root.attributes, self.consolidated()),
            Entry::Memory(slot) => {
                serde_json::to_vec_pretty(&memory_documents(&slot.store, "").0).unwrap_or_default()
            }
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
