"""Plots of scaling fits and of the experiment, each on its own ``matplotlib.figure.Figure``.

Every ``plot_*`` function that draws one figure returns it and, given a path, also writes it
(``plumbing.files.save_figure``: atomic, .png/.pdf/.svg). Nothing here selects a matplotlib
backend or uses ``pyplot``. The experiment's helpers (runs, frontier) come in as arguments:
this module imports ``scaling.laws`` only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from plumbing.files import save_figure
from scaling.laws import ScalingFit

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_chinchilla_fit", "plot_experiment", "plot_fit", "plot_isoflop", "plot_loss_vs_compute",
           "plot_loss_vs_params", "plot_power_fit"]

PathLike = str | os.PathLike[str]
DPI = 110


def _figure(figsize: tuple[float, float], ncols: int = 1, **kw: Any):
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, **kw)
    return fig, fig.subplots(1, ncols)


def _finish(fig: Figure, path: PathLike | None) -> Figure:
    if path is not None:
        save_figure(fig, path, dpi=DPI)
    return fig


def _cmap(name: str):
    from matplotlib import colormaps

    return colormaps[name]


def _plain_y(ax) -> None:
    """Plain numbers on a log loss axis that spans less than a decade (else matplotlib's 10^k labels)."""
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    lo, hi = ax.get_ylim()
    if lo > 0 and hi / lo < 10:
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0)))
        ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(NullFormatter())


def _label(fit: ScalingFit, var: str) -> str:
    p = fit.params
    return f"fit: {p['E']:.3f} + {p['A']:.3g} / {var}^{p['alpha']:.3f}"


# --------------------------------------------------------------------------- fits
def plot_power_fit(fit: ScalingFit, data: Mapping[str, np.ndarray], path: PathLike | None = None) -> Figure:
    """Loss against the fit's variable, with the fitted power law and its floor E."""
    var = fit.variable
    x, y = np.asarray(data[var]), np.asarray(data["loss"])
    fig, ax = _figure((5.5, 4))
    ax.scatter(x, y, s=18, label="data")
    xs = np.geomspace(x.min() / 1.5, x.max() * 1.5, 200)
    ax.plot(xs, fit.predict(xs), "k-", label=_label(fit, var))
    ax.axhline(fit.params["E"], color="gray", ls=":", label=f"E = {fit.params['E']:.3f}")
    ax.set(xscale="log", yscale="log", xlabel=var, ylabel="loss (nats/token)", title=f"power law in {var}")
    _plain_y(ax)
    ax.legend(fontsize=8)
    return _finish(fig, path)


def plot_chinchilla_fit(fit: ScalingFit, data: Mapping[str, np.ndarray], path: PathLike | None = None) -> Figure:
    """Three panels: loss vs N with the fit at fixed D, loss vs C = 6ND with the compute-optimal
    frontier, and N*(C), D*(C)."""
    N, D, L = (np.asarray(data[k]) for k in ("N", "D", "loss"))
    C = 6.0 * N * D
    fig, axes = _figure((16, 4.4), 3, layout="constrained")
    viridis = _cmap("viridis")
    ax = axes[0]
    sc = ax.scatter(N, L, c=np.log10(D), s=14, cmap="viridis")
    fig.colorbar(sc, ax=ax, label="log10 D (tokens)")
    ns = np.geomspace(N.min() / 1.5, N.max() * 1.5, 200)
    for d in np.geomspace(D.min(), D.max(), 4):
        ax.plot(ns, fit.predict(ns, np.full_like(ns, d)), lw=1, color=viridis(
            (np.log10(d) - np.log10(D.min())) / max(np.log10(D.max() / D.min()), 1e-12)))
    ax.set(xscale="log", yscale="log", xlabel="N (parameters)", ylabel="loss", title="loss vs N, fit at fixed D")
    ax = axes[1]
    ax.scatter(C, L, c=np.log10(N), s=14, cmap="plasma")
    cs = np.geomspace(C.min() / 2, C.max() * 2, 200)
    fr = fit.frontier(cs)
    ax.plot(cs, fr["loss"], "k-", label="compute-optimal L(N*, D*)")
    ax.set(xscale="log", yscale="log", xlabel="C = 6ND (FLOPs)", ylabel="loss", title="loss vs compute")
    ax.legend(fontsize=8)
    ax = axes[2]
    ax.plot(cs, fr["N_opt"], label=f"N*(C) ~ C^{fr['a']:.3f}")
    ax.plot(cs, fr["D_opt"], label=f"D*(C) ~ C^{fr['b']:.3f}")
    ax.plot(cs, fr["tokens_per_param"], "--", label="D*/N* (tokens per parameter)")
    ax.set(xscale="log", yscale="log", xlabel="C (FLOPs)", title="compute-optimal frontier")
    ax.legend(fontsize=8)
    for ax in axes[:2]:
        _plain_y(ax)
    p = fit.params
    fig.suptitle(f"L = {p['E']:.3f} + {p['A']:.4g}/N^{p['alpha']:.3f} + {p['B']:.4g}/D^{p['beta']:.3f}")
    return _finish(fig, path)


def plot_fit(fit: ScalingFit, data: Mapping[str, np.ndarray], out_dir: PathLike) -> list[Path]:
    """fit_power_<var>.png (power form) or fit_chinchilla.png in ``out_dir``; returns the written paths."""
    out_dir = Path(out_dir)
    if fit.form == "power":
        path = out_dir / f"fit_power_{fit.variable}.png"
        plot_power_fit(fit, data, path)
    else:
        path = out_dir / "fit_chinchilla.png"
        plot_chinchilla_fit(fit, data, path)
    return [path]


