"""Periodic Gaussian random fields N(0, sigma^2 (-Laplacian + tau^2 I)^-alpha).

On the periodic box [0, L)^d the covariance operator C = sigma^2 (-Laplacian + tau^2 I)^-alpha
is diagonal in the Fourier basis e_k(x) = exp(2 pi i k.x / L) / L^(d/2) with eigenvalues

    lambda_k = sigma^2 ((2 pi |k| / L)^2 + tau^2)^-alpha,

so a sample is the Karhunen-Loeve sum u(x) = sum_k sqrt(lambda_k) xi_k e_k(x) with
independent standard Gaussians xi_k. A real field with exactly this covariance is
Re(sum_k sqrt(lambda_k) (xi_k + i eta_k) e_k(x)) over all k (positive and negative), because
Re(z e^{i theta}) with z complex standard normal has E[..] = cos of the phase difference.

The FNO paper's Burgers inputs are sigma = 25, tau = 5, alpha = 2, i.e.
N(0, 625 (-Laplacian + 25 I)^-2); its Navier-Stokes initial vorticity is sigma = 7^1.5,
tau = 7, alpha = 2.5 (Li et al. 2021, sections 5.1 and 5.3). Like the paper's sampler,
the k = 0 mode is left out by default (mean-zero fields).

Sampling is on an n-point grid x_j = j L / n, keeping every frequency the grid resolves
(|k_i| <= n/2); a field sampled on a fine grid and subsampled by striding is the same
function evaluated on the coarser grid, which is how ``operators.data`` builds
multi-resolution sets.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["grf_eigenvalues", "sample_grf"]


def _check(name: str, value: float) -> float:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def grf_eigenvalues(
    n: int, *, dim: int = 1, alpha: float = 2.0, tau: float = 5.0, sigma: float = 25.0, length: float = 1.0,
    zero_mean: bool = True,
) -> np.ndarray:
    """Eigenvalues lambda_k on the full FFT frequency grid: shape (n,) * dim, numpy fft order."""
    if not (isinstance(n, int | np.integer) and n >= 2):
        raise ValueError(f"grid size must be an integer >= 2, got {n!r}")
    if dim not in (1, 2):
        raise ValueError(f"dim must be 1 or 2, got {dim!r}")
    alpha, tau, sigma, length = (_check(k, v) for k, v in
                                 (("alpha", alpha), ("tau", tau), ("sigma", sigma), ("length", length)))
    k = np.fft.fftfreq(n, d=1.0 / n)  # integers 0, 1, .., -1
    k2 = sum(np.meshgrid(*([k**2] * dim), indexing="ij"))
    lam = sigma**2 * ((2 * math.pi / length) ** 2 * k2 + tau**2) ** (-alpha)
    if zero_mean:
        lam[(0,) * dim] = 0.0
    return lam


def sample_grf(
    rng: np.random.Generator,
    n_samples: int,
    n: int,
    *,
    dim: int = 1,
    alpha: float = 2.0,
    tau: float = 5.0,
    sigma: float = 25.0,
    length: float = 1.0,
    zero_mean: bool = True,
) -> np.ndarray:
    """Samples of the periodic GRF on the grid x_j = j L / n (each axis).

    Returns float64 of shape (n_samples, n) for dim = 1 or (n_samples, n, n) for dim = 2.
    """
    if not (isinstance(n_samples, int | np.integer) and n_samples >= 0):
        raise ValueError(f"n_samples must be a non-negative integer, got {n_samples!r}")
    lam = grf_eigenvalues(n, dim=dim, alpha=alpha, tau=tau, sigma=sigma, length=length, zero_mean=zero_mean)
    shape = (int(n_samples),) + (n,) * dim
    xi = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    coef = np.sqrt(lam) * xi / length ** (dim / 2)
    axes = tuple(range(1, dim + 1))
    # ifftn with norm="forward" is the plain sum sum_k c_k exp(2 pi i k j / n).
    return np.fft.ifftn(coef, axes=axes, norm="forward").real
