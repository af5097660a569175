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

/// Against the committed fixtures: every shard of `fixtures/wds` with webdataset 1.0.2's
/// own samples (`fixtures/wds/reference/<shard>.json`, written by `make_shards.py`). Our
/// samples are webdataset's, minus the deliberate differences: samples with an absolute or
/// `..` member name are skipped. Where webdataset stops with an error (a duplicate suffix,
/// a cut shard) the samples it yielded before it must be ours, in order.
#[test]
fn fixtures_match_webdataset() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/wds");
    let mut checked = 0;
    for entry in std::fs::read_dir(root.join("reference")).expect("reference dir") {
        let path = entry.expect("entry").path();
        let reference: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        let Some(shard) = reference["shard"].as_str() else {
            continue; // the shard-set order file
        };
        let index = index_file(&root.join(shard)).expect("index");
        let wds = &reference["webdataset"];
        let unsafe_key = |key: &str| key.starts_with('/') || key.split('/').any(|c| c == "..");
        let expected: Vec<&serde_json::Value> = wds["samples"]
            .as_array()
            .expect("samples")
            .iter()
            .filter(|s| !unsafe_key(s["__key__"].as_str().unwrap_or_default()))
            .collect();
        if wds["error"].is_null() {
            assert_eq!(index.samples.len(), expected.len(), "{shard}: sample count");
        } else {
            assert!(
                index.samples.len() >= expected.len(),
                "{shard}: fewer samples than webdataset yields before its error"
            );
        }
        for (ours, want) in index.samples.iter().zip(&expected) {
            let ctx = format!("{shard} {}", ours.key);
            assert_eq!(ours.key, want["__key__"].as_str().unwrap_or_default(), "{ctx}");
            let mut suffixes: Vec<&str> = ours.fields.iter().map(|f| &*f.suffix_lower).collect();
            let mut theirs: Vec<&str> = want["suffixes"]
                .as_array()
                .expect("suffixes")
                .iter()
                .filter_map(|s| s.as_str())
                .collect();
            suffixes.sort_unstable();
            theirs.sort_unstable();
            assert_eq!(suffixes, theirs, "{ctx}");
            for field in &ours.fields {
                let m = &want["members"][&*field.suffix_lower];
                assert_eq!(
                    Some(field.offset),
                    m["offset_data"].as_u64(),
                    "{ctx} {}",
                    field.suffix
                );
                assert_eq!(Some(field.size), m["size"].as_u64(), "{ctx} {}", field.suffix);
                if let Some(Ok(npy)) = field.npy.as_deref() {
                    assert_eq!(
                        Some(field.offset + npy.data_offset),
                        m["payload_offset"].as_u64(),
                        "{ctx} {}",
                        field.suffix
                    );
                    assert_eq!(
                        Some(npy.data_len),
                        m["payload_nbytes"].as_u64(),
                        "{ctx} {}",
                        field.suffix
                    );
                    assert_eq!(
                        Some(npy.fortran_order),
                        m["fortran_order"].as_bool(),
                        "{ctx} {}",
                        field.suffix
                    );
                    let shape: Vec<u64> = m["shape"]
                        .as_array()
                        .expect("shape")
                        .iter()
                        .filter_map(|v| v.as_u64())
                        .collect();
                    assert_eq!(npy.shape, shape, "{ctx} {}", field.suffix);
                }
            }
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} samples compared");
}
