//! An FST file as a Zarr tree (ARCHITECTURE.md §2): one array per variable in fstd2nc's
//! layout `(time, level, [k], y, x)`, one chunk per record; the coordinates fstd2nc adds
//! (time, level, grid axes, 2-D lat/lon, lead and reference times, grid mappings); and
//! `records/`, the whole directory as a table.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::date::civil_from_days;
use super::file::{Container, ReadAt};
use super::geometry::{self, Geometry, Positional, Refs};
use super::ip;
use super::packing::{self, Element};
use super::planner::{Builder, packing_of};
use super::record::{Directory, Record};
use super::table;
use super::variables::{self, Variable};
use crate::io::SourceFile;
use crate::source::{Dataset, SourceError};
use crate::tree::{ArraySpec, Attributes, DataType, Group, Node};

/// Positional records bigger than this are not believed (a Y grid of 2^24 points is 64 MiB).
const MAX_POSITIONAL_BYTES: u64 = 1 << 26;

pub fn build(path: &Path, container: Container, dir: Directory) -> Result<Dataset, SourceError> {
    let file = File::open(path).map_err(|e| SourceError::io(path, e))?;
    Ok(build_from(path, &file, container, dir))
}

/// [`build`] with the file's bytes read through `file` (the fuzz targets hold an image).
pub fn build_from<R: ReadAt + ?Sized>(
    path: &Path,
    file: &R,
    container: Container,
    dir: Directory,
) -> Dataset {
    let records: Vec<Arc<Record>> = dir.records.into_iter().map(Arc::new).collect();
    let mut skipped = dir.skipped;
    let (vars, why) = variables::group(&records);
    skipped.extend(why);

    let positional = PositionalIndex::new(&records);
    let mut grids: HashMap<(String, u32, u32, [u32; 4]), Arc<Geometry>> = HashMap::new();
    let mut layout = Layout::default();
    for var in &vars {
        let k = &var.key;
        let grid_key = (k.grtyp.clone(), k.ni, k.nj, k.ig);
        let geo = grids
            .entry(grid_key)
            .or_insert_with(|| {
                let refs = match k.grtyp.as_str() {
                    "Z" | "Y" => positional.axes(file, k.ig).map(Refs::Axes),
                    "U" => positional
                        .values(file, "^>", k.ig)
                        .map(|(_, d)| Refs::Supergrid(d)),
                    _ => None,
                };
                let geo = geometry::geometry(&k.grtyp, k.ni, k.nj, k.ig, refs.as_ref());
                if let Some(note) = &geo.note {
                    tracing::debug!(path = %path.display(), "{} grid {}x{}: {note}", k.grtyp, k.ni, k.nj);
                }
                Arc::new(geo)
            })
            .clone();
        layout.add(var, geo);
    }

    let mut b = Builder::default();
    let mut root = Group::default();
    let var_names = layout.into_arrays(&vars, &mut b, &mut root);
    let mut variable_of: HashMap<*const Record, String> = HashMap::new();
    for (var, name) in vars.iter().zip(&var_names) {
        for r in var.records.values() {
            variable_of.insert(Arc::as_ptr(r), name.clone());
        }
    }
    let a = &mut root.attributes;
    a.insert("format".into(), json!("rpn-standard-file"));
    a.insert("container".into(), json!(container.name()));
    a.insert(
        "records".into(),
        json!(records.iter().filter(|r| !r.deleted).count()),
    );
    a.insert(
        "deleted_records".into(),
        json!(records.iter().filter(|r| r.deleted).count()),
    );
    if let Some(first) = skipped.first() {
        tracing::warn!(
            path = %path.display(),
            "fst {}: {} records not shown (listed in the group's `skipped`), first: {first}",
            path.display(),
            skipped.len()
        );
        a.insert("skipped".into(), json!(skipped));
    }
    root.members.insert(
        "records".into(),
        Node::Group(table::build(&records, &variable_of, &mut b)),
    );
    Dataset {
        root,
        planner: Arc::new(b.finish(SourceFile::new(path))),
    }
}

