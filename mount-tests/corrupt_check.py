"""Lining a damaged dataset's reading up with the pristine one (corrupt_read.py readings).

The pristine reading is itself checked against the formats' references first
(test_corrupt.py, `pristine`), so "equal to the pristine chunk" means "equal to librmn's
decoding / the generator's composite / webdataset's sample".

`compare(damaged, pristine, fmt, strict)` returns the problems found:
- an array whose metadata (shape, data type, chunk grid, codecs, fill value, dimension
  names, attributes) equals the pristine one's is compared chunk by chunk: a chunk that reads
  must hold the pristine chunk's bytes, one that is absent must be absent in the pristine
  reading too unless the dataset lists something in `skipped` (then the reader was told);
- otherwise the format lines elements up: FST data variables by their time and level
  coordinate values (one chunk = one record), FST 1-D coordinates by value, `records/` rows
  by their `offset`; WebDataset arrays and ragged groups by sample index, the index being
  accepted only where `key` agrees; a member the damage removed may read as absent (fill
  value with its `.present` flag false), never as other data;
- anything else (plotfile arrays whose shape changed, FST 2-D coordinates of a changed grid)
  is only checked to be size- and dtype-consistent (corrupt_read.py) and counted `unaligned`.
After an FST flip, data variables and 1-D coordinates are always lined up by value (a flip
may move a record to another variable, time or level), and a record, variable or
coordinate value the original lacks is what the flip made, counted `unaligned`; the
`records/` table (the directory itself) and auxiliary coordinates are not compared. With `locator` (a flip in a field that says where
data lies or how it is packed) nothing beyond consistency is asserted.
"""

from __future__ import annotations

import json
import re

import numpy as np

from corrupt_read import ABSENT, EIO, Node, Reading, decode

SAME_META = (
    "shape",
    "data_type",
    "chunk_grid",
    "codecs",
    "fill_value",
    "dimension_names",
    "attributes",
)


def same_meta(a: Node, b: Node) -> bool:
    return all(a.meta.get(k) == b.meta.get(k) for k in SAME_META)


def skipped_entries(reading: Reading) -> list:
    out = []
    for n in reading.nodes.values():
        if not n.is_array:
            out += list(n.attrs.get("skipped") or [])
    return out


class Outcome:
    """What comparing one damaged dataset with the pristine one found."""

    def __init__(self):
        self.problems: list[str] = []
        self.compared = 0  # chunks or elements found equal to the pristine reading
        self.unaligned = 0  # arrays only checked for consistency
        self.cut = True  # a truncation (else a flip, which may change what a record is)

    def lost(self, problem: str) -> None:
        """A record or variable the original lacks: wrong after a cut; after a flip, the
        flip changed the record's identity, time or level."""
        if self.cut:
            self.problems.append(problem)
        else:
            self.unaligned += 1


def compare(damaged: Reading, pristine: Reading, fmt: str, kind: str, locator: bool) -> Outcome:
    out = Outcome()
    out.cut = kind == "cut"
    strict = out.cut or not locator
    told = bool(skipped_entries(damaged))
    for path, d in damaged.nodes.items():
        if not d.is_array:
            continue
        r = pristine.nodes.get(path)
        if fmt == "fst" and not out.cut:
            # A flip may move a record to another variable, time or level: data variables
            # and 1-D coordinates are lined up by value; the rest (the directory table,
            # auxiliary coordinates) holds what the flipped fields say.
            if strict and ("nomvar" in d.attrs or len(d.dims) == 1 and d.dims[0] == path):
                _fst_align(path, d, damaged, pristine, out)
            else:
                out.unaligned += 1
            continue
        if fmt == "wds":  # samples are lined up by key, whatever the metadata says
            if strict:
                _wds_align(path, d, damaged, pristine, out)
            else:
                out.unaligned += 1
            continue
        if r is not None and r.is_array and same_meta(d, r):
            if strict:
                _same_chunks(d, r, told, out)
            continue
        if not strict:
            out.unaligned += 1
        elif fmt == "fst":
            _fst_align(path, d, damaged, pristine, out)
        elif fmt == "wds":
            _wds_align(path, d, damaged, pristine, out)
        else:
            out.unaligned += 1
    return out


