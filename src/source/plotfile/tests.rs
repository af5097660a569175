//! The reader on the committed fixtures (fixtures/amrex), without FUSE: chunk plans, values
//! against the generator's analytic fields, and damaged copies.

use std::path::{Path, PathBuf};

use super::Plotfile;
use crate::io::PreadEngine;
use crate::source::{Dataset, Decode, Source};
use crate::tree::{ArraySpec, Node};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/amrex")
        .join(name)
}

fn array<'a>(ds: &'a Dataset, path: &str) -> &'a ArraySpec {
    let parts: Vec<String> = path.split('/').map(str::to_string).collect();
    let (name, groups) = parts.split_last().unwrap();
    match ds.root.subgroup(groups).unwrap().members.get(name) {
        Some(Node::Array(spec)) => spec,
        _ => panic!("no array {path}"),
    }
}

fn chunk_f64(ds: &Dataset, spec: &ArraySpec, coords: &[u64]) -> Result<Vec<f64>, String> {
    let plan = ds.planner.plan(spec.id, coords).map_err(|e| e.to_string())?;
    let bytes = plan
        .execute(
            &PreadEngine::new(1, crate::io::BufferPool::new(0)).unwrap(),
            spec.chunk_bytes(),
        )
        .map_err(|e| e.to_string())?;
    Ok(bytes
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
        .collect())
}

/// The generator's density: 1 + x² + 2y + 3z + t at the cell centre.
fn density(x: f64, y: f64, z: f64, t: f64) -> f64 {
    1.0 + x * x + 2.0 * y + 3.0 * z + t
}

#[test]
fn detects_plotfiles_only() {
    assert!(Plotfile.detect(&fixture("pf3d_v1_f64le")));
    assert!(!Plotfile.detect(&fixture("series")));
    assert!(!Plotfile.detect(&fixture("pf3d_v1_f64le/Level_0")));
}

#[test]
fn a_box_sized_chunk_is_one_byte_range_with_the_written_values() {
    let ds = Plotfile.open(&fixture("pf3d_v1_f64le")).unwrap();
    let spec = array(&ds, "level_0/density");
    assert_eq!(
        (spec.shape.clone(), spec.chunk_shape.clone()),
        (vec![16, 16, 16], vec![8, 8, 8])
    );
    let plan = ds.planner.plan(spec.id, &[0, 0, 1]).unwrap();
    assert_eq!(plan.extents.len(), 1);
    assert_eq!(plan.extents[0].len, 8 * 8 * 8 * 8);
    assert!(matches!(plan.decode, Decode::Concat));
    // Chunk (z 0, y 0, x 1): cells x 8..16 of dx 1/8 from -1, y and z from 0 / 0.5 by 1/16.
    let values = chunk_f64(&ds, spec, &[0, 0, 1]).unwrap();
    for (n, v) in values.iter().enumerate() {
        let (i, j, k) = (n % 8 + 8, n / 8 % 8, n / 64);
        let (x, y, z) = (
            -1.0 + (i as f64 + 0.5) / 8.0,
            (j as f64 + 0.5) / 16.0,
            0.5 + (k as f64 + 0.5) / 16.0,
        );
        assert!(
            (v - density(x, y, z, 0.25)).abs() < 1e-12,
            "cell {i},{j},{k}: {v}"
        );
    }
    // A level-1 chunk no box covers has no plan.
    let fine = array(&ds, "level_1/density");
    let missing = (0..fine.chunk_grid()[0])
        .map(|z| vec![z, 0, 0])
        .find(|c| !fine.has_chunk(c));
    assert!(ds.planner.plan(fine.id, &missing.unwrap()).is_err());
}

#[test]
fn ghost_cells_are_cropped_and_big_endian_f32_is_declared_not_converted() {
    let ds = Plotfile.open(&fixture("pf3d_ngrow1")).unwrap();
    let spec = array(&ds, "level_0/density");
    let plan = ds.planner.plan(spec.id, &[0, 0, 0]).unwrap();
    assert!(matches!(plan.decode, Decode::With(_)), "a grown FAB is gathered");
    let values = chunk_f64(&ds, spec, &[0, 0, 0]).unwrap();
    assert!(
        values.iter().all(|v| v.abs() < 1e3),
        "ghost values (-1e30) leaked"
    );

    let ds = Plotfile.open(&fixture("pf2d_v1_f32be")).unwrap();
    let spec = array(&ds, "level_0/density");
    assert_eq!(spec.endian, crate::tree::Endian::Big);
    assert_eq!(ds.planner.plan(spec.id, &[0, 0]).unwrap().extents.len(), 1);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

#[test]
fn a_truncated_cell_d_fails_only_the_chunks_it_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("plt");
    copy_dir(&fixture("pf3d_v1_f64le"), &copy);
    let data = copy.join("Level_0/Cell_D_00000");
    let len = std::fs::metadata(&data).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&data)
        .unwrap()
        .set_len(len / 2)
        .unwrap();

    let ds = Plotfile.open(&copy).unwrap();
    let spec = array(&ds, "level_0/density");
    let mut failed = Vec::new();
    let mut good = 0;
    for z in 0..2 {
        for y in 0..2 {
            for x in 0..2 {
                match chunk_f64(&ds, spec, &[z, y, x]) {
                    Ok(_) => good += 1,
                    Err(e) => failed.push(e),
                }
            }
        }
    }
    assert!(!failed.is_empty() && good > 0, "{good} good, {failed:?}");
    assert!(failed.iter().all(|e| e.contains("Cell_D_00000")), "{failed:?}");
}

#[test]
fn a_garbage_cell_h_fails_the_plotfile_with_its_path() {
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("plt");
    copy_dir(&fixture("pf3d_v4_f64le"), &copy);
    std::fs::write(
        copy.join("Level_1/Cell_H"),
        "4\n1\n3\n0\n(2 0\n((0,0,0) (7,7,7) (0,0,0))\n",
    )
    .unwrap();
    let err = Plotfile.open(&copy).err().unwrap().to_string();
    assert!(err.contains("Level_1/Cell_H") && err.contains("line"), "{err}");

    std::fs::write(copy.join("Header"), "HyperCLaw-V1.1\nthree\n").unwrap();
    let err = Plotfile.open(&copy).err().unwrap().to_string();
    assert!(err.contains("Header line 2"), "{err}");
}

#[test]
fn node_centred_multifabs_are_left_out_with_a_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("plt");
    copy_dir(&fixture("pf3d_v2_f32le"), &copy);
    let cell_h = copy.join("Level_1/Cell_H");
    let text = std::fs::read_to_string(&cell_h).unwrap();
    std::fs::write(&cell_h, text.replace("(0,0,0))", "(1,1,1))")).unwrap();
    let ds = Plotfile.open(&copy).unwrap();
    let level1 = ds.root.subgroup(&["level_1".into()]).unwrap();
    assert!(!level1.members.contains_key("density"));
    let skipped = ds.root.attributes["skipped"].to_string();
    assert!(
        skipped.contains("not cell-centred") && skipped.contains("density"),
        "{skipped}"
    );
    assert!(
        ds.root
            .subgroup(&["level_0".into()])
            .unwrap()
            .members
            .contains_key("density")
    );
}
