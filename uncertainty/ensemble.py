"""Deep ensembles (Lakshminarayanan, Pritzel & Blundell 2017) of PINNs and FNOs.

M members are trained as ONE compiled program: the members' parameters are stacked along a
leading axis and the pure training step of the model (``pdes.pinn.core.PINN.adam_chunk``,
``operators.train.make_train_epoch``) is ``jax.vmap``-ed over that axis. Each member gets
its own initialization key and its own stream of collocation points / batch shuffles.
With several devices and ``shard=True`` the member axis is sharded over a 1-D mesh
("member"), so each device trains M / n_devices members.

The ensemble's predictive distribution is the uniform mixture of its members. For members
with means mu_m and variances s_m^2 (s_m = 0 without a Gaussian likelihood head)::

    mean = (1/M) sum_m mu_m
    var  = (1/M) sum_m s_m^2  +  (1/M) sum_m (mu_m - mean)^2     (``mixture_moments``)

i.e. mean of member variances (aleatoric) plus variance of member means (epistemic).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from pdes.pinn.phases import init_members, member_mesh, shard_members

__all__ = [
    "EnsembleFit",
    "check_members",
    "fno_ensemble",
    "member_mesh",
    "mixture_moments",
    "pinn_ensemble",
    "predict_pinn_members",
    "shard_members",
    "spread_over_cpu_cores",
    "predict_fno_members",
    "train_fno_members",
    "train_pinn_members",
]


def check_members(members: Any, what: str = "members") -> int:
    """M as an int >= 2 (an ensemble or a set of dropout draws needs two to have a spread)."""
    if isinstance(members, bool) or not isinstance(members, int | np.integer) or members < 2:
        raise ValueError(f"{what} must be an integer >= 2, got {members!r}")
    return int(members)


def mixture_moments(means: Any, variances: Any | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of the uniform mixture of M Gaussians. means, variances: (M, ...).

    var = mean over members of variances + population variance (ddof 0) of the means."""
    mu = np.asarray(means, dtype=np.float64)
    if mu.ndim < 1 or mu.shape[0] < 1:
        raise ValueError(f"means must have a leading member axis, got shape {mu.shape}")
    mean = mu.mean(axis=0)
    var = ((mu - mean) ** 2).mean(axis=0)
    if variances is not None:
        v = np.asarray(variances, dtype=np.float64)
        if v.shape != mu.shape:
            raise ValueError(f"variances have shape {v.shape}, means {mu.shape}")
        if np.any(v < 0):
            raise ValueError("variances must be non-negative")
        var = var + v.mean(axis=0)
    return mean, var


def spread_over_cpu_cores() -> None:
    """Make every CPU core a JAX CPU device (``jax_num_cpu_devices``), so that an ensemble on
    a CPU shards its members over the cores (``member_mesh``): one model keeps a multi-core CPU
    only partly busy, members on their own cores use every core. Takes effect only before
    JAX's first operation (the ``uncertainty run`` command calls it first); later it changes
    nothing. Accelerators are unaffected: JAX's default devices stay the GPUs."""
    import os

    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return  # the user chose the CPU devices
    try:
        jax.config.update("jax_num_cpu_devices", os.cpu_count() or 1)
    except RuntimeError:  # JAX has started: its devices stay as they are
        pass


@dataclass
class EnsembleFit:
    """A trained ensemble: the model, stacked member parameters (leading axis M), the loss
    history (one (M,) array per logged chunk) and the training wall time in seconds."""

    model: Any
    params: Any
    history: list[np.ndarray]
    wall_time_s: float
    members: int
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


def _bar(total: int, desc: str, progress: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="step", file=sys.stderr, disable=not progress)


# --------------------------------------------------------------------------- PINN


def pinn_ensemble(problem: Any, config: Any, *, members: int, key: jax.Array, **kwargs: Any) -> EnsembleFit:
    """Train an ensemble of M >= 2 PINNs (see ``train_pinn_members``)."""
    return train_pinn_members(problem, config, members=check_members(members), key=key, **kwargs)


