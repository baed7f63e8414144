"""MC dropout (Gal & Ghahramani 2016) for PINNs and FNOs: T stochastic passes, vmapped over keys.

One dropout mask per function sample: a draw switches off the same hidden units at every
point (t, x) of a PINN, and the same channels at every grid point of an FNO's function, so
each draw is a smooth function of (t, x) (PINN residuals need its derivatives) and not
point-wise noise.

* PINN: ``pdes.pinn`` already draws one mask per key for all points (``config.dropout``;
  training uses one mask per step). ``pinn_dropout_draws`` evaluates T masks on the grid.
* FNO: ``operators.models.FNO`` drops each (point, channel) independently. ``fno_apply_
  channel_dropout`` is an adapter with the same layers but masks of shape (batch, 1, ...,
  channels): one mask per function, shared over the grid (spatial / channel dropout).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["fno_apply_channel_dropout", "fno_dropout_draws", "pinn_dropout_draws"]


def pinn_dropout_draws(
    pinn: Any, params: Any, t: np.ndarray, x: np.ndarray, *, draws: int, key: jax.Array
) -> np.ndarray:
    """T function samples of a dropout PINN on the grid t x x: (T, nt, nx), float64."""
    if pinn.config.dropout <= 0:
        raise ValueError("MC dropout needs a PINN trained with dropout > 0 (config.dropout)")
    keys = jax.random.split(key, draws)
    fn = jax.jit(jax.vmap(lambda k: pinn.predict_grid(params, t, x, k)))
    return np.asarray(fn(keys), dtype=np.float64)


def _mask(key: jax.Array, rate: float, shape: tuple[int, ...], dtype: Any) -> jax.Array:
    keep = jax.random.bernoulli(key, 1.0 - rate, shape)
    return keep.astype(dtype) / (1.0 - rate)


def fno_apply_channel_dropout(template: Any) -> Callable[..., jax.Array]:
    """A pure ``apply(params, a, key=None)`` for the FNO ``template`` (its graph and
    normalisation constants), with one dropout mask per function: masks (batch, 1.., C).

    The layer sequence is the one of ``operators.models.FNO.__call__`` (lift on [a, x],
    Fourier layers spectral + pointwise with GELU, projection); only the masks differ."""
    from flax import nnx

    graphdef, _, rest = nnx.split(template, nnx.Param, ...)
    cfg = template.config
    rate = float(cfg.dropout)

    def apply(params: Any, a: jax.Array, key: jax.Array | None = None) -> jax.Array:
        model = nnx.merge(graphdef, params, rest)
        squeeze = a.ndim == cfg.dim + 1
        h = (a[..., None] if squeeze else a).astype(jnp.float32)
        batch, spatial = h.shape[0], h.shape[1:-1]
        h = (h - model.a_mean[...]) / model.a_std[...]
        grids = jnp.meshgrid(*[jnp.arange(n, dtype=jnp.float32) / n for n in spatial], indexing="ij")
        coords = jnp.broadcast_to(jnp.stack(grids, axis=-1), (batch, *spatial, cfg.dim))
        h = model.lift(jnp.concatenate([h, coords], axis=-1))
        pads = [int(round(cfg.padding * n)) for n in spatial]
        if any(pads):
            h = jnp.pad(h, [(0, 0), *[(0, p) for p in pads], (0, 0)])
        use = key is not None and rate > 0
        keys = jax.random.split(key, cfg.depth + 1) if use else [None] * (cfg.depth + 1)
        ones = (1,) * cfg.dim
        for i in range(cfg.depth):
            h = model.spectral[i](h) + model.pointwise[i](h)
            if i < cfg.depth - 1:
                h = jax.nn.gelu(h)
                if use:
                    h = h * _mask(keys[i], rate, (batch, *ones, h.shape[-1]), h.dtype)
        if any(pads):
            h = h[(slice(None), *[slice(0, n) for n in spatial])]
        h = jax.nn.gelu(model.proj1(h))
        if use:
            h = h * _mask(keys[-1], rate, (batch, *ones, h.shape[-1]), h.dtype)
        u = model.proj2(h) * model.u_std[...] + model.u_mean[...]
        return u[..., 0] if squeeze and cfg.out_channels == 1 else u

    return apply


def fno_dropout_draws(
    apply: Callable[..., jax.Array],
    params: Any,
    a: np.ndarray,
    *,
    draws: int,
    key: jax.Array,
    batch_size: int = 64,
) -> np.ndarray:
    """T function samples for inputs a (n, *spatial): (T, n, *spatial), float64. Draw k uses
    key k for every batch, folded with the batch index so functions get their own masks."""
    keys = jax.random.split(key, draws)

    def one(k: jax.Array, x: jax.Array, b: jax.Array) -> jax.Array:
        return apply(params, x, key=jax.random.fold_in(k, b))

    fn = jax.jit(jax.vmap(one, in_axes=(0, None, None)))
    outs = [
        np.asarray(fn(keys, jnp.asarray(a[i : i + batch_size], jnp.float32), jnp.asarray(i)))
        for i in range(0, a.shape[0], batch_size)
    ]
    return np.concatenate(outs, axis=1).astype(np.float64)
