//! `Cell_H`, the VisMF header of one MultiFab (plotfile.md §3): versions 1–4, scalar or
//! per-dimension ghost width, the BoxArray, where each FAB is, and the min/max statistics.

use super::fab::real_descriptor;
use super::gather::ElemType;
use super::text::{Cursor, IBox, real};

#[derive(Clone, Debug, PartialEq)]
pub struct VisMfHeader {
    pub version: u32,
    pub ncomp: usize,
    /// Ghost cells per side, per dimension.
    pub ngrow: Vec<i64>,
    /// The valid boxes (without ghosts), in BoxArray order, and the line each starts on.
    pub boxes: Vec<IBox>,
    pub box_lines: Vec<usize>,
    /// Where each box's FAB is, in BoxArray order.
    pub fabs: Vec<FabOnDisk>,
    /// Per-component minimum and maximum over the MultiFab, when the header has them and
    /// they parse (statistics are metadata: a bad one never fails the header).
    pub min: Option<Vec<f64>>,
    pub max: Option<Vec<f64>>,
    /// The value type for versions 2–4 (version 1 has it in every FAB header).
    pub real: Option<ElemType>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FabOnDisk {
    pub file: String,
    pub offset: u64,
}

pub fn parse(text: &str) -> Result<VisMfHeader, String> {
    let mut c = Cursor::new(text, "Cell_H");
    let version = c.int("the VisMF version")?;
    if !(1..=4).contains(&version) {
        return Err(c.error(format!("unknown VisMF version {version}")));
    }
    let _how = c.int("the writer kind")?;
    let ncomp = usize::try_from(c.int("the component count")?).map_err(|_| c.error("negative ncomp"))?;
    c.skip_ws();
    let ngrow = if c.rest().starts_with('(') {
        c.int_vect()?
    } else {
        vec![c.int("the ghost width")?]
    };
    c.expect('(')?;
    let nboxes = usize::try_from(c.int("the box count")?).map_err(|_| c.error("negative box count"))?;
    let _hash = c.int("the BoxArray hash")?;
    let mut boxes = Vec::with_capacity(nboxes.min(1 << 16));
    let mut box_lines = Vec::with_capacity(nboxes.min(1 << 16));
    for _ in 0..nboxes {
        c.skip_ws();
        box_lines.push(c.line_number());
        boxes.push(c.ibox()?);
    }
    c.expect(')')?;
    let dim = boxes.first().map_or(ngrow.len(), IBox::dim);
    if boxes.iter().any(|b| b.dim() != dim) {
        return Err(c.error("boxes of different dimensions"));
    }
    let ngrow = match ngrow.as_slice() {
        [g] => vec![*g; dim],
        v if v.len() == dim => v.to_vec(),
        v => return Err(c.error(format!("{}-component ghost width for {dim}-d boxes", v.len()))),
    };
    if ngrow.iter().any(|g| !(0..=64).contains(g)) {
        return Err(c.error(format!("implausible ghost width {ngrow:?}")));
    }
    let nfabs = usize::try_from(c.int("the FAB count")?).map_err(|_| c.error("negative FAB count"))?;
    if nfabs != nboxes {
        return Err(c.error(format!("{nfabs} FabOnDisk entries for {nboxes} boxes")));
    }
    let mut fabs = Vec::with_capacity(nfabs);
    for _ in 0..nfabs {
        let tag = c.token()?;
        if tag != "FabOnDisk:" {
            return Err(c.error(format!("expected 'FabOnDisk:', found '{tag}'")));
        }
        let file = c.token()?.to_string();
        let offset = u64::try_from(c.int("a FAB offset")?).map_err(|_| c.error("negative FAB offset"))?;
        fabs.push(FabOnDisk { file, offset });
    }

    // Versions 2–4 end with the RealDescriptor; everything between is statistics.
    let rest = c.rest();
    let (stats, real) = if version == 1 {
        (rest, None)
    } else {
        let at = rest
            .rfind("((")
            .ok_or_else(|| c.error(format!("version {version} header without a RealDescriptor")))?;
        let line = c.line_number() + rest[..at].matches('\n').count();
        let real = real_descriptor(&rest[at..]).map_err(|e| format!("Cell_H line {line}: {e}"))?;
        (&rest[..at], Some(real))
    };
    let (min, max) = match version {
        1 | 3 => per_fab_stats(stats, nboxes, ncomp),
        4 => whole_stats(stats, ncomp),
        _ => (None, None),
    };
    Ok(VisMfHeader {
        version: version as u32,
        ncomp,
        ngrow,
        boxes,
        box_lines,
        fabs,
        min,
        max,
        real,
    })
}

fn values(text: &str) -> Vec<&str> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Two `nboxes,ncomp` matrices (one row per FAB); reduced to one min and max per component.
/// `inf`/`nan` entries and malformed matrices are tolerated (plotfile.md §8.8).
fn per_fab_stats(text: &str, nboxes: usize, ncomp: usize) -> (Option<Vec<f64>>, Option<Vec<f64>>) {
    let tokens = values(text);
    let matrix = |at: usize, reduce: fn(f64, f64) -> f64| -> Option<(Vec<f64>, usize)> {
        let rows: usize = tokens.get(at)?.parse().ok()?;
        let cols: usize = tokens.get(at + 1)?.parse().ok()?;
        if rows != nboxes || cols != ncomp {
            return None;
        }
        // Both sizes come from the file: their product must not wrap, and a matrix without
        // cells (no FABs) has no statistics, whatever column count it claims (the result
        // is allocated per column, so columns must be backed by values in the text).
        let end = rows.checked_mul(cols).filter(|n| *n > 0)?.checked_add(at + 2)?;
        let cells = tokens.get(at + 2..end)?;
        let mut out = vec![f64::NAN; cols];
        for (i, token) in cells.iter().enumerate() {
            if let Some(v) = real(token).filter(|v| v.is_finite()) {
                let slot = &mut out[i % cols];
                *slot = if slot.is_nan() { v } else { reduce(*slot, v) };
            }
        }
        Some((out, end))
    };
    match matrix(0, f64::min) {
        Some((min, next)) => (Some(min), matrix(next, f64::max).map(|(max, _)| max)),
        None => (None, None),
    }
}

/// Version 4: one `min,` per component, then one `max,` per component.
fn whole_stats(text: &str, ncomp: usize) -> (Option<Vec<f64>>, Option<Vec<f64>>) {
    let parsed: Vec<f64> = values(text).iter().map(|t| real(t).unwrap_or(f64::NAN)).collect();
    if parsed.len() < 2 * ncomp {
        return (None, None);
    }
    (
        Some(parsed[..ncomp].to_vec()),
        Some(parsed[ncomp..2 * ncomp].to_vec()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{DataType, Endian};

    const V1: &str = "1
1
2
0
(3 0
((-16,16,16) (-1,31,31) (0,0,0))
((0,16,16) (15,31,31) (0,0,0))
((16,32,16) (47,47,31) (0,0,0))
)
3
FabOnDisk: Cell_D_00001 0
FabOnDisk: Cell_D_00000 98396
FabOnDisk: Cell_D_00000 4294967396

3,2
3.78930664062500000e+00,9.66237792968750000e+01,
-1.0e+00,nan,
2.5e+00,inf,

3,2
4.0e+00,1.0e+02,
5.0e+00,-nan,
6.0e+00,1.5e+02,

";

    #[test]
    fn version_1_with_non_finite_stats_and_large_offsets() {
        let h = parse(V1).unwrap();
        assert_eq!((h.version, h.ncomp, h.ngrow.clone()), (1, 2, vec![0, 0, 0]));
        assert_eq!(h.boxes.len(), 3);
        assert_eq!(h.boxes[0].lo, vec![-16, 16, 16]);
        assert_eq!(h.box_lines, [6, 7, 8], "where errors about a box point");
        assert_eq!(h.fabs[0].file, "Cell_D_00001");
        assert_eq!(h.fabs[2].offset, 4_294_967_396);
        assert_eq!(h.min, Some(vec![-1.0, 96.6237792968750]));
        assert_eq!(h.max, Some(vec![6.0, 150.0]));
        assert_eq!(h.real, None);
    }

    #[test]
    fn versions_2_to_4_and_ghost_widths() {
        let head = "(1 0\n((0,0) (7,7) (0,0))\n)\n1\nFabOnDisk: Cell_D_00000 0\n";
        let v2 = format!("2\n1\n1\n(2,1)\n{head}\n((8, (32 8 23 0 1 9 0 127)),(4, (1 2 3 4)))\n");
        let h = parse(&v2).unwrap();
        assert_eq!(h.ngrow, vec![2, 1]);
        assert_eq!(h.min, None);
        let real = h.real.unwrap();
        assert_eq!((real.data_type, real.endian), (DataType::Float32, Endian::Big));

        let v3 = format!(
            "3\n1\n1\n1\n{head}\n1,1\n1.0e+00,\n\n1,1\n2.0e+00,\n\n((8, (64 11 52 0 1 12 0 1023)),(8, (8 7 6 5 4 3 2 1)))\n"
        );
        let h = parse(&v3).unwrap();
        assert_eq!(
            (h.ngrow.clone(), h.min.clone(), h.max.clone()),
            (vec![1, 1], Some(vec![1.0]), Some(vec![2.0]))
        );
        assert_eq!(h.real.unwrap().data_type, DataType::Float64);

        let v4 = format!(
            "4\n1\n1\n0\n{head}\n-3.0e+00,\n7.0e+00,\n((8, (64 11 52 0 1 12 0 1023)),(8, (8 7 6 5 4 3 2 1)))\n"
        );
        let h = parse(&v4).unwrap();
        assert_eq!((h.min, h.max), (Some(vec![-3.0]), Some(vec![7.0])));
    }

    #[test]
    fn fortran_style_stats_one_value_per_line() {
        let text = "1\n0\n2\n0\n(1 0\n((0) (7) (0))\n)\n1\nFabOnDisk: Cell_D_0000 0\n\n1,2\n  1.00000000000000000E+000 ,\n  2.00000000000000000E+000 ,\n\n1,2\n 3.0E+000 ,\n 4.0E+000 ,\n";
        let h = parse(text).unwrap();
        assert_eq!((h.min, h.max), (Some(vec![1.0, 2.0]), Some(vec![3.0, 4.0])));
    }

    #[test]
    fn malformed_headers_are_errors() {
        assert!(parse("7\n").unwrap_err().contains("unknown VisMF version"));
        let short = &V1[..V1.find("FabOnDisk: Cell_D_00000 4294967396").unwrap()];
        assert!(parse(short).is_err());
        let neg = V1.replace("98396", "-5");
        assert!(parse(&neg).unwrap_err().contains("negative FAB offset"));
        assert!(parse("2\n1\n1\n0\n(1 0\n((0) (7) (0))\n)\n1\nFabOnDisk: f 0\n").is_err());
        let cut = "2\n1\n1\n0\n(1 0\n((0) (7) (0))\n)\n1\nFabOnDisk: f 0\n\n((8, (64 11 5";
        assert!(
            parse(cut).unwrap_err().starts_with("Cell_H line 11: "),
            "{:?}",
            parse(cut)
        );
        // Bad statistics are not an error.
        let h = parse(&V1.replace("3,2\n4.0", "x,y\n4.0")).unwrap();
        assert!(h.max.is_none());
        // Nor are matrix sizes whose product wraps (ncomp is whatever the file says).
        let huge = "1\n0\n9223372036854775807\n0\n(2 0\n((0) (7) (0))\n((8) (15) (0))\n)\n2\nFabOnDisk: a 0\nFabOnDisk: a 0\n\n2,9223372036854775807\n1\n";
        assert_eq!(parse(huge).unwrap().min, None);
        // A MultiFab without boxes has no statistics, however many components it claims.
        let empty = "1\n0\n1099511627776\n0\n(0 0\n)\n0\n\n0,1099511627776\n\n0,1099511627776\n";
        assert_eq!(parse(empty).unwrap().min, None);
    }
}
