//! The io_uring engine against the pread engine at a fixed queue depth, through the library.
//!
//! ```sh
//! cargo bench --bench engine_depth -- --file BIG_FILE [--engine uring,uring_direct,pread]
//!     [--depth 1,8,32]
//!     [--block 1M,256K] [--order random|sequential] [--reads 1024] [--seconds S] [--seed N]
//!     [--rings 1] [--drop-caches]
//! ```
//!
//! For every (block size, engine, depth) it reads `--reads` distinct block-aligned blocks of
//! `--file`, in random order or (`--order sequential`) consecutive from a random start, as the
//! prefetcher submits a scan, keeping exactly `depth` reads outstanding through
//! [`IoEngine::submit`]: `uring_direct` is `UringEngine::with_odirect(--rings, 1 by default)`,
//! as the daemon reads by default (blocks the page cache does not hold with O_DIRECT), `uring`
//! the same engine reading everything through the page cache (`-o odirect=off`), pread is
//! `PreadEngine::new(depth threads)` (its queue depth is its thread count). The clock runs
//! from the first submission to the last completion; each read's latency is from its
//! submission to the moment the main thread has its buffers. Buffers go back to the engine's
//! pool, which starts with `depth` buffers already touched, so no read pays for page faults.
//!
//! Every combination reads other blocks than the previous ones (while the file has enough), so
//! a run does not read what an earlier one left in the page cache; `--drop-caches` (root)
//! also drops the page cache before each combination, after the engine is up. A few reads of
//! each combination are compared with `pread` of the same bytes after the clock stops. CPU
//! time is the whole process's (the engine's threads and the kernel's work for them).
//!
//! Output: one line per combination for people, and one `RESULT {json}` line each, which
//! `benches/engine_read.py` reads.

mod common;

use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::Parser;
use common::{cpu_seconds, shuffled};
use zarrmount::config::parse_size;
use zarrmount::io::{BufferPool, Extent, IoEngine, PreadEngine, SourceFile, UringEngine};

