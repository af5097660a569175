//! Entry points for the fuzz targets (`fuzz/`, see `fuzz/README.md`) and their regression
//! test (`tests/fuzz_regressions.rs`): one function per target, each taking the fuzzer's
//! bytes and driving the pure parsers on them, from memory, as the daemon would on a
//! corrupt file. A function returns whatever the parsers say (an error is a fine answer);
//! a panic, an allocation out of proportion to the input or a loop that does not end is
//! a finding.
//!
//! Not an API: the parser modules stay private (`pub(crate)`), this module is the one door.
//! `seeds` turns the fixtures into each target's starting corpus.

pub mod seeds;

use std::path::{Path, PathBuf};

use crate::source::fst::packing::{self, Packing, WordOrder};
use crate::source::fst::{self, Container};
use crate::source::plotfile;
use crate::source::wds::{self, IndexedShard, LoadStats, ShardSetIndex};
use crate::tree::{self, Group};

/// A fuzz target: its name (the `fuzz/fuzz_targets/<name>.rs` binary and the
/// `fuzz/corpus/<name>`, `fuzz/regressions/<name>` folders) and its function.
pub type Target = (&'static str, fn(&[u8]));

/// Every target, in the order `make fuzz` runs them.
pub const TARGETS: &[Target] = &[
    ("plotfile_header", plotfile_header),
    ("plotfile_cell_h", plotfile_cell_h),
    ("plotfile_fab_header", plotfile_fab_header),
    ("plotfile_particle_header", plotfile_particle_header),
    ("fst_xdf", fst_xdf),
    ("fst_rsf", fst_rsf),
    ("fst_tree", fst_tree),
    ("fst_decode", fst_decode),
    ("wds_tar", wds_tar),
    ("wds_tree", wds_tree),
    ("wds_npy", wds_npy),
    ("wds_index_cache", wds_index_cache),
];

/// The target called `name`.
pub fn target(name: &str) -> Option<fn(&[u8])> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// The plotfile `Header` (the model reads it as UTF-8 text, so other bytes never reach it).
pub fn plotfile_header(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = plotfile::header::parse(text);
    }
}

/// A VisMF `Cell_H` header, then the extents of its boxes as the model computes them.
pub fn plotfile_cell_h(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(h) = plotfile::vismf::parse(text) {
        for b in &h.boxes {
            let stored = b.grown(&h.ngrow);
            let _ = stored.num_points().saturating_mul(h.ncomp as u64);
        }
    }
}

/// The header line of a version-1 FAB record (the first bytes of the record), and the
/// RealDescriptor parser on its own.
pub fn plotfile_fab_header(data: &[u8]) {
    let _ = plotfile::fab::fab_header(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = plotfile::fab::real_descriptor(text);
    }
}

/// A particle species' `Header`.
pub fn plotfile_particle_header(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = plotfile::particles::parse(text);
    }
}

/// A whole XDF file image: header, directory pages, 72-byte entries, each record's dates
/// and levels.
pub fn fst_xdf(data: &[u8]) {
    fst_directory(data, Container::Xdf);
}

/// A whole RSF file image: segments, directory records with their metadata and JSON
/// extensions, each record's dates and levels.
pub fn fst_rsf(data: &[u8]) {
    fst_directory(data, Container::Rsf);
}

fn fst_directory(data: &[u8], container: Container) {
    let Ok(dir) = fst::file::read_image(data, data.len() as u64, container) else {
        return;
    };
    for r in &dir.records {
        let k = &r.keys;
        let _ = (k.dateo(), fst::date::Stamp(k.datev).to_unix());
        for ip in [k.ip1, k.ip2, k.ip3] {
            let _ = fst::ip::decode(ip);
        }
    }
}

/// A whole XDF or RSF file image (told apart by its magic, as `open` does) through what
/// `open` makes of its directory: variables, grids with the positional `>>`/`^^`/`^>`
/// records' payloads decoded, the `records/` table, and the root `zarr.json`. A target of
/// its own: building the tree costs twenty times the directory walk, which
/// [`fst_xdf`]/[`fst_rsf`] fuzz at full speed.
pub fn fst_tree(data: &[u8]) {
    let Some(container) = data.get(..fst::file::MAGIC_BYTES).and_then(Container::detect) else {
        return;
    };
    let Ok(dir) = fst::file::read_image(data, data.len() as u64, container) else {
        return;
    };
    let dataset = fst::mapping::build_from(Path::new("fuzz.fst"), data, container, dir);
    render(&dataset.root);
}

