//! A plotfile as a Zarr tree (ARCHITECTURE.md §2): group attributes from the Header,
//! `level_<l>/` with one array per field plus cell-centre coordinates, and
//! `particles/<species>/` with one array per particle component; and the planner that says
//! which bytes make each chunk.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};

use super::gather::{ElemType, Gather};
use super::header::{Header, LevelHeader};
use super::layout::{ChunkMap, LevelGrid};
use super::model::{Level, MultiFab, Plotfile, Species};
use crate::io::Extent;
use crate::source::{ChunkPlan, ChunkPlanner, Dataset, SourceError};
use crate::tree::{ArrayId, ArraySpec, ChunkIndex, DataType, Endian, Group, Node};

/// Particles per chunk of a particle array.
const PARTICLE_CHUNK: u64 = 1 << 16;
/// Coordinate values per chunk: xarray reads coordinates whole, so one chunk for any real level.
const COORD_CHUNK: u64 = 1 << 20;
const AXES: [&str; 3] = ["x", "y", "z"];

pub fn build(pf: Plotfile, path: &Path) -> Result<Dataset, SourceError> {
    let mut b = Builder::default();
    let h = &pf.header;
    let mut root = Group::default();
    let a = &mut root.attributes;
    a.insert("format".into(), json!("amrex-plotfile"));
    a.insert("version".into(), json!(h.version));
    a.insert("time".into(), json!(h.time));
    a.insert("step".into(), json!(h.levels.first().map_or(0, |l| l.step)));
    a.insert("dim".into(), json!(h.dim));
    a.insert("prob_lo".into(), json!(h.prob_lo));
    a.insert("prob_hi".into(), json!(h.prob_hi));
    a.insert("coord_sys".into(), json!(h.coord_sys));
    a.insert("ref_ratio".into(), json!(h.ref_ratio));
    a.insert("finest_level".into(), json!(h.finest_level));
    a.insert("fields".into(), json!(h.fields));

    for (l, (level, lh)) in pf.levels.into_iter().zip(&h.levels).enumerate() {
        let group = b
            .level(h, l, lh, level)
            .map_err(|e| SourceError::invalid(path, e))?;
        root.members.insert(format!("level_{l}"), Node::Group(group));
    }

    if !pf.species.is_empty() {
        let mut particles = Group::default();
        for species in pf.species {
            b.species(Arc::new(species), h.dim, &mut particles);
        }
        root.members.insert("particles".into(), Node::Group(particles));
    }
    if !pf.skipped.is_empty() {
        let list: Vec<Value> = pf
            .skipped
            .iter()
            .map(|(path, reason)| json!({"path": path, "reason": reason}))
            .collect();
        root.attributes.insert("skipped".into(), Value::Array(list));
    }
    Ok(Dataset {
        root,
        planner: Arc::new(Planner { arrays: b.arrays }),
    })
}

/// The type a MultiFab's arrays present: its FABs' type (they agree in every real file);
/// where they do not, the wider one, in the first such FAB's byte order, and the others are
/// converted on read (plotfile.md §8.3: the type is per FAB, not per file).
fn presented_type(mf: &MultiFab) -> ElemType {
    let types: Vec<ElemType> = mf
        .fabs
        .iter()
        .filter_map(|f| f.data.as_ref().ok())
        .map(|d| d.elem)
        .collect();
    let widest = types
        .iter()
        .max_by_key(|t| t.size())
        .map_or(DataType::Float64, |t| t.data_type);
    let endian = types
        .iter()
        .find(|t| t.data_type == widest)
        .map_or(Endian::Little, |t| t.endian);
    ElemType {
        data_type: widest,
        endian,
    }
}

/// Field names are whole lines (plotfile.md §8.13); a `/` cannot be part of a member name.
fn sanitize(name: &str) -> String {
    let name = name.replace('/', "_");
    match name.as_str() {
        "" | "." | ".." | "zarr.json" => format!("field_{name}"),
        _ => name,
    }
}

/// `name`, or `name_field`, `name_field2` … if the group already has that member (a field
/// called `x` next to the coordinate `x`).
fn unique_name(group: &Group, name: &str) -> String {
    if !group.members.contains_key(name) {
        return name.to_string();
    }
    (1..)
        .map(|i| {
            if i == 1 {
                format!("{name}_field")
            } else {
                format!("{name}_field{i}")
            }
        })
        .find(|n| !group.members.contains_key(n))
        .unwrap_or_default()
}

