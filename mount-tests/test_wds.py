"""WebDataset shard sets (fixtures/wds) through the mount, checked against webdataset itself.

Every sample `webdataset.WebDataset(urls, shardshuffle=False)` yields (raw bytes, no
decoding) is compared, member by member, with what zarr-python reads through the mount at
that sample's index: `.npy` members bit for bit against `np.load` of webdataset's bytes,
strings, integers and opaque bytes exactly; `key` and `shard` against `__key__` and
`__url__`. What to expect of a member comes from the contract (wds_layout.md): the kind from
the suffix's last extension, `.npy` stacked when every sample agrees on dtype and shape,
ragged otherwise. Nothing here is compared with zarrmount's own earlier output.

Where zarrmount deliberately serves less than webdataset yields (unsafe names, duplicate
suffixes, a cut last sample, unreadable `.npy` headers), the expected samples are
webdataset's minus those, worked out here from the tar itself; each must be listed in the
group's `skipped` attribute. Damaged copies are made in tmp_path, never in fixtures/.

Every mount uses `index_dir=none` unless the test is about the persistent index, so that
nothing is written to the user's cache.
"""

from __future__ import annotations

import errno
import io
import json
import os
import re
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import webdataset
import xarray as xr
import zarr
from webdataset.tariterators import base_plus_ext

from conftest import REPO, assert_bits_equal, assert_errno, mount, wait_for

FIXTURES = REPO / "fixtures" / "wds"
TRAIN = [FIXTURES / f"train-00000{i}.tar" for i in range(3)]
TRAIN_PATTERN = f"{FIXTURES}/train-{{000000..000002}}.tar"

INT_EXTENSIONS = {"cls", "cls2", "class", "count", "index", "inx", "id"}
STRING_EXTENSIONS = {"txt", "text", "transcript", "json", "jsn"}
RESERVED = {"key", "shard"}
INDEX_LINE = re.compile(r"webdataset (\S+): (\d+) shards from the index cache, (\d+) indexed")


# --- webdataset's side ---------------------------------------------------------------------


@dataclass
class Sample:
    """One sample as webdataset yields it: members by lowercased suffix, raw bytes."""

    key: str
    url: str
    members: dict[str, bytes]


def wds_samples(urls: str, keep_going: bool = False) -> tuple[list[Sample], Exception | None]:
    """webdataset's samples of `urls` (its own syntax: braces, `::`) in order, without
    decoding, and what iterating raised after them (None if nothing). `keep_going` uses
    `handler=webdataset.ignore_and_continue`."""
    handler = webdataset.ignore_and_continue if keep_going else webdataset.reraise_exception
    dataset = webdataset.WebDataset(urls, shardshuffle=False, handler=handler)
    samples = []
    try:
        for s in dataset:
            members = {k: v for k, v in s.items() if not k.startswith("__")}
            samples.append(Sample(s["__key__"], s["__url__"], members))
    except Exception as e:  # noqa: BLE001 (whatever webdataset raises is the reference)
        return samples, e
    return samples, None


def all_samples(urls: str) -> list[Sample]:
    samples, error = wds_samples(urls)
    assert error is None, f"webdataset raised on {urls}: {error!r}"
    return samples


@dataclass
class TarMember:
    name: str
    key: str | None  # webdataset's key and suffix (base_plus_ext), case kept
    suffix: str | None
    regular: bool
    is_dir: bool
    header_offset: int
    data_offset: int


def tar_members(path: Path) -> list[TarMember]:
    """The members Python's tarfile lists, in tar order (up to where it stops reading)."""
    out = []
    try:
        with tarfile.open(path, "r|*") as tar:
            for info in tar:
                key, suffix = base_plus_ext(info.name)
                member = TarMember(
                    info.name,
                    key,
                    suffix,
                    info.isreg(),
                    info.isdir(),
                    info.offset,
                    info.offset_data,
                )
                out.append(member)
    except tarfile.ReadError:
        pass  # a cut shard: the members read so far
    return out


def tar_groups(path: Path) -> list[list[TarMember]]:
    """Regular members with a key, grouped as webdataset groups them (consecutive equal keys)."""
    groups: list[list[TarMember]] = []
    for m in tar_members(path):
        if not m.regular or m.key is None:
            continue
        if groups and groups[-1][0].key == m.key:
            groups[-1].append(m)
        else:
            groups.append([m])
    return groups


def has_duplicate_suffix(group: list[TarMember]) -> bool:
    lowered = [m.suffix.lower() for m in group]
    return len(set(lowered)) != len(lowered)


def reference(shard: str) -> dict:
    """fixtures/wds/reference/<shard>.json, written by make_shards.py with webdataset."""
    return json.loads((FIXTURES / "reference" / f"{shard}.json").read_text("utf-8"))


def check_reference_keys(samples: list[Sample], shard: str, run: str = "webdataset") -> None:
    """The webdataset installed here yields what the committed reference recorded."""
    ref = reference(shard)[run]
    assert [s.key for s in samples] == [r["__key__"] for r in ref["samples"]], shard
    for s, r in zip(samples, ref["samples"], strict=True):
        assert sorted(s.members) == sorted(r["suffixes"]), (shard, s.key)


