//! The filesystem: inodes, attributes, directory listings, reads and writes, as plain
//! methods returning [`FsResult`], so it can be tested without FUSE. [`fuse`] adapts it to
//! fuser. It knows sources only through the catalog, the tree and the chunk planner.
//!
//! Layout served (ARCHITECTURE.md §1): every group and array is a directory with a
//! `zarr.json`; an array's chunks are `c/i/j/…` files produced on demand through the chunk
//! cache. Memory stores are passed through to [`MemoryStore`]; everything else is read-only.

mod attr;
pub mod error;
pub mod fuse;
mod inode;
mod namespace;
mod read;
mod writes;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;

pub use attr::{Attr, Kind, Ownership, StatFs};
pub use error::{FsError, FsResult};
use inode::{InodeTable, Loc};
pub use read::{ReadPath, ReadReply};

use crate::cache::ChunkCache;
use crate::catalog::{Catalog, Entry, MemorySlot};
use crate::io::{Buffer, IoEngine};
use crate::source::memory::MemoryStore;
use crate::tree::render;

/// Filesystem settings derived from the mount options.
#[derive(Clone, Debug)]
pub struct FsConfig {
    /// Refuse writes everywhere, memory stores included (`-o ro`).
    pub read_only: bool,
    /// Owner and modes of the read-only tree (and of memory stores' roots).
    pub owner: Ownership,
    /// How long the kernel may cache entries and attributes of source trees. They are
    /// immutable while mounted, so this is long; it spares the FUSE round trip per `stat`.
    pub source_ttl: Duration,
    /// The same for the datasets of mirrored directories, which can appear, change or go
    /// while mounted (the directory is read again at most this often).
    pub catalog_ttl: Duration,
    /// The same for memory stores. Every change to them passes through the kernel, which
    /// keeps its own caches coherent, so a short TTL only bounds staleness after a remount.
    pub memory_ttl: Duration,
}

impl Default for FsConfig {
    fn default() -> Self {
        FsConfig {
            read_only: false,
            owner: Ownership {
                uid: nix::unistd::geteuid().as_raw(),
                gid: nix::unistd::getegid().as_raw(),
                umask: 0o022,
            },
            source_ttl: Duration::from_secs(24 * 3600),
            catalog_ttl: crate::catalog::RESCAN_AFTER,
            memory_ttl: Duration::from_secs(1),
        }
    }
}

/// Bytes a read returns.
pub enum Data {
    Owned(Vec<u8>),
    /// Part of a metadata document.
    Shared(Arc<[u8]>, std::ops::Range<usize>),
    /// Part of a cached chunk.
    Chunk(Arc<Buffer>, std::ops::Range<usize>),
    /// Exactly the part of a chunk asked for, read from its source.
    Part(Buffer),
    /// Exactly the part of a chunk asked for, mapped from its source's page cache.
    Mapped(crate::io::Mapped),
}

impl Data {
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Data::Owned(bytes) => bytes,
            Data::Shared(bytes, range) => &bytes[range.clone()],
            Data::Chunk(bytes, range) => &bytes[range.clone()],
            Data::Part(bytes) => bytes,
            Data::Mapped(bytes) => bytes.as_slice(),
        }
    }
}

/// How the kernel should treat an open file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenMode {
    /// Contents never change: keep the page cache across opens.
    pub keep_cache: bool,
    /// Contents may change without the kernel knowing: bypass the page cache.
    pub direct_io: bool,
}

/// One directory entry of a listing.
#[derive(Clone, Debug)]
pub struct DirItem {
    pub name: String,
    pub ino: u64,
    pub kind: Kind,
}

pub struct ZarrFs {
    catalog: Catalog,
    inodes: InodeTable,
    read_path: ReadPath,
    config: FsConfig,
    mounted_at: SystemTime,
    listings: Mutex<HashMap<u64, Arc<[DirItem]>>>,
    next_handle: AtomicU64,
    served: Arc<Served>,
}

/// What chunk reads returned to readers.
#[derive(Debug, Default)]
pub struct Served {
    pub reads: AtomicU64,
    pub bytes: AtomicU64,
    /// Chunk files opened through the kernel's page cache (read whole before).
    pub page_cache_opens: AtomicU64,
}

impl ZarrFs {
    pub fn new(catalog: Catalog, read_path: ReadPath, config: FsConfig) -> Self {
        // A memory root is served by its store; the table's root entry is then never consulted.
        ZarrFs {
            inodes: InodeTable::new(Loc::Entry(catalog.root.clone())),
            catalog,
            read_path,
            config,
            mounted_at: SystemTime::now(),
            listings: Mutex::new(HashMap::new()),
            next_handle: AtomicU64::new(1),
            served: Arc::default(),
        }
    }

