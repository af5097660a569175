//! From a shard set's index to its columns: the samples in set order, and per member
//! suffix the byte range each sample has for it and what kind of array it makes.
//!
//! The kind follows the suffix's last extension, lowercased, as webdataset's decoders do
//! (`fields.p.npy` is an `.npy`, `Label.TXT` text): `.npy` members of one dtype and shape
//! stack into one array, of several shapes into one array per sample; integer suffixes
//! become int64, text suffixes strings, everything else bytes.

use std::collections::HashMap;
use std::sync::Arc;

use super::index::ShardSetIndex;
use super::npy::{DType, NpyHeader};

/// Suffixes webdataset decodes as integers (`basichandlers`).
const INT_EXTENSIONS: &[&str] = &["cls", "cls2", "class", "count", "index", "inx", "id"];
/// Suffixes webdataset decodes as UTF-8 text (JSON stays text here: the strings are the
/// documents, left for the reader to parse).
const TEXT_EXTENSIONS: &[&str] = &["txt", "text", "transcript", "json", "jsn"];

/// A byte range of one sample's shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub offset: u64,
    pub len: u64,
}

impl Slot {
    pub const MISSING: Slot = Slot {
        offset: 0,
        len: u64::MAX,
    };

    pub fn is_present(&self) -> bool {
        self.len != u64::MAX
    }
}

/// What a feature becomes.
#[derive(Debug)]
pub enum Kind {
    /// `.npy` of one dtype and shape everywhere: slots are the array payloads.
    Array {
        dtype: DType,
        shape: Vec<u64>,
        /// Per sample, whether its payload is in Fortran order; empty when none is.
        fortran: Vec<bool>,
    },
    /// `.npy` of several shapes or dtypes: each sample's header (slots are payloads).
    Ragged {
        headers: Vec<Option<NpyHeader>>,
    },
    Int,
    Text,
    /// Slots are whole members.
    Bytes,
}

impl Kind {
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Array { .. } => "array",
            Kind::Ragged { .. } => "ragged",
            Kind::Int => "int",
            Kind::Text => "string",
            Kind::Bytes => "bytes",
        }
    }
}

/// One member suffix across the set.
#[derive(Debug)]
pub struct Feature {
    /// As written in the tar, case kept.
    pub suffix: Arc<str>,
    pub kind: Kind,
    /// Per sample; [`Slot::MISSING`] where the sample lacks it (or its `.npy` is unreadable).
    pub slots: Vec<Slot>,
    pub present: u64,
}

/// The samples of a set in order, and where their shards are.
#[derive(Debug, Default)]
pub struct Samples {
    pub keys: Vec<String>,
    /// Per sample, the index of its shard in the set.
    pub shard: Vec<u32>,
}

/// A member that is in the tar but not in the arrays (an `.npy` whose header is bad).
#[derive(Debug, PartialEq, Eq)]
pub struct Unusable {
    pub shard: usize,
    pub member: String,
    pub data_offset: u64,
    pub reason: String,
}

/// Everything the mapping needs from an index.
#[derive(Debug)]
pub struct Columns {
    pub samples: Samples,
    /// In order of first appearance.
    pub features: Vec<Feature>,
    pub unusable: Vec<Unusable>,
}

/// A feature being collected: every member's range, and the `.npy` headers.
struct Collecting {
    suffix: Arc<str>,
    extension: String,
    members: Vec<Slot>,
    npy: Vec<Option<Result<NpyHeader, String>>>,
    /// `.npy` members whose header is bad.
    unusable: Vec<Unusable>,
}