# --- what the mount must show (the contract) -----------------------------------------------

ABSENT = None  # the sample has no (readable) member for this feature
UNDECODABLE = object()  # an int member whose bytes are no decimal number: EIO


@dataclass
class Feature:
    name: str  # the array (or ragged group) name in the mount
    suffix: str  # the member suffix as written in the tar
    kind: str
    values: list  # per sample: the value, ABSENT or UNDECODABLE
    dtype: np.dtype | None = None  # for array / ragged (if uniform)
    shape: tuple | None = None  # per-sample shape, for array

    @property
    def present(self) -> list[bool]:
        return [v is not ABSENT for v in self.values]


def kind_of(suffix: str) -> str:
    ext = suffix.rsplit(".", 1)[-1].lower()
    if ext == "npy":
        return "npy"
    if ext in INT_EXTENSIONS:
        return "int"
    return "string" if ext in STRING_EXTENSIONS else "bytes"


def load_npy(data: bytes) -> np.ndarray | None:
    """numpy's reading of a member, None where numpy cannot read it."""
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except Exception:  # noqa: BLE001 (any failure means unreadable)
        return None


def decode_int(data: bytes):
    try:
        return int(data.decode("ascii").strip())
    except ValueError:
        return UNDECODABLE


def native(a: np.ndarray) -> np.ndarray:
    return a.astype(a.dtype.newbyteorder("="))


def suffix_cases(paths: list[Path], samples: list[Sample]) -> dict[str, str]:
    """Each lowercased suffix of `samples` -> the suffix as the tar writes it (webdataset
    lowercases, the mount keeps case). One case per suffix in these samples."""
    written: dict[tuple, str] = {}
    for path in paths:
        for m in tar_members(path):
            if m.regular and m.key is not None:
                written.setdefault((m.key, m.suffix.lower()), m.suffix)
    cases: dict[str, set[str]] = {}
    for s in samples:
        for low in s.members:
            cases.setdefault(low, set()).add(written[(s.key, low)])
    assert all(len(c) == 1 for c in cases.values()), cases
    return {low: c.pop() for low, c in cases.items()}


def expected_features(samples: list[Sample], cases: dict[str, str]) -> dict[str, Feature]:
    """The feature arrays the contract derives from these samples, by mount name."""
    suffixes = sorted(cases.values())
    out = {}
    for suffix in suffixes:
        raw = [s.members.get(suffix.lower()) for s in samples]
        kind = kind_of(suffix)
        f = Feature(suffix, suffix, kind, [])
        if kind == "npy":
            arrays = [ABSENT if r is None else load_npy(r) for r in raw]
            readable = [a for a in arrays if a is not None]
            if not readable:
                f.kind, f.values = "bytes", raw
            else:
                f.values = arrays
                dtypes = {a.dtype for a in readable}
                if len(dtypes) == 1:
                    f.dtype = native(readable[0]).dtype
                if len(dtypes) == 1 and len({a.shape for a in readable}) == 1:
                    f.kind, f.shape = "array", readable[0].shape
                else:
                    f.kind = "ragged"
        elif kind == "int":
            f.values = [ABSENT if r is None else decode_int(r) for r in raw]
        elif kind == "string":
            f.values = [ABSENT if r is None else r.decode("utf-8") for r in raw]
        else:
            f.values = raw
        out[suffix] = f
    # reserved names: `key`, `shard`, and `X.present` for a feature X, get a `~2`
    for suffix in suffixes:
        clash = suffix in RESERVED or (suffix.endswith(".present") and suffix[:-8] in out)
        if clash:
            f = out.pop(suffix)
            f.name = f"{suffix}~2"
            out[f.name] = f
    return out


# --- comparing ------------------------------------------------------------------------------


def open_group(path: Path) -> zarr.Group:
    return zarr.open_group(path, mode="r")


def attributes(path: Path) -> dict:
    return json.loads((path / "zarr.json").read_bytes())["attributes"]


def strings(array: zarr.Array) -> list[str]:
    return [str(v) for v in array[...]]


def fill_ok(value: np.ndarray) -> bool:
    value = np.asarray(value)
    if value.dtype.kind == "f":
        return bool(np.isnan(value).all())
    return not value.any()


def bytes_diff(got: bytes, want: bytes) -> str:
    at = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
    return f"{len(got)} bytes, want {len(want)}; first difference at byte {at}: " + (
        f"{got[at : at + 8]!r} != {want[at : at + 8]!r}"
    )


