"""librmn's view of the FST fixtures, for the mount tests: every live record of a file as
librmn lists it (fstprm fields, librmn's decoded values, where its missing points are), read
from the references committed next to the fixtures, and helpers to damage copies of XDF files.

Two references (fixtures/fst/README.md and fixtures/fst/rsf/README.md):
- `fixtures/fst/<name>.fst` with `reference/<name>.json` + `reference/<name>/NNN_*.npy`:
  librmn 19.5 (`fstinl`, `fstprm`, `fstluk` with missing-value substitution off, so a datyp + 64
  record holds its plug value at the points listed in `missing_indices`);
- `fixtures/fst/rsf/{sample.rsf, sample_xdf.fst, multiseg.rsf}` with `rsf/reference.json` +
  `rsf/*.npy`: librmn 20 (`fst24_read_next`, missing-value substitution on, so missing points
  hold librmn's float flag -1e38).

Nothing here reads zarrmount's output; the tests compare the mount with these.
"""

from __future__ import annotations

import functools
import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from conftest import REPO

FIXTURES = REPO / "fixtures" / "fst"
RSF_DIR = FIXTURES / "rsf"
# Files with a librmn 19.5 reference (their names relative to fixtures/fst), and the librmn 20 ones.
XDF19 = sorted(p.name for p in FIXTURES.glob("*.fst"))
LIBRMN20 = ["rsf/sample.rsf", "rsf/sample_xdf.fst", "rsf/multiseg.rsf"]
DATASETS = XDF19 + LIBRMN20
# Deleted records of the librmn 20 files, from rsf/README.md (its reference lists live ones only).
DELETED_LIBRMN20 = {"rsf/sample.rsf": 1, "rsf/sample_xdf.fst": 1, "rsf/multiseg.rsf": 0}

# Records that describe other records (grids, vertical coordinate), not fields: fstd2nc's
# exclusions (fst.md §5); the names in META_1D only when the record is 1-D.
META = {">>", "^^", "^>", "!!", "!!SF", "STNS"}
META_1D = {"HY", "##", "HH", "SV", "SH"}

MISSING_FLAG = 64
TURBO_FLAG = 128
LIBRMN20_MISSING_F32 = np.float32(-1.0e38)  # librmn's default float missing flag

# CMC date stamps (fst.md §3.2): new style counts 5-second steps from 1980-01-01 00:00 UTC.
NEW_STYLE = 123_200_000
EPOCH_1980 = 315_532_800  # 1980-01-01T00:00:00Z in Unix seconds


