"""Profile a few GPT training steps with ``torch.profiler`` and summarise them.

The loop runs under ``torch.profiler.profile`` with a schedule (``wait`` steps
ignored, ``warmup`` steps traced but discarded, ``active`` steps recorded) and
``record_function`` labels around each phase: ``data``, ``forward``, ``backward``,
``optimizer`` and ``log_loss`` (the ``.item()`` a typical loop does to print its loss).

The report holds:

* the slowest operators by self time (time inside the operator, children excluded);
* memory by operator (self CPU / CUDA memory allocated, ``profile_memory=True``);
* synchronization overhead: how many host-device syncs happened and how long they
  blocked. Counted: ``aten::item`` / ``aten::_local_scalar_dense`` (``.item()``,
  ``float(t)``), copies to the CPU (``aten::_to_copy`` / ``aten::copy_`` whose output
  is on the CPU while the input is not: ``.cpu()``, ``.tolist()``), and the CUDA
  runtime's ``cudaDeviceSynchronize`` / ``cudaStreamSynchronize`` /
  ``cudaMemcpy*`` calls. On a CPU-only run nothing is asynchronous: ``.item()`` is
  counted but blocks only for its own few microseconds.
* a Chrome trace file (open in chrome://tracing or https://ui.perfetto.dev).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, record_function, schedule

from efficiency.data import get_batch
from efficiency.gpt import GPT, GPTConfig
from efficiency.train import make_train_step, resolve_device, seeded
from plumbing.files import atomic_path, atomic_write_json, atomic_write_text

__all__ = ["ProfileReport", "profile_training", "format_profile", "write_profile_report"]

SYNC_OPS = ("aten::item", "aten::_local_scalar_dense")
CUDA_SYNC_RUNTIME = ("cudaDeviceSynchronize", "cudaStreamSynchronize", "cudaEventSynchronize", "cudaMemcpy")


@dataclass
class ProfileReport:
    device: str
    config: dict
    batch_size: int
    seq_len: int
    wait: int
    warmup: int
    active: int
    step_time_ms: float                      # mean wall time of an active step (profiler overhead included)
    top_ops: list[dict] = field(default_factory=list)
    memory_ops: list[dict] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)   # record_function label -> total ms
    sync: dict = field(default_factory=dict)
    trace_path: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def profile_training(config: GPTConfig, tokens: torch.Tensor, *, batch_size: int = 8, seq_len: int | None = None,
                     wait: int = 1, warmup: int = 1, active: int = 3, device: str | torch.device = "cpu",
                     seed: int = 0, trace_path: str | Path | None = None, top: int = 10,
                     init_state: dict | None = None) -> ProfileReport:
    """Profile ``wait + warmup + active`` training steps of a GPT (fresh, or from the state
    dict ``init_state``); see the module docstring."""
    dev = resolve_device(device)
    seq_len = config.context if seq_len is None else seq_len
    if not 1 <= seq_len <= config.context:
        raise ValueError(f"sequence length {seq_len} must be in [1, context={config.context}]")
    if active < 1 or wait < 0 or warmup < 0:
        raise ValueError(f"need active >= 1 and wait, warmup >= 0, got {wait}, {warmup}, {active}")
    with seeded(seed):
        model = GPT(config)
    if init_state is not None:
        model.load_state_dict(init_state)
    model = model.to(dev)
    step = make_train_step(model, device=dev)
    gen = torch.Generator().manual_seed(seed + 1)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
    trace_path = Path(trace_path) if trace_path is not None else None

    def on_ready(prof):
        if trace_path is not None:
            with atomic_path(trace_path) as tmp:
                prof.export_chrome_trace(str(tmp))

    sched = schedule(wait=wait, warmup=warmup, active=active, repeat=1)
    step_times = []
    with profile(activities=activities, schedule=sched, on_trace_ready=on_ready, profile_memory=True,
                 record_shapes=True) as prof:
        for i in range(wait + warmup + active):
            w0 = time.perf_counter()
            with record_function("data"):
                x, y = get_batch(tokens, batch_size, seq_len, gen, dev)
            model.train()
            step.optimizer.zero_grad(set_to_none=True)
            with record_function("forward"):
                _, loss = model(x, targets=y)
            with record_function("backward"):
                loss.backward()
            with record_function("optimizer"):
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                step.optimizer.step()
            with record_function("log_loss"):
                loss.item()                           # the per-step host sync many loops have
            if i >= wait + warmup:
                step_times.append(time.perf_counter() - w0)
            prof.step()

    events = prof.key_averages()
    use_cuda = dev.type == "cuda"

    def self_us(e) -> float:
        return (e.self_device_time_total if use_cuda and e.self_device_time_total > 0 else 0.0) + e.self_cpu_time_total

    labels = {"data", "forward", "backward", "optimizer", "log_loss"}
    ops = [e for e in events if e.key not in labels and not e.key.startswith("ProfilerStep")]
    total_self = sum(self_us(e) for e in ops) or 1.0
    top_ops = [{"op": e.key, "calls": e.count, "self_ms": self_us(e) / 1e3,
                "self_share": self_us(e) / total_self,
                "self_cpu_ms": e.self_cpu_time_total / 1e3,
                "self_device_ms": (e.self_device_time_total / 1e3) if use_cuda else 0.0}
               for e in sorted(ops, key=self_us, reverse=True)[:top]]
    mem_key = "self_device_memory_usage" if use_cuda else "self_cpu_memory_usage"
    mem_ops = sorted(ops, key=lambda e: getattr(e, mem_key), reverse=True)[:top]
    memory_ops = [{"op": e.key, "calls": e.count, "self_alloc_mib": getattr(e, mem_key) / 2**20,
                   "cpu_alloc_mib": e.self_cpu_memory_usage / 2**20} for e in mem_ops if getattr(e, mem_key) > 0]
    phases = {e.key: e.cpu_time_total / 1e3 for e in events if e.key in labels}

    n_item = sum(e.count for e in events if e.key == "aten::item")
    item_ms = sum(e.cpu_time_total for e in events if e.key == "aten::item") / 1e3
    to_cpu = to_cpu_ms = 0
    if use_cuda:
        d2h = [e for e in events if e.key.startswith("Memcpy DtoH")]
        to_cpu = sum(e.count for e in d2h)
        to_cpu_ms = sum(e.device_time_total for e in d2h) / 1e3
    rt = [e for e in events if e.key in CUDA_SYNC_RUNTIME]
    rt_syncs = sum(e.count for e in rt)
    rt_ms = sum(e.cpu_time_total for e in rt) / 1e3
    by_phase: dict[str, int] = {}
    for ev in prof.events():
        if ev.name == "aten::item":
            parent = ev.cpu_parent
            while parent is not None and parent.name not in labels:
                parent = parent.cpu_parent
            key = parent.name if parent is not None else "(unlabelled)"
            by_phase[key] = by_phase.get(key, 0) + 1
    sync = {"item_calls": n_item, "item_calls_by_phase": by_phase, "item_blocked_ms": item_ms, "device_to_host_copies": to_cpu,
            "device_to_host_ms": to_cpu_ms, "runtime_sync_calls": rt_syncs, "runtime_sync_ms": rt_ms,
            "active_steps": active,
            "note": "CPU run: nothing is asynchronous, so .item() blocks only for its own cost" if not use_cuda
            else "CUDA run: .item() waits for every queued kernel; its time includes that wait"}
    return ProfileReport(device=str(dev), config=config.to_dict(), batch_size=batch_size, seq_len=seq_len,
                         wait=wait, warmup=warmup, active=active,
                         step_time_ms=1e3 * sum(step_times) / len(step_times), top_ops=top_ops,
                         memory_ops=memory_ops, phases=phases, sync=sync,
                         trace_path=str(trace_path) if trace_path is not None else None)


def format_profile(r: ProfileReport) -> str:
    lines = [f"# Profile of {r.active} training steps ({r.device}, batch {r.batch_size} x {r.seq_len}, "
             f"schedule wait={r.wait} warmup={r.warmup} active={r.active})",
             f"mean step {r.step_time_ms:.1f} ms (profiler overhead included)", "",
             "## phases (record_function labels, total over active steps)"]
    lines += [f"  {k:<10} {v:9.2f} ms" for k, v in sorted(r.phases.items(), key=lambda kv: -kv[1])]
    lines += ["", "## slowest operators by self time",
              f"  {'operator':<48} {'calls':>6} {'self ms':>9} {'share':>6}"]
    lines += [f"  {o['op'][:48]:<48} {o['calls']:>6} {o['self_ms']:>9.2f} {100 * o['self_share']:>5.1f}%"
              for o in r.top_ops]
    lines += ["", "## memory by operator (self allocations)", f"  {'operator':<48} {'calls':>6} {'MiB':>9}"]
    lines += [f"  {o['op'][:48]:<48} {o['calls']:>6} {o['self_alloc_mib']:>9.2f}" for o in r.memory_ops]
    s = r.sync
    lines += ["", "## synchronization",
              f"  .item() calls: {s['item_calls']} ({s['item_blocked_ms']:.3f} ms blocked); by phase: "
              + ", ".join(f"{k} {v}" for k, v in s["item_calls_by_phase"].items()),
              f"  device->host copies: {s['device_to_host_copies']} ({s['device_to_host_ms']:.3f} ms)",
              f"  CUDA runtime syncs: {s['runtime_sync_calls']} ({s['runtime_sync_ms']:.3f} ms)",
              f"  {s['note']}"]
    if r.trace_path:
        lines += ["", f"Chrome trace: {r.trace_path}"]
    return "\n".join(lines)


def write_profile_report(r: ProfileReport, out_dir: str | Path) -> dict[str, str]:
    """report.md and report.json in ``out_dir`` (atomic)."""
    out = Path(out_dir)
    md = atomic_write_text(out / "report.md", format_profile(r) + "\n")
    js = atomic_write_json(out / "report.json", r.to_dict())
    return {"report_md": str(md), "report_json": str(js)}
