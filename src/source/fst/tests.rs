//! The containers against librmn's own listing of the librmn-20 fixtures
//! (`fixtures/fst/rsf/reference.json`: what `fst24_read_next` returned, in order).

use std::path::PathBuf;

use serde_json::Value;

use super::file::{Container, read_directory};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/fst/rsf")
        .join(name)
}

fn reference(name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(fixture("reference.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v[name]["records"].as_array().unwrap().clone()
}

#[test]
fn directories_list_what_librmn_lists() {
    for (name, container) in [
        ("sample.rsf", Container::Rsf),
        ("sample_xdf.fst", Container::Xdf),
        ("multiseg.rsf", Container::Rsf),
    ] {
        let (found, dir) = read_directory(&fixture(name)).unwrap();
        assert_eq!(found, container);
        assert!(dir.skipped.is_empty(), "{name}: {:?}", dir.skipped);
        assert_eq!(
            dir.records.iter().filter(|r| r.deleted).count(),
            usize::from(name != "multiseg.rsf")
        );
        let live: Vec<_> = dir.records.iter().filter(|r| !r.deleted).collect();
        let expected = reference(name);
        assert_eq!(live.len(), expected.len(), "{name}");
        for (r, e) in live.iter().zip(&expected) {
            let k = &r.keys;
            let ctx = format!("{name} record {}", e["index"]);
            for (field, got) in [
                ("nomvar", k.nomvar.as_str()),
                ("typvar", &k.typvar),
                ("etiket", &k.etiket),
                ("grtyp", &k.grtyp),
            ] {
                assert_eq!(e[field].as_str().unwrap(), got, "{ctx} {field}");
            }
            for (field, got) in [
                ("ni", k.ni),
                ("nj", k.nj),
                ("nk", k.nk),
                ("datyp", u32::from(k.datyp)),
                ("nbits", u32::from(k.nbits)),
                ("ip1", k.ip1),
                ("ip2", k.ip2),
                ("ip3", k.ip3),
                ("ig1", k.ig1),
                ("ig2", k.ig2),
                ("ig3", k.ig3),
                ("ig4", k.ig4),
                ("deet", k.deet),
                ("npas", k.npas),
                ("datev", k.datev),
                ("dateo", k.dateo()),
            ] {
                assert_eq!(e[field].as_u64().unwrap(), u64::from(got), "{ctx} {field}");
            }
            // librmn 20 reports dasiz 32 for the XDF string record, where the file has 0.
            if !(container == Container::Xdf && k.datyp == 7) {
                assert_eq!(e["dasiz"].as_u64().unwrap(), u64::from(k.dasiz), "{ctx} dasiz");
            }
            assert_eq!(e["file_offset"].as_u64().unwrap(), r.offset, "{ctx}");
            assert_eq!(e["total_stored_bytes"].as_u64().unwrap(), r.len, "{ctx}");
            let level = super::ip::decode(k.ip1);
            assert_eq!(e["ip1_kind"].as_i64().unwrap(), i64::from(level.kind), "{ctx}");
            assert_eq!(e["ip1_value"].as_f64().unwrap() as f32, level.value, "{ctx}");
            match e.get("extended_metadata").and_then(Value::as_str) {
                Some(text) => assert_eq!(r.extended.as_deref(), Some(text), "{ctx}"),
                None => assert_eq!(r.extended, None, "{ctx}"),
            }
            if container == Container::Rsf {
                let meta = e["num_meta_bytes"].as_u64().unwrap();
                assert_eq!(r.payload_offset, r.offset + 16 + meta, "{ctx}");
            }
        }
    }
}

#[test]
fn nomvars_no_node_may_be_named_are_renamed() {
    use super::mapping::node_name;
    assert_eq!(node_name("TT"), "TT");
    assert_eq!(node_name("A/B"), "A_B");
    assert_eq!(node_name(""), "nomvar");
    assert_eq!(node_name("."), "nomvar.");
    assert_eq!(node_name(".."), "nomvar..");
}

#[test]
fn a_cut_xdf_header_says_where_the_file_ends() {
    let data = std::fs::read(fixture("sample_xdf.fst")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.fst");
    std::fs::write(&path, &data[..104]).unwrap();
    let err = read_directory(&path).unwrap_err();
    assert!(
        err.contains("ends at byte 104") && err.contains("XDF header"),
        "{err}"
    );
}

#[test]
fn a_damaged_xdf_header_names_the_word() {
    let data = std::fs::read(fixture("sample_xdf.fst")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flipped.fst");
    for (byte, word) in [(43, "byte 40"), (31, "byte 28")] {
        let mut bad = data.clone();
        bad[byte] ^= if byte == 31 { 0xF0 } else { 0x01 };
        bad[byte - 1] ^= if byte == 31 { 0x10 } else { 0 };
        std::fs::write(&path, &bad).unwrap();
        let err = read_directory(&path).unwrap_err();
        assert!(err.contains(word), "{err}");
    }
}

#[test]
fn a_cut_rsf_segment_header_is_told() {
    let data = std::fs::read(fixture("multiseg.rsf")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.rsf");
    std::fs::write(&path, &data[..40]).unwrap();
    let err = read_directory(&path).unwrap_err();
    assert!(err.contains("ends at byte 40"), "{err}");
    // multiseg.rsf: empty segment at 0, data segments at 140 and 1572; cut inside the third
    // segment's header, the second's records stay and the rest is listed.
    std::fs::write(&path, &data[..1572 + 30]).unwrap();
    let (_, d) = read_directory(&path).unwrap();
    assert_eq!(d.records.len(), 3);
    assert_eq!(d.skipped.len(), 1, "{:?}", d.skipped);
    assert!(d.skipped[0].contains("at byte 1572"), "{:?}", d.skipped);
}
