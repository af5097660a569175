"""The read path seen from outside: both I/O engines give the same bytes, and
`zarrmount stats` reports what the daemon did without going through the mount."""

import hashlib
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from conftest import (
    MAX_PAGES_LIMIT,
    REPO,
    max_pages_limit,
    mount,
    plotfile_generator,
    run_zarrmount,
)

FIXTURES = REPO / "fixtures"


def chunk_files(root: Path) -> list[Path]:
    """Every chunk file under `root` (files below a `c/` directory of an array)."""
    out = []
    for dirpath, _dirs, files in os.walk(root):
        if f"{os.sep}c{os.sep}" in f"{dirpath}{os.sep}" or dirpath.endswith(f"{os.sep}c"):
            out += [Path(dirpath) / f for f in files]
    return sorted(out)


def digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in chunk_files(root)
    }


def stats(mnt: Path) -> dict:
    done = run_zarrmount("stats", "--json", mnt)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_pread_and_io_uring_serve_identical_chunks():
    with mount(FIXTURES, options="io=pread") as a:
        by_pread = digests(a.path)
        assert stats(a.path)["io_engine"] == "pread"
    with mount(FIXTURES, options="io=uring") as b:
        by_uring = digests(b.path)
        # io_uring is enabled on the machines this runs on; elsewhere it falls back to pread.
        assert stats(b.path)["io_engine"] == "io_uring"
    assert len(by_pread) > 100, "the fixtures' chunk files were found"
    assert by_pread == by_uring


def test_stats_count_what_was_read():
    with mount(FIXTURES / "amrex" / "pf3d_v1_f64le", options="prefetch=off") as m:
        before = stats(m.path)
        files = chunk_files(m.path / "level_0" / "density")
        total = sum(len(p.read_bytes()) for p in files)
        after = stats(m.path)
        assert len(files) == 8
        assert after["bytes_served"] - before["bytes_served"] == total
        assert after["chunk_reads"] - before["chunk_reads"] >= len(files)
        # Box-sized chunks are byte ranges: read straight from the source, not cached.
        assert after["direct_reads"] - before["direct_reads"] >= len(files)
        assert after["bytes_read"] - before["bytes_read"] >= total
        assert after["queue_depth"] == 0
        assert after["mountpoint"] == str(m.path)
        assert after["prefetch"] is False
        assert after["prefetch_issued"] == 0


def test_stats_of_something_not_mounted_fails_clearly(tmp_path):
    done = run_zarrmount("stats", tmp_path)
    assert done.returncode != 0
    assert "no zarrmount daemon serves" in done.stderr


# --- prefetch, single flight, the memory bound -------------------------------------------

MIB = 1 << 20


def raw_file(tmp_path: Path, mib: int) -> tuple[Path, bytes]:
    """A file of `mib` MiB of random bytes (raw:// serves it in 1 MiB chunks)."""
    data = np.random.default_rng(mib).integers(0, 256, mib * MIB, dtype=np.uint8).tobytes()
    path = tmp_path / f"random_{mib}m.bin"
    path.write_bytes(data)
    return path, data


