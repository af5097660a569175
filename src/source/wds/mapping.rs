//! A shard set as a Zarr group (ARCHITECTURE.md §2): `key` and `shard` per sample, one
//! node per member suffix (an array, or a group of per-sample arrays for `.npy` members of
//! several shapes), `<feature>.present` where some samples lack it, and attributes that
//! list the shards, the features and what was skipped.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::features::{self, Feature, Kind, Unusable};
use super::index::ShardSetIndex;
use super::npy::{self, DType};
use super::planner::{Column, Plan, Planner, SetData};
use super::sample::SkipReason;
use crate::io::SourceFile;
use crate::tree::{ArraySpec, ChunkIndex, DataType, Endian, Group, Node};

/// Chunks of small samples gather consecutive samples up to about this many bytes: a
/// chunk file costs a request whatever its size.
const CHUNK_TARGET: u64 = 64 << 10;
/// At most this many samples to a chunk.
const MAX_PER_CHUNK: u64 = 4096;
/// Samples per chunk of the presence flags.
const FLAGS_PER_CHUNK: u64 = 1 << 16;
/// Names the group uses itself; a feature by that name is renamed.
const RESERVED: &[&str] = &["key", "shard", "zarr.json"];

/// Samples per chunk for members of `bytes` each (on average), in a set of `n`.
fn per_chunk(bytes: u64, n: u64) -> u64 {
    (CHUNK_TARGET / bytes.max(1)).clamp(1, MAX_PER_CHUNK.min(n.max(1)))
}

