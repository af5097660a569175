"""mount(8), fstab and contrib/install: `mount -t fuse.zarrmount`, `mount -T FSTAB`, `umount`.

mount(8) runs helpers from /sbin only, so the tests that go through it install the helper
links there for the module (`helpers` fixture) and remove them afterwards, putting back any
that were there before. Everything else installs into a temporary DESTDIR.
"""

import contextlib
import ctypes
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import (
    BIN,
    MAX_PAGES_LIMIT,
    REPO,
    daemon_pids,
    max_pages_limit,
    mounted,
    mountpoint,
    mounts_under,
    sh,
    wait_for,
)

INSTALL = REPO / "contrib" / "install"
HELPERS = ("mount.fuse.zarrmount", "mount.zarrmount")
AMREX = REPO / "fixtures" / "amrex" / "pf3d_v1_f64le"
WDS = REPO / "fixtures" / "wds"


def sbin_dirs() -> list[Path]:
    """Where mount(8) looks for helpers: /sbin, and /usr/sbin where it is another directory."""
    dirs = [Path("/sbin")]
    if Path("/usr/sbin").resolve() != Path("/sbin").resolve():
        dirs.append(Path("/usr/sbin"))
    return dirs


def install(*args, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [INSTALL, *map(str, args)], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def helpers():
    """contrib/install with a temporary prefix, helper links in /sbin; undone afterwards."""
    saved = tempfile.mkdtemp(prefix="zarrmount-test-sbin-")
    prefix = Path(tempfile.mkdtemp(prefix="zarrmount-test-prefix-"))
    kept = []  # (path, link target or None, saved copy or None)
    for d in sbin_dirs():
        for name in HELPERS:
            path = d / name
            if path.is_symlink():
                kept.append((path, os.readlink(path), None))
            elif path.exists():
                copy = Path(saved) / f"{len(kept)}"
                shutil.copy2(path, copy)
                kept.append((path, None, copy))
    for path, _, _ in kept:
        path.unlink()
    try:
        done = install("--prefix", prefix, "--binary", BIN, "--no-sysctl")
        assert done.returncode == 0, done.stderr
        yield prefix
    finally:
        install("--prefix", prefix, "--uninstall")
        for d in sbin_dirs():
            for name in HELPERS:
                if (d / name).is_symlink() and os.readlink(d / name) == str(
                    prefix / "bin/zarrmount"
                ):
                    (d / name).unlink()
        for path, target, copy in kept:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            if target is not None:
                path.symlink_to(target)
            else:
                shutil.copy2(copy, path)
        shutil.rmtree(saved, ignore_errors=True)
        shutil.rmtree(prefix, ignore_errors=True)


def proc_mount(path) -> list[str] | None:
    """The /proc/mounts fields (source, target, type, options) of the mount at `path`."""
    with open("/proc/mounts") as f:
        for line in f:
            fields = [field.encode().decode("unicode_escape") for field in line.split()]
            if fields[1] == str(path):
                return fields[:4]
    return None


def group(path) -> dict:
    meta = json.loads((path / "zarr.json").read_bytes())
    assert (meta["zarr_format"], meta["node_type"]) == (3, "group")
    return meta


def assert_unmounts(mnt) -> None:
    done = sh("umount", mnt, timeout=10)
    assert done.returncode == 0, done.stderr
    assert not mounted(mnt)
    assert wait_for(lambda: not daemon_pids(mnt), 10), "the daemon outlived its mount"


# --- contrib/install --------------------------------------------------------------------


def test_install_into_destdir_is_idempotent_and_uninstalls(tmp_path):
    dest = tmp_path / "dest"
    for _ in range(2):
        done = install("--destdir", dest, "--prefix", "/opt/zm", "--binary", BIN)
        assert done.returncode == 0, done.stderr
    binary = dest / "opt/zm/bin/zarrmount"
    assert binary.read_bytes() == BIN.read_bytes() and os.access(binary, os.X_OK)
    for d in sbin_dirs():
        for name in HELPERS:
            assert os.readlink(dest / d.relative_to("/") / name) == "/opt/zm/bin/zarrmount"
    version = sh(binary, "--version")
    assert version.returncode == 0 and version.stdout.startswith(b"zarrmount ")
    conf = dest / "etc/sysctl.d/60-zarrmount.conf"
    assert "-fs.fuse.max_pages_limit = 1025" in conf.read_text().splitlines()

    (dest / "sbin" / "mount.zarrmount").unlink()
    (dest / "sbin" / "mount.zarrmount").symlink_to("/somewhere/else")  # not ours: kept
    for _ in range(2):
        done = install("--destdir", dest, "--prefix", "/opt/zm", "--uninstall")
        assert done.returncode == 0, done.stderr
    assert not binary.exists() and not conf.exists()
    assert not (dest / "sbin" / "mount.fuse.zarrmount").is_symlink()
    assert os.readlink(dest / "sbin" / "mount.zarrmount") == "/somewhere/else"
    assert "left" in done.stderr and "mount.zarrmount" in done.stderr


def test_install_raises_the_fuse_request_cap_unless_told_not_to(tmp_path):
    """Installed for real, the sysctl file goes to /etc/sysctl.d and the live cap is raised
    to what the default max_read needs; --no-sysctl does neither. Both are put back after."""
    conf = Path("/etc/sysctl.d/60-zarrmount.conf")
    saved = conf.read_bytes() if conf.exists() else None
    prefix, sbin = tmp_path / "prefix", tmp_path / "sbin"
    args = ("--prefix", prefix, "--sbindir", sbin, "--binary", BIN)
    try:
        conf.unlink(missing_ok=True)
        with max_pages_limit(256):
            done = install(*args, "--no-sysctl")
            assert done.returncode == 0, done.stderr
            assert MAX_PAGES_LIMIT.read_text().strip() == "256" and not conf.exists()
            done = install(*args)
            assert done.returncode == 0, done.stderr
            assert MAX_PAGES_LIMIT.read_text().strip() == "1025", done.stdout
        assert "-fs.fuse.max_pages_limit = 1025" in conf.read_text().splitlines()
        done = install("--prefix", prefix, "--sbindir", sbin, "--uninstall")
        assert done.returncode == 0 and not conf.exists(), done.stderr
    finally:
        if saved is None:
            conf.unlink(missing_ok=True)
        else:
            conf.write_bytes(saved)


def test_install_refuses_to_replace_a_file_and_bad_arguments(tmp_path):
    (tmp_path / "sbin").mkdir()
    (tmp_path / "sbin" / "mount.fuse.zarrmount").write_text("#!/bin/sh\n")
    done = install("--destdir", tmp_path, "--sbindir", "/sbin", "--binary", BIN)
    assert done.returncode != 0 and "is not a link" in done.stderr
    assert (tmp_path / "sbin" / "mount.fuse.zarrmount").read_text() == "#!/bin/sh\n"
    for args in (["--frobnicate"], ["--prefix", "relative"], ["--binary", tmp_path / "none"]):
        done = install("--destdir", tmp_path, *args)
        assert done.returncode != 0 and done.stderr.startswith("contrib/install: "), args


@pytest.mark.timeout(900)
def test_install_builds_with_cargo_without_a_binary(tmp_path):
    if shutil.which("cargo") is None:
        pytest.fail("cargo is not on PATH")
    # The target directory ZARRMOUNT_BIN was built in: cargo finds it up to date.
    env = dict(os.environ, CARGO_TARGET_DIR=str(BIN.resolve().parent.parent))
    done = subprocess.run(
        [INSTALL, "--destdir", tmp_path, "--sbindir", "/sbin"],
        capture_output=True,
        text=True,
        env=env,
        timeout=880,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert os.access(tmp_path / "usr/local/bin/zarrmount", os.X_OK)


# --- mount -t ---------------------------------------------------------------------------


def test_mount_t_mounts_a_fixture_and_umount_unmounts(helpers):
    with mountpoint() as mnt:
        options = "ro,allow_other,cache_size=64M,nofail,_netdev,noauto,frobnicate,x-systemd.idle"
        done = sh("mount", "-t", "fuse.zarrmount", AMREX, mnt, "-o", options)
        assert done.returncode == 0, done.stderr
        assert mounted(mnt)  # at once: the helper returns once the mount is live
        source, target, fstype, opts = proc_mount(mnt)
        assert (source, target, fstype) == (str(AMREX), str(mnt), "fuse.zarrmount")
        assert {"ro", "allow_other", "default_permissions"} <= set(opts.split(","))
        assert "level_0" in os.listdir(mnt) and "time" in group(mnt)["attributes"]
        [pid] = daemon_pids(mnt)
        assert Path(f"/proc/{pid}/exe").resolve() == helpers / "bin" / "zarrmount"
        assert_unmounts(mnt)


def test_mount_t_zarrmount_uses_the_short_helper(helpers):
    with mountpoint() as mnt:
        done = sh("mount", "-t", "zarrmount", "memory://scratch", mnt)
        assert done.returncode == 0, done.stderr
        (mnt / "note").write_text("hello")
        assert (mnt / "note").read_text() == "hello"
        assert proc_mount(mnt)[:3] == ["memory://scratch", str(mnt), "fuse.zarrmount"]
        assert_unmounts(mnt)


@pytest.mark.parametrize(
    "options, words",
    [
        ("cache_size=lots", ["cache_size", "lots"]),
        ("ro,uid=no-such-user-zm", ["uid", "no-such-user-zm", "user"]),
        ("umask=999", ["umask", "999", "octal"]),
        ("io=tape", ["io", "tape"]),
        ("log=", ["log", "needs a value"]),
    ],
)
def test_malformed_options_are_refused_with_a_clear_message(helpers, options, words):
    with mountpoint() as mnt:
        done = sh("mount", "-t", "fuse.zarrmount", "memory://scratch", mnt, "-o", options)
        assert done.returncode != 0
        err = done.stderr.decode()
        assert err.startswith("zarrmount: ") and all(w in err for w in words), err
        assert not mounted(mnt) and not daemon_pids(mnt)


def test_mount_failures_are_explained_on_stderr(helpers, tmp_path):
    with mountpoint() as mnt:
        missing = tmp_path / "no such run"
        done = sh("mount", "-t", "fuse.zarrmount", missing, mnt)
        assert done.returncode != 0 and str(missing) in done.stderr.decode()
        done = sh("mount", "-t", "fuse.zarrmount", "memory://x", mnt, "-o", f"log={tmp_path}/a/b")
        assert done.returncode != 0 and "cannot open log file" in done.stderr.decode()
        assert not mounted(mnt) and not daemon_pids(mnt)


def test_fake_mount_checks_but_does_not_mount(helpers):
    with mountpoint() as mnt:
        done = sh("mount", "-f", "-t", "fuse.zarrmount", "memory://scratch", mnt, "-o", "ro")
        assert done.returncode == 0, done.stderr
        assert not mounted(mnt) and not daemon_pids(mnt)
        done = sh("mount", "-f", "-t", "fuse.zarrmount", "memory://s", mnt, "-o", "umask=8")
        assert done.returncode != 0 and b"umask" in done.stderr


def test_helper_flags_from_mount_8(helpers):
    with mountpoint() as mnt:
        helper = "/sbin/mount.fuse.zarrmount"
        done = sh(helper, "memory://scratch", mnt, "-s", "-n", "-v", "-o", "rw,nofail")
        assert done.returncode == 0, done.stderr
        assert f"mounted on {mnt}" in done.stdout.decode()
        assert_unmounts(mnt)
        done = sh(helper, "memory://scratch")
        assert done.returncode != 0 and b"usage: mount.fuse.zarrmount" in done.stderr


# --- fstab ------------------------------------------------------------------------------


def fstab_escape(path) -> str:
    return str(path).replace("\\", "\\134").replace(" ", "\\040").replace("\t", "\\011")


def test_fstab_line_mounts_with_spaces_and_mount_a_sees_it_mounted(helpers, tmp_path):
    run = tmp_path / "run 42"
    shutil.copytree(AMREX, run)
    with mountpoint() as base:
        mnt = base / "run 42"
        mnt.mkdir()
        fstab = tmp_path / "fstab"
        options = "ro,allow_other,cache_size=2G,nofail,x-systemd.automount,_netdev,user"
        fstab.write_text(
            "# a throwaway fstab\n"
            f"{fstab_escape(run)} {fstab_escape(mnt)} fuse.zarrmount {options} 0 0\n"
        )
        done = sh("mount", "-T", fstab, mnt)
        assert done.returncode == 0, done.stderr
        assert proc_mount(mnt)[:3] == [str(run), str(mnt), "fuse.zarrmount"]
        assert "level_0" in os.listdir(mnt)
        again = sh("mount", "-a", "-v", "-T", fstab)  # already mounted: nothing to do
        assert again.returncode == 0, again.stderr
        assert b"already mounted" in again.stdout, again.stdout
        with open("/proc/mounts") as f:
            assert sum(f" {fstab_escape(mnt)} " in line for line in f) == 1
        assert_unmounts(mnt)


def test_fstab_brace_pattern_source_passes_through(helpers, tmp_path):
    pattern = f"wds://{WDS}/train-{{000000..000002}}.tar"
    with mountpoint() as mnt:
        fstab = tmp_path / "fstab"
        fstab.write_text(
            f"{pattern} {fstab_escape(mnt)} fuse.zarrmount ro,nofail,index_dir=none 0 0\n"
        )
        done = sh("mount", "-T", fstab, mnt)
        assert done.returncode == 0, done.stderr
        assert proc_mount(mnt)[0] == pattern
        assert "key" in os.listdir(mnt)
        assert len(group(mnt)["attributes"]["shards"]) == 3
        assert_unmounts(mnt)


def test_noauto_lines_are_left_to_an_explicit_mount(helpers, tmp_path):
    with mountpoint() as mnt:
        fstab = tmp_path / "fstab"
        fstab.write_text(f"memory://m {fstab_escape(mnt)} fuse.zarrmount noauto,rw 0 0\n")
        done = sh("mount", "-a", "-T", fstab)
        assert done.returncode == 0, done.stderr
        assert not mounted(mnt)
        done = sh("mount", "-T", fstab, mnt)
        assert done.returncode == 0, done.stderr
        assert mounted(mnt)
        assert_unmounts(mnt)


def test_contrib_examples_parse():
    listed = sh(
        "findmnt",
        "-s",
        "-n",
        "-r",
        "-o",
        "SOURCE,FSTYPE",
        "--tab-file",
        INSTALL.parent / "fstab.example",
    )
    assert listed.returncode == 0, listed.stderr
    rows = [line.split(" ") for line in listed.stdout.decode().splitlines()]
    assert len(rows) == 4 and all(fstype == "fuse.zarrmount" for _, fstype in rows), rows
    assert "wds:///data/train-{000000..000099}.tar" in [source for source, _ in rows]
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    units = [INSTALL.parent / f"mnt-run42.{kind}" for kind in ("mount", "automount")]
    escaped = sh("systemd-escape", "-p", "--suffix=mount", "/mnt/run42").stdout.decode().strip()
    assert units[0].name == escaped
    verified = sh("systemd-analyze", "verify", *units)
    assert verified.returncode == 0 and not verified.stderr.strip(), verified.stderr


def test_mounting_over_an_automount_point_does_not_trigger_it(helpers):
    """`x-systemd.automount`: systemd puts an autofs trigger on the mountpoint and, when it
    fires, runs mount(8) to mount on top of it. Anything that walked into the mountpoint on
    the way would wait for that same mount forever; here a trigger shows up on the pipe."""
    libc = ctypes.CDLL(None, use_errno=True)
    with mountpoint() as mnt:
        r, w = os.pipe()
        autofs = f"fd={w},pgrp={os.getpgrp()},minproto=5,maxproto=5,direct"
        done = subprocess.run(
            ["mount", "-t", "autofs", "-o", autofs, "systemd-1", mnt],
            pass_fds=(w,),
            capture_output=True,
            timeout=10,
            check=False,
        )
        os.close(w)
        assert done.returncode == 0, done.stderr
        try:
            # Its own session: processes in our group are the automounter, which autofs lets by.
            helper = subprocess.Popen(
                ["mount", "-t", "fuse.zarrmount", "memory://auto", mnt],
                start_new_session=True,
                stderr=subprocess.PIPE,
            )
            deadline = time.monotonic() + 20
            triggered = False
            while helper.poll() is None and time.monotonic() < deadline and not triggered:
                triggered = bool(select.select([r], [], [], 0.1)[0])
            if helper.poll() is None:
                os.killpg(helper.pid, signal.SIGKILL)
            assert not triggered, "mounting walked into the automount point"
            assert helper.wait(timeout=10) == 0, helper.stderr.read()
            with open("/proc/self/mountinfo") as f:
                stack = [line.split(" - ")[1].split()[0] for line in f if f" {mnt} " in line]
            assert stack == ["autofs", "fuse.zarrmount"]
            assert os.listdir(mnt) == ["zarr.json"]
            done = sh("umount", mnt, timeout=10)  # the top mount: ours
            assert done.returncode == 0, done.stderr
            assert proc_mount(mnt)[2] == "autofs"
            assert wait_for(lambda: not daemon_pids(mnt), 10)
        finally:
            if mounts_under(mnt) and proc_mount(mnt)[2] != "autofs":
                sh("umount", "-l", mnt, timeout=10)
            libc.umount2(str(mnt).encode(), 2)  # MNT_DETACH: umount(8) would trigger it
            os.close(r)


# --- logs -------------------------------------------------------------------------------


def test_a_background_daemon_logs_to_syslog(helpers):
    """Started by mount(8) without log=, the daemon sends its lines to /dev/log."""
    dev_log = Path("/dev/log")
    if dev_log.exists() or dev_log.is_symlink():
        pytest.skip("/dev/log belongs to a syslog daemon here; this test listens there itself")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        listener.bind(str(dev_log))
        listener.settimeout(10)
        with mountpoint() as mnt:
            done = sh("mount", "-t", "fuse.zarrmount", "memory://logged", mnt, "-o", "frobnicate")
            assert done.returncode == 0, done.stderr
            [pid] = daemon_pids(mnt)
            lines = []
            while not any(" mounted" in line for line in lines):
                lines.append(listener.recv(65536).decode())
            assert_unmounts(mnt)
            while not any("exiting" in line for line in lines):
                lines.append(listener.recv(65536).decode())
        ours = [line for line in lines if f" zarrmount[{pid}]: " in line]
        assert ours, lines
        # <daemon.warning> for the unknown option, <daemon.info> for the rest
        assert any(line.startswith("<28>") and "frobnicate" in line for line in ours), ours
        assert any(line.startswith("<30>") and "unmounted; exiting" in line for line in ours), ours
    finally:
        listener.close()
        dev_log.unlink(missing_ok=True)
