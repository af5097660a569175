"""RPN standard files (fixtures/fst) through the mount, checked against librmn's own decoding.

Every record of every fixture is found in the mount (its variable from the attributes, its
chunk from the time and level coordinates) and compared with the array librmn decoded
(`fst_reference.py` reads those references; nothing here is compared with zarrmount's own
earlier output). The `records/` table is compared with librmn's `fstprm`, and damaged copies
check that bad input costs one record, one read or one file, never the daemon.

Most tests share one mount of fixtures/fst: its root is the directory group, every file a
child named after it, and `rsf/` the librmn 20 files.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zarr

from conftest import REPO, assert_bits_equal, assert_errno, mount
from fst_reference import (
    DATASETS,
    ENTRY,
    FIXTURES,
    LIBRMN20,
    NEW_STYLE,
    PAGE_HEADER,
    TURBO_FLAG,
    XDF19,
    XDF_HEADER,
    Record,
    iso_seconds,
    patch_entry,
    reference,
    stamp_seconds,
)

MiB = 1 << 20


@pytest.fixture(scope="module")
def mnt():
    with mount(FIXTURES) as m:
        yield m.path


def meta(path) -> dict:
    return json.loads((path / "zarr.json").read_bytes())


# --- finding a record in the mount -----------------------------------------------------------


@dataclass
class Variable:
    """A data array of an FST group, with its outer axes decoded."""

    name: str
    path: Path
    array: zarr.Array
    attrs: dict
    outer: list[str]  # the leading axes: "T" (time) or "Z" (level), in order
    times: np.ndarray | None  # Unix seconds
    levels: np.ndarray | None
    _values: np.ndarray | None = None

    @property
    def spatial_shape(self) -> tuple:
        return tuple(self.array.shape[len(self.outer) :])

    def values(self) -> np.ndarray:
        if self._values is None:
            self._values = self.array[...]
        return self._values

    def chunk_keys(self) -> set[tuple]:
        """Chunks present as files in the mount (an absent chunk is a missing record)."""
        root = self.path / "c"
        keys = set()
        for d, _, files in os.walk(root):
            for f in files:
                rel = (Path(d) / f).relative_to(root)
                keys.add(tuple(int(p) for p in rel.parts))
        return keys


def time_origin(units: str) -> int:
    """Unix seconds of a CF `seconds since YYYY-MM-DD HH:MM:SS`."""
    head, _, since = units.partition(" since ")
    assert head == "seconds", units
    return iso_seconds(since.strip().replace(" ", "T"))


def variables(group_path: Path) -> dict[str, Variable]:
    """The group's data arrays: those carrying RPN attributes (`nomvar`)."""
    group = zarr.open_group(group_path, mode="r")
    out = {}
    for name, array in group.arrays():
        attrs = dict(array.attrs)
        if "nomvar" not in attrs:
            continue
        dims = array.metadata.dimension_names
        outer, times, levels = [], None, None
        for dim in dims:
            coord = group.get(dim)
            axis = dict(coord.attrs).get("axis") if isinstance(coord, zarr.Array) else None
            if axis == "T":
                times = coord[...].astype(np.int64) + time_origin(coord.attrs["units"])
            elif axis == "Z":
                levels = coord[...]
            else:
                break
            outer.append(axis)
        assert outer[:1] == ["T"] and outer[1:] in ([], ["Z"]), f"{name}: outer axes {outer}"
        for values in (times, levels):
            assert values is None or len(np.unique(values)) == len(values), f"{name}: {values}"
        out[name] = Variable(name, group_path / name, array, attrs, outer, times, levels)
    return out


IDENTITY = ("nomvar", "typvar", "etiket", "grtyp", "ig1", "ig2", "ig3", "ig4", "kind")
# Attributes a variable carries when every record agrees on them.
CONSTANT = ("ip1", "ip2", "ip3", "deet", "npas", "datyp", "nbits")


