"""PDE residuals by automatic differentiation, written to read like the equations.

A field is a function ``u(t, x) -> (N,)`` of two arrays ``t, x: (N,)`` whose points are
independent (a network applied row by row). Derivatives are forward-mode
(``jax.jvp`` with a tangent of ones): since row i of the output depends only on row i of
the input, one jvp gives the derivative at every point, and a nested jvp the second
derivative. On this 2-core CPU forward mode is ~1.5-2x faster than reverse mode
(``jax.grad`` under ``vmap``) for the residuals below (measured in
``benchmarks/results/pinn.md``).

The coefficients are arguments (nu, alpha, c), never literals, so an inverse problem can
make them trainable.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from pdes.problems import Burgers, Heat, Wave

__all__ = [
    "Field",
    "burgers_residual",
    "coefficients",
    "d_t",
    "d_x",
    "d_xx",
    "heat_residual",
    "initial_data",
    "residual_fn",
    "sine_projection",
    "wave_residual",
]

Field = Callable[[jax.Array, jax.Array], jax.Array]


def d_t(u: Field) -> Field:
    """u_t as a field."""
    return lambda t, x: jax.jvp(lambda s: u(s, x), (t,), (jnp.ones_like(t),))[1]


def d_x(u: Field) -> Field:
    """u_x as a field."""
    return lambda t, x: jax.jvp(lambda y: u(t, y), (x,), (jnp.ones_like(x),))[1]


def d_xx(u: Field) -> Field:
    """u_xx as a field."""
    return d_x(d_x(u))


def u_ux_uxx(u: Field, t: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(u, u_x, u_xx) at the points in one nested forward pass."""
    ones = jnp.ones_like(x)

    def first(y):
        val, dval = jax.jvp(lambda z: u(t, z), (y,), (ones,))
        return dval, val

    u_x, u_xx, val = jax.jvp(first, (x,), (ones,), has_aux=True)
    return val, u_x, u_xx


def heat_residual(u: Field, t: jax.Array, x: jax.Array, alpha: float | jax.Array) -> jax.Array:
    """u_t - alpha u_xx. t, x: (N,) -> (N,)."""
    _, _, u_xx = u_ux_uxx(u, t, x)
    return d_t(u)(t, x) - alpha * u_xx


def wave_residual(u: Field, t: jax.Array, x: jax.Array, c: float | jax.Array) -> jax.Array:
    """u_tt - c^2 u_xx. t, x: (N,) -> (N,)."""
    u_tt = d_t(d_t(u))(t, x)
    _, _, u_xx = u_ux_uxx(u, t, x)
    return u_tt - c**2 * u_xx


def burgers_residual(u: Field, t: jax.Array, x: jax.Array, nu: float | jax.Array) -> jax.Array:
    """u_t + u u_x - nu u_xx. t, x: (N,) -> (N,)."""
    val, u_x, u_xx = u_ux_uxx(u, t, x)
    return d_t(u)(t, x) + val * u_x - nu * u_xx


def coefficients(problem: Heat | Wave | Burgers) -> dict[str, float]:
    """The problem's PDE coefficients by name: {"alpha": ...}, {"c": ...} or {"nu": ...}."""
    if isinstance(problem, Heat):
        return {"alpha": float(problem.alpha)}
    if isinstance(problem, Wave):
        return {"c": float(problem.c)}
    if isinstance(problem, Burgers):
        return {"nu": float(problem.nu)}
    raise ValueError(f"PINNs support heat, wave and burgers problems, got {type(problem).__name__}")


def residual_fn(problem: Heat | Wave | Burgers) -> Callable[..., jax.Array]:
    """The residual function of the problem's equation: f(u, t, x, **coefficients(problem))."""
    if isinstance(problem, Heat):
        return heat_residual
    if isinstance(problem, Wave):
        return wave_residual
    if isinstance(problem, Burgers):
        return burgers_residual
    raise ValueError(f"PINNs support heat, wave and burgers problems, got {type(problem).__name__}")


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


def initial_data(problem: Heat | Wave | Burgers) -> tuple[Callable, Callable | None]:
    """Traceable initial data in the scaled coordinate xi = (x - x_min)/L in [0, 1]:
    (u0(xi), v0(xi) or None). Sine coefficients are used as given; a callable initial
    condition is projected onto 128 sine modes (exact for the Burgers preset, -sin(pi x)
    = sin(2 pi xi))."""
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
