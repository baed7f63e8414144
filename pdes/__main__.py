"""python -m pdes: solve a PDE problem, compare two solution files, identify coefficients.

    python -m pdes solve {heat,wave,burgers,heat2d} --method {exact,spectral,pinn} [--out F.nc] [--plot F.png] [--json]
    python -m pdes compare A.nc B.nc [--var u] [--json]
    python -m pdes identify {burgers,heat,wave} [--obs OBS.nc | --n-obs N --noise F] [--json]

Exit codes (``plumbing.cli``): 0 success; 2 bad input (one line ``pdes: error: ...`` on stderr,
no file left behind); 1 failure. Each subcommand is one ``add_*_parser`` + one ``cmd_*``
function, registered in ``SUBCOMMANDS``; add a new one there. The demo and the gallery moved
to ``python -m workbench`` (``demo`` and ``figures`` here forward to it for one release).
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from plumbing.cli import DeprecatedFlag, UsageError, print_json, run_cli
from plumbing.cli import finite_float as _finite_float
from plumbing.cli import key_value as _key_value
from plumbing.tables import format_value as _fmt
from plumbing.tables import print_table

__all__ = ["SUBCOMMANDS", "build_parser", "main"]

EQUATIONS = ("heat", "wave", "burgers", "heat2d", "allen_cahn", "kdv")
_PROBLEM_FLAGS = {"nu": "nu", "alpha": "alpha", "c": "c", "t_end": "t_end"}


def _check_suffix(path: str | None, suffixes: tuple[str, ...], flag: str) -> None:
    if path is not None and Path(path).suffix.lower() not in suffixes:
        raise UsageError(f"{flag} must end in {' or '.join(suffixes)}, got {path!r}")


# ----------------------------------------------------------------------------- solve


def add_solve_parser(sub: Any) -> None:
    p = sub.add_parser(
        "solve",
        help="solve a PDE problem (exact, spectral or PINN) and write/plot the solution",
        description="Solve a preset problem on t = linspace(0, t_end, nt), x = linspace(x_min, x_max, nx).",
    )
    p.add_argument("equation", nargs="?", choices=EQUATIONS,
                   help="problem preset (DESIGN.md section 3; allen_cahn and kdv: issue 21), or --problem")
    p.add_argument("--problem", metavar="FILE.py:NAME",
                   help="your own equation: a pdes.PDE named NAME (default PROBLEM) in a Python file")
    p.add_argument("--method", choices=("exact", "spectral", "pinn"), default="exact", help="solver (default: exact)")
    p.add_argument("--nu", type=_finite_float, help="viscosity (burgers)")
    p.add_argument("--alpha", type=_finite_float, help="diffusivity (heat, heat2d)")
    p.add_argument("--c", type=_finite_float, help="wave speed (wave)")
    p.add_argument("--nx", type=int, default=None, help="grid points in x, and in y for a 2-D problem (default 256, >= 8)")
    p.add_argument("--nt", type=int, default=None, help="grid points in t (default 100, >= 2)")
    p.add_argument("--t-end", type=_finite_float, help="final time (default: the preset's)")
    p.add_argument("--steps", type=int, help="spectral: ETDRK4 steps (burgers); pinn: training steps")
    p.add_argument("--points", type=int, help="spectral: points of the periodic (odd-extended) grid (in x and in y for a 2-D problem)")
    p.add_argument("--modes", dest="points", type=int, action=DeprecatedFlag, new="--points", help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    p.add_argument("--config", metavar="FILE.toml", help="TOML file: [problem] and [solve] tables (pinn: its config file)")
    p.add_argument("--out", metavar="FILE.nc", help="write the solution Dataset (netCDF-4)")
    p.add_argument("--plot", metavar="FILE.png", help="write a figure of the solution")
    p.add_argument("--json", action="store_true", help="print a JSON result on stdout")
    pinn = p.add_argument_group("PINN options (--method pinn)")
    pinn.add_argument("--preset", help="named PINN configuration")
    pinn.add_argument("--resume", metavar="DIR", help="resume training from a checkpoint folder")
    pinn.add_argument("--checkpoint-dir", metavar="DIR", help="write training checkpoints here")
    pinn.add_argument("--set", dest="overrides", action="append", type=_key_value, default=[], metavar="KEY=VALUE", help="override a config entry by section.field, e.g. qn.steps=2000, network.width=64 (repeatable)")
    pinn.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_solve)


def _read_toml(path: str) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no such config file: {path!r}")
    try:
        with p.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        raise UsageError(f"{path!r} is not valid TOML ({err})") from None


def _solve_settings(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """The problem and the solve() keyword arguments from flags (and, for exact/spectral, the
    [problem]/[solve] tables of --config; flags win). Raises ValueError on bad input."""
    from pdes.problems import with_overrides

    file_problem: dict[str, Any] = {}
    file_solve: dict[str, Any] = {}
    if args.config is not None and args.method != "pinn":
        cfg = _read_toml(args.config)
        unknown = sorted(set(cfg) - {"problem", "solve"})
        if unknown:
            raise UsageError(f"config {args.config!r}: unknown table(s) {unknown}; expected [problem], [solve]")
        file_problem = dict(cfg.get("problem", {}))
        file_solve = dict(cfg.get("solve", {}))
        bad = sorted(set(file_solve) - {"nx", "nt", "seed", "steps", "points", "n_nodes"})
        if bad:
            raise UsageError(f"config {args.config!r}: unknown [solve] key(s) {bad}")
    base = _problem_of(args)
    changes = dict(file_problem)
    for flag, field in _PROBLEM_FLAGS.items():
        value = getattr(args, flag)
        if value is not None:
            changes[field] = value
    allowed = set(base.__dataclass_fields__) - {"name", "initial", "initial_velocity", "equation", "boundary",
                                                 "coeffs", "unknowns", "linear", "nonlinear", "exact"}
    for key in changes:
        if key not in allowed:
            shown = f"--{key.replace('_', '-')}" if key in _PROBLEM_FLAGS else repr(key)
            raise UsageError(f"{shown} does not apply to {base.name} (it has {sorted(allowed)})")
    for key, value in changes.items():
        if isinstance(value, int | float) and not isinstance(value, bool) and not math.isfinite(value):
            raise UsageError(f"{key} must be finite, got {value}")
        if isinstance(value, list):
            changes[key] = tuple(tuple(v) if isinstance(v, list) else v for v in value)
    problem = with_overrides(base, **changes)

    def pick(name: str, file_key: str, default: Any) -> Any:
        value = getattr(args, name)
        return value if value is not None else file_solve.get(file_key, default)

    kwargs: dict[str, Any] = {"nx": pick("nx", "nx", 256), "nt": pick("nt", "nt", 100), "seed": pick("seed", "seed", 0)}
    steps = pick("steps", "steps", None)
    points = pick("points", "points", None)
    if args.method == "pinn":
        if points is not None:
            raise UsageError("--points applies to --method spectral only")
        pinn = {
            "preset": args.preset,
            "config_file": args.config,
            "steps": steps,
            "resume": args.resume,
            "checkpoint_dir": args.checkpoint_dir,
            "overrides": dict(args.overrides) or None,
        }
        kwargs.update({k: v for k, v in pinn.items() if v is not None}, progress=not args.no_progress)
        return problem, kwargs
    pinn_only = [f for f in ("preset", "resume", "checkpoint_dir") if getattr(args, f) is not None]
    if args.overrides:
        pinn_only.append("set")
    if pinn_only:
        raise UsageError(f"--{pinn_only[0].replace('_', '-')} applies to --method pinn only")
    if args.method == "exact":
        if steps is not None or points is not None:
            raise UsageError("--steps/--points apply to --method spectral or pinn, not exact")
        if "n_nodes" in file_solve:
            kwargs["n_nodes"] = file_solve["n_nodes"]
    else:
        kwargs.update(n_steps=steps, n_points=points)
    return problem, kwargs


def _problem_of(args: argparse.Namespace) -> Any:
    """The preset named by the positional argument, or the --problem file's object (one of them)."""
    from pdes.problems import PRESETS, load_problem

    if (args.equation is None) == (args.problem is None):
        raise UsageError("name a preset or give --problem FILE.py:NAME (one of them)")
    return PRESETS[args.equation] if args.equation is not None else load_problem(args.problem)