def check_feature(g: zarr.Group, f: Feature, keys: list[str]) -> None:

    def what(i: int) -> str:
        return f"{f.name}[{i}] (sample {keys[i]!r})"

    node = g[f.name]
    if f.kind == "ragged":
        assert isinstance(node, zarr.Group), f"{f.name}: a {type(node).__name__}, not a group"
        want = {str(i) for i, v in enumerate(f.values) if v is not ABSENT}
        got = set(node.array_keys())
        assert got == want, f"{f.name}/: arrays {sorted(got)}, samples having it {sorted(want)}"
        for i in sorted(map(int, want)):
            a = node[str(i)]
            assert_bits_equal(a[...], native(f.values[i]), what(i))
            assert a.attrs.get("key") == keys[i], f"{what(i)}: attribute key {a.attrs.get('key')}"
        return
    assert isinstance(node, zarr.Array), f"{f.name}: a {type(node).__name__}, not an array"
    n = len(f.values)
    dims = node.metadata.dimension_names
    if f.kind == "array":
        assert node.shape == (n, *f.shape), f"{f.name}: shape {node.shape}"
        assert dims == ("sample", *(f"{f.name}_{d}" for d in range(len(f.shape)))), dims
        got = node[...]
        assert got.dtype == f.dtype, f"{f.name}: dtype {got.dtype} != {f.dtype}"
        for i, v in enumerate(f.values):
            if v is ABSENT:
                assert fill_ok(got[i]), f"{what(i)}: {got[i]!r} where the sample has no member"
            else:
                assert_bits_equal(got[i], native(v), what(i))
        return
    assert node.shape == (n,), f"{f.name}: shape {node.shape}"
    assert dims == ("sample",), f"{f.name}: dims {dims}"
    if f.kind == "int":
        got = node[...]
        assert got.dtype == np.int64, f"{f.name}: dtype {got.dtype}"
        want = [0 if v is ABSENT else v for v in f.values]
        assert got.tolist() == want, f"{f.name}: {got.tolist()} != {want}"
    elif f.kind == "string":
        want = ["" if v is ABSENT else v for v in f.values]
        assert strings(node) == want, f"{f.name}: {strings(node)} != {want}"
    else:
        got = [bytes(v) for v in node[...]]
        want = [b"" if v is ABSENT else v for v in f.values]
        bad = [i for i in range(n) if got[i] != want[i]]
        assert not bad, f"{what(bad[0])}: {bytes_diff(got[bad[0]], want[bad[0]])}"


def check_features_attribute(attrs: dict, features: dict[str, Feature]) -> None:
    """`features`: suffix, kind, present count, dtype and shape of every feature."""
    got = attrs.get("features")
    assert isinstance(got, dict) and set(got) == set(features), f"features: {got}"
    for name, f in features.items():
        entry = got[name]
        want = {"suffix": f.suffix, "kind": f.kind, "present": sum(f.present)}
        if f.kind in ("array", "ragged") and f.dtype is not None:
            want["dtype"] = f.dtype.name
        if f.kind == "array":
            want["shape"] = list(f.shape)
        assert {k: entry.get(k) for k in want} == want, f"features[{name!r}]: {entry}"


def check_group(path: Path, samples: list[Sample], cases: dict[str, str]) -> dict:
    """Everything the mount shows at `path` is exactly `samples`: keys, shards, every member
    of every sample, presence flags, fill values, and no other node. Returns the attributes."""
    g = open_group(path)
    attrs = attributes(path)
    keys = [s.key for s in samples]
    failed = []
    try:
        assert strings(g["key"]) == keys, f"key: {strings(g['key'])} != {keys}"
        assert strings(g["shard"]) == [s.url for s in samples], f"shard: {strings(g['shard'])}"
        for name in ("key", "shard"):
            assert g[name].metadata.dimension_names == ("sample",), name
    except AssertionError as e:
        raise AssertionError(f"{path}: {e}") from None
    features = expected_features(samples, cases)
    nodes = {"key", "shard"} | set(features)
    nodes |= {f"{n}.present" for n, f in features.items() if not all(f.present)}
    got_nodes = set(g)
    if got_nodes != nodes:
        failed.append(f"nodes: extra {got_nodes - nodes}, missing {nodes - got_nodes}")
    for name, f in features.items():
        if name not in got_nodes:
            continue
        try:
            check_feature(g, f, keys)
            flags = f"{name}.present"
            if not all(f.present) and flags in got_nodes:
                p = g[flags]
                assert p.dtype == np.bool_, f"{flags}: dtype {p.dtype}"
                assert p[...].tolist() == f.present, f"{flags}: {p[...].tolist()} != {f.present}"
        except AssertionError as e:
            failed.append(str(e).splitlines()[0])
    try:
        assert attrs.get("format") == "webdataset", attrs.get("format")
        assert attrs.get("n_samples") == len(samples), f"n_samples {attrs.get('n_samples')}"
        check_features_attribute(attrs, features)
    except AssertionError as e:
        failed.append(str(e))
    assert not failed, f"{path}: {len(failed)} problems:\n" + "\n".join(failed)
    return attrs


