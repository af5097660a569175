//! Mount options (`-o a,b=c`) and the settings derived from them.
//!
//! Options are checked strictly where zarrmount owns them (a bad size is an error), and
//! passed over where mount(8), fstab or systemd put them for someone else.

use std::path::PathBuf;

use crate::fs::{FsConfig, Ownership};
use crate::io::EngineChoice;

/// The options as given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MountOptions {
    pub read_only: bool,
    /// Nothing on the mount may be executed (`noexec`, which mount(8) adds to `user` mounts).
    pub no_exec: bool,
    pub allow_other: bool,
    /// Let root in as well as the mounting user (`allow_root`; implied by `allow_other`).
    pub allow_root: bool,
    /// Have the kernel check permission bits (`default_permissions`; implied by
    /// `allow_other`, so other users see only what the modes grant).
    pub default_permissions: bool,
    /// Owner of everything the read-only tree presents (`uid=`, a number or a user name).
    pub uid: Option<u32>,
    /// Its group (`gid=`, a number or a group name).
    pub gid: Option<u32>,
    /// Permission bits taken away from what the tree presents (`umask=`, octal).
    pub umask: Option<u32>,
    pub cache_size: Option<u64>,
    pub memory_limit: Option<u64>,
    /// Largest read or write the kernel may send in one request (`max_read=SIZE`).
    pub max_read: Option<u64>,
    pub debug: bool,
    pub log: Option<PathBuf>,
    pub io: EngineChoice,
    /// io_uring reads every extent through the page cache (`odirect=off`); by default long
    /// extents the page cache does not hold are read with O_DIRECT.
    pub odirect_off: bool,
    /// No reading ahead of sequential readers (`prefetch=off`; `on` is the default).
    pub prefetch_off: bool,
    /// Where WebDataset shard sets keep their persistent index (`index_dir=DIR`);
    /// `Some(None)` keeps none (`index_dir=none`), `None` is the default place.
    pub index_dir: Option<Option<PathBuf>>,
    /// Options nobody here owns, kept to be logged once.
    pub unknown: Vec<String>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum OptionError {
    #[error("bad value for option {key}: '{value}' ({reason})")]
    BadValue {
        key: String,
        value: String,
        reason: &'static str,
    },
    #[error("option {0} needs a value ({0}=…)")]
    MissingValue(String),
}

/// Generic options that mount(8), fstab and systemd pass to every helper; zarrmount has no
/// use for them (`ro` and `rw` are handled, the kernel applies the rest itself).
const GENERIC: &[&str] = &[
    "rw",
    "defaults",
    "auto",
    "noauto",
    "nofail",
    "_netdev",
    "user",
    "users",
    "nouser",
    "owner",
    "group",
    "suid",
    "nosuid",
    "dev",
    "nodev",
    "atime",
    "noatime",
    "relatime",
    "strictatime",
    "nodiratime",
    "sync",
    "async",
    "dirsync",
    "silent",
    "loud",
    "dev_mode",
];

impl MountOptions {
    /// Parses every `-o` argument (each a comma list).
    pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Self, OptionError> {
        let mut options = MountOptions::default();
        for item in args
            .iter()
            .flat_map(|a| a.as_ref().split(','))
            .filter(|s| !s.is_empty())
        {
            let (key, value) = match item.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (item, None),
            };
            match key {
                "ro" => options.read_only = true,
                "rw" => options.read_only = false,
                "noexec" => options.no_exec = true,
                "exec" => options.no_exec = false,
                "allow_other" => options.allow_other = true,
                "allow_root" => options.allow_root = true,
                "default_permissions" => options.default_permissions = true,
                "uid" => options.uid = Some(parse_id(key, need(key, value)?, user_id)?),
                "gid" => options.gid = Some(parse_id(key, need(key, value)?, group_id)?),
                "umask" => options.umask = Some(parse_umask(key, need(key, value)?)?),
                "debug" => options.debug = true,
                "cache_size" => options.cache_size = Some(parse_size(key, need(key, value)?)?),
                "memory_limit" => options.memory_limit = Some(parse_size(key, need(key, value)?)?),
                "max_read" => options.max_read = Some(parse_max_read(key, need(key, value)?)?),
                "log" => options.log = Some(PathBuf::from(need(key, value)?)),
                "index_dir" => {
                    options.index_dir = Some(match need(key, value)? {
                        "none" => None,
                        dir => Some(PathBuf::from(dir)),
                    })
                }
                "prefetch" => options.prefetch_off = !switch(key, value)?,
                "odirect" => options.odirect_off = !switch(key, value)?,
                "io" => {
                    options.io = match need(key, value)? {
                        "uring" | "io_uring" => EngineChoice::Uring,
                        "pread" => EngineChoice::Pread,
                        other => {
                            return Err(OptionError::BadValue {
                                key: key.into(),
                                value: other.into(),
                                reason: "use uring or pread",
                            });
                        }
                    }
                }
                _ if GENERIC.contains(&key)
                    || key.starts_with("x-")
                    || key.starts_with("X-")
                    || key == "comment" => {}
                _ => options.unknown.push(item.to_string()),
            }
        }
        Ok(options)
    }
}

