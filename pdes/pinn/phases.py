"""The two phases of PINN training (Adam, then quasi-Newton) as ``driver.Phase`` objects, for
one model or for M members stacked along a leading axis (ensembles, inverse ensembles).

``pinn_phases(pinn, ...)`` builds the phases; ``fit(pinn, ...)`` runs them with the driver,
with checkpoints (``plumbing.checkpoint``) and resume. Members are M independent models in
one compiled program: the Adam chunk is ``jax.vmap``-ed; the quasi-Newton chunk runs
``member_batch`` members vmapped at a time and the groups in sequence (``jax.lax.map``; with a
device mesh, each device maps over its own members with ``jax.shard_map``), and a member whose
quasi-Newton chunk turns non-finite keeps its last finite state (a per-member NaN guard).

Several devices or processes (``jax.distributed``): members are spread over a mesh of every
process's devices (``member_mesh``); one model on several devices has its collocation points
sharded over all of them (``point_mesh``, ``shard_points``: data-parallel residuals and
gradients), which ``fit`` sets up by itself. Checkpoints are saved by every process together
and restore on any number of processes (``plumbing.checkpoint``).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from pdes.pinn.core import PINN, Programs, TrainState
from pdes.pinn.driver import DriveResult, Phase, drive
from pdes.pinn.precision import cast_floats, x64_if

__all__ = ["PROGRAMS", "QNState", "default_member_batch", "fit", "init_members", "member_mesh", "pinn_phases",
           "point_mesh", "shard_members", "shard_points"]

# The programs of this module's trainers, shared by every run in the process (callers may pass their own).
PROGRAMS = Programs()


class QNState(NamedTuple):
    """The quasi-Newton phase's state: parameters, optimizer state, the (fixed) loss weights and
    the current batch of collocation points."""

    params: Any
    opt_state: Any
    weights: dict[str, jax.Array]
    batch: dict[str, jax.Array]


def _dtype(name: str):
    return jnp.float64 if name == "float64" else jnp.float32


def default_member_batch(member_batch: int | None, m: int) -> int:
    """Members vmapped at once in the quasi-Newton phase: all on accelerators, one at a time on
    CPUs (a vmapped line search runs every member until the slowest is done, and the members'
    working set falls out of cache there; measured in benchmarks/results/uncertainty.md)."""
    if member_batch is None:
        return 1 if jax.default_backend() == "cpu" else m
    if isinstance(member_batch, bool) or not isinstance(member_batch, int | np.integer) or member_batch < 1:
        raise ValueError(f"member_batch must be a positive integer, got {member_batch!r}")
    return min(int(member_batch), m)


def init_members(init: Callable[[jax.Array], Any], keys: jax.Array) -> Any:
    """``jax.vmap(init)(keys)`` (stacked parameters, one member per key, the same numbers),
    computed member by member without compiling: an initialiser runs once per run, and compiling
    a vmapped one took seconds (an FNO's ~4 s on a CPU core) where running it eagerly takes
    milliseconds once its operations have run in the process. Array leaves only (no typed keys)."""
    members = [init(k) for k in keys]
    return jax.tree.map(lambda *leaves: jnp.asarray(np.stack([np.asarray(a) for a in leaves])), *members)


def member_mesh(members: int) -> Any | None:
    """A 1-D device mesh over the member axis: the first d devices, d the largest divisor of M
    that is at most the device count; None when that is 1 (one device, or M prime and larger).

    With several processes (``jax.distributed``) every process takes part: d is the largest
    divisor of M that is a multiple of the process count P with d / P at most each process's
    device count, and each process gives its first d / P devices (members spread over the
    processes, then over their devices). None when no such d exists (M not a multiple of P):
    then every process trains every member on its own first device."""
    from jax.sharding import Mesh

    n_proc = jax.process_count()
    if n_proc == 1:
        devices = jax.devices()
        d = max(k for k in range(1, min(len(devices), members) + 1) if members % k == 0)
        return Mesh(np.array(devices[:d]), ("member",)) if d >= 2 else None
    from plumbing.distributed import global_devices

    by_process: dict[int, list[Any]] = {}
    for dev in global_devices():
        by_process.setdefault(dev.process_index, []).append(dev)
    per = min(len(v) for v in by_process.values())
    fits = [k for k in range(n_proc, n_proc * per + 1, n_proc) if members % k == 0]
    if not fits:
        return None
    d = max(fits)
    return Mesh(np.array([dev for p in sorted(by_process) for dev in by_process[p][:d // n_proc]]), ("member",))


def shard_members(tree: Any, mesh: Any | None) -> Any:
    """Place every leaf's leading (member) axis across the mesh (typed PRNG keys included, the
    mesh may span processes); no-op without a mesh."""
    if mesh is None:
        return tree
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    from plumbing.distributed import put

    spec = NamedSharding(mesh, P("member"))
    return jax.tree.map(lambda leaf: put(leaf, spec) if getattr(leaf, "ndim", 0) else leaf, tree)


def point_mesh(config: Any) -> Any | None:
    """A 1-D mesh ("data") over every device of every process, for one model's collocation
    points (``shard_points``); None on one device or when a batch size (``sampling.n_res``,
    ``qn.n_res`` when there is a quasi-Newton phase) is not a multiple of the device count."""
    if jax.device_count() < 2:
        return None
    from jax.sharding import Mesh

    from plumbing.distributed import global_devices

    devices = global_devices()
    sizes = [config.sampling.n_res] + ([config.qn.n_res] if config.qn.steps > 0 else [])
    if any(n % len(devices) for n in sizes):
        return None
    return Mesh(np.array(devices), ("data",))


@functools.lru_cache(maxsize=64)
def _sharded_residual(residual: Callable, mesh: Any) -> Callable:
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    spec = NamedSharding(mesh, P("data"))

    def sharded(u: Callable, t: jax.Array, x: jax.Array, **coeffs: Any) -> jax.Array:
        if t.ndim == 1 and t.shape[0] % mesh.size == 0:
            t = jax.lax.with_sharding_constraint(t, spec)
            x = jax.lax.with_sharding_constraint(x, spec)
        return residual(u, t, x, **coeffs)

    return sharded


def shard_points(pinn: PINN, mesh: Any | None) -> PINN:
    """``pinn`` with its PDE residual evaluated on collocation points sharded over ``mesh``
    (data parallelism: every device computes the residual on its share of the points, the
    means and the parameter gradients are all-reduced by the SPMD partitioner). The points
    themselves are the same (a key gives the same points whatever the sharding), so the
    training matches the unsharded one up to the order of the sums. No-op without a mesh."""
    if mesh is None:
        return pinn
    import dataclasses

    return dataclasses.replace(pinn, _residual=_sharded_residual(pinn._residual, mesh))


def _map_members(run: Callable, member_batch: int, mesh: Any | None, obs_axis: int | None) -> Callable:
    """run(p, o, w, b, k, fresh, obs) over the leading member axis of (p, o, w, b, k) (and of obs
    when ``obs_axis`` is 0): ``member_batch`` members vmapped at a time, the groups in sequence;
    with a mesh, every device maps over its own members."""

    def local(p, o, w, b, k, fresh, obs):
        if member_batch > 1 and member_batch >= jax.tree.leaves(p)[0].shape[0]:
            return jax.vmap(run, in_axes=(0, 0, 0, 0, 0, None, obs_axis))(p, o, w, b, k, fresh, obs)
        # one at a time runs the plain (unbatched) program: a vmapped line search, even over one
        # member, is slower on a CPU
        if obs_axis == 0:
            return jax.lax.map(lambda a: run(*a[:5], fresh, a[5]), (p, o, w, b, k, obs),
                               batch_size=member_batch if member_batch > 1 else None)
        return jax.lax.map(lambda a: run(*a, fresh, obs), (p, o, w, b, k),
                           batch_size=member_batch if member_batch > 1 else None)

    if mesh is None:
        return local
    from jax.sharding import PartitionSpec as P

    spec = P("member")
    obs_spec = spec if obs_axis == 0 else P()
    return jax.shard_map(local, mesh=mesh, in_specs=(spec,) * 5 + (P(), obs_spec), out_specs=spec, check_vma=False)


def pinn_phases(pinn: PINN, *, qn_key: Callable[[int], jax.Array], obs: Mapping[str, Any] | None = None,
                members: int | None = None, member_batch: int = 1, mesh: Any | None = None,
                obs_per_member: bool = False, programs: Programs = PROGRAMS) -> list[Phase]:
    """The Adam phase (``adam.steps``) and, when ``qn.steps`` > 0, the quasi-Newton phase of
    ``pinn``'s config. ``qn_key(global_step)``: the key of the quasi-Newton chunk starting at
    that step ((M,) keys for members). ``members``: None for one model, M for M stacked
    members; ``obs_per_member``: obs arrays have a leading member axis (bootstrap resamples)."""
    c = pinn.config
    f64 = c.network.dtype == "float64"
    q64 = c.qn.dtype == "float64" or f64
    obs_axis = 0 if obs_per_member else None
    stacked = members is not None
    tag = ("members", obs_axis) if stacked else ("single",)

    def adam_program(n: int) -> Callable:
        def make():
            def one(state, ob):
                return pinn.adam_chunk(state, n, ob)
            return jax.jit(jax.vmap(one, in_axes=(0, obs_axis)) if stacked else one)
        return programs.get(pinn, ("adam", n, *tag), make)

    def adam_advance(state: TrainState, k: int, n: int, first: bool) -> tuple[TrainState, dict]:
        return adam_program(n)(state, obs)

    def adam_snapshot(state: TrainState) -> dict[str, Any]:
        return {"params": state.params, "opt_state": state.opt_state, "weights": state.weights, "key": state.key,
                "step": state.step}

    def adam_resume(tree: dict[str, Any]) -> TrainState:
        return TrainState(tree["params"], tree["opt_state"], tree["weights"], tree["key"], tree["step"])

    phases = [Phase("adam", "Adam", c.adam.steps, adam_advance, lambda s: s.params, adam_snapshot, adam_resume,
                    x64=f64)]
    if c.qn.steps <= 0:
        return phases

    qdt = _dtype("float64" if q64 else "float32")

    def init_qn() -> Callable:
        if not stacked:
            return programs.get(pinn, ("init_qn", *tag), lambda: jax.jit(pinn.init_qn))
        # with a mesh the placeholders are placed as the chunks return them (members sharded),
        # so the first chunk does not compile a program for replicated inputs that no later chunk uses
        out = None if mesh is None else NamedSharding(mesh, P("member"))
        return programs.get(pinn, ("init_qn", mesh, *tag),
                            lambda: jax.jit(jax.vmap(pinn.init_qn), out_shardings=out))

    def qn_enter(state: TrainState) -> QNState:
        return _qn_state(cast_floats(state.params, qdt), cast_floats(pinn.qn_weights(state.weights), qdt))

    def _qn_state(params: Any, weights: Any) -> QNState:
        opt_state, batch = init_qn()(params)
        return QNState(params, opt_state, weights, batch)

    def qn_program(n: int) -> Callable:
        if not stacked:
            return programs.get(pinn, ("qn", n), lambda: jax.jit(
                lambda p, o, w, b, k, fresh, ob: pinn.qn_chunk(p, o, w, b, k, fresh, n, ob)))

        def guarded(p, o, w, b, k, fresh, ob):
            new_p, new_o, new_b, metrics = pinn.qn_chunk(p, o, w, b, k, fresh, n, ob)
            ok = jnp.isfinite(metrics["loss"]) & jnp.all(
                jnp.stack([jnp.all(jnp.isfinite(a)) for a in jax.tree.leaves(new_p)]))
            pick = partial(jax.tree.map, lambda a, b_: jnp.where(ok, a, b_))
            # a member whose chunk failed keeps its last finite state and reports a NaN loss
            metrics = {**metrics, "loss": jnp.where(ok, metrics["loss"], jnp.nan)}
            return pick(new_p, p), pick(new_o, o), pick(new_b, b), metrics

        return programs.get(pinn, ("qn", n, member_batch, mesh, *tag),
                            lambda: jax.jit(_map_members(guarded, member_batch, mesh, obs_axis)))

    def qn_advance(state: QNState, k: int, n: int, first: bool) -> tuple[QNState, dict]:
        fresh = first or k % c.qn.resample_every == 0
        obs_q = None if obs is None else jax.tree.map(lambda a: jnp.asarray(a, qdt), dict(obs))
        params, opt_state, batch, metrics = qn_program(n)(
            state.params, state.opt_state, state.weights, state.batch, qn_key(c.adam.steps + k), jnp.asarray(fresh),
            obs_q)
        return QNState(params, opt_state, state.weights, batch), metrics

    phases.append(Phase("qn", "quasi-Newton", c.qn.steps, qn_advance, lambda s: s.params,
                        lambda s: {"params": s.params, "weights": s.weights},
                        lambda tree: _qn_state(tree["params"], tree["weights"]), enter=qn_enter,
                        boundary=c.qn.resample_every, x64=q64))
    return phases


def fit(pinn: PINN, state: TrainState, *, qn_key: Callable[[int], jax.Array], obs: Mapping[str, Any] | None = None,
        members: int | None = None, member_batch: int = 1, mesh: Any | None = None, obs_per_member: bool = False,
        record: Callable[[dict[str, Any], Any, int, int], dict[str, Any]] | None = None,
        callbacks: Sequence[Callable[[dict[str, Any]], None]] = (), checkpoint_dir: str | Path | None = None,
        resume: str | Path | None = None, meta: Mapping[str, Any] | None = None,
        expect: Mapping[str, Any] | None = None, programs: Programs = PROGRAMS, prog: str = "pdes"
        ) -> tuple[DriveResult, dict[str, Any]]:
    """Train ``pinn`` from the Adam state ``state`` (stacked for members) through its phases.

    ``checkpoint_dir``: checkpoints (``plumbing.checkpoint``: one step folder holding the phase's
    snapshot and ``meta`` plus phase, history and elapsed time), every ``run.checkpoint_every``
    steps, at the end of each phase and when stopping early. ``resume``: a checkpoint folder to
    continue from; its meta must match ``expect`` (else a one-line ValueError). Returns the
    driver's result and the resumed meta ({} for a fresh run)."""
    from plumbing import checkpoint as ckpt

    c = pinn.config
    if members is None and mesh is None:  # one model on several devices: shard its collocation points
        points = point_mesh(c)
        if points is not None:
            from jax.sharding import NamedSharding
            from jax.sharding import PartitionSpec as P

            from plumbing.distributed import put

            with x64_if(c.network.dtype == "float64"):
                state, obs = put((state, obs), NamedSharding(points, P()))
            pinn = shard_points(pinn, points)
    phases = pinn_phases(pinn, qn_key=qn_key, obs=obs, members=members, member_batch=member_batch, mesh=mesh,
                         obs_per_member=obs_per_member, programs=programs)
    names = [p.name for p in phases]
    step, index, history, resumed = 0, 0, [], {}
    if resume is not None:
        saved = ckpt.read_meta(resume)
        if expect:
            ckpt.check_meta(saved, expect, repr(str(resume)))
        if saved.get("phase") not in names:
            raise ValueError(f"checkpoint {str(resume)!r} is of phase {saved.get('phase')!r}, which this config "
                             f"does not have ({', '.join(names)})")
        index = names.index(saved["phase"])
        with x64_if(phases[index].x64):
            template_state = state if index == 0 else phases[1].enter(state)
            trees, resumed = ckpt.restore(resume, {"state": phases[index].snapshot(template_state)}, expect=expect)
            state = phases[index].resume(trees["state"])
        step = int(resumed["step"])
        history = list(resumed.get("history", []))
    elapsed0 = float(resumed.get("wall_time_s", 0.0))
    start = time.perf_counter()

    def save(at: int, phase: str, tree: Any) -> None:
        wall = elapsed0 + time.perf_counter() - start
        ckpt.save(checkpoint_dir, at, {"state": tree},
                  {**(meta or {}), "phase": phase, "history": history, "wall_time_s": wall})

    result = drive(phases, state, step=step, phase=index, log_every=c.run.log_every,
                   checkpoint_every=c.run.checkpoint_every, max_wall_s=c.run.max_wall_s,
                   save=save if checkpoint_dir is not None else None, record=record, callbacks=callbacks,
                   history=history, prog=prog)
    result.wall_time_s += elapsed0
    return result, resumed
