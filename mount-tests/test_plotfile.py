"""AMReX plotfiles (fixtures/amrex) through the mount, read with zarr-python, xarray and yt.

The expected values come from the fixtures' generator (`build(name)` describes what it
wrote) and, for the files yt can read (VisMF v1, no ghost cells), from yt 4.4 grid by grid;
never from zarrmount itself. Most tests share one mount of fixtures/amrex, whose root is then
the directory group and every plotfile a child named after its directory.
"""

import errno
import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

from conftest import REPO, assert_errno, mount, plotfile_generator

FIXTURES = REPO / "fixtures" / "amrex"


gen = plotfile_generator()
NAMES = list(gen.VARIANTS)
SINGLE = [n for n in NAMES if not n.startswith("series/")]
SERIES = sorted(n for n in NAMES if n.startswith("series/"))
YT_NAMES = [n for n in NAMES if gen.yt_verifiable(gen.build(n))]
WITH_PARTICLES = [n for n in NAMES if gen.VARIANTS[n]["particles"]]
AXES = "xyz"

pytestmark = pytest.mark.filterwarnings("ignore:Consolidated metadata:UserWarning")


@pytest.fixture(scope="module")
def mnt():
    with mount(FIXTURES) as m:
        yield m.path


@pytest.fixture(scope="module")
def built():
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = gen.build(name)
        return cache[name]

    return get


# --- helpers ----------------------------------------------------------------------------


def dims(pf) -> list[str]:
    """Array dimension names of a plotfile's fields: z, y, x (only the existing ones)."""
    return list(AXES[: pf.dim])[::-1]


