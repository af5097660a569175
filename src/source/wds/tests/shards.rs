//! Shard specs: braceexpand 0.1.7's doctests and webdataset's `expand_urls`.

use std::path::PathBuf;

use super::super::shards::{ShardSpecError, braceexpand, discover, expand_urls, from_spec, resolve};

fn expand(p: &str) -> Vec<String> {
    braceexpand(p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

#[test]
fn braceexpand_doctests() {
    assert_eq!(expand("item{1..3}"), ["item1", "item2", "item3"]);
    assert_eq!(expand("{a..c}"), ["a", "b", "c"]);
    assert_eq!(
        expand("index.html{,.backup}"),
        ["index.html", "index.html.backup"]
    );
    assert_eq!(
        expand("python{2.{5..7},3.{2,3}}"),
        ["python2.5", "python2.6", "python2.7", "python3.2", "python3.3"]
    );
    assert_eq!(expand("{07..10}"), ["07", "08", "09", "10"]);
    assert_eq!(expand("{a..g..2}"), ["a", "c", "e", "g"]);
    assert_eq!(expand("{4..1}"), ["4", "3", "2", "1"]);
    assert_eq!(expand("{2..-1}"), ["2", "1", "0", "-1"]);
    assert_eq!(
        braceexpand("{1{2,3}"),
        Err(ShardSpecError::Unbalanced("{1{2,3}".into()))
    );
    assert_eq!(expand(r"{1\{2,3}"), ["1{2", "3"]);
}

#[test]
fn ranges_lists_and_several_braces() {
    let shards = expand("/d/train-{000000..000099}.tar");
    assert_eq!(shards.len(), 100);
    assert_eq!(
        (shards[0].as_str(), shards[99].as_str()),
        ("/d/train-000000.tar", "/d/train-000099.tar")
    );
    assert_eq!(expand("{a,b}-{0..1}"), ["a-0", "a-1", "b-0", "b-1"]);
    assert_eq!(expand("{-03..2..2}"), ["-03", "-01", "001"]);
    assert_eq!(expand("x{abc}y"), ["x{abc}y"]);
    assert_eq!(expand("{}"), ["{}"]);
    assert_eq!(expand("{Y..b}"), ["Y", "Z", "a", "b"]);
    assert_eq!(expand("{c..a..2}"), ["c", "a"]);
    assert_eq!(expand("{1..1}"), ["1"]);
    assert_eq!(expand("{0..3..0}"), ["0", "1", "2", "3"]);
    assert_eq!(expand("{a,{b,c}d}"), ["a", "bd", "cd"]);
    assert_eq!(expand("{,}"), ["", ""]);
    assert_eq!(expand("a{,b}c"), ["ac", "abc"]);
    assert_eq!(expand("{1..3}{}"), ["1{}", "2{}", "3{}"]);
    assert!(braceexpand("a}").is_err());
    assert!(matches!(
        braceexpand("{0..99999999999}"),
        Err(ShardSpecError::TooMany(_))
    ));
    assert!(matches!(
        braceexpand("{0..999}{0..999}{0..9}"),
        Err(ShardSpecError::TooMany(_))
    ));
}

#[test]
fn expand_urls_splits_substitutes_and_expands() {
    let env = |name: &str| (name == "WDS_ROOT").then(|| "/data".to_owned());
    assert_eq!(
        expand_urls("${ROOT}/a-{0..1}.tar::/b.tar", env).expect("expand"),
        ["/data/a-0.tar", "/data/a-1.tar", "/b.tar"]
    );
    assert!(matches!(
        expand_urls("${NOPE}/a.tar", env),
        Err(ShardSpecError::MissingVariable { .. })
    ));
    assert_eq!(expand_urls("$x{1,2}", env).expect("plain $"), ["$x1", "$x2"]);
}

#[test]
fn specs_name_their_set_and_refuse_remote_urls() {
    let set = from_spec("/d/train-{000000..000002}.tar").expect("spec");
    assert_eq!(set.name, "train");
    assert_eq!(set.shards[2], PathBuf::from("/d/train-000002.tar"));
    assert_eq!(from_spec("/d/val.tar::/d/more.tar").expect("list").name, "val");
    assert_eq!(
        from_spec("file:/d/{a,b}.tar").expect("file:").shards[0],
        PathBuf::from("/d/a.tar")
    );
    assert!(matches!(
        from_spec("pipe:curl x.tar"),
        Err(ShardSpecError::NotLocal(_))
    ));
    assert!(matches!(
        from_spec("https://x/a.tar"),
        Err(ShardSpecError::NotLocal(_))
    ));
}

#[test]
fn numbered_shards_of_a_directory_form_one_set() {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in [
        "train-000010.tar",
        "train-000002.tar",
        "train-000000.tar",
        "val.tar",
        "test_0.tar",
        "test_1.tar",
        "notes.txt",
        "x.tar.gz",
    ] {
        std::fs::write(dir.path().join(name), b"").expect("write");
    }
    std::fs::create_dir(dir.path().join("sub.tar")).expect("dir");
    let sets = discover(dir.path()).expect("discover");
    assert_eq!(resolve(dir.path().to_str().unwrap()).expect("resolve"), sets);
    let one = resolve(&format!("{}/train-{{000000..000002}}.tar", dir.path().display())).expect("pattern");
    assert_eq!((one.len(), one[0].shards.len()), (1, 3));
    let summary: Vec<(String, Vec<String>)> = sets
        .iter()
        .map(|s| {
            let files = s
                .shards
                .iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned());
            (s.name.clone(), files.collect())
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("test".into(), vec!["test_0.tar".into(), "test_1.tar".into()]),
            (
                "train".into(),
                vec![
                    "train-000000.tar".into(),
                    "train-000002.tar".into(),
                    "train-000010.tar".into()
                ]
            ),
            ("val".into(), vec!["val.tar".into()]),
        ]
    );
}

#[test]
fn colliding_set_names_are_made_unique() {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["a-1.tar", "a_1.tar", "a.tar"] {
        std::fs::write(dir.path().join(name), b"").expect("write");
    }
    let names: Vec<String> = discover(dir.path())
        .expect("discover")
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names.len(), 3);
    assert!(names.contains(&"a".to_owned()) && names.iter().all(|n| n.starts_with('a')));
}
