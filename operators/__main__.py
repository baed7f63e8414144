"""python -m operators {generate,train,evaluate}: Fourier neural operators from the command line.

Exit codes: 0 success, 2 bad input (one line on stderr naming the bad value), 1 internal failure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from operators.data import KINDS

PROG = "operators"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Fourier neural operators: generate data, train, evaluate.")
    sub = p.add_subparsers(dest="command", required=True, metavar="{generate,train,evaluate}")

    g = sub.add_parser("generate", help="generate an operator dataset with our own solvers",
                       description="Draw GRF inputs, solve on a fine grid, subsample, write DATA.nc in chunks.")
    g.add_argument("kind", choices=KINDS)
    g.add_argument("--n-train", type=int, default=1000, help="training samples (default 1000)")
    g.add_argument("--n-test", type=int, default=200, help="test samples (default 200)")
    g.add_argument("--nx", type=int, default=256, help="output grid points per axis (default 256)")
    g.add_argument("--nu", type=float, help="viscosity (burgers 0.1, navier_stokes 1e-3)")
    g.add_argument("--alpha", type=float, help="diffusivity of heat/heat2d (default 0.1)")
    g.add_argument("--t-end", type=float, help="final time (burgers 1, heat 0.1, navier_stokes 10)")
    g.add_argument("--fine-nx", type=int, help="solver grid, a multiple of --nx (default: >= 1024 in 1D)")
    g.add_argument("--snapshots", type=int, default=0,
                   help="navier_stokes: K snapshot pairs (w(t_k), w(t_k+1)) per trajectory instead of w0 -> w(T)")
    g.add_argument("--chunk-size", type=int, help="samples solved and written per chunk")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--out", required=True, help="output file DATA.nc")
    g.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")

    t = sub.add_parser("train", help="train an FNO on DATA.nc",
                       description="Train an FNO (relative-L2 loss, AdamW, cosine schedule) on the train split; "
                                   "reports the test relative L2 every epoch; checkpoints to --out.")
    t.add_argument("data", help="operator dataset DATA.nc (with a 'split')")
    t.add_argument("--out", required=True, help="model directory (config.json + checkpoint.npz)")
    t.add_argument("--epochs", type=int, help="epochs (default 150)")
    t.add_argument("--batch-size", type=int, help="global batch size (default 20)")
    t.add_argument("--lr", type=float, help="peak learning rate (default 3e-3)")
    t.add_argument("--weight-decay", type=float, help="AdamW weight decay (default 1e-4)")
    t.add_argument("--schedule", choices=("cosine", "constant", "step"), help="learning-rate schedule (default cosine)")
    t.add_argument("--loss", choices=("l2", "h1"), help="relative L2 (default) or relative H1")
    t.add_argument("--nx", type=int, help="train on the stored grid subsampled to NX points per axis")
    t.add_argument("--modes", type=int, help="kept frequencies per axis, |k| <= modes - 1 (default 16 in 1D, 12 in 2D)")
    t.add_argument("--width", type=int, help="hidden channels (default 64 in 1D, 32 in 2D)")
    t.add_argument("--depth", type=int, help="Fourier layers (default 4)")
    t.add_argument("--padding", type=float, help="zero padding as a fraction of the grid (non-periodic data)")
    t.add_argument("--no-coords", dest="coords", action="store_false", default=None,
                   help="do not append the grid coordinates (translation-equivariant model)")
    t.add_argument("--activation", choices=["gelu", "tanh", "relu", "identity"],
                   help="hidden activation (default gelu; identity: a linear operator, for linear PDEs)")
    t.add_argument("--dropout", type=float, help="dropout rate (default 0)")
    t.add_argument("--seed", type=int, help="seed (default 0)")
    t.add_argument("--checkpoint-every", type=int, help="epochs between checkpoints (default 10)")
    t.add_argument("--resume", action="store_true", help="continue the checkpoint in --out")
    t.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")

    e = sub.add_parser("evaluate", help="evaluate a trained FNO on DATA.nc",
                       description="Test errors (rel. L2, nRMSE, max, Fourier bands) on one or more grids.")
    e.add_argument("model", help="model directory written by train")
    e.add_argument("data", help="operator dataset DATA.nc (its test split, else every sample)")
    e.add_argument("--nx", type=int, nargs="+", help="grids to evaluate on (divisors of the stored grid)")
    e.add_argument("--out", help="write predictions (a, u, u_true) on the finest grid to PRED.nc")
    e.add_argument("--plot", help="PNG of the worst / median / best samples")
    e.add_argument("--batch-size", type=int, default=64)
    e.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    return p


def _generate(args: argparse.Namespace) -> dict[str, Any]:
    from operators.data import GenerateConfig, generate

    cfg = GenerateConfig(kind=args.kind, n_train=args.n_train, n_test=args.n_test, nx=args.nx, nu=args.nu,
                         alpha=args.alpha, t_end=args.t_end, fine_nx=args.fine_nx, snapshots=args.snapshots,
                         chunk_size=args.chunk_size, seed=args.seed)
    t0 = time.perf_counter()
    path = generate(cfg, args.out, progress=not args.no_progress)
    per = args.snapshots or 1
    return {"out": str(path), "kind": args.kind, "n_train": args.n_train * per, "n_test": args.n_test * per,
            "nx": args.nx, "wall_time_s": time.perf_counter() - t0}


def _train(args: argparse.Namespace) -> dict[str, Any]:
    from operators.models import FNOConfig
    from operators.train import TrainConfig, split_arrays, train_fno
    from pdes.solution import read_dataset

    ds = read_dataset(args.data)
    a, _, _ = split_arrays(ds)
    dim = a.ndim - 1
    model_kw = {k: v for k, v in (("modes", args.modes), ("width", args.width), ("depth", args.depth),
                                  ("padding", args.padding), ("dropout", args.dropout),
                                  ("coords", args.coords), ("activation", args.activation)) if v is not None}
    defaults = {"modes": 16, "width": 64} if dim == 1 else {"modes": 12, "width": 32}
    mcfg = FNOConfig(dim=dim, **{**defaults, **model_kw})
    train_kw = {k: v for k, v in (("epochs", args.epochs), ("batch_size", args.batch_size), ("lr", args.lr),
                                  ("weight_decay", args.weight_decay), ("schedule", args.schedule),
                                  ("loss", args.loss), ("nx", args.nx), ("seed", args.seed),
                                  ("checkpoint_every", args.checkpoint_every)) if v is not None}
    tcfg = TrainConfig(**train_kw)
    if args.resume and not (Path(args.out) / "config.json").is_file():
        raise FileNotFoundError(f"--resume: no checkpoint in {args.out!r}")
    t0 = time.perf_counter()
    model, history = train_fno(ds, mcfg, tcfg, out=args.out, resume=args.resume, progress=not args.no_progress)
    last = history[-1] if history else {}
    return {"out": args.out, "epochs": len(history), "train_loss": last.get("train_loss"),
            "rel_l2": last.get("test_rel_l2"), "train_time_s": last.get("wall_time_s"),
            "wall_time_s": time.perf_counter() - t0, "model": model.config.to_dict()}


def _evaluate(args: argparse.Namespace) -> dict[str, Any]:
    from operators.checkpoint import load_model
    from operators.evaluate import evaluate, plot_samples
    from pdes.solution import read_dataset, write_dataset

    model, meta = load_model(args.model)
    ds = read_dataset(args.data)
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be positive, got {args.batch_size}")
    results, preds = evaluate(model, ds, nx=args.nx, batch_size=args.batch_size, meta={"train": meta.get("train")})
    if args.out:
        write_dataset(preds, args.out)
    if args.plot:
        plot_samples(preds, args.plot)
    finest = results[-1]
    return {"model": args.model, "data": args.data, "rel_l2": finest["rel_l2"], "grids": results,
            "out": args.out, "plot": args.plot}


def _print_table(result: dict[str, Any], command: str) -> None:
    if command == "evaluate":
        cols = ("nx", "n_samples", "rel_l2", "rel_l2_std", "nrmse", "max_abs", "frmse_low", "frmse_mid", "frmse_high")
        print("  ".join(f"{c:>10}" for c in cols))
        for r in result["grids"]:
            print("  ".join(f"{r[c]:>10}" if isinstance(r[c], int) else f"{r[c]:>10.3e}" for c in cols))
        for key in ("out", "plot"):
            if result.get(key):
                print(f"wrote {result[key]}")
        return
    for k, v in result.items():
        if isinstance(v, float):
            v = f"{v:.4g}"
        print(f"{k:>14}: {v}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run = {"generate": _generate, "train": _train, "evaluate": _evaluate}[args.command]
    try:
        result = run(args)
    except (ValueError, FileNotFoundError) as err:
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"{PROG}: error: {msg}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, default=float))
    else:
        _print_table(result, args.command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
