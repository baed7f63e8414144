"""Frozen specifications of the PDE problems and the presets of DESIGN.md section 3.

Each problem knows its equation, domain, coefficients and initial data, and checks them
when built: a bad value raises ``ValueError`` naming it (the command line turns that
into exit code 2). Initial data of the heat and wave problems is either a tuple of sine
coefficients ``b_k`` (``u0(x) = sum_k b_k sin(k pi (x - x_min) / L)``, k = 1, 2, ...) or
any callable ``u0(x)`` on the domain.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

__all__ = [
    "BURGERS",
    "HEAT",
    "HEAT2D",
    "OPERATOR_BURGERS",
    "PRESETS",
    "WAVE",
    "Burgers",
    "Heat",
    "Heat2D",
    "PeriodicBurgers",
    "Problem",
    "Wave",
    "problem_params",
    "sine_series",
]


def _check_positive(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


def _check_interval(name: str, lo: float, hi: float) -> None:
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise ValueError(f"{name} must be a finite interval with {name}_min < {name}_max, got [{lo}, {hi}]")


def _check_coeffs(name: str, coeffs: tuple[float, ...] | None) -> None:
    if coeffs is None:
        return
    arr = np.asarray(coeffs, dtype=float)
    if arr.ndim not in (1, 2) or arr.size == 0 or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be a non-empty tuple of finite sine coefficients, got {coeffs!r}")


def sine_series(coeffs: Any, x: np.ndarray, x_min: float, length: float) -> np.ndarray:
    """sum_k b_k sin(k pi (x - x_min) / length), k = 1..K. coeffs: (K,), x: any shape."""
    b = np.asarray(coeffs, dtype=float)
    k = np.arange(1, b.size + 1)
    xi = (np.asarray(x, dtype=float)[..., None] - x_min) / length
    return np.sin(math.pi * k * xi) @ b


@dataclass(frozen=True)
class Heat:
    """u_t = alpha u_xx on x in [x_min, x_max], t in [0, t_end]; u = 0 at both ends.

    The initial condition is ``initial`` (a callable u0(x)) if given, else the sine
    series with ``sine_coeffs``.
    """

    alpha: float = 0.1
    x_min: float = 0.0
    x_max: float = 1.0
    t_end: float = 1.0
    sine_coeffs: tuple[float, ...] | None = (1.0, 0.0, 0.5)
    initial: Callable[[np.ndarray], np.ndarray] | None = field(default=None, compare=False)
    name: str = "heat"

    def __post_init__(self) -> None:
        _check_positive("alpha", self.alpha)
        _check_interval("x", self.x_min, self.x_max)
        _check_positive("t_end", self.t_end)
        _check_coeffs("sine_coeffs", self.sine_coeffs)
        if self.initial is None and self.sine_coeffs is None:
            raise ValueError("heat needs initial data: give sine_coeffs or an initial callable")

    @property
    def length(self) -> float:
        return self.x_max - self.x_min

    def u0(self, x: np.ndarray) -> np.ndarray:
        """Initial condition at points x (any shape)."""
        if self.initial is not None:
            return np.asarray(self.initial(np.asarray(x, dtype=float)), dtype=float)
        return sine_series(self.sine_coeffs, x, self.x_min, self.length)


@dataclass(frozen=True)
class Wave:
    """u_tt = c^2 u_xx on x in [x_min, x_max], t in [0, t_end]; u = 0 at both ends.

    u(x, 0) from ``initial`` or ``sine_coeffs``; u_t(x, 0) from ``initial_velocity`` or
    ``velocity_coeffs`` (an empty tuple means zero velocity).
    """

    c: float = 2.0
    x_min: float = 0.0
    x_max: float = 1.0
    t_end: float = 1.0
    sine_coeffs: tuple[float, ...] | None = (1.0, 0.0, 0.0, 0.5)
    velocity_coeffs: tuple[float, ...] | None = ()
    initial: Callable[[np.ndarray], np.ndarray] | None = field(default=None, compare=False)
    initial_velocity: Callable[[np.ndarray], np.ndarray] | None = field(default=None, compare=False)
    name: str = "wave"

    def __post_init__(self) -> None:
        _check_positive("c", self.c)
        _check_interval("x", self.x_min, self.x_max)
        _check_positive("t_end", self.t_end)
        _check_coeffs("sine_coeffs", self.sine_coeffs)
        if self.velocity_coeffs:
            _check_coeffs("velocity_coeffs", self.velocity_coeffs)
        if self.initial is None and self.sine_coeffs is None:
            raise ValueError("wave needs initial data: give sine_coeffs or an initial callable")

    @property
    def length(self) -> float:
        return self.x_max - self.x_min

    def u0(self, x: np.ndarray) -> np.ndarray:
        """Initial displacement at points x (any shape)."""
        if self.initial is not None:
            return np.asarray(self.initial(np.asarray(x, dtype=float)), dtype=float)
        return sine_series(self.sine_coeffs, x, self.x_min, self.length)

    def v0(self, x: np.ndarray) -> np.ndarray:
        """Initial velocity u_t(x, 0) at points x (any shape)."""
        if self.initial_velocity is not None:
            return np.asarray(self.initial_velocity(np.asarray(x, dtype=float)), dtype=float)
        if not self.velocity_coeffs:
            return np.zeros_like(np.asarray(x, dtype=float))
        return sine_series(self.velocity_coeffs, x, self.x_min, self.length)


def _minus_sin_pi(x: np.ndarray) -> np.ndarray:
    return -np.sin(np.pi * x)


@dataclass(frozen=True)
class Burgers:
    """u_t + u u_x = nu u_xx on x in [x_min, x_max], t in [0, t_end]; u(x_min) = u(x_max) = 0.

    The preset is the Raissi et al. (2019) benchmark: u0 = -sin(pi x) on [-1, 1],
    nu = 0.01 / pi, which forms a steep front at x = 0 near t = 0.3.
    """

    nu: float = 0.01 / math.pi
    x_min: float = -1.0
    x_max: float = 1.0
    t_end: float = 1.0
    initial: Callable[[np.ndarray], np.ndarray] = field(default=_minus_sin_pi, compare=False)
    name: str = "burgers"

    def __post_init__(self) -> None:
        _check_positive("nu", self.nu)
        _check_interval("x", self.x_min, self.x_max)
        _check_positive("t_end", self.t_end)

    @property
    def length(self) -> float:
        return self.x_max - self.x_min

    def u0(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.initial(np.asarray(x, dtype=float)), dtype=float)


@dataclass(frozen=True)
class PeriodicBurgers:
    """u_t + u u_x = nu u_xx, periodic on [0, length), t in [0, t_end]: the FNO-paper task.

    Initial data are Gaussian random fields N(0, sigma^2 (-Laplacian + tau^2 I)^-alpha);
    the preset (sigma = 25, tau = 5, alpha = 2) is N(0, 625 (-Laplacian + 25 I)^-2).
    """

    nu: float = 0.1
    length: float = 1.0
    t_end: float = 1.0
    grf_alpha: float = 2.0
    grf_tau: float = 5.0
    grf_sigma: float = 25.0
    name: str = "operator_burgers"

    def __post_init__(self) -> None:
        for f in ("nu", "length", "t_end", "grf_alpha", "grf_tau", "grf_sigma"):
            _check_positive(f, getattr(self, f))

    @property
    def x_min(self) -> float:
        return 0.0

    @property
    def x_max(self) -> float:
        return self.length


@dataclass(frozen=True)
class Heat2D:
    """u_t = alpha (u_xx + u_yy) on the unit square (scaled by length), zero Dirichlet.

    u0(x, y) = sum_{k,l} b_kl sin(k pi x / L) sin(l pi y / L), ``sine_coeffs`` is b as a
    tuple of rows (k = 1.., l = 1..), or ``initial`` a callable u0(x, y).
    """

    alpha: float = 0.1
    length: float = 1.0
    t_end: float = 1.0
    sine_coeffs: tuple[tuple[float, ...], ...] | None = ((1.0, 0.0, 0.0), (0.0, 0.0, 0.5))
    initial: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = field(default=None, compare=False)
    name: str = "heat2d"

    def __post_init__(self) -> None:
        _check_positive("alpha", self.alpha)
        _check_positive("length", self.length)
        _check_positive("t_end", self.t_end)
        _check_coeffs("sine_coeffs", self.sine_coeffs)
        if self.initial is None and self.sine_coeffs is None:
            raise ValueError("heat2d needs initial data: give sine_coeffs or an initial callable")

    @property
    def x_min(self) -> float:
        return 0.0

    @property
    def x_max(self) -> float:
        return self.length

    def u0(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Initial condition at points (x, y) of one shape."""
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        if self.initial is not None:
            return np.asarray(self.initial(x, y), dtype=float)
        b = np.asarray(self.sine_coeffs, dtype=float)
        k = np.arange(1, b.shape[0] + 1)
        l_ = np.arange(1, b.shape[1] + 1)
        sx = np.sin(math.pi * k * x[..., None] / self.length)  # (..., K)
        sy = np.sin(math.pi * l_ * y[..., None] / self.length)  # (..., L)
        return np.einsum("...k,kl,...l->...", sx, b, sy)


Problem = Heat | Wave | Burgers | PeriodicBurgers | Heat2D

BURGERS = Burgers()
HEAT = Heat()
WAVE = Wave()
HEAT2D = Heat2D()
OPERATOR_BURGERS = PeriodicBurgers()
PRESETS: dict[str, Problem] = {
    "burgers": BURGERS,
    "heat": HEAT,
    "wave": WAVE,
    "heat2d": HEAT2D,
    "operator_burgers": OPERATOR_BURGERS,
}


def problem_params(problem: Problem) -> dict[str, Any]:
    """The problem's parameters as a JSON-able dict (callables are named, not serialized)."""
    out: dict[str, Any] = {}
    for f in fields(problem):
        value = getattr(problem, f.name)
        if callable(value):
            out[f.name] = getattr(value, "__name__", repr(value))
        elif isinstance(value, tuple):
            out[f.name] = [list(v) if isinstance(v, tuple) else v for v in value]
        else:
            out[f.name] = value
    return out


def with_overrides(problem: Problem, **changes: Any) -> Problem:
    """``dataclasses.replace`` that ignores None values (so CLI flags left unset keep the preset)."""
    return replace(problem, **{k: v for k, v in changes.items() if v is not None})
