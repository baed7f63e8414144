"""python -m workbench: the demo and the README gallery.

    python -m workbench demo --out out [--only STEP] [--quick] [--json]
    python -m workbench figures --out docs [--only STEP]
"""

from __future__ import annotations

import argparse
import sys
import time

from plumbing.cli import print_json, run_cli
from plumbing.tables import print_table

__all__ = ["build_parser", "main"]


def cmd_demo(args: argparse.Namespace) -> int:
    from workbench.demo import run_demo

    start = time.perf_counter()
    rows = run_demo(args.out, only=args.only, quick=args.quick)
    total = time.perf_counter() - start
    if args.json:
        print_json({"rows": rows, "wall_time_s": total})
        return 0
    print_table(rows, ["step", "method", "rel_l2", "max_abs", "wall_time_s"])
    print("\nfiles")
    print_table(rows, ["step", "method", "file"] + (["note"] if any(r.get("note") for r in rows) else []))
    print(f"\ntotal {total:.1f} s; errors are relative L2 / max abs: burgers against the exact (Cole–Hopf) "
          "solution, fno and calibration against the spectral reference of the test functions")
    return 0


def cmd_figures(args: argparse.Namespace) -> int:
    from workbench.figures import make_figures

    for path in make_figures(args.out, only=args.only):
        print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from workbench.demo import DEMO_STEPS
    from workbench.figures import FIGURE_STEPS

    parser = argparse.ArgumentParser(prog="python -m workbench", description="The workbench's demo and gallery.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("demo", help="the main job: Burgers exact, spectral and PINN, an FNO, a calibration report",
                       description="Run the demo steps (Burgers exact / spectral / PINN, an FNO on operator "
                       "Burgers, an FNO-ensemble calibration report), write files under --out and print a table of "
                       "errors, times and files. Under 10 minutes on a 2-core CPU; --quick: about a minute.")
    p.add_argument("--out", default="out", metavar="DIR", help="output folder (default: out)")
    p.add_argument("--only", action="append", choices=[name for name, _ in DEMO_STEPS],
                   help="run only these steps (repeatable)")
    p.add_argument("--quick", action="store_true",
                   help="tiny trainings (smoke test, about a minute); never touches the FNO cache")
    p.add_argument("--json", action="store_true", help="print a JSON result on stdout")
    p.set_defaults(func=cmd_demo)
    f = sub.add_parser("figures", help="write the README gallery's PDE figures",
                       description="Write the gallery's PDE figures (PNG) into --out.")
    f.add_argument("--out", default="docs", metavar="DIR", help="output folder (default: docs)")
    f.add_argument("--only", action="append", choices=[name for name, _ in FIGURE_STEPS],
                   help="run only these steps (repeatable)")
    f.set_defaults(func=cmd_figures)
    return parser


def main(argv: list[str] | None = None) -> int:
    from plumbing.compilation_cache import enable as enable_compilation_cache

    enable_compilation_cache()  # JAX's persistent cache: a second run starts at once
    return run_cli("workbench", build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
