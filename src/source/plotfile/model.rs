//! A plotfile read from disk: its `Header`, every level's MultiFabs with where each FAB's
//! data start and what type they hold, and its particle species. Only headers are read
//! (for version 1, the one-line header of each FAB); chunk data are left to the planner.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use tracing::warn;

use super::gather::ElemType;
use super::header::{self, Header};
use super::particles::{self, ParticleHeader};
use super::text::IBox;
use super::vismf::{self, VisMfHeader};
use crate::io::SourceFile;
use crate::source::SourceError;

/// Bytes read to find a version-1 FAB header line; real ones are under 120 bytes.
const FAB_HEADER_READ: usize = 512;

pub struct Plotfile {
    pub header: Header,
    pub levels: Vec<Level>,
    pub species: Vec<Species>,
    /// Parts left out, each with the reason (shown in the group's `skipped` attribute).
    pub skipped: Vec<(String, String)>,
}

pub struct Level {
    pub multifabs: Vec<MultiFab>,
}

/// One MultiFab of a level: components `first_field..first_field + ncomp` of the Header's fields.
pub struct MultiFab {
    pub path: String,
    pub first_field: usize,
    pub vismf: VisMfHeader,
    pub fabs: Vec<Fab>,
}

/// One box's data on disk.
pub struct Fab {
    pub valid: IBox,
    /// The stored extent: the valid box grown by the ghost width.
    pub stored: IBox,
    pub file: Arc<SourceFile>,
    /// Where the values start and their type, or why this FAB cannot be read (its chunks
    /// are then `EIO`, the rest of the plotfile is not affected).
    pub data: Result<FabData, String>,
}

#[derive(Clone, Copy, Debug)]
pub struct FabData {
    pub start: u64,
    pub elem: ElemType,
}

pub struct Species {
    pub name: String,
    pub header: ParticleHeader,
    /// `DATA_<5 digits>` files by (level, file number).
    pub files: HashMap<(usize, u32), Arc<SourceFile>>,
}

impl MultiFab {
    /// The field indices this MultiFab holds.
    pub fn fields(&self) -> std::ops::Range<usize> {
        self.first_field..self.first_field + self.vismf.ncomp
    }
}

/// Reads a plotfile's metadata. A `Header` or `Cell_H` that does not parse fails the whole
/// plotfile; an unreadable FAB or particle species only fails its own reads or itself.
pub fn read(path: &Path) -> Result<Plotfile, SourceError> {
    let text = read_text(&path.join("Header"))?;
    let header = header::parse(&text).map_err(|e| SourceError::invalid(&path.join("Header"), e))?;
    let mut skipped = Vec::new();
    let mut levels = Vec::with_capacity(header.levels.len());
    for (l, level) in header.levels.iter().enumerate() {
        let mut multifabs = Vec::new();
        let mut first_field = 0;
        for mf_path in &level.multifabs {
            // Whatever is wrong with a MultiFab, say which Header line led to it.
            let named = text
                .lines()
                .position(|line| line.split_whitespace().any(|t| t == mf_path))
                .map_or(0, |i| i + 1);
            let context = |e: SourceError| {
                SourceError::invalid(
                    &path.join("Header"),
                    format!("line {named} names '{mf_path}': {e}"),
                )
            };
            let mf = read_multifab(path, mf_path, first_field, header.dim).map_err(context)?;
            first_field += mf.vismf.ncomp;
            if let Some(b) = mf.vismf.boxes.iter().find(|b| !b.is_cell_centred()) {
                // Node- or face-centred boxes overlap their neighbours and sit half a cell off the
                // cell-centre coordinates; placing them on the cell grid would misplace them.
                let names = header.fields.get(mf.fields()).unwrap_or_default().join(", ");
                skipped.push((
                    format!("level_{l}/{{{names}}}"),
                    format!(
                        "{mf_path}: not cell-centred (IndexType {:?}); only cell data are shown",
                        b.typ
                    ),
                ));
                continue;
            }
            let domain = &level.domain;
            if let Some(i) = mf.vismf.boxes.iter().position(|b| !within(b, domain)) {
                let (b, line) = (&mf.vismf.boxes[i], mf.vismf.box_lines[i]);
                return Err(context(SourceError::invalid(
                    &path.join(format!("{mf_path}_H")),
                    format!("line {line}: box {b} lies outside the level-{l} domain {domain}"),
                )));
            }
            multifabs.push(mf);
        }
        if first_field != header.fields.len() && !level.multifabs.is_empty() {
            return Err(SourceError::invalid(
                &path.join("Header"),
                format!(
                    "level {l}: its MultiFabs hold {first_field} components (line 3 of their \
                     Cell_H), line 2 names {} fields",
                    header.fields.len()
                ),
            ));
        }
        levels.push(Level { multifabs });
    }
    let species = read_species(path, header.dim, &mut skipped);
    Ok(Plotfile {
        header,
        levels,
        species,
        skipped,
    })
}

