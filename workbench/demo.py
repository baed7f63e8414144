"""The demo (``python -m workbench demo``): Burgers exact vs spectral, a PINN on Burgers, an FNO
evaluation and a calibration report. Each step takes the output folder and ``quick`` and
returns table rows (step, method, rel_l2, max_abs, wall_time_s, file, note); ``DEMO_STEPS``
lists them in order. The workbench sits above every package (DESIGN.md section 1), so it may
import all of them.

FNO cache: a trained model is reused when a folder holds an ``operators`` checkpoint and
``data.nc`` (its operator data): ``OUT/fno_burgers`` first, then
``$SCIML_CACHE/fno_burgers`` (default ``~/.cache/sciml-workbench/fno_burgers``). Otherwise the
step trains one into ``OUT/fno_burgers`` (about a minute of CPU time), so the next demo reuses it.
``--quick`` never reads or writes the cache: it trains a tiny model in ``OUT/fno_burgers_quick``.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["DEMO_STEPS", "demo_calibration", "demo_fno", "demo_pinn", "demo_reference", "fno_cache_dirs", "run_demo"]

# FNO settings of the demo: (n_train, n_test, epochs, width); data stored at 1024 points, trained at 256.
FNO_FULL = (256, 64, 40, 32)
FNO_QUICK = (64, 16, 10, 16)
# Calibration: FNO deep ensemble on the same data at 64 points: (members, epochs), and the training
# functions held out to calibrate on (at least 25: a 95% level and whole-function bands need them).
CAL_FULL = (4, 40)
CAL_QUICK = (2, 6)
CAL_FUNCTIONS = 64
CAL_FUNCTIONS_QUICK = 25
# PINN on Burgers: the "fast" preset; quick mode trims its steps (chunks of 100 steps, as in
# notebook 01's quick mode: the two share their compiled programs through the compilation cache).
PINN_QUICK = {"adam.steps": 100, "qn.steps": 100, "run.log_every": 100}


def fno_cache_dirs(out: Path) -> list[Path]:
    """Where a trained demo FNO is looked for, in order."""
    cache = Path(os.environ.get("SCIML_CACHE", Path.home() / ".cache" / "sciml-workbench"))
    return [out / "fno_burgers", cache / "fno_burgers"]


def _is_cached(d: Path) -> bool:
    from operators.checkpoint import has_checkpoint

    return has_checkpoint(d) and (d / "data.nc").is_file()


def _exact_burgers(out: Path, nx: int, nt: int) -> Any:
    from pdes.solution import read_dataset
    from pdes.solve import solve

    path = out / "burgers_exact.nc"
    if path.is_file():
        ds = read_dataset(path)
        if ds.sizes.get("x") == nx and ds.sizes.get("t") == nt:
            return ds
    return solve("burgers", method="exact", nx=nx, nt=nt)


def demo_reference(out: Path, quick: bool = False) -> list[dict[str, Any]]:
    """Burgers preset exactly (Cole–Hopf) and spectrally (ETDRK4); compare; write both and a figure.
    (Already quick: ``quick`` changes nothing.)"""
    from pdes.plotting import plot_solution
    from pdes.solution import compare, write_dataset
    from pdes.solve import solve

    exact = solve("burgers", method="exact")
    spectral = solve("burgers", method="spectral")
    exact_path = write_dataset(exact, out / "burgers_exact.nc")
    spectral_path = write_dataset(spectral, out / "burgers_spectral.nc")
    fig = out / "burgers_spectral.png"
    plot_solution(spectral, fig, title="Burgers preset: spectral (ETDRK4) vs Cole–Hopf")
    cmp = compare(spectral, exact)
    return [
        {"step": "burgers", "method": "exact (Cole–Hopf)", "rel_l2": 0.0, "max_abs": 0.0,
         "wall_time_s": exact.attrs["wall_time_s"], "file": str(exact_path)},
        {"step": "burgers", "method": "spectral (ETDRK4)", "rel_l2": cmp.rel_l2, "max_abs": cmp.max_abs,
         "wall_time_s": spectral.attrs["wall_time_s"], "file": f"{spectral_path}, {fig}"},
    ]


def demo_pinn(out: Path, quick: bool = False) -> list[dict[str, Any]]:
    """Burgers preset by a PINN (preset "fast"; --quick: 100 + 100 steps), compared with Cole–Hopf."""
    from pdes.plotting import plot_solution
    from pdes.solution import compare, write_dataset
    from pdes.solve import solve

    pinn = solve("burgers", method="pinn", preset="fast", overrides=PINN_QUICK if quick else None, progress=True)
    path = write_dataset(pinn, out / "burgers_pinn.nc")
    fig = out / "burgers_pinn.png"
    plot_solution(pinn, fig, title="Burgers preset: PINN vs Cole–Hopf")
    cmp = compare(pinn, _exact_burgers(out, pinn.sizes["x"], pinn.sizes["t"]))
    steps = int(pinn.attrs.get("steps_done", 0))
    return [{"step": "burgers", "method": f"PINN (fast{', quick' if quick else ''}, {steps} steps)",
             "rel_l2": cmp.rel_l2, "max_abs": cmp.max_abs, "wall_time_s": float(pinn.attrs["wall_time_s"]),
             "file": f"{path}, {fig}"}]


def _fno_data(d: Path, quick: bool) -> Path:
    """The demo's operator data in d/data.nc (generated when absent)."""
    from operators.data import GenerateConfig, generate

    path = d / "data.nc"
    if not path.is_file():
        n_train, n_test, _, _ = FNO_QUICK if quick else FNO_FULL
        d.mkdir(parents=True, exist_ok=True)
        generate(GenerateConfig(kind="burgers", n_train=n_train, n_test=n_test, nx=1024, seed=0), path, progress=True)
    return path


