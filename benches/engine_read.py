#!/usr/bin/env python3
"""I/O engine benchmark: zarrmount's read path against fio, `cat`, tmpfs and native copies.

    .venv/bin/python benches/engine_read.py [--runs 3] [--raw-gib 4] [--size-gib 1]
        [--cache-size 1G] [--workdir DIR] [--cases GROUP,...]

Data (generated once in --workdir and reused; `--clean` deletes what a run generated):
  - a file of `--raw-gib` GiB of random bytes, mounted as raw://FILE (1 MiB chunks, each one
    byte range of the file);
  - the plotfile of benches/plotfile_read.py (`ensure_plotfile`, 2 MiB box-sized chunks), and
    two more from its generator with 32^3 boxes (256 KiB chunks) and 80^3 boxes (3.9 MiB).

Groups of cases (every case `--runs` times, the cases interleaved round by round):
  seq   every chunk file read in order through the mount, 1 reader and 4 (the chunk files in
        4 contiguous parts, read in parallel), cold, warm and re-read (third pass of one
        mount); against `cat` of the source (cold ceiling), the same bytes read from a copy
        in /dev/shm and from the chunks as files of their own there (warm ceilings) and
        `fio --direct=1 --iodepth=32` of the raw file (the goal: mount cold >= 0.9x fio);
        also 1 reader cold with io=pread, prefetch=off and odirect=off (what each brings)
  rnd   random chunk files, cold: chunks/s, p50 and p99 latency, 1 and 4 readers, chunks of
        256 KiB, 1 MiB, 2 MiB, 3.9 MiB; against pread of the same byte ranges of the source
  zarr  zarr-python reads every box of every field of the plotfile through the mount and
        from a native copy (`cp -r` from the mount), cold and warm, and a re-read through
        the mount (plotfile_read's worker)
  eng   benches/engine_depth.rs: io_uring against pread at queue depth 1, 8, 32, cold, 1 MiB
        and 256 KiB random reads (and 1 MiB sequential, as the prefetcher reads a scan);
        io_uring as the daemon reads by default (cold blocks with O_DIRECT) and through the
        page cache (odirect=off), and each one's CPU time per GB
Each mount is fresh, with `-o cache_size=` --cache-size; the daemon's VmHWM is sampled at
the end of each and compared with cache_size + 64 MiB. Cold = `sync; echo 3 >
/proc/sys/vm/drop_caches` just before the clock; warm = the source files read just before.
Every read is checked: byte counts, and sampled chunks bit-equal to the source bytes.

Writes benches/results/engine_read.md. Needs root (drop_caches, FUSE mounts), fio (installed
with apt-get if missing) and a release build of zarrmount; the engine bench is built with
`cargo bench --no-run` unless --engine-bench names the binary.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import mmap
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import plotfile_read as pr  # the plotfile generator and the mount helpers

REPO = pr.REPO
DEFAULT_WORKDIR = pr.DEFAULT_WORKDIR
DEFAULT_RESULTS = REPO / "benches" / "results" / "engine_read.md"
GIB, MIB = pr.GIB, pr.MIB
MB = 1e6  # throughput is in MB/s (10^6 bytes), as fio reports it
RAW_CHUNK = MIB  # raw:// chunks
CASES_ALL = "seq,rnd,zarr,eng"
RAW_SEED = 20261121
RAW_VERSION = 1
WORKER_TIMEOUT = 900  # seconds for one measured case
SEQ_BLOCK = MIB  # sequential readers read 1 MiB at a time, as `cat` does here (st_blksize)
READERS = (1, 4)
ENGINE_DEPTHS = (1, 8, 32)
# io_uring through the page cache (`-o odirect=off`), io_uring as the daemon reads by default
# (cold blocks with O_DIRECT), and the pread engine.
ENGINES = ("uring", "uring_direct", "pread")
# Engine cases: (key, read size, order, label). Sequential is the order the prefetcher's
# read-ahead of a scan submits (a diagnostic; the comparison is on random reads).
ENGINE_MODES = [
    ("1m", MIB, "random", "1 MiB random"),
    ("256k", 256 << 10, "random", "256 KiB random"),
    ("seq1m", MIB, "sequential", "1 MiB sequential"),
]
RSS_SLACK = 64 * MIB  # the daemon may hold cache_size plus this

# Random-read chunk sizes: (key, label, dataset key).
RANDOM_SIZES = [
    ("256k", "256 KiB (32³ f64)", "plt32"),
    ("1m", "1 MiB (raw)", "raw"),
    ("2m", "2 MiB (64³ f64)", "plt"),
    ("4m", "3.9 MiB (80³ f64)", "plt80"),
]
RANDOM_DATASET = {k: d for k, _, d in RANDOM_SIZES}


def rtext(n: int) -> str:
    return f"{n} reader" + ("s" if n != 1 else "")


def case_list() -> list[tuple[str, str, str]]:
    """Every case as (key, group, label), in the order of a round."""
    cases = []
    for d, name in (("raw", "raw file"), ("plt", "plotfile")):
        g = f"seq-{d}"
        cases.append((f"{g}-cat-cold", "seq", f"{name}: `cat` of the source, cold (ceiling)"))
        if d == "raw":
            cases.append(("seq-raw-fio", "seq", "raw file: fio direct, io_uring, depth 32"))
        for n in READERS:
            cases.append((f"{g}-mount{n}-cold", "seq", f"{name}: mount, {rtext(n)}, cold"))
        # Diagnostics: what the engine and the prefetcher each bring to a cold scan.
        cases.append((f"{g}-mount1-cold-pread", "seq", f"{name}: mount io=pread, 1 reader, cold"))
        cases.append(
            (f"{g}-mount1-cold-nopf", "seq", f"{name}: mount prefetch=off, 1 reader, cold")
        )
        cases.append(
            (f"{g}-mount1-cold-buffered", "seq", f"{name}: mount odirect=off, 1 reader, cold")
        )
        for n in READERS:
            cases.append((f"{g}-tmpfs{n}", "seq", f"{name}: /dev/shm copy, {rtext(n)} (ceiling)"))
        for n in READERS:
            label = f"{name}: the chunk files as files in /dev/shm, {rtext(n)} (ceiling)"
            cases.append((f"{g}-tmpfsfiles{n}", "seq", label))
        for n in READERS:
            cases.append((f"{g}-mount{n}-warm", "seq", f"{name}: mount, {rtext(n)}, warm"))
        for n in READERS:
            label = f"{name}: mount, {rtext(n)}, re-read (third pass)"
            cases.append((f"{g}-mount{n}-reread", "seq", label))
    for s, label, _ in RANDOM_SIZES:
        for n in READERS:
            cases.append((f"rnd-{s}-src{n}", "rnd", f"{label}: source pread, {rtext(n)}"))
            cases.append((f"rnd-{s}-mount{n}", "rnd", f"{label}: mount, {rtext(n)}"))
    for cache in ("cold", "warm"):
        cases.append((f"zarr-mount-{cache}", "zarr", f"zarr per box through the mount, {cache}"))
        cases.append((f"zarr-copy-{cache}", "zarr", f"zarr per box on a native copy, {cache}"))
    label = "zarr per box through the mount, re-read (third pass)"
    cases.append(("zarr-mount-reread", "zarr", label))
    label = "zarr per box through a mount with odirect=off, cold"
    cases.append(("zarr-mountbuf-cold", "zarr", label))
    for cache in ("cold", "warm"):
        label = f"zarr per box through a mount with max_read=1M, {cache}"
        cases.append((f"zarr-mount1m-{cache}", "zarr", label))
    for b, _, _, label in ENGINE_MODES:
        for d in ENGINE_DEPTHS:
            for e in ENGINES:
                cases.append((f"eng-{b}-{e}-{d}", "eng", f"{e}, {label}, depth {d}"))
    return cases


# --- data ----------------------------------------------------------------------------------


def ensure_raw(workdir: Path, size: int, log) -> tuple[Path, bool]:
    """`size` bytes of seeded random data in the work dir, written once and reused.
    Returns (path, generated_now)."""
    path = workdir / f"raw_{size / GIB:g}gib.bin"
    manifest = path.with_name(path.name + ".json")
    want = {"version": RAW_VERSION, "size": size, "seed": RAW_SEED}
    with contextlib.suppress(OSError, ValueError):
        if json.loads(manifest.read_text()) == want and path.stat().st_size == size:
            log(f"reusing {path} ({size / GIB:g} GiB of random bytes)")
            return path, False
    import numpy as np

    log(f"generating {path}: {size / GIB:g} GiB of random bytes ...")
    t = time.perf_counter()
    manifest.unlink(missing_ok=True)
    rng = np.random.default_rng(RAW_SEED)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        left = size
        while left:
            n = min(left, 64 * MIB)
            f.write(rng.bytes(n))
            left -= n
        f.flush()
        os.fsync(f.fileno())
    tmp.rename(path)
    manifest.write_text(json.dumps(want))
    log(f"  written in {time.perf_counter() - t:.1f} s")
    return path, True


def raw_dataset(path: Path) -> dict:
    size = path.stat().st_size
    n = size // RAW_CHUNK
    return {
        "key": "raw",
        "source": f"raw://{path}",
        "chunk_bytes": RAW_CHUNK,
        "chunks": [(f"bytes/c/{i}", str(path), i * RAW_CHUNK, RAW_CHUNK) for i in range(n)],
        "files": [path],
        "desc": f"{size / GIB:g} GiB of random bytes, {n} chunks of 1 MiB (`raw://`)",
    }


def plotfile_dataset(key: str, path: Path, layout: dict) -> dict:
    """Chunk files of every field of every level, in array order and C order of chunk keys,
    with the byte range of the Cell_D file each one is (chunks are box-sized)."""
    box = layout["params"]["box"]
    npts = box**3
    chunks = []
    for lv in layout["levels"]:
        boxes = sorted(lv["boxes"], key=lambda b: (b["lo"][2], b["lo"][1], b["lo"][0]))
        for c, name in enumerate(layout["fields"]):
            for bx in boxes:
                z, y, x = (bx["lo"][d] // box for d in (2, 1, 0))
                src = path / f"Level_{lv['level']}" / bx["file"]
                off = bx["offset"] + bx["header_len"] + c * npts * 8
                chunks.append(
                    (f"level_{lv['level']}/{name}/c/{z}/{y}/{x}", str(src), off, npts * 8)
                )
    files = pr.data_files(path, layout)
    nb = [len(lv["boxes"]) for lv in layout["levels"]]
    return {
        "key": key,
        "source": str(path),
        "chunk_bytes": npts * 8,
        "chunks": chunks,
        "files": files,
        "layout": layout,
        "path": path,
        "desc": (
            f"plotfile `{path.name}`: {len(layout['fields'])} fields, boxes of {box}³ "
            f"({nb[0]} + {nb[1]} per field), {len(chunks)} chunks of {npts * 8 / MIB:g} MiB, "
            f"{sum(p.stat().st_size for p in files) / GIB:.3f} GiB of Cell_D"
        ),
    }


def small_box_layout(box: int, n0: int, n_l1: int, min_chunks: int) -> dict:
    """A plotfile layout with `box`-sized boxes and at least `min_chunks` chunks in all."""
    per_field = (n0 // box) ** 3 + n_l1
    nfields = max(1, math.ceil(min_chunks / per_field))
    return pr.plan_layout(n0, box, n_l1, nfields, pr.NFILES, pr.NRANKS)


def random_reads(args, chunk_bytes: int, available: int) -> int:
    """Chunks read per random case: --random-mib of them, at least --random-min, at most all."""
    return min(available, max(args.random_min, args.random_mib * MIB // chunk_bytes))


# --- helpers -------------------------------------------------------------------------------


def parse_size(text: str) -> int:
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    shift = {"K": 10, "M": 20, "G": 30, "T": 40}.get(t[-1:], 0)
    return int(t[:-1] if shift else t) << shift


def percentile(values, p: float) -> float:
    """Nearest-rank percentile of `values` (p in 0..100)."""
    v = sorted(values)
    if not v:
        return float("nan")
    return v[max(0, min(len(v) - 1, math.ceil(p / 100 * len(v)) - 1))]


def ensure_fio(log) -> bool:
    if shutil.which("fio"):
        return True
    log("installing fio (apt-get) ...")
    for cmd in (["apt-get", "install", "-y", "-q", "fio"], ["apt-get", "update", "-q"]):
        subprocess.run(cmd, capture_output=True, timeout=600, check=False)
        if shutil.which("fio"):
            return True
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "fio"], capture_output=True, timeout=600, check=False
    )
    return shutil.which("fio") is not None


def daemon_stats(binary: Path, mnt: Path) -> dict:
    with contextlib.suppress(subprocess.TimeoutExpired, ValueError):
        r = subprocess.run(
            [str(binary), "stats", "--json", str(mnt)],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if r.returncode == 0:
            return json.loads(r.stdout)
    return {}


def run_subprocess_worker(spec: dict, base: Path, mnt: Path | None) -> dict:
    """Runs one measured case in a fresh interpreter (this script, --worker-spec)."""
    spec_path = base / "spec.json"
    spec_path.write_text(json.dumps(spec))
    watch = pr.Watchdog(mnt, WORKER_TIMEOUT - 30) if mnt else contextlib.nullcontext()
    with watch:
        return pr.spawn_worker(Path(__file__), spec_path, WORKER_TIMEOUT)


# --- the worker: readers in a fresh interpreter --------------------------------------------


def worker_read(spec: dict) -> dict:
    """Reads pieces with one thread per reader; times from the start barrier to the last byte.

    mode "files": each piece is a file, opened, read `block` bytes at a time until a read
    returns 0 (as `cat` and zarr do), closed. mode "ranges": each piece is a byte range of a
    file (opened once per reader), read with pread `block` bytes at a time."""
    readers = spec["readers"]
    keep = {(r, i) for r, i, *_ in spec["check"]}
    if spec["cache"] == "cold":
        pr.drop_caches()
    elif spec["cache"] in ("warm", "reread"):
        for _ in range(2):  # the second pass proves it all fits
            subprocess.run(["cat", *spec["warm_files"]], stdout=subprocess.DEVNULL, check=True)
    if spec["cache"] == "reread":
        # Two untimed passes through the mount: the second stores the chunk files' pages in
        # the kernel's page cache, which serves the timed third.
        for _ in range(2):
            for pieces in readers:
                _read_pieces(pieces, spec["mode"], spec["block"], set(), threading.Barrier(1))
    out: list = [None] * len(readers)
    barrier = threading.Barrier(len(readers) + 1)

    def reader(r: int) -> None:
        try:
            out[r] = _read_pieces(
                readers[r], spec["mode"], spec["block"], {i for rr, i in keep if rr == r}, barrier
            )
        except BaseException as e:  # noqa: BLE001 - reported below
            out[r] = e
            barrier.abort()

    threads = [threading.Thread(target=reader, args=(r,), daemon=True) for r in range(len(readers))]
    for t in threads:
        t.start()
    cpu0 = sum(os.times()[:2])
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    cpu = sum(os.times()[:2]) - cpu0
    for o in out:
        if isinstance(o, BaseException):
            raise o
    nbytes = sum(o["bytes"] for o in out)
    want = sum(p[2] for rd in readers for p in rd)
    if nbytes != want:
        raise AssertionError(f"read {nbytes} bytes, expected {want}")
    for r, i, src, off, length in spec["check"]:
        got = out[r]["kept"][i]
        with open(src, "rb") as f:
            f.seek(off)
            if got != f.read(length):
                raise AssertionError(f"{readers[r][i][0]}: bytes differ from {src}@{off}")
    return {
        "seconds": seconds,
        "bytes": nbytes,
        "pieces": sum(len(rd) for rd in readers),
        "lat_ms": [x for o in out for x in o["lat_ms"]],
        "cpu_client": cpu,
        "checks": f"{len(spec['check'])} chunks bit-equal to the source, {nbytes} bytes",
    }


def _read_pieces(pieces, mode: str, block: int, keep: set, barrier) -> dict:
    size = block or max(p[2] for p in pieces)
    # Page-aligned, as `cat`'s buffer: an unaligned one makes the kernel split a 1 MiB direct
    # read into two FUSE requests (257 pages against FUSE's 256-page limit).
    view = memoryview(mmap.mmap(-1, size))
    fds: dict = {}
    lat, kept, nbytes = [], {}, 0
    try:
        if mode == "ranges":
            for path in dict.fromkeys(p[0] for p in pieces):
                fds[path] = os.open(path, os.O_RDONLY)
        barrier.wait()
        for i, (path, off, length) in enumerate(pieces):
            parts = [] if i in keep else None
            t = time.perf_counter()
            if mode == "files":
                fd = os.open(path, os.O_RDONLY)
                try:
                    got = 0
                    while n := os.readv(fd, [view]):
                        got += n
                        if parts is not None:
                            parts.append(bytes(view[:n]))
                finally:
                    os.close(fd)
                if got != length:
                    raise AssertionError(f"{path}: {got} bytes, expected {length}")
            else:
                fd, got = fds[path], 0
                while got < length:
                    n = os.preadv(fd, [view[: min(size, length - got)]], off + got)
                    if n <= 0:
                        raise AssertionError(f"{path}: short read at {off + got}")
                    if parts is not None:
                        parts.append(bytes(view[:n]))
                    got += n
            lat.append((time.perf_counter() - t) * 1e3)
            nbytes += got
            if parts is not None:
                kept[i] = b"".join(parts)
    finally:
        for fd in fds.values():
            os.close(fd)
    return {"bytes": nbytes, "lat_ms": lat, "kept": kept}


def worker(args) -> dict:
    spec = json.loads(Path(args.worker_spec).read_text())
    if spec["kind"] == "read":
        return worker_read(spec)
    if spec["kind"] == "zarr":
        plotfile = Path(spec["plotfile"])
        copy = Path(spec["zarr_copy"]) if spec.get("zarr_copy") else None
        return pr.worker_zarr(spec, plotfile, spec["layout"], spec["cache"], boxes=True, copy=copy)
    raise ValueError(spec["kind"])


# --- cases ---------------------------------------------------------------------------------


def check_sample(chunks_by_reader) -> list:
    """[reader, piece, source path, offset, length] of a few pieces per reader to verify."""
    out = []
    for r, chunks in enumerate(chunks_by_reader):
        n = len(chunks)
        for i in sorted({0, n // 3, 2 * n // 3, n - 1}):
            if 0 <= i < n:
                _, src, off, length = chunks[i]
                out.append([r, i, src, off, length])
    return out


def split(items: list, parts: int) -> list[list]:
    """`items` in `parts` contiguous runs of (nearly) equal length."""
    n = len(items)
    return [items[k * n // parts : (k + 1) * n // parts] for k in range(parts)]


def mount_case(ctx: dict, base: Path, ds: dict, options: list[str], spec: dict) -> dict:
    """Mounts `ds` fresh, runs the reader worker `spec` on it, then takes the daemon's
    counters, CPU time and VmHWM; always unmounts."""
    mnt = base / "mnt"
    mnt.mkdir()
    try:
        opts = [f"cache_size={ctx['cache_size_text']}", *options]
        pr.start_mount(ctx["binary"], ds["source"], mnt, base / "zarrmount.log", opts)
        for rd in spec["readers"]:
            for p in rd:
                p[0] = str(mnt / p[0])
        res = run_subprocess_worker(spec, base, mnt)
        pids = pr.daemon_pids(mnt)
        res["stats"] = daemon_stats(ctx["binary"], mnt)
        res["hwm"] = max((pr.vm_hwm(p) for p in pids), default=0)
        res["cpu_daemon"] = sum(pr._proc_cpu(p) for p in pids)
        return res
    finally:
        pr.unmount(mnt)


def run_case(case: str, ctx: dict, run: int) -> dict:
    base = Path(tempfile.mkdtemp(dir=ctx["session"], prefix=f"{case}-"))
    ok = False
    try:
        res = _run_case(case, ctx, run, base)
        ok = True
        return res
    finally:
        pr.unmount(base / "mnt")
        if pr.mounts_under(base):
            print(f"WARNING: {base} is still mounted", file=sys.stderr)
        elif ok:  # a failed run's spec and zarrmount log stay for a look
            shutil.rmtree(base, ignore_errors=True)


def _run_case(case: str, ctx: dict, run: int, base: Path) -> dict:
    parts = case.split("-")
    group = parts[0]
    if group == "seq":
        ds = ctx["datasets"][parts[1]]
        what = parts[2]
        if what == "cat":
            files = [str(p) for p in ds["files"]]
            res = pr.run_cat(files, "cold")
            return {**res, "bytes": sum(Path(p).stat().st_size for p in files)}
        if what == "fio":
            return run_fio(ds)
        n = int(what[-1])
        chunks = split(ds["chunks"], n)
        if what.startswith("tmpfsfiles"):
            return tmpfs_files(chunks, ctx["shm"], base)
        if what.startswith("tmpfs"):
            shm = ctx["shm"]
            readers = [[[shm[src], off, length] for _, src, off, length in c] for c in chunks]
            spec = {"kind": "read", "mode": "ranges", "block": SEQ_BLOCK, "cache": "none"}
            spec |= {"readers": readers, "check": check_sample(chunks)}
            return run_subprocess_worker(spec, base, None)
        cache = parts[3]
        options = {"pread": ["io=pread"], "nopf": ["prefetch=off"], "buffered": ["odirect=off"]}
        options = options.get(parts[-1], [])
        readers = [[[rel, 0, length] for rel, _, _, length in c] for c in chunks]
        spec = {"kind": "read", "mode": "files", "block": SEQ_BLOCK, "cache": cache}
        spec |= {"readers": readers, "check": check_sample(chunks)}
        spec["warm_files"] = [str(p) for p in ds["files"]]
        return mount_case(ctx, base, ds, options, spec)
    if group == "rnd":
        size, who = parts[1], parts[2]
        ds = ctx["datasets"][RANDOM_DATASET[size]]
        n = int(who[-1])
        count = random_reads(ctx["args"], ds["chunk_bytes"], len(ds["chunks"]))
        seed = 1000 * run + [k for k, _, _ in RANDOM_SIZES].index(size)
        sample = [
            ds["chunks"][i] for i in random.Random(seed).sample(range(len(ds["chunks"])), count)
        ]
        chunks = split(sample, n)
        block = ds["chunk_bytes"]  # one read of the whole chunk, as zarr-python reads a file
        if who.startswith("src"):
            readers = [[[src, off, length] for _, src, off, length in c] for c in chunks]
            spec = {"kind": "read", "mode": "ranges", "block": block, "cache": "cold"}
            spec |= {"readers": readers, "check": check_sample(chunks)}
            return run_subprocess_worker(spec, base, None)
        readers = [[[rel, 0, length] for rel, _, _, length in c] for c in chunks]
        spec = {"kind": "read", "mode": "files", "block": block, "cache": "cold"}
        spec |= {"readers": readers, "check": check_sample(chunks)}
        return mount_case(ctx, base, ds, [], spec)
    if group == "zarr":
        ds = ctx["datasets"]["plt"]
        where, cache = parts[1], parts[2]
        mnt = base / "mnt"
        mnt.mkdir()
        spec = {
            "kind": "zarr",
            "cache": cache,
            "plotfile": str(ds["path"]),
            "layout": ds["layout"],
            "binary": str(ctx["binary"]),
            "mountpoint": str(mnt),
            "log": str(base / "zarrmount.log"),
            "expected": str(ctx["expected_path"]),
            "zarr_copy": str(ctx["zarr_copy"]) if where == "copy" else None,
            "mount_options": [f"cache_size={ctx['cache_size_text']}"]
            + {"mountbuf": ["odirect=off"], "mount1m": ["max_read=1M"]}.get(where, []),
            "timeout": WORKER_TIMEOUT - 60,
        }
        res = run_subprocess_worker(spec, base, mnt)
        res["bytes"] = res["value_bytes"]
        res["hwm"] = res.get("daemon_hwm", 0)
        res["checks"] = "; ".join(f"{k}: {v}" for k, v in sorted(res.get("checks", {}).items()))
        return res
    if group == "eng":
        mode, engine, depth = parts[1], parts[2], int(parts[3])
        _, size, order, _ = next(m for m in ENGINE_MODES if m[0] == mode)
        reads = ctx["args"].engine_mib * MIB // size
        cmd = [str(ctx["engine_bench"]), "--file", str(ctx["datasets"]["raw"]["files"][0])]
        cmd += ["--engine", engine, "--depth", str(depth), "--block", str(size)]
        cmd += ["--order", order, "--reads", str(reads), "--seed", str(run), "--drop-caches"]
        # As many rings as the daemon uses by default: one per core, up to 4.
        cmd += ["--rings", str(min(max(os.cpu_count() or 1, 1), 4))]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=WORKER_TIMEOUT, check=False)
        lines = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
        if r.returncode != 0 or not lines:
            err = (r.stderr.strip().splitlines() or ["?"])[-1]
            raise RuntimeError(f"engine_depth exit {r.returncode}: {err}")
        res = json.loads(lines[-1][len("RESULT ") :])
        res["checks"] = f"{res['checked']} reads bit-equal to pread"
        return res
    raise ValueError(case)


def tmpfs_files(chunks: list[list], shm: dict, base: Path) -> dict:
    """Each chunk's bytes as a file of its own in /dev/shm (made before the clock, removed
    after), read as the mount's chunk files are: opened, read to EOF, closed."""
    root = Path(tempfile.mkdtemp(dir="/dev/shm", prefix="zarrmount-bench-files-"))
    try:
        readers = []
        for c in chunks:
            pieces = []
            for rel, src, off, length in c:
                dst = root / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                with open(shm[src], "rb") as f:
                    f.seek(off)
                    dst.write_bytes(f.read(length))
                pieces.append([str(dst), 0, length])
            readers.append(pieces)
        spec = {"kind": "read", "mode": "files", "block": SEQ_BLOCK, "cache": "none"}
        spec |= {"readers": readers, "check": check_sample(chunks)}
        return run_subprocess_worker(spec, base, None)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_fio(ds: dict) -> dict:
    path = ds["files"][0]
    pr.drop_caches()
    r = subprocess.run(
        [
            "fio",
            "--name=seq",
            "--rw=read",
            "--bs=1M",
            "--direct=1",
            "--ioengine=io_uring",
            "--iodepth=32",
            f"--filename={path}",
            f"--size={path.stat().st_size}",
            "--readonly",
            "--output-format=json",
        ],
        capture_output=True,
        text=True,
        timeout=WORKER_TIMEOUT,
        check=False,
    )
    if r.returncode != 0:
        raise RuntimeError(f"fio exit {r.returncode}: {r.stderr.strip()[-200:]}")
    read = json.loads(r.stdout[r.stdout.index("{") :])["jobs"][0]["read"]
    return {"seconds": read["runtime"] / 1e3, "bytes": read["io_bytes"]}


