"""Readers for the field's operator-learning data sets: one file in, one operator dataset out.

``import_dataset(src, format=..., out=None, ...)`` reads a subset of a file in one of the
formats below and returns (given ``out``, also writes atomically) the operator dataset of
DESIGN.md sections 2 and 7: ``a`` and ``u`` with dims ``(sample, x[, y])`` in float64, float64
coordinates with ``units`` and ``long_name``, ``split`` ("train", "calibration", "test"), and
the attrs of ``pdes.solution.operator_dataset`` plus ``periodic`` (stored as 1/0: netCDF has no
boolean attribute), ``source`` (the absolute path of the file) and ``source_keys`` (JSON: which
array became ``a`` and which ``u``, the time indices, the subsample and the sample ranges).

Formats and their key mapping (the README has the same table):

* ``fno-mat``: the FNO paper's MATLAB files, v5 (scipy.io.loadmat) or v7.3 (HDF5, read with
  h5py; MATLAB writes an (N, s) array as an (s, N) HDF5 dataset, so every axis is reversed).
  Burgers ``a``, ``u`` (N, 8192), periodic; Darcy ``coeff`` -> a, ``sol`` -> u (N, 421, 421),
  not periodic; Navier-Stokes ``u`` (N, 64, 64, T) with ``a`` (N, 64, 64): a = ``a`` (or
  ``u[..., t_in]`` when ``t_in`` is given or there is no ``a``), u = ``u[..., t_out]``
  (default: the last frame), periodic.
* ``pdebench``: PDEBench HDF5. Time series ``tensor`` (N, Nt, nx[, ny]) (compressible-flow
  files: ``density``, ``pressure``, ``Vx``, ... of the same shape): a = frame ``t_in``
  (default 0), u = frame ``t_out`` (default the last); ``x-coordinate`` (and ``y-coordinate``)
  give the grid; periodic (advection, Burgers, 1D diffusion-reaction and the ``periodic``
  CFD sets), except files whose name says ``trans`` (outgoing boundaries). Darcy ``nu``
  (N, ny, nx) -> a, ``tensor`` (N, 1, ny, nx) -> u, not periodic. Per-sample groups
  ``"0000"``, ``"0001"``, ... each with ``data`` (Nt, nx[, ny], C) and ``grid/x``
  (``grid/y``, ``grid/t``): a = ``data[t_in, ..., channel]``, u = ``data[t_out, ..., channel]``,
  not periodic (diffusion-sorption, 2D diffusion-reaction, shallow water).
* ``neuralop-pt``: neuraloperator's ``torch.save`` dicts ``{"x": a, "y": u, ...}``, tensors
  (N, 1, s[, s]) or (N, s[, s]) ((N, C, s, s): ``channel`` picks one), loaded with
  ``torch.load(weights_only=True)`` (never an arbitrary pickle) and memory-mapped; periodic
  unless the file name says ``darcy``. Needs torch (``pip install -e .[torch]``); the rest of
  this module never imports it.
* ``well``: The Well's HDF5: ``t0_fields/NAME`` (n_traj, n_t, nx[, ny]) gives one-step pairs
  a = field(t), u = field(t + 1) for the chosen trajectories and time steps;
  ``dimensions/x`` (``y``) give the grid, ``boundary_conditions/*/@bc_type`` the periodicity.
  The sample-range arguments count trajectories, so no trajectory is in two splits.
* ``npz`` / ``npy``: an .npz with ``a`` and ``u`` (else ``x`` and ``y``), or two .npy files
  (SRC is a's, ``target_key`` is u's path); (N, s[, s]) or (N, 1, s[, s]); periodic.

``input_key`` / ``target_key`` (``--input`` / ``--target``) name the arrays explicitly
(fields of The Well). Samples: train = the first ``n_train``, calibration = the next
``n_calibration``, test = the ``n_test`` from ``test_from`` (default: right after them);
without any of these, the last fifth (at least one sample) is the test set and the rest is train.

Reading is lazy: only the requested samples, time frames and strided grid points are read
(h5py hyperslabs; memory-mapped .npy and torch files), so a subset of a 10 GB file needs the
memory of the subset. MATLAB v5 files are the exception: scipy reads each requested variable
whole (the FNO paper's v5 files are the small ones). Every check (missing file, unknown
format or layout, samples beyond the file, a target time not after the input time, NaN, a
and u on different grids) raises a one-line ``ValueError``/``FileNotFoundError`` before any
output is written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import xarray as xr

from pdes.solution import operator_dataset, write_dataset

__all__ = ["FORMATS", "import_dataset", "parse_indices", "split_ranges"]

FORMATS = ("fno-mat", "pdebench", "neuralop-pt", "well", "npz", "npy")

# (format, layout, keys that identify it): for "closest layout" messages.
_SIGNATURES = (
    ("fno-mat", "Burgers (a, u)", {"a", "u"}),
    ("fno-mat", "Darcy (coeff, sol)", {"coeff", "sol", "Kcoeff"}),
    ("fno-mat", "Navier-Stokes (a, u, t)", {"a", "u", "t"}),
    ("pdebench", "time series (tensor, x-coordinate, t-coordinate)", {"tensor", "x-coordinate", "t-coordinate"}),
    ("pdebench", "Darcy (nu, tensor, x-coordinate, y-coordinate)", {"nu", "tensor", "x-coordinate", "y-coordinate"}),
    ("pdebench", "compressible flow (density, pressure, Vx, x-coordinate)",
     {"density", "pressure", "Vx", "x-coordinate", "t-coordinate"}),
    ("pdebench", "per-sample groups (0000, 0001, ...)", {"<sample groups>"}),
    ("neuralop-pt", "dict (x, y)", {"x", "y"}),
    ("well", "t0_fields, dimensions, boundary_conditions", {"t0_fields", "t1_fields", "dimensions",
                                                             "boundary_conditions", "scalars"}),
    ("npz", "a, u", {"a", "u"}),
    ("npz", "x, y", {"x", "y"}),
)


@dataclass(frozen=True)
class ReadOptions:
    """What to read, beyond the sample ranges (see ``import_dataset``)."""

    input_key: str | None = None
    target_key: str | None = None
    t_in: int | None = None
    t_out: int | None = None
    channel: int | None = None
    field: str | None = None
    trajectories: Sequence[int] | str | None = None
    steps: Sequence[int] | str | None = None


@dataclass
class Source:
    """What a format reader found in a file, and how to read a subset of it.

    ``n_samples`` samples (trajectories for The Well) on a ``grid`` (full resolution, one entry
    per spatial axis) with the file's ``coords`` per axis (None: not in the file). ``read(lo,
    hi, s)`` returns (a, u) for samples lo..hi-1, every spatial axis strided by s: each
    (rows, *ceil(grid / s)) with rows = (hi - lo) * rows_per_sample. ``keys`` go into
    ``source_keys``, ``params`` into the ``params`` attr; ``sample_ids`` maps sample positions
    to the file's indices (None: the identity) for error messages."""

    layout: str
    n_samples: int
    grid: tuple[int, ...]
    coords: tuple[np.ndarray | None, ...]
    periodic: bool
    equation: str
    keys: dict[str, Any]
    read: Callable[[int, int, int], tuple[np.ndarray, np.ndarray]]
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    rows_per_sample: int = 1
    sample_word: str = "sample"
    sample_ids: np.ndarray | None = None