def check_shards_attribute(attrs: dict, urls: list[str], samples: list[Sample]) -> None:
    """`shards`: one entry per shard in set order, its path as listed, its sample count,
    member count (tarfile's) and size; complete."""
    shards = attrs["shards"]
    assert [s["path"] for s in shards] == urls, shards
    for entry, url in zip(shards, urls, strict=True):
        want = {
            "samples": sum(s.url == url for s in samples),
            "members": len(tar_members(Path(url))),
            "bytes": Path(url).stat().st_size,
            "complete": True,
        }
        assert {k: entry.get(k) for k in want} == want, entry
        assert "end" not in entry, entry


def check_set(path: Path, urls: list[str], samples: list[Sample]) -> dict:
    """check_group for a set of complete shards, plus its `shards` attribute."""
    attrs = check_group(path, samples, suffix_cases([Path(u) for u in urls], samples))
    check_shards_attribute(attrs, urls, samples)
    return attrs


# --- mounting -------------------------------------------------------------------------------


def wds_url(*paths) -> str:
    return "wds://" + "::".join(map(str, paths))


def wds_url_list(paths: list[Path]) -> str:
    """The same set in webdataset's own syntax."""
    return "::".join(map(str, paths))


def options(index_dir="none") -> str:
    """Mount options: no persistent index unless a directory is given."""
    return f"index_dir={index_dir}"


def index_counts(m, name: str) -> tuple[int, int]:
    """(shards reused from the index cache, shards indexed) from the daemon's log line."""
    found = []

    def look():
        found[:] = [x for x in INDEX_LINE.findall(m.log.read_text()) if x[0] == name]
        return bool(found)

    os.listdir(m.path)  # a set may be indexed when first looked up
    assert wait_for(look, 10), f"no index line for {name}: {m.log.read_text()}"
    assert len(found) == 1, found
    return int(found[0][1]), int(found[0][2])


def assert_alive(m) -> None:
    """The daemon still runs, answers, and never panicked."""
    assert m.proc.poll() is None, f"daemon exited {m.proc.returncode}: {m.log.read_text()}"
    assert "zarr.json" in os.listdir(m.path)
    assert "panicked" not in m.log.read_text(), m.log.read_text()


def copy_shards(paths: list[Path], dest: Path) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy2(p, dest / p.name)) for p in paths]


def skipped(attrs: dict) -> list[dict]:
    return attrs.get("skipped") or []


def listing_problem(
    attrs: dict, path, names: set[str], offsets: set[int], field: str = "offset"
) -> str | None:
    """What is wrong with the `skipped` entry for shard `path` whose `member` is one of
    `names`: it must exist, give one of `offsets` as `field` (the header offset, or for an
    `.npy` member the offset of its data) and a reason."""

    def named(e: dict) -> bool:  # tarfile drops a directory's trailing slash: either spelling
        return e.get("path") == str(path) and str(e.get("member")).rstrip("/") in names

    hits = [e for e in skipped(attrs) if named(e)]
    if not hits:
        return f"no `skipped` entry with member in {sorted(names)}"
    e = hits[0]
    if e.get(field) not in offsets:
        return f"{e}: {field} {e.get(field)}, want one of {sorted(offsets)}"
    if not (isinstance(e.get("reason"), str) and e["reason"].strip()):
        return f"{e}: no reason"
    return None


def assert_listed(
    attrs: dict, path, wanted: list[tuple[set[str], set[int]]], field: str = "offset"
) -> None:
    """Every (member names, offsets) of `wanted` is listed in `skipped`."""
    problems = [listing_problem(attrs, path, names, offsets, field) for names, offsets in wanted]
    problems = [p for p in problems if p]
    assert not problems, "\n".join(problems) + f"\nskipped: {json.dumps(skipped(attrs))}"


# --- every sample of the fixture sets -----------------------------------------------------------

SINGLE = ["plaid-000000", "gnu", "ustar"]


def test_train_set_equals_webdataset():
    """`wds://…/train-{000000..000002}.tar`: every member of the six samples (Fortran order,
    big-endian, bool, 0-d, `fields.p.npy`, `Label.TXT`, an empty `note.txt`, jpg/png/pth/
    msgpack bytes, cls/id/index ints, missing `extra.npy` and `note.txt` with their flags)."""
    samples = all_samples(TRAIN_PATTERN)
    ref = json.loads((FIXTURES / "reference" / "train-set.json").read_text("utf-8"))
    assert [(s.key, Path(s.url).name) for s in samples] == [
        (r["__key__"], r["shard"]) for r in ref["samples"]
    ]
    with mount(f"wds://{TRAIN_PATTERN}", options()) as m:
        attrs = check_set(m.path, [str(p) for p in TRAIN], samples)
    assert attrs["name"] == "train"
    extra, note = attrs["features"]["extra.npy"], attrs["features"]["note.txt"]
    assert (extra["present"], note["present"]) == (4, 3)  # the fixture's design, as a guard


@pytest.mark.parametrize("shard", SINGLE)
def test_single_shard_equals_webdataset(shard):
    """PLAID (ragged subgroups), GNU long names and links, ustar prefix names."""
    path = FIXTURES / f"{shard}.tar"
    samples = all_samples(str(path))
    check_reference_keys(samples, shard)
    with mount(wds_url(path), options()) as m:
        check_set(m.path, [str(path)], samples)


