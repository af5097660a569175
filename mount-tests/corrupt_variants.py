"""Damaged copies of the fixtures for the corrupt-input suite: truncations and byte flips.

Each builder returns `Damage` values: which file of the fixture is changed, and how (cut at a
byte, or one byte XORed with a mask), with a label naming the structure hit. Cut points are
structural boundaries found in the file (end of a header, inside a directory entry, at and
inside records and members, the last byte) plus a seeded spread; flips hit named fields of
headers and directories. `locator` marks a flip in a field that only says where data lies
(an address, a length, a data file name): the format has no way to notice such a flip, so
its variant is held to consistency only (see test_corrupt.py).
"""

from __future__ import annotations

import json
import random
import struct
from dataclasses import dataclass, replace
from pathlib import Path

from conftest import REPO

SEED = 20261121
SPREAD = 4  # seeded cut points per damaged file, beside the structural ones


@dataclass(frozen=True)
class Damage:
    file: str  # relative to the fixture (a file fixture: "")
    kind: str  # "cut" or "flip"
    at: int  # cut length, or flipped byte offset
    mask: int = 0  # XOR mask of a flip
    label: str = ""
    locator: bool = False
    hides: bool = False  # breaks what detects the format: the file may just not be a dataset

    def apply(self, data: bytes) -> bytes:
        if self.kind == "cut":
            return data[: self.at]
        b = bytearray(data)
        b[self.at] ^= self.mask
        return bytes(b)

    def describe(self) -> str:
        where = f"{self.file}: " if self.file else ""
        how = (
            f"cut to {self.at} bytes" if self.kind == "cut" else f"byte {self.at} ^ {self.mask:#x}"
        )
        return f"{where}{how} ({self.label})"


def cuts(
    file: str, size: int, points: dict[int, str], spread: int = SPREAD, detect: int = 0
) -> list[Damage]:
    """Cuts at the labelled points inside (0, size), plus `spread` seeded ones; a cut before
    byte `detect` leaves too little to recognise the format."""
    rng = random.Random(f"{SEED}:{file}:{size}")
    points = {p: lab for p, lab in points.items() if 0 < p < size}
    points.setdefault(size - 1, "last byte missing")
    for _ in range(spread):
        points.setdefault(rng.randrange(1, size), "seeded")
    return [
        Damage(file, "cut", p, label=lab, hides=p < detect) for p, lab in sorted(points.items())
    ]


def flip(
    file: str, at: int, label: str, mask: int = 0x01, locator: bool = False, hides: bool = False
) -> Damage:
    return Damage(file, "flip", at, mask, label, locator, hides or "magic" in label)


def text_flip(file: str, data: bytes, at: int, label: str, locator: bool = False) -> Damage:
    """A digit becomes another digit (its meaning changes, its syntax does not); any other
    character gets its 0x20 bit flipped (case, or punctuation into something else)."""
    c = data[at]
    return flip(file, at, label, 0x01 if 48 <= c <= 57 else 0x20, locator)


# --- FST ------------------------------------------------------------------------------------

FST = REPO / "fixtures" / "fst"
XDF_HEADER, PAGE_HEADER, ENTRY = 208, 32, 72
PAGE = PAGE_HEADER + 256 * ENTRY


def fst_names() -> list[str]:
    return sorted(p.name for p in FST.glob("*.fst")) + [
        "rsf/sample.rsf",
        "rsf/sample_xdf.fst",
        "rsf/multiseg.rsf",
    ]


def _be(data: bytes, at: int) -> int:
    return struct.unpack_from(">I", data, at)[0]


def _xdf_pages(data: bytes) -> list[int]:
    pages, at = [], XDF_HEADER
    while 0 < at < len(data) and len(pages) < 64:
        pages.append(at)
        nxt = _be(data, at + 16)
        at = (nxt - 1) * 8 if nxt else 0
    return pages


def _xdf_entries(data: bytes) -> list[int]:
    out = []
    for page in _xdf_pages(data):
        out += [page + PAGE_HEADER + i * ENTRY for i in range(_be(data, page + 20))]
    return out


def _fix_checksum(data: bytearray, page: int) -> None:
    words = struct.unpack_from(f">{PAGE // 4}I", data, page)
    x = 0
    for i, w in enumerate(words[4:], start=4):
        if i != 6:
            x ^= w
    struct.pack_into(">I", data, page + 24, x)