/// The `>>`/`^^`/`^>` records, by (nomvar, ip1, ip2, ip3).
struct PositionalIndex<'a> {
    by_ip: HashMap<(&'a str, u32, u32, u32), &'a Record>,
}

impl<'a> PositionalIndex<'a> {
    fn new(records: &'a [Arc<Record>]) -> Self {
        let mut by_ip = HashMap::new();
        for r in records.iter().filter(|r| !r.deleted) {
            let k = &r.keys;
            if matches!(k.nomvar.as_str(), ">>" | "^^" | "^>") {
                by_ip.insert((k.nomvar.as_str(), k.ip1, k.ip2, k.ip3), r.as_ref());
            }
        }
        PositionalIndex { by_ip }
    }

    /// The decoded values of the `nomvar` record whose ip1..ip3 are `ig1..ig3`, as f32.
    fn values<R: ReadAt + ?Sized>(
        &self,
        file: &R,
        nomvar: &str,
        ig: [u32; 4],
    ) -> Option<(&'a Record, Vec<f32>)> {
        let r = *self.by_ip.get(&(nomvar, ig[0], ig[1], ig[2]))?;
        if r.payload_len > MAX_POSITIONAL_BYTES {
            return None;
        }
        let mut bytes = vec![0u8; (r.header_len() + r.payload_len) as usize];
        file.read_exact_at(&mut bytes, r.offset).ok()?;
        let (header, payload) = bytes.split_at(r.header_len() as usize);
        r.check_header(header).ok()?;
        let p = packing_of(r);
        let values = packing::unpack(&p, payload, r.order).ok()?;
        let floats = match p.element().ok()? {
            Element::F32 => values
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Element::F64 => values
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or_default()) as f32)
                .collect(),
            _ => return None,
        };
        Some((r, floats))
    }

    /// The `>>`/`^^` pair a Z or Y grid with these ig1..ig3 refers to.
    fn axes<R: ReadAt + ?Sized>(&self, file: &R, ig: [u32; 4]) -> Option<Positional> {
        let (ax_record, ax) = self.values(file, ">>", ig)?;
        let (_, ay) = self.values(file, "^^", ig)?;
        let k = &ax_record.keys;
        Some(Positional {
            ax,
            ay,
            grref: k.grtyp.clone(),
            ig: [k.ig1, k.ig2, k.ig3, k.ig4],
        })
    }
}

/// Values of an axis; axes with equal names and values are one shared dimension.
#[derive(Clone, Debug, PartialEq)]
enum AxisValues {
    /// Seconds since 1970.
    Time(Vec<i64>),
    Real(Vec<f32>),
    /// A dimension without a coordinate variable.
    Len(u64),
}

impl AxisValues {
    fn len(&self) -> u64 {
        match self {
            AxisValues::Time(v) => v.len() as u64,
            AxisValues::Real(v) => v.len() as u64,
            AxisValues::Len(n) => *n,
        }
    }
}

struct Axis {
    base: String,
    values: AxisValues,
    attrs: Map<String, Value>,
}

/// Everything that is not a data variable but gets a name: fstd2nc numbers clashes of
/// these `_1`, `_2` … in order of first use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Object {
    Data(usize),
    Axis(usize),
    /// 2-D latitudes and longitudes of the grid of data variable n.
    Lat(usize),
    Lon(usize),
    LeadTime(usize),
    RefTime(usize),
    Mapping(usize),
}

