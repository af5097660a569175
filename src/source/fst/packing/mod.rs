//! Decoding of one RPN standard file record's data payload (fst.md §2, and §4 "Payload"): the
//! bytes after the record's header and metadata, as stored, become the record's values as
//! little-endian bytes of [`Packing::element`], in Fortran order (i fastest, then j, then k),
//! which is C order for shape (nk, nj, ni). Pure functions: no I/O, no knowledge of the
//! XDF/RSF containers beyond the byte order of the payload's 32-bit words ([`WordOrder`]).
//!
//! Every packing reads the payload as u32 words; after that XDF and RSF are identical.
//! - `bits`: the payload as words, and the MSB-first bit reader all packings share;
//! - `sink`: decoded values as little-endian bytes, widened to 64 bits where `dasiz` asks;
//! - `integer`: datyp 2 and 4 (plus raw 64-bit integers of fst24 files);
//! - `ieee`: datyp 5 and 8 (IEEE, truncated IEEE, E64 with its high word first) and datyp 0;
//! - `chars`: datyp 3 and 7;
//! - `compact_float`: datyp 1 and the header of 129; `float_packer`: datyp 6 and the header of 134;
//! - `turbo16` with `parallelogram`: librmn's armn_compress 16-bit streams (129, 130, 134);
//! - `turbo32`: armn_compress32 (133);
//! - `missing`: the +64 convention (the field's maximum marks missing points).
//!
//! Not supported, each a clear [`UnpackError`]: raw binary (datyp 0) other than 32- or 64-bit
//! words, packings of 33 to 63 bits, armn_compress's SAMPLE predictor (not written since 2006),
//! turbo compression of 3-D records or of grids less than 2 wide (librmn writes neither), and
//! +128 on base types that have no compressed form (0, 3, 4, 7, 8).
//!
//! Files are untrusted. Sizes come from checked arithmetic, and nothing is allocated for a
//! record before its payload is shown to hold it: fixed layouts need their exact word count,
//! compressed streams at least the bits their headers imply. Payloads may end with
//! uninitialised slack words; a decoder reads only the words its datyp needs.

mod bits;
mod chars;
mod compact_float;
mod error;
mod float_packer;
mod ieee;
mod integer;
mod missing;
mod parallelogram;
mod sink;
mod turbo16;
mod turbo32;

#[cfg(test)]
mod tests;

pub use error::UnpackError;
pub use missing::mark_missing;

use bits::Words;
use error::Fault;
use sink::Sink;

/// How a record's payload is packed: the directory fields that matter for decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packing {
    /// Data type including the +64 (missing values) and +128 (turbo compression) flags.
    pub datyp: u8,
    /// Bits per packed value.
    pub nbits: u8,
    /// Element size in bits of the writer's array (librmn ≥ 20; 0 in older files).
    pub dasiz: u8,
    pub ni: u32,
    pub nj: u32,
    pub nk: u32,
}

/// Byte order of the payload's u32 words: XDF files are big-endian, RSF files the writer's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WordOrder {
    Big,
    Little,
}

/// Element type of a decoded record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Element {
    F32,
    F64,
    U8,
    U32,
    U64,
    I32,
    I64,
    /// Complex of two f32 (real, imaginary).
    C64,
    /// Complex of two f64.
    C128,
}

impl Element {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Element::U8 => 1,
            Element::F32 | Element::U32 | Element::I32 => 4,
            Element::F64 | Element::U64 | Element::I64 | Element::C64 => 8,
            Element::C128 => 16,
        }
    }

    /// Scalars per element: 2 for complex numbers.
    fn parts(self) -> usize {
        match self {
            Element::C64 | Element::C128 => 2,
            _ => 1,
        }
    }
}

/// The +64 flag: the field's maximum marks missing values (see [`mark_missing`]).
const MISSING_FLAG: u8 = 64;
/// The +128 flag: a second, "turbo" compression stage (armn_compress).
const TURBO_FLAG: u8 = 128;

/// The decoding a (datyp, nbits) pair calls for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scheme {
    /// datyp 0 (32-bit), 5 and 8 with nbits ≤ 32: each value is the top `nbits` bits of an f32.
    Ieee,
    /// datyp 0, 5 and 8 with nbits 64: two words per value, high word first.
    Ieee64,
    /// datyp 1: quantised floats after a compact-float header.
    CompactFloat,
    /// datyp 2 with nbits ≤ 32.
    Unsigned,
    /// datyp 4 with nbits ≤ 32: offset binary.
    Signed,
    /// datyp 2 and 4 with nbits 64 (fst24): native 64-bit integers.
    Native64,
    /// datyp 3 and 7: characters.
    Chars,
    /// datyp 6: librmn's float_packer.
    FloatPacker,
    /// datyp +128: a header and an armn_compress stream.
    Turbo(Turbo),
}

