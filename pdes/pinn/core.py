"""The functional PINN core: ``build_pinn(problem, config) -> PINN`` with pure methods.

Everything here is a pure function of arrays and keys, so ``jax.vmap`` over a leading
member axis trains an ensemble in one compiled program (see ``pdes/pinn/__init__.py``).

Parameters are one pytree, ``{"net": network state, "coeffs": {name: raw}}``: ``coeffs`` holds
the trainable PDE coefficients of an inverse problem (value = exp(raw)) and is empty for a
forward problem. Observations, when the PINN fits data (``with_data=True``), are an argument
``obs = {"t", "x", "u", "w"}`` (arrays (n,); ``w`` per-observation weights, e.g. bootstrap
counts) of the loss and the training chunks, so ensemble members can see different resamples.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.special
import numpy as np
import optax
from flax import nnx

from pdes.pinn import sampling
from pdes.pinn.configs import PINNConfig, program_config
from pdes.pinn.models import PINNNet
from pdes.pinn.optim import UPDATES, bfgs, keep_curvature
from pdes.pinn.precision import x64_if
from pdes.pinn.residuals import coefficients, d_t, d_x, initial_data, residual_fn
from pdes.problems import Problem

__all__ = ["PINN", "Programs", "TrainState", "build_pinn"]


class TrainState(NamedTuple):
    """Everything an Adam chunk carries. params: the parameter pytree; opt_state: the
    optimizer's state; weights: {term: scalar} loss weights; key: PRNG key; step: scalar int32
    step counter of the phase."""

    params: Any
    opt_state: Any
    weights: dict[str, jax.Array]
    key: jax.Array
    step: jax.Array


def _dtype(name: str):
    return jnp.float64 if name == "float64" else jnp.float32


def _float_dtype(tree: Any):
    return jax.tree.leaves(tree)[0].dtype


@dataclass(frozen=True, eq=False)
class PINN:
    """A physics-informed network for one problem and config. Build with ``build_pinn``.

    All methods are pure: params in, arrays out. Points t, x are physical coordinates,
    shape (N,). See the package docstring for the training API. ``coeffs`` are the PDE
    coefficients by name (the problem's values); ``unknowns`` names those that are trainable
    (inverse problems); ``terms`` the loss terms ("res", soft "ic"/"ic_v"/"bc", "data")."""

    problem: Any
    config: PINNConfig
    graphdef: Any
    coeffs: dict[str, float]
    unknowns: tuple[str, ...]
    terms: tuple[str, ...]
    _u0: Any = field(repr=False)
    _v0: Any = field(repr=False)
    _residual: Any = field(repr=False)
    _sobol: dict[int, np.ndarray] | None = field(repr=False, default=None)  # {n_res: base} of both phases
    _kink: float = field(repr=False, default=0.0)  # u0's slope jump across the periodic boundary

    @property
    def program_key(self) -> tuple:
        """What shapes this PINN's compiled programs: two PINNs with equal keys compute the same
        functions, so a compiled program of one serves the other (``Programs``)."""
        p = self.problem
        return (p, getattr(p, "initial", None), getattr(p, "initial_velocity", None), program_config(self.config),
                self.unknowns, self.terms, self._residual, self._warm_until())

    def with_config(self, config: PINNConfig) -> PINN:
        """This PINN under ``config`` (which must have the same ``program_config``)."""
        return self if config is self.config else replace(self, config=config)

    # ----------------------------------------------------------------- network
    def _net(self, key: jax.Array, dtype) -> PINNNet:
        c = self.config.network
        # x embedded with period L for a periodic problem, 2L (the odd extension) otherwise
        period = 1.0 if self.problem.boundary.kind == "periodic" else 2.0
        return PINNNet(arch=c.arch, width=c.width, depth=c.depth, activation=c.activation,
                       x_modes=c.x_modes, fourier_features=c.fourier_features,
                       fourier_scale=c.fourier_scale, rwf=(c.rwf_mean, c.rwf_std) if c.rwf else None,
                       dropout=c.dropout, rngs=nnx.Rngs(params=key), dtype=dtype, x_period=period,
                       x_dims=self.problem.dims, extra_inputs=1 if c.u0_feature else 0,
                       x_even=c.even_symmetric)

    def init(self, key: jax.Array, coeffs: dict[str, Any] | None = None) -> Any:
        """Fresh parameters {"net": nnx.State, "coeffs": {name: log value}} in the config's dtype;
        unknown coefficients start at ``coeffs`` (default: the problem's values). Vmappable."""
        dtype = _dtype(self.config.network.dtype)
        _, net = nnx.split(self._net(key, dtype))
        start = {**self.coeffs, **(coeffs or {})}
        return {"net": net, "coeffs": {n: jnp.log(jnp.asarray(start[n], dtype)) for n in self.unknowns}}

    def coefficient_values(self, params: Any) -> dict[str, Any]:
        """The PDE coefficients of ``params``: the problem's, with the unknowns' exp(raw)."""
        return {**self.coeffs, **{n: jnp.exp(params["coeffs"][n]) for n in self.unknowns}}

    def _box(self, dtype) -> tuple[Any, Any]:
        """(lower corner, side lengths): scalars in 1-D, arrays (2,) in 2-D (``Problem.box``)."""
        lo, size = self.problem.box
        if len(lo) == 1:
            return lo[0], size[0]
        return jnp.asarray(lo, dtype), jnp.asarray(size, dtype)

    def _scaled(self, x: jax.Array) -> jax.Array:
        """xi = (x - x_min) / L in [0, 1]: (N,), or (N, 2) (x and y) for a problem 2-D in space."""
        lo, size = self._box(x.dtype)
        return (x - lo) / size

    def apply(self, params: Any, t: jax.Array, x: jax.Array, dropout_key: jax.Array | None = None) -> jax.Array:
        """u(t, x) with the hard constraints applied. t: (N,), x: (N,) or (N, 2) (the points
        (x, y) of a problem 2-D in space) -> (N,).

        Hard initial data: u = u0 + t_hat N B (u = u0 + t v0 + t_hat (N(t) - N(0)) B for an
        equation second order in time, so u(0) = u0 and u_t(0) = v0 exactly). Hard boundary
        data: Dirichlet values by B = 4 xi (1 - xi) (in 2-D the product over x and y) plus a
        lift linear in xi for nonzero values (in 2-D the one boundary value); periodic ones by
        the network's periodic embedding of x (and y) (B = 1); Neumann ones are a loss term."""
        p = self.problem
        c = self.config.network
        net = nnx.merge(self.graphdef, params["net"])
        t_hat = t / p.t_end
        xi = self._scaled(x)

        u0 = self._initial_term(t, xi) if c.hard_ic or c.u0_feature else None
        extra = u0 if c.u0_feature else None  # u0(x) as a network input

        def n_of(th):  # (even_symmetric: the network's embedding of x is even about the centre)
            if c.odd_symmetric:  # odd about the centre: (N(xi) - N(1 - xi)) / 2
                mirror = self._initial_term(t, 1.0 - xi) if c.u0_feature else None
                return 0.5 * c.output_scale * (net(th, xi, dropout_key, extra) - net(th, 1.0 - xi, dropout_key, mirror))
            return c.output_scale * net(th, xi, dropout_key, extra)

        b = p.boundary
        dirichlet = c.hard_bc and b.kind == "dirichlet"
        bubble = 4.0 * xi * (1.0 - xi)
        bc = (bubble if xi.ndim == 1 else jnp.prod(bubble, axis=-1)) if dirichlet else 1.0
        lift = 0.0
        if dirichlet and not b.homogeneous:  # the boundary values (their change since t = 0 under hard_ic)
            left, right = b.value("left", t), b.value("right", t)
            if c.hard_ic:
                zero = jnp.zeros_like(t)
                left, right = left - b.value("left", zero), right - b.value("right", zero)
            lift = (1.0 - xi) * left + xi * right if xi.ndim == 1 else left  # 2-D: one value, left == right
        if not c.hard_ic:
            return lift + bc * n_of(t_hat)
        g = u0 + lift
        if self._second_order:
            if self._v0 is not None:
                g = g + t * self._v0(xi)
            return g + t_hat * (n_of(t_hat) - n_of(jnp.zeros_like(t_hat))) * bc
        return g + t_hat * n_of(t_hat) * bc

    def _initial_term(self, t: jax.Array, xi: jax.Array) -> jax.Array:
        """u0(xi), plus the heat equation's smoothing of its kink by time t under
        network.kink_diffusivity."""
        u0 = self._u0(xi)
        return u0 + self._kink_smoothing(t, xi) if self.config.network.kink_diffusivity > 0 else u0

    def _kink_smoothing(self, t: jax.Array, xi: jax.Array) -> jax.Array:
        """What the heat equation u_t = eps u_xx adds to u0 near its kink across the periodic
        boundary by time t: (J/2) s ierfc(d / s), s = sqrt(4 eps t), d = the distance to the
        boundary, J the slope jump. It is heat(|d|) - |d| (the solution of the heat equation from
        |d| on the line), so u0 plus it is smooth for t > 0 and equals u0 at t = 0; it solves
        the heat equation away from the boundary and vanishes (below 1e-17) at distance L / 2."""
        eps = self.config.network.kink_diffusivity
        d = self.problem.length * jnp.minimum(xi, 1.0 - xi)
        positive = t > 0
        s = jnp.sqrt(4.0 * eps * jnp.where(positive, t, 1.0))  # no sqrt'(0) = inf in the tangents
        z = d / s
        ierfc = jnp.exp(-z * z) / math.sqrt(math.pi) - z * jax.scipy.special.erfc(z)
        return jnp.where(positive, 0.5 * self._kink * s * ierfc, 0.0)

    @property
    def _second_order(self) -> bool:
        return self.problem.second_order_in_time

    def field(self, params: Any, dropout_key: jax.Array | None = None):
        """The solution as a function (t, x) -> u for the residual operators."""
        return lambda t, x: self.apply(params, t, x, dropout_key)

    def residual(self, params: Any, t: jax.Array, x: jax.Array, dropout_key: jax.Array | None = None) -> jax.Array:
        """The PDE residual at (t, x): (N,), with the coefficients of ``params``."""
        return self._residual(self.field(params, dropout_key), t, x, **self.coefficient_values(params))

    # ----------------------------------------------------------------- points
    def _to_physical(self, t_hat: jax.Array, xi: jax.Array) -> tuple[jax.Array, jax.Array]:
        lo, size = self._box(xi.dtype)
        return t_hat * self.problem.t_end, lo + xi * size

    def rad_pool(self, params: Any, key: jax.Array, n: int) -> tuple[jax.Array, jax.Array, jax.Array]:
        """A RAD candidate pool (t, x, p) of rad_pool * n points and their probabilities."""
        s = self.config.sampling
        th, xi = sampling.sample_uniform(key, s.rad_pool * n, _float_dtype(params), self.problem.dims)
        t, x = self._to_physical(th, xi)
        r = jax.lax.stop_gradient(self.residual(params, t, x))
        return t, x, sampling.rad_probabilities(r, s.rad_k, s.rad_c)

    def sample(self, key: jax.Array, n_res: int, dtype, pool: tuple | None = None) -> dict[str, jax.Array]:
        """A fresh batch: residual points t, x (n_res,), sorted by t when causal; initial points
        x0 (n_ic,) and boundary times tb (n_bc,) when those constraints are soft."""
        s = self.config.sampling
        k_res, k_ic, k_bc = jax.random.split(key, 3)
        if pool is not None:
            t, x = sampling.sample_from_pool(k_res, *pool, n_res)
        else:
            if s.sampler == "sobol":  # built for the Adam phase's n_res and the quasi-Newton phase's qn.n_res
                th, xi = sampling.sample_sobol(k_res, jnp.asarray(self._sobol[n_res], dtype))
            else:
                th, xi = sampling.sample_uniform(k_res, n_res, dtype, self.problem.dims)
            t, x = self._to_physical(th, xi)
        if self.config.loss.causal:
            t, x = sampling.sort_by_time(t, x)
        batch = {"t": t, "x": x}
        p = self.problem
        if "ic" in self.terms:
            batch["x0"] = p.x_min + p.length * jax.random.uniform(k_ic, (s.n_ic,), dtype)
        if "bc" in self.terms:
            batch["tb"] = p.t_end * jax.random.uniform(k_bc, (s.n_bc,), dtype)
        return batch

    # ----------------------------------------------------------------- loss
    def loss_terms(self, params: Any, batch: dict[str, jax.Array], obs: dict[str, jax.Array] | None = None,
                   causal: bool | None = None, dropout_key: jax.Array | None = None,
                   gate: jax.Array | None = None) -> tuple[dict, dict]:
        """({term: mean squared error}, aux) on a batch. With causal weighting the residual term
        is mean_i w_i L_i over M time slices, w_i = exp(-eps sum_{j<i} L_j) (no gradient). The
        "data" term is sum_i w_i (u(t_i, x_i) - u_i)^2 / sum_i w_i over the observations.
        ``gate`` (0..1) scales the residual's gradient with respect to the network, not its value
        (0 in an inverse run's data warm-up: the residual then trains only the coefficients)."""
        lc = self.config.loss
        causal = lc.causal if causal is None else causal
        res_params = params
        if gate is not None:
            net = jax.tree.map(lambda q: jax.lax.stop_gradient(q) + gate * (q - jax.lax.stop_gradient(q)),
                               params["net"])
            res_params = {**params, "net": net}
        u = self.field(params, dropout_key)
        r = self._residual(self.field(res_params, dropout_key), batch["t"], batch["x"],
                           **self.coefficient_values(params))
        aux = {}
        if causal:
            per = jnp.mean(r.reshape(lc.causal_chunks, -1) ** 2, axis=1)
            w = jax.lax.stop_gradient(jnp.exp(-lc.causal_eps * (jnp.cumsum(per) - per)))
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
            at_a, at_b = jnp.full_like(tb, p.x_min), jnp.full_like(tb, p.x_max)
            b = p.boundary
            if b.kind == "periodic":
                u_x = d_x(u)
                terms["bc"] = jnp.mean((u(tb, at_a) - u(tb, at_b)) ** 2) + jnp.mean((u_x(tb, at_a) - u_x(tb, at_b)) ** 2)
            else:
                f = u if b.kind == "dirichlet" else d_x(u)
                terms["bc"] = 0.5 * (jnp.mean((f(tb, at_a) - b.value("left", tb)) ** 2)
                                     + jnp.mean((f(tb, at_b) - b.value("right", tb)) ** 2))
        if "data" in self.terms:
            if obs is None:
                raise ValueError("this PINN fits observations: pass obs={'t', 'x', 'u', 'w'}")
            misfit = (u(obs["t"], obs["x"]) - obs["u"]) ** 2
            terms["data"] = jnp.sum(obs["w"] * misfit) / jnp.sum(obs["w"])
        return terms, aux

    def weighted_loss(self, params: Any, weights: dict[str, jax.Array], batch: dict[str, jax.Array],
                      obs: dict[str, jax.Array] | None = None, causal: bool | None = None,
                      dropout_key: jax.Array | None = None, gate: jax.Array | None = None) -> tuple[jax.Array, dict]:
        """(sum_k w_k L_k, aux with every term as loss_<term>)."""
        terms, aux = self.loss_terms(params, batch, obs, causal, dropout_key, gate)
        total = sum(weights[k] * terms[k] for k in self.terms)
        aux.update({f"loss_{k}": v for k, v in terms.items()})
        return total, aux

    def loss(self, params: Any, weights: dict[str, jax.Array], key: jax.Array, obs: dict[str, jax.Array] | None = None,
             dropout_key: jax.Array | None = None) -> tuple[jax.Array, dict]:
        """The weighted loss on fresh uniform collocation points drawn from key: (loss, aux)."""
        batch = self.sample(key, self.config.sampling.n_res, _float_dtype(params))
        return self.weighted_loss(params, weights, batch, obs, dropout_key=dropout_key)

    def qn_weights(self, weights: dict[str, jax.Array]) -> dict[str, jax.Array]:
        """The quasi-Newton phase's fixed loss weights from the Adam phase's: the residual's
        weight times ``inverse.res_weight`` when fitting data (the physics as the constraint)."""
        if "data" not in self.terms or self.config.inverse.res_weight == 1.0:
            return weights
        return {**weights, "res": weights["res"] * self.config.inverse.res_weight}

    def init_weights(self, dtype=jnp.float32) -> dict[str, jax.Array]:
        """All loss weights 1."""
        return {k: jnp.ones((), dtype) for k in self.terms}

    def gradnorm_weights(self, params: Any, weights: dict[str, jax.Array], batch: dict[str, jax.Array],
                         obs: dict[str, jax.Array] | None = None) -> dict:
        """Grad-norm balancing (Wang et al. 2023): lambda_k = sum_j |grad L_j| / |grad L_k|, the
        gradients taken with respect to the network's parameters, blended into the weights with
        momentum ``loss.weight_momentum``."""
        m = self.config.loss.weight_momentum
        norms = {}
        for k in self.terms:
            g = jax.grad(lambda q, k=k: self.loss_terms(q, batch, obs)[0][k])(params)
            norms[k] = jnp.sqrt(sum(jnp.sum(jnp.square(a)) for a in jax.tree.leaves(g["net"])))
        total = sum(norms.values())
        return {k: m * weights[k] + (1 - m) * jax.lax.stop_gradient(total / jnp.maximum(norms[k], 1e-30))
                for k in self.terms}

    # ----------------------------------------------------------------- Adam phase
    def adam(self) -> optax.GradientTransformation:
        """Adam with linear warm-up to lr, then exponential decay; the unknown coefficients (if
        any) get their own Adam (peak ``inverse.coeff_lr``, b2 ``inverse.coeff_b2``, same shape)."""
        a = self.config.adam

        def schedule(lr: float):
            return optax.warmup_exponential_decay_schedule(
                init_value=0.0 if a.warmup_steps else lr, peak_value=lr, warmup_steps=a.warmup_steps,
                transition_steps=a.decay_steps, decay_rate=a.decay_rate)

        net = optax.adam(schedule(a.lr))
        if not self.unknowns:
            return net
        inv = self.config.inverse
        # b2 below 0.999: the early, large residual gradients of a far-off initial guess must not
        # keep the coefficients' steps small for the ~1000 steps a long second-moment memory lasts.
        coeffs = optax.adam(schedule(inv.coeff_lr), b2=inv.coeff_b2)
        return optax.multi_transform({"net": net, "coeffs": coeffs},
                                     lambda p: {"net": jax.tree.map(lambda _: "net", p["net"]),
                                                "coeffs": jax.tree.map(lambda _: "coeffs", p["coeffs"])})

    def init_train_state(self, params: Any, key: jax.Array) -> TrainState:
        """The Adam phase's starting state. Vmappable over (params, key)."""
        return TrainState(params, self.adam().init(params), self.init_weights(_float_dtype(params)), key,
                          jnp.zeros((), jnp.int32))

    def _warm_until(self) -> int:
        """The Adam step where an inverse run's data warm-up ends (0: no warm-up)."""
        if "data" not in self.terms or not self.unknowns:
            return 0
        return int(round(self.config.inverse.data_warmup * self.config.adam.steps))

    def _gate(self, step: jax.Array, dtype) -> jax.Array | None:
        """The data warm-up gate at an Adam step: 0 before ``_warm_until``, then 1 (None: no warm-up)."""
        warm_until = self._warm_until()
        return jnp.where(step >= warm_until, 1.0, 0.0).astype(dtype) if warm_until > 0 else None

    def adam_chunk(self, state: TrainState, n_steps: int, obs: dict[str, jax.Array] | None = None
                   ) -> tuple[TrainState, dict]:
        """n_steps Adam steps, each on fresh collocation points, as one lax.scan. Pure and
        vmappable. Returns the new state and the last step's metrics (loss, loss_<term>,
        weight_<term>, the unknown coefficients' values, ...)."""
        c = self.config
        tx = self.adam()
        dtype = _float_dtype(state.params)
        key, pool_key, scan_key = jax.random.split(state.key, 3)
        pool = self.rad_pool(state.params, pool_key, c.sampling.n_res) if c.sampling.sampler == "rad" else None
        balance = c.loss.weighting == "gradnorm" and len(self.terms) > 1

        def one(carry, k):
            params, opt_state, weights, step = carry
            k_batch, k_drop = jax.random.split(k)
            batch = self.sample(k_batch, c.sampling.n_res, dtype, pool)
            if balance:
                weights = jax.lax.cond(step % c.loss.weight_every == 0,
                                       lambda: self.gradnorm_weights(params, weights, batch, obs), lambda: weights)
            drop = k_drop if c.network.dropout > 0 else None
            (loss, aux), grads = jax.value_and_grad(self.weighted_loss, has_aux=True)(
                params, weights, batch, obs, dropout_key=drop, gate=self._gate(step, dtype))
            updates, opt_state = tx.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            metrics = {"loss": loss, **aux, **{f"weight_{k}": w for k, w in weights.items()},
                       **{n: jnp.exp(params["coeffs"][n]) for n in self.unknowns}}
            return (params, opt_state, weights, step + 1), metrics

        (params, opt_state, weights, step), metrics = jax.lax.scan(
            one, (state.params, state.opt_state, state.weights, state.step), jax.random.split(scan_key, n_steps))
        last = jax.tree.map(lambda a: a[-1], metrics)
        return TrainState(params, opt_state, weights, key, step), last

    # ----------------------------------------------------------------- quasi-Newton phase
    def qn(self) -> optax.GradientTransformationExtraArgs:
        """The second-phase optimizer: dense BFGS ("bfgs"), dense self-scaled Broyden
        ("ssbroyden") or optax L-BFGS ("lbfgs"), all with the zoom (strong Wolfe) line search."""
        q = self.config.qn
        if q.method in UPDATES:
            return bfgs(update_rule=q.method)
        return optax.lbfgs(memory_size=q.memory, linesearch=optax.scale_by_zoom_linesearch(max_linesearch_steps=30))

    def qn_batch(self, params: Any, key: jax.Array) -> dict[str, jax.Array]:
        """The fixed batch of a quasi-Newton round (qn.n_res points; RAD when configured)."""
        c = self.config
        k_pool, k_batch = jax.random.split(key)
        pool = self.rad_pool(params, k_pool, c.qn.n_res) if c.sampling.sampler == "rad" else None
        return self.sample(k_batch, c.qn.n_res, _float_dtype(params), pool)

    def qn_chunk(self, params: Any, opt_state: Any, weights: dict[str, jax.Array], batch: dict[str, jax.Array],
                 key: jax.Array, fresh: jax.Array, n_steps: int, obs: dict[str, jax.Array] | None = None
                 ) -> tuple[Any, Any, dict, dict]:
        """n_steps quasi-Newton steps on a fixed batch (no causal weights: one fixed objective).

        With ``fresh`` true a new batch is drawn from key (``qn_batch``) and the optimizer
        state restarts (the dense methods keep their curvature), so one compiled function serves
        every round. Returns (params, opt_state, batch, metrics)."""
        tx = self.qn()

        def restart():
            state = tx.init(params)
            if self.config.qn.method in UPDATES:
                state = keep_curvature(opt_state, state)
            return self.qn_batch(params, key), state

        batch, opt_state = jax.lax.cond(fresh, restart, lambda: (batch, opt_state))

        def objective(q):
            return self.weighted_loss(q, weights, batch, obs, causal=False)[0]

        value_and_grad = optax.value_and_grad_from_state(objective)

        def one(carry, _):
            q, st = carry
            value, grad = value_and_grad(q, state=st)
            updates, st = tx.update(grad, st, q, value=value, grad=grad, value_fn=objective)
            return (optax.apply_updates(q, updates), st), value

        (params, opt_state), values = jax.lax.scan(one, (params, opt_state), None, length=n_steps)
        metrics = {"loss": optax.tree_utils.tree_get(opt_state, "value")}
        if len(self.terms) > 1:
            metrics.update(self.weighted_loss(params, weights, batch, obs, causal=False)[1])
        else:
            metrics[f"loss_{self.terms[0]}"] = metrics["loss"] / weights[self.terms[0]]
        metrics.update({f"weight_{k}": w for k, w in weights.items()})
        metrics.update({n: jnp.exp(params["coeffs"][n]) for n in self.unknowns})
        return params, opt_state, batch, metrics

    def init_qn(self, params: Any) -> tuple[Any, dict[str, jax.Array]]:
        """Placeholders (opt_state, batch) of the right structure for the first ``qn_chunk``
        call (which passes fresh=True and replaces both). Scalars are made strongly typed, as
        ``qn_chunk`` returns them, so the second chunk does not compile the function again."""
        placeholders = self.qn().init(params), self.qn_batch(params, jax.random.key(0))
        return jax.tree.map(lambda a: jnp.asarray(a, dtype=a.dtype), placeholders)

    # ----------------------------------------------------------------- evaluation
    def predict_grid(self, params: Any, t: np.ndarray, x: np.ndarray, dropout_key: jax.Array | None = None, *,
                     y: np.ndarray | None = None) -> jax.Array:
        """u on the grid t (nt,) x x (nx,): (nt, nx); with y (ny,) (a problem 2-D in space) on
        t x x x y: (nt, nx, ny), one time at a time."""
        dtype = _float_dtype(params)
        if y is None:
            tt, xx = jnp.meshgrid(jnp.asarray(t, dtype), jnp.asarray(x, dtype), indexing="ij")
            return self.apply(params, tt.ravel(), xx.ravel(), dropout_key).reshape(tt.shape)
        xx, yy = jnp.meshgrid(jnp.asarray(x, dtype), jnp.asarray(y, dtype), indexing="ij")
        pts = jnp.stack([xx.ravel(), yy.ravel()], axis=-1)

        def at(ti):
            return self.apply(params, jnp.full((pts.shape[0],), ti, dtype), pts, dropout_key).reshape(xx.shape)

        return jax.lax.map(at, jnp.asarray(t, dtype))


class Programs:
    """Compiled programs of PINNs, keyed by what shapes them (``PINN.program_key``) and a name.

    The caller owns the cache (a trainer keeps one for its runs): ``programs.get(pinn, name,
    make)`` returns the program made by ``make()`` the first time this (key, name) was asked
    for, so runs that differ only in run lengths, logging or checkpoints compile nothing again."""

    def __init__(self, max_entries: int = 256) -> None:
        self._fns: dict[tuple, Callable] = {}
        self.max_entries = max_entries

    def get(self, pinn: PINN, name: Any, make: Callable[[], Callable]) -> Callable:
        key = (pinn.program_key, name)
        fn = self._fns.get(key)
        if fn is None:
            if len(self._fns) >= self.max_entries:
                self._fns.pop(next(iter(self._fns)))
            fn = self._fns[key] = make()
        return fn

    def jit(self, pinn: PINN, method: str, **jit_kw: Any) -> Callable:
        """``jax.jit(getattr(pinn, method), **jit_kw)``, cached by ``get``."""
        return self.get(pinn, (method, tuple(sorted(jit_kw.items()))),
                        lambda: jax.jit(getattr(pinn, method), **jit_kw))

    def __len__(self) -> int:
        return len(self._fns)


def build_pinn(problem: Problem, config: PINNConfig, *, unknowns: tuple[str, ...] = (),
               residual: Callable[..., jax.Array] | None = None, coeffs: dict[str, float] | None = None,
               with_data: bool = False) -> PINN:
    """The PINN of ``problem`` under ``config`` (validated here, before any jit).

    ``unknowns``: names of trainable coefficients (an inverse problem), with ``residual`` (a
    function f(u, t, x, **coeffs)) and ``coeffs`` (every coefficient's default value) when the
    problem's own residual does not name them. ``with_data``: the loss has a data term fitted
    to observations (``obs``)."""
    if not isinstance(config, PINNConfig):
        raise ValueError(f"config must be a PINNConfig, got {type(config).__name__}")
    coeffs = dict(coefficients(problem) if coeffs is None else coeffs)
    unknowns = tuple(unknowns)
    missing = [n for n in unknowns if n not in coeffs]
    if missing:
        raise ValueError(f"unknown coefficient(s) {missing}: the residual has {sorted(coeffs)}")
    if unknowns and not with_data:
        raise ValueError("unknown coefficients need observations (with_data=True)")
    return _build_cached(problem, getattr(problem, "initial", None), getattr(problem, "initial_velocity", None),
                         program_config(config), unknowns, residual or residual_fn(problem),
                         tuple(sorted(coeffs.items())), with_data).with_config(config)


def _check_symmetric(problem: Any, odd: bool, residual: Callable, coeffs: dict[str, float], *fns: Any) -> None:
    """ValueError unless the initial data are odd (even) about the centre c of the domain and the
    residual maps a field's mirror image -u(t, 2c - x) (u(t, 2c - x)) to the mirror image of its
    residual (tried on a smooth field with no symmetry): network.odd_symmetric / even_symmetric."""
    kind, sign = ("odd", -1.0) if odd else ("even", 1.0)
    fix = f"set network.{kind}_symmetric=false"
    xi = np.linspace(0.0, 1.0, 101)
    with x64_if(True):
        for name, f in zip(("initial data", "initial velocity"), fns, strict=True):
            if f is None:
                continue
            a = np.asarray(f(jnp.asarray(xi)), np.float64)
            b = np.asarray(f(jnp.asarray(1.0 - xi)), np.float64)
            scale = max(float(np.max(np.abs(a))), 1e-300)
            if float(np.max(np.abs(a - sign * b))) > 1e-9 * scale:
                raise ValueError(f"{kind}_symmetric needs {name} {kind} about the centre of [{problem.x_min}, "
                                 f"{problem.x_max}]; {problem.name}'s is not ({fix})")
        lo, length, t_end = problem.x_min, problem.length, problem.t_end
        t = jnp.asarray(np.linspace(0.1, 1.0, 7) * t_end)
        b = problem.boundary
        if b.kind != "periodic":  # Dirichlet: u(a) = sign u(b); Neumann: u_x(a) = -sign u_x(b)
            side_sign = sign if b.kind == "dirichlet" else -sign
            left, right = (np.asarray(b.value(side, t), np.float64) for side in ("left", "right"))
            if float(np.max(np.abs(left - side_sign * right))) > 1e-9 * max(float(np.max(np.abs(left))), 1.0):
                raise ValueError(f"{kind}_symmetric needs {b.kind} boundary values that are mirror images of each "
                                 f"other; {problem.name}'s are not ({fix})")

        def field(t, x):  # smooth, no symmetry
            s, th = (x - lo) / length, t / t_end
            return jnp.exp(0.3 * th) * jnp.sin(1.3 * s + 0.4) + 0.5 * s**2 + 0.2 * th * s**3

        def mirrored(t, x):
            return sign * field(t, 2 * lo + length - x)

        x = jnp.asarray(lo + length * np.linspace(0.05, 0.9, 7))
        r = np.asarray(residual(field, t, 2 * lo + length - x, **coeffs), np.float64)
        r_mirror = np.asarray(residual(mirrored, t, x, **coeffs), np.float64)
    if float(np.max(np.abs(r_mirror - sign * r))) > 1e-8 * max(float(np.max(np.abs(r))), 1e-300):
        raise ValueError(f"{kind}_symmetric needs an equation invariant under the mirror image about the centre of "
                         f"[{problem.x_min}, {problem.x_max}]; {problem.name}'s residual is not ({fix})")


@functools.lru_cache(maxsize=32)
def _build_cached(problem: Any, initial: Any, initial_velocity: Any, config: PINNConfig, unknowns: tuple[str, ...],
                  residual: Callable, coeffs: tuple, with_data: bool) -> PINN:
    del initial, initial_velocity  # part of the cache key only: problems compare without their callables
    net = config.network
    kind = problem.boundary.kind
    if kind == "periodic" and net.hard_bc and net.x_modes < 1:
        raise ValueError(f"{problem.name} is periodic: network.hard_bc needs network.x_modes >= 1 (the exact "
                         "periodic embedding of x), or set network.hard_bc=false for a periodicity loss")
    if problem.dims == 2:
        if not (net.hard_ic and net.hard_bc):
            raise ValueError(f"{problem.name} is 2-D in space: its PINN builds the initial and boundary data into "
                             "the network (network.hard_ic and network.hard_bc must stay true)")
        if net.odd_symmetric or net.even_symmetric:
            raise ValueError(f"{problem.name} is 2-D in space: network.odd_symmetric and even_symmetric are for "
                             "1-D problems")
    terms = ["res"]
    if not net.hard_ic:
        terms.append("ic")
        if problem.second_order_in_time:
            terms.append("ic_v")
    if not net.hard_bc or kind == "neumann":
        terms.append("bc")
    if with_data:
        terms.append("data")
    u0, v0 = initial_data(problem)
    if net.odd_symmetric or net.even_symmetric:
        _check_symmetric(problem, net.odd_symmetric, residual, dict(coeffs), u0, v0)
    kink = _slope_jump(problem, config, u0) if net.kink_diffusivity > 0 else 0.0
    proto = PINN(problem, config, None, dict(coeffs), unknowns, tuple(terms), u0, v0, residual)
    with x64_if(net.dtype == "float64"):  # no "float64 not available" warning
        graphdef, _ = nnx.split(nnx.eval_shape(lambda: proto._net(jax.random.key(0), _dtype(net.dtype))))
    sobol = None
    if config.sampling.sampler == "sobol":
        sobol = {n: sampling.sobol_base(n, dims=1 + problem.dims) for n in {config.sampling.n_res, config.qn.n_res}}
    return PINN(problem, config, graphdef, dict(coeffs), unknowns, tuple(terms), u0, v0, residual, sobol, kink)


def _slope_jump(problem: Any, config: PINNConfig, u0: Callable) -> float:
    """u0'(x_min+) - u0'(x_max-), the jump of the initial data's slope across the periodic
    boundary that network.kink_diffusivity smooths; ValueError where the option does not apply."""
    net = config.network
    eps = net.kink_diffusivity
    if problem.boundary.kind != "periodic" or problem.dims != 1 or problem.second_order_in_time:
        raise ValueError(f"network.kink_diffusivity is for periodic 1-D problems first order in time; "
                         f"{problem.name} is not (set network.kink_diffusivity=0)")
    if not (net.hard_ic or net.u0_feature):
        raise ValueError("network.kink_diffusivity smooths the hard initial data or the u0 input: it needs "
                         "network.hard_ic or network.u0_feature")
    width = math.sqrt(4.0 * eps * problem.t_end)
    if width > problem.length / 12:
        raise ValueError(f"network.kink_diffusivity={eps!r} smooths the kink over sqrt(4 eps T) = {width:.3g}, more "
                         f"than 1/12 of the period {problem.length:g} (images across the period are not included)")
    with x64_if(True):
        slope = jax.grad(lambda xi: u0(xi[None])[0])
        jump = float(slope(jnp.asarray(0.0, jnp.float64)) - slope(jnp.asarray(1.0, jnp.float64)))
    return jump / problem.length
