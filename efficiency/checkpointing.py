"""Gradient checkpointing of transformer blocks: peak memory and step time, with and without.

Each block's forward is wrapped in ``torch.utils.checkpoint.checkpoint(...,
use_reentrant=False)`` (``GPT.gradient_checkpointing = True``): only the block inputs
are kept for the backward pass and the block is recomputed there. Expected: activation
memory falls from O(n_layer * activations per block) to O(n_layer * d_model * T +
one block's activations), at the cost of about one extra forward (~+33 % step time).

Memory is measured as in :mod:`efficiency.amp` (CPU: profiler memory events; CUDA: the
allocator's peak), over one full training step (forward, backward, AdamW update).
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

import torch
from tqdm.auto import tqdm

from efficiency.amp import MEMORY_MEASURE, peak_step_memory
from efficiency.data import get_batch
from efficiency.gpt import GPT, GPTConfig
from efficiency.train import make_train_step, resolve_device, seeded
from plumbing.files import save_figure
from plumbing.tables import format_table

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["CheckpointPoint", "sweep_checkpointing", "format_checkpointing", "plot_checkpointing"]


@dataclass
class CheckpointPoint:
    n_layer: int
    seq_len: int
    peak_bytes_plain: int
    peak_bytes_ckpt: int
    step_time_plain_s: float
    step_time_ckpt_s: float
    loss_plain: float
    loss_ckpt: float

    @property
    def memory_ratio(self) -> float:
        return self.peak_bytes_ckpt / max(self.peak_bytes_plain, 1)

    @property
    def time_ratio(self) -> float:
        return self.step_time_ckpt_s / self.step_time_plain_s

    def to_dict(self) -> dict:
        return {**asdict(self), "memory_ratio": self.memory_ratio, "time_ratio": self.time_ratio}


def sweep_checkpointing(base: GPTConfig, tokens: torch.Tensor, *, depths: tuple[int, ...] = (2, 4),
                        seq_lens: tuple[int, ...] = (64, 128), batch_size: int = 8, steps: int = 3,
                        device: str | torch.device = "cpu", seed: int = 0,
                        progress: bool = True) -> list[CheckpointPoint]:
    """For every (depth, seq_len): one model trained with and without checkpointing from the
    same weights on the same batches. Step 0 warms up, step 1 is measured for memory,
    steps 2..``steps``+1 are timed (interleaved plain / checkpointed)."""
    dev = resolve_device(device)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    for d in depths:
        if d < 1:
            raise ValueError(f"depth must be >= 1, got {d}")
    for t in seq_lens:
        if t < 1:
            raise ValueError(f"sequence length must be >= 1, got {t}")
    points = []
    grid = [(d, t) for d in depths for t in seq_lens]
    for depth, seq_len in tqdm(grid, desc="checkpoint sweep", disable=not progress, leave=False):
        cfg = replace(base, n_layer=depth, context=max(base.context, seq_len), dropout=0.0)
        with seeded(seed):
            ref = GPT(cfg)
        steps_fn = []
        for ckpt in (False, True):
            m = GPT(cfg, gradient_checkpointing=ckpt).to(dev)
            m.load_state_dict(ref.state_dict())
            steps_fn.append(make_train_step(m, device=dev))
        gen = torch.Generator().manual_seed(seed + 1)
        data = [get_batch(tokens, batch_size, seq_len, gen, dev) for _ in range(steps + 2)]
        times: list[list[float]] = [[], []]
        peaks, losses = [0, 0], [0.0, 0.0]
        for i, (x, y) in enumerate(data):
            for k, fn in enumerate(steps_fn):
                if i == 1:
                    out = []
                    peaks[k] = peak_step_memory(lambda f=fn, o=out, x=x, y=y: o.append(f(x, y)), dev)
                    losses[k] = float(out[0])
                    continue
                t0 = time.perf_counter()
                fn(x, y)
                if dev.type == "cuda":
                    torch.cuda.synchronize(dev)
                if i >= 2:
                    times[k].append(time.perf_counter() - t0)
        points.append(CheckpointPoint(n_layer=depth, seq_len=seq_len, peak_bytes_plain=peaks[0],
                                      peak_bytes_ckpt=peaks[1], step_time_plain_s=statistics.median(times[0]),
                                      step_time_ckpt_s=statistics.median(times[1]),
                                      loss_plain=losses[0], loss_ckpt=losses[1]))
    return points


def format_checkpointing(points: list[CheckpointPoint], device: str = "cpu") -> str:
    """A table: peak step memory and step time with and without checkpointing, and their ratios."""
    rows = [{"layers": p.n_layer, "seq": p.seq_len, "peak MiB": p.peak_bytes_plain / 2**20,
             "ckpt MiB": p.peak_bytes_ckpt / 2**20, "mem x": p.memory_ratio, "step ms": 1e3 * p.step_time_plain_s,
             "ckpt ms": 1e3 * p.step_time_ckpt_s, "time x": p.time_ratio} for p in points]
    columns = ["layers", "seq", "peak MiB", "ckpt MiB", "mem x", "step ms", "ckpt ms", "time x"]
    return format_table(rows, columns) + \
        f"\npeak memory: {MEMORY_MEASURE['cuda' if device.startswith('cuda') else 'cpu']}"


def plot_checkpointing(points: list[CheckpointPoint], path: str | os.PathLike[str] | None = None) -> Figure:
    """Peak memory (left) and step time (right) against sequence length, one line per depth;
    written to ``path`` (.png, .pdf or .svg) when given."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.6), layout="tight")
    a, b = fig.subplots(1, 2)
    for depth in sorted({p.n_layer for p in points}):
        ps = sorted((p for p in points if p.n_layer == depth), key=lambda p: p.seq_len)
        t = [p.seq_len for p in ps]
        line, = a.plot(t, [p.peak_bytes_plain / 2**20 for p in ps], "o-", label=f"{depth} layers")
        a.plot(t, [p.peak_bytes_ckpt / 2**20 for p in ps], "s--", color=line.get_color(),
               label=f"{depth} layers, checkpointed")
        b.plot(t, [1e3 * p.step_time_plain_s for p in ps], "o-", color=line.get_color(), label=f"{depth} layers")
        b.plot(t, [1e3 * p.step_time_ckpt_s for p in ps], "s--", color=line.get_color(),
               label=f"{depth} layers, checkpointed")
    a.set(xlabel="sequence length", ylabel="peak step memory (MiB)", title="memory")
    b.set(xlabel="sequence length", ylabel="step time (ms)", title="time")
    a.legend(fontsize=7)
    b.legend(fontsize=7)
    if path is not None:
        save_figure(fig, path)
    return fig
