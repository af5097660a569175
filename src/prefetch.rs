//! Read-ahead: which chunks of an array to fetch before anyone asks for them.
//!
//! Each array keeps a few *streams*, one per reader pattern in progress. A read of the chunk
//! that comes next in a stream's order — C order over the chunk grid (skipping chunks that
//! do not exist), or a step along one dimension (a sweep down a column of chunks) — continues
//! that stream. From its second continuation on (three chunks in order: two could be chance,
//! with several streams to match), each one doubles the stream's window, 1, 2, 4 … chunks up
//! to a byte cap, and the chunks in the window are fetched ahead. A read that continues no
//! stream starts a new one with no window, so a random pattern reads nothing ahead, and
//! concurrent sequential readers of one array each keep a stream of their own instead of
//! breaking each other's. Streams nobody continues are replaced, least recently used first.
//!
//! Readers rarely ask strictly in order: zarr-python reads up to ten chunks of a call at once,
//! and parallel readers share out boxes, so requests arrive shuffled within a few chunks. Once
//! a stream's order is known, a read up to `SLACK` chunks past its last one continues it, and
//! a straggler behind it (up to `SLACK` continuations back) is absorbed, neither starting a
//! stream of its own nor pushing out a real one.
//!
//! This module only decides; the filesystem claims and fetches the chunks through the cache,
//! which drops any already cached or in flight.

use std::collections::VecDeque;
use std::num::NonZeroUsize;

use lru::LruCache;
use parking_lot::Mutex;

use crate::tree::chunks::ChunkIndex;
use crate::tree::{ArrayId, ArraySpec};

/// Streams kept per array: one per concurrent sequential reader.
const STREAMS: usize = 16;
/// Arrays whose streams are remembered.
const ARRAYS: usize = 4096;
/// The longest window, in chunks, whatever their size.
const MAX_WINDOW: u64 = 64;
/// How far ahead of a stream's last chunk a read may land, and still continue it: at most
/// this many chunks, and a 32nd of the array's, so that on small arrays random reads do not
/// look like a scan.
const SLACK: usize = 16;
/// A stream not continued within this many reads of its array can no longer be: a reader
/// keeps up with its own stream, and old streams would make random reads look sequential.
const STALE: u64 = 2 * STREAMS as u64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Order {
    /// The next chunk in C order (last dimension fastest).
    C,
    /// The next chunk along one dimension.
    Along(usize),
}

#[derive(Debug)]
struct Stream {
    last: Vec<u64>,
    /// Where the stream was up to `SLACK` continuations ago: reads from there up to `last`
    /// are stragglers.
    trail: VecDeque<Vec<u64>>,
    order: Option<Order>,
    /// Continuations so far.
    run: u64,
    window: u64,
    used: u64,
}

/// An array's streams, and a count of its reads that dates them.
#[derive(Default)]
struct Streams {
    reads: u64,
    streams: Vec<Stream>,
}

pub struct Prefetcher {
    arrays: Mutex<LruCache<(u64, ArrayId), Streams>>,
    window_bytes: u64,
}

impl Prefetcher {
    /// A prefetcher whose windows hold at most `window_bytes` of chunks (at least one chunk).
    pub fn new(window_bytes: u64) -> Self {
        Prefetcher {
            arrays: Mutex::new(LruCache::new(NonZeroUsize::new(ARRAYS).expect("nonzero"))),
            window_bytes,
        }
    }

    /// Records a read of chunk `coords` of `spec` in dataset `dataset`; returns the chunks to
    /// fetch ahead of it, nearest first.
    pub fn observe(&self, dataset: u64, spec: &ArraySpec, coords: &[u64]) -> Vec<Vec<u64>> {
        let grid = spec.chunk_grid();
        let max_window = (self.window_bytes / spec.chunk_bytes().max(1)).clamp(1, MAX_WINDOW);
        let mut arrays = self.arrays.lock();
        let Streams { reads, streams } = arrays.get_or_insert_mut((dataset, spec.id), Streams::default);
        *reads += 1;
        let now = *reads;
        let live = |s: &Stream| now - s.used <= STALE;
        let slack = (spec.chunks.count(&grid) / 32).clamp(1, SLACK as u64) as usize;
        if let Some(stream) = streams
            .iter_mut()
            .find(|s| s.last == coords || (live(s) && s.behind(coords)))
        {
            stream.used = now;
            return Vec::new(); // another piece of a chunk just read, or a straggler
        }
        let continued = streams.iter_mut().filter(|s| live(s)).find_map(|s| {
            let order = match s.order {
                Some(order) => {
                    within_slack(&grid, &spec.chunks, &s.last, coords, order, slack).then_some(order)
                }
                None => detect(&grid, &spec.chunks, &s.last, coords),
            }?;
            Some((s, order))
        });
        let Some((stream, order)) = continued else {
            let fresh = Stream {
                last: coords.to_vec(),
                trail: VecDeque::new(),
                order: None,
                run: 0,
                window: 0,
                used: now,
            };
            if streams.len() < STREAMS {
                streams.push(fresh);
            } else if let Some(oldest) = streams.iter_mut().min_by_key(|s| s.used) {
                *oldest = fresh;
            }
            return Vec::new();
        };
        stream.order = Some(order);
        stream.run += 1;
        if stream.trail.len() == SLACK {
            stream.trail.pop_front();
        }
        stream
            .trail
            .push_back(std::mem::replace(&mut stream.last, coords.to_vec()));
        stream.used = now;
        if stream.run < 2 {
            return Vec::new();
        }
        stream.window = (stream.window * 2).clamp(1, max_window);
        let mut ahead = Vec::new();
        let mut at = coords.to_vec();
        while (ahead.len() as u64) < stream.window {
            let Some(following) = next(&grid, &spec.chunks, &at, order) else {
                break;
            };
            ahead.push(following.clone());
            at = following;
        }
        ahead
    }
}

