"""Benchmark: batched spectral Burgers (JAX, ETDRK4, vmap) vs a plain scipy method-of-lines solve.

Task (issue 2, item 8): periodic viscous Burgers, nu = 0.1, 1024 Fourier points (2/3 dealiased),
T = 1, 256 initial conditions drawn from the operator preset's Gaussian random field
N(0, 625 (-Laplacian + 25 I)^-2). Both solvers integrate the *same* semi-discrete system
(du/dt = -nu k^2 u - (i k / 2) mask F[u^2] in Fourier space); each is run at the settings that
just meet one accuracy target (relative L2 error at T = 1 against a converged ETDRK4 reference
of that system with 8192 steps), and the throughput in samples per second is compared.

* JAX: ``pdes.spectral.solve_periodic_burgers`` on all 256 samples in one compiled, vmap-ed call
  (compile time reported separately, then the best of ``--repeats`` timed calls).
* scipy: ``scipy.integrate.solve_ivp`` on the same right-hand side with numpy FFTs, one sample at
  a time. The system is stiff (nu k_max^2 ~ 1e6), so the explicit RK45 is hopeless; the
  baseline uses LSODA (automatic stiff switching; BDF and Radau were slower in a trial run).
  It runs on ``--scipy-samples`` samples and the time is extrapolated to 256 (said in the table).

The script also measures the reference accuracy of issue 2 (Cole–Hopf vs spectral for the
Burgers preset, spectral vs exact for heat and wave) and writes benchmarks/results/spectral.md.

    .venv/bin/python benchmarks/spectral.py                 # ~3-5 minutes on 2 busy cores
    .venv/bin/python benchmarks/spectral.py --scipy-samples 1 --no-write
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
from pathlib import Path

import numpy as np
import scipy.integrate

from pdes.exact import exact_solution
from pdes.problems import BURGERS, HEAT, OPERATOR_BURGERS, WAVE, Heat, Wave
from pdes.solution import rel_l2
from pdes.spectral import dealias_mask, solve_periodic_burgers, solve_spectral, wavenumbers
from plumbing.machine import cpu_name

RESULTS = Path(__file__).parent / "results" / "spectral.md"


def grf_samples(n_samples: int, n: int, seed: int, problem=OPERATOR_BURGERS) -> np.ndarray:
    """Samples of N(0, sigma^2 (-Laplacian + tau^2 I)^-alpha) on x_j = j L / n, periodic: (B, n).

    Each real Fourier mode k gets variance sigma^2 (4 pi^2 k^2 / L^2 + tau^2)^-alpha."""
    rng = np.random.default_rng(seed)
    k = np.arange(n // 2 + 1)
    lam = problem.grf_sigma**2 * (4 * math.pi**2 * k**2 / problem.length**2 + problem.grf_tau**2) ** -problem.grf_alpha
    xi = (rng.standard_normal((n_samples, k.size)) + 1j * rng.standard_normal((n_samples, k.size))) / math.sqrt(2)
    xi[:, 0] = rng.standard_normal(n_samples)
    if n % 2 == 0:
        xi[:, -1] = rng.standard_normal(n_samples)
    return np.fft.irfft(np.sqrt(lam) * xi * n, n=n, axis=-1)


def scipy_solve(u0: np.ndarray, nu: float, t_end: float, rtol: float, method: str = "LSODA") -> tuple[np.ndarray, int]:
    """The same pseudo-spectral discretization integrated by solve_ivp in physical space. u0: (n,)."""
    n = u0.size
    k = wavenumbers(n, 1.0)
    mask = dealias_mask(n)
    lin = -nu * k**2
    half_ik = 0.5j * k * mask

    def rhs(_t: float, u: np.ndarray) -> np.ndarray:
        return np.fft.irfft(lin * np.fft.rfft(u) - half_ik * np.fft.rfft(u * u), n=n)

    sol = scipy.integrate.solve_ivp(rhs, (0.0, t_end), u0, method=method, rtol=rtol, atol=rtol * 1e-2, t_eval=[t_end])
    if not sol.success:
        raise RuntimeError(f"solve_ivp failed: {sol.message}")
    return sol.y[:, -1], int(sol.nfev)


def accuracy_rows() -> list[tuple[str, str, float]]:
    """Reference accuracy of issue 2: Cole–Hopf vs spectral, spectral vs exact (heat, wave)."""
    rows = []
    t = np.linspace(0, 1, 11)
    x = np.linspace(-1, 1, 257)
    ch = exact_solution(BURGERS, t, x)
    from pdes.spectral import solve_burgers_dirichlet

    sp = solve_burgers_dirichlet(BURGERS, t, x, n_points=8192, n_steps=8000)
    rows.append(("burgers preset, t in {0, 0.1, ..., 1}", "Cole–Hopf (442 GH nodes) vs spectral (8192 pts, 8000 ETDRK4 steps)", rel_l2(ch, sp)))
    rows.append(("burgers preset, t = 1", "same", rel_l2(ch[-1], sp[-1])))
    sp_default = solve_spectral(BURGERS, nx=256, nt=100)
    rows.append(("burgers preset, 256 x 100 grid", "spectral defaults (4096 pts, ~4000 steps) vs Cole–Hopf", rel_l2(sp_default.u, exact_solution(BURGERS, sp_default.t, sp_default.x))))
    for prob, label in ((HEAT, "heat preset"), (WAVE, "wave preset")):
        s = solve_spectral(prob, nx=256, nt=100)
        rows.append((f"{label}, 256 x 100", "spectral vs sine series", rel_l2(s.u, exact_solution(prob, s.t, s.x))))
    smooth = lambda x: np.sin(np.pi * x) * np.exp(np.cos(np.pi * x))  # noqa: E731  (odd, 2-periodic: analytic extension)
    for prob, label in ((Heat(initial=smooth, alpha=0.01), "heat, u0 = sin(pi x) e^cos(pi x)"), (Wave(initial=smooth), "wave, u0 = sin(pi x) e^cos(pi x)")):
        for n in (16, 24, 32):
            s = solve_spectral(prob, nx=17, nt=5, n_points=n)
            rows.append((f"{label}, {n} modes", "spectral vs DST series / d'Alembert", rel_l2(s.u, exact_solution(prob, s.t, s.x))))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--n", type=int, default=1024, help="Fourier points")
    parser.add_argument("--scipy-samples", type=int, default=2, help="samples solved by scipy (time extrapolated)")
    parser.add_argument("--target", type=float, default=1e-8, help="relative L2 error target at T = 1")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true", help="do not write benchmarks/results/spectral.md")
    args = parser.parse_args()
    nu, t_end = OPERATOR_BURGERS.nu, OPERATOR_BURGERS.t_end
    u0 = grf_samples(args.samples, args.n, args.seed)
    m = min(args.scipy_samples, args.samples)
    check = max(m, min(8, args.samples))  # samples with a converged reference

    print(f"reference: ETDRK4, 8192 steps, {check} samples ...", flush=True)
    ref = solve_periodic_burgers(u0[:check], nu=nu, t_save=[t_end], n_steps=8192)[:, 0]

    # JAX: the fewest steps (powers of 2 from 64) that meet the target on the checked samples.
    steps = 64
    while True:
        u = solve_periodic_burgers(u0[:check], nu=nu, t_save=[t_end], n_steps=steps)[:, 0]
        jax_err = rel_l2(u, ref)
        if jax_err <= args.target or steps >= 8192:
            break
        steps *= 2
    print(f"jax: {steps} ETDRK4 steps give rel. L2 {jax_err:.2e}; timing {args.samples} samples ...", flush=True)
    start = time.perf_counter()
    solve_periodic_burgers(u0, nu=nu, t_save=[t_end], n_steps=steps)
    first = time.perf_counter() - start
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        u_all = solve_periodic_burgers(u0, nu=nu, t_save=[t_end], n_steps=steps)[:, 0]
        times.append(time.perf_counter() - start)
    jax_time = min(times)
    assert np.allclose(u_all[:check], u, rtol=0, atol=1e-12), "batched result differs from the checked subset"

    # scipy: tighten rtol by 10x until the first sample meets the target with a 3x margin (the
    # error of LSODA at a given rtol varies by ~3x between samples; measured in a first run).
    rtol = 1e-7
    while True:
        start = time.perf_counter()
        y, nfev = scipy_solve(u0[0], nu, t_end, rtol)
        one = time.perf_counter() - start
        if rel_l2(y, ref[0]) <= args.target / 3 or rtol <= 1e-12:
            break
        print(f"scipy: rtol {rtol:g} misses the target ({rel_l2(y, ref[0]):.2e}); tightening", flush=True)
        rtol /= 10
    print(f"scipy: LSODA rtol {rtol:g}; {m} samples ...", flush=True)
    ys, secs, nfevs = [y], [one], [nfev]
    for i in range(1, m):
        start = time.perf_counter()
        y, nfev = scipy_solve(u0[i], nu, t_end, rtol)
        secs.append(time.perf_counter() - start)
        ys.append(y)
        nfevs.append(nfev)
    scipy_err = rel_l2(np.stack(ys), ref[:m])
    scipy_per_sample = float(np.mean(secs))
    jax_rate = args.samples / jax_time
    scipy_rate = 1.0 / scipy_per_sample
    ratio = jax_rate / scipy_rate

    print("accuracy checks ...", flush=True)
    acc = accuracy_rows()

    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    machine = (
        f"{cpu_name()}, {platform.machine()}, {os.cpu_count()}-core CPU shared with other jobs "
        f"(load average at the end {load}: absolute times are noisy, the ratio is measured side by side)"
    )
    lines = [
        "| solver | settings | rel. L2 at T=1 vs reference | time | samples/s |",
        "|---|---|---|---|---|",
        f"| JAX ETDRK4, vmap over {args.samples} | {steps} steps, 1 compiled call (compile+run {first:.1f} s) | {jax_err:.2e} ({check} samples) | {jax_time:.2f} s for {args.samples} | {jax_rate:.1f} |",
        f"| scipy solve_ivp LSODA, one at a time | rtol {rtol:g}, atol {rtol * 1e-2:g}, mean {np.mean(nfevs):.0f} RHS evals | {scipy_err:.2e} ({m} samples) | {scipy_per_sample:.2f} s per sample (run on {m}, extrapolated to {args.samples}: {scipy_per_sample * args.samples:.0f} s) | {scipy_rate:.3f} |",
        "",
        f"**Speed-up: {ratio:.0f}x** (goal >= 20x), at the accuracy target {args.target:g}.",
    ]
    acc_lines = ["| case | comparison | rel. L2 |", "|---|---|---|"] + [f"| {a} | {b} | {c:.2e} |" for a, b, c in acc]
    print()
    print("\n".join(lines))
    print()
    print("\n".join(acc_lines))
    if args.no_write:
        return
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    text = f"""# Spectral solvers and exact solutions (pdes)

