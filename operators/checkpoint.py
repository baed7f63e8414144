"""Checkpoints that rebuild their model: ``MODEL_DIR/config.json`` + ``MODEL_DIR/checkpoint.npz``.

``config.json`` holds the full run configuration (the ``FNOConfig`` under ``"model"``, the
``TrainConfig`` under ``"train"``) plus the epoch reached and the training history.
``checkpoint.npz`` holds the model state (parameters and normalisation constants) and the
optimizer state as flat arrays in the order of their pytrees; a fresh model built from the
config gives the tree structure back. Both files are written to temporaries and renamed, so
an interrupted save leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import nnx

from operators.models import FNO, FNOConfig

__all__ = ["load_checkpoint", "load_model", "save_checkpoint"]

CONFIG_FILE = "config.json"
STATE_FILE = "checkpoint.npz"


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _paths(tree: Any) -> list[str]:
    return [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def save_checkpoint(
    directory: str | os.PathLike[str],
    model: FNO,
    opt_state: Any,
    *,
    run_config: dict[str, Any],
    epoch: int,
    history: list[dict[str, Any]],
) -> Path:
    """Write the model, optimizer state, config and history to ``directory`` (atomically per file)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    model_state = nnx.state(model)
    arrays: dict[str, np.ndarray] = {}
    for prefix, tree in (("model", model_state), ("opt", opt_state)):
        leaves = jax.tree.leaves(tree)
        for i, leaf in enumerate(leaves):
            arrays[f"{prefix}_{i}"] = np.asarray(leaf)
        arrays[f"{prefix}_paths"] = np.asarray(_paths(tree), dtype=str)

    def write_npz(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    _atomic_write(d / STATE_FILE, write_npz)
    meta = {"model": model.config.to_dict(), **{k: v for k, v in run_config.items() if k != "model"},
            "epoch": int(epoch), "history": history}

    def write_json(tmp: str) -> None:
        Path(tmp).write_text(json.dumps(meta, indent=1, default=float))

    _atomic_write(d / CONFIG_FILE, write_json)
    return d


def _read_meta(directory: Path) -> dict[str, Any]:
    if not directory.is_dir():
        raise FileNotFoundError(f"no such model directory: {str(directory)!r}")
    cfg = directory / CONFIG_FILE
    if not cfg.is_file() or not (directory / STATE_FILE).is_file():
        raise FileNotFoundError(f"{str(directory)!r} holds no checkpoint ({CONFIG_FILE} and {STATE_FILE})")
    try:
        meta = json.loads(cfg.read_text())
        FNOConfig.from_dict(meta["model"])
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"{str(cfg)!r} is not a valid checkpoint config ({type(err).__name__}: {err})") from None
    return meta


def _restore(tree: Any, data: Any, prefix: str, where: Path) -> Any:
    leaves, treedef = jax.tree.flatten(tree)
    paths = list(data[f"{prefix}_paths"])
    if paths != _paths(tree):
        raise ValueError(f"checkpoint {str(where)!r} does not match its config ({prefix} state differs)")
    new = [np.asarray(data[f"{prefix}_{i}"]).astype(np.asarray(leaf).dtype) for i, leaf in enumerate(leaves)]
    return jax.tree.unflatten(treedef, new)


def load_model(directory: str | os.PathLike[str]) -> tuple[FNO, dict[str, Any]]:
    """Rebuild the FNO saved in ``directory``; returns (model, meta) with meta = config.json."""
    d = Path(directory)
    meta = _read_meta(d)
    model = FNO(FNOConfig.from_dict(meta["model"]), rngs=nnx.Rngs(0))
    with np.load(d / STATE_FILE) as data:
        nnx.update(model, _restore(nnx.state(model), data, "model", d))
    return model, meta


def load_checkpoint(directory: str | os.PathLike[str], opt_state_template: Any) -> tuple[FNO, Any, dict[str, Any]]:
    """Rebuild model and optimizer state (shaped like ``opt_state_template``) for ``--resume``."""
    model, meta = load_model(directory)
    d = Path(directory)
    with np.load(d / STATE_FILE) as data:
        opt_state = _restore(opt_state_template, data, "opt", d)
    return model, opt_state, meta
