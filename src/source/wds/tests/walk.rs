//! The tar walk: offsets equal the `tar` crate's (which matched Python's on webdataset
//! shards), extension headers as Python applies them, and every way a shard can end.

use std::io::Cursor;

use super::super::header::flag;
use super::super::tar::{End, EndKind, Entry, EntryKind, ReadAt, Walker};
use super::super::testutil::{Hdr, TarBuf, set_checksum};

pub fn walk(bytes: &[u8]) -> (Vec<Entry>, End) {
    let mut walker = Walker::new(bytes, bytes.len() as u64);
    let mut entries = Vec::new();
    loop {
        match walker.next_entry() {
            Ok(e) => entries.push(e),
            Err(end) => return (entries, end),
        }
    }
}

fn names(entries: &[Entry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| String::from_utf8_lossy(&e.name).into_owned())
        .collect()
}

/// (name, data offset, size) from the `tar` crate, extension headers applied.
fn tar_crate(bytes: &[u8]) -> Vec<(String, u64, u64)> {
    let mut archive = tar::Archive::new(Cursor::new(bytes));
    let mut out = Vec::new();
    for entry in archive.entries_with_seek().expect("entries") {
        let entry = entry.expect("entry");
        if entry.header().entry_type().is_pax_global_extensions() {
            continue;
        }
        let mut name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if entry.header().entry_type().is_dir() {
            name = name.trim_end_matches('/').to_owned();
        }
        out.push((name, entry.raw_file_position(), entry.size()));
    }
    out
}

fn ours(bytes: &[u8]) -> Vec<(String, u64, u64)> {
    let (entries, end) = walk(bytes);
    assert_eq!(end.kind, EndKind::Marker, "{end:?}");
    entries
        .iter()
        .map(|e| {
            (
                String::from_utf8_lossy(&e.name).into_owned(),
                e.data_offset,
                e.size,
            )
        })
        .collect()
}

fn builder_tar(gnu: bool) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let long = format!(
        "{}/sample_000000001.{}.npy",
        "d".repeat(80),
        "Base_2_3__Zone__VertexFields__p".repeat(3)
    );
    let names = ["a.jpg", "a.cls", "run1/b.txt", long.as_str(), "x.bin"];
    for (i, name) in names.iter().enumerate() {
        let data = vec![i as u8; 100 * i + 1];
        let mut h = if gnu {
            tar::Header::new_gnu()
        } else {
            tar::Header::new_ustar()
        };
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, data.as_slice()).expect("append");
    }
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_size(0);
    b.append_data(&mut h, "dir/", std::io::empty()).expect("dir");
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "a.lnk", "a.jpg").expect("link");
    b.into_inner().expect("finish")
}

#[test]
fn offsets_equal_the_tar_crate_gnu_and_ustar() {
    for gnu in [true, false] {
        let bytes = builder_tar(gnu);
        assert_eq!(ours(&bytes), tar_crate(&bytes), "gnu={gnu}");
    }
}

#[test]
fn pax_local_and_global_headers() {
    let mut t = TarBuf::default();
    t.pax(
        flag::PAX_LOCAL,
        &[("mtime", b"1795262227.959"), ("path", b"long/pax.name.npy")],
    );
    let first = t.file("short.npy", b"0123456789");
    t.pax(flag::PAX_GLOBAL, &[("comment", b"hi"), ("path", b"global.txt")]);
    t.file("ignored1.txt", b"abc");
    t.pax(flag::PAX_LOCAL, &[("path", b"local.txt")]);
    t.file("ignored2.txt", b"abc");
    // PAX size overrides the header's size, and moves the next header.
    t.pax(flag::PAX_LOCAL, &[("path", b"sized.bin"), ("size", b"600")]);
    t.header(&Hdr::file(b"sized.bin", 0)).data(&[7u8; 600]);
    t.end();
    let (entries, end) = walk(&t.bytes);
    assert_eq!(end.kind, EndKind::Marker);
    assert_eq!(
        names(&entries),
        ["long/pax.name.npy", "global.txt", "local.txt", "sized.bin"]
    );
    assert_eq!(entries[0].data_offset, first);
    assert_eq!(entries[0].header_offset, 0);
    assert_eq!(entries[3].size, 600);
}