    pub fn cache(&self) -> &ChunkCache {
        &self.read_path.cache
    }

    pub fn io(&self) -> &dyn IoEngine {
        &*self.read_path.io
    }

    pub fn prefetching(&self) -> bool {
        self.read_path.prefetch.is_some()
    }

    pub fn served(&self) -> &Served {
        &self.served
    }

    /// The memory store an inode belongs to, with its local inode.
    fn memory(&self, ino: u64) -> Option<(usize, &MemorySlot, u64)> {
        if ino == inode::ROOT {
            return match &self.catalog.root {
                Entry::Memory(slot) => Some((0, slot, crate::source::memory::ROOT)),
                _ => None,
            };
        }
        let (index, local) = inode::split_memory_ino(ino)?;
        let slot = self.catalog.memory.get(index)?;
        Some((index, slot, local))
    }

    /// The global inode of a memory store's local inode (the root store's root is inode 1).
    fn memory_ino(&self, index: usize, local: u64) -> u64 {
        let is_root_store = matches!(self.catalog.root, Entry::Memory(_));
        if is_root_store && local == crate::source::memory::ROOT {
            inode::ROOT
        } else {
            inode::memory_ino(index, local)
        }
    }

    fn memory_attr(&self, index: usize, attr: crate::source::memory::NodeAttr) -> (Attr, Duration) {
        let ino = self.memory_ino(index, attr.ino);
        (Attr::from_memory(ino, &attr), self.config.memory_ttl)
    }

    fn store_of(&self, ino: u64) -> FsResult<(usize, &MemoryStore, u64)> {
        match self.memory(ino) {
            Some((index, slot, local)) => Ok((index, &slot.store, local)),
            None => Err(FsError::read_only()),
        }
    }

    fn writable_store(&self, ino: u64) -> FsResult<(usize, &MemoryStore, u64)> {
        if self.config.read_only {
            return Err(FsError::read_only());
        }
        self.store_of(ino)
    }

    pub fn getattr(&self, ino: u64) -> FsResult<(Attr, Duration)> {
        if let Some((index, slot, local)) = self.memory(ino) {
            return Ok(self.memory_attr(index, slot.store.getattr(local)?));
        }
        let node = self.inodes.get(ino).ok_or_else(FsError::not_found)?;
        self.virtual_attr(ino, &node)
    }

