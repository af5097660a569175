//! The PARALLELOGRAM (Lorenzo) predictor of librmn's armn_compress streams (fst.md §2.10.1),
//! shared by the 16-bit stream (129, 130, 134) and by the exponents and mantissas of
//! armn_compress32 (133). On an ni × nj grid (i fastest), each value is predicted from its
//! west, south and south-west neighbours: `u[i,j] = r[i,j] + u[i−1,j] + u[i,j−1] − u[i−1,j−1]`.
//!
//! Stream: a 3-bit `cont`; the first row (ni values) then the first column (nj − 1 values) as
//! `nbits`-bit tokens; then, over step × step tiles of the rest (i, j ≥ 1, row-major tiles,
//! row-major inside a tile), a `cont`-bit `need` per tile followed by its residuals as
//! (need+1)-bit two's-complement numbers (none when need = 0). The 16-bit stream escapes
//! need 15 and 16 to 17-bit residuals.
//!
//! Values are computed modulo 2^32; a caller wanting 16 or 8 bits masks the result, which is
//! the same as librmn's arithmetic in the narrower type since 2^k divides 2^32.

use super::bits::{BitReader, Words};
use super::error::Fault;

/// An opened stream, its size checked against the words it lies in.
pub(crate) struct Parallelogram<'a> {
    r: BitReader<'a>,
    ni: usize,
    nj: usize,
    nbits: u32,
    step: usize,
    cont: u32,
    escape17: bool,
}

impl<'a> Parallelogram<'a> {
    /// Opens the stream at the start of `words` for an `ni` × `nj` grid (both ≥ 2) of
    /// `nbits`-bit values. `escape17` selects the 16-bit stream's rule for need 15 and 16.
    ///
    /// Fails unless `words` holds at least the bits this grid needs even when every tile's
    /// residuals are zero, so that the grid may be allocated.
    pub(crate) fn open(
        words: Words<'a>,
        ni: usize,
        nj: usize,
        nbits: u32,
        step: usize,
        escape17: bool,
    ) -> Result<Self, Fault> {
        if nbits > 32 {
            return Err(Fault::Corrupt(format!(
                "parallelogram stream of {nbits}-bit values (at most 32)"
            )));
        }
        if step == 0 {
            return Err(Fault::Corrupt("parallelogram stream with tiles of size 0".into()));
        }
        let mut r = BitReader::new(words, 0);
        let cont = r.read(3);
        r.check()?;
        if cont == 0 {
            // librmn writes 4 or 5; 0 would let a few bits claim any grid size.
            return Err(Fault::Corrupt(
                "parallelogram stream with 0-bit tile headers".into(),
            ));
        }
        let tiles =
            (ni.saturating_sub(1)).div_ceil(step) as u128 * (nj.saturating_sub(1)).div_ceil(step) as u128;
        let edge = (ni as u128 + nj as u128).saturating_sub(1);
        words.require_bits(3 + edge * u128::from(nbits) + tiles * u128::from(cont))?;
        Ok(Parallelogram {
            r,
            ni,
            nj,
            nbits,
            step,
            cont,
            escape17,
        })
    }

    /// Decodes the grid (row-major, i fastest), modulo 2^32.
    pub(crate) fn decode(mut self) -> Result<Vec<u32>, Fault> {
        let (ni, nj, step) = (self.ni, self.nj, self.step);
        let mut u = vec![0u32; ni * nj];
        for v in u.iter_mut().take(ni) {
            *v = self.r.read(self.nbits);
        }
        for row in u.chunks_mut(ni).skip(1) {
            if let Some(v) = row.first_mut() {
                *v = self.r.read(self.nbits);
            }
        }
        // Tiles are read in order and every value's three neighbours come before it in that
        // order, so each value is rebuilt as soon as its residual is read.
        for j0 in (1..nj).step_by(step) {
            let rows = step.min(nj - j0);
            for i0 in (1..ni).step_by(step) {
                let cols = step.min(ni - i0);
                let need = self.r.read(self.cont);
                let width = match need {
                    0 => 0,
                    15 | 16 if self.escape17 => 17,
                    need => need + 1,
                };
                if width > 32 {
                    return Err(Fault::Corrupt(format!(
                        "parallelogram tile of {width}-bit residuals"
                    )));
                }
                for j in j0..j0 + rows {
                    for i in i0..i0 + cols {
                        let residual = if width == 0 {
                            0
                        } else {
                            self.r.read_signed(width) as u32
                        };
                        let k = j * ni + i;
                        u[k] = residual
                            .wrapping_add(u[k - 1])
                            .wrapping_add(u[k - ni])
                            .wrapping_sub(u[k - ni - 1]);
                    }
                }
            }
        }
        self.r.check()?;
        Ok(u)
    }
}

/// Test-only encoder for hand-built streams.
#[cfg(test)]
pub(crate) mod testing {
    use super::super::bits::testing::BitWriter;

    /// How a test stream is laid out.
    pub(crate) struct Layout {
        pub(crate) ni: usize,
        pub(crate) nbits: u32,
        pub(crate) step: usize,
        pub(crate) cont: u32,
        /// The 16-bit stream's rule: need 15 and 16 mean 17-bit residuals.
        pub(crate) escape17: bool,
    }