/// The turbo-compressed packings (fst.md §2.10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Turbo {
    /// datyp 129: compact-float header, then a 16-bit stream of its tokens.
    CompactFloat,
    /// datyp 130: a 16-bit stream of the integers.
    Unsigned,
    /// datyp 133: armn_compress32.
    Ieee,
    /// datyp 134: float_packer header, then a 16-bit stream of its tokens.
    FloatPacker,
}

impl Packing {
    /// The decoded element type, or an error for a record this reader cannot decode: unknown
    /// datyp, nbits 0 or above 64, a packing of 33 to 63 bits, raw binary that is not 32- or
    /// 64-bit, turbo compression of more than 16 bits (32 for IEEE) or of a record that is not
    /// a 2-D grid at least 2 wide.
    ///
    /// Floats (1, 5, 6 and their turbo forms) are f32, or f64 when nbits or dasiz is 64;
    /// integers (2, 4) likewise 32 or 64 bits; 130 is always u32 (librmn cannot compress
    /// 64-bit integers); 3 and 7 are characters (u8); 8 is complex; raw binary (0) is read as
    /// f32 (nbits 32, as fstd2nc does) or f64 (nbits 64).
    pub fn element(&self) -> Result<Element, UnpackError> {
        self.scheme().map(|(_, element)| element)
    }

    /// Number of decoded values: ni·nj·nk (complex numbers count once).
    pub fn values(&self) -> Result<u64, UnpackError> {
        u64::from(self.ni)
            .checked_mul(u64::from(self.nj))
            .and_then(|v| v.checked_mul(u64::from(self.nk)))
            .ok_or_else(|| self.too_large())
    }

    /// Size of the decoded record in bytes.
    pub fn decoded_bytes(&self) -> Result<u64, UnpackError> {
        let size = self.element()?.size() as u64;
        self.values()?.checked_mul(size).ok_or_else(|| self.too_large())
    }

    fn too_large(&self) -> UnpackError {
        UnpackError::TooLarge {
            ni: self.ni,
            nj: self.nj,
            nk: self.nk,
        }
    }

    fn scheme(&self) -> Result<(Scheme, Element), UnpackError> {
        use Element::*;
        use Scheme::{Chars, CompactFloat, FloatPacker, Ieee, Ieee64, Native64, Signed, Unsigned};
        let unsupported = |why: &'static str| UnpackError::Unsupported {
            datyp: self.datyp,
            nbits: self.nbits,
            why,
        };
        if self.nbits == 0 || self.nbits > 64 {
            return Err(unsupported("nbits must be 1 to 64"));
        }
        let base = self.datyp & !(MISSING_FLAG | TURBO_FLAG);
        let turbo = self.datyp & TURBO_FLAG != 0;
        let nbits = self.nbits;
        let wide = nbits == 64 || self.dasiz == 64;
        let float = if wide { F64 } else { F32 };
        let up_to_32 = nbits <= 32;
        let found = match (base, turbo) {
            (0, false) if nbits == 32 => (Ieee, F32),
            (0, false) if nbits == 64 => (Ieee64, F64),
            (0, false) => return Err(unsupported("raw binary is only read as 32- or 64-bit floats")),
            (1, false) if up_to_32 => (CompactFloat, float),
            (2, false) if up_to_32 => (Unsigned, if wide { U64 } else { U32 }),
            (2, false) if nbits == 64 => (Native64, U64),
            (3 | 7, false) => (Chars, U8),
            (4, false) if up_to_32 => (Signed, if wide { I64 } else { I32 }),
            (4, false) if nbits == 64 => (Native64, I64),
            (5, false) if up_to_32 => (Ieee, float),
            (5 | 8, false) if nbits == 64 => (Ieee64, if base == 5 { F64 } else { C128 }),
            (6, false) if up_to_32 => (FloatPacker, float),
            (8, false) if up_to_32 => (Ieee, if wide { C128 } else { C64 }),
            (1 | 2 | 4 | 5 | 6 | 8, false) => {
                return Err(unsupported("packings of 33 to 63 bits do not exist"));
            }
            (1, true) if nbits <= 16 => (Scheme::Turbo(Turbo::CompactFloat), float),
            (2, true) if nbits <= 16 => (Scheme::Turbo(Turbo::Unsigned), U32),
            (5, true) if up_to_32 => (Scheme::Turbo(Turbo::Ieee), float),
            (6, true) if nbits <= 16 => (Scheme::Turbo(Turbo::FloatPacker), float),
            (1 | 2 | 6, true) => return Err(unsupported("turbo compression packs at most 16 bits")),
            (5, true) => {
                return Err(unsupported(
                    "turbo compression of IEEE floats packs at most 32 bits",
                ));
            }
            (0 | 3 | 4 | 7 | 8, true) => {
                return Err(unsupported("this data type has no turbo-compressed form"));
            }
            _ => return Err(UnpackError::UnknownDatyp { datyp: self.datyp }),
        };
        if turbo {
            self.turbo_grid()?;
        }
        Ok(found)
    }

    /// The turbo grid: ni × nj, 2-D and at least 2 × 2 (what librmn compresses).
    fn turbo_grid(&self) -> Result<(usize, usize), UnpackError> {
        let unsupported = |why: &'static str| UnpackError::Unsupported {
            datyp: self.datyp,
            nbits: self.nbits,
            why,
        };
        if self.nk != 1 {
            return Err(unsupported("turbo compression of a 3-D record (nk > 1)"));
        }
        if self.ni < 2 || self.nj < 2 {
            return Err(unsupported("turbo compression of a grid less than 2 wide"));
        }
        let ni = usize::try_from(self.ni).map_err(|_| self.too_large())?;
        let nj = usize::try_from(self.nj).map_err(|_| self.too_large())?;
        Ok((ni, nj))
    }
}

