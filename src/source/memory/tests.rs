use std::collections::BTreeMap;

use super::*;

const OWNER: Owner = Owner {
    uid: 0,
    gid: 0,
    mode: 0o644,
};

fn store(limit: u64) -> MemoryStore {
    MemoryStore::new("t", limit, OWNER)
}

fn put(s: &MemoryStore, parent: u64, name: &str, bytes: &[u8]) -> u64 {
    let ino = s.create(parent, name, OWNER, false, true).unwrap().ino;
    s.write(ino, 0, bytes).unwrap();
    s.release(ino);
    ino
}

fn contents(s: &MemoryStore, parent: u64, name: &str) -> Vec<u8> {
    let ino = s.lookup(parent, name).unwrap().ino;
    s.read(ino, 0, u32::MAX).unwrap()
}

#[test]
fn posix_errors() {
    let s = store(1 << 20);
    let dir = s.mkdir(ROOT, "d", OWNER).unwrap().ino;
    assert_eq!(s.mkdir(ROOT, "d", OWNER).unwrap_err(), MemError::Exists);
    put(&s, dir, "f", b"x");
    assert_eq!(s.rmdir(ROOT, "d").unwrap_err(), MemError::NotEmpty);
    assert_eq!(s.unlink(ROOT, "d").unwrap_err(), MemError::IsDir);
    assert_eq!(s.rmdir(dir, "f").unwrap_err(), MemError::NotDir);
    assert_eq!(s.lookup(ROOT, "nope").unwrap_err(), MemError::NotFound);
    let f = s.lookup(dir, "f").unwrap().ino;
    assert_eq!(s.lookup(f, "x").unwrap_err(), MemError::NotDir);
    assert_eq!(s.open(dir, false).unwrap_err(), MemError::IsDir);
    assert_eq!(
        s.create(dir, "f", OWNER, true, false).unwrap_err(),
        MemError::Exists
    );
    assert_eq!(s.link(dir, ROOT, "d2").unwrap_err(), MemError::Permission);
    assert_eq!(
        s.mkdir(ROOT, &"n".repeat(256), OWNER).unwrap_err(),
        MemError::NameTooLong
    );
    assert_eq!(
        s.rename(ROOT, "d", dir, "inside", false).unwrap_err(),
        MemError::Invalid
    );
}

#[test]
fn rename_replaces_and_link_unlink_moves_exclusively() {
    let s = store(1 << 20);
    put(&s, ROOT, "a.partial", b"new");
    put(&s, ROOT, "a", b"old");
    s.rename(ROOT, "a.partial", ROOT, "a", false).unwrap();
    assert_eq!(contents(&s, ROOT, "a"), b"new");
    assert_eq!(s.lookup(ROOT, "a.partial").unwrap_err(), MemError::NotFound);

    // zarr-python's exclusive put: link to the final name, then unlink the temporary.
    let tmp = put(&s, ROOT, "b.partial", b"bee");
    s.link(tmp, ROOT, "b").unwrap();
    assert_eq!(s.getattr(tmp).unwrap().nlink, 2);
    assert_eq!(s.link(tmp, ROOT, "b").unwrap_err(), MemError::Exists);
    s.unlink(ROOT, "b.partial").unwrap();
    assert_eq!(contents(&s, ROOT, "b"), b"bee");
    assert_eq!(s.getattr(tmp).unwrap().nlink, 1);

    assert_eq!(
        s.rename(ROOT, "a", ROOT, "b", true).unwrap_err(),
        MemError::Exists
    );
    let d = s.mkdir(ROOT, "d", OWNER).unwrap().ino;
    assert_eq!(
        s.rename(ROOT, "a", ROOT, "d", false).unwrap_err(),
        MemError::IsDir
    );
    assert_eq!(
        s.rename(ROOT, "d", ROOT, "a", false).unwrap_err(),
        MemError::NotDir
    );
    s.rename(ROOT, "d", ROOT, "e", false).unwrap();
    s.rename(ROOT, "a", d, "a", false).unwrap();
    assert_eq!(contents(&s, d, "a"), b"new");
}

