"""Training of Fourier neural operators: losses, compiled epochs, data parallelism, checkpoints.

``train_fno(data, model_config, train_config)`` trains an ``FNO`` on the train part of an
operator dataset and reports the test relative L2 error after every epoch. One epoch is
one compiled call: the shuffle, the batching and every optimizer step run inside a
``lax.scan`` with no host synchronisation. With more than one device the batch axis is
sharded over a 1D ``jax.sharding.Mesh`` (data parallelism: parameters replicated, the
gradient all-reduce inserted by the SPMD partitioner); the loss is a mean over the global
batch, so the sharded step computes the same update as the single-device step.

Pure building blocks for other packages (ensembles, MC dropout, scaling fits):
``rel_l2_loss``, ``h1_loss``, ``make_optimizer``, ``make_train_epoch``, ``predict``.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from operators.checkpoint import load_checkpoint, save_checkpoint
from operators.layers import check_modes
from operators.models import FNO, FNOConfig, functional

__all__ = [
    "OperatorData",
    "TrainConfig",
    "h1_loss",
    "load_operator_data",
    "make_optimizer",
    "make_train_epoch",
    "predict",
    "rel_l2_loss",
    "rel_l2_per_sample",
    "train_fno",
]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings. Every field is JSON-able (stored in the checkpoint).

    epochs:          passes over the training set.
    batch_size:      global batch (split over devices; must be divisible by their number).
    lr:              peak learning rate of AdamW.
    weight_decay:    AdamW decoupled weight decay.
    schedule:        "cosine" (linear warm-up, cosine decay to 0), "constant" or "step"
                     (halve every ``epochs // 5`` epochs, as in the FNO paper).
    warmup_epochs:   linear warm-up length of the cosine schedule.
    loss:            "l2" (relative L2, the FNO paper's loss) or "h1" (relative H1 norm,
                     computed with the spectral derivative on the periodic grid).
    nx:              subsample the stored grid to nx points per axis (None: as stored).
    seed:            initialisation and shuffling (one key; epoch e uses fold_in(key, e)).
    eval_every:      test error every this many epochs (and at the last one).
    checkpoint_every: save every this many epochs (and at the last one) when given a directory.
    data_parallel:   shard the batch over all devices when there is more than one.
    """

    epochs: int = 150
    batch_size: int = 20
    lr: float = 3e-3
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    warmup_epochs: int = 5
    loss: str = "l2"
    nx: int | None = None
    seed: int = 0
    eval_every: int = 1
    checkpoint_every: int = 10
    data_parallel: bool = True

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "eval_every", "checkpoint_every"):
            v = getattr(self, name)
            if not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if not (isinstance(self.warmup_epochs, int) and self.warmup_epochs >= 0):
            raise ValueError(f"warmup_epochs must be a non-negative integer, got {self.warmup_epochs!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.schedule not in ("cosine", "constant", "step"):
            raise ValueError(f"schedule must be 'cosine', 'constant' or 'step', got {self.schedule!r}")
        if self.loss not in ("l2", "h1"):
            raise ValueError(f"loss must be 'l2' or 'h1', got {self.loss!r}")
        if self.nx is not None and not (isinstance(self.nx, int) and self.nx >= 2):
            raise ValueError(f"nx must be an integer >= 2, got {self.nx!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


# ----------------------------------------------------------------------------- data


@dataclass
class OperatorData:
    """Train and test arrays, float32: a_*, u_*: (samples, *spatial). ``periodic``: whether the
    functions are periodic (the dataset's ``periodic`` attr; training pads non-periodic data)."""

    a_train: np.ndarray
    u_train: np.ndarray
    a_test: np.ndarray
    u_test: np.ndarray
    periodic: bool = True

    @property
    def dim(self) -> int:
        return self.a_train.ndim - 1

    @property
    def spatial(self) -> tuple[int, ...]:
        return tuple(self.a_train.shape[1:])


def is_periodic(ds: Any) -> bool:
    """A dataset's ``periodic`` attr (DESIGN.md section 7; default true; netCDF stores it as 1 / 0)."""
    value = getattr(ds, "attrs", {}).get("periodic", True)
    if isinstance(value, str):
        return value.strip().lower() not in ("0", "false", "no")
    return bool(value)


def grid_stride(n_stored: int, n: int, periodic: bool = True) -> int:
    """Stride from the stored grid to n points: n_stored / n on a periodic grid (x_j = j / n),
    (n_stored - 1) / (n - 1) on a node grid with both ends (non-periodic data, x = linspace)."""
    if not (isinstance(n, int | np.integer) and n >= 2):
        raise ValueError(f"nx must be an integer >= 2, got {n!r}")
    if periodic:
        if n > n_stored or n_stored % n:
            raise ValueError(f"nx={n} does not divide the stored grid of {n_stored} points (use a divisor of "
                             f"{n_stored})")
        return n_stored // n
    if n > n_stored or (n_stored - 1) % (n - 1):
        raise ValueError(f"nx={n} is not a strided subgrid of the stored {n_stored} nodes "
                         f"(needs (nx - 1) to divide {n_stored - 1})")
    return (n_stored - 1) // (n - 1)


def subsample(arr: np.ndarray, nx: int | None, dim: int, periodic: bool = True) -> np.ndarray:
    """Stride a (samples, *spatial) array down to nx points per spatial axis (``grid_stride``)."""
    if nx is None:
        return arr
    out = arr
    for axis in range(1, dim + 1):
        stride = grid_stride(arr.shape[axis], nx, periodic)
        out = np.take(out, np.arange(0, arr.shape[axis], stride), axis=axis)
    return out


def split_arrays(ds: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(a, u, split or None) from an operator Dataset, with its checks (one-line ValueErrors)."""
    missing = [v for v in ("a", "u") if v not in ds]
    if missing:
        raise ValueError(f"dataset has no variable {missing[0]!r}: an operator dataset needs 'a' and 'u'")
    a, u = ds["a"], ds["u"]
    if a.dims != u.dims or a.shape != u.shape:
        raise ValueError(f"a {dict(a.sizes)} and u {dict(u.sizes)} are on different grids")
    if a.dims[0] != "sample" or a.ndim not in (2, 3):
        raise ValueError(f"a must have dims (sample, x[, y]), got {a.dims}")
    if a.ndim == 3 and a.shape[1] != a.shape[2]:
        raise ValueError(f"2D grids must be square, got {a.shape[1]} x {a.shape[2]}")
    split = np.asarray(ds["split"]).astype(str) if "split" in ds else None
    return np.asarray(a, np.float32), np.asarray(u, np.float32), split


def load_operator_data(data: Any, nx: int | None = None) -> OperatorData:
    """OperatorData from a path, an xarray Dataset (train/test by its ``split``), a tuple
    (a_train, u_train, a_test, u_test) or an OperatorData; subsampled to nx if given."""
    if isinstance(data, OperatorData):
        d = data
    elif isinstance(data, tuple | list) and len(data) == 4:
        d = OperatorData(*(np.asarray(x, np.float32) for x in data))
    else:
        if isinstance(data, str | Path):
            from pdes.solution import read_dataset

            data = read_dataset(data)
        a, u, split = split_arrays(data)
        if split is None:
            raise ValueError("dataset has no 'split' variable: training needs train and test samples")
        tr, te = split == "train", split == "test"
        if not tr.any() or not te.any():
            raise ValueError(f"dataset needs both train and test samples, has {int(tr.sum())} train / {int(te.sum())} test")
        d = OperatorData(a[tr], u[tr], a[te], u[te], periodic=is_periodic(data))
    for name in ("a_train", "u_train", "a_test", "u_test"):
        arr = getattr(d, name)
        if arr.ndim not in (2, 3) or arr.shape[1:] != d.a_train.shape[1:]:
            raise ValueError(f"{name} has shape {arr.shape}; all arrays need one grid (samples, *spatial)")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or infinite values")
    dim = d.dim
    return OperatorData(*(subsample(getattr(d, n), nx, dim, d.periodic) for n in ("a_train", "u_train", "a_test",
                                                                                    "u_test")), periodic=d.periodic)


# ----------------------------------------------------------------------------- losses


def rel_l2_per_sample(pred: jax.Array, true: jax.Array) -> jax.Array:
    """||pred - true||_2 / ||true||_2 for each sample. pred, true: (batch, *spatial) -> (batch,)."""
    axes = tuple(range(1, true.ndim))
    num = jnp.sqrt(jnp.sum((pred - true) ** 2, axis=axes))
    den = jnp.sqrt(jnp.sum(true**2, axis=axes))
    return num / jnp.maximum(den, 1e-12)


def rel_l2_loss(pred: jax.Array, true: jax.Array) -> jax.Array:
    """Mean over the batch of the per-sample relative L2 error (the FNO paper's loss)."""
    return jnp.mean(rel_l2_per_sample(pred, true))


def h1_loss(pred: jax.Array, true: jax.Array) -> jax.Array:
    """Mean relative H1 error, ||e||_H1 / ||u||_H1 with ||f||_H1^2 = sum_k (1 + |2 pi k|^2) |f_k|^2
    over the Fourier coefficients of the periodic grid on [0, 1)^d. pred, true: (batch, *spatial)."""
    dim = true.ndim - 1
    axes = tuple(range(1, dim + 1))
    freqs = [jnp.fft.fftfreq(n, 1.0 / n) for n in true.shape[1:]]
    k2 = sum(jnp.meshgrid(*[f**2 for f in freqs], indexing="ij"))
    w = 1.0 + (2 * jnp.pi) ** 2 * k2
    eh = jnp.fft.fftn(pred - true, axes=axes, norm="forward")
    uh = jnp.fft.fftn(true, axes=axes, norm="forward")
    num = jnp.sqrt(jnp.sum(w * jnp.abs(eh) ** 2, axis=axes))
    den = jnp.sqrt(jnp.sum(w * jnp.abs(uh) ** 2, axis=axes))
    return jnp.mean(num / jnp.maximum(den, 1e-12))


LOSSES: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {"l2": rel_l2_loss, "h1": h1_loss}


# ----------------------------------------------------------------------------- steps


def make_optimizer(cfg: TrainConfig, steps_per_epoch: int) -> optax.GradientTransformation:
    """AdamW with the configured learning-rate schedule (a function of the step count)."""
    return optax.adamw(_lr_fn(cfg, steps_per_epoch), weight_decay=cfg.weight_decay)


def make_train_epoch(
    apply: Callable[..., jax.Array],
    tx: optax.GradientTransformation,
    *,
    batch_size: int,
    loss: str = "l2",
    dropout: bool = False,
    mesh: Mesh | None = None,
) -> Callable[..., tuple[Any, Any, jax.Array]]:
    """A jitted ``epoch(params, opt_state, key, a, u) -> (params, opt_state, losses)``.

    a, u: (n, *spatial) training set (on device). The epoch shuffles with ``key``, drops the
    last incomplete batch, and runs n // batch_size AdamW steps in one ``lax.scan``;
    ``losses``: (n // batch_size,). With a ``mesh`` (axis "data") every batch is sharded
    over the mesh's devices and the parameters are replicated.
    """
    loss_fn = LOSSES[loss]

    def epoch(params, opt_state, key, a, u):
        n_batches = a.shape[0] // batch_size
        perm_key, drop_key = jax.random.split(key)
        perm = jax.random.permutation(perm_key, a.shape[0])[: n_batches * batch_size]
        ab = a[perm].reshape(n_batches, batch_size, *a.shape[1:])
        ub = u[perm].reshape(n_batches, batch_size, *u.shape[1:])
        if mesh is not None:
            spec = NamedSharding(mesh, P(None, "data"))
            ab = jax.lax.with_sharding_constraint(ab, spec)
            ub = jax.lax.with_sharding_constraint(ub, spec)
        step_keys = jax.random.split(drop_key, n_batches)

        def step(carry, batch):
            params, opt_state = carry
            a_b, u_b, k = batch

            def objective(p):
                return loss_fn(apply(p, a_b, key=k if dropout else None), u_b)

            value, grads = jax.value_and_grad(objective)(params)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), value

        (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), (ab, ub, step_keys))
        return params, opt_state, losses

    return jax.jit(epoch, donate_argnums=(0, 1))


def predict(apply: Callable[..., jax.Array], params: Any, a: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """apply(params, a) in batches of ``batch_size`` (one compiled shape plus the remainder)."""
    fn = jax.jit(apply)
    outs = [np.asarray(fn(params, jnp.asarray(a[i:i + batch_size]))) for i in range(0, a.shape[0], batch_size)]
    return np.concatenate(outs, axis=0)


def _mesh(cfg: TrainConfig) -> Mesh | None:
    devices = jax.devices()
    if not cfg.data_parallel or len(devices) == 1:
        return None
    if cfg.batch_size % len(devices):
        raise ValueError(f"batch_size={cfg.batch_size} is not divisible by the {len(devices)} devices")
    return Mesh(np.array(devices), ("data",))


def _tqdm_callback(total: int, start: int, disable: bool) -> tuple[Callable[[dict[str, Any]], None], Callable[[], None]]:
    from tqdm.auto import tqdm

    bar = tqdm(total=total, initial=start, desc="train", unit="epoch", file=sys.stderr, disable=disable)

    def cb(rec: dict[str, Any]) -> None:
        post = {"loss": f"{rec['train_loss']:.3e}"}
        if rec.get("test_rel_l2") is not None:
            post["test"] = f"{rec['test_rel_l2']:.3e}"
        bar.set_postfix(post, refresh=False)
        bar.update(1)

    return cb, bar.close


def train_fno(
    data: Any,
    model_config: FNOConfig | None = None,
    train_config: TrainConfig | None = None,
    *,
    out: str | Path | None = None,
    resume: bool = False,
    callback: Callable[[dict[str, Any]], None] | None = None,
    progress: bool = True,
) -> tuple[FNO, list[dict[str, Any]]]:
    """Train an FNO; returns (model, history).

    data: a path, an operator ``xarray.Dataset`` (train/test from ``split``), a tuple
    (a_train, u_train, a_test, u_test) or ``OperatorData``. model_config: ``dim`` is taken
    from the data; unset fields (modes, width, padding) adapt to the data (``FNOConfig.resolved``).
    out: checkpoint directory (``operators.checkpoint``, every ``checkpoint_every`` epochs). resume: continue from the checkpoint in ``out`` (its model
    config wins; the train config given here sets the epochs to reach). callback: called
    with each epoch's record (default: a tqdm bar on stderr unless progress=False).
    history: one dict per epoch with ``epoch``, ``train_loss``, ``test_rel_l2`` (None on
    epochs without evaluation), ``lr``, ``wall_time_s`` (cumulative training time).
    """
    tcfg = train_config or TrainConfig()
    d = load_operator_data(data, tcfg.nx)
    mcfg = dataclasses.replace(model_config or FNOConfig(), dim=d.dim).resolved(d.spatial, d.periodic)
    if d.a_train.shape[0] < tcfg.batch_size:
        raise ValueError(f"batch_size={tcfg.batch_size} is larger than the {d.a_train.shape[0]} training samples")
    start_epoch, history = 0, []
    opt_state = None
    steps_per_epoch = d.a_train.shape[0] // tcfg.batch_size
    tx = make_optimizer(tcfg, steps_per_epoch)
    if resume:
        if out is None:
            raise ValueError("--resume needs the checkpoint directory (--out)")
        model, meta = _load_for_resume(out, d.dim)
        mcfg = model.config
        check_modes(mcfg.modes, d.spatial)
        _, params_t = functional(model)
        model, opt_state, meta = load_checkpoint(out, tx.init(params_t))
        start_epoch, history = int(meta["epoch"]), list(meta.get("history", []))
        if start_epoch >= tcfg.epochs:
            raise ValueError(f"the checkpoint in {str(out)!r} is at epoch {start_epoch}, not before --epochs "
                             f"{tcfg.epochs}: nothing to resume")
    else:
        check_modes(mcfg.modes, d.spatial)
        model = FNO(mcfg, rngs=nnx.Rngs(tcfg.seed))
        model.set_normalization(
            float(d.a_train.mean()), float(d.a_train.std()) or 1.0,
            float(d.u_train.mean()), float(d.u_train.std()) or 1.0,
        )
    apply, params = functional(model)
    if opt_state is None:
        opt_state = tx.init(params)
    mesh = _mesh(tcfg)
    epoch_fn = make_train_epoch(apply, tx, batch_size=tcfg.batch_size, loss=tcfg.loss,
                                dropout=mcfg.dropout > 0, mesh=mesh)
    if mesh is not None:
        rep = NamedSharding(mesh, P())
        params, opt_state = jax.device_put((params, opt_state), rep)
        a_tr, u_tr = jax.device_put((d.a_train, d.u_train), rep)
    else:
        a_tr, u_tr = jnp.asarray(d.a_train), jnp.asarray(d.u_train)
    eval_fn = jax.jit(lambda p, a, u: rel_l2_per_sample(apply(p, a), u))
    eval_bs = max(1, min(d.a_test.shape[0], (1 << 22) // max(1, int(np.prod(d.spatial)) * mcfg.width)))

    def test_error(p) -> float:
        errs = [np.asarray(eval_fn(p, jnp.asarray(d.a_test[i:i + eval_bs]), jnp.asarray(d.u_test[i:i + eval_bs])))
                for i in range(0, d.a_test.shape[0], eval_bs)]
        return float(np.mean(np.concatenate(errs)))

    run_config = {"model": mcfg.to_dict(), "train": tcfg.to_dict(), "data": {"spatial": list(d.spatial),
                  "n_train": int(d.a_train.shape[0]), "n_test": int(d.a_test.shape[0])}}
    close = None
    if callback is None:
        callback, close = _tqdm_callback(tcfg.epochs, start_epoch, not progress)
    key = jax.random.key(tcfg.seed)
    elapsed = history[-1]["wall_time_s"] if history else 0.0
    lr_fn = _lr_fn(tcfg, steps_per_epoch)
    try:
        for epoch in range(start_epoch, tcfg.epochs):
            t0 = time.perf_counter()
            params, opt_state, losses = epoch_fn(params, opt_state, jax.random.fold_in(key, epoch), a_tr, u_tr)
            train_loss = float(jnp.mean(losses))  # the one host sync per epoch
            elapsed += time.perf_counter() - t0
            last = epoch == tcfg.epochs - 1
            test = test_error(params) if ((epoch + 1) % tcfg.eval_every == 0 or last) else None
            rec = {"epoch": epoch + 1, "train_loss": train_loss, "test_rel_l2": test,
                   "lr": float(lr_fn((epoch + 1) * steps_per_epoch)), "wall_time_s": elapsed}
            if not math.isfinite(train_loss):
                from plumbing.cli import Failure

                kept = f"; the checkpoint in {str(out)!r} keeps the last one saved" if out is not None else ""
                raise Failure(f"training diverged at epoch {epoch + 1} (loss {train_loss}){kept}")
            history.append(rec)
            if out is not None and ((epoch + 1) % tcfg.checkpoint_every == 0 or last):
                nnx.update(model, jax.device_get(params))
                save_checkpoint(out, model, jax.device_get(opt_state), run_config=run_config,
                                epoch=epoch + 1, history=history)
            callback(rec)
    finally:
        if close is not None:
            close()
    nnx.update(model, jax.device_get(params))
    return model, history


def _lr_fn(cfg: TrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
    """The learning rate at a step count (for the history), same schedule as make_optimizer."""
    total = cfg.epochs * steps_per_epoch
    if cfg.schedule == "cosine":
        warm = min(cfg.warmup_epochs * steps_per_epoch, max(total - 1, 0))
        return optax.warmup_cosine_decay_schedule(0.0 if warm else cfg.lr, cfg.lr, warm, max(total, warm + 1), 0.0)
    if cfg.schedule == "step":
        return optax.exponential_decay(cfg.lr, max(cfg.epochs // 5, 1) * steps_per_epoch, 0.5, staircase=True)
    return optax.constant_schedule(cfg.lr)


def _load_for_resume(out: str | Path, dim: int) -> tuple[FNO, dict[str, Any]]:
    from operators.checkpoint import load_model

    model, meta = load_model(out)
    if model.config.dim != dim:
        raise ValueError(f"checkpoint in {str(out)!r} is a {model.config.dim}D model but the data is {dim}D")
    return model, meta