#[test]
fn gnu_long_names_ustar_prefix_and_chains() {
    let long = "p/".repeat(60) + "sample.Base__Zone__CoordinateX.npy";
    let mut t = TarBuf::default();
    t.gnu_long(flag::GNU_LONGNAME, long.as_bytes());
    t.file("truncated-name", b"x");
    t.gnu_long(flag::GNU_LONGLINK, b"some/link/target");
    t.header(&Hdr {
        typeflag: flag::SYMLINK,
        ..Hdr::file(b"l.lnk", 0)
    });
    t.header(&Hdr {
        prefix: b"very/long/prefix",
        ..Hdr::file(b"name.jpg", 3)
    })
    .data(b"abc");
    // The outermost extension header wins: x then L gives the PAX path ...
    t.pax(flag::PAX_LOCAL, &[("path", b"from-pax.a")]);
    t.gnu_long(flag::GNU_LONGNAME, b"from-gnu.a");
    t.file("raw.a", b"1");
    // ... L then x gives the GNU name.
    t.gnu_long(flag::GNU_LONGNAME, b"from-gnu.b");
    t.pax(flag::PAX_LOCAL, &[("path", b"from-pax.b")]);
    t.file("raw.b", b"1");
    t.end();
    let (entries, end) = walk(&t.bytes);
    assert_eq!(end.kind, EndKind::Marker);
    assert_eq!(
        names(&entries),
        [
            long.as_str(),
            "l.lnk",
            "very/long/prefix/name.jpg",
            "from-pax.a",
            "from-gnu.b"
        ]
    );
    assert_eq!(entries[1].kind, EntryKind::Symlink);
}

#[test]
fn directories_lose_slashes_and_non_files_have_no_data() {
    let mut t = TarBuf::default();
    t.header(&Hdr {
        typeflag: flag::AREG,
        ..Hdr::file(b"olddir//", 0)
    });
    // Python never skips data after a symlink header, whatever its size says.
    t.header(&Hdr {
        typeflag: flag::SYMLINK,
        ..Hdr::file(b"s.lnk", 1000)
    });
    t.file("after.txt", b"hello");
    t.header(&Hdr {
        typeflag: b'V',
        ..Hdr::file(b"volume", 5)
    })
    .data(b"label");
    t.file("last.txt", b"x");
    t.end();
    let (entries, end) = walk(&t.bytes);
    assert_eq!(end.kind, EndKind::Marker);
    assert_eq!(
        names(&entries),
        ["olddir", "s.lnk", "after.txt", "volume", "last.txt"]
    );
    assert_eq!(entries[0].kind, EntryKind::Directory);
    assert_eq!(entries[3].kind, EntryKind::Other(b'V'));
}

#[test]
fn base256_sizes_and_signed_checksums() {
    let mut t = TarBuf::default();
    let mut block = Hdr::file(b"big.bin", 0).block();
    block[124..136].copy_from_slice(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0]);
    set_checksum(&mut block);
    t.bytes.extend_from_slice(&block);
    t.data(&[1u8; 512]);
    // A name byte >= 0x80 makes the signed and unsigned sums differ; store the signed one.
    let mut block = Hdr::file("é.txt".as_bytes(), 1).block();
    block[148..156].copy_from_slice(b"        ");
    let signed: i64 = block.iter().map(|&b| i64::from(b as i8)).sum();
    block[148..156].copy_from_slice(format!("{signed:06o}\0 ").as_bytes());
    t.bytes.extend_from_slice(&block);
    t.data(b"x").end();
    let (entries, end) = walk(&t.bytes);
    assert_eq!(end.kind, EndKind::Marker, "{end:?}");
    assert_eq!(entries[0].size, 512);
    assert_eq!(names(&entries)[1], "é.txt");
}

#[test]
fn old_gnu_sparse_members_are_stepped_over() {
    let mut t = TarBuf::default();
    let mut block = Hdr {
        typeflag: flag::GNU_SPARSE,
        gnu: true,
        ..Hdr::file(b"sparse.bin", 512)
    }
    .block();
    block[482] = 1;
    set_checksum(&mut block);
    t.bytes.extend_from_slice(&block);
    let mut ext = [0u8; 512];
    ext[504] = 0;
    t.bytes.extend_from_slice(&ext);
    t.data(&[9u8; 512]);
    t.pax(
        flag::PAX_LOCAL,
        &[("GNU.sparse.major", b"1"), ("GNU.sparse.minor", b"0")],
    );
    t.file("pax-sparse.bin", b"map and data");
    t.file("after.txt", b"x");
    t.end();
    let (entries, end) = walk(&t.bytes);
    assert_eq!(end.kind, EndKind::Marker, "{end:?}");
    assert_eq!(names(&entries), ["sparse.bin", "pax-sparse.bin", "after.txt"]);
    assert_eq!(entries[0].kind, EntryKind::Sparse);
    assert_eq!(entries[0].data_offset, 1024);
    assert_eq!(entries[1].kind, EntryKind::Sparse);
}

