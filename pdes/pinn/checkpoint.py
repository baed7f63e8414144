"""Atomic checkpoints of a PINN run: one ``checkpoint.npz`` per directory.

The file holds the leaves of (params, optimizer state, loss weights, key data) as arrays
``leaf_<i>`` and a JSON header ``meta`` (problem name and parameters, config, phase, step,
history). Restoring needs a template pytree of the same structure (built from the same
config), so a checkpoint from another architecture or problem is rejected with one line.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import jax
import numpy as np

__all__ = ["CHECKPOINT_NAME", "load_checkpoint", "restore_tree", "save_checkpoint"]

CHECKPOINT_NAME = "checkpoint.npz"


def save_checkpoint(directory: str | os.PathLike[str], tree: Any, meta: dict[str, Any]) -> Path:
    """Write tree's leaves and meta to directory/checkpoint.npz atomically (temp file + rename)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    leaves = jax.tree.leaves(tree)
    arrays = {f"leaf_{i}": np.asarray(leaf) for i, leaf in enumerate(leaves)}
    arrays["meta"] = np.array(json.dumps(meta, default=str))
    target = directory / CHECKPOINT_NAME
    fd, tmp = tempfile.mkstemp(prefix=f".{CHECKPOINT_NAME}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return target


def load_checkpoint(directory: str | os.PathLike[str]) -> tuple[list[np.ndarray], dict[str, Any]]:
    """(leaves, meta) from directory/checkpoint.npz (or the .npz path itself)."""
    path = Path(directory)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}")
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            n = sum(1 for k in data.files if k.startswith("leaf_"))
            leaves = [data[f"leaf_{i}"] for i in range(n)]
    except (OSError, ValueError, KeyError) as err:
        raise ValueError(f"{str(path)!r} is not a readable PINN checkpoint ({type(err).__name__})") from None
    return leaves, meta


def restore_tree(template: Any, leaves: list[np.ndarray], what: str = "checkpoint") -> Any:
    """template's structure filled with leaves; shapes must match (else ValueError)."""
    t_leaves, treedef = jax.tree.flatten(template)
    if len(t_leaves) != len(leaves):
        raise ValueError(f"{what} does not match this network/optimizer ({len(leaves)} arrays, expected {len(t_leaves)})")
    out = []
    for i, (a, b) in enumerate(zip(t_leaves, leaves, strict=True)):
        if np.shape(a) != np.shape(b):
            raise ValueError(f"{what} does not match this network: array {i} has shape {np.shape(b)}, expected {np.shape(a)}")
        out.append(jax.numpy.asarray(b, dtype=a.dtype))
    return jax.tree.unflatten(treedef, out)