#[test]
fn writes_fill_holes_and_truncate_both_ways() {
    let s = store(1 << 20);
    let f = put(&s, ROOT, "f", b"abc");
    s.write(f, 6, b"xy").unwrap();
    assert_eq!(s.read(f, 0, 100).unwrap(), b"abc\0\0\0xy");
    assert_eq!(s.read(f, 7, 100).unwrap(), b"y");
    assert!(s.read(f, 100, 10).unwrap().is_empty());
    s.setattr(
        f,
        SetAttr {
            size: Some(2),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(s.read(f, 0, 100).unwrap(), b"ab");
    s.setattr(
        f,
        SetAttr {
            size: Some(4),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(s.read(f, 0, 100).unwrap(), b"ab\0\0");
    let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
    let attr = s.setattr(
        f,
        SetAttr {
            mtime: Some(t),
            atime: Some(t),
            mode: Some(0o600),
            ..Default::default()
        },
    );
    let attr = attr.unwrap();
    assert_eq!((attr.mtime, attr.atime, attr.mode), (t, t, 0o600));
    s.open(f, true).unwrap();
    assert_eq!(s.getattr(f).unwrap().size, 0);
}

#[test]
fn limit_refuses_writes_without_touching_earlier_bytes_and_frees_on_delete() {
    let s = store(64 << 10);
    let a = put(&s, ROOT, "a", &[7u8; 20_000]);
    let b = s.create(ROOT, "b", OWNER, false, false).unwrap().ino;
    assert_eq!(s.write(b, 0, &[1u8; 60_000]).unwrap_err(), MemError::NoSpace);
    assert_eq!(
        s.getattr(b).unwrap().size,
        0,
        "a refused write leaves nothing behind"
    );
    assert_eq!(s.read(a, 0, u32::MAX).unwrap(), vec![7u8; 20_000]);
    assert_eq!(
        s.setattr(
            b,
            SetAttr {
                size: Some(1 << 30),
                ..Default::default()
            }
        )
        .unwrap_err(),
        MemError::NoSpace
    );
    s.release(b);
    s.unlink(ROOT, "a").unwrap();
    s.write(b, 0, &[1u8; 60_000]).unwrap();
    assert!(s.usage().used <= s.usage().limit);
}

#[test]
fn unlinked_open_files_stay_readable_until_released() {
    let s = store(1 << 20);
    let before = s.usage().used;
    let f = s.create(ROOT, "f", OWNER, false, false).unwrap().ino;
    s.write(f, 0, b"still here").unwrap();
    s.unlink(ROOT, "f").unwrap();
    assert_eq!(s.read(f, 0, 100).unwrap(), b"still here");
    s.release(f);
    assert_eq!(s.getattr(f).unwrap_err(), MemError::NotFound);
    assert_eq!(s.usage().used, before, "every byte is refunded");
}

#[test]
fn metadata_documents_lists_every_zarr_json() {
    let s = store(1 << 20);
    put(&s, ROOT, "zarr.json", b"{}");
    let g = s.mkdir(ROOT, "g", OWNER).unwrap().ino;
    let a = s.mkdir(g, "a", OWNER).unwrap().ino;
    put(&s, a, "zarr.json", b"[1]");
    put(&s, a, "c", b"chunk");
    let docs = s.metadata_documents();
    assert_eq!(
        docs,
        vec![(String::new(), b"{}".to_vec()), ("g/a".into(), b"[1]".to_vec())]
    );
}

/// Random operations against a map from path to bytes: the store must agree with the model
/// after every step, and its accounting must return to the start once everything is deleted.
#[test]
fn agrees_with_a_reference_model() {
    let s = store(1 << 20);
    let empty = s.usage().used;
    let mut model: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let names = ["a", "b", "c", "d"];
    for _ in 0..2000 {
        let name = names[next(4) as usize];
        let other = names[next(4) as usize];
        match next(5) {
            0 => {
                let off = next(300);
                let len = next(200) as usize;
                let byte = next(256) as u8;
                let ino = s.create(ROOT, name, OWNER, false, false).unwrap().ino;
                s.write(ino, off, &vec![byte; len]).unwrap();
                s.release(ino);
                let data = model.entry(name.into()).or_default();
                let end = off as usize + len;
                if data.len() < end {
                    data.resize(end, 0);
                }
                data[off as usize..end].fill(byte);
            }
            1 => {
                let size = next(400);
                if let Ok(attr) = s.lookup(ROOT, name) {
                    s.setattr(
                        attr.ino,
                        SetAttr {
                            size: Some(size),
                            ..Default::default()
                        },
                    )
                    .unwrap();
                    model.get_mut(name).unwrap().resize(size as usize, 0);
                }
            }
            2 => {
                assert_eq!(s.unlink(ROOT, name).is_ok(), model.remove(name).is_some());
            }
            3 => {
                let ok = s.rename(ROOT, name, ROOT, other, false).is_ok();
                assert_eq!(ok, model.contains_key(name));
                if let Some(data) = model.remove(name) {
                    model.insert(other.into(), data);
                }
            }
            _ => {
                if let Ok(attr) = s.lookup(ROOT, name) {
                    if s.link(attr.ino, ROOT, other).is_ok() {
                        s.unlink(ROOT, name).unwrap();
                        let data = model.remove(name).unwrap();
                        model.insert(other.into(), data);
                    } else {
                        assert!(model.contains_key(other));
                    }
                }
            }
        }
        let listed: Vec<String> = s.readdir(ROOT).unwrap().into_iter().map(|(n, _, _)| n).collect();
        assert_eq!(listed, model.keys().cloned().collect::<Vec<_>>());
        for (name, data) in &model {
            assert_eq!(&contents(&s, ROOT, name), data, "{name}");
        }
    }
    for name in model.keys() {
        s.unlink(ROOT, name).unwrap();
    }
    assert_eq!(s.usage().used, empty);
}