def demo_fno(out: Path, quick: bool = False) -> list[dict[str, Any]]:
    """FNO on operator Burgers: reuse a cached model or train one; test error at 256 and 1024 points."""
    from operators.checkpoint import load_model
    from operators.evaluate import evaluate, plot_samples
    from operators.models import FNOConfig
    from operators.train import TrainConfig, train_fno
    from pdes.solution import write_dataset

    start = time.perf_counter()
    cached = None if quick else next((d for d in fno_cache_dirs(out) if _is_cached(d)), None)
    if cached is not None:
        model, meta = load_model(cached)
        data, how, d = cached / "data.nc", f"cached in {cached}", cached
    else:
        d = out / ("fno_burgers_quick" if quick else "fno_burgers")
        data = _fno_data(d, quick)
        _, _, epochs, width = FNO_QUICK if quick else FNO_FULL
        model, history = train_fno(data, FNOConfig(modes=16, width=width),
                                   TrainConfig(epochs=epochs, batch_size=16, nx=256, checkpoint_every=epochs),
                                   out=d, progress=True)
        how = f"trained {epochs} epochs at nx=256"
    results, pred = evaluate(model, data, nx=[256, 1024])
    pred_path = write_dataset(pred, out / "fno_burgers_pred.nc")
    fig = out / "fno_burgers_samples.png"
    plot_samples(pred, fig)
    wall = time.perf_counter() - start
    rows = []
    for r in results:
        zero_shot = " (zero-shot super-resolution)" if r["nx"] != 256 else ""
        rows.append({"step": "fno", "method": f"FNO, test set at nx={r['nx']}{zero_shot}", "rel_l2": r["rel_l2"],
                     "max_abs": r["max_abs"], "wall_time_s": wall if r is results[0] else r["wall_time_s"],
                     "file": f"{pred_path}, {fig}" if r is results[-1] else str(d), "note": how if r is results[0] else ""})
    return rows


