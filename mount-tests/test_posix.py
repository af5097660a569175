"""POSIX semantics of a memory store (what zarr-python's LocalStore relies on), and EROFS
everywhere else."""

import errno
import os

import pytest

from conftest import assert_errno, mount

ENOENT, EEXIST, ENOTEMPTY, EISDIR, ENOTDIR, EROFS = (
    errno.ENOENT,
    errno.EEXIST,
    errno.ENOTEMPTY,
    errno.EISDIR,
    errno.ENOTDIR,
    errno.EROFS,
)


@pytest.fixture
def scratch(two_sources):
    return two_sources / "scratch"


def test_enoent(scratch):
    missing = scratch / "missing"
    for fn, *args in [
        (os.stat, missing),
        (os.unlink, missing),
        (os.rmdir, missing),
        (os.listdir, missing),
        (open, missing, "rb"),
        (open, missing / "f", "wb"),
        (os.rename, missing, scratch / "x"),
        (os.link, missing, scratch / "x"),
        (os.truncate, missing, 0),
    ]:
        assert_errno(ENOENT, fn, *args)


def test_eexist(scratch):
    (scratch / "d").mkdir()
    (scratch / "f").write_bytes(b"f")
    (scratch / "g").write_bytes(b"g")
    assert_errno(EEXIST, os.mkdir, scratch / "d")
    assert_errno(EEXIST, os.mkdir, scratch / "f")
    assert_errno(EEXIST, os.link, scratch / "f", scratch / "g")
    assert_errno(EEXIST, open, scratch / "f", "xb")  # O_CREAT | O_EXCL
    assert (scratch / "g").read_bytes() == b"g"


def test_enotempty(scratch):
    (scratch / "d" / "e").mkdir(parents=True)
    assert_errno(ENOTEMPTY, os.rmdir, scratch / "d")
    (scratch / "d" / "e").rmdir()
    (scratch / "d").rmdir()
    assert sorted(os.listdir(scratch)) == ["zarr.json"]


def test_eisdir(scratch):
    (scratch / "d").mkdir()
    (scratch / "f").write_bytes(b"f")
    assert_errno(EISDIR, open, scratch / "d", "wb")
    assert_errno(EISDIR, os.unlink, scratch / "d")
    assert_errno(EISDIR, os.rename, scratch / "f", scratch / "d")


def test_enotdir(scratch):
    f, d = scratch / "f", scratch / "d"
    f.write_bytes(b"f")
    d.mkdir()
    for fn, *args in [
        (os.listdir, f),
        (os.rmdir, f),
        (os.mkdir, f / "sub"),
        (open, f / "x", "wb"),
        (os.rename, d, f),
    ]:
        assert_errno(ENOTDIR, fn, *args)


def test_mkdir_p_create_list(scratch):
    os.makedirs(scratch / "a" / "b" / "c")
    os.makedirs(scratch / "a" / "b" / "c", exist_ok=True)
    (scratch / "a" / "b" / "f").write_bytes(b"12345")
    kinds = {e.name: (e.is_dir(), e.is_file()) for e in os.scandir(scratch / "a" / "b")}
    assert kinds == {"c": (True, False), "f": (False, True)}
    assert os.stat(scratch / "a" / "b" / "f").st_size == 5


def test_truncate_on_open(scratch):
    f = scratch / "f"
    f.write_bytes(b"a long first version")
    f.write_bytes(b"short")  # open(..., "wb") truncates
    assert f.read_bytes() == b"short"
    os.close(os.open(f, os.O_WRONLY | os.O_TRUNC))
    assert f.read_bytes() == b"" and os.stat(f).st_size == 0


def test_rename_replaces(scratch):
    (scratch / "src").write_bytes(b"new")
    (scratch / "dst").write_bytes(b"old contents")
    os.rename(scratch / "src", scratch / "dst")
    assert (scratch / "dst").read_bytes() == b"new"
    assert not (scratch / "src").exists()

    (scratch / "dir" / "sub").mkdir(parents=True)
    (scratch / "dir" / "sub" / "x").write_bytes(b"x")
    os.replace(scratch / "dst", scratch / "dir" / "sub" / "x")  # across directories
    os.rename(scratch / "dir", scratch / "moved")  # a directory with its contents
    assert (scratch / "moved" / "sub" / "x").read_bytes() == b"new"
    assert sorted(os.listdir(scratch)) == ["moved", "zarr.json"]


