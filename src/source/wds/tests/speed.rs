//! Indexing speed. The quick test runs always; `index_speed_1gib` writes a 1 GiB shard
//! set and compares this walker with the `tar` crate, and the cache load with indexing:
//! `cargo test --release --lib index_speed_1gib -- --ignored --nocapture`.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use super::super::header::flag;
use super::super::index::{IndexConfig, load_or_index};
use super::super::scan::index_file;
use super::super::shards::ShardSet;
use super::super::tar::Walker;
use super::super::testutil::{Hdr, npy, pax_record};

/// Writes a webdataset-like shard of about `bytes` bytes: per sample a PAX header before
/// every member (as webdataset's TarWriter does), `.cls`, `.json`, `.npy` and `.jpg`
/// members whose sizes come from `sizes` (min, max) by a fixed pseudo-random sequence.
fn write_shard(path: &Path, bytes: u64, sizes: (u64, u64)) -> u64 {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path).expect("create"));
    let zeros = vec![0u8; sizes.1 as usize + 512];
    let pax = pax_record("mtime", b"1795262227.959");
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let (mut written, mut members) = (0u64, 0u64);
    let mut i = 0u64;
    while written < bytes {
        for suffix in ["cls", "json", "npy", "jpg"] {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let size = match suffix {
                "cls" => 2,
                "json" => 100,
                _ => sizes.0 + x % (sizes.1 - sizes.0 + 1),
            };
            // A real `.npy` header (uint8, one dimension) in front of zeros.
            let size = if suffix == "npy" { size.max(128) } else { size };
            let npy_head = if suffix == "npy" {
                npy("|u1", &[size - 128], false, &[])
            } else {
                Vec::new()
            };
            let name = format!("sample_{i:09}.{suffix}");
            let head = Hdr {
                typeflag: flag::PAX_LOCAL,
                ..Hdr::file(b"././@PaxHeader", pax.len() as u64)
            };
            out.write_all(&head.block()).expect("w");
            out.write_all(&pax).expect("w");
            out.write_all(&zeros[..512 - pax.len()]).expect("w");
            out.write_all(&Hdr::file(name.as_bytes(), size).block())
                .expect("w");
            let padded = size.next_multiple_of(512);
            out.write_all(&npy_head).expect("w");
            out.write_all(&zeros[..padded as usize - npy_head.len()])
                .expect("w");
            written += 1536 + padded;
            members += 1;
        }
        i += 1;
    }
    out.write_all(&[0u8; 1024]).expect("w");
    out.flush().expect("flush");
    members
}

fn gbps(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / secs / 1e9
}

#[test]
fn index_speed_quick() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.tar");
    let members = write_shard(&path, 32 << 20, (1 << 10, 64 << 10));
    let started = Instant::now();
    let index = index_file(&path).expect("index");
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(
        index.members,
        members * 2 - members,
        "PAX headers are not members"
    );
    assert_eq!(index.samples.len() as u64, members / 4);
    let npy = index.samples[0].fields[2]
        .npy
        .clone()
        .expect("npy field")
        .expect("npy header");
    assert_eq!(npy.data_offset, 128);
    eprintln!("32 MiB shard: {members} members in {:.1} ms", secs * 1e3);
}

