"""Mixed precision: the same GPT training loop in FP32 and under ``torch.autocast``.

CPU: bf16 autocast (no scaler needed: bf16 has FP32's exponent range).
CUDA: fp16 autocast with ``torch.amp.GradScaler("cuda")`` (or bf16 if asked).

Peak memory (say which, since it differs by device):

* CUDA: the caching allocator's peak (``torch.cuda.max_memory_allocated`` after
  ``reset_peak_memory_stats``), minus what was allocated before the step.
* CPU: the profiler's memory events (``torch.profiler.profile(profile_memory=True)``):
  the running sum of every CPU allocation and free during one training step, in time
  order; its maximum is the step's peak *extra* memory (activations, gradients,
  temporaries, autocast's low-precision weight copies). Parameters and optimizer state
  allocated before the step are not included (they are reported separately as
  ``state_bytes``). Process RSS is not used: it is a lifetime high-water mark that the
  allocator rarely returns, so it cannot separate two runs in one process.

All variants start from the same initial weights and see the same batches; their
steps run interleaved (one step of each in turn) so that a change in the shared
machine's load affects them alike.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import torch
from tqdm.auto import tqdm

from efficiency.data import get_batch
from efficiency.gpt import GPT, GPTConfig
from efficiency.train import dtype_name, make_train_step, parse_dtype, resolve_device, seeded
from plumbing.files import save_figure
from plumbing.tables import format_table

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["AmpResult", "compare_amp", "peak_step_memory", "format_amp", "plot_amp", "MEMORY_MEASURE"]

MEMORY_MEASURE = {
    "cpu": "profiler memory events: peak of the running sum of CPU allocations during one step",
    "cuda": "CUDA caching allocator: max_memory_allocated during one step minus allocated before it",
}


def peak_step_memory(fn: Callable[[], object], device: torch.device) -> int:
    """Peak extra bytes allocated while ``fn()`` runs (see the module docstring)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device) - base)
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = [e for e in prof.profiler.kineto_results.events()
              if e.name() == "[memory]" and e.device_type() == torch.autograd.DeviceType.CPU]
    events.sort(key=lambda e: e.start_ns())
    running = low = peak = 0  # the largest rise of the running sum: frees of blocks made before
    for e in events:           # the step (last step's gradients) come first and must not hide it
        running += e.nbytes()
        low = min(low, running)
        peak = max(peak, running - low)
    return int(peak)


@dataclass
class AmpResult:
    dtype: str
    device: str
    step_time_s: float            # median over the timed steps
    step_time_p95_s: float
    peak_step_bytes: int
    state_bytes: int              # parameters + AdamW moments, allocated before the step
    losses: list[float] = field(default_factory=list)
    memory_measure: str = ""

    @property
    def final_loss(self) -> float:
        tail = self.losses[-5:]
        return sum(tail) / len(tail)

    def to_dict(self) -> dict:
        return {**asdict(self), "final_loss": self.final_loss}


