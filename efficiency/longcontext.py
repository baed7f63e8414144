"""Long-context evaluation: passkey retrieval, latency and memory against context length.

Passkey retrieval (after Mohtashami & Jaggi 2023, "Landmark Attention", Sec. 4.2): a
number is hidden in repetitive filler text at a chosen depth and the model is asked for
it at the end::

    <filler> The pass key is 30917. Remember it. <filler> What is the pass key? The pass key is 30917
    |<--- depth * filler --->|                                                                |answer|

`length` counts the prompt's byte tokens (everything before the answer). A small GPT is
trained here on lengths up to `train_context` (CPU minutes); its learned position table
holds `context` >= train_context rows, so lengths past `train_context` use positions
it never saw in training, which shows how retrieval degrades beyond the trained context.
The passkey's digits are all different, which keeps the copy unambiguous for a small
model (an induction head that looks up "the digit after my previous digit").

`run_longcontext(cfg)` trains (or loads) the model, measures accuracy on a (length x
depth) grid, prefill/decode latency and memory against length, fits the latency growth
exponent (t ~ length^p) and writes a heatmap and plots.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from efficiency.data import ByteTokenizer
from efficiency.generate import SamplingParams, generate
from efficiency.gpt import GPT, GPTConfig
from efficiency.train import save_checkpoint, seeded
from plumbing.files import atomic_write_json, save_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "LongContextConfig",
    "PasskeyTask",
    "evaluate_passkey",
    "fit_power_law",
    "measure_scaling",
    "plot_heatmap",
    "plot_latency_memory",
    "plot_results",
    "run_longcontext",
    "train_passkey_model",
]

FILLER = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. "
KEY_TEMPLATE = "The pass key is {key}. Remember it. "
QUESTION = "What is the pass key? The pass key is "
N_DIGITS = 5


@dataclass(frozen=True)
class PasskeyTask:
    """Builds passkey prompts; all lengths count byte tokens of the prompt (answer excluded)."""

    n_digits: int = N_DIGITS

    @property
    def overhead(self) -> int:
        """Tokens that are not filler: the key sentence and the question."""
        return len(KEY_TEMPLATE.format(key="0" * self.n_digits)) + len(QUESTION)

    @property
    def min_length(self) -> int:
        return self.overhead + 1

    def sample(self, length: int, depth: float, gen: torch.Generator) -> tuple[str, str]:
        """One (prompt, answer) pair: prompt has exactly `length` characters.

        depth in [0, 1]: the fraction of the filler that comes before the key sentence.
        """
        if length < self.min_length:
            raise ValueError(f"length must be >= {self.min_length} (key + question), got {length}")
        if not 0.0 <= depth <= 1.0:
            raise ValueError(f"depth must be in [0, 1], got {depth}")
        digits = torch.randperm(10, generator=gen)[: self.n_digits].tolist()
        key = "".join(str(d) for d in digits)
        n_fill = length - self.overhead
        offset = int(torch.randint(0, len(FILLER), (), generator=gen))
        reps = (offset + n_fill) // len(FILLER) + 1
        filler = (FILLER * reps)[offset : offset + n_fill]
        n_before = round(depth * n_fill)
        prompt = filler[:n_before] + KEY_TEMPLATE.format(key=key) + filler[n_before:] + QUESTION
        return prompt, key

    def batch(self, length: int, depths: list[float], gen: torch.Generator) -> tuple[torch.Tensor, list[str]]:
        """(len(depths), length + n_digits) int64 tokens (prompt then answer) and the keys."""
        tok = ByteTokenizer()
        rows, keys = [], []
        for d in depths:
            prompt, key = self.sample(length, d, gen)
            rows.append(tok.encode(prompt + key))
            keys.append(key)
        return torch.tensor(rows, dtype=torch.long), keys


@dataclass(frozen=True)
class LongContextConfig:
    """One long-context experiment.

    model: the GPT's shape; its `context` (learned positions) bounds the longest length.
    train_context: longest prompt+answer seen in training (lengths drawn uniformly from
    [task.min_length, train_context - n_digits]). steps, batch_size, lr: training.
    lengths, depths: the evaluation grid; trials: prompts per grid cell.
    latency_lengths: lengths for the latency/memory sweep; repeats: timings per length.
    """

    model: GPTConfig = GPTConfig(context=640, n_layer=2, n_head=4, d_model=64)
    train_context: int = 160
    steps: int = 2000
    batch_size: int = 16
    lr: float = 3e-3
    seed: int = 0
    lengths: tuple[int, ...] = (96, 128, 155, 176, 208, 256, 384, 635)
    depths: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    trials: int = 20
    latency_lengths: tuple[int, ...] = (80, 160, 320, 480, 640)
    repeats: int = 5
    task: PasskeyTask = field(default_factory=PasskeyTask)

    def __post_init__(self) -> None:
        t = self.task
        if not t.min_length + t.n_digits <= self.train_context <= self.model.context:
            raise ValueError(f"train_context must be in [{t.min_length + t.n_digits}, model context "
                             f"{self.model.context}], got {self.train_context}")
        for name in ("steps", "batch_size", "trials", "repeats"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        for n in self.lengths:
            if not t.min_length <= n <= self.model.context - t.n_digits:
                raise ValueError(f"evaluation length {n} must be in [{t.min_length}, "
                                 f"{self.model.context - t.n_digits}] (model context minus the answer)")
        for n in self.latency_lengths:
            if not 1 <= n <= self.model.context:
                raise ValueError(f"latency length {n} must be in [1, {self.model.context}]")
        for d in self.depths:
            if not 0.0 <= d <= 1.0:
                raise ValueError(f"depth must be in [0, 1], got {d}")


def train_passkey_model(cfg: LongContextConfig, progress: bool = True,
                        log: Callable[[int, float, float], None] | None = None) -> tuple[GPT, dict]:
    """Train cfg.model on passkey prompts of lengths up to cfg.train_context.

    Loss: next-token cross entropy over the whole sequence plus the cross entropy of the
    answer digits alone (so the sparse retrieval signal is not drowned by the easy filler).
    Returns the model (eval mode) and a summary with the loss history.
    """
    from tqdm.auto import tqdm

    # parameter init (and dropout, if any) draw from torch's global generator: seed it for this
    # run only (the caller's generator state is restored); prompts and lengths use `gen`
    with seeded(cfg.seed):
        model = GPT(cfg.model)
        gen = torch.Generator().manual_seed(cfg.seed + 1)
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01, betas=(0.9, 0.95))
        warm = max(1, cfg.steps // 20)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, cfg.steps) / cfg.steps)))
        task, n = cfg.task, cfg.task.n_digits
        hist, t0 = [], time.perf_counter()
        model.train()
        bar = tqdm(range(cfg.steps), desc="passkey training", disable=not progress, leave=False)
        for step in bar:
            length = int(torch.randint(task.min_length, cfg.train_context - n + 1, (), generator=gen))
            depths = torch.rand(cfg.batch_size, generator=gen).tolist()
            seq, _ = task.batch(length, depths, gen)
            x, y = seq[:, :-1], seq[:, 1:]
            logits = model(x)
            lm = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
            ans = F.cross_entropy(logits[:, -n:].reshape(-1, logits.size(-1)), y[:, -n:].reshape(-1))
            loss = lm + ans
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            if step % 50 == 0 or step == cfg.steps - 1:
                acc = (logits[:, -n:].argmax(-1) == y[:, -n:]).all(-1).float().mean().item()
                hist.append({"step": step, "loss": loss.item(), "answer_loss": ans.item(), "batch_accuracy": acc})
                bar.set_postfix(loss=f"{loss.item():.3f}", acc=f"{acc:.2f}")
                if log is not None:
                    log(step, loss.item(), acc)
        model.eval()
    return model, {"train_time_s": time.perf_counter() - t0, "history": hist}


@torch.inference_mode()
def evaluate_passkey(model: GPT, cfg: LongContextConfig, progress: bool = True) -> np.ndarray:
    """Exact-match retrieval accuracy, (len(cfg.lengths), len(cfg.depths)).

    Each cell decodes cfg.trials prompts greedily in one batch (KV-cached engine);
    the same seed gives the same prompts.
    """
    from tqdm.auto import tqdm

    tok = ByteTokenizer()
    task, n = cfg.task, cfg.task.n_digits
    gen = torch.Generator().manual_seed(cfg.seed + 12345)
    acc = np.zeros((len(cfg.lengths), len(cfg.depths)))
    cells = [(i, j) for i in range(len(cfg.lengths)) for j in range(len(cfg.depths))]
    for i, j in tqdm(cells, desc="passkey eval", disable=not progress, leave=False):
        prompts, keys = [], []
        for _ in range(cfg.trials):
            p, k = task.sample(cfg.lengths[i], cfg.depths[j], gen)
            prompts.append(tok.encode(p))
            keys.append(k)
        out = generate(model, prompts, SamplingParams(max_new_tokens=n, temperature=0.0))
        acc[i, j] = np.mean([tok.decode(r.tokens) == k for r, k in zip(out, keys, strict=True)])
    return acc


def _peak_rss_reset() -> bool:
    try:  # Linux: writing 5 resets VmHWM (the peak resident set) to the current RSS
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_bytes() -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


_MEMORY_PROBE = """
import json, sys, torch
from efficiency.gpt import GPT, GPTConfig
from efficiency.longcontext import _peak_rss_bytes, _peak_rss_reset
torch.set_num_threads(1)
cfg, L = GPTConfig.from_dict(json.loads(sys.argv[1])), int(sys.argv[2])
model = GPT(cfg).eval()  # the weights' values do not change how much memory a forward takes
with torch.inference_mode():
    model(torch.zeros(1, 8, dtype=torch.long))  # warm-up: kernels, allocator pools
    ok = _peak_rss_reset()  # the peak is now the current RSS
    base = _peak_rss_bytes()
    cache = model.new_cache(1, L)
    model(torch.zeros(1, L, dtype=torch.long), cache=cache)
    peak = _peak_rss_bytes()
