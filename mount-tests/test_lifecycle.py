"""Starting and stopping the daemon: background and foreground mode, umount, signals."""

import os
import signal
import subprocess

import pytest

from conftest import daemon_pids, mount, mounted, mountpoint, run_zarrmount, sh, wait_for

MODES = pytest.mark.parametrize("foreground", [False, True], ids=["background", "foreground"])


def test_background_mount_is_live_on_return():
    with mountpoint() as mnt:
        try:
            # pipes for its output: the command must return even though a daemon stays behind
            proc = run_zarrmount("memory://scratch", mnt)
        except subprocess.TimeoutExpired:
            pytest.fail(
                "zarrmount did not return: does the daemon keep the caller's stdout/stderr open?"
            )
        assert proc.returncode == 0, proc.stderr
        assert mounted(mnt)  # at once, no polling
        assert len(daemon_pids(mnt)) == 1
        assert os.listdir(mnt) == ["zarr.json"]


def stopped(m) -> bool:
    return not m.pids() and not mounted(m.path)


def assert_exits_cleanly(m, foreground: bool) -> None:
    assert wait_for(lambda: stopped(m), 10), (
        f"still running: pids {m.pids()}, mounted {mounted(m.path)}"
    )
    if foreground:
        assert m.proc.wait(timeout=10) == 0


@MODES
def test_external_umount_ends_daemon(foreground):
    with mount("memory://scratch", foreground=foreground) as m:
        assert len(m.pids()) == 1
        if foreground:
            assert m.proc.poll() is None  # -f stays attached
        umount = sh("umount", m.path, timeout=10)
        assert umount.returncode == 0, umount.stderr
        assert_exits_cleanly(m, foreground)


@MODES
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_unmounts(foreground, sig):
    with mount("memory://scratch", foreground=foreground) as m:
        (m.path / "f").write_bytes(b"busy")
        [pid] = m.pids()
        os.kill(pid, sig)
        assert_exits_cleanly(m, foreground)
