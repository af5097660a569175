//! Which bytes make each chunk of an FST dataset: a data chunk is one record's payload,
//! decoded on read; coordinates and the directory table are computed when the file is
//! opened and served from memory.

use std::collections::HashMap;
use std::sync::Arc;

use super::packing::{self, Element, Packing};
use super::record::Record;
use crate::io::{Extent, SourceFile};
use crate::source::{ChunkPlan, ChunkPlanner, Decode, SourceError};
use crate::tree::{ArrayId, ArraySpec, Attributes, DataType};

/// What the planner knows about one array.
enum Plan {
    /// Chunks are records: the chunk at these grid coordinates is that record.
    Records {
        chunks: HashMap<Vec<u64>, Arc<Record>>,
        element: Element,
        /// datyp+64: the record's maximum marks missing points, shown as this value.
        missing: Option<f64>,
    },
    /// One chunk, already computed.
    Inline(Arc<Vec<u8>>),
}

/// Collects arrays and their plans while the tree is built.
#[derive(Default)]
pub struct Builder {
    plans: Vec<Plan>,
}

impl Builder {
    fn next(&mut self, plan: Plan) -> ArrayId {
        self.plans.push(plan);
        ArrayId(self.plans.len() as u32 - 1)
    }

    /// An array held in memory as one chunk: `bytes` are its little-endian elements.
    pub fn inline(
        &mut self,
        shape: Vec<u64>,
        data_type: DataType,
        bytes: Vec<u8>,
        dims: &[&str],
        attributes: Attributes,
    ) -> ArraySpec {
        let chunk = shape.iter().map(|n| (*n).max(1)).collect();
        let id = self.next(Plan::Inline(Arc::new(bytes)));
        let mut spec = ArraySpec::new(id, shape, chunk, data_type);
        spec.dimension_names = Some(dims.iter().map(|d| d.to_string()).collect());
        spec.attributes = attributes;
        spec
    }

    /// A 1-D array of strings held in memory as one chunk (`vlen-utf8`: a u32 count, then
    /// each string as a u32 length and its bytes, all little-endian).
    pub fn strings(&mut self, values: &[String], dim: &str, attributes: Attributes) -> ArraySpec {
        let mut bytes = Vec::with_capacity(4 + values.iter().map(|v| 4 + v.len()).sum::<usize>());
        bytes.extend_from_slice(&(values.len() as u32).to_le_bytes());
        for v in values {
            bytes.extend_from_slice(&(v.len() as u32).to_le_bytes());
            bytes.extend_from_slice(v.as_bytes());
        }
        let size = bytes.len() as u64;
        let mut spec = self.inline(
            vec![values.len() as u64],
            DataType::String,
            bytes,
            &[dim],
            attributes,
        );
        spec.chunk_sizes = Some(Arc::new([(vec![0], size)].into_iter().collect()));
        spec
    }

    /// An array whose chunks are records; `chunk_shape` is one record's (nk, nj, ni) part
    /// with ones in front for the outer axes.
    pub fn records(
        &mut self,
        shape: Vec<u64>,
        chunk_shape: Vec<u64>,
        element: Element,
        missing: Option<f64>,
        chunks: HashMap<Vec<u64>, Arc<Record>>,
    ) -> ArraySpec {
        let listed = chunks.keys().cloned().collect();
        let id = self.next(Plan::Records {
            chunks,
            element,
            missing,
        });
        let mut spec = ArraySpec::new(id, shape, chunk_shape, data_type(element));
        spec.chunks = crate::tree::ChunkIndex::Listed(Arc::new(listed));
        spec
    }

    pub fn finish(self, file: Arc<SourceFile>) -> Planner {
        Planner {
            file,
            plans: self.plans,
        }
    }
}

pub fn data_type(element: Element) -> DataType {
    match element {
        Element::F32 => DataType::Float32,
        Element::F64 => DataType::Float64,
        Element::U8 => DataType::UInt8,
        Element::U32 => DataType::UInt32,
        Element::U64 => DataType::UInt64,
        Element::I32 => DataType::Int32,
        Element::I64 => DataType::Int64,
        Element::C64 => DataType::Complex64,
        Element::C128 => DataType::Complex128,
    }
}

