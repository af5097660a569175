//! `raw://FILE`: any file as a 1-D `uint8` array named `bytes`, in 1 MiB chunks that are each
//! one byte range of the file. It is never auto-detected; it exists to exercise and measure
//! the read path (extents → I/O engine → cache → FUSE) without a format's decode cost, and as
//! the ceiling in benchmarks.

use std::path::Path;
use std::sync::Arc;

use serde_json::json;

use super::{ChunkPlan, ChunkPlanner, Dataset, Decode, Source, SourceError};
use crate::io::{Extent, SourceFile};
use crate::tree::{ArrayId, ArraySpec, DataType, Group, Node};

/// 1 MiB: a common chunk size, and one kernel request even at the kernel's default cap.
const CHUNK: u64 = 1 << 20;

pub struct Raw;

struct RawPlanner {
    file: Arc<SourceFile>,
    len: u64,
}

impl Source for Raw {
    fn name(&self) -> &'static str {
        "raw"
    }

    fn detect(&self, _path: &Path) -> bool {
        false
    }

    fn open(&self, path: &Path) -> Result<Dataset, SourceError> {
        let meta = std::fs::metadata(path).map_err(|e| SourceError::io(path, e))?;
        if !meta.is_file() {
            return Err(SourceError::invalid(path, "raw:// needs a regular file"));
        }
        let len = meta.len();
        let mut spec = ArraySpec::new(
            ArrayId(0),
            vec![len],
            vec![CHUNK.min(len.max(1))],
            DataType::UInt8,
        );
        spec.dimension_names = Some(vec!["offset".into()]);
        let mut root = Group::default();
        root.attributes
            .insert("source".into(), json!(path.display().to_string()));
        root.members.insert("bytes".into(), Node::Array(Arc::new(spec)));
        let planner = RawPlanner {
            file: SourceFile::new(path),
            len,
        };
        Ok(Dataset {
            root,
            planner: Arc::new(planner),
        })
    }
}

impl ChunkPlanner for RawPlanner {
    fn plan(&self, _array: ArrayId, coords: &[u64]) -> Result<ChunkPlan, SourceError> {
        let chunk = CHUNK.min(self.len.max(1));
        let offset = coords.first().copied().unwrap_or(0).saturating_mul(chunk);
        let len = chunk.min(self.len.saturating_sub(offset));
        let extent = Extent {
            file: self.file.clone(),
            offset,
            len,
        };
        if len == chunk {
            return Ok(ChunkPlan::contiguous(extent));
        }
        // The last chunk is shorter in the file; a chunk file is always full size, padded
        // with the fill value (0) past the end of the array.
        let mut plan = ChunkPlan::contiguous(extent);
        plan.decode = Decode::With(Box::new(move |buffers| {
            let mut bytes = buffers.concat();
            bytes.resize(chunk as usize, 0);
            Ok(bytes)
        }));
        Ok(plan)
    }
}
