//! librmn's armn_compress 16-bit stream (fst.md §2.10.1), the "turbo" stage of datyp 129, 130
//! and 134: an ni × nj grid of 16-bit tokens. Word 0 is the `_fstzip` header (bit fields from
//! the least significant: predictor:4, degree:3, step:3, nbits:5, levels:3, version:6); the bit
//! stream starts at word 1.
//! - predictor 3, MINIMUM (small grids, nbits ≤ 4): step × step tiles, each a 4-bit `need`,
//!   then an nbits-bit constant (need 0), or the tile as raw 16-bit tokens (need 15, 16), or an
//!   nbits-bit tile minimum and `need`-bit offsets from it;
//! - predictor 4, PARALLELOGRAM (the usual case): see `parallelogram`;
//! - predictor 1, SAMPLE (bicubic, not written since 2006): not supported.
//!
//! librmn swaps 16-bit halves in memory on little-endian machines; that is an artefact of its
//! buffers, not of the file: tokens are in stream order.

use super::bits::{BitReader, Words};
use super::error::Fault;
use super::parallelogram::Parallelogram;

const SAMPLE: u32 = 1;
const MINIMUM: u32 = 3;
const PARALLELOGRAM: u32 = 4;
/// The predictor armn_compress32 writes (datyp 133).
pub(crate) const PARALLELOGRAM32: u32 = 5;

/// Tile header width of the MINIMUM predictor.
const MINIMUM_NEED_BITS: u32 = 4;
/// Width of raw tokens in a MINIMUM tile whose range needs 15 or 16 bits.
const RAW_TOKEN_BITS: u32 = 16;

/// The `_fstzip` header word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ZipHeader {
    pub(crate) predictor: u32,
    pub(crate) step: u32,
    pub(crate) nbits: u32,
}

impl ZipHeader {
    pub(crate) fn parse(word: u32) -> Self {
        ZipHeader {
            predictor: word & 0xF,
            step: (word >> 7) & 0x7,
            nbits: (word >> 10) & 0x1F,
        }
    }
}

/// Decompresses the stream at the start of `z` into the ni × nj tokens (row-major, i fastest).
pub(crate) fn decompress(z: Words, ni: usize, nj: usize) -> Result<Vec<u32>, Fault> {
    let [word] = z.array::<1>(0)?;
    let header = ZipHeader::parse(word);
    if header.nbits == 0 || header.nbits > 16 {
        return Err(Fault::Corrupt(format!(
            "armn_compress header says {}-bit values (1 to 16 expected)",
            header.nbits
        )));
    }
    if header.step == 0 {
        return Err(Fault::Corrupt("armn_compress header has tiles of size 0".into()));
    }
    let stream = z.skip(1);
    let step = header.step as usize;
    let mut tokens = match header.predictor {
        MINIMUM => minimum(stream, ni, nj, header.nbits, step)?,
        PARALLELOGRAM => Parallelogram::open(stream, ni, nj, header.nbits, step, true)?.decode()?,
        SAMPLE => {
            return Err(Fault::Corrupt(
                "armn_compress SAMPLE predictor (not written since 2006) is not supported".into(),
            ));
        }
        other => return Err(Fault::Corrupt(format!("unknown armn_compress predictor {other}"))),
    };
    for t in &mut tokens {
        *t &= 0xFFFF;
    }
    Ok(tokens)
}

