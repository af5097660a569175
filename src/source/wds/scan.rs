//! One shard into a [`ShardIndex`]: the tar walk (`tar.rs`), the grouping (`sample.rs`)
//! and the `.npy` headers (`npy.rs`), in one pass that reads headers only.

use std::fs::File;
use std::path::Path;

use super::WdsError;
use super::npy::{self, NpyHeader};
use super::sample::{Grouper, Sample, Skipped};
use super::tar::{EndKind, Entry, ReadAt, WINDOW_SMALL, Walker};

/// Everything the mapping needs to know about one shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardIndex {
    /// The shard's length when it was indexed.
    pub file_len: u64,
    /// Samples in tar order.
    pub samples: Vec<Sample>,
    /// Members and samples that are not data, with reasons.
    pub skipped: Vec<Skipped>,
    /// How the walk ended (a marker or EOF is a complete shard).
    pub end: ShardEnd,
    /// Members walked (every type).
    pub members: u64,
}

/// How the walk of a shard ended, and why (with the byte offset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardEnd {
    pub kind: EndKind,
    pub offset: u64,
    pub reason: String,
}

impl ShardEnd {
    /// The shard was read to its end (a marker, or the end of the file on a boundary).
    pub fn is_complete(&self) -> bool {
        matches!(self.kind, EndKind::Marker | EndKind::Eof)
    }
}

/// What indexing read from the source: it should be headers, not payloads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadStats {
    pub bytes: u64,
    pub reads: u64,
}

/// Indexes the shard at `path`; only opening or sizing it can fail, anything wrong inside
/// the tar ends the index early with a reason ([`ShardIndex::end`]).
pub fn index_file(path: &Path) -> Result<ShardIndex, WdsError> {
    // Opening a FIFO would block: look before opening.
    let meta = std::fs::metadata(path).map_err(|e| WdsError::io(path, e))?;
    if !meta.is_file() {
        return Err(WdsError::io(path, std::io::Error::other("not a regular file")));
    }
    let file = File::open(path).map_err(|e| WdsError::io(path, e))?;
    let len = file.metadata().map_err(|e| WdsError::io(path, e))?.len();
    let (index, stats) = index_reader(&file, len);
    tracing::debug!(path = %path.display(), samples = index.samples.len(), skipped = index.skipped.len(),
        bytes_read = stats.bytes, reads = stats.reads, end = ?index.end.kind, "indexed shard");
    if !index.end.is_complete() {
        tracing::warn!(path = %path.display(), offset = index.end.offset, "shard ends early: {}", index.end.reason);
    } else if index.end.kind == EndKind::Eof {
        // Served whole (tarfile and webdataset read it so), but a tar writer ends with two
        // zero blocks: a file that stops without them may have been cut.
        tracing::warn!(path = %path.display(), offset = index.end.offset,
            "shard {} has no end-of-archive marker: its last member ends at byte {}, the file at {len}",
            path.display(), index.end.offset);
    }
    Ok(index)
}

/// Indexes a shard of `file_len` bytes read through `src`.
pub fn index_reader<R: ReadAt + ?Sized>(src: &R, file_len: u64) -> (ShardIndex, ReadStats) {
    let mut walker = Walker::new(src, file_len);
    let mut grouper = Grouper::default();
    let mut members = 0u64;
    let end = loop {
        match walker.next_entry() {
            Ok(entry) => {
                members += 1;
                if let Some(field) = grouper.push(&entry)
                    && field.extension() == "npy"
                {
                    field.npy = Some(Box::new(read_npy(&mut walker, &entry)));
                }
            }
            Err(end) => break end,
        }
    };
    let stats = ReadStats {
        bytes: walker.window.bytes_read,
        reads: walker.window.reads,
    };
    let (samples, skipped) = grouper.finish(&end);
    let index = ShardIndex {
        file_len,
        samples,
        skipped,
        end: ShardEnd {
            kind: end.kind,
            offset: end.offset,
            reason: end.reason,
        },
        members,
    };
    (index, stats)
}

fn read_npy<R: ReadAt + ?Sized>(walker: &mut Walker<'_, R>, entry: &Entry) -> Result<NpyHeader, String> {
    let at = entry.data_offset;
    let io = |e: std::io::Error| format!("reading the .npy header at byte {at}: {e}");
    let first = walker.data_prefix(entry, WINDOW_SMALL).map_err(io)?;
    let needed = npy::header_len(first).map_err(|e| e.to_string())?;
    if first.len() >= needed {
        return npy::parse(first, entry.size).map_err(|e| e.to_string());
    }
    let whole = walker.data_prefix(entry, needed).map_err(io)?;
    npy::parse(whole, entry.size).map_err(|e| e.to_string())
}
