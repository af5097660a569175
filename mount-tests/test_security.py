"""Sources are never written, and nothing outside them is ever shown.

Write-like calls are made one by one on every kind of node a mount shows (the root joining
several sources, a directory source, a dataset group, an array, a zarr.json, a chunk file)
for each format: each must fail with EROFS, or with the errno the kernel gives before a file
system is asked (EISDIR for opening a directory to write, ENOTDIR for rmdir of a file,
EPERM for a hard link to a directory, EBUSY for the mountpoint itself); afterwards the
source tree is the same, byte for byte and time for time.

Names that lead out of a source are refused however they are spelled: symbolic links in a
directory source, `..`, absolute, symlink and hard-link members of a tar, plotfile headers
naming files outside the plotfile, and plotfile parts that are symbolic links leading out.
A file outside the sources holds a marker string; no file of the mount may contain it.
(Other users refused without `allow_other`: test_users.py.)
"""

import errno
import io
import json
import os
import secrets
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, mount
from test_posix import snapshot

FIXTURES = REPO / "fixtures"
EROFS, EISDIR, ENOTDIR, EPERM, EBUSY = (
    errno.EROFS,
    errno.EISDIR,
    errno.ENOTDIR,
    errno.EPERM,
    errno.EBUSY,
)


def errno_of(fn, *args) -> int | None:
    try:
        result = fn(*args)
    except OSError as e:
        return e.errno
    if isinstance(result, int) and fn is os.open:
        os.close(result)
    return None


def new_name(p: Path) -> Path:
    """A name that does not exist yet, inside `p` if it is a directory, else beside it."""
    return p / "new" if p.is_dir() else p.with_name(p.name + ".new")


# Each call: name -> (function of (node, a memory-store file), errno on a file, on a directory).
CALLS = {
    "open O_WRONLY": (lambda p, _: os.open(p, os.O_WRONLY), EROFS, EISDIR),
    "open O_RDWR": (lambda p, _: os.open(p, os.O_RDWR), EROFS, EISDIR),
    "open O_TRUNC": (lambda p, _: os.open(p, os.O_RDONLY | os.O_TRUNC), EROFS, EISDIR),
    "open O_APPEND": (lambda p, _: os.open(p, os.O_WRONLY | os.O_APPEND), EROFS, EISDIR),
    "create": (lambda p, _: os.open(new_name(p), os.O_CREAT | os.O_WRONLY, 0o644), EROFS, EROFS),
    "truncate": (lambda p, _: os.truncate(p, 0), EROFS, EISDIR),
    "chmod": (lambda p, _: os.chmod(p, 0o777), EROFS, EROFS),
    "chown": (lambda p, _: os.chown(p, 1, 1), EROFS, EROFS),
    "utime": (lambda p, _: os.utime(p, (0, 0)), EROFS, EROFS),
    "mkdir": (lambda p, _: os.mkdir(new_name(p)), EROFS, EROFS),
    "rmdir": (lambda p, _: os.rmdir(p), ENOTDIR, EROFS),
    "unlink": (lambda p, _: os.unlink(p), EROFS, EISDIR),
    "rename": (lambda p, _: os.rename(p, p.with_name(p.name + ".moved")), EROFS, EROFS),
    "rename over": (lambda p, mem: os.rename(mem, p), EROFS, EISDIR),
    "link": (lambda p, _: os.link(p, p.with_name(p.name + ".link")), EROFS, EPERM),
    "link into": (lambda p, mem: os.link(mem, new_name(p)), EROFS, EROFS),
    "symlink": (lambda p, _: os.symlink("/etc/passwd", new_name(p)), EROFS, EROFS),
    "mknod": (lambda p, _: os.mknod(new_name(p)), EROFS, EROFS),
    "mkfifo": (lambda p, _: os.mkfifo(new_name(p)), EROFS, EROFS),
    "setxattr": (lambda p, _: os.setxattr(p, "user.zarrmount", b"1"), EROFS, EROFS),
    "removexattr": (lambda p, _: os.removexattr(p, "user.zarrmount"), EROFS, EROFS),
}
# The kernel answers these at the mountpoint: it is busy, and names beside it (where "link"
# puts its new name, and where "rename over" finds its target's parent) are on another file
# system.
AT_ROOT = {"rmdir": EBUSY, "rename": EBUSY, "link": errno.EXDEV, "rename over": errno.EXDEV}


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """A directory source with one dataset of each format, and an FST file mounted alone."""
    d = tmp_path_factory.mktemp("sources")
    tree = d / "data"
    tree.mkdir()
    shutil.copytree(FIXTURES / "amrex" / "pf2d_v1_f32be", tree / "plt")
    shutil.copyfile(FIXTURES / "fst" / "levels.fst", tree / "levels.fst")
    shutil.copyfile(FIXTURES / "wds" / "train-000000.tar", tree / "train-000000.tar")
    shutil.copyfile(FIXTURES / "fst" / "datyps.fst", d / "alone.fst")
    return d


