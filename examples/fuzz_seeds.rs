//! Fills the fuzz targets' starting corpora from the fixtures (`make fuzz-seeds`):
//! `cargo run --example fuzz_seeds -- [FIXTURES [CORPUS]]`, by default `fixtures` and
//! `fuzz/corpus`. What each target gets is described in `zarrmount::fuzzing::seeds`.

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let fixtures = args.next().unwrap_or_else(|| "fixtures".into());
    let corpus = args.next().unwrap_or_else(|| "fuzz/corpus".into());
    let seeds = zarrmount::fuzzing::seeds::collect(&fixtures)?;
    for (target, count) in zarrmount::fuzzing::seeds::write(&seeds, &corpus)? {
        println!("{target}: {count} seeds in {}", corpus.join(target).display());
    }
    Ok(())
}