/// Builds the group of one indexed set, adding its arrays to `planner`.
pub fn build(mut index: ShardSetIndex, planner: &mut Planner) -> Group {
    let columns = features::collect(&mut index);
    let shard_names: Vec<String> = index
        .shards
        .iter()
        .map(|s| s.path.display().to_string())
        .collect();
    let files = index
        .shards
        .iter()
        .map(|s| SourceFile::new(s.canonical.clone().unwrap_or_else(|| s.path.clone())))
        .collect();
    let set = Arc::new(SetData {
        samples: columns.samples,
        shard_names,
        files,
    });
    let n = set.samples.keys.len() as u64;
    let mut group = Group::default();
    let add = |group: &mut Group, name: &str, spec: ArraySpec| {
        group.members.insert(name.to_owned(), Node::Array(Arc::new(spec)));
    };

    let strings_per = MAX_PER_CHUNK.min(n.max(1));
    let key_lens: Vec<usize> = set.samples.keys.iter().map(String::len).collect();
    let keys = planner.add(Plan::Keys {
        set: set.clone(),
        per: strings_per,
    });
    add(&mut group, "key", strings(keys, &key_lens, strings_per));
    let shard_lens: Vec<usize> = set
        .samples
        .shard
        .iter()
        .map(|&i| set.shard_names[i as usize].len())
        .collect();
    let shards = planner.add(Plan::Shards {
        set: set.clone(),
        per: strings_per,
    });
    add(&mut group, "shard", strings(shards, &shard_lens, strings_per));

    // The group's own names come first: `key`, `shard`, and the presence flags of the
    // features some samples lack; a feature whose suffix clashes is the one renamed.
    let mut used: HashSet<String> = RESERVED.iter().map(|s| s.to_string()).collect();
    used.extend(
        columns
            .features
            .iter()
            .filter(|f| f.present < n)
            .map(|f| format!("{}.present", f.suffix)),
    );
    let mut summary = Map::new();
    for feature in columns.features {
        let wanted = feature.suffix.to_string();
        let name = unique(&wanted, &mut used);
        summary.insert(name.clone(), feature_summary(&feature));
        let missing = feature.present < n;
        let Feature { mut kind, slots, .. } = feature;
        let per = match &kind {
            Kind::Array { dtype, shape, .. } => {
                per_chunk(shape.iter().product::<u64>() * dtype.size as u64, n)
            }
            Kind::Ragged { .. } => 1,
            Kind::Int => MAX_PER_CHUNK.min(n.max(1)),
            Kind::Text | Kind::Bytes => {
                let present = slots.iter().filter(|s| s.is_present());
                let (count, bytes) = present.fold((0, 0), |(c, b), s| (c + 1, b + s.len));
                per_chunk(bytes / u64::max(count, 1), n)
            }
        };
        let fortran = match &mut kind {
            Kind::Array { fortran, .. } => std::mem::take(fortran),
            _ => Vec::new(),
        };
        let column = Arc::new(Column {
            set: set.clone(),
            slots,
            per,
            fortran,
        });
        match kind {
            Kind::Array { dtype, shape, .. } => {
                let item = dtype.size as u64;
                let id = planner.add(Plan::Stacked {
                    column: column.clone(),
                    sample_bytes: shape.iter().product::<u64>() * item,
                    fill: fill_element(dtype),
                    shape: shape.clone(),
                    item: item as usize,
                });
                let mut spec = ArraySpec::new(
                    id,
                    [&[n], shape.as_slice()].concat(),
                    [vec![per], shape.iter().map(|d| (*d).max(1)).collect()].concat(),
                    dtype.data_type(),
                );
                spec.endian = endian(dtype);
                let inner = (0..shape.len()).map(|d| format!("{name}_{d}"));
                spec.dimension_names = Some(std::iter::once("sample".to_owned()).chain(inner).collect());
                spec.chunks = listed(&column, shape.len());
                feature_attributes(&mut spec, &wanted);
                add(&mut group, &name, spec);
            }
            Kind::Ragged { headers } => {
                let sub = per_sample_arrays(headers, &column, &wanted, planner);
                group.members.insert(name.clone(), Node::Group(sub));
            }
            Kind::Int | Kind::Text | Kind::Bytes => {
                let (plan, data_type) = match kind {
                    Kind::Int => (Plan::Int(column.clone()), DataType::Int64),
                    Kind::Text => (
                        Plan::Vlen {
                            column: column.clone(),
                            utf8: true,
                        },
                        DataType::String,
                    ),
                    _ => (
                        Plan::Vlen {
                            column: column.clone(),
                            utf8: false,
                        },
                        DataType::Bytes,
                    ),
                };
                let mut spec = ArraySpec::new(planner.add(plan), vec![n], vec![per], data_type);
                spec.dimension_names = Some(vec!["sample".into()]);
                spec.chunks = listed(&column, 0);
                if data_type.is_variable() {
                    let sizes = (0..n.div_ceil(per))
                        .filter(|c| spec.chunks.contains(&[*c]))
                        .map(|c| (vec![c], column.vlen_size(c)))
                        .collect();
                    spec.chunk_sizes = Some(Arc::new(sizes));
                }
                feature_attributes(&mut spec, &wanted);
                add(&mut group, &name, spec);
            }
        }
        if missing {
            let flags_per = FLAGS_PER_CHUNK.min(n.max(1));
            let id = planner.add(Plan::Present {
                column,
                per: flags_per,
            });
            let mut spec = ArraySpec::new(id, vec![n], vec![flags_per], DataType::Bool);
            spec.dimension_names = Some(vec!["sample".into()]);
            spec.attributes.insert(
                "description".into(),
                json!(format!("whether each sample has a member with suffix {wanted}")),
            );
            // Reserved above, unless the feature itself was renamed.
            let present_name = format!("{name}.present");
            let present_name = if name == wanted {
                present_name
            } else {
                unique(&present_name, &mut used)
            };
            add(&mut group, &present_name, spec);
        }
    }

    let a = &mut group.attributes;
    a.insert("format".into(), json!("webdataset"));
    a.insert("name".into(), json!(index.name));
    a.insert("n_samples".into(), json!(n));
    a.insert("shards".into(), Value::Array(shard_summaries(&index, &set)));
    a.insert("features".into(), Value::Object(summary));
    let skipped = skipped_list(&index, &columns.unusable, &set);
    if let Some(first) = skipped.first() {
        tracing::warn!(
            "webdataset {}: {} members or samples are not data (listed in the group's `skipped`), first: {} in {} at byte {}: {}",
            index.name,
            skipped.len(),
            first["member"],
            first["path"],
            first
                .get("offset")
                .or_else(|| first.get("data_offset"))
                .unwrap_or(&serde_json::Value::Null),
            first["reason"]
        );
    }
    if !skipped.is_empty() {
        a.insert("skipped".into(), Value::Array(skipped));
    }
    group
}