def test_train_array_metadata():
    """Big-endian payloads are declared big-endian, little-endian ones little; fill values
    are NaN for floats and 0 / false otherwise."""
    with mount(wds_url(TRAIN[0]), options()) as m:
        names = [n for n in os.listdir(m.path) if n != "zarr.json"]
        meta = {n: json.loads((m.path / n / "zarr.json").read_bytes()) for n in names}
    arrays = {n: m for n, m in meta.items() if m["node_type"] == "array"}
    endian = {n: [c for c in m["codecs"] if c["name"] == "bytes"] for n, m in arrays.items()}
    assert endian["bigendian.npy"] == [{"name": "bytes", "configuration": {"endian": "big"}}]
    assert endian["image.npy"] == [{"name": "bytes", "configuration": {"endian": "little"}}]
    assert meta["extra.npy"]["fill_value"] == "NaN"
    assert meta["counts.npy"]["fill_value"] == 0
    assert meta["mask.npy"]["fill_value"] is False
    assert meta["cls"]["fill_value"] == 0 and meta["note.txt"]["fill_value"] == ""


# --- shard-set order --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "order",
    [[1, 0, 2], [2, 0, 1], [0, 2]],
    ids=lambda o: "::".join(map(str, o)),
)
def test_colon_list_keeps_its_order(order):
    """A `::` list given out of order: samples in the list's order, as webdataset reads it."""
    paths = [TRAIN[i] for i in order]
    samples = all_samples("::".join(map(str, paths)))
    with mount(wds_url(*paths), options()) as m:
        check_set(m.path, [str(p) for p in paths], samples)


def test_brace_list_keeps_its_order():
    """`{000002,000000,000001}`: brace expansion order, not sorted order."""
    pattern = f"{FIXTURES}/train-{{000002,000000,000001}}.tar"
    samples = all_samples(pattern)
    assert Path(samples[0].url).name == "train-000002.tar"
    with mount(f"wds://{pattern}", options()) as m:
        check_set(m.path, [str(TRAIN[i]) for i in (2, 0, 1)], samples)


@pytest.mark.parametrize("scheme", ["", "wds://"])
def test_directory_of_numbered_shards_is_one_group(tmp_path, scheme):
    """A directory holding train-00000{0,1,2}.tar and gnu.tar: group `train` (the three
    shards in numbered order, one dataset) and group `gnu`."""
    shards = copy_shards([*TRAIN[::-1], FIXTURES / "gnu.tar"], tmp_path / "data")
    train = sorted(p for p in shards if p.name.startswith("train"))
    gnu = tmp_path / "data" / "gnu.tar"
    with mount(f"{scheme}{tmp_path / 'data'}", options()) as m:
        groups = {n for n in os.listdir(m.path) if n != "zarr.json"}
        assert groups == {"train", "gnu"}, groups
        attrs = check_set(
            m.path / "train", [str(p) for p in train], all_samples(wds_url_list(train))
        )
        assert attrs["name"] == "train"
        check_set(m.path / "gnu", [str(gnu)], all_samples(str(gnu)))


# --- xarray -----------------------------------------------------------------------------------


def test_xarray_opens_the_train_set():
    samples = all_samples(TRAIN_PATTERN)
    features = expected_features(samples, suffix_cases(TRAIN, samples))
    with mount(f"wds://{TRAIN_PATTERN}", options()) as m:
        ds = xr.open_zarr(m.path)
        assert ds.sizes["sample"] == len(samples)
        assert [str(k) for k in ds["key"].values] == [s.key for s in samples]
        assert [str(u) for u in ds["shard"].values] == [s.url for s in samples]
        for name, f in features.items():
            if f.kind == "ragged":
                assert name not in ds.variables, name  # a subgroup, not a variable
                continue
            var = ds[name]
            assert var.dims[0] == "sample", (name, var.dims)
            got = var.values
            for i, v in enumerate(f.values):
                if f.kind == "array" and v is not ABSENT:
                    assert_bits_equal(got[i], native(v), f"xarray {name}[{i}]")
                elif f.kind == "array":
                    assert fill_ok(got[i]), f"xarray {name}[{i}]: {got[i]}"
                elif f.kind == "bytes":
                    assert bytes(got[i]) == (v or b""), f"xarray {name}[{i}]"
                elif f.kind == "int":
                    assert int(got[i]) == (0 if v is ABSENT else v), f"xarray {name}[{i}]"
                else:
                    assert str(got[i]) == ("" if v is ABSENT else v), f"xarray {name}[{i}]"
        assert ds["extra.npy.present"].values.tolist() == features["extra.npy"].present


# --- the persistent index ---------------------------------------------------------------------