/// Decodes one record payload (the bytes after the record header/metadata, as stored) into
/// the values as little-endian bytes of [`Packing::element`], Fortran order (i fastest, then
/// j, then k) — which is C order for shape (nk, nj, ni).
pub fn unpack(p: &Packing, payload: &[u8], order: WordOrder) -> Result<Vec<u8>, UnpackError> {
    let (scheme, element) = p.scheme()?;
    let too_large = || p.too_large();
    let n = usize::try_from(p.values()?).map_err(|_| too_large())?;
    // The decoded size must be addressable; whether it is affordable is the caller's call
    // (decoded_bytes() tells it before any decoding).
    usize::try_from(p.decoded_bytes()?).map_err(|_| too_large())?;
    if n == 0 {
        return Ok(Vec::new());
    }
    let words = Words::new(payload, order);
    let nbits = u32::from(p.nbits);
    let decoded = match scheme {
        Scheme::Ieee => ieee::unpack(words, n, nbits, element),
        Scheme::Ieee64 => ieee::unpack_doubles(words, n, element),
        Scheme::CompactFloat => compact_float::unpack(words, n, nbits, element),
        Scheme::Unsigned => integer::unpack_unsigned(words, n, nbits, element),
        Scheme::Signed => integer::unpack_signed(words, n, nbits, element),
        Scheme::Native64 => integer::unpack_native64(words, n),
        Scheme::Chars => chars::unpack(words, n),
        Scheme::FloatPacker => float_packer::unpack(words, n, element),
        Scheme::Turbo(turbo) => {
            let (ni, nj) = p.turbo_grid()?;
            unpack_turbo(turbo, words, ni, nj, element)
        }
    };
    decoded.map_err(|fault| fault.in_datyp(p.datyp))
}

/// The +128 packings: the payload starts with its own length in words, then per datyp a
/// header and an armn_compress stream (fst.md §2.10).
fn unpack_turbo(
    turbo: Turbo,
    words: Words,
    ni: usize,
    nj: usize,
    element: Element,
) -> Result<Vec<u8>, Fault> {
    let [length] = words.array::<1>(0)?;
    let length = usize::try_from(length).unwrap_or(usize::MAX);
    if length > words.len() {
        return Err(Fault::Truncated {
            needed: length as u64,
            available: words.len() as u64,
        });
    }
    // The length counts itself and every word of the packed record: nothing past it is data.
    let words = words.take(length);
    let decoded = match turbo {
        Turbo::CompactFloat => {
            let header = compact_float::CompactHeader::parse(words.array::<4>(1)?)?;
            let tokens = turbo16::decompress(words.skip(5), ni, nj)?;
            // librmn (≤ 20.1) re-reads the decompressed 16-bit tokens as nbits-bit tokens when
            // nbits < 16, which scrambles the field (fst.md §2.10). The tokens are the 16-bit
            // values: we decode those, so for nbits < 16 we give the written values where
            // librmn gives garbage; for nbits = 16 both agree.
            Sink::collect(element, tokens, |sink, token| sink.f32(header.value(token)))
        }
        Turbo::Unsigned => {
            let tokens = turbo16::decompress(words.skip(1), ni, nj)?;
            Sink::collect(element, tokens, Sink::u32)
        }
        Turbo::FloatPacker => {
            let header = float_packer::FloatPackerHeader::parse(words.array::<3>(1)?, ni * nj)?;
            let tokens = turbo16::decompress(words.skip(4), ni, nj)?;
            Sink::collect(element, tokens, |sink, token| sink.f32(header.value(token)))
        }
        Turbo::Ieee => {
            let values = turbo32::decompress(words.skip(1), ni, nj)?;
            Sink::collect(element, values, |sink, bits| sink.f32(f32::from_bits(bits)))
        }
    };
    Ok(decoded)
}