#[derive(Default)]
struct Layout {
    axes: Vec<Axis>,
    /// Per variable: its dimension axes, geometry and the index of its 2-D lat/lon owner.
    dims: Vec<Vec<usize>>,
    geos: Vec<Arc<Geometry>>,
    lat_lon_owner: Vec<Option<usize>>,
    mappings: Vec<(&'static str, Map<String, Value>)>,
    mapping_of: Vec<Vec<usize>>,
    objects: Vec<Object>,
    grid_owner: HashMap<*const Geometry, usize>,
}

impl Layout {
    fn axis(&mut self, base: &str, values: AxisValues, attrs: Map<String, Value>) -> usize {
        if let Some(i) = self
            .axes
            .iter()
            .position(|a| a.base == base && a.values == values)
        {
            return i;
        }
        self.axes.push(Axis {
            base: base.to_string(),
            values,
            attrs,
        });
        self.objects.push(Object::Axis(self.axes.len() - 1));
        self.axes.len() - 1
    }

    fn add(&mut self, var: &Variable, geo: Arc<Geometry>) {
        let v = self.dims.len();
        self.objects.push(Object::Data(v));
        let k = &var.key;
        let mut dims = Vec::new();
        if let Some(times) = &var.times {
            let known = self.axes.len();
            let t = self.axis("time", AxisValues::Time(times.clone()), time_attrs());
            dims.push(t);
            if t == known {
                self.objects.push(Object::LeadTime(t));
                self.objects.push(Object::RefTime(t));
            }
        }
        if let Some(levels) = &var.levels {
            let (name, attrs) = level_axis(k.kind);
            dims.push(self.axis(name, AxisValues::Real(levels.clone()), attrs));
        }
        if k.nk > 1 {
            dims.push(self.axis("k", AxisValues::Len(u64::from(k.nk)), Map::new()));
        }
        for (axis, n, skip) in [(&geo.y, k.nj, k.nj == 1), (&geo.x, k.ni, false)] {
            if skip {
                continue;
            }
            let values = match &axis.values {
                Some(v) => AxisValues::Real(v.clone()),
                None => AxisValues::Len(u64::from(n)),
            };
            dims.push(self.axis(axis.name, values, axis.attrs.clone()));
        }
        let owner = geo.lat_lon.as_ref().map(|_| {
            *self.grid_owner.entry(Arc::as_ptr(&geo)).or_insert_with(|| {
                self.objects.push(Object::Lon(v));
                self.objects.push(Object::Lat(v));
                v
            })
        });
        let mapping = geo
            .mappings
            .iter()
            .map(|m| {
                self.mappings.iter().position(|x| x == m).unwrap_or_else(|| {
                    self.mappings.push(m.clone());
                    self.objects.push(Object::Mapping(self.mappings.len() - 1));
                    self.mappings.len() - 1
                })
            })
            .collect();
        self.dims.push(dims);
        self.geos.push(geo);
        self.lat_lon_owner.push(owner);
        self.mapping_of.push(mapping);
    }

    /// Names every object as fstd2nc would and adds the arrays to `root`; returns the
    /// variables' names.
    fn into_arrays(self, vars: &[Variable], b: &mut Builder, root: &mut Group) -> Vec<String> {
        // Axes first: distinct axes sharing a name are numbered 1, 2 … in order of use.
        let mut per_base: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, a) in self.axes.iter().enumerate() {
            per_base.entry(&a.base).or_default().push(i);
        }
        let mut axis_names: Vec<String> = self.axes.iter().map(|a| a.base.clone()).collect();
        for members in per_base.values().filter(|m| m.len() > 1) {
            for (n, i) in members.iter().enumerate() {
                axis_names[*i] = format!("{}{}", self.axes[*i].base, n + 1);
            }
        }
        let (names, ids): (Vec<String>, Vec<Option<Vec<String>>>) = self
            .objects
            .iter()
            .map(|o| match *o {
                Object::Data(v) => (node_name(&vars[v].key.nomvar), Some(vars[v].key.id_parts())),
                Object::Axis(a) => (axis_names[a].clone(), None),
                Object::Lat(_) => ("lat".into(), None),
                Object::Lon(_) => ("lon".into(), None),
                Object::LeadTime(_) => ("leadtime".into(), None),
                Object::RefTime(_) => ("reftime".into(), None),
                Object::Mapping(m) => (self.mappings[m].0.to_string(), None),
            })
            .unzip();
        let names = variables::unique_names(&names, &ids);
        let name: HashMap<Object, String> = self.objects.iter().copied().zip(names).collect();
        let axis_name = |a: usize| name[&Object::Axis(a)].clone();

