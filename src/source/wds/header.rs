//! One 512-byte tar header block and one PAX record set, read the way Python's `tarfile`
//! reads them (`TarInfo.frombuf`, `_proc_pax`, `_apply_pax_info`), because webdataset sees
//! a shard through `tarfile` and the index must name members exactly as it does:
//!
//! - the name is the NUL-terminated `name` field; a non-empty ustar `prefix` (bytes
//!   345..500) is joined with `/` for every type except GNU `L`/`K`/`S`, whatever the
//!   magic says (Python does not look at the magic);
//! - a type `\0` member whose name ends in `/` is a directory; directories lose their
//!   trailing slashes;
//! - the checksum may be the unsigned or the signed byte sum;
//! - numbers are octal (spaces and NULs trimmed) or GNU base-256.
//!
//! Everything here is pure: bytes in, values or a [`HeaderError`] out.

pub const BLOCK: usize = 512;

/// Type flags (POSIX ustar, GNU and PAX) that the walker and the grouping care about.
pub mod flag {
    pub const REG: u8 = b'0';
    pub const AREG: u8 = 0;
    pub const LINK: u8 = b'1';
    pub const SYMLINK: u8 = b'2';
    pub const CHR: u8 = b'3';
    pub const BLK: u8 = b'4';
    pub const DIR: u8 = b'5';
    pub const FIFO: u8 = b'6';
    pub const CONT: u8 = b'7';
    pub const GNU_LONGNAME: u8 = b'L';
    pub const GNU_LONGLINK: u8 = b'K';
    pub const GNU_SPARSE: u8 = b'S';
    pub const PAX_LOCAL: u8 = b'x';
    pub const PAX_GLOBAL: u8 = b'g';
    /// Solaris' name for a PAX extended header; Python treats it as `x`.
    pub const SOLARIS_PAX: u8 = b'X';
}

/// Why a header block (or a PAX record set) cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("bad header checksum: stored {stored}, computed {computed}")]
    Checksum { stored: u64, computed: u64 },
    #[error("invalid {field} field {value:?}")]
    Number { field: &'static str, value: String },
    #[error("PAX record with length 0")]
    PaxZeroLength,
    #[error("PAX size {0:?} is negative")]
    PaxNegativeSize(String),
}

/// A header block as `TarInfo.frombuf` makes it, before any extension header applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawHeader {
    pub name: Vec<u8>,
    pub typeflag: u8,
    pub size: u64,
    /// Old-GNU sparse (`S`): more sparse-map blocks follow this header.
    pub sparse_extended: bool,
}

/// What a 512-byte block holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// All zeros: the end-of-archive marker (Python stops at the first one).
    Zero,
    Header(RawHeader),
}

/// Bytes up to the first NUL (Python's `nts`).
pub fn nts(field: &[u8]) -> &[u8] {
    match field.iter().position(|&b| b == 0) {
        Some(end) => &field[..end],
        None => field,
    }
}

/// A numeric field (Python's `nti`): GNU base-256 when the first byte is 0x80 (0xFF is
/// negative, refused), else octal digits between optional whitespace; empty is 0.
pub fn number(field: &[u8], name: &'static str) -> Result<u64, HeaderError> {
    let bad = || HeaderError::Number {
        field: name,
        value: String::from_utf8_lossy(field).into_owned(),
    };
    match field.first() {
        Some(0x80) => field[1..].iter().try_fold(0u64, |n, &b| {
            n.checked_mul(256)
                .and_then(|n| n.checked_add(u64::from(b)))
                .ok_or_else(bad)
        }),
        Some(0xFF) => Err(bad()),
        _ => {
            let text = nts(field).trim_ascii();
            text.iter().try_fold(0u64, |n, &b| match b {
                b'0'..=b'7' => n
                    .checked_mul(8)
                    .and_then(|n| n.checked_add(u64::from(b - b'0')))
                    .ok_or_else(bad),
                _ => Err(bad()),
            })
        }
    }
}

