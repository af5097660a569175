//! The binary form of a [`ShardIndex`] in the cache file: LEB128 integers and
//! length-prefixed strings, no padding. Decoding trusts nothing: every count is bounded
//! by the bytes left, every byte range is checked against the shard length, and any
//! inconsistency is an error (the cache file is then ignored and the shard re-indexed).
//!
//! Binary rather than serde_json because the cache must load much faster than the shards
//! index: on 1 GiB shards (`index_speed_1gib`, a test since removed: `tests/speed.rs` at
//! 9aec4ae) the JSON form was 5× larger (45 MB against 8.9 MB for 438 k members) and
//! merely parsing it took 0.36 s, most of the 0.49 s of indexing the shard again; this
//! form decodes in 0.06 s (1–64 KiB members: 6.0 MB against 1.2 MB, 48 ms against 4 ms).

use super::npy::{self, DType, Endian, Kind, NpyHeader};
use super::sample::{Field, Sample, SkipReason, Skipped, Suffixes};
use super::scan::{ShardEnd, ShardIndex};
use super::tar::{EndKind, EntryKind};

/// Vectors are pre-sized from a decoded count up to this many items, then grow: a count
/// is bounded by the bytes left, but an item in memory is larger than one byte.
pub const PREALLOCATE: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("index data at byte {at}: {what}")]
pub struct CodecError {
    pub at: usize,
    pub what: String,
}

#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub fn uint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    pub fn bytes(&mut self, b: &[u8]) {
        self.uint(b.len() as u64);
        self.buf.extend_from_slice(b);
    }

    pub fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
}

pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.pos == self.data.len()
    }

    pub fn err(&self, what: impl Into<String>) -> CodecError {
        CodecError {
            at: self.pos,
            what: what.into(),
        }
    }

    pub fn u8(&mut self) -> Result<u8, CodecError> {
        let v = *self
            .data
            .get(self.pos)
            .ok_or_else(|| self.err("unexpected end"))?;
        self.pos += 1;
        Ok(v)
    }

    pub fn uint(&mut self) -> Result<u64, CodecError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.err("integer too long"))
    }

    /// A count of items each taking at least one byte: never more than the bytes left.
    pub fn count(&mut self) -> Result<usize, CodecError> {
        let n = self.uint()?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.data.len() - self.pos)
            .ok_or_else(|| self.err(format!("count {n} exceeds the data")))
    }

    pub fn bytes(&mut self) -> Result<&'a [u8], CodecError> {
        let n = self.count()?;
        let b = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(b)
    }

    pub fn str(&mut self) -> Result<String, CodecError> {
        let b = self.bytes()?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| self.err("string is not UTF-8"))
    }
}

pub fn put_shard(w: &mut Writer, index: &ShardIndex) {
    w.uint(index.file_len);
    w.uint(index.members);
    w.u8(end_tag(index.end.kind));
    w.uint(index.end.offset);
    w.str(&index.end.reason);
    w.uint(index.samples.len() as u64);
    for sample in &index.samples {
        w.str(&sample.key);
        w.uint(sample.offset);
        w.uint(sample.fields.len() as u64);
        for field in &sample.fields {
            put_field(w, field);
        }
    }
    w.uint(index.skipped.len() as u64);
    for skipped in &index.skipped {
        w.str(&skipped.name);
        w.uint(skipped.offset);
        put_reason(w, &skipped.reason);
    }
}

fn put_field(w: &mut Writer, field: &Field) {
    w.str(&field.suffix);
    w.uint(field.offset);
    w.uint(field.size);
    match field.npy.as_deref() {
        None => w.u8(0),
        Some(Ok(h)) => {
            w.u8(1);
            w.u8(h.version.0);
            w.u8(h.version.1);
            w.u8(h.dtype.endian as u8);
            w.u8(h.dtype.kind as u8);
            w.u8(h.dtype.size);
            w.uint(h.shape.len() as u64);
            for &d in &h.shape {
                w.uint(d);
            }
            w.u8(u8::from(h.fortran_order));
            w.uint(h.data_offset);
            w.uint(h.data_len);
        }
        Some(Err(reason)) => {
            w.u8(2);
            w.str(reason);
        }
    }
}

fn put_reason(w: &mut Writer, reason: &SkipReason) {
    let text = |w: &mut Writer, tag: u8, s: &str| {
        w.u8(tag);
        w.str(s);
    };
    match reason {
        SkipReason::NotRegular(kind) => {
            w.u8(0);
            let (tag, other) = kind_tag(*kind);
            w.u8(tag);
            w.u8(other);
        }
        SkipReason::NoSuffix => w.u8(1),
        SkipReason::Metadata => w.u8(2),
        SkipReason::Truncated => w.u8(3),
        SkipReason::DuplicateSuffix(s) => text(w, 4, s),
        SkipReason::UnsafeName(s) => text(w, 5, s),
        SkipReason::SparseMember(s) => text(w, 6, s),
        SkipReason::NotUtf8(s) => text(w, 7, s),
        SkipReason::TruncatedMember(s) => text(w, 8, s),
    }
}

