"""Darcy flow on the unit square: the FNO paper's 2D steady benchmark (Li et al. 2021, section 5.2).

The problem::

    -div(a(x) grad u(x)) = f    on (0, 1)^2,      u = 0 on the boundary,      f = 1,

with a piecewise-constant coefficient a = 12 where a Gaussian random field
g ~ N(0, (-Laplacian + 9 I)^-2) is >= 0 and a = 3 where it is < 0. The Laplacian of the
covariance has zero Neumann boundary conditions on (0, 1)^2, so g is a cosine series
(Karhunen-Loeve expansion in the orthonormal eigenfunctions of that Laplacian)::

    g(x, y) = sum_{k, l >= 0, (k, l) != (0, 0)} (pi^2 (k^2 + l^2) + tau^2)^(-alpha/2) xi_kl
              c_k c_l cos(k pi x) cos(l pi y),      c_0 = 1, c_k = sqrt(2) (k >= 1),

with tau = 3, alpha = 2, independent standard normals xi_kl and the (0, 0) mode left out
(a zero-mean field, as in the paper's sampler). Only the sign of g matters, so its overall
scale is irrelevant. The series is truncated at k, l < ``modes`` (default 256) -- a fixed
number that does **not** depend on the grid, so g is one function evaluated wherever it is
asked for: on any grid, the field at a node is the same function value (the left-out tail has
a standard deviation of 0.33 % of the field's, so it moves the interface by a fraction of a
cell at 421 points). The paper's own sampler keeps as many modes as its 421-point grid has.

**Seeding, per sample.** Sample i of a set with seed s draws its xi from
``np.random.default_rng([s, i])``, and nothing else does. A sample is therefore the same
function whatever the grid, the number of samples, the chunk size or the train/test split:
a test set generated at 141 or 211 points holds the same coefficient functions as one at
85 points for the same seed and sample indices; with the same fine (solver) grid -- 421 by
default for all three -- it holds the same solutions too, subsampled by striding.

**Discretisation.** Second-order finite differences on the node grid x_i = i h,
i = 0 .. n - 1, h = 1 / (n - 1) (boundary nodes included, where u = 0), with harmonic-mean
face coefficients a_{i+1/2,j} = 2 a_ij a_{i+1,j} / (a_ij + a_{i+1,j})::

    (A u)_ij = [a_{i+1/2,j} (u_ij - u_{i+1,j}) + a_{i-1/2,j} (u_ij - u_{i-1,j})
              + a_{i,j+1/2} (u_ij - u_{i,j+1}) + a_{i,j-1/2} (u_ij - u_{i,j-1})] / h^2 = f_ij

on the (n - 2)^2 interior nodes. A is symmetric positive definite. For a smooth a the error
is O(h^2) (measured in ``tests/test_darcy.py``); across the jumps of the paper's
coefficient it is lower order, which is why the data are solved on a finer grid than they
are stored on (``operators.data``: 421 points, subsampled to 85, 141 or 211).

**Solver.** ``solve_darcy`` runs preconditioned conjugate gradients on a whole batch at
once (numpy arrays (B, n - 2, n - 2); each sample has its own step sizes), preconditioned
by the constant-coefficient 5-point Laplacian, which is inverted exactly by two type-I
discrete sine transforms (``scipy.fft.dstn``). Since min(a) L <= A <= max(a) L (every face
coefficient is a harmonic mean of node values), the preconditioned condition number is at
most max(a) / min(a) = 4 on every grid, so CG needs a grid-independent ~25 iterations for a
relative residual of 1e-10 (bound: sqrt(kappa) / 2 ln(2 / tol) = 23.7). ``method="splu"``
is the sparse LU reference (SuperLU, one sample at a time). Timings of the alternatives
(SuperLU, algebraic multigrid, the same PCG in JAX) are in ``benchmarks/darcy_solver.py``
and ``benchmarks/results/fno.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "DARCY",
    "DarcyFlow",
    "darcy_coefficient",
    "darcy_matrix",
    "darcy_operator",
    "darcy_pcg",
    "default_fine_nx",
    "face_coefficients",
    "neumann_grf",
    "solve_darcy",
]

PAPER_FINE_NX = 421  # the FNO paper's solver grid; 85, 141, 211 are strides 5, 3, 2 of it


def _positive(name: str, value: Any) -> float:
    if not (isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class DarcyFlow:
    """-div(a grad u) = f on (0, 1)^2, u = 0 on the boundary; a = a_pos where the Neumann GRF
    N(0, (-Laplacian + grf_tau^2 I)^-grf_alpha) (cosine series, k, l < grf_modes) is >= 0 and
    a_neg elsewhere. Defaults: the FNO paper's (a = 12 / 3, f = 1, tau = 3, alpha = 2)."""

    f: float = 1.0
    a_pos: float = 12.0
    a_neg: float = 3.0
    grf_tau: float = 3.0
    grf_alpha: float = 2.0
    grf_modes: int = 256

    def __post_init__(self) -> None:
        if not (isinstance(self.f, int | float) and math.isfinite(self.f)):
            raise ValueError(f"f must be a finite number, got {self.f!r}")
        for name in ("a_pos", "a_neg", "grf_tau", "grf_alpha"):
            _positive(name, getattr(self, name))
        if not (isinstance(self.grf_modes, int) and self.grf_modes >= 2):
            raise ValueError(f"grf_modes must be an integer >= 2, got {self.grf_modes!r}")

    def params(self) -> dict[str, Any]:
        """The parameters a dataset records (JSON-ready)."""
        return {"f": float(self.f), "a_pos": float(self.a_pos), "a_neg": float(self.a_neg),
                "grf": {"tau": float(self.grf_tau), "alpha": float(self.grf_alpha), "modes": self.grf_modes,
                        "covariance": "(-Laplacian + tau^2 I)^-alpha, zero Neumann, cosine series, zero mean",
                        "threshold": "a = a_pos where g >= 0, else a_neg"},
                "domain": "(0, 1)^2", "boundary": "u = 0",
                "scheme": "5-point finite differences on nodes x_i = i / (n - 1), harmonic-mean faces"}


