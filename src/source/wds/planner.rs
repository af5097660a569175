//! Which bytes make each chunk of a shard set's arrays. A feature chunk holds one sample
//! or a run of consecutive ones: each present sample is one extent (its member, or its
//! `.npy` payload) of its shard. A one-sample C-order `.npy` chunk is that extent as is;
//! other chunks are assembled (fill for absent samples, Fortran payloads reordered, text
//! parsed, variable-length elements framed). Keys, shard names and presence flags come
//! from the index and are built when asked for.

use std::sync::Arc;

use super::features::{Samples, Slot};
use crate::io::{Extent, SourceFile};
use crate::source::{ChunkPlan, ChunkPlanner, Decode, SourceError};
use crate::tree::ArrayId;

/// How one array's chunks are made.
pub enum Plan {
    /// Sample keys, `per` to a chunk (vlen-utf8).
    Keys { set: Arc<SetData>, per: u64 },
    /// The sample's shard path, as listed (vlen-utf8).
    Shards { set: Arc<SetData>, per: u64 },
    /// Whether each sample has the feature.
    Present { column: Arc<Column>, per: u64 },
    /// Stacked `.npy` payloads of `sample_bytes` each.
    Stacked {
        column: Arc<Column>,
        sample_bytes: u64,
        /// One element's bytes when absent (NaN for floats).
        fill: Vec<u8>,
        /// Per-sample shape and item size, for Fortran-ordered payloads.
        shape: Vec<u64>,
        item: usize,
    },
    /// One sample's `.npy` payload, the whole array; `fortran` gives its shape and item
    /// size if it must be reordered.
    Single {
        file: Arc<SourceFile>,
        slot: Slot,
        fortran: Option<(Vec<u64>, usize)>,
    },
    /// ASCII decimal members as int64.
    Int(Arc<Column>),
    /// Members as vlen elements, checked to be UTF-8 when `utf8`.
    Vlen { column: Arc<Column>, utf8: bool },
}

/// The parts of a set every array's plan shares.
pub struct SetData {
    pub samples: Samples,
    /// The set's shard paths as listed, by shard index.
    pub shard_names: Vec<String>,
    pub files: Vec<Arc<SourceFile>>,
}

/// One feature's ranges, with its set.
pub struct Column {
    pub set: Arc<SetData>,
    pub slots: Vec<Slot>,
    /// Samples per chunk.
    pub per: u64,
    /// Per sample, whether the payload is in Fortran order (empty: none is).
    pub fortran: Vec<bool>,
}

impl Column {
    /// The samples of chunk `c`.
    fn range(&self, c: u64) -> std::ops::Range<usize> {
        let n = self.slots.len() as u64;
        let start = (c * self.per).min(n);
        start as usize..(start + self.per).min(n) as usize
    }

    /// The present samples of chunk `c`: (position in the chunk, sample).
    fn present(&self, c: u64) -> Vec<(usize, usize)> {
        self.range(c)
            .enumerate()
            .filter(|(_, s)| self.slots[*s].is_present())
            .collect()
    }

    fn extent(&self, sample: usize) -> Extent {
        let slot = self.slots[sample];
        Extent {
            file: self.set.files[self.set.samples.shard[sample] as usize].clone(),
            offset: slot.offset,
            len: slot.len,
        }
    }

    /// Names a sample's member in an error.
    fn describe(&self, sample: usize) -> String {
        let shard = self.set.samples.shard[sample] as usize;
        format!(
            "sample {sample} ({:?} of {}, bytes at {})",
            self.set.samples.keys[sample], self.set.shard_names[shard], self.slots[sample].offset
        )
    }

    /// Bytes of the vlen chunk `c`: a u32 count, then per element a u32 length and its bytes.
    pub fn vlen_size(&self, c: u64) -> u64 {
        let members: u64 = self.present(c).iter().map(|&(_, s)| self.slots[s].len).sum();
        4 + 4 * self.per + members
    }
}

pub struct Planner {
    plans: Vec<Plan>,
}

impl Planner {
    pub fn new() -> Self {
        Planner { plans: Vec::new() }
    }

    pub fn add(&mut self, plan: Plan) -> ArrayId {
        self.plans.push(plan);
        ArrayId(self.plans.len() as u32 - 1)
    }
}