# --------------------------------------------------------------------------- the experiment
# `runs` below: objects with the attributes of scaling.experiment.RunResult (name, N, D, loss,
# budget, curve: a list of {"C", "val_loss", ...}).

def plot_loss_vs_params(runs: Sequence, fit: ScalingFit | None = None, path: PathLike | None = None) -> Figure:
    """Final validation loss of the fixed-token runs against N, with the L(N) fit if given."""
    fixed = [r for r in runs if r.budget is None]
    if not fixed:
        raise ValueError("no fixed-token runs to plot")
    fig, ax = _figure((5.5, 4))
    N = np.array([r.N for r in fixed], float)
    L = np.array([r.loss for r in fixed])
    ax.scatter(N, L, zorder=3, label="final validation loss")
    for r in fixed:
        ax.annotate(r.name, (r.N, r.loss), fontsize=7, xytext=(3, 3), textcoords="offset points")
    if fit is not None:
        ns = np.geomspace(N.min() / 1.5, N.max() * 1.5, 200)
        ax.plot(ns, fit.predict(ns), "k-", label=_label(fit, "N"))
        ax.axhline(fit.params["E"], color="gray", ls=":", lw=1)
    ax.set(xscale="log", yscale="log", xlabel="non-embedding parameters N",
           ylabel="validation loss (nats/byte)", title=f"loss vs parameters ({fixed[0].D:.3g} tokens each)")
    _plain_y(ax)
    ax.legend(fontsize=8)
    return _finish(fig, path)


def plot_loss_vs_compute(runs: Sequence, frontier: tuple[np.ndarray, np.ndarray], fit: ScalingFit | None = None,
                         path: PathLike | None = None) -> Figure:
    """Every run's validation curve against training compute, the compute-efficient ``frontier``
    (C, loss) circled, and the L(C) fit if given."""
    fig, ax = _figure((5.5, 4))
    viridis = _cmap("viridis")
    for i, r in enumerate(runs):
        c = [p["C"] for p in r.curve]
        v = [p["val_loss"] for p in r.curve]
        ax.plot(c, v, "-o", ms=2.5, lw=1, color=viridis(i / max(len(runs) - 1, 1)),
                label=f"{r.name} (N={r.N:.3g})" if r.budget is None else None)
    C, Lc = (np.asarray(a, float) for a in frontier)
    ax.scatter(C, Lc, facecolors="none", edgecolors="r", s=30, zorder=3, label="frontier (after warm-up)")
    if fit is not None and C.size:
        cs = np.geomspace(C.min(), C.max(), 200)
        ax.plot(cs, fit.predict(cs), "r-", label=_label(fit, "C"))
    ax.set(xscale="log", yscale="log", xlabel="training compute C (FLOPs)", ylabel="validation loss (nats/byte)",
           title="loss vs compute")
    _plain_y(ax)
    ax.legend(fontsize=7)
    return _finish(fig, path)


def plot_isoflop(runs: Sequence, minima: Sequence[Mapping] = (), path: PathLike | None = None) -> Figure:
    """Final loss against N for each IsoFLOP budget; a star at each budget's parabola minimum
    (``minima``: rows of ``scaling.experiment.isoflop_minima``)."""
    iso = [r for r in runs if r.budget is not None]
    if not iso:
        raise ValueError("no IsoFLOP runs to plot")
    fig, ax = _figure((5.5, 4))
    plasma = _cmap("plasma")
    budgets = sorted({r.budget for r in iso})
    for j, b in enumerate(budgets):
        rs = sorted((r for r in iso if r.budget == b), key=lambda r: r.N)
        color = plasma(j / max(len(budgets) - 1, 1))
        ax.plot([r.N for r in rs], [r.loss for r in rs], "-o", color=color, label=f"C = {b:.2g}")
        row = next((m for m in minima if m["budget"] == b), None)
        if row and row["N_opt_parabola"]:
            ax.plot(row["N_opt_parabola"], row["loss_parabola"], "*", color=color, ms=12)
    ax.set(xscale="log", xlabel="non-embedding parameters N", ylabel="validation loss (nats/byte)",
           title="IsoFLOP profiles (star: parabola minimum)")
    ax.legend(fontsize=8)
    return _finish(fig, path)


def plot_experiment(runs: Sequence, fits: Mapping, out_dir: PathLike,
                    frontier: tuple[np.ndarray, np.ndarray]) -> list[Path]:
    """loss_vs_params.png (when there are fixed-token runs), loss_vs_compute.png and (IsoFLOP
    mode) isoflop.png in ``out_dir``; ``fits`` as from ``scaling.experiment.fit_experiment``,
    ``frontier`` = ``scaling.experiment.frontier_points(runs)``. Returns the written paths."""
    out_dir = Path(out_dir)
    paths = []
    if any(r.budget is None for r in runs):
        paths.append(out_dir / "loss_vs_params.png")
        plot_loss_vs_params(runs, fits.get("L(N)"), paths[-1])
    paths.append(out_dir / "loss_vs_compute.png")
    plot_loss_vs_compute(runs, frontier, fits.get("L(C)"), paths[-1])
    if any(r.budget is not None for r in runs):
        paths.append(out_dir / "isoflop.png")
        plot_isoflop(runs, fits.get("isoflop", []), paths[-1])
    return paths
