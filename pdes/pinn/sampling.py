"""Collocation points, drawn fresh every step inside the compiled training chunk.

All samplers return points in the scaled square (t_hat, xi) in [0, 1]^2, shape (n,) each
(xi: (n, 2) for a problem 2-D in space, the cube [0, 1]^3).

* ``uniform``: i.i.d. uniform.
* ``sobol``: a fixed scrambled Sobol set shifted by a uniform random vector modulo 1 each
  step (Cranley-Patterson rotation), so every step sees a fresh low-discrepancy set.
* ``rad``: residual-based adaptive distribution (Wu, Zhu, Tan, Kartha & Lu 2023, CMAME 403):
  from a pool of candidates, points are chosen with probability ~ |r|^k / mean(|r|^k) + c.

For causal weighting the points are sorted by time, so that ``reshape(M, n // M)`` splits
them into M consecutive time slices with equal counts.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["rad_probabilities", "sample_from_pool", "sample_sobol", "sample_uniform", "sobol_base", "sort_by_time"]


def _split(pts: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(t_hat, xi) from points (n, 1 + d): xi (n,) for d = 1, (n, d) otherwise."""
    return pts[:, 0], (pts[:, 1] if pts.shape[1] == 2 else pts[:, 1:])


def sample_uniform(key: jax.Array, n: int, dtype, x_dims: int = 1) -> tuple[jax.Array, jax.Array]:
    """n uniform points: (t_hat, xi), t_hat (n,), xi (n,) or (n, x_dims)."""
    return _split(jax.random.uniform(key, (n, 1 + x_dims), dtype))


def sobol_base(n: int, seed: int = 0, dims: int = 2) -> np.ndarray:
    """A scrambled Sobol set of n points in [0, 1)^dims (n rounded up to a power of two, then cut)."""
    from scipy.stats import qmc

    m = int(np.ceil(np.log2(max(n, 2))))
    return qmc.Sobol(d=dims, scramble=True, seed=seed).random_base2(m)[:n]


def sample_sobol(key: jax.Array, base: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The Sobol set ``base`` (n, 1 + d) shifted by a random vector modulo 1."""
    shift = jax.random.uniform(key, (base.shape[1],), base.dtype)
    return _split(jnp.mod(base + shift[None, :], 1.0))


def rad_probabilities(r: jax.Array, k: float, c: float) -> jax.Array:
    """RAD sampling probabilities from residuals r (n,): |r|^k / mean(|r|^k) + c, normalised."""
    e = jnp.abs(r) ** k
    dens = e / jnp.maximum(jnp.mean(e), jnp.finfo(e.dtype).tiny) + c
    return dens / jnp.sum(dens)


def sample_from_pool(key: jax.Array, pool_t: jax.Array, pool_x: jax.Array, p: jax.Array,
                     n: int) -> tuple[jax.Array, jax.Array]:
    """n points drawn with replacement from the pool (pool_t, pool_x) with probabilities p."""
    idx = jax.random.choice(key, pool_t.shape[0], (n,), replace=True, p=p)
    return pool_t[idx], pool_x[idx]


def sort_by_time(t: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Points ordered by t (for causal time slices)."""
    order = jnp.argsort(t)
    return t[order], x[order]