#[test]
#[ignore = "writes 2 GiB to the temp dir; run by hand in release mode"]
fn index_speed_1gib() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (label, sizes) in [
        ("tiny 0.1-2 KiB", (100, 2 << 10)),
        ("small 1-64 KiB", (1 << 10, 64 << 10)),
        ("large 64 KiB-1 MiB", (64 << 10, 1 << 20)),
    ] {
        let path = dir.path().join("train-000000.tar");
        let members = write_shard(&path, 1 << 30, sizes);
        let len = std::fs::metadata(&path).expect("meta").len();
        let file = File::open(&path).expect("open");
        // Warm the page cache.
        std::io::copy(&mut File::open(&path).expect("open"), &mut std::io::sink()).expect("warm");
        eprintln!("\n{label}: {len} bytes, {members} members");
        for (small, large) in [
            (4 << 10, 4 << 10),
            (4 << 10, 16 << 10),
            (4 << 10, 64 << 10),
            (4 << 10, 256 << 10),
        ] {
            let started = Instant::now();
            let mut walker = Walker::new(&file, len);
            walker.window.small = small;
            walker.window.large = large;
            let mut n = 0u64;
            while walker.next_entry().is_ok() {
                n += 1;
            }
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "  walker small {:>3} KiB large {:>3} KiB: {:.3} s, {:.2} GB/s, {} reads, {:.1} MB read ({n} entries)",
                small >> 10,
                large >> 10,
                secs,
                gbps(len, secs),
                walker.window.reads,
                walker.window.bytes_read as f64 / 1e6
            );
        }
        let started = Instant::now();
        let index = index_file(&path).expect("index");
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "  index_file (walk + group + npy): {:.3} s, {:.2} GB/s",
            secs,
            gbps(len, secs)
        );
        assert_eq!(index.samples.len() as u64, members / 4);
        for buffered in [false, true] {
            let started = Instant::now();
            let file = File::open(&path).expect("open");
            let mut n = 0u64;
            let mut last = 0;
            if buffered {
                let mut archive = tar::Archive::new(BufReader::new(file));
                for entry in archive.entries_with_seek().expect("entries") {
                    last = entry.expect("entry").raw_file_position();
                    n += 1;
                }
            } else {
                let mut archive = tar::Archive::new(file);
                for entry in archive.entries_with_seek().expect("entries") {
                    last = entry.expect("entry").raw_file_position();
                    n += 1;
                }
            }
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "  tar crate entries_with_seek over {}: {:.3} s, {:.2} GB/s ({n} entries, last at {last})",
                if buffered { "BufReader<File>" } else { "File" },
                secs,
                gbps(len, secs)
            );
        }
        let set = ShardSet {
            name: "train".into(),
            shards: vec![path.clone()],
        };
        let config = IndexConfig {
            cache_dir: Some(dir.path().join("cache")),
            explicit: false,
        };
        let _ = std::fs::remove_dir_all(dir.path().join("cache"));
        let started = Instant::now();
        let built = load_or_index(&set, &config);
        let build = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let loaded = load_or_index(&set, &config);
        let load = started.elapsed().as_secs_f64();
        assert_eq!(loaded.stats.reused, 1);
        assert_eq!(loaded.shards, built.shards);
        let cache_bytes = std::fs::read(built.stats.cache_file.as_ref().expect("file")).expect("read");
        let started = Instant::now();
        let decoded = super::super::index::decode(&cache_bytes).expect("decode");
        let decode = started.elapsed().as_secs_f64();
        let started = Instant::now();
        drop(decoded);
        let dropped = started.elapsed().as_secs_f64();
        eprintln!("  decode alone {:.3} s, drop {:.3} s", decode, dropped);
        let json = serde_json::to_vec(&as_json(&built.shards[0].index)).expect("json");
        let started = Instant::now();
        let value: serde_json::Value = serde_json::from_slice(&json).expect("parse");
        let parse = started.elapsed().as_secs_f64();
        drop(value);
        eprintln!(
            "  the same index as JSON: {:.1} MB ({:.1}x the binary file), parsed in {:.3} s",
            json.len() as f64 / 1e6,
            json.len() as f64 / cache_bytes.len() as f64,
            parse
        );
        let cache_len = std::fs::metadata(built.stats.cache_file.as_ref().expect("file"))
            .expect("meta")
            .len();
        eprintln!(
            "  cache: index+write {:.3} s, load {:.3} s ({:.0}x), file {:.1} MB ({:.1} B/member)",
            build,
            load,
            build / load,
            cache_len as f64 / 1e6,
            cache_len as f64 / members as f64
        );
        std::fs::remove_file(&path).expect("rm");
    }
}

/// The index as serde_json would store it, for the size and load-time comparison.
fn as_json(index: &super::super::ShardIndex) -> serde_json::Value {
    let samples: Vec<serde_json::Value> = index
        .samples
        .iter()
        .map(|s| {
            let fields: Vec<serde_json::Value> = s
                .fields
                .iter()
                .map(|f| {
                    let npy = f.npy.as_deref().map(|n| match n {
                        Ok(h) => serde_json::json!({"dtype": h.dtype, "shape": h.shape,
                            "fortran_order": h.fortran_order, "data_offset": h.data_offset, "data_len": h.data_len}),
                        Err(e) => serde_json::json!({ "error": e }),
                    });
                    serde_json::json!({"suffix": &*f.suffix, "offset": f.offset, "size": f.size, "npy": npy})
                })
                .collect();
            serde_json::json!({"key": s.key, "offset": s.offset, "fields": fields})
        })
        .collect();
    serde_json::json!({ "file_len": index.file_len, "samples": samples, "skipped": index.skipped })
}
