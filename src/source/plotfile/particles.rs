//! A particle species' `Header` (plotfile.md §6): component names, and where each grid's
//! particles are. Per grid the data file holds `count × (2 + nint)` int32 (id, cpu, extra
//! ints), then `count × (dim + nreal)` reals (positions, extra reals), little endian.

use super::text::Cursor;
use crate::tree::DataType;

#[derive(Clone, Debug, PartialEq)]
pub struct ParticleHeader {
    pub version: String,
    pub dim: usize,
    pub real_type: DataType,
    pub real_names: Vec<String>,
    pub int_names: Vec<String>,
    pub total: u64,
    /// Every non-empty grid, level by level, in header order.
    pub grids: Vec<ParticleGrid>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParticleGrid {
    pub level: usize,
    pub file: u32,
    pub count: u64,
    pub offset: u64,
}

impl ParticleHeader {
    pub fn ints_per_particle(&self) -> u64 {
        2 + self.int_names.len() as u64
    }

    pub fn reals_per_particle(&self) -> u64 {
        (self.dim + self.real_names.len()) as u64
    }
}

/// Whether `first_line` starts a particle header.
pub fn is_version_line(first_line: &str) -> bool {
    first_line.trim().starts_with("Version_")
}

pub fn parse(text: &str) -> Result<ParticleHeader, String> {
    let mut c = Cursor::new(text, "particle Header");
    let version = c.line()?.trim().to_string();
    // Two_Dot_Zero (plotfiles) and Two_Dot_One (checkpoints, whose two ints are the halves of
    // a packed idcpu) share this layout; One_Dot_* headers name no components.
    let real_type = match version.as_str() {
        "Version_Two_Dot_Zero_double" | "Version_Two_Dot_One_double" => DataType::Float64,
        "Version_Two_Dot_Zero_single" | "Version_Two_Dot_One_single" => DataType::Float32,
        other => return Err(c.error(format!("unsupported particle version '{other}'"))),
    };
    let dim: usize = c.line_as("the number of dimensions")?;
    if !(1..=3).contains(&dim) {
        return Err(c.error(format!("{dim} dimensions")));
    }
    let real_names = names(&mut c, "extra real components")?;
    let int_names = names(&mut c, "extra int components")?;
    let _is_checkpoint = c.int("the checkpoint flag")?;
    let total = count(&mut c, "the particle count")?;
    let _next_id = c.int("the next id")?;
    let finest_level = count(&mut c, "the finest level")? as usize;
    if finest_level > 100 {
        return Err(c.error(format!("finest level {finest_level}")));
    }
    let mut per_level = Vec::with_capacity(finest_level + 1);
    for _ in 0..=finest_level {
        per_level.push(count(&mut c, "a grid count")?);
    }
    let mut grids = Vec::new();
    let mut sum = 0u64;
    for (level, ngrids) in per_level.into_iter().enumerate() {
        for _ in 0..ngrids {
            let file = u32::try_from(c.int("a data file number")?).map_err(|_| c.error("bad file number"))?;
            let n = count(&mut c, "a particle count")?;
            let offset = count(&mut c, "a data offset")?;
            if n > 0 {
                sum = sum.saturating_add(n);
                grids.push(ParticleGrid {
                    level,
                    file,
                    count: n,
                    offset,
                });
            }
        }
    }
    if sum != total {
        return Err(format!(
            "particle Header: grids hold {sum} particles, the header says {total}"
        ));
    }
    Ok(ParticleHeader {
        version,
        dim,
        real_type,
        real_names,
        int_names,
        total,
        grids,
    })
}

fn names(c: &mut Cursor, what: &str) -> Result<Vec<String>, String> {
    let n = count(c, &format!("the number of {what}"))?;
    c.line()?; // the rest of the count's line
    (0..n).map(|_| c.line_as::<String>("a component name")).collect()
}

fn count(c: &mut Cursor, what: &str) -> Result<u64, String> {
    let value = c.int(what)?;
    u64::try_from(value).map_err(|_| c.error(format!("negative {what}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plotfile_particles() {
        let text = "Version_Two_Dot_Zero_single\n3\n2\nmass\nvx\n1\nflag\n1\n5\n6\n1\n3\n2\n0 2 0\n0 0 0\n1 3 40\n0 0 0\n0 0 0\n";
        let h = parse(text).unwrap();
        assert_eq!((h.dim, h.real_type, h.total), (3, DataType::Float32, 5));
        assert_eq!(h.real_names, vec!["mass", "vx"]);
        assert_eq!(h.int_names, vec!["flag"]);
        assert_eq!((h.ints_per_particle(), h.reals_per_particle()), (3, 5));
        assert_eq!(
            h.grids,
            vec![
                ParticleGrid {
                    level: 0,
                    file: 0,
                    count: 2,
                    offset: 0
                },
                ParticleGrid {
                    level: 0,
                    file: 1,
                    count: 3,
                    offset: 40
                },
            ]
        );
    }

    #[test]
    fn bad_particle_headers() {
        assert!(
            parse("Version_One_Dot_Zero\n")
                .unwrap_err()
                .contains("unsupported")
        );
        let wrong_total = "Version_Two_Dot_Zero_double\n2\n0\n0\n1\n9\n10\n0\n1\n0 2 0\n";
        assert!(parse(wrong_total).unwrap_err().contains("the header says 9"));
        assert!(parse("Version_Two_Dot_Zero_double\n2\n0\n0\n1\n2\n3\n0\n1\n0 -2 0\n").is_err());
    }
}