#[test]
fn a_corrupt_header_stops_the_walk_keeping_what_came_before() {
    let mut t = TarBuf::default();
    t.file("a.jpg", b"abc");
    let at = t.bytes.len();
    t.file("b.jpg", b"def");
    t.end();
    t.bytes[at + 10] ^= 0x55;
    let (entries, end) = walk(&t.bytes);
    assert_eq!(names(&entries), ["a.jpg"]);
    assert_eq!((end.kind, end.offset), (EndKind::Corrupt, at as u64));
    assert!(end.reason.contains("checksum"), "{}", end.reason);
    // Garbage in a number field.
    let mut block = Hdr::file(b"c.jpg", 1).block();
    block[124..136].copy_from_slice(b"12x4567\0\0\0\0\0");
    set_checksum(&mut block);
    let mut t = TarBuf::default();
    t.file("a.jpg", b"abc");
    t.bytes.extend_from_slice(&block);
    let (entries, end) = walk(&t.bytes);
    assert_eq!((entries.len(), end.kind), (1, EndKind::Corrupt));
    assert!(end.reason.contains("size"), "{}", end.reason);
    // A PAX record of length 0, and random bytes.
    let mut t = TarBuf::default();
    t.file("a.jpg", b"abc");
    t.header(&Hdr {
        typeflag: flag::PAX_LOCAL,
        ..Hdr::file(b"././@PaxHeader", 8)
    })
    .data(b"0 path=\n");
    t.file("b.jpg", b"x");
    assert_eq!(walk(&t.bytes).1.kind, EndKind::Corrupt);
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let (entries, end) = walk(&garbage);
    assert!(entries.is_empty());
    assert_eq!((end.kind, end.offset), (EndKind::Corrupt, 0));
}

#[test]
fn truncation_inside_a_header_extension_or_payload() {
    let mut t = TarBuf::default();
    t.file("a.jpg", b"abc");
    let second = t.bytes.len();
    t.pax(flag::PAX_LOCAL, &[("path", b"b.jpg")]);
    let member = t.bytes.len();
    t.file("b.jpg", &[5u8; 2000]);
    t.end();
    // Cut inside the payload: the member is reported as cut.
    let (entries, end) = walk(&t.bytes[..member + 512 + 1000]);
    assert_eq!(names(&entries), ["a.jpg"]);
    assert_eq!((end.kind, end.offset), (EndKind::Truncated, member as u64));
    let cut = end.cut.expect("cut member");
    assert_eq!(
        (cut.name.as_slice(), cut.header_offset),
        (&b"b.jpg"[..], second as u64)
    );
    // Cut inside the member header, and inside the PAX header's data.
    for len in [member + 100, second + 520, second + 600] {
        let (entries, end) = walk(&t.bytes[..len]);
        assert_eq!(names(&entries), ["a.jpg"]);
        assert_eq!(end.kind, EndKind::Truncated, "{len}: {end:?}");
        assert!(end.cut.is_none());
    }
    // Cut after the extension header: no member follows.
    assert_eq!(walk(&t.bytes[..member]).1.kind, EndKind::Truncated);
    // Cut exactly after a member's padding: a quiet end, as in tarfile.
    let (entries, end) = walk(&t.bytes[..second]);
    assert_eq!((entries.len(), end.kind), (1, EndKind::Eof));
    // Cut in the padding after the data: the member is whole.
    let (entries, end) = walk(&t.bytes[..member + 512 + 2000]);
    assert_eq!((entries.len(), end.kind), (2, EndKind::Eof));
}

#[test]
fn a_marker_after_an_extension_header_is_corrupt() {
    let mut t = TarBuf::default();
    t.pax(flag::PAX_LOCAL, &[("path", b"x.y")]);
    t.end();
    let (entries, end) = walk(&t.bytes);
    assert!(entries.is_empty());
    assert_eq!(end.kind, EndKind::Corrupt);
}

#[test]
fn oversized_extension_headers_are_refused_without_allocating() {
    let mut t = TarBuf::default();
    t.header(&Hdr {
        typeflag: flag::GNU_LONGNAME,
        ..Hdr::file(b"././@LongLink", 1 << 40)
    });
    let (_, end) = walk(&t.bytes);
    assert_eq!(end.kind, EndKind::Corrupt);
    let mut t = TarBuf::default();
    t.pax(flag::PAX_LOCAL, &[("size", b"99999999999999999999999")]);
    t.file("x.bin", b"1");
    let (entries, end) = walk(&t.bytes);
    assert!(entries.is_empty());
    assert_eq!(end.kind, EndKind::Truncated);
}

/// Counts what the walk reads.
struct Counting<'a> {
    inner: &'a [u8],
    bytes: std::cell::Cell<u64>,
}

impl ReadAt for Counting<'_> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        let n = self.inner.read_at(buf, offset)?;
        self.bytes.set(self.bytes.get() + n as u64);
        Ok(n)
    }
}

