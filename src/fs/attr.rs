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

impl Attr {
    /// A read-only node of a source tree.
    pub fn source(ino: u64, kind: Kind, size: u64, owner: (u32, u32), time: SystemTime) -> Self {
        let (perm, nlink) = match kind {
            Kind::Dir => (0o555, 2),
            Kind::File => (0o444, 1),
        };
        Attr {
            ino,
            kind,
            size,
            perm,
            nlink,
            uid: owner.0,
            gid: owner.1,
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
