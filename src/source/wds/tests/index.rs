//! Indexing whole shards, and the persistent index: round trips, reuse, invalidation,
//! damaged cache files, and where the cache may go.

use std::path::Path;

use super::super::header::flag;
use super::super::index::{IndexConfig, decode, encode, hash, load_or_index};
use super::super::sample::SkipReason;
use super::super::scan::index_reader;
use super::super::shards::ShardSet;
use super::super::tar::EndKind;
use super::super::testutil::{TarBuf, npy};

/// A webdataset-like shard: `n` samples with PAX headers, `.npy`, `.cls`, `.json`,
/// a PLAID-style member, every 4th key in a directory.
fn shard(n: usize, seed: u8) -> Vec<u8> {
    let mut t = TarBuf::default();
    for i in 0..n {
        let key = if i % 4 == 3 {
            format!("run1/s{i:06}")
        } else {
            format!("s{i:06}")
        };
        let values: Vec<u8> = (0..24).map(|b| b ^ seed ^ i as u8).collect();
        t.pax(flag::PAX_LOCAL, &[("mtime", b"1795262227.959")]);
        t.file(&format!("{key}.cls"), i.to_string().as_bytes());
        t.pax(flag::PAX_LOCAL, &[("mtime", b"1795262227.959")]);
        t.file(&format!("{key}.fixed.npy"), &npy("<f4", &[2, 3], false, &values));
        t.file(
            &format!("{key}.Base_2_3__Zone__CoordinateX.npy"),
            &npy(">f8", &[3], true, &values),
        );
        t.file(&format!("{key}.json"), br#"{"a": 1}"#);
    }
    t.end();
    t.bytes
}

#[test]
fn a_shard_indexes_into_samples_with_npy_payloads() {
    let bytes = shard(8, 0);
    let (index, stats) = index_reader(bytes.as_slice(), bytes.len() as u64);
    assert!(index.end.is_complete());
    assert_eq!(index.end.kind, EndKind::Marker);
    assert_eq!((index.samples.len(), index.members), (8, 32));
    assert!(stats.reads < 8 * 4, "{stats:?}");
    let s = &index.samples[3];
    assert_eq!(s.key, "run1/s000003");
    let suffixes: Vec<&str> = s.fields.iter().map(|f| &*f.suffix).collect();
    assert_eq!(
        suffixes,
        ["cls", "fixed.npy", "Base_2_3__Zone__CoordinateX.npy", "json"]
    );
    assert_eq!(&*s.fields[2].suffix_lower, "base_2_3__zone__coordinatex.npy");
    let cls = &s.fields[0];
    assert_eq!(
        &bytes[cls.offset as usize..(cls.offset + cls.size) as usize],
        b"3"
    );
    assert!(cls.npy.is_none() && s.fields[3].npy.is_none());
    let fixed = s.fields[1].npy.as_deref().cloned().expect("npy").expect("header");
    assert_eq!(
        (
            fixed.shape.as_slice(),
            fixed.dtype.zarr_name(),
            fixed.fortran_order
        ),
        (&[2u64, 3][..], "float32", false)
    );
    let start = (s.fields[1].offset + fixed.data_offset) as usize;
    let want: Vec<u8> = (0..24).map(|b| b ^ 3).collect();
    assert_eq!(&bytes[start..start + fixed.data_len as usize], want.as_slice());
    let coord = s.fields[2].npy.as_deref().cloned().expect("npy").expect("header");
    assert!(coord.fortran_order);
    assert_eq!(coord.dtype.zarr_name(), "float64");
}

#[test]
fn bad_npy_headers_are_kept_as_reasons() {
    let mut t = TarBuf::default();
    t.file("a.npy", b"not an npy");
    t.file("b.npy", &npy("<U3", &[2], false, &[0; 24]));
    t.file("c.npy", &npy("<f8", &[100], false, &[0; 8]));
    t.file("d.NPY", b"");
    t.end();
    let (index, _) = index_reader(t.bytes.as_slice(), t.bytes.len() as u64);
    let reasons: Vec<String> = index
        .samples
        .iter()
        .map(|s| s.fields[0].npy.as_deref().cloned().unwrap().unwrap_err())
        .collect();
    assert!(reasons[0].contains("magic"), "{reasons:?}");
    assert!(reasons[1].contains("<U3"), "{reasons:?}");
    assert!(reasons[2].contains("does not fit"), "{reasons:?}");
    assert!(reasons[3].contains("cut"), "{reasons:?}");
}

#[test]
fn a_truncated_shard_keeps_every_complete_sample() {
    let bytes = shard(6, 1);
    let (whole, _) = index_reader(bytes.as_slice(), bytes.len() as u64);
    // Cut inside the last sample's json payload: samples 0-4 survive, sample 5 is listed.
    let json = &whole.samples[5].fields[3];
    let cut = (json.offset + 2) as usize;
    let (index, _) = index_reader(&bytes[..cut], cut as u64);
    assert_eq!(index.end.kind, EndKind::Truncated);
    assert_eq!(index.samples, whole.samples[..5]);
    assert_eq!(index.skipped.len(), 1);
    assert_eq!(index.skipped[0].name, "s000005");
    assert_eq!(
        index.skipped[0].reason,
        SkipReason::TruncatedMember("s000005.json".into())
    );
    // Garbage over sample 3's first header: 0-2 survive.
    let mut broken = bytes.clone();
    let at = whole.samples[3].offset as usize;
    broken[at..at + 512].fill(0x41);
    let (index, _) = index_reader(broken.as_slice(), broken.len() as u64);
    assert_eq!((index.end.kind, index.end.offset), (EndKind::Corrupt, at as u64));
    assert_eq!(index.samples, whole.samples[..3]);
}

fn write_shards(dir: &Path, n: usize) -> ShardSet {
    let shards = (0..n)
        .map(|i| {
            let path = dir.join(format!("train-{i:06}.tar"));
            std::fs::write(&path, shard(5 + i, i as u8)).expect("write shard");
            path
        })
        .collect();
    ShardSet {
        name: "train".into(),
        shards,
    }
}

#[test]
fn the_cache_is_reused_and_only_changed_shards_are_reindexed() {
    let data = tempfile::tempdir().expect("data");
    let cache = tempfile::tempdir().expect("cache");
    let config = IndexConfig {
        cache_dir: Some(cache.path().join("zarrmount")),
        explicit: false,
    };
    let set = write_shards(data.path(), 3);
    let first = load_or_index(&set, &config);
    assert_eq!(
        (first.stats.reused, first.stats.indexed, first.stats.failed),
        (0, 3, 0)
    );
    let file = first.stats.cache_file.clone().expect("cache file");
    assert!(file.starts_with(cache.path()) && file.exists(), "{file:?}");
    assert!(file.file_name().unwrap().to_string_lossy().starts_with("train-"));

    let again = load_or_index(&set, &config);
    assert_eq!((again.stats.reused, again.stats.indexed), (3, 0));
    assert_eq!(again.shards, first.shards);
    let modified = std::fs::metadata(&file).expect("meta").modified().expect("mtime");

    // Rewrite shard 1 with other content (size changes): only it is indexed again.
    std::fs::write(&set.shards[1], shard(9, 7)).expect("rewrite");
    let changed = load_or_index(&set, &config);
    assert_eq!((changed.stats.reused, changed.stats.indexed), (2, 1));
    assert_eq!(changed.shards[1].index.samples.len(), 9);
    assert_eq!(changed.shards[0], first.shards[0]);
    assert!(std::fs::metadata(&file).expect("meta").modified().expect("mtime") >= modified);

    // Same size, new inode (replaced by rename): indexed again.
    let tmp = data.path().join("tmp.tar");
    std::fs::copy(&set.shards[2], &tmp).expect("copy");
    std::fs::rename(&tmp, &set.shards[2]).expect("rename");
    let replaced = load_or_index(&set, &config);
    assert_eq!((replaced.stats.reused, replaced.stats.indexed), (2, 1));
}

#[test]
fn a_damaged_cache_file_is_ignored_and_rebuilt() {
    let data = tempfile::tempdir().expect("data");
    let cache = tempfile::tempdir().expect("cache");
    let config = IndexConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        explicit: false,
    };
    let set = write_shards(data.path(), 2);
    let first = load_or_index(&set, &config);
    let file = first.stats.cache_file.clone().expect("file");
    let good = std::fs::read(&file).expect("read");
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 1;
    let mut other_version = good.clone();
    other_version[8] = 99;
    for (damage, why) in [
        (flipped, "checksum"),
        (good[..good.len() - 3].to_vec(), "checksum"),
        (other_version, "version"),
        (b"hello".to_vec(), "not a zarrmount"),
    ] {
        std::fs::write(&file, &damage).expect("damage");
        let loaded = load_or_index(&set, &config);
        assert_eq!((loaded.stats.reused, loaded.stats.indexed), (0, 2), "{why}");
        assert!(
            loaded.stats.note.as_deref().unwrap_or("").contains(why),
            "{:?}",
            loaded.stats.note
        );
        assert_eq!(loaded.shards, first.shards);
        assert_eq!(std::fs::read(&file).expect("rebuilt"), good);
    }
}

