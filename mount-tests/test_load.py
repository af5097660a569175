"""Load: many readers and writers on one mount for minutes, with nothing lost or leaked.

One mount shows every fixture (plotfiles, FST files, WebDataset shards, damaged ones
included), a generated plotfile of about 90 MiB whose chunks all go through the cache (ghost
cells), and a memory store, with a chunk cache far smaller than the chunks read. A
single reader first reads every chunk file once and records its SHA-256, or the errno it
fails with. Then, for ZARRMOUNT_LOAD_SECONDS (default 180), 16 reader processes read every
chunk file in orders of their own, again and again, while 8 writer processes write zarr
arrays into the memory store, overwriting them round after round. Afterwards:

- every read of every reader gave the single reader's digest, or its errno;
- every array a writer wrote last holds exactly what it wrote (read back with zarr-python);
- the daemon's peak RSS stayed within cache_size + memory_limit + 64 MiB, the bound its
  options set (the cache bounds reads, prefetches and fetches in flight; the limit bounds
  the store);
- the daemon has as many file descriptors open as before the load.

The single reader's digests are the reference for consistency here; that the values are
right is checked against each format's reference reader in test_plotfile.py, test_fst.py
and test_wds.py.
"""

import hashlib
import os
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

from conftest import REPO, Py, mount, plotfile_generator, wait_for
from test_engine import chunk_files, stats, vm_kib

SECONDS = float(os.environ.get("ZARRMOUNT_LOAD_SECONDS", "180"))
READERS, WRITERS = 16, 8
CACHE_MIB, MEMORY_MIB = 16, 128
MIB = 1 << 20

READER = """
import hashlib, os, random, time
rng = random.Random(seed)
reads, wrong, passes = 0, [], 0
while time.time() < deadline:
    rng.shuffle(files)
    for f in files:
        try:
            with open(os.path.join(root, f), "rb") as fh:
                got = hashlib.sha256(fh.read()).hexdigest()
        except OSError as e:
            got = e.errno
        reads += 1
        if got != expected[f] and len(wrong) < 10:
            wrong.append((f, got, expected[f]))
        if time.time() >= deadline:
            break
    else:
        passes += 1
result = (reads, passes, wrong)
"""

# Each round rewrites one of three arrays with data drawn from (writer, round); the last
# round of each array is what the store must hold in the end.
WRITER = """
import time, numpy as np, zarr
last = {}
rounds = 0
while time.time() < deadline:
    name = f"w{writer}/a{rounds % 3}"
    data = np.random.default_rng([writer, rounds]).standard_normal((256, 512)).astype("f4")
    a = zarr.create_array(f"{store}/{name}", shape=data.shape, chunks=(64, 128),
                          dtype=data.dtype, overwrite=True)
    for i in range(0, 256, 64):
        a[i:i + 64] = data[i:i + 64]
    last[name] = rounds
    rounds += 1
result = last
"""


def digest_or_errno(path: Path) -> str | int:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as e:
        return e.errno


def open_fds(pid: int) -> tuple[int, list[str]]:
    """The daemon's descriptors: how many are not O_DIRECT, and the files of those that are.

    A source file gets its O_DIRECT handle on its first read past the page cache and keeps
    it for the mount's life, so those may appear during a run, one per file at most."""
    plain, direct = 0, []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            flags = Path(f"/proc/{pid}/fdinfo/{fd}").read_text().split("flags:")[1].split()[0]
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except (OSError, IndexError):
            continue  # closed meanwhile
        if int(flags, 8) & os.O_DIRECT:
            direct.append(target)
        else:
            plain += 1
    return plain, sorted(direct)


@pytest.fixture(scope="module")
def large_plotfile(tmp_path_factory) -> Path:
    gen = plotfile_generator()
    gen.VARIANTS["large"] = gen._variant(
        geometry="3d-large", prob_lo=[0.0] * 3, prob_hi=[1.0] * 3, ngrow=1, nfiles=4
    )
    tree = tmp_path_factory.mktemp("load") / "generated"
    tree.mkdir()
    gen.write(gen.build("large"), tree)
    return tree


