//! Mounting without the right to call mount(2): the setuid `fusermount3` (package fuse3)
//! mounts and hands the `/dev/fuse` descriptor back over a socket pair named in
//! `_FUSE_COMMFD`, as libfuse does. This is the path of a user's own mount and of fstab's
//! `user` lines (mount(8) runs the helper as the user). fuser has the same exchange, but
//! only after opening `/dev/fuse` itself, which fails where the device is root's alone.

use std::io::{IoSliceMut, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, anyhow, bail};
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};

use super::kernel::{FSTYPE, KernelOptions};

/// The helpers tried, newest first.
const FUSERMOUNT: [&str; 2] = ["fusermount3", "fusermount"];

/// The environment variable that tells fusermount where to send the descriptor.
const COMM_ENV: &str = "_FUSE_COMMFD";

/// Mounts through fusermount; returns the `/dev/fuse` descriptor of the new mount.
pub fn mount(mountpoint: &Path, options: &KernelOptions) -> anyhow::Result<OwnedFd> {
    let (ours, theirs) = UnixStream::pair()?;
    let theirs_fd = theirs.as_raw_fd();
    let mut child = None;
    for program in FUSERMOUNT {
        let mut command = Command::new(program);
        command
            .arg("-o")
            .arg(option_string(options))
            .arg("--")
            .arg(mountpoint)
            .env(COMM_ENV, theirs_fd.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // SAFETY: only fcntl, which is async-signal-safe, between fork and exec.
        unsafe {
            command.pre_exec(move || {
                // The socket is close-on-exec like every std descriptor; fusermount needs it.
                if libc::fcntl(theirs_fd, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        match command.spawn() {
            Ok(spawned) => {
                child = Some(spawned);
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot run {program}")),
        }
    }
    let Some(mut child) = child else {
        bail!("only root may mount here without fusermount3; install the fuse3 package");
    };
    drop(theirs);
    let received = receive_fd(&ours);
    drop(ours);
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    let status = child.wait()?;
    match received {
        Ok(fd) if status.success() => Ok(fd),
        _ if !stderr.trim().is_empty() => Err(anyhow!("{}", stderr.trim())),
        Ok(_) => Err(anyhow!("fusermount failed ({status})")),
        Err(e) => Err(e).with_context(|| format!("fusermount did not mount ({status})")),
    }
}

/// Unmounts a mount made by fusermount (lazily if it is busy).
pub fn unmount(mountpoint: &Path) -> std::io::Result<()> {
    let mut last = std::io::Error::from(std::io::ErrorKind::NotFound);
    for program in FUSERMOUNT {
        match Command::new(program)
            .args(["-u", "-q", "-z", "--"])
            .arg(mountpoint)
            .stdin(Stdio::null())
            .status()
        {
            Ok(status) if status.success() => return Ok(()),
            Ok(status) => return Err(std::io::Error::other(format!("{program} -u: {status}"))),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// fusermount's `-o`: what the kernel is told, plus the name and type the mount is listed
/// with. Commas and backslashes in the name are escaped as fusermount expects.
fn option_string(options: &KernelOptions) -> String {
    let fsname = options.fsname.replace('\\', "\\\\").replace(',', "\\,");
    let subtype = FSTYPE.trim_start_matches("fuse.");
    let mut list = vec![
        format!("fsname={fsname}"),
        format!("subtype={subtype}"),
        "nosuid".into(),
        "nodev".into(),
        "noatime".into(),
        if options.read_only { "ro" } else { "rw" }.into(),
    ];
    if options.no_exec {
        list.push("noexec".into());
    }
    if options.default_permissions {
        list.push("default_permissions".into());
    }
    if options.allow_other {
        list.push("allow_other".into());
    }
    list.push(format!("max_read={}", options.max_read));
    list.join(",")
}

/// The descriptor fusermount sends: one byte of data with an SCM_RIGHTS message.
fn receive_fd(socket: &UnixStream) -> anyhow::Result<OwnedFd> {
    let mut byte = [0u8];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!(RawFd);
    let message = loop {
        match recvmsg::<()>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => break other?,
        }
    };
    for cmsg in message.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg
            && let Some(&fd) = fds.first()
            && fd >= 0
        {
            // SAFETY: the kernel just installed this descriptor in our table for us alone.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
    }
    bail!("fusermount sent no descriptor")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_name_the_mount_and_escape_commas() {
        let options = KernelOptions {
            fsname: r"/data/a,b\c".into(),
            read_only: true,
            no_exec: true,
            allow_other: true,
            default_permissions: true,
            max_read: 4096,
        };
        assert_eq!(
            option_string(&options),
            r"fsname=/data/a\,b\\c,subtype=zarrmount,nosuid,nodev,noatime,ro,noexec,default_permissions,allow_other,max_read=4096"
        );
    }
}
