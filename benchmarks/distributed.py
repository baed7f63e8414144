"""Multi-process training side by side (issue 19), every run through the command lines.

(a) scaling: FNO training throughput (samples/s) of one process with one thread on today's
    path (the whole set in memory, one compiled epoch) against two processes with one thread
    each (``jax.distributed``, gloo, each process reading its half of every batch from the
    file), on the same global batch and seed; also one process streaming and two processes
    holding the set in memory. Each process is pinned to its own core and XLA runs one
    thread (``--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1``). Throughput
    is taken from the training time of epochs 2..E (epoch 1 compiles). The processes are
    started with the SCIML_* variables, as the launcher would, to pin each to a core. The
    one- and two-process runs are interleaved ``--repeats`` times and the best of each kept.
(b) memory: a dataset file of 4x the memory cap given to each process; one and two
    processes train on it streaming, a watchdog polls each process's resident memory
    (``/proc/PID/status``: VmRSS, VmHWM = peak RSS) every 50 ms and kills a process above the
    cap (a cgroup-free cap: RLIMIT_AS cannot be used, JAX reserves far more address space than
    it touches). The in-memory loader is run under the same cap for contrast.
(c) curves: loss curves of one and two processes (same global batch, same seed) for the FNO,
    an FNO ensemble and a PINN; the largest relative difference.

    python benchmarks/distributed.py [--part scaling memory curves] [--repeats 3] [--cap-gib 1.0] [--work DIR] [--json]

Machine notes (CPU model, cores, load average before and after each part) go into the
output; the scaling numbers mean something only on an otherwise quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from plumbing.machine import cpu_name as cpu_model

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


class Watch:
    """Polls /proc/PID/status of some processes: peak RSS (VmHWM), and kills any above ``cap``."""

    def __init__(self, procs: list[subprocess.Popen], cap: int | None) -> None:
        self.procs, self.cap = procs, cap
        self.peak = [0] * len(procs)
        self.killed = [False] * len(procs)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def _status(pid: int) -> dict[str, int]:
        out = {}
        try:
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    if line.startswith(("VmRSS:", "VmHWM:")):
                        out[line.split(":")[0]] = int(line.split()[1]) * 1024
        except OSError:
            pass
        return out

    def _run(self) -> None:
        while any(p.poll() is None for p in self.procs):
            for i, p in enumerate(self.procs):
                if p.poll() is not None:
                    continue
                st = self._status(p.pid)
                self.peak[i] = max(self.peak[i], st.get("VmHWM", 0), st.get("VmRSS", 0))
                if self.cap is not None and st.get("VmRSS", 0) > self.cap:
                    self.killed[i] = True
                    p.kill()
            time.sleep(0.05)

    def join(self) -> None:
        self._thread.join()


def run_processes(argv: list[str], n: int, *, one_thread: bool = True, cap: int | None = None,
                  timeout: float = 3600) -> dict:
    """``python -m operators ...`` as n processes (process i pinned to core i), the SCIML_*
    variables set for n > 1; returns exit codes, wall time, peak RSS per process, stderr tail."""
    port = _free_port()
    procs = []
    start = time.perf_counter()
    for i in range(n):
        env = dict(os.environ, JAX_PLATFORMS="cpu")
        env.setdefault("SCIML_JAX_CACHE", "off")  # every run compiles: the same work in every row
        if one_thread:
            env["XLA_FLAGS"] = ONE_THREAD
        if n > 1:
            env.update(SCIML_COORDINATOR=f"127.0.0.1:{port}", SCIML_NUM_PROCESSES=str(n), SCIML_PROCESS_ID=str(i))
        core = {i % (os.cpu_count() or 1)}
        procs.append(subprocess.Popen([sys.executable, "-m", *argv], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True,
                                      preexec_fn=(lambda c=core: os.sched_setaffinity(0, c)) if one_thread else None))
    watch = Watch(procs, cap)
    outs = [p.communicate(timeout=timeout) for p in procs]
    watch.join()
    return {"codes": [p.returncode for p in procs], "wall_s": time.perf_counter() - start, "peak_rss": watch.peak,
            "killed": watch.killed, "stdout": outs[0][0], "stderr": [o[1][-1500:] for o in outs]}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _history(model_dir: Path) -> list[dict]:
    from plumbing.checkpoint import read_meta

    return read_meta(model_dir)["history"]


def throughput(model_dir: Path, samples_per_epoch: int) -> float:
    h = _history(model_dir)
    return (len(h) - 1) * samples_per_epoch / (h[-1]["wall_time_s"] - h[0]["wall_time_s"])


# ----------------------------------------------------------------------------- (a) scaling


def part_scaling(work: Path, epochs: int = 4, batches: tuple[int, ...] = (32, 64),
                 repeats: int = 1) -> tuple[list[str], dict]:
    """The one- and two-process runs of each batch size are interleaved ``repeats`` times (1, 2,
    1, 2, ...) and the best of each kept: on a shared machine the best run is the one least
    disturbed by other jobs, and interleaving gives both the same chances."""
    from operators.data import GenerateConfig, generate

    data = work / "scaling.nc"
    n_train = 1024
    if not data.exists():
        generate(GenerateConfig(kind="heat", n_train=n_train, n_test=64, nx=256, fine_nx=256, seed=3), data,
                 progress=False)
    runs = []
    for bs in batches:
        for _ in range(repeats):
            runs += [(bs, "1 process x 1 thread, in memory (today's path)", 1, "memory"),
                     (bs, "2 processes x 1 thread, streamed (default)", 2, "stream")]
    runs += [(batches[0], "1 process x 1 thread, streamed", 1, "stream"),
             (batches[0], "2 processes x 1 thread, in memory on each (SPMD all-reduce per array)", 2, "memory")]
    best: dict[tuple[int, str], dict] = {}
    for bs, label, n, loader in runs:
        flags = ["--modes", "16", "--width", "64", "--depth", "4", "--batch-size", str(bs), "--epochs", str(epochs),
                 "--lr", "1e-3", "--no-progress", "--json"]
        out = work / f"scaling_{bs}_{n}_{loader}"
        before = load()
        r = run_processes(["operators", "train", str(data), "--out", str(out), "--loader", loader, *flags], n)
        if any(r["codes"]):
            raise RuntimeError(f"{label}: {r['stderr']}")
        run = {"samples_per_s": throughput(out, (n_train // bs) * bs), "wall_s": r["wall_s"],
               "loss": [h["train_loss"] for h in _history(out)], "load": f"{before} / {load()}"}
        seen = best.setdefault((bs, label), {**run, "all": []})
        seen["all"].append(round(run["samples_per_s"], 1))
        if run["samples_per_s"] > seen["samples_per_s"]:
            best[(bs, label)] = {**run, "all": seen["all"]}
    rows, base = [], {}
    for (bs, label), run in best.items():
        sps = run["samples_per_s"]
        base.setdefault(bs, sps)
        every = ", ".join(map(str, run["all"])) if len(run["all"]) > 1 else ""
        rows.append(f"| {bs} | {label} | {sps:.1f} | {sps / base[bs]:.2f}x | {every} | {run['wall_s']:.1f} | "
                    f"{run['loss'][-1]:.6g} | {run['load']} |")
    lines = ["| global batch | run | samples/s (best) | vs 1 process, same batch | every repeat | wall (s, with "
             "start-up and compile) | final train loss | load before / after (best run) |",
             "|---|---|---|---|---|---|---|---|", *rows, "",
             f"Data: heat (operators generate), {n_train} train samples at nx = 256; FNO modes 16, width 64, depth 4; "
             f"lr 1e-3 (cosine); {epochs} epochs, throughput over epochs 2..{epochs} (epoch 1 compiles); "
             f"{repeats} interleaved repeat(s), the best kept."]
    return lines, {f"{label}, batch {bs}": run for (bs, label), run in best.items()}


# ----------------------------------------------------------------------------- (b) memory


def part_memory(work: Path, cap_gib: float) -> tuple[list[str], dict]:
    from operators.data import GenerateConfig, generate

    cap = int(cap_gib * (1 << 30))
    nx = 4096
    per_sample = 2 * nx * 8  # a and u, float64
    n_test = 32
    n_train = int(np.ceil(4 * cap / per_sample)) - n_test + 64  # a little over 4x the cap on disk
    data = work / "big.nc"
    t0 = time.perf_counter()
    if not data.exists():
        generate(GenerateConfig(kind="heat", n_train=n_train, n_test=n_test, nx=nx, fine_nx=nx, seed=5,
                                chunk_size=2048), data, progress=False)
    gen_s = time.perf_counter() - t0
    size = data.stat().st_size
    flags = ["--modes", "16", "--width", "16", "--depth", "2", "--batch-size", "32", "--epochs", "1", "--no-progress",
             "--json"]
    rows, result = [], {"file_bytes": size, "cap_bytes": cap, "generate_s": gen_s}
    for label, n, loader in (("1 process, streamed", 1, "stream"), ("2 processes, streamed", 2, "stream"),
                             ("1 process, in memory (for contrast)", 1, "memory")):
        out = work / f"mem_{n}_{loader}"
        before = load()
        r = run_processes(["operators", "train", str(data), "--out", str(out), "--loader", loader, *flags], n,
                          one_thread=False, cap=cap)
        ok = not any(r["codes"]) and not any(r["killed"])
        status = "trained" if ok else ("killed at the cap" if any(r["killed"]) else f"failed {r['codes']}")
        loss = json.loads(r["stdout"])["train_loss"] if ok and r["stdout"].strip() else None
        result[label] = {**{k: r[k] for k in ("codes", "wall_s", "peak_rss", "killed")}, "loss": loss}
        peaks = ", ".join(f"{p / (1 << 20):.0f}" for p in r["peak_rss"])
        rows.append(f"| {label} | {status} | {peaks} | {max(r['peak_rss']) / cap:.2f} | {r['wall_s']:.0f} | "
                    f"{loss if loss is None else f'{loss:.6g}'} | {before} / {load()} |")
    lines = [f"Dataset: heat (1D) at nx = {nx}, {n_train} train + {n_test} test samples, float64 a and u: "
             f"**{size / (1 << 30):.2f} GiB on disk = {size / cap:.2f}x the cap of {cap / (1 << 30):.2f} GiB** "
             f"per process (generated in {gen_s:.0f} s). FNO modes 16, width 16, depth 2, global batch 32, one "
             f"epoch ({n_train // 32} steps). The cap is enforced on the resident set (VmRSS) by the watchdog.", "",
             "| run | outcome | peak RSS per process (MiB) | peak / cap | wall (s) | train loss | load before / after |",
             "|---|---|---|---|---|---|---|", *rows]
    return lines, result


# ----------------------------------------------------------------------------- (c) curves


ENV = dict(os.environ, JAX_PLATFORMS="cpu", SCIML_JAX_CACHE=os.environ.get("SCIML_JAX_CACHE", "off"))


def _launch(package: str, argv: list[str]) -> None:
    r = subprocess.run([sys.executable, "-m", package, "launch", "--processes", "2", "--", *argv],
                       env=ENV, capture_output=True, text=True, timeout=3600)
    if r.returncode:
        raise RuntimeError(r.stderr[-2000:])


def _single(package: str, argv: list[str]) -> None:
    r = subprocess.run([sys.executable, "-m", package, *argv], env=ENV, capture_output=True, text=True,
                       timeout=3600)
    if r.returncode:
        raise RuntimeError(r.stderr[-2000:])


def part_curves(work: Path) -> tuple[list[str], dict]:
    import xarray as xr

    from operators.data import GenerateConfig, generate

    data = work / "curves.nc"
    generate(GenerateConfig(kind="heat", n_train=256, n_test=32, nx=64, fine_nx=64), data, progress=False)
    rows, result = [], {}
    fno = ["train", str(data), "--modes", "8", "--width", "16", "--depth", "2", "--batch-size", "16", "--epochs", "8",
           "--no-progress"]
    _single("operators", [*fno, "--out", str(work / "c1")])
    _launch("operators", [*fno, "--out", str(work / "c2")])
    a = np.array([[h["train_loss"], h["test_rel_l2"]] for h in _history(work / "c1")])
    b = np.array([[h["train_loss"], h["test_rel_l2"]] for h in _history(work / "c2")])
    result["fno"] = float(np.max(np.abs(b - a) / np.abs(a)))
    rows.append(("FNO (8 epochs, 1 process in memory vs 2 streamed): train loss and test rel. L2 per epoch",
                 result["fno"], float(a[-1, 0])))
    ens = ["run", "fno", "--n-train", "64", "--n-test", "16", "--nx", "64", "--modes", "8", "--width", "16",
           "--depth", "2", "--batch-size", "16", "--epochs", "8", "--members", "4", "--no-progress"]
    _single("uncertainty", [*ens, "--out", str(work / "e1.nc")])
    _launch("uncertainty", [*ens, "--out", str(work / "e2.nc")])
    e1, e2 = xr.open_dataset(work / "e1.nc")["u_samples"].values, xr.open_dataset(work / "e2.nc")["u_samples"].values
    result["ensemble"] = float(np.max(np.abs(e2 - e1)) / np.max(np.abs(e1)))
    rows.append(("FNO ensemble, 4 members (2 per process): member predictions, max abs diff / max abs",
                 result["ensemble"], None))
    pinn = ["solve", "heat", "--method", "pinn", "--steps", "300", "--set", "qn.steps=50", "--set", "run.log_every=50",
            "--nx", "64", "--nt", "32", "--no-progress"]
    _single("pdes", [*pinn, "--out", str(work / "p1.nc")])
    _launch("pdes", [*pinn, "--out", str(work / "p2.nc")])
    p1, p2 = xr.open_dataset(work / "p1.nc"), xr.open_dataset(work / "p2.nc")
    l1, l2 = p1["history_loss"].values, p2["history_loss"].values
    result["pinn"] = float(np.max(np.abs(l2 - l1) / np.abs(l1)))
    rows.append(("PINN heat (fast preset, float64; 300 Adam + 50 quasi-Newton steps, points sharded over the 2 "
                 "processes): loss every 50 steps", result["pinn"], float(l1[-1])))
    lines = ["| model | largest relative difference, 2 vs 1 process | final loss (1 process) |", "|---|---|---|"]
    lines += [f"| {label} | {d:.2e} | {'' if f is None else f'{f:.6g}'} |" for label, d, f in rows]
    return lines, result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", nargs="+", choices=("scaling", "memory", "curves"), default=["scaling", "memory", "curves"])
    p.add_argument("--cap-gib", type=float, default=1.0, help="memory cap per process for (b) (default 1 GiB)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved repeats of the scaling runs (default 3)")
    p.add_argument("--work", help="folder for the data files (default: a temporary folder)")
    p.add_argument("--json", action="store_true", help="print the raw results as JSON")
    args = p.parse_args()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="sciml_dist_"))
    work.mkdir(parents=True, exist_ok=True)
    import jax

    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, {platform.machine()}; jax {jax.__version__}; "
          f"load average {load()}")
    results = {}
    for part in args.part:
        fn = {"scaling": lambda w: part_scaling(w, repeats=args.repeats), "memory": lambda w: part_memory(w, args.cap_gib),
              "curves": part_curves}[part]
        lines, results[part] = fn(work)
        print(f"\n## {part}\n")
        print("\n".join(lines), flush=True)
    if args.json:
        print(json.dumps(results, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