/// A ragged `.npy` feature: one array per sample that has a readable member, named by
/// the sample's index.
fn per_sample_arrays(
    headers: Vec<Option<super::npy::NpyHeader>>,
    column: &Column,
    suffix: &str,
    planner: &mut Planner,
) -> Group {
    let set = &column.set;
    let mut sub = Group::default();
    sub.attributes.insert("suffix".into(), json!(suffix));
    sub.attributes.insert("kind".into(), json!("ragged"));
    for (s, header) in headers.into_iter().enumerate() {
        let Some(header) = header else { continue };
        let shard = set.samples.shard[s] as usize;
        let fortran = (header.fortran_order && header.shape.len() > 1)
            .then(|| (header.shape.clone(), header.dtype.size as usize));
        let id = planner.add(Plan::Single {
            file: set.files[shard].clone(),
            slot: column.slots[s],
            fortran,
        });
        let chunk = header.shape.iter().map(|d| (*d).max(1)).collect();
        let mut spec = ArraySpec::new(id, header.shape.clone(), chunk, header.dtype.data_type());
        spec.endian = endian(header.dtype);
        spec.dimension_names = Some((0..header.shape.len()).map(|d| format!("{s}_{d}")).collect());
        spec.attributes.insert("key".into(), json!(set.samples.keys[s]));
        spec.attributes
            .insert("shard".into(), json!(set.shard_names[shard]));
        sub.members.insert(s.to_string(), Node::Array(Arc::new(spec)));
    }
    sub
}

/// A 1-D string array of one string per sample, of `lens` bytes each, `per` to a chunk.
fn strings(id: crate::tree::ArrayId, lens: &[usize], per: u64) -> ArraySpec {
    let mut spec = ArraySpec::new(id, vec![lens.len() as u64], vec![per], DataType::String);
    spec.dimension_names = Some(vec!["sample".into()]);
    let sizes = lens
        .chunks(per as usize)
        .enumerate()
        .map(|(c, lens)| (vec![c as u64], 4 + 4 * per + lens.iter().sum::<usize>() as u64));
    spec.chunk_sizes = Some(Arc::new(sizes.collect()));
    spec
}

/// `wanted`, or `wanted~2`, `~3` … if that is taken; names no directory entry or Zarr node
/// may have get a `~` in front.
fn unique(wanted: &str, used: &mut HashSet<String>) -> String {
    // `key.`, `key..` and `key...` have the suffixes "", "." and "..": no file can be
    // named that, so they are escaped like Zarr's reserved `__` names.
    let base = if wanted.starts_with("__") || matches!(wanted, "" | "." | "..") {
        format!("~{wanted}")
    } else {
        wanted.to_owned()
    };
    let mut name = base.clone();
    let mut n = 1;
    while !used.insert(name.clone()) {
        n += 1;
        name = format!("{base}~{n}");
    }
    name
}

/// The chunks that hold at least one sample, when some do not.
fn listed(column: &Column, inner_dims: usize) -> ChunkIndex {
    let chunks = (column.slots.len() as u64).div_ceil(column.per);
    let held: BTreeSet<Vec<u64>> = (0..chunks)
        .filter(|&c| {
            let start = (c * column.per) as usize;
            column.slots[start..]
                .iter()
                .take(column.per as usize)
                .any(|s| s.is_present())
        })
        .map(|c| {
            let mut coords = vec![c];
            coords.resize(1 + inner_dims, 0);
            coords
        })
        .collect();
    if held.len() as u64 == chunks {
        ChunkIndex::All
    } else {
        ChunkIndex::Listed(Arc::new(held))
    }
}

