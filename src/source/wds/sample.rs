//! Members into samples, exactly as webdataset 1.0.2 does it (`tar_file_iterator` then
//! `group_by_keys` in `tariterators.py`):
//!
//! - only regular members are data (`TarInfo.isreg()`); directories are passed over
//!   silently, other non-regular members are listed in `skipped`;
//! - a top-level `__…__` name, or any name matching `__[^/]*__($|/)` from its start
//!   (`re.match`), is metadata and passed over;
//! - the name is split by `base_plus_ext`'s regex `^((?:.*/|)[^.]+)[.]([^/]*)$`
//!   ([`split_key`]): key = directories + basename up to its first dot, suffix = the rest;
//!   a name it does not match is passed over;
//! - a sample is a run of ADJACENT members with the same key; passed-over members do not
//!   break a run; a key that comes back later starts another sample with the same key;
//! - webdataset lowercases suffixes; both spellings are kept here ([`Field::suffix`],
//!   [`Field::suffix_lower`]).
//!
//! Where webdataset would raise or this index refuses, the whole sample is skipped and
//! listed with its reason (see [`SkipReason`]): a duplicate suffix (compared lowercased,
//! webdataset's `ValueError("duplicate file name in tar file")`; its default handler
//! would stop the whole pipeline, `warn_and_continue` would keep the first member: neither
//! gives a sample one can trust), a member name that is absolute or has a `..` component,
//! a sparse member, a name that is not UTF-8, and a member cut by the end of the file.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use super::npy::NpyHeader;
use super::tar::{End, Entry, EntryKind};

/// One member of a sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The suffix as written in the tar (`Base__Zone__CoordinateX.npy`). Shared between
    /// the samples of a shard ([`Suffixes`]).
    pub suffix: Arc<str>,
    /// The suffix as webdataset names it (`base__zone__coordinatex.npy`).
    pub suffix_lower: Arc<str>,
    /// The member's data: `[offset, offset + size)` of the shard.
    pub offset: u64,
    pub size: u64,
    /// For a suffix whose last extension is `npy`: its header, or why it cannot be used.
    /// Boxed: a field without one then takes 56 bytes instead of 96.
    pub npy: Option<Box<Result<NpyHeader, String>>>,
}

impl Field {
    /// The last extension, lowercased: what webdataset's decoders dispatch on.
    pub fn extension(&self) -> &str {
        self.suffix_lower.rsplit('.').next().unwrap_or(&self.suffix_lower)
    }
}

/// A sample: its key and its members in tar order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub key: String,
    /// Where its first member's header starts.
    pub offset: u64,
    pub fields: Vec<Field>,
}

/// A member or a sample that is not data, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The member name, or for a skipped sample its key (lossy UTF-8).
    pub name: String,
    /// Where its header starts.
    pub offset: u64,
    pub reason: SkipReason,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum SkipReason {
    /// A symlink, hardlink, device, FIFO or unknown type: never data.
    NotRegular(EntryKind),
    /// A member name webdataset cannot split into key and suffix.
    NoSuffix,
    /// A `__…__` metadata member.
    Metadata,
    /// The member's data runs past the end of the file.
    Truncated,
    /// A sample with two members of one (lowercased) suffix.
    DuplicateSuffix(String),
    /// A sample with a member whose name is absolute, has a `..` component or a NUL.
    UnsafeName(String),
    /// A sample with a sparse member (its data is not one byte range).
    SparseMember(String),
    /// A sample whose key or suffix is not UTF-8.
    NotUtf8(String),
    /// A sample one of whose members is cut by the end of the file.
    TruncatedMember(String),
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::NotRegular(kind) => write!(f, "{kind:?} member: never data"),
            SkipReason::NoSuffix => write!(f, "no key.suffix name (webdataset ignores it)"),
            SkipReason::Metadata => write!(f, "__…__ metadata member (webdataset ignores it)"),
            SkipReason::Truncated => write!(f, "data cut by the end of the file"),
            SkipReason::DuplicateSuffix(s) => write!(f, "two members with suffix {s:?} (webdataset raises)"),
            SkipReason::UnsafeName(n) => write!(f, "member {n:?} is absolute or has a .. component"),
            SkipReason::SparseMember(n) => write!(f, "member {n:?} is a sparse file"),
            SkipReason::NotUtf8(n) => write!(f, "member {n:?} has a name that is not UTF-8"),
            SkipReason::TruncatedMember(n) => write!(f, "member {n:?} is cut by the end of the file"),
        }
    }
}

