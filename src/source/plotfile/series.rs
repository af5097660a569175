//! The time-series view of a run: the plotfiles `plt00000`, `plt00100` … of one directory
//! that share their fields and level-0 grid become one more group, `plt_series`, whose
//! arrays are the level-0 fields stacked along a leading `time` dimension. Nothing is
//! copied: chunk `(t, …)` is chunk `(…)` of the `t`-th plotfile.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{Value, json};
use tracing::debug;

use crate::source::{ChunkPlan, ChunkPlanner, Dataset, Member, SourceError};
use crate::tree::{ArrayId, ArraySpec, ChunkIndex, DataType, Group, Node};

/// Level-0 group attributes that must agree for plotfiles to share a grid.
const GRID_ATTRIBUTES: &[&str] = &["dx", "domain_lo", "domain_hi"];

pub fn build(members: &[Member]) -> Vec<(String, Dataset)> {
    let mut runs: BTreeMap<String, Vec<&Member>> = BTreeMap::new();
    for member in members {
        if let Some(prefix) = run_prefix(member.name) {
            runs.entry(prefix).or_default().push(member);
        }
    }
    let mut out = Vec::new();
    for (prefix, mut run) in runs {
        if run.len() < 2 {
            continue;
        }
        run.sort_by_key(|m| m.name);
        let name = if prefix.is_empty() {
            "series".to_string()
        } else {
            format!("{prefix}_series")
        };
        match stack(&run) {
            Ok(dataset) => out.push((name, dataset)),
            Err(reason) => debug!(series = name, "no series view: {reason}"),
        }
    }
    out
}

/// `plt00100` → `plt`; names that do not end in digits are not part of a run.
fn run_prefix(name: &str) -> Option<String> {
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit());
    (stem.len() < name.len()).then(|| stem.trim_end_matches(['_', '-', '.']).to_string())
}

fn level0<'a>(member: &'a Member) -> Result<&'a Group, String> {
    member
        .root
        .subgroup(&["level_0".to_string()])
        .ok_or_else(|| format!("{} has no level_0", member.name))
}

/// Why `other` cannot join a series whose first plotfile is `first`, if it cannot.
fn incompatible(first: &Member, other: &Member) -> Result<(), String> {
    let (a, b) = (level0(first)?, level0(other)?);
    if first.root.attributes.get("fields") != other.root.attributes.get("fields") {
        return Err("different fields".into());
    }
    for key in GRID_ATTRIBUTES {
        if a.attributes.get(*key) != b.attributes.get(*key) {
            return Err(format!("different level-0 {key}"));
        }
    }
    if a.members.keys().ne(b.members.keys()) {
        return Err("different level-0 arrays".into());
    }
    for (name, node) in &a.members {
        let same = match (node, b.members.get(name)) {
            (Node::Array(x), Some(Node::Array(y))) => {
                x.shape == y.shape
                    && x.chunk_shape == y.chunk_shape
                    && x.data_type == y.data_type
                    && x.endian == y.endian
                    && x.chunks == y.chunks
            }
            _ => false,
        };
        if !same {
            return Err(format!("level-0 '{name}' differs in shape, chunks or type"));
        }
    }
    Ok(())
}

