"""JAX's persistent compilation cache, on by default for the command lines.

``enable()`` points JAX's compilation cache at the user's cache folder, so the second run of a
command (a PINN preset, an FNO training) loads its compiled programs instead of compiling them
again. Folder: ``$SCIML_JAX_CACHE`` when it names a folder, else ``$SCIML_CACHE/jax``, else
``~/.cache/sciml-workbench/jax``; ``SCIML_JAX_CACHE=off`` (or 0, false, no) turns it off, and a
``JAX_COMPILATION_CACHE_DIR`` the user set is left as it is. The command lines call ``enable()``
when they start; library code never does (no hidden global state): call it yourself in a
script or notebook to get the same.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir", "enable"]

_OFF = ("0", "off", "false", "no", "none")


def cache_dir() -> Path | None:
    """The folder ``enable`` would use, or None when the cache is turned off."""
    setting = os.environ.get("SCIML_JAX_CACHE", "").strip()
    if setting.lower() in _OFF and setting:
        return None
    if setting:
        return Path(setting).expanduser()
    base = os.environ.get("SCIML_CACHE", "").strip()
    return (Path(base).expanduser() if base else Path.home() / ".cache" / "sciml-workbench") / "jax"


def enable() -> Path | None:
    """Turn JAX's persistent compilation cache on (see the module doc); returns its folder, or
    None when it is off. Programs that compile in under half a second are not stored."""
    import jax

    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return Path(os.environ["JAX_COMPILATION_CACHE_DIR"])
    folder = cache_dir()
    if folder is None:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only home: run without the cache
        return None
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    return folder