/// The root `zarr.json`, with every node's metadata consolidated in it, as the mount serves it.
fn render(root: &Group) {
    let _ = tree::render::group_document(&root.attributes, tree::render::consolidated_entries(root, ""));
}

/// Bytes before the payload in [`fst_decode`]'s input.
pub const FST_DECODE_HEADER: usize = 16;

/// One record payload through its datyp decoder. The input is [`FST_DECODE_HEADER`] bytes
/// — datyp, nbits, dasiz, a flags byte (bit 0: little-endian words, as an RSF file may
/// have), then ni, nj, nk as u32 LE — and the payload. The datyp byte is the stored one,
/// +64 and +128 included; +64 records also go through the missing-value pass.
pub fn fst_decode(data: &[u8]) {
    let Some((head, payload)) = data.split_first_chunk::<FST_DECODE_HEADER>() else {
        return;
    };
    let u32_at = |i: usize| u32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
    let p = Packing {
        datyp: head[0],
        nbits: head[1],
        dasiz: head[2],
        ni: u32_at(4),
        nj: u32_at(8),
        nk: u32_at(12),
    };
    let order = if head[3] & 1 == 1 {
        WordOrder::Little
    } else {
        WordOrder::Big
    };
    if let (Ok(mut values), Ok(element)) = (packing::unpack(&p, payload, order), p.element())
        && p.datyp & 64 != 0
    {
        packing::mark_missing(element, &mut values, f64::NAN);
    }
}

/// [`fst_decode`]'s input for a record: the inverse of its decoding of the first bytes.
pub fn fst_decode_input(p: &Packing, order: WordOrder, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![p.datyp, p.nbits, p.dasiz, u8::from(order == WordOrder::Little)];
    for v in [p.ni, p.nj, p.nk] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(payload);
    out
}

/// A WebDataset shard (ustar, GNU and PAX headers): the walk, the grouping into samples
/// and the `.npy` headers, as `index_reader` makes a shard's index.
pub fn wds_tar(data: &[u8]) {
    let _ = wds::index_reader(data, data.len() as u64);
}

/// A WebDataset shard through what `open` makes of its index: the features, the Zarr
/// group of the mapping and its `zarr.json`. A target of its own: the tree costs several
/// times the walk, which [`wds_tar`] fuzzes at full speed.
pub fn wds_tree(data: &[u8]) {
    let (index, _) = wds::index_reader(data, data.len() as u64);
    let shard = IndexedShard {
        path: PathBuf::from("shard.tar"),
        canonical: None,
        stamp: None,
        index,
    };
    map_wds(vec![shard]);
}

fn map_wds(shards: Vec<IndexedShard>) {
    let index = ShardSetIndex {
        name: "fuzz".into(),
        shards,
        stats: LoadStats::default(),
    };
    render(&wds::mapping::build(index, &mut wds::planner::Planner::new()));
}

/// An `.npy` member (its header, `member_size` = the input's length), as the indexer reads it.
pub fn wds_npy(data: &[u8]) {
    if wds::npy::header_len(data).is_ok() {
        let _ = wds::npy::parse(data, data.len() as u64);
    }
}

/// A persistent index file from the cache directory. With the first byte even, the rest
/// is taken as a payload and framed with the right magic, version and checksum (a fuzzer
/// never guesses a checksum; a file written by a buggy or other zarrmount has a good one);
/// with it odd, the rest is the file as is. What decodes is then mapped like a fresh index.
pub fn wds_index_cache(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let file = if mode & 1 == 0 {
        wds::index::frame(rest)
    } else {
        rest.to_vec()
    };
    if let Ok(cached) = wds::index::decode(&file) {
        let shards = cached
            .into_iter()
            .map(|(path, stamp, index)| IndexedShard {
                canonical: Some(path.clone()),
                path,
                stamp: Some(stamp),
                index,
            })
            .collect();
        map_wds(shards);
    }
}