#[derive(Default)]
struct Builder {
    arrays: Vec<Plan>,
}

impl Builder {
    /// `level_<l>/`: its attributes, cell-centre coordinates and one array per field.
    fn level(&mut self, h: &Header, l: usize, lh: &LevelHeader, level: Level) -> Result<Group, String> {
        let grid = Arc::new(LevelGrid::new(
            &lh.domain,
            level.multifabs.iter().flat_map(|mf| &mf.vismf.boxes),
        ));
        let mut group = Group::default();
        let ga = &mut group.attributes;
        ga.insert("level".into(), json!(l));
        ga.insert("time".into(), json!(lh.time));
        ga.insert("step".into(), json!(lh.step));
        ga.insert("dx".into(), json!(lh.dx));
        ga.insert("domain_lo".into(), json!(lh.domain.lo));
        ga.insert("domain_hi".into(), json!(lh.domain.hi));
        let first = level.multifabs.first();
        ga.insert("boxes".into(), json!(first.map_or(0, |mf| mf.vismf.boxes.len())));
        let ngrow = first.map_or(vec![0; h.dim], |mf| mf.vismf.ngrow.clone());
        ga.insert("ngrow".into(), json!(ngrow));
        if let Some(ratio) = h.ref_ratio.get(l) {
            ga.insert("ref_ratio".into(), json!(ratio));
        }
        for (d, axis) in AXES.iter().enumerate().take(h.dim) {
            let n = lh.domain.size()[d];
            let chunk = n.clamp(1, COORD_CHUNK);
            let mut spec = self.spec(vec![n], vec![chunk], DataType::Float64);
            spec.dimension_names = Some(vec![axis.to_string()]);
            spec.attributes
                .insert("long_name".into(), json!(format!("cell-centre {axis}")));
            self.arrays.push(Plan::Centres {
                origin: h.prob_lo[d],
                dx: lh.dx[d],
                chunk,
            });
            group
                .members
                .insert(axis.to_string(), Node::Array(Arc::new(spec)));
        }
        for mf in level.multifabs {
            self.fields(h, &grid, Arc::new(mf), &mut group)
                .map_err(|e| format!("level {l}: {e}"))?;
        }
        Ok(group)
    }

    /// One array per component of `mf`, named by its field.
    fn fields(
        &mut self,
        h: &Header,
        grid: &Arc<LevelGrid>,
        mf: Arc<MultiFab>,
        group: &mut Group,
    ) -> Result<(), String> {
        let map = Arc::new(
            grid.chunk_map(&mf.vismf.boxes)
                .map_err(|e| format!("{}: {e}", mf.path))?,
        );
        let index = if grid.covers_all(&map) {
            ChunkIndex::All
        } else {
            ChunkIndex::Listed(Arc::new(map.keys().cloned().collect::<BTreeSet<_>>()))
        };
        let elem = presented_type(&mf);
        let dims: Vec<String> = AXES[..h.dim].iter().rev().map(|s| s.to_string()).collect();
        for (comp, field) in mf.fields().enumerate() {
            let original = &h.fields[field];
            let mut spec = self.spec(grid.shape(), grid.chunk_shape(), elem.data_type);
            spec.endian = elem.endian;
            spec.dimension_names = Some(dims.clone());
            spec.chunks = index.clone();
            let sa = &mut spec.attributes;
            sa.insert("field".into(), json!(original));
            sa.insert("centering".into(), json!("cell"));
            for (key, stats) in [("min", &mf.vismf.min), ("max", &mf.vismf.max)] {
                if let Some(v) = stats.as_ref().and_then(|s| s.get(comp)).filter(|v| v.is_finite()) {
                    sa.insert(key.into(), json!(v));
                }
            }
            self.arrays.push(Plan::Field(FieldPlan {
                grid: grid.clone(),
                mf: mf.clone(),
                map: map.clone(),
                comp: comp as u64,
                elem,
            }));
            let name = unique_name(group, &sanitize(original));
            group.members.insert(name, Node::Array(Arc::new(spec)));
        }
        Ok(())
    }

    /// A new array spec whose id is the next plan's index.
    fn spec(&self, shape: Vec<u64>, chunk: Vec<u64>, data_type: DataType) -> ArraySpec {
        ArraySpec::new(ArrayId(self.arrays.len() as u32), shape, chunk, data_type)
    }