@pytest.mark.timeout(SECONDS + 300)
def test_readers_and_writers_for_minutes(large_plotfile):
    options = f"cache_size={CACHE_MIB}M,memory_limit={MEMORY_MIB}M,index_dir=none"
    sources = ["memory://scratch", REPO / "fixtures", large_plotfile]
    with mount(sources, options=options, watchdog=SECONDS + 310) as m:
        (pid,) = m.pids()
        root = m.path
        files = [
            str(p.relative_to(root))
            for tree in ("fixtures", "generated")
            for p in chunk_files(root / tree)
        ]
        expected = {f: digest_or_errno(root / f) for f in files}
        failing = sum(isinstance(v, int) for v in expected.values())
        assert len(files) > 1000 and failing < len(files) // 10, (len(files), failing)
        size = sum((root / f).stat().st_size for f in files)
        assert size > 4 * CACHE_MIB * MIB, "the cache must be far smaller than what is read"
        fds = open_fds(pid)

        deadline = time.time() + SECONDS
        store = str(m.path / "scratch")
        readers = [
            Py(READER, root=str(root), files=files, expected=expected, seed=k, deadline=deadline)
            for k in range(READERS)
        ]
        writers = [Py(WRITER, store=store, writer=w, deadline=deadline) for w in range(WRITERS)]
        results = [r.result(timeout=SECONDS + 120) for r in readers]
        written = [w.result(timeout=SECONDS + 120) for w in writers]

        wrong = [w for _, _, ws in results for w in ws]
        assert not wrong, f"reads that differ from the single reader: {wrong[:10]}"
        passes = [p for _, p, _ in results]
        assert min(passes) >= 1, f"every reader read every file at least once: {passes}"
        for w, last in enumerate(written):
            assert len(last) == 3, last
            for name, rounds in last.items():
                want = np.random.default_rng([w, rounds]).standard_normal((256, 512)).astype("f4")
                got = zarr.open_array(m.path / "scratch" / name, mode="r")[...]
                np.testing.assert_array_equal(got, want, err_msg=f"{name} round {rounds}")

        peak = vm_kib(pid, "VmHWM") * 1024
        bound = (CACHE_MIB + MEMORY_MIB + 64) * MIB
        assert peak <= bound, f"peak RSS {peak / MIB:.0f} MiB above {bound / MIB:.0f} MiB"
        plain, direct = open_fds(pid)
        assert plain == fds[0], os.listdir(f"/proc/{pid}/fd")
        assert len(direct) == len(set(direct)), f"O_DIRECT handles opened twice: {direct}"
        reads = sum(r for r, _, _ in results)
        rounds = sum(max(last.values()) + 1 for last in written)
        print(
            f"\nload: {READERS} readers x {SECONDS:.0f} s, {len(files)} chunk files "
            f"({size / MIB:.0f} MiB, {failing} EIO), {reads} reads, min {min(passes)} whole passes "
            f"each; {WRITERS} writers, {rounds} arrays written; peak RSS {peak / MIB:.0f} MiB of {bound / MIB:.0f} MiB; "
            f"{fds} fds before and after"
        )


def test_the_inode_table_shrinks_when_the_kernel_forgets():
    """Every name looked up holds an inode in the daemon until the kernel forgets it: after
    the kernel drops its dentries and inodes, the daemon's table is back to a handful, so a
    long-lived mount does not grow with the names it has served."""
    with mount(REPO / "fixtures", options="index_dir=none") as m:
        files = chunk_files(m.path)
        for f in files:
            f.stat()
        held = stats(m.path)["inodes"]
        assert held > len(files), held
        Path("/proc/sys/vm/drop_caches").write_text("2\n")  # dentries and inodes only
        assert wait_for(lambda: stats(m.path)["inodes"] < len(files) // 10, 10), stats(m.path)
        assert files[-1].read_bytes() == files[-1].read_bytes()  # looked up afresh, still there
