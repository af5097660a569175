//! Starting corpora from the repository's fixtures (`fixtures/amrex`, `fixtures/fst`,
//! `fixtures/wds`): whole files for the container targets, header slices for the header
//! targets, record payloads in [`super::fst_decode`]'s encoding, `.npy` members, and
//! index files the cache would write. Run by `examples/fuzz_seeds.rs` (`make fuzz-seeds`).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::source::fst::file::{Container, MAGIC_BYTES};
use crate::source::fst::{self};
use crate::source::plotfile;
use crate::source::wds::index::{Stamp, encode};
use crate::source::wds::{self, IndexedShard};

/// Seeds per target: file contents, deduplicated (a `BTreeMap` keyed by content hash).
pub type Corpus = BTreeMap<&'static str, BTreeMap<u64, Vec<u8>>>;

/// Payloads of one (datyp, nbits, dasiz, order) kept for `fst_decode`: enough variety in
/// sizes without thousands of near-copies.
const RECORDS_PER_PACKING: usize = 3;
/// FAB header lines kept per data file.
const FABS_PER_FILE: usize = 4;
/// Bytes of a FAB record kept past its header line (the target reads the line only).
const FAB_TAIL: usize = 16;

/// Collects the seeds of every target from `fixtures` (the repository's `fixtures/`).
pub fn collect(fixtures: &Path) -> io::Result<Corpus> {
    let mut corpus = Corpus::new();
    for (name, _) in super::TARGETS {
        corpus.insert(name, BTreeMap::new());
    }
    let mut add = |target: &'static str, bytes: Vec<u8>| {
        if let Some(seeds) = corpus.get_mut(target) {
            seeds.insert(wds::index::hash(&bytes), bytes);
        }
    };
    let mut files = Vec::new();
    walk(fixtures, &mut files)?;
    files.sort();
    for path in &files {
        let bytes = fs::read(path)?;
        let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
        let first_line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
        let first_line = String::from_utf8_lossy(first_line);
        if name == "Header" && plotfile::header::is_version_line(&first_line) {
            add("plotfile_header", bytes);
        } else if name == "Header" && plotfile::particles::is_version_line(&first_line) {
            add("plotfile_particle_header", bytes);
        } else if name.ends_with("_H") && name != "Particle_H" {
            add("plotfile_cell_h", bytes);
        } else if name.starts_with("Cell_D_") {
            for fab in fab_headers(&bytes).take(FABS_PER_FILE) {
                add("plotfile_fab_header", fab.to_vec());
            }
        } else if name.ends_with(".tar") {
            for seed in wds_seeds(path, &bytes) {
                add(seed.0, seed.1);
            }
            add("wds_tar", bytes.clone());
            add("wds_tree", bytes);
        } else if let Some(container) = bytes.get(..MAGIC_BYTES).and_then(Container::detect) {
            for payload in fst_decode_seeds(&bytes, container) {
                add("fst_decode", payload);
            }
            let target = match container {
                Container::Xdf => "fst_xdf",
                Container::Rsf => "fst_rsf",
            };
            add(target, bytes.clone());
            add("fst_tree", bytes);
        }
    }
    Ok(corpus)
}

/// Writes `corpus` as `<dir>/<target>/<hash>` files; returns the count per target.
pub fn write(corpus: &Corpus, dir: &Path) -> io::Result<Vec<(&'static str, usize)>> {
    let mut counts = Vec::new();
    for (target, seeds) in corpus {
        let out = dir.join(target);
        fs::create_dir_all(&out)?;
        for (hash, bytes) in seeds {
            fs::write(out.join(format!("seed-{hash:016x}")), bytes)?;
        }
        counts.push((*target, seeds.len()));
    }
    Ok(counts)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(&entry.path(), out)?;
        } else if kind.is_file() {
            out.push(entry.path());
        }
    }
    Ok(())
}

/// The FAB records of a data file: each header line and a few bytes after it.
fn fab_headers(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    const TAG: &[u8] = b"FAB ((";
    (0..bytes.len().saturating_sub(TAG.len()))
        .filter(move |&i| bytes[i..].starts_with(TAG))
        .filter_map(move |i| {
            let end = bytes[i..].iter().position(|b| *b == b'\n')?;
            Some(&bytes[i..(i + end + 1 + FAB_TAIL).min(bytes.len())])
        })
}

/// Each live record's payload as [`super::fst_decode`] input, a few per packing.
fn fst_decode_seeds(image: &[u8], container: Container) -> Vec<Vec<u8>> {
    let Ok(dir) = fst::file::read_image(image, image.len() as u64, container) else {
        return Vec::new();
    };
    let mut per_packing: BTreeMap<(u8, u8, u8, bool), usize> = BTreeMap::new();
    let mut out = Vec::new();
    for r in dir.records.iter().filter(|r| !r.deleted) {
        let k = &r.keys;
        let seen = per_packing
            .entry((
                k.datyp,
                k.nbits,
                k.dasiz,
                r.order == fst::packing::WordOrder::Little,
            ))
            .or_default();
        if *seen >= RECORDS_PER_PACKING {
            continue;
        }
        *seen += 1;
        let (Ok(start), Ok(len)) = (usize::try_from(r.payload_offset), usize::try_from(r.payload_len)) else {
            continue;
        };
        let Some(payload) = image.get(start..start.saturating_add(len)) else {
            continue;
        };
        out.push(super::fst_decode_input(&fst::packing_of(r), r.order, payload));
    }
    out
}

/// A shard's `.npy` members (whole) for `wds_npy`, and its index as the cache would
/// store it for `wds_index_cache`, in both of that target's modes.
fn wds_seeds(path: &Path, tar: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let (index, _) = wds::index_reader(tar, tar.len() as u64);
    let mut out = Vec::new();
    for field in index.samples.iter().flat_map(|s| &s.fields) {
        if field.npy.is_none() {
            continue;
        }
        let (Ok(start), Ok(len)) = (usize::try_from(field.offset), usize::try_from(field.size)) else {
            continue;
        };
        if let Some(member) = tar.get(start..start.saturating_add(len)) {
            out.push(("wds_npy", member.to_vec()));
        }
    }
    let shard = IndexedShard {
        path: path.to_path_buf(),
        canonical: Some(path.to_path_buf()),
        stamp: Some(Stamp {
            size: index.file_len,
            mtime_sec: 1_700_000_000,
            mtime_nsec: 0,
            ino: 1,
        }),
        index,
    };
    let file = encode(&[shard]);
    let mut framed = vec![1u8];
    framed.extend_from_slice(&file);
    out.push(("wds_index_cache", framed));
    if let Some(payload) = wds::index::payload(&file) {
        let mut bare = vec![0u8];
        bare.extend_from_slice(payload);
        out.push(("wds_index_cache", bare));
    }
    out
}