#[test]
fn encode_decode_round_trip_and_hostile_payloads() {
    let data = tempfile::tempdir().expect("data");
    let set = write_shards(data.path(), 2);
    let loaded = load_or_index(
        &set,
        &IndexConfig {
            cache_dir: None,
            explicit: false,
        },
    );
    assert_eq!(loaded.stats.cache_file, None);
    let bytes = encode(&loaded.shards);
    let decoded = decode(&bytes).expect("decode");
    assert_eq!(decoded.len(), 2);
    for ((path, stamp, index), shard) in decoded.iter().zip(&loaded.shards) {
        assert_eq!(Some(path), shard.canonical.as_ref());
        assert_eq!(Some(*stamp), shard.stamp);
        assert_eq!(index, &shard.index);
    }
    // Every truncation of the file is refused, never a panic.
    for len in 0..bytes.len() {
        assert!(decode(&bytes[..len]).is_err(), "{len}");
    }
}

/// A cached `.npy` header is held to what `npy::parse` guarantees: a supported dtype, and
/// a shape that gives its payload length (the mapping sizes chunks from the shape).
#[test]
fn cached_npy_headers_must_be_ones_the_parser_could_have_made() {
    let data = tempfile::tempdir().expect("data");
    let set = write_shards(data.path(), 1);
    let config = IndexConfig {
        cache_dir: None,
        explicit: false,
    };
    let shards = load_or_index(&set, &config).shards;
    assert!(decode(&encode(&shards)).is_ok());
    let tamper = |change: &dyn Fn(&mut super::super::npy::NpyHeader)| {
        let mut shards = shards.clone();
        let field = &mut shards[0].index.samples[0].fields[1];
        let Some(Ok(h)) = field.npy.as_deref_mut() else {
            panic!("no npy header in {field:?}");
        };
        change(h);
        decode(&encode(&shards))
    };
    // Fuzz findings (wds_index_cache): a shape whose product wraps, one that does not give
    // the payload length, a float of 3 bytes.
    assert!(tamper(&|h| h.shape = vec![1 << 40, 1 << 40]).is_err());
    assert!(tamper(&|h| h.shape = vec![1 << 30, 1 << 4]).is_err());
    assert!(tamper(&|h| h.dtype.size = 3).is_err());
    assert!(tamper(&|h| h.shape.reverse()).is_ok());
}