Machine: {machine}.
Command: `.venv/bin/python benchmarks/spectral.py` (written by that script; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}).

## Batched Burgers: JAX ETDRK4 vs scipy method of lines

Periodic viscous Burgers, nu = {nu}, {args.n} Fourier points with 2/3 dealiasing, T = {t_end},
{args.samples} initial conditions from the operator preset's GRF N(0, 625 (-Laplacian + 25 I)^-2).
Both solvers integrate the same semi-discrete system; the reference is ETDRK4 with 8192 steps.
Each solver uses the cheapest settings that meet the target (JAX: steps doubled from 64;
scipy: rtol divided by 10 from 1e-7 until the first sample is within target / 3). scipy runs {m} samples, one at a time, and its time for
{args.samples} is extrapolated from their mean (stated in the table).

{chr(10).join(lines)}

## Accuracy of the references

{chr(10).join(acc_lines)}

## README section

`pdes` holds the problem presets (heat, wave, Burgers, 2-D heat, periodic operator Burgers),
exact solutions (sine series, standing waves / d'Alembert, Cole–Hopf with log-space
Gauss–Hermite quadrature, accurate to ~1e-14 through the Burgers front), Fourier
pseudo-spectral solvers (2/3 dealiasing, ETDRK4 with Kassam–Trefethen coefficients, odd
extension for zero-Dirichlet ends, vmap-batched), and one xarray data model for every solution.

```bash
python -m pdes solve burgers --method exact --out out/burgers_exact.nc
python -m pdes solve burgers --method spectral --nx 512 --nt 201 --out out/burgers_spectral.nc --plot out/burgers.png
python -m pdes solve heat --method spectral --alpha 0.05 --json
python -m pdes solve wave --method exact --c 1.5 --t-end 2 --out out/wave.nc
python -m pdes compare out/burgers_spectral.nc out/burgers_exact.nc      # rel. L2, max abs, per-time error
python -m pdes demo --out out                                            # Burgers exact vs spectral, table + figure
python -m pdes figures --out docs                                        # gallery: preset solutions + convergence.png
```

```python
import numpy as np
from pdes import BURGERS, solve, exact_solution, solve_periodic_burgers
ds = solve(BURGERS, method="spectral", nx=256, nt=100)          # xarray Dataset with u and u_true
u = exact_solution(BURGERS, np.linspace(0, 1, 100), np.linspace(-1, 1, 256))   # (100, 256)
u1 = solve_periodic_burgers(u0_batch, nu=0.1, t_save=[1.0])     # (B, 1, nx), one compiled vmap-ed call
```
"""
    RESULTS.write_text(text)
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
