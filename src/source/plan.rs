//! Chunk plans: which source bytes make a chunk and how to turn them into the chunk file.

use std::fmt;
use std::sync::Arc;

use super::SourceError;
use crate::io::{Buffer, BufferPool, Extent, IoEngine};
use crate::tree::ArrayId;
use crate::workers::Workers;

/// Plans chunks of one dataset's arrays. Planning does no I/O: it only says where the bytes are.
pub trait ChunkPlanner: Send + Sync {
    fn plan(&self, array: ArrayId, coords: &[u64]) -> Result<ChunkPlan, SourceError>;
}

/// Turns the bytes of a plan's extents (one buffer each, in order) into the chunk file.
pub type DecodeFn = Box<dyn FnOnce(Vec<Vec<u8>>) -> Result<Vec<u8>, String> + Send>;

/// The extents to read and the decode step that makes them a chunk file.
pub struct ChunkPlan {
    pub extents: Vec<Extent>,
    pub decode: Decode,
}

pub enum Decode {
    /// The extents, concatenated, are the chunk file.
    Concat,
    /// A format-specific transform (byte swap, gather, unpack …).
    With(DecodeFn),
}

impl fmt::Debug for ChunkPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let decode = match self.decode {
            Decode::Concat => "concat",
            Decode::With(_) => "custom",
        };
        f.debug_struct("ChunkPlan")
            .field("extents", &self.extents)
            .field("decode", &decode)
            .finish()
    }
}

/// Why a chunk could not be produced. Each is an `EIO` for that read only.
#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    #[error("planning: {0}")]
    Plan(#[from] SourceError),
    #[error("reading: {0}")]
    Read(#[from] std::io::Error),
    #[error("decoding: {0}")]
    Decode(String),
    #[error("decoded {got} bytes where the array declares {expected}")]
    Size { got: usize, expected: u64 },
}

impl ChunkPlan {
    /// A chunk that is exactly one byte range of a source file.
    pub fn contiguous(extent: Extent) -> Self {
        ChunkPlan {
            extents: vec![extent],
            decode: Decode::Concat,
        }
    }

    /// A chunk computed without reading anything (coordinates, tables).
    pub fn inline(bytes: Vec<u8>) -> Self {
        ChunkPlan {
            extents: Vec::new(),
            decode: Decode::With(Box::new(move |_| Ok(bytes))),
        }
    }

    /// The single source byte range this chunk is, if it is exactly one (`expected` bytes,
    /// no decode step).
    pub fn as_byte_range(&self, expected: u64) -> Option<&Extent> {
        match (&self.decode, self.extents.as_slice()) {
            (Decode::Concat, [extent]) if extent.len == expected => Some(extent),
            _ => None,
        }
    }

    /// Reads the extents and decodes them on this thread; the result must be `expected`
    /// bytes long.
    pub fn execute(self, io: &dyn IoEngine, expected: u64) -> Result<Buffer, ChunkError> {
        let buffers = io.read(&self.extents)?;
        finish(self.decode, buffers, expected, io.pool())
    }

    /// Submits the reads and returns; the decoding runs on `workers`, then `done` gets the
    /// chunk file (`expected` bytes long) or the error.
    pub fn start(
        self,
        io: &Arc<dyn IoEngine>,
        workers: &Workers,
        expected: u64,
        done: impl FnOnce(Result<Buffer, ChunkError>) + Send + 'static,
    ) {
        let (pool, workers) = (io.pool().clone(), workers.clone());
        let decode = self.decode;
        io.submit(
            self.extents,
            Box::new(move |read| {
                workers.spawn(move || {
                    done(
                        read.map_err(ChunkError::from)
                            .and_then(|b| finish(decode, b, expected, &pool)),
                    )
                });
            }),
        );
    }
}

fn finish(
    decode: Decode,
    buffers: Vec<Vec<u8>>,
    expected: u64,
    pool: &Arc<BufferPool>,
) -> Result<Buffer, ChunkError> {
    let bytes = match decode {
        Decode::Concat if buffers.len() == 1 => buffers.into_iter().next().unwrap_or_default(),
        Decode::Concat => buffers.concat(),
        Decode::With(decode) => decode(buffers).map_err(ChunkError::Decode)?,
    };
    if bytes.len() as u64 != expected {
        return Err(ChunkError::Size {
            got: bytes.len(),
            expected,
        });
    }
    Ok(Buffer::pooled(bytes, pool))
}
