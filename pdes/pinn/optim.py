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

__all__ = ["BFGSState", "bfgs", "keep_curvature", "scale_by_bfgs"]


class BFGSState(NamedTuple):
    """h: (n, n) inverse Hessian approximation; prev_x, prev_g: (n,) parameters and gradient of
    the previous step (names distinct from the line search's ``value``/``grad``)."""

    h: jax.Array
    prev_x: jax.Array
    prev_g: jax.Array
    count: jax.Array


def scale_by_bfgs() -> optax.GradientTransformation:
    """Direction d = -H g with the BFGS update of H from the last step (Nocedal & Wright,
    eq. 6.17); H0 = (s.y / y.y) I after the first step (eq. 6.20); the first direction is
    -g scaled to norm at most 1. Updates with s.y <= 0 (no curvature) are skipped."""

    def init(params):
        flat, _ = ravel_pytree(params)
        return BFGSState(jnp.eye(flat.size, dtype=flat.dtype), flat, jnp.zeros_like(flat), jnp.zeros((), jnp.int32))

    def update(updates, state, params=None):
        g, unravel = ravel_pytree(updates)
        x, _ = ravel_pytree(params)
        s = x - state.prev_x
        y = g - state.prev_g
        sy = s @ y
        yy = y @ y
        h = jnp.where(state.count == 1, (sy / jnp.where(yy > 0, yy, 1.0)) * jnp.eye(g.size, dtype=g.dtype), state.h)
        rho = 1.0 / jnp.where(sy > 0, sy, 1.0)
        hy = h @ y
        h_new = h - rho * (jnp.outer(s, hy) + jnp.outer(hy, s)) + (rho * rho * (y @ hy) + rho) * jnp.outer(s, s)
        ok = (state.count > 0) & (sy > 1e-10 * jnp.sqrt(s @ s) * jnp.sqrt(yy)) & jnp.all(jnp.isfinite(h_new))
        h = jnp.where(ok, h_new, h)
        d = -(h @ g)
        first = jnp.minimum(1.0, 1.0 / jnp.maximum(jnp.linalg.norm(g), 1e-30))
        d = jnp.where(state.count == 0, d * first, d)
        return unravel(d), BFGSState(h, x, g, state.count + 1)

    return optax.GradientTransformation(init, update)


def bfgs(max_linesearch_steps: int = 30) -> optax.GradientTransformationExtraArgs:
    """Dense BFGS with the zoom (strong Wolfe) line search of optax."""
    return optax.chain(scale_by_bfgs(), optax.scale_by_zoom_linesearch(max_linesearch_steps=max_linesearch_steps))


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