def chunk_shape(level) -> tuple:
    """The contract's chunk grid, in array order (z, y, x): per dimension the gcd of all box
    corners relative to the domain's low corner. Below 64 cells a chunk is too small to be
    worth a request, so the smallest dimension is doubled (within the domain) until a chunk
    holds 4096 cells; above 2**21 cells the largest is halved (README, "AMReX plotfiles")."""
    size = [h - lo + 1 for lo, h in zip(level.domain_lo, level.domain_hi)]
    g = []
    for d in range(len(level.domain_lo)):
        v = 0
        for lo, hi in level.boxes:
            v = math.gcd(v, lo[d] - level.domain_lo[d], hi[d] + 1 - level.domain_lo[d])
        g.append(max(1, min(v or size[d], size[d])))
    if math.prod(g) < 64:
        while math.prod(g) < 4096:
            grow = [d for d in range(len(g)) if g[d] < size[d]]
            if not grow:
                break
            d = min(grow, key=lambda d: g[d])
            g[d] = min(2 * g[d], size[d])
    while math.prod(g) > 2**21:
        d = max(range(len(g)), key=lambda d: g[d])
        g[d] = -(-g[d] // 2)
    return tuple(g[::-1])


def covered_chunks(level, shape) -> set:
    """Indices (array order) of the chunks of `shape` (array order) that some box touches."""
    shape = shape[::-1]  # x first
    out = set()
    for lo, hi in level.boxes:
        ranges = [
            range(
                (lo[d] - level.domain_lo[d]) // shape[d],
                (hi[d] - level.domain_lo[d]) // shape[d] + 1,
            )
            for d in range(len(lo))
        ]
        for idx in np.ndindex(*[len(r) for r in ranges]):
            out.add(tuple(ranges[d][i] for d, i in enumerate(idx))[::-1])
    return out


def chunk_path(array_dir, index):
    return array_dir.joinpath("c", *map(str, index))


def assert_same(actual, expected, what):
    """Exact equality, NaN equal to NaN, same float width."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert (actual.dtype.kind, actual.dtype.itemsize) == (
        expected.dtype.kind,
        expected.dtype.itemsize,
    ), f"{what}: dtype {actual.dtype} != {expected.dtype}"
    same = (actual == expected) | (np.isnan(actual) & np.isnan(expected))
    if not same.all():
        bad = np.argwhere(~same)
        i = tuple(bad[0])
        raise AssertionError(
            f"{what}: {len(bad)} of {expected.size} values differ, the first at {i}: "
            f"{actual[i]!r} != {expected[i]!r}"
        )


def meta(path) -> dict:
    return json.loads((path / "zarr.json").read_bytes())


def bytes_dtype(array_dir, value_dtype) -> np.dtype:
    """The on-mount chunk dtype: the array's float width with the bytes codec's endianness."""
    codecs = meta(array_dir)["codecs"]
    endian = next(c for c in codecs if c["name"] == "bytes").get("configuration", {})
    return value_dtype.newbyteorder("<" if endian.get("endian", "little") == "little" else ">")


# --- tree, attributes, metadata ----------------------------------------------------------


def test_committed_fixtures_are_what_the_generator_writes():
    """The expected values below come from `build(name)`; they only describe the committed
    files if regenerating them gives the same bytes."""
    assert gen.check(list(gen.VARIANTS)) == 0


def test_root_lists_every_plotfile(mnt):
    names = set(os.listdir(mnt))
    assert set(SINGLE) | {"series", "zarr.json"} <= names, sorted(names)
    assert meta(mnt)["node_type"] == "group"
    assert not meta(mnt)["attributes"].get("skipped"), meta(mnt)["attributes"]
    assert {"plt00000", "plt00010", "plt00020", "plt_series"} <= set(os.listdir(mnt / "series"))


@pytest.mark.parametrize("name", NAMES)
def test_attributes(mnt, built, name):
    pf = built(name)
    group = zarr.open_group(mnt / name, mode="r")
    attrs = dict(group.attrs)
    expected = {
        "format": "amrex-plotfile",
        "version": "HyperCLaw-V1.1",
        "time": pf.time,
        "step": pf.step,
        "dim": pf.dim,
        "prob_lo": pf.prob_lo,
        "prob_hi": pf.prob_hi,
        "coord_sys": pf.coord_sys,
        "ref_ratio": [[r] * pf.dim for r in pf.ref_ratio],
        "finest_level": pf.finest_level,
        "fields": pf.fields,
    }
    for key, value in expected.items():
        assert key in attrs, f"{name}: no attribute {key!r} in {sorted(attrs)}"
        assert attrs[key] == value, f"{name}: {key} = {attrs[key]!r}, expected {value!r}"
    assert isinstance(attrs["time"], float) and isinstance(attrs["step"], int)

    children = set(os.listdir(mnt / name))
    expected_children = {f"level_{lv.level}" for lv in pf.levels} | {"zarr.json"}
    if pf.particles:
        expected_children.add("particles")
    assert children == expected_children, f"{name}: {sorted(children)}"

    for level in pf.levels:
        lg = zarr.open_group(mnt / name / f"level_{level.level}", mode="r")
        la = dict(lg.attrs)
        want = {
            "level": level.level,
            "dx": list(level.dx),
            "domain_lo": list(level.domain_lo),
            "domain_hi": list(level.domain_hi),
            "boxes": len(level.boxes),
            "ngrow": list(pf.ngrow),
        }
        for key, value in want.items():
            assert la.get(key) == value, f"{name} level {level.level}: {key} = {la.get(key)!r}"


@pytest.mark.parametrize("name", NAMES)
def test_array_metadata(mnt, built, name):
    pf = built(name)
    for level in pf.levels:
        ldir = mnt / name / f"level_{level.level}"
        arrays = sorted(p for p in os.listdir(ldir) if p != "zarr.json")
        assert arrays == sorted(pf.fields + list(AXES[: pf.dim])), f"{ldir}: {arrays}"
        for f in pf.fields:
            m = meta(ldir / f)
            what = f"{name}/level_{level.level}/{f}"
            assert m["node_type"] == "array", what
            assert m["shape"] == list(level.shape), f"{what}: shape {m['shape']}"
            assert m["data_type"] == pf.value_dtype.name, f"{what}: {m['data_type']}"
            assert m["dimension_names"] == dims(pf), f"{what}: {m['dimension_names']}"
            assert m["fill_value"] == "NaN", f"{what}: fill {m['fill_value']!r}"
            chunks = m["chunk_grid"]["configuration"]["chunk_shape"]
            assert chunks == list(chunk_shape(level)), (
                f"{what}: chunks {chunks}, expected {list(chunk_shape(level))}"
            )
            assert m["chunk_key_encoding"]["name"] == "default", what
        for d, axis in enumerate(AXES[: pf.dim]):
            m = meta(ldir / axis)
            n = level.domain_hi[d] - level.domain_lo[d] + 1
            assert (m["shape"], m["data_type"], m["dimension_names"]) == ([n], "float64", [axis])


# --- values --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_field_values(mnt, built, name):
    """Every field at every level equals the generator's composite (boxes at their index
    position, NaN where no box is), bit for bit; ghost cells never show."""
    pf = built(name)
    for level in pf.levels:
        group = zarr.open_group(mnt / name / f"level_{level.level}", mode="r")
        for f in pf.fields:
            got = group[f][...]
            assert_same(got, gen.composite(pf, level.level, f), f"{name} level {level.level} {f}")
            assert not (got == gen.GHOST).any(), f"{name}: ghost values shown"


@pytest.mark.parametrize("name", NAMES)
def test_coordinates(mnt, built, name):
    pf = built(name)
    for level in pf.levels:
        group = zarr.open_group(mnt / name / f"level_{level.level}", mode="r")
        for axis, values in gen.coords(pf, level.level).items():
            assert_same(group[axis][...], values, f"{name} level {level.level} {axis}")


@pytest.mark.parametrize("name", ["pf3d_v1_f64le", "pf2d_v3_f64be", "pf3d_3lev_offset", "pf1d"])
def test_xarray_level(mnt, built, name):
    pf = built(name)
    for level in pf.levels:
        with xr.open_zarr(mnt / name / f"level_{level.level}") as ds:
            assert set(ds.data_vars) == set(pf.fields), sorted(ds.data_vars)
            assert set(ds.coords) == set(AXES[: pf.dim]), sorted(ds.coords)
            for axis, values in gen.coords(pf, level.level).items():
                assert_same(ds[axis].values, values, f"{name} {axis}")
            for f in pf.fields:
                da = ds[f]
                assert list(da.dims) == dims(pf)
                expected = gen.composite(pf, level.level, f)
                assert_same(da.values, expected, f"{name} level {level.level} {f}")
            # a point lookup by physical position lands on the right cell
            _lo, hi = level.boxes[-1]
            centre = {
                a: ds[a].values[hi[d] - level.domain_lo[d]] for d, a in enumerate(AXES[: pf.dim])
            }
            value = ds["box_id"].sel(centre).values.item()
            assert value == 100 * level.level + len(level.boxes) - 1


# --- chunks ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_chunk_files(mnt, built, name):
    """On the declared chunk grid (test_array_metadata checks it is the gcd grid): a chunk
    that no box touches has no chunk file (ENOENT); any other chunk file holds the values in
    the declared byte order, a whole chunk even at the domain's edge."""
    pf = built(name)
    for level in pf.levels:
        adir = mnt / name / f"level_{level.level}" / "density"
        shape = tuple(meta(adir)["chunk_grid"]["configuration"]["chunk_shape"])
        grid = [-(-n // c) for n, c in zip(level.shape, shape)]
        covered = covered_chunks(level, shape)
        padded = np.full([g * c for g, c in zip(grid, shape)], np.nan, pf.value_dtype)
        padded[tuple(slice(0, n) for n in level.shape)] = gen.composite(pf, level.level, "density")
        dtype = bytes_dtype(adir, pf.value_dtype)
        present = 0
        for index in np.ndindex(*grid):
            path = chunk_path(adir, index)
            if index not in covered:
                assert_errno(errno.ENOENT, os.stat, path)
                continue
            block = padded[tuple(slice(i * c, (i + 1) * c) for i, c in zip(index, shape))]
            data = np.frombuffer(path.read_bytes(), dtype).reshape(shape)
            assert_same(data, block, f"chunk file {path}")
            present += 1
        assert present == len(covered)
        if level.level == 0 and pf.dim == 3:  # 8^3 boxes on level 0: one chunk per box
            assert shape == (8, 8, 8)


# --- particles ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", WITH_PARTICLES)
def test_particles(mnt, built, name):
    pf = built(name)
    assert sorted(os.listdir(mnt / name / "particles")) == sorted([*pf.particles, "zarr.json"])
    for sp in pf.particles.values():
        sdir = mnt / name / "particles" / sp.name
        names = [*AXES[: pf.dim], "id", "cpu", *sp.reals, *sp.ints]
        assert sorted(p for p in os.listdir(sdir) if p != "zarr.json") == sorted(names)
        group = zarr.open_group(sdir, mode="r")
        for attr in names:
            m = meta(sdir / attr)
            assert m["dimension_names"] == ["particle"], f"{sp.name}/{attr}"
            expected = sp.attrs[attr]
            assert m["data_type"] == expected.dtype.name, f"{sp.name}/{attr}: {m['data_type']}"
            assert_same(group[attr][...], expected, f"{name} {sp.name}/{attr}")


# --- yt as a second reference ----------------------------------------------------------------


@pytest.mark.parametrize("name", YT_NAMES)
def test_against_yt(mnt, built, name):
    """yt 4.4 reads the fixture directly; each of its grids equals the mount's level array
    at the grid's position (from yt's own edges and cell size)."""
    import yt

    yt.set_log_level(40)
    pf = built(name)
    ds = yt.load(str(FIXTURES / name))
    assert type(ds).__name__ == "AMReXDataset"
    left = np.asarray(ds.domain_left_edge.d)
    levels = {}
    for g in ds.index.grids:
        lev = int(g.Level)
        if lev not in levels:
            group = zarr.open_group(mnt / name / f"level_{lev}", mode="r")
            levels[lev] = {f: group[f][...] for f in pf.fields}
        start = np.rint((np.asarray(g.LeftEdge.d) - left) / np.asarray(g.dds.d)).astype(int)
        region = tuple(
            slice(start[d], start[d] + int(g.ActiveDimensions[d])) for d in range(pf.dim)
        )[::-1]
        for f in pf.fields:
            ref = np.asarray(g["boxlib", f])
            ref = ref.reshape(ref.shape[: pf.dim]).transpose()  # (z, y, x)
            got = levels[lev][f][region].astype(np.float64)
            assert_same(got, ref, f"{name} yt grid {g.id} (level {lev}) {f}")
    assert sorted(levels) == list(range(pf.finest_level + 1))

    ad = ds.all_data()
    for sp in pf.particles.values():
        group = zarr.open_group(mnt / name / "particles" / sp.name, mode="r")
        ids = group["id"][...]
        ref_ids = np.asarray(ad[sp.name, "particle_id"]).astype(np.int64)
        mine, theirs = np.argsort(ids), np.argsort(ref_ids)
        assert_same(ids[mine].astype(np.int64), ref_ids[theirs], f"{name} {sp.name} ids")
        for attr in [*AXES[: pf.dim], *sp.reals, "cpu", *sp.ints]:
            field = f"particle_position_{attr}" if attr in AXES else f"particle_{attr}"
            ref = np.asarray(ad[sp.name, field])[theirs]
            got = group[attr][...][mine].astype(np.float64)
            assert_same(got, ref, f"{name} {sp.name}/{attr} vs yt {field}")


# --- series ---------------------------------------------------------------------------------


def test_series(mnt, built):
    pfs = [built(n) for n in SERIES]
    names = [n.split("/")[1] for n in SERIES]
    sdir = mnt / "series" / "plt_series"
    group = zarr.open_group(sdir, mode="r")
    assert group.attrs["plotfiles"] == names
    level0 = pfs[0].levels[0]
    for f in pfs[0].fields:
        m = meta(sdir / f)
        assert m["shape"] == [len(pfs), *level0.shape]
        assert m["dimension_names"] == ["time", *dims(pfs[0])]
        stacked = group[f][...]
        expected = np.stack([gen.composite(pf, 0, f) for pf in pfs])
        assert_same(stacked, expected, f"plt_series/{f}")
        for i, n in enumerate(SERIES):  # and each step is that plotfile's level 0
            single = zarr.open_array(mnt / n / "level_0" / f, mode="r")[...]
            assert_same(stacked[i], single, f"plt_series/{f}[{i}] vs {n}/level_0/{f}")
    assert_same(group["time"][...], np.array([pf.time for pf in pfs]), "time")
    assert_same(group["step"][...], np.array([pf.step for pf in pfs], dtype=np.int64), "step")
    assert meta(sdir / "time")["dimension_names"] == ["time"]
    assert meta(sdir / "step")["dimension_names"] == ["time"]
    for axis, values in gen.coords(pfs[0], 0).items():
        assert_same(group[axis][...], values, f"plt_series/{axis}")

    with xr.open_zarr(sdir) as ds:
        assert list(ds["density"].dims) == ["time", *dims(pfs[0])]
        assert_same(ds["time"].values, np.array([0.0, 0.5, 1.0]), "time coordinate")
        picked = ds["density"].sel(time=0.5).values
    assert_same(picked, gen.composite(pfs[1], 0, "density"), "sel(time=0.5)")
    single = zarr.open_array(mnt / "series" / "plt00010" / "level_0" / "density", mode="r")
    assert_same(picked, single[...], "sel(time=0.5) vs plt00010/level_0/density")


# --- bad input ------------------------------------------------------------------------------


def fab_offsets(plotfile_dir, level=0) -> list[tuple[str, int]]:
    """(file, offset) of every FAB, from the fixture's Cell_H."""
    lines = (plotfile_dir / f"Level_{level}" / "Cell_H").read_text().splitlines()
    return [(ln.split()[1], int(ln.split()[2])) for ln in lines if ln.startswith("FabOnDisk:")]


@pytest.mark.parametrize("name", ["pf3d_v1_f64le", "pf3d_v2_f32le"])
def test_truncated_cell_d(tmp_path, name):
    """Cut level 0's Cell_D_00000 in the middle of a FAB's second component: the chunks whose
    bytes are gone are EIO, every other chunk reads; the other plotfile is intact."""
    src = tmp_path / "src"
    shutil.copytree(FIXTURES / name, src / "cut")
    shutil.copytree(FIXTURES / "pf2d_v1_f32be", src / "other")
    pf = gen.build(name)
    level, size = pf.levels[0], pf.dtype.itemsize
    fabs = fab_offsets(src / "cut")
    in_file = sorted((off, ib) for ib, (fname, off) in enumerate(fabs) if fname == "Cell_D_00000")
    data = (src / "cut" / "Level_0" / "Cell_D_00000").read_bytes()
    if pf.vismf_version == 1:  # values start after the FAB line
        starts = {ib: data.index(b"\n", off) + 1 for off, ib in in_file}
    else:
        starts = {ib: off for off, ib in in_file}
    npts = 8**3
    victim = in_file[1][1]
    cut = starts[victim] + npts * size + npts * size // 2  # density whole, temperature half
    assert cut < len(data)
    (src / "cut" / "Level_0" / "Cell_D_00000").write_bytes(data[:cut])

    with mount(src) as m:
        assert sorted(os.listdir(m.path)) == ["cut", "other", "zarr.json"]
        assert not meta(m.path)["attributes"].get("skipped")
        ok = eio = 0
        for _ in range(2):  # errors are not cached, and the daemon keeps serving
            for ib, (lo, _hi) in enumerate(level.boxes):
                index = tuple(v // 8 for v in lo)[::-1]
                for c, f in enumerate(pf.fields):
                    adir = m.path / "cut" / "level_0" / f
                    path = chunk_path(adir, index)
                    if fabs[ib][0] == "Cell_D_00000" and starts[ib] + (c + 1) * npts * size > cut:
                        assert_errno(errno.EIO, Path.read_bytes, path)
                        eio += 1
                    else:
                        got = np.frombuffer(path.read_bytes(), bytes_dtype(adir, pf.value_dtype))
                        assert_same(got.reshape(8, 8, 8), level.data[ib][f], f"{path}")
                        ok += 1
        assert eio == 2 * (2 + 2 * 3) and ok == 2 * (8 * 3 - 8), (eio, ok)
        # zarr-python: a read that needs a lost chunk fails, one that does not works
        array = zarr.open_array(m.path / "cut" / "level_0" / "box_id", mode="r")
        with pytest.raises(OSError):
            array[...]
        lo, hi = level.boxes[in_file[0][1]]  # the first FAB of the cut file is whole
        box = tuple(slice(a, b + 1) for a, b in zip(lo, hi))[::-1]
        assert_same(array[box], level.data[in_file[0][1]]["box_id"], "box before the cut")
        other = gen.build("pf2d_v1_f32be")
        for lv in other.levels:
            group = zarr.open_group(m.path / "other" / f"level_{lv.level}", mode="r")
            for f in other.fields:
                assert_same(group[f][...], gen.composite(other, lv.level, f), f"other {f}")


def _garbage_header(pf_dir):
    # detectable as a plotfile (version line, field names), unparsable after that
    lines = (pf_dir / "Header").read_text().splitlines()
    (pf_dir / "Header").write_text("\n".join(lines[:6]) + "\n0.25\n1\nnot numbers ((\n")


def _garbage_cell_h(pf_dir):
    (pf_dir / "Level_1" / "Cell_H").write_text("1\n1\n3\n0\n(3 0\n((8,8,8) (15,15 garbage\n")


@pytest.mark.parametrize("damage", [_garbage_header, _garbage_cell_h], ids=["header", "cell_h"])
def test_unparsable_plotfile_is_skipped(tmp_path, damage):
    src = tmp_path / "src"
    shutil.copytree(FIXTURES / "pf3d_v1_f64le", src / "bad")
    shutil.copytree(FIXTURES / "series" / "plt00010", src / "good")
    damage(src / "bad")
    with mount(src) as m:
        assert sorted(os.listdir(m.path)) == ["good", "zarr.json"]
        assert_errno(errno.ENOENT, os.stat, m.path / "bad")
        skipped = meta(m.path)["attributes"].get("skipped")
        assert isinstance(skipped, list) and len(skipped) == 1, skipped
        entry = skipped[0]
        assert entry["path"].rstrip("/").endswith("bad"), entry
        assert isinstance(entry["reason"], str) and entry["reason"].strip(), entry
        good = gen.build("series/plt00010")
        group = zarr.open_group(m.path / "good" / "level_0", mode="r")
        for f in good.fields:
            assert_same(group[f][...], gen.composite(good, 0, f), f"good {f}")
