//! Every input the fuzz targets ever failed on (`fuzz/regressions/<target>/`, see
//! `fuzz/README.md`), run through the same `zarrmount::fuzzing` function as the target,
//! without libFuzzer: each must return (an error is a fine answer), and in reasonable time.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

/// Far above what any regression input takes (milliseconds), far below a CI timeout.
const TIME_LIMIT: Duration = Duration::from_secs(60);

fn regressions() -> Vec<(String, std::path::PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut inputs = Vec::new();
    let Ok(dirs) = std::fs::read_dir(&root) else {
        return inputs;
    };
    for dir in dirs.flatten() {
        let target = dir.file_name().to_string_lossy().into_owned();
        if dir.path().is_dir() {
            for file in std::fs::read_dir(dir.path()).unwrap().flatten() {
                inputs.push((target.clone(), file.path()));
            }
        }
    }
    inputs.sort();
    inputs
}

#[test]
fn every_regression_input_returns() {
    for (target, path) in regressions() {
        let run = zarrmount::fuzzing::target(&target)
            .unwrap_or_else(|| panic!("fuzz/regressions/{target}: no such fuzz target"));
        let data = std::fs::read(&path).unwrap();
        let (done, finished) = mpsc::channel();
        let name = path.display().to_string();
        let worker = std::thread::spawn(move || {
            run(&data);
            let _ = done.send(());
        });
        match finished.recv_timeout(TIME_LIMIT) {
            Ok(()) => worker.join().unwrap(),
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{target} panicked on {name}"),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("{target} still running after {TIME_LIMIT:?} on {name}")
            }
        }
    }
}

/// The targets also take what a fuzzer starts from: nothing, and a few odd bytes.
#[test]
fn every_target_takes_trivial_inputs() {
    for (name, run) in zarrmount::fuzzing::TARGETS {
        for input in [&b""[..], b"\0", b"\n\n\n", &[0xFF; 600]] {
            run(input);
        }
        assert!(zarrmount::fuzzing::target(name).is_some());
    }
}

/// Each target has its binary in fuzz/Cargo.toml and the other way round.
#[test]
fn fuzz_manifest_lists_every_target() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/Cargo.toml")).unwrap();
    let bins: Vec<&str> = manifest
        .lines()
        .filter_map(|l| l.strip_prefix("name = \"")?.strip_suffix('"'))
        .filter(|n| *n != "zarrmount-fuzz")
        .collect();
    let targets: Vec<&str> = zarrmount::fuzzing::TARGETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(bins, targets);
}

/// The seeds `make fuzz-seeds` cuts from the fixtures give every target a start, and every
/// target takes every one of its seeds.
#[test]
fn fixtures_seed_every_target() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let corpus = zarrmount::fuzzing::seeds::collect(&fixtures).unwrap();
    for (name, run) in zarrmount::fuzzing::TARGETS {
        let seeds = &corpus[name];
        assert!(!seeds.is_empty(), "no seed for {name}");
        for seed in seeds.values() {
            run(seed);
        }
    }
}