#[test]
fn missing_shards_and_a_cache_dir_beside_the_shards() {
    let data = tempfile::tempdir().expect("data");
    let mut set = write_shards(data.path(), 1);
    set.shards.push(data.path().join("train-000099.tar"));
    let fifo = data.path().join("fifo.tar");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    set.shards.push(fifo);
    let beside = IndexConfig {
        cache_dir: Some(data.path().to_path_buf()),
        explicit: false,
    };
    let loaded = load_or_index(&set, &beside);
    assert_eq!((loaded.stats.indexed, loaded.stats.failed), (1, 2));
    assert!(loaded.shards[2].index.end.reason.contains("not a regular file"));
    assert_eq!(loaded.stats.cache_file, None);
    assert!(
        loaded
            .stats
            .note
            .as_deref()
            .unwrap_or("")
            .contains("holds shards")
    );
    assert_eq!(loaded.shards[1].index.end.kind, EndKind::Io);
    assert!(loaded.shards[1].index.end.reason.contains("train-000099.tar"));
    let files: Vec<_> = std::fs::read_dir(data.path()).expect("ls").collect();
    assert_eq!(files.len(), 2, "nothing written next to the shards");
    // Unless asked.
    let asked = IndexConfig {
        explicit: true,
        ..beside
    };
    let loaded = load_or_index(&set, &asked);
    assert!(
        loaded
            .stats
            .cache_file
            .is_some_and(|f| f.starts_with(data.path()))
    );
    assert_eq!(std::fs::read_dir(data.path()).expect("ls").count(), 3);
}

