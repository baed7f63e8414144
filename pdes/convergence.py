"""Convergence studies of the reference solvers (the numbers behind the README's figure).

Each study returns plain arrays; ``pdes.plotting.plot_convergence`` draws them.

* ``spectral_points_study``: error of the spectral heat and wave solutions against their exact
  solutions as the number of grid points (Fourier modes) grows (smooth data: exponential convergence).
* ``etdrk4_dt_study``: error of ETDRK4 on periodic Burgers against a fine-step run on the same
  grid as dt shrinks (fourth order).
* ``cole_hopf_nodes_study``: change of the Cole–Hopf Burgers preset as the number of
  Gauss–Hermite nodes grows (converged to rounding from ~80 nodes).
"""

from __future__ import annotations

import numpy as np

from pdes.exact import burgers_cole_hopf, exact_solution
from pdes.problems import Heat, Wave
from pdes.solution import rel_l2
from pdes.spectral import solve_periodic_burgers, solve_spectral

__all__ = ["cole_hopf_nodes_study", "etdrk4_dt_study", "smooth_odd", "spectral_points_study"]


def smooth_odd(x: np.ndarray) -> np.ndarray:
    """sin(pi x) exp(cos(pi x)): zero at 0 and 1, analytic odd 2-periodic extension, every sine mode."""
    return np.sin(np.pi * x) * np.exp(np.cos(np.pi * x))


def spectral_points_study(points: tuple[int, ...] = (8, 12, 16, 20, 24, 28, 32)) -> dict[str, np.ndarray]:
    """Relative L2 error of spectral heat (alpha = 0.01) and wave (c = 2, with initial velocity)
    with smooth_odd data against the exact solutions, on a 17 x 5 grid, per number of grid points."""
    heat = Heat(initial=smooth_odd, alpha=0.01)
    wave = Wave(initial=smooth_odd, initial_velocity=lambda x: np.sin(2 * np.pi * x) * np.exp(np.cos(2 * np.pi * x)))
    out: dict[str, np.ndarray] = {"points": np.asarray(points)}
    for name, problem in (("heat", heat), ("wave", wave)):
        errs = []
        for n in points:
            s = solve_spectral(problem, nx=17, nt=5, n_points=int(n))
            errs.append(rel_l2(s.u, exact_solution(problem, s.t, s.x)))
        out[name] = np.asarray(errs)
    return out


def etdrk4_dt_study(steps: tuple[int, ...] = (25, 50, 100, 200, 400), nu: float = 0.05, n: int = 128) -> dict[str, np.ndarray]:
    """Relative L2 error at t = 1 of ETDRK4 on periodic Burgers (u0 = sin 2 pi x + 0.5 cos 4 pi x
    + 0.3, n points) against 16x the finest step count on the same grid, per step count."""
    x = np.arange(n) / n
    u0 = (np.sin(2 * np.pi * x) + 0.5 * np.cos(4 * np.pi * x) + 0.3)[None]
    ref = solve_periodic_burgers(u0, nu=nu, t_save=[1.0], n_steps=16 * max(steps))
    errs = [rel_l2(solve_periodic_burgers(u0, nu=nu, t_save=[1.0], n_steps=s), ref) for s in steps]
    return {"dt": 1.0 / np.asarray(steps, dtype=float), "error": np.asarray(errs)}


def cole_hopf_nodes_study(nodes: tuple[int, ...] = (20, 30, 40, 50, 60, 70, 80, 100, 150)) -> dict[str, np.ndarray]:
    """Max change of the Cole–Hopf Burgers preset (257 x 21 grid) against 800 Gauss–Hermite nodes."""
    t, x = np.linspace(0, 1, 21), np.linspace(-1, 1, 257)
    ref = burgers_cole_hopf(t, x, n_nodes=800)
    errs = [np.abs(burgers_cole_hopf(t, x, n_nodes=m) - ref).max() for m in nodes]
    return {"nodes": np.asarray(nodes), "error": np.asarray(errs)}