impl Stream {
    /// Whether `coords` lies between where the stream was `SLACK` continuations ago and its
    /// last chunk, in its order.
    fn behind(&self, coords: &[u64]) -> bool {
        let (Some(order), Some(from)) = (self.order, self.trail.front()) else {
            return false;
        };
        match order {
            // C order over the grid is the lexicographic order of chunk coordinates.
            Order::C => from.as_slice() <= coords && coords < self.last.as_slice(),
            Order::Along(d) => {
                same_line(&self.last, coords, d) && from[d] <= coords[d] && coords[d] < self.last[d]
            }
        }
    }
}

/// Whether `a` and `b` differ at most in dimension `d`.
fn same_line(a: &[u64], b: &[u64], d: usize) -> bool {
    a.len() == b.len() && a.iter().zip(b).enumerate().all(|(i, (x, y))| i == d || x == y)
}

/// Whether `to` comes at most `slack` existing chunks after `from` in `order`.
fn within_slack(
    grid: &[u64],
    index: &ChunkIndex,
    from: &[u64],
    to: &[u64],
    order: Order,
    slack: usize,
) -> bool {
    let ahead = match order {
        Order::C => from.len() == to.len() && to > from,
        Order::Along(d) => same_line(from, to, d) && to[d] > from[d],
    };
    if !ahead {
        return false;
    }
    let mut at = from.to_vec();
    for _ in 0..slack {
        match next(grid, index, &at, order) {
            Some(c) if c == to => return true,
            Some(c) => at = c,
            None => return false,
        }
    }
    false
}

/// The order in which `to` follows `from`, if it does.
fn detect(grid: &[u64], index: &ChunkIndex, from: &[u64], to: &[u64]) -> Option<Order> {
    if next(grid, index, from, Order::C).as_deref() == Some(to) {
        return Some(Order::C);
    }
    (0..grid.len())
        .map(Order::Along)
        .find(|&order| next(grid, index, from, order).as_deref() == Some(to))
}

