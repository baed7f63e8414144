"""The functional PINN core: ``build_pinn(problem, config) -> PINN`` with pure methods.

Everything here is a pure function of arrays and keys, so ``jax.vmap`` over a leading
member axis trains an ensemble in one compiled program (see ``pdes/pinn/__init__.py``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from pdes.pinn import sampling
from pdes.pinn.configs import PINNConfig
from pdes.pinn.models import PINNNet
from pdes.pinn.optim import UPDATES, bfgs, keep_curvature
from pdes.pinn.precision import x64_if
from pdes.pinn.residuals import coefficients, d_t, initial_data, residual_fn
from pdes.problems import Burgers, Heat, Wave

__all__ = ["PINN", "TrainState", "build_pinn"]


class TrainState(NamedTuple):
    """Everything a training chunk carries. params: the network's parameter pytree;
    opt_state: the optimizer's state; weights: {term: scalar} loss weights; key: PRNG key;
    step: scalar int32 step counter of the phase."""

    params: Any
    opt_state: Any
    weights: dict[str, jax.Array]
    key: jax.Array
    step: jax.Array


def _dtype(name: str):
    return jnp.float64 if name == "float64" else jnp.float32


@dataclass(frozen=True, eq=False)
class PINN:
    """A physics-informed network for one problem and config. Build with ``build_pinn``.

    All methods are pure: params in, arrays out. Points t, x are physical coordinates,
    shape (N,). See the package docstring for the training API.
    """

    problem: Heat | Wave | Burgers
    config: PINNConfig
    graphdef: Any
    coeffs: dict[str, float]
    terms: tuple[str, ...]
    _u0: Any = field(repr=False)
    _v0: Any = field(repr=False)
    _residual: Any = field(repr=False)
    _sobol: np.ndarray | None = field(repr=False, default=None)
    _jit: dict = field(repr=False, default_factory=dict)

    def jitted(self, name: str, **jit_kw: Any):
        """``jax.jit(getattr(self, name), **jit_kw)``, made once per PINN, so repeated runs of one
        (problem, config) reuse the compiled programs."""
        key = (name, tuple(sorted(jit_kw.items())))
        if key not in self._jit:
            self._jit[key] = jax.jit(getattr(self, name), **jit_kw)
        return self._jit[key]

    # ----------------------------------------------------------------- network
    def _net(self, key: jax.Array, dtype) -> PINNNet:
        c = self.config
        return PINNNet(arch=c.arch, width=c.width, depth=c.depth, activation=c.activation,
                       x_modes=c.x_modes, fourier_features=c.fourier_features,
                       fourier_scale=c.fourier_scale, rwf=(c.rwf_mean, c.rwf_std) if c.rwf else None,
                       dropout=c.dropout, rngs=nnx.Rngs(params=key), dtype=dtype)

    def init(self, key: jax.Array) -> Any:
        """Fresh parameters (an nnx.State pytree) in the config's dtype. Vmappable over keys."""
        _, params = nnx.split(self._net(key, _dtype(self.config.dtype)))
        return params

    def apply(self, params: Any, t: jax.Array, x: jax.Array, dropout_key: jax.Array | None = None) -> jax.Array:
        """u(t, x) with the hard constraints applied. t, x: (N,) -> (N,)."""
        p = self.problem
        c = self.config
        net = nnx.merge(self.graphdef, params)
        t_hat = t / p.t_end
        xi = (x - p.x_min) / p.length

        def n_of(th):
            if c.odd_symmetric:  # odd about the centre: N(xi) - N(1 - xi)
                return 0.5 * c.output_scale * (net(th, xi, dropout_key) - net(th, 1.0 - xi, dropout_key))
            return c.output_scale * net(th, xi, dropout_key)

        bc = 4.0 * xi * (1.0 - xi) if c.hard_bc else 1.0
        if not c.hard_ic:
            return bc * n_of(t_hat)
        g = self._u0(xi)
        if isinstance(p, Wave):
            if self._v0 is not None:
                g = g + t * self._v0(xi)
            # u = u0 + t v0 + t_hat (N(t) - N(0)) B: u(0) = u0 and u_t(0) = v0 exactly.
            return g + t_hat * (n_of(t_hat) - n_of(jnp.zeros_like(t_hat))) * bc
        return g + t_hat * n_of(t_hat) * bc

    def field(self, params: Any, dropout_key: jax.Array | None = None):
        """The solution as a function (t, x) -> u for the residual operators."""
        return lambda t, x: self.apply(params, t, x, dropout_key)

    def residual(self, params: Any, t: jax.Array, x: jax.Array, coeffs: dict[str, Any] | None = None,
                 dropout_key: jax.Array | None = None) -> jax.Array:
        """The PDE residual at (t, x): (N,). coeffs default to the problem's (nu/alpha/c)."""
        return self._residual(self.field(params, dropout_key), t, x, **(coeffs or self.coeffs))

    # ----------------------------------------------------------------- points
    def _to_physical(self, t_hat: jax.Array, xi: jax.Array) -> tuple[jax.Array, jax.Array]:
        p = self.problem
        return t_hat * p.t_end, p.x_min + xi * p.length

    def rad_pool(self, params: Any, key: jax.Array, dtype) -> tuple[jax.Array, jax.Array, jax.Array]:
        """A RAD candidate pool (t, x, p) of rad_pool * n_res points and their probabilities."""
        c = self.config
        th, xi = sampling.sample_uniform(key, c.rad_pool * c.n_res, dtype)
        t, x = self._to_physical(th, xi)
        r = jax.lax.stop_gradient(self.residual(params, t, x))
        return t, x, sampling.rad_probabilities(r, c.rad_k, c.rad_c)

    def sample(self, key: jax.Array, n_res: int, dtype, pool: tuple | None = None) -> dict[str, jax.Array]:
        """A fresh batch: residual points t, x (n_res,), sorted by t when causal; initial points
        x0 (n_ic,) and boundary times tb (n_bc,) when those constraints are soft."""
        c = self.config
        k_res, k_ic, k_bc = jax.random.split(key, 3)
        if pool is not None:
            t, x = sampling.sample_from_pool(k_res, *pool, n_res)
        else:
            if c.sampler == "sobol" and self._sobol is not None and self._sobol.shape[0] == n_res:
                th, xi = sampling.sample_sobol(k_res, jnp.asarray(self._sobol, dtype))
            else:
                th, xi = sampling.sample_uniform(k_res, n_res, dtype)
            t, x = self._to_physical(th, xi)
        if c.causal:
            t, x = sampling.sort_by_time(t, x)
        batch = {"t": t, "x": x}
        p = self.problem
        if not c.hard_ic:
            batch["x0"] = p.x_min + p.length * jax.random.uniform(k_ic, (c.n_ic,), dtype)
        if not c.hard_bc:
            batch["tb"] = p.t_end * jax.random.uniform(k_bc, (c.n_bc,), dtype)
        return batch

    # ----------------------------------------------------------------- loss
    def loss_terms(self, params: Any, batch: dict[str, jax.Array], coeffs: dict[str, Any] | None = None,
                   causal: bool | None = None, dropout_key: jax.Array | None = None) -> tuple[dict, dict]:
        """({term: mean squared error}, aux) on a batch. With causal weighting the residual term
        is mean_i w_i L_i over M time slices, w_i = exp(-eps sum_{j<i} L_j) (no gradient)."""
        c = self.config
        causal = c.causal if causal is None else causal
        u = self.field(params, dropout_key)
        r = self._residual(u, batch["t"], batch["x"], **(coeffs or self.coeffs))
        aux = {}
        if causal:
            per = jnp.mean(r.reshape(c.causal_chunks, -1) ** 2, axis=1)
            w = jax.lax.stop_gradient(jnp.exp(-c.causal_eps * (jnp.cumsum(per) - per)))
            terms = {"res": jnp.mean(w * per)}
            aux["causal_min_weight"] = jnp.min(w)
        else:
            terms = {"res": jnp.mean(r**2)}
        p = self.problem
        if "ic" in self.terms:
            x0 = batch["x0"]
            t0 = jnp.zeros_like(x0)
            xi0 = (x0 - p.x_min) / p.length
            terms["ic"] = jnp.mean((u(t0, x0) - self._u0(xi0)) ** 2)
            if "ic_v" in self.terms:
                v0 = self._v0(xi0) if self._v0 is not None else 0.0
                terms["ic_v"] = jnp.mean((d_t(u)(t0, x0) - v0) ** 2)
        if "bc" in self.terms:
            tb = batch["tb"]
            terms["bc"] = 0.5 * (jnp.mean(u(tb, jnp.full_like(tb, p.x_min)) ** 2)
                                 + jnp.mean(u(tb, jnp.full_like(tb, p.x_max)) ** 2))
        return terms, aux

    def weighted_loss(self, params: Any, weights: dict[str, jax.Array], batch: dict[str, jax.Array],
                      coeffs: dict[str, Any] | None = None, causal: bool | None = None,
                      dropout_key: jax.Array | None = None) -> tuple[jax.Array, dict]:
        """(sum_k w_k L_k, aux with every term as loss_<term>)."""
        terms, aux = self.loss_terms(params, batch, coeffs, causal, dropout_key)
        total = sum(weights[k] * terms[k] for k in self.terms)
        aux.update({f"loss_{k}": v for k, v in terms.items()})
        return total, aux

    def loss(self, params: Any, weights: dict[str, jax.Array], key: jax.Array,
             coeffs: dict[str, Any] | None = None, dropout_key: jax.Array | None = None) -> tuple[jax.Array, dict]:
        """The weighted loss on fresh uniform collocation points drawn from key: (loss, aux)."""
        dtype = jax.tree.leaves(params)[0].dtype
        return self.weighted_loss(params, weights, self.sample(key, self.config.n_res, dtype), coeffs,
                                  dropout_key=dropout_key)

    def init_weights(self, dtype=jnp.float32) -> dict[str, jax.Array]:
        """All loss weights 1."""
        return {k: jnp.ones((), dtype) for k in self.terms}

    def gradnorm_weights(self, params: Any, weights: dict[str, jax.Array], batch: dict[str, jax.Array]) -> dict:
        """Grad-norm balancing (Wang et al. 2023): lambda_k = sum_j |grad L_j| / |grad L_k|,
        blended into the weights with momentum ``weight_momentum``."""
        m = self.config.weight_momentum
        norms = {}
        for k in self.terms:
            g = jax.grad(lambda q, k=k: self.loss_terms(q, batch)[0][k])(params)
            norms[k] = optax.global_norm(g)
        total = sum(norms.values())
        return {k: m * weights[k] + (1 - m) * jax.lax.stop_gradient(total / jnp.maximum(norms[k], 1e-30))
                for k in self.terms}

    # ----------------------------------------------------------------- Adam phase
    def adam(self) -> optax.GradientTransformation:
        """Adam with linear warm-up to lr, then exponential decay."""
        c = self.config
        schedule = optax.warmup_exponential_decay_schedule(
            init_value=0.0 if c.warmup_steps else c.lr, peak_value=c.lr, warmup_steps=c.warmup_steps,
            transition_steps=c.decay_steps, decay_rate=c.decay_rate)
        return optax.adam(schedule)

    def init_train_state(self, params: Any, key: jax.Array) -> TrainState:
        """The Adam phase's starting state. Vmappable over (params, key)."""
        dtype = jax.tree.leaves(params)[0].dtype
        return TrainState(params, self.adam().init(params), self.init_weights(dtype), key,
                          jnp.zeros((), jnp.int32))

    def adam_chunk(self, state: TrainState, n_steps: int) -> tuple[TrainState, dict]:
        """n_steps Adam steps, each on fresh collocation points, as one lax.scan. Pure and
        vmappable. Returns the new state and the last step's metrics (loss, loss_<term>,
        weight_<term>, ...)."""
        c = self.config
        tx = self.adam()
        dtype = jax.tree.leaves(state.params)[0].dtype
        key, pool_key, scan_key = jax.random.split(state.key, 3)
        pool = self.rad_pool(state.params, pool_key, dtype) if c.sampler == "rad" else None
        balance = c.weighting == "gradnorm" and len(self.terms) > 1

        def one(carry, k):
            params, opt_state, weights, step = carry
            k_batch, k_drop = jax.random.split(k)
            batch = self.sample(k_batch, c.n_res, dtype, pool)
            if balance:
                weights = jax.lax.cond(step % c.weight_every == 0,
                                       lambda: self.gradnorm_weights(params, weights, batch), lambda: weights)
            drop = k_drop if c.dropout > 0 else None
            (loss, aux), grads = jax.value_and_grad(self.weighted_loss, has_aux=True)(
                params, weights, batch, dropout_key=drop)
            updates, opt_state = tx.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            metrics = {"loss": loss, **aux, **{f"weight_{k}": w for k, w in weights.items()}}
            return (params, opt_state, weights, step + 1), metrics

        (params, opt_state, weights, step), metrics = jax.lax.scan(
            one, (state.params, state.opt_state, state.weights, state.step), jax.random.split(scan_key, n_steps))
        last = jax.tree.map(lambda a: a[-1], metrics)
        return TrainState(params, opt_state, weights, key, step), last

    # ----------------------------------------------------------------- quasi-Newton phase
    def qn(self) -> optax.GradientTransformationExtraArgs:
        """The second-phase optimizer: dense BFGS ("bfgs"), dense self-scaled Broyden
        ("ssbroyden") or optax L-BFGS ("lbfgs"), all with the zoom (strong Wolfe) line search."""
        if self.config.qn_method in UPDATES:
            return bfgs(update_rule=self.config.qn_method)
        return optax.lbfgs(memory_size=self.config.qn_memory,
                           linesearch=optax.scale_by_zoom_linesearch(max_linesearch_steps=30))

    def qn_batch(self, params: Any, key: jax.Array) -> dict[str, jax.Array]:
        """The fixed batch of a quasi-Newton round (qn_n_res points; RAD when configured)."""
        c = self.config
        dtype = jax.tree.leaves(params)[0].dtype
        k_pool, k_batch = jax.random.split(key)
        pool = None
        if c.sampler == "rad":
            th, xi = sampling.sample_uniform(k_pool, c.rad_pool * c.qn_n_res, dtype)
            t, x = self._to_physical(th, xi)
            r = jax.lax.stop_gradient(self.residual(params, t, x))
            pool = (t, x, sampling.rad_probabilities(r, c.rad_k, c.rad_c))
        return self.sample(k_batch, c.qn_n_res, dtype, pool)

    def qn_chunk(self, params: Any, opt_state: Any, weights: dict[str, jax.Array], batch: dict[str, jax.Array],
                 key: jax.Array, fresh: jax.Array, n_steps: int) -> tuple[Any, Any, dict, dict]:
        """n_steps quasi-Newton steps on a fixed batch (no causal weights: one fixed objective).

        With ``fresh`` true a new batch is drawn from key (``qn_batch``) and the optimizer
        state restarts, so one compiled function serves every round. Returns (params,
        opt_state, batch, metrics)."""
        tx = self.qn()
        def restart():
            state = tx.init(params)
            if self.config.qn_method in UPDATES:
                state = keep_curvature(opt_state, state)
            return self.qn_batch(params, key), state

        batch, opt_state = jax.lax.cond(fresh, restart, lambda: (batch, opt_state))

        def objective(q):
            return self.weighted_loss(q, weights, batch, causal=False)[0]

        value_and_grad = optax.value_and_grad_from_state(objective)

        def one(carry, _):
            q, st = carry
            value, grad = value_and_grad(q, state=st)
            updates, st = tx.update(grad, st, q, value=value, grad=grad, value_fn=objective)
            return (optax.apply_updates(q, updates), st), value

        (params, opt_state), values = jax.lax.scan(one, (params, opt_state), None, length=n_steps)
        metrics = {"loss": optax.tree_utils.tree_get(opt_state, "value")}
        if len(self.terms) > 1:
            metrics.update(self.weighted_loss(params, weights, batch, causal=False)[1])
        else:
            metrics[f"loss_{self.terms[0]}"] = metrics["loss"] / weights[self.terms[0]]
        metrics.update({f"weight_{k}": w for k, w in weights.items()})
        return params, opt_state, batch, metrics

    def init_qn(self, params: Any) -> tuple[Any, dict[str, jax.Array]]:
        """Placeholders (opt_state, batch) of the right structure for the first ``qn_chunk``
        call (which passes fresh=True and replaces both). Scalars are made strongly typed, as
        ``qn_chunk`` returns them, so the second chunk does not compile the function again."""
        placeholders = self.qn().init(params), self.qn_batch(params, jax.random.key(0))
        return jax.tree.map(lambda a: jnp.asarray(a, dtype=a.dtype), placeholders)

    # ----------------------------------------------------------------- evaluation
    def predict_grid(self, params: Any, t: np.ndarray, x: np.ndarray, dropout_key: jax.Array | None = None) -> jax.Array:
        """u on the grid t (nt,) x x (nx,): (nt, nx)."""
        dtype = jax.tree.leaves(params)[0].dtype
        tt, xx = jnp.meshgrid(jnp.asarray(t, dtype), jnp.asarray(x, dtype), indexing="ij")
        return self.apply(params, tt.ravel(), xx.ravel(), dropout_key).reshape(tt.shape)


