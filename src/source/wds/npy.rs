//! `.npy` headers (numpy `lib/format.py`, versions 1.0, 2.0 and 3.0), so an array member's
//! payload can be served as a byte range of the tar.
//!
//! Layout: `\x93NUMPY`, major, minor, the header length (u16 LE for 1.x, u32 LE for 2.x and
//! 3.x), then the header: a Python dict literal `{'descr': '<f4', 'fortran_order': False,
//! 'shape': (16, 16), }` padded with spaces and ended by `\n`. The payload follows it and
//! runs for prod(shape) × itemsize bytes.
//!
//! The dict parser is strict: exactly the three keys numpy requires, each once, in any
//! order; values are a quoted string, `True`/`False`, a tuple of non-negative integers
//! (a Python 2 `L` suffix is accepted); nothing but spaces between `}` and the final `\n`.
//! Supported dtypes: `b1`, `i1`–`i8`, `u1`–`u8`, `f2`–`f8`, `c8`, `c16`; anything else (a
//! structured list, strings, objects, datetimes, long double) is refused with its `descr`.

use serde::Serialize;

use crate::tree::DataType;

pub const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// Bytes of magic + version + header-length field, for 1.x and for 2.x/3.x.
const PREAMBLE_V1: usize = 10;
const PREAMBLE_V2: usize = 12;
/// numpy's own `np.load` refuses headers over 10 000 bytes (`max_header_size`); 64 KiB
/// leaves room for hand-made files and still bounds what a bad header makes us read.
pub const MAX_HEADER: usize = 64 << 10;
/// Bytes to read first: the preamble of any version.
pub const PREAMBLE: usize = PREAMBLE_V2;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NpyError {
    #[error("not an .npy file (no \\x93NUMPY magic)")]
    Magic,
    #[error("unknown .npy format version {0}.{1}")]
    Version(u8, u8),
    #[error(".npy header of {0} bytes (at most {MAX_HEADER})")]
    HeaderTooLong(usize),
    #[error(".npy header cut: {needed} bytes needed, {got} available")]
    Short { needed: u64, got: u64 },
    #[error("bad .npy header at byte {at}: {what}")]
    Syntax { at: usize, what: &'static str },
    #[error(".npy header key {0:?} unexpected or repeated")]
    Key(String),
    #[error(".npy header lacks {0:?}")]
    MissingKey(&'static str),
    #[error("unsupported .npy dtype {0:?}")]
    Unsupported(String),
    #[error(".npy payload of {needed} bytes does not fit the {member} bytes of the member")]
    Payload { needed: u128, member: u64 },
    #[error(
        ".npy shape {shape:?} of {size}-byte elements: more than {MAX_SAMPLE_BYTES} bytes with empty dimensions counted as 1"
    )]
    Shape { shape: Vec<u64>, size: u8 },
}

/// The most bytes one sample's array may span, counting an empty dimension as 1 (as its
/// chunk does: a chunk holds whole samples, and a chunk's shape has no zero). 1 TiB is far
/// past any WebDataset sample, and small enough that a chunk of up to 4096 samples
/// (`mapping::MAX_PER_CHUNK`) stays well inside u64. Without it an empty array of shape
/// `(2**40, 2**40, 0)`, which numpy writes in 128 bytes, gave chunk sizes past u64.
pub const MAX_SAMPLE_BYTES: u64 = 1 << 40;