pub struct Planner {
    file: Arc<SourceFile>,
    plans: Vec<Plan>,
}

impl ChunkPlanner for Planner {
    fn plan(&self, array: ArrayId, coords: &[u64]) -> Result<ChunkPlan, SourceError> {
        let invalid = |m: String| SourceError::invalid(self.file.path(), m);
        match self.plans.get(array.0 as usize) {
            Some(Plan::Inline(bytes)) => Ok(ChunkPlan::inline(bytes.as_ref().clone())),
            Some(Plan::Records {
                chunks,
                element,
                missing,
            }) => {
                let record = chunks
                    .get(coords)
                    .ok_or_else(|| invalid(format!("no record at chunk {coords:?}")))?
                    .clone();
                // The record's own header too, to check it against the directory.
                let extent = Extent {
                    file: self.file.clone(),
                    offset: record.offset,
                    len: record.header_len() + record.payload_len,
                };
                let (element, missing) = (*element, *missing);
                Ok(ChunkPlan {
                    extents: vec![extent],
                    decode: Decode::With(Box::new(move |buffers| {
                        // One extent, so one buffer.
                        let bytes = buffers.into_iter().next().unwrap_or_default();
                        let (header, payload) = bytes.split_at(record.header_len() as usize);
                        record.check_header(header)?;
                        decode(&record, payload, element, missing)
                    })),
                })
            }
            None => Err(invalid(format!("no array {}", array.0))),
        }
    }
}

/// Unpacks a record and presents it as `element` (records of one variable may differ in
/// packing width).
fn decode(
    record: &Record,
    payload: &[u8],
    element: Element,
    missing: Option<f64>,
) -> Result<Vec<u8>, String> {
    let k = &record.keys;
    let ctx = |e: String| {
        format!(
            "record {} ({} {}) at byte {}: {e}",
            k.nomvar, k.etiket, k.ip1, record.offset
        )
    };
    let packing = packing_of(record);
    let own = packing.element().map_err(|e| ctx(e.to_string()))?;
    let values = packing::unpack(&packing, payload, record.order).map_err(|e| ctx(e.to_string()))?;
    let mut values = if own == element {
        values
    } else {
        convert(&values, own, element)
            .ok_or_else(|| ctx(format!("cannot present {own:?} values as {element:?}")))?
    };
    if let Some(replacement) = missing {
        packing::mark_missing(element, &mut values, replacement);
    }
    Ok(values)
}

pub fn packing_of(record: &Record) -> Packing {
    let k = &record.keys;
    Packing {
        datyp: k.datyp,
        nbits: k.nbits,
        dasiz: k.dasiz,
        ni: k.ni,
        nj: k.nj,
        nk: k.nk,
    }
}

/// Converts between the real and integer element types through f64 (the widest a variable
/// mixes in practice is f32 with f64).
fn convert(values: &[u8], from: Element, to: Element) -> Option<Vec<u8>> {
    let read = |c: &[u8]| -> Option<f64> {
        Some(match from {
            Element::F32 => f64::from(f32::from_le_bytes(c.try_into().ok()?)),
            Element::F64 => f64::from_le_bytes(c.try_into().ok()?),
            Element::U32 => f64::from(u32::from_le_bytes(c.try_into().ok()?)),
            Element::I32 => f64::from(i32::from_le_bytes(c.try_into().ok()?)),
            Element::U8 => f64::from(c[0]),
            _ => return None,
        })
    };
    let mut out = Vec::with_capacity(values.len() / from.size() * to.size());
    for c in values.chunks_exact(from.size()) {
        let v = read(c)?;
        match to {
            Element::F32 => out.extend_from_slice(&(v as f32).to_le_bytes()),
            Element::F64 => out.extend_from_slice(&v.to_le_bytes()),
            Element::I64 => out.extend_from_slice(&(v as i64).to_le_bytes()),
            Element::U64 => out.extend_from_slice(&(v as u64).to_le_bytes()),
            _ => return None,
        }
    }
    Some(out)
}