def train_pinn_members(
    problem: Any,
    config: Any,
    *,
    members: int,
    key: jax.Array,
    steps: int | None = None,
    chunk: int | None = None,
    shard: bool = True,
    progress: bool = True,
    qn: bool = True,
    member_batch: int | None = None,
    checkpoint_dir: Any = None,
    resume: Any = None,
) -> EnsembleFit:
    """Train M >= 1 PINNs of ``problem`` under ``config`` (a ``pdes.pinn.PINNConfig``) as one
    program; M = 1 is the single-model baseline of the benchmarks.

    The phases and the driver are the forward trainer's (``pdes.pinn.phases.fit`` with M
    stacked members): Adam for ``steps`` (default adam.steps) in chunks of ``chunk`` steps
    (default run.log_every), then, when ``qn`` and qn.steps > 0, the quasi-Newton phase; a
    member whose quasi-Newton chunk turns non-finite keeps its last finite parameters.
    ``member_batch``: members vmapped at once in the quasi-Newton phase (default: all on
    accelerators, one at a time on CPUs; ``pdes.pinn.phases.default_member_batch``); with a
    device mesh (``shard``) each device trains its own members. ``checkpoint_dir``/``resume``:
    checkpoints of the stacked members (``plumbing.checkpoint``)."""
    from pdes.pinn.core import build_pinn
    from pdes.pinn.driver import progress_bar
    from pdes.pinn.phases import default_member_batch, fit
    from pdes.pinn.precision import cast_floats, x64_if
    from pdes.pinn.train import check_one_dimensional, checkpoint_identity
    from plumbing.distributed import gathered

    if isinstance(members, bool) or not isinstance(members, int | np.integer) or members < 1:
        raise ValueError(f"members must be a positive integer, got {members!r}")
    m = int(members)
    changes: dict[str, Any] = {}
    if steps is not None:
        changes["adam.steps"] = int(steps)
    if chunk is not None:
        changes["run.log_every"] = int(chunk)
    if not qn:
        changes["qn.steps"] = 0
    config = config.updated(changes) if changes else config
    check_one_dimensional(problem, "PINN ensembles work")
    pinn = build_pinn(problem, config)  # validates before any jit
    member_batch = default_member_batch(member_batch, m)
    mesh = member_mesh(m) if shard else None
    init_key, train_key, qn_key = jax.random.split(key, 3)
    adam_steps = config.adam.steps
    start = time.perf_counter()
    # a float64 config trains in float64 from the start, as pdes.pinn.train does
    with x64_if(config.network.dtype == "float64"):
        params = init_members(pinn.init, jax.random.split(init_key, m))
        state = jax.vmap(pinn.init_train_state)(params, jax.random.split(train_key, m))
        dtype = jax.tree.leaves(params)[0].dtype
    state = shard_members(state, mesh)
    qn_keys = jax.random.split(qn_key, m)

    def member_keys(step: int) -> jax.Array:
        return jax.vmap(lambda k: jax.random.fold_in(k, step - adam_steps))(qn_keys)

    history: list[np.ndarray] = []

    def record(metrics: dict[str, Any], p: Any, phase: int, step: int) -> dict[str, Any]:
        loss = np.asarray(metrics["loss"], dtype=np.float64)
        history.append(loss)
        return {"step": step, "phase": phase, "loss": loss}

    identity = checkpoint_identity(pinn, members=m, seed_key=np.asarray(jax.random.key_data(key)).tolist())
    bar, close = progress_bar(config.adam.steps + config.qn.steps, 0, f"ensemble x{m}", progress, show=("loss",))
    try:
        result, _ = fit(pinn, state, qn_key=member_keys, members=m, member_batch=member_batch, mesh=mesh,
                        record=record, callbacks=[bar], checkpoint_dir=checkpoint_dir, resume=resume,
                        meta={**identity, "config": config.to_dict()}, expect=identity, prog="uncertainty")
    finally:
        close()
    if not result.completed:
        from plumbing.cli import Failure

        raise Failure(f"ensemble training stopped: {result.stopped}")
    with x64_if(config.qn.dtype == "float64" or config.network.dtype == "float64"):
        # members sharded over processes: every process gets all of them (one process: as they are)
        params = jax.block_until_ready(cast_floats(gathered(result.state.params), dtype))
    return EnsembleFit(pinn, params, history, time.perf_counter() - start, m)