    /// Writes `grid` (ni × nj, row-major) as a parallelogram stream, with tile header
    /// `need_for(tile index)` (the residuals must fit).
    pub(crate) fn encode(w: &mut BitWriter, layout: &Layout, grid: &[u32], need_for: impl Fn(usize) -> u32) {
        let Layout {
            ni,
            nbits,
            step,
            cont,
            escape17,
        } = *layout;
        let nj = grid.len() / ni;
        w.put(cont, 3);
        for v in &grid[..ni] {
            w.put(*v, nbits);
        }
        for j in 1..nj {
            w.put(grid[j * ni], nbits);
        }
        let mut tile = 0;
        for j0 in (1..nj).step_by(step) {
            for i0 in (1..ni).step_by(step) {
                let need = need_for(tile);
                tile += 1;
                w.put(need, cont);
                let width = match need {
                    0 => continue,
                    15 | 16 if escape17 => 17,
                    need => need + 1,
                };
                for j in j0..(j0 + step).min(nj) {
                    for i in i0..(i0 + step).min(ni) {
                        let k = j * ni + i;
                        let predicted = grid[k - 1]
                            .wrapping_add(grid[k - ni])
                            .wrapping_sub(grid[k - ni - 1]);
                        w.put(grid[k].wrapping_sub(predicted), width);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::WordOrder;
    use super::super::bits::testing::{BitWriter, payload};
    use super::*;

    #[test]
    fn rebuilds_a_grid_from_edges_and_residuals() {
        // 5 × 4 grid, step 3: tiles (i 1..4, j 1..4) and (i 4, j 1..4).
        let (ni, nj) = (5, 4);
        let grid: Vec<u32> = (0..ni * nj).map(|k| ((k * 37) % 23) as u32).collect();
        let mut w = BitWriter::new();
        testing::encode(
            &mut w,
            &testing::Layout {
                ni,
                nbits: 5,
                step: 3,
                cont: 4,
                escape17: false,
            },
            &grid,
            |_| 6,
        );
        let bytes = payload(&w.finish(), WordOrder::Big);
        let words = Words::new(&bytes, WordOrder::Big);
        let got = Parallelogram::open(words, ni, nj, 5, 3, false)
            .unwrap()
            .decode()
            .unwrap();
        assert_eq!(got, grid);
    }

    #[test]
    fn zero_tiles_are_pure_prediction_and_17_bit_escapes() {
        // A plane: zero residuals everywhere predict it exactly.
        let (ni, nj) = (4, 4);
        let plane: Vec<u32> = (0..ni * nj)
            .map(|k| (3 * (k % ni) + 5 * (k / ni)) as u32)
            .collect();
        let mut w = BitWriter::new();
        testing::encode(
            &mut w,
            &testing::Layout {
                ni,
                nbits: 8,
                step: 3,
                cont: 4,
                escape17: true,
            },
            &plane,
            |_| 0,
        );
        let bytes = payload(&w.finish(), WordOrder::Little);
        let words = Words::new(&bytes, WordOrder::Little);
        assert_eq!(
            Parallelogram::open(words, ni, nj, 8, 3, true)
                .unwrap()
                .decode()
                .unwrap(),
            plane
        );
        // Jumps of ±65535 need the 17-bit escape (need 15).
        let mut grid = vec![0u32; ni * nj];
        grid[5] = 0xFFFF;
        grid[10] = 0xFFFF;
        let mut w = BitWriter::new();
        testing::encode(
            &mut w,
            &testing::Layout {
                ni,
                nbits: 16,
                step: 3,
                cont: 4,
                escape17: true,
            },
            &grid,
            |t| if t == 0 { 15 } else { 0 },
        );
        let bytes = payload(&w.finish(), WordOrder::Big);
        let words = Words::new(&bytes, WordOrder::Big);
        let got = Parallelogram::open(words, ni, nj, 16, 3, true)
            .unwrap()
            .decode()
            .unwrap();
        assert_eq!(got.iter().map(|v| v & 0xFFFF).collect::<Vec<_>>(), grid);
    }

    #[test]
    fn impossible_streams_are_refused() {
        let bytes = payload(&[0, 0, 0], WordOrder::Big);
        let words = Words::new(&bytes, WordOrder::Big);
        // cont = 0.
        assert!(matches!(
            Parallelogram::open(words, 4, 4, 8, 3, true),
            Err(Fault::Corrupt(_))
        ));
        // A 1000 × 1000 grid cannot fit in 3 words.
        let bytes = payload(&[0x8000_0000, 0, 0], WordOrder::Big);
        let words = Words::new(&bytes, WordOrder::Big);
        assert!(matches!(
            Parallelogram::open(words, 1000, 1000, 8, 3, true),
            Err(Fault::Truncated { available: 3, .. })
        ));
        // A residual wider than 32 bits (cont 7 → need 127).
        let mut w = BitWriter::new();
        w.put(7, 3).put(0, 8 * 3).put(127, 7);
        let bytes = payload(&w.finish(), WordOrder::Big);
        let words = Words::new(&bytes, WordOrder::Big);
        let opened = Parallelogram::open(words, 2, 2, 8, 3, false).unwrap();
        assert!(matches!(opened.decode(), Err(Fault::Corrupt(_))));
        // A stream cut short inside the residuals.
        let mut w = BitWriter::new();
        w.put(4, 3).put(0, 8 * 3).put(9, 4);
        let bytes = payload(&w.finish(), WordOrder::Big);
        let words = Words::new(&bytes, WordOrder::Big);
        let opened = Parallelogram::open(words, 2, 2, 8, 3, false).unwrap();
        assert!(matches!(opened.decode(), Err(Fault::Truncated { .. })));
    }
}
