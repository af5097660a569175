#!/usr/bin/env python3
"""Plotfile read benchmark: zarrmount against `cat` and yt on one generated AMReX plotfile.

    .venv/bin/python benches/plotfile_read.py [--size-gib 1] [--runs 3] [--workdir DIR] [--keep]

1. Generates (or reuses) a 3-D, two-level AMReX plotfile of at least `--size-gib` GiB, written
   with numpy in the layout of /work/shared/formats/plotfile.md (Header HyperCLaw-V1.1, VisMF
   v1 `Cell_H`, `Cell_D_<5 digits>` files with one `FAB ...` line per box). Level 0 is 256^3
   cells in 64^3 boxes spread over 4 files; level 1 (ratio 2) is 32 boxes of 64^3 around an
   off-centre point; the number of fields is what reaches the size (6 for 1 GiB).
2. Reads every field of every level, each case `--runs` times, the cases interleaved round by
   round so that a noisy neighbour hurts all of them alike:
     cat cold / warm       `cat` of every Cell_D file to /dev/null: the ceiling
     numpy cold            np.fromfile of every FAB record (reference: Python, no FUSE)
     zarrmount cold / warm fresh mount, zarr-python opens the root, `arr[...]` of every array
     zarrmount boxes       same, but reads every box (`arr[box]`, 8 at a time), as yt and
       cold / warm         any AMR-aware reader do: the case the goals are measured on
     zarr copy cold / warm the `arr[...]` (and `arr[box]`) cases on a plain local copy of
                           the mount's tree: what zarr-python costs without FUSE and the daemon
     yt cold / warm        yt.load + every field of every grid
   "cold" is `sync; echo 3 > /proc/sys/vm/drop_caches` just before; "warm" has every file of the
   plotfile read just before. Each measured case runs in a fresh interpreter (a worker of this
   script) whose imports are done before the clock starts.
3. Prints a Markdown table (median, min-max, GiB/s, ratio to the cold `cat`) and the goals, and
   writes them to benches/results/plotfile_read.md with the machine and the versions.

Every zarrmount case checks its values afterwards: the bytes of every box of a few arrays must
hash equal to the bytes in the Cell_D files, array sums must match, and uncovered level-1
cells must be the fill value. A broken reader cannot produce a fast, wrong number.

Needs root (drop_caches, FUSE). Every mount is unmounted in a `finally` (umount, umount -l,
then the daemon is killed) and /proc/mounts is checked at the end.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import datetime
import hashlib
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_BIN = Path(os.environ.get("ZARRMOUNT_BIN", REPO / "target" / "release" / "zarrmount"))
DEFAULT_WORKDIR = Path(tempfile.gettempdir()) / "zarrmount-bench"
DEFAULT_RESULTS = REPO / "benches" / "results" / "plotfile_read.md"
GIB = 1 << 30
MIB = 1 << 20

# Layout of the benchmark plotfile. GENERATOR_VERSION changes whenever the bytes would.
GENERATOR_VERSION = 1
L0_CELLS = 256  # level-0 domain is L0_CELLS^3
BOX = 64  # max_grid_size: every box of both levels is BOX^3
L1_BOXES = 32  # level-1 boxes (1/16 of the refined domain, 64 MiB per field)
NFILES = 4  # Cell_D files per level
NRANKS = 16  # writer "ranks": boxes go to ranks in SFC-like runs, ranks to files round robin
FIELD_NAMES = ["density", "xmom", "ymom", "zmom", "rho_E", "Temp", "pressure", "magvel"]
F64_DESCRIPTOR = "((8, (64 11 52 0 1 12 0 1023)),(8, (8 7 6 5 4 3 2 1)))"

CASES = [  # (key, label); the order inside one round
    ("cat-cold", "cat Cell_D > /dev/null, cold (ceiling)"),
    ("numpy-cold", "numpy fromfile of every FAB, cold (reference)"),
    ("zarrmount-cold", "zarrmount + zarr `arr[...]`, cold"),
    ("zarrmount-boxes-cold", "zarrmount + zarr `arr[box]` per box, cold"),
    ("yt-cold", "yt 4.4 load + every field of every grid, cold"),
    ("cat-warm", "cat Cell_D > /dev/null, warm"),
    ("zarrmount-warm", "zarrmount + zarr `arr[...]`, warm"),
    ("zarrmount-boxes-warm", "zarrmount + zarr `arr[box]` per box, warm"),
    ("zarrmount-boxes-reread", "zarrmount + zarr `arr[box]` per box, re-read (third pass)"),
    ("zarrcopy-cold", "zarr `arr[...]` of a local copy of the mount (no FUSE), cold"),
    ("zarrcopy-warm", "zarr `arr[...]` of a local copy of the mount (no FUSE), warm"),
    ("zarrcopy-boxes-cold", "zarr `arr[box]` per box of a local copy (no FUSE), cold"),
    ("zarrcopy-boxes-warm", "zarr `arr[box]` per box of a local copy (no FUSE), warm"),
    ("yt-warm", "yt 4.4 load + every field of every grid, warm"),
]
CASE_KEYS = [k for k, _ in CASES]
WORKER_TIMEOUT = 1800  # seconds for one measured case, worker start included
MOUNT_TIMEOUT = 60  # seconds for `zarrmount` to return once mounted
UMOUNT_TIMEOUT = 20
BOX_THREADS = 8  # boxes read at a time in the per-box case


# --- the plotfile layout -------------------------------------------------------------------


def plan_layout(n0: int, box: int, n_l1: int, nfields: int, nfiles: int, nranks: int) -> dict:
    """Boxes, files and byte offsets of a two-level 3-D plotfile (pure arithmetic, no I/O).

    Boxes are listed in BoxArray order (x fastest). Each box goes to a writer rank (runs of
    consecutive boxes, as a space-filling-curve distribution gives), each rank to a file
    (`rank % nfiles`), and each file holds its ranks' boxes in rank order, so the offsets in
    `Cell_H` interleave between files the way AMReX's NFiles writer makes them.
    """
    if n0 % box:
        raise ValueError("the domain must be a multiple of the box size")
    names = [FIELD_NAMES[i] if i < len(FIELD_NAMES) else f"field_{i}" for i in range(nfields)]
    nb0 = n0 // box
    l0 = [(i, j, k) for k in range(nb0) for j in range(nb0) for i in range(nb0)]
    # Level 1: the n_l1 box positions of the refined domain nearest an off-centre point.
    nb1 = 2 * n0 // box
    centre = np.array([0.37, 0.52, 0.61]) * nb1
    cand = [(i, j, k) for k in range(nb1) for j in range(nb1) for i in range(nb1)]
    dist = [float(np.sum((np.array(c) + 0.5 - centre) ** 2)) for c in cand]
    chosen = sorted(range(len(cand)), key=lambda n: (dist[n], n))[:n_l1]
    l1 = [cand[n] for n in sorted(chosen)]  # back into BoxArray order
    levels = []
    for lev, (ijk, ncell) in enumerate([(l0, n0), (l1, 2 * n0)]):
        npts = box**3
        boxes = []
        for b, (i, j, k) in enumerate(ijk):
            lo = [i * box, j * box, k * box]
            hi = [v + box - 1 for v in lo]
            rank = b * nranks // len(ijk)
            boxes.append({"index": b, "lo": lo, "hi": hi, "rank": rank, "file_no": rank % nfiles})
        offsets = {}
        for fno in range(nfiles):
            off = 0
            for bx in sorted(
                (x for x in boxes if x["file_no"] == fno), key=lambda x: (x["rank"], x["index"])
            ):
                head = fab_header(bx["lo"], bx["hi"], nfields)
                bx["file"] = f"Cell_D_{fno:05d}"
                bx["offset"] = off
                bx["header_len"] = len(head)
                off += len(head) + nfields * npts * 8
            offsets[f"Cell_D_{fno:05d}"] = off
        levels.append(
            {
                "level": lev,
                "domain": [[0, 0, 0], [ncell - 1] * 3],
                "dx": 1.0 / ncell,
                "boxes": boxes,
                "files": {name: size for name, size in offsets.items() if size},
            }
        )
    return {
        "generator_version": GENERATOR_VERSION,
        "params": {
            "n0": n0,
            "box": box,
            "n_l1": n_l1,
            "nfields": nfields,
            "nfiles": nfiles,
            "nranks": nranks,
        },
        "fields": names,
        "levels": levels,
        "data_bytes": sum(s for lv in levels for s in lv["files"].values()),
    }


def fab_header(lo, hi, ncomp: int) -> bytes:
    box = f"(({lo[0]},{lo[1]},{lo[2]}) ({hi[0]},{hi[1]},{hi[2]}) (0,0,0))"
    return f"FAB {F64_DESCRIPTOR}{box} {ncomp}\n".encode()


def fab_values(level: int, lo, hi, comp: int, dx: float) -> np.ndarray:
    """One component of one box, shaped (nz, ny, nx): C order of that is x fastest."""
    x, y, z = ((np.arange(lo[d], hi[d] + 1) + 0.5) * dx for d in range(3))
    a = comp + 1
    v = (10.0 * a + 0.25 * level) + np.sin(2 * np.pi * a * x)[None, None, :]
    v = v + 0.5 * np.cos(2 * np.pi * (a % 3 + 1) * y)[None, :, None] + (a * z)[:, None, None]
    return v + _ramp(len(z), len(y), len(x))  # makes every cell of a box distinct


_ramps: dict = {}


def _ramp(nz, ny, nx):
    key = (nz, ny, nx)
    if key not in _ramps:
        _ramps[key] = (np.arange(nz * ny * nx, dtype=np.float64) * 1e-9).reshape(key)
    return _ramps[key]


def g17(v: float) -> str:
    return format(v, ".17g")


def write_plotfile(out: Path, layout: dict) -> None:
    """Write the plotfile `layout` describes into `out` (which must not exist)."""
    names = layout["fields"]
    nf = len(names)
    levels = layout["levels"]
    out.mkdir(parents=True)
    time_, steps = 0.5, [100, 200]
    for lv in levels:
        ldir = out / f"Level_{lv['level']}"
        ldir.mkdir()
        stats = {}
        by_file: dict = {}
        for bx in lv["boxes"]:
            by_file.setdefault(bx["file"], []).append(bx)
        for fname, bxs in by_file.items():
            with open(ldir / fname, "wb") as f:
                for bx in sorted(bxs, key=lambda x: x["offset"]):
                    assert f.tell() == bx["offset"]
                    f.write(fab_header(bx["lo"], bx["hi"], nf))
                    mins, maxs = [], []
                    for c in range(nf):
                        v = fab_values(lv["level"], bx["lo"], bx["hi"], c, lv["dx"])
                        v.astype("<f8", copy=False).tofile(f)
                        mins.append(float(v.min()))
                        maxs.append(float(v.max()))
                    stats[bx["index"]] = (mins, maxs)
                assert f.tell() == lv["files"][fname]
        (ldir / "Cell_H").write_text(cell_h(lv, nf, stats))
    (out / "Header").write_text(plot_header(layout, time_, steps))
    (out / "job_info").write_text(
        "==============================================================================\n"
        " amrex job information (synthetic: zarrmount benches/plotfile_read.py)\n"
        "==============================================================================\n"
        f"generator version: {GENERATOR_VERSION}\nAMReX version: synthetic\n"
    )


def cell_h(lv: dict, nf: int, stats: dict) -> str:
    """VisMF header, version 1 (per-FAB min/max), as VisMF::Header operator<< writes it."""
    boxes = lv["boxes"]
    n = len(boxes)
    s = ["1\n", "1\n", f"{nf}\n", "0\n", f"({n} 0\n"]
    for bx in boxes:
        lo, hi = bx["lo"], bx["hi"]
        s.append(f"(({lo[0]},{lo[1]},{lo[2]}) ({hi[0]},{hi[1]},{hi[2]}) (0,0,0))\n")
    s.append(")\n")
    s.append(f"{n}\n")
    for bx in boxes:
        s.append(f"FabOnDisk: {bx['file']} {bx['offset']}\n")
    s.append("\n")
    for which in (0, 1):
        s.append(f"{n},{nf}\n")
        for bx in boxes:
            s.append("".join(f"{v:.17e}," for v in stats[bx["index"]][which]) + "\n")
        s.append("\n")
    return "".join(s)


def plot_header(layout: dict, time_: float, steps) -> str:
    names, levels = layout["fields"], layout["levels"]
    s = ["HyperCLaw-V1.1\n", f"{len(names)}\n"]
    s += [f"{n}\n" for n in names]
    s += ["3\n", f"{g17(time_)}\n", f"{len(levels) - 1}\n", "0 0 0 \n", "1 1 1 \n"]
    s.append("".join("2 " for _ in levels[1:]) + "\n")
    s.append(
        "".join(
            f"(({','.join(map(str, lv['domain'][0]))}) ({','.join(map(str, lv['domain'][1]))}) (0,0,0)) "
            for lv in levels
        )
        + "\n"
    )
    s.append("".join(f"{steps[lv['level']]} " for lv in levels) + "\n")
    for lv in levels:
        s.append(" ".join(g17(lv["dx"]) for _ in range(3)) + " \n")
    s += ["0\n", "0\n"]
    for lv in levels:
        s.append(f"{lv['level']} {len(lv['boxes'])} {g17(time_)}\n")
        s.append(f"{steps[lv['level']]}\n")
        for bx in lv["boxes"]:
            for d in range(3):
                s.append(f"{g17(bx['lo'][d] * lv['dx'])} {g17((bx['hi'][d] + 1) * lv['dx'])}\n")
        s.append(f"Level_{lv['level']}/Cell\n")
    return "".join(s)


def plotfile_ok(out: Path, manifest: Path, layout: dict) -> bool:
    """True if `out` holds the plotfile `layout` describes (same parameters, files of the right size)."""
    try:
        old = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return False
    if old.get("layout") != layout or not (out / "Header").is_file():
        return False
    for lv in layout["levels"]:
        for name, size in lv["files"].items():
            p = out / f"Level_{lv['level']}" / name
            if not p.is_file() or p.stat().st_size != size:
                return False
    return True


def check_with_yt(out: Path, layout: dict) -> str:
    """Load the plotfile with yt; compare a few grids with the generator's values, exactly."""
    import yt

    yt.set_log_level(40)
    ds = yt.load(str(out))
    cls = type(ds).__name__
    if cls != "AMReXDataset":
        raise AssertionError(f"yt chose {cls}, not AMReXDataset")
    grids = ds.index.grids
    nboxes = [len(lv["boxes"]) for lv in layout["levels"]]
    if len(grids) != sum(nboxes) or ds.max_level != len(nboxes) - 1:
        raise AssertionError(f"yt sees {len(grids)} grids, max level {ds.max_level}")
    if list(ds.domain_dimensions) != [layout["params"]["n0"]] * 3:
        raise AssertionError(f"yt domain {ds.domain_dimensions}")
    fields = sorted(f for t, f in ds.field_list if t == "boxlib")
    if fields != sorted(layout["fields"]):
        raise AssertionError(f"yt fields {fields}")
    checked = 0
    for lv in layout["levels"]:
        first = sum(nboxes[: lv["level"]])
        for bx in (lv["boxes"][0], lv["boxes"][-1], lv["boxes"][len(lv["boxes"]) // 2]):
            g = grids[first + bx["index"]]
            if list(g.start_index) != bx["lo"]:
                raise AssertionError(f"grid {g.id} starts at {g.start_index}, expected {bx['lo']}")
            for c in dict.fromkeys((0, len(layout["fields"]) - 1)):
                got = np.asarray(g[("boxlib", layout["fields"][c])])  # (nx, ny, nz)
                want = fab_values(lv["level"], bx["lo"], bx["hi"], c, lv["dx"]).transpose()
                if not np.array_equal(got, want):
                    raise AssertionError(
                        f"yt values differ: level {lv['level']} box {bx['index']} comp {c}"
                    )
                checked += 1
            g.clear_data()
    return f"yt {yt.__version__}: {cls}, {len(grids)} grids, {checked} grid fields bit-equal"


def ensure_plotfile(workdir: Path, size_gib: float, log) -> tuple[Path, dict, bool]:
    """The benchmark plotfile in `workdir`, generated unless a matching one is there.

    Returns (path, layout, generated_now)."""
    per_field = (L0_CELLS**3 + L1_BOXES * BOX**3) * 8
    nfields = max(1, math.ceil(size_gib * GIB / per_field))
    layout = plan_layout(L0_CELLS, BOX, L1_BOXES, nfields, NFILES, NRANKS)
    out = workdir / f"plt_bench_{size_gib:g}gib"
    return out, layout, ensure_layout(out, layout, log)


def ensure_layout(out: Path, layout: dict, log) -> bool:
    """The plotfile `layout` describes at `out` (with its manifest `out`.json alongside),
    generated unless a matching one is there; True if generated now. Also used by
    engine_read.py for plotfiles of other box sizes."""
    manifest = out.with_name(out.name + ".json")
    desc = f"{layout['data_bytes'] / GIB:.3f} GiB of Cell_D, {len(layout['fields'])} fields"
    if plotfile_ok(out, manifest, layout):
        log(f"reusing {out} ({desc})")
        return False
    if out.exists():
        log(f"removing stale {out}")
        shutil.rmtree(out)
    manifest.unlink(missing_ok=True)
    log(f"generating {out}: {desc} ...")
    t = time.perf_counter()
    write_plotfile(out, layout)
    os.sync()
    log(f"  written in {time.perf_counter() - t:.1f} s")
    log("  " + check_with_yt(out, layout))
    manifest.write_text(json.dumps({"layout": layout}, indent=1))
    return True


def data_files(plotfile: Path, layout: dict) -> list[Path]:
    return [
        plotfile / f"Level_{lv['level']}" / n
        for lv in layout["levels"]
        for n in sorted(lv["files"])
    ]


# --- expected values, from the bytes on disk ----------------------------------------------


def checked_arrays(layout: dict) -> list[tuple[int, str]]:
    """The arrays whose values every zarrmount run verifies: first and last field per level."""
    f = layout["fields"]
    return [(lv["level"], name) for lv in layout["levels"] for name in dict.fromkeys([f[0], f[-1]])]


def expected_values(plotfile: Path, layout: dict) -> dict:
    """Per checked array: a hash and a sum for every box, read straight from the Cell_D bytes."""
    nf = len(layout["fields"])
    exp = {}
    for lev, name in checked_arrays(layout):
        lv = layout["levels"][lev]
        c = layout["fields"].index(name)
        boxes = []
        for bx in lv["boxes"]:
            npts = math.prod(h - lo + 1 for lo, h in zip(bx["lo"], bx["hi"]))
            path = plotfile / f"Level_{lev}" / bx["file"]
            with open(path, "rb") as f:
                f.seek(bx["offset"])
                line = f.readline()
                if line != fab_header(bx["lo"], bx["hi"], nf):
                    raise AssertionError(
                        f"{path}@{bx['offset']}: unexpected FAB line {line[:80]!r}"
                    )
                v = np.fromfile(f, dtype="<f8", count=npts, offset=c * npts * 8)
            boxes.append(
                {
                    "lo": bx["lo"],
                    "hi": bx["hi"],
                    "sha": hashlib.sha1(v.tobytes()).hexdigest(),
                    "sum": float(v.sum()),
                }
            )
        exp[f"level_{lev}/{name}"] = {"level": lev, "domain": lv["domain"], "boxes": boxes}
    return exp


# --- mounts --------------------------------------------------------------------------------


def build_bench(name: str, log) -> Path | None:
    """The `benches/<name>.rs` binary, built (or found up to date) by cargo."""
    log(f"building benches/{name}.rs (cargo bench --no-run) ...")
    r = subprocess.run(
        ["cargo", "bench", "--locked", "--bench", name, "--no-run", "--message-format=json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    for line in r.stdout.splitlines():
        with contextlib.suppress(ValueError):
            msg = json.loads(line)
            if (
                msg.get("reason") == "compiler-artifact"
                and msg["target"]["name"] == name
                and msg.get("executable")
            ):
                return Path(msg["executable"])
    log(f"  cargo failed: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
    return None


def mount_points() -> list[str]:
    with open("/proc/mounts") as f:
        return [line.split()[1].encode().decode("unicode_escape") for line in f]


def mounts_under(base) -> list[str]:
    base = str(base)
    return [m for m in mount_points() if m == base or m.startswith(base + "/")]


def daemon_pids(mnt, program: str = "zarrmount") -> list[int]:
    """Processes running `program` (our zarrmount daemons by default; for a Python script
    such as ratarmount, its path follows the interpreter) with the mountpoint `mnt` on
    their command line."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                argv = [os.fsdecode(a) for a in (entry / "cmdline").read_bytes().split(b"\0")]
            except OSError:
                continue
            if any(program in Path(a).name for a in argv[:2]) and str(mnt) in argv[1:]:
                pids.append(int(entry.name))
    return pids


def unmount(mnt) -> None:
    """umount, then umount -l, then kill the daemon: never leaves `mnt` mounted if it can help it."""
    for cmd in (["umount"], ["umount", "-l"]):
        for m in sorted(mounts_under(mnt), reverse=True):
            with contextlib.suppress(subprocess.TimeoutExpired):
                subprocess.run([*cmd, m], capture_output=True, timeout=UMOUNT_TIMEOUT, check=False)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = daemon_pids(mnt)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 5
        while pids and daemon_pids(mnt) and time.monotonic() < deadline:
            time.sleep(0.05)
    for m in sorted(mounts_under(mnt), reverse=True):  # a killed daemon leaves a dead mount
        with contextlib.suppress(subprocess.TimeoutExpired):
            subprocess.run(
                ["umount", "-l", m], capture_output=True, timeout=UMOUNT_TIMEOUT, check=False
            )


def start_mount(binary: Path, plotfile, mnt: Path, log: Path, options=()) -> None:
    """Mount in the background: `zarrmount` returns once the mount is live. `plotfile` is
    any source (a path, or a string such as `raw://FILE`); `options` are more `-o` options."""
    r = subprocess.run(
        [str(binary), "-o", ",".join([f"log={log}", *options]), str(plotfile), str(mnt)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=MOUNT_TIMEOUT,
        check=False,
    )
    if r.returncode != 0 or str(mnt) not in mount_points():
        raise RuntimeError(
            f"zarrmount failed (exit {r.returncode}): {r.stderr.strip() or r.stdout.strip()}"
        )


class Watchdog:
    """Kills the daemon of `mnt` after `seconds`, so that a read stuck in it returns."""

    def __init__(self, mnt, seconds):
        self.timer = threading.Timer(seconds, self._fire, args=(mnt,))
        self.timer.daemon = True
        self.fired = False

    def _fire(self, mnt):
        self.fired = True
        for pid in daemon_pids(mnt):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def __enter__(self):
        self.timer.start()
        return self

    def __exit__(self, *exc):
        self.timer.cancel()


def call_with_timeout(fn, seconds):
    """fn() in a thread; raises TimeoutError if it has not returned after `seconds`."""
    box = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        raise TimeoutError(f"no answer after {seconds} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def probe_zarrmount(binary: Path, plotfile: Path, workdir: Path) -> tuple[bool, str]:
    """Does `binary` show the plotfile (a `level_0` at the mount root)?"""
    if not os.access(binary, os.X_OK):
        return False, f"no executable at {binary}"
    base = Path(tempfile.mkdtemp(dir=workdir, prefix="probe-"))
    mnt = base / "mnt"
    mnt.mkdir()
    try:
        try:
            start_mount(binary, plotfile, mnt, base / "zarrmount.log")
            names = sorted(call_with_timeout(lambda: os.listdir(mnt), 20))
        except (RuntimeError, OSError, TimeoutError, subprocess.TimeoutExpired) as e:
            return False, str(e)
        return "level_0" in names, "mount root: " + " ".join(names)
    finally:
        unmount(mnt)
        if not mounts_under(base):
            shutil.rmtree(base, ignore_errors=True)


def copy_mount_tree(binary: Path, plotfile: Path, session: Path) -> Path:
    """A plain directory copy of the mounted tree (absent chunks stay absent)."""
    dest = session / "zarr_copy"
    mnt = session / "copy-mnt"
    mnt.mkdir()
    try:
        start_mount(binary, plotfile, mnt, session / "copy-zarrmount.log")
        subprocess.run(["cp", "-r", f"{mnt}/.", str(dest)], check=True, timeout=600)
    finally:
        unmount(mnt)
    return dest


# --- page cache ----------------------------------------------------------------------------


def drop_caches() -> None:
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def warm_files(plotfile: Path) -> None:
    """Read every file of the plotfile, so that the page cache holds all of it."""
    files = [p for p in sorted(plotfile.rglob("*")) if p.is_file()]
    subprocess.run(["cat", *map(str, files)], stdout=subprocess.DEVNULL, check=True)


def prepare_cache(cache: str, plotfile: Path) -> None:
    if cache == "cold":
        drop_caches()
    else:
        warm_files(plotfile)
        warm_files(plotfile)  # the second pass proves it all fits


# --- workers: one measured case in a fresh interpreter -------------------------------------


def worker(args) -> dict:
    """Runs one case; returns {'seconds': ..., 'phases': {...}, ...}."""
    spec = json.loads(Path(args.worker_spec).read_text())
    kind, cache = spec["case"].rsplit("-", 1)
    plotfile = Path(spec["plotfile"])
    layout = spec["layout"]
    if kind == "numpy":
        return worker_numpy(plotfile, layout, cache)
    if kind == "yt":
        return worker_yt(plotfile, layout, cache, Path(spec["tiny_plotfile"]))
    if kind in ("zarrmount", "zarrmount-boxes"):
        return worker_zarr(spec, plotfile, layout, cache, boxes=kind == "zarrmount-boxes")
    if kind in ("zarrcopy", "zarrcopy-boxes"):
        copy = Path(spec["zarr_copy"])
        return worker_zarr(spec, plotfile, layout, cache, boxes=kind == "zarrcopy-boxes", copy=copy)
    raise ValueError(kind)


def worker_numpy(plotfile: Path, layout: dict, cache: str) -> dict:
    fabs = sorted(
        ((lv["level"], bx) for lv in layout["levels"] for bx in lv["boxes"]),
        key=lambda t: (t[0], t[1]["file"], t[1]["offset"]),
    )
    nf = len(layout["fields"])
    prepare_cache(cache, plotfile)
    nbytes = 0
    t0, cpu0 = time.perf_counter(), _cpu()
    for lev, bx in fabs:
        npts = math.prod(h - lo + 1 for lo, h in zip(bx["lo"], bx["hi"]))
        with open(plotfile / f"Level_{lev}" / bx["file"], "rb") as f:
            v = np.fromfile(f, dtype="<f8", count=nf * npts, offset=bx["offset"] + bx["header_len"])
        nbytes += v.nbytes
    dt = time.perf_counter() - t0
    return {"seconds": dt, "cpu": {"client": _cpu() - cpu0}, "value_bytes": nbytes}


def worker_yt(plotfile: Path, layout: dict, cache: str, tiny: Path) -> dict:
    import yt

    yt.set_log_level(40)
    # Warm-up on a tiny plotfile: imports every module the frontend and its IO use.
    wds = yt.load(str(tiny))
    for g in wds.index.grids[:2]:
        g[("boxlib", "density")]
        g.clear_data()
    del wds, g
    prepare_cache(cache, plotfile)
    nbytes = 0
    t0, cpu0 = time.perf_counter(), _cpu()
    ds = yt.load(str(plotfile))
    fields = [(t, f) for t, f in ds.field_list if t == "boxlib"]
    grids = ds.index.grids
    t1 = time.perf_counter()
    for g in grids:
        for fld in fields:
            nbytes += g[fld].nbytes  # np.fromfile of this field's bytes of this grid
            g.clear_data()  # memory stays one grid field
    t2, cpu2 = time.perf_counter(), _cpu()
    want = sum(len(layout["fields"]) * BOX**3 * 8 for lv in layout["levels"] for _ in lv["boxes"])
    if nbytes != want:
        raise AssertionError(f"yt read {nbytes} bytes of values, expected {want}")
    return {
        "seconds": t2 - t0,
        "phases": {"load+index": t1 - t0, "read": t2 - t1},
        "cpu": {"client": cpu2 - cpu0},
        "value_bytes": nbytes,
    }


def worker_zarr(
    spec: dict, plotfile: Path, layout: dict, cache: str, boxes: bool, copy: Path | None = None
) -> dict:
    """zarr-python reads the mount (fresh), or with `copy` a plain local copy of its tree."""
    import warnings

    import zarr

    warnings.filterwarnings("ignore", message="Consolidated metadata")
    binary, mnt = Path(spec["binary"]), Path(spec["mountpoint"])
    expected = json.loads(Path(spec["expected"]).read_text())
    # Warm-up on a local store: imports every module the read path uses.
    with tempfile.TemporaryDirectory() as tmp:
        g = zarr.open_group(zarr.storage.LocalStore(tmp), mode="w")
        a = g.create_group("level_0").create_array(
            "f", shape=(4, 4), chunks=(2, 2), dtype="f8", fill_value=float("nan"), compressors=None
        )
        a[:2, :2] = 1.0
        zarr.consolidate_metadata(tmp)
        zarr.open_group(zarr.storage.LocalStore(tmp, read_only=True), mode="r")["level_0"]["f"][...]
    prepare_cache(cache, copy or plotfile)
    phases = {"mount": 0.0, "open": 0.0}
    nbytes = 0
    checks = {}
    extra = []
    # The per-box case reads BOX_THREADS boxes at a time, as a parallel AMR reader would
    # (zarr's own default is 10 chunk reads in flight within one call).
    pool = concurrent.futures.ThreadPoolExecutor(BOX_THREADS)
    try:
        with Watchdog(mnt, spec["timeout"]) as wd:
            t0, cpu0, check_cpu = time.perf_counter(), _cpu(), 0.0
            if copy is None:
                opts = spec.get("mount_options", [])
                start_mount(binary, plotfile, mnt, Path(spec["log"]), opts)
                if cache == "reread":
                    # Two untimed passes over every chunk file: the second stores their pages
                    # in the kernel's page cache; the clock starts on the live mount after.
                    for _ in range(2):
                        read_tree(mnt)
                    t0, cpu0 = time.perf_counter(), _cpu()
            t1 = time.perf_counter()
            store = zarr.storage.LocalStore(copy or mnt, read_only=True)
            root = zarr.open_group(store, mode="r")
            levels = {lv["level"]: root[f"level_{lv['level']}"] for lv in layout["levels"]}
            t2 = time.perf_counter()
            phases["mount"], phases["open"] = t1 - t0, t2 - t1
            for lv in layout["levels"]:
                lev = lv["level"]
                grp = levels[lev]
                t = time.perf_counter()
                names = sorted(grp.array_keys())
                phases["open"] += time.perf_counter() - t
                missing = [f for f in layout["fields"] if f not in names]
                if missing:
                    raise AssertionError(f"level_{lev} lacks arrays {missing}; it has {names}")
                extra += [f"level_{lev}/{n}" for n in names if n not in layout["fields"]]
                todo = names if not boxes else layout["fields"]
                key = f"level_{lev}"
                phases.setdefault(key, 0.0)
                for name in todo:
                    t = time.perf_counter()
                    arr = grp[name]
                    if boxes and name in layout["fields"]:
                        zyx = _axes(arr)
                        got = dict(
                            pool.map(
                                lambda bx, a=arr, o=zyx: (tuple(bx["lo"]), a[_box_slice(bx, o)]),
                                lv["boxes"],
                            )
                        )
                        dt = time.perf_counter() - t
                        nbytes += sum(v.nbytes for v in got.values())
                        if f"{key}/{name}" in expected:
                            c = _cpu()
                            checks[f"{key}/{name}"] = _check_boxes(
                                expected[f"{key}/{name}"], got, zyx
                            )
                            check_cpu += _cpu() - c
                    else:
                        data = arr[...]
                        dt = time.perf_counter() - t
                        nbytes += data.nbytes
                        if f"{key}/{name}" in expected:
                            c = _cpu()
                            checks[f"{key}/{name}"] = _check_full(
                                expected[f"{key}/{name}"], data, arr
                            )
                            check_cpu += _cpu() - c
                        del data
                    phases[key] += dt
            total = sum(phases.values())
            cpu = {"client": _cpu() - cpu0 - check_cpu}
            hwm = 0
            if copy is None:
                cpu["daemon"] = sum(_proc_cpu(pid) for pid in daemon_pids(mnt))
                hwm = max((vm_hwm(pid) for pid in daemon_pids(mnt)), default=0)
        if wd.fired:
            raise TimeoutError("watchdog killed the daemon")
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        unmount(mnt)
    if mounts_under(mnt):
        raise RuntimeError(f"{mnt} still mounted")
    return {
        "seconds": total,
        "phases": phases,
        "cpu": cpu,
        "value_bytes": nbytes,
        "checks": checks,
        "extra_arrays": extra,
        "daemon_hwm": hwm,
    }


def read_tree(root: Path) -> None:
    """Reads every file under `root` to its end."""
    for path in sorted(root.rglob("*")):
        if path.is_file():
            with open(path, "rb", buffering=0) as f:
                while f.read(1 << 20):
                    pass


def _cpu() -> float:
    """CPU seconds (user + system) of this process, all threads."""
    t = os.times()
    return t.user + t.system


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of process `pid` so far."""
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def vm_hwm(pid: int) -> int:
    """Peak resident memory (VmHWM) of process `pid` so far, in bytes; 0 if unknown."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _axes(arr) -> bool:
    """True if the array is (z, y, x), False if (x, y, z); anything else is an error."""
    names = tuple(arr.metadata.dimension_names or ())
    if names in (("z", "y", "x"), ()):
        return True
    if names == ("x", "y", "z"):
        return False
    raise AssertionError(f"unexpected dimension_names {names}")


def _box_slice(bx, zyx: bool):
    sl = [slice(lo, hi + 1) for lo, hi in zip(bx["lo"], bx["hi"])]  # x, y, z
    return tuple(reversed(sl)) if zyx else tuple(sl)


def _box_bytes(v: np.ndarray, zyx: bool) -> bytes:
    v = v if zyx else v.transpose()
    return np.ascontiguousarray(v, dtype="<f8").tobytes()


def _check_boxes(exp: dict, got: dict, zyx: bool) -> str:
    bad = [
        b["lo"]
        for b in exp["boxes"]
        if hashlib.sha1(_box_bytes(got[tuple(b["lo"])], zyx)).hexdigest() != b["sha"]
    ]
    if bad:
        raise AssertionError(
            f"{len(bad)} of {len(exp['boxes'])} boxes differ from the Cell_D bytes, e.g. at {bad[0]}"
        )
    return f"{len(exp['boxes'])} boxes bit-equal"


def _check_full(exp: dict, data: np.ndarray, arr) -> str:
    zyx = _axes(arr)
    n = [h + 1 for h in exp["domain"][1]]
    shape = tuple(reversed(n)) if zyx else tuple(n)
    if data.shape != shape:
        raise AssertionError(f"shape {data.shape}, expected {shape}")
    covered = np.zeros(data.shape, dtype=bool)
    bad = []
    for b in exp["boxes"]:
        sl = _box_slice(b, zyx)
        covered[sl] = True
        if hashlib.sha1(_box_bytes(data[sl], zyx)).hexdigest() != b["sha"]:
            bad.append(b["lo"])
    if bad:
        raise AssertionError(
            f"{len(bad)} of {len(exp['boxes'])} boxes differ from the Cell_D bytes, e.g. at {bad[0]}"
        )
    total, want = float(np.sum(data, where=covered)), math.fsum(b["sum"] for b in exp["boxes"])
    if not math.isclose(total, want, rel_tol=1e-12):
        raise AssertionError(f"sum {total!r} differs from the Cell_D sum {want!r}")
    rest = data[~covered]
    fill = arr.metadata.fill_value
    fill_ok = np.isnan(rest).all() if np.isnan(fill) else (rest == fill).all()
    if not fill_ok:
        raise AssertionError(f"uncovered cells hold data (fill value {fill})")
    return f"{len(exp['boxes'])} boxes bit-equal, sum {total:.6g} = Cell_D sum, {rest.size} uncovered cells = fill {fill}"


# --- the driver ----------------------------------------------------------------------------


def spawn_worker(script: Path, spec_path: Path, timeout: float, python=None) -> dict:
    """Runs `script --worker-spec SPEC` in a fresh interpreter (`python`, default this one);
    returns its last RESULT."""
    # One BLAS thread: numpy's OpenBLAS threads spin after each call, and no case here needs
    # them (they took about 5 % of a zarr-python pass's CPU, on either side of a ratio).
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    r = subprocess.run(
        [str(python or sys.executable), str(script), "--worker-spec", str(spec_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
    if r.returncode != 0 or not lines:
        err = (r.stderr.strip().splitlines() or ["?"])[-1]
        raise RuntimeError(f"worker exit {r.returncode}: {err}")
    return json.loads(lines[-1][len("RESULT ") :])


def run_worker(case: str, ctx: dict, run: int) -> dict:
    base = Path(tempfile.mkdtemp(dir=ctx["workdir"], prefix=f"{case}-"))
    mnt = base / "mnt"
    mnt.mkdir()
    spec = {
        "case": case,
        "plotfile": str(ctx["plotfile"]),
        "layout": ctx["layout"],
        "binary": str(ctx["binary"]),
        "mountpoint": str(mnt),
        "log": str(base / "zarrmount.log"),
        "expected": str(ctx["expected_path"]),
        "tiny_plotfile": str(ctx["tiny"]),
        "zarr_copy": str(ctx.get("zarr_copy")),
        "timeout": WORKER_TIMEOUT - 60,
    }
    spec_path = base / "spec.json"
    spec_path.write_text(json.dumps(spec))
    ok = False
    try:
        try:
            res = spawn_worker(Path(__file__), spec_path, WORKER_TIMEOUT)
        except RuntimeError as e:
            log_tail = ""
            if (base / "zarrmount.log").exists():
                log_tail = " | zarrmount log: " + " / ".join(
                    (base / "zarrmount.log").read_text().splitlines()[-3:]
                )
            raise RuntimeError(f"{case} run {run}: {e}{log_tail}") from None
        ok = True
        return res
    finally:
        unmount(mnt)
        if mounts_under(base):
            print(f"WARNING: {base} is still mounted", file=sys.stderr)
        elif ok:  # a failed run's spec and zarrmount log stay for a look
            shutil.rmtree(base, ignore_errors=True)


def run_cat(files: list[Path], cache: str) -> dict:
    if cache == "cold":
        drop_caches()
    else:
        subprocess.run(["cat", *map(str, files)], stdout=subprocess.DEVNULL, check=True)
    t0 = time.perf_counter()
    subprocess.run(["cat", *map(str, files)], stdout=subprocess.DEVNULL, check=True)
    return {"seconds": time.perf_counter() - t0}


def versions(binary: Path, shown: Path) -> dict:
    """Package versions, the repository's revision, and the binary run (a copy of `shown`)."""
    v = {"python": platform.python_version(), "numpy": np.__version__}
    for mod in ("zarr", "yt"):
        try:
            v[mod] = __import__(mod).__version__
        except ImportError:
            v[mod] = "not installed"
    git = subprocess.run(
        ["git", "-C", str(REPO), "describe", "--always", "--dirty", "--exclude", "*"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    untracked = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=normal", "src"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if untracked and not git.endswith("-dirty"):
        git += "-dirty"
    v["zarrmount"] = git or "?"
    if binary.exists():
        st = binary.stat()
        v["zarrmount_binary"] = (
            f"{shown} built {datetime.datetime.fromtimestamp(st.st_mtime):%Y-%m-%d %H:%M}, "
            f"sha256 {hashlib.sha256(binary.read_bytes()).hexdigest()[:12]}"
        )
    return v


MAX_PAGES_LIMIT = Path("/proc/sys/fs/fuse/max_pages_limit")
# What zarrmount's default max_read (4 MiB) asks the kernel for: 1024 pages and one more, for
# a read into a buffer that is not page-aligned.
FUSE_PAGES = 1025


@contextlib.contextmanager
def fuse_request_pages(pages: int = FUSE_PAGES):
    """Raises the kernel's cap on the pages of one FUSE request to `pages` for the run, as the
    README advises ("Requests over 1 MiB"), and puts it back after; yields a line for the report."""
    try:
        before = int(MAX_PAGES_LIMIT.read_text())
    except (OSError, ValueError):
        yield "fs.fuse.max_pages_limit: not on this kernel (FUSE requests of at most 1 MiB)"
        return
    if before >= pages:
        yield f"fs.fuse.max_pages_limit: {before}"
        return
    MAX_PAGES_LIMIT.write_text(str(pages))
    try:
        yield f"fs.fuse.max_pages_limit: {pages} for the run (README, 'Requests over 1 MiB'; it was {before})"
    finally:
        MAX_PAGES_LIMIT.write_text(str(before))


def machine() -> str:
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} CPUs ({cpu}), {mem / GIB:.1f} GiB RAM, Linux {platform.release()}"


def fmt_table(results: dict, data_bytes: int, runs: int) -> tuple[list[str], dict]:
    med = {k: statistics.median(v) for k, v in results.items() if v}
    ceiling = med.get("cat-cold")
    rows = ["| case | median s | min–max s | GiB/s | × cold cat |", "|---|---:|---:|---:|---:|"]
    for key, label in CASES:
        if key not in results:
            continue
        v = results[key]
        if not v:
            rows.append(f"| {label} | n/a | | | |")
            continue
        ratio = f"{med[key] / ceiling:.2f}" if ceiling else "–"
        rows.append(
            f"| {label} | {med[key]:.2f} | {min(v):.2f}–{max(v):.2f} | "
            f"{data_bytes / GIB / med[key]:.2f} | {ratio} |"
        )
    return rows, med


def goal_lines(med: dict) -> list[str]:
    """The issue's goals, measured on what yt does too: every field of every grid (box).
    `arr[...]` of a sparse level also makes zarr-python fill every uncovered cell with NaN
    (6.75 GiB of output for 1.1 GiB of data here), which is the client's work, not reading."""
    out = []
    zb, cc, yc = med.get("zarrmount-boxes-cold"), med.get("cat-cold"), med.get("yt-cold")
    if zb and cc:
        r = zb / cc
        out.append(
            f"- zarrmount cold (every box) / cat cold = **{r:.2f}×** (goal ≤ 1.25×: {'met' if r <= 1.25 else 'NOT met'})"
        )
    if zb and yc:
        r = yc / zb
        out.append(
            f"- yt cold / zarrmount cold (every box) = **{r:.1f}×** (goal ≥ 3×: {'met' if r >= 3 else 'NOT met'})"
        )
    zbw, yw = med.get("zarrmount-boxes-warm"), med.get("yt-warm")
    if zbw and yw:
        out.append(f"- yt warm / zarrmount warm (every box) = {yw / zbw:.1f}×")
    zl = med.get("zarrcopy-boxes-warm")
    if zbw and zl:
        out.append(
            f"- zarrmount warm / zarr on a local copy, warm (every box) = {zbw / zl:.2f}× (the cost of FUSE and the daemon)"
        )
    zr = med.get("zarrmount-boxes-reread")
    if zr and yw:
        out.append(f"- yt warm / zarrmount re-read (every box) = {yw / zr:.1f}×")
    if zr and zl:
        out.append(
            f"- zarrmount re-read / zarr on a local copy, warm (every box) = {zr / zl:.2f}× (chunk files from the page cache)"
        )
    # What zarr-python alone needs, with no FUSE and no daemon: the floor of any mount.
    zlc = med.get("zarrcopy-boxes-cold")
    for copy, what in ((zlc, "cold"), (zl, "warm")):
        if copy and cc:
            out.append(
                f"- zarr on a local copy, {what} (every box) / cat cold = {copy / cc:.2f}× (the client alone, no mount)"
            )
    zc = med.get("zarrmount-cold")
    if zc and cc:
        out.append(
            f"- `arr[...]` of whole levels, zarrmount cold / cat cold = {zc / cc:.2f}× (NaN fill in the client)"
        )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--size-gib", type=float, default=1.0, help="least size of the plotfile's data (default 1)"
    )
    ap.add_argument("--runs", type=int, default=3, help="repetitions of every case (default 3)")
    ap.add_argument(
        "--workdir", type=Path, default=DEFAULT_WORKDIR, help=f"default {DEFAULT_WORKDIR}"
    )
    ap.add_argument(
        "--keep",
        action="store_true",
        help="keep a plotfile generated by this run for the next one (one found in the work dir "
        "is never deleted)",
    )
    ap.add_argument(
        "--cases", default=",".join(CASE_KEYS), help="comma list of cases (default: all)"
    )
    ap.add_argument(
        "--bin", type=Path, default=DEFAULT_BIN, help=f"zarrmount binary (default {DEFAULT_BIN})"
    )
    ap.add_argument(
        "--results", type=Path, default=DEFAULT_RESULTS, help="Markdown report ('-' for none)"
    )
    ap.add_argument(
        "--probe",
        action="store_true",
        help="only say whether the binary mounts plotfiles (exit 0/1)",
    )
    ap.add_argument(
        "--generate-only", action="store_true", help="make (or check) the plotfile, then stop"
    )
    ap.add_argument("--worker-spec", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker_spec:
        res = worker(args)
        print("RESULT " + json.dumps(res), flush=True)
        return 0

    if os.geteuid() != 0:
        print("needs root (drop_caches and FUSE mounts)", file=sys.stderr)
        return 2
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = set(cases) - set(CASE_KEYS)
    if unknown:
        ap.error(f"unknown cases {sorted(unknown)}; known: {','.join(CASE_KEYS)}")
    cases = [k for k in CASE_KEYS if k in cases]

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    args.workdir.mkdir(parents=True, exist_ok=True)
    workdir = args.workdir.resolve()
    plotfile, layout, generated = ensure_plotfile(workdir, args.size_gib, log)
    tiny = workdir / "plt_tiny"
    tiny_layout = plan_layout(32, 16, 4, 2, 2, 4)
    if not plotfile_ok(tiny, workdir / "plt_tiny.json", tiny_layout):
        shutil.rmtree(tiny, ignore_errors=True)
        write_plotfile(tiny, tiny_layout)
        (workdir / "plt_tiny.json").write_text(json.dumps({"layout": tiny_layout}))
    if args.generate_only:
        return 0

    session = Path(tempfile.mkdtemp(dir=workdir, prefix="session-"))
    failed = False
    binary = args.bin
    fuse_pages = contextlib.ExitStack()
    fuse_note = fuse_pages.enter_context(fuse_request_pages())
    try:
        zm_cases = [c for c in cases if c.startswith(("zarrmount", "zarrcopy"))]
        note = None
        if zm_cases or args.probe:
            # Run a private copy, so that a rebuild during the benchmark cannot mix binaries.
            if os.access(args.bin, os.X_OK):
                binary = session / "zarrmount"
                shutil.copy2(args.bin, binary)
            ok, why = probe_zarrmount(binary, plotfile, session)
            if args.probe:
                print(("yes: " if ok else "no: ") + why)
                return 0 if ok else 1
            if not ok:
                note = f"zarrmount cases skipped: {args.bin} does not show the plotfile ({why})"
                log(note)
                cases = [c for c in cases if c not in zm_cases]
        vers = versions(binary, args.bin)
        ctx = {
            "workdir": session,
            "plotfile": plotfile,
            "layout": layout,
            "binary": binary,
            "tiny": tiny,
            "expected_path": session / "expected.json",
        }
        if any(c.startswith("zarrcopy") for c in cases):
            log("copying the mount's tree to a local directory ...")
            ctx["zarr_copy"] = copy_mount_tree(binary, plotfile, session)
        if any(c.startswith(("zarrmount", "zarrcopy")) for c in cases):
            log("computing expected values from the Cell_D bytes ...")
            (session / "expected.json").write_text(json.dumps(expected_values(plotfile, layout)))
        files = data_files(plotfile, layout)
        data_bytes = sum(p.stat().st_size for p in files)
        results = {c: [] for c in cases}
        details = {c: [] for c in cases}
        failures = []
        for run in range(1, args.runs + 1):
            for case in cases:
                try:
                    if case.startswith("cat-"):
                        res = run_cat(files, case.split("-")[1])
                    else:
                        res = run_worker(case, ctx, run)
                except (RuntimeError, subprocess.TimeoutExpired, AssertionError, OSError) as e:
                    failures.append(
                        str(e) if isinstance(e, RuntimeError) else f"{case} run {run}: {e}"
                    )
                    log(f"  FAILED {failures[-1]}")
                    continue
                results[case].append(res["seconds"])
                details[case].append(res)
                ph = "  ".join(f"{k} {v:.2f}" for k, v in res.get("phases", {}).items())
                ph += "  " + "  ".join(f"cpu {k} {v:.2f}" for k, v in res.get("cpu", {}).items())
                log(f"run {run} {case:22s} {res['seconds']:7.2f} s  {ph}")
                for name, msg in res.get("checks", {}).items():
                    log(f"      check {name}: {msg}")
        rows, med = fmt_table(results, data_bytes, args.runs)
        goals = goal_lines(med)
        phase_rows = []
        for case in cases:
            ph = [
                {**d.get("phases", {}), **{f"CPU {k}": v for k, v in d.get("cpu", {}).items()}}
                for d in details[case]
            ]
            if ph and ph[0]:
                keys = list(ph[0])
                phase_rows.append(
                    f"- {case}: "
                    + ", ".join(f"{k} {statistics.median(p[k] for p in ph):.2f} s" for k in keys)
                )
        extras = sorted({e for c in cases for d in details[c] for e in d.get("extra_arrays", [])})
        checks = []
        for c in cases:
            msgs = sorted({f"{n}: {m}" for d in details[c] for n, m in d.get("checks", {}).items()})
            if msgs:
                checks.append(f"{c} (every run): " + "; ".join(msgs))
        desc = (
            f"{len(layout['fields'])} fields × (level 0: {L0_CELLS}³ cells in {len(layout['levels'][0]['boxes'])} "
            f"boxes of {BOX}³; level 1: {len(layout['levels'][1]['boxes'])} boxes of {BOX}³, ratio 2), f64, "
            f"{sum(len(lv['files']) for lv in layout['levels'])} Cell_D files, "
            f"{data_bytes / GIB:.3f} GiB ({data_bytes} bytes)"
        )
        report = [
            "# Plotfile read benchmark",
            "",
            (
                f"`benches/plotfile_read.py --size-gib {args.size_gib:g} --runs {args.runs}`, "
                f"{datetime.datetime.now():%Y-%m-%d %H:%M}"
            ),
            "",
            f"- machine: {machine()}; {fuse_note}",
            "- versions: " + ", ".join(f"{k} {v}" for k, v in vers.items()),
            f"- plotfile: {desc}",
            (
                "- every case reads every field of every level; cold = `sync; echo 3 > /proc/sys/vm/drop_caches` "
                "before, warm = all files read before; each zarrmount run is a fresh mount, mount time included"
            ),
            "",
            *rows,
            "",
            "Goals:",
            *goals,
        ]
        if phase_rows:
            report += [
                "",
                (
                    "Phases and CPU time (medians; CPU client = the reading process, all threads; "
                    "CPU daemon = zarrmount, mount to unmount):"
                ),
                *phase_rows,
            ]
        if checks:
            report += [
                "",
                "Value checks (against the Cell_D bytes), all passed:",
                *[f"- {c}" for c in checks],
            ]
        if extras:
            report += [
                "",
                "Other arrays in the level groups (read by the `arr[...]` cases): "
                + ", ".join(extras),
            ]
        if note:
            report += ["", note]
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
        for m in mounts_under(workdir):
            unmount(m)
        left = mounts_under(workdir)
        if left:
            log(f"WARNING: still mounted: {left}")
        elif failed:
            log(f"logs of the failed runs kept in {session}")
        else:
            shutil.rmtree(session, ignore_errors=True)
        if generated and not args.keep:
            shutil.rmtree(plotfile, ignore_errors=True)
            (workdir / f"plt_bench_{args.size_gib:g}gib.json").unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