/// The MINIMUM predictor (values modulo 2^16 once masked).
fn minimum(stream: Words, ni: usize, nj: usize, nbits: u32, step: usize) -> Result<Vec<u32>, Fault> {
    // Every tile takes at least its header and one nbits-bit value.
    let tiles = ni.div_ceil(step) as u128 * nj.div_ceil(step) as u128;
    stream.require_bits(tiles * u128::from(MINIMUM_NEED_BITS + nbits))?;
    let mut out = vec![0u32; ni * nj];
    let mut r = BitReader::new(stream, 0);
    for j0 in (0..nj).step_by(step) {
        let rows = step.min(nj - j0);
        for i0 in (0..ni).step_by(step) {
            let cols = step.min(ni - i0);
            let tile = out.chunks_mut(ni).skip(j0).take(rows);
            let cells = tile.flat_map(|row| row.iter_mut().skip(i0).take(cols));
            match r.read(MINIMUM_NEED_BITS) {
                0 => {
                    let value = r.read(nbits);
                    cells.for_each(|v| *v = value);
                }
                15 | 16 => cells.for_each(|v| *v = r.read(RAW_TOKEN_BITS)),
                need => {
                    let min = r.read(nbits);
                    cells.for_each(|v| *v = r.read(need).wrapping_add(min));
                }
            }
        }
    }
    r.check()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::bits::testing::{BitWriter, payload};
    use super::super::parallelogram;
    use super::super::{Packing, UnpackError, WordOrder, unpack};
    use super::*;

    fn zip(predictor: u32, step: u32, nbits: u32) -> u32 {
        predictor | 1 << 4 | step << 7 | nbits << 10 | 1 << 15
    }

    /// A 7 × 6 grid in MINIMUM tiles of 5: a constant tile, a tile of small offsets, a raw
    /// (need 15) tile and a 2 × 1 corner; the tiles are cut at the grid's edges.
    fn minimum_case() -> (Vec<u32>, Vec<u32>) {
        let (ni, nj, step, nbits) = (7usize, 6usize, 5usize, 12u32);
        let mut grid = vec![0u32; ni * nj];
        for j in 0..nj {
            for i in 0..ni {
                grid[j * ni + i] = match (i < 5, j < 5) {
                    (true, true) => 1000,                       // constant
                    (false, true) => 4000 + (i * 3 + j) as u32, // offsets ≤ 16: need 5
                    (true, false) => 0xFFFF - (i * 977) as u32, // full 16-bit range: raw
                    (false, false) => 7 + i as u32,             // small offsets
                };
            }
        }
        let mut w = BitWriter::new();
        w.word(zip(MINIMUM, step as u32, nbits));
        for j0 in (0..nj).step_by(step) {
            for i0 in (0..ni).step_by(step) {
                let cells: Vec<u32> = (j0..(j0 + step).min(nj))
                    .flat_map(|j| (i0..(i0 + step).min(ni)).map(move |i| (i, j)))
                    .map(|(i, j)| grid[j * ni + i])
                    .collect();
                let min = *cells.iter().min().unwrap();
                let range = cells.iter().max().unwrap() - min;
                match (i0, j0) {
                    (0, 0) => {
                        assert_eq!(range, 0);
                        w.put(0, 4).put(min, nbits);
                    }
                    (0, 5) => {
                        w.put(15, 4);
                        cells.iter().for_each(|v| {
                            w.put(*v, 16);
                        });
                    }
                    _ => {
                        w.put(5, 4).put(min, nbits);
                        cells.iter().for_each(|v| {
                            w.put(v - min, 5);
                        });
                    }
                }
            }
        }
        (grid, w.finish())
    }

    #[test]
    fn minimum_tiles_decode_constant_offset_and_raw_tiles() {
        let (grid, stream) = minimum_case();
        let bytes = payload(&stream, WordOrder::Big);
        let got = decompress(Words::new(&bytes, WordOrder::Big), 7, 6).unwrap();
        assert_eq!(got, grid);
    }

    #[test]
    fn datyp_130_from_a_hand_built_minimum_stream() {
        let (grid, stream) = minimum_case();
        let mut words = vec![stream.len() as u32 + 1];
        words.extend(&stream);
        words.push(0xDEAD_BEEF); // slack after the stated length
        let p = Packing {
            datyp: 130,
            nbits: 12,
            dasiz: 32,
            ni: 7,
            nj: 6,
            nk: 1,
        };
        for order in [WordOrder::Big, WordOrder::Little] {
            let out = unpack(&p, &payload(&words, order), order).unwrap();
            let got: Vec<u32> = out
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            assert_eq!(got, grid);
        }
        // A stated length beyond the payload.
        let mut long = words.clone();
        long[0] = 1000;
        assert!(matches!(
            unpack(&p, &payload(&long, WordOrder::Big), WordOrder::Big),
            Err(UnpackError::Truncated {
                datyp: 130,
                needed: 1000,
                ..
            })
        ));
        // A stated length that cuts the stream.
        let mut cut = words.clone();
        cut[0] = 4;
        assert!(matches!(
            unpack(&p, &payload(&cut, WordOrder::Big), WordOrder::Big),
            Err(UnpackError::Truncated {
                datyp: 130,
                available: 4,
                ..
            })
        ));
    }

    #[test]
    fn datyp_129_below_16_bits_uses_the_16_bit_tokens() {
        // Compact-float header style 2: minimum 0 (zero mantissa word), scale 2^0, 12 bits.
        // Tokens 0..=11 must come back as 0.0..=11.0 (librmn would re-read them as 12-bit
        // tokens and scramble the field).
        let (ni, nj) = (4usize, 3usize);
        let grid: Vec<u32> = (0..12).collect();
        let mut w = BitWriter::new();
        w.word(zip(PARALLELOGRAM, 3, 12));
        parallelogram::testing::encode(
            &mut w,
            &parallelogram::testing::Layout {
                ni,
                nbits: 12,
                step: 3,
                cont: 4,
                escape17: true,
            },
            &grid,
            |_| 4,
        );
        let stream = w.finish();
        let header = [0xFFF0_000C, 4096 << 16, 0, 12 << 8];
        let mut words = vec![(1 + 4 + stream.len()) as u32];
        words.extend(header);
        words.extend(&stream);
        let p = Packing {
            datyp: 129,
            nbits: 12,
            dasiz: 32,
            ni: ni as u32,
            nj: nj as u32,
            nk: 1,
        };
        let out = unpack(&p, &payload(&words, WordOrder::Little), WordOrder::Little).unwrap();
        let got: Vec<f32> = out
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(got, (0..12).map(|v| v as f32).collect::<Vec<_>>());
    }

    #[test]
    fn parallelogram_tiles_escape_need_15_to_17_bits() {
        // 0 ↔ 0xFFFF jumps leave residuals of ±65535 (or 131070, which wraps to the same
        // 16-bit value): 17-bit residuals, written with need 15.
        let (ni, nj) = (5usize, 5usize);
        let grid: Vec<u32> = (0..ni * nj)
            .map(|k| if (k / ni + k % ni) % 2 == 1 { 0xFFFF } else { 0 })
            .collect();
        let mut w = BitWriter::new();
        w.word(zip(PARALLELOGRAM, 3, 16));
        parallelogram::testing::encode(
            &mut w,
            &parallelogram::testing::Layout {
                ni,
                nbits: 16,
                step: 3,
                cont: 4,
                escape17: true,
            },
            &grid,
            |_| 15,
        );
        let bytes = payload(&w.finish(), WordOrder::Little);
        let got = decompress(Words::new(&bytes, WordOrder::Little), ni, nj).unwrap();
        assert_eq!(got, grid);
    }

    #[test]
    fn inconsistent_headers_are_refused() {
        let bytes = |words: &[u32]| payload(words, WordOrder::Big);
        let refused = |words: &[u32]| {
            let b = bytes(words);
            decompress(Words::new(&b, WordOrder::Big), 4, 4)
        };
        let body = [0xFFFF_FFFF; 8];
        for header in [
            zip(SAMPLE, 3, 12),
            zip(7, 3, 12),
            zip(PARALLELOGRAM, 0, 12),
            zip(PARALLELOGRAM, 3, 17),
            zip(MINIMUM, 5, 0),
        ] {
            let mut words = vec![header];
            words.extend(body);
            assert!(matches!(refused(&words), Err(Fault::Corrupt(_))), "{header:08x}");
        }
        assert!(matches!(
            refused(&[]),
            Err(Fault::Truncated {
                needed: 1,
                available: 0
            })
        ));
        // MINIMUM: 16 tiles of 1 cannot fit in one word.
        assert!(matches!(
            refused(&[zip(MINIMUM, 1, 4), 0]),
            Err(Fault::Truncated {
                needed: 5,
                available: 2
            })
        ));
        // Turbo records must be 2-D grids at least 2 wide.
        let p = Packing {
            datyp: 130,
            nbits: 16,
            dasiz: 32,
            ni: 16,
            nj: 16,
            nk: 2,
        };
        assert!(matches!(
            unpack(&p, &bytes(&body), WordOrder::Big),
            Err(UnpackError::Unsupported { .. })
        ));
        assert!(p.element().is_err());
        let p = Packing { nk: 1, nj: 1, ..p };
        assert!(matches!(
            unpack(&p, &bytes(&body), WordOrder::Big),
            Err(UnpackError::Unsupported { .. })
        ));
        assert!(Packing { nj: 2, ..p }.element().is_ok());
    }
}