/// Suffixes that collide with the fields webdataset puts in every sample dict.
const RESERVED: [&str; 3] = ["__key__", "__url__", "__local_path__"];

/// webdataset's `base_plus_ext`: `^((?:.*/|)[^.]+)[.]([^/]*)$`, backtracking included.
/// The directory part is tried longest first (`.*/` is greedy and cannot cross a newline),
/// then empty; the key runs to the first dot after it, the suffix may not contain `/`. So
/// `a/b/.hidden` splits as (`a/b/`, `hidden`) while `.hidden` and `a/b` do not split.
pub fn split_key(name: &[u8]) -> Option<(&[u8], &[u8])> {
    // The suffix has no `/`, so the dot is the first one after the last slash; the key
    // may not contain a dot, so the directory part must end after every earlier dot.
    let base = name.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
    let dot = base + name[base..].iter().position(|&b| b == b'.')?;
    let earlier_dot = name[..dot].iter().rposition(|&b| b == b'.');
    let first_newline = name.iter().position(|&b| b == b'\n').unwrap_or(name.len());
    let starts = name[..first_newline]
        .iter()
        .enumerate()
        .rev()
        .filter(|&(_, &b)| b == b'/')
        .map(|(i, _)| i + 1)
        .chain(std::iter::once(0));
    for start in starts {
        if dot > start && earlier_dot.is_none_or(|q| q < start) {
            return Some((&name[..dot], &name[dot + 1..]));
        }
        if earlier_dot.is_some_and(|q| q >= start) {
            return None;
        }
    }
    None
}

/// `tar_file_iterator`'s metadata tests: a top-level name `__…__`, or `re.match` of
/// `__[^/]*__($|/)` (whose `$` also matches before a final newline).
pub fn is_meta(name: &[u8]) -> bool {
    let top_level = !name.contains(&b'/');
    if top_level && name.starts_with(b"__") && name.ends_with(b"__") {
        return true;
    }
    // The regex's `[^/]*` stays inside the first component, which must then close with
    // `__` (followed by `/` or the end), or be the whole name ending in `__\n`.
    let first = name.split(|&b| b == b'/').next().unwrap_or(name);
    first.len() >= 4
        && first.starts_with(b"__")
        && (first.ends_with(b"__") || (top_level && first.len() >= 5 && first.ends_with(b"__\n")))
}

/// Why a member name must never become data, if it must not.
pub fn is_unsafe(name: &[u8]) -> bool {
    name.starts_with(b"/") || name.contains(&0) || name.split(|&b| b == b'/').any(|c| c == b"..")
}

struct Building {
    key: Vec<u8>,
    sample: Sample,
    bad: Option<SkipReason>,
}

/// Groups the members of one shard, in tar order.
#[derive(Default)]
pub struct Grouper {
    samples: Vec<Sample>,
    skipped: Vec<Skipped>,
    current: Option<Building>,
    suffixes: Suffixes,
}

/// Shares the strings of suffixes that repeat from sample to sample: a shard of a million
/// samples with four suffixes holds eight strings, not eight million.
#[derive(Default)]
pub struct Suffixes {
    known: HashMap<Vec<u8>, Interned>,
    /// A direct-mapped front for `known`, indexed by a hash of a few bytes: most lookups
    /// are the same handful of suffixes, and SipHash costs more than one comparison.
    recent: [Option<(Vec<u8>, Interned)>; 16],
}

type Interned = (Arc<str>, Arc<str>);

impl Suffixes {
    /// Distinct suffixes kept; a shard with more (unique suffixes per sample) starts over.
    const MAX: usize = 4096;

    /// The suffix and its lowercase form, or `None` if it is not UTF-8.
    pub fn get(&mut self, raw: &[u8]) -> Option<(Arc<str>, Arc<str>)> {
        let first = usize::from(raw.first().copied().unwrap_or(0));
        let last = usize::from(raw.last().copied().unwrap_or(0));
        let slot = (raw.len() ^ first ^ (last << 1)) % 16;
        if let Some((bytes, interned)) = &self.recent[slot]
            && bytes == raw
        {
            return Some(interned.clone());
        }
        let interned = match self.known.get(raw) {
            Some(found) => found.clone(),
            None => {
                let suffix: Arc<str> = std::str::from_utf8(raw).ok()?.into();
                let lower: Arc<str> = lowercase(&suffix).into();
                if self.known.len() == Self::MAX {
                    self.known.clear();
                }
                self.known.insert(raw.to_vec(), (suffix.clone(), lower.clone()));
                (suffix, lower)
            }
        };
        self.recent[slot] = Some((raw.to_vec(), interned.clone()));
        Some(interned)
    }
}

