//! The fuser adapter: each handler makes one call into [`ZarrFs`] and replies, or logs the
//! error at its level and replies with its errno. Nothing else happens here.

use std::ffi::OsStr;
use std::sync::Arc;
use std::time::SystemTime;

use fuser::{
    AccessFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    InitFlags, KernelConfig, LockOwner, OpenAccMode, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate,
    ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request,
    TimeOrNow, WriteFlags,
};
use tracing::{Level, debug, error, info, warn};

use super::{Attr, FsError, Kind, OpenMode, ZarrFs};
use crate::source::memory::SetAttr;

/// `st_blksize`, the buffer size of `cat` and of Python's buffered files.
const BLOCK_SIZE: u32 = 1 << 20;

/// Where the kernel keeps its cap on the pages of one FUSE request.
const MAX_PAGES_LIMIT: &str = "/proc/sys/fs/fuse/max_pages_limit";

pub struct FuseAdapter {
    pub fs: Arc<ZarrFs>,
    /// The largest read or write to ask the kernel for (`MountConfig::max_io`).
    pub max_io: u32,
    /// Run once while the kernel's INIT is answered (before the answer reaches it).
    pub on_init: Option<Box<dyn FnOnce() + Send + Sync>>,
}

fn file_attr(attr: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(attr.ino),
        size: attr.size,
        blocks: attr.size.div_ceil(512),
        atime: attr.atime,
        mtime: attr.mtime,
        ctime: attr.ctime,
        crtime: attr.ctime,
        kind: match attr.kind {
            Kind::Dir => FileType::Directory,
            Kind::File => FileType::RegularFile,
        },
        perm: attr.perm,
        nlink: attr.nlink,
        uid: attr.uid,
        gid: attr.gid,
        rdev: 0,
        blksize: BLOCK_SIZE,
        flags: 0,
    }
}

fn errno(op: &str, e: FsError) -> Errno {
    match e.level {
        Level::ERROR => error!(op, errno = e.errno, "{}", e.message),
        Level::WARN => warn!(op, errno = e.errno, "{}", e.message),
        _ => debug!(op, errno = e.errno, "{}", e.message),
    }
    Errno::from_i32(e.errno)
}

const XATTRS: &str = "extended attributes are not supported";

fn name(name: &OsStr) -> Result<&str, FsError> {
    name.to_str()
        .ok_or_else(|| FsError::new(libc::EINVAL, "names must be UTF-8"))
}

fn time(t: TimeOrNow) -> SystemTime {
    match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => SystemTime::now(),
    }
}

fn open_flags(mode: OpenMode) -> FopenFlags {
    let mut flags = FopenFlags::empty();
    if mode.keep_cache {
        flags |= FopenFlags::FOPEN_KEEP_CACHE;
    }
    if mode.direct_io {
        flags |= FopenFlags::FOPEN_DIRECT_IO;
    }
    flags
}

macro_rules! entry_reply {
    ($reply:ident, $op:literal, $result:expr) => {
        match $result {
            Ok((attr, ttl)) => $reply.entry(&ttl, &file_attr(&attr), Generation(0)),
            Err(e) => $reply.error(errno($op, e)),
        }
    };
}

macro_rules! empty_reply {
    ($reply:ident, $op:literal, $result:expr) => {
        match $result {
            Ok(()) => $reply.ok(),
            Err(e) => $reply.error(errno($op, e)),
        }
    };
}

