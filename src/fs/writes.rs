//! Write-like calls: served by memory stores, `EROFS` everywhere else. The one exception is
//! removing and re-making a memory store's root directory (see `catalog::MemorySlot`).

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::inode::Loc;
use super::{Attr, FsError, FsResult, ZarrFs};
use crate::catalog::{Entry, MemorySlot};
use crate::source::memory::{Owner, SetAttr};

impl ZarrFs {
    #[allow(clippy::too_many_arguments)]
    pub fn create(
        &self,
        parent: u64,
        name: &str,
        mode: u32,
        umask: u32,
        flags: i32,
        uid: u32,
        gid: u32,
    ) -> FsResult<(Attr, Duration)> {
        let (index, store, local) = self.writable_store(parent)?;
        let owner = Owner {
            uid,
            gid,
            mode: mode & !umask,
        };
        let exclusive = flags & libc::O_EXCL != 0;
        let truncate = flags & libc::O_TRUNC != 0;
        Ok(self.memory_attr(index, store.create(local, name, owner, exclusive, truncate)?))
    }

    /// A write-like call no store supports (special files, symbolic links, extended
    /// attributes): `EROFS` outside memory stores, like every other write, and `errno`
    /// in one.
    pub fn unsupported(&self, ino: u64, errno: i32, what: &str) -> FsError {
        match self.writable_store(ino) {
            Ok(_) => FsError::new(errno, what),
            Err(e) => e,
        }
    }

    pub fn mkdir(
        &self,
        parent: u64,
        name: &str,
        mode: u32,
        umask: u32,
        uid: u32,
        gid: u32,
    ) -> FsResult<(Attr, Duration)> {
        if let Some(slot) = self.store_slot_named(parent, name) {
            if slot.present.swap(true, Ordering::AcqRel) {
                return Err(FsError::new(libc::EEXIST, "file exists"));
            }
            return self.lookup(parent, name);
        }
        let (index, store, local) = self.writable_store(parent)?;
        let owner = Owner {
            uid,
            gid,
            mode: mode & !umask,
        };
        Ok(self.memory_attr(index, store.mkdir(local, name, owner)?))
    }

    pub fn write(&self, ino: u64, offset: u64, data: &[u8]) -> FsResult<u32> {
        let (_, store, local) = self.writable_store(ino)?;
        Ok(store.write(local, offset, data)?)
    }

    pub fn setattr(&self, ino: u64, change: SetAttr) -> FsResult<(Attr, Duration)> {
        let (index, store, local) = self.writable_store(ino)?;
        Ok(self.memory_attr(index, store.setattr(local, change)?))
    }

    pub fn unlink(&self, parent: u64, name: &str) -> FsResult<()> {
        let (_, store, local) = self.writable_store(parent)?;
        Ok(store.unlink(local, name)?)
    }

    pub fn rmdir(&self, parent: u64, name: &str) -> FsResult<()> {
        if let Some(slot) = self.store_slot_named(parent, name) {
            if !slot.present.load(Ordering::Acquire) {
                return Err(FsError::not_found());
            }
            if !slot.store.is_empty() {
                return Err(FsError::new(libc::ENOTEMPTY, "directory not empty"));
            }
            slot.present.store(false, Ordering::Release);
            return Ok(());
        }
        let (_, store, local) = self.writable_store(parent)?;
        Ok(store.rmdir(local, name)?)
    }

    pub fn rename(
        &self,
        parent: u64,
        name: &str,
        new_parent: u64,
        new_name: &str,
        flags: u32,
    ) -> FsResult<()> {
        if flags & !libc::RENAME_NOREPLACE != 0 {
            return Err(FsError::new(libc::EINVAL, "only RENAME_NOREPLACE is supported"));
        }
        let (from, store, local) = self.writable_store(parent)?;
        let (to, _, new_local) = self.writable_store(new_parent)?;
        if from != to {
            return Err(FsError::new(libc::EXDEV, "rename across memory stores"));
        }
        let no_replace = flags & libc::RENAME_NOREPLACE != 0;
        Ok(store.rename(local, name, new_local, new_name, no_replace)?)
    }

    pub fn link(&self, ino: u64, new_parent: u64, new_name: &str) -> FsResult<(Attr, Duration)> {
        let (from, store, local) = self.writable_store(ino)?;
        let (to, _, new_local) = self.writable_store(new_parent)?;
        if from != to {
            return Err(FsError::new(libc::EXDEV, "link across memory stores"));
        }
        Ok(self.memory_attr(from, store.link(local, new_local, new_name)?))
    }

    /// The memory store that is child `name` of the catalog group `parent`, if any.
    fn store_slot_named(&self, parent: u64, name: &str) -> Option<&MemorySlot> {
        if self.config.read_only {
            return None;
        }
        let node = self.inodes.get(parent)?;
        let Loc::Entry(Entry::Dir(dir)) = &node.loc else {
            return None;
        };
        let listing = dir.listing();
        let Some(Entry::Memory(slot)) = listing.children.get(name) else {
            return None;
        };
        self.catalog
            .memory
            .iter()
            .find(|s| std::sync::Arc::ptr_eq(s, slot))
            .map(|s| &**s)
    }
}
