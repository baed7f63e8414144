"""Evaluation of a trained FNO: errors, Fourier-band errors, zero-shot super-resolution, plots.

``evaluate(model, data, nx=[256, 1024])`` predicts the test samples (the ``split == "test"``
part when the dataset has a split, else every sample) on each requested grid (the stored
grid subsampled by striding; the model was possibly trained on another one: zero-shot
super-resolution) and returns one metrics dict per grid:

* ``rel_l2``: mean over samples of ||pred - true||_2 / ||true||_2 (the FNO paper's test
  error), with ``rel_l2_std``, ``rel_l2_median``, ``rel_l2_min``, ``rel_l2_max``.
* ``nrmse``: RMSE over all points and samples divided by the RMS of the truth (PDEBench's
  normalised RMSE, pooled), ``rmse`` and ``max_abs`` (max |pred - true|).
* ``frmse_low``, ``frmse_mid``, ``frmse_high``: the RMS (over x and samples) of the part of
  the error in the Fourier band |k| < 4, 4 <= |k| < 12, |k| >= 12 (PDEBench's bands
  iLow = 4, iHigh = 12; |k| radial in 2D; coefficients with norm="forward", so the numbers
  do not depend on the grid size). By Parseval the three squares add up to ``rmse``^2.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from operators.models import FNO, functional
from operators.train import predict, split_arrays, subsample

__all__ = ["BANDS", "error_metrics", "evaluate", "plot_samples", "predictions_dataset"]

BANDS = {"low": (0, 4), "mid": (4, 12), "high": (12, None)}


def error_metrics(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """The metrics of the module doc for pred, true: (samples, *spatial)."""
    pred = np.asarray(pred, np.float64)
    true = np.asarray(true, np.float64)
    if pred.shape != true.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from the truth's {true.shape}")
    axes = tuple(range(1, true.ndim))
    err = pred - true
    rel = np.sqrt(np.sum(err**2, axis=axes)) / np.maximum(np.sqrt(np.sum(true**2, axis=axes)), 1e-300)
    rmse = float(np.sqrt(np.mean(err**2)))
    out = {
        "rel_l2": float(rel.mean()),
        "rel_l2_std": float(rel.std()),
        "rel_l2_median": float(np.median(rel)),
        "rel_l2_min": float(rel.min()),
        "rel_l2_max": float(rel.max()),
        "rmse": rmse,
        "nrmse": rmse / max(float(np.sqrt(np.mean(true**2))), 1e-300),
        "max_abs": float(np.max(np.abs(err))),
    }
    eh = np.fft.fftn(err, axes=axes, norm="forward")
    ks = [np.abs(np.fft.fftfreq(n, 1.0 / n)) for n in true.shape[1:]]
    kmag = np.sqrt(sum(np.meshgrid(*[k**2 for k in ks], indexing="ij")))
    power = np.mean(np.abs(eh) ** 2, axis=0)  # mean over samples, per frequency
    for name, (lo, hi) in BANDS.items():
        sel = (kmag >= lo) & ((kmag < hi) if hi is not None else True)
        out[f"frmse_{name}"] = float(np.sqrt(np.sum(power[sel])))
    return out


def _test_part(ds: Any) -> tuple[np.ndarray, np.ndarray]:
    a, u, split = split_arrays(ds)
    if split is not None:
        sel = split == "test"
        if sel.any():
            return a[sel], u[sel]
    return a, u


def predictions_dataset(a: np.ndarray, pred: np.ndarray, true: np.ndarray, *, model: FNO, meta: dict[str, Any],
                        wall_time_s: float, source: str) -> Any:
    """An operator Dataset with ``a``, ``u`` (the prediction) and ``u_true``."""
    from pdes.solution import operator_dataset

    n = a.shape[1]
    x = np.arange(n) / n
    ds = operator_dataset(a, pred, x=x, y=x if a.ndim == 3 else None, equation=meta.get("equation", "operator"),
                          method="fno", params=meta.get("params"), config={"model": model.config.to_dict(),
                          "train": meta.get("train")}, seed=meta.get("train", {}).get("seed"),
                          wall_time_s=wall_time_s, attrs={"source": source})
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
    with each result {"nx": n, "n_samples": ..., **error_metrics, "wall_time_s": ...}."""
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
    grids = list(nx) if nx else [a_all.shape[1]]
    for n in grids:
        if not (isinstance(n, int | np.integer) and n >= 2):
            raise ValueError(f"nx must be integers >= 2, got {n!r}")
        if n > a_all.shape[1] or a_all.shape[1] % n:
            raise ValueError(f"nx={n} does not divide the stored grid of {a_all.shape[1]} points")
        if model.config.modes > n // 2:
            raise ValueError(f"nx={n} is too coarse for modes={model.config.modes} (needs nx >= {2 * model.config.modes})")
    apply, params = functional(model)
    results, preds = [], None
    for n in sorted(grids):
        a, u = subsample(a_all, n, dim), subsample(u_all, n, dim)
        t0 = time.perf_counter()
        pred = predict(apply, params, a, batch_size)
        wall = time.perf_counter() - t0
        results.append({"nx": int(n), "n_samples": int(a.shape[0]), **error_metrics(pred, u), "wall_time_s": wall})
        preds = (a, pred, u, wall)
    a, pred, u, wall = preds
    attrs = getattr(data, "attrs", {})
    meta = {"equation": attrs.get("equation", "operator"), "params": attrs.get("params"), **(meta or {})}
    ds = predictions_dataset(a, pred, u, model=model, meta=meta, wall_time_s=wall, source=source)
    return results, ds


