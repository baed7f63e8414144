"""Inverse problems with PINNs: identify PDE coefficients from sparse, noisy observations.

The unknowns are trainable scalars next to the network:

* burgers: ``l1`` and ``l2`` in u_t + l1 u u_x = l2 u_xx (true values 1 and nu),
* heat: ``alpha`` in u_t = alpha u_xx,
* wave: ``c`` in u_tt = c^2 u_xx.

Each is positive by parametrization, value = exp(raw), and raw is trained by Adam with its
own learning rate (``coeff_lr``; a step moves the value by a relative amount, which suits
coefficients of any magnitude). The loss is a data term (mean squared misfit at the
observations) plus the PDE residual on fresh collocation points each step, balanced by
grad-norm weighting as in the forward PINN (Wang, Teng & Perdikaris 2021:
lambda_k = sum_j |grad_theta L_j| / |grad_theta L_k| over the network's parameters theta,
every ``weight_every`` steps, with momentum).

By default (``constraints="hard"``) the known initial and boundary data of the problem are
built into the network (``pdes.pinn``'s hard constraints), so only the coefficients are
unknown; ``constraints="none"`` uses no initial/boundary information, only data and
residual (the setting of Raissi, Perdikaris & Karniadakis 2019, J. Comput. Phys. 378,
section 4.1.2).

``ensemble=M`` trains M members in ONE compiled program (``jax.vmap`` over stacked
parameters and keys): members differ by network initialisation, collocation points,
a log-normal jitter of the initial guesses and, when ``bootstrap`` is on, a bootstrap
resample of the observations (multinomial weights), so the spread of the estimates
reflects the noise in the data as well as the optimisation. The result gives mean and
standard deviation (ddof=1) of each estimate.

Synthetic observations (``synthetic_observations``) sample the exact solution at
``n_obs`` uniform random points of the domain and add Gaussian noise of standard deviation
``noise * std(u_exact at those points)`` (the convention of Raissi et al. 2019, so
``noise=0.01`` is "1% noise").

Observation files are netCDF Datasets with a variable ``u`` either scattered (dim
``obs``, with variables or coordinates ``t`` and ``x`` along it) or gridded (dims
``t``, ``x`` with coordinates ``t``, ``x``).
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import xarray as xr

from pdes.pinn.configs import PINNConfig, convert_value
from pdes.pinn.core import PINN, build_pinn
from pdes.pinn.precision import all_finite, cast_floats, x64_if
from pdes.pinn.residuals import Field, d_t, heat_residual, u_ux_uxx, wave_residual
from pdes.pinn.train import problem_kind
from pdes.problems import Burgers, Heat, Wave, problem_params

__all__ = [
    "INVERSE_PRESETS",
    "UNKNOWNS",
    "IdentifyResult",
    "InverseConfig",
    "burgers_inverse_residual",
    "exact_at_points",
    "get_inverse_config",
    "identify",
    "observations_from_dataset",
    "plot_identify",
    "synthetic_observations",
    "true_coefficients",
]

UNKNOWNS: dict[str, tuple[str, ...]] = {"burgers": ("l1", "l2"), "heat": ("alpha",), "wave": ("c",)}
_LONG_NAMES = {"l1": "advection coefficient l1", "l2": "viscosity l2", "alpha": "diffusivity alpha",
               "c": "wave speed c"}


# ----------------------------------------------------------------------------- residuals


def burgers_inverse_residual(u: Field, t: jax.Array, x: jax.Array, l1: jax.Array, l2: jax.Array) -> jax.Array:
    """u_t + l1 u u_x - l2 u_xx. t, x: (N,) -> (N,)."""
    val, u_x, u_xx = u_ux_uxx(u, t, x)
    return d_t(u)(t, x) + l1 * val * u_x - l2 * u_xx


# Every residual is affine in theta: heat theta = alpha, wave theta = c^2, burgers theta = (l1, l2).
_THETA_TO_COEFFS: dict[str, Callable[[jax.Array], dict[str, jax.Array]]] = {
    "heat": lambda th: {"alpha": th[0]},
    "wave": lambda th: {"c": jnp.sqrt(th[0])},
    "burgers": lambda th: {"l1": th[0], "l2": th[1]},
}


def _residual(kind: str) -> Callable[..., jax.Array]:
    return {"burgers": burgers_inverse_residual, "heat": heat_residual, "wave": wave_residual}[kind]


def _resolve_problem(problem: Any) -> Heat | Wave | Burgers:
    if isinstance(problem, str):
        from pdes.problems import PRESETS

        if problem not in UNKNOWNS:
            raise ValueError(f"identify supports {', '.join(UNKNOWNS)}; got {problem!r}")
        return PRESETS[problem]
    problem_kind(problem)
    return problem


def true_coefficients(problem: Heat | Wave | Burgers) -> dict[str, float]:
    """The coefficients the problem was built with, by unknown name ({"l1": 1, "l2": nu} for Burgers)."""
    kind = problem_kind(problem)
    if kind == "burgers":
        return {"l1": 1.0, "l2": float(problem.nu)}
    if kind == "heat":
        return {"alpha": float(problem.alpha)}
    return {"c": float(problem.c)}


# ----------------------------------------------------------------------------- configs


@dataclass(frozen=True)
class InverseConfig:
    """An inverse run. ``pinn``: the network, collocation, Adam schedule and grad-norm settings
    (a ``PINNConfig``; its hard_ic/hard_bc are set from ``constraints``, its sampler must be
    "uniform" or "sobol"). ``coeff_lr``: peak Adam learning rate of the raw (log) coefficients,
    with the same warm-up/decay shape as the network's. ``init``: the initial guesses
    ((name, value), ...). ``init_spread``: std of the log-normal jitter of the initial guesses
    across ensemble members (member 0 of a single run starts at ``init`` exactly).
    ``bootstrap``: ensemble members see bootstrap resamples of the observations.
    ``average_last``: the reported estimate of a member is the mean of its coefficient
    over this fraction of the final steps (iterate averaging; 0 takes the last value).
    ``data_warmup``: for this fraction of the first steps the network is fitted to the data
    only (the residual's gradient reaches the coefficients, not the network), so the
    coefficients first track the least-squares fit to a network that follows the data
    instead of dragging it toward the initial guess's physics.
    ``lbfgs_steps``: then this many L-BFGS steps (optax, zoom line search) on network and
    coefficients together, in ``lbfgs_dtype``, on ``lbfgs_n_res`` collocation points redrawn
    every ``lbfgs_resample_every`` steps, with the final grad-norm weights of the Adam phase
    (the full-batch optimizer Raissi et al. 2019 used). The estimate is then the final value.
    ``ls_init``: at the end of the data warm-up, set the coefficients to the least-squares fit
    of the residual of the data-fitted network (every residual here is affine in alpha, c^2,
    l1 and l2), which removes most of the dependence on the initial guess."""

    pinn: PINNConfig
    coeff_lr: float = 1e-2
    init: tuple[tuple[str, float], ...] = ()
    constraints: str = "hard"
    init_spread: float = 0.3
    bootstrap: bool = True
    average_last: float = 0.1
    data_warmup: float = 0.2
    lbfgs_steps: int = 0
    lbfgs_n_res: int = 2048
    lbfgs_resample_every: int = 500
    lbfgs_dtype: str = "float64"
    ls_init: bool = False

    def __post_init__(self) -> None:
        if self.constraints not in ("hard", "none"):
            raise ValueError(f"constraints must be 'hard' or 'none', got {self.constraints!r}")
        if self.pinn.sampler not in ("uniform", "sobol"):
            raise ValueError(f"sampler must be 'uniform' or 'sobol' in inverse runs, got {self.pinn.sampler!r}")
        if self.pinn.causal:
            raise ValueError("causal weighting is not supported in inverse runs (set causal=false)")
        for name in ("coeff_lr", "init_spread", "average_last", "data_warmup"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if not self.coeff_lr > 0:
            raise ValueError(f"coeff_lr must be positive, got {self.coeff_lr!r}")
        if self.init_spread < 0:
            raise ValueError(f"init_spread must be >= 0, got {self.init_spread!r}")
        for name in ("average_last", "data_warmup"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)!r}")
        for name in ("lbfgs_steps", "lbfgs_n_res", "lbfgs_resample_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "lbfgs_steps" else 1):
                raise ValueError(f"{name} must be a {'non-negative' if name == 'lbfgs_steps' else 'positive'} "
                                 f"integer, got {value!r}")
        if self.lbfgs_dtype not in ("float32", "float64"):
            raise ValueError(f"lbfgs_dtype must be float32 or float64, got {self.lbfgs_dtype!r}")
        for name, value in self.init:
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"initial guess of {name} must be a positive finite number, got {value!r}")

    @property
    def steps(self) -> int:
        return self.pinn.steps

    def to_dict(self) -> dict[str, Any]:
        return {"pinn": self.pinn.to_dict(), "coeff_lr": self.coeff_lr, "init": dict(self.init),
                "constraints": self.constraints, "init_spread": self.init_spread, "bootstrap": self.bootstrap,
                "average_last": self.average_last, "data_warmup": self.data_warmup,
                "lbfgs_steps": self.lbfgs_steps, "lbfgs_n_res": self.lbfgs_n_res,
                "lbfgs_resample_every": self.lbfgs_resample_every, "lbfgs_dtype": self.lbfgs_dtype,
                "ls_init": self.ls_init}


_NET = PINNConfig(arch="modified_mlp", width=32, depth=3, activation="tanh", rwf=True, hard_ic=True, hard_bc=True,
                  n_res=1024, sampler="sobol", weighting="gradnorm", weight_every=100, weight_momentum=0.9,
                  causal=False, steps=4000, lr=3e-3, warmup_steps=100, decay_rate=0.9, decay_steps=400,
                  log_every=200)

# Default presets. Initial guesses are fixed numbers, not the truth: 1 for alpha and c (a
# factor 10 and 2 away from the presets), and for Burgers l1 = 0.5 and l2 = exp(-6) = 0.0025,
# the starting value of Raissi et al. (2019) (their code: lambda_2 = -6, nu = exp(lambda_2)).
INVERSE_PRESETS: dict[str, InverseConfig] = {
    "heat": InverseConfig(pinn=replace(_NET, arch="mlp", width=32, depth=3, steps=2000, decay_steps=300),
                          coeff_lr=0.05, init=(("alpha", 1.0),), lbfgs_steps=500),
    "wave": InverseConfig(pinn=replace(_NET, width=64, depth=3, fourier_features=32, fourier_scale=2.0, steps=3000,
                                       lr=2e-3),
                          coeff_lr=0.05, init=(("c", 1.0),), lbfgs_steps=1000),
    "burgers": InverseConfig(pinn=replace(_NET, width=32, depth=4, x_modes=1, n_res=1024, steps=2000,
                                          decay_steps=200),
                             coeff_lr=0.05, init=(("l1", 0.5), ("l2", math.exp(-6.0))), lbfgs_steps=2000),
}


_INVERSE_FIELDS = {"coeff_lr": float, "init_spread": float, "average_last": float, "data_warmup": float,
                   "constraints": str, "bootstrap": bool, "lbfgs_steps": int, "lbfgs_n_res": int,
                   "lbfgs_resample_every": int, "lbfgs_dtype": str, "ls_init": bool}


def _parse_inverse(key: str, value: Any) -> Any:
    return convert_value(key, value, _INVERSE_FIELDS[key].__name__)


def get_inverse_config(kind: str, *, base: InverseConfig | None = None, steps: int | None = None,
                       constraints: str | None = None, init: Mapping[str, float] | None = None,
                       overrides: Mapping[str, Any] | None = None) -> InverseConfig:
    """The preset of ``kind`` ("burgers", "heat", "wave") (or ``base``), then ``overrides``
    ({field: value}, values may be strings as from ``--set KEY=VALUE``: InverseConfig fields
    such as coeff_lr, bootstrap, data_warmup, or any PINNConfig field such as width, lr),
    ``init`` ({name: initial guess}), ``constraints`` and ``steps``. Unknown keys raise ValueError."""
    from pdes.pinn.configs import parse_overrides

    if kind not in INVERSE_PRESETS:
        raise ValueError(f"no inverse preset for {kind!r}; known: {', '.join(INVERSE_PRESETS)}")
    cfg = base if base is not None else INVERSE_PRESETS[kind]
    if base is not None and not isinstance(base, InverseConfig):
        raise ValueError(f"config must be an InverseConfig, got {type(base).__name__}")
    overrides = dict(overrides or {})
    mine = {k: _parse_inverse(k, overrides.pop(k)) for k in list(overrides) if k in _INVERSE_FIELDS}
    pinn_changes = parse_overrides(overrides, source="inverse overrides")  # unknown keys: ValueError
    pinn = replace(cfg.pinn, **pinn_changes) if pinn_changes else cfg.pinn
    if init:
        unknown = sorted(set(init) - set(UNKNOWNS[kind]))
        if unknown:
            raise ValueError(f"unknown coefficient(s) {unknown} for {kind}; its unknowns are {list(UNKNOWNS[kind])}")
        merged = dict(cfg.init)
        for k, v in init.items():
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"initial guess of {k} must be a positive finite number, got {v!r}")
            merged[k] = float(v)
        mine["init"] = tuple(merged.items())
    if constraints is not None:
        mine["constraints"] = constraints
    if steps is not None:
        if isinstance(steps, bool) or not isinstance(steps, int) or steps <= 0:
            raise ValueError(f"steps must be a positive integer, got {steps!r}")
        pinn = replace(pinn, steps=steps, log_every=min(pinn.log_every, steps))
    cfg = replace(cfg, pinn=pinn, **mine)
    hard = cfg.constraints == "hard"
    return replace(cfg, pinn=replace(cfg.pinn, hard_ic=hard, hard_bc=hard))


# ----------------------------------------------------------------------------- observations


def exact_at_points(problem: Heat | Wave | Burgers, t: np.ndarray, x: np.ndarray, block: int = 16) -> np.ndarray:
    """The exact solution at scattered points (t_i, x_i): (n,). ``pdes.exact`` works on grids, so
    points go in blocks of ``block``: the block's t x x grid is evaluated and its diagonal kept."""
    from pdes.exact import exact_solution

    t = np.asarray(t, dtype=np.float64).ravel()
    x = np.asarray(x, dtype=np.float64).ravel()
    out = np.empty(t.size)
    for s in range(0, t.size, block):
        grid = exact_solution(problem, t[s : s + block], x[s : s + block])
        out[s : s + block] = np.diagonal(grid)
    return out


def synthetic_observations(problem: Any, n_obs: int = 2000, noise: float = 0.01, seed: int = 0) -> xr.Dataset:
    """``n_obs`` scattered observations of the exact solution at uniform random points of the
    domain, with Gaussian noise of std ``noise * std(u_exact at those points)``.

    Returns a Dataset with variables ``u`` (noisy), ``u_exact``, and ``t``, ``x`` as
    coordinates along dim ``obs``; attrs equation, params (JSON), noise, noise_convention,
    seed and true_<name> for each unknown."""
    problem = _resolve_problem(problem)
    kind = problem_kind(problem)
    _check_count("n_obs", n_obs, minimum=len(UNKNOWNS[kind]))
    if isinstance(noise, bool) or not isinstance(noise, int | float) or not math.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
    _check_count("seed", seed, minimum=0)
    rng = np.random.default_rng(seed)
    t = rng.uniform(0.0, float(problem.t_end), n_obs)
    x = rng.uniform(float(problem.x_min), float(problem.x_max), n_obs)
    u = exact_at_points(problem, t, x)
    sigma = float(noise) * float(np.std(u))
    u_noisy = u + sigma * rng.standard_normal(n_obs)
    attrs: dict[str, Any] = {
        "equation": problem.name, "params": json.dumps(problem_params(problem), default=str), "noise": float(noise),
        "noise_std": sigma, "noise_convention": "u + noise * std(u_exact at the points) * N(0, 1)", "seed": int(seed),
        "method": "synthetic_observations"}
    attrs.update({f"true_{k}": v for k, v in true_coefficients(problem).items()})
    return xr.Dataset(
        {"u": ("obs", u_noisy, {"units": "1", "long_name": "observed solution"}),
         "u_exact": ("obs", u, {"units": "1", "long_name": "exact solution at the observation points"})},
        coords={"t": ("obs", t, {"units": "1", "long_name": "time"}),
                "x": ("obs", x, {"units": "1", "long_name": "space"})},
        attrs=attrs)


def _check_count(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def observations_from_dataset(ds: xr.Dataset, problem: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(t, x, u), each (n,), from an observation Dataset: scattered (``u`` on one dim with ``t``
    and ``x`` along it) or gridded (``u`` over dims ``t``, ``x``). Raises ValueError naming the
    problem: missing variables, shapes that do not match, non-finite values, points outside
    the problem's domain, fewer observations than unknowns."""
    problem = _resolve_problem(problem)
    kind = problem_kind(problem)
    if not isinstance(ds, xr.Dataset):
        raise ValueError(f"observations must be an xarray.Dataset, got {type(ds).__name__}")
    missing = [v for v in ("u", "t", "x") if v not in ds.variables]
    if missing:
        raise ValueError(f"observations need variables u, t and x; missing {', '.join(missing)}")
    u_da, t_da, x_da = ds["u"], ds["t"], ds["x"]
    if set(u_da.dims) == {"t", "x"} and t_da.dims == ("t",) and x_da.dims == ("x",):
        u_da = u_da.transpose("t", "x")
        tt, xx = np.meshgrid(np.asarray(t_da, dtype=np.float64), np.asarray(x_da, dtype=np.float64), indexing="ij")
        t, x, u = tt.ravel(), xx.ravel(), np.asarray(u_da, dtype=np.float64).ravel()
    elif u_da.ndim == 1 and t_da.dims == u_da.dims and x_da.dims == u_da.dims:
        t, x, u = (np.asarray(a, dtype=np.float64) for a in (t_da, x_da, u_da))
    else:
        raise ValueError(
            f"observations must be scattered (u, t, x on one dim) or gridded (u over dims t, x); got u{u_da.dims}, "
            f"t{t_da.dims}, x{x_da.dims}")
    for name, arr in (("u", u), ("t", t), ("x", x)):
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        if bad:
            raise ValueError(f"observations have {bad} non-finite value(s) in {name}")
    n_unknowns = len(UNKNOWNS[kind])
    if u.size < n_unknowns:
        raise ValueError(f"{u.size} observation(s) cannot identify {n_unknowns} unknown(s) {list(UNKNOWNS[kind])}")
    tol = 1e-9
    for name, arr, lo, hi in (("t", t, 0.0, float(problem.t_end)),
                              ("x", x, float(problem.x_min), float(problem.x_max))):
        outside = (arr < lo - tol * max(1.0, abs(lo))) | (arr > hi + tol * max(1.0, abs(hi)))
        if np.any(outside):
            i = int(np.argmax(outside))
            raise ValueError(f"{int(outside.sum())} observation point(s) outside the {problem.name} domain: "
                             f"{name} = {arr[i]:g} is not in [{lo:g}, {hi:g}]")
    return t, x, u


def _truth_from_attrs(ds: xr.Dataset, kind: str) -> dict[str, float] | None:
    truth = {}
    for name in UNKNOWNS[kind]:
        value = ds.attrs.get(f"true_{name}")
        if value is None:
            return None
        truth[name] = float(value)
    return truth


# ----------------------------------------------------------------------------- training


class MemberState(NamedTuple):
    """One member's training state (stacked along a leading axis for an ensemble)."""

    params: Any
    raw: dict[str, jax.Array]
    opt_net: Any
    opt_raw: Any
    weights: dict[str, jax.Array]
    key: jax.Array
    avg: dict[str, jax.Array]


def _coeff_adam(cfg: InverseConfig) -> optax.GradientTransformation:
    c = cfg.pinn
    schedule = optax.warmup_exponential_decay_schedule(
        init_value=0.0 if c.warmup_steps else cfg.coeff_lr, peak_value=cfg.coeff_lr, warmup_steps=c.warmup_steps,
        transition_steps=c.decay_steps, decay_rate=c.decay_rate)
    # b2 = 0.99 (not 0.999): the early, large residual gradients of a far-off initial guess
    # must not keep the step small for the ~1000 steps a long second-moment memory lasts.
    return optax.adam(schedule, b2=0.99)


@dataclass(frozen=True, eq=False)
class _Trainer:
    """Pure, vmappable pieces of an inverse run."""

    pinn: PINN
    cfg: InverseConfig
    names: tuple[str, ...]
    residual: Callable[..., jax.Array]

    def coeffs(self, raw: dict[str, jax.Array]) -> dict[str, jax.Array]:
        return {n: jnp.exp(raw[n]) for n in self.names}

    def terms(self, params: Any, raw: dict[str, jax.Array], batch: dict[str, jax.Array],
              obs: dict[str, jax.Array], w_obs: jax.Array, gate: jax.Array | float = 1.0) -> dict[str, jax.Array]:
        """{"data": weighted mean squared misfit, "res": mean squared residual}. ``gate`` scales
        the residual's gradient with respect to the network (0 in the data warm-up), not its value."""
        if not (isinstance(gate, float) and gate == 1.0):
            params_r = jax.tree.map(lambda p: jax.lax.stop_gradient(p) + gate * (p - jax.lax.stop_gradient(p)), params)
        else:
            params_r = params
        u = self.pinn.field(params_r)
        r = self.residual(u, batch["t"], batch["x"], **self.coeffs(raw))
        pred = self.pinn.apply(params, obs["t"], obs["x"])
        data = jnp.sum(w_obs * (pred - obs["u"]) ** 2) / jnp.sum(w_obs)
        return {"data": data, "res": jnp.mean(r**2)}

    def init(self, key: jax.Array, raw0: dict[str, jax.Array]) -> MemberState:
        k_net, k_run = jax.random.split(key)
        params = self.pinn.init(k_net)
        dtype = jax.tree.leaves(params)[0].dtype
        raw = {n: jnp.asarray(raw0[n], dtype) for n in self.names}
        return MemberState(params, raw, self.pinn.adam().init(params), _coeff_adam(self.cfg).init(raw),
                           {"data": jnp.ones((), dtype), "res": jnp.ones((), dtype)}, k_run,
                           {n: jnp.zeros((), dtype) for n in self.names})

    def balance(self, s: MemberState, batch: dict, obs: dict, w_obs: jax.Array) -> dict[str, jax.Array]:
        """Grad-norm weights over the network parameters, blended with momentum."""
        m = self.cfg.pinn.weight_momentum
        norms = {k: optax.global_norm(jax.grad(lambda q, k=k: self.terms(q, s.raw, batch, obs, w_obs)[k])(s.params))
                 for k in ("data", "res")}
        total = norms["data"] + norms["res"]
        return {k: m * s.weights[k] + (1 - m) * jax.lax.stop_gradient(total / jnp.maximum(norms[k], 1e-30))
                for k in norms}

    def step(self, s: MemberState, obs: dict, w_obs: jax.Array, do_balance: jax.Array,
             avg_on: jax.Array, gate: jax.Array) -> tuple[MemberState, dict[str, jax.Array]]:
        """One Adam step of one member on fresh collocation points."""
        c = self.cfg.pinn
        dtype = jax.tree.leaves(s.params)[0].dtype
        key, k_batch = jax.random.split(s.key)
        batch = self.pinn.sample(k_batch, c.n_res, dtype)
        weights = jax.lax.cond(do_balance, lambda: self.balance(s, batch, obs, w_obs), lambda: s.weights) \
            if c.weighting == "gradnorm" else s.weights

        def loss_fn(params, raw):
            terms = self.terms(params, raw, batch, obs, w_obs, gate)
            return weights["data"] * terms["data"] + weights["res"] * terms["res"], terms

        (loss, terms), (g_net, g_raw) = jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True)(s.params, s.raw)
        upd, opt_net = self.pinn.adam().update(g_net, s.opt_net, s.params)
        params = optax.apply_updates(s.params, upd)
        upd_raw, opt_raw = _coeff_adam(self.cfg).update(g_raw, s.opt_raw, s.raw)
        raw = optax.apply_updates(s.raw, upd_raw)
        avg = {n: s.avg[n] + jnp.where(avg_on, jnp.exp(raw[n]), 0.0) for n in self.names}
        metrics = {"loss": loss, "loss_data": terms["data"], "loss_res": terms["res"],
                   "weight_data": weights["data"], "weight_res": weights["res"],
                   **{n: jnp.exp(raw[n]) for n in self.names}}
        return MemberState(params, raw, opt_net, opt_raw, weights, key, avg), metrics

    def chunk(self, states: MemberState, step0: jax.Array, obs: dict, w_obs: jax.Array, avg_from: jax.Array,
              warm_until: jax.Array, n_steps: int) -> tuple[MemberState, dict[str, jax.Array]]:
        """n_steps steps of every member (leading axis of ``states`` and ``w_obs``) in one
        lax.scan; the grad-norm switch and the step counter are shared (unbatched), so
        lax.cond stays a real branch under vmap. Returns the last step's metrics, (M,) each."""
        every = self.cfg.pinn.weight_every
        member_step = jax.vmap(self.step, in_axes=(0, None, 0, None, None, None))
        dtype = jax.tree.leaves(states.params)[0].dtype

        def one(carry, i):
            s = carry
            step = step0 + i
            gate = jnp.where(step >= warm_until, 1.0, 0.0).astype(dtype)
            s, metrics = member_step(s, obs, w_obs, step % every == 0, step >= avg_from, gate)
            return s, metrics

        states, metrics = jax.lax.scan(one, states, jnp.arange(n_steps))
        return states, jax.tree.map(lambda a: a[-1], metrics)


    def project(self, s: MemberState, key: jax.Array, kind: str) -> MemberState:
        """Coefficients set to the least-squares fit of the residual r = a + B theta of the
        current network on a fresh batch (theta: alpha, c^2 or (l1, l2)); a fit <= 0 keeps the
        current value. The coefficients' Adam state restarts."""
        dtype = jax.tree.leaves(s.params)[0].dtype
        batch = self.pinn.sample(key, self.cfg.pinn.n_res, dtype)
        u = self.pinn.field(s.params)
        to_coeffs = _THETA_TO_COEFFS[kind]
        k = len(self.names)

        def res(theta):
            return jax.lax.stop_gradient(self.residual(u, batch["t"], batch["x"], **to_coeffs(theta)))

        a = res(jnp.zeros((k,), dtype))
        b = jnp.stack([res(jnp.eye(k, dtype=dtype)[i]) - a for i in range(k)], axis=1)  # (N, k)
        theta = jnp.linalg.solve(b.T @ b, -(b.T @ a))
        fitted = to_coeffs(theta)
        raw = {n: jnp.where(theta[i] > 0, jnp.log(jnp.maximum(fitted[n], 1e-30)), s.raw[n])
               for i, n in enumerate(self.names)}
        return s._replace(raw=raw, opt_raw=_coeff_adam(self.cfg).init(raw))

    # ------------------------------------------------------------- L-BFGS phase
    def lbfgs(self) -> optax.GradientTransformationExtraArgs:
        return optax.lbfgs(memory_size=20, linesearch=optax.scale_by_zoom_linesearch(max_linesearch_steps=30))

    def lbfgs_batch(self, key: jax.Array, dtype) -> dict[str, jax.Array]:
        return self.pinn.sample(key, self.cfg.lbfgs_n_res, dtype)

    def lbfgs_member(self, q: tuple[Any, dict], opt_state: Any, weights: dict, batch: dict, obs: dict,
                     w_obs: jax.Array, n_steps: int) -> tuple[tuple[Any, dict], Any, dict[str, jax.Array]]:
        """n_steps L-BFGS steps of one member on q = (params, raw) with a fixed batch."""
        tx = self.lbfgs()

        def objective(qq):
            terms = self.terms(qq[0], qq[1], batch, obs, w_obs)
            return weights["data"] * terms["data"] + weights["res"] * terms["res"]

        value_and_grad = optax.value_and_grad_from_state(objective)

        def one(carry, _):
            qq, st = carry
            value, grad = value_and_grad(qq, state=st)
            updates, st = tx.update(grad, st, qq, value=value, grad=grad, value_fn=objective)
            return (optax.apply_updates(qq, updates), st), value

        (q, opt_state), _ = jax.lax.scan(one, (q, opt_state), None, length=n_steps)
        terms = self.terms(q[0], q[1], batch, obs, w_obs)
        metrics = {"loss": weights["data"] * terms["data"] + weights["res"] * terms["res"],
                   "loss_data": terms["data"], "loss_res": terms["res"], "weight_data": weights["data"],
                   "weight_res": weights["res"], **{n: jnp.exp(q[1][n]) for n in self.names}}
        return q, opt_state, metrics


# ----------------------------------------------------------------------------- result


@dataclass
class IdentifyResult:
    """What ``identify`` returns. ``dataset``: the reconstructed field (u = ensemble mean,
    u_true, u_std and u_samples for ensembles, observations obs_t/obs_x/obs_u, training
    history history_* over dim step). ``estimates``/``std``: per unknown (std is 0 for a
    single run); ``members``: (M,) per unknown; ``truth``/``rel_error``: None when unknown."""

    dataset: xr.Dataset
    estimates: dict[str, float]
    std: dict[str, float]
    members: dict[str, np.ndarray]
    truth: dict[str, float] | None
    rel_error: dict[str, float] | None
    wall_time_s: float
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (what ``python -m pdes identify --json`` prints)."""
        ds = self.dataset
        out: dict[str, Any] = {
            "equation": ds.attrs.get("equation"), "unknowns": list(self.estimates), "estimates": self.estimates,
            "std": self.std, "members": {k: v.tolist() for k, v in self.members.items()}, "truth": self.truth,
            "rel_error": self.rel_error, "ensemble": int(ds.attrs.get("ensemble", 1)),
            "n_obs": int(ds.attrs.get("n_obs", 0)), "noise": ds.attrs.get("noise"),
            "steps": int(ds.attrs.get("steps_done", 0)), "rel_l2": float(ds.attrs.get("rel_l2", math.nan)),
            "wall_time_s": self.wall_time_s}
        if self.truth is not None and len(self.members[next(iter(self.members))]) > 1:
            out["within_2std"] = {k: bool(abs(self.estimates[k] - self.truth[k]) <= 2 * self.std[k])
                                  for k in self.estimates}
        out.update(self.extra)
        return json.loads(json.dumps(out, default=float))


# ----------------------------------------------------------------------------- identify


def identify(problem: Any, observations: xr.Dataset | str | Path | None = None, *, n_obs: int = 2000,
             noise: float = 0.01, seed: int = 0, ensemble: int = 1, steps: int | None = None,
             config: InverseConfig | None = None, init: Mapping[str, float] | None = None,
             constraints: str | None = None, bootstrap: bool | None = None,
             overrides: Mapping[str, Any] | None = None, nx: int = 256, nt: int = 100,
             progress: bool = True, callback: Callable[[dict[str, Any]], None] | None = None) -> IdentifyResult:
    """Identify the unknown coefficients of ``problem`` (a preset name or a Heat/Wave/Burgers)
    from ``observations`` (a Dataset or a path to a netCDF file), or from ``n_obs`` synthetic
    observations with ``noise`` (relative to the solution's std) drawn with ``seed``.

    ``ensemble`` M > 1 trains M members in one vmapped program and reports mean and std.
    ``steps``, ``init`` ({name: guess}), ``constraints`` ("hard" or "none"), ``bootstrap`` and
    ``overrides`` (see ``get_inverse_config``) override the preset (``config``, default ``INVERSE_PRESETS[kind]``). The field is
    reconstructed on nt x nx points of the domain. Raises ValueError on bad input (before
    any compilation)."""
    start = time.perf_counter()
    cpu0 = time.process_time()
    problem = _resolve_problem(problem)
    kind = problem_kind(problem)
    names = UNKNOWNS[kind]
    _check_count("ensemble", ensemble, minimum=1)
    _check_count("seed", seed, minimum=0)
    _check_count("nx", nx, minimum=2)
    _check_count("nt", nt, minimum=2)
    ov = dict(overrides or {})
    if bootstrap is not None:
        ov["bootstrap"] = bool(bootstrap)
    cfg = get_inverse_config(kind, base=config, steps=steps, constraints=constraints, init=init, overrides=ov)
    missing = [n for n in names if n not in dict(cfg.init)]
    if missing:
        raise ValueError(f"config has no initial guess for {missing}")

    # observations
    if observations is None:
        obs_ds = synthetic_observations(problem, n_obs=n_obs, noise=noise, seed=seed)
        truth: dict[str, float] | None = true_coefficients(problem)
        source = "synthetic"
    else:
        if isinstance(observations, str | Path):
            from pdes.solution import read_dataset

            obs_ds = read_dataset(observations)
            source = str(observations)
        else:
            obs_ds = observations
            source = "dataset"
        truth = _truth_from_attrs(obs_ds, kind)
    t_obs, x_obs, u_obs = observations_from_dataset(obs_ds, problem)
    n = u_obs.size

    # members: initial guesses, bootstrap weights, keys
    rng = np.random.default_rng([seed, 1])
    init0 = np.array([math.log(dict(cfg.init)[k]) for k in names])
    jitter = rng.normal(0.0, cfg.init_spread, (ensemble, len(names))) if ensemble > 1 else np.zeros((1, len(names)))
    raw0 = {k: init0[i] + jitter[:, i] for i, k in enumerate(names)}
    if ensemble > 1 and cfg.bootstrap:
        w_obs = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(ensemble)]).astype(np.float64)
    else:
        w_obs = np.ones((ensemble, n))

    pinn = build_pinn(problem, cfg.pinn)
    trainer = _Trainer(pinn, cfg, names, _residual(kind))
    t_grid = np.linspace(0.0, float(problem.t_end), nt)
    x_grid = np.linspace(float(problem.x_min), float(problem.x_max), nx)
    u_ref = None
    if truth is not None:
        from pdes.exact import exact_solution

        u_ref = np.asarray(exact_solution(_with_truth(problem, truth), t_grid, x_grid), dtype=np.float64)

    c = cfg.pinn
    dtype = jnp.float64 if c.dtype == "float64" else jnp.float32
    history: list[dict[str, Any]] = []
    total = c.steps + cfg.lbfgs_steps
    from tqdm.auto import tqdm

    bar = tqdm(total=total, disable=not progress, file=sys.stderr, desc=f"identify {kind}", dynamic_ncols=True,
               leave=False)
    step = 0
    stopped = "completed"

    def record(metrics: dict[str, Any], params: Any, predict: Callable, phase: int) -> None:
        row: dict[str, Any] = {"step": step, "phase": phase, **{m: np.asarray(v) for m, v in metrics.items()}}
        if u_ref is not None:
            u_mean = np.asarray(predict(params), dtype=np.float64).mean(axis=0)
            row["rel_l2"] = float(np.linalg.norm(u_mean - u_ref) / np.linalg.norm(u_ref))
        row["wall_time_s"] = time.perf_counter() - start
        history.append(row)
        bar.set_postfix({nm: f"{float(np.mean(metrics[nm])):.4g}" for nm in names}, refresh=False)
        if callback is not None:
            callback(row)

    try:
        # ------------------------------------------------------------ Adam (one vmapped program)
        with x64_if(c.dtype == "float64"):
            keys = jax.random.split(jax.random.key(seed), ensemble)
            states = jax.jit(jax.vmap(trainer.init))(keys, {k: jnp.asarray(v, dtype) for k, v in raw0.items()})
            obs = {"t": jnp.asarray(t_obs, dtype), "x": jnp.asarray(x_obs, dtype), "u": jnp.asarray(u_obs, dtype)}
            w = jnp.asarray(w_obs, dtype)
            chunk = jax.jit(trainer.chunk, static_argnums=6)
            predict = jax.jit(jax.vmap(lambda p: pinn.predict_grid(p, t_grid, x_grid)))
            avg_from = c.steps - int(round(cfg.average_last * c.steps))
            n_avg = c.steps - avg_from
            warm_until = int(round(cfg.data_warmup * c.steps))
            project = jax.jit(jax.vmap(lambda st, kk: trainer.project(st, kk, kind)))
            while step < c.steps:
                if cfg.ls_init and step == warm_until and step > 0:
                    states = project(states, jax.random.split(jax.random.key(seed + 104729), ensemble))
                k = min(c.log_every, c.steps - step)
                if cfg.ls_init and step < warm_until:
                    k = min(k, warm_until - step)
                new_states, metrics = chunk(states, jnp.asarray(step, jnp.int32), obs, w,
                                            jnp.asarray(avg_from, jnp.int32), jnp.asarray(warm_until, jnp.int32), k)
                if not (np.all(np.isfinite(np.asarray(metrics["loss"]))) and all_finite(new_states)):
                    stopped = f"non-finite loss in steps {step + 1}..{step + k}; kept the state of step {step}"
                    break
                states = new_states
                step += k
                bar.update(k)
                record(metrics, states.params, predict, 0)
            params, raw, weights = states.params, states.raw, states.weights
            if step == c.steps and n_avg > 0 and cfg.lbfgs_steps == 0:
                members = {k: np.asarray(states.avg[k], dtype=np.float64) / n_avg for k in names}
            else:
                members = {k: np.exp(np.asarray(raw[k], dtype=np.float64)) for k in names}
            u_members = np.asarray(predict(params), dtype=np.float64)

        # ------------------------------------------------------------ L-BFGS (vmapped over members)
        if stopped == "completed" and cfg.lbfgs_steps > 0:
            lb64 = cfg.lbfgs_dtype == "float64" or c.dtype == "float64"
            lb_dtype = jnp.float64 if lb64 else jnp.float32
            with x64_if(lb64):
                q = (cast_floats(params, lb_dtype), cast_floats(raw, lb_dtype))
                weights = cast_floats(weights, lb_dtype)
                obs = {kk: jnp.asarray(v, lb_dtype) for kk, v in obs.items()}
                w = jnp.asarray(w_obs, lb_dtype)
                lb_chunk = jax.jit(jax.vmap(trainer.lbfgs_member, in_axes=(0, 0, 0, 0, None, 0, None)),
                                   static_argnums=6)
                lb_init = jax.jit(jax.vmap(lambda qq: trainer.lbfgs().init(qq)))
                lb_batch = jax.jit(jax.vmap(lambda kk: trainer.lbfgs_batch(kk, lb_dtype)))
                predict = jax.jit(jax.vmap(lambda p: pinn.predict_grid(p, t_grid, x_grid)))
                base = jax.random.key(seed + 7919)
                batch = opt_state = None
                while step < total:
                    kk = step - c.steps
                    if batch is None or kk % cfg.lbfgs_resample_every == 0:
                        batch = lb_batch(jax.random.split(jax.random.fold_in(base, step), ensemble))
                        opt_state = lb_init(q)
                    n = min(c.log_every, total - step, cfg.lbfgs_resample_every - kk % cfg.lbfgs_resample_every)
                    new_q, new_opt, metrics = lb_chunk(q, opt_state, weights, batch, obs, w, n)
                    if not (np.all(np.isfinite(np.asarray(metrics["loss"]))) and all_finite(new_q)):
                        stopped = (f"non-finite loss in the L-BFGS steps {step + 1}..{step + n}; kept the state "
                                   f"of step {step}")
                        break
                    q, opt_state = new_q, new_opt
                    step += n
                    bar.update(n)
                    record(metrics, q[0], predict, 1)
                members = {k: np.exp(np.asarray(q[1][k], dtype=np.float64)) for k in names}
                u_members = np.asarray(predict(q[0]), dtype=np.float64)
    finally:
        bar.close()
    if stopped != "completed":
        print(f"pdes: warning: NaN guard: {stopped}", file=sys.stderr)
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu0

    estimates = {k: float(np.mean(members[k])) for k in names}
    std = {k: float(np.std(members[k], ddof=1)) if ensemble > 1 else 0.0 for k in names}
    rel_error = {k: abs(estimates[k] - truth[k]) / abs(truth[k]) for k in names} if truth is not None else None
    u_mean = u_members.mean(axis=0)
    rel_l2 = float(np.linalg.norm(u_mean - u_ref) / np.linalg.norm(u_ref)) if u_ref is not None else math.nan
    ds = _result_dataset(problem, kind, cfg, seed, wall, t_grid, x_grid, u_members, u_ref, history, names,
                         estimates, std, truth, rel_error, (t_obs, x_obs, u_obs), rel_l2, step, stopped, source,
                         obs_ds.attrs.get("noise", noise if observations is None else None), ensemble)
    ds.attrs["cpu_time_s"] = cpu
    return IdentifyResult(ds, estimates, std, members, truth, rel_error, wall, {"cpu_time_s": cpu})


def _with_truth(problem: Heat | Wave | Burgers, truth: Mapping[str, float]) -> Heat | Wave | Burgers:
    """The problem with the true coefficients of an observation file (u_true is then its exact solution)."""
    if isinstance(problem, Burgers):
        if abs(truth["l1"] - 1.0) > 1e-12:  # l1 != 1 is not a Burgers preset: no exact solution here
            return problem
        return replace(problem, nu=truth["l2"])
    if isinstance(problem, Heat):
        return replace(problem, alpha=truth["alpha"])
    return replace(problem, c=truth["c"])


def _result_dataset(problem, kind, cfg, seed, wall, t_grid, x_grid, u_members, u_ref, history, names, estimates, std,
                    truth, rel_error, obs, rel_l2, steps_done, stopped, source, noise, ensemble) -> xr.Dataset:
    from pdes.solution import solution_dataset

    m = u_members.shape[0]
    attrs: dict[str, Any] = {"unknowns": ",".join(names), "ensemble": m, "n_obs": int(obs[2].size),
                             "observations": source, "rel_l2": rel_l2, "steps_done": int(steps_done),
                             "stopped": stopped, "constraints": cfg.constraints}
    if noise is not None:
        attrs["noise"] = float(noise)
    for k in names:
        attrs[f"estimate_{k}"] = estimates[k]
        attrs[f"estimate_{k}_std"] = std[k]
        if truth is not None:
            attrs[f"true_{k}"] = truth[k]
            attrs[f"rel_error_{k}"] = rel_error[k]
    ds = solution_dataset(
        u_members.mean(axis=0), t=t_grid, x=x_grid, equation=problem.name, method="pinn_inverse",
        params=problem_params(problem), config={"kind": kind, **cfg.to_dict()}, seed=seed, wall_time_s=wall,
        u_true=u_ref, u_std=u_members.std(axis=0, ddof=1) if m > 1 else None, u_samples=u_members if m > 1 else None,
        attrs=attrs)
    t_obs, x_obs, u_obs = obs
    data: dict[str, xr.DataArray] = {
        "obs_t": xr.DataArray(t_obs, dims=("obs",), attrs={"units": "1", "long_name": "observation time"}),
        "obs_x": xr.DataArray(x_obs, dims=("obs",), attrs={"units": "1", "long_name": "observation position"}),
        "obs_u": xr.DataArray(u_obs, dims=("obs",), attrs={"units": "1", "long_name": "observed solution"}),
    }
    if history:
        steps = np.array([h["step"] for h in history], dtype=np.float64)
        scalar = ["loss", "loss_data", "loss_res", "weight_data", "weight_res"]
        for key in scalar:
            data[f"history_{key}"] = xr.DataArray(np.array([np.mean(h[key]) for h in history]), dims=("step",),
                                                  attrs={"long_name": f"{key} (mean over members)"})
        for k in names:
            vals = np.array([np.asarray(h[k], dtype=np.float64) for h in history])  # (steps, M)
            data[f"history_{k}"] = xr.DataArray(vals.mean(axis=1), dims=("step",),
                                                attrs={"long_name": f"estimate of {_LONG_NAMES[k]} (member mean)"})
            if m > 1:
                data[f"history_{k}_std"] = xr.DataArray(vals.std(axis=1, ddof=1), dims=("step",),
                                                        attrs={"long_name": f"ensemble std of {k}"})
                data[f"history_{k}_members"] = xr.DataArray(vals, dims=("step", "member"),
                                                            attrs={"long_name": f"{k} per member"})
        for key in ("rel_l2", "wall_time_s"):
            if key in history[0]:
                data[f"history_{key}"] = xr.DataArray(np.array([h[key] for h in history], dtype=np.float64),
                                                      dims=("step",))
        ds = ds.assign_coords(step=xr.DataArray(steps, dims=("step",),
                                                attrs={"units": "1", "long_name": "training step"}))
    return ds.assign(data)


# ----------------------------------------------------------------------------- plot


def plot_identify(ds: xr.Dataset, path: str | Path) -> Path:
    """Figure of an identify result: reconstructed field with the observation points, error
    against u_true (when present), and the estimate trajectories (with the ensemble band and
    the true values). Written atomically; returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pdes.plotting import save_figure

    names = [n for n in str(ds.attrs.get("unknowns", "")).split(",") if n]
    has_true = "u_true" in ds
    ncols = 2 + (1 if has_true else 0)
    fig, axes = plt.subplots(1, ncols + len(names) - 1, figsize=(4.2 * (ncols + len(names) - 1), 3.6),
                             layout="constrained")
    axes = np.atleast_1d(axes)
    ax = axes[0]
    mesh = ax.pcolormesh(ds.t.values, ds.x.values, ds.u.values.T, shading="auto", cmap="RdBu_r")
    ax.scatter(ds.obs_t.values, ds.obs_x.values, s=1, c="k", alpha=0.3, linewidths=0)
    ax.set_xlabel("t")
    ax.set_ylabel("x")
    ax.set_title(f"{ds.attrs.get('equation')}: reconstructed u ({int(ds.attrs.get('n_obs', 0))} obs)")
    fig.colorbar(mesh, ax=ax)
    col = 1
    if has_true:
        from matplotlib.colors import LogNorm

        err = np.abs(ds.u.values - ds.u_true.values).T
        floor = max(float(err.max()) * 1e-6, 1e-12)
        mesh = axes[1].pcolormesh(ds.t.values, ds.x.values, np.maximum(err, floor), shading="auto",
                                  norm=LogNorm(vmin=floor, vmax=max(float(err.max()), floor * 10)), cmap="magma")
        axes[1].set_xlabel("t")
        axes[1].set_ylabel("x")
        axes[1].set_title(f"|u - u_true|, rel. L2 {float(ds.attrs.get('rel_l2', math.nan)):.2e}")
        fig.colorbar(mesh, ax=axes[1])
        col = 2
    for j, k in enumerate(names):
        ax = axes[col + j]
        if f"history_{k}" in ds:
            steps = ds.step.values
            if f"history_{k}_members" in ds:
                ax.plot(steps, ds[f"history_{k}_members"].values, color="C0", alpha=0.25, lw=0.8)
            ax.plot(steps, ds[f"history_{k}"].values, color="C0", lw=2, label="estimate (mean)")
        if f"true_{k}" in ds.attrs:
            ax.axhline(float(ds.attrs[f"true_{k}"]), color="k", ls="--", lw=1, label="true")
        est = float(ds.attrs[f"estimate_{k}"])
        sd = float(ds.attrs.get(f"estimate_{k}_std", 0.0))
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(f"{k} = {est:.5g}" + (f" ± {sd:.2g}" if sd > 0 else ""))
        ax.legend(fontsize=8)
    try:
        return save_figure(fig, path)
    finally:
        plt.close(fig)
