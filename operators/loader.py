"""Reading an operator dataset a batch at a time: each process reads only its rows.

The streaming path of ``operators.train.train_fno`` (``TrainConfig.loader``): the dataset is
never loaded whole. ``open_source(data, nx)`` gives a ``FileSource`` for a netCDF-4 / HDF5 path
(read lazily with h5py: a read is one hyperslab selection of the rows asked for, strided to
``nx`` points per axis, straight from the file with no chunk cache for uncompressed data) or
an ``ArraySource`` for data already in memory. Both answer ``read(part, positions)``: the
float32 ``a`` and ``u`` of the given positions within the "train" or "test" samples, in the
order asked for.

``Prefetch(produce, n)`` runs ``produce(0), ..., produce(n - 1)`` in a background thread, at
most ``depth`` items ahead of the consumer: the next batch is read while the devices compute
the current step. ``statistics(source)`` computes, in float64, the means and standard
deviations of the training inputs and targets (the FNO's normaliser) with each process
reading its contiguous share of the rows, and checks that every value is finite.

Memory: a batch (and ``depth`` batches in flight) per process, plus the ``split`` variable
(one string per sample) and the row indices; nothing scales with the grid times the sample
count.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ArraySource", "FileSource", "Prefetch", "Statistics", "available_memory", "file_nbytes", "open_source",
           "statistics"]

READ_BYTES = 32 << 20  # rows per read in the statistics pass and the test evaluation: about 32 MB of float64


def available_memory() -> int:
    """Bytes of memory available to new allocations (MemAvailable of /proc/meminfo; else the
    free pages)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 1 << 62


def file_nbytes(path: str | os.PathLike[str]) -> int:
    """The size of a file on disk (0 when it does not exist)."""
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


