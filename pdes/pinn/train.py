"""Forward PINN training: ``train(pinn, ...)`` and ``solve_pinn(problem, ...)``.

``train`` runs the Adam phase then the quasi-Newton phase in chunks of ``run.log_every`` steps
(each chunk one compiled ``lax.scan``; the chunked driver ``pdes.pinn.driver`` owns the NaN
guard, the time budget, checkpoints and progress), evaluates against the reference after each
chunk, and returns the final parameters and the history. ``solve_pinn`` wraps it into the
solution Dataset of DESIGN.md section 2 with the history alongside (``history_<name>``, dim
``step``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np
import xarray as xr

from pdes.pinn.configs import PINNConfig, apply_overrides, get_config
from pdes.pinn.core import PINN, Programs, build_pinn
from pdes.pinn.phases import PROGRAMS, fit
from pdes.pinn.precision import uses_float64, x64_if
from pdes.problems import Burgers, Heat, Wave, problem_params

__all__ = ["TrainResult", "check_one_dimensional", "checkpoint_identity", "reference_solution", "resolve_config", "solve_pinn", "train"]


@dataclass
class TrainResult:
    """Final parameters (of the last good state), the history and why training stopped."""

    params: Any
    history: dict[str, np.ndarray]
    steps_done: int
    stopped: str = "completed"
    wall_time_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def reference_solution(problem: Any, t: np.ndarray, x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray | None:
    """The reference on the grid t x x (x y for a problem 2-D in space): the exact solution of
    a preset (``pdes.exact``), a PDE's own ``exact`` closed form, or its spectral reference
    (periodic PDEs with a stated linear part, ``pdes.spectral``); None where there is none."""
    from pdes.problems import PDE

    if isinstance(problem, PDE):
        if problem.exact is not None:
            return problem.exact_on_grid(t, x, y)
        if problem.linear is not None and problem.boundary.kind == "periodic":
            from pdes.spectral import pde_reference

            return pde_reference(problem, t, x, y=y)
        return None
    from pdes.exact import exact_solution

    try:
        return np.asarray(exact_solution(problem, t, x), dtype=np.float64)
    except ValueError:
        return None


def _problem_id(problem: Heat | Wave | Burgers) -> dict[str, Any]:
    return {"name": problem.name, "params": json.loads(json.dumps(problem_params(problem), default=str))}


def checkpoint_identity(pinn: PINN, **extra: Any) -> dict[str, Any]:
    """What a checkpoint of ``pinn`` must match to be resumed: the kind, the problem, the
    network and the unknowns (plus ``extra``, e.g. the member count)."""
    return {"kind": "pinn", "problem": _problem_id(pinn.problem), "network": pinn.config.network,
            "unknowns": list(pinn.unknowns), **extra}


def train(pinn: PINN, *, seed: int = 0, t_grid: np.ndarray, x_grid: np.ndarray, u_ref: np.ndarray | None,
          y_grid: np.ndarray | None = None, progress: bool = True, checkpoint_dir: str | Path | None = None, resume: str | Path | None = None,
          callback: Callable[[dict[str, float]], None] | None = None, programs: Programs = PROGRAMS) -> TrainResult:
    """Train ``pinn``: Adam for ``adam.steps``, then the quasi-Newton method for ``qn.steps``
    (``pdes.pinn.phases``, run by the chunked driver ``pdes.pinn.driver``).

    After each chunk of ``run.log_every`` steps the loss terms, weights, relative L2 error on
    the grid (t_grid x x_grid (x y_grid) against u_ref) and wall time are recorded and passed to
    ``callback``. A non-finite loss or parameter stops training with a message on stderr; the
    last good state is kept (and checkpointed). ``checkpoint_dir`` gets a checkpoint
    (``plumbing.checkpoint``) every ``run.checkpoint_every`` steps and at the end of each phase;
    ``resume`` continues from such a folder (the same problem and network are required)."""
    from pdes.pinn.driver import progress_bar

    c = pinn.config
    total = c.adam.steps + c.qn.steps
    base_key = jax.random.key(seed)
    with x64_if(c.network.dtype == "float64"):
        params = pinn.init(jax.random.fold_in(base_key, 0))
        state = pinn.init_train_state(params, jax.random.fold_in(base_key, 1))
    ref_norm = float(np.linalg.norm(u_ref)) if u_ref is not None else math.nan
    cpu_start = time.process_time()
    start = time.perf_counter()
    elapsed0 = [0.0]

    def record(metrics: dict[str, Any], p: Any, phase: int, step: int) -> dict[str, float]:
        row = {"step": float(step), "phase": float(phase), **{k: float(v) for k, v in metrics.items()}}
        row["rel_l2"] = math.nan
        if u_ref is not None:
            u = np.asarray(_predict(programs, pinn, p, t_grid, x_grid, y_grid), dtype=np.float64)
            row["rel_l2"] = float(np.linalg.norm(u - u_ref) / ref_norm)
        row["wall_time_s"] = elapsed0[0] + time.perf_counter() - start
        row["cpu_time_s"] = time.process_time() - cpu_start  # this process, all threads; this run only
        return row

    identity = checkpoint_identity(pinn)
    initial = 0
    if resume is not None:
        from plumbing.checkpoint import read_meta

        saved = read_meta(resume)
        initial, elapsed0[0] = min(int(saved["step"]), total), float(saved.get("wall_time_s", 0.0))
    bar, close = progress_bar(total, initial, f"pinn {pinn.problem.name}", progress)
    callbacks = [bar] + ([callback] if callback is not None else [])
    try:
        result, _ = fit(pinn, state, qn_key=lambda step: jax.random.fold_in(base_key, 1000 + step), record=record,
                        callbacks=callbacks, checkpoint_dir=checkpoint_dir, resume=resume,
                        meta={**identity, "config": c.to_dict(), "seed": seed}, expect=identity, programs=programs)
    finally:
        close()
    params = result.state.params
    hist = {k: np.array([row.get(k, math.nan) for row in result.history], dtype=np.float64)
            for k in dict.fromkeys(k for row in result.history for k in row)}
    return TrainResult(params, hist, result.step, result.stopped, result.wall_time_s)


def _predict(programs: Programs, pinn: PINN, params: Any, t: np.ndarray, x: np.ndarray,
             y: np.ndarray | None) -> Any:
    """The compiled ``predict_grid`` on t x x (x y)."""
    fn = programs.jit(pinn, "predict_grid")
    return fn(params, t, x) if y is None else fn(params, t, x, y=y)


def resolve_config(problem: Any, *, preset: str = "fast", config: PINNConfig | None = None,
                   config_file: str | Path | None = None, steps: int | None = None,
                   overrides: dict[str, Any] | None = None) -> PINNConfig:
    """The run's config: the preset level of the problem (a PDE without presets of its own gets
    ``generic_config``), or ``config``; then TOML, --set overrides, --steps."""
    from pdes.pinn.configs import LEVELS, generic_config

    problem = check_problem(problem)
    if config is not None:
        base = config
    elif problem.name in LEVELS:
        base = get_config(problem.name, preset)
    else:
        base = generic_config(problem, preset)
    return apply_overrides(base, config_file=config_file, overrides=overrides, steps=steps)


def check_problem(problem: Any) -> Any:
    """The problem as a PINN solves it: a ``pdes.problems.Problem`` as it is, ``Heat2D`` as its
    ``PDE`` 2-D in space; ValueError otherwise."""
    from pdes.problems import Heat2D, Problem

    if isinstance(problem, Heat2D):
        return problem.as_pde()
    if not isinstance(problem, Problem):
        raise ValueError(f"PINNs solve time-dependent problems (heat, wave, burgers, heat2d, allen_cahn, kdv or a "
                         f"pdes.PDE), got {type(problem).__name__}")
    return problem


def check_one_dimensional(problem: Any, what: str) -> Any:
    """The problem (as ``check_problem`` gives it) if it is 1-D in space; else ValueError "{what}
    for problems in one space dimension; NAME is 2-D" (inverse runs and ensembles are 1-D)."""
    problem = check_problem(problem)
    if problem.dims != 1:
        raise ValueError(f"{what} for problems in one space dimension; {problem.name} is {problem.dims}-D")
    return problem


