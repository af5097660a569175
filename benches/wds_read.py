#!/usr/bin/env python3
"""WebDataset read benchmark: zarrmount against tar, ratarmount and webdataset on generated shards.

    .venv/bin/python benches/wds_read.py [--runs 3] [--workdir DIR] [--ratarmount PATH] [--keep]

1. Generates (or reuses) two shard sets with webdataset's own ShardWriter (POSIX ustar + a PAX
   header before every member, as the library writes them) under `--workdir`:
     wds/train-{000000..000031}.tar   32 shards x 256 samples, 2.07 GiB: per sample
                                      `image.npy` float32 256 x 256 (256 KiB), `boxes.npy`
                                      int32 16 x 4, `cls`, `txt`
     wds-small/small-{000000..000007}.tar   8 shards x 10240 samples, 0.47 GiB of small
                                      members (`label.npy` int16 (4,), `cls`, `txt`): the
                                      index rate when every member is a header or two
   Every value is a formula of the sample index, so every reader's values can be checked.
2. Times, side by side, each case `--runs` times, the cases interleaved round by round:
     index       (warm page cache) zarrmount with a fresh `-o index_dir`: mount + read the root
                 `zarr.json` (the index build); zarrmount remounted with the index kept;
                 `tar -tvf` of every shard; `ratarmount --no-mount` building its SQLite indexes
     sequential  every sample's arrays in order: `cat` of the shards; zarr-python through the
                 mount, `--batch` samples per call (`arr[i:i+B]`); the mount's chunk files
                 read plainly (no zarr-python); zarr-python on a local copy of the mount's
                 tree (no FUSE); webdataset iterating and decoding every sample; cold and warm
     shuffled    `--random` samples of a fixed random permutation, one sample at a time:
                 zarr-python through the mount (`arr[i]`), the sample's chunk files read
                 plainly, zarr-python on the local copy; `np.load` and reads of the member
                 files through a ratarmount mount of the same shards; webdataset, which can
                 only stream: open the sample's shard and iterate until the key shows up
                 (on the first `--wds-random` samples of the permutation, per sample)
   Each measured reader is a fresh process (this script with a hidden --worker-spec) that does
   its imports and a warm-up on a one-shard set before the clock. "cold" = `sync; echo 3 >
   /proc/sys/vm/drop_caches` right before the clock, "warm" = every shard read just before.
3. Checks values: every reader's key, cls, txt, boxes and the first row of every image must
   equal the generator's, and every 16th image whole.
4. Prints a Markdown table (median, min-max, rate, ratio to the anchor of each group) and the
   issue's goals, and writes them to benches/results/wds_read.md.

Needs root (drop_caches, FUSE), a release build of zarrmount, and ratarmount: without
`--ratarmount` it is installed (pip, from PyPI) into a venv of its own in `--workdir`. Every mount
is undone in a `finally` (umount, umount -l, then the daemon is killed: plotfile_read's helpers,
plus ratarmount's daemon), and /proc/mounts is checked at the end.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import ctypes.util
import datetime
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import plotfile_read as pr  # mount helpers, drop_caches, spawn_worker, machine, versions

REPO = pr.REPO
DEFAULT_RESULTS = REPO / "benches" / "results" / "wds_read.md"
GENERATOR_VERSION = 1
RATARMOUNT_REQUIREMENT = "ratarmount~=1.3.0"  # 1.3.0 tested
WORKER_TIMEOUT = 1200
INDEX_TIMEOUT = 600

# The shard sets: name -> (subdirectory of the work dir, shards, samples per shard, kind).
SETS = {
    "train": {"dir": "wds", "shards": 32, "per_shard": 256, "kind": "main"},
    "small": {"dir": "wds-small", "shards": 8, "per_shard": 10240, "kind": "small"},
}
IMAGE_SHAPE = (256, 256)
BOXES_SHAPE = (16, 4)
FULL_CHECK_EVERY = 16  # every 16th sample's image is compared whole, the others by a row
FEATURES = ("image.npy", "boxes.npy", "cls", "txt")  # the arrays every reader reads per sample

# Measured worker processes, in the order of one round: (kind, cache)
WORKERS = [
    ("zm-seq", "cold"),
    ("zm-files-seq", "cold"),
    ("wds-seq", "cold"),
    ("zm-seq", "warm"),
    ("zm-files-seq", "warm"),
    ("copy-seq", "warm"),
    ("wds-seq", "warm"),
    ("zm-rnd", "cold"),
    ("zm-files-rnd", "cold"),
    ("rt-rnd", "cold"),
    ("wds-rnd", "cold"),
    ("zm-rnd", "warm"),
    ("zm-files-rnd", "warm"),
    ("copy-rnd", "warm"),
    ("rt-rnd", "warm"),
    ("wds-rnd", "warm"),
    ("zm-rnd", "reread"),
    ("zm-files-rnd", "reread"),
    ("rt-rnd", "reread"),
]

# The table: group -> [(metric, label)]; the first row of a group is its anchor.
GROUPS = {
    "index-train": [
        ("idx-zm-train", "zarrmount, fresh `index_dir`: mount + root `zarr.json` (anchor)"),
        ("idx-zm-kept-train", "zarrmount, index kept: mount + root `zarr.json`"),
        ("idx-tar-train", "`tar -tvf` of every shard"),
        ("idx-rt-train", "ratarmount `--no-mount`: SQLite index of every shard"),
    ],
    "index-small": [
        ("idx-zm-small", "zarrmount, fresh `index_dir`: mount + root `zarr.json` (anchor)"),
        ("idx-zm-kept-small", "zarrmount, index kept: mount + root `zarr.json`"),
        ("idx-tar-small", "`tar -tvf` of every shard"),
        ("idx-rt-small", "ratarmount `--no-mount`: SQLite index of every shard"),
    ],
    "sequential": [
        ("cat-cold", "`cat` of the shards > /dev/null, cold (anchor)"),
        ("cat-warm", "`cat` of the shards, warm"),
        ("zm-seq-cold", "zarrmount: mount + zarr-python `arr[i:i+B]` of the 4 arrays, cold"),
        ("zm-seq-warm", "zarrmount: mount + zarr-python `arr[i:i+B]`, warm"),
        ("zm-files-seq-cold", "zarrmount: mount + the chunk files read plainly (no zarr), cold"),
        ("zm-files-seq-warm", "zarrmount: mount + the chunk files read plainly, warm"),
        ("copy-seq-warm", "zarr-python `arr[i:i+B]` on a local copy of the mount's tree, warm"),
        ("wds-seq-cold", "webdataset: iterate + `.decode()` every sample, cold"),
        ("wds-seq-warm", "webdataset: iterate + `.decode()`, warm"),
    ],
    "shuffled": [
        ("zm-rnd-cold", "zarrmount: zarr-python `arr[i]` of the 4 arrays, cold (anchor)"),
        ("zm-rnd-warm", "zarrmount: zarr-python `arr[i]`, warm"),
        ("zm-files-rnd-cold", "zarrmount: the sample's 4 chunk files read plainly, cold"),
        ("zm-files-rnd-warm", "zarrmount: the sample's 4 chunk files read plainly, warm"),
        ("copy-rnd-warm", "zarr-python `arr[i]` on a local copy of the mount's tree, warm"),
        ("rt-rnd-cold", "ratarmount mount: `np.load` / read of the 4 member files, cold"),
        ("rt-rnd-warm", "ratarmount mount: the 4 member files, warm"),
        ("wds-rnd-cold", "webdataset: open the shard, iterate to the key, decode it, cold"),
        ("wds-rnd-warm", "webdataset: stream to the key, warm"),
        ("zm-rnd-reread", "zarrmount: zarr-python `arr[i]`, third epoch of the same order"),
        ("zm-files-rnd-reread", "zarrmount: the 4 chunk files read plainly, third epoch"),
        ("rt-rnd-reread", "ratarmount mount: the 4 member files, third epoch"),
    ],
}


# --- the shard sets -------------------------------------------------------------------------


def key_of(i: int) -> str:
    return f"{i:08d}"


def base_image() -> np.ndarray:
    return np.random.default_rng(20261121).random(IMAGE_SHAPE, dtype=np.float32)


def boxes_of(i: int) -> np.ndarray:
    return np.arange(np.prod(BOXES_SHAPE), dtype=np.int32).reshape(BOXES_SHAPE) + np.int32(i)


def caption(i: int) -> str:
    return f"sample {i}: " + "lorem ipsum " * (i % 13)


def label_of(i: int) -> np.ndarray:
    return np.array([i % 7, i % 11, i % 13, i % 17], dtype=np.int16)


def make_sample(kind: str, i: int, base: np.ndarray | None) -> dict:
    if kind == "main":
        return {
            "__key__": key_of(i),
            "image.npy": base + np.float32(i),
            "boxes.npy": boxes_of(i),
            "cls": i % 1000,
            "txt": caption(i),
        }
    return {"__key__": key_of(i), "label.npy": label_of(i), "cls": i % 100, "txt": f"s{i}"}


def set_info(workdir: Path, name: str, shards: int | None = None, per_shard=None) -> dict:
    spec = dict(SETS[name])
    if shards:
        spec["shards"] = shards
    if per_shard:
        spec["per_shard"] = per_shard
    folder = workdir / spec["dir"]
    last = spec["shards"] - 1
    return {
        **spec,
        "name": name,
        "folder": str(folder),
        "files": [str(folder / f"{name}-{s:06d}.tar") for s in range(spec["shards"])],
        "url": f"wds://{folder}/{name}-{{000000..{last:06d}}}.tar",
        "samples": spec["shards"] * spec["per_shard"],
        "members": spec["shards"] * spec["per_shard"] * (4 if spec["kind"] == "main" else 3),
    }


def manifest_of(info: dict) -> dict:
    return {
        "generator": GENERATOR_VERSION,
        "kind": info["kind"],
        "shards": info["shards"],
        "per_shard": info["per_shard"],
    }


def ensure_set(info: dict, log) -> bool:
    """Writes the set unless a complete one with the same parameters is there; True if written."""
    folder = Path(info["folder"])
    manifest = folder / "manifest.json"
    if manifest.exists():
        doc = json.loads(manifest.read_text())
        sizes = doc.pop("sizes", None)
        if doc == manifest_of(info) and sizes == [
            Path(f).stat().st_size if Path(f).exists() else -1 for f in info["files"]
        ]:
            return False
    write_set(info, log)
    return True


def write_set(info: dict, log) -> None:
    import webdataset as wds

    folder = Path(info["folder"])
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    log(f"writing {info['samples']} samples into {info['shards']} shards in {folder} ...")
    t0 = time.perf_counter()
    base = base_image() if info["kind"] == "main" else None
    pattern = str(folder / f"{info['name']}-%06d.tar")
    with wds.ShardWriter(pattern, maxcount=info["per_shard"], maxsize=1e15, verbose=0) as sink:
        for i in range(info["samples"]):
            sink.write(make_sample(info["kind"], i, base))
    sizes = [Path(f).stat().st_size for f in info["files"]]
    (folder / "manifest.json").write_text(json.dumps({**manifest_of(info), "sizes": sizes}))
    log(f"  {sum(sizes) / pr.GIB:.2f} GiB in {time.perf_counter() - t0:.1f} s")


def set_bytes(info: dict) -> int:
    return sum(Path(f).stat().st_size for f in info["files"])


class Checker:
    """Compares what a reader got for sample i with the generator's values."""

    def __init__(self):
        self.base = base_image()
        self.samples = 0
        self.full = 0

    def sample(self, i: int, key, image, boxes, cls, txt) -> None:
        i = int(i)
        if str(key) != key_of(i):
            raise AssertionError(f"sample {i}: key {key!r}")
        if int(cls) != i % 1000:
            raise AssertionError(f"sample {i}: cls {cls!r}")
        if str(txt) != caption(i):
            raise AssertionError(f"sample {i}: txt {txt!r}")
        if not np.array_equal(boxes, boxes_of(i)) or boxes.dtype != np.int32:
            raise AssertionError(f"sample {i}: boxes differ")
        if image.shape != IMAGE_SHAPE or image.dtype != np.float32:
            raise AssertionError(f"sample {i}: image {image.dtype} {image.shape}")
        if i % FULL_CHECK_EVERY == 0:
            ok = np.array_equal(image, self.base + np.float32(i))
            self.full += 1
        else:
            ok = np.array_equal(image[0], self.base[0] + np.float32(i))
        if not ok:
            raise AssertionError(f"sample {i}: image values differ")
        self.samples += 1

    def summary(self) -> str:
        return f"{self.samples} samples equal ({self.full} images whole, the others by a row)"


