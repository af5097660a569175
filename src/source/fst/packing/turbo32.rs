//! librmn's armn_compress32 (fst.md §2.10.2), datyp 133: f32 values split into sign,
//! exponent and mantissa, each compressed on its own.
//!
//! Word 0 is an `_fstzip` header (predictor 5, nbits = mantissa bits = the record's nbits − 9);
//! word 1 = `exp_min:16 | nbits_exp:8 | codes:8`. Then, in order, sections each preceded by a
//! u32 byte length that says where the next one starts:
//! - signs (sign code `codes & 0x30` = 0x20 or 0x30): a 1-bit run-length stream; codes 0x00
//!   and 0x10 mean all positive and all negative, with no section;
//! - exponents (`codes & 0x0C` = 0x08 or 0x0C): a parallelogram stream of `nbits_exp`-bit
//!   values (8-bit arithmetic) added to `exp_min`; otherwise every exponent is `exp_min`;
//! - mantissas, always (their length word is not used): a parallelogram stream
//!   (`codes & 0x03` = 0) or a plain stream of `nbits`-bit values.
//!
//! Value bits = `sign << 31 | exponent << 23 | mantissa << (23 − nbits)`.

use super::bits::{BitReader, Words, tokens};
use super::error::Fault;
use super::parallelogram::Parallelogram;
use super::turbo16::{PARALLELOGRAM32, ZipHeader};

const SIGNS_RLE: u32 = 0x20;
/// The writer's bit-mask format for signs, used when the run-length one would be longer than
/// n/4 bytes. librmn decodes it with the run-length decoder all the same (a latent librmn bug,
/// fst.md §2.10.2); we follow librmn, so such records decode as librmn decodes them.
const SIGNS_MASK: u32 = 0x30;
const ALL_NEGATIVE: u32 = 0x10;
const EXPONENTS_PACKED: u32 = 0x08;
const EXPONENTS_STREAM: u32 = 0x0C;
const MANTISSAS_PACKED: u32 = 0x00;
/// armn_compress32 always uses tiles of 3 (its header's step is not read).
const STEP: usize = 3;
/// An f32 mantissa has 23 bits.
const MANTISSA_BITS: u32 = 23;

/// Decompresses the stream at the start of `z` (the payload after its length word) into the
/// ni × nj f32 bit patterns (row-major, i fastest).
pub(crate) fn decompress(z: Words, ni: usize, nj: usize) -> Result<Vec<u32>, Fault> {
    let [zip, info] = z.array::<2>(0)?;
    let header = ZipHeader::parse(zip);
    if header.predictor != PARALLELOGRAM32 {
        return Err(Fault::Corrupt(format!(
            "armn_compress32 header names predictor {}, not {PARALLELOGRAM32}",
            header.predictor
        )));
    }
    let nbits = header.nbits;
    if nbits > MANTISSA_BITS {
        return Err(Fault::Corrupt(format!(
            "armn_compress32 mantissas of {nbits} bits (at most 23)"
        )));
    }
    let exp_min = info >> 16;
    let nbits_exp = (info >> 8) & 0xFF;
    let codes = info & 0xFF;
    let n = ni * nj; // the caller checked ni·nj

    // Locate the sections first, and check them, before allocating anything.
    let mut at = 2usize;
    let section = |at: &mut usize| -> Result<usize, Fault> {
        let [bytes] = z.array::<1>(*at)?;
        let start = *at + 1;
        *at = start
            .checked_add((bytes / 4) as usize)
            .ok_or_else(|| Fault::Corrupt("armn_compress32 section length overflows".into()))?;
        Ok(start)
    };
    let signs_at = match codes & 0x30 {
        SIGNS_RLE | SIGNS_MASK => Some(section(&mut at)?),
        _ => None,
    };
    let exponents = match codes & 0x0C {
        EXPONENTS_PACKED | EXPONENTS_STREAM => {
            let start = section(&mut at)?;
            Some(Parallelogram::open(
                z.skip(start),
                ni,
                nj,
                nbits_exp,
                STEP,
                false,
            )?)
        }
        _ => None,
    };
    let mantissas = z.skip(at.saturating_add(1));
    let mut mantissa = if codes & 0x03 == MANTISSAS_PACKED {
        Parallelogram::open(mantissas, ni, nj, nbits, STEP, false)?.decode()?
    } else {
        if nbits == 0 {
            // Zero bits per value would let an empty stream claim any grid.
            return Err(Fault::Corrupt("armn_compress32 stream of 0-bit mantissas".into()));
        }
        let mut r = tokens(mantissas, 0, n, nbits)?;
        (0..n).map(|_| r.read(nbits)).collect()
    };

    let signs = signs_at
        .map(|start| signs(BitReader::new(z.skip(start), 0), n))
        .transpose()?;
    let constant_sign = u32::from(codes & 0x30 == ALL_NEGATIVE);
    let exponents = exponents.map(Parallelogram::decode).transpose()?;
    for (k, m) in mantissa.iter_mut().enumerate() {
        let sign = match &signs {
            Some(s) => u32::from(s.get(k).copied().unwrap_or(0)),
            None => constant_sign,
        };
        let exponent = match &exponents {
            Some(e) => e.get(k).copied().unwrap_or(0).wrapping_add(exp_min),
            None => exp_min,
        } & 0xFF;
        *m = sign << 31 | exponent << 23 | (*m << (MANTISSA_BITS - nbits)) & 0x7F_FFFF;
    }
    Ok(mantissa)
}

