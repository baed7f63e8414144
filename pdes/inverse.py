"""Inverse problems with PINNs: identify PDE coefficients from sparse, noisy observations.

The unknowns are trainable coefficients of the PINN core (``pdes.pinn.build_pinn(...,
unknowns=...)``): one parameter pytree {"net": ..., "coeffs": {name: log value}} trained by
the same phases and chunked driver as a forward PINN (``pdes.pinn.phases``):

* burgers: ``l1`` and ``l2`` in u_t + l1 u u_x = l2 u_xx (true values 1 and nu),
* heat: ``alpha`` in u_t = alpha u_xx,
* wave: ``c`` in u_tt = c^2 u_xx.

Each is positive by parametrization, value = exp(raw). The loss is a data term (mean squared
misfit at the observations) plus the PDE residual on fresh collocation points each step,
balanced by grad-norm weighting over the network's parameters (Wang, Teng & Perdikaris 2021).
Adam trains network and coefficients (the coefficients with their own learning rate
``inverse.coeff_lr``); for the first ``inverse.data_warmup`` of the Adam steps the residual's
gradient reaches only the coefficients, so the network first follows the data. Then the
quasi-Newton phase (dense self-scaled Broyden in float64 by default, ``qn.method``) minimises
the same loss over network and coefficients together.

By default (``constraints="hard"``) the known initial and boundary data are built into the
network, so only the coefficients are unknown; ``constraints="none"`` uses no initial/boundary
information, only data and residual (the setting of Raissi, Perdikaris & Karniadakis 2019,
J. Comput. Phys. 378, section 4.1.2).

``ensemble=M`` trains M members in ONE compiled program (stacked parameters): members differ
by network initialisation, collocation points, a log-normal jitter of the initial guesses
(``inverse.init_spread``) and, when ``inverse.bootstrap`` is on, a bootstrap resample of the
observations, so the spread of the estimates reflects the noise in the data as well as the
optimisation. The result gives mean and standard deviation (ddof=1) of each estimate.

Synthetic observations (``synthetic_observations``) sample the exact solution at ``n_obs``
uniform random points of the domain and add Gaussian noise of standard deviation
``noise * std(u_exact at those points)`` (the convention of Raissi et al. 2019, so
``noise=0.01`` is "1% noise").

Observation files are netCDF Datasets with a variable ``u`` either scattered (dim ``obs``,
with variables or coordinates ``t`` and ``x`` along it) or gridded (dims ``t``, ``x`` with
coordinates ``t``, ``x``).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from pdes.pinn.configs import (
    AdamConfig,
    InverseConfig,
    NetworkConfig,
    PINNConfig,
    QNConfig,
    RunConfig,
    SamplingConfig,
    parse_overrides,
)
from pdes.pinn.core import build_pinn
from pdes.pinn.phases import PROGRAMS, default_member_batch, fit, member_mesh, shard_members
from pdes.pinn.precision import uses_float64, x64_if
from pdes.pinn.residuals import Field, d_t, heat_residual, residual_of, u_ux_uxx, wave_residual
from pdes.pinn.train import checkpoint_identity, problem_kind
from pdes.problems import PDE, Burgers, Heat, problem_params
from plumbing.distributed import gathered

__all__ = [
    "INVERSE_PRESETS",
    "UNKNOWNS",
    "IdentifyResult",
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


def _residual(kind: str) -> Callable[..., jax.Array]:
    return {"burgers": burgers_inverse_residual, "heat": heat_residual, "wave": wave_residual}[kind]


def _resolve_problem(problem: Any) -> Any:
    if isinstance(problem, str):
        from pdes.problems import PRESETS

        if problem not in UNKNOWNS:
            raise ValueError(f"identify supports {', '.join(UNKNOWNS)} and pdes.PDE problems with unknowns; "
                             f"got {problem!r}")
        return PRESETS[problem]
    problem_kind(problem)
    unknowns_of(problem)
    return problem


def unknowns_of(problem: Any) -> tuple[str, ...]:
    """The coefficients an inverse run identifies: the presets' (UNKNOWNS), a PDE's ``unknowns``."""
    if isinstance(problem, PDE):
        if not problem.unknowns:
            raise ValueError(f"{problem.name} names no unknowns: give the PDE unknowns=(...) to identify")
        return problem.unknowns
    if problem.name not in UNKNOWNS:
        raise ValueError(f"identify supports {', '.join(UNKNOWNS)} and pdes.PDE problems with unknowns; "
                         f"got {problem.name!r}")
    return UNKNOWNS[problem.name]


def _problem_residual(problem: Any) -> Callable[..., jax.Array]:
    return residual_of(problem.equation) if isinstance(problem, PDE) else _residual(problem.name)


def true_coefficients(problem: Any) -> dict[str, float]:
    """The coefficients the problem was built with, by unknown name ({"l1": 1, "l2": nu} for Burgers)."""
    kind = problem_kind(problem)
    if isinstance(problem, PDE):
        values = problem.coefficients()
        return {n: values[n] for n in unknowns_of(problem)}
    if kind == "burgers":
        return {"l1": 1.0, "l2": float(problem.nu)}
    if kind == "heat":
        return {"alpha": float(problem.alpha)}
    return {"c": float(problem.c)}


# ----------------------------------------------------------------------------- configs

CONSTRAINTS = ("hard", "none")

# Default presets: small float64 networks with the known initial/boundary data built in, Adam,
# then the dense self-scaled Broyden method (Urban, Stefanou & Pons 2025) on network and
# coefficients together. Initial guesses are fixed numbers, not the truth: 1 for alpha and c
# (a factor 10 and 2 away from the presets), and for Burgers l1 = 0.5 and l2 = exp(-6) = 0.0025,
# the starting value of Raissi et al. (2019) (their code: lambda_2 = -6, nu = exp(lambda_2)).
# Errors and times over seeds: benchmarks/results/inverse.md.
INVERSE_PRESETS: dict[str, PINNConfig] = {
    "heat": PINNConfig(
        network=NetworkConfig(arch="mlp", width=32, depth=3, x_modes=2, dtype="float64"),
        sampling=SamplingConfig(n_res=1024, sampler="sobol"),
        adam=AdamConfig(steps=1000, lr=3e-3, decay_steps=300), run=RunConfig(log_every=250),
        qn=QNConfig(method="ssbroyden", steps=1000, n_res=2048, resample_every=1000),
        # the smooth heat solution overfits 1 % noise unless the physics holds it: a heavy residual
        # weight in the quasi-Newton phase brings alpha to the oracle estimate (benchmarks/results/inverse.md)
        inverse=InverseConfig(init=(("alpha", 1.0),), res_weight=1000.0)),
    "wave": PINNConfig(
        network=NetworkConfig(arch="mlp", width=32, depth=3, x_modes=1, fourier_features=16, fourier_scale=2.0,
                              rwf=False, dtype="float64"),
        sampling=SamplingConfig(n_res=1024, sampler="sobol"),
        adam=AdamConfig(steps=1500, lr=2e-3, decay_steps=500), run=RunConfig(log_every=250),
        qn=QNConfig(method="ssbroyden", steps=1000, n_res=2048, resample_every=1000),
        inverse=InverseConfig(init=(("c", 1.0),))),
    "burgers": PINNConfig(
        network=NetworkConfig(arch="mlp", width=20, depth=3, rwf=False, odd_symmetric=True, dtype="float64"),
        sampling=SamplingConfig(n_res=1024, sampler="sobol"),
        adam=AdamConfig(steps=1000, lr=3e-3, decay_steps=300), run=RunConfig(log_every=250),
        qn=QNConfig(method="ssbroyden", steps=2000, n_res=4096, resample_every=1000),
        inverse=InverseConfig(init=(("l1", 0.5), ("l2", math.exp(-6.0))))),
}


def get_inverse_config(kind: Any, *, base: PINNConfig | None = None, steps: int | None = None,
                       constraints: str | None = None, init: Mapping[str, float] | None = None,
                       overrides: Mapping[str, Any] | None = None) -> PINNConfig:
    """The preset of ``kind`` ("burgers", "heat", "wave") (or ``base``), then ``overrides``
    ({"section.field": value}, values may be strings as from ``--set KEY=VALUE``, e.g.
    "inverse.coeff_lr", "qn.steps", "network.width"), ``init`` ({name: initial guess}),
    ``constraints`` ("hard": initial/boundary data built in; "none": data and residual only) and
    ``steps`` (Adam steps). ``kind`` may also be a ``pdes.PDE`` with unknowns (its base config
    is ``pdes.pinn.configs.generic_config``; give its initial guesses with ``init``). Unknown
    keys raise ValueError."""
    from pdes.pinn.configs import generic_config

    problem = kind if isinstance(kind, PDE) else None
    names = unknowns_of(problem) if problem is not None else UNKNOWNS.get(kind)
    kind = problem.name if problem is not None else kind
    if problem is None and kind not in INVERSE_PRESETS:
        raise ValueError(f"no inverse preset for {kind!r}; known: {', '.join(INVERSE_PRESETS)}")
    if base is not None and not isinstance(base, PINNConfig):
        raise ValueError(f"config must be a PINNConfig, got {type(base).__name__}")
    cfg = base if base is not None else (INVERSE_PRESETS[kind] if problem is None else generic_config(problem))
    changes = parse_overrides(overrides, source="identify overrides")
    if init:
        unknown = sorted(set(init) - set(names))
        if unknown:
            raise ValueError(f"unknown coefficient(s) {unknown} for {kind}; its unknowns are {list(names)}")
        merged = dict(changes.get("inverse.init", cfg.inverse.init))
        for k, v in init.items():
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"initial guess of {k} must be a positive finite number, got {v!r}")
            merged[k] = float(v)
        changes["inverse.init"] = tuple(merged.items())
    if constraints is not None:
        if constraints not in CONSTRAINTS:
            raise ValueError(f"constraints must be 'hard' or 'none', got {constraints!r}")
        changes["network.hard_ic"] = changes["network.hard_bc"] = constraints == "hard"
        if constraints == "none":  # a symmetry or a kink of the initial data is known data too
            changes.update({"network.odd_symmetric": False, "network.even_symmetric": False,
                            "network.u0_feature": False, "network.kink_diffusivity": 0.0})
    if steps is not None:
        if isinstance(steps, bool) or not isinstance(steps, int) or steps <= 0:
            raise ValueError(f"steps must be a positive integer, got {steps!r}")
        changes["adam.steps"] = steps
        changes["run.log_every"] = min(changes.get("run.log_every", cfg.run.log_every), steps)
    cfg = cfg.updated(changes) if changes else cfg
    missing = [n for n in names if n not in dict(cfg.inverse.init)]
    if missing:
        raise ValueError(f"config has no initial guess for {missing} (set inverse.init or --init NAME=VALUE)")
    return cfg


def constraints_of(cfg: PINNConfig) -> str:
    """"hard" when the initial and boundary data are built into the network, else "none"."""
    return "hard" if cfg.network.hard_ic and cfg.network.hard_bc else "none"


# ----------------------------------------------------------------------------- observations


def exact_at_points(problem: Any, t: np.ndarray, x: np.ndarray, block: int = 16) -> np.ndarray:
    """The exact solution at scattered points (t_i, x_i): (n,). ``pdes.exact`` works on grids, so
    points go in blocks of ``block``: the block's t x x grid is evaluated and its diagonal kept.
    A PDE's ``exact`` closed form is evaluated at the points; without one, its reference
    (``pdes.pinn.train.reference_solution``, e.g. spectral) is interpolated in time from 201
    saved times (cubic in t, spectral in x)."""
    from pdes.exact import exact_solution

    t = np.asarray(t, dtype=np.float64).ravel()
    x = np.asarray(x, dtype=np.float64).ravel()
    if isinstance(problem, PDE):
        return _pde_at_points(problem, t, x)
    out = np.empty(t.size)
    for s in range(0, t.size, block):
        grid = exact_solution(problem, t[s : s + block], x[s : s + block])
        out[s : s + block] = np.diagonal(grid)
    return out


def _pde_at_points(problem: PDE, t: np.ndarray, x: np.ndarray) -> np.ndarray:
    if problem.exact is not None:
        return np.broadcast_to(np.asarray(problem.exact(t, x), dtype=np.float64), t.shape).copy()
    from scipy.interpolate import CubicSpline

    from pdes.pinn.train import reference_solution

    times = np.linspace(0.0, problem.t_end, 201)
    xs = np.unique(x)
    grid = reference_solution(problem, times, xs)
    if grid is None:
        raise ValueError(f"{problem.name} has neither a closed form (exact=) nor a spectral reference (linear=, "
                         "periodic): give observations with --obs")
    spline = CubicSpline(times, grid, axis=0)
    return spline(t)[np.arange(t.size), np.searchsorted(xs, x)]


def synthetic_observations(problem: Any, n_obs: int = 2000, noise: float = 0.01, seed: int = 0) -> xr.Dataset:
    """``n_obs`` scattered observations of the exact solution at uniform random points of the
    domain, with Gaussian noise of std ``noise * std(u_exact at those points)``.

    Returns a Dataset with variables ``u`` (noisy), ``u_exact``, and ``t``, ``x`` as
    coordinates along dim ``obs``; attrs equation, params (JSON), noise, noise_convention,
    seed and true_<name> for each unknown."""
    problem = _resolve_problem(problem)
    _check_count("n_obs", n_obs, minimum=len(unknowns_of(problem)))
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
    names = unknowns_of(problem)
    if u.size < len(names):
        raise ValueError(f"{u.size} observation(s) cannot identify {len(names)} unknown(s) {list(names)}")
    tol = 1e-9
    for name, arr, lo, hi in (("t", t, 0.0, float(problem.t_end)),
                              ("x", x, float(problem.x_min), float(problem.x_max))):
        outside = (arr < lo - tol * max(1.0, abs(lo))) | (arr > hi + tol * max(1.0, abs(hi)))
        if np.any(outside):
            i = int(np.argmax(outside))
            raise ValueError(f"{int(outside.sum())} observation point(s) outside the {problem.name} domain: "
                             f"{name} = {arr[i]:g} is not in [{lo:g}, {hi:g}]")
    return t, x, u


def _truth_from_attrs(ds: xr.Dataset, names: tuple[str, ...]) -> dict[str, float] | None:
    truth = {}
    for name in names:
        value = ds.attrs.get(f"true_{name}")
        if value is None:
            return None
        truth[name] = float(value)
    return truth


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


def _fingerprint(*arrays: np.ndarray) -> str:
    """A short hash of the observations (a checkpoint must be of the same data)."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
    return h.hexdigest()[:16]


