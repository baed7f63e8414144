"""Uncertainty benchmarks, side by side in one process.

(a) ensemble cost: M members trained as one vmapped program vs one model, same steps,
    same config (the heat preset's PINN, Adam phase), and the same for the FNO on operator
    Burgers. Compile and run are timed apart; wall and process-CPU time are reported (the
    CPU time is the steadier number on a shared machine). Repeats are interleaved
    (1, M, 1, M, ...) and the minimum of each is kept.
(b) metrics: ``uncertainty.metrics.all_metrics`` vs uncertainty-toolbox's ``get_all_metrics``
    with the adversarial group calibration left out (its accuracy, average calibration,
    sharpness and scoring-rule parts), on the same n points; values compared.

    python benchmarks/uncertainty.py [--members 8] [--steps 300] [--n 1000000] [--json]
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


def bench_pinn(members: int, steps: int, repeats: int) -> dict:
    import jax

    from pdes.pinn.configs import get_config
    from pdes.pinn.core import build_pinn
    from pdes.problems import HEAT

    cfg = get_config("heat", "fast")
    pinn = build_pinn(HEAT, cfg)
    out: dict = {"model": "PINN heat (fast preset: MLP 3x32, n_res 1024, Adam)", "steps": steps}
    programs = {}
    for m in (1, members):
        keys = jax.random.split(jax.random.key(0), m)
        state = jax.jit(jax.vmap(lambda k: pinn.init_train_state(pinn.init(k), k)))(keys)
        fn = jax.jit(jax.vmap(partial(pinn.adam_chunk, n_steps=steps)))
        (_, compile_w, compile_c) = _timed(lambda fn=fn, state=state: fn.lower(state).compile())
        compiled = fn.lower(state).compile()
        programs[m] = (compiled, state)
        out[f"compile_s_M{m}"] = compile_w
    best = {m: [np.inf, np.inf] for m in programs}
    for _ in range(repeats):
        for m, (compiled, state) in programs.items():
            _, w, c = _timed(lambda compiled=compiled, state=state: jax.block_until_ready(compiled(state)))
            best[m] = [min(best[m][0], w), min(best[m][1], c)]
    for m in programs:
        out[f"wall_s_M{m}"], out[f"cpu_s_M{m}"] = best[m]
    out["ratio_wall"] = best[members][0] / best[1][0]
    out["ratio_cpu"] = best[members][1] / best[1][1]
    return out


def bench_fno(members: int, epochs: int, repeats: int) -> dict:
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from operators.models import FNO, FNOConfig, functional
    from operators.train import TrainConfig, make_optimizer, make_train_epoch

    rng = np.random.default_rng(0)
    a = jnp.asarray(rng.normal(size=(256, 64)), jnp.float32)
    u = jnp.asarray(rng.normal(size=(256, 64)), jnp.float32)
    cfg = FNOConfig(modes=12, width=32, depth=4, proj_hidden=64)
    tcfg = TrainConfig(epochs=epochs, batch_size=32)
    template = FNO(cfg, rngs=nnx.Rngs(0))
    apply, _ = functional(template)
    tx = make_optimizer(tcfg, 256 // 32)
    epoch = make_train_epoch(apply, tx, batch_size=32)

    def init(k):
        return nnx.split(FNO(cfg, rngs=nnx.Rngs(k)), nnx.Param, ...)[1]

    def train(params, opt, keys):
        def body(carry, e):
            p, o = carry
            ks = jax.vmap(lambda k: jax.random.fold_in(k, e))(keys)
            p, o, losses = jax.vmap(epoch, in_axes=(0, 0, 0, None, None))(p, o, ks, a, u)
            return (p, o), losses[:, -1]

        return jax.lax.scan(body, (params, opt), jnp.arange(epochs))

    out: dict = {
        "model": "FNO 1D (modes 12, width 32, depth 4), 256 functions x 64 points, batch 32",
        "epochs": epochs,
    }
    programs = {}
    for m in (1, members):
        keys = jax.random.split(jax.random.key(0), m)
        params = jax.jit(jax.vmap(init))(keys)
        opt = jax.jit(jax.vmap(tx.init))(params)
        fn = jax.jit(train)
        _, cw, _ = _timed(
            lambda fn=fn, params=params, opt=opt, keys=keys: fn.lower(params, opt, keys).compile()
        )
        programs[m] = (fn.lower(params, opt, keys).compile(), (params, opt, keys))
        out[f"compile_s_M{m}"] = cw
    best = {m: [np.inf, np.inf] for m in programs}
    for _ in range(repeats):
        for m, (compiled, args) in programs.items():
            _, w, c = _timed(lambda compiled=compiled, args=args: jax.block_until_ready(compiled(*args)))
            best[m] = [min(best[m][0], w), min(best[m][1], c)]
    for m in programs:
        out[f"wall_s_M{m}"], out[f"cpu_s_M{m}"] = best[m]
    out["ratio_wall"] = best[members][0] / best[1][0]
    out["ratio_cpu"] = best[members][1] / best[1][1]
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--members", type=int, default=8)
    p.add_argument("--steps", type=int, default=300, help="PINN Adam steps per timed run")
    p.add_argument("--epochs", type=int, default=10, help="FNO epochs per timed run")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--n", type=int, default=1_000_000, help="points for the metrics benchmark")
    p.add_argument("--only", choices=["pinn", "fno", "metrics"], action="append")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    import jax

    only = set(args.only or ["pinn", "fno", "metrics"])
    res: dict = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "devices": [f"{d.platform}:{d.device_kind}" for d in jax.devices()],
    }
    if "pinn" in only:
        res["pinn"] = bench_pinn(args.members, args.steps, args.repeats)
        print(
            f"PINN  M={args.members} vs 1: wall x{res['pinn']['ratio_wall']:.2f}, cpu x{res['pinn']['ratio_cpu']:.2f}",
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
    print(json.dumps(res, indent=None if args.json else 2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
