"""The Fourier neural operator for 1D and 2D inputs (Flax NNX), and its pure functional form.

``FNO(config, rngs=...)`` maps input functions ``a: (batch, *spatial)`` sampled on a uniform
periodic grid of [0, 1)^d to outputs ``u: (batch, *spatial)``:

    a -> normalise -> [a, x] -> lift P (linear) -> L x (spectral conv + pointwise W, GELU)
      -> projection Q (width -> proj_hidden -> 1, GELU) -> de-normalise -> u

(Li et al. 2021, section 4, with the grid coordinates appended as in the paper's code;
``coords=False`` leaves them out, which keeps the model translation equivariant, the right
prior for a translation-invariant operator on a periodic domain such as the heat kernel).
``modes`` counts kept frequencies per axis, |k| <= modes - 1 (see ``operators.layers``).
The normalisation is by scalar means and standard deviations of the training inputs and
targets (kept as non-trainable ``Normalizer`` variables; one pair per input channel when
``in_channels`` > 1, e.g. u0 and a constant channel holding a coefficient such as the
viscosity), not per grid point, so the model is the same function at every resolution: a
model trained on one grid evaluates on any other grid that resolves ``modes`` frequencies.

Pure functional path (ensembles, MC dropout, data-parallel training)::

    apply, params = functional(model)        # params: the nnx.Param state
    u = apply(params, a)                     # deterministic
    u = apply(params, a, key=key)            # dropout on (if config.dropout > 0)

``apply`` is a pure function of (params, a, key): jit, vmap over stacked params (deep
ensembles) or over keys (dropout draws) work directly.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from operators.layers import SpectralConv, check_modes

__all__ = ["FNO", "FNOConfig", "Normalizer", "functional", "input_statistics", "normalization_values", "param_count"]


@dataclass(frozen=True)
class FNOConfig:
    """Architecture of an FNO. Every field is JSON-able: a checkpoint stores this and rebuilds.

    dim:          number of spatial axes of the input (1 or 2).
    modes:        kept frequencies per axis, |k| <= modes - 1. None: chosen for the data by
                  ``resolved`` (16 in 1D, 12 in 2D, capped at what the training grid allows).
    width:        channels of the hidden representation. None: 64 in 1D, 32 in 2D (the paper's).
    depth:        number of Fourier layers (4).
    proj_hidden:  hidden channels of the projection Q (128).
    padding:      zero padding appended to each spatial axis as a fraction of its size. A
                  fraction, not a point count, so the model stays resolution independent. None:
                  chosen for the data by ``resolved`` (0 for periodic data, ``NONPERIODIC_PADDING``
                  for non-periodic data such as Darcy flow, where the FFT's wrap-around must not
                  couple opposite boundaries).
    dropout:      dropout rate after each hidden activation (0 = none; used by MC dropout).
    coords:       append the grid coordinates x to the input channels (True, as the paper).
    activation:   "gelu" (the paper's), "tanh", "relu" or "identity"; "identity" makes the
                  whole model a linear operator, the right class for a linear PDE (heat).
    in_channels, out_channels: channels of a and u (1 each for scalar fields).
    """

    dim: int = 1
    modes: int | None = None
    width: int | None = None
    depth: int = 4
    proj_hidden: int = 128
    padding: float | None = None
    dropout: float = 0.0
    coords: bool = True
    activation: str = "gelu"
    in_channels: int = 1
    out_channels: int = 1

    def __post_init__(self) -> None:
        if self.dim not in (1, 2):
            raise ValueError(f"dim must be 1 or 2, got {self.dim!r}")
        for name in ("modes", "width", "depth", "proj_hidden", "in_channels", "out_channels"):
            v = getattr(self, name)
            if v is None and name in ("modes", "width"):
                continue
            if not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if self.padding is not None and not (isinstance(self.padding, int | float) and 0.0 <= self.padding <= 1.0):
            raise ValueError(f"padding must be a fraction in [0, 1], got {self.padding!r}")
        if not (0.0 <= self.dropout < 1.0):
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not isinstance(self.coords, bool):
            raise ValueError(f"coords must be true or false, got {self.coords!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}; got {self.activation!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def resolved(self, spatial: tuple[int, ...], periodic: bool = True) -> FNOConfig:
        """This config with every None filled for data on the grid ``spatial`` (the training
        grid): modes = 16 (1D) / 12 (2D), capped at n // 2 (a note on stderr when capped);
        width = 64 / 32; padding = 0 for periodic data, else ``NONPERIODIC_PADDING``. Values
        set explicitly are kept (too many modes for the grid then raise ValueError)."""
        changes: dict[str, Any] = {}
        if self.modes is None:
            default = 16 if self.dim == 1 else 12
            cap = min(spatial) // 2
            changes["modes"] = max(1, min(default, cap))
            if cap < default:
                import sys

                print(f"operators: note: modes={changes['modes']} (the default {default} is more than a grid of "
                      f"{min(spatial)} points allows)", file=sys.stderr)
        if self.width is None:
            changes["width"] = 64 if self.dim == 1 else 32
        if self.padding is None:
            changes["padding"] = 0.0 if periodic else NONPERIODIC_PADDING
        return dataclasses.replace(self, **changes) if changes else self

    @classmethod
    def from_dict(cls, d: dict[str, Any] | str) -> FNOConfig:
        if isinstance(d, str):
            d = json.loads(d)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown FNO config keys {sorted(unknown)}")
        return cls(**d)


# Zero padding for non-periodic data, as a fraction of the grid: the FNO paper's 2D code pads
# 9 points on its 85-point Darcy grid (about 0.1).
NONPERIODIC_PADDING = 0.1


class Normalizer(nnx.Variable):
    """Non-trainable normalisation constants (mean and std of a, per input channel, or of u)."""


def input_statistics(a: np.ndarray, in_channels: int = 1) -> tuple[Any, Any]:
    """(mean, std) of training inputs a (samples, *spatial[, channels]): scalars for one channel,
    else one per channel (lists). The std of a constant channel (zero up to rounding: <= 1e-6 of
    its mean) becomes 1, so other values of it are not blown up."""
    def std(s: float, m: float) -> float:
        return s if s > 1e-6 * abs(m) and s > 0 else 1.0

    a = np.asarray(a, dtype=np.float64)
    if in_channels == 1:
        return float(a.mean()), std(float(a.std()), float(a.mean()))
    flat = a.reshape(-1, in_channels)
    means = [float(v) for v in flat.mean(axis=0)]
    return means, [std(float(s), m) for s, m in zip(flat.std(axis=0), means, strict=True)]


def normalization_values(model: FNO) -> tuple[Any, Any, float, float]:
    """(a_mean, a_std, u_mean, u_std) of a model, JSON-able (lists for per-channel inputs)."""
    def value(v: Any) -> Any:
        arr = np.asarray(v.get_value(), dtype=np.float64)
        return float(arr) if arr.ndim == 0 else [float(x) for x in arr]

    return value(model.a_mean), value(model.a_std), value(model.u_mean), value(model.u_std)


ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "gelu": jax.nn.gelu, "tanh": jnp.tanh, "relu": jax.nn.relu, "identity": lambda x: x,
}


def _dropout(x: jax.Array, rate: float, key: jax.Array | None, per_function: bool = False) -> jax.Array:
    """Inverted dropout; ``per_function``: one mask per function (shape (batch, 1.., C)),
    shared by every grid point, so a draw is a smooth function (MC dropout)."""
    if key is None or rate == 0.0:
        return x
    shape = (x.shape[0], *(1,) * (x.ndim - 2), x.shape[-1]) if per_function else x.shape
    keep = jax.random.bernoulli(key, 1.0 - rate, shape)
    return jnp.where(keep, x / (1.0 - rate), 0.0)


class FNO(nnx.Module):
    """Fourier neural operator (see module doc). ``model(a)``: a (batch, *spatial) or
    (batch, *spatial, in_channels) -> u (batch, *spatial) or (..., out_channels); a scalar
    output keeps a channel axis only for one-channel inputs given with theirs."""

    def __init__(self, config: FNOConfig, *, rngs: nnx.Rngs):
        if config.modes is None or config.width is None:
            raise ValueError("FNOConfig has unresolved defaults (modes or width is None): "
                             "use config.resolved(grid, periodic) first")
        self.config = config
        c = config
        self.lift = nnx.Linear(c.in_channels + (c.dim if c.coords else 0), c.width, rngs=rngs)
        self.spectral = nnx.List([SpectralConv(c.width, c.width, c.modes, c.dim, rngs=rngs) for _ in range(c.depth)])
        self.pointwise = nnx.List([nnx.Linear(c.width, c.width, rngs=rngs) for _ in range(c.depth)])
        self.proj1 = nnx.Linear(c.width, c.proj_hidden, rngs=rngs)
        self.proj2 = nnx.Linear(c.proj_hidden, c.out_channels, rngs=rngs)
        per_channel = (c.in_channels,) if c.in_channels > 1 else ()
        self.a_mean = Normalizer(jnp.zeros(per_channel, jnp.float32))
        self.a_std = Normalizer(jnp.ones(per_channel, jnp.float32))
        self.u_mean = Normalizer(jnp.zeros((), jnp.float32))
        self.u_std = Normalizer(jnp.ones((), jnp.float32))

    def set_normalization(self, a_mean: Any, a_std: Any, u_mean: float, u_std: float) -> None:
        """Store the training data's statistics (call before training): scalars, and for
        in_channels > 1 one a_mean / a_std per input channel (``input_statistics``)."""
        for name, v in (("a_std", a_std), ("u_std", u_std)):
            if not np.all(np.asarray(v) > 0):
                raise ValueError(f"{name} must be positive, got {v!r}")
        shape = self.a_mean.value.shape
        for name, v in (("a_mean", a_mean), ("a_std", a_std)):
            if np.shape(v) not in (shape, ()):
                raise ValueError(f"{name} has shape {np.shape(v)}; this model has {self.config.in_channels} "
                                 f"input channel(s)")
        self.a_mean.value = jnp.broadcast_to(jnp.asarray(a_mean, jnp.float32), shape)
        self.a_std.value = jnp.broadcast_to(jnp.asarray(a_std, jnp.float32), shape)
        self.u_mean.value = jnp.asarray(u_mean, jnp.float32)
        self.u_std.value = jnp.asarray(u_std, jnp.float32)

    def __call__(self, a: jax.Array, *, key: jax.Array | None = None, per_function: bool = False) -> jax.Array:
        """u for a; with ``key`` (and config.dropout > 0) dropout is on, one mask per
        (point, channel), or per (function, channel) with ``per_function``."""
        c = self.config
        act = ACTIVATIONS[c.activation]
        squeeze = a.ndim == c.dim + 1
        x = (a[..., None] if squeeze else a).astype(jnp.float32)
        if x.ndim != c.dim + 2:
            raise ValueError(f"FNO with dim={c.dim} takes (batch, *{c.dim} spatial axes[, channels]), got {a.shape}")
        if x.shape[-1] != c.in_channels:
            raise ValueError(f"this FNO takes {c.in_channels} input channel(s) (batch, *spatial, {c.in_channels}); "
                             f"got inputs of shape {a.shape}")
        spatial = x.shape[1:-1]
        check_modes(c.modes, spatial)
        x = (x - self.a_mean.value) / self.a_std.value
        if c.coords:
            grids = jnp.meshgrid(*[jnp.arange(n, dtype=jnp.float32) / n for n in spatial], indexing="ij")
            coords = jnp.broadcast_to(jnp.stack(grids, axis=-1), (x.shape[0], *spatial, c.dim))
            x = jnp.concatenate([x, coords], axis=-1)
        x = self.lift(x)
        pads = [int(round((c.padding or 0.0) * n)) for n in spatial]  # None: no padding (periodic)
        if any(pads):
            x = jnp.pad(x, [(0, 0), *[(0, p) for p in pads], (0, 0)])
        keys = jax.random.split(key, c.depth + 1) if key is not None else [None] * (c.depth + 1)
        for i in range(c.depth):
            x = self.spectral[i](x) + self.pointwise[i](x)
            if i < c.depth - 1:
                x = _dropout(act(x), c.dropout, keys[i], per_function)
        if any(pads):
            x = x[(slice(None), *[slice(0, n) for n in spatial])]
        x = _dropout(act(self.proj1(x)), c.dropout, keys[-1], per_function)
        x = self.proj2(x)
        u = x * self.u_std.value + self.u_mean.value
        return u[..., 0] if c.out_channels == 1 and (squeeze or c.in_channels > 1) else u


def functional(model: FNO) -> tuple[Callable[..., jax.Array], nnx.State]:
    """Split ``model`` into a pure ``apply(params, a, key=None)`` and its ``nnx.Param`` state.

    The non-trainable state (normalisation constants) is closed over; ``nnx.merge`` inside
    ``apply`` rebuilds the module, so ``apply`` can be jitted, differentiated and vmapped
    over stacked params (deep ensembles) or dropout keys.
    """
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def apply(params: nnx.State, a: jax.Array, key: jax.Array | None = None) -> jax.Array:
        return nnx.merge(graphdef, params, rest)(a, key=key)

    return apply, params


def param_count(model_or_params: Any) -> int:
    """Number of trainable scalars (the complex spectral weights count twice: re and im)."""
    params = nnx.state(model_or_params, nnx.Param) if isinstance(model_or_params, nnx.Module) else model_or_params
    return int(sum(x.size for x in jax.tree.leaves(params)))
