//! Attributes and `statfs` figures, independent of fuser's types.

use std::time::SystemTime;

use crate::source::memory::{NodeAttr, NodeKind, StoreUsage};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
}

#[derive(Clone, Debug)]
pub struct Attr {
    pub ino: u64,
    pub kind: Kind,
    pub size: u64,
    pub perm: u16,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub atime: SystemTime,
    pub mtime: SystemTime,
    pub ctime: SystemTime,
}

/// Owner and permission bits of what the read-only tree presents (`-o uid=,gid=,umask=`).
///
/// The tree is read-only, so no write bits are ever shown; files are never executable, and
/// directories are searchable by whoever may read them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ownership {
    pub uid: u32,
    pub gid: u32,
    /// Bits taken away, as with umask(2): the default 022 gives files 0444, directories 0555.
    pub umask: u32,
}

impl Ownership {
    pub fn file_mode(&self) -> u16 {
        (0o444 & !self.umask) as u16
    }

    pub fn dir_mode(&self) -> u16 {
        let read = self.file_mode();
        read | (read >> 2)
    }

    /// Bits of a memory store's root directory, which the owner may write into (0755 by
    /// default, 0777 with `umask=0`: a store every user can write into).
    pub fn store_mode(&self) -> u32 {
        0o777 & !self.umask
    }
}

impl Attr {
    /// A read-only node of a source tree.
    pub fn source(ino: u64, kind: Kind, size: u64, owner: Ownership, time: SystemTime) -> Self {
        let (perm, nlink) = match kind {
            Kind::Dir => (owner.dir_mode(), 2),
            Kind::File => (owner.file_mode(), 1),
        };
        Attr {
            ino,
            kind,
            size,
            perm,
            nlink,
            uid: owner.uid,
            gid: owner.gid,
            atime: time,
            mtime: time,
            ctime: time,
        }
    }

    pub fn from_memory(ino: u64, attr: &NodeAttr) -> Self {
        let kind = match attr.kind {
            NodeKind::Dir => Kind::Dir,
            NodeKind::File => Kind::File,
        };
        Attr {
            ino,
            kind,
            size: attr.size,
            perm: (attr.mode & 0o7777) as u16,
            nlink: attr.nlink,
            uid: attr.uid,
            gid: attr.gid,
            atime: attr.atime,
            mtime: attr.mtime,
            ctime: attr.ctime,
        }
    }
}

/// Figures for `statfs`: sources take no space of ours; memory stores report their limit
/// and use, so `df` shows how much room is left for writes.
#[derive(Clone, Copy, Debug, Default)]
pub struct StatFs {
    pub blocks: u64,
    pub free: u64,
    pub files: u64,
    pub block_size: u32,
}

impl StatFs {
    const BLOCK: u64 = 4096;

    pub fn from_usages(usages: &[StoreUsage]) -> Self {
        let limit: u64 = usages.iter().map(|u| u.limit).sum();
        let used: u64 = usages.iter().map(|u| u.used).sum();
        StatFs {
            blocks: limit / Self::BLOCK,
            free: limit.saturating_sub(used) / Self::BLOCK,
            files: usages.iter().map(|u| u.nodes).sum(),
            block_size: Self::BLOCK as u32,
        }
    }
}
