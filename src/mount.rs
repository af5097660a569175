//! Mounting: check the arguments, start the daemon, serve until unmounted.
//!
//! Without `-f` the command re-executes itself in the foreground as a detached daemon and
//! waits on a pipe until the daemon reports the mount live (FUSE handshake done) or why it
//! failed, so `zarrmount …; ls MOUNTPOINT` works and every failure is on the command's own
//! stderr. The daemon gets its arguments in the plain command form, so the same path serves
//! `zarrmount` itself and mount(8)'s helper ([`crate::helper`]). As root the mount is made
//! here (`kernel`), otherwise the setuid fusermount3 mounts (`fusermount`); either way the
//! mount is listed as type `fuse.zarrmount` and fuser serves the descriptor.
//! SIGINT, SIGTERM and SIGHUP unmount; an external `umount` ends the session; both exit 0.

mod fusermount;
mod kernel;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use fuser::{Config, Session, SessionACL};
use nix::sys::signal::{SigSet, Signal};
use tracing::{debug, info, warn};

use crate::cache::ChunkCache;
use crate::catalog::Catalog;
use crate::config::{MountConfig, MountOptions};
use crate::fs::ReadPath;
use crate::fs::ZarrFs;
use crate::fs::fuse::FuseAdapter;
use crate::io::BufferPool;
use crate::prefetch::Prefetcher;
use crate::source::SourceSpec;
use crate::source::memory::Owner;
use crate::source::wds::IndexConfig;
use crate::workers::Workers;
use kernel::{KernelOptions, Mounted};

/// Environment variable naming the fd on which a daemon reports readiness to its launcher.
const READY_FD: &str = "ZARRMOUNT_READY_FD";

/// Runs a mount command: validates everything that can be checked up front, then either
/// serves in the foreground or starts the daemon and waits until it is live.
pub fn run(sources: &[String], mountpoint: &str, options: &[String], foreground: bool) -> anyhow::Result<()> {
    let mut ready = take_ready_fd();
    if !foreground && ready.is_none() {
        check(sources, mountpoint, options)?;
        return spawn_daemon(sources, mountpoint, options);
    }
    let result = mount_and_serve(sources, mountpoint, options, foreground, &mut ready);
    // Whatever went wrong before the mount was live is the launcher's answer.
    if let (Err(e), Some(pipe)) = (&result, ready.as_mut()) {
        let _ = writeln!(pipe, "{e:#}");
    }
    result
}

/// Checks the options, the sources and the mountpoint without mounting (`mount -f`, and the
/// launcher before it starts the daemon).
pub fn check(sources: &[String], mountpoint: &str, options: &[String]) -> anyhow::Result<()> {
    validate(sources, mountpoint, options).map(drop)
}

fn validate(
    sources: &[String],
    mountpoint: &str,
    options: &[String],
) -> anyhow::Result<(MountOptions, Vec<SourceSpec>, PathBuf)> {
    let options = MountOptions::parse(options)?;
    let specs = sources
        .iter()
        .map(|s| SourceSpec::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let mountpoint = check_mountpoint(Path::new(mountpoint))?;
    Ok((options, specs, mountpoint))
}

fn mount_and_serve(
    sources: &[String],
    mountpoint: &str,
    options: &[String],
    foreground: bool,
    ready: &mut Option<File>,
) -> anyhow::Result<()> {
    let (options, specs, mountpoint) = validate(sources, mountpoint, options)?;
    crate::logging::init(&options, foreground)?;
    let fsname = sources.join(",");
    serve(MountConfig::new(options), &specs, &fsname, &mountpoint, ready)
}

fn check_mountpoint(path: &Path) -> anyhow::Result<PathBuf> {
    let stat = kernel::stat_mountpoint(path).map_err(|e| anyhow!("mountpoint {}: {e}", path.display()))?;
    if !kernel::is_directory(&stat) {
        bail!("mountpoint {} is not a directory", path.display());
    }
    // realpath(3) only lstat()s and readlink()s, which never trigger an automount.
    let path = path
        .canonicalize()
        .with_context(|| format!("mountpoint {}", path.display()))?;
    // An automount point (systemd's `x-systemd.automount`) is where the mount belongs.
    match mounted_type(&path) {
        Some(fstype) if fstype != "autofs" => bail!(
            "mountpoint {} is already a mount; unmount it first",
            path.display()
        ),
        _ => Ok(path),
    }
}

/// The type of the topmost mount at `path` (canonical), if it is a mount point, by
/// /proc/self/mountinfo (field 5 the mount point, with spaces and the like octal-escaped;
/// the type follows the ` - ` separator; later lines are mounted on top of earlier ones).
fn mounted_type(path: &Path) -> Option<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mounted_type_in(&info, &path.to_string_lossy())
}

