"""Damaged copies of every fixture, mounted in batches: the daemon stays up, every read is the
correct data or EIO, and every problem is logged with its file and an offset (or line).

Fixtures: every plotfile directory of fixtures/amrex (the series members too), every .fst of
fixtures/fst and fixtures/fst/rsf, every shard of fixtures/wds. Damage (corrupt_variants.py):
- truncations at structural cut points (end of a header, inside a directory, page, entry,
  Cell_H or tar header, at and inside records, FABs and members, the last byte) and a seeded
  spread; a plotfile's Header, Cell_H and Cell_D files are cut separately;
- flips of one byte in headers and directories: plotfile Header, Cell_H and FAB header lines
  (a digit becomes another digit, other characters get bit 0x20 flipped); XDF file header,
  directory page header and entries (once leaving the page checksum wrong, and field by field
  with the checksum fixed so the parser meets the field), the record's own key copy; RSF
  segment start (SOS), directory record and entries, a record's start; tar headers (name,
  size, checksum, typeflag, magic), PAX records and `.npy` headers.

Each variant is a file or directory of its own in a batch directory; a batch is one mount.
Every node the mount shows is read with plain `os` calls (corrupt_read.py): every
`zarr.json`, every chunk of every array's grid. What is asserted, for every variant:
1. The daemon is alive after its batch and never panicked; no read hangs (a stuck read ends
   the test through conftest's watchdog).
2. Every chunk read returns its bytes, ENOENT (absent: the fill value) or EIO; no other
   errno; a chunk that reads has exactly the size its array's metadata declares (fixed-size
   types), or decodes to exactly one item per element (vlen-utf8 / vlen-bytes, UTF-8 valid).
3. Values (corrupt_check.py), against the pristine fixture's reading, itself first checked
   against the formats' references here (`pristine`: librmn's decodings, the plotfile
   generator's composites, webdataset's samples), so "equal to the pristine reading" is
   "equal to the reference":
   - truncations: every value that reads equals the reference. An array with the original's
     metadata is compared chunk by chunk (and may lose a chunk only if the dataset's
     `skipped` says something was left out); an FST variable whose time or level axis
     shrank, by the time and level values of each record; `records/` rows by their offset;
     WebDataset features by sample index (the keys must agree; a member the cut removed may
     read absent with its `.present` flag false). The only arrays not compared are those
     whose shape the cut changed and that have no such alignment (counted `unaligned`).
   - flips: a flipped header byte may legitimately change meaning (a digit of a time or a
     dimension, a name). The same comparison applies, so an array whose metadata is the
     original's must read the reference values (or EIO), except for flips in a *locator*
     field - a length, an offset or a data file name that nothing else repeats (tar size,
     `.npy` shape, Cell_H FabOnDisk name/offset) - which say where data lies and which no
     reader can check: there only assertions 1, 2 and 4 hold. FST directory entries are not
     locators: a record repeats its entry in its own header (XDF) or start-of-record and
     metadata (RSF), and zarrmount checks the two agree on every read.
4. Every problem is told, with the file and where: each `skipped` entry (in the dataset's
   groups, or in the batch root's for a dataset left out) names an offset or a line, and a
   variant with a skipped entry or an EIO read has at least one line in the daemon's log
   that names its file and an offset or line.

The figures (fixtures, variants per kind, reads, EIO, skipped, time) are printed at the end
of the module and written to $ZARRMOUNT_CORRUPT_SUMMARY (default: a file in the temp dir).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import zarr

import corrupt_variants as cv
from conftest import mount, plotfile_generator
from corrupt_check import compare, says_where, skipped_entries
from corrupt_read import Reading, read_tree

BATCH = 120  # variants per mount
LIMIT = 600  # seconds per test

pytestmark = [
    pytest.mark.timeout(LIMIT),
    pytest.mark.filterwarnings("ignore:Consolidated metadata:UserWarning"),
]

STATS: dict = {}


@pytest.fixture(scope="module", autouse=True)
def summary():
    start = time.monotonic()
    yield
    STATS["seconds"] = round(time.monotonic() - start, 1)
    text = json.dumps(STATS, indent=1, sort_keys=True)
    print(f"\ncorrupt-input suite: {text}")
    default = Path(tempfile.gettempdir()) / "zarrmount-corrupt-summary.json"
    Path(os.environ.get("ZARRMOUNT_CORRUPT_SUMMARY", default)).write_text(text + "\n")


def count(fmt: str, key: str, n: int = 1) -> None:
    STATS.setdefault(fmt, {}).setdefault(key, 0)
    STATS[fmt][key] += n


@dataclass
class Variant:
    name: str  # node name in the mount (its file or directory name, as the mount shows it)
    fixture: str
    damage: cv.Damage

    def __str__(self) -> str:
        return f"{self.fixture} {self.damage.describe()} [{self.name}]"


# --- pristine readings, checked against the references --------------------------------------


def _mount_read(src: Path, names: dict[str, str]) -> dict[str, Reading]:
    """Mount `src`, read dataset node `names[k]` for every k; the daemon must stay up."""
    with mount(src, "index_dir=none", foreground=True) as m:
        out = {k: read_tree(m.path / v) for k, v in names.items()}
        assert m.proc.poll() is None, m.log.read_text()
    for k, r in out.items():
        assert not r.problems and not r.eio, f"pristine {k}: {r.problems} eio {r.eio}"
    return out


@pytest.fixture(scope="module")
def pristine_fst(tmp_path_factory) -> dict[str, Reading]:
    from fst_reference import reference
    from test_fst import check_records

    src = tmp_path_factory.mktemp("fst-orig")
    names = {}
    for n in cv.fst_names():
        node = n.replace("/", "_")
        shutil.copyfile(cv.FST / n, src / node)
        names[n] = node
    with mount(src, "index_dir=none") as m:
        for n, node in names.items():
            check_records(m.path / node, reference(n).data_records())
    return _mount_read(src, names)


@pytest.fixture(scope="module")
def pristine_amrex(tmp_path_factory) -> dict[str, Reading]:
    from test_plotfile import assert_same

    gen = plotfile_generator()
    src = tmp_path_factory.mktemp("amrex-orig")
    names = {}
    for n in cv.amrex_names():
        node = n.replace("/", "_") + "x"
        shutil.copytree(cv.AMREX / n, src / node)
        names[n] = node
    with mount(src) as m:
        for n, node in names.items():
            pf = gen.build(n)
            for level in pf.levels:
                group = zarr.open_group(m.path / node / f"level_{level.level}", mode="r")
                for f in pf.fields:
                    want = gen.composite(pf, level.level, f)
                    assert_same(group[f][...], want, f"{n} level {level.level} {f}")
    return _mount_read(src, names)


def _served(stem: str, path: Path):
    """The samples zarrmount serves of a fixture shard, as test_wds works them out from
    webdataset (and the tar itself, for the deliberate deviations)."""
    from test_wds import has_duplicate_suffix, tar_groups, unsafe_key, wds_samples

    if stem == "dupes":
        samples, _ = wds_samples(str(path), keep_going=True)
        groups = tar_groups(path)
        return [s for s, g in zip(samples, groups, strict=True) if not has_duplicate_suffix(g)]
    samples, error = wds_samples(str(path))
    assert error is None or stem == "truncated", error
    return [s for s in samples if not unsafe_key(s.key)]


@pytest.fixture(scope="module")
def pristine_wds(tmp_path_factory) -> dict[str, Reading]:
    from test_wds import check_group, suffix_cases

    src = tmp_path_factory.mktemp("wds-orig")
    names = {}
    for stem in cv.wds_names():
        shutil.copyfile(cv.WDS / f"{stem}.tar", src / f"{stem}x.tar")
        names[stem] = f"{stem}x"
    with mount(src, "index_dir=none") as m:
        for stem, node in names.items():
            path = src / f"{node}.tar"
            samples = _served(stem, path)
            check_group(m.path / node, samples, suffix_cases([path], samples))
    return _mount_read(src, names)


# --- running batches -----------------------------------------------------------------------


def run_batches(fmt, variants, pristine, write, tmp_path) -> None:
    """Write, mount, read and check `variants` in batches; fail with every problem found."""
    failures = []
    for b in range(0, len(variants), BATCH):
        batch = variants[b : b + BATCH]
        src = tmp_path / f"batch{b // BATCH}"
        src.mkdir()
        for v in batch:
            write(v, src)
        with mount(src, "index_dir=none", foreground=True) as m:
            root_skipped = json.loads((m.path / "zarr.json").read_bytes())["attributes"].get(
                "skipped"
            )
            shown = set(os.listdir(m.path))
            readings = {v.name: read_tree(m.path / v.name) for v in batch if v.name in shown}
            log = m.log.read_text(errors="replace")
            alive = m.proc.poll() is None
        assert alive, f"the daemon died in batch {b // BATCH}: {log[-3000:]}"
        assert "panicked" not in log, log[-3000:]
        for v in batch:
            failures += [
                f"{v}: {p}" for p in check_variant(fmt, v, readings, root_skipped, log, pristine)
            ]
        shutil.rmtree(src)
    assert not failures, f"{len(failures)} problems:\n" + "\n".join(failures[:40])


def check_variant(fmt, v, readings, root_skipped, log, pristine) -> list[str]:
    kind = v.damage.kind
    count(fmt, f"{kind} variants")
    problems = []
    told = []
    for e in root_skipped or []:
        if Path(str(e.get("path", ""))).name.startswith(v.name):
            told.append(e)
    reading = readings.get(v.name)
    if reading is None:
        count(fmt, f"{kind} datasets skipped")
        if not told and not v.damage.hides:
            problems.append("not shown, and not in the root's `skipped`")
    else:
        count(fmt, "reads", reading.reads)
        count(fmt, "EIO", reading.eio)
        problems += reading.problems
        told += skipped_entries(reading)
        outcome = compare(reading, pristine[v.fixture], fmt, kind, v.damage.locator)
        problems += outcome.problems
        count(fmt, "values compared", outcome.compared)
        count(fmt, "arrays unaligned", outcome.unaligned)
    count(fmt, "skipped entries", len(told))
    for e in told:
        if not says_where(json.dumps(e)):
            problems.append(f"`skipped` entry says no offset or line: {json.dumps(e)[:300]}")
    if told or (reading is not None and reading.eio):
        lines = [ln for ln in log.splitlines() if v.name in ln and says_where(ln)]
        if not lines:
            problems.append("a problem, but no log line names the file with an offset or line")
    return problems


# --- the tests ------------------------------------------------------------------------------


def fst_variants(kind: str) -> list[Variant]:
    out = []
    for n in cv.fst_names():
        stem = n.replace("/", "_").rsplit(".", 1)[0]
        ext = Path(n).suffix
        for i, d in enumerate(x for x in cv.fst_damage(n) if x.kind == kind):
            out.append(Variant(f"{stem}-{kind}{i:03d}x{ext}", n, d))
    return out


def _write_file(source_dir: Path, ext: str = ""):
    def write(v: Variant, dest: Path) -> None:
        path = dest / f"{v.name}{ext}"
        path.write_bytes(v.damage.apply((source_dir / (v.fixture + ext)).read_bytes()))

    return write


@pytest.mark.parametrize("kind", ["cut", "flip"])
def test_fst(tmp_path, pristine_fst, kind):
    count("fst", "fixtures", 0)
    STATS["fst"]["fixtures"] = len(cv.fst_names())
    run_batches("fst", fst_variants(kind), pristine_fst, _write_file(cv.FST), tmp_path)


def wds_variants(kind: str) -> list[Variant]:
    out = []
    for stem in cv.wds_names():
        for i, d in enumerate(x for x in cv.wds_damage(stem) if x.kind == kind):
            out.append(Variant(f"{stem}-{kind}{i:03d}x", stem, d))
    return out


@pytest.mark.parametrize("kind", ["cut", "flip"])
def test_wds(tmp_path, pristine_wds, kind):
    STATS.setdefault("wds", {})["fixtures"] = len(cv.wds_names())
    run_batches("wds", wds_variants(kind), pristine_wds, _write_file(cv.WDS, ".tar"), tmp_path)


def amrex_variants(kind: str) -> list[Variant]:
    out = []
    for n in cv.amrex_names():
        stem = n.replace("/", "_")
        for i, d in enumerate(x for x in cv.amrex_damage(n) if x.kind == kind):
            out.append(Variant(f"{stem}-{kind}{i:03d}x", n, d))
    return out


def _write_plotfile(v: Variant, dest: Path) -> None:
    cv.write_plotfile_variant(v.fixture, v.damage, dest / v.name)


@pytest.mark.parametrize("kind", ["cut", "flip"])
def test_amrex(tmp_path, pristine_amrex, kind):
    STATS.setdefault("amrex", {})["fixtures"] = len(cv.amrex_names())
    run_batches("amrex", amrex_variants(kind), pristine_amrex, _write_plotfile, tmp_path)


def test_pristine_readings_hold_data(pristine_fst, pristine_amrex, pristine_wds):
    """A guard on the comparison: the pristine readings hold chunks to compare with."""
    for readings in (pristine_fst, pristine_amrex, pristine_wds):
        for name, r in readings.items():
            chunks = [c for n in r.nodes.values() for c in n.chunks.values()]
            assert sum(isinstance(c, bytes) for c in chunks) > 0, name
    assert np.isfinite(len(pristine_fst))