# --- setup ---------------------------------------------------------------------------------


def probe(ctx: dict, ds: dict, log) -> None:
    """Mounts `ds` once: the chunk files the cases will read must be there, of the right size."""
    base = Path(tempfile.mkdtemp(dir=ctx["session"], prefix=f"probe-{ds['key']}-"))
    mnt = base / "mnt"
    mnt.mkdir()
    try:
        pr.start_mount(ctx["binary"], ds["source"], mnt, base / "zarrmount.log")
        chunks = ds["chunks"]
        for rel, _, _, length in (chunks[0], chunks[len(chunks) // 2], chunks[-1]):
            size = pr.call_with_timeout(lambda r=rel: os.stat(mnt / r).st_size, 20)
            if size != length:
                raise RuntimeError(f"{ds['key']}: {rel} is {size} bytes, expected {length}")
        if "layout" in ds:
            arr = Path(chunks[0][0]).parents[3]
            meta = json.loads(
                pr.call_with_timeout(lambda: (mnt / arr / "zarr.json").read_text(), 20)
            )
            box = ds["layout"]["params"]["box"]
            shape = meta["chunk_grid"]["configuration"]["chunk_shape"]
            if shape != [box] * 3 or meta.get("dimension_names") != ["z", "y", "x"]:
                raise RuntimeError(
                    f"{ds['key']}: {arr} has chunks {shape}, expected {box}³ (z,y,x)"
                )
        stats = daemon_stats(ctx["binary"], mnt)
        ctx.setdefault("engine_name", stats.get("io_engine", "?"))
        log(
            f"  probe {ds['key']}: ok ({len(chunks)} chunk files, io_engine {stats.get('io_engine')})"
        )
    finally:
        pr.unmount(mnt)
        if not pr.mounts_under(base):
            shutil.rmtree(base, ignore_errors=True)


def make_shm_copies(datasets: list[dict], log) -> tuple[Path, dict]:
    """Copies of the source files in /dev/shm (tmpfs): the warm ceiling."""
    root = Path(tempfile.mkdtemp(dir="/dev/shm", prefix="zarrmount-bench-"))
    mapping = {}
    t = time.perf_counter()
    for ds in datasets:
        for i, src in enumerate(ds["files"]):
            dst = root / ds["key"] / f"{i:03d}_{src.name}"
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
            mapping[str(src)] = str(dst)
    size = sum(Path(p).stat().st_size for p in mapping.values())
    log(f"copied {size / GIB:.2f} GiB to {root} in {time.perf_counter() - t:.1f} s")
    return root, mapping


# --- report --------------------------------------------------------------------------------


def med(results: dict, key: str, field: str = "seconds"):
    v = [r[field] for r in results.get(key, []) if field in r]
    return statistics.median(v) if v else None


def mbps(results: dict, key: str):
    v = [r["bytes"] / r["seconds"] / MB for r in results.get(key, []) if r.get("seconds")]
    return statistics.median(v) if v else None


def seq_table(results: dict, labels: dict, d: str) -> list[str]:
    """Cold rows against `cat` cold (and fio), warm mount rows against tmpfs with as many
    readers; throughput ratios (above 1 is faster than the anchor)."""
    rows = [
        "| case | median s | min–max s | MB/s | throughput / anchor |",
        "|---|---:|---:|---:|---|",
    ]
    cat, fio = mbps(results, f"seq-{d}-cat-cold"), mbps(results, "seq-raw-fio")
    for key, label in labels.items():
        if not key.startswith(f"seq-{d}-") or not results.get(key):
            continue
        v = [r["seconds"] for r in results[key]]
        tput = mbps(results, key)
        if key.endswith("-cat-cold"):
            ratio = "cold ceiling"
        elif "tmpfs" in key:
            ratio = "warm ceiling"
        elif key.endswith(("-warm", "-reread")):
            n = int(key.split("mount")[1][0])
            anchors = ((f"seq-{d}-tmpfs{n}", "tmpfs"), (f"seq-{d}-tmpfsfiles{n}", "tmpfs files"))
            ratio = ", ".join(
                f"{tput / a:.2f}× {what}" for k, what in anchors if (a := mbps(results, k))
            )
        else:
            ratio = ", ".join(
                f"{tput / a:.2f}× {name}"
                for a, name in ((cat, "cat cold"), (fio, "fio"))
                if a and not key.endswith(f"-{name.split()[0]}") and not key.endswith("-cat-cold")
            )
        rows.append(
            f"| {label} | {statistics.median(v):.2f} | {min(v):.2f}–{max(v):.2f} | {tput:.0f} | {ratio} |"
        )
    return rows


def rnd_table(results: dict) -> list[str]:
    rows = [
        (
            "| chunk size | readers | chunks/run | source chunks/s | mount chunks/s (min–max) | "
            "mount / source | source p50 / p99 ms | mount p50 / p99 ms |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s, label, _ in RANDOM_SIZES:
        for n in READERS:
            src, mnt = results.get(f"rnd-{s}-src{n}", []), results.get(f"rnd-{s}-mount{n}", [])
            if not src and not mnt:
                continue

            def rate(rs):
                return [r["pieces"] / r["seconds"] for r in rs]

            def lat(rs):
                v = [x for r in rs for x in r["lat_ms"]]
                return f"{percentile(v, 50):.2f} / {percentile(v, 99):.2f}" if v else "n/a"

            rs, rm = rate(src), rate(mnt)
            ms, mm = (statistics.median(x) if x else None for x in (rs, rm))
            pieces = (mnt or src)[0]["pieces"]
            rows.append(
                f"| {label} | {n} | {pieces} | {ms or float('nan'):.0f} | "
                + (f"{mm:.0f} ({min(rm):.0f}–{max(rm):.0f})" if mm else "n/a")
                + f" | {(mm / ms if mm and ms else float('nan')):.2f}× | {lat(src)} | {lat(mnt)} |"
            )
    return rows


def zarr_table(results: dict, labels: dict) -> list[str]:
    rows = [
        "| case | median s | min–max s | MB/s | × native copy (time) |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, label in labels.items():
        if not key.startswith("zarr-") or not results.get(key):
            continue
        v = [r["seconds"] for r in results[key]]
        cache = key.rsplit("-", 1)[1]
        native = med(results, f"zarr-copy-{'warm' if cache == 'reread' else cache}")
        ratio = f"{statistics.median(v) / native:.2f}×" if native else "–"
        rows.append(
            f"| {label} | {statistics.median(v):.2f} | {min(v):.2f}–{max(v):.2f} | "
            f"{mbps(results, key):.0f} | {ratio} |"
        )
    return rows


def eng_table(results: dict) -> list[str]:
    """io_uring as the daemon reads (`uring_direct`: cold blocks with O_DIRECT) against the
    pread engine, and io_uring through the page cache (`-o odirect=off`) beside them."""
    rows = [
        (
            "| reads | depth | io_uring MB/s (min–max) | pread MB/s (min–max) | "
            "io_uring / pread | io_uring p50 / p99 ms | pread p50 / p99 ms | "
            "io_uring odirect=off MB/s | CPU s per GB: io_uring / io_uring odirect=off / pread |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for b, _, _, label in ENGINE_MODES:
        for d in ENGINE_DEPTHS:
            u = results.get(f"eng-{b}-uring_direct-{d}", [])
            p = results.get(f"eng-{b}-pread-{d}", [])
            if not u and not p:
                continue

            def cell(rs):
                if not rs:
                    return "n/a"
                v = [r["mb_s"] for r in rs]
                return f"{statistics.median(v):.0f} ({min(v):.0f}–{max(v):.0f})"

            def lat(rs):
                if not rs:
                    return "n/a"
                return (
                    f"{statistics.median(r['p50_ms'] for r in rs):.2f} / "
                    f"{statistics.median(r['p99_ms'] for r in rs):.2f}"
                )

            ratio = engine_ratio(results, b, d)
            buffered = results.get(f"eng-{b}-uring-{d}", [])
            cpu = " / ".join(
                f"{statistics.median(r['cpu_s_per_gb'] for r in rs):.2f}" if rs else "n/a"
                for rs in (u, buffered, p)
            )
            rows.append(
                f"| {label} | {d} | {cell(u)} | {cell(p)} | "
                f"{f'{ratio:.2f}×' if ratio else '–'} | {lat(u)} | {lat(p)} | "
                f"{cell(buffered)} | {cpu} |"
            )
    return rows


def engine_ratio(results: dict, mode: str, depth: int) -> float | None:
    """MB/s of io_uring as the daemon reads over the pread engine's."""
    mu = med(results, f"eng-{mode}-uring_direct-{depth}", "mb_s")
    mp = med(results, f"eng-{mode}-pread-{depth}", "mb_s")
    return mu / mp if mu and mp else None


def rss_lines(results: dict, labels: dict, cache_size: int) -> tuple[list[str], int]:
    limit = cache_size + RSS_SLACK
    rows = [
        f"| mount case | VmHWM median MiB | max MiB | max / (cache_size + 64 MiB = {limit / MIB:.0f} MiB) |",
        "|---|---:|---:|---:|",
    ]
    worst = 0
    for key, label in labels.items():
        v = [r["hwm"] for r in results.get(key, []) if r.get("hwm")]
        if not v:
            continue
        worst = max(worst, max(v))
        rows.append(
            f"| {label} | {statistics.median(v) / MIB:.0f} | {max(v) / MIB:.0f} | {max(v) / limit:.2f} |"
        )
    return rows, worst


def goal_lines(results: dict, cache_size: int, worst_hwm: int) -> list[str]:
    def verdict(ok):
        return "met" if ok else "NOT met"

    out = []
    fio = mbps(results, "seq-raw-fio")
    if fio:
        for d, name in (("raw", "raw file"), ("plt", "plotfile")):
            for n in READERS:
                m = mbps(results, f"seq-{d}-mount{n}-cold")
                if m:
                    r = m / fio
                    out.append(
                        f"- sequential cold through the mount, {name}, {rtext(n)} / fio = "
                        f"{m:.0f} / {fio:.0f} MB/s = **{r:.2f}×** (goal ≥ 0.9×: {verdict(r >= 0.9)})"
                    )
    for d, name in (("raw", "raw file"), ("plt", "plotfile")):
        for n in READERS:
            m = mbps(results, f"seq-{d}-mount{n}-reread")
            for anchor, what in (("tmpfs", "the byte ranges"), ("tmpfsfiles", "the chunk files")):
                t = mbps(results, f"seq-{d}-{anchor}{n}")
                if m and t:
                    r = m / t
                    out.append(
                        f"- warm re-read of the chunk files, {name}, {rtext(n)} / tmpfs ({what}) "
                        f"= {m:.0f} / {t:.0f} MB/s = **{r:.2f}×** (goal ≥ 0.9×: {verdict(r >= 0.9)})"
                    )
    for cache, native, limit, goal in (
        ("cold", "cold", 1.0, "≤ 1.0×"),
        ("warm", "warm", 1.1, "≤ 1.1×"),
        ("reread", "warm", 1.1, "≤ 1.1×"),
    ):
        m, c = med(results, f"zarr-mount-{cache}"), med(results, f"zarr-copy-{native}")
        if m and c:
            r = m / c
            out.append(
                f"- zarr-python per box, mount {cache} / native copy {native} = {m:.2f} / {c:.2f} s = "
                f"**{r:.2f}×** (goal {goal}: {verdict(r <= limit)})"
            )
    for b, _, order, label in ENGINE_MODES:
        ratios = {}
        for d in ENGINE_DEPTHS:
            if ratio := engine_ratio(results, b, d):
                ratios[d] = ratio
        if ratios:
            text = ", ".join(f"depth {d}: {r:.2f}×" for d, r in ratios.items())
            every = all(r >= 1.0 for r in ratios.values())
            ahead = all(r >= 1.1 for d, r in ratios.items() if d >= 8)
            note = " (diagnostic: the prefetcher's order)" if order == "sequential" else ""
            out.append(
                f"- io_uring / pread, {label} reads{note}: {text} (goal ≥ 1× at every depth: "
                f"{verdict(every)}; clearly ahead, ≥ 1.1×, at depth ≥ 8: {verdict(ahead)})"
            )
    if worst_hwm:
        limit = cache_size + RSS_SLACK
        out.append(
            f"- daemon VmHWM, worst mount case = {worst_hwm / MIB:.0f} MiB vs cache_size + 64 MiB = "
            f"{limit / MIB:.0f} MiB: **{worst_hwm / limit:.2f}×** (goal ≤ 1×: {verdict(worst_hwm <= limit)})"
        )
    return out


def counter_lines(results: dict, labels: dict) -> list[str]:
    keys = ["cache_hits", "cache_misses", "direct_reads", "prefetch_issued", "prefetch_used"]
    keys += ["prefetch_wasted", "bytes_read", "bytes_served", "page_cache_stored"]
    out = []
    for key, label in labels.items():
        rs = [r for r in results.get(key, []) if r.get("stats")]
        if not rs:
            continue
        vals = []
        for k in keys:
            m = statistics.median(r["stats"].get(k, 0) for r in rs)
            vals.append(f"{k} {m / MIB:.0f} MiB" if k.startswith("bytes") else f"{k} {m:.0f}")
        cpu = statistics.median(r.get("cpu_daemon", 0) for r in rs)
        cpuc = statistics.median(r.get("cpu_client", 0) for r in rs)
        out.append(
            f"- {label} ({rs[0]['stats'].get('io_engine', '?')}): "
            + ", ".join(vals)
            + f"; CPU daemon {cpu:.2f} s, CPU readers {cpuc:.2f} s"
        )
    return out


# --- main ----------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--runs", type=int, default=3, help="repetitions of every case (default 3)")
    ap.add_argument("--raw-gib", type=float, default=4.0, help="raw file size in GiB (default 4)")
    ap.add_argument(
        "--size-gib", type=float, default=1.0, help="plotfile_read's plotfile size (default 1)"
    )
    ap.add_argument("--cache-size", default="1G", help="-o cache_size= of every mount (default 1G)")
    ap.add_argument(
        "--random-mib",
        type=int,
        default=512,
        help="MiB of chunks per random case (at least --random-min chunks; default 512)",
    )
    ap.add_argument("--random-min", type=int, default=128, help="default 128")
    ap.add_argument(
        "--engine-mib", type=int, default=1024, help="MiB read per engine case (default 1024)"
    )
    ap.add_argument(
        "--workdir", type=Path, default=DEFAULT_WORKDIR, help=f"default {DEFAULT_WORKDIR}"
    )
    ap.add_argument(
        "--clean",
        action="store_true",
        help="delete the data files this run generated (kept for the next run by default)",
    )
    ap.add_argument(
        "--cases",
        default=CASES_ALL,
        help="comma list of groups (seq, rnd, zarr, eng), case keys or key prefixes",
    )
    ap.add_argument(
        "--bin",
        type=Path,
        default=pr.DEFAULT_BIN,
        help=f"zarrmount binary (default {pr.DEFAULT_BIN})",
    )
    ap.add_argument(
        "--engine-bench", type=Path, help="engine_depth binary (default: built with cargo)"
    )
    ap.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="'-' for none")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("--worker-spec", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker_spec:
        res = worker(args)
        print("RESULT " + json.dumps(res), flush=True)
        return 0

    all_cases = case_list()
    labels = {k: label for k, _, label in all_cases}
    sel = [s.strip() for s in args.cases.split(",") if s.strip()]
    cases = [k for k, g, _ in all_cases if any(s == g or k.startswith(s) for s in sel)]
    if args.list:
        print("\n".join(f"{k:28s} {labels[k]}" for k in cases))
        return 0
    if not cases:
        ap.error(f"no case matches {args.cases}; see --list")
    if os.geteuid() != 0:
        print("needs root (drop_caches and FUSE mounts)", file=sys.stderr)
        return 2

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    t_start = time.perf_counter()
    args.workdir.mkdir(parents=True, exist_ok=True)
    workdir = args.workdir.resolve()
    cache_size = parse_size(args.cache_size)
    notes, generated = [], []

    # Which datasets the selected cases read.
    need = set()
    for c in cases:
        p = c.split("-")
        if p[0] == "seq":
            need.add(p[1])
        elif p[0] == "rnd":
            need.add(RANDOM_DATASET[p[1]])
        elif p[0] == "zarr":
            need.add("plt")
        elif p[0] == "eng":
            need.add("raw")
    if any(c == "seq-raw-fio" for c in cases) and not ensure_fio(log):
        notes.append("fio is not installed and apt-get could not install it: no fio case")
        cases.remove("seq-raw-fio")

    datasets = {}
    if "raw" in need:
        size = int(args.raw_gib * GIB) // RAW_CHUNK * RAW_CHUNK
        path, new = ensure_raw(workdir, size, log)
        datasets["raw"] = raw_dataset(path)
        if new:
            generated.append(path)
    if "plt" in need:
        path, layout, new = pr.ensure_plotfile(workdir, args.size_gib, log)
        datasets["plt"] = plotfile_dataset("plt", path, layout)
        if new:
            generated.append(path)
    for key, box, n0, n_l1 in (("plt32", 32, 256, 64), ("plt80", 80, 320, 32)):
        if key in need:
            chunk = box**3 * 8
            # Twice as many chunks as a case reads: random picks rarely neighbour each other.
            layout = small_box_layout(box, n0, n_l1, 2 * random_reads(args, chunk, 1 << 30))
            path = workdir / f"plt_box{box}_{len(layout['fields'])}f"
            if pr.ensure_layout(path, layout, log):
                generated.append(path)
            datasets[key] = plotfile_dataset(key, path, layout)

    session = Path(tempfile.mkdtemp(dir=workdir, prefix="engine-session-"))
    shm_root = None
    ctx = {
        "args": args,
        "session": session,
        "datasets": datasets,
        "cache_size_text": args.cache_size,
        "expected_path": session / "expected.json",
    }
    fuse_pages = contextlib.ExitStack()
    fuse_note = fuse_pages.enter_context(pr.fuse_request_pages())
    try:
        binary = session / "zarrmount"  # a private copy: a rebuild cannot mix binaries
        shutil.copy2(args.bin, binary)
        ctx["binary"] = binary
        vers = pr.versions(binary, args.bin)
        mount_cases = [c for c in cases if "mount" in c or c.startswith("zarr")]
        if mount_cases:
            for ds in datasets.values():
                probe(ctx, ds, log)
        if any(c.startswith("eng-") for c in cases):
            bench = args.engine_bench or pr.build_bench("engine_depth", log)
            if bench and bench.exists():
                ctx["engine_bench"] = session / "engine_depth"
                shutil.copy2(bench, ctx["engine_bench"])
            else:
                notes.append("engine_depth could not be built: no engine cases")
                cases = [c for c in cases if not c.startswith("eng-")]
        if any("tmpfs" in c for c in cases):
            shm_ds = [
                datasets[d] for d in ("raw", "plt") if any(f"seq-{d}-tmpfs" in c for c in cases)
            ]
            shm_root, ctx["shm"] = make_shm_copies(shm_ds, log)
        if any(c.startswith("zarr-") for c in cases):
            log("computing expected values from the Cell_D bytes ...")
            ds = datasets["plt"]
            ctx["expected_path"].write_text(
                json.dumps(pr.expected_values(ds["path"], ds["layout"]))
            )
        if any(c.startswith("zarr-copy") for c in cases):
            log("copying the mount's tree to a local directory ...")
            ctx["zarr_copy"] = pr.copy_mount_tree(binary, datasets["plt"]["path"], session)

        results = {c: [] for c in cases}
        failures = []
        t_runs = time.perf_counter()
        for run in range(1, args.runs + 1):
            for case in cases:
                try:
                    res = run_case(case, ctx, run)
                except (RuntimeError, subprocess.TimeoutExpired, AssertionError, OSError) as e:
                    failures.append(f"{case} run {run}: {e}")
                    log(f"  FAILED {failures[-1]}")
                    continue
                results[case].append(res)
                extra = ""
                if res.get("hwm"):
                    extra += f"  VmHWM {res['hwm'] / MIB:.0f} MiB"
                if res.get("pieces"):
                    lat = res["lat_ms"]
                    extra += f"  p50 {percentile(lat, 50):.2f} ms  p99 {percentile(lat, 99):.2f} ms"
                log(
                    f"run {run} {case:28s} {res['seconds']:7.2f} s  "
                    f"{res['bytes'] / res['seconds'] / MB:7.0f} MB/s{extra}"
                )
            log(f"round {run} done, {time.perf_counter() - t_runs:.0f} s since the first")

        rss_rows, worst = rss_lines(results, labels, cache_size)
        ds_lines = [f"- {d}: {ds['desc']}" for d, ds in datasets.items()]
        report = [
            "# I/O engine benchmark",
            "",
            (
                f"`benches/engine_read.py --runs {args.runs} --raw-gib {args.raw_gib:g} "
                f"--size-gib {args.size_gib:g} --cache-size {args.cache_size}"
                f"{'' if args.cases == CASES_ALL else f' --cases {args.cases}'}`, "
                f"{datetime.datetime.now():%Y-%m-%d %H:%M}, "
                f"{(time.perf_counter() - t_start) / 60:.1f} min"
            ),
            "",
            f"- machine: {pr.machine()}; {fuse_note}",
            "- versions: " + ", ".join(f"{k} {v}" for k, v in vers.items()),
            (
                f"- zarrmount io engine: {ctx.get('engine_name', '?')}; every mount fresh, "
                f"`-o cache_size={args.cache_size}`, prefetch on unless said"
            ),
            *ds_lines,
            (
                "- cold = `sync; echo 3 > /proc/sys/vm/drop_caches` just before the clock; warm = "
                "the source files read just before (the mount is still fresh); medians of "
                f"{args.runs} run(s), cases interleaved run by run; MB = 10⁶ bytes"
            ),
        ]
        for d, name in (("raw", "raw file"), ("plt", "plotfile")):
            if any(c.startswith(f"seq-{d}-") for c in results):
                report += [
                    "",
                    f"## Sequential: every chunk file in order, {name}",
                    "",
                    (
                        "Readers read 1 MiB at a time until EOF (as `cat`); 4 readers = the chunk "
                        "files in 4 contiguous parts, in parallel. The /dev/shm copy rows read "
                        "the same byte ranges, in the same order, from a copy of the source; the "
                        "chunk-files rows read each chunk's bytes from a file of its own there, "
                        "opened and closed as the mount's are. Re-read = two untimed passes "
                        "through the mount first (the second stores the chunk files' pages in "
                        "the kernel's page cache)."
                    ),
                    "",
                    *seq_table(results, labels, d),
                ]
        if any(c.startswith("rnd-") for c in results):
            report += [
                "",
                "## Random chunk reads, cold",
                "",
                (
                    "Distinct chunks in random order (the same sample for source and mount in a "
                    "run); a chunk file is opened, read in one `read` of its size, read to EOF, "
                    "closed; the source rows `pread` the same byte ranges. Prefetch on (the "
                    "default: random reads start no stream). Latency percentiles over every read "
                    "of every run."
                ),
                "",
                *rnd_table(results),
            ]
        if any(c.startswith("zarr-") for c in results):
            report += [
                "",
                "## zarr-python, every box of every field of the plotfile",
                "",
                (
                    "plotfile_read.py's per-box worker (`arr[box]`, 8 boxes at a time), fresh "
                    "interpreter, mount time included; the native copy is `cp -r` from a mount, "
                    "on the same disk."
                ),
                "",
                *zarr_table(results, labels),
            ]
        if any(c.startswith("eng-") for c in results):
            report += [
                "",
                "## I/O engines: reads of the raw file at a fixed queue depth, cold",
                "",
                (
                    f"`benches/engine_depth.rs` ({args.engine_mib} MiB per case, page cache "
                    "dropped first): io_uring = `UringEngine` with one ring per core as the "
                    "daemon reads by default, blocks the page cache does not hold with O_DIRECT "
                    "into registered buffers; io_uring odirect=off = the same engine reading "
                    "everything through the page cache; pread = "
                    "`PreadEngine::new(depth threads)`, `depth` reads kept outstanding with "
                    "`submit`. CPU = the bench process's user + system time (engine threads and "
                    "the kernel's work for them) per GB read. Random = distinct blocks in random order; sequential = consecutive "
                    "blocks from a random start, the order the prefetcher submits a scan in."
                ),
                "",
                *eng_table(results),
            ]
        if worst:
            report += ["", "## Daemon memory (VmHWM at the end of each mount)", "", *rss_rows]
        report += ["", "## Goals", "", *goal_lines(results, cache_size, worst)]
        counters = counter_lines(results, labels)
        if counters:
            report += ["", "Daemon counters at the end of each mount case (medians):", *counters]
        checks = []
        for c in cases:
            msgs = sorted({r["checks"] for r in results[c] if r.get("checks")})
            if msgs:
                checks.append(f"- {c}: " + "; ".join(msgs))
        if checks:
            report += ["", "Value checks (every run):", *checks]
        if notes:
            report += ["", *[f"Note: {n}" for n in notes]]
        if failures:
            report += ["", "Failures:", *[f"- {f}" for f in failures]]
        text = "\n".join(report) + "\n"
        print(text)
        if str(args.results) != "-":
            args.results.parent.mkdir(parents=True, exist_ok=True)
            args.results.write_text(text)
            log(f"written to {args.results}")
        return 1 if failures else 0
    finally:
        fuse_pages.close()
        for m in pr.mounts_under(workdir):
            pr.unmount(m)
        left = pr.mounts_under(workdir)
        if left:
            log(f"WARNING: still mounted: {left}")
        else:
            shutil.rmtree(session, ignore_errors=True)
        if shm_root:
            shutil.rmtree(shm_root, ignore_errors=True)
        if args.clean:
            for p in generated:
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
                p.with_name(p.name + ".json").unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
