"""Forward- vs reverse-mode derivatives for PINN residuals, side by side in one run.

Times one training gradient (value_and_grad of the mean squared residual with respect to
the parameters) of the heat and Burgers residuals, computed two ways:

* forward: nested ``jax.jvp`` over the batch (what ``pdes.pinn.residuals`` does);
* reverse: per-point ``jax.grad``/``jax.hessian`` of the scalar network under ``jax.vmap``.

    python benchmarks/pinn_derivatives.py [--n 1024] [--repeats 20]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from pdes.pinn import build_pinn, get_config  # noqa: E402
from pdes.problems import BURGERS, HEAT  # noqa: E402


def reverse_residual(pinn, params, t, x):
    def u(ti, xi):
        return pinn.apply(params, ti[None], xi[None])[0]

    u_t = jax.vmap(jax.grad(u, argnums=0))(t, x)
    u_x = jax.vmap(jax.grad(u, argnums=1))(t, x)
    u_xx = jax.vmap(jax.grad(jax.grad(u, argnums=1), argnums=1))(t, x)
    if "alpha" in pinn.coeffs:
        return u_t - pinn.coeffs["alpha"] * u_xx
    return u_t + jax.vmap(u)(t, x) * u_x - pinn.coeffs["nu"] * u_xx


def timed(fn, *args, repeats):
    jax.block_until_ready(fn(*args))
    t0 = time.perf_counter()
    for _ in range(repeats):
        jax.block_until_ready(fn(*args))
    return (time.perf_counter() - t0) / repeats


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1024, help="collocation points")
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args(argv)
    for problem in (HEAT, BURGERS):
        pinn = build_pinn(problem, get_config(problem.name, "fast"))
        params = pinn.init(jax.random.key(0))
        k1, k2 = jax.random.split(jax.random.key(1))
        t = jax.random.uniform(k1, (args.n,)) * problem.t_end
        x = problem.x_min + problem.length * jax.random.uniform(k2, (args.n,))
        fwd = jax.jit(jax.value_and_grad(lambda p, t, x, m=pinn: jnp.mean(m.residual(p, t, x) ** 2)))
        rev = jax.jit(jax.value_and_grad(lambda p, t, x, m=pinn: jnp.mean(reverse_residual(m, p, t, x) ** 2)))
        a, b = fwd(params, t, x)[0], rev(params, t, x)[0]
        tf = timed(fwd, params, t, x, repeats=args.repeats)
        tr = timed(rev, params, t, x, repeats=args.repeats)
        print(f"{problem.name}: loss fwd {float(a):.6e} rev {float(b):.6e}; value_and_grad forward {tf * 1e3:.1f} ms, "
              f"reverse {tr * 1e3:.1f} ms, reverse/forward {tr / tf:.2f}x (n={args.n})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
