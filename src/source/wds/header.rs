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
    Checksum { stored: i128, computed: i128 },
    #[error("negative member size")]
    NegativeSize,
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

/// A numeric field (Python's `nti`): GNU base-256 when the first byte is 0x80 (0xFF:
/// negative), else Python's `int(text.strip() or "0", 8)` on the NUL-terminated ASCII text.
pub fn number(field: &[u8], name: &'static str) -> Result<i128, HeaderError> {
    let bad = || HeaderError::Number {
        field: name,
        value: String::from_utf8_lossy(field).into_owned(),
    };
    match field.first() {
        Some(&first @ (0x80 | 0xFF)) => {
            let n = field[1..].iter().fold(0i128, |n, &b| (n << 8) | i128::from(b));
            Ok(if first == 0xFF {
                n - (1i128 << (8 * (field.len() - 1)))
            } else {
                n
            })
        }
        _ => {
            if let Some(n) = plain_octal(field) {
                return Ok(n);
            }
            let text = nts(field);
            if !text.is_ascii() {
                return Err(bad());
            }
            match py_trim(text) {
                b"" => Ok(0),
                text => py_int(text, 8).ok_or_else(bad),
            }
        }
    }
}

/// The common case, fast: octal digits, then only NULs and spaces (what every tar writer
/// produces). `None` means "take the general path", not "invalid".
fn plain_octal(field: &[u8]) -> Option<i128> {
    let digits = field.iter().take_while(|b| (b'0'..=b'7').contains(b)).count();
    if digits == 0 || digits > 21 || !field[digits..].iter().all(|&b| b == 0 || b == b' ') {
        return None;
    }
    let n = field[..digits]
        .iter()
        .fold(0u64, |n, &b| (n << 3) | u64::from(b - b'0'));
    Some(i128::from(n))
}

/// Python's `str.strip()` on ASCII: whitespace includes VT and the separators 0x1C–0x1F.
fn py_trim(text: &[u8]) -> &[u8] {
    trim_by(text, |b| matches!(b, b' ' | b'\t'..=b'\r' | 0x1C..=0x1F))
}

/// What `int()` itself skips around a number: space and `\t`–`\r` only.
fn int_trim(text: &[u8]) -> &[u8] {
    trim_by(text, |b| matches!(b, b' ' | b'\t'..=b'\r'))
}

fn trim_by(text: &[u8], space: impl Fn(u8) -> bool) -> &[u8] {
    let start = text.iter().position(|&b| !space(b)).unwrap_or(text.len());
    let end = text.iter().rposition(|&b| !space(b)).map_or(start, |i| i + 1);
    &text[start..end]
}

/// Python's `int(text, radix)` (radix 8 or 10) on ASCII: whitespace around, a sign, a
/// `0o` prefix in base 8, digits with single underscores between them.
pub fn py_int(text: &[u8], radix: u32) -> Option<i128> {
    let text = int_trim(text);
    let (negative, mut rest) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    };
    let mut underscore_ok = false;
    if radix == 8 && rest.len() >= 2 && rest[0] == b'0' && matches!(rest[1], b'o' | b'O') {
        rest = &rest[2..];
        underscore_ok = true;
    }
    let mut value: i128 = 0;
    let mut digits = 0usize;
    let mut last_underscore = false;
    for &b in rest {
        if b == b'_' {
            if last_underscore || (digits == 0 && !underscore_ok) {
                return None;
            }
            last_underscore = true;
            continue;
        }
        let d = char::from(b).to_digit(radix)?;
        // Python's ints do not overflow; a number past i128 is past any file anyway.
        value = value
            .saturating_mul(i128::from(radix))
            .saturating_add(i128::from(d));
        digits += 1;
        last_underscore = false;
    }
    (digits > 0 && !last_underscore).then_some(if negative { -value } else { value })
}

