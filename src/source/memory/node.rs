//! One memory-store inode: a directory of named children or a file's bytes, plus attributes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::RwLock;

use super::{MemError, Owner, SetAttr};

/// What a node costs besides its bytes and name, charged so that millions of empty files hit
/// the limit too (roughly the size of an `Inode` plus its map slot).
pub(super) const NODE_COST: u64 = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    Dir,
    File,
}

/// Attributes as the filesystem layer needs them.
#[derive(Clone, Debug)]
pub struct NodeAttr {
    pub ino: u64,
    pub kind: NodeKind,
    pub size: u64,
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub atime: SystemTime,
    pub mtime: SystemTime,
    pub ctime: SystemTime,
}

#[derive(Debug)]
pub(super) struct FileData {
    pub(super) bytes: Vec<u8>,
    pub(super) mtime: SystemTime,
}

#[derive(Debug)]
pub(super) enum Body {
    Dir {
        entries: BTreeMap<String, u64>,
        parent: u64,
    },
    File(Arc<RwLock<FileData>>),
}

#[derive(Debug)]
pub(super) struct Inode {
    pub(super) body: Body,
    pub(super) mode: u32,
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) nlink: u32,
    /// Open file handles; an unlinked file stays readable until the last one is released.
    pub(super) open: u32,
    pub(super) atime: SystemTime,
    /// Directories only: a file's mtime lives with its bytes, updated under their lock.
    pub(super) mtime: SystemTime,
    pub(super) ctime: SystemTime,
}

impl Inode {
    fn new(body: Body, owner: Owner) -> Self {
        let now = SystemTime::now();
        Inode {
            body,
            mode: owner.mode & 0o7777,
            uid: owner.uid,
            gid: owner.gid,
            nlink: 1,
            open: 0,
            atime: now,
            mtime: now,
            ctime: now,
        }
    }

    /// The store's root directory (its own parent).
    pub(super) fn dir(ino: u64, owner: Owner) -> Self {
        Self::dir_in(ino, owner)
    }

    pub(super) fn dir_in(parent: u64, owner: Owner) -> Self {
        Self::new(
            Body::Dir {
                entries: BTreeMap::new(),
                parent,
            },
            owner,
        )
    }

    pub(super) fn new_file(owner: Owner) -> Self {
        let data = FileData {
            bytes: Vec::new(),
            mtime: SystemTime::now(),
        };
        Self::new(Body::File(Arc::new(RwLock::new(data))), owner)
    }

    pub(super) fn kind(&self) -> NodeKind {
        match self.body {
            Body::Dir { .. } => NodeKind::Dir,
            Body::File(_) => NodeKind::File,
        }
    }

    pub(super) fn entries(&self) -> Result<&BTreeMap<String, u64>, MemError> {
        match &self.body {
            Body::Dir { entries, .. } => Ok(entries),
            Body::File(_) => Err(MemError::NotDir),
        }
    }

    pub(super) fn file(&self) -> Result<&Arc<RwLock<FileData>>, MemError> {
        match &self.body {
            Body::File(file) => Ok(file),
            Body::Dir { .. } => Err(MemError::IsDir),
        }
    }

    pub(super) fn attr(&self, ino: u64) -> Result<NodeAttr, MemError> {
        let (size, mtime) = match &self.body {
            Body::File(file) => {
                let data = file.read();
                (data.bytes.len() as u64, data.mtime)
            }
            Body::Dir { entries, .. } => (entries.len() as u64, self.mtime),
        };
        Ok(NodeAttr {
            ino,
            kind: self.kind(),
            size,
            mode: self.mode,
            nlink: self.nlink,
            uid: self.uid,
            gid: self.gid,
            atime: self.atime,
            mtime,
            ctime: self.ctime,
        })
    }

    pub(super) fn apply(&mut self, change: &SetAttr) {
        if let Some(mode) = change.mode {
            self.mode = mode & 0o7777;
        }
        if let Some(uid) = change.uid {
            self.uid = uid;
        }
        if let Some(gid) = change.gid {
            self.gid = gid;
        }
        if let Some(atime) = change.atime {
            self.atime = atime;
        }
        if let Some(mtime) = change.mtime {
            match &self.body {
                Body::File(file) => file.write().mtime = mtime,
                Body::Dir { .. } => self.mtime = mtime,
            }
        }
        self.ctime = SystemTime::now();
    }
}

/// Joins a directory path and a name with `/`.
pub(super) fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}/{name}")
    }
}
