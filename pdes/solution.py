"""The one data model every solver returns (DESIGN.md section 2), its files and comparisons.

* ``solution_dataset(u, t=t, x=x, ...)`` builds the ``xarray.Dataset`` of a solution on a
  grid: dims ``(t, x)`` or ``(t, x, y)``, float64 coordinates with ``units`` and
  ``long_name``, variables ``u`` and optionally ``u_std``, ``u_samples`` (dims ``member``,
  ...), ``u_true``; attrs ``equation``, ``method``, ``params``, ``config``, ``seed``,
  ``created``, ``version``, ``device``, ``wall_time_s``.
* ``operator_dataset(a, u, x=x, ...)`` builds an operator-learning dataset: ``a`` and
  ``u`` with dims ``(sample, x[, y])`` and optional ``split``.
* ``write_dataset`` writes netCDF-4 (engine h5netcdf) atomically; ``read_dataset`` reads one
  back and raises ``ValueError``/``FileNotFoundError`` with a one-line message.
* ``compare(a, b)`` gives relative L2, max abs error and the error per time, interpolating
  onto the coarser grid when the grids differ.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from plumbing.files import atomic_path
from plumbing.jsonio import dumps

__all__ = [
    "Comparison",
    "compare",
    "device_name",
    "operator_dataset",
    "read_dataset",
    "rel_l2",
    "solution_dataset",
    "write_dataset",
]

_COORD_META = {
    "t": ("1", "time"),
    "x": ("1", "space"),
    "y": ("1", "space (second dimension)"),
    "sample": ("1", "sample index"),
    "member": ("1", "ensemble member or dropout draw"),
}
REQUIRED_ATTRS = ("equation", "method", "params", "config", "seed", "created", "version", "device", "wall_time_s")


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("sciml-workbench")
    except Exception:  # not installed (running from a source tree)
        return "0+unknown"


def device_name() -> str:
    """The device the computation ran on, e.g. 'cpu' or 'gpu:NVIDIA H100 80GB HBM3'."""
    try:
        import jax

        dev = jax.devices()[0]
        return f"{dev.platform}:{dev.device_kind}"
    except Exception:  # jax missing or not initialisable
        return "cpu"


def _json(value: Any) -> str:
    if value is None:
        return "{}"
    if isinstance(value, str):
        return value
    return dumps(value, sort_keys=True)


def _coord(name: str, values: Any) -> xr.DataArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"coordinate {name} must be a non-empty 1-D array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"coordinate {name} has non-finite values")
    units, long_name = _COORD_META.get(name, ("1", name))
    return xr.DataArray(arr, dims=(name,), attrs={"units": units, "long_name": long_name})


def _attrs(
    equation: str,
    method: str,
    params: Mapping[str, Any] | str | None,
    config: Any,
    seed: int | None,
    wall_time_s: float | None,
    extra: Mapping[str, Any] | None,
) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "equation": str(equation),
        "method": str(method),
        "params": _json(params),
        "config": _json(config),
        "seed": int(seed) if seed is not None else -1,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "version": _version(),
        "device": device_name(),
        "wall_time_s": float(wall_time_s) if wall_time_s is not None else float("nan"),
    }
    for key, value in (extra or {}).items():
        attrs[key] = value if isinstance(value, str | int | float) else _json(value)
    return attrs


def solution_dataset(
    u: Any,
    *,
    t: Any,
    x: Any,
    y: Any | None = None,
    equation: str,
    method: str,
    params: Mapping[str, Any] | str | None = None,
    config: Any = None,
    seed: int | None = None,
    wall_time_s: float | None = None,
    u_true: Any | None = None,
    u_std: Any | None = None,
    u_samples: Any | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """The Dataset of a solution on a grid. u, u_true, u_std: (nt, nx) or (nt, nx, ny);
    u_samples: (members, nt, nx[, ny]). Everything is stored as float64."""
    coords = {"t": _coord("t", t), "x": _coord("x", x)}
    dims: tuple[str, ...] = ("t", "x")
    if y is not None:
        coords["y"] = _coord("y", y)
        dims = ("t", "x", "y")
    shape = tuple(coords[d].size for d in dims)

    def field_(name: str, value: Any, field_dims: tuple[str, ...], field_shape: tuple[int, ...]) -> xr.DataArray:
        arr = np.asarray(value, dtype=np.float64)
        if arr.shape != field_shape:
            raise ValueError(f"{name} has shape {arr.shape}, expected {field_shape} for dims {field_dims}")
        return xr.DataArray(arr, dims=field_dims)

    data = {"u": field_("u", u, dims, shape)}
    data["u"].attrs = {"units": "1", "long_name": "solution" if u_std is None else "predictive mean"}
    if u_true is not None:
        data["u_true"] = field_("u_true", u_true, dims, shape)
        data["u_true"].attrs = {"units": "1", "long_name": "exact or reference solution"}
    if u_std is not None:
        data["u_std"] = field_("u_std", u_std, dims, shape)
        data["u_std"].attrs = {"units": "1", "long_name": "predictive standard deviation"}
    if u_samples is not None:
        samples = np.asarray(u_samples, dtype=np.float64)
        data["u_samples"] = field_("u_samples", samples, ("member", *dims), (samples.shape[0], *shape))
        data["u_samples"].attrs = {"units": "1", "long_name": "ensemble members or dropout draws"}
        coords["member"] = _coord("member", np.arange(samples.shape[0]))
    return xr.Dataset(data, coords=coords, attrs=_attrs(equation, method, params, config, seed, wall_time_s, attrs))


def operator_dataset(
    a: Any,
    u: Any,
    *,
    x: Any,
    y: Any | None = None,
    split: Any | None = None,
    equation: str,
    method: str = "spectral",
    params: Mapping[str, Any] | str | None = None,
    config: Any = None,
    seed: int | None = None,
    wall_time_s: float | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """An operator-learning dataset: a, u: (sample, nx[, ny]); split: (sample,) of 'train',
    'test' or 'calibration' (held out for recalibration, DESIGN.md section 7). Boolean attrs
    (such as ``periodic``) are stored as 1/0: netCDF has no boolean attribute."""
    a = np.asarray(a, dtype=np.float64)
    u = np.asarray(u, dtype=np.float64)
    coords = {"sample": _coord("sample", np.arange(a.shape[0])), "x": _coord("x", x)}
    dims: tuple[str, ...] = ("sample", "x")
    if y is not None:
        coords["y"] = _coord("y", y)
        dims = ("sample", "x", "y")
    shape = tuple(coords[d].size for d in dims)
    if a.shape != shape:
        raise ValueError(f"a has shape {a.shape}, expected {shape}")
    if u.shape != shape:
        raise ValueError(f"u has shape {u.shape}, expected {shape} (same grid as a)")
    data = {
        "a": xr.DataArray(a, dims=dims, attrs={"units": "1", "long_name": "input function"}),
        "u": xr.DataArray(u, dims=dims, attrs={"units": "1", "long_name": "target function"}),
    }
    if split is not None:
        s = np.asarray(split).astype(str)
        if s.shape != (shape[0],) or not set(np.unique(s)) <= {"train", "test", "calibration"}:
            raise ValueError("split must be one of 'train'/'test'/'calibration' per sample")
        data["split"] = xr.DataArray(s.astype(object), dims=("sample",),
                                     attrs={"long_name": "train/calibration/test split"})
    extra = {k: int(v) if isinstance(v, bool | np.bool_) else v for k, v in (attrs or {}).items()}
    return xr.Dataset(data, coords=coords, attrs=_attrs(equation, method, params, config, seed, wall_time_s, extra))


def write_dataset(ds: xr.Dataset, path: str | os.PathLike[str]) -> Path:
    """Write ds to path as netCDF-4 (h5netcdf) atomically: a temporary file beside the
    target is written, then renamed over it, so a crash never leaves a half-written file."""
    with atomic_path(path, suffixes=(".nc",)) as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf", invalid_netcdf=False)
    return Path(path)


def read_dataset(path: str | os.PathLike[str], *, load: bool = True) -> xr.Dataset:
    """Read a netCDF file written by ``write_dataset``. Raises FileNotFoundError or a
    one-line ValueError for a file that is not readable netCDF."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {str(path)!r}")
    try:
        ds = xr.open_dataset(path, engine="h5netcdf")
        if load:
            ds = ds.load()
            ds.close()
    except Exception as err:  # h5py/xarray raise many types for a corrupt file
        raise ValueError(f"{str(path)!r} is not a readable netCDF-4 file ({type(err).__name__})") from None
    return ds


