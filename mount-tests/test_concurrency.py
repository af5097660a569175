"""Four processes write into one memory store at once; every value is checked afterwards."""

import time

import numpy as np
import zarr

from conftest import Py, assert_bits_equal

# Each writer imports zarr, waits for a common start time, then writes chunk by chunk.
WRITE_WHOLE = """
import time, zarr
a = zarr.create_array(path, shape=data.shape, chunks=chunks, dtype=data.dtype)
time.sleep(max(0.0, start - time.time()))
for i in range(0, data.shape[0], chunks[0]):
    a[i:i + chunks[0]] = data[i:i + chunks[0]]
"""
WRITE_ROWS = """
import time, zarr
a = zarr.open_array(path, mode="r+")
time.sleep(max(0.0, start - time.time()))
for i in range(0, data.shape[0], step):
    a[first + i:first + i + step] = data[i:i + step]
"""


def test_four_writers(store):
    rows, cols, chunk = 600, 400, (50, 100)
    whole_a = np.arange(500 * 300, dtype="i4").reshape(500, 300) * 7 - 3
    whole_b = np.sqrt(np.arange(300 * 500, dtype="f8")).reshape(300, 500)
    shared = np.add.outer(np.arange(rows, dtype="f4") * 1000, np.arange(cols, dtype="f4"))
    zarr.create_array(store / "shared", shape=shared.shape, chunks=chunk, dtype=shared.dtype)
    half = rows // 2  # a multiple of the chunk rows: the two regions share no chunk

    start = time.time() + 3
    writers = [
        Py(WRITE_WHOLE, path=str(store / "a"), data=whole_a, chunks=(64, 64), start=start),
        Py(WRITE_WHOLE, path=str(store / "b"), data=whole_b, chunks=(32, 100), start=start),
        Py(
            WRITE_ROWS,
            path=str(store / "shared"),
            data=shared[:half],
            first=0,
            step=chunk[0],
            start=start,
        ),
        Py(
            WRITE_ROWS,
            path=str(store / "shared"),
            data=shared[half:],
            first=half,
            step=chunk[0],
            start=start,
        ),
    ]
    for w in writers:
        w.result(timeout=90)

    assert_bits_equal(zarr.open_array(store / "a", mode="r")[:], whole_a, "a")
    assert_bits_equal(zarr.open_array(store / "b", mode="r")[:], whole_b, "b")
    assert_bits_equal(zarr.open_array(store / "shared", mode="r")[:], shared, "shared")