pub fn get_shard(r: &mut Reader<'_>) -> Result<ShardIndex, CodecError> {
    let file_len = r.uint()?;
    let members = r.uint()?;
    let kind = end_kind(r.u8()?).ok_or_else(|| r.err("bad end kind"))?;
    let end = ShardEnd {
        kind,
        offset: r.uint()?,
        reason: r.str()?,
    };
    let n = r.count()?;
    let mut samples = Vec::with_capacity(n.min(PREALLOCATE));
    let mut suffixes = Suffixes::default();
    for _ in 0..n {
        let key = r.str()?;
        let offset = r.uint()?;
        let m = r.count()?;
        let mut fields = Vec::with_capacity(m.min(PREALLOCATE));
        for _ in 0..m {
            fields.push(get_field(r, file_len, &mut suffixes)?);
        }
        samples.push(Sample { key, offset, fields });
    }
    let n = r.count()?;
    let mut skipped = Vec::with_capacity(n.min(PREALLOCATE));
    for _ in 0..n {
        skipped.push(Skipped {
            name: r.str()?,
            offset: r.uint()?,
            reason: get_reason(r)?,
        });
    }
    Ok(ShardIndex {
        file_len,
        samples,
        skipped,
        end,
        members,
    })
}

fn get_field(r: &mut Reader<'_>, file_len: u64, suffixes: &mut Suffixes) -> Result<Field, CodecError> {
    let raw = r.bytes()?;
    let (suffix, suffix_lower) = suffixes.get(raw).ok_or_else(|| r.err("suffix is not UTF-8"))?;
    let (offset, size) = (r.uint()?, r.uint()?);
    if offset.checked_add(size).is_none_or(|end| end > file_len) {
        return Err(r.err(format!(
            "member range {offset}+{size} outside the {file_len}-byte shard"
        )));
    }
    let npy = match r.u8()? {
        0 => None,
        1 => {
            let version = (r.u8()?, r.u8()?);
            let endian = [Endian::Little, Endian::Big, Endian::NotApplicable]
                .into_iter()
                .nth(usize::from(r.u8()?))
                .ok_or_else(|| r.err("bad endianness"))?;
            let kind = [Kind::Bool, Kind::Int, Kind::UInt, Kind::Float, Kind::Complex]
                .into_iter()
                .nth(usize::from(r.u8()?))
                .ok_or_else(|| r.err("bad dtype kind"))?;
            let dtype = DType::new(endian, kind, r.u8()?).ok_or_else(|| r.err("unsupported dtype"))?;
            let dims = r.count()?;
            if dims > 64 {
                return Err(r.err("more than 64 dimensions"));
            }
            let shape = (0..dims).map(|_| r.uint()).collect::<Result<Vec<_>, _>>()?;
            let fortran_order = r.u8()? != 0;
            let (data_offset, data_len) = (r.uint()?, r.uint()?);
            if data_offset.checked_add(data_len).is_none_or(|end| end > size) {
                return Err(r.err("npy payload outside its member"));
            }
            // What npy::parse guarantees of a header it made: the mapping sizes chunks from
            // the shape, so a shape that does not give the payload is refused here too.
            if npy::payload_len(&dtype, &shape).ok() != Some(data_len) {
                return Err(r.err("npy shape and dtype do not give its payload length"));
            }
            Some(Box::new(Ok(NpyHeader {
                version,
                dtype,
                shape,
                fortran_order,
                data_offset,
                data_len,
            })))
        }
        2 => Some(Box::new(Err(r.str()?))),
        _ => return Err(r.err("bad npy tag")),
    };
    Ok(Field {
        suffix,
        suffix_lower,
        offset,
        size,
        npy,
    })
}

fn get_reason(r: &mut Reader<'_>) -> Result<SkipReason, CodecError> {
    Ok(match r.u8()? {
        0 => {
            let (tag, other) = (r.u8()?, r.u8()?);
            SkipReason::NotRegular(entry_kind(tag, other).ok_or_else(|| r.err("bad entry kind"))?)
        }
        1 => SkipReason::NoSuffix,
        2 => SkipReason::Metadata,
        3 => SkipReason::Truncated,
        4 => SkipReason::DuplicateSuffix(r.str()?),
        5 => SkipReason::UnsafeName(r.str()?),
        6 => SkipReason::SparseMember(r.str()?),
        7 => SkipReason::NotUtf8(r.str()?),
        8 => SkipReason::TruncatedMember(r.str()?),
        _ => return Err(r.err("bad skip reason")),
    })
}

const END_KINDS: [EndKind; 5] = [
    EndKind::Marker,
    EndKind::Eof,
    EndKind::Truncated,
    EndKind::Corrupt,
    EndKind::Io,
];

fn end_tag(kind: EndKind) -> u8 {
    END_KINDS.iter().position(|&k| k == kind).unwrap_or(0) as u8
}

fn end_kind(tag: u8) -> Option<EndKind> {
    END_KINDS.get(usize::from(tag)).copied()
}

fn kind_tag(kind: EntryKind) -> (u8, u8) {
    match kind {
        EntryKind::Regular => (0, 0),
        EntryKind::Directory => (1, 0),
        EntryKind::Symlink => (2, 0),
        EntryKind::Hardlink => (3, 0),
        EntryKind::CharDevice => (4, 0),
        EntryKind::BlockDevice => (5, 0),
        EntryKind::Fifo => (6, 0),
        EntryKind::Sparse => (7, 0),
        EntryKind::Other(flag) => (8, flag),
    }
}

fn entry_kind(tag: u8, other: u8) -> Option<EntryKind> {
    Some(match tag {
        0 => EntryKind::Regular,
        1 => EntryKind::Directory,
        2 => EntryKind::Symlink,
        3 => EntryKind::Hardlink,
        4 => EntryKind::CharDevice,
        5 => EntryKind::BlockDevice,
        6 => EntryKind::Fifo,
        7 => EntryKind::Sparse,
        8 => EntryKind::Other(other),
        _ => return None,
    })
}
