"""`-o memory_limit=8M`: writes past the limit fail with ENOSPC and nothing earlier is lost."""

import os
import shutil
from errno import ENOSPC

import numpy as np
import pytest
import zarr

from conftest import assert_bits_equal, assert_errno, mount, run_py

MiB = 1 << 20
SMALL_FILE = bytes(range(256)) * 4096  # 1 MiB
SMALL_ARRAY = np.arange(100 * 100, dtype="i4").reshape(100, 100) ** 2


@pytest.fixture
def limited():
    """An 8 MiB memory store already holding a small file and a small array."""
    with mount("memory://scratch", options="memory_limit=8M") as m:
        (m.path / "small.bin").write_bytes(SMALL_FILE)
        zarr.create_array(m.path / "small", shape=(100, 100), chunks=(30, 30), dtype="i4")[:] = (
            SMALL_ARRAY
        )
        yield m.path


def write_file(path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_mib_files(directory, count: int) -> None:
    for i in range(count):
        write_file(directory / str(i), os.urandom(MiB))


def assert_earlier_data_intact(root) -> None:
    """The small file and array read back unchanged, from another process too."""
    assert {"small.bin", "small", "zarr.json"} <= set(os.listdir(root))
    assert (root / "small.bin").read_bytes() == SMALL_FILE
    small = run_py(
        'import zarr; result = zarr.open_array(path, mode="r")[:]', path=str(root / "small")
    )
    assert_bits_equal(small, SMALL_ARRAY, "small")


def test_plain_write_past_limit(limited):
    assert_errno(ENOSPC, write_file, limited / "big.bin", os.urandom(16 * MiB))
    assert_earlier_data_intact(limited)


def test_zarr_write_past_limit(limited):
    big = zarr.create_array(
        limited / "big", shape=(4096, 1024), chunks=(256, 1024), dtype="f8", compressors=None
    )  # 32 MiB of incompressible data
    assert_errno(ENOSPC, big.__setitem__, slice(None), np.random.default_rng(0).random(big.shape))
    assert_earlier_data_intact(limited)
    assert zarr.open_array(limited / "big", mode="r").shape == big.shape  # its metadata survived


def test_deleting_frees_space(limited):
    filler = limited / "filler"
    filler.mkdir()
    assert_errno(ENOSPC, write_mib_files, filler, 16)
    assert len(os.listdir(filler)) >= 4  # 8 MiB minus the ~1 MiB in use held several
    assert_errno(ENOSPC, write_file, limited / "more.bin", os.urandom(MiB))  # full now

    shutil.rmtree(filler)
    (limited / "more.bin").unlink(missing_ok=True)
    data = os.urandom(4 * MiB)
    write_file(limited / "after.bin", data)
    assert (limited / "after.bin").read_bytes() == data
    assert_earlier_data_intact(limited)
