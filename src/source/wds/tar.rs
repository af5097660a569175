//! Walks a tar shard header by header and never reads a payload: the position of the
//! next header is computed from the sizes, as Python's `tarfile` computes it, and only
//! header blocks (and the data of GNU long-name and PAX headers) are read.
//!
//! Reads go through a [`Window`] (`read.rs`): a header inside the last block read costs
//! nothing, and the window also hands out the first bytes of a member (an `.npy` header).
//!
//! Extension headers follow `tarfile` exactly: GNU `L` sets the name of the member it
//! precedes, PAX `x` sets `path`/`size` over the global values, PAX `g` updates the
//! global values for every later member, and when several extension headers precede a
//! member the outermost one wins. The walk stops at the first zero block (as `tarfile`
//! does in the stream mode webdataset uses), at the end of the file, or at the first
//! header that cannot be read; [`End`] says which and why.

use std::io;

use serde::{Deserialize, Serialize};

use super::header::{self, BLOCK, Block, PaxFields, flag};
pub use super::read::{ReadAt, WINDOW_LARGE, WINDOW_SMALL, Window};

/// The data of a GNU long name or a PAX header larger than this is not believed: names
/// are at most a few KiB (PATH_MAX is 4096) and PAX records of one member are tiny.
pub const MAX_EXTENSION: u64 = 1 << 20;
/// More extension headers in a row than this before a member is garbage.
const MAX_CHAIN: usize = 16;
/// Old-GNU sparse maps longer than this many extension blocks are garbage.
const MAX_SPARSE_BLOCKS: u64 = 4096;

/// The kind of a member, from its type flag (Python's `isreg`, `isdir`, … tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryKind {
    /// `0`, `\0`, `7`: what `TarInfo.isreg()` calls regular (besides GNU sparse).
    Regular,
    Directory,
    Symlink,
    Hardlink,
    CharDevice,
    BlockDevice,
    Fifo,
    /// Old-GNU (`S`) or PAX (`GNU.sparse.*`) sparse: its data is not one byte range.
    Sparse,
    /// Any other type flag (vendor extensions); `tarfile` skips its data like a file's.
    Other(u8),
}

/// One member as `tarfile` lists it, with the byte range of its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The name after every extension header, as bytes (Python decodes UTF-8 with
    /// `surrogateescape`, so any bytes can appear).
    pub name: Vec<u8>,
    pub kind: EntryKind,
    /// Where the member's first header is (its first extension header, if any).
    pub header_offset: u64,
    /// Where its data starts (a multiple of 512).
    pub data_offset: u64,
    /// Its data length (PAX `size` applied).
    pub size: u64,
}

/// How a walk ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EndKind {
    /// A zero block: the end-of-archive marker.
    Marker,
    /// The file ended on a header boundary without the marker (`tarfile` accepts it).
    Eof,
    /// The file ended inside a header, an extension header's data or a member's data.
    Truncated,
    /// A header that is not a header (bad checksum, garbage number, bad PAX record).
    Corrupt,
    /// A read failed.
    Io,
}

/// Where and why a walk stopped. `cut` is the member whose data the end of file cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct End {
    pub kind: EndKind,
    pub offset: u64,
    pub reason: String,
    pub cut: Option<Entry>,
}

impl End {
    fn new(kind: EndKind, offset: u64, reason: impl Into<String>) -> Self {
        End {
            kind,
            offset,
            reason: reason.into(),
            cut: None,
        }
    }
}

/// `size` rounded up to whole blocks.
fn blocks(size: u64) -> Option<u64> {
    size.checked_next_multiple_of(BLOCK as u64)
}

enum Ext {
    LongName(Vec<u8>),
    Pax(PaxFields),
}

/// The walk over one shard: call [`Walker::next_entry`] until it returns the [`End`].
pub struct Walker<'r, R: ReadAt + ?Sized> {
    pub window: Window<'r, R>,
    file_len: u64,
    pos: u64,
    global: PaxFields,
    end: Option<End>,
}

impl<'r, R: ReadAt + ?Sized> Walker<'r, R> {
    pub fn new(src: &'r R, file_len: u64) -> Self {
        Walker {
            window: Window::new(src, file_len),
            file_len,
            pos: 0,
            global: PaxFields::default(),
            end: None,
        }
    }