/// Takes the samples out of `index` (which keeps its per-shard summaries) into columns.
pub fn collect(index: &mut ShardSetIndex) -> Columns {
    let total: usize = index.shards.iter().map(|s| s.index.samples.len()).sum();
    let mut samples = Samples {
        keys: Vec::with_capacity(total),
        shard: Vec::with_capacity(total),
    };
    let mut order: Vec<Collecting> = Vec::new();
    let mut by_suffix: HashMap<Arc<str>, usize> = HashMap::new();
    for (shard_no, shard) in index.shards.iter_mut().enumerate() {
        for sample in std::mem::take(&mut shard.index.samples) {
            let s = samples.keys.len();
            for field in sample.fields {
                let at = *by_suffix.entry(field.suffix.clone()).or_insert_with(|| {
                    order.push(Collecting {
                        suffix: field.suffix.clone(),
                        extension: field.extension().to_owned(),
                        members: Vec::new(),
                        npy: Vec::new(),
                        unusable: Vec::new(),
                    });
                    order.len() - 1
                });
                let column = &mut order[at];
                column.members.resize(s, Slot::MISSING);
                column.members.push(Slot {
                    offset: field.offset,
                    len: field.size,
                });
                if let Some(npy) = field.npy {
                    column.npy.resize_with(s, || None);
                    if let Err(reason) = npy.as_ref() {
                        column.unusable.push(Unusable {
                            shard: shard_no,
                            member: format!("{}.{}", sample.key, field.suffix),
                            data_offset: field.offset,
                            reason: reason.clone(),
                        });
                    }
                    column.npy.push(Some(*npy));
                }
            }
            samples.keys.push(sample.key);
            samples.shard.push(shard_no as u32);
        }
    }
    let n = samples.keys.len();
    let mut unusable = Vec::new();
    let features = order
        .into_iter()
        .map(|mut column| {
            let bad = std::mem::take(&mut column.unusable);
            let feature = classify(column, n);
            // An `.npy` suffix none of whose headers parse is served as bytes, whole.
            if matches!(feature.kind, Kind::Array { .. } | Kind::Ragged { .. }) {
                unusable.extend(bad);
            }
            feature
        })
        .collect();
    Columns {
        samples,
        features,
        unusable,
    }
}

fn classify(mut column: Collecting, n: usize) -> Feature {
    column.members.resize(n, Slot::MISSING);
    let present = |slots: &[Slot]| slots.iter().filter(|s| s.is_present()).count() as u64;
    let (kind, slots) = if column.extension == "npy" && column.npy.iter().flatten().any(Result::is_ok) {
        column.npy.resize_with(n, || None);
        let headers: Vec<Option<NpyHeader>> =
            column.npy.into_iter().map(|h| h.and_then(Result::ok)).collect();
        let slots = headers
            .iter()
            .zip(&column.members)
            .map(|(h, m)| match h {
                Some(h) => Slot {
                    offset: m.offset + h.data_offset,
                    len: h.data_len,
                },
                None => Slot::MISSING,
            })
            .collect();
        let mut usable = headers.iter().flatten();
        let first = usable.next().map(|h| (h.dtype, h.shape.clone()));
        let uniform = first
            .as_ref()
            .is_some_and(|(dtype, shape)| usable.all(|h| h.dtype == *dtype && h.shape == *shape));
        match first {
            Some((dtype, shape)) if uniform => {
                let fortran: Vec<bool> = headers
                    .iter()
                    .map(|h| h.as_ref().is_some_and(|h| h.fortran_order && h.shape.len() > 1))
                    .collect();
                let fortran = if fortran.contains(&true) {
                    fortran
                } else {
                    Vec::new()
                };
                (
                    Kind::Array {
                        dtype,
                        shape,
                        fortran,
                    },
                    slots,
                )
            }
            _ => (Kind::Ragged { headers }, slots),
        }
    } else if INT_EXTENSIONS.contains(&column.extension.as_str()) {
        (Kind::Int, column.members)
    } else if TEXT_EXTENSIONS.contains(&column.extension.as_str()) {
        (Kind::Text, column.members)
    } else {
        (Kind::Bytes, column.members)
    };
    Feature {
        suffix: column.suffix,
        kind,
        present: present(&slots),
        slots,
    }
}
