"""The read path seen from outside: both I/O engines give the same bytes, and
`zarrmount stats` reports what the daemon did without going through the mount."""

import hashlib
import json
import os
from pathlib import Path

from conftest import REPO, mount, run_zarrmount

FIXTURES = REPO / "fixtures"


def chunk_files(root: Path) -> list[Path]:
    """Every chunk file under `root` (files below a `c/` directory of an array)."""
    out = []
    for dirpath, _dirs, files in os.walk(root):
        if f"{os.sep}c{os.sep}" in f"{dirpath}{os.sep}" or dirpath.endswith(f"{os.sep}c"):
            out += [Path(dirpath) / f for f in files]
    return sorted(out)


def digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in chunk_files(root)
    }


def stats(mnt: Path) -> dict:
    done = run_zarrmount("stats", "--json", mnt)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_pread_and_io_uring_serve_identical_chunks():
    with mount(FIXTURES, options="io=pread") as a:
        by_pread = digests(a.path)
        assert stats(a.path)["io_engine"] == "pread"
    with mount(FIXTURES, options="io=uring") as b:
        by_uring = digests(b.path)
        # io_uring is enabled on the machines this runs on; elsewhere it falls back to pread.
        assert stats(b.path)["io_engine"] == "io_uring"
    assert len(by_pread) > 100, "the fixtures' chunk files were found"
    assert by_pread == by_uring


def test_stats_count_what_was_read():
    with mount(FIXTURES / "amrex" / "pf3d_v1_f64le", options="prefetch=off") as m:
        before = stats(m.path)
        files = chunk_files(m.path / "level_0" / "density")
        total = sum(len(p.read_bytes()) for p in files)
        after = stats(m.path)
        assert len(files) == 8
        assert after["bytes_served"] - before["bytes_served"] == total
        assert after["chunk_reads"] - before["chunk_reads"] >= len(files)
        # Box-sized chunks are byte ranges: read straight from the source, not cached.
        assert after["direct_reads"] - before["direct_reads"] >= len(files)
        assert after["bytes_read"] - before["bytes_read"] >= total
        assert after["queue_depth"] == 0
        assert after["mountpoint"] == str(m.path)
        assert after["prefetch"] is False
        assert after["prefetch_issued"] == 0


def test_stats_of_something_not_mounted_fails_clearly(tmp_path):
    done = run_zarrmount("stats", tmp_path)
    assert done.returncode != 0
    assert "no zarrmount daemon serves" in done.stderr
