"""Float32/float64 helpers shared by the PINN trainer, the inverse solver and the ensembles.

JAX keeps float64 off unless asked; code that trains or evaluates a float64 network runs
inside ``x64_if(True)``. Float32 code leaves the global setting as it is.
"""

from __future__ import annotations

import contextlib
from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["all_finite", "cast_floats", "uses_float64", "x64_if"]


def x64_if(on: bool):
    """``jax.enable_x64(True)`` when ``on``, else a context that changes nothing."""
    return jax.enable_x64(True) if on else contextlib.nullcontext()


def uses_float64(tree: Any) -> bool:
    """Whether any leaf of the pytree is float64."""
    return any(a.dtype == jnp.float64 for a in jax.tree.leaves(tree))


def cast_floats(tree: Any, dtype: Any) -> Any:
    """The pytree with its floating leaves cast to ``dtype`` (integer leaves kept)."""
    return jax.tree.map(lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a, tree)


def all_finite(tree: Any) -> bool:
    """Whether every floating leaf of the pytree is finite (one host sync per leaf)."""
    return all(bool(jnp.all(jnp.isfinite(a))) for a in jax.tree.leaves(tree) if jnp.issubdtype(a.dtype, jnp.floating))
