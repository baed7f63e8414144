"""Fourier pseudo-spectral solvers in float64: heat (1D, 2D), wave, viscous Burgers, any periodic
semilinear equation u_t = L u + N(u) (``solve_periodic_semilinear``), and the Allen–Cahn and KdV
references built on it.

* Space: Fourier on a periodic grid of ``n`` points; zero-Dirichlet problems on [a, a + L] are
  solved on the odd extension to the period 2L (the equations keep that symmetry, so the
  boundary values stay exactly zero). Products are dealiased by the 2/3 rule (modes with
  |m| > n/3 of the product are dropped).
* Time: heat and wave are integrated exactly in Fourier space (each mode is a decaying
  exponential or a standing wave), so only the spatial error is left; these are a few numpy
  FFTs (nothing to compile). Burgers uses ETDRK4
  (Cox & Matthews 2002), fourth order in dt, with the phi-function coefficients computed by
  the contour integral of Kassam & Trefethen (2005, SIAM J. Sci. Comput. 26(4), section 2,
  eq. (2.5) and Fig. 2): means over M points of a circle of radius 1 around each h L.
* Batching (Burgers): one trajectory is written for one initial condition and ``jax.vmap`` batches it;
  the steps run inside ``lax.scan`` (over save times) and ``lax.fori_loop`` (steps between
  saves), in one ``jit``-compiled call per shape.
* Precision: the public functions run inside ``jax.enable_x64(True)`` and return float64
  numpy arrays; nothing changes jax's global configuration.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from pdes.problems import Burgers, Heat, Heat2D, PeriodicBurgers, Problem, Wave

__all__ = [
    "ETDRK4Coeffs",
    "Nonlinear",
    "SpectralSolution",
    "allen_cahn_initial",
    "allen_cahn_initial_modes",
    "allen_cahn_reference",
    "allen_cahn_terms",
    "dealias_mask",
    "default_burgers_steps",
    "etdrk4_coeffs",
    "flux_nonlinear",
    "fourier_interpolate",
    "kdv_initial",
    "kdv_reference",
    "kdv_terms",
    "odd_extension",
    "pde_reference",
    "periodic_grid",
    "physical_nonlinear",
    "propagate_linear",
    "solve_burgers_dirichlet",
    "solve_heat",
    "solve_heat2d",
    "solve_periodic_burgers",
    "solve_periodic_semilinear",
    "solve_spectral",
    "solve_wave",
    "wavenumbers",
]

Nonlinear = Callable[[jax.Array, jax.Array], jax.Array]
"""N(v, k) -> (nk,) complex: rfft coefficients of the nonlinear term from v = rfft(u) (nk,) and k (nk,)."""


# ----------------------------------------------------------------------------- grids


def wavenumbers(n: int, length: float) -> np.ndarray:
    """Angular wave numbers k_m = 2 pi m / length of ``rfft`` of n points, m = 0..n//2: (n//2 + 1,)."""
    return 2.0 * math.pi * np.arange(n // 2 + 1) / length


def dealias_mask(n: int) -> np.ndarray:
    """2/3-rule mask for ``rfft`` modes m = 0..n//2: keep m < n / 3 (Orszag 1971). (n//2 + 1,) float."""
    m = np.arange(n // 2 + 1)
    return (3 * m < n).astype(np.float64)


def odd_extension(u: np.ndarray) -> np.ndarray:
    """Odd extension of samples on [a, a + L] including both ends (u[..., 0] = u[..., -1] = 0
    after extension) to one period 2L of n = 2 (nx - 1) points: (..., nx) -> (..., 2 (nx - 1))."""
    u = np.asarray(u, dtype=np.float64)
    inner = u[..., 1:-1]
    zero = np.zeros(u.shape[:-1] + (1,))
    return np.concatenate([zero, inner, zero, -inner[..., ::-1]], axis=-1)


def fourier_interpolate(u: np.ndarray, x_out: np.ndarray, *, x0: float, length: float) -> np.ndarray:
    """Evaluate the trigonometric interpolant of periodic samples u (..., n) on x_j = x0 + j L / n
    at arbitrary points x_out (m,): exact for band-limited data. Returns (..., m)."""
    u = np.asarray(u, dtype=np.float64)
    n = u.shape[-1]
    uh = np.fft.rfft(u, axis=-1) / n
    w = np.full(uh.shape[-1], 2.0)
    w[0] = 1.0
    if n % 2 == 0:
        w[-1] = 1.0
    k = wavenumbers(n, length)
    coeffs = uh * w
    x_out = np.asarray(x_out, dtype=np.float64)
    out = np.empty(u.shape[:-1] + x_out.shape)
    block = max(1, 2**22 // k.size)  # bounds the (nk, block) phase matrix to 64 MiB
    for i in range(0, x_out.size, block):
        phase = np.exp(1j * np.outer(k, x_out[i : i + block] - x0))  # (nk, block)
        out[..., i : i + block] = np.real(coeffs @ phase)
    return out


# ----------------------------------------------------------------------------- ETDRK4


class ETDRK4Coeffs(NamedTuple):
    """ETDRK4 coefficients for a diagonal linear operator L and step h, each (nk,)."""

    E: Any  # exp(h L)
    E2: Any  # exp(h L / 2)
    Q: Any  # h (e^{hL/2} - 1) / (hL), Kassam–Trefethen's Q
    f1: Any
    f2: Any
    f3: Any


def etdrk4_coeffs(lin: np.ndarray, h: float, n_contour: int = 64) -> ETDRK4Coeffs:
    """Kassam–Trefethen ETDRK4 coefficients for the diagonal linear part ``lin`` (nk,) and step h.

    The phi-functions are averaged over n_contour points of the unit circle around each z = h L
    (Cauchy integral), which avoids the cancellation of the closed forms for small |z|. For real
    L the points r_j = exp(i pi (j - 1/2) / M) of the upper half circle suffice and the real part
    is kept (the lower half gives the complex conjugates; Kassam & Trefethen's kursiv.m); complex
    L (dispersive terms, e.g. KdV) needs the whole circle, r_j = exp(2 i pi (j - 1/2) / M)
    (their kdv.m). h = 0 gives E = 1 and zero increments (a save time that needs no step).
    """
    lin = np.asarray(lin)
    turn = math.pi if np.isrealobj(lin) else 2 * math.pi
    r = np.exp(1j * turn * (np.arange(1, n_contour + 1) - 0.5) / n_contour)
    LR = h * lin[:, None] + r[None, :]
    eLR = np.exp(LR)
    Q = h * np.mean((np.exp(LR / 2) - 1) / LR, axis=1)
    f1 = h * np.mean((-4 - LR + eLR * (4 - 3 * LR + LR**2)) / LR**3, axis=1)
    f2 = h * np.mean((2 + LR + eLR * (-2 + LR)) / LR**3, axis=1)
    f3 = h * np.mean((-4 - 3 * LR - LR**2 + eLR * (4 - LR)) / LR**3, axis=1)
    E, E2 = np.exp(h * lin), np.exp(h * lin / 2)
    out = (E, E2, Q, f1, f2, f3)
    if np.isrealobj(lin):
        out = tuple(np.real(a) for a in out)
    return ETDRK4Coeffs(*out)


def etdrk4_step(v: jax.Array, c: ETDRK4Coeffs, nonlinear: Any) -> jax.Array:
    """One ETDRK4 step (Cox & Matthews 2002; Kassam & Trefethen 2005, eq. (2.3)) of
    v' = L v + N(v) with diagonal L. v: (nk,) complex -> (nk,). Fourth order in h."""
    Nv = nonlinear(v)
    a = c.E2 * v + c.Q * Nv
    Na = nonlinear(a)
    b = c.E2 * v + c.Q * Na
    Nb = nonlinear(b)
    cc = c.E2 * a + c.Q * (2 * Nb - Nv)
    Nc = nonlinear(cc)
    return c.E * v + c.f1 * Nv + 2 * c.f2 * (Na + Nb) + c.f3 * Nc


def _burgers_nonlinear(v: jax.Array, half_ik: jax.Array, mask: jax.Array, n: int) -> jax.Array:
    """N(v) = -(u^2 / 2)_x in Fourier space, dealiased: -(i k / 2) mask * F[(F^-1 v)^2]. v: (nk,)."""
    u = jnp.fft.irfft(v, n=n)
    return -half_ik * mask * jnp.fft.rfft(u * u)


@functools.partial(jax.jit, static_argnames=("n",))
def _burgers_trajectories(
    v0: jax.Array, coeffs: ETDRK4Coeffs, counts: jax.Array, half_ik: jax.Array, mask: jax.Array, n: int
) -> jax.Array:
    """v0: (B, nk); coeffs: fields (ns, nk), one set per save interval; counts: (ns,) steps per
    interval. Returns the saved physical fields (B, ns, n)."""
    nonlinear = functools.partial(_burgers_nonlinear, half_ik=half_ik, mask=mask, n=n)

    def trajectory(v_init: jax.Array) -> jax.Array:
        def interval(v, xs):
            c, m = xs
            v = jax.lax.fori_loop(0, m, lambda _, w: etdrk4_step(w, c, nonlinear), v)
            return v, v

        saved = jax.lax.scan(interval, v_init, (coeffs, counts))[1]  # (ns, nk)
        return jnp.fft.irfft(saved, n=n, axis=-1)

    return jax.vmap(trajectory)(v0)


def _check_times(t_save: Any) -> np.ndarray:
    t = np.atleast_1d(np.asarray(t_save, dtype=np.float64))
    if t.ndim != 1 or t.size == 0:
        raise ValueError(f"t_save must be a non-empty 1-D array, got shape {t.shape}")
    if not np.all(np.isfinite(t)):
        raise ValueError("t_save has non-finite values")
    if t[0] < 0 or np.any(np.diff(t) <= 0):
        raise ValueError("t_save must be increasing and >= 0")
    return t


def default_burgers_steps(u0: np.ndarray, nu: float, length: float, n: int, t_end: float, *, cap: bool = False) -> int:
    """ETDRK4 steps for Burgers: dt = 0.08 dx_eff / max|u|, with dx_eff = max(dx, nu / max|u|) the
    scale below which diffusion damps advection; with ``cap`` also dt <= 1e-3 L / max|u| (L the
    period), which the low-Reynolds Dirichlet problems need for ~1e-10.

    Measured (rel. L2 against a converged run or Cole–Hopf):
    operator preset (1024 points, GRF data, nu = 0.1, against Cole–Hopf, 2026-12-03): 512 draws
    (max|u0| 3.0): 1137 steps, median 1.2e-9, worst 2.2e-8; 64 draws (max|u0| 1.9): 431 steps,
    1.9e-8 / 1.8e-7; 4 draws (max|u0| 1.3): 207 steps, worst 1.7e-7 (another 4: 1.7e-6); nu = 0.05
    doubles the steps and gains ~20x; 4000 / 8000 steps: 4e-11 / 6e-12 (the step, not the grid,
    limits the default);
    Burgers preset (4096 points on the period 4, cap inactive): dt = 1/4000, 2.4e-11 (1/625: 5e-8);
    nu = 0.1 on [-1, 1]: with the cap dt = 1/250, 3.6e-10; without it 1/125, 6e-9.
    Pass n_steps to trade accuracy for speed (fourth order: half the steps, 16x the error)."""
    umax = max(float(np.max(np.abs(u0))), 1e-12)
    dx = length / n
    dx_eff = max(dx, nu / umax)
    dt = 0.08 * dx_eff / umax
    if cap:
        dt = min(dt, 1e-3 * length / umax)
    return max(8, int(math.ceil(t_end / dt)))


def coefficient_table(lin: np.ndarray, h: np.ndarray) -> tuple[ETDRK4Coeffs, np.ndarray]:
    """ETDRK4 coefficients for the step sizes h (one per output interval): (table, which), the
    coefficients of each distinct step stacked in ``table`` and interval i's row ``which[i]``.
    Intervals whose steps agree to 13 digits (linspace gaps differ in the last bits) share a row:
    a time shift of <= 1e-13 h per step, far below the ETDRK4 error, where computing each
    interval's contour integrals again took ~10 ms apiece."""
    h = np.asarray(h, dtype=np.float64)
    _, first, which = np.unique(np.round(h / max(float(h.max()), 1e-300), 13), return_index=True, return_inverse=True)
    per = [etdrk4_coeffs(lin, float(h[i])) for i in first]
    return ETDRK4Coeffs(*(np.stack([getattr(c, f) for c in per]) for f in ETDRK4Coeffs._fields)), which.reshape(-1)


def solve_periodic_burgers(
    u0: Any,
    *,
    nu: float,
    length: float = 1.0,
    t_save: Any,
    n_steps: int | None = None,
    dealias: bool = True,
) -> np.ndarray:
    """Viscous Burgers u_t + (u^2 / 2)_x = nu u_xx, periodic on [0, length), for a batch of
    initial conditions, by Fourier pseudo-spectral + ETDRK4 in float64.

    u0: (B, nx) or (nx,) samples on x_j = j length / nx. t_save: (nt,) increasing times >= 0.
    n_steps: ETDRK4 steps over [0, t_save[-1]] (split over the save intervals). The default comes
    from max|u0|, nu and dx (see ``default_burgers_steps``): 1e-9 - 1e-6 relative error on the operator
    preset (pass 8000 steps for ~1e-11), ~6e-9 for smooth low-mode data at Reynolds number ~40; as it depends on max|u0| over
    the batch, pass n_steps for results independent of how samples are batched. Returns (B, nt, nx) float64 ((nt, nx) for 1-D u0).
    One compiled program per (B, nx, nt); the batch is ``vmap``-ed.
    """
    if not (isinstance(nu, int | float) and math.isfinite(nu) and nu > 0):
        raise ValueError(f"nu must be a positive finite number, got {nu!r}")
    if not (math.isfinite(length) and length > 0):
        raise ValueError(f"length must be positive, got {length!r}")
    arr = np.asarray(u0, dtype=np.float64)
    single = arr.ndim == 1
    arr = np.atleast_2d(arr)
    if arr.ndim != 2 or arr.shape[-1] < 8:
        raise ValueError(f"u0 must have shape (B, nx) with nx >= 8, got {np.shape(u0)}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("u0 has non-finite values")
    t = _check_times(t_save)
    n = arr.shape[-1]
    if n_steps is None:
        n_steps = default_burgers_steps(arr, nu, length, n, float(t[-1]))
    if not (isinstance(n_steps, int | np.integer) and n_steps >= 1):
        raise ValueError(f"n_steps must be a positive integer, got {n_steps!r}")
    dt_target = float(t[-1]) / n_steps if t[-1] > 0 else 1.0
    starts = np.concatenate([[0.0], t[:-1]])
    gaps = t - starts
    counts = np.where(gaps > 0, np.ceil(gaps / dt_target - 1e-9), 0).astype(np.int64)
    k = wavenumbers(n, length)
    lin = -nu * k**2
    table, which = coefficient_table(lin, np.where(counts > 0, gaps / np.maximum(counts, 1), 0.0))
    coeffs = ETDRK4Coeffs(*(a[which] for a in table))
    mask = dealias_mask(n) if dealias else np.ones(n // 2 + 1)
    with jax.enable_x64(True):
        v0 = jnp.fft.rfft(jnp.asarray(arr), axis=-1)
        out = _burgers_trajectories(
            v0,
            ETDRK4Coeffs(*(jnp.asarray(a) for a in coeffs)),
            jnp.asarray(counts),
            jnp.asarray(0.5j * k),
            jnp.asarray(mask),
            n,
        )
        out = np.asarray(out, dtype=np.float64)
    if not np.all(np.isfinite(out)):
        raise ValueError(f"Burgers solve became non-finite (n_steps={n_steps} too few for nx={n}?)")
    return out[0] if single else out


# ----------------------------------------------------------------------------- Dirichlet problems


def _default_burgers_points(problem: Burgers) -> int:
    # The front is ~2 nu / U wide (U = max|u0|) and its Fourier tail decays like exp(-pi k nu / U)
    # (tanh profile). With 2/3 of the n modes of the period 2L kept (k_max = pi n / (3 L)), ask
    # for k_max >= 20 U / (pi nu): n = 4096 for the preset, whose spatial error is then ~2e-11
    # (8192 modes change the result at t = 1 by < 1e-12).
    xs = np.linspace(problem.x_min, problem.x_max, 257)
    umax = max(float(np.max(np.abs(problem.u0(xs)))), 1e-12)
    k_need = 20.0 * umax / (math.pi * problem.nu)
    n = int(math.ceil(k_need * 3.0 * problem.length / math.pi))
    return int(min(max(256, 2 ** math.ceil(math.log2(n))), 2**15))


def _aligned_points(nx: int, n_min: int) -> int:
    """The smallest multiple of 2 (nx - 1) that is >= n_min: a periodic grid on 2L that holds the
    output grid linspace(a, a + L, nx) as every r-th point."""
    base = 2 * (nx - 1)
    return base * max(1, math.ceil(n_min / base))


def _periodic_grid_u0(problem: Problem, n: int) -> np.ndarray:
    """Odd extension of problem.u0 sampled on n points of the period 2L: (n,)."""
    half = n // 2
    xi = problem.x_min + problem.length * np.arange(half + 1) / half
    return odd_extension(problem.u0(xi))


def _restrict(u_per: np.ndarray, problem: Problem, x: np.ndarray) -> np.ndarray:
    """Values on the output points x from periodic samples (..., n) of the period 2L."""
    n = u_per.shape[-1]
    h = 2 * problem.length / n
    idx = (x - problem.x_min) / h
    if np.allclose(idx, np.round(idx), rtol=0, atol=1e-9):
        return u_per[..., np.round(idx).astype(int) % n]
    return fourier_interpolate(u_per, x, x0=problem.x_min, length=2 * problem.length)


def solve_burgers_dirichlet(
    problem: Burgers,
    t: Any,
    x: Any,
    *,
    n_points: int | None = None,
    n_steps: int | None = None,
    dealias: bool = True,
) -> np.ndarray:
    """Zero-Dirichlet Burgers on [x_min, x_max] by odd extension to the period 2L and
    ``solve_periodic_burgers``. t: (nt,) >= 0 increasing, x: (nx,) inside the domain -> (nt, nx).

    n_points: points of the periodic grid on 2L (default: a power of 2 that resolves the front to
    ~1e-10, 4096 for the preset). Output points that are not grid points get the exact
    trigonometric interpolant.
    """
    if not isinstance(problem, Burgers):
        raise ValueError(f"solve_burgers_dirichlet needs a Burgers problem, got {type(problem).__name__}")
    x = np.asarray(x, dtype=np.float64)
    n = n_points if n_points is not None else _default_burgers_points(problem)
    if not (isinstance(n, int | np.integer) and n >= 8 and n % 2 == 0):
        raise ValueError(f"n_points must be an even integer >= 8, got {n!r}")
    u0 = _periodic_grid_u0(problem, n)
    t_arr = _check_times(t)
    if n_steps is None:
        n_steps = default_burgers_steps(u0, problem.nu, 2 * problem.length, n, float(t_arr[-1]), cap=True)
    u = solve_periodic_burgers(u0[None], nu=problem.nu, length=2 * problem.length, t_save=t_arr, n_steps=n_steps, dealias=dealias)[0]
    return _restrict(u, problem, x)


# ----------------------------------------------------------------------------- linear problems


def propagate_linear(u0_hat: np.ndarray, v0_hat: np.ndarray | None, k: np.ndarray, t: np.ndarray, *, alpha: float | None = None, c: float | None = None) -> np.ndarray:
    """Exact Fourier-space propagation of the heat or wave equation, batched over leading axes.

    u0_hat, v0_hat: (..., nk) Fourier coefficients of u(., 0) and u_t(., 0); k: (nk,); t: (nt,).
    Heat (alpha): u_hat(t) = exp(-alpha k^2 t) u_hat(0). Wave (c): u_hat(t) = cos(c k t) u_hat(0)
    + sin(c k t) / (c k) v_hat(0) (t v_hat(0) for k = 0). Returns (..., nt, nk). Each mode is
    integrated exactly, so only the spatial (interpolation) error is left.
    """
    tt = t[:, None]
    if alpha is not None:
        return np.exp(-alpha * k**2 * tt) * u0_hat[..., None, :]
    w = c * k
    safe = np.where(w > 0, w, 1.0)
    sinc = np.where(w > 0, np.sin(w * tt) / safe, tt)
    out = np.cos(w * tt) * u0_hat[..., None, :]
    if v0_hat is not None:
        out = out + sinc * v0_hat[..., None, :]
    return out


def _linear_1d(problem: Heat | Wave, t: np.ndarray, x: np.ndarray, n: int) -> np.ndarray:
    u0 = _periodic_grid_u0(problem, n)
    k = wavenumbers(n, 2 * problem.length)
    if isinstance(problem, Wave):
        half = n // 2
        xi = problem.x_min + problem.length * np.arange(half + 1) / half
        v0 = odd_extension(problem.v0(xi))
        uh = propagate_linear(np.fft.rfft(u0), np.fft.rfft(v0), k, t, c=problem.c)
    else:
        uh = propagate_linear(np.fft.rfft(u0), None, k, t, alpha=problem.alpha)
    u = np.fft.irfft(uh, n=n, axis=-1)
    return _restrict(u, problem, x)


def _grid_points(problem: Problem, x: np.ndarray, n_points: int | None) -> int:
    if n_points is not None:
        if not (isinstance(n_points, int | np.integer) and n_points >= 8 and n_points % 2 == 0):
            raise ValueError(f"n_points must be an even integer >= 8, got {n_points!r}")
        return int(n_points)
    uniform = x.size >= 2 and np.allclose(np.diff(x), x[1] - x[0]) and abs(x[0] - problem.x_min) < 1e-12
    return _aligned_points(x.size, 64) if uniform else 1024


def solve_heat(problem: Heat, t: Any, x: Any, *, n_points: int | None = None) -> np.ndarray:
    """Heat u_t = alpha u_xx, zero Dirichlet, spectrally (odd extension, exact in time).
    t: (nt,), x: (nx,) -> (nt, nx). n_points: points of the periodic grid on 2L (default: the
    output grid itself, 2 (nx - 1), or a multiple of it >= 64)."""
    t, x = _check_times(t), np.asarray(x, dtype=np.float64)
    return _linear_1d(problem, t, x, _grid_points(problem, x, n_points))


def solve_wave(problem: Wave, t: Any, x: Any, *, n_points: int | None = None) -> np.ndarray:
    """Wave u_tt = c^2 u_xx, zero Dirichlet, spectrally: each Fourier mode of the odd extension
    is a standing wave, integrated exactly in time. t: (nt,), x: (nx,) -> (nt, nx)."""
    t, x = _check_times(t), np.asarray(x, dtype=np.float64)
    return _linear_1d(problem, t, x, _grid_points(problem, x, n_points))


def solve_heat2d(problem: Heat2D, t: Any, x: Any, y: Any, *, n_points: int | None = None) -> np.ndarray:
    """2-D heat on [0, L]^2, zero Dirichlet, by the odd extension in x and y and an exact
    exponential per mode of ``rfft2``. x, y must be uniform grids with both ends (linspace(0, L, .))
    and the same number of points when n_points is None. Returns (nt, nx, ny)."""
    t = _check_times(t)
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    nx, ny = x.size, y.size
    L = problem.length
    for name, g in (("x", x), ("y", y)):
        if not (g.size >= 3 and np.allclose(g, np.linspace(0.0, L, g.size))):
            raise ValueError(f"heat2d spectral needs {name} = linspace(0, {L}, n) with n >= 3")
    n1, n2 = 2 * (nx - 1), 2 * (ny - 1)
    if n_points is not None:
        r1, r2 = max(1, math.ceil(n_points / n1)), max(1, math.ceil(n_points / n2))
    else:
        r1, r2 = max(1, math.ceil(64 / n1)), max(1, math.ceil(64 / n2))
    n1, n2 = n1 * r1, n2 * r2
    gx = L * np.arange(n1 // 2 + 1) / (n1 // 2)
    gy = L * np.arange(n2 // 2 + 1) / (n2 // 2)
    X, Y = np.meshgrid(gx, gy, indexing="ij")
    u0 = problem.u0(X, Y)
    u0 = odd_extension(odd_extension(u0).T).T  # (n1, n2)
    kx = 2 * math.pi * np.fft.fftfreq(n1, d=2 * L / n1)
    ky = wavenumbers(n2, 2 * L)
    k2 = kx[:, None] ** 2 + ky[None, :] ** 2
    uh = np.fft.rfft2(u0)
    out = np.empty((t.size, nx, ny))
    for i, ti in enumerate(t):  # one time at a time: memory stays O(n1 n2)
        u = np.fft.irfft2(np.exp(-problem.alpha * k2 * ti) * uh, s=(n1, n2))
        out[i] = u[: n1 // 2 + 1 : r1, : n2 // 2 + 1 : r2]
    return out


# ----------------------------------------------------------------------------- one entry point


@dataclass(frozen=True)
class SpectralSolution:
    """A spectral solution on the output grid: t (nt,), x (nx,), y (ny,) or None, u (nt, nx[, ny])."""

    t: np.ndarray
    x: np.ndarray
    u: np.ndarray
    y: np.ndarray | None = None
    n_points: int | None = None
    n_steps: int | None = None


def solve_spectral(
    problem: Problem,
    *,
    nx: int = 256,
    nt: int = 100,
    t_end: float | None = None,
    n_steps: int | None = None,
    n_points: int | None = None,
    ny: int | None = None,
) -> SpectralSolution:
    """Solve ``problem`` spectrally on t = linspace(0, t_end, nt), x = linspace(x_min, x_max, nx)
    (both ends included). The periodic operator problem has random initial data: use
    ``solve_periodic_burgers`` for it.

    Heat, Wave, Heat2D (ny defaults to nx): exact in time; Burgers: ETDRK4 with n_steps steps
    (default ~1e-10 accuracy) on n_points periodic points (default resolves the front).
    """
    if not (isinstance(nx, int | np.integer) and nx >= 8):
        raise ValueError(f"nx must be an integer >= 8, got {nx!r}")
    if not (isinstance(nt, int | np.integer) and nt >= 2):
        raise ValueError(f"nt must be an integer >= 2, got {nt!r}")
    t_end = problem.t_end if t_end is None else t_end
    if not (isinstance(t_end, int | float) and math.isfinite(t_end) and t_end > 0):
        raise ValueError(f"t_end must be a positive finite number, got {t_end!r}")
    t = np.linspace(0.0, float(t_end), nt)
    if isinstance(problem, PeriodicBurgers):
        raise ValueError("operator_burgers has random initial data: call solve_periodic_burgers(u0, ...)")
    x = np.linspace(problem.x_min, problem.x_max, nx)
    if isinstance(problem, Heat2D):
        ny = nx if ny is None else ny
        y = np.linspace(0.0, problem.length, ny)
        return SpectralSolution(t, x, solve_heat2d(problem, t, x, y, n_points=n_points), y=y, n_points=n_points)
    if isinstance(problem, Heat):
        return SpectralSolution(t, x, solve_heat(problem, t, x, n_points=n_points), n_points=n_points)
    if isinstance(problem, Wave):
        return SpectralSolution(t, x, solve_wave(problem, t, x, n_points=n_points), n_points=n_points)
    if isinstance(problem, Burgers):
        u = solve_burgers_dirichlet(problem, t, x, n_points=n_points, n_steps=n_steps)
        return SpectralSolution(t, x, u, n_points=n_points, n_steps=n_steps)
    raise ValueError(f"no spectral solver for problem {problem!r}")


# ----------------------------------------------------------------------------- periodic semilinear


def periodic_grid(n: int, *, x_min: float, length: float) -> np.ndarray:
    """The periodic grid x_j = x_min + j length / n, j = 0..n-1, that the periodic solvers use: (n,)."""
    return x_min + length * np.arange(n) / n


def physical_nonlinear(f: Callable[..., jax.Array], *, derivatives: int = 1, x: Any = None) -> Nonlinear:
    """N(v, k) for ``solve_periodic_semilinear`` from a function of the physical fields.

    f(u) (derivatives=0), f(u, u_x) (1), f(u, u_x, u_xx) (2), ... maps arrays (n,) to N(u) (n,),
    written with ``jax.numpy``; with ``x`` (the grid, (n,), e.g. ``periodic_grid``) it is called as
    f(x, u, u_x, ...) for coefficients or forcing that vary in space. The derivatives are spectral,
    d^p/dx^p <-> (i k)^p; the product is formed on the grid and transformed back (pseudo-spectral),
    and the solver applies the 2/3 mask to the result. The returned callable is new on each call:
    build it once and reuse it so that repeated solves reuse the compiled program.
    """
    if not (isinstance(derivatives, int) and not isinstance(derivatives, bool) and derivatives >= 0):
        raise ValueError(f"derivatives must be an integer >= 0, got {derivatives!r}")
    grid = None
    if x is not None:
        grid = np.asarray(x, dtype=np.float64)
        if grid.ndim != 1 or not np.all(np.isfinite(grid)):
            raise ValueError(f"x must be a 1-D array of finite grid points, got shape {grid.shape}")

    def nonlinear(v: jax.Array, k: jax.Array) -> jax.Array:
        n = 2 * (v.shape[-1] - 1)
        ik = 1j * k
        fields = [jnp.fft.irfft(v * ik**p, n=n) for p in range(derivatives + 1)]
        if grid is None:
            return jnp.fft.rfft(f(*fields))
        if grid.size != n:
            raise ValueError(f"x has {grid.size} points but the grid has n = {n}")
        return jnp.fft.rfft(f(jnp.asarray(grid), *fields))

    return nonlinear


def flux_nonlinear(flux: Callable[[jax.Array], jax.Array]) -> Nonlinear:
    """N(v, k) = -(F(u))_x in conservation form: -i k F[flux(u)]; flux maps (n,) -> (n,) (jax.numpy).

    Mode 0 of N is exactly zero, so the mean of u is conserved to rounding. Burgers and KdV use
    flux(u) = u^2 / 2. Build once and reuse (see ``physical_nonlinear``)."""

    def nonlinear(v: jax.Array, k: jax.Array) -> jax.Array:
        n = 2 * (v.shape[-1] - 1)
        return -1j * k * jnp.fft.rfft(flux(jnp.fft.irfft(v, n=n)))

    return nonlinear


@functools.partial(jax.jit, static_argnames=("nonlinear", "n", "dims"))
def _semilinear_trajectories(
    v0: jax.Array, table: ETDRK4Coeffs, which: jax.Array, counts: jax.Array, k: jax.Array, mask: jax.Array, nonlinear: Nonlinear, n: int,
    dims: int = 1,
) -> jax.Array:
    """v0: (B, nk); table: fields (nh, nk), one coefficient set per distinct step size; which: (ns,)
    index into the table per save interval; counts: (ns,) steps per interval. -> (B, ns, n), or
    (B, ns, n, n) for dims = 2 (v: the rfft2 coefficients (n, n/2 + 1), flattened)."""

    def masked(v: jax.Array) -> jax.Array:
        return mask * nonlinear(v, k)

    def trajectory(v_init: jax.Array) -> jax.Array:
        def interval(v, xs):
            i, m = xs
            c = ETDRK4Coeffs(*(a[i] for a in table))
            v = jax.lax.fori_loop(0, m, lambda _, w: etdrk4_step(w, c, masked), v)
            return v, v

        saved = jax.lax.scan(interval, v_init, (which, counts))[1]  # (ns, nk)
        if dims == 2:
            return jnp.fft.irfft2(saved.reshape(saved.shape[0], n, n // 2 + 1), s=(n, n))
        return jnp.fft.irfft(saved, n=n, axis=-1)

    return jax.vmap(trajectory)(mask * v0)


def _linear_symbol(linear: Any, k: np.ndarray) -> np.ndarray:
    """L(k) on the rfft wave numbers k (nk,) (or the 2-D grid kx): evaluate a callable or check an
    array; of k's shape."""
    lin = np.asarray(linear(k) if callable(linear) else linear)
    if lin.shape == ():
        lin = np.full(k.shape, lin)
    if lin.shape != k.shape:
        raise ValueError(f"linear must give one value per rfft mode, shape {k.shape}, got {lin.shape}")
    if not np.all(np.isfinite(lin)):
        raise ValueError("linear has non-finite values")
    return lin.astype(np.complex128) if np.iscomplexobj(lin) else lin.astype(np.float64)


def _semilinear_run(
    v0: np.ndarray, lin: np.ndarray, k: np.ndarray, mask: np.ndarray, nonlinear: Nonlinear, t: np.ndarray, n_steps: int, n: int,
    dims: int = 1,
) -> np.ndarray:
    """One ETDRK4 run of the checked problem over the save times t (ns,) with ~n_steps steps:
    (B, ns, n) ((B, ns, n, n) for dims = 2)."""
    dt_target = float(t[-1]) / n_steps if t[-1] > 0 else 1.0
    gaps = t - np.concatenate([[0.0], t[:-1]])
    counts = np.where(gaps > 0, np.ceil(gaps / dt_target - 1e-9), 0).astype(np.int64)
    h = np.where(counts > 0, gaps / np.maximum(counts, 1), 0.0)
    table, which = coefficient_table(lin, h)
    with jax.enable_x64(True):
        out = _semilinear_trajectories(
            jnp.asarray(v0),
            ETDRK4Coeffs(*(jnp.asarray(a) for a in table)),
            jnp.asarray(which),
            jnp.asarray(counts),
            jnp.asarray(k),
            jnp.asarray(mask),
            nonlinear,
            n,
            dims,
        )
        return np.asarray(out, dtype=np.float64)


def _run_to_tolerance(run: Callable[[int], np.ndarray], n_steps: int | None, tol: float) -> np.ndarray:
    """run(n_steps), or with n_steps None: doubling from 64 steps until successive runs differ by
    <= 15 tol (relative L2 over the whole output), at most 2^17 steps; the finer run."""
    if n_steps is not None:
        return run(int(n_steps))
    steps, out = 64, run(64)
    while True:
        if steps >= 2**17:
            raise ValueError(f"ETDRK4 did not reach tol={tol} within {steps} steps; pass n_steps")
        steps *= 2
        finer = run(steps)
        change = np.linalg.norm(finer - out) / max(float(np.linalg.norm(finer)), 1e-300)
        out = finer
        if np.isfinite(change) and change <= 15 * tol:
            return out


def solve_periodic_semilinear(
    u0: Any,
    *,
    linear: Any,
    nonlinear: Nonlinear,
    length: float,
    t_save: Any,
    n_steps: int | None = None,
    dealias: bool = True,
    tol: float = 1e-10,
) -> np.ndarray:
    """u_t = L u + N(u), periodic on [x_min, x_min + length), for a batch of initial conditions,
    by Fourier pseudo-spectral + ETDRK4 (Kassam & Trefethen 2005) in float64.

    u0: (B, n) or (n,) samples on x_j = x_min + j length / n (``periodic_grid``), n even >= 8; the
    dynamics do not depend on x_min unless N does (``physical_nonlinear(f, x=grid)``).
    linear: the Fourier symbol L(k) of the linear part, a callable of the angular wave numbers
    k_m = 2 pi m / length, m = 0..n/2 (``wavenumbers``), or an array (n/2 + 1,), real or complex;
    d^p/dx^p <-> (i k)^p, so u_t = nu u_xx + r u is ``lambda k: -nu * k**2 + r`` and
    u_t = -d^2 u_xxx is ``lambda k: 1j * d**2 * k**3``. It is integrated exactly (stiff parts
    belong here).
    nonlinear: N(v, k) -> (n/2 + 1,) complex, the rfft coefficients of N(u) given v = rfft(u) (n/2 + 1,)
    complex, numpy's unnormalized convention (u = irfft(v, n), n = 2 (len(v) - 1)), written with
    ``jax.numpy`` (it runs inside ``jit``). ``physical_nonlinear(f)`` builds it from f(u, u_x, ...)
    and ``flux_nonlinear(F)`` from a flux, N = -(F(u))_x. The compiled program is cached on the
    identity of this callable: reuse one object for repeated solves.
    dealias: apply the 2/3 rule: N's output and the initial state keep only modes |m| < n/3
    (Orszag 1971; exact for quadratic products, for cubic ones the aliased part is as small as the
    solution's modes near n/3). Without it every mode is kept, the Nyquist mode included.
    t_save: (nt,) increasing times >= 0 (t = 0 returns the initial state).
    n_steps: ETDRK4 steps over [0, t_save[-1]]; each save interval gets ceil(gap / dt) equal steps,
    dt = t_save[-1] / n_steps. Fourth order: half the steps, 1/16 the time error. Default (None):
    doubling from 64 steps until successive runs differ by <= 15 tol (relative L2 over the whole
    output; Richardson's estimate of the finer run's time error is that difference / 15), at most
    2^17 steps, and the finer run is returned; it costs about twice the final run. The spatial
    error is the user's to check (double n: the modes near n/3 should be at the rounding level).

    Returns (B, nt, n) float64 ((nt, n) for 1-D u0). One compiled program per (B, n, nt, N); the
    batch is ``vmap``-ed, the steps run in ``lax.scan`` / ``lax.fori_loop``.
    """
    if not callable(nonlinear):
        raise ValueError(f"nonlinear must be a callable N(v, k), got {nonlinear!r}")
    if not (isinstance(length, int | float) and math.isfinite(length) and length > 0):
        raise ValueError(f"length must be a positive finite number, got {length!r}")
    if not (isinstance(tol, int | float) and math.isfinite(tol) and tol > 0):
        raise ValueError(f"tol must be a positive finite number, got {tol!r}")
    arr = np.asarray(u0, dtype=np.float64)
    single = arr.ndim == 1
    arr = np.atleast_2d(arr)
    if arr.ndim != 2 or arr.shape[-1] < 8 or arr.shape[-1] % 2:
        raise ValueError(f"u0 must have shape (B, n) with n even and >= 8, got {np.shape(u0)}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("u0 has non-finite values")
    t = _check_times(t_save)
    if n_steps is not None and not (isinstance(n_steps, int | np.integer) and not isinstance(n_steps, bool) and n_steps >= 1):
        raise ValueError(f"n_steps must be a positive integer, got {n_steps!r}")
    n = arr.shape[-1]
    k = wavenumbers(n, float(length))
    lin = _linear_symbol(linear, k)
    mask = dealias_mask(n) if dealias else np.ones(k.size)
    v0 = np.fft.rfft(arr, axis=-1)
    out = _run_to_tolerance(functools.partial(_semilinear_run, v0, lin, k, mask, nonlinear, t, n=n), n_steps, tol)
    if not np.all(np.isfinite(out)):
        raise ValueError(f"the solve became non-finite (n_steps={n_steps} too few for n={n}?)")
    return out[0] if single else out


# ----------------------------------------------------------------------------- Allen–Cahn and KdV references


def allen_cahn_initial(x: Any) -> np.ndarray:
    """u0(x) = x^2 cos(pi x) of the Allen–Cahn preset: any shape -> same shape."""
    x = np.asarray(x, dtype=np.float64)
    return x**2 * np.cos(math.pi * x)


def allen_cahn_initial_modes(n: int) -> np.ndarray:
    """Samples (n,) on x_j = -1 + 2 j / n of the exact Fourier series of x^2 cos(pi x) on [-1, 1)
    truncated to |m| < n / 3 (the 2/3 band): the L2 projection, free of the O(n^-2) aliasing that
    sampling the kinked u0 would put into every mode.

    c_m = (g(m + 1) + g(m - 1)) / 2, g(j) = int_0^1 x^2 cos(pi j x) dx = 2 (-1)^j / (pi j)^2, g(0) = 1/3.
    """
    if not (isinstance(n, int | np.integer) and not isinstance(n, bool) and n >= 8 and n % 2 == 0):
        raise ValueError(f"n must be an even integer >= 8, got {n!r}")
    m = np.arange(n // 2 + 1)

    def g(j: np.ndarray) -> np.ndarray:
        safe = np.where(j == 0, 1, j)
        return np.where(j == 0, 1.0 / 3.0, 2.0 * (-1.0) ** np.abs(j) / (math.pi * safe) ** 2)

    c = 0.5 * (g(m + 1) + g(m - 1))
    v = n * c * (-1.0) ** m * dealias_mask(n)  # rfft of samples starting at x = -1: phase (-1)^m
    return np.fft.irfft(v, n=n)


@functools.lru_cache(maxsize=16)
def allen_cahn_terms(eps: float = 1e-4, gamma: float = 5.0) -> tuple[Callable[[np.ndarray], np.ndarray], Nonlinear]:
    """(linear, nonlinear) of u_t = eps u_xx + gamma (u - u^3) for ``solve_periodic_semilinear``:
    L(k) = -eps k^2 + gamma (integrated exactly) and N(u) = -gamma u^3 (the coefficient names of
    ``pdes.problems.ALLEN_CAHN``). One pair per value (cached), so solves share the compiled program."""
    for name, value in (("eps", eps), ("gamma", gamma)):
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive finite number, got {value!r}")

    def linear(k: np.ndarray) -> np.ndarray:
        return -eps * k**2 + gamma

    return linear, physical_nonlinear(lambda u: -gamma * u**3, derivatives=0)


@functools.lru_cache(maxsize=16)
def kdv_terms(delta: float = 0.022) -> tuple[Callable[[np.ndarray], np.ndarray], Nonlinear]:
    """(linear, nonlinear) of u_t + u u_x + delta^2 u_xxx = 0 for ``solve_periodic_semilinear``:
    L(k) = i delta^2 k^3 (the dispersion, -delta^2 (i k)^3, integrated exactly) and
    N = -(u^2 / 2)_x in conservation form. Cached per value (one compiled program)."""
    if not (isinstance(delta, int | float) and math.isfinite(delta) and delta > 0):
        raise ValueError(f"delta must be a positive finite number, got {delta!r}")

    def linear(k: np.ndarray) -> np.ndarray:
        return 1j * delta**2 * k**3

    return linear, flux_nonlinear(lambda u: 0.5 * u * u)


def _reference_on(
    t: Any, x: Any, solve: Callable[[np.ndarray], np.ndarray], u0: Callable[..., np.ndarray], *, x_min: float, length: float,
    y: Any = None, y_min: float = 0.0, y_length: float = 1.0,
) -> np.ndarray:
    """Evaluate a periodic solver on any times t (nt,) >= 0 (any order, repeats allowed) and points
    x (nx,): solve(t_sorted) -> (nt_unique, n) grid values, Fourier-interpolated to x; rows with
    t = 0 are u0(x) itself. Returns (nt, nx). With y (ny,) (2-D): solve gives (nt_unique, n, n)
    on the periodic grids of x and y, u0 is u0(x, y), and the result is (nt, nx, ny)."""
    t = np.asarray(t, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    if t.ndim != 1 or t.size == 0 or not np.all(np.isfinite(t)) or np.any(t < 0):
        bad = t if t.size <= 8 else f"shape {t.shape}, min {np.nanmin(t) if t.size else None}"
        raise ValueError(f"t must be a non-empty 1-D array of finite times >= 0, got {bad}")
    if x.ndim != 1 or x.size == 0 or not np.all(np.isfinite(x)):
        raise ValueError(f"x must be a non-empty 1-D array of finite points, got shape {x.shape}")
    if y is not None:
        y = np.asarray(y, dtype=np.float64)
        if y.ndim != 1 or y.size == 0 or not np.all(np.isfinite(y)):
            raise ValueError(f"y must be a non-empty 1-D array of finite points, got shape {y.shape}")
    times, back = np.unique(t, return_inverse=True)
    out = np.empty((times.size, x.size) + (() if y is None else (y.size,)))
    positive = times > 0
    out[~positive] = u0(x) if y is None else u0(*np.meshgrid(x, y, indexing="ij"))
    if positive.any():
        grid = solve(times[positive])
        if y is None:
            out[positive] = fourier_interpolate(grid, x, x0=x_min, length=length)
        else:  # along y (the last axis), then along x
            along_y = np.swapaxes(fourier_interpolate(grid, y, x0=y_min, length=y_length), -1, -2)
            out[positive] = np.swapaxes(fourier_interpolate(along_y, x, x0=x_min, length=length), -1, -2)
    return out[back.reshape(-1)]


def _check_reference_grid(n_points: Any, n_steps: Any) -> None:
    if not (isinstance(n_points, int | np.integer) and not isinstance(n_points, bool) and n_points >= 8 and n_points % 2 == 0):
        raise ValueError(f"n_points must be an even integer >= 8, got {n_points!r}")
    if not (isinstance(n_steps, int | np.integer) and not isinstance(n_steps, bool) and n_steps >= 1):
        raise ValueError(f"n_steps must be a positive integer, got {n_steps!r}")


def allen_cahn_reference(
    t: Any, x: Any, *, eps: float = 1e-4, gamma: float = 5.0, n_points: int = 4096, n_steps: int = 4000
) -> np.ndarray:
    """Allen–Cahn u_t = eps u_xx + gamma (u - u^3), periodic on [-1, 1), u0 = x^2 cos(pi x)
    (the PINN benchmark of Raissi et al. 2019), on any times t (nt,) >= 0 and points x (nx,):
    (nt, nx) float64.

    ETDRK4 with L = -eps k^2 + gamma (exact) and N = -gamma u^3, n_points Fourier
    points (2/3 dealiased), n_steps steps over [0, max t]. u0 is only continuous across x = +-1
    (slope 2 -> -2), so its Fourier modes fall like m^-2: the solver starts from the exact series
    truncated to the 2/3 band (``allen_cahn_initial_modes``), and rows with t = 0 are u0 itself.

    Accuracy of the defaults (4096 points, 4000 steps), relative L2 on t = linspace(0, 1, 100),
    x = linspace(-1, 1, 256): ~1e-12 (9.3e-13 against 16384 points and 8000 steps; spatial part
    3.3e-13). In n_points the error is spectral once diffusion has damped the kink's tail
    (t >~ 0.01; 1.1e-6, 6.0e-9, 3.3e-13 at 1024, 2048, 4096 points); closer to t = 0 that tail
    limits it algebraically (t = 1e-4: 2.9e-5 at 4096 points, order 1.3-1.7; t = 1e-3: 1.8e-6),
    so pass more points for such times. Starting from samples of u0 instead would converge only at
    second order (3.7e-7 at 4096 points). In n_steps ETDRK4 is fourth order down to ~1e-12 at
    ~2000 steps; more steps only add rounding (each step multiplies by the rounded exp(h L):
    ~n_steps x 1e-16, amplified by the unstable reaction). Tables and cost:
    benchmarks/results/spectral.md.
    """
    _check_reference_grid(n_points, n_steps)
    linear, nonlinear = allen_cahn_terms(eps, gamma)
    u0 = allen_cahn_initial_modes(int(n_points))

    def solve(times: np.ndarray) -> np.ndarray:
        return solve_periodic_semilinear(u0, linear=linear, nonlinear=nonlinear, length=2.0, t_save=times, n_steps=int(n_steps))

    return _reference_on(t, x, solve, allen_cahn_initial, x_min=-1.0, length=2.0)


def kdv_initial(x: Any) -> np.ndarray:
    """u0(x) = cos(pi x) of the KdV preset (Zabusky & Kruskal 1965): any shape -> same shape."""
    return np.cos(math.pi * np.asarray(x, dtype=np.float64))


def kdv_reference(t: Any, x: Any, *, delta: float = 0.022, n_points: int = 512, n_steps: int = 32000) -> np.ndarray:
    """Korteweg–de Vries u_t + u u_x + delta^2 u_xxx = 0, periodic on [-1, 1), u0 = cos(pi x)
    (Zabusky & Kruskal 1965, delta = 0.022), on any times t (nt,) >= 0 and points x (nx,):
    (nt, nx) float64.

    ETDRK4 with L = i delta^2 k^3 (the dispersion, exact) and N = -(u^2 / 2)_x, n_points Fourier
    points (2/3 dealiased), n_steps steps over [0, max t]. Mass (the mean of u) is conserved to
    rounding; int u^2 to the time error.

    Accuracy of the defaults (512 points, 32000 steps), relative L2 on t = linspace(0, 1, 100),
    x = linspace(-1, 1, 256): ~5e-12 (4.5e-12 against 1024 points and 64000 steps; spatial part
    2.6e-14 against 1024 points; time part 1.4e-12 by Richardson). The error falls exponentially
    in n_points (3.5e-7, 6.2e-9, 1.1e-10, 1.5e-12 at 256, 320, 384, 448) and at fourth order in
    n_steps (3.7e-10 / 15 at 8000 steps); beyond ~32000 steps the rounding of exp(h L), applied
    once per step, grows as fast as the time error falls. Tables and cost:
    benchmarks/results/spectral.md.
    """
    _check_reference_grid(n_points, n_steps)
    linear, nonlinear = kdv_terms(delta)
    u0 = kdv_initial(periodic_grid(int(n_points), x_min=-1.0, length=2.0))

    def solve(times: np.ndarray) -> np.ndarray:
        return solve_periodic_semilinear(u0, linear=linear, nonlinear=nonlinear, length=2.0, t_save=times, n_steps=int(n_steps))

    return _reference_on(t, x, solve, kdv_initial, x_min=-1.0, length=2.0)


# ----------------------------------------------------------------------------- references of pdes.PDE problems


@functools.lru_cache(maxsize=16)
def _pde_terms(problem: Any) -> tuple[Callable[[np.ndarray], np.ndarray], Nonlinear]:
    """(L(k), N(v, k)) of a periodic PDE from its ``linear`` symbol and ``nonlinear`` part (a
    function of u and its x-derivatives by name); built once per problem, so repeated solves reuse
    the compiled program."""
    from pdes.problems import equation_signature, parse_derivative

    coeffs = problem.coefficients()

    def linear(k: np.ndarray) -> np.ndarray:
        return np.asarray(problem.linear(k, **_keyword(problem.linear, coeffs)))

    if problem.nonlinear is None:
        return linear, lambda v, k: jnp.zeros_like(v)
    names, _ = equation_signature(problem.nonlinear)
    orders = [parse_derivative(n)[1] for n in names]
    kw = _keyword(problem.nonlinear, coeffs)

    def f(*fields: jax.Array) -> jax.Array:
        return problem.nonlinear(*(fields[q] for q in orders), **kw)

    return linear, physical_nonlinear(f, derivatives=max(orders))


def _pde_reference_2d(problem: Any, t: Any, x: Any, y: Any, *, n: int, n_steps: int | None) -> np.ndarray:
    _check_reference_grid(n, 1 if n_steps is None else n_steps)
    lin, nonlinear, k, mask = _pde_terms_2d(problem, n)
    gx = periodic_grid(n, x_min=problem.x_min, length=problem.length)
    gy = periodic_grid(n, x_min=problem.y_min, length=problem.y_length)
    v0 = np.fft.rfft2(problem.u0(*np.meshgrid(gx, gy, indexing="ij"))).reshape(1, -1)

    def solve(times: np.ndarray) -> np.ndarray:
        run = functools.partial(_semilinear_run, v0, lin, k, mask, nonlinear, times, n=n, dims=2)
        out = _run_to_tolerance(run, n_steps, 1e-10)[0]
        if not np.all(np.isfinite(out)):
            raise ValueError(f"the spectral solve of {problem.name} became non-finite (n_steps={n_steps} too few?)")
        return out

    return _reference_on(t, x, solve, problem.u0, x_min=problem.x_min, length=problem.length, y=y,
                         y_min=problem.y_min, y_length=problem.y_length)


@functools.lru_cache(maxsize=16)
def _pde_terms_2d(problem: Any, n: int) -> tuple[np.ndarray, Nonlinear, np.ndarray, np.ndarray]:
    """(L, N, k, mask) of a periodic PDE 2-D in space on an n x n grid, all on the rfft2 modes
    (n, n/2 + 1) flattened: L = linear(kx, ky, **coeffs); k = (kx, ky) stacked (2, modes); the
    2/3 mask in both directions; N(v, k) from ``nonlinear`` (u and its x- and y-derivatives by
    name, spectral: d/dx <-> i kx, d/dy <-> i ky). Cached per (problem, n): one compiled program."""
    from pdes.problems import equation_signature, parse_derivative

    coeffs = problem.coefficients()
    mx = np.fft.fftfreq(n, 1.0 / n)  # x: the full-fft axis; y: the rfft axis
    kx, ky = np.meshgrid(2 * math.pi * mx / problem.length, wavenumbers(n, problem.y_length), indexing="ij")
    mask = ((3 * np.abs(mx) < n)[:, None] * dealias_mask(n)[None, :]).ravel()  # the 2/3 rule along x and y
    lin = _linear_symbol(problem.linear(kx, ky, **_keyword(problem.linear, coeffs)), kx).ravel()
    k = np.stack([kx.ravel(), ky.ravel()])
    if problem.nonlinear is None:
        return lin, lambda v, k: jnp.zeros_like(v), k, mask
    names, _ = equation_signature(problem.nonlinear)
    orders = [parse_derivative(name)[1:] for name in names]
    kw = _keyword(problem.nonlinear, coeffs)

    def nonlinear(v: jax.Array, k: jax.Array) -> jax.Array:
        ikx, iky = 1j * k[0], 1j * k[1]
        fields = [jnp.fft.irfft2((v * ikx**a * iky**b).reshape(n, n // 2 + 1), s=(n, n)) for a, b in orders]
        return jnp.fft.rfft2(problem.nonlinear(*fields, **kw)).ravel()

    return lin, nonlinear, k, mask


def _keyword(fn: Callable[..., Any], coeffs: dict[str, float]) -> dict[str, float]:
    """The coefficients ``fn`` takes as keyword-only parameters."""
    from pdes.problems import equation_signature

    try:
        wanted = equation_signature(fn)[1]
    except ValueError:  # a symbol L(k, *, ...) has k, not a derivative, as its positional parameter
        import inspect

        wanted = {p.name: None for p in inspect.signature(fn).parameters.values() if p.kind == p.KEYWORD_ONLY}
    return {k: v for k, v in coeffs.items() if k in wanted}


def pde_reference(problem: Any, t: Any, x: Any, *, y: Any = None, n_points: int | None = None,
                  n_steps: int | None = None) -> np.ndarray:
    """The spectral reference of a periodic ``pdes.PDE`` with its linear part stated (``linear``,
    and ``nonlinear``) on any times t (nt,) >= 0 and points x (nx,): (nt, nx) float64; for a PDE
    2-D in space on t x x x y, (nt, nx, ny): ETDRK4 on an n x n periodic grid (n = ``n_points``,
    default 128; ``linear(kx, ky, **coeffs)``, ``nonlinear`` of u and its x- and y-derivatives),
    the 2/3 rule in both directions.

    The Allen-Cahn and KdV presets use ``allen_cahn_reference`` / ``kdv_reference`` (the former
    starts from the exact Fourier series of its kinked initial data); any other PDE runs
    ``solve_periodic_semilinear`` from its initial data sampled on ``n_points`` (default 1024)
    points, with ``n_steps`` ETDRK4 steps (default: doubled until two runs agree to ~1e-10)."""
    from pdes.problems import ALLEN_CAHN, KDV

    if problem.boundary.kind != "periodic" or problem.linear is None:
        raise ValueError(f"{problem.name}: the spectral path needs a periodic problem with its linear part stated "
                         "(PDE(..., boundary=PERIODIC, linear=L(k), nonlinear=N(u, u_x, ...)))")
    kw = {k: v for k, v in (("n_points", n_points), ("n_steps", n_steps)) if v is not None}
    problem.coords(x, y)  # x, or x and y, as the problem's dimension needs
    if problem.dims == 2:
        return _pde_reference_2d(problem, t, x, y, n=int(kw.get("n_points", 128)), n_steps=kw.get("n_steps"))
    coeffs = problem.coefficients()
    if problem is ALLEN_CAHN or (problem.equation is ALLEN_CAHN.equation and problem.initial is ALLEN_CAHN.initial):
        return allen_cahn_reference(t, x, eps=coeffs["eps"], gamma=coeffs["gamma"], **kw)
    if problem is KDV or (problem.equation is KDV.equation and problem.initial is KDV.initial):
        return kdv_reference(t, x, delta=coeffs["delta"], **kw)
    n = int(kw.get("n_points", 1024))
    _check_reference_grid(n, kw.get("n_steps", 1))
    linear, nonlinear = _pde_terms(problem)
    grid = periodic_grid(n, x_min=problem.x_min, length=problem.length)
    u0 = problem.u0(grid)

    def solve(times: np.ndarray) -> np.ndarray:
        return solve_periodic_semilinear(u0, linear=linear, nonlinear=nonlinear, length=problem.length, t_save=times,
                                         n_steps=kw.get("n_steps"))

    return _reference_on(t, x, solve, problem.u0, x_min=problem.x_min, length=problem.length)