def stamp_seconds(stamp: int) -> int:
    """Unix seconds of a new-style CMC stamp (the librmn 20 reference has stamps, not text;
    `test_stamp_decoding_agrees_with_librmn` checks this against librmn 19.5's decoding)."""
    assert stamp >= NEW_STYLE, f"{stamp} is not a new-style stamp"
    s = stamp - NEW_STYLE
    return EPOCH_1980 + 5 * (s // 10 * 8 + s % 10)


def iso_seconds(iso: str | None) -> int | None:
    return None if iso is None else int(np.datetime64(iso, "s").astype(np.int64))


@dataclass(frozen=True)
class Record:
    """One live record, as librmn reports it."""

    file: str  # dataset name, relative to fixtures/fst
    index: int  # position in librmn's listing (live records in directory order)
    nomvar: str
    typvar: str
    etiket: str
    grtyp: str
    ni: int
    nj: int
    nk: int
    datyp: int
    nbits: int
    ip1: int
    ip2: int
    ip3: int
    ig1: int
    ig2: int
    ig3: int
    ig4: int
    deet: int
    npas: int
    datev: int  # CMC stamp
    dateo: int
    valid: int | None  # validity time, Unix seconds (None: datev 0, no date)
    level: np.float32  # ip1 decoded by librmn
    kind: int
    offset: int  # byte offset of the record in the file
    length: int  # stored bytes
    dasiz: int | None  # librmn 20 only
    ubc: int | None  # librmn 19.5 only
    npy: Path
    missing_indices: tuple | None  # librmn 19.5: flat indices of the missing points

    @property
    def is_meta(self) -> bool:
        one_d = self.ni == 1 or self.nj == 1
        return self.nomvar in META or (one_d and self.nomvar in META_1D)

    @property
    def has_missing(self) -> bool:
        return bool(self.datyp & MISSING_FLAG)

    @property
    def base_datyp(self) -> int:
        return self.datyp & ~(MISSING_FLAG | TURBO_FLAG)

    def values(self) -> np.ndarray:
        """librmn's decoded array, C order (nj, ni) or (nk, nj, ni)."""
        return np.load(self.npy)

    def missing(self) -> np.ndarray:
        """Flat indices of the points librmn treats as missing (datyp + 64)."""
        assert self.has_missing
        if self.missing_indices is not None:
            return np.asarray(self.missing_indices, dtype=np.int64)
        # librmn 20 read with substitution on: its flag marks the missing points.
        values = self.values().ravel()
        assert values.dtype.kind == "f", f"{self}: no missing flag known for {values.dtype}"
        return np.flatnonzero(values == LIBRMN20_MISSING_F32)

    def spatial_shape(self) -> tuple:
        """Shape of one record in the mount: (k,) when nk > 1, (j,) when nj > 1, then (i,)."""
        return (
            *((self.nk,) if self.nk > 1 else ()),
            *((self.nj,) if self.nj > 1 else ()),
            self.ni,
        )

    def __str__(self) -> str:
        return f"{self.file} record {self.index} ({self.nomvar} {self.etiket!r} ip1 {self.ip1})"


@dataclass(frozen=True)
class Reference:
    name: str
    path: Path
    size: int
    sha256: str
    deleted: int
    records: tuple[Record, ...]

    def data_records(self) -> list[Record]:
        return [r for r in self.records if not r.is_meta]


@functools.cache
def reference(name: str) -> Reference:
    if name in LIBRMN20:
        return _librmn20(name)
    return _xdf19(name)


def _xdf19(name: str) -> Reference:
    stem = Path(name).stem
    doc = json.loads((FIXTURES / "reference" / f"{stem}.json").read_text())
    records = tuple(
        Record(
            file=name,
            index=r["index"],
            **{k: r[k] for k in _KEYS},
            valid=iso_seconds(r["datev_iso"]),
            level=np.float32(r["ip1_value"]),
            kind=r["ip1_kind"],
            offset=(r["swa"] - 1) * 8,  # swa: 64-bit words from 1
            length=r["lng"] * 4,  # lng: 32-bit words, as rpnpy reports it
            dasiz=None,
            ubc=r["ubc"],
            npy=FIXTURES / "reference" / r["npy"],
            missing_indices=tuple(r["missing_indices"]) if "missing_indices" in r else None,
        )
        for r in doc["records"]
    )
    return Reference(
        name,
        FIXTURES / name,
        doc["size_bytes"],
        doc["sha256"],
        doc["header"]["neff"],
        records,
    )


def _librmn20(name: str) -> Reference:
    doc = json.loads((RSF_DIR / "reference.json").read_text())[Path(name).name]
    records = tuple(
        Record(
            file=name,
            index=r["index"],
            **{k: r[k] for k in _KEYS},
            valid=stamp_seconds(r["datev"]) if r["datev"] else None,
            level=np.float32(r["ip1_value"]),
            kind=r["ip1_kind"],
            offset=r["file_offset"],
            length=r["total_stored_bytes"],
            dasiz=r["dasiz"],
            ubc=None,
            npy=RSF_DIR / r["npy"],
            missing_indices=None,
        )
        for r in doc["records"]
    )
    return Reference(
        name, FIXTURES / name, doc["size_bytes"], doc["sha256"], DELETED_LIBRMN20[name], records
    )


_KEYS = [
    "nomvar",
    "typvar",
    "etiket",
    "grtyp",
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
    "datev",
    "dateo",
]


# --- damaging copies of XDF files (fst.md §1) --------------------------------------------------

XDF_HEADER = 208  # the first directory page starts right after the file header
PAGE_HEADER = 32  # 8 u32
ENTRY = 72  # 18 u32
PAGE = PAGE_HEADER + 256 * ENTRY
CHECKSUM_WORD = 6  # the XOR of every u32 from word 4 to the end of the page must be 0


def page_words(buf: bytes, page: int = XDF_HEADER) -> list[int]:
    return list(struct.unpack_from(f">{PAGE // 4}I", buf, page))


def fix_checksum(buf: bytearray, page: int = XDF_HEADER) -> None:
    """Rewrites a directory page's checksum so that only the intended damage is tested."""
    words = page_words(buf, page)
    x = 0
    for i, w in enumerate(words[4:], start=4):
        if i != CHECKSUM_WORD:
            x ^= w
    struct.pack_into(">I", buf, page + 4 * CHECKSUM_WORD, x)


def entry_of(buf: bytes, record: Record, page: int = XDF_HEADER) -> int:
    """Byte offset of the directory entry (in the page at `page`) of the record at
    `record.offset` (word 1 of an entry is the record's address in 64-bit words from 1)."""
    count = page_words(buf, page)[5]
    for i in range(count):
        at = page + PAGE_HEADER + i * ENTRY
        if struct.unpack_from(">I", buf, at + 4)[0] == record.offset // 8 + 1:
            return at
    raise AssertionError(f"no directory entry for {record}")


def patch_entry(buf: bytearray, record: Record, **fields: int) -> None:
    """Sets lng, ni, nj, nk and/or datyp in a record's directory entry and fixes the
    checksum. Entry words (fst.md §1.3): 0 = flags:8 lng:24 (w64), 3 = ni:24 grtyp:8,
    4 = nj:24 datyp:8, 5 = nk:20 ubc:12."""
    at = entry_of(buf, record)
    w = list(struct.unpack_from(">18I", buf, at))
    if "lng" in fields:
        w[0] = (w[0] & 0xFF000000) | (fields["lng"] & 0xFFFFFF)
    if "ni" in fields:
        w[3] = (fields["ni"] & 0xFFFFFF) << 8 | (w[3] & 0xFF)
    if "nj" in fields:
        w[4] = (fields["nj"] & 0xFFFFFF) << 8 | (w[4] & 0xFF)
    if "datyp" in fields:
        w[4] = (w[4] & ~0xFF) | (fields["datyp"] & 0xFF)
    if "nk" in fields:
        w[5] = (fields["nk"] & 0xFFFFF) << 12 | (w[5] & 0xFFF)
    struct.pack_into(">18I", buf, at, *w)
    fix_checksum(buf)
