//! Indexing speed, quick: a 32 MiB webdataset-like shard. The measurement on real shard
//! sets (through the mount, against `tar -tvf` and ratarmount) is `benches/wds_read.py`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use super::super::header::flag;
use super::super::scan::index_file;
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
