"""The GPU checks of the PINN, FNO and uncertainty issues, in one run with a time budget.

    python3 benchmarks/gpu_check.py --out DIR [--budget 450] [--only fno_bench,ensemble,...]

Runs each check as its own process (so one failure does not stop the rest) and prints a
table at the end; ``DIR/gpu_check.json`` holds every number, ``DIR/gpu_check.log`` the
tail of each process's output. Large intermediate files (datasets, models) go to a
scratch folder (``--work``), not to DIR.

1. ``fno_bench`` (alone on the GPU): ``benchmarks/fno_vs_neuraloperator.py --device cuda``:
   ours vs neuraloperator 2.0 on our Burgers set, same epochs (default 139, the issue's
   reference run), full float32 on both sides.
2. ``ensemble`` (alone): ``benchmarks/uncertainty.py --only pinn --only fno``: an M = 8
   vmapped ensemble vs one model, same steps.
   ``efficiency`` (alone): ``python -m efficiency amp`` (small and medium GPT, fp16 + GradScaler
   and bf16) and ``checkpoint`` (depth x sequence length) on CUDA. INT8 ``quantize`` is not
   run: its kernels (torch.ao dynamic quantization, our weight-only INT8) are CPU kernels.
3. Then, side by side on the GPU (their errors are the point, not their times):
   ``ns``: Navier-Stokes nu = 1e-3 data (1000 / 200 at 64 x 64, solved on 128 x 128) and an
   FNO-2D trained on it, evaluated at 32 and 64; ``heat_fno``: the 1D heat operator (one
   training per ``--heat-variant``, each a string of extra ``operators train`` options);
   ``pinn_{heat,wave,burgers}``: the ``accurate`` presets with a wall-time budget
   (``max_wall_s``), their steps/s read from the training history.

Every JAX process runs with matmul precision "highest" (no TF32) and without
pre-allocating GPU memory, so that several share the card.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
JOBS = ("env", "fno_bench", "ensemble", "efficiency", "ns", "heat_fno", "pinn_heat", "pinn_wave", "pinn_burgers")

ENV_SCRIPT = """
import json, platform, importlib.metadata as m
import jax
out = {"python": platform.python_version(), "jax_devices": [f"{d.platform}:{d.device_kind}" for d in jax.devices()]}
for name in ("jax", "jaxlib", "flax", "optax", "numpy", "xarray", "h5netcdf", "torch", "neuraloperator"):
    try:
        out[name] = m.version(name)
    except m.PackageNotFoundError:
        out[name] = None
