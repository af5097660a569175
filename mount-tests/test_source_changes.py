"""A source file truncated, rewritten in place or replaced while it is mounted.

zarrmount describes a file once, when it opens the dataset; bytes read later against that
description from a file that has changed since would be wrong values. So reads of a file
truncated or rewritten in place fail with EIO and a logged reason naming the file, while
reads of other files go on, and the daemon stays up. A file replaced (another one renamed
over it) after zarrmount first read it is still open, so reads keep returning the version
that was described, with the reference's values; replaced before its first read, it gives
EIO like the others. A chunk read before a change may still come from a cache, and then
equals the reference. (In a directory source a changed file is also opened again within a
second, as test_live_dirs.py checks; here each file is mounted on its own, so the mount keeps
its first description.)

Expected values come from the plotfile generator and librmn, never from zarrmount.
"""

import errno
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

from conftest import REPO, assert_errno, mount, plotfile_generator
from fst_reference import reference
from test_plotfile import assert_same, bytes_dtype, chunk_path, fab_offsets

pytestmark = pytest.mark.filterwarnings("ignore:Consolidated metadata:UserWarning")

gen = plotfile_generator()
HOUR = 3600


def truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def rewrite(path: Path) -> None:
    """Same inode, same size, other bytes, and an mtime that surely differs."""
    data = path.read_bytes()
    with open(path, "r+b") as f:
        f.write(bytes(b ^ 0x5A for b in data))
    later = time.time() + HOUR
    os.utime(path, (later, later))


def replace(path: Path) -> None:
    """Another file renamed over it, as tools that write atomically do."""
    new = path.with_name(path.name + ".new")
    new.write_bytes(path.read_bytes()[::-1])
    os.replace(new, path)


CHANGES = {"truncated": truncate, "rewritten": rewrite, "replaced": replace}


def chunk_files(array_dir: Path) -> list[Path]:
    return sorted(p for p in (array_dir / "c").rglob("*") if p.is_file())


def assert_logged(m, path: Path) -> None:
    assert m.proc.poll() is None, f"daemon exited {m.proc.returncode}: {m.log.read_text()}"
    log = m.log.read_text()
    assert "panicked" not in log, log
    assert any(str(path) in line and "since it was mounted" in line for line in log.splitlines()), (
        f"no logged reason naming {path}:\n{log}"
    )


@pytest.mark.parametrize("change", CHANGES)
def test_plotfile_data_file(tmp_path, change):
    """Level 0 of a plotfile has its boxes in two Cell_D files, and one box of the first is
    read before it changes. Truncated or rewritten, each of its boxes' chunks is then EIO
    (the one read before may come from a cache, with the right values) and zarr-python fails
    rather than return wrong values; replaced, the open file still gives the reference
    values. The other file's boxes read all along."""
    name = "pf3d_v1_f64le"
    src = tmp_path / name
    shutil.copytree(REPO / "fixtures" / "amrex" / name, src)
    pf = gen.build(name)
    level = pf.levels[0]
    fabs = fab_offsets(src)
    assert len({f for f, _ in fabs}) == 2, fabs
    changed = src / "Level_0" / "Cell_D_00000"
    with mount(src, foreground=True) as m:
        adir = m.path / "level_0" / "density"
        dtype = bytes_dtype(adir, pf.value_dtype)

        def chunk(ib):
            lo, _ = level.boxes[ib]
            return chunk_path(adir, tuple(v // 8 for v in lo)[::-1])

        def check(ib, data):
            got = np.frombuffer(data, dtype).reshape(8, 8, 8)
            assert_same(got, level.data[ib]["density"], f"box {ib}")

        boxes = {f: [ib for ib, (g, _) in enumerate(fabs) if g == f] for f, _ in fabs}
        first = boxes["Cell_D_00000"][0]
        check(first, chunk(first).read_bytes())
        CHANGES[change](changed)
        for ib in boxes["Cell_D_00001"]:
            check(ib, chunk(ib).read_bytes())
        if change == "replaced":  # read before, so still open: the described version
            for ib in boxes["Cell_D_00000"]:
                check(ib, chunk(ib).read_bytes())
            whole = zarr.open_array(adir, mode="r")[...]
            assert_same(whole, gen.composite(pf, 0, "density"), "density")
            return
        for ib in boxes["Cell_D_00000"][1:]:
            assert_errno(errno.EIO, Path.read_bytes, chunk(ib))
        try:
            check(first, chunk(first).read_bytes())
        except OSError as e:
            assert e.errno == errno.EIO, e
        with pytest.raises(OSError):
            zarr.open_array(adir, mode="r")[...]
        assert_logged(m, changed)


@pytest.mark.parametrize("change", CHANGES)
def test_fst_file(tmp_path, change):
    """An RPN standard file, read once before it changes: truncated or rewritten, every other
    record then fails with EIO; replaced, the open file still gives librmn's values."""
    name = "datyps.fst"
    path = tmp_path / name
    shutil.copyfile(REPO / "fixtures" / "fst" / name, path)
    ref = {r.nomvar: r for r in reference(name).records}
    with mount(path, foreground=True) as m:

        def check(var):
            got = zarr.open_array(m.path / var, mode="r")[...]
            np.testing.assert_array_equal(np.squeeze(got), np.squeeze(ref[var].values()), var)

        check("E32")
        CHANGES[change](path)
        others = ("R16", "I32", "E64", "U16")
        if change == "replaced":
            for var in others:
                check(var)
            return
        for var in others:
            files = chunk_files(m.path / var)
            assert files, var
            for f in files:
                assert_errno(errno.EIO, Path.read_bytes, f)
            with pytest.raises(OSError):
                zarr.open_array(m.path / var, mode="r")[...]
        assert_logged(m, path)


@pytest.mark.parametrize("change", CHANGES)
def test_webdataset_shard(tmp_path, change):
    """A WebDataset shard not read before it changes: its members are EIO after the change,
    whichever it is; the sample keys, which come from the index, still list."""
    name = "train-000000.tar"
    path = tmp_path / name
    shutil.copyfile(REPO / "fixtures" / "wds" / name, path)
    with mount(f"wds://{path}", options=f"index_dir={tmp_path / 'index'}", foreground=True) as m:
        keys = zarr.open_array(m.path / "key", mode="r")[...]
        CHANGES[change](path)
        for feature in ("image.npy", "cls", "txt"):
            files = chunk_files(m.path / feature)
            assert files, feature
            for f in files:
                assert_errno(errno.EIO, Path.read_bytes, f)
        assert list(zarr.open_array(m.path / "key", mode="r")[...]) == list(keys)
        assert_logged(m, path)