def test_link_then_unlink(scratch):
    # zarr-python's exclusive put: write a temporary, link it into place, unlink the temporary
    (scratch / "tmp.partial").write_bytes(b"payload")
    os.link(scratch / "tmp.partial", scratch / "final")
    a, b = os.stat(scratch / "tmp.partial"), os.stat(scratch / "final")
    assert a.st_ino == b.st_ino and b.st_nlink == 2
    os.unlink(scratch / "tmp.partial")
    assert os.stat(scratch / "final").st_nlink == 1
    assert (scratch / "final").read_bytes() == b"payload"
    assert sorted(os.listdir(scratch)) == ["final", "zarr.json"]


def test_truncate_grow_and_shrink(scratch):
    f = scratch / "f"
    f.write_bytes(b"0123456789")
    os.truncate(f, 100)
    assert f.read_bytes() == b"0123456789" + bytes(90)
    os.truncate(f, 4)
    assert f.read_bytes() == b"0123"
    with open(f, "r+b") as fh:
        fh.truncate(2)  # ftruncate
    assert f.read_bytes() == b"01" and os.stat(f).st_size == 2


def test_write_at_offsets(scratch):
    f = scratch / "f"
    f.write_bytes(b"abcdef")
    fd = os.open(f, os.O_WRONLY)
    try:
        os.pwrite(fd, b"XY", 2)  # inside the file
        os.pwrite(fd, b"end", 5000)  # past EOF: the hole reads as zeros
    finally:
        os.close(fd)
    assert f.read_bytes() == b"abXYef" + bytes(5000 - 6) + b"end"
    assert os.stat(f).st_size == 5003


def test_utime(scratch):
    f = scratch / "f"
    f.write_bytes(b"x")
    times = (1_000_000_000 * 10**9, 1_500_000_000 * 10**9)
    os.utime(f, ns=times)
    st = os.stat(f)
    assert (st.st_atime_ns, st.st_mtime_ns) == times


def test_statvfs(scratch):
    st = os.statvfs(scratch)
    assert st.f_bsize > 0 and st.f_frsize > 0
    assert st.f_bavail <= st.f_bfree <= st.f_blocks
    assert st.f_namemax >= 255


def test_fsync(scratch):
    with open(scratch / "f", "wb") as f:
        f.write(b"durable")
        f.flush()
        os.fsync(f.fileno())
        os.fdatasync(f.fileno())
    assert (scratch / "f").read_bytes() == b"durable"


def snapshot(root):
    """Every path under root with its kind, bytes and mtime."""
    return {
        p.relative_to(root): (
            p.is_dir(),
            None if p.is_dir() else p.read_bytes(),
            p.stat().st_mtime_ns,
        )
        for p in [root, *root.rglob("*")]
    }


def test_directory_source_is_read_only(two_sources, fixtures_dir):
    before = snapshot(fixtures_dir)
    fx, root = two_sources / "fixtures", two_sources
    meta = fx / "zarr.json"
    for fn, *args in [
        (open, meta, "r+b"),
        (open, fx / "new.bin", "wb"),
        (os.mkdir, fx / "newdir"),
        (os.unlink, meta),
        (os.rename, meta, fx / "renamed.json"),
        (os.truncate, meta, 0),
        (os.utime, meta),
        # the root joining the sources is no memory store either
        (open, root / "new.bin", "wb"),
        (os.mkdir, root / "newdir"),
        (os.rename, root / "scratch", root / "renamed"),
    ]:
        assert_errno(EROFS, fn, *args)
    assert snapshot(fixtures_dir) == before
    assert sorted(os.listdir(root)) == ["fixtures", "scratch", "zarr.json"]


def test_ro_option():
    with mount("memory://scratch", options="ro") as m:
        for fn, *args in [
            (open, m.path / "f", "wb"),
            (os.mkdir, m.path / "d"),
            (open, m.path / "zarr.json", "r+b"),
        ]:
            assert_errno(EROFS, fn, *args)
