"""The mounted tree seen through ordinary tools, the CLI's options and errors, and `inspect`."""

import json
import os

import numpy as np
import pytest
import zarr

from conftest import (
    daemon_pids,
    mount,
    mount_points,
    mountpoint,
    mounts_under,
    run_py,
    run_zarrmount,
    sh,
)


def read_json(path) -> dict:
    return json.loads(path.read_bytes())


def write_t(scratch):
    """A small array `t` in the memory store, values 0..99."""
    t = zarr.create_array(scratch / "t", shape=(10, 10), chunks=(5, 5), dtype="i2")
    t[:] = np.arange(100, dtype="i2").reshape(10, 10)


def test_two_sources_layout(two_sources):
    assert sorted(os.listdir(two_sources)) == ["fixtures", "scratch", "zarr.json"]
    assert os.listdir(two_sources / "scratch") == ["zarr.json"]  # a fresh memory store
    for node in (two_sources, two_sources / "scratch", two_sources / "fixtures"):
        meta = read_json(node / "zarr.json")
        assert (meta["zarr_format"], meta["node_type"]) == (3, "group"), node


def test_single_memory_source_is_the_root(store):
    assert os.listdir(store) == ["zarr.json"]
    assert read_json(store / "zarr.json")["node_type"] == "group"
    # users may overwrite the store's zarr.json
    zarr.open_group(store, mode="a").attrs["title"] = "mine"
    attrs = run_py(
        "import zarr; result = dict(zarr.open_group(path, mode='r').attrs)", path=str(store)
    )
    assert attrs == {"title": "mine"}


def test_root_consolidated_metadata(two_sources):
    meta = read_json(two_sources / "zarr.json")
    assert (meta["zarr_format"], meta["node_type"]) == (3, "group")
    assert meta["consolidated_metadata"]["kind"] == "inline"
    nodes = meta["consolidated_metadata"]["metadata"]
    assert nodes["scratch"]["node_type"] == "group" and nodes["fixtures"]["node_type"] == "group"

    write_t(two_sources / "scratch")
    nodes = read_json(two_sources / "zarr.json")["consolidated_metadata"]["metadata"]
    assert "scratch/t" in nodes, f"root lists only {sorted(nodes)}"
    t = nodes["scratch/t"]
    assert (t["node_type"], t["shape"], t["data_type"]) == ("array", [10, 10], "int16")


def test_ls_du_stat_cat(two_sources):
    write_t(two_sources / "scratch")
    ls = sh("ls", "-R", two_sources)
    assert ls.returncode == 0, ls.stderr
    for d in ("", "/scratch", "/scratch/t", "/fixtures"):
        assert f"{two_sources}{d}:\n".encode() in ls.stdout
    du = sh("du", "-s", two_sources)
    assert du.returncode == 0, du.stderr
    assert int(du.stdout.split()[0]) >= 0

    files = [os.path.join(d, f) for d, _, names in os.walk(two_sources) for f in names]
    assert len(files) >= 8  # 4 zarr.json (root, scratch, t, fixtures) and t's 4 chunks
    for f in files:
        cat = sh("cat", f)
        assert cat.returncode == 0, cat.stderr
        assert os.stat(f).st_size == len(cat.stdout), f


@pytest.mark.parametrize(
    "options",
    [
        "rw,nofail,_netdev,noauto,x-systemd.automount,x-systemd.device-timeout=10s",
        "cache_size=64M,memory_limit=1G",
        "cache_size=4096,memory_limit=2g",
        "allow_other,debug",
    ],
)
def test_accepted_options(options):
    with mount("memory://scratch", options=options) as m:
        (m.path / "f").write_bytes(b"ok")
        assert (m.path / "f").read_bytes() == b"ok"


def assert_one_line_error(proc, *mentions):
    assert proc.returncode != 0, f"exit 0; stdout {proc.stdout!r}"
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, f"want a one-line error, got {proc.stderr!r}"
    assert any(m.lower() in lines[0].lower() for m in mentions), (
        f"{lines[0]!r} names none of {mentions}"
    )


@pytest.mark.parametrize(
    "sources, options, mentions",
    [
        pytest.param(["foo://x"], None, ["foo"], id="unknown-scheme"),
        pytest.param(["{tmp}/no-such-source"], None, ["no-such-source"], id="missing-source"),
        pytest.param(["memory://s"], "cache_size=abc", ["cache_size", "abc"], id="bad-cache-size"),
        pytest.param(["memory://s"], "memory_limit=8X", ["memory_limit", "8X"], id="bad-limit"),
    ],
)
def test_bad_arguments(tmp_path, sources, options, mentions):
    with mountpoint() as mnt:
        proc = run_zarrmount(*[s.format(tmp=tmp_path) for s in sources], mnt, options=options)
        assert_one_line_error(proc, *mentions)
        assert not mounts_under(mnt.parent) and not daemon_pids(mnt)


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_bad_mountpoint(kind):
    with mountpoint() as mnt:
        target = mnt / "absent"
        if kind == "file":
            target = mnt / "file"
            target.write_bytes(b"")
        proc = run_zarrmount("memory://s", target)
        assert_one_line_error(proc, str(target), target.name)
        assert not mounts_under(mnt.parent) and not daemon_pids(mnt)


def test_mountpoint_already_mounted():
    with mount("memory://first") as m:
        before = mount_points().count(str(m.path))
        proc = run_zarrmount("memory://second", m.path)
        assert_one_line_error(proc, str(m.path), "already", "mounted")
        assert before == 1 and mount_points().count(str(m.path)) == 1
        assert len(daemon_pids(m.path)) == 1
        assert os.listdir(m.path) == ["zarr.json"]  # still the first mount, still serving


def inspect_json(*sources) -> dict:
    proc = run_zarrmount("inspect", "--json", *sources)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_inspect_memory_store():
    tree = inspect_json("memory://x")
    assert (tree["path"], tree["node_type"], tree["children"]) == ("/", "group", [])
    assert isinstance(tree["attributes"], dict)


def test_inspect_two_sources(fixtures_dir):
    tree = inspect_json("memory://scratch", fixtures_dir)
    assert (tree["path"], tree["node_type"]) == ("/", "group")
    children = {c["path"].rstrip("/").rsplit("/", 1)[-1]: c for c in tree["children"]}
    assert sorted(children) == ["fixtures", "scratch"]
    assert all(c["node_type"] == "group" for c in children.values())

    text = run_zarrmount("inspect", "memory://scratch", fixtures_dir)
    assert text.returncode == 0, text.stderr
    assert "scratch" in text.stdout and "fixtures" in text.stdout