def listing(d: Path) -> dict[str, tuple]:
    """Every file below `d` with its size and modification time."""
    return {
        str(p.relative_to(d)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(d.rglob("*"))
        if p.is_file()
    }


def rewrite_with_more_samples(path: Path) -> None:
    """Rewrite a shard with webdataset's TarWriter: its samples (member names as written,
    case kept) and two new ones."""
    groups = tar_groups(path)
    data = path.read_bytes()
    with tarfile.open(path) as tar:
        payload = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isreg()}
    assert len(payload) == sum(map(len, groups)) and data
    samples = [{"__key__": g[0].key, **{m.suffix: payload[m.name] for m in g}} for g in groups]
    for n, cls in ((100, b"7"), (101, b"8")):
        samples.append({**samples[-1], "__key__": f"s000{n}", "cls": cls, "id": str(n).encode()})
    with webdataset.TarWriter(str(path), encoder=False) as sink:
        for s in samples:
            sink.write(s)


def patch_member(path: Path, shard: str, member: str, data: bytes) -> None:
    """Overwrite a member's data in place (same size), per the committed reference."""
    (m,) = [m for m in reference(shard)["members"] if m["name"] == member]
    assert m["size"] == len(data), m
    with open(path, "r+b") as f:
        f.seek(m["offset_data"])
        f.write(data)


@pytest.mark.parametrize("change", ["append", "same-size"])
def test_index_cache_reused_and_refreshed(tmp_path, change):
    """First mount indexes the 3 shards and writes the index; the second reuses all 3; after
    one shard changes, only that one is indexed again and its new content is served."""
    shards = copy_shards(TRAIN, tmp_path / "shards")
    before = listing(tmp_path / "shards")
    pattern = f"{tmp_path / 'shards'}/train-{{000000..000002}}.tar"
    opts = options(tmp_path / "idx")
    urls = [str(p) for p in shards]

    def mount_and_check(reused: int, indexed: int) -> None:
        samples = all_samples(pattern)
        with mount(f"wds://{pattern}", opts, foreground=True) as m:
            assert index_counts(m, "train") == (reused, indexed), m.log.read_text()
            check_set(m.path, urls, samples)

    mount_and_check(0, 3)
    assert listing(tmp_path / "idx"), "nothing written to index_dir"
    mount_and_check(3, 0)
    if change == "append":
        rewrite_with_more_samples(shards[1])
        assert len(all_samples(str(shards[1]))) == 3
    else:  # sample s000004's cls "1" -> "7": same size, new mtime
        patch_member(shards[2], "train-000002", "s000004.cls", b"7")
        assert all_samples(str(shards[2]))[0].members["cls"] == b"7"
    mount_and_check(2, 1)
    mount_and_check(3, 0)
    assert set(listing(tmp_path / "shards")) == set(before), "files written next to the shards"


