"""Benchmark of coefficient identification (pdes.inverse) on the default presets.

    nice -n 5 .venv/bin/python benchmarks/inverse.py heat wave burgers --ensemble 1 4 --out runs.jsonl
    .venv/bin/python benchmarks/inverse.py burgers --ensemble 1 --seeds 0 1 2 3 4 --out seeds.jsonl
    .venv/bin/python benchmarks/inverse.py --table runs.jsonl     # markdown table of the runs
    .venv/bin/python benchmarks/inverse.py --summary seeds.jsonl  # median and worst error per unknown

Each run: 2000 synthetic observations with 1% noise (std relative to the solution's std), the
default preset of ``pdes.inverse``; the seed draws the observations, the noise, the networks and
the collocation points. One JSON line per run is appended to --out.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def run(problems: list[str], ensembles: list[int], out: Path, n_obs: int, noise: float, seeds: list[int],
        overrides: dict[str, str]) -> None:
    from pdes.inverse import identify

    for name in problems:
        for m in ensembles:
            for seed in seeds:
                res = identify(name, n_obs=n_obs, noise=noise, seed=seed, ensemble=m, progress=True,
                               overrides=overrides or None)
                row = {"problem": name, "seed": seed, "overrides": overrides, **res.to_dict()}
                with out.open("a") as fh:
                    fh.write(json.dumps(row) + "\n")
                print(json.dumps(row), flush=True)


def cramer_rao(problem: str, n_obs: int, noise: float, seeds: list[int]) -> str:
    """The Cramer-Rao lower bound on std(ln theta) for each seed's observations, with the other
    coefficients known: 1 / sqrt(sum_i (d u(t_i, x_i) / d ln theta)^2 / sigma^2), the
    sensitivity by central differences (1e-3 relative) of the exact solution. No unbiased
    estimator from those observations does better."""
    from dataclasses import replace

    import numpy as np

    from pdes.inverse import exact_at_points, synthetic_observations, true_coefficients
    from pdes.problems import PRESETS

    base = PRESETS[problem]
    field = {"burgers": "nu", "heat": "alpha", "wave": "c"}[problem]
    name = {"burgers": "l2", "heat": "alpha", "wave": "c"}[problem]
    lines = [f"| problem | unknown | seed | sigma | CRB std({name}) / {name} |", "|---|---|---|---|---|"]
    for seed in seeds:
        ds = synthetic_observations(problem, n_obs=n_obs, noise=noise, seed=seed)
        t, x, sigma = ds.t.values, ds.x.values, float(ds.attrs["noise_std"])
        value = true_coefficients(base)[name]
        h = 1e-3
        up = exact_at_points(replace(base, **{field: value * (1 + h)}), t, x)
        down = exact_at_points(replace(base, **{field: value * (1 - h)}), t, x)
        info = np.sum(((up - down) / (2 * h)) ** 2) / sigma**2
        lines.append(f"| {problem} | {name} | {seed} | {sigma:.3g} | {100 / np.sqrt(info):.3f} % |")
    return "\n".join(lines)


def oracle(problem: str, n_obs: int, noise: float, seeds: list[int]) -> str:
    """The oracle maximum-likelihood estimate of each seed's observations: the main coefficient
    fitted by least squares with the exact solution as the model (the other coefficients known),
    i.e. what a perfect model of the PDE gets from the same noisy data."""
    from dataclasses import replace

    import numpy as np
    from scipy.optimize import minimize_scalar

    from pdes.inverse import exact_at_points, synthetic_observations
    from pdes.problems import PRESETS

    base = PRESETS[problem]
    field = {"burgers": "nu", "heat": "alpha", "wave": "c"}[problem]
    value = getattr(base, field)
    lines = [f"| problem | seed | oracle MLE error of {field} |", "|---|---|---|"]
    for seed in seeds:
        ds = synthetic_observations(problem, n_obs=n_obs, noise=noise, seed=seed)
        t, x, y = ds.t.values, ds.x.values, ds.u.values

        def misfit(log_ratio: float, t=t, x=x, y=y) -> float:
            u = exact_at_points(replace(base, **{field: value * np.exp(log_ratio)}), t, x)
            return float(np.sum((u - y) ** 2))

        best = minimize_scalar(misfit, bounds=(-0.05, 0.05), method="bounded", options={"xatol": 1e-7})
        lines.append(f"| {problem} | {seed} | {100 * abs(np.exp(best.x) - 1):.3f} % |")
    return "\n".join(lines)


def summary(path: Path) -> str:
    """Median and worst relative error per (problem, ensemble, unknown) over the seeds of a runs file."""
    import numpy as np

    groups: dict[tuple, list] = {}
    for raw in path.read_text().splitlines():
        r = json.loads(raw)
        for k in r["unknowns"]:
            groups.setdefault((r["problem"], r["ensemble"], k), []).append(
                (r.get("seed", 0), r["rel_error"][k], r["wall_time_s"], r["cpu_time_s"]))
    lines = ["| problem | M | unknown | seeds | errors (per seed) | median | worst | wall s (median) | CPU s (median) |",
             "|" + "---|" * 9]
    for (problem, m, k), rows in groups.items():
        rows.sort()
        err = np.array([e for _, e, _, _ in rows])
        lines.append(f"| {problem} | {m} | {k} | {', '.join(str(s) for s, *_ in rows)} | "
                     f"{', '.join(f'{100 * e:.3f} %' for e in err)} | {100 * np.median(err):.3f} % | "
                     f"{100 * err.max():.3f} % | {np.median([w for *_, w, _ in rows]):.0f} | "
                     f"{np.median([c for *_, c in rows]):.0f} |")
    return "\n".join(lines)


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
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override (section.field=value), repeatable")
    p.add_argument("--out", type=Path, default=Path("inverse_runs.jsonl"))
    p.add_argument("--table", type=Path, help="print the markdown table of a runs file and exit")
    p.add_argument("--summary", type=Path, help="print median and worst errors over the seeds of a runs file")
    p.add_argument("--oracle", action="store_true",
                   help="print the oracle maximum-likelihood error (exact solution as the model) for the seeds")
    p.add_argument("--cramer-rao", action="store_true",
                   help="print the Cramer-Rao bound of each problem's main unknown for the seeds' observations")
    args = p.parse_args(argv)
    if args.table:
        print(table(args.table))
        return 0
    if args.summary:
        print(summary(args.summary))
        return 0
    if args.oracle:
        for name in args.problems:
            print(oracle(name, args.n_obs, args.noise, args.seeds))
        return 0
    if args.cramer_rao:
        for name in args.problems:
            print(cramer_rao(name, args.n_obs, args.noise, args.seeds))
        return 0
    run(args.problems, args.ensemble, args.out, args.n_obs, args.noise, args.seeds,
        dict(kv.split("=", 1) for kv in args.overrides))
    return 0


if __name__ == "__main__":
    sys.exit(main())