        for (object, object_name) in &name {
            let spec = match *object {
                Object::Data(v) => self.data_array(&vars[v], v, b, &name),
                Object::Axis(a) => match self.axis_array(a, &axis_name(a), b) {
                    Some(spec) => spec,
                    None => continue,
                },
                Object::Lat(v) | Object::Lon(v) => {
                    let lat = matches!(object, Object::Lat(_));
                    self.lat_lon_array(v, lat, vars[v].key.nj > 1, b, &name)
                }
                Object::LeadTime(t) => {
                    let times = self.time_values(t);
                    let lead = lead_of(vars, &self.dims, t);
                    let mut attrs = Map::new();
                    attrs.insert("standard_name".into(), json!("forecast_period"));
                    attrs.insert(
                        "long_name".into(),
                        json!("Lead time (since forecast_reference_time)"),
                    );
                    attrs.insert("units".into(), json!("seconds"));
                    // What xarray writes for timedeltas, so that it decodes them by default.
                    attrs.insert("dtype".into(), json!("timedelta64[ns]"));
                    let bytes = lead
                        .iter()
                        .take(times.len())
                        .flat_map(|s| s.to_le_bytes())
                        .collect();
                    b.inline(
                        vec![times.len() as u64],
                        DataType::Int64,
                        bytes,
                        &[&axis_name(t)],
                        attrs,
                    )
                }
                Object::RefTime(t) => {
                    let times = self.time_values(t);
                    let lead = lead_of(vars, &self.dims, t);
                    let origin = times.first().copied().unwrap_or(0);
                    let reference = origin - lead.first().copied().unwrap_or(0);
                    let mut attrs = Map::new();
                    attrs.insert("standard_name".into(), json!("forecast_reference_time"));
                    attrs.insert("units".into(), json!(seconds_since(origin)));
                    attrs.insert("calendar".into(), json!("proleptic_gregorian"));
                    let bytes = (reference - origin).to_le_bytes().to_vec();
                    b.inline(Vec::new(), DataType::Int64, bytes, &[], attrs)
                }
                Object::Mapping(m) => {
                    let attrs = self.mappings[m].1.clone();
                    b.inline(Vec::new(), DataType::Int32, vec![0; 4], &[], attrs)
                }
            };
            root.members
                .insert(object_name.clone(), Node::Array(Arc::new(spec)));
        }
        (0..vars.len()).map(|v| name[&Object::Data(v)].clone()).collect()
    }

    fn time_values(&self, t: usize) -> Vec<i64> {
        match &self.axes[t].values {
            AxisValues::Time(v) => v.clone(),
            _ => Vec::new(),
        }
    }

    fn axis_array(&self, a: usize, name: &str, b: &mut Builder) -> Option<ArraySpec> {
        let axis = &self.axes[a];
        let mut attrs = axis.attrs.clone();
        if let Some(Value::String(terms)) = attrs.get("formula_terms") {
            // fstd2nc's sigma terms name the axis itself.
            let terms = terms.replace("{axis}", name);
            attrs.insert("formula_terms".into(), json!(terms));
        }
        match &axis.values {
            AxisValues::Len(_) => None,
            AxisValues::Real(v) => Some(b.inline(
                vec![v.len() as u64],
                DataType::Float32,
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                &[name],
                attrs,
            )),
            AxisValues::Time(v) => {
                let origin = v.first().copied().unwrap_or(0);
                attrs.insert("units".into(), json!(seconds_since(origin)));
                attrs.insert("calendar".into(), json!("proleptic_gregorian"));
                Some(b.inline(
                    vec![v.len() as u64],
                    DataType::Int64,
                    v.iter().flat_map(|t| (t - origin).to_le_bytes()).collect(),
                    &[name],
                    attrs,
                ))
            }
        }
    }

