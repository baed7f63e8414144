"""Flax NNX networks for PINNs: MLP, modified MLP, PirateNet-style blocks.

Every network maps features ``z: (N, d)`` to ``(N,)``. The embeddings (exact periodic in
x, random Fourier features) are part of the network; the hard constraints for initial and
boundary data are applied around it by ``pdes.pinn.PINN``.

References: modified MLP, Wang, Teng & Perdikaris (2021) SIAM J. Sci. Comput. 43(5);
random weight factorization, Wang et al. (2022) arXiv:2210.01274; PirateNets, Wang,
Li, Chen & Perdikaris (2024) JMLR 25; Fourier features, Tancik et al. (2020).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

__all__ = ["Dense", "Embedding", "PINNNet", "activation_fn"]


def activation_fn(name: str):
    """tanh, sin or gelu."""
    return {"tanh": jnp.tanh, "sin": jnp.sin, "gelu": jax.nn.gelu}[name]


class Dense(nnx.Module):
    """Affine layer with Glorot-normal init and optional random weight factorization.

    With ``rwf=(mean, std)``: W = diag(exp(s)) V per output unit, s ~ N(mean, std), V = W0 / exp(s),
    so the initial function equals the plain layer's. h: (N, din) -> (N, dout).
    """

    def __init__(self, din: int, dout: int, *, rngs: nnx.Rngs, rwf: tuple[float, float] | None, dtype):
        std = math.sqrt(2.0 / (din + dout))
        w = std * jax.random.normal(rngs.params(), (din, dout), dtype)
        self.rwf = rwf is not None
        if rwf is not None:
            s = rwf[0] + rwf[1] * jax.random.normal(rngs.params(), (dout,), dtype)
            self.s = nnx.Param(s)
            self.v = nnx.Param(w / jnp.exp(s)[None, :])
        else:
            self.w = nnx.Param(w)
        self.b = nnx.Param(jnp.zeros((dout,), dtype))

    def __call__(self, h: jax.Array) -> jax.Array:
        if self.rwf:
            w = self.v[...] * jnp.exp(self.s[...])[None, :]
        else:
            w = self.w[...]
        return h @ w + self.b[...]


class Embedding(nnx.Module):
    """(t_hat, xi) in [0, 1]^2 -> features (xi: (N,), or (N, 2) with ``x_dims`` = 2: the scaled
    x and y of a problem 2-D in space, each embedded as below).

    x: raw xi (scaled to [-1, 1]) or, with ``x_modes`` = K > 0, the exact periodic embedding
    cos(2 pi k xi / P), sin(2 pi k xi / P), k = 1..K, of period ``x_period`` = P in xi: P = 2
    is the odd extension of a Dirichlet problem, P = 1 a periodic problem. t: scaled to
    [-1, 1]. ``x_even``: only features even about xi = 1/2 (cos(2 pi k (xi - 1/2) / P), or
    (2 xi - 1)^2 without modes), so the network is even about the centre by construction.
    ``extra_inputs`` further columns (e.g. u0(x)) are appended as given. With
    ``fourier_features`` = m > 0, the concatenation above is mapped by a fixed Gaussian matrix B (d, m), entries N(0, scale^2),
    to [cos(zB), sin(zB)] (2m features); B is stored as a parameter but never trained.
    """

    def __init__(self, *, x_modes: int, fourier_features: int, fourier_scale: float, rngs: nnx.Rngs, dtype,
                 x_period: float = 2.0, x_dims: int = 1, extra_inputs: int = 0, x_even: bool = False):
        self.x_modes = x_modes
        self.x_period = float(x_period)
        self.x_dims = int(x_dims)
        self.x_even = bool(x_even)
        self.fourier = fourier_features > 0
        per_mode = 1 if self.x_even else 2
        d = 1 + self.x_dims * (per_mode * x_modes if x_modes else 1) + int(extra_inputs)
        if self.fourier:
            self.B = nnx.Param(fourier_scale * jax.random.normal(rngs.params(), (d, fourier_features), dtype))
            self.out_dim = 2 * fourier_features
        else:
            self.out_dim = d

    def __call__(self, t_hat: jax.Array, xi: jax.Array, extra: jax.Array | None = None) -> jax.Array:
        t_col = (2.0 * t_hat - 1.0)[:, None]
        xs = xi.reshape(xi.shape[0], -1)  # (N, x_dims)
        if self.x_modes:
            k = jnp.arange(1, self.x_modes + 1, dtype=xi.dtype)
            centred = xs - 0.5 if self.x_even else xs
            arg = ((2.0 * jnp.pi / self.x_period) * centred[:, :, None] * k[None, None, :]).reshape(xs.shape[0], -1)
            z = jnp.concatenate([t_col, jnp.cos(arg)] + ([] if self.x_even else [jnp.sin(arg)]), axis=-1)
        else:
            s = 2.0 * xs - 1.0
            z = jnp.concatenate([t_col, s * s if self.x_even else s], axis=-1)
        if extra is not None:  # further inputs, e.g. u0(x): (N,) or (N, k)
            z = jnp.concatenate([z, extra.reshape(extra.shape[0], -1)], axis=-1)
        if self.fourier:
            zb = z @ jax.lax.stop_gradient(self.B[...])
            z = jnp.concatenate([jnp.cos(zb), jnp.sin(zb)], axis=-1)
        return z


class PINNNet(nnx.Module):
    """The trainable network N(t_hat, xi) -> (N,), before hard constraints (xi: (N,) or, with
    ``x_dims`` = 2, (N, 2)).

    arch "mlp": depth tanh layers of ``width``. "modified_mlp": U = act(W_u z), V = act(W_v z),
    each layer h <- g * U + (1 - g) * V with g = act(W h). "pirate": ``depth`` blocks of three
    gated layers with a residual skip x <- a * block(x) + (1 - a) * x, a initialised at 0, so the
    network starts as a shallow one (PirateNets). ``dropout``: inverted dropout on hidden units,
    one mask per ``dropout_key`` for all points (a function sample); no dropout without a key.
    """

    def __init__(self, *, arch: str, width: int, depth: int, activation: str, x_modes: int,
                 fourier_features: int, fourier_scale: float, rwf: tuple[float, float] | None,
                 dropout: float, rngs: nnx.Rngs, dtype=jnp.float32, x_period: float = 2.0, x_dims: int = 1,
                 extra_inputs: int = 0, x_even: bool = False):
        self.arch = arch
        self.act_name = activation
        self.dropout = float(dropout)
        self.width = width
        self.embed = Embedding(x_modes=x_modes, fourier_features=fourier_features,
                               fourier_scale=fourier_scale, rngs=rngs, dtype=dtype, x_period=x_period,
                               x_dims=x_dims, extra_inputs=extra_inputs, x_even=x_even)
        d = self.embed.out_dim

        def dense(i: int, o: int) -> Dense:
            return Dense(i, o, rngs=rngs, rwf=rwf, dtype=dtype)

        if arch == "mlp":
            self.layers = nnx.List([dense(d if i == 0 else width, width) for i in range(depth)])
        elif arch == "modified_mlp":
            self.u_gate = dense(d, width)
            self.v_gate = dense(d, width)
            self.layers = nnx.List([dense(d if i == 0 else width, width) for i in range(depth)])
        else:  # pirate
            self.u_gate = dense(d, width)
            self.v_gate = dense(d, width)
            self.proj = dense(d, width) if d != width else None
            self.layers = nnx.List([dense(width, width) for _ in range(3 * depth)])
            self.alpha = nnx.Param(jnp.zeros((depth,), dtype))
        self.out = dense(width, 1)

    def _masks(self, key: jax.Array | None, n: int, width: int, dtype) -> list[jax.Array | None]:
        if key is None or self.dropout == 0.0:
            return [None] * n
        keep = 1.0 - self.dropout
        keys = jax.random.split(key, n)
        return [jax.random.bernoulli(k, keep, (width,)).astype(dtype) / keep for k in keys]

    def __call__(self, t_hat: jax.Array, xi: jax.Array, dropout_key: jax.Array | None = None,
                 extra: jax.Array | None = None) -> jax.Array:
        act = activation_fn(self.act_name)
        z = self.embed(t_hat, xi, extra)
        masks = self._masks(dropout_key, len(self.layers), self.width, z.dtype)

        def drop(h: jax.Array, m: jax.Array | None) -> jax.Array:
            return h if m is None else h * m[None, :]

        if self.arch == "mlp":
            h = z
            for layer, m in zip(self.layers, masks, strict=True):
                h = drop(act(layer(h)), m)
        elif self.arch == "modified_mlp":
            u, v = act(self.u_gate(z)), act(self.v_gate(z))
            h = z
            for layer, m in zip(self.layers, masks, strict=True):
                g = act(layer(h))
                h = drop(g * u + (1.0 - g) * v, m)
        else:
            u, v = act(self.u_gate(z)), act(self.v_gate(z))
            h = z if self.proj is None else act(self.proj(z))
            alpha = self.alpha[...]
            for b in range(len(self.layers) // 3):
                f = act(self.layers[3 * b](h))
                z1 = f * u + (1.0 - f) * v
                g = act(self.layers[3 * b + 1](z1))
                z2 = g * u + (1.0 - g) * v
                r = drop(act(self.layers[3 * b + 2](z2)), masks[3 * b + 2])
                h = alpha[b] * r + (1.0 - alpha[b]) * h
        return self.out(h)[:, 0]