def first_chunk(array: Path) -> Path:
    return next(p for p in sorted((array / "c").rglob("*")) if p.is_file())


def test_every_write_like_call_is_refused_outside_memory_stores(sources):
    before = snapshot(sources)
    with mount(
        ["memory://scratch", sources / "data", sources / "alone.fst"],
        options="index_dir=none",
        foreground=True,
    ) as m:
        root = m.path
        memory_file = root / "scratch" / "victim"
        data = root / "data"
        nodes = {
            "root": root,
            "root zarr.json": root / "zarr.json",
            "directory source": data,
            "directory zarr.json": data / "zarr.json",
            "file source": root / "alone.fst",
        }
        for dataset, array in [
            ("plt", "level_0/density"),
            ("levels.fst", "TT"),
            ("train", "image.npy"),
        ]:
            group = data / dataset
            nodes[f"{dataset} group"] = group
            nodes[f"{dataset} array"] = group / array
            nodes[f"{dataset} array zarr.json"] = group / array / "zarr.json"
            nodes[f"{dataset} chunk"] = first_chunk(group / array)
        nodes["alone.fst chunk"] = first_chunk(root / "alone.fst" / "E32")
        wrong = []
        for node, path in nodes.items():
            is_dir = path.is_dir()
            for call, (fn, on_file, on_dir) in CALLS.items():
                memory_file.write_bytes(b"x")  # what "rename over" and "link into" move
                want = on_dir if is_dir else on_file
                if path == root:
                    want = AT_ROOT.get(call, want)
                got = errno_of(fn, path, memory_file)
                if got != want:
                    name = "success" if got is None else errno.errorcode[got]
                    wrong.append(f"{call} on {node}: {name}, expected {errno.errorcode[want]}")
        assert not wrong, "\n".join(wrong)
        assert m.proc.poll() is None and "panicked" not in m.log.read_text()
        # the memory store itself takes writes; calls it has no use for are refused alone
        assert memory_file.read_bytes() == b"x"
        assert errno_of(os.symlink, "x", root / "scratch" / "link") == EPERM
        assert errno_of(os.mkfifo, root / "scratch" / "fifo") == EPERM
        assert errno_of(os.setxattr, memory_file, "user.a", b"1") == errno.ENOTSUP
    assert snapshot(sources) == before


# --- nothing outside the sources -------------------------------------------------------------


@pytest.fixture
def secret(tmp_path) -> tuple[Path, bytes]:
    """A file outside every source, holding a marker nothing in a mount may contain."""
    marker = f"OUTSIDE-{secrets.token_hex(8)}".encode()
    outside = tmp_path / "outside"
    outside.mkdir()
    path = outside / "secret.txt"
    path.write_bytes(marker * 64)
    return path, marker


def every_byte(root: Path) -> tuple[bytes, list[str]]:
    """The bytes of every file the mount shows (EIO files count as empty), and every name."""
    data, names = [], []
    for dirpath, dirnames, filenames in os.walk(root):
        names += dirnames + filenames
        for f in filenames:
            try:
                data.append(Path(dirpath, f).read_bytes())
            except OSError as e:
                assert e.errno == errno.EIO, e
    return b"".join(data), names


def skipped(path: Path) -> list[dict]:
    return json.loads((path / "zarr.json").read_bytes())["attributes"].get("skipped", [])


def test_symbolic_links_out_of_a_directory_source_are_not_shown(tmp_path, secret):
    secret_file, marker = secret
    outside_fst = secret_file.parent / "secret.fst"
    shutil.copyfile(FIXTURES / "fst" / "datyps.fst", outside_fst)
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    shutil.copyfile(FIXTURES / "fst" / "levels.fst", src / "levels.fst")
    links = {
        src / "absolute.fst": outside_fst,
        src / "outside_dir": secret_file.parent,
        src / "sub" / "relative.fst": Path("../../outside/secret.fst"),
        src / "chain.fst": src / "sub" / "relative.fst",
        src / "secret.txt": secret_file,
        src / "loop.fst": src / "loop.fst",
    }
    for link, target in links.items():
        link.symlink_to(target)
    (src / "inside.fst").symlink_to("levels.fst")  # stays inside: shown
    with mount(src, foreground=True) as m:
        assert sorted(os.listdir(m.path)) == ["inside.fst", "levels.fst", "sub", "zarr.json"]
        assert os.listdir(m.path / "sub") == ["zarr.json"]
        reasons = {Path(s["path"]).name: s["reason"] for s in skipped(m.path)}
        for name in ("absolute.fst", "outside_dir", "chain.fst", "secret.txt"):
            assert "outside the source directory" in reasons.get(name, ""), (name, reasons)
        sub = {Path(s["path"]).name: s["reason"] for s in skipped(m.path / "sub")}
        assert "outside the source directory" in sub.get("relative.fst", ""), sub
        data, names = every_byte(m.path)
        assert marker not in data
        assert not {"absolute.fst", "outside_dir", "chain.fst", "secret.txt"} & set(names)
        assert m.proc.poll() is None


