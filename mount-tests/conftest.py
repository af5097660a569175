"""Shared helpers for the zarrmount mount tests.

Every mount made here is torn down however the test ends: `umount`, then `umount -l`,
then any daemon left for the mountpoint is killed. A FUSE mount whose daemon hangs hangs
every process that touches it, so this module never stats a mountpoint to learn whether
it is mounted (it reads /proc/mounts), and a watchdog kills a mount's daemon once a test
has outlived its timeout, so that a syscall stuck in the daemon returns and teardown runs.
"""

import contextlib
import errno
import importlib.util
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("ZARRMOUNT_BIN", REPO / "target" / "release" / "zarrmount"))
# librmn 19.5 and fstd2nc, for tests that compare with them: a venv of their own (numpy 1.x),
# made by `make venv-fst`; `make test` passes its interpreter here.
FST_PYTHON = Path(os.environ.get("ZARRMOUNT_FST_PYTHON", REPO / ".venv-fst" / "bin" / "python"))
TEST_TIMEOUT = 120  # seconds per test, enforced by pytest-timeout, unless --timeout says otherwise
MOUNT_WAIT = 20  # seconds for a mount to appear in /proc/mounts
TMP_PREFIX = "zarrmount-test-"
_bases: list[Path] = []  # every temporary mountpoint's parent made in this session
_watchdog: float | None = None  # seconds after which a mount's daemon is killed


def pytest_configure(config):
    global _watchdog
    timeout = config.getoption("timeout")
    timeout = TEST_TIMEOUT if timeout is None else timeout
    _watchdog = timeout + 10 if timeout else None


def pytest_collection_modifyitems(config, items):
    if config.getoption("timeout") is None:  # an explicit --timeout wins
        for item in items:
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(TEST_TIMEOUT))


@pytest.fixture(autouse=True, scope="session")
def _binary():
    if not os.access(BIN, os.X_OK):
        pytest.fail(
            f"no zarrmount binary at {BIN}: run `cargo build --release` or set ZARRMOUNT_BIN"
        )


@pytest.fixture(scope="session")
def fst_python() -> Path:
    """The interpreter with librmn (rpnpy) and fstd2nc (`make venv-fst`); a test needing it fails without it."""
    if not os.access(FST_PYTHON, os.X_OK):
        pytest.fail(f"no librmn/fstd2nc interpreter at {FST_PYTHON}: run `make venv-fst`")
    return FST_PYTHON


def pytest_sessionfinish(session):
    """Safety net: remove whatever a teardown could not."""
    for base in _bases:
        if base.exists():
            cleanup(base)


def plotfile_generator():
    """fixtures/amrex/make_plotfiles.py, imported without writing bytecode next to it."""
    path = REPO / "fixtures" / "amrex" / "make_plotfiles.py"
    spec = importlib.util.spec_from_file_location("make_plotfiles", path)
    module = importlib.util.module_from_spec(spec)
    keep, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no __pycache__ in fixtures/
    try:
        sys.modules[spec.name] = module  # dataclasses look their module up while executing it
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = keep
    return module


# --- mounts and daemons ----------------------------------------------------------------


def mount_points() -> list[str]:
    """Mountpoints listed in /proc/mounts (never touches the mounts themselves)."""
    with open("/proc/mounts") as f:
        return [_unescape(line.split()[1]) for line in f]


def _unescape(field: str) -> str:
    return field.encode().decode("unicode_escape")  # /proc/mounts writes ' ' as \040


def mounted(path) -> bool:
    return str(path) in mount_points()


def _under(path: str, base) -> bool:
    return path == str(base) or path.startswith(f"{base}/")


def mounts_under(path) -> list[str]:
    """Mountpoints at or below `path`; one mounted twice is listed twice."""
    return [m for m in mount_points() if _under(m, path)]


