"""Frozen specifications of the PDE problems and the presets of DESIGN.md section 3.

Each problem knows its equation, domain, coefficients and initial data, and checks them
when built: a bad value raises ``ValueError`` naming it (the command line turns that
into exit code 2). Initial data of the heat and wave problems is either a tuple of sine
coefficients ``b_k`` (``u0(x) = sum_k b_k sin(k pi (x - x_min) / L)``, k = 1, 2, ...) or
any callable ``u0(x)`` on the domain.

Every time-dependent problem in one space dimension is a ``Problem``: the presets ``Heat``,
``Wave``, ``Burgers`` and the user's own ``PDE``. A problem states its residual as a Python
function of u and its derivatives, requested by name (``equation(u, u_t, u_x, u_xx, *,
coefficients)``: positional parameters name derivatives -- u, u_t, u_tt, u_x, u_xx, u_xxx,
u_xxxx and mixed ones such as u_tx --, keyword-only parameters name coefficients), its
boundary conditions (``Boundary``: periodic, Dirichlet or Neumann) and its initial data; the
PINN machinery (``pdes.pinn``) builds everything from that interface, the same way for the
presets and for a new equation::

    def allen_cahn(u, u_t, u_xx, *, eps):
        return u_t - eps * u_xx + 5 * u**3 - 5 * u

    problem = PDE("allen_cahn", allen_cahn, x_min=-1, x_max=1, t_end=1,
                  initial=lambda x: x**2 * jnp.cos(jnp.pi * x), boundary=PERIODIC, coeffs={"eps": 1e-4})
"""

from __future__ import annotations

import functools
import inspect
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

__all__ = [
    "ALLEN_CAHN",
    "BURGERS",
    "HEAT",
    "HEAT2D",
    "KDV",
    "OPERATOR_BURGERS",
    "PERIODIC",
    "PRESETS",
    "WAVE",
    "ZERO_DIRICHLET",
    "Boundary",
    "Burgers",
    "Heat",
    "Heat2D",
    "PDE",
    "PeriodicBurgers",
    "Problem",
    "Wave",
    "equation_signature",
    "load_problem",
    "parse_derivative",
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


# ----------------------------------------------------------------------------- the problem interface

_DERIVATIVE = re.compile(r"^u(?:_([txy]+))?$")
MAX_T_ORDER, MAX_X_ORDER = 2, 4


def parse_derivative(name: str) -> tuple[int, int, int]:
    """(order in t, order in x, order in y) of a derivative name: "u" -> (0, 0, 0), "u_xx" ->
    (0, 2, 0), "u_tx" or "u_xt" -> (1, 1, 0), "u_xy" -> (0, 1, 1) (y: problems 2-D in space).
    ValueError for anything else (orders up to 2 in t and 4 in each of x and y)."""
    m = _DERIVATIVE.match(name)
    letters = m.group(1) or "" if m else None
    if (letters is None or letters.count("t") > MAX_T_ORDER or letters.count("x") > MAX_X_ORDER
            or letters.count("y") > MAX_X_ORDER):
        raise ValueError(f"unknown derivative {name!r}: a residual may ask for u and its derivatives named "
                         f"u_t, u_tt, u_x ... u_xxxx, u_y ... u_yyyy and mixed ones such as u_tx or u_xy")
    return letters.count("t"), letters.count("x"), letters.count("y")


def equation_signature(equation: Callable[..., Any]) -> tuple[tuple[str, ...], dict[str, Any]]:
    """(derivative names, {coefficient name: default or None}) of a residual function: its
    positional parameters name derivatives (checked by ``parse_derivative``), its keyword-only
    parameters name coefficients."""
    if not callable(equation):
        raise ValueError(f"the equation must be a function of u and its derivatives, got {type(equation).__name__}")
    try:
        params = inspect.signature(equation).parameters.values()
    except (TypeError, ValueError):
        raise ValueError(f"cannot read the parameters of the equation {equation!r}") from None
    derivs: list[str] = []
    coeffs: dict[str, Any] = {}
    for p in params:
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            parse_derivative(p.name)
            derivs.append(p.name)
        elif p.kind == p.KEYWORD_ONLY:
            coeffs[p.name] = None if p.default is p.empty else p.default
        else:
            raise ValueError(f"the equation's parameter *{p.name} is not allowed: name each derivative, and "
                             "make coefficients keyword-only (after a bare *)")
    if not derivs:
        raise ValueError("the equation asks for no derivative of u: name them as parameters (u, u_t, u_xx, ...)")
    return tuple(derivs), coeffs


@dataclass(frozen=True)
class Boundary:
    """Boundary conditions in x. ``kind``: "periodic" (period x_max - x_min), "dirichlet"
    (u = left at x_min and u = right at x_max) or "neumann" (u_x = left / right). ``left``,
    ``right``: numbers or functions of t (traceable by JAX, e.g. written with jax.numpy)."""

    kind: str = "dirichlet"
    left: float | Callable[[Any], Any] = 0.0
    right: float | Callable[[Any], Any] = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("periodic", "dirichlet", "neumann"):
            raise ValueError(f"boundary kind must be periodic, dirichlet or neumann, got {self.kind!r}")
        for side in ("left", "right"):
            v = getattr(self, side)
            if not callable(v) and not (isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)):
                raise ValueError(f"boundary {side} value must be a finite number or a function of t, got {v!r}")

    def value(self, side: str, t: Any) -> Any:
        """The left or right value at times t (an array like t)."""
        v = getattr(self, side)
        return v(t) if callable(v) else v + 0.0 * t

    @property
    def homogeneous(self) -> bool:
        return not callable(self.left) and not callable(self.right) and self.left == 0 and self.right == 0


