//! The filesystem without FUSE: paths resolve, chunks read back the source's bytes, errors
//! stay confined to one read, sources refuse writes.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::*;
use crate::cache::CacheMetrics;
use crate::catalog::Catalog;
use crate::io::PreadEngine;
use crate::source::SourceSpec;
use crate::source::memory::Owner;

const MIB: usize = 1 << 20;

fn mount(specs: &[&str]) -> ZarrFs {
    mount_with(specs, FsConfig::default())
}

fn mount_with(specs: &[&str], config: FsConfig) -> ZarrFs {
    let specs: Vec<_> = specs.iter().map(|s| SourceSpec::parse(s).unwrap()).collect();
    let owner = Owner {
        uid: 0,
        gid: 0,
        mode: 0o755,
    };
    let catalog = Catalog::build(&specs, 1 << 20, owner).unwrap();
    let read_path = ReadPath {
        cache: ChunkCache::new(64 << 20, 0),
        io: Arc::new(PreadEngine::new(2, crate::io::BufferPool::new(0)).unwrap()),
        workers: crate::workers::Workers::new("test", 2).unwrap(),
        prefetch: None,
    };
    ZarrFs::new(catalog, read_path, config)
}

fn walk(fs: &ZarrFs, path: &str) -> FsResult<u64> {
    path.split('/')
        .filter(|p| !p.is_empty())
        .try_fold(inode::ROOT, |ino, name| Ok(fs.lookup(ino, name)?.0.ino))
}

fn names(fs: &ZarrFs, path: &str) -> Vec<String> {
    let handle = fs.opendir(walk(fs, path).unwrap()).unwrap();
    let items = fs.readdir(handle).unwrap();
    fs.releasedir(handle);
    let mut names: Vec<_> = items
        .iter()
        .map(|i| i.name.clone())
        .filter(|n| n != "." && n != "..")
        .collect();
    names.sort();
    names
}

fn read_all(fs: &ZarrFs, path: &str) -> FsResult<Vec<u8>> {
    let ino = walk(fs, path)?;
    Ok(fs.read(ino, 0, u32::MAX)?.as_slice().to_vec())
}

fn sample_file(dir: &Path, len: usize) -> std::path::PathBuf {
    let path = dir.join("blob.bin");
    std::fs::write(&path, (0..len).map(|i| (i * 7 % 251) as u8).collect::<Vec<_>>()).unwrap();
    path
}

#[test]
fn chunks_are_the_source_bytes_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = sample_file(dir.path(), 2 * MIB + 100);
    let fs = mount(&[&format!("raw://{}", file.display())]);
    assert_eq!(names(&fs, ""), ["bytes", "zarr.json"]);
    assert_eq!(names(&fs, "bytes"), ["c", "zarr.json"]);
    assert_eq!(names(&fs, "bytes/c"), ["0", "1", "2"]);
    let handle = fs.opendir(walk(&fs, "bytes").unwrap()).unwrap();
    let kinds: Vec<_> = fs
        .readdir(handle)
        .unwrap()
        .iter()
        .map(|i| (i.name.clone(), i.kind))
        .collect();
    assert!(kinds.contains(&("zarr.json".into(), Kind::File)) && kinds.contains(&("c".into(), Kind::Dir)));
    let handle = fs.opendir(walk(&fs, "bytes/c").unwrap()).unwrap();
    assert!(
        fs.readdir(handle)
            .unwrap()
            .iter()
            .filter(|i| i.name != "." && i.name != "..")
            .all(|i| i.kind == Kind::File)
    );
    let bytes = std::fs::read(&file).unwrap();
    for i in 0..3 {
        let chunk = read_all(&fs, &format!("bytes/c/{i}")).unwrap();
        assert_eq!(chunk.len(), MIB, "every chunk file is full size");
        let end = ((i + 1) * MIB).min(bytes.len());
        assert_eq!(&chunk[..end - i * MIB], &bytes[i * MIB..end]);
        assert!(
            chunk[end - i * MIB..].iter().all(|b| *b == 0),
            "padding is the fill value"
        );
    }
    assert_eq!(
        fs.io().metrics().extents_read.load(Ordering::Relaxed),
        3,
        "one extent per chunk"
    );
    // A whole-MiB chunk is one byte range: read from the source each time, never cached
    // (the page cache holds it). The padded last chunk is decoded once, then a cache hit.
    read_all(&fs, "bytes/c/1").unwrap();
    assert_eq!(fs.io().metrics().extents_read.load(Ordering::Relaxed), 4);
    read_all(&fs, "bytes/c/2").unwrap();
    assert_eq!(
        fs.io().metrics().extents_read.load(Ordering::Relaxed),
        4,
        "the second read of a decoded chunk is a cache hit"
    );
    let cache = fs.cache().metrics();
    assert_eq!(
        (CacheMetrics::get(&cache.direct), CacheMetrics::get(&cache.hits)),
        (3, 1)
    );
    let (attr, _) = fs.getattr(walk(&fs, "bytes/c/0").unwrap()).unwrap();
    assert_eq!((attr.kind, attr.size), (Kind::File, MIB as u64));
    for missing in ["bytes/c/3", "bytes/c/01", "bytes/.zarray", "nope"] {
        assert_eq!(walk(&fs, missing).unwrap_err().errno, libc::ENOENT, "{missing}");
    }
}

