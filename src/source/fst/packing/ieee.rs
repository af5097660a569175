//! IEEE floats (fst.md §2.6, §2.1): datyp 5, datyp 8 (complex: the same with two values per
//! element, real then imaginary) and datyp 0 (raw binary, read as floats like fstd2nc does).
//! - nbits ≤ 32: tokens of `nbits` bits, each the top bits of an f32 (mantissa truncated);
//!   nbits 32 is one word per value.
//! - nbits 64: two words per value, **high word first** (librmn's `move6432`): a plain
//!   big-endian f64 in XDF, but two little-endian words in the wrong order for a plain
//!   little-endian f64 in RSF.

use super::Element;
use super::bits::{Words, tokens};
use super::error::Fault;
use super::sink::Sink;

/// nbits ≤ 32: value bits = token << (32 − nbits).
pub(crate) fn unpack(words: Words, n: usize, nbits: u32, element: Element) -> Result<Vec<u8>, Fault> {
    let count = n.saturating_mul(element.parts());
    let mut r = tokens(words, 0, count, nbits)?;
    let shift = 32 - nbits.clamp(1, 32);
    let mut sink = Sink::new(element, n);
    for _ in 0..count {
        sink.f32(f32::from_bits(r.read(nbits) << shift));
    }
    Ok(sink.finish())
}

/// nbits 64: each value is (high word, low word).
pub(crate) fn unpack_doubles(words: Words, n: usize, element: Element) -> Result<Vec<u8>, Fault> {
    let count = n.saturating_mul(element.parts());
    words.require_bits(count as u128 * 64)?;
    let mut sink = Sink::new(element, n);
    let mut it = words.iter();
    for _ in 0..count {
        // Both present: the size was checked above.
        let (Some(high), Some(low)) = (it.next(), it.next()) else {
            break;
        };
        sink.f64(f64::from_bits(u64::from(high) << 32 | u64::from(low)));
    }
    Ok(sink.finish())
}

#[cfg(test)]
mod tests {
    use super::super::bits::testing::{BitWriter, payload};
    use super::super::{Packing, WordOrder, unpack};
    use super::*;

    fn packing(datyp: u8, nbits: u8, n: u32) -> Packing {
        Packing {
            datyp,
            nbits,
            dasiz: if nbits == 64 { 64 } else { 32 },
            ni: n,
            nj: 1,
            nk: 1,
        }
    }

    fn f64s(bytes: &[u8]) -> Vec<f64> {
        bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }

    fn f32s(bytes: &[u8]) -> Vec<f32> {
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }

    #[test]
    fn e64_is_high_word_first_in_both_containers() {
        let values = [1.0f64 + f64::EPSILON, -3.25e-300];
        // XDF: big-endian words, high first = a plain big-endian f64.
        let xdf: Vec<u8> = values.iter().flat_map(|v| v.to_be_bytes()).collect();
        // RSF: the same words (high, low), each little-endian; plus a slack word.
        let mut rsf: Vec<u8> = values
            .iter()
            .flat_map(|v| {
                let bits = v.to_bits();
                [(bits >> 32) as u32, bits as u32]
            })
            .flat_map(u32::to_le_bytes)
            .collect();
        rsf.extend_from_slice(&[0x55; 4]);
        let p = packing(5, 64, 2);
        assert_eq!(p.element().unwrap(), Element::F64);
        assert_eq!(f64s(&unpack(&p, &xdf, WordOrder::Big).unwrap()), values);
        assert_eq!(f64s(&unpack(&p, &rsf, WordOrder::Little).unwrap()), values);
        // datyp 0 with nbits 64 reads the same way.
        assert_eq!(
            f64s(&unpack(&packing(0, 64, 2), &xdf, WordOrder::Big).unwrap()),
            values
        );
    }

    #[test]
    fn e32_and_raw_32_bit_words_are_f32_bit_patterns() {
        let values = [1.5f32, -0.0, f32::MAX, 7e-42];
        let words: Vec<u32> = values.iter().map(|v| v.to_bits()).collect();
        for order in [WordOrder::Big, WordOrder::Little] {
            let bytes = payload(&words, order);
            for datyp in [0, 5, 64 + 5] {
                let out = unpack(&packing(datyp, 32, 4), &bytes, order).unwrap();
                assert_eq!(f32s(&out).iter().map(|v| v.to_bits()).collect::<Vec<_>>(), words);
            }
        }
    }

    #[test]
    fn truncated_ieee_keeps_the_top_bits() {
        // nbits 16: the upper halves of the f32 patterns, packed two per word.
        let values = [1.0f32, -2.5, 65280.0];
        let mut w = BitWriter::new();
        for v in values {
            w.put(v.to_bits() >> 16, 16);
        }
        let bytes = payload(&w.finish(), WordOrder::Little);
        let out = unpack(&packing(5, 16, 3), &bytes, WordOrder::Little).unwrap();
        assert_eq!(f32s(&out), values);
        // 12 bits: 1.0 = 0x3F80_0000 keeps 0x3F8; 3.0 = 0x4040_0000 keeps 0x404.
        let mut w = BitWriter::new();
        w.put(0x3F8, 12).put(0x404, 12).put(0xC08, 12);
        let bytes = payload(&w.finish(), WordOrder::Big);
        let out = unpack(&packing(5, 12, 3), &bytes, WordOrder::Big).unwrap();
        assert_eq!(f32s(&out), [1.0, 3.0, -4.0]);
    }

    #[test]
    fn complex_values_interleave_real_and_imaginary() {
        let parts = [1.0f32, -1.0, 0.5, 2.0];
        let words: Vec<u32> = parts.iter().map(|v| v.to_bits()).collect();
        let bytes = payload(&words, WordOrder::Big);
        let p = packing(8, 32, 2);
        assert_eq!(p.element().unwrap(), Element::C64);
        assert_eq!(p.decoded_bytes().unwrap(), 16);
        assert_eq!(f32s(&unpack(&p, &bytes, WordOrder::Big).unwrap()), parts);
        // One word short of two complex values.
        assert!(unpack(&p, &bytes[..12], WordOrder::Big).is_err());
    }
}
