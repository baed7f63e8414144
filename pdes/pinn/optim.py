"""A dense BFGS direction for optax, to chain with optax's zoom line search.

``bfgs()`` = ``chain(scale_by_bfgs(), scale_by_zoom_linesearch(...))``, used like
``optax.lbfgs`` (``update(grads, state, params, value=, grad=, value_fn=)``). The inverse
Hessian approximation H (n x n) is kept densely, so this suits the small networks (a few
thousand parameters) where quasi-Newton methods in float64 reach far lower PINN errors than
Adam or L-BFGS (Urban, Stefanou & Pons 2025, J. Comput. Phys. 523, "Unveiling the
optimization process of physics informed neural networks").
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

__all__ = ["UPDATES", "BFGSState", "bfgs", "keep_curvature", "scale_by_bfgs"]


class BFGSState(NamedTuple):
    """h: (n, n) inverse Hessian approximation; prev_x, prev_g: (n,) parameters and gradient of
    the previous step (names distinct from the line search's ``value``/``grad``)."""

    h: jax.Array
    prev_x: jax.Array
    prev_g: jax.Array
    count: jax.Array


UPDATES = ("bfgs", "ssbroyden")


def _bfgs_update(h, s, y, sy, count):
    """BFGS (Nocedal & Wright eq. 6.17), with H0 = (s.y / y.y) I at the first update (eq. 6.20)."""
    yy = y @ y
    h = jnp.where(count == 1, (sy / jnp.where(yy > 0, yy, 1.0)) * jnp.eye(y.size, dtype=y.dtype), h)
    rho = 1.0 / sy
    hy = h @ y
    return h - rho * (jnp.outer(s, hy) + jnp.outer(hy, s)) + (rho * rho * (y @ hy) + rho) * jnp.outer(s, s)


def _ssbroyden_update(h, s, y, sy, sbs, count):
    """The self-scaled Broyden update of Al-Baali (1998) in the form used for PINNs by Urban,
    Stefanou & Pons (2025, J. Comput. Phys. 523, section 3, "SSBroyden2"):

        H+ = (H - Hy yH / yHy + phi yHy v v^T) / tau + s s^T / sy,   v = s / sy - Hy / yHy,

    with b = s B s / sy (B = H^-1), h = yHy / sy, a = b h - 1 >= 0, and the Broyden parameter
    theta = max(theta-, min(1 / rho-, (1 - b) / b)), rho- = min(1, h (1 - sqrt(a / (1 + a)))),
    theta- = (rho- - 1) / a, phi = (1 - theta) / (1 + a theta), and the scaling tau from
    sigma = 1 + a theta: min(rho sigma^(1/(1-n)), sigma) for theta <= 0, else
    rho min(sigma^(1/(1-n)), 1 / theta), rho = min(1, 1 / b); at the first update tau = h / sigma.
    phi = tau = 1 is BFGS. ``sbs`` is s B s."""
    n = y.size
    hy = h @ y
    yhy = y @ hy
    hk = yhy / sy
    bk = sbs / sy
    ak = jnp.maximum(bk * hk - 1.0, 1e-12)
    rho_minus = jnp.minimum(1.0, hk * (1.0 - jnp.sqrt(ak / (1.0 + ak))))
    theta_minus = (rho_minus - 1.0) / ak
    theta = jnp.maximum(theta_minus, jnp.minimum(1.0 / rho_minus, (1.0 - bk) / bk))
    sigma = 1.0 + theta * ak
    sigma_n = jnp.abs(sigma) ** (1.0 / (1.0 - n))
    rho_b = jnp.minimum(1.0, 1.0 / bk)
    tau = jnp.where(theta <= 0, jnp.minimum(rho_b * sigma_n, sigma), rho_b * jnp.minimum(sigma_n, 1.0 / theta))
    tau = jnp.where(count == 1, hk / sigma, tau)
    phi = (1.0 - theta) / (1.0 + ak * theta)
    v = s / sy - hy / yhy
    return (h - jnp.outer(hy, hy) / yhy + phi * yhy * jnp.outer(v, v)) / tau + jnp.outer(s, s) / sy


def scale_by_bfgs(update_rule: str = "bfgs") -> optax.GradientTransformation:
    """Direction d = -H g, with H updated from the last step's pair (s, y) by ``update_rule``:
    "bfgs" (``_bfgs_update``) or "ssbroyden" (``_ssbroyden_update``). The first direction is
    -g scaled to norm at most 1. Updates with s.y <= 0 (no curvature) are skipped."""
    if update_rule not in UPDATES:
        raise ValueError(f"update_rule must be one of {', '.join(UPDATES)}; got {update_rule!r}")

    def init(params):
        flat, _ = ravel_pytree(params)
        return BFGSState(jnp.eye(flat.size, dtype=flat.dtype), flat, jnp.zeros_like(flat), jnp.zeros((), jnp.int32))

    def update(updates, state, params=None):
        g, unravel = ravel_pytree(updates)
        x, _ = ravel_pytree(params)
        s = x - state.prev_x
        y = g - state.prev_g
        sy = s @ y
        curved = (state.count > 0) & (sy > 1e-10 * jnp.sqrt(s @ s) * jnp.sqrt(y @ y))
        sy_safe = jnp.where(curved, sy, 1.0)
        if update_rule == "bfgs":
            h_new = _bfgs_update(state.h, s, y, sy_safe, state.count)
        else:
            # the last step was s = alpha d with d = -H g_prev (H as stored), so s B s = -alpha s.g_prev;
            # at the first update (after a scaled gradient step) H = I
            d_prev = -(state.h @ state.prev_g)
            dd = d_prev @ d_prev
            alpha = (s @ d_prev) / jnp.where(dd > 0, dd, 1.0)
            sbs = jnp.where(state.count == 1, s @ s, -alpha * (s @ state.prev_g))
            h_new = _ssbroyden_update(state.h, s, y, sy_safe, jnp.where(curved, sbs, 1.0), state.count)
        ok = curved & jnp.all(jnp.isfinite(h_new))
        h = jnp.where(ok, h_new, state.h)
        d = -(h @ g)
        first = jnp.minimum(1.0, 1.0 / jnp.maximum(jnp.linalg.norm(g), 1e-30))
        d = jnp.where(state.count == 0, d * first, d)
        return unravel(d), BFGSState(h, x, g, state.count + 1)

    return optax.GradientTransformation(init, update)


def bfgs(max_linesearch_steps: int = 30, update_rule: str = "bfgs") -> optax.GradientTransformationExtraArgs:
    """Dense BFGS (or self-scaled Broyden, ``update_rule="ssbroyden"``) with the zoom (strong
    Wolfe) line search of optax."""
    return optax.chain(scale_by_bfgs(update_rule),
                       optax.scale_by_zoom_linesearch(max_linesearch_steps=max_linesearch_steps))


def keep_curvature(old_state: tuple, new_state: tuple) -> tuple:
    """A restarted ``bfgs()`` state (new collocation points) that keeps the inverse Hessian
    approximation of ``old_state``: the line search and the (s, y) pair start afresh, H does
    not. The first step after the restart is then d = -H g instead of a short gradient step,
    and the next pair updates H as usual; throwing H away at every resample costs hundreds of
    iterations each time. A state that has not taken two steps yet is left as restarted."""
    old, new = old_state[0], new_state[0]
    warm = old.count > 1
    h = jnp.where(warm, old.h, new.h)
    count = jnp.where(warm, jnp.asarray(2, new.count.dtype), new.count)
    return (new._replace(h=h, count=count), *new_state[1:])
