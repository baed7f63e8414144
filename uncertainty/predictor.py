"""A trained uncertain FNO that predicts new inputs, saves and loads: ensemble, MC dropout or Laplace.

``fit_fno_predictor(data, model_config, train_config, method=..., members=M, key=key)`` trains

* ``ensemble``: M members as one vmapped program (``uncertainty.ensemble.train_fno_members``);
* ``mc_dropout``: one network with channel dropout; M dropout masks at prediction time;
* ``laplace``: one network, then the linearized Laplace posterior of its last layer
  (``uncertainty.laplace``); M posterior samples at prediction time (the std is exact).

``predictor.predict(a, key=key)`` returns (mean, std, samples) for inputs a (n, *grid) on any
grid the model resolves (the FNO is resolution independent). ``save(dir)`` / ``load(dir)``
use ``plumbing.checkpoint`` (items ``params`` and, for Laplace, ``laplace``; meta: method,
the resolved FNO config, normalization constants, members, the data's provenance, the
calibration map if one was fitted). ``fingerprint()`` identifies the trained weights: a
prediction file carries it (attr ``model_fingerprint``) and a calibration map refuses
predictions of other models.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from uncertainty.ensemble import check_members, mixture_moments

__all__ = ["KIND", "METHODS", "FNOPredictor", "fit_fno_predictor", "load_predictor"]

KIND = "uncertainty_fno"
METHODS = ("ensemble", "mc_dropout", "laplace")


@dataclass
class FNOPredictor:
    """See the module doc. ``params``: stacked (M, ...) for an ensemble, one network otherwise.
    ``normalization``: (a_mean, a_std, u_mean, u_std) of the training data (a_mean, a_std: lists,
    one per channel, for inputs with channels). ``info``: JSON-able
    provenance (equation, generator parameters, training grid, periodic). ``train_time_s``:
    wall time of training (and of the Laplace fit)."""

    method: str
    config: Any
    normalization: tuple[Any, Any, float, float]
    params: Any
    members: int
    laplace: Any = None
    train_time_s: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)
    calibration: Any = None
    _apply: Any = field(default=None, repr=False, compare=False)

    def template(self) -> Any:
        from flax import nnx

        from operators.models import FNO

        model = FNO(self.config, rngs=nnx.Rngs(0))
        model.set_normalization(*self.normalization)
        return model

    @property
    def apply(self) -> Any:
        if self._apply is None:
            from operators.models import functional
            from uncertainty.dropout import fno_apply_channel_dropout

            model = self.template()
            self._apply = fno_apply_channel_dropout(model) if self.method == "mc_dropout" else functional(model)[0]
        return self._apply

    def _compiled(self, name: str) -> Any:
        """Compiled programs, kept per predictor (jit caches them per input shape)."""
        cache = self.__dict__.setdefault("_programs", {})
        if name not in cache:
            apply = self.apply
            if name == "members":
                cache[name] = jax.jit(jax.vmap(lambda p, x: apply(p, x), in_axes=(0, None)))
            elif name == "draws":
                def one(p, k, x, b):
                    return apply(p, x, key=jax.random.fold_in(k, b))

                cache[name] = jax.jit(jax.vmap(one, in_axes=(None, 0, None, None)))
            else:
                from uncertainty.laplace import last_layer_jacobian

                cache[name] = last_layer_jacobian(apply, self.params, self.laplace.layers)
        return cache[name]

    def predict(self, a: Any, *, key: jax.Array | None = None, batch_size: int = 32) -> tuple[
            np.ndarray, np.ndarray, np.ndarray]:
        """(mean, std, samples) for a: (n, *grid), or (n, *grid, channels) for a model with input
        channels; samples (M, n, *grid); float64. MC dropout:
        draw k uses key k for every batch, folded with the batch's first index (one mask per
        function, as ``uncertainty.dropout.fno_dropout_draws``)."""
        from uncertainty.laplace import laplace_predict

        a = np.asarray(a, dtype=np.float32)
        c = self.config.in_channels
        if c == 1 and a.ndim != self.config.dim + 1:
            raise ValueError(f"inputs must have shape (n, *{self.config.dim} grid axes), got {a.shape}")
        if c > 1 and (a.ndim != self.config.dim + 2 or a.shape[-1] != c):
            names = ", ".join(self.info.get("input_channels") or []) or f"{c} channels"
            raise ValueError(f"inputs must have shape (n, *{self.config.dim} grid axes, {c}) ({names}), got {a.shape}")
        key = jax.random.key(0) if key is None else key
        if self.method == "laplace":
            return laplace_predict(self.apply, self.params, self.laplace, a, draws=self.members, key=key,
                                   batch_size=batch_size, jacobian=self._compiled("laplace"))
        chunks = []
        for i in range(0, a.shape[0], batch_size):
            x = jnp.asarray(a[i:i + batch_size])
            if self.method == "ensemble":
                chunks.append(np.asarray(self._compiled("members")(self.params, x)))
            else:
                keys = jax.random.split(key, self.members)
                chunks.append(np.asarray(self._compiled("draws")(self.params, keys, x, jnp.asarray(i))))
        samples = np.concatenate(chunks, axis=1).astype(np.float64)
        mean, var = mixture_moments(samples)
        return mean, np.sqrt(var), samples

    def fingerprint(self) -> str:
        """sha256 (16 hex digits) of the method, config, normalization and every weight."""
        h = hashlib.sha256()
        h.update(json.dumps([self.method, self.config.to_dict(), list(self.normalization), self.members],
                            sort_keys=True).encode())
        for leaf in jax.tree.leaves(self.params):
            h.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
        if self.laplace is not None:
            h.update(np.ascontiguousarray(self.laplace.covariance).tobytes())
        return h.hexdigest()[:16]

    def meta(self) -> dict[str, Any]:
        meta = {"kind": KIND, "method": self.method, "model": self.config.to_dict(),
                "normalization": list(self.normalization), "members": self.members,
                "train_time_s": self.train_time_s, "info": self.info, "fingerprint": self.fingerprint()}
        if self.laplace is not None:
            meta["laplace"] = self.laplace.scalars()
        if self.calibration is not None:
            meta["calibration"] = self.calibration.to_dict()
        return meta

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the predictor into ``directory`` (one atomic checkpoint step)."""
        from plumbing import checkpoint as ckpt

        items: dict[str, Any] = {"params": jax.device_get(self.params)}
        if self.laplace is not None:
            items["laplace"] = {"theta": self.laplace.theta, "covariance": self.laplace.covariance}
        ckpt.save(directory, 0, items, self.meta())
        return Path(directory)


