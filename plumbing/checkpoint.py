"""Checkpoints of JAX training runs: one module and one format for every trainer (orbax-checkpoint).

A checkpoint folder holds one subfolder per saved step, ``DIR/<step>/``, with named items:
pytrees of arrays (e.g. ``state``, or ``model`` and ``opt``: parameters, optimizer state,
PRNG key data, ...) and ``meta`` (JSON: what the run is -- ``kind``, a fingerprint of the
model/problem/data -- plus its config, history and step). orbax writes a step into a
temporary folder and renames it when complete, so a step is one atomic unit: a killed save
leaves the previous step, and items and meta can never come from different saves. Only the
newest ``keep`` steps stay. ``restore`` reads the items its templates name (a model without
its optimizer state, say).

Saving is collective under ``jax.distributed`` (every process calls ``save`` with the same
step; orbax writes each shard of a global array once, from the process that holds it, and
host-local arrays and the JSON from process 0; the step folder is renamed into place once
every process has written its part); restoring takes the structure, dtypes and shardings from
a template, so a checkpoint saved by N processes restores on M (tested 2 -> 1 and 1 -> 2 in
``tests/test_distributed.py``). Every process must make the same calls in the same order.

Typed PRNG keys are stored as their key data and wrapped again on restore (the template
says where). Before any array is read, ``restore`` compares the saved ``meta`` with
``expect`` and raises a one-line ``ValueError`` naming the first difference (a checkpoint
of another model, problem or dataset); a structure or shape mismatch is a ``ValueError`` too.

This is the one module of ``plumbing`` that needs JAX (and orbax); ``import plumbing`` does
not import it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

__all__ = ["check_meta", "latest_step", "read_meta", "restore", "save"]


def _is_key(a: Any) -> bool:
    return isinstance(a, jax.Array) and jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key)


def _plain(tree: Any) -> Any:
    """Typed PRNG keys replaced by their uint32 key data; with several processes, arrays that
    live on this process only (every process holds the same values: a model trained
    redundantly, host copies) as numpy arrays, which orbax writes once, from process 0."""
    tree = jax.tree.map(lambda a: jax.random.key_data(a) if _is_key(a) else a, tree)
    if jax.process_count() > 1:
        tree = jax.tree.map(lambda a: np.asarray(a) if isinstance(a, jax.Array) and a.is_fully_addressable else a,
                            tree)
    return tree


@contextlib.contextmanager
def _manager(directory: Path, keep: int | None = None) -> Iterator[Any]:
    import orbax.checkpoint as ocp

    options = ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=False,
                                           create=keep is not None)
    mgr = ocp.CheckpointManager(directory.absolute(), options=options)
    try:
        yield mgr
    finally:
        mgr.close()


def _check_names(items: Mapping[str, Any]) -> None:
    if not items or "meta" in items or not all(isinstance(k, str) and k.isidentifier() for k in items):
        raise ValueError(f"checkpoint items must be named (identifiers other than 'meta'), got {list(items)}")


def save(directory: str | os.PathLike[str], step: int, items: Mapping[str, Any], meta: Mapping[str, Any], *,
         keep: int = 1) -> Path:
    """Save ``items`` ({name: pytree of arrays}) and ``meta`` (JSON-able; see
    ``plumbing.jsonio``) as step ``step`` of the checkpoint folder; keep the newest ``keep``
    steps. Saving a step that exists replaces it. Returns the step's folder."""
    import orbax.checkpoint as ocp

    from plumbing.jsonio import to_jsonable

    _check_names(items)
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"checkpoint folder {str(directory)!r} is a file")
    step = int(step)
    args = {name: ocp.args.StandardSave(_plain(tree)) for name, tree in items.items()}
    args["meta"] = ocp.args.JsonSave(to_jsonable({**dict(meta), "items": sorted(items)}))
    with _manager(directory, keep) as mgr:
        if step in mgr.all_steps():
            mgr.delete(step)
        mgr.save(step, args=ocp.args.Composite(**args), force=True)
        mgr.wait_until_finished()
    return directory / str(step)


def _complete(path: Path) -> bool:
    return path.is_dir() and path.name.isdigit() and (path / "meta").exists()


