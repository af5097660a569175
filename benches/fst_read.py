#!/usr/bin/env python3
"""FST read benchmark: zarrmount against librmn (rpnpy) and fstd2nc on a realistic file.

    .venv/bin/python benches/fst_read.py [--runs 5] [--workdir DIR] [--fst-python PY] [--keep]

1. Generates (or reuses) `glbdiag.fst` in `--workdir`/fst_glbdiag with
   fixtures/fst/make_glbdiag.py run by `--fst-python` (the .venv-fst interpreter: librmn 19.5
   through rpnpy, fstd2nc, numpy 1.x): 179 records, about 100 MB, an 800 x 400 Z grid,
   3 times x (5 variables on 8 pressure levels + 19 single-level fields), datyp 1/5/133/134;
   and its reference (fstprm of every record, CRC-32 of librmn's decoded values).
2. Times, side by side, each case `--runs` times, the cases interleaved round by round:
     listing  librmn fstinl + fstprm of every record (file open; and open + list + close),
              fstd2nc's own header reader (raw_headers + decode_headers), and zarrmount:
              mount + the root zarr.json, mount + the records/ table into a pandas DataFrame,
              and on a live mount the zarr.json, the table with zarr-python, the table's
              chunk files with numpy
     open     fstd2nc.Buffer(f).to_xarray() against xr.open_zarr(mount)
     load     .load() of every variable: fstd2nc (to_xarray + load) against zarrmount
              (mount + open_zarr + load)
   librmn and fstd2nc run in `--fst-python`, zarr-python and xarray in this interpreter;
   each measured case is a fresh process (this script with a hidden --worker-spec) that
   imports everything and warms up on a small fixture before the clock starts. "cold" =
   `sync; echo 3 > /proc/sys/vm/drop_caches` right before the clock, "warm" = the file read
   twice before. Every zarrmount case starts from a fresh mount.
3. Checks values, so that a wrong reader cannot post a fast number: every load (zarrmount's
   and fstd2nc's) must give the 177 data records bit-equal to librmn (CRC-32 of each 2-D
   field), the table must hold librmn's fstprm fields, every listing 179 records.
4. Prints a Markdown table (median and min-max seconds, ratio to the anchor of the group)
   and the issue's goals, and writes them to benches/results/fst_read.md.

Needs root (drop_caches, FUSE) and a release build of zarrmount. Every mount is undone in a
`finally` (plotfile_read's helpers: umount, umount -l, kill the daemon).
"""

from __future__ import annotations

import argparse
import collections
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
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import plotfile_read as pr  # mount helpers, drop_caches, spawn_worker, machine

REPO = pr.REPO
DEFAULT_RESULTS = REPO / "benches" / "results" / "fst_read.md"
DEFAULT_FST_PYTHON = Path(
    os.environ.get("ZARRMOUNT_FST_PYTHON", REPO / ".venv-fst" / "bin" / "python")
)
GENERATOR = REPO / "fixtures" / "fst" / "make_glbdiag.py"
TINY = REPO / "fixtures" / "fst" / "grid_latlon.fst"  # warm-up file
META = {">>", "^^", "^>", "!!", "!!SF", "STNS"}  # records that are not fields (fst.md §5)
WORKER_TIMEOUT = 600
LIVE_REPEATS = 20  # live-mount listings and opens are repeated in one worker; median taken

# Measured processes: (worker kind, interpreter, cache state)
WORKERS = [
    ("librmn", "fst", "cold"),
    ("fstd2nc-headers", "fst", "cold"),
    ("zm-list", "zarr", "cold"),
    ("fstd2nc", "fst", "cold"),
    ("zm-open", "zarr", "cold"),
    ("zm-load", "zarr", "cold"),
    ("zm-chunks", "zarr", "cold"),
    ("fstd2nc", "fst", "warm"),
    ("zm-load", "zarr", "warm"),
    ("zm-chunks", "zarr", "warm"),
]