impl ChunkPlanner for Planner {
    fn plan(&self, array: ArrayId, coords: &[u64]) -> Result<ChunkPlan, SourceError> {
        let invalid = |m: String| SourceError::invalid(std::path::Path::new("webdataset"), m);
        let plan = self
            .plans
            .get(array.0 as usize)
            .ok_or_else(|| invalid(format!("no array {array:?}")))?;
        let c = coords.first().copied().unwrap_or(0);
        Ok(match plan {
            Plan::Keys { set, per } => ChunkPlan::inline(vlen(
                strided(&set.samples.keys, c, *per).map(String::as_bytes),
                *per,
            )),
            Plan::Shards { set, per } => {
                let names =
                    strided(&set.samples.shard, c, *per).map(|&i| set.shard_names[i as usize].as_bytes());
                ChunkPlan::inline(vlen(names, *per))
            }
            Plan::Present { column, per } => {
                let mut flags: Vec<u8> = strided(&column.slots, c, *per)
                    .map(|s| u8::from(s.is_present()))
                    .collect();
                flags.resize(*per as usize, 0);
                ChunkPlan::inline(flags)
            }
            Plan::Single { file, slot, fortran } => {
                let extent = Extent {
                    file: file.clone(),
                    offset: slot.offset,
                    len: slot.len,
                };
                match fortran.clone() {
                    None => ChunkPlan::contiguous(extent),
                    Some((shape, item)) => ChunkPlan {
                        extents: vec![extent],
                        decode: Decode::With(Box::new(move |buffers| {
                            let payload = buffers.concat();
                            let mut out = vec![0; payload.len()];
                            fortran_to_c(&payload, &mut out, &shape, item);
                            Ok(out)
                        })),
                    },
                }
            }
            Plan::Stacked {
                column,
                sample_bytes,
                fill,
                shape,
                item,
            } => stacked(column, c, *sample_bytes, fill, shape, *item),
            Plan::Int(column) => {
                let present = column.present(c);
                let extents = present.iter().map(|&(_, s)| column.extent(s)).collect();
                let column = column.clone();
                ChunkPlan {
                    extents,
                    decode: Decode::With(Box::new(move |buffers| {
                        let mut out = vec![0u8; column.per as usize * 8];
                        for (buffer, &(at, s)) in buffers.iter().zip(&present) {
                            let value = parse_int(buffer).ok_or_else(|| {
                                format!("{}: not an integer: {:?}", column.describe(s), preview(buffer))
                            })?;
                            out[at * 8..at * 8 + 8].copy_from_slice(&value.to_le_bytes());
                        }
                        Ok(out)
                    })),
                }
            }
            Plan::Vlen { column, utf8 } => {
                let present = column.present(c);
                let extents = present.iter().map(|&(_, s)| column.extent(s)).collect();
                let (column, utf8) = (column.clone(), *utf8);
                ChunkPlan {
                    extents,
                    decode: Decode::With(Box::new(move |buffers| {
                        let mut elements: Vec<&[u8]> = vec![&[]; column.per as usize];
                        for (buffer, &(at, s)) in buffers.iter().zip(&present) {
                            if utf8 && let Err(e) = std::str::from_utf8(buffer) {
                                return Err(format!("{}: not UTF-8 text: {e}", column.describe(s)));
                            }
                            elements[at] = buffer;
                        }
                        Ok(vlen(elements.into_iter(), column.per))
                    })),
                }
            }
        })
    }
}

/// A chunk of stacked `.npy` samples: one sample's C-order payload is served as is,
/// anything else is assembled.
fn stacked(
    column: &Arc<Column>,
    c: u64,
    sample_bytes: u64,
    fill: &[u8],
    shape: &[u64],
    item: usize,
) -> ChunkPlan {
    let present = column.present(c);
    let extents: Vec<Extent> = present.iter().map(|&(_, s)| column.extent(s)).collect();
    let is_fortran = |s: usize| column.fortran.get(s).copied().unwrap_or(false);
    if column.per == 1 && extents.len() == 1 && !is_fortran(present[0].1) {
        return ChunkPlan::contiguous(extents[0].clone());
    }
    let layout: Vec<(usize, bool)> = present.iter().map(|&(at, s)| (at, is_fortran(s))).collect();
    let (per, fill, shape) = (column.per as usize, fill.to_vec(), shape.to_vec());
    let sample_bytes = sample_bytes as usize;
    ChunkPlan {
        extents,
        decode: Decode::With(Box::new(move |buffers| {
            let mut out = if layout.len() == per || fill.iter().all(|b| *b == 0) {
                vec![0u8; per * sample_bytes]
            } else {
                fill.repeat(per * sample_bytes / fill.len().max(1))
            };
            for (buffer, &(at, fortran)) in buffers.iter().zip(&layout) {
                let dst = &mut out[at * sample_bytes..(at + 1) * sample_bytes];
                if fortran {
                    fortran_to_c(buffer, dst, &shape, item);
                } else {
                    dst.copy_from_slice(buffer);
                }
            }
            Ok(out)
        })),
    }
}

