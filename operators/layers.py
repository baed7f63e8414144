"""Building blocks of the Fourier neural operator (Li et al. 2021, "Fourier Neural Operator
for Parametric Partial Differential Equations", section 4).

Arrays are channels-last and batched: ``x: (batch, *spatial, channels)`` with one or two
spatial axes on a uniform periodic grid.

``modes`` counts kept frequencies: on every spatial axis the spectral convolution keeps
the integer frequencies ``|k| <= modes - 1`` (so ``modes = 1`` keeps only the mean). On the
last spatial axis (the ``rfft`` axis) that is ``modes`` coefficients k = 0 .. modes-1; on
the first axis of a 2D input it is ``2 modes - 1`` rows (k = -(modes-1) .. modes-1). A grid
of n points allows ``modes <= n // 2`` (the Nyquist frequency is never kept, so a model is
the same function of its input at every resolution). neuraloperator's ``n_modes = M``
keeps ``M // 2 + 1`` frequencies on its last axis: our ``modes = 9`` is its ``n_modes = 16``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

__all__ = ["SpectralConv", "check_modes", "spectral_conv"]


def check_modes(modes: int, spatial_shape: tuple[int, ...]) -> None:
    """Raise ValueError when ``modes`` is not allowed on a grid of ``spatial_shape``."""
    for n in spatial_shape:
        if modes > n // 2:
            raise ValueError(
                f"modes={modes} is more than a grid of {n} points allows (at most {n // 2} kept frequencies)"
            )


def _dft_matrices(n: int, modes: int) -> tuple[np.ndarray, np.ndarray]:
    """Truncated real DFT pair on n points: E (2 modes, n) gives [Re X_k; Im X_k] for k < modes,
    G (n, 2 modes) maps [Re Y_k; Im Y_k] back as irfft does (k = 0 once, k >= 1 twice, 1/n)."""
    ang = 2 * np.pi * np.outer(np.arange(modes), np.arange(n)) / n
    e = np.concatenate([np.cos(ang), -np.sin(ang)])
    c = np.where(np.arange(modes) == 0, 1.0, 2.0)[:, None] / n
    g = np.concatenate([c * np.cos(ang), -c * np.sin(ang)]).T
    return e.astype(np.float32), g.astype(np.float32)


def spectral_conv(x: jax.Array, w_re: jax.Array, w_im: jax.Array, modes: int) -> jax.Array:
    """The Fourier layer's global convolution K(x) = irfft(W . rfft(x) truncated to ``modes``).

    x: (batch, n, c_in) or (batch, n1, n2, c_in), real.
    w_re, w_im: the real and imaginary parts of W; (c_in, c_out, modes) in 1D,
       (c_in, c_out, 2 modes - 1, modes) in 2D with the first 2D axis ordered
       k1 = 0 .. modes-1, -(modes-1) .. -1 (numpy fft order).
    Returns (batch, *spatial, c_out), real. In 1D, with X_k = sum_j x_j exp(-2 pi i k j / n),
    y_j = (1/n) [Re(Y_0) + 2 sum_{k=1}^{modes-1} Re(Y_k exp(2 pi i k j / n))], Y_k = X_k W_k
    (the imaginary part of Y_0 is dropped, as ``irfft`` does); 2D is the same over both axes.

    1D is computed as matrix products with the truncated DFT matrices (cost O(n modes) per
    channel instead of an FFT's O(n log n) plus a full spectrum: faster on CPUs for the
    mode counts FNOs use, and the same numbers up to rounding); 2D uses ``rfft2``.
    """
    if x.ndim == 3:
        b, n, c = x.shape
        d = w_re.shape[1]
        e, g = _dft_matrices(n, modes)
        xs = jnp.einsum("kn,bnc->bkc", e, x)  # (b, 2m, c): [Re X; Im X]
        xs = xs.reshape(b, 2, modes, c).transpose(0, 2, 1, 3).reshape(b, modes, 2 * c)
        # [Re X, Im X] @ [[Re W, Im W], [-Im W, Re W]] = [Re XW, Im XW], one real product per k.
        wb = jnp.concatenate([jnp.concatenate([w_re, w_im], 1), jnp.concatenate([-w_im, w_re], 1)], 0)
        ys = jnp.einsum("bkc,ckd->bkd", xs, wb.transpose(0, 2, 1))
        ys = ys.reshape(b, modes, 2, d).transpose(0, 2, 1, 3).reshape(b, 2 * modes, d)
        return jnp.einsum("nk,bkd->bnd", g, ys)
    if x.ndim == 4:
        w = jax.lax.complex(w_re, w_im)
        n1, n2 = x.shape[1], x.shape[2]
        xh = jnp.fft.rfft2(x, axes=(1, 2))
        kept = jnp.concatenate([xh[:, :modes, :modes], xh[:, n1 - modes + 1:, :modes]], axis=1)
        yh = jnp.einsum("bklc,cdkl->bkld", kept, w)
        full = jnp.zeros((x.shape[0], n1, n2 // 2 + 1, w.shape[1]), dtype=yh.dtype)
        full = full.at[:, :modes, :modes].set(yh[:, :modes])
        full = full.at[:, n1 - modes + 1:, :modes].set(yh[:, modes:])
        return jnp.fft.irfft2(full, s=(n1, n2), axes=(1, 2))
    raise ValueError(f"spectral_conv takes (batch, n, c) or (batch, n1, n2, c), got shape {x.shape}")


class SpectralConv(nnx.Module):
    """Fourier layer: y = irfft(W . rfft(x)) keeping ``modes`` frequencies per axis (see module doc).

    The complex weights are stored as two real ``nnx.Param`` arrays (``w_re``, ``w_im``) so
    every optimizer treats them as plain float32 parameters. Initialisation follows the FNO
    paper's code: U[0, 1) / (c_in c_out) for the real and imaginary parts.
    """

    def __init__(self, in_channels: int, out_channels: int, modes: int, dim: int, *, rngs: nnx.Rngs):
        if dim not in (1, 2):
            raise ValueError(f"dim must be 1 or 2, got {dim!r}")
        if not (isinstance(modes, int) and modes >= 1):
            raise ValueError(f"modes must be a positive integer, got {modes!r}")
        self.modes = modes
        self.dim = dim
        shape = (in_channels, out_channels, modes) if dim == 1 else (in_channels, out_channels, 2 * modes - 1, modes)
        scale = 1.0 / (in_channels * out_channels)
        self.w_re = nnx.Param(scale * jax.random.uniform(rngs.params(), shape, jnp.float32))
        self.w_im = nnx.Param(scale * jax.random.uniform(rngs.params(), shape, jnp.float32))

    def __call__(self, x: jax.Array) -> jax.Array:
        """x: (batch, *spatial, in_channels) -> (batch, *spatial, out_channels)."""
        return spectral_conv(x, self.w_re.value, self.w_im.value, self.modes)
