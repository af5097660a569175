//! Names to inodes: lookup, listings and attributes of the virtual tree.

use std::sync::Arc;
use std::time::Duration;

use super::inode::{ArrayRef, Inode, Loc};
use super::{Attr, DirItem, FsError, FsResult, Kind, ZarrFs, is_live};
use crate::catalog::{DatasetNode, Entry};
use crate::source::memory::{self, NodeKind};
use crate::tree::{Node, chunks};

/// The inode number listings give a name the kernel has not looked up (libfuse's
/// `FUSE_UNKNOWN_INO`).
const UNKNOWN_INO: u64 = 0xffff_ffff;

/// What a name resolves to: a virtual node or a memory store's root.
enum Child {
    Virtual(Loc),
    MemoryRoot(u64),
}

impl ZarrFs {
    pub fn lookup(&self, parent: u64, name: &str) -> FsResult<(Attr, Duration)> {
        if let Some((index, slot, local)) = self.memory(parent) {
            return Ok(self.memory_attr(index, slot.store.lookup(local, name)?));
        }
        let node = self.inodes.get(parent).ok_or_else(FsError::not_found)?;
        let ino = match self.resolve(&node.loc, name)? {
            Child::Virtual(child) => self.inodes.child(parent, name, child),
            Child::MemoryRoot(ino) => return self.getattr(ino),
        };
        let attr = self.getattr(ino);
        if attr.is_err() {
            self.inodes.forget(ino, 1); // the kernel gets no inode to hold
        }
        attr
    }

    /// The kernel forgot `n` lookups of `ino`. Memory stores keep their nodes as long as
    /// they exist, whatever the kernel holds.
    pub fn forget(&self, ino: u64, n: u64) {
        if self.memory(ino).is_none() {
            self.inodes.forget(ino, n);
        }
    }

    /// Inodes of the virtual tree the daemon holds now.
    pub fn inode_count(&self) -> usize {
        self.inodes.len()
    }

    /// How long the kernel may remember that a name is missing under `parent`: as long as
    /// the entries themselves inside a dataset, whose tree never changes while mounted (Zarr
    /// clients probe `.zarray`, `.zgroup`, `.zattrs` and absent chunks over and over); not at
    /// all in directories and memory stores, which can gain entries.
    pub fn negative_ttl(&self, parent: u64) -> Option<Duration> {
        let node = self.inodes.get(parent)?;
        match node.loc {
            Loc::Entry(Entry::Dataset(_)) | Loc::Group(..) | Loc::Array(_) | Loc::ChunkDir(..) => {
                Some(self.config.source_ttl)
            }
            _ => None,
        }
    }

    fn resolve(&self, loc: &Loc, name: &str) -> FsResult<Child> {
        let meta = || Ok(Child::Virtual(Loc::Meta(Box::new(loc.clone()))));
        let virt = |loc: Loc| Ok(Child::Virtual(loc));
        match loc {
            Loc::Entry(Entry::Dir(_)) | Loc::Entry(Entry::Dataset(_)) | Loc::Group(..) | Loc::Array(_)
                if name == "zarr.json" =>
            {
                meta()
            }
            Loc::Entry(Entry::Dir(dir)) => match dir.listing().children.get(name) {
                Some(Entry::Memory(slot)) if slot.present.load(std::sync::atomic::Ordering::Acquire) => {
                    let index = self.catalog.memory.iter().position(|s| Arc::ptr_eq(s, slot));
                    let index = index.ok_or_else(FsError::not_found)?;
                    Ok(Child::MemoryRoot(self.memory_ino(index, memory::ROOT)))
                }
                Some(Entry::Memory(_)) | None => Err(FsError::not_found()),
                Some(entry) => virt(Loc::Entry(entry.clone())),
            },
            Loc::Entry(Entry::Dataset(ds)) => group_member(ds, &[], name).map(Child::Virtual),
            Loc::Group(ds, path) => group_member(ds, path, name).map(Child::Virtual),
            Loc::Array(array) if name == "c" => {
                let scalar = array.spec.shape.is_empty();
                match (scalar, chunks::any_chunk(&array.spec)) {
                    (_, false) => Err(FsError::not_found()),
                    (true, true) => virt(Loc::Chunk(array.clone(), Arc::from([]))),
                    (false, true) => virt(Loc::ChunkDir(array.clone(), Arc::from([]))),
                }
            }
            Loc::ChunkDir(array, prefix) => {
                let coord = chunks::parse_coord(name).ok_or_else(FsError::not_found)?;
                let coords: Arc<[u64]> = prefix.iter().copied().chain([coord]).collect();
                if !chunks::has_prefix(&array.spec, &coords) {
                    return Err(FsError::not_found());
                }
                if coords.len() == array.spec.shape.len() {
                    virt(Loc::Chunk(array.clone(), coords))
                } else {
                    virt(Loc::ChunkDir(array.clone(), coords))
                }
            }
            Loc::Array(_) | Loc::Entry(Entry::Memory(_)) => Err(FsError::not_found()),
            Loc::Chunk(..) | Loc::Meta(_) => Err(FsError::new(libc::ENOTDIR, "not a directory")),
        }
    }

