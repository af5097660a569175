//! Inode numbers. Memory stores number their own nodes; their inodes are `MEMORY_BASE ×
//! (store index + 1) + local inode`. Everything else (catalog groups, dataset groups, arrays,
//! chunk directories and files, `zarr.json`s) is virtual: numbered on lookup in a table that
//! remembers each node's location and how many lookups the kernel holds, so a path maps to
//! the same inode for as long as the kernel knows it, and the entry goes when the kernel
//! forgets it (the table is as large as the kernel's inode cache, not as all names ever
//! seen, and a replaced dataset's data goes with its last inode).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;

use crate::catalog::{DatasetNode, Entry};
use crate::tree::ArraySpec;

pub const ROOT: u64 = 1;

/// Inodes at or above this belong to memory stores; 2^40 local inodes per store is more
/// than any store can hold within a memory limit.
pub const MEMORY_BASE: u64 = 1 << 40;

/// Where a virtual inode points.
#[derive(Clone)]
pub enum Loc {
    /// A catalog group (the root of several sources, a mirrored directory) or a dataset's root.
    Entry(Entry),
    /// A group inside a dataset, by member names from its root.
    Group(Arc<DatasetNode>, Arc<[String]>),
    Array(Arc<ArrayRef>),
    /// A chunk-key directory: `c/` (empty prefix) or `c/i/…`.
    ChunkDir(Arc<ArrayRef>, Arc<[u64]>),
    Chunk(Arc<ArrayRef>, Arc<[u64]>),
    /// The `zarr.json` of the directory-like location it wraps.
    Meta(Box<Loc>),
}

impl Loc {
    /// Whether `other` points where this does. Only catalog entries can change under a
    /// name; everything inside a dataset is fixed by its parent.
    fn same(&self, other: &Loc) -> bool {
        match (self, other) {
            (Loc::Entry(a), Loc::Entry(b)) => a.same(b),
            (Loc::Meta(a), Loc::Meta(b)) => a.same(b),
            _ => true,
        }
    }
}

/// An array with the dataset it belongs to and its path there (for logs).
pub struct ArrayRef {
    pub dataset: Arc<DatasetNode>,
    pub spec: Arc<ArraySpec>,
    pub path: String,
}

pub struct Inode {
    pub loc: Loc,
    pub parent: u64,
    name: String,
    /// Lookups answered with this inode that the kernel has not forgotten yet.
    lookups: AtomicU64,
    /// Rendered `zarr.json` of a `Meta` whose document never changes.
    pub document: OnceLock<Arc<[u8]>>,
    /// Of a chunk file: bytes the daemon has served (see `ZarrFs::open`).
    pub served: AtomicU64,
}

#[derive(Default)]
struct Table {
    inodes: HashMap<u64, Arc<Inode>>,
    by_name: HashMap<(u64, String), u64>,
    next: u64,
}

#[derive(Default)]
pub struct InodeTable {
    table: RwLock<Table>,
}

impl InodeTable {
    pub fn new(root: Loc) -> Self {
        let root = Arc::new(Inode {
            loc: root,
            parent: ROOT,
            name: String::new(),
            lookups: AtomicU64::new(1), // the kernel never forgets the root
            document: OnceLock::new(),
            served: AtomicU64::new(0),
        });
        let table = Table {
            inodes: HashMap::from([(ROOT, root)]),
            by_name: HashMap::new(),
            next: ROOT + 1,
        };
        InodeTable {
            table: RwLock::new(table),
        }
    }

    pub fn get(&self, ino: u64) -> Option<Arc<Inode>> {
        self.table.read().inodes.get(&ino).cloned()
    }

    /// The inode of `name` under `parent` for a lookup the kernel will be answered (one more
    /// lookup it holds), numbering it with `loc` if it has none, or when the name has come
    /// to mean another catalog entry (a directory's dataset replaced while mounted): the old
    /// inode stays valid for whoever holds it open, until the kernel forgets it.
    pub fn child(&self, parent: u64, name: &str, loc: Loc) -> u64 {
        let key = (parent, name.to_string());
        let counted = |table: &Table| {
            let ino = *table.by_name.get(&key)?;
            let node = table.inodes.get(&ino).filter(|node| node.loc.same(&loc))?;
            node.lookups.fetch_add(1, Ordering::Relaxed);
            Some(ino)
        };
        if let Some(ino) = counted(&self.table.read()) {
            return ino;
        }
        let mut table = self.table.write();
        if let Some(ino) = counted(&table) {
            return ino;
        }
        let ino = table.next;
        table.next += 1;
        table.inodes.insert(
            ino,
            Arc::new(Inode {
                loc,
                parent,
                name: key.1.clone(),
                lookups: AtomicU64::new(1),
                document: OnceLock::new(),
                served: AtomicU64::new(0),
            }),
        );
        table.by_name.insert(key, ino);
        ino
    }

    /// The inode `name` has now, if the kernel holds one for it and it still means `loc`
    /// (for listings, which give the kernel no inode to hold).
    pub fn known(&self, parent: u64, name: &str, loc: &Loc) -> Option<u64> {
        let table = self.table.read();
        let ino = *table.by_name.get(&(parent, name.to_string()))?;
        table
            .inodes
            .get(&ino)
            .filter(|node| node.loc.same(loc))
            .map(|_| ino)
    }

    /// The kernel dropped `n` lookups of `ino`; at none left the entry goes.
    pub fn forget(&self, ino: u64, n: u64) {
        let mut table = self.table.write();
        let Some(node) = table.inodes.get(&ino) else {
            return;
        };
        let left = node.lookups.load(Ordering::Relaxed).saturating_sub(n);
        node.lookups.store(left, Ordering::Relaxed);
        if left > 0 || ino == ROOT {
            return;
        }
        let key = (node.parent, node.name.clone());
        table.inodes.remove(&ino);
        if table.by_name.get(&key) == Some(&ino) {
            table.by_name.remove(&key);
        }
    }

    /// Inodes the table holds now.
    pub fn len(&self) -> usize {
        self.table.read().inodes.len()
    }
}

/// The global inode of a memory store's local inode.
pub fn memory_ino(store: usize, local: u64) -> u64 {
    MEMORY_BASE * (store as u64 + 1) + local
}

/// (store index, local inode) of a memory inode.
pub fn split_memory_ino(ino: u64) -> Option<(usize, u64)> {
    (ino >= MEMORY_BASE).then(|| ((ino / MEMORY_BASE - 1) as usize, ino % MEMORY_BASE))
}
