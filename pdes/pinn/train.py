"""Training driver: compiled chunks, error curve, progress bar, NaN guard, checkpoints, resume.

``train(pinn, ...)`` runs the Adam phase then the L-BFGS phase in chunks of ``log_every``
steps (each chunk one compiled ``lax.scan``), evaluates against the reference after each
chunk, and returns the final parameters and the history. ``solve_pinn`` wraps it into the
solution Dataset of DESIGN.md section 2 with the history alongside (``history_<name>``,
dim ``step``).
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from pdes.pinn.checkpoint import load_checkpoint, restore_tree, save_checkpoint
from pdes.pinn.configs import PINNConfig, apply_overrides, get_config
from pdes.pinn.core import PINN, TrainState, build_pinn
from pdes.pinn.precision import all_finite, cast_floats, uses_float64, x64_if
from pdes.problems import Burgers, Heat, Wave, problem_params

__all__ = ["TrainResult", "reference_solution", "resolve_config", "solve_pinn", "train"]


@dataclass
class TrainResult:
    """Final parameters (of the last good state), the history and why training stopped."""

    params: Any
    history: dict[str, np.ndarray]
    steps_done: int
    stopped: str = "completed"
    wall_time_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def reference_solution(problem: Heat | Wave | Burgers, t: np.ndarray, x: np.ndarray) -> np.ndarray | None:
    """The exact solution on the grid (pdes.exact), or None where there is none."""
    try:
        from pdes.exact import exact_solution
    except ImportError:  # pragma: no cover - exact.py is part of the package
        return None
    try:
        return np.asarray(exact_solution(problem, t, x), dtype=np.float64)
    except ValueError:
        return None


def _problem_id(problem: Heat | Wave | Burgers) -> dict[str, Any]:
    return {"name": problem.name, "params": json.loads(json.dumps(problem_params(problem), default=str))}


def _describe(pid: dict[str, Any]) -> str:
    ps = pid.get("params", {})
    shown = {k: v for k, v in ps.items() if k in ("nu", "alpha", "c", "x_min", "x_max", "t_end")}
    return f"{pid.get('name')} {shown}"


def train(pinn: PINN, *, seed: int = 0, t_grid: np.ndarray, x_grid: np.ndarray, u_ref: np.ndarray | None,
          progress: bool = True, checkpoint_dir: str | Path | None = None, resume: str | Path | None = None,
          callback: Callable[[dict[str, float]], None] | None = None) -> TrainResult:
    """Train ``pinn``: Adam for config.steps, then quasi-Newton (BFGS/L-BFGS) for config.qn_steps.

    After each chunk of ``log_every`` steps the loss terms, weights, relative L2 error on the
    grid (t_grid x x_grid against u_ref) and wall time are recorded and passed to
    ``callback``. A non-finite loss or parameter stops training with a message on stderr;
    the last good state is kept (and checkpointed). ``checkpoint_dir`` gets
    ``checkpoint.npz`` every ``checkpoint_every`` steps and at the end; ``resume`` continues
    from such a directory (the same problem and network are required).
    """
    from tqdm.auto import tqdm

    c = pinn.config
    total = c.steps + c.qn_steps
    pid = _problem_id(pinn.problem)
    f64 = c.dtype == "float64"
    lb64 = c.qn_dtype == "float64" or f64
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    cpu_start = time.process_time()
    elapsed0 = 0.0
    step = 0
    base_key = jax.random.key(seed)

    with x64_if(f64):
        params = pinn.init(jax.random.fold_in(base_key, 0))
        state = pinn.init_train_state(params, jax.random.fold_in(base_key, 1))
    lbfgs_params = None
    if resume is not None:
        leaves, meta = load_checkpoint(resume)
        if meta.get("problem") != pid:
            raise ValueError(
                f"checkpoint {str(resume)!r} is for problem {_describe(meta.get('problem', {}))}, "
                f"not {_describe(pid)}")
        step = int(meta["step"])
        history = [dict(h) for h in meta.get("history", [])]
        elapsed0 = float(meta.get("wall_time_s", 0.0))
        if meta["phase"] == "adam":
            with x64_if(f64):
                template = {"params": state.params, "opt_state": state.opt_state, "weights": state.weights,
                            "key": jax.random.key_data(state.key)}
                tree = restore_tree(template, leaves, f"checkpoint {str(resume)!r}")
                state = TrainState(tree["params"], tree["opt_state"], tree["weights"],
                                   jax.random.wrap_key_data(tree["key"]), jnp.asarray(step, jnp.int32))
        else:
            with x64_if(lb64):
                template = {"params": cast_floats(state.params, jnp.float64 if lb64 else jnp.float32),
                            "weights": cast_floats(state.weights, jnp.float64 if lb64 else jnp.float32)}
                tree = restore_tree(template, leaves, f"checkpoint {str(resume)!r}")
                lbfgs_params, lbfgs_weights = tree["params"], tree["weights"]
        if step >= total:
            step = total

    bar = tqdm(total=total, initial=step, disable=not progress, file=sys.stderr, desc=f"pinn {pinn.problem.name}",
               dynamic_ncols=True, leave=False)
    stopped = "completed"
    ref_norm = float(np.linalg.norm(u_ref)) if u_ref is not None else math.nan

    def out_of_time() -> bool:  # the time budget is spent and steps are left
        return c.max_wall_s > 0 and step < total and time.perf_counter() - start >= c.max_wall_s

    budget_note = f"time budget max_wall_s={c.max_wall_s:g} s reached"

    def evaluate(p) -> float:
        if u_ref is None:
            return math.nan
        u = np.asarray(pinn.jitted("predict_grid")(p, t_grid, x_grid), dtype=np.float64)
        return float(np.linalg.norm(u - u_ref) / ref_norm)

    def record(metrics: dict[str, Any], p: Any, phase: int) -> dict[str, float]:
        row = {"step": float(step), "phase": float(phase)}
        row.update({k: float(v) for k, v in metrics.items()})
        row["rel_l2"] = evaluate(p)
        row["wall_time_s"] = elapsed0 + time.perf_counter() - start
        row["cpu_time_s"] = time.process_time() - cpu_start  # this process, all threads; this run only
        history.append(row)
        bar.set_postfix(loss=f"{row['loss']:.3e}", rel_l2=f"{row['rel_l2']:.3e}", refresh=False)
        if callback is not None:
            callback(row)
        return row

    def checkpoint(tree: Any, phase: str) -> None:
        if checkpoint_dir is None:
            return
        meta = {"problem": pid, "config": c.to_dict(), "phase": phase, "step": step, "seed": seed,
                "history": history, "wall_time_s": elapsed0 + time.perf_counter() - start}
        save_checkpoint(checkpoint_dir, tree, meta)

    def adam_tree(s: TrainState) -> dict[str, Any]:
        return {"params": s.params, "opt_state": s.opt_state, "weights": s.weights, "key": jax.random.key_data(s.key)}

    # (tree, phase) of the last good state, for the NaN guard's checkpoint
    if lbfgs_params is None:
        good = (adam_tree(state), "adam")
    else:
        good = ({"params": lbfgs_params, "weights": lbfgs_weights}, "lbfgs")
    # ---------------------------------------------------------------- Adam
    adam_chunk = pinn.jitted("adam_chunk", static_argnums=1)
    with x64_if(f64):
        while step < c.steps:
            n = min(c.log_every, c.steps - step)
            new_state, metrics = adam_chunk(state, n)
            if not (math.isfinite(float(metrics["loss"])) and all_finite(new_state.params)):
                stopped = (f"non-finite loss in the Adam steps {step + 1}..{step + n}; "
                           f"kept the last good state (step {step})")
                break
            state = new_state
            step += n
            bar.update(n)
            record(metrics, state.params, 0)
            good = (adam_tree(state), "adam")
            if step % c.checkpoint_every == 0 or step == c.steps:
                checkpoint(*good)
            if out_of_time():
                stopped = f"{budget_note} at step {step} of {total}"
                break
        final_params = state.params

    # ---------------------------------------------------------------- quasi-Newton
    if stopped == "completed" and step < total:
        lb_dtype = jnp.float64 if lb64 else jnp.float32
        with x64_if(lb64):
            if lbfgs_params is None:
                lbfgs_params = cast_floats(final_params, lb_dtype)
                lbfgs_weights = cast_floats(state.weights, lb_dtype)
            params, weights = lbfgs_params, lbfgs_weights
            chunk = pinn.jitted("qn_chunk", static_argnums=6)
            opt_state, batch = pinn.jitted("init_qn")(params)
            fresh = True
            while step < total:
                k = step - c.steps
                fresh = fresh or k % c.qn_resample_every == 0
                n = min(c.log_every, total - step, c.qn_resample_every - k % c.qn_resample_every)
                new_params, new_opt, new_batch, metrics = chunk(
                    params, opt_state, weights, batch, jax.random.fold_in(base_key, 1000 + step), jnp.asarray(fresh), n)
                if not (math.isfinite(float(metrics["loss"])) and all_finite(new_params)):
                    stopped = (f"non-finite loss in the quasi-Newton steps {step + 1}..{step + n}; "
                               f"kept the last good state (step {step})")
                    break
                fresh = False
                batch = new_batch
                params, opt_state = new_params, new_opt
                step += n
                bar.update(n)
                record(metrics, params, 1)
                good = ({"params": params, "weights": weights}, "lbfgs")
                if step % c.checkpoint_every == 0 or step == total:
                    checkpoint(*good)
                if out_of_time():
                    stopped = f"{budget_note} at step {step} of {total}"
                    break
            final_params = params
    elif stopped == "completed" and lbfgs_params is not None:
        final_params = lbfgs_params
    bar.close()
    if stopped != "completed":  # time budget or NaN guard: checkpoint the last good state
        if stopped.startswith(budget_note):
            print(f"pdes: note: {stopped}; --resume continues from the checkpoint", file=sys.stderr)
        else:
            print(f"pdes: warning: NaN guard: {stopped}", file=sys.stderr)
        checkpoint(*good)
    hist = {k: np.array([row.get(k, math.nan) for row in history], dtype=np.float64)
            for k in dict.fromkeys(k for row in history for k in row)}
    return TrainResult(final_params, hist, step, stopped, elapsed0 + time.perf_counter() - start)


def resolve_config(problem: Heat | Wave | Burgers, *, preset: str = "fast", config: PINNConfig | None = None,
                   config_file: str | Path | None = None, steps: int | None = None,
                   overrides: dict[str, Any] | None = None) -> PINNConfig:
    """The run's config: the preset level (or ``config``), then TOML, --set overrides, --steps."""
    base = config if config is not None else get_config(problem.name if problem.name in ("heat", "wave", "burgers")
                                                        else problem_kind(problem), preset)
    return apply_overrides(base, config_file=config_file, overrides=overrides, steps=steps)