    fn species(&mut self, species: Arc<Species>, dim: usize, parent: &mut Group) {
        let h = &species.header;
        let mut group = Group::default();
        group.attributes.insert("version".into(), json!(h.version));
        group.attributes.insert("count".into(), json!(h.total));
        let mut starts = Vec::with_capacity(h.grids.len());
        let mut total = 0;
        for g in &h.grids {
            starts.push(total);
            total += g.count;
        }
        let starts = Arc::new(starts);
        let int = ElemType {
            data_type: DataType::Int32,
            endian: Endian::Little,
        };
        let real = ElemType {
            data_type: h.real_type,
            endian: Endian::Little,
        };
        let columns = AXES[..dim]
            .iter()
            .map(|a| a.to_string())
            .chain(h.real_names.iter().cloned())
            .enumerate()
            .map(|(k, name)| (name, Column::Real(k as u64), real))
            .chain(
                ["id", "cpu"]
                    .iter()
                    .map(|s| s.to_string())
                    .chain(h.int_names.iter().cloned())
                    .enumerate()
                    .map(|(k, name)| (name, Column::Int(k as u64), int)),
            );
        for (name, column, elem) in columns {
            let mut spec = self.spec(
                vec![total],
                vec![PARTICLE_CHUNK.min(total).max(1)],
                elem.data_type,
            );
            spec.dimension_names = Some(vec!["particle".into()]);
            self.arrays.push(Plan::Particle(ParticlePlan {
                species: species.clone(),
                starts: starts.clone(),
                column,
                elem,
                chunk: spec.chunk_shape[0],
            }));
            let name = unique_name(&group, &sanitize(&name));
            group.members.insert(name, Node::Array(Arc::new(spec)));
        }
        parent.members.insert(sanitize(&species.name), Node::Group(group));
    }
}

/// How each array's chunks are made, indexed by `ArrayId`.
struct Planner {
    arrays: Vec<Plan>,
}

enum Plan {
    Field(FieldPlan),
    Particle(ParticlePlan),
    /// Cell centres `origin + (i + 0.5)·dx`, computed per chunk on read.
    Centres {
        origin: f64,
        dx: f64,
        chunk: u64,
    },
}

struct FieldPlan {
    grid: Arc<LevelGrid>,
    mf: Arc<MultiFab>,
    map: Arc<ChunkMap>,
    comp: u64,
    elem: ElemType,
}

struct ParticlePlan {
    species: Arc<Species>,
    /// First particle index of each grid.
    starts: Arc<Vec<u64>>,
    column: Column,
    elem: ElemType,
    chunk: u64,
}

#[derive(Clone, Copy)]
enum Column {
    Int(u64),
    Real(u64),
}

impl ChunkPlanner for Planner {
    fn plan(&self, array: ArrayId, coords: &[u64]) -> Result<ChunkPlan, SourceError> {
        match self.arrays.get(array.0 as usize) {
            Some(Plan::Field(field)) => field.plan(coords),
            Some(Plan::Particle(particles)) => particles.plan(coords),
            Some(Plan::Centres { origin, dx, chunk }) => {
                let first = coords.first().copied().unwrap_or(0) * chunk;
                let values =
                    (first..first + chunk).flat_map(|i| (origin + (i as f64 + 0.5) * dx).to_le_bytes());
                Ok(ChunkPlan::inline(values.collect()))
            }
            None => Err(SourceError::Invalid {
                path: String::new(),
                message: format!("no array {array:?}"),
            }),
        }
    }
}