/// The existing chunk after `at` in `order`, if any.
fn next(grid: &[u64], index: &ChunkIndex, at: &[u64], order: Order) -> Option<Vec<u64>> {
    if at.len() != grid.len() {
        return None;
    }
    match order {
        Order::Along(d) => {
            let mut c = at.to_vec();
            loop {
                c[d] += 1;
                if c[d] >= grid[d] {
                    return None;
                }
                if index.contains(&c) {
                    return Some(c);
                }
            }
        }
        Order::C => match index {
            ChunkIndex::Listed(set) => {
                use std::ops::Bound::{Excluded, Unbounded};
                set.range::<[u64], _>((Excluded(at), Unbounded)).next().cloned()
            }
            ChunkIndex::All => {
                let mut c = at.to_vec();
                for d in (0..c.len()).rev() {
                    c[d] += 1;
                    if c[d] < grid[d] {
                        return Some(c);
                    }
                    c[d] = 0;
                }
                None
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use super::*;
    use crate::tree::DataType;

    fn spec(shape: &[u64], chunk: &[u64]) -> ArraySpec {
        ArraySpec::new(ArrayId(3), shape.to_vec(), chunk.to_vec(), DataType::Float64)
    }

    /// Chunks of 8 bytes per element × chunk cells; a cap of 4 such chunks.
    fn prefetcher(spec: &ArraySpec) -> Prefetcher {
        Prefetcher::new(4 * spec.chunk_bytes())
    }

    #[test]
    fn a_c_order_scan_grows_the_window_to_its_cap() {
        let spec = spec(&[4, 4], &[1, 1]);
        let p = prefetcher(&spec);
        assert!(p.observe(0, &spec, &[0, 0]).is_empty(), "one read is no pattern");
        assert!(
            p.observe(0, &spec, &[0, 0]).is_empty(),
            "another piece of one chunk"
        );
        assert!(
            p.observe(0, &spec, &[0, 1]).is_empty(),
            "two in order may be chance"
        );
        assert_eq!(p.observe(0, &spec, &[0, 2]), vec![vec![0, 3]]);
        assert_eq!(p.observe(0, &spec, &[0, 3]), vec![vec![1, 0], vec![1, 1]]);
        assert_eq!(p.observe(0, &spec, &[1, 0]).len(), 4);
        // Capped at four chunks, and wrapping rows in C order.
        let ahead = p.observe(0, &spec, &[1, 1]);
        assert_eq!(ahead, vec![vec![1, 2], vec![1, 3], vec![2, 0], vec![2, 1]]);
    }

    #[test]
    fn a_sweep_along_one_dimension_is_followed() {
        let spec = spec(&[4, 4, 4], &[1, 1, 1]);
        let p = prefetcher(&spec);
        p.observe(0, &spec, &[0, 2, 1]);
        p.observe(0, &spec, &[1, 2, 1]);
        assert_eq!(p.observe(0, &spec, &[2, 2, 1]), vec![vec![3, 2, 1]]);
        assert!(p.observe(0, &spec, &[3, 2, 1]).is_empty(), "the grid ends there");
    }

    #[test]
    fn random_reads_read_nothing_ahead() {
        let spec = spec(&[16, 16], &[1, 1]);
        let p = prefetcher(&spec);
        for coords in [
            [3, 7],
            [3, 8],
            [9, 1],
            [0, 15],
            [12, 4],
            [5, 5],
            [14, 0],
            [2, 2],
            [7, 11],
        ] {
            assert!(p.observe(0, &spec, &coords).is_empty(), "{coords:?}");
        }
    }

    #[test]
    fn a_stream_left_too_long_is_not_continued() {
        let spec = spec(&[256], &[1]);
        let p = prefetcher(&spec);
        p.observe(0, &spec, &[0]);
        p.observe(0, &spec, &[1]);
        // Reads of one chunk elsewhere age the stream without starting others that could
        // replace it.
        for _ in 0..STALE {
            p.observe(0, &spec, &[100]);
        }
        assert!(p.observe(0, &spec, &[2]).is_empty());
        // Within the limit, the same reads would have continued it.
        let q = prefetcher(&spec);
        q.observe(0, &spec, &[0]);
        q.observe(0, &spec, &[1]);
        for _ in 0..STALE - 1 {
            q.observe(0, &spec, &[100]);
        }
        assert_eq!(q.observe(0, &spec, &[2]), vec![vec![3]]);
    }

    #[test]
    fn concurrent_sequential_readers_keep_their_own_streams() {
        let spec = spec(&[64], &[1]);
        let p = prefetcher(&spec);
        for i in 0..6 {
            // Two readers interleaved, at 0.. and at 32..
            let a = p.observe(0, &spec, &[i]);
            let b = p.observe(0, &spec, &[32 + i]);
            if i > 1 {
                assert_eq!(a.first(), Some(&vec![i + 1]));
                assert_eq!(b.first(), Some(&vec![33 + i]));
            }
        }
        // Other arrays and datasets are separate.
        assert!(p.observe(1, &spec, &[7]).is_empty());
    }

    #[test]
    fn reads_shuffled_within_the_slack_still_make_a_stream() {
        let spec = spec(&[256], &[1]);
        let p = Prefetcher::new(32 * spec.chunk_bytes());
        let mut fetched = BTreeSet::new();
        // Eight readers sharing out chunks in order, their requests arriving shuffled within
        // each group of eight, every chunk in three pieces.
        for group in 0..16u64 {
            for i in [1, 0, 3, 2, 6, 4, 7, 5] {
                for _ in 0..3 {
                    fetched.extend(p.observe(0, &spec, &[group * 8 + i]));
                }
            }
        }
        let streams = p.arrays.lock().get(&(0, spec.id)).map(|s| s.streams.len());
        assert!(
            streams <= Some(3),
            "stragglers start no streams of their own: {streams:?}"
        );
        // Everything from the third group on was fetched ahead, up to the 32-chunk window.
        assert!((24..160).all(|c| fetched.contains(&vec![c])), "{fetched:?}");
    }

    #[test]
    fn slack_applies_along_a_sweep_only_on_its_line() {
        let spec = spec(&[64, 4], &[1, 1]);
        let p = prefetcher(&spec);
        for z in 0..3 {
            p.observe(0, &spec, &[z, 2]);
        }
        assert!(
            p.observe(0, &spec, &[6, 1]).is_empty(),
            "another column starts anew"
        );
        assert_eq!(
            p.observe(0, &spec, &[5, 2]).first(),
            Some(&vec![6, 2]),
            "skipping 3 and 4"
        );
    }

    #[test]
    fn absent_chunks_are_skipped() {
        let mut spec = spec(&[4, 4], &[1, 1]);
        let present: BTreeSet<Vec<u64>> = [vec![0, 0], vec![0, 1], vec![2, 3], vec![3, 0]].into();
        spec.chunks = ChunkIndex::Listed(Arc::new(present));
        let p = prefetcher(&spec);
        p.observe(0, &spec, &[0, 0]);
        p.observe(0, &spec, &[0, 1]);
        assert_eq!(p.observe(0, &spec, &[2, 3]), vec![vec![3, 0]]);
    }
}
