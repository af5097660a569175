//! The chunk grid of one AMR level, and which boxes each chunk draws from.
//!
//! Coordinates here are AMReX's (x first); the Zarr arrays are (z, y, x), so chunk keys are
//! stored reversed, in the order the filesystem asks for them.

use std::collections::BTreeMap;

use super::text::IBox;

/// Below this many cells the gcd grid is "too small": a chunk costs a FUSE request and a
/// Zarr client's per-chunk overhead whatever its size, so boxes from arbitrary BoxArrays
/// (gcd 1 or 2) would turn a level into millions of near-empty requests.
const MIN_CHUNK_CELLS: u64 = 64;
/// What the fallback grows the chunk to: gathered from several boxes, but few requests.
const FALLBACK_CHUNK_CELLS: u64 = 4096;
/// Above this (16 MiB of f64) one chunk would be a large allocation and a long cache miss for
/// a reader that wants a slice; big boxes are then served as several chunks each.
const MAX_CHUNK_CELLS: u64 = 1 << 21;

/// A level's domain and chunk shape, in AMReX order.
#[derive(Clone, Debug)]
pub struct LevelGrid {
    pub domain: IBox,
    pub chunk: Vec<u64>,
}

/// The most chunk-to-box entries one level may have (a few hundred MiB of index): more means
/// a corrupt or hostile header, not a plotfile.
const MAX_CHUNK_ENTRIES: u64 = 1 << 22;

/// For each chunk (Zarr order) that some box covers, the indices of those boxes.
pub type ChunkMap = BTreeMap<Vec<u64>, Vec<u32>>;

impl LevelGrid {
    /// The grid whose chunks tile every box exactly: per dimension, the gcd of all box
    /// corners relative to the domain's low corner (plotfile.md §5), within the bounds above.
    pub fn new<'a>(domain: &IBox, boxes: impl IntoIterator<Item = &'a IBox>) -> LevelGrid {
        let size = domain.size();
        let mut g = vec![0u64; size.len()];
        for b in boxes {
            for (d, g) in g.iter_mut().enumerate() {
                let lo = u64::try_from(b.lo[d] - domain.lo[d]).unwrap_or(1);
                let end = u64::try_from(b.hi[d] + 1 - domain.lo[d]).unwrap_or(1);
                *g = gcd(gcd(*g, lo), end);
            }
        }
        for (g, n) in g.iter_mut().zip(&size) {
            *g = if *g == 0 { *n } else { (*g).min(*n) }.max(1);
        }
        if cells(&g) < MIN_CHUNK_CELLS {
            while cells(&g) < FALLBACK_CHUNK_CELLS {
                let grow = (0..g.len()).filter(|d| g[*d] < size[*d]).min_by_key(|d| g[*d]);
                let Some(d) = grow else { break };
                g[d] = (g[d] * 2).min(size[d]);
            }
        }
        while cells(&g) > MAX_CHUNK_CELLS {
            let d = (0..g.len()).max_by_key(|d| g[*d]).unwrap_or(0);
            g[d] = g[d].div_ceil(2);
        }
        LevelGrid {
            domain: domain.clone(),
            chunk: g,
        }
    }

    /// Array shape in Zarr order.
    pub fn shape(&self) -> Vec<u64> {
        self.domain.size().into_iter().rev().collect()
    }

    /// Chunk shape in Zarr order.
    pub fn chunk_shape(&self) -> Vec<u64> {
        self.chunk.iter().rev().copied().collect()
    }

    pub fn chunk_cells(&self) -> u64 {
        cells(&self.chunk)
    }

    /// Low corner (AMReX indices) of the chunk at Zarr coordinates `coords`.
    pub fn chunk_lo(&self, coords: &[u64]) -> Vec<i64> {
        coords
            .iter()
            .rev()
            .zip(&self.chunk)
            .zip(&self.domain.lo)
            .map(|((c, g), lo)| lo + (c * g) as i64)
            .collect()
    }

    /// Which chunks each box touches.
    pub fn chunk_map(&self, boxes: &[IBox]) -> Result<ChunkMap, String> {
        let mut map = ChunkMap::new();
        let mut entries = 0u64;
        for (i, b) in boxes.iter().enumerate() {
            let ranges: Vec<(u64, u64)> = (0..b.dim())
                .map(|d| {
                    let first = (b.lo[d] - self.domain.lo[d]).max(0) as u64 / self.chunk[d];
                    let last = (b.hi[d] - self.domain.lo[d]).max(0) as u64 / self.chunk[d];
                    (first, last)
                })
                .collect();
            let count = ranges
                .iter()
                .fold(1u64, |n, (first, last)| n.saturating_mul(last - first + 1));
            entries = entries.saturating_add(count);
            if entries > MAX_CHUNK_ENTRIES {
                return Err(format!("boxes touch more than {MAX_CHUNK_ENTRIES} chunks"));
            }
            let mut at: Vec<u64> = ranges.iter().map(|r| r.0).collect();
            // Odometer over the box's chunk range, x fastest.
            'chunks: loop {
                map.entry(at.iter().rev().copied().collect())
                    .or_default()
                    .push(i as u32);
                for d in 0..at.len() {
                    if at[d] < ranges[d].1 {
                        at[d] += 1;
                        continue 'chunks;
                    }
                    at[d] = ranges[d].0;
                }
                break;
            }
        }
        Ok(map)
    }

    /// Whether every chunk of the grid appears in `map`.
    pub fn covers_all(&self, map: &ChunkMap) -> bool {
        let total: u64 = self
            .domain
            .size()
            .iter()
            .zip(&self.chunk)
            .fold(1u64, |total, (n, g)| total.saturating_mul(n.div_ceil(*g)));
        map.len() as u64 == total
    }
}

