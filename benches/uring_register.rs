//! Whether registering files and buffers with io_uring helps at the engine's read sizes.
//!
//! ```sh
//! cargo bench --bench uring_register -- --file BIG_FILE [--block 4K,64K,1M] [--depth 32]
//!     [--span 1G] [--reads 4096] [--repeats 3]
//! ```
//!
//! The engine (`src/io/uring.rs`) reads with plain file descriptors into buffers it does not
//! register. A registered file spares the kernel looking the descriptor up and counting a
//! reference on every read; a registered buffer spares pinning its pages on every read
//! (what `O_DIRECT` does) or faulting them in (a buffered copy). This measures both on one
//! ring, without the engine around it, so nothing else hides the difference: random
//! block-aligned reads of the first `--span` bytes of `--file`, `--depth` in flight, in four
//! modes (plain, registered file, registered buffers, both), interleaved repeat by repeat.
//! Two kinds of read: buffered from a warm page cache (the span is read once first), where
//! the per-read overhead is all there is besides the copy; and `O_DIRECT`, where pinning is.
//! CPU time is the whole process's, as in `engine_depth`. A few reads per mode are compared
//! with `pread` of the same bytes. Output: a table of medians, and ratios to plain.

mod common;

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use common::{cpu_seconds, shuffled};
use io_uring::{IoUring, opcode, types};
use zarrmount::config::parse_size;

#[derive(Debug, Parser)]
#[command(about = "io_uring reads with and without registered files and buffers")]
struct Args {
    /// The file to read.
    #[arg(long)]
    file: PathBuf,
    /// Read sizes, comma-separated (K, M suffixes).
    #[arg(long, default_value = "4K,64K,1M", value_delimiter = ',')]
    block: Vec<String>,
    /// Reads in flight.
    #[arg(long, default_value_t = 32)]
    depth: usize,
    /// Bytes of the file read from (and made warm for the buffered reads).
    #[arg(long, default_value = "1G")]
    span: String,
    /// Bytes read per block size, mode and kind, at most (fewer reads for small blocks keep
    /// the run short).
    #[arg(long, default_value = "1G")]
    volume: String,
    /// Reads per block size, mode and kind, at most.
    #[arg(long, default_value_t = 16384)]
    reads: usize,
    /// Repeats; medians are reported.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

const MODES: [(&str, bool, bool); 4] = [
    ("plain", false, false),
    ("registered file", true, false),
    ("registered buffers", false, true),
    ("both", true, true),
];
const ALIGN: usize = 4096;
const CHECKS: usize = 4;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let size = |flag: &str, s: &str| parse_size(flag, s).map_err(|e| anyhow::anyhow!("{e}"));
    let len = std::fs::metadata(&args.file)?.len();
    let span = size("--span", &args.span)?.min(len);
    let volume = size("--volume", &args.volume)?;
    let buffered = File::open(&args.file)?;
    let direct = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(&args.file)?;
    warm(&buffered, span)?;
    println!(
        "io_uring, depth {}, random reads within the first {} MiB of {}; medians of {} repeats",
        args.depth,
        span >> 20,
        args.file.display(),
        args.repeats
    );
    println!(
        "| read | block | mode | MB/s | CPU s per GB | MB/s / plain | CPU / plain |\n|---|---:|---|---:|---:|---:|---:|"
    );
    for (seed, block) in (1..).zip(&args.block) {
        let block = size("--block", block)?;
        anyhow::ensure!(
            block > 0 && block <= span && (block as usize).is_multiple_of(ALIGN),
            "block {block} must be a multiple of {ALIGN} within the span"
        );
        let blocks = span / block;
        let reads = (args.reads as u64).min(volume / block).min(blocks).max(1) as usize;
        for (kind, file) in [("buffered, warm", &buffered), ("O_DIRECT", &direct)] {
            let mut samples: Vec<Vec<(f64, f64)>> = vec![Vec::new(); MODES.len()];
            for repeat in 0..args.repeats {
                let offsets: Vec<u64> = shuffled(blocks, seed * 1000 + repeat as u64)
                    .into_iter()
                    .take(reads)
                    .map(|b| b * block)
                    .collect();
                for (m, &(_, fixed_file, fixed_buffers)) in MODES.iter().enumerate() {
                    let out = run(
                        file,
                        &buffered,
                        &offsets,
                        block as usize,
                        args.depth,
                        (fixed_file, fixed_buffers),
                    )?;
                    samples[m].push(out);
                }
            }
            let medians: Vec<(f64, f64)> = samples
                .iter()
                .map(|s| (median(s.iter().map(|x| x.0)), median(s.iter().map(|x| x.1))))
                .collect();
            let (plain_mb, plain_cpu) = medians[0];
            for ((name, ..), (mb, cpu)) in MODES.iter().zip(&medians) {
                println!(
                    "| {kind} | {} KiB | {name} | {mb:.0} | {cpu:.3} | {:.2}× | {:.2}× |",
                    block >> 10,
                    mb / plain_mb,
                    cpu / plain_cpu
                );
            }
        }
    }
    Ok(())
}

