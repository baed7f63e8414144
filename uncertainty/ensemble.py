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
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

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


def member_mesh(members: int) -> Any | None:
    """A 1-D device mesh over the member axis: the first d devices, d the largest divisor of M
    that is at most the device count; None when that is 1 (one device, or M prime and larger)."""
    devices = jax.devices()
    d = max(k for k in range(1, min(len(devices), members) + 1) if members % k == 0)
    if d < 2:
        return None
    from jax.sharding import Mesh

    return Mesh(np.array(devices[:d]), ("member",))


def spread_over_cpu_cores() -> None:
    """Make every CPU core a JAX CPU device (``jax_num_cpu_devices``), so that an ensemble on
    a CPU shards its members over the cores (``member_mesh``): one model keeps a 2-core CPU
    only ~1.3x busier than one core, members on their own cores use both fully (M = 8, heat
    preset, Adam: 22.5 against 34 ms a step). Takes effect only before JAX's first operation
    (the ``uncertainty run`` command calls it first); later it changes nothing. Accelerators
    are unaffected: JAX's default devices stay the GPUs."""
    import os

    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return  # the user chose the CPU devices
    try:
        jax.config.update("jax_num_cpu_devices", os.cpu_count() or 1)
    except RuntimeError:  # JAX has started: its devices stay as they are
        pass


def shard_members(tree: Any, mesh: Any | None) -> Any:
    """Place every leaf's leading (member) axis across the mesh; no-op without a mesh."""
    if mesh is None:
        return tree
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    def put(leaf: Any) -> Any:
        if not hasattr(leaf, "ndim") or leaf.ndim == 0:
            return leaf
        return jax.device_put(leaf, NamedSharding(mesh, P("member")))

    return jax.tree.map(put, tree)


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
) -> EnsembleFit:
    """Train M >= 1 PINNs of ``problem`` under ``config`` (a ``pdes.pinn.configs.PINNConfig``);
    M = 1 is the single-model baseline of the benchmarks.

    Adam for ``steps`` (default config.steps) in chunks of ``chunk`` steps (default
    config.log_every), then, when ``qn`` and config.qn_steps > 0, the PINN's quasi-Newton
    phase (``PINN.qn_chunk``: BFGS / L-BFGS on a batch redrawn every qn_resample_every steps,
    in config.qn_dtype); every phase is one compiled program. A member whose quasi-Newton
    chunk turns non-finite keeps its last finite parameters (a per-member NaN guard).

    ``member_batch``: how many members the quasi-Newton phase vmaps at once; groups run one
    after another in the same program (``jax.lax.map``), and with a device mesh each device
    does so for its own members. Default (None): all members at once on accelerators, one at
    a time on CPUs, where a vmapped line search runs every member until the slowest is done
    and the members' working set falls out of cache (M = 8 on the heat preset: 176 ms a step
    one at a time against 365 ms vmapped, same results; ``benchmarks/results/uncertainty.md``)."""
    from pdes.pinn.core import build_pinn
    from pdes.pinn.precision import x64_if

    if isinstance(members, bool) or not isinstance(members, int | np.integer) or members < 1:
        raise ValueError(f"members must be a positive integer, got {members!r}")
    m = int(members)
    if steps is not None:
        config = dataclasses.replace(config, steps=int(steps))
    pinn = build_pinn(problem, config)  # validates before any jit
    member_batch = _member_batch(member_batch, m)
    # a float64 config trains in float64 from the start, as pdes.pinn.train does
    with x64_if(config.dtype == "float64"):
        return _train_pinn_members(pinn, m, key, chunk, shard, progress, qn, member_batch)


