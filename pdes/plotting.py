"""Figures of solution Datasets: field heatmaps, slices at chosen times, error maps, training curves.

The panel functions draw on a given matplotlib ``Axes``; ``plot_solution(ds, path)`` puts them
together on a ``matplotlib.figure.Figure`` (no pyplot, so no global backend is switched and a
notebook's stays as it is), writes it atomically when given a path and returns the Figure.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from plumbing.files import FIGURE_FORMATS, save_figure

__all__ = [
    "history_vars",
    "plot_convergence",
    "plot_error",
    "plot_field",
    "plot_history",
    "plot_slices",
    "plot_solution",
    "save_figure",
]


def _field_2d(da: xr.DataArray, t_index: int | None = None) -> xr.DataArray:
    """A (t, x) field as is; a (t, x, y) field at time index t_index (default: last)."""
    if "y" in da.dims:
        return da.isel(t=-1 if t_index is None else t_index).transpose("y", "x")
    return da.transpose("x", "t")


def plot_field(ax: Any, ds: xr.Dataset, var: str = "u", *, title: str | None = None, **kwargs: Any) -> Any:
    """Heatmap of ds[var] over (t, x) (x vertical, t horizontal) or, for 2-D problems, over
    (x, y) at the last time. Returns the QuadMesh (for a colorbar)."""
    da = _field_2d(ds[var])
    h, v = da.dims[1], da.dims[0]
    mesh = ax.pcolormesh(ds[h].values, ds[v].values, da.values, shading="auto", cmap=kwargs.pop("cmap", "RdBu_r"), **kwargs)
    ax.set_xlabel(h)
    ax.set_ylabel(v)
    suffix = f" at t = {float(ds.t[-1]):.3g}" if "y" in ds[var].dims else ""
    ax.set_title(title or f"{var}{suffix}")
    return mesh


def plot_error(ax: Any, ds: xr.Dataset, var: str = "u", ref: str = "u_true") -> Any:
    """Map of |ds[var] - ds[ref]| on a log colour scale. Returns the QuadMesh."""
    from matplotlib.colors import LogNorm

    err = np.abs(ds[var] - ds[ref])
    floor = max(float(err.max()) * 1e-8, 1e-16)
    err = err.clip(min=floor)
    da = _field_2d(err)
    h, v = da.dims[1], da.dims[0]
    vmax = max(float(da.max()), floor * 10)
    mesh = ax.pcolormesh(ds[h].values, ds[v].values, da.values, shading="auto", cmap="magma", norm=LogNorm(vmin=floor, vmax=vmax))
    ax.set_xlabel(h)
    ax.set_ylabel(v)
    suffix = f" at t = {float(ds.t[-1]):.3g}" if "y" in ds[var].dims else ""
    ax.set_title(f"|{var} - {ref}|{suffix}")
    return mesh


def plot_slices(ax: Any, ds: xr.Dataset, times: Sequence[float] | None = None, var: str = "u", ref: str | None = "u_true") -> None:
    """u(x) at chosen times (default: 4 evenly spaced), with the reference dashed when present.
    For 2-D problems the slice is taken at the middle y."""
    t = ds.t.values
    if times is None:
        times = t[np.linspace(0, t.size - 1, min(4, t.size)).round().astype(int)]
    colors = ["C0", "C1", "C2", "C3", "C4", "C5", "C6", "C7"]
    for i, tt in enumerate(times):
        j = int(np.abs(t - tt).argmin())
        sel = {"t": j}
        if "y" in ds[var].dims:
            sel["y"] = ds.sizes["y"] // 2
        ax.plot(ds.x.values, ds[var].isel(sel).values, color=colors[i % 8], label=f"t = {t[j]:.3g}")
        if ref is not None and ref in ds:
            ax.plot(ds.x.values, ds[ref].isel(sel).values, color="k", ls="--", lw=0.8)
    ax.set_xlabel("x")
    ax.set_ylabel(var)
    where = f" at y = {float(ds.y[ds.sizes['y'] // 2]):.3g}" if "y" in ds[var].dims else ""
    ax.set_title((f"slices ({ref} dashed)" if ref is not None and ref in ds else "slices") + where)
    ax.legend(fontsize="small")


def history_vars(ds: xr.Dataset) -> list[str]:
    """Names of training-history variables: ``history_*`` with the single dim ``step``."""
    return [str(v) for v in ds.data_vars if str(v).startswith("history_") and ds[v].dims == ("step",)]


def plot_history(ax: Any, ds: xr.Dataset) -> None:
    """Training curves on a log scale: ``history_rel_l2`` and the losses (``history_loss*``) vs
    ``step``; other history variables (weights, timings, phase) are left out."""
    names = history_vars(ds)
    curves = [v for v in names if v == "history_rel_l2" or v.startswith("history_loss")] or names
    for v in curves:
        vals = np.asarray(ds[v].values, dtype=float)
        ok = np.isfinite(vals) & (vals > 0)
        ax.semilogy(ds["step"].values[ok], vals[ok], label=v.removeprefix("history_"))
    ax.set_xlabel("step")
    ax.set_title("training history")
    ax.legend(fontsize="small")


def plot_solution(ds: xr.Dataset, path: str | os.PathLike[str] | None = None, *,
                  times: Sequence[float] | None = None, title: str | None = None) -> Any:
    """Draw u, u_true (if present), |u - u_true| (if present), slices at chosen times, and the
    training history (if the Dataset has ``history_*`` variables) on a new Figure; write it
    atomically to ``path`` when given. Returns the Figure."""
    if path is not None and os.path.splitext(str(path))[1].lower() not in FIGURE_FORMATS:
        raise ValueError(f"figure file must end in one of {FIGURE_FORMATS}, got {str(path)!r}")
    from matplotlib.figure import Figure

    has_ref = "u_true" in ds
    panels = ["u"] + (["u_true", "error"] if has_ref else []) + ["slices"] + (["history"] if history_vars(ds) else [])
    ncols = 2 if len(panels) == 4 else min(3, len(panels))
    nrows = -(-len(panels) // ncols)
    fig = Figure(figsize=(4.6 * ncols, 3.6 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax, panel in zip(axes.ravel(), panels, strict=False):
        if panel in ("u", "u_true"):
            fig.colorbar(plot_field(ax, ds, panel), ax=ax)
        elif panel == "error":
            fig.colorbar(plot_error(ax, ds), ax=ax)
        elif panel == "slices":
            plot_slices(ax, ds, times)
        else:
            plot_history(ax, ds)
    for ax in axes.ravel()[len(panels) :]:
        ax.set_visible(False)
    eq, method = ds.attrs.get("equation", "?"), ds.attrs.get("method", "?")
    fig.suptitle(title or f"{eq} ({method})")
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_convergence(modes: dict[str, Any], dt: dict[str, Any], nodes: dict[str, Any],
                     path: str | os.PathLike[str] | None = None) -> Any:
    """Three panels from ``pdes.convergence``: spectral error vs grid points (semilog), ETDRK4
    error vs dt (log-log, with a slope-4 guide), Cole–Hopf change vs Gauss–Hermite nodes
    (semilog), on a new Figure; written atomically to ``path`` when given. Returns the Figure."""
    from matplotlib.figure import Figure

    floor = 1e-17  # plot exact zeros at the bottom of the axis
    fig = Figure(figsize=(13.5, 3.8))
    axes = fig.subplots(1, 3)
    ax = axes[0]
    for name in ("heat", "wave"):
        ax.semilogy(modes["points"], np.maximum(modes[name], floor), "o-", label=name)
    ax.set_xlabel("points of the periodic (odd-extended) grid")
    ax.set_ylabel("rel. L2 error vs exact")
    ax.set_title("spectral: exponential in grid points")
    ax.legend()
    ax = axes[1]
    ax.loglog(dt["dt"], dt["error"], "o-", label="ETDRK4")
    guide = dt["error"][-1] * (dt["dt"] / dt["dt"][-1]) ** 4
    ax.loglog(dt["dt"], guide, "k--", lw=0.8, label="slope 4")
    ax.set_xlabel("dt")
    from matplotlib.ticker import NullFormatter

    ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels of a short log axis overlap
    ax.set_ylabel("rel. L2 error at t = 1")
    ax.set_title("ETDRK4 on Burgers: fourth order")
    ax.legend()
    ax = axes[2]
    ax.semilogy(nodes["nodes"], np.maximum(nodes["error"], floor), "o-")
    ax.set_xlabel("Gauss–Hermite nodes")
    ax.set_ylabel("max change vs 800 nodes")
    ax.set_title("Cole–Hopf, nu = 0.01/pi")
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig
