"""The chunked training driver shared by every PINN trainer (forward, inverse, ensembles).

A run is a sequence of ``Phase`` objects (Adam, then quasi-Newton); each advances its state a
chunk of steps per compiled call. ``drive`` loops over the chunks and owns what every trainer
needs around them:

* a NaN guard: a chunk whose loss or parameters are not finite is discarded, training stops
  with a message naming the steps, and the last good state is checkpointed;
* a time budget (``max_wall_s``): training stops at the first chunk boundary past it, with a
  checkpoint, so ``--resume`` continues;
* the checkpoint cadence: every ``checkpoint_every`` steps and at the end of each phase, via
  the ``save(step, phase_name, tree)`` the caller passes (``plumbing.checkpoint`` underneath);
* progress as callbacks: after every chunk ``record(metrics, params, phase_index, step)`` turns
  the chunk's metrics into a history row (the caller adds its evaluation), then each of
  ``callbacks`` sees the row (``progress_bar`` gives the default tqdm bar on stderr).

States are whatever the phases define (a single model's or a member-stacked ensemble's):
the driver only calls the phases' functions. Under ``jax.distributed`` every process runs the
same loop in step; the metrics and the parameters ``record`` sees are whole on every process
(``plumbing.distributed.gathered``: a no-op with one process), the checkpoints are collective.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from pdes.pinn.precision import x64_if
from plumbing.distributed import gathered

__all__ = ["DriveResult", "Phase", "drive", "progress_bar"]


@dataclass(frozen=True)
class Phase:
    """One training phase of ``steps`` steps.

    ``enter(previous_state)``: this phase's state from the previous phase's final state (the
    first phase's is never called). ``advance(state, k, n, first)``: n steps from the phase's
    step k (``first``: the first chunk of this phase in this run, e.g. to redraw a batch after a
    resume) -> (state, metrics). ``params(state)``: the parameters (NaN guard, evaluation).
    ``snapshot(state)``: the pytree a checkpoint of this phase holds; ``resume(tree)``: the
    state from such a pytree. ``boundary`` > 0: no chunk crosses a multiple of it (the phase's
    resampling rounds). ``label`` names the phase in messages. ``x64``: the phase runs in
    float64 (everything the driver does for it runs inside ``jax.enable_x64(True)``)."""

    name: str
    label: str
    steps: int
    advance: Callable[[Any, int, int, bool], tuple[Any, dict[str, Any]]]
    params: Callable[[Any], Any]
    snapshot: Callable[[Any], Any]
    resume: Callable[[Any], Any]
    enter: Callable[[Any], Any] | None = None
    boundary: int = 0
    x64: bool = False


@dataclass
class DriveResult:
    """How a run ended: the final state and its phase index, the global step reached, ``stopped``
    ("completed", or the NaN guard's or time budget's message) and the history rows."""

    state: Any
    phase: int
    step: int
    stopped: str
    history: list[dict[str, Any]] = field(default_factory=list)
    wall_time_s: float = 0.0

    @property
    def completed(self) -> bool:
        return self.stopped == "completed"


def _finite(tree: Any) -> bool:
    """Every floating leaf finite (one reduction on the device, one host sync)."""
    leaves = [jnp.all(jnp.isfinite(a)) for a in jax.tree.leaves(tree) if jnp.issubdtype(jnp.asarray(a).dtype,
                                                                                          jnp.floating)]
    return bool(jnp.all(jnp.stack(leaves))) if leaves else True


def drive(phases: Sequence[Phase], state: Any, *, step: int = 0, phase: int = 0, log_every: int,
          checkpoint_every: int = 0, max_wall_s: float = 0.0, save: Callable[[int, str, Any], None] | None = None,
          record: Callable[[dict[str, Any], Any, int, int], dict[str, Any]] | None = None,
          callbacks: Sequence[Callable[[dict[str, Any]], None]] = (), history: list[dict[str, Any]] | None = None,
          prog: str = "pdes") -> DriveResult:
    """Run ``phases`` from global ``step`` (``state`` is a state of ``phases[phase]``, e.g. a
    restored checkpoint's) until every phase is done, the NaN guard trips or ``max_wall_s``
    (0: none) is spent. ``save`` (if given) is called at the checkpoint cadence, at the end of
    each phase and when stopping early; ``record`` builds each chunk's history row (default:
    the metrics with step and phase); ``callbacks`` see every row. Messages on stderr start
    with ``prog``."""
    start = time.perf_counter()
    history = [] if history is None else history
    offsets = np.cumsum([0] + [p.steps for p in phases])
    total = int(offsets[-1])
    step = min(int(step), total)
    index = int(phase)
    good = (index, step, phases[index].name, phases[index].snapshot(state))
    stopped = "completed"
    first = True
    budget = f"time budget max_wall_s={max_wall_s:g} s reached"
    while step < total:
        current = phases[index]
        k = step - int(offsets[index])
        if k >= current.steps:  # this phase is done: enter the next one
            index += 1
            if phases[index].enter is not None:
                with x64_if(phases[index].x64):
                    state = phases[index].enter(state)
            first = True
            continue
        n = min(log_every, current.steps - k)
        if current.boundary:
            n = min(n, current.boundary - k % current.boundary)
        with x64_if(current.x64):
            new_state, metrics = current.advance(state, k, n, first)
            metrics = gathered(metrics)  # members sharded over processes: every process sees all
            # members: a member may report NaN when its own guard kept its last good state; the
            # run stops when no member has a finite loss or any parameter is not finite
            loss = np.asarray(metrics["loss"])
            if not (np.any(np.isfinite(loss)) and _finite(current.params(new_state))):
                stopped = (f"non-finite loss in the {current.label} steps {step + 1}..{step + n}; "
                           f"kept the last good state (step {step})")
                break
            state, first = new_state, False
            step += n
            row = record(metrics, gathered(current.params(state)), index, step) if record is not None else {
                "step": step, "phase": index, **{m: np.asarray(v) for m, v in metrics.items()}}
            history.append(row)
            for callback in callbacks:
                callback(row)
            good = (index, step, current.name, current.snapshot(state))
            at_cadence = checkpoint_every > 0 and step % checkpoint_every == 0
            if save is not None and (at_cadence or step == int(offsets[index]) + current.steps):
                save(*good[1:])
        if max_wall_s > 0 and step < total and time.perf_counter() - start >= max_wall_s:
            stopped = f"{budget} at step {step} of {total}"
            break
    if stopped != "completed" and save is not None:  # NaN guard or time budget: keep the last good state
        with x64_if(phases[good[0]].x64):
            save(*good[1:])
    if stopped.startswith(budget):
        print(f"{prog}: note: {stopped}; --resume continues from the checkpoint", file=sys.stderr)
    elif stopped != "completed":
        print(f"{prog}: warning: NaN guard: {stopped}", file=sys.stderr)
    return DriveResult(state, index, step, stopped, history, time.perf_counter() - start)


def progress_bar(total: int, initial: int = 0, desc: str = "train", enabled: bool = True,
                 show: Sequence[str] = ("loss", "rel_l2")) -> tuple[Callable[[dict[str, Any]], None], Callable[[], None]]:
    """(callback, close): a tqdm bar on stderr that advances to each row's ``step`` and shows
    the row's ``show`` entries (means over members)."""
    from tqdm.auto import tqdm

    bar = tqdm(total=total, initial=initial, disable=not enabled, file=sys.stderr, desc=desc, dynamic_ncols=True,
               leave=False)
    seen = [initial]

    def callback(row: dict[str, Any]) -> None:
        step = int(row["step"])
        bar.update(step - seen[0])
        seen[0] = step
        post = {}
        for key in show:
            if key in row:
                value = float(np.mean(row[key]))
                if not math.isnan(value):
                    post[key] = f"{value:.3e}"
        bar.set_postfix(post, refresh=False)

    return callback, bar.close
