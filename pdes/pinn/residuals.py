"""PDE residuals by automatic differentiation: any equation stated as a function of u and its
derivatives by name (``pdes.problems.Problem.equation``) becomes a residual of a field.

A field is a function ``u(t, x) -> (N,)`` of two arrays ``t: (N,)``, ``x: (N,)`` (or ``(N, 2)``,
the points (x, y) of a problem 2-D in space) whose points are independent (a network applied
row by row). Derivatives are forward-mode (``jax.jvp`` with a tangent of ones, or of the unit
vector of x or y per row in 2-D): since row i of the output depends only on row i of the
input, one jvp gives the derivative at every point. ``field_derivatives`` computes every
requested derivative with one nested chain of jvps in x per order in t (and in y) (u, u_x,
u_xx ... come out of one pass), which is cheaper than reverse mode (``jax.grad`` under ``vmap``) for these small
networks (measured in ``benchmarks/results/pinn.md``).

The coefficients are arguments, never literals, so an inverse problem can make them trainable.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from pdes.problems import PDE, Burgers, Heat, Problem, Wave, equation_signature, parse_derivative

__all__ = [
    "Field",
    "burgers_residual",
    "coefficients",
    "d_t",
    "d_x",
    "d_xx",
    "d_y",
    "field_derivatives",
    "heat_residual",
    "initial_data",
    "residual_fn",
    "residual_of",
    "sine_projection",
    "wave_residual",
]

Field = Callable[[jax.Array, jax.Array], jax.Array]


def _unit(x: jax.Array, axis: int) -> jax.Array:
    """The tangent of the coordinate ``axis`` at every point: ones for 1-D points x (N,), the
    unit vector e_axis per row for 2-D points (N, 2)."""
    if x.ndim == 1:
        if axis:
            raise ValueError("a y-derivative needs points 2-D in space, x of shape (N, 2)")
        return jnp.ones_like(x)
    return jnp.zeros_like(x).at[:, axis].set(1.0)


def d_t(u: Field) -> Field:
    """u_t as a field."""
    return lambda t, x: jax.jvp(lambda s: u(s, x), (t,), (jnp.ones_like(t),))[1]


def d_x(u: Field, axis: int = 0) -> Field:
    """u_x as a field (u_y with axis=1, for points 2-D in space)."""
    return lambda t, x: jax.jvp(lambda y: u(t, y), (x,), (_unit(x, axis),))[1]


def d_y(u: Field) -> Field:
    """u_y as a field (points 2-D in space, x: (N, 2))."""
    return d_x(u, axis=1)


def d_xx(u: Field) -> Field:
    """u_xx as a field."""
    return d_x(d_x(u))


def _x_chain(g: Field, t: jax.Array, x: jax.Array, order: int) -> list[jax.Array]:
    """[g, g_x, ..., d^order g / dx^order] at the points, from one nested chain of jvps (each
    level returns the lower derivatives as aux, so nothing is computed twice)."""
    ones = _unit(x, 0)

    def level(k: int):
        if k == 0:
            return lambda y: (g(t, y), ())
        inner = level(k - 1)

        def f(y):
            val, dval, aux = jax.jvp(inner, (y,), (ones,), has_aux=True)
            return dval, (*aux, val)

        return f

    top, lower = level(order)(x)
    return [*lower, top]


def field_derivatives(u: Field, t: jax.Array, x: jax.Array, names: tuple[str, ...]) -> dict[str, jax.Array]:
    """{name: value at the points} for derivative names such as "u", "u_t", "u_xx", "u_tx",
    "u_yy" (``pdes.problems.parse_derivative``). t: (N,), x: (N,) or (N, 2) (2-D in space) ->
    each (N,). Per order p in t and order b in y one chain of jvps in x gives every x-order of
    d^(p+b) u / dt^p dy^b that is asked for."""
    orders = {name: parse_derivative(name) for name in names}
    out: dict[str, jax.Array] = {}
    for p, b in sorted({(o[0], o[2]) for o in orders.values()}):
        group = {name: o[1] for name, o in orders.items() if (o[0], o[2]) == (p, b)}
        g = u
        for _ in range(p):
            g = d_t(g)
        for _ in range(b):
            g = d_y(g)
        if (p > 0 or b > 0) and all(q == 0 for q in group.values()):
            values = [g(t, x)]  # no chain in x
        else:
            values = _x_chain(g, t, x, max(group.values()))
        out.update({name: values[q] for name, q in group.items()})
    return out


def residual_of(equation: Callable[..., jax.Array]) -> Callable[..., jax.Array]:
    """The residual f(u, t, x, **coefficients) of an equation stated as a function of u and its
    derivatives by name (positional parameters) and its coefficients (keyword-only).

    One residual function per equation (cached), so programs compiled for it are shared
    between runs that state the same equation."""
    try:
        return _residual_cache[equation]
    except KeyError:
        pass
    except TypeError:  # an unhashable callable: build a fresh residual
        return _build_residual(equation)
    residual = _residual_cache[equation] = _build_residual(equation)
    return residual


_residual_cache: dict[Callable[..., jax.Array], Callable[..., jax.Array]] = {}


def _build_residual(equation: Callable[..., jax.Array]) -> Callable[..., jax.Array]:
    names, _ = equation_signature(equation)

    def residual(u: Field, t: jax.Array, x: jax.Array, **coeffs: jax.Array) -> jax.Array:
        d = field_derivatives(u, t, x, names)
        return equation(*(d[n] for n in names), **coeffs)

    residual.__name__ = f"residual_of_{getattr(equation, '__name__', 'equation')}"
    residual.__doc__ = equation.__doc__
    return residual


def u_ux_uxx(u: Field, t: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(u, u_x, u_xx) at the points in one nested forward pass."""
    values = _x_chain(u, t, x, 2)
    return values[0], values[1], values[2]