def identify(problem: Any, observations: xr.Dataset | str | Path | None = None, *, n_obs: int = 2000,
             noise: float = 0.01, seed: int = 0, ensemble: int = 1, steps: int | None = None,
             config: PINNConfig | None = None, init: Mapping[str, float] | None = None,
             constraints: str | None = None, bootstrap: bool | None = None,
             overrides: Mapping[str, Any] | None = None, nx: int = 256, nt: int = 100,
             checkpoint_dir: str | Path | None = None, resume: str | Path | None = None,
             progress: bool = True, callback: Callable[[dict[str, Any]], None] | None = None) -> IdentifyResult:
    """Identify the unknown coefficients of ``problem`` (a preset name or a Heat/Wave/Burgers)
    from ``observations`` (a Dataset or a path to a netCDF file), or from ``n_obs`` synthetic
    observations with ``noise`` (relative to the solution's std) drawn with ``seed``.

    ``ensemble`` M > 1 trains M members in one program and reports mean and std. ``steps``,
    ``init`` ({name: guess}), ``constraints`` ("hard" or "none"), ``bootstrap`` and
    ``overrides`` (see ``get_inverse_config``) override the preset (``config``, default
    ``INVERSE_PRESETS[kind]``). The field is reconstructed on nt x nx points of the domain.
    ``checkpoint_dir``/``resume``: checkpoints as in forward training (the observations must
    be the same to resume). Raises ValueError on bad input (before any compilation)."""
    from pdes.pinn.driver import progress_bar

    start = time.perf_counter()
    cpu0 = time.process_time()
    problem = _resolve_problem(problem)
    kind = problem_kind(problem)
    names = unknowns_of(problem)
    _check_count("ensemble", ensemble, minimum=1)
    _check_count("seed", seed, minimum=0)
    _check_count("nx", nx, minimum=2)
    _check_count("nt", nt, minimum=2)
    ov = dict(overrides or {})
    if bootstrap is not None:
        ov["inverse.bootstrap"] = bool(bootstrap)
    cfg = get_inverse_config(problem if isinstance(problem, PDE) else kind, base=config, steps=steps,
                             constraints=constraints, init=init, overrides=ov)

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
        truth = _truth_from_attrs(obs_ds, names)
    t_obs, x_obs, u_obs = observations_from_dataset(obs_ds, problem)
    n = u_obs.size

    # members: initial guesses, bootstrap weights
    m = int(ensemble)
    rng = np.random.default_rng([seed, 1])
    guesses = dict(cfg.inverse.init)
    log0 = np.array([math.log(guesses[k]) for k in names])
    jitter = rng.normal(0.0, cfg.inverse.init_spread, (m, len(names))) if m > 1 else np.zeros((1, len(names)))
    start_values = np.exp(log0[None, :] + jitter)  # (M, k)
    per_member = m > 1 and cfg.inverse.bootstrap
    if per_member:
        w_obs = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(m)]).astype(np.float64)
    else:
        w_obs = np.ones((1, n))

    pinn = build_pinn(problem, cfg, unknowns=names, residual=_problem_residual(problem),
                      coeffs={**problem.coefficients(), **guesses} if isinstance(problem, PDE) else guesses,
                      with_data=True)
    t_grid = np.linspace(0.0, float(problem.t_end), nt)
    x_grid = np.linspace(float(problem.x_min), float(problem.x_max), nx)
    u_ref = None
    if truth is not None:
        from pdes.pinn.train import reference_solution

        u_ref = reference_solution(_with_truth(problem, truth), t_grid, x_grid)

    f64 = cfg.network.dtype == "float64"
    dtype = jnp.float64 if f64 else jnp.float32
    key = jax.random.key(seed)
    stacked = m > 1
    mesh = member_mesh(m) if stacked else None
    with x64_if(f64):
        obs = {"t": jnp.asarray(t_obs, dtype), "x": jnp.asarray(x_obs, dtype), "u": jnp.asarray(u_obs, dtype)}
        if per_member:
            obs = {k: jnp.broadcast_to(v, (m, n)) for k, v in obs.items()}
            obs["w"] = jnp.asarray(w_obs, dtype)
        else:
            obs["w"] = jnp.asarray(w_obs[0], dtype)
        if stacked:
            starts = {k: jnp.asarray(start_values[:, i], dtype) for i, k in enumerate(names)}
            params = jax.vmap(lambda k, c: pinn.init(k, c))(jax.random.split(jax.random.fold_in(key, 0), m), starts)
            state = jax.vmap(pinn.init_train_state)(params, jax.random.split(jax.random.fold_in(key, 1), m))
            state = shard_members(state, mesh)
            qn_keys = jax.random.split(jax.random.fold_in(key, 2), m)

            def qn_key(step: int) -> jax.Array:
                return jax.vmap(lambda k: jax.random.fold_in(k, step))(qn_keys)
        else:
            params = pinn.init(jax.random.fold_in(key, 0), {k: float(start_values[0, i]) for i, k in enumerate(names)})
            state = pinn.init_train_state(params, jax.random.fold_in(key, 1))

            def qn_key(step: int) -> jax.Array:
                return jax.random.fold_in(key, 1000 + step)

    def predict(p: Any) -> np.ndarray:
        """(M, nt, nx) fields of the members."""
        fn = PROGRAMS.get(pinn, ("predict_members", stacked), lambda: jax.jit(
            jax.vmap(pinn.predict_grid, in_axes=(0, None, None)) if stacked else pinn.predict_grid))
        u = np.asarray(fn(p, t_grid, x_grid), dtype=np.float64)
        return u if stacked else u[None]

    def record(metrics: dict[str, Any], p: Any, phase: int, step: int) -> dict[str, Any]:
        row: dict[str, Any] = {"step": step, "phase": phase}
        for name, value in metrics.items():
            value = np.asarray(value, dtype=np.float64)
            row[name] = value.reshape(-1) if name in names else float(np.nanmean(value))
        if u_ref is not None:
            u_mean = predict(p).mean(axis=0)
            row["rel_l2"] = float(np.linalg.norm(u_mean - u_ref) / np.linalg.norm(u_ref))
        row["wall_time_s"] = time.perf_counter() - start
        return row

    total = cfg.adam.steps + cfg.qn.steps
    identity = checkpoint_identity(pinn, members=m, observations=_fingerprint(t_obs, x_obs, u_obs, w_obs))
    bar, close = progress_bar(total, 0, f"identify {kind}", progress, show=names)
    try:
        result, _ = fit(pinn, state, qn_key=qn_key, obs=obs, members=m if stacked else None,
                        member_batch=default_member_batch(None, m), mesh=mesh, obs_per_member=per_member,
                        record=record, callbacks=[bar] + ([callback] if callback is not None else []),
                        checkpoint_dir=checkpoint_dir, resume=resume,
                        meta={**identity, "config": cfg.to_dict(), "seed": seed}, expect=identity)
    finally:
        close()
    final = gathered(result.state.params)  # members sharded over processes: all of them on every process
    with x64_if(uses_float64(final)):
        members = {k: np.exp(np.asarray(final["coeffs"][k], dtype=np.float64)).reshape(-1) for k in names}
        u_members = predict(final)
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu0

    estimates = {k: float(np.mean(members[k])) for k in names}
    std = {k: float(np.std(members[k], ddof=1)) if m > 1 else 0.0 for k in names}
    rel_error = {k: abs(estimates[k] - truth[k]) / abs(truth[k]) for k in names} if truth is not None else None
    u_mean = u_members.mean(axis=0)
    rel_l2 = float(np.linalg.norm(u_mean - u_ref) / np.linalg.norm(u_ref)) if u_ref is not None else math.nan
    ds = _result_dataset(problem, kind, cfg, seed, wall, t_grid, x_grid, u_members, u_ref, result.history, names,
                         estimates, std, truth, rel_error, (t_obs, x_obs, u_obs), rel_l2, result.step, result.stopped,
                         source, obs_ds.attrs.get("noise", noise if observations is None else None))
    ds.attrs["cpu_time_s"] = cpu
    return IdentifyResult(ds, estimates, std, members, truth, rel_error, wall, {"cpu_time_s": cpu})