/// Payload bytes of an array of `shape` and `dtype`: prod(shape) × itemsize, or the
/// [`NpyError::Shape`] refusal of a shape whose chunk would exceed [`MAX_SAMPLE_BYTES`].
pub fn payload_len(dtype: &DType, shape: &[u64]) -> Result<u64, NpyError> {
    let extent = shape
        .iter()
        .try_fold(u64::from(dtype.size), |n, &d| n.checked_mul(d.max(1)));
    if extent.is_none_or(|e| e > MAX_SAMPLE_BYTES) {
        return Err(NpyError::Shape {
            shape: shape.to_vec(),
            size: dtype.size,
        });
    }
    // At most the extent: no dimension is counted larger than there.
    Ok(shape.iter().product::<u64>() * u64::from(dtype.size))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Endian {
    Little,
    Big,
    /// `|`: single-byte types.
    NotApplicable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Kind {
    Bool,
    Int,
    UInt,
    Float,
    Complex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DType {
    pub endian: Endian,
    pub kind: Kind,
    /// Bytes per element.
    pub size: u8,
}

impl DType {
    /// Parses a numpy `descr` string such as `<f4`, `|u1`, `>c16`.
    pub fn parse(descr: &str) -> Result<DType, NpyError> {
        let unsupported = || NpyError::Unsupported(descr.to_owned());
        let bytes = descr.as_bytes();
        let (&order, rest) = bytes.split_first().ok_or_else(unsupported)?;
        let (&code, digits) = rest.split_first().ok_or_else(unsupported)?;
        let size: u8 = std::str::from_utf8(digits)
            .ok()
            .and_then(|d| d.parse().ok())
            .ok_or_else(unsupported)?;
        if digits.first() == Some(&b'0') || digits.first() == Some(&b'+') {
            return Err(unsupported());
        }
        let kind = match code {
            b'b' => Kind::Bool,
            b'i' => Kind::Int,
            b'u' => Kind::UInt,
            b'f' => Kind::Float,
            b'c' => Kind::Complex,
            _ => return Err(unsupported()),
        };
        let endian = match (order, size) {
            (b'|' | b'<' | b'>', 1) => Endian::NotApplicable,
            (b'<', _) => Endian::Little,
            (b'>', _) => Endian::Big,
            _ => return Err(unsupported()),
        };
        DType::new(endian, kind, size).ok_or_else(unsupported)
    }

    /// A supported dtype, or `None` (a size the kind does not have, an endianness that
    /// does not fit the size).
    pub fn new(endian: Endian, kind: Kind, size: u8) -> Option<DType> {
        let sized = match kind {
            Kind::Bool => size == 1,
            Kind::Int | Kind::UInt => matches!(size, 1 | 2 | 4 | 8),
            Kind::Float => matches!(size, 2 | 4 | 8),
            Kind::Complex => matches!(size, 8 | 16),
        };
        (sized && (endian == Endian::NotApplicable) == (size == 1)).then_some(DType { endian, kind, size })
    }

    /// The Zarr v3 data type name.
    pub fn zarr_name(&self) -> &'static str {
        self.data_type().zarr_name()
    }

    /// The Zarr data type of its elements (byte order is the array's `bytes` codec's).
    pub fn data_type(&self) -> DataType {
        match (self.kind, self.size) {
            (Kind::Bool, _) => DataType::Bool,
            (Kind::Int, 1) => DataType::Int8,
            (Kind::Int, 2) => DataType::Int16,
            (Kind::Int, 4) => DataType::Int32,
            (Kind::Int, _) => DataType::Int64,
            (Kind::UInt, 1) => DataType::UInt8,
            (Kind::UInt, 2) => DataType::UInt16,
            (Kind::UInt, 4) => DataType::UInt32,
            (Kind::UInt, _) => DataType::UInt64,
            (Kind::Float, 2) => DataType::Float16,
            (Kind::Float, 4) => DataType::Float32,
            (Kind::Float, _) => DataType::Float64,
            (Kind::Complex, 8) => DataType::Complex64,
            (Kind::Complex, _) => DataType::Complex128,
        }
    }
}

/// What an `.npy` member holds and where its payload is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NpyHeader {
    pub version: (u8, u8),
    pub dtype: DType,
    pub shape: Vec<u64>,
    pub fortran_order: bool,
    /// Payload start, from the start of the member (the preamble plus header length).
    pub data_offset: u64,
    /// Payload length: prod(shape) × itemsize.
    pub data_len: u64,
}

/// Bytes before the payload (preamble + header), from the first [`PREAMBLE`] bytes.
pub fn header_len(prefix: &[u8]) -> Result<usize, NpyError> {
    if prefix.len() < MAGIC.len() + 2 || &prefix[..MAGIC.len()] != MAGIC {
        return Err(if prefix.len() < MAGIC.len() + 2 && MAGIC.starts_with(prefix) {
            NpyError::Short {
                needed: PREAMBLE_V1 as u64,
                got: prefix.len() as u64,
            }
        } else {
            NpyError::Magic
        });
    }
    let (major, minor) = (prefix[6], prefix[7]);
    let (preamble, len) = match major {
        1 => (
            PREAMBLE_V1,
            prefix
                .get(8..10)
                .map(|b| usize::from(u16::from_le_bytes([b[0], b[1]]))),
        ),
        2 | 3 => (
            PREAMBLE_V2,
            prefix
                .get(8..12)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize),
        ),
        _ => return Err(NpyError::Version(major, minor)),
    };
    if minor != 0 {
        return Err(NpyError::Version(major, minor));
    }
    let len = len.ok_or(NpyError::Short {
        needed: preamble as u64,
        got: prefix.len() as u64,
    })?;
    if len > MAX_HEADER {
        return Err(NpyError::HeaderTooLong(len));
    }
    Ok(preamble + len)
}

/// Parses a whole header (`bytes` holds at least [`header_len`] bytes) of a member of
/// `member_size` bytes.
pub fn parse(bytes: &[u8], member_size: u64) -> Result<NpyHeader, NpyError> {
    let total = header_len(bytes)?;
    if bytes.len() < total || member_size < total as u64 {
        return Err(NpyError::Short {
            needed: total as u64,
            got: member_size.min(bytes.len() as u64),
        });
    }
    let preamble = if bytes[6] == 1 { PREAMBLE_V1 } else { PREAMBLE_V2 };
    let dict = super::pydict::parse(&bytes[preamble..total], preamble)?;
    let dtype = DType::parse(&dict.descr)?;
    let needed = payload_len(&dtype, &dict.shape)?;
    let room = member_size - total as u64;
    if needed > room {
        return Err(NpyError::Payload {
            needed: u128::from(needed),
            member: member_size,
        });
    }
    Ok(NpyHeader {
        version: (bytes[6], bytes[7]),
        dtype,
        shape: dict.shape,
        fortran_order: dict.fortran_order,
        data_offset: total as u64,
        data_len: needed,
    })
}