def latest_step(directory: str | os.PathLike[str]) -> int | None:
    """The newest complete step in the folder, or None (no folder, or no checkpoint in it)."""
    directory = Path(directory)
    if not directory.is_dir():
        return None
    steps = [int(p.name) for p in directory.iterdir() if _complete(p)]
    return max(steps) if steps else None


def _step_or_latest(directory: Path, step: int | None) -> int:
    if not directory.is_dir():
        raise FileNotFoundError(f"no checkpoint folder {str(directory)!r}")
    found = latest_step(directory) if step is None else int(step)
    if found is None or not _complete(directory / str(found)):
        raise FileNotFoundError(f"{str(directory)!r} holds no checkpoint"
                                + (f" of step {step}" if step is not None else ""))
    return found


def read_meta(directory: str | os.PathLike[str], step: int | None = None) -> dict[str, Any]:
    """The ``meta`` of a step (default: the newest), with ``step`` added."""
    import orbax.checkpoint as ocp

    directory = Path(directory)
    step = _step_or_latest(directory, step)
    try:
        with _manager(directory) as mgr:
            meta = mgr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
    except Exception as err:  # orbax raises many types for a damaged folder
        raise ValueError(f"{str(directory / str(step))!r} is not a readable checkpoint ({type(err).__name__})") from None
    return {**dict(meta), "step": step}


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_meta(meta: Mapping[str, Any], expect: Mapping[str, Any], where: str) -> None:
    """ValueError naming the first key of ``expect`` whose value differs from the saved one."""
    from plumbing.jsonio import to_jsonable

    for key, want in expect.items():
        have = meta.get(key)
        if to_jsonable(have) != to_jsonable(want):
            raise ValueError(f"checkpoint {where} is of another run: its {key} is {_describe(have)}, "
                             f"this run's is {_describe(to_jsonable(want))}")


def _abstract(template: Any) -> Any:
    flat, treedef = jax.tree.flatten(template)
    abstract = []
    for a in flat:
        if _is_key(a):
            a = jax.random.key_data(a)
        abstract.append(jax.ShapeDtypeStruct(np.shape(a), a.dtype, sharding=getattr(a, "sharding", None)))
    return jax.tree.unflatten(treedef, abstract)


def _rewrap(template: Any, got: Any, where: str) -> Any:
    flat, treedef = jax.tree.flatten(template)
    leaves = jax.tree.leaves(got)
    if len(leaves) != len(flat):
        raise ValueError(f"checkpoint {where} does not match this run ({len(leaves)} arrays, expected {len(flat)})")
    out = [jax.random.wrap_key_data(b, impl=jax.random.key_impl(a)) if _is_key(a) else b
           for a, b in zip(flat, leaves, strict=True)]
    return jax.tree.unflatten(treedef, out)


def restore(directory: str | os.PathLike[str], templates: Mapping[str, Any], *, step: int | None = None,
            expect: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """({name: pytree}, meta) of a step (default: the newest), for the items ``templates``
    names. A template is a pytree of arrays (or ``jax.ShapeDtypeStruct``) with the structure,
    shapes, dtypes and shardings wanted; typed PRNG keys in it come back as keys. ``expect``:
    meta entries that must match (else a one-line ValueError before any array is read)."""
    import orbax.checkpoint as ocp

    _check_names(templates)
    directory = Path(directory)
    meta = read_meta(directory, step)
    where = repr(str(directory))
    if expect:
        check_meta(meta, expect, where)
    missing = sorted(set(templates) - set(meta.get("items", templates)))
    if missing:
        raise ValueError(f"checkpoint {where} has no item {missing[0]!r} (it has {meta.get('items')})")
    args = {name: ocp.args.StandardRestore(_abstract(t)) for name, t in templates.items()}
    try:
        with _manager(directory) as mgr:
            got = mgr.restore(meta["step"], args=ocp.args.Composite(**args))
    except Exception as err:  # structure or shape differs: another model
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"checkpoint {where} does not match this run's model or optimizer ({first[:160]})") from None
    return {name: _rewrap(t, got[name], where) for name, t in templates.items()}, meta