fn within(b: &IBox, domain: &IBox) -> bool {
    (0..b.dim()).all(|d| b.lo[d] >= domain.lo[d] && b.hi[d] <= domain.hi[d])
}

fn read_text(path: &Path) -> Result<String, SourceError> {
    let bytes = std::fs::read(path).map_err(|e| SourceError::io(path, e))?;
    String::from_utf8(bytes).map_err(|_| SourceError::invalid(path, "not a text file"))
}

/// `relative`, a name the plotfile's own headers give, joined to `dir`; refused if it leaves
/// the plotfile `root`, by a root or `..` component or through a symbolic link, so that a
/// plotfile never shows another file's bytes.
fn inside(root: &Path, dir: &Path, relative: &str) -> Result<PathBuf, SourceError> {
    let rel = Path::new(relative);
    let path = dir.join(rel);
    if rel.components().all(|c| matches!(c, Component::Normal(_))) && stays_in(root, &path) {
        Ok(path)
    } else {
        Err(SourceError::invalid(
            dir,
            format!("'{relative}' leads outside the plotfile"),
        ))
    }
}

/// Whether `path` resolves inside `root`. A path that does not exist stays: nothing will
/// be read from it (a [`SourceFile`] missing when described never opens).
fn stays_in(root: &Path, path: &Path) -> bool {
    match (root.canonicalize(), path.canonicalize()) {
        (Ok(root), Ok(path)) => path.starts_with(root),
        (Ok(_), Err(_)) => true,
        (Err(_), _) => false,
    }
}

fn read_multifab(
    root: &Path,
    mf_path: &str,
    first_field: usize,
    dim: usize,
) -> Result<MultiFab, SourceError> {
    let header_path = inside(root, root, &format!("{mf_path}_H"))?;
    let vismf = vismf::parse(&read_text(&header_path)?).map_err(|e| SourceError::invalid(&header_path, e))?;
    if vismf.boxes.iter().any(|b| b.dim() != dim) {
        return Err(SourceError::invalid(
            &header_path,
            format!("boxes are not {dim}-dimensional like the Header"),
        ));
    }
    let dir = header_path.parent().unwrap_or(root).to_path_buf();
    let mut files: HashMap<String, (Arc<SourceFile>, Option<File>)> = HashMap::new();
    let mut fabs = Vec::with_capacity(vismf.fabs.len());
    for (valid, on_disk) in vismf.boxes.iter().zip(&vismf.fabs) {
        let stored = valid.grown(&vismf.ngrow);
        let entry = match files.get_mut(&on_disk.file) {
            Some(entry) => entry,
            None => {
                let path = inside(root, &dir, &on_disk.file)?;
                let handle = File::open(&path).ok();
                files
                    .entry(on_disk.file.clone())
                    .or_insert((SourceFile::new(path), handle))
            }
        };
        let (file, handle) = (entry.0.clone(), entry.1.as_ref());
        let data = match vismf.real {
            Some(elem) => Ok(FabData {
                start: on_disk.offset,
                elem,
            }),
            None => fab_data(handle, on_disk.offset, &stored, vismf.ncomp),
        }
        .and_then(|data| fits(data, &stored, vismf.ncomp, handle))
        .map_err(|e| format!("{} offset {}: {e}", file.path().display(), on_disk.offset));
        if let Err(e) = &data {
            warn!("plotfile FAB unreadable, its chunks will fail: {e}");
        }
        fabs.push(Fab {
            valid: valid.clone(),
            stored,
            file,
            data,
        });
    }
    Ok(MultiFab {
        path: mf_path.into(),
        first_field,
        vismf,
        fabs,
    })
}

