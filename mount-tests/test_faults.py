"""Faults: the daemon killed mid-read, stopped under load, and readers killed mid-read.

- SIGKILL while readers read: the readers get ECONNABORTED or ENOTCONN at once (nothing hangs), the dead
  mount stays listed until `umount -l` clears it (the README says so), and a fresh mount on
  the same mountpoint serves the generator's values.
- SIGTERM while 4 readers read: the daemon unmounts (detaching a busy mount) and exits
  within 10 s; every reader ends.
- Readers SIGKILLed in the middle of reads of chunks gathered through the cache: no fetch
  stays in flight (`zarrmount stats`: nothing reserved, nothing queued), and every chunk
  reads whole afterwards with the values the generator wrote.
"""

import errno
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import zarr

from conftest import REPO, mount, mounted, plotfile_generator, run_zarrmount, sh, wait_for
from test_engine import chunk_files, stats

pytestmark = pytest.mark.filterwarnings("ignore:Consolidated metadata:UserWarning")

gen = plotfile_generator()
PLOTFILE = "pf3d_v2_f32le"

# Reads the files named on stdin, round after round, until a read fails; prints the errno.
READER = """
import os, sys
files = sys.stdin.read().split()
print("started", flush=True)
while True:
    for f in files:
        try:
            with open(f, "rb") as fh:
                fh.read()
        except OSError as e:
            print(e.errno, flush=True)
            sys.exit(0)
"""


def start_readers(files, n: int) -> list[subprocess.Popen]:
    procs = []
    for _ in range(n):
        p = subprocess.Popen(
            [sys.executable, "-c", READER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        p.stdin.write("\n".join(map(str, files)))
        p.stdin.close()
        assert p.stdout.readline().strip() == "started"
        procs.append(p)
    return procs


def reader_errnos(procs, timeout: float = 10) -> list[int]:
    """Each reader's errno, once it ended; a reader still running after `timeout` fails."""
    out = []
    for p in procs:
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise AssertionError("a reader hangs") from None
        out.append(int(p.stdout.read().split()[-1]))
    return out


def check_values(level_dir) -> None:
    pf = gen.build(PLOTFILE)
    group = zarr.open_group(level_dir, mode="r")
    for f in pf.fields:
        want = gen.composite(pf, 0, f)
        np.testing.assert_array_equal(group[f][...], want, err_msg=f)


def test_sigkill_mid_read_then_umount_lazy_and_a_fresh_mount(tmp_path):
    source = REPO / "fixtures" / "amrex" / PLOTFILE
    with mount(source) as m:
        (pid,) = m.pids()
        readers = start_readers(chunk_files(m.path), 4)
        time.sleep(0.5)
        os.kill(pid, signal.SIGKILL)
        # a request the daemon had taken is aborted; later ones find no connection
        assert set(reader_errnos(readers)) <= {errno.ECONNABORTED, errno.ENOTCONN}
        assert wait_for(lambda: not m.pids(), 10)
        assert mounted(m.path), "a dead FUSE mount stays until it is unmounted"
        with pytest.raises(OSError) as dead:
            os.listdir(m.path)
        assert dead.value.errno == errno.ENOTCONN
        done = sh("umount", "-l", m.path, timeout=10)
        assert done.returncode == 0 and not mounted(m.path), done.stderr
        again = run_zarrmount(source, m.path)
        assert again.returncode == 0, again.stderr
        check_values(m.path / "level_0")


def test_sigterm_under_load_unmounts_cleanly():
    with mount(REPO / "fixtures") as m:
        (pid,) = m.pids()
        readers = start_readers(chunk_files(m.path / "amrex"), 4)
        time.sleep(1)
        os.kill(pid, signal.SIGTERM)
        assert wait_for(lambda: not m.pids() and not mounted(m.path), 10), (
            f"still running: pids {m.pids()}, mounted {mounted(m.path)}"
        )
        # what a reader sees depends on when: the daemon's refusal, or the empty directory
        assert set(reader_errnos(readers)) <= {errno.ENOTCONN, errno.ENOENT, errno.EIO}


def test_killed_readers_leave_no_fetch_in_flight(tmp_path):
    """A plotfile with ghost cells, so every chunk is gathered into the cache by a fetch the
    reader waits for; readers are killed at staggered moments in the middle of those reads."""
    gen.VARIANTS["faults_large"] = gen._variant(
        geometry="3d-large", prob_lo=[0.0] * 3, prob_hi=[1.0] * 3, ngrow=1, nfiles=4
    )
    pf = gen.build("faults_large")
    source = gen.write(pf, tmp_path)
    with mount(source, options="cache_size=16M") as m:
        level = m.path / "level_0"
        files = chunk_files(level)
        for k in range(8):
            (reader,) = start_readers(files[k * 7 :] + files[: k * 7], 1)
            time.sleep(0.05 + 0.1 * k)
            reader.kill()
            reader.wait()

        def settled():
            s = stats(m.path)
            return s["cache_reserved"] == 0 and s["queue_depth"] == 0

        assert wait_for(settled, 10), stats(m.path)
        assert stats(m.path)["cache_misses"] > 0, "the readers were killed before reading"
        for f in pf.fields:
            want = gen.composite(pf, 0, f)
            np.testing.assert_array_equal(zarr.open_array(level / f, mode="r")[...], want, f)
