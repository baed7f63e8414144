"""``solve(problem, method=...)``: one entry point that returns the solution Dataset.

Methods: ``"exact"`` (``pdes.exact``), ``"spectral"`` (``pdes.spectral``) and ``"pinn"``
(``pdes.pinn.solve_pinn``, imported lazily). The grid is t = linspace(0, t_end, nt) and
x = linspace(x_min, x_max, nx), both ends included (y = linspace(0, L, nx) for heat2d). Every
result is built by ``solution_dataset`` (DESIGN.md section 2); for the spectral method
``u_true`` holds the exact solution on the same grid (the exact method's u *is* the exact
solution, so it carries no ``u_true``).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import xarray as xr

from pdes.problems import PDE, PRESETS, Burgers, Heat, Heat2D, PeriodicBurgers, Problem, Wave, problem_params
from pdes.solution import solution_dataset

__all__ = ["METHODS", "resolve_problem", "solve"]

METHODS = ("exact", "spectral", "pinn")
_EXACT_KWARGS = {"n_nodes"}
_SPECTRAL_KWARGS = {"n_steps", "n_points"}


def resolve_problem(problem: Problem | str) -> Problem:
    """A problem instance from an instance or a preset name ('burgers', 'heat', 'wave', 'heat2d')."""
    if isinstance(problem, str):
        if problem not in PRESETS:
            raise ValueError(f"unknown equation {problem!r}; choose one of {sorted(PRESETS)}")
        return PRESETS[problem]
    if not hasattr(problem, "__dataclass_fields__") or not hasattr(problem, "name"):
        raise ValueError(f"not a problem: {problem!r}")
    return problem


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_kwargs(method: str, kwargs: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise ValueError(f"method {method!r} takes no option(s) {unknown}; it takes {sorted(allowed) or 'none'}")
    for key, value in kwargs.items():
        if value is not None:
            _check_int(key, value, 2)


def _solve_pde(problem: PDE, method: str, t: np.ndarray, x: np.ndarray, config: dict[str, Any], seed: int,
               method_kwargs: dict[str, Any]) -> xr.Dataset:
    """A user's PDE: "exact" from its closed form, "spectral" from ``pdes.spectral.pde_reference``
    (periodic, linear part stated), with the closed form as u_true when there is one. A PDE
    2-D in space is solved on t x x x y, y with nx points like x."""
    from pdes.spectral import pde_reference

    y = problem.y_grid(x.size)

    if method == "exact":
        _check_kwargs(method, method_kwargs, set())
        if problem.exact is None:
            raise ValueError(f"{problem.name} has no closed form (give the PDE exact=u(t, x)), use --method "
                             "spectral or pinn")
    else:
        _check_kwargs(method, method_kwargs, _SPECTRAL_KWARGS)
    exact = problem.exact_on_grid(t, x, y)
    start = time.perf_counter()
    if method == "exact":
        u, u_true = exact, None
    else:
        u = pde_reference(problem, t, x, y=y, **{k: v for k, v in method_kwargs.items() if v is not None})
        u_true = exact
    wall = time.perf_counter() - start
    if not np.all(np.isfinite(u)):
        raise ValueError(f"the {method} solution of {problem.name} is not finite")
    return solution_dataset(u, t=t, x=x, y=y, equation=problem.name, method=method, params=problem_params(problem),
                            config=config, seed=seed, wall_time_s=wall, u_true=u_true)


def solve(
    problem: Problem | str,
    method: str = "exact",
    *,
    nx: int = 256,
    nt: int = 100,
    seed: int = 0,
    **method_kwargs: Any,
) -> xr.Dataset:
    """Solve ``problem`` with ``method`` on an (nt, nx) grid and return the solution Dataset.

    method_kwargs: exact: ``n_nodes`` (Gauss–Hermite nodes, Burgers); spectral: ``n_steps``
    (ETDRK4 steps, Burgers), ``n_points`` (points of the periodic grid); pinn: passed on to
    ``pdes.pinn.solve_pinn`` (preset, config_file, steps, resume, checkpoint_dir, overrides,
    progress). Raises ValueError naming a bad value before any work is done.
    """
    problem = resolve_problem(problem)
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {list(METHODS)}")
    nx = _check_int("nx", nx, 8)
    nt = _check_int("nt", nt, 2)
    seed = _check_int("seed", seed, 0)
    if isinstance(problem, PeriodicBurgers):
        raise ValueError("operator_burgers is the operator-learning task: use `python -m operators generate`")

    if method == "pinn":
        try:
            from pdes.pinn import solve_pinn
        except ImportError as err:
            raise ValueError(f"method 'pinn' is not available in this installation ({err})") from None
        return solve_pinn(problem, nx=nx, nt=nt, seed=seed, **method_kwargs)

    t = np.linspace(0.0, float(problem.t_end), nt)
    x = np.linspace(float(problem.x_min), float(problem.x_max), nx)
    y = np.linspace(0.0, float(problem.length), nx) if isinstance(problem, Heat2D) else None
    config: dict[str, Any] = {"method": method, "nx": nx, "nt": nt, "seed": seed, "t_end": problem.t_end}
    config.update({k: v for k, v in method_kwargs.items() if v is not None})
    config["problem"] = problem_params(problem)

    from pdes.exact import exact_solution

    if isinstance(problem, PDE):
        return _solve_pde(problem, method, t, x, config, seed, method_kwargs)
    if method == "exact":
        _check_kwargs(method, method_kwargs, _EXACT_KWARGS)
        kwargs = {k: v for k, v in method_kwargs.items() if v is not None}
        if kwargs and not isinstance(problem, Burgers):
            raise ValueError(f"option(s) {sorted(kwargs)} only apply to burgers")
        start = time.perf_counter()
        u = exact_solution(problem, t, x, y, **kwargs)
        wall = time.perf_counter() - start
        u_true = None
    else:
        from pdes.spectral import solve_burgers_dirichlet, solve_heat, solve_heat2d, solve_wave

        _check_kwargs(method, method_kwargs, _SPECTRAL_KWARGS)
        n_steps = method_kwargs.get("n_steps")
        n_points = method_kwargs.get("n_points")
        if n_points is not None and n_points % 2:
            raise ValueError(f"n_points must be even, got {n_points}")
        if n_steps is not None and not isinstance(problem, Burgers):
            raise ValueError(f"n_steps only applies to burgers ({problem.name} is integrated exactly in time)")
        start = time.perf_counter()
        if isinstance(problem, Heat2D):
            u = solve_heat2d(problem, t, x, y, n_points=n_points)
        elif isinstance(problem, Heat):
            u = solve_heat(problem, t, x, n_points=n_points)
        elif isinstance(problem, Wave):
            u = solve_wave(problem, t, x, n_points=n_points)
        else:
            u = solve_burgers_dirichlet(problem, t, x, n_points=n_points, n_steps=n_steps)
        wall = time.perf_counter() - start
        u_true = exact_solution(problem, t, x, y)
    if not np.all(np.isfinite(u)):
        raise ValueError(f"the {method} solution of {problem.name} is not finite")
    return solution_dataset(
        u,
        t=t,
        x=x,
        y=y,
        equation=problem.name,
        method=method,
        params=problem_params(problem),
        config=config,
        seed=seed,
        wall_time_s=wall if math.isfinite(wall) else None,
        u_true=u_true,
    )
