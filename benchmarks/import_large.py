"""Importing a subset of a large file: wall time, peak memory and bytes read (operators.io).

Generates two files of at least ``--gb`` GB each into ``--dir`` (default under /tmp; never
commit them; they are deleted at the end unless ``--keep``):

* a PDEBench-style 1D file: ``tensor`` (N, 201, 1024) float32, ``x-coordinate`` (1024,),
  ``t-coordinate`` (202,) -- the shape of PDEBench's 1D advection/Burgers sets;
* an FNO-style MATLAB v7.3 file: ``a``, ``u`` (N, 8192) float64 as MATLAB writes them (HDF5
  behind the 512-byte MATLAB header, axes reversed: datasets (8192, N)), contiguous and
  uncompressed (MATLAB compresses v7.3 files by default; a compressed file is read whole
  chunk by chunk, which this benchmark does not measure).

Then imports ``--n-train`` + ``--n-test`` samples at ``--subsample`` from each, every import in
a child process of its own that reports its wall time, its peak RSS (``VmHWM``), its RSS after
the imports of Python modules (the baseline: jax and friends) and the bytes it read from files
(``rchar`` of /proc/self/io, which counts page-cache hits too). As a side-by-side reference
the PDEBench file is also read whole (``f["tensor"][()]``), which is what a non-lazy reader
does, and both subsets are imported once more through a plain ``h5py.File(path, "r")`` (HDF5's
default 64 KiB sieve buffer, which operators.io turns off). The files have just been written,
so they are in the page cache (warm-cache times) unless ``--cold`` evicts each file before each
case; the bytes read do not depend on that.

    python benchmarks/import_large.py [--dir /tmp/import_large] [--gb 2.0] [--n-train 1000]
                                      [--n-test 200] [--subsample 4] [--cold] [--keep] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np

from plumbing.tables import print_table

MATLAB_HEADER = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."

# The child: import the modules (baseline RSS), run one import, report what it cost.
CHILD = r"""
import json, sys, time
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
def rchar():
    for line in open("/proc/self/io"):
        if line.startswith("rchar:"):
            return int(line.split()[1])
spec = json.loads(sys.argv[1])
import h5py, numpy as np
import operators.io
from operators.io import import_dataset
if spec.get("default_sieve"):  # HDF5's default 64 KiB sieve buffer, i.e. a plain h5py.File(path, "r")
    operators.io._open_h5 = lambda path: h5py.File(path, "r")
base_rss, base_read = status("VmRSS"), rchar()
t0 = time.perf_counter()
if spec["mode"] == "full":
    with h5py.File(spec["src"], "r") as f:
        arr = f[spec["key"]][()]
    shape = list(arr.shape)
else:
    ds = import_dataset(spec["src"], **spec["kwargs"])
    shape = list(ds["a"].shape)
wall = time.perf_counter() - t0
print(json.dumps({"wall_s": wall, "peak_rss": status("VmHWM"), "base_rss": base_rss,
                  "read_bytes": rchar() - base_read, "shape": shape}))
"""


def write_pdebench_1d(path: Path, gb: float, nt: int = 201, nx: int = 1024, block: int = 64) -> int:
    """A PDEBench 1D file of at least `gb` GB; returns N. tensor: (N, nt, nx) float32."""
    n = math.ceil(gb * 1e9 / (nt * nx * 4))
    rng = np.random.default_rng(0)
    base = rng.standard_normal((block, nt, nx), dtype=np.float32)
    with h5py.File(path, "w") as f:
        d = f.create_dataset("tensor", (n, nt, nx), dtype=np.float32)
        for i in range(0, n, block):
            m = min(block, n - i)
            d[i:i + m] = base[:m] + np.float32(i % 97)   # distinct samples at the cost of one add
        f["x-coordinate"] = ((np.arange(nx) + 0.5) / nx).astype(np.float32)
        f["t-coordinate"] = np.linspace(0, 2, nt + 1).astype(np.float32)
    return n


def write_fno_v73(path: Path, gb: float, s: int = 8192, rows: int = 256) -> int:
    """An FNO Burgers-style v7.3 .mat of at least `gb` GB; returns N. a, u: MATLAB (N, s)
    float64, stored as HDF5 datasets (s, N) behind MATLAB's 512-byte header."""
    n = math.ceil(gb * 1e9 / (2 * s * 8))
    rng = np.random.default_rng(1)
    base = rng.standard_normal((rows, n))
    with h5py.File(path, "w", userblock_size=512) as f:
        for k, name in enumerate(("a", "u")):
            d = f.create_dataset(name, (s, n), dtype=np.float64)
            d.attrs["MATLAB_class"] = np.bytes_("double")
            for r in range(0, s, rows):
                d[r:r + rows] = base + (r + k)
    with open(path, "r+b") as fh:
        fh.write(MATLAB_HEADER)
    return n