/// Reads one header block.
pub fn parse(block: &[u8; BLOCK]) -> Result<Block, HeaderError> {
    if block.iter().all(|&b| b == 0) {
        return Ok(Block::Zero);
    }
    let stored = number(&block[148..156], "checksum")?;
    // The checksum field counts as eight spaces (256); 512 bytes sum well within i32.
    let outside = block[..148].iter().chain(&block[156..]);
    let unsigned = i128::from(256 + outside.clone().map(|&b| i32::from(b)).sum::<i32>());
    let signed = i128::from(256 + outside.map(|&b| i32::from(b as i8)).sum::<i32>());
    if stored != unsigned && stored != signed {
        return Err(HeaderError::Checksum {
            stored,
            computed: unsigned,
        });
    }
    // Python reads every number field and refuses the header if one is not a number.
    for (range, field) in [
        (100..108, "mode"),
        (108..116, "uid"),
        (116..124, "gid"),
        (136..148, "mtime"),
        (329..337, "devmajor"),
        (337..345, "devminor"),
    ] {
        number(&block[range], field)?;
    }
    let mut typeflag = block[156];
    let mut name = nts(&block[..100]).to_vec();
    // A negative size would send Python's next header backwards; refuse it.
    let size = number(&block[124..136], "size")?;
    if size < 0 {
        return Err(HeaderError::NegativeSize);
    }
    let size = u64::try_from(size).unwrap_or(u64::MAX);
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
/// go on with a negative size and misplace every later header); one too large for u64 is
/// past any file's end.
fn pax_size(value: &[u8]) -> Result<u64, HeaderError> {
    match py_int(value, 10) {
        Some(n) if n < 0 => Err(HeaderError::PaxNegativeSize(
            String::from_utf8_lossy(value).into_owned(),
        )),
        Some(n) => Ok(u64::try_from(n).unwrap_or(u64::MAX)),
        None => Ok(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected values from Python 3.11: `int(t, 8)` and `int(t)`.
    #[test]
    fn numbers_parse_as_python_int() {
        let octal: &[(&str, Option<i128>)] = &[
            ("0o17", Some(15)),
            ("1_0", Some(8)),
            ("_1", None),
            ("1__0", None),
            ("1_", None),
            (" 17 ", Some(15)),
            ("+7", Some(7)),
            ("-7", Some(-7)),
            ("8", None),
            ("0o_7", Some(7)),
            ("0o", None),
            ("\x0b7", Some(7)),
            ("7\x1c", None),
            ("0O7", Some(7)),
            ("- 7", None),
            ("0_7", Some(7)),
            ("00", Some(0)),
        ];
        for (text, want) in octal {
            assert_eq!(py_int(text.as_bytes(), 8), *want, "{text:?}");
        }
        let decimal: &[(&str, Option<i128>)] = &[
            ("12", Some(12)),
            ("1_2", Some(12)),
            (" 12\n", Some(12)),
            ("+12", Some(12)),
            ("-3", Some(-3)),
            ("0012", Some(12)),
            ("abc", None),
            ("1e3", None),
        ];
        for (text, want) in decimal {
            assert_eq!(py_int(text.as_bytes(), 10), *want, "{text:?}");
        }
        // `nti` strips with `str.strip()` first, which also removes 0x1C-0x1F.
        assert_eq!(number(b"7\x1c\0\0\0\0\0\0", "mode"), Ok(7));
        assert_eq!(number(b"   \0\0\0\0\0", "mode"), Ok(0));
        assert!(number(b"12\xe9\0", "mode").is_err());
        assert_eq!(number(&[0xFF; 8], "uid"), Ok(-1));
        assert_eq!(number(&[0x80, 0, 0, 0, 0, 0, 1, 0], "uid"), Ok(256));
    }

    #[test]
    fn every_number_field_must_parse_and_sizes_not_be_negative() {
        let mut block = [0u8; BLOCK];
        block[..5].copy_from_slice(b"a.txt");
        block[124..136].copy_from_slice(b"00000000001\0");
        let sealed = |mut b: [u8; BLOCK]| {
            b[148..156].copy_from_slice(b"        ");
            let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
            b[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
            b
        };
        assert!(matches!(parse(&sealed(block)), Ok(Block::Header(_))));
        let mut bad_uid = block;
        bad_uid[108..116].copy_from_slice(b"12z\0\0\0\0\0");
        assert!(matches!(
            parse(&sealed(bad_uid)),
            Err(HeaderError::Number { field: "uid", .. })
        ));
        let mut negative = block;
        negative[124..136].copy_from_slice(&[0xFF; 12]);
        assert_eq!(parse(&sealed(negative)), Err(HeaderError::NegativeSize));
        let mut size = PaxFields::default();
        parse_pax(b"12 size=1_2\n", &mut size).expect("pax");
        assert_eq!(size.size, Some(12));
        parse_pax(b"13 size=oops\n", &mut size).expect("pax");
        assert_eq!(size.size, Some(0));
        assert!(parse_pax(b"11 size=-1\n", &mut size).is_err());
    }
}
