"""Usage: python webdataset_reference.py OUT_DIR (see reference.rs).

Writes tricky shards with Python's tarfile and webdataset, and what webdataset yields
for each (key, lowercased suffixes, FNV-1a 64 of each member's bytes) as <tar>.wds.json."""
import io, json, os, sys, tarfile, time
import numpy as np
import webdataset as wds
from webdataset import tariterators as ti

out = sys.argv[1]
os.makedirs(out, exist_ok=True)

def fnv(b):
    h = 0xcbf29ce484222325
    for x in b:
        h = ((h ^ x) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h

def npy(a):
    b = io.BytesIO(); np.save(b, a); return b.getvalue()

def add(tf, name, data=b"", type=tarfile.REGTYPE, link=""):
    ti_ = tarfile.TarInfo(name); ti_.size = len(data) if type == tarfile.REGTYPE else 0
    ti_.type = type; ti_.linkname = link; ti_.mtime = 1700000000
    tf.addfile(ti_, io.BytesIO(data) if type == tarfile.REGTYPE else None)

def reference(path):
    with open(path, "rb") as f:
        stream = [dict(s, __url__=path) for s in ti.tar_file_iterator(f)]
    samples = []
    for s in ti.group_by_keys(iter(stream)):
        fields = [[k, fnv(v)] for k, v in s.items() if not k.startswith("__")]
        samples.append({"key": s["__key__"], "fields": fields})
    json.dump({"samples": samples}, open(path + ".wds.json", "w"), indent=0)
    print(path, len(samples))

# 1. webdataset's own writer: PAX headers with float mtimes, PLAID names, dirs in keys.
p = f"{out}/writer.tar"
with wds.TarWriter(p) as w:
    for i in range(30):
        key = f"run1/s{i:06}" if i % 5 == 0 else f"s{i:06}"
        w.write({"__key__": key, "cls": i, "txt": f"t{i}", "json": {"i": i},
                 "fixed.npy": np.arange(12, dtype="<f4").reshape(3, 4) + i,
                 "Base_2_3__Zone__CoordinateX.npy": np.asfortranarray(np.ones((2, 3)) * i),
                 "x" * 120 + ".bin": bytes([i]) * 7})
reference(p)

# 2. GNU format: long names (L), long link targets (K), dirs, symlinks, hardlinks.
for fmt, name in [(tarfile.GNU_FORMAT, "gnu"), (tarfile.USTAR_FORMAT, "ustar"), (tarfile.PAX_FORMAT, "pax")]:
    p = f"{out}/{name}.tar"
    kw = {"pax_headers": {"comment": "global"}} if fmt == tarfile.PAX_FORMAT else {}
    with tarfile.open(p, "w", format=fmt, **kw) as tf:
        add(tf, "dir", type=tarfile.DIRTYPE)
        add(tf, "a.jpg", b"A" * 700)
        add(tf, "a.lnk", type=tarfile.SYMTYPE, link="a.jpg")
        add(tf, "a.cls", b"1")
        add(tf, "README", b"no suffix")
        add(tf, "__meta__", b"meta")
        add(tf, "a.Left.JPG", b"L")
        longdir = "/".join(["deep%02d" % k for k in range(16)])
        add(tf, longdir + "/b.npy", npy(np.zeros(5, ">i2")))
        add(tf, longdir + "/b.txt", b"deep")
        add(tf, "a.txt", b"a again, not adjacent")
        add(tf, "h.hard", type=tarfile.LNKTYPE, link="a.jpg")
        add(tf, "c/d/.hidden", b"hidden")
        add(tf, "c/d/.other", b"other")
        if fmt != tarfile.USTAR_FORMAT:
            add(tf, "q" * 150 + ".npy", npy(np.ones((2, 2), "<c8")))
            add(tf, "l.lnk", type=tarfile.SYMTYPE, link="t" * 200)
        if fmt == tarfile.PAX_FORMAT:
            add(tf, "é/ü.txt", "ünïcode".encode())
        add(tf, "e.tar.gz", b"gz")
        add(tf, "z.", b"empty suffix")
    reference(p)

# 3. GNU tar itself, in its three formats, over a directory tree with long names.
import shutil, subprocess
tree = f"{out}/tree"
shutil.rmtree(tree, ignore_errors=True)
for i in range(12):
    d = f"{tree}/split{i % 3}/" + ("long_directory_name_" * (i % 4))
    os.makedirs(d, exist_ok=True)
    for suffix, data in [("cls", str(i).encode()), ("Fixed.NPY", npy(np.arange(i + 1, dtype="<i8"))), ("a.b.txt", b"t" * (i * 300))]:
        open(f"{d}/sample{i:04d}_{'x' * (i * 9)}.{suffix}", "wb").write(data)
os.symlink("split0", f"{tree}/link")
for fmt in ["gnu", "posix", "ustar"]:
    p = f"{out}/gnutar-{fmt}.tar"
    r = subprocess.run(["tar", f"--format={fmt}", "--sort=name", "-cf", p, "-C", tree, "."], capture_output=True)
    if r.returncode != 0:
        print(fmt, r.stderr.decode()[:200]); continue
    reference(p)

# 4. A header broken in the middle of webdataset's shard: tarfile stops quietly there.
data = bytearray(open(f"{out}/writer.tar", "rb").read())
headers = [off for off in range(0, len(data), 512) if data[off + 257:off + 262] == b"ustar" and data[off + 156:off + 157] == b"x"]
off = headers[len(headers) // 2]
data[off + 148] ^= 0x07
open(f"{out}/broken.tar", "wb").write(bytes(data))
reference(f"{out}/broken.tar")