def locate(rec: Record, vars: dict[str, Variable]) -> tuple[Variable, tuple]:
    """The variable and chunk holding `rec`: the array whose RPN attributes and record shape
    are the record's, at the index of its validity time and level on the outer axes."""
    want = {k: getattr(rec, k) for k in IDENTITY}
    found = [
        v
        for v in vars.values()
        if {k: v.attrs.get(k) for k in IDENTITY} == want and v.spatial_shape == rec.spatial_shape()
    ]
    assert len(found) == 1, f"{rec}: {len(found)} arrays match {want}: {[v.name for v in found]}"
    v = found[0]
    for k in CONSTANT:
        if k in v.attrs:
            assert v.attrs[k] == getattr(rec, k), f"{rec}: {v.name} says {k} = {v.attrs[k]}"
    index = []
    hits = np.flatnonzero(v.times == rec.valid)
    assert len(hits) == 1, f"{rec}: valid time {rec.valid} not on {v.name}'s axis {v.times}"
    index.append(int(hits[0]))
    # A level axis exactly when the record has a level (ip1 0 means none).
    assert ("Z" in v.outer) == (rec.ip1 != 0), f"{rec}: {v.name} has axes {v.outer}"
    if v.levels is not None:
        hits = np.flatnonzero(v.levels == rec.level)
        assert len(hits) == 1, f"{rec}: level {rec.level} not on {v.name}'s axis {v.levels}"
        index.append(int(hits[0]))
    return v, tuple(index) + (0,) * len(v.spatial_shape)


# --- comparing values ------------------------------------------------------------------------


def assert_same_bits(got: np.ndarray, want: np.ndarray, what: str) -> None:
    """Same dtype, shape and bytes (complex numbers too)."""
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    if want.dtype.kind == "c":
        got, want = got.view(want.real.dtype), want.view(want.real.dtype)
    assert_bits_equal(got, want, what)


def turbo_twin(rec: Record) -> Record:
    """For datyp 129 with nbits < 16: the datyp-1 record holding the same field packed to the
    same nbits. librmn 19.5 mis-decodes such records (it re-reads the decompressed 16-bit
    tokens as nbits-bit tokens, fst.md §2.10); the tokens are those of datyp 1 with the same
    nbits (turbo is a lossless second stage), so the written field is what librmn decodes
    from the twin. In datyps.fst that is R12, written from the same `real` array as T129/12
    (make_fst.py, make_datyps)."""
    same = ("ni", "nj", "nk", "nbits", "grtyp", "ig1", "ig2", "ig3", "ig4", "datev")
    twins = [
        r
        for r in reference(rec.file).records
        if r.datyp == 1 and all(getattr(r, k) == getattr(rec, k) for k in same)
    ]
    assert len(twins) == 1, f"{rec}: datyp-1 twins {twins}"
    return twins[0]


def expected_values(rec: Record) -> tuple[np.ndarray, str]:
    if rec.base_datyp == 1 and rec.datyp & TURBO_FLAG and rec.nbits < 16:
        twin = turbo_twin(rec)
        # librmn's own decoding is the documented garbage: if it ever equals the written
        # field, librmn was fixed and this record can be compared with its own reference.
        assert not np.array_equal(rec.values(), twin.values()), f"{rec}: librmn fixed?"
        return twin.values(), f"librmn's decoding of {twin.nomvar} (same field and nbits)"
    return rec.values(), "librmn's decoding"


def check_values(rec: Record, got: np.ndarray) -> None:
    want, source = expected_values(rec)
    what = f"{rec} vs {source}"
    assert got.shape == rec.spatial_shape(), f"{what}: shape {got.shape}"
    assert want.size == got.size, f"{what}: {want.size} values in the reference"
    want = want.reshape(got.shape)
    if rec.has_missing:
        # zarrmount shows NaN where librmn has its plug value (the field maximum).
        missing = np.zeros(got.size, bool)
        missing[rec.missing()] = True
        assert missing.any(), f"{what}: the reference has no missing points"
        missing = missing.reshape(got.shape)
        nan = np.flatnonzero(np.isnan(got))
        assert np.array_equal(nan, rec.missing()), f"{what}: NaN at {nan}, missing {rec.missing()}"
        if want.dtype.kind == "f":
            assert_same_bits(got[~missing], want[~missing], what)
        else:  # integers with missing points are shown as float64
            assert got.dtype == np.float64, f"{what}: dtype {got.dtype}"
            assert np.array_equal(got[~missing], want[~missing].astype(np.float64)), what
    elif rec.base_datyp == 0:
        # raw binary: librmn gives the words as uint32, zarrmount (like fstd2nc) as float32
        assert got.dtype == np.float32, f"{what}: dtype {got.dtype}"
        assert_bits_equal(got.view(np.uint32), want.view(np.uint32), what)
    else:
        assert_same_bits(got, want, what)