def problem_kind(problem: Any) -> str:
    """'heat', 'wave' or 'burgers' for a problem a PINN can solve; ValueError otherwise."""
    if isinstance(problem, Heat):
        return "heat"
    if isinstance(problem, Wave):
        return "wave"
    if isinstance(problem, Burgers):
        return "burgers"
    raise ValueError(f"PINNs support heat, wave and burgers problems, got {type(problem).__name__}")


def solve_pinn(problem: Heat | Wave | Burgers, *, nx: int = 256, nt: int = 100, seed: int = 0, preset: str = "fast",
               config: PINNConfig | None = None, config_file: str | Path | None = None, steps: int | None = None,
               resume: str | Path | None = None, checkpoint_dir: str | Path | None = None,
               overrides: dict[str, Any] | None = None, progress: bool = True) -> xr.Dataset:
    """Train a PINN for ``problem`` and return its solution Dataset on the nt x nx grid.

    The Dataset has ``u`` (the network), ``u_true`` (exact solution), attrs ``config``
    (JSON), ``preset``, ``rel_l2``, ``steps_done``, ``stopped`` and the training history as
    variables ``history_<name>`` over dim ``step`` (loss, loss_<term>, weight_<term>, rel_l2,
    wall_time_s, phase: 0 Adam, 1 quasi-Newton).
    """
    from pdes.solution import solution_dataset

    problem_kind(problem)
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
    u_ref = reference_solution(problem, t, x)
    result = train(pinn, seed=seed, t_grid=t, x_grid=x, u_ref=u_ref, progress=progress,
                   checkpoint_dir=checkpoint_dir, resume=resume)
    with x64_if(uses_float64(result.params)):
        u = np.asarray(pinn.jitted("predict_grid")(result.params, t, x), dtype=np.float64)
    rel = float(np.linalg.norm(u - u_ref) / np.linalg.norm(u_ref)) if u_ref is not None else math.nan
    ds = solution_dataset(
        u, t=t, x=x, equation=problem.name, method="pinn", params=problem_params(problem),
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
