"""Evaluation of a trained FNO: PDEBench's error metrics, zero-shot super-resolution, plots.

``evaluate(model, data, nx=[256, 1024])`` predicts the test samples (the ``split == "test"``
part when the dataset has a split, else every sample) on each requested grid (the stored
grid subsampled by striding; the model was possibly trained on another one: zero-shot
super-resolution) and returns one metrics dict per grid, ``error_metrics(pred, true)``.

Metrics (PDEBench: Takamoto et al., NeurIPS 2022 Datasets and Benchmarks, implemented in
``metric_func`` of ``pdebench/models/metrics.py``; ours are written from those definitions,
not copied). E = pred - true; a *frame* is one sample at one predicted time (without a time
axis, one sample); mean_x / max_x run over the N points of the spatial grid:

| key | PDEBench | definition |
|---|---|---|
| ``rel_l2`` (``_std``, ``_median``, ``_min``, ``_max``) | -- (the FNO paper's test error) | per sample norm(E) / norm(true) (L2 over all its predicted points); mean (std, ...) over samples |
| ``rmse`` | RMSE | mean over frames of sqrt(mean_x E^2) |
| ``nrmse`` | nRMSE | mean over frames of sqrt(mean_x E^2) / sqrt(mean_x true^2) |
| ``crmse`` | cRMSE | mean over times of sqrt(mean over samples of (mean_x E)^2): the error of the conserved mean |
| ``brmse`` | bRMSE | mean over frames of sqrt(mean of E^2 over the boundary points): the first and last point of every spatial axis (1D: 2 values; 2D: the 4 edges, nx + nx + ny + ny values, corners twice) |
| ``max_abs`` | Max error | max abs(E) over all predicted points (PDEBench averages the per-time maximum over times; the same without a time axis) |
| ``frmse_low``, ``frmse_mid``, ``frmse_high`` | fRMSE low / mid / high | see below; bands iLow = 4, iHigh = 12 |

fRMSE: with the error's Fourier coefficients e_k = (1/N) sum_x E(x) exp(-2 pi i k.x) (unit
domain length, PDEBench's Lx = 1: their |FFT| / N * Lx), the shell spectrum of a frame is
F_s = sqrt(mean over samples of sum_{floor(|k|) = s} w_k |e_k|^2), where |k| is the integer
wavenumber's length and each real mode counts once (w_k = 1/2 for a pair k, -k, w_k = 1 where
k = -k on the grid, i.e. the mean and the Nyquist modes; in 1D that is exactly their rfft
bins). Shells run over s = 0 .. nx / 2 in 1D (the rfft bins) and s = 0 .. min(n) / 2 - 1 in 2D,
as PDEBench's. Each band value is the mean of F_s over its shells: low s < 4, mid
4 <= s < 12, high s >= 12 (NaN if the grid has no such shell), then the mean over times.
So an error A cos(2 pi k.x) in one mode, 1 <= floor(|k|) = s, not a Nyquist mode, gives
F_s = A / 2 and the band value A / 2 divided by the band's number of shells. One deliberate difference: PDEBench's 2D loop visits
only i, j >= 0 of the full FFT, so modes with kx ky < 0 (an error cos 2 pi (x - y)) are not
counted there; here every mode is (on the modes it visits, the two agree).

Predicted frames only (PDEBench issue 41): with ``time_axis`` given, the first
``initial_frames`` frames along it (the given input frames of an autoregressive rollout) are
left out of every metric. One-step operator data (samples, x[, y]) have no time axis, and
every target frame is predicted.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import numpy as np

from operators.models import FNO, functional
from operators.train import grid_stride, is_periodic, predict, split_arrays

__all__ = ["BANDS", "TABLE_COLUMNS", "error_metrics", "evaluate", "plot_samples", "predictions_dataset"]

BANDS = {"low": (0, 4), "mid": (4, 12), "high": (12, None)}  # shell ranges [lo, hi): PDEBench's iLow, iHigh
TABLE_COLUMNS = ("nx", "n_samples", "rel_l2", "rel_l2_std", "rmse", "nrmse", "crmse", "brmse", "max_abs",
                 "frmse_low", "frmse_mid", "frmse_high")  # the `operators evaluate` table


def _frames(arr: np.ndarray, time_axis: int | None, initial_frames: int) -> np.ndarray:
    """(samples, times, *spatial) with the first ``initial_frames`` times dropped."""
    if time_axis is None:
        return arr[:, None]
    arr = np.moveaxis(arr, time_axis, 1)
    return arr[:, initial_frames:]


def _shell_spectrum(err: np.ndarray) -> np.ndarray:
    """F_s of the module doc: err (samples, times, *spatial) -> (times, n_shells)."""
    spatial = err.shape[2:]
    axes = tuple(range(2, err.ndim))
    e2 = np.abs(np.fft.fftn(err, axes=axes, norm="forward")) ** 2
    ks = [np.fft.fftfreq(n, 1.0 / n) for n in spatial]
    grids = np.meshgrid(*ks, indexing="ij")
    # A mode is its own conjugate where every component is 0 or the Nyquist -n/2 (k = -k mod n).
    self_conj = np.logical_and.reduce([(k == 0) | (2 * k == -n) for k, n in zip(grids, spatial, strict=True)])
    weight = np.where(self_conj, 1.0, 0.5)
    shell = np.floor(np.sqrt(sum(k.astype(np.float64) ** 2 for k in grids)) + 1e-9).astype(int)
    n_shells = spatial[0] // 2 + 1 if len(spatial) == 1 else min(spatial) // 2
    power = np.mean(e2, axis=0) * weight  # mean over samples: (times, *spatial)
    out = np.zeros((err.shape[1], n_shells))
    keep = shell < n_shells
    for t in range(err.shape[1]):
        out[t] = np.bincount(shell[keep], weights=power[t][keep], minlength=n_shells)
    return np.sqrt(out)


def _boundary_rms(err: np.ndarray) -> np.ndarray:
    """sqrt(mean of E^2 over the boundary points) per frame: (samples, times, *spatial) -> (samples, times)."""
    d = err.ndim - 2
    total, count = 0.0, 0
    for ax in range(2, err.ndim):
        for idx in (0, -1):
            face = np.take(err, idx, axis=ax)
            total = total + np.sum(face**2, axis=tuple(range(2, 2 + d - 1)))
            count += face[0, 0].size if d > 1 else 1
    return np.sqrt(total / count)


def error_metrics(pred: np.ndarray, true: np.ndarray, *, time_axis: int | None = None,
                  initial_frames: int = 0) -> dict[str, float]:
    """The metrics of the module doc (PDEBench's definitions), float64.

    pred, true: (samples, *spatial), or with a time axis at position ``time_axis`` (e.g.
    PDEBench's (samples, x, t): ``time_axis=-1``), whose first ``initial_frames`` frames are
    not counted. Returns a dict with the keys of the module doc.
    """
    pred = np.asarray(pred, np.float64)
    true = np.asarray(true, np.float64)
    if pred.shape != true.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from the truth's {true.shape}")
    if not (isinstance(initial_frames, int | np.integer) and initial_frames >= 0):
        raise ValueError(f"initial_frames must be a non-negative integer, got {initial_frames!r}")
    if time_axis is None:
        if initial_frames:
            raise ValueError("initial_frames needs a time_axis")
        if true.ndim < 2:
            raise ValueError(f"pred and true must be (samples, *spatial), got shape {true.shape}")
    else:
        if not (isinstance(time_axis, int | np.integer) and -true.ndim <= time_axis < true.ndim
                and time_axis % true.ndim != 0):
            raise ValueError(f"time_axis must name a non-sample axis of a {true.ndim}-D array, got {time_axis!r}")
        if true.ndim < 3:
            raise ValueError(f"with a time axis pred and true must be (samples, *spatial, times), got {true.shape}")
        if initial_frames >= true.shape[time_axis]:
            raise ValueError(f"initial_frames={initial_frames} leaves no predicted frame of {true.shape[time_axis]}")
    if true.shape[0] == 0 or true.size == 0:
        raise ValueError("pred and true hold no values")
    err = _frames(pred, time_axis, initial_frames) - _frames(true, time_axis, initial_frames)
    ref = _frames(true, time_axis, initial_frames)
    space = tuple(range(2, err.ndim))
    sample_axes = tuple(range(1, err.ndim))
    rel = np.sqrt(np.sum(err**2, axis=sample_axes)) / np.maximum(np.sqrt(np.sum(ref**2, axis=sample_axes)), 1e-300)
    rms = np.sqrt(np.mean(err**2, axis=space))  # (samples, times)
    ref_rms = np.maximum(np.sqrt(np.mean(ref**2, axis=space)), 1e-300)
    out = {
        "rel_l2": float(rel.mean()),
        "rel_l2_std": float(rel.std()),
        "rel_l2_median": float(np.median(rel)),
        "rel_l2_min": float(rel.min()),
        "rel_l2_max": float(rel.max()),
        "rmse": float(rms.mean()),
        "nrmse": float(np.mean(rms / ref_rms)),
        "crmse": float(np.mean(np.sqrt(np.mean(np.mean(err, axis=space) ** 2, axis=0)))),
        "brmse": float(np.mean(_boundary_rms(err))),
        "max_abs": float(np.max(np.abs(err))),
    }
    spec = _shell_spectrum(err)  # (times, shells)
    for name, (lo, hi) in BANDS.items():
        band = spec[:, lo:hi]
        out[f"frmse_{name}"] = float(np.mean(band.mean(axis=1))) if band.shape[1] else math.nan
    return out


def _test_part(ds: Any) -> tuple[np.ndarray, np.ndarray]:
    a, u, split = split_arrays(ds)
    if split is not None:
        sel = split == "test"
        if sel.any():
            return a[sel], u[sel]
    return a, u


def _subsample(arr: np.ndarray, stride: int, dim: int) -> np.ndarray:
    return arr[(slice(None),) + (slice(None, None, stride),) * dim]


def predictions_dataset(a: np.ndarray, pred: np.ndarray, true: np.ndarray, *, model: FNO, meta: dict[str, Any],
                        wall_time_s: float, source: str, x: np.ndarray | None = None,
                        periodic: bool = True) -> Any:
    """An operator Dataset with ``a``, ``u`` (the prediction) and ``u_true``; x: the grid of
    each axis (default j / n, the periodic grid)."""
    from pdes.solution import operator_dataset

    n = a.shape[1]
    x = np.arange(n) / n if x is None else np.asarray(x, np.float64)
    ds = operator_dataset(a, pred, x=x, y=x if a.ndim == 3 else None, equation=meta.get("equation", "operator"),
                          method="fno", params=meta.get("params"), config={"model": model.config.to_dict(),
                          "train": meta.get("train")}, seed=meta.get("train", {}).get("seed"),
                          wall_time_s=wall_time_s, attrs={"source": source, "periodic": int(periodic)})
    ds["u_true"] = (ds["u"].dims, np.asarray(true, np.float64))
    ds["u_true"].attrs = {"units": "1", "long_name": "reference solution"}
    ds["u"].attrs = {"units": "1", "long_name": "FNO prediction"}
    return ds


def evaluate(
    model: FNO,
    data: Any,
    *,
    nx: list[int] | tuple[int, ...] | None = None,
    batch_size: int = 64,
    meta: dict[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], Any]:
    """Metrics on every grid in ``nx`` (default: the stored grid) and the predictions Dataset
    on the finest of them. data: a path or an operator Dataset. Returns (results, predictions)
    with each result {"nx": n, "n_samples": ..., **error_metrics, "wall_time_s": ...}.

    Periodic data (attr ``periodic``, default true) are subsampled to divisors of the stored
    grid; non-periodic node grids (darcy: both ends stored) to n with (n - 1) dividing
    (stored - 1)."""
    if isinstance(data, str | os.PathLike):
        from pdes.solution import read_dataset

        source = str(data)
        data = read_dataset(data)
    else:
        source = "<in-memory>"
    a_all, u_all = _test_part(data)
    dim = a_all.ndim - 1
    if dim != model.config.dim:
        raise ValueError(f"the model is {model.config.dim}D but the data {source!r} is {dim}D")
    periodic = is_periodic(data)
    n_stored = a_all.shape[1]
    coords = getattr(data, "coords", {})
    x_all = np.asarray(coords["x"], np.float64) if "x" in coords else (
        np.arange(n_stored) / n_stored if periodic else np.linspace(0.0, 1.0, n_stored))
    grids = list(nx) if nx else [n_stored]
    for n in grids:
        if not (isinstance(n, int | np.integer) and n >= 2):
            raise ValueError(f"nx must be integers >= 2, got {n!r}")
        grid_stride(n_stored, int(n), periodic)
        if model.config.modes > n // 2:
            raise ValueError(f"nx={n} is too coarse for modes={model.config.modes} (needs nx >= {2 * model.config.modes})")
    apply, params = functional(model)
    results, preds = [], None
    for n in sorted(grids):
        stride = grid_stride(n_stored, int(n), periodic)
        a, u = _subsample(a_all, stride, dim), _subsample(u_all, stride, dim)
        t0 = time.perf_counter()
        pred = predict(apply, params, a, batch_size)
        wall = time.perf_counter() - t0
        results.append({"nx": int(n), "n_samples": int(a.shape[0]), **error_metrics(pred, u), "wall_time_s": wall})
        preds = (a, pred, u, wall, x_all[::stride])
    a, pred, u, wall, x = preds
    attrs = getattr(data, "attrs", {})
    meta = {"equation": attrs.get("equation", "operator"), "params": attrs.get("params"), **(meta or {})}
    ds = predictions_dataset(a, pred, u, model=model, meta=meta, wall_time_s=wall, source=source, x=x,
                             periodic=periodic)
    return results, ds


def plot_samples(ds: Any, path: str | os.PathLike[str] | None = None, *, fig: Any = None) -> Any:
    """Worst, median and best test samples (by relative L2) of a predictions Dataset.

    Draws on ``fig`` (a ``matplotlib.figure.Figure``; a new one if None -- no pyplot, no
    global backend switch), saves it to ``path`` (.png, .pdf or .svg, atomically, via
    ``plumbing.files.save_figure``) when given, and returns the Figure."""
    from matplotlib.figure import Figure

    from plumbing.files import save_figure

    u, ut, a = np.asarray(ds["u"]), np.asarray(ds["u_true"]), np.asarray(ds["a"])
    if u.ndim not in (2, 3) or u.shape != ut.shape or u.shape[0] == 0:
        raise ValueError(f"plot_samples needs u and u_true of one shape (samples, x[, y]), got {u.shape}, {ut.shape}")
    axes_ = tuple(range(1, u.ndim))
    rel = np.sqrt(np.sum((u - ut) ** 2, axis=axes_)) / np.maximum(np.sqrt(np.sum(ut**2, axis=axes_)), 1e-300)
    order = np.argsort(rel)
    picks = {"worst": order[-1], "median": order[len(order) // 2], "best": order[0]}
    x = np.asarray(ds["x"]) if "x" in ds.coords else np.arange(u.shape[1]) / u.shape[1]
    if fig is None:
        fig = Figure(figsize=(13, 3.6) if u.ndim == 2 else (11, 10), layout="constrained")
    if u.ndim == 2:
        axs = fig.subplots(1, 3)
        for ax, (name, i) in zip(axs, picks.items(), strict=True):
            ax.plot(x, a[i], color="0.6", lw=1, label="input a")
            ax.plot(x, ut[i], "k-", lw=2, label="reference u")
            ax.plot(x, u[i], "r--", lw=1.5, label="FNO")
            ax.set_title(f"{name}: sample {int(i)}, rel. L2 {rel[i]:.2e}")
            ax.set_xlabel("x")
        axs[0].legend(loc="best", fontsize=8)
    else:
        axs = fig.subplots(3, 3)
        extent = (float(x[0]), float(x[-1]), float(x[0]), float(x[-1]))
        for row, (name, i) in enumerate(picks.items()):
            lim = np.abs(ut[i]).max()
            for col, (title, img, cmap) in enumerate((("reference", ut[i], "RdBu_r"), ("FNO", u[i], "RdBu_r"),
                                                       ("error", u[i] - ut[i], "PuOr_r"))):
                vmax = lim if col < 2 else np.abs(u[i] - ut[i]).max()
                im = axs[row, col].imshow(img.T, origin="lower", extent=extent, cmap=cmap, vmin=-vmax, vmax=vmax)
                axs[row, col].set_title(f"{name} (rel. L2 {rel[i]:.2e}): {title}" if col == 0 else title, fontsize=9)
                fig.colorbar(im, ax=axs[row, col], shrink=0.8)
    if path is not None:
        save_figure(fig, path, dpi=110)
    return fig