def predict_pinn_members(pinn: Any, params: Any, t: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Every member's u on the grid t x x: (M, nt, nx), float64."""
    from pdes.pinn.precision import uses_float64, x64_if

    with x64_if(uses_float64(params)):
        fn = jax.jit(jax.vmap(pinn.predict_grid, in_axes=(0, None, None)))
        return np.asarray(fn(params, np.asarray(t), np.asarray(x)), dtype=np.float64)


# --------------------------------------------------------------------------- FNO


def fno_ensemble(
    data: Any, model_config: Any, train_config: Any, *, members: int, key: jax.Array, **kwargs: Any
) -> EnsembleFit:
    """Train an ensemble of M >= 2 FNOs (see ``train_fno_members``)."""
    return train_fno_members(
        data, model_config, train_config, members=check_members(members), key=key, **kwargs
    )


def train_fno_members(
    data: Any,
    model_config: Any,
    train_config: Any,
    *,
    members: int,
    key: jax.Array,
    progress: bool = True,
    shard: bool = True,
    apply: Callable[[Any], Callable] | None = None,
    checkpoint_dir: Any = None,
    resume: Any = None,
) -> EnsembleFit:
    """Train M >= 1 FNOs (``operators``) on ``data`` (``operators.train.OperatorData``) as one program.

    All members share the normalisation constants of the training data (scalars, as in
    ``operators.train.train_fno``; per channel for inputs with channels) and train_config's schedule; each has its own
    initialization and its own shuffles. ``apply``: a factory template -> pure apply that
    replaces the model's own (MC dropout passes ``fno_apply_channel_dropout``). Returns the
    template model in ``model`` and the apply function in ``extra['apply']``.

    ``checkpoint_dir``: the stacked members' parameters and optimizer state are saved there
    (``plumbing.checkpoint``, collectively) every ``train_config.checkpoint_every`` epochs and
    at the last; ``resume``: a folder of such checkpoints to continue from (the same members,
    model, data and seed, else a one-line ValueError). Each epoch's shuffles derive from the
    seed and the epoch number, so a resumed run follows the uninterrupted one."""
    from flax import nnx

    from operators.models import FNO, functional, input_statistics, normalization_values
    from operators.train import check_resumable, checkpoint_due, make_optimizer, make_train_epoch
    from plumbing.distributed import gathered, put

    if isinstance(members, bool) or not isinstance(members, int | np.integer) or members < 1:
        raise ValueError(f"members must be a positive integer, got {members!r}")
    m = int(members)
    if data.a_train.shape[0] < train_config.batch_size:
        raise ValueError(
            f"batch_size={train_config.batch_size} is larger than the {data.a_train.shape[0]} training samples"
        )
    cfg = dataclasses.replace(model_config, dim=data.dim, in_channels=data.in_channels).resolved(data.spatial,
                                                                                               data.periodic)
    template = FNO(cfg, rngs=nnx.Rngs(0))
    template.set_normalization(*input_statistics(data.a_train, data.in_channels), float(data.u_train.mean()),
                               float(data.u_train.std()) or 1.0)
    apply = apply(template) if apply is not None else functional(template)[0]
    steps_per_epoch = data.a_train.shape[0] // train_config.batch_size
    tx = make_optimizer(train_config, steps_per_epoch)
    init_key, train_key = jax.random.split(key)
    mesh = member_mesh(m) if shard else None

    start = time.perf_counter()
    params = init_members(lambda k: nnx.split(FNO(cfg, rngs=nnx.Rngs(k)), nnx.Param, ...)[1],
                          jax.random.split(init_key, m))
    opt_state = jax.vmap(tx.init)(params)
    params, opt_state = shard_members((params, opt_state), mesh)
    epoch = make_train_epoch(
        apply, tx, batch_size=train_config.batch_size, loss=train_config.loss, dropout=cfg.dropout > 0
    )
    run_epoch = jax.jit(jax.vmap(epoch, in_axes=(0, 0, 0, None, None)))
    a_tr, u_tr = jnp.asarray(data.a_train), jnp.asarray(data.u_train)
    spread = mesh is not None and jax.process_count() > 1  # members over processes: the data on every one
    if spread:
        from jax.sharding import NamedSharding
        from jax.sharding import PartitionSpec as P

        a_tr, u_tr = put((a_tr, u_tr), NamedSharding(mesh, P()))
    history: list[np.ndarray] = []
    identity = {"kind": "fno_members", "members": m, "model": cfg.to_dict(), "dim": int(data.dim),
                "train_shape": [int(n) for n in data.a_train.shape],
                "normalization": list(normalization_values(template)),
                "seed_key": np.asarray(jax.random.key_data(key)).tolist(), "batch_size": int(train_config.batch_size)}
    first = 0
    if resume is not None:  # the run and the epoch checked on the meta, before any array is read
        from plumbing.checkpoint import check_meta, read_meta, restore

        meta = read_meta(resume)
        check_meta(meta, identity, repr(str(resume)))
        first = int(meta["epoch"])
        check_resumable(resume, first, train_config)
        got, _ = restore(resume, {"state": (params, opt_state)}, step=meta["step"])
        params, opt_state = got["state"]
        history = [np.asarray(h, dtype=np.float64) for h in meta["history"]]
    bar = _bar(train_config.epochs, f"FNO ensemble x{m}", progress)
    bar.unit = "epoch"
    bar.update(first)
    for e in range(first, train_config.epochs):
        keys = jax.vmap(lambda k, e=e: jax.random.fold_in(k, e))(jax.random.split(train_key, m))
        params, opt_state, losses = run_epoch(params, opt_state, shard_members(keys, mesh) if spread else keys,
                                              a_tr, u_tr)
        last = np.asarray(gathered(losses[:, -1]))
        history.append(last)
        bar.update(1)
        bar.set_postfix(loss=f"{float(np.median(last)):.3e}")
        if checkpoint_dir is not None and checkpoint_due(e + 1, train_config):
            from plumbing.checkpoint import save

            save(checkpoint_dir, e + 1, {"state": (params, opt_state)},
                 {**identity, "epoch": e + 1, "history": [h.tolist() for h in history],
                  "train": train_config.to_dict()})
    jax.block_until_ready(params)
    bar.close()
    # members sharded over processes: the results gathered on every process (one process: as they are)
    return EnsembleFit(template, gathered(params), history, time.perf_counter() - start, m, {"apply": apply})


def predict_fno_members(apply: Callable, params: Any, a: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Every member's prediction for inputs a (n, *spatial): (M, n, *spatial), float64."""
    fn = jax.jit(jax.vmap(lambda p, x: apply(p, x), in_axes=(0, None)))
    outs = [
        np.asarray(fn(params, jnp.asarray(a[i : i + batch_size], jnp.float32)))
        for i in range(0, a.shape[0], batch_size)
    ]
    return np.concatenate(outs, axis=1).astype(np.float64)