def _with_truth(problem: Any, truth: Mapping[str, float]) -> Any:
    """The problem with the true coefficients of an observation file (u_true is then its exact solution)."""
    if isinstance(problem, PDE):
        return replace(problem, coeffs={**problem.coefficients(), **truth})
    if isinstance(problem, Burgers):
        if abs(truth["l1"] - 1.0) > 1e-12:  # l1 != 1 is not a Burgers preset: no exact solution here
            return problem
        return replace(problem, nu=truth["l2"])
    if isinstance(problem, Heat):
        return replace(problem, alpha=truth["alpha"])
    return replace(problem, c=truth["c"])


def _result_dataset(problem, kind, cfg, seed, wall, t_grid, x_grid, u_members, u_ref, history, names, estimates, std,
                    truth, rel_error, obs, rel_l2, steps_done, stopped, source, noise) -> xr.Dataset:
    from pdes.solution import solution_dataset

    m = u_members.shape[0]
    attrs: dict[str, Any] = {"unknowns": ",".join(names), "ensemble": m, "n_obs": int(obs[2].size),
                             "observations": source, "rel_l2": rel_l2, "steps_done": int(steps_done),
                             "stopped": stopped, "constraints": constraints_of(cfg)}
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
            data[f"history_{key}"] = xr.DataArray(np.array([np.mean(h.get(key, math.nan)) for h in history]),
                                                  dims=("step",), attrs={"long_name": f"{key} (mean over members)"})
        for k in names:
            vals = np.array([np.asarray(h[k], dtype=np.float64).reshape(-1) for h in history])  # (steps, M)
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


def plot_identify(ds: xr.Dataset, path: str | Path | None = None) -> Any:
    """Figure of an identify result: reconstructed field with the observation points, error
    against u_true (when present), and the estimate trajectories (with the ensemble band and
    the true values), on a new matplotlib Figure; written atomically to ``path`` when given.
    Returns the Figure."""
    from matplotlib.figure import Figure

    from plumbing.files import save_figure

    names = [n for n in str(ds.attrs.get("unknowns", "")).split(",") if n]
    has_true = "u_true" in ds
    ncols = 2 + (1 if has_true else 0)
    fig = Figure(figsize=(4.2 * (ncols + len(names) - 1), 3.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, ncols + len(names) - 1))
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
    if path is not None:
        save_figure(fig, path)
    return fig
