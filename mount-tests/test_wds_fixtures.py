"""fixtures/wds: the committed shards are what make_shards.py writes, and its references
(tarfile's members, webdataset's samples) describe those very files. No mount here: the
mount tests compare the mount with these references and with webdataset itself."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest

from conftest import REPO

WDS = REPO / "fixtures" / "wds"
SHARDS = sorted(p.name for p in WDS.glob("*.tar"))


def test_generator_rewrites_the_fixtures_byte_for_byte():
    """make_shards.py, run again with tarfile and webdataset, writes exactly the committed
    shards and references (into a temporary folder: --check never writes into fixtures/)."""
    done = subprocess.run(
        [sys.executable, WDS / "make_shards.py", "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and "byte-identical" in done.stdout, done.stdout + done.stderr


@pytest.mark.parametrize("name", SHARDS)
def test_reference_describes_the_shard(name):
    data = (WDS / name).read_bytes()
    ref = json.loads((WDS / "reference" / (name[: -len(".tar")] + ".json")).read_text("utf-8"))
    assert (ref["shard"], ref["size"], ref["sha256"]) == (
        name,
        len(data),
        hashlib.sha256(data).hexdigest(),
    )
    for sample in ref["webdataset"]["samples"]:
        for member in sample["members"].values():
            raw = data[member["offset_data"] : member["offset_data"] + member["size"]]
            assert hashlib.sha256(raw).hexdigest() == member["sha256"], member["name"]