def build_pinn(problem: Heat | Wave | Burgers, config: PINNConfig) -> PINN:
    """The PINN of ``problem`` under ``config`` (validated here, before any jit). The same
    (problem, config) gives the same PINN object, so its compiled chunks are reused."""
    if not isinstance(config, PINNConfig):
        raise ValueError(f"config must be a PINNConfig, got {type(config).__name__}")
    coefficients(problem)
    # run lengths do not enter any compiled function: runs that differ only in them share one core
    core_cfg = replace(config, steps=1, qn_steps=0, log_every=1, checkpoint_every=1, qn_resample_every=1)
    key = (problem, core_cfg, getattr(problem, "initial", None), getattr(problem, "initial_velocity", None))
    core = _build_cached(key)
    return core if core_cfg == config else replace(core, config=config)


def _check_odd(problem: Any, *fns: Any) -> None:
    """ValueError unless the initial data are odd about the centre of the domain (odd_symmetric)."""
    xi = np.linspace(0.0, 1.0, 101)
    for name, f in zip(("initial data", "initial velocity"), fns, strict=True):
        if f is None:
            continue
        with x64_if(True):
            a = np.asarray(f(jnp.asarray(xi)), np.float64)
            b = np.asarray(f(jnp.asarray(1.0 - xi)), np.float64)
        scale = max(float(np.max(np.abs(a))), 1e-300)
        if float(np.max(np.abs(a + b))) > 1e-9 * scale:
            raise ValueError(f"odd_symmetric needs {name} odd about the centre of [{problem.x_min}, "
                             f"{problem.x_max}]; {problem.name}'s is not (set odd_symmetric=false)")


@functools.lru_cache(maxsize=16)
def _build_cached(key: tuple) -> PINN:
    problem, config = key[0], key[1]
    coeffs = coefficients(problem)  # rejects unsupported problems
    terms = ["res"]
    if not config.hard_ic:
        terms.append("ic")
        if isinstance(problem, Wave):
            terms.append("ic_v")
    if not config.hard_bc:
        terms.append("bc")
    u0, v0 = initial_data(problem)
    if config.odd_symmetric:
        _check_odd(problem, u0, v0)
    proto = PINN(problem, config, None, coeffs, tuple(terms), u0, v0, residual_fn(problem))
    with x64_if(config.dtype == "float64"):  # no "float64 not available" warning
        graphdef, _ = nnx.split(nnx.eval_shape(lambda: proto._net(jax.random.key(0), _dtype(config.dtype))))
    sobol = sampling.sobol_base(config.n_res) if config.sampler == "sobol" else None
    return PINN(problem, config, graphdef, coeffs, tuple(terms), u0, v0, residual_fn(problem), sobol)
