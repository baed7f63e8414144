"""python -m uncertainty: train ensembles / MC dropout and write calibration reports.

python -m uncertainty run {pinn,fno} --method {ensemble,mc_dropout} [--members M] --out PRED.nc
python -m uncertainty report PRED.nc --out REPORT_DIR [--json]
"""

from __future__ import annotations

import argparse
import sys

from plumbing.cli import key_value as _key_value
from plumbing.cli import print_json, run_cli

__all__ = ["build_parser", "main"]


def _add_run(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser(
        "run",
        help="train an ensemble or MC-dropout model and write a prediction file",
        description="Train M members (one compiled program) or one dropout model and write u, u_std, u_samples, u_true.",
    )
    kinds = run.add_subparsers(dest="model", required=True, metavar="{pinn,fno}")
    pinn = kinds.add_parser(
        "pinn",
        help="physics-informed network on a PDE preset",
        description="PINN ensemble / MC dropout on a preset.",
    )
    pinn.add_argument(
        "equation",
        nargs="?",
        default="heat",
        choices=["heat", "wave", "burgers"],
        help="PDE preset (default heat)",
    )
    pinn.add_argument("--nu", type=float, help="Burgers viscosity")
    pinn.add_argument("--alpha", type=float, help="heat diffusivity")
    pinn.add_argument("--c", type=float, help="wave speed")
    pinn.add_argument("--t-end", type=float, help="final time")
    pinn.add_argument("--nx", type=int, default=128, help="output grid points in x (default 128)")
    pinn.add_argument("--nt", type=int, default=64, help="output grid points in t (default 64)")
    pinn.add_argument(
        "--noise", type=float, default=0.0, help="std of Gaussian noise on observations (noisy-data setting)"
    )
    pinn.add_argument(
        "--n-obs", type=int, default=0, help="number of noisy observations of the exact solution (0: none)"
    )
    pinn.add_argument(
        "--gaussian-head",
        action="store_true",
        help="learn each member's noise std too (Gaussian likelihood on the observations)",
    )
    pinn.add_argument("--preset", default="fast", help="named PINN configuration of pdes.pinn (default fast)")
    pinn.add_argument("--config", metavar="FILE.toml", help="TOML file of PINN config fields")
    pinn.add_argument(
        "--set",
        dest="overrides",
        action="append",
        type=_key_value,
        default=[],
        metavar="KEY=VALUE",
        help="override a PINN config entry (repeatable)",
    )
    pinn.add_argument("--steps", type=int, default=None, help="Adam steps (default: the preset's)")
    pinn.add_argument(
        "--member-batch",
        type=int,
        default=None,
        metavar="B",
        help="ensemble members vmapped at once in the quasi-Newton phase, groups in sequence "
        "(default: all on a GPU, 1 on a CPU)",
    )
    fno = kinds.add_parser(
        "fno",
        help="Fourier neural operator on operator Burgers",
        description="FNO ensemble / MC dropout on operator Burgers.",
    )
    fno.add_argument(
        "--data", help="operator dataset .nc from `python -m operators generate` (default: generate one)"
    )
    fno.add_argument(
        "--n-train", type=int, default=256, help="training functions when generating (default 256)"
    )
    fno.add_argument("--n-test", type=int, default=64, help="test functions when generating (default 64)")
    fno.add_argument("--nx", type=int, default=64, help="grid points when generating (default 64)")
    fno.add_argument("--modes", type=int, default=12, help="Fourier modes kept (default 12)")
    fno.add_argument("--width", type=int, default=32, help="channel width (default 32)")
    fno.add_argument("--depth", type=int, default=4, help="Fourier layers (default 4)")
    fno.add_argument("--batch-size", type=int, default=32, help="batch size (default 32)")
    fno.add_argument("--epochs", type=int, default=60, help="training epochs (default 60)")
    for p in (pinn, fno):
        p.add_argument(
            "--method",
            choices=["ensemble", "mc_dropout"],
            default="ensemble",
            help="uncertainty method (default ensemble)",
        )
        p.add_argument(
            "--members", type=int, default=5, help="ensemble members or dropout draws M (>= 2, default 5)"
        )
        p.add_argument("--dropout", type=float, default=0.1, help="dropout rate for mc_dropout (default 0.1)")
        p.add_argument("--lr", type=float, default=None, help="learning rate")
        p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        p.add_argument("--out", required=True, help="prediction file PRED.nc")
        p.add_argument("--json", action="store_true", help="print a JSON result on stdout")
        p.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m uncertainty",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{run,report}")
    _add_run(sub)
    rep = sub.add_parser(
        "report",
        help="calibration report of a prediction file",
        description="Write report.html, metrics.json and PNGs for a file with u, u_std and u_true.",
    )
    rep.add_argument("pred", help="prediction file PRED.nc")
    rep.add_argument("--out", required=True, help="report directory")
    rep.add_argument("--seed", type=int, default=0, help="seed of the calibration/test split (default 0)")
    rep.add_argument("--no-figures", action="store_true", help="skip the PNGs (tables only)")
    rep.add_argument("--json", action="store_true", help="print metrics.json on stdout")
    return parser


def _print_report(summary: dict) -> None:
    from uncertainty.metrics import METRICS

    print(f"verdict: {summary['verdict']}  ({summary['verdict_rule']})")
    for name in METRICS:
        if name in summary:
            print(f"  {name:<22} {summary[name]:.6g}")
    rec = summary["recalibration"]
    print(f"recalibration (fit on {rec['calibration_points']} points, judged on {rec['test_points']}):")
    print(f"  {'method':<14} {'rmsce':>8} {'coverage_95':>12} {'width_95':>10}")
    for meth, row in rec["table"].items():
        print(f"  {meth:<14} {row['rmsce']:>8.4f} {row['coverage_95']:>12.4f} {row['width_95']:>10.4g}")


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "report":
        from pdes.solution import read_dataset
        from uncertainty.report import make_report

        ds = read_dataset(args.pred)
        summary = make_report(ds, args.out, seed=args.seed, source=str(args.pred), figures=not args.no_figures)
        if args.json:
            print_json(summary)
        else:
            _print_report(summary)
            print(f"wrote {args.out}/report.html, metrics.json and {len(summary['pngs'])} PNGs")
        return 0
    from uncertainty.ensemble import spread_over_cpu_cores
    from uncertainty.run import run_from_args

    spread_over_cpu_cores()  # before any JAX operation: members shard over the CPU cores
    result = run_from_args(args)
    if args.json:
        print_json(result)
    else:
        for k, v in result.items():
            print(f"{k:<16} {v}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli("uncertainty", build_parser(), argv, _dispatch)


if __name__ == "__main__":
    sys.exit(main())