fn mounted_type_in(info: &str, wanted: &str) -> Option<String> {
    topmost_mount(info, wanted).map(|(_, fstype)| fstype.to_string())
}

/// The device (`major:minor`, field 3) and the type of the topmost mount at `wanted`.
fn topmost_mount<'a>(info: &'a str, wanted: &str) -> Option<(&'a str, &'a str)> {
    info.lines()
        .rev()
        .filter(|line| {
            line.split(' ')
                .nth(4)
                .is_some_and(|field| unescape_mountinfo(field) == wanted)
        })
        .find_map(|line| {
            let device = line.split(' ').nth(2)?;
            Some((device, line.split_once(" - ")?.1.split(' ').next()?))
        })
}

/// Lets the kernel read ahead `bytes` at a time in files opened through its page cache
/// (chunk files read whole once, see `ZarrFs::open`). A FUSE mount's read-ahead is the
/// kernel's default of 128 KiB whatever `max_readahead` the daemon answers (the kernel offers
/// no more in INIT), so a 2 MiB chunk file took 16 READs to cache where it now takes one;
/// only the mount's backing device's `read_ahead_kb` raises it, which only root may write.
/// Called from INIT, it waits on a thread of its own for the first request INIT lets
/// through (a `stat` of the mount), since the kernel sets the read-ahead when INIT's answer
/// reaches it.
fn raise_read_ahead(mountpoint: PathBuf, bytes: u32) {
    let raise = move || {
        if let Err(e) = std::fs::metadata(&mountpoint) {
            return debug!("read-ahead left alone: {}: {e}", mountpoint.display());
        }
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let Some((device, _)) = topmost_mount(&info, &mountpoint.to_string_lossy()) else {
            return debug!("read-ahead left alone: {} not in mountinfo", mountpoint.display());
        };
        let knob = format!("/sys/class/bdi/{device}/read_ahead_kb");
        match std::fs::write(&knob, (bytes >> 10).to_string()) {
            Ok(()) => info!("read-ahead through the page cache: {} KiB", bytes >> 10),
            Err(e) => debug!("read-ahead stays at the kernel's default: {knob}: {e}"),
        }
    };
    if let Err(e) = std::thread::Builder::new().name("read-ahead".into()).spawn(raise) {
        debug!("read-ahead left alone: {e}");
    }
}