    /// Reads and waits for the answer; [`ZarrFs::read_with`] does not wait.
    pub fn read(&self, ino: u64, offset: u64, size: u32) -> FsResult<Data> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.read_with(
            ino,
            offset,
            size,
            Box::new(move |result| {
                let _ = tx.send(result);
            }),
        );
        rx.recv()
            .unwrap_or_else(|_| Err(FsError::chunk("the read was dropped".into())))
    }

    /// Reads `size` bytes at `offset` and hands them to `reply`, now or, for a chunk that
    /// must be fetched, from the thread that fetched it.
    pub fn read_with(&self, ino: u64, offset: u64, size: u32, reply: ReadReply) {
        if let Some((_, slot, local)) = self.memory(ino) {
            return reply(
                slot.store
                    .read(local, offset, size)
                    .map(Data::Owned)
                    .map_err(FsError::from),
            );
        }
        let Some(node) = self.inodes.get(ino) else {
            return reply(Err(FsError::not_found()));
        };
        match &node.loc {
            Loc::Meta(_) => {
                let bytes = self.document(&node);
                let range = clamp(offset, size, bytes.len());
                reply(Ok(Data::Shared(bytes, range)))
            }
            Loc::Chunk(array, coords) => {
                let counted = node.clone();
                let reply: ReadReply = Box::new(move |result| {
                    if let Ok(data) = &result {
                        counted
                            .served
                            .fetch_add(data.as_slice().len() as u64, Ordering::Relaxed);
                    }
                    reply(result)
                });
                self.read_chunk(array, coords, offset, size, reply)
            }
            _ => reply(Err(FsError::new(libc::EISDIR, "is a directory"))),
        }
    }

    /// A `zarr.json`, rendered once if it never changes, every time if a memory store is below.
    fn document(&self, node: &inode::Inode) -> Arc<[u8]> {
        let render = || -> Vec<u8> {
            match &node.loc {
                Loc::Meta(inner) => match &**inner {
                    Loc::Entry(entry) => entry.group_document(),
                    Loc::Group(ds, path) => {
                        let group = ds.root.subgroup(path).cloned().unwrap_or_default();
                        render::group_document(&group.attributes, render::consolidated_entries(&group, ""))
                    }
                    Loc::Array(array) => render::array_document(&array.spec),
                    _ => Vec::new(),
                },
                _ => Vec::new(),
            }
        };
        if is_live(&node.loc) {
            return render().into();
        }
        node.document.get_or_init(|| render().into()).clone()
    }

    pub fn open(&self, ino: u64, write: bool, truncate: bool) -> FsResult<OpenMode> {
        if let Some((_, slot, local)) = self.memory(ino) {
            if write && self.config.read_only {
                return Err(FsError::read_only());
            }
            slot.store.open(local, truncate)?;
            return Ok(OpenMode::default());
        }
        let node = self.inodes.get(ino).ok_or_else(FsError::not_found)?;
        if write {
            return Err(FsError::read_only());
        }
        let Loc::Chunk(array, coords) = &node.loc else {
            let live = is_live(&node.loc);
            return Ok(OpenMode {
                keep_cache: !live,
                direct_io: live,
            });
        };
        // A chunk file's first read bypasses the kernel's page cache: its bytes are already
        // cached once, in the source files' page cache (byte-range chunks) or the chunk cache
        // (decoded ones), and a direct read goes to the user's buffer in max_read pieces, one
        // copy less (with the plotfile benchmark a cold read was 22% faster; README,
        // Benchmarks). A file read whole once (the daemon has served as many bytes as it
        // holds) is likely to be read again (epochs, re-slicing): from then on it is opened
        // through the page cache, which the kernel fills on that read and serves every later
        // one from, without the daemon. `keep_cache` on direct
        // opens too, which would otherwise drop those pages. Unless the source has changed
        // since: then the pages go (no `keep_cache`) and the direct reads report the change.
        let size = array.spec.chunk_file_size(coords);
        if node.served.load(Ordering::Relaxed) < size {
            return Ok(OpenMode {
                keep_cache: true,
                direct_io: true,
            });
        }
        let unchanged = (array.dataset.planner.plan(array.spec.id, coords))
            .is_ok_and(|plan| crate::io::verify(&plan.extents).is_ok());
        if unchanged {
            self.served.page_cache_opens.fetch_add(1, Ordering::Relaxed);
        } else {
            node.served.store(0, Ordering::Relaxed);
        }
        Ok(OpenMode {
            keep_cache: unchanged,
            direct_io: !unchanged,
        })
    }

    /// Whether writes to `ino` could succeed (it is in a memory store and the mount is rw).
    pub fn is_writable(&self, ino: u64) -> bool {
        !self.config.read_only && self.memory(ino).is_some()
    }

    pub fn release(&self, ino: u64) {
        if let Some((_, slot, local)) = self.memory(ino) {
            slot.store.release(local);
        }
    }

    /// Snapshots a directory's entries under a handle, so paging through it is consistent.
    pub fn opendir(&self, ino: u64) -> FsResult<u64> {
        let items: Arc<[DirItem]> = self.list(ino)?.into();
        let handle = self.next_handle.fetch_add(1, Ordering::Relaxed);
        self.listings.lock().insert(handle, items);
        Ok(handle)
    }

    pub fn readdir(&self, handle: u64) -> FsResult<Arc<[DirItem]>> {
        self.listings
            .lock()
            .get(&handle)
            .cloned()
            .ok_or_else(|| FsError::new(libc::EBADF, "no such directory handle"))
    }

    pub fn releasedir(&self, handle: u64) {
        self.listings.lock().remove(&handle);
    }

    pub fn statfs(&self, ino: u64) -> StatFs {
        let usages: Vec<_> = match self.memory(ino) {
            Some((_, slot, _)) => vec![slot.store.usage()],
            None => self
                .catalog
                .memory
                .iter()
                .map(|slot| slot.store.usage())
                .collect(),
        };
        StatFs::from_usages(&usages)
    }
}

fn is_live(loc: &Loc) -> bool {
    match loc {
        Loc::Meta(inner) => is_live(inner),
        Loc::Entry(entry) => entry.is_live(),
        _ => false,
    }
}

#[cfg(test)]
mod tests;

/// The part `offset..offset + size` of a file of `len` bytes.
fn clamp(offset: u64, size: u32, len: usize) -> std::ops::Range<usize> {
    let start = usize::try_from(offset).unwrap_or(usize::MAX).min(len);
    start..start.saturating_add(size as usize).min(len)
}