fn stack(run: &[&Member]) -> Result<Dataset, String> {
    let first = run[0];
    let base = level0(first)?;
    let mut included = vec![first];
    let mut excluded = Vec::new();
    for member in &run[1..] {
        match incompatible(first, member) {
            Ok(()) => included.push(member),
            Err(reason) => excluded.push(json!({"path": member.name, "reason": reason})),
        }
    }
    if included.len() < 2 {
        return Err("fewer than two plotfiles share the first one's grid".into());
    }
    let nt = included.len() as u64;

    let mut root = Group::default();
    let a = &mut root.attributes;
    a.insert("format".into(), json!("amrex-plotfile-series"));
    a.insert(
        "plotfiles".into(),
        json!(included.iter().map(|m| m.name).collect::<Vec<_>>()),
    );
    for key in ["fields", "dim", "prob_lo", "prob_hi", "coord_sys"] {
        if let Some(v) = first.root.attributes.get(key) {
            a.insert(key.into(), v.clone());
        }
    }
    for key in GRID_ATTRIBUTES {
        if let Some(v) = base.attributes.get(*key) {
            a.insert((*key).into(), v.clone());
        }
    }
    if !excluded.is_empty() {
        a.insert("excluded".into(), Value::Array(excluded));
    }

    let mut plans = Vec::new();
    for (name, node) in &base.members {
        let Node::Array(spec) = node else { continue };
        let mut stacked = (**spec).clone();
        stacked.id = ArrayId(plans.len() as u32);
        if is_coordinate(name, spec) {
            plans.push(SeriesPlan::Same(first.planner.clone(), spec.id));
        } else {
            stacked.shape.insert(0, nt);
            stacked.chunk_shape.insert(0, 1);
            if let Some(dims) = stacked.dimension_names.as_mut() {
                dims.insert(0, "time".into());
            }
            if let ChunkIndex::Listed(set) = &spec.chunks {
                let all = (0..nt).flat_map(|t| set.iter().map(move |c| [&[t][..], c].concat()));
                stacked.chunks = ChunkIndex::Listed(Arc::new(all.collect::<BTreeSet<_>>()));
            }
            let sources = included
                .iter()
                .map(|m| match level0(m).ok().and_then(|g| g.members.get(name)) {
                    Some(Node::Array(s)) => Ok((m.planner.clone(), s.id)),
                    _ => Err(format!("{} lost level-0 '{name}'", m.name)),
                })
                .collect::<Result<_, _>>()?;
            plans.push(SeriesPlan::Stacked(sources));
        }
        root.members.insert(name.clone(), Node::Array(Arc::new(stacked)));
    }
    let per_time = |key: &'static str| included.iter().map(move |m| m.root.attributes.get(key));
    let times: Vec<u8> = per_time("time")
        .flat_map(|v| v.and_then(Value::as_f64).unwrap_or(f64::NAN).to_le_bytes())
        .collect();
    let steps: Vec<u8> = per_time("step")
        .flat_map(|v| v.and_then(Value::as_i64).unwrap_or(-1).to_le_bytes())
        .collect();
    for (name, bytes, data_type) in [
        ("time", times, DataType::Float64),
        ("step", steps, DataType::Int64),
    ] {
        let mut spec = ArraySpec::new(ArrayId(plans.len() as u32), vec![nt], vec![nt], data_type);
        spec.dimension_names = Some(vec!["time".into()]);
        plans.push(SeriesPlan::Inline(Arc::new(bytes)));
        root.members.insert(name.into(), Node::Array(Arc::new(spec)));
    }
    Ok(Dataset {
        root,
        planner: Arc::new(SeriesPlanner { plans }),
    })
}

/// A 1-D array named after its own dimension: a coordinate, the same in every plotfile.
fn is_coordinate(name: &str, spec: &ArraySpec) -> bool {
    spec.dimension_names.as_deref() == Some(&[name.to_string()][..])
}

enum SeriesPlan {
    /// Chunk `(t, …)` is the `t`-th plotfile's chunk `(…)` of this array.
    Stacked(Vec<(Arc<dyn ChunkPlanner>, ArrayId)>),
    /// The first plotfile's array as is.
    Same(Arc<dyn ChunkPlanner>, ArrayId),
    Inline(Arc<Vec<u8>>),
}

struct SeriesPlanner {
    plans: Vec<SeriesPlan>,
}

impl ChunkPlanner for SeriesPlanner {
    fn plan(&self, array: ArrayId, coords: &[u64]) -> Result<ChunkPlan, SourceError> {
        let missing = || SourceError::Invalid {
            path: "series".into(),
            message: format!("no chunk {coords:?} of array {array:?}"),
        };
        match self.plans.get(array.0 as usize).ok_or_else(missing)? {
            SeriesPlan::Stacked(sources) => {
                let (t, rest) = coords.split_first().ok_or_else(missing)?;
                let (planner, id) = sources.get(*t as usize).ok_or_else(missing)?;
                planner.plan(*id, rest)
            }
            SeriesPlan::Same(planner, id) => planner.plan(*id, coords),
            SeriesPlan::Inline(bytes) => Ok(ChunkPlan::inline(bytes.to_vec())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_prefixes() {
        assert_eq!(run_prefix("plt00100").as_deref(), Some("plt"));
        assert_eq!(run_prefix("smallplt_0001").as_deref(), Some("smallplt"));
        assert_eq!(run_prefix("00042").as_deref(), Some(""));
        assert_eq!(run_prefix("pf3d_v1_f64le"), None);
    }
}
