//! Integers (fst.md §2.2, §2.3): datyp 2 (unsigned) and 4 (signed) are header-less streams of
//! `nbits`-bit tokens; a signed value is stored offset by 2^(nbits−1). fst24 (RSF) files store
//! 64-bit integers (nbits 64, dasiz 64) as plain native u64/i64 instead — low word first on a
//! little-endian writer, unlike E64 floats.

use super::bits::{Words, tokens};
use super::error::Fault;
use super::sink::Sink;
use super::{Element, WordOrder};

/// datyp 2: each token is the value.
pub(crate) fn unpack_unsigned(
    words: Words,
    n: usize,
    nbits: u32,
    element: Element,
) -> Result<Vec<u8>, Fault> {
    let mut r = tokens(words, 0, n, nbits)?;
    let mut sink = Sink::new(element, n);
    for _ in 0..n {
        sink.u32(r.read(nbits));
    }
    Ok(sink.finish())
}

/// datyp 4: value = token − 2^(nbits−1).
pub(crate) fn unpack_signed(words: Words, n: usize, nbits: u32, element: Element) -> Result<Vec<u8>, Fault> {
    let mut r = tokens(words, 0, n, nbits)?;
    let offset = 1i64 << (nbits.clamp(1, 32) - 1);
    let mut sink = Sink::new(element, n);
    for _ in 0..n {
        // In range: token < 2^nbits, so the difference lies in [−2^(nbits−1), 2^(nbits−1)).
        sink.i32((i64::from(r.read(nbits)) - offset) as i32);
    }
    Ok(sink.finish())
}

/// datyp 2 and 4 with nbits 64: the writer's native 64-bit integers, copied.
pub(crate) fn unpack_native64(words: Words, n: usize) -> Result<Vec<u8>, Fault> {
    words.require_bits(n as u128 * 64)?;
    let bytes = words.bytes().get(..n.saturating_mul(8)).unwrap_or_default();
    Ok(match words.order() {
        WordOrder::Little => bytes.to_vec(),
        WordOrder::Big => bytes
            .chunks_exact(8)
            .flat_map(|c| {
                let mut v = [0; 8];
                v.copy_from_slice(c);
                v.reverse();
                v
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::bits::testing::{BitWriter, payload};
    use super::super::{Packing, UnpackError, unpack};
    use super::*;

    fn packing(datyp: u8, nbits: u8, dasiz: u8, n: u32) -> Packing {
        Packing {
            datyp,
            nbits,
            dasiz,
            ni: n,
            nj: 1,
            nk: 1,
        }
    }

    fn i32s(bytes: &[u8]) -> Vec<i32> {
        bytes
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    #[test]
    fn unsigned_tokens_straddle_words() {
        // 11 tokens of 3 bits = 33 bits: the 11th token straddles into the second word.
        let values: Vec<u32> = (0..11).map(|v| v % 8).collect();
        let mut w = BitWriter::new();
        values.iter().for_each(|v| {
            w.put(*v, 3);
        });
        let bytes = payload(&w.finish(), WordOrder::Little);
        let out = unpack(&packing(2, 3, 32, 11), &bytes, WordOrder::Little).unwrap();
        let got: Vec<u32> = i32s(&out).into_iter().map(|v| v as u32).collect();
        assert_eq!(got, values);
    }

    #[test]
    fn signed_values_are_offset_binary() {
        let mut w = BitWriter::new();
        for token in [0, 0x7FFF, 0x8000, 0xFFFF] {
            w.put(token, 16);
        }
        for token in [0, 0x8000_0000, u32::MAX] {
            w.put(token, 32);
        }
        let words = w.finish();
        let bytes = payload(&words, WordOrder::Big);
        let out = unpack(&packing(4, 16, 32, 4), &bytes, WordOrder::Big).unwrap();
        assert_eq!(i32s(&out), [-32768, -1, 0, 32767]);
        let bytes32 = payload(&words[2..], WordOrder::Big);
        let out = unpack(&packing(4, 32, 32, 3), &bytes32, WordOrder::Big).unwrap();
        assert_eq!(i32s(&out), [i32::MIN, 0, i32::MAX]);
        // +64 changes nothing in the decoding itself.
        assert_eq!(
            unpack(&packing(68, 32, 32, 3), &bytes32, WordOrder::Big).unwrap(),
            out
        );
    }

    #[test]
    fn dasiz_64_widens_32_bit_packings() {
        let bytes = payload(&[0x0001_FFFF], WordOrder::Little);
        let out = unpack(&packing(4, 16, 64, 2), &bytes, WordOrder::Little).unwrap();
        let got: Vec<i64> = out
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(got, [-32767, 32767]);
        assert_eq!(packing(2, 16, 64, 2).element().unwrap(), Element::U64);
    }

    #[test]
    fn native_64_bit_integers_in_both_byte_orders() {
        let values = [-2i64, 0x0102_0304_0506_0708];
        let expected: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        // RSF from a little-endian writer: a plain little-endian i64 array (+ a slack word).
        let mut little = expected.clone();
        little.extend_from_slice(&[0xAB; 4]);
        let p = packing(4, 64, 64, 2);
        assert_eq!(p.element().unwrap(), Element::I64);
        assert_eq!(unpack(&p, &little, WordOrder::Little).unwrap(), expected);
        let big: Vec<u8> = values.iter().flat_map(|v| v.to_be_bytes()).collect();
        assert_eq!(unpack(&p, &big, WordOrder::Big).unwrap(), expected);
        assert!(matches!(
            unpack(&p, &big[..12], WordOrder::Big),
            Err(UnpackError::Truncated {
                datyp: 4,
                needed: 4,
                available: 3
            })
        ));
    }
}