#[test]
fn a_shard_listed_twice_is_indexed_once() {
    let data = tempfile::tempdir().expect("data");
    let cache = tempfile::tempdir().expect("cache");
    let config = IndexConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        explicit: false,
    };
    let mut set = write_shards(data.path(), 1);
    set.shards.push(set.shards[0].clone());
    let first = load_or_index(&set, &config);
    assert_eq!((first.stats.reused, first.stats.indexed), (1, 1));
    assert_eq!(first.shards[0].index, first.shards[1].index);
    let again = load_or_index(&set, &config);
    assert_eq!((again.stats.reused, again.stats.indexed), (2, 0));
}

#[test]
fn default_cache_dir_follows_xdg() {
    let dir = IndexConfig::default().cache_dir;
    if let Some(dir) = dir {
        assert!(dir.ends_with("zarrmount"));
    }
}

/// Damaged shards and damaged cache files never panic: random byte flips, runs of
/// garbage and cuts over a shard with PAX headers and `.npy` members.
#[test]
fn mutated_shards_and_cache_files_never_panic() {
    let bytes = shard(6, 3);
    let cache = {
        let data = tempfile::tempdir().expect("data");
        let path = data.path().join("s.tar");
        std::fs::write(&path, &bytes).expect("write");
        let set = ShardSet {
            name: "s".into(),
            shards: vec![path],
        };
        encode(
            &load_or_index(
                &set,
                &IndexConfig {
                    cache_dir: None,
                    explicit: false,
                },
            )
            .shards,
        )
    };
    let mut x: u64 = 0x1234_5678_9ABC_DEF1;
    let mut next = move |n: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n as u64) as usize
    };
    for round in 0..3000 {
        let mut b = bytes.clone();
        for _ in 0..1 + next(8) {
            let at = next(b.len());
            match next(3) {
                0 => b[at] ^= 1 << next(8),
                1 => b[at] = b"0123456789 x=\n/."[next(16)],
                _ => {
                    let end = (at + next(600)).min(b.len());
                    b[at..end].fill(next(256) as u8);
                }
            }
        }
        if round % 5 == 0 {
            b.truncate(next(b.len()));
        }
        let (index, _) = index_reader(b.as_slice(), b.len() as u64);
        for sample in &index.samples {
            for f in &sample.fields {
                assert!(f.offset + f.size <= b.len() as u64);
                if let Some(Ok(h)) = f.npy.as_deref() {
                    assert!(h.data_offset + h.data_len <= f.size);
                }
            }
        }
        // A damaged payload under a valid checksum: decoding must refuse it or give
        // ranges inside the shard, never panic or allocate wildly.
        let mut c = cache.clone();
        let payload_end = c.len() - 8;
        for _ in 0..1 + next(4) {
            let at = 12 + next(payload_end - 12);
            c[at] = if next(2) == 0 {
                c[at] ^ (1 << next(8))
            } else {
                0xFF
            };
        }
        let sum = hash(&c[12..payload_end]).to_le_bytes();
        c[payload_end..].copy_from_slice(&sum);
        if let Ok(shards) = decode(&c) {
            for (_, stamp, index) in shards {
                assert!(
                    index
                        .samples
                        .iter()
                        .flat_map(|s| &s.fields)
                        .all(|f| f.offset + f.size <= stamp.size)
                );
            }
        }
    }
}
