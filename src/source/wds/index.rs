//! The persistent index: one file per shard set in a cache directory, so that remounting
//! an unchanged set reads one small file instead of walking every shard.
//!
//! - Where: [`IndexConfig::cache_dir`], by default `$XDG_CACHE_HOME/zarrmount` or
//!   `~/.cache/zarrmount`; never a directory that holds one of the set's shards.
//! - Name: `<set name>-<16 hex digits>.wdsidx`, the digits a hash of the canonical shard
//!   paths in set order.
//! - Validity, per shard: the entry is used only if the shard's canonical path, size,
//!   mtime (to the nanosecond) and inode are those recorded; any other shard is indexed
//!   again, and the file is rewritten (to a temporary name, then renamed).
//! - Format: `ZMWDSIDX`, a u32 LE version ([`VERSION`]), the payload ([`codec`] for each
//!   shard), then a 64-bit hash of the payload. A file with another magic, version or hash,
//!   or that does not decode, is ignored with a logged reason and rebuilt.
//!
//! [`codec`]: super::codec

use std::collections::HashMap;
use std::fs::{self, Metadata};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::codec::{self, CodecError, Reader, Writer};
use super::scan::{ShardEnd, ShardIndex, index_file};
use super::shards::ShardSet;
use super::tar::EndKind;

const MAGIC: &[u8; 8] = b"ZMWDSIDX";
/// Bump on any change to the layout or to what indexing produces (grouping rules too).
pub const VERSION: u32 = 1;
const EXTENSION: &str = "wdsidx";

/// Where persistent indexes go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexConfig {
    /// `None`: index every time, keep nothing.
    pub cache_dir: Option<PathBuf>,
    /// The user chose `cache_dir`: it is used even if it holds shards (a default one
    /// that does is not, so that nothing is written next to a source unasked).
    pub explicit: bool,
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig {
            cache_dir: default_cache_dir(),
            explicit: false,
        }
    }
}

/// `$XDG_CACHE_HOME/zarrmount` (if absolute), else `$HOME/.cache/zarrmount`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    let base = xdg.or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("zarrmount"))
}

/// What identifies one version of a shard file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub size: u64,
    pub mtime_sec: i64,
    pub mtime_nsec: i64,
    pub ino: u64,
}

impl Stamp {
    pub fn of(meta: &Metadata) -> Stamp {
        Stamp {
            size: meta.len(),
            mtime_sec: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
            ino: meta.ino(),
        }
    }
}

/// One shard of a set, indexed or taken from the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedShard {
    /// The path as the set lists it (what webdataset calls `__url__`).
    pub path: PathBuf,
    /// Its canonical path and stamp; `None` if it could not be opened (then `index` is
    /// empty and its `end` says why).
    pub canonical: Option<PathBuf>,
    pub stamp: Option<Stamp>,
    pub index: ShardIndex,
}

/// A shard set with every shard's index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardSetIndex {
    pub name: String,
    pub shards: Vec<IndexedShard>,
    pub stats: LoadStats,
}

/// How the set's index was obtained (for logs and `stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadStats {
    /// Shards whose index came from the cache file.
    pub reused: usize,
    /// Shards walked now.
    pub indexed: usize,
    /// Shards that could not be opened.
    pub failed: usize,
    /// The cache file read and/or written.
    pub cache_file: Option<PathBuf>,
    /// Why the cache file was not used or not written, if so.
    pub note: Option<String>,
}