# ----------------------------------------------------------------------------- small helpers


def parse_indices(spec: Sequence[int] | str | None, n: int, what: str) -> np.ndarray:
    """Indices into range(n) from None (all), a sequence of ints, or text: 'I', 'I,J,K' or
    'START:STOP[:STEP]' (Python slice rules, open ends allowed). Negative indices count
    from the end; out-of-range or repeated indices raise ValueError. Returns (k,) int64."""
    if spec is None:
        return np.arange(n)
    if isinstance(spec, str):
        text = spec.strip()
        try:
            if ":" in text:
                parts = [int(p) if p.strip() else None for p in text.split(":")]
                if len(parts) > 3:
                    raise ValueError
                out = np.arange(n)[slice(*parts)]
                if out.size == 0:
                    raise ValueError(f"{what} range {spec!r} selects nothing of 0..{n - 1}")
                return out
            values = [int(p) for p in text.split(",")]
        except ValueError as err:
            raise ValueError(str(err) or f"cannot read {what} indices {spec!r}: use I, I,J,K or START:STOP[:STEP]") from None
    else:
        values = [int(v) for v in spec]
    if not values:
        raise ValueError(f"no {what} indices given")
    bad = [v for v in values if not -n <= v < n]
    if bad:
        raise ValueError(f"{what} index {bad[0]} is outside 0..{n - 1}")
    out = np.array([v % n for v in values], dtype=np.int64)
    if np.unique(out).size != out.size:
        raise ValueError(f"{what} indices {spec!r} repeat an index")
    return out


