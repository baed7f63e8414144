"""Checkpoints that rebuild their model, in the one checkpoint format of the workbench
(``plumbing.checkpoint``): a model folder ``MODEL_DIR/`` holds one step folder per saved epoch
(the newest kept), each one atomic unit with the items ``model`` (parameters and
normalisation constants), ``opt`` (the optimizer state) and the JSON ``meta``: the full run
configuration (the ``FNOConfig`` under ``"model"``, the ``TrainConfig`` under ``"train"``),
the data's shape, the epoch reached and the training history. A fresh model built from the
config gives the tree structure back, so ``load_model`` needs nothing but the folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jax
from flax import nnx

from operators.models import FNO, FNOConfig
from plumbing import checkpoint as ckpt

__all__ = ["has_checkpoint", "load_checkpoint", "load_model", "save_checkpoint"]

KIND = "fno"


def save_checkpoint(
    directory: str | os.PathLike[str],
    model: FNO,
    opt_state: Any,
    *,
    run_config: dict[str, Any],
    epoch: int,
    history: list[dict[str, Any]],
) -> Path:
    """Write the model, optimizer state, config and history to ``directory`` as one atomic step."""
    meta = {"kind": KIND, "model": model.config.to_dict(), **{k: v for k, v in run_config.items() if k != "model"},
            "epoch": int(epoch), "history": history}
    ckpt.save(directory, int(epoch), {"model": jax.device_get(nnx.state(model)), "opt": jax.device_get(opt_state)},
              meta)
    return Path(directory)


def has_checkpoint(directory: str | os.PathLike[str]) -> bool:
    """Whether ``directory`` holds a complete FNO checkpoint."""
    return ckpt.latest_step(directory) is not None


def _read_meta(directory: Path) -> dict[str, Any]:
    if not directory.is_dir():
        raise FileNotFoundError(f"no such model directory: {str(directory)!r}")
    if not has_checkpoint(directory):
        raise FileNotFoundError(f"{str(directory)!r} holds no checkpoint")
    meta = ckpt.read_meta(directory)
    if meta.get("kind") != KIND:
        raise ValueError(f"{str(directory)!r} holds a {meta.get('kind', 'foreign')!r} checkpoint, not an FNO model")
    try:
        FNOConfig.from_dict(meta["model"])
    except (KeyError, TypeError) as err:
        raise ValueError(f"{str(directory)!r} has no valid FNO config ({type(err).__name__}: {err})") from None
    return meta


def load_model(directory: str | os.PathLike[str]) -> tuple[FNO, dict[str, Any]]:
    """Rebuild the FNO saved in ``directory``; returns (model, meta)."""
    d = Path(directory)
    meta = _read_meta(d)
    model = FNO(FNOConfig.from_dict(meta["model"]), rngs=nnx.Rngs(0))
    trees, _ = ckpt.restore(d, {"model": nnx.state(model)}, step=meta["step"])
    nnx.update(model, trees["model"])
    return model, meta


def load_checkpoint(directory: str | os.PathLike[str], opt_state_template: Any) -> tuple[FNO, Any, dict[str, Any]]:
    """Rebuild model and optimizer state (shaped like ``opt_state_template``) for ``--resume``."""
    d = Path(directory)
    meta = _read_meta(d)
    model = FNO(FNOConfig.from_dict(meta["model"]), rngs=nnx.Rngs(0))
    trees, _ = ckpt.restore(d, {"model": nnx.state(model), "opt": opt_state_template}, step=meta["step"])
    nnx.update(model, trees["model"])
    return model, trees["opt"], meta