fn cells(g: &[u64]) -> u64 {
    g.iter().product()
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ibox(lo: &[i64], hi: &[i64]) -> IBox {
        IBox {
            lo: lo.to_vec(),
            hi: hi.to_vec(),
            typ: vec![0; lo.len()],
        }
    }

    #[test]
    fn gcd_grid_of_equal_boxes_is_the_box() {
        let domain = ibox(&[-8, 0, 0], &[7, 15, 15]);
        let boxes: Vec<IBox> = (0..8)
            .map(|i| {
                let lo = [-8 + 8 * (i & 1), 8 * ((i >> 1) & 1), 8 * (i >> 2)];
                ibox(&lo, &[lo[0] + 7, lo[1] + 7, lo[2] + 7])
            })
            .collect();
        let grid = LevelGrid::new(&domain, &boxes);
        assert_eq!(grid.chunk, vec![8, 8, 8]);
        let map = grid.chunk_map(&boxes).unwrap();
        assert!(grid.covers_all(&map));
        // Box 1 is x-high, y-low, z-low: Zarr key (z, y, x) = (0, 0, 1).
        assert_eq!(map[&vec![0, 0, 1]], vec![1]);
        assert_eq!(grid.chunk_lo(&[0, 0, 1]), vec![0, 0, 0]);
    }

    #[test]
    fn unequal_boxes_and_sparse_levels() {
        let domain = ibox(&[0, 0], &[63, 63]);
        let boxes = vec![ibox(&[16, 16], &[47, 31]), ibox(&[16, 32], &[31, 47])];
        let grid = LevelGrid::new(&domain, &boxes);
        assert_eq!(grid.chunk, vec![16, 16]);
        let map = grid.chunk_map(&boxes).unwrap();
        assert_eq!(map.len(), 3);
        assert!(!grid.covers_all(&map));
        assert_eq!(map[&vec![1, 2]], vec![0]);
        assert_eq!(map[&vec![2, 1]], vec![1]);
    }

    #[test]
    fn fallback_for_tiny_gcd_and_cap_for_huge_boxes() {
        let domain = ibox(&[0, 0], &[99, 99]);
        let boxes = vec![
            ibox(&[0, 0], &[2, 99]),
            ibox(&[3, 0], &[99, 2]),
            ibox(&[3, 3], &[99, 99]),
        ];
        let grid = LevelGrid::new(&domain, &boxes);
        assert_eq!(grid.chunk, vec![64, 64]);
        let map = grid.chunk_map(&boxes).unwrap();
        assert!(grid.covers_all(&map));
        assert!(
            map.values().any(|b| b.len() == 2),
            "a chunk gathers from both boxes"
        );

        let domain = ibox(&[0, 0, 0], &[255, 255, 255]);
        let grid = LevelGrid::new(&domain, std::slice::from_ref(&domain));
        assert!(grid.chunk_cells() <= MAX_CHUNK_CELLS);
        assert_eq!(grid.chunk, vec![128, 128, 128]);
    }
}
