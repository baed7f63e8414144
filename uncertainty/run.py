"""``python -m uncertainty run``: train an ensemble or MC-dropout model, write a prediction file.

``run_pinn`` and ``run_fno`` return the prediction Dataset of DESIGN.md section 2: ``u`` (the
predictive mean), ``u_std``, ``u_samples`` (dims member, ...) and ``u_true`` (the exact
solution for PINNs, the spectral reference for the FNO's test functions).

u_std has a floor: members that share hard initial/boundary constraints agree exactly there
(zero spread), so u_std = sqrt(var + floor^2) with floor = 1e-6 max|u| (about 8 float32
ulps of the field), recorded in the attribute ``u_std_floor``. It changes no interior
value that matters and keeps every point's predictive distribution proper.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np
import xarray as xr

from plumbing.cli import Failure
from uncertainty.ensemble import check_members, mixture_moments

__all__ = [
    "FNOTask",
    "burgers_functions",
    "fit_prediction_map",
    "generate_fno_task",
    "generate_operator_data",
    "load_fno_task",
    "prediction_dataset",
    "run_fno",
    "run_from_args",
    "run_pinn",
]

STD_FLOOR = 1e-6


def _std(var: np.ndarray, mean: np.ndarray) -> tuple[np.ndarray, float]:
    floor = STD_FLOOR * max(float(np.max(np.abs(mean))), 1e-30)
    return np.sqrt(var + floor**2), floor


def run_pinn(
    problem: Any,
    config: Any,
    *,
    method: str = "ensemble",
    members: int = 5,
    seed: int = 0,
    nt: int = 64,
    nx: int = 128,
    noise: float = 0.0,
    n_obs: int = 0,
    gaussian_head: bool = False,
    progress: bool = True,
    member_batch: int | None = None,
    observations: Any = None,
    n_calibration: int | None = None,
    level: float = 0.95,
    checkpoint_dir: Any = None,
    resume: Any = None,
) -> xr.Dataset:
    """Train and predict on the grid t = linspace(0, t_end, nt), x = linspace(x_min, x_max, nx).
    ``member_batch``: see ``uncertainty.ensemble.train_pinn_members`` (the plain ensemble).

    PINNs train on the PDE alone, so there are no data to calibrate on: ``u_std`` is the raw
    spread (``u_std_raw`` beside it) and attr ``calibration`` says so, unless observations are
    given: ``observations`` (an observation Dataset as ``pdes identify --obs`` reads it: u, t, x;
    attr ``noise_std``, default 0), not used for training, or, in the noisy-data setting
    (n_obs > 0), ``n_calibration`` of the n_obs observations held out from training (default
    n_obs // 4). Then ``u_std = c u_std_raw`` with c from split conformal on the observations
    (``observation_scale``): a new observation lies in u +- z_L sqrt(u_std^2 + noise^2) with
    probability >= ``level``.

    ``checkpoint_dir``/``resume``: checkpoints of the members' training (``train_pinn_members``;
    the plain ensemble and MC dropout)."""
    from pdes.exact import exact_solution
    from pdes.problems import problem_params
    from pdes.solution import solution_dataset

    m = check_members(members, "--members")
    if method not in ("ensemble", "mc_dropout"):
        raise ValueError(f"method must be 'ensemble' or 'mc_dropout', got {method!r}")
    for name, v in (("nt", nt), ("nx", nx)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 2:
            raise ValueError(f"{name} must be an integer >= 2, got {v!r}")
    if n_obs and method != "ensemble":
        raise ValueError("noisy observations (--n-obs) are supported with --method ensemble")
    if n_obs < 0:
        raise ValueError(f"--n-obs must be >= 0, got {n_obs}")
    if gaussian_head and not n_obs:
        raise ValueError("--gaussian-head needs noisy observations (--n-obs N)")
    if n_obs and (checkpoint_dir is not None or resume is not None):
        raise ValueError("checkpoints (--checkpoint-dir, --resume) are not supported with noisy observations (--n-obs)")
    if observations is not None and n_obs:
        raise ValueError("give either --obs FILE (observations to calibrate on) or --n-obs N (noisy-data setting)")
    t = np.linspace(0.0, problem.t_end, nt)
    x = np.linspace(problem.x_min, problem.x_max, nx)
    key = jax.random.key(seed)
    extra: dict[str, Any] = {"members": m}
    cal_obs = None
    if observations is not None:
        from pdes.inverse import observations_from_dataset

        t_c, x_c, y_c = observations_from_dataset(observations, problem)
        cal_obs = (t_c, x_c, y_c, float(observations.attrs.get("noise_std", 0.0)))
    start = time.perf_counter()
    variances = None
    if method == "ensemble" and n_obs:
        from uncertainty.calibration import minimum_fold_functions
        from uncertainty.ensemble import predict_pinn_members
        from uncertainty.noisy import Observations, noisy_observations, noisy_pinn_ensemble

        obs = noisy_observations(problem, n_obs, noise, seed=seed)
        k = n_obs // 4 if n_calibration is None else int(n_calibration)
        if not 0 <= k < n_obs:
            raise ValueError(f"--n-calibration must be in [0, n_obs) = [0, {n_obs}), got {k}")
        need = minimum_fold_functions(level)
        if n_calibration is None and k < need:
            extra["calibration_skipped"] = (f"uncalibrated: n_obs // 4 = {k} held-out observations are fewer than "
                                            f"the {need} the {level:g} level needs (give --n-calibration K)")
            k = 0
        if k:
            cal_obs = (obs.t[-k:], obs.x[-k:], obs.y[-k:], float(noise))
            obs = Observations(obs.t[:-k], obs.x[:-k], obs.y[:-k], obs.noise)
            extra["n_obs_calibration"] = k
        fit = noisy_pinn_ensemble(
            problem, config, obs, members=m, key=key, gaussian_head=gaussian_head, progress=progress
        )
        samples = predict_pinn_members(fit.model, fit.params, t, x)
        extra.update({"noise": noise, "n_obs": n_obs, "gaussian_head": int(gaussian_head)})
        if gaussian_head:
            s2 = fit.extra["noise_std"] ** 2
            variances = np.broadcast_to(s2[:, None, None], samples.shape)
            extra["noise_std_learned"] = [float(v) for v in fit.extra["noise_std"]]
        label = "pinn_ensemble_noisy"
    elif method == "ensemble":
        from uncertainty.ensemble import pinn_ensemble, predict_pinn_members

        fit = pinn_ensemble(problem, config, members=m, key=key, progress=progress, member_batch=member_batch,
                            checkpoint_dir=checkpoint_dir, resume=resume)
        samples = predict_pinn_members(fit.model, fit.params, t, x)
        label = "pinn_ensemble"
    else:
        from uncertainty.dropout import pinn_dropout_draws
        from uncertainty.ensemble import train_pinn_members

        if config.network.dropout <= 0:
            raise ValueError("--dropout must be > 0 for mc_dropout")
        train_key, draw_key = jax.random.split(key)
        fit = train_pinn_members(problem, config, members=1, key=train_key, progress=progress,
                                 checkpoint_dir=checkpoint_dir, resume=resume)
        params = jax.tree.map(lambda a: a[0], fit.params)
        samples = pinn_dropout_draws(fit.model, params, t, x, draws=m, key=draw_key)
        extra["dropout"] = config.network.dropout
        label = "pinn_mc_dropout"
    wall = time.perf_counter() - start
    if not np.all(np.isfinite(samples)):
        raise Failure("training diverged: the prediction has non-finite values")
    mean, epistemic = mixture_moments(samples)
    u_std, floor = _std(epistemic, mean)
    extra["u_std_floor"] = floor
    u_std_raw = u_std
    if cal_obs is None:
        extra["calibrated"] = 0
        extra["calibration"] = extra.pop("calibration_skipped", None) or (
            "none: a PINN trains on the PDE alone, so these bands are uncalibrated; give observations (--obs FILE, "
            "or --n-obs N in the noisy-data setting) to calibrate")
    else:
        t_c, x_c, y_c, noise_c = cal_obs
        at_obs = _pinn_at_points(fit, method, t_c, x_c, m, jax.random.fold_in(key, 7))
        mu_c, var_c = mixture_moments(at_obs)
        s_c = np.sqrt(var_c + floor**2)
        c = observation_scale(mu_c, s_c, y_c, noise_c, level)
        u_std = np.sqrt((c * u_std_raw) ** 2 + floor**2)
        info = {"kind": "observation_scale", "method": "conformal_observations", "level": level, "scale": c,
                "n_observations": int(y_c.size), "noise_std": noise_c,
                "guarantee": f"a new observation drawn like the {y_c.size} calibration observations lies in u +- "
                             f"{_z(level):.3f} sqrt(u_std^2 + {noise_c:.3g}^2) with probability >= {level:g} "
                             f"(split conformal; observations exchangeable)"}
        extra.update({"calibrated": 1, "calibration_method": "conformal_observations",
                      "calibration": json.dumps(info)})
    if variances is not None:
        # the truth is the noise-free solution: u_std is the epistemic std of the latent field;
        # the aleatoric std of a new observation is stored beside it
        extra["u_std_meaning"] = "epistemic (latent field); u_std_aleatoric: learned observation noise"
    u_true = exact_solution(problem, t, x)
    ds = solution_dataset(
        mean,
        t=t,
        x=x,
        equation=problem.name,
        method=label,
        params=problem_params(problem),
        config={
            "pinn": config.to_dict(),
            "method": method,
            "members": m,
            "nt": nt,
            "nx": nx,
            "noise": noise,
            "n_obs": n_obs,
        },
        seed=seed,
        wall_time_s=wall,
        u_true=u_true,
        u_std=u_std,
        u_samples=samples,
        attrs=extra,
    )
    ds["u_std_raw"] = (("t", "x"), u_std_raw, {"units": "1", "long_name": "predictive standard deviation before "
                                                                        "calibration"})
    if variances is not None:
        _, total = mixture_moments(samples, variances)
        ds["u_std_aleatoric"] = (("t", "x"), np.sqrt(np.mean(variances, axis=0)))
        ds["u_std_total"] = (("t", "x"), np.sqrt(total))
        ds["u_std_aleatoric"].attrs = {
            "units": "1",
            "long_name": "learned observation noise std (mean of member variances)",
        }
        ds["u_std_total"].attrs = {"units": "1", "long_name": "predictive std of a new noisy observation"}
    return ds


def _z(level: float) -> float:
    from scipy import special

    return float(special.ndtri(0.5 + level / 2))


def observation_scale(mu: np.ndarray, s: np.ndarray, y: np.ndarray, noise: float, level: float = 0.95) -> float:
    """The factor c of split conformal on n observations y ~ u + N(0, noise^2): with the score
    r = sqrt(max((y - mu)^2 / z_L^2 - noise^2, 0)) / s (the smallest c for which y lies in
    mu +- z_L sqrt((c s)^2 + noise^2)), c is the ceil((n + 1) L)-th smallest score, so a new
    observation lies in that interval with probability >= L. ValueError when n is too small."""
    from uncertainty.calibration import grouped_conformal_quantile, minimum_fold_functions

    n = int(np.size(y))
    need = minimum_fold_functions(level)
    if n < need:
        raise ValueError(f"calibration needs at least {need} observations for the {level:g} level, got {n}")
    r = np.sqrt(np.maximum((np.asarray(y) - mu) ** 2 / _z(level) ** 2 - noise**2, 0.0)) / s
    return float(grouped_conformal_quantile(r.reshape(-1, 1), level))


def _pinn_at_points(fit: Any, method: str, t: np.ndarray, x: np.ndarray, m: int, key: jax.Array) -> np.ndarray:
    """Every member's (or dropout draw's) u at scattered points t, x: (M, n), float64."""
    from pdes.pinn.precision import uses_float64, x64_if

    pinn = fit.model
    with x64_if(uses_float64(fit.params)):
        dtype = jax.tree.leaves(fit.params)[0].dtype
        tt, xx = jax.numpy.asarray(t, dtype), jax.numpy.asarray(x, dtype)
        if method == "ensemble":
            out = jax.jit(jax.vmap(pinn.apply, in_axes=(0, None, None)))(fit.params, tt, xx)
        else:
            params = jax.tree.map(lambda a: a[0], fit.params)
            out = jax.jit(jax.vmap(lambda k: pinn.apply(params, tt, xx, k)))(jax.random.split(key, m))
        return np.asarray(out, dtype=np.float64)


NU_CHANNELS = ("u0", "nu")  # the input channels of operator Burgers over a range of viscosities


def burgers_functions(problem: Any, rng: np.random.Generator, n: int, nx: int, *, fine_factor: int = 4,
                      nu_channel: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """n operator-Burgers pairs (a, u(., t_end)) of ``problem`` (a ``pdes.problems.PeriodicBurgers``:
    GRF u0 ~ N(0, sigma^2 (-Lap + tau^2)^-alpha), viscosity nu) on x_j = j L / nx: drawn and solved
    (pseudo-spectral ETDRK4, float64) on fine_factor nx points, then strided to nx. float64.

    a is u0 (n, nx); with ``nu_channel`` (default: when the problem has a ``nu_range``) it is
    (n, nx, 2), channel 0 u0 and channel 1 the function's viscosity (constant in x). With a
    ``nu_range`` each function's nu is drawn log-uniformly on it (after its u0, from ``rng``) and
    the functions are solved one by one; else every function has ``problem.nu``."""
    from operators.grf import sample_grf
    from pdes.spectral import default_burgers_steps, solve_periodic_burgers

    p = problem
    fine = fine_factor * nx
    a = sample_grf(rng, n, fine, alpha=p.grf_alpha, tau=p.grf_tau, sigma=p.grf_sigma, length=p.length)
    if p.nu_range is None:
        nus = np.full(n, p.nu)
        u = solve_periodic_burgers(a, nu=p.nu, length=p.length, t_save=[p.t_end])[:, -1]
    else:  # one solve per viscosity, with the step count the batch would get (at its lowest nu)
        nus = np.exp(rng.uniform(np.log(p.nu_range[0]), np.log(p.nu_range[1]), n))
        u = np.zeros((n, fine))
        if n:
            steps = default_burgers_steps(a, float(nus.min()), p.length, fine, p.t_end)
            for i in range(n):
                u[i] = solve_periodic_burgers(a[i], nu=float(nus[i]), length=p.length, t_save=[p.t_end],
                                              n_steps=steps)[-1]
    a, u = a[:, ::fine_factor], u[:, ::fine_factor]
    if nu_channel is None:
        nu_channel = p.nu_range is not None
    if nu_channel:
        a = np.stack([a, np.broadcast_to(nus[:, None], a.shape)], axis=-1)
    return a, u


def burgers_info(problem: Any, nx: int) -> dict[str, Any]:
    """The provenance a predictor keeps of operator-Burgers training data (used by ``uncertainty shift``)."""
    from pdes.problems import problem_params

    info = {"equation": "operator_burgers", "problem": problem_params(problem), "nx": int(nx), "periodic": True}
    if problem.nu_range is not None:
        info["input_channels"] = list(NU_CHANNELS)
    return info


@dataclass
class FNOTask:
    """Operator data for an uncertain FNO: ``data`` (``operators.train.OperatorData``: train and
    test parts), the calibration split ``a_cal``, ``u_cal`` ((n, *grid) or None), and ``info``
    (provenance: equation, generator parameters, grid, periodic)."""

    data: Any
    a_cal: np.ndarray | None
    u_cal: np.ndarray | None
    info: dict[str, Any]

    @property
    def n_calibration(self) -> int:
        return 0 if self.a_cal is None else int(self.a_cal.shape[0])


def _positive_int(name: str, v: Any, minimum: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {v!r}")
    return int(v)


def generate_operator_data(*, n_train: int, n_test: int, nx: int, seed: int = 0) -> Any:
    """Operator Burgers data (DESIGN.md section 3): GRF initial data u0 ~ N(0, 625(-Lap + 25)^-2)
    on [0, 1) and u(., 1) by the pseudo-spectral solver, computed on 4 nx points and
    subsampled to nx. Returns ``operators.train.OperatorData`` (float32)."""
    return generate_fno_task(n_train=n_train, n_calibration=0, n_test=n_test, nx=nx, seed=seed).data


def generate_fno_task(*, n_train: int, n_calibration: int, n_test: int, nx: int, seed: int = 0,
                      problem: Any = None) -> FNOTask:
    """``generate_operator_data`` plus n_calibration functions drawn after the train and test
    functions from the same stream (so the train and test sets do not depend on n_calibration)."""
    from operators.train import OperatorData
    from pdes.problems import OPERATOR_BURGERS

    n_train, n_test = _positive_int("n_train", n_train), _positive_int("n_test", n_test)
    n_cal = _positive_int("n_calibration", n_calibration, 0)
    nx = _positive_int("nx", nx, 16)
    problem = problem or OPERATOR_BURGERS
    rng = np.random.default_rng(seed)
    a, u = (v.astype(np.float32) for v in burgers_functions(problem, rng, n_train + n_test, nx))
    data = OperatorData(a[:n_train], u[:n_train], a[n_train:], u[n_train:])
    cal = [v.astype(np.float32) for v in burgers_functions(problem, rng, n_cal, nx)] if n_cal else [None, None]
    return FNOTask(data, cal[0], cal[1], burgers_info(problem, nx))


def load_fno_task(path: Any, *, n_calibration: int = 0, nx: int | None = None) -> FNOTask:
    """An operator dataset file as an FNOTask: its ``calibration`` split if it has one (DESIGN.md
    section 7), else the last ``n_calibration`` functions of its train part (held out from
    training). ``nx``: subsample the stored grid (``operators.train.subsample``)."""
    import json

    from operators.train import OperatorData, is_periodic, split_arrays, subsample
    from pdes.solution import read_dataset

    ds = read_dataset(path)
    a, u, split = split_arrays(ds)
    if split is None:
        raise ValueError("dataset has no 'split' variable: training needs train and test samples")
    periodic = is_periodic(ds)
    dim = a.ndim - 1
    a, u = subsample(a, nx, dim, periodic), subsample(u, nx, dim, periodic)
    tr, te, ca = split == "train", split == "test", split == "calibration"
    n_cal = _positive_int("n_calibration", n_calibration, 0)
    a_cal = u_cal = None
    if ca.any():
        a_cal, u_cal = a[ca], u[ca]
    elif n_cal:
        idx = np.flatnonzero(tr)
        if n_cal >= idx.size:
            raise ValueError(f"--n-calibration {n_cal} leaves none of the {idx.size} training functions to train on")
        tr = tr.copy()
        tr[idx[-n_cal:]] = False
        a_cal, u_cal = a[idx[-n_cal:]], u[idx[-n_cal:]]
    if not tr.any() or not te.any():
        raise ValueError(f"dataset needs both train and test samples, has {int(tr.sum())} train / {int(te.sum())} test")
    for name, arr in (("a", a), ("u", u)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or infinite values")
    try:
        params = json.loads(ds.attrs.get("params", "{}"))
    except (TypeError, ValueError):
        params = {}
    info = {"equation": str(ds.attrs.get("equation", "")), "params": params, "nx": int(a.shape[1]),
            "periodic": bool(periodic), "source": str(path)}
    data = OperatorData(a[tr], u[tr], a[te], u[te], periodic=periodic)
    return FNOTask(data, a_cal, u_cal, info)


def grid_coords(n: int, periodic: bool) -> np.ndarray:
    """The grid of an operator axis: j / n (periodic) or linspace(0, 1, n) (nodes with both ends)."""
    return np.arange(n) / n if periodic else np.linspace(0.0, 1.0, n)


METHOD_LABELS = {"ensemble": "fno_ensemble", "mc_dropout": "fno_mc_dropout", "laplace": "fno_laplace"}


def prediction_dataset(predictor: Any, a: np.ndarray, *, u_true: np.ndarray | None = None, periodic: bool = True,
                       key: jax.Array | None = None, equation: str = "operator_burgers", seed: int = 0,
                       config: dict[str, Any] | None = None, wall_time_s: float | None = None) -> xr.Dataset:
    """The predictor's prediction for inputs a (n, *grid[, channels]) as a DESIGN.md section 2 Dataset:
    ``a``, ``u`` (mean), ``u_std_raw`` and ``u_std`` (both the raw std: calibrate with
    ``uncertainty.calibration.apply_calibration``), ``u_samples`` (member, ...), ``u_true`` if
    given; attrs ``model_fingerprint``, ``members``, ``u_std_floor``, ``calibrated`` = 0."""
    from pdes.solution import operator_dataset

    start = time.perf_counter()
    mean, std, samples = predictor.predict(a, key=key)
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std))):
        raise Failure("the prediction has non-finite values (did training diverge?)")
    u_std, floor = _std(std**2, mean)
    grid = [grid_coords(n, periodic) for n in mean.shape[1:]]
    a = np.asarray(a)
    channels = a[..., 1:] if a.ndim == mean.ndim + 1 else None
    if channels is not None:
        a = a[..., 0]
    ds = operator_dataset(a, mean, x=grid[0], y=grid[1] if len(grid) == 2 else None, equation=equation,
                          method=METHOD_LABELS[predictor.method], config=config or {}, seed=seed,
                          wall_time_s=wall_time_s if wall_time_s is not None else time.perf_counter() - start,
                          attrs={"members": predictor.members, "u_std_floor": floor, "periodic": int(periodic),
                                 "model_fingerprint": predictor.fingerprint(), "calibrated": 0,
                                 "calibration": "none"})
    dims = ds["u"].dims
    if channels is not None:  # the inputs' further channels (e.g. the viscosity): (sample,) where constant
        names = (predictor.info or {}).get("input_channels") or []
        for c in range(channels.shape[-1]):
            name = names[c + 1] if c + 1 < len(names) else f"a_channel{c + 1}"
            v = channels[..., c]
            flat = v.reshape(v.shape[0], -1)
            if np.all(flat == flat[:, :1]):
                ds[name] = (("sample",), flat[:, 0].astype(np.float64), {"units": "1", "long_name": f"input {name}"})
            else:
                ds[name] = (dims, v.astype(np.float64), {"units": "1", "long_name": f"input channel {name}"})
    ds["u"].attrs = {"units": "1", "long_name": "predictive mean of the target function"}
    ds["u_std_raw"] = (dims, u_std, {"units": "1", "long_name": "predictive standard deviation before calibration"})
    ds["u_std"] = (dims, u_std, {"units": "1", "long_name": "predictive standard deviation (not calibrated)"})
    if u_true is not None:
        ds["u_true"] = (dims, np.asarray(u_true, dtype=np.float64), {"units": "1", "long_name": "reference solution"})
    m = samples.shape[0]
    ds = ds.assign_coords(member=("member", np.arange(m, dtype=np.float64),
                                  {"units": "1", "long_name": "ensemble member, dropout draw or posterior sample"}))
    ds["u_samples"] = (("member", *dims), samples, {"units": "1", "long_name": "members, dropout draws or posterior "
                                                                               "samples"})
    return ds


def fit_prediction_map(predictor: Any, a_cal: np.ndarray, u_cal: np.ndarray, *, periodic: bool = True,
                       method: str = "conformal", level: float = 0.95, seed: int = 0,
                       key: jax.Array | None = None) -> Any:
    """Predict the calibration split and fit a ``uncertainty.calibration.CalibrationMap`` on it."""
    from uncertainty.calibration import fit_calibration_map, prediction_grid

    ds = prediction_dataset(predictor, a_cal, u_true=u_cal, periodic=periodic, key=key)
    return fit_calibration_map(ds.u.values, ds.u_std_raw.values, ds.u_true.values, method=method, level=level,
                               seed=seed, grid=prediction_grid(ds), model=predictor.fingerprint())


def run_fno(
    data: Any,
    model_config: Any,
    train_config: Any,
    *,
    method: str = "ensemble",
    members: int = 5,
    seed: int = 0,
    progress: bool = True,
    calibration_data: tuple[np.ndarray, np.ndarray] | None = None,
    calibration: str = "conformal",
    level: float = 0.95,
    laplace_layers: tuple[str, ...] = ("proj2",),
    info: dict[str, Any] | None = None,
    return_predictor: bool = False,
    checkpoint_dir: Any = None,
    resume: Any = None,
) -> Any:
    """Train on data's train part; predict its test functions: dims (sample, x[, y]) (+ member).

    ``method``: ensemble, mc_dropout or laplace (``uncertainty.predictor``). With
    ``calibration_data`` = (a_cal, u_cal), functions held out from training and testing, a
    calibration map (``calibration``: conformal, sigma_scaling or isotonic; "none" skips it) is
    fitted on them and applied: the file has ``u_std_raw``, the calibrated ``u_std`` and the
    whole-function bands ``u_band_90``/``u_band_95``. Without it ``u_std`` is the raw std.
    ``return_predictor``: return (ds, predictor) (the predictor holds the map).
    ``checkpoint_dir``/``resume``: checkpoints of the training (``train_fno_members``)."""
    from uncertainty.calibration import METHODS as CAL_METHODS
    from uncertainty.calibration import apply_calibration
    from uncertainty.predictor import fit_fno_predictor

    m = check_members(members, "--members")
    if calibration not in (*CAL_METHODS, "none"):
        raise ValueError(f"calibration must be one of {', '.join(CAL_METHODS)} or none; got {calibration!r}")
    if calibration_data is not None and calibration_data[0] is None:
        calibration_data = None
    if calibration != "none" and calibration_data is not None:  # before training: a split too small is bad input
        from uncertainty.calibration import BAND_LEVELS, minimum_calibration_functions

        need = minimum_calibration_functions((level, *BAND_LEVELS))
        if calibration_data[0].shape[0] < need:
            raise ValueError(f"the calibration split has {calibration_data[0].shape[0]} functions; a {level:g} "
                             f"level and whole-function bands at 0.9 and 0.95 need at least {need} "
                             f"(--n-calibration {need})")
    equation = (info or {}).get("equation") or "operator_burgers"
    key = jax.random.key(seed)
    train_key, cal_key, test_key = jax.random.split(key, 3)
    start = time.perf_counter()
    predictor = fit_fno_predictor(data, model_config, train_config, method=method, members=m, key=train_key,
                                  progress=progress, laplace_layers=laplace_layers, info=info,
                                  checkpoint_dir=checkpoint_dir, resume=resume)
    cmap = None
    if calibration != "none" and calibration_data is not None:
        cmap = fit_prediction_map(predictor, *calibration_data, periodic=data.periodic, method=calibration,
                                  level=level, seed=seed, key=cal_key)
        predictor.calibration = cmap
    config = {"model": predictor.config.to_dict(), "train": train_config.to_dict(), "method": method, "members": m,
              "calibration": calibration if cmap is not None else "none", "level": level,
              "n_calibration": 0 if calibration_data is None else int(calibration_data[0].shape[0])}
    ds = prediction_dataset(predictor, data.a_test, u_true=data.u_test, periodic=data.periodic, key=test_key,
                            equation=equation, seed=seed, config=config)
    if cmap is not None:
        ds = apply_calibration(ds, cmap)
    else:
        ds.attrs["calibration"] = ("none: no calibration split (give --n-calibration K or a dataset with a "
                                   "'calibration' split)")
    ds.attrs["wall_time_s"] = float(time.perf_counter() - start)
    ds.attrs["train_time_s"] = float(predictor.train_time_s)
    if predictor.laplace is not None:
        ds.attrs["laplace"] = json.dumps(predictor.laplace.scalars())
    return (ds, predictor) if return_predictor else ds


def _overrides(pairs: list[tuple[str, str]] | None) -> dict[str, str]:
    return dict(pairs or [])


def run_from_args(args: Any) -> dict[str, Any]:
    """The ``run`` subcommand: train, write --out atomically, return the JSON-able result."""
    from pathlib import Path

    from pdes.solution import write_dataset
    from uncertainty.metrics import all_metrics

    if not str(args.out).endswith(".nc"):
        raise ValueError(f"--out must end in .nc, got {args.out!r}")
    check_members(args.members, "--members")
    if not 0.0 <= args.dropout < 1.0:
        raise ValueError(f"--dropout must be in [0, 1), got {args.dropout}")
    if getattr(args, "steps", None) is not None and args.steps < 1:
        raise ValueError(f"--steps must be a positive integer, got {args.steps}")
    progress = not args.no_progress
    if args.model == "pinn":
        from pdes.pinn import resolve_config
        from pdes.problems import PRESETS, with_overrides

        if args.noise < 0:
            raise ValueError(f"--noise must be >= 0, got {args.noise}")
        if args.member_batch is not None and args.member_batch < 1:
            raise ValueError(f"--member-batch must be a positive integer, got {args.member_batch}")
        problem = with_overrides(
            PRESETS[args.equation],
            nu=getattr(args, "nu", None) if args.equation == "burgers" else None,
            alpha=args.alpha if args.equation == "heat" else None,
            c=args.c if args.equation == "wave" else None,
            t_end=args.t_end,
        )
        overrides = _overrides(args.overrides)
        if args.method == "mc_dropout":
            overrides.setdefault("network.dropout", str(args.dropout))
        if args.lr is not None:
            overrides["adam.lr"] = str(args.lr)
        config = resolve_config(
            problem, preset=args.preset, config_file=args.config, steps=args.steps, overrides=overrides
        )
        ds = run_pinn(
            problem,
            config,
            method=args.method,
            members=args.members,
            seed=args.seed,
            nt=args.nt,
            nx=args.nx,
            noise=args.noise,
            n_obs=args.n_obs,
            gaussian_head=args.gaussian_head,
            progress=progress,
            member_batch=args.member_batch,
            observations=_read_observations(args.obs) if args.obs else None,
            n_calibration=args.n_calibration,
            level=args.level,
            checkpoint_dir=args.checkpoint_dir,
            resume=args.resume,
        )
    else:
        ds, predictor, cal_info = _run_fno_from_args(args, progress)
    if args.model == "pinn":
        predictor, cal_info = None, {}
    write_dataset(ds, Path(args.out))
    funcs = args.model == "fno"
    bands = {lv: ds[f"u_band_{round(lv * 100)}"].values for lv in (0.9, 0.95) if f"u_band_{round(lv * 100)}" in ds}
    m = all_metrics(ds.u.values, ds.u_std.values, ds.u_true.values, functions=funcs, bands=bands)
    raw = all_metrics(ds.u.values, ds.u_std_raw.values, ds.u_true.values, functions=funcs) if "u_std_raw" in ds else m
    extra: dict[str, Any] = {"calibrated": bool(int(ds.attrs.get("calibrated", 0))),
                             "calibration": str(ds.attrs.get("calibration_method", ds.attrs.get("calibration", "")))}
    if funcs:
        extra.update(cal_info)
        extra["raw"] = {k: raw[k] for k in RAW_KEYS if k in raw}
        if predictor.calibration is not None:  # the map's calibrated distribution; u_std as a Gaussian beside it
            from uncertainty.calibration import calibrated_metrics

            extra["gaussian_reading"] = {k: m[k] for k in RAW_KEYS if k in m}
            m = calibrated_metrics(ds.u.values, ds.u_std.values, ds.u_true.values, predictor.calibration,
                                   functions=True, bands=bands)
        extra["train_time_s"] = float(ds.attrs.get("train_time_s", 0.0))
    return {
        "out": str(args.out),
        "method": ds.attrs["method"],
        "members": int(args.members),
        "wall_time_s": float(ds.attrs["wall_time_s"]),
        **m,
        **extra,
    }


RAW_KEYS = ("coverage_50", "coverage_90", "coverage_95", "coverage_99", "rmsce", "mace", "nll", "crps", "sharpness",
            "function_coverage_90", "function_coverage_95")


def _read_observations(path: Any) -> xr.Dataset:
    from pdes.solution import read_dataset

    return read_dataset(path)


def _run_fno_from_args(args: Any, progress: bool) -> tuple[xr.Dataset, Any, dict[str, Any]]:
    """The FNO branch of ``run``: data (generated or --data, with its calibration split), train,
    calibrate, and write --map / --model-out."""
    from pathlib import Path

    from operators.models import FNOConfig
    from operators.train import TrainConfig
    from uncertainty.calibration import save_map

    calibrate = args.calibration != "none"
    n_cal = args.n_calibration if calibrate else 0
    if n_cal < 0:
        raise ValueError(f"--n-calibration must be >= 0, got {n_cal}")
    nu_range = getattr(args, "nu_range", None)
    if args.data:
        if nu_range:
            raise ValueError("--nu-range applies to generated Burgers data, not to --data")
        task = load_fno_task(args.data, n_calibration=n_cal, nx=args.nx)
    else:
        from pdes.problems import OPERATOR_BURGERS

        problem = dataclasses.replace(OPERATOR_BURGERS, nu_range=tuple(nu_range)) if nu_range else None
        task = generate_fno_task(n_train=args.n_train, n_calibration=n_cal, n_test=args.n_test,
                                 nx=args.nx or 64, seed=args.seed, problem=problem)
    if calibrate and task.a_cal is None:
        raise ValueError("calibration needs held-out functions: give --n-calibration K (or --calibration none)")
    data = task.data
    mcfg = FNOConfig(dim=data.dim, modes=args.modes, width=args.width, depth=args.depth,
                     dropout=args.dropout if args.method == "mc_dropout" else 0.0)
    tcfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr or 3e-3, seed=args.seed,
                       data_parallel=False)
    layers = tuple(v.strip() for v in args.laplace_layers.split(",") if v.strip())
    ds, predictor = run_fno(data, mcfg, tcfg, method=args.method, members=args.members, seed=args.seed,
                            progress=progress, calibration_data=(task.a_cal, task.u_cal) if calibrate else None,
                            calibration=args.calibration, level=args.level, laplace_layers=layers, info=task.info,
                            return_predictor=True, checkpoint_dir=args.checkpoint_dir, resume=args.resume)
    info: dict[str, Any] = {"n_train": int(data.a_train.shape[0]), "n_calibration": task.n_calibration,
                            "n_test": int(data.a_test.shape[0])}
    if predictor.calibration is not None:
        map_path = Path(args.map) if args.map else Path(str(args.out)[: -len(".nc")] + ".map.json")
        save_map(predictor.calibration, map_path)
        info["map"] = str(map_path)
    if args.model_out:
        predictor.save(args.model_out)
        info["model_out"] = str(args.model_out)
    return ds, predictor, info