def problem_kind(problem: Any) -> str:
    """The name of a problem an inverse PINN can solve (one space dimension); ValueError otherwise."""
    return check_one_dimensional(problem, "identifying coefficients works").name


def solve_pinn(problem: Any, *, nx: int = 256, nt: int = 100, seed: int = 0, preset: str = "fast",
               config: PINNConfig | None = None, config_file: str | Path | None = None, steps: int | None = None,
               resume: str | Path | None = None, checkpoint_dir: str | Path | None = None,
               overrides: dict[str, Any] | None = None, progress: bool = True) -> xr.Dataset:
    """Train a PINN for ``problem`` and return its solution Dataset on the nt x nx grid (nt x
    nx x nx, y like x, for a problem 2-D in space; the training history's rel_l2 is then
    measured on every k-th point of x and y, at most 64 of each).

    The Dataset has ``u`` (the network), ``u_true`` (exact solution), attrs ``config``
    (JSON), ``preset``, ``rel_l2``, ``steps_done``, ``stopped`` and the training history as
    variables ``history_<name>`` over dim ``step`` (loss, loss_<term>, weight_<term>, rel_l2,
    wall_time_s, phase: 0 Adam, 1 quasi-Newton).
    """
    from pdes.solution import solution_dataset

    given, problem = problem, check_problem(problem)
    for name, value in (("nx", nx), ("nt", nt)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 2:
            raise ValueError(f"{name} must be an integer >= 2, got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    cfg = resolve_config(problem, preset=preset, config=config, config_file=config_file, steps=steps,
                         overrides=overrides)
    pinn = build_pinn(problem, cfg)
    t = np.linspace(0.0, float(problem.t_end), nt)
    x = np.linspace(float(problem.x_min), float(problem.x_max), nx)
    y = problem.y_grid(nx)
    u_ref = reference_solution(problem, t, x, y)
    if y is None:
        result = train(pinn, seed=seed, t_grid=t, x_grid=x, u_ref=u_ref, progress=progress,
                       checkpoint_dir=checkpoint_dir, resume=resume)
    else:  # the history on a coarser grid: every k-th point of x and y
        k = -(-nx // 64)
        result = train(pinn, seed=seed, t_grid=t, x_grid=x[::k], y_grid=y[::k],
                       u_ref=None if u_ref is None else u_ref[:, ::k, ::k], progress=progress,
                       checkpoint_dir=checkpoint_dir, resume=resume)
    with x64_if(uses_float64(result.params)):
        u = np.asarray(_predict(PROGRAMS, pinn, result.params, t, x, y), dtype=np.float64)
    rel = float(np.linalg.norm(u - u_ref) / np.linalg.norm(u_ref)) if u_ref is not None else math.nan
    ds = solution_dataset(
        u, t=t, x=x, y=y, equation=problem.name, method="pinn", params=problem_params(given),
        config={"preset": preset if config is None else "custom", **cfg.to_dict()}, seed=seed,
        wall_time_s=result.wall_time_s, u_true=u_ref,
        attrs={"preset": preset if config is None else "custom", "rel_l2": rel, "steps_done": result.steps_done,
               "stopped": result.stopped})
    hist = result.history
    steps_coord = hist.get("step", np.zeros(0))
    data = {f"history_{k}": xr.DataArray(v, dims=("step",)) for k, v in hist.items() if k != "step"}
    ds = ds.assign(data).assign_coords(step=xr.DataArray(steps_coord, dims=("step",),
                                                          attrs={"units": "1", "long_name": "training step"}))
    return ds