def rel_l2(pred: Any, ref: Any) -> float:
    """||pred - ref||_2 / ||ref||_2 over all points (flattened)."""
    p = np.asarray(pred, dtype=np.float64).ravel()
    r = np.asarray(ref, dtype=np.float64).ravel()
    if p.shape != r.shape:
        raise ValueError(f"shape mismatch: {p.shape} vs {r.shape}")
    denom = np.linalg.norm(r)
    return float(np.linalg.norm(p - r) / denom) if denom > 0 else float(np.linalg.norm(p - r))


@dataclass
class Comparison:
    """The result of ``compare``: headline numbers plus the error per time."""

    rel_l2: float
    max_abs: float
    rel_l2_per_t: np.ndarray
    t: np.ndarray
    interpolated: bool
    grid: dict[str, int] = field(default_factory=dict)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "rel_l2": self.rel_l2,
            "max_abs": self.max_abs,
            "interpolated": self.interpolated,
            "grid": self.grid,
            "note": self.note,
            "t": self.t.tolist(),
            "rel_l2_per_t": self.rel_l2_per_t.tolist(),
        }


def _spatial_dims(da: xr.DataArray) -> list[str]:
    return [d for d in da.dims if d in ("t", "x", "y")]


def compare(a: xr.Dataset, b: xr.Dataset, var: str = "u", ref_var: str | None = None) -> Comparison:
    """Compare a[var] against the reference b[ref_var or var].

    Relative L2 = ||a - b|| / ||b||, max abs = max |a - b|, and relative L2 per time.
    When the grids differ, both are linearly interpolated onto the coarser grid (per
    dimension, the one with fewer points) and ``interpolated`` is True. Datasets on
    different domains or with different dims raise ``ValueError``.
    """
    ref_var = ref_var or var
    for name, ds, v in (("first", a, var), ("second", b, ref_var)):
        if v not in ds:
            raise ValueError(f"the {name} dataset has no variable {v!r} (has {sorted(ds.data_vars)})")
    da, db = a[var], b[ref_var]
    dims_a, dims_b = _spatial_dims(da), _spatial_dims(db)
    if dims_a != dims_b or set(da.dims) != set(dims_a):
        raise ValueError(f"cannot compare dims {tuple(da.dims)} with {tuple(db.dims)}")
    target: dict[str, np.ndarray] = {}
    interpolated = False
    for d in dims_a:
        ca, cb = np.asarray(a[d]), np.asarray(b[d])
        span_a, span_b = (ca.min(), ca.max()), (cb.min(), cb.max())
        tol = 1e-9 * max(1.0, abs(span_a[1] - span_a[0]))
        if abs(span_a[0] - span_b[0]) > tol or abs(span_a[1] - span_b[1]) > tol:
            raise ValueError(
                f"datasets are on different domains in {d}: [{span_a[0]:g}, {span_a[1]:g}] vs [{span_b[0]:g}, {span_b[1]:g}]"
            )
        if ca.shape == cb.shape and np.allclose(ca, cb, rtol=0, atol=tol):
            target[d] = ca
        else:
            interpolated = True
            target[d] = ca if ca.size <= cb.size else cb
    if interpolated:
        da = da.interp({d: target[d] for d in dims_a})
        db = db.interp({d: target[d] for d in dims_a})
    else:
        db = db.assign_coords({d: da[d] for d in dims_a})
    ua, ub = np.asarray(da.transpose(*dims_a)), np.asarray(db.transpose(*dims_a))
    if not (np.all(np.isfinite(ua)) and np.all(np.isfinite(ub))):
        raise ValueError("cannot compare: a field contains NaN or infinite values")
    diff = ua - ub
    denom = np.linalg.norm(ub)
    rel = float(np.linalg.norm(diff) / denom) if denom > 0 else float(np.linalg.norm(diff))
    if "t" in dims_a:
        axes = tuple(range(1, diff.ndim))
        num_t = np.sqrt(np.sum(diff**2, axis=axes))
        den_t = np.sqrt(np.sum(ub**2, axis=axes))
        per_t = np.where(den_t > 0, num_t / np.where(den_t > 0, den_t, 1.0), num_t)
        t = np.asarray(target["t"])
    else:
        per_t, t = np.array([rel]), np.array([math.nan])
    note = ""
    if interpolated:
        note = "grids differ: both fields were linearly interpolated onto the coarser grid " + "x".join(
            str(target[d].size) for d in dims_a
        )
    return Comparison(
        rel_l2=rel,
        max_abs=float(np.max(np.abs(diff))),
        rel_l2_per_t=per_t,
        t=t,
        interpolated=interpolated,
        grid={d: int(target[d].size) for d in dims_a},
        note=note,
    )