/// Reads one header block.
pub fn parse(block: &[u8; BLOCK]) -> Result<Block, HeaderError> {
    if block.iter().all(|&b| b == 0) {
        return Ok(Block::Zero);
    }
    let stored = number(&block[148..156], "checksum")?;
    let (mut unsigned, mut signed) = (256u64, 256i64);
    for (i, &b) in block.iter().enumerate() {
        if !(148..156).contains(&i) {
            unsigned += u64::from(b);
            signed += i64::from(b as i8);
        }
    }
    if stored != unsigned && i64::try_from(stored).ok() != Some(signed) {
        return Err(HeaderError::Checksum {
            stored,
            computed: unsigned,
        });
    }
    let mut typeflag = block[156];
    let mut name = nts(&block[..100]).to_vec();
    let size = number(&block[124..136], "size")?;
    if typeflag == flag::AREG && name.ends_with(b"/") {
        typeflag = flag::DIR;
    }
    if typeflag == flag::DIR {
        strip_trailing_slashes(&mut name);
    }
    let prefix = nts(&block[345..500]);
    if !prefix.is_empty() && ![flag::GNU_LONGNAME, flag::GNU_LONGLINK, flag::GNU_SPARSE].contains(&typeflag) {
        let mut joined = Vec::with_capacity(prefix.len() + 1 + name.len());
        joined.extend_from_slice(prefix);
        joined.push(b'/');
        joined.extend_from_slice(&name);
        name = joined;
    }
    Ok(Block::Header(RawHeader {
        name,
        typeflag,
        size,
        sparse_extended: typeflag == flag::GNU_SPARSE && block[482] != 0,
    }))
}

pub fn strip_trailing_slashes(name: &mut Vec<u8>) {
    while name.last() == Some(&b'/') {
        name.pop();
    }
}

/// The PAX keywords that change what webdataset sees of a member. Python keeps every
/// keyword; only these matter for names, sizes and offsets, so only these are kept (a
/// global header cannot grow memory with keywords nobody reads).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaxFields {
    /// `path` (trailing slashes removed, as `_apply_pax_info` does), or `GNU.sparse.name`.
    pub path: Option<Vec<u8>>,
    /// `size`; an unparseable value is 0, as in Python.
    pub size: Option<u64>,
    /// Some `GNU.sparse.*` keyword: the member is a PAX sparse file.
    pub sparse: bool,
}

impl PaxFields {
    /// Later records override earlier ones, keyword by keyword (a dict update).
    pub fn update(&mut self, later: &PaxFields) {
        if later.path.is_some() {
            self.path.clone_from(&later.path);
        }
        if later.size.is_some() {
            self.size = later.size;
        }
        self.sparse |= later.sparse;
    }
}

/// Reads PAX records `"<len> <keyword>=<value>\n"` into `into`, as Python 3.11 does: it
/// stops quietly at the first bytes that do not look like a record (NUL padding), takes
/// the value as the bytes between `=` and the record's last byte, and refuses length 0.
pub fn parse_pax(buf: &[u8], into: &mut PaxFields) -> Result<(), HeaderError> {
    let mut pos = 0usize;
    while pos < buf.len() {
        let rest = &buf[pos..];
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || rest.get(digits) != Some(&b' ') {
            break;
        }
        let key_start = digits + 1;
        let Some(eq) = rest[key_start..].iter().position(|&b| b == b'=') else {
            break;
        };
        if eq == 0 {
            break;
        }
        let key = &rest[key_start..key_start + eq];
        // The length counts the whole record; one longer than the buffer just clamps.
        let length = rest[..digits]
            .iter()
            .try_fold(0usize, |n, &d| {
                n.checked_mul(10)?.checked_add(usize::from(d - b'0'))
            })
            .unwrap_or(usize::MAX);
        if length == 0 {
            return Err(HeaderError::PaxZeroLength);
        }
        let value_start = key_start + eq + 1;
        let value_end = length.saturating_sub(1).min(rest.len());
        let value = rest.get(value_start..value_end).unwrap_or(&[]);
        apply_keyword(key, value, into)?;
        pos = pos.saturating_add(length);
    }
    Ok(())
}

fn apply_keyword(key: &[u8], value: &[u8], into: &mut PaxFields) -> Result<(), HeaderError> {
    match key {
        b"path" | b"GNU.sparse.name" => {
            let mut path = value.to_vec();
            if key == b"path" {
                strip_trailing_slashes(&mut path);
            }
            into.path = Some(path);
        }
        b"size" => into.size = Some(pax_size(value)?),
        _ => {}
    }
    if key.starts_with(b"GNU.sparse.") {
        into.sparse = true;
    }
    Ok(())
}

/// Python's `int(value)` with `ValueError` → 0; a negative size is refused (Python would
/// go on with a negative size and misplace every later header).
fn pax_size(value: &[u8]) -> Result<u64, HeaderError> {
    let text = value.trim_ascii();
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    };
    // All digits but too large for u64: Python keeps the big int; past any file's end.
    let parsed = (!digits.is_empty() && digits.iter().all(u8::is_ascii_digit)).then(|| {
        digits
            .iter()
            .try_fold(0u64, |n, &d| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))
            .unwrap_or(u64::MAX)
    });
    match (negative, parsed) {
        (true, Some(n)) if n > 0 => Err(HeaderError::PaxNegativeSize(
            String::from_utf8_lossy(value).into_owned(),
        )),
        (_, Some(n)) => Ok(n),
        (_, None) => Ok(0),
    }
}
