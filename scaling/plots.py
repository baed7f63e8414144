"""Plots of scaling fits and of the experiment (matplotlib, Agg backend chosen inside each function)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from scaling.laws import ScalingFit


def _save(fig, path: Path) -> Path:
    """Write a PNG atomically (temporary file in the same folder, then rename)."""
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    finally:
        plt.close(fig)
    return path


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


def plot_fit(fit: ScalingFit, data: dict[str, np.ndarray], out_dir: str | Path) -> list[Path]:
    """Loss vs the fitted variable(s) with the fitted curve; for the chinchilla form also loss vs C with the
    compute-optimal frontier and N*(C), D*(C). Returns the written paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    paths = []
    if fit.form == "power":
        var = fit.variable
        x, y = data[var], data["loss"]
        fig, ax = plt.subplots(figsize=(5.5, 4))
        ax.scatter(x, y, s=18, label="data")
        xs = np.geomspace(x.min() / 1.5, x.max() * 1.5, 200)
        ax.plot(xs, fit.predict(xs), "k-", label=_label(fit, var))
        ax.axhline(fit.params["E"], color="gray", ls=":", label=f"E = {fit.params['E']:.3f}")
        ax.set(xscale="log", yscale="log", xlabel=var, ylabel="loss (nats/token)", title=f"power law in {var}")
        _plain_y(ax)
        ax.legend(fontsize=8)
        paths.append(_save(fig, out_dir / f"fit_power_{var}.png"))
        return paths
    N, D, L = data["N"], data["D"], data["loss"]
    C = 6.0 * N * D
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.4), layout="constrained")
    ax = axes[0]
    sc = ax.scatter(N, L, c=np.log10(D), s=14, cmap="viridis")
    fig.colorbar(sc, ax=ax, label="log10 D (tokens)")
    ns = np.geomspace(N.min() / 1.5, N.max() * 1.5, 200)
    for d in np.geomspace(D.min(), D.max(), 4):
        ax.plot(ns, fit.predict(ns, np.full_like(ns, d)), lw=1, color=plt.cm.viridis(
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
    paths.append(_save(fig, out_dir / "fit_chinchilla.png"))
    return paths


def plot_experiment(runs: Sequence, fits: dict, out_dir: str | Path) -> list[Path]:
    """loss_vs_params.png, loss_vs_compute.png (and isoflop.png in IsoFLOP mode) for the experiment's runs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from scaling.experiment import frontier_points

    out_dir = Path(out_dir)
    paths = []
    fixed = [r for r in runs if r.budget is None]
    if fixed:
        fig, ax = plt.subplots(figsize=(5.5, 4))
        N = np.array([r.N for r in fixed], float)
        L = np.array([r.loss for r in fixed])
        ax.scatter(N, L, zorder=3, label="final validation loss")
        for r in fixed:
            ax.annotate(r.name, (r.N, r.loss), fontsize=7, xytext=(3, 3), textcoords="offset points")
        if "L(N)" in fits:
            f = fits["L(N)"]
            ns = np.geomspace(N.min() / 1.5, N.max() * 1.5, 200)
            ax.plot(ns, f.predict(ns), "k-", label=_label(f, "N"))
            ax.axhline(f.params["E"], color="gray", ls=":", lw=1)
        ax.set(xscale="log", yscale="log", xlabel="non-embedding parameters N",
               ylabel="validation loss (nats/byte)", title=f"loss vs parameters ({fixed[0].D:.3g} tokens each)")
        _plain_y(ax)
        ax.legend(fontsize=8)
        paths.append(_save(fig, out_dir / "loss_vs_params.png"))

    fig, ax = plt.subplots(figsize=(5.5, 4))
    cmap = plt.cm.viridis
    for i, r in enumerate(runs):
        c = [p["C"] for p in r.curve]
        v = [p["val_loss"] for p in r.curve]
        ax.plot(c, v, "-o", ms=2.5, lw=1, color=cmap(i / max(len(runs) - 1, 1)),
                label=f"{r.name} (N={r.N:.3g})" if r.budget is None else None)
    C, Lc = frontier_points(runs)
    ax.scatter(C, Lc, facecolors="none", edgecolors="r", s=30, zorder=3, label="frontier (after warm-up)")
    if "L(C)" in fits:
        f = fits["L(C)"]
        cs = np.geomspace(C.min(), C.max(), 200)
        ax.plot(cs, f.predict(cs), "r-", label=_label(f, "C"))
    ax.set(xscale="log", yscale="log", xlabel="training compute C (FLOPs)", ylabel="validation loss (nats/byte)",
           title="loss vs compute")
    _plain_y(ax)
    ax.legend(fontsize=7)
    paths.append(_save(fig, out_dir / "loss_vs_compute.png"))

    iso = [r for r in runs if r.budget is not None]
    if iso:
        fig, ax = plt.subplots(figsize=(5.5, 4))
        budgets = sorted({r.budget for r in iso})
        for j, b in enumerate(budgets):
            rs = sorted((r for r in iso if r.budget == b), key=lambda r: r.N)
            color = plt.cm.plasma(j / max(len(budgets) - 1, 1))
            ax.plot([r.N for r in rs], [r.loss for r in rs], "-o", color=color, label=f"C = {b:.2g}")
            row = next((m for m in fits.get("isoflop", []) if m["budget"] == b), None)
            if row and row["N_opt_parabola"]:
                ax.plot(row["N_opt_parabola"], row["loss_parabola"], "*", color=color, ms=12)
        ax.set(xscale="log", xlabel="non-embedding parameters N", ylabel="validation loss (nats/byte)",
               title="IsoFLOP profiles (star: parabola minimum)")
        ax.legend(fontsize=8)
        paths.append(_save(fig, out_dir / "isoflop.png"))
    return paths