    /// All entries of a directory, `.` and `..` first.
    pub(super) fn list(&self, ino: u64) -> FsResult<Vec<DirItem>> {
        let item = |name: &str, ino: u64, kind: Kind| DirItem {
            name: name.to_string(),
            ino,
            kind,
        };
        if let Some((index, slot, local)) = self.memory(ino) {
            let mut items = vec![item(".", ino, Kind::Dir), item("..", ino, Kind::Dir)];
            for (name, child, kind) in slot.store.readdir(local)? {
                let kind = if kind == NodeKind::Dir {
                    Kind::Dir
                } else {
                    Kind::File
                };
                items.push(item(&name, self.memory_ino(index, child), kind));
            }
            return Ok(items);
        }
        let node = self.inodes.get(ino).ok_or_else(FsError::not_found)?;
        let names: Vec<String> = match &node.loc {
            Loc::Entry(Entry::Dir(dir)) => {
                let present = |e: &Entry| match e {
                    Entry::Memory(slot) => slot.present.load(std::sync::atomic::Ordering::Acquire),
                    _ => true,
                };
                let listing = dir.listing();
                let children = listing.children.iter().filter(|(_, e)| present(e));
                std::iter::once("zarr.json".to_string())
                    .chain(children.map(|(n, _)| n.clone()))
                    .collect()
            }
            Loc::Entry(Entry::Dataset(ds)) => group_names(ds, &[]),
            Loc::Group(ds, path) => group_names(ds, path),
            Loc::Array(array) => {
                let mut names = vec!["zarr.json".to_string()];
                if chunks::any_chunk(&array.spec) {
                    names.push("c".into());
                }
                names
            }
            Loc::ChunkDir(array, prefix) => chunks::next_coords(&array.spec, prefix)
                .into_iter()
                .map(|c| c.to_string())
                .collect(),
            Loc::Entry(Entry::Memory(_)) | Loc::Chunk(..) | Loc::Meta(_) => {
                return Err(FsError::new(libc::ENOTDIR, "not a directory"));
            }
        };
        let mut items = vec![item(".", ino, Kind::Dir), item("..", node.parent, Kind::Dir)];
        for name in names {
            // Listings number nothing: the kernel holds no inode from them. A name without
            // one gets FUSE's "unknown" number, as libfuse gives every name by default; its
            // lookup numbers it. The kind comes from the location alone: attributes would
            // render a child zarr.json just for its size.
            let (child, kind) = match self.resolve(&node.loc, &name)? {
                Child::Virtual(loc) => (
                    self.inodes.known(ino, &name, &loc).unwrap_or(UNKNOWN_INO),
                    loc_kind(&loc),
                ),
                Child::MemoryRoot(child) => (child, Kind::Dir),
            };
            items.push(item(&name, child, kind));
        }
        Ok(items)
    }

    pub(super) fn virtual_attr(&self, ino: u64, node: &Inode) -> FsResult<(Attr, Duration)> {
        let size = match &node.loc {
            Loc::Meta(_) => self.document(node).len() as u64,
            Loc::Chunk(array, coords) => array.spec.chunk_file_size(coords),
            _ => 0,
        };
        let kind = loc_kind(&node.loc);
        let owner = self.config.owner;
        // A dataset's root can be replaced or removed by its directory's rescan; what is
        // inside it cannot change.
        let ttl = if is_live(&node.loc) {
            Duration::ZERO
        } else if matches!(node.loc, Loc::Entry(_)) {
            self.config.catalog_ttl
        } else {
            self.config.source_ttl
        };
        Ok((Attr::source(ino, kind, size, owner, self.mounted_at), ttl))
    }
}

/// Files are `zarr.json`s and chunks; everything else is a directory. (Memory-store roots,
/// which have no virtual inode, are directories too.)
fn loc_kind(loc: &Loc) -> Kind {
    match loc {
        Loc::Meta(_) | Loc::Chunk(..) => Kind::File,
        _ => Kind::Dir,
    }
}

/// The location of member `name` of the group at `path` in a dataset.
fn group_member(ds: &Arc<DatasetNode>, path: &[String], name: &str) -> FsResult<Loc> {
    let group = ds.root.subgroup(path).ok_or_else(FsError::not_found)?;
    match group.members.get(name).ok_or_else(FsError::not_found)? {
        Node::Group(_) => Ok(Loc::Group(
            ds.clone(),
            path.iter().cloned().chain([name.to_string()]).collect(),
        )),
        Node::Array(spec) => {
            let path = path
                .iter()
                .map(String::as_str)
                .chain([name])
                .collect::<Vec<_>>()
                .join("/");
            Ok(Loc::Array(Arc::new(ArrayRef {
                dataset: ds.clone(),
                spec: spec.clone(),
                path,
            })))
        }
    }
}

fn group_names(ds: &DatasetNode, path: &[String]) -> Vec<String> {
    let members = ds
        .root
        .subgroup(path)
        .map(|g| g.members.keys().cloned().collect())
        .unwrap_or_default();
    std::iter::once("zarr.json".to_string())
        .chain::<Vec<String>>(members)
        .collect()
}