fn feature_attributes(spec: &mut ArraySpec, suffix: &str) {
    spec.attributes.insert("suffix".into(), json!(suffix));
    // xarray makes these coordinates of every feature.
    spec.attributes.insert("coordinates".into(), json!("key shard"));
}

fn feature_summary(feature: &Feature) -> Value {
    let mut out = json!({
        "suffix": feature.suffix.as_ref(),
        "kind": feature.kind.name(),
        "present": feature.present,
    });
    match &feature.kind {
        Kind::Array { dtype, shape, .. } => {
            out["dtype"] = json!(dtype.zarr_name());
            out["shape"] = json!(shape);
        }
        Kind::Ragged { headers } => {
            let dtypes: BTreeSet<&str> = headers.iter().flatten().map(|h| h.dtype.zarr_name()).collect();
            out["dtype"] = json!(dtypes.into_iter().collect::<Vec<_>>().join(" | "));
        }
        _ => {}
    }
    out
}

fn endian(dtype: DType) -> Endian {
    match dtype.endian {
        npy::Endian::Big => Endian::Big,
        _ => Endian::Little,
    }
}

/// One element of the fill value in the payload's byte order: NaN for floats (what the
/// array's `fill_value` says), zero otherwise.
fn fill_element(dtype: DType) -> Vec<u8> {
    let mut bytes = match (dtype.kind, dtype.size) {
        (npy::Kind::Float, 2) => 0x7e00u16.to_le_bytes().to_vec(),
        (npy::Kind::Float, 4) => f32::NAN.to_le_bytes().to_vec(),
        (npy::Kind::Float, 8) => f64::NAN.to_le_bytes().to_vec(),
        _ => vec![0; dtype.size as usize],
    };
    if dtype.endian == npy::Endian::Big {
        bytes.reverse();
    }
    bytes
}

fn shard_summaries(index: &ShardSetIndex, set: &SetData) -> Vec<Value> {
    let mut samples = vec![0u64; index.shards.len()];
    for &s in &set.samples.shard {
        samples[s as usize] += 1;
    }
    index
        .shards
        .iter()
        .zip(samples)
        .zip(&set.shard_names)
        .map(|((shard, samples), path)| {
            let mut out = json!({
                "path": path,
                "samples": samples,
                "members": shard.index.members,
                "bytes": shard.index.file_len,
                "complete": shard.index.end.is_complete(),
            });
            if !shard.index.end.is_complete() {
                out["end"] = json!(format!(
                    "at byte {}: {}",
                    shard.index.end.offset, shard.index.end.reason
                ));
            }
            out
        })
        .collect()
}

fn skipped_list(index: &ShardSetIndex, unusable: &[Unusable], set: &SetData) -> Vec<Value> {
    let mut out: Vec<Value> = index
        .shards
        .iter()
        .zip(&set.shard_names)
        .flat_map(|(shard, path)| {
            shard.index.skipped.iter().map(move |s| {
                // A sample skipped for one member names both.
                let member = match &s.reason {
                    SkipReason::UnsafeName(m)
                    | SkipReason::SparseMember(m)
                    | SkipReason::NotUtf8(m)
                    | SkipReason::TruncatedMember(m) => Some(m),
                    _ => None,
                };
                let mut entry = json!({"path": path, "member": member.unwrap_or(&s.name),
                    "offset": s.offset, "reason": s.reason.to_string()});
                if member.is_some() || matches!(s.reason, SkipReason::DuplicateSuffix(_)) {
                    entry["sample"] = json!(s.name);
                }
                entry
            })
        })
        .collect();
    out.extend(unusable.iter().map(|u| {
        json!({"path": set.shard_names[u.shard], "member": u.member, "data_offset": u.data_offset,
            "reason": format!("bad .npy header: {}", u.reason)})
    }));
    out
}
