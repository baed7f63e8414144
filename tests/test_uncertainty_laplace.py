"""Linearized Laplace: closed forms on a linear model, the FNO's last layer, save and load."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from uncertainty.laplace import fit_glm_posterior, fit_laplace, laplace_predict, log_evidence


def linear_problem(seed: int = 0, n_fun: int = 30, m: int = 8, p: int = 5, noise: float = 0.3):
    """Inputs a: (n_fun, m, p) features; u = a . w_true + noise. The 'model' is apply(params, a)
    = a @ params['lin']['w'], linear in its one layer, so Laplace is Bayesian linear regression."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n_fun, m, p)).astype(np.float32)
    w_true = rng.standard_normal(p)
    u = (a.astype(np.float64) @ w_true + noise * rng.standard_normal((n_fun, m))).astype(np.float32)
    return a, u


def apply_linear(params, a):
    return a @ params["lin"]["w"]


def test_predictive_variance_equals_bayesian_linear_regression():
    a, u = linear_problem()
    x = a.reshape(-1, a.shape[-1]).astype(np.float64)
    w_ls = np.linalg.lstsq(x, u.reshape(-1).astype(np.float64), rcond=None)[0]
    params = {"lin": {"w": jnp.asarray(w_ls, jnp.float32)}}
    post = fit_laplace(apply_linear, params, a, u, layers=("lin",))
    sigma2, delta = post.noise_std**2, post.prior_precision
    cov = np.linalg.inv(x.T @ x / sigma2 + delta * np.eye(x.shape[1]))  # closed form, same (delta, sigma^2)
    np.testing.assert_allclose(post.covariance, cov, rtol=1e-9)
    a_new, _ = linear_problem(seed=1, n_fun=4)
    mean, std, samples = laplace_predict(apply_linear, params, post, a_new, draws=4000, key=jax.random.key(0))
    xn = a_new.astype(np.float64)
    want = np.einsum("fmp,pq,fmq->fm", xn, cov, xn)
    np.testing.assert_allclose(std**2, want, rtol=1e-9)  # float64 algebra on float32-exact features
    np.testing.assert_allclose(mean, xn @ w_ls, rtol=1e-5, atol=1e-5)  # the float32 forward pass
    # 4000 posterior draws: the sample variance is within 4 standard errors (sqrt(2 / 4000) = 2.2%)
    np.testing.assert_allclose(samples.var(axis=0), want, rtol=0.09)


def test_fitted_prior_and_noise_are_the_stationary_point_of_the_evidence():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((200, 6))
    y = x @ rng.standard_normal(6) + 0.5 * rng.standard_normal(200)
    theta = np.linalg.lstsq(x, y, rcond=None)[0]
    ssr = float(np.sum((x @ theta - y) ** 2))
    _, delta, sigma2, gamma, ev = fit_glm_posterior(x.T @ x, theta, ssr, 200)
    eig = np.linalg.eigvalsh(x.T @ x)
    assert ev == pytest.approx(log_evidence(eig, theta @ theta, ssr, 200, delta, sigma2), rel=1e-12)
    h = 1e-5  # central differences in (log delta, log sigma^2): zero gradient at MacKay's fixed point
    for dd, ds in ((h, 0.0), (0.0, h)):
        up = log_evidence(eig, theta @ theta, ssr, 200, delta * math.exp(dd), sigma2 * math.exp(ds))
        down = log_evidence(eig, theta @ theta, ssr, 200, delta * math.exp(-dd), sigma2 * math.exp(-ds))
        assert abs(up - down) / (2 * h) < 1e-6
    assert 0 < gamma < 6  # effective parameters


def test_laplace_evidence_is_the_exact_marginal_likelihood_of_a_linear_model():
    # For Bayesian linear regression with theta* the MAP for (delta, sigma^2), the Laplace
    # evidence is exact: log N(y | 0, sigma^2 I + X X^T / delta) (MacKay 1992, eq. 4.17).
    rng = np.random.default_rng(3)
    x = rng.standard_normal((40, 4))
    y = x @ rng.standard_normal(4) + 0.2 * rng.standard_normal(40)
    delta, sigma2 = 0.7, 0.05
    theta = np.linalg.solve(x.T @ x + sigma2 * delta * np.eye(4), x.T @ y)
    ssr = float(np.sum((x @ theta - y) ** 2))
    got = log_evidence(np.linalg.eigvalsh(x.T @ x), theta @ theta, ssr, 40, delta, sigma2)
    c = sigma2 * np.eye(40) + x @ x.T / delta
    want = -0.5 * (y @ np.linalg.solve(c, y) + np.linalg.slogdet(c)[1] + 40 * math.log(2 * math.pi))
    assert got == pytest.approx(want, rel=1e-10)


def tiny_fno(dim: int = 1):
    from flax import nnx

    from operators.models import FNO, FNOConfig, functional

    model = FNO(FNOConfig(dim=dim, modes=4, width=8, depth=2, proj_hidden=16), rngs=nnx.Rngs(0))
    model.set_normalization(0.1, 2.0, -0.3, 0.5)
    return functional(model)


@pytest.mark.parametrize("dim", [1, 2])
def test_fno_last_layer_jacobian_reproduces_the_output(dim):
    # u = u_std (phi . w + b) + u_mean is linear in the output layer: J theta* = u - u_mean
    from uncertainty.laplace import last_layer_jacobian

    apply, params = tiny_fno(dim)
    fn, theta = last_layer_jacobian(apply, params)
    assert theta.size == 16 + 1  # proj2: kernel (16, 1) and bias (1,)
    a = np.random.default_rng(0).standard_normal((3, *(12,) * dim)).astype(np.float32)
    out, jac = fn(jnp.asarray(a))
    np.testing.assert_allclose(np.asarray(jac) @ theta + (-0.3), np.asarray(out), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(out), np.asarray(jax.jit(apply)(params, a)), rtol=1e-6, atol=1e-6)


def test_fno_laplace_std_is_positive_and_grows_away_from_the_data():
    apply, params = tiny_fno()
    rng = np.random.default_rng(4)
    a = rng.standard_normal((16, 16)).astype(np.float32)
    u = np.asarray(jax.jit(apply)(params, a)) + 0.01 * rng.standard_normal((16, 16)).astype(np.float32)
    post = fit_laplace(apply, params, a, u)
    _, std_in, _ = laplace_predict(apply, params, post, a)
    _, std_out, _ = laplace_predict(apply, params, post, 20 * a)  # far outside the training inputs
    assert np.all(std_in > 0) and std_out.mean() > 3 * std_in.mean()