    fn lat_lon_array(
        &self,
        v: usize,
        lat: bool,
        two_d: bool,
        b: &mut Builder,
        names: &HashMap<Object, String>,
    ) -> ArraySpec {
        let geo = &self.geos[v];
        let (lats, lons) = geo
            .lat_lon
            .as_ref()
            .map(|(a, o)| (a.as_slice(), o.as_slice()))
            .unwrap_or_default();
        let values = if lat { lats } else { lons };
        // The variable's grid dimensions: (y, x), or (x) when nj is 1.
        let dims = &self.dims[v];
        let spatial = &dims[dims.len() - if two_d { 2 } else { 1 }..];
        let shape: Vec<u64> = spatial.iter().map(|a| self.axes[*a].values.len()).collect();
        let names: Vec<String> = spatial.iter().map(|a| names[&Object::Axis(*a)].clone()).collect();
        let attrs = if lat {
            json!({"long_name": "latitude", "standard_name": "latitude", "units": "degrees_north"})
        } else {
            json!({"long_name": "longitude", "standard_name": "longitude", "units": "degrees_east"})
        };
        let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
        b.inline(
            shape,
            DataType::Float32,
            values.iter().flat_map(|x| x.to_le_bytes()).collect(),
            &name_refs,
            attrs.as_object().cloned().unwrap_or_default(),
        )
    }

    fn data_array(
        &self,
        var: &Variable,
        v: usize,
        b: &mut Builder,
        names: &HashMap<Object, String>,
    ) -> ArraySpec {
        let dims = &self.dims[v];
        let shape: Vec<u64> = dims.iter().map(|a| self.axes[*a].values.len()).collect();
        let outer = usize::from(var.times.is_some()) + usize::from(var.levels.is_some());
        let mut chunk_shape = shape.clone();
        chunk_shape[..outer].fill(1);
        let first = var.records.values().next();
        let packing = first.map(|r| packing_of(r));
        let mut element = packing.and_then(|p| p.element().ok()).unwrap_or(Element::F32);
        let missing_flag = first.is_some_and(|r| r.keys.datyp & 64 != 0);
        if missing_flag && !matches!(element, Element::F32 | Element::F64) {
            // Integers cannot hold "missing": show them as f64 with NaN (fstd2nc shows f64
            // with 1e30 there).
            element = Element::F64;
        }
        let chunks = var
            .records
            .iter()
            .map(|((t, l), r)| {
                let mut coords = Vec::with_capacity(shape.len());
                if var.times.is_some() {
                    coords.push(*t as u64);
                }
                if var.levels.is_some() {
                    coords.push(*l as u64);
                }
                coords.resize(shape.len(), 0);
                (coords, r.clone())
            })
            .collect();
        let mut spec = b.records(
            shape,
            chunk_shape,
            element,
            missing_flag.then_some(f64::NAN),
            chunks,
        );
        spec.dimension_names = Some(dims.iter().map(|a| names[&Object::Axis(*a)].clone()).collect());
        let attrs = &mut spec.attributes;
        if !self.mapping_of[v].is_empty() {
            let list: Vec<&str> = self.mapping_of[v]
                .iter()
                .map(|m| names[&Object::Mapping(*m)].as_str())
                .collect();
            attrs.insert("grid_mapping".into(), json!(list.join(" ")));
        }
        if let Some(note) = &self.geos[v].note {
            attrs.insert("grid_note".into(), json!(format!("no lat/lon: {note}")));
        }
        if let Some(owner) = self.lat_lon_owner[v] {
            let coords = format!("{} {}", names[&Object::Lon(owner)], names[&Object::Lat(owner)]);
            attrs.insert("coordinates".into(), json!(coords));
        }
        rpn_attributes(var, attrs);
        spec
    }
}