    /// The next member (of any type), or how the walk ended (again on every later call).
    pub fn next_entry(&mut self) -> Result<Entry, End> {
        if let Some(end) = &self.end {
            return Err(end.clone());
        }
        let mut result = self.read_member();
        if let Err(end) = &mut result {
            // A shard that is not a tar at all may be a compressed one.
            if end.offset == 0
                && end.cut.is_none()
                && matches!(end.kind, EndKind::Corrupt | EndKind::Truncated)
                && let Ok(head) = self.window.get(0, 6)
                && let Some(kind) = compression(head)
            {
                *end = End::new(
                    EndKind::Corrupt,
                    0,
                    format!("{kind}-compressed tar: members have no byte ranges (decompress the shard)"),
                );
            }
            self.end = Some(end.clone());
        }
        result
    }

    /// The first `n` bytes of a member's data (fewer if it is shorter).
    pub fn data_prefix(&mut self, entry: &Entry, n: usize) -> io::Result<&[u8]> {
        let n = usize::try_from(entry.size).unwrap_or(usize::MAX).min(n);
        self.window.get(entry.data_offset, n)
    }

    fn read_member(&mut self) -> Result<Entry, End> {
        let header_offset = self.pos;
        let mut exts: Vec<Ext> = Vec::new();
        loop {
            let at = self.pos;
            if at >= self.file_len {
                return Err(if exts.is_empty() {
                    End::new(EndKind::Eof, at, "end of file without an end-of-archive marker")
                } else {
                    End::new(EndKind::Truncated, at, "end of file after an extension header")
                });
            }
            let block = self.read_block(at)?;
            let head = match header::parse(&block) {
                Ok(Block::Zero) if exts.is_empty() => {
                    return Err(End::new(EndKind::Marker, at, "end-of-archive marker"));
                }
                Ok(Block::Zero) => {
                    return Err(End::new(
                        EndKind::Corrupt,
                        at,
                        "end-of-archive marker after an extension header",
                    ));
                }
                Ok(Block::Header(head)) => head,
                Err(e) => {
                    return Err(End::new(
                        EndKind::Corrupt,
                        at,
                        format!("header at byte {at}: {e}"),
                    ));
                }
            };
            let data = at + BLOCK as u64;
            match head.typeflag {
                flag::GNU_LONGNAME
                | flag::GNU_LONGLINK
                | flag::PAX_LOCAL
                | flag::SOLARIS_PAX
                | flag::PAX_GLOBAL => {
                    if exts.len() == MAX_CHAIN {
                        return Err(End::new(
                            EndKind::Corrupt,
                            at,
                            "too many extension headers in a row",
                        ));
                    }
                    let bytes = self.extension_data(at, data, head.size)?;
                    match head.typeflag {
                        flag::GNU_LONGNAME => exts.push(Ext::LongName(header::nts(&bytes).to_vec())),
                        flag::GNU_LONGLINK => {}
                        typeflag => {
                            let mut fields = PaxFields::default();
                            header::parse_pax(&bytes, &mut fields).map_err(|e| {
                                End::new(EndKind::Corrupt, at, format!("PAX header at byte {at}: {e}"))
                            })?;
                            if typeflag == flag::PAX_GLOBAL {
                                self.global.update(&fields);
                            } else {
                                let mut merged = self.global.clone();
                                merged.update(&fields);
                                exts.push(Ext::Pax(merged));
                            }
                        }
                    }
                    self.pos = data.saturating_add(blocks(head.size).unwrap_or(u64::MAX));
                }
                _ => return self.finish_member(header_offset, head, data, exts),
            }
        }
    }

    fn read_block(&mut self, at: u64) -> Result<[u8; BLOCK], End> {
        let bytes = self
            .window
            .get(at, BLOCK)
            .map_err(|e| End::new(EndKind::Io, at, format!("reading the header at byte {at}: {e}")))?;
        <[u8; BLOCK]>::try_from(bytes).map_err(|_| {
            End::new(
                EndKind::Truncated,
                at,
                format!("header at byte {at} cut by the end of file"),
            )
        })
    }

    fn extension_data(&mut self, at: u64, data: u64, size: u64) -> Result<Vec<u8>, End> {
        if size > MAX_EXTENSION {
            return Err(End::new(
                EndKind::Corrupt,
                at,
                format!("extension header at byte {at} claims {size} bytes (at most {MAX_EXTENSION})"),
            ));
        }
        if data + size > self.file_len {
            return Err(End::new(
                EndKind::Truncated,
                at,
                format!("extension header at byte {at} cut by the end of file"),
            ));
        }
        let n = usize::try_from(size).unwrap_or(usize::MAX);
        self.window.get(data, n).map(<[u8]>::to_vec).map_err(|e| {
            End::new(
                EndKind::Io,
                at,
                format!("reading the extension header at byte {at}: {e}"),
            )
        })
    }