DARCY = DarcyFlow()


def default_fine_nx(nx: int) -> int:
    """The solver grid for a stored grid of ``nx`` nodes per axis: 421 (the paper's) when
    (421 - 1) = r (nx - 1) with r >= 2, else the smallest such grid, r = 2: 2 nx - 1."""
    if not (isinstance(nx, int | np.integer) and nx >= 3):
        raise ValueError(f"nx must be an integer >= 3, got {nx!r}")
    if (PAPER_FINE_NX - 1) % (nx - 1) == 0 and (PAPER_FINE_NX - 1) // (nx - 1) >= 2:
        return PAPER_FINE_NX
    return 2 * int(nx) - 1


# ----------------------------------------------------------------------------- coefficient field


def neumann_grf(
    seed: int, indices: Sequence[int], x: np.ndarray, *, tau: float = 3.0, alpha: float = 2.0, modes: int = 256,
) -> np.ndarray:
    """Samples of the zero-Neumann GRF g of the module doc at the nodes x (each axis).

    seed: a non-negative integer; indices: the sample numbers i (sample i uses
    ``np.random.default_rng([seed, i])``); x: (n,) node coordinates in [0, 1].
    Returns float64 (len(indices), n, n), axis 1 is x and axis 2 is y.
    """
    if not (isinstance(seed, int | np.integer) and seed >= 0):
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    idx = [int(i) for i in indices]
    if any(i < 0 for i in idx):
        raise ValueError(f"sample indices must be non-negative, got {min(idx)}")
    tau, alpha = _positive("tau", tau), _positive("alpha", alpha)
    if not (isinstance(modes, int | np.integer) and modes >= 2):
        raise ValueError(f"modes must be an integer >= 2, got {modes!r}")
    x = np.asarray(x, np.float64)
    k = np.arange(modes)
    basis = np.where(k == 0, 1.0, math.sqrt(2.0)) * np.cos(math.pi * np.outer(x, k))  # (n, modes)
    std = (math.pi**2 * (k[:, None] ** 2 + k[None, :] ** 2) + tau**2) ** (-alpha / 2)
    std[0, 0] = 0.0  # zero mean
    out = np.empty((len(idx), x.size, x.size))
    for b, i in enumerate(idx):
        xi = np.random.default_rng([int(seed), i]).standard_normal((modes, modes))
        out[b] = basis @ (std * xi) @ basis.T
    return out


