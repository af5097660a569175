//! `memory://NAME`: a writable directory tree held in RAM, for sharing Zarr data between
//! processes. It implements the POSIX subset zarr-python's `LocalStore` uses on write (see
//! ARCHITECTURE.md §2 "Memory store") and knows nothing of FUSE: the filesystem layer calls
//! it with local inode numbers and maps [`MemError`] to errnos.
//!
//! Memory is bounded: file capacity plus a fixed charge per node and name count against
//! `limit`, reserved before anything is allocated, so a write past the limit fails with
//! `NoSpace` and changes nothing. Locking: the namespace sits under one `RwLock`, each file's
//! bytes under their own, always taken in that order, so writers of different files and
//! readers run in parallel.

mod budget;
mod errors;
mod node;

use std::collections::HashMap;
use std::time::SystemTime;

use parking_lot::{RwLock, RwLockWriteGuard};

use budget::Budget;
pub use errors::MemError;
use node::{Body, FileData, Inode};
pub use node::{NodeAttr, NodeKind};

/// The local inode number of a store's root directory.
pub const ROOT: u64 = 1;

/// Longest name accepted, as on most Linux filesystems.
const NAME_MAX: usize = 255;

/// Attribute changes requested by `setattr`; `None` leaves a field alone.
#[derive(Clone, Debug, Default)]
pub struct SetAttr {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<SystemTime>,
    pub mtime: Option<SystemTime>,
}

/// Who creates a node, and with which permission bits.
#[derive(Clone, Copy, Debug)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

/// Space figures for `statfs`.
#[derive(Clone, Copy, Debug)]
pub struct StoreUsage {
    pub limit: u64,
    pub used: u64,
    pub nodes: u64,
}

type Result<T> = std::result::Result<T, MemError>;

#[derive(Debug)]
pub struct MemoryStore {
    name: String,
    budget: Budget,
    state: RwLock<State>,
}

#[derive(Debug)]
struct State {
    nodes: HashMap<u64, Inode>,
    next_ino: u64,
}