/// The elements of chunk `c` when `per` make a chunk.
fn strided<T>(values: &[T], c: u64, per: u64) -> impl Iterator<Item = &T> {
    let start = (c.saturating_mul(per) as usize).min(values.len());
    values[start..].iter().take(per as usize)
}

/// A vlen chunk (`vlen-utf8`, `vlen-bytes`) of `per` elements: those given, then empty ones.
pub fn vlen<'a>(elements: impl Iterator<Item = &'a [u8]>, per: u64) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(per as u32).to_le_bytes());
    let mut n = 0;
    for element in elements {
        out.extend_from_slice(&(element.len() as u32).to_le_bytes());
        out.extend_from_slice(element);
        n += 1;
    }
    for _ in n..per {
        out.extend_from_slice(&0u32.to_le_bytes());
    }
    out
}

/// ASCII decimal with optional sign and surrounding whitespace, as Python's `int(text)`
/// takes it (underscores between digits too).
pub fn parse_int(bytes: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(bytes).ok()?.trim();
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    let well_formed = !digits.is_empty()
        && !digits.starts_with('_')
        && !digits.ends_with('_')
        && !digits.contains("__")
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    if !well_formed {
        return None;
    }
    text.replace('_', "").parse().ok()
}

fn preview(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(40)]).into_owned()
}

/// Reorders a Fortran-order payload (first index fastest) of `shape` into C order.
pub fn fortran_to_c(src: &[u8], dst: &mut [u8], shape: &[u64], item: usize) {
    let shape: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
    let count: usize = shape.iter().product();
    if src.len() < count * item || dst.len() < count * item {
        return;
    }
    // Fortran strides, in elements.
    let mut strides = vec![1usize; shape.len()];
    for d in 1..shape.len() {
        strides[d] = strides[d - 1] * shape[d - 1];
    }
    let mut index = vec![0usize; shape.len()];
    let mut from = 0usize;
    for to in 0..count {
        dst[to * item..(to + 1) * item].copy_from_slice(&src[from * item..(from + 1) * item]);
        // Advance the C-order index (last dimension fastest), tracking the Fortran offset.
        for d in (0..shape.len()).rev() {
            index[d] += 1;
            from += strides[d];
            if index[d] < shape[d] {
                break;
            }
            from -= strides[d] * shape[d];
            index[d] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fortran_payloads_become_c_order() {
        // numpy: np.asfortranarray(np.arange(24).reshape(2, 3, 4)).tobytes(order="F")
        let shape = [2u64, 3, 4];
        let c: Vec<u8> = (0..24).collect();
        let mut f = vec![0u8; 24];
        for i in 0..2 {
            for j in 0..3 {
                for k in 0..4 {
                    f[i + 2 * j + 6 * k] = c[i * 12 + j * 4 + k];
                }
            }
        }
        let mut out = vec![0u8; 24];
        fortran_to_c(&f, &mut out, &shape, 1);
        assert_eq!(out, c);
        // Items of several bytes move whole.
        let f2: Vec<u8> = f.iter().flat_map(|&b| [b, 100 + b]).collect();
        let mut out2 = vec![0u8; 48];
        fortran_to_c(&f2, &mut out2, &shape, 2);
        assert_eq!(out2, c.iter().flat_map(|&b| [b, 100 + b]).collect::<Vec<_>>());
    }

    #[test]
    fn integers_parse_as_python_int_does() {
        for (text, want) in [
            (&b"3"[..], Some(3)),
            (b" -2500\n", Some(-2500)),
            (b"+7", Some(7)),
            (b"1_000", Some(1000)),
            (b"007", Some(7)),
            (b"", None),
            (b"3.5", None),
            (b"1__0", None),
            (b"_1", None),
            (b"0x10", None),
            (b"99999999999999999999", None),
        ] {
            assert_eq!(parse_int(text), want, "{text:?}");
        }
    }

    #[test]
    fn vlen_chunks_pad_to_the_chunk_length() {
        let chunk = vlen([&b"ab"[..], b""].into_iter(), 3);
        assert_eq!(
            chunk,
            [&3u32.to_le_bytes()[..], &2u32.to_le_bytes(), b"ab", &[0; 8]].concat()
        );
    }
}