def daemon_pids(path) -> list[int]:
    """Live zarrmount processes with `path`, or a path below it, on their command line."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = [os.fsdecode(a) for a in (entry / "cmdline").read_bytes().split(b"\0")]
        except OSError:
            continue  # gone meanwhile; zombies have an empty cmdline
        if Path(argv[0]).name == BIN.name and any(_under(a, path) for a in argv[1:]):
            pids.append(int(entry.name))
    return pids


def wait_for(condition, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def kill_daemons(path, sig=signal.SIGTERM, grace: float = 5) -> None:
    """Send `sig` to the daemons serving `path`, then SIGKILL those alive after `grace`."""
    for s in (sig, signal.SIGKILL):
        for pid in daemon_pids(path):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, s)
        if wait_for(lambda: not daemon_pids(path), grace):
            return


def unmount(path) -> None:
    """Unmount everything at or below `path`: `umount`, falling back to `umount -l`."""
    for cmd in (["umount"], ["umount", "-l"], ["umount", "-l"]):
        for mnt in sorted(mounts_under(path), reverse=True):  # deepest first
            with contextlib.suppress(subprocess.TimeoutExpired):
                sh(*cmd, mnt, timeout=10)


def cleanup(base: Path) -> None:
    """Unmount everything below `base`, kill what is left of its daemons, remove it."""
    unmount(base)
    kill_daemons(base)
    unmount(base)  # a daemon may have mounted again meanwhile
    if not mounts_under(base):
        shutil.rmtree(base, ignore_errors=True)


MAX_PAGES_LIMIT = Path("/proc/sys/fs/fuse/max_pages_limit")


@contextlib.contextmanager
def max_pages_limit(pages: int):
    """The kernel's cap on the pages of one FUSE request (read when a file system mounts),
    set to `pages` inside and put back after."""
    before = MAX_PAGES_LIMIT.read_text()
    MAX_PAGES_LIMIT.write_text(str(pages))
    try:
        yield
    finally:
        MAX_PAGES_LIMIT.write_text(before)


@contextlib.contextmanager
def mountpoint():
    """A fresh empty directory; on exit, whatever got mounted there is removed."""
    base = Path(os.path.realpath(tempfile.mkdtemp(prefix=TMP_PREFIX)))
    _bases.append(base)
    mnt = base / "mnt"
    mnt.mkdir()
    try:
        yield mnt
    finally:
        cleanup(base)


def sh(*cmd, timeout: float = 30) -> subprocess.CompletedProcess:
    """Run a command, capturing its output as bytes."""
    return subprocess.run([str(c) for c in cmd], capture_output=True, timeout=timeout, check=False)


def zarrmount_argv(*args, options=None, foreground=False) -> list[str]:
    argv = [str(BIN)]
    if foreground:
        argv.append("-f")
    if options:
        argv += ["-o", options if isinstance(options, str) else ",".join(options)]
    return argv + [str(a) for a in args]


def run_zarrmount(*args, options=None, timeout: float = 30) -> subprocess.CompletedProcess:
    """Run zarrmount to completion (a failing mount, `inspect`, a background mount)."""
    return subprocess.run(
        zarrmount_argv(*args, options=options),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class Mount:
    path: Path  # the mountpoint
    proc: subprocess.Popen | None  # the daemon, when started in the foreground
    log: Path  # zarrmount's stdout and stderr

    def pids(self) -> list[int]:
        return daemon_pids(self.path)


@contextlib.contextmanager
def mount(sources, options=None, foreground=False, watchdog: float | None = None):
    """Mount `sources` (a list, or one source) on a temporary mountpoint and yield a Mount.

    Background mode runs `zarrmount` to completion; foreground mode keeps the `-f` daemon
    as `Mount.proc`. Either way the mount is live when this yields. `watchdog` overrides
    the seconds after which the daemon is killed, for a test with a longer timeout of its own.
    """
    watchdog_after = watchdog or _watchdog
    sources = [sources] if isinstance(sources, (str, os.PathLike)) else list(sources)
    with mountpoint() as mnt:
        log = mnt.parent / "zarrmount.log"
        argv = zarrmount_argv(*sources, mnt, options=options, foreground=foreground)
        # Once the test has timed out, killing the daemon makes a syscall stuck in it return.
        watchdog = threading.Timer(watchdog_after or 0, kill_daemons, (mnt, signal.SIGKILL, 0))
        watchdog.daemon = True
        proc = None
        try:
            with open(log, "wb") as out:
                # Output goes to a file, not a pipe: a daemon holding a pipe open would
                # block a reader here (test_lifecycle checks that it does not).
                if foreground:
                    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
                    wait_for(lambda: mounted(mnt) or proc.poll() is not None, MOUNT_WAIT)
                else:
                    code = subprocess.run(
                        argv,
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=out,
                        timeout=MOUNT_WAIT,
                        check=False,
                    ).returncode
                    assert code == 0, f"{' '.join(argv)} exited {code}: {log.read_text()}"
                    wait_for(lambda: mounted(mnt), MOUNT_WAIT)
            assert mounted(mnt), f"{' '.join(argv)} did not mount: {log.read_text()}"
            if watchdog_after:
                watchdog.start()
            yield Mount(mnt, proc, log)
        finally:
            watchdog.cancel()
            unmount(mnt)
            if proc is not None:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@pytest.fixture
def store():
    """The root of a mount of one memory store (the mount root is the store)."""
    with mount("memory://scratch") as m:
        yield m.path


@pytest.fixture
def fixtures_dir(tmp_path):
    """A plain directory source named `fixtures`, holding a file and a subdirectory."""
    d = tmp_path / "fixtures"
    (d / "sub").mkdir(parents=True)
    (d / "data.txt").write_text("do not touch\n")
    (d / "sub" / "more.bin").write_bytes(bytes(range(256)))
    return d


@pytest.fixture
def two_sources(fixtures_dir):
    """Mount memory://scratch and the `fixtures` directory: <mnt>/scratch, <mnt>/fixtures."""
    with mount(["memory://scratch", fixtures_dir]) as m:
        yield m.path


