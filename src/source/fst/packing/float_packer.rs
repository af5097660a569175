//! librmn's float_packer, the new quantisation (fst.md §2.8): datyp 6, and the header of 134.
//! Three header words, then 16-bit tokens, two per word, first in the upper half — always 16
//! bits, even for nbits < 16.
//!
//! Header: h0 = `0xEFF:12 | (nbits−1):4 | maxExp:8 | shift:8`, h1 = the minimum (i32, a
//! mantissa scaled to maxExp), h2 = the number of values. A token t gives the mantissa
//! m = (t << shift) + minimum, which becomes an f32 of exponent maxExp; when m has no bit 23
//! that f32 carries a hidden 1 too many, which is subtracted.

use super::Element;
use super::bits::{Words, tokens};
use super::error::Fault;
use super::sink::Sink;

/// The marker in the top 12 bits of h0.
const MARKER: u32 = 0xEFF;
/// Header length in words.
const HEADER_WORDS: u64 = 3;
/// Tokens are 16 bits wide whatever nbits says.
const TOKEN_BITS: u32 = 16;
/// The mantissa saturates at 24 bits (hidden bit included).
const MAX_MANTISSA: u32 = 0xFF_FFFF;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FloatPackerHeader {
    max_exp: u32,
    shift: u32,
    minimum: i32,
}

impl FloatPackerHeader {
    /// Parses h0..h2 of a record of `n` values.
    pub(crate) fn parse(h: [u32; 3], n: usize) -> Result<Self, Fault> {
        if h[0] >> 20 != MARKER {
            return Err(Fault::Corrupt(format!(
                "float_packer header starts with 0x{:03X}, not 0xEFF",
                h[0] >> 20
            )));
        }
        if u64::from(h[2]) != n as u64 {
            return Err(Fault::Corrupt(format!(
                "float_packer header counts {} values, the record has {n}",
                h[2]
            )));
        }
        Ok(FloatPackerHeader {
            max_exp: (h[0] >> 8) & 0xFF,
            shift: h[0] & 0xFF,
            minimum: h[1] as i32,
        })
    }

    #[inline]
    pub(crate) fn value(&self, token: u32) -> f32 {
        if self.max_exp == 0 {
            // The packer's encoding of an all-zero field.
            return 0.0;
        }
        // i32 arithmetic modulo 2^32, as librmn does; a shift of 32 or more leaves nothing.
        let shifted = token.checked_shl(self.shift).unwrap_or(0);
        let m = (shifted as i32).wrapping_add(self.minimum);
        let sign = u32::from(m < 0) << 31;
        let magnitude = m.unsigned_abs().min(MAX_MANTISSA);
        let exponent = self.max_exp << 23;
        let f = f32::from_bits(magnitude & 0x7F_FFFF | exponent | sign);
        if magnitude & 0x80_0000 == 0 {
            f - f32::from_bits(exponent | sign)
        } else {
            f
        }
    }
}

/// datyp 6: header, then `n` 16-bit tokens.
pub(crate) fn unpack(words: Words, n: usize, element: Element) -> Result<Vec<u8>, Fault> {
    let mut r = tokens(words, HEADER_WORDS * 32, n, TOKEN_BITS)?;
    let header = FloatPackerHeader::parse(words.array::<3>(0)?, n)?;
    let mut sink = Sink::new(element, n);
    for _ in 0..n {
        sink.f32(header.value(r.read(TOKEN_BITS)));
    }
    Ok(sink.finish())
}

#[cfg(test)]
mod tests {
    use super::super::bits::testing::payload;
    use super::super::{Packing, UnpackError, WordOrder, unpack};
    use super::*;

    fn h0(nbits: u32, max_exp: u32, shift: u32) -> u32 {
        MARKER << 20 | (nbits - 1) << 16 | max_exp << 8 | shift
    }

    #[test]
    fn tokens_are_mantissas_of_a_shared_exponent() {
        // maxExp 127 = the exponent of [1, 2): a mantissa m without bit 23 is m·2^-23.
        let h = FloatPackerHeader::parse([h0(16, 127, 8), 0, 3], 3).unwrap();
        assert_eq!(h.value(0), 0.0);
        assert_eq!(h.value(0x4000), 0.5); // m = 2^22
        assert_eq!(h.value(0x8000), 1.0); // m = 2^23: a genuine hidden bit
        assert_eq!(h.value(0xC000), 1.5);
        // A negative minimum: token 0 is −2^23 → −1.0, token 0x4000 is −2^22 → −0.5.
        let h = FloatPackerHeader::parse([h0(16, 127, 8), (-0x80_0000i32) as u32, 1], 1).unwrap();
        assert_eq!(h.value(0), -1.0);
        assert_eq!(h.value(0x4000), -0.5);
        // maxExp 128 doubles everything; maxExp 0 is an all-zero field.
        let h = FloatPackerHeader::parse([h0(12, 128, 8), 0, 1], 1).unwrap();
        assert_eq!(h.value(0x4000), 1.0);
        let h = FloatPackerHeader::parse([h0(12, 0, 8), 12345, 1], 1).unwrap();
        assert_eq!(h.value(0x4000), 0.0);
    }

    #[test]
    fn header_is_checked() {
        assert!(FloatPackerHeader::parse([0x7FF0_0000, 0, 1], 1).is_err());
        assert!(FloatPackerHeader::parse([h0(16, 127, 8), 0, 2], 1).is_err());
    }

    #[test]
    fn sixteen_bit_tokens_two_per_word_upper_first() {
        let p = Packing {
            datyp: 6,
            nbits: 12,
            dasiz: 32,
            ni: 3,
            nj: 1,
            nk: 1,
        };
        let words = [h0(12, 127, 8), 0, 3, 0x4000_8000, 0xC000_FFFF];
        for order in [WordOrder::Big, WordOrder::Little] {
            let out = unpack(&p, &payload(&words, order), order).unwrap();
            let got: Vec<f32> = out
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            assert_eq!(got, [0.5, 1.0, 1.5]);
        }
        assert!(matches!(
            unpack(&p, &payload(&words[..4], WordOrder::Big), WordOrder::Big),
            Err(UnpackError::Truncated {
                datyp: 6,
                needed: 5,
                available: 4
            })
        ));
    }
}
