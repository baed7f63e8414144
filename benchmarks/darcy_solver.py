"""Darcy-flow solvers side by side: which one ``operators.darcy`` uses to make the data.

The FNO paper's problem -div(a grad u) = 1 on (0, 1)^2, u = 0 on the boundary, a = 12 / 3
from the sign of a Neumann GRF (``operators.darcy``), 5-point finite differences with
harmonic-mean faces on n x n nodes, n = 141, 241, 421 (the paper solves at 421). The same
coefficients (seed 0, samples 0 .. B - 1) go to every solver:

* ``splu``: scipy.sparse.linalg.splu (SuperLU, COLAMD ordering), factor + solve per sample;
* ``amg-cg``: pyamg smoothed aggregation as a CG preconditioner, setup + solve per sample,
  tol 1e-10 (only when pyamg imports; it is not a dependency of the workbench);
* ``dst-pcg``: ``operators.darcy.solve_darcy`` -- CG on the whole batch, preconditioned by the
  unit-coefficient Laplacian inverted with two type-I DSTs (scipy.fft), tol 1e-10;
* ``dst-pcg-jax``: the same algorithm in JAX (float64, jit, lax.while_loop, the DST-I as
  an rfft of the odd extension), compiled once before timing.

Reported per grid: wall and CPU seconds per sample (medians of alternating repeats),
iterations, the largest difference from splu relative to max |u|, and the discretisation
error of that grid estimated as max |u_n - u_{2n-1}| / max |u| and as the mean relative L2
norm of u_n - u_{2n-1} on the shared nodes (the same coefficient functions solved on the
grid refined once, by dst-pcg).

    python benchmarks/darcy_solver.py [--sizes 141 241 421] [--batch 4] [--repeats 3] [--threads 1]
                                      [--json OUT.json]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from operators.darcy import DARCY, darcy_coefficient, darcy_matrix, face_coefficients, solve_darcy
from plumbing.machine import cpu_name


def alternate(fns: dict[str, Callable[[], Any]], repeats: int) -> tuple[dict[str, float], dict[str, float]]:
    """Median wall and CPU seconds of each callable, run in alternation (after one warm-up)."""
    for f in fns.values():
        f()
    wall: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t0, c0 = time.perf_counter(), time.process_time()
            f()
            wall[k].append(time.perf_counter() - t0)
            cpu[k].append(time.process_time() - c0)
    return ({k: statistics.median(v) for k, v in wall.items()}, {k: statistics.median(v) for k, v in cpu.items()})


def splu_solve(a: np.ndarray) -> np.ndarray:
    return solve_darcy(a, DARCY.f, method="splu")


WORKERS = 1  # scipy.fft workers of dst-pcg (--threads)


def amg_solver() -> Callable[[np.ndarray], tuple[np.ndarray, int]] | None:
    try:
        import pyamg
    except ImportError:
        return None

    def solve(a: np.ndarray) -> tuple[np.ndarray, int]:
        n = a.shape[-1]
        out, iters = np.zeros_like(a), 0
        for i, ai in enumerate(a):
            mat = darcy_matrix(ai).tocsr()
            residuals: list[float] = []
            ml = pyamg.smoothed_aggregation_solver(mat)
            x = ml.solve(np.full(mat.shape[0], DARCY.f), tol=1e-10, accel="cg", residuals=residuals)
            out[i, 1:-1, 1:-1] = x.reshape(n - 2, n - 2)
            iters = max(iters, len(residuals) - 1)
        return out, iters

    return solve


def jax_pcg(n: int, tol: float = 1e-10, maxiter: int = 200) -> Callable[[np.ndarray], tuple[np.ndarray, int]]:
    """The dst-pcg algorithm in JAX (float64), compiled for n x n node grids."""
    import jax
    import jax.numpy as jnp

    m, h = n - 2, 1.0 / (n - 1)
    s = np.sin(np.arange(1, m + 1) * math.pi / (2 * (m + 1))) ** 2
    inv_eig = 1.0 / (4.0 / h**2 * (s[:, None] + s[None, :]))

    def dst1(x: jax.Array, axis: int) -> jax.Array:  # orthonormal DST-I via the odd extension
        x = jnp.moveaxis(x, axis, -1)
        zero = jnp.zeros((*x.shape[:-1], 1), x.dtype)
        spec = jnp.fft.rfft(jnp.concatenate([zero, x, zero, -x[..., ::-1]], axis=-1), axis=-1)
        return jnp.moveaxis(-spec.imag[..., 1:m + 1] * math.sqrt(2.0 / (m + 1)), -1, axis)

    def precondition(r: jax.Array) -> jax.Array:
        return dst1(dst1(dst1(dst1(r, 1), 2) * inv_eig, 1), 2)

    def operator(ax: jax.Array, ay: jax.Array, u: jax.Array) -> jax.Array:
        full = jnp.pad(u, ((0, 0), (1, 1), (1, 1)))
        fx, fy = ax * jnp.diff(full, axis=1), ay * jnp.diff(full, axis=2)
        return -(jnp.diff(fx, axis=1)[:, :, 1:-1] + jnp.diff(fy, axis=2)[:, 1:-1, :]) / h**2

    def dot(p: jax.Array, q: jax.Array) -> jax.Array:
        return jnp.einsum("bij,bij->b", p, q)

    def safe_div(num: jax.Array, den: jax.Array) -> jax.Array:
        return jnp.where(den > 0, num / jnp.where(den > 0, den, 1.0), 0.0)[:, None, None]

    @jax.jit
    def run(ax: jax.Array, ay: jax.Array, rhs: jax.Array) -> tuple[jax.Array, jax.Array]:
        norm_b = jnp.sqrt(dot(rhs, rhs))
        z = precondition(rhs)

        def cond(c: tuple) -> jax.Array:
            return (c[0] < maxiter) & (c[-1] > tol)

        def body(c: tuple) -> tuple:
            it, u, r, p, rz, _ = c
            ap = operator(ax, ay, p)
            alpha = safe_div(rz, dot(p, ap))
            u, r = u + alpha * p, r - alpha * ap
            z = precondition(r)
            rz_new = dot(r, z)
            return it + 1, u, r, z + safe_div(rz_new, rz) * p, rz_new, jnp.max(jnp.sqrt(dot(r, r)) / norm_b)

        out = jax.lax.while_loop(cond, body, (0, jnp.zeros_like(rhs), rhs, z, dot(rhs, z), jnp.inf))
        return out[1], out[0]

    def solve(a: np.ndarray) -> tuple[np.ndarray, int]:
        ax, ay = face_coefficients(a)
        with jax.enable_x64(True):
            u, it = run(ax, ay, np.full((a.shape[0], m, m), DARCY.f))
            u = np.asarray(u)
        return np.pad(u, ((0, 0), (1, 1), (1, 1))), int(it)

    return solve


def measure(n: int, batch: int, repeats: int, seed: int = 0) -> dict[str, Any]:
    from operators.darcy import darcy_pcg

    a = darcy_coefficient(seed, range(batch), np.linspace(0, 1, n))
    ref = splu_solve(a)
    scale = float(np.abs(ref).max())
    fns: dict[str, Callable[[], Any]] = {"splu": lambda: splu_solve(a)}
    iters: dict[str, int] = {"splu": 0}
    diffs: dict[str, float] = {"splu": 0.0}

    ax, ay = face_coefficients(a)
    _, iters["dst-pcg"], _ = darcy_pcg(ax, ay, np.full((batch, n - 2, n - 2), DARCY.f), 1.0 / (n - 1))
    fns["dst-pcg"] = lambda: solve_darcy(a, DARCY.f, workers=WORKERS)
    diffs["dst-pcg"] = float(np.abs(solve_darcy(a, DARCY.f, workers=WORKERS) - ref).max()) / scale
    amg = amg_solver()
    if amg is not None:
        u, iters["amg-cg"] = amg(a)
        diffs["amg-cg"] = float(np.abs(u - ref).max()) / scale
        fns["amg-cg"] = lambda: amg(a)
    jsolve = jax_pcg(n)
    u, iters["dst-pcg-jax"] = jsolve(a)  # compiles
    diffs["dst-pcg-jax"] = float(np.abs(u - ref).max()) / scale
    fns["dst-pcg-jax"] = lambda: jsolve(a)
    wall, cpu = alternate(fns, repeats)

    # Discretisation error of this grid: the same coefficient functions on the grid refined once.
    fine = solve_darcy(darcy_coefficient(seed, range(batch), np.linspace(0, 1, 2 * n - 1)), DARCY.f)
    coarse_error = fine[:, ::2, ::2] - ref
    disc = float(np.abs(coarse_error).max()) / scale
    disc_l2 = float(np.mean(np.linalg.norm(coarse_error, axis=(1, 2)) / np.linalg.norm(ref, axis=(1, 2))))
    rows = [{"n": n, "method": k, "s_per_sample": wall[k] / batch, "cpu_s_per_sample": cpu[k] / batch,
             "iterations": iters[k], "max_diff_vs_splu": diffs[k], "discretisation_error": disc,
             "discretisation_error_rel_l2": disc_l2} for k in fns]
    return {"n": n, "batch": batch, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[141, 241, 421])
    p.add_argument("--batch", type=int, default=4, help="coefficient samples per grid")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="threads for BLAS and XLA (default 1: the work, "
                   "not the scheduler, on a shared machine)")
    p.add_argument("--json", help="also write the rows as JSON")
    args = p.parse_args(argv)
    # Set before JAX is first imported (in jax_pcg); numpy's BLAS through threadpoolctl.
    os.environ.setdefault("XLA_FLAGS", f"--xla_cpu_multi_thread_eigen={'true' if args.threads > 1 else 'false'} "
                          f"intra_op_parallelism_threads={args.threads}")
    from threadpoolctl import threadpool_limits

    threadpool_limits(args.threads)
    global WORKERS
    WORKERS = args.threads
    print(f"machine: {cpu_name()} ({platform.machine()}, {os.cpu_count()} cores); python {sys.version.split()[0]}",
          flush=True)
    results = []
    print("| n | method | s / sample | CPU s / sample | iterations | max diff vs splu (rel. to max u) | "
          "discretisation error: max (rel.), rel. L2 | speed-up vs splu |")
    print("|---|---|---|---|---|---|---|---|")
    for n in args.sizes:
        res = measure(n, args.batch, args.repeats)
        results.append(res)
        base = next(r for r in res["rows"] if r["method"] == "splu")["s_per_sample"]
        for r in res["rows"]:
            print(f"| {n} | {r['method']} | {r['s_per_sample']:.3f} | {r['cpu_s_per_sample']:.3f} | "
                  f"{r['iterations'] or '-'} | {r['max_diff_vs_splu']:.1e} | {r['discretisation_error']:.1e}, "
                  f"{r['discretisation_error_rel_l2']:.1e} | "
                  f"{base / r['s_per_sample']:.1f}x |", flush=True)
    if args.json:
        from plumbing.files import atomic_write_json

        atomic_write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