#[test]
fn a_source_changed_while_mounted_fails_its_reads_and_no_others() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (changed, kept) = (sample_file(a.path(), 2 * MIB), b.path().join("other.bin"));
    std::fs::rename(sample_file(b.path(), 2 * MIB), &kept).unwrap();
    let fs = mount(&[
        &format!("raw://{}", changed.display()),
        &format!("raw://{}", kept.display()),
    ]);
    let (first, second) = ("blob.bin/bytes", "other.bin/bytes");
    assert_eq!(read_all(&fs, &format!("{first}/c/0")).unwrap().len(), MIB);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&changed)
        .unwrap()
        .set_len(MIB as u64 + 10)
        .unwrap();
    // Past the cut and before it alike: what is left may be other bytes than were described.
    for chunk in ["c/1", "c/0", "c/1"] {
        let err = read_all(&fs, &format!("{first}/{chunk}")).unwrap_err();
        assert_eq!(err.errno, libc::EIO, "{chunk}: errors are not cached as data");
    }
    assert_eq!(read_all(&fs, &format!("{second}/c/1")).unwrap().len(), MIB);
}

#[test]
fn group_documents_consolidate_sources_and_live_memory_stores() {
    let dir = tempfile::tempdir().unwrap();
    let file = sample_file(dir.path(), 10);
    let fs = mount(&["memory://scratch", &format!("raw://{}", file.display())]);
    assert_eq!(names(&fs, ""), ["blob.bin", "scratch", "zarr.json"]);
    let root: serde_json::Value = serde_json::from_slice(&read_all(&fs, "zarr.json").unwrap()).unwrap();
    let metadata = &root["consolidated_metadata"]["metadata"];
    assert_eq!(metadata["blob.bin/bytes"]["shape"], serde_json::json!([10]));
    assert_eq!(metadata["scratch"]["node_type"], "group");
    // Write an array document into the store: the root's document follows.
    let scratch = walk(&fs, "scratch").unwrap();
    let arr = fs.mkdir(scratch, "a", 0o755, 0o022, 0, 0).unwrap().0.ino;
    let doc = fs
        .create(arr, "zarr.json", 0o644, 0o022, libc::O_WRONLY, 0, 0)
        .unwrap()
        .0
        .ino;
    fs.write(
        doc,
        0,
        br#"{"zarr_format": 3, "node_type": "array", "shape": [4]}"#,
    )
    .unwrap();
    fs.release(doc);
    let root: serde_json::Value = serde_json::from_slice(&read_all(&fs, "zarr.json").unwrap()).unwrap();
    assert_eq!(
        root["consolidated_metadata"]["metadata"]["scratch/a"]["shape"],
        serde_json::json!([4])
    );
    let root_ino = walk(&fs, "zarr.json").unwrap();
    assert_eq!(
        fs.open(root_ino, false, false).unwrap(),
        OpenMode {
            keep_cache: false,
            direct_io: true
        }
    );
    let static_doc = walk(&fs, "blob.bin/zarr.json").unwrap();
    assert_eq!(
        fs.open(static_doc, false, false).unwrap(),
        OpenMode {
            keep_cache: true,
            direct_io: false
        }
    );
    let chunk = walk(&fs, "blob.bin/bytes/c/0").unwrap();
    assert_eq!(
        fs.open(chunk, false, false).unwrap(),
        OpenMode {
            keep_cache: true,
            direct_io: true
        },
        "a first read bypasses the page cache (keeping pages an earlier open cached)"
    );
}

