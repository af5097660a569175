"""Re-read chunk files are served by the kernel's page cache.

A chunk file's first read goes straight to the reader (direct I/O). Once read whole, it is
opened through the kernel's page cache, which the kernel fills on that second read: a third
read never reaches the daemon (`zarrmount stats` counts nothing more served) and gives the
same values as the reference. A source changed in place afterwards is not answered from the
cached pages: the daemon answers again, and a read it cannot vouch for fails with EIO.

Expected values come from librmn (FST) and the source bytes (raw), never from zarrmount.
"""

import errno
import mmap
import os
import shutil
from pathlib import Path

import numpy as np
import zarr

from conftest import REPO, assert_errno, mount
from fst_reference import reference
from test_engine import chunk_files, stats
from test_source_changes import rewrite

FST = "datyps.fst"


def read_all(files: list[Path]) -> int:
    return sum(len(f.read_bytes()) for f in files)


def test_fst_records_read_three_times(tmp_path):
    """Decoded chunks: cached by the kernel on the second read, served by it on the third,
    equal to librmn's decoding; the file rewritten in place is not answered from the pages."""
    path = tmp_path / FST
    shutil.copyfile(REPO / "fixtures" / "fst" / FST, path)
    ref = {r.nomvar: r for r in reference(FST).records}
    with mount(path, foreground=True) as m:
        files = chunk_files(m.path)
        total = sum(f.stat().st_size for f in files)
        assert files and total > 0

        read_all(files)
        first = stats(m.path)
        assert first["page_cache_opens"] == 0, "a first read is direct"
        assert first["bytes_served"] >= total

        read_all(files)
        second = stats(m.path)
        assert second["page_cache_opens"] == len(files), second
        assert second["bytes_served"] >= first["bytes_served"] + total, (
            "the kernel filled its cache"
        )

        for var in ("E32", "R16", "I32", "E64", "U16"):
            got = zarr.open_array(m.path / var, mode="r")[...]
            np.testing.assert_array_equal(np.squeeze(got), np.squeeze(ref[var].values()), var)
        third = stats(m.path)
        assert third["bytes_served"] == second["bytes_served"], "the third read reached the daemon"

        # Rewritten in place: the cached pages are dropped on the next open and the daemon
        # answers again, from its own cache of the described version (decoded chunks stay
        # there, see test_source_changes.py) or with EIO.
        before = {f: f.read_bytes() for f in chunk_files(m.path / "R16")}
        rewrite(path)
        for f, old in before.items():
            served = stats(m.path)["bytes_served"]
            try:
                assert f.read_bytes() == old, f
            except OSError as e:
                assert e.errno == errno.EIO, e
            else:
                assert stats(m.path)["bytes_served"] > served, f"{f} came from stale pages"
        assert m.proc.poll() is None


def mount_device(mnt: Path) -> str:
    """`major:minor` of the mount at `mnt`, from mountinfo (the name of its backing device)."""
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return [ln.split()[2] for ln in lines if ln.split()[4] == str(mnt)][-1]


def test_a_chunk_file_is_cached_in_one_request(tmp_path):
    """The read that fills the kernel's page cache with a chunk file (its second whole read)
    asks the daemon once per chunk: as root the mount's read-ahead is raised to max_read,
    where the kernel's default of 128 KiB would take eight requests per 1 MiB chunk."""
    path = tmp_path / "blob.bin"
    data = np.random.default_rng(3).integers(0, 256, 4 << 20, dtype=np.uint8).tobytes()
    path.write_bytes(data)
    with mount(f"raw://{path}", foreground=True) as m:
        knob = Path(f"/sys/class/bdi/{mount_device(m.path)}/read_ahead_kb")
        assert knob.read_text().strip() == "4096", "4 MiB, the default max_read"
        files = chunk_files(m.path)
        assert len(files) == 4
        read_all(files)
        before = stats(m.path)
        assert b"".join(f.read_bytes() for f in files) == data
        after = stats(m.path)
        assert after["page_cache_opens"] - before["page_cache_opens"] == len(files), after
        assert after["chunk_reads"] - before["chunk_reads"] == len(files), (before, after)


def test_raw_chunks_read_through_the_page_cache_and_mmap(tmp_path):
    """Byte-range chunks, read in pieces as `cat` does: the third read and an mmap of a cached
    file give the source's bytes without the daemon."""
    path = tmp_path / "blob.bin"
    data = np.random.default_rng(7).integers(0, 256, (3 << 20) + 12345, dtype=np.uint8).tobytes()
    path.write_bytes(data)
    with mount(f"raw://{path}", foreground=True) as m:
        files = chunk_files(m.path)
        sizes = [f.stat().st_size for f in files]
        assert len(files) == 4

        def cat(f: Path) -> bytes:
            with open(f, "rb", buffering=0) as fh:
                return b"".join(iter(lambda: fh.read(256 << 10), b""))

        for _ in range(2):
            for f in files:
                cat(f)
        stored = stats(m.path)
        assert stored["page_cache_opens"] == len(files), stored
        assert stored["bytes_served"] == 2 * sum(sizes), stored

        got = b"".join(cat(f) for f in files)
        assert got[: len(data)] == data
        assert got[len(data) :] == bytes(len(got) - len(data)), "the last chunk is zero-filled"
        last = files[-1]
        with open(last, "rb") as fh, mmap.mmap(fh.fileno(), 0, prot=mmap.PROT_READ) as mm:
            assert mm[: len(data) - (3 << 20)] == data[3 << 20 :]
        assert stats(m.path)["bytes_served"] == stored["bytes_served"]

        # Truncated in place: the cached pages are dropped on the next open, and the read
        # reports the change.
        os.truncate(path, 1 << 20)
        assert_errno(errno.EIO, Path.read_bytes, files[2])
        assert m.proc.poll() is None