def compare_amp(config: GPTConfig, tokens: torch.Tensor, *, dtypes: tuple[str, ...] = ("fp32", "bf16"),
                steps: int = 20, batch_size: int = 8, seq_len: int | None = None, lr: float = 1e-3,
                device: str | torch.device = "cpu", seed: int = 0, gradient_checkpointing: bool = False,
                progress: bool = True, init_state: dict | None = None) -> list[AmpResult]:
    """Train one model per dtype side by side; return step times, peak memory, loss curves.

    All models start from ``init_state`` (a GPT state dict, e.g. a checkpoint's) if given,
    else from a fresh initialisation with ``seed``.

    Step 1 (after the warm-up step 0, which also allocates the optimizer state) is run
    under the memory measurement and excluded from the timings (on the CPU, step 2 as well
    when the profiler recorded no memory events in step 1); the remaining steps are timed.
    """
    dev = resolve_device(device)
    seq_len = config.context if seq_len is None else seq_len
    if not 1 <= seq_len <= config.context:
        raise ValueError(f"sequence length {seq_len} must be in [1, context={config.context}]")
    if steps < 4:
        raise ValueError(f"steps must be >= 4 (warm-up, memory, timed steps), got {steps}")
    amp = [parse_dtype(d) for d in dtypes]
    if dev.type == "cpu" and torch.float16 in amp:
        pass  # allowed: CPU autocast supports fp16, with a GradScaler("cpu")
    with seeded(seed):
        base = GPT(config, gradient_checkpointing=gradient_checkpointing)
    if init_state is not None:
        base.load_state_dict(init_state)
    gen = torch.Generator().manual_seed(seed + 1)
    data = [get_batch(tokens, batch_size, seq_len, gen, dev) for _ in range(steps)]
    runs = []
    for a in amp:
        model = GPT(config, gradient_checkpointing=gradient_checkpointing).to(dev)
        model.load_state_dict(base.state_dict())
        runs.append(make_train_step(model, lr=lr, device=dev, amp_dtype=a, steps=steps))
    losses: list[list[torch.Tensor]] = [[] for _ in runs]
    times: list[list[float]] = [[] for _ in runs]
    peaks = [0] * len(runs)
    for i in tqdm(range(steps), desc="amp", disable=not progress, leave=False):
        x, y = data[i]
        for r, step in enumerate(runs):
            if peaks[r] == 0 and (i == 1 or (i == 2 and dev.type == "cpu")):
                # the profiler sometimes records no memory events in its first session of a
                # process: measure the next step then (it is not timed)
                out: list[torch.Tensor] = []
                peaks[r] = peak_step_memory(lambda s=step, o=out, x=x, y=y: o.append(s(x, y)), dev)
                losses[r].append(out[0])
                continue
            t0 = time.perf_counter()
            losses[r].append(step(x, y))
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            if i >= 2:
                times[r].append(time.perf_counter() - t0)
    results = []
    for r, (a, step) in enumerate(zip(amp, runs, strict=True)):
        state = sum(p.numel() * p.element_size() for p in step.model.parameters())
        state += sum(t.numel() * t.element_size() for s in step.optimizer.state.values()
                     for t in s.values() if isinstance(t, torch.Tensor))
        ts = sorted(times[r])
        results.append(AmpResult(dtype=dtype_name(a), device=str(dev), step_time_s=statistics.median(ts),
                                 step_time_p95_s=ts[min(len(ts) - 1, int(0.95 * len(ts)))],
                                 peak_step_bytes=peaks[r], state_bytes=state,
                                 losses=torch.stack(losses[r]).float().cpu().tolist(),
                                 memory_measure=MEMORY_MEASURE["cuda" if dev.type == "cuda" else "cpu"]))
    return results


def format_amp(results: list[AmpResult]) -> str:
    """A table: step time and peak step memory of each dtype, and their ratios to the first."""
    ref = results[0]
    rows = []
    for r in results:
        dl = sum(abs(a - b) for a, b in zip(r.losses, ref.losses, strict=True)) / len(r.losses)
        rows.append({"dtype": r.dtype, "step ms": 1e3 * r.step_time_s, f"x {ref.dtype}": r.step_time_s / ref.step_time_s,
                     "peak MiB": r.peak_step_bytes / 2**20,
                     f"peak x {ref.dtype}": r.peak_step_bytes / max(ref.peak_step_bytes, 1),
                     "state MiB": r.state_bytes / 2**20, "final loss": f"{r.final_loss:.4f}", "mean|dloss|": f"{dl:.4f}"})
    return format_table(rows, list(rows[0])) + f"\npeak memory: {ref.memory_measure}"


def plot_amp(results: list[AmpResult], path: str | os.PathLike[str] | None = None) -> Figure:
    """Loss curves side by side (left) and the per-step loss difference to the first dtype (right);
    written to ``path`` (.png, .pdf or .svg) when given."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.6), layout="tight")
    a, b = fig.subplots(1, 2)
    for r in results:
        a.plot(range(1, len(r.losses) + 1), r.losses, label=f"{r.dtype} ({1e3 * r.step_time_s:.0f} ms/step)")
        b.plot(range(1, len(r.losses) + 1), [x - y for x, y in zip(r.losses, results[0].losses, strict=True)],
               label=r.dtype)
    a.set(xlabel="step", ylabel="training loss (nats/byte)", title="loss curves")
    b.set(xlabel="step", ylabel=f"loss - {results[0].dtype} loss", title="difference")
    a.legend()
    b.legend()
    if path is not None:
        save_figure(fig, path)
    return fig