fn need<'a>(key: &str, value: Option<&'a str>) -> Result<&'a str, OptionError> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| OptionError::MissingValue(key.to_string()))
}

/// An `on`/`off` switch's value.
fn switch(key: &str, value: Option<&str>) -> Result<bool, OptionError> {
    match need(key, value)? {
        "on" => Ok(true),
        "off" => Ok(false),
        other => Err(OptionError::BadValue {
            key: key.into(),
            value: other.into(),
            reason: "use on or off",
        }),
    }
}

/// A user or group id: a number, or a name looked up with `lookup`.
fn parse_id(key: &str, value: &str, lookup: fn(&str) -> Option<u32>) -> Result<u32, OptionError> {
    if value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse().map_err(|_| OptionError::BadValue {
            key: key.into(),
            value: value.into(),
            reason: "too large",
        });
    }
    lookup(value).ok_or_else(|| OptionError::BadValue {
        key: key.into(),
        value: value.into(),
        reason: if key == "uid" {
            "neither a number nor a known user"
        } else {
            "neither a number nor a known group"
        },
    })
}

fn user_id(name: &str) -> Option<u32> {
    nix::unistd::User::from_name(name).ok()?.map(|u| u.uid.as_raw())
}

fn group_id(name: &str) -> Option<u32> {
    nix::unistd::Group::from_name(name).ok()?.map(|g| g.gid.as_raw())
}

/// Permission bits in octal, as umask(1) writes them (`022`, `0027`).
fn parse_umask(key: &str, value: &str) -> Result<u32, OptionError> {
    let octal = !value.is_empty() && value.bytes().all(|b| (b'0'..=b'7').contains(&b));
    octal
        .then(|| u32::from_str_radix(value, 8).ok())
        .flatten()
        .filter(|mask| *mask <= 0o777)
        .ok_or_else(|| OptionError::BadValue {
            key: key.into(),
            value: value.into(),
            reason: "expected octal permission bits, 000 to 777",
        })
}

/// A byte size: digits with an optional binary suffix K, M, G or T (`KiB`, `Mi`, `M` alike).
pub fn parse_size(key: &str, value: &str) -> Result<u64, OptionError> {
    let bad = |reason| OptionError::BadValue {
        key: key.into(),
        value: value.into(),
        reason,
    };
    let text = value.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, suffix) = text.split_at(split);
    let number: u64 = digits
        .parse()
        .map_err(|_| bad("expected a number with an optional K, M, G or T"))?;
    let shift = match suffix
        .trim()
        .to_ascii_uppercase()
        .trim_end_matches('B')
        .trim_end_matches('I')
    {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(bad("unknown unit; use K, M, G or T")),
    };
    number.checked_mul(1 << shift).ok_or_else(|| bad("too large"))
}

/// The bounds of `max_read`: a page, and 8 MiB, more than a whole chunk of any usual size and
/// well within the 16 MiB request buffer of each FUSE thread.
const MAX_READ: std::ops::RangeInclusive<u64> = 4096..=8 << 20;

fn parse_max_read(key: &str, value: &str) -> Result<u64, OptionError> {
    let size = parse_size(key, value)?;
    if !MAX_READ.contains(&size) || size % 4096 != 0 {
        return Err(OptionError::BadValue {
            key: key.into(),
            value: value.into(),
            reason: "expected a multiple of 4K from 4K to 8M",
        });
    }
    Ok(size)
}

