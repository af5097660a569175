//! zarrs reads, through a real mount, arrays that zarr-python wrote into a memory store.
//! Run with `--features fuse-tests`; needs /dev/fuse and the venv the test command makes
//! (or `ZARRMOUNT_PYTHON` pointing at a Python with zarr 3).

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use zarrs::array::Array;
use zarrs::filesystem::FilesystemStore;

/// A foreground zarrmount; dropping it unmounts (lazily if needed) and reaps the daemon.
struct Mount {
    dir: tempfile::TempDir,
    daemon: Child,
}

impl Mount {
    fn new(sources: &[&str]) -> Mount {
        let dir = tempfile::tempdir().unwrap();
        let daemon = Command::new(env!("CARGO_BIN_EXE_zarrmount"))
            .arg("-f")
            .args(sources)
            .arg(dir.path())
            .spawn()
            .expect("zarrmount starts");
        let mount = Mount { dir, daemon };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !mount.is_mounted() {
            assert!(Instant::now() < deadline, "mount did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        mount
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn is_mounted(&self) -> bool {
        let wanted = self.dir.path().to_string_lossy().into_owned();
        std::fs::read_to_string("/proc/mounts")
            .unwrap()
            .lines()
            .any(|l| l.split(' ').nth(1) == Some(&wanted))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
        if self.is_mounted() {
            let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.daemon.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

fn python() -> PathBuf {
    std::env::var_os("ZARRMOUNT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"))
}

#[test]
fn zarrs_reads_what_zarr_python_wrote() {
    let mount = Mount::new(&["memory://scratch"]);
    let script = r#"
import sys, numpy as np, zarr
from zarr.codecs import GzipCodec
root = sys.argv[1]
a = zarr.create_array(f"{root}/f4", shape=(250, 130), chunks=(100, 64), dtype="f4")
a[:] = np.arange(250 * 130, dtype="f4").reshape(250, 130) * 0.5
b = zarr.create_array(f"{root}/i2", shape=(7, 11, 13), chunks=(3, 4, 5), dtype="i2", compressors=GzipCodec())
b[:] = (np.arange(7 * 11 * 13) % 6000 - 3000).astype("i2").reshape(7, 11, 13)
c = zarr.create_array(f"{root}/u1", shape=(1000,), chunks=(256,), dtype="u1", compressors=None)
c[:] = (np.arange(1000) * 7 % 256).astype("u1")
"#;
    let status = Command::new(python())
        .arg("-c")
        .arg(script)
        .arg(mount.path())
        .status()
        .expect("python runs");
    assert!(status.success(), "zarr-python failed to write");

    let store = Arc::new(FilesystemStore::new(mount.path()).unwrap());
    let f4 = Array::open(store.clone(), "/f4").unwrap();
    let got: Vec<f32> = f4.retrieve_array_subset(&f4.subset_all()).unwrap();
    let want: Vec<f32> = (0..250 * 130).map(|i| i as f32 * 0.5).collect();
    assert_eq!(got, want);

    let i2 = Array::open(store.clone(), "/i2").unwrap();
    let got: Vec<i16> = i2.retrieve_array_subset(&i2.subset_all()).unwrap();
    let want: Vec<i16> = (0..7 * 11 * 13).map(|i| (i % 6000 - 3000) as i16).collect();
    assert_eq!(got, want);

    let u1 = Array::open(store, "/u1").unwrap();
    let got: Vec<u8> = u1.retrieve_array_subset(&u1.subset_all()).unwrap();
    let want: Vec<u8> = (0..1000).map(|i| (i * 7 % 256) as u8).collect();
    assert_eq!(got, want);
}

#[test]
fn zarrs_reads_a_raw_source_as_its_file_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data.bin");
    let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i * 13 % 251) as u8).collect();
    std::fs::write(&file, &bytes).unwrap();
    let mount = Mount::new(&[&format!("raw://{}", file.display())]);
    let store = Arc::new(FilesystemStore::new(mount.path()).unwrap());
    let array = Array::open(store, "/bytes").unwrap();
    let got: Vec<u8> = array.retrieve_array_subset(&array.subset_all()).unwrap();
    assert_eq!(got, bytes);
}

/// Every field of every level of three plotfile fixtures (3 levels with a negative-index
/// domain, big-endian f32, per-dimension ghost cells), read by zarrs through the mount,
/// equals what the fixture generator wrote (NaN where no box covers a cell).
#[test]
fn zarrs_reads_plotfile_levels_as_written() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/amrex");
    let expected = tempfile::tempdir().unwrap();
    let script = r#"
import sys
from pathlib import Path
import numpy as np
sys.path.insert(0, sys.argv[1])
import make_plotfiles as m
out = Path(sys.argv[2])
for name in sys.argv[3:]:
    pf = m.build(name)
    for level in range(len(pf.levels)):
        for field in pf.fields:
            values = m.composite(pf, level, field).astype("<f8")
            values.tofile(out / f"{name}.{level}.{field}")
"#;
    let names = ["pf3d_3lev_offset", "pf2d_v1_f32be", "pf2d_ngrowvec_v2"];
    let status = Command::new(python())
        .arg("-c")
        .arg(script)
        .arg(&fixtures)
        .arg(expected.path())
        .args(names)
        .status()
        .expect("python runs");
    assert!(status.success(), "the fixture generator failed");

    let mount = Mount::new(&[fixtures.to_str().unwrap()]);
    let store = Arc::new(FilesystemStore::new(mount.path()).unwrap());
    let mut checked = 0;
    for entry in std::fs::read_dir(expected.path()).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_str().unwrap().to_string();
        let mut parts = file.splitn(3, '.');
        let (name, level, field) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let want: Vec<f64> = std::fs::read(&path)
            .unwrap()
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
            .collect();
        let array = Array::open(store.clone(), &format!("/{name}/level_{level}/{field}")).unwrap();
        let subset = array.subset_all();
        let got: Vec<f64> = if name.contains("f32") {
            let values: Vec<f32> = array.retrieve_array_subset(&subset).unwrap();
            values.into_iter().map(f64::from).collect()
        } else {
            array.retrieve_array_subset(&subset).unwrap()
        };
        assert_eq!(got.len(), want.len(), "{file}");
        let same = got
            .iter()
            .zip(&want)
            .all(|(g, w)| g == w || (g.is_nan() && w.is_nan()));
        assert!(same, "{file}: values differ from what the generator wrote");
        checked += 1;
    }
    assert_eq!(checked, 3 * 3 + 2 * 3 + 2 * 3, "levels × fields checked");
}