# --- Python in another process ---------------------------------------------------------

_CHILD = """
import pickle, sys
with open(sys.argv[1], "rb") as f:
    code, scope = pickle.load(f)
exec(compile(code, "<snippet>", "exec"), scope)
with open(sys.argv[2], "wb") as f:
    pickle.dump(scope.get("result"), f)
"""


class Py:
    """A Python snippet running in a fresh interpreter, with the keyword arguments as globals.

    `result()` waits for it and returns the (picklable) value it assigned to `result`.
    """

    def __init__(self, code: str, **scope):
        self._dir = tempfile.TemporaryDirectory(prefix=TMP_PREFIX + "py-")
        d = Path(self._dir.name)
        (d / "in.pkl").write_bytes(pickle.dumps((textwrap.dedent(code), scope)))
        self._out = d / "out.pkl"
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, d / "in.pkl", self._out],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def result(self, timeout: float = 60):
        try:
            _, err = self._proc.communicate(timeout=timeout)
            assert self._proc.returncode == 0, f"snippet exited {self._proc.returncode}:\n{err}"
            return pickle.loads(self._out.read_bytes())
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.communicate()
            raise AssertionError(f"snippet still running after {timeout} s") from None
        finally:
            self._dir.cleanup()


def run_py(code: str, timeout: float = 60, **scope):
    """Run a snippet in a fresh interpreter and return its `result`."""
    return Py(code, **scope).result(timeout)


# --- comparisons -----------------------------------------------------------------------


def assert_bits_equal(actual: np.ndarray, expected: np.ndarray, what: str = "array") -> None:
    """Same dtype, same shape and the same bits (so NaN payloads and -0.0 count)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    if expected.dtype.kind == "f":
        bits = f"u{expected.dtype.itemsize}"
        actual, expected = actual.view(bits), expected.view(bits)
    bad = np.flatnonzero(actual != expected)
    if bad.size:
        i = bad[0]
        raise AssertionError(
            f"{what}: {bad.size} of {expected.size} values differ, the first at flat index {i}: "
            f"{actual.flat[i]!r} != {expected.flat[i]!r}"
        )


def assert_errno(code: int, fn, *args) -> None:
    """`fn(*args)` must raise OSError with errno `code`."""
    call = f"{getattr(fn, '__qualname__', fn)}({', '.join(map(repr, map(str, args)))})"
    try:
        result = fn(*args)
    except OSError as e:
        assert e.errno == code, f"{call}: expected {errno.errorcode[code]}, got {e!r}"
    else:
        if hasattr(result, "close"):
            result.close()
        raise AssertionError(f"{call} succeeded; expected {errno.errorcode[code]}")