    /// A builtin member header: `_proc_builtin` (globals), then the extension headers from
    /// the innermost out, then the data range check.
    fn finish_member(
        &mut self,
        header_offset: u64,
        head: header::RawHeader,
        data: u64,
        exts: Vec<Ext>,
    ) -> Result<Entry, End> {
        let at = data - BLOCK as u64;
        let mut data_offset = data;
        if head.sparse_extended {
            data_offset = self.skip_sparse_map(at, data)?;
        }
        let mut kind = kind_of(head.typeflag);
        let skips_data = matches!(kind, EntryKind::Regular | EntryKind::Sparse | EntryKind::Other(_));
        let span = |size: u64| if skips_data { blocks(size) } else { Some(0) };
        let mut next = span(head.size);
        let mut entry = Entry {
            name: head.name,
            kind,
            header_offset,
            data_offset,
            size: head.size,
        };
        apply_pax(&mut entry, &self.global);
        for ext in exts.iter().rev() {
            match ext {
                Ext::LongName(name) => entry.name.clone_from(name),
                Ext::Pax(fields) => {
                    apply_pax(&mut entry, fields);
                    if fields.size.is_some() {
                        next = span(entry.size);
                    }
                }
            }
        }
        if kind == EntryKind::Directory {
            header::strip_trailing_slashes(&mut entry.name);
        }
        if self.global.sparse || exts.iter().any(|e| matches!(e, Ext::Pax(f) if f.sparse)) {
            kind = if kind == EntryKind::Regular {
                EntryKind::Sparse
            } else {
                kind
            };
            entry.kind = kind;
        }
        if skips_data
            && data_offset
                .checked_add(entry.size)
                .is_none_or(|end| end > self.file_len)
        {
            let mut end = End::new(
                EndKind::Truncated,
                at,
                format!(
                    "member at byte {at} needs {} bytes of data, the file ends after {}",
                    entry.size,
                    self.file_len - data_offset.min(self.file_len)
                ),
            );
            end.cut = Some(entry);
            return Err(end);
        }
        let next = next.and_then(|n| data_offset.checked_add(n));
        let Some(next) = next else {
            return Err(End::new(
                EndKind::Corrupt,
                at,
                format!("member at byte {at} has an impossible size"),
            ));
        };
        self.pos = next;
        Ok(entry)
    }

    /// Old-GNU sparse members carry their map in extension blocks before the data.
    fn skip_sparse_map(&mut self, at: u64, mut pos: u64) -> Result<u64, End> {
        for _ in 0..MAX_SPARSE_BLOCKS {
            let block = self.read_block(pos)?;
            pos += BLOCK as u64;
            if block[504] == 0 {
                return Ok(pos);
            }
        }
        Err(End::new(
            EndKind::Corrupt,
            at,
            format!("sparse member at byte {at} has an endless sparse map"),
        ))
    }
}

/// The compression of a compressed tar (which webdataset's `tarfile.open(mode="r|*")`
/// reads transparently), from its magic bytes.
fn compression(head: &[u8]) -> Option<&'static str> {
    [
        (&b"\x1f\x8b"[..], "gzip"),
        (b"BZh", "bzip2"),
        (b"\xfd7zXZ\x00", "xz"),
        (b"\x28\xb5\x2f\xfd", "zstd"),
    ]
    .into_iter()
    .find(|(magic, _)| head.starts_with(magic))
    .map(|(_, kind)| kind)
}

fn apply_pax(entry: &mut Entry, fields: &PaxFields) {
    if let Some(path) = &fields.path {
        entry.name.clone_from(path);
    }
    if let Some(size) = fields.size {
        entry.size = size;
    }
}

fn kind_of(typeflag: u8) -> EntryKind {
    match typeflag {
        flag::REG | flag::AREG | flag::CONT => EntryKind::Regular,
        flag::DIR => EntryKind::Directory,
        flag::SYMLINK => EntryKind::Symlink,
        flag::LINK => EntryKind::Hardlink,
        flag::CHR => EntryKind::CharDevice,
        flag::BLK => EntryKind::BlockDevice,
        flag::FIFO => EntryKind::Fifo,
        flag::GNU_SPARSE => EntryKind::Sparse,
        other => EntryKind::Other(other),
    }
}
