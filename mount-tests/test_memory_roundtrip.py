"""zarr-python writes arrays into a memory store; a separate process reads them back bit-exact."""

import numpy as np
import pytest
import zarr

from conftest import assert_bits_equal, run_py

DTYPES = [
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float32",
    "float64",
    "bool",
]
SHAPES = {  # name: (shape, chunks); the 1-d and 3-d shapes leave partial edge chunks
    "0d": ((), ()),
    "1d": ((1000,), (128,)),
    "3d": ((7, 13, 10), (3, 5, 4)),
}
CODECS = {
    "zstd": {},  # zarr-python's default compressor
    "gzip": {"compressors": zarr.codecs.GzipCodec()},
    "none": {"compressors": None},
}

READ_ALL = """
import zarr
result = {name: zarr.open_array(f"{root}/{name}", mode="r")[...] for name in names}
"""


def expected(dtype: str, shape: tuple, seed: int) -> np.ndarray:
    """Values over the dtype's whole range; floats start with NaN, ±inf, -0.0 and extremes."""
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return np.asarray(rng.random(shape) < 0.5)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return rng.integers(info.min, info.max, size=shape, dtype=dt, endpoint=True)
    values = (rng.standard_normal(shape) * 1e3).astype(dt)
    if values.ndim:
        info = np.finfo(dt)
        specials = np.array(
            [np.nan, np.inf, -np.inf, -0.0, info.max, info.min, info.tiny], dtype=dt
        )
        values.flat[: len(specials)] = specials
    return values


@pytest.mark.parametrize("codec", CODECS)
def test_dtypes_shapes_roundtrip(store, codec):
    arrays = {}
    cases = [(d, s) for d in DTYPES for s in SHAPES.items()]
    for seed, (dtype, (shape_name, (shape, chunks))) in enumerate(cases):
        name = f"{dtype}_{shape_name}"
        arrays[name] = expected(dtype, shape, seed)
        a = zarr.create_array(
            store / name, shape=shape, chunks=chunks, dtype=dtype, **CODECS[codec]
        )
        a[...] = arrays[name]

    back = run_py(READ_ALL, root=store, names=list(arrays))
    for name, want in arrays.items():
        assert_bits_equal(back[name], want, name)


def test_issue_example(store):
    path = store / "scratch" / "t"
    a = zarr.create_array(str(path), shape=(1000, 1000), chunks=(100, 100), dtype="f4")
    a[:] = np.arange(1e6).reshape(1000, 1000)

    corner, full = run_py(
        """
        import zarr
        a = zarr.open_array(path, mode="r")
        result = a[:2, :2], a[:]
        """,
        path=str(path),
    )
    want = np.arange(1e6).reshape(1000, 1000).astype("f4")
    assert_bits_equal(corner, want[:2, :2], "a[:2, :2]")
    assert_bits_equal(full, want, "a[:]")