try:
    import torch
    out["torch_cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
except ImportError:
    pass
import pdes, operators, uncertainty  # noqa: F401  (the project imports with these versions)
print(json.dumps(out))
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.setdefault("JAX_DEFAULT_MATMUL_PRECISION", "highest")
    env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Job(NamedTuple):
    name: str
    proc: subprocess.Popen
    t0: float


class Runner:
    """Start processes, keep their output, parse the JSON documents of their stdout."""

    def __init__(self, log: Path):
        self.log = log
        self.results: dict[str, dict] = {}

    def start(self, name: str, steps: list[list[str]], timeout: float) -> Job:
        """Run ``steps`` one after the other in a shell under one deadline (``timeout`` s)."""
        script = " && ".join(shlex.join(cmd) for cmd in steps)
        proc = subprocess.Popen(["timeout", "-k", "5", str(int(timeout)), "bash", "-c", script], cwd=ROOT,
                                env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return Job(name, proc, time.perf_counter())

    def finish(self, job: Job) -> dict:
        name, proc = job.name, job.proc
        out, err = proc.communicate()
        rows = json_documents(out)
        res = {"rc": proc.returncode, "wall_s": time.perf_counter() - job.t0, "json": rows}
        if proc.returncode:
            res["error"] = "timed out" if proc.returncode in (124, 137) else err.strip().splitlines()[-1:] or ""
        self.results[name] = res
        with self.log.open("a") as f:
            f.write(f"===== {name}: rc {proc.returncode}, {res['wall_s']:.1f} s\n{err[-6000:]}\n{out[-3000:]}\n")
        print(f"[gpu_check] {name}: rc {proc.returncode} after {res['wall_s']:.0f} s", file=sys.stderr, flush=True)
        return res


def json_documents(text: str) -> list:
    """Every JSON object in ``text`` that starts a line (one-line or indented)."""
    dec, rows, i = json.JSONDecoder(), [], 0
    while (i := text.find("{", i)) >= 0:
        if i == 0 or text[i - 1] == "\n":
            try:
                obj, end = dec.raw_decode(text, i)
                rows.append(obj)
                i = end
                continue
            except json.JSONDecodeError:
                pass
        i += 1
    return rows


def pinn_rates(path: Path) -> dict:
    """Steady steps/s of each phase (Adam 0, quasi-Newton 1) from a PINN solution file's history."""
    import numpy as np

    from pdes.solution import read_dataset

    ds = read_dataset(path)
    step = ds["step"].values.astype(float)
    wall = ds["history_wall_time_s"].values
    phase = ds["history_phase"].values
    out = {"rel_l2": float(ds.attrs["rel_l2"]), "steps_done": int(ds.attrs["steps_done"]),
           "stopped": str(ds.attrs["stopped"]), "train_wall_s": float(wall[-1])}
    for ph, name in ((0, "adam"), (1, "qn")):
        idx = np.flatnonzero(phase == ph)
        if len(idx) >= 2:  # from the end of the phase's first chunk (which includes compilation) to its last
            a, b = idx[0], idx[-1]
            out[f"{name}_steps_per_s"] = float((step[b] - step[a]) / (wall[b] - wall[a]))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder for gpu_check.json / .log and the small outputs")
    p.add_argument("--work", type=Path, default=Path("/tmp/gpu_check"), help="scratch folder (datasets, models)")
    p.add_argument("--budget", type=float, default=450.0, help="seconds for the whole run")
    p.add_argument("--only", default=",".join(JOBS), help=f"comma-separated subset of {','.join(JOBS)}")
    p.add_argument("--fno-epochs", type=int, default=139, help="fno_bench epochs (both sides)")
    p.add_argument("--ns-epochs", type=int, default=200)
    p.add_argument("--ns-train", type=int, default=1000)
    p.add_argument("--heat-epochs", type=int, default=500)
    p.add_argument("--heat-variant", action="append", default=None,
                   help="extra 'operators train' options for one heat FNO run (repeatable; default one run)")
    p.add_argument("--fno-lr", type=float, default=3e-3, help="fno_bench peak learning rate (both sides)")
    p.add_argument("--ens-steps", type=int, default=1000, help="ensemble benchmark: PINN Adam steps")
    p.add_argument("--ens-epochs", type=int, default=20, help="ensemble benchmark: FNO epochs")
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda", help="fno_bench's device (cpu: to test)")
    p.add_argument("--peer-python", default=sys.executable, help="interpreter with torch and neuraloperator")
    p.add_argument("--small", action="store_true", help="tiny sizes: check the script itself (CPU, minutes)")
    args = p.parse_args(argv)
    only = set(args.only.split(","))
    if unknown := only - set(JOBS):
        p.error(f"unknown job(s) {', '.join(sorted(unknown))}")
    args.out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    t_end = time.perf_counter() + args.budget
    left = lambda: t_end - time.perf_counter()  # noqa: E731
    run = Runner(args.out / "gpu_check.log")
    py, w = sys.executable, args.work
    if args.small:
        args.fno_epochs, args.ns_epochs, args.ns_train, args.heat_epochs = 3, 2, 40, 2
        args.ens_steps, args.ens_epochs = 50, 2

    if "env" in only:
        run.finish(run.start("env", [[py, "-c", ENV_SCRIPT]], min(120, left())))
    if "fno_bench" in only:
        run.finish(run.start("fno_bench", [[py, "benchmarks/fno_vs_neuraloperator.py", "--device", args.device,
                                            "--peer-python", args.peer_python, "--epochs", str(args.fno_epochs),
                                            "--lr", str(args.fno_lr),
                                            "--data", str(w / "burgers_512_128.nc"), "--json"]],
                             min(0.3 * args.budget, left())))
    if "ensemble" in only:
        run.finish(run.start("ensemble", [[py, "benchmarks/uncertainty.py", "--only", "pinn", "--only", "fno",
                                           "--steps", str(args.ens_steps), "--epochs", str(args.ens_epochs),
                                           "--repeats", "3", "--json"]], min(0.2 * args.budget, left())))

    if "efficiency" in only:
        small = ["--steps", "4"] if args.small else []
        dev = ["--device", args.device, "--json", "--no-progress"]
        run.finish(run.start("efficiency", [
            [py, "-m", "efficiency", "amp", "--preset", "small", "--steps", "20", *small, *dev],
            [py, "-m", "efficiency", "amp", "--preset", "medium", "--steps", "20", *small, *dev],
            [py, "-m", "efficiency", "amp", "--preset", "medium", "--steps", "20", "--dtype", "bf16", *small, *dev],
            [py, "-m", "efficiency", "checkpoint", "--preset", "small" if args.small else "medium",
             "--depths", "2,4,8", "--seq-lens", "64,128" if args.small else "128,256,512,1024", *small, *dev]],
            min(0.3 * args.budget, left())))

    # ---- side by side: accuracy runs
    jobs = []
    deadline = max(left() - 5, 30)
    if "ns" in only:
        ns_test = max(args.ns_train // 5, 4)
        jobs.append(run.start("ns", [
            [py, "-m", "operators", "generate", "navier_stokes", "--n-train", str(args.ns_train), "--n-test",
             str(ns_test), "--nx", "64", "--fine-nx", "128", "--chunk-size", "200", "--out", str(w / "ns.nc"),
             "--json", "--no-progress"],
            [py, "-m", "operators", "train", str(w / "ns.nc"), "--epochs", str(args.ns_epochs), "--batch-size", "20",
             "--out", str(w / "ns_model"), "--json", "--no-progress"],
            [py, "-m", "operators", "evaluate", str(w / "ns_model"), str(w / "ns.nc"), "--nx", "32", "64",
             "--plot", str(args.out / "fno_navier_stokes_gpu.png"), "--json"]], deadline))
    if "heat_fno" in only:
        if not (w / "heat.nc").is_file():
            run.finish(run.start("heat_data", [
                [py, "-m", "operators", "generate", "heat", "--n-train", "1000", "--n-test", "200", "--nx", "1024",
                 "--out", str(w / "heat.nc"), "--json", "--no-progress"]], min(120, left())))
        deadline = max(left() - 5, 30)
        variants = args.heat_variant or [f"--epochs {args.heat_epochs} --weight-decay 0"]
        for i, var in enumerate(variants):
            name = "heat_fno" if len(variants) == 1 else f"heat_fno_{i}"
            model = w / f"{name}_model"
            jobs.append(run.start(name, [
                [py, "-m", "operators", "train", str(w / "heat.nc"), "--nx", "256", *var.split(), "--out", str(model),
                 "--json", "--no-progress"],
                [py, "-m", "operators", "evaluate", str(model), str(w / "heat.nc"), "--nx", "256", "1024",
                 "--json"]], deadline))
            run.results.setdefault("heat_variants", {})[name] = var
    for eq in ("heat", "wave", "burgers"):
        if f"pinn_{eq}" in only:
            budget = max(deadline - 60, 10)  # compilation, evaluation and writing on top of the training budget
            extra = ["--set", "adam.steps=200", "--set", "qn.steps=100"] if args.small else []
            jobs.append(run.start(f"pinn_{eq}", [
                [py, "-m", "pdes", "solve", eq, "--method", "pinn", "--preset", "accurate", "--set",
                 f"run.max_wall_s={budget:.0f}", *extra, "--out", str(args.out / f"pinn_{eq}_accurate_gpu.nc"),
                 "--json", "--no-progress"]], deadline))
    for job in jobs:
        res = run.finish(job)
        nc = args.out / f"{job.name}_accurate_gpu.nc"
        if job.name.startswith("pinn_") and nc.is_file():
            try:
                res["history"] = pinn_rates(nc)
            except Exception as e:  # noqa: BLE001  (report, never lose the other results)
                res["history_error"] = repr(e)

    summary = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "budget_s": args.budget,
               "jobs": run.results}
    (args.out / "gpu_check.json").write_text(json.dumps(summary, indent=1, default=float))
    print_table(run.results)
    return 0


def print_table(results: dict[str, dict]) -> None:
    def last(name: str) -> dict:
        rows = results.get(name, {}).get("json") or [{}]
        return rows[-1]

    lines = []
    if "env" in results:
        lines.append(f"env: {last('env')}")
    if (b := last("fno_bench")) and "ours" in b:
        o, n = b["ours"], b["neuraloperator"]
        lines.append(f"fno_bench: ours {o['samples_per_s']:.0f} samples/s rel_l2 {o['rel_l2']:.3e} | neuralop "
                     f"{n['samples_per_s']:.0f} samples/s rel_l2 {n['rel_l2']:.3e} | ratio {b['throughput_ratio']:.2f}x")
    if (e := last("ensemble")) and "pinn" in e:
        lines.append(f"ensemble M=8 vs 1: PINN wall x{e['pinn']['ratio_wall']:.2f}, FNO wall x{e['fno']['ratio_wall']:.2f}")
    for name in ["ns"] + sorted(k for k in results if k.startswith("heat_fno")):
        rows = results.get(name, {}).get("json") or []
        ev = next((r for r in reversed(rows) if "grids" in r), None)
        tr = next((r for r in reversed(rows) if "train_time_s" in r), None)
        if ev:
            grids = ", ".join(f"nx {g['nx']}: {g['rel_l2']:.3e}" for g in ev["grids"])
            var = results.get("heat_variants", {}).get(name, "")
            lines.append(f"{name} {var}: test rel_l2 {grids}; train {tr['train_time_s'] if tr else float('nan'):.0f} s")
    for eq in ("heat", "wave", "burgers"):
        r = results.get(f"pinn_{eq}", {})
        h = r.get("history")
        if h:
            lines.append(f"pinn_{eq} accurate: rel_l2 {h['rel_l2']:.3e}, steps {h['steps_done']}, "
                         f"adam {h.get('adam_steps_per_s', float('nan')):.0f}/s, qn {h.get('qn_steps_per_s', float('nan')):.0f}/s, "
                         f"train {h['train_wall_s']:.0f} s, {h['stopped']}")
    for row in results.get("efficiency", {}).get("json") or []:
        lines.append("efficiency: " + json.dumps(row)[:300])
    for name, r in results.items():
        if isinstance(r, dict) and r.get("rc"):
            lines.append(f"{name}: FAILED rc {r['rc']}: {r.get('error')}")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
