"""xarray writes a Dataset into a memory store; a separate process opens it with xr.open_zarr."""

import json

import numpy as np
import pytest
import xarray as xr

from conftest import run_py

pytestmark = pytest.mark.filterwarnings("ignore:Consolidated metadata:UserWarning")


def dataset() -> xr.Dataset:
    time = np.arange("2024-01-01", "2024-01-06", dtype="datetime64[D]").astype("datetime64[ns]")
    lat = np.linspace(-90.0, 90.0, 19)
    lon = np.arange(0.0, 360.0, 30.0)
    t, y, x = np.meshgrid(np.arange(time.size), lat, lon, indexing="ij")
    temperature = (273.15 + 30 * np.cos(np.deg2rad(y)) + np.sin(np.deg2rad(x)) + 0.5 * t).astype(
        "f4"
    )
    return xr.Dataset(
        {
            "temperature": (
                ("time", "lat", "lon"),
                temperature,
                {"units": "K", "long_name": "air temperature"},
            )
        },
        coords={
            "time": ("time", time),
            "lat": ("lat", lat, {"units": "degrees_north"}),
            "lon": ("lon", lon, {"units": "degrees_east"}),
        },
        attrs={"title": "zarrmount test", "version": 3},
    )


@pytest.mark.parametrize("consolidated", [True, False])
def test_dataset_roundtrip(store, consolidated):
    path = store / "ds.zarr"
    ds = dataset()
    # chunks that do not divide the shape leave partial edge chunks
    ds.to_zarr(
        path,
        consolidated=consolidated,
        zarr_format=3,
        encoding={"temperature": {"chunks": (2, 8, 5)}},
    )

    back = run_py(
        """
        import xarray as xr
        with xr.open_zarr(path, consolidated=consolidated) as ds:
            result = ds.load()
        """,
        path=str(path),
        consolidated=consolidated,
    )
    xr.testing.assert_identical(back, ds)
    assert back.temperature.dtype == np.float32

    meta = json.loads((path / "zarr.json").read_text()).get("consolidated_metadata")
    if consolidated:
        assert {"temperature", "time", "lat", "lon"} <= set(meta["metadata"])
    else:
        assert meta is None