def _report_row(ds: Any, out: str | None, plot: str | None) -> dict[str, Any]:
    from pdes.solution import compare

    row: dict[str, Any] = {
        "equation": ds.attrs.get("equation"),
        "method": ds.attrs.get("method"),
        "nx": int(ds.sizes["x"]),
        "nt": int(ds.sizes["t"]),
        "wall_time_s": float(ds.attrs.get("wall_time_s", float("nan"))),
        "rel_l2": None,
        "max_abs": None,
        "reference": None,
    }
    if "u_true" in ds:
        cmp = compare(ds, ds, var="u", ref_var="u_true")
        row.update(rel_l2=cmp.rel_l2, max_abs=cmp.max_abs, reference="u_true")
    for key in ("steps_done", "stopped", "device"):  # PINN runs: how far training got, and where
        if key in ds.attrs:
            value = ds.attrs[key]
            row[key] = int(value) if key == "steps_done" else str(value)
    row["out"] = out
    row["plot"] = plot
    return row


def cmd_solve(args: argparse.Namespace) -> int:
    from pdes.solution import write_dataset
    from pdes.solve import solve

    _check_suffix(args.out, (".nc",), "--out")
    _check_suffix(args.plot, (".png", ".pdf", ".svg"), "--plot")
    problem, kwargs = _solve_settings(args)
    ds = solve(problem, method=args.method, **kwargs)
    if args.out:
        write_dataset(ds, args.out)
    if args.plot:
        from pdes.plotting import plot_solution

        plot_solution(ds, args.plot)
    row = _report_row(ds, args.out, args.plot)
    if args.json:
        print_json(row)
    else:
        print_table([row], ["equation", "method", "nx", "nt", "wall_time_s", "rel_l2", "max_abs"])
        for key in ("out", "plot"):
            if row[key]:
                print(f"wrote {row[key]}")
    return 0