impl FieldPlan {
    fn plan(&self, coords: &[u64]) -> Result<ChunkPlan, SourceError> {
        let no_box = || SourceError::Invalid {
            path: self.mf.path.clone(),
            message: format!("no box covers chunk {coords:?}"),
        };
        let boxes = self.map.get(coords).ok_or_else(no_box)?;
        let lo = self.grid.chunk_lo(coords);
        let chunk = &self.grid.chunk;
        let size = self.elem.size();
        let fab_data = |i: u32| {
            let fab = self.mf.fabs.get(i as usize).ok_or_else(no_box)?;
            let data = fab.data.as_ref().map_err(|e| SourceError::Invalid {
                path: fab.file.path().display().to_string(),
                message: e.clone(),
            })?;
            Ok::<_, SourceError>((fab, *data))
        };

        // A chunk that is exactly one ghost-free box of the presented type is one byte range.
        if let [only] = boxes.as_slice() {
            let (fab, data) = fab_data(*only)?;
            if fab.stored == fab.valid
                && fab.valid.lo == lo
                && fab.valid.size() == *chunk
                && data.elem == self.elem
            {
                let len = fab.valid.num_points() * size;
                return Ok(ChunkPlan::contiguous(Extent {
                    file: fab.file.clone(),
                    offset: data.start + self.comp * len,
                    len,
                }));
            }
        }

        // Otherwise gather rows of x from each box that overlaps the chunk.
        let mut gather = Gather::new(self.elem, self.grid.chunk_cells() as usize);
        let pad =
            |v: &[i64], fill: i64| -> [i64; 3] { std::array::from_fn(|d| v.get(d).copied().unwrap_or(fill)) };
        let clo = pad(&lo, 0);
        let cn = pad(&chunk.iter().map(|c| *c as i64).collect::<Vec<_>>(), 1);
        for &i in boxes {
            let (fab, data) = fab_data(i)?;
            let (vlo, vhi) = (pad(&fab.valid.lo, 0), pad(&fab.valid.hi, 0));
            let slo = pad(&fab.stored.lo, 0);
            let sn = pad(
                &fab.stored.size().iter().map(|s| *s as i64).collect::<Vec<_>>(),
                1,
            );
            let ilo: [i64; 3] = std::array::from_fn(|d| vlo[d].max(clo[d]));
            let ihi: [i64; 3] = std::array::from_fn(|d| vhi[d].min(clo[d] + cn[d] - 1));
            if (0..3).any(|d| ihi[d] < ilo[d]) {
                continue;
            }
            let esize = data.elem.size();
            let base = data.start + self.comp * fab.stored.num_points() * esize;
            let n = (ihi[0] - ilo[0] + 1) as usize;
            for z in ilo[2]..=ihi[2] {
                for y in ilo[1]..=ihi[1] {
                    let src = ((z - slo[2]) * sn[1] + (y - slo[1])) * sn[0] + (ilo[0] - slo[0]);
                    let dst = ((z - clo[2]) * cn[1] + (y - clo[1])) * cn[0] + (ilo[0] - clo[0]);
                    gather.add(
                        &fab.file,
                        base + src as u64 * esize,
                        data.elem,
                        1,
                        n,
                        dst as usize,
                    );
                }
            }
        }
        Ok(gather.into_plan())
    }
}

impl ParticlePlan {
    fn plan(&self, coords: &[u64]) -> Result<ChunkPlan, SourceError> {
        let h = &self.species.header;
        let first = coords.first().copied().unwrap_or(0) * self.chunk;
        let end = (first + self.chunk).min(h.total);
        let mut gather = Gather::new(self.elem, self.chunk as usize);
        let (ints, reals) = (h.ints_per_particle(), h.reals_per_particle());
        let real_size = h.real_type.size();
        // Grids are in particle order: start at the last one beginning at or before `first`.
        let from = self.starts.partition_point(|s| *s <= first).saturating_sub(1);
        for (grid, start) in h.grids.iter().zip(self.starts.iter()).skip(from) {
            if *start >= end {
                break;
            }
            let r0 = first.max(*start) - start;
            let r1 = end.min(start + grid.count) - start;
            if r1 <= r0 {
                continue;
            }
            // Header values are unchecked: saturate, and let an impossible offset fail the read.
            let (stride, offset) = match self.column {
                Column::Int(k) => (
                    ints,
                    grid.offset.saturating_add((r0 * ints + k).saturating_mul(4)),
                ),
                Column::Real(k) => {
                    let ints_bytes = grid.count.saturating_mul(ints * 4);
                    let at = (r0 * reals + k).saturating_mul(real_size);
                    (reals, grid.offset.saturating_add(ints_bytes).saturating_add(at))
                }
            };
            let file =
                self.species
                    .files
                    .get(&(grid.level, grid.file))
                    .ok_or_else(|| SourceError::Invalid {
                        path: self.species.name.clone(),
                        message: format!("no data file {} for level {}", grid.file, grid.level),
                    })?;
            let dst = (start + r0 - first) as usize;
            gather.add(file, offset, self.elem, stride as usize, (r1 - r0) as usize, dst);
        }
        Ok(gather.into_plan())
    }
}