def _train_pinn_members(pinn: Any, m: int, key: jax.Array, chunk: int | None, shard: bool, progress: bool,
                        qn: bool, member_batch: int) -> EnsembleFit:
    config = pinn.config
    n_total = config.steps
    chunk = int(chunk or min(config.log_every, n_total))
    init_key, train_key, qn_key = jax.random.split(key, 3)
    qn_steps = int(getattr(config, "qn_steps", 0)) if hasattr(pinn, "qn_chunk") else 0
    mesh = member_mesh(m) if shard else None

    start = time.perf_counter()
    params = jax.jit(jax.vmap(pinn.init))(jax.random.split(init_key, m))
    state = jax.jit(jax.vmap(pinn.init_train_state))(params, jax.random.split(train_key, m))
    state = shard_members(state, mesh)
    history: list[np.ndarray] = []
    bar = _bar(n_total + (qn_steps if qn else 0), f"ensemble x{m}", progress)
    done = 0
    while done < n_total:
        n = min(chunk, n_total - done)
        state, metrics = _program(pinn, "adam", n, lambda n=n: jax.vmap(partial(pinn.adam_chunk, n_steps=n)))(state)
        loss = np.asarray(metrics["loss"])  # one host sync per chunk
        history.append(loss)
        done += n
        bar.update(n)
        bar.set_postfix(loss=f"{float(np.median(loss)):.2e}")
    params = state.params
    if qn and qn_steps > 0:
        params = _qn_phase(pinn, params, state.weights, qn_key, m, chunk, bar, history, member_batch, mesh)
    jax.block_until_ready(params)
    bar.close()
    return EnsembleFit(pinn, params, history, time.perf_counter() - start, m)


def _program(pinn: Any, phase: str, n: int, make: Callable[[], Callable]) -> Callable:
    """The jitted ``phase`` chunk of n steps over the members, made once per PINN (``build_pinn``
    returns the same PINN for the same problem and config), so a second ensemble of the same
    config and size in one process compiles nothing."""
    key = ("ensemble", phase, n)
    if key not in pinn._jit:
        pinn._jit[key] = jax.jit(make())
    return pinn._jit[key]


def _member_batch(member_batch: int | None, m: int) -> int:
    """Members vmapped at once in the quasi-Newton phase (see ``train_pinn_members``)."""
    if member_batch is None:
        return 1 if jax.default_backend() == "cpu" else m
    if isinstance(member_batch, bool) or not isinstance(member_batch, int | np.integer) or member_batch < 1:
        raise ValueError(f"member_batch must be a positive integer, got {member_batch!r}")
    return min(int(member_batch), m)


def _map_members(run: Callable, member_batch: int, mesh: Any | None) -> Callable:
    """run(p, o, w, b, k, fresh) over the leading member axis of (p, o, w, b, k): ``member_batch``
    members vmapped at a time, the groups in sequence (``jax.lax.map``); with a mesh, every
    device maps over its own members (``jax.shard_map``)."""

    def local(p, o, w, b, k, fresh):
        if member_batch > 1 and member_batch >= jax.tree.leaves(p)[0].shape[0]:
            return jax.vmap(run, in_axes=(0, 0, 0, 0, 0, None))(p, o, w, b, k, fresh)
        # one at a time runs the plain (unbatched) program: a vmapped line search, even over one
        # member, costs ~1.6x on a CPU (34.5 against 21.6 ms a step, heat preset)
        return jax.lax.map(lambda a: run(*a, fresh), (p, o, w, b, k),
                           batch_size=member_batch if member_batch > 1 else None)

    if mesh is None:
        return local
    from jax.sharding import PartitionSpec as P

    spec = P("member")
    return jax.shard_map(local, mesh=mesh, in_specs=(spec,) * 5 + (P(),), out_specs=spec, check_vma=False)