# ----------------------------------------------------------------------------- compare


def add_compare_parser(sub: Any) -> None:
    p = sub.add_parser(
        "compare",
        help="compare two solution files (rel. L2, max abs, error per time)",
        description="Compare A[var] against the reference B[var]; interpolates onto the coarser grid when grids differ.",
    )
    p.add_argument("a", metavar="A.nc", help="solution to check")
    p.add_argument("b", metavar="B.nc", help="reference solution")
    p.add_argument("--var", default="u", help="variable to compare (default: u)")
    p.add_argument("--json", action="store_true", help="print a JSON result on stdout")
    p.set_defaults(func=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> int:
    from pdes.solution import compare, read_dataset

    a, b = read_dataset(args.a), read_dataset(args.b)
    cmp = compare(a, b, var=args.var)
    result = {"a": args.a, "b": args.b, "var": args.var, **cmp.to_dict()}
    if args.json:
        print_json(result)
        return 0
    print_table([{"var": args.var, "rel_l2": cmp.rel_l2, "max_abs": cmp.max_abs, "interpolated": cmp.interpolated}], ["var", "rel_l2", "max_abs", "interpolated"])
    if cmp.note:
        print(f"note: {cmp.note}")
    if cmp.t.size > 1 or math.isfinite(float(cmp.t[0])):
        idx = sorted(set(round(i) for i in _spread(cmp.t.size, 11)))
        print("\nerror per time (rel. L2)")
        print_table([{"t": float(cmp.t[i]), "rel_l2": float(cmp.rel_l2_per_t[i])} for i in idx], ["t", "rel_l2"])
    return 0


def _spread(n: int, k: int) -> list[float]:
    return [i * (n - 1) / max(1, k - 1) for i in range(min(n, k))] if n > 1 else [0.0]


# ----------------------------------------------------------------------------- moved commands


def _add_moved_parser(name: str) -> Callable[[Any], None]:
    def add(sub: Any) -> None:
        p = sub.add_parser(name, help=f"moved: python -m workbench {name}", add_help=False,
                           description=f"Moved to `python -m workbench {name}`; this forwards there for one release.")
        p.add_argument("rest", nargs=argparse.REMAINDER)
        p.set_defaults(func=lambda args: _forward(name, args.rest))

    return add


def _forward(name: str, rest: list[str]) -> int:
    """Run ``python -m workbench NAME REST...`` in a new process (pdes never imports workbench)."""
    print(f"pdes: note: `python -m pdes {name}` moved to `python -m workbench {name}`; running that",
          file=sys.stderr)
    return subprocess.run([sys.executable, "-m", "workbench", name, *rest], check=False).returncode


# ----------------------------------------------------------------------------- identify


def add_identify_parser(sub: Any) -> None:
    p = sub.add_parser(
        "identify",
        help="identify PDE coefficients from observations with a PINN (inverse problem)",
        description="Train a PINN whose PDE coefficients are trainable (burgers: l1, l2 in u_t + l1 u u_x = l2 u_xx; "
        "heat: alpha; wave: c) on observations from --obs or on synthetic ones (--n-obs points of the exact "
        "solution with Gaussian noise of std NOISE * std(u)).",
    )
    p.add_argument("equation", nargs="?", choices=("burgers", "heat", "wave"), help="problem preset, or --problem")
    p.add_argument("--problem", metavar="FILE.py:NAME",
                   help="your own equation: a pdes.PDE with unknowns=(...) (default name PROBLEM)")
    p.add_argument("--obs", metavar="OBS.nc", help="observations: u scattered (dim obs, with t, x) or gridded (t, x)")
    p.add_argument("--n-obs", type=int, help="synthetic: number of random observation points (default 2000)")
    p.add_argument("--noise", type=_finite_float, help="synthetic: noise std relative to std(u) (default 0.01)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data, the networks and the points (default 0)")
    p.add_argument("--nu", type=_finite_float, help="synthetic burgers: true viscosity (default: the preset's)")
    p.add_argument("--alpha", type=_finite_float, help="synthetic heat: true diffusivity (default: the preset's)")
    p.add_argument("--c", type=_finite_float, help="synthetic wave: true wave speed (default: the preset's)")
    p.add_argument("--ensemble", type=int, default=1, metavar="M", help="members trained in one vmapped program (default 1)")
    p.add_argument("--steps", type=int, help="Adam steps (default: the preset's; quasi-Newton: --set qn.steps=N)")
    p.add_argument("--init", action="append", type=_key_value, default=[], metavar="NAME=VALUE", help="initial guess of a coefficient (repeatable)")
    p.add_argument("--constraints", choices=("hard", "none"), help="hard: initial/boundary data built into the network (default); none: data and residual only")
    p.add_argument("--no-bootstrap", action="store_true", help="ensemble members all see every observation")
    p.add_argument("--set", dest="overrides", action="append", type=_key_value, default=[], metavar="KEY=VALUE", help="override a config entry by section.field, e.g. qn.steps=2000, inverse.coeff_lr=0.1 (repeatable)")
    p.add_argument("--nx", type=int, default=256, help="grid of the reconstructed field in x (default 256)")
    p.add_argument("--nt", type=int, default=100, help="grid of the reconstructed field in t (default 100)")
    p.add_argument("--save-obs", metavar="FILE.nc", help="write the synthetic observations used")
    p.add_argument("--checkpoint-dir", metavar="DIR", help="write training checkpoints here")
    p.add_argument("--resume", metavar="DIR", help="resume training from a checkpoint folder (same observations)")
    p.add_argument("--out", metavar="FILE.nc", help="write the reconstructed field, estimates and history")
    p.add_argument("--plot", metavar="FILE.png", help="write a figure: field, error, estimate trajectories")
    p.add_argument("--json", action="store_true", help="print a JSON result on stdout")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_identify)