/// Reads and checks a version-1 FAB header: it must describe the stored box and the
/// MultiFab's component count.
fn fab_data(handle: Option<&File>, offset: u64, stored: &IBox, ncomp: usize) -> Result<FabData, String> {
    let handle = handle.ok_or("cannot open the data file")?;
    let mut buf = vec![0; FAB_HEADER_READ];
    let n = read_at_most(handle, &mut buf, offset).map_err(|e| e.to_string())?;
    let fab = super::fab::fab_header(&buf[..n])?;
    if fab.fab_box.lo != stored.lo || fab.fab_box.hi != stored.hi {
        return Err(format!("FAB box {} where Cell_H says {stored}", fab.fab_box));
    }
    if fab.ncomp != ncomp {
        return Err(format!(
            "FAB has {} components where Cell_H says {ncomp}",
            fab.ncomp
        ));
    }
    Ok(FabData {
        start: offset + fab.len,
        elem: fab.real,
    })
}

/// `Level_<l>/DATA_<5 digits>`; old writers used 4 digits.
fn data_file(dir: &Path, level: usize, file: u32) -> PathBuf {
    let level_dir = dir.join(format!("Level_{level}"));
    let five = level_dir.join(format!("DATA_{file:05}"));
    let four = level_dir.join(format!("DATA_{file:04}"));
    if !five.exists() && four.exists() {
        four
    } else {
        five
    }
}

/// A FAB cannot hold more bytes than its whole file: such a claim is a corrupt header, and
/// refusing it here keeps every offset computed from the box within the file's size.
/// (A FAB that merely runs past the end of a truncated file stays: the parts that exist read.)
fn fits(data: FabData, stored: &IBox, ncomp: usize, handle: Option<&File>) -> Result<FabData, String> {
    let len = handle
        .and_then(|h| h.metadata().ok())
        .map_or(u64::MAX, |m| m.len());
    let bytes = stored
        .num_points()
        .saturating_mul(ncomp as u64)
        .saturating_mul(data.elem.size());
    if bytes > len {
        return Err(format!(
            "FAB claims {bytes} bytes, more than its whole file ({len})"
        ));
    }
    Ok(data)
}

fn read_at_most(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64)? {
            0 => break,
            n => done += n,
        }
    }
    Ok(done)
}

/// Every sub-directory holding a particle `Header` is a species; one that does not parse is
/// left out with its reason.
fn read_species(root: &Path, dim: usize, skipped: &mut Vec<(String, String)>) -> Vec<Species> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir() && !p.is_symlink() && p.join("Header").is_file())
        .collect();
    dirs.sort();
    let mut species = Vec::new();
    for dir in dirs {
        let Some(name) = dir.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
            continue;
        };
        let text = match read_text(&dir.join("Header")) {
            Ok(text) if particles::is_version_line(text.lines().next().unwrap_or("")) => text,
            _ => continue, // not a particle species
        };
        match particles::parse(&text) {
            Ok(header) if header.dim == dim => {
                let paths: HashMap<_, _> = header
                    .grids
                    .iter()
                    .map(|g| ((g.level, g.file), data_file(&dir, g.level, g.file)))
                    .collect();
                if let Some(out) = paths.values().find(|p| !stays_in(root, p)) {
                    let reason = format!("{} leads outside the plotfile", out.display());
                    warn!(path = %dir.display(), "particle species left out: {reason}");
                    skipped.push((format!("particles/{name}"), reason));
                    continue;
                }
                let files = paths.into_iter().map(|(k, p)| (k, SourceFile::new(p))).collect();
                species.push(Species { name, header, files });
            }
            Ok(header) => skipped.push((
                format!("particles/{name}"),
                format!("{}-d particles in a {dim}-d plotfile", header.dim),
            )),
            Err(e) => {
                warn!(path = %dir.display(), "particle species left out: {e}");
                skipped.push((format!("particles/{name}"), e));
            }
        }
    }
    species
}