print(json.dumps({"growth": (peak - base) if ok and peak and base else None}))
"""


def prefill_peak_memory(config: GPTConfig, length: int, timeout: float = 300.0) -> int | None:
    """Peak RSS growth (bytes) of one batch-1 prefill of `length` tokens into a KV cache.

    Measured in a fresh Python process (Linux /proc; None elsewhere, or when the probe
    fails or outlives `timeout`): in a long-running process, freed memory stays resident
    and hides the growth.
    """
    import subprocess
    import sys

    try:
        out = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, json.dumps(config.to_dict()), str(length)],
                             capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None  # a memory number is not worth failing the run for
    if out.returncode != 0:
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])["growth"]


@torch.inference_mode()
def measure_scaling(model: GPT, lengths: tuple[int, ...], repeats: int = 5, progress: bool = True,
                    memory: bool = True) -> list[dict]:
    """Latency and memory of one prompt against its length (batch 1).

    Per length: prefill time (median of `repeats`), one cached decode step's time
    (median), both as wall-clock and as process CPU time (with one thread the CPU time
    counts the work, not the time other jobs held the cores), the KV cache's bytes, and (memory=True) the peak RSS growth of the prefill,
    measured in a fresh process by `prefill_peak_memory`.
    """
    from tqdm.auto import tqdm

    gen = torch.Generator().manual_seed(0)
    rows = []
    for L in tqdm(lengths, desc="latency sweep", disable=not progress, leave=False):
        idx = torch.randint(0, model.config.vocab_size, (1, L), generator=gen)
        pre, dec, pre_cpu, dec_cpu = [], [], [], []
        for _ in range(repeats):
            cache = model.new_cache(1, L)
            t0, c0 = time.perf_counter(), time.process_time()
            model(idx[:, :-1], cache=cache)
            t1, c1 = time.perf_counter(), time.process_time()
            model(idx[:, -1:], cache=cache)
            t2, c2 = time.perf_counter(), time.process_time()
            pre.append(t1 - t0)
            dec.append(t2 - t1)
            pre_cpu.append(c1 - c0)
            dec_cpu.append(c2 - c1)
        rows.append({
            "length": L,
            "prefill_s": float(np.median(pre)),
            "decode_step_s": float(np.median(dec)),
            "prefill_cpu_s": float(np.median(pre_cpu)),
            "decode_step_cpu_s": float(np.median(dec_cpu)),
            "kv_cache_bytes": cache.nbytes(),
            "prefill_peak_rss_growth_bytes": prefill_peak_memory(model.config, L) if memory else None,
        })
    return rows


def fit_power_law(x, y) -> tuple[float, float]:
    """Least-squares fit of log y = log c + p log x; returns (p, c)."""
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    if lx.size < 2:
        raise ValueError("need at least two points to fit a power law")
    p, logc = np.polyfit(lx, ly, 1)
    return float(p), float(np.exp(logc))


def plot_heatmap(result: dict, path: str | os.PathLike[str] | None = None) -> Figure:
    """Retrieval accuracy over (prompt length x depth), the lengths past the trained context
    marked; written to ``path`` (.png, .pdf or .svg) when given."""
    from matplotlib.figure import Figure

    acc = np.asarray(result["accuracy"])
    lengths, depths = result["config"]["lengths"], result["config"]["depths"]
    fig = Figure(figsize=(6, 4.5), layout="tight")
    ax = fig.subplots()
    im = ax.imshow(acc, vmin=0, vmax=1, cmap="viridis", aspect="auto", origin="lower")
    ax.set_xticks(range(len(depths)), [f"{d:g}" for d in depths])
    ax.set_yticks(range(len(lengths)), [str(n) for n in lengths])
    for i in range(acc.shape[0]):
        for j in range(acc.shape[1]):
            ax.text(j, i, f"{acc[i, j]:.2f}", ha="center", va="center",
                    color="white" if acc[i, j] < 0.6 else "black", fontsize=8)
    tc = result["config"]["train_context"] - result["config"]["task"]["n_digits"]
    beyond = [i for i, n in enumerate(lengths) if n > tc]
    if beyond:
        ax.axhline(beyond[0] - 0.5, color="red", lw=1.5, ls="--")
        ax.text(len(depths) - 0.5, beyond[0] - 0.45, "beyond trained context", color="red",
                ha="right", va="bottom", fontsize=8)
    ax.set_xlabel("depth of the passkey (0 = start, 1 = end)")
    ax.set_ylabel("prompt length (tokens)")
    ax.set_title("passkey retrieval accuracy")
    fig.colorbar(im, ax=ax)
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_latency_memory(result: dict, path: str | os.PathLike[str] | None = None) -> Figure:
    """Prefill and decode-step latency (left) and KV-cache and prefill memory (right) against
    context length, log-log; written to ``path`` (.png, .pdf or .svg) when given."""
    from matplotlib.figure import Figure

    sc = result["scaling"]
    L = np.array([r["length"] for r in sc])
    fig = Figure(figsize=(10, 4), layout="tight")
    axes = fig.subplots(1, 2)
    ax = axes[0]
    ax.loglog(L, [r["prefill_s"] * 1e3 for r in sc], "o-", label=f"prefill, wall (p = {result['prefill_exponent']:.2f})")
    ax.loglog(L, [r["decode_step_s"] * 1e3 for r in sc], "s-",
              label=f"one cached decode step, wall (p = {result['decode_exponent']:.2f})")
    if result.get("prefill_exponent_cpu_time") is not None:
        ax.loglog(L, [max(r["prefill_cpu_s"], 1e-6) * 1e3 for r in sc], "o--",
                  label=f"prefill, CPU time (p = {result['prefill_exponent_cpu_time']:.2f})")
        ax.loglog(L, [max(r["decode_step_cpu_s"], 1e-6) * 1e3 for r in sc], "s--",
                  label=f"decode step, CPU time (p = {result['decode_exponent_cpu_time']:.2f})")
    ax.set_xlabel("context length (tokens)")
    ax.set_ylabel("latency (ms)")
    ax.set_title("latency vs context length, batch 1")
    ax.legend(fontsize=7)
    ax = axes[1]
    ax.loglog(L, [r["kv_cache_bytes"] / 2**20 for r in sc], "o-", label="KV cache")
    mem = [(n, r["prefill_peak_rss_growth_bytes"]) for n, r in zip(L, sc, strict=True)
           if r["prefill_peak_rss_growth_bytes"]]
    if mem:
        ax.loglog([n for n, _ in mem], [m / 2**20 for _, m in mem], "s-", label="peak RSS growth of the prefill")
    ax.set_xlabel("context length (tokens)")
    ax.set_ylabel("MiB")
    ax.set_title("memory vs context length")
    ax.legend()
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_results(result: dict, out_dir: str | os.PathLike[str]) -> list[Path]:
    """passkey_heatmap.png (``plot_heatmap``) and latency_memory_vs_length.png
    (``plot_latency_memory``) in ``out_dir``; returns their paths."""
    out = Path(out_dir)
    paths = [out / "passkey_heatmap.png", out / "latency_memory_vs_length.png"]
    plot_heatmap(result, paths[0])
    plot_latency_memory(result, paths[1])
    return paths


def run_longcontext(cfg: LongContextConfig, out_dir: str | Path | None = None, *,
                    model: GPT | None = None, progress: bool = True, memory: bool = True) -> dict:
    """Train (unless `model` is given), evaluate, time and plot; returns the results.

    Writes results.json, the PNGs and (when it trained one) the model checkpoint
    (out_dir/model, see efficiency.train.save_checkpoint) under out_dir when given.
    """
    summary = {}
    trained = model is None
    if trained:
        model, summary = train_passkey_model(cfg, progress=progress)
    elif model.config.context < max(cfg.lengths) + cfg.task.n_digits:
        raise ValueError(f"the model's context {model.config.context} is shorter than the longest length")
    t0 = time.perf_counter()
    acc = evaluate_passkey(model, cfg, progress=progress)
    eval_s = time.perf_counter() - t0
    scaling = measure_scaling(model, cfg.latency_lengths, cfg.repeats, progress=progress, memory=memory)
    L = [r["length"] for r in scaling]
    p_pre, _ = fit_power_law(L, [r["prefill_s"] for r in scaling])
    p_dec, _ = fit_power_law(L, [r["decode_step_s"] for r in scaling])
    positive = [r for r in scaling if r["prefill_cpu_s"] > 0 and r["decode_step_cpu_s"] > 0]
    p_pre_cpu = fit_power_law([r["length"] for r in positive], [r["prefill_cpu_s"] for r in positive])[0] \
        if len(positive) >= 2 else None
    p_dec_cpu = fit_power_law([r["length"] for r in positive], [r["decode_step_cpu_s"] for r in positive])[0] \
        if len(positive) >= 2 else None
    conf = asdict(replace(cfg))
    tc = cfg.train_context - cfg.task.n_digits
    within = [i for i, n in enumerate(cfg.lengths) if n <= tc]
    beyond = [i for i, n in enumerate(cfg.lengths) if n > tc]
    result = {
        "config": conf,
        "accuracy": acc.tolist(),
        "accuracy_by_length": dict(zip([str(n) for n in cfg.lengths], acc.mean(1).tolist(), strict=True)),
        "accuracy_by_depth": dict(zip([f"{d:g}" for d in cfg.depths], acc.mean(0).tolist(), strict=True)),
        "accuracy_within_trained": float(acc[within].mean()) if within else None,
        "accuracy_beyond_trained": float(acc[beyond].mean()) if beyond else None,
        "scaling": scaling,
        "prefill_exponent": p_pre,
        "decode_exponent": p_dec,
        "prefill_exponent_cpu_time": p_pre_cpu,
        "decode_exponent_cpu_time": p_dec_cpu,
        "eval_time_s": eval_s,
        "n_parameters": model.num_parameters(non_embedding=False),
        **summary,
    }
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        result["plots"] = [str(p) for p in plot_results(result, out)]
        if trained:
            save_checkpoint(model, out / "model", extra={"longcontext": conf})
            result["model_dir"] = str(out / "model")
        atomic_write_json(out / "results.json", result)
    return result