#[test]
fn the_walk_skips_payloads() {
    let mut t = TarBuf::default();
    for i in 0..20 {
        t.pax(flag::PAX_LOCAL, &[("mtime", b"1795262227.959")]);
        t.file(&format!("s{i:04}.bin"), &vec![i as u8; 1 << 20]);
    }
    t.end();
    let src = Counting {
        inner: &t.bytes,
        bytes: Default::default(),
    };
    let mut walker = Walker::new(&src, t.bytes.len() as u64);
    let mut n = 0;
    while walker.next_entry().is_ok() {
        n += 1;
    }
    assert_eq!(n, 20);
    let read = src.bytes.get();
    assert!(read < 25 * 4096, "read {read} of {} bytes", t.bytes.len());
    assert_eq!(read, walker.window.bytes_read);
}

#[test]
fn a_huge_sparse_shard_indexes_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("huge.tar");
    let mut t = TarBuf::default();
    let big = 8u64 << 30;
    t.header(&Hdr::file(b"big.bin", big));
    let tail_at = t.bytes.len() as u64 + big;
    let mut tail = TarBuf::default();
    tail.file("small.txt", b"hi");
    tail.end();
    let file = std::fs::File::create(&path).expect("create");
    std::os::unix::fs::FileExt::write_all_at(&file, &t.bytes, 0).expect("head");
    std::os::unix::fs::FileExt::write_all_at(&file, &tail.bytes, tail_at).expect("tail");
    let started = std::time::Instant::now();
    let index = super::super::index_file(&path).expect("index");
    assert!(started.elapsed().as_secs() < 2);
    assert_eq!(index.samples.len(), 2);
    assert_eq!(index.samples[0].fields[0].size, big);
    assert!(index.end.is_complete());
}

#[test]
fn random_archives_match_the_tar_crate() {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let alphabet = b"ab.c/_-Z0";
    for round in 0..20 {
        let mut b = tar::Builder::new(Vec::new());
        for i in 0..50 {
            let len = 1 + next(if round % 2 == 0 { 60 } else { 300 }) as usize;
            let mut name: String = (0..len)
                .map(|_| alphabet[next(alphabet.len() as u64) as usize] as char)
                .collect();
            name = name.replace("//", "/").trim_matches('/').to_owned();
            if name.is_empty() || name.split('/').any(|c| c == "." || c == "..") {
                continue;
            }
            let name = format!("{name}{i}");
            let data = vec![i as u8; next(3000) as usize];
            let mut h = if next(2) == 0 {
                tar::Header::new_gnu()
            } else {
                tar::Header::new_ustar()
            };
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            // Not the Builder's default `\0`: see `an_old_regular_type_with_a_slash_is_a_directory`.
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, &name, data.as_slice()).expect("append");
        }
        let bytes = b.into_inner().expect("finish");
        assert_eq!(ours(&bytes), tar_crate(&bytes), "round {round}");
    }
}

/// Python's `frombuf` turns a type-`\0` member whose 100-byte name field ends in `/` into
/// a directory, before a GNU long name replaces the name; `tarfile` then reads its data
/// as the next header and stops. The `tar` crate's Builder writes type `\0` and cuts long
/// names at 100 bytes, so such archives exist; this walk sees them as Python does.
#[test]
fn an_old_regular_type_with_a_slash_is_a_directory() {
    let long = format!("{}/{}.txt", "d".repeat(99), "x".repeat(20));
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(600);
    b.append_data(&mut h, &long, [7u8; 600].as_slice())
        .expect("append");
    let bytes = b.into_inner().expect("finish");
    assert_eq!(bytes[512 + 512 + 156], 0, "the Builder's type flag");
    let (entries, end) = walk(&bytes);
    assert_eq!(names(&entries), [long.as_str()]);
    assert_eq!(entries[0].kind, EntryKind::Directory);
    assert_eq!(end.kind, EndKind::Corrupt);
}

#[test]
fn compressed_shards_are_named_as_such() {
    let mut t = TarBuf::default();
    t.file("a.txt", b"x");
    t.end();
    let gz = std::process::Command::new("gzip")
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().expect("stdin").write_all(&t.bytes)?;
            child.wait_with_output()
        });
    let bytes = match gz {
        Ok(out) if out.status.success() => out.stdout,
        _ => b"\x1f\x8b\x08\x00 not really gzip".to_vec(),
    };
    let (entries, end) = walk(&bytes);
    assert!(entries.is_empty());
    assert_eq!((end.kind, end.offset), (EndKind::Corrupt, 0));
    assert!(end.reason.starts_with("gzip-compressed"), "{}", end.reason);
    assert!(walk(b"BZh91AY&SY").1.reason.starts_with("bzip2"));
}