/// Lead times of time axis `t`, from the first variable that uses it.
fn lead_of(vars: &[Variable], dims: &[Vec<usize>], t: usize) -> Vec<i64> {
    dims.iter()
        .position(|d| d.first() == Some(&t))
        .map(|v| vars[v].leadtimes.clone())
        .unwrap_or_default()
}

fn time_attrs() -> Map<String, Value> {
    let v = json!({"standard_name": "time", "long_name": "Validity time", "axis": "T"});
    v.as_object().cloned().unwrap_or_default()
}

/// The level coordinate fstd2nc makes for an ip1 kind: its name and attributes.
fn level_axis(kind: i8) -> (&'static str, Map<String, Value>) {
    let (name, attrs) = match kind {
        2 => (
            "pres",
            json!({"axis": "Z", "standard_name": "air_pressure", "units": "hPa", "positive": "down"}),
        ),
        1 => (
            "level",
            json!({"axis": "Z", "standard_name": "atmosphere_sigma_coordinate", "positive": "down",
                   "formula": "p = sigma * ps", "formula_terms": "sigma: {axis} ps: P0"}),
        ),
        0 | 4 => (
            "height",
            json!({"axis": "Z", "standard_name": "height", "units": "m", "positive": "up"}),
        ),
        6 => (
            "theta",
            json!({"axis": "Z", "standard_name": "air_potential_temperature", "units": "K", "positive": "up"}),
        ),
        3 => (
            "sfclevel",
            json!({"axis": "Z", "standard_name": "model_level_number", "positive": "down"}),
        ),
        _ => ("level", json!({"axis": "Z", "positive": "down"})),
    };
    (name, attrs.as_object().cloned().unwrap_or_default())
}

/// The RPN header fields that are the same in every record of `var`.
fn rpn_attributes(var: &Variable, attrs: &mut Attributes) {
    let records: Vec<&Arc<Record>> = var.records.values().collect();
    let Some(first) = records.first() else { return };
    let k = &first.keys;
    let mut put = |name: &str, value: Value, same: &dyn Fn(&Record) -> bool| {
        if records.iter().all(|r| same(r)) {
            attrs.insert(name.into(), value);
        }
    };
    put("nomvar", json!(k.nomvar), &|_| true);
    put("typvar", json!(k.typvar), &|_| true);
    put("etiket", json!(k.etiket), &|_| true);
    put("grtyp", json!(k.grtyp), &|_| true);
    put("ip1", json!(k.ip1), &|r| r.keys.ip1 == k.ip1);
    put("ip2", json!(k.ip2), &|r| r.keys.ip2 == k.ip2);
    put("ip3", json!(k.ip3), &|r| r.keys.ip3 == k.ip3);
    put("deet", json!(k.deet), &|r| r.keys.deet == k.deet);
    put("npas", json!(k.npas), &|r| r.keys.npas == k.npas);
    put("datyp", json!(k.datyp), &|r| r.keys.datyp == k.datyp);
    put("nbits", json!(k.nbits), &|r| r.keys.nbits == k.nbits);
    for (i, v) in [k.ig1, k.ig2, k.ig3, k.ig4].into_iter().enumerate() {
        attrs.insert(format!("ig{}", i + 1), json!(v));
    }
    attrs.insert("kind".into(), json!(ip::decode(k.ip1).kind));
    if let Some(text) = &first.extended {
        // json-c output may hold a bare NaN, which strict JSON readers reject: kept as text.
        attrs.insert("extended_metadata".into(), json!(text));
    }
}

/// CF units for seconds since the instant `t` (Unix seconds).
fn seconds_since(t: i64) -> String {
    let (y, m, d) = civil_from_days(t.div_euclid(86_400));
    let s = t.rem_euclid(86_400);
    format!(
        "seconds since {y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// A nomvar as a node name: any 4 ASCII characters may be one, but a node cannot hold `/`
/// or be named "", "." or "..".
pub(super) fn node_name(nomvar: &str) -> String {
    match nomvar {
        "" | "." | ".." => format!("nomvar{nomvar}"),
        _ => nomvar.replace('/', "_"),
    }
}
