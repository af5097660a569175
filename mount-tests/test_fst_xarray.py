"""RPN standard files through the mount against fstd2nc, the reference xarray view.

For every fixture fstd2nc can read, `fstd2nc.Buffer(f).to_xarray()` (run in its own
virtualenv: it needs numpy < 2) is dumped by fixtures/fst/fstd2nc_dump.py, and
`xr.open_zarr` of the mounted file must show the same variable names, dimensions,
coordinate values and data. Where fstd2nc cannot be the reference, the test says why and
the librmn tests in test_fst.py cover the values.
"""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from conftest import REPO, mount

FST = REPO / "fixtures" / "fst"
FST_PYTHON = Path(os.environ.get("ZARRMOUNT_FST_PYTHON", REPO / ".venv-fst" / "bin" / "python"))
FILES = sorted(p.name for p in FST.glob("*.fst")) + ["rsf/sample_xdf.fst", "rsf/multiseg.rsf"]
# fstd2nc fails on these: complex128 (its dtype codes are 2 bytes: 'c16' becomes 'c1'),
# sample.rsf (one directory entry carries JSON, so its RSF reader cannot find a record width).
NOT_READABLE_BY_FSTD2NC = {"complex128.fst", "rsf/sample.rsf"}
# Computed positions (rotated and polar grids) agree to float32 rounding of a different
# formula order; fstd2nc's own check against librmn's gdll is within 4e-5 degrees.
LATLON_TOLERANCE = 1e-4
# What fstd2nc derives from a `!!` vertical descriptor, which zarrmount does not decode.
VGRID_ATTRS = {"standard_name", "formula", "formula_terms"}

# Year 2400 is past datetime64[ns]: xarray says it falls back to cftime, as it does for fstd2nc.
pytestmark = pytest.mark.filterwarnings(
    "ignore::UserWarning", "ignore::FutureWarning", "ignore:Unable to decode time axis"
)


@pytest.fixture(scope="module")
def mnt():
    with mount(FST) as m:
        yield m.path


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The fstd2nc dump of a fixture: (dataset.json, directory of .npy)."""
    if not FST_PYTHON.exists():
        pytest.fail(f"no fstd2nc virtualenv at {FST_PYTHON}: run `make venv-fst`")
    cache = {}

    def get(name):
        if name not in cache:
            out = tmp_path_factory.mktemp("fstd2nc")
            done = subprocess.run(
                [FST_PYTHON, FST / "fstd2nc_dump.py", FST / name, out],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert done.returncode == 0, f"fstd2nc_dump {name}: {done.stderr[-2000:]}"
            cache[name] = (json.loads((out / "dataset.json").read_text()), out)
        return cache[name]

    return get


def open_mounted(mnt, name):
    return xr.open_zarr(Path(mnt) / name, consolidated=True)


def unreadable(var, expected) -> bool:
    """fstd2nc drops the k axis of nk > 1 records, then reads them as all-NaN float64 ("Cannot
    read from … file may be missing or damaged")."""
    return expected.dtype == np.float64 and var["dtype"] != "<f8" and np.isnan(expected).all()


def reference_values(out: Path, var: dict) -> np.ndarray:
    return np.load(out / var["npy"], allow_pickle=False)


def as_ns(values) -> np.ndarray:
    """datetime64/timedelta64 values as int64 nanoseconds (what the dump stores)."""
    values = np.asarray(values)
    unit = "M8[ns]" if values.dtype.kind == "M" else "m8[ns]"
    return values.astype(unit).astype("int64")


def data_vars(ref):
    return {k: v for k, v in ref["variables"].items() if v["role"] == "data_var"}


@pytest.mark.parametrize("name", [f for f in FILES if f not in NOT_READABLE_BY_FSTD2NC])
def test_same_variables_dims_and_coordinates(mnt, reference, name):
    ref, _ = reference(name)
    ds = open_mounted(mnt, name)
    # The `records/` table is a subgroup, not a variable; the grid-mapping variables are
    # 0-d int32 here (fstd2nc: |S1, which Zarr v3 has no type for).
    assert set(ds.data_vars) == set(data_vars(ref)), name
    assert set(ds.coords) == set(ref["coords"]) - {"ap", "b"}, name
    for vname, var in ref["variables"].items():
        if vname in ("ap", "b"):
            continue  # vgrid !! descriptors are not decoded (see the FST section of the README)
        got = ds[vname]
        dims, shape = list(got.dims), list(got.shape)
        if len(dims) == len(var["dims"]) + 1 and dims[-3].startswith("k"):
            # nk > 1: zarrmount keeps the k axis that fstd2nc drops (test_fst.py checks
            # these records against librmn).
            del dims[-3], shape[-3]
        assert dims == var["dims"], f"{name} {vname}"
        assert shape == var["shape"], f"{name} {vname}"
        for key, value in var["attrs"].items():
            if key in VGRID_ATTRS and name == "vgrid_hybrid.fst":
                continue  # the !! descriptor is not decoded (README: FST)
            if (
                key == "formula_terms"
                or vname in ("rotated_pole", "polar_stereo")
                and key.startswith("false_")
            ):
                continue
            assert got.attrs.get(key) == pytest.approx(value), f"{name} {vname}.{key}"


@pytest.mark.parametrize("name", [f for f in FILES if f not in NOT_READABLE_BY_FSTD2NC])
def test_same_values(mnt, reference, name):
    ref, out = reference(name)
    ds = open_mounted(mnt, name)
    for vname, var in ref["variables"].items():
        if (
            vname in ("ap", "b")
            or var.get("npy") is None
            or var["dims"] == []
            and var["dtype"] == "|S1"
        ):
            continue
        expected = reference_values(out, var)
        got = ds[vname].values
        ctx = f"{name} {vname}"
        if got.dtype == object:  # past 2262: cftime dates on both sides
            got = np.array([t.isoformat() for t in np.ravel(got)]).reshape(np.shape(got))
            np.testing.assert_array_equal(got, expected, err_msg=ctx)
        elif var["dtype"].startswith(("<M8", "<m8")):
            np.testing.assert_array_equal(as_ns(got), expected, err_msg=ctx)
        elif vname in ("lat", "lon") or vname.startswith(("lat_", "lon_")) and got.ndim == 2:
            np.testing.assert_allclose(got, expected, atol=LATLON_TOLERANCE, err_msg=ctx)
        elif name == "datyps.fst" and vname == "T129_DATYP129_12":
            # librmn (so fstd2nc) mis-decodes datyp 129 below 16 bits (fst.md 2.10);
            # zarrmount reads its 16-bit tokens, which must give the same field as the
            # 16-bit record of it, to 12-bit quantisation.
            exact = ds["T129_DATYP129_16"].values
            step = (exact.max() - exact.min()) / 2**12
            np.testing.assert_allclose(got, exact, atol=2 * step, err_msg=ctx)
            assert np.abs(expected - exact).max() > 100 * step, "librmn's quirk is gone?"
        else:
            check_data(ctx, got, expected, var)


def check_data(ctx, got, expected, var):
    if unreadable(var, expected):
        return
    if var["dtype"][1] in "iu" and expected.dtype == np.float64:
        # Integer records with the missing flag: fstd2nc loads float64 with 1e30 at the
        # missing points, zarrmount presents float64 with NaN there.
        assert got.dtype == np.float64, ctx
        expected = np.where(expected == 1e30, np.nan, expected)
    np.testing.assert_array_equal(
        got.astype(expected.dtype) if got.dtype != expected.dtype else got, expected, err_msg=ctx
    )
