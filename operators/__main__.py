"""python -m operators {generate,import,train,evaluate,launch}: Fourier neural operators from the command line.

``train`` runs as one of N processes (``--coordinator``/``--num-processes``/``--process-id``,
their ``SCIML_*`` variables, SLURM or Open MPI; ``launch --processes N -- train ...`` starts N
local ones): see ``plumbing.distributed`` and the README's "Running on a cluster".

Exit codes (``plumbing.cli``): 0 success, 2 bad input (one line on stderr naming the bad value),
1 failure.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from operators.data import KINDS
from plumbing.cli import nonneg_int, positive_int, print_json, run_cli
from plumbing.tables import print_table

PROG = "operators"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Fourier neural operators: generate or import data, train, evaluate.")
    sub = p.add_subparsers(dest="command", required=True, metavar="{generate,import,train,evaluate}")

    g = sub.add_parser("generate", help="generate an operator dataset with our own solvers",
                       description="Draw GRF inputs, solve on a fine grid, subsample, write DATA.nc in chunks.")
    g.add_argument("kind", choices=KINDS)
    g.add_argument("--n-train", type=int, default=1000, help="training samples (default 1000)")
    g.add_argument("--n-test", type=int, default=200, help="test samples (default 200)")
    g.add_argument("--nx", type=int, default=None,
                   help="output grid points per axis (default 256; darcy 85, the FNO paper's training grid)")
    g.add_argument("--nu", type=float, help="viscosity (burgers 0.1, navier_stokes 1e-3)")
    g.add_argument("--alpha", type=float, help="diffusivity of heat/heat2d (default 0.1)")
    g.add_argument("--t-end", type=float, help="final time (burgers 1, heat 0.1, navier_stokes 10)")
    g.add_argument("--fine-nx", type=int,
                   help="solver grid: periodic kinds a multiple of --nx (default >= 1024 in 1D); darcy a node grid "
                        "with fine_nx - 1 = r (nx - 1), r >= 2 (default 421 when possible, as in the FNO paper)")
    g.add_argument("--snapshots", type=int, default=0,
                   help="navier_stokes: K snapshot pairs (w(t_k), w(t_k+1)) per trajectory instead of w0 -> w(T)")
    g.add_argument("--chunk-size", type=int, help="samples solved and written per chunk")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--out", required=True, help="output file DATA.nc")
    g.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")

    _add_import_parser(sub)

    t = sub.add_parser("train", help="train an FNO on DATA.nc",
                       description="Train an FNO (relative-L2 loss, AdamW, cosine schedule) on the train split; "
                                   "reports the test relative L2 every epoch; checkpoints to --out.")
    t.add_argument("data", help="operator dataset DATA.nc (with a 'split')")
    t.add_argument("--out", required=True, help="model directory (checkpoints: one folder per saved epoch)")
    t.add_argument("--epochs", type=int, help="epochs (default 150)")
    t.add_argument("--batch-size", type=int, help="global batch size (default 20)")
    t.add_argument("--lr", type=float, help="peak learning rate (default 3e-3)")
    t.add_argument("--weight-decay", type=float, help="AdamW weight decay (default 1e-4)")
    t.add_argument("--schedule", choices=("cosine", "constant", "step"), help="learning-rate schedule (default cosine)")
    t.add_argument("--loss", choices=("l2", "h1"), help="relative L2 (default) or relative H1")
    t.add_argument("--nx", type=int, help="train on the stored grid subsampled to NX points per axis")
    t.add_argument("--modes", type=int, help="kept frequencies per axis, |k| <= modes - 1 (default 16 in 1D, 12 in "
                   "2D, capped at what the grid allows)")
    t.add_argument("--width", type=int, help="hidden channels (default 64 in 1D, 32 in 2D)")
    t.add_argument("--depth", type=int, help="Fourier layers (default 4)")
    t.add_argument("--padding", type=float, help="zero padding as a fraction of the grid (default: 0 for periodic "
                   "data, 0.1 for non-periodic data, from the dataset's periodic attribute)")
    t.add_argument("--no-coords", dest="coords", action="store_false", default=None,
                   help="do not append the grid coordinates (translation-equivariant model)")
    t.add_argument("--activation", choices=["gelu", "tanh", "relu", "identity"],
                   help="hidden activation (default gelu; identity: a linear operator, for linear PDEs)")
    t.add_argument("--dropout", type=float, help="dropout rate (default 0)")
    t.add_argument("--seed", type=int, help="seed (default 0)")
    t.add_argument("--checkpoint-every", type=int, help="epochs between checkpoints (default 10)")
    t.add_argument("--resume", action="store_true", help="continue the checkpoint in --out (on any number of processes)")
    t.add_argument("--loader", choices=("auto", "memory", "stream"),
                   help="memory: the whole set on the devices; stream: each process reads its rows of every batch "
                        "from the file (default auto: stream with several processes or a file larger than a "
                        "quarter of the free memory)")
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


def _add_import_parser(sub: Any) -> None:
    i = sub.add_parser("import", help="import a dataset of the field (FNO .mat, PDEBench, neuraloperator .pt, "
                                      "The Well, .npz) as DATA.nc",
                       description="Read a subset of a dataset file (only the requested samples, frames and grid "
                                   "points) and write it as an operator dataset DATA.nc with a train/test split. "
                                   "Formats: fno-mat, pdebench, neuralop-pt, well, npz, npy (the README maps "
                                   "their keys).")
    i.add_argument("src", help="the dataset file (for two .npy files: a's file; --target names u's)")
    i.add_argument("--format", required=True, metavar="FORMAT",
                   help="fno-mat, pdebench, neuralop-pt, well, npz or npy")
    i.add_argument("--out", required=True, help="output file DATA.nc (written atomically)")
    i.add_argument("--subsample", type=positive_int, default=1, metavar="S", help="stride on every spatial axis (default 1)")
    i.add_argument("--n-train", type=nonneg_int, metavar="N", help="train samples: the first N (default: all before the test set)")
    i.add_argument("--n-test", type=nonneg_int, metavar="M", help="test samples (default: the rest; with no range flag, the last fifth)")
    i.add_argument("--test-from", type=nonneg_int, metavar="I", help="test samples start at index I "
                   "(default: right after the train and calibration samples)")
    i.add_argument("--n-calibration", type=nonneg_int, default=0, metavar="K",
                   help="calibration samples, right after the train samples (default 0)")
    i.add_argument("--input", dest="input_key", metavar="KEY", help="the array that becomes a")
    i.add_argument("--target", dest="target_key", metavar="KEY", help="the array that becomes u")
    i.add_argument("--t-in", type=int, metavar="I", help="time index of a in a time series (default 0; negative counts from the end)")
    i.add_argument("--t-out", type=int, metavar="J", help="time index of u in a time series (default the last)")
    i.add_argument("--channel", type=nonneg_int, metavar="C", help="channel of multi-channel arrays (default 0)")
    i.add_argument("--field", metavar="NAME", help="well: the t0_fields field (default: the only one)")
    i.add_argument("--trajectories", metavar="SPEC", help="well: trajectories, e.g. 0:40 or 1,5,9 (default all)")
    i.add_argument("--steps", metavar="SPEC", help="well: time steps t of the pairs (t, t+1) (default all)")
    i.add_argument("--periodic", action=argparse.BooleanOptionalAction, default=None,
                   help="whether the domain is periodic (default: by the format's layout)")
    i.add_argument("--equation", metavar="NAME", help="name recorded in the file (default: the layout or the file name)")
    i.add_argument("--json", action="store_true", help="print a JSON summary on stdout")


def _import(args: argparse.Namespace) -> dict[str, Any]:
    import json

    import numpy as np

    from operators.io import import_dataset

    t0 = time.perf_counter()
    ds = import_dataset(args.src, format=args.format, out=args.out, subsample=args.subsample, n_train=args.n_train,
                        n_test=args.n_test, test_from=args.test_from, n_calibration=args.n_calibration,
                        input_key=args.input_key, target_key=args.target_key, t_in=args.t_in, t_out=args.t_out,
                        channel=args.channel, field=args.field, trajectories=args.trajectories, steps=args.steps,
                        periodic=args.periodic, equation=args.equation)
    split = np.asarray(ds["split"]).astype(str)
    keys = json.loads(ds.attrs["source_keys"])
    return {"out": args.out, "format": args.format, "layout": keys["layout"], "a": keys.get("a"),
            "u": keys.get("u"), "grid": "x".join(str(n) for n in ds["a"].shape[1:]),
            "n_train": int((split == "train").sum()), "n_calibration": int((split == "calibration").sum()),
            "n_test": int((split == "test").sum()), "periodic": bool(ds.attrs["periodic"]),
            "wall_time_s": time.perf_counter() - t0}


def _generate(args: argparse.Namespace) -> dict[str, Any]:
    from operators.data import GenerateConfig, generate

    nx = args.nx if args.nx is not None else (85 if args.kind == "darcy" else 256)
    cfg = GenerateConfig(kind=args.kind, n_train=args.n_train, n_test=args.n_test, nx=nx, nu=args.nu,
                         alpha=args.alpha, t_end=args.t_end, fine_nx=args.fine_nx, snapshots=args.snapshots,
                         chunk_size=args.chunk_size, seed=args.seed)
    t0 = time.perf_counter()
    path = generate(cfg, args.out, progress=not args.no_progress)
    per = args.snapshots or 1
    return {"out": str(path), "kind": args.kind, "n_train": args.n_train * per, "n_test": args.n_test * per,
            "nx": nx, "wall_time_s": time.perf_counter() - t0}


def _train(args: argparse.Namespace) -> dict[str, Any]:
    from pathlib import Path

    from operators.checkpoint import has_checkpoint
    from operators.models import FNOConfig
    from operators.train import TrainConfig, train_fno

    if not Path(args.data).is_file():
        raise FileNotFoundError(f"no such file: {args.data!r}")
    model_kw = {k: v for k, v in (("modes", args.modes), ("width", args.width), ("depth", args.depth),
                                  ("padding", args.padding), ("dropout", args.dropout),
                                  ("coords", args.coords), ("activation", args.activation)) if v is not None}
    mcfg = FNOConfig(**model_kw)  # dim and the unset fields adapt to the data (train_fno, FNOConfig.resolved)
    train_kw = {k: v for k, v in (("epochs", args.epochs), ("batch_size", args.batch_size), ("lr", args.lr),
                                  ("weight_decay", args.weight_decay), ("schedule", args.schedule),
                                  ("loss", args.loss), ("nx", args.nx), ("seed", args.seed),
                                  ("checkpoint_every", args.checkpoint_every), ("loader", args.loader))
                if v is not None}
    tcfg = TrainConfig(**train_kw)
    if args.resume and not has_checkpoint(args.out):
        raise FileNotFoundError(f"--resume: no checkpoint in {args.out!r}")
    t0 = time.perf_counter()
    # the path, not a loaded Dataset: the streaming loader reads only each process's rows
    model, history = train_fno(args.data, mcfg, tcfg, out=args.out, resume=args.resume,
                               progress=not args.no_progress)
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
        from operators.evaluate import TABLE_COLUMNS

        print_table(result["grids"], TABLE_COLUMNS)
        for key in ("out", "plot"):
            if result.get(key):
                print(f"wrote {result[key]}")
        return
    for k, v in result.items():
        if isinstance(v, float):
            v = f"{v:.4g}"
        print(f"{k:>14}: {v}")


def _dispatch(args: argparse.Namespace) -> int:
    run = {"generate": _generate, "import": _import, "train": _train, "evaluate": _evaluate}[args.command]
    result = run(args)
    if args.json:
        print_json(result)
    else:
        _print_table(result, args.command)
    return 0


def main(argv: list[str] | None = None) -> int:
    from plumbing.compilation_cache import enable as enable_compilation_cache

    enable_compilation_cache()  # JAX's persistent cache: a second run starts at once
    return run_cli(PROG, build_parser(), argv, _dispatch, collective=lambda args: args.command == "train")


if __name__ == "__main__":
    sys.exit(main())