#[test]
fn chunk_files_read_whole_are_reopened_through_the_page_cache_until_their_source_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample_file(dir.path(), MIB + 10);
    let fs = mount(&[&format!("raw://{}", path.display())]);
    let chunk = walk(&fs, "bytes/c/0").unwrap();
    let direct = OpenMode {
        keep_cache: true,
        direct_io: true,
    };
    let cached = OpenMode {
        keep_cache: true,
        direct_io: false,
    };
    let read = |offset: u64, size: u32| fs.read(chunk, offset, size).unwrap().as_slice().to_vec();
    let source = std::fs::read(&path).unwrap();
    let opens = || fs.served().page_cache_opens.load(Ordering::Relaxed);

    // Read in two pieces: direct until the last byte has been served.
    assert_eq!(fs.open(chunk, false, false).unwrap(), direct);
    assert!(read(0, 4096) == source[..4096]);
    assert_eq!(fs.open(chunk, false, false).unwrap(), direct, "read in part");
    assert!(read(4096, MIB as u32) == source[4096..MIB]);
    assert_eq!(fs.open(chunk, false, false).unwrap(), cached, "read whole");
    assert_eq!(fs.open(chunk, false, false).unwrap(), cached);
    assert_eq!(opens(), 2);

    // Another chunk file not read yet is still direct.
    let other = walk(&fs, "bytes/c/1").unwrap();
    assert_eq!(fs.open(other, false, false).unwrap(), direct);

    // The source rewritten in place: the pages are dropped (no keep_cache) and reads go back
    // to the daemon, which reports the change.
    let mut changed = source.clone();
    changed[0] ^= 0xff;
    std::fs::write(&path, &changed).unwrap();
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(3600))
        .unwrap();
    assert_eq!(
        fs.open(chunk, false, false).unwrap(),
        OpenMode {
            keep_cache: false,
            direct_io: true
        }
    );
    assert_eq!(fs.read(chunk, 0, 16).err().map(|e| e.errno), Some(libc::EIO));
    assert_eq!(fs.open(chunk, false, false).unwrap(), direct, "started over");
    assert_eq!(opens(), 2);
}

#[test]
fn sources_refuse_every_write_and_stay_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let file = sample_file(dir.path(), 10);
    let fs = mount(&["memory://scratch", dir.path().to_str().unwrap()]);
    let src = walk(&fs, &dir.path().file_name().unwrap().to_string_lossy()).unwrap();
    let erofs = |r: FsResult<()>| assert_eq!(r.unwrap_err().errno, libc::EROFS);
    erofs(fs.mkdir(src, "x", 0o755, 0, 0, 0).map(drop));
    erofs(fs.create(src, "x", 0o644, 0, libc::O_WRONLY, 0, 0).map(drop));
    erofs(fs.unlink(src, "zarr.json"));
    erofs(fs.rmdir(inode::ROOT, "nope").or(Err(FsError::read_only())));
    let doc = walk(&fs, "zarr.json").unwrap();
    erofs(fs.open(doc, true, false).map(drop));
    erofs(fs.write(doc, 0, b"x").map(drop));
    erofs(fs.setattr(doc, Default::default()).map(drop));
    let scratch = walk(&fs, "scratch").unwrap();
    let f = fs
        .create(scratch, "f", 0o644, 0, libc::O_WRONLY, 0, 0)
        .unwrap()
        .0
        .ino;
    assert_eq!(fs.link(f, src, "f").unwrap_err().errno, libc::EROFS);
    assert_eq!(
        fs.rename(scratch, "f", src, "f", 0).unwrap_err().errno,
        libc::EROFS
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    assert_eq!(std::fs::read(&file).unwrap().len(), 10);
}

#[test]
fn a_memory_store_root_can_be_removed_when_empty_and_made_again() {
    let fs = mount(&["memory://scratch", "memory://other"]);
    let scratch = walk(&fs, "scratch").unwrap();
    assert_eq!(
        fs.rmdir(inode::ROOT, "scratch").unwrap_err().errno,
        libc::ENOTEMPTY
    );
    fs.unlink(scratch, "zarr.json").unwrap();
    fs.rmdir(inode::ROOT, "scratch").unwrap();
    assert_eq!(walk(&fs, "scratch").unwrap_err().errno, libc::ENOENT);
    assert_eq!(names(&fs, ""), ["other", "zarr.json"]);
    assert_eq!(
        fs.mkdir(inode::ROOT, "scratch", 0o755, 0, 0, 0).unwrap().0.ino,
        scratch
    );
    assert_eq!(
        fs.mkdir(inode::ROOT, "scratch", 0o755, 0, 0, 0)
            .unwrap_err()
            .errno,
        libc::EEXIST
    );
    let other = walk(&fs, "other").unwrap();
    let f = fs
        .create(scratch, "f", 0o644, 0, libc::O_WRONLY, 0, 0)
        .unwrap()
        .0
        .ino;
    assert_eq!(
        fs.rename(scratch, "f", other, "f", 0).unwrap_err().errno,
        libc::EXDEV
    );
    assert_eq!(fs.link(f, other, "g").unwrap_err().errno, libc::EXDEV);
}