impl Filesystem for FuseAdapter {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // One page over: a 4 MiB read into a buffer that is not page-aligned spans 1025 pages,
        // and with 1024 the kernel would split it into two requests.
        let pages = self.max_io / 4096 + 1;
        let _ = config.set_max_write(pages * 4096);
        let _ = config.set_max_readahead(self.max_io);
        let limit = std::fs::read_to_string(MAX_PAGES_LIMIT).ok();
        match limit.and_then(|l| l.trim().parse::<u32>().ok()) {
            Some(limit) if limit < pages => info!(
                "the kernel caps FUSE requests at {limit} pages (fs.fuse.max_pages_limit), so \
                 reads of chunks over {} KiB take several requests; \
                 `sysctl fs.fuse.max_pages_limit={pages}` lets one request carry max_read ({} KiB)",
                limit.saturating_sub(1) * 4,
                self.max_io >> 10
            ),
            _ => info!("FUSE requests of up to {} KiB", self.max_io >> 10),
        }
        // The pieces of a direct read larger than a request (under the kernel's cap) are sent
        // together rather than one after another; the read path answers them in parallel.
        let _ = config.add_capabilities(InitFlags::FUSE_ASYNC_DIO);
        // Chunk files are direct I/O (see `ZarrFs::open`); this keeps them mmap-able on
        // kernels that allow it (6.6+).
        let _ = config.add_capabilities(InitFlags::FUSE_DIRECT_IO_ALLOW_MMAP);
        // Lookups in one directory (a chunk grid's `c/0/…`) are answered in parallel, not one
        // at a time under the directory's lock: concurrent readers of one array look up its
        // chunk files side by side.
        let _ = config.add_capabilities(InitFlags::FUSE_PARALLEL_DIROPS);
        if let Some(on_init) = self.on_init.take() {
            on_init();
        }
        info!("FUSE session initialised");
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, n: &OsStr, reply: ReplyEntry) {
        match name(n).and_then(|n| self.fs.lookup(parent.0, n)) {
            Ok((attr, ttl)) => reply.entry(&ttl, &file_attr(&attr), Generation(0)),
            // Node id 0 with a TTL: the kernel caches the name as missing.
            Err(e)
                if e.errno == libc::ENOENT
                    && let Some(ttl) = self.fs.negative_ttl(parent.0) =>
            {
                let placeholder = super::Ownership {
                    uid: 0,
                    gid: 0,
                    umask: 0o777,
                };
                let missing = Attr::source(0, Kind::File, 0, placeholder, SystemTime::UNIX_EPOCH);
                reply.entry(&ttl, &file_attr(&missing), Generation(0))
            }
            Err(e) => reply.error(errno("lookup", e)),
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.fs.forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.fs.getattr(ino.0) {
            Ok((attr, ttl)) => reply.attr(&ttl, &file_attr(&attr)),
            Err(e) => reply.error(errno("getattr", e)),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let change = SetAttr {
            mode,
            uid,
            gid,
            size,
            atime: atime.map(time),
            mtime: mtime.map(time),
        };
        match self.fs.setattr(ino.0, change) {
            Ok((attr, ttl)) => reply.attr(&ttl, &file_attr(&attr)),
            Err(e) => reply.error(errno("setattr", e)),
        }
    }

    fn mkdir(&self, req: &Request, parent: INodeNo, n: &OsStr, mode: u32, umask: u32, reply: ReplyEntry) {
        let result = name(n).and_then(|n| self.fs.mkdir(parent.0, n, mode, umask, req.uid(), req.gid()));
        entry_reply!(reply, "mkdir", result)
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, n: &OsStr, reply: ReplyEmpty) {
        empty_reply!(reply, "unlink", name(n).and_then(|n| self.fs.unlink(parent.0, n)))
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, n: &OsStr, reply: ReplyEmpty) {
        empty_reply!(reply, "rmdir", name(n).and_then(|n| self.fs.rmdir(parent.0, n)))
    }

    fn symlink(
        &self,
        _req: &Request,
        parent: INodeNo,
        _n: &OsStr,
        _target: &std::path::Path,
        reply: ReplyEntry,
    ) {
        let e = self
            .fs
            .unsupported(parent.0, libc::EPERM, "symbolic links are not supported");
        reply.error(errno("symlink", e));
    }

    fn mknod(
        &self,
        _req: &Request,
        parent: INodeNo,
        _n: &OsStr,
        _mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        let e = self
            .fs
            .unsupported(parent.0, libc::EPERM, "only regular files and directories");
        reply.error(errno("mknod", e));
    }

    fn setxattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        _n: &OsStr,
        _value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        reply.error(errno(
            "setxattr",
            self.fs.unsupported(ino.0, libc::ENOTSUP, XATTRS),
        ));
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, _n: &OsStr, reply: ReplyEmpty) {
        reply.error(errno(
            "removexattr",
            self.fs.unsupported(ino.0, libc::ENOTSUP, XATTRS),
        ));
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        n: &OsStr,
        new_parent: INodeNo,
        new_n: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let result = name(n)
            .and_then(|n| Ok((n, name(new_n)?)))
            .and_then(|(n, new_n)| self.fs.rename(parent.0, n, new_parent.0, new_n, flags.bits()));
        empty_reply!(reply, "rename", result)
    }

    fn link(&self, _req: &Request, ino: INodeNo, new_parent: INodeNo, new_n: &OsStr, reply: ReplyEntry) {
        entry_reply!(
            reply,
            "link",
            name(new_n).and_then(|n| self.fs.link(ino.0, new_parent.0, n))
        )
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let write = flags.acc_mode() != OpenAccMode::O_RDONLY;
        let truncate = flags.0 & libc::O_TRUNC != 0;
        match self.fs.open(ino.0, write, truncate) {
            Ok(mode) => reply.opened(FileHandle(0), open_flags(mode)),
            Err(e) => reply.error(errno("open", e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock: Option<LockOwner>,
        reply: ReplyData,
    ) {
        // Answered from whichever thread has the bytes; this one goes back to the kernel.
        self.fs.read_with(
            ino.0,
            offset,
            size,
            Box::new(move |result| match result {
                Ok(data) => reply.data(data.as_slice()),
                Err(e) => reply.error(errno("read", e)),
            }),
        );
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.fs.write(ino.0, offset, data) {
            Ok(written) => reply.written(written),
            Err(e) => reply.error(errno("write", e)),
        }
    }

    /// Nothing is buffered here, so there is nothing to flush: ENOSYS tells the kernel to stop
    /// sending FLUSH on every close (it then treats flushes as done), a round trip per file.
    fn flush(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _lock: LockOwner, reply: ReplyEmpty) {
        reply.error(Errno::ENOSYS);
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _flags: OpenFlags,
        _lock: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.fs.release(ino.0);
        reply.ok();
    }

    /// Memory stores have nothing to flush to; sources are never written.
    fn fsync(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        reply.ok();
    }

    /// No ioctls here; Python probes `isatty` (TCGETS) on every file it opens.
    #[allow(clippy::too_many_arguments)]
    fn ioctl(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: fuser::IoctlFlags,
        _cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: fuser::ReplyIoctl,
    ) {
        reply.error(Errno::ENOTTY);
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.fs.opendir(ino.0) {
            Ok(handle) => reply.opened(FileHandle(handle), FopenFlags::empty()),
            Err(e) => reply.error(errno("opendir", e)),
        }
    }

    fn readdir(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let items = match self.fs.readdir(fh.0) {
            Ok(items) => items,
            Err(e) => return reply.error(errno("readdir", e)),
        };
        for (i, item) in items.iter().enumerate().skip(offset as usize) {
            let kind = match item.kind {
                Kind::Dir => FileType::Directory,
                Kind::File => FileType::RegularFile,
            };
            // The offset of an entry is the position of the next one.
            if reply.add(INodeNo(item.ino), i as u64 + 1, kind, &item.name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.fs.releasedir(fh.0);
        reply.ok();
    }

    fn fsyncdir(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        reply.ok();
    }

    fn statfs(&self, _req: &Request, ino: INodeNo, reply: ReplyStatfs) {
        let s = self.fs.statfs(ino.0);
        reply.statfs(
            s.blocks,
            s.free,
            s.free,
            s.files,
            u64::MAX / 2,
            s.block_size,
            255,
            s.block_size,
        );
    }

    fn access(&self, _req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        let writable = !mask.contains(AccessFlags::W_OK) || self.fs.is_writable(ino.0);
        match self.fs.getattr(ino.0) {
            Ok(_) if writable => reply.ok(),
            Ok(_) => reply.error(Errno::EROFS),
            Err(e) => reply.error(errno("access", e)),
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        n: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let result = name(n).and_then(|n| {
            self.fs
                .create(parent.0, n, mode, umask, flags, req.uid(), req.gid())
        });
        match result {
            Ok((attr, ttl)) => reply.created(
                &ttl,
                &file_attr(&attr),
                Generation(0),
                FileHandle(0),
                FopenFlags::empty(),
            ),
            Err(e) => reply.error(errno("create", e)),
        }
    }
}