def plot_samples(ds: Any, path: str | os.PathLike[str]) -> Path:
    """Worst, median and best test samples (by relative L2) of a predictions Dataset, as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    u, ut, a = np.asarray(ds["u"]), np.asarray(ds["u_true"]), np.asarray(ds["a"])
    axes_ = tuple(range(1, u.ndim))
    rel = np.sqrt(np.sum((u - ut) ** 2, axis=axes_)) / np.sqrt(np.sum(ut**2, axis=axes_))
    order = np.argsort(rel)
    picks = {"worst": order[-1], "median": order[len(order) // 2], "best": order[0]}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if u.ndim == 2:
        x = np.asarray(ds["x"])
        fig, axs = plt.subplots(1, 3, figsize=(13, 3.6), constrained_layout=True)
        for ax, (name, i) in zip(axs, picks.items(), strict=True):
            ax.plot(x, a[i], color="0.6", lw=1, label="input a")
            ax.plot(x, ut[i], "k-", lw=2, label="reference u")
            ax.plot(x, u[i], "r--", lw=1.5, label="FNO")
            ax.set_title(f"{name}: sample {int(i)}, rel. L2 {rel[i]:.2e}")
            ax.set_xlabel("x")
        axs[0].legend(loc="best", fontsize=8)
    else:
        fig, axs = plt.subplots(3, 3, figsize=(11, 10), constrained_layout=True)
        for row, (name, i) in enumerate(picks.items()):
            lim = np.abs(ut[i]).max()
            for col, (title, img, cmap) in enumerate((("reference", ut[i], "RdBu_r"), ("FNO", u[i], "RdBu_r"),
                                                       ("error", u[i] - ut[i], "PuOr_r"))):
                vmax = lim if col < 2 else np.abs(u[i] - ut[i]).max()
                im = axs[row, col].imshow(img.T, origin="lower", extent=(0, 1, 0, 1), cmap=cmap, vmin=-vmax, vmax=vmax)
                axs[row, col].set_title(f"{name} (rel. L2 {rel[i]:.2e}): {title}" if col == 0 else title, fontsize=9)
                fig.colorbar(im, ax=axs[row, col], shrink=0.8)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
