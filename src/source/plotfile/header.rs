//! The plotfile `Header` (plotfile.md §2): fields, geometry, levels and where each level's
//! MultiFabs are. Tolerates every variant §2.1 lists.

use super::text::{Cursor, IBox, real};

/// Version strings of plotfile headers (line 1).
const VERSIONS: &[&str] = &["HyperCLaw-V1.1", "NavierStokes-V1.1", "CartGrid-V"];

/// Whether `first_line` is a plotfile header's version line.
pub fn is_version_line(first_line: &str) -> bool {
    let line = first_line.trim();
    VERSIONS.iter().any(|v| line.starts_with(v))
}

#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    pub version: String,
    pub fields: Vec<String>,
    pub dim: usize,
    pub time: f64,
    pub finest_level: usize,
    pub prob_lo: Vec<f64>,
    pub prob_hi: Vec<f64>,
    /// Per-dimension refinement ratio between level `l` and `l+1`.
    pub ref_ratio: Vec<Vec<i64>>,
    pub coord_sys: i64,
    pub levels: Vec<LevelHeader>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LevelHeader {
    pub domain: IBox,
    pub dx: Vec<f64>,
    pub time: f64,
    pub step: i64,
    pub ngrids: usize,
    /// MultiFab paths relative to the plotfile, without the `_H` suffix.
    pub multifabs: Vec<String>,
}

pub fn parse(text: &str) -> Result<Header, String> {
    let mut c = Cursor::new(text, "Header");
    let version = c.line()?.trim().to_string();
    if !is_version_line(&version) {
        return Err(c.error(format!("'{version}' is not a plotfile version")));
    }
    let ncomp: usize = c.line_as("the number of fields")?;
    let mut fields = Vec::with_capacity(ncomp.min(4096));
    for _ in 0..ncomp {
        fields.push(c.line()?.trim().to_string());
    }
    let dim: usize = c.line_as("the number of dimensions")?;
    if !(1..=3).contains(&dim) {
        return Err(c.error(format!("{dim} dimensions")));
    }
    let time = real_line(&mut c, "the time")?;
    let finest_level: usize = c.line_as("the finest level")?;
    if finest_level > 100 {
        return Err(c.error(format!("finest level {finest_level}")));
    }
    let nlev = finest_level + 1;
    let prob_lo = reals_line(&mut c, dim, "prob_lo")?;
    let prob_hi = reals_line(&mut c, dim, "prob_hi")?;
    let written_ratio = ratio_line(&mut c, dim)?;
    let domains = domain_line(&mut c, nlev, dim)?;
    // Some writers put `finest_level` steps here instead of one per level: take the line as is.
    let steps: Vec<i64> = c
        .line()?
        .split_whitespace()
        .filter_map(|t| t.parse().ok())
        .collect();
    let mut dxs = Vec::with_capacity(nlev);
    for _ in 0..nlev {
        dxs.push(reals_line(&mut c, dim, "cell sizes")?);
    }
    if version.starts_with("CartGrid-V") && !version.starts_with("CartGrid-V2") {
        for _ in 0..nlev {
            c.line()?; // vfEps of each level (EB codes before CartGrid 2.0)
        }
    }
    let coord_sys: i64 = c.line_as("the coordinate system")?;
    let _boundary_width = c.line()?;

    let mut levels = Vec::with_capacity(nlev);
    for (l, (domain, dx)) in domains.into_iter().zip(dxs).enumerate() {
        let lev = c.int("a level number")?;
        if lev != l as i64 {
            return Err(c.error(format!("level record {lev} where level {l} was expected")));
        }
        let ngrids = usize::try_from(c.int("a grid count")?).map_err(|_| c.error("negative grid count"))?;
        let level_time = c.real("the level time")?;
        let step = c.int("the level step")?;
        for _ in 0..ngrids.saturating_mul(dim * 2) {
            c.real("a grid extent")?; // physical extents: boxes in Cell_H are the truth (§2)
        }
        // Paths until the next level record; none for particle-only plotfiles.
        let mut multifabs = Vec::new();
        while let Some(token) = c.peek_token() {
            if real(token).is_some() {
                break;
            }
            multifabs.push(c.token()?.to_string());
        }
        levels.push(LevelHeader {
            domain,
            dx,
            time: level_time,
            step: steps.get(l).copied().unwrap_or(step),
            ngrids,
            multifabs,
        });
    }
    let ref_ratio = derive_ratios(&levels, &written_ratio);
    Ok(Header {
        version,
        fields,
        dim,
        time,
        finest_level,
        prob_lo,
        prob_hi,
        ref_ratio,
        coord_sys,
        levels,
    })
}

fn real_line(c: &mut Cursor, name: &str) -> Result<f64, String> {
    c.parse_line(name, real)
}

fn reals_line(c: &mut Cursor, dim: usize, name: &str) -> Result<Vec<f64>, String> {
    c.parse_line(&format!("{dim} reals for {name}"), |line| {
        let values: Option<Vec<f64>> = line.split_whitespace().map(real).collect();
        values.filter(|v| v.len() == dim)
    })
}

/// The ref-ratio line: empty (one level), one int per level pair (x only), or IntVects.
fn ratio_line(c: &mut Cursor, dim: usize) -> Result<Vec<Vec<i64>>, String> {
    c.parse_line("a ref ratio line", |line| {
        if line.contains('(') {
            let mut inner = Cursor::new(line, "");
            let mut out = Vec::new();
            while !inner.at_end() {
                out.push(inner.int_vect().ok()?);
            }
            return Some(out);
        }
        line.split_whitespace()
            .map(|t| t.parse::<i64>().ok().map(|r| vec![r; dim]))
            .collect()
    })
}