impl MemoryStore {
    /// An empty store whose root directory belongs to `owner`.
    pub fn new(name: &str, limit: u64, owner: Owner) -> Self {
        let root = Inode::dir(ROOT, owner);
        let store = MemoryStore {
            name: name.to_string(),
            budget: Budget::new(limit),
            state: RwLock::new(State {
                nodes: HashMap::from([(ROOT, root)]),
                next_ino: ROOT + 1,
            }),
        };
        store.budget.force(node::NODE_COST);
        store
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn usage(&self) -> StoreUsage {
        let nodes = self.state.read().nodes.len() as u64;
        StoreUsage {
            limit: self.budget.limit(),
            used: self.budget.used(),
            nodes,
        }
    }

    pub fn getattr(&self, ino: u64) -> Result<NodeAttr> {
        self.state.read().node(ino)?.attr(ino)
    }

    pub fn lookup(&self, parent: u64, name: &str) -> Result<NodeAttr> {
        let state = self.state.read();
        let ino = state.child(parent, name)?;
        state.node(ino)?.attr(ino)
    }

    /// Entries of a directory as (name, inode, kind), sorted by name.
    pub fn readdir(&self, ino: u64) -> Result<Vec<(String, u64, NodeKind)>> {
        let state = self.state.read();
        let entries = state.node(ino)?.entries()?;
        entries
            .iter()
            .map(|(name, child)| Ok((name.clone(), *child, state.node(*child)?.kind())))
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.readdir(ROOT)
            .map(|entries| entries.is_empty())
            .unwrap_or(true)
    }

    pub fn mkdir(&self, parent: u64, name: &str, owner: Owner) -> Result<NodeAttr> {
        let mut state = self.state.write();
        state.check_new_entry(parent, name)?;
        self.budget.charge(node::NODE_COST + name.len() as u64)?;
        let ino = state.insert(parent, name, Inode::dir_in(parent, owner));
        state.touch_dir(parent);
        state.node(ino)?.attr(ino)
    }

    /// Creates a regular file and opens it; an existing file is opened instead unless
    /// `exclusive` (O_EXCL). `truncate` (O_TRUNC) empties an existing file.
    pub fn create(
        &self,
        parent: u64,
        name: &str,
        owner: Owner,
        exclusive: bool,
        truncate: bool,
    ) -> Result<NodeAttr> {
        let mut state = self.state.write();
        if let Ok(ino) = state.child(parent, name) {
            if exclusive {
                return Err(MemError::Exists);
            }
            drop(state);
            return self.open(ino, truncate);
        }
        state.check_new_entry(parent, name)?;
        self.budget.charge(node::NODE_COST + name.len() as u64)?;
        let ino = state.insert(parent, name, Inode::new_file(owner));
        state.touch_dir(parent);
        let node = state.node_mut(ino)?;
        node.open += 1;
        node.attr(ino)
    }

    /// Opens a file (counted, so an unlinked file lives until its last release).
    pub fn open(&self, ino: u64, truncate: bool) -> Result<NodeAttr> {
        let mut state = self.state.write();
        let node = state.node_mut(ino)?;
        let file = node.file()?.clone();
        node.open += 1;
        if truncate {
            self.resize(&mut file.write(), 0)?;
        }
        node.attr(ino)
    }

    pub fn release(&self, ino: u64) {
        let mut state = self.state.write();
        if let Ok(node) = state.node_mut(ino) {
            node.open = node.open.saturating_sub(1);
            self.free_if_orphan(&mut state, ino);
        }
    }

    pub fn read(&self, ino: u64, offset: u64, size: u32) -> Result<Vec<u8>> {
        let file = self.state.read().node(ino)?.file()?.clone();
        let data = file.read();
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(data.bytes.len());
        let end = start.saturating_add(size as usize).min(data.bytes.len());
        Ok(data.bytes[start..end].to_vec())
    }

    /// Writes `bytes` at `offset`, zero-filling any hole. Past the limit nothing is written.
    pub fn write(&self, ino: u64, offset: u64, bytes: &[u8]) -> Result<u32> {
        let file = self.state.read().node(ino)?.file()?.clone();
        let mut data = file.write();
        let start = usize::try_from(offset).map_err(|_| MemError::TooBig)?;
        let end = start.checked_add(bytes.len()).ok_or(MemError::TooBig)?;
        if end > data.bytes.len() {
            self.resize(&mut data, end as u64)?;
        }
        data.bytes[start..end].copy_from_slice(bytes);
        data.mtime = SystemTime::now();
        u32::try_from(bytes.len()).map_err(|_| MemError::TooBig)
    }

    pub fn setattr(&self, ino: u64, change: SetAttr) -> Result<NodeAttr> {
        let mut state = self.state.write();
        let node = state.node_mut(ino)?;
        if let Some(size) = change.size {
            let file = node.file()?.clone();
            let mut data = file.write();
            self.resize(&mut data, size)?;
            data.mtime = SystemTime::now();
        }
        node.apply(&change);
        node.attr(ino)
    }

    pub fn unlink(&self, parent: u64, name: &str) -> Result<()> {
        let mut state = self.state.write();
        let ino = state.child(parent, name)?;
        if state.node(ino)?.kind() == NodeKind::Dir {
            return Err(MemError::IsDir);
        }
        self.remove_entry(&mut state, parent, name, ino);
        Ok(())
    }

    pub fn rmdir(&self, parent: u64, name: &str) -> Result<()> {
        let mut state = self.state.write();
        let ino = state.child(parent, name)?;
        if !state.node(ino)?.entries()?.is_empty() {
            return Err(MemError::NotEmpty);
        }
        self.remove_entry(&mut state, parent, name, ino);
        Ok(())
    }

    /// Hard link: a second name for a file (zarr-python's exclusive put is link + unlink).
    pub fn link(&self, ino: u64, new_parent: u64, new_name: &str) -> Result<NodeAttr> {
        let mut state = self.state.write();
        if state.node(ino)?.kind() == NodeKind::Dir {
            return Err(MemError::Permission);
        }
        state.check_new_entry(new_parent, new_name)?;
        self.budget.charge(new_name.len() as u64)?;
        state.dir_mut(new_parent)?.insert(new_name.to_string(), ino);
        state.touch_dir(new_parent);
        let node = state.node_mut(ino)?;
        node.nlink += 1;
        node.ctime = SystemTime::now();
        node.attr(ino)
    }

    /// POSIX rename: an existing target is replaced atomically (a file by a file, an empty
    /// directory by a directory); `no_replace` is RENAME_NOREPLACE.
    pub fn rename(
        &self,
        parent: u64,
        name: &str,
        new_parent: u64,
        new_name: &str,
        no_replace: bool,
    ) -> Result<()> {
        let mut state = self.state.write();
        let ino = state.child(parent, name)?;
        state.node(new_parent)?.entries()?;
        check_name(new_name)?;
        let moving_dir = state.node(ino)?.kind() == NodeKind::Dir;
        if moving_dir && state.is_ancestor(ino, new_parent) {
            return Err(MemError::Invalid);
        }
        if let Ok(target) = state.child(new_parent, new_name) {
            if target == ino {
                return Ok(());
            }
            if no_replace {
                return Err(MemError::Exists);
            }
            match (moving_dir, state.node(target)?.kind()) {
                (true, NodeKind::File) => return Err(MemError::NotDir),
                (false, NodeKind::Dir) => return Err(MemError::IsDir),
                (true, NodeKind::Dir) if !state.node(target)?.entries()?.is_empty() => {
                    return Err(MemError::NotEmpty);
                }
                _ => {}
            }
            self.remove_entry(&mut state, new_parent, new_name, target);
        }
        let grow = (new_name.len() as u64).saturating_sub(name.len() as u64);
        self.budget.charge(grow)?;
        self.budget
            .refund((name.len() as u64).saturating_sub(new_name.len() as u64));
        state.dir_mut(parent)?.remove(name);
        state.dir_mut(new_parent)?.insert(new_name.to_string(), ino);
        if let Body::Dir { parent: up, .. } = &mut state.node_mut(ino)?.body {
            *up = new_parent;
        }
        state.touch_dir(parent);
        state.touch_dir(new_parent);
        state.node_mut(ino)?.ctime = SystemTime::now();
        Ok(())
    }

    /// Every `zarr.json` in the store as (directory path relative to the root, contents), for
    /// the consolidated metadata of the groups above the store. The root's is at path "".
    pub fn metadata_documents(&self) -> Vec<(String, Vec<u8>)> {
        let state = self.state.read();
        let mut out = Vec::new();
        let mut pending = vec![(String::new(), ROOT)];
        while let Some((path, ino)) = pending.pop() {
            let Ok(entries) = state.node(ino).and_then(Inode::entries) else {
                continue;
            };
            for (name, child) in entries {
                let Ok(node) = state.node(*child) else { continue };
                match (&node.body, name.as_str()) {
                    (Body::File(file), "zarr.json") => out.push((path.clone(), file.read().bytes.clone())),
                    (Body::Dir { .. }, _) => pending.push((node::join(&path, name), *child)),
                    _ => {}
                }
            }
        }
        out.sort();
        out
    }

    /// Changes a file's length, charging or refunding capacity. Growth over-allocates like a
    /// `Vec` (up to 8 MiB at a time) so appends stay linear, unless only the exact size fits.
    fn resize(&self, data: &mut FileData, size: u64) -> Result<()> {
        const MAX_SLACK: usize = 8 << 20;
        let size = usize::try_from(size).map_err(|_| MemError::TooBig)?;
        let capacity = data.bytes.capacity();
        if size > capacity {
            let roomy = size.max(capacity + capacity.min(MAX_SLACK));
            let target = if self.budget.charge((roomy - capacity) as u64).is_ok() {
                roomy
            } else {
                self.budget.charge((size - capacity) as u64)?;
                size
            };
            let charged = (target - capacity) as u64;
            if data.bytes.try_reserve_exact(target - data.bytes.len()).is_err() {
                self.budget.refund(charged);
                return Err(MemError::NoSpace);
            }
            // The allocator may round capacity up; account for what was really allocated.
            let allocated = (data.bytes.capacity() - capacity) as u64;
            self.budget.refund(charged.saturating_sub(allocated));
            self.budget.force(allocated.saturating_sub(charged));
        }
        data.bytes.resize(size, 0);
        if size < capacity / 2 {
            data.bytes.shrink_to_fit();
            self.budget.refund((capacity - data.bytes.capacity()) as u64);
        }
        Ok(())
    }

    fn remove_entry(&self, state: &mut RwLockWriteGuard<'_, State>, parent: u64, name: &str, ino: u64) {
        if let Ok(dir) = state.dir_mut(parent) {
            dir.remove(name);
        }
        self.budget.refund(name.len() as u64);
        state.touch_dir(parent);
        if let Ok(node) = state.node_mut(ino) {
            node.nlink = node.nlink.saturating_sub(1);
            node.ctime = SystemTime::now();
        }
        self.free_if_orphan(state, ino);
    }

    /// Drops a node nothing names and nobody has open, returning its memory to the budget.
    fn free_if_orphan(&self, state: &mut State, ino: u64) {
        let orphan = state.nodes.get(&ino).is_some_and(|n| n.nlink == 0 && n.open == 0);
        if orphan && let Some(node) = state.nodes.remove(&ino) {
            let bytes = match &node.body {
                Body::File(file) => file.read().bytes.capacity() as u64,
                Body::Dir { .. } => 0,
            };
            self.budget.refund(bytes + node::NODE_COST);
        }
    }
}

impl State {
    fn node(&self, ino: u64) -> Result<&Inode> {
        self.nodes.get(&ino).ok_or(MemError::NotFound)
    }