def evict(path: Path) -> None:
    """Drop this file's pages from the page cache (only this file's: POSIX_FADV_DONTNEED), so
    the next read comes from the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def run_child(spec: dict) -> dict:
    """Run one import (or full read) in a fresh Python process; its own measurements."""
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"child failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dir", default="/tmp/import_large", help="folder for the generated files (default /tmp/import_large)")
    p.add_argument("--gb", type=float, default=2.0, help="size of each generated file in GB (default 2)")
    p.add_argument("--n-train", type=int, default=1000)
    p.add_argument("--n-test", type=int, default=200)
    p.add_argument("--subsample", type=int, default=4)
    p.add_argument("--keep", action="store_true", help="keep the generated files")
    p.add_argument("--cold", action="store_true",
                   help="evict the file from the page cache before each case (cold-cache times)")
    p.add_argument("--json", help="also write the results to this JSON file")
    args = p.parse_args(argv)
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    rows, gen = [], {}
    try:
        for name, writer in (("pdebench_1d.hdf5", write_pdebench_1d), ("fno_burgers_v73.mat", write_fno_v73)):
            t0 = time.perf_counter()
            n = writer(folder / name, args.gb)
            gen[name] = {"n_samples": n, "bytes": (folder / name).stat().st_size,
                         "write_s": time.perf_counter() - t0}
            print(f"wrote {folder / name}: {gen[name]['bytes'] / 1e9:.2f} GB, {n} samples, "
                  f"{gen[name]['write_s']:.1f} s", file=sys.stderr)
        subset = {"n_train": args.n_train, "n_test": args.n_test, "subsample": args.subsample}
        cases = [
            ("pdebench 1D, import subset", "pdebench_1d.hdf5",
             {"mode": "import", "kwargs": {"format": "pdebench", "out": str(folder / "pdebench.nc"), **subset}}),
            ("fno-mat v7.3, import subset", "fno_burgers_v73.mat",
             {"mode": "import", "kwargs": {"format": "fno-mat", "out": str(folder / "fno.nc"), **subset}}),
            ("pdebench 1D, import subset, default sieve", "pdebench_1d.hdf5",
             {"mode": "import", "default_sieve": True,
              "kwargs": {"format": "pdebench", "out": str(folder / "pdebench_sieve.nc"), **subset}}),
            ("fno-mat v7.3, import subset, default sieve", "fno_burgers_v73.mat",
             {"mode": "import", "default_sieve": True,
              "kwargs": {"format": "fno-mat", "out": str(folder / "fno_sieve.nc"), **subset}}),
            ("pdebench 1D, read whole (reference)", "pdebench_1d.hdf5", {"mode": "full", "key": "tensor"}),
        ]
        for label, name, spec in cases:
            if args.cold:
                evict(folder / name)
            r = run_child({**spec, "src": str(folder / name)})
            rows.append({"case": label, "file_GB": gen[name]["bytes"] / 1e9, "shape": "x".join(map(str, r["shape"])),
                         "wall_s": r["wall_s"], "peak_rss_MB": r["peak_rss"] / 2**20,
                         "above_baseline_MB": (r["peak_rss"] - r["base_rss"]) / 2**20,
                         "read_MB": r["read_bytes"] / 2**20})
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    print_table(rows, ["case", "file_GB", "shape", "wall_s", "peak_rss_MB", "above_baseline_MB", "read_MB"])
    result = {"generated": gen, "subset": subset, "cold": args.cold, "results": rows}
    print(json.dumps(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
