"""A language-model scaling experiment: GPTs of several sizes on a corpus that needs no download.

The model, byte tokenizer, corpus and optimiser step come from ``efficiency`` (``efficiency.gpt``,
``efficiency.data``, ``efficiency.train``); torch is imported lazily inside the functions here, so
``import scaling`` stays torch-free.

What is measured, per run (one GPT size):

* N: non-embedding parameters (Kaplan et al. 2020's N; ``GPT.num_parameters(non_embedding=True)``);
* D: training tokens seen (steps x batch x context);
* C: training FLOPs = D x (6 N + 6 n_layer n_ctx d_model) (Kaplan et al. 2020, Table 1; the attention
  term included), also ``C_6ND`` = 6 N D;
* the validation loss (nats per byte-token, on the held-out last 10% of the corpus) at log-spaced
  points during training, and at the end.

Outputs in RUN_DIR: ``runs.csv`` (one row per run, final values: the input of ``python -m scaling
fit``), ``curves.csv`` (every evaluation), ``fits.json`` (L(N) and L(C) fits, and for IsoFLOP mode the
per-budget minima and the Chinchilla-form fit), and PNG plots.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from plumbing.cli import Failure
from plumbing.files import atomic_write_json, atomic_write_text
from scaling.laws import ScalingFit, csv_text, fit_chinchilla, fit_power_law


@dataclass(frozen=True)
class ModelSize:
    """A GPT shape: depth, width, heads."""

    n_layer: int
    d_model: int
    n_head: int

    @property
    def name(self) -> str:
        return f"L{self.n_layer}-d{self.d_model}"

    @property
    def approx_non_embedding(self) -> int:
        """12 n_layer d^2 + 13 n_layer d + 2 d: the count of efficiency.gpt's blocks (biases, LayerNorms)."""
        d = self.d_model
        return self.n_layer * (12 * d * d + 13 * d) + 2 * d


