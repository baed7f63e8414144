"""Uncertainty benchmarks, side by side in one process.

(a) ensemble cost: M members trained as one vmapped program vs one model, same steps,
    same config (the heat preset's PINN, Adam phase), and the same for the FNO on operator
    Burgers. Compile and run are timed apart; wall and process-CPU time are reported (the
    CPU time is the steadier number on a shared machine). Repeats are interleaved
    (1, M, 1, M, ...) and the minimum of each is kept.
(b) metrics: ``uncertainty.metrics.all_metrics`` vs uncertainty-toolbox's ``get_all_metrics``
    with the adversarial group calibration left out (its accuracy, average calibration,
    sharpness and scoring-rule parts), on the same n points; values compared.
(c) methods (``--only methods``): deep ensemble, MC dropout and last-layer Laplace FNOs on the
    same operator data (Burgers, or a reduced Darcy with ``--operator darcy``): train, fit a
    calibration map on held-out functions, judge on test functions against the reference:
    raw and calibrated coverage, rmsce, NLL, CRPS, sharpness, whole-function coverage, the
    Spearman correlation of per-function std and error, and the wall times (training, the
    Laplace fit, prediction).
(d) shift (``--only shift``): the same three methods trained on Burgers at ``--nx`` (256)
    points, calibrated there, then ``uncertainty.shift.shift_report``: resolution, input and
    parameter shift. ``--nu-range LO HI``: trained over viscosities (a nu input channel), so
    the models see the parameter shift.

    python benchmarks/uncertainty.py [--members 8] [--steps 300] [--n 1000000] [--json]
    python benchmarks/uncertainty.py --only methods --operator burgers [--nx 64 --n-train 256 --n-calibration 1024 --n-test 512]
    python benchmarks/uncertainty.py --only shift --nx 256 [--shift-n-test 128] [--nu-range 0.08 0.125]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from functools import partial

import numpy as np

# this file is benchmarks/uncertainty.py: keep its folder off sys.path so that
# `import uncertainty` finds the package, not this script
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]


def _timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def bench_pinn(members: int, steps: int, repeats: int, problem: str = "heat", phase: str = "adam",
               member_batch: int | None = None) -> dict:
    """M members vs one model on the ``fast`` preset of ``problem``, in the preset's dtype (float64
    runs inside x64, as training does). phase "adam": ``steps`` Adam steps (``PINN.adam_chunk``);
    "qn": ``steps`` quasi-Newton steps (``PINN.qn_chunk``, a fresh batch, line searches included),
    ``member_batch`` members vmapped at a time as the ensemble trainer does (default: its own).
    Also times one model on M times the points (the members' arithmetic without a member axis),
    which shows whether one model is overhead- or arithmetic-bound on this machine."""
    import jax

    from pdes.pinn.configs import get_config
    from pdes.pinn.core import build_pinn
    from pdes.pinn.phases import _map_members, default_member_batch
    from pdes.pinn.precision import x64_if
    from pdes.problems import PRESETS

    cfg = get_config(problem, "fast")
    net = cfg.network
    out: dict = {
        "model": f"PINN {problem} (fast preset: {net.arch} {net.depth}x{net.width}, {net.dtype}, "
                 f"n_res {cfg.sampling.n_res}, qn.n_res {cfg.qn.n_res}), {phase} phase",
        "steps": steps,
        "dtype": net.dtype,
    }
    variants = {1: cfg, members: cfg}
    if phase == "adam":
        variants["1x_points"] = cfg.updated({"sampling.n_res": members * cfg.sampling.n_res})
    else:
        variants["1x_points"] = cfg.updated({"qn.n_res": members * cfg.qn.n_res})
    with x64_if(net.dtype == "float64" or (phase == "qn" and cfg.qn.dtype == "float64")):
        programs = {}
        for name, c in variants.items():
            m = members if name == members else 1
            pinn = build_pinn(PRESETS[problem], c)
            keys = jax.random.split(jax.random.key(0), m)
            if phase == "adam":
                args = (jax.jit(jax.vmap(lambda k, p=pinn: p.init_train_state(p.init(k), k)))(keys),)
                fn = jax.jit(jax.vmap(partial(pinn.adam_chunk, n_steps=steps)))
            else:
                params = jax.jit(jax.vmap(pinn.init))(keys)
                opt, batch = jax.jit(jax.vmap(pinn.init_qn))(params)
                dtype = jax.tree.leaves(params)[0].dtype
                weights = jax.vmap(lambda _, p=pinn, dt=dtype: p.init_weights(dt))(keys)
                args = (params, opt, weights, batch, keys, jax.numpy.asarray(True))
                batch_m = default_member_batch(member_batch, m)
                out[f"member_batch_{_label(name)}"] = batch_m
                fn = jax.jit(partial(_map_members(
                    lambda p, o, w, b, k, fresh, ob, pinn=pinn: pinn.qn_chunk(p, o, w, b, k, fresh, steps, ob),
                    batch_m, None, None), obs=None))
            programs[name] = (fn, args)
        _race(programs, members, repeats, out)
    return out


def bench_pinn_full(members: int, problem: str = "heat", member_batch: int | None = None,
                    shard: bool = False) -> dict:
    """The whole ``fast`` preset of ``problem`` (Adam then quasi-Newton, ``train_pinn_members``),
    M = 1 and M = members, each run twice: cold (tracing and compiling its programs) and warm
    (the same programs again: the ensemble trainer keeps them per PINN), so the warm wall time
    is training plus one host sync per logged chunk. ``shard``: members over the devices
    (``--cpu-cores``: one CPU device per core, as ``python -m uncertainty run`` does)."""
    import jax

    from pdes.pinn.configs import get_config
    from pdes.problems import PRESETS
    from uncertainty.ensemble import train_pinn_members

    cfg = get_config(problem, "fast")
    out: dict = {"model": f"PINN {problem} fast preset, {cfg.adam.steps} Adam + {cfg.qn.steps} {cfg.qn.method} steps",
                 "devices": len(jax.devices()), "shard": shard}
    for run in ("cold", "warm"):
        for m in (1, members):
            fit = train_pinn_members(PRESETS[problem], cfg, members=m, key=jax.random.key(0),
                                     shard=shard, progress=False, member_batch=member_batch)
            out[f"wall_s_M{m}_{run}"] = fit.wall_time_s
    for run in ("cold", "warm"):
        out[f"ratio_wall_{run}"] = out[f"wall_s_M{members}_{run}"] / out[f"wall_s_M1_{run}"]
    out["ratio_wall"] = out["ratio_wall_warm"]
    return out


def _race(programs: dict, members: int, repeats: int, out: dict) -> None:
    """Compile each (jitted fn, args) of ``programs`` (keys 1, members, "1x_points"; compile time
    recorded), run them interleaved ``repeats`` times, and record the best wall and process-CPU
    time of each and the ratios to the one-model program in ``out``."""
    import jax

    compiled = {}
    for name, (fn, args) in programs.items():
        (_, compile_w, _) = _timed(lambda fn=fn, args=args: fn.lower(*args).compile())
        compiled[name] = (fn.lower(*args).compile(), args)
        out[f"compile_s_{_label(name)}"] = compile_w
    best = {name: [np.inf, np.inf] for name in compiled}
    for _ in range(repeats):
        for name, (program, args) in compiled.items():
            _, w, c = _timed(lambda program=program, args=args: jax.block_until_ready(program(*args)))
            best[name] = [min(best[name][0], w), min(best[name][1], c)]
    for name in compiled:
        out[f"wall_s_{_label(name)}"], out[f"cpu_s_{_label(name)}"] = best[name]
    out["ratio_wall"] = best[members][0] / best[1][0]
    out["ratio_cpu"] = best[members][1] / best[1][1]
    out["ratio_wall_one_model_m_points"] = best["1x_points"][0] / best[1][0]


def _label(name: int | str) -> str:
    return f"M{name}" if isinstance(name, int) else name


def bench_fno(members: int, epochs: int, repeats: int) -> dict:
    """M FNO members vs one model, same epochs; also one model on M times the data and batch
    (same steps per epoch, the members' arithmetic without a member axis)."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from operators.models import FNO, FNOConfig, functional
    from operators.train import TrainConfig, make_optimizer, make_train_epoch

    rng = np.random.default_rng(0)
    n, batch = 256, 32
    cfg = FNOConfig(modes=12, width=32, depth=4, proj_hidden=64)
    template = FNO(cfg, rngs=nnx.Rngs(0))
    apply, _ = functional(template)
    tx = make_optimizer(TrainConfig(epochs=epochs, batch_size=batch), n // batch)

    def init(k):
        return nnx.split(FNO(cfg, rngs=nnx.Rngs(k)), nnx.Param, ...)[1]

    def trainer(epoch, a, u):
        def train(params, opt, keys):
            def body(carry, e):
                p, o = carry
                ks = jax.vmap(lambda k: jax.random.fold_in(k, e))(keys)
                p, o, losses = jax.vmap(epoch, in_axes=(0, 0, 0, None, None))(p, o, ks, a, u)
                return (p, o), losses[:, -1]

            return jax.lax.scan(body, (params, opt), jnp.arange(epochs))

        return jax.jit(train)

    out: dict = {
        "model": f"FNO 1D (modes 12, width 32, depth 4), {n} functions x 64 points, batch {batch}",
        "epochs": epochs,
    }
    programs = {}
    for name, m, scale in ((1, 1, 1), (members, members, 1), ("1x_points", 1, members)):
        a = jnp.asarray(rng.normal(size=(scale * n, 64)), jnp.float32)
        u = jnp.asarray(rng.normal(size=(scale * n, 64)), jnp.float32)
        fn = trainer(make_train_epoch(apply, tx, batch_size=scale * batch), a, u)
        keys = jax.random.split(jax.random.key(0), m)
        params = jax.jit(jax.vmap(init))(keys)
        args = (params, jax.jit(jax.vmap(tx.init))(params), keys)
        programs[name] = (fn, args)
    _race(programs, members, repeats, out)
    return out


def bench_metrics(n: int) -> dict:
    import uncertainty_toolbox as uct

    from uncertainty.metrics import all_metrics

    rng = np.random.default_rng(0)
    y_true = rng.normal(size=n)
    y_pred = y_true + 0.7 * rng.normal(size=n)
    y_std = np.abs(rng.normal(size=n)) + 0.2
    ours, w_ours, _ = _timed(lambda: all_metrics(y_pred, y_std, y_true))
    ours2, w2, _ = _timed(lambda: all_metrics(y_pred, y_std, y_true))
    w_ours = min(w_ours, w2)

    def toolbox():
        m = uct.metrics
        return {
            "accuracy": m.get_all_accuracy_metrics(y_pred, y_true, verbose=False),
            "avg_calibration": m.get_all_average_calibration(y_pred, y_std, y_true, 100, verbose=False),
            "sharpness": m.get_all_sharpness_metrics(y_std, verbose=False),
            "scoring_rule": m.get_all_scoring_rule_metrics(y_pred, y_std, y_true, 99, True, verbose=False),
        }

    theirs, w_tb, _ = _timed(toolbox)
    pairs = {
        "rmsce": theirs["avg_calibration"]["rms_cal"],
        "mace": theirs["avg_calibration"]["ma_cal"],
        "miscalibration_area": theirs["avg_calibration"]["miscal_area"],
        "sharpness": theirs["sharpness"]["sharp"],
        "nll": theirs["scoring_rule"]["nll"],
        "crps": theirs["scoring_rule"]["crps"],
        "interval_score": theirs["scoring_rule"]["interval"],
    }
    diffs = {k: abs(float(ours[k]) - float(v)) for k, v in pairs.items()}
    return {
        "n": n,
        "ours_s": w_ours,
        "toolbox_s": w_tb,
        "speedup": w_tb / w_ours,
        "max_abs_diff": max(diffs.values()),
        "abs_diff": diffs,
        "values": {k: float(ours[k]) for k in pairs},
        "note": "toolbox rmsce/mace use its default (non-vectorized) proportion lists, as get_all_metrics does",
    }


METHOD_KEYS = ("rel_l2", "coverage_50", "coverage_90", "coverage_95", "coverage_99", "rmsce", "mace", "nll",
               "crps", "sharpness", "interval_score", "function_coverage_90", "function_coverage_95")


def _task(args) -> tuple:
    """(task, model config, train config) of the methods / shift benchmarks."""
    from operators.models import FNOConfig
    from operators.train import TrainConfig
    from uncertainty.run import generate_fno_task, load_fno_task

    if args.operator == "darcy":
        from operators.data import GenerateConfig, generate

        nx = args.nx or 29
        path = os.path.join(args.workdir, f"darcy_{nx}_{args.n_train}_{args.n_calibration}_{args.n_test}.nc")
        if not os.path.isfile(path):
            # a calibration split of the file: the n_calibration samples after the training ones
            from pdes.solution import read_dataset, write_dataset

            generate(GenerateConfig(kind="darcy", n_train=args.n_train + args.n_calibration, n_test=args.n_test,
                                    nx=nx, fine_nx=2 * nx - 1, seed=0), path, progress=True)
            ds = read_dataset(path)
            split = np.asarray(ds["split"].values.astype(str), dtype=object)
            split[args.n_train:args.n_train + args.n_calibration] = "calibration"
            ds["split"] = ("sample", split, ds["split"].attrs)
            write_dataset(ds, path)
        task = load_fno_task(path)
        mcfg = FNOConfig(dim=2, modes=args.modes or 8, width=args.width or 24)
    else:
        import dataclasses

        from pdes.problems import OPERATOR_BURGERS

        problem = dataclasses.replace(OPERATOR_BURGERS, nu_range=tuple(args.nu_range)) if args.nu_range else None
        task = generate_fno_task(n_train=args.n_train, n_calibration=args.n_calibration, n_test=args.n_test,
                                 nx=args.nx or 64, seed=0, problem=problem)
        mcfg = FNOConfig(modes=args.modes or 12, width=args.width or 32)
    tcfg = TrainConfig(epochs=args.fno_epochs, batch_size=16, lr=3e-3, data_parallel=False)
    return task, mcfg, tcfg


def _fit_method(task, mcfg, tcfg, method: str, args):
    import dataclasses

    import jax

    from uncertainty.predictor import fit_fno_predictor
    from uncertainty.run import fit_prediction_map

    members = {"ensemble": args.ens_members, "mc_dropout": args.draws, "laplace": args.draws}[method]
    cfg = dataclasses.replace(mcfg, dropout=args.dropout if method == "mc_dropout" else 0.0)
    key = jax.random.key(0)
    pred = fit_fno_predictor(task.data, cfg, tcfg, method=method, members=members, key=key, progress=True,
                             info=task.info)
    t0 = time.perf_counter()
    pred.calibration = fit_prediction_map(pred, task.a_cal, task.u_cal, periodic=task.data.periodic,
                                          key=jax.random.fold_in(key, 1))
    return pred, time.perf_counter() - t0


def bench_methods(args) -> dict:
    """(c): the three methods on one task; numbers on the test functions, raw and calibrated."""
    import jax
    from scipy import stats

    from uncertainty.calibration import calibrated_metrics
    from uncertainty.metrics import all_metrics, crps_samples

    task, mcfg, tcfg = _task(args)
    d = task.data
    out: dict = {"problem": args.operator, "grid": list(d.spatial), "n_train": int(d.a_train.shape[0]),
                 "n_calibration": task.n_calibration, "n_test": int(d.a_test.shape[0]), "epochs": tcfg.epochs,
                 "model": mcfg.to_dict(), "methods": {}}
    for method in args.methods:
        pred, cal_s = _fit_method(task, mcfg, tcfg, method, args)
        t0 = time.perf_counter()
        mean, std, samples = pred.predict(d.a_test, key=jax.random.key(2))
        predict_s = time.perf_counter() - t0
        std = np.sqrt(std**2 + (1e-6 * np.abs(mean).max()) ** 2)
        cmap = pred.calibration
        bands = {lv: cmap.band(std, lv) for lv in (0.9, 0.95)}
        raw = all_metrics(mean, std, d.u_test, functions=True)
        gauss = all_metrics(mean, cmap.std(std), d.u_test, functions=True, bands=bands)
        cal = calibrated_metrics(mean, cmap.std(std), d.u_test, cmap, functions=True, bands=bands)
        err = np.sqrt(np.mean((mean - d.u_test).reshape(len(mean), -1) ** 2, axis=1))
        fstd = np.sqrt(np.mean(std.reshape(len(mean), -1) ** 2, axis=1))
        row = {"raw": {k: raw[k] for k in METHOD_KEYS}, "calibrated": {k: cal[k] for k in METHOD_KEYS},
               "calibrated_gaussian_reading": {k: gauss[k] for k in METHOD_KEYS},
               "whole_function_coverage_90": cal["whole_function_coverage_90"],
               "whole_function_coverage_95": cal["whole_function_coverage_95"],
               "crps_samples_raw": crps_samples(samples, d.u_test),
               "spearman_function_std_error": float(stats.spearmanr(fstd, err).statistic),
               "train_s": pred.train_time_s, "network_train_s": pred.info.get("network_train_s"),
               "laplace_fit_s": pred.info.get("laplace_fit_s"), "calibration_fit_s": cal_s,
               "predict_test_s": predict_s, "members": pred.members,
               "map": {"method": cmap.method, "spread": list(cmap.spread), "factor": cmap.factor,
                       "band_quantiles": {str(k): v for k, v in cmap.band_quantiles.items()},
                       "n_spread": cmap.n_spread, "n_conformal": cmap.n_conformal}}
        if method == "laplace":
            row["laplace"] = pred.laplace.scalars()
            row["laplace_overhead"] = (pred.info["network_train_s"] + pred.info["laplace_fit_s"]) / pred.info[
                "network_train_s"]
        out["methods"][method] = row
        c = row["calibrated"]
        print(f"{method:10s} train {row['train_s']:.1f} s | raw cov95 {row['raw']['coverage_95']:.3f} rmsce "
              f"{row['raw']['rmsce']:.3f} | calibrated cov95 {c['coverage_95']:.3f} rmsce {c['rmsce']:.3f} "
              f"wf90 {row['whole_function_coverage_90']:.3f} | as Gaussian cov95 "
              f"{row['calibrated_gaussian_reading']['coverage_95']:.3f} rmsce "
              f"{row['calibrated_gaussian_reading']['rmsce']:.3f} | rel_l2 {c['rel_l2']:.2e}", file=sys.stderr)
    return out


def bench_shift(args) -> dict:
    """(d): each method trained on Burgers at --nx, calibrated there, then shifted."""
    from uncertainty.shift import shift_report

    task, mcfg, tcfg = _task(args)
    out: dict = {"train_nx": int(task.data.spatial[0]), "n_train": int(task.data.a_train.shape[0]),
                 "nu_range": args.nu_range,
                 "n_calibration": task.n_calibration, "epochs": tcfg.epochs, "methods": {}}
    for method in args.methods:
        pred, _ = _fit_method(task, mcfg, tcfg, method, args)
        if args.save_models:
            pred.save(os.path.join(args.workdir, f"shift_model_{method}"))
        res = shift_report(pred, n_test=args.shift_n_test, seed=1, progress=True)
        res["train_s"] = pred.train_time_s
        out["methods"][method] = res
        for kind, block in res["shifts"].items():
            print(f"{method:10s} {kind:10s} std grows {block['std_grows']}, spearman min {block['spearman_min']:.3f},"
                  f" std x{block['std_ratio_max']:.2f}, error x{block['error_ratio_max']:.2f}", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--members", type=int, default=8)
    p.add_argument("--steps", type=int, default=300, help="PINN steps per timed run")
    p.add_argument("--problem", choices=["heat", "wave", "burgers"], default="heat", help="PINN preset")
    p.add_argument("--phase", choices=["adam", "qn", "full"], default="adam",
                   help="PINN phase to time (full: the whole preset, cold and warm)")
    p.add_argument("--cpu-cores", action="store_true",
                   help="one JAX CPU device per core, members sharded over them (as `python -m uncertainty run`)")
    p.add_argument("--member-batch", type=int, default=None,
                   help="PINN quasi-Newton members vmapped at a time (default: the ensemble trainer's)")
    p.add_argument("--epochs", type=int, default=10, help="FNO epochs per timed run")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--n", type=int, default=1_000_000, help="points for the metrics benchmark")
    p.add_argument("--only", choices=["pinn", "fno", "metrics", "methods", "shift"], action="append",
                   help="parts to run (default pinn, fno, metrics; methods and shift only when named)")
    p.add_argument("--operator", choices=["burgers", "darcy"], default="burgers",
                   help="methods/shift: operator data (darcy: reduced, nx 29 solved on 57 nodes)")
    p.add_argument("--methods", nargs="+", default=["ensemble", "mc_dropout", "laplace"])
    p.add_argument("--nx", type=int, default=None, help="methods/shift: grid (burgers 64, darcy 29)")
    p.add_argument("--n-train", type=int, default=256)
    p.add_argument("--n-calibration", type=int, default=1024)
    p.add_argument("--n-test", type=int, default=512)
    p.add_argument("--fno-epochs", type=int, default=40, help="methods/shift: training epochs")
    p.add_argument("--modes", type=int, default=None)
    p.add_argument("--width", type=int, default=None)
    p.add_argument("--ens-members", type=int, default=5, help="methods/shift: ensemble members")
    p.add_argument("--draws", type=int, default=32, help="methods/shift: dropout draws and Laplace samples")
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--shift-n-test", type=int, default=128)
    p.add_argument("--nu-range", type=float, nargs=2, metavar=("LO", "HI"),
                   help="methods/shift on Burgers: each function's nu log-uniform on [LO, HI], an input channel")
    p.add_argument("--save-models", action="store_true", help="shift: keep the models in --workdir")
    p.add_argument("--workdir", default="out/bench_uncertainty", help="data and models of methods/shift")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    import jax

    if args.cpu_cores:
        from uncertainty.ensemble import spread_over_cpu_cores

        spread_over_cpu_cores()

    only = set(args.only or ["pinn", "fno", "metrics"])
    if only & {"methods", "shift"}:
        os.makedirs(args.workdir, exist_ok=True)
    res: dict = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "devices": [f"{d.platform}:{d.device_kind}" for d in jax.devices()],
    }
    if "pinn" in only:
        if args.phase == "full":
            res["pinn"] = bench_pinn_full(args.members, args.problem, args.member_batch, shard=args.cpu_cores)
        else:
            res["pinn"] = bench_pinn(args.members, args.steps, args.repeats, args.problem, args.phase,
                                     args.member_batch)
        print(
            f"PINN  M={args.members} vs 1: wall x{res['pinn']['ratio_wall']:.2f}, cpu x{res['pinn'].get('ratio_cpu', float('nan')):.2f}",
            file=sys.stderr,
        )
    if "fno" in only:
        res["fno"] = bench_fno(args.members, args.epochs, args.repeats)
        print(
            f"FNO   M={args.members} vs 1: wall x{res['fno']['ratio_wall']:.2f}, cpu x{res['fno']['ratio_cpu']:.2f}",
            file=sys.stderr,
        )
    if "metrics" in only:
        res["metrics"] = bench_metrics(args.n)
        mm = res["metrics"]
        print(
            f"metrics n={mm['n']}: ours {mm['ours_s']:.3f} s, toolbox {mm['toolbox_s']:.1f} s, x{mm['speedup']:.0f}, max diff {mm['max_abs_diff']:.1e}",
            file=sys.stderr,
        )
    if "methods" in only:
        res["methods"] = bench_methods(args)
    if "shift" in only:
        res["shift"] = bench_shift(args)
    print(json.dumps(res, indent=None if args.json else 2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
