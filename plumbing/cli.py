"""The command-line runner every ``python -m PACKAGE`` uses, and its argparse types.

One exit-code policy (DESIGN.md section 3):

* 0: success (also ``--help``);
* 2: bad input: argparse's own errors, ``UsageError``, and a ``ValueError`` or
  ``FileNotFoundError`` raised by the workbench's own code (its validation) -- one line
  ``PROG: error: MESSAGE`` on stderr, no traceback;
* 1: ``Failure`` (an expected failure with a clear message, such as a diverged training:
  one line ``PROG: failed: MESSAGE``) or anything else (an internal error: the traceback,
  then one line ``PROG: internal error: ...``). A ``ValueError`` raised inside a library
  (numpy, JAX, ...) is such an internal error, not bad input;
* 130: interrupted (Ctrl-C).

Whether an error is "ours" is decided by where it was raised: the innermost frame of its
traceback must be in one of the workbench's packages (``PROJECT_PACKAGES``) or in the
script being run.
"""

from __future__ import annotations

import argparse
import math
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from plumbing.jsonio import dumps

__all__ = [
    "PROJECT_PACKAGES",
    "DeprecatedFlag",
    "Failure",
    "UsageError",
    "finite_float",
    "is_input_error",
    "key_value",
    "nonneg_float",
    "nonneg_int",
    "positive_float",
    "positive_int",
    "print_json",
    "run_cli",
]

PROJECT_PACKAGES = frozenset({"plumbing", "pdes", "operators", "uncertainty", "scaling", "efficiency", "workbench"})


class UsageError(ValueError):
    """Bad input found by a command line itself (exit code 2)."""


class Failure(RuntimeError):
    """An expected failure with a clear one-line message, e.g. a training run that diverged
    (exit code 1, no traceback)."""


def _module_of(frame: Any) -> str:
    name = frame.f_globals.get("__name__", "")
    if name == "__main__":
        spec = frame.f_globals.get("__spec__")
        return spec.name if spec is not None else "__main__"
    return name


def is_input_error(err: BaseException) -> bool:
    """True for a ``UsageError``, and for a ``ValueError``/``FileNotFoundError`` whose innermost
    traceback frame is in a workbench package (our validation) or in the script being run."""
    if isinstance(err, UsageError):
        return True
    if not isinstance(err, ValueError | FileNotFoundError):
        return False
    tb = err.__traceback__
    if tb is None:
        return True  # raised and caught without a frame of its own: treat as ours
    while tb.tb_next is not None:
        tb = tb.tb_next
    module = _module_of(tb.tb_frame)
    return module == "__main__" or module.split(".")[0] in PROJECT_PACKAGES


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def run_cli(prog: str, parser: argparse.ArgumentParser, argv: Sequence[str] | None,
            dispatch: Callable[[argparse.Namespace], int | None] | None = None) -> int:
    """Parse ``argv`` with ``parser``, call ``dispatch(args)`` (default: ``args.func(args)``)
    and turn its outcome into an exit code by the policy of the module doc."""
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse: 2 on a malformed flag, 0 on --help
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else 2
    try:
        return int((dispatch or args.func)(args) or 0)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Failure as err:
        print(f"{prog}: failed: {_first_line(err)}", file=sys.stderr)
        return 1
    except Exception as err:
        if is_input_error(err):
            print(f"{prog}: error: {_first_line(err)}", file=sys.stderr)
            return 2
        traceback.print_exc()
        print(f"{prog}: internal error: {type(err).__name__}: {_first_line(err)}", file=sys.stderr)
        return 1


def print_json(obj: Any) -> None:
    """One line of strict JSON on stdout (``plumbing.jsonio.dumps``)."""
    print(dumps(obj), flush=True)


# ----------------------------------------------------------------------------- argparse types


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be finite, got {text!r}")
    return value


def finite_float(text: str) -> float:
    """A finite number."""
    return _number(text)


def positive_float(text: str) -> float:
    """A finite number > 0."""
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return value


def nonneg_float(text: str) -> float:
    """A finite number >= 0."""
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def positive_int(text: str) -> int:
    """An integer >= 1."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def nonneg_int(text: str) -> int:
    """An integer >= 0."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}")
    return value


def key_value(text: str) -> tuple[str, str]:
    """KEY=VALUE as (key, value), both stripped; the key must not be empty."""
    if "=" not in text or not text.split("=", 1)[0].strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    return key.strip(), value.strip()


class DeprecatedFlag(argparse.Action):
    """An old flag name kept for one release: stores into the new flag's dest and prints a
    one-line note naming the new flag. Use ``parser.add_argument("--old", dest=NEW_DEST,
    action=DeprecatedFlag, new="--new", type=..., help=argparse.SUPPRESS)``."""

    def __init__(self, option_strings: Sequence[str], dest: str, new: str, **kwargs: Any) -> None:
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        print(f"{parser.prog}: note: {option_string} is deprecated and will be removed; use {self.new}",
              file=sys.stderr)
        setattr(namespace, self.dest, values)
