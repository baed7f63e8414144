"""Linearized Laplace approximation over the last layer of an FNO (MacKay 1992; Immer et al. 2021).

Train one network to its weights theta* (as usual), then treat the parameters ``theta`` of its
last layer(s) as Gaussian around theta* and linearize the network in them::

    f(a; theta) ~ f(a; theta*) + J(a) (theta - theta*),     J = d f / d theta at theta*,

with a Gaussian likelihood of noise sigma^2 on every training point and an isotropic Gaussian
prior of precision delta. The posterior is N(theta*, Sigma) with the generalized Gauss-Newton
(GGN) precision

    Sigma^-1 = G / sigma^2 + delta I,     G = sum over training points of J^T J,

and the predictive of the function value at a new point is N(f(a; theta*), J Sigma J^T). For the
FNO's default layer, the output projection ``proj2`` (proj_hidden + 1 parameters), the network
is exactly linear in theta (u = u_std (phi . w + b) + u_mean, phi the last hidden features), so
the GGN is the exact Hessian and the linearization is exact: this is Bayesian linear
regression on the learned features phi. ``layers`` may name more of the model's parameter
groups (e.g. ``("proj1", "proj2")``), at the cost of a larger Jacobian (forward mode, one
tangent per parameter) and a P x P matrix.

**Fitted prior precision and noise** (``fit_glm_posterior``): MacKay's evidence fixed point
with theta* held at the trained weights (post hoc), on the eigenvalues lambda_i of G::

    gamma = sum_i g_i / (g_i + delta),  g_i = lambda_i / sigma^2   (effective parameters)
    delta = gamma / |theta*|^2,         sigma^2 = SSR / (N - gamma),

the stationary point of the Laplace log evidence
    log Z = -SSR / (2 sigma^2) - N/2 log(2 pi sigma^2) - delta/2 |theta*|^2 + P/2 log delta
            - 1/2 log det(G / sigma^2 + delta I)
in (delta, sigma^2) (``log_evidence``; tests check the gradient vanishes there).

``u_std_raw`` of a Laplace prediction is the std of the function value (sqrt of J Sigma J^T),
not of a new noisy observation: the targets are noise-free (spectral or finite-difference
references), so sigma^2 is a misfit proxy that only sets how much the data constrain theta;
what the model misses beyond theta's uncertainty is fitted on held-out functions by the
calibration map (``uncertainty.calibration``: its spread floor b).

Cost: one forward pass of the training set (Jacobians by forward mode, the trunk once), an
eigendecomposition of a P x P matrix, and per prediction one forward pass plus J Sigma J^T.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

__all__ = [
    "LaplacePosterior",
    "fit_glm_posterior",
    "fit_laplace",
    "laplace_predict",
    "last_layer_jacobian",
    "log_evidence",
]


@dataclass(frozen=True)
class LaplacePosterior:
    """N(theta*, covariance) over the flattened parameters of ``layers``. theta: (P,);
    covariance: (P, P) float64; prior_precision delta; noise_std sigma; n_data N;
    effective_params gamma; log_evidence at the fitted (delta, sigma^2)."""

    layers: tuple[str, ...]
    theta: np.ndarray
    covariance: np.ndarray
    prior_precision: float
    noise_std: float
    n_data: int
    effective_params: float
    log_evidence: float

    @property
    def n_params(self) -> int:
        return int(self.theta.size)

    def scalars(self) -> dict[str, Any]:
        return {"layers": list(self.layers), "prior_precision": self.prior_precision, "noise_std": self.noise_std,
                "n_data": self.n_data, "effective_params": self.effective_params, "log_evidence": self.log_evidence,
                "n_params": self.n_params}


def log_evidence(eig: np.ndarray, theta_sq: float, ssr: float, n: int, delta: float, sigma2: float) -> float:
    """Laplace log evidence (module doc) from the eigenvalues ``eig`` of G = sum J^T J."""
    p = eig.size
    return float(-ssr / (2 * sigma2) - 0.5 * n * math.log(2 * math.pi * sigma2) - 0.5 * delta * theta_sq
                 + 0.5 * p * math.log(delta) - 0.5 * np.sum(np.log(eig / sigma2 + delta)))


def fit_glm_posterior(
    gram: Any, theta: Any, ssr: float, n: int, *, max_iter: int = 10_000, tol: float = 1e-12
) -> tuple[np.ndarray, float, float, float, float]:
    """MacKay's fixed point for (delta, sigma^2) (module doc) and the posterior covariance.

    gram: G = sum J^T J, (P, P); theta: theta*, (P,); ssr: sum of squared training residuals
    over n points. Returns (covariance (P, P), delta, sigma^2, gamma, log evidence)."""
    g0 = np.asarray(gram, dtype=np.float64)
    th = np.asarray(theta, dtype=np.float64).ravel()
    if g0.shape != (th.size, th.size):
        raise ValueError(f"GGN has shape {g0.shape}, expected ({th.size}, {th.size})")
    theta_sq = float(th @ th)
    if not (theta_sq > 0 and ssr > 0 and n > th.size):
        raise ValueError(f"cannot fit the prior precision: |theta*|^2 = {theta_sq:g}, SSR = {ssr:g}, "
                         f"N = {n} points for {th.size} parameters")
    eig, vecs = np.linalg.eigh(0.5 * (g0 + g0.T))
    eig = np.clip(eig, 0.0, None)
    sigma2, delta = ssr / n, 1.0
    for _ in range(max_iter):
        g = eig / sigma2
        gamma = float(np.sum(g / (g + delta)))
        new_delta, new_sigma2 = gamma / theta_sq, ssr / (n - gamma)
        done = abs(new_delta - delta) <= tol * new_delta and abs(new_sigma2 - sigma2) <= tol * new_sigma2
        delta, sigma2 = new_delta, new_sigma2
        if done:
            break
    gamma = float(np.sum((eig / sigma2) / (eig / sigma2 + delta)))
    cov = (vecs / (eig / sigma2 + delta)) @ vecs.T
    return cov, delta, sigma2, gamma, log_evidence(eig, theta_sq, ssr, n, delta, sigma2)


def _select(params: Any, layers: tuple[str, ...]) -> dict[str, Any]:
    missing = [name for name in layers if name not in params]
    if missing:
        raise ValueError(f"the model has no parameter group {missing[0]!r} (it has {sorted(params)})")
    return {name: params[name] for name in layers}


def last_layer_jacobian(apply: Callable, params: Any, layers: tuple[str, ...] = ("proj2",)) -> tuple[
        Callable[[jax.Array], tuple[jax.Array, jax.Array]], np.ndarray]:
    """(fn, theta*): ``fn(a) -> (f(a; theta*) (b, *grid), J (b, *grid, P))`` with the parameters
    of ``layers`` flattened into theta (``ravel_pytree`` order); the rest stay fixed, so forward
    mode differentiates only from those layers on."""
    sub = _select(params, layers)
    theta, unravel = ravel_pytree(sub)

    def f(th: jax.Array, a: jax.Array) -> jax.Array:
        p = dict(params)
        p.update(unravel(th))
        return apply(type(params)(p) if not isinstance(params, dict) else p, a)

    def fn(a: jax.Array) -> tuple[jax.Array, jax.Array]:
        out = f(theta, a)
        jac = jax.jacfwd(f)(theta, a)
        return out, jac

    return jax.jit(fn), np.asarray(theta, dtype=np.float64)


def _batches(a: np.ndarray, batch_size: int):
    for i in range(0, a.shape[0], batch_size):
        yield i, jnp.asarray(a[i:i + batch_size], jnp.float32)


def fit_laplace(
    apply: Callable, params: Any, a_train: np.ndarray, u_train: np.ndarray, *,
    layers: tuple[str, ...] = ("proj2",), batch_size: int = 32,
) -> LaplacePosterior:
    """GGN, fitted prior precision and noise, and the posterior over ``layers`` (module doc).
    a_train, u_train: (n, *grid); every grid point of every function is one data point."""
    fn, theta = last_layer_jacobian(apply, params, tuple(layers))
    p = theta.size
    gram = np.zeros((p, p))
    ssr, n = 0.0, 0
    for i, a in _batches(np.asarray(a_train), batch_size):
        out, jac = fn(a)
        jm = np.asarray(jac, dtype=np.float64).reshape(-1, p)
        gram += jm.T @ jm
        r = np.asarray(out, np.float64) - np.asarray(u_train[i:i + a.shape[0]], np.float64)
        ssr += float(np.sum(r**2))
        n += r.size
    cov, delta, sigma2, gamma, evidence = fit_glm_posterior(gram, theta, ssr, n)
    return LaplacePosterior(tuple(layers), theta, cov, float(delta), math.sqrt(sigma2), n, gamma, evidence)


def laplace_predict(
    apply: Callable, params: Any, post: LaplacePosterior, a: np.ndarray, *, draws: int = 0,
    key: jax.Array | None = None, batch_size: int = 32, jacobian: Any = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(mean, std, samples) for inputs a (n, *grid): mean f(a; theta*), std sqrt(diag J Sigma J^T)
    (float64, (n, *grid)), and ``draws`` samples of the linearized model, (draws, n, *grid)
    (None for draws = 0): f + J (L eps), Sigma = L L^T, eps ~ N(0, I) (one eps per draw, shared
    by every function, as one network of the posterior would be). ``jacobian``: the
    ``last_layer_jacobian(apply, params, post.layers)`` pair, if the caller keeps it compiled."""
    fn, theta = jacobian if jacobian is not None else last_layer_jacobian(apply, params, post.layers)
    if theta.size != post.n_params:
        raise ValueError(f"the posterior has {post.n_params} parameters but the model's layers {post.layers} "
                         f"have {theta.size}")
    cov = post.covariance
    chol = np.linalg.cholesky(0.5 * (cov + cov.T) + 1e-12 * np.trace(cov) / cov.shape[0] * np.eye(cov.shape[0]))
    eps = None
    if draws:
        if key is None:
            raise ValueError("laplace_predict needs a key for draws > 0")
        eps = np.asarray(jax.random.normal(key, (draws, theta.size)), np.float64) @ chol.T  # (draws, P)
    means, stds, samples = [], [], []
    for _, batch in _batches(np.asarray(a), batch_size):
        out, jac = fn(batch)
        out = np.asarray(out, np.float64)
        jm = np.asarray(jac, np.float64)
        var = np.sum((jm @ cov) * jm, axis=-1)
        means.append(out)
        stds.append(np.sqrt(np.clip(var, 0.0, None)))
        if eps is not None:
            samples.append(out[None] + np.moveaxis(jm @ eps.T, -1, 0))
    mean, std = np.concatenate(means), np.concatenate(stds)
    return mean, std, (np.concatenate(samples, axis=1) if eps is not None else None)
