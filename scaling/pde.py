"""Neural-PDE scaling: FNO test error vs parameters and vs training samples, fitted with the same fitter.

Uses ``operators`` (JAX/Flax FNO, Burgers data from its spectral solver), imported lazily so that
``import scaling`` stays light. Two sweeps on one generated data set (the DESIGN.md operator Burgers
problem: u0 from a Gaussian random field, learn u0 -> u(., 1)):

* parameters: FNOs of several widths, each trained on ``n_train_width`` samples;
* samples: one FNO (``width_for_samples``) trained on nested subsets of the training samples.

Every run gets the same number of optimiser steps (epochs = steps / (n_train / batch)), so the
sample sweep measures data, not optimisation length. The error is the mean relative L2 error on the
held-out test samples; each sweep is fitted with err(x) = E + A / x^alpha.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from plumbing.files import atomic_write_json, atomic_write_text, save_figure
from scaling.laws import ScalingFit, csv_text, fit_power_law

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class PDEScalingConfig:
    """The sweep. widths: FNO channel widths (proj_hidden = 2 x width); samples: training-set sizes."""

    kind: str = "burgers"
    nx: int = 64
    fine_nx: int = 256
    n_test: int = 100
    widths: tuple[int, ...] = (4, 8, 16, 32)
    n_train_width: int = 256
    samples: tuple[int, ...] = (32, 64, 128, 256, 512)
    width_for_samples: int = 16
    modes: int = 8
    depth: int = 4
    steps: int = 500
    batch_size: int = 16
    lr: float = 3e-3
    seed: int = 0

    def __post_init__(self) -> None:
        if len(self.widths) < 3 or len(self.samples) < 3:
            raise ValueError("each sweep needs at least 3 points (the power law has 3 parameters)")
        if min(self.widths) < 1 or min(self.samples) < self.batch_size:
            raise ValueError(f"widths must be >= 1 and samples >= batch_size ({self.batch_size})")
        if self.n_train_width < self.batch_size:
            raise ValueError(f"n_train_width must be >= batch_size ({self.batch_size})")
        if self.steps < 1 or self.n_test < 1:
            raise ValueError("steps and n_test must be positive")


QUICK_PDE = PDEScalingConfig(nx=32, fine_nx=128, n_test=32, widths=(2, 4, 8), n_train_width=32, samples=(8, 16, 32),
                             width_for_samples=4, modes=4, depth=2, steps=60, batch_size=8)


def run_pde_scaling(cfg: PDEScalingConfig, out: str | Path, *, progress: bool = True, plots: bool = True) -> dict:
    """Generate the data, run both sweeps, fit, write pde_runs.csv, pde_fits.json and pde_scaling.png."""
    from tqdm.auto import tqdm

    from operators import FNOConfig, TrainConfig, load_operator_data, param_count, train_fno
    from operators.data import GenerateConfig, generate_arrays

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    n_train = max(max(cfg.samples), cfg.n_train_width)
    ds = generate_arrays(GenerateConfig(kind=cfg.kind, n_train=n_train, n_test=cfg.n_test, nx=cfg.nx,
                                        fine_nx=cfg.fine_nx, seed=cfg.seed))
    d = load_operator_data(ds)
    plan = [("params", w, cfg.n_train_width) for w in cfg.widths] + \
           [("samples", cfg.width_for_samples, n) for n in cfg.samples]
    rows = []
    with tqdm(total=len(plan), desc="FNO scaling", unit="run", disable=not progress) as bar:
        for sweep, width, n in plan:
            epochs = max(1, math.ceil(cfg.steps / (n // cfg.batch_size)))
            mcfg = FNOConfig(modes=cfg.modes, width=width, depth=cfg.depth, proj_hidden=2 * width)
            tcfg = TrainConfig(epochs=epochs, batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed,
                               warmup_epochs=min(5, max(0, epochs // 10)), eval_every=epochs,
                               checkpoint_every=epochs)
            data = (d.a_train[:n], d.u_train[:n], d.a_test, d.u_test)
            model, hist = train_fno(data, mcfg, tcfg, progress=False)
            rows.append({"sweep": sweep, "width": width, "n_train": n, "params": param_count(model),
                         "epochs": epochs, "steps": epochs * (n // cfg.batch_size),
                         "test_rel_l2": float(hist[-1]["test_rel_l2"]), "train_loss": float(hist[-1]["train_loss"]),
                         "wall_time_s": float(hist[-1]["wall_time_s"])})
            bar.update(1)
            bar.set_postfix(sweep=sweep, width=width, n=n, err=f"{rows[-1]['test_rel_l2']:.4f}")
    atomic_write_text(out / "pde_runs.csv", csv_text(rows))
    fits = fit_pde(rows)
    summary = {"config": asdict(cfg), "runs": rows, "fits": {k: f.to_dict() for k, f in fits.items()},
               "wall_time_s": time.perf_counter() - t0}
    if plots:
        plot_pde(rows, fits, out / "pde_scaling.png")
        summary["plots"] = [str(out / "pde_scaling.png")]
    atomic_write_json(out / "pde_fits.json", summary)
    return summary


def read_pde_runs(path: str | Path) -> list[dict]:
    """Rows of a pde_runs.csv (numbers converted)."""
    import csv

    with Path(path).open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    ints = ("width", "n_train", "params", "epochs", "steps")
    return [{k: (int(v) if k in ints else v if k == "sweep" else float(v)) for k, v in r.items()} for r in rows]


def fit_pde(rows: list[dict]) -> dict[str, ScalingFit]:
    """err(params) and err(samples): E + A / x^alpha over each sweep."""
    fits = {}
    for sweep, key, var in (("params", "params", "N"), ("samples", "n_train", "D")):
        rs = [r for r in rows if r["sweep"] == sweep]
        fits[f"err({key})"] = fit_power_law(np.array([r[key] for r in rs], float),
                                            np.array([r["test_rel_l2"] for r in rs]), variable=var)
    return fits


def plot_pde(rows: list[dict], fits: dict[str, ScalingFit], path: str | os.PathLike[str] | None = None) -> Figure:
    """Test error against FNO parameters (left) and training samples (right), with each fit;
    written to ``path`` (.png, .pdf or .svg) when given."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter

    fig = Figure(figsize=(11, 4), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, (sweep, key, label) in zip(axes, (("params", "params", "FNO parameters"),
                                             ("samples", "n_train", "training samples")), strict=True):
        rs = [r for r in rows if r["sweep"] == sweep]
        x = np.array([r[key] for r in rs], float)
        y = np.array([r["test_rel_l2"] for r in rs])
        ax.scatter(x, y, zorder=3, label="test rel. L2")
        f = fits[f"err({key})"]
        xs = np.geomspace(x.min() / 1.3, x.max() * 1.3, 200)
        p = f.params
        ax.plot(xs, f.predict(xs), "k-", label=f"{p['E']:.2g} + {p['A']:.3g} / x^{p['alpha']:.3f}")
        ax.set(xscale="log", yscale="log", xlabel=label, ylabel="mean relative L2 test error",
               title=f"FNO on Burgers: error vs {label}")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.legend(fontsize=8)
    if path is not None:
        save_figure(fig, path, dpi=110)
    return fig
