"""Mirrored directories follow their source while mounted: datasets copied in appear, ones
still being written (`*.temp`, as AMReX names a plotfile until it is complete) do not,
removed ones disappear, replaced ones show their new content, and a reader holding a chunk
file open is not disturbed. Values are checked against each format's reference (librmn's
decoding for FST, the plotfile generator's composite, webdataset's keys).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

from conftest import REPO, assert_bits_equal, mount, plotfile_generator, wait_for
from fst_reference import FIXTURES as FST
from fst_reference import reference
from test_fst import check_records

# src/catalog/dir.rs RESCAN_AFTER: a directory is read again at most this often.
RESCAN = 1.0
WAIT = 10 * RESCAN

gen = plotfile_generator()
AMREX = REPO / "fixtures" / "amrex"
WDS = REPO / "fixtures" / "wds"

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def listed(mnt: Path) -> set[str]:
    return set(os.listdir(mnt)) - {"zarr.json"}


def consolidated(mnt: Path) -> set[str]:
    """Top-level names in the group document's consolidated metadata."""
    doc = json.loads((mnt / "zarr.json").read_text())
    return {k.split("/")[0] for k in doc["consolidated_metadata"]["metadata"]}


def shows(mnt: Path, want: set[str]) -> bool:
    return listed(mnt) == want and consolidated(mnt) == want


@pytest.fixture
def live(tmp_path):
    """A source directory holding levels.fst, mounted: (source, mountpoint)."""
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(FST / "levels.fst", src / "levels.fst")
    with mount(src) as m:
        yield src, m.path


def test_a_copied_file_appears_with_librmn_values(live):
    src, mnt = live
    assert shows(mnt, {"levels.fst"})
    shutil.copy(FST / "datyps.fst", src / "new.fst")
    assert wait_for(lambda: shows(mnt, {"levels.fst", "new.fst"}), WAIT), listed(mnt)
    check_records(mnt / "new.fst", reference("datyps.fst").data_records())


def test_a_plotfile_is_hidden_while_written_and_shown_once_renamed(live):
    src, mnt = live
    name = "pf3d_v1_f64le"
    shutil.copytree(AMREX / name, src / "plt00100.temp")
    time.sleep(2 * RESCAN)
    assert shows(mnt, {"levels.fst"}), "a *.temp plotfile is still being written"
    os.rename(src / "plt00100.temp", src / "plt00100")
    assert wait_for(lambda: shows(mnt, {"levels.fst", "plt00100"}), WAIT), listed(mnt)
    pf = gen.build(name)
    got = zarr.open_group(mnt / "plt00100" / "level_0", mode="r")["density"][...]
    assert_bits_equal(got, gen.composite(pf, 0, "density"), "density of the new plotfile")


def test_a_removed_file_disappears_but_an_open_chunk_file_still_reads(live):
    src, mnt = live
    chunk = next((mnt / "levels.fst" / "TT" / "c").rglob("*"))
    while chunk.is_dir():
        chunk = next(chunk.iterdir())
    whole = chunk.read_bytes()
    with open(chunk, "rb") as f:
        head = f.read(16)
        os.remove(src / "levels.fst")
        assert wait_for(lambda: shows(mnt, set()), WAIT), listed(mnt)
        rest = f.read()
    assert head + rest == whole, "a reader of the removed file was disturbed"
    assert not (mnt / "levels.fst").exists()


def test_a_replaced_file_shows_its_new_content(live):
    src, mnt = live
    before = (mnt / "levels.fst" / "zarr.json").read_text()
    staged = src / ".incoming"
    shutil.copy(FST / "datyps.fst", staged)
    os.replace(staged, src / "levels.fst")
    assert wait_for(lambda: (mnt / "levels.fst" / "zarr.json").read_text() != before, WAIT)
    check_records(mnt / "levels.fst", reference("datyps.fst").data_records())


def test_a_file_still_growing_is_read_again_when_complete(live):
    """A file copied in part shows what its directory reaches (records past the end are
    skipped, with reasons); once the copy is complete, every record is there."""
    src, mnt = live
    data = (FST / "datyps.fst").read_bytes()
    (src / "new.fst").write_bytes(data[: len(data) // 3])
    assert wait_for(lambda: shows(mnt, {"levels.fst", "new.fst"}), WAIT), listed(mnt)
    attributes = json.loads((mnt / "new.fst" / "zarr.json").read_text())["attributes"]
    assert attributes.get("skipped"), "records past the end of a partial file are listed"
    (src / "new.fst").write_bytes(data)

    def complete() -> bool:
        doc = json.loads((mnt / "new.fst" / "zarr.json").read_text())
        return "skipped" not in doc["attributes"]

    assert wait_for(complete, WAIT)
    check_records(mnt / "new.fst", reference("datyps.fst").data_records())


def test_a_new_shard_joins_its_shard_set(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(2):
        shutil.copy(WDS / f"train-00000{i}.tar", src)
    want = json.loads((WDS / "reference" / "train-set.json").read_text())["samples"]
    keys = [s["__key__"] for s in want]
    with mount(src, options=f"index_dir={tmp_path / 'index'}") as m:
        group = m.path / "train"
        first = zarr.open_group(group, mode="r")["key"][...]
        assert list(first) == keys[:4]
        shutil.copy(WDS / "train-000002.tar", src)
        assert wait_for(lambda: zarr.open_group(group, mode="r").attrs["n_samples"] == 6, WAIT)
        assert list(zarr.open_group(group, mode="r")["key"][...]) == keys
        got = zarr.open_group(group, mode="r")["index"][...]
        assert np.array_equal(got, np.arange(6)), got
