"""Behaviour of an uncertain FNO under distribution shift (``python -m uncertainty shift MODEL``).

A model trained on operator Burgers (``pdes.problems.PeriodicBurgers``: GRF initial data
u0 ~ N(0, sigma^2 (-Laplacian + tau^2 I)^-alpha), viscosity nu, u0 -> u(., 1)) on n points is
evaluated on fresh test functions under three shifts, each at growing severity, next to the
unshifted ("in distribution") test set:

* ``resolution``: the training distribution on finer grids, n -> 2 n -> 4 n (a model trained
  at 256 points is tested at 512 and 1024). The same functions at every grid: drawn and solved
  on 4 x the finest grid, then strided.
* ``input``: initial data with a shorter length scale and a larger amplitude than in
  training: tau -> (1 + s / 2) tau and the pointwise std of u0 -> (1 + s / 4) times the
  training one (sigma rescaled to match), s = 1, 2.
* ``parameter``: the viscosity nu -> 0.75 nu -> 0.5 nu (0.1 -> 0.075 -> 0.05 for the preset),
  the same initial functions at every nu. A model trained at one nu (its input is u0 alone)
  cannot see this shift: its std is, by construction, the in-distribution std. A model trained
  over a range of viscosities (``uncertainty run fno --nu-range LO HI``: each training function's
  nu log-uniform on [LO, HI], given as a second input channel) is told each test function's nu:
  its unshifted row draws nu from the training range, the shifted rows hold nu at 0.75 and 0.5
  times the problem's nu (outside the range when LO > 0.75 nu).

References are our pseudo-spectral solver (``pdes.spectral.solve_periodic_burgers``, ETDRK4
in float64, with its default steps 1e-9 - 1e-6 relative error against Cole-Hopf, far below the FNO's
~1e-2) on 4 x the evaluation grid, strided down
(``uncertainty.run.burgers_functions``); ``tests/test_uncertainty_shift.py`` checks them
against the Cole-Hopf solution of the periodic problem.

For every row: rel_l2 (mean over functions of the relative L2 error of the mean), mean_std
(the mean calibrated u_std; raw if the model has no calibration map), coverage_95 and rmsce
of the calibrated std, whole_function_coverage_90 of the band, and spearman: the Spearman
rank correlation between each test function's RMS std and its RMS error (does the model know
*which* functions it gets wrong?). Per shift: ``std_grows`` (mean_std rises by more than 1 %
at every severity step), ``error_grows`` (the RMS error, likewise), and the ratios to the
unshifted row. The map is
applied to finer grids too (its pointwise part depends on no grid; the whole-function band's
guarantee was fitted on the training grid and does not carry over: reported, not promised).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

__all__ = ["KINDS", "ShiftCase", "evaluate_case", "shift_cases", "shift_functions", "shift_report"]

KINDS = ("resolution", "input", "parameter")


@dataclass(frozen=True)
class ShiftCase:
    """One test set: ``kind`` (none, resolution, input, parameter), ``severity`` (0: unshifted),
    the Burgers problem it is drawn from and the grid it is evaluated on."""

    kind: str
    severity: int
    problem: Any
    nx: int
    label: str


def _grf_std(p: Any, n: int = 4096) -> float:
    from operators.grf import grf_eigenvalues

    lam = grf_eigenvalues(n, alpha=p.grf_alpha, tau=p.grf_tau, sigma=p.grf_sigma, length=p.length)
    return math.sqrt(float(lam.sum()) / p.length)


def shift_cases(problem: Any, nx: int, kind: str, *, severities: tuple[int, ...] = (1, 2)) -> list[ShiftCase]:
    """The unshifted case and one case per severity of ``kind`` (module doc)."""
    if kind not in KINDS:
        raise ValueError(f"shift kind must be one of {', '.join(KINDS)}; got {kind!r}")
    nus = f"nu in [{problem.nu_range[0]:g}, {problem.nu_range[1]:g}]" if problem.nu_range else f"nu={problem.nu:g}"
    base = ShiftCase("none", 0, problem, nx, f"in distribution (nx={nx}, {nus}, tau={problem.grf_tau:g})")
    cases = [base]
    for s in severities:
        if kind == "resolution":
            cases.append(ShiftCase(kind, s, problem, nx * 2**s, f"nx={nx * 2**s}"))
        elif kind == "input":
            tau = problem.grf_tau * (1 + s / 2)
            shifted = dataclasses.replace(problem, grf_tau=tau)
            target = _grf_std(problem) * (1 + s / 4)
            sigma = problem.grf_sigma * target / _grf_std(shifted)
            shifted = dataclasses.replace(shifted, grf_sigma=sigma)
            cases.append(ShiftCase(kind, s, shifted, nx, f"tau={tau:g}, std(u0) x{1 + s / 4:g}"))
        else:
            nu = problem.nu * (1 - s / 4)
            cases.append(ShiftCase(kind, s, dataclasses.replace(problem, nu=nu, nu_range=None), nx, f"nu={nu:g}"))
    return cases


def shift_functions(cases: list[ShiftCase], n: int, seed: int, *, nu_channel: bool = False) -> list[
        tuple[np.ndarray, np.ndarray]]:
    """(a, u_true) of n test functions for every case, float64: a (n, nx), or (n, nx, 2) with
    ``nu_channel`` (u0 and nu), u (n, nx). Resolution cases share their functions (drawn and
    solved once on 4 x the finest grid, then strided); the other cases use the same random
    stream, so a parameter shift changes nu and nothing else."""
    from uncertainty.run import burgers_functions

    if all(c.problem == cases[0].problem for c in cases):
        finest = max(c.nx for c in cases)
        a, u = burgers_functions(cases[0].problem, np.random.default_rng(seed), n, finest, nu_channel=nu_channel)
        return [(a[:, :: finest // c.nx], u[:, :: finest // c.nx]) for c in cases]
    return [burgers_functions(c.problem, np.random.default_rng(seed), n, c.nx, nu_channel=nu_channel) for c in cases]


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from uncertainty.report import spearman

    return spearman(a, b)


def evaluate_case(predictor: Any, a: np.ndarray, u_true: np.ndarray, *, key: jax.Array) -> dict[str, Any]:
    """Metrics of the predictor on one test set (module doc); calibrated with its map if it has one."""
    from uncertainty.metrics import all_metrics
    from uncertainty.run import _std

    mean, std, _ = predictor.predict(a, key=key)
    std, _ = _std(std**2, mean)
    cmap = predictor.calibration
    u_std = cmap.std(std) if cmap is not None else std
    bands = {0.9: cmap.band(std, 0.9)} if cmap is not None else None
    if cmap is not None:  # the map's calibrated predictive distribution
        from uncertainty.calibration import calibrated_metrics

        m = calibrated_metrics(mean, u_std, u_true, cmap, functions=True, bands=bands)
    else:
        m = all_metrics(mean, u_std, u_true, functions=True, bands=bands)
    err = np.sqrt(np.mean((mean - u_true) ** 2, axis=1))
    fstd = np.sqrt(np.mean(u_std**2, axis=1))
    rel = np.linalg.norm(mean - u_true, axis=1) / np.linalg.norm(u_true, axis=1)
    row = {"n": int(a.shape[0]), "nx": int(a.shape[1]), "rel_l2": float(np.mean(rel)), "rmse": float(np.sqrt(np.mean(err**2))),
           "mean_std": float(np.mean(u_std)), "mean_std_raw": float(np.mean(std)),
           "coverage_95": m["coverage_95"], "rmsce": m["rmsce"], "spearman": _spearman(fstd, err)}
    if bands is not None:
        row["whole_function_coverage_90"] = m["whole_function_coverage_90"]
    return row


GROWTH = 0.01  # "grows": by more than 1 % at every severity step (float noise is not growth)


def _increasing(values: list[float]) -> bool:
    return all(b > (1 + GROWTH) * a for a, b in zip(values[:-1], values[1:], strict=True))


def shift_report(predictor: Any, *, kinds: tuple[str, ...] = KINDS, n_test: int = 128, seed: int = 1,
                 severities: tuple[int, ...] = (1, 2), progress: bool = False) -> dict[str, Any]:
    """Evaluate ``predictor`` (``uncertainty.predictor.FNOPredictor`` trained on operator Burgers)
    under each shift of ``kinds``; returns {"model": ..., "shifts": {kind: {"rows": [...],
    "std_grows", "error_grows", "spearman_min", ...}}}."""
    import sys

    from pdes.problems import PeriodicBurgers
    from uncertainty.run import NU_CHANNELS

    info = predictor.info or {}
    if info.get("equation") != "operator_burgers" or "problem" not in info:
        raise ValueError(f"shift needs a model trained on operator Burgers data generated here (this one: "
                         f"{info.get('equation') or 'unknown data'}; train with `uncertainty run fno` without --data)")
    if isinstance(n_test, bool) or not isinstance(n_test, int) or n_test < 3:
        raise ValueError(f"--n-test must be an integer >= 3, got {n_test!r}")
    fields = {f.name for f in dataclasses.fields(PeriodicBurgers)}
    problem = PeriodicBurgers(**{k: v for k, v in info["problem"].items() if k in fields})
    nx = int(info["nx"])
    channels = predictor.config.in_channels
    nu_channel = channels == 2 and tuple(info.get("input_channels") or ()) == NU_CHANNELS
    if channels > 1 and not nu_channel:
        raise ValueError(f"shift knows models whose inputs are u0 or (u0, nu); this one takes "
                         f"{info.get('input_channels') or channels}")
    out: dict[str, Any] = {"model": {"method": predictor.method, "members": predictor.members,
                                     "fingerprint": predictor.fingerprint(), "train_nx": nx,
                                     "calibrated": predictor.calibration is not None,
                                     "nu_range": list(problem.nu_range) if problem.nu_range else None},
                           "n_test": n_test, "seed": seed, "shifts": {}}
    for kind in kinds:
        cases = shift_cases(problem, nx, kind, severities=severities)
        if progress:
            print(f"shift {kind}: solving references ...", file=sys.stderr, flush=True)
        sets = shift_functions(cases, n_test, seed, nu_channel=nu_channel)
        rows = []
        for i, (case, (a, u)) in enumerate(zip(cases, sets, strict=True)):
            row = evaluate_case(predictor, a, u, key=jax.random.fold_in(jax.random.key(seed), i))
            rows.append({"kind": case.kind, "severity": case.severity, "label": case.label,
                         "nu": case.problem.nu, "nu_range": case.problem.nu_range, "grf_tau": case.problem.grf_tau, "grf_sigma": case.problem.grf_sigma,
                         **row})
        base = rows[0]
        for r in rows:
            r["std_ratio"] = r["mean_std"] / base["mean_std"]
            r["error_ratio"] = r["rmse"] / base["rmse"]
        stds, errs = [r["mean_std"] for r in rows], [r["rmse"] for r in rows]
        out["shifts"][kind] = {"rows": rows, "std_grows": _increasing(stds), "error_grows": _increasing(errs),
                               "spearman_min": min(r["spearman"] for r in rows[1:]),
                               "std_ratio_max": rows[-1]["std_ratio"], "error_ratio_max": rows[-1]["error_ratio"]}
    return out
