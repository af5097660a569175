//! Where a grid's points are, as fstd2nc presents them (fst.md §3.3, §5): the spatial
//! axes, 2-D latitudes and longitudes where the grid is not a plain lat-lon one, and the
//! CF grid mapping.

use serde_json::{Map, Value, json};

use super::grid::{LatLon, Rotation};

/// fstd2nc's Earth radius for CF grid mappings; librmn computes positions on a sphere of 6371 km.
const CF_EARTH_RADIUS: f64 = 6_370_997.0;
const EARTH_RADIUS: f64 = 6_371_000.0;

/// The horizontal description of one grid.
#[derive(Clone, Debug, Default)]
pub struct Geometry {
    /// Axis names (y, x) and their 1-D coordinate values, if they have any.
    pub y: Axis,
    pub x: Axis,
    /// 2-D (nj, ni) true latitudes and longitudes, for grids whose axes are not lat/lon.
    pub lat_lon: Option<(Vec<f32>, Vec<f32>)>,
    /// The CF grid-mapping variables (two for a Yin-Yang grid): names and attributes.
    pub mappings: Vec<(&'static str, Map<String, Value>)>,
    /// Why a grid has no geolocation, when it should have some.
    pub note: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct Axis {
    pub name: &'static str,
    pub values: Option<Vec<f32>>,
    pub attrs: Map<String, Value>,
}

impl Axis {
    fn bare(name: &'static str) -> Axis {
        Axis {
            name,
            values: None,
            attrs: Map::new(),
        }
    }

    fn coord(name: &'static str, values: Vec<f32>, attrs: Value) -> Axis {
        Axis {
            name,
            values: Some(values),
            attrs: attrs.as_object().cloned().unwrap_or_default(),
        }
    }
}

/// The data of the positional records a Z or Y grid refers to.
pub struct Positional {
    /// `>>`: x positions (Z: ni values; Y: ni·nj longitudes).
    pub ax: Vec<f32>,
    /// `^^`: y positions (Z: nj values; Y: ni·nj latitudes).
    pub ay: Vec<f32>,
    /// The reference grid the positions are expressed in, and its ig1..ig4.
    pub grref: String,
    pub ig: [u32; 4],
}

/// What the records a grid refers to hold.
pub enum Refs {
    /// Z and Y grids: the `>>`/`^^` pair.
    Axes(Positional),
    /// U grids: the `^>` record's sub-grid table.
    Supergrid(Vec<f32>),
}

fn lat_axis(values: Vec<f32>) -> Axis {
    Axis::coord(
        "lat",
        values,
        json!({"long_name": "latitude", "standard_name": "latitude", "units": "degrees_north", "axis": "Y"}),
    )
}

fn lon_axis(values: Vec<f32>) -> Axis {
    Axis::coord(
        "lon",
        values,
        json!({"long_name": "longitude", "standard_name": "longitude", "units": "degrees_east", "axis": "X"}),
    )
}

fn crs_latlon() -> Vec<(&'static str, Map<String, Value>)> {
    let attrs = json!({"grid_mapping_name": "latitude_longitude", "earth_radius": CF_EARTH_RADIUS});
    vec![("crs_latlon", attrs.as_object().cloned().unwrap_or_default())]
}

/// CF's rotated pole for a rotation whose rotated longitudes are shown shifted by `shift`
/// degrees from librmn's frame.
fn rotated_pole(r: &Rotation, shift: f64) -> Map<String, Value> {
    let (pole_lat, pole_lon) = r.north_pole();
    let attrs = json!({
        "grid_mapping_name": "rotated_latitude_longitude",
        "earth_radius": CF_EARTH_RADIUS,
        "grid_north_pole_latitude": pole_lat,
        "grid_north_pole_longitude": pole_lon,
        "north_pole_grid_longitude": (r.true_north_rotated_lon() + shift).rem_euclid(360.0),
    });
    attrs.as_object().cloned().unwrap_or_default()
}

fn unlocated(note: Option<String>) -> Geometry {
    Geometry {
        y: Axis::bare("j"),
        x: Axis::bare("i"),
        note,
        ..Geometry::default()
    }
}

/// 2-D latitudes and longitudes are computed when a file is opened and kept while it is
/// mounted, 8 bytes a point: a larger grid gets none, with a note, so that a record claiming
/// a huge grid (turbo packing lets a small record claim hundreds of millions of points)
/// cannot take the daemon's memory. Operational grids are a few million points.
const MAX_LAT_LON_POINTS: u64 = 1 << 26;

/// The geometry of a grid `grtyp` of `ni`×`nj` points with descriptors `ig`; `refs` is
/// what its `>>`/`^^` or `^>` records hold, if the file has them.
pub fn geometry(grtyp: &str, ni: u32, nj: u32, ig: [u32; 4], refs: Option<&Refs>) -> Geometry {
    let [ig1, ig2, ig3, ig4] = ig;
    let positional = match refs {
        Some(Refs::Axes(p)) => Some(p),
        _ => None,
    };
    let two_d = match grtyp {
        "E" | "N" | "S" | "U" => true,
        "Z" => positional.is_some_and(|p| p.grref != "L"),
        _ => false,
    };
    if two_d && u64::from(ni) * u64::from(nj) > MAX_LAT_LON_POINTS {
        return unlocated(Some(format!(
            "{ni} x {nj} points, more than the {MAX_LAT_LON_POINTS} given 2-D latitudes and longitudes"
        )));
    }
    match grtyp {
        "L" => {
            let g = LatLon::from_ig(ig1, ig2, ig3, ig4);
            Geometry {
                y: lat_axis((0..nj).map(|j| g.lat(j) as f32).collect()),
                x: lon_axis((0..ni).map(|i| g.lon(i) as f32).collect()),
                mappings: crs_latlon(),
                ..Geometry::default()
            }
        }
        "N" | "S" => polar(grtyp == "N", ni, nj, ig),
        "E" => {
            // An E grid spans the rotated globe: longitudes 0..360 inclusive, latitudes at
            // cell centres.
            let r = Rotation::from_ig(ig1, ig2, ig3, ig4);
            let ax: Vec<f64> = (0..ni)
                .map(|i| f64::from(i) * 360.0 / f64::from(ni.saturating_sub(1).max(1)))
                .collect();
            let ay: Vec<f64> = (0..nj)
                .map(|j| -90.0 + (f64::from(j) + 0.5) * 180.0 / f64::from(nj))
                .collect();
            Geometry {
                lat_lon: Some(rotate(&r, &ay, &ax)),
                ..unlocated(None)
            }
        }
        "Z" => match positional {
            Some(p) if p.ax.len() == ni as usize && p.ay.len() == nj as usize => z_grid(p),
            Some(_) => unlocated(Some("its >> / ^^ records do not match its size".into())),
            None => unlocated(Some("no >> / ^^ records match its ig1..ig3".into())),
        },
        "Y" => match positional {
            Some(p) if p.ax.len() == (ni as usize) * (nj as usize) && p.ay.len() == p.ax.len() => Geometry {
                lat_lon: Some((p.ay.clone(), p.ax.clone())),
                ..unlocated(None)
            },
            _ => unlocated(Some("no >> / ^^ records of its size match its ig1..ig3".into())),
        },
        "U" => match refs {
            Some(Refs::Supergrid(table)) => supergrid(table, ni, nj),
            _ => unlocated(Some("no ^> record matches its ig1..ig3".into())),
        },
        "X" => unlocated(None),
        other => unlocated(Some(format!(
            "grid type {other} is not georeferenced by zarrmount"
        ))),
    }
}

fn z_grid(p: &Positional) -> Geometry {
    let [ig1, ig2, ig3, ig4] = p.ig;
    match p.grref.as_str() {
        "L" => Geometry {
            y: lat_axis(p.ay.clone()),
            x: lon_axis(p.ax.clone()),
            mappings: crs_latlon(),
            ..Geometry::default()
        },
        "E" => {
            let r = Rotation::from_ig(ig1, ig2, ig3, ig4);
            let ay: Vec<f64> = p.ay.iter().map(|v| f64::from(*v)).collect();
            let ax: Vec<f64> = p.ax.iter().map(|v| f64::from(*v)).collect();
            Geometry {
                y: Axis::coord(
                    "rlat",
                    p.ay.clone(),
                    json!({"long_name": "latitude in rotated pole grid", "standard_name": "grid_latitude", "units": "degrees", "axis": "Y"}),
                ),
                // librmn's rotated frame puts the true north pole at rotated longitude 180;
                // CF's (north_pole_grid_longitude 0) at 0.
                x: Axis::coord(
                    "rlon",
                    p.ax.iter().map(|v| v - 180.0).collect(),
                    json!({"long_name": "longitude in rotated pole grid", "standard_name": "grid_longitude", "units": "degrees", "axis": "X"}),
                ),
                lat_lon: Some(rotate(&r, &ay, &ax)),
                mappings: vec![("rotated_pole", rotated_pole(&r, -180.0))],
                note: None,
            }
        }
        other => unlocated(Some(format!(
            "Z grid on a {other} reference is not georeferenced by zarrmount"
        ))),
    }
}

/// A Yin-Yang (`U`) grid: sub-grids stacked along j, each a Z grid on an E rotation, as the
/// `^>` table describes them (fst.md §3.3): `table[2]` sub-grids, blocks from `table[5]` of
/// ni, nj, 4 unused words, xlat1 xlon1 xlat2 xlon2, then ni x and nj y positions.
fn supergrid(table: &[f32], ni: u32, nj: u32) -> Geometry {
    let count = table.get(2).map_or(0, |n| *n as usize);
    let (mut lat, mut lon, mut ys, mut xs) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut mappings = Vec::new();
    let mut rest = table.get(5..).unwrap_or_default();
    // Rows of the grid the sub-grids before this one took: a sub-grid must fit in what is left.
    let mut rows = 0usize;
    for s in 0..count {
        let (Some(&sub_ni), Some(&sub_nj)) = (rest.first(), rest.get(1)) else {
            return unlocated(Some(format!("^> record ends before sub-grid {s}")));
        };
        // The table is file data: sizes as floats (saturating to usize), checked before use.
        let (sub_ni, sub_nj) = (sub_ni as usize, sub_nj as usize);
        let end = sub_ni.checked_add(sub_nj).and_then(|n| n.checked_add(10));
        let fits = sub_ni == ni as usize && rows.saturating_add(sub_nj) <= nj as usize;
        let Some(end) = end.filter(|end| fits && rest.len() >= *end) else {
            return unlocated(Some(format!(
                "^> sub-grid {s} does not fit the record or the grid"
            )));
        };
        rows += sub_nj;
        // librmn takes the rotation through cxgaig's ig encoding: 1/40 degree steps.
        let q = |v: f32| (f64::from(v) * 40.0).round() / 40.0;
        let r = Rotation {
            xlat1: q(rest[6]),
            xlon1: q(rest[7]),
            xlat2: q(rest[8]),
            xlon2: q(rest[9]),
        };
        let ax = &rest[10..10 + sub_ni];
        let ay = &rest[10 + sub_ni..end];
        let wide = |v: &[f32]| v.iter().map(|x| f64::from(*x)).collect::<Vec<_>>();
        let (la, lo) = rotate(&r, &wide(ay), &wide(ax));
        lat.extend(la);
        lon.extend(lo);
        ys.extend_from_slice(ay);
        if xs.is_empty() {
            xs.extend_from_slice(ax);
        }
        // fstd2nc names the two pieces of a Yin-Yang grid; the axes stay in librmn's frame.
        let name = ["yin", "yang"].get(s).copied().unwrap_or("subgrid");
        mappings.push((name, rotated_pole(&r, 0.0)));
        rest = &rest[end..];
    }
    if count == 0 || lat.len() != (ni as usize) * (nj as usize) {
        return unlocated(Some("its ^> sub-grids do not add up to the grid".into()));
    }
    Geometry {
        y: Axis::coord("y", ys, json!({"axis": "Y"})),
        x: Axis::coord("x", xs, json!({"axis": "X"})),
        lat_lon: Some((lat, lon)),
        mappings,
        note: None,
    }
}

/// True (lat, lon) of every `(ay[j], ax[i])` point of a rotated grid, j-major.
fn rotate(r: &Rotation, ay: &[f64], ax: &[f64]) -> (Vec<f32>, Vec<f32>) {
    let mut lat = Vec::with_capacity(ay.len() * ax.len());
    let mut lon = Vec::with_capacity(ay.len() * ax.len());
    for y in ay {
        for x in ax {
            let (la, lo) = r.true_position(*y, *x);
            lat.push(la as f32);
            lon.push(lo as f32);
        }
    }
    (lat, lon)
}

/// A polar stereographic grid (`N`/`S`, small-grid form ig4 < 32768): pole at grid point
/// (pi, pj), `d60` metres between points at 60°, Greenwich at angle `dgrw`.
fn polar(north: bool, ni: u32, nj: u32, ig: [u32; 4]) -> Geometry {
    let [ig1, ig2, ig3, ig4] = ig;
    if ig4 >= 32768 {
        return unlocated(Some(
            "polar stereographic grid in the large-grid ig encoding is not georeferenced by zarrmount".into(),
        ));
    }
    let (pi, pj) = (f64::from(ig2) / 10.0, f64::from(ig1) / 10.0);
    let (d60, dgrw) = (f64::from(ig4) * 100.0, f64::from(ig3) / 100.0);
    // Distance to the pole, in grid lengths, of a point on the equator.
    let re = (1.0 + 60f64.to_radians().sin()) * EARTH_RADIUS / d60;
    let mut lat = Vec::with_capacity(ni as usize * nj as usize);
    let mut lon = Vec::with_capacity(ni as usize * nj as usize);
    for j in 0..nj {
        for i in 0..ni {
            let (x, y) = (f64::from(i) + 1.0 - pi, f64::from(j) + 1.0 - pj);
            let r2 = x * x + y * y;
            let phi = ((re * re - r2) / (re * re + r2)).asin().to_degrees();
            let angle = y.atan2(x).to_degrees();
            let (la, lo) = if north {
                (phi, angle - dgrw)
            } else {
                (-phi, dgrw - angle)
            };
            lat.push(la as f32);
            lon.push(lo.rem_euclid(360.0) as f32);
        }
    }
    let metres = |n: u32| (0..n).map(|k| (f64::from(k) * d60) as f32).collect::<Vec<_>>();
    let mapping = json!({
        "grid_mapping_name": "polar_stereographic",
        "earth_radius": CF_EARTH_RADIUS,
        "latitude_of_projection_origin": if north { 90.0 } else { -90.0 },
        "straight_vertical_longitude_from_pole": -(dgrw + 90.0),
        "scale_factor_at_projection_origin": (1.0 + 60f64.to_radians().sin()) / 2.0,
        "resolution_at_standard_parallel": d60,
        "false_easting": (pi - 1.0) * d60,
        "false_northing": (pj - 1.0) * d60,
    });
    Geometry {
        y: Axis::coord(
            "yc",
            metres(nj),
            json!({"long_name": "y-coordinate of polar-stereographic projection", "standard_name": "projection_y_coordinate", "units": "m", "axis": "Y"}),
        ),
        x: Axis::coord(
            "xc",
            metres(ni),
            json!({"long_name": "x-coordinate of polar-stereographic projection", "standard_name": "projection_x_coordinate", "units": "m", "axis": "X"}),
        ),
        lat_lon: Some((lat, lon)),
        mappings: vec![("polar_stereo", mapping.as_object().cloned().unwrap_or_default())],
        note: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `^>` table of `count` sub-grids of `ni` × `nj` (rotation and positions zero).
    fn table(count: usize, ni: f32, nj: f32, len: usize) -> Vec<f32> {
        let mut t = vec![0.0; 5];
        t[2] = count as f32;
        for _ in 0..count {
            t.extend([ni, nj]);
            t.resize(t.len() + 8, 0.0);
            t.resize(t.len() + len, 0.5);
        }
        t
    }

    #[test]
    fn grids_too_large_for_2d_coordinates_get_a_note_and_no_allocation() {
        for grtyp in ["E", "N", "U"] {
            let g = geometry(grtyp, 1 << 14, 1 << 13, [0, 0, 0, 1000], None);
            assert!(g.lat_lon.is_none(), "{grtyp}");
            assert!(
                g.note.is_some_and(|n| n.contains("16384 x 8192 points")),
                "{grtyp}"
            );
        }
        // 1-D axes cost ni + nj: a large L grid keeps them.
        let l = geometry("L", 1 << 14, 1 << 13, [0, 0, 100, 100], None);
        let len = |a: &Axis| a.values.as_ref().map(Vec::len);
        assert_eq!((len(&l.x), len(&l.y)), (Some(1 << 14), Some(1 << 13)));
    }

    #[test]
    fn supergrid_sizes_from_the_table_are_checked_before_use() {
        // Two 3 × 2 sub-grids make a 3 × 4 grid.
        let good = supergrid(&table(2, 3.0, 2.0, 5), 3, 4);
        assert!(good.note.is_none(), "{:?}", good.note);
        assert_eq!(good.lat_lon.map(|(lat, _)| lat.len()), Some(12));
        // A size past usize (saturating cast) or rows past the grid's is refused.
        for bad in [
            table(2, 1e30, 2.0, 5),
            table(2, 3.0, 1e30, 5),
            table(2, 3.0, 3.0, 6),
        ] {
            assert!(supergrid(&bad, 3, 4).note.is_some());
        }
    }
}