class ArraySource:
    """Rows of an ``operators.train.OperatorData`` already in memory."""

    def __init__(self, data: Any) -> None:
        self._parts = {"train": (data.a_train, data.u_train), "test": (data.a_test, data.u_test)}
        self.spatial = tuple(data.a_train.shape[1:])
        self.dim = len(self.spatial)
        self.periodic = bool(data.periodic)
        self.n_train = int(data.a_train.shape[0])
        self.n_test = int(data.a_test.shape[0])

    def read(self, part: str, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a, u = self._parts[part]
        return np.asarray(a[positions], np.float32), np.asarray(u[positions], np.float32)

    def close(self) -> None:
        pass


class FileSource:
    """Rows of an operator dataset file (netCDF-4 / HDF5), read with h5py hyperslabs.

    The checks are those of ``operators.train.load_operator_data`` (one-line ValueError or
    FileNotFoundError), except the one for NaN, which ``statistics`` makes while reading."""

    def __init__(self, path: str | os.PathLike[str], nx: int | None = None) -> None:
        import h5netcdf
        import h5py

        from operators.train import grid_stride, is_periodic

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no such file: {str(self.path)!r}")
        where = repr(str(self.path))
        try:
            with h5netcdf.File(self.path, "r") as f:
                names = set(f.variables)
                dims = {k: tuple(f.variables[k].dimensions) for k in ("a", "u", "split") if k in names}
                shapes = {k: tuple(f.variables[k].shape) for k in ("a", "u", "split") if k in names}
                periodic = is_periodic(f)
                split = np.asarray(f.variables["split"][...]).astype(str) if "split" in names else None
        except Exception as err:  # h5py/h5netcdf raise many types for a file that is not netCDF-4
            raise ValueError(f"{where} is not a readable netCDF-4 file ({type(err).__name__})") from None
        missing = [v for v in ("a", "u") if v not in names]
        if missing:
            raise ValueError(f"dataset has no variable {missing[0]!r}: an operator dataset needs 'a' and 'u'")
        if dims["a"] != dims["u"] or shapes["a"] != shapes["u"]:
            sizes = {k: dict(zip(dims[k], shapes[k], strict=True)) for k in ("a", "u")}
            raise ValueError(f"a {sizes['a']} and u {sizes['u']} are on different grids")
        if dims["a"][0] != "sample" or len(shapes["a"]) not in (2, 3):
            raise ValueError(f"a must have dims (sample, x[, y]), got {dims['a']}")
        if len(shapes["a"]) == 3 and shapes["a"][1] != shapes["a"][2]:
            raise ValueError(f"2D grids must be square, got {shapes['a'][1]} x {shapes['a'][2]}")
        if split is None:
            raise ValueError("dataset has no 'split' variable: training needs train and test samples")
        tr, te = split == "train", split == "test"
        if not tr.any() or not te.any():
            raise ValueError(f"dataset needs both train and test samples, has {int(tr.sum())} train / {int(te.sum())} test")
        self.periodic = periodic
        self.stored = tuple(shapes["a"][1:])
        self.dim = len(self.stored)
        self._strides = tuple(1 if nx is None else grid_stride(n, nx, periodic) for n in self.stored)
        self.spatial = tuple(len(range(0, n, s)) for n, s in zip(self.stored, self._strides, strict=True))
        self._rows = {"train": np.flatnonzero(tr), "test": np.flatnonzero(te)}
        self.n_train, self.n_test = int(tr.sum()), int(te.sum())
        self._file = h5py.File(self.path, "r", rdcc_nbytes=0)  # no chunk cache: read only the rows asked for
        self._ds = {k: self._file[k] for k in ("a", "u")}
        if any(ds.compression is not None for ds in self._ds.values()):  # compressed chunks: cache them after all
            self._file.close()
            self._file = h5py.File(self.path, "r", rdcc_nbytes=READ_BYTES)
            self._ds = {k: self._file[k] for k in ("a", "u")}
        self._lock = threading.Lock()

    def _select(self, rows: np.ndarray) -> tuple[Any, ...]:
        spatial = tuple(slice(None, None, s) for s in self._strides)
        if rows.size and rows[-1] - rows[0] + 1 == rows.size:  # contiguous: one plain slice
            return (slice(int(rows[0]), int(rows[-1]) + 1), *spatial)
        return (rows, *spatial)

    def read(self, part: str, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = self._rows[part][np.asarray(positions, dtype=np.int64)]
        order = np.argsort(rows, kind="stable")
        key = self._select(rows[order])  # h5py wants increasing rows (a permutation has no repeats)
        out = []
        with self._lock:
            for name in ("a", "u"):
                got = np.asarray(self._ds[name][key], np.float32) if rows.size else np.zeros((0, *self.spatial),
                                                                                              np.float32)
                arr = np.empty_like(got)
                arr[order] = got
                out.append(arr)
        return out[0], out[1]

    def close(self) -> None:
        self._file.close()


def open_source(data: Any, nx: int | None = None) -> FileSource | ArraySource:
    """A ``FileSource`` for a path, else an ``ArraySource`` of ``load_operator_data(data, nx)``."""
    if isinstance(data, str | os.PathLike):
        return FileSource(data, nx)
    from operators.train import load_operator_data

    return ArraySource(load_operator_data(data, nx))


def share(n: int, index: int, count: int) -> tuple[int, int]:
    """The contiguous share [lo, hi) of n items that process ``index`` of ``count`` handles."""
    return n * index // count, n * (index + 1) // count


@dataclass(frozen=True)
class Statistics:
    """Scalar means and standard deviations of the training inputs and targets (float64)."""

    a_mean: float
    a_std: float
    u_mean: float
    u_std: float


def statistics(source: FileSource | ArraySource, index: int = 0, count: int = 1,
               allsum: Callable[[Any], Any] | None = None) -> Statistics:
    """Means and standard deviations of the train part, each process reading its share (``index``
    of ``count``) and ``allsum`` adding the processes' sums; also reads its share of the test
    part. ValueError naming the part when any value is NaN or infinite."""
    sums = np.zeros(7)  # count, sum a, sum a^2, sum u, sum u^2, non-finite train, non-finite test
    per_row = 8 * int(np.prod(source.spatial))
    step = max(1, READ_BYTES // per_row)
    for part, n in (("train", source.n_train), ("test", source.n_test)):
        lo, hi = share(n, index, count)
        for start in range(lo, hi, step):
            a, u = source.read(part, np.arange(start, min(start + step, hi)))
            bad = float((~np.isfinite(a)).sum() + (~np.isfinite(u)).sum())
            if part == "test":
                sums[6] += bad
                continue
            sums[5] += bad
            a64, u64 = a.astype(np.float64), u.astype(np.float64)
            sums[:5] += (a.shape[0] * a[0].size, a64.sum(), (a64 * a64).sum(), u64.sum(), (u64 * u64).sum())
    if allsum is not None:
        sums = np.asarray(allsum(sums), dtype=np.float64)
    if sums[5]:
        raise ValueError("a_train or u_train contains NaN or infinite values")
    if sums[6]:
        raise ValueError("a_test or u_test contains NaN or infinite values")
    n = sums[0]
    a_mean, u_mean = sums[1] / n, sums[3] / n
    a_std = float(np.sqrt(max(sums[2] / n - a_mean**2, 0.0)))
    u_std = float(np.sqrt(max(sums[4] / n - u_mean**2, 0.0)))
    return Statistics(float(a_mean), a_std, float(u_mean), u_std)


class _Raised:
    def __init__(self, err: BaseException) -> None:
        self.err = err


class Prefetch:
    """``produce(0), ..., produce(n - 1)`` in order, computed in a background thread at most
    ``depth`` items ahead. An exception in ``produce`` is raised in the consumer. Use as a
    context manager (``close`` stops the thread)."""

    def __init__(self, produce: Callable[[int], Any], n: int, depth: int = 2) -> None:
        self._n = n
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, args=(produce,), daemon=True, name="prefetch")
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _work(self, produce: Callable[[int], Any]) -> None:
        try:
            for i in range(self._n):
                if self._stop.is_set() or not self._put(produce(i)):
                    return
        except BaseException as err:  # handed to the consumer
            self._put(_Raised(err))

    def __iter__(self) -> Iterator[Any]:
        for _ in range(self._n):
            item = self._queue.get()
            if isinstance(item, _Raised):
                raise item.err
            yield item

    def close(self) -> None:
        self._stop.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout=10.0)

    def __enter__(self) -> Prefetch:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