# --- mounts ---------------------------------------------------------------------------------


def kill_daemons(mnt, sig=signal.SIGKILL) -> None:
    for pid in pr.daemon_pids(mnt) + pr.daemon_pids(mnt, "ratarmount"):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def unmount(mnt) -> None:
    """plotfile_read's unmount (umount, umount -l, kill zarrmount), then ratarmount's daemon."""
    pr.unmount(mnt)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = pr.daemon_pids(mnt, "ratarmount")
        if not pids:
            break
        kill_daemons(mnt, sig)
        deadline = time.monotonic() + 5
        while pr.daemon_pids(mnt, "ratarmount") and time.monotonic() < deadline:
            time.sleep(0.05)
    pr.unmount(mnt)


class Watchdog(pr.Watchdog):
    """Kills the daemon of `mnt` (zarrmount or ratarmount) after `seconds`."""

    def _fire(self, mnt):
        self.fired = True
        kill_daemons(mnt)


def start_ratarmount(ratarmount: Path, index_dir: Path, folder, mnt: Path, log: Path) -> str:
    """Mounts every shard of `folder` (`-r`: each `<shard>.tar` a directory) with the indexes
    in `index_dir`; returns once mounted (ratarmount daemonizes). Returns its output."""
    cmd = [
        str(ratarmount),
        "--index-minimum-file-count",
        "0",
        "--index-folders",
        str(index_dir),
        "-r",
        str(folder),
        str(mnt),
    ]
    with open(log, "w") as out:  # a file, not a pipe: the daemon keeps its descriptors
        r = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=pr.MOUNT_TIMEOUT,
            check=False,
        )
    text = Path(log).read_text(errors="replace")
    if r.returncode != 0 or str(mnt) not in pr.mount_points():
        raise RuntimeError(f"ratarmount failed (exit {r.returncode}): {text.strip()[-1000:]}")
    return text