# The presets' residuals, from their equations: f(u, t, x, alpha=...), f(u, t, x, c=...), f(u, t, x, nu=...).
heat_residual = residual_of(Heat.equation)
wave_residual = residual_of(Wave.equation)
burgers_residual = residual_of(Burgers.equation)


def _check_problem(problem: object) -> Problem:
    if not isinstance(problem, Problem):
        hint = " (heat2d: use its .as_pde())" if hasattr(problem, "as_pde") else ""
        raise ValueError(f"PINNs solve time-dependent problems (a pdes.Problem: heat, wave, burgers or a PDE), got "
                         f"{type(problem).__name__}{hint}")
    return problem


def coefficients(problem: Problem) -> dict[str, float]:
    """The problem's PDE coefficients by name: {"alpha": ...}, {"c": ...}, {"nu": ...}, a PDE's coeffs."""
    return _check_problem(problem).coefficients()


def residual_fn(problem: Problem) -> Callable[..., jax.Array]:
    """The residual function of the problem's equation: f(u, t, x, **coefficients(problem))."""
    return residual_of(_check_problem(problem).equation)


def sine_projection(f: Callable[[np.ndarray], np.ndarray], x_min: float, length: float,
                    n_modes: int = 128, n_quad: int = 4096) -> np.ndarray:
    """Coefficients b_k, k = 1..n_modes, of f on [x_min, x_min + length] in the sine basis
    sin(k pi (x - x_min)/length), by the midpoint rule on n_quad points (spectrally
    accurate for smooth f vanishing at both ends). Coefficients below 1e-13 max|b| are
    dropped (trailing zeros trimmed)."""
    xi = (np.arange(n_quad) + 0.5) / n_quad
    fx = np.asarray(f(x_min + length * xi), dtype=float)
    k = np.arange(1, n_modes + 1)
    b = 2.0 * (np.sin(np.pi * k[:, None] * xi[None, :]) @ fx) / n_quad
    scale = max(np.max(np.abs(b)), 1e-300)
    b[np.abs(b) < 1e-13 * scale] = 0.0
    nz = np.nonzero(b)[0]
    return b[: nz[-1] + 1] if nz.size else np.zeros(1)


def _series(coeffs: np.ndarray) -> Callable[[jax.Array], jax.Array]:
    """xi -> sum_k b_k sin(k pi xi), traceable."""
    b = np.asarray(coeffs, dtype=float)
    k = np.arange(1, b.size + 1, dtype=float)
    pairs = [(float(kk), float(bb)) for kk, bb in zip(k, b, strict=True) if bb != 0.0]

    def f(xi: jax.Array) -> jax.Array:
        out = jnp.zeros_like(xi)
        for kk, bb in pairs:
            out = out + bb * jnp.sin(kk * math.pi * xi)
        return out

    return f


def initial_data(problem: Problem) -> tuple[Callable, Callable | None]:
    """Traceable initial data in the scaled coordinate xi = (x - x_min)/L in [0, 1] (for a
    problem 2-D in space xi: (N, 2), the scaled x and y): (u0(xi), v0(xi) or None). A PDE's
    own functions are used as they are (they must be traceable). For the presets, sine
    coefficients are used as given and a callable initial condition is projected onto 128 sine
    modes (exact for the Burgers preset, -sin(pi x) = sin(2 pi xi))."""
    if isinstance(problem, PDE):
        v = problem.initial_velocity
        if problem.dims == 2:  # xi: (N, 2), the scaled (x, y)
            lo, size = problem.box

            def at(f):
                return lambda xi: f(*(lo[i] + size[i] * xi[:, i] for i in range(2)))

            return at(problem.initial), (at(v) if v is not None else None)
        x_min, length = problem.x_min, problem.length
        return (lambda xi: problem.initial(x_min + length * xi),
                (lambda xi: v(x_min + length * xi)) if v is not None else None)
    if getattr(problem, "initial", None) is None and getattr(problem, "sine_coeffs", None) is not None:
        b0 = np.asarray(problem.sine_coeffs, dtype=float)
    else:
        b0 = sine_projection(problem.u0, problem.x_min, problem.length)
    v0 = None
    if isinstance(problem, Wave):
        if problem.initial_velocity is not None:
            v0 = _series(sine_projection(problem.v0, problem.x_min, problem.length))
        elif problem.velocity_coeffs:
            v0 = _series(np.asarray(problem.velocity_coeffs, dtype=float))
    return _series(b0), v0