/// What the options come to.
#[derive(Clone, Debug)]
pub struct MountConfig {
    pub options: MountOptions,
    pub cache_bytes: u64,
    pub memory_limit: u64,
    /// Largest request the kernel is asked to send: 4 MiB by default, so that a whole chunk
    /// of the usual sizes (1–4 MiB) is one READ rather than one per MiB. The kernel caps it at
    /// `fs.fuse.max_pages_limit` (256 pages unless raised; `fs::fuse` logs the cap).
    pub max_io: u32,
    /// FUSE worker threads: enough that a slow chunk fetch doesn't stall `ls`, `stat` and
    /// cached reads behind it on a 2-core machine, few enough to stay cheap.
    pub fuse_threads: usize,
    /// io_uring rings (one thread each): one per core, up to 4. A buffered read that the page
    /// cache holds is copied out on its ring's thread, so one ring caps the throughput of warm
    /// reads at what one core copies (the engine benchmark showed a single ring thread
    /// saturated while pread's threads were not).
    pub io_threads: usize,
    /// Threads that decode chunks and send replies: one per core, at least two so a slow
    /// decode does not hold up the replies behind it.
    pub decode_threads: usize,
    /// The most bytes one reader's read-ahead window holds: enough chunks in flight to keep
    /// a disk's queue full, a small part of the cache.
    pub prefetch_window: u64,
    /// The most bytes of prefetched chunks not read yet, all readers together.
    pub prefetch_cap: u64,
    /// Recycled read buffers kept for reuse.
    pub buffer_pool: u64,
    pub fs: FsConfig,
}

impl MountConfig {
    /// Defaults: a chunk cache of a quarter of RAM capped at 8 GiB (decoded chunks are cheap to
    /// refetch, RAM is not), and memory stores bounded by a quarter of RAM each.
    pub fn new(options: MountOptions) -> Self {
        let ram = physical_memory();
        let cache_bytes = options.cache_size.unwrap_or((ram / 4).min(8 << 30));
        let max_io = options.max_read.map_or(4 << 20, |n| n as u32);
        let memory_limit = options.memory_limit.unwrap_or(ram / 4);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let defaults = FsConfig::default();
        let fs = FsConfig {
            read_only: options.read_only,
            owner: Ownership {
                uid: options.uid.unwrap_or(defaults.owner.uid),
                gid: options.gid.unwrap_or(defaults.owner.gid),
                umask: options.umask.unwrap_or(defaults.owner.umask),
            },
            ..defaults
        };
        MountConfig {
            options,
            cache_bytes,
            memory_limit,
            max_io,
            fuse_threads: 4,
            io_threads: cores.clamp(1, 4),
            decode_threads: cores.clamp(2, 8),
            prefetch_window: (cache_bytes / 8).min(64 << 20),
            prefetch_cap: (cache_bytes / 2).min(512 << 20),
            buffer_pool: (cache_bytes / 16).min(32 << 20),
            fs,
        }
    }
}

