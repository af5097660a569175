"""A Dask cluster reading through the mount, as a cluster's workers read through their
node's mount: a `distributed.LocalCluster` of 4 worker processes computes reductions (sum
and maximum, NaN skipped) over every fixture dataset mounted from fixtures/, and each result
equals the same reduction of what the format's reference gives: the plotfile generator's
composite, librmn's decoding of every FST record, webdataset's samples.
"""

from __future__ import annotations

import io
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import webdataset
import zarr

from conftest import REPO, mount, plotfile_generator
from fst_reference import DATASETS, reference
from test_fst import expected_values, locate, variables

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

gen = plotfile_generator()
WDS = REPO / "fixtures" / "wds"


@pytest.fixture(scope="module")
def mnt():
    with mount(REPO / "fixtures") as m:
        yield m.path


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=4, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def reductions(array) -> list:
    """Lazy (NaN-skipping sum in float64 or complex128, NaN-skipping max) of a dask array."""
    wide = array.astype(np.complex128 if array.dtype.kind == "c" else np.float64)
    return [da.nansum(wide), None if array.dtype.kind == "c" else da.nanmax(wide)]


def expected(values: np.ndarray) -> list:
    wide = values.astype(np.complex128 if values.dtype.kind == "c" else np.float64)
    return [np.nansum(wide), None if values.dtype.kind == "c" else np.nanmax(wide)]


def compare_on_cluster(client, cases: dict[str, tuple[object, np.ndarray]]) -> None:
    """`cases`: name → (dask array read through the mount, reference values)."""
    lazy = {name: reductions(arr) for name, (arr, _) in cases.items()}
    flat = [(name, i, r) for name, rs in lazy.items() for i, r in enumerate(rs) if r is not None]
    computed = client.compute([r for _, _, r in flat], sync=True)
    assert len(client.scheduler_info()["workers"]) == 4
    for (name, i, _), got in zip(flat, computed, strict=True):
        want = expected(cases[name][1])[i]
        what = f"{name}: {'sum' if i == 0 else 'max'}"
        assert np.isclose(got, want, rtol=1e-12, atol=0, equal_nan=True), f"{what} {got} != {want}"


def lazy_array(path: Path):
    return da.from_zarr(zarr.open_array(path, mode="r"))


def test_plotfile_reductions_equal_the_generators(mnt, client):
    cases = {}
    for name in gen.VARIANTS:
        pf = gen.build(name)
        for level in pf.levels:
            for field in pf.fields:
                path = mnt / "amrex" / name / f"level_{level.level}" / field
                cases[f"{name} level {level.level} {field}"] = (
                    lazy_array(path),
                    gen.composite(pf, level.level, field),
                )
    assert len(cases) > 50
    compare_on_cluster(client, cases)


def test_fst_reductions_equal_librmns(mnt, client):
    cases = {}
    for name in DATASETS:
        group = mnt / "fst" / name
        arrays = variables(group)
        for rec in reference(name).data_records():
            if rec.base_datyp == 0:
                continue  # raw binary words: no values to reduce
            var, index = locate(rec, arrays)
            outer = index[: len(var.outer)]
            got = lazy_array(var.path)[outer]
            want, _ = expected_values(rec)
            want = want.reshape(rec.spatial_shape())
            if rec.has_missing:
                want = want.astype(np.float64)
                want.reshape(-1)[rec.missing()] = np.nan
            cases[f"{name} record {rec.index} ({rec.nomvar})"] = (got, want)
    assert len(cases) > 50
    compare_on_cluster(client, cases)


def test_webdataset_reductions_equal_webdatasets(mnt, client):
    shards = [str(WDS / f"train-00000{i}.tar") for i in range(3)]
    samples = list(webdataset.WebDataset(shards, shardshuffle=False))
    group = mnt / "wds" / "train"
    cases = {}
    for suffix in (
        "image.npy",
        "counts.npy",
        "fortran.npy",
        "bigendian.npy",
        "mask.npy",
        "scalar.npy",
        "extra.npy",
    ):
        per_sample = [np.load(io.BytesIO(s[suffix])) if suffix in s else None for s in samples]
        shape = next(v for v in per_sample if v is not None).shape
        dtype = next(v for v in per_sample if v is not None).dtype
        fill = np.full(shape, np.nan if dtype.kind == "f" else 0, dtype=dtype)
        stacked = np.stack([fill if v is None else v for v in per_sample])
        cases[f"train {suffix}"] = (
            lazy_array(group / suffix),
            stacked.astype(stacked.dtype.newbyteorder("=")),
        )
    for suffix in ("cls", "id", "index"):
        values = np.array([int(s[suffix]) for s in samples], dtype=np.int64)
        cases[f"train {suffix}"] = (lazy_array(group / suffix), values)
    compare_on_cluster(client, cases)