impl Grouper {
    /// Takes the next member; returns its field when it joins a sample that is still good
    /// (so the caller can read its `.npy` header).
    pub fn push(&mut self, entry: &Entry) -> Option<&mut Field> {
        let skip = |reason| Skipped {
            name: String::from_utf8_lossy(&entry.name).into_owned(),
            offset: entry.header_offset,
            reason,
        };
        match entry.kind {
            EntryKind::Directory => return None,
            EntryKind::Regular | EntryKind::Sparse => {}
            kind => {
                self.skipped.push(skip(SkipReason::NotRegular(kind)));
                return None;
            }
        }
        if is_meta(&entry.name) {
            self.skipped.push(skip(SkipReason::Metadata));
            return None;
        }
        let Some((key, suffix)) = split_key(&entry.name) else {
            self.skipped.push(skip(SkipReason::NoSuffix));
            return None;
        };
        if self.current.as_ref().is_none_or(|c| c.key != key) {
            self.close();
            self.current = Some(Building {
                key: key.to_vec(),
                sample: Sample {
                    key: String::from_utf8_lossy(key).into_owned(),
                    offset: entry.header_offset,
                    fields: Vec::new(),
                },
                bad: std::str::from_utf8(key)
                    .is_err()
                    .then(|| SkipReason::NotUtf8(lossy(&entry.name))),
            });
        }
        let current = self.current.as_mut()?;
        let Some((suffix, suffix_lower)) = self.suffixes.get(suffix) else {
            current.bad.get_or_insert(SkipReason::NotUtf8(lossy(&entry.name)));
            return None;
        };
        let duplicate = RESERVED.contains(&&*suffix_lower)
            || current
                .sample
                .fields
                .iter()
                .any(|f| f.suffix_lower == suffix_lower);
        let reason = if duplicate {
            Some(SkipReason::DuplicateSuffix(suffix_lower.to_string()))
        } else if is_unsafe(&entry.name) {
            Some(SkipReason::UnsafeName(lossy(&entry.name)))
        } else if entry.kind == EntryKind::Sparse {
            Some(SkipReason::SparseMember(lossy(&entry.name)))
        } else {
            None
        };
        if let Some(reason) = reason {
            current.bad.get_or_insert(reason);
        }
        if current.bad.is_some() {
            return None;
        }
        current.sample.fields.push(Field {
            suffix,
            suffix_lower,
            offset: entry.data_offset,
            size: entry.size,
            npy: None,
        });
        current.sample.fields.last_mut()
    }

    /// Ends the shard: a member cut by the end of the file spoils the sample it belongs
    /// to; the sample in progress at any other kind of end is complete (webdataset yields
    /// it too: `tarfile` stops quietly at a bad header).
    pub fn finish(mut self, end: &End) -> (Vec<Sample>, Vec<Skipped>) {
        if let Some(cut) = &end.cut {
            let key = split_key(&cut.name).map(|(key, _)| key);
            let data = cut.kind == EntryKind::Regular && !is_meta(&cut.name);
            match self.current.as_mut() {
                Some(current) if data && key == Some(current.key.as_slice()) => {
                    current
                        .bad
                        .get_or_insert(SkipReason::TruncatedMember(lossy(&cut.name)));
                }
                _ => self.skipped.push(Skipped {
                    name: lossy(&cut.name),
                    offset: cut.header_offset,
                    reason: SkipReason::Truncated,
                }),
            }
        }
        self.close();
        (self.samples, self.skipped)
    }

    fn close(&mut self) {
        let Some(done) = self.current.take() else {
            return;
        };
        match done.bad {
            None => self.samples.push(done.sample),
            Some(reason) => self.skipped.push(Skipped {
                name: done.sample.key,
                offset: done.sample.offset,
                reason,
            }),
        }
    }
}

/// Python's `str.lower()` (Unicode lowercasing; the ASCII case is just faster).
pub fn lowercase(s: &str) -> String {
    if s.is_ascii() {
        s.to_ascii_lowercase()
    } else {
        s.to_lowercase()
    }
}

fn lossy(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}
