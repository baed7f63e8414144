"""Training loop for :class:`efficiency.gpt.GPT`, device/dtype parsing and checkpoints.

``make_train_step`` builds one optimisation step (AdamW, optional autocast and
GradScaler, gradient clipping) that the AMP, checkpointing and profiling exercises
reuse; ``train_gpt`` runs it for a number of steps with a warm-up + cosine schedule.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from efficiency.data import get_batch, train_val_split
from efficiency.gpt import GPT, GPTConfig
from plumbing.files import atomic_directory
from plumbing.jsonio import dumps

__all__ = ["TrainResult", "TrainStep", "make_train_step", "train_gpt", "evaluate_loss", "resolve_device",
           "parse_dtype", "dtype_name", "seeded", "save_checkpoint", "load_checkpoint", "CHECKPOINT_FORMAT"]

CHECKPOINT_FORMAT = "efficiency.gpt/1"
_DTYPES = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
           "fp16": torch.float16, "float16": torch.float16, "half": torch.float16}


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/"auto" -> cuda if available else cpu; raises ValueError for a device this
    machine does not have (e.g. "cuda" without a GPU)."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"unknown device {device!r}") from err
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {str(device)!r} is not available (torch.cuda.is_available() is False)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {str(device)!r} is not available ({torch.cuda.device_count()} GPUs)")
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"device {str(device)!r} is not available")
    elif dev.type != "cpu":
        raise ValueError(f"unsupported device {str(device)!r} (use cpu or cuda)")
    return dev


def parse_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    """"fp32"/None -> None (no autocast), "bf16" -> torch.bfloat16, "fp16" -> torch.float16."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return None if dtype in (None, torch.float32) else dtype
    key = str(dtype).lower()
    if key not in _DTYPES:
        raise ValueError(f"unknown dtype {dtype!r} (choose fp32, bf16 or fp16)")
    d = _DTYPES[key]
    return None if d is torch.float32 else d


def dtype_name(dtype: torch.dtype | None) -> str:
    return {None: "fp32", torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, str(dtype))


@dataclass
class TrainStep:
    """One optimisation step; call it with a batch ``(x, y)``, get the loss (a tensor, no sync)."""

    model: GPT
    optimizer: torch.optim.Optimizer
    device: torch.device
    amp_dtype: torch.dtype | None = None
    scaler: torch.amp.GradScaler | None = None
    grad_clip: float | None = 1.0
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            _, loss = self.model(x, targets=y)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
            if self.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            if self.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        return loss.detach()


@contextlib.contextmanager
def seeded(seed: int, device: torch.device | str = "cpu"):
    """Seed torch's global generator inside the block and restore the previous state after,
    so parameter initialisation is reproducible without changing the caller's RNG."""
    dev = torch.device(device)
    devices = [dev.index if dev.index is not None else torch.cuda.current_device()] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def _lr_lambda(steps: int, warmup: int) -> Callable[[int], float]:
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, steps - warmup))
        return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress))  # cosine down to 10 %
    return f


