"""Shared plumbing for every package of the workbench: standard library and numpy only.

* ``plumbing.files``: atomic writes (one permission policy: what a plain ``open`` gives),
  text, JSON, figures and whole directories.
* ``plumbing.jsonio``: JSON-able conversion of numpy values, paths, dataclasses.
* ``plumbing.tables``: plain-text tables for the command lines.
* ``plumbing.cli``: the command-line runner (one exit-code policy) and argparse types.
* ``plumbing.distributed``: multi-process runs (``jax.distributed``): where a process learns its
  place, the rendezvous, the local launcher, and pytree helpers; it imports JAX only inside
  the functions that need it.

``plumbing.checkpoint`` (JAX pytrees with orbax-checkpoint) is the one module here that needs
JAX at import; it is not imported by this package's ``__init__``.
"""

from plumbing.cli import Failure, UsageError, run_cli
from plumbing.files import (
    atomic_directory,
    atomic_path,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    save_figure,
)
from plumbing.jsonio import dumps, to_jsonable
from plumbing.tables import format_table, format_value, print_table

__all__ = [
    "Failure",
    "UsageError",
    "atomic_directory",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "dumps",
    "format_table",
    "format_value",
    "print_table",
    "run_cli",
    "save_figure",
    "to_jsonable",
]