/// Reads `offsets` with `depth` in flight; MB/s and CPU seconds per GB.
fn run(
    file: &File,
    check_with: &File,
    offsets: &[u64],
    block: usize,
    depth: usize,
    (fixed_file, fixed_buffers): (bool, bool),
) -> anyhow::Result<(f64, f64)> {
    let depth = depth.min(offsets.len()).max(1);
    let mut ring = IoUring::new(depth.next_power_of_two() as u32)?;
    let mut buffers: Vec<Aligned> = (0..depth).map(|_| Aligned::new(block)).collect();
    if fixed_file {
        ring.submitter().register_files(&[file.as_raw_fd()])?;
    }
    if fixed_buffers {
        let iovecs: Vec<libc::iovec> = buffers
            .iter_mut()
            .map(|b| libc::iovec {
                iov_base: b.ptr().cast(),
                iov_len: block,
            })
            .collect();
        // SAFETY: the buffers outlive the ring (dropped after it, below).
        unsafe { ring.submitter().register_buffers(&iovecs)? };
    }
    let mut kept = Vec::new();
    let (cpu0, start) = (cpu_seconds(), Instant::now());
    let (mut next, mut outstanding) = (0, 0);
    let mut free: Vec<usize> = (0..depth).collect();
    while outstanding > 0 || next < offsets.len() {
        while next < offsets.len()
            && let Some(slot) = free.pop()
        {
            let (ptr, len, offset) = (buffers[slot].ptr(), block as u32, offsets[next]);
            let fd = types::Fd(file.as_raw_fd());
            let (index, fixed) = (slot as u16, types::Fixed(0));
            let entry = match (fixed_file, fixed_buffers) {
                (false, false) => opcode::Read::new(fd, ptr, len).offset(offset).build(),
                (true, false) => opcode::Read::new(fixed, ptr, len).offset(offset).build(),
                (false, true) => opcode::ReadFixed::new(fd, ptr, len, index).offset(offset).build(),
                (true, true) => opcode::ReadFixed::new(fixed, ptr, len, index)
                    .offset(offset)
                    .build(),
            };
            let entry = entry.user_data(((next as u64) << 16) | slot as u64);
            // SAFETY: the buffer stays put and unused until this read completes.
            unsafe { ring.submission().push(&entry) }.map_err(|_| anyhow::anyhow!("full queue"))?;
            next += 1;
            outstanding += 1;
        }
        ring.submit_and_wait(1)?;
        let done: Vec<(u64, i32)> = ring.completion().map(|c| (c.user_data(), c.result())).collect();
        for (data, result) in done {
            let (read, slot) = ((data >> 16) as usize, (data & 0xffff) as usize);
            anyhow::ensure!(
                result == block as i32,
                "read at {}: result {result}",
                offsets[read]
            );
            if kept.len() < CHECKS {
                kept.push((offsets[read], buffers[slot].bytes().to_vec()));
            }
            free.push(slot);
            outstanding -= 1;
        }
    }
    let (wall, cpu) = (start.elapsed().as_secs_f64(), cpu_seconds() - cpu0);
    drop(ring);
    let mut want = vec![0u8; block];
    for (offset, got) in kept {
        check_with.read_exact_at(&mut want, offset)?;
        anyhow::ensure!(got == want, "the bytes read at {offset} differ from pread's");
    }
    let gb = (offsets.len() * block) as f64 / 1e9;
    Ok((gb * 1e3 / wall, cpu / gb))
}

/// A block-sized buffer at an address aligned for `O_DIRECT`, touched so no read faults it.
struct Aligned {
    bytes: Vec<u8>,
    start: usize,
    len: usize,
}

impl Aligned {
    fn new(len: usize) -> Self {
        let bytes = vec![1u8; len + ALIGN];
        let start = bytes.as_ptr().align_offset(ALIGN);
        Aligned { bytes, start, len }
    }
    fn ptr(&mut self) -> *mut u8 {
        self.bytes[self.start..].as_mut_ptr()
    }
    fn bytes(&self) -> &[u8] {
        &self.bytes[self.start..self.start + self.len]
    }
}

/// Reads the first `span` bytes once, so buffered reads find them cached.
fn warm(file: &File, span: u64) -> io::Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0;
    while at < span {
        let n = file.read_at(&mut buf, at)?;
        if n == 0 {
            break;
        }
        at += n as u64;
    }
    Ok(())
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}