def split_ranges(n_total: int, *, n_train: int | None = None, n_test: int | None = None,
                 test_from: int | None = None, n_calibration: int = 0) -> list[tuple[str, int, int]]:
    """The sample ranges [(split, lo, hi), ...] (empty ones left out) of a file of n_total samples.

    train = [0, n_train), calibration = the next n_calibration, test = [test_from,
    test_from + n_test). Defaults: test_from = n_train + n_calibration; n_train = test_from -
    n_calibration; n_test = the rest of the file. With none of n_train, n_test, test_from, the
    test set is the last fifth (n_total // 5, at least one sample) and train the rest; with
    only n_test, the test set is the last n_test."""
    for name, v in (("n_train", n_train), ("n_test", n_test), ("test_from", test_from),
                    ("n_calibration", n_calibration)):
        if v is not None and (not isinstance(v, int | np.integer) or v < 0):
            raise ValueError(f"{name} must be a non-negative integer, got {v!r}")
    if test_from is None and n_train is None:
        n_test = (max(1, n_total // 5) if n_total > 1 else 0) if n_test is None else n_test
        test_from = n_total - n_test
        n_train = test_from - n_calibration
        if n_train < 0:
            raise ValueError(f"the file has {n_total} samples, fewer than the {n_test} test + "
                             f"{n_calibration} calibration samples requested")
    elif test_from is None:
        test_from = n_train + n_calibration
    elif n_train is None:
        n_train = test_from - n_calibration
        if n_train < 0:
            raise ValueError(f"test_from={test_from} leaves no room for {n_calibration} calibration samples")
    if n_test is None:
        n_test = max(n_total - test_from, 0)
    if n_train + n_calibration > test_from:
        raise ValueError(f"test samples from index {test_from} overlap the {n_train} train + "
                         f"{n_calibration} calibration samples")
    last = max(test_from + n_test, n_train + n_calibration)
    if last > n_total:
        raise ValueError(f"requested samples up to index {last - 1}, but the file has only {n_total} "
                         f"(indices 0..{n_total - 1})")
    ranges = [("train", 0, n_train), ("calibration", n_train, n_train + n_calibration),
              ("test", test_from, test_from + n_test)]
    ranges = [r for r in ranges if r[2] > r[1]]
    if not ranges:
        raise ValueError("no samples selected: n_train + n_calibration + n_test is 0")
    return ranges


def _strided(ndim: int, s: int) -> tuple[slice, ...]:
    return (slice(None, None, s),) * ndim


def _time_index(t: int, nt: int, flag: str, key: str) -> int:
    if not -nt <= t < nt:
        raise ValueError(f"{flag} {t} is outside the {nt} time steps of {key!r} (0..{nt - 1})")
    return t % nt


def _pick_times(a_key: str, u_key: str, nt_a: int | None, nt_u: int | None,
                opt: ReadOptions) -> tuple[int | None, int | None]:
    """(t_in, t_out) as indices (None for an array without a time axis). Defaults: t_in = 0,
    t_out = the last frame; when both are frames of time series, t_out must come after t_in."""
    if nt_a is None and opt.t_in is not None:
        raise ValueError(f"--t-in {opt.t_in} given, but the input array {a_key!r} has no time axis")
    if nt_u is None and opt.t_out is not None:
        raise ValueError(f"--t-out {opt.t_out} given, but the target array {u_key!r} has no time axis")
    t_in = _time_index(opt.t_in if opt.t_in is not None else 0, nt_a, "--t-in", a_key) if nt_a else None
    t_out = _time_index(opt.t_out if opt.t_out is not None else nt_u - 1, nt_u, "--t-out", u_key) if nt_u else None
    if t_in is not None and t_out is not None and t_out <= t_in:
        raise ValueError(f"target time index {t_out} is not after the input time index {t_in}: "
                         "u must be a later frame than a (choose --t-in / --t-out)")
    return t_in, t_out


def _no_layout(path: Path, fmt: str, found: dict[str, Any]) -> ValueError:
    """The one-line error for a file whose keys match no layout of ``fmt``."""
    names = set(found)
    if names and all(k.isdigit() for k in names):
        names = {"<sample groups>"}
    best, score = None, 0.0
    for f, layout, sig in _SIGNATURES:
        s = len(names & sig) / len(names | sig)
        if s > score:
            best, score = (f, layout), s
    shown = ", ".join(f"{k} {tuple(v)}" if isinstance(v, tuple) else k for k, v in sorted(found.items())[:12])
    hint = (f"it looks closest to {best[0]} {best[1]}" if best else "it looks like none of the known layouts")
    return ValueError(f"{str(path)!r} has keys [{shown}] that match no {fmt} layout; {hint}; "
                      "or name the arrays with --input KEY --target KEY")


def _open_h5(path: Path) -> h5py.File:
    """The HDF5 file, read-only, with HDF5's sieve buffer off: by default every small piece of
    a strided selection costs a 64 KiB read (measured: 179 MB read for a 2 MB subset of a 0.1 GB
    file); without it each piece is one read of its own bytes (``_h5_take`` keeps pieces long)."""
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_sieve_buf_size(0)
    fapl.set_fclose_degree(h5py.h5f.CLOSE_STRONG)
    return h5py.File(h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDONLY, fapl=fapl))


_MIN_PIECE = 512   # bytes: a contiguous run shorter than this is not worth a read of its own


def _bounding(sel: Any, n: int) -> tuple[slice, Any, int]:
    """(the contiguous slice covering an axis selection, the selection relative to it, its length)."""
    if isinstance(sel, slice):
        start, stop, step = sel.indices(n)
        count = len(range(start, stop, step))
        end = start + step * (count - 1) + 1 if count else start
        return slice(start, end), slice(None, None, step), end - start
    if isinstance(sel, int | np.integer):
        return slice(int(sel), int(sel) + 1), 0, 1
    lo, hi = int(min(sel)), int(max(sel)) + 1
    return slice(lo, hi), [int(v) - lo for v in sel], hi - lo


def _h5_take(ds: h5py.Dataset, index: tuple[Any, ...]) -> np.ndarray:
    """``ds[index]`` (one entry per axis: an int, a slice, or a list of increasing ints, with
    h5py's meaning), read in contiguous runs of at least 512 bytes where the layout allows:
    while the run below an axis is shorter, the axis is read whole (when that is at most 512
    bytes of run, e.g. a channel axis) or over the bounding range of its selection (e.g. a
    strided last axis), and the selection is applied in numpy. With the sieve buffer off
    (``_open_h5``) each run is one read, so the bytes read stay close to the bytes wanted."""
    outer, inner = list(index), []
    run = ds.dtype.itemsize
    for axis in reversed(range(ds.ndim)):
        if run >= _MIN_PIECE:
            break
        if run * ds.shape[axis] <= _MIN_PIECE:
            outer[axis], sel, extent = slice(None), index[axis], ds.shape[axis]
        else:
            outer[axis], sel, extent = _bounding(index[axis], ds.shape[axis])
        inner.insert(0, sel)
        run *= extent
        if extent < ds.shape[axis]:
            break
    arr = ds[tuple(outer)]
    kept = sum(not isinstance(sel, int | np.integer) for sel in outer[:ds.ndim - len(inner)])
    for k in reversed(range(len(inner))):  # last axis first, so the earlier positions stay put
        arr = arr[(slice(None),) * (kept + k) + (inner[k],)]
    return np.asarray(arr)


def _h5(stack: contextlib.ExitStack, path: Path, fmt: str) -> h5py.File:
    if not h5py.is_hdf5(path):
        raise ValueError(f"{str(path)!r} is not an HDF5 file, which format {fmt} needs")
    try:
        return stack.enter_context(_open_h5(path))
    except OSError as err:
        raise ValueError(f"{str(path)!r} is not a readable HDF5 file ({err})") from None


def _h5_shapes(group: h5py.Group) -> dict[str, Any]:
    """name -> shape of datasets, name -> 'group' for groups (MATLAB's #refs# left out)."""
    return {k: (tuple(v.shape) if isinstance(v, h5py.Dataset) else "group")
            for k, v in group.items() if not k.startswith("#")}


def _coord_from(values: Any, n: int) -> np.ndarray | None:
    """A file's coordinate if it is a finite (n,) vector (else None: the default grid is used)."""
    if values is None:
        return None
    arr = np.asarray(values, dtype=np.float64).ravel()
    return arr if arr.shape == (n,) and np.all(np.isfinite(arr)) else None


def _squeeze_channel(shape: tuple[int, ...], channel: int | None, key: str) -> tuple[int | None, tuple[int, ...]]:
    """For arrays (N, s), (N, 1, s[, s]), (N, s, s) or (N, C, s, s): the channel index to take
    (None: no channel axis) and the spatial shape."""
    if len(shape) == 4:
        c = 0 if channel is None else channel
        if not 0 <= c < shape[1]:
            raise ValueError(f"channel {c} is outside the {shape[1]} channels of {key!r} {shape}")
        if shape[1] > 1 and channel is None:
            raise ValueError(f"{key!r} {shape} has {shape[1]} channels: choose one with --channel")
        return c, shape[2:]
    if len(shape) == 3 and shape[1] == 1:
        return 0, shape[2:]
    if len(shape) in (2, 3):
        return None, shape[1:]
    raise ValueError(f"{key!r} has shape {shape}; expected (N, s), (N, s, s) or (N, C, s[, s])")


# ----------------------------------------------------------------------------- fno-mat


def _mat_v5_shapes(path: Path) -> dict[str, Any]:
    import scipy.io

    try:
        return {name: tuple(shape) for name, shape, _ in scipy.io.whosmat(str(path))}
    except Exception as err:  # scipy raises several types for a file that is not a .mat
        raise ValueError(f"{str(path)!r} is not a MATLAB .mat file ({type(err).__name__})") from None


def _fno_layout(shapes: dict[str, Any], opt: ReadOptions) -> tuple[str, str | None, str | None, bool]:
    """(layout, a key, u key, periodic) of an FNO file (shapes in MATLAB order); --input and
    --target replace the keys of the layout found (None where neither names one)."""
    nd = {k: len(v) for k, v in shapes.items() if isinstance(v, tuple)}
    found: tuple[str, str | None, str | None, bool] = ("arrays", None, None, True)
    if {"coeff", "sol"} <= nd.keys():
        found = ("darcy", "coeff", "sol", False)
    elif nd.get("u") == 4:
        use_a = nd.get("a") == 3 and opt.t_in is None
        found = ("navier_stokes", "a" if use_a else "u", "u", True)
    elif nd.get("a") in (2, 3) and nd.get("u") == nd.get("a"):
        found = ("burgers" if nd["a"] == 2 else "arrays", "a", "u", True)
    layout, a_key, u_key, periodic = found
    if (opt.input_key or a_key) != a_key or (opt.target_key or u_key) != u_key:
        layout = "arrays"
    return layout, opt.input_key or a_key, opt.target_key or u_key, periodic


def _mat_has_time(shapes: dict[str, Any], key: str, other: str) -> bool:
    """MATLAB-order arrays: a trailing time axis for (N, s, s, T), or (N, s, T) beside (N, s)."""
    n, m = len(shapes[key]), len(shapes[other])
    return n == 4 or (n == 3 and m == 2)


def _matlab_header(path: Path) -> bool:
    """True when the file starts with MATLAB's text header (v7.3: HDF5 behind a 512-byte user block)."""
    with open(path, "rb") as fh:
        return fh.read(6) == b"MATLAB"


def _read_fno_mat(stack: contextlib.ExitStack, path: Path, opt: ReadOptions) -> Source:
    hdf5 = h5py.is_hdf5(path)
    reverse = hdf5 and _matlab_header(path)   # MATLAB column-major; a plain HDF5 file is row-major
    if hdf5:
        f = _h5(stack, path, "fno-mat")
        shapes = {k: tuple(reversed(v)) if isinstance(v, tuple) and reverse else v
                  for k, v in _h5_shapes(f).items()}
    else:
        shapes = _mat_v5_shapes(path)
    layout, a_key, u_key, periodic = _fno_layout(shapes, opt)
    if a_key is None or u_key is None:
        raise _no_layout(path, "fno-mat", shapes)
    for key in (a_key, u_key):
        if not isinstance(shapes.get(key), tuple):
            raise ValueError(f"{str(path)!r} has no array {key!r} (has {sorted(shapes)})")
    a_time, u_time = _mat_has_time(shapes, a_key, u_key), _mat_has_time(shapes, u_key, a_key)
    t_in, t_out = _pick_times(a_key, u_key, shapes[a_key][-1] if a_time else None,
                              shapes[u_key][-1] if u_time else None, opt)
    a_grid = shapes[a_key][1:-1] if a_time else shapes[a_key][1:]
    u_grid = shapes[u_key][1:-1] if u_time else shapes[u_key][1:]
    _same_grid(a_key, a_grid, u_key, u_grid)
    n = _same_count(shapes[a_key][0], shapes[u_key][0], a_key, u_key)
    cache: dict[str, np.ndarray] = {}

    def take(key: str, t: int | None, lo: int, hi: int, s: int) -> np.ndarray:
        index = (slice(lo, hi), *_strided(len(a_grid), s), *(() if t is None else (t,)))
        if reverse:  # the HDF5 dataset is the MATLAB array with its axes reversed
            return np.transpose(_h5_take(f[key], tuple(reversed(index))))
        if hdf5:
            return _h5_take(f[key], index)
        if key not in cache:
            import scipy.io

            cache[key] = scipy.io.loadmat(str(path), variable_names=[key])[key]
        return cache[key][index]

    return Source(
        layout=f"fno-mat {layout} ({'v7.3' if reverse else 'HDF5' if hdf5 else 'v5'})", n_samples=n, grid=a_grid,
        coords=(None,) * len(a_grid), periodic=periodic, equation=layout if layout != "arrays" else path.stem,
        keys={"a": a_key, "u": u_key, "t_in": t_in, "t_out": t_out},
        read=lambda lo, hi, s: (take(a_key, t_in, lo, hi, s), take(u_key, t_out, lo, hi, s)))


def _same_grid(a_key: str, a_grid: tuple[int, ...], u_key: str, u_grid: tuple[int, ...]) -> None:
    if tuple(a_grid) != tuple(u_grid):
        raise ValueError(f"a ({a_key!r}) is on a {'x'.join(map(str, a_grid))} grid and u ({u_key!r}) on "
                         f"{'x'.join(map(str, u_grid))}: they must share one grid")


def _same_count(n_a: int, n_u: int, a_key: str, u_key: str) -> int:
    if n_a != n_u:
        raise ValueError(f"{a_key!r} has {n_a} samples and {u_key!r} {n_u}: they must pair up")
    return int(n_a)


# ----------------------------------------------------------------------------- pdebench


def _read_pdebench(stack: contextlib.ExitStack, path: Path, opt: ReadOptions) -> Source:
    f = _h5(stack, path, "pdebench")
    shapes = _h5_shapes(f)
    if shapes and all(k.isdigit() for k in shapes):
        return _pdebench_groups(f, path, opt)
    a_key, u_key = _pdebench_keys(shapes)
    a_key, u_key = opt.input_key or a_key, opt.target_key or u_key
    if a_key is None or u_key is None:
        raise _no_layout(path, "pdebench", shapes)
    for key in (a_key, u_key):
        if not isinstance(shapes.get(key), tuple):
            raise ValueError(f"{str(path)!r} has no array {key!r} (has {sorted(shapes)})")
    sa, su = shapes[a_key], shapes[u_key]
    # PDEBench puts time at axis 1 of every time series; only Darcy's nu has none.
    a_time = len(sa) > len(su) or (len(sa) == len(su) >= 3)
    u_time = len(su) > len(sa) or (len(sa) == len(su) >= 3)
    t_in, t_out = _pick_times(a_key, u_key, sa[1] if a_time else None, su[1] if u_time else None, opt)
    a_grid, u_grid = sa[2:] if a_time else sa[1:], su[2:] if u_time else su[1:]
    _same_grid(a_key, a_grid, u_key, u_grid)
    n = _same_count(sa[0], su[0], a_key, u_key)
    darcy = not a_time
    names = ("x-coordinate", "y-coordinate", "z-coordinate")
    coords = tuple(_coord_from(f[c][()] if c in f else None, m) for c, m in zip(names, a_grid, strict=False))
    keys: dict[str, Any] = {"a": a_key, "u": u_key, "t_in": t_in, "t_out": t_out}
    tc = f["t-coordinate"][()] if "t-coordinate" in f else None
    for name, t in (("t_in_value", t_in), ("t_out_value", t_out)):
        if tc is not None and t is not None and t < np.size(tc):
            keys[name] = float(np.ravel(tc)[t])

    def take(key: str, t: int | None, lo: int, hi: int, s: int) -> np.ndarray:
        index = (slice(lo, hi), *(() if t is None else (t,)), *_strided(len(a_grid), s))
        return _h5_take(f[key], index)

    return Source(
        layout=f"pdebench {'darcy' if darcy else 'time series'}", n_samples=n, grid=a_grid, coords=coords,
        periodic=not darcy and "trans" not in path.name.lower(), equation=path.stem, keys=keys,
        read=lambda lo, hi, s: (take(a_key, t_in, lo, hi, s), take(u_key, t_out, lo, hi, s)))


def _pdebench_keys(shapes: dict[str, Any]) -> tuple[str | None, str | None]:
    """The default (a, u) keys of a PDEBench single file: Darcy, a scalar time series, or CFD."""
    if isinstance(shapes.get("nu"), tuple) and isinstance(shapes.get("tensor"), tuple) \
            and len(shapes["tensor"]) == len(shapes["nu"]) + 1:
        return "nu", "tensor"
    for key in ("tensor", "density"):
        if isinstance(shapes.get(key), tuple) and len(shapes[key]) >= 3:
            return key, key
    return None, None


def _pdebench_groups(f: h5py.File, path: Path, opt: ReadOptions) -> Source:
    """PDEBench's per-sample layout: groups '0000', ... each with data (Nt, nx[, ny], C)."""
    names = sorted(f.keys())
    first = f[names[0]]
    if "data" not in first:
        raise ValueError(f"group {names[0]!r} of {str(path)!r} has no 'data' (has {sorted(first.keys())})")
    shape = first["data"].shape
    if len(shape) < 3:
        raise ValueError(f"{names[0]}/data has shape {shape}; expected (Nt, nx[, ny], channels)")
    grid, n_ch = tuple(shape[1:-1]), shape[-1]
    channel = 0 if opt.channel is None else opt.channel
    if not 0 <= channel < n_ch:
        raise ValueError(f"channel {channel} is outside the {n_ch} channels of {names[0]}/data {shape}")
    t_in, t_out = _pick_times("data", "data", shape[0], shape[0], opt)
    g = first["grid"] if "grid" in first else {}
    coords = tuple(_coord_from(g[c][()] if c in g else None, m) for c, m in zip("xyz", grid, strict=False))
    keys: dict[str, Any] = {"a": "<group>/data", "u": "<group>/data", "t_in": t_in, "t_out": t_out,
                            "channel": channel}
    if "t" in g:
        tc = np.ravel(g["t"][()])
        keys.update({"t_in_value": float(tc[t_in]), "t_out_value": float(tc[t_out])} if t_out < tc.size else {})

    def read(lo: int, hi: int, s: int) -> tuple[np.ndarray, np.ndarray]:
        a, u = [], []
        for name in names[lo:hi]:
            d = f[name]["data"]
            if d.shape != shape:
                raise ValueError(f"{name}/data has shape {d.shape}, but {names[0]}/data has {shape}")
            a.append(_h5_take(d, (t_in, *_strided(len(grid), s), channel)))
            u.append(_h5_take(d, (t_out, *_strided(len(grid), s), channel)))
        return np.stack(a), np.stack(u)

    return Source(layout="pdebench per-sample groups", n_samples=len(names), grid=grid, coords=coords,
                  periodic=False, equation=path.stem, keys=keys, read=read,
                  params={"first_group": names[0], "last_group": names[-1]})


# ----------------------------------------------------------------------------- The Well


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _well_periodic(f: h5py.File) -> bool:
    """True when every boundary condition in the file is periodic (also when none is given)."""
    bcs = f.get("boundary_conditions")
    types = [_text(g.attrs.get("bc_type", "")).lower() for g in (bcs.values() if bcs is not None else ())]
    return all(t == "periodic" for t in types)


def _well_field(f: h5py.File, name: str | None, names: list[str], path: Path) -> h5py.Dataset:
    if name is None:
        if len(names) != 1:
            raise ValueError(f"{str(path)!r} has fields {names}: choose one with --field")
        name = names[0]
    if name not in names:
        raise ValueError(f"{str(path)!r} has no field {name!r} in t0_fields (has {names})")
    ds = f["t0_fields"][name]
    if not bool(ds.attrs.get("time_varying", True)) or ds.ndim < 3:
        raise ValueError(f"field {name!r} {ds.shape} does not vary in time: no one-step pairs")
    if not bool(ds.attrs.get("sample_varying", True)):
        raise ValueError(f"field {name!r} {ds.shape} is the same for every trajectory: no samples")
    return ds


def _read_well(stack: contextlib.ExitStack, path: Path, opt: ReadOptions) -> Source:
    f = _h5(stack, path, "well")
    if "t0_fields" not in f:
        raise _no_layout(path, "well", _h5_shapes(f))
    names = sorted(f["t0_fields"].keys())
    da = _well_field(f, opt.input_key or opt.field, names, path)
    du = _well_field(f, opt.target_key or opt.field or da.name.rsplit("/", 1)[-1], names, path)
    if da.shape != du.shape:
        raise ValueError(f"fields {da.name} {da.shape} and {du.name} {du.shape} differ in shape")
    n_traj, n_t, grid = da.shape[0], da.shape[1], tuple(da.shape[2:])
    if n_t < 2:
        raise ValueError(f"field {da.name!r} has {n_t} time step: one-step pairs need two")
    pool = parse_indices(opt.trajectories, n_traj, "trajectory")
    steps = parse_indices(opt.steps, n_t - 1, "time step")
    times = np.unique(np.concatenate([steps, steps + 1]))
    where = {int(t): i for i, t in enumerate(times)}
    dims = f["dimensions"] if "dimensions" in f else {}
    spatial = [_text(d) for d in np.ravel(dims.attrs.get("spatial_dims", []))] if dims else []
    coords = tuple(_coord_from(dims[d][()] if d in dims else None, m) for d, m in zip(spatial, grid, strict=False))
    coords = coords + (None,) * (len(grid) - len(coords))

    def read(lo: int, hi: int, s: int) -> tuple[np.ndarray, np.ndarray]:
        a, u = [], []
        for tr in pool[lo:hi]:
            index = (int(tr), times.tolist(), *_strided(len(grid), s))
            block_a = _h5_take(da, index)
            block_u = block_a if du.name == da.name else _h5_take(du, index)
            a.append(block_a[[where[int(t)] for t in steps]])
            u.append(block_u[[where[int(t) + 1] for t in steps]])
        return np.concatenate(a), np.concatenate(u)

    sim = [_text(p) for p in np.ravel(f.attrs.get("simulation_parameters", []))]
    params = {p: np.asarray(f.attrs[p]).tolist() for p in sim if p in f.attrs}
    return Source(
        layout="well t0_fields", n_samples=pool.size, grid=grid, coords=coords, periodic=_well_periodic(f),
        equation=_text(f.attrs.get("dataset_name", path.stem)), read=read, params=params,
        keys={"a": da.name, "u": du.name, "steps": steps.tolist(), "lag": 1, "trajectories": pool.tolist()},
        rows_per_sample=steps.size, sample_word="trajectory", sample_ids=pool)


# ----------------------------------------------------------------------------- neuralop-pt


def _torch_load(path: Path) -> Any:
    """torch.load with weights_only=True (tensors and plain containers only), memory-mapped."""
    try:
        import torch
    except ImportError:
        raise ValueError("format neuralop-pt needs torch, an optional extra: pip install -e .[torch]") from None
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as err:  # files of the legacy (non-zip) format cannot be memory-mapped
            if "mmap" not in str(err):
                raise
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # weights_only refuses arbitrary pickles; torch raises several types
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        raise ValueError(f"{str(path)!r} is not a torch.save file of tensors that loads with "
                         f"weights_only=True ({type(err).__name__}: {first})") from None


def _read_neuralop_pt(stack: contextlib.ExitStack, path: Path, opt: ReadOptions) -> Source:
    data = _torch_load(path)
    if not isinstance(data, dict):
        raise ValueError(f"{str(path)!r} holds a {type(data).__name__}, not a dict of tensors {{'x': a, 'y': u}}")
    shapes = {str(k): tuple(v.shape) if hasattr(v, "shape") else type(v).__name__ for k, v in data.items()}
    a_key, u_key = opt.input_key or "x", opt.target_key or "y"
    for key in (a_key, u_key):
        if key not in data or not hasattr(data[key], "shape"):
            if opt.input_key or opt.target_key:
                raise ValueError(f"{str(path)!r} has no tensor {key!r} (has {sorted(shapes)})")
            raise _no_layout(path, "neuralop-pt", shapes)
    ca, a_grid = _squeeze_channel(shapes[a_key], opt.channel, a_key)
    cu, u_grid = _squeeze_channel(shapes[u_key], opt.channel, u_key)
    _same_grid(a_key, a_grid, u_key, u_grid)
    n = _same_count(shapes[a_key][0], shapes[u_key][0], a_key, u_key)

    def take(key: str, c: int | None, lo: int, hi: int, s: int) -> np.ndarray:
        t = data[key][lo:hi] if c is None else data[key][lo:hi, c]
        return t[(slice(None), *_strided(len(a_grid), s))].double().numpy()

    return Source(layout="neuralop-pt dict", n_samples=n, grid=a_grid, coords=(None,) * len(a_grid),
                  periodic="darcy" not in path.name.lower(), equation=path.stem,
                  keys={"a": a_key, "u": u_key, **({"channel": opt.channel} if opt.channel is not None else {})},
                  read=lambda lo, hi, s: (take(a_key, ca, lo, hi, s), take(u_key, cu, lo, hi, s)),
                  params={"keys": sorted(shapes)})


# ----------------------------------------------------------------------------- npz / npy


def _np_load(path: Path, **kw: Any) -> Any:
    try:
        return np.load(path, allow_pickle=False, **kw)
    except Exception as err:  # numpy raises several types for a file that is not .npy/.npz
        raise ValueError(f"{str(path)!r} is not a readable .npy/.npz file ({type(err).__name__})") from None


def _read_numpy(stack: contextlib.ExitStack, path: Path, opt: ReadOptions) -> Source:
    if path.suffix.lower() == ".npy":
        if not opt.target_key:
            raise ValueError("two .npy files: SRC is a's file and --target names u's .npy file")
        u_path = Path(opt.target_key)
        if not u_path.is_file():
            raise FileNotFoundError(f"no such file: {str(u_path)!r}")
        arrays = {"a": _np_load(path, mmap_mode="r"), "u": _np_load(u_path, mmap_mode="r")}
        a_key, u_key, keys = "a", "u", {"a": str(path.resolve()), "u": str(u_path.resolve())}
    else:
        z = stack.enter_context(_np_load(path))
        if not hasattr(z, "files"):
            raise ValueError(f"{str(path)!r} is a single array; an .npz with a and u (or two .npy files) is needed")
        arrays = z
        default = ("a", "u") if {"a", "u"} <= set(z.files) else ("x", "y")
        a_key, u_key = opt.input_key or default[0], opt.target_key or default[1]
        if a_key not in z.files or u_key not in z.files:
            if opt.input_key or opt.target_key:
                missing = a_key if a_key not in z.files else u_key
                raise ValueError(f"{str(path)!r} has no array {missing!r} (has {sorted(z.files)})")
            raise _no_layout(path, "npz", {k: None for k in z.files})
        keys = {"a": a_key, "u": u_key}
    cache: dict[str, np.ndarray] = {}

    def get(key: str) -> np.ndarray:  # .npz members are read whole, once; .npy ones are memory-mapped
        if key not in cache:
            try:
                arr = arrays[key]
            except Exception as err:  # e.g. an object array, which allow_pickle=False refuses
                raise ValueError(f"cannot read {key!r} from {str(path)!r} ({type(err).__name__})") from None
            if arr.dtype.kind not in "fiu":
                raise ValueError(f"{key!r} has dtype {arr.dtype}; numbers are needed")
            cache[key] = arr
        return cache[key]

    ca, a_grid = _squeeze_channel(get(a_key).shape, opt.channel, a_key)
    cu, u_grid = _squeeze_channel(get(u_key).shape, opt.channel, u_key)
    _same_grid(a_key, a_grid, u_key, u_grid)
    n = _same_count(get(a_key).shape[0], get(u_key).shape[0], a_key, u_key)

    def take(key: str, c: int | None, lo: int, hi: int, s: int) -> np.ndarray:
        index = (slice(lo, hi), *(() if c is None else (c,)), *_strided(len(a_grid), s))
        return np.array(get(key)[index], dtype=np.float64)

    return Source(layout="npy pair" if path.suffix.lower() == ".npy" else "npz", n_samples=n, grid=a_grid,
                  coords=(None,) * len(a_grid), periodic=True, equation=path.stem, keys=keys,
                  read=lambda lo, hi, s: (take(a_key, ca, lo, hi, s), take(u_key, cu, lo, hi, s)))


_READERS: dict[str, Callable[[contextlib.ExitStack, Path, ReadOptions], Source]] = {
    "fno-mat": _read_fno_mat,
    "pdebench": _read_pdebench,
    "neuralop-pt": _read_neuralop_pt,
    "well": _read_well,
    "npz": _read_numpy,
    "npy": _read_numpy,
}


# ----------------------------------------------------------------------------- the import


def _grid_coords(source: Source, periodic: bool, s: int) -> list[np.ndarray]:
    """Each axis: the file's coordinate, else arange(n)/n (periodic) or linspace(0, 1, n); strided by s."""
    out = []
    for n, c in zip(source.grid, source.coords, strict=True):
        if c is None:
            c = np.arange(n) / n if periodic else np.linspace(0.0, 1.0, n)
        out.append(np.asarray(c, dtype=np.float64)[::s])
    return out


def _check_finite(name: str, arr: np.ndarray, part: str, lo: int, source: Source) -> None:
    bad = ~np.isfinite(arr.reshape(arr.shape[0], -1)).all(axis=1)
    if bad.any():
        row = int(np.argmax(bad))
        idx = lo + row // source.rows_per_sample
        file_idx = int(source.sample_ids[idx]) if source.sample_ids is not None else idx
        raise ValueError(f"{name} has NaN or infinite values ({source.sample_word} {file_idx} of the file, "
                         f"{part} part)")


def _read_parts(source: Source, ranges: list[tuple[str, int, int]], s: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a, u, split) of the selected ranges, checked: a, u (rows, *grid_s), split (rows,)."""
    a_parts, u_parts, labels = [], [], []
    for part, lo, hi in ranges:
        a, u = source.read(lo, hi, s)
        _same_grid(str(source.keys.get("a")), a.shape[1:], str(source.keys.get("u")), u.shape[1:])
        _check_finite("a", a, part, lo, source)
        _check_finite("u", u, part, lo, source)
        a_parts.append(np.asarray(a, dtype=np.float64))
        u_parts.append(np.asarray(u, dtype=np.float64))
        labels += [part] * a.shape[0]
    return np.concatenate(a_parts), np.concatenate(u_parts), np.array(labels)


def _check_args(src: Path, fmt: str, out: Any, subsample: Any) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if not src.is_file():
        raise FileNotFoundError(f"no such file: {str(src)!r}")
    if out is not None and Path(out).suffix.lower() != ".nc":
        raise ValueError(f"output file must end in .nc, got {str(out)!r}")
    if not isinstance(subsample, int | np.integer) or subsample < 1:
        raise ValueError(f"subsample must be a positive integer, got {subsample!r}")


def import_dataset(
    src: str | os.PathLike[str],
    *,
    format: str,
    out: str | os.PathLike[str] | None = None,
    subsample: int = 1,
    n_train: int | None = None,
    n_test: int | None = None,
    test_from: int | None = None,
    n_calibration: int = 0,
    input_key: str | None = None,
    target_key: str | None = None,
    t_in: int | None = None,
    t_out: int | None = None,
    channel: int | None = None,
    field: str | None = None,
    trajectories: Sequence[int] | str | None = None,
    steps: Sequence[int] | str | None = None,
    periodic: bool | None = None,
    equation: str | None = None,
) -> xr.Dataset:
    """Import a subset of a dataset file in one of ``FORMATS`` as an operator dataset.

    Returns the Dataset (a, u: (sample, nx[, ny]) float64; split: (sample,)), and writes it
    atomically to ``out`` (.nc) when given. ``subsample``: stride on every spatial axis
    (421 points, subsample 5 -> 85). Sample ranges: see ``split_ranges`` (for ``well`` they
    count trajectories, each giving one pair per time step of ``steps``). ``input_key`` /
    ``target_key``: the arrays that become a and u (for two .npy files, ``target_key`` is
    u's path). ``t_in`` / ``t_out``: time indices when a / u are frames of a time series
    (default first / last). ``channel``: for arrays with a channel axis. ``field``,
    ``trajectories``, ``steps``: The Well's field, trajectory and time-step selections
    (``parse_indices`` forms). ``periodic``: overrides the layout's default. ``equation``:
    overrides the name recorded (default: the layout, or the file's stem).
    """
    t0 = time.perf_counter()
    path = Path(src)
    _check_args(path, format, out, subsample)
    opt = ReadOptions(input_key=input_key, target_key=target_key, t_in=t_in, t_out=t_out, channel=channel,
                      field=field, trajectories=trajectories, steps=steps)
    with contextlib.ExitStack() as stack:
        source = _READERS[format](stack, path, opt)
        if len(source.grid) not in (1, 2):
            raise ValueError(f"the data are on a {len(source.grid)}-D grid {source.grid}; "
                             "operator datasets hold 1-D and 2-D grids")
        if subsample > min(source.grid):
            raise ValueError(f"subsample {subsample} is larger than the {'x'.join(map(str, source.grid))} grid")
        ranges = split_ranges(source.n_samples, n_train=n_train, n_test=n_test, test_from=test_from,
                              n_calibration=n_calibration)
        a, u, split = _read_parts(source, ranges, subsample)
    is_periodic = source.periodic if periodic is None else bool(periodic)
    coords = _grid_coords(source, is_periodic, subsample)
    source_keys = {**source.keys, "subsample": subsample, "layout": source.layout,
                   "samples": {part: [lo, hi] for part, lo, hi in ranges}}
    config = {"format": format, "subsample": subsample, "n_train": n_train, "n_test": n_test,
              "test_from": test_from, "n_calibration": n_calibration, "input": input_key, "target": target_key,
              "t_in": t_in, "t_out": t_out, "channel": channel, "field": field,
              "trajectories": trajectories, "steps": steps, "periodic": periodic}
    ds = operator_dataset(
        a, u, x=coords[0], y=coords[1] if len(coords) == 2 else None, split=split,
        equation=equation or source.equation, method="import", params=source.params, config=config,
        wall_time_s=time.perf_counter() - t0,
        attrs={"periodic": is_periodic, "source": str(path.resolve()), "source_keys": source_keys})
    if out is not None:
        write_dataset(ds, out)
    return ds
