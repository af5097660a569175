"""FST grids through the mount against librmn's geolocation of them.

`U` (Yin-Yang supergrid, fixtures/fst/grid_u.fst): the data records stack two rotated lat-lon
sub-grids along j, described by one `^>` record (fst.md §3.3). Through the mount, opened with
xarray, every variable on that grid must

- end in the dimensions fstd2nc gives it, (y, x), of sizes (2 x sub-grid nj, sub-grid ni) = the
  records' (nj, ni);
- carry 2-D `lat` and `lon` coordinates on them equal to librmn's: `gdll` of each sub-grid,
  stacked along j (fixtures/fst/reference/grid_u_latlon.json, written by make_fst.py);
- hold, record by record, the values librmn's `fstluk` decoded (reference/grid_u/*.npy).

Nothing here is compared with zarrmount's own output. What fstd2nc shows for the same file
(the 1-D x/y axes, the yin/yang grid mappings) is checked by test_fst_xarray.py, which takes
every fixture.
"""

import json

import numpy as np
import pytest
import xarray as xr

from conftest import assert_bits_equal, mount
from fst_reference import FIXTURES, reference

U_FILE = "grid_u.fst"
# fstd2nc 0.20260914 names the stacked grid's dimensions y and x (with 1-D coordinates: the
# sub-grids' rotated latitudes one after the other, and the rotated longitudes), not j and i.
U_DIMS = ("y", "x")
# librmn's gdll and a float64 evaluation of the same rotations agree to 2.5e-5 degrees on this
# grid (float32 arithmetic in librmn); its points reach 83 degrees from the equator, where a
# longitude error is 8 times the distance error.
LATLON_TOLERANCE = 1e-4

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")


@pytest.fixture(scope="module")
def mnt():
    with mount(FIXTURES) as m:
        yield m.path


@pytest.fixture(scope="module")
def u_grid():
    """librmn's description of the one U grid of grid_u.fst: ni, nj, ig1..ig4, lat, lon."""
    doc = json.loads((FIXTURES / "reference" / "grid_u_latlon.json").read_text())
    assert doc["file"] == U_FILE
    (grid,) = doc["grids"]
    return grid


def u_records():
    """librmn's data records of grid_u.fst on a U grid (the `^>` record is not one)."""
    return [r for r in reference(U_FILE).data_records() if r.grtyp == "U"]


def open_u(mnt) -> xr.Dataset:
    return xr.open_zarr(mnt / U_FILE, consolidated=True)


def test_fixture_has_u_variables(u_grid):
    records = u_records()
    assert {r.nomvar for r in records} == {"TT", "P0"}
    for r in records:
        assert (r.nj, r.ni) == (u_grid["nj"], u_grid["ni"]), r
        assert [r.ig1, r.ig2, r.ig3, r.ig4] == [u_grid[f"ig{n}"] for n in (1, 2, 3, 4)], r


def test_u_variables_end_in_the_stacked_grid(mnt, u_grid):
    ds = open_u(mnt)
    shape = (u_grid["nj"], u_grid["ni"])
    for name in sorted({r.nomvar for r in u_records()}):
        var = ds[name]
        assert var.dims[-2:] == U_DIMS, f"{name}: dims {var.dims}"
        assert var.shape[-2:] == shape, f"{name}: shape {var.shape}"
        for coord in ("lat", "lon"):
            assert coord in var.coords, f"{name}: coordinates {list(var.coords)}"
            assert var[coord].dims == U_DIMS, f"{name}.{coord}: dims {var[coord].dims}"


def test_u_lat_lon_are_librmns(mnt, u_grid):
    ds = open_u(mnt)
    expected_lat = np.array(u_grid["lat"], dtype=np.float64)
    expected_lon = np.array(u_grid["lon"], dtype=np.float64)
    assert expected_lat.shape == (u_grid["nj"], u_grid["ni"])
    lat = ds["lat"].values.astype(np.float64)
    lon = ds["lon"].values.astype(np.float64)
    assert ds["lat"].dims == U_DIMS and ds["lon"].dims == U_DIMS
    np.testing.assert_allclose(lat, expected_lat, rtol=0, atol=LATLON_TOLERANCE, err_msg="lat")
    # longitudes are the same modulo 360 (librmn gives 0..360)
    dlon = (lon - expected_lon + 180.0) % 360.0 - 180.0
    worst = np.unravel_index(np.argmax(np.abs(dlon)), dlon.shape)
    assert np.abs(dlon).max() <= LATLON_TOLERANCE, (
        f"lon differs by {dlon[worst]:.3g} degrees at (y, x) = {worst}: "
        f"{lon[worst]} != {expected_lon[worst]} (modulo 360)"
    )


@pytest.mark.parametrize("record", u_records(), ids=lambda r: f"{r.nomvar}-{r.index}")
def test_u_values_are_librmns(mnt, record):
    var = open_u(mnt)[record.nomvar]
    where = {}
    for dim in var.dims[:-2]:
        if dim == "time":
            where[dim] = np.datetime64(record.valid, "s")
        else:  # the level axis (pres for TT)
            where[dim] = record.level
    got = var.sel(where).values
    assert_bits_equal(got, record.values(), str(record))