/// An RPN standard file variable read by zarrs through the mount: every chunk of `TT` in
/// fixtures/fst/levels.fst (4 pressure levels × 3 times, datyp 1 packed to 16 bits) holds
/// librmn 19.5's decoding of its record (the fixture's reference `.npy`), found by the
/// record's validity time and level on the variable's coordinates; the (250 hPa, 2 h) record
/// the file lacks is an absent chunk, read as the fill value.
#[test]
fn zarrs_reads_fst_records_as_librmn_decodes_them() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/fst");
    let text = std::fs::read_to_string(fixtures.join("reference/levels.json")).unwrap();
    let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
    let records: Vec<&serde_json::Value> = reference["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["nomvar"] == "TT")
        .collect();
    assert_eq!(records.len(), 11);

    let mount = Mount::new(&[fixtures.join("levels.fst").to_str().unwrap()]);
    let store = Arc::new(FilesystemStore::new(mount.path()).unwrap());
    let tt = Array::open(store.clone(), "/TT").unwrap();
    let dims: Vec<String> = tt
        .dimension_names()
        .clone()
        .unwrap()
        .into_iter()
        .map(|d| d.unwrap())
        .collect();
    let time = Array::open(store.clone(), &format!("/{}", dims[0])).unwrap();
    let level = Array::open(store.clone(), &format!("/{}", dims[1])).unwrap();
    assert_eq!(time.attributes()["axis"], "T");
    assert_eq!(level.attributes()["axis"], "Z");
    let units = time.attributes()["units"].as_str().unwrap();
    let origin = unix_seconds(units.strip_prefix("seconds since ").unwrap());
    let offsets: Vec<i64> = time.retrieve_array_subset(&time.subset_all()).unwrap();
    let times: Vec<i64> = offsets.iter().map(|t| origin + t).collect();
    let levels: Vec<f32> = level.retrieve_array_subset(&level.subset_all()).unwrap();
    assert_eq!(tt.shape(), &[times.len() as u64, levels.len() as u64, 6, 8]);

    let mut found = std::collections::HashSet::new();
    for rec in records {
        let valid = unix_seconds(rec["datev_iso"].as_str().unwrap());
        let t = times
            .iter()
            .position(|x| *x == valid)
            .expect("validity time on the axis");
        let value = rec["ip1_value"].as_f64().unwrap() as f32;
        let l = levels
            .iter()
            .position(|x| *x == value)
            .expect("level on the axis");
        let want = read_npy_f32(&fixtures.join("reference").join(rec["npy"].as_str().unwrap()));
        let got: Vec<f32> = tt
            .retrieve_chunk_if_exists(&[t as u64, l as u64, 0, 0])
            .unwrap()
            .expect("the record's chunk exists");
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&want), "TT record {}", rec["index"]);
        assert!(found.insert((t, l)), "two records in chunk ({t}, {l})");
    }
    for t in 0..times.len() as u64 {
        for l in 0..levels.len() as u64 {
            if found.contains(&(t as usize, l as usize)) {
                continue;
            }
            assert!(
                tt.retrieve_chunk_if_exists::<Vec<f32>>(&[t, l, 0, 0])
                    .unwrap()
                    .is_none()
            );
            let subset = zarrs::array::ArraySubset::new_with_ranges(&[t..t + 1, l..l + 1, 0..6, 0..8]);
            let fill: Vec<f32> = tt.retrieve_array_subset(&subset).unwrap();
            assert!(
                fill.iter().all(|x| x.is_nan()),
                "chunk ({t}, {l}) is not the fill value"
            );
        }
    }
    assert_eq!(
        found.len() + 1,
        times.len() * levels.len(),
        "one (time, level) has no record"
    );
}