def _qn_phase(
    pinn: Any,
    params: Any,
    weights: Any,
    key: jax.Array,
    m: int,
    chunk: int,
    bar: Any,
    history: list,
    member_batch: int,
    mesh: Any | None,
) -> Any:
    """The quasi-Newton phase of every member at once; returns params in their Adam dtype."""
    from pdes.pinn.precision import cast_floats, x64_if

    config = pinn.config
    dtype = jax.tree.leaves(params)[0].dtype
    x64 = config.qn_dtype == "float64"
    with x64_if(x64):
        qdt = jnp.float64 if x64 else jnp.float32
        params, weights = cast_floats(params, qdt), cast_floats(weights, qdt)
        opt_state, batch = jax.jit(jax.vmap(pinn.init_qn))(params)
        keys = jax.random.split(key, m)

        def guarded(n: int) -> Callable:
            def run(p, o, w, b, k, fresh):
                new_p, new_o, new_b, metrics = pinn.qn_chunk(p, o, w, b, k, fresh, n)
                ok = jnp.isfinite(metrics["loss"]) & jnp.all(
                    jnp.stack([jnp.all(jnp.isfinite(a)) for a in jax.tree.leaves(new_p)])
                )
                pick = partial(jax.tree.map, lambda a, b_: jnp.where(ok, a, b_))
                return pick(new_p, p), pick(new_o, o), pick(new_b, b), metrics["loss"]

            return _map_members(run, member_batch, mesh)

        total, done, fresh = config.qn_steps, 0, True
        every = config.qn_resample_every
        while done < total:
            fresh = fresh or done % every == 0
            n = min(chunk, total - done, every - done % every)
            step_keys = jax.vmap(lambda k, d=done: jax.random.fold_in(k, d))(keys)
            program = _program(pinn, f"qn/{member_batch}/{mesh is not None}", n, lambda n=n: guarded(n))
            params, opt_state, batch, loss = program(
                params, opt_state, weights, batch, step_keys, jnp.asarray(fresh)
            )
            fresh = False
            history.append(np.asarray(loss))
            done += n
            bar.update(n)
            bar.set_postfix(loss=f"{float(np.median(history[-1])):.2e}")
        return jax.block_until_ready(cast_floats(params, dtype))


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
) -> EnsembleFit:
    """Train M >= 1 FNOs (``operators``) on ``data`` (``operators.train.OperatorData``) as one program.

    All members share the normalisation constants of the training data (scalars, as in
    ``operators.train.train_fno``) and train_config's schedule; each has its own
    initialization and its own shuffles. ``apply``: a factory template -> pure apply that
    replaces the model's own (MC dropout passes ``fno_apply_channel_dropout``). Returns the
    template model in ``model`` and the apply function in ``extra['apply']``."""
    from flax import nnx

    from operators.models import FNO, functional
    from operators.train import make_optimizer, make_train_epoch

    if isinstance(members, bool) or not isinstance(members, int | np.integer) or members < 1:
        raise ValueError(f"members must be a positive integer, got {members!r}")
    m = int(members)
    if data.a_train.shape[0] < train_config.batch_size:
        raise ValueError(
            f"batch_size={train_config.batch_size} is larger than the {data.a_train.shape[0]} training samples"
        )
    cfg = dataclasses.replace(model_config, dim=data.dim)
    template = FNO(cfg, rngs=nnx.Rngs(0))
    template.set_normalization(
        float(data.a_train.mean()),
        float(data.a_train.std()) or 1.0,
        float(data.u_train.mean()),
        float(data.u_train.std()) or 1.0,
    )
    apply = apply(template) if apply is not None else functional(template)[0]
    steps_per_epoch = data.a_train.shape[0] // train_config.batch_size
    tx = make_optimizer(train_config, steps_per_epoch)
    init_key, train_key = jax.random.split(key)
    mesh = member_mesh(m) if shard else None

    def init(k: jax.Array) -> Any:
        return nnx.split(FNO(cfg, rngs=nnx.Rngs(k)), nnx.Param, ...)[1]

    start = time.perf_counter()
    params = jax.jit(jax.vmap(init))(jax.random.split(init_key, m))
    opt_state = jax.jit(jax.vmap(tx.init))(params)
    params, opt_state = shard_members((params, opt_state), mesh)
    epoch = make_train_epoch(
        apply, tx, batch_size=train_config.batch_size, loss=train_config.loss, dropout=cfg.dropout > 0
    )
    run_epoch = jax.jit(jax.vmap(epoch, in_axes=(0, 0, 0, None, None)))
    a_tr, u_tr = jnp.asarray(data.a_train), jnp.asarray(data.u_train)
    history: list[np.ndarray] = []
    bar = _bar(train_config.epochs, f"FNO ensemble x{m}", progress)
    bar.unit = "epoch"
    for e in range(train_config.epochs):
        keys = jax.vmap(lambda k, e=e: jax.random.fold_in(k, e))(jax.random.split(train_key, m))
        params, opt_state, losses = run_epoch(params, opt_state, keys, a_tr, u_tr)
        last = np.asarray(losses[:, -1])
        history.append(last)
        bar.update(1)
        bar.set_postfix(loss=f"{float(np.median(last)):.3e}")
    jax.block_until_ready(params)
    bar.close()
    return EnsembleFit(template, params, history, time.perf_counter() - start, m, {"apply": apply})


def predict_fno_members(apply: Callable, params: Any, a: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Every member's prediction for inputs a (n, *spatial): (M, n, *spatial), float64."""
    fn = jax.jit(jax.vmap(lambda p, x: apply(p, x), in_axes=(0, None)))
    outs = [
        np.asarray(fn(params, jnp.asarray(a[i : i + batch_size], jnp.float32)))
        for i in range(0, a.shape[0], batch_size)
    ]
    return np.concatenate(outs, axis=1).astype(np.float64)
