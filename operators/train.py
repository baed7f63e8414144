"""Training of Fourier neural operators: losses, compiled epochs, data parallelism, checkpoints.

``train_fno(data, model_config, train_config)`` trains an ``FNO`` on the train part of an
operator dataset and reports the test relative L2 error after every epoch. One epoch is
one compiled call: the shuffle, the batching and every optimizer step run inside a
``lax.scan`` with no host synchronisation. With more than one device the batch axis is
sharded over a 1D ``jax.sharding.Mesh`` (data parallelism: parameters replicated, the
gradient all-reduce inserted by the SPMD partitioner); the loss is a mean over the global
batch, so the sharded step computes the same update as the single-device step.

Two ways to feed the data (``TrainConfig.loader``), the same arithmetic:

* "memory": the whole training set on the devices, one compiled call per epoch (above);
* "stream": the dataset stays in its file; every step, each process reads only its rows of
  the global batch (``operators.loader``: h5py hyperslabs, read by a background thread one
  or two batches ahead) and the step is one compiled call over the global mesh of every
  process's devices (``jax.distributed``, ``plumbing.distributed``). The shuffle is the
  memory path's (the same permutation of the same key), so the global batches, and the loss
  curve, do not depend on the number of processes.

"auto" streams when several processes train together or when the file is larger than a
quarter of the available memory, and keeps the whole set in memory otherwise.

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
    "check_resumable",
    "checkpoint_due",
    "h1_loss",
    "load_operator_data",
    "make_optimizer",
    "make_train_epoch",
    "predict",
    "rel_l2_loss",
    "rel_l2_per_sample",
    "train_fno",
]


LOADERS = ("auto", "memory", "stream")


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
    loader:          "memory" (the whole set on the devices), "stream" (each process reads its
                     rows of every batch from the file) or "auto" (see the module doc).
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
    loader: str = "auto"

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
        if self.loader not in LOADERS:
            raise ValueError(f"loader must be one of {', '.join(LOADERS)}, got {self.loader!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


# ----------------------------------------------------------------------------- data


@dataclass
class OperatorData:
    """Train and test arrays, float32: a_*, u_*: (samples, *spatial); inputs may carry a last
    channel axis, a_*: (samples, *spatial, channels) (e.g. u0 and a constant channel holding a
    coefficient; the uncertainty trainers take it, ``train_fno`` does not). ``periodic``: whether the
    functions are periodic (the dataset's ``periodic`` attr; training pads non-periodic data)."""

    a_train: np.ndarray
    u_train: np.ndarray
    a_test: np.ndarray
    u_test: np.ndarray
    periodic: bool = True

    @property
    def dim(self) -> int:
        return self.u_train.ndim - 1

    @property
    def spatial(self) -> tuple[int, ...]:
        return tuple(self.u_train.shape[1:])

    @property
    def in_channels(self) -> int:
        """Input channels: 1 when a has the shape of u, else the size of a's last axis."""
        return 1 if self.a_train.ndim == self.u_train.ndim else int(self.a_train.shape[-1])


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
    if d.a_train.ndim != d.u_train.ndim:
        raise ValueError(f"inputs of shape {d.a_train.shape} have a channel axis; train_fno takes one input "
                         f"function per sample (inputs with channels train with `uncertainty run fno`)")
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
    step = _make_step(apply, tx, loss, dropout)

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

        def scanned(carry, batch):
            params, opt_state, value = step(*carry, *batch)
            return (params, opt_state), value

        (params, opt_state), losses = jax.lax.scan(scanned, (params, opt_state), (ab, ub, step_keys))
        return params, opt_state, losses

    return jax.jit(epoch, donate_argnums=(0, 1))


def _make_chunk(apply: Callable[..., jax.Array], tx: optax.GradientTransformation, loss: str, dropout: bool,
                mesh: Mesh) -> Callable[..., tuple[Any, Any, jax.Array]]:
    """K steps in one compiled call: ``chunk(params, opt_state, A, U, keys) -> (params, opt_state,
    losses)`` with A, U: (K, batch, *spatial) (the batch axis sharded over ``mesh``'s "data"),
    keys: (K,) dropout keys or None, losses: (K,). A call has a fixed cost (on a CPU, ~20 ms for
    the FNO of benchmarks/distributed.py); K of them per call amortise it, as the memory path's
    epoch does.

    On one device the steps are ``_make_step``'s. On several, the chunk is written out with
    ``jax.shard_map``: each device takes the loss and gradient of its share of the batch, and
    the gradient (raveled into one vector, with the loss) is averaged by ONE all-reduce per
    step. The SPMD partitioner's version all-reduces every parameter array on its own; between
    processes on CPUs (gloo) each of those is a synchronisation, and the FNO's 19 of them cost
    more than its arithmetic (benchmarks/results/distributed.md). The mean over equal shares is
    the mean over the global batch, so the update is the single-device one up to the order of
    the sums. With dropout, each device folds its index into the key (the masks then depend on
    the device count)."""
    if mesh.size == 1:
        step = _make_step(apply, tx, loss, dropout)

        def chunk(params, opt_state, A, U, keys):
            def body(carry, xs):
                params, opt_state, value = step(*carry, xs[0], xs[1], xs[2] if dropout else None)
                return (params, opt_state), value

            (params, opt_state), losses = jax.lax.scan(body, (params, opt_state), (A, U, keys) if dropout else (A, U))
            return params, opt_state, losses

        return chunk

    from jax.flatten_util import ravel_pytree

    loss_fn = LOSSES[loss]
    n = mesh.size

    def local_step(params, opt_state, a_b, u_b, k):
        if dropout:
            k = jax.random.fold_in(k, jax.lax.axis_index("data"))

        def objective(p):
            return loss_fn(apply(p, a_b, key=k if dropout else None), u_b)

        value, grads = jax.value_and_grad(objective)(params)
        flat, unravel = ravel_pytree(grads)
        mean = jax.lax.psum(jnp.concatenate([flat, value[None].astype(flat.dtype)]), "data") / n
        updates, opt_state = tx.update(unravel(mean[:-1]), opt_state, params)
        return optax.apply_updates(params, updates), opt_state, mean[-1]

    def local_chunk(params, opt_state, A, U, *keys):
        def body(carry, xs):
            params, opt_state, value = local_step(*carry, xs[0], xs[1], xs[2] if dropout else None)
            return (params, opt_state), value

        (params, opt_state), losses = jax.lax.scan(body, (params, opt_state), (A, U, *keys))
        return params, opt_state, losses

    batch, rep = P(None, "data"), P()
    sharded = jax.shard_map(local_chunk, mesh=mesh, in_specs=(rep, rep, batch, batch) + ((rep,) if dropout else ()),
                            out_specs=(rep, rep, rep), check_vma=False)

    def chunk(params, opt_state, A, U, keys):
        return sharded(params, opt_state, A, U, *((keys,) if dropout else ()))

    return chunk


def _make_step(apply: Callable[..., jax.Array], tx: optax.GradientTransformation, loss: str,
               dropout: bool) -> Callable[..., tuple[Any, Any, jax.Array]]:
    """One AdamW step on one batch: ``step(params, opt_state, a_b, u_b, key) -> (params,
    opt_state, loss)`` (``key``: the dropout key, unused without dropout). The memory path
    scans it over an epoch, the streaming path over a chunk of K batches (``_make_chunk``)."""
    loss_fn = LOSSES[loss]

    def step(params, opt_state, a_b, u_b, k):
        def objective(p):
            return loss_fn(apply(p, a_b, key=k if dropout else None), u_b)

        value, grads = jax.value_and_grad(objective)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    return step


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
    feed = _open_feed(data, tcfg)
    try:
        return _train(feed, model_config, tcfg, out=out, resume=resume, callback=callback, progress=progress)
    finally:
        feed.close()


def checkpoint_due(epochs_done: int, tcfg: TrainConfig) -> bool:
    """Whether a run that has just finished ``epochs_done`` epochs saves a checkpoint: every
    ``checkpoint_every`` epochs and at the last."""
    return epochs_done % tcfg.checkpoint_every == 0 or epochs_done == tcfg.epochs


def check_resumable(where: str | Path, epochs_done: int, tcfg: TrainConfig) -> None:
    """ValueError when a checkpoint at ``epochs_done`` leaves nothing to train for ``tcfg.epochs``."""
    if epochs_done >= tcfg.epochs:
        raise ValueError(f"the checkpoint in {str(where)!r} is at epoch {epochs_done}, not before --epochs "
                         f"{tcfg.epochs}: nothing to resume")


def _train(feed: _MemoryFeed | _StreamFeed, model_config: FNOConfig | None, tcfg: TrainConfig, *,
           out: str | Path | None, resume: bool, callback: Callable[[dict[str, Any]], None] | None,
           progress: bool) -> tuple[FNO, list[dict[str, Any]]]:
    mcfg = dataclasses.replace(model_config or FNOConfig(), dim=feed.dim).resolved(feed.spatial, feed.periodic)
    if feed.n_train < tcfg.batch_size:
        raise ValueError(f"batch_size={tcfg.batch_size} is larger than the {feed.n_train} training samples")
    start_epoch, history = 0, []
    opt_state = None
    steps_per_epoch = feed.n_train // tcfg.batch_size
    tx = make_optimizer(tcfg, steps_per_epoch)
    data_info = {"spatial": list(feed.spatial), "n_train": feed.n_train, "n_test": feed.n_test}
    if resume:
        if out is None:
            raise ValueError("--resume needs the checkpoint directory (--out)")
        model, meta = _load_for_resume(out, feed.dim)
        mcfg = model.config
        check_modes(mcfg.modes, feed.spatial)
        _check_same_data(out, meta, data_info, model, feed.statistics())
        _, params_t = functional(model)
        model, opt_state, meta = load_checkpoint(out, tx.init(params_t))
        start_epoch, history = int(meta["epoch"]), list(meta.get("history", []))
        check_resumable(out, start_epoch, tcfg)
    else:
        check_modes(mcfg.modes, feed.spatial)
        model = FNO(mcfg, rngs=nnx.Rngs(tcfg.seed))
        st = feed.statistics()
        model.set_normalization(st.a_mean, st.a_std or 1.0, st.u_mean, st.u_std or 1.0)
    apply, params = functional(model)
    if opt_state is None:
        opt_state = tx.init(params)
    params, opt_state = feed.prepare(apply, tx, params, opt_state, dropout=mcfg.dropout > 0)
    eval_bs = max(1, min(feed.n_test, (1 << 22) // max(1, int(np.prod(feed.spatial)) * mcfg.width)))
    run_config = {"model": mcfg.to_dict(), "train": tcfg.to_dict(), "data": data_info}
    close = None
    if callback is None:
        callback, close = _tqdm_callback(tcfg.epochs, start_epoch, not progress)
    key = jax.random.key(tcfg.seed)
    elapsed = history[-1]["wall_time_s"] if history else 0.0
    lr_fn = _lr_fn(tcfg, steps_per_epoch)
    try:
        for epoch in range(start_epoch, tcfg.epochs):
            t0 = time.perf_counter()
            params, opt_state, train_loss = feed.epoch(params, opt_state, key, epoch)  # one host sync per epoch
            elapsed += time.perf_counter() - t0
            last = epoch == tcfg.epochs - 1
            test = feed.test_error(params, eval_bs) if ((epoch + 1) % tcfg.eval_every == 0 or last) else None
            rec = {"epoch": epoch + 1, "train_loss": train_loss, "test_rel_l2": test,
                   "lr": float(lr_fn((epoch + 1) * steps_per_epoch)), "wall_time_s": elapsed}
            if not math.isfinite(train_loss):
                from plumbing.cli import Failure

                kept = f"; the checkpoint in {str(out)!r} keeps the last one saved" if out is not None else ""
                raise Failure(f"training diverged at epoch {epoch + 1} (loss {train_loss}){kept}")
            history.append(rec)
            if out is not None and checkpoint_due(epoch + 1, tcfg):
                nnx.update(model, jax.device_get(params))  # collective: every process saves
                save_checkpoint(out, model, jax.device_get(opt_state), run_config=run_config,
                                epoch=epoch + 1, history=history)
            callback(rec)
    finally:
        if close is not None:
            close()
    nnx.update(model, jax.device_get(params))
    return model, history


def _check_same_data(out: str | Path, meta: dict[str, Any], data_info: dict[str, Any], model: FNO, st: Any) -> None:
    """ValueError when the checkpoint in ``out`` was trained on another dataset: another grid or
    sample count, or normalisation constants that are not this data's (within float32
    rounding and the summation order: 1e-4 of the standard deviation)."""
    saved = meta.get("data") or {}
    for key, value in data_info.items():
        if key in saved and saved[key] != value:
            raise ValueError(f"the checkpoint in {str(out)!r} is of another dataset: its {key} is {saved[key]}, "
                             f"this data's is {value}")
    for name, have, want, scale in (("input mean", model.a_mean.value, st.a_mean, st.a_std),
                                    ("input std", model.a_std.value, st.a_std, st.a_std),
                                    ("target mean", model.u_mean.value, st.u_mean, st.u_std),
                                    ("target std", model.u_std.value, st.u_std, st.u_std)):
        have = float(np.asarray(have))
        if abs(have - want) > 1e-4 * max(abs(scale), 1e-12):
            raise ValueError(f"the checkpoint in {str(out)!r} is of another dataset: its {name} is {have:.6g}, "
                             f"this data's is {want:.6g}")


# ----------------------------------------------------------------------------- feeding the data


def choose_loader(loader: str, data: Any) -> str:
    """"memory" or "stream" for ``TrainConfig.loader`` and the data (see the module doc)."""
    if loader != "auto":
        return loader
    if jax.process_count() > 1:
        return "stream"
    if isinstance(data, str | Path):
        from operators.loader import available_memory, file_nbytes

        # on disk float64 a and u; in memory the xarray load (float64) plus the float32 copies
        return "stream" if 4 * file_nbytes(data) > available_memory() else "memory"
    return "memory"


def _open_feed(data: Any, tcfg: TrainConfig) -> _MemoryFeed | _StreamFeed:
    if choose_loader(tcfg.loader, data) == "memory":
        return _MemoryFeed(load_operator_data(data, tcfg.nx), tcfg)
    from operators.loader import open_source

    return _StreamFeed(open_source(data, tcfg.nx), tcfg)


class _MemoryFeed:
    """The whole training set on the devices; one compiled call per epoch (``make_train_epoch``).
    With several processes every process holds the whole set (replicated on the global mesh)."""

    def __init__(self, d: OperatorData, tcfg: TrainConfig) -> None:
        self.d, self.tcfg = d, tcfg
        self.spatial, self.dim, self.periodic = d.spatial, d.dim, d.periodic
        self.n_train, self.n_test = int(d.a_train.shape[0]), int(d.a_test.shape[0])

    def statistics(self) -> Any:
        from operators.loader import Statistics

        d = self.d
        return Statistics(float(d.a_train.mean()), float(d.a_train.std()), float(d.u_train.mean()),
                          float(d.u_train.std()))

    def prepare(self, apply: Callable[..., jax.Array], tx: optax.GradientTransformation, params: Any,
                opt_state: Any, *, dropout: bool) -> tuple[Any, Any]:
        tcfg, d = self.tcfg, self.d
        mesh = _mesh(tcfg)
        self.epoch_fn = make_train_epoch(apply, tx, batch_size=tcfg.batch_size, loss=tcfg.loss, dropout=dropout,
                                         mesh=mesh)
        if mesh is not None:
            from plumbing.distributed import put

            rep = NamedSharding(mesh, P())  # put: jax.device_put, or each process its own copy
            params, opt_state = put((params, opt_state), rep)
            self.a_tr, self.u_tr = put((d.a_train, d.u_train), rep)
        else:
            self.a_tr, self.u_tr = jnp.asarray(d.a_train), jnp.asarray(d.u_train)
        self.eval_fn = jax.jit(lambda p, a, u: rel_l2_per_sample(apply(p, a), u))
        return params, opt_state

    def epoch(self, params: Any, opt_state: Any, key: jax.Array, epoch: int) -> tuple[Any, Any, float]:
        params, opt_state, losses = self.epoch_fn(params, opt_state, jax.random.fold_in(key, epoch), self.a_tr,
                                                  self.u_tr)
        return params, opt_state, float(jnp.mean(losses))

    def test_error(self, params: Any, eval_bs: int) -> float:
        d = self.d
        errs = [np.asarray(self.eval_fn(params, jnp.asarray(d.a_test[i:i + eval_bs]), jnp.asarray(d.u_test[i:i + eval_bs])))
                for i in range(0, d.a_test.shape[0], eval_bs)]
        return float(np.mean(np.concatenate(errs)))

    def close(self) -> None:
        pass


class _StreamFeed:
    """This process reads its rows of every global batch (``operators.loader``, a background
    thread one or two chunks of K batches ahead) and K steps run per compiled call over the
    global mesh (``_make_chunk``)."""

    PREFETCH = 2  # chunks read ahead
    IN_FLIGHT = 2  # chunks dispatched ahead of the host (bounds the batches held by the devices)
    MAX_CHUNK = 8  # steps per compiled call
    CHUNK_BYTES = 64 << 20  # at most this many bytes of batches per chunk and process

    def __init__(self, source: Any, tcfg: TrainConfig) -> None:
        self.source, self.tcfg = source, tcfg
        self.spatial, self.dim, self.periodic = source.spatial, source.dim, source.periodic
        self.n_train, self.n_test = source.n_train, source.n_test
        self._stats = None

    def statistics(self) -> Any:
        if self._stats is None:
            from operators.loader import statistics
            from plumbing.distributed import allsum

            self._stats = statistics(self.source, jax.process_index(), jax.process_count(), allsum)
        return self._stats

    def prepare(self, apply: Callable[..., jax.Array], tx: optax.GradientTransformation, params: Any,
                opt_state: Any, *, dropout: bool) -> tuple[Any, Any]:
        from plumbing.distributed import global_devices, put

        tcfg = self.tcfg
        devices = global_devices() if tcfg.data_parallel else jax.local_devices()[:1]
        if tcfg.batch_size % len(devices):
            raise ValueError(f"batch_size={tcfg.batch_size} is not divisible by the {len(devices)} devices")
        mesh = Mesh(np.array(devices), ("data",))
        self.batch_sharding = NamedSharding(mesh, P("data"))
        spans = [idx[0] for idx in self.batch_sharding.addressable_devices_indices_map((tcfg.batch_size,)).values()]
        self.rows = (min(s.start or 0 for s in spans), max(tcfg.batch_size if s.stop is None else s.stop for s in spans))
        chunk = _make_chunk(apply, tx, tcfg.loss, dropout, mesh)
        self.dropout = dropout
        per_batch = (self.rows[1] - self.rows[0]) * int(np.prod(self.spatial)) * 4 * 2  # a and u, float32
        self.k = max(1, min(self.MAX_CHUNK, self.CHUNK_BYTES // max(per_batch, 1)))
        self.chunk_sharding = NamedSharding(mesh, P(None, "data"))

        def keyed(params, opt_state, A, U, key_data):
            keys = jax.random.wrap_key_data(key_data) if key_data is not None else None
            return chunk(params, opt_state, A, U, keys)

        self.chunk_fn = jax.jit(keyed, donate_argnums=(0, 1))
        self.eval_fn = jax.jit(lambda p, a, u: rel_l2_per_sample(apply(p, a), u))
        return put((params, opt_state), NamedSharding(mesh, P()))

    def epoch(self, params: Any, opt_state: Any, key: jax.Array, epoch: int) -> tuple[Any, Any, float]:
        from operators.loader import Prefetch

        bs, (lo, hi), k = self.tcfg.batch_size, self.rows, self.k
        n_batches = self.n_train // bs
        perm_key, drop_key = jax.random.split(jax.random.fold_in(key, epoch))  # as make_train_epoch
        perm = np.asarray(jax.random.permutation(perm_key, self.n_train))[: n_batches * bs]
        key_data = np.asarray(jax.random.key_data(jax.random.split(drop_key, n_batches))) if self.dropout else None
        starts = list(range(0, n_batches, k))

        def read(c: int) -> tuple[np.ndarray, np.ndarray]:
            batches = range(starts[c], min(starts[c] + k, n_batches))
            rows = np.concatenate([perm[b * bs + lo:b * bs + hi] for b in batches])
            a, u = self.source.read("train", rows)
            return a.reshape(len(batches), hi - lo, *self.spatial), u.reshape(len(batches), hi - lo, *self.spatial)

        losses: list[jax.Array] = []
        with Prefetch(read, len(starts), self.PREFETCH) as chunks:
            for c, (a_l, u_l) in enumerate(chunks):
                shape = (a_l.shape[0], bs, *self.spatial)
                A = jax.make_array_from_process_local_data(self.chunk_sharding, a_l, shape)
                U = jax.make_array_from_process_local_data(self.chunk_sharding, u_l, shape)
                kd = None if key_data is None else key_data[starts[c]:starts[c] + a_l.shape[0]]
                params, opt_state, loss = self.chunk_fn(params, opt_state, A, U, kd)
                losses.append(loss)
                if c >= self.IN_FLIGHT:
                    losses[c - self.IN_FLIGHT].block_until_ready()
        # the losses are replicated: their float32 mean on the host (no program to compile)
        return params, opt_state, float(np.mean(np.concatenate([np.asarray(x) for x in jax.device_get(losses)]),
                                                 dtype=np.float32))

    def test_error(self, params: Any, eval_bs: int) -> float:
        """Mean relative L2 error over the test part: each process its contiguous share, on its
        own copy of the (replicated) parameters, the sums added over the processes."""
        from operators.loader import share
        from plumbing.distributed import allsum

        local = jax.tree.map(lambda x: x.addressable_data(0), params)
        lo, hi = share(self.n_test, jax.process_index(), jax.process_count())
        total = 0.0
        for i in range(lo, hi, eval_bs):
            a, u = self.source.read("test", np.arange(i, min(i + eval_bs, hi)))
            total += float(np.sum(np.asarray(self.eval_fn(local, a, u), dtype=np.float64)))
        return float(allsum([total])[0] / self.n_test)

    def close(self) -> None:
        self.source.close()


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