#[derive(Debug, Parser)]
#[command(about = "Random reads at a fixed queue depth: io_uring against pread")]
struct Args {
    /// The file to read (a few GiB, so random blocks are not in the page cache).
    #[arg(long)]
    file: PathBuf,
    /// Engines, comma-separated: uring, uring_direct, pread.
    #[arg(long, default_value = "uring,pread", value_delimiter = ',')]
    engine: Vec<String>,
    /// Queue depths, comma-separated.
    #[arg(long, default_value = "1,8,32", value_delimiter = ',')]
    depth: Vec<usize>,
    /// Read sizes, comma-separated (K, M suffixes).
    #[arg(long, default_value = "1M", value_delimiter = ',')]
    block: Vec<String>,
    /// Reads per combination.
    #[arg(long, default_value_t = 1024)]
    reads: usize,
    /// Stop submitting after this many seconds, whatever `--reads` says.
    #[arg(long)]
    seconds: Option<f64>,
    /// `random` (distinct blocks in random order) or `sequential` (consecutive blocks from a
    /// random start, as the prefetcher's read-ahead of a scan issues them).
    #[arg(long, default_value = "random")]
    order: String,
    /// io_uring rings (threads) of the io_uring engine.
    #[arg(long, default_value_t = 1)]
    rings: usize,
    /// Seed of the random order of blocks.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// `sync; echo 3 > /proc/sys/vm/drop_caches` before each combination (needs root).
    #[arg(long)]
    drop_caches: bool,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// Reads whose bytes are compared with `pread` after the clock stops.
const CHECKS: usize = 8;

struct Outcome {
    reads: usize,
    bytes: u64,
    wall: Duration,
    latencies: Vec<Duration>,
    checked: usize,
    /// CPU seconds of this process (every thread: the engine's and the kernel's work for
    /// it) from the first submission to the last completion.
    cpu: f64,
    /// Bytes the engine read with O_DIRECT.
    odirect: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let len = std::fs::metadata(&args.file)?.len();
    let file = SourceFile::new(&args.file);
    for (seed, block) in (args.seed..).zip(&args.block) {
        let block = parse_size("--block", block).map_err(|e| anyhow::anyhow!("{e}"))?;
        anyhow::ensure!(
            block > 0 && block <= len,
            "block {block} must fit in the file ({len} bytes)"
        );
        let blocks = len / block;
        let order = match args.order.as_str() {
            "random" => shuffled(blocks, seed),
            "sequential" => {
                let start = shuffled(blocks, seed)[0];
                (0..blocks).map(|i| (start + i) % blocks).collect()
            }
            other => anyhow::bail!("unknown order {other}: use random or sequential"),
        };
        let mut next = 0u64;
        for engine_name in &args.engine {
            for &depth in &args.depth {
                anyhow::ensure!(depth > 0, "a depth must be at least 1");
                // Blocks the previous combinations did not read, while there are enough.
                let offsets: Vec<u64> = (0..args.reads as u64)
                    .map(|i| order[((next + i) % blocks) as usize] * block)
                    .collect();
                if next + args.reads as u64 > blocks {
                    eprintln!("note: the file has {blocks} blocks of {block}; some are read twice");
                }
                next += args.reads as u64;
                let pool = BufferPool::new(2 * depth as u64 * block + block);
                for _ in 0..depth {
                    pool.give(vec![1u8; block as usize]); // touched: no page faults on the clock
                }
                let engine: Box<dyn IoEngine> = match engine_name.as_str() {
                    "uring" | "io_uring" => Box::new(UringEngine::new(args.rings, pool)?),
                    "uring_direct" => Box::new(UringEngine::with_odirect(args.rings, pool, true)?),
                    "pread" => Box::new(PreadEngine::new(depth, pool)?),
                    other => anyhow::bail!("unknown engine {other}: use uring, uring_direct or pread"),
                };
                if args.drop_caches {
                    drop_caches()?;
                }
                let deadline = args.seconds.map(Duration::from_secs_f64);
                let out = run(engine.as_ref(), &file, &offsets, block, depth, deadline)?;
                report(engine.name(), depth, block, &args.order, &out);
            }
        }
    }
    Ok(())
}

/// Reads `offsets` (each `block` long) keeping `depth` reads in flight.
fn run(
    engine: &dyn IoEngine,
    file: &Arc<SourceFile>,
    offsets: &[u64],
    block: u64,
    depth: usize,
    deadline: Option<Duration>,
) -> anyhow::Result<Outcome> {
    type Done = (usize, Instant, io::Result<Vec<Vec<u8>>>);
    let (tx, rx) = mpsc::channel::<Done>();
    let submit = |i: usize| {
        let tx = tx.clone();
        let extent = Extent {
            file: file.clone(),
            offset: offsets[i],
            len: block,
        };
        let sent = Instant::now();
        engine.submit(
            vec![extent],
            Box::new(move |result| {
                let _ = tx.send((i, sent, result));
            }),
        );
    };
    let odirect = || {
        engine
            .metrics()
            .odirect_bytes
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let (cpu0, odirect0) = (cpu_seconds(), odirect());
    let start = Instant::now();
    let (mut next, mut outstanding) = (0, 0);
    while next < offsets.len() && outstanding < depth {
        submit(next);
        next += 1;
        outstanding += 1;
    }
    let mut latencies = Vec::with_capacity(offsets.len());
    let mut kept = Vec::new();
    let mut bytes = 0;
    while outstanding > 0 {
        let (i, sent, result) = rx.recv()?;
        latencies.push(sent.elapsed());
        outstanding -= 1;
        let mut buffers = result.map_err(|e| anyhow::anyhow!("read {i} at {}: {e}", offsets[i]))?;
        let buffer = buffers.pop().unwrap_or_default();
        anyhow::ensure!(buffer.len() as u64 == block, "read {i}: {} bytes", buffer.len());
        bytes += block;
        if kept.len() < CHECKS {
            kept.push((offsets[i], buffer));
        } else {
            engine.pool().give(buffer);
        }
        let late = deadline.is_some_and(|d| start.elapsed() >= d);
        if next < offsets.len() && !late {
            submit(next);
            next += 1;
            outstanding += 1;
        }
    }
    let wall = start.elapsed();
    let (cpu, odirect) = (cpu_seconds() - cpu0, odirect() - odirect0);
    let handle = file.handle()?;
    let mut want = vec![0u8; block as usize];
    for (offset, got) in &kept {
        handle.read_exact_at(&mut want, *offset)?;
        anyhow::ensure!(got == &want, "the bytes read at {offset} differ from pread's");
    }
    Ok(Outcome {
        reads: latencies.len(),
        bytes,
        wall,
        latencies,
        checked: kept.len(),
        cpu,
        odirect,
    })
}

fn cpu_per_gb(out: &Outcome) -> f64 {
    out.cpu / (out.bytes.max(1) as f64 / 1e9)
}

fn report(engine: &str, depth: usize, block: u64, order: &str, out: &Outcome) {
    let mut lat = out.latencies.clone();
    lat.sort();
    let pct = |p: f64| {
        let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len().max(1)) - 1;
        lat.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    let seconds = out.wall.as_secs_f64();
    let mb_s = out.bytes as f64 / seconds / 1e6;
    println!(
        "{engine:>8} depth {depth:>3} block {:>5} KiB {order}: {} reads in {seconds:.3} s, {mb_s:.0} MB/s, \
         {:.0} reads/s, p50 {:.2} ms, p99 {:.2} ms, CPU {:.2} s per GB, {:.0} % O_DIRECT",
        block >> 10,
        out.reads,
        out.reads as f64 / seconds,
        pct(0.50),
        pct(0.99),
        cpu_per_gb(out),
        out.odirect as f64 * 100.0 / out.bytes.max(1) as f64,
    );
    let result = serde_json::json!({
        "engine": engine,
        "depth": depth,
        "block": block,
        "order": order,
        "reads": out.reads,
        "bytes": out.bytes,
        "seconds": seconds,
        "mb_s": mb_s,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "checked": out.checked,
        "cpu_s_per_gb": cpu_per_gb(out),
        "odirect_bytes": out.odirect,
    });
    println!("RESULT {result}");
}

fn drop_caches() -> io::Result<()> {
    // SAFETY: sync has no preconditions.
    unsafe { libc::sync() };
    std::fs::write("/proc/sys/vm/drop_caches", "3\n")
}
