//! zarrmount's FST reader without FUSE: opening a file (directory, grouping into variables,
//! grid coordinates) and decoding every record, timed through the library.
//!
//! ```sh
//! cargo bench --bench fst_open -- --file glbdiag.fst [--runs 20]
//! ```
//!
//! Prints, for people, one line per measurement and a `RESULT {json}` line each, which
//! `benches/fst_read.py` reads: `list` (median seconds to read the directory and every
//! record's metadata, as `fstinl` + `fstprm` do), `open` (median seconds of `Fst::open`:
//! that plus grouping and coordinates; the file in the page cache) and `decode` (seconds to
//! plan and decode every chunk of every array on this thread, and the values decoded).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use zarrmount::io::{BufferPool, PreadEngine};
use zarrmount::source::Source;
use zarrmount::source::fst::{self, Fst};
use zarrmount::tree::{ChunkIndex, Node};

#[derive(Debug, Parser)]
struct Args {
    /// The FST file.
    #[arg(long)]
    file: PathBuf,
    /// Times to open it; the median is reported.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// cargo bench passes --bench.
    #[arg(long, hide = true)]
    bench: bool,
}

/// The median of `runs` timings of `f`, and its last result.
fn median<T>(
    runs: usize,
    mut f: impl FnMut() -> Result<T, Box<dyn std::error::Error>>,
) -> Result<(f64, T), Box<dyn std::error::Error>> {
    let mut times = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        last = Some(f()?);
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], last.ok_or("no run")?))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let (list, records) = median(args.runs, || Ok(fst::list(&args.file)?))?;
    println!(
        "list: {:.3} ms for {} records (median of {})",
        list * 1e3,
        records.len(),
        args.runs
    );
    println!(
        "RESULT {{\"case\": \"list\", \"seconds\": {list}, \"records\": {}}}",
        records.len()
    );
    let mut times = Vec::with_capacity(args.runs);
    let mut dataset = None;
    for _ in 0..args.runs.max(1) {
        let start = Instant::now();
        let opened = Fst.open(&args.file)?;
        times.push(start.elapsed().as_secs_f64());
        dataset = Some(opened);
    }
    times.sort_by(f64::total_cmp);
    let open = times[times.len() / 2];
    println!("open: {:.3} ms (median of {})", open * 1e3, times.len());
    println!("RESULT {{\"case\": \"open\", \"seconds\": {open}}}");

    let dataset = dataset.ok_or("no run")?;
    let io = PreadEngine::new(1, BufferPool::new(0))?;
    let (mut values, mut chunks) = (0u64, 0u64);
    // Seconds and values per (datyp, nbits), to see which decoder the time goes to.
    let mut per_packing: BTreeMap<String, (f64, u64)> = BTreeMap::new();
    let start = Instant::now();
    for (_, node) in dataset.root.descendants() {
        let Node::Array(spec) = node else { continue };
        let ChunkIndex::Listed(listed) = &spec.chunks else {
            continue; // coordinates and table columns: computed at open
        };
        let packing = format!(
            "datyp {} nbits {}",
            spec.attributes["datyp"], spec.attributes["nbits"]
        );
        for coords in listed.iter() {
            let t = Instant::now();
            let plan = dataset.planner.plan(spec.id, coords)?;
            plan.execute(&io, spec.chunk_bytes())?;
            let n = spec.chunk_shape.iter().product::<u64>();
            let entry = per_packing.entry(packing.clone()).or_default();
            entry.0 += t.elapsed().as_secs_f64();
            entry.1 += n;
            values += n;
            chunks += 1;
        }
    }
    let decode = start.elapsed().as_secs_f64();
    for (packing, (seconds, n)) in &per_packing {
        println!(
            "  {packing}: {:.3} s, {:.2} ns per value",
            seconds,
            seconds * 1e9 / *n as f64
        );
    }
    println!(
        "decode: {chunks} records, {values} values in {:.3} s ({:.2} ns per value)",
        decode,
        decode * 1e9 / values.max(1) as f64
    );
    println!(
        "RESULT {{\"case\": \"decode\", \"seconds\": {decode}, \"values\": {values}, \"records\": {chunks}}}"
    );
    Ok(())
}