fn physical_memory() -> u64 {
    // SAFETY: sysconf has no preconditions; it returns -1 for unknown names.
    let (pages, page) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    if pages > 0 && page > 0 {
        pages as u64 * page as u64
    } else {
        4 << 30
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_suffixes() {
        assert_eq!(parse_size("k", "4096"), Ok(4096));
        assert_eq!(parse_size("k", "64K"), Ok(64 << 10));
        assert_eq!(parse_size("k", "2G"), Ok(2 << 30));
        assert_eq!(parse_size("k", "3MiB"), Ok(3 << 20));
        assert_eq!(parse_size("k", "1t"), Ok(1 << 40));
        for bad in ["", "G", "abc", "1.5G", "12Q", "-1", "99999999999T"] {
            assert!(parse_size("k", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn options_parse_ours_and_pass_over_generic_ones() {
        let parsed = MountOptions::parse(&[
            "ro,allow_other,cache_size=2G",
            "memory_limit=64M,debug,log=/tmp/z.log,index_dir=/var/cache/z",
        ]);
        let parsed = parsed.unwrap();
        assert!(parsed.read_only && parsed.allow_other && parsed.debug);
        assert_eq!(parsed.cache_size, Some(2 << 30));
        assert_eq!(parsed.memory_limit, Some(64 << 20));
        assert_eq!(parsed.log, Some(PathBuf::from("/tmp/z.log")));
        assert_eq!(parsed.index_dir, Some(Some(PathBuf::from("/var/cache/z"))));
        assert_eq!(
            MountOptions::parse(&["index_dir=none"]).unwrap().index_dir,
            Some(None)
        );
        let switches = MountOptions::parse(&["io=pread,prefetch=off,odirect=off"]).unwrap();
        assert!(switches.io == EngineChoice::Pread && switches.prefetch_off && switches.odirect_off);
        let defaults = MountOptions::parse(&["prefetch=on,odirect=on"]).unwrap();
        assert_eq!(defaults, MountOptions::default());
        let generic =
            MountOptions::parse(&["rw,nofail,_netdev,noauto,x-systemd.automount,x-systemd.idle-timeout=60"]);
        assert_eq!(generic.unwrap(), MountOptions::default());
        assert_eq!(
            MountOptions::parse(&["frobnicate"]).unwrap().unknown,
            vec!["frobnicate"]
        );
    }

    #[test]
    fn bad_values_are_refused_with_the_option_named() {
        for bad in ["max_read=0", "max_read=16M", "max_read=5000"] {
            let err = MountOptions::parse(&[bad]).unwrap_err().to_string();
            assert!(
                err.contains("max_read") && err.contains("multiple of 4K"),
                "{err}"
            );
        }
        let err = MountOptions::parse(&["cache_size=lots"]).unwrap_err();
        assert!(
            err.to_string().contains("cache_size") && err.to_string().contains("lots"),
            "{err}"
        );
        assert_eq!(
            MountOptions::parse(&["memory_limit"]),
            Err(OptionError::MissingValue("memory_limit".into()))
        );
        let err = MountOptions::parse(&["odirect=auto"]).unwrap_err().to_string();
        assert!(err.contains("odirect") && err.contains("on or off"), "{err}");
        assert_eq!(
            MountOptions::parse(&["log="]),
            Err(OptionError::MissingValue("log".into()))
        );
    }

    #[test]
    fn owners_and_modes_parse_strictly() {
        let parsed =
            MountOptions::parse(&["uid=1000,gid=100,umask=027,default_permissions,allow_root"]).unwrap();
        assert_eq!(
            (parsed.uid, parsed.gid, parsed.umask),
            (Some(1000), Some(100), Some(0o27))
        );
        assert!(parsed.default_permissions && parsed.allow_root);
        let named = MountOptions::parse(&["uid=root,gid=root,umask=0"]).unwrap();
        assert_eq!((named.uid, named.gid, named.umask), (Some(0), Some(0), Some(0)));
        for bad in [
            "uid=nosuchuser-zm",
            "gid=nosuchgroup-zm",
            "uid=99999999999",
            "umask=999",
            "umask=0o22",
            "umask=1000",
            "umask=+22",
            "uid=",
        ] {
            let err = MountOptions::parse(&[bad]).unwrap_err().to_string();
            let key = bad.split('=').next().unwrap();
            assert!(err.contains(key), "{bad}: {err}");
        }
        let err = MountOptions::parse(&["uid=abc-zm"]).unwrap_err().to_string();
        assert_eq!(
            err,
            "bad value for option uid: 'abc-zm' (neither a number nor a known user)"
        );
    }

    #[test]
    fn generic_options_from_mount_8_and_systemd_pass_quietly() {
        let line = "ro,nosuid,nodev,user=alice,users,owner,group,nofail,_netdev,noauto,auto,\
                    x-systemd.automount,x-systemd.idle-timeout=60,X-mount.mkdir,comment=systemd.automount,defaults";
        let parsed = MountOptions::parse(&[line]).unwrap();
        assert!(parsed.unknown.is_empty(), "{:?}", parsed.unknown);
        assert!(parsed.read_only);
        assert!(MountOptions::parse(&["user,noexec"]).unwrap().no_exec);
    }

    #[test]
    fn ownership_reaches_the_filesystem_config() {
        let config = MountConfig::new(MountOptions::parse(&["uid=7,gid=8,umask=077"]).unwrap());
        assert_eq!(
            config.fs.owner,
            Ownership {
                uid: 7,
                gid: 8,
                umask: 0o77
            }
        );
        assert_eq!(
            (config.fs.owner.file_mode(), config.fs.owner.dir_mode()),
            (0o400, 0o500)
        );
        let defaults = MountConfig::new(MountOptions::default()).fs.owner;
        assert_eq!(
            (defaults.file_mode(), defaults.dir_mode(), defaults.store_mode()),
            (0o444, 0o555, 0o755)
        );
        assert_eq!(defaults.uid, nix::unistd::geteuid().as_raw());
    }

    #[test]
    fn config_applies_sizes_and_read_only() {
        let config = MountConfig::new(MountOptions::parse(&["ro,cache_size=1M,memory_limit=2M"]).unwrap());
        assert_eq!((config.cache_bytes, config.memory_limit), (1 << 20, 2 << 20));
        assert!(config.fs.read_only);
        let defaults = MountConfig::new(MountOptions::default());
        assert!(defaults.cache_bytes > 0 && defaults.cache_bytes <= 8 << 30);
        assert_eq!(defaults.max_io, 4 << 20);
        let small = MountConfig::new(MountOptions::parse(&["max_read=128K"]).unwrap());
        assert_eq!(small.max_io, 128 << 10);
    }
}
