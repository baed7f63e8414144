"""MC dropout (Gal & Ghahramani 2016) for PINNs and FNOs: T stochastic passes, vmapped over keys.

One dropout mask per function sample: a draw switches off the same hidden units at every
point (t, x) of a PINN, and the same channels at every grid point of an FNO's function, so
each draw is a smooth function of (t, x) (PINN residuals need its derivatives) and not
point-wise noise.

* PINN: ``pdes.pinn`` already draws one mask per key for all points (``config.network.dropout``;
  training uses one mask per step). ``pinn_dropout_draws`` evaluates T masks on the grid.
* FNO: ``operators.models.FNO`` drops each (point, channel) independently by default;
  ``fno_apply_channel_dropout`` calls it with ``per_function=True``: masks of shape (batch, 1,
  ..., channels), one per function, shared over the grid (spatial / channel dropout).
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
    if pinn.config.network.dropout <= 0:
        raise ValueError("MC dropout needs a PINN trained with dropout > 0 (config.network.dropout)")
    from pdes.pinn.precision import uses_float64, x64_if

    keys = jax.random.split(key, draws)
    with x64_if(uses_float64(params)):
        fn = jax.jit(jax.vmap(lambda k: pinn.predict_grid(params, t, x, k)))
        return np.asarray(fn(keys), dtype=np.float64)


def fno_apply_channel_dropout(template: Any) -> Callable[..., jax.Array]:
    """A pure ``apply(params, a, key=None)`` for the FNO ``template`` (its graph and
    normalisation constants) with one dropout mask per function: masks (batch, 1.., C),
    i.e. ``FNO.__call__(a, key=key, per_function=True)``."""
    from flax import nnx

    graphdef, _, rest = nnx.split(template, nnx.Param, ...)

    def apply(params: Any, a: jax.Array, key: jax.Array | None = None) -> jax.Array:
        return nnx.merge(graphdef, params, rest)(a, key=key, per_function=True)

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