#[test]
fn read_only_mounts_refuse_memory_writes_too() {
    let fs = mount_with(
        &["memory://m"],
        FsConfig {
            read_only: true,
            ..FsConfig::default()
        },
    );
    assert_eq!(
        fs.mkdir(inode::ROOT, "d", 0o755, 0, 0, 0).unwrap_err().errno,
        libc::EROFS
    );
    assert!(
        read_all(&fs, "zarr.json").unwrap().starts_with(b"{"),
        "the memory root is the mount root"
    );
}

#[test]
fn the_source_tree_shows_the_configured_owner_and_modes() {
    let dir = tempfile::tempdir().unwrap();
    let file = sample_file(dir.path(), 100);
    let owner = Ownership {
        uid: 1234,
        gid: 567,
        umask: 0o027,
    };
    let fs = mount_with(
        &[&format!("raw://{}", file.display())],
        FsConfig {
            owner,
            ..FsConfig::default()
        },
    );
    for (path, kind, perm) in [
        ("", Kind::Dir, 0o550),
        ("bytes", Kind::Dir, 0o550),
        ("bytes/c", Kind::Dir, 0o550),
        ("zarr.json", Kind::File, 0o440),
        ("bytes/c/0", Kind::File, 0o440),
    ] {
        let (attr, _) = fs.getattr(walk(&fs, path).unwrap()).unwrap();
        assert_eq!(
            (attr.kind, attr.perm, attr.uid, attr.gid),
            (kind, perm, 1234, 567),
            "{path}"
        );
    }
}

#[test]
fn memory_stores_keep_their_creators_and_the_modes_asked() {
    let fs = mount(&["memory://m"]);
    let (dir, _) = fs.mkdir(inode::ROOT, "d", 0o777, 0o022, 1000, 100).unwrap();
    assert_eq!(
        (dir.perm, dir.uid, dir.gid, dir.kind),
        (0o755, 1000, 100, Kind::Dir)
    );
    let (file, _) = fs
        .create(dir.ino, "f", 0o640, 0, libc::O_CREAT | libc::O_WRONLY, 1001, 101)
        .unwrap();
    assert_eq!((file.perm, file.uid, file.gid), (0o640, 1001, 101));
    let change = crate::source::memory::SetAttr {
        mode: Some(0o600),
        uid: Some(7),
        ..Default::default()
    };
    let (changed, _) = fs.setattr(file.ino, change).unwrap();
    assert_eq!((changed.perm, changed.uid, changed.gid), (0o600, 7, 101));
}

#[test]
fn inodes_live_as_long_as_the_kernel_holds_them() {
    let dir = tempfile::tempdir().unwrap();
    let file = sample_file(dir.path(), 3 * MIB);
    let fs = mount(&[&format!("raw://{}", file.display())]);
    assert_eq!(fs.inode_count(), 1);
    // A listing numbers nothing.
    assert_eq!(names(&fs, "bytes/c"), ["0", "1", "2"]);
    let listed = fs.inode_count();
    let chunk = walk(&fs, "bytes/c/1").unwrap();
    assert_eq!(fs.inode_count(), listed + 1);
    // Two lookups held: one forget of one lookup keeps the inode, the second removes it.
    assert_eq!(walk(&fs, "bytes/c/1").unwrap(), chunk);
    fs.forget(chunk, 1);
    assert_eq!(fs.getattr(chunk).unwrap().0.ino, chunk);
    fs.forget(chunk, 1);
    assert_eq!(fs.getattr(chunk).unwrap_err().errno, libc::ENOENT);
    assert_eq!(fs.inode_count(), listed);
    // Looked up again, the name gets a fresh inode that reads the same bytes.
    let again = walk(&fs, "bytes/c/1").unwrap();
    assert_ne!(again, chunk);
    assert_eq!(
        fs.read(again, 0, 4).unwrap().as_slice(),
        &read_all(&fs, "bytes/c/1").unwrap()[..4]
    );
    // A failed lookup leaves nothing behind; the root is never forgotten.
    let count = fs.inode_count();
    assert_eq!(walk(&fs, "bytes/c/9").unwrap_err().errno, libc::ENOENT);
    fs.forget(inode::ROOT, 1);
    assert_eq!(fs.inode_count(), count);
    assert!(fs.getattr(inode::ROOT).is_ok());
}