def make_train_step(model: GPT, *, lr: float = 1e-3, weight_decay: float = 0.1, device: torch.device | str = "cpu",
                    amp_dtype: str | torch.dtype | None = None, grad_clip: float | None = 1.0,
                    steps: int | None = None, warmup: int | None = None) -> TrainStep:
    """AdamW (decay on matrices only), autocast with ``amp_dtype``; fp16 gets a GradScaler.
    With ``steps``, a linear warm-up (default 10 % of steps, at most 100) + cosine schedule."""
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr}")
    dev = resolve_device(device)
    amp = parse_dtype(amp_dtype)
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.95))
    scaler = torch.amp.GradScaler(dev.type) if amp is torch.float16 else None
    sched = None
    if steps is not None:
        w = min(100, max(1, steps // 10)) if warmup is None else max(1, warmup)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(steps, w))
    return TrainStep(model, opt, dev, amp, scaler, grad_clip, sched)


@torch.no_grad()
def evaluate_loss(model: GPT, tokens: torch.Tensor, *, batch_size: int = 16, max_batches: int = 8,
                  context: int | None = None, amp_dtype: torch.dtype | None = None) -> float:
    """Mean next-token cross entropy (nats) over consecutive non-overlapping windows of
    ``tokens`` (deterministic: the first ``batch_size * max_batches`` windows)."""
    ctx = model.config.context if context is None else context
    dev = next(model.parameters()).device
    n_win = (tokens.numel() - 1) // ctx
    if n_win < 1:
        raise ValueError(f"{tokens.numel()} tokens are too few for one window of context {ctx}")
    n_win = min(n_win, batch_size * max_batches)
    was_training = model.training
    model.eval()
    total, count = torch.zeros((), dtype=torch.float64, device=dev), 0
    for s in range(0, n_win, batch_size):
        idx = torch.arange(s, min(n_win, s + batch_size))
        starts = idx * ctx
        win = tokens[starts[:, None] + torch.arange(ctx + 1)].long().to(dev)
        ac = torch.autocast(dev.type, dtype=amp_dtype) if amp_dtype is not None else contextlib.nullcontext()
        with ac:
            _, loss = model(win[:, :-1], targets=win[:, 1:])
        total += loss.double() * idx.numel()
        count += idx.numel()
    model.train(was_training)
    return float(total / count)


@dataclass
class TrainResult:
    model: GPT
    config: GPTConfig
    steps: int
    batch_size: int
    lr: float
    seed: int
    device: str
    amp_dtype: str
    losses: list[float]
    eval_steps: list[int] = field(default_factory=list)
    val_losses: list[float] = field(default_factory=list)
    val_loss: float = float("nan")
    wall_time_s: float = 0.0
    tokens_per_s: float = 0.0

    def summary(self) -> dict:
        """JSON-ready headline numbers (everything but the model)."""
        return {"config": self.config.to_dict(), "steps": self.steps, "batch_size": self.batch_size, "lr": self.lr,
                "seed": self.seed, "device": self.device, "amp_dtype": self.amp_dtype,
                "final_train_loss": self.losses[-1] if self.losses else None, "val_loss": self.val_loss,
                "eval_steps": self.eval_steps, "val_losses": self.val_losses,
                "wall_time_s": self.wall_time_s, "tokens_per_s": self.tokens_per_s,
                "parameters": self.model.num_parameters(non_embedding=False),
                "non_embedding_parameters": self.model.num_parameters(non_embedding=True)}


def train_gpt(config: GPTConfig, tokens: torch.Tensor, *, steps: int, batch_size: int = 16, lr: float = 1e-3,
              seed: int = 0, device: str | torch.device = "cpu", amp_dtype: str | torch.dtype | None = None,
              progress: bool = True, eval_every: int | None = None, val_tokens: torch.Tensor | None = None,
              val_fraction: float = 0.1, weight_decay: float = 0.1, grad_clip: float | None = 1.0,
              warmup: int | None = None, gradient_checkpointing: bool = False, eval_batches: int = 8,
              callback: Callable[[int, float], None] | None = None) -> TrainResult:
    """Train a fresh GPT on byte ``tokens`` (1-D) from seed ``seed``.

    Without ``val_tokens`` the last ``val_fraction`` of ``tokens`` is held out.
    ``eval_every`` (default: steps // 5) evaluates the validation loss during training;
    the final validation loss is always computed. ``callback(step, loss)`` is called at
    each evaluation point (losses are collected without a host sync per step).
    Returns a :class:`TrainResult` whose ``wall_time_s`` counts training steps only.
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if tokens.dim() != 1:
        raise ValueError(f"tokens must be 1-D, got shape {tuple(tokens.shape)}")
    if int(tokens.max()) >= config.vocab_size:
        raise ValueError(f"token {int(tokens.max())} is outside the vocabulary of size {config.vocab_size}")
    dev = resolve_device(device)
    amp = parse_dtype(amp_dtype)
    if val_tokens is None:
        tokens, val_tokens = train_val_split(tokens, val_fraction)
    if tokens.numel() < config.context + 1:
        raise ValueError(f"{tokens.numel()} training tokens are too few for context {config.context}")
    eval_every = max(1, steps // 5) if eval_every is None else eval_every
    if eval_every < 1:
        raise ValueError(f"eval_every must be >= 1, got {eval_every}")

    # parameter init and dropout draw from torch's global generator: seed it for this
    # run only (the caller's generator state is restored); the batches use `gen`
    with seeded(seed, dev):
        model = GPT(config, gradient_checkpointing=gradient_checkpointing).to(dev)
        gen = torch.Generator().manual_seed(seed + 1)
        step_fn = make_train_step(model, lr=lr, weight_decay=weight_decay, device=dev, amp_dtype=amp,
                                  grad_clip=grad_clip, steps=steps, warmup=warmup)
        losses: list[torch.Tensor] = []
        eval_steps, val_losses = [], []
        wall = 0.0
        bar = tqdm(total=steps, disable=not progress, desc="train", leave=False)
        for step in range(1, steps + 1):
            x, y = get_batch(tokens, batch_size, config.context, gen, dev)
            t0 = time.perf_counter()
            losses.append(step_fn(x, y))
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            wall += time.perf_counter() - t0
            bar.update(1)
            if step % eval_every == 0 or step == steps:
                vl = evaluate_loss(model, val_tokens, batch_size=batch_size, max_batches=eval_batches, amp_dtype=amp)
                eval_steps.append(step)
                val_losses.append(vl)
                train_loss = float(losses[-1])
                bar.set_postfix(loss=f"{train_loss:.3f}", val=f"{vl:.3f}")
                if callback is not None:
                    callback(step, train_loss)
        bar.close()
        model.eval()
        loss_list = torch.stack(losses).float().cpu().tolist()
        return TrainResult(model=model, config=config, steps=steps, batch_size=batch_size, lr=lr, seed=seed,
                           device=str(dev), amp_dtype=dtype_name(amp), losses=loss_list, eval_steps=eval_steps,
                           val_losses=val_losses, val_loss=val_losses[-1], wall_time_s=wall,
                           tokens_per_s=steps * batch_size * config.context / max(wall, 1e-9))


_CKPT_FILES = {"config.json", "model.pt"}


def save_checkpoint(model: GPT, directory: str | Path, *, extra: dict | None = None) -> Path:
    """Write ``directory/config.json`` (config + ``extra``) and ``directory/model.pt`` (state dict).

    Atomic: both files are written into a temporary sibling folder that then replaces
    ``directory``; an existing ``directory`` is replaced only if it holds nothing but a
    checkpoint (otherwise ValueError)."""
    directory = Path(directory)
    if directory.exists():
        if not directory.is_dir():
            raise ValueError(f"checkpoint path {str(directory)!r} exists and is not a directory")
        others = {p.name for p in directory.iterdir()} - _CKPT_FILES
        if others:
            raise ValueError(f"refusing to replace {str(directory)!r}: it holds other files {sorted(others)[:3]}")
    meta = {"format": CHECKPOINT_FORMAT, "config": model.config.to_dict(), **(extra or {})}
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_directory(directory) as tmp:  # a fresh folder, swapped in whole when both files are written
        (tmp / "config.json").write_text(dumps(meta, indent=2))
        torch.save(state, tmp / "model.pt")
    return directory


def read_checkpoint_meta(directory: str | Path) -> dict:
    directory = Path(directory)
    if not directory.exists():
        raise FileNotFoundError(f"checkpoint {str(directory)!r} does not exist")
    cfg = directory / "config.json"
    if not cfg.is_file() or not (directory / "model.pt").is_file():
        raise FileNotFoundError(f"{str(directory)!r} is not a checkpoint (needs config.json and model.pt)")
    meta = json.loads(cfg.read_text())
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{str(cfg)!r} has format {meta.get('format')!r}, expected {CHECKPOINT_FORMAT!r}")
    return meta


def load_checkpoint(directory: str | Path, *, map_location: str | torch.device = "cpu") -> GPT:
    """The GPT saved by :func:`save_checkpoint`, in eval mode on ``map_location``."""
    meta = read_checkpoint_meta(directory)
    model = GPT(GPTConfig.from_dict(meta["config"]))
    state = torch.load(Path(directory) / "model.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.to(map_location).eval()
