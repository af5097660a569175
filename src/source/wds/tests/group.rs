//! Grouping: webdataset's key split, metadata rule, adjacency and the skip decisions.

use super::super::sample::{Field, Grouper, Sample, SkipReason, is_meta, split_key};
use super::super::tar::{End, EndKind, Entry, EntryKind};

/// Expected values printed by Python 3.11 running webdataset 1.0.2's regexes.
#[test]
fn split_key_matches_base_plus_ext() {
    let cases: &[(&str, Option<(&str, &str)>)] = &[
        (
            "images17/image194.left.jpg",
            Some(("images17/image194", "left.jpg")),
        ),
        ("a.b/c.jpg", Some(("a.b/c", "jpg"))),
        (".hidden", None),
        ("a/b/.hidden", Some(("a/b/", "hidden"))),
        ("a.b/.hidden", None),
        ("a/b", None),
        ("abc", None),
        ("x.y\nz/c.jpg", None),
        ("a\nb/c.jpg", Some(("a\nb/c", "jpg"))),
        ("dir/sub/file.tar.gz", Some(("dir/sub/file", "tar.gz"))),
        ("a/.b.c", Some(("a/", "b.c"))),
        ("a.", Some(("a", ""))),
        ("a..b", Some(("a", ".b"))),
        ("/abs/x.y", Some(("/abs/x", "y"))),
        ("./x.jpg", Some(("./x", "jpg"))),
        ("a/b.c/d", None),
        ("a/b.c/d.e", Some(("a/b.c/d", "e"))),
        ("x/..", Some(("x/", "."))),
        ("..", None),
        ("../x.jpg", Some(("../x", "jpg"))),
        ("a\n.b", Some(("a\n", "b"))),
        ("a/\n.b", Some(("a/\n", "b"))),
        (
            "sample_000000001.Base_2_3__Zone__GridCoordinates__CoordinateX.npy",
            Some((
                "sample_000000001",
                "Base_2_3__Zone__GridCoordinates__CoordinateX.npy",
            )),
        ),
    ];
    for (name, want) in cases {
        let got = split_key(name.as_bytes()).map(|(k, s)| (k.to_vec(), s.to_vec()));
        let want = want.map(|(k, s)| (k.as_bytes().to_vec(), s.as_bytes().to_vec()));
        assert_eq!(got, want, "{name:?}");
    }
}

#[test]
fn split_key_is_linear_on_hostile_names() {
    let mut name = "a/".repeat(200_000).into_bytes();
    name.extend_from_slice(b".x");
    let started = std::time::Instant::now();
    assert_eq!(split_key(&name).map(|(k, _)| k.len()), Some(name.len() - 2));
    assert!(started.elapsed().as_secs() < 1);
}

#[test]
fn meta_names_match_tar_file_iterator() {
    let cases = [
        ("__key__", true),
        ("__meta__/x.json", true),
        ("a/__x__", false),
        ("__x__.json", false),
        ("___", true),
        ("__", true),
        ("____", true),
        ("__a__b", false),
        ("__a/b__", false),
        ("__x__\n", true),
        ("__\n__", true),
    ];
    for (name, want) in cases {
        assert_eq!(is_meta(name.as_bytes()), want, "{name:?}");
    }
}

fn entry(name: &str, kind: EntryKind, at: u64) -> Entry {
    Entry {
        name: name.as_bytes().to_vec(),
        kind,
        header_offset: at,
        data_offset: at + 512,
        size: 10,
    }
}

fn end() -> End {
    End {
        kind: EndKind::Marker,
        offset: 0,
        reason: String::new(),
        cut: None,
    }
}

fn group(names: &[(&str, EntryKind)], end: End) -> (Vec<Sample>, Vec<super::super::sample::Skipped>) {
    let mut g = Grouper::default();
    for (i, (name, kind)) in names.iter().enumerate() {
        g.push(&entry(name, *kind, i as u64 * 1024));
    }
    g.finish(&end)
}

fn keys(samples: &[Sample]) -> Vec<(String, Vec<String>)> {
    samples
        .iter()
        .map(|s| {
            (
                s.key.clone(),
                s.fields.iter().map(|f: &Field| f.suffix.to_string()).collect(),
            )
        })
        .collect()
}

use EntryKind::*;

#[test]
fn adjacent_members_form_samples_and_keys_may_repeat() {
    let (samples, skipped) = group(
        &[
            ("a.jpg", Regular),
            ("a.cls", Regular),
            ("b.jpg", Regular),
            ("a.txt", Regular),
            ("run1/c.Left.JPG", Regular),
            ("run1/c.npy", Regular),
        ],
        end(),
    );
    assert_eq!(
        keys(&samples),
        [
            ("a".into(), vec!["jpg".into(), "cls".into()]),
            ("b".into(), vec!["jpg".into()]),
            ("a".into(), vec!["txt".into()]),
            ("run1/c".into(), vec!["Left.JPG".into(), "npy".into()]),
        ]
    );
    assert_eq!(&*samples[3].fields[0].suffix_lower, "left.jpg");
    assert_eq!(samples[3].fields[0].extension(), "jpg");
    assert_eq!(samples[0].offset, 0);
    assert_eq!(samples[0].fields[1].offset, 1024 + 512);
    assert!(skipped.is_empty());
}

