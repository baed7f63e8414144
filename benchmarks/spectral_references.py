"""Benchmark: accuracy and cost of the ETDRK4 references for Allen–Cahn and KdV (issue 21).

Both presets are periodic on [-1, 1) and evaluated on the PINN grid t = linspace(0, 1, 100),
x = linspace(-1, 1, 256). Errors are relative L2 over that grid against finer runs, refined in
space (n_points, same steps: only the spatial error differs) and in time (n_steps, same points),
with the observed orders. Tables:

* KdV u_t + u u_x + 0.022^2 u_xxx = 0, u0 = cos(pi x): error vs n_points and vs n_steps.
* Allen–Cahn u_t = 1e-4 u_xx + 5 (u - u^3), u0 = x^2 cos(pi x) (kinked at x = +-1): error vs
  n_points from the exact Fourier series (the reference) and from samples of u0 (for contrast),
  error vs n_points just after t = 0 (the kink's algebraic regime), and error vs n_steps.
* The defaults: estimated error and the wall time of a call (first call with compilation, then warm).

Prints the tables and one JSON line, and writes its section of benchmarks/results/spectral.md
(between the markers below; the rest of the file is left alone).

    .venv/bin/python benchmarks/spectral_references.py              # ~3-5 minutes on 2 busy cores
    .venv/bin/python benchmarks/spectral_references.py --no-write
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pdes.solution import rel_l2
from pdes.spectral import (
    allen_cahn_initial,
    allen_cahn_reference,
    allen_cahn_terms,
    fourier_interpolate,
    kdv_reference,
    periodic_grid,
    solve_periodic_semilinear,
)
from plumbing.machine import cpu_name

RESULTS = Path(__file__).parent / "results" / "spectral.md"
BEGIN = "<!-- spectral_references.py: begin -->"
END = "<!-- spectral_references.py: end -->"
T_EVAL = np.linspace(0.0, 1.0, 100)
X_EVAL = np.linspace(-1.0, 1.0, 256)


def timed(fn: Callable[[], np.ndarray]) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def orders(values: list[int], errs: list[float]) -> list[float | None]:
    """Observed order between successive refinements: log(e_i / e_{i+1}) / log(v_{i+1} / v_i)."""
    out: list[float | None] = [None]
    for i in range(1, len(values)):
        ea, eb = errs[i - 1], errs[i]
        out.append(float(np.log(ea / eb) / np.log(values[i] / values[i - 1])) if ea > 0 and eb > 0 else None)
    return out


def table(head: str, rows: list[tuple]) -> list[str]:
    cols = head.split(" | ")
    lines = ["| " + head + " |", "|" + "---|" * len(cols)]
    for row in rows:
        cells = []
        for v in row:
            if v is None:
                cells.append("")
            elif isinstance(v, float):
                cells.append(f"{v:.2e}" if abs(v) < 1e-2 or abs(v) >= 1e4 else f"{v:.2f}")
            else:
                cells.append(str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def refine(
    run: Callable[[int], np.ndarray], values: list[int], ref: np.ndarray
) -> tuple[list[float], list[float]]:
    errs, secs = [], []
    for v in values:
        u, s = timed(lambda v=v: run(v))
        errs.append(rel_l2(u, ref))
        secs.append(s)
        print(f"  {v}: {errs[-1]:.2e} ({s:.1f} s)", flush=True)
    return errs, secs


def kdv_study() -> tuple[list[str], dict]:
    print("KdV: reference 1024 points ...", flush=True)
    ref_space = kdv_reference(T_EVAL, X_EVAL, n_points=1024, n_steps=32000)
    points = [256, 320, 384, 448, 512, 768]
    e_space, s_space = refine(
        lambda n: kdv_reference(T_EVAL, X_EVAL, n_points=n, n_steps=32000), points, ref_space
    )
    print("KdV: steps ...", flush=True)
    steps = [1000, 2000, 4000, 8000, 16000, 32000, 64000]
    runs = {}
    for s in steps:
        runs[s], _ = timed(lambda s=s: kdv_reference(T_EVAL, X_EVAL, n_points=512, n_steps=s))
    changes = [rel_l2(runs[a], runs[b]) for a, b in zip(steps, steps[1:], strict=False)]
    # a coefficient changed in the last bit builds a new nonlinear object: a fresh compile (the cold time)
    _, cold = timed(
        lambda: kdv_reference(T_EVAL, X_EVAL, n_points=512, n_steps=32000, delta=0.022 * (1 + 1e-15))
    )
    default, warm = timed(lambda: kdv_reference(T_EVAL, X_EVAL))
    space_err = rel_l2(default, ref_space)  # same steps (32000): the spatial error of 512 points
    time_err = changes[steps.index(16000)] / 15  # Richardson: change 16000 -> 32000 over 2^4 - 1
    fine = rel_l2(default, kdv_reference(T_EVAL, X_EVAL, n_points=1024, n_steps=64000))
    lines = ["### KdV: u_t + u u_x + 0.022^2 u_xxx = 0, u0 = cos(pi x), periodic on [-1, 1)", ""]
    lines += ["Error vs n_points (32000 steps each; reference 1024 points, 32000 steps):", ""]
    lines += table(
        "n_points | rel. L2 | wall s (with compile)", list(zip(points, e_space, s_space, strict=True))
    )
    lines += [
        "",
        "Error vs n_steps (512 points): change to the run with twice the steps, and the observed order:",
        "",
    ]
    lines += table(
        "n_steps | change to 2x steps | order",
        list(zip(steps[:-1], changes, orders(steps[:-1], changes), strict=True)),
    )
    lines += [
        "",
        f"Default (512 points, 32000 steps): spatial error {space_err:.1e} (against 1024 points), time error "
        f"{time_err:.1e} (Richardson, change 16000 -> 32000 over 15); against 1024 points and 64000 steps "
        f"{fine:.1e}. The last step row (32000 -> 64000) no longer falls 16x: each step multiplies by the "
        "rounded exp(h L), so rounding grows ~n_steps x 1e-16; ~32000 steps is where the two meet. "
        f"Wall time of a default call: {cold:.1f} s with compilation, {warm:.1f} s warm.",
        "",
    ]
    data = {
        "default": {
            "n_points": 512,
            "n_steps": 32000,
            "rel_l2_space": space_err,
            "rel_l2_time": time_err,
            "rel_l2_vs_finer": fine,
            "wall_time_s": warm,
            "wall_time_cold_s": cold,
        },
        "points": dict(zip(points, e_space, strict=True)),
        "steps_change": dict(zip(steps[:-1], changes, strict=True)),
    }
    return lines, data


def allen_cahn_study() -> tuple[list[str], dict]:
    print("Allen–Cahn: reference 16384 points ...", flush=True)
    ref = allen_cahn_reference(T_EVAL, X_EVAL, n_points=16384, n_steps=4000)
    points = [1024, 1536, 2048, 3072, 4096, 6144, 8192]
    e_space, s_space = refine(
        lambda n: allen_cahn_reference(T_EVAL, X_EVAL, n_points=n, n_steps=4000), points, ref
    )
    print("Allen–Cahn: sampled u0 ...", flush=True)
    linear, nonlinear = allen_cahn_terms()

    def sampled(n: int) -> np.ndarray:
        u0 = allen_cahn_initial(periodic_grid(n, x_min=-1.0, length=2.0))
        u = solve_periodic_semilinear(
            u0, linear=linear, nonlinear=nonlinear, length=2.0, t_save=T_EVAL[1:], n_steps=4000
        )
        return fourier_interpolate(u, X_EVAL, x0=-1.0, length=2.0)

    sampled_points = [1024, 2048, 4096, 8192]
    e_sampled, _ = refine(sampled, sampled_points, ref[1:])
    print("Allen–Cahn: early times ...", flush=True)
    early_t = np.array([1e-4, 1e-3, 1e-2])
    early_ref = allen_cahn_reference(early_t, X_EVAL, n_points=32768, n_steps=40)
    early_points = [1024, 2048, 4096, 8192]
    early = {n: allen_cahn_reference(early_t, X_EVAL, n_points=n, n_steps=40) for n in early_points}
    e_early = {
        float(t): [rel_l2(early[n][i], early_ref[i]) for n in early_points] for i, t in enumerate(early_t)
    }
    print("Allen–Cahn: steps ...", flush=True)
    steps = [250, 500, 1000, 2000, 4000, 8000, 16000, 32000]
    runs = {}
    for s in steps:
        runs[s], _ = timed(lambda s=s: allen_cahn_reference(T_EVAL, X_EVAL, n_points=4096, n_steps=s))
    changes = [rel_l2(runs[a], runs[b]) for a, b in zip(steps, steps[1:], strict=False)]
    # a new coefficient value: a new nonlinear object and a fresh compile (the cold time)
    _, cold = timed(
        lambda: allen_cahn_reference(T_EVAL, X_EVAL, n_points=4096, n_steps=4000, gamma=5.0 * (1 + 1e-15))
    )
    default, warm = timed(lambda: allen_cahn_reference(T_EVAL, X_EVAL))
    fine = rel_l2(default, allen_cahn_reference(T_EVAL, X_EVAL, n_points=16384, n_steps=8000))
    space_err = rel_l2(default, ref)
    floor = changes[steps.index(2000) :][:3]  # 2000 -> 4000 -> 8000 -> 16000: no longer falling
    inside = float(np.abs(default[1:]).max())

    lines = ["### Allen–Cahn: u_t = 1e-4 u_xx + 5 (u - u^3), u0 = x^2 cos(pi x), periodic on [-1, 1)", ""]
    lines += [
        "u0 is only continuous across x = +-1 (slope 2 -> -2): its Fourier modes fall like m^-2. The",
        "reference starts from the exact series (closed form) truncated to the 2/3 band and returns u0",
        "itself at t = 0. Error vs n_points (4000 steps each; reference 16384 points, 4000 steps), from",
        "the exact series and, for contrast, from samples of u0 (collocation: the m^-2 tail aliases",
        "into every mode, ~n^-2, and diffusion does not remove it from the low modes):",
        "",
    ]
    by_n = dict(zip(sampled_points, e_sampled, strict=True))
    samp_orders = dict(zip(sampled_points, orders(sampled_points, e_sampled), strict=True))
    rows = [
        (n, e, orders(points, e_space)[i], s_space[i], by_n.get(n), samp_orders.get(n))
        for i, (n, e) in enumerate(zip(points, e_space, strict=True))
    ]
    lines += table(
        "n_points | rel. L2 (exact series) | order | wall s (with compile) | rel. L2 (sampled u0, t > 0) | order",
        rows,
    )
    lines += [
        "",
        "(From the exact series the convergence is spectral, so its 'order' keeps changing; from 6144 points on it sits at the rounding floor.)",
    ]
    lines += [
        "",
        "Just after t = 0 diffusion has not yet damped the kink's tail (factor exp(-1e-4 pi^2 m^2 t)):",
        "error at single times against 32768 points (40 steps):",
        "",
    ]
    rows = [(n, *(e_early[float(t)][i] for t in early_t)) for i, n in enumerate(early_points)]
    lines += table("n_points | " + " | ".join(f"t = {t:g}" for t in early_t), rows)
    o = {float(t): orders(early_points, e_early[float(t)]) for t in early_t}
    lines += [
        "",
        f"Observed orders at t = 1e-4: {', '.join(f'{v:.2f}' for v in o[1e-4][1:])} (the m^-2 tail beyond n/3: "
        "O(n^-1) at the kink point, O(n^-3/2) in L2; rising as the damping starts to act). "
        "From t ~ 1e-2 on (the evaluation grid's first time is 1/99) it is spectral.",
        "",
        "Error vs n_steps (4096 points): change to the run with twice the steps, and the observed order:",
        "",
    ]
    lines += table(
        "n_steps | change to 2x steps | order",
        list(zip(steps[:-1], changes, orders(steps[:-1], changes), strict=True)),
    )
    lines += [
        "",
        f"Default (4096 points, 4000 steps): spatial error {space_err:.1e} (against 16384 points); in time the "
        f"changes from 2000 steps on ({', '.join(f'{c:.1e}' for c in floor)}) no longer fall: each step multiplies "
        "by the rounded exp(h L), so rounding grows ~n_steps x 1e-16, amplified by the unstable reaction "
        f"(e^{{5t}}), and meets the fourth-order time error near 2000 steps. Against 16384 points and 8000 steps "
        f"{fine:.1e}; max |u| over t > 0 = 1 - {1 - inside:.1e} (maximum principle: |u| <= 1). "
        f"Wall time of a default call: {cold:.1f} s with compilation, {warm:.1f} s warm.",
        "",
    ]
    data = {
        "default": {
            "n_points": 4096,
            "n_steps": 4000,
            "rel_l2_space": space_err,
            "rel_l2_vs_finer": fine,
            "max_abs_u": inside,
            "wall_time_s": warm,
            "wall_time_cold_s": cold,
        },
        "points": dict(zip(points, e_space, strict=True)),
        "points_sampled_u0": by_n,
        "early": {str(t): dict(zip(early_points, v, strict=True)) for t, v in e_early.items()},
        "steps_change": dict(zip(steps[:-1], changes, strict=True)),
    }
    return lines, data


def write_section(text: str) -> None:
    old = RESULTS.read_text() if RESULTS.exists() else ""
    block = f"{BEGIN}\n{text}\n{END}\n"
    if BEGIN in old and END in old:
        new = old[: old.index(BEGIN)] + block + old[old.index(END) + len(END) + 1 :]
    else:
        new = old.rstrip("\n") + "\n\n" + block
    tmp = RESULTS.with_suffix(".md.tmp")
    tmp.write_text(new)
    os.replace(tmp, RESULTS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="do not write benchmarks/results/spectral.md")
    args = parser.parse_args()
    start = time.perf_counter()
    kdv_lines, kdv = kdv_study()
    ac_lines, ac = allen_cahn_study()
    total = time.perf_counter() - start
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    machine = f"{cpu_name()}, {platform.machine()}, {os.cpu_count()}-core CPU shared with other jobs (load average at the end {load})"
    text = "\n".join(
        [
            "## ETDRK4 references: Allen–Cahn and KdV (issue 21)",
            "",
            f"Machine: {machine}.",
            f"Command: `.venv/bin/python benchmarks/spectral_references.py` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {total:.0f} s in all).",
            "Grid: t = linspace(0, 1, 100), x = linspace(-1, 1, 256); relative L2 over the grid. Solver:",
            "`pdes.spectral.solve_periodic_semilinear` (Fourier pseudo-spectral, 2/3 dealiasing, ETDRK4 with",
            "Kassam–Trefethen contour coefficients; the whole circle for KdV's imaginary symbol), float64.",
            "",
            *kdv_lines,
            *ac_lines,
        ]
    )
    print()
    print(text)
    print(json.dumps({"kdv": kdv, "allen_cahn": ac, "wall_time_s": total}, default=float))
    if not args.no_write:
        write_section(text)


if __name__ == "__main__":
    main()