# What the table reports: (metric, label); the first row of each group is its anchor.
GROUPS = {
    "listing": [
        ("librmn-list", "librmn `fstinl` + `fstprm` × 179, file already open (anchor)"),
        (
            "zm-reader-list",
            "zarrmount's reader (library, no FUSE): directory + every record's keys",
        ),
        ("zm-reader-open", "zarrmount's reader: whole open (variables, axes, grid coordinates)"),
        ("librmn-open-list", "librmn `fstopenall` + list + `fstcloseall`, cold"),
        ("fstd2nc-headers", "fstd2nc `raw_headers` + `decode_headers`, cold"),
        ("zm-mount-zarrjson", "zarrmount: mount + read the root `zarr.json`, cold"),
        ("zm-mount-table", "zarrmount: mount + `records/` → pandas DataFrame (zarr-python), cold"),
        ("zm-zarrjson-live", "zarrmount, live mount: root `zarr.json`"),
        ("zm-table-live", "zarrmount, live mount: `records/` → DataFrame (zarr-python)"),
        ("zm-table-files-live", "zarrmount, live mount: `records/` chunk files → numpy"),
    ],
    "open": [
        ("fstd2nc-open-cold", "`fstd2nc.Buffer(f).to_xarray()`, cold (anchor)"),
        ("fstd2nc-open-warm", "`fstd2nc.Buffer(f).to_xarray()`, warm"),
        ("zm-mount-open", "zarrmount: mount + `xr.open_zarr`, cold"),
        ("zm-open-first", "zarrmount: first `xr.open_zarr` on a fresh mount, cold"),
        ("zm-open-live", "zarrmount: `xr.open_zarr`, live mount"),
    ],
    "load": [
        ("fstd2nc-load-cold", "fstd2nc: `to_xarray()` + `.load()`, cold (anchor)"),
        ("fstd2nc-load-warm", "fstd2nc: `to_xarray()` + `.load()`, warm"),
        ("zm-load-cold", "zarrmount: mount + `xr.open_zarr` + `.load()`, cold"),
        ("zm-load-warm", "zarrmount: mount + `xr.open_zarr` + `.load()`, warm"),
        ("zm-chunks-cold", "zarrmount: mount + every data chunk file read plainly, cold"),
        ("zm-chunks-warm", "zarrmount: mount + every data chunk file read plainly, warm"),
        ("zm-decode", "zarrmount's decoders (library, no FUSE): every record, one thread, warm"),
    ],
}


# --- the file ------------------------------------------------------------------------------


def generator_version() -> int:
    m = re.search(r"^GENERATOR_VERSION = (\d+)", GENERATOR.read_text(), re.MULTILINE)
    return int(m.group(1))


