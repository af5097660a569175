"""Many users: `allow_other` (with the kernel checking modes), `uid=`, `gid=`, `umask=`, and
memory stores keeping their creators and the modes asked.

A second user is made with useradd for this module and removed afterwards; `nobody` stands
for everyone else. Their commands run in the system Python (stdlib only) under their ids.
"""

import json
import os
import pwd
import shutil
import subprocess
import textwrap

import pytest

from conftest import BIN, REPO, daemon_pids, mount, mountpoint, sh, wait_for

AMREX_FIXTURE = REPO / "fixtures" / "amrex" / "pf3d_v1_f64le"

PYTHON = "/usr/bin/python3"
NOBODY = pwd.getpwnam("nobody")


@pytest.fixture(scope="module")
def user():
    """A user made for these tests (no home, no login), deleted afterwards."""
    name = f"zmtest{os.getpid() % 100000}"
    with pytest.raises(KeyError):
        pwd.getpwnam(name)
    done = sh("useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name)
    assert done.returncode == 0, done.stderr
    try:
        yield pwd.getpwnam(name)
    finally:
        sh("userdel", name)
        with pytest.raises(KeyError):
            pwd.getpwnam(name)


def as_user(who, code: str, **scope):
    """Run `code` as `who` (a pwd entry) and return its `result` (JSON); OSErrors become
    {"errno": name}."""
    program = (
        textwrap.dedent(
            """
        import errno, json, os, stat, sys
        globals().update(json.loads(sys.argv[1]))
        def attempt(fn, *args):
            try:
                return fn(*args)
            except OSError as e:
                return {"errno": errno.errorcode[e.errno]}
        """
        )
        + textwrap.dedent(code)
        + "\nprint(json.dumps(result))\n"
    )
    done = subprocess.run(
        [PYTHON, "-c", program, json.dumps(scope)],
        user=who.pw_uid,
        group=who.pw_gid,
        extra_groups=[],
        cwd="/",
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def reachable(m) -> None:
    """Let other users through the mount's private parent directory (mkdtemp makes it 0700)."""
    os.chmod(m.path.parent, 0o755)


READ_TREE = """
result = {
    "list": attempt(lambda: sorted(os.listdir(path))),
    "meta": attempt(lambda: open(os.path.join(path, "zarr.json"), "rb").read().decode()),
}
"""

STAT = """
def info(p):
    s = os.stat(p)
    return [s.st_uid, s.st_gid, oct(stat.S_IMODE(s.st_mode))]
result = {n: attempt(info, path if n == "." else os.path.join(path, n)) for n in names}
"""


def test_allow_other_lets_another_user_read(user):
    with mount(AMREX_FIXTURE, options="ro,allow_other") as m:
        reachable(m)
        seen = as_user(user, READ_TREE, path=str(m.path))
        assert seen["list"] == sorted(os.listdir(m.path))
        assert seen["meta"] == (m.path / "zarr.json").read_text()
        with open("/proc/mounts") as f:
            opts = next(line for line in f if f" {m.path} " in line).split()[3]
        assert "default_permissions" in opts.split(","), opts


def test_without_allow_other_another_user_is_refused(user):
    with mount(AMREX_FIXTURE, options="ro") as m:
        reachable(m)
        seen = as_user(user, READ_TREE, path=str(m.path))
        assert seen == {"list": {"errno": "EACCES"}, "meta": {"errno": "EACCES"}}
        assert os.listdir(m.path)  # the mounting user (root) still reads


def test_uid_gid_umask_set_the_owner_and_modes_the_kernel_enforces(user):
    options = f"ro,allow_other,uid={user.pw_name},gid={user.pw_gid},umask=077"
    with mount(AMREX_FIXTURE, options=options) as m:
        reachable(m)
        names = [".", "zarr.json", "level_0", "level_0/zarr.json"]
        seen = as_user(user, STAT, path=str(m.path), names=names)
        assert seen["."] == seen["level_0"] == [user.pw_uid, user.pw_gid, "0o500"]
        assert seen["zarr.json"] == seen["level_0/zarr.json"] == [user.pw_uid, user.pw_gid, "0o400"]
        assert as_user(user, READ_TREE, path=str(m.path))["meta"].startswith("{")
        # Everyone else sees the root's owner and mode, and nothing below it.
        seen = as_user(NOBODY, STAT, path=str(m.path), names=names)
        assert seen["."] == [user.pw_uid, user.pw_gid, "0o500"]
        assert seen["zarr.json"] == seen["level_0"] == {"errno": "EACCES"}
        refused = as_user(NOBODY, READ_TREE, path=str(m.path))
        assert refused == {"list": {"errno": "EACCES"}, "meta": {"errno": "EACCES"}}

    with mount(AMREX_FIXTURE, options="ro,allow_other,umask=062") as m:  # others, not group
        reachable(m)
        seen = as_user(NOBODY, STAT, path=str(m.path), names=[".", "zarr.json"])
        assert seen["."][2] == "0o505" and seen["zarr.json"][2] == "0o404"
        assert as_user(NOBODY, READ_TREE, path=str(m.path))["meta"].startswith("{")


CREATE = """
os.umask(0o027)
os.mkdir(os.path.join(path, "mine"), 0o777)
fd = os.open(os.path.join(path, "mine", "secret"), os.O_CREAT | os.O_WRONLY, 0o600)
os.write(fd, b"only me")
os.close(fd)
fd = os.open(os.path.join(path, "shared"), os.O_CREAT | os.O_WRONLY, 0o664)
os.close(fd)
result = {
    "chown": attempt(os.chown, os.path.join(path, "shared"), 0, 0),
    "chmod": attempt(os.chmod, os.path.join(path, "shared"), 0o644),
}
"""

PEEK = """
result = {
    "secret": attempt(lambda: open(os.path.join(path, "mine", "secret")).read()),
    "list": attempt(os.listdir, os.path.join(path, "mine")),
    "shared": attempt(lambda: open(os.path.join(path, "shared")).read()),
    "write": attempt(lambda: open(os.path.join(path, "shared"), "w").close()),
    "mkdir": attempt(os.mkdir, os.path.join(path, new)),
}
"""


def test_memory_stores_keep_creators_and_the_modes_they_ask(user):
    with mount("memory://shared", options="allow_other,umask=000") as m:
        reachable(m)
        assert oct(os.stat(m.path).st_mode & 0o7777) == "0o777"
        made = as_user(user, CREATE, path=str(m.path))
        assert made == {"chown": {"errno": "EPERM"}, "chmod": None}
        for name, mode in [("mine", 0o750), ("mine/secret", 0o600), ("shared", 0o644)]:
            st = os.stat(m.path / name)
            assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (user.pw_uid, user.pw_gid, mode)
        assert as_user(user, PEEK, path=str(m.path), new="user's")["secret"] == "only me"
        other = as_user(NOBODY, PEEK, path=str(m.path), new="theirs")
        assert other["secret"] == {"errno": "EACCES"} and other["list"] == {"errno": "EACCES"}
        assert other["shared"] == "" and other["write"] == {"errno": "EACCES"}
        assert other["mkdir"] is None  # the store's root is 0777 with umask=000
        assert os.stat(m.path / "theirs").st_uid == NOBODY.pw_uid

    with mount("memory://private", options="allow_other") as m:  # root 0755, owned by root
        reachable(m)
        refused = as_user(
            user, "result = attempt(os.mkdir, os.path.join(path, 'd'))", path=str(m.path)
        )
        assert refused == {"errno": "EACCES"}


def test_write_refusals_keep_their_errno_for_other_users(user):
    with mount(AMREX_FIXTURE, options="allow_other,umask=0") as m:
        reachable(m)
        code = "result = attempt(os.mkdir, os.path.join(path, 'x'))"
        # No write bits on the read-only tree: the kernel says EACCES before asking zarrmount.
        assert as_user(user, code, path=str(m.path)) == {"errno": "EACCES"}
        assert os.stat(m.path).st_mode & 0o777 == 0o555


def test_a_user_mounts_through_fusermount3(user):
    """Not root: fusermount3 mounts. `make test` installs fuse3; /dev/fuse is opened to
    every user (as distributions ship it) for the test only, where this machine has 0600."""
    assert shutil.which("fusermount3"), "fusermount3 missing: `make test` installs fuse3"
    mode = os.stat("/dev/fuse").st_mode & 0o777
    os.chmod("/dev/fuse", 0o666)
    try:
        user_mounts(user)
    finally:
        os.chmod("/dev/fuse", mode)


def user_mounts(user):
    with mountpoint() as mnt:
        os.chmod(mnt.parent, 0o755)
        os.chown(mnt, user.pw_uid, user.pw_gid)
        binary = mnt.parent / "bin" / BIN.name  # a copy the user can reach
        binary.parent.mkdir()
        shutil.copy2(BIN, binary)
        os.chmod(binary.parent, 0o755)

        def run(*argv):
            return subprocess.run(
                [str(a) for a in argv],
                user=user.pw_uid,
                group=user.pw_gid,
                extra_groups=[],
                cwd="/",
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )

        done = run(binary, "memory://mine", mnt, "-o", "noexec")
        assert done.returncode == 0, done.stderr
        with open("/proc/mounts") as f:
            fields = next(line for line in f if f" {mnt} " in line).split()
        assert fields[0] == "memory://mine" and fields[2] == "fuse.zarrmount", fields
        assert f"user_id={user.pw_uid}" in fields[3] and "noexec" in fields[3], fields
        assert run("sh", "-c", f"echo hi > {mnt}/f && cat {mnt}/f").stdout == "hi\n"
        done = run("fusermount3", "-u", mnt)
        assert done.returncode == 0, done.stderr
        assert wait_for(lambda: not daemon_pids(mnt), 10)