#[test]
fn passed_over_members_do_not_break_a_sample() {
    let (samples, skipped) = group(
        &[
            ("a.jpg", Regular),
            ("a", Directory),
            ("a.lnk", Symlink),
            ("a.hard", Hardlink),
            ("dev.x", CharDevice),
            ("README", Regular),
            ("__meta__", Regular),
            ("fifo.x", Fifo),
            ("a.cls", Regular),
        ],
        end(),
    );
    assert_eq!(keys(&samples), [("a".into(), vec!["jpg".into(), "cls".into()])]);
    let reasons: Vec<_> = skipped
        .iter()
        .map(|s| (s.name.as_str(), s.reason.clone()))
        .collect();
    assert_eq!(
        reasons,
        [
            ("a.lnk", SkipReason::NotRegular(Symlink)),
            ("a.hard", SkipReason::NotRegular(Hardlink)),
            ("dev.x", SkipReason::NotRegular(CharDevice)),
            ("README", SkipReason::NoSuffix),
            ("__meta__", SkipReason::Metadata),
            ("fifo.x", SkipReason::NotRegular(Fifo)),
        ]
    );
}

#[test]
fn duplicate_suffix_skips_the_sample() {
    let (samples, skipped) = group(
        &[("a.JPG", Regular), ("a.jpg", Regular), ("b.jpg", Regular)],
        end(),
    );
    assert_eq!(keys(&samples), [("b".into(), vec!["jpg".into()])]);
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].name, "a");
    assert_eq!(skipped[0].reason, SkipReason::DuplicateSuffix("jpg".into()));
    let (samples, skipped) = group(&[("a.__key__", Regular)], end());
    assert!(samples.is_empty());
    assert_eq!(skipped[0].reason, SkipReason::DuplicateSuffix("__key__".into()));
}

#[test]
fn unsafe_names_skip_their_sample_but_keep_adjacency() {
    let (samples, skipped) = group(
        &[
            ("a.jpg", Regular),
            ("../a.jpg", Regular),
            ("a.cls", Regular),
            ("/etc/passwd.x", Regular),
            ("x/...", Regular),
            ("x/..", Regular),
        ],
        end(),
    );
    // webdataset: a{jpg}, ../a{jpg}, a{cls}, /etc/passwd{x}, x/{..}+x/{.} (same key "x/").
    assert_eq!(
        keys(&samples),
        [("a".into(), vec!["jpg".into()]), ("a".into(), vec!["cls".into()])]
    );
    let names: Vec<_> = skipped.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["../a", "/etc/passwd", "x/"]);
    assert!(matches!(skipped[2].reason, SkipReason::UnsafeName(ref n) if n == "x/.."));
}

#[test]
fn sparse_members_skip_their_sample() {
    let (samples, skipped) = group(
        &[("a.bin", Sparse), ("a.cls", Regular), ("b.cls", Regular)],
        end(),
    );
    assert_eq!(keys(&samples), [("b".into(), vec!["cls".into()])]);
    assert_eq!(skipped[0].reason, SkipReason::SparseMember("a.bin".into()));
}

#[test]
fn non_utf8_names_skip_their_sample() {
    let mut g = Grouper::default();
    let mut e = entry("x", Regular, 0);
    e.name = b"caf\xe9.jpg".to_vec();
    g.push(&e);
    let mut e2 = entry("ok.jpg", Regular, 1024);
    e2.name = b"ok.\xff".to_vec();
    g.push(&e2);
    g.push(&entry("fine.txt", Regular, 2048));
    let (samples, skipped) = g.finish(&end());
    assert_eq!(keys(&samples), [("fine".into(), vec!["txt".into()])]);
    assert!(skipped.iter().all(|s| matches!(s.reason, SkipReason::NotUtf8(_))));
    assert_eq!(skipped.len(), 2);
}

#[test]
fn a_cut_member_spoils_only_its_own_sample() {
    let cut = |name: &str| End {
        kind: EndKind::Truncated,
        offset: 5000,
        reason: "cut".into(),
        cut: Some(entry(name, Regular, 5000)),
    };
    let (samples, skipped) = group(&[("a.jpg", Regular), ("b.jpg", Regular)], cut("b.cls"));
    assert_eq!(keys(&samples), [("a".into(), vec!["jpg".into()])]);
    assert_eq!(skipped[0].reason, SkipReason::TruncatedMember("b.cls".into()));
    let (samples, skipped) = group(&[("a.jpg", Regular), ("b.jpg", Regular)], cut("c.cls"));
    assert_eq!(keys(&samples).len(), 2);
    assert_eq!(
        (skipped[0].name.as_str(), &skipped[0].reason),
        ("c.cls", &SkipReason::Truncated)
    );
    // A corrupt header ends the shard quietly: the sample in progress is kept.
    let corrupt = End {
        kind: EndKind::Corrupt,
        ..end()
    };
    let (samples, _) = group(&[("a.jpg", Regular), ("a.cls", Regular)], corrupt);
    assert_eq!(keys(&samples), [("a".into(), vec!["jpg".into(), "cls".into()])]);
}