def parse_size(text: str) -> ModelSize:
    """'LAYERSxWIDTH' or 'LAYERSxWIDTHxHEADS' (heads default: width // 32, at least 1)."""
    parts = text.lower().split("x")
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"model size {text!r} is not LAYERSxWIDTH[xHEADS]") from None
    if len(nums) not in (2, 3) or min(nums) < 1:
        raise ValueError(f"model size {text!r} is not LAYERSxWIDTH[xHEADS] with positive integers")
    heads = nums[2] if len(nums) == 3 else max(1, nums[1] // 32)
    if nums[1] % heads:
        raise ValueError(f"model size {text!r}: width {nums[1]} is not divisible by {heads} heads")
    return ModelSize(nums[0], nums[1], heads)


# 6 sizes, 3.3k .. 150k non-embedding parameters (45x). LARGE_SIZES (12.8k .. 793k, 62x; --large, with
# 500 steps) is the larger option. Run times: benchmarks/results/scaling.md.
DEFAULT_SIZES = (ModelSize(1, 16, 1), ModelSize(1, 24, 1), ModelSize(1, 32, 1), ModelSize(2, 32, 1),
                 ModelSize(2, 48, 2), ModelSize(3, 64, 2))
LARGE_SIZES = (ModelSize(1, 32, 1), ModelSize(2, 32, 1), ModelSize(2, 48, 2), ModelSize(3, 64, 2),
               ModelSize(4, 96, 3), ModelSize(4, 128, 4))
# 6 sizes, 3.3k .. 100k (30.6x): the --quick setting
QUICK_SIZES = (ModelSize(1, 16, 1), ModelSize(1, 24, 1), ModelSize(1, 32, 1), ModelSize(2, 32, 1),
               ModelSize(2, 48, 2), ModelSize(2, 64, 2))
ISOFLOP_SIZES = (ModelSize(1, 32, 1), ModelSize(2, 48, 2), ModelSize(3, 64, 2), ModelSize(4, 96, 3),
                 ModelSize(4, 128, 4))


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that defines a run of the experiment (written to RUN_DIR/config.json)."""

    sizes: tuple[ModelSize, ...] = DEFAULT_SIZES
    steps: int = 250
    batch_size: int = 32
    context: int = 128
    lr: float = 2e-3
    corpus: str | None = None          # None: the Python standard library's source (efficiency.data)
    corpus_bytes: int = 6_000_000
    val_fraction: float = 0.1
    n_evals: int = 10                  # log-spaced evaluation points per run
    eval_batches: int = 8
    seed: int = 0
    threads: int = 1
    isoflop: bool = False
    budgets: tuple[float, ...] = (3e11, 1e12, 3e12)
    min_steps: int = 20                # IsoFLOP: skip a size that would get fewer steps

    def __post_init__(self) -> None:
        if len(self.sizes) < 2:
            raise ValueError(f"need at least 2 model sizes, got {len(self.sizes)}")
        for key in ("steps", "batch_size", "context", "corpus_bytes", "n_evals", "eval_batches", "threads",
                    "min_steps"):
            v = getattr(self, key)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{key} must be a positive integer, got {v!r}")
        if not (self.lr > 0):
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.isoflop and (not self.budgets or min(self.budgets) <= 0):
            raise ValueError(f"IsoFLOP budgets must be positive, got {self.budgets}")


QUICK = ExperimentConfig(sizes=QUICK_SIZES, steps=40, batch_size=8, context=32, lr=3e-3, corpus_bytes=300_000,
                         n_evals=4, eval_batches=2, budgets=(2e8, 6e8), min_steps=5)


@dataclass
class RunResult:
    """One trained size. curves: step, tokens, C, val_loss, train_loss at each evaluation."""

    name: str
    n_layer: int
    d_model: int
    n_head: int
    N: int
    N_total: int
    steps: int
    D: int
    C: float
    C_6ND: float
    flops_per_token: int
    loss: float
    train_loss: float
    wall_time_s: float
    budget: float | None = None
    curve: list[dict] = field(default_factory=list)

    def row(self) -> dict:
        d = asdict(self)
        d.pop("curve")
        d["budget"] = "" if self.budget is None else self.budget
        return d


def _eval_steps(steps: int, n: int) -> list[int]:
    pts = np.unique(np.round(np.geomspace(max(1, steps / 2 ** (n - 1)), steps, n)).astype(int))
    return sorted(set(int(p) for p in pts) | {steps})


def train_size(size: ModelSize, train_tokens, val_tokens, cfg: ExperimentConfig, steps: int, *, bar=None,
               budget: float | None = None) -> RunResult:
    """Train one GPT for ``steps`` steps; evaluate at log-spaced steps. Returns its RunResult;
    ``plumbing.cli.Failure`` if the validation loss is not finite (a diverged run)."""
    import torch

    from efficiency.data import get_batch
    from efficiency.gpt import GPT, GPTConfig
    from efficiency.train import evaluate_loss, make_train_step, seeded

    gcfg = GPTConfig(vocab_size=256, context=cfg.context, n_layer=size.n_layer, n_head=size.n_head,
                     d_model=size.d_model)
    with seeded(cfg.seed):  # the init draws from torch's global generator; the caller's state is restored
        model = GPT(gcfg)
    n_ne = model.num_parameters(non_embedding=True)
    fpt = model.flops_per_token()
    tokens_per_step = cfg.batch_size * cfg.context
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    step_fn = make_train_step(model, lr=cfg.lr, steps=steps)
    evals = set(_eval_steps(steps, cfg.n_evals))
    curve, losses, wall = [], [], 0.0
    for step in range(1, steps + 1):
        x, y = get_batch(train_tokens, cfg.batch_size, cfg.context, gen)
        t0 = time.perf_counter()
        losses.append(step_fn(x, y))
        wall += time.perf_counter() - t0
        if bar is not None:
            bar.update(1)
        if step in evals:
            vl = evaluate_loss(model, val_tokens, batch_size=cfg.batch_size, max_batches=cfg.eval_batches)
            tl = float(torch.stack(losses[-10:]).mean())
            d = step * tokens_per_step
            curve.append({"step": step, "tokens": d, "C": float(fpt) * d, "val_loss": vl, "train_loss": tl})
            if bar is not None:
                bar.set_postfix(run=size.name, step=step, val=f"{vl:.3f}")
    if not all(math.isfinite(c["val_loss"]) for c in curve):
        raise Failure(f"training {size.name} diverged (non-finite validation loss)")
    D = steps * tokens_per_step
    return RunResult(name=size.name, n_layer=size.n_layer, d_model=size.d_model, n_head=size.n_head, N=n_ne,
                     N_total=model.num_parameters(non_embedding=False), steps=steps, D=D, C=float(fpt) * D,
                     C_6ND=6.0 * n_ne * D, flops_per_token=fpt, loss=curve[-1]["val_loss"],
                     train_loss=curve[-1]["train_loss"], wall_time_s=wall, budget=budget, curve=curve)


def pareto_frontier(C: np.ndarray, loss: np.ndarray) -> np.ndarray:
    """Indices of the compute-efficient frontier: points with a lower loss than every point of smaller C."""
    order = np.argsort(C, kind="stable")
    keep, best = [], math.inf
    for i in order:
        if loss[i] < best:
            keep.append(i)
            best = loss[i]
    return np.array(keep, dtype=int)


def warmup_steps(steps: int) -> int:
    """The linear warm-up of efficiency.train.make_train_step's schedule: 10% of the steps, at most 100."""
    return min(100, max(1, steps // 10))


def frontier_points(runs: Sequence[RunResult]) -> tuple[np.ndarray, np.ndarray]:
    """(C, loss) of the compute-efficient frontier over every evaluation after each run's warm-up (the
    plateau before it is the initialisation's loss, not a scaling regime; Kaplan et al. 2020 also leave
    out the start of training)."""
    pts = [(c["C"], c["val_loss"]) for r in runs for c in r.curve if c["step"] > warmup_steps(r.steps)]
    if not pts:
        return np.zeros(0), np.zeros(0)
    C, L = (np.array(v, dtype=float) for v in zip(*pts, strict=True))
    idx = pareto_frontier(C, L)
    return C[idx], L[idx]


def isoflop_minima(runs: Sequence[RunResult]) -> list[dict]:
    """Per budget: the run with the lowest loss, and the minimum of a parabola in log N (Hoffmann et al.'s
    Approach 2) when the budget has at least 3 sizes and the parabola opens upward."""
    out = []
    for budget in sorted({r.budget for r in runs if r.budget is not None}):
        rs = sorted((r for r in runs if r.budget == budget), key=lambda r: r.N)
        best = min(rs, key=lambda r: r.loss)
        row = {"budget": budget, "n_sizes": len(rs), "best_run": best.name, "best_N": best.N, "best_D": best.D,
               "best_loss": best.loss, "N_opt_parabola": None, "loss_parabola": None}
        if len(rs) >= 3:
            x = np.log([r.N for r in rs])
            c2, c1, c0 = np.polyfit(x, [r.loss for r in rs], 2)
            if c2 > 0:
                xm = -c1 / (2 * c2)
                if x.min() <= xm <= x.max():  # no extrapolation beyond the sizes trained
                    row["N_opt_parabola"] = float(np.exp(xm))
                    row["loss_parabola"] = float(c0 + c1 * xm + c2 * xm * xm)
        out.append(row)
    return out


def write_runs(runs: Sequence[RunResult], out: Path) -> None:
    """runs.csv (final values, one row per run) and curves.csv (every evaluation)."""
    atomic_write_text(out / "runs.csv", csv_text([r.row() for r in runs]))
    curves = [{"run": r.name, "N": r.N, "budget": "" if r.budget is None else r.budget, **c}
              for r in runs for c in r.curve]
    atomic_write_text(out / "curves.csv", csv_text(curves))


def fit_experiment(runs: Sequence[RunResult]) -> dict[str, ScalingFit | list]:
    """L(N) over the final losses of the fixed-token runs, L(C) over the compute-efficient frontier of all
    evaluations; in IsoFLOP mode also the per-budget minima and the Chinchilla form over the final points."""
    fits: dict[str, ScalingFit | list] = {}
    fixed = [r for r in runs if r.budget is None]
    if len(fixed) >= 3:
        fits["L(N)"] = fit_power_law(np.array([r.N for r in fixed], float), np.array([r.loss for r in fixed]),
                                     variable="N")
    C, L = frontier_points(runs)
    if C.size >= 3:
        fits["L(C)"] = fit_power_law(C, L, variable="C")
    iso = [r for r in runs if r.budget is not None]
    if iso:
        fits["isoflop"] = minima = isoflop_minima(iso)
        opt = [(m["budget"], m["N_opt_parabola"]) for m in minima if m["N_opt_parabola"]]
        if len(opt) >= 2:  # N_opt ~ C^a, least squares in log-log (Hoffmann et al.'s Approach 2)
            a, _ = np.polyfit(np.log([c for c, _ in opt]), np.log([n for _, n in opt]), 1)
            fits["isoflop_N_opt_exponent"] = [{"a": float(a), "n_budgets": len(opt)}]
        if len(iso) >= 5:
            fits["L(N,D)"] = fit_chinchilla(np.array([r.N for r in iso], float), np.array([r.D for r in iso], float),
                                            np.array([r.loss for r in iso]))
    return fits


def _fits_json(fits: dict) -> dict:
    return {k: (v.to_dict() if isinstance(v, ScalingFit) else v) for k, v in fits.items()}


def plan_runs(cfg: ExperimentConfig) -> list[tuple[ModelSize, int, float | None]]:
    """(size, steps, budget) for every run: each size for cfg.steps, or per IsoFLOP budget the steps that spend
    it (C / (flops per token x batch x context)), skipping sizes with fewer than cfg.min_steps."""
    if not cfg.isoflop:
        return [(s, cfg.steps, None) for s in cfg.sizes]
    plan = []
    for budget in cfg.budgets:
        for s in cfg.sizes:
            fpt = 6 * s.approx_non_embedding + 6 * s.n_layer * cfg.context * s.d_model
            steps = int(budget // (fpt * cfg.batch_size * cfg.context))
            if steps >= cfg.min_steps:
                plan.append((s, steps, float(budget)))
    if not plan:
        raise ValueError(f"no size gets {cfg.min_steps} steps within the budgets {cfg.budgets}; raise them")
    return plan


def read_runs(out: str | Path) -> list[RunResult]:
    """The runs recorded in ``out``/runs.csv and curves.csv (as written by :func:`write_runs`); [] if none."""
    out = Path(out)
    if not (out / "runs.csv").is_file() or not (out / "curves.csv").is_file():
        return []
    ints = ("n_layer", "d_model", "n_head", "N", "N_total", "steps", "D", "flops_per_token")
    floats = ("C", "C_6ND", "loss", "train_loss", "wall_time_s")
    with (out / "curves.csv").open(newline="") as fh:
        curves = list(csv.DictReader(fh))
    runs = []
    with (out / "runs.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            try:
                kw = {k: int(row[k]) for k in ints} | {k: float(row[k]) for k in floats}
                budget = float(row["budget"]) if row["budget"] else None
                curve = [{"step": int(c["step"]), "tokens": int(c["tokens"]), "C": float(c["C"]),
                          "val_loss": float(c["val_loss"]), "train_loss": float(c["train_loss"])}
                         for c in curves if c["run"] == row["name"] and c["budget"] == row["budget"]]
            except (KeyError, ValueError) as err:
                raise ValueError(f"{out / 'runs.csv'} is not a runs table written by this experiment: {err}") from None
            runs.append(RunResult(name=row["name"], budget=budget, curve=curve, **kw))
    return runs


def run_experiment(cfg: ExperimentConfig, out: str | Path, *, progress: bool = True, plots: bool = True,
                   resume: bool = False) -> dict:
    """Train every planned size, write runs.csv, curves.csv, fits.json, config.json and plots in ``out``.

    resume: reuse the runs already recorded in ``out`` whose size, steps, budget and tokens (steps x batch x
    context) match the plan (the other settings, lr, seed and corpus, must be the same: they are not checked).
    Returns a summary dict (corpus, runs, fits, wall time).
    """
    import torch
    from tqdm.auto import tqdm

    from efficiency.data import load_corpus, train_val_split

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    corpus = load_corpus(cfg.corpus, max_bytes=cfg.corpus_bytes)
    train_tokens, val_tokens = train_val_split(corpus.tokens, cfg.val_fraction)
    if val_tokens.numel() < cfg.context + 1:
        raise ValueError(f"the held-out split has {val_tokens.numel()} tokens, fewer than context + 1 "
                         f"= {cfg.context + 1}; use a larger corpus")
    plan = plan_runs(cfg)
    config = asdict(cfg)
    config["sizes"] = [asdict(s) for s in cfg.sizes]
    atomic_write_json(out / "config.json", config)
    done = {(r.name, r.steps, r.budget, r.D): r for r in (read_runs(out) if resume else [])}
    max_tokens = max(steps for _, steps, _ in plan) * cfg.batch_size * cfg.context
    epochs = max_tokens / max(1, train_tokens.numel())
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    runs: list[RunResult] = []
    try:
        todo = [(size, steps, budget) for size, steps, budget in plan
                if (size.name, steps, budget, steps * cfg.batch_size * cfg.context) not in done]
        with tqdm(total=sum(s for _, s, _ in todo), desc="scaling experiment", unit="step", disable=not progress,
                  dynamic_ncols=True) as bar:
            for size, steps, budget in plan:
                key = (size.name, steps, budget, steps * cfg.batch_size * cfg.context)
                if key in done:
                    runs.append(done[key])
                    continue
                runs.append(train_size(size, train_tokens, val_tokens, cfg, steps, bar=bar, budget=budget))
                write_runs(runs, out)  # after every run, so an interrupted experiment keeps what it finished
    finally:
        torch.set_num_threads(prev_threads)
    write_runs(runs, out)
    fits = fit_experiment(runs)
    summary = {"corpus": corpus.describe(), "train_tokens": int(train_tokens.numel()),
               "val_tokens": int(val_tokens.numel()), "max_epochs_over_train_split": epochs,
               "n_runs": len(runs), "n_reused": len(runs) - len(todo), "wall_time_s": time.perf_counter() - t_start,
               "training_wall_time_s": sum(r.wall_time_s for r in runs),
               "span_N": max(r.N for r in runs) / min(r.N for r in runs),
               "runs": [r.row() for r in runs], "fits": _fits_json(fits)}
    if plots:
        from scaling.plots import plot_experiment

        summary["plots"] = [str(p) for p in plot_experiment(runs, fits, out, frontier_points(runs))]
    atomic_write_json(out / "fits.json", summary)
    return summary


def quick_config(**changes) -> ExperimentConfig:
    """The --quick setting (tiny models, few steps)."""
    return replace(QUICK, **changes)