def cmd_identify(args: argparse.Namespace) -> int:
    from pdes.inverse import identify, plot_identify, synthetic_observations
    from pdes.problems import with_overrides
    from pdes.solution import write_dataset

    _check_suffix(args.out, (".nc",), "--out")
    _check_suffix(args.save_obs, (".nc",), "--save-obs")
    _check_suffix(args.plot, (".png", ".pdf", ".svg"), "--plot")
    base = _problem_of(args)
    own = {"burgers": "nu", "heat": "alpha", "wave": "c"}.get(args.equation or "")
    for flag in ("nu", "alpha", "c"):
        if getattr(args, flag) is not None and flag != own:
            raise UsageError(f"--{flag} does not apply to {base.name}")
    if args.obs is not None:
        given = [f for f, v in (("--n-obs", args.n_obs), ("--noise", args.noise), ("--save-obs", args.save_obs),
                                (f"--{own}", getattr(args, own) if own else None)) if v is not None]
        if given:
            raise UsageError(f"{given[0]} applies to synthetic observations, not to --obs")
    problem = with_overrides(base, **{own: getattr(args, own)}) if own else base
    init = {}
    for name, value in args.init:
        try:
            init[name] = float(value)
        except ValueError:
            raise UsageError(f"--init {name}: not a number: {value!r}") from None
    observations = args.obs
    if observations is None:
        n_obs = 2000 if args.n_obs is None else args.n_obs
        noise = 0.01 if args.noise is None else args.noise
        observations = synthetic_observations(problem, n_obs=n_obs, noise=noise, seed=args.seed)
        if args.save_obs:
            write_dataset(observations, args.save_obs)
    result = identify(problem, observations, seed=args.seed, ensemble=args.ensemble, steps=args.steps, init=init or None,
                      constraints=args.constraints, bootstrap=False if args.no_bootstrap else None,
                      overrides=dict(args.overrides) or None, nx=args.nx, nt=args.nt,
                      checkpoint_dir=args.checkpoint_dir, resume=args.resume, progress=not args.no_progress)
    if args.out:
        write_dataset(result.dataset, args.out)
    if args.plot:
        plot_identify(result.dataset, args.plot)
    summary = {**result.to_dict(), "out": args.out, "plot": args.plot, "save_obs": args.save_obs}
    if args.json:
        print_json(summary)
        return 0
    rows = [{"unknown": k, "estimate": result.estimates[k], "std": result.std[k] if args.ensemble > 1 else None,
             "true": result.truth[k] if result.truth else None,
             "rel_error": result.rel_error[k] if result.rel_error else None} for k in result.estimates]
    print_table(rows, ["unknown", "estimate", "std", "true", "rel_error"])
    print(f"\n{summary['n_obs']} observations, ensemble {args.ensemble}, {summary['steps']} steps, "
          f"field rel. L2 {_fmt(summary['rel_l2'])}, {summary['wall_time_s']:.1f} s")
    for key in ("save_obs", "out", "plot"):
        if summary[key]:
            print(f"wrote {summary[key]}")
    return 0


# ----------------------------------------------------------------------------- main

SUBCOMMANDS: list[Callable[[Any], None]] = [
    add_solve_parser,
    add_compare_parser,
    add_identify_parser,
    _add_moved_parser("demo"),
    _add_moved_parser("figures"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pdes", description="PDE problems: exact, spectral and PINN solutions; compare solution files.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    if argv and argv[0] in ("demo", "figures"):  # moved: forwarded whole (also --help)
        return _forward(argv[0], argv[1:])
    from plumbing.compilation_cache import enable as enable_compilation_cache

    enable_compilation_cache()  # JAX's persistent cache: a second run starts at once
    return run_cli("pdes", build_parser(), argv, collective=_trains)


def _trains(args: argparse.Namespace) -> bool:
    """The commands that train as one of N processes (``plumbing.distributed``)."""
    return args.command == "identify" or (args.command == "solve" and args.method == "pinn")


if __name__ == "__main__":
    sys.exit(main())
