"""Side-by-side benchmark: our JAX/Flax FNO vs neuraloperator 2.0's FNO (PyTorch), same data.

    .venv/bin/python benchmarks/fno_vs_neuraloperator.py [--epochs 20] [--batch-size 32] [--json]
    .venv/bin/python benchmarks/fno_vs_neuraloperator.py --problem darcy [--nx 43] [--n-train 256]
    python3 benchmarks/fno_vs_neuraloperator.py --device cuda --peer-python python3   # on a GPU machine

``--problem burgers`` (default): both train on our Burgers set (nu = 0.1, u0 ~ N(0, 625 (-Laplacian + 25 I)^-2) -> u(., 1),
512 train / 128 test at 256 points; generated here with ``operators.data`` unless
``--data`` names an existing file) with the same width (64), layers (4), kept modes, epochs,
batch size, AdamW settings, cosine schedule, relative-L2 loss and scalar input/output
normalisation. Kept modes: ours ``modes = 9`` keeps k = 0..8; neuraloperator's
``n_modes = (16,)`` keeps 16 // 2 + 1 = 9 on its (last, rfft) axis: the same 9 frequencies.

neuraloperator runs in its own virtual environment ``benchmarks/_envs/neuralop``, created
on first use with ``pip install -c constraints.txt torch==2.13.0 neuraloperator`` (the
constraint keeps pip on the CPU wheel of torch 2.13.0; the script checks that the installed
torch has no CUDA). On a GPU (``--device cuda``) both sides run on the GPU in full float32
(JAX matmul precision "highest", PyTorch with TF32 off) and ``--peer-python`` names an
interpreter that already has torch with CUDA and neuraloperator. Each side trains in its own process, one after the other.
``--problem darcy``: both train on the same Darcy file (``python -m operators generate darcy``,
the FNO paper's coefficients, u = 0 on the boundary; stored at ``--nx`` points per axis),
2-D FNOs with ``--modes`` kept frequencies per axis and the same zero padding for the
non-periodic data (``--padding``, default 0.1 of each axis, as the paper's 2-D code; ours
``FNOConfig.padding``, neuraloperator's ``domain_padding``).

Each side reports its training throughput (samples/s over epochs 2..E, i.e. without JAX's compilation or
PyTorch's first-epoch warm-up), total wall time (with compilation) and final test rel. L2.
The two architectures differ where neuraloperator's defaults differ from the FNO paper
(its lifting/projection are 2-layer channel MLPs and each block adds a channel MLP with a
soft-gating skip); ours is the paper's FNO. Parameter counts are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from plumbing.machine import cpu_name

ROOT = Path(__file__).resolve().parents[1]
ENV = ROOT / "benchmarks" / "_envs" / "neuralop"
DEFAULT_DATA = ROOT / "benchmarks" / "_envs" / "burgers_512_128_n256.nc"

TORCH_SCRIPT = textwrap.dedent(
    """
    import json, math, sys, time
    import numpy as np
    import torch
    from neuralop.models import FNO

    cfg = json.loads(sys.argv[1])
    if cfg["threads"]:
        torch.set_num_threads(cfg["threads"])
    dev = torch.device(cfg["device"])
    cuda = dev.type == "cuda"
    if cuda:  # full float32 arithmetic, as ours runs with matmul precision "highest"
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    d = np.load(cfg["npz"])
    torch.manual_seed(cfg["seed"])
    a_tr, u_tr = (torch.tensor(d[k])[:, None].to(dev) for k in ("a_train", "u_train"))
    a_te, u_te = (torch.tensor(d[k])[:, None].to(dev) for k in ("a_test", "u_test"))
    am, as_, um, us = (float(x) for x in d["stats"])
    dim = a_tr.ndim - 2
    extra = {"domain_padding": cfg["padding"]} if cfg["padding"] else {}
    model = FNO(n_modes=(cfg["n_modes"],) * dim, in_channels=1, out_channels=1, hidden_channels=cfg["width"],
                n_layers=cfg["depth"], **extra).to(dev)
    n_params = sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters())
    bs, epochs = cfg["batch_size"], cfg["epochs"]
    steps = a_tr.shape[0] // bs
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    warm = cfg["warmup_epochs"] * steps
    total = epochs * steps

    def lr_at(s):  # the same warm-up + cosine schedule as optax.warmup_cosine_decay_schedule
        if s < warm:
            return s / warm
        return 0.5 * (1 + math.cos(math.pi * min(s - warm, total - warm) / max(total - warm, 1)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)

    def rel_l2(p, t):
        axes = tuple(range(1, p.ndim))
        return (torch.linalg.vector_norm(p - t, dim=axes) / torch.linalg.vector_norm(t, dim=axes)).mean()

    def forward(a):
        return model((a - am) / as_) * us + um

    gen = torch.Generator().manual_seed(cfg["seed"])
    times = []
    t_start = time.perf_counter()
    for ep in range(epochs):
        sync()
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(a_tr.shape[0], generator=gen).to(dev)
        for i in range(steps):
            idx = perm[i * bs:(i + 1) * bs]
            opt.zero_grad(set_to_none=True)
            loss = rel_l2(forward(a_tr[idx]), u_tr[idx])
            loss.backward()
            opt.step()
            sched.step()
        sync()
        times.append(time.perf_counter() - t0)
    wall = time.perf_counter() - t_start
    model.eval()
    with torch.no_grad():
        test = float(rel_l2(forward(a_te), u_te))
    print(json.dumps({"name": "neuraloperator", "epoch_times": times, "wall_time_s": wall, "rel_l2": test,
                      "n_params": n_params, "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "device": torch.cuda.get_device_name(dev) if cuda else "cpu"}))
    """
)

OURS_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    from operators import FNOConfig, TrainConfig, train_fno, param_count

    cfg = json.loads(sys.argv[1])
    d = np.load(cfg["npz"])
    arrays = (d["a_train"], d["u_train"], d["a_test"], d["u_test"])
    mcfg = FNOConfig(modes=cfg["modes"], width=cfg["width"], depth=cfg["depth"], padding=cfg["padding"])
    tcfg = TrainConfig(epochs=cfg["epochs"], batch_size=cfg["batch_size"], lr=cfg["lr"],
                       weight_decay=cfg["weight_decay"], warmup_epochs=cfg["warmup_epochs"],
                       seed=cfg["seed"], eval_every=cfg["epochs"], data_parallel=False)
    t0 = time.perf_counter()
    model, hist = train_fno(arrays, mcfg, tcfg, progress=False)
    wall = time.perf_counter() - t0
    cum = [h["wall_time_s"] for h in hist]
    times = [cum[0]] + [b - a for a, b in zip(cum, cum[1:])]
    import jax
    print(json.dumps({"name": "ours (JAX/Flax NNX)", "epoch_times": times, "wall_time_s": wall,
                      "rel_l2": hist[-1]["test_rel_l2"], "n_params": param_count(model), "jax": jax.__version__,
                      "device": jax.devices()[0].device_kind}))
    """
)


def ensure_env() -> Path:
    """Create the neuraloperator venv on first use; refuse a CUDA build of torch."""
    py = ENV / "bin" / "python"
    if not (py.exists() and subprocess.run([str(py), "-c", "import neuralop"], capture_output=True).returncode == 0):
        print(f"installing neuraloperator into {ENV} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(ENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "-c", str(ROOT / "constraints.txt"),
                        "torch==2.13.0", "neuraloperator"], check=True)
    out = subprocess.run([str(py), "-c", "import torch, neuralop, importlib.metadata as m; "
                          "print(torch.__version__, torch.version.cuda, m.version('neuraloperator'))"],
                         capture_output=True, text=True, check=True).stdout.split()
    if out[1] != "None":
        raise SystemExit(f"the neuraloperator venv has a CUDA torch ({out[0]}, CUDA {out[1]}): remove {ENV}")
    return py


def ensure_data(path: Path, kind: str, n_train: int, n_test: int, nx: int, seed: int) -> Path:
    if path.exists():
        return path
    from operators.data import GenerateConfig, generate

    print(f"generating {kind} data into {path} ...", file=sys.stderr)
    path.parent.mkdir(parents=True, exist_ok=True)
    return generate(GenerateConfig(kind=kind, n_train=n_train, n_test=n_test, nx=nx, seed=seed), path)


def export_npz(data: Path, n_train: int, n_test: int, nx: int, tmp: Path) -> Path:
    import numpy as np

    from operators.train import load_operator_data

    d = load_operator_data(data, nx)
    if len(d.a_train) < n_train or len(d.a_test) < n_test:
        raise SystemExit(f"{data} has {len(d.a_train)} train / {len(d.a_test)} test samples, fewer than "
                         f"{n_train} / {n_test}")
    a_tr, u_tr = d.a_train[:n_train], d.u_train[:n_train]
    out = tmp / "data.npz"
    stats = np.array([a_tr.mean(), a_tr.std(), u_tr.mean(), u_tr.std()], np.float64)
    np.savez(out, a_train=a_tr, u_train=u_tr, a_test=d.a_test[:n_test], u_test=d.u_test[:n_test], stats=stats)
    return out


def run(python: str, script: str, cfg: dict) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    if cfg["device"] == "cpu":
        env["JAX_PLATFORMS"] = "cpu"
    else:
        env.update(JAX_PLATFORMS="cuda", JAX_DEFAULT_MATMUL_PRECISION="highest", XLA_PYTHON_CLIENT_PREALLOCATE="false")
    if cfg["threads"] == 1:  # XLA's CPU client: one thread for the Eigen ops as well
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
                            " intra_op_parallelism_threads=1").strip()
    proc = subprocess.run([python, "-c", script, json.dumps(cfg)], capture_output=True, text=True, cwd=ROOT, env=env)
    if proc.returncode:
        raise SystemExit(f"{python} failed:\n{proc.stderr[-3000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    steady = res["epoch_times"][1:] or res["epoch_times"]
    res["samples_per_s"] = cfg["n_train"] * len(steady) / sum(steady)
    return res




# Per problem: (train, test, stored points per axis, kept modes, width, padding).
SETTINGS = {"burgers": (512, 128, 256, 9, 64, 0.0), "darcy": (256, 64, 43, 12, 32, 0.1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--problem", choices=sorted(SETTINGS), default="burgers")
    p.add_argument("--data", type=Path, default=None,
                   help="operator dataset (default: generated into benchmarks/_envs/ on first use)")
    p.add_argument("--n-train", type=int, default=None, help="training samples (burgers 512, darcy 256)")
    p.add_argument("--n-test", type=int, default=None, help="test samples (burgers 128, darcy 64)")
    p.add_argument("--nx", type=int, default=None, help="points per axis (burgers 256, darcy 43)")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=None, help="burgers 32, darcy 16")
    p.add_argument("--modes", type=int, default=None,
                   help="kept frequencies per axis (burgers 9, darcy 12; neuraloperator n_modes = 2 (modes - 1))")
    p.add_argument("--width", type=int, default=None, help="burgers 64, darcy 32")
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--padding", type=float, default=None, help="zero padding per axis (burgers 0, darcy 0.1)")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0,
                   help="threads per side (0: each library's default, all cores; 1: single-threaded torch and XLA)")
    p.add_argument("--repeats", type=int, default=1, help="alternate the two runs this many times (best of)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where both sides train (default cpu)")
    p.add_argument("--peer-python", default=None,
                   help="interpreter with torch and neuraloperator (default: the script's own CPU venv)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    n_train, n_test, nx, modes, width, padding = SETTINGS[args.problem]
    n_train, n_test, nx = args.n_train or n_train, args.n_test or n_test, args.nx or nx
    modes, width = args.modes or modes, args.width or width
    padding = padding if args.padding is None else args.padding
    batch = args.batch_size or (32 if args.problem == "burgers" else 16)
    default = DEFAULT_DATA if args.problem == "burgers" else ENV.parent / f"darcy_{n_train}_{n_test}_n{nx}.nc"
    py = Path(args.peer_python) if args.peer_python else ensure_env()
    data = ensure_data(args.data or default, args.problem, n_train, n_test, nx, args.seed)
    common = {"epochs": args.epochs, "batch_size": batch, "width": width, "depth": args.depth, "padding": padding,
              "lr": args.lr, "weight_decay": 1e-4, "warmup_epochs": min(5, args.epochs - 1), "seed": args.seed,
              "n_train": n_train, "threads": args.threads, "device": args.device}
    with tempfile.TemporaryDirectory() as tmp:
        npz = export_npz(data, n_train, n_test, nx, Path(tmp))
        results: dict[str, list[dict]] = {"ours": [], "neuraloperator": []}
        for _ in range(args.repeats):
            results["neuraloperator"].append(run(str(py), TORCH_SCRIPT, {**common, "npz": str(npz),
                                                                         "n_modes": 2 * (modes - 1)}))
            results["ours"].append(run(sys.executable, OURS_SCRIPT, {**common, "npz": str(npz), "modes": modes}))
    best = {k: max(v, key=lambda r: r["samples_per_s"]) for k, v in results.items()}
    machine = f"{cpu_name()}, {os.cpu_count()} cores"
    if args.device == "cuda":
        machine = f"{best['ours']['device']} (JAX) / {best['neuraloperator']['device']} (torch); host {machine}"
    summary = {
        "machine": machine,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "problem": args.problem,
        "config": {**common, "modes_kept": modes, "neuralop_n_modes": 2 * (modes - 1), "train": n_train,
                   "test": n_test, "nx": nx},
        "ours": best["ours"], "neuraloperator": best["neuraloperator"],
        "throughput_ratio": best["ours"]["samples_per_s"] / best["neuraloperator"]["samples_per_s"],
        "wall_time_ratio": best["neuraloperator"]["wall_time_s"] / best["ours"]["wall_time_s"],
        "error_ratio": best["ours"]["rel_l2"] / best["neuraloperator"]["rel_l2"],
    }
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print(f"{args.problem}; machine: {summary['machine']}")
        print(f"{'':24}{'samples/s':>12}{'wall s':>10}{'test rel L2':>14}{'params':>10}")
        for k in ("ours", "neuraloperator"):
            r = summary[k]
            print(f"{r['name']:24}{r['samples_per_s']:>12.1f}{r['wall_time_s']:>10.1f}{r['rel_l2']:>14.3e}"
                  f"{r['n_params']:>10}")
        print(f"throughput ratio (ours / neuraloperator): {summary['throughput_ratio']:.2f}x; "
              f"wall-time ratio: {summary['wall_time_ratio']:.2f}x; error ratio: {summary['error_ratio']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