def check_records(group_path: Path, records: list[Record], ignore=()) -> None:
    """Every record is in exactly one chunk of one variable, with librmn's values, and the
    variables (but those named in `ignore`) hold no other chunk (no deleted, superseded or
    invented record)."""
    vars = {k: v for k, v in variables(group_path).items() if k not in ignore}
    placed: dict[tuple, Record] = {}
    failed = []  # every record is checked, and every failure reported
    for rec in records:
        try:
            v, index = locate(rec, vars)
            key = (v.name, index)
            assert key not in placed, f"{rec} and {placed.get(key)} are both in {v.name}{index}"
            placed[key] = rec
            check_values(rec, v.values()[index[: len(v.outer)]])
        except AssertionError as e:
            failed.append(str(e).splitlines()[0])
    for v in vars.values():
        want = {index for name, index in placed if name == v.name}
        if v.chunk_keys() != want:
            failed.append(f"{v.name}: chunks {sorted(v.chunk_keys())} != {sorted(want)}")
    assert not failed, f"{len(failed)} of {len(records)} records:\n" + "\n".join(failed)


# --- every record -----------------------------------------------------------------------------


def test_generator_rewrites_the_fixtures_byte_for_byte(fst_python):
    """fixtures/fst/make_fst.py, run again with librmn, writes exactly the committed files and
    references (into a temporary folder: it never writes into fixtures/ when checking)."""
    done = subprocess.run(
        [fst_python, REPO / "fixtures" / "fst" / "make_fst.py", "--check"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0 and "byte-identical" in done.stdout, done.stdout + done.stderr


@pytest.mark.parametrize("name", DATASETS)
def test_fixture_is_the_referenced_file(name):
    """The references describe these very files (size and SHA-256 recorded at generation)."""
    ref = reference(name)
    data = ref.path.read_bytes()
    assert (len(data), hashlib.sha256(data).hexdigest()) == (ref.size, ref.sha256)


def test_stamp_decoding_agrees_with_librmn():
    """The librmn 20 reference gives validity times as CMC stamps only; the decoding used
    for them gives librmn 19.5's text for every new-style stamp of the other fixtures."""
    checked = 0
    for name in XDF19:
        for rec in reference(name).records:
            if rec.datev >= NEW_STYLE:
                assert stamp_seconds(rec.datev) == rec.valid, rec
                checked += 1
    assert checked > 300


@pytest.mark.parametrize("name", DATASETS)
def test_every_record_equals_librmn(mnt, name):
    ref = reference(name)
    assert ref.data_records(), name
    check_records(mnt / name, ref.data_records())
    attrs = meta(mnt / name)["attributes"]
    assert not attrs.get("skipped"), attrs["skipped"]


@pytest.mark.parametrize("name", ["datyps.fst", "rsf/sample.rsf", "rsf/sample_xdf.fst"])
def test_deleted_record_is_not_shown(mnt, name):
    """The fixtures' erased record `DEL` (still in the file, flagged in the directory)."""
    assert reference(name).deleted == 1
    for v in variables(mnt / name).values():
        assert v.attrs["nomvar"] != "DEL", v.name


def test_root_lists_every_file(mnt):
    names = set(os.listdir(mnt))
    assert {n for n in XDF19} | {"rsf", "zarr.json"} <= names, sorted(names)
    assert {Path(n).name for n in LIBRMN20} <= set(os.listdir(mnt / "rsf"))
    for path in (mnt, mnt / "rsf"):
        assert not meta(path)["attributes"].get("skipped"), meta(path)["attributes"]


# --- the records/ table ------------------------------------------------------------------------

# fstprm's header fields; dates (datev, dateo) are checked apart.
FSTPRM = [
    "ni",
    "nj",
    "nk",
    "datyp",
    "nbits",
    "ip1",
    "ip2",
    "ip3",
    "ig1",
    "ig2",
    "ig3",
    "ig4",
    "deet",
    "npas",
]


def records_table(group_path: Path) -> pd.DataFrame:
    """`records/` as a pandas DataFrame built from its 1-D arrays (the user story)."""
    table = zarr.open_group(group_path / "records", mode="r")
    columns = {}
    for name, array in table.arrays():
        assert array.ndim == 1, f"records/{name}: shape {array.shape}"
        assert array.metadata.dimension_names == ("record",), name
        columns[name] = array[...]
    assert len({len(c) for c in columns.values()}) == 1, {k: len(c) for k, c in columns.items()}
    return pd.DataFrame(columns)


def live_rows(group_path: Path, ref) -> pd.DataFrame:
    """The table's live rows; they must be librmn's records, as many and in its order."""
    df = records_table(group_path)
    assert df["deleted"].dtype == bool
    assert int(df["deleted"].sum()) == ref.deleted, df["deleted"].tolist()
    live = df[~df["deleted"]].reset_index(drop=True)
    assert len(live) == len(ref.records), f"{len(live)} live rows, librmn lists {len(ref.records)}"
    return live


def assert_column(live: pd.DataFrame, col: str, want: list) -> None:
    got = live[col].to_numpy().astype(np.int64)
    bad = np.flatnonzero(got != np.asarray(want, np.int64))
    assert not bad.size, (
        f"{col}: {bad.size} rows differ, row {bad[0]}: {got[bad[0]]} != {want[bad[0]]}"
    )


@pytest.mark.parametrize("name", DATASETS)
def test_records_table_equals_fstprm(mnt, name):
    """Every live row holds librmn's fstprm fields of that record, in directory order;
    `deleted` is true for exactly the erased entries."""
    ref = reference(name)
    live = live_rows(mnt / name, ref)
    for col in FSTPRM + ["offset", "length", "kind"]:
        assert_column(live, col, [getattr(r, col) for r in ref.records])
    if ref.records[0].ubc is not None:
        assert_column(live, "ubc", [r.ubc for r in ref.records])
    if ref.records[0].dasiz is not None:
        # librmn 20 reports dasiz 0 (not set by older writers) as 32, or 64 above 32 bits
        # (rsf/README.md, fst.md §1.3); the table shows the stored value.
        stored = live["dasiz"].to_numpy()
        shown = np.where(stored == 0, np.where(live["nbits"] > 32, 64, 32), stored)
        assert shown.tolist() == [r.dasiz for r in ref.records], stored.tolist()
    levels = np.array([r.level for r in ref.records], np.float32)
    assert_bits_equal(live["level"].to_numpy(), levels, "level")
    attrs = meta(mnt / name)["attributes"]
    assert (attrs["records"], attrs["deleted_records"]) == (len(ref.records), ref.deleted)


@pytest.mark.parametrize("name", DATASETS)
def test_records_table_dates_equal_fstprm(mnt, name):
    """datev and dateo are the stamps fstprm gives (signed: extended dates are negative);
    `valid_time` is datev as Unix seconds, its `_FillValue` where there is no date."""
    ref = reference(name)
    live = live_rows(mnt / name, ref)
    assert_column(live, "datev", [r.datev for r in ref.records])
    assert_column(live, "dateo", [r.dateo for r in ref.records])
    table = zarr.open_group(mnt / name / "records", mode="r")
    fill = table["valid_time"].attrs["_FillValue"]
    assert_column(live, "valid_time", [fill if r.valid is None else r.valid for r in ref.records])
    # a user's first query: validity times as datetimes (NaT where there is none)
    got = live["valid_time"].to_numpy().astype("datetime64[s]")
    want = np.array(["NaT" if r.valid is None else r.valid for r in ref.records], "datetime64[s]")
    assert np.array_equal(got, want, equal_nan=True), (got, want)


def test_records_table_names_each_record(mnt):
    ref = reference("datyps.fst")
    df = records_table(mnt / "datyps.fst")
    live = df[~df["deleted"]].reset_index(drop=True)
    for col in ("nomvar", "typvar", "etiket", "grtyp"):
        assert [str(v).strip() for v in live[col]] == [getattr(r, col) for r in ref.records]


# --- bad input -----------------------------------------------------------------------------------


def copy_fixture(name: str, src: Path, as_name: str | None = None) -> Path:
    src.mkdir(parents=True, exist_ok=True)
    dest = src / (as_name or Path(name).name)
    shutil.copyfile(FIXTURES / name, dest)
    return dest


def assert_alive(m) -> None:
    """The daemon still runs, answers, and never panicked."""
    assert m.proc.poll() is None, f"daemon exited {m.proc.returncode}: {m.log.read_text()}"
    assert "zarr.json" in os.listdir(m.path)
    assert "panicked" not in m.log.read_text(), m.log.read_text()


def skipped_of(path: Path) -> list:
    return meta(path)["attributes"].get("skipped") or []


def assert_file_skipped(m, name: str, *words: str) -> str:
    """`name` is not shown; the root's `skipped` and the log give the reason."""
    assert name not in os.listdir(m.path)
    assert_errno(errno.ENOENT, os.stat, m.path / name)
    entries = [s for s in skipped_of(m.path) if Path(s["path"]).name == name]
    assert len(entries) == 1, skipped_of(m.path)
    reason = entries[0]["reason"]
    for w in words:
        assert w in reason, reason
    assert reason in m.log.read_text(), "the reason is not in the daemon's log"
    return reason


def vm_hwm(pid: int) -> int:
    """Peak resident memory of a process, bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


# Record-level damage is done to grid_latlon.fst (TT on 3 levels x 3 times, datyp 1, and PN,
# datyp 134) in its record 4, TT at 850 hPa, 1 h: a record in the middle of its variable.
DAMAGED = "grid_latlon.fst"


def victim() -> Record:
    rec = reference(DAMAGED).records[4]
    assert (rec.nomvar, float(rec.level)) == ("TT", 850.0), rec
    return rec


def damaged_copy(src: Path, **fields: int) -> Path:
    path = copy_fixture(DAMAGED, src)
    data = bytearray(path.read_bytes())
    patch_entry(data, victim(), **fields)
    path.write_bytes(data)
    return path


def others() -> list[Record]:
    return [r for r in reference(DAMAGED).data_records() if r != victim()]


LIBRMN_LIST = """
import json, sys
import fstd2nc_deps  # noqa: F401  (puts rpnpy and librmn 19.5 on sys.path)
import rpnpy.librmn.all as rmn
unit = rmn.fstopenall(sys.argv[1], rmn.FST_RO)
prms = [rmn.fstprm(k) for k in rmn.fstinl(unit)]
rmn.fstcloseall(unit)
print("PRM " + json.dumps([{k: int(p[k]) for k in ("ni", "nj", "nk", "datyp", "swa")} for p in prms]))
"""


def librmn_listing(fst_python: Path, path: Path) -> tuple[list[dict], str]:
    """librmn's fstprm of every record of `path`, and what librmn printed on the way."""
    argv = [fst_python, "-c", LIBRMN_LIST, path]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("PRM "))
    return json.loads(line[4:]), r.stdout + r.stderr


@pytest.mark.parametrize(
    "fields",
    [{"ni": 24}, {"ni": 0xFFFFFF, "nj": 0xFFFFFF, "nk": 0xFFFFF}, {"datyp": 9}],
    ids=["ni", "ni-nj-nk", "datyp"],
)
def test_patched_copies_are_what_librmn_reads(tmp_path, fst_python, fields):
    """The damage below is what it claims: librmn reads the patched fields in that one
    entry, the rest unchanged, and finds no fault in the directory page (its checksum)."""
    path = damaged_copy(tmp_path, **fields)
    prms, said = librmn_listing(fst_python, path)
    assert "checksum" not in said, said
    ref = reference(DAMAGED)
    assert [p["swa"] * 8 - 8 for p in prms] == [r.offset for r in ref.records]
    for p, r in zip(prms, ref.records):
        want = {k: getattr(r, k) for k in ("ni", "nj", "nk", "datyp")}
        if r == victim():
            want.update(fields)
        assert {k: p[k] for k in want} == want, (r, p)


def test_flipped_bit_is_what_librmn_calls_a_damaged_directory(tmp_path, fst_python):
    path = copy_fixture(DAMAGED, tmp_path)
    path.write_bytes(flip_entry_bit(path.read_bytes()))
    _, said = librmn_listing(fst_python, path)
    assert "incorrect checksum" in said, said


def flip_entry_bit(data: bytes) -> bytes:
    """One bit of the ip2 word of the 6th directory entry (the page checksum is left alone)."""
    data = bytearray(data)
    data[XDF_HEADER + PAGE_HEADER + 5 * ENTRY + 60] ^= 0x10
    return bytes(data)


@pytest.mark.parametrize("name", ["datyps.fst", "grid_rotated.fst"])
def test_truncated_xdf_keeps_the_records_before_the_cut(tmp_path, name):
    """Cut in the middle of the records: those past the cut are listed in `skipped`, every
    one before it reads as librmn decodes it."""
    ref = reference(name)
    path = copy_fixture(name, tmp_path / "src")
    cut = (ref.records[0].offset + ref.size) // 2
    path.write_bytes(path.read_bytes()[:cut])
    before = [r for r in ref.records if r.offset + r.length <= cut]
    after = [r for r in ref.records if r.offset + r.length > cut]
    assert before and after
    assert all(r in before for r in ref.records if r.is_meta)  # grids stay whole
    with mount(tmp_path / "src", foreground=True) as m:
        group = m.path / path.name
        skipped = skipped_of(group)
        past = [s for s in skipped if "does not fit" in s]
        assert len(past) >= len(after), skipped
        for r in after:
            assert any(f"at byte {r.offset}" in s for s in past), (r, skipped)
        check_records(group, [r for r in before if not r.is_meta])
        assert_alive(m)


def test_truncated_xdf_directory_skips_the_file(tmp_path):
    """many_records.fst has two directory pages; cut in the second, the file is left out
    with its reason, and the rest of the directory still mounts."""
    path = copy_fixture("many_records.fst", tmp_path / "src")
    copy_fixture("grid_x.fst", tmp_path / "src")
    data = path.read_bytes()
    last_page = (int.from_bytes(data[32:36], "big") - 1) * 8  # header word 8: last page (w64)
    assert 208 < last_page < len(data)
    path.write_bytes(data[: last_page + 1000])
    with mount(tmp_path / "src", foreground=True) as m:
        assert_file_skipped(m, "many_records.fst", "truncated")
        check_records(m.path / "grid_x.fst", reference("grid_x.fst").data_records())
        assert_alive(m)


def test_corrupt_directory_page_skips_the_file(tmp_path):
    """A flipped bit inside a directory entry fails the page checksum: the file is skipped,
    the reason logged; another file of the directory mounts as usual."""
    path = copy_fixture("datyps.fst", tmp_path / "src")
    copy_fixture("levels.fst", tmp_path / "src")
    path.write_bytes(flip_entry_bit(path.read_bytes()))
    with mount(tmp_path / "src", foreground=True) as m:
        assert_file_skipped(m, "datyps.fst", "checksum")
        check_records(m.path / "levels.fst", reference("levels.fst").data_records())
        assert_alive(m)


@pytest.mark.parametrize(
    "ni, nj, nk",
    [(0xFFFFFF, 0xFFFFFF, 0xFFFFF), (0xFFFFFF, 0xFFFFFF, 1), (0xFFFFFF, 255, 1)],
    ids=["overflows-u64", "petabytes", "over-4GiB"],
)
def test_huge_record_is_skipped_without_allocating(tmp_path, ni, nj, nk):
    """A directory entry claiming ni·nj·nk far beyond its stored length: the record is
    skipped with a reason, nothing that size is allocated, the other records read."""
    damaged_copy(tmp_path / "src", ni=ni, nj=nj, nk=nk)
    with mount(tmp_path / "src", foreground=True) as m:
        group = m.path / DAMAGED
        reasons = [s for s in skipped_of(group) if f"at byte {victim().offset}" in s]
        assert len(reasons) == 1 and "TT" in reasons[0], skipped_of(group)
        assert "too large" in reasons[0] or "more than" in reasons[0], reasons[0]
        check_records(group, others())
        table = records_table(group)
        row = table[table["offset"] == victim().offset]
        assert (row["ni"].tolist(), row["nj"].tolist(), row["nk"].tolist()) == ([ni], [nj], [nk])
        assert vm_hwm(m.proc.pid) < 256 * MiB, f"daemon peak RSS {vm_hwm(m.proc.pid) / MiB} MiB"
        assert_alive(m)


def test_size_beyond_the_payload_is_skipped(tmp_path):
    """ni doubled: the entry claims more values than its payload can hold at its nbits, so
    the record is left out with the reason, and the file's other records read as usual."""
    ni = 2 * victim().ni
    damaged_copy(tmp_path / "src", ni=ni)
    with mount(tmp_path / "src", foreground=True) as m:
        group = m.path / DAMAGED
        reasons = [s for s in skipped_of(group) if f"at byte {victim().offset}" in s]
        assert len(reasons) == 1 and "cannot fit" in reasons[0], skipped_of(group)
        check_records(group, others())
        assert_alive(m)


def test_short_payload_is_eio_for_that_chunk_only(tmp_path):
    """The record's length cut to just the bits of its values: plausible from the directory,
    but a datyp 1 payload also needs its 120-bit header, so decoding runs out: reading that
    chunk is EIO, every time; the other records read as usual."""
    rec = victim()
    assert rec.datyp == 1, rec
    values_w64 = -(-(rec.ni * rec.nj * rec.nbits) // 64)
    damaged_copy(tmp_path / "src", lng=10 + values_w64)  # 10 w64: keys + aux words
    with mount(tmp_path / "src", foreground=True) as m:
        group = m.path / DAMAGED
        assert not skipped_of(group), skipped_of(group)
        bad, index = locate(rec, variables(group))
        chunk = bad.path / "c" / "/".join(map(str, index))
        for _ in range(2):  # errors are not cached
            assert_errno(errno.EIO, Path.read_bytes, chunk)
        with pytest.raises(OSError):
            bad.array[...]
        check_records(group, [r for r in others() if r.nomvar != rec.nomvar], ignore=[bad.name])
        for other in (r for r in others() if r.nomvar == rec.nomvar):
            v, at = locate(other, variables(group))  # its chunk alone reads fine
            check_values(other, v.array[at[: len(v.outer)]])
        assert str(rec.offset) in m.log.read_text(), "the failed read is not logged"
        assert_alive(m)


@pytest.mark.parametrize(
    "name, nj",
    [("grid_latlon.fst", 8), ("grid_rotated_e.fst", 2)],
    ids=["L-grid", "E-grid"],
)
def test_lying_grid_size_costs_no_memory(tmp_path, name, nj):
    """A record of a few hundred bytes whose entry claims a 2^24 - 1 wide grid (decoded size
    under the 4 GiB a chunk may hold, so not skipped): the daemon must not build that grid's
    coordinates (2-D lat/lon for E grids) from the claim: its memory stays small, the chunk
    is EIO and the file's other records read."""
    rec = reference(name).records[0]
    path = copy_fixture(name, tmp_path / "src")
    data = bytearray(path.read_bytes())
    patch_entry(data, rec, ni=0xFFFFFF, nj=nj)
    path.write_bytes(data)
    with mount(tmp_path / "src", foreground=True) as m:
        group = m.path / name
        vars = variables(group)
        bad = [v for v in vars.values() if v.spatial_shape == (nj, 0xFFFFFF)]
        if bad:
            assert_errno(errno.EIO, Path.read_bytes, bad[0].path / "c" / "0" / "0" / "0" / "0")
        else:
            assert any(f"at byte {rec.offset}" in s for s in skipped_of(group)), skipped_of(group)
        ignore = [v.name for v in bad]
        check_records(group, [r for r in reference(name).data_records() if r != rec], ignore)
        peak = vm_hwm(m.proc.pid)
        assert peak < 128 * MiB, (
            f"daemon peak RSS {peak / MiB:.0f} MiB for a {path.stat().st_size} B file"
        )
        assert_alive(m)


@pytest.mark.parametrize("datyp", [9, 63])
def test_unknown_datyp_is_skipped(tmp_path, datyp):
    damaged_copy(tmp_path / "src", datyp=datyp)
    with mount(tmp_path / "src", foreground=True) as m:
        group = m.path / DAMAGED
        reasons = [s for s in skipped_of(group) if f"at byte {victim().offset}" in s]
        assert len(reasons) == 1, skipped_of(group)
        assert "TT" in reasons[0] and f"datyp {datyp}" in reasons[0], reasons[0]
        check_records(group, others())
        assert_alive(m)


def test_truncated_rsf_keeps_the_closed_segments(tmp_path):
    """multiseg.rsf is three segments (empty, S0R0..2, S1R0..2); cut inside the third, the
    second's records read as librmn decodes them and the third is listed as truncated."""
    name = "rsf/multiseg.rsf"
    ref = reference(name)
    path = copy_fixture(name, tmp_path / "src")
    first_lost = min(r.offset for r in ref.records if r.nomvar.startswith("S1"))
    cut = first_lost + 100
    path.write_bytes(path.read_bytes()[:cut])
    with mount(tmp_path / "src", foreground=True) as m:
        group = m.path / path.name
        kept = [r for r in ref.records if r.nomvar.startswith("S0")]
        assert len(kept) == 3
        check_records(group, kept)
        skipped = skipped_of(group)
        assert len(skipped) == 1 and "truncated" in skipped[0], skipped
        assert len(records_table(group)) == len(kept)
        assert_alive(m)


def test_rsf_cut_in_its_data_segment(tmp_path):
    """sample.rsf cut in the middle: its one data segment is incomplete, so no record is
    shown and `skipped` (of the file, or of the directory) says why."""
    name = "rsf/sample.rsf"
    path = copy_fixture(name, tmp_path / "src")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with mount(tmp_path / "src", foreground=True) as m:
        if path.name in os.listdir(m.path):
            assert not variables(m.path / path.name)
            skipped = skipped_of(m.path / path.name)
            assert any("truncated" in s for s in skipped), skipped
        else:
            assert_file_skipped(m, path.name)
        assert_alive(m)


def _after_magic(name: str, keep: int):
    def make(path: Path) -> None:
        head = (FIXTURES / name).read_bytes()[:keep]
        noise = np.random.default_rng(20261121).integers(0, 256, 40_000, dtype=np.uint8)
        path.write_bytes(head + noise.tobytes())

    return make


@pytest.mark.parametrize(
    "make",
    [
        _after_magic("datyps.fst", 16),  # XDF0STDR, then noise
        _after_magic("datyps.fst", 208),  # a whole XDF header, then a noise directory
        _after_magic("rsf/sample.rsf", 24),  # an RSF start-of-record and magic, then noise
    ],
    ids=["xdf-magic", "xdf-header", "rsf-magic"],
)
def test_garbage_after_a_valid_magic_skips_the_file(tmp_path, make):
    src = tmp_path / "src"
    src.mkdir()
    make(src / "garbage.fst")
    copy_fixture("grid_x.fst", src)
    with mount(src, foreground=True) as m:
        assert_file_skipped(m, "garbage.fst")
        check_records(m.path / "grid_x.fst", reference("grid_x.fst").data_records())
        assert_alive(m)
