"""Exact solutions: sine series (heat, 1D and 2D), standing waves / d'Alembert (wave), and
Cole–Hopf with Gauss–Hermite quadrature (viscous Burgers).

Everything here is float64 numpy, vectorized over the grid. Shapes: ``t`` is (nt,), ``x`` is
(nx,), ``y`` is (ny,); results are (nt, nx) or (nt, nx, ny).

* ``sine_coefficients(u0, x_min, length)`` gives the sine coefficients b_k of any initial data
  (a callable) by a discrete sine transform (DST-I, ``scipy.fft.dst``), so heat and wave accept
  arbitrary initial data.
* ``heat_series`` / ``heat2d_series``: u = sum_k b_k exp(-alpha (k pi / L)^2 t) sin(k pi xi / L).
* ``wave_standing``: u = sum_k (a_k cos(w_k t) + b_k / w_k sin(w_k t)) sin(k pi xi / L),
  w_k = c k pi / L; ``wave_dalembert`` evaluates the displacement part exactly as
  (F(x - ct) + F(x + ct)) / 2 with F the odd 2L-periodic extension of a callable u0.
* ``burgers_cole_hopf``: u = -2 nu (log phi)_x with phi the heat-kernel convolution of
  exp(-(1 / 2 nu) int u0), computed per point as a ratio of two Gauss–Hermite sums in
  log-space (shifted exponents), which stays accurate through the steep front at
  nu = 0.01 / pi (Basdevant et al. 1986, Computers & Fluids 14(1), section 3).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.fft
import scipy.special

from pdes.problems import Burgers, Heat, Heat2D, PeriodicBurgers, Problem, Wave

__all__ = [
    "burgers_cole_hopf",
    "burgers_log_phi0_coeffs",
    "exact_solution",
    "gauss_hermite",
    "heat2d_series",
    "heat_series",
    "sine_coefficients",
    "sine_coefficients_2d",
    "wave_dalembert",
    "wave_standing",
]

_DST_POINTS = 4096  # default samples for the DST of callable initial data


def _as_1d(name: str, values: Any) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} has non-finite values")
    return arr


def _check_times(t: np.ndarray) -> None:
    if np.any(t < 0):
        raise ValueError(f"times must be >= 0, got min {t.min()}")


def _trim(b: np.ndarray, rel: float = 1e-15) -> np.ndarray:
    """Drop trailing coefficients below rel * max|b| (keeps at least one)."""
    b = np.asarray(b, dtype=np.float64)
    if b.size == 0:
        return np.zeros(1)
    big = np.nonzero(np.abs(b) > rel * max(np.abs(b).max(), 1e-300))[0]
    return b[: (big[-1] + 1 if big.size else 1)]


def sine_coefficients(
    u0: Callable[[np.ndarray], np.ndarray], x_min: float, length: float, n: int = _DST_POINTS
) -> np.ndarray:
    """Sine coefficients b_k, k = 1..n-1, of u0 on [x_min, x_min + length] by DST-I.

    u0 is sampled at the n - 1 interior points x_j = x_min + j L / n; then
    b_k = (2 / n) sum_j u0(x_j) sin(k j pi / n), which is exact for sine polynomials of
    degree < n and converges spectrally for data whose odd extension is smooth.
    Returns (K,) with trailing negligible coefficients trimmed.
    """
    if n < 4:
        raise ValueError(f"n must be >= 4, got {n}")
    xj = x_min + length * np.arange(1, n) / n
    f = np.asarray(u0(xj), dtype=np.float64)
    if f.shape != xj.shape or not np.all(np.isfinite(f)):
        raise ValueError("initial data must return finite values of the same shape as x")
    return _trim(scipy.fft.dst(f, type=1) / n)


def sine_coefficients_2d(
    u0: Callable[[np.ndarray, np.ndarray], np.ndarray], length: float, n: int = 256
) -> np.ndarray:
    """Double sine coefficients b_kl (k, l = 1..n-1) of u0(x, y) on [0, L]^2 by a 2-D DST-I."""
    g = length * np.arange(1, n) / n
    X, Y = np.meshgrid(g, g, indexing="ij")
    f = np.asarray(u0(X, Y), dtype=np.float64)
    if f.shape != X.shape or not np.all(np.isfinite(f)):
        raise ValueError("initial data must return finite values of the same shape as x")
    b = scipy.fft.dstn(f, type=1) / n**2
    keep = np.abs(b) > 1e-15 * max(np.abs(b).max(), 1e-300)
    rows = np.nonzero(keep.any(axis=1))[0]
    cols = np.nonzero(keep.any(axis=0))[0]
    return b[: (rows[-1] + 1 if rows.size else 1), : (cols[-1] + 1 if cols.size else 1)]


def heat_series(t: Any, x: Any, coeffs: Any, *, alpha: float, x_min: float = 0.0, length: float = 1.0) -> np.ndarray:
    """u_t = alpha u_xx, zero Dirichlet: sum_k b_k exp(-alpha (k pi / L)^2 t) sin(k pi (x - x_min) / L).

    t: (nt,), x: (nx,), coeffs: (K,) -> (nt, nx).
    """
    t, x = _as_1d("t", t), _as_1d("x", x)
    _check_times(t)
    b = _as_1d("coeffs", coeffs)
    k = np.arange(1, b.size + 1)
    lam = alpha * (k * math.pi / length) ** 2
    modes = np.sin(math.pi * np.outer((x - x_min) / length, k))  # (nx, K)
    return (np.exp(-np.outer(t, lam)) * b) @ modes.T


def heat2d_series(t: Any, x: Any, y: Any, coeffs: Any, *, alpha: float, length: float = 1.0) -> np.ndarray:
    """2-D heat on [0, L]^2, zero Dirichlet: sum_kl b_kl exp(-alpha pi^2 (k^2 + l^2) t / L^2) sin sin.

    t: (nt,), x: (nx,), y: (ny,), coeffs: (K, M) -> (nt, nx, ny).
    """
    t, x, y = _as_1d("t", t), _as_1d("x", x), _as_1d("y", y)
    _check_times(t)
    b = np.atleast_2d(np.asarray(coeffs, dtype=np.float64))
    k = np.arange(1, b.shape[0] + 1)
    m = np.arange(1, b.shape[1] + 1)
    lam = alpha * (math.pi / length) ** 2 * (k[:, None] ** 2 + m[None, :] ** 2)  # (K, M)
    sx = np.sin(math.pi * np.outer(x / length, k))  # (nx, K)
    sy = np.sin(math.pi * np.outer(y / length, m))  # (ny, M)
    bt = np.exp(-t[:, None, None] * lam) * b  # (nt, K, M)
    return np.einsum("ik,tkm,jm->tij", sx, bt, sy, optimize=True)


def wave_standing(
    t: Any,
    x: Any,
    coeffs: Any,
    velocity_coeffs: Any = (),
    *,
    c: float,
    x_min: float = 0.0,
    length: float = 1.0,
) -> np.ndarray:
    """u_tt = c^2 u_xx, zero Dirichlet, as a sum of standing waves.

    u = sum_k (a_k cos(w_k t) + v_k / w_k sin(w_k t)) sin(k pi (x - x_min) / L), w_k = c k pi / L,
    where a_k are the sine coefficients of u(x, 0) and v_k those of u_t(x, 0).
    t: (nt,), x: (nx,), coeffs: (K,), velocity_coeffs: (K',) -> (nt, nx).
    """
    t, x = _as_1d("t", t), _as_1d("x", x)
    _check_times(t)
    a = np.asarray(coeffs, dtype=np.float64).ravel()
    v = np.asarray(velocity_coeffs if velocity_coeffs is not None else (), dtype=np.float64).ravel()
    kmax = max(a.size, v.size, 1)
    a = np.pad(a, (0, kmax - a.size))
    v = np.pad(v, (0, kmax - v.size))
    k = np.arange(1, kmax + 1)
    w = c * k * math.pi / length
    amp = np.cos(np.outer(t, w)) * a + np.sin(np.outer(t, w)) * (v / w)  # (nt, K)
    modes = np.sin(math.pi * np.outer((x - x_min) / length, k))  # (nx, K)
    return amp @ modes.T


def _odd_periodic(u0: Callable[[np.ndarray], np.ndarray], s: np.ndarray, x_min: float, length: float) -> np.ndarray:
    """The odd, 2L-periodic extension of u0 (given on [x_min, x_min + L]) evaluated at s."""
    xi = np.mod(s - x_min, 2 * length)
    inside = xi <= length
    mirrored = np.where(inside, xi, 2 * length - xi)
    vals = np.asarray(u0(x_min + mirrored), dtype=np.float64)
    return np.where(inside, vals, -vals)


def wave_dalembert(problem: Wave, t: Any, x: Any) -> np.ndarray:
    """Exact wave solution by d'Alembert: u = (F(x - ct) + F(x + ct)) / 2 + (1 / 2c) int_{x-ct}^{x+ct} G,

    with F, G the odd 2L-periodic extensions of u(., 0) and u_t(., 0) (this is how zero
    Dirichlet ends reflect). The displacement part is evaluated pointwise from ``problem.u0``
    (exact for any callable); the velocity integral uses the antiderivative of G's sine series.
    t: (nt,), x: (nx,) -> (nt, nx).
    """
    t, x = _as_1d("t", t), _as_1d("x", x)
    _check_times(t)
    c, x0, L = problem.c, problem.x_min, problem.length
    T, X = np.meshgrid(t, x, indexing="ij")
    u = 0.5 * (_odd_periodic(problem.u0, X - c * T, x0, L) + _odd_periodic(problem.u0, X + c * T, x0, L))
    if problem.initial_velocity is not None or problem.velocity_coeffs:
        if problem.initial_velocity is not None:
            v = sine_coefficients(problem.initial_velocity, x0, L)
        else:
            v = np.asarray(problem.velocity_coeffs, dtype=np.float64)
        u = u + wave_standing(t, x, (), v, c=c, x_min=x0, length=L)
    return u


# ----------------------------------------------------------------------------- Burgers


def gauss_hermite(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes z_i and log-weights log w_i of n-point Gauss–Hermite quadrature (weight e^{-z^2}).

    Weights that underflow in float64 (far tails of large rules) get log-weight -inf and so
    contribute nothing, which is exact to rounding there.
    """
    if n < 2:
        raise ValueError(f"number of Gauss–Hermite nodes must be >= 2, got {n}")
    z, w = scipy.special.roots_hermite(n)
    with np.errstate(divide="ignore"):
        logw = np.log(w)
    return z, logw


def burgers_log_phi0_coeffs(problem: Burgers, n: int = _DST_POINTS) -> np.ndarray:
    """Coefficients of log phi0 for the Cole–Hopf transform of a Dirichlet Burgers problem.

    The zero-Dirichlet problem on [x_min, x_min + L] equals the whole-line problem for the odd
    2L-periodic extension of u0 = sum_k b_k sin(k pi xi / L) (xi = x - x_min): Burgers keeps
    that symmetry. Then log phi0(y) = -(1 / 2 nu) int_0^y u0 = sum_k d_k cos(k pi xi / L) + const
    with d_k = b_k L / (2 nu k pi). Returns d: (K,).
    """
    b = sine_coefficients(problem.u0, problem.x_min, problem.length, n)
    k = np.arange(1, b.size + 1)
    return b * problem.length / (2.0 * problem.nu * k * math.pi)


def _default_nodes(max_u0: float, t_max: float, nu: float) -> int:
    # The integrand peaks at the characteristic foot, z* = t u0 / sqrt(4 nu t) <= max|u0| sqrt(t / 4nu),
    # with width >= ~0.3 in z; Gauss–Hermite nodes reach sqrt(2n) and are spaced ~pi / sqrt(2n - z^2).
    # Ask for nodes out to 2 z* + 12 (so the spacing at z* is < 0.1 and the tail is e^{-144} beyond).
    zstar = max_u0 * math.sqrt(max(t_max, 0.0) / (4.0 * nu))
    reach = 2.0 * zstar + 12.0
    return int(min(max(200, math.ceil(reach**2 / 2.0)), 4000))


def burgers_cole_hopf(
    t: Any,
    x: Any,
    *,
    nu: float = 0.01 / math.pi,
    log_phi0: Any = None,
    x_min: float = -1.0,
    length: float = 2.0,
    n_nodes: int | None = None,
    chunk: int = 2_000_000,
) -> np.ndarray:
    """Viscous Burgers u_t + u u_x = nu u_xx by Cole–Hopf and Gauss–Hermite quadrature.

    With y_i = x - sqrt(4 nu t) z_i, u(x, t) is the ratio of two Gauss–Hermite sums
        u = sum_i w_i s_i(x) exp(g_i) / sum_i w_i exp(g_i),
    where g_i = log phi0(y_i), s_i = -2 nu (log phi0)'(y_i) = u0_ext(y_i), and (z_i, w_i) are the
    Gauss–Hermite nodes and weights. For the preset (u0 = -sin(pi x)) this is the classical
        u = -int sin(pi (x - eta)) f(x - eta) e^{-eta^2 / 4 nu t} d eta / int f(x - eta) e^{-eta^2 / 4 nu t} d eta,
    f(y) = exp(-cos(pi y) / (2 pi nu)). Both sums are taken with the exponent shifted by its
    maximum over the nodes (log-sum-exp), so nothing overflows although f spans e^{+-50}.

    log_phi0: cosine coefficients d_k of log phi0 (see ``burgers_log_phi0_coeffs``); the default
    is the preset, d = (0, 1 / (2 pi nu)) on [-1, 1] (so log phi0 = -cos(pi x) / (2 pi nu)).
    n_nodes: Gauss–Hermite nodes (default from the peak position, >= 200).
    t: (nt,) >= 0, x: (nx,) -> (nt, nx). At t = 0 returns u0 itself.
    """
    if not (math.isfinite(nu) and nu > 0):
        raise ValueError(f"nu must be a positive finite number, got {nu!r}")
    t, x = _as_1d("t", t), _as_1d("x", x)
    _check_times(t)
    if log_phi0 is None:
        if (x_min, length) != (-1.0, 2.0):
            raise ValueError("the default initial data -sin(pi x) needs x_min = -1, length = 2; pass log_phi0")
        d = np.array([0.0, 1.0 / (2.0 * math.pi * nu)])  # -cos(pi x) = cos(pi (x + 1)) = cos(2 pi xi / L)
    else:
        d = _as_1d("log_phi0", log_phi0)
    d = _trim(d, 1e-16)
    k = np.arange(1, d.size + 1)
    kw = k * math.pi / length  # wave numbers of the cosines
    # u0_ext = -2 nu d/dy log phi0 = 2 nu sum_k d_k kw_k sin(kw_k (y - x_min))
    s_amp = 2.0 * nu * d * kw
    max_u0 = float(np.sum(np.abs(s_amp)))
    if n_nodes is None:
        n_nodes = _default_nodes(max_u0, float(t.max()), nu)
    z, logw = gauss_hermite(n_nodes)
    live = np.isfinite(logw)
    z, logw = z[live], logw[live]

    out = np.empty((t.size, x.size))
    per_t = max(1, chunk // max(1, x.size * z.size))
    for start in range(0, t.size, per_t):
        tt = t[start : start + per_t]
        scale = np.sqrt(4.0 * nu * tt)  # (bt,)
        y = x[None, :, None] - scale[:, None, None] * z[None, None, :]  # (bt, nx, nz)
        if d.size == 1 or np.count_nonzero(d) == 1:
            j = int(np.nonzero(d)[0][0]) if np.count_nonzero(d) else 0
            ph = (y - x_min) * kw[j]
            g = d[j] * np.cos(ph) + logw
            s = s_amp[j] * np.sin(ph)
        else:
            phase = (y - x_min)[..., None] * kw  # (bt, nx, nz, K)
            g = np.cos(phase) @ d + logw
            s = np.sin(phase) @ s_amp
        g = g - g.max(axis=-1, keepdims=True)
        e = np.exp(g)
        out[start : start + per_t] = np.sum(s * e, axis=-1) / np.sum(e, axis=-1)
    zero = t == 0
    if np.any(zero):
        ph = (x - x_min)[:, None] * kw
        out[zero] = np.sin(ph) @ s_amp
    return out


def exact_solution(problem: Problem, t: Any, x: Any, y: Any = None, **kwargs: Any) -> np.ndarray:
    """The exact solution of ``problem`` on the grid t x x (x y for Heat2D), float64.

    t: (nt,), x: (nx,), y: (ny,) -> (nt, nx) or (nt, nx, ny). Heat: sine series; Heat2D: double
    sine series; Wave: standing waves (sine coefficients) or d'Alembert (callable data);
    Burgers: Cole–Hopf with Gauss–Hermite quadrature (extra kwargs go to ``burgers_cole_hopf``).
    PeriodicBurgers has random initial data and no closed form: use ``pdes.spectral``.
    """
    t, x = _as_1d("t", t), _as_1d("x", x)
    _check_times(t)
    if isinstance(problem, Heat2D):
        if y is None:
            raise ValueError("heat2d needs y coordinates")
        if problem.initial is not None:
            b = sine_coefficients_2d(problem.initial, problem.length)
        else:
            b = np.asarray(problem.sine_coeffs, dtype=np.float64)
        return heat2d_series(t, x, y, b, alpha=problem.alpha, length=problem.length)
    if y is not None:
        raise ValueError(f"{problem.name} is one-dimensional: y must be None")
    if isinstance(problem, Heat):
        if problem.initial is not None:
            b = sine_coefficients(problem.initial, problem.x_min, problem.length)
        else:
            b = np.asarray(problem.sine_coeffs, dtype=np.float64)
        return heat_series(t, x, b, alpha=problem.alpha, x_min=problem.x_min, length=problem.length)
    if isinstance(problem, Wave):
        if problem.initial is not None or problem.initial_velocity is not None:
            return wave_dalembert(problem, t, x)
        return wave_standing(
            t, x, problem.sine_coeffs, problem.velocity_coeffs, c=problem.c, x_min=problem.x_min, length=problem.length
        )
    if isinstance(problem, Burgers):
        d = burgers_log_phi0_coeffs(problem)
        return burgers_cole_hopf(t, x, nu=problem.nu, log_phi0=d, x_min=problem.x_min, length=problem.length, **kwargs)
    if isinstance(problem, PeriodicBurgers):
        raise ValueError("operator_burgers has random initial data and no exact solution; use method 'spectral'")
    raise ValueError(f"no exact solution for problem {problem!r}")