@dataclass(frozen=True)
class FixedFlip(Damage):
    """An XDF directory flip with the page checksum made right again, so that the parser
    meets the changed field itself."""

    page: int = 0

    def apply(self, data: bytes) -> bytes:
        b = bytearray(super().apply(data))
        _fix_checksum(b, self.page)
        return bytes(b)


def xdf_damage(data: bytes) -> list[Damage]:
    entries = _xdf_entries(data)
    pages = _xdf_pages(data)
    records = sorted((_be(data, e + 4) - 1) * 8 for e in entries)
    points = {
        12: "inside the magic",
        104: "inside the file header",
        XDF_HEADER: "end of the file header",
        XDF_HEADER + 20: "inside the page header",
        XDF_HEADER + PAGE_HEADER + 36: "inside the first entry",
        XDF_HEADER + PAGE_HEADER + ENTRY * max(1, len(entries) // 2) + 8: "mid directory",
        XDF_HEADER + PAGE: "end of the first page",
    }
    for p in pages[1:]:
        points[p + 1000] = "inside a later page"
    for r in records[:2] + records[len(records) // 2 : len(records) // 2 + 1] + records[-1:]:
        points[r] = "at a record"
        points[r + 40] = "inside a record's key copy"
        points[r + 200] = "inside a record's payload"
    out = cuts("", len(data), points, detect=16)
    header = {
        16: "header fsiz",
        31: "header nbd",
        35: "header plst",
        43: "header lprm",
        51: "header neff",
        55: "header nrec",
        9: "header magic",
    }
    out += [flip("", at, lab) for at, lab in header.items()]
    page = pages[0]
    out += [
        flip("", page + 19, "page nxt_addr"),
        flip("", page + 23, "page nent"),
        flip("", page + 27, "page checksum"),
    ]
    rng = random.Random(f"{SEED}:xdf:{len(data)}")
    entry = entries[rng.randrange(len(entries))]
    out.append(flip("", entry + 13, "entry ni, checksum left bad"))
    # (byte in the entry, mask): name. Each record repeats its entry in its own header, which
    # zarrmount checks on every read, so none of these is a locator flip.
    fields = {
        (3, 0x01): "lng",
        (7, 0x01): "addr",
        (11, 0x01): "nbits",
        (14, 0x01): "ni",
        (15, 0x01): "grtyp",
        (19, 0x01): "datyp",
        (23, 0x01): "ubc (unused)",
        (54, 0x01): "nomvar",
        (59, 0x10): "ip1",
        (71, 0x01): "date stamp",
    }
    for (off, mask), name in fields.items():
        label = f"entry {name}, checksum fixed"
        out.append(FixedFlip("", "flip", entry + off, mask, label, page=page))
    rec = (_be(data, entry + 4) - 1) * 8
    out += [
        flip("", rec + 15, "record key copy: ni"),
        flip("", rec + 55, "record key copy: nomvar"),
    ]
    return out


def _le(data: bytes, at: int) -> int:
    return struct.unpack_from("<I", data, at)[0]


def _le64(data: bytes, at: int) -> int:
    return _le(data, at) << 32 | _le(data, at + 4)


def rsf_segments(data: bytes) -> list[tuple[int, int, int]]:
    """(segment offset, directory offset, directory size) of every closed segment."""
    out, off = [], 0
    while off + 72 <= len(data):
        sseg, vdir, vdirs = _le64(data, off + 36), _le64(data, off + 44), _le64(data, off + 52)
        if sseg == 0:
            break
        out.append((off, off + vdir, vdirs))
        off += sseg
    return out


def rsf_damage(data: bytes) -> list[Damage]:
    segs = rsf_segments(data)
    points = {20: "inside the magic", 72: "end of the first SOS", 140: "end of the empty segment"}
    flips = []
    for seg, vdir, vdirs in segs:
        points[seg + 72] = "first record of a segment"
        points[seg + 100] = "inside a record's metadata"
        if vdirs:
            points[vdir] = "at the directory record"
            points[vdir + 50] = "inside the directory"
            points[vdir + vdirs // 2] = "mid directory"
            points[vdir + vdirs] = "at the EOS"
            n = _le(data, vdir + 16)
            first = vdir + 20
            points[first + 40] = "inside a directory entry"
            flips += [
                flip("", vdir + 16, "directory entry count"),
                flip("", first + 4, "entry wa"),
                flip("", first + 12, "entry rl"),
                flip("", first + 24, "entry ml"),
                flip("", first + 32 + 4 * 3, "entry meta: ni"),
                flip("", first + 32 + 4 * 4, "entry meta: datyp", 0x02),
                flip("", first + 32 + 4 * 13 + 3, "entry meta: nomvar", 0x02),
                flip("", first + 32 + 4 * 14, "entry meta: ip1", 0x02),
                flip("", first + 32 + 4 * 0, "entry meta: deleted flag", 0x81),
                flip("", vdir + 2, "directory SOR length"),
            ]
            assert n > 0
        flips += [
            flip("", seg + 36 + 4, "SOS sseg"),
            flip("", seg + 44 + 4, "SOS vdir"),
            flip("", seg + 52 + 4, "SOS vdirs"),
        ]
        if seg > 0:
            rec = seg + 72
            flips += [
                flip("", rec, "record SOR type", 0x80),
                flip("", rec + 8 + 4, "record SOR rl"),
            ]
    flips.append(flip("", 18, "magic"))
    return cuts("", len(data), points, detect=24) + flips


def fst_damage(name: str) -> list[Damage]:
    data = (FST / name).read_bytes()
    return xdf_damage(data) if data[8:12] == b"XDF0" else rsf_damage(data)


# --- WebDataset ------------------------------------------------------------------------------

WDS = REPO / "fixtures" / "wds"


def wds_names() -> list[str]:
    return sorted(p.stem for p in WDS.glob("*.tar"))


def wds_damage(stem: str) -> list[Damage]:
    data = (WDS / f"{stem}.tar").read_bytes()
    ref = json.loads((WDS / "reference" / f"{stem}.json").read_text("utf-8"))
    members = ref["members"]
    rng = random.Random(f"{SEED}:{stem}")
    picks = sorted({0, len(members) // 2, len(members) - 1, rng.randrange(len(members))})
    points, flips = {}, []
    for i in picks:
        m = members[i]
        h, d = m["header_offset"], m["offset_data"]
        points[h] = f"at member {i}'s header"
        points[h + 100] = f"inside member {i}'s header"
        points[d] = f"end of member {i}'s header"
        if m["size"] > 1:
            points[d + m["size"] // 2] = f"inside member {i}'s data"
        points[d + m["size"]] = f"end of member {i}'s data"
        last = m["header_records"][-1]["offset"]
        flips += [
            flip("", last + 0, f"member {i} name, first byte", 0x20),
            flip("", last + m["name"].rfind(".") % 100, f"member {i} name, the dot", 0x20),
            flip("", last + 124 + 10, f"member {i} size, last digit", 0x01, locator=True),
            flip("", last + 148 + 3, f"member {i} checksum"),
            flip("", last + 156, f"member {i} typeflag", 0x04),
            flip("", last + 257, f"member {i} magic", 0x20),
        ]
        for rec in m["header_records"][:-1]:
            if rec.get("typeflag") == "x":
                flips += [
                    flip("", rec["offset"] + 512, f"member {i} PAX record length", 0x01),
                    flip("", rec["offset"] + 512 + 4, f"member {i} PAX keyword", 0x20),
                ]
        if m["name"].endswith(".npy") and m["size"] >= 16 and d + 16 <= len(data):
            flips += [
                flip("", d + 1, f"member {i} npy magic", 0x20),
                flip("", d + 8, f"member {i} npy header length", 0x01),
            ]
            head = data[d : d + 128]
            for word, lab in ((b"descr", "descr"), (b"shape", "shape")):
                at = head.find(word)
                if at >= 0:
                    k = head.find(b"(" if word == b"shape" else b"<", at)
                    k = at + 9 if k < 0 else k + 1
                    # the shape is what the payload is read as: a changed digit reads fewer
                    # or more values, as numpy does
                    lab_locator = lab == "shape"
                    flips.append(text_flip("", data, d + k, f"member {i} npy {lab}", lab_locator))
    end = max(m["offset_data"] + m["size"] for m in members)
    points[-(-end // 512) * 512] = "at the end-of-archive blocks"
    # Flips in the first header can make the file no tar at all.
    flips = [replace(f, hides=True) if f.at < members[0]["offset_data"] else f for f in flips]
    return cuts("", len(data), points, detect=members[0]["offset_data"]) + flips


# --- AMReX plotfiles -------------------------------------------------------------------------

AMREX = REPO / "fixtures" / "amrex"


def amrex_names() -> list[str]:
    headers = AMREX.glob("**/Header")
    return sorted(
        str(p.parent.relative_to(AMREX)) for p in headers if p.read_bytes().startswith(b"HyperCLaw")
    )


def _line_starts(data: bytes) -> list[int]:
    return [0] + [i + 1 for i, c in enumerate(data) if c == 0x0A and i + 1 < len(data)]


def _text_cuts(file: str, data: bytes, detect: int = 0) -> list[Damage]:
    starts = _line_starts(data)
    pts = {starts[1]: "after the first line", starts[len(starts) // 2]: "mid file, at a line"}
    pts[starts[len(starts) // 2] + 1] = "inside a line"
    pts[starts[-1]] = "before the last line"
    pts[len(data) - 2] = "inside the last line"
    return cuts(file, len(data), pts, spread=2, detect=detect)


def _nth_line(data: bytes, n: int) -> int:
    return _line_starts(data)[n]


def amrex_damage(name: str) -> list[Damage]:
    root = AMREX / name
    header = (root / "Header").read_bytes()
    out = _text_cuts("Header", header, detect=_nth_line(header, 1))
    lines = header.decode().splitlines(keepends=True)
    nf = int(lines[1])
    at = lambda n: _nth_line(header, n)
    out += [
        replace(text_flip("Header", header, 0, "version line"), hides=True),
        text_flip("Header", header, at(1), "number of fields"),
        text_flip("Header", header, at(2), "a field name"),
        text_flip("Header", header, at(2 + nf), "dim"),
        text_flip("Header", header, at(3 + nf) + 2, "time"),
        text_flip("Header", header, at(4 + nf), "finest level"),
        text_flip("Header", header, at(7 + nf) + 1, "ref_ratio"),
        text_flip("Header", header, at(8 + nf) + 3, "domain box"),
        text_flip("Header", header, at(9 + nf), "steps"),
    ]
    cell_dir = header.rfind(b"Level_0/Cell")
    if cell_dir >= 0:
        out.append(text_flip("Header", header, cell_dir + 6, "level 0 path"))
    levels = sorted(p.name for p in root.glob("Level_*"))
    for lev in (levels[0], levels[-1]) if len(levels) > 1 else levels:
        f = f"{lev}/Cell_H"
        cell_h = (root / f).read_bytes()
        out += _text_cuts(f, cell_h)
        text = cell_h.decode()
        box = text.find("((")
        fab = text.find("FabOnDisk:")
        out += [
            text_flip(f, cell_h, 0, "VisMF version"),
            text_flip(f, cell_h, _nth_line(cell_h, 2), "number of components"),
            text_flip(f, cell_h, box + 2, "first box corner"),
            text_flip(f, cell_h, text.find(")", box) - 1, "first box corner, last digit"),
        ]
        if fab >= 0:
            end = text.find("\n", fab)
            out += [
                text_flip(f, cell_h, fab + 15, "FabOnDisk file name", locator=True),
                text_flip(f, cell_h, end - 1, "FabOnDisk offset", locator=True),
                text_flip(f, cell_h, fab + 3, "FabOnDisk keyword"),
            ]
        data_files = sorted((root / lev).glob("Cell_D_*"))
        for dpath in data_files[:1] + data_files[-1:] if lev == levels[0] else data_files[-1:]:
            df = f"{lev}/{dpath.name}"
            cell_d = dpath.read_bytes()
            starts = [int(ln.split()[2]) for ln in text.splitlines() if dpath.name in ln]
            pts = {}
            for s in starts[:2] + starts[-1:]:
                pts[s] = "at a FAB"
                pts[s + 3] = "inside a FAB's first bytes"
                nl = cell_d.find(b"\n", s, s + 200)
                if cell_d[s : s + 3] == b"FAB" and nl > 0:
                    pts[nl + 1] = "end of a FAB header line"
                    out += [
                        text_flip(df, cell_d, s + 6, "FAB real descriptor"),
                        text_flip(df, cell_d, nl - 1, "FAB component count"),
                        text_flip(df, cell_d, cell_d.find(b"((", s) + 2, "FAB box corner"),
                    ]
            if starts:
                pts[(starts[0] + len(cell_d)) // 2] = "mid payload"
            out += cuts(df, len(cell_d), pts, spread=2)
    return out


def write_plotfile_variant(name: str, damage: Damage, dest: Path) -> None:
    """A copy of plotfile `name` at `dest` with `damage` applied to one of its files."""
    import shutil

    shutil.copytree(AMREX / name, dest)
    target = dest / damage.file
    target.write_bytes(damage.apply(target.read_bytes()))