PERIODIC = Boundary("periodic")
ZERO_DIRICHLET = Boundary("dirichlet", 0.0, 0.0)


class Problem:
    """A time-dependent problem in one space dimension (two for a ``PDE`` with y_min, y_max):
    what every solver reads.

    Subclasses provide ``name``, ``x_min``, ``x_max``, ``t_end``, ``equation`` (the residual as
    a function of u and its derivatives, see the module doc), ``coefficients()`` ({name:
    value}), ``boundary`` (a ``Boundary``), ``u0(x)`` (numpy) and, for equations second order
    in time, ``v0(x)``."""

    boundary: Boundary = ZERO_DIRICHLET

    @property
    def length(self) -> float:
        return self.x_max - self.x_min

    @property
    def dims(self) -> int:
        """Space dimensions: 1, or 2 for a ``PDE`` given y_min and y_max."""
        return 1 if getattr(self, "y_min", None) is None else 2

    def y_grid(self, n: int) -> np.ndarray | None:
        """n points from y_min to y_max (the y axis of a grid, like x) for a problem 2-D in space;
        None in 1-D."""
        return np.linspace(float(self.y_min), float(self.y_max), n) if self.dims == 2 else None

    @property
    def box(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(lower corner, side lengths) of the space domain: ((x_min,), (L,)) or, 2-D, ((x_min,
        y_min), (L_x, L_y))."""
        if self.dims == 1:
            return (self.x_min,), (self.length,)
        return (self.x_min, self.y_min), (self.length, self.y_max - self.y_min)

    @property
    def derivatives(self) -> tuple[str, ...]:
        """The derivatives the residual asks for."""
        return equation_signature(self.equation)[0]

    @property
    def second_order_in_time(self) -> bool:
        return any(parse_derivative(d)[0] >= 2 for d in self.derivatives)

    def coefficients(self) -> dict[str, float]:  # pragma: no cover - every subclass defines it
        raise NotImplementedError


def sine_series(coeffs: Any, x: np.ndarray, x_min: float, length: float) -> np.ndarray:
    """sum_k b_k sin(k pi (x - x_min) / length), k = 1..K. coeffs: (K,), x: any shape."""
    b = np.asarray(coeffs, dtype=float)
    k = np.arange(1, b.size + 1)
    xi = (np.asarray(x, dtype=float)[..., None] - x_min) / length
    return np.sin(math.pi * k * xi) @ b


@dataclass(frozen=True)
class Heat(Problem):
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

    @staticmethod
    def equation(u_t, u_xx, *, alpha):
        """u_t - alpha u_xx."""
        return u_t - alpha * u_xx

    def coefficients(self) -> dict[str, float]:
        return {"alpha": float(self.alpha)}

    def u0(self, x: np.ndarray) -> np.ndarray:
        """Initial condition at points x (any shape)."""
        if self.initial is not None:
            return np.asarray(self.initial(np.asarray(x, dtype=float)), dtype=float)
        return sine_series(self.sine_coeffs, x, self.x_min, self.length)


@dataclass(frozen=True)
class Wave(Problem):
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

    @staticmethod
    def equation(u_tt, u_xx, *, c):
        """u_tt - c^2 u_xx."""
        return u_tt - c**2 * u_xx

    def coefficients(self) -> dict[str, float]:
        return {"c": float(self.c)}

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
class Burgers(Problem):
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

    @staticmethod
    def equation(u, u_t, u_x, u_xx, *, nu):
        """u_t + u u_x - nu u_xx."""
        return u_t + u * u_x - nu * u_xx

    def coefficients(self) -> dict[str, float]:
        return {"nu": float(self.nu)}

    def u0(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.initial(np.asarray(x, dtype=float)), dtype=float)


def _as_pairs(values: Mapping[str, float] | tuple | None, what: str) -> tuple[tuple[str, float], ...]:
    items = values.items() if isinstance(values, Mapping) else (values or ())
    out = []
    for name, v in items:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ValueError(f"{what} {name!r} must be a finite number, got {v!r}")
        out.append((str(name), float(v)))
    return tuple(out)


@dataclass(frozen=True, eq=False)
class PDE(Problem):
    """The user's own equation in one space dimension, or two with ``y_min`` and ``y_max``.

    ``equation``: the residual, a function of u and its derivatives requested by name, with its
    coefficients as keyword-only parameters (values from ``coeffs``, else the parameter's
    default); the PINN computes the derivatives by forward-mode AD. ``initial`` (and, when the
    equation asks for u_tt, ``initial_velocity``): functions of x, traceable by JAX (write them
    with ``jax.numpy``; numpy arrays work too). ``boundary``: a ``Boundary`` or "periodic".
    ``unknowns``: coefficients an inverse problem identifies (``pdes identify``).
    Spectral path (``--method spectral``, periodic problems): u_t = L u + N(u) with ``linear``
    the Fourier symbol L(k, **coeffs) of the linear part (k: angular wavenumbers) and
    ``nonlinear`` N as a function of u and its x-derivatives requested by name, like the
    equation (``nonlinear(u, u_x, *, coeffs)``). ``exact``: an optional closed form u(t, x)
    (numpy arrays of one shape), the reference when given.

    2-D in space (``y_min``, ``y_max`` given): the residual may also ask for y-derivatives
    (u_y, u_yy, u_xy, ...); ``initial``, ``initial_velocity`` and ``exact`` take (x, y) and
    (t, x, y); the boundary is periodic in both directions or Dirichlet with one value (a
    number or a function of t) on the whole boundary. The PINN builds both into the network,
    as in 1-D. The spectral path (periodic) takes ``linear(kx, ky, **coeffs)`` and a
    ``nonlinear`` part that may ask for y-derivatives too."""

    name: str
    equation: Callable[..., Any]
    x_min: float
    x_max: float
    t_end: float
    initial: Callable[[Any], Any]
    boundary: Boundary = PERIODIC
    coeffs: tuple[tuple[str, float], ...] = ()
    initial_velocity: Callable[[Any], Any] | None = None
    unknowns: tuple[str, ...] = ()
    linear: Callable[..., Any] | None = None
    nonlinear: Callable[..., Any] | None = None
    exact: Callable[[Any, Any], Any] | None = None
    y_min: float | None = None
    y_max: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"a PDE needs a name, got {self.name!r}")
        _check_interval("x", self.x_min, self.x_max)
        if (self.y_min is None) != (self.y_max is None):
            raise ValueError(f"{self.name}: a problem 2-D in space needs both y_min and y_max, got "
                             f"[{self.y_min}, {self.y_max}]")
        if self.y_min is not None:
            _check_interval("y", self.y_min, self.y_max)
        _check_positive("t_end", self.t_end)
        if isinstance(self.boundary, str):
            object.__setattr__(self, "boundary", Boundary(self.boundary))
        if not isinstance(self.boundary, Boundary):
            raise ValueError(f"boundary must be a Boundary or 'periodic', got {self.boundary!r}")
        object.__setattr__(self, "coeffs", _as_pairs(self.coeffs, "coefficient"))
        object.__setattr__(self, "unknowns", tuple(self.unknowns))
        derivs, wanted = equation_signature(self.equation)
        given = dict(self.coeffs)
        missing = sorted(k for k, default in wanted.items() if default is None and k not in given)
        if missing:
            raise ValueError(f"{self.name}: the equation needs coefficient(s) {missing}: give them in coeffs")
        extra = sorted(set(given) - set(wanted))
        if extra:
            raise ValueError(f"{self.name}: coefficient(s) {extra} are not parameters of the equation "
                             f"(it takes {sorted(wanted)})")
        bad = sorted(set(self.unknowns) - set(wanted))
        if bad:
            raise ValueError(f"{self.name}: unknowns {bad} are not coefficients of the equation ({sorted(wanted)})")
        if not callable(self.initial):
            raise ValueError(f"{self.name}: initial must be a function of x" + (", y" if self.dims == 2 else ""))
        self._check_space(derivs)
        if self.nonlinear is not None:
            for d in equation_signature(self.nonlinear)[0]:
                if parse_derivative(d)[0] or (self.dims == 1 and parse_derivative(d)[2]):
                    raise ValueError(f"{self.name}: the nonlinear part may use u and its space derivatives, not {d!r}")
        self._check_data()

    def coefficients(self) -> dict[str, float]:
        _, wanted = equation_signature(self.equation)
        return {**{k: float(v) for k, v in wanted.items() if v is not None}, **dict(self.coeffs)}

    def exact_on_grid(self, t: Any, x: Any, y: Any = None) -> np.ndarray | None:
        """The closed form ``exact`` on the grid t x x (x y for a problem 2-D in space), float64:
        (nt, nx) or (nt, nx, ny); None when the problem has none."""
        if self.exact is None:
            return None
        axes = [np.asarray(a, dtype=np.float64) for a in (t, *self.coords(x, y))]
        return _float64_values(self.exact, *np.meshgrid(*axes, indexing="ij"))

    @property
    def y_length(self) -> float | None:
        return None if self.y_min is None else self.y_max - self.y_min

    def u0(self, x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        """Initial condition at points x (any shape; and y of x's shape for a 2-D problem), float64."""
        return _float64_values(self.initial, *self.coords(x, y))

    def v0(self, x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        """Initial velocity u_t(x, 0) (zero when not given)."""
        if self.initial_velocity is None:
            return np.zeros_like(np.asarray(x, dtype=float))
        return _float64_values(self.initial_velocity, *self.coords(x, y))

    def coords(self, x: Any, y: Any = None) -> tuple[Any, ...]:
        """(x,) or (x, y): the space coordinates, checked against the problem's dimension
        (ValueError naming what to give)."""
        if (y is None) != (self.dims == 1):
            raise ValueError(f"{self.name} is {self.dims}-D in space: give " + ("x and y" if self.dims == 2 else "x only"))
        return (x,) if y is None else (x, y)

    def _check_space(self, derivs: tuple[str, ...]) -> None:
        """ValueError for y-derivatives of a 1-D problem, and for boundary conditions a 2-D
        problem does not take (Neumann; Dirichlet values that differ between sides)."""
        if self.dims == 1:
            in_y = [d for d in derivs if parse_derivative(d)[2]]
            if in_y:
                raise ValueError(f"{self.name}: the equation asks for {in_y[0]!r}, but the problem has no y: give "
                                 "y_min and y_max for a problem 2-D in space")
            return
        b = self.boundary
        if b.kind == "neumann":
            raise ValueError(f"{self.name}: a problem 2-D in space takes periodic or Dirichlet boundaries, not neumann")
        if b.kind == "dirichlet" and b.left is not b.right and b.left != b.right:
            raise ValueError(f"{self.name}: a 2-D Dirichlet boundary has one value on the whole boundary "
                             f"(left and right equal), got left={b.left!r}, right={b.right!r}")

    def _check_data(self) -> None:
        """ValueError when the boundary conditions contradict the initial data (checked at t = 0,
        relative to max |u0|; a slope that jumps across a periodic boundary is allowed)."""
        if self.dims == 2:
            self._check_data_2d()
            return
        x = np.linspace(self.x_min, self.x_max, 257)
        try:
            u = self.u0(x)
        except Exception as err:  # the user's function failed on a numpy array
            raise ValueError(f"{self.name}: initial(x) failed on an array of x ({type(err).__name__}: {err})") from None
        if not np.all(np.isfinite(u)):
            raise ValueError(f"{self.name}: initial data have non-finite values")
        scale = max(float(np.max(np.abs(u))), 1.0)
        tol = 1e-6 * scale
        b = self.boundary
        if b.kind == "periodic" and abs(u[0] - u[-1]) > tol:
            raise ValueError(f"{self.name}: periodic boundary contradicts the initial data: u0({self.x_min:g}) = "
                             f"{u[0]:.6g} but u0({self.x_max:g}) = {u[-1]:.6g}")
        if b.kind == "dirichlet":
            for side, ui, xb in (("left", u[0], self.x_min), ("right", u[-1], self.x_max)):
                want = float(np.asarray(b.value(side, np.zeros(1)))[0])
                if abs(ui - want) > tol:
                    raise ValueError(f"{self.name}: Dirichlet {side} value {want:g} contradicts the initial data "
                                     f"u0({xb:g}) = {ui:.6g}")
        if b.kind == "neumann":
            h = 1e-6 * self.length
            for side, xb, sign in (("left", self.x_min, 1.0), ("right", self.x_max, -1.0)):
                slope = float(sign * (self.u0(np.array([xb + sign * h]))[0] - self.u0(np.array([xb]))[0]) / h)
                want = float(np.asarray(b.value(side, np.zeros(1)))[0])
                if abs(slope - want) > 1e-3 * max(abs(want), scale / self.length):
                    raise ValueError(f"{self.name}: Neumann {side} value {want:g} contradicts the initial data "
                                     f"(u0'({xb:g}) = {slope:.6g})")

    def _check_data_2d(self) -> None:
        xx, yy = np.meshgrid(np.linspace(self.x_min, self.x_max, 65), np.linspace(self.y_min, self.y_max, 65),
                             indexing="ij")
        try:
            u = self.u0(xx, yy)
        except Exception as err:  # the user's function failed on numpy arrays
            raise ValueError(f"{self.name}: initial(x, y) failed on arrays of x, y ({type(err).__name__}: {err})") from None
        if not np.all(np.isfinite(u)):
            raise ValueError(f"{self.name}: initial data have non-finite values")
        tol = 1e-6 * max(float(np.max(np.abs(u))), 1.0)
        b = self.boundary
        if b.kind == "periodic":
            for axis, name in ((0, "x"), (1, "y")):
                gap = float(np.max(np.abs(np.take(u, 0, axis) - np.take(u, -1, axis))))
                if gap > tol:
                    raise ValueError(f"{self.name}: periodic boundary contradicts the initial data: u0 differs by "
                                     f"{gap:.3g} between {name}_min and {name}_max")
        else:
            want = float(np.asarray(b.value("left", np.zeros(1)))[0])
            edges = np.concatenate([u[0], u[-1], u[:, 0], u[:, -1]])
            worst = float(np.max(np.abs(edges - want)))
            if worst > tol:
                raise ValueError(f"{self.name}: Dirichlet value {want:g} contradicts the initial data (u0 on the "
                                 f"boundary is {want:g} +- {worst:.3g})")


def _float64_values(f: Callable[..., Any], *coords: Any) -> np.ndarray:
    """f(x) (or f(x, y)) as float64 on x's shape. A function written with jax.numpy returns
    float32 unless JAX runs in 64-bit mode: it is evaluated again inside ``jax.enable_x64`` so
    a spectral reference does not start from data rounded to 1e-7."""
    coords = tuple(np.asarray(c, dtype=float) for c in coords)
    out = f(*coords)
    if getattr(out, "dtype", None) == np.float32 and type(out).__module__.startswith("jax"):
        import jax

        with jax.enable_x64(True):
            out = f(*coords)
    return np.broadcast_to(np.asarray(out, dtype=float), coords[0].shape).copy()


@dataclass(frozen=True)
class PeriodicBurgers:
    """u_t + u u_x = nu u_xx, periodic on [0, length), t in [0, t_end]: the FNO-paper task.

    Initial data are Gaussian random fields N(0, sigma^2 (-Laplacian + tau^2 I)^-alpha);
    the preset (sigma = 25, tau = 5, alpha = 2) is N(0, 625 (-Laplacian + 25 I)^-2).
    ``nu_range`` = (lo, hi): each function has its own viscosity, log-uniform on [lo, hi], and
    the operator is (u0, nu) -> u(., t_end) (``uncertainty.run.burgers_functions`` then gives the
    inputs a second channel holding nu); None: every function has viscosity ``nu``.
    """

    nu: float = 0.1
    length: float = 1.0
    t_end: float = 1.0
    grf_alpha: float = 2.0
    grf_tau: float = 5.0
    grf_sigma: float = 25.0
    name: str = "operator_burgers"
    nu_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        for f in ("nu", "length", "t_end", "grf_alpha", "grf_tau", "grf_sigma"):
            _check_positive(f, getattr(self, f))
        if self.nu_range is not None:
            r = self.nu_range
            if not (isinstance(r, tuple | list) and len(r) == 2):
                raise ValueError(f"nu_range must be two viscosities (lo, hi), got {r!r}")
            for v in r:
                _check_positive("nu_range", v)
            if not r[0] < r[1]:
                raise ValueError(f"nu_range must have lo < hi, got {tuple(r)!r}")
            object.__setattr__(self, "nu_range", (float(r[0]), float(r[1])))

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

    def as_pde(self) -> PDE:
        """This problem as a ``PDE`` 2-D in space, what the PINN solves: u_t - alpha (u_xx +
        u_yy) = 0, zero Dirichlet, the double sine series as traceable initial data and as the
        closed form ``exact`` (an ``initial`` callable is used as it is: write it with
        jax.numpy for a PINN; its exact solution comes from its sine coefficients). One object
        per problem (cached), so runs of one problem share their compiled programs."""
        return _heat2d_pde(self, self.initial)

    def u0(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Initial condition at points (x, y) of one shape."""
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        if self.initial is not None:
            return np.asarray(self.initial(x, y), dtype=float)
        return _double_sine(x, y, b=np.asarray(self.sine_coeffs, dtype=float), length=self.length, alpha=0.0)


@functools.lru_cache(maxsize=16)
def _heat2d_pde(problem: Heat2D, initial: Any) -> PDE:
    """``Heat2D.as_pde`` (keyed on ``initial`` too: problems compare without their callables)."""
    from pdes.exact import sine_coefficients_2d

    if initial is not None:
        b = sine_coefficients_2d(initial, problem.length)
    else:
        b = np.asarray(problem.sine_coeffs, dtype=float)
        initial = functools.partial(_double_sine, b=b, length=problem.length, alpha=0.0)
    exact = functools.partial(_double_sine, b=b, length=problem.length, alpha=problem.alpha)
    return PDE(problem.name, _heat2d, x_min=0.0, x_max=problem.length, y_min=0.0, y_max=problem.length,
               t_end=problem.t_end, initial=initial, boundary=ZERO_DIRICHLET, coeffs={"alpha": problem.alpha},
               exact=lambda t, x, y: exact(x, y, t=t))


def _heat2d(u_t, u_xx, u_yy, *, alpha):
    """u_t - alpha (u_xx + u_yy)."""
    return u_t - alpha * (u_xx + u_yy)


def _double_sine(x, y, *, b: np.ndarray, length: float, alpha: float, t: Any = 0.0):
    """sum_kl b_kl exp(-alpha pi^2 (k^2 + l^2) t / L^2) sin(k pi x / L) sin(l pi y / L) at points
    of one shape (numpy or JAX arrays: the namespace of x)."""
    xp = x.__array_namespace__()
    out = 0.0 * x
    for (k, l_), bkl in np.ndenumerate(b):
        if bkl != 0.0:
            decay = xp.exp(-alpha * (math.pi / length) ** 2 * ((k + 1) ** 2 + (l_ + 1) ** 2) * t)
            out = out + bkl * decay * xp.sin((k + 1) * math.pi * x / length) * xp.sin((l_ + 1) * math.pi * y / length)
    return out


# ----------------------------------------------------------------------------- Allen-Cahn and KdV
# Written with the PDE API; the functions pick numpy or jax.numpy from their argument (the array
# API's __array_namespace__), so the same definition serves numpy references and traced PINNs.


def _allen_cahn(u, u_t, u_xx, *, eps, gamma):
    """u_t - eps u_xx + gamma (u^3 - u)."""
    return u_t - eps * u_xx + gamma * (u**3 - u)


def _allen_cahn_u0(x):
    xp = x.__array_namespace__()
    return x**2 * xp.cos(xp.pi * x)


def _allen_cahn_linear(k, *, eps, gamma):
    return -eps * k**2 + gamma


def _allen_cahn_nonlinear(u, *, eps, gamma):
    return -gamma * u**3


def _kdv(u, u_t, u_x, u_xxx, *, delta):
    """u_t + u u_x + delta^2 u_xxx."""
    return u_t + u * u_x + delta**2 * u_xxx


def _kdv_u0(x):
    xp = x.__array_namespace__()
    return xp.cos(xp.pi * x)


def _kdv_linear(k, *, delta):
    return 1j * delta**2 * k**3  # -delta^2 (i k)^3


def _kdv_nonlinear(u, u_x, *, delta):
    return -u * u_x


# Allen-Cahn as in Raissi et al. (2019) and jaxpi: u_t = 1e-4 u_xx - 5 u^3 + 5 u on [-1, 1]
# periodic, u0 = x^2 cos(pi x) (continuous across the boundary; its slope jumps from 2 to -2).
ALLEN_CAHN = PDE("allen_cahn", _allen_cahn, x_min=-1.0, x_max=1.0, t_end=1.0, initial=_allen_cahn_u0,
                 boundary=PERIODIC, coeffs={"eps": 1e-4, "gamma": 5.0}, linear=_allen_cahn_linear,
                 nonlinear=_allen_cahn_nonlinear)
# KdV with Zabusky & Kruskal's (1965) delta = 0.022: u_t + u u_x + 0.022^2 u_xxx = 0 on [-1, 1]
# periodic, u0 = cos(pi x) (Raissi et al. 2019's benchmark).
KDV = PDE("kdv", _kdv, x_min=-1.0, x_max=1.0, t_end=1.0, initial=_kdv_u0, boundary=PERIODIC,
          coeffs={"delta": 0.022}, linear=_kdv_linear, nonlinear=_kdv_nonlinear)

BURGERS = Burgers()
HEAT = Heat()
WAVE = Wave()
HEAT2D = Heat2D()
OPERATOR_BURGERS = PeriodicBurgers()
PRESETS: dict[str, Any] = {
    "burgers": BURGERS,
    "heat": HEAT,
    "wave": WAVE,
    "heat2d": HEAT2D,
    "operator_burgers": OPERATOR_BURGERS,
    "allen_cahn": ALLEN_CAHN,
    "kdv": KDV,
}


def problem_params(problem: Any) -> dict[str, Any]:
    """The problem's parameters as a JSON-able dict (callables are named, not serialized)."""
    out: dict[str, Any] = {}
    for f in fields(problem):
        value = getattr(problem, f.name)
        if callable(value):
            out[f.name] = getattr(value, "__name__", repr(value))
        elif isinstance(value, Boundary):
            out[f.name] = {"kind": value.kind, **{side: getattr(value, side) if not callable(getattr(value, side))
                                                  else getattr(getattr(value, side), "__name__", "callable")
                                                  for side in ("left", "right")}}
        elif isinstance(value, tuple):
            out[f.name] = [list(v) if isinstance(v, tuple) else v for v in value]
        else:
            out[f.name] = value
    return out


def load_problem(spec: str) -> Problem:
    """The problem object named in ``spec`` = "path/to/file.py:NAME" (NAME defaults to PROBLEM):
    the file is run as a module and NAME must be a ``Problem`` (e.g. a ``PDE``). One-line
    FileNotFoundError / ValueError for a missing file, a file that fails, a missing name."""
    import importlib.util
    import sys
    from pathlib import Path

    path_text, _, name = str(spec).partition(":")
    name = name.strip() or "PROBLEM"
    path = Path(path_text)
    if path.suffix != ".py":
        raise ValueError(f"--problem takes FILE.py:NAME, got {spec!r}")
    if not path.is_file():
        raise FileNotFoundError(f"no such problem file: {path_text!r}")
    module_name = f"_sciml_problem_{abs(hash(str(path.resolve())))}"
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as err:  # the user's file failed: report it as bad input
        sys.modules.pop(module_name, None)
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise ValueError(f"problem file {path_text!r} failed: {type(err).__name__}: {first}") from None
    if not hasattr(module, name):
        raise ValueError(f"problem file {path_text!r} does not define {name!r}")
    problem = getattr(module, name)
    if not isinstance(problem, Problem):
        raise ValueError(f"{name!r} in {path_text!r} is a {type(problem).__name__}, not a pdes.PDE")
    return problem


def with_overrides(problem: Problem, **changes: Any) -> Problem:
    """``dataclasses.replace`` that ignores None values (so CLI flags left unset keep the preset)."""
    return replace(problem, **{k: v for k, v in changes.items() if v is not None})