def _params_template(config: Any, members: int | None) -> Any:
    from flax import nnx

    from operators.models import FNO

    params = nnx.split(FNO(config, rngs=nnx.Rngs(0)), nnx.Param, ...)[1]
    if members is None:
        return params
    return jax.tree.map(lambda x: jnp.zeros((members, *x.shape), x.dtype), params)


def load_predictor(directory: str | os.PathLike[str]) -> FNOPredictor:
    """Rebuild a predictor saved by ``FNOPredictor.save`` (FileNotFoundError / one-line ValueError)."""
    from operators.models import FNOConfig
    from plumbing import checkpoint as ckpt
    from uncertainty.calibration import CalibrationMap
    from uncertainty.laplace import LaplacePosterior

    d = Path(directory)
    if not d.is_dir():
        raise FileNotFoundError(f"no such model folder: {str(d)!r}")
    meta = ckpt.read_meta(d)
    if meta.get("kind") != KIND:
        raise ValueError(f"{str(d)!r} holds a {meta.get('kind', 'foreign')!r} checkpoint, not an uncertain FNO "
                         f"(write one with `uncertainty run fno ... --model-out DIR`)")
    config = FNOConfig.from_dict(meta["model"])
    method, members = meta["method"], int(meta["members"])
    templates: dict[str, Any] = {"params": _params_template(config, members if method == "ensemble" else None)}
    lap = meta.get("laplace")
    if lap is not None:
        p = int(lap["n_params"])
        templates["laplace"] = {"theta": np.zeros(p), "covariance": np.zeros((p, p))}
    trees, _ = ckpt.restore(d, templates)
    posterior = None
    if lap is not None:
        posterior = LaplacePosterior(tuple(lap["layers"]), np.asarray(trees["laplace"]["theta"], np.float64),
                                     np.asarray(trees["laplace"]["covariance"], np.float64),
                                     float(lap["prior_precision"]), float(lap["noise_std"]), int(lap["n_data"]),
                                     float(lap["effective_params"]), float(lap["log_evidence"]))
    cal = CalibrationMap.from_dict(meta["calibration"]) if meta.get("calibration") else None
    norm = tuple(v if isinstance(v, list) else float(v) for v in meta["normalization"])
    pred = FNOPredictor(method, config, norm, trees["params"], members,
                        posterior, float(meta.get("train_time_s", 0.0)), dict(meta.get("info") or {}), cal)
    if pred.fingerprint() != meta.get("fingerprint"):
        raise ValueError(f"{str(d)!r} is damaged: its weights do not match the fingerprint it was saved with")
    return pred


def fit_fno_predictor(
    data: Any, model_config: Any, train_config: Any, *, method: str = "ensemble", members: int = 5,
    key: jax.Array, progress: bool = True, laplace_layers: tuple[str, ...] = ("proj2",),
    info: dict[str, Any] | None = None, checkpoint_dir: Any = None, resume: Any = None,
) -> FNOPredictor:
    """Train on data's train part (``operators.train.OperatorData``); see the module doc.
    ``checkpoint_dir``/``resume``: checkpoints of the trained members (``train_fno_members``)."""
    from operators.models import normalization_values
    from uncertainty.ensemble import fno_ensemble, train_fno_members

    m = check_members(members, "--members")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    if method == "mc_dropout" and model_config.dropout <= 0:
        raise ValueError("--dropout must be > 0 for mc_dropout")
    if method != "mc_dropout" and model_config.dropout > 0:
        model_config = dataclasses.replace(model_config, dropout=0.0)
    start = time.perf_counter()
    if method == "ensemble":
        fit = fno_ensemble(data, model_config, train_config, members=m, key=key, progress=progress,
                           checkpoint_dir=checkpoint_dir, resume=resume)
        params = fit.params
    else:
        from uncertainty.dropout import fno_apply_channel_dropout

        fit = train_fno_members(data, model_config, train_config, members=1, key=key, progress=progress,
                                apply=fno_apply_channel_dropout if method == "mc_dropout" else None,
                                checkpoint_dir=checkpoint_dir, resume=resume)
        params = jax.tree.map(lambda a: a[0], fit.params)
    info = {**(info or {}), "network_train_s": fit.wall_time_s}  # the members' (or the network's) training
    model = fit.model
    norm = normalization_values(model)
    posterior = None
    if method == "laplace":
        from uncertainty.laplace import fit_laplace

        t0 = time.perf_counter()
        posterior = fit_laplace(fit.extra["apply"], params, data.a_train, data.u_train, layers=tuple(laplace_layers))
        info["laplace_fit_s"] = time.perf_counter() - t0
    train_time = time.perf_counter() - start
    return FNOPredictor(method, model.config, norm, params, m, posterior, train_time, info, None,
                        fit.extra["apply"])
