//! The mapping on the committed fixture shards (fixtures/wds), without FUSE: what each
//! suffix becomes, and that every chunk a group lists can be made at the size it declares.

use std::path::{Path, PathBuf};

use crate::io::{BufferPool, PreadEngine};
use crate::source::wds::WebDataset;
use crate::source::{Dataset, Source};
use crate::tree::{ArraySpec, DataType, Node};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/wds")
        .join(name)
}

fn open(spec: &str) -> Dataset {
    super::super::configure_index(super::super::IndexConfig {
        cache_dir: None,
        explicit: false,
    });
    WebDataset.open(Path::new(spec)).expect("opens")
}

fn arrays(ds: &Dataset) -> Vec<(String, &ArraySpec)> {
    ds.root
        .descendants()
        .into_iter()
        .filter_map(|(path, node)| match node {
            Node::Array(spec) => Some((path, spec.as_ref())),
            Node::Group(_) => None,
        })
        .collect()
}

/// Every listed chunk of every array, made: its size is the one the array declares.
fn check_every_chunk(ds: &Dataset) -> usize {
    let io = PreadEngine::new(1, BufferPool::new(0)).unwrap();
    let mut made = 0;
    for (path, spec) in arrays(ds) {
        // Every coordinate vector of the grid, in C order.
        let all = spec
            .chunk_grid()
            .iter()
            .fold(vec![vec![]], |acc: Vec<Vec<u64>>, &n| {
                acc.iter()
                    .flat_map(|prefix| (0..n).map(move |c| [prefix.as_slice(), &[c]].concat()))
                    .collect()
            });
        for coords in all.into_iter().filter(|c| spec.has_chunk(c)) {
            let expected = spec.chunk_file_size(&coords);
            let bytes = ds.planner.plan(spec.id, &coords).unwrap().execute(&io, expected);
            assert!(bytes.is_ok(), "{path} chunk {coords:?}: {:?}", bytes.err());
            made += 1;
        }
    }
    made
}

#[test]
fn every_chunk_of_every_fixture_is_made_at_its_declared_size() {
    let mut made = 0;
    for name in [
        "plaid-000000.tar",
        "gnu.tar",
        "ustar.tar",
        "unsafe.tar",
        "dupes.tar",
        "truncated.tar",
        "badnpy.tar",
    ] {
        made += check_every_chunk(&open(fixture(name).to_str().unwrap()));
    }
    let train = format!("{}/train-{{000000..000002}}.tar", fixture("").display());
    made += check_every_chunk(&open(&train));
    assert!(made > 80, "{made} chunks");
}

#[test]
fn suffixes_become_the_kinds_webdataset_decodes_them_as() {
    let train = format!("{}/train-{{000000..000002}}.tar", fixture("").display());
    let ds = open(&train);
    let kind = |name: &str| match ds.root.members.get(name) {
        Some(Node::Array(spec)) => Some(spec.data_type),
        _ => None,
    };
    assert_eq!(kind("key"), Some(DataType::String));
    assert_eq!(kind("shard"), Some(DataType::String));
    assert_eq!(kind("image.npy"), Some(DataType::Float32));
    assert_eq!(kind("mask.npy"), Some(DataType::Bool));
    assert_eq!(kind("cls"), Some(DataType::Int64));
    assert_eq!(kind("Label.TXT"), Some(DataType::String));
    assert_eq!(kind("json"), Some(DataType::String));
    assert_eq!(kind("jpg"), Some(DataType::Bytes));
    assert_eq!(kind("extra.npy.present"), Some(DataType::Bool));
    assert_eq!(kind("image.npy.present"), None, "present everywhere: no flags");
    assert!(matches!(ds.root.members.get("var.npy"), Some(Node::Group(g)) if g.members.len() == 6));
    let attrs = &ds.root.attributes;
    assert_eq!(attrs["n_samples"], 6);
    let counts: Vec<u64> = attrs["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["samples"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, [3, 1, 2]);
}

#[test]
fn a_one_sample_chunk_of_a_c_order_npy_is_its_payload_range() {
    let ds = open(fixture("plaid-000000.tar").to_str().unwrap());
    let Some(Node::Group(ragged)) = ds
        .root
        .members
        .get("Base_2_3__Zone__GridCoordinates__CoordinateX.npy")
    else {
        panic!("ragged feature is a group");
    };
    let Some(Node::Array(spec)) = ragged.members.get("1") else {
        panic!("sample 1");
    };
    assert_eq!(spec.shape, [7]);
    let plan = ds.planner.plan(spec.id, &[0]).unwrap();
    // webdataset's reference: the member's payload starts at 34432 and is 56 bytes long.
    let extent = plan.as_byte_range(56).expect("one byte range");
    assert_eq!(extent.offset, 34432);
}

#[test]
fn suffixes_no_file_may_be_named_are_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("odd.tar");
    let mut builder = tar::Builder::new(std::fs::File::create(&path).unwrap());
    for name in ["s0.", "s0..", "s0...", "s0.__x", "s0.cls"] {
        let mut header = tar::Header::new_ustar();
        header.set_size(1);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, name, &b"1"[..]).unwrap();
    }
    builder.finish().unwrap();
    drop(builder);
    let ds = open(path.to_str().unwrap());
    let names: Vec<&String> = ds.root.members.keys().collect();
    assert_eq!(names, ["cls", "key", "shard", "~", "~.", "~..", "~__x"]);
    check_every_chunk(&ds);
}
