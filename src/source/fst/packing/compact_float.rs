//! librmn's "compact float", the old quantisation (fst.md §2.7): datyp 1, and the header of
//! datyp 129. A header of four words gives the minimum and a power-of-two scale; each value is
//! `min` for token 0, else `token·scale·1.0000000000001 + min` computed in f64, stored as f32.
//!
//! Header fields (word values, MSB first):
//! - w0 = `marker:12 | count:20`; marker 0x7FF/0x7EF = style 1 (datyp 1), 0xFFF/0xFEF = style 2 (129);
//! - w1 = `rangeExpo:16 | minExpo:12 | minSign:4`;
//! - w2 = the minimum's mantissa (bits 30..8 used);
//! - w3 = `minMantissa16:16 | bitSize:8 | …`. In style 1 the low 8 bits of w3 are already the
//!   first bits of the token stream, which therefore starts at bit 120.

use super::Element;
use super::bits::{Words, tokens};
use super::error::Fault;
use super::sink::Sink;

/// The header markers librmn writes: style 1 and 2, each with or without its missing-value variant.
const MARKERS: [u32; 4] = [0x7FF, 0x7EF, 0xFFF, 0xFEF];
/// The exponent bias of `minExpo`: an f32 exponent field e is stored as e + 849.
const MIN_EXPO_BIAS: u32 = 849;
/// The bias of `rangeExpo`: scale = 2^(rangeExpo − 4096).
const RANGE_EXPO_BIAS: i32 = 4096;
/// Where the tokens of a style-1 (datyp 1) record start: 3 words and 24 bits in.
const STYLE1_TOKEN_START: u64 = 120;

/// The decoded header: what turns a token into a value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct CompactHeader {
    scale: f64,
    min: f64,
}

impl CompactHeader {
    pub(crate) fn parse(w: [u32; 4]) -> Result<Self, Fault> {
        let marker = w[0] >> 20;
        if !MARKERS.contains(&marker) {
            return Err(Fault::Corrupt(format!(
                "compact float header starts with 0x{marker:03X}, not 0x7FF or 0xFFF"
            )));
        }
        let range_expo = (w[1] >> 16) as i32;
        let min_expo = (w[1] >> 4) & 0xFFF;
        let min_sign = w[1] & 1;
        let min = if w[2] == 0 || min_expo < MIN_EXPO_BIAS {
            0.0
        } else {
            let exponent = (min_expo - MIN_EXPO_BIAS) & 0xFF;
            f64::from(f32::from_bits(
                min_sign << 31 | exponent << 23 | (w[2] >> 8) & 0x7F_FFFF,
            ))
        };
        Ok(CompactHeader {
            scale: pow2(range_expo - RANGE_EXPO_BIAS),
            min,
        })
    }

    #[inline]
    pub(crate) fn value(&self, token: u32) -> f32 {
        if token == 0 {
            self.min as f32
        } else {
            // The factor is librmn's: it nudges values up so that re-packing is stable.
            // Through i64: one instruction, where u32 → f64 takes several on x86-64.
            ((i64::from(token) as f64 * self.scale) * 1.000_000_000_000_1 + self.min) as f32
        }
    }
}

/// 2^e exactly, including the subnormal range (0 below it, infinity above).
fn pow2(e: i32) -> f64 {
    if e > 1023 {
        f64::INFINITY
    } else if e >= -1022 {
        f64::from_bits(((e + 1023) as u64) << 52)
    } else if e >= -1074 {
        f64::from_bits(1u64 << (e + 1074))
    } else {
        0.0
    }
}

/// datyp 1: header, then `n` tokens of `nbits` bits from bit 120.
pub(crate) fn unpack(words: Words, n: usize, nbits: u32, element: Element) -> Result<Vec<u8>, Fault> {
    let mut r = tokens(words, STYLE1_TOKEN_START, n, nbits)?;
    let header = CompactHeader::parse(words.array::<4>(0)?)?;
    let mut sink = Sink::new(element, n);
    for _ in 0..n {
        sink.f32(header.value(r.read(nbits)));
    }
    Ok(sink.finish())
}

#[cfg(test)]
mod tests {
    use super::super::bits::testing::{BitWriter, payload};
    use super::super::{Packing, UnpackError, WordOrder, unpack};
    use super::*;

    /// Header words for a minimum of `min` (an f32 with a normal exponent) and scale 2^`scale_exp`.
    fn header(marker: u32, min: f32, scale_exp: i32, nbits: u32) -> [u32; 4] {
        let bits = min.to_bits();
        let min_expo = ((bits >> 23) & 0xFF) + MIN_EXPO_BIAS;
        let range_expo = (scale_exp + RANGE_EXPO_BIAS) as u32;
        [
            marker << 20,
            range_expo << 16 | min_expo << 4 | bits >> 31,
            0x8000_0000 | (bits & 0x7F_FFFF) << 8,
            nbits << 8,
        ]
    }

    #[test]
    fn header_gives_minimum_and_scale() {
        let h = CompactHeader::parse(header(0x7FF, -12.75, -3, 16)).unwrap();
        assert_eq!(h.value(0), -12.75);
        // 8 · 2^-3 = 1 above the minimum (the 1e-13 nudge vanishes in f32).
        assert_eq!(h.value(8), -11.75);
        assert_eq!(h.value(0xFFFF), 8179.125);
        // librmn's 1e-13 nudge decides ties: 1 + (1 + 2^-23) = 2 + 2^-23 lies halfway between
        // two f32 values; plain rounding would give 2.0 (even), the nudge rounds up.
        let h = CompactHeader::parse(header(0x7FF, f32::from_bits(0x3F80_0001), 0, 16)).unwrap();
        assert_eq!(h.value(0), f32::from_bits(0x3F80_0001));
        assert_eq!(h.value(1), f32::from_bits(0x4000_0001));
        // A zero mantissa word or a tiny exponent means a minimum of 0.
        let mut w = header(0xFFF, 3.0, 0, 16);
        w[2] = 0;
        assert_eq!(CompactHeader::parse(w).unwrap().value(0), 0.0);
        assert!(matches!(
            CompactHeader::parse(header(0x123, 1.0, 0, 16)),
            Err(Fault::Corrupt(_))
        ));
        assert_eq!(pow2(-1074), f64::from_bits(1));
        assert_eq!(pow2(-1075), 0.0);
        assert_eq!(pow2(1024), f64::INFINITY);
        assert_eq!(pow2(-3), 0.125);
    }

    #[test]
    fn tokens_start_at_bit_120() {
        let [w0, w1, w2, w3] = header(0x7FF, 100.0, -1, 12);
        let tokens = [0u32, 1, 2, 0xFFF, 7];
        let mut w = BitWriter::new();
        w.word(w0).word(w1).word(w2).put(w3 >> 8, 24);
        for t in tokens {
            w.put(t, 12);
        }
        let words = w.finish();
        let p = Packing {
            datyp: 1,
            nbits: 12,
            dasiz: 32,
            ni: 5,
            nj: 1,
            nk: 1,
        };
        for order in [WordOrder::Big, WordOrder::Little] {
            let out = unpack(&p, &payload(&words, order), order).unwrap();
            let got: Vec<f32> = out
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            assert_eq!(got, [100.0, 100.5, 101.0, 2147.5, 103.5]);
        }
        // 120 + 5·12 = 180 bits = 6 words.
        let short = payload(&words[..5], WordOrder::Big);
        assert!(matches!(
            unpack(&p, &short, WordOrder::Big),
            Err(UnpackError::Truncated {
                datyp: 1,
                needed: 6,
                available: 5
            })
        ));
    }
}
