"""python -m uncertainty: uncertain PINNs and FNOs, calibration maps, reports and shift tests.

python -m uncertainty run {pinn,fno} --method {ensemble,mc_dropout,laplace} [--members M] --out PRED.nc
python -m uncertainty run fno --nu-range LO HI ... (Burgers with nu per function, a second input channel)
python -m uncertainty calibrate PRED.nc --with MAP.json [--out CAL.nc] [--json]
python -m uncertainty report PRED.nc --out REPORT_DIR [--json]
python -m uncertainty shift MODEL_DIR [--kinds resolution input parameter] [--out SHIFT.json] [--json]
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
        help="train an ensemble, MC-dropout or Laplace model and write a (calibrated) prediction file",
        description="Train M members (one compiled program), one dropout model or one network with a last-layer "
        "Laplace posterior; write u, u_std (calibrated), u_std_raw, u_samples, u_true.",
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
        "--obs",
        metavar="FILE.nc",
        help="observations to calibrate the bands on (u, t, x, scattered or gridded; attr noise_std), not "
        "trained on; without them (or --n-obs) a PINN's bands are uncalibrated",
    )
    pinn.add_argument(
        "--n-calibration",
        type=int,
        default=None,
        metavar="K",
        help="with --n-obs: observations held out from training to calibrate on (default n_obs // 4)",
    )
    pinn.add_argument(
        "--level", type=float, default=0.95, help="level of the conformal calibration (default 0.95)"
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
        help="Fourier neural operator on operator data (1-D or 2-D)",
        description="FNO ensemble / MC dropout / last-layer Laplace, calibrated on held-out functions. "
        "Without --data: operator Burgers generated here.",
    )
    fno.add_argument(
        "--data", help="operator dataset .nc (`python -m operators generate|import`; default: generate Burgers)"
    )
    fno.add_argument(
        "--n-train", type=int, default=256, help="training functions when generating (default 256)"
    )
    fno.add_argument("--n-test", type=int, default=64, help="test functions when generating (default 64)")
    fno.add_argument(
        "--nx",
        type=int,
        default=None,
        help="grid points: when generating (default 64), or a strided subgrid of --data (default: as stored)",
    )
    fno.add_argument(
        "--nu-range",
        type=float,
        nargs=2,
        metavar=("LO", "HI"),
        help="when generating: each function's viscosity log-uniform on [LO, HI], given to the model as a "
        "second input channel (the operator (u0, nu) -> u; `uncertainty shift` then sees the parameter shift); "
        "default: nu = 0.1 for every function",
    )
    fno.add_argument(
        "--n-calibration",
        type=int,
        default=64,
        metavar="K",
        help="calibration functions, held out from training and testing (generated after the others, or the "
        "last K of --data's train part unless it has a 'calibration' split; default 64)",
    )
    fno.add_argument(
        "--calibration",
        choices=["conformal", "sigma_scaling", "isotonic", "none"],
        default="conformal",
        help="recalibration fitted on the calibration split (default conformal: a finite-sample guarantee)",
    )
    fno.add_argument(
        "--level", type=float, default=0.95, help="pointwise level u_std is calibrated at (default 0.95)"
    )
    fno.add_argument("--map", metavar="MAP.json", help="write the calibration map here (default: OUT.map.json)")
    fno.add_argument("--model-out", metavar="DIR", help="save the trained model (for `uncertainty shift`)")
    fno.add_argument(
        "--laplace-layers",
        default="proj2",
        help="parameter groups of the Laplace posterior, comma-separated (default proj2: the output layer)",
    )
    fno.add_argument("--modes", type=int, default=12, help="Fourier modes kept (default 12)")
    fno.add_argument("--width", type=int, default=32, help="channel width (default 32)")
    fno.add_argument("--depth", type=int, default=4, help="Fourier layers (default 4)")
    fno.add_argument("--batch-size", type=int, default=32, help="batch size (default 32)")
    fno.add_argument("--epochs", type=int, default=60, help="training epochs (default 60)")
    for p, methods in ((pinn, ["ensemble", "mc_dropout"]), (fno, ["ensemble", "mc_dropout", "laplace"])):
        p.add_argument(
            "--method",
            choices=methods,
            default="ensemble",
            help="uncertainty method (default ensemble)",
        )
        p.add_argument(
            "--members",
            type=int,
            default=5,
            help="ensemble members, dropout draws or Laplace posterior samples M (>= 2, default 5)",
        )
        p.add_argument("--dropout", type=float, default=0.1, help="dropout rate for mc_dropout (default 0.1)")
        p.add_argument("--lr", type=float, default=None, help="learning rate")
        p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        p.add_argument("--out", required=True, help="prediction file PRED.nc")
        p.add_argument("--checkpoint-dir", metavar="DIR",
                       help="save the members' training state here (PINN: every run.checkpoint_every steps; "
                       "FNO: every 10 epochs and at the last); works on any number of processes")
        p.add_argument("--resume", metavar="DIR",
                       help="continue the training saved in DIR (same members, model, data and seed; "
                       "on any number of processes)")
        p.add_argument("--json", action="store_true", help="print a JSON result on stdout")
        p.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m uncertainty",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{run,calibrate,report,shift}")
    _add_run(sub)
    cal = sub.add_parser(
        "calibrate",
        help="apply a calibration map to a prediction file",
        description="Write u_std_raw, the calibrated u_std and whole-function bands u_band_90/95 with a map "
        "written by `uncertainty run fno` (same model, same grid).",
    )
    cal.add_argument("pred", help="prediction file PRED.nc (u and u_std)")
    cal.add_argument("--with", dest="map", required=True, metavar="MAP.json", help="calibration map")
    cal.add_argument("--out", help="calibrated prediction file (default: PRED.calibrated.nc)")
    cal.add_argument("--json", action="store_true", help="print a JSON result on stdout")
    shift = sub.add_parser(
        "shift",
        help="coverage and std-error rank correlation under resolution, input and parameter shift",
        description="Evaluate a saved uncertain FNO (`uncertainty run fno --model-out DIR`, operator Burgers) "
        "on fresh functions: finer grids, rougher and larger initial data, lower viscosity.",
    )
    shift.add_argument("model", help="model folder MODEL_DIR")
    shift.add_argument(
        "--kinds", nargs="+", choices=["resolution", "input", "parameter"],
        default=["resolution", "input", "parameter"], help="shifts to run (default all three)",
    )
    shift.add_argument("--n-test", type=int, default=128, help="test functions per case (default 128)")
    shift.add_argument("--seed", type=int, default=1, help="seed of the test functions (default 1)")
    shift.add_argument("--out", metavar="SHIFT.json", help="write the result as JSON")
    shift.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    shift.add_argument("--no-progress", action="store_true", help="no progress messages")
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
    raw = summary.get("raw")
    if raw is not None:
        print(f"raw verdict: {summary['verdict_raw']}; calibrated by {summary['calibration']['method']}: "
              f"{summary['calibration']['guarantee']}")
        print(f"  {'metric':<26} {'raw':>12} {'calibrated':>12}")
    names = [*METRICS, "whole_function_coverage_90", "whole_function_coverage_95"]
    for name in names:
        if name in summary:
            before = f"{raw[name]:>12.6g}" if raw is not None and name in raw else (" " * 12 if raw else "")
            print(f"  {name:<26} {before} {summary[name]:>12.6g}" if raw is not None else
                  f"  {name:<22} {summary[name]:.6g}")
    if raw is None:
        print(f"bands: not calibrated ({summary.get('calibration_note', '')})")
    rec = summary["recalibration"]
    print(f"recalibration (fit on {rec['calibration_points']} points, judged on {rec['test_points']}):")
    print(f"  {'method':<14} {'rmsce':>8} {'coverage_95':>12} {'width_95':>10}")
    for meth, row in rec["table"].items():
        print(f"  {meth:<14} {row['rmsce']:>8.4f} {row['coverage_95']:>12.4f} {row['width_95']:>10.4g}")


def _print_run(result: dict) -> None:
    from plumbing.tables import print_table

    for k in ("out", "method", "members", "wall_time_s", "train_time_s", "calibration", "map", "model_out"):
        if k in result:
            print(f"{k:<16} {result[k]}")
    if "raw" in result:
        keys = [k for k in result["raw"] if k in result] + [k for k in ("whole_function_coverage_90",
                                                                        "whole_function_coverage_95") if k in result]
        gauss = result.get("gaussian_reading", {})
        rows = [{"metric": k, "raw": result["raw"].get(k), "u_std as Gaussian": gauss.get(k), "calibrated": result[k]}
                for k in keys]
        print_table([{"metric": "rel_l2", "raw": result["rel_l2"], "calibrated": result["rel_l2"]}, *rows],
                    ["metric", "raw", "u_std as Gaussian", "calibrated"] if gauss else ["metric", "raw", "calibrated"])
        if gauss:
            print("calibrated: the map's predictive distribution (its central intervals at every level); "
                  "u_std as Gaussian: exact at the calibration level")
    else:
        from uncertainty.metrics import METRICS

        for name in METRICS:
            if name in result:
                print(f"{name:<22} {result[name]:.6g}")
    if not result.get("calibrated"):
        print(f"bands: uncalibrated ({result.get('calibration', '')})")


def _print_shift(res: dict) -> None:
    from plumbing.tables import print_table

    cols = ["label", "nx", "rel_l2", "mean_std", "std_ratio", "error_ratio", "coverage_95", "rmsce",
            "whole_function_coverage_90", "spearman"]
    for kind, block in res["shifts"].items():
        print(f"{kind} shift: std grows {block['std_grows']}, error grows {block['error_grows']}, "
              f"min Spearman(std, error) over shifted sets {block['spearman_min']:.3f}")
        print_table(block["rows"], cols)
        print()


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "calibrate":
        from pathlib import Path

        from pdes.solution import read_dataset, write_dataset
        from uncertainty.calibration import apply_calibration, load_map
        from uncertainty.metrics import all_metrics

        if not str(args.pred).endswith(".nc"):
            raise ValueError(f"PRED must be a .nc file, got {args.pred!r}")
        out = Path(args.out) if args.out else Path(str(args.pred)[: -len(".nc")] + ".calibrated.nc")
        cmap = load_map(args.map)
        ds = apply_calibration(read_dataset(args.pred), cmap, where=str(args.pred))
        write_dataset(ds, out)
        result: dict = {"out": str(out), "map": str(args.map), "method": cmap.method, "level": cmap.level}
        if "u_true" in ds:
            bands = {lv: ds[f"u_band_{round(lv * 100)}"].values for lv in (0.9, 0.95)}
            funcs = "sample" in ds["u"].dims
            result.update(all_metrics(ds.u.values, ds.u_std.values, ds.u_true.values, functions=funcs,
                                      bands=bands if funcs else None))
        if args.json:
            print_json(result)
        else:
            for k, v in result.items():
                print(f"{k:<28} {v}")
        return 0
    if args.command == "shift":
        from uncertainty.predictor import load_predictor
        from uncertainty.shift import shift_report

        res = shift_report(load_predictor(args.model), kinds=tuple(dict.fromkeys(args.kinds)), n_test=args.n_test,
                           seed=args.seed, progress=not args.no_progress)
        if args.out:
            from plumbing.files import atomic_write_json

            atomic_write_json(args.out, res, suffixes=(".json",), what="--out")
        if args.json:
            print_json(res)
        else:
            _print_shift(res)
        return 0
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
        _print_run(result)
    return 0


def main(argv: list[str] | None = None) -> int:
    from plumbing.compilation_cache import enable as enable_compilation_cache

    enable_compilation_cache()  # JAX's persistent cache: a second run starts at once
    return run_cli("uncertainty", build_parser(), argv, _dispatch, collective=lambda args: args.command == "run")


if __name__ == "__main__":
    sys.exit(main())