def drop_page_cache(root: Path, start: int = 0) -> None:
    """Writes back every file at or under `root` (dirty pages stay) and drops its pages from
    `start` on from the page cache."""
    walk = [(root.parent, [], [root.name])] if root.is_file() else os.walk(root)
    for dirpath, _dirs, files in walk:
        for name in files:
            fd = os.open(Path(dirpath) / name, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, start, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def test_prefetch_turns_a_sequential_scan_into_hits(tmp_path):
    path, data = raw_file(tmp_path, 48)
    drop_page_cache(path)  # what the page cache holds is served from it, not read ahead
    with mount(f"raw://{path}", options="cache_size=256M") as m:
        chunks = m.path / "bytes" / "c"
        for i in range(48):
            got = (chunks / str(i)).read_bytes()
            assert got == data[i * MIB : (i + 1) * MIB], f"chunk {i}"
        s = stats(m.path)
        assert s["prefetch"] is True
        # After the first reads show the pattern, the rest were fetched ahead and served
        # from the cache (or joined a fetch in flight): few reads went straight to the disk.
        assert s["prefetch_issued"] >= 40, s
        assert s["prefetch_used"] >= 40, s
        assert s["direct_reads"] <= 6, s
        assert s["bytes_served"] == len(data)


def test_prefetch_follows_zarr_python_reading_chunks_out_of_order(tmp_path):
    """zarr-python reads ten chunks of a call at once, so they reach the daemon shuffled:
    the prefetcher still reads ahead, and no chunk is read from the source twice."""
    import zarr

    path, data = raw_file(tmp_path, 384)
    drop_page_cache(path)
    with mount(f"raw://{path}", options="cache_size=256M") as m:
        got = zarr.open_array(m.path / "bytes", mode="r")[...]
        assert got.tobytes() == data
        s = stats(m.path)
        assert s["prefetch_used"] >= 360, s
        assert s["direct_reads"] <= 24, s
        assert s["bytes_read"] <= len(data) + 8 * MIB, s


def test_a_source_the_page_cache_holds_is_served_from_it_not_read_ahead(tmp_path):
    """Chunks of a warm source are mapped from the page cache into the replies: nothing is
    fetched ahead or copied into the chunk cache. Once part of it is dropped, read-ahead
    covers that part again."""
    path, data = raw_file(tmp_path, 48)
    with open(path, "rb") as f:
        assert f.read() == data  # every page cached
    with mount(f"raw://{path}", options="cache_size=256M") as m:
        chunks = m.path / "bytes" / "c"
        for i in range(24):
            assert (chunks / str(i)).read_bytes() == data[i * MIB : (i + 1) * MIB], f"chunk {i}"
        s = stats(m.path)
        assert s["prefetch_issued"] == 0, s
        assert s["mapped_bytes"] == 24 * MIB, s
        assert s["cache_used"] == 0 and s["direct_reads"] >= 24, s
        drop_page_cache(path, start=24 * MIB)
        for i in range(24, 48):
            assert (chunks / str(i)).read_bytes() == data[i * MIB : (i + 1) * MIB], f"chunk {i}"
        s = stats(m.path)
        assert s["prefetch_used"] >= 16, s
        assert s["bytes_served"] == len(data), s


def chance_runs(order: list[int]) -> bool:
    at = {c: i for i, c in enumerate(order)}
    return any(at[c] < at.get(c + 1, -1) < at.get(c + 2, -1) for c in order)


def test_prefetch_reads_nothing_ahead_of_a_random_pattern(tmp_path):
    path, data = raw_file(tmp_path, 48)
    rng = np.random.default_rng(7)
    # A shuffled order in which no three consecutive chunks are ever read in increasing
    # order, however far apart: nothing a reader's scan could be mistaken for.
    order = [int(i) for i in rng.permutation(48)]
    while chance_runs(order):
        order = [int(i) for i in rng.permutation(48)]
    with mount(f"raw://{path}") as m:
        for i in order:
            got = (m.path / "bytes" / "c" / str(i)).read_bytes()
            assert got == data[i * MIB : (i + 1) * MIB], f"chunk {i}"
        s = stats(m.path)
        assert s["prefetch_issued"] == 0, s
        assert s["direct_reads"] >= 48, s


def burst(paths: list[Path], readers: int) -> list[list[str]]:
    """`readers` threads that start together and each read every file in `paths`."""
    barrier = threading.Barrier(readers)

    def read_all(_):
        barrier.wait()
        return [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]

    with ThreadPoolExecutor(readers) as pool:
        return list(pool.map(read_all, range(readers)))


def test_a_burst_of_readers_fetches_each_chunk_once():
    # Ghost cells make every chunk of this plotfile a gathered one, fetched into the cache.
    with mount(FIXTURES / "amrex" / "pf3d_ngrow1", options="prefetch=off") as m:
        files = chunk_files(m.path / "level_0" / "density")
        before = stats(m.path)
        results = burst(files, 16)
        after = stats(m.path)
        assert all(r == results[0] for r in results)
        delta = {
            k: after[k] - before[k] for k in ("cache_misses", "cache_coalesced", "direct_reads")
        }
        assert delta["direct_reads"] == 0
        assert delta["cache_misses"] == len(files), delta
        # The other 15 readers of each chunk either waited for its one fetch, hit the cache,
        # or, once one had read it whole, read it through the kernel's page cache (see
        # test_page_cache.py) without asking the daemon.
        hits = after["cache_hits"] - before["cache_hits"]
        sizes = [f.stat().st_size for f in files]
        unserved = 16 * sum(sizes) - (after["bytes_served"] - before["bytes_served"])
        from_pages = round(unserved / (sum(sizes) / len(sizes)))
        shared = delta["cache_coalesced"] + hits + from_pages
        assert shared >= 15 * len(files), (delta, hits, from_pages)
    # And the bytes are the ones a mount without any sharing gives.
    with mount(FIXTURES / "amrex" / "pf3d_ngrow1", options="prefetch=off,io=pread") as m:
        alone = [
            hashlib.sha256(p.read_bytes()).hexdigest()
            for p in chunk_files(m.path / "level_0" / "density")
        ]
    assert results[0] == alone


def vm_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


@pytest.mark.timeout(300)
def test_sixteen_readers_stay_within_the_memory_bound(tmp_path):
    """A plotfile whose chunks are all gathered (ghost cells), 4x the cache, read by 16 readers
    at once (half in C order, so prefetch runs; half at random): every value right, and the
    daemon's peak RSS within cache_size + 64 MiB."""
    gen = plotfile_generator()
    gen.VARIANTS["pf3d_large_ngrow1"] = gen._variant(
        geometry="3d-large", prob_lo=[0.0] * 3, prob_hi=[1.0] * 3, ngrow=1, nfiles=4
    )
    pf = gen.build("pf3d_large_ngrow1")
    source = gen.write(pf, tmp_path)
    fields = {f: gen.composite(pf, 0, f).astype("<f8") for f in gen.FIELDS}
    cache_mib = 20
    assert sum(v.nbytes for v in fields.values()) >= 4 * cache_mib * MIB
    with mount(source, options=f"cache_size={cache_mib}M") as m:
        (pid,) = m.pids()
        chunk = json.loads((m.path / "level_0" / "density" / "zarr.json").read_text())
        cz, cy, cx = chunk["chunk_grid"]["configuration"]["chunk_shape"]
        grid = [(n + c - 1) // c for n, c in zip(fields["density"].shape, (cz, cy, cx))]
        coords = [(z, y, x) for z in range(grid[0]) for y in range(grid[1]) for x in range(grid[2])]
        work = [(f, c) for f in fields for c in coords]

        def reader(k: int) -> list:
            order = work[k * 7 :] + work[: k * 7]
            if k % 2:
                order = [work[int(i)] for i in np.random.default_rng(k).permutation(len(work))]
            wrong = []
            for f, (z, y, x) in order:
                got = (m.path / "level_0" / f / "c" / str(z) / str(y) / str(x)).read_bytes()
                want = fields[f][
                    z * cz : (z + 1) * cz, y * cy : (y + 1) * cy, x * cx : (x + 1) * cx
                ]
                if got != want.tobytes():
                    wrong.append((f, z, y, x))
            return wrong

        with ThreadPoolExecutor(16) as pool:
            wrong = [w for ws in pool.map(reader, range(16)) for w in ws]
        assert wrong == [], f"{len(wrong)} chunks read wrong"
        s = stats(m.path)
        assert s["direct_reads"] == 0, "every chunk is gathered, through the cache"
        assert s["prefetch_issued"] > 0 and s["cache_evictions"] > 0, s
        assert s["cache_used"] + s["cache_reserved"] <= cache_mib * MIB, s
        peak = vm_kib(pid, "VmHWM") * 1024
        assert peak <= (cache_mib + 64) * MIB, f"peak RSS {peak / MIB:.1f} MiB"


def test_odirect_reads_cold_sources_past_the_page_cache(tmp_path):
    """By default FABs the page cache does not hold are read with O_DIRECT (aligned reads
    around their unaligned offsets) and zarr-python gets every value as written; with
    odirect=off the same values come through the page cache."""
    import zarr

    gen = plotfile_generator()
    gen.VARIANTS["pf3d_large"] = gen._variant(
        geometry="3d-large", prob_lo=[0.0] * 3, prob_hi=[1.0] * 3, ngrow=0, nfiles=2
    )
    pf = gen.build("pf3d_large")
    source = gen.write(pf, tmp_path)
    fields = {f: gen.composite(pf, 0, f) for f in gen.FIELDS}
    total = sum(v.nbytes for v in fields.values())
    for options in (None, "odirect=off"):
        drop_page_cache(source)
        with mount(source, options=options) as m:
            for name, want in fields.items():
                got = zarr.open_array(m.path / "level_0" / name, mode="r")[...]
                np.testing.assert_array_equal(got, want, err_msg=f"{options}: {name}")
            s = stats(m.path)
            assert s["bytes_read"] >= total, s
            if options is None:
                # Every FAB is 256 KiB, above the 128 KiB threshold; as root the scratch
                # buffers they are read into are registered with the ring.
                assert s["odirect_bytes"] >= 0.9 * total, s
                assert s["registered_bytes"] == s["odirect_bytes"], s
            else:
                assert s["odirect_bytes"] == 0, s


def test_a_chunk_up_to_max_read_comes_in_one_request(tmp_path):
    """zarr-python reads a chunk file whole, into a buffer that is not page-aligned. With the
    default max_read (4 MiB) and a kernel that allows requests that large, a 2 MiB chunk is
    one READ; with max_read=1M, or the kernel's default cap of 256 pages, it takes several.
    The values are the generator's every time."""
    import zarr

    assert MAX_PAGES_LIMIT.exists(), "this kernel has no fs.fuse.max_pages_limit (6.13+)"
    gen = plotfile_generator()
    gen.VARIANTS["pf3d_big"] = gen._variant(
        geometry="3d-big-boxes", prob_lo=[0.0] * 3, prob_hi=[1.0] * 3, nfiles=1
    )
    pf = gen.build("pf3d_big")
    source = gen.write(pf, tmp_path)
    fields = {f: gen.composite(pf, 0, f) for f in gen.FIELDS}
    requests = {}
    for pages, options in ((1025, None), (1025, "max_read=1M"), (256, None)):
        with max_pages_limit(pages), mount(source, options=options) as m:
            before = stats(m.path)["chunk_reads"]
            for name, want in fields.items():
                got = zarr.open_array(m.path / "level_0" / name, mode="r")[...]
                np.testing.assert_array_equal(got, want, err_msg=f"{pages} {options}: {name}")
            requests[pages, options] = stats(m.path)["chunk_reads"] - before
    chunks = 2 * len(fields)  # two 64^3 f64 boxes per field
    assert requests[1025, None] == chunks, requests
    assert requests[1025, "max_read=1M"] >= 2 * chunks, requests
    assert requests[256, None] >= 2 * chunks, requests


def test_names_zarr_clients_probe_stay_missing():
    # Answered as negative entries the kernel caches: asking again must still say ENOENT,
    # and a real name next to them must still resolve.
    with mount(FIXTURES / "amrex" / "pf3d_3lev_offset") as m:
        array = m.path / "level_1" / "density"
        for _ in range(3):
            for name in (".zarray", ".zattrs", ".zgroup", "c/9/9/9"):
                assert not (array / name).exists()
            assert not (m.path / ".zgroup").exists()
            assert (array / "zarr.json").is_file()
