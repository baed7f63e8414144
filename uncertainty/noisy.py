"""The noisy-data setting: PINN ensembles fitted to N noisy observations plus the PDE residual.

Observations are y_i = u_exact(t_i, x_i) + eps_i, eps_i ~ N(0, noise^2), at N points drawn
uniformly in the domain (``noisy_observations``). Each member minimizes

    L = L_res + L_data,   L_res = mean squared PDE residual on fresh collocation points,
    L_data = mean_i (u(t_i, x_i) - y_i)^2                           (plain head), or
    L_data = mean_i [ (u(t_i, x_i) - y_i)^2 / (2 s^2) + log s ]     (Gaussian head),

where the Gaussian likelihood head learns the noise std s = exp(log_s) of each member
(homoscedastic). The ensemble then carries both kinds of uncertainty: the epistemic
variance of the member means (what the truth, the exact solution, is judged against) and
the aleatoric variance mean_m s_m^2 of a new observation (``mixture_moments``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from pdes.pinn.phases import member_mesh, shard_members
from uncertainty.ensemble import EnsembleFit, _bar, check_members

__all__ = ["Observations", "noisy_observations", "noisy_pinn_ensemble"]


class Observations(NamedTuple):
    """N noisy observations: t, x, y (N,) and the noise std used to make them."""

    t: np.ndarray
    x: np.ndarray
    y: np.ndarray
    noise: float


def noisy_observations(problem: Any, n_obs: int, noise: float, *, seed: int = 0) -> Observations:
    """N points uniform in [0, t_end] x [x_min, x_max] with y = exact + N(0, noise^2), float64."""
    from pdes.exact import exact_solution

    if isinstance(n_obs, bool) or not isinstance(n_obs, int) or n_obs < 1:
        raise ValueError(f"n_obs must be a positive integer, got {n_obs!r}")
    if not (isinstance(noise, int | float) and math.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
    rng = np.random.default_rng(seed)
    t = rng.uniform(0.0, problem.t_end, n_obs)
    x = rng.uniform(problem.x_min, problem.x_max, n_obs)
    # exact_solution works on grids; evaluate point by point on the diagonal of small grids
    order = np.argsort(t)
    u = np.empty(n_obs)
    for i in order:
        u[i] = exact_solution(problem, t[i : i + 1], x[i : i + 1])[0, 0]
    return Observations(t, x, u + noise * rng.normal(size=n_obs), float(noise))


class NoisyState(NamedTuple):
    params: Any  # {"net": network params, "log_s": scalar}
    opt_state: Any
    key: jax.Array


def noisy_pinn_ensemble(
    problem: Any,
    config: Any,
    obs: Observations,
    *,
    members: int,
    key: jax.Array,
    steps: int | None = None,
    gaussian_head: bool = True,
    chunk: int | None = None,
    shard: bool = True,
    progress: bool = True,
) -> EnsembleFit:
    """Train M PINNs on residual + noisy observations as one vmapped program (Adam with the
    PINN's warm-up/decay schedule). ``extra['noise_std']`` holds each member's learned s
    (M,) with the Gaussian head, else None."""
    from pdes.pinn.core import build_pinn
    from pdes.pinn.precision import x64_if

    m = check_members(members)
    if steps is not None:
        config = config.updated({"adam.steps": int(steps)})
    pinn = build_pinn(problem, config)
    # a float64 config trains in float64 from the start, as pdes.pinn.train does
    with x64_if(config.network.dtype == "float64"):
        return _train_noisy(pinn, obs, m, key, gaussian_head, chunk, shard, progress)


def _train_noisy(pinn: Any, obs: Observations, m: int, key: jax.Array, gaussian_head: bool, chunk: int | None,
                 shard: bool, progress: bool) -> EnsembleFit:
    config = pinn.config
    dtype = jnp.float64 if config.network.dtype == "float64" else jnp.float32
    t_obs, x_obs, y_obs = (jnp.asarray(v, dtype) for v in (obs.t, obs.x, obs.y))
    tx = pinn.adam()
    init_noise = max(obs.noise, 1e-3)

    def loss_fn(params: Any, batch: dict[str, jax.Array]) -> jax.Array:
        terms, _ = pinn.loss_terms(params["net"], batch)
        res = sum(terms.values())
        err = pinn.apply(params["net"], t_obs, x_obs) - y_obs
        if gaussian_head:
            log_s = params["log_s"]
            data = jnp.mean(0.5 * err**2 * jnp.exp(-2 * log_s) + log_s)
        else:
            data = jnp.mean(err**2)
        return res + data

    def init(k: jax.Array) -> NoisyState:
        k_init, k_train = jax.random.split(k)
        params = {"net": pinn.init(k_init), "log_s": jnp.asarray(math.log(init_noise), dtype)}
        return NoisyState(params, tx.init(params), k_train)

    def run_chunk(state: NoisyState, n_steps: int) -> tuple[NoisyState, jax.Array]:
        key, scan_key = jax.random.split(state.key)

        def one(carry, k):
            params, opt_state = carry
            batch = pinn.sample(k, config.sampling.n_res, dtype)
            loss, grads = jax.value_and_grad(loss_fn)(params, batch)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        (params, opt_state), losses = jax.lax.scan(
            one, (state.params, state.opt_state), jax.random.split(scan_key, n_steps)
        )
        return NoisyState(params, opt_state, key), losses[-1]

    mesh = member_mesh(m) if shard else None
    start = time.perf_counter()
    state = shard_members(jax.vmap(init)(jax.random.split(key, m)), mesh)  # eager: runs once, compiling it cost more
    chunk = int(chunk or min(config.run.log_every, config.adam.steps))
    compiled: dict[int, Callable] = {}
    history: list[np.ndarray] = []
    bar = _bar(config.adam.steps, f"noisy ensemble x{m}", progress)
    done = 0
    while done < config.adam.steps:
        n = min(chunk, config.adam.steps - done)
        if n not in compiled:
            compiled[n] = jax.jit(jax.vmap(partial(run_chunk, n_steps=n)))
        state, loss = compiled[n](state)
        history.append(np.asarray(loss))
        done += n
        bar.update(n)
        bar.set_postfix(loss=f"{float(np.median(history[-1])):.2e}")
    bar.close()
    net = jax.block_until_ready(state.params["net"])
    noise_std = np.exp(np.asarray(state.params["log_s"], dtype=np.float64)) if gaussian_head else None
    return EnsembleFit(pinn, net, history, time.perf_counter() - start, m, {"noise_std": noise_std})