/// Unix seconds of `YYYY-MM-DD[T ]HH:MM:SS` (UTC, proleptic Gregorian).
fn unix_seconds(text: &str) -> i64 {
    let n: Vec<i64> = text
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse().unwrap())
        .collect();
    let [y, m, d, hh, mm, ss] = n[..] else {
        panic!("not a date: {text}")
    };
    // days from civil (Howard Hinnant's algorithm)
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + hh * 3600 + mm * 60 + ss
}

/// The values of a little-endian float32 `.npy` file (format versions 1 to 3, C order).
fn read_npy_f32(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{}: not an npy file", path.display());
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize, 12),
    };
    let header = std::str::from_utf8(&bytes[start..start + len]).unwrap();
    assert!(header.contains("'descr': '<f4'"), "{}: {header}", path.display());
    assert!(
        header.contains("'fortran_order': False"),
        "{}: {header}",
        path.display()
    );
    bytes[start + len..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

/// A WebDataset shard set read by zarrs through the mount: per sample, the `.npy` members
/// hold what fixtures/wds/make_shards.py wrote (README "The train samples"), whatever the
/// payload's order (`fortran.npy` is Fortran-ordered in the tar) or byte order
/// (`bigendian.npy` is `>f8`); `extra.npy`, missing from samples 1 and 4, reads as NaN there.
#[test]
fn zarrs_reads_webdataset_npy_members_as_written() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/wds");
    let spec = format!("wds://{}/train-{{000000..000002}}.tar", fixtures.display());
    let mount = Mount::new(&["-o", "index_dir=none", &spec]);
    let store = Arc::new(FilesystemStore::new(mount.path()).unwrap());
    let read_f32 = |name: &str| -> Vec<f32> {
        let a = Array::open(store.clone(), name).unwrap();
        a.retrieve_array_subset(&a.subset_all()).unwrap()
    };
    let image = read_f32("/image.npy");
    let fortran: Vec<i32> = {
        let a = Array::open(store.clone(), "/fortran.npy").unwrap();
        assert_eq!(a.shape(), &[6, 2, 3, 4]);
        a.retrieve_array_subset(&a.subset_all()).unwrap()
    };
    let big: Vec<f64> = {
        let a = Array::open(store.clone(), "/bigendian.npy").unwrap();
        a.retrieve_array_subset(&a.subset_all()).unwrap()
    };
    let extra = read_f32("/extra.npy");
    for i in 0..6usize {
        let want: Vec<f32> = (0..12).map(|k| k as f32 * 0.25 + i as f32).collect();
        assert_eq!(image[i * 12..(i + 1) * 12], want[..], "image.npy sample {i}");
        let want: Vec<i32> = (0..24).map(|k| k - 100 * i as i32).collect();
        assert_eq!(fortran[i * 24..(i + 1) * 24], want[..], "fortran.npy sample {i}");
        let want: Vec<f64> = (0..5).map(|k| i as f64 + k as f64 / 8.0).collect();
        assert_eq!(big[i * 5..(i + 1) * 5], want[..], "bigendian.npy sample {i}");
        let pair = &extra[i * 2..(i + 1) * 2];
        if i == 1 || i == 4 {
            assert!(pair.iter().all(|v| v.is_nan()), "extra.npy sample {i}: {pair:?}");
        } else {
            assert_eq!(pair, [i as f32, -(i as f32)], "extra.npy sample {i}");
        }
    }
}