def index_ratarmount(ratarmount: Path, index_dir: Path, files: list[str], log: Path) -> None:
    """`ratarmount --no-mount`: builds and writes the index of every shard, then exits."""
    cmd = [
        str(ratarmount),
        "--no-mount",
        "-r",
        "--index-minimum-file-count",
        "0",
        "--index-folders",
        str(index_dir),
        *files,
    ]
    with open(log, "w") as out:
        r = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=INDEX_TIMEOUT,
            check=False,
        )
    written = list(index_dir.glob("*.index.sqlite"))
    if r.returncode != 0 or len(written) != len(files):
        text = Path(log).read_text(errors="replace")
        raise RuntimeError(
            f"ratarmount --no-mount exit {r.returncode}, {len(written)} of {len(files)} "
            f"indexes written: {text.strip()[-1000:]}"
        )


def ensure_ratarmount(arg: Path | None, workdir: Path, log) -> Path:
    """The ratarmount to run: `arg`, or one installed into `workdir`/venv-ratarmount."""
    if arg is not None:
        if not os.access(arg, os.X_OK):
            raise RuntimeError(f"--ratarmount {arg} is not executable")
        return arg
    venv = workdir / "venv-ratarmount"
    exe = venv / "bin" / "ratarmount"
    marker = venv / f".installed-{RATARMOUNT_REQUIREMENT}"
    if not marker.exists():
        log(f"installing {RATARMOUNT_REQUIREMENT} into {venv} (pip) ...")
        shutil.rmtree(venv, ignore_errors=True)
        base_python = getattr(sys, "_base_executable", None) or "python3"
        for cmd in (
            [base_python, "-m", "venv", str(venv)],
            [str(venv / "bin" / "pip"), "install", "--quiet", RATARMOUNT_REQUIREMENT],
        ):
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
            if r.returncode != 0:
                raise RuntimeError(
                    f"could not install ratarmount ({' '.join(cmd)}): {r.stderr.strip()[-800:]}; "
                    "install it yourself and pass --ratarmount PATH"
                )
        marker.touch()
    if not (ctypes.util.find_library("fuse3") or ctypes.util.find_library("fuse")):
        log("ratarmount needs libfuse: apt-get install -y libfuse3-3 fuse3 ...")
        r = subprocess.run(
            ["apt-get", "install", "-y", "-q", "libfuse3-3", "fuse3"],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if r.returncode != 0:
            raise RuntimeError(
                "ratarmount needs libfuse 2 or 3 (Debian: apt-get install libfuse3-3 fuse3): "
                + r.stderr.strip()[-500:]
            )
    return exe


# --- page cache -----------------------------------------------------------------------------


def warm(files) -> None:
    for _ in range(2):  # the second pass proves it all fits
        subprocess.run(["cat", *map(str, files)], stdout=subprocess.DEVNULL, check=True)


def prepare_cache(cache: str, files) -> None:
    """cold, or warm (also before the untimed epochs of "reread")."""
    if cache == "cold":
        pr.drop_caches()
    else:
        warm(files)


# --- workers: one measured process each ------------------------------------------------------


def worker(spec: dict) -> dict:
    kind = spec["kind"]
    if kind.startswith(("zm-", "copy-")):
        return worker_zarrmount(spec)
    if kind.startswith("wds-"):
        return worker_webdataset(spec)
    if kind == "rt-rnd":
        return worker_ratarmount(spec)
    raise ValueError(kind)


class ZarrReader:
    """zarr-python: `arr[start:stop]` (a batch) or `arr[i]` (one sample) of every feature."""

    def __init__(self, root: Path):
        import zarr

        group = zarr.open_group(root, mode="r")
        self.arrays = [(name, group[name]) for name in FEATURES]

    def batch(self, start: int, stop: int, split: dict) -> list:
        got = []
        for name, arr in self.arrays:
            t = time.perf_counter()
            got.append(arr[start:stop])
            split[name] += time.perf_counter() - t
        return got

    def one(self, i: int, split: dict) -> list:
        got = []
        for name, arr in self.arrays:
            t = time.perf_counter()
            got.append(arr[i])
            split[name] += time.perf_counter() - t
        return got


class FileReader:
    """The same values from the chunk files themselves, read with plain `open`/`readinto`
    into numpy arrays (numcodecs for strings): what the mount costs without zarr-python.
    Sequentially it keeps the last chunk of each array; one sample at a time it reads every
    chunk again, as ratarmount's case reads every member file."""

    def __init__(self, root: Path, keep: bool):
        from numcodecs import VLenUTF8

        self.root, self.keep, self.vlen = root, keep, VLenUTF8()
        self.meta, self.last = {}, {}
        for name in FEATURES:
            meta = json.loads((root / name / "zarr.json").read_bytes())
            enc = meta["chunk_key_encoding"]
            codecs = [c["name"] for c in meta["codecs"]]
            if enc["name"] != "default" or enc["configuration"]["separator"] != "/":
                raise AssertionError(f"{name}: chunk keys {enc}")
            if codecs not in (["bytes"], ["vlen-utf8"]):
                raise AssertionError(f"{name}: codecs {codecs}: not plain bytes")
            chunk = meta["chunk_grid"]["configuration"]["chunk_shape"]
            if codecs == ["bytes"]:
                little = meta["codecs"][0].get("configuration", {}).get("endian") != "big"
                dtype = np.dtype(meta["data_type"]).newbyteorder("<" if little else ">")
            else:
                dtype = None
            self.meta[name] = (chunk, dtype, len(chunk) - 1)

    def chunk(self, name: str, c: int) -> np.ndarray:
        chunk, dtype, rest = self.meta[name]
        path = self.root / name / "c" / "/".join([str(c)] + ["0"] * rest)
        if dtype is None:  # strings: size unknown, read to the end
            with open(path, "rb") as f:
                return self.vlen.decode(f.read())
        # Fixed size: one read into the array (`f.read()` would also ask for the end of
        # the file, a second round trip through FUSE for every chunk).
        out = np.empty(chunk, dtype)
        with open(path, "rb", buffering=0) as f:
            n = f.readinto(memoryview(out).cast("B"))
        if n != out.nbytes:
            raise AssertionError(f"{path}: {n} bytes of {out.nbytes}")
        return out

    def item(self, name: str, i: int, split: dict):
        t = time.perf_counter()
        n = self.meta[name][0][0]
        c = i // n
        last = self.last.get(name)
        if last is None or last[0] != c:
            last = (c, self.chunk(name, c))
            if self.keep:
                self.last[name] = last
        split[name] += time.perf_counter() - t
        return last[1][i - c * n]

    def batch(self, start: int, stop: int, split: dict) -> list:
        return [[self.item(name, i, split) for i in range(start, stop)] for name in FEATURES]

    def one(self, i: int, split: dict) -> list:
        return [self.item(name, i, split) for name in FEATURES]


def read_sequential(reader, n: int, batch: int, checker: Checker, split: dict) -> None:
    """Every sample in order, `batch` samples per call."""
    for start in range(0, n, batch):
        stop = min(n, start + batch)
        got = reader.batch(start, stop, split)
        for j, i in enumerate(range(start, stop)):
            checker.sample(i, key_of(i), *(values[j] for values in got))


def read_random(reader, order: list, checker: Checker, split: dict) -> None:
    for i in order:
        checker.sample(i, key_of(i), *reader.one(i, split))


def check_keys(root: Path) -> str:
    """The `key` array against the generator's keys (after the clock: the readers above take
    the key from the index, as a training loop would)."""
    import zarr

    keys = zarr.open_group(root, mode="r")["key"][...].tolist()
    if keys != [key_of(i) for i in range(len(keys))]:
        raise AssertionError("the key array differs from the samples' keys")
    return f"{len(keys)} keys"


def worker_zarrmount(spec: dict) -> dict:
    """zm-seq / zm-files-seq: mount + open + every sample in order; zm-rnd / zm-files-rnd:
    mount and open before the clock, then the permutation one sample at a time; copy-*: the
    same with zarr-python on a plain local copy of the mount's tree (no FUSE, no mount)."""
    binary, mnt, log = Path(spec["binary"]), Path(spec["mountpoint"]), Path(spec["log"])
    info, cache, kind = spec["set"], spec["cache"], spec["kind"]
    mode = kind.rsplit("-", 1)[1]
    copy = kind.startswith("copy-")

    def reader_of(root):
        return FileReader(root, keep=mode == "seq") if "-files-" in kind else ZarrReader(root)

    def run(root, checker, split, order):
        if mode == "seq":
            read_sequential(reader_of(root), len(order), spec["batch"], checker, split)
        else:
            read_random(reader_of(root), order, checker, split)

    opts = [f"index_dir={spec['index_dir']}", *spec["zm_options"]]
    # Warm-up: the same calls on a one-shard set (its own index dir), then unmount.
    wu = spec["warmup"]
    wmnt = mnt.parent / "warmup"
    wmnt.mkdir()
    try:
        pr.start_mount(binary, wu["url"], wmnt, mnt.parent / "warmup.log", options=opts)
        scratch = collections.defaultdict(float)
        run(wmnt, Checker(), scratch, list(range(wu["samples"]))[:: 1 if mode == "seq" else -1])
        check_keys(wmnt)
    finally:
        unmount(wmnt)
    checker, split, metrics, checks = Checker(), collections.defaultdict(float), {}, {}
    root = Path(spec["copy"]) if copy else mnt
    files = copy_files(root) if copy else info["files"]
    index_line = "0 indexed"
    try:
        with Watchdog(mnt, WORKER_TIMEOUT - 60):
            if mode == "seq":
                prepare_cache(cache, files)
                daemon0 = 0.0
                cpu0 = pr._cpu()
                t0 = time.perf_counter()
                if not copy:
                    pr.start_mount(binary, info["url"], mnt, log, options=opts)
                split["mount"] = time.perf_counter() - t0
                t = time.perf_counter()
                reader = reader_of(root)
                split["open"] = time.perf_counter() - t
                read_sequential(reader, info["samples"], spec["batch"], checker, split)
                metrics[f"{kind}-{cache}"] = time.perf_counter() - t0
            else:
                t0 = time.perf_counter()
                if not copy:
                    pr.start_mount(binary, info["url"], mnt, log, options=opts)
                reader = reader_of(root)
                split["mount + open (before the clock)"] = time.perf_counter() - t0
                prepare_cache(cache, files)
                if cache == "reread":  # two untimed epochs first, as a training loop would
                    for _ in range(2):
                        read_random(
                            reader, spec["order"], Checker(), collections.defaultdict(float)
                        )
                daemon0 = sum(pr._proc_cpu(p) for p in pr.daemon_pids(mnt))
                cpu0 = pr._cpu()
                t0 = time.perf_counter()
                read_random(reader, spec["order"], checker, split)
                metrics[f"{kind}-{cache}"] = (time.perf_counter() - t0) / len(spec["order"])
            cpu = {
                "client": pr._cpu() - cpu0,
                "daemon": sum(pr._proc_cpu(p) for p in pr.daemon_pids(mnt)) - daemon0,
            }
            keys = check_keys(root)
            if not copy:
                index_line = index_log_line(log)
    finally:
        unmount(mnt)
    if "0 indexed" not in index_line:
        raise AssertionError(f"the mount indexed shards again: {index_line!r}")
    checks[f"{kind} {cache}"] = f"{checker.summary()}, {keys} equal"
    return {
        "metrics": metrics,
        "split": {f"{kind}-{cache}": dict(split)},
        "cpu": {f"{kind}-{cache}": cpu},
        "checks": checks,
    }


def copy_files(root: Path) -> list[Path]:
    return [p for name in FEATURES for p in sorted((root / name).rglob("*")) if p.is_file()]


def index_log_line(log: Path) -> str:
    """zarrmount's `webdataset <name>: R shards from the index cache, I indexed` line."""
    with contextlib.suppress(OSError):
        for line in Path(log).read_text(errors="replace").splitlines():
            m = re.search(r"webdataset \S+: \d+ shards from the index cache, \d+ indexed", line)
            if m:
                return m.group(0)
    return ""


def wds_sample(checker: Checker, s: dict, i: int) -> None:
    checker.sample(i, s["__key__"], s["image.npy"], s["boxes.npy"], s["cls"], s["txt"])


def worker_webdataset(spec: dict) -> dict:
    """wds-seq: WebDataset(all shards).decode() iterated; wds-rnd: for each sample of the
    subset, WebDataset(its shard).select(key == k).decode(), first sample taken."""
    import webdataset as wds

    info, cache, kind = spec["set"], spec["cache"], spec["kind"]

    def sequential(files, checker):
        ds = wds.WebDataset(files, shardshuffle=False).decode()
        for i, s in enumerate(ds):
            wds_sample(checker, s, i)
        return i + 1

    def fetch(files, per_shard, i, checker):
        key = key_of(i)
        ds = wds.WebDataset(files[i // per_shard], shardshuffle=False)
        ds = ds.select(lambda s: s["__key__"] == key).decode()
        for s in ds:
            wds_sample(checker, s, i)
            return
        raise AssertionError(f"webdataset did not find {key}")

    wu = spec["warmup"]
    sequential(wu["files"], Checker())
    for i in range(wu["samples"]):
        fetch(wu["files"], wu["per_shard"], i, Checker())
    checker = Checker()
    prepare_cache(cache, info["files"])
    cpu0 = pr._cpu()
    t0 = time.perf_counter()
    if kind == "wds-seq":
        n = sequential(info["files"], checker)
        if n != info["samples"]:
            raise AssertionError(f"webdataset yielded {n} samples")
        metrics = {f"wds-seq-{cache}": time.perf_counter() - t0}
    else:
        order = spec["order"][: spec["wds_random"]]
        for i in order:
            fetch(info["files"], info["per_shard"], i, checker)
        metrics = {f"wds-rnd-{cache}": (time.perf_counter() - t0) / len(order)}
    return {
        "metrics": metrics,
        "cpu": {f"{kind}-{cache}": {"client": pr._cpu() - cpu0, "daemon": 0.0}},
        "checks": {f"{kind} {cache}": checker.summary()},
    }


def ratar_read(root: Path, info: dict, i: int, checker: Checker) -> None:
    shard = Path(info["files"][i // info["per_shard"]]).name
    base = f"{root}/{shard}/{key_of(i)}"
    image = np.load(base + ".image.npy")
    boxes = np.load(base + ".boxes.npy")
    with open(base + ".cls", "rb") as f:
        cls = int(f.read())
    with open(base + ".txt", "rb") as f:
        txt = f.read().decode()
    checker.sample(i, key_of(i), image, boxes, cls, txt)


def worker_ratarmount(spec: dict) -> dict:
    """rt-rnd: ratarmount -r of the shard folder (indexes built before), mounted before the
    clock; then every sample of the permutation read as its 4 member files."""
    mnt, info, cache = Path(spec["mountpoint"]), spec["set"], spec["cache"]
    ratarmount = Path(spec["ratarmount"])
    wu = spec["warmup"]
    wmnt = mnt.parent / "warmup"
    wmnt.mkdir()
    try:
        start_ratarmount(
            ratarmount, Path(spec["ratar_warmup_index"]), wu["folder"], wmnt, mnt.parent / "wu.log"
        )
        for i in range(wu["samples"]):
            ratar_read(wmnt, wu, i, Checker())
    finally:
        unmount(wmnt)
    checker = Checker()
    try:
        with Watchdog(mnt, WORKER_TIMEOUT - 60):
            t0 = time.perf_counter()
            out = start_ratarmount(
                ratarmount, Path(spec["ratar_index"]), info["folder"], mnt, Path(spec["log"])
            )
            mount = time.perf_counter() - t0
            loaded = out.count("Successfully loaded offset dictionary")
            if loaded != info["shards"]:
                raise AssertionError(f"ratarmount loaded {loaded} indexes: {out[-500:]}")
            prepare_cache(cache, info["files"])
            if cache == "reread":  # two untimed epochs first, as for zarrmount
                for _ in range(2):
                    for i in spec["order"]:
                        ratar_read(mnt, info, i, Checker())
            daemon0 = sum(pr._proc_cpu(p) for p in pr.daemon_pids(mnt, "ratarmount"))
            cpu0 = pr._cpu()
            t0 = time.perf_counter()
            for i in spec["order"]:
                ratar_read(mnt, info, i, checker)
            per = (time.perf_counter() - t0) / len(spec["order"])
            cpu = {
                "client": pr._cpu() - cpu0,
                "daemon": sum(pr._proc_cpu(p) for p in pr.daemon_pids(mnt, "ratarmount")) - daemon0,
            }
    finally:
        unmount(mnt)
    return {
        "metrics": {f"rt-rnd-{cache}": per},
        "split": {f"rt-rnd-{cache}": {"mount": mount}},
        "cpu": {f"rt-rnd-{cache}": cpu},
        "checks": {f"rt-rnd {cache}": checker.summary()},
    }


# --- the driver -----------------------------------------------------------------------------


def run_worker(kind: str, cache: str, ctx: dict, run: int) -> dict:
    base = Path(tempfile.mkdtemp(dir=ctx["session"], prefix=f"{kind}-{cache}-"))
    mnt = base / "mnt"
    mnt.mkdir()
    spec = {
        "kind": kind,
        "cache": cache,
        "set": ctx["train"],
        "warmup": ctx["warmup"],
        "binary": str(ctx["binary"]),
        "index_dir": str(ctx["zm_index"]),
        "ratarmount": str(ctx["ratarmount"]),
        "ratar_index": str(ctx["rt_index"]),
        "ratar_warmup_index": str(ctx["rt_warmup_index"]),
        "copy": str(ctx["copy"]),
        "zm_options": ctx["zm_options"],
        "mountpoint": str(mnt),
        "log": str(base / "daemon.log"),
        "batch": ctx["batch"],
        "order": ctx["order"],
        "wds_random": ctx["wds_random"],
    }
    spec_path = base / "spec.json"
    spec_path.write_text(json.dumps(spec))
    ok = False
    try:
        try:
            res = pr.spawn_worker(Path(__file__), spec_path, WORKER_TIMEOUT)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            tail = ""
            if (base / "daemon.log").exists():
                tail = " | daemon log: " + " / ".join(
                    (base / "daemon.log").read_text(errors="replace").splitlines()[-3:]
                )
            raise RuntimeError(f"{kind} {cache} run {run}: {e}{tail}") from None
        ok = True
        return res
    finally:
        for m in (mnt, base / "warmup"):
            unmount(m)
        if pr.mounts_under(base):
            print(f"WARNING: {base} is still mounted", file=sys.stderr)
        elif ok:  # a failed run's spec and logs stay for a look
            shutil.rmtree(base, ignore_errors=True)


def run_cat(files, cache: str) -> dict:
    prepare_cache(cache, files)
    t0 = time.perf_counter()
    subprocess.run(["cat", *map(str, files)], stdout=subprocess.DEVNULL, check=True)
    return {"metrics": {f"cat-{cache}": time.perf_counter() - t0}}


def time_zarrmount_index(ctx: dict, info: dict, index_dir: Path, kept: bool) -> tuple[float, str]:
    """Mount + read the root zarr.json (the index is built before zarrmount returns);
    checks the daemon's index line and the sample count."""
    base = Path(tempfile.mkdtemp(dir=ctx["session"], prefix=f"idx-{info['name']}-"))
    mnt, log = base / "mnt", base / "zarrmount.log"
    mnt.mkdir()
    try:
        with Watchdog(mnt, INDEX_TIMEOUT):
            t0 = time.perf_counter()
            opts = [f"index_dir={index_dir}", *ctx["zm_options"]]
            pr.start_mount(ctx["binary"], info["url"], mnt, log, options=opts)
            meta = json.loads((mnt / "zarr.json").read_bytes())
            seconds = time.perf_counter() - t0
    finally:
        unmount(mnt)
    line = index_log_line(log)
    want = (
        f"{info['shards']} shards from the index cache, 0"
        if kept
        else f"0 shards from the index cache, {info['shards']} indexed"
    )
    if want not in line:
        raise AssertionError(f"zarrmount index line {line!r}, expected {want!r}")
    got = meta["attributes"]["n_samples"]
    if got != info["samples"]:
        raise AssertionError(f"zarrmount shows {got} samples of {info['samples']}")
    if not pr.mounts_under(base):
        shutil.rmtree(base, ignore_errors=True)
    return seconds, line


def copy_mount_tree(ctx: dict) -> None:
    """A plain directory copy of the mounted main set (`cp -r`), for zarr-python without FUSE."""
    mnt = ctx["session"] / "copy-mnt"
    mnt.mkdir()
    try:
        opts = [f"index_dir={ctx['zm_index']}", *ctx["zm_options"]]
        pr.start_mount(ctx["binary"], ctx["train"]["url"], mnt, ctx["session"] / "copy.log", opts)
        subprocess.run(["cp", "-r", f"{mnt}/.", str(ctx["copy"])], check=True, timeout=1800)
    finally:
        unmount(mnt)


def run_index(ctx: dict, info: dict) -> dict:
    """The index cases of one set, warm page cache; every build into a fresh directory."""
    name = info["name"]
    warm(info["files"])
    metrics, checks = {}, {}
    fresh = Path(tempfile.mkdtemp(dir=ctx["session"], prefix="zm-index-"))
    try:
        metrics[f"idx-zm-{name}"], line = time_zarrmount_index(ctx, info, fresh, kept=False)
        checks[f"zarrmount index {name}"] = line
        metrics[f"idx-zm-kept-{name}"], line = time_zarrmount_index(ctx, info, fresh, kept=True)
        checks[f"zarrmount index kept {name}"] = line
    finally:
        shutil.rmtree(fresh, ignore_errors=True)
    t0 = time.perf_counter()
    for f in info["files"]:
        subprocess.run(["tar", "-tvf", f], stdout=subprocess.DEVNULL, check=True, timeout=600)
    metrics[f"idx-tar-{name}"] = time.perf_counter() - t0
    fresh = Path(tempfile.mkdtemp(dir=ctx["session"], prefix="rt-index-"))
    try:
        t0 = time.perf_counter()
        index_ratarmount(ctx["ratarmount"], fresh, info["files"], fresh / "ratarmount.log")
        metrics[f"idx-rt-{name}"] = time.perf_counter() - t0
    finally:
        shutil.rmtree(fresh, ignore_errors=True)
    return {"metrics": metrics, "checks": checks}


def fmt_seconds(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    return f"{s * 1000:.2f} ms" if s < 1 else f"{s:.2f} s"


def report_rows(results: dict, ctx: dict) -> tuple[list[str], dict]:
    med = {k: statistics.median(v) for k, v in results.items() if v}
    rows = ["| case | median | min–max | rate | × anchor |", "|---|---:|---:|---:|---:|"]
    titles = {
        "index-train": "index, main set: {shards} shards, {gib} GiB, {members:,} members; "
        "warm page cache",
        "index-small": "index, small-member set: {shards} shards, {gib} GiB, {members:,} members; "
        "warm page cache",
        "sequential": "sequential read, main set: all {samples:,} samples",
        "shuffled": "shuffled read, main set: per sample, one at a time",
    }
    for group, metrics in GROUPS.items():
        info = ctx["small"] if group == "index-small" else ctx["train"]
        if info is None:
            continue
        nbytes = ctx["bytes"][info["name"]]
        rows.append(
            "| **"
            + titles[group].format(
                shards=info["shards"],
                gib=f"{nbytes / pr.GIB:.2f}",
                members=info["members"],
                samples=info["samples"],
            )
            + "** | | | | |"
        )
        anchor = med.get(metrics[0][0])
        for key, label in metrics:
            v = results.get(key)
            if not v:
                rows.append(f"| {label} | n/a | | | |")
                continue
            if group == "shuffled":
                rate = f"{1 / med[key]:,.0f} samples/s"
                if key.startswith("wds-"):
                    label += f" (first {ctx['wds_random']} samples)"
            else:
                rate = f"{nbytes / med[key] / 1e9:.2f} GB/s"
                if group.startswith("index"):
                    rate += f", {info['members'] / med[key] / 1e6:.2f} M members/s"
            ratio = f"{med[key] / anchor:.2f}" if anchor else "–"
            rows.append(
                f"| {label} | {fmt_seconds(med[key])} | "
                f"{fmt_seconds(min(v))}–{fmt_seconds(max(v))} | {rate} | {ratio} |"
            )
    return rows, med


def goal_lines(med: dict, ctx: dict) -> list[str]:
    out = []

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    for name in ("train", "small"):
        s = med.get(f"idx-zm-{name}")
        if s:
            rate = ctx["bytes"][name] / s / 1e9
            out.append(
                f"- indexing ≥ 1 GB/s from a warm page cache, {name} set: **{rate:.2f} GB/s** "
                f"({verdict(rate >= 1)}; mount and the root `zarr.json` included)"
            )
    for cache in ("cold", "warm"):
        cat, zm = med.get(f"cat-{cache}"), med.get(f"zm-seq-{cache}")
        if cat and zm:
            out.append(
                f"- sequential read within 1.25× of `cat`, {cache}: **{zm / cat:.2f}×** "
                f"({verdict(zm / cat <= 1.25)})"
            )
    for cache in ("cold", "warm", "reread"):
        zm = med.get(f"zm-rnd-{cache}")
        w, rt = med.get(f"wds-rnd-{cache}"), med.get(f"rt-rnd-{cache}")
        if zm and w:
            out.append(
                f"- shuffled ≥ 10× faster than webdataset, {cache}: **{w / zm:.0f}×** "
                f"({verdict(w / zm >= 10)})"
            )
        if zm and rt:
            out.append(
                f"- shuffled faster than ratarmount, {cache}: **{rt / zm:.2f}×** "
                f"({verdict(rt / zm > 1)})"
            )
    return out


def versions(binary: Path, shown: Path, ratarmount: Path) -> dict:
    v = pr.versions(binary, shown)
    v.pop("yt", None)
    try:
        v["webdataset"] = __import__("webdataset").__version__
    except ImportError:
        v["webdataset"] = "not installed"
    r = subprocess.run(
        [str(ratarmount), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    m = re.search(r"ratarmount\s+(\S+)", r.stdout)
    v["ratarmount"] = m.group(1) if m else "?"
    m = re.search(r"ratarmountcore\s+(\S+)", r.stdout)
    if m:
        v["ratarmountcore"] = m.group(1)
    tar = subprocess.run(["tar", "--version"], capture_output=True, text=True, check=False)
    v["tar"] = (tar.stdout.splitlines() or ["?"])[0]
    return v


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--runs", type=int, default=3, help="repetitions of every case (default 3)")
    ap.add_argument("--workdir", type=Path, default=pr.DEFAULT_WORKDIR)
    ap.add_argument("--bin", type=Path, default=pr.DEFAULT_BIN, help="zarrmount binary")
    ap.add_argument(
        "--ratarmount",
        type=Path,
        help=f"ratarmount executable (default: {RATARMOUNT_REQUIREMENT} installed into a venv "
        "in the work dir)",
    )
    ap.add_argument("--shards", type=int, help="shards of the main set (default 32)")
    ap.add_argument("--per-shard", type=int, help="samples per shard of the main set (256)")
    ap.add_argument(
        "--no-small", action="store_true", help="skip the small-member set (index cases)"
    )
    ap.add_argument("--batch", type=int, default=32, help="samples per zarr call, sequential")
    ap.add_argument("--random", type=int, default=2000, help="samples read shuffled (2000)")
    ap.add_argument(
        "--wds-random", type=int, default=40, help="of those, how many webdataset streams to (40)"
    )
    ap.add_argument(
        "--mount-options", default="", help="more -o options for zarrmount (e.g. prefetch=off)"
    )
    ap.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="'-' for none")
    ap.add_argument("--keep", action="store_true", help="keep shard sets this run generated")
    ap.add_argument("--generate-only", action="store_true", help="make the shard sets, then stop")
    ap.add_argument("--worker-spec", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker_spec:
        res = worker(json.loads(Path(args.worker_spec).read_text()))
        print("RESULT " + json.dumps(res), flush=True)
        return 0
    if os.geteuid() != 0:
        print("needs root (drop_caches and FUSE mounts)", file=sys.stderr)
        return 2

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    args.workdir.mkdir(parents=True, exist_ok=True)
    workdir = args.workdir.resolve()
    train = set_info(workdir, "train", args.shards, args.per_shard)
    small = None if args.no_small else set_info(workdir, "small")
    generated = [info for info in (train, small) if info and ensure_set(info, log)]
    if args.generate_only:
        return 0
    if not os.access(args.bin, os.X_OK):
        print(f"no zarrmount at {args.bin}: cargo build --release", file=sys.stderr)
        return 2
    session = Path(tempfile.mkdtemp(dir=workdir, prefix="wds-session-"))
    try:
        ratarmount = ensure_ratarmount(args.ratarmount, workdir, log)
        binary = session / "zarrmount"  # a private copy: a rebuild cannot mix binaries
        shutil.copy2(args.bin, binary)
        warmup = set_info(session, "train", 1, 8)  # session/wds/train-000000.tar
        write_set(warmup, lambda _msg: None)
        order = np.random.default_rng(7).permutation(train["samples"])[: args.random]
        ctx = {
            "session": session,
            "binary": binary,
            "ratarmount": ratarmount,
            "train": train,
            "small": small,
            "warmup": warmup,
            "batch": args.batch,
            "order": [int(i) for i in order],
            "wds_random": min(args.wds_random, args.random),
            "bytes": {info["name"]: set_bytes(info) for info in (train, small) if info},
            "zm_index": session / "zm-index",
            "rt_index": session / "rt-index",
            "rt_warmup_index": session / "rt-warmup-index",
            "copy": session / "zarr-copy",
            "zm_options": [o for o in args.mount_options.split(",") if o],
        }
        # The indexes the read cases use: built once here, kept for the session.
        for d in ("zm_index", "rt_index", "rt_warmup_index"):
            ctx[d].mkdir()
        time_zarrmount_index(ctx, train, ctx["zm_index"], kept=False)
        index_ratarmount(ratarmount, ctx["rt_index"], train["files"], session / "rt-index.log")
        index_ratarmount(ratarmount, ctx["rt_warmup_index"], warmup["files"], session / "rt-wu.log")
        log("copying the mount's tree to a local directory (the zarr-python rows without FUSE) ...")
        copy_mount_tree(ctx)
        vers = versions(binary, args.bin, ratarmount)
        results = collections.defaultdict(list)
        cpu = collections.defaultdict(list)
        split = collections.defaultdict(list)
        checks, failures = {}, []
        for run in range(1, args.runs + 1):
            steps = [("index", info) for info in (train, small) if info]
            steps += [("cat", c) for c in ("cold", "warm")]
            steps += [("worker", w) for w in WORKERS]
            for step, what in steps:
                try:
                    if step == "index":
                        res = run_index(ctx, what)
                    elif step == "cat":
                        res = run_cat(train["files"], what)
                    else:
                        res = run_worker(*what, ctx, run)
                except (RuntimeError, AssertionError, OSError, subprocess.SubprocessError) as e:
                    failures.append(f"{step} {what if step != 'index' else what['name']}: {e}")
                    log(f"  FAILED {failures[-1]}")
                    continue
                for key, seconds in res["metrics"].items():
                    results[key].append(seconds)
                checks.update(res.get("checks", {}))
                for key, c in res.get("cpu", {}).items():
                    cpu[key].append(c)
                for key, s in res.get("split", {}).items():
                    split[key].append(s)
                shown = "  ".join(f"{k} {fmt_seconds(s)}" for k, s in res["metrics"].items())
                log(f"run {run} {shown}")
        rows, med = report_rows(results, ctx)
        report = report_text(args, ctx, vers, rows, med, cpu, split, checks, failures)
        print(report)
        if str(args.results) != "-":
            args.results.parent.mkdir(parents=True, exist_ok=True)
            args.results.write_text(report)
            log(f"written to {args.results}")
        return 1 if failures else 0
    finally:
        for m in pr.mounts_under(workdir):
            unmount(m)
        if pr.mounts_under(workdir):
            log(f"WARNING: still mounted: {pr.mounts_under(workdir)}")
        else:
            shutil.rmtree(session, ignore_errors=True)
        if not args.keep:
            for info in generated:
                shutil.rmtree(info["folder"], ignore_errors=True)


def median_of(dicts: list, key: str) -> float:
    return statistics.median(d.get(key, 0.0) for d in dicts)


def report_text(args, ctx, vers, rows, med, cpu, split, checks, failures) -> str:
    train, small = ctx["train"], ctx["small"]
    sets = [
        (
            f"- main set: `{train['name']}-{{000000..{train['shards'] - 1:06d}}}.tar`, "
            f"{train['shards']} shards × {train['per_shard']} samples, "
            f"{ctx['bytes']['train']:,} bytes, written by webdataset's `ShardWriter` (a PAX header "
            "before every member); per sample `image.npy` float32 256 × 256 (256 KiB), "
            "`boxes.npy` int32 16 × 4, `cls`, `txt` (17–170 bytes)"
        ),
    ]
    if small:
        sets.append(
            f"- small-member set: `{small['name']}-…tar`, {small['shards']} shards × "
            f"{small['per_shard']} samples, {ctx['bytes']['small']:,} bytes; per sample "
            "`label.npy` int16 (4,), `cls`, `txt`"
        )
    report = [
        "# WebDataset read benchmark",
        "",
        f"`benches/wds_read.py --runs {args.runs}"
        + (f" --mount-options {args.mount_options}" if args.mount_options else "")
        + f"`, {datetime.datetime.now():%Y-%m-%d %H:%M}",
        "",
        f"- machine: {pr.machine()}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in vers.items()),
        *sets,
        (
            "- medians over the runs, cases interleaved round by round; each reader a fresh "
            "process with its imports and a warm-up done before the clock; cold = `sync; echo 3 "
            "> /proc/sys/vm/drop_caches` just before the clock, warm = every shard read before; "
            "zarrmount and ratarmount read cases use an index built at the start"
        ),
        (
            f"- sequential zarrmount: mount + `zarr.open_group` + `arr[i:i+{ctx['batch']}]` of "
            f"{', '.join(f'`{a}`' for a in FEATURES)} for every batch"
        ),
        (
            f"- shuffled: the first {len(ctx['order'])} samples of a fixed random permutation of "
            "all samples, each read alone (zarrmount `arr[i]` of the same 4 arrays; ratarmount "
            "`np.load` of `<mnt>/<shard>.tar/<key>.image.npy` and `.boxes.npy`, reads of `.cls` and "
            "`.txt`); mount and open before the clock; webdataset on the first "
            f"{ctx['wds_random']} of them: `WebDataset(shard).select(key == k).decode()`, the "
            "shard known, per-sample time (extrapolate: × samples)"
        ),
        "",
        *rows,
        "",
        "Goals:",
        *goal_lines(med, ctx),
        "",
        (
            "Where the time goes (medians; client = the reading process, all threads; daemon = "
            "zarrmount or ratarmount, during the measured part):"
        ),
    ]
    for key, v in sorted(cpu.items()):
        line = (
            f"- {key}: CPU client {median_of(v, 'client'):.2f} s, "
            f"daemon {median_of(v, 'daemon'):.2f} s"
        )
        if split.get(key):
            parts = sorted({p for s in split[key] for p in s})
            line += "; " + ", ".join(f"{p} {fmt_seconds(median_of(split[key], p))}" for p in parts)
        report.append(line)
    report += [
        "",
        "Value checks, all passed: " + "; ".join(f"{k}: {v}" for k, v in sorted(checks.items())),
    ]
    if failures:
        report += ["", "Failures:", *[f"- {f}" for f in failures]]
    return "\n".join(report) + "\n"


if __name__ == "__main__":
    sys.exit(main())