/// The 1-bit run-length stream of signs: a 0 bit and then up to 7 literal bits, or a 1 bit,
/// a value bit and a 6-bit count; count 63 repeats the last counted value 255 times.
fn signs(mut r: BitReader, n: usize) -> Result<Vec<u8>, Fault> {
    let mut out = vec![0u8; n];
    let mut i = 0;
    // librmn starts from an all-ones "last value", i.e. negative, for a repeat that comes
    // before any count (writers never emit one).
    let mut last = 1u8;
    while i < n {
        if r.read(1) == 0 {
            let run = (n - i).min(7);
            for s in out.iter_mut().skip(i).take(run) {
                *s = r.read(1) as u8;
            }
            i += run;
        } else {
            let value = r.read(1) as u8;
            let (fill, run) = match r.read(6) {
                63 => (last, 255),
                count => {
                    last = value;
                    (value, count as usize)
                }
            };
            out.iter_mut().skip(i).take(run).for_each(|s| *s = fill);
            i = i.saturating_add(run);
        }
        // Counts of 0 make no progress: the stream running out is what ends such a loop.
        r.check()?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::bits::testing::{BitWriter, payload};
    use super::super::parallelogram;
    use super::super::{Packing, UnpackError, WordOrder, unpack};
    use super::*;

    fn zip(nbits: u32) -> u32 {
        PARALLELOGRAM32 | 1 << 4 | 3 << 7 | nbits << 10 | 1 << 15 | 2 << 18
    }

    #[test]
    fn run_length_signs() {
        let mut w = BitWriter::new();
        // Literals 1011001, a count of 10 ones, a repeat of the last count (255), literals.
        w.put(0, 1).put(0b1011001, 7);
        w.put(1, 1).put(1, 1).put(10, 6);
        w.put(1, 1).put(0, 1).put(63, 6);
        w.put(0, 1).put(0b0110000, 7);
        let bytes = payload(&w.finish(), WordOrder::Big);
        let n = 7 + 10 + 255 + 3;
        let got = signs(BitReader::new(Words::new(&bytes, WordOrder::Big), 0), n).unwrap();
        let mut expected = vec![1, 0, 1, 1, 0, 0, 1];
        expected.extend([1; 10 + 255]);
        expected.extend([0, 1, 1]);
        assert_eq!(got, expected);
        // Counts of zero until the stream ends: an error, not a hang.
        let bytes = payload(&[0x8080_8080, 0x8080_8080], WordOrder::Big);
        let r = BitReader::new(Words::new(&bytes, WordOrder::Big), 0);
        assert!(matches!(signs(r, 4), Err(Fault::Truncated { .. })));
    }

    /// A hand-built 133 record: all negative, constant exponent, plain mantissa stream.
    #[test]
    fn constant_sign_and_exponent_with_a_mantissa_stream() {
        let (ni, nj, nbits) = (3usize, 2usize, 7u32);
        let values = [-1.0f32, -1.5, -1.9921875, -1.25, -1.0078125, -1.75];
        let mut w = BitWriter::new();
        w.word(0)
            .word(zip(nbits))
            .word(127 << 16 | ALL_NEGATIVE | 0x01)
            .word(0);
        for v in values {
            w.put((v.to_bits() & 0x7F_FFFF) >> (23 - nbits), nbits);
        }
        let mut words = w.finish();
        words[0] = words.len() as u32;
        let p = Packing {
            datyp: 133,
            nbits: 16,
            dasiz: 32,
            ni: ni as u32,
            nj: nj as u32,
            nk: 1,
        };
        for order in [WordOrder::Big, WordOrder::Little] {
            let out = unpack(&p, &payload(&words, order), order).unwrap();
            let got: Vec<f32> = out
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            assert_eq!(got, values);
        }
    }

    /// Every section present: run-length signs, packed exponents, packed mantissas.
    #[test]
    fn all_sections_packed() {
        let (ni, nj) = (4usize, 3usize);
        let values: Vec<f32> = (0..12).map(|k| (k as f32 - 5.5) * 3.3f32.powi(k % 5)).collect();
        let bits: Vec<u32> = values.iter().map(|v| v.to_bits()).collect();
        let exp_min = bits.iter().map(|b| (b >> 23) & 0xFF).min().unwrap();
        let exps: Vec<u32> = bits.iter().map(|b| ((b >> 23) & 0xFF) - exp_min).collect();
        let mants: Vec<u32> = bits.iter().map(|b| b & 0x7F_FFFF).collect();

        let mut w = BitWriter::new();
        w.word(0)
            .word(zip(23))
            .word(exp_min << 16 | 4 << 8 | SIGNS_RLE | EXPONENTS_PACKED);
        // Signs: 12 literal bits in two sequences; the section is 1 word (4 bytes).
        let mut signs = BitWriter::new();
        signs.put(0, 1);
        bits[..7].iter().for_each(|b| {
            signs.put(b >> 31, 1);
        });
        signs.put(0, 1);
        bits[7..].iter().for_each(|b| {
            signs.put(b >> 31, 1);
        });
        let signs = signs.finish();
        w.word(4 * signs.len() as u32);
        signs.iter().for_each(|s| {
            w.word(*s);
        });
        let mut e = BitWriter::new();
        parallelogram::testing::encode(
            &mut e,
            &parallelogram::testing::Layout {
                ni,
                nbits: 4,
                step: 3,
                cont: 4,
                escape17: false,
            },
            &exps,
            |_| 5,
        );
        let e = e.finish();
        w.word(4 * e.len() as u32);
        e.iter().for_each(|x| {
            w.word(*x);
        });
        w.word(0xFFFF_FFFF); // the unused mantissa length
        parallelogram::testing::encode(
            &mut w,
            &parallelogram::testing::Layout {
                ni,
                nbits: 23,
                step: 3,
                cont: 5,
                escape17: false,
            },
            &mants,
            |_| 25,
        );
        let mut words = w.finish();
        words[0] = words.len() as u32;
        let p = Packing {
            datyp: 133,
            nbits: 32,
            dasiz: 32,
            ni: ni as u32,
            nj: nj as u32,
            nk: 1,
        };
        let out = unpack(&p, &payload(&words, WordOrder::Little), WordOrder::Little).unwrap();
        let got: Vec<u32> = out
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(got, bits);
        assert!(values.iter().any(|v| *v < 0.0) && values.iter().any(|v| *v > 0.0));

        // The same stream cut before its mantissas end.
        let mut cut = words.clone();
        cut.truncate(words.len() - 1);
        cut[0] = cut.len() as u32;
        assert!(matches!(
            unpack(&p, &payload(&cut, WordOrder::Little), WordOrder::Little),
            Err(UnpackError::Truncated { datyp: 133, .. })
        ));
    }

    #[test]
    fn inconsistent_headers_are_refused() {
        let run = |zipword: u32, info: u32| {
            let words = [zipword, info, 0, 0, 0, 0];
            let bytes = payload(&words, WordOrder::Big);
            decompress(Words::new(&bytes, WordOrder::Big), 2, 2)
        };
        assert!(matches!(run(zip(7) & !0xF | 4, 0), Err(Fault::Corrupt(_))));
        assert!(matches!(run(zip(24), 0), Err(Fault::Corrupt(_))));
        assert!(matches!(run(zip(0), 0x01), Err(Fault::Corrupt(_))));
        // A section length that runs the next section off the end.
        let words = [zip(7), SIGNS_RLE, 0xFFFF_FFF0];
        let bytes = payload(&words, WordOrder::Big);
        assert!(matches!(
            decompress(Words::new(&bytes, WordOrder::Big), 2, 2),
            Err(Fault::Truncated { .. })
        ));
    }
}
