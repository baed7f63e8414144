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
import time
from typing import Any

import jax
import numpy as np
import xarray as xr

from plumbing.cli import Failure
from uncertainty.ensemble import check_members, mixture_moments

__all__ = ["generate_operator_data", "run_fno", "run_from_args", "run_pinn"]

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
) -> xr.Dataset:
    """Train and predict on the grid t = linspace(0, t_end, nt), x = linspace(x_min, x_max, nx).
    ``member_batch``: see ``uncertainty.ensemble.train_pinn_members`` (the plain ensemble)."""
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
    t = np.linspace(0.0, problem.t_end, nt)
    x = np.linspace(problem.x_min, problem.x_max, nx)
    key = jax.random.key(seed)
    extra: dict[str, Any] = {"members": m}
    start = time.perf_counter()
    variances = None
    if method == "ensemble" and n_obs:
        from uncertainty.ensemble import predict_pinn_members
        from uncertainty.noisy import noisy_observations, noisy_pinn_ensemble

        obs = noisy_observations(problem, n_obs, noise, seed=seed)
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

        fit = pinn_ensemble(problem, config, members=m, key=key, progress=progress, member_batch=member_batch)
        samples = predict_pinn_members(fit.model, fit.params, t, x)
        label = "pinn_ensemble"
    else:
        from uncertainty.dropout import pinn_dropout_draws
        from uncertainty.ensemble import train_pinn_members

        if config.network.dropout <= 0:
            raise ValueError("--dropout must be > 0 for mc_dropout")
        train_key, draw_key = jax.random.split(key)
        fit = train_pinn_members(problem, config, members=1, key=train_key, progress=progress)
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


def generate_operator_data(*, n_train: int, n_test: int, nx: int, seed: int = 0) -> Any:
    """Operator Burgers data (DESIGN.md section 3): GRF initial data u0 ~ N(0, 625(-Lap + 25)^-2)
    on [0, 1) and u(., 1) by the pseudo-spectral solver, computed on 4 nx points and
    subsampled to nx. Returns ``operators.train.OperatorData`` (float32)."""
    from operators.grf import sample_grf
    from operators.train import OperatorData
    from pdes.problems import OPERATOR_BURGERS as P
    from pdes.spectral import solve_periodic_burgers

    for name, v in (("n_train", n_train), ("n_test", n_test)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if isinstance(nx, bool) or not isinstance(nx, int) or nx < 16:
        raise ValueError(f"nx must be an integer >= 16, got {nx!r}")
    rng = np.random.default_rng(seed)
    fine = 4 * nx
    a = sample_grf(
        rng, n_train + n_test, fine, alpha=P.grf_alpha, tau=P.grf_tau, sigma=P.grf_sigma, length=P.length
    )
    u = solve_periodic_burgers(a, nu=P.nu, length=P.length, t_save=[P.t_end])[:, -1]
    a, u = a[:, ::4].astype(np.float32), u[:, ::4].astype(np.float32)
    return OperatorData(a[:n_train], u[:n_train], a[n_train:], u[n_train:])


def run_fno(
    data: Any,
    model_config: Any,
    train_config: Any,
    *,
    method: str = "ensemble",
    members: int = 5,
    seed: int = 0,
    progress: bool = True,
) -> xr.Dataset:
    """Train on data's train part; predict its test functions: dims (sample, x) (+ member)."""
    from pdes.solution import operator_dataset
    from uncertainty.dropout import fno_apply_channel_dropout, fno_dropout_draws
    from uncertainty.ensemble import fno_ensemble, predict_fno_members, train_fno_members

    m = check_members(members, "--members")
    if method not in ("ensemble", "mc_dropout"):
        raise ValueError(f"method must be 'ensemble' or 'mc_dropout', got {method!r}")
    if data.dim != 1:
        raise ValueError("the uncertainty FNO runs support 1-D operator data")
    key = jax.random.key(seed)
    start = time.perf_counter()
    if method == "ensemble":
        fit = fno_ensemble(data, model_config, train_config, members=m, key=key, progress=progress)
        samples = predict_fno_members(fit.extra["apply"], fit.params, data.a_test)
        label = "fno_ensemble"
    else:
        if model_config.dropout <= 0:
            raise ValueError("--dropout must be > 0 for mc_dropout")
        train_key, draw_key = jax.random.split(key)
        fit = train_fno_members(
            data,
            model_config,
            train_config,
            members=1,
            key=train_key,
            progress=progress,
            apply=fno_apply_channel_dropout,
        )
        params = jax.tree.map(lambda a: a[0], fit.params)
        samples = fno_dropout_draws(fit.extra["apply"], params, data.a_test, draws=m, key=draw_key)
        label = "fno_mc_dropout"
    wall = time.perf_counter() - start
    if not np.all(np.isfinite(samples)):
        raise Failure("training diverged: the prediction has non-finite values")
    mean, var = mixture_moments(samples)
    u_std, floor = _std(var, mean)
    nx = data.a_test.shape[1]
    ds = operator_dataset(
        data.a_test,
        mean,
        x=np.arange(nx) / nx,
        equation="operator_burgers",
        method=label,
        config={
            "model": dataclasses.asdict(model_config),
            "train": train_config.to_dict(),
            "method": method,
            "members": m,
        },
        seed=seed,
        wall_time_s=wall,
        attrs={"members": m, "u_std_floor": floor},
    )
    ds["u"].attrs = {"units": "1", "long_name": "predictive mean of u(., 1)"}
    ds["u_true"] = (("sample", "x"), np.asarray(data.u_test, dtype=np.float64))
    ds["u_true"].attrs = {"units": "1", "long_name": "spectral reference u(., 1)"}
    ds["u_std"] = (("sample", "x"), u_std)
    ds["u_std"].attrs = {"units": "1", "long_name": "predictive standard deviation"}
    ds = ds.assign_coords(
        member=(
            "member",
            np.arange(m, dtype=np.float64),
            {"units": "1", "long_name": "ensemble member or dropout draw"},
        )
    )
    ds["u_samples"] = (("member", "sample", "x"), samples)
    ds["u_samples"].attrs = {"units": "1", "long_name": "ensemble members or dropout draws"}
    return ds


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
        )
    else:
        from operators.models import FNOConfig
        from operators.train import TrainConfig, load_operator_data

        data = (
            load_operator_data(args.data)
            if args.data
            else generate_operator_data(n_train=args.n_train, n_test=args.n_test, nx=args.nx, seed=args.seed)
        )
        mcfg = FNOConfig(
            dim=data.dim,
            modes=args.modes,
            width=args.width,
            depth=args.depth,
            dropout=args.dropout if args.method == "mc_dropout" else 0.0,
        )
        tcfg = TrainConfig(
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr or 3e-3,
            seed=args.seed,
            data_parallel=False,
        )
        ds = run_fno(
            data, mcfg, tcfg, method=args.method, members=args.members, seed=args.seed, progress=progress
        )
    write_dataset(ds, Path(args.out))
    funcs = args.model == "fno"
    m = all_metrics(ds.u.values, ds.u_std.values, ds.u_true.values, functions=funcs)
    return {
        "out": str(args.out),
        "method": ds.attrs["method"],
        "members": int(args.members),
        "wall_time_s": float(ds.attrs["wall_time_s"]),
        **m,
    }