def demo_calibration(out: Path, quick: bool = False) -> list[dict[str, Any]]:
    """Deep FNO ensemble on the demo's operator data at 64 points, calibrated on held-out functions
    (split conformal, the last CAL_FUNCTIONS training functions of the data file): a calibration
    report (HTML, JSON, PNGs) with the raw and the calibrated numbers side by side. Two rows: the
    raw verdict, then the calibrated one with its guarantee."""
    from operators.models import FNOConfig
    from operators.train import TrainConfig
    from pdes.solution import write_dataset
    from uncertainty import make_report, run_fno
    from uncertainty.calibration import save_map
    from uncertainty.run import load_fno_task

    cached = None if quick else next((d for d in fno_cache_dirs(out) if _is_cached(d)), None)
    data_path = cached / "data.nc" if cached else _fno_data(out / ("fno_burgers_quick" if quick else "fno_burgers"), quick)
    n_cal = CAL_FUNCTIONS_QUICK if quick else CAL_FUNCTIONS
    task = load_fno_task(data_path, n_calibration=n_cal, nx=64)
    data = task.data
    members, epochs = CAL_QUICK if quick else CAL_FULL
    batch = min(16, data.a_train.shape[0])
    ds, predictor = run_fno(data, FNOConfig(modes=12, width=32), TrainConfig(epochs=epochs, batch_size=batch,
                            data_parallel=False), method="ensemble", members=members, progress=True,
                            calibration_data=(task.a_cal, task.u_cal), info=task.info, return_predictor=True)
    report_dir = out / "calibration"
    pred_path = write_dataset(ds, out / "calibration_pred.nc")
    map_path = save_map(predictor.calibration, out / "calibration_map.json")
    summary = make_report(ds, report_dir, source=str(pred_path))
    raw, m, cal = summary["raw"], summary["metrics"], summary["calibration"]
    files = f"{report_dir / 'report.html'}, {pred_path}, {map_path}"
    common = {"step": "calibration", "rel_l2": m["rel_l2"], "max_abs": None,
              "wall_time_s": float(ds.attrs.get("wall_time_s", 0.0))}
    raw_note = (f"coverage_95 {raw['coverage_95']:.2f}, rmsce {raw['rmsce']:.3f}, crps {raw['crps']:.2e}: "
                f"{summary['verdict_raw']}")
    note = (f"coverage_95 {m['coverage_95']:.2f}, rmsce {m['rmsce']:.3f}, crps {m['crps']:.2e}, whole-function "
            f"90% band covers {m['whole_function_coverage_90']:.2f} of test functions: {summary['verdict']} "
            f"(guarantee: a new function lies entirely inside its 90% band with probability >= 0.90, a point "
            f"inside its 95% interval with probability >= 0.95; fitted on {cal['n_spread'] + cal['n_conformal']} "
            f"held-out functions)")
    return [{**common, "method": f"FNO deep ensemble ({members} members), nx=64, raw", "file": files,
             "note": raw_note},
            {**common, "method": f"FNO deep ensemble ({members} members), nx=64, calibrated (conformal)",
             "file": files, "note": note}]


# The steps of ``python -m workbench demo``, in order: (name, step(out, quick) -> table rows).
DEMO_STEPS: list[tuple[str, Callable[..., list[dict[str, Any]]]]] = [
    ("reference", demo_reference),
    ("pinn", demo_pinn),
    ("fno", demo_fno),
    ("calibration", demo_calibration),
]


def run_demo(out: str | Path, *, only: list[str] | None = None, quick: bool = False) -> list[dict[str, Any]]:
    """Run the demo steps (all, or those named in ``only``) into ``out``; return the table rows."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out must be a folder, got the file {str(out)!r}")
    rows: list[dict[str, Any]] = []
    for name, step in DEMO_STEPS:
        if only and name not in only:
            continue
        print(f"demo: {name} ...", file=sys.stderr, flush=True)
        rows.extend(step(out, quick=quick))
    return rows