def _same_chunks(d: Node, r: Node, told: bool, out: Outcome) -> None:
    for key, got in d.chunks.items():
        want = r.chunks.get(key)
        if got == EIO:
            continue
        if got == ABSENT:
            if want not in (ABSENT, None) and not told:
                out.problems.append(f"{d.path} chunk {key}: absent, nothing in `skipped` says why")
            continue
        if want == ABSENT:
            out.problems.append(f"{d.path} chunk {key}: data where the original has none")
        elif isinstance(want, bytes) and got != want:
            out.problems.append(f"{d.path} chunk {key}: {_first_diff(got, want)}")
        else:
            out.compared += 1


def _first_diff(got: bytes, want: bytes) -> str:
    at = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
    return f"differs from the reference at byte {at} of {len(want)}"


# --- FST ------------------------------------------------------------------------------------


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else ""


def _join(group: str, name: str) -> str:
    return f"{group}/{name}" if group else name


def full_values(node: Node) -> np.ndarray | None:
    """A whole array from its chunks (None if a chunk is EIO or the array is vlen)."""
    if node.dtype() is None or any(v == EIO for v in node.chunks.values()):
        return None
    fill = node.meta.get("fill_value")
    out = np.empty(
        [-(-s // c) * c for s, c in zip(node.shape, node.chunk_shape)],
        node.dtype().newbyteorder("="),
    )
    out[...] = np.nan if isinstance(fill, str) else fill
    for key, data in node.chunks.items():
        if isinstance(data, bytes):
            sl = tuple(slice(k * c, (k + 1) * c) for k, c in zip(key, node.chunk_shape))
            out[sl] = decode(node, data)
    return out[tuple(slice(0, s) for s in node.shape)]


UNITS = re.compile(r"^seconds since (\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d)")


def _coord(reading: Reading, group: str, dim: str) -> np.ndarray | None:
    node = reading.nodes.get(_join(group, dim))
    if node is None or node.dtype() is None:
        return None
    values = full_values(node)
    if values is None:
        return None
    m = UNITS.match(str(node.attrs.get("units", "")))
    if m:  # absolute times: the origin may move when the first time goes
        origin = np.datetime64(f"{m[1]}T{m[2]}", "s").astype(np.int64)
        return values.astype(np.int64) + origin
    return values


IDENTITY = ("nomvar", "typvar", "etiket", "grtyp", "ig1", "ig2", "ig3", "ig4", "kind")


def _fst_align(path: str, d: Node, damaged: Reading, pristine: Reading, out: Outcome) -> None:
    group = _parent(path)
    if group.endswith("records") and path in pristine.nodes:
        _records_align(group, path, d, damaged, pristine, out)
    elif "nomvar" in d.attrs:
        _fst_variable(path, d, damaged, pristine, out)
    elif len(d.dims) == 1 and d.dims[0] == path.rsplit("/", 1)[-1]:
        _fst_coordinate(path, d, damaged, pristine, out)
    else:
        out.unaligned += 1


def _same_kind(a: Node, b: Node) -> bool:
    keys = ("axis", "standard_name")
    return b.is_array and all(a.attrs.get(k) == b.attrs.get(k) for k in keys)


def _fst_coordinate(path: str, d: Node, damaged: Reading, pristine: Reading, out) -> None:
    """A 1-D coordinate (its name may differ from the original's: fstd2nc numbers clashing
    axes): every value must be a value of an original coordinate of the same kind."""
    group = _parent(path)
    mine = _coord(damaged, group, d.dims[0])
    theirs = [
        _coord(pristine, _parent(p), r.dims[0])
        for p, r in pristine.nodes.items()
        if _parent(p) == group
        and len(r.dims) == 1
        and r.dims[0] == p.rsplit("/", 1)[-1]
        and _same_kind(d, r)
    ]
    theirs = [t for t in theirs if t is not None and t.dtype.kind == mine.dtype.kind]
    if mine is None or not theirs:
        out.unaligned += 1
    elif not np.isin(mine, np.concatenate(theirs)).all():
        out.lost(f"{path}: values {mine} are no original coordinate's")
    else:
        out.compared += 1


def _fst_variable(path: str, d: Node, damaged: Reading, pristine: Reading, out) -> None:
    """A data variable (its name may differ from the original's: fstd2nc's clash suffixes
    depend on which records there are): each chunk that reads is one record, found among
    the original variables of the same identity and record shape by its time and level."""
    group = _parent(path)
    lead = _lead(damaged, group, d)
    spatial = d.chunk_shape[lead:]
    ident = {k: d.attrs.get(k) for k in IDENTITY}
    candidates = [
        (p, r)
        for p, r in pristine.nodes.items()
        if r.is_array
        and _parent(p) == group
        and {k: r.attrs.get(k) for k in IDENTITY} == ident
        and r.chunk_shape[len(r.chunk_shape) - len(spatial) :] == spatial
        and r.meta.get("data_type") == d.meta.get("data_type")
    ]
    if not candidates:
        out.lost(f"{path}: no original variable with its identity {ident}")
        return
    mine = [_coord(damaged, group, dim) for dim in d.dims[:lead]]
    if any(m is None for m in mine):
        out.unaligned += 1
        return
    records = {}  # (time, level) -> chunk bytes, over every candidate
    for p, r in candidates:
        rlead = _lead(pristine, group, r)
        axes = [_coord(pristine, group, dim) for dim in r.dims[:rlead]]
        if rlead != lead or any(a is None for a in axes):
            continue
        for key, data in r.chunks.items():
            records[tuple(a[k] for a, k in zip(axes, key[:rlead]))] = data
    for key, got in d.chunks.items():
        if not isinstance(got, bytes):
            continue
        want = records.get(tuple(m[k] for m, k in zip(mine, key[:lead])))
        if not isinstance(want, bytes):
            out.lost(f"{path} chunk {key}: no such record in the original")
        elif want != got:
            out.problems.append(f"{path} chunk {key}: {_first_diff(got, want)} in the original")
        else:
            out.compared += 1


def _lead(reading: Reading, group: str, node: Node) -> int:
    """How many leading dims are time or level axes (one record per index)."""
    n = 0
    for dim in node.dims:
        coord = reading.nodes.get(_join(group, dim))
        if coord is None or coord.attrs.get("axis") not in ("T", "Z"):
            break
        n += 1
    return n


def _column(reading: Reading, path: str):
    node = reading.nodes.get(path)
    if node is None or any(v == EIO for v in node.chunks.values()):
        return None
    if node.dtype() is not None:
        return full_values(node)
    items = []
    for key in sorted(node.chunks):
        data = node.chunks[key]
        items += decode(node, data) if isinstance(data, bytes) else [None] * node.chunk_shape[0]
    return items[: node.shape[0]]


def _records_align(group, path, d, damaged, pristine, out) -> None:
    """records/ columns: each row equals the original's row at the same record offset."""
    mine, theirs = (
        _column(damaged, _join(group, "offset")),
        _column(pristine, _join(group, "offset")),
    )
    col, rcol = _column(damaged, path), _column(pristine, path)
    if mine is None or theirs is None or col is None or rcol is None:
        out.unaligned += 1
        return
    where = {int(o): i for i, o in enumerate(theirs)}
    if path.endswith("/variable"):
        out.unaligned += 1  # the array a record is in: its name may legitimately change
        return
    for i, o in enumerate(mine):
        j = where.get(int(o))
        if j is None:
            out.problems.append(f"{path}[{i}]: no record at offset {int(o)} in the original")
        elif not _equal(col[i], rcol[j]):
            out.problems.append(f"{path}[{i}] (offset {int(o)}): {col[i]!r} != {rcol[j]!r}")
        else:
            out.compared += 1


def _equal(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and a.tobytes() == b.tobytes()
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return True
    return a == b


# --- WebDataset ------------------------------------------------------------------------------


def _sample_values(reading: Reading, path: str) -> list | None:
    """Per sample: the element (row, item, or a ragged member's whole array), EIO or ABSENT."""
    node = reading.nodes.get(path)
    if node is None:
        return None
    if not node.is_array:  # a ragged group: one array per sample index
        n = len(_column(reading, "key") or [])
        out = [ABSENT] * n
        for name, child in reading.nodes.items():
            if _parent(name) == path and child.is_array and name.rsplit("/", 1)[-1].isdigit():
                i = int(name.rsplit("/", 1)[-1])
                if i < n:
                    vals = full_values(child)
                    out[i] = EIO if vals is None else vals
        return out
    if node.dims[:1] != ["sample"]:
        return None
    n, per = node.shape[0], node.chunk_shape[0]
    out = []
    for c in range(-(-n // per)):
        keys = [k for k in node.chunks if k[0] == c]
        rows = min(per, n - c * per)
        if any(node.chunks[k] == EIO for k in keys) or not keys:
            out += [EIO] * rows
            continue
        if node.dtype() is None:
            data = node.chunks[keys[0]]
            items = decode(node, data) if isinstance(data, bytes) else [ABSENT] * per
            out += items[:rows]
            continue
        block = full_values(node)
        out += [block[i] for i in range(c * per, c * per + rows)]
    return out


def _occurrences(keys: list) -> list[tuple]:
    """(key, how many times it came before): a sample's identity (keys may repeat)."""
    seen: dict = {}
    out = []
    for k in keys:
        out.append((k, seen.get(k, 0)))
        seen[k] = seen.get(k, 0) + 1
    return out


def _wds_align(path: str, d: Node, damaged: Reading, pristine: Reading, out: Outcome) -> None:
    """Sample by sample, a sample being found in the original by its key (and occurrence)."""
    name = path.rsplit("/", 1)[-1]
    if name == "shard":
        return  # the shard's path: the copy's, by construction
    feature = _parent(path) if name.isdigit() else path  # a ragged member: its group
    done = out.__dict__.setdefault("ragged_done", set())
    if feature in done:
        return
    done.add(feature)
    mine, theirs = _sample_values(damaged, feature), _sample_values(pristine, feature)
    keys, rkeys = _column(damaged, "key"), _column(pristine, "key")
    if mine is None or keys is None or rkeys is None:
        out.unaligned += 1
        return
    where = {k: j for j, k in enumerate(_occurrences(rkeys))}
    told = json.dumps(skipped_entries(pristine))
    present = _sample_values(damaged, f"{feature}.present")
    for i, (got, ident) in enumerate(zip(mine, _occurrences(keys))):
        j = where.get(ident)
        if j is None:
            if ident[0] in told:  # the original leaves this sample out (and says so)
                out.unaligned += 1
            else:
                out.lost(f"{feature}[{i}]: sample {ident[0]!r} is not in the original")
            continue
        if got is EIO or got is ABSENT:
            continue
        if feature.endswith(".present"):
            want = theirs[j] if theirs is not None else True  # no flags: every one present
            if bool(got) and not bool(want):
                out.problems.append(f"{feature}[{i}]: present, the original sample has no member")
            continue
        if present is not None and present[i] is not EIO and not bool(present[i]):
            continue  # absent (fill value), as its flag says
        want = theirs[j] if theirs is not None else ABSENT
        if want is ABSENT:
            out.lost(f"{feature}[{i}] (sample {ident[0]!r}): data the original does not have")
        elif want is EIO:
            continue
        elif isinstance(got, bytes) != isinstance(want, bytes):
            # a `.npy` feature numpy can read in no sample is served as its raw bytes
            out.lost(f"{feature}[{i}] (sample {ident[0]!r}): another kind than the original's")
        elif not _equal(got, want):
            out.problems.append(
                f"{feature}[{i}] (sample {ident[0]!r}): {got!r:.80} != {want!r:.80}"
            )
        else:
            out.compared += 1


# --- problems told -------------------------------------------------------------------------

# An offset or a line number in a message or a `skipped` entry.
WHERE = re.compile(
    r"(offset\D{0,3}\d+|byte\s*\d+|bytes\s+\d+|line\s*\d+|at\s+\d+|\"(data_)?offset\":\s*\d+)",
    re.IGNORECASE,
)


def says_where(text: str) -> bool:
    return bool(WHERE.search(text))