def npy_bytes(value) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(value))
    return buf.getvalue()


def test_tar_members_never_lead_outside(tmp_path, secret):
    """Members named with `..` or an absolute path, and symbolic or hard links to the secret,
    in a shard: their samples are skipped and listed, and the secret shows nowhere."""
    secret_file, marker = secret
    shard = tmp_path / "src" / "evil-000000.tar"
    shard.parent.mkdir()
    with tarfile.open(shard, "w", format=tarfile.PAX_FORMAT) as tar:

        def add(name, data=b"", kind=tarfile.REGTYPE, linkname=""):
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.size = kind, linkname, len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)

        add("000000.npy", npy_bytes([1.0, 2.0]))
        add("../000001.npy", npy_bytes([3.0, 4.0]))
        add(f"{secret_file.parent}/000002.npy", npy_bytes([5.0, 6.0]))
        add("000003.npy", kind=tarfile.SYMTYPE, linkname=str(secret_file))
        add("000004.npy", kind=tarfile.SYMTYPE, linkname="../outside/secret.txt")
        add("000005.npy", kind=tarfile.LNKTYPE, linkname=str(secret_file))
        add("000006.txt", kind=tarfile.SYMTYPE, linkname=str(secret_file))
        add("000007.npy", npy_bytes([7.0, 8.0]))
    with mount(f"wds://{shard}", options="index_dir=none", foreground=True) as m:
        data, _ = every_byte(m.path)
        assert marker not in data
        reasons = " ".join(json.dumps(s) for s in skipped(m.path))
        for name in ("../000001", "000002"):
            assert name in reasons, reasons
        assert m.proc.poll() is None


def _fab_outside(pf: Path, outside: Path) -> None:
    """Cell_H names a data file two levels up, outside the plotfile."""
    shutil.copyfile(pf / "Level_0" / "Cell_D_00000", outside / "Cell_D_00000")
    cell_h = pf / "Level_0" / "Cell_H"
    cell_h.write_text(
        cell_h.read_text().replace(
            "FabOnDisk: Cell_D_00000", "FabOnDisk: ../../outside/Cell_D_00000"
        )
    )


def _data_file_link(pf: Path, outside: Path) -> None:
    """A data file that is a symbolic link to a file outside (here a real copy of it)."""
    shutil.move(pf / "Level_0" / "Cell_D_00000", outside / "Cell_D_00000")
    (pf / "Level_0" / "Cell_D_00000").symlink_to(outside / "Cell_D_00000")


def _level_link(pf: Path, outside: Path) -> None:
    """A whole level directory that is a symbolic link out of the plotfile."""
    shutil.move(pf / "Level_1", outside / "Level_1")
    (pf / "Level_1").symlink_to(outside / "Level_1")


def _particle_link(pf: Path, outside: Path) -> None:
    data = next((pf / "particle0").rglob("DATA_*"))
    shutil.move(data, outside / data.name)
    data.symlink_to(outside / data.name)


@pytest.mark.parametrize(
    "damage",
    [_fab_outside, _data_file_link, _level_link, _particle_link],
    ids=lambda f: f.__name__[1:],
)
def test_plotfile_parts_never_lead_outside(tmp_path, damage):
    """A plotfile whose headers or links reach a file outside it is left out with the reason
    (a particle species alone, for particle data); the outside bytes are never served."""
    name = "pf3d_v1_f64le"
    src = tmp_path / "src"
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copytree(FIXTURES / "amrex" / name, src / name)
    damage(src / name, outside)
    marked = {p: p.read_bytes() for p in outside.rglob("*") if p.is_file()}
    with mount(src, foreground=True) as m:
        if damage is _particle_link:
            reasons = skipped(m.path / name)
            assert any("outside the plotfile" in s.get("reason", "") for s in reasons), reasons
            assert not (m.path / name / "particles" / "particle0").exists()
        else:
            assert os.listdir(m.path) == ["zarr.json"]
            reasons = skipped(m.path)
            assert len(reasons) == 1 and "outside the plotfile" in reasons[0]["reason"], reasons
        data, _ = every_byte(m.path)
        for path, content in marked.items():
            piece = content[len(content) // 2 : len(content) // 2 + 64]
            assert len(piece) == 64 and piece not in data, f"bytes of {path} are served"
        assert m.proc.poll() is None
