"""Reading a whole mount the way the corrupt-input suite needs it, and comparing two readings.

`read_tree(root)` walks every group and array below `root` with plain `os` calls (so errno
comes straight from the kernel): it parses every `zarr.json`, enumerates every chunk of every
array's grid and reads each chunk file. A read gives the bytes, `ABSENT` (ENOENT: the reader
uses the fill value) or `EIO`; any other errno, a short or garbled chunk (its length is not
what the metadata declares, a variable-length chunk that does not decode to exactly one item
per element) is recorded as a problem. `decode()` turns a chunk into numpy values.

`compare()` (in corrupt_check.py) lines a damaged dataset's reading up with the pristine one.
"""

from __future__ import annotations

import errno
import json
import math
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


class _Mark:
    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


ABSENT = _Mark("absent")  # ENOENT: no chunk file, the reader uses the fill value
EIO = _Mark("EIO")
MAX_CHUNKS = 4096  # per array; past that a deterministic sample of chunks is read
MAX_CHUNK_BYTES = 64 << 20  # a chunk declared larger is read only up to this


@dataclass
class Node:
    path: str  # relative to the dataset root, "" for the root group
    meta: dict
    chunks: dict = field(default_factory=dict)  # chunk key (tuple) -> bytes | ABSENT | EIO

    @property
    def is_array(self) -> bool:
        return self.meta.get("node_type") == "array"

    @property
    def attrs(self) -> dict:
        return self.meta.get("attributes") or {}

    @property
    def chunk_shape(self) -> tuple:
        return tuple(self.meta["chunk_grid"]["configuration"]["chunk_shape"])

    @property
    def shape(self) -> tuple:
        return tuple(self.meta["shape"])

    @property
    def dims(self) -> list:
        return list(self.meta.get("dimension_names") or [])

    def codec(self) -> str:
        """`bytes` (fixed size), `vlen-utf8` or `vlen-bytes`."""
        names = [c["name"] for c in self.meta.get("codecs", [])]
        return next((n for n in names if n.startswith("vlen-")), "bytes")

    def dtype(self) -> np.dtype | None:
        """numpy dtype of a fixed-size chunk (declared byte order); None for vlen."""
        if self.codec() != "bytes":
            return None
        dt = np.dtype(self.meta["data_type"])
        cfg = next(c for c in self.meta["codecs"] if c["name"] == "bytes").get("configuration")
        endian = (cfg or {}).get("endian", "little")
        return dt.newbyteorder("<" if endian == "little" else ">") if dt.itemsize > 1 else dt


@dataclass
class Reading:
    nodes: dict[str, Node]
    problems: list[str]
    reads: int = 0
    eio: int = 0
    sampled: int = 0  # arrays whose grid was too large to read whole


def _chunk_keys(node: Node) -> list[tuple]:
    grid = [-(-s // c) if c else 0 for s, c in zip(node.shape, node.chunk_shape)]
    total = math.prod(grid)
    if total <= MAX_CHUNKS:
        return list(np.ndindex(*grid))
    picks = set(range(64)) | set(range(total - 64, total))
    picks |= {int(i) for i in np.random.default_rng(total).integers(0, total, 128)}
    return [tuple(int(v) for v in np.unravel_index(i, grid)) for i in sorted(picks)]


def _read_file(path: Path, limit: int) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        parts, got = [], 0
        while got < min(size, limit) + 1:
            b = os.read(fd, min(1 << 20, limit + 1 - got))
            if not b:
                break
            parts.append(b)
            got += len(b)
        data = b"".join(parts)
        if len(data) != size and len(data) <= limit:
            raise ShortRead(f"{len(data)} bytes read, stat says {size}")
        return data
    finally:
        os.close(fd)


class ShortRead(Exception):
    pass


def vlen_items(data: bytes, n: int) -> list[bytes] | None:
    """The items of a vlen-* chunk (u32 count, then u32 length + bytes each), or None if the
    chunk is not exactly `n` such items."""
    if len(data) < 4 or struct.unpack_from("<I", data)[0] != n:
        return None
    at, out = 4, []
    for _ in range(n):
        if at + 4 > len(data):
            return None
        (k,) = struct.unpack_from("<I", data, at)
        if at + 4 + k > len(data):
            return None
        out.append(data[at + 4 : at + 4 + k])
        at += 4 + k
    return out if at == len(data) else None


def consistent(node: Node, data: bytes) -> str | None:
    """What is wrong with a chunk's bytes given its array's metadata (None: nothing)."""
    n = math.prod(node.chunk_shape)
    dt = node.dtype()
    if dt is not None:
        want = n * dt.itemsize
        if want > MAX_CHUNK_BYTES:
            return None if len(data) == MAX_CHUNK_BYTES + 1 else f"{len(data)} bytes of {want}"
        return None if len(data) == want else f"{len(data)} bytes, the metadata says {want}"
    items = vlen_items(data, n)
    if items is None:
        return f"not {n} {node.codec()} items ({len(data)} bytes)"
    if node.codec() == "vlen-utf8":
        try:
            for it in items:
                it.decode("utf-8")
        except UnicodeDecodeError:
            return "an item is not UTF-8"
    return None


def decode(node: Node, data: bytes) -> np.ndarray | list:
    """A chunk's values: an array of the chunk shape, or for vlen a flat list of items."""
    dt = node.dtype()
    if dt is None:
        items = vlen_items(data, math.prod(node.chunk_shape))
        return [i.decode("utf-8") for i in items] if node.codec() == "vlen-utf8" else items
    return np.frombuffer(data, dt).reshape(node.chunk_shape)


def read_tree(root: Path) -> Reading:
    """Every node below `root` (a dataset's group), every chunk of every array read."""
    out = Reading({}, [])

    def visit(d: Path, rel: str) -> None:
        try:
            raw = (d / "zarr.json").read_bytes()
            meta = json.loads(raw)
        except (OSError, ValueError) as e:
            out.problems.append(f"{rel or '.'}/zarr.json: {e!r}")
            return
        node = Node(rel, meta)
        out.nodes[rel] = node
        if node.is_array:
            read_chunks(d, node)
            return
        try:
            names = sorted(os.listdir(d))
        except OSError as e:
            out.problems.append(f"{rel or '.'}: listdir {e!r}")
            return
        for name in names:
            if name != "zarr.json":
                visit(d / name, f"{rel}/{name}" if rel else name)

    def read_chunks(d: Path, node: Node) -> None:
        try:
            keys = _chunk_keys(node)
            limit = MAX_CHUNK_BYTES
        except (KeyError, TypeError, ValueError) as e:
            out.problems.append(f"{node.path}: unusable metadata {e!r}")
            return
        if len(keys) < math.prod(-(-s // c) for s, c in zip(node.shape, node.chunk_shape)):
            out.sampled += 1
        for key in keys:
            path = d.joinpath("c", *map(str, key)) if key else d / "c"
            out.reads += 1
            try:
                data = _read_file(path, limit)
            except FileNotFoundError:
                node.chunks[key] = ABSENT
                continue
            except ShortRead as e:
                out.problems.append(f"{node.path} chunk {key}: short read: {e}")
                continue
            except OSError as e:
                if e.errno == errno.EIO:
                    node.chunks[key] = EIO
                    out.eio += 1
                else:
                    out.problems.append(f"{node.path} chunk {key}: {e!r}, not EIO")
                continue
            bad = consistent(node, data)
            if bad:
                out.problems.append(f"{node.path} chunk {key}: garbled: {bad}")
                continue
            node.chunks[key] = data

    visit(root, "")
    return out
