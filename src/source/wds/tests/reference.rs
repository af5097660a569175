//! Against webdataset itself: for every `X.tar` in `$ZARRMOUNT_WDS_REFERENCE` with an
//! `X.tar.wds.json` beside it (what webdataset 1.0.2's `tar_file_iterator` +
//! `group_by_keys` yield: `{"samples": [{"key", "fields": [[suffix, fnv1a64 hex]]}]}`),
//! the index must give the same samples, suffixes and member bytes.
//!
//! `webdataset_reference.py DIR` (beside this file; needs `webdataset` and `numpy`) writes
//! such pairs: webdataset's TarWriter output, Python `tarfile` GNU/ustar/PAX archives with
//! long names, prefixes, a global header, links, hidden and `__meta__` members, GNU tar's
//! own gnu/posix archives, and a shard with a broken header in the middle. Then
//! `ZARRMOUNT_WDS_REFERENCE=DIR cargo test --lib python_reference -- --ignored`.
//! Last run (webdataset 1.0.2, Python 3.11.7, GNU tar 1.34): 7 shards match.

use std::path::Path;

use super::super::index_file;

fn fnv(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn ours(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).expect("read shard");
    let index = index_file(path).expect("index");
    let samples: Vec<serde_json::Value> = index
        .samples
        .iter()
        .map(|s| {
            let fields: Vec<serde_json::Value> = s
                .fields
                .iter()
                .map(|f| {
                    let data = &bytes[f.offset as usize..(f.offset + f.size) as usize];
                    serde_json::json!([&*f.suffix_lower, fnv(data)])
                })
                .collect();
            serde_json::json!({"key": s.key, "fields": fields})
        })
        .collect();
    serde_json::json!({ "samples": samples })
}

#[test]
#[ignore = "needs shards and webdataset's output: set ZARRMOUNT_WDS_REFERENCE"]
fn python_reference() {
    let Some(dir) = std::env::var_os("ZARRMOUNT_WDS_REFERENCE") else {
        return;
    };
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).expect("dir") {
        let path = entry.expect("entry").path();
        let reference = path.with_extension("tar.wds.json");
        if path.extension().is_none_or(|e| e != "tar") || !reference.exists() {
            continue;
        }
        let want: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&reference).expect("json")).expect("parse json");
        assert_eq!(ours(&path), want, "{}", path.display());
        checked += 1;
    }
    assert!(checked > 0, "no X.tar + X.tar.wds.json pairs");
    eprintln!("{checked} shards match webdataset");
}
