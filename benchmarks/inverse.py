"""Benchmark of coefficient identification (pdes.inverse) on the default presets.

    nice -n 5 .venv/bin/python benchmarks/inverse.py heat wave burgers --ensemble 1 4 --out runs.jsonl
    .venv/bin/python benchmarks/inverse.py --table runs.jsonl     # markdown table of the runs

Each run: 2000 synthetic observations with 1% noise (std relative to the solution's std),
seed 0, the default preset of ``pdes.inverse``. One JSON line per run is appended to --out.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def run(problems: list[str], ensembles: list[int], out: Path, n_obs: int, noise: float, seed: int) -> None:
    from pdes.inverse import identify

    for name in problems:
        for m in ensembles:
            res = identify(name, n_obs=n_obs, noise=noise, seed=seed, ensemble=m, progress=True)
            row = {"problem": name, **res.to_dict()}
            with out.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)


def table(path: Path) -> str:
    lines = ["| problem | M | unknown | true | estimate | rel. error | ensemble std | true in mean ± 2 std | "
             "field rel. L2 | wall s | CPU s |", "|" + "---|" * 11]
    for raw in path.read_text().splitlines():
        r = json.loads(raw)
        m = r["ensemble"]
        for k in r["unknowns"]:
            within = r.get("within_2std", {}).get(k)
            lines.append(
                f"| {r['problem']} | {m} | {k} | {r['truth'][k]:.6g} | {r['estimates'][k]:.6g} | "
                f"{100 * r['rel_error'][k]:.3f} % | {r['std'][k]:.3g} | "
                f"{'-' if within is None else ('yes' if within else 'no')} | {r['rel_l2']:.2e} | "
                f"{r['wall_time_s']:.0f} | {r['cpu_time_s']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("problems", nargs="*", choices=["heat", "wave", "burgers"], default=[])
    p.add_argument("--ensemble", type=int, nargs="+", default=[1, 4])
    p.add_argument("--n-obs", type=int, default=2000)
    p.add_argument("--noise", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("inverse_runs.jsonl"))
    p.add_argument("--table", type=Path, help="print the markdown table of a runs file and exit")
    args = p.parse_args(argv)
    if args.table:
        print(table(args.table))
        return 0
    run(args.problems, args.ensemble, args.out, args.n_obs, args.noise, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