fn unescape_mountinfo(field: &str) -> String {
    let mut out = String::new();
    let mut rest = field;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        match rest.get(i + 1..i + 4).and_then(|o| u8::from_str_radix(o, 8).ok()) {
            Some(byte) => {
                out.push(byte as char);
                rest = &rest[i + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out + rest
}

/// The readiness pipe this process was given by its launcher, if any.
fn take_ready_fd() -> Option<File> {
    let fd: i32 = std::env::var(READY_FD).ok()?.parse().ok()?;
    // SAFETY: safe by construction: the variable is cleared so no child inherits it.
    unsafe { std::env::remove_var(READY_FD) };
    // SAFETY: the launcher dup2'ed the pipe's write end onto this fd for us, and nothing
    // else in this process owns it.
    Some(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Starts the daemon (this executable, in the foreground, detached) and waits for its report.
/// It gets its arguments in the plain command form, whichever form this process was given.
fn spawn_daemon(sources: &[String], mountpoint: &str, options: &[String]) -> anyhow::Result<()> {
    const CHILD_FD: i32 = 3;
    let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let exe = std::env::current_exe().context("cannot find the zarrmount executable")?;
    let mut command = Command::new(exe);
    command
        .args(daemon_args(sources, mountpoint, options))
        .env(READY_FD, CHILD_FD.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let write_raw = std::os::fd::AsRawFd::as_raw_fd(&write_end);
    // SAFETY: only async-signal-safe calls (setsid, dup2) between fork and exec.
    unsafe {
        command.pre_exec(move || {
            nix::unistd::setsid()?;
            if libc::dup2(write_raw, CHILD_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().context("cannot start the zarrmount daemon")?;
    drop(write_end);
    let mut report = String::new();
    File::from(read_end).read_to_string(&mut report)?;
    if report.starts_with("ready") {
        return Ok(());
    }
    // The daemon exits after its report: reap it.
    let status = child.wait()?;
    match report.trim() {
        "" => Err(anyhow!("the daemon exited before the mount was live ({status})")),
        reason => Err(anyhow!(reason.to_string())),
    }
}

/// The daemon's command line: options, then `--` so no SOURCE is taken for a flag.
fn daemon_args(sources: &[String], mountpoint: &str, options: &[String]) -> Vec<String> {
    let mut args = Vec::new();
    for option in options {
        args.push("-o".to_string());
        args.push(option.clone());
    }
    args.push("--".into());
    args.extend(sources.iter().cloned());
    args.push(mountpoint.into());
    args
}

/// Mounts and serves until unmounted. Reports readiness on `ready` (the caller reports
/// failures).
fn serve(
    config: MountConfig,
    specs: &[SourceSpec],
    fsname: &str,
    mountpoint: &Path,
    ready: &mut Option<File>,
) -> anyhow::Result<()> {
    // Block the termination signals before any thread starts, so all threads inherit the
    // mask and only the signal thread below receives them.
    let signals = termination_signals();
    signals.thread_block()?;
    let (session, unmounter) = start(&config, specs, fsname, mountpoint)?;
    let unmounter = Arc::new(unmounter);
    let on_signal = unmounter.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            while let Ok(signal) = signals.wait() {
                info!(?signal, "unmounting");
                on_signal.unmount();
            }
        })?;
    if let Some(mut ready) = ready.take() {
        let _ = ready.write_all(b"ready\n");
    }
    info!(mountpoint = %mountpoint.display(), "mounted");
    if let Err(e) = session.run() {
        // Leave no dead mount behind ("Transport endpoint is not connected").
        unmounter.unmount();
        return Err(e).context("FUSE session failed");
    }
    info!("unmounted; exiting");
    Ok(())
}

/// How the mount is undone: by umount(2) when this process mounted it, by `fusermount3 -u`
/// when fusermount did.
enum Unmounter {
    Kernel(PathBuf),
    Fusermount(PathBuf),
}

impl Unmounter {
    fn unmount(&self) {
        let result = match self {
            Unmounter::Kernel(path) => kernel::unmount(path).map_err(std::io::Error::from),
            Unmounter::Fusermount(path) => fusermount::unmount(path),
        };
        if let Err(e) = result {
            warn!("unmount failed: {e}");
        }
    }
}

fn termination_signals() -> SigSet {
    let mut set = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(signal);
    }
    set
}

fn start(
    config: &MountConfig,
    specs: &[SourceSpec],
    fsname: &str,
    mountpoint: &Path,
) -> anyhow::Result<(Session<FuseAdapter>, Unmounter)> {
    for option in &config.options.unknown {
        warn!("ignoring unknown mount option '{option}'");
    }
    bound_allocator();
    let owner = Owner {
        uid: config.fs.owner.uid,
        gid: config.fs.owner.gid,
        mode: config.fs.owner.store_mode(),
    };
    if let Some(dir) = &config.options.index_dir {
        crate::source::wds::configure_index(IndexConfig {
            cache_dir: dir.clone(),
            explicit: true,
        });
    }
    let catalog = Catalog::build(specs, config.memory_limit, owner)?;
    let read_path = ReadPath {
        cache: ChunkCache::new(config.cache_bytes, config.prefetch_cap),
        io: crate::io::engine(
            config.options.io,
            config.io_threads,
            BufferPool::new(config.buffer_pool),
            !config.options.odirect_off,
        )?,
        workers: Workers::new("decode", config.decode_threads)?,
        prefetch: (!config.options.prefetch_off).then(|| Prefetcher::new(config.prefetch_window)),
    };
    let fs = Arc::new(ZarrFs::new(catalog, read_path, config.fs.clone()));
    if let Err(e) = crate::stats::serve(fs.clone(), mountpoint) {
        warn!("`zarrmount stats` will not reach this mount: {e}");
    }
    let options = &config.options;
    // Other users see only what the modes grant them: the kernel checks the bits.
    let default_permissions = options.default_permissions || options.allow_other;
    let acl = if options.allow_other {
        SessionACL::All
    } else if options.allow_root {
        SessionACL::RootAndOwner
    } else {
        SessionACL::Owner
    };
    let mut fuse_config = Config::default();
    fuse_config.acl = acl;
    fuse_config.n_threads = Some(config.fuse_threads);
    fuse_config.clone_fd = true;
    let kernel_options = KernelOptions {
        fsname: fsname.to_string(),
        read_only: options.read_only,
        no_exec: options.no_exec,
        allow_other: acl != SessionACL::Owner,
        default_permissions,
        max_read: config.max_io,
    };
    let (device, unmounter) = match kernel::mount(mountpoint, &kernel_options)? {
        Mounted::Device(device) => (device, Unmounter::Kernel(mountpoint.to_path_buf())),
        Mounted::NotPermitted => (
            fusermount::mount(mountpoint, &kernel_options)
                .with_context(|| format!("cannot mount on {}", mountpoint.display()))?,
            Unmounter::Fusermount(mountpoint.to_path_buf()),
        ),
    };
    let (at, max_io) = (mountpoint.to_path_buf(), config.max_io);
    let adapter = FuseAdapter {
        fs,
        max_io,
        on_init: Some(Box::new(move || raise_read_ahead(at, max_io))),
    };
    match Session::from_fd(adapter, device, acl, fuse_config) {
        Ok(session) => Ok((session, unmounter)),
        Err(e) => {
            unmounter.unmount();
            Err(e).context("the FUSE handshake failed")
        }
    }
}

/// Chunk buffers are large and short-lived. glibc serves them from its heaps once a freed
/// one has raised its adaptive mmap threshold, and freed heap memory mostly stays with the
/// process, so the daemon's footprint would creep above the cache budget. A fixed threshold
/// keeps every buffer of 128 KiB or more in its own mapping, returned to the kernel when
/// freed; the buffer pool spares the cost of mapping again for the common sizes.
fn bound_allocator() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets an allocator parameter; it is called before the FUSE and
    // engine threads start allocating.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 10);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape_mountinfo(r"/mnt/a\040b"), "/mnt/a b");
        assert_eq!(unescape_mountinfo(r"/plain"), "/plain");
        assert_eq!(unescape_mountinfo(r"/odd\x"), r"/odd\x");
    }

    #[test]
    fn the_topmost_mount_gives_the_type_and_autofs_is_no_obstacle() {
        let info = "22 1 0:21 / /mnt/run\\04042 rw,relatime shared:1 - autofs systemd-1 rw,fd=49\n\
                    23 1 0:22 / /proc rw - proc proc rw\n\
                    31 22 0:30 / /mnt/run\\04042 ro,nosuid - fuse.zarrmount /data/run42 ro,user_id=0\n";
        assert_eq!(mounted_type_in(info, "/proc").as_deref(), Some("proc"));
        assert_eq!(
            mounted_type_in(info, "/mnt/run 42").as_deref(),
            Some("fuse.zarrmount")
        );
        let only_autofs: String = info.lines().next().unwrap().to_string() + "\n";
        assert_eq!(
            mounted_type_in(&only_autofs, "/mnt/run 42").as_deref(),
            Some("autofs")
        );
        assert_eq!(mounted_type_in(info, "/mnt"), None);
        assert_eq!(
            topmost_mount(info, "/mnt/run 42"),
            Some(("0:30", "fuse.zarrmount"))
        );
    }

    #[test]
    fn root_is_a_mountpoint_and_a_fresh_directory_is_not() {
        assert!(mounted_type(Path::new("/")).is_some() || !Path::new("/proc/self/mountinfo").exists());
        let dir = tempfile::tempdir().unwrap();
        assert!(mounted_type(&dir.path().canonicalize().unwrap()).is_none());
        assert!(check_mountpoint(dir.path()).is_ok());
        let file = dir.path().join("f");
        std::fs::write(&file, b"").unwrap();
        assert!(
            check_mountpoint(&file)
                .unwrap_err()
                .to_string()
                .contains("not a directory")
        );
        assert!(check_mountpoint(&dir.path().join("missing")).is_err());
    }
}