    fn node_mut(&mut self, ino: u64) -> Result<&mut Inode> {
        self.nodes.get_mut(&ino).ok_or(MemError::NotFound)
    }

    fn dir_mut(&mut self, ino: u64) -> Result<&mut std::collections::BTreeMap<String, u64>> {
        match &mut self.node_mut(ino)?.body {
            Body::Dir { entries, .. } => Ok(entries),
            Body::File(_) => Err(MemError::NotDir),
        }
    }

    fn child(&self, parent: u64, name: &str) -> Result<u64> {
        self.node(parent)?
            .entries()?
            .get(name)
            .copied()
            .ok_or(MemError::NotFound)
    }

    fn check_new_entry(&self, parent: u64, name: &str) -> Result<()> {
        check_name(name)?;
        if self.node(parent)?.entries()?.contains_key(name) {
            Err(MemError::Exists)
        } else {
            Ok(())
        }
    }

    fn insert(&mut self, parent: u64, name: &str, node: Inode) -> u64 {
        let ino = self.next_ino;
        self.next_ino += 1;
        self.nodes.insert(ino, node);
        if let Ok(dir) = self.dir_mut(parent) {
            dir.insert(name.to_string(), ino);
        }
        ino
    }

    fn touch_dir(&mut self, ino: u64) {
        if let Ok(node) = self.node_mut(ino) {
            let now = SystemTime::now();
            node.mtime = now;
            node.ctime = now;
        }
    }

    /// Whether `ancestor` is `ino` or one of its parents (a directory can't move below itself).
    fn is_ancestor(&self, ancestor: u64, mut ino: u64) -> bool {
        loop {
            if ino == ancestor {
                return true;
            }
            match self.nodes.get(&ino).map(|n| &n.body) {
                Some(Body::Dir { parent, .. }) if *parent != ino => ino = *parent,
                _ => return false,
            }
        }
    }
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(MemError::Invalid);
    }
    if name.len() > NAME_MAX {
        return Err(MemError::NameTooLong);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
