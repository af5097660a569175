//! Which chunk files an array has, and the names they go by.
//!
//! Chunk files use Zarr v3's `default` chunk key encoding with `/`: the chunk at (1, 0, 2) is
//! `c/1/0/2`, a 0-d array's only chunk is `c`. Directory levels are one coordinate each.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::ArraySpec;

/// Grid coordinates of one chunk.
pub type ChunkCoords = Vec<u64>;

/// The set of chunks that exist; every other chunk is absent and reads as the fill value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ChunkIndex {
    /// Every chunk of the grid exists.
    #[default]
    All,
    /// Only these chunks exist (e.g. an AMR level that boxes cover only in part).
    Listed(Arc<BTreeSet<ChunkCoords>>),
}

impl ChunkIndex {
    pub fn contains(&self, coords: &[u64]) -> bool {
        match self {
            ChunkIndex::All => true,
            ChunkIndex::Listed(set) => set.contains(coords),
        }
    }

    /// How many chunks exist in a grid of `grid` chunks per dimension.
    pub fn count(&self, grid: &[u64]) -> u64 {
        match self {
            ChunkIndex::All => grid.iter().fold(1u64, |n, &g| n.saturating_mul(g)),
            ChunkIndex::Listed(set) => set.len() as u64,
        }
    }
}

/// Parses one chunk-key component: a canonical decimal (no sign, no leading zeros).
pub fn parse_coord(name: &str) -> Option<u64> {
    let canonical = !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_digit())
        && (name == "0" || !name.starts_with('0'));
    if canonical { name.parse().ok() } else { None }
}

/// The coordinate values present at the next level below `prefix` (a chunk-key directory),
/// in increasing order.
pub fn next_coords(spec: &ArraySpec, prefix: &[u64]) -> Vec<u64> {
    let depth = prefix.len();
    let grid = spec.chunk_grid();
    if depth >= grid.len() || prefix.iter().zip(&grid).any(|(c, n)| c >= n) {
        return Vec::new();
    }
    match &spec.chunks {
        ChunkIndex::All => {
            if grid.contains(&0) {
                Vec::new()
            } else {
                (0..grid[depth]).collect()
            }
        }
        ChunkIndex::Listed(set) => {
            let mut out: Vec<u64> = set
                .range(prefix.to_vec()..)
                .take_while(|c| c.starts_with(prefix))
                .map(|c| c[depth])
                .collect();
            out.dedup();
            out
        }
    }
}

/// Whether `coords` (a full chunk position or a chunk-key directory prefix) leads to at
/// least one existing chunk.
pub fn has_prefix(spec: &ArraySpec, coords: &[u64]) -> bool {
    let grid = spec.chunk_grid();
    if coords.len() > grid.len() || coords.iter().zip(&grid).any(|(c, n)| c >= n) || grid.contains(&0) {
        return false;
    }
    match &spec.chunks {
        ChunkIndex::All => true,
        ChunkIndex::Listed(set) => set
            .range(coords.to_vec()..)
            .next()
            .is_some_and(|c| c.starts_with(coords)),
    }
}

/// Whether any chunk exists at all (decides whether the array directory holds `c`).
pub fn any_chunk(spec: &ArraySpec) -> bool {
    if spec.shape.is_empty() {
        return spec.chunks.contains(&[]);
    }
    !next_coords(spec, &[]).is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{ArrayId, DataType};

    fn spec(shape: &[u64], chunks: &[u64], index: ChunkIndex) -> ArraySpec {
        let mut spec = ArraySpec::new(ArrayId(0), shape.to_vec(), chunks.to_vec(), DataType::Float32);
        spec.chunks = index;
        spec
    }

    #[test]
    fn coords_must_be_canonical_decimals() {
        assert_eq!(parse_coord("0"), Some(0));
        assert_eq!(parse_coord("17"), Some(17));
        for bad in ["", "01", "-1", "+1", "1a", "zarr.json"] {
            assert_eq!(parse_coord(bad), None, "{bad}");
        }
    }

    #[test]
    fn dense_grid_lists_every_coordinate_including_edge_chunks() {
        let s = spec(&[10, 7], &[4, 7], ChunkIndex::All);
        assert_eq!(next_coords(&s, &[]), vec![0, 1, 2]);
        assert_eq!(next_coords(&s, &[2]), vec![0]);
        assert!(next_coords(&s, &[3]).is_empty(), "outside the grid");
        assert!(next_coords(&s, &[0, 0]).is_empty(), "below the last level");
    }

    #[test]
    fn listed_chunks_only_show_what_exists() {
        let set: BTreeSet<ChunkCoords> = [vec![0, 1], vec![0, 3], vec![2, 0]].into_iter().collect();
        let s = spec(&[12, 16], &[4, 4], ChunkIndex::Listed(Arc::new(set)));
        assert_eq!(next_coords(&s, &[]), vec![0, 2]);
        assert_eq!(next_coords(&s, &[0]), vec![1, 3]);
        assert!(next_coords(&s, &[1]).is_empty());
        assert!(s.has_chunk(&[2, 0]));
        assert!(has_prefix(&s, &[0]) && has_prefix(&s, &[2, 0]));
        assert!(!has_prefix(&s, &[1]) && !has_prefix(&s, &[0, 2]) && !has_prefix(&s, &[5]));
        assert!(!s.has_chunk(&[1, 0]));
        assert!(any_chunk(&s));
    }

    #[test]
    fn empty_arrays_have_no_chunks_and_scalars_have_one() {
        assert!(!any_chunk(&spec(&[0, 5], &[1, 5], ChunkIndex::All)));
        let scalar = spec(&[], &[], ChunkIndex::All);
        assert!(any_chunk(&scalar));
        assert!(scalar.has_chunk(&[]));
        assert_eq!(scalar.chunk_bytes(), 4);
    }
}