def darcy_coefficient(seed: int, indices: Sequence[int], x: np.ndarray, problem: DarcyFlow = DARCY) -> np.ndarray:
    """The coefficient a = a_pos where g >= 0 else a_neg, g = ``neumann_grf``: (len(indices), n, n)."""
    g = neumann_grf(seed, indices, x, tau=problem.grf_tau, alpha=problem.grf_alpha, modes=problem.grf_modes)
    return np.where(g >= 0, problem.a_pos, problem.a_neg)


# ----------------------------------------------------------------------------- discretisation


def _check_a(a: Any) -> np.ndarray:
    a = np.asarray(a, np.float64)
    if a.ndim not in (2, 3) or a.shape[-1] != a.shape[-2] or a.shape[-1] < 3:
        raise ValueError(f"a must be (n, n) or (batch, n, n) node values with n >= 3, got shape {a.shape}")
    if not (np.all(np.isfinite(a)) and np.all(a > 0)):
        raise ValueError("a must be positive and finite at every node")
    return a


def face_coefficients(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Harmonic means on the faces: a (B, n, n) -> ax (B, n - 1, n) with ax[:, i, j] =
    a_{i+1/2, j}, and ay (B, n, n - 1) with ay[:, i, j] = a_{i, j+1/2}."""
    ax = 2 * a[:, 1:, :] * a[:, :-1, :] / (a[:, 1:, :] + a[:, :-1, :])
    ay = 2 * a[:, :, 1:] * a[:, :, :-1] / (a[:, :, 1:] + a[:, :, :-1])
    return ax, ay


def darcy_operator(ax: np.ndarray, ay: np.ndarray, u: np.ndarray, h: float) -> np.ndarray:
    """(A u) on the interior nodes: u (B, n - 2, n - 2) interior values (zero on the
    boundary), ax, ay from ``face_coefficients``; returns (B, n - 2, n - 2)."""
    full = np.pad(u, ((0, 0), (1, 1), (1, 1)))
    fx = ax * np.diff(full, axis=1)  # a_{i+1/2,j} (u_{i+1,j} - u_ij): (B, n - 1, n)
    fy = ay * np.diff(full, axis=2)
    return -(np.diff(fx, axis=1)[:, :, 1:-1] + np.diff(fy, axis=2)[:, 1:-1, :]) / h**2


def darcy_matrix(a: np.ndarray) -> Any:
    """The sparse (CSC) matrix A of the module doc for one coefficient a: (n, n) node values;
    unknowns are the interior nodes in C order (x index major): shape ((n - 2)^2,) * 2."""
    import scipy.sparse as sp

    a = _check_a(a)
    if a.ndim != 2:
        raise ValueError(f"darcy_matrix takes one coefficient (n, n), got shape {a.shape}")
    n = a.shape[0]
    m, h2 = n - 2, (1.0 / (n - 1)) ** 2
    ax, ay = (c[0] for c in face_coefficients(a[None]))
    diag = (ax[:-1, 1:-1] + ax[1:, 1:-1] + ay[1:-1, :-1] + ay[1:-1, 1:]) / h2
    off_x = -ax[1:-1, 1:-1] / h2  # between interior (i, j) and (i + 1, j): (m - 1, m)
    off_y = np.zeros((m, m))
    off_y[:, :-1] = -ay[1:-1, 1:-1] / h2  # between (i, j) and (i, j + 1); none across rows
    off_y = off_y.ravel()[:-1]
    return sp.diags([diag.ravel(), off_x.ravel(), off_x.ravel(), off_y, off_y], [0, m, -m, 1, -1], format="csc")


def _laplacian_eigenvalues(m: int, h: float) -> np.ndarray:
    s = np.sin(np.arange(1, m + 1) * math.pi / (2 * (m + 1))) ** 2
    return 4.0 / h**2 * (s[:, None] + s[None, :])


def darcy_pcg(
    ax: np.ndarray, ay: np.ndarray, rhs: np.ndarray, h: float, *, tol: float = 1e-10, maxiter: int | None = None,
    workers: int | None = None,
) -> tuple[np.ndarray, int, np.ndarray]:
    """Batched CG for A u = rhs, preconditioned by the unit-coefficient Laplacian (two DST-Is).

    ax, ay: face coefficients (B, n - 1, n), (B, n, n - 1); rhs: (B, n - 2, n - 2).
    Stops when every sample's ||r||_2 / ||rhs||_2 <= tol. maxiter default: twice the
    CG bound sqrt(kappa) / 2 ln(2 / tol) for kappa = max(a) / min(a), plus 10.
    Returns (u interior (B, n - 2, n - 2), iterations, relative residuals (B,)).
    """
    from scipy.fft import dstn

    m = rhs.shape[1]
    kappa = max(float(ax.max()), float(ay.max())) / min(float(ax.min()), float(ay.min()))
    if maxiter is None:
        maxiter = int(2 * math.ceil(math.sqrt(kappa) / 2 * math.log(2 / tol))) + 10
    inv_eig = 1.0 / _laplacian_eigenvalues(m, h)

    def precondition(r: np.ndarray) -> np.ndarray:
        # The orthonormal DST-I is its own inverse, so L^-1 = S diag(1 / lambda) S.
        return dstn(dstn(r, type=1, axes=(1, 2), norm="ortho", workers=workers) * inv_eig,
                    type=1, axes=(1, 2), norm="ortho", workers=workers)

    def dot(p: np.ndarray, q: np.ndarray) -> np.ndarray:
        return np.einsum("bij,bij->b", p, q)

    def safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        ok = den > 0
        return np.where(ok, num / np.where(ok, den, 1.0), 0.0)[:, None, None]

    norm_b = np.sqrt(dot(rhs, rhs))
    norm_b = np.where(norm_b > 0, norm_b, 1.0)
    u = np.zeros_like(rhs)
    r = rhs.copy()
    z = precondition(r)
    p = z
    rz = dot(r, z)
    res = np.sqrt(dot(r, r)) / norm_b
    it = 0
    while res.max() > tol and it < maxiter:
        ap = darcy_operator(ax, ay, p, h)
        alpha = safe_div(rz, dot(p, ap))
        u += alpha * p
        r -= alpha * ap
        res = np.sqrt(dot(r, r)) / norm_b
        it += 1
        z = precondition(r)
        rz_new = dot(r, z)
        p = z + safe_div(rz_new, rz) * p
        rz = rz_new
    if res.max() > tol:
        raise RuntimeError(f"Darcy PCG did not reach tol={tol:g} in {maxiter} iterations (residual {res.max():.2e})")
    return u, it, res


def solve_darcy(
    a: Any, f: Any = 1.0, *, method: str = "pcg", tol: float = 1e-10, workers: int | None = None,
) -> np.ndarray:
    """Solve -div(a grad u) = f, u = 0 on the boundary of (0, 1)^2, on the node grid of a.

    a: (n, n) or (B, n, n) positive node values on x_i = i / (n - 1); f: a number or node
    values broadcastable to a's shape (only the interior is used). method: "pcg" (batched,
    the default) or "splu" (sparse LU per sample, the reference). tol: PCG's relative
    residual. Returns u with a's shape, float64, zero on the boundary.
    """
    if method not in ("pcg", "splu"):
        raise ValueError(f"method must be 'pcg' or 'splu', got {method!r}")
    if not (isinstance(tol, float | int) and 0 < tol < 1):
        raise ValueError(f"tol must be in (0, 1), got {tol!r}")
    a = _check_a(a)
    single = a.ndim == 2
    a3 = a[None] if single else a
    try:
        f3 = np.broadcast_to(np.asarray(f, np.float64), a.shape)
    except ValueError:
        raise ValueError(f"f of shape {np.shape(f)} does not broadcast to a's shape {a.shape}") from None
    if not np.all(np.isfinite(f3)):
        raise ValueError("f must be finite")
    f3 = f3[None] if single else f3
    n = a3.shape[-1]
    h = 1.0 / (n - 1)
    rhs = np.ascontiguousarray(f3[:, 1:-1, 1:-1])
    if method == "pcg":
        ax, ay = face_coefficients(a3)
        inner, _, _ = darcy_pcg(ax, ay, rhs, h, tol=tol, workers=workers)
    else:
        from scipy.sparse.linalg import splu

        inner = np.stack([splu(darcy_matrix(ai)).solve(ri.ravel()).reshape(n - 2, n - 2)
                          for ai, ri in zip(a3, rhs, strict=True)])
    u = np.pad(inner, ((0, 0), (1, 1), (1, 1)))
    return u[0] if single else u