/// The index of every shard of `set`, from the cache where it is still valid.
pub fn load_or_index(set: &ShardSet, config: &IndexConfig) -> ShardSetIndex {
    let mut stats = LoadStats::default();
    let located: Vec<Located> = set
        .shards
        .iter()
        .map(|path| {
            let found = fs::canonicalize(path)
                .and_then(|canonical| {
                    let meta = fs::metadata(&canonical)?;
                    if !meta.is_file() {
                        return Err(std::io::Error::other("not a regular file"));
                    }
                    Ok((canonical, Stamp::of(&meta)))
                })
                .map_err(|e| format!("{}: {e}", path.display()));
            (path.clone(), found)
        })
        .collect();
    let file = config.cache_dir.as_ref().and_then(|dir| {
        let refused = !config.explicit
            && located.iter().any(|(_, found)| {
                found
                    .as_ref()
                    .is_ok_and(|(canonical, _)| canonical.parent().is_some_and(|p| same_dir(p, dir)))
            });
        if refused {
            stats.note = Some(format!(
                "cache directory {} holds shards: not used",
                dir.display()
            ));
            return None;
        }
        Some(dir.join(cache_file_name(&set.name, &located)))
    });
    let cached = match &file {
        Some(file) => read_cache(file).unwrap_or_else(|note| {
            if let Some(note) = &note {
                tracing::warn!(file = %file.display(), "ignoring the WebDataset index cache: {note}");
            }
            stats.note = note;
            Vec::new()
        }),
        None => Vec::new(),
    };
    let mut cached: HashMap<PathBuf, (Stamp, ShardIndex)> = cached
        .into_iter()
        .map(|(path, stamp, index)| (path, (stamp, index)))
        .collect();
    let mut shards: Vec<IndexedShard> = Vec::with_capacity(located.len());
    // A shard listed twice (`a.tar::a.tar`) is indexed once.
    let mut seen: HashMap<PathBuf, usize> = HashMap::new();
    for (path, found) in located {
        let shard = match found {
            Err(reason) => {
                stats.failed += 1;
                tracing::warn!("WebDataset shard cannot be opened: {reason}");
                IndexedShard {
                    path,
                    canonical: None,
                    stamp: None,
                    index: unreadable(reason),
                }
            }
            Ok((canonical, stamp)) => {
                let earlier = seen
                    .get(&canonical)
                    .map(|&i| &shards[i])
                    .filter(|s| s.stamp == Some(stamp));
                let hit = match earlier {
                    Some(earlier) => Some(earlier.index.clone()),
                    None => cached
                        .remove(&canonical)
                        .filter(|(recorded, _)| *recorded == stamp)
                        .map(|(_, index)| index),
                };
                seen.insert(canonical.clone(), shards.len());
                let index = match hit {
                    Some(index) => {
                        stats.reused += 1;
                        index
                    }
                    None => match index_file(&canonical) {
                        Ok(index) => {
                            stats.indexed += 1;
                            index
                        }
                        Err(e) => {
                            stats.failed += 1;
                            unreadable(e.to_string())
                        }
                    },
                };
                IndexedShard {
                    path,
                    canonical: Some(canonical),
                    stamp: Some(stamp),
                    index,
                }
            }
        };
        shards.push(shard);
    }
    if let Some(file) = &file
        && (stats.indexed > 0 || !cached.is_empty())
        && let Err(e) = write_cache(file, &shards)
    {
        tracing::warn!(file = %file.display(), "cannot write the WebDataset index cache: {e}");
        stats.note = Some(format!("not written: {e}"));
    }
    stats.cache_file = file;
    tracing::info!(failed = stats.failed, cache = ?stats.cache_file,
        "webdataset {}: {} shards from the index cache, {} indexed", set.name, stats.reused, stats.indexed);
    ShardSetIndex {
        name: set.name.clone(),
        shards,
        stats,
    }
}

fn same_dir(a: &Path, b: &Path) -> bool {
    fs::canonicalize(b).is_ok_and(|b| b == a)
}

fn unreadable(reason: String) -> ShardIndex {
    ShardIndex {
        file_len: 0,
        samples: Vec::new(),
        skipped: Vec::new(),
        end: ShardEnd {
            kind: EndKind::Io,
            offset: 0,
            reason,
        },
        members: 0,
    }
}

fn cache_file_name(set_name: &str, located: &[Located]) -> String {
    let mut keyed = Vec::new();
    for (path, found) in located {
        let path = found.as_ref().map_or(path, |(canonical, _)| canonical);
        keyed.extend_from_slice(path.as_os_str().as_bytes());
        keyed.push(0);
    }
    let safe: String = set_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    format!("{safe}-{:016x}.{EXTENSION}", hash(&keyed))
}

/// FNV-1a over 8-byte words (then the tail bytes): a checksum against torn or damaged
/// files, not against tampering.
pub fn hash(data: &[u8]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01B3;
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        let mut word = [0u8; 8];
        word.copy_from_slice(w);
        h = (h ^ u64::from_le_bytes(word)).wrapping_mul(PRIME);
    }
    for &b in words.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(PRIME);
    }
    h
}