def ensure_file(workdir: Path, fst_python: Path, log) -> tuple[Path, Path, bool]:
    """(glbdiag.fst, its reference .json, whether this run generated them)."""
    out = workdir / "fst_glbdiag"
    path, ref = out / "glbdiag.fst", out / "glbdiag.json"
    if path.exists() and ref.exists():
        doc = json.loads(ref.read_text())
        if doc.get("generator") == generator_version() and doc["size_bytes"] == path.stat().st_size:
            return path, ref, False
    log(f"generating {path} with {fst_python} ...")
    r = subprocess.run(
        [str(fst_python), str(GENERATOR), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if r.returncode != 0:
        raise RuntimeError(f"make_glbdiag.py failed: {r.stderr.strip()[-2000:]}")
    log(r.stdout.strip())
    return path, ref, True


def prepare_cache(cache: str, path: Path) -> None:
    if cache == "cold":
        pr.drop_caches()
    else:
        for _ in range(2):
            with open(path, "rb") as f:
                while f.read(1 << 24):
                    pass


def expected_crcs(reference: dict) -> collections.Counter:
    return collections.Counter(r["crc32"] for r in reference["records"] if r["nomvar"] not in META)


def field_crcs(ds, shape: tuple) -> collections.Counter:
    """CRC-32 of every 2-D field of the Dataset's float32 data variables on the grid."""
    crcs = collections.Counter()
    for v in ds.data_vars.values():
        if v.dtype != np.float32 or v.ndim < 3 or v.shape[-2:] != shape:
            continue
        values = v.values
        for index in np.ndindex(*values.shape[:-2]):
            field = np.ascontiguousarray(values[index], dtype="<f4")
            if not np.isnan(field).all():  # a (time, level) without a record
                crcs[zlib.crc32(field.tobytes())] += 1
    return crcs


def check_crcs(ds, reference: dict, who: str) -> str:
    nj, ni = reference["records"][-1]["nj"], reference["records"][-1]["ni"]
    got, want = field_crcs(ds, (nj, ni)), expected_crcs(reference)
    if got != want:
        raise AssertionError(
            f"{who}: {sum((want - got).values())} of {sum(want.values())} fields differ from librmn"
        )
    return f"{sum(want.values())} fields bit-equal to librmn"


# --- workers: one measured process each -----------------------------------------------------


def worker(spec: dict) -> dict:
    kind = spec["kind"]
    if kind == "librmn":
        return worker_librmn(spec)
    if kind == "fstd2nc-headers":
        return worker_fstd2nc_headers(spec)
    if kind == "fstd2nc":
        return worker_fstd2nc(spec)
    return worker_zarrmount(spec)


def worker_librmn(spec: dict) -> dict:
    import fstd2nc_deps  # noqa: F401
    import rpnpy.librmn.all as rmn

    rmn.fstopt(rmn.FSTOP_MSGLVL, rmn.FSTOPI_MSG_CATAST)

    def listing(path):
        t0 = time.perf_counter()
        unit = rmn.fstopenall(str(path), rmn.FST_RO)
        t1 = time.perf_counter()
        prms = [rmn.fstprm(k) for k in rmn.fstinl(unit)]
        t2 = time.perf_counter()
        rmn.fstcloseall(unit)
        return prms, t1 - t0, t2 - t1, time.perf_counter() - t2

    listing(TINY)  # warm-up
    prepare_cache(spec["cache"], Path(spec["file"]))
    prms, t_open, t_list, t_close = listing(spec["file"])
    reference = json.loads(Path(spec["reference"]).read_text())
    got = [(p["nomvar"].strip(), p["ip1"], p["datev"]) for p in prms]
    want = [(r["nomvar"], r["ip1"], r["datev"]) for r in reference["records"]]
    assert got == want, "librmn lists other records than the reference"
    return {
        "metrics": {"librmn-list": t_list, "librmn-open-list": t_open + t_list + t_close},
        "checks": {"librmn": f"{len(prms)} records"},
    }


def worker_fstd2nc_headers(spec: dict) -> dict:
    from fstd2nc.extra import decode_headers, raw_headers

    decode_headers(raw_headers(str(TINY)))  # warm-up
    prepare_cache(spec["cache"], Path(spec["file"]))
    t0 = time.perf_counter()
    headers = decode_headers(raw_headers(spec["file"]))
    dt = time.perf_counter() - t0
    n = len(headers["nomvar"])
    assert n == 179, n
    return {"metrics": {"fstd2nc-headers": dt}, "checks": {"fstd2nc headers": f"{n} records"}}


def worker_fstd2nc(spec: dict) -> dict:
    import warnings

    import fstd2nc

    warnings.filterwarnings("ignore")
    fstd2nc.Buffer(str(TINY)).to_xarray().load()  # warm-up
    cache = spec["cache"]
    prepare_cache(cache, Path(spec["file"]))
    t0 = time.perf_counter()
    ds = fstd2nc.Buffer(spec["file"]).to_xarray()
    t1 = time.perf_counter()
    ds.load()
    t2 = time.perf_counter()
    reference = json.loads(Path(spec["reference"]).read_text())
    return {
        "metrics": {f"fstd2nc-open-{cache}": t1 - t0, f"fstd2nc-load-{cache}": t2 - t0},
        "checks": {f"fstd2nc {cache}": check_crcs(ds, reference, "fstd2nc")},
    }


def worker_zarrmount(spec: dict) -> dict:
    """zm-list, zm-open, zm-load: a fresh mount of the file, then the case's user story."""
    import warnings

    import pandas as pd
    import xarray as xr
    import zarr

    warnings.filterwarnings("ignore", message="Consolidated metadata")
    binary, mnt, log = Path(spec["binary"]), Path(spec["mountpoint"]), Path(spec["log"])
    reference = json.loads(Path(spec["reference"]).read_text())

    def table(root: Path) -> pd.DataFrame:
        group = zarr.open_group(root / "records", mode="r")
        return pd.DataFrame({name: a[...] for name, a in group.arrays()})

    def table_files(root: Path) -> dict:
        out = {}
        for col in os.listdir(root / "records"):
            if col != "zarr.json":
                meta = json.loads((root / "records" / col / "zarr.json").read_bytes())
                raw = (root / "records" / col / "c" / "0").read_bytes()
                if meta["data_type"] == "string":
                    out[col] = vlen_strings(raw)
                else:
                    out[col] = np.frombuffer(raw, ZARR_DTYPES[meta["data_type"]])
        return out

    def zarr_json(root: Path) -> dict:
        return json.loads((root / "zarr.json").read_bytes())

    # Warm-up on a mount of a small fixture: every code path the case runs.
    warm = mnt.parent / "warmup"
    warm.mkdir()
    try:
        pr.start_mount(binary, TINY, warm, mnt.parent / "warmup.log")
        zarr_json(warm), table(warm), table_files(warm), xr.open_zarr(warm).load()
    finally:
        pr.unmount(warm)
    kind, cache = spec["kind"], spec["cache"]
    prepare_cache(cache, Path(spec["file"]))
    metrics, checks, cpu = {}, {}, {}
    cpu0 = pr._cpu()

    def live(fn) -> float:
        times = []
        for _ in range(LIVE_REPEATS):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return statistics.median(times)

    try:
        with pr.Watchdog(mnt, WORKER_TIMEOUT - 60):
            t0 = time.perf_counter()
            pr.start_mount(binary, spec["file"], mnt, log)
            t1 = time.perf_counter()
            if kind == "zm-list":
                zarr_json(mnt)
                t2 = time.perf_counter()
                df = table(mnt)
                t3 = time.perf_counter()
                metrics["zm-mount-zarrjson"] = t2 - t0
                metrics["zm-mount-table"] = (t1 - t0) + (t3 - t2)
                metrics["zm-zarrjson-live"] = live(lambda: zarr_json(mnt))
                metrics["zm-table-live"] = live(lambda: table(mnt))
                metrics["zm-table-files-live"] = live(lambda: table_files(mnt))
                checks["zarrmount records/"] = check_table(df, reference)
            elif kind == "zm-open":
                ds = xr.open_zarr(mnt)
                t2 = time.perf_counter()
                metrics["zm-mount-open"], metrics["zm-open-first"] = t2 - t0, t2 - t1
                metrics["zm-open-live"] = live(lambda: xr.open_zarr(mnt))
                assert len(ds.data_vars) > 24, list(ds.data_vars)
            elif kind == "zm-load":
                ds = xr.open_zarr(mnt)
                ds.load()
                t2 = time.perf_counter()
                metrics[f"zm-load-{cache}"] = t2 - t0
                cpu[f"zm-load-{cache}"] = cpu_split(mnt, cpu0)
                checks[f"zarrmount {cache}"] = check_crcs(ds, reference, "zarrmount")
            else:  # every chunk file of the data variables, read as files: no zarr-python
                nbytes = sum(len(f.read_bytes()) for f in data_chunks(mnt))
                metrics[f"zm-chunks-{cache}"] = time.perf_counter() - t0
                cpu[f"zm-chunks-{cache}"] = cpu_split(mnt, cpu0)
                checks[f"zarrmount chunk files {cache}"] = f"{nbytes:,} bytes"
    finally:
        pr.unmount(mnt)
    return {"metrics": metrics, "checks": checks, "cpu": cpu}


def cpu_split(mnt: Path, cpu0: float) -> dict:
    """CPU seconds so far of this process (all threads) and of the mount's daemon."""
    daemon = sum(pr._proc_cpu(pid) for pid in pr.daemon_pids(mnt))
    return {"client": pr._cpu() - cpu0, "daemon": daemon}


def data_chunks(root: Path) -> list[Path]:
    """The chunk files of the arrays with RPN attributes (one per record)."""
    files = []
    for name in sorted(os.listdir(root)):
        meta = root / name / "zarr.json"
        if name == "records" or not meta.exists():
            continue
        if "nomvar" in json.loads(meta.read_bytes()).get("attributes", {}):
            files += sorted(p for p in (root / name / "c").rglob("*") if p.is_file())
    return files


def vlen_strings(raw: bytes) -> list[str]:
    """A `vlen-utf8` chunk: a u32 count, then each string as a u32 length and its bytes."""
    count, at, out = int.from_bytes(raw[:4], "little"), 4, []
    for _ in range(count):
        n = int.from_bytes(raw[at : at + 4], "little")
        out.append(raw[at + 4 : at + 4 + n].decode())
        at += 4 + n
    return out


ZARR_DTYPES = {
    "bool": "?",
    "uint8": "<u1",
    "int32": "<i4",
    "uint32": "<u4",
    "uint64": "<u8",
    "int64": "<i8",
    "float32": "<f4",
}


def check_table(df, reference: dict) -> str:
    live = df[~df["deleted"]]
    records = reference["records"]
    assert len(live) == len(records) == 179, len(live)
    for col in ("ni", "nj", "nk", "datyp", "nbits", "ip1", "ip2", "ip3", "deet", "npas", "datev"):
        got = live[col].astype(np.int64).tolist()
        assert got == [r[col] for r in records], f"records/{col} differs from fstprm"
    return f"{len(live)} rows equal to fstprm"


# --- the driver ---------------------------------------------------------------------------


def run_worker(kind: str, interp: str, cache: str, ctx: dict, run: int) -> dict:
    base = Path(tempfile.mkdtemp(dir=ctx["session"], prefix=f"{kind}-{cache}-"))
    mnt = base / "mnt"
    mnt.mkdir()
    spec = {
        "kind": kind,
        "cache": cache,
        "file": str(ctx["file"]),
        "reference": str(ctx["reference"]),
        "binary": str(ctx["binary"]),
        "mountpoint": str(mnt),
        "log": str(base / "zarrmount.log"),
    }
    spec_path = base / "spec.json"
    spec_path.write_text(json.dumps(spec))
    python = ctx["fst_python"] if interp == "fst" else sys.executable
    ok = False
    try:
        try:
            res = pr.spawn_worker(Path(__file__), spec_path, WORKER_TIMEOUT, python=python)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            raise RuntimeError(f"{kind} {cache} run {run}: {e}") from None
        ok = True
        return res
    finally:
        for m in (mnt, base / "warmup"):
            pr.unmount(m)
        if pr.mounts_under(base):
            print(f"WARNING: {base} is still mounted", file=sys.stderr)
        elif ok:
            shutil.rmtree(base, ignore_errors=True)


def run_reader(binary: Path, path: Path, records: list) -> dict:
    """benches/fst_open.rs on the file (in the page cache): listing, open and decode times."""
    r = subprocess.run(
        [str(binary), "--file", str(path), "--runs", "20"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if r.returncode != 0:
        raise RuntimeError(f"fst_open exit {r.returncode}: {r.stderr.strip()[-500:]}")
    got = {}
    for line in r.stdout.splitlines():
        if line.startswith("RESULT "):
            res = json.loads(line[len("RESULT ") :])
            got[res["case"]] = res
    data = [r for r in records if r["nomvar"].strip() not in (">>", "^^")]
    if (got["list"]["records"], got["decode"]["records"]) != (len(records), len(data)):
        raise RuntimeError(f"fst_open listed/decoded {got['list']} / {got['decode']} records")
    return {
        "zm-reader-list": got["list"]["seconds"],
        "zm-reader-open": got["open"]["seconds"],
        "zm-decode": got["decode"]["seconds"],
    }


def fmt_seconds(s: float) -> str:
    return f"{s * 1000:.2f} ms" if s < 1 else f"{s:.2f} s"


def report_rows(results: dict) -> tuple[list[str], dict]:
    med = {k: statistics.median(v) for k, v in results.items() if v}
    rows = ["| case | median | min–max | × anchor |", "|---|---:|---:|---:|"]
    for group, metrics in GROUPS.items():
        rows.append(f"| **{group}** | | | |")
        anchor = med.get(metrics[0][0])
        for key, label in metrics:
            v = results.get(key)
            if not v:
                rows.append(f"| {label} | n/a | | |")
                continue
            ratio = f"{med[key] / anchor:.3f}" if anchor else "–"
            rows.append(
                f"| {label} | {fmt_seconds(med[key])} | "
                f"{fmt_seconds(min(v))}–{fmt_seconds(max(v))} | {ratio} |"
            )
    return rows, med


def goal_lines(med: dict) -> list[str]:
    out = []

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    librmn = med.get("librmn-list")
    if librmn:
        for key, what in (
            ("zm-reader-list", "zarrmount's reader (directory + keys of every record)"),
            ("zm-table-live", "the records/ table with zarr-python, live mount"),
            ("zm-table-files-live", "the records/ chunk files with numpy, live mount"),
            ("zm-zarrjson-live", "the root zarr.json (every variable, not per record), live mount"),
        ):
            if med.get(key):
                r = librmn / med[key]
                out.append(
                    f"- listing ≥ 10× faster than librmn: {what} **{r:.2f}×** ({verdict(r >= 10)})"
                )
    if med.get("librmn-open-list") and med.get("zm-mount-table"):
        r = med["librmn-open-list"] / med["zm-mount-table"]
        out.append(f"- cold, from nothing: librmn open + list / zarrmount mount + table = {r:.2f}×")
    for key, what in (("zm-open-first", "first on a fresh mount"), ("zm-open-live", "live")):
        if med.get(key):
            out.append(
                f"- `xr.open_zarr` through the mount under 0.05 s: {what} "
                f"**{fmt_seconds(med[key])}** ({verdict(med[key] < 0.05)})"
            )
    for cache in ("cold", "warm"):
        f, z = med.get(f"fstd2nc-load-{cache}"), med.get(f"zm-load-{cache}")
        if f and z:
            out.append(
                f"- full load ≥ 2× faster than fstd2nc, {cache}: **{f / z:.2f}×** ({verdict(f / z >= 2)})"
            )
    return out


def versions(binary: Path, shown: Path, fst_python: Path) -> dict:
    v = pr.versions(binary, shown)
    for mod in ("xarray", "pandas"):
        try:
            v[mod] = __import__(mod).__version__
        except ImportError:
            v[mod] = "not installed"
    code = (
        "import fstd2nc, numpy, fstd2nc_deps, rpnpy.librmn.all as rmn, os;"
        "print(fstd2nc.__version__, numpy.__version__, os.path.basename(rmn.librmn._name))"
    )
    r = subprocess.run(
        [str(fst_python), "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    if r.returncode == 0 and r.stdout.split():
        f, n, lib = r.stdout.split()[:3]
        v["fstd2nc"], v["librmn"], v["numpy (fst venv)"] = f, lib, n
    return v


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--runs", type=int, default=5, help="repetitions of every case (default 5)")
    ap.add_argument("--workdir", type=Path, default=pr.DEFAULT_WORKDIR)
    ap.add_argument(
        "--fst-python",
        type=Path,
        default=DEFAULT_FST_PYTHON,
        help=f"interpreter with librmn and fstd2nc (default {DEFAULT_FST_PYTHON})",
    )
    ap.add_argument("--bin", type=Path, default=pr.DEFAULT_BIN, help="zarrmount binary")
    ap.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="'-' for none")
    ap.add_argument("--keep", action="store_true", help="keep a file this run generated")
    ap.add_argument("--worker-spec", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker_spec:
        res = worker(json.loads(Path(args.worker_spec).read_text()))
        print("RESULT " + json.dumps(res), flush=True)
        return 0
    if os.geteuid() != 0:
        print("needs root (drop_caches and FUSE mounts)", file=sys.stderr)
        return 2
    if not os.access(args.fst_python, os.X_OK):
        print(f"no interpreter at {args.fst_python}: run `make venv-fst`", file=sys.stderr)
        return 2

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    args.workdir.mkdir(parents=True, exist_ok=True)
    workdir = args.workdir.resolve()
    path, ref_path, generated = ensure_file(workdir, args.fst_python, log)
    session = Path(tempfile.mkdtemp(dir=workdir, prefix="fst-session-"))
    try:
        binary = session / "zarrmount"  # a private copy: a rebuild cannot mix binaries
        shutil.copy2(args.bin, binary)
        ctx = {
            "session": session,
            "file": path,
            "reference": ref_path,
            "binary": binary,
            "fst_python": args.fst_python,
        }
        reference = json.loads(ref_path.read_text())
        reader = pr.build_bench("fst_open", log)
        if reader is None:
            failures_early = ["benches/fst_open.rs did not build: no reader rows"]
        else:
            failures_early = []
        results = collections.defaultdict(list)
        cpu = collections.defaultdict(list)
        checks, failures = {}, failures_early
        for run in range(1, args.runs + 1):
            for kind, interp, cache in WORKERS:
                try:
                    res = run_worker(kind, interp, cache, ctx, run)
                except RuntimeError as e:
                    failures.append(str(e))
                    log(f"  FAILED {e}")
                    continue
                for key, seconds in res["metrics"].items():
                    results[key].append(seconds)
                checks.update(res.get("checks", {}))
                for key, split in res.get("cpu", {}).items():
                    cpu[key].append(split)
                shown = "  ".join(f"{k} {fmt_seconds(s)}" for k, s in res["metrics"].items())
                log(f"run {run} {kind:16s} {cache:5s} {shown}")
            if reader:
                for key, seconds in run_reader(reader, path, reference["records"]).items():
                    results[key].append(seconds)
        rows, med = report_rows(results)
        size = reference["size_bytes"]
        report = [
            "# FST read benchmark",
            "",
            f"`benches/fst_read.py --runs {args.runs}`, {datetime.datetime.now():%Y-%m-%d %H:%M}",
            "",
            f"- machine: {pr.machine()}",
            "- versions: "
            + ", ".join(f"{k} {v}" for k, v in versions(binary, args.bin, args.fst_python).items()),
            (
                f"- file: `glbdiag.fst` from fixtures/fst/make_glbdiag.py, XDF, {size:,} bytes, "
                f"{len(reference['records'])} records (Z grid 800 × 400, 3 times, 24 variables; "
                "datyp 1/16 ×72, 1/12 ×36, 134/16 ×36, 134/12 ×3, 133/32 ×24, 133/16 ×3, 5/32 ×5)"
            ),
            (
                "- medians over the runs; each case a fresh process with its imports and a "
                "warm-up done before the clock; cold = `sync; echo 3 > /proc/sys/vm/drop_caches` "
                "before, warm = the file read before; every zarrmount case on a fresh mount; "
                f"live-mount rows are the median of {LIVE_REPEATS} repeats in one process"
            ),
            "",
            *rows,
            "",
            "Goals (issue 5):",
            *goal_lines(med),
            "",
            (
                "CPU seconds (medians; client = the reading process, all threads; daemon = "
                "zarrmount, mount to the end of the read):"
            ),
            *[
                f"- {key}: client {statistics.median(c['client'] for c in v):.2f} s, "
                f"daemon {statistics.median(c['daemon'] for c in v):.2f} s"
                for key, v in sorted(cpu.items())
            ],
            "",
            "Value checks, all passed: "
            + "; ".join(f"{k}: {v}" for k, v in sorted(checks.items())),
        ]
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
        for m in pr.mounts_under(workdir):
            pr.unmount(m)
        if pr.mounts_under(workdir):
            log(f"WARNING: still mounted: {pr.mounts_under(workdir)}")
        else:
            shutil.rmtree(session, ignore_errors=True)
        if generated and not args.keep:
            shutil.rmtree(path.parent, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