def isolate_cache(tmp_path: Path, monkeypatch, xdg: bool) -> Path:
    """Point the daemon's cache at tmp_path; returns where the default index must go."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    if xdg:
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        return tmp_path / "xdg" / "zarrmount"
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    return home / ".cache" / "zarrmount"


@pytest.mark.parametrize("xdg", [True, False], ids=["XDG_CACHE_HOME", "HOME"])
def test_default_index_dir_is_the_user_cache(tmp_path, monkeypatch, xdg):
    cache = isolate_cache(tmp_path, monkeypatch, xdg)
    copy_shards(TRAIN, tmp_path / "shards")
    before = listing(tmp_path / "shards")
    pattern = f"{tmp_path / 'shards'}/train-{{000000..000002}}.tar"
    for reused, indexed in ((0, 3), (3, 0)):
        with mount(f"wds://{pattern}", foreground=True) as m:
            assert index_counts(m, "train") == (reused, indexed), m.log.read_text()
            assert strings(open_group(m.path)["key"])  # readable
    assert listing(cache), f"no index under {cache}: {listing(tmp_path)}"
    assert listing(tmp_path / "shards") == before, "the default wrote next to the shards"


def test_index_dir_none_writes_nothing(tmp_path, monkeypatch):
    isolate_cache(tmp_path, monkeypatch, xdg=True)
    shards = copy_shards(TRAIN, tmp_path / "shards")
    before = listing(tmp_path)
    pattern = f"{tmp_path / 'shards'}/train-{{000000..000002}}.tar"
    for _ in range(2):
        with mount(f"wds://{pattern}", options("none"), foreground=True) as m:
            assert index_counts(m, "train") == (0, 3), m.log.read_text()
            check_set(m.path, [str(p) for p in shards], all_samples(pattern))
    assert listing(tmp_path) == before, "index_dir=none wrote files"


# --- bad input ----------------------------------------------------------------------------------


def unsafe_key(key: str) -> bool:
    return key.startswith("/") or ".." in key.split("/")


def test_unsafe_members_are_skipped_and_listed():
    """unsafe.tar: webdataset's samples but those with an absolute or `..` name are served
    exactly; every such member, link, device and fifo is listed in `skipped` (member name and
    header offset) and is no data anywhere (the set of nodes is exact). Directory entries
    are not data either, and not listed: webdataset ignores them, and a tar of a directory
    tree holds one per directory."""
    path = FIXTURES / "unsafe.tar"
    samples = all_samples(str(path))
    check_reference_keys(samples, "unsafe")
    served = [s for s in samples if not unsafe_key(s.key)]
    assert len(served) == len(samples) - 3
    assert [s.key for s in served].count("s000004") == 1
    with mount(wds_url(path), options()) as m:
        attrs = check_set(m.path, [str(path)], served)
    never_data = [m for m in tar_members(path) if not m.regular and not m.is_dir]
    never_data += [m for m in tar_members(path) if m.regular and m.key and unsafe_key(m.key)]
    assert len(never_data) == 8, [m.name for m in never_data]
    assert_listed(attrs, path, [({m.name}, {m.header_offset}) for m in never_data])


def test_truncated_shard_serves_its_complete_samples():
    """truncated.tar: the three samples webdataset yields before it raises are served;
    the shard is marked incomplete with the reason the walk ended."""
    path = FIXTURES / "truncated.tar"
    samples, error = wds_samples(str(path))
    assert isinstance(error, tarfile.ReadError) and len(samples) == 3, (error, samples)
    with mount(wds_url(path), options()) as m:
        attrs = check_group(m.path, samples, suffix_cases([path], samples))
    (shard,) = attrs["shards"]
    assert shard["path"] == str(path) and shard["samples"] == 3, shard
    assert shard["complete"] is False, shard
    assert isinstance(shard.get("end"), str) and shard["end"].strip(), shard


def test_bad_npy_headers_cost_that_member_only():
    """badnpy.tar: where numpy cannot read `x.npy` (bad magic, unparsable header, payload
    too short, object dtype) the sample stays, `x.npy.present` is false and `skipped` names
    the member; `cls` is served for all ten; npy 2.0 and 3.0 files are read exactly."""
    path = FIXTURES / "badnpy.tar"
    samples = all_samples(str(path))
    check_reference_keys(samples, "badnpy")
    unreadable = [i for i, s in enumerate(samples) if load_npy(s.members["x.npy"]) is None]
    assert unreadable == [1, 3, 5, 8], unreadable
    for i in (6, 7):  # the fixture's v2.0 and v3.0 members
        assert samples[i].members["x.npy"][6:8] == bytes([i - 4, 0])
    with mount(wds_url(path), options()) as m:
        attrs = check_set(m.path, [str(path)], samples)
        assert open_group(m.path)["x.npy.present"][...].tolist() == [
            i not in unreadable for i in range(10)
        ]
    data = {m.name: m.data_offset for m in tar_members(path)}
    names = [f"{samples[i].key}.x.npy" for i in unreadable]
    assert_listed(attrs, path, [({n}, {data[n]}) for n in names], field="data_offset")


def test_duplicate_suffix_samples_are_skipped_and_listed():
    """dupes.tar (documented deviation): webdataset raises on a sample holding two members of
    one lowercased suffix (and, with ignore_and_continue, keeps the first); zarrmount skips
    such a sample and lists it. The others, the repeated non-adjacent key included, are
    served as webdataset yields them."""
    path = FIXTURES / "dupes.tar"
    _, error = wds_samples(str(path))
    assert isinstance(error, ValueError) and "duplicate" in str(error), error
    samples, error = wds_samples(str(path), keep_going=True)
    assert error is None
    check_reference_keys(samples, "dupes", "webdataset_continue")
    groups = tar_groups(path)
    assert [g[0].key for g in groups] == [s.key for s in samples]
    dupes = [g for g in groups if has_duplicate_suffix(g)]
    assert [g[0].key for g in dupes] == ["s000002", "s000004"]
    served = [s for s, g in zip(samples, groups, strict=True) if not has_duplicate_suffix(g)]
    assert [s.key for s in served].count("s000000") == 2
    with mount(wds_url(path), options()) as m:
        attrs = check_set(m.path, [str(path)], served)
    # a whole sample: named by its key or one of its members
    wanted = [({g[0].key} | {m.name for m in g}, {m.header_offset for m in g}) for g in dupes]
    assert_listed(attrs, path, wanted)


def garbage_header(path: Path, shard: str, key: str) -> int:
    """Overwrite the first header block of sample `key` with garbage; returns its offset."""
    first = next(m for m in reference(shard)["members"] if m["name"].startswith(f"{key}."))
    offset = first["header_offset"]
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(bytes((7 * i + 3) % 256 for i in range(512)))
    return offset


def test_garbage_header_ends_that_shard_only(tmp_path):
    """A copy of train-000000 with garbage where sample `run1/s000002` starts, in a `::` set
    with train-000001: the samples before the garbage and the next shard are served as
    webdataset reads them, the shard is marked incomplete, the log says where and why."""
    bad, good = copy_shards(TRAIN[:2], tmp_path / "shards")
    offset = garbage_header(bad, "train-000000", "run1/s000002")
    samples = all_samples(wds_url_list([bad, good]))
    assert [s.key for s in samples] == ["s000000", "s000001", "s000003"]
    with mount(wds_url(bad, good), options(), foreground=True) as m:
        attrs = check_group(m.path, samples, suffix_cases([bad, good], samples))
        first, second = attrs["shards"]
        assert (first["path"], first["samples"], first["complete"]) == (str(bad), 2, False)
        assert str(offset) in first.get("end", ""), first
        assert (second["samples"], second["complete"]) == (1, True), second
        log = m.log.read_text()
        assert any(str(offset) in line and str(bad) in line for line in log.splitlines()), log
        assert_alive(m)


def write_shard(path: Path, samples: list[tuple[str, dict[str, bytes]]]) -> None:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for key, members in samples:
            for suffix, data in members.items():
                info = tarfile.TarInfo(f"{key}.{suffix}")
                info.size, info.mtime = len(data), 1767225600
                tar.addfile(info, io.BytesIO(data))


def test_undecodable_int_is_eio_for_its_chunk_only(tmp_path):
    """4200 samples (more than the 4096 a chunk may hold), sample 10's `cls` reads "ten":
    its chunk is EIO, every time; other chunks of `cls`, and `txt`, read webdataset's
    values; the daemon keeps serving."""
    n, bad = 4200, 10
    path = tmp_path / "ints.tar"
    write_shard(
        path,
        [
            (f"s{i:06d}", {"cls": b"ten" if i == bad else b"%d" % (i % 7), "txt": b"t%d" % i})
            for i in range(n)
        ],
    )
    samples = all_samples(str(path))
    (f,) = [f for f in expected_features(samples, {"cls": "cls"}).values()]
    assert f.values[bad] is UNDECODABLE
    with mount(wds_url(path), options(), foreground=True) as m:
        cls = open_group(m.path)["cls"]
        per = cls.chunks[0]
        assert per <= 4096 and cls.shape == (n,), (cls.chunks, cls.shape)
        bad_chunk = bad // per
        for _ in range(2):
            assert_errno(errno.EIO, Path.read_bytes, m.path / "cls" / "c" / str(bad_chunk))
        with pytest.raises(OSError):
            cls[bad]
        for c in range(-(-n // per)):
            if c != bad_chunk:
                lo, hi = c * per, min(n, (c + 1) * per)
                assert cls[lo:hi].tolist() == f.values[lo:hi], f"cls chunk {c}"
        txt = open_group(m.path)["txt"]
        assert strings(txt) == [s.members["txt"].decode() for s in samples]
        assert strings(open_group(m.path)["key"]) == [s.key for s in samples]
        assert_alive(m)


def test_reserved_names_get_a_suffix(tmp_path):
    """Members whose suffix is `key`, `shard` or `cls.present` (with `cls` a feature missing
    from a sample) do not replace the group's own arrays: they are `key~2`, `shard~2`,
    `cls.present~2`."""
    path = tmp_path / "reserved.tar"
    members = [
        {"cls.present": b"p%d" % i, "key": b"k%d" % i, "shard": b"x%d" % i} for i in range(3)
    ]
    for i in (0, 2):  # sample 1 has no cls: the group has its own `cls.present`
        members[i]["cls"] = b"%d" % i
    write_shard(path, [(f"s{i}", m) for i, m in enumerate(members)])
    samples = all_samples(str(path))
    features = expected_features(samples, suffix_cases([path], samples))
    assert set(features) == {"cls", "cls.present~2", "key~2", "shard~2"}
    with mount(wds_url(path), options()) as m:
        check_set(m.path, [str(path)], samples)
        g = open_group(m.path)
        assert [bytes(v) for v in g["key~2"][...]] == [b"k0", b"k1", b"k2"]
        assert g["cls.present"][...].tolist() == [True, False, True]


def npy_bytes(a: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, a)
    return out.getvalue()


def test_ragged_with_gaps_and_unreadable_npy(tmp_path):
    """A `.npy` feature of varying shapes missing from one sample is a ragged group with a
    `.present` flag; big-endian ragged members are exact; a `.npy` suffix numpy can read in
    no sample is kind `bytes`, served byte for byte."""
    path = tmp_path / "edge.tar"
    shapes = [(2, 3), None, (0, 3), (4, 1)]
    rows = []
    for i, shape in enumerate(shapes):
        members = {"cls": b"%d" % i, "raw.npy": b"not numpy %d" % i}
        if shape is not None:
            a = (np.arange(np.prod(shape)) * 1.5 - i).reshape(shape).astype(">f8")
            members["v.npy"] = npy_bytes(a)
        rows.append((f"e{i:03d}", members))
    write_shard(path, rows)
    samples = all_samples(str(path))
    features = expected_features(samples, suffix_cases([path], samples))
    assert (features["v.npy"].kind, features["raw.npy"].kind) == ("ragged", "bytes")
    with mount(wds_url(path), options()) as m:
        check_set(m.path, [str(path)], samples)
        assert open_group(m.path)["v.npy.present"][...].tolist() == [True, False, True, True]
