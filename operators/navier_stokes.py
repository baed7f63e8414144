"""2D incompressible Navier-Stokes in vorticity form on the unit torus, pseudo-spectral.

    w_t + u . grad w = nu Laplacian w + f,   u = (psi_y, -psi_x),   -Laplacian psi = w,

on [0, 1)^2, periodic, with the FNO paper's forcing f = 0.1 (sin 2 pi (x + y) + cos 2 pi (x + y))
(Li et al. 2021, section 5.3). Space: Fourier with the 2/3 dealiasing rule on the products.
Time: ETDRK4 (Cox & Matthews 2002; coefficients by Kassam & Trefethen's contour integral,
``pdes.spectral``), exact for the diffusion, fourth order for the advection and forcing
(the FNO paper used Crank-Nicolson + Heun at dt = 1e-4 on 256^2; ETDRK4 allows steps
limited by the advective CFL number instead). Everything runs in float64, batched with
``vmap`` over initial vorticities.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from pdes.spectral import ETDRK4Coeffs, coefficient_table, etdrk4_step

__all__ = ["fno_forcing", "solve_navier_stokes"]


def fno_forcing(n: int) -> np.ndarray:
    """f(x, y) = 0.1 (sin 2 pi (x + y) + cos 2 pi (x + y)) on the n x n grid x_i = i / n. (n, n)."""
    x = np.arange(n) / n
    s = 2 * math.pi * (x[:, None] + x[None, :])
    return 0.1 * (np.sin(s) + np.cos(s))


def _nonlinear(w_hat: jax.Array, f_hat: jax.Array, kx: jax.Array, ky: jax.Array, inv_lap: jax.Array,
               mask: jax.Array, n: int) -> jax.Array:
    """N(w) = -(u . grad w) + f in Fourier space (rfft2 layout (n, n//2 + 1)), dealiased."""
    psi_hat = w_hat * inv_lap  # -Laplacian psi = w  ->  psi_hat = w_hat / |k|^2
    u = jnp.fft.irfft2(1j * ky * psi_hat, s=(n, n))
    v = jnp.fft.irfft2(-1j * kx * psi_hat, s=(n, n))
    wx = jnp.fft.irfft2(1j * kx * w_hat, s=(n, n))
    wy = jnp.fft.irfft2(1j * ky * w_hat, s=(n, n))
    return -mask * jnp.fft.rfft2(u * wx + v * wy) + f_hat


@functools.partial(jax.jit, static_argnames=("n", "counts"))
def _trajectories(w0: jax.Array, coeffs: ETDRK4Coeffs, f_hat, kx, ky, inv_lap, mask, n: int,
                  counts: tuple[int, ...]) -> jax.Array:
    nonlinear = functools.partial(_nonlinear, f_hat=f_hat, kx=kx, ky=ky, inv_lap=inv_lap, mask=mask, n=n)

    def one(w0_single):
        v = jnp.fft.rfft2(w0_single)
        outs = []
        for i, c in enumerate(counts):
            ci = ETDRK4Coeffs(*(getattr(coeffs, f)[i] for f in ETDRK4Coeffs._fields))
            v = jax.lax.fori_loop(0, c, lambda _, vv, ci=ci: etdrk4_step(vv, ci, nonlinear), v)
            outs.append(jnp.fft.irfft2(v, s=(n, n)))
        return jnp.stack(outs)

    return jax.vmap(one)(w0)


def solve_navier_stokes(
    w0: Any,
    *,
    nu: float = 1e-3,
    t_save: Any = (10.0,),
    dt: float | None = None,
    forcing: np.ndarray | None = None,
) -> np.ndarray:
    """Vorticity at the times t_save from initial vorticities w0: (B, n, n) on x_i = i / n.

    nu: viscosity. dt: ETDRK4 step (default: CFL number max|u| dt / dx = 1 from the initial velocity
    (at least 1),
    capped at 0.05, adjusted so each save interval holds whole steps). forcing: (n, n)
    (default ``fno_forcing``). Returns (B, len(t_save), n, n) float64.
    """
    if not (isinstance(nu, int | float) and math.isfinite(nu) and nu > 0):
        raise ValueError(f"nu must be a positive finite number, got {nu!r}")
    w0 = np.asarray(w0, dtype=np.float64)
    if w0.ndim != 3 or w0.shape[1] != w0.shape[2] or w0.shape[1] < 8:
        raise ValueError(f"w0 must have shape (B, n, n) with n >= 8, got {w0.shape}")
    if not np.all(np.isfinite(w0)):
        raise ValueError("w0 has non-finite values")
    t = np.atleast_1d(np.asarray(t_save, dtype=np.float64))
    if t.ndim != 1 or t.size == 0 or np.any(t <= 0) or np.any(np.diff(t) <= 0):
        raise ValueError(f"t_save must be positive increasing times, got {t_save!r}")
    n = w0.shape[1]
    f = fno_forcing(n) if forcing is None else np.asarray(forcing, dtype=np.float64)
    if f.shape != (n, n):
        raise ValueError(f"forcing has shape {f.shape}, expected {(n, n)}")
    k1 = 2 * math.pi * np.fft.fftfreq(n, 1.0 / n)
    k2 = 2 * math.pi * np.fft.rfftfreq(n, 1.0 / n)
    kx, ky = np.meshgrid(k1, k2, indexing="ij")  # (n, n//2 + 1)
    lap = kx**2 + ky**2
    inv_lap = np.where(lap > 0, 1.0 / np.where(lap > 0, lap, 1.0), 0.0)
    m1 = np.abs(np.fft.fftfreq(n, 1.0 / n)) < n / 3
    m2 = np.fft.rfftfreq(n, 1.0 / n) < n / 3
    mask = (m1[:, None] & m2[None, :]).astype(np.float64)
    if dt is None:
        # Initial speed from the stream function; the forcing adds O(0.1 t) later.
        w_hat = np.fft.rfft2(w0)
        speed = np.max(np.hypot(np.fft.irfft2(1j * ky * w_hat * inv_lap, s=(n, n)),
                                np.fft.irfft2(-1j * kx * w_hat * inv_lap, s=(n, n))))
        dt = min(0.05, 1.0 / (max(speed, 1.0) * n))
    if not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be positive, got {dt!r}")
    starts = np.concatenate([[0.0], t[:-1]])
    gaps = t - starts
    counts = tuple(int(max(1, math.ceil(g / dt - 1e-9))) for g in gaps)
    lin = (-nu * lap).ravel()
    table, which = coefficient_table(lin, np.asarray(gaps) / np.asarray(counts))
    coeffs = ETDRK4Coeffs(*(a[which].reshape(len(counts), n, n // 2 + 1) for a in table))
    with jax.enable_x64(True):
        out = _trajectories(jnp.asarray(w0), jax.tree.map(jnp.asarray, coeffs), jnp.asarray(np.fft.rfft2(f)),
                            jnp.asarray(kx), jnp.asarray(ky), jnp.asarray(inv_lap), jnp.asarray(mask), n, counts)
        out = np.asarray(out)
    if not np.all(np.isfinite(out)):
        raise RuntimeError(f"Navier-Stokes solve blew up with dt={dt:g}: pass a smaller dt")
    return out