fn domain_line(c: &mut Cursor, nlev: usize, dim: usize) -> Result<Vec<IBox>, String> {
    c.parse_line(&format!("{nlev} {dim}-d domain boxes"), |line| {
        let mut inner = Cursor::new(line, "");
        (0..nlev)
            .map(|_| inner.ibox().ok().filter(|b| b.dim() == dim))
            .collect()
    })
}

/// Per-dimension ratios from consecutive domains (the written line keeps only x, §2.1), falling
/// back to what was written, then to 2, where the domains do not divide evenly.
fn derive_ratios(levels: &[LevelHeader], written: &[Vec<i64>]) -> Vec<Vec<i64>> {
    levels
        .windows(2)
        .enumerate()
        .map(|(l, pair)| {
            let (coarse, fine) = (pair[0].domain.size(), pair[1].domain.size());
            coarse
                .iter()
                .zip(&fine)
                .enumerate()
                .map(|(d, (c, f))| {
                    if *c > 0 && f % c == 0 && f / c > 0 {
                        (f / c) as i64
                    } else {
                        written
                            .get(l)
                            .and_then(|r| r.get(d).or(r.first()))
                            .copied()
                            .unwrap_or(2)
                    }
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODERN_3D: &str = "HyperCLaw-V1.1
3
density
temperature
box id
3
0.25
1
-1 0 0.5 
1 1 1.5 
2 
((0,0,0) (31,31,31) (0,0,0)) ((0,0,0) (63,63,31) (0,0,0)) 
10 20 
0.0625 0.03125 0.03125 
0.03125 0.015625 0.0625 
0
0
0 2 0.25
10
-1 0
0 0.5
0.5 1
0 1
0 0.5
0.5 1
Level_0/Cell
1 1 0.25
20
-0.5 0
0 0.5
0.5 1
Level_1/Cell
";

    #[test]
    fn modern_header() {
        let h = parse(MODERN_3D).unwrap();
        assert_eq!(h.version, "HyperCLaw-V1.1");
        assert_eq!(h.fields, vec!["density", "temperature", "box id"]);
        assert_eq!((h.dim, h.time, h.finest_level, h.coord_sys), (3, 0.25, 1, 0));
        assert_eq!(h.prob_lo, vec![-1.0, 0.0, 0.5]);
        assert_eq!(h.prob_hi, vec![1.0, 1.0, 1.5]);
        // x and y refine by 2, z not at all: derived from the domains, not the written "2".
        assert_eq!(h.ref_ratio, vec![vec![2, 2, 1]]);
        assert_eq!(h.levels[1].domain.hi, vec![63, 63, 31]);
        assert_eq!(h.levels[1].dx, vec![0.03125, 0.015625, 0.0625]);
        assert_eq!((h.levels[0].ngrids, h.levels[0].step), (2, 10));
        assert_eq!(h.levels[1].multifabs, vec!["Level_1/Cell"]);
    }

    /// The old Fortran writer: NavierStokes version, Fortran reals, an integer level time,
    /// a steps line one short, several MultiFabs on a level, trailing EB lines.
    #[test]
    fn old_fortran_header_with_extras() {
        let text = "NavierStokes-V1.1
2
a
b
2
  1.00000000000000000E+000
1
  0.0D+00   0.0D+00
  1.0D+00   1.0D+00
(4,2)
((-8,0) (7,15) (0,0)) ((-32,0) (31,31) (0,0))
5
  1.25E-001  6.25E-002
  3.125E-002  3.125E-002
0
0
0     1     0
5
0 1
0 1
Level_00/Cell_a
Level_00/Cell_b
1 1 0
5
0 1
0 1
Level_01/Cell
1.0e-6
1.0e-6
";
        let h = parse(text).unwrap();
        assert_eq!(h.version, "NavierStokes-V1.1");
        assert_eq!(h.time, 1.0);
        assert_eq!(h.prob_hi, vec![1.0, 1.0]);
        assert_eq!(h.ref_ratio, vec![vec![4, 2]]);
        assert_eq!(h.levels[0].domain.lo, vec![-8, 0]);
        assert_eq!(h.levels[0].multifabs, vec!["Level_00/Cell_a", "Level_00/Cell_b"]);
        assert_eq!(h.levels[1].multifabs, vec!["Level_01/Cell"]);
        assert_eq!(h.levels[0].dx, vec![0.125, 0.0625]);
        assert_eq!(h.levels[1].step, 5);
    }

    #[test]
    fn one_dimension_single_level_and_no_fields() {
        let text =
            "HyperCLaw-V1.1\n0\n1\n0\n0\n0 \n1 \n\n((0) (63) (0)) \n0 \n0.015625 \n0\n0\n0 1 0\n0\n0 1\n";
        let h = parse(text).unwrap();
        assert!(h.fields.is_empty());
        assert!(h.ref_ratio.is_empty());
        assert!(h.levels[0].multifabs.is_empty());
        assert_eq!(h.levels[0].domain.size(), vec![64]);
    }

    #[test]
    fn garbage_is_an_error_with_a_line() {
        assert!(parse("hello\n").unwrap_err().contains("not a plotfile version"));
        let cut = &MODERN_3D[..MODERN_3D.find("0.0625").unwrap()];
        let err = parse(cut).unwrap_err();
        assert!(err.contains("line 14"), "{err}");
        let bad = MODERN_3D.replace("0 2 0.25", "1 2 0.25");
        assert!(parse(&bad).unwrap_err().contains("level record 1"));
    }
}
