//! The mount(2) call, made here rather than by fuser so the mount is listed with the type
//! `fuse.zarrmount` and the SOURCE as given: `findmnt -t fuse.zarrmount` finds it, and
//! `mount -a` recognises an fstab line that is already mounted. fuser 0.18 always mounts
//! as plain `fuse` with the fsname as source.
//!
//! mount(2) needs root (CAP_SYS_ADMIN). For anyone else this reports [`Mounted::NotPermitted`]
//! and the caller mounts through the setuid `fusermount3` (`super::fusermount`).

use std::os::fd::OwnedFd;
use std::path::Path;

use anyhow::Context;
use nix::fcntl::{AT_FDCWD, AtFlags, OFlag, open};
use nix::mount::MsFlags;
use nix::sys::stat::{FileStat, Mode, SFlag, fstatat};

/// The file system type the mount is listed with.
pub const FSTYPE: &str = "fuse.zarrmount";

/// What the kernel is told about the mount.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelOptions {
    /// Shown as the mount's source: the SOURCE arguments as given.
    pub fsname: String,
    pub read_only: bool,
    pub no_exec: bool,
    /// Let every user in (`allow_other`); otherwise only the mounting user.
    pub allow_other: bool,
    /// The kernel checks permission bits itself.
    pub default_permissions: bool,
    /// Largest read request.
    pub max_read: u32,
}

/// The outcome of [`mount`].
pub enum Mounted {
    /// Mounted; the session reads requests from this `/dev/fuse` descriptor.
    Device(OwnedFd),
    /// This process may not call mount(2).
    NotPermitted,
}

/// Mounts a FUSE file system on `mountpoint` (canonical, checked to be a directory).
pub fn mount(mountpoint: &Path, options: &KernelOptions) -> anyhow::Result<Mounted> {
    let root_mode = stat_mountpoint(mountpoint)
        .with_context(|| format!("mountpoint {}", mountpoint.display()))?
        .st_mode;
    let device = match open("/dev/fuse", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty()) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ENOENT) => anyhow::bail!("/dev/fuse not found; try `modprobe fuse`"),
        // Root's alone on some systems: fusermount3 opens it with its own rights.
        Err(nix::errno::Errno::EACCES | nix::errno::Errno::EPERM) => return Ok(Mounted::NotPermitted),
        Err(e) => return Err(e).context("cannot open /dev/fuse"),
    };
    let data = mount_data(
        options,
        std::os::fd::AsRawFd::as_raw_fd(&device),
        root_mode,
        nix::unistd::getuid().as_raw(),
        nix::unistd::getgid().as_raw(),
    );
    match nix::mount::mount(
        Some(options.fsname.as_str()),
        mountpoint,
        Some(FSTYPE),
        flags(options),
        Some(data.as_str()),
    ) {
        Ok(()) => Ok(Mounted::Device(device)),
        Err(nix::errno::Errno::EPERM) => Ok(Mounted::NotPermitted),
        Err(e) => Err(e).with_context(|| format!("mount({FSTYPE}) on {} failed", mountpoint.display())),
    }
}

/// `stat` that never triggers an automount. The mountpoint may be an autofs trigger
/// (`x-systemd.automount`) whose automount is the very mount being made: std's `metadata`
/// (statx without `AT_NO_AUTOMOUNT`) would wait on it forever.
pub fn stat_mountpoint(path: &Path) -> nix::Result<FileStat> {
    fstatat(AT_FDCWD, path, AtFlags::AT_NO_AUTOMOUNT)
}

pub fn is_directory(stat: &FileStat) -> bool {
    SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR
}

/// The data string of the FUSE mount: the device, the root's mode, whose mount it is, and
/// what the kernel enforces.
fn mount_data(options: &KernelOptions, fd: i32, root_mode: u32, uid: u32, gid: u32) -> String {
    let mut data = format!("fd={fd},rootmode={root_mode:o},user_id={uid},group_id={gid}");
    if options.default_permissions {
        data.push_str(",default_permissions");
    }
    if options.allow_other {
        data.push_str(",allow_other");
    }
    data.push_str(&format!(",max_read={}", options.max_read));
    data
}

/// Never devices or set-id programs (as every FUSE mount); no access times (nothing records
/// them); read-only and no-exec on request.
fn flags(options: &KernelOptions) -> MsFlags {
    let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOATIME;
    if options.read_only {
        flags |= MsFlags::MS_RDONLY;
    }
    if options.no_exec {
        flags |= MsFlags::MS_NOEXEC;
    }
    flags
}

/// Unmounts `mountpoint`; if it is busy, detaches it so the kernel finishes when the last
/// user lets go. A mount already gone is not an error.
pub fn unmount(mountpoint: &Path) -> nix::Result<()> {
    use nix::mount::{MntFlags, umount2};
    match umount2(mountpoint, MntFlags::empty()) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) => Ok(()),
        Err(nix::errno::Errno::EBUSY) => {
            tracing::warn!("{} is busy; detaching it", mountpoint.display());
            umount2(mountpoint, MntFlags::MNT_DETACH)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> KernelOptions {
        KernelOptions {
            fsname: "/data/run 42".into(),
            read_only: false,
            no_exec: false,
            allow_other: false,
            default_permissions: false,
            max_read: 1 << 20,
        }
    }

    #[test]
    fn data_names_the_device_owner_and_checks() {
        assert_eq!(
            mount_data(&options(), 7, 0o40755, 1000, 100),
            "fd=7,rootmode=40755,user_id=1000,group_id=100,max_read=1048576"
        );
        let shared = KernelOptions {
            allow_other: true,
            default_permissions: true,
            ..options()
        };
        assert_eq!(
            mount_data(&shared, 7, 0o40755, 0, 0),
            "fd=7,rootmode=40755,user_id=0,group_id=0,default_permissions,allow_other,max_read=1048576"
        );
    }

    #[test]
    fn flags_are_safe_and_read_only_on_request() {
        let base = flags(&options());
        assert!(base.contains(MsFlags::MS_NOSUID | MsFlags::MS_NODEV));
        assert!(!base.contains(MsFlags::MS_RDONLY));
        let ro = KernelOptions {
            read_only: true,
            no_exec: true,
            ..options()
        };
        assert!(flags(&ro).contains(MsFlags::MS_RDONLY | MsFlags::MS_NOEXEC));
    }
}