type CachedShard = (PathBuf, Stamp, ShardIndex);
/// A shard path as listed, with its canonical path and stamp or why it has none.
type Located = (PathBuf, Result<(PathBuf, Stamp), String>);

/// The entries of a cache file; `Err(None)` when there is none, `Err(Some(why))` when it
/// is unusable.
fn read_cache(file: &Path) -> Result<Vec<CachedShard>, Option<String>> {
    let data = match fs::read(file) {
        Ok(data) => data,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(None),
        Err(e) => return Err(Some(format!("reading it: {e}"))),
    };
    decode(&data).map_err(Some)
}

/// Decodes a whole cache file.
pub fn decode(data: &[u8]) -> Result<Vec<CachedShard>, String> {
    let head = MAGIC.len() + 4;
    if data.len() < head + 8 || &data[..MAGIC.len()] != MAGIC {
        return Err("not a zarrmount WebDataset index".into());
    }
    let version = u32::from_le_bytes([data[8], data[9], data[10], data[11]]);
    if version != VERSION {
        return Err(format!(
            "format version {version}, this zarrmount writes {VERSION}"
        ));
    }
    let (payload, sum) = data[head..].split_at(data.len() - head - 8);
    let mut sum_bytes = [0u8; 8];
    sum_bytes.copy_from_slice(sum);
    if hash(payload) != u64::from_le_bytes(sum_bytes) {
        return Err("checksum mismatch (torn or damaged file)".into());
    }
    decode_payload(payload).map_err(|e| e.to_string())
}

fn decode_payload(payload: &[u8]) -> Result<Vec<CachedShard>, CodecError> {
    let mut r = Reader::new(payload);
    let n = r.count()?;
    let mut shards = Vec::with_capacity(n.min(codec::PREALLOCATE));
    for _ in 0..n {
        let path = PathBuf::from(std::ffi::OsStr::from_bytes(r.bytes()?));
        let stamp = Stamp {
            size: r.uint()?,
            mtime_sec: r.uint()? as i64,
            mtime_nsec: r.uint()? as i64,
            ino: r.uint()?,
        };
        let index = codec::get_shard(&mut r)?;
        if index.file_len != stamp.size {
            return Err(r.err("shard length differs from its stamp"));
        }
        shards.push((path, stamp, index));
    }
    if !r.is_empty() {
        return Err(r.err("trailing bytes"));
    }
    Ok(shards)
}

/// Encodes the indexed shards of a set (those that could be opened).
pub fn encode(shards: &[IndexedShard]) -> Vec<u8> {
    let mut w = Writer::default();
    let mut unique = std::collections::HashSet::new();
    let kept: Vec<_> = shards
        .iter()
        .filter_map(|s| Some((s.canonical.as_ref()?, s.stamp?, &s.index)))
        .filter(|(path, _, _)| unique.insert(*path))
        .collect();
    w.uint(kept.len() as u64);
    for (path, stamp, index) in kept {
        w.bytes(path.as_os_str().as_bytes());
        w.uint(stamp.size);
        w.uint(stamp.mtime_sec as u64);
        w.uint(stamp.mtime_nsec as u64);
        w.uint(stamp.ino);
        codec::put_shard(&mut w, index);
    }
    frame(&w.buf)
}

/// A cache file holding `payload`: the magic, [`VERSION`], the payload and its hash.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 20);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&hash(payload).to_le_bytes());
    out
}

/// The payload of a cache file [`frame`] made (nothing checked but the length).
pub fn payload(file: &[u8]) -> Option<&[u8]> {
    file.get(MAGIC.len() + 4..file.len().checked_sub(8)?)
}

fn write_cache(file: &Path, shards: &[IndexedShard]) -> std::io::Result<()> {
    if let Some(dir) = file.parent() {
        fs::create_dir_all(dir)?;
    }
    let tmp = file.with_extension(format!("{EXTENSION}.tmp{}", std::process::id()));
    fs::write(&tmp, encode(shards))?;
    fs::rename(&tmp, file).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}
